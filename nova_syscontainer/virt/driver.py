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
"""Nova compute driver that runs instances as LXD system containers.

This module only orchestrates: translation lives in :mod:`flavor_limits`
and :mod:`container` (pure), gathered once per operation into an
:mod:`operation_plan`; images in :mod:`image`, host figures in
:mod:`host`, and every daemon call in :mod:`client`.
"""

import os

from nova.compute import vm_states
from nova import conf as nova_conf
from nova import exception as nova_exception
from nova.i18n import _
from nova import objects
from nova.virt import driver
from nova.virt import hardware
from nova.virt import node
from oslo_log import log as logging
from oslo_utils import excutils

from nova_syscontainer import conf as sc_conf  # noqa: F401 (options)
from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import config_drive
from nova_syscontainer.virt import console_log
from nova_syscontainer.virt import container
from nova_syscontainer.virt import daemon_kind
from nova_syscontainer.virt import diagnostics
from nova_syscontainer.virt import driver_live_migration
from nova_syscontainer.virt import driver_resize
from nova_syscontainer.virt import flavor_limits
from nova_syscontainer.virt import guest
from nova_syscontainer.virt import host as hostinfo
from nova_syscontainer.virt import image as images
from nova_syscontainer.virt import interrupted
from nova_syscontainer.virt import inventory
from nova_syscontainer.virt import leftovers
from nova_syscontainer.virt import nics
from nova_syscontainer.virt import operation_plan
from nova_syscontainer.virt import orphans
from nova_syscontainer.virt import peers
from nova_syscontainer.virt import rescue as rescues
from nova_syscontainer.virt import serial_console
from nova_syscontainer.virt import snapshot as snapshots
from nova_syscontainer.virt import template as templates

LOG = logging.getLogger(__name__)
CONF = nova_conf.CONF


class SysContainerDriver(driver_resize.ResizeMixin,
                         driver_live_migration.LiveMigrationMixin,
                         driver.ComputeDriver):
    """``nova.virt.driver.ComputeDriver`` for LXD/Incus system containers."""

    capabilities = dict(
        driver.ComputeDriver.capabilities,
        has_imagecache=True,
        supports_image_type_raw=True,
        # Rebuild and evacuate use Nova's default: destroy, then spawn from
        # the image (a container's files live on its host's daemon only).
        supports_evacuate=True,
        supports_attach_interface=True,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        self.client = daemon_client.DaemonClient()
        self.images = images.ImageStore(self.client)
        self.consoles = serial_console.Consoles(self.client)
        self.inventory = inventory.Inventory(
            self.client, CONF.syscontainer.instance_list_cache_seconds)
        self._nodename = CONF.host
        self._node_uuid = None
        self._server_info = {}
        self._limit_options = flavor_limits.Options(
            storage_pool=CONF.syscontainer.storage_pool)
        # Per-node options are read now: several compute services in one
        # process (functional tests) share one configuration.
        self._migration_endpoint = CONF.syscontainer.migration_endpoint
        self._criu_path = CONF.syscontainer.criu_path
        self._daemon_dir = CONF.syscontainer.daemon_dir
        # instance uuid -> source operation of its live migration, and the
        # uuids whose migration an operator aborted.
        self._live_moves = {}
        self._aborted = set()
        self._pending_cleanups = None
        self._templates = None

    # ------------------------------------------------------------------
    # Host
    # ------------------------------------------------------------------
    def init_host(self, host):
        """ComputeDriver.init_host: check the daemon before serving.

        Raises a clear error naming the endpoint when the daemon cannot be
        reached, does not trust us, lacks an API extension or the storage
        pool. Then removes what builds a dead nova-compute left unfinished
        here (:mod:`interrupted`).
        """
        self._nodename = host
        # Nova keeps one node UUID per process; with several compute
        # services in one process (functional tests) each driver must keep
        # the one it was started with.
        self._node_uuid = node.get_local_node_uuid()
        self._server_info = self.client.check_compatible()
        pool = self.client.pool(CONF.syscontainer.storage_pool)
        self._limit_options = flavor_limits.Options(
            storage_pool=CONF.syscontainer.storage_pool,
            pool_enforces_size=(pool.get('driver') in
                                hostinfo.SIZE_ENFORCING_POOL_DRIVERS),
            unenforceable_root_size=(
                CONF.syscontainer.root_disk_size_unenforceable),
            allow_privileged=CONF.syscontainer.allow_privileged,
            allow_nesting=CONF.syscontainer.allow_nesting,
            cgroup_version=hostinfo.cgroup_version(
                CONF.syscontainer.cgroup_version),
            default_processes=CONF.syscontainer.default_processes)
        env = self._server_info.get('environment', {})
        LOG.info('Using %(server)s %(version)s at %(endpoint)s (project '
                 '%(project)s, pool %(pool)s with driver %(driver)s)',
                 {'server': self.client.daemon.kind.label,
                  'version': env.get('server_version'),
                  'endpoint': self.client.endpoint,
                  'project': self.client.project,
                  'pool': CONF.syscontainer.storage_pool,
                  'driver': pool.get('driver')})
        checkpoint_policy.init_host(self.client.endpoint, pool.get('driver'))
        self._templates = templates.for_pool(
            self.client, CONF.syscontainer.storage_pool, pool.get('driver'),
            CONF.syscontainer.image_templates)
        self._pending_cleanups = leftovers.PendingCleanups(host)
        self._retry_pending_cleanups()
        interrupted.clean_up(self, host)

    def cleanup_host(self, host):
        """ComputeDriver.cleanup_host: close the serial console listeners."""
        self.consoles.close_all()

    def get_available_nodes(self, refresh=False):
        """ComputeDriver.get_available_nodes: one node, this host."""
        return [self._nodename]

    def get_nodenames_by_uuid(self, refresh=False):
        """ComputeDriver.get_nodenames_by_uuid."""
        return {self._node_uuid: self._nodename}

    def get_host_uptime(self):
        """ComputeDriver.get_host_uptime, like uptime(1) prints it."""
        with open('/proc/uptime') as f:
            seconds = int(float(f.read().split()[0]))
        load = ', '.join('%.2f' % x for x in os.getloadavg())
        return 'up %d days, %02d:%02d, load average: %s' % (
            seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60,
            load)

    def get_host_ip_addr(self):
        """ComputeDriver.get_host_ip_addr."""
        return CONF.my_ip

    def _host_resources(self):
        return hostinfo.from_daemon(
            self._server_info or self.client.server_info(),
            self.client.host_resources(),
            self.client.pool_resources(CONF.syscontainer.storage_pool))

    def get_available_resource(self, nodename):
        """ComputeDriver.get_available_resource, from the daemon's figures."""
        resources = hostinfo.resource_dict(self._host_resources(), nodename)
        self._retry_pending_cleanups()
        resources['uuid'] = self._node_uuid
        # What other nodes need to move containers here: where this node's
        # daemon listens and the certificate it presents.
        if self._migration_endpoint:
            resources['stats'] = {
                peers.ENDPOINT_STAT: self._migration_endpoint,
                peers.CERT_STAT: self._server_info.get(
                    'environment', {}).get('certificate', ''),
                daemon_kind.STAT: self.client.daemon.stat,
            }
        return resources

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        """ComputeDriver.update_provider_tree: VCPU, MEMORY_MB, DISK_GB.

        Reserved amounts come from [DEFAULT] reserved_host_*, ratios from
        [DEFAULT] *_allocation_ratio (initial_* for a new provider).
        """
        inv = provider_tree.data(nodename).inventory
        provider_tree.update_inventory(nodename, hostinfo.inventory(
            self._host_resources(),
            self._get_allocation_ratios(inv),
            reserved_cpus=CONF.reserved_host_cpus,
            reserved_memory_mb=CONF.reserved_host_memory_mb,
            reserved_disk_gb=self._get_reserved_host_disk_gb_from_config()))

    # ------------------------------------------------------------------
    # Inventory of instances
    # ------------------------------------------------------------------
    def _managed_records(self):
        return [rec for rec in self.inventory.records(self._nodename)
                if not rescues.is_rescue(rec)]

    def list_instances(self):
        """ComputeDriver.list_instances: containers we made for this node.

        One daemon call whatever the number of instances.
        """
        return [rec['name'] for rec in self._managed_records()]

    def list_instance_uuids(self):
        """ComputeDriver.list_instance_uuids, in one daemon call."""
        return [container.instance_uuid(rec)
                for rec in self._managed_records()]

    def _record(self, instance):
        """The daemon's record of ``instance``; InstanceNotFound if absent.

        A container of the same name that is not this instance's (another
        UUID) is treated as absent and never touched.
        """
        rec = self.client.get_instance(
            container.name(instance),
            not_found=daemon_client.instance_not_found(instance))
        if container.instance_uuid(rec) != instance.uuid:
            raise daemon_client.instance_not_found(instance)
        return rec

    def instance_exists(self, instance):
        """ComputeDriver.instance_exists."""
        try:
            self._record(instance)
        except nova_exception.InstanceNotFound:
            return False
        return True

    def get_info(self, instance, use_cache=True):
        """ComputeDriver.get_info: the power state, in one daemon call.

        With use_cache, a RUNNING seen by the last listing (see
        inventory.py) answers without any: Nova's power-state sync. A
        rescued instance's is its rescue container's (two calls; the
        original is stopped, so never answered from the listing).
        """
        state = use_cache and self.inventory.cached_state(instance)
        if state:
            return hardware.InstanceInfo(state=state,
                                         internal_id=container.name(instance))
        rec = self._record(instance)
        if instance.vm_state == vm_states.RESCUED:
            rec = rescues.record(self.client, instance, rec['name']) or rec
        return hardware.InstanceInfo(
            state=container.power_state_of(rec.get('status'),
                                           rec.get('stateful', False)),
            internal_id=rec['name'])

    # ------------------------------------------------------------------
    # Spawn and destroy
    # ------------------------------------------------------------------
    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        """ComputeDriver.spawn: create (and start) the container.

        A spawn that fails removes whatever it created; the image it
        imported stays cached for the next spawn. An instance that needs a
        config drive gets Nova's metadata written into its root filesystem
        before it first starts (see config_drive.py).
        """
        self._refuse_unsupported_build(instance, block_device_info)
        # One plan for the whole spawn (limits, ports, create body): what
        # cannot be honoured, a port this driver cannot plug too, is
        # refused before anything exists.
        plan = operation_plan.for_spawn(
            instance, network_info,
            self._limits(instance, image_meta=image_meta), self._nodename,
            CONF.syscontainer.profiles, raw_lxc=self._checkpoint_lines(),
            checkpoint_config=checkpoint_policy.create_config())
        name = container.name(instance)
        if self.client.instance_exists(name):
            raise nova_exception.InstanceExists(name=name)

        # As Nova's libvirt driver does: wait (bounded by
        # [DEFAULT] vif_plugging_timeout) for Neutron to report the ports
        # that are down as plugged, once the container runs on them.
        timeout = CONF.vif_plugging_timeout
        events = (nics.neutron_events(network_info)
                  if power_on and timeout else [])
        try:
            with self.virtapi.wait_for_instance_event(
                    instance, events, timeout=timeout,
                    error_callback=_neutron_failed_callback):
                nics.plug_all(instance, plan.nics)
                self._create_and_start(
                    context, instance, name, plan, network_info, power_on,
                    (injected_files, admin_password))
        except nova_exception.InstanceEventTimeout:
            if CONF.vif_plugging_is_fatal:
                self._remove_if_ours(instance)
                nics.unplug_all(instance, network_info)
                raise nova_exception.VirtualInterfaceCreateException()
            LOG.warning('Neutron did not report every port plugged within '
                        '%d s; continuing (vif_plugging_is_fatal is off)',
                        timeout, instance=instance)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._remove_if_ours(instance)
                nics.unplug_all(instance, network_info)
        LOG.info('Container %s created%s', name,
                 ' and started' if power_on else '', instance=instance)

    def _create_and_start(self, context, instance, name, plan,
                          network_info, power_on, injection=(None, None)):
        image_id = instance.image_ref
        with images.image_lock(image_id):
            fingerprint, _new = self.images.ensure(
                context, image_id, instance.trusted_certs,
                root_gb=instance.flavor.root_gb)
            body = self._from_template(
                fingerprint, operation_plan.create_body(plan, fingerprint))
            try:
                self.client.create_instance(body)
                if config_drive.required(instance):
                    drive = config_drive.plan_for(instance, network_info,
                                                  *injection)
                    self.client.write_files(name, drive.directories,
                                            drive.files)
                    config_drive.mark(instance)
                else:
                    drive = config_drive.metadata_service_plan()
                    self.client.write_files(name, drive.directories,
                                            drive.files)
            except Exception:
                with excutils.save_and_reraise_exception():
                    self._remove_if_ours(instance)
        try:
            if power_on:
                self.client.change_state(name, 'start')
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('Starting the new container failed; removing it',
                          instance=instance)
                self._remove_if_ours(instance)

    def _from_template(self, fingerprint, body):
        """The create body as a copy of the image's template, if any."""
        if self._templates is None or not templates.eligible(body):
            return body
        source = self._templates.source_for(fingerprint)
        return templates.copy_of(body, source) if source else body

    @staticmethod
    def _checkpoint_lines():
        """raw.lxc lines CRIU needs, when checkpointing is enabled."""
        return checkpoint_policy.create_raw_lxc()

    def _plan(self, instance, network_info, flavor=None, image_meta=None):
        """The operation's plan: limits and port plans, computed once."""
        return operation_plan.build(
            instance, network_info,
            self._limits(instance, flavor=flavor, image_meta=image_meta))

    def _limits(self, instance, flavor=None, image_meta=None):
        if image_meta is None:
            image_meta = objects.ImageMeta.from_instance(instance)
        limits = flavor_limits.translate(
            flavor or instance.flavor, _image_properties(image_meta),
            self._limit_options)
        for warning in limits.warnings:
            LOG.warning(warning, instance=instance)
        return limits

    def _refuse_unsupported_build(self, instance, block_device_info):
        def refuse(reason):
            raise exception.InstanceBuildRefused(instance_uuid=instance.uuid,
                                                 reason=reason)

        if not instance.image_ref:
            refuse(_('booting from a volume is not supported; boot from a '
                     'Glance image'))
        if driver.block_device_info_get_mapping(block_device_info):
            refuse(_('volumes are not supported yet'))

    def _remove_if_ours(self, instance):
        """Stop and delete the instance's container if it exists.

        Never raises: it runs on error paths and in destroy, where a missing
        container is the desired outcome.
        """
        try:
            rec = self._record(instance)
        except nova_exception.InstanceNotFound:
            return
        name = rec['name']
        if rec.get('status') in (daemon_client.RUNNING,
                                 daemon_client.FROZEN):
            self.client.change_state(name, 'stop', force=True)
        self.client.delete_instance(name)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        """ComputeDriver.destroy: stop and remove the container.

        Idempotent: an instance the daemon does not have is already
        destroyed. With destroy_disks=False the container (which is the
        instance's disk) is stopped and kept. Reverting a resize on the same
        host destroys the "new" instance, which is the same container: it is
        only stopped, for finish_revert_migration to give back its old
        limits.
        """
        self.consoles.close(instance)
        if self._reverting_on_this_host(context, instance):
            self._stop(instance, force=True)
            return
        rescues.remove(self.client, instance, container.name(instance),
                       strict=False)
        if destroy_disks:
            self._remove_if_ours(instance)
        else:
            self._stop(instance, force=True)
        self.cleanup(context, instance, network_info, block_device_info,
                     destroy_disks=destroy_disks)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        """ComputeDriver.cleanup: remove what is left of the instance.

        The container is removed when destroy_disks is set and it is still
        there; the ports' host interfaces when destroy_vifs is set.
        """
        if destroy_disks:
            self._remove_if_ours(instance)
        if destroy_vifs:
            nics.unplug_all(instance, network_info)

    # ------------------------------------------------------------------
    # Network (see nics.py, vif.py, network.py)
    # ------------------------------------------------------------------
    def plug_vifs(self, instance, network_info):
        """ComputeDriver.plug_vifs: the ports' host interfaces.

        Idempotent; nova-compute calls it at start-up for every instance,
        so a host that rebooted gets its bridges and OVS ports back.

        :raises VirtualInterfacePlugException: for anything that keeps
            this instance's ports from being plugged (a flavor that a later
            option change refuses, a port this driver cannot plug): Nova's
            contract, under which init_host puts that one instance in ERROR
            and goes on, instead of nova-compute failing to start.
        """
        try:
            nics.plug_all(instance, self._plan(instance, network_info).nics)
        except nova_exception.VirtualInterfacePlugException:
            raise
        except nova_exception.NovaException as e:
            raise exception.VifPlugFailed(command='plug_vifs',
                                          reason=e.format_message())

    def unplug_vifs(self, instance, network_info):
        """ComputeDriver.unplug_vifs: remove the ports' host interfaces."""
        nics.unplug_all(instance, network_info)

    def attach_interface(self, context, instance, image_meta, vif):
        """ComputeDriver.attach_interface: hot-plug a NIC.

        The port is plugged on the host and a NIC added to the container,
        running or stopped; it keeps the flavor's NIC limits.
        """
        name = self._record(instance)['name']
        try:
            nics.attach(self.client, name, instance, vif,
                        self._limits(instance, image_meta=image_meta).nic)
        except (exception.InstanceBuildRefused, exception.VifPlugFailed,
                exception.DaemonError) as e:
            LOG.error('Attaching port %(port)s failed: %(error)s',
                      {'port': vif['id'], 'error': e}, instance=instance)
            raise nova_exception.InterfaceAttachFailed(
                instance_uuid=instance.uuid)

    def detach_interface(self, context, instance, vif):
        """ComputeDriver.detach_interface: hot-unplug a NIC."""
        name = self._record(instance)['name']
        try:
            nics.detach(self.client, name, instance, vif)
        except (exception.VifPlugFailed, exception.DaemonError) as e:
            LOG.error('Detaching port %(port)s failed: %(error)s',
                      {'port': vif['id'], 'error': e}, instance=instance)
            raise nova_exception.InterfaceDetachFailed(
                instance_uuid=instance.uuid)

    # ------------------------------------------------------------------
    # Power
    # ------------------------------------------------------------------
    def _status(self, instance):
        rec = self._record(instance)
        return rec['name'], rec.get('status'), rec.get('stateful', False)

    def _stop(self, instance, force, timeout=None):
        try:
            name, status, _stateful = self._status(instance)
        except nova_exception.InstanceNotFound:
            return
        if status == daemon_client.STOPPED:
            return
        if status == daemon_client.FROZEN:
            force = True
        self.client.change_state(name, 'stop', force=force, timeout=timeout)

    def power_off(self, instance, timeout=0, retry_interval=0):
        """ComputeDriver.power_off: clean shutdown, then forced.

        With a timeout, init is asked to shut down (the daemon sends the
        container's halt signal) and given ``timeout`` seconds; after that,
        or with no timeout, the container is stopped by force. Its serial
        console listener is closed; its console log is kept first (the
        daemon starts a new one at the next start).
        """
        self.consoles.close(instance)
        self._keep_console_log(instance)
        if timeout:
            try:
                self._stop(instance, force=False, timeout=timeout)
                return
            except exception.DaemonError as e:
                LOG.warning('Clean shutdown did not finish in %(t)s s '
                            '(%(e)s); stopping by force',
                            {'t': timeout, 'e': e}, instance=instance)
        self._stop(instance, force=True)

    def _keep_console_log(self, instance):
        try:
            rec = self._record(instance)
        except nova_exception.InstanceNotFound:
            return
        if rec.get('status') == daemon_client.RUNNING:
            console_log.keep(self.client, rec)

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        """ComputeDriver.power_on: start (or thaw) the container.

        A container with a saved checkpoint is restored from it. The
        ports' host interfaces are plugged again first (idempotent).
        """
        self.plug_vifs(instance, network_info)
        self._bring_up(instance)

    def _bring_up(self, instance):
        name, status, stateful = self._status(instance)
        if status == daemon_client.FROZEN:
            self.client.change_state(name, 'unfreeze')
        elif status != daemon_client.RUNNING:
            self.client.change_state(name, 'start', stateful=stateful)
            if stateful:
                nics.remove_stale_for(self._record(instance))

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        """ComputeDriver.reboot: SOFT asks init, HARD stops by force.

        A soft reboot that does not finish within [DEFAULT] reboot_timeout
        (or 60 s) falls back to a hard one. A stopped or frozen container
        ends up running either way. The console log of the boot before is
        kept, as a VM's console log file outlives its reboots.
        """
        name, status, _stateful = self._status(instance)
        if status == daemon_client.RUNNING:
            console_log.keep(self.client, self._record(instance))
        if reboot_type == 'SOFT' and status == daemon_client.RUNNING:
            try:
                self.client.change_state(
                    name, 'restart',
                    timeout=CONF.reboot_timeout or 60)
                return
            except exception.DaemonError as e:
                LOG.warning('Soft reboot failed (%s); rebooting hard', e,
                            instance=instance)
        self._stop(instance, force=True)
        self.client.change_state(name, 'start')

    def pause(self, instance):
        """ComputeDriver.pause: freeze every task of the container."""
        name, _status, _stateful = self._status(instance)
        self.client.change_state(name, 'freeze')

    def unpause(self, instance):
        """ComputeDriver.unpause: thaw the container."""
        name, _status, _stateful = self._status(instance)
        self.client.change_state(name, 'unfreeze')

    def suspend(self, context, instance):
        """ComputeDriver.suspend: CRIU checkpoint, then stop.

        Memory and process state are written to disk and the container
        stops using CPU and memory. A suspend refused before the daemon is
        asked (checkpointing off, raw.lxc lines missing, a task CRIU
        cannot dump), or a checkpoint the daemon fails while the container
        goes on running, raises InstanceFaultRollback: Nova's manager then
        keeps the server ACTIVE and records the reason as its fault
        (anything else would put a running server in ERROR).
        """
        def refuse(reason):
            raise nova_exception.InstanceFaultRollback(
                inner_exception=nova_exception.InstanceSuspendFailure(
                    reason=reason))

        rec = self._record(instance)
        name = rec['name']
        try:
            checkpoint.suspendable(self.client, rec)
        except exception.CheckpointRefused as e:
            refuse(str(e))
        if rec.get('status') == daemon_client.FROZEN:
            self.client.change_state(name, 'unfreeze')
        console_log.keep(self.client, rec)
        self.consoles.close(instance)
        try:
            self.client.change_state(name, 'stop', stateful=True)
        except exception.DaemonError as e:
            restarted = self._ensure_running(instance)
            if restarted is None:
                raise nova_exception.InstanceSuspendFailure(reason=str(e))
            refuse(str(e) + (_(' (the container was started again, '
                               'without its process state)')
                             if restarted else ''))
        nics.remove_stale_for(rec)

    def _ensure_running(self, instance):
        """Start the container if a failed operation left it stopped.

        Returns False if it was running, True if it had to be started
        (booted afresh), None if it is not running.
        """
        try:
            name, status, _stateful = self._status(instance)
            if status == daemon_client.RUNNING:
                return False
            if status == daemon_client.STOPPED:
                self.client.change_state(name, 'start')
                return True
        except Exception:
            LOG.exception('Could not restart the container after a failed '
                          'operation', instance=instance)
        return None

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        """ComputeDriver.resume: restore the CRIU checkpoint."""
        name, status, stateful = self._status(instance)
        if status == daemon_client.RUNNING:
            return
        if not stateful:
            LOG.warning('No saved state: the container boots afresh',
                        instance=instance)
        self.plug_vifs(instance, network_info)
        try:
            self.client.change_state(name, 'start', stateful=stateful)
        except exception.DaemonError as e:
            raise nova_exception.InstanceResumeFailure(reason=str(e))
        finally:
            # LXD 5.0.2 leaves veths on the host at a checkpoint and at a
            # restore (measured): remove those carrying this NIC's MACs.
            nics.remove_stale_for(self._record(instance))

    def resume_state_on_host_boot(self, context, instance, network_info,
                                  share_info, block_device_info=None):
        """ComputeDriver.resume_state_on_host_boot: bring it back up."""
        self._bring_up(instance)

    def snapshot(self, context, instance, image_id, update_task_state):
        """ComputeDriver.snapshot: the running container into Glance.

        The container never stops; see :func:`snapshots.take`.
        """
        snapshots.take(self.client, context, instance,
                       self._record(instance)['name'], image_id,
                       update_task_state)

    def rescue(self, context, instance, network_info, image_meta,
               rescue_password, block_device_info, share_info):
        """ComputeDriver.rescue: a rescue container, see rescue.py.

        It boots ``image_meta`` with the original's root file system at
        /mnt/rescue-root and its NICs; the original is left as it is.
        """
        rescues.start(self.client, self.images, context, instance,
                      self._record(instance), image_meta, rescue_password,
                      rescues.daemon_dir(self._daemon_dir,
                                         self.client.endpoint,
                                         self._server_info))

    def unrescue(self, context, instance):
        """ComputeDriver.unrescue: drop the rescue container, start ours."""
        rescues.finish(self.client, instance, self._record(instance))

    # ------------------------------------------------------------------
    # Console
    # ------------------------------------------------------------------
    def get_console_output(self, context, instance):
        """ComputeDriver.get_console_output: newest bytes of the log.

        The log the driver kept (across reads, CRIU restores and
        migrations, see console_log) with what the daemon adds; empty,
        never an error, when there is none.
        """
        log = console_log.read(
            self.client, self._record(instance),
            not_found=daemon_client.instance_not_found(instance))
        return log[-CONF.syscontainer.console_log_max_bytes:]

    def get_serial_console(self, context, instance):
        """ComputeDriver.get_serial_console: a TCP port on this host.

        Bridged to the container's /dev/console; the same port while the
        instance runs here (see serial_console).
        """
        return self.consoles.get(instance, self._record(instance))

    # ------------------------------------------------------------------
    # Diagnostics and the guest's password (diagnostics.py, guest.py)
    # ------------------------------------------------------------------
    def _diagnostics_input(self, instance):
        rec = self._record(instance)
        state = self.client.get_state(
            rec['name'], not_found=daemon_client.instance_not_found(instance))
        return (rec, state, hostinfo.kernel_figures(state.get('pid'),
                                                    rec['name']),
                instance.flavor.memory_mb)

    def get_instance_diagnostics(self, instance):
        """ComputeDriver.get_instance_diagnostics (API >= 2.48)."""
        return diagnostics.instance_diagnostics(
            *self._diagnostics_input(instance),
            hypervisor=self._server_info.get('environment', {}).get(
                'server', 'lxd'))

    def get_diagnostics(self, instance):
        """ComputeDriver.get_diagnostics: the legacy dict (API < 2.48)."""
        return diagnostics.legacy_diagnostics(
            *self._diagnostics_input(instance))

    def set_admin_password(self, instance, new_pass):
        """ComputeDriver.set_admin_password: chpasswd inside the guest.

        For the image's os_admin_user, or root. A guest without chpasswd
        raises SetAdminPasswdNotSupported (the server stays ACTIVE).
        """
        guest.set_password(
            self.client, self._record(instance)['name'], instance,
            guest.admin_user(_image_properties(
                objects.ImageMeta.from_instance(instance))), new_pass)

    # ------------------------------------------------------------------
    # Image cache
    # ------------------------------------------------------------------
    def manage_image_cache(self, context, all_instances):
        """ComputeDriver.manage_image_cache: drop images nobody uses.

        First the orphan containers of this node go (orphans.py, which
        says why the sweep runs here), so that their images are unused.
        Honours [image_cache] remove_unused_base_images and
        remove_unused_original_minimum_age_seconds.
        """
        orphans.sweep_safely(self.client, context, self._nodename,
                             all_instances)
        if not CONF.image_cache.remove_unused_base_images:
            return
        self.images.remove_unused(
            all_instances,
            CONF.image_cache.remove_unused_original_minimum_age_seconds)

    def cache_image(self, context, image_id):
        """ComputeDriver.cache_image: pre-load an image into the daemon.

        With [syscontainer] image_templates, its template is made too.
        """
        with images.image_lock(image_id):
            fingerprint, new = self.images.ensure(context, image_id)
            if self._templates is not None:
                self._templates.source_for(fingerprint)
        return new


def _neutron_failed_callback(event_name, instance):
    """Neutron reported a port failed: fatal if vif_plugging_is_fatal."""
    LOG.error('Neutron reported failure on event %s', event_name,
              instance=instance)
    if CONF.vif_plugging_is_fatal:
        raise nova_exception.VirtualInterfaceCreateException()


def _image_properties(image_meta):
    props = image_meta.properties
    return {key: getattr(props, key) for key in props.fields
            if props.obj_attr_is_set(key)}
