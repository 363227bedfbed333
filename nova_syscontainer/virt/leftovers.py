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
"""What failed moves leave on a daemon: removed now, or remembered.

:func:`clear_leftover` removes this instance's container from a daemon,
and nothing of anyone else's. When the daemon cannot be reached (it died
during the move), :class:`PendingCleanups` remembers the instance in a
small state file under ``state_path`` (:mod:`state_files`) and removes the
leftover once the daemon is back.
"""

import os

from nova import context as nova_context
from nova import exception as nova_exception
from nova.i18n import _
from nova import objects
from oslo_log import log as logging
from oslo_serialization import jsonutils

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import container
from nova_syscontainer.virt import daemon_move
from nova_syscontainer.virt import nics
from nova_syscontainer.virt import state_files

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF


def clear_leftover(client, instance):
    """Remove this instance's container from ``client``'s daemon, if any.

    Raises MigrationPreCheckError when a container of that name belongs to
    something else: it is never touched.
    """
    name = container.name(instance)
    record = client.find_instance(name)
    if record is None:
        return
    if container.instance_uuid(record) != instance.uuid:
        raise nova_exception.MigrationPreCheckError(
            reason=_('container %s on this node is not this '
                     'instance\'s') % name)
    LOG.info('Removing %s, left by an earlier migration', name,
             instance=instance)
    daemon_move.cleanup_target(client, name)


class PendingCleanups(object):
    """Instances a failed move may have left on this node's daemon.

    When Nova asks the destination to roll back a live migration while its
    daemon is down (the daemon crashed mid-move), nothing can be removed
    yet. The instance is remembered here -- in a small JSON file under
    ``state_path``, so a restart of nova-compute does not forget it -- and
    :meth:`retry` (on every resource update and at start) removes the
    leftover once the daemon answers again.
    """

    def __init__(self, nodename):
        directory = os.path.join(CONF.state_path, 'syscontainer')
        self.path = os.path.join(directory,
                                 'pending-cleanup-%s.json' % nodename)
        self.nodename = nodename

    def _load(self):
        return state_files.read_json(self.path)

    def _store(self, pending):
        state_files.write_atomic(self.path, jsonutils.dumps(pending))

    def add(self, instance):
        with state_files.lock(self.path):
            pending = self._load()
            pending[instance.uuid] = container.name(instance)
            self._store(pending)

    def discard(self, uuid):
        with state_files.lock(self.path):
            pending = self._load()
            if pending.pop(uuid, None) is not None:
                self._store(pending)

    def uuids(self):
        return list(self._load())

    def clear_or_remember(self, client, instance):
        """Remove what a failed move left here, or remember it for later.

        Only a container carrying the instance's UUID is removed; if the
        daemon cannot be reached (it died during the move), the instance is
        kept here and :meth:`retry_and_unplug` removes it later.
        """
        try:
            clear_leftover(client, instance)
        except exception.DaemonUnavailable as e:
            LOG.warning('Cannot remove what the failed migration left here '
                        'yet, will retry: %s', e, instance=instance)
            self.add(instance)
        else:
            self.discard(instance.uuid)

    def retry_and_unplug(self, client):
        """:meth:`retry`, then unplug the ports of what it removed.

        Once a leftover container is gone, the ports the failed move
        plugged here are unplugged too, unless a container on this host
        still uses them. Never raises: it runs on every resource update.
        """
        ctxt = nova_context.get_admin_context()
        try:
            done = self.retry(ctxt, client)
        except Exception:
            LOG.exception('Removing leftovers of failed live migrations')
            return
        for uuid in done or ():
            try:
                instance = objects.Instance.get_by_uuid(
                    ctxt, uuid, expected_attrs=['info_cache'])
            except nova_exception.InstanceNotFound:
                continue
            nics.unplug_all(instance, instance.get_network_info(),
                            only_unused=True)

    def retry(self, context, client):
        """Remove the leftovers that may go now; the uuids done.

        A container is removed only if it carries the instance's UUID, is
        not marked as this node's (a later move that succeeded adopts it),
        and Nova neither places the instance on this node nor is moving
        it (task_state). Errors leave the entry for the next try.
        """
        done = []
        for uuid, name in self._load().items():
            try:
                instance = objects.Instance.get_by_uuid(context, uuid)
            except nova_exception.InstanceNotFound:
                instance = None
            if instance is not None and (instance.host == self.nodename or
                                         instance.task_state is not None):
                continue
            try:
                record = client.find_instance(name)
            except (exception.DaemonError, exception.DaemonUnavailable) as e:
                LOG.debug('Leftover %s not removed yet: %s', name, e)
                continue
            try:
                if (record is not None and
                        container.instance_uuid(record) == uuid and
                        record.get('config', {}).get(
                            container.HOST_KEY) != self.nodename):
                    LOG.info('Removing %s, left on this node by a failed '
                             'live migration', name)
                    daemon_move.cleanup_target(client, name)
            except (exception.DaemonError, exception.DaemonUnavailable) as e:
                LOG.warning('Leftover %s not removed yet: %s', name, e)
                continue
            self.discard(uuid)
            done.append(uuid)
        return done
