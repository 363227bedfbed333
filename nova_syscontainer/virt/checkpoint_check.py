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
"""What CRIU will refuse to dump, found before the daemon is asked (pure).

CRIU dumps a container's tasks only in the namespaces of its init, except
mount and network namespaces, which it can dump nested (``CLONE_SUBNS`` in
CRIU's ``criu/namespaces.c``). A task with a UTS, IPC, PID, user, cgroup
or time namespace of its own makes the dump fail ("Can't dump nested uts
namespace for <pid>", CRIU 4.1 and 4.2), after LXD 5.0.2 has frozen the
container and, on a live migration, after the target has begun to create
it. A stock Debian 12 guest has one such task: systemd-logind, whose
``ProtectHostname=yes`` gives it a UTS namespace of its own.

The tasks are read from the host's ``/proc`` by
:func:`nova_syscontainer.virt.criu_dump.tasks`; this module only judges
them.
"""

from nova.i18n import _

from nova_syscontainer import exception

#: Namespace types CRIU cannot dump when a task's differs from init's.
UNDUMPABLE_NESTED = ('cgroup', 'ipc', 'pid', 'time', 'user', 'uts')

#: At most this many tasks are named in a refusal.
MAX_NAMED = 5

#: raw.lxc line: LXC applies no AppArmor profile to the container. Needed
#: for CRIU where the kernel has no AppArmor; where it has, the line would
#: replace the daemon's own confinement of the container.
EMPTY_APPARMOR_PROFILE = 'lxc.apparmor.profile ='

#: The config key LXD 5.0.2 appends raw LXC seccomp lines from.
SYSCALLS_DENY_KEY = 'security.syscalls.deny'
#: unshare(2) with CLONE_NEWUTS (0x04000000) in its flags fails with EPERM
#: (argument 0 masked with the flag equals the flag). systemd 252 then
#: skips ProtectHostname= with a warning; a bare "unshare" line would
#: kill the caller with SIGSYS instead. Only unshare: a task that gets a
#: UTS namespace through clone() is still refused by :func:`check`.
DENY_UTS_UNSHARE = 'unshare errno 1 [0,67108864,SCMP_CMP_MASKED_EQ,67108864]'


def fold(line):
    """A raw.lxc line with its white space folded, for comparisons."""
    return ' '.join(line.split())


def required_raw_lxc(configured, apparmor):
    """The raw.lxc lines a checkpointable container needs.

    ``configured``: ``[syscontainer] checkpoint_raw_lxc``; ``apparmor``:
    whether the daemon's host has AppArmor. Only without it is
    :data:`EMPTY_APPARMOR_PROFILE` added.
    """
    lines = list(configured)
    if not apparmor and fold(EMPTY_APPARMOR_PROFILE) not in {
            fold(line) for line in lines}:
        lines.append(EMPTY_APPARMOR_PROFILE)
    return lines


def confinement_warnings(configured, apparmor):
    """Warnings about configured lines that drop AppArmor confinement."""
    if apparmor and any(fold(line).startswith('lxc.apparmor.profile')
                        for line in configured):
        return [_('[syscontainer] checkpoint_raw_lxc sets '
                  'lxc.apparmor.profile on a host with AppArmor: every new '
                  'container loses the daemon\'s AppArmor confinement. '
                  'Remove the line unless that is meant.')]
    return []


def required_config(deny_uts):
    """Config keys other than raw.lxc a checkpointable container gets."""
    if deny_uts:
        return {SYSCALLS_DENY_KEY: DENY_UTS_UNSHARE}
    return {}


def nested_namespaces(tasks):
    """The tasks CRIU would refuse, as (pid, comm, [namespace types]).

    ``tasks`` is :func:`criu_dump.tasks`'s list, the container's init
    first. A namespace type init's entry lacks (the kernel has none) is
    not judged.
    """
    if not tasks:
        return []
    init = tasks[0]['namespaces']
    found = []
    for task in tasks[1:]:
        own = [ns for ns in UNDUMPABLE_NESTED
               if ns in init and task['namespaces'].get(ns, init[ns]) !=
               init[ns]]
        if own:
            found.append((task['pid'], task['comm'], own))
    return found


#: Mount points in a nested mount namespace that CRIU 4.2.1 dumps but
#: cannot restore. systemd (252, Debian 12) bind-mounts its propagation
#: tunnel /run/systemd/propagate/<unit> at /run/systemd/incoming in every
#: unit with a mount namespace of its own (systemd-udevd, -networkd,
#: -logind in a stock guest); CRIU's restore then fails with "mnt-v2:
#: Can't copy sharing from ...[/systemd/propagate/systemd-udevd.service]
#: to ...[/systemd/propagate/systemd-logind.service]" and with
#: --mntns-compat-mode on LXD's /dev/net/tun file bind mount ("Can't
#: bind-mount at .../dev/net/tun: Not a directory"). A failed restore on
#: a live migration leaves the source frozen (LXD 5.0.2), so the dump is
#: refused before it starts.
UNRESTORABLE_MOUNTS = {
    '/run/systemd/incoming': _('systemd\'s mount propagation tunnel '
                               '(/run/systemd/incoming)'),
}


def unrestorable_mounts(tasks):
    """Tasks with a mount CRIU cannot restore: (pid, comm, [reasons])."""
    found = []
    for task in tasks[1:]:
        reasons = [reason for point, reason in UNRESTORABLE_MOUNTS.items()
                   if point in (task.get('mounts') or ())]
        if reasons:
            found.append((task['pid'], task['comm'], reasons))
    return found


def name_some(found, name, sep='; '):
    """The first MAX_NAMED of ``found``, each as ``name(*item)``, joined.

    "and N more" follows when there were more: a refusal stays short.
    """
    text = sep.join(name(*item) for item in found[:MAX_NAMED])
    if len(found) > MAX_NAMED:
        text += _(' and %d more') % (len(found) - MAX_NAMED)
    return text


def describe_mounts(found):
    """A sentence naming the tasks of :func:`unrestorable_mounts`.

    What cannot be restored comes first: Nova keeps only the first 255
    characters of an action event's details.
    """
    text = name_some(found, lambda pid, comm, _reasons: '%(comm)s (pid '
                     '%(pid)d)' % {'comm': comm or '?', 'pid': pid}, ', ')
    reasons = sorted({r for _pid, _comm, rs in found for r in rs})
    return (_('CRIU 4.2 dumps but cannot restore %(r)s, held by the mount '
              'namespace of %(t)s') % {'t': text, 'r': '; '.join(reasons)})


def describe(nested):
    """A sentence naming the tasks of :func:`nested_namespaces`."""
    text = name_some(nested, lambda pid, comm, ns: (
        '%(comm)s (pid %(pid)d): %(ns)s' % {
            'comm': comm or '?', 'pid': pid, 'ns': ', '.join(ns)}))
    return (_('CRIU cannot dump a task in a namespace of its own: %s '
              '(the container init\'s namespace is the only one CRIU '
              'checkpoints for these types)') % text)


def check(name, tasks):
    """Raise CheckpointRefused if CRIU would refuse to dump ``tasks``.

    ``name`` is the container's. With no tasks at all (the init ended, or
    no running container) there is nothing to judge and nothing raised:
    the daemon then gives its own answer.
    """
    nested = nested_namespaces(tasks)
    if nested:
        raise exception.CheckpointRefused(name=name,
                                          reason=describe(nested))
    mounts = unrestorable_mounts(tasks)
    if mounts:
        raise exception.CheckpointRefused(name=name,
                                          reason=describe_mounts(mounts))


def _raw_lxc_lines(record):
    raw = record.get('config', {}).get('raw.lxc', '')
    return {' '.join(line.split()) for line in raw.splitlines()
            if line.strip()}


def missing_checkpoint_config(record, required_lines):
    """The required raw.lxc lines the container's config lacks.

    Lines are compared with white space folded, so ``a=1`` and ``a = 1``
    are different but ``a  = 1`` and ``a = 1`` are not.
    """
    have = _raw_lxc_lines(record)
    return [line for line in required_lines
            if ' '.join(line.split()) not in have]
