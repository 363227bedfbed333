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
"""A TCP peer of a test container, in a network namespace of the test's.

The namespace gets one end of a veth pair, whose other end (no address)
joins a port's Linux bridge (qbr), beside the container's NIC. Addresses
come only from TEST-NET-1 (192.0.2.0/24, RFC 5737), and only inside that
namespace and the container's: nothing on the host gets one, and no
traffic leaves the two namespaces.
"""

import os
import subprocess
import sys
import threading
import time

PEER_ADDRESS = '192.0.2.1'
GUEST_ADDRESS = '192.0.2.2'
PREFIX = '/24'

#: Connects once to the guest, prints every line it receives (flushed),
#: then "EOF" or "ERROR <reason>" when the connection ends. It never
#: reconnects: every line after a move came over the same connection.
CLIENT = '''
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.settimeout(float(sys.argv[3]))
print("CONNECTED %s:%d" % s.getsockname(), flush=True)
buf = b""
try:
    while True:
        data = s.recv(4096)
        if not data:
            print("EOF", flush=True)
            break
        buf += data
        while b"\\n" in buf:
            line, buf = buf.split(b"\\n", 1)
            print(line.decode(), flush=True)
except Exception as e:
    print("ERROR %r" % (e,), flush=True)
'''


def _run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          timeout=30).stdout


class Peer(object):
    """A namespace on ``bridge`` and, once connected, the lines received.

    :param tag: a short unique string (the test process's pid) naming
        the namespace and the links.
    """

    def __init__(self, tag, bridge):
        self.netns = 'nscft%s' % tag
        self.host_end = 'nscp%sa' % tag
        self.ns_end = 'nscp%sb' % tag
        self.bridge = bridge
        self.lines = []
        self.proc = None
        self._reader = None

    def create(self):
        self.remove()
        _run('ip', 'netns', 'add', self.netns)
        _run('ip', 'link', 'add', self.host_end, 'type', 'veth', 'peer',
             'name', self.ns_end)
        _run('ip', 'link', 'set', self.ns_end, 'netns', self.netns)
        _run('ip', 'link', 'set', self.host_end, 'master', self.bridge,
             'up')
        ns = ('ip', 'netns', 'exec', self.netns)
        _run(*ns, 'ip', 'link', 'set', 'lo', 'up')
        _run(*ns, 'ip', 'addr', 'add', PEER_ADDRESS + PREFIX, 'dev',
             self.ns_end)
        _run(*ns, 'ip', 'link', 'set', self.ns_end, 'up')

    def connect(self, port, idle_timeout=60):
        """Start the client; it gives up after idle_timeout silent seconds."""
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', self.netns, sys.executable, '-u', '-c',
             CLIENT, GUEST_ADDRESS, str(port), str(idle_timeout)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def numbers(self):
        return [int(line) for line in list(self.lines) if line.isdigit()]

    def ended(self):
        """The client's last word, if the connection ended."""
        for line in list(self.lines):
            if line == 'EOF' or line.startswith('ERROR'):
                return line
        return None

    def wait_for_number_above(self, value, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            numbers = self.numbers()
            if numbers and numbers[-1] > value:
                return numbers[-1]
            if self.ended() or time.monotonic() > deadline:
                raise AssertionError(
                    'no number above %s over the connection (last lines: '
                    '%s)' % (value, self.lines[-5:]))
            time.sleep(0.2)

    def remove(self):
        """Stop the client, remove the links and the namespace (idempotent)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self.proc.stdout.close()
            self._reader.join(10)
        if os.path.exists('/sys/class/net/%s' % self.host_end):
            subprocess.run(['ip', 'link', 'del', self.host_end],
                           capture_output=True, timeout=30)
        if os.path.exists('/run/netns/%s' % self.netns):
            subprocess.run(['ip', 'netns', 'del', self.netns],
                           capture_output=True, timeout=30)


def configure_guest(init_pid, device='eth0'):
    """Give the container's NIC its TEST-NET address (from the host).

    Only the container's network namespace is entered: no process is
    left in the container.
    """
    prefix = ('nsenter', '-t', str(init_pid), '-n')
    _run(*prefix, 'ip', 'link', 'set', device, 'up')
    _run(*prefix, 'ip', 'addr', 'add', GUEST_ADDRESS + PREFIX, 'dev',
         device)


#: A stream of numbers, one every 0.2 s, to whoever connects to PORT.
STREAM = ("sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done "
          "| nc -l -p %d'")
