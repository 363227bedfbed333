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
"""Ports plugged here for a live migration towards this node.

``ComputeDriver.pre_live_migration`` plugs the instance's ports on the
destination (per-port bridge, veth pair, OVS port, egress qdisc) before
the container arrives. Nova unplugs them through
``rollback_live_migration_at_destination`` when the move fails, but only
if the source's nova-compute lives to send that call: when it dies
mid-move, its restart resets the migration (Nova's
``_reset_live_migration``, and :mod:`interrupted` for the daemons) and
nobody ever tells the destination. The ports would stay here for ever.

So the destination remembers, before plugging, what it plugs (the port
list as Nova handed it over, in a small JSON file under ``state_path``
that survives its own restart) and forgets it when the move ends either
way through Nova (post-migration or rollback at this destination).
:meth:`IncomingPorts.sweep`, run at init_host and on every resource update
(one database query, only while an entry is kept), settles what is left:

* the move is still going on (the instance has a task), or the instance
  now lives on this node: kept, or forgotten (its ports are its own);
* the instance is on another host at rest, or deleted: its ports are
  unplugged here, except one whose bridge a container of this host still
  uses (a leftover copy not yet removed, or, with two nodes sharing one
  kernel, the instance itself); such an entry is kept for the next pass.

Only names made from the remembered port ids are touched (see
:func:`vif.plan`, which validates them), never an interface found by its
MAC alone.
"""

import os

from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from oslo_log import log as logging
from oslo_serialization import jsonutils

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import network
from nova_syscontainer.virt import nics
from nova_syscontainer.virt import state_files
from nova_syscontainer.virt import vif as vif_mod

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

KEEP = 'keep'
FORGET = 'forget'
UNPLUG = 'unplug'


def decide(instance, nodename):
    """KEEP, FORGET or UNPLUG for a remembered instance (pure).

    :param instance: Nova's instance (deleted ones included), or None
        when Nova has no record of it any more.
    """
    if instance is None or instance.deleted:
        return UNPLUG
    if instance.task_state is not None:
        return KEEP  # the move, or another operation, is still going on
    if instance.host == nodename:
        return FORGET
    return UNPLUG


class IncomingPorts(object):
    """This node's record of ports plugged for incoming live moves."""

    def __init__(self, nodename):
        self.nodename = nodename
        self.path = os.path.join(CONF.state_path, 'syscontainer',
                                 'incoming-ports-%s.json' % nodename)

    def _load(self):
        return state_files.read_json(self.path)

    def add(self, instance, network_info):
        """Remember the ports about to be plugged for ``instance``."""
        with state_files.lock(self.path):
            entries = self._load()
            entries[instance.uuid] = {
                'id': instance.id, 'project_id': instance.project_id,
                'network_info': [dict(vif) for vif in network_info or []]}
            state_files.write_atomic(self.path, jsonutils.dumps(entries))

    def discard(self, uuid):
        with state_files.lock(self.path):
            entries = self._load()
            if entries.pop(uuid, None) is not None:
                state_files.write_atomic(self.path,
                                         jsonutils.dumps(entries))

    def uuids(self):
        return sorted(self._load())

    def _instances(self, context, uuids):
        """{uuid: Instance} of Nova's records (a live one over deleted)."""
        found = objects.InstanceList.get_by_filters(
            context.elevated(read_deleted='yes'), {'uuid': uuids},
            expected_attrs=[])
        seen = {}
        for inst in found:
            if inst.uuid not in seen or not inst.deleted:
                seen[inst.uuid] = inst
        return seen

    def sweep(self, context=None):
        """Unplug the ports of moves that ended elsewhere; their uuids."""
        entries = self._load()
        if not entries:
            return []
        context = context or nova_context.get_admin_context()
        found = self._instances(context, sorted(entries))
        unplugged = []
        for uuid, entry in sorted(entries.items()):
            instance = found.get(uuid)
            action = decide(instance, self.nodename)
            if action == KEEP:
                continue
            if action == UNPLUG:
                why = ('its instance is deleted' if instance is None or
                       instance.deleted else
                       'its instance is on host %s' % instance.host)
                if instance is None:
                    instance = objects.Instance(
                        uuid=uuid, id=entry.get('id'),
                        project_id=entry.get('project_id'))
                if not self._unplug(instance, entry, why):
                    continue
                unplugged.append(uuid)
            self.discard(uuid)
        return unplugged

    def _unplug(self, instance, entry, why):
        """Unplug an entry's ports; False if one is still in use here."""
        network_info = network_model.NetworkInfo.hydrate(
            entry.get('network_info') or [])
        in_use = []
        for vif in network_info:
            try:
                host_plan = vif_mod.plan(vif, None, instance.uuid)
            except nova_exception.NovaException:
                continue  # never plugged: refused before plugging
            if network.bridge_in_use(host_plan):
                in_use.append(host_plan.port_id)
        if in_use:
            LOG.debug('Ports %s of a live migration that ended elsewhere '
                      'still serve a container here; kept for now', in_use,
                      instance=instance)
            return False
        LOG.warning('Unplugging the ports a live migration to this node '
                    'plugged: %s', why, instance=instance)
        nics.unplug_all(instance, network_info, only_unused=True)
        return True

    def sweep_safely(self, context=None):
        """:meth:`sweep` that never fails the pass it runs in."""
        try:
            return self.sweep(context)
        except Exception:
            LOG.exception('Could not settle the ports of live migrations to '
                          'this node; the next pass tries again')
            return []
