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
"""Builds a dead nova-compute left: which, and what is done about them."""

import unittest
from unittest import mock

from nova.compute import task_states
from nova.compute import vm_states

from nova_syscontainer.virt import container
from nova_syscontainer.virt import interrupted


def inst(uuid, vm_state=vm_states.BUILDING,
         task_state=task_states.SPAWNING, host='node1', deleted=False):
    return mock.Mock(uuid=uuid, vm_state=vm_state, task_state=task_state,
                     host=host, deleted=deleted)


def record(uuid, host='node1'):
    return {'name': 'c-' + uuid, 'config': {
        container.MANAGED_KEY: 'true', container.UUID_KEY: uuid,
        container.HOST_KEY: host}}


class UnfinishedTest(unittest.TestCase):

    def test_building_here_or_nowhere(self):
        self.assertTrue(interrupted.unfinished(inst('a'), 'node1'))
        self.assertTrue(interrupted.unfinished(inst('a', host=None),
                                               'node1'))
        self.assertTrue(interrupted.unfinished(
            inst('a', vm_state=vm_states.ACTIVE,
                 task_state=task_states.NETWORKING), 'node1'))

    def test_not_building_elsewhere_or_deleted(self):
        self.assertFalse(interrupted.unfinished(
            inst('a', vm_state=vm_states.ACTIVE, task_state=None), 'node1'))
        self.assertFalse(interrupted.unfinished(inst('a', host='node2'),
                                                'node1'))
        self.assertFalse(interrupted.unfinished(inst('a', deleted=True),
                                                'node1'))
        self.assertFalse(interrupted.unfinished(
            inst('a', vm_state=vm_states.ACTIVE,
                 task_state=task_states.MIGRATING), 'node1'))


class CleanUpTest(unittest.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = mock.Mock()
        self.driver.client.list_instances.return_value = [
            record('built'), record('half'), record('theirs', host='node2')]
        patches = [
            mock.patch('nova.context.get_admin_context'),
            mock.patch.object(interrupted, 'objects'),
            mock.patch('nova.compute.utils.add_instance_fault_from_exc')]
        self.mocks = [p.start() for p in patches]
        for p in patches:
            self.addCleanup(p.stop)
        self.query = self.mocks[1].InstanceList.get_by_filters
        self.fault = self.mocks[2]
        self.query.return_value = [
            inst('built', vm_state=vm_states.ACTIVE, task_state=None),
            inst('half', host=None)]

    def test_only_this_nodes_unfinished_builds_removed_with_a_fault(self):
        self.assertEqual(['half'], interrupted.clean_up(self.driver, 'node1'))
        self.assertEqual({'uuid': ['built', 'half']},
                         self.query.call_args[0][1])
        self.assertEqual(1, self.driver.destroy.call_count)
        self.assertEqual('half', self.driver.destroy.call_args[0][1].uuid)
        error = self.fault.call_args[0][2]
        self.assertIn('nova-compute stopped during the build', str(error))

    def test_errors_never_stop_the_service(self):
        self.driver.destroy.side_effect = RuntimeError('daemon gone')
        self.fault.side_effect = RuntimeError('db gone')
        self.assertEqual(['half'], interrupted.clean_up(self.driver, 'node1'))
        self.driver.client.list_instances.side_effect = RuntimeError('x')
        self.assertEqual([], interrupted.clean_up(self.driver, 'node1'))


class RunningOperationsTest(unittest.TestCase):

    def test_only_running_operations_naming_the_instance(self):
        from nova_syscontainer.virt import client_ops

        class Client(client_ops.OperationCalls):
            def call(self, *args, **kwargs):
                return {'running': [
                    {'id': '1', 'resources': {'instances': [
                        '/1.0/instances/c1?project=p']}},
                    {'id': '2', 'resources': {'instances': [
                        '/1.0/instances/c10']}},
                    {'id': '3', 'resources': None}],
                    'success': [{'id': '4', 'resources': {'instances': [
                        '/1.0/instances/c1']}}]}

        self.assertEqual(['1'], [op['id'] for op in
                                 Client().running_operations('c1')])


class RollBackMoveTest(unittest.TestCase):

    #: The source's allocation the migration holds in Placement.
    held = {'rp-node1': {'resources': {'VCPU': 1}}}

    def roll_back(self, *statuses, pid=-1, tracers=None, releases=None):
        """_roll_back_move with the source's statuses in turn.

        ``pid``: the source container's init; ``tracers``, ``releases``:
        what criu_dump.tracer and release_stuck_dump return in turn.
        Returns the source's client and the fakes of target_client,
        cleanup_target and release_stuck_dump.
        """
        driver = mock.Mock()
        source = driver.client
        source.endpoint = '/var/lib/lxd/unix.socket'
        source.running_operations.return_value = [{'id': 'op1'}]
        source.get_operation.return_value = None
        source.get_state.return_value = {'pid': pid}
        source.find_instance.side_effect = [{'status': s} for s in statuses]
        instance = inst('m', vm_state=vm_states.ACTIVE,
                        task_state=task_states.MIGRATING)
        objects = mock.Mock()
        objects.Migration.get_by_instance_and_status.return_value = (
            mock.Mock(dest_compute='node2', uuid='mig-1'))
        self.context = mock.Mock()
        self.reportclient = mock.Mock()
        self.reportclient.get_allocations_for_consumer.return_value = (
            self.held)
        with mock.patch.object(interrupted, 'objects', objects), \
                mock.patch.object(interrupted, 'neutron') as neutron, \
                mock.patch.object(interrupted.report,
                                  'report_client_singleton',
                                  return_value=self.reportclient), \
                mock.patch.object(interrupted.peers,
                                  'target_client') as target, \
                mock.patch.object(interrupted.daemon_move,
                                  'cleanup_target') as cleanup, \
                mock.patch.object(interrupted.daemon_move.criu_processes,
                                  'release_stuck_dump',
                                  side_effect=releases) as release, \
                mock.patch.object(interrupted.daemon_move.criu_dump,
                                  'tracer', side_effect=tracers), \
                mock.patch.object(interrupted.daemon_move.time, 'sleep'), \
                mock.patch.object(interrupted.container, 'name',
                                  return_value='c-m'):
            interrupted._roll_back_move(driver, self.context, instance)
        self.instance, self.neutron = instance, neutron.API.return_value
        return source, target, cleanup, release

    def test_a_dump_outliving_the_cancelled_operation_is_released(self):
        # The cancelled operation reads as ended at once, but LXD 5.0.2's
        # source finishes its CRIU dump after that, and its helper then
        # waits forever (fixed in LXD 5.0.3). Stopping the watch when the
        # operation looked ended left the tasks stopped under ptrace.
        source, _t, cleanup, release = self.roll_back(
            'Running', pid=77, tracers=[4242] * 6 + [0] * 20,
            releases=[[]] * 5 + [[99]] + [[]] * 20)
        self.assertGreaterEqual(release.call_count, 6)
        release.assert_called_with(77)
        cleanup.assert_called_once()
        source.change_state.assert_not_called()

    def test_a_freezing_source_settles_and_is_unfrozen(self):
        source, _t, _c, _r = self.roll_back(
            'Freezing', 'Freezing', 'Frozen', 'Running')
        source.change_state.assert_called_once_with('c-m', 'unfreeze')

    def test_cut_move_cancelled_target_cleared_source_started(self):
        instance = inst('m', vm_state=vm_states.ACTIVE,
                        task_state=task_states.MIGRATING)
        self.assertTrue(interrupted.moving_from(instance, 'node1'))
        self.assertFalse(interrupted.moving_from(instance, 'node2'))
        source, target, cleanup, release = self.roll_back(
            'Stopped', 'Running')
        source.cancel_operation.assert_called_once_with('op1')
        target.assert_called_once_with(mock.ANY, 'node2')
        cleanup.assert_called_once_with(target.return_value, 'c-m')
        release.assert_not_called()  # no init pid: it is stopped
        source.change_state.assert_called_once_with('c-m', 'start')
        # Neutron's bindings to the destination go, as in Nova's rollback.
        self.neutron.setup_networks_on_host.assert_called_once_with(
            self.context, self.instance, 'node2', teardown=True)
        # So do the move's claims: the source's allocation, which the
        # migration held, is the instance's again; the context is dropped.
        self.reportclient.move_allocations.assert_called_once_with(
            self.context, 'mig-1', 'm')
        self.instance.drop_migration_context.assert_called_once_with()

    def test_no_allocation_held_by_the_migration_is_left_as_it_is(self):
        self.held = {}
        self.roll_back('Running')
        self.reportclient.move_allocations.assert_not_called()
        self.instance.drop_migration_context.assert_called_once_with()
