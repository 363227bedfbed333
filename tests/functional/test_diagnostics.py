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
"""Server diagnostics and changePassword through Nova's API.

Diagnostics are checked against what the kernel itself says of the
container (its cgroup files, its NIC's counters read in its network
namespace); the password change against the hash in the guest's
/etc/shadow.
"""

import json
import os
import warnings

from nova.tests.functional.api import client as api_client

from tests import cgroups
from tests.functional import base
from tests.functional.ports import PortsMixin
from tests.functional.ports import run
from tests.functional import shadow_image

with warnings.catch_warnings():
    # crypt is deprecated (removed in 3.13); Python 3.11 still has it and
    # it verifies yescrypt hashes with the host's libcrypt.
    warnings.simplefilter('ignore', DeprecationWarning)
    import crypt

PASSWORD = 'n0t-In-any:log 42'
#: What the test image runs: init, the counter's shell and its sleep.
IMAGE_PROCESSES = {'init', 'sh', 'sleep'}


def nic_stats(pid, ifname='eth0'):
    """The kernel's counters of a NIC in a process's network namespace."""
    link = json.loads(run('nsenter', '-t', str(pid), '-n', 'ip', '-j', '-s',
                          'link', 'show', ifname))[0]
    return link['stats64']


class DiagnosticsTest(PortsMixin, base.SysContainerTestCase):

    def setUp(self):
        super().setUp()
        self.set_up_ports()

    def diagnostics(self, server, microversion):
        self.admin_api.microversion = microversion
        try:
            return self.admin_api.api_get(
                '/servers/%s/diagnostics' % server['id']).body
        finally:
            self.admin_api.microversion = None

    def test_diagnostics_at_2_48_and_legacy(self):
        port = self.make_port({'ovs_hybrid_plug': True})
        server = self.boot_with([port])
        name = self.container_name(server)
        pid = self.daemon.init_pid(name)
        cpus = cgroups.cgroup_value(pid, 'cpuset', 'cpuset.cpus')
        percpu = [int(x) for x in cgroups.cgroup_value(
            pid, 'cpuacct', 'cpuacct.usage_percpu').split()]
        # The counter ticks every second: its CPU time grows.
        self.wait_until(
            lambda: all(c['time'] > 0 for c in self.diagnostics(
                server, '2.48')['cpu_details']),
            what='CPU time on every CPU of the cpuset')

        before = nic_stats(pid)
        diags = self.diagnostics(server, '2.48')
        after = nic_stats(pid)
        self.assertEqual('running', diags['state'])
        self.assertEqual('libvirt', diags['driver'])
        self.assertEqual('lxd', diags['hypervisor'])
        self.assertEqual('linux', diags['hypervisor_os'])
        self.assertFalse(diags['config_drive'])
        # One entry per CPU of the container's cpuset (the flavor's one
        # vCPU), its time at least what the kernel said before.
        self.assertEqual(1, len(cpus.split(',')))
        self.assertEqual(1, diags['num_cpus'])
        self.assertGreaterEqual(diags['cpu_details'][0]['time'],
                                percpu[int(cpus)])
        # The flavor's 128 MiB, as the kernel enforces it.
        self.assertEqual(128, diags['memory_details']['maximum'])
        self.assertGreaterEqual(diags['memory_details']['used'], 1)
        self.assertLess(diags['memory_details']['used'], 128)
        self.assertGreaterEqual(diags['uptime'], 0)
        # The port's NIC, its counters between two readings of the kernel.
        self.assertEqual(1, diags['num_nics'])
        nic = diags['nic_details'][0]
        self.assertEqual(port['mac_address'], nic['mac_address'])
        for key, stats_key in (('rx_octets', ('rx', 'bytes')),
                               ('rx_packets', ('rx', 'packets')),
                               ('tx_octets', ('tx', 'bytes')),
                               ('tx_packets', ('tx', 'packets')),
                               ('rx_errors', ('rx', 'errors')),
                               ('tx_drop', ('tx', 'dropped'))):
            low = before[stats_key[0]][stats_key[1]]
            high = after[stats_key[0]][stats_key[1]]
            self.assertTrue(
                low <= nic[key] <= high,
                '%s: %s not in [%s, %s]' % (key, nic[key], low, high))
        # IPv6 autoconfiguration sends on the link by itself.
        self.wait_until(
            lambda: self.diagnostics(
                server, '2.48')['nic_details'][0]['tx_packets'] > 0,
            what='the NIC to send')

        legacy = self.diagnostics(server, '2.1')
        self.assertEqual(128 * 1024, legacy['memory'])
        self.assertGreater(legacy['cpu_time'], 0)
        self.assertGreaterEqual(legacy['cpu_time'],
                                legacy['cpu0_time'])
        self.assertIn('eth0_rx', legacy)
        self.assertIn('eth0_tx_packets', legacy)
        self._delete_server(server)

    def test_diagnostics_of_a_stopped_server_is_a_conflict(self):
        server = self.boot()
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        e = self.assertRaises(api_client.OpenStackApiException,
                              self.diagnostics, server, '2.48')
        self.assertEqual(409, e.response.status_code)

    def container_processes(self, name):
        """{pid: comm} of every process in the container's cgroup."""
        procs = cgroups.cgroup_value(self.daemon.init_pid(name), 'pids',
                                     'cgroup.procs').split()
        comms = {}
        for pid in procs:
            try:
                with open('/proc/%s/comm' % pid) as f:
                    comms[int(pid)] = f.read().strip()
            except OSError:
                pass  # a sleep of the counter ended meanwhile
        return comms

    def shadow_entry(self, name, user='root'):
        for line in self.daemon.read_file(name, '/etc/shadow').splitlines():
            if line.startswith(user + ':'):
                return line.split(':')
        self.fail('no %s in /etc/shadow' % user)

    def test_change_password_sets_roots_hash(self):
        image = self.add_image(shadow_image.with_chpasswd(self.image_data),
                               name='busybox-shadow-chpasswd')
        server = self.boot(image_id=image)
        name = self.container_name(server)
        self.assertEqual('*', self.shadow_entry(name)[1])

        # As the tenant: the call returns once the compute has finished.
        self.api.post_server_action(
            server['id'], {'changePassword': {'adminPass': PASSWORD}})
        hashed = self.shadow_entry(name)[1]
        self.assertTrue(hashed.startswith('$'), hashed)
        self.assertEqual(hashed, crypt.crypt(PASSWORD, hashed))
        self.assertNotEqual(hashed, crypt.crypt(PASSWORD + 'x', hashed))
        server = self.wait_for(server, 'ACTIVE')
        # Nothing the exec started is left in the container...
        self.assertLessEqual(set(self.container_processes(name).values()),
                             IMAGE_PROCESSES)
        # ... so CRIU can still checkpoint it.
        server = self.action(server, {'suspend': None}, 'SUSPENDED')
        server = self.action(server, {'resume': None}, 'ACTIVE')
        self.assertNotIn(PASSWORD, self.stdlog.logger.output)
        self._delete_server(server)

    def test_change_password_of_the_images_os_admin_user(self):
        image = self.add_image(
            shadow_image.with_chpasswd(self.image_data,
                                       users=('root', 'debian')),
            name='busybox-shadow-chpasswd-debian')
        self.glance.update(None, image,
                           {'properties': {'os_admin_user': 'debian'}})
        server = self.boot(image_id=image)
        name = self.container_name(server)
        self.api.post_server_action(
            server['id'], {'changePassword': {'adminPass': PASSWORD}})
        hashed = self.shadow_entry(name, 'debian')[1]
        self.assertEqual(hashed, crypt.crypt(PASSWORD, hashed))
        self.assertEqual('*', self.shadow_entry(name, 'root')[1])
        self.wait_for(server, 'ACTIVE')

    def test_guest_without_chpasswd_stays_active(self):
        server = self.boot()  # busybox: no chpasswd applet
        name = self.container_name(server)
        e = self.assertRaises(
            api_client.OpenStackApiException, self.api.post_server_action,
            server['id'], {'changePassword': {'adminPass': PASSWORD}})
        self.assertEqual(409, e.response.status_code)
        self.assertIn('the guest has no chpasswd command',
                      e.response.text)
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertFalse(os.path.exists(
            '/proc/%d/root/etc/shadow' % self.daemon.init_pid(name)))
        self.assertEqual('root:x:0:0:root:/root:/bin/sh\n',
                         self.daemon.read_file(name, '/etc/passwd'))
        self.assertNotIn(PASSWORD, self.stdlog.logger.output)
