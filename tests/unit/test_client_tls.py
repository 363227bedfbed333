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
"""TLS settings of the client layer: a private key, pinned peers."""

import os
from unittest import mock

import fixtures
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import client
from nova_syscontainer.virt import peers

ENDPOINT = 'https://127.0.0.1:8443'


class ClientKeyTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.key = os.path.join(self.dir, 'client.key')
        self.crt = os.path.join(self.dir, 'client.crt')
        for path in (self.key, self.crt):
            with open(path, 'w') as f:
                f.write('x')

    def session(self):
        return client.DaemonClient(endpoint=ENDPOINT, client_cert=self.crt,
                                   client_key=self.key)._session()

    def test_a_key_others_can_read_is_refused_before_connecting(self):
        for mode in (0o644, 0o640, 0o604, 0o660):
            os.chmod(self.key, mode)
            with self.subTest(mode=oct(mode)):
                e = self.assertRaises(exception.DaemonIncompatible,
                                      self.session)
                self.assertIn('make it 0600', str(e))
                self.assertIn(self.key, str(e))

    def test_a_private_key_is_used(self):
        os.chmod(self.key, 0o600)
        self.assertEqual((self.crt, self.key), self.session().cert)

    def test_a_missing_key_is_named(self):
        os.unlink(self.key)
        e = self.assertRaises(exception.DaemonIncompatible, self.session)
        self.assertIn(self.key, str(e))


class PeerPinningTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        sc_conf.CONF.set_override(
            'state_path', self.useFixture(fixtures.TempDir()).path)
        self.addCleanup(sc_conf.CONF.clear_override, 'state_path')
        sc_conf.CONF.set_override('insecure', True, group='syscontainer')
        self.addCleanup(sc_conf.CONF.clear_override, 'insecure',
                        group='syscontainer')

    def test_peer_is_verified_even_where_own_daemon_is_insecure(self):
        node = mock.Mock(stats={
            peers.ENDPOINT_STAT: 'https://127.0.0.2:8443',
            peers.CERT_STAT: 'PEM'})
        with mock.patch('nova.objects.ComputeNode.'
                        'get_first_node_by_host_for_old_compat',
                        return_value=node):
            peer = peers.target_client(mock.sentinel.ctx, 'host2')
        session = peer._session()
        self.assertTrue(os.path.isfile(session.verify))
        with open(session.verify) as f:
            self.assertEqual('PEM', f.read())
        # The node's own client keeps the operator's choice.
        self.assertFalse(client.DaemonClient(
            endpoint=ENDPOINT)._session().verify)
