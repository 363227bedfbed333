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

One context per set of capabilities, as Nova's and os-vif's own: the
calls decorated with ``net_admin.entrypoint`` run in a privsep daemon that
holds CAP_NET_ADMIN and nothing else. nova-compute starts that daemon the
first time it needs it, with ``[nova_syscontainer_privileged]
helper_command`` (oslo.privsep's default: ``sudo privsep-helper``, the same
rule a deployment writes for Nova's own contexts).

When nova-compute runs as root and no helper command is configured,
:func:`start_with_local_helper` starts the daemons with the
``privsep-helper`` of nova-compute's own environment (no sudo needed, and
none is installed on the hosts the tests run on): the privileged work
still happens in the daemon, with only the context's capabilities.
"""

import os
import sys

from oslo_config import cfg
from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

from nova_syscontainer import conf as sc_conf

net_admin = priv_context.PrivContext(
    'nova_syscontainer',
    cfg_section=sc_conf.PRIVSEP_GROUP,
    pypath=__name__ + '.net_admin',
    capabilities=[caps.CAP_NET_ADMIN],
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
