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
"""Live migration through Nova's API between two real daemons.

Two nova-compute services run in this process: host1 drives the first
daemon, host2 the second (``tools/setup-host.sh --second-daemon``); the
move itself is CRIU checkpoint/restore between the daemons over https.
"""

import os
import subprocess
import time

from testtools import content

from nova_syscontainer.virt import container
from tests.functional import base
from tests.functional import daemon

ONLY_ON_FIRST = daemon.BASE_PREFIX + 'only-on-first'


class MigrationTestCase(base.TwoHostsTestCase):
    """Two hosts, and the state of the instance's last migration."""

    def last_migration(self, server):
        """The server's latest migration record, or None."""
        migrations = [m for m in self.api.get_migrations()
                      if m['instance_uuid'] == server['id']]
        return migrations[-1] if migrations else None

    def migration_status(self, server):
        migration = self.last_migration(server)
        return migration['status'] if migration else None

    def wait_migration(self, server, *statuses, timeout=30):
        """Wait until the latest migration's status is one of statuses."""
        self.wait_until(
            lambda: self.migration_status(server) in statuses,
            timeout=timeout,
            what='the migration to be %s' % ' or '.join(statuses))

    def wait_for_landing(self, server, host='host2'):
        """Wait until Nova shows the server ACTIVE on host, at rest."""
        return self._wait_for_server_parameter(
            server, {'OS-EXT-SRV-ATTR:host': host, 'status': 'ACTIVE',
                     'OS-EXT-STS:task_state': None}, max_retries=240)

    def live_migrate(self, server, host='host2'):
        self.api.post_server_action(server['id'], {'os-migrateLive': {
            'host': host, 'block_migration': 'auto'}})

    def start_live_migration(self, server):
        """Live-migrate to host2 and return once the daemons are moving it.

        Returns the migration record. Two seconds after Nova reports the
        migration running, the source daemon has normally dumped the
        processes with CRIU and is syncing the files.
        """
        self.live_migrate(server)
        self.wait_migration(server, 'running')
        migration = self.last_migration(server)
        time.sleep(2)
        return migration

    def abort_migration(self, server, migration):
        """DELETE the running migration; wait until Nova cancelled it."""
        self.api.api_delete('/servers/%s/migrations/%s' % (
            server['id'], migration['id']))
        self.wait_migration(server, 'cancelled', timeout=60)

    def assert_migration_fails_source_kept(self, server, name):
        """Live-migrate to host2, which fails: all stays on host1."""
        self.live_migrate(server)
        self.wait_migration(server, 'error', 'failed', timeout=60)
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertNotIn(name, self.second.names())

    def kill_target_daemon(self, server):
        """SIGKILL host2's daemon; wait until Nova failed the migration."""
        self.second.kill()
        self.wait_migration(server, 'error', 'failed', timeout=120)


class LiveMigrationTest(MigrationTestCase):

    def test_live_migration_keeps_process_state(self):
        server = self.boot(host='host1')
        name = self.container_name(server)
        self.wait_until(lambda: self.daemon.counter(name)[2] >= 2,
                        what='the counter to run')
        token, pid, count = self.daemon.counter(name)

        start = time.monotonic()
        self.live_migrate(server)
        server = self.wait_for_landing(server)
        elapsed = time.monotonic() - start

        self.assertNotIn(name, self.daemon.names())
        rec = self.second.instance(name)
        self.assertEqual('Running', rec['status'])
        self.assertEqual('host2', rec['config'][container.HOST_KEY])
        token2, pid2, count2 = self.second.counter(name)
        self.assertEqual((token, pid), (token2, pid2),
                         'the same process, with its memory, on host2')
        self.assertGreaterEqual(count2, count)
        self.wait_until(lambda: self.second.counter(name)[2] > count2,
                        what='the counter to go on on host2')
        self.assertEqual(str(128 * 1024 * 1024), self.second.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
        self.assertIn(server['id'], self.computes['host2'].driver
                      .list_instance_uuids())
        self.assertNotIn(server['id'], self.computes['host1'].driver
                         .list_instance_uuids())
        self.wait_migration(server, 'completed')
        self.addDetail('live-migration-seconds',
                       content.text_content('%.1f' % elapsed))

        # The instance lives on: the new node stops and deletes it.
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        self.assertEqual('Stopped', self.second.state(name)['status'])
        self._delete_server(server)
        self.assertNotIn(name, self.second.names())

    def test_refused_by_target_leaves_source_running(self):
        # The container uses a profile the second daemon lacks.
        self.daemon.ensure_profile(ONLY_ON_FIRST, {'config': {}})
        self.second.delete_profile(ONLY_ON_FIRST)
        self.flags(profiles=['default', ONLY_ON_FIRST], group='syscontainer')
        server = self.boot(host='host1')
        name = self.container_name(server)
        token, pid, count = self.daemon.counter(name)

        self.assert_migration_fails_source_kept(server, name)
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])
        self.wait_until(lambda: self.daemon.counter(name)[2] > count,
                        what='the source counter to keep ticking')
        self.assertIn('lacks the profile', self.stdlog.logger.output)

    def test_destination_without_endpoint_refused_before_moving(self):
        self.flags(endpoint=daemon.SECOND_ENDPOINT, migration_endpoint=None,
                   group='syscontainer')
        self.compute2 = self.restart_compute_service(
            self.compute2, keep_hypervisor_state=False)
        server = self.boot(host='host1')
        name = self.container_name(server)
        self.assert_migration_fails_source_kept(server, name)

    def test_destination_without_usable_criu_refused_before_moving(self):
        self.flags(endpoint=daemon.SECOND_ENDPOINT,
                   migration_endpoint=daemon.SECOND_HTTPS_ENDPOINT,
                   criu_path='/nonexistent/criu', group='syscontainer')
        self.compute2 = self.restart_compute_service(
            self.compute2, keep_hypervisor_state=False)
        server = self.boot(host='host1')
        name = self.container_name(server)
        token, pid, _count = self.daemon.counter(name)
        self.assert_migration_fails_source_kept(server, name)
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])
        self.assertIn('CRIU is not usable on the destination node: CRIU '
                      'cannot be run as /nonexistent/criu',
                      self.stdlog.logger.output)

    def test_abort_during_the_move_keeps_the_source(self):
        server = self.boot(host='host1')
        name = self.container_name(server)
        token, pid, count = self.daemon.counter(name)
        migration = self.start_live_migration(server)
        self.abort_migration(server, migration)
        self.assertIn('Live migration to host2 aborted',
                      self.stdlog.logger.output)
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])
        self.wait_until(lambda: self.daemon.counter(name)[2] > count,
                        what='the source counter to keep ticking')
        self.assertNotIn(name, self.second.names())

    def test_progress_of_a_move_with_256_mib_of_memory(self):
        flavor = self.make_flavor('c1.mem512', vcpus=1, memory_mb=512)
        server = self.boot(host='host1', flavor_id=flavor)
        name = self.container_name(server)
        # 256 MiB of random bytes in the container's /tmp (a tmpfs, whose
        # pages CRIU dumps with the processes), written by a command that
        # ends (LXD's file API would leave a helper process inside that
        # makes the dump fail).
        pid = self.daemon.init_pid(name)
        with open('/proc/%d/mounts' % pid) as f:
            self.assertIn(' /tmp tmpfs ', f.read())
        subprocess.run(
            ['lxc', 'exec', name, '--', 'dd', 'if=/dev/urandom',
             'of=/tmp/ballast', 'bs=1M', 'count=256'],
            check=True, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=120, env=dict(os.environ, LXD_DIR=os.path.dirname(
                daemon.ENDPOINT)))
        self.assertEqual(256 << 20, os.stat(
            '/proc/%d/root/tmp/ballast' % pid).st_size)
        token, pid, _count = self.daemon.counter(name)

        self.live_migrate(server)
        # What GET /servers/{id}/migrations shows while it runs.
        seen = []
        while True:
            active = self.api.get_active_migrations(server['id'])
            if active:
                seen.append(active[0])
            elif self.migration_status(server) in (
                    'completed', 'error', 'failed', 'cancelled'):
                break
            time.sleep(0.3)
        self.assertEqual('completed', self.migration_status(server))
        server = self.wait_for(server, 'ACTIVE', timeout=120)
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual((token, pid), self.second.counter(name)[:2])

        processed = [m['memory_processed_bytes'] for m in seen
                     if m['memory_processed_bytes']]
        self.addDetail('progress', content.text_content('\n'.join(
            '%s total=%s processed=%s remaining=%s disk=%s' % (
                m['status'], m['memory_total_bytes'],
                m['memory_processed_bytes'], m['memory_remaining_bytes'],
                m['disk_processed_bytes']) for m in seen)))
        self.assertTrue(processed, 'no progress reported while moving')
        # Never more processed than the total it reported; never going back.
        for m in seen:
            if m['memory_processed_bytes']:
                self.assertLessEqual(m['memory_processed_bytes'],
                                     m['memory_total_bytes'])
        self.assertEqual(sorted(processed), processed)
        # The checkpoint holds the 256 MiB written into the tmpfs.
        self.assertGreater(max(processed), 256 << 20)

    def test_force_complete_refused_the_move_goes_on(self):
        server = self.boot(host='host1')
        name = self.container_name(server)
        token, pid, _count = self.daemon.counter(name)
        self.live_migrate(server)
        self.wait_migration(server, 'running')
        migration = self.api.get_active_migrations(server['id'])[0]
        # Nova accepts the request and casts it to the source compute, where
        # the driver lacks the method (ComputeDriver's NotImplementedError,
        # as the support matrix says): a failed action event, nothing else.
        self.api.force_complete_migration(server['id'], migration['id'])
        event = self._wait_for_instance_action_event(
            server, 'live_migration_force_complete',
            'compute_live_migration_force_complete', 'Error')
        self.assertIn('NotImplementedError', event.get('traceback') or '')
        server = self.wait_for_landing(server)
        # Nova marks the migration completed just after it updates the
        # instance, as in test_live_migration_keeps_process_state.
        self.wait_migration(server, 'completed')
        self.assertEqual((token, pid), self.second.counter(name)[:2])

    def test_target_daemon_killed_during_the_move(self):
        # host2's daemon crashes (SIGKILL) about 2 s into the move: by then
        # the CRIU dump has normally frozen the source's tasks (see
        # test_daemon_migration for the daemon-level detail).
        server = self.boot(host='host1')
        name = self.container_name(server)
        token, pid, count = self.daemon.counter(name)
        self.start_live_migration(server)
        self.kill_target_daemon(server)
        server = self.wait_for(server, 'ACTIVE', timeout=120)
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('Running', self.daemon.state(name)['status'])
        # The same process, with its memory, and not frozen: it counts on.
        value = self.daemon.counter(name)
        self.assertEqual((token, pid), value[:2])
        self.wait_until(lambda: self.daemon.counter(name)[2] > value[2] + 1,
                        what='the source counter to keep ticking')
        self.assertIn('Live migration to host2 failed',
                      self.stdlog.logger.output)

        # host2 could not clean its dead daemon during the rollback: it
        # remembers the instance. Once the daemon is back, host2's next
        # resource update removes what the crash left of it there.
        pending = self.computes['host2'].driver._pending_cleanups
        self.assertEqual([server['id']], pending.uuids())
        self.second.ensure_running()
        self.addDetail('leftover-on-host2', content.text_content(
            str(name in self.second.names())))
        self.computes['host2'].manager.update_available_resource(self.ctxt)
        self.assertNotIn(name, self.second.names())
        self.assertEqual([], pending.uuids())
        # host1 still serves the instance.
        self.assertIn(server['id'], self.computes['host1'].driver
                      .list_instance_uuids())
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        self.assertEqual('Stopped', self.daemon.state(name)['status'])


class ColdMigrationTest(MigrationTestCase):
    """Cold migration and resize to another host (stopped copy)."""

    def test_cold_migrate_confirm(self):
        server = self.boot(host='host1')
        name = self.container_name(server)
        self.daemon.write_file(name, '/root/kept', b'data')
        server = self.action(server, {'migrate': {'host': 'host2'}},
                             'VERIFY_RESIZE', timeout=120)
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('Running', self.second.state(name)['status'])
        self.assertEqual('host2', self.second.instance(name)['config'][
            container.HOST_KEY])
        self.assertEqual('data', self.second.read_file(name, '/root/kept'))
        # The source copy waits, stopped, for the confirmation.
        self.assertEqual('Stopped', self.daemon.state(name)['status'])

        server = self.action(server, {'confirmResize': None}, 'ACTIVE')
        self.assertNotIn(name, self.daemon.names())
        self.assertEqual('Running', self.second.state(name)['status'])
        self.assertIn(server['id'], self.computes['host2'].driver
                      .list_instance_uuids())

    def test_resize_to_another_host_and_revert(self):
        big = self.make_flavor('c2.big', vcpus=2, memory_mb=256)
        server = self.boot(host='host1')
        name = self.container_name(server)
        server = self.action(server, {'resize': {'flavorRef': big}},
                             'VERIFY_RESIZE', timeout=120)
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(str(256 * 1024 * 1024), self.second.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))

        server = self.action(server, {'revertResize': None}, 'ACTIVE',
                             timeout=120)
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertNotIn(name, self.second.names())
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual(str(128 * 1024 * 1024), self.daemon.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))

    def test_failed_copy_leaves_the_instance_running(self):
        self.daemon.ensure_profile(ONLY_ON_FIRST, {'config': {}})
        self.second.delete_profile(ONLY_ON_FIRST)
        self.flags(profiles=['default', ONLY_ON_FIRST], group='syscontainer')
        server = self.boot(host='host1')
        name = self.container_name(server)
        self.api.post_server_action(server['id'],
                                    {'migrate': {'host': 'host2'}})
        self._wait_for_instance_action_event(
            server, 'migrate', 'compute_resize_instance', 'Error')
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertNotIn(name, self.second.names())


class EvacuateTest(MigrationTestCase):

    def test_evacuate_from_a_down_host(self):
        server = self.boot(host='host1')
        name = self.container_name(server)
        # host1 goes down (its daemon keeps the container).
        self.compute.stop()
        service = self.admin_api.get_services(
            binary='nova-compute', host='host1')[0]
        self.admin_api.put_service(service['id'], {'forced_down': True})

        server = self._evacuate_server(
            server, {'host': 'host2'}, expected_host='host2',
            expected_state='SHUTOFF')
        # Rebuilt from the image on host2's daemon, stopped as Nova asks.
        self.assertEqual('Stopped', self.second.state(name)['status'])
        self.assertEqual('host2', self.second.instance(name)['config'][
            container.HOST_KEY])
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        self.assertEqual('Running', self.second.state(name)['status'])

        # host1 comes back: it removes its stale copy of the instance.
        self.compute = self.restart_host1()
        self.admin_api.put_service(service['id'], {'forced_down': False})
        self.assertNotIn(name, self.daemon.names())
        self.assertEqual('Running', self.second.state(name)['status'])
