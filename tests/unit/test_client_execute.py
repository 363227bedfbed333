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
"""DaemonClient.execute's bound and error mapping (pylxd mocked)."""

import threading
import unittest
from unittest import mock

from pylxd import exceptions as lxd_exceptions

from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client


def api_error(message):
    response = mock.Mock(status_code=200)
    response.json.return_value = {'metadata': {'err': message}}
    return lxd_exceptions.LXDAPIException(response)


class ExecuteTest(unittest.TestCase):

    def setUp(self):
        self.client = daemon_client.DaemonClient(
            endpoint='/nonexistent/unix.socket', project='default',
            api_timeout=5)
        self.lxd = mock.Mock()
        self.client._connect = mock.Mock(return_value=self.lxd)
        self.execute = self.lxd.instances.get.return_value.execute

    def test_result_and_stdin(self):
        self.execute.return_value = mock.Mock(exit_code=0, stdout='o',
                                              stderr='e')
        self.assertEqual((0, 'o', 'e'), self.client.execute(
            'c1', ('chpasswd',), b'root:pw\n'))
        self.lxd.instances.get.assert_called_once_with('c1')
        self.execute.assert_called_once_with(['chpasswd'],
                                             stdin_payload=b'root:pw\n')

    def test_command_not_found(self):
        self.execute.side_effect = api_error('Command not found')
        self.assertRaises(exception.GuestCommandNotFound,
                          self.client.execute, 'c1', ('chpasswd',), b'')

    def test_other_refusal(self):
        self.execute.side_effect = api_error('Instance is not running')
        self.assertRaises(exception.DaemonError,
                          self.client.execute, 'c1', ('chpasswd',), b'')

    def test_bounded(self):
        release = threading.Event()
        self.addCleanup(release.set)
        self.execute.side_effect = lambda *a, **k: release.wait(30)
        e = self.assertRaises(exception.DaemonTimeout, self.client.execute,
                              'c1', ('chpasswd',), b'', timeout=0.2)
        self.assertIn('within 0.2 seconds', str(e))

    def assertRaises(self, exc, func, *args, **kwargs):
        with super().assertRaises(exc) as caught:
            func(*args, **kwargs)
        return caught.exception
