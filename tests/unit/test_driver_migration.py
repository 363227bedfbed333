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
"""The driver's migration calls on their error paths, without a daemon.

The transfers themselves (live_migration.move,
cold_migration.copy_stopped) are autospecced mocks: what is proved here is
what the driver does around them when they fail, are aborted or succeed.
"""

from unittest import mock

import fixtures
from nova import exception as nova_exception
from nova.network import model
from nova import objects

from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint
from nova_syscontainer.virt import cold_migration
from nova_syscontainer.virt import incoming_ports
from nova_syscontainer.virt import live_migration
from tests.unit import test_driver
from tests.unit.test_vif import make_vif

RUNNING = test_driver.RUNNING
STOPPED = test_driver.STOPPED


class ResizeTest(test_driver.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.driver._migration_endpoint = 'https://192.0.2.1:8443'
        self.migration = objects.Migration(id=1, source_compute='host1',
                                           dest_compute='host2')
        self.useFixture(fixtures.MockPatchObject(
            self.driver, '_migration', return_value=self.migration))
        self.copy = self.useFixture(fixtures.MockPatchObject(
            cold_migration, 'copy_stopped', autospec=True)).mock
        self.copy.return_value = {'total': 1.0}
        # The destination's compute record and its daemon kind (the kind
        # check has tests of its own: tests.functional.test_incus).
        self.useFixture(fixtures.MockPatchObject(
            objects.ComputeNode, 'get_first_node_by_host_for_old_compat'))
        self.same_kind = self.useFixture(fixtures.MockPatchObject(
            self.driver, '_check_same_kind')).mock
        self.flavor = objects.Flavor(id=2, name='m1.small', memory_mb=256,
                                     vcpus=1, root_gb=0, ephemeral_gb=0,
                                     swap=0, flavorid='2', extra_specs={})

    def migrate(self):
        return self.driver.migrate_disk_and_power_off(
            None, self.instance, 'host2', self.flavor, [])

    def assertRolledBack(self, inner):
        e = self.assertRaises(nova_exception.InstanceFaultRollback,
                              self.migrate)
        self.assertIsInstance(e.inner_exception, inner)
        return e

    def test_another_daemon_kind_is_refused_before_anything_stops(self):
        self.same_kind.side_effect = nova_exception.MigrationPreCheckError(
            reason='LXD 5.0.2 here, Incus 6.0.4 there')
        self.assertRolledBack(nova_exception.MigrationPreCheckError)
        self.copy.assert_not_called()

    def test_success_stops_and_copies(self):
        self.add()
        self.assertEqual('{}', self.migrate())
        self.assertEqual(STOPPED, self.daemon.instances[self.name]['status'])
        self.copy.assert_called_once_with(
            None, self.daemon, 'https://192.0.2.1:8443', self.instance,
            'host2')

    def test_a_shrinking_root_disk_is_refused_before_anything_stops(self):
        self.add()
        self.instance.flavor.root_gb = 2
        self.assertRolledBack(nova_exception.ResizeError)
        self.daemon.change_state.assert_not_called()
        self.copy.assert_not_called()

    def test_no_endpoint_for_another_host_is_refused_before_it_stops(self):
        self.add()
        self.driver._migration_endpoint = None
        self.assertRolledBack(nova_exception.MigrationPreCheckError)
        self.daemon.change_state.assert_not_called()

    def test_a_failed_copy_starts_a_running_container_again(self):
        self.add()
        self.copy.side_effect = exception.MigrationFailed(
            name=self.name, target='host2', reason='target refused')
        e = self.assertRolledBack(nova_exception.MigrationError)
        self.assertIn('target refused', str(e.inner_exception))
        self.assertEqual(RUNNING, self.daemon.instances[self.name]['status'])

    def test_a_failed_copy_leaves_a_stopped_container_stopped(self):
        self.add(status=STOPPED)
        self.copy.side_effect = exception.MigrationFailed(
            name=self.name, target='host2', reason='target refused')
        self.assertRolledBack(nova_exception.MigrationError)
        self.assertEqual(STOPPED, self.daemon.instances[self.name]['status'])
        self.daemon.change_state.assert_not_called()


class LiveMigrationTest(test_driver.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.move = self.useFixture(fixtures.MockPatchObject(
            live_migration, 'move', autospec=True)).mock
        self.move.return_value = {'total': 1.0}
        self.post = mock.Mock()
        self.recover = mock.Mock()
        self.data = objects.HyperVLiveMigrateData(
            is_shared_instance_path=False)

    def live_migrate(self):
        self.driver.live_migration(None, self.instance, 'host2', self.post,
                                   self.recover, migrate_data=self.data)

    def test_success_calls_post_method(self):
        self.add()
        self.live_migrate()
        self.post.assert_called_once_with(None, self.instance, 'host2',
                                          False, self.data)
        self.recover.assert_not_called()
        self.assertEqual({}, self.driver._live_moves)

    def test_a_failed_move_calls_recover_method(self):
        self.add()
        self.move.side_effect = exception.MigrationFailed(
            name=self.name, target='host2', reason='restore failed')
        self.live_migrate()
        self.recover.assert_called_once_with(None, self.instance, 'host2',
                                             self.data)
        self.post.assert_not_called()
        self.assertEqual({}, self.driver._live_moves)

    def test_an_aborted_move_is_cancelled_not_failed(self):
        self.add()

        def move(context, source, endpoint, instance, dest,
                 on_started=None, migration=None):
            on_started('op1')
            self.driver.live_migration_abort(instance)
            raise exception.MigrationFailed(name=self.name, target=dest,
                                            reason='cancelled')
        self.move.side_effect = move
        self.live_migrate()
        self.daemon.cancel_operation.assert_called_once_with('op1')
        self.recover.assert_called_once_with(
            None, self.instance, 'host2', self.data,
            migration_status='cancelled')
        self.assertEqual(set(), self.driver._aborted)

    def test_abort_without_a_move_is_an_invalid_state(self):
        self.assertRaises(nova_exception.InvalidMigrationState,
                          self.driver.live_migration_abort, self.instance)
        self.daemon.cancel_operation.assert_not_called()

    def test_a_task_criu_would_refuse_fails_the_source_pre_check(self):
        self.add()
        self.useFixture(fixtures.MockPatchObject(
            live_migration, 'check_source', autospec=True))
        self.useFixture(fixtures.MockPatchObject(
            checkpoint, 'precheck', autospec=True)).mock.side_effect = (
                exception.CheckpointRefused(name=self.name,
                                            reason='a nested pid ns'))
        e = self.assertRaises(
            nova_exception.MigrationPreCheckError,
            self.driver.check_can_live_migrate_source, None, self.instance,
            self.data)
        self.assertIn('a nested pid ns', str(e))

    def test_a_missing_container_is_not_found(self):
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.check_can_live_migrate_source, None,
                          self.instance, self.data)
        self.assertEqual([], self.daemon.calls)


class DestinationPortsTest(test_driver.DriverTestCase):
    """The destination remembers the ports it plugs for a live move."""

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.flags(state_path=tmp)
        self.driver._nodename = 'host2'
        self.incoming = incoming_ports.IncomingPorts('host2')
        self.network_info = model.NetworkInfo([make_vif()])

    def test_remembered_before_plugging(self):
        seen = []
        self.nics['plug_all'].side_effect = (
            lambda *args: seen.extend(self.incoming.uuids()))
        self.driver.pre_live_migration(None, self.instance, None,
                                       self.network_info, None, None)
        self.assertEqual([self.instance.uuid], seen)
        self.assertEqual([self.instance.uuid], self.incoming.uuids())

    def test_forgotten_when_nova_ends_the_move_either_way(self):
        for end in (
                lambda: self.driver.post_live_migration_at_destination(
                    None, self.instance, self.network_info),
                lambda: self.driver.rollback_live_migration_at_destination(
                    None, self.instance, self.network_info, {})):
            self.driver.pre_live_migration(None, self.instance, None,
                                           self.network_info, None, None)
            self.driver._pending_cleanups = mock.Mock()
            self.useFixture(fixtures.MockPatchObject(
                self.driver, '_apply_flavor'))
            end()
            self.assertEqual([], self.incoming.uuids())
