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
"""The real daemon the functional tests run against, and the kernel's view.

Nothing here is a test double: :class:`DaemonFixture` talks to the LXD
daemon that ``tools/setup-host.sh`` started, in a project of its own so that
tests never see or touch any other container on the host, and the helpers
read what the kernel enforces from cgroup files and ``/proc``.
"""

import fcntl
import os
import signal
import subprocess
import time

import fixtures
from pylxd import exceptions as lxd_exceptions

from nova_syscontainer.virt import image as images
from tests import cgroups
from tests import paths
from tests import rawlxd

#: Where tools/setup-host.sh puts each kind's daemons (``--incus`` for
#: Incus). SYSCONTAINER_TEST_DAEMON picks the kind the tests run against
#: (``lxd`` by default; ``tox -e functional-incus`` sets ``incus``); the
#: SYSCONTAINER_TEST_*ENDPOINT variables override single endpoints.
DAEMONS = {
    'lxd': {
        'endpoint': '/var/lib/lxd/unix.socket',
        'https': 'https://127.0.0.1:8443',
        'server_cert': 'lxd-server.crt',
        'second_endpoint': '/var/lib/nova-syscontainer/lxd-b/unix.socket',
        'second_https': 'https://127.0.0.1:8444',
        'second_server_cert': 'lxd-b-server.crt',
        'second_pidfile': '/var/log/nova-syscontainer/lxd-b.pid',
        'setup_args': ['--second-daemon'],
        'cli': 'lxc', 'dir_variable': 'LXD_DIR',
    },
    'incus': {
        'endpoint': '/var/lib/incus/unix.socket',
        'https': 'https://127.0.0.1:8543',
        'server_cert': 'incus-server.crt',
        'second_endpoint': '/var/lib/nova-syscontainer/incus-b/unix.socket',
        'second_https': 'https://127.0.0.1:8544',
        'second_server_cert': 'incus-b-server.crt',
        'second_pidfile': '/var/log/nova-syscontainer/incus-b.pid',
        'setup_args': ['--second-daemon', '--incus'],
        'cli': 'incus', 'dir_variable': 'INCUS_DIR',
    },
}
KIND = os.environ.get('SYSCONTAINER_TEST_DAEMON', 'lxd')
_DAEMON = DAEMONS[KIND]
ENDPOINT = os.environ.get('SYSCONTAINER_TEST_ENDPOINT', _DAEMON['endpoint'])
HTTPS_ENDPOINT = os.environ.get('SYSCONTAINER_TEST_HTTPS_ENDPOINT',
                                _DAEMON['https'])
CONF_DIR = os.environ.get('SYSCONTAINER_CONF_DIR', '/etc/nova-syscontainer')
CLIENT_CERT = os.path.join(CONF_DIR, 'client.crt')
CLIENT_KEY = os.path.join(CONF_DIR, 'client.key')
SERVER_CERT = os.path.join(CONF_DIR, _DAEMON['server_cert'])
#: The daemon's command-line client and how it finds the daemon's socket.
CLI = _DAEMON['cli']


def cli_env(endpoint=None):
    """The environment for CLI to talk to the daemon of ``endpoint``."""
    return dict(os.environ, **{_DAEMON['dir_variable']: os.path.dirname(
        endpoint or ENDPOINT)})


IMAGE_PATH = paths.TEST_IMAGE
# The default project: LXD 5.0 cannot restore a CRIU checkpoint in another.
PROJECT = os.environ.get('SYSCONTAINER_TEST_PROJECT', 'default')
#: Tests name their containers with this prefix (instance_name_template)
#: and only ever sweep containers that carry it. Names include the
#: instance UUID: each test has a fresh Nova database, and a name reused
#: across tests would inherit what LXD remembers of the previous container.
#: They also carry the test process's PID, so that a sweep removes what a
#: dead run left behind but never the containers of another live run.
BASE_PREFIX = 'nsc-ft-'
NAME_PREFIX = '%s%d-' % (BASE_PREFIX, os.getpid())
NAME_TEMPLATE = NAME_PREFIX + '%(uuid)s'
POOL = os.environ.get('SYSCONTAINER_TEST_POOL', 'default')

#: The second daemon (``tools/setup-host.sh --second-daemon``), the target
#: of the migration tests: its own LXD_DIR, https on another port, trusting
#: the same client certificate.
SECOND_ENDPOINT = os.environ.get(
    'SYSCONTAINER_TEST_SECOND_ENDPOINT', _DAEMON['second_endpoint'])
SECOND_HTTPS_ENDPOINT = os.environ.get(
    'SYSCONTAINER_TEST_SECOND_HTTPS_ENDPOINT', _DAEMON['second_https'])
SECOND_SERVER_CERT = os.path.join(CONF_DIR, _DAEMON['second_server_cert'])
SECOND_PIDFILE = _DAEMON['second_pidfile']
SETUP_HOST = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), 'tools', 'setup-host.sh')


def connect(project=PROJECT, endpoint=ENDPOINT):
    """A plain pylxd client for the tests' own checks of the daemon."""
    return rawlxd.connect(endpoint, project)


wait_operation = rawlxd.wait_operation
delete_instance = rawlxd.remove


def ensure_project(project=PROJECT, pool=POOL, endpoint=ENDPOINT):
    """Create the tests' project (own images and profiles) if missing."""
    lxd = connect('default', endpoint)
    if project == 'default':
        return lxd
    try:
        lxd.api.projects[project].get()
    except lxd_exceptions.NotFound:
        wait_operation(lxd, lxd.api.projects.post(json={
            'name': project,
            'description': 'nova-syscontainer functional tests',
            'config': {'features.images': 'true',
                       'features.profiles': 'true',
                       'features.storage.volumes': 'false',
                       'features.networks': 'false'}}))
    lxd = connect(project, endpoint)
    profile = lxd.api.profiles['default'].get().json()['metadata']
    root = {'type': 'disk', 'path': '/', 'pool': pool}
    if profile['devices'].get('root') != root:
        lxd.api.profiles['default'].put(json={
            'config': profile['config'], 'description': profile['description'],
            'devices': {'root': root}})
    return lxd


def _ours_or_orphaned(name):
    if not name.startswith(BASE_PREFIX):
        return False
    owner = name[len(BASE_PREFIX):].split('-', 1)[0]
    if not owner.isdigit():
        return False
    return int(owner) == os.getpid() or not os.path.exists(
        '/proc/%s' % owner)


def sweep(lxd):
    """Remove this run's containers and those dead runs left behind."""
    for name in rawlxd.names(lxd):
        if _ours_or_orphaned(name):
            rawlxd.remove(lxd, name)


def delete_nova_images(lxd):
    """Remove the images the driver imported (its alias prefix)."""
    for rec in lxd.api.images.get(params={'recursion': 1}).json()['metadata']:
        ours = [a['name'] for a in rec.get('aliases') or []
                if a['name'].startswith(images.ALIAS_PREFIX)]
        if not ours:
            continue
        if rec.get('properties', {}).get(images.OWNER_PROPERTY):
            wait_operation(lxd, lxd.api.images[rec['fingerprint']].delete())
        else:
            for alias in ours:
                lxd.api.images.aliases[alias].delete()


#: One test at a time per host, across processes: two runs would see each
#: other's computes (same host names) and one may kill a daemon. The Incus
#: daemons are used by the Incus runs only, which may take a lock of their
#: own (SYSCONTAINER_TEST_LOCK); a test that also touches the LXD daemons
#: takes LXD_LOCK_PATH too, before this one.
LXD_LOCK_PATH = paths.LXD_LOCK
LOCK_PATH = paths.LOCK
_locks = {}


def _acquire_host_lock(path=None):
    lock = _locks.setdefault(path or LOCK_PATH, {'fd': None, 'depth': 0})
    if lock['depth'] == 0:
        fd = os.open(path or LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        lock['fd'] = fd
    lock['depth'] += 1


def _release_host_lock(path=None):
    lock = _locks[path or LOCK_PATH]
    lock['depth'] -= 1
    if lock['depth'] == 0:
        os.close(lock['fd'])  # closing the descriptor drops the flock
        lock['fd'] = None


#: For a test that takes another lock too (by path), before its fixtures.
acquire_host_lock = _acquire_host_lock
release_host_lock = _release_host_lock


class DaemonFixture(fixtures.Fixture):
    """The real daemon, its tests' project emptied before and after.

    Holds the host's test lock from setUp to cleanup, so that test runs in
    several processes take turns instead of disturbing each other.
    """

    def __init__(self, project=PROJECT, pool=POOL, endpoint=ENDPOINT,
                 keep_images=True):
        super().__init__()
        self.project = project
        self.pool = pool
        self.endpoint = endpoint
        self.keep_images = keep_images

    def _setUp(self):
        _acquire_host_lock()
        self.addCleanup(_release_host_lock)
        self.lxd = ensure_project(self.project, self.pool, self.endpoint)
        sweep(self.lxd)
        if not self.keep_images:
            delete_nova_images(self.lxd)
        self.addCleanup(sweep, self.lxd)

    # -- the daemon's view -------------------------------------------------
    def instance(self, name):
        return self.lxd.api.instances[name].get().json()['metadata']

    def state(self, name):
        return self.lxd.api.instances[name].state.get().json()['metadata']

    def names(self):
        return [rec['name'] for rec in self.lxd.api.instances.get(
            params={'recursion': 1}).json()['metadata']]

    def images(self):
        return self.lxd.api.images.get(
            params={'recursion': 1}).json()['metadata']

    def create_raw(self, name, fingerprint, start=True, config=None,
                   profiles=None):
        """A container made without Nova, as an operator might."""
        wait_operation(self.lxd, self.lxd.api.instances.post(json={
            'name': name, 'type': 'container',
            'profiles': profiles or ['default'],
            'config': config or {},
            'source': {'type': 'image', 'fingerprint': fingerprint}}))
        if start:
            self.change_state(name, 'start')

    def ensure_profile(self, name, body):
        """Create or overwrite a profile (one may be left by a past run)."""
        body = {'config': body.get('config', {}),
                'devices': body.get('devices', {}),
                'description': 'nova-syscontainer functional tests'}
        try:
            self.lxd.api.profiles[name].get()
        except lxd_exceptions.NotFound:
            self.lxd.api.profiles.post(json=dict(body, name=name))
        else:
            self.lxd.api.profiles[name].put(json=body)

    def delete_profile(self, name):
        """Delete a profile; absent is fine."""
        try:
            self.lxd.api.profiles[name].delete()
        except lxd_exceptions.NotFound:
            pass

    def change_state(self, name, action, force=False):
        wait_operation(self.lxd, self.lxd.api.instances[name].state.put(
            json={'action': action, 'force': force}))

    def import_image(self, path=IMAGE_PATH):
        """The daemon's fingerprint of an image file, imported if new."""
        return rawlxd.import_image(self.lxd, path)[0]

    # -- the kernel's view -------------------------------------------------
    def init_pid(self, name):
        return self.state(name)['pid']

    def cgroup_dir(self, name, controller):
        """Host path of the cgroup (v1 controller or v2) of the container."""
        return cgroups.cgroup_dir(self.init_pid(name), controller)

    def cgroup_value(self, name, controller, filename):
        return cgroups.cgroup_value(self.init_pid(name), controller,
                                    filename)

    def read_file(self, name, path):
        """A file inside the running container, through its init's root."""
        with open('/proc/%d/root%s' % (self.init_pid(name), path)) as f:
            return f.read()

    def write_file(self, name, path, data):
        """Write a file inside the container (root's) through the daemon.

        Not through /proc/<pid>/root: Incus 6.0 gives containers an
        idmapped root filesystem, on which the host's root cannot create
        files (EOVERFLOW: it has no uid inside the mapping).
        """
        self.lxd.api.instances[name].files.post(
            params={'path': path}, data=data,
            headers={'X-LXD-type': 'file', 'X-LXD-mode': '0644',
                     'X-LXD-uid': '0', 'X-LXD-gid': '0',
                     'X-LXD-write': 'overwrite'})

    def counter(self, name, timeout=20):
        """(token, pid, count) that the test image's counter writes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                token, pid, count = self.read_file(
                    name, '/tmp/counter').split()
                return token, int(pid), int(count)
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def second_daemon_available():
    """Whether the second daemon answers on its unix socket."""
    if not os.path.exists(SECOND_ENDPOINT):
        return False
    try:
        connect('default', SECOND_ENDPOINT).api.get()
    except Exception:
        return False
    return True


class SecondDaemonFixture(DaemonFixture):
    """The second daemon (B), seen through its unix socket.

    Its test containers are swept before and after like daemon A's; it can
    be killed (SIGKILL, as a crash) and started again by the tests.
    """

    def __init__(self):
        super().__init__(project='default', endpoint=SECOND_ENDPOINT)

    def _setUp(self):
        super()._setUp()
        # Runs before the sweep: a test that killed the daemon gets it back.
        self.addCleanup(self.ensure_running)

    def daemon_pid(self):
        with open(SECOND_PIDFILE) as f:
            return int(f.read().strip())

    def kill(self):
        """SIGKILL the daemon (its containers, if any, keep running)."""
        os.kill(self.daemon_pid(), signal.SIGKILL)

    def ensure_running(self):
        """Start the daemon again if it does not answer, and reconnect."""
        if not second_daemon_available():
            subprocess.run([SETUP_HOST] + _DAEMON['setup_args'], check=True,
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
        self.lxd = connect(self.project, self.endpoint)
