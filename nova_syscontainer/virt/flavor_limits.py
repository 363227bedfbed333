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
"""Flavor and image properties -> container limits. Pure: no I/O.

:func:`translate` takes a flavor, the image's properties and the driver's
options and returns the daemon's instance ``config`` keys and ``devices``
that enforce them, or raises :class:`LimitError` for what cannot be
honoured. Nothing here talks to the daemon, so every rule is unit-tested.

The table of inputs, daemon keys and the kernel knobs that enforce them is
in ``doc/source/flavors.rst``.
"""

import dataclasses

from nova import exception
from nova.i18n import _

#: Extra-spec prefix Nova defines for hypervisor quotas.
QUOTA_PREFIX = 'quota:'

#: What a driver may do when a root disk size cannot be enforced.
REFUSE = 'refuse'
WARN = 'warn'


class LimitError(exception.InvalidInput):
    """A flavor or image asks for something the driver cannot honour.

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


@dataclasses.dataclass
class Limits:
    """What :func:`translate` produces."""
    config: dict
    devices: dict
    #: Human-readable notes about limits accepted but not enforced.
    warnings: list = dataclasses.field(default_factory=list)


def translate(flavor, image_properties=None, options=None):
    """Return the :class:`Limits` for ``flavor``.

    :param flavor: a ``nova.objects.Flavor`` or any object with ``vcpus``,
        ``memory_mb``, ``root_gb``, ``ephemeral_gb``, ``swap`` and
        ``extra_specs``.
    :param image_properties: mapping of the image's properties (user
        controlled: they can never raise a limit).
    :param options: :class:`Options`.
    :raises LimitError: for anything that cannot be enforced.
    """
    options = options or Options()
    config = {}
    devices = {}
    warnings = []

    if flavor.vcpus < 1:
        raise LimitError(what='vcpus', reason=_('must be at least 1'))
    config['limits.cpu'] = str(flavor.vcpus)

    if flavor.memory_mb < 1:
        raise LimitError(what='memory_mb', reason=_('must be at least 1'))
    config['limits.memory'] = '%dMiB' % flavor.memory_mb
    config['limits.memory.enforce'] = 'hard'
    config['limits.memory.swap'] = 'true' if flavor.swap else 'false'

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
            warnings.append(
                'root_gb=%d is not enforced: storage pool %s cannot limit '
                'a root disk' % (flavor.root_gb, options.storage_pool))
        else:
            raise LimitError(
                what='root_gb=%d' % flavor.root_gb,
                reason=_('storage pool %s cannot enforce a disk size; use a '
                         'btrfs, zfs or lvm pool or a flavor with root_gb '
                         '0') % options.storage_pool)
    devices['root'] = root

    unknown = sorted(key for key in (flavor.extra_specs or {})
                     if key.startswith(QUOTA_PREFIX))
    if unknown:
        raise LimitError(
            what=', '.join(unknown),
            reason=_('this driver does not enforce these quota keys yet'))

    return Limits(config=config, devices=devices, warnings=warnings)
