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
"""Host side of an instance's ports: plug and unplug (see :mod:`vif`).

OVS ports go through os-vif's OVS plugin (hybrid plug: per-port Linux
bridge, veth pair, OVS port with Neutron's ``external_ids``). Tap ports
(routing backends), which Nova does not hand to os-vif, are plugged here
with ``ip``. Egress shaping is an HTB qdisc on the port's inner veth end.
Everything is idempotent: plugging twice, or unplugging what is gone, is
fine. Nothing here ever gives an interface an address.
"""

import os
import re
import threading

from nova.network import os_vif_util
import os_vif
from os_vif import exception as osv_exception
from os_vif import objects as osv_objects
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_serialization import jsonutils

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer import privsep
from nova_syscontainer.privsep import linux_net
from nova_syscontainer.virt import vif as vif_mod

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

_init_lock = threading.Lock()
_initialized = False

SYS_NET = '/sys/class/net'


def initialize():
    """Load os-vif's plugins once per process; ready the privsep contexts.

    The host-side changes (bridges, veths, qdiscs; os-vif's own) run in
    privsep daemons holding CAP_NET_ADMIN only (see
    :mod:`nova_syscontainer.privsep`), started the first time one is
    needed. A root nova-compute with no helper command configured starts
    them with its own environment's privsep-helper, no sudo.
    """
    global _initialized
    with _init_lock:
        if _initialized:
            return
        os_vif.initialize()
        from vif_plug_ovs import privsep as ovs_privsep
        for context in (ovs_privsep.vif_plug, privsep.net_admin):
            helper = privsep.start_with_local_helper(context)
            if helper:
                LOG.info('privsep daemon of %s started with %s',
                         context.pypath, helper)
        _initialized = True


def _run(*cmd, ok=(0,)):
    """An unprivileged command (reading links and qdiscs)."""
    try:
        out, _err = processutils.execute(*cmd, check_exit_code=list(ok))
    except (processutils.ProcessExecutionError, OSError) as e:
        raise exception.VifPlugFailed(command=' '.join(cmd), reason=str(e))
    return out


def _priv(call, *args):
    """A privileged call of :mod:`privsep.linux_net`, errors made ours."""
    initialize()
    try:
        return call(*args)
    except (processutils.ProcessExecutionError, OSError, ValueError) as e:
        raise exception.VifPlugFailed(
            command='%s%r' % (call.__name__, args), reason=str(e))


def exists(dev):
    return os.path.exists(os.path.join(SYS_NET, dev))


def _master(dev):
    link = os.path.join(SYS_NET, dev, 'master')
    return os.path.basename(os.readlink(link)) if os.path.islink(link) \
        else None


def _ensure_bridge(name):
    if not exists(name):
        _priv(linux_net.add_bridge, name)
    # A bridge of ours carries no address, not even an IPv6 link-local.
    try:
        _priv(linux_net.disable_ipv6, name)
    except exception.VifPlugFailed as e:
        LOG.debug('IPv6 stays on %s: %s', name, e)
    _priv(linux_net.set_up, name)


def _ensure_veth(inner, outer, mtu):
    if not exists(inner):
        _priv(linux_net.add_veth, inner, outer)
    for dev in (inner, outer):
        _priv(linux_net.set_up, dev, mtu)


def _set_master(dev, bridge):
    if _master(dev) != bridge:
        _priv(linux_net.set_master, dev, bridge)


def bridge_in_use(host_plan):
    """Whether the port's bridge has a member besides its own veth."""
    try:
        members = set(os.listdir(os.path.join(SYS_NET, host_plan.bridge,
                                              'brif')))
    except OSError:
        return False
    return bool(members - {host_plan.inner})


def _delete(dev):
    if exists(dev):
        _priv(linux_net.delete_link, dev)


def _ovs_object(vif):
    """os-vif's object of an OVS port, always hybrid-plugged.

    A port bound without a datapath type gets [syscontainer]
    ovs_datapath_type, so that plugging never switches the integration
    bridge to a datapath the kernel lacks.
    """
    obj = os_vif_util.nova_to_osvif_vif(vif)
    profile = obj.port_profile
    if not (profile.obj_attr_is_set('datapath_type') and
            profile.datapath_type):
        profile.datapath_type = CONF.syscontainer.ovs_datapath_type
    if isinstance(obj, osv_objects.vif.VIFBridge):
        return obj
    fields = {key: getattr(obj, key) for key in (
        'id', 'address', 'network', 'has_traffic_filtering',
        'preserve_on_delete', 'active', 'vif_name')
        if obj.obj_attr_is_set(key)}
    return osv_objects.vif.VIFBridge(
        plugin='ovs', port_profile=profile,
        bridge_name=vif_mod.port_name('qbr', vif['id']), **fields)


def _checksum_in_software(dev):
    """TX checksum offload off on the veth end that sends into OVS.

    OVS's userspace datapath (netdev, Open vSwitch 3.1) reads the qvo end
    through a packet socket and forwards a CHECKSUM_PARTIAL packet as it
    is: the guest's TCP segments reached the router and the metadata proxy
    with bad checksums and were dropped (DHCP worked: its client computes
    its UDP checksum). With no offload on qvb, the kernel completes each
    checksum as the port's bridge forwards into it. Neutron turns offload
    off on its own veths on netdev bridges the same way.
    """
    _priv(linux_net.tx_checksum_off, dev)


def _os_vif(action, instance, vif):
    """os_vif.plug or os_vif.unplug of an OVS port, errors made ours."""
    initialize()
    try:
        getattr(os_vif, action)(_ovs_object(vif),
                                os_vif_util.nova_to_osvif_instance(instance))
    except osv_exception.ExceptionBase as e:
        raise exception.VifPlugFailed(command='os-vif %s' % action,
                                      reason=str(e))


def plug(instance, vif, host_plan):
    """Create the port's host interfaces (idempotent).

    :raises VifPlugFailed: with the command or os-vif's reason.
    """
    if host_plan.vif_type == vif_mod.OVS:
        _os_vif('plug', instance, vif)
        if _ovs_object(vif).port_profile.datapath_type == 'netdev':
            _checksum_in_software(host_plan.inner)
    else:
        _ensure_bridge(host_plan.bridge)
        _ensure_veth(host_plan.inner, host_plan.outer, host_plan.mtu)
        _set_master(host_plan.inner, host_plan.bridge)
    shape_egress(host_plan.inner, host_plan.egress_kbit)
    LOG.debug('Plugged port %(port)s: %(bridge)s, %(inner)s <-> %(outer)s',
              {'port': host_plan.port_id, 'bridge': host_plan.bridge,
               'inner': host_plan.inner, 'outer': host_plan.outer},
              instance=instance)


def unplug(instance, vif, host_plan):
    """Remove the port's host interfaces; what is gone already is fine."""
    if host_plan.vif_type == vif_mod.OVS:
        _os_vif('unplug', instance, vif)
    else:
        # Deleting one end of a veth pair deletes the other.
        _delete(host_plan.inner)
        _delete(host_plan.outer)
    _delete(host_plan.bridge)


def _has_our_root_qdisc(dev):
    """Whether ``dev``'s root qdisc is already the HTB ``1:`` we add."""
    try:
        qdiscs = jsonutils.loads(
            _run('tc', '-j', 'qdisc', 'show', 'dev', dev, 'root') or '[]')
    except ValueError:
        return False
    return any(q.get('kind') == 'htb' and q.get('handle') == '1:'
               for q in qdiscs)


def shape_egress(dev, kbit):
    """Limit what ``dev`` sends to ``kbit`` kbit/s (HTB), or unlimit it.

    Idempotent, and a new rate replaces the old one (resize, plugging
    again at start-up or power-on): the kernel refuses to "replace" an
    HTB root qdisc by one of the same handle ("Change operation not
    supported"), so an existing one is kept and only its class changes.
    """
    if kbit:
        if not _has_our_root_qdisc(dev):
            _priv(linux_net.add_htb_root, dev)
        _priv(linux_net.set_htb_rate, dev, kbit)
    elif exists(dev):
        # "No such file" (2) when there is no root qdisc to delete.
        _priv(linux_net.delete_root_qdisc, dev)


#: How LXD 5.0 names the ends of a NIC's veth pair before it moves one into
#: the container ("veth" and 8 hex digits); the leftover keeps that name.
LXD_VETH_NAME = re.compile(r'^veth[0-9a-f]{8}$')


def stale_container_ends(links, macs):
    """Names, among ``ip -j -d link`` records, of container ends left behind.

    Pure. A link qualifies only if everything about it says so: a veth
    named as LXD names the ends it creates, carrying one of the instance's
    MACs, down and in no bridge. A MAC alone would not do: tenants choose
    their ports' MACs, and an interface of another instance, or of the
    host, may carry the same one.
    """
    wanted = {mac.lower() for mac in macs if mac}
    return [link['ifname'] for link in links
            if (link.get('address') or '').lower() in wanted and
            (link.get('linkinfo') or {}).get('info_kind') == 'veth' and
            LXD_VETH_NAME.match(link.get('ifname') or '') and
            link.get('operstate') != 'UP' and not link.get('master')]


def remove_stale_container_ends(macs):
    """Delete the veths a checkpoint left in the host's namespace.

    LXD 5.0.2 leaves the container end of a NIC's veth pair behind, down
    and detached (named ``veth<8 hex>``), when it checkpoints a container
    with CRIU (suspend, live migration): see :func:`stale_container_ends`
    for how one is recognised. Deleting it deletes its peer too. Returns
    the names deleted.
    """
    if not any(macs):
        return []
    try:
        links = jsonutils.loads(_run('ip', '-j', '-d', 'link', 'show') or
                                '[]')
    except (exception.VifPlugFailed, ValueError) as e:
        LOG.warning('Could not list host interfaces: %s', e)
        return []
    removed = []
    for dev in stale_container_ends(links, macs):
        try:
            _delete(dev)
        except exception.VifPlugFailed as e:
            LOG.warning('Could not remove stale interface %s: %s', dev, e)
            continue
        removed.append(dev)
    if removed:
        LOG.info('Removed stale container interfaces %s', removed)
    return removed
