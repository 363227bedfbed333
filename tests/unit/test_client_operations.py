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
"""The client's bound on background operations, with a scripted daemon."""

import time
from unittest import mock

from pylxd import exceptions as lxd_exceptions
import testtools

from nova_syscontainer import exception
from nova_syscontainer.virt import client


class ScriptedOperation(object):
    """An operation that runs for ``runs`` polls, then ends as ``end``."""

    def __init__(self, runs, end='Success', cancellable=True):
        self.runs, self.end, self.cancellable = runs, end, cancellable
        self.polls = 0
        self.cancelled = 0
        self.wait = mock.Mock()
        self.wait.get.side_effect = self._poll

    def _poll(self, params=None, timeout=None):
        time.sleep(0.2)
        self.polls += 1
        status = 'Running' if self.polls <= self.runs else self.end
        return mock.Mock(**{'json.return_value': {
            'metadata': {'status': status, 'err': ''}}})

    def delete(self):
        self.cancelled += 1
        if not self.cancellable:
            response = mock.Mock(status_code=403)
            response.json.return_value = {
                'error': "This operation can't be cancelled"}
            raise lxd_exceptions.LXDAPIException(response)
        self.runs = 0
        self.end = 'Cancelled'


class OperationBoundTest(testtools.TestCase):

    def client(self, op):
        c = client.DaemonClient(endpoint='/nonexistent/unix.socket',
                                operation_timeout=1, api_timeout=1)
        c._lxd = mock.Mock()
        c._lxd.api.operations.__getitem__ = mock.Mock(return_value=op)
        return c

    def test_an_operation_that_ends_in_time_is_waited_for(self):
        op = ScriptedOperation(runs=2)
        self.assertEqual({}, self.client(op).wait_operation('create', 'op'))
        self.assertEqual(0, op.cancelled)

    def test_a_cancellable_operation_is_cancelled_at_the_bound(self):
        op = ScriptedOperation(runs=1000)
        e = self.assertRaises(exception.DaemonTimeout,
                              self.client(op).wait_operation, 'start', 'op')
        self.assertEqual(1, op.cancelled)
        self.assertLess(op.polls, 10)
        self.assertEqual('timed out', e.kwargs['reason'])

    def test_an_uncancellable_one_is_waited_for_to_its_end(self):
        # A create the daemon cannot cancel ends after the bound: the
        # timeout is raised only once it has ended, so that the caller's
        # clean-up finds the container it made.
        op = ScriptedOperation(runs=7, cancellable=False)
        e = self.assertRaises(exception.DaemonTimeout,
                              self.client(op).wait_operation, 'create', 'op')
        self.assertEqual(1, op.cancelled)
        self.assertEqual(8, op.polls)
        self.assertIn('could not cancel it and it ended (Success)',
                      e.kwargs['reason'])

    def test_the_grace_is_bounded_too(self):
        op = ScriptedOperation(runs=1000, cancellable=False)
        e = self.assertRaises(exception.DaemonTimeout,
                              self.client(op).wait_operation, 'create', 'op')
        # Twice the bound (polls of 0.2 s), give or take one: never forever.
        self.assertLess(op.polls, 16)
        self.assertEqual('timed out', e.kwargs['reason'])
