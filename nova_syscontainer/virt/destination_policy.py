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
"""The destination's own policy for a container that arrives. Pure: no I/O.

A migrated or resized container arrives with the config its source node
wrote: the source's privileged and nesting gates, its cgroup version's raw
keys, its CRIU raw.lxc lines, its root disk enforcement. The destination
must not inherit any of it. So:

* before a live migration is accepted (check_can_live_migrate_destination)
  :func:`check` translates the instance's flavor with the destination's
  :class:`~nova_syscontainer.virt.flavor_limits.Options` and refuses with
  MigrationPreCheckError what this node would refuse to build (a
  privileged or nesting flavor where those are not allowed, a root disk
  size this pool cannot enforce under ``refuse``), so that Nova's
  conductor tries another host and the container never leaves its source;
* once it is here (finish_migration, post_live_migration_at_destination)
  :func:`reapply` gives it the config this node would give a new container
  of that flavor: every flavor-derived key (``limits.*``, ``security.*``,
  ``raw.lxc``) and the root disk device replaced, this node's marker set.
  :func:`changes` names what the re-application changed, for the log.

A cold migration or resize has no destination pre-check in Nova's driver
API (the destination is first asked in finish_migration), so there a
refusal fails finish_migration with the policy's message as the fault.
"""

from nova import exception as nova_exception
from nova.i18n import _

from nova_syscontainer.virt import container
from nova_syscontainer.virt import flavor_limits


def check(translate, instance):
    """Raise MigrationPreCheckError if this node's policy refuses it.

    :param translate: a callable(instance) returning the
        :class:`~flavor_limits.Limits` this node gives the instance (the
        driver's ``_limits``), raising LimitError or InvalidInput.
    :returns: the limits, for the caller to apply later.
    """
    try:
        return translate(instance)
    except (flavor_limits.LimitError, nova_exception.InvalidInput) as e:
        raise nova_exception.MigrationPreCheckError(
            reason=_('this node\'s policy refuses the instance\'s flavor: '
                     '%s') % e.format_message())


def reapply(writable, instance, nodename, limits, raw_lxc,
            checkpoint_config=None):
    """The PUT body that gives an arrived container this node's policy.

    ``raw_lxc`` and ``checkpoint_config``: this node's checkpoint lines and
    keys (:mod:`checkpoint_policy`).
    """
    return container.reconfigured(writable, instance, nodename, limits,
                                  raw_lxc=raw_lxc,
                                  checkpoint_config=checkpoint_config)


def changes(before, after):
    """Sorted names of the policy keys and devices that differ."""
    def policy(body):
        config = {key: value for key, value in body['config'].items()
                  if key.startswith(container.FLAVOR_CONFIG_PREFIXES) or
                  key == container.HOST_KEY}
        return config, body.get('devices') or {}

    old_config, old_devices = policy(before)
    new_config, new_devices = policy(after)
    keys = {key for key in set(old_config) | set(new_config)
            if old_config.get(key) != new_config.get(key)}
    keys |= {'devices.%s' % dev for dev in set(old_devices) | set(new_devices)
             if old_devices.get(dev) != new_devices.get(dev)}
    return sorted(keys)
