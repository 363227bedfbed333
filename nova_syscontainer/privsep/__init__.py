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
"""The driver's privileged host operations, behind oslo.privsep.

One context per set of capabilities, as Nova's and os-vif's own, each
with a daemon of its own:

* ``net_admin`` (CAP_NET_ADMIN): the host side of ports
  (:mod:`.linux_net`);
* ``proc_admin`` (CAP_SYS_PTRACE, CAP_KILL): reading other processes'
  ``/proc`` entries for the checkpoint pre-check and ending a stuck CRIU
  dump's ``migratedumpsuccess`` helper (:mod:`.criu_host`);
* ``criu_admin`` (CAP_SYS_ADMIN, CAP_NET_ADMIN): ``criu check``, which
  measured needs both and nothing else (:mod:`.criu_host`).

nova-compute starts a daemon the first time it needs it, with its
section's ``helper_command`` (``[nova_syscontainer_privileged]``,
``[nova_syscontainer_proc]``, ``[nova_syscontainer_criu]``; oslo.privsep's
default: ``sudo privsep-helper``, the same rule a deployment writes for
Nova's own contexts).

When nova-compute runs as root and no helper command is configured,
:func:`start_with_local_helper` starts the daemons with the
``privsep-helper`` of nova-compute's own environment (no sudo needed, and
none is installed on the hosts the tests run on): the privileged work
still happens in the daemon, with only the context's capabilities.
"""

import os
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging
from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

from nova_syscontainer import conf as sc_conf

LOG = logging.getLogger(__name__)

net_admin = priv_context.PrivContext(
    'nova_syscontainer',
    cfg_section=sc_conf.PRIVSEP_GROUP,
    pypath=__name__ + '.net_admin',
    capabilities=[caps.CAP_NET_ADMIN],
)

#: Other processes' /proc (their namespaces and mounts need
#: PTRACE_MODE_READ: CAP_SYS_PTRACE for tasks of another uid or with more
#: capabilities) and SIGTERM to a root helper (CAP_KILL once the daemon
#: runs as another user: ``[nova_syscontainer_proc] user``).
proc_admin = priv_context.PrivContext(
    'nova_syscontainer',
    cfg_section=sc_conf.PROC_PRIVSEP_GROUP,
    pypath=__name__ + '.proc_admin',
    capabilities=[caps.CAP_SYS_PTRACE, caps.CAP_KILL],
)

#: ``criu check`` (CRIU 4.2.1, measured with setpriv's bounding set):
#: without CAP_SYS_ADMIN it refuses to start, without CAP_NET_ADMIN it
#: fails "Can't turn TCP repair mode ON"; with these two: "Looks good."
criu_admin = priv_context.PrivContext(
    'nova_syscontainer',
    cfg_section=sc_conf.CRIU_PRIVSEP_GROUP,
    pypath=__name__ + '.criu_admin',
    capabilities=[caps.CAP_SYS_ADMIN, caps.CAP_NET_ADMIN],
)


def local_helper():
    """The ``privsep-helper`` next to this interpreter, or None."""
    path = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
    return path if os.access(path, os.X_OK) else None


def start_with_local_helper(context):
    """Start ``context``'s daemon without sudo when this process is root.

    Only when the operator configured no ``helper_command`` and the daemon
    is not running yet; it is started at once (the helper command is used
    for the start only). Returns the helper used, or None.
    """
    if (os.geteuid() != 0 or context.conf.helper_command or
            context.channel is not None):
        return None
    helper = local_helper()
    if helper is None:
        return None
    cfg.CONF.set_override('helper_command', helper,
                          group=context.cfg_section)
    try:
        context.start()
    finally:
        cfg.CONF.clear_override('helper_command', group=context.cfg_section)
    return helper


_start_lock = threading.Lock()


def ready(context):
    """Start ``context``'s daemon with the local helper if that applies.

    For the contexts whose first use is not a port plug (``proc_admin``,
    ``criu_admin``): otherwise oslo.privsep starts the daemon itself, with
    the operator's ``helper_command``, at the first call. Returns the
    helper used, or None.
    """
    with _start_lock:
        helper = start_with_local_helper(context)
    if helper:
        LOG.info('privsep daemon of %s started with %s', context.pypath,
                 helper)
    return helper
