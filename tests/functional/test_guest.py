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
"""Real guests: what a Nova user expects inside an instance.

* :class:`ProcViewTest` and :class:`ConfigDriveFilesTest` use the busybox
  test image (fast): lxcfs's /proc inside, and the config drive tree Nova's
  metadata code produced, written into the container.
* :class:`StockGuestTest` boots the project's stock Debian 12 image
  (tools/build-stock-image.sh, built once and cached) through Nova's API
  with a keypair, user data and a port on a subnet without DHCP, and reads
  the result inside: cloud-init (ConfigDrive datasource) installed the key,
  ran the user data, set the hostname and the port's static address;
  free, nproc and /proc/uptime show the flavor and the container.

Proof is read from inside the container (``lxc exec``, which runs in the
container's cgroup, so lxcfs answers for it) and from its root filesystem
through its init's /proc/<pid>/root.
"""

import base64
import json
import os
import subprocess
import time
import urllib.request
import uuid

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
import testtools.content

from tests.functional import base
from tests.functional.ports import ip_links
from tests.functional.ports import PortsMixin
from tests.functional.ports import run

BUILDER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'tools', 'build-stock-image.sh')
MIRROR = os.environ.get('STOCK_IMAGE_MIRROR', 'http://deb.debian.org/debian')
#: Glance ids of stock images are derived from the tarball's sha256: a
#: rebuilt image is a new Glance image, never the daemon's cached old one.
STOCK_NAMESPACE = uuid.UUID('0c9d4a8e-3b7f-4d2a-8e61-5a2f9c7b1d40')
SEED = '/var/lib/cloud/seed/config_drive'
#: systemd + cloud-init's four stages take several seconds here; the wait
#: is bounded generously for 2 busy cores.
CLOUD_INIT_TIMEOUT = 300
# TEST-NET-1 (RFC 5737): the address lives only inside the container's
# network namespace; no host interface gets one.
SUBNET = {
    'id': 'a3c1d5e7-0b2f-4c6a-9e8d-7f1b3c5a2e90',
    'name': 'no-dhcp', 'description': '', 'ip_version': 4,
    'ipv6_address_mode': None, 'ipv6_ra_mode': None,
    'enable_dhcp': False,
    'dns_nameservers': [], 'host_routes': [],
    'gateway_ip': '192.0.2.1', 'cidr': '192.0.2.0/24',
    'allocation_pools': [{'start': '192.0.2.2', 'end': '192.0.2.254'}],
}
FIXED_IP = '192.0.2.10'


def lxc_exec(name, *cmd, timeout=60):
    """Run a command in the container, in its cgroup (as lxcfs needs)."""
    return subprocess.run(
        ['lxc', 'exec', name, '--project', base.daemon.PROJECT, '--'] +
        list(cmd), check=True, capture_output=True, text=True,
        timeout=timeout).stdout


def host_uptime():
    with open('/proc/uptime') as f:
        return float(f.read().split()[0])


def public_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH,
        serialization.PublicFormat.OpenSSH).decode() + ' nsc-ft@test'


def mirror_reachable():
    try:
        urllib.request.urlopen(
            MIRROR + '/dists/bookworm/Release', timeout=15).close()
    except OSError:
        return False
    return True


def stock_image(testcase):
    """Path of the cached stock image; built (once) if need be."""
    # A no-op (checksum check) when the cached tarball is current.
    result = subprocess.run([BUILDER], capture_output=True, text=True,
                            timeout=1800)
    if result.returncode != 0:
        if not mirror_reachable():
            testcase.skipTest('the stock image cannot be built: the Debian '
                              'mirror %s is unreachable' % MIRROR)
        testcase.fail('%s failed: %s' % (BUILDER, result.stderr[-2000:]))
    return result.stdout.strip().splitlines()[-1]


class ProcViewTest(base.SysContainerTestCase):
    """lxcfs: the flavor, not the host, in /proc (busybox image)."""

    def test_meminfo_and_uptime_are_the_containers(self):
        flavor = self.make_flavor('c1.proc', vcpus=1, memory_mb=192)
        before = host_uptime()
        server = self.boot(flavor_id=flavor)
        name = self.container_name(server)
        meminfo = lxc_exec(name, 'cat', '/proc/meminfo')
        total = [line.split() for line in meminfo.splitlines()
                 if line.startswith('MemTotal:')][0]
        self.assertEqual(['MemTotal:', str(192 * 1024), 'kB'], total)
        inside = float(lxc_exec(name, 'cat', '/proc/uptime').split()[0])
        # Not the host's: the container cannot have been up longer than
        # since it was asked for (1 s for the rounding of both figures).
        self.assertLessEqual(inside, host_uptime() - before + 1)
        self._delete_server(server)


class ConfigDriveFilesTest(base.SysContainerTestCase):
    """Nova's config drive tree in the root filesystem (busybox image)."""

    def boot_body(self, **extra):
        body = self._build_server(name='cd', image_uuid=self.image_id,
                                  flavor_id=self.flavor_id, networks='none')
        body.update(extra)
        server = self.api.post_server({'server': body})
        return self.wait_for(server, 'ACTIVE')

    def seed_file(self, name, relpath):
        return self.daemon.read_file(name, '%s/%s' % (SEED, relpath))

    def test_config_drive_requested_on_boot(self):
        key = public_key()
        self.api.post_keypair({'keypair': {'name': 'k1', 'public_key': key}})
        user_data = b'#cloud-config\nruncmd:\n  - [touch, /tmp/ran]\n'
        server = self.boot_body(
            config_drive=True, key_name='k1',
            user_data=base64.b64encode(user_data).decode())
        name = self.container_name(server)
        meta = json.loads(self.seed_file(
            name, 'openstack/latest/meta_data.json'))
        self.assertEqual(server['id'], meta['uuid'])
        self.assertEqual({'k1': key}, meta['public_keys'])
        self.assertEqual('cd', meta['hostname'].split('.')[0])
        self.assertEqual(user_data.decode(), self.seed_file(
            name, 'openstack/latest/user_data'))
        # ds-identify's test: a dated version with meta_data.json.
        self.assertTrue(os.path.exists('/proc/%d/root%s/openstack/'
                                       '2012-08-10/meta_data.json' % (
                                           self.daemon.init_pid(name),
                                           SEED)))
        # No port (networks none): Nova's network_data.json is empty; the
        # stock guest test checks one with a port.
        self.assertEqual({}, json.loads(self.seed_file(
            name, 'openstack/latest/network_data.json')))
        self.assertIn('datasource_list: [ ConfigDrive, None ]',
                      self.daemon.read_file(
                          name, '/etc/cloud/cloud.cfg.d/'
                          '95-nova-syscontainer-config-drive.cfg'))
        self._delete_server(server)

    def test_force_config_drive_and_none_without_it(self):
        plain = self.boot_body()
        name = self.container_name(plain)
        root = '/proc/%d/root' % self.daemon.init_pid(name)
        self.assertFalse(os.path.exists(root + SEED))
        self.assertFalse(os.path.exists(root + '/etc/cloud'))
        self.assertEqual('', self.api.get_server(plain['id'])['config_drive'])
        self._delete_server(plain)

        self.flags(force_config_drive=True)
        forced = self.boot_body()
        meta = json.loads(self.seed_file(
            self.container_name(forced), 'openstack/latest/meta_data.json'))
        self.assertEqual(forced['id'], meta['uuid'])
        # The driver recorded it, as Nova's libvirt driver does.
        self.assertEqual('True',
                         self.api.get_server(forced['id'])['config_drive'])
        self._delete_server(forced)


class StockGuestTest(PortsMixin, base.SysContainerTestCase):
    """The stock Debian 12 image as a Nova user boots it."""

    def setUp(self):
        super().setUp()
        path = stock_image(self)
        with open(path + '.sha256') as f:
            image_id = str(uuid.uuid5(STOCK_NAMESPACE, f.read().split()[0]))
        with open(path, 'rb') as f:
            self.stock_id = self.add_image(f.read(), image_id=image_id,
                                           name='debian-12-stock')
        self.set_up_ports()
        # The fixture does not filter subnets: ours is the network's only
        # one, so Nova's network_data.json carries it.
        subnet = dict(SUBNET, network_id=self.neutron.network_1['id'],
                      tenant_id=self.neutron.tenant_id,
                      project_id=self.neutron.tenant_id)
        self.neutron._subnets = {subnet['id']: subnet}
        self.port = self.make_port({'port_filter': True})
        self.port['fixed_ips'] = [{'subnet_id': subnet['id'],
                                   'ip_address': FIXED_IP}]

    def test_keypair_user_data_static_ip_hostname_and_limits(self):
        key = public_key()
        self.api.post_keypair({'keypair': {'name': 'guest-key',
                                           'public_key': key}})
        token = uuid.uuid4().hex
        user_data = '#!/bin/sh\necho %s > /var/tmp/nsc-user-data\n' % token
        flavor = self.make_flavor('g1.small', vcpus=1, memory_mb=256)
        body = self._build_server(
            name='guest-one', image_uuid=self.stock_id, flavor_id=flavor,
            networks=[{'port': self.port['id']}])
        body.update(key_name='guest-key', config_drive=True,
                    user_data=base64.b64encode(user_data.encode()).decode())
        start = time.monotonic()
        before = host_uptime()
        server = self.api.post_server({'server': body})
        self.addCleanup(self.delete_quietly, server)
        server = self.wait_for(server, 'ACTIVE', timeout=300)
        active = time.monotonic() - start
        name = self.container_name(server)
        self.addOnException(lambda _exc_info: self.guest_diagnostics(name))
        # (Not /var/lib/cloud/instance/: an absolute symlink, which
        # /proc/<pid>/root would resolve on the host.) The instance id is
        # Nova's uuid, from the config drive's meta_data.json.
        finished = '/proc/%d/root/var/lib/cloud/instances/%s/%s' % (
            self.daemon.init_pid(name), server['id'], 'boot-finished')
        self.wait_until(lambda: os.path.exists(finished),
                        timeout=CLOUD_INIT_TIMEOUT,
                        what='cloud-init to finish')
        done = time.monotonic() - start
        print('stock guest: ACTIVE after %.1f s, cloud-init done after '
              '%.1f s' % (active, done))

        result = json.loads(self.daemon.read_file(
            name, '/var/lib/cloud/data/result.json'))['v1']
        self.assertEqual([], result['errors'])
        self.assertIn('DataSourceConfigDrive', result['datasource'])
        self.assertIn(SEED, result['datasource'])
        # The key: the default user's (Debian's cloud.cfg), root's says
        # to log in as that user.
        keys = self.daemon.read_file(name,
                                     '/home/debian/.ssh/authorized_keys')
        self.assertIn(key, keys)
        # The user data ran.
        self.assertEqual(token + '\n', self.daemon.read_file(
            name, '/var/tmp/nsc-user-data'))
        # The hostname is the instance's.
        self.assertEqual('guest-one',
                         lxc_exec(name, 'hostname').strip())
        # The port's fixed address, from network_data.json (no DHCP).
        pid = self.daemon.init_pid(name)
        self.wait_until(lambda: self.addresses(pid),
                        timeout=60, what='an IPv4 address on the NIC')
        self.assertEqual(['%s/24' % FIXED_IP], self.addresses(pid))
        # lxcfs: the flavor, not the host.
        mem = [line.split() for line in lxc_exec(
            name, 'free', '-b').splitlines() if line.startswith('Mem:')][0]
        self.assertEqual(str(256 * 1024 * 1024), mem[1])
        self.assertEqual('1', lxc_exec(name, 'nproc').strip())
        inside = float(lxc_exec(name, 'cat', '/proc/uptime').split()[0])
        self.assertLessEqual(inside, host_uptime() - before + 1)
        self._delete_server(server)

    def delete_quietly(self, server):
        """Delete the server if a failed test left it (ports cleanup)."""
        try:
            self._delete_server(server)
        except Exception:
            pass

    def guest_diagnostics(self, name):
        """What systemd and cloud-init were doing, for a failed test."""
        out = []
        for cmd in (['systemctl', 'list-jobs'], ['systemctl', '--failed'],
                    ['cloud-init', 'status', '--long'],
                    ['networkctl', 'status', '--no-pager'],
                    ['tail', '-n', '60', '/var/log/cloud-init.log']):
            try:
                out.append('$ %s\n%s' % (' '.join(cmd),
                                         lxc_exec(name, *cmd, timeout=20)))
            except subprocess.SubprocessError as e:
                out.append('$ %s: %s %s' % (
                    ' '.join(cmd), e, getattr(e, 'stdout', '')))
        self.addDetail('guest', testtools.content.text_content(
            '\n'.join(out)))

    def addresses(self, pid):
        """IPv4 addresses (cidr) on the container NIC of our port."""
        mac = self.port['mac_address']
        nic = [link['ifname'] for link in ip_links(pid)
               if link.get('address') == mac][0]
        out = json.loads(run('nsenter', '-t', str(pid), '-n', 'ip', '-j',
                             '-4', 'addr', 'show', 'dev', nic))
        return ['%s/%s' % (a['local'], a['prefixlen']) for entry in out
                for a in entry.get('addr_info', [])]
