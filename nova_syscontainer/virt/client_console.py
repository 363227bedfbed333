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
"""The client layer's interactive console of a container.

A part of :class:`client.DaemonClient` (it inherits :class:`ConsoleCalls`),
kept in a module of its own for size; the connection settings, timeouts
and error mapping are the client's.

``POST /1.0/instances/<name>/console`` with type ``console`` starts a
websocket operation whose metadata holds two secrets: ``0`` for the data
(the container's ``/dev/console``, raw bytes both ways) and ``control``
(window size; the daemon ends the console when it closes). Each is opened
at ``/1.0/operations/<id>/websocket?secret=<secret>`` on the same
endpoint as the REST API, with the same TLS settings: pylxd has no call
for the console, so the websockets are websocket-client's, over a socket
this module connects itself (the unix socket, or TCP with the client
certificate and the pinned daemon certificate), so that no proxy or CA
environment variable changes where it goes or what it trusts.
"""

import socket
import ssl
import threading
import time
import urllib.parse

import websocket

from nova_syscontainer import exception

#: The console's size the daemon is told; serial clients have no size.
WIDTH = 80
HEIGHT = 24
#: Seconds one read waits before it looks whether the stream was closed.
POLL = 1.0
#: Seconds after an attachment before input is sent: LXD 5.0.2 drops
#: console input that arrives within about 0.1 s of the websockets'
#: connection (measured: forkconsole is not attached to the console yet).
SETTLE = 0.5
#: How LXD 5.0.2 refuses a second attachment: this line on the data
#: websocket, which it then closes.
_BUSY = b'Failed running forkconsole'


class ConsoleCalls(object):
    """The interactive console of a running instance."""

    def open_console(self, name, not_found=None):
        """Attach to the instance's console; a :class:`ConsoleStream`.

        Raises ``not_found`` (or DaemonError) for an unknown instance,
        DaemonError when the daemon refuses (LXD 5.0.2: the instance is
        not running, or another client holds its console),
        DaemonUnavailable when it cannot be reached. The request and each
        websocket handshake are bounded by api_timeout.
        """
        action = 'open the console of %s' % name
        op = self.call(action, 'post', lambda api: api.instances[name].console,
                       not_found=not_found, wait=False,
                       json={'type': 'console', 'width': WIDTH,
                             'height': HEIGHT})
        try:
            secrets = op['metadata']['fds']
            op_id = op['id']
            data_secret, control_secret = secrets['0'], secrets['control']
        except (KeyError, TypeError):
            raise exception.DaemonError(
                endpoint=self.endpoint, action=action,
                reason='no console websockets in the answer: %r' % (op,))
        opened = []
        try:
            # The daemon starts the console once both are connected.
            for secret in (data_secret, control_secret):
                opened.append(self._operation_websocket(action, op_id,
                                                        secret))
        except Exception:
            for ws in opened:
                _close_quietly(ws)
            self.cancel_operation(op_id)
            raise
        return ConsoleStream(opened[0], opened[1], op_id,
                             endpoint=self.endpoint, name=name)

    def _operation_websocket(self, action, op_id, secret):
        """One websocket of a websocket operation, connected."""
        path = '/1.0/operations/%s/websocket?%s' % (
            urllib.parse.quote(op_id, safe=''),
            urllib.parse.urlencode({'secret': secret}))
        sock = None
        try:
            sock, url = self._console_socket(path)
            ws = websocket.WebSocket(skip_utf8_validation=True)
            ws.connect(url, socket=sock, timeout=self.api_timeout,
                       suppress_origin=True)
            ws.settimeout(POLL)
            return ws
        except (OSError, websocket.WebSocketException) as e:
            if sock is not None:
                _close_quietly(sock)
            if isinstance(e, websocket.WebSocketBadStatusException):
                raise exception.DaemonError(endpoint=self.endpoint,
                                            action=action, reason=str(e))
            raise exception.DaemonUnavailable(
                endpoint=self.endpoint, reason='%s: %s' % (action, e))

    def _console_socket(self, path):
        """A connected socket to the daemon and the ws(s) URL of ``path``.

        Unix socket or TCP + TLS, with this client's certificate and the
        verification the REST session uses; bounded by api_timeout.
        """
        if self.endpoint.startswith('/'):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.api_timeout)
            try:
                sock.connect(self.endpoint)
            except OSError:
                sock.close()
                raise
            return sock, 'ws://localhost' + path
        parsed = urllib.parse.urlsplit(self.endpoint)
        sock = socket.create_connection(
            (parsed.hostname, parsed.port or 8443), timeout=self.api_timeout)
        try:
            sock = self._tls_context().wrap_socket(
                sock, server_hostname=parsed.hostname)
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        return sock, 'wss://%s%s' % (parsed.netloc, path)

    def _tls_context(self):
        """The REST session's TLS choices as an SSLContext."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self._insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self._server_cert:
            # A pinned self-signed certificate: it is its own authority and
            # names the daemon's host, not necessarily this address.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.load_verify_locations(cafile=self._server_cert)
        if self._cert:
            context.load_cert_chain(self._cert, self._key)
        return context


class ConsoleStream(object):
    """The two websockets of one console attachment.

    :meth:`recv` and :meth:`send` may run in two threads at once;
    :meth:`close` from any thread ends both within :data:`POLL` seconds.
    """

    def __init__(self, data, control, operation_id, endpoint='', name=''):
        self._data = data
        self._control = control
        self.operation_id = operation_id
        self._endpoint = endpoint
        self._name = name
        self._closed = threading.Event()
        self._first = True
        self._ready_at = time.monotonic() + SETTLE

    @property
    def closed(self):
        return self._closed.is_set()

    def recv(self, timeout=None):
        """The next bytes of the console; b'' once it ended.

        With ``timeout`` (seconds), b'' also when nothing came within it
        (:attr:`closed` tells the two apart). Raises ConsoleBusy (and ends
        the stream) when the daemon's first words are its refusal to
        attach: another client holds the console.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return b''
            try:
                opcode, payload = self._data.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException):
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            if payload:
                if self._first and _BUSY in payload:
                    self.close()
                    raise exception.ConsoleBusy(
                        endpoint=self._endpoint,
                        action='open the console of %s' % self._name,
                        reason=payload.decode('utf-8', 'replace').strip())
                self._first = False
                return payload
        self.close()
        return b''

    def send(self, payload):
        """Send bytes to the console; False once it ended."""
        if self._closed.is_set():
            return False
        wait = self._ready_at - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, SETTLE))
        try:
            self._data.send_binary(payload)
        except (OSError, websocket.WebSocketException):
            self.close()
            return False
        return True

    def close(self):
        """Detach: the daemon ends the console operation."""
        if self._closed.is_set():
            return
        self._closed.set()
        for ws in (self._data, self._control):
            _close_quietly(ws)


def _close_quietly(thing):
    try:
        if isinstance(thing, websocket.WebSocket):
            thing.close(timeout=POLL)
        else:
            thing.close()
    except (OSError, websocket.WebSocketException):
        pass
