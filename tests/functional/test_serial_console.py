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
"""The serial console through Nova's API and Nova's own serial proxy.

A websocket client (websocket-client, as a browser would: an Origin
header, the ``binary`` subprotocol) opens the URL that Nova's
``os-remote-consoles`` API gives, through nova-serialproxy's code
(:mod:`nova.console.websocketproxy`: token check in Nova's database,
``validate_console_port`` RPC to the compute, TCP to the driver's listener)
to the shell that a busybox guest runs on its ``/dev/console``, types a
line and reads the answer.

nova-serialproxy runs here in this process (:class:`SerialProxyFixture`):
the service validates tokens in the cell database and asks the compute
over RPC, and this test's database and message bus live in this process.
The service forks a child per connection; here each connection gets a
thread instead and Nova's request handler runs unchanged.
"""

import gzip
import io
import socket
import tarfile
import threading
import time
import types

import fixtures
from nova.console import serial
from nova.console import websocketproxy
from nova import objects
from nova.tests.functional.api import client as api_client
from nova import utils
from urllib import parse as urlparse
import websocket

from tests.functional import base
from tests.functional import test_live_migration

PROXY_HOST = '127.0.0.1'
READ_TIMEOUT = 30


#: What the console image adds to the test image's inittab: a getty that
#: opens /dev/console itself and runs a root shell without a login (as
#: systemd's console-getty.service runs agetty on /dev/console). Not
#: ``::respawn:-/bin/sh``: that shell would inherit PID 1's standard
#: input, and with the checkpoint line ``lxc.pty.max = 1`` LXD 5.0.2
#: (liblxc 5.0.2) starts PID 1 with /dev/null there, the console being a
#: pty of the host's devpts bind-mounted on /dev/console
#: (doc/source/consoles.rst).
CONSOLE_GETTY = b'::respawn:/sbin/getty -n -l /bin/sh 38400 console\n'

#: A shell on /dev/console that is not its controlling terminal: opened by
#: a background child (not a session leader), so the console does not
#: become its controlling tty. CRIU 4.2.1 refuses to dump a task whose
#: controlling tty is the console ("ctty inheritance detected ... no PTY
#: peer": the pty's other end is the daemon's), so a guest with a getty
#: on the console cannot be suspended or live-migrated; this one can, and
#: its shell answers again after the restore.
CONSOLE_SHELL_NO_CTTY = (b"::respawn:/bin/sh -c "
                         b"'/bin/sh -i </dev/console >/dev/console 2>&1 "
                         b"& wait'\n")


def console_image(image, line=CONSOLE_GETTY):
    """The busybox test image with a root shell on /dev/console.

    ``line`` is added to its /etc/inittab.
    """
    src = tarfile.open(fileobj=io.BytesIO(image), mode='r:gz')
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode='w') as dst:
        for member in src.getmembers():
            if member.name == 'rootfs/etc/inittab':
                text = src.extractfile(member).read() + line
                member.size = len(text)
                dst.addfile(member, io.BytesIO(text))
            elif member.isfile():
                dst.addfile(member, src.extractfile(member))
            else:
                dst.addfile(member)
    return buf.getvalue()


class _NoHubReset(object):
    """nova.utils as the proxy's handler sees it, minus the hub reset.

    Under eventlet the handler gives each connection a new eventlet hub,
    meant for the forked child nova-serialproxy runs it in; in this
    process that would replace the hub every other service runs on.
    """

    class _Eventlet(object):
        class hubs(object):
            @staticmethod
            def use_hub():
                pass

    def __getattr__(self, name):
        if name == 'get_eventlet':
            return lambda: self._Eventlet
        return getattr(utils, name)


class SerialProxyFixture(fixtures.Fixture):
    """Nova's serial proxy on a port of its own, in this process."""

    def _setUp(self):
        self._sock = socket.socket()
        self._sock.bind((PROXY_HOST, 0))
        self._sock.listen(8)
        self._sock.settimeout(0.5)
        self.port = self._sock.getsockname()[1]
        self.server = websocketproxy.NovaWebSocketProxy(
            listen_host=PROXY_HOST, listen_port=self.port, file_only=True,
            RequestHandlerClass=websocketproxy.NovaProxyRequestHandler)
        if not utils.concurrency_mode_threading():
            self.useFixture(fixtures.MonkeyPatch(
                'nova.console.websocketproxy.utils', _NoHubReset()))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.addCleanup(self._close)

    @property
    def base_url(self):
        return 'ws://%s:%d/' % (PROXY_HOST, self.port)

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn, peer),
                             daemon=True).start()

    def _handle(self, conn, peer):
        try:
            self.server.top_new_client(conn, peer)
        finally:
            conn.close()

    def _close(self):
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


class Console(object):
    """A websocket client on a console URL, as a browser opens it."""

    def __init__(self, url):
        self.ws = websocket.create_connection(
            url, timeout=READ_TIMEOUT, subprotocols=['binary'],
            origin='http://%s' % urlparse.urlsplit(url).netloc)
        self.ws.settimeout(1)
        self.seen = b''

    def run(self, line, needle, timeout=READ_TIMEOUT, again=5):
        """Type ``line``; everything read until ``needle`` shows up.

        The line is typed again every ``again`` seconds without an answer
        (as Tempest's serial console test does): a guest that has just
        booted may start its console shell after the first one came, and
        the shell drops what the terminal had before.
        """
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        typed = 0
        while needle.encode() not in self.seen[start:]:
            if time.monotonic() > typed + again:
                self.ws.send_binary(line.encode() + b'\n')
                typed = time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError('no %r on the console within %s s; '
                                     'it showed %r' % (needle, timeout,
                                                       self.seen[-500:]))
            try:
                opcode, data = self.ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise AssertionError('the console closed; it showed %r' %
                                     self.seen[-500:])
            self.seen += data
        return self.seen[start:]

    def close(self):
        self.ws.close(timeout=2)


class SerialConsoleMixin(object):
    """Console settings, the proxy and the image with a console shell."""

    #: The inittab line of the console image (see console_image).
    CONSOLE_LINE = CONSOLE_GETTY

    def setUp(self):
        super().setUp()
        self.proxy = self.useFixture(SerialProxyFixture())
        self.flags(enabled=True, proxyclient_address='127.0.0.1',
                   base_url=self.proxy.base_url, group='serial_console')
        self.shell_image = self.add_image(
            console_image(self.image_data, self.CONSOLE_LINE),
            name='busybox-console')

    def console_url(self, server):
        """``POST /servers/{id}/remote-consoles`` (os-remote-consoles)."""
        previous, self.api.microversion = self.api.microversion, '2.6'
        try:
            body = self.api.api_post(
                '/servers/%s/remote-consoles' % server['id'],
                {'remote_console': {'protocol': 'serial', 'type': 'serial'}}
            ).body['remote_console']
        finally:
            self.api.microversion = previous
        self.assertEqual('serial', body['type'])
        self.assertTrue(body['url'].startswith(self.proxy.base_url),
                        body['url'])
        return body['url']

    def listener_port(self, server, host='host1'):
        """The port of the server's listener on host, or None."""
        return self.driver(host).consoles.port(
            types.SimpleNamespace(uuid=server['id']))

    def token_port(self, url):
        """The compute host and port Nova recorded for the URL's token."""
        token = urlparse.parse_qs(urlparse.urlsplit(url).query)['token'][0]
        info = objects.ConsoleAuthToken.validate(self.ctxt, token)
        return info.host, info.port

    def assert_console_works(self, url, word):
        console = Console(url)
        try:
            out = console.run('echo %s-$((6*7))' % word, '%s-42' % word)
        finally:
            console.close()
        self.assertIn(('%s-42' % word).encode(), out)

    def assert_not_listening(self, port):
        self.assertRaises(OSError, socket.create_connection,
                          ('127.0.0.1', port), timeout=5)
        self.assertNotIn(('127.0.0.1', port), serial.ALLOCATED_PORTS)

    def assert_no_console(self, server):
        e = self.assertRaises(api_client.OpenStackApiException,
                              self.console_url, server)
        self.assertEqual(409, e.response.status_code)


class SerialConsoleTest(SerialConsoleMixin, base.SysContainerTestCase):

    def test_console_through_nova_serialproxy(self):
        server = self.boot(image_id=self.shell_image)
        url = self.console_url(server)
        host, port = self.token_port(url)
        self.assertEqual('127.0.0.1', host)
        self.assertEqual(port, self.listener_port(server))
        self.assert_console_works(url, 'first')

        # Asked again: the same port, and a second client gets the
        # console after the first. nova-serialproxy asks the compute
        # again (validate_console_port) at each connection.
        url2 = self.console_url(server)
        self.assertNotEqual(url, url2)
        self.assertEqual((host, port), self.token_port(url2))
        self.assert_console_works(url2, 'second')
        self.assert_console_works(url, 'third')

        # A nova-compute restart: the listener goes with the service and
        # the next request makes a new one (with a port of its own).
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        self.computes['host1'] = self.compute
        url3 = self.console_url(server)
        self.assertEqual(self.token_port(url3)[1],
                         self.listener_port(server))
        self.assert_console_works(url3, 'restarted')

        # Stopped: no listener, no console; started: a console again.
        port3 = self.token_port(url3)[1]
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        self.assert_not_listening(port3)
        self.assert_no_console(server)
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        url4 = self.console_url(server)
        self.assert_console_works(url4, 'started')

        # Deleted: the listener and its port are gone.
        port4 = self.token_port(url4)[1]
        self._delete_server(server)
        self.assert_not_listening(port4)

    def test_a_made_up_token_is_refused(self):
        server = self.boot(image_id=self.shell_image)
        url = self.console_url(server)
        bad = url.split('token=')[0] + 'token=' + 'x' * 36
        # The proxy closes the websocket before it connects anywhere.
        console = Console(bad)
        self.addCleanup(console.close)
        self.assertRaises((AssertionError, websocket.WebSocketException,
                           OSError), console.run, 'echo no', 'no-such-answer',
                          timeout=10)
        self.assert_console_works(url, 'still')


class SerialConsoleMigrationTest(SerialConsoleMixin,
                                 test_live_migration.MigrationTestCase):
    """The console across CRIU: suspend/resume and a live migration."""

    # A getty's controlling tty would make CRIU refuse the dump.
    CONSOLE_LINE = CONSOLE_SHELL_NO_CTTY

    def test_console_follows_a_live_migration(self):
        server = self.boot(image_id=self.shell_image, host='host1')
        url = self.console_url(server)
        port1 = self.token_port(url)[1]
        self.assert_console_works(url, 'before')

        # Suspended (CRIU on the same daemon): no listener; resumed: the
        # restored shell answers on the console again.
        server = self.action(server, {'suspend': None}, 'SUSPENDED')
        self.assert_not_listening(port1)
        server = self.action(server, {'resume': None}, 'ACTIVE')
        url = self.console_url(server)
        port1 = self.token_port(url)[1]
        self.assert_console_works(url, 'resumed')

        self.live_migrate(server)
        server = self.wait_for_landing(server)
        self.assert_not_listening(port1)
        self.assertIsNone(self.listener_port(server, 'host1'))

        url2 = self.console_url(server)
        self.assertEqual(self.token_port(url2)[1],
                         self.listener_port(server, 'host2'))
        self.assert_console_works(url2, 'after')
        self._delete_server(server)
        self.assertIsNone(self.listener_port(server, 'host2'))
