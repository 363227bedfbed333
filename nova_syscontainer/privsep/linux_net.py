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
"""Privileged network calls of the host side of ports (CAP_NET_ADMIN).

Each entry point does one narrow thing to one interface whose name it
checks first: the daemon must not become a way to run any ``ip`` or
``tc`` command. Reading (``ip link show``, ``tc qdisc show``) needs no
privilege and stays in :mod:`nova_syscontainer.virt.network`.

The commands are ``ip`` and ``tc`` run by the privsep daemon, as in Nova's
own ``nova.privsep.linux_net``; their failures come back as
``processutils.ProcessExecutionError``. Checksum offload is set with the
ethtool ioctl itself, so a host needs no ``ethtool`` program.
"""

import ctypes
import fcntl
import re
import socket
import struct

from oslo_concurrency import processutils

from nova_syscontainer import privsep

#: Linux interface names (IFNAMSIZ - 1), as vif.IFNAME.
_IFNAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$')
#: linux/sockios.h and linux/ethtool.h.
_SIOCETHTOOL = 0x8946
_ETHTOOL_STXCSUM = 0x00000017


def _check(*names):
    for name in names:
        if not isinstance(name, str) or not _IFNAME.match(name):
            raise ValueError('not an interface name: %r' % (name,))


def _ip(*args, ok=(0,)):
    processutils.execute('ip', *args, check_exit_code=list(ok))


def _tc(*args, ok=(0,)):
    processutils.execute('tc', *args, check_exit_code=list(ok))


@privsep.net_admin.entrypoint
def add_bridge(name):
    """``ip link add <name> type bridge`` (2: it exists already)."""
    _check(name)
    _ip('link', 'add', 'name', name, 'type', 'bridge', ok=(0, 2))


@privsep.net_admin.entrypoint
def disable_ipv6(name):
    """No address on ``name``, not even an IPv6 link-local one."""
    _check(name)
    with open('/proc/sys/net/ipv6/conf/%s/disable_ipv6' % name, 'w') as f:
        f.write('1')


@privsep.net_admin.entrypoint
def add_veth(inner, outer):
    """A veth pair ``inner`` <-> ``outer``."""
    _check(inner, outer)
    _ip('link', 'add', inner, 'type', 'veth', 'peer', 'name', outer)


@privsep.net_admin.entrypoint
def set_up(name, mtu=None):
    """Set ``name`` up, with ``mtu`` first when one is given."""
    _check(name)
    if mtu:
        _ip('link', 'set', name, 'mtu', str(int(mtu)))
    _ip('link', 'set', name, 'up')


@privsep.net_admin.entrypoint
def set_master(name, bridge):
    """Put ``name`` in ``bridge``."""
    _check(name, bridge)
    _ip('link', 'set', name, 'master', bridge)


@privsep.net_admin.entrypoint
def delete_link(name):
    """Delete ``name``; one that is gone already is fine."""
    _check(name)
    _ip('link', 'del', name, ok=(0, 1, 2))


@privsep.net_admin.entrypoint
def add_htb_root(name):
    """An HTB root qdisc ``1:`` sending unclassified traffic to ``1:1``."""
    _check(name)
    _tc('qdisc', 'replace', 'dev', name, 'root', 'handle', '1:', 'htb',
        'default', '1')


@privsep.net_admin.entrypoint
def set_htb_rate(name, kbit):
    """Class ``1:1`` of ``name``'s HTB root at ``kbit`` kbit/s."""
    _check(name)
    _tc('class', 'replace', 'dev', name, 'parent', '1:', 'classid', '1:1',
        'htb', 'rate', '%dkbit' % int(kbit))


@privsep.net_admin.entrypoint
def delete_root_qdisc(name):
    """Remove ``name``'s root qdisc (2: there is none)."""
    _check(name)
    _tc('qdisc', 'del', 'dev', name, 'root', ok=(0, 1, 2))


@privsep.net_admin.entrypoint
def tx_checksum_off(name):
    """TX checksum offload off on ``name`` (``ethtool -K <name> tx off``).

    The ``SIOCETHTOOL`` ioctl with ``ETHTOOL_STXCSUM`` and a value of 0,
    the request the ethtool program sends for ``tx off``.
    """
    _check(name)
    value = ctypes.create_string_buffer(
        struct.pack('II', _ETHTOOL_STXCSUM, 0))
    # struct ifreq: the name, then ifr_data pointing at the request; padded
    # to the kernel's 40 bytes.
    ifreq = struct.pack('16sP16x', name.encode('ascii'),
                        ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, ifreq)
