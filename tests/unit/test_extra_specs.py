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

from importlib import metadata
import types
import unittest

from nova.api.validation.extra_specs import base
from nova import exception

from nova_syscontainer import extra_specs
from nova_syscontainer.virt import flavor_limits as fl

PREFIX = fl.PREFIX

# Values Nova's bool validator (strutils strict) takes, and some it does not.
GOOD_BOOLS = ('true', 'false', 'True', 'FALSE', '1', '0', 'yes', 'no', 'on',
              'off', 't', 'f', 'y', 'n', ' true ')
BAD_BOOLS = ('maybe', '', '2', '-1', 'truthy', 'enabled', 'none')

GOOD_INTERCEPTS = ('setxattr', 'mknod', 'mknod,setxattr', 'setxattr,mknod',
                   'setxattr, mknod', ' mknod ', 'mknod,mknod')
BAD_INTERCEPTS = ('ptrace', '', ' ', ',', 'setxattr,', ',mknod',
                  'setxattr,,mknod', 'setxattr mknod', 'SETXATTR',
                  'mknod;setxattr', 'setxattr,ptrace', 'bpf')


def good_values(key):
    """Documented good values of a namespace key."""
    if key.kind is int:
        return (str(key.minimum), str(key.maximum),
                str((key.minimum + key.maximum) // 2),
                ' %d ' % key.maximum)
    if key.kind is bool:
        return GOOD_BOOLS
    return GOOD_INTERCEPTS


def bad_values(key):
    if key.kind is int:
        return (str(key.minimum - 1), str(key.maximum + 1), 'abc', '',
                '1.5', '0x10', '%d.0' % key.minimum, '-%d' % key.maximum,
                str(2 ** 64))
    if key.kind is bool:
        return BAD_BOOLS
    return BAD_INTERCEPTS


def by_name():
    return {v.name: v for v in extra_specs.register()}


def flavor(extra_specs=None, swap=64):
    return types.SimpleNamespace(
        vcpus=1, memory_mb=256, root_gb=0, ephemeral_gb=0, swap=swap,
        extra_specs=extra_specs or {})


#: Options under which only the value of a namespace key decides.
PERMISSIVE = fl.Options(allow_privileged=True, allow_nesting=True)


class RegisterTest(unittest.TestCase):

    def test_one_validator_per_namespace_key(self):
        validators = extra_specs.register()
        names = [v.name for v in validators]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual({PREFIX + name for name in fl.NAMESPACE_KEYS},
                         set(names))

    def test_validators_are_novas(self):
        for validator in extra_specs.register():
            with self.subTest(name=validator.name):
                self.assertIsInstance(validator, base.ExtraSpecValidator)
                self.assertTrue(validator.description)
                self.assertEqual(validator.name, validator.name_regex)
                self.assertTrue(validator.name.startswith(
                    fl.NAMESPACE + ':'))

    def test_kinds_and_bounds_come_from_namespace_keys(self):
        validators = by_name()
        for name, key in fl.NAMESPACE_KEYS.items():
            value = validators[PREFIX + name].value
            with self.subTest(name=name):
                self.assertIs(key.kind, value['type'])
                self.assertEqual(key.description, value['description'])
                if key.kind is int:
                    self.assertEqual(key.minimum, value['min'])
                    self.assertEqual(key.maximum, value['max'])

    def test_every_str_key_has_a_pattern(self):
        validators = by_name()
        for name, key in fl.NAMESPACE_KEYS.items():
            if key.kind is str:
                with self.subTest(name=name):
                    self.assertIn('pattern', validators[PREFIX + name].value)

    def test_entry_point_installed(self):
        eps = metadata.entry_points(group='nova.api.extra_spec_validators')
        ours = [ep for ep in eps if ep.name == 'syscontainer']
        self.assertEqual(1, len(ours))
        self.assertEqual('nova_syscontainer.extra_specs', ours[0].value)
        self.assertIs(extra_specs, ours[0].load())

    def test_nova_loads_them_and_knows_the_namespace(self):
        # Nova's registry, filled from the installed entry points.
        from nova.api.validation.extra_specs import validators

        for name in fl.NAMESPACE_KEYS:
            self.assertIn(PREFIX + name, validators.VALIDATORS)
        self.assertIn(fl.NAMESPACE, validators.NAMESPACES)
        validators.validate(PREFIX + 'processes', '100')
        for name, value in ((PREFIX + 'nonsense', '1'),
                            (PREFIX + 'processes', '1'),
                            (PREFIX + 'intercept', 'ptrace')):
            with self.subTest(name=name, value=value):
                self.assertRaises(exception.ValidationError,
                                  validators.validate, name, value)


class ValidateTest(unittest.TestCase):

    def test_good_values_accepted(self):
        validators = by_name()
        for name, key in fl.NAMESPACE_KEYS.items():
            for value in good_values(key):
                with self.subTest(name=name, value=value):
                    validators[PREFIX + name].validate(PREFIX + name, value)

    def test_bad_values_rejected(self):
        validators = by_name()
        for name, key in fl.NAMESPACE_KEYS.items():
            for value in bad_values(key):
                with self.subTest(name=name, value=value):
                    self.assertRaises(
                        exception.ValidationError,
                        validators[PREFIX + name].validate, PREFIX + name,
                        value)

    def test_examples_from_the_docs(self):
        validators = by_name()
        for name, value in (('processes', '3'), ('processes', '4194304'),
                            ('cpu_priority', '0'), ('cpu_priority', '10'),
                            ('memory_swap_priority', '5'),
                            ('idmap_isolated', 'true'),
                            ('nesting', 'false'), ('privileged', 'true'),
                            ('intercept', 'setxattr,mknod')):
            with self.subTest(name=name, value=value):
                validators[PREFIX + name].validate(PREFIX + name, value)
        for name, value in (('processes', 'abc'), ('processes', '1'),
                            ('processes', '2'), ('cpu_priority', '11'),
                            ('privileged', 'maybe'),
                            ('intercept', 'ptrace')):
            with self.subTest(name=name, value=value):
                self.assertRaises(
                    exception.ValidationError,
                    validators[PREFIX + name].validate, PREFIX + name, value)

    def test_validator_refuses_other_names(self):
        validator = by_name()[PREFIX + 'processes']
        self.assertRaises(exception.ValidationError, validator.validate,
                          PREFIX + 'processesx', '10')


class AgreesWithDriverTest(unittest.TestCase):
    """What the API lets through, the driver honours (and the reverse)."""

    def test_good_values_translate(self):
        for name, key in fl.NAMESPACE_KEYS.items():
            for value in good_values(key):
                with self.subTest(name=name, value=value):
                    fl.translate(flavor({PREFIX + name: value}),
                                 options=PERMISSIVE)

    def test_bad_values_refused_by_driver(self):
        for name, key in fl.NAMESPACE_KEYS.items():
            for value in bad_values(key):
                if key.kind is str and value.strip(' ,') in (
                        'setxattr', 'mknod', 'setxattr,,mknod'):
                    # The driver is lenient about empty list items; the
                    # API's pattern is not.
                    continue
                with self.subTest(name=name, value=value):
                    with self.assertRaises(fl.LimitError) as ctx:
                        fl.translate(flavor({PREFIX + name: value}),
                                     options=PERMISSIVE)
                    self.assertIn(PREFIX + name, str(ctx.exception))
