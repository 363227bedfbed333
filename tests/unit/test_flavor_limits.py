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

import types
import unittest

from nova_syscontainer.virt import flavor_limits as fl


def flavor(vcpus=1, memory_mb=256, root_gb=0, ephemeral_gb=0, swap=0,
           extra_specs=None):
    return types.SimpleNamespace(
        vcpus=vcpus, memory_mb=memory_mb, root_gb=root_gb,
        ephemeral_gb=ephemeral_gb, swap=swap, extra_specs=extra_specs or {})


class TranslateTest(unittest.TestCase):

    def test_cpu_and_memory(self):
        limits = fl.translate(flavor(vcpus=2, memory_mb=512))
        self.assertEqual('2', limits.config['limits.cpu'])
        self.assertEqual('512MiB', limits.config['limits.memory'])
        self.assertEqual('hard', limits.config['limits.memory.enforce'])
        self.assertEqual('false', limits.config['limits.memory.swap'])

    def test_swap_allowed_when_flavor_has_swap(self):
        limits = fl.translate(flavor(swap=128))
        self.assertEqual('true', limits.config['limits.memory.swap'])

    def test_root_disk_on_pool_that_enforces(self):
        opts = fl.Options(storage_pool='quota', pool_enforces_size=True)
        limits = fl.translate(flavor(root_gb=3), options=opts)
        self.assertEqual({'type': 'disk', 'path': '/', 'pool': 'quota',
                          'size': '3GiB'}, limits.devices['root'])

    def test_root_disk_unsized_when_root_gb_zero(self):
        limits = fl.translate(flavor(root_gb=0))
        self.assertNotIn('size', limits.devices['root'])
        self.assertEqual('default', limits.devices['root']['pool'])

    def test_root_size_refused_on_pool_that_cannot_enforce(self):
        opts = fl.Options(storage_pool='dirpool', pool_enforces_size=False)
        with self.assertRaises(fl.LimitError) as ctx:
            fl.translate(flavor(root_gb=1), options=opts)
        self.assertIn('dirpool', str(ctx.exception))
        self.assertIn('root_gb=1', str(ctx.exception))

    def test_root_size_warned_when_operator_allows(self):
        opts = fl.Options(pool_enforces_size=False,
                          unenforceable_root_size=fl.WARN)
        limits = fl.translate(flavor(root_gb=1), options=opts)
        self.assertNotIn('size', limits.devices['root'])
        self.assertEqual(1, len(limits.warnings))
        self.assertIn('not enforced', limits.warnings[0])

    def test_ephemeral_refused(self):
        self.assertRaises(fl.LimitError, fl.translate,
                          flavor(ephemeral_gb=1))

    def test_quota_keys_not_silently_ignored(self):
        with self.assertRaises(fl.LimitError) as ctx:
            fl.translate(flavor(extra_specs={'quota:cpu_limit': '10'}))
        self.assertIn('quota:cpu_limit', str(ctx.exception))

    def test_other_namespaces_pass(self):
        limits = fl.translate(flavor(extra_specs={'hw:cpu_policy': 'x'}))
        self.assertEqual('1', limits.config['limits.cpu'])

    def test_zero_vcpus_or_memory_refused(self):
        self.assertRaises(fl.LimitError, fl.translate, flavor(vcpus=0))
        self.assertRaises(fl.LimitError, fl.translate, flavor(memory_mb=0))
