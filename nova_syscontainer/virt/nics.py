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
"""An instance's NICs: host plugging (:mod:`network`) + daemon devices.

The driver calls these from spawn, destroy, plug_vifs/unplug_vifs,
attach/detach_interface, suspend/resume and the migrations; the pure
mapping lives in :mod:`vif` (the ports' plans come made, once per
operation, in an :class:`operation_plan.Plan`), host I/O in
:mod:`network`, daemon I/O in :mod:`client`.
"""

from nova import exception as nova_exception
from oslo_log import log as logging
from oslo_utils import excutils

from nova_syscontainer.virt import network
from nova_syscontainer.virt import vif as vif_mod

LOG = logging.getLogger(__name__)


def plug_all(instance, nic_plans):
    """Plug every planned port on the host (idempotent); undo all on failure.

    :param nic_plans: the ``(vif, HostPlan)`` pairs of the operation's
        plan (:attr:`operation_plan.Plan.nics`), made once.
    """
    done = []
    try:
        for vif, host_plan in nic_plans:
            network.plug(instance, vif, host_plan)
            done.append((vif, host_plan))
    except Exception:
        with excutils.save_and_reraise_exception():
            for vif, host_plan in done:
                _unplug_quietly(instance, vif, host_plan)


def _unplug_quietly(instance, vif, host_plan):
    try:
        network.unplug(instance, vif, host_plan)
    except Exception as e:
        LOG.warning('Could not unplug port %(port)s: %(error)s',
                    {'port': host_plan.port_id, 'error': e},
                    instance=instance)


def unplug_all(instance, network_info, only_unused=False):
    """Remove every port's host interfaces; never raises.

    :param only_unused: keep a port whose bridge still carries a
        container's NIC (after a live migration between two daemons of one
        host, the target's container hangs on the same bridge).
    """
    for vif in network_info or []:
        try:
            host_plan = vif_mod.plan(vif, None, instance.uuid)
        except nova_exception.NovaException:
            continue  # never plugged: not a type we plug
        if only_unused and network.bridge_in_use(host_plan):
            LOG.info('Port %s still serves a container here; kept',
                     host_plan.port_id, instance=instance)
            continue
        _unplug_quietly(instance, vif, host_plan)
    remove_stale(instance, network_info)


def remove_stale(instance, network_info):
    """Remove the container ends a CRIU checkpoint left on the host."""
    return network.remove_stale_container_ends(
        [vif.get('address') for vif in network_info or []])


def remove_stale_for(record):
    """remove_stale for a daemon record: the MACs of our NIC devices."""
    return network.remove_stale_container_ends(
        [device.get('hwaddr') for name, device in
         (record.get('devices') or {}).items()
         if vif_mod.port_of_device(name)])


def neutron_events(network_info):
    """Events to wait for: ports Neutron has not reported up yet.

    Like Nova's libvirt driver: a port already active will not go
    through a down->up transition, so waiting for it would only time out.
    """
    return [('network-vif-plugged', vif['id'])
            for vif in network_info or []
            if vif.get('active', True) is False]


def attach(client, name, instance, vif, nic_limits=None):
    """Plug one port and add its NIC to the container (running or not)."""
    host_plan = vif_mod.plan(vif, nic_limits, instance.uuid)
    network.plug(instance, vif, host_plan)
    try:
        writable = client.get_writable(name)
        new = vif_mod.nic_devices_of([(vif, host_plan)], nic_limits,
                                     existing=writable['devices'])
        if new:
            body = dict(writable,
                        devices=dict(writable['devices'], **new))
            client.update_instance(name, body)
    except Exception:
        with excutils.save_and_reraise_exception():
            _unplug_quietly(instance, vif, host_plan)


def detach(client, name, instance, vif):
    """Remove the port's NIC from the container, then unplug it."""
    device = vif_mod.device_name(vif['id'])
    writable = client.get_writable(name)
    if device in writable['devices']:
        body = dict(writable, devices={
            key: value for key, value in writable['devices'].items()
            if key != device})
        client.update_instance(name, body)
    try:
        host_plan = vif_mod.plan(vif, None, instance.uuid)
    except nova_exception.NovaException:
        return
    network.unplug(instance, vif, host_plan)


def with_limits(devices, nic_limits):
    """Daemon devices with our NICs' ingress limit set to a new flavor's."""
    return vif_mod.with_nic_limits(devices, nic_limits)
