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
"""The client layer's console: request, websockets, TLS, the stream."""

import base64
import hashlib
import os
import socket
import ssl
import threading
import time
from unittest import mock

import fixtures
import testtools
import websocket

from nova_syscontainer import exception
from nova_syscontainer.virt import client
from nova_syscontainer.virt import client_console

OP = {'id': 'op-1', 'class': 'websocket',
      'metadata': {'fds': {'0': 'data-secret', 'control': 'ctl-secret'}}}
_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


class OpenConsoleTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.client = client.DaemonClient(endpoint='/nonexistent/sock',
                                          project='default')
        self.call = self.useFixture(fixtures.MockPatchObject(
            self.client, 'call', return_value=OP)).mock
        self.cancel = self.useFixture(fixtures.MockPatchObject(
            self.client, 'cancel_operation')).mock

    def test_asks_for_the_console_and_opens_both_websockets(self):
        with mock.patch.object(self.client, '_operation_websocket',
                               side_effect=['data-ws', 'ctl-ws']) as ows:
            stream = self.client.open_console('c1')
        args, kwargs = self.call.call_args
        self.assertEqual('post', args[1])
        self.assertEqual({'type': 'console', 'width': 80, 'height': 24},
                         kwargs['json'])
        self.assertFalse(kwargs['wait'])
        self.assertEqual(
            [mock.call(mock.ANY, 'op-1', 'data-secret'),
             mock.call(mock.ANY, 'op-1', 'ctl-secret')],
            ows.call_args_list)
        self.assertEqual('op-1', stream.operation_id)

    def test_an_answer_without_websockets_is_a_daemon_error(self):
        self.call.return_value = {'id': 'op-1', 'metadata': {}}
        e = self.assertRaises(exception.DaemonError,
                              self.client.open_console, 'c1')
        self.assertIn('no console websockets', str(e))

    def test_a_failed_websocket_closes_the_other_and_cancels(self):
        data_ws = mock.Mock(spec=websocket.WebSocket)
        failure = exception.DaemonUnavailable(endpoint='/s', reason='gone')
        with mock.patch.object(self.client, '_operation_websocket',
                               side_effect=[data_ws, failure]):
            self.assertRaises(exception.DaemonUnavailable,
                              self.client.open_console, 'c1')
        data_ws.close.assert_called_once_with(timeout=mock.ANY)
        self.cancel.assert_called_once_with('op-1')

    def test_unreachable_socket_is_unavailable(self):
        self.client.api_timeout = 1
        e = self.assertRaises(exception.DaemonUnavailable,
                              self.client._operation_websocket, 'open it',
                              'op-1', 's')
        self.assertIn('open it', str(e))


class TlsTest(testtools.TestCase):

    def make(self, **kwargs):
        return client.DaemonClient(endpoint='https://127.0.0.1:8443',
                                   project='default', **kwargs)

    def test_pinned_certificate_is_the_only_authority(self):
        path = os.path.join(os.path.dirname(__file__), 'data',
                            'console-test-ca.pem')
        context = self.make(server_cert=path)._tls_context()
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)
        self.assertFalse(context.check_hostname)
        self.assertEqual(1, len(context.get_ca_certs()))

    def test_insecure_verifies_nothing(self):
        context = self.make(insecure=True)._tls_context()
        self.assertEqual(ssl.CERT_NONE, context.verify_mode)

    def test_default_verifies_host_names(self):
        context = self.make(insecure=False, server_cert='')._tls_context()
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)
        self.assertTrue(context.check_hostname)


class FakeWebsocketDaemon(object):
    """A unix socket answering one websocket handshake, then frames."""

    def __init__(self, path, frames):
        self.path = path
        self.request = b''
        self.received = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(2)
        self._frames = frames
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        conn, _ = self._sock.accept()
        conn.settimeout(10)
        with conn:
            while b'\r\n\r\n' not in self.request:
                self.request += conn.recv(4096)
            key = [line.split(b':', 1)[1].strip()
                   for line in self.request.split(b'\r\n')
                   if line.lower().startswith(b'sec-websocket-key')][0]
            accept = base64.b64encode(hashlib.sha1(
                key + _GUID.encode()).digest())
            conn.sendall(b'HTTP/1.1 101 Switching Protocols\r\n'
                         b'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                         b'Sec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
            for frame in self._frames:
                conn.sendall(websocket.ABNF.create_frame(
                    frame, websocket.ABNF.OPCODE_BINARY).format()
                    if frame is not None else websocket.ABNF.create_frame(
                        b'\x03\xe8', websocket.ABNF.OPCODE_CLOSE).format())
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    self.received.append(data)
            except OSError:
                pass

    def close(self):
        self._sock.close()


class UnixWebsocketTest(testtools.TestCase):

    def test_console_bytes_over_the_unix_socket(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 's')
        daemon = FakeWebsocketDaemon(path, [b'login: ', None])
        self.addCleanup(daemon.close)
        c = client.DaemonClient(endpoint=path, project='default',
                                api_timeout=10)
        ws = c._operation_websocket('open', 'op/1', 'a&b')
        stream = client_console.ConsoleStream(ws, mock.Mock(), 'op/1')
        self.assertEqual(b'login: ', stream.recv())
        self.assertTrue(stream.send(b'root\n'))
        # The daemon's close frame ends the stream.
        self.assertEqual(b'', stream.recv())
        self.assertTrue(stream.closed)
        self.assertFalse(stream.send(b'more'))
        first_line = daemon.request.split(b'\r\n')[0]
        self.assertEqual(
            b'GET /1.0/operations/op%2F1/websocket?secret=a%26b HTTP/1.1',
            first_line)
        self.assertNotIn(b'Origin:', daemon.request)


class ConsoleStreamTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.data = mock.Mock(spec=websocket.WebSocket)
        self.control = mock.Mock(spec=websocket.WebSocket)
        self.stream = client_console.ConsoleStream(self.data, self.control,
                                                   'op-1')

    def test_timeouts_are_polls(self):
        self.data.recv_data.side_effect = [
            websocket.WebSocketTimeoutException(),
            (websocket.ABNF.OPCODE_BINARY, b''),
            (websocket.ABNF.OPCODE_BINARY, b'abc')]
        self.assertEqual(b'abc', self.stream.recv())

    def test_a_dropped_connection_ends_it_and_closes_both(self):
        self.data.recv_data.side_effect = ConnectionResetError()
        self.assertEqual(b'', self.stream.recv())
        self.data.close.assert_called_once_with(timeout=mock.ANY)
        self.control.close.assert_called_once_with(timeout=mock.ANY)
        self.stream.close()
        self.data.close.assert_called_once_with(timeout=mock.ANY)

    def test_send_failure_ends_it(self):
        self.data.send_binary.side_effect = (
            websocket.WebSocketConnectionClosedException())
        self.assertFalse(self.stream.send(b'x'))
        self.assertTrue(self.stream.closed)

    def test_a_refusal_to_attach_is_console_busy(self):
        self.data.recv_data.return_value = (
            websocket.ABNF.OPCODE_BINARY,
            b'Error: Failed running forkconsole: "attaching to the '
            b'container failed"\n')
        e = self.assertRaises(exception.ConsoleBusy, self.stream.recv)
        self.assertIn('attaching to the container failed', str(e))
        self.assertTrue(self.stream.closed)

    def test_the_marker_later_is_only_output(self):
        self.data.recv_data.side_effect = [
            (websocket.ABNF.OPCODE_BINARY, b'login: '),
            (websocket.ABNF.OPCODE_BINARY, b'Failed running forkconsole')]
        self.assertEqual(b'login: ', self.stream.recv())
        self.assertEqual(b'Failed running forkconsole', self.stream.recv())

    def test_recv_with_a_timeout(self):
        self.data.recv_data.side_effect = websocket.WebSocketTimeoutException()
        self.patch(client_console, 'POLL', 0.01)
        self.assertEqual(b'', self.stream.recv(timeout=0.05))
        self.assertFalse(self.stream.closed)

    def test_input_waits_for_the_console_to_settle(self):
        self.patch(client_console, 'SETTLE', 0.3)
        stream = client_console.ConsoleStream(self.data, self.control, 'op')
        start = time.monotonic()
        self.assertTrue(stream.send(b'x'))
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        start = time.monotonic()
        stream.send(b'y')
        self.assertLess(time.monotonic() - start, 0.2)

    def test_recv_after_close(self):
        self.stream.close()
        self.assertEqual(b'', self.stream.recv())
        self.data.recv_data.assert_not_called()
