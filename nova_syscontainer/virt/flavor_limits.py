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
"""Flavor -> container limits the kernel enforces. Pure: no I/O.

:func:`translate` takes a flavor (its sizes and extra specs), the image's
properties and the operator's :class:`Options`, and returns the daemon's
instance ``config`` keys, ``raw.lxc`` lines, ``devices`` and per-NIC limit
keys; or it raises :class:`LimitError` for anything it cannot enforce
exactly. Nothing is ever dropped silently.

Each rule below was checked against the kernel's own files on LXD 5.0.2
(cgroup v1); ``doc/source/flavors.rst`` has the table of inputs, daemon keys
and kernel knobs.

Image properties are chosen by users, so they never change a limit or a
privilege: only the flavor (chosen by the operator) does.
"""

import dataclasses

from nova import exception
from nova.i18n import _
from oslo_utils import strutils

QUOTA_PREFIX = 'quota:'
#: The extra-spec namespace of this driver.
NAMESPACE = 'syscontainer'
PREFIX = NAMESPACE + ':'

#: What a driver may do when a root disk size cannot be enforced.
REFUSE = 'refuse'
WARN = 'warn'

#: Kernel and daemon bounds, each past which a container would not start
#: or the kernel would enforce another value (measured on LXD 5.0.2).
CPU_SHARES_MIN, CPU_SHARES_MAX = 2, 262144
CFS_PERIOD_MIN, CFS_PERIOD_MAX = 1000, 1000000
CFS_QUOTA_MIN = 1000
CFS_QUOTA_MAX = (1 << 44) - 1            # the kernel's max_cfs_runtime, us
PIDS_MAX = 4194304
DISK_BYTES_MAX = 2 ** 63 - 1             # the daemon parses an int64
# blk-throttle keeps IOPS in 32 bits, and 2**32 - 1 means unlimited.
DISK_IOPS_MAX = 2 ** 32 - 2
VIF_AVERAGE_MAX = (2 ** 63 - 1) // 8000  # 8*N kbit in bit/s, as int64

#: Syscalls the daemon can intercept for an unprivileged container.
INTERCEPTABLE = ('setxattr', 'mknod')


class LimitError(exception.InvalidInput):
    """A flavor asks for something the driver cannot honour.

    InvalidInput makes Nova abort the build with this message as the
    instance fault rather than reschedule it.
    """
    msg_fmt = _('%(what)s cannot be honoured: %(reason)s')


@dataclasses.dataclass(frozen=True)
class Options:
    """The operator's settings that shape the translation."""
    storage_pool: str = 'default'
    #: Whether the pool's driver can enforce a root disk size.
    pool_enforces_size: bool = False
    #: REFUSE or WARN when root_gb is set but the pool cannot enforce it.
    unenforceable_root_size: str = REFUSE
    allow_privileged: bool = False
    allow_nesting: bool = False
    #: 1 (legacy hierarchies) or 2 (unified): raw cgroup keys differ.
    cgroup_version: int = 1
    #: limits.processes when the flavor sets none (0: no limit).
    default_processes: int = 0


@dataclasses.dataclass
class Limits:
    """What :func:`translate` produces."""
    config: dict
    devices: dict
    #: raw.lxc lines (exact cgroup values the daemon has no key for).
    raw_lxc: list = dataclasses.field(default_factory=list)
    #: Limit keys for every NIC of the instance (limits.ingress/egress).
    nic: dict = dataclasses.field(default_factory=dict)
    #: Human-readable notes about limits accepted but not enforced.
    warnings: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class NamespaceKey:
    """One ``syscontainer:`` extra spec: its rules and its daemon key."""
    name: str
    kind: type
    description: str
    minimum: int = None
    maximum: int = None
    lxd_key: str = None


NAMESPACE_KEYS = {key.name: key for key in (
    NamespaceKey(
        'processes', int, 'Most processes (and threads) the container may '
        'run at once; the pids cgroup enforces it. At least 3: fewer cannot '
        'even start the container.', 3, PIDS_MAX, 'limits.processes'),
    NamespaceKey(
        'cpu_priority', int, 'CPU priority against other containers, 0 to '
        '10 (10 is the default): lowers cpu.shares by 10 - value. Ignored '
        'when quota:cpu_shares sets the weight exactly.', 0, 10,
        'limits.cpu.priority'),
    NamespaceKey(
        'memory_swap_priority', int, 'How reluctantly the kernel swaps '
        'the container out, 0 to 10 (memory.swappiness becomes 70 - '
        'value). Only for a flavor with swap.', 0, 10,
        'limits.memory.swap.priority'),
    NamespaceKey(
        'idmap_isolated', bool, 'Give the container a user-id range of its '
        'own, not shared with other containers.', lxd_key=(
            'security.idmap.isolated')),
    NamespaceKey(
        'nesting', bool, 'Allow containers inside the container. Honoured '
        'only where [syscontainer] allow_nesting is set.',
        lxd_key='security.nesting'),
    NamespaceKey(
        'privileged', bool, 'Run the container privileged (container root '
        'is host root). Honoured only where [syscontainer] allow_privileged '
        'is set.', lxd_key='security.privileged'),
    NamespaceKey(
        'intercept', str, 'Comma-separated syscalls the daemon performs on '
        'the container\'s behalf: %s. mknod needs CAP_SYS_RESOURCE in the '
        'daemon\'s host namespace.' % ', '.join(INTERCEPTABLE)),
)}


def _int(key, value, minimum=None, maximum=None):
    try:
        number = int(str(value).strip())
    except ValueError:
        raise LimitError(what=key, reason=_('%r is not an integer') % value)
    if minimum is not None and number < minimum:
        raise LimitError(what=key, reason=_('%(v)d is below %(m)d') % {
            'v': number, 'm': minimum})
    if maximum is not None and number > maximum:
        raise LimitError(what=key, reason=_('%(v)d is above %(m)d') % {
            'v': number, 'm': maximum})
    return number


def _bool(key, value):
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        raise LimitError(what=key,
                         reason=_('%r is not true or false') % value)


class _Translation(object):
    def __init__(self, flavor, options):
        self.flavor = flavor
        self.options = options
        self.specs = dict(flavor.extra_specs or {})
        self.used = set()
        self.limits = Limits(config={}, devices={})

    def take(self, key):
        """The value of an extra spec, marked as handled (None if unset)."""
        self.used.add(key)
        return self.specs.get(key)

    def quota_int(self, name, minimum=0, maximum=None):
        key = QUOTA_PREFIX + name
        value = self.take(key)
        if value is None:
            return None
        return _int(key, value, minimum, maximum)

    def raw(self, v1_key, v2_key, value):
        if self.options.cgroup_version == 2:
            self.limits.raw_lxc.append('lxc.cgroup2.%s = %s' % (v2_key,
                                                                value))
        else:
            self.limits.raw_lxc.append('lxc.cgroup.%s = %s' % (v1_key,
                                                               value))


def _cpu(t):
    flavor = t.flavor
    if flavor.vcpus < 1:
        raise LimitError(what='vcpus', reason=_('must be at least 1'))
    # A count: the daemon gives the container that many CPUs (cpuset).
    t.limits.config['limits.cpu'] = str(flavor.vcpus)

    shares = t.quota_int('cpu_shares', CPU_SHARES_MIN, CPU_SHARES_MAX)
    if shares is not None:
        if t.options.cgroup_version == 2:
            # The kernel's own shares -> weight conversion.
            t.raw(None, 'cpu.weight', 1 + (shares - 2) * 9999 // 262142)
        else:
            t.raw('cpu.shares', None, shares)

    period = t.take(QUOTA_PREFIX + 'cpu_period')
    quota = t.quota_int('cpu_quota', minimum=None)
    if period is not None:
        period = _int(QUOTA_PREFIX + 'cpu_period', period, 0, CFS_PERIOD_MAX)
        if period == 0:  # Nova: "0 means no value"
            period = None
        elif period < CFS_PERIOD_MIN:
            raise LimitError(
                what=QUOTA_PREFIX + 'cpu_period',
                reason=_('must be 0 or between %(a)d and %(b)d us') % {
                    'a': CFS_PERIOD_MIN, 'b': CFS_PERIOD_MAX})
    if quota is not None and quota >= 0 and quota < CFS_QUOTA_MIN:
        raise LimitError(what=QUOTA_PREFIX + 'cpu_quota',
                         reason=_('must be negative (no limit) or at least '
                                  '%d us') % CFS_QUOTA_MIN)
    if quota is not None and quota > 0:
        # Nova's quota is per vCPU; the container has one cgroup for all.
        total = quota * flavor.vcpus
        if total > CFS_QUOTA_MAX:
            raise LimitError(
                what=QUOTA_PREFIX + 'cpu_quota',
                reason=_('%(q)d us x %(n)d vCPUs is above the kernel\'s '
                         '%(m)d us') % {'q': quota, 'n': flavor.vcpus,
                                        'm': CFS_QUOTA_MAX})
        if t.options.cgroup_version == 2:
            t.raw(None, 'cpu.max', '%d %d' % (total, period or 100000))
        else:
            t.raw('cpu.cfs_period_us', None, period or 100000)
            t.raw('cpu.cfs_quota_us', None, total)
    elif period is not None:
        if t.options.cgroup_version == 2:
            t.raw(None, 'cpu.max', 'max %d' % period)
        else:
            t.raw('cpu.cfs_period_us', None, period)


def _memory(t):
    flavor = t.flavor
    if flavor.memory_mb < 1:
        raise LimitError(what='memory_mb', reason=_('must be at least 1'))
    config = t.limits.config
    config['limits.memory'] = '%dMiB' % flavor.memory_mb
    config['limits.memory.enforce'] = 'hard'
    config['limits.memory.swap'] = 'true' if flavor.swap else 'false'


def _root_disk(t):
    flavor = t.flavor
    options = t.options
    if flavor.ephemeral_gb:
        raise LimitError(
            what='ephemeral_gb',
            reason=_('containers have no ephemeral disk; use a flavor '
                     'with ephemeral_gb 0'))
    root = {'type': 'disk', 'path': '/', 'pool': options.storage_pool}
    if flavor.root_gb:
        if options.pool_enforces_size:
            root['size'] = '%dGiB' % flavor.root_gb
        elif options.unenforceable_root_size == WARN:
            t.limits.warnings.append(
                'root_gb=%d is not enforced: storage pool %s cannot limit '
                'a root disk' % (flavor.root_gb, options.storage_pool))
        else:
            raise LimitError(
                what='root_gb=%d' % flavor.root_gb,
                reason=_('storage pool %s cannot enforce a disk size; use a '
                         'btrfs, zfs or lvm pool or a flavor with root_gb '
                         '0') % options.storage_pool)
    root.update(_disk_io(t))
    t.limits.devices['root'] = root


def _disk_io(t):
    """quota:disk_* -> the root disk's limits.read/write/max.

    The daemon takes one value per direction, bytes/s or IOPS, so a flavor
    that sets both for one direction is refused; so is a total beside a
    read or write limit (as QEMU refuses it for libvirt). 0 means no limit.
    """
    keys = {}
    for direction, lxd_key in (('read', 'limits.read'),
                               ('write', 'limits.write'),
                               ('total', 'limits.max')):
        values = {}
        for metric, maximum in (('bytes', DISK_BYTES_MAX),
                                ('iops', DISK_IOPS_MAX)):
            value = t.quota_int('disk_%s_%s_sec' % (direction, metric),
                                maximum=maximum)
            if value:
                values[metric] = value
        if len(values) == 2:
            raise LimitError(
                what='quota:disk_%s_bytes_sec and quota:disk_%s_iops_sec' % (
                    direction, direction),
                reason=_('the daemon limits a disk by bytes or by IOPS per '
                         'direction, not both'))
        if 'bytes' in values:
            keys[lxd_key] = str(values['bytes'])
        elif 'iops' in values:
            keys[lxd_key] = '%diops' % values['iops']
    if 'limits.max' in keys and len(keys) > 1:
        raise LimitError(
            what='quota:disk_total_*',
            reason=_('a total limit cannot be combined with a read or '
                     'write limit'))
    return keys


def _vif(t):
    """quota:vif_* -> limits.ingress/egress on every NIC.

    Nova gives averages in kilobytes per second (1 kB = 1000 bytes, as
    libvirt hands them to tc), so N becomes exactly 8*N kbit. The daemon
    has no peak or burst, so those are refused unless 0.
    """
    for direction, lxd_key in (('inbound', 'limits.ingress'),
                               ('outbound', 'limits.egress')):
        average = t.quota_int('vif_%s_average' % direction,
                              maximum=VIF_AVERAGE_MAX)
        if average:
            t.limits.nic[lxd_key] = '%dkbit' % (average * 8)
        for metric in ('peak', 'burst'):
            if t.quota_int('vif_%s_%s' % (direction, metric)):
                raise LimitError(
                    what='quota:vif_%s_%s' % (direction, metric),
                    reason=_('the container daemon shapes a NIC to an '
                             'average rate only; it has no peak or burst'))


def _namespace(t):
    config = t.limits.config
    for key in sorted(k for k in t.specs if k.startswith(PREFIX)):
        name = key[len(PREFIX):]
        spec = NAMESPACE_KEYS.get(name)
        if spec is None:
            raise LimitError(what=key, reason=_('unknown key; known keys: '
                                                '%s') % ', '.join(
                sorted(PREFIX + k for k in NAMESPACE_KEYS)))
        value = t.take(key)
        if spec.kind is int:
            config[spec.lxd_key] = str(
                _int(key, value, spec.minimum, spec.maximum))
        elif spec.kind is bool:
            if _bool(key, value):
                config[spec.lxd_key] = 'true'
        else:
            for call in _intercepts(key, value):
                config['security.syscalls.intercept.%s' % call] = 'true'

    if (config.get('limits.memory.swap.priority') is not None and
            not t.flavor.swap):
        raise LimitError(what=PREFIX + 'memory_swap_priority',
                         reason=_('the flavor allows no swap'))
    for key, allowed, option in (
            ('security.privileged', t.options.allow_privileged,
             'allow_privileged'),
            ('security.nesting', t.options.allow_nesting, 'allow_nesting')):
        if config.get(key) == 'true' and not allowed:
            raise LimitError(
                what=PREFIX + key.split('.')[-1],
                reason=_('this cloud does not allow it ([syscontainer] '
                         '%s is not set)') % option)


def _intercepts(key, value):
    calls = [c.strip() for c in str(value).split(',') if c.strip()]
    unknown = sorted(set(calls) - set(INTERCEPTABLE))
    if not calls or unknown:
        raise LimitError(what=key, reason=_('expected a comma-separated '
                                            'list of %s') % ', '.join(
            INTERCEPTABLE))
    return sorted(set(calls))


def translate(flavor, image_properties=None, options=None):
    """Return the :class:`Limits` for ``flavor``.

    :param flavor: a ``nova.objects.Flavor`` or any object with ``vcpus``,
        ``memory_mb``, ``root_gb``, ``ephemeral_gb``, ``swap`` and
        ``extra_specs``.
    :param image_properties: the image's properties. They are user
        controlled and deliberately change nothing.
    :param options: :class:`Options`.
    :raises LimitError: for anything that cannot be enforced.
    """
    t = _Translation(flavor, options or Options())
    _cpu(t)
    _memory(t)
    _root_disk(t)
    _vif(t)
    _namespace(t)
    if t.options.default_processes:
        t.limits.config.setdefault('limits.processes',
                                   str(t.options.default_processes))
    unknown = sorted(key for key in t.specs
                     if key.startswith(QUOTA_PREFIX) and key not in t.used)
    if unknown:
        raise LimitError(
            what=', '.join(unknown),
            reason=_('this driver has no way to enforce these quota keys'))
    return t.limits
