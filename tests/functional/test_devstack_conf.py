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
"""The nova.conf that devstack/plugin.sh writes boots a server.

DevStack cannot run here, but its plugin's post-config phase can: with the
stand-ins of tests/unit/test_devstack_plugin.py for DevStack's own
functions, the real config writer and the real certificates that
tools/setup-host.sh made. The [syscontainer] settings it writes (the https
endpoint, the copied client certificate, the pinned server certificate, the
quota pool) are then given to a nova-compute that boots a server with a
root disk size through Nova's API on the real daemon.
"""

import configparser
import os

import fixtures

from tests.functional import base
from tests.functional import daemon
from tests.unit import test_devstack_plugin

QUOTA_POOL = 'quota'


class DevStackConfTest(base.SysContainerTestCase):
    START_COMPUTE = False

    def test_plugin_nova_conf_boots_a_server(self):
        work = self.useFixture(fixtures.TempDir()).path
        proc = test_devstack_plugin.run_phases(
            work, ['stack post-config'],
            'ENABLED_SERVICES=n-cpu\n'
            'SYSCONTAINER_HOST_CONF_DIR=%s' % daemon.CONF_DIR)
        self.assertEqual(0, proc.returncode, proc.stderr)
        nova_conf = configparser.ConfigParser(interpolation=None,
                                              default_section='@none@')
        nova_conf.read(os.path.join(work, 'etc/nova/nova.conf'))
        self.assertEqual(self.compute_driver,
                         nova_conf.get('DEFAULT', 'compute_driver'))
        written = dict(nova_conf.items('syscontainer'))
        self.assertEqual('https://127.0.0.1:8443', written['endpoint'])
        self.assertEqual(QUOTA_POOL, written['storage_pool'])
        # The copied client key, not the root-only original.
        self.assertTrue(written['client_key'].startswith(work))

        self.flags(group='syscontainer', **written)
        self.compute = self.start_compute('host1')
        self.assertEqual('https://127.0.0.1:8443',
                         self.driver().client.endpoint)

        flavor = self.make_flavor('devstack.tiny', vcpus=1, memory_mb=128,
                                  disk=1)
        server = self.boot(flavor_id=flavor)
        name = self.container_name(server)
        rec = self.daemon.instance(name)
        self.assertEqual('Running', rec['status'])
        root = rec['expanded_devices']['root']
        self.assertEqual(QUOTA_POOL, root['pool'])
        self.assertEqual('1GiB', root['size'])
        self._delete_server(server)
        self.assertNotIn(name, self.daemon.names())
