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
"""Nova's live-migration contract on top of :mod:`daemon_move`.

The source compute reads the destination's compute record
(:mod:`peers`), opens a client to that daemon and moves the container with
:func:`daemon_move.move`, reporting its progress
(:mod:`migration_progress`); the pre-checks run ``criu check`` through
:mod:`criu_processes`. The cold path (resize, cold migration) is
:mod:`cold_migration`; what a failed move leaves behind, :mod:`leftovers`.

What travels between the computes through Nova's conductor is a
``HyperVLiveMigrateData``: the smallest ``LiveMigrateData`` that Nova
registers, so that a conductor, which never loads this driver, can pass it
on. Only its generic fields are used (``is_shared_instance_path`` is
False: the container's files move with it).
"""

from nova import exception as nova_exception
from nova.i18n import _
from nova import objects
from oslo_log import log as logging

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import container
from nova_syscontainer.virt import criu_processes
from nova_syscontainer.virt import daemon_move
from nova_syscontainer.virt import migration_progress
from nova_syscontainer.virt import move_checks
from nova_syscontainer.virt import peers

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF


def _precheck_error(reason):
    return nova_exception.MigrationPreCheckError(reason=reason)


def check_criu(path, where):
    """Raise MigrationPreCheckError unless CRIU works on this host."""
    problem = criu_processes.criu_problem(path)
    if problem:
        raise _precheck_error(_('CRIU is not usable on the %(where)s '
                                'node: %(problem)s') % {
                                    'where': where, 'problem': problem})


def check_destination(own_endpoint, src_compute_info, criu_path=None):
    """Checks of check_can_live_migrate_destination; the migrate data."""
    if not CONF.syscontainer.allow_live_migration:
        raise _precheck_error(_('live migration to this node is disabled '
                                '([syscontainer] allow_live_migration)'))
    if not CONF.syscontainer.enable_checkpoint:
        raise _precheck_error(_('this node does not prepare containers for '
                                'CRIU ([syscontainer] enable_checkpoint)'))
    if not own_endpoint:
        raise _precheck_error(_('this node has no [syscontainer] '
                                'migration_endpoint'))
    if not peers.stats_of(src_compute_info).get(peers.ENDPOINT_STAT):
        raise _precheck_error(_('the source node publishes no '
                                '[syscontainer] migration_endpoint'))
    check_criu(criu_path, 'destination')
    return objects.HyperVLiveMigrateData(is_shared_instance_path=False)


def check_source(record, criu_path=None):
    """Checks of check_can_live_migrate_source on the container itself."""
    problems = move_checks.record_problems(
        record, True, checkpoint_policy.raw_lxc())
    if problems:
        raise _precheck_error('; '.join(problems))
    check_criu(criu_path, 'source')


def move(context, source, source_endpoint, instance, dest,
         on_started=None, migration=None):
    """Move the instance's running container to ``dest``; its figures.

    ``on_started`` gets the source operation's id (see
    :func:`daemon_move.move`), which :meth:`abort` needs. While the daemons
    move it, the progress (:mod:`migration_progress`) goes into
    ``migration``'s memory_*/disk_* fields and ``instance.progress``,
    saved as libvirt's driver does.
    """
    target = peers.sending_target(context, source_endpoint, dest)
    name = container.name(instance)
    monitor = None
    if migration is not None:
        monitor = migration_progress.Monitor(
            source, name, _progress_saver(instance, migration))
        monitor.start()
    try:
        return daemon_move.move(
            source, target, name, source_endpoint, live=True,
            timeout=CONF.syscontainer.migration_timeout,
            on_started=on_started)
    finally:
        if monitor is not None:
            monitor.stop()


def _progress_saver(instance, migration):
    def save(fields, progress):
        for key, value in fields.items():
            setattr(migration, key, value)
        migration.save()
        instance.progress = progress
        instance.save()
    return save


def adopt(client, name, nodename):
    """Mark a container that arrived by migration as this node's."""
    writable = client.get_writable(name)
    config = dict(writable['config'])
    config[container.HOST_KEY] = nodename
    client.update_instance(name, dict(writable, config=config))
