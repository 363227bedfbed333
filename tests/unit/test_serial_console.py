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
"""Serial console listeners and bridges, on loopback with a fake console.

The daemon's console is replaced by :class:`FakeStream` (the shape of
client_console.ConsoleStream); the listener, its port from Nova's
allocator and the TCP side are real.
"""

import queue
import socket
import threading
import time
import uuid

from nova.console import serial
from nova import exception as nova_exception
from oslo_config import fixture as config_fixture
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import serial_console

HOST = '127.0.0.1'


class FakeStream(object):
    """One console attachment: what was sent, and output to give."""

    def __init__(self, busy=False):
        self.sent = queue.Queue()
        self.output = queue.Queue()
        self._closed = threading.Event()
        self.busy = busy

    @property
    def closed(self):
        return self._closed.is_set()

    def recv(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.busy:
            self._closed.set()
            raise exception.ConsoleBusy(endpoint='/sock', action='attach',
                                        reason='Failed running forkconsole')
        while not self._closed.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return b''
            try:
                data = self.output.get(timeout=0.05)
            except queue.Empty:
                continue
            if data is None:
                break
            return data
        self._closed.set()
        return b''

    def send(self, data):
        if self._closed.is_set():
            return False
        self.sent.put(data)
        return True

    def close(self):
        self._closed.set()


class FakeClient(object):
    """open_console hands out FakeStreams, one attachment at a time."""

    def __init__(self):
        self.streams = []
        self.error = None
        self.overlaps = 0
        self.busy = 0

    def open_console(self, name, not_found=None):
        if self.error is not None:
            raise self.error
        if any(not s.closed for s in self.streams):
            self.overlaps += 1
        stream = FakeStream(busy=self.busy > 0)
        self.busy -= 1
        self.streams.append(stream)
        return stream


class Instance(object):
    def __init__(self):
        self.uuid = str(uuid.uuid4())


def running(name='c1'):
    return {'name': name, 'status': 'Running'}


def wait(predicate, timeout=10, what='condition'):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.02)


def read_until(conn, needle, timeout=10):
    conn.settimeout(timeout)
    data = b''
    while needle not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def at_eof(conn, timeout=10):
    conn.settimeout(timeout)
    try:
        while True:
            if not conn.recv(4096):
                return True
    except ConnectionResetError:
        return True


class SerialConsoleTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(sc_conf.CONF))
        self.conf.config(enabled=True, proxyclient_address=HOST,
                         port_range='10000:20000', group='serial_console')
        self.client = FakeClient()
        self.consoles = serial_console.Consoles(self.client)
        self.addCleanup(self.consoles.close_all)
        self.patch(serial_console, 'POLL', 0.05)

    def connect(self, port):
        conn = socket.create_connection((HOST, port), timeout=10)
        self.addCleanup(conn.close)
        return conn

    def test_one_stable_port_per_instance(self):
        a, b = Instance(), Instance()
        first = self.consoles.get(a, running('a'))
        self.assertEqual((HOST, first.port),
                         (first.host, self.consoles.get(a, running('a')).port))
        other = self.consoles.get(b, running('b'))
        self.assertNotEqual(first.port, other.port)
        self.assertIn((HOST, first.port), serial.ALLOCATED_PORTS)
        self.assertTrue(10000 <= first.port < 20000)

    def test_bytes_both_ways(self):
        inst = Instance()
        conn = self.connect(self.consoles.get(inst, running()).port)
        conn.sendall(b'echo hi\n')
        wait(lambda: self.client.streams, what='an attachment')
        stream = self.client.streams[0]
        self.assertEqual(b'echo hi\n', stream.sent.get(timeout=10))
        stream.output.put(b'hi\r\n# ')
        self.assertIn(b'hi\r\n# ', read_until(conn, b'# '))

    def test_close_releases_the_port_and_ends_the_client(self):
        inst = Instance()
        port = self.consoles.get(inst, running()).port
        conn = self.connect(port)
        wait(lambda: self.client.streams, what='an attachment')
        self.consoles.close(inst)
        self.assertTrue(at_eof(conn))
        self.assertTrue(self.client.streams[0].closed)
        self.assertNotIn((HOST, port), serial.ALLOCATED_PORTS)
        self.assertRaises(OSError, socket.create_connection, (HOST, port),
                          timeout=2)
        self.assertIsNone(self.consoles.port(inst))
        # Closing again, or an instance never seen, is fine.
        self.consoles.close(inst)
        self.consoles.close(Instance())

    def test_clients_in_turn_the_newest_wins(self):
        inst = Instance()
        port = self.consoles.get(inst, running()).port
        first = self.connect(port)
        wait(lambda: len(self.client.streams) == 1, what='attachment 1')
        second = self.connect(port)
        self.assertTrue(at_eof(first))
        wait(lambda: len(self.client.streams) == 2, what='attachment 2')
        self.assertTrue(self.client.streams[0].closed)
        self.assertEqual(0, self.client.overlaps,
                         'the old attachment ended before the new one')
        second.sendall(b'x')
        self.assertEqual(b'x', self.client.streams[1].sent.get(timeout=10))
        # And after that client leaves, another one still gets in.
        second.close()
        wait(lambda: self.client.streams[1].closed, what='detach')
        third = self.connect(port)
        third.sendall(b'y')
        wait(lambda: len(self.client.streams) == 3, what='attachment 3')
        self.assertEqual(b'y', self.client.streams[2].sent.get(timeout=10))

    def test_console_end_closes_the_client_listener_stays(self):
        inst = Instance()
        port = self.consoles.get(inst, running()).port
        conn = self.connect(port)
        wait(lambda: self.client.streams, what='an attachment')
        self.client.streams[0].output.put(None)  # the container stopped
        self.assertTrue(at_eof(conn))
        self.assertEqual(port, self.consoles.get(inst, running()).port)

    def test_a_busy_console_is_attached_again(self):
        self.client.busy = 2
        conn = self.connect(self.consoles.get(Instance(), running()).port)
        wait(lambda: len(self.client.streams) == 3, what='three attempts')
        conn.sendall(b'x')
        self.assertEqual(b'x', self.client.streams[2].sent.get(timeout=10))

    def test_a_console_busy_for_too_long_is_told(self):
        self.patch(serial_console, 'ATTACH_TIMEOUT', 0.2)
        self.client.busy = 1000
        conn = self.connect(self.consoles.get(Instance(), running()).port)
        self.assertIn(b'forkconsole', read_until(conn, b']\r\n'))
        self.assertTrue(at_eof(conn))

    def test_first_bytes_before_the_pumps_reach_the_client(self):
        def output_first(name, not_found=None):
            stream = FakeStream()
            stream.output.put(b'login: ')
            self.client.streams.append(stream)
            return stream
        self.client.open_console = output_first
        conn = self.connect(self.consoles.get(Instance(), running()).port)
        self.assertEqual(b'login: ', read_until(conn, b': '))

    def test_daemon_refusal_is_told_to_the_client(self):
        self.client.error = exception.DaemonError(
            endpoint='/sock', action='open the console of c1',
            reason='Container is not running')
        conn = self.connect(self.consoles.get(Instance(), running()).port)
        data = read_until(conn, b']\r\n')
        self.assertIn(b'console unavailable', data)
        self.assertIn(b'Container is not running', data)
        self.assertTrue(at_eof(conn))

    def test_not_running_is_not_ready_and_closes_the_listener(self):
        inst = Instance()
        port = self.consoles.get(inst, running()).port
        for status in ('Stopped', 'Error'):
            self.assertRaises(nova_exception.InstanceNotReady,
                              self.consoles.get, inst,
                              {'name': 'c1', 'status': status})
        self.assertIsNone(self.consoles.port(inst))
        self.assertNotIn((HOST, port), serial.ALLOCATED_PORTS)

    def test_frozen_keeps_its_console(self):
        inst = Instance()
        port = self.consoles.get(inst, running()).port
        self.assertEqual(port, self.consoles.get(
            inst, {'name': 'c1', 'status': 'Frozen'}).port)

    def test_disabled(self):
        self.conf.config(enabled=False, group='serial_console')
        self.assertRaises(nova_exception.ConsoleTypeUnavailable,
                          self.consoles.get, Instance(), running())

    def test_another_container_name_gets_a_new_listener(self):
        # A rebuild or an evacuation back may rename nothing, but a
        # listener never bridges to a container it was not made for.
        inst = Instance()
        old = self.consoles.get(inst, running('c1')).port
        new = self.consoles.get(inst, running('c2')).port
        self.assertNotIn((HOST, old), serial.ALLOCATED_PORTS)
        self.assertIn((HOST, new), serial.ALLOCATED_PORTS)

    def test_port_taken_by_someone_else_is_skipped(self):
        self.conf.config(port_range='%d:%d' % self._free_range(),
                         group='serial_console')
        start = int(sc_conf.CONF.serial_console.port_range.split(':')[0])
        squatter = socket.socket()
        self.addCleanup(squatter.close)
        squatter.bind((HOST, start))
        squatter.listen(1)
        self.assertEqual(start + 1,
                         self.consoles.get(Instance(), running()).port)

    def test_exhausted_range(self):
        low, _high = self._free_range()
        self.conf.config(port_range='%d:%d' % (low, low + 1),
                         group='serial_console')
        self.consoles.get(Instance(), running('a'))
        self.assertRaises(nova_exception.SocketPortRangeExhaustedException,
                          self.consoles.get, Instance(), running('b'))

    def _free_range(self):
        for low in range(21000, 30000, 10):
            try:
                for port in range(low, low + 3):
                    s = socket.socket()
                    s.bind((HOST, port))
                    s.close()
            except OSError:
                continue
            return low, low + 3
        self.skipTest('no three free ports in a row')
