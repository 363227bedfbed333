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
"""What a Neutron port looks like on the host and in the container. Pure.

Every port becomes the same three pieces, whatever its vif type:

* a per-port Linux bridge ``qbr<port>`` that the container's NIC hangs on
  (a daemon ``nic`` device of nictype ``bridged``: the daemon creates a veth
  pair at each start -- also at a CRIU restore -- and shapes traffic towards
  the container on its host side, ``limits.ingress``);
* a veth pair ``qvb<port>`` (in that bridge; traffic from the container
  leaves through it, so an HTB qdisc on it limits the container's egress)
  to an outer end the networking backend expects:

  - ``ovs`` (hybrid or not): ``qvo<port>`` in the integration bridge, with
    Neutron's ``external_ids`` (os-vif's OVS plugin plugs it, as it does
    for libvirt's hybrid plug);
  - ``tap``: the port's ``devname`` (``tap<port>``) alone, for a routing
    backend.

(``bridge`` ports never reach a driver: Nova 34 itself refuses Neutron's
Linux-bridge binding when it builds the instance's network info.)

Why not give the daemon the port's ``devname`` as the NIC's host-side name:
LXD 5.0.2 creates a NIC twice when it restores a CRIU checkpoint, so a
fixed host name makes every resume and live migration fail ("File exists",
measured). The per-port bridge and veth pair stay while the container is
stopped, suspended or restarted, so Neutron's view of the port never
changes.
"""

import dataclasses
import re

from nova.i18n import _
from nova.network import model as network_model
from oslo_utils import uuidutils

from nova_syscontainer import exception

#: Linux interface names are at most 15 bytes; Nova uses 14 (NIC_NAME_LEN).
NAME_LEN = network_model.NIC_NAME_LEN

#: A host interface name this driver will create, configure or delete:
#: what ``ip`` takes as one plain name (no "/", no white space, not "."
#: or ".."), at most 15 bytes.
IFNAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$')

#: Daemon device names of the NICs this driver made: prefix + port id.
DEVICE_PREFIX = 'nic-'

OVS = 'ovs'
TAP = 'tap'
SUPPORTED_VIF_TYPES = (network_model.VIF_TYPE_OVS,
                       network_model.VIF_TYPE_TAP)


def port_name(prefix, port_id):
    """os-vif's and Nova's naming of per-port host interfaces."""
    return (prefix + port_id)[:NAME_LEN]


@dataclasses.dataclass(frozen=True)
class HostPlan:
    """The host interfaces of one port and the container NIC on them."""
    port_id: str
    vif_type: str
    #: Per-port Linux bridge, the daemon NIC's parent.
    bridge: str
    #: Inner veth end, in ``bridge``; egress shaping lives on it.
    inner: str
    #: Outer veth end: qvo<port> (ovs) or the port's devname (tap).
    outer: str
    #: The integration bridge the outer end joins (ovs), or None (tap).
    network_bridge: str
    mac: str
    mtu: int
    #: Egress (container -> network) rate in kbit/s, or None.
    egress_kbit: int = None


def device_name(port_id):
    """The daemon device of a port's NIC."""
    return DEVICE_PREFIX + port_id


def port_of_device(device):
    """The port id of a daemon device name of ours, else None."""
    if device.startswith(DEVICE_PREFIX):
        return device[len(DEVICE_PREFIX):]
    return None


def _mtu(vif):
    network = vif.get('network') or {}
    mtu = (network.get('meta') or {}).get('mtu')
    return int(mtu) if mtu else None


def _kbit(value):
    """'800kbit' (flavor_limits' form) -> 800."""
    if value is None:
        return None
    if not value.endswith('kbit'):
        raise ValueError('unexpected rate %r' % value)
    return int(value[:-len('kbit')])


def plan(vif, nic_limits=None, instance_uuid=None):
    """The :class:`HostPlan` of a Nova VIF (``nova.network.model.VIF``).

    :param nic_limits: :attr:`flavor_limits.Limits.nic`.
    :raises InstanceBuildRefused: for a vif type this driver cannot plug
        (the message names it and the ones it can), or a port with no MAC.
    """
    vif_type = vif.get('type')
    port_id = vif['id']

    def refuse(reason):
        raise exception.InstanceBuildRefused(
            instance_uuid=instance_uuid or '-', reason=reason)

    if vif_type not in SUPPORTED_VIF_TYPES:
        refuse(_('port %(port)s has vif type %(type)s; this driver plugs '
                 'only %(supported)s ports') % {
            'port': port_id, 'type': vif_type,
            'supported': ', '.join(SUPPORTED_VIF_TYPES)})
    vnic_type = vif.get('vnic_type') or network_model.VNIC_TYPE_NORMAL
    if vnic_type != network_model.VNIC_TYPE_NORMAL:
        refuse(_('port %(port)s has vnic type %(vnic)s; a container NIC is '
                 'a veth, so only "normal" ports can be plugged') % {
            'port': port_id, 'vnic': vnic_type})
    if not uuidutils.is_uuid_like(port_id):
        # Every host interface name below is made from it.
        refuse(_('port id %r is not a UUID') % (port_id,))
    if not vif.get('address'):
        refuse(_('port %s has no MAC address') % port_id)
    network = vif.get('network') or {}
    devname = vif.get('devname') or port_name('tap', port_id)
    for what, name in (('devname', devname),
                       ('bridge', network.get('bridge'))):
        if name is not None and not IFNAME.match(name):
            refuse(_('port %(port)s has %(what)s %(name)r, which is not an '
                     'interface name (at most 15 of A-Z a-z 0-9 _ . : -)') % {
                'port': port_id, 'what': what, 'name': name})
    if vif_type == OVS:
        outer = port_name('qvo', port_id)
    else:
        outer = devname
    network_bridge = network.get('bridge') if vif_type == OVS else None
    if vif_type == OVS and not network_bridge:
        refuse(_('port %(port)s (%(type)s) names no bridge to plug '
                 'into') % {'port': port_id, 'type': vif_type})
    limits = nic_limits or {}
    return HostPlan(
        port_id=port_id, vif_type=vif_type,
        bridge=port_name('qbr', port_id),
        inner=port_name('qvb', port_id),
        outer=outer, network_bridge=network_bridge,
        mac=vif['address'], mtu=_mtu(vif),
        egress_kbit=_kbit(limits.get('limits.egress')))


def nic_device(host_plan, interface, nic_limits=None):
    """The daemon's ``nic`` device of a port.

    :param interface: the interface name inside the container (eth0...).
    Traffic towards the container is limited by the daemon itself
    (``limits.ingress`` on the host side of its veth); the other direction
    is shaped on the port's inner veth end (see :func:`plan`), because
    the daemon's ``limits.egress`` needs a traffic policer that kernels
    without CONFIG_NET_ACT_POLICE lack.
    """
    device = {
        'type': 'nic',
        'nictype': 'bridged',
        'parent': host_plan.bridge,
        'name': interface,
        'hwaddr': host_plan.mac,
    }
    if host_plan.mtu:
        device['mtu'] = str(host_plan.mtu)
    ingress = (nic_limits or {}).get('limits.ingress')
    if ingress:
        device['limits.ingress'] = ingress
    return device


def interface_names(devices):
    """Interface names taken by NIC devices, in a daemon device dict."""
    return {dev.get('name') for dev in devices.values()
            if dev.get('type') == 'nic'}


def next_interface(devices):
    """The first ``ethN`` no NIC of ``devices`` uses."""
    taken = interface_names(devices)
    index = 0
    while 'eth%d' % index in taken:
        index += 1
    return 'eth%d' % index


def nic_devices(network_info, nic_limits=None, instance_uuid=None,
                existing=None):
    """Daemon devices for every VIF, named ``nic-<port id>``.

    Container interfaces are eth0, eth1... in network_info's order,
    after any NIC already in ``existing``.
    """
    return nic_devices_of(
        [(vif, plan(vif, nic_limits, instance_uuid))
         for vif in network_info or []], nic_limits, existing=existing)


def nic_devices_of(nic_plans, nic_limits=None, existing=None):
    """:func:`nic_devices` from ``(vif, HostPlan)`` pairs already made."""
    devices = dict(existing or {})
    result = {}
    for _vif, host_plan in nic_plans:
        name = device_name(host_plan.port_id)
        if name in devices:
            continue
        device = nic_device(host_plan, next_interface(devices), nic_limits)
        devices[name] = device
        result[name] = device
    return result


def with_nic_limits(devices, nic_limits):
    """``devices`` with our NICs' ``limits.ingress`` set to a new flavor's."""
    result = {}
    ingress = (nic_limits or {}).get('limits.ingress')
    for name, device in devices.items():
        if port_of_device(name) and device.get('type') == 'nic':
            device = dict(device)
            device.pop('limits.ingress', None)
            if ingress:
                device['limits.ingress'] = ingress
        result[name] = device
    return result
