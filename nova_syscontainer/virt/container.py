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
"""What a Nova instance looks like as a daemon instance. Pure: no I/O.

* the container's name and the ``user.*`` keys that mark it as ours,
* the body of the create request,
* the mapping of the daemon's status to Nova's power states.
"""

import re

from nova.compute import power_state
from nova.i18n import _

from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client

#: Config keys that mark a container as created by this driver for Nova.
#: Only containers carrying MANAGED_KEY are ever listed or touched.
MANAGED_KEY = 'user.nova_syscontainer.managed'
UUID_KEY = 'user.nova_syscontainer.instance_uuid'
#: The Nova compute node the container belongs to; a node lists only its own.
HOST_KEY = 'user.nova_syscontainer.host'
IMAGE_KEY = 'user.nova_syscontainer.image_id'
FLAVOR_KEY = 'user.nova_syscontainer.flavor'
PRODUCT_NAME_KEY = 'environment.product_name'
PRODUCT_NAME = 'OpenStack Nova'

_NAME_RE = re.compile(r'^[a-zA-Z][a-zA-Z0-9-]{0,62}$')

_POWER_STATES = {
    daemon_client.RUNNING: power_state.RUNNING,
    daemon_client.FROZEN: power_state.PAUSED,
    daemon_client.STOPPED: power_state.SHUTDOWN,
    daemon_client.ERROR: power_state.CRASHED,
}


def name(instance):
    """The container's name: Nova's instance name (``instance_name``).

    Operators find it as ``OS-EXT-SRV-ATTR:instance_name``, as they would a
    libvirt domain. It must be a valid host name, which the default
    ``instance_name_template`` (instance-%08x) always is.
    """
    value = instance.name
    if not _NAME_RE.match(value) or value.endswith('-'):
        raise exception.InstanceBuildRefused(
            instance_uuid=instance.uuid,
            reason=_('instance name %r is not a valid container name; set '
                     'instance_name_template to produce host names') % value)
    return value


def is_managed(record, nodename=None):
    """Whether a daemon record was created by this driver (for nodename)."""
    config = record.get('config', {})
    if config.get(MANAGED_KEY) != 'true':
        return False
    return nodename is None or config.get(HOST_KEY) == nodename


def instance_uuid(record):
    return record.get('config', {}).get(UUID_KEY)


def power_state_of(status, stateful=False):
    """Nova power state of a daemon status string.

    A container stopped with its state saved by CRIU is SUSPENDED.
    """
    if status == daemon_client.STOPPED and stateful:
        return power_state.SUSPENDED
    return _POWER_STATES.get(status, power_state.NOSTATE)


#: Config keys derived from the flavor: a resize replaces all of them.
FLAVOR_CONFIG_PREFIXES = ('limits.', 'security.', 'raw.lxc')


def _instance_config(instance, nodename, limits, raw_lxc, checkpoint_config):
    config = dict(checkpoint_config or {})
    config.update(limits.config)
    lines = list(raw_lxc) + list(limits.raw_lxc)
    if lines:
        config['raw.lxc'] = '\n'.join(lines)
    config.update({
        MANAGED_KEY: 'true',
        UUID_KEY: instance.uuid,
        HOST_KEY: nodename,
        IMAGE_KEY: instance.image_ref or '',
        FLAVOR_KEY: instance.flavor.name,
        'boot.autostart': 'false',
        # What cloud-init's OpenStack datasource (and ds-identify) look
        # for on a machine without DMI: PID 1's environment names the
        # platform (cloud-init 22.4 detect_openstack(), as nova-lxd set it).
        PRODUCT_NAME_KEY: PRODUCT_NAME,
    })
    return config


def create_body(instance, nodename, fingerprint, limits, profiles,
                raw_lxc=(), checkpoint_config=None):
    """The ``POST /1.0/instances`` body of a new, stopped container.

    :param limits: :class:`flavor_limits.Limits` for the instance.
    :param raw_lxc: raw.lxc lines of the driver's own (for CRIU), put
        before the limits' lines.
    :param checkpoint_config: config keys of the driver's own for CRIU
        (:func:`checkpoint_policy.create_config`: the seccomp line that
        refuses UTS namespaces); a key the flavor sets wins.
    """
    config = _instance_config(instance, nodename, limits, raw_lxc,
                              checkpoint_config)
    return {
        'name': name(instance),
        'type': 'container',
        'profiles': list(profiles),
        'config': config,
        'devices': dict(limits.devices),
        'description': 'Nova instance %s' % instance.uuid,
        'source': {'type': 'image', 'fingerprint': fingerprint},
    }


def reconfigured(writable, instance, nodename, limits, raw_lxc=(),
                 checkpoint_config=None):
    """The ``PUT`` body giving an existing container a new flavor's limits.

    Every key derived from a flavor is replaced, so no limit of the old
    flavor survives; the root disk device is replaced the same way, other
    devices and keys (volatile state) are kept. The checkpoint lines and
    keys (``raw.lxc``, ``security.syscalls.deny``) are among the replaced
    ones, so they are given again, as at create.
    """
    config = {key: value for key, value in writable['config'].items()
              if not key.startswith(FLAVOR_CONFIG_PREFIXES)}
    config.update(_instance_config(instance, nodename, limits, raw_lxc,
                                   checkpoint_config))
    devices = dict(writable['devices'])
    devices.update(limits.devices)
    return dict(writable, config=config, devices=devices)
