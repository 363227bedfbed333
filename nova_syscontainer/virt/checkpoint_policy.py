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
"""What a container needs so that CRIU can checkpoint it, on this host.

Read once at ``ComputeDriver.init_host`` (:func:`init_host`): whether the
kernel of the daemon's host has AppArmor. From it and the options,
:func:`raw_lxc` gives the raw.lxc lines every new container gets, and that
suspend and live migration then require (one list for all three, so a
container this node created always passes this node's checks), and
:func:`config` the other config keys of a checkpointable container.

* ``lxc.pty.max = 1`` (``checkpoint_raw_lxc``): measured on LXD 5.0.2
  (liblxc 5.0.2), it makes liblxc take the console's pty from the host's
  devpts and start PID 1 with /dev/null as stdio, so that no task holds
  the console; without it PID 1 holds a console pty of the container's
  devpts, the dump works and the restore fails ("lxc.console.path
  configured on source host but not target"). The price: only guest
  programs that open /dev/console themselves are on the serial console
  (doc/source/consoles.rst).
* ``lxc.apparmor.profile =``, only where the kernel has no AppArmor: LXC
  then applies no profile (the measured need of LXD 5.0.2 + CRIU 4.2 on
  such a host). Where AppArmor is on, the line would replace the daemon's
  confinement of the container, so it is never added there.
* ``security.syscalls.deny`` (``checkpoint_deny_uts_namespace``): see
  :data:`checkpoint_check.DENY_UTS_UNSHARE`.
"""

from nova.i18n import _
from oslo_log import log as logging

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import checkpoint_check

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

#: 'Y' when the running kernel has AppArmor on; absent without the module.
APPARMOR_ENABLED = '/sys/module/apparmor/parameters/enabled'

#: What :func:`init_host` read ({'apparmor': bool}).
_HOST = {}


def host_apparmor(setting, local, path=APPARMOR_ENABLED):
    """Whether the daemon's host has AppArmor (``[syscontainer] apparmor``).

    ``local``: the daemon runs on this host (a unix-socket endpoint). A
    remote host, or a file that says anything but 'Y', is judged the safe
    way for confinement: a remote host counts as having AppArmor; a
    missing file means the kernel has none.
    """
    if setting == 'enabled':
        return True
    if setting == 'disabled':
        return False
    if not local:
        return True
    try:
        with open(path) as f:
            return f.read().strip().upper().startswith('Y')
    except OSError:
        return False


#: Pool drivers that copy a container's root file system file by file on
#: a live move, with the container frozen for the final pass (LXD 5.0.2:
#: rsync). Measured here: about 10 s of downtime for an idle busybox
#: container on ``dir`` against 0.8 s on btrfs (doc/source/migration.rst).
SLOW_LIVE_POOL_DRIVERS = ('dir',)


def pool_warnings(pool_driver, live_migration):
    """Warnings about a storage pool that makes live migration slow."""
    if live_migration and pool_driver in SLOW_LIVE_POOL_DRIVERS:
        return [_('Storage pool driver %s: a live migration freezes the '
                  'container while its whole root file system is copied '
                  'again (about 10 s of downtime for an idle container '
                  'here, against under 1 s on btrfs). Use a btrfs or zfs '
                  'pool on nodes that take live migrations.') % pool_driver]
    return []


def init_host(endpoint, pool_driver=None):
    """Read the host once (``ComputeDriver.init_host``) and log the policy.

    Also warns when the storage pool makes live migration slow.
    """
    apparmor = host_apparmor(CONF.syscontainer.apparmor,
                             endpoint.startswith('/'))
    _HOST['apparmor'] = apparmor
    warnings = checkpoint_check.confinement_warnings(
        CONF.syscontainer.checkpoint_raw_lxc, apparmor)
    warnings += pool_warnings(pool_driver, (
        CONF.syscontainer.enable_checkpoint and
        CONF.syscontainer.allow_live_migration and
        bool(CONF.syscontainer.migration_endpoint)))
    for warning in warnings:
        LOG.warning(warning)
    if CONF.syscontainer.enable_checkpoint:
        LOG.info('Containers are prepared for CRIU with raw.lxc %(lines)r '
                 'and config %(config)r (host AppArmor: %(aa)s)',
                 {'lines': raw_lxc(), 'config': config(), 'aa': apparmor})
    return apparmor


def apparmor():
    """What :func:`init_host` found (read now if it has not run)."""
    if 'apparmor' not in _HOST:
        _HOST['apparmor'] = host_apparmor(
            CONF.syscontainer.apparmor,
            CONF.syscontainer.endpoint.startswith('/'))
    return _HOST['apparmor']


def raw_lxc():
    """The raw.lxc lines CRIU needs in a container of this host."""
    return checkpoint_check.required_raw_lxc(
        CONF.syscontainer.checkpoint_raw_lxc, apparmor())


def config():
    """Config keys (other than raw.lxc) of a checkpointable container."""
    return checkpoint_check.required_config(
        CONF.syscontainer.checkpoint_deny_uts_namespace)


def create_raw_lxc():
    """:func:`raw_lxc` when enable_checkpoint is set, else nothing."""
    return raw_lxc() if CONF.syscontainer.enable_checkpoint else []


def create_config():
    """:func:`config` when enable_checkpoint is set, else nothing."""
    return config() if CONF.syscontainer.enable_checkpoint else {}
