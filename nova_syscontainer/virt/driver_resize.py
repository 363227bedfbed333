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
"""The driver's resize and cold migration contracts.

A mixin of :class:`nova_syscontainer.virt.driver.SysContainerDriver`,
apart only to keep each module readable: it uses the driver's client,
records and power helpers. The copy to another node is
:mod:`cold_migration`'s; the live path is :mod:`driver_live_migration`.
"""

from nova.compute import task_states
from nova import exception as nova_exception
from nova.i18n import _
from nova import objects
from oslo_log import log as logging

from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import cold_migration
from nova_syscontainer.virt import destination_policy
from nova_syscontainer.virt import flavor_limits
from nova_syscontainer.virt import nics

LOG = logging.getLogger(__name__)


class ResizeMixin(object):
    """Nova's resize and cold migration calls of the driver."""

    # ------------------------------------------------------------------
    # Resize on this host
    # ------------------------------------------------------------------
    @staticmethod
    def _migration(context, instance):
        """The instance's resize/migration record, or None."""
        mig_ctx = instance.migration_context
        if mig_ctx is None:
            return None
        return objects.Migration.get_by_id(context, mig_ctx.migration_id)

    def _same_host_migration(self, context, instance):
        """The instance's migration if it stays on this host, else None."""
        migration = self._migration(context, instance)
        if (migration is None or
                migration.source_compute != migration.dest_compute):
            return None
        return migration

    def _reverting_on_this_host(self, context, instance):
        return (instance.task_state == task_states.RESIZE_REVERTING and
                self._same_host_migration(context, instance) is not None)

    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        """ComputeDriver.migrate_disk_and_power_off (on the source).

        First half of a resize or cold migration. The new flavor is checked
        before anything changes, so a flavor that cannot be honoured leaves
        the instance running and untouched; then the container is stopped
        cleanly. To another host, the stopped
        container is copied to that host's daemon; this copy stays until
        the move is confirmed. A failed copy leaves the instance as it was.
        """
        def rollback(error):
            raise nova_exception.InstanceFaultRollback(inner_exception=error)

        migration = self._migration(context, instance)
        if migration is None:
            rollback(nova_exception.MigrationPreCheckError(
                reason=_('the instance has no migration record')))
        same_host = migration.source_compute == migration.dest_compute
        if not same_host and not self._migration_endpoint:
            rollback(nova_exception.MigrationPreCheckError(
                reason=_('this node has no [syscontainer] '
                         'migration_endpoint')))
        if not same_host:
            try:
                self._check_same_kind(objects.ComputeNode.
                                      get_first_node_by_host_for_old_compat(
                                          context, migration.dest_compute))
            except nova_exception.MigrationPreCheckError as e:
                rollback(e)
        if flavor.root_gb < instance.flavor.root_gb:
            rollback(nova_exception.ResizeError(
                reason=_('a root disk cannot shrink (%(old)d GiB to '
                         '%(new)d GiB)') % {'old': instance.flavor.root_gb,
                                            'new': flavor.root_gb}))
        try:
            self._limits(instance, flavor=flavor)
        except flavor_limits.LimitError as e:
            rollback(e)
        was_running = self._status(instance)[1] == daemon_client.RUNNING
        self.power_off(instance, timeout, retry_interval)
        if not same_host:
            try:
                figures = cold_migration.copy_stopped(
                    context, self.client, self._migration_endpoint,
                    instance, migration.dest_compute)
            except Exception as e:
                LOG.error('Copying the container to %(dest)s failed: '
                          '%(error)s', {'dest': migration.dest_compute,
                                        'error': e}, instance=instance)
                if was_running:
                    self._bring_up(instance)
                rollback(nova_exception.MigrationError(reason=str(e)))
            LOG.info('Container copied to %(dest)s in %(s).1f s',
                     {'dest': migration.dest_compute,
                      's': figures['total']}, instance=instance)
        return '{}'

    def finish_migration(self, context, migration, instance, disk_info,
                         network_info, image_meta, resize_instance,
                         allocations, block_device_info=None, power_on=True,
                         share_info=None):
        """ComputeDriver.finish_migration (on the destination).

        The container (resized in place, or copied here by
        migrate_disk_and_power_off) gets the new flavor's limits under this
        node's own policy (destination_policy.py: nothing of the source's
        config is kept) and this node's marker, and is started.
        """
        plan = self._apply_flavor(instance, network_info, image_meta)
        nics.plug_all(instance, plan.nics)
        if power_on:
            self._bring_up(instance)

    def _apply_flavor(self, instance, network_info=None, image_meta=None):
        """Replace every flavor-derived key with instance.flavor's.

        Returns the operation's plan (operation_plan): the limits applied,
        and the plans of the ports in ``network_info``, whose shaping needs
        them too.
        """
        name = self._record(instance)['name']
        plan = self._plan(instance, network_info, image_meta=image_meta)
        limits = plan.limits
        writable = self.client.get_writable(name)
        body = destination_policy.reapply(
            writable, instance, self._nodename, limits,
            self._checkpoint_lines(), checkpoint_policy.create_config())
        body['devices'] = nics.with_limits(body['devices'], limits.nic)
        self.client.update_instance(name, body)
        LOG.info('Applied this node\'s policy; changed: %s',
                 ', '.join(destination_policy.changes(writable, body)) or
                 'nothing', instance=instance)
        return plan

    def confirm_migration(self, context, migration, instance, network_info):
        """ComputeDriver.confirm_migration (on the source).

        After a move to another host the source copy is removed; on one
        host the resized container is the only copy and stays.
        """
        if migration.source_compute != migration.dest_compute:
            self._remove_if_ours(instance)
            nics.unplug_all(instance, network_info, only_unused=True)

    def finish_revert_migration(self, context, instance, network_info,
                                migration, block_device_info=None,
                                power_on=True, share_info=None):
        """ComputeDriver.finish_revert_migration: back to the old flavor.

        Nova has put the old flavor back on the instance; its limits replace
        the new flavor's. What was written to the disk meanwhile is kept.
        (A snapshot restore is not used: LXD 5.0.2 refuses one, "In use",
        on any container that was ever restored from a CRIU checkpoint.)
        """
        self._stop(instance, force=True)
        plan = self._apply_flavor(instance, network_info)
        nics.plug_all(instance, plan.nics)
        if power_on:
            self._bring_up(instance)
