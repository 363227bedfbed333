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
"""tools/lib/syscontainer-conf.sh, the one writer of the driver's settings.

tools/cloud.sh and devstack/plugin.sh both source it; these tests run the
real shell functions with bash on files in a temporary directory.
"""

import configparser
import os
import subprocess

import fixtures
import testtools

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'tools', 'lib', 'syscontainer-conf.sh')


class SysContainerConfTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.conf = os.path.join(self.dir, 'nova.conf')
        for var in ('SYSCONTAINER_ENDPOINT', 'SYSCONTAINER_STORAGE_POOL',
                    'SYSCONTAINER_CLIENT_CERT', 'SYSCONTAINER_CLIENT_KEY',
                    'SYSCONTAINER_SERVER_CERT'):
            self.useFixture(fixtures.EnvironmentVariable(var))

    def bash(self, script, *args, env=None):
        return subprocess.run(
            ['bash', '-c', '. "$0"; ' + script, LIB] + list(args),
            capture_output=True, text=True,
            env=dict(os.environ, **(env or {})))

    def parsed(self):
        parser = configparser.RawConfigParser()
        parser.read(self.conf)
        return parser

    def test_defaults_select_the_driver_and_the_local_daemon(self):
        proc = self.bash('syscontainer_write_compute_conf "$1"', self.conf)
        self.assertEqual(0, proc.returncode, proc.stderr)
        conf = self.parsed()
        self.assertEqual('syscontainer.SysContainerDriver',
                         conf.get('DEFAULT', 'compute_driver'))
        self.assertEqual('/var/lib/lxd/unix.socket',
                         conf.get('syscontainer', 'endpoint'))
        self.assertEqual('default', conf.get('syscontainer', 'storage_pool'))
        self.assertFalse(conf.has_option('syscontainer', 'client_cert'))

    def test_https_endpoint_brings_the_client_certificate(self):
        proc = self.bash(
            'syscontainer_write_compute_conf "$1" '
            'endpoint=https://127.0.0.1:8443', self.conf,
            env={'SYSCONTAINER_SERVER_CERT': '/etc/x/server.crt'})
        self.assertEqual(0, proc.returncode, proc.stderr)
        conf = self.parsed()
        self.assertEqual('https://127.0.0.1:8443',
                         conf.get('syscontainer', 'endpoint'))
        self.assertEqual('/etc/nova-syscontainer/client.crt',
                         conf.get('syscontainer', 'client_cert'))
        self.assertEqual('/etc/nova-syscontainer/client.key',
                         conf.get('syscontainer', 'client_key'))
        self.assertEqual('/etc/x/server.crt',
                         conf.get('syscontainer', 'server_cert'))

    def test_existing_content_is_kept_and_keys_replaced_in_place(self):
        with open(self.conf, 'w') as f:
            f.write('# operator notes\n[DEFAULT]\n# keep me\ndebug = true\n'
                    'compute_driver = libvirt.LibvirtDriver\n\n'
                    '[api]\nauth_strategy = keystone\n')
        proc = self.bash('syscontainer_write_compute_conf "$1" '
                         'DEFAULT.host=aio storage_pool=quota', self.conf)
        self.assertEqual(0, proc.returncode, proc.stderr)
        with open(self.conf) as f:
            text = f.read()
        self.assertTrue(text.startswith('# operator notes\n[DEFAULT]\n'
                                        '# keep me\ndebug = true\n'
                                        'compute_driver = syscontainer.'
                                        'SysContainerDriver\n'), text)
        conf = self.parsed()
        self.assertEqual('aio', conf.get('DEFAULT', 'host'))
        self.assertEqual('keystone', conf.get('api', 'auth_strategy'))
        self.assertEqual('quota', conf.get('syscontainer', 'storage_pool'))
        self.assertEqual(1, text.count('compute_driver'))

    def test_malformed_override_changes_nothing(self):
        with open(self.conf, 'w') as f:
            f.write('[DEFAULT]\ndebug = true\n')
        proc = self.bash('syscontainer_write_compute_conf "$1" nonsense',
                         self.conf)
        self.assertEqual(2, proc.returncode)
        self.assertIn("'nonsense' is not [SECTION.]KEY=VALUE", proc.stderr)
        with open(self.conf) as f:
            self.assertEqual('[DEFAULT]\ndebug = true\n', f.read())

    def test_iniset_sets_several_options_and_refuses_a_short_triple(self):
        proc = self.bash('syscontainer_iniset "$1" a k1 v1 b k2 ""',
                         self.conf)
        self.assertEqual(0, proc.returncode, proc.stderr)
        conf = self.parsed()
        self.assertEqual('v1', conf.get('a', 'k1'))
        self.assertEqual('', conf.get('b', 'k2'))
        proc = self.bash('syscontainer_iniset "$1" a k1', self.conf)
        self.assertEqual(2, proc.returncode)
        self.assertIn('usage', proc.stderr)
