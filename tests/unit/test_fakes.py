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
"""The shared fakes keep to the real client's signatures."""

import unittest

from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client
from tests.unit import fakes


class FakesTest(unittest.TestCase):

    def test_a_call_the_real_client_would_refuse_raises(self):
        daemon = fakes.daemon(instances={'c1': fakes.record('c1')})
        self.assertRaises(TypeError, daemon.change_state, 'c1')
        self.assertRaises(TypeError, daemon.change_state, 'c1', 'stop',
                          graceful=True)
        self.assertRaises(TypeError, daemon.get_state, 'c1', None, 'extra')
        self.assertRaises(AttributeError, getattr, daemon, 'stop_instance')
        # The mixins' calls are there too.
        daemon.execute('c1', ('true',), b'')
        daemon.publish_image({'source': {}})

    def test_state_changes_act_on_the_records(self):
        daemon = fakes.daemon(instances={'c1': fakes.record('c1')})
        daemon.change_state('c1', 'stop', stateful=True)
        self.assertEqual(daemon_client.STOPPED,
                         daemon.get_instance('c1')['status'])
        self.assertTrue(daemon.get_instance('c1')['stateful'])
        daemon.delete_instance('c1')
        self.assertIsNone(daemon.find_instance('c1'))
        self.assertFalse(daemon.instance_exists('c1'))
        self.assertRaises(exception.DaemonError, daemon.get_instance, 'c1')
        self.assertRaises(KeyError, daemon.get_instance, 'c1',
                          not_found=KeyError('c1'))
        self.assertEqual([('stop', 'c1'), ('delete', 'c1')], daemon.calls)
