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
"""The privileged entry points check their inputs and run narrow commands."""

from unittest import mock

import fixtures
from oslo_concurrency import processutils
from oslo_config import cfg
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer import privsep
from nova_syscontainer.privsep import linux_net
from nova_syscontainer.virt import network


class EntryPointTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        # In-process: the entry points' own code, no daemon.
        self.useFixture(fixtures.MockPatchObject(
            privsep.net_admin, 'client_mode', False))
        self.execute = self.useFixture(fixtures.MockPatchObject(
            processutils, 'execute', return_value=('', ''))).mock

    def test_commands(self):
        linux_net.add_bridge('qbr1234')
        linux_net.add_veth('qvb1234', 'qvo1234')
        linux_net.set_up('qvb1234', 1450)
        linux_net.set_master('qvb1234', 'qbr1234')
        linux_net.add_htb_root('qvb1234')
        linux_net.set_htb_rate('qvb1234', 8000)
        linux_net.delete_root_qdisc('qvb1234')
        linux_net.delete_link('qvb1234')
        self.assertEqual([
            mock.call('ip', 'link', 'add', 'name', 'qbr1234', 'type',
                      'bridge', check_exit_code=[0, 2]),
            mock.call('ip', 'link', 'add', 'qvb1234', 'type', 'veth',
                      'peer', 'name', 'qvo1234', check_exit_code=[0]),
            mock.call('ip', 'link', 'set', 'qvb1234', 'mtu', '1450',
                      check_exit_code=[0]),
            mock.call('ip', 'link', 'set', 'qvb1234', 'up',
                      check_exit_code=[0]),
            mock.call('ip', 'link', 'set', 'qvb1234', 'master', 'qbr1234',
                      check_exit_code=[0]),
            mock.call('tc', 'qdisc', 'replace', 'dev', 'qvb1234', 'root',
                      'handle', '1:', 'htb', 'default', '1',
                      check_exit_code=[0]),
            mock.call('tc', 'class', 'replace', 'dev', 'qvb1234', 'parent',
                      '1:', 'classid', '1:1', 'htb', 'rate', '8000kbit',
                      check_exit_code=[0]),
            mock.call('tc', 'qdisc', 'del', 'dev', 'qvb1234', 'root',
                      check_exit_code=[0, 1, 2]),
            mock.call('ip', 'link', 'del', 'qvb1234',
                      check_exit_code=[0, 1, 2]),
        ], self.execute.call_args_list)

    def test_names_are_checked_before_anything_runs(self):
        for call, args in [
                (linux_net.add_bridge, ('br0; reboot',)),
                (linux_net.add_veth, ('ok0', 'x' * 16)),
                (linux_net.set_master, ('ok0', '../br')),
                (linux_net.delete_link, ('-force',)),
                (linux_net.delete_link, (None,)),
                (linux_net.set_htb_rate, ('ok0', '1kbit burst 1')),
                (linux_net.set_up, ('ok0', 'mtu 9000')),
                (linux_net.disable_ipv6, ('../../all',)),
                (linux_net.tx_checksum_off, ('qvb1; ethtool',))]:
            self.assertRaises(ValueError, call, *args)
        self.execute.assert_not_called()


class LocalHelperTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.context = mock.Mock(conf=mock.Mock(helper_command=None),
                                 channel=None,
                                 cfg_section=sc_conf.PRIVSEP_GROUP)
        self.seen = []
        self.context.start.side_effect = lambda: self.seen.append(
            cfg.CONF[sc_conf.PRIVSEP_GROUP].helper_command)
        self.useFixture(fixtures.MockPatch(
            'nova_syscontainer.privsep.local_helper',
            return_value='/venv/bin/privsep-helper'))
        self.geteuid = self.useFixture(fixtures.MockPatch(
            'os.geteuid', return_value=0)).mock

    def test_root_starts_with_its_own_helper_for_the_start_only(self):
        self.assertEqual('/venv/bin/privsep-helper',
                         privsep.start_with_local_helper(self.context))
        self.assertEqual(['/venv/bin/privsep-helper'], self.seen)
        self.assertIsNone(cfg.CONF[sc_conf.PRIVSEP_GROUP].helper_command)

    def test_operator_helper_or_non_root_or_running_left_alone(self):
        self.context.conf.helper_command = 'sudo privsep-helper'
        self.assertIsNone(privsep.start_with_local_helper(self.context))
        self.context.conf.helper_command = None
        self.context.channel = object()
        self.assertIsNone(privsep.start_with_local_helper(self.context))
        self.context.channel = None
        self.geteuid.return_value = 1000
        self.assertIsNone(privsep.start_with_local_helper(self.context))
        self.context.start.assert_not_called()


class NetworkErrorsTest(testtools.TestCase):

    def test_a_failed_privileged_call_is_a_vif_plug_failure(self):
        self.useFixture(fixtures.MockPatch(
            'nova_syscontainer.virt.network.initialize'))
        call = mock.Mock(__name__='add_bridge', side_effect=(
            processutils.ProcessExecutionError(stderr='File exists')))
        e = self.assertRaises(exception.VifPlugFailed, network._priv, call,
                              'qbr1')
        self.assertIn('add_bridge', str(e))
        self.assertIn('File exists', str(e))
