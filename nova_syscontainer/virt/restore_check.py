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
"""Tasks CRIU would dump but not restore on an idmapped root filesystem.

Incus 6.0.4 gives a container an idmapped root filesystem: its files stay
owned by uid 0 on disk. CRIU 4.2.1 then fails to restore a task whose
working directory lies below a directory that "others" cannot search on
that filesystem, typically root's 0700 home ``/root`` where ``incus exec``
starts commands ("Can't open file root on restore: Permission denied").
The stateful stop has already succeeded by then, so the container is left
stopped with its process state lost (measured; a live migration fails on
the target and the source keeps running). This check refuses before the
dump instead (:attr:`daemon_kind.Kind.idmapped_rootfs`).

The working directories are read from the host's ``/proc``, as root, for
the tasks :func:`criu_dump.tasks` lists (the daemon on this host).
"""

import os
import stat

from nova.i18n import _

from nova_syscontainer.virt import checkpoint_check


def blocked_dir(root, path, lstat=os.lstat, stat_root=os.stat):
    """The first directory of ``path`` others cannot search, or None.

    Pure but for ``lstat`` and ``stat_root``: ``root`` is the container's
    root as the host sees it (``/proc/<init>/root``, a link to follow),
    ``path`` a directory inside it. Only directories on the root
    filesystem itself (its device) are judged: a tmpfs or another mount
    belongs to the container.
    """
    try:
        root_dev = stat_root(root).st_dev
    except OSError:
        return None
    current = ''
    for part in [p for p in path.split('/') if p]:
        current += '/' + part
        try:
            st = lstat(root + current)
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode) or st.st_dev != root_dev:
            return None
        if not st.st_mode & stat.S_IXOTH:
            return current
    return None


def unrestorable(tasks, readlink=os.readlink, lstat=os.lstat,
                 stat_root=os.stat):
    """(pid, comm, directory) of the tasks CRIU could not restore.

    ``tasks`` is :func:`criu_dump.tasks`'s list, init first.
    """
    if not tasks:
        return []
    root = '/proc/%d/root' % tasks[0]['pid']
    found = []
    for task in tasks:
        try:
            cwd = readlink('/proc/%d/cwd' % task['pid'])
        except OSError:
            continue
        blocked = blocked_dir(root, cwd, lstat, stat_root)
        if blocked:
            found.append((task['pid'], task['comm'], cwd))
    return found


def describe(found):
    """Why, naming the tasks of :func:`unrestorable`."""
    text = checkpoint_check.name_some(
        found, lambda pid, comm, cwd: '%s (pid %d) in %s' % (
            comm or '?', pid, cwd))
    return (_('tasks CRIU could dump but not restore: %s (a working '
              'directory others cannot enter on the daemon\'s idmapped root '
              'filesystem, Incus; the container would be left stopped, its '
              'state lost)') % text)
