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
"""A container's console log, kept by the driver across reads and moves.

LXD 5.0.2 does not keep it for us (measured, see
:meth:`nova_syscontainer.virt.client.DaemonClient.console_log`): while a
container runs, a read returns only the bytes written since the previous
read, and nothing at all after a CRIU restore. So the driver keeps what it
read, in the container's own config (:data:`KEY`, base64, its newest
``[syscontainer] console_log_keep_bytes``): that key travels with the
container on a live or cold migration (every ``user.*`` key is copied),
survives a compute restart and goes with the container when it is
deleted.

What is kept is read again just before every CRIU checkpoint (suspend, live
migration), so the boot output before a checkpoint is still there after
the restore. What a restored container writes to its console is lost:
LXD 5.0.2's restored ``/dev/console`` is a pty whose master the restore
helper holds without feeding liblxc's ring buffer.

The first part is pure (:func:`merged`, :func:`decode`, :func:`encode`);
:func:`read` and :func:`keep` make the daemon calls, through the client.
"""

import base64
import binascii

from oslo_log import log as logging

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

#: The config key holding what the driver kept of the console log.
KEY = 'user.nova_syscontainer.console_log'


def decode(value):
    """The bytes kept in :data:`KEY`'s value (b'' if none or unreadable)."""
    if not value:
        return b''
    try:
        return base64.b64decode(value.encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return b''


def encode(data):
    return base64.b64encode(data).decode('ascii')


def merged(kept, fresh, running, cap):
    """The whole log from what was kept and what the daemon just gave.

    :param running: the container runs, so ``fresh`` holds only the bytes
        written since the last read, which follow ``kept``.
    Otherwise ``fresh`` is the daemon's log file of the container's last
    run, which holds (at its start) what was read from it while it ran:
    it extends ``kept`` where ``kept``'s newest bytes are found in it, and
    is the whole log when nothing was kept. Returns the newest ``cap``
    bytes.
    """
    if running or not kept:
        whole = kept + fresh
    else:
        tail = kept[-min(len(kept), 4096):]
        at = fresh.rfind(tail)
        whole = kept + fresh[at + len(tail):] if at >= 0 else kept
    return whole[-cap:] if cap else b''


# -- daemon calls ----------------------------------------------------------

def _update(client, record, fresh):
    """Merge ``fresh`` into what ``record`` keeps; save it if it grew."""
    config = record.get('config') or {}
    running = record.get('status') == daemon_client.RUNNING
    kept = decode(config.get(KEY))
    whole = merged(kept, fresh, running,
                   CONF.syscontainer.console_log_keep_bytes)
    if running and fresh:
        client.set_config(record['name'], {KEY: encode(whole)})
    return whole


def read(client, record, not_found=None):
    """get_console_output's log: what was kept and what the daemon has."""
    fresh = client.console_log(record['name'], not_found=not_found)
    return _update(client, record, fresh)


def keep(client, record):
    """Save what the daemon has not yet handed out, before a checkpoint.

    Never raises: a checkpoint must not fail because of its console log;
    what could not be read is only logged.
    """
    try:
        _update(client, record, client.console_log(record['name']))
    except (exception.DaemonError, exception.DaemonUnavailable) as e:
        LOG.warning('Could not keep the console log of %(name)s before '
                    'its checkpoint: %(error)s',
                    {'name': record['name'], 'error': e})
