# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""The daemon kind, as the driver reads it, and moves across kinds.

Runs against whichever kind SYSCONTAINER_TEST_DAEMON names (``tox -e
functional`` LXD, ``tox -e functional-incus`` Incus). The cross-kind test
puts host1 on the Incus daemon and host2 on the LXD one, and so runs only
under functional-incus (it then also takes the LXD daemons' lock).
"""

import os
import subprocess

from nova import objects

from nova_syscontainer.virt import daemon_kind
from tests.functional import base
from tests.functional import daemon
from tests.functional import guest
from tests.functional import test_checkpoint


class DaemonKindTest(base.SysContainerTestCase):

    def test_kind_read_at_init_host_and_published(self):
        self.flags(migration_endpoint=daemon.HTTPS_ENDPOINT,
                   group='syscontainer')
        # Drivers read migration_endpoint when they are created.
        self.compute = self.start_compute('host2')
        found = self.driver('host2').client.daemon
        self.assertEqual(daemon.KIND, found.kind.name)
        self.assertTrue(found.version[:1].isdigit(), found.version)
        self.assertEqual(found.stat, self.driver('host2')
                         .get_available_resource('host2')['stats'][
                             daemon_kind.STAT])

    def test_container_carries_the_kinds_checkpoint_config(self):
        server = self.boot()
        name = self.container_name(server)
        config = self.daemon.instance(name)['config']
        kind = daemon_kind.KINDS[daemon.KIND]
        self.assertEqual([], daemon_kind.checkpoint_config_missing(kind,
                                                                   config))
        self.assertIn('lxc.pty.max = 1', config['raw.lxc'])


class IdmappedRestoreTest(test_checkpoint.CheckpointAssertions,
                          base.SysContainerTestCase):
    """Incus: a task CRIU could dump but not restore is refused first."""

    def test_suspend_refused_for_a_task_in_roots_home(self):
        if not daemon_kind.KINDS[daemon.KIND].idmapped_rootfs:
            self.skipTest('only Incus gives containers an idmapped root')
        server = self.boot()
        name = self.container_name(server)
        token, pid, _count = self.daemon.counter(name)
        # incus exec starts commands in /root (0700): without the check
        # the stateful stop succeeds and the restore fails, leaving the
        # container stopped with its state lost (measured).
        guest.lxc_exec(self.daemon, name,
                       'cd /root && setsid sleep 1000 </dev/null '
                       '>/dev/null 2>&1 &')
        sleeper = guest.find_task(self.daemon, name, 'sleep',
                                  argv_has='1000')
        self.api.post_server_action(server['id'], {'suspend': None})
        self.assert_refused_active(
            server, name, 'suspend', 'compute_suspend_instance',
            'sleep (pid %d) in /root' % sleeper)
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])


def _lxd_available():
    lxd = daemon.DAEMONS['lxd']['endpoint']
    if not os.path.exists(lxd):
        return False
    try:
        daemon.connect('default', lxd).api.get()
    except Exception:
        return False
    return True


def _ensure_lxd():
    """Whether LXD answers, after starting it if a past run left it down.

    Called with the LXD daemons' lock held, as their own tests restart them.
    """
    if not _lxd_available():
        subprocess.run([daemon.SETUP_HOST] + daemon.DAEMONS['lxd'][
            'setup_args'], check=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=300)
    return _lxd_available()


class CrossKindMigrationTest(base.SysContainerTestCase):
    """host1 on Incus, host2 on LXD: every move is refused, nothing moves."""

    START_COMPUTE = False

    def setUp(self):
        if daemon.KIND != 'incus':
            self.skipTest('runs under tox -e functional-incus')
        if not os.path.exists(daemon.DAEMONS['lxd']['endpoint']):
            self.skipTest('no LXD daemon: run tools/setup-host.sh')
        # LXD's lock first, then (DaemonFixture) the Incus run's own: no
        # Incus test waits for LXD's lock while holding Incus's.
        daemon.acquire_host_lock(daemon.LXD_LOCK_PATH)
        self.addCleanup(daemon.release_host_lock, daemon.LXD_LOCK_PATH)
        super().setUp()
        if not _ensure_lxd():
            self.skipTest('the LXD daemon does not answer')
        lxd = daemon.DAEMONS['lxd']
        self.lxd = self.useFixture(daemon.DaemonFixture(
            project='default', endpoint=lxd['endpoint']))
        self.flags(client_cert=daemon.CLIENT_CERT,
                   client_key=daemon.CLIENT_KEY, group='syscontainer')
        self.flags(endpoint=daemon.ENDPOINT,
                   migration_endpoint=daemon.HTTPS_ENDPOINT,
                   group='syscontainer')
        self.compute = self.start_compute('host1')
        self.flags(endpoint=lxd['endpoint'], migration_endpoint=lxd['https'],
                   group='syscontainer')
        self.compute2 = self.start_compute('host2')

    def _migrations(self, server):
        return [m for m in self.api.get_migrations()
                if m['instance_uuid'] == server['id']]

    def test_live_and_cold_moves_refused_at_the_pre_check(self):
        stats = objects.ComputeNode.get_first_node_by_host_for_old_compat(
            self.ctxt, 'host2').stats
        self.assertTrue(stats[daemon_kind.STAT].startswith('lxd '), stats)
        reason = 'the other node runs LXD (lxd 5.0'

        # Incus -> LXD, live: Nova's conductor itself refuses first (the
        # destination's hypervisor version, 5.0.2, is older than the
        # source's, 6.0.4: DestinationHypervisorTooOld), then says "No
        # valid host".
        server = self.boot(host='host1')
        name = self.container_name(server)
        token, pid, _count = self.daemon.counter(name)
        self.api.post_server_action(server['id'], {'os-migrateLive': {
            'host': 'host2', 'block_migration': 'auto'}})
        self.wait_until(lambda: [m['status'] for m in self._migrations(
            server)] == ['error'], what='the live migration to fail')

        # Incus -> LXD, cold: refused by the source's pre-check.
        self.api.post_server_action(server['id'],
                                    {'migrate': {'host': 'host2'}})
        self.wait_until(lambda: sorted(m['status'] for m in
                                       self._migrations(server)) in (
                            ['error', 'error'], ['error', 'failed']),
                        timeout=60, what='the cold migration to fail')
        server = self.wait_for(server, 'ACTIVE')
        self.assertIn(reason, self.stdlog.logger.output)
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual((token, pid), self.daemon.counter(name)[:2],
                         'the same process, never stopped')
        self.assertNotIn(name, self.lxd.names())

        # LXD -> Incus, live: refused by the destination's pre-check
        # (Nova's version check lets it through).
        seen = self.stdlog.logger.output.count(reason)
        other = self.boot(name='on-lxd', host='host2')
        other_name = self.container_name(other)
        self.api.post_server_action(other['id'], {'os-migrateLive': {
            'host': 'host1', 'block_migration': 'auto'}})
        self.wait_until(lambda: [m['status'] for m in self._migrations(
            other)] == ['error'], what='the LXD live migration to fail')
        self.assertGreater(self.stdlog.logger.output.count(reason), seen)
        self.assertIn('Refusing a move between daemon kinds',
                      self.stdlog.logger.output)
        self.assertEqual('host2', self.wait_for(other, 'ACTIVE')[
            'OS-EXT-SRV-ATTR:host'])
        self.assertEqual('Running', self.lxd.state(other_name)['status'])
        self.assertNotIn(other_name, self.daemon.names())
