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

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from unittest import mock

import fixtures
from oslo_concurrency import processutils
from oslo_config import cfg
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer import privsep
from nova_syscontainer.privsep import criu_host
from nova_syscontainer.privsep import linux_net
from nova_syscontainer.virt import criu_dump
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


# -- criu_host ------------------------------------------------------------

_DUMP = """\
"%s" -c 'import os; os.execv("/bin/sh", ["lxd", "migratedumpsuccess"])' &
echo $! > helper.pid
wait
"""
_HELPER = """\
while :; do sleep 0.2; done
"""


def stuck_dump_tree(test):
    """Real processes shaped as a stuck dump: (criu pid, helper pid).

    A ``criu dump`` (argv exactly that, a shell script) whose child's argv
    is ``lxd migratedumpsuccess``, as LXD 5.0.2's action script runs it.
    Both are ended by the test's cleanups.
    """
    d = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, d)
    with open(os.path.join(d, 'dump'), 'w') as f:
        f.write(_DUMP % sys.executable)
    with open(os.path.join(d, 'migratedumpsuccess'), 'w') as f:
        f.write(_HELPER)
    criu = subprocess.Popen(['criu', 'dump'], executable='/bin/sh', cwd=d)
    test.addCleanup(criu.wait)
    test.addCleanup(criu.kill)
    pid_file = os.path.join(d, 'helper.pid')
    for _ in range(100):
        helper = _read_pid(pid_file)
        if helper and criu_dump.argv(helper)[:2] == ['lxd',
                                                     'migratedumpsuccess']:
            break
        time.sleep(0.05)
    else:
        test.fail('the fake helper did not start')
    test.addCleanup(_kill, helper)
    return criu.pid, helper


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def gone(pid, timeout=5):
    """Whether ``pid`` ended (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/stat' % pid) as f:
                if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


class CriuHostTest(testtools.TestCase):
    """The entry points' own code, in-process; real processes where cheap."""

    def setUp(self):
        super().setUp()
        for context in (privsep.proc_admin, privsep.criu_admin):
            self.useFixture(fixtures.MockPatchObject(
                context, 'client_mode', False))

    def test_pids_are_checked(self):
        for bad in ('1', None, True, 0, 1, -5, 2.0):
            self.assertRaises(ValueError, criu_host.container_tasks, bad)
            self.assertRaises(ValueError, criu_host.end_dump_helper, bad)

    def test_tasks_only_of_a_container_init(self):
        e = self.assertRaises(ValueError, criu_host.container_tasks,
                              os.getpid())
        self.assertIn('not a container init', str(e))
        monitor = ['[lxc monitor] /var/lib/lxd/containers c1']
        self.useFixture(fixtures.MockPatchObject(
            criu_dump, 'argv', side_effect=lambda pid: monitor))
        tasks = criu_host.container_tasks(os.getpid())
        self.assertEqual(os.getpid(), tasks[0]['pid'])

    def test_only_a_dump_helper_is_signalled(self):
        criu, helper = stuck_dump_tree(self)
        # Not helpers: the dump itself, and an ordinary process.
        self.assertFalse(criu_host.end_dump_helper(criu))
        other = subprocess.Popen(['sleep', '30'])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        self.assertFalse(criu_host.end_dump_helper(other.pid))
        self.assertFalse(gone(other.pid, timeout=0.3))
        self.assertFalse(gone(criu, timeout=0.3))
        self.assertTrue(criu_host.end_dump_helper(helper))
        self.assertTrue(gone(helper))
        # Gone (or a zombie no longer named so): nothing to signal.
        self.assertFalse(criu_host.end_dump_helper(helper))

    def test_criu_must_be_named_so_and_root_owned(self):
        for bad in ('/bin/sh', 'sh', None, '/usr/bin/criu-evil'):
            self.assertRaises(ValueError, criu_host.criu_check, bad)
        self.assertRaises(FileNotFoundError, criu_host.criu_check,
                          '/nonexistent/criu')
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        path = os.path.join(d, 'criu')
        with open(path, 'w') as f:
            f.write('#!/bin/sh\necho Looks good.\n')
        os.chmod(path, 0o755)
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)  # nobody's: refused
            self.assertRaises(ValueError, criu_host.criu_check, path)
            os.chown(path, 0, 0)
            os.chmod(path, 0o777)  # anyone may rewrite it: refused
            self.assertRaises(ValueError, criu_host.criu_check, path)
            os.chmod(path, 0o755)
            os.chmod(d, 0o777)  # anyone may replace it: refused
            self.assertRaises(ValueError, criu_host.criu_check, path)
            os.chmod(d, 0o700)
            self.assertEqual((0, 'Looks good.\n'),
                             criu_host.criu_check(path))
        else:
            self.assertRaises(ValueError, criu_host.criu_check, path)
