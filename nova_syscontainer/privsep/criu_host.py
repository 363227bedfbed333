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
"""Privileged host calls around CRIU: read tasks, end a helper, check CRIU.

Three entry points, each taking plain values only and checking them
inside the daemon, so that neither daemon becomes a way to read any
process, signal any process or run any program:

* :func:`container_tasks` (``proc_admin``): the task tree under a
  container's init, for the checkpoint pre-check. The pid must be a
  container init: its parent is liblxc's ``[lxc monitor]``.
* :func:`end_dump_helper` (``proc_admin``): SIGTERM to a pid only if it
  is a ``migratedumpsuccess`` helper run under a ``criu dump``; the pid is
  held through a pidfd while it is checked, so a reused pid is never hit.
* :func:`criu_check` (``criu_admin``): ``<criu> check``, where the program
  is named ``criu`` and it and every directory above it belong to root
  and are writable by root only (a sticky directory such as /tmp passes:
  no one else can replace root's entries in it). As root, a program the
  daemon runs would get root's whole capability set back at exec (the
  kernel's rule for uid 0, whatever the daemon holds); when ``setpriv``
  (util-linux) is there, CRIU is run through it with the bounding set cut
  to CAP_SYS_ADMIN and CAP_NET_ADMIN.

What these read is what :mod:`nova_syscontainer.virt.criu_dump` reads;
the pure judgements (:mod:`~nova_syscontainer.virt.checkpoint_check`,
:mod:`~nova_syscontainer.virt.restore_check`, ``criu_verdict``) stay in
nova-compute.
"""

import os
import shutil
import signal
import stat
import subprocess

from nova_syscontainer import privsep
from nova_syscontainer.virt import criu_dump

#: How a liblxc monitor (LXD 5.0.2, Incus 6.0.4) names itself.
LXC_MONITOR = '[lxc monitor]'
HELPER_VERB = 'migratedumpsuccess'
#: Seconds ``criu check`` may take (it takes about 0.1 s).
CRIU_CHECK_TIMEOUT = 30
#: setpriv's bounding set for CRIU: what ``criu check`` measured needs.
CRIU_CAPS = '-all,+sys_admin,+net_admin'


def _pid(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError('not a process id: %r' % (value,))
    return value


def _is_container_init(pid):
    monitor = criu_dump.argv(criu_dump.parent(pid))
    return bool(monitor) and monitor[0].startswith(LXC_MONITOR)


@privsep.proc_admin.entrypoint
def container_tasks(init_pid):
    """:func:`criu_dump.tasks` of a container's init, or ValueError.

    ValueError when ``init_pid`` is no process id or not a container's
    init (gone, or its parent is not an ``[lxc monitor]``).
    """
    _pid(init_pid)
    if not _is_container_init(init_pid):
        raise ValueError('process %d is not a container init' % init_pid)
    return criu_dump.tasks(init_pid)


def _under_criu_dump(pid):
    """Whether one of pid's first six parents is a ``criu dump``."""
    for _ in range(6):
        pid = criu_dump.parent(pid)
        if pid <= 1:
            return False
        args = criu_dump.argv(pid)
        if 'dump' in args and any(os.path.basename(arg) == 'criu'
                                  for arg in args):
            return True
    return False


@privsep.proc_admin.entrypoint
def end_dump_helper(pid):
    """SIGTERM ``pid`` if it is a CRIU dump's ``migratedumpsuccess`` helper.

    Returns True when signalled, False when the process is gone or is not
    such a helper (nothing is signalled then).
    """
    _pid(pid)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        # Checked after the pidfd is open: if the pid was reused, these
        # read the new process, which fails them, or the signal below
        # goes to the process just checked.
        args = criu_dump.argv(pid)
        if (len(args) < 2 or args[1] != HELPER_VERB or
                not _under_criu_dump(pid)):
            return False
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True
    finally:
        os.close(pidfd)


def _owned_by_root(path):
    """Raise ValueError unless root owns ``path`` and only root writes it.

    Every directory from ``path`` up to ``/`` is checked too; a sticky
    directory may be writable by others.
    """
    while True:
        st = os.stat(path)
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_uid != 0 or (writable and not sticky):
            raise ValueError('%s is not owned and writable by root only'
                             % path)
        if path == '/':
            return
        path = os.path.dirname(path)


def _trusted_criu(path):
    """The absolute, real path of the CRIU program ``path`` names."""
    if not isinstance(path, str) or os.path.basename(path) != 'criu':
        raise ValueError('not a CRIU program: %r' % (path,))
    found = shutil.which(path)
    if found is None:
        raise FileNotFoundError('no program %s' % path)
    found = os.path.abspath(found)
    _owned_by_root(found)
    return found


@privsep.criu_admin.entrypoint
def criu_check(path):
    """Run ``<path> check``: (exit status, output), or an OSError.

    TimeoutError when it does not end within CRIU_CHECK_TIMEOUT seconds;
    FileNotFoundError or ValueError when ``path`` is not a CRIU program
    root installed (see the module's notes).
    """
    program = _trusted_criu(path)
    cmd = [program, 'check']
    setpriv = shutil.which('setpriv')
    if os.geteuid() == 0 and setpriv:
        cmd = [setpriv, '--bounding-set=' + CRIU_CAPS, '--inh-caps=-all',
               '--'] + cmd
    try:
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=CRIU_CHECK_TIMEOUT,
            check=False)
    except subprocess.TimeoutExpired:
        raise TimeoutError('"%s check" did not end within %d s'
                           % (path, CRIU_CHECK_TIMEOUT))
    return result.returncode, result.stdout.decode(errors='replace')
