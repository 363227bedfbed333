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
"""Clients of the daemons other compute nodes publish."""

import shutil
import tempfile
import unittest

from nova import exception as nova_exception
from nova import objects

from nova_syscontainer.virt import peers

objects.register_all()


class TargetClientTest(unittest.TestCase):
    """A peer's client is reused while the peer publishes the same cert."""

    def setUp(self):
        from unittest import mock

        from nova_syscontainer import conf as sc_conf
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        sc_conf.CONF.set_override('state_path', self.tmp)
        self.addCleanup(sc_conf.CONF.clear_override, 'state_path')
        self.stats = {peers.ENDPOINT_STAT: 'https://b:8443',
                      peers.CERT_STAT: 'PEM-1'}
        node = mock.patch.object(
            peers.objects.ComputeNode,
            'get_first_node_by_host_for_old_compat',
            side_effect=lambda ctxt, host: {'stats': dict(self.stats)})
        node.start()
        self.addCleanup(node.stop)
        self.addCleanup(peers._PEERS.clear)

    def test_reused_until_the_certificate_changes(self):
        first = peers.target_client(None, 'host2')
        self.assertIs(first, peers.target_client(None, 'host2'))
        self.assertEqual('https://b:8443', first.endpoint)
        self.stats[peers.CERT_STAT] = 'PEM-2'
        second = peers.target_client(None, 'host2')
        self.assertIsNot(first, second)
        with open(second._server_cert) as f:
            self.assertEqual('PEM-2', f.read())

    def test_a_peer_without_endpoint_is_refused(self):
        del self.stats[peers.ENDPOINT_STAT]
        self.assertRaises(nova_exception.MigrationPreCheckError,
                          peers.target_client, None, 'host2')
