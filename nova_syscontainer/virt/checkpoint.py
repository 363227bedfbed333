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
"""What the driver does on this host before it asks for a CRIU checkpoint.

Before a suspend or a live migration the container's tasks are read from
this host's ``/proc`` (:func:`nova_syscontainer.virt.criu_dump.tasks`,
from the init pid the daemon reports, run in the ``proc_admin`` privsep
daemon: :func:`criu_processes.container_tasks`) and
judged, here in nova-compute, by :mod:`checkpoint_check`: a task CRIU would
refuse is named before the daemon freezes anything. The tasks can be read
only when the daemon runs on this host (a unix-socket endpoint); with a
remote daemon the check is skipped and the daemon's own refusal stands.
"""

from nova.i18n import _
from oslo_log import log as logging

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint_check
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import criu_processes
from nova_syscontainer.virt import restore_check

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF


def suspendable(client, record):
    """Raise CheckpointRefused unless the container may be suspended.

    Checkpointing must be enabled, the container must carry the raw.lxc
    lines CRIU needs on this host (:func:`checkpoint_policy.raw_lxc`, the
    lines it was created with), and :func:`precheck` must
    find no task CRIU would refuse.
    """
    name = record['name']
    if not CONF.syscontainer.enable_checkpoint:
        raise exception.CheckpointRefused(name=name, reason=_(
            'checkpointing is disabled ([syscontainer] enable_checkpoint)'))
    missing = checkpoint_check.missing_checkpoint_config(
        record, checkpoint_policy.raw_lxc())
    if missing:
        raise exception.CheckpointRefused(name=name, reason=_(
            'the container was created without the raw.lxc lines CRIU '
            'needs (%s); rebuild it with [syscontainer] enable_checkpoint '
            'set') % '; '.join(missing))
    precheck(client, name)


def precheck(client, name):
    """Raise CheckpointRefused if CRIU would refuse to dump ``name``.

    Reads the daemon's state of the container (its init pid) and the
    tasks under that init; on a daemon whose containers have an idmapped
    root filesystem (Incus), also refuses tasks CRIU could dump but not
    restore (restore_check).
    """
    if not client.endpoint.startswith('/'):
        LOG.debug('Daemon %s is not on this host: its checkpoint of %s is '
                  'not pre-checked', client.endpoint, name)
        return
    pid = (client.get_state(name) or {}).get('pid')
    if not pid or pid <= 0:
        return
    try:
        tasks = criu_processes.container_tasks(pid)
    except (ValueError, OSError) as e:
        # The container stopped since its state was read (its pid is no
        # container init any more), or /proc could not be read.
        raise exception.CheckpointRefused(
            name=name, reason=_('its tasks could not be read: %s') % e)
    checkpoint_check.check(name, tasks)
    if client.daemon.kind.idmapped_rootfs:
        found = restore_check.unrestorable(tasks)
        if found:
            raise exception.CheckpointRefused(
                name=name, reason=restore_check.describe(found))
