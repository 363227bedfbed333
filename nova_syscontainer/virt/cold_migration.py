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
"""The cold path: a stopped container copied to another node's daemon.

Resize and cold migration to another host (``migrate_disk_and_power_off``)
copy the stopped container with :func:`daemon_move.move`; the source copy
stays until Nova confirms or reverts. The live path is
:mod:`live_migration`.
"""

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import container
from nova_syscontainer.virt import daemon_move
from nova_syscontainer.virt import leftovers
from nova_syscontainer.virt import peers

CONF = sc_conf.CONF


def copy_stopped(context, source, source_endpoint, instance, dest):
    """Copy the instance's stopped container to ``dest``'s daemon.

    The source copy stays until the resize or cold migration is confirmed
    (or serves again if it is reverted). A copy this instance left on the
    target earlier is removed first.
    """
    target = peers.sending_target(context, source_endpoint, dest)
    leftovers.clear_leftover(target, instance)
    return daemon_move.move(source, target, container.name(instance),
                            source_endpoint, live=False,
                            timeout=CONF.syscontainer.migration_timeout,
                            keep_source=True)
