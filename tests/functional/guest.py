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
"""Processes inside a test container, and what the kernel says of them.

Probes are started with ``lxc exec`` but detached from its session
(``setsid``, every descriptor on /dev/null, or a daemon that forks away by
itself as busybox httpd does): a process left attached to an exec session
is not in the tree under the container's init, so CRIU 4.2.1 does not carry
it over a checkpoint (it ends with its session; CRIU 4.1.1 refused the dump
instead: "session leader outside of its pid namespace"). They are found
again from the host's /proc, under the container's init.
"""

import glob
import os
import subprocess
import sys
import time

from nova_syscontainer.virt import criu_dump
from tests.functional import daemon

#: How long one ``lxc exec`` may take.
EXEC_TIMEOUT = 30
TCP_LISTEN = '0A'
TCP_ESTABLISHED = '01'


def lxc_exec(fixture, name, script, timeout=EXEC_TIMEOUT):
    """Run ``sh -c script`` in the container on ``fixture``'s daemon."""
    return subprocess.run(
        [daemon.CLI, 'exec', name, '--', 'sh', '-c', script],
        env=daemon.cli_env(fixture.endpoint),
        check=True, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=timeout).stdout


def start_detached(fixture, name, command):
    """Start ``command`` in the container, in a session of its own."""
    lxc_exec(fixture, name, 'setsid %s </dev/null >/dev/null 2>&1 &' %
             command)


def start_nested_ipc(fixture, name):
    """A ``sleep`` with an IPC namespace of its own; its host pid.

    CRIU cannot dump it (as a UTS namespace of its own, which containers
    prepared for checkpointing no longer get from unshare(): the driver's
    checkpoint_deny_uts_namespace seccomp line refuses it).
    """
    start_detached(fixture, name, 'unshare -i sleep 1000')
    return find_task(fixture, name, 'sleep', argv_has='1000')


def find_task(fixture, name, comm, timeout=10, **kwargs):
    """The host pid of the container's task called ``comm`` (waits).

    With ``argv_has``, the task's command line must hold that word.
    """
    argv_has = kwargs.get('argv_has')
    deadline = time.monotonic() + timeout
    while True:
        for task in criu_dump.tasks(fixture.init_pid(name)):
            if task['comm'] == comm and (
                    argv_has is None or
                    argv_has in criu_dump.argv(task['pid'])):
                return task['pid']
        if time.monotonic() > deadline:
            raise AssertionError('no task %s in container %s' %
                                 (comm, name))
        time.sleep(0.2)


def _socket_inodes(pid):
    inodes = set()
    try:
        fds = os.listdir('/proc/%d/fd' % pid)
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    return inodes


def tcp_sockets(pid):
    """[(local port, remote port, state)] of TCP sockets ``pid`` holds.

    Read from the process's network namespace (/proc/<pid>/net/tcp), only
    the sockets among its own descriptors.
    """
    mine = _socket_inodes(pid)
    found = []
    for table in ('tcp', 'tcp6'):
        try:
            with open('/proc/%d/net/%s' % (pid, table)) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in mine:
                found.append((int(fields[1].rsplit(':', 1)[1], 16),
                              int(fields[2].rsplit(':', 1)[1], 16),
                              fields[3]))
    return found


def listening(pid, port):
    """Whether ``pid`` holds a TCP socket listening on ``port``."""
    return (port, 0, TCP_LISTEN) in tcp_sockets(pid)


def start_httpd(fixture, name, port=8080):
    """Start busybox httpd in the container; its host pid once it listens.

    httpd forks into the container's own tree by itself.
    """
    lxc_exec(fixture, name,
             'mkdir -p /tmp/www && echo served >/tmp/www/index.html && '
             'httpd -p %d -h /tmp/www </dev/null >/dev/null 2>&1' % port)
    pid = find_task(fixture, name, 'httpd')
    deadline = time.monotonic() + 10
    while not listening(pid, port):
        if time.monotonic() > deadline:
            raise AssertionError('httpd does not listen on %d' % port)
        time.sleep(0.2)
    return pid


def fetch(pid, port, path='/', timeout=10):
    """GET http://127.0.0.1:port/path inside ``pid``'s network namespace.

    The host's Python runs in that namespace only (nsenter -n), its
    loopback brought up first (the test image leaves it down).
    """
    prefix = ['nsenter', '-t', str(pid), '-n']
    subprocess.run(prefix + ['ip', 'link', 'set', 'lo', 'up'], check=True,
                   capture_output=True, timeout=timeout)
    return subprocess.run(
        prefix + [sys.executable, '-c',
                  'import sys, urllib.request; sys.stdout.write(urllib.'
                  'request.urlopen(sys.argv[1], timeout=%d).read().decode())'
                  % timeout, 'http://127.0.0.1:%d%s' % (port, path)],
        check=True, capture_output=True, text=True,
        timeout=timeout + 5).stdout


def inner_pid(pid):
    """The pid of host pid ``pid`` inside its own pid namespace.

    CRIU restores a task with its pid inside the container; its host pid
    changes.
    """
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('NSpid:'):
                return int(line.split()[-1])
    raise AssertionError('no NSpid for %d' % pid)


def dump_logs(fixture, name):
    """The CRIU dump logs LXD kept for the container (one per dump).

    LXD 5.0.2 writes ``<LXD_DIR>/logs/<name>/snapshot_dump_<time>.log``
    for every checkpoint it attempts.
    """
    return sorted(glob.glob(os.path.join(
        os.path.dirname(fixture.endpoint), 'logs', name,
        'snapshot_dump_*.log')))
