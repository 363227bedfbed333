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
"""Nova's live-migration contract on top of :mod:`migrate`.

How the nodes find each other: every compute publishes, in the ``stats`` of
its compute-node record, the https URL of its daemon
(``[syscontainer] migration_endpoint``) and the certificate that daemon
presents. The source compute reads the destination's record, opens a
client to that daemon (its own client certificate, the destination's
certificate pinned) and moves the container with :func:`migrate.move`.

What travels between the computes through Nova's conductor is a
``HyperVLiveMigrateData``: the smallest ``LiveMigrateData`` that Nova
registers, so that a conductor, which never loads this driver, can pass it
on. Only its generic fields are used (``is_shared_instance_path`` is
False: the container's files move with it).
"""

import hashlib
import os
import threading

from nova import context as nova_context
from nova import exception as nova_exception
from nova.i18n import _
from nova import objects
from oslo_log import log as logging
from oslo_serialization import jsonutils

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer import privsep
from nova_syscontainer.privsep import criu_host
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import container
from nova_syscontainer.virt import migrate
from nova_syscontainer.virt import migration_progress
from nova_syscontainer.virt import nics
from nova_syscontainer.virt import state_files

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

#: Keys of the compute-node stats this driver publishes.
ENDPOINT_STAT = 'syscontainer_migration_endpoint'
CERT_STAT = 'syscontainer_server_cert'


def _precheck_error(reason):
    return nova_exception.MigrationPreCheckError(reason=reason)


def _stats(compute_info):
    """The stats of a compute-node record (object, primitive or dict)."""
    if compute_info is None:
        return {}
    if isinstance(compute_info, dict):
        stats = compute_info.get('stats')
        if stats is None:
            stats = compute_info.get('nova_object.data', {}).get('stats')
    else:
        stats = getattr(compute_info, 'stats', None)
    if isinstance(stats, str):
        stats = jsonutils.loads(stats)
    return stats or {}


#: Seconds ``criu check`` may take (it takes about 0.1 s).
CRIU_CHECK_TIMEOUT = criu_host.CRIU_CHECK_TIMEOUT


def criu_verdict(path, returncode, output):
    """Why ``criu check``'s result means CRIU is unusable, or None (pure).

    CRIU prints "Looks good." (possibly with notes on optional features)
    and exits 0 when it can checkpoint and restore on this kernel; any
    other exit status is a refusal, explained by its last error lines.
    """
    if returncode == 0:
        return None
    lines = [line.strip() for line in (output or '').splitlines()
             if line.strip()]
    errors = [line for line in lines if 'error' in line.lower()] or lines
    detail = '; '.join(errors[-3:]) or 'no output'
    return (_('"%(path)s check" failed with exit status %(rc)s: '
              '%(detail)s') % {'path': path, 'rc': returncode,
                               'detail': detail})


def criu_problem(path):
    """Run ``<path> check`` on this host; why CRIU is unusable, or None.

    CRIU runs in the ``criu_admin`` privsep daemon
    (:func:`nova_syscontainer.privsep.criu_host.criu_check`), which runs
    only a program named ``criu`` that root owns.
    """
    if not path:
        return None
    privsep.ready(privsep.criu_admin)
    try:
        returncode, output = criu_host.criu_check(path)
    except TimeoutError:
        return _('"%(path)s check" did not end within %(t)d s') % {
            'path': path, 't': CRIU_CHECK_TIMEOUT}
    except (OSError, ValueError) as e:
        return _('CRIU cannot be run as %(path)s ([syscontainer] '
                 'criu_path): %(error)s') % {'path': path, 'error': e}
    return criu_verdict(path, returncode, output)


def check_criu(path, where):
    """Raise MigrationPreCheckError unless CRIU works on this host."""
    problem = criu_problem(path)
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
    if not _stats(src_compute_info).get(ENDPOINT_STAT):
        raise _precheck_error(_('the source node publishes no '
                                '[syscontainer] migration_endpoint'))
    check_criu(criu_path, 'destination')
    return objects.HyperVLiveMigrateData(is_shared_instance_path=False)


def check_source(record, criu_path=None):
    """Checks of check_can_live_migrate_source on the container itself."""
    problems = migrate.record_problems(
        record, True, checkpoint_policy.raw_lxc())
    if problems:
        raise _precheck_error('; '.join(problems))
    check_criu(criu_path, 'source')


def _peer_certificate(pem):
    """A file holding a peer daemon's certificate, for pinning."""
    directory = os.path.join(CONF.state_path, 'syscontainer', 'peers')
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, '%s.crt' % hashlib.sha256(
        pem.encode()).hexdigest())
    if not os.path.exists(path):
        # Named by its content: two writers write the same bytes.
        state_files.write_atomic(path, pem, mode=0o644)
    return path


#: Clients of peer daemons, by endpoint, pinned certificate, timeout and
#: this node's client certificate: a move to a peer reuses the TLS
#: connection of the previous one (a new handshake cost 0.13-0.2 s of each
#: move on a busy two-core host). A peer that publishes another
#: certificate gets a new client.
_PEERS = {}
_PEERS_LOCK = threading.Lock()


def target_client(context, dest):
    """A client for ``dest``'s daemon, from its published compute stats."""
    node = objects.ComputeNode.get_first_node_by_host_for_old_compat(
        context, dest)
    stats = _stats(node)
    endpoint, pem = stats.get(ENDPOINT_STAT), stats.get(CERT_STAT)
    if not endpoint or not pem:
        raise _precheck_error(_('host %s publishes no migration endpoint') %
                              dest)
    cert = _peer_certificate(pem)
    group = CONF.syscontainer
    timeout = group.migration_timeout
    key = (endpoint, cert, timeout, group.client_cert, group.client_key)
    with _PEERS_LOCK:
        client = _PEERS.get(key)
        if client is None:
            client = _PEERS[key] = (
                daemon_client.DaemonClient(
                    endpoint=endpoint, server_cert=cert,
                    # The peer's published certificate is pinned whatever
                    # this node's [syscontainer] insecure says of its own
                    # daemon.
                    insecure=False, operation_timeout=timeout))
    return client


def _target(context, source_endpoint, dest):
    """A client for ``dest``'s daemon, once this node can send at all."""
    if not source_endpoint:
        raise _precheck_error(_('this node has no [syscontainer] '
                                'migration_endpoint'))
    return target_client(context, dest)


def move(context, source, source_endpoint, instance, dest,
         on_started=None, migration=None):
    """Move the instance's running container to ``dest``; its figures.

    ``on_started`` gets the source operation's id (see
    :func:`migrate.move`), which :meth:`abort` needs. While the daemons
    move it, the progress (:mod:`migration_progress`) goes into
    ``migration``'s memory_*/disk_* fields and ``instance.progress``,
    saved as libvirt's driver does.
    """
    target = _target(context, source_endpoint, dest)
    name = container.name(instance)
    monitor = None
    if migration is not None:
        monitor = migration_progress.Monitor(
            source, name, _progress_saver(instance, migration))
        monitor.start()
    try:
        return migrate.move(
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


def copy_stopped(context, source, source_endpoint, instance, dest):
    """Copy the instance's stopped container to ``dest``'s daemon.

    The source copy stays until the resize or cold migration is confirmed
    (or serves again if it is reverted). A copy this instance left on the
    target earlier is removed first.
    """
    target = _target(context, source_endpoint, dest)
    clear_leftover(target, instance)
    return migrate.move(source, target, container.name(instance),
                        source_endpoint, live=False,
                        timeout=CONF.syscontainer.migration_timeout,
                        keep_source=True)


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
        raise _precheck_error(_('container %s on this node is not this '
                                'instance\'s') % name)
    LOG.info('Removing %s, left by an earlier migration', name,
             instance=instance)
    migrate.cleanup_target(client, name)


def adopt(client, name, nodename):
    """Mark a container that arrived by migration as this node's."""
    writable = client.get_writable(name)
    config = dict(writable['config'])
    config[container.HOST_KEY] = nodename
    client.update_instance(name, dict(writable, config=config))


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
        try:
            with open(self.path) as f:
                return jsonutils.loads(f.read())
        except (OSError, ValueError):
            return {}

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
                    migrate.cleanup_target(client, name)
            except (exception.DaemonError, exception.DaemonUnavailable) as e:
                LOG.warning('Leftover %s not removed yet: %s', name, e)
                continue
            self.discard(uuid)
            done.append(uuid)
        return done
