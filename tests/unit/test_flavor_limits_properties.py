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
"""Properties of flavor_limits.translate over generated flavors.

:func:`expected_refusals` is an independent model of the documented rules
(doc strings of flavor_limits, Nova's meaning of the quota keys): the
properties check that translate accepts exactly what the model accepts,
that a refusal names what it refuses, and what an accepted flavor becomes.
"""

import dataclasses
import re
import unittest

import hypothesis
from hypothesis import strategies as st
from oslo_utils import strutils

from nova import exception as nova_exception

from nova_syscontainer import extra_specs
from nova_syscontainer.virt import flavor_limits as fl
from tests import flavor_strategies as fs

#: Modest example counts: the whole unit suite stays within seconds.
PROPERTY = hypothesis.settings(
    max_examples=150, deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow])
RAW_LINE = re.compile(r'lxc.cgroup2?\.[a-z_.]+ = \S+( \S+)?')


def as_int(value):
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def as_bool(value):
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        return None


def key_ok(key, value, flavor, options):
    """Whether one extra spec alone is honoured (the documented rules)."""
    number = as_int(value)
    if key in fs.FOREIGN_KEYS:
        return True
    if key == 'quota:cpu_shares':
        return (number is not None and
                fl.CPU_SHARES_MIN <= number <= fl.CPU_SHARES_MAX)
    if key == 'quota:cpu_period':
        # Nova: 0 means no value.
        return number is not None and (
            number == 0 or fl.CFS_PERIOD_MIN <= number <= fl.CFS_PERIOD_MAX)
    if key == 'quota:cpu_quota':
        # Negative: no limit; else at least the kernel's 1 ms, and at most
        # its largest quota for all vCPUs together.
        return number is not None and (number < 0 or (
            fl.CFS_QUOTA_MIN <= number and
            number * flavor.vcpus <= fl.CFS_QUOTA_MAX))
    if key in fs.DISK_KEYS:
        maximum = (fl.DISK_IOPS_MAX if key.endswith('_iops_sec')
                   else fl.DISK_BYTES_MAX)
        return number is not None and 0 <= number <= maximum
    if key.endswith('_average'):
        return number is not None and 0 <= number <= fl.VIF_AVERAGE_MAX
    if key.endswith(('_peak', '_burst')):
        return number == 0
    if not key.startswith(fl.PREFIX):
        return False  # a quota key nobody can enforce
    spec = fl.NAMESPACE_KEYS.get(key[len(fl.PREFIX):])
    if spec is None:
        return False
    if spec.kind is int:
        return (number is not None and
                spec.minimum <= number <= spec.maximum and
                (spec.name != 'memory_swap_priority' or bool(flavor.swap)))
    if spec.kind is bool:
        wanted = as_bool(value)
        if wanted is None:
            return False
        allowed = {'privileged': options.allow_privileged,
                   'nesting': options.allow_nesting}.get(spec.name, True)
        return allowed or not wanted
    calls = [c.strip() for c in value.split(',') if c.strip()]
    return bool(calls) and set(calls) <= set(fl.INTERCEPTABLE)


def _positive(specs, key):
    return (as_int(specs.get(key)) or 0) > 0


def expected_refusals(flavor, options):
    """Every refusal the rules call for.

    Each is a tuple of the names its message may use; translate reports
    the first refusal it meets.
    """
    refusals = []
    if flavor.vcpus < 1:
        refusals.append(('vcpus',))
    if flavor.memory_mb < 1:
        refusals.append(('memory_mb',))
    if flavor.ephemeral_gb:
        refusals.append(('ephemeral_gb',))
    if (flavor.root_gb and not options.pool_enforces_size and
            options.unenforceable_root_size == fl.REFUSE):
        refusals.append(('root_gb=%d' % flavor.root_gb,))
    specs = flavor.extra_specs
    for key, value in specs.items():
        if not key_ok(key, value, flavor, options):
            refusals.append((key,))
    # Limits the daemon cannot combine on one disk.
    for direction in ('read', 'write', 'total'):
        keys = ['quota:disk_%s_%s_sec' % (direction, metric)
                for metric in ('bytes', 'iops')]
        if all(_positive(specs, key) for key in keys):
            refusals.append(tuple(keys))
    total = any(_positive(specs, 'quota:disk_total_%s_sec' % m)
                for m in ('bytes', 'iops'))
    other = any(_positive(specs, 'quota:disk_%s_%s_sec' % (d, m))
                for d in ('read', 'write') for m in ('bytes', 'iops'))
    if total and other:
        refusals.append(('quota:disk_total_*',))
    return refusals


def translate(flavor, options, image=None):
    """translate(), or the LimitError it raised (anything else escapes)."""
    try:
        return fl.translate(flavor, image or {}, options)
    except fl.LimitError as error:
        return error


class TranslatePropertiesTest(unittest.TestCase):

    def check_accepted(self, flavor, options, limits):
        """Everything that must hold of an accepted flavor's limits."""
        self.assertIsInstance(limits, fl.Limits)
        config = limits.config
        self.assertEqual(str(flavor.vcpus), config['limits.cpu'])
        self.assertEqual('%dMiB' % flavor.memory_mb, config['limits.memory'])
        for key, value in config.items():
            self.assertIsInstance(key, str)
            self.assertIsInstance(value, str, key)
        for device in limits.devices.values():
            for key, value in device.items():
                self.assertIsInstance(value, str, key)
        for key, value in limits.nic.items():
            self.assertRegex(value, r'^[1-9][0-9]*kbit$', key)
        prefix = 'lxc.cgroup2.' if options.cgroup_version == 2 else (
            'lxc.cgroup.')
        for line in limits.raw_lxc:
            self.assertIsNotNone(RAW_LINE.fullmatch(line), line)
            self.assertTrue(line.startswith(prefix), line)

        specs = flavor.extra_specs
        # vif: an average of N kB/s is exactly 8*N kbit; 0 is no limit.
        for direction, lxd_key in (('inbound', 'limits.ingress'),
                                   ('outbound', 'limits.egress')):
            average = as_int(specs.get('quota:vif_%s_average' % direction))
            if average:
                self.assertEqual('%dkbit' % (8 * average),
                                 limits.nic[lxd_key])
            else:
                self.assertNotIn(lxd_key, limits.nic)
        # disk: the exact integer, per direction; 0 is no limit.
        root = limits.devices['root']
        for direction, lxd_key in (('read', 'limits.read'),
                                   ('write', 'limits.write'),
                                   ('total', 'limits.max')):
            nbytes = as_int(specs.get('quota:disk_%s_bytes_sec' % direction))
            iops = as_int(specs.get('quota:disk_%s_iops_sec' % direction))
            if nbytes:
                self.assertEqual(str(nbytes), root[lxd_key])
            elif iops:
                self.assertEqual('%diops' % iops, root[lxd_key])
            else:
                self.assertNotIn(lxd_key, root)
        # The syscontainer: keys, each to its daemon key.
        for name, spec in fl.NAMESPACE_KEYS.items():
            value = specs.get(fl.PREFIX + name)
            if spec.kind is int:
                expected = None if value is None else str(as_int(value))
                self.assertEqual(expected, config.get(spec.lxd_key))
            elif spec.kind is bool:
                expected = 'true' if value and as_bool(value) else None
                self.assertEqual(expected, config.get(spec.lxd_key))
        # Root disk size: enforced, or warned about by the operator's leave.
        if flavor.root_gb and options.pool_enforces_size:
            self.assertEqual('%dGiB' % flavor.root_gb, root['size'])
        else:
            self.assertNotIn('size', root)
        self.assertEqual(bool(flavor.root_gb and
                              not options.pool_enforces_size),
                         bool(limits.warnings))

    @PROPERTY
    @hypothesis.given(flavor=fs.flavors(), options=fs.options())
    def test_accepts_exactly_what_the_rules_allow(self, flavor, options):
        result = translate(flavor, options)
        refusals = expected_refusals(flavor, options)
        if isinstance(result, fl.LimitError):
            self.assertTrue(refusals, 'refused a flavor the rules allow: '
                            '%s' % result)
            message = str(result)
            self.assertTrue(
                any(name in message for names in refusals for name in names),
                'message %r names none of %r' % (message, refusals))
        else:
            self.assertEqual([], refusals)
            self.check_accepted(flavor, options, result)

    @PROPERTY
    @hypothesis.given(flavor=fs.flavors(specs=fs.extra_specs(max_size=1)),
                      options=fs.options())
    def test_single_refused_key_is_named(self, flavor, options):
        hypothesis.assume(flavor.vcpus >= 1 and flavor.memory_mb >= 1)
        hypothesis.assume(not flavor.root_gb)
        result = translate(flavor, options)
        for key, value in flavor.extra_specs.items():
            if key_ok(key, value, flavor, options):
                self.assertIsInstance(result, fl.Limits)
            else:
                self.assertIsInstance(result, fl.LimitError)
                self.assertIn(key, str(result))

    @PROPERTY
    @hypothesis.given(flavor=fs.flavors(), options=fs.options(),
                      key=st.sampled_from(('privileged', 'nesting')),
                      value=st.sampled_from(fs.TRUE_STRINGS))
    def test_privilege_without_the_operators_leave_always_refused(
            self, flavor, options, key, value):
        flavor = fs.Flavor(**dict(vars(flavor), extra_specs=dict(
            flavor.extra_specs, **{fl.PREFIX + key: value})))
        options = dataclasses.replace(options, **{'allow_' + key: False})
        self.assertRaises(fl.LimitError, fl.translate, flavor, {}, options)

    @PROPERTY
    @hypothesis.given(
        flavor=fs.flavors(vcpus=st.integers(1, 64),
                          memory_mb=st.integers(1, 1024 * 1024),
                          specs=fs.extra_specs(fs.VIF_KEYS + fs.DISK_KEYS,
                                               valid_only=True)),
        options=fs.options())
    def test_accepted_io_limits_are_exact(self, flavor, options):
        result = translate(flavor, options)
        if isinstance(result, fl.Limits):
            self.check_accepted(flavor, options, result)
            self.assertNotIn('0kbit', result.nic.values())
        else:
            # Only the documented conflicts refuse valid numbers.
            self.assertTrue(expected_refusals(flavor, options))

    @PROPERTY
    @hypothesis.given(flavor=fs.flavors(), options=fs.options(),
                      image=st.dictionaries(
                          st.sampled_from(('hw_cpu_policy', 'os_type',
                                           'syscontainer:privileged',
                                           'quota:cpu_shares')),
                          st.sampled_from(('true', '1', 'x'))))
    def test_image_properties_change_nothing(self, flavor, options, image):
        with_image = translate(flavor, options, image)
        without = translate(flavor, options)
        if isinstance(without, fl.LimitError):
            self.assertIsInstance(with_image, fl.LimitError)
            self.assertEqual(str(without), str(with_image))
        else:
            self.assertEqual(without, with_image)


class ValidatorsAgreeWithDriverTest(unittest.TestCase):
    """What Nova's API accepts for a syscontainer: key, the driver honours.

    For int and bool keys both say the same; the driver is more lenient
    than the API's pattern about empty items in an intercept list.
    """

    validators = {v.name: v for v in extra_specs.register()}

    @PROPERTY
    @hypothesis.given(data=st.data(),
                      key=st.sampled_from(fs.NAMESPACE_KEYS))
    def test_validator_accepts_only_what_translate_honours(self, data, key):
        value = data.draw(fs.value_of(key) | st.text(max_size=12),
                          label='value')
        validator = self.validators[key]
        try:
            validator.validate(key, value)
            api_ok = True
        except nova_exception.ValidationError:
            api_ok = False
        flavor = fs.Flavor(vcpus=1, memory_mb=64, root_gb=0, ephemeral_gb=0,
                           swap=64, extra_specs={key: value})
        options = fl.Options(allow_privileged=True, allow_nesting=True)
        driver_ok = isinstance(translate(flavor, options), fl.Limits)
        if api_ok:
            self.assertTrue(driver_ok)
        if fl.NAMESPACE_KEYS[key[len(fl.PREFIX):]].kind is not str:
            self.assertEqual(driver_ok, api_ok)
