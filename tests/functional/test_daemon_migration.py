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
"""Moving containers between two real daemons, without Nova yet.

Daemon A (the tests' usual daemon, through its unix socket) is the source,
daemon B (``tools/setup-host.sh --second-daemon``, through https with the
client certificate and its server certificate pinned) the target, both on
this host. The proof is the busybox counter: a process writing ``<token>
<pid> <count>`` every second, read from the host through /proc, and the
memory limit read from the container's cgroup on the host.

Timings (total time of the move and the longest gap between two counter
ticks, i.e. the downtime) are reported as the ``migration`` detail and
logged; they are never asserted.
"""

import glob
import logging
import os
import sys
import threading
import time
import uuid

from nova import exception as nova_exception
import testtools
from testtools import content

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import criu_dump
from nova_syscontainer.virt import criu_processes
from nova_syscontainer.virt import daemon_move
from nova_syscontainer.virt import move_checks
from tests.functional import daemon
from tests import rawlxd

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF
MiB = 1024 * 1024
MEMORY = 128 * MiB
#: How daemon B reaches daemon A.
SOURCE_URL = daemon.HTTPS_ENDPOINT


class CounterWatch(threading.Thread):
    """Samples the counter of every copy of a container on this host.

    Both daemons name the container's cgroups ``lxc.payload.<name>`` (B
    with a ``-<n>`` suffix when A's copy still exists), so the watch
    follows the processes across the move without asking either daemon.
    """

    def __init__(self, name, interval=0.05):
        super().__init__(daemon=True)
        self.patterns = ['/sys/fs/cgroup/pids/lxc.payload.%s' % name,
                         '/sys/fs/cgroup/pids/lxc.payload.%s-*' % name]
        self.interval = interval
        self.ticks = []  # (monotonic time, (token, pid, count)) per change
        self._done = threading.Event()

    def _read(self):
        for pattern in self.patterns:
            for cgroup in glob.glob(pattern):
                try:
                    with open(os.path.join(cgroup, 'cgroup.procs')) as f:
                        pid = f.read().split()[0]
                    with open('/proc/%s/root/tmp/counter' % pid) as f:
                        token, cpid, count = f.read().split()
                    return token, int(cpid), int(count)
                except (OSError, IndexError, ValueError):
                    continue
        return None

    def run(self):
        while not self._done.is_set():
            value = self._read()
            if value and (not self.ticks or self.ticks[-1][1] != value):
                self.ticks.append((time.monotonic(), value))
            time.sleep(self.interval)

    def stop(self):
        self._done.set()
        self.join(5)

    def longest_gap(self):
        """(seconds, value before, value after) of the longest pause."""
        gaps = [(b[0] - a[0], a[1], b[1])
                for a, b in zip(self.ticks, self.ticks[1:])]
        return max(gaps, key=lambda gap: gap[0]) if gaps else None


class DaemonMigrationTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        if not daemon.second_daemon_available():
            self.skipTest('no second daemon at %s: run tools/setup-host.sh '
                          '--second-daemon' % daemon.SECOND_ENDPOINT)
        self.a = self.useFixture(daemon.DaemonFixture(project='default'))
        self.b = self.useFixture(daemon.SecondDaemonFixture())
        self.source = daemon_client.DaemonClient(
            endpoint=daemon.ENDPOINT, project='default')
        self.target = daemon_client.DaemonClient(
            endpoint=daemon.SECOND_HTTPS_ENDPOINT, project='default',
            client_cert=daemon.CLIENT_CERT, client_key=daemon.CLIENT_KEY,
            server_cert=daemon.SECOND_SERVER_CERT)
        self.fingerprint = self.a.import_image()

    # -- helpers -------------------------------------------------------------
    def create(self, start=True, profiles=None):
        name = '%smig-%s' % (daemon.NAME_PREFIX, uuid.uuid4().hex[:8])
        # Also gone from B at the end, whatever happened (the fixtures'
        # sweeps catch it too).
        self.addCleanup(lambda: rawlxd.remove(self.b.lxd, name))
        self.addCleanup(rawlxd.remove, self.a.lxd, name)
        self.a.create_raw(name, self.fingerprint, start=start,
                          profiles=profiles, config={
                              'raw.lxc': '\n'.join(
                                  checkpoint_policy.raw_lxc()),
                              'limits.memory': '%dB' % MEMORY,
                              'limits.cpu': '1'})
        if start:
            self.wait_ticks(self.a, name, 2)
        return name

    def wait_ticks(self, fixture, name, minimum, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            value = fixture.counter(name)
            if value[2] >= minimum:
                return value
            if time.monotonic() > deadline:
                self.fail('counter of %s stuck at %s' % (name, value))
            time.sleep(0.3)

    def assert_ticking(self, fixture, name, token, pid, after_count):
        """Same process, and it counts past after_count again."""
        value = self.wait_ticks(fixture, name, after_count + 2)
        self.assertEqual((token, pid), value[:2])
        return value

    def source_operations(self, name):
        ops = self.a.lxd.api.operations.get(
            params={'recursion': 1}).json()['metadata'] or {}
        return [op for op in ops.get('running') or []
                if rawlxd._touches_prefix(op, name)]

    def report(self, what, figures, watch=None):
        text = '%s: %s' % (what, ', '.join(
            '%s=%.2fs' % (k, v) for k, v in sorted(figures.items())
            if isinstance(v, float)))
        if watch is not None:
            gap = watch.longest_gap()
            if gap:
                text += ', downtime (longest counter gap)=%.2fs (%s -> %s)' % (
                    gap[0], gap[1][2], gap[2][2])
        LOG.info('%s', text)
        self.addDetail('migration', content.text_content(text))
        # Also on the runner's stderr, so that a passing run shows them.
        print(text, file=sys.stderr)

    # -- (a) live ------------------------------------------------------------
    def test_live_move_keeps_processes_and_limits(self):
        name = self.create()
        self.assertEqual(str(MEMORY), self.a.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
        token, pid, count = self.a.counter(name)
        watch = CounterWatch(name)
        watch.start()
        self.addCleanup(watch.stop)
        time.sleep(1.5)

        figures = daemon_move.move(self.source, self.target, name, SOURCE_URL)

        self.assertTrue(figures['source_removed'])
        self.assertNotIn(name, self.a.names())
        self.assertEqual('Running', self.b.instance(name)['status'])
        self.assert_ticking(self.b, name, token, pid, count)
        watch.stop()
        self.report('live move A->B', figures, watch)
        # The count went on from where it was: no restart at 0.
        counts = [value[2] for _t, value in watch.ticks]
        self.assertEqual(sorted(counts), counts)
        self.assertEqual({(token, pid)},
                         {value[:2] for _t, value in watch.ticks})
        # The limits hold on B's host cgroup of the restored processes.
        self.assertEqual(str(MEMORY), self.b.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
        self.assertEqual('%dB' % MEMORY,
                         self.b.instance(name)['config']['limits.memory'])

    # -- (b) cold ------------------------------------------------------------
    def test_cold_move_of_stopped_container(self):
        name = self.create(start=False)

        figures = daemon_move.move(self.source, self.target, name, SOURCE_URL,
                                   live=False)

        self.report('cold move A->B', figures)
        self.assertNotIn(name, self.a.names())
        self.assertEqual('Stopped', self.b.instance(name)['status'])
        self.b.change_state(name, 'start')
        self.wait_ticks(self.b, name, 2)
        self.assertEqual(str(MEMORY), self.b.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))

    def test_live_move_of_stopped_container_refused(self):
        name = self.create(start=False)
        self.assertRaises(exception.MigrationTargetUnsuitable,
                          daemon_move.move, self.source, self.target, name,
                          SOURCE_URL, check=False)
        self.assertEqual('Stopped', self.a.instance(name)['status'])

    # -- (c) refused ---------------------------------------------------------
    def with_profile_missing_on_b(self):
        profile = daemon.NAME_PREFIX + 'mig-only-on-a'
        self.b.delete_profile(profile)
        self.a.ensure_profile(profile, {'config': {'user.mig': 'a'}})
        # Registered before the container: removed after it.
        self.addCleanup(self.a.delete_profile, profile)
        name = self.create(profiles=['default', profile])
        return name, profile

    def assert_source_untouched(self, name, token, pid, count):
        self.assertEqual('Running', self.a.instance(name)['status'])
        self.assert_ticking(self.a, name, token, pid, count)
        self.assertNotIn(name, self.b.names())
        self.assertEqual([], self.source_operations(name))

    def test_pre_check_refuses_before_anything_is_sent(self):
        name, profile = self.with_profile_missing_on_b()
        token, pid, count = self.a.counter(name)

        with testtools.ExpectedException(exception.MigrationTargetUnsuitable):
            move_checks.check_target(self.source, self.target,
                                     self.source.get_instance(name))
        ctx = self.assertRaises(exception.MigrationFailed, daemon_move.move,
                                self.source, self.target, name, SOURCE_URL)

        self.assertIsInstance(ctx, exception.MigrationTargetUnsuitable)
        self.assertIsInstance(ctx, nova_exception.MigrationPreCheckError)
        self.assertIn(profile, str(ctx))
        self.assertIn(name, str(ctx))
        self.assert_source_untouched(name, token, pid, count)

    def test_target_daemon_refusal_rolled_back(self):
        name, profile = self.with_profile_missing_on_b()
        token, pid, count = self.a.counter(name)

        ctx = self.assertRaises(exception.MigrationFailed, daemon_move.move,
                                self.source, self.target, name, SOURCE_URL,
                                check=False)

        self.assertNotIsInstance(ctx, exception.MigrationTargetUnsuitable)
        self.assertIn(profile, str(ctx))  # the daemon's own words
        self.assertIn('the source is Running', str(ctx))
        self.assert_source_untouched(name, token, pid, count)

    def test_pre_check_other_problems(self):
        name = self.create(start=False)
        record = self.source.get_instance(name)
        record['config'].pop('raw.lxc')
        record['expanded_config'].pop('raw.lxc')
        record['config']['security.idmap.isolated'] = 'true'
        record['expanded_config']['security.idmap.isolated'] = 'true'
        record['status'] = 'Running'
        record['expanded_devices']['root']['pool'] = 'nsc-ft-no-such-pool'
        ctx = self.assertRaises(
            exception.MigrationTargetUnsuitable, move_checks.check_target,
            self.source, self.target, record)
        for words in ('checkpoint lines', 'security.idmap.isolated',
                      'storage pool nsc-ft-no-such-pool'):
            self.assertIn(words, str(ctx))
        # The same daemon on both sides.
        ctx = self.assertRaises(
            exception.MigrationTargetUnsuitable, move_checks.check_target,
            self.source, self.source, self.source.get_instance(name))
        self.assertIn('same daemon', str(ctx))
        self.assertIn('already has an instance', str(ctx))

    def test_pre_check_compares_the_daemons_idmaps(self):
        name = self.create()
        # B runs a container too: its map is what B gives new containers.
        other = '%smig-b-%s' % (daemon.NAME_PREFIX, uuid.uuid4().hex[:8])
        self.addCleanup(lambda: rawlxd.remove(self.b.lxd, other))
        self.b.create_raw(other, self.b.import_image(), start=False)
        record = self.source.get_instance(name)
        b_map = move_checks.daemon_idmap(self.target.list_instances())
        self.assertIsNotNone(b_map)
        # Both daemons use the host's one subuid range: the same map.
        self.assertEqual(move_checks._idmap(record['expanded_config']), b_map)
        move_checks.check_target(self.source, self.target, record)

        # A container whose map B would not give: refused before moving.
        shifted = record['expanded_config']['volatile.idmap.current'].replace(
            '"Hostid":100000', '"Hostid":300000')
        self.assertNotEqual(
            shifted, record['expanded_config']['volatile.idmap.current'])
        record['expanded_config']['volatile.idmap.current'] = shifted
        ctx = self.assertRaises(exception.MigrationTargetUnsuitable,
                                move_checks.check_target, self.source,
                                self.target, record)
        self.assertIn('maps uids/gids differently', str(ctx))

    # -- (d) the target daemon dies mid-move ---------------------------------
    def test_target_daemon_killed_after_dump_source_recovers(self):
        # Timing-dependent by nature: at 2 s the CRIU dump (about 1.5 s
        # into the move on this host) has normally happened, and LXD 5.0.2
        # then leaves the source's tasks stopped under "criu dump" until
        # the rollback ends the source's "lxd migratedumpsuccess" helper.
        # If the kill lands earlier (a slower pre-copy) the source op just
        # fails and the same assertions hold; the detail "released" says
        # which path ran.
        name = self.create()
        token, pid, count = self.a.counter(name)
        watch = CounterWatch(name)
        watch.start()
        self.addCleanup(watch.stop)
        killer = threading.Timer(2.0, self.b.kill)
        self.addCleanup(killer.cancel)
        released = []
        real_release = criu_processes.release_stuck_dump

        def spy(init_pid):
            pids = real_release(init_pid)
            released.extend(pids)
            return pids

        self.patch(criu_processes, 'release_stuck_dump', spy)
        start = time.monotonic()
        killer.start()

        ctx = self.assertRaises(exception.MigrationFailed, daemon_move.move,
                                self.source, self.target, name, SOURCE_URL)

        failed_after = time.monotonic() - start
        LOG.info('move failed: %s', ctx)
        self.assertEqual('Running', self.a.instance(name)['status'])
        self.assertIn('the source is Running', str(ctx))
        value = self.assert_ticking(self.a, name, token, pid, count)
        self.assertGreaterEqual(value[2], count)
        watch.stop()
        self.report('live move with B killed at 2 s',
                    {'failed_after': failed_after}, watch)
        self.addDetail('released', content.text_content(
            'helper pids released: %s' % released))
        # B was dead during the rollback: the move could not clean it and
        # says so; cleanup_target does it once B is back.
        self.assertIn('cleanup_target', str(ctx))
        self.b.ensure_running()
        leftover = name in self.b.names()
        self.addDetail('leftover-on-b', content.text_content(str(leftover)))
        self.assertEqual(leftover,
                         daemon_move.cleanup_target(self.target, name))
        self.assertNotIn(name, self.b.names())
        self.assertIn(name, self.a.names())

    # -- (e) the move's client dies: the daemons go on alone -----------------
    def live_migrating_ops(self):
        """Ids of A's running "Live-migrating instance" operations.

        The operation LXD 5.0.2 makes for CRIU's action script; it names
        no instance, so it is found by its description.
        """
        ops = self.a.lxd.api.operations.get(
            params={'recursion': 1}).json()['metadata'] or {}
        return {op['id'] for op in ops.get('running') or []
                if op.get('description') == 'Live-migrating instance'}

    def test_move_abandoned_during_the_dump_source_recovers(self):
        """The client of a live move dies; abandon_move undoes the move.

        As when nova-compute dies once the target was asked (interrupted.py
        calls abandon_move at its restart), cut at the worst moment found:
        during the final CRIU dump. The cancelled operation reads as ended
        at once, but LXD 5.0.2's source finishes the dump, fails to send
        the checkpoint on the closed websockets, and leaves its "lxd
        migratedumpsuccess" helper waiting forever, CRIU holding the tasks
        stopped: a roll-back that stopped watching when the operation
        looked ended left a server that could not be stopped or deleted
        until the daemon restarted (2 of about 14 runs of the compute-death
        tests). Now the tasks must run on, the same process, and the
        container stop and go.
        """
        name = self.create()
        token, pid, count = self.a.counter(name)
        init_pid = self.source.get_state(name)['pid']
        before = self.live_migrating_ops()
        record = self.source.get_instance(name)
        certificate = self.source.server_info()['environment']['certificate']
        op = self.source.start_migration_source(name, live=True)
        self.target.start_migration_target(daemon_move.target_request(
            record, '%s/1.0/operations/%s' % (SOURCE_URL, op['id']),
            certificate, op.get('metadata') or {}, True))
        # The client is gone from here on: wait for the final dump.
        deadline = time.monotonic() + 60
        while criu_dump.dumping(init_pid) is None:
            if time.monotonic() > deadline:
                self.fail('no CRIU dump of %s within 60 s' % name)
            time.sleep(0.005)
        start = time.monotonic()

        status = daemon_move.abandon_move(self.source, self.target, name,
                                          grace=60)

        took = time.monotonic() - start
        self.assertEqual('Running', status)
        self.assertEqual(0, criu_dump.tracer(init_pid))
        self.assert_ticking(self.a, name, token, pid, count)
        self.assertNotIn(name, self.b.names())
        left = self.live_migrating_ops() - before
        # What was held is free: the container stops, and goes.
        start_stop = time.monotonic()
        self.source.change_state(name, 'stop', force=True)
        stopped = time.monotonic() - start_stop
        self.source.delete_instance(name)
        self.assertNotIn(name, self.a.names())
        self.report('live move abandoned during the dump (LXD 5.0.2 kept '
                    '%d "Live-migrating instance" operation(s) running)'
                    % len(left), {'abandon': took, 'stop': stopped})
