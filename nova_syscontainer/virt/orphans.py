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
"""The periodic sweep of orphan containers.

A container is an orphan when it carries this node's marker but Nova does
not have its instance on this host: the daemon finished a create after the
driver gave up on it (a create cannot be cancelled), or the instance was
deleted while this node's daemon was away. Nova's own
``running_deleted_instance_action`` only sees instances whose host is still
this one, so these would stay for ever.

It runs from ``ComputeDriver.manage_image_cache`` (the image cache
manager's periodic pass): that pass hands over Nova's instances on this
host, so the sweep costs one daemon call (the list of containers) and, only
when some container's instance is not among them, one database query for
those instances; it runs rarely ([image_cache] manager_interval, 40 min by
default), and before unused images are removed, so that an orphan's image
goes in the same pass.

:func:`choose` decides (pure); :func:`sweep` reads and removes. A container
is kept, whatever else holds, when:

* it carries another node's marker (two nodes may share one daemon);
* its instance is on this host (in any state, soft-deleted included);
* Nova has its instance on any host with a task in flight (a migration,
  resize, revert, rebuild or evacuation, a rescue, a shelve), in
  vm_state resized or rescued, or with a migration context;
* it is younger than ``[syscontainer] orphan_grace_seconds``, or its age
  cannot be read;
* it has no instance UUID.
"""

import dataclasses

from nova.compute import vm_states
from nova import objects
from oslo_log import log as logging
from oslo_utils import timeutils

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import container

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

#: vm_states in which an instance may have a container on two hosts.
_TWO_SIDED_VM_STATES = (vm_states.RESIZED, vm_states.RESCUED)


@dataclasses.dataclass(frozen=True)
class Seen:
    """What Nova's database says of one instance (read by :func:`sweep`)."""
    host: str = None
    deleted: bool = False
    task_state: str = None
    vm_state: str = None
    migrating: bool = False

    @classmethod
    def of(cls, instance):
        return cls(host=instance.host, deleted=bool(instance.deleted),
                   task_state=instance.task_state,
                   vm_state=instance.vm_state,
                   migrating=instance.migration_context is not None)

    def busy(self):
        return (not self.deleted and
                (self.task_state is not None or self.migrating or
                 self.vm_state in _TWO_SIDED_VM_STATES))


def age_seconds(record, now):
    """Seconds since the daemon created the container, or None."""
    try:
        created = timeutils.parse_isotime(record.get('created_at'))
    except (ValueError, TypeError, AttributeError):
        return None
    if created.year < 2000:
        return None
    return (now - created).total_seconds()


def choose(records, nodename, local_uuids, seen, now, grace):
    """[(record, reason)] of the orphans among ``records`` (pure).

    :param local_uuids: UUIDs of Nova's instances on this host.
    :param seen: {uuid: :class:`Seen`} for the other containers' instances
        that Nova has (deleted ones included).
    """
    chosen = []
    for rec in records:
        if not container.is_managed(rec, nodename):
            continue
        uuid = container.instance_uuid(rec)
        if not uuid or uuid in local_uuids:
            continue
        age = age_seconds(rec, now)
        if age is None or age < grace:
            continue
        state = seen.get(uuid)
        if state is None:
            reason = 'Nova has no instance %s' % uuid
        elif state.deleted:
            reason = 'its instance was deleted'
        elif state.busy():
            continue
        elif state.host == nodename:
            continue  # created on this host since the list was read
        elif state.host:
            reason = 'its instance is on host %s' % state.host
        else:
            reason = 'its instance is on no host (vm_state %s)' % (
                state.vm_state)
        chosen.append((rec, '%s (created %d s ago)' % (reason, age)))
    return chosen


def sweep(client, context, nodename, instances):
    """Remove this node's orphan containers; their names.

    :param instances: Nova's instances of this host's image cache pass
        (possibly of other hosts sharing storage: filtered here).
    """
    if not CONF.syscontainer.remove_orphan_containers:
        return []
    records = [rec for rec in client.list_instances()
               if container.is_managed(rec, nodename)]
    local = {inst.uuid for inst in instances
             if inst.host == nodename and not inst.deleted}
    others = sorted({container.instance_uuid(rec) for rec in records} -
                    local - {None})
    if not others:
        return []
    found = objects.InstanceList.get_by_filters(
        context.elevated(read_deleted='yes'), {'uuid': others},
        expected_attrs=['migration_context'])
    seen = {}
    for inst in found:
        # A live record wins over deleted ones of the same UUID.
        if inst.uuid not in seen or not inst.deleted:
            seen[inst.uuid] = Seen.of(inst)
    removed = []
    for rec, reason in choose(records, nodename, local, seen,
                              timeutils.utcnow(with_timezone=True),
                              CONF.syscontainer.orphan_grace_seconds):
        name = rec['name']
        LOG.warning('Removing orphan container %(name)s of instance '
                    '%(uuid)s: %(reason)s',
                    {'name': name, 'uuid': container.instance_uuid(rec),
                     'reason': reason})
        try:
            if rec.get('status') in (daemon_client.RUNNING,
                                     daemon_client.FROZEN):
                client.change_state(name, 'stop', force=True)
            client.delete_instance(name)
        except Exception:
            LOG.exception('Could not remove orphan container %s; the next '
                          'pass tries again', name)
            continue
        removed.append(name)
    return removed


def sweep_safely(client, context, nodename, instances):
    """:func:`sweep` that never fails the periodic pass it runs in."""
    try:
        return sweep(client, context, nodename, instances)
    except Exception:
        LOG.exception('The orphan container sweep failed; the next pass '
                      'tries again')
        return []
