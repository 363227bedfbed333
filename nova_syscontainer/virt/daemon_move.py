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
"""CRIU checkpoint/restore and moving containers between daemons.

Suspend/resume checkpoints a container to disk on one daemon; live
migration checkpoints it on one daemon and restores it on another. Both
need the container to have been created with the raw.lxc lines of
:func:`checkpoint_policy.raw_lxc` (``[syscontainer] checkpoint_raw_lxc``
and, on a host without AppArmor, an empty AppArmor profile).

What a move requires is checked first (:mod:`move_checks`); the target's
request (:func:`target_request`) is pure; :func:`move` and its roll-back
talk to two daemons, each through its own
:class:`~nova_syscontainer.virt.client.DaemonClient`, and end a stuck CRIU
dump on this host through :mod:`criu_processes`.

Pull mode, as LXD 5.0.2 implements it:

1. the source daemon offers the instance (a websocket operation whose
   metadata holds one secret per channel: control, fs and, live, criu);
2. within about 10 s the target daemon is asked to create the instance
   from that operation: it connects to the source's websockets itself,
   so it must reach the source's https endpoint (``source_url``) and
   trust its certificate, which the request carries;
3. a live move pre-copies the root filesystem, dumps the processes with
   CRIU (from then on they are stopped), syncs the filesystem again and
   restores them on the target: about 12 s in all and 10-11 s of
   downtime on a ``dir`` pool;
4. the source instance is left behind (stopped) and must be deleted by
   the client.

Failures that matter, and what rolling back does about them:

* the target refuses the request at once (an unknown profile): nothing
  happened on the source but its operation, which is cancelled;
* the restore fails or the target daemon dies after the CRIU dump: LXD
  5.0.2 leaves the source stuck -- its tasks stay stopped under ``criu
  dump`` (the API still says Running), the operation runs forever and
  cannot be cancelled. CRIU waits for its action script, ``lxd
  migratedumpsuccess``, which waits for that operation. Ending that
  helper (SIGTERM) makes CRIU give up and resume the tasks with their
  state intact. Only a process on the source host can do this, so it is
  done only when the source daemon is reached through a unix socket;
* the target may keep a stopped, partial instance (always when its
  daemon died mid-transfer): it is deleted, or, if the target cannot be
  reached, :func:`cleanup_target` must be called once it is back.
"""

import time

from oslo_log import log as logging

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import criu_dump
from nova_syscontainer.virt import criu_processes
from nova_syscontainer.virt import move_checks

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF


#: Config keys of the source never sent to the target: the target daemon
#: computes its own idmap and power state. Everything else (limits.*,
#: raw.lxc, security.*, image.*, user.*, volatile.uuid, NIC hwaddrs...)
#: is copied.
DROP_CONFIG_PREFIXES = ('volatile.idmap.', 'volatile.last_state.')

#: How long the source operation may take to end once the target is done.
SOURCE_DONE_TIMEOUT = 30
#: How long rolling back waits for the source to be released.
RELEASE_GRACE = 30

_RUNNING = daemon_client.RUNNING
_STOPPED = daemon_client.STOPPED
_FROZEN = daemon_client.FROZEN
_FREEZING = daemon_client.FREEZING
#: Seconds the source is watched for a CRIU dump that starts after its
#: migration operation failed (see release_source).
LATE_DUMP_WINDOW = 3


def migratable_config(config):
    """The source config without the keys the target must compute."""
    return {key: value for key, value in (config or {}).items()
            if not key.startswith(DROP_CONFIG_PREFIXES)}


def target_request(record, operation_url, certificate, secrets, live):
    """The ``POST /1.0/instances`` body that makes the target pull.

    :param record: the source's ``GET /1.0/instances/<name>`` metadata.
    :param operation_url: the source operation as the target reaches it,
        ``https://<source>/1.0/operations/<id>``.
    :param certificate: the source daemon's certificate (PEM).
    :param secrets: the source operation's metadata.
    """
    return {
        'name': record['name'],
        'type': 'container',
        'architecture': record['architecture'],
        'config': migratable_config(record.get('config')),
        'devices': record.get('devices') or {},
        'profiles': record.get('profiles') or [],
        'ephemeral': record.get('ephemeral', False),
        'description': record.get('description', ''),
        'source': {'type': 'migration', 'mode': 'pull',
                   'operation': operation_url,
                   'certificate': certificate,
                   'secrets': secrets,
                   'live': live,
                   'instance_only': True},
    }


# -- the move -------------------------------------------------------------

class _Gone(Exception):
    """The daemon forgot the operation: it ended a while ago."""


def _status(client, name):
    record = client.find_instance(name)
    return record['status'] if record is not None else None


def cleanup_target(target, name):
    """Delete what a failed move left of ``name`` on the target.

    Safe to call again later, e.g. once a target daemon that died during
    the move is back (it then keeps a Stopped, partial instance). Only
    call it for an instance known to come from a failed move.
    """
    status = _status(target, name)
    if status is None:
        return False
    if status != _STOPPED:
        target.change_state(name, 'stop', force=True)
    target.delete_instance(name)
    return True


def release_source(source, name, op_ids, init_pid, grace):
    """Wait until the source gave up the move; end a stuck dump if local.

    ``op_ids``: the source's migration operations, already cancelled.
    Cancelling one marks it ended at once, but LXD 5.0.2's source goes on
    until its next read or write on the closed websockets fails, and may
    start or finish the final CRIU dump meanwhile. If it fails after the
    dump ended (sending the checkpoint, or waiting for the target's word),
    its "Live-migrating instance" operation waits forever for a restore
    result nobody sends (fixed in LXD 5.0.3, commit 965bf4489a "Clean up
    operation on failure"); so does the ``lxd migratedumpsuccess`` helper
    that waits on it, and ``criu dump``, which keeps the container's tasks
    stopped under ptrace: every later stop or delete waits on them. So the
    watch goes on while a CRIU dump traces the container, whatever the
    operations say, and ends each such helper (CRIU then resumes the
    tasks, their state intact). That operation itself stays listed as
    Running until the daemon restarts; it holds nothing.

    Returns True when the operations ended, or (local source) a stuck
    dump was released, and no CRIU dump holds the container any more as
    far as can be seen from here.
    """
    deadline = time.monotonic() + grace
    released = False
    quiet_since = None
    while True:
        if init_pid and criu_processes.release_stuck_dump(init_pid):
            LOG.warning('Released the stuck CRIU dump of %s', name)
            released = True
        running = any(_op_running(source, op_id) for op_id in op_ids)
        traced = bool(init_pid) and criu_dump.tracer(init_pid) != 0
        now = time.monotonic()
        if not traced and (not running or released):
            # A dead operation LXD keeps no longer matters; but LXD 5.0.2
            # may start the dump only after the operation failed (the
            # target died early): watch LATE_DUMP_WINDOW for that.
            if quiet_since is None:
                quiet_since = now
            if (released or not init_pid or
                    now - quiet_since >= min(LATE_DUMP_WINDOW, grace)):
                return True
        else:
            quiet_since = None
        if now > deadline:
            return bool(init_pid) and not traced
        time.sleep(0.5)


def _op_running(client, op_id):
    op = client.get_operation(op_id)
    return op is not None and op.get('status') in ('Pending', _RUNNING)


#: Refusals of a DELETE while the source settles after a move.
_SETTLING = ('busy running', 'is running')
#: Seconds between two tries of that DELETE.
SETTLE_INTERVAL = 0.1


def _delete_moved(source, name, timeout=SOURCE_DONE_TIMEOUT):
    """Delete the source's copy once its migration operation ended.

    The source settles for about a second after that: LXD 5.0.2 refuses
    with "busy running a stop operation", Incus 6.0.4 with "Instance is
    running" (its record says Running again while the stop hook runs),
    then "busy running a "stop" operation". Retried every
    SETTLE_INTERVAL, not the client's one-second busy interval.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return source.delete_instance(name, retry_busy=False)
        except exception.DaemonError as e:
            if (time.monotonic() > deadline or
                    not any(m in str(e).lower() for m in _SETTLING)):
                raise
        time.sleep(SETTLE_INTERVAL)


def restore_source(source, name, grace, start_stopped=True):
    """Bring the source of a failed move back to Running; its status.

    LXD 5.0.2 may show "Freezing" for a while after a cut dump: waited out
    (``grace`` seconds), then a frozen source is unfrozen and, with
    ``start_stopped``, a stopped one started (its process state lost).
    """
    status = _status(source, name)
    deadline = time.monotonic() + grace
    while status == _FREEZING and time.monotonic() < deadline:
        time.sleep(0.5)
        status = _status(source, name)
    if status in (_FROZEN, _FREEZING):
        source.change_state(name, 'unfreeze')
    elif start_stopped and status == _STOPPED:
        LOG.warning('%s stopped during the failed move; starting it again '
                    '(its process state is lost)', name)
        source.change_state(name, 'start')
    else:
        return status
    return _status(source, name)


def abandon_move(source, target, name, grace):
    """Undo a live move of ``name`` its client no longer drives.

    For a move whose nova-compute died after asking the target: the
    daemons go on without it. The source's operations on ``name`` are
    cancelled, a CRIU dump they leave stuck is released
    (:func:`release_source`, only when the source is local), the target's
    copy deleted and the source brought back to Running
    (:func:`restore_source`; started again, its process state lost, if
    the move had already stopped it). Returns the source's status.
    """
    ops = source.running_operations(name)
    for op in ops:
        source.cancel_operation(op['id'])
    pid = (source.get_state(name) or {}).get('pid')
    local = source.endpoint.startswith('/') and (pid or 0) > 0
    if not release_source(source, name, [op['id'] for op in ops],
                          pid if local else None, grace):
        LOG.warning('The source daemon may still hold %s in a CRIU dump of '
                    'the abandoned move', name)
    if cleanup_target(target, name):
        LOG.warning('Deleted the copy of %s the abandoned move left on %s',
                    name, target.endpoint)
    return restore_source(source, name, grace)


def _roll_back(source, target, name, op_id, live, init_pid, grace):
    """Undo a failed move as far as possible; notes for the error."""
    notes = []
    source.cancel_operation(op_id)
    # The target first: never two copies running.
    try:
        cleanup_target(target, name)
    except (exception.DaemonError, exception.DaemonUnavailable) as e:
        notes.append('the target may keep a partial instance, to be '
                     'removed with cleanup_target once it is reachable '
                     '(%s)' % e)
    if live and not release_source(source, name, [op_id], init_pid, grace):
        if init_pid:
            notes.append('the source may still be held by a CRIU dump')
        else:
            notes.append('the source operation did not end: on the source '
                         'host, end its "lxd migratedumpsuccess" helper')
    try:
        status = restore_source(source, name, grace, start_stopped=live)
    except (exception.DaemonError, exception.DaemonUnavailable) as e:
        status = 'unknown (%s)' % e
    notes.insert(0, 'the source is %s' % status)
    return notes


def move(source, target, name, source_url, live=True, timeout=None,
         check=True, release_grace=RELEASE_GRACE, on_started=None,
         keep_source=False):
    """Move container ``name`` from one daemon to another, same name.

    :param source: DaemonClient of the daemon that has the container.
    :param target: DaemonClient of the receiving daemon (typically its
        https endpoint, client certificate, its server certificate pinned).
    :param source_url: the https URL under which the *target* reaches the
        source daemon, e.g. ``https://10.0.0.5:8443``.
    :param live: move a Running container with CRIU (processes keep their
        state); False moves a Stopped one (filesystem only).
    :param timeout: seconds for the transfer (operation_timeout of the
        target client by default).
    :param check: run :func:`move_checks.check_target` first. Without it
        only the container's state and the free name on the target are
        checked.
    :param keep_source: leave the source instance in place (a copy; only
        for a Stopped container, whose files then exist twice).
    :param on_started: called with the source operation's id once the
        source offers the container; cancelling that operation (on the
        source daemon) aborts the move, which is then rolled back.
    :returns: figures in seconds since the call: ``target_done`` (the
        instance is on the target, Running for a live move), ``total``
        (the source was deleted), and ``source_removed`` (False if that
        deletion failed; it is logged and the move still counts).
    :raises MigrationTargetUnsuitable: refused before anything was sent.
    :raises MigrationFailed: after rolling back: the target's instance
        deleted, the source operation cancelled, the source Running and
        unfrozen. If the source daemon is local to this host (its endpoint
        is a unix socket), a CRIU dump left stuck by LXD is released by
        ending the source's ``lxd migratedumpsuccess`` helper; with a
        remote source that cannot be done from here and the message says
        so. The message also says when the target could not be cleaned
        (call :func:`cleanup_target` once it is back).
    """
    start = time.monotonic()
    record = source.get_instance(name)
    if check:
        move_checks.check_target(source, target, record, live=live)
    else:
        problems = move_checks.state_problems(record, live)
        if target.instance_exists(name):
            problems.append('the target already has an instance of that '
                            'name')
        if problems:
            move_checks.unsuitable(name, target, problems)
    local = source.endpoint.startswith('/')
    init_pid = source.get_state(name).get('pid') if live and local else None
    certificate = source.server_info()['environment']['certificate']
    try:
        op = source.start_migration_source(name, live)
    except (exception.DaemonError, exception.DaemonUnavailable) as e:
        raise exception.MigrationFailed(name=name, target=target.endpoint,
                                        reason=str(e))
    figures = {}
    expected = _RUNNING if live else _STOPPED
    failure = None
    try:
        if on_started is not None:
            on_started(op['id'])
        body = target_request(
            record, '%s/1.0/operations/%s' % (source_url.rstrip('/'),
                                              op['id']),
            certificate, op.get('metadata') or {}, live)
        target_op = target.start_migration_target(body)
        target.wait_operation('receive instance %s' % name,
                              target_op['id'], timeout=timeout)
        figures['target_done'] = time.monotonic() - start
        try:
            source.wait_operation('send instance %s' % name, op['id'],
                                  timeout=SOURCE_DONE_TIMEOUT,
                                  not_found=_Gone())
        except _Gone:
            pass
        except exception.DaemonError:
            # The source's word comes late or not at all; the target's
            # instance is what counts.
            if _status(target, name) != expected:
                raise
    except Exception as e:
        # Anything at all, once the source offered the instance.
        failure = e
    if failure is not None:
        LOG.warning('Moving %s to %s failed, rolling back: %s', name,
                    target.endpoint, failure)
        notes = _roll_back(source, target, name, op['id'], live, init_pid,
                           release_grace)
        raise exception.MigrationFailed(
            name=name, target=target.endpoint,
            reason='%s; %s' % (failure, '; '.join(notes))) from failure
    if live:
        new = target.get_instance(name).get('config') or {}
        old = record.get('config') or {}
        if new.get('volatile.idmap.current') != old.get(
                'volatile.idmap.current'):
            LOG.error('%s has another idmap on the target: its processes '
                      'keep the source\'s uids', name)
    try:
        if keep_source:
            figures['total'] = time.monotonic() - start
            figures['source_removed'] = False
            return figures
        _delete_moved(source, name)
        figures['source_removed'] = True
    except (exception.DaemonError, exception.DaemonUnavailable) as e:
        LOG.error('%s moved, but its old copy could not be deleted: %s',
                  name, e)
        figures['source_removed'] = False
    figures['total'] = time.monotonic() - start
    return figures
