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
"""DaemonClient's call wrapper: error mapping, retries, busy, waits.

The pylxd API tree below the client is a Mock answering as LXD 5.0.2
does (HTTP errors as LXDAPIException, background operations as an
``async`` body); the bound on long operations is in
test_client_operations.py.
"""

from unittest import mock

import fixtures
from nova import exception as nova_exception
from pylxd import exceptions as lxd_exceptions
import requests
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import client
from nova_syscontainer.virt import daemon_kind

CONF = sc_conf.CONF


def _refusal(error, cls=lxd_exceptions.LXDAPIException, status=400):
    response = mock.Mock(status_code=status)
    response.json.return_value = {'type': 'error', 'error': error}
    return cls(response)


def _sync(metadata):
    return mock.Mock(**{'json.return_value': {'type': 'sync',
                                              'metadata': metadata}})


def _async(op_id='op1'):
    return mock.Mock(**{'json.return_value': {
        'type': 'async', 'metadata': {'id': op_id, 'status': 'Running'}}})


def _op(status, err='', metadata=None):
    return mock.Mock(**{'json.return_value': {'metadata': {
        'status': status, 'err': err, 'metadata': metadata}}})


class CallTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.lxd = mock.MagicMock()
        self.api = self.lxd.api
        self.client = client.DaemonClient(
            endpoint='/nonexistent/unix.socket', api_timeout=1,
            operation_timeout=5)
        self.client._connect = mock.Mock(return_value=self.lxd)
        # The daemon's kind, as init_host's first GET /1.0 would find it.
        self.client._daemon = daemon_kind.Daemon(
            daemon_kind.KINDS[daemon_kind.LXD], '5.0.2')
        self.sleep = self.useFixture(fixtures.MockPatchObject(
            client.time, 'sleep')).mock
        CONF.set_override('busy_retries', 3, group='syscontainer')
        self.addCleanup(CONF.clear_override, 'busy_retries',
                        group='syscontainer')

    def state_node(self):
        return self.api.instances.__getitem__.return_value.state

    # -- 404 --------------------------------------------------------
    def test_not_found_raises_what_the_caller_asked_for(self):
        self.api.instances.__getitem__.return_value.get.side_effect = (
            _refusal('not found', lxd_exceptions.NotFound, 404))
        inst = mock.Mock(uuid='u1')
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.client.get_instance, 'c1',
                          not_found=client.instance_not_found(inst))
        e = self.assertRaises(exception.DaemonError,
                              self.client.get_instance, 'c1')
        self.assertIn('read instance c1', str(e))
        self.assertIsNone(self.client.find_instance('c1'))
        self.assertFalse(self.client.instance_exists('c1'))

    def test_deleting_what_is_gone_is_done(self):
        node = self.api.instances.__getitem__.return_value
        node.delete.side_effect = _refusal('not found',
                                           lxd_exceptions.NotFound, 404)
        self.assertIsNone(self.client.delete_instance('c1'))
        node.delete.assert_called_once_with()

    # -- busy -------------------------------------------------------
    def test_busy_is_retried_up_to_busy_retries(self):
        self.state_node().put.side_effect = [
            _refusal('Instance is busy running a stop operation'),
            _refusal('Instance is busy running a stop operation'),
            _sync({})]
        self.client.change_state('c1', 'start')
        self.assertEqual(3, self.state_node().put.call_count)
        self.assertEqual(2, self.sleep.call_count)

    def test_busy_to_the_end_is_a_daemon_error(self):
        self.state_node().put.side_effect = _refusal(
            'Instance is busy running a stop operation')
        e = self.assertRaises(exception.DaemonError,
                              self.client.change_state, 'c1', 'start')
        # busy_retries retries after the first refusal.
        self.assertEqual(4, self.state_node().put.call_count)
        self.assertIn('busy running a stop operation', str(e))
        self.assertIn('start instance c1', str(e))

    def test_other_refusals_are_not_retried(self):
        self.state_node().put.side_effect = _refusal('Permission denied')
        self.assertRaises(exception.DaemonError,
                          self.client.change_state, 'c1', 'start')
        self.assertEqual(1, self.state_node().put.call_count)
        self.sleep.assert_not_called()

    def test_a_stateful_change_is_never_retried(self):
        # A checkpoint CRIU half did must not be tried again blindly.
        self.state_node().put.side_effect = _refusal(
            'Instance is busy running a start operation')
        self.assertRaises(exception.DaemonError, self.client.change_state,
                          'c1', 'stop', stateful=True)
        self.assertEqual(1, self.state_node().put.call_count)

    def test_an_operation_failing_busy_is_retried(self):
        self.state_node().put.return_value = _async()
        self.api.operations.__getitem__.return_value.wait.get.side_effect = [
            _op('Failure', 'Instance is busy running a restart operation'),
            _op('Success')]
        self.client.change_state('c1', 'stop', force=True)
        self.assertEqual(2, self.state_node().put.call_count)
        self.assertEqual({'action': 'stop', 'force': True,
                          'stateful': False},
                         self.state_node().put.call_args.kwargs['json'])

    # -- connections ------------------------------------------------
    def test_a_read_is_retried_once_on_a_new_connection(self):
        node = self.api.instances.__getitem__.return_value
        node.get.side_effect = [requests.ConnectionError('reset'),
                                _sync({'name': 'c1'})]
        with mock.patch.object(self.client, 'reset',
                               wraps=self.client.reset) as reset:
            self.assertEqual({'name': 'c1'},
                             self.client.get_instance('c1'))
        reset.assert_called_once_with()

    def test_a_read_failing_twice_is_unavailable(self):
        node = self.api.instances.__getitem__.return_value
        node.get.side_effect = requests.Timeout('slow')
        e = self.assertRaises(exception.DaemonUnavailable,
                              self.client.get_instance, 'c1')
        self.assertEqual(2, node.get.call_count)
        self.assertIsInstance(e, nova_exception.HypervisorUnavailable)

    def test_a_write_is_never_repeated_after_a_dropped_connection(self):
        self.api.instances.post.side_effect = requests.ConnectionError('x')
        self.assertRaises(exception.DaemonUnavailable,
                          self.client.create_instance, {'name': 'c1'})
        self.assertEqual(1, self.api.instances.post.call_count)

    def test_no_connection_is_unavailable(self):
        c = client.DaemonClient(endpoint='/nonexistent/unix.socket',
                                api_timeout=1)
        with mock.patch.object(client.pylxd, 'Client',
                               side_effect=lxd_exceptions.
                               ClientConnectionFailed('no socket')):
            e = self.assertRaises(exception.DaemonUnavailable,
                                  c.server_info)
        self.assertIn('/nonexistent/unix.socket', str(e))

    def test_an_endpoint_of_no_known_kind_is_refused(self):
        c = client.DaemonClient(endpoint='tcp://host:8443')
        self.assertRaises(exception.DaemonIncompatible, c._session)

    # -- background operations --------------------------------------
    def test_an_async_call_is_waited_for(self):
        self.api.instances.post.return_value = _async('op7')
        ops = self.api.operations.__getitem__
        ops.return_value.wait.get.return_value = _op('Success',
                                                     metadata={'a': 1})
        self.assertEqual({'a': 1}, self.client.create_instance(
            {'name': 'c1'}))
        ops.assert_called_with('op7')

    def test_a_failed_operation_is_typed_with_its_error(self):
        self.api.instances.post.return_value = _async()
        self.api.operations.__getitem__.return_value.wait.get.\
            return_value = _op('Failure', 'Failed creating instance')
        e = self.assertRaises(exception.DaemonOperationFailed,
                              self.client.create_instance, {'name': 'c1'})
        self.assertIn('Failed creating instance', str(e))
        self.assertIn('create instance c1', str(e))

    def test_an_incus_wait_answering_an_error_reads_the_operation(self):
        # Incus 6.0.4 answers the wait with an error when the operation
        # failed and when the wait's own timeout ran out; the operation
        # itself says which. A busy failure is retried.
        node = self.api.instances.__getitem__.return_value
        node.delete.side_effect = [_async('op1'), _async('op2')]
        op_node = self.api.operations.__getitem__.return_value
        op_node.wait.get.side_effect = [
            _refusal('Failed to create instance delete operation: Instance '
                     'is busy running a "stop" operation', status=500),
            _refusal('context deadline exceeded', status=500),
            _op('Success')]
        op_node.get.side_effect = [
            _op('Failure', 'Failed to create instance delete operation: '
                'Instance is busy running a "stop" operation'),
            _op('Running')]
        self.client.delete_instance('c1')
        self.assertEqual(2, node.delete.call_count)
        self.assertEqual(3, op_node.wait.get.call_count)
        self.assertEqual(1, self.sleep.call_count)

    def test_an_operation_failing_after_a_wait_timeout(self):
        op_node = self.api.operations.__getitem__.return_value
        op_node.wait.get.side_effect = [
            _refusal('context deadline exceeded', status=500),
            _refusal('Restore failed', status=500)]
        op_node.get.side_effect = [_op('Running'),
                                   _op('Failure', 'Restore failed')]
        e = self.assertRaises(exception.DaemonOperationFailed,
                              self.client.wait_operation, 'move', 'op1')
        self.assertIn('Restore failed', str(e))

    def test_an_operation_not_waited_for_is_returned(self):
        self.api.instances.__getitem__.return_value.post.return_value = (
            _async('op3'))
        self.assertEqual('op3', self.client.start_migration_source(
            'c1', live=True)['id'])
        self.api.operations.__getitem__.assert_not_called()

    def test_waiting_on_a_forgotten_operation(self):
        self.api.operations.__getitem__.return_value.wait.get.side_effect = (
            _refusal('not found', lxd_exceptions.NotFound, 404))
        self.assertRaises(KeyError, self.client.wait_operation, 'move',
                          'op1', not_found=KeyError('op1'))
        self.assertRaises(exception.DaemonError, self.client.wait_operation,
                          'move', 'op1')

    def test_a_connection_lost_while_waiting_is_unavailable(self):
        self.api.operations.__getitem__.return_value.wait.get.side_effect = (
            requests.ConnectionError('gone'))
        with mock.patch.object(self.client, 'reset') as reset:
            e = self.assertRaises(exception.DaemonUnavailable,
                                  self.client.wait_operation, 'move', 'op1')
        reset.assert_called_once_with()
        self.assertIn('waiting to move', str(e))

    def test_cancel_never_raises(self):
        self.api.operations.__getitem__.return_value.delete.side_effect = (
            _refusal("This operation can't be cancelled", status=403))
        self.assertFalse(self.client.cancel_operation('op1'))
        self.api.operations.__getitem__.return_value.delete.side_effect = (
            None)
        self.assertTrue(self.client.cancel_operation('op1'))

    # -- the daemon itself ------------------------------------------
    def test_an_untrusted_client_or_missing_extension_is_incompatible(self):
        info = {'auth': 'untrusted',
                'api_extensions': list(client.REQUIRED_API_EXTENSIONS),
                'environment': {'server': 'lxd', 'server_version': '5.0.2'}}
        self.api.get.return_value = _sync(info)
        e = self.assertRaises(exception.DaemonIncompatible,
                              self.client.check_compatible)
        self.assertIn('does not trust this client', str(e))
        info.update(auth='trusted', api_extensions=['instances'])
        e = self.assertRaises(exception.DaemonIncompatible,
                              self.client.check_compatible)
        self.assertIn('resources, projects', str(e))
        info['api_extensions'] = list(client.REQUIRED_API_EXTENSIONS)
        self.assertEqual(info, self.client.check_compatible())

    def test_an_empty_console_is_an_empty_log(self):
        console = self.api.instances.__getitem__.return_value.console
        console.get.side_effect = _refusal(
            'open : no such file or directory', status=500)
        self.assertEqual(b'', self.client.console_log('c1'))
        console.get.side_effect = _refusal('permission denied', status=500)
        self.assertRaises(exception.DaemonError, self.client.console_log,
                          'c1')
