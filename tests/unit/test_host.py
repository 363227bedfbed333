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

import json
import unittest

from oslo_utils import units

from nova_syscontainer.virt import host

SERVER = {'environment': {'server_version': '5.0.2',
                          'kernel_architecture': 'x86_64'}}
RESOURCES = {
    'cpu': {'total': 4, 'architecture': 'x86_64',
            'sockets': [{'name': 'Xeon', 'vendor': 'GenuineIntel',
                         'cores': [{'threads': [{}, {}]},
                                   {'threads': [{}, {}]}]}]},
    'memory': {'total': 8 * units.Gi, 'used': 2 * units.Gi},
}
POOL = {'space': {'total': 100 * units.Gi + 5, 'used': 30 * units.Gi}}


class HostTest(unittest.TestCase):

    def setUp(self):
        self.res = host.from_daemon(SERVER, RESOURCES, POOL)

    def test_figures(self):
        self.assertEqual(4, self.res.vcpus)
        self.assertEqual(8192, self.res.memory_mb)
        self.assertEqual(2048, self.res.memory_mb_used)
        self.assertEqual(100, self.res.disk_gb)
        self.assertEqual(30, self.res.disk_gb_used)
        self.assertEqual(70, self.res.disk_gb_free)
        self.assertEqual(5000002, self.res.hypervisor_version)
        info = json.loads(self.res.cpu_info)
        self.assertEqual({'sockets': 1, 'cores': 2, 'threads': 2},
                         info['topology'])

    def test_resource_dict(self):
        d = host.resource_dict(self.res, 'node1')
        self.assertEqual('lxd', d['hypervisor_type'])
        self.assertEqual('node1', d['hypervisor_hostname'])
        self.assertIn(('x86_64', 'lxd', 'exe'), d['supported_instances'])

    def test_inventory(self):
        inv = host.inventory(
            self.res, {'VCPU': 16.0, 'MEMORY_MB': 1.5, 'DISK_GB': 1.0},
            reserved_cpus=1, reserved_memory_mb=512, reserved_disk_gb=2)
        self.assertEqual(4, inv['VCPU']['total'])
        self.assertEqual(16.0, inv['VCPU']['allocation_ratio'])
        self.assertEqual(512, inv['MEMORY_MB']['reserved'])
        self.assertEqual(1.5, inv['MEMORY_MB']['allocation_ratio'])
        self.assertEqual(2, inv['DISK_GB']['reserved'])
        self.assertEqual(100, inv['DISK_GB']['max_unit'])

    def test_no_disk_inventory_without_space(self):
        res = host.from_daemon(SERVER, RESOURCES, {})
        inv = host.inventory(res, {'VCPU': 1, 'MEMORY_MB': 1, 'DISK_GB': 1},
                             0, 0, 0)
        self.assertNotIn('DISK_GB', inv)

    def test_bad_version(self):
        self.assertEqual(0, host.hypervisor_version(None))
        self.assertEqual(0, host.hypervisor_version('dev'))
