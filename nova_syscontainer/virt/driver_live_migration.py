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
"""The driver's live-migration contract.

A mixin of :class:`nova_syscontainer.virt.driver.SysContainerDriver`,
apart only to keep each module readable: it uses the driver's client,
records and power helpers. The checks and the move are in
:mod:`live_migration`; what a failed move leaves behind, in
:mod:`leftovers`.
"""

from nova import exception as nova_exception
from oslo_log import log as logging

from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint
from nova_syscontainer.virt import console_log
from nova_syscontainer.virt import daemon_kind
from nova_syscontainer.virt import destination_policy
from nova_syscontainer.virt import incoming_ports
from nova_syscontainer.virt import leftovers
from nova_syscontainer.virt import live_migration
from nova_syscontainer.virt import nics
from nova_syscontainer.virt import peers

LOG = logging.getLogger(__name__)


class LiveMigrationMixin(object):
    """Nova's live-migration calls of the driver."""

    # ------------------------------------------------------------------
    # Live migration (see live_migration.py)
    # ------------------------------------------------------------------
    def check_can_live_migrate_destination(self, context, instance,
                                           src_compute_info, dst_compute_info,
                                           block_migration=False,
                                           disk_over_commit=False):
        """ComputeDriver.check_can_live_migrate_destination (on the target).

        This node's policy must accept the instance's flavor (privileged
        and nesting gates, root disk enforcement: destination_policy.py),
        live migration must be allowed here, both nodes must publish a
        migration endpoint, CRIU must be prepared in new containers and
        ``criu check`` must pass on this host; both daemons must be of one
        kind (LXD or Incus).
        """
        self._check_same_kind(src_compute_info)
        destination_policy.check(self._limits, instance)
        return live_migration.check_destination(
            self._migration_endpoint, src_compute_info, self._criu_path)

    def _check_same_kind(self, compute_info):
        """Refuse a move between an LXD and an Incus node (daemon_kind)."""
        problem = daemon_kind.migration_problem(
            self.client.daemon,
            peers.stats_of(compute_info).get(daemon_kind.STAT))
        if problem:
            # Nova's conductor logs a refused destination at debug level
            # only (and then says "No valid host"): say why here.
            LOG.warning('Refusing a move between daemon kinds: %s', problem)
            raise nova_exception.MigrationPreCheckError(reason=problem)

    def cleanup_live_migration_destination_check(self, context,
                                                 dest_check_data):
        """ComputeDriver.cleanup_live_migration_destination_check: no-op."""

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data, block_device_info=None):
        """ComputeDriver.check_can_live_migrate_source (on the source).

        The container must be running, prepared for CRIU and without a uid
        range of its own, and ``criu check`` must pass on this host; the
        target's own checks come in move_checks.check_target, which the
        move runs and which reads both daemons before sending anything.
        """
        rec = self._record(instance)
        live_migration.check_source(rec, self._criu_path)
        try:
            checkpoint.precheck(self.client, rec['name'])
        except exception.CheckpointRefused as e:
            raise nova_exception.MigrationPreCheckError(reason=str(e))
        return dest_check_data

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        """ComputeDriver.pre_live_migration (on the target).

        A leftover of this very instance (a migration that failed while this
        daemon was away) is removed; any other container of that name is a
        conflict.
        """
        leftovers.clear_leftover(self.client, instance)
        if self._pending_cleanups is not None:
            self._pending_cleanups.discard(instance.uuid)
        # The container's NICs hang on its ports' bridges: they must exist
        # here before it arrives. Remembered first, in case the source dies
        # and nobody rolls this side back (incoming_ports.py).
        self._incoming_ports().add(instance, network_info)
        self.plug_vifs(instance, network_info)
        return migrate_data

    def live_migration(self, context, instance, dest, post_method,
                       recover_method, block_migration=False,
                       migrate_data=None):
        """ComputeDriver.live_migration (on the source).

        Moves the running container to ``dest``'s daemon with CRIU, then
        calls post_method; on any failure the move is rolled back (the
        container keeps running here, nothing is left there) and
        recover_method is called.
        """
        def started(op_id):
            self._live_moves[instance.uuid] = op_id

        migration = (migrate_data.migration if migrate_data is not None and
                     migrate_data.obj_attr_is_set('migration') else None)
        try:
            # The console log moves in the container's config.
            console_log.keep(self.client, self._record(instance))
            figures = live_migration.move(
                context, self.client, self._migration_endpoint, instance,
                dest, on_started=started, migration=migration)
        except Exception as e:
            aborted = instance.uuid in self._aborted
            LOG.error('Live migration to %(dest)s %(what)s: %(error)s',
                      {'dest': dest, 'error': e,
                       'what': 'aborted' if aborted else 'failed'},
                      instance=instance)
            if aborted:
                recover_method(context, instance, dest, migrate_data,
                               migration_status='cancelled')
            else:
                recover_method(context, instance, dest, migrate_data)
            return
        finally:
            self._live_moves.pop(instance.uuid, None)
            self._aborted.discard(instance.uuid)
        LOG.info('Live migration to %(dest)s took %(total).1f s',
                 {'dest': dest, 'total': figures['total']},
                 instance=instance)
        post_method(context, instance, dest, block_migration, migrate_data)

    def live_migration_abort(self, instance):
        """ComputeDriver.live_migration_abort (on the source).

        Cancels the source daemon's migration operation; the move then
        fails and is rolled back (the container keeps running here) and
        Nova marks the migration cancelled. Once the target has the
        container there is nothing left to abort.
        """
        op_id = self._live_moves.get(instance.uuid)
        if op_id is None:
            raise nova_exception.InvalidMigrationState(
                migration_id='-', instance_uuid=instance.uuid,
                state='not moving', method='abort')
        self._aborted.add(instance.uuid)
        if not self.client.cancel_operation(op_id):
            LOG.warning('The daemon did not cancel the migration; it may '
                        'complete', instance=instance)

    def post_live_migration(self, context, instance, block_device_info,
                            migrate_data=None):
        """ComputeDriver.post_live_migration: nothing left to do here."""

    def post_live_migration_at_source(self, context, instance, network_info):
        """ComputeDriver.post_live_migration_at_source.

        The move deletes the source container; if that deletion failed,
        it is done now. The ports' host interfaces go too, unless a
        container on this host still uses them (two daemons on one host).
        The serial console listener closes: the console is the
        destination's now.
        """
        self.consoles.close(instance)
        self._remove_if_ours(instance)
        nics.unplug_all(instance, network_info, only_unused=True)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        """ComputeDriver.post_live_migration_at_destination.

        The container now belongs to this node: its node marker changes,
        so that list_instances here includes it, and this node's own policy
        replaces the source's config (destination_policy.py; the raw.lxc
        lines take effect at its next start). Should the daemon refuse that
        update, the container is still adopted and the error logged.
        The ports plugged for the move are the instance's own now.
        """
        self._incoming_ports().discard(instance.uuid)
        try:
            self._apply_flavor(instance)
        except exception.DaemonError as e:
            LOG.error('Could not apply this node\'s policy to the arrived '
                      'container: %s', e, instance=instance)
            live_migration.adopt(self.client, self._record(instance)['name'],
                                 self._nodename)

    def rollback_live_migration_at_destination(self, context, instance,
                                               network_info,
                                               block_device_info,
                                               destroy_disks=True,
                                               migrate_data=None):
        """ComputeDriver.rollback_live_migration_at_destination.

        Removes what a failed move may have left on this daemon, but only
        a container carrying this instance's UUID. If the daemon cannot be
        reached (it died during the move), the instance is remembered and
        its leftover removed once the daemon is back (next resource
        update). The ports pre_live_migration plugged here are unplugged,
        except those a container on this host still uses: when source and
        destination share the host (two daemons), the source's container
        keeps its NICs on them.
        """
        self._pending_cleanups.clear_or_remember(self.client, instance)
        nics.unplug_all(instance, network_info, only_unused=True)
        self._incoming_ports().discard(instance.uuid)

    def _incoming_ports(self):
        return incoming_ports.IncomingPorts(self._nodename)

    def _retry_pending_cleanups(self):
        """Remove leftovers of failed live migrations to this node.

        Also the ports of moves whose source died before it could roll
        this side back (incoming_ports.py).
        """
        if self._pending_cleanups is not None:
            self._pending_cleanups.retry_and_unplug(self.client)
            self._incoming_ports().sweep_safely()
