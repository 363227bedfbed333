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
"""Hypothesis strategies of flavors and options, for the property tests.

Shared by the unit properties of :mod:`flavor_limits` and the functional
test that hands accepted translations to the real daemon. Values are the
strings Nova stores as extra specs: valid ones, ones at and beyond each
bound, and ones that are no integer (or no boolean) at all.
"""

import types

from hypothesis import strategies as st

from nova_syscontainer.virt import flavor_limits as fl

#: Nova's quota:* keys that the driver translates.
CPU_KEYS = ('quota:cpu_shares', 'quota:cpu_period', 'quota:cpu_quota')
DISK_KEYS = tuple('quota:disk_%s_%s_sec' % (direction, metric)
                  for direction in ('read', 'write', 'total')
                  for metric in ('bytes', 'iops'))
VIF_KEYS = tuple('quota:vif_%s_%s' % (direction, metric)
                 for direction in ('inbound', 'outbound')
                 for metric in ('average', 'peak', 'burst'))
QUOTA_KEYS = CPU_KEYS + DISK_KEYS + VIF_KEYS
NAMESPACE_KEYS = tuple(fl.PREFIX + name for name in fl.NAMESPACE_KEYS)
#: Keys the driver must refuse whatever their value.
UNKNOWN_KEYS = (fl.PREFIX + 'nonsense', 'quota:cpu_limit',
                'quota:vif_reservation')
#: Another driver's namespace: ignored.
FOREIGN_KEYS = ('hw:cpu_policy', 'trait:CUSTOM_X')
ALL_KEYS = QUOTA_KEYS + NAMESPACE_KEYS + UNKNOWN_KEYS + FOREIGN_KEYS

TRUE_STRINGS = ('true', 'True', '1', 'yes', 'on', 't', 'y', ' TRUE ')
FALSE_STRINGS = ('false', 'False', '0', 'no', 'off', 'f', 'n')
NOT_BOOLS = ('maybe', '', '2', '-1', 'enabled')
NOT_INTS = ('abc', '', ' ', '1.5', '1e3', '0x10', '--1', 'true', 'None',
            '10MiB', '1,000', '5 5')

#: Bounds the driver documents for each quota key (None: unbounded).
QUOTA_BOUNDS = {
    'quota:cpu_shares': (fl.CPU_SHARES_MIN, fl.CPU_SHARES_MAX),
    'quota:cpu_period': (0, fl.CFS_PERIOD_MAX),
    'quota:cpu_quota': (None, None),
}
QUOTA_BOUNDS.update((key, (0, None)) for key in DISK_KEYS + VIF_KEYS)

#: A flavor: what translate() reads of a nova.objects.Flavor.
Flavor = types.SimpleNamespace


def _edges(minimum, maximum):
    values = [0, 1, -1, 999, 1000, 1001, 100000, 1000000, 1000001]
    for bound in (minimum, maximum):
        if bound is not None:
            values.extend((bound - 1, bound, bound + 1))
    return sorted(set(values))


def ints(minimum=None, maximum=None, valid_only=False):
    """Integer strings: mostly near the bounds, some far off, some padded."""
    if valid_only:
        lo = -2 ** 40 if minimum is None else minimum
        hi = 2 ** 40 if maximum is None else maximum
        edges = [v for v in _edges(minimum, maximum) if lo <= v <= hi]
        numbers = st.sampled_from(edges) | st.integers(lo, hi)
        return numbers.map(str)
    numbers = (st.sampled_from(_edges(minimum, maximum)) |
               st.integers(-2 ** 40, 2 ** 40))
    return (numbers.map(str) | numbers.map(' {} '.format) |
            st.sampled_from(NOT_INTS))


def bools(valid_only=False):
    if valid_only:
        return st.sampled_from(TRUE_STRINGS + FALSE_STRINGS)
    return st.sampled_from(TRUE_STRINGS + FALSE_STRINGS + NOT_BOOLS)


def intercepts(valid_only=False):
    names = fl.INTERCEPTABLE if valid_only else fl.INTERCEPTABLE + (
        'ptrace', '', ' ')
    lists = st.lists(st.sampled_from(names), min_size=1, max_size=3)
    return st.tuples(lists, st.sampled_from((',', ', '))).map(
        lambda pair: pair[1].join(pair[0]))


def value_of(key, valid_only=False):
    """A strategy of values for one extra spec key.

    Unless ``valid_only``, two draws in three are of the key's valid
    syntax, so that flavors with several keys are still often accepted.
    """
    if valid_only:
        return _values(key, True)
    return st.one_of(_values(key, True), _values(key, True),
                     _values(key, False))


def _values(key, valid_only):
    if key in QUOTA_BOUNDS:
        return ints(*QUOTA_BOUNDS[key], valid_only=valid_only)
    if key.startswith(fl.PREFIX):
        spec = fl.NAMESPACE_KEYS.get(key[len(fl.PREFIX):])
        if spec is None:
            return st.sampled_from(('1', 'true', 'x'))
        if spec.kind is int:
            return ints(spec.minimum, spec.maximum, valid_only=valid_only)
        if spec.kind is bool:
            return bools(valid_only=valid_only)
        return intercepts(valid_only=valid_only)
    return st.sampled_from(('1', 'x', 'dedicated'))


def extra_specs(keys=ALL_KEYS, valid_only=False, max_size=6):
    """Dicts of extra specs drawn from ``keys``, values fitting each key."""
    return st.lists(st.sampled_from(keys), unique=True,
                    max_size=max_size).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {key: value_of(key, valid_only) for key in chosen}))


def flavors(vcpus=st.integers(-1, 64),
            memory_mb=st.sampled_from((0, 1, 64, 256)) | st.integers(
                -1, 1024 * 1024),
            root_gb=st.sampled_from((0, 0, 1, 20)),
            ephemeral_gb=st.just(0),
            swap=st.sampled_from((0, 0, 1, 512)),
            specs=None):
    return st.builds(Flavor, vcpus=vcpus, memory_mb=memory_mb,
                     root_gb=root_gb, ephemeral_gb=ephemeral_gb, swap=swap,
                     extra_specs=specs if specs is not None else
                     extra_specs())


def options(cgroup_version=st.sampled_from((1, 2))):
    return st.builds(
        fl.Options,
        storage_pool=st.sampled_from(('default', 'quota')),
        pool_enforces_size=st.booleans(),
        unenforceable_root_size=st.sampled_from((fl.REFUSE, fl.WARN)),
        allow_privileged=st.booleans(),
        allow_nesting=st.booleans(),
        cgroup_version=cgroup_version)
