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


def raw(extra_specs, vcpus=1, cgroup_version=1):
    return fl.translate(flavor(vcpus=vcpus, extra_specs=extra_specs),
                        options=fl.Options(
                            cgroup_version=cgroup_version)).raw_lxc


def refusal(test, extra_specs, options=None, **sizes):
    """The message of the LimitError translate must raise."""
    with test.assertRaises(fl.LimitError) as ctx:
        fl.translate(flavor(extra_specs=extra_specs, **sizes),
                     options=options)
    return str(ctx.exception)


class CpuRulesTest(unittest.TestCase):

    def test_cpu_shares(self):
        # (shares, cgroup v1 line, cgroup v2 line: the kernel's conversion)
        for shares, v1, v2 in (
                ('2', 'cpu.shares = 2', 'cpu.weight = 1'),
                ('1024', 'cpu.shares = 1024', 'cpu.weight = 39'),
                ('262144', 'cpu.shares = 262144', 'cpu.weight = 10000'),
                (' 512 ', 'cpu.shares = 512', 'cpu.weight = 20')):
            with self.subTest(shares=shares):
                specs = {'quota:cpu_shares': shares}
                self.assertEqual(['lxc.cgroup.' + v1], raw(specs))
                self.assertEqual(['lxc.cgroup2.' + v2],
                                 raw(specs, cgroup_version=2))

    def test_cpu_shares_out_of_range_or_not_integer(self):
        for shares in ('1', '0', '-5', '262145', 'abc', '1.5', ''):
            with self.subTest(shares=shares):
                self.assertIn('quota:cpu_shares', refusal(
                    self, {'quota:cpu_shares': shares}))

    def test_cpu_quota_per_vcpu(self):
        # (vcpus, quota, period, v1 lines, v2 line)
        for vcpus, quota, period, v1, v2 in (
                (1, '50000', None, ('100000', '50000'), '50000 100000'),
                (2, '50000', None, ('100000', '100000'), '100000 100000'),
                (4, '1000', '0', ('100000', '4000'), '4000 100000'),
                (2, '20000', '50000', ('50000', '40000'), '40000 50000'),
                (3, '1000', '1000', ('1000', '3000'), '3000 1000'),
                (1, '250000', '1000000', ('1000000', '250000'),
                 '250000 1000000')):
            with self.subTest(vcpus=vcpus, quota=quota, period=period):
                specs = {'quota:cpu_quota': quota}
                if period is not None:
                    specs['quota:cpu_period'] = period
                self.assertEqual(
                    ['lxc.cgroup.cpu.cfs_period_us = %s' % v1[0],
                     'lxc.cgroup.cpu.cfs_quota_us = %s' % v1[1]],
                    raw(specs, vcpus=vcpus))
                self.assertEqual(['lxc.cgroup2.cpu.max = %s' % v2],
                                 raw(specs, vcpus=vcpus, cgroup_version=2))

    def test_cpu_period_alone(self):
        # (period, v1 lines, v2 lines): 0 is Nova's "no value".
        for period, v1, v2 in (
                ('0', [], []),
                ('1000', ['lxc.cgroup.cpu.cfs_period_us = 1000'],
                 ['lxc.cgroup2.cpu.max = max 1000']),
                ('1000000', ['lxc.cgroup.cpu.cfs_period_us = 1000000'],
                 ['lxc.cgroup2.cpu.max = max 1000000'])):
            with self.subTest(period=period):
                specs = {'quota:cpu_period': period}
                self.assertEqual(v1, raw(specs))
                self.assertEqual(v2, raw(specs, cgroup_version=2))

    def test_cpu_period_out_of_range(self):
        for period in ('1', '999', '1000001', '-1', 'abc', '1e4'):
            with self.subTest(period=period):
                self.assertIn('quota:cpu_period', refusal(
                    self, {'quota:cpu_period': period,
                           'quota:cpu_quota': '5000'}))

    def test_negative_cpu_quota_is_no_limit(self):
        for quota, period, v1, v2 in (
                ('-1', None, [], []),
                ('-100', '50000', ['lxc.cgroup.cpu.cfs_period_us = 50000'],
                 ['lxc.cgroup2.cpu.max = max 50000'])):
            with self.subTest(quota=quota):
                specs = {'quota:cpu_quota': quota}
                if period:
                    specs['quota:cpu_period'] = period
                self.assertEqual(v1, raw(specs))
                self.assertEqual(v2, raw(specs, cgroup_version=2))

    def test_cpu_quota_below_a_millisecond(self):
        for quota in ('0', '1', '999', 'x', '1000.0'):
            with self.subTest(quota=quota):
                self.assertIn('quota:cpu_quota', refusal(
                    self, {'quota:cpu_quota': quota}))


def root_device(extra_specs):
    return fl.translate(flavor(extra_specs=extra_specs)).devices['root']


class DiskRulesTest(unittest.TestCase):

    def test_bytes_and_iops(self):
        # (extra specs, the root disk's limit keys)
        for specs, expected in (
                ({'quota:disk_read_bytes_sec': '10485760'},
                 {'limits.read': '10485760'}),
                ({'quota:disk_write_bytes_sec': '1'}, {'limits.write': '1'}),
                ({'quota:disk_read_iops_sec': '100'},
                 {'limits.read': '100iops'}),
                ({'quota:disk_write_iops_sec': ' 50 '},
                 {'limits.write': '50iops'}),
                ({'quota:disk_total_bytes_sec': '2048'},
                 {'limits.max': '2048'}),
                ({'quota:disk_total_iops_sec': '300'},
                 {'limits.max': '300iops'}),
                ({'quota:disk_read_bytes_sec': '4096',
                  'quota:disk_write_iops_sec': '20'},
                 {'limits.read': '4096', 'limits.write': '20iops'}),
                # 0 is no limit, so it never conflicts.
                ({'quota:disk_read_bytes_sec': '0',
                  'quota:disk_read_iops_sec': '7'},
                 {'limits.read': '7iops'}),
                ({'quota:disk_total_bytes_sec': '0',
                  'quota:disk_read_bytes_sec': '5'},
                 {'limits.read': '5'}),
                ({'quota:disk_write_iops_sec': '0'}, {})):
            with self.subTest(specs=specs):
                root = root_device(specs)
                self.assertEqual(expected, {
                    k: v for k, v in root.items() if k.startswith('limits.')})

    def test_bytes_and_iops_of_one_direction_refused(self):
        for direction in ('read', 'write', 'total'):
            with self.subTest(direction=direction):
                message = refusal(self, {
                    'quota:disk_%s_bytes_sec' % direction: '1000',
                    'quota:disk_%s_iops_sec' % direction: '10'})
                self.assertIn('quota:disk_%s_bytes_sec' % direction, message)
                self.assertIn('quota:disk_%s_iops_sec' % direction, message)

    def test_total_beside_read_or_write_refused(self):
        for total, other in (('bytes', 'read_bytes'), ('bytes', 'write_iops'),
                             ('iops', 'read_iops'), ('iops', 'write_bytes')):
            with self.subTest(total=total, other=other):
                self.assertIn('quota:disk_total_', refusal(self, {
                    'quota:disk_total_%s_sec' % total: '100',
                    'quota:disk_%s_sec' % other: '100'}))

    def test_negative_or_not_integer_refused(self):
        for value in ('-1', 'fast', '1.5', '10MB'):
            with self.subTest(value=value):
                self.assertIn('quota:disk_read_iops_sec', refusal(
                    self, {'quota:disk_read_iops_sec': value}))


class VifRulesTest(unittest.TestCase):

    def test_average_in_kilobytes_becomes_kbit(self):
        for specs, expected in (
                ({'quota:vif_inbound_average': '1'},
                 {'limits.ingress': '8kbit'}),
                ({'quota:vif_outbound_average': '1250'},
                 {'limits.egress': '10000kbit'}),
                ({'quota:vif_inbound_average': '125000',
                  'quota:vif_outbound_average': '100'},
                 {'limits.ingress': '1000000kbit',
                  'limits.egress': '800kbit'}),
                ({'quota:vif_inbound_average': '0'}, {}),
                ({'quota:vif_inbound_average': '10',
                  'quota:vif_inbound_peak': '0',
                  'quota:vif_inbound_burst': '0'},
                 {'limits.ingress': '80kbit'})):
            with self.subTest(specs=specs):
                self.assertEqual(expected,
                                 fl.translate(flavor(extra_specs=specs)).nic)

    def test_peak_and_burst_refused(self):
        for key in ('quota:vif_inbound_peak', 'quota:vif_inbound_burst',
                    'quota:vif_outbound_peak', 'quota:vif_outbound_burst'):
            for value in ('1', '1000', '-1', 'x'):
                with self.subTest(key=key, value=value):
                    self.assertIn(key, refusal(self, {
                        'quota:vif_inbound_average': '100', key: value}))

    def test_average_negative_or_not_integer_refused(self):
        for value in ('-1', '1.5', '1Mbit'):
            with self.subTest(value=value):
                self.assertIn('quota:vif_outbound_average', refusal(
                    self, {'quota:vif_outbound_average': value}))


ALLOW_ALL = fl.Options(allow_privileged=True, allow_nesting=True)


class NamespaceRulesTest(unittest.TestCase):

    def config(self, specs, swap=0, options=ALLOW_ALL):
        return fl.translate(flavor(swap=swap, extra_specs=specs),
                            options=options).config

    def test_int_keys(self):
        # (key, value, daemon key, daemon value)
        for key, value, lxd_key, expected in (
                ('processes', '3', 'limits.processes', '3'),
                ('processes', '4194304', 'limits.processes', '4194304'),
                ('processes', ' 100 ', 'limits.processes', '100'),
                ('cpu_priority', '0', 'limits.cpu.priority', '0'),
                ('cpu_priority', '10', 'limits.cpu.priority', '10'),
                ('memory_swap_priority', '0',
                 'limits.memory.swap.priority', '0'),
                ('memory_swap_priority', '10',
                 'limits.memory.swap.priority', '10')):
            with self.subTest(key=key, value=value):
                self.assertEqual(expected, self.config(
                    {fl.PREFIX + key: value}, swap=64)[lxd_key])

    def test_default_processes_only_where_the_flavor_sets_none(self):
        options = fl.Options(default_processes=2000)
        self.assertEqual('2000', self.config({}, options=options)[
            'limits.processes'])
        self.assertEqual('50', self.config(
            {fl.PREFIX + 'processes': '50'}, options=options)[
            'limits.processes'])
        self.assertNotIn('limits.processes', self.config({}))

    def test_int_keys_out_of_range(self):
        for key, value in (('processes', '2'), ('processes', '4194305'),
                           ('processes', 'many'), ('cpu_priority', '-1'),
                           ('cpu_priority', '11'), ('cpu_priority', '5.5'),
                           ('memory_swap_priority', '11')):
            with self.subTest(key=key, value=value):
                self.assertIn(fl.PREFIX + key, refusal(
                    self, {fl.PREFIX + key: value}, ALLOW_ALL, swap=64))

    def test_bool_keys(self):
        for key, lxd_key in (('idmap_isolated', 'security.idmap.isolated'),
                             ('nesting', 'security.nesting'),
                             ('privileged', 'security.privileged')):
            for value, expected in (('true', 'true'), ('True', 'true'),
                                    ('1', 'true'), ('yes', 'true'),
                                    ('on', 'true'), ('false', None),
                                    ('0', None), ('no', None),
                                    ('off', None)):
                with self.subTest(key=key, value=value):
                    self.assertEqual(expected, self.config(
                        {fl.PREFIX + key: value}).get(lxd_key))
            for value in ('maybe', '', '2', 'enabled'):
                with self.subTest(key=key, value=value):
                    self.assertIn(fl.PREFIX + key, refusal(
                        self, {fl.PREFIX + key: value}, ALLOW_ALL))

    def test_intercept(self):
        prefix = 'security.syscalls.intercept.'
        for value, calls in (('setxattr', ['setxattr']),
                             ('mknod', ['mknod']),
                             ('mknod,setxattr', ['mknod', 'setxattr']),
                             (' setxattr , mknod ', ['mknod', 'setxattr']),
                             ('mknod,mknod', ['mknod']),
                             ('setxattr,,', ['setxattr'])):
            with self.subTest(value=value):
                config = self.config({fl.PREFIX + 'intercept': value})
                self.assertEqual(
                    {prefix + call: 'true' for call in calls},
                    {k: v for k, v in config.items() if k.startswith(prefix)})
        for value in ('', ' ', ',', 'ptrace', 'setxattr,ptrace', 'MKNOD',
                      'mknod setxattr'):
            with self.subTest(value=value):
                self.assertIn(fl.PREFIX + 'intercept', refusal(
                    self, {fl.PREFIX + 'intercept': value}))

    def test_unknown_key_refused_with_known_keys_listed(self):
        message = refusal(self, {fl.PREFIX + 'nonsense': '1'})
        self.assertIn(fl.PREFIX + 'nonsense', message)
        for name in fl.NAMESPACE_KEYS:
            self.assertIn(fl.PREFIX + name, message)

    def test_memory_swap_priority_needs_swap(self):
        self.assertIn(fl.PREFIX + 'memory_swap_priority', refusal(
            self, {fl.PREFIX + 'memory_swap_priority': '5'}, swap=0))
        self.assertEqual('5', self.config(
            {fl.PREFIX + 'memory_swap_priority': '5'}, swap=1)[
            'limits.memory.swap.priority'])

    def test_privileged_and_nesting_gates(self):
        # (key, options, refused)
        for key, options, refused in (
                ('privileged', fl.Options(), True),
                ('privileged', fl.Options(allow_nesting=True), True),
                ('privileged', fl.Options(allow_privileged=True), False),
                ('nesting', fl.Options(), True),
                ('nesting', fl.Options(allow_privileged=True), True),
                ('nesting', fl.Options(allow_nesting=True), False)):
            with self.subTest(key=key, options=options):
                specs = {fl.PREFIX + key: 'true'}
                if refused:
                    message = refusal(self, specs, options)
                    self.assertIn(fl.PREFIX + key, message)
                    self.assertIn('allow_' + key, message)
                else:
                    self.assertEqual('true', self.config(
                        specs, options=options)['security.' + key])
        # Asking for no privilege needs no leave.
        for key in ('privileged', 'nesting'):
            with self.subTest(key=key, value='false'):
                self.assertNotIn('security.' + key, self.config(
                    {fl.PREFIX + key: 'false'}, options=fl.Options()))

    def test_image_properties_change_nothing(self):
        specs = {'quota:cpu_shares': '512'}
        image = {'syscontainer:privileged': 'true', 'quota:cpu_shares': '2',
                 'hw_cpu_policy': 'dedicated'}
        self.assertEqual(fl.translate(flavor(extra_specs=specs)),
                         fl.translate(flavor(extra_specs=specs), image))
