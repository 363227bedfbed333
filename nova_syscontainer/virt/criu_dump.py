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
"""The ``criu dump`` of a local container, as ``/proc`` shows it.

While LXD checkpoints a running container, the ``criu dump`` process
ptrace()s the container's init: it is the init's ``TracerPid``. Two parts
of a live move look for it there, on the source host only (the source
daemon reached through its unix socket, the driver running as root):
:func:`nova_syscontainer.virt.criu_processes.release_stuck_dump` ends the
helper that holds a dump stuck, and
:mod:`nova_syscontainer.virt.migration_progress` measures the checkpoint
as it is written; the driver's pre-check of a checkpoint
(:mod:`nova_syscontainer.virt.checkpoint_check`) reads the container's
tasks and their namespaces with :func:`tasks`. Every reader returns an
empty answer for a process that is gone: processes come and go while they
look.
"""

import os


def argv(pid):
    """The command line of ``pid`` as a list ([] if it is gone)."""
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            return [arg.decode(errors='replace')
                    for arg in f.read().split(b'\0') if arg]
    except OSError:
        return []


def parent(pid):
    """The parent pid of ``pid`` (0 if it is gone)."""
    try:
        with open('/proc/%s/stat' % pid) as f:
            return int(f.read().rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def tracer(pid):
    """The pid of the process ptrace()ing ``pid`` (0 if none or gone)."""
    try:
        with open('/proc/%s/status' % pid) as f:
            for line in f:
                if line.startswith('TracerPid:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descends_from(pid, ancestor, depth=6):
    """Whether ``ancestor`` is among the first ``depth`` parents of pid."""
    for _ in range(depth):
        pid = parent(pid)
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def dumping(init_pid):
    """The ``criu dump`` tracing ``init_pid``: (pid, argv), or None."""
    criu = tracer(init_pid)
    if not criu:
        return None
    args = argv(criu)
    if 'dump' not in args:
        return None
    return criu, args


def all_pids():
    """The pids now in ``/proc``."""
    return [int(entry) for entry in os.listdir('/proc') if entry.isdigit()]


#: The namespace links of ``/proc/<pid>/ns`` a task's namespaces are read
#: from (the ``*_for_children`` links are not: CRIU reads these).
NAMESPACES = ('cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts')

#: At most this many tasks are read under one container init: a bound on
#: the walk, far above what a system container runs.
MAX_TASKS = 100000


def comm(pid):
    """The command name of ``pid`` ('' if it is gone)."""
    try:
        with open('/proc/%s/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return ''


def namespaces(pid):
    """{namespace type: identity ('uts:[4026531838]')} of ``pid``.

    Types the kernel lacks, and every type of a process that is gone, are
    left out.
    """
    found = {}
    for ns in NAMESPACES:
        try:
            found[ns] = os.readlink('/proc/%s/ns/%s' % (pid, ns))
        except OSError:
            continue
    return found


def mount_points(pid):
    """The mount points of ``pid``'s mount namespace ([] if it is gone)."""
    try:
        with open('/proc/%s/mountinfo' % pid) as f:
            return [line.split()[4] for line in f if len(line.split()) > 4]
    except OSError:
        return []


def tasks(init_pid):
    """The processes of the tree rooted at ``init_pid``, init first.

    A list of ``{'pid', 'comm', 'namespaces', 'mounts'}`` (host pids), the
    tree CRIU dumps. ``mounts`` (mount points) is read only for the first
    task of each mount namespace other than init's, and is [] otherwise.
    Parents come from every process's ``stat``
    (``/proc/<pid>/task/<tid>/children`` needs CONFIG_PROC_CHILDREN, which
    this project's test kernel lacks). Processes that end during the walk
    are left out.
    """
    kids = {}
    for pid in all_pids():
        kids.setdefault(parent(pid), []).append(pid)
    found = []
    todo = [init_pid]
    seen_mnt = set()
    while todo and len(found) < MAX_TASKS:
        pid = todo.pop(0)
        ns = namespaces(pid)
        if not ns:
            continue
        mounts = []
        if found and ns.get('mnt') not in seen_mnt:
            mounts = mount_points(pid)
        seen_mnt.add(ns.get('mnt'))
        found.append({'pid': pid, 'comm': comm(pid), 'namespaces': ns,
                      'mounts': mounts})
        todo.extend(sorted(kids.get(pid, ())))
    return found
