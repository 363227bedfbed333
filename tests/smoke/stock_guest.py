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
"""A tenant's stock guest: its key over SSH, its metadata from Nova's API.

Mixed into test_cloud_smoke.CloudSmokeTest (its cloud, its project
member, its helpers). One stock Debian 12 guest (tools/build-stock-image.sh:
systemd, cloud-init, openssh-server) serves every check: booted by the
member with a key pair and user data and no config drive, on the member's
network (DHCP) behind the member's router to "public", it gets its
address from Neutron's DHCP agent and its key and user data from Nova's
metadata API (the L3 agent's metadata proxy, neutron-metadata-agent, Nova's
metadata service); the test logs in as cloud-init's default user with the
tenant's key through the floating IP (this machine routes the floating
range over br-ex) and reads what the user data wrote.
"""

import json
import os
import subprocess
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD_STOCK = os.path.join(REPO, 'tools', 'build-stock-image.sh')
#: cloud-init's default user in Debian's cloud.cfg.
SSH_USER = 'debian'
#: Boot, cloud-init's two stages (each tries the metadata API) and sshd,
#: on two busy cores: about 75 s measured.
LOGIN_TIMEOUT = 420
METADATA = 'http://169.254.169.254/openstack/latest/meta_data.json'


def stock_image_path():
    """The cached stock image (built on first use, as in tests/functional)."""
    proc = subprocess.run([BUILD_STOCK], capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise AssertionError('%s failed:\n%s' % (BUILD_STOCK,
                                                 proc.stderr[-3000:]))
    return proc.stdout.strip().splitlines()[-1]


class StockGuestChecks(object):
    """Test methods for CloudSmokeTest (needs its osc/admin helpers)."""

    def _ssh(self, key_file, address, command, timeout=60):
        return subprocess.run(
            ['ssh', '-i', key_file, '-o', 'BatchMode=yes',
             '-o', 'StrictHostKeyChecking=no',
             '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
             '-o', 'ConnectTimeout=10', '%s@%s' % (SSH_USER, address),
             command], capture_output=True, text=True, timeout=timeout)

    def _router_to_public(self, subnet):
        """The member's router, its gateway on "public", ``subnet`` on it.

        Everything is removed again at the test's cleanup, in reverse.
        """
        router = self.osc('router', 'create', self.tag)
        self.addCleanup(self.osc, 'router', 'delete', router['id'],
                        fmt=False)
        self.osc('router', 'set', '--external-gateway', 'public',
                 router['id'], fmt=False)
        self.addCleanup(self.osc, 'router', 'unset', '--external-gateway',
                        router['id'], fmt=False)
        self.osc('router', 'add', 'subnet', router['id'], subnet['id'],
                 fmt=False)
        self.addCleanup(self.osc, 'router', 'remove', 'subnet',
                        router['id'], subnet['id'], fmt=False)
        return router

    def _member_network_behind_router(self):
        """The member's DHCP network, routed to "public"; its subnet."""
        network = self.osc('network', 'create', self.tag)
        self.addCleanup(self.osc, 'network', 'delete', network['id'],
                        fmt=False)
        subnet = self.osc('subnet', 'create', '--network', network['id'],
                          '--subnet-range', '192.0.2.0/24',
                          '--gateway', '192.0.2.1', '--dhcp', self.tag)
        self._router_to_public(subnet)
        # What a tenant opens for SSH (the all-in-one's OVS agent runs
        # without a firewall, so the rules are not what lets it through).
        groups = [g for g in self.osc('security', 'group', 'list',
                                      '--project', self.project)
                  if g['Name'] == 'default']
        self.assertEqual(1, len(groups), groups)
        rule = self.osc('security', 'group', 'rule', 'create', '--ingress',
                        '--protocol', 'tcp', '--dst-port', '22',
                        groups[0]['ID'])
        self.addCleanup(self.osc, 'security', 'group', 'rule', 'delete',
                        rule['id'], fmt=False)
        return network

    def test_stock_guest_login_with_the_tenants_key_metadata_api(self):
        image = self.admin('image', 'create', '--disk-format', 'raw',
                           '--container-format', 'bare', '--public',
                           '--property', 'architecture=%s' % os.uname()[4],
                           '--property', 'os_distro=debian',
                           '--file', stock_image_path(), self.tag)
        self.addCleanup(self.admin, 'image', 'delete', image['id'],
                        fmt=False)
        flavor = self.admin('flavor', 'create', '--vcpus', '1', '--ram',
                            '512', '--disk', '2', self.tag)
        self.addCleanup(self.admin, 'flavor', 'delete', flavor['id'],
                        fmt=False)
        network = self._member_network_behind_router()

        key = self.osc('keypair', 'create', '--type', 'ssh', self.tag,
                       fmt=False)
        self.addCleanup(self.osc, 'keypair', 'delete', self.tag, fmt=False)
        workdir = tempfile.mkdtemp(prefix='nsc-smoke-')
        self.addCleanup(subprocess.run, ['rm', '-rf', workdir])
        key_file = os.path.join(workdir, 'key')
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600),
                  'w') as f:
            f.write(key)
        token = uuid.uuid4().hex
        user_data = os.path.join(workdir, 'user-data')
        with open(user_data, 'w') as f:
            f.write('#!/bin/sh\necho %s > /var/tmp/nsc-user-data\n' % token)

        self.addCleanup(self._delete_server, self.tag)
        start = time.monotonic()
        server = self.osc('server', 'create', '--flavor', flavor['id'],
                          '--image', image['id'], '--network',
                          network['id'], '--key-name', self.tag,
                          '--user-data', user_data, '--wait', self.tag)
        self.assertEqual('ACTIVE', server['status'])
        # No config drive: what the guest knows comes from the metadata API.
        self.assertIn(server['config_drive'], ('', 'False', False, None))
        port = self.osc('port', 'list', '--server', server['id'])[0]
        fip = self.osc('floating', 'ip', 'create', '--port', port['ID'],
                       'public')
        self.addCleanup(self.osc, 'floating', 'ip', 'delete', fip['id'],
                        fmt=False)
        address = fip['floating_ip_address']

        deadline = time.monotonic() + LOGIN_TIMEOUT
        while True:
            got = self._ssh(key_file, address, 'cat /var/tmp/nsc-user-data')
            if got.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(5)
        self.assertEqual(0, got.returncode, '%s: ssh %s@%s: %s' % (
            self.tag, SSH_USER, address, got.stderr))
        print('stock guest: ACTIVE and logged in over SSH after %.0f s' % (
            time.monotonic() - start))
        # The user data ran: the tenant's key let the tenant in.
        self.assertEqual(token, got.stdout.strip())
        # cloud-init took it all from Nova's metadata API (the OpenStack
        # datasource), and the guest reads the API itself.
        got = self._ssh(key_file, address,
                        'cat /var/lib/cloud/data/result.json')
        self.assertEqual(0, got.returncode, got.stderr)
        result = json.loads(got.stdout)
        got = self._ssh(key_file, address,
                        'python3 -c "import urllib.request as u; '
                        "print(u.urlopen('%s', timeout=20).read().decode())"
                        '"' % METADATA)
        self.assertEqual(0, got.returncode, got.stderr)
        meta = json.loads(got.stdout)
        self.assertEqual([], result['v1']['errors'])
        self.assertIn('DataSourceOpenStack', result['v1']['datasource'])
        self.assertEqual(server['id'], meta['uuid'])
        public = self.osc('keypair', 'show', '--public-key', self.tag,
                          fmt=False).strip()
        self.assertEqual({self.tag: public}, meta['public_keys'])
        # Its address is the port's, from Neutron's DHCP agent.
        got = self._ssh(key_file, address, 'ip -4 -o addr show dev eth0')
        fixed = port['Fixed IP Addresses']
        if not isinstance(fixed, list):
            fixed = [fixed]
        self.assertIn(' %s/24 ' % fixed[0]['ip_address'], got.stdout)
