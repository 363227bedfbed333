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
"""The CRIU processes of this host: the one seam to their privsep daemons.

Everything nova-compute does to a CRIU process on its own host goes
through here and, for what needs privileges, through the entry points of
:mod:`nova_syscontainer.privsep.criu_host`: running ``criu check`` (the
live-migration pre-checks), reading the tasks under a container's init
(the pre-check of a checkpoint, :mod:`checkpoint`) and ending the helper
of a ``criu dump`` LXD left stuck (the roll-back of a failed move, and of
one a dead nova-compute cut). Finding those processes in ``/proc`` is
:mod:`criu_dump`'s; judging a container's tasks is
:mod:`checkpoint_check`'s and :mod:`restore_check`'s.
"""

from nova.i18n import _
from oslo_log import log as logging

from nova_syscontainer import privsep
from nova_syscontainer.privsep import criu_host
from nova_syscontainer.virt import criu_dump

LOG = logging.getLogger(__name__)

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


def container_tasks(init_pid):
    """The tasks under a container's init, as CRIU would dump them.

    Read in the ``proc_admin`` privsep daemon
    (:func:`nova_syscontainer.privsep.criu_host.container_tasks`, the list
    of :func:`criu_dump.tasks`). Raises ValueError when ``init_pid`` is no
    container init (any more), OSError when ``/proc`` cannot be read.
    """
    privsep.ready(privsep.proc_admin)
    return criu_host.container_tasks(init_pid)


def release_stuck_dump(init_pid):
    """End the ``lxd migratedumpsuccess`` helpers holding a CRIU dump.

    Local to the source host. ``init_pid`` is the host pid of the
    container's init; its tracer is the ``criu dump`` process, whose
    action script runs the helper(s). Ending them with SIGTERM makes CRIU
    abort the dump and resume the tasks with their state intact. The
    helpers are found here (``/proc``'s cmdline and stat are world
    readable) and signalled by the ``proc_admin`` privsep daemon, which
    checks each pid is such a helper again
    (:func:`nova_syscontainer.privsep.criu_host.end_dump_helper`). Returns
    the pids signalled (none when no dump is tracing the container).
    """
    dump = criu_dump.dumping(init_pid)
    if dump is None:
        return []
    criu = dump[0]
    released = []
    for pid in criu_dump.all_pids():
        argv = criu_dump.argv(pid)
        if (len(argv) > 1 and argv[1] == 'migratedumpsuccess' and
                criu_dump.descends_from(pid, criu)):
            privsep.ready(privsep.proc_admin)
            try:
                if criu_host.end_dump_helper(pid):
                    released.append(pid)
            except (OSError, ValueError) as e:
                LOG.warning('Could not end CRIU helper %d: %s', pid, e)
    return released
