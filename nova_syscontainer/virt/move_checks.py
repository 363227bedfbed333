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
"""What a move between two daemons requires, checked before anything moves.

The functions here are pure (the records of the container, its profiles
and the target's instances in, the problems out), but for
:func:`check_target`, which only reads both daemons to feed them. The move
itself and its roll-back are in :mod:`daemon_move`.
"""

import json

from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint_check
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import client as daemon_client

_RUNNING = daemon_client.RUNNING
_STOPPED = daemon_client.STOPPED


def root_disk_pool(devices):
    """The pool of the root disk (a disk at path ``/``), or None."""
    for device in (devices or {}).values():
        if device.get('type') == 'disk' and device.get('path') == '/':
            return device.get('pool')
    return None


def expanded_root_pool(devices, profiles):
    """The pool a daemon puts an instance's root disk on.

    :param devices: the instance's own devices, which win.
    :param profiles: the records (with ``devices``) of its profiles in
        order; a later profile overrides an earlier one.
    LXD silently uses this pool even when the instance asked for one the
    daemon lacks, which is why the pre-check computes it.
    """
    own = root_disk_pool(devices)
    if own is not None:
        return own
    pool = None
    for profile in profiles:
        pool = root_disk_pool(profile.get('devices')) or pool
    return pool


def _effective_config(record):
    return record.get('expanded_config') or record.get('config') or {}


def state_problems(record, live):
    """Why the container's power state does not fit the move (pure)."""
    status = record.get('status')
    if live and status != _RUNNING:
        return ['a live move needs it Running, it is %s' % status]
    if not live and status != _STOPPED:
        return ['a cold move needs it Stopped, it is %s' % status]
    return []


def record_problems(record, live, required_raw_lxc):
    """Why the container itself cannot be moved this way (pure)."""
    problems = state_problems(record, live)
    config = _effective_config(record)
    if live:
        missing = checkpoint_check.missing_checkpoint_config(
            {'config': config}, required_raw_lxc)
        if missing:
            problems.append('its raw.lxc lacks the checkpoint lines %s' %
                            ', '.join(repr(line) for line in missing))
        if config.get('security.idmap.isolated', '').lower() == 'true':
            problems.append('security.idmap.isolated gives it a uid range '
                            'of its own, which CRIU cannot restore on '
                            'another daemon')
    return problems


def _idmap(config):
    """The uid/gid map in a container's config, comparable; None if none."""
    for key in ('volatile.idmap.current', 'volatile.idmap.next'):
        try:
            entries = json.loads(config.get(key) or '[]')
        except ValueError:
            continue
        if entries:
            return frozenset(tuple(sorted(entry.items()))
                             for entry in entries)
    return None


def daemon_idmap(records):
    """The map a daemon gives containers without an isolated idmap.

    LXD 5.0.2 does not publish it; the containers it already runs show it.
    None when none of ``records`` (the daemon's instances) tells.
    """
    for record in records:
        config = _effective_config(record)
        if config.get('security.idmap.isolated', '').lower() == 'true':
            continue
        found = _idmap(config)
        if found is not None:
            return found
    return None


def idmap_problem(record, target_records):
    """Why the target would map the container's uids otherwise, or None.

    CRIU restores the processes with the uids they have; a target daemon
    whose map differs would leave them with the source's host uids.
    Unknown on either side (a target without containers) is no problem.
    """
    ours = _idmap(_effective_config(record))
    theirs = daemon_idmap(target_records)
    if ours is None or theirs is None or ours == theirs:
        return None
    return ('the target daemon maps uids/gids differently (%s, here %s): '
            'the restored processes would keep the source\'s host uids; '
            'give both daemons the same /etc/subuid and /etc/subgid range' %
            (_describe_idmap(theirs), _describe_idmap(ours)))


def _describe_idmap(entries):
    parts = []
    for entry in sorted(entries):
        e = dict(entry)
        kind = '/'.join(k for k, flag in (('uid', e.get('Isuid')),
                                          ('gid', e.get('Isgid'))) if flag)
        parts.append('%s %s->%s+%s' % (
            kind, e.get('Nsid'), e.get('Hostid'), e.get('Maprange')))
    return ', '.join(parts)


def unsuitable(name, target, reasons):
    raise exception.MigrationTargetUnsuitable(
        name=name, target=target.endpoint, reason='; '.join(reasons))


def check_target(source, target, record, live=None):
    """Raise MigrationTargetUnsuitable unless ``record`` can move there.

    Only reads, on both daemons; nothing is sent before it passes:

    * source and target are different daemons;
    * the container is Running for a live move (the default when it is
      Running), Stopped for a cold one; a live move also needs the
      ``checkpoint_raw_lxc`` lines and no ``security.idmap.isolated``;
    * the target knows the architecture, every profile, and the root disk
      would land on a pool of the same name (LXD would silently use the
      profile's pool otherwise), and has no instance of that name;
    * for a live move, the target's containers show the same uid/gid map
      as the container's own (unknown when the target runs none).
    """
    name = record['name']
    if live is None:
        live = record.get('status') == _RUNNING
    problems = record_problems(record, live, checkpoint_policy.raw_lxc())
    env = target.server_info().get('environment') or {}
    src_env = source.server_info().get('environment') or {}
    fingerprint = env.get('certificate_fingerprint')
    if fingerprint and fingerprint == src_env.get('certificate_fingerprint'):
        problems.append('it is the same daemon as the source')
    arch = record.get('architecture')
    if env.get('architectures') and arch not in env['architectures']:
        problems.append('the target does not run %s' % arch)
    profiles, missing = [], []
    for profile in record.get('profiles') or []:
        rec = target.get_profile(profile)
        if rec is None:
            missing.append(profile)
        else:
            profiles.append(rec)
    if missing:
        problems.append('the target lacks the profile(s) %s' %
                        ', '.join(missing))
    wanted = root_disk_pool(record.get('expanded_devices') or
                            record.get('devices'))
    if wanted is None:
        problems.append('it has no root disk')
    elif not target.pool_exists(wanted):
        problems.append('the target lacks the storage pool %s' % wanted)
    elif not missing:
        landing = expanded_root_pool(record.get('devices'), profiles)
        if landing != wanted:
            problems.append('its root disk would land on pool %s of the '
                            'target, not %s' % (landing, wanted))
    if target.instance_exists(name):
        problems.append('the target already has an instance of that name')
    if live:
        idmap = idmap_problem(record, target.list_instances())
        if idmap:
            problems.append(idmap)
    if problems:
        unsuitable(name, target, problems)
