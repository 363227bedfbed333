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
"""The one place where nova-syscontainer talks to the container daemon.

Every request to LXD (or Incus) goes through :class:`DaemonClient`, which

* owns the pylxd connection (unix socket or https with client certificates,
  TLS verification that environment variables cannot silently change),
* bounds every HTTP request (``api_timeout``) and every background operation
  (``operation_timeout``) -- nothing waits forever,
* retries only what is safe to retry: reads after a dropped connection and
  calls the daemon refused because the instance was busy,
* maps every daemon error to a Nova exception.

It speaks the daemon's REST API through pylxd's API tree rather than
pylxd's models, whose instance migration and image upload do not fit Nova
(they read whole images into memory and mangle migration requests). The
one exception is :meth:`DaemonClient.execute`, where pylxd's
Instance.execute drives the exec API's websockets.
"""

import os
import threading
import time

from nova import exception as nova_exception
from oslo_log import log as logging
import pylxd
from pylxd import exceptions as lxd_exceptions
import requests

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import client_console
from nova_syscontainer.virt import client_guest
from nova_syscontainer.virt import client_images
from nova_syscontainer.virt import client_kind
from nova_syscontainer.virt import client_ops
from nova_syscontainer.virt import daemon_kind

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

# API extensions the driver cannot work without (all present in LXD 5.0
# and Incus 6.0).
REQUIRED_API_EXTENSIONS = ('instances', 'resources', 'projects')

# Daemon status strings.
RUNNING = 'Running'
STOPPED = 'Stopped'
FROZEN = 'Frozen'
FREEZING = 'Freezing'  # LXD 5.0.2's transient status before Frozen
ERROR = 'Error'

_BUSY_MARKERS = ('busy running', 'already running a', 'operation in progress',
                 'in use')


def _is_busy(reason):
    text = reason.lower()
    return any(marker in text for marker in _BUSY_MARKERS)


def _check_private(endpoint, path):
    """Refuse a client key that others on the host could read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise exception.DaemonIncompatible(
            endpoint=endpoint,
            reason='cannot read client_key %s: %s' % (path, e))
    if mode & 0o077:
        raise exception.DaemonIncompatible(
            endpoint=endpoint,
            reason='client_key %s can be read or written by other users '
                   '(mode %04o): whoever reads it controls the daemon; '
                   'make it 0600' % (path, mode & 0o7777))


class DaemonClient(client_images.ImageCalls, client_guest.GuestCalls,
                   client_kind.KindCalls, client_console.ConsoleCalls,
                   client_ops.OperationCalls):
    """A connection to one container daemon, shared by all threads.

    :param endpoint: unix socket path or https URL.
    :param project: daemon project all calls are scoped to.
    :param kind: ``[syscontainer] daemon_kind`` for this node's own daemon
        (no endpoint given), else ``auto``: a peer's kind is read from it.
    The remaining parameters default to the ``[syscontainer]`` options.
    """

    def __init__(self, endpoint=None, project=None, client_cert=None,
                 client_key=None, server_cert=None, insecure=None,
                 api_timeout=None, operation_timeout=None, kind=None):
        group = CONF.syscontainer
        if kind is None:
            kind = group.daemon_kind if endpoint is None else daemon_kind.AUTO
        self._expected_kind = kind
        self._daemon = None
        self.endpoint = endpoint or group.endpoint
        self.project = project or group.project
        self._cert = client_cert or group.client_cert
        self._key = client_key or group.client_key
        self._server_cert = server_cert or group.server_cert
        self._insecure = group.insecure if insecure is None else insecure
        self.api_timeout = api_timeout or group.api_timeout
        self.operation_timeout = operation_timeout or group.operation_timeout
        self._lxd = None
        self._lock = threading.Lock()
        #: REST requests sent so far (see :attr:`api`); read differences.
        self.requests_sent = 0
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------
    # Connection
    # ------------------------------------------------------------------
    def _session(self):
        """A requests session whose TLS settings are exactly ours.

        ``trust_env`` is off so that REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
        proxy variables cannot override the verification chosen here.
        """
        if self.endpoint.startswith('https://'):
            if self._key:
                _check_private(self.endpoint, self._key)
            if self._insecure:
                verify = False
            elif self._server_cert:
                verify = self._server_cert
            else:
                verify = True
            cert = (self._cert, self._key) if self._cert else None
            session = pylxd.client.get_session_for_url(
                self.endpoint, verify=verify, cert=cert)
        elif self.endpoint.startswith('/'):
            session = pylxd.client.get_session_for_url(
                pylxd.client.DEFAULT_SCHEME)
        else:
            raise exception.DaemonIncompatible(
                endpoint=self.endpoint,
                reason='the endpoint must be a unix socket path or an '
                       'https:// URL')
        session.trust_env = False
        return session

    def _connect(self):
        with self._lock:
            if self._lxd is None:
                try:
                    self._lxd = pylxd.Client(
                        endpoint=self.endpoint, session=self._session(),
                        timeout=self.api_timeout, project=self.project)
                except (lxd_exceptions.ClientConnectionFailed,
                        requests.RequestException, OSError) as e:
                    raise exception.DaemonUnavailable(
                        endpoint=self.endpoint, reason=str(e) or repr(e))
            return self._lxd

    @property
    def api(self):
        """The pylxd API tree, rooted at ``/1.0``.

        Each request of :meth:`call`, an operation wait or cancel starts
        with one access here, counted in ``requests_sent`` (exec's
        websockets are not).
        """
        with self._count_lock:
            self.requests_sent += 1
        return self._connect().api

    def reset(self):
        """Forget the connection; the next call connects again."""
        with self._lock:
            self._lxd = None

    # ------------------------------------------------------------------
    # The call wrapper
    # ------------------------------------------------------------------
    def call(self, action, method, node, not_found=None, retry_busy=False,
             read=False, wait=True, raw=False, **kwargs):
        """Issue one request and return the decoded ``metadata``.

        :param action: what is being done, for error messages.
        :param method: 'get', 'post', 'put', 'patch' or 'delete'.
        :param node: a callable taking the API root and returning the node,
            so that a reconnect rebuilds the URL on the new session.
        :param not_found: exception instance raised when the daemon says 404;
            without it a 404 is a :class:`DaemonError`.
        :param retry_busy: retry while the daemon says the object is busy.
        :param read: the call changes nothing, so it is retried once after
            a dropped connection.
        :param wait: wait for a background operation the call starts; when
            False the operation itself (``id``, ``metadata``...) is returned
            and the caller must wait for it (:meth:`wait_operation`).
        :param raw: return the response body as bytes (a file, not an API
            document).
        :param stream: (passed on to requests) return the open response
            itself, its body unread, for the caller to stream and close.
        Background operations are waited for, bounded by operation_timeout.
        """
        attempts = (CONF.syscontainer.busy_retries if retry_busy else 0) + 1
        conn_attempts = 2 if read else 1
        while True:
            try:
                response = getattr(node(self.api), method)(**kwargs)
                if kwargs.get('stream'):
                    return response
                if raw:
                    return response.content
                return self._result(action, response, wait)
            except lxd_exceptions.NotFound as e:
                if not_found is not None:
                    raise not_found
                raise exception.DaemonError(
                    endpoint=self.endpoint, action=action, reason=str(e))
            except lxd_exceptions.LXDAPIException as e:
                reason = str(e)
                attempts -= 1
                if attempts > 0 and _is_busy(reason):
                    LOG.debug('Daemon busy during %s (%s), retrying',
                              action, reason)
                    time.sleep(1)
                    continue
                raise exception.DaemonError(
                    endpoint=self.endpoint, action=action, reason=reason)
            except (requests.ConnectionError, requests.Timeout) as e:
                self.reset()
                conn_attempts -= 1
                if conn_attempts > 0:
                    continue
                raise exception.DaemonUnavailable(
                    endpoint=self.endpoint, reason='%s: %s' % (action, e))
            except exception.DaemonOperationFailed as e:
                attempts -= 1
                if attempts > 0 and _is_busy(e.kwargs['reason']):
                    LOG.debug('Daemon busy during %s (%s), retrying',
                              action, e.kwargs['reason'])
                    time.sleep(1)
                    continue
                raise

    def _result(self, action, response, wait=True):
        try:
            body = response.json()
        except ValueError:
            return response.content
        if body.get('type') == 'async':
            if not wait:
                return body['metadata']
            return self._wait(action, body['metadata']['id'])
        return body.get('metadata')

    def _wait(self, action, op_id, timeout=None, not_found=None):
        """Wait for a background operation; its metadata or an error.

        :param timeout: seconds, operation_timeout by default; the
            operation is cancelled when they run out. The daemon cannot
            cancel every operation (LXD 5.0.2: a create, an image import):
            one it refuses to cancel is waited for once more as long, so
            that when DaemonTimeout is raised the operation has ended (or
            outlived twice the bound) and the caller's clean-up finds what
            it made, instead of a container appearing after the clean-up.
        :param not_found: exception instance raised when the daemon no
            longer knows the operation (it forgets finished ones after a
            few seconds); without it that is a :class:`DaemonError`.
        """
        timeout = timeout or self.operation_timeout
        deadline = time.monotonic() + timeout
        grace = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if not grace and not self._cancel(op_id):
                    LOG.warning('The daemon cannot cancel %s (operation '
                                '%s) after %s s; waiting up to %s s more '
                                'for its end before cleaning up', action,
                                op_id, timeout, timeout)
                    grace = True
                    deadline = time.monotonic() + timeout
                    continue
                raise exception.DaemonTimeout(
                    endpoint=self.endpoint, action=action,
                    timeout=timeout, reason='timed out')
            step = int(max(1, min(remaining, 30)))
            try:
                op = self._wait_once(op_id, step)
            except (requests.ConnectionError, requests.Timeout) as e:
                self.reset()
                raise exception.DaemonUnavailable(
                    endpoint=self.endpoint,
                    reason='waiting to %s: %s' % (action, e))
            except lxd_exceptions.NotFound as e:
                if not_found is not None:
                    raise not_found
                raise exception.DaemonError(
                    endpoint=self.endpoint, action=action, reason=str(e))
            except lxd_exceptions.LXDAPIException as e:
                raise exception.DaemonError(
                    endpoint=self.endpoint, action=action, reason=str(e))
            status = op.get('status')
            if grace and status in ('Success', 'Failure', 'Cancelled'):
                # Ended, but after its time: still a timeout for the caller.
                raise exception.DaemonTimeout(
                    endpoint=self.endpoint, action=action, timeout=timeout,
                    reason='timed out; the daemon could not cancel it and '
                           'it ended (%s) later' % status)
            if status == 'Success':
                return op.get('metadata') or {}
            if status in ('Failure', 'Cancelled'):
                raise exception.DaemonOperationFailed(
                    endpoint=self.endpoint, action=action,
                    reason=op.get('err') or status)

    def _cancel(self, op_id):
        try:
            self.api.operations[op_id].delete()
        except (lxd_exceptions.LXDAPIException, requests.RequestException,
                exception.DaemonUnavailable) as e:
            LOG.debug('Operation %s could not be cancelled: %s', op_id, e)
            return False
        return True

    # ------------------------------------------------------------------
    # Operations
    # ------------------------------------------------------------------
    def wait_operation(self, action, op_id, timeout=None, not_found=None):
        """Wait (bounded) for an operation started with ``wait=False``.

        Returns its metadata; raises DaemonOperationFailed when it failed
        or was cancelled, DaemonTimeout (after cancelling it) when it
        outlives ``timeout`` (default operation_timeout), ``not_found`` or
        DaemonError when the daemon does not know it.
        """
        return self._wait(action, op_id, timeout=timeout,
                          not_found=not_found)

    def _read_or_none(self, action, node):
        """A GET's metadata, or None where the daemon answers 404."""
        try:
            return self.call(action, 'get', node, not_found=_Absent(),
                             read=True)
        except _Absent:
            return None

    def _delete_if_present(self, action, node, retry_busy=False):
        """A DELETE for which 404 means done; whether it deleted anything."""
        try:
            self.call(action, 'delete', node, not_found=_Absent(),
                      retry_busy=retry_busy)
        except _Absent:
            LOG.debug('Nothing to %s: already gone', action)
            return False
        return True

    def get_operation(self, op_id):
        """An operation's record, or None once the daemon forgot it."""
        return self._read_or_none('read operation %s' % op_id,
                                  lambda api: api.operations[op_id])

    def cancel_operation(self, op_id):
        """Ask the daemon to cancel an operation; True if it accepted.

        Never raises: an operation that ended, or a daemon that cannot be
        reached, is only logged.
        """
        return self._cancel(op_id)

    # ------------------------------------------------------------------
    # Host
    # ------------------------------------------------------------------
    def server_info(self):
        """``GET /1.0``: API version, extensions and environment.

        Also tells which daemon this is (:attr:`daemon`), once.
        """
        return self._identify(self.call('read its server information',
                                        'get', lambda api: api, read=True))

    def host_resources(self):
        return self.call('read host resources', 'get',
                         lambda api: api.resources, read=True)

    def pool(self, name):
        return self.call('read storage pool %s' % name, 'get',
                         lambda api: api.storage_pools[name], read=True)

    def pool_exists(self, name):
        return self._read_or_none(
            'read storage pool %s' % name,
            lambda api: api.storage_pools[name]) is not None

    def get_profile(self, name):
        """A profile's record (config, devices), or None if absent."""
        return self._read_or_none('read profile %s' % name,
                                  lambda api: api.profiles[name])

    def pool_resources(self, name):
        return self.call('read storage pool %s resources' % name, 'get',
                         lambda api: api.storage_pools[name].resources,
                         read=True)

    def check_compatible(self):
        """Raise DaemonIncompatible unless the daemon has what we need."""
        info = self.call('read its server information', 'get',
                         lambda api: api, read=True) or {}
        if info.get('auth') != 'trusted':
            # An untrusted client is not told what the daemon is.
            raise exception.DaemonIncompatible(
                endpoint=self.endpoint,
                reason='the daemon does not trust this client; add its '
                       'certificate with "%s"' % ' or '.join(
                           kind.trust_command
                           for kind in daemon_kind.KINDS.values()))
        self._identify(info)
        missing = [ext for ext in REQUIRED_API_EXTENSIONS
                   if ext not in info.get('api_extensions', [])]
        if missing:
            raise exception.DaemonIncompatible(
                endpoint=self.endpoint,
                reason='missing API extensions: %s' % ', '.join(missing))
        return info

    # ------------------------------------------------------------------
    # Instances
    # ------------------------------------------------------------------
    def list_instances(self):
        """All instances of the project with their config, in one call."""
        return self.call('list instances', 'get', lambda api: api.instances,
                         params={'recursion': 1}, read=True) or []

    def get_instance(self, name, not_found=None):
        return self.call('read instance %s' % name, 'get',
                         lambda api: api.instances[name],
                         not_found=not_found, read=True)

    def find_instance(self, name):
        """An instance's record, or None if the daemon has none by name."""
        return self._read_or_none('read instance %s' % name,
                                  lambda api: api.instances[name])

    def instance_exists(self, name):
        return self.find_instance(name) is not None

    def get_state(self, name, not_found=None):
        return self.call('read the state of %s' % name, 'get',
                         lambda api: api.instances[name].state,
                         not_found=not_found, read=True)

    def create_instance(self, body):
        """Create a container and wait until it exists (stopped)."""
        return self.call('create instance %s' % body['name'], 'post',
                         lambda api: api.instances,
                         json=self._for_daemon(body))

    def update_instance(self, name, body):
        """Replace the instance's writable config (``PUT``)."""
        return self.call('update instance %s' % name, 'put',
                         lambda api: api.instances[name], json=body,
                         retry_busy=True)

    def change_state(self, name, action, timeout=None, force=False,
                     stateful=False, not_found=None):
        """start, stop, restart, freeze or unfreeze an instance."""
        body = {'action': action, 'force': force, 'stateful': stateful}
        if timeout is not None:
            body['timeout'] = int(timeout)
        return self.call('%s instance %s' % (action, name), 'put',
                         lambda api: api.instances[name].state, json=body,
                         not_found=not_found, retry_busy=not stateful)

    def write_files(self, name, directories, files):
        """Write files into an instance (running or stopped) as root.

        :param directories: (path, mode) pairs, parents first; only those
            the instance lacks are created. Mode None: a directory the
            instance must have already; without it nothing is written.
        :returns: whether the files were written.
        :param files: objects with ``path``, ``content`` (bytes) and
            ``mode``; an existing file is overwritten.
        One request per missing directory and per file, each bounded by
        api_timeout (the daemon's file API is synchronous).
        """
        def files_node(api):
            return api.instances[name].files

        for path, mode in directories:
            try:
                # raw: an empty directory's listing is falsy.
                self.call('read %s in %s' % (path, name), 'get', files_node,
                          not_found=_Absent(), read=True, raw=True,
                          params={'path': path})
                continue
            except _Absent:
                if mode is None:
                    return False
            self.call('create %s in %s' % (path, name), 'post', files_node,
                      params={'path': path}, data=b'',
                      headers=_file_headers('directory', mode))
        for item in files:
            self.call('write %s in %s' % (item.path, name), 'post',
                      files_node, params={'path': item.path},
                      data=item.content,
                      headers=_file_headers('file', item.mode))
        return True

    def delete_instance(self, name, retry_busy=True):
        """Delete an instance (absent: done); busy: retry_busy retries."""
        self._delete_if_present('delete instance %s' % name,
                                lambda api: api.instances[name],
                                retry_busy=retry_busy)

    def start_migration_source(self, name, live):
        """Offer an instance for migration (pull mode); do not wait.

        Returns the daemon's websocket operation: its ``id`` and, in
        ``metadata``, the secrets (``control``, ``fs`` and for a live
        move ``criu``) a target daemon needs to pull the instance. The
        daemon fails the operation by itself if no target connects within
        about 10 seconds.
        """
        return self.call('offer instance %s for migration' % name, 'post',
                         lambda api: api.instances[name], wait=False,
                         json={'name': name, 'migration': True,
                               'live': live, 'instance_only': True})

    def start_migration_target(self, body):
        """Create an instance pulled from another daemon; do not wait.

        ``body`` is a full ``POST /1.0/instances`` request whose source is
        of type migration (see daemon_move.target_request). Returns the
        operation; a synchronous refusal raises DaemonError.
        """
        return self.call('receive instance %s' % body['name'], 'post',
                         lambda api: api.instances,
                         json=self._for_daemon(body), wait=False)

    def get_writable(self, name, not_found=None):
        """The fields of an instance that ``PUT`` replaces."""
        rec = self.get_instance(name, not_found=not_found)
        return {key: rec.get(key) for key in (
            'architecture', 'config', 'devices', 'ephemeral', 'profiles',
            'stateful', 'description')}

    def console_log(self, name, not_found=None):
        """The console log the daemon gives for a container (bytes).

        LXD 5.0.2 (measured): while the container runs, the bytes its
        console wrote since the previous read (the read consumes liblxc's
        ring buffer), and an error "open : no such file or directory"
        (HTTP 500) when there are none -- always so after a CRIU restore,
        whose console the ring buffer no longer records (the same bug as
        lxc/lxc#4448, "a LXD bug"). That error is an empty log here. While
        it is stopped, the log file of its last run. Incus 6.0.4 answers
        200 with the bytes, also after a restore (daemon_kind).
        """
        try:
            return self.call('read the console log of %s' % name, 'get',
                             lambda api: api.instances[name].console,
                             not_found=not_found, raw=True, is_api=False)
        except exception.DaemonError as e:
            if daemon_kind.console_no_data(e.kwargs.get('reason')):
                return b''
            raise

    def set_config(self, name, config):
        """Set some config keys of an instance (``PATCH``), running or not.

        Other keys are left as they are.
        """
        return self.call('update the config of instance %s' % name, 'patch',
                         lambda api: api.instances[name],
                         json={'config': config}, retry_busy=True)


def _file_headers(kind, mode):
    """Headers of the daemon's file API: owner root, mode, type."""
    return {'X-LXD-type': kind, 'X-LXD-mode': '%04o' % mode,
            'X-LXD-uid': '0', 'X-LXD-gid': '0', 'X-LXD-write': 'overwrite'}


class _Absent(Exception):
    """Internal marker for a 404 that callers treat as 'not there'."""


def instance_not_found(instance):
    """The Nova exception for an instance the daemon does not have."""
    return nova_exception.InstanceNotFound(instance_id=instance.uuid)
