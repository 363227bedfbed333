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
"""Builds a previous nova-compute of this host did not finish.

When nova-compute dies during a spawn, its next start finds the instance
still building. Nova's init_host (after ``ComputeDriver.init_host``) then
sets it to ERROR and records no fault; the container the spawn had made
(stopped or already running) would stay until the server is deleted, or,
when the instance had no host yet, until the orphan sweep.
:func:`clean_up`, called from the driver's ``init_host``, removes that
container and the host side of its ports first (the driver's idempotent
``destroy``) and records a fault saying what happened, so the server ends
cleanly in ERROR with a reason.

A live migration cut the same way leaves the daemons moving the
container without Nova; Nova's init_host resets the instance to this
host. :func:`clean_up` first undoes the move (:func:`_roll_back_move`), so
that the container runs here, unfrozen, and nowhere else.
"""

from nova.compute import task_states
from nova.compute import utils as compute_utils
from nova.compute import vm_states
from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import neutron
from nova import objects
from nova.scheduler.client import report
from oslo_log import log as logging

from nova_syscontainer.virt import container
from nova_syscontainer.virt import daemon_move
from nova_syscontainer.virt import peers

#: Seconds the source daemon's cancelled move may take to end.
ROLLBACK_WAIT = 60

LOG = logging.getLogger(__name__)

#: The states ``_init_instance`` takes for a build that did not finish.
BUILD_TASK_STATES = (task_states.SCHEDULING,
                     task_states.BLOCK_DEVICE_MAPPING,
                     task_states.NETWORKING, task_states.SPAWNING)


def unfinished(instance, host):
    """Whether a build of ``instance`` on ``host`` did not finish (pure).

    Still building, and placed on ``host`` or on no host: a compute that
    dies after its resource claim leaves ``instance.host`` set (Nova's
    ``_init_instance`` then sets ERROR), one that dies before leaves it
    unset (``_error_out_instances_whose_build_was_interrupted`` does).
    """
    return ((instance.vm_state == vm_states.BUILDING or
             instance.task_state in BUILD_TASK_STATES) and
            instance.host in (host, None) and not instance.deleted)


def moving_from(instance, host):
    """Whether a live migration of ``instance`` from ``host`` was cut."""
    return (instance.task_state == task_states.MIGRATING and
            instance.host == host and not instance.deleted)


def _roll_back_move(driver, context, instance):
    """Undo a live move the daemons may still be doing without Nova.

    Nova's init_host then resets the instance here (``_reset_live_migration``
    sets the migration to error and clears the task state), so the
    container must run here and nowhere else
    (:func:`daemon_move.abandon_move`): the source daemon's migration
    operation (found again by instance name) is cancelled, a CRIU dump
    left stuck released, the target's copy deleted, and the source
    unfrozen, or started if the move had already stopped it (its process
    state is then lost: the target's copy, which had it, cannot stay where
    Nova does not place the instance). Last, Neutron's port bindings to
    the destination are deleted, as ``_rollback_live_migration`` does:
    left there, Neutron would refuse the next binding of those ports to
    that host (PortBindingAlreadyExists), failing every later move there
    at its pre-check. Then the claims of the move go
    (:func:`_revert_move_claims`).
    """
    source = driver.client
    name = container.name(instance)
    try:
        migration = objects.Migration.get_by_instance_and_status(
            context, instance.uuid, 'running')
        target = peers.target_client(context, migration.dest_compute)
        status = daemon_move.abandon_move(source, target, name,
                                          ROLLBACK_WAIT)
        LOG.info('After the interrupted live migration the container here '
                 'is %s', status, instance=instance)
        # As Nova's own rollback does: Neutron's bindings of the ports to
        # the destination go (and "migrating_to"); the destination unplugs
        # its side itself (incoming_ports.py).
        neutron.API().setup_networks_on_host(
            context, instance, migration.dest_compute, teardown=True)
        _revert_move_claims(context, instance, migration)
    except Exception:
        LOG.exception('Could not undo the interrupted live migration',
                      instance=instance)


def _revert_move_claims(context, instance, migration):
    """Give the source back its Placement allocation; drop the context.

    What Nova's ``_rollback_live_migration`` does and its start-up
    ``_reset_live_migration`` (Nova 34), which runs next, does not: during
    the move the instance's consumer holds the destination's allocation
    and the migration's consumer the source's, and the instance keeps the
    migration context the destination's claim made. Left so, Placement
    counts the server on the destination, where it does not run, and not
    here, where it does. As ``ComputeManager._revert_allocation``: the
    migration's allocation replaces the instance's.
    """
    reportclient = report.report_client_singleton()
    if reportclient.get_allocations_for_consumer(context, migration.uuid):
        LOG.info('Giving the allocation the interrupted live migration '
                 'held (migration %s) back to the instance', migration.uuid,
                 instance=instance)
        reportclient.move_allocations(context, migration.uuid,
                                      instance.uuid)
    instance.drop_migration_context()


def clean_up(driver, host):
    """Remove the containers of builds interrupted on ``host``; a fault each.

    Starts from this node's containers on the daemon (one listing) and
    reads their instances (one database query). Errors are logged, never
    raised: one instance must not keep the compute service from starting.
    """
    context = nova_context.get_admin_context()
    try:
        records = [rec for rec in driver.client.list_instances()
                   if container.is_managed(rec, host)]
        uuids = sorted({container.instance_uuid(rec) for rec in records} -
                       {None})
        instances = objects.InstanceList.get_by_filters(
            context, {'uuid': uuids},
            expected_attrs=['info_cache', 'flavor']) if uuids else []
    except Exception:
        LOG.exception('Could not look for interrupted builds on %s', host)
        return []
    done = []
    for instance in instances:
        if moving_from(instance, host):
            _roll_back_move(driver, context, instance)
            done.append(instance.uuid)
            continue
        if not unfinished(instance, host):
            continue
        LOG.warning('nova-compute stopped while this instance was being '
                    'built here: removing what the build made',
                    instance=instance)
        try:
            driver.destroy(context, instance, instance.get_network_info())
        except Exception:
            LOG.exception('Could not remove the interrupted build',
                          instance=instance)
        try:
            compute_utils.add_instance_fault_from_exc(
                context, instance, nova_exception.BuildAbortException(
                    instance_uuid=instance.uuid,
                    reason='nova-compute stopped during the build; what it '
                           'had made on the host was removed at its restart'))
        except Exception:
            LOG.exception('Could not record the fault', instance=instance)
        done.append(instance.uuid)
    return done
