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
"""What differs between the daemons this driver serves: LXD 5.0, Incus 6.0.

The one place that knows them (pure: no I/O). The kind is read from the
daemon itself (``GET /1.0`` ``environment.server``: "lxd" or "incus") when
nova-compute starts, so that an operator cannot get it wrong;
``[syscontainer] daemon_kind`` only asserts it (or names it for a daemon
that does not say).

Measured on Debian 12 (LXD 5.0.2 from bookworm, Incus 6.0.4 from
bookworm-backports, both on liblxc 5.0.2), through pylxd 2.4.2:

* the REST API is the same for everything the driver calls: ``/1.0``,
  instances, state, files, exec (pylxd's websockets work against Incus),
  console, images, operations, storage pools, profiles, projects,
  resources, and the pull-mode migration (``POST /1.0/instances/<name>``
  with ``migration: true``). pylxd's client connects to either socket;
  nothing in pylxd needs replacing for Incus beyond what the client layer
  already does for LXD (it avoids pylxd's models for migration and image
  upload on both);
* Incus answers with ``X-Incus-*`` file headers and still honours the
  ``X-LXD-*`` ones this driver sends (a file written with
  ``X-LXD-mode: 0640`` is 0640);
* Incus refuses a stateful stop (and a live migration) of a container
  without ``migration.stateful=true`` ("Stateful stop requires the
  instance to have migration.stateful be set to true"); LXD 5.0 has no
  such gate for containers. :attr:`Kind.checkpoint_config` holds it;
* the raw.lxc lines CRIU needs are the same on both (both run liblxc);
* the console log: LXD 5.0.2 answers a read that finds no new bytes with
  an error "open : no such file or directory" (HTTP 500), always so after
  a CRIU restore; Incus 6.0.4 answers 200 with the bytes (or none) and
  still gives the log after a restore;
* the client program and its trust command: ``lxc config trust add FILE``
  (LXD 5.0) and ``incus config trust add-certificate FILE`` (Incus 6.0);
* Incus gives containers an idmapped root filesystem (files stay uid 0 on
  disk): the host's root gets EOVERFLOW creating files through
  /proc/<pid>/root, and CRIU 4.2.1 fails to restore a task whose working
  directory is the 0700 /root ("Can't open file root on restore:
  Permission denied"; the container is left stopped): restore_check
  refuses such tasks before the dump;
* ``GET /1.0/operations/<id>/wait?timeout=N``: LXD 5.0.2 answers 200
  and the operation, whether it failed or still runs after N s; Incus
  6.0.4 answers an error in both cases (the operation's error, or
  "context deadline exceeded"). Taken for a failure, that error rolled
  back every live move longer than the client's 30 s poll (the 256 MiB
  case); the client now reads the operation after such an answer
  (``KindCalls._wait_once``);
* after a live move the source settles for about a second before it can
  be deleted: LXD 5.0.2 says "busy running a stop operation", Incus 6.0.4
  first "Instance is running" (its record says Running again while its
  stop hook runs), then busy; :func:`daemon_move.move` retries that DELETE
  every 0.1 s;
* image files: both import the same unified tarball (metadata.yaml +
  rootfs) and the split (metadata + squashfs) form.

A container cannot move between an LXD and an Incus daemon through this
driver: :func:`migration_problem` refuses it at the pre-check.
"""

import dataclasses

LXD = 'lxd'
INCUS = 'incus'
#: ``[syscontainer] daemon_kind`` value that reads the kind from the daemon.
AUTO = 'auto'
CHOICES = (AUTO, LXD, INCUS)


@dataclasses.dataclass(frozen=True)
class Kind:
    """One daemon family and what the driver must do differently for it."""

    #: ``environment.server`` in ``GET /1.0``.
    name: str
    #: As people write it.
    label: str
    #: Where its packages put the unix socket.
    default_socket: str
    #: How an operator makes the daemon trust a certificate file.
    trust_command: str
    #: Config keys a container must carry to be checkpointed (stateful
    #: stop, live migration), beside the raw.lxc lines.
    checkpoint_config: tuple = ()
    #: The error text with which the daemon says "no console bytes".
    console_no_data_error: str = ''
    #: Containers get an idmapped root filesystem (files uid 0 on disk):
    #: CRIU cannot restore some tasks (:mod:`restore_check`).
    idmapped_rootfs: bool = False


KINDS = {
    LXD: Kind(
        name=LXD, label='LXD',
        default_socket='/var/lib/lxd/unix.socket',
        trust_command='lxc config trust add <client.crt>',
        console_no_data_error='open : no such file or directory'),
    INCUS: Kind(
        name=INCUS, label='Incus',
        default_socket='/var/lib/incus/unix.socket',
        trust_command='incus config trust add-certificate <client.crt>',
        checkpoint_config=(('migration.stateful', 'true'),),
        idmapped_rootfs=True),
}


@dataclasses.dataclass(frozen=True)
class Daemon:
    """A daemon as ``GET /1.0`` shows it: its kind and version."""

    kind: Kind
    version: str

    @property
    def stat(self):
        """What a compute node publishes of it ("incus 6.0.4")."""
        return '%s %s' % (self.kind.name, self.version)

    def __str__(self):
        return '%s %s' % (self.kind.label, self.version)


class UnknownDaemon(ValueError):
    """The daemon's kind cannot be told, or is not the one configured."""


def identify(server_info, expected=AUTO):
    """The :class:`Daemon` behind a ``GET /1.0`` answer.

    :param expected: ``[syscontainer] daemon_kind``; ``auto`` trusts the
        daemon; another value must match what the daemon reports, and
        names the kind of a daemon that reports none.
    :raises UnknownDaemon: with the reason.
    """
    env = server_info.get('environment') or {}
    server = (env.get('server') or '').lower()
    version = env.get('server_version') or 'unknown'
    if expected not in CHOICES:
        raise UnknownDaemon('daemon_kind must be one of %s, not %r' %
                            (', '.join(CHOICES), expected))
    if not server:
        if expected == AUTO:
            raise UnknownDaemon(
                'the daemon does not say what it is (no environment.server '
                'in GET /1.0); set [syscontainer] daemon_kind')
        return Daemon(KINDS[expected], version)
    if server not in KINDS:
        raise UnknownDaemon('the daemon is %r, neither LXD nor Incus' %
                            server)
    if expected != AUTO and server != expected:
        raise UnknownDaemon(
            'the daemon is %s %s but [syscontainer] daemon_kind says %s' %
            (KINDS[server].label, version, KINDS[expected].label))
    return Daemon(KINDS[server], version)


def instance_config(kind, config):
    """A container's config with the keys ``kind`` needs for CRIU.

    Added only where the config carries raw.lxc lines (the driver writes
    them when checkpointing is enabled); keys already set are kept.
    """
    if not kind.checkpoint_config or 'raw.lxc' not in config:
        return config
    out = dict(config)
    for key, value in kind.checkpoint_config:
        out.setdefault(key, value)
    return out


def console_no_data(reason):
    """Whether a console-log read error means "no new bytes" (pure).

    Only LXD 5.0 answers so; its marker is never Incus's answer, so the
    kind need not be known (no ``GET /1.0`` for it).
    """
    return any(kind.console_no_data_error and
               kind.console_no_data_error in (reason or '')
               for kind in KINDS.values())


def checkpoint_config_missing(kind, config):
    """The checkpoint keys of ``kind`` that ``config`` lacks (pure)."""
    return ['%s=%s' % (key, value) for key, value in kind.checkpoint_config
            if str(config.get(key, '')).lower() != value]


def migration_problem(own, peer_stat):
    """Why a container cannot move between this daemon and a peer, or None.

    :param own: this node's :class:`Daemon`.
    :param peer_stat: the peer node's published :attr:`Daemon.stat`
        ("lxd 5.0.2"); a peer that publishes none runs a driver older than
        this check, whose daemon was always LXD.
    """
    peer_kind = (peer_stat or LXD).split()[0].lower()
    if peer_kind == own.kind.name:
        return None
    peer = KINDS.get(peer_kind)
    peer_label = peer.label if peer else peer_kind
    return ('the other node runs %s (%s) and this one %s: this driver '
            'moves containers only between daemons of one kind (%s and %s '
            'have diverged since the fork: instance config keys such as '
            'migration.stateful, API extensions; a move across them is not '
            'supported)' % (peer_label, peer_stat or 'no daemon kind '
                            'published', own, peer_label, own.kind.label))


#: The compute-node stat holding :attr:`Daemon.stat`.
STAT = 'syscontainer_daemon'
