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
"""The host's network changes run in a real privsep daemon, CAP_NET_ADMIN only.

No mock: the daemon is oslo.privsep's ``privsep-helper`` of this
environment, started as nova-compute starts it when it runs as root
(:func:`nova_syscontainer.privsep.start_with_local_helper`); the test reads
the daemon's capabilities from ``/proc`` and the interfaces it made from
``/sys`` and ``tc``.
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
from nova_syscontainer.privsep import linux_net

CAP_NET_ADMIN = 12


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
        pid = _daemon_pid(privsep.net_admin)
        self.assertNotEqual(os.getpid(), pid)
        self.assertIn(privsep.net_admin.pypath,
                      ' '.join(psutil.Process(pid).cmdline()))
        self.assertEqual(1 << CAP_NET_ADMIN, _caps(pid, 'CapEff'))
        self.assertEqual(1 << CAP_NET_ADMIN, _caps(pid, 'CapPrm'))

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
