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
"""The host operations run in real privsep daemons, each with its own caps.

No mock: each daemon is oslo.privsep's ``privsep-helper`` of this
environment, started as nova-compute starts it when it runs as root
(:func:`nova_syscontainer.privsep.start_with_local_helper`); the tests
read each daemon's capabilities from ``/proc`` and what it did from the
host: interfaces from ``/sys`` and ``tc`` (``net_admin``), a real
container's tasks and a signalled process (``proc_admin``), ``criu
check``'s answer (``criu_admin``).
"""

import ctypes
import fcntl
import os
import re
import socket
import struct
import subprocess
import uuid

import psutil
import testtools

from nova_syscontainer import privsep
from nova_syscontainer.privsep import criu_host
from nova_syscontainer.privsep import linux_net
from nova_syscontainer.virt import checkpoint_check
from tests.functional import daemon
from tests.unit import test_privsep as unit

CAP_KILL = 5
CAP_NET_ADMIN = 12
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21


def _caps(pid, field):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1], 16)
    raise AssertionError('no %s in /proc/%d/status' % (field, pid))


#: ``ss -xpH`` line: local inode, peer inode, the process holding it.
_SS_LINE = re.compile(r'\s(\d+)\s+\S+\s+(\d+)\s+users:\(\("[^"]*",pid=(\d+)')


def _daemon_pid(context):
    """The pid of the process at the other end of the context's socket.

    The helper detaches the daemon (it is not our child), so it is found as
    the holder of the socket whose peer is ours (``ss -xp``). (The socket
    is oslo.privsep's own attribute; a test may reach for it.)
    """
    ours = os.fstat(context.channel.writer.writesock.fileno()).st_ino
    out = subprocess.run(['ss', '-xpH'], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        match = _SS_LINE.search(line)
        if match and int(match.group(2)) == ours:
            return int(match.group(3))
    raise AssertionError('no process holds the peer of socket %d' % ours)


def _assert_daemon_caps(test, context, caps):
    """``context``'s daemon is another process holding exactly ``caps``."""
    pid = _daemon_pid(context)
    test.assertNotEqual(os.getpid(), pid)
    test.assertIn(context.pypath, ' '.join(psutil.Process(pid).cmdline()))
    mask = sum(1 << cap for cap in caps)
    test.assertEqual(mask, _caps(pid, 'CapEff'))
    test.assertEqual(mask, _caps(pid, 'CapPrm'))
    return pid


def tx_checksumming(name):
    """Whether TX checksum offload is on (ETHTOOL_GTXCSUM, as root).

    Read with the ioctl itself: the host has no ethtool program.
    """
    value = ctypes.create_string_buffer(struct.pack('II', 0x16, 0))
    ifreq = struct.pack('16sP16x', name.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), 0x8946, ifreq)
    return bool(struct.unpack('II', value.raw[:8])[1])


class PrivsepDaemonTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest('needs root, as nova-compute on this host')
        privsep.start_with_local_helper(privsep.net_admin)
        self.tag = uuid.uuid4().hex[:8]
        self.bridge, self.inner, self.outer = (
            p + self.tag for p in ('qbp', 'qbi', 'qbo'))
        for dev in (self.inner, self.bridge):
            self.addCleanup(subprocess.run, ['ip', 'link', 'del', dev],
                            stderr=subprocess.DEVNULL)

    def test_daemon_holds_only_cap_net_admin(self):
        linux_net.delete_link('qbnone' + self.tag)  # the daemon is up
        _assert_daemon_caps(self, privsep.net_admin, [CAP_NET_ADMIN])

    def test_ports_host_side_made_and_removed_through_it(self):
        linux_net.add_bridge(self.bridge)
        linux_net.add_bridge(self.bridge)  # idempotent
        linux_net.disable_ipv6(self.bridge)
        linux_net.set_up(self.bridge)
        linux_net.add_veth(self.inner, self.outer)
        linux_net.set_up(self.inner, 1400)
        linux_net.set_master(self.inner, self.bridge)
        linux_net.add_htb_root(self.inner)
        linux_net.set_htb_rate(self.inner, 8000)
        self.assertTrue(tx_checksumming(self.inner))
        linux_net.tx_checksum_off(self.inner)

        sys_net = '/sys/class/net'
        self.assertEqual(self.bridge, os.path.basename(os.readlink(
            os.path.join(sys_net, self.inner, 'master'))))
        with open(os.path.join(sys_net, self.inner, 'mtu')) as f:
            self.assertEqual('1400', f.read().strip())
        with open('/proc/sys/net/ipv6/conf/%s/disable_ipv6'
                  % self.bridge) as f:
            self.assertEqual('1', f.read().strip())
        classes = subprocess.run(
            ['tc', 'class', 'show', 'dev', self.inner],
            check=True, capture_output=True, text=True).stdout
        self.assertIn('class htb 1:1 root prio 0 rate 8Mbit', classes)
        self.assertFalse(tx_checksumming(self.inner))

        linux_net.delete_root_qdisc(self.inner)
        linux_net.delete_link(self.inner)
        linux_net.delete_link(self.inner)  # gone already: fine
        linux_net.delete_link(self.bridge)
        for dev in (self.inner, self.outer, self.bridge):
            self.assertFalse(os.path.exists(os.path.join(sys_net, dev)))

    def test_the_daemon_refuses_what_is_not_an_interface_name(self):
        self.assertRaises(ValueError, linux_net.delete_link, 'lo; reboot')


class CriuHostDaemonTest(testtools.TestCase):
    """The checkpoint pre-check's reads, CRIU helpers, ``criu check``."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest('needs root, as nova-compute on this host')
        for context in (privsep.proc_admin, privsep.criu_admin):
            privsep.ready(context)

    def test_proc_daemon_holds_only_ptrace_and_kill(self):
        _assert_daemon_caps(self, privsep.proc_admin,
                            [CAP_SYS_PTRACE, CAP_KILL])

    def test_a_containers_tasks_read_through_it(self):
        lxd = self.useFixture(daemon.DaemonFixture())
        name = daemon.NAME_PREFIX + 'privsep-' + uuid.uuid4().hex[:6]
        lxd.create_raw(name, lxd.import_image())
        init = lxd.init_pid(name)
        tasks = criu_host.container_tasks(init)
        self.assertEqual(init, tasks[0]['pid'])
        self.assertEqual(psutil.Process(init).name(), tasks[0]['comm'])
        self.assertEqual(os.readlink('/proc/%d/ns/mnt' % init),
                         tasks[0]['namespaces']['mnt'])
        # What the daemon returns is what the pure check judges.
        checkpoint_check.check(name, tasks)
        # Not a container's init: refused, nothing read.
        self.assertRaises(ValueError, criu_host.container_tasks, os.getpid())
        self.assertRaises(ValueError, criu_host.container_tasks, 1)

    def test_only_a_dump_helper_is_ended_through_it(self):
        criu, helper = unit.stuck_dump_tree(self)
        self.assertFalse(criu_host.end_dump_helper(criu))
        self.assertFalse(criu_host.end_dump_helper(_daemon_pid(
            privsep.proc_admin)))
        self.assertFalse(unit.gone(helper, timeout=0.3))
        self.assertTrue(criu_host.end_dump_helper(helper))
        self.assertTrue(unit.gone(helper))

    def test_criu_daemon_holds_only_sys_admin_and_net_admin(self):
        _assert_daemon_caps(self, privsep.criu_admin,
                            [CAP_SYS_ADMIN, CAP_NET_ADMIN])
        returncode, output = criu_host.criu_check('criu')
        self.assertEqual(0, returncode, output)
        self.assertIn('Looks good.', output)
        self.assertRaises(ValueError, criu_host.criu_check, '/bin/sh')
