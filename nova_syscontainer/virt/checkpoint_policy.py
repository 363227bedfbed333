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

* ``lxc.pty.max = 1`` (``checkpoint_raw_lxc``): LXD 5.0.2 gives a
  container extra ptys CRIU cannot dump.
* ``lxc.apparmor.profile =``, only where the kernel has no AppArmor: LXC
  then applies no profile (the measured need of LXD 5.0.2 + CRIU 4.2 on
  such a host). Where AppArmor is on, the line would replace the daemon's
  confinement of the container, so it is never added there.
* ``security.syscalls.deny`` (``checkpoint_deny_uts_namespace``): see
  :data:`checkpoint_check.DENY_UTS_UNSHARE`.
"""

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


def init_host(endpoint):
    """Read the host once (``ComputeDriver.init_host``) and log the policy."""
    apparmor = host_apparmor(CONF.syscontainer.apparmor,
                             endpoint.startswith('/'))
    _HOST['apparmor'] = apparmor
    for warning in checkpoint_check.confinement_warnings(
            CONF.syscontainer.checkpoint_raw_lxc, apparmor):
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
