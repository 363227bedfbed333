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
"""The daemons of other compute nodes, as their compute records publish them.

Every compute publishes, in the ``stats`` of its compute-node record, the
https URL of its daemon (``[syscontainer] migration_endpoint``) and the
certificate that daemon presents. The node that sends a container reads
the receiving node's record and opens a client to that daemon (its own
client certificate, the peer's certificate pinned, kept in a file named
by its content: :mod:`state_files`).
"""

import hashlib
import os
import threading

from nova import exception as nova_exception
from nova.i18n import _
from nova import objects
from oslo_serialization import jsonutils

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import state_files

CONF = sc_conf.CONF

#: Keys of the compute-node stats this driver publishes.
ENDPOINT_STAT = 'syscontainer_migration_endpoint'
CERT_STAT = 'syscontainer_server_cert'


def _precheck_error(reason):
    return nova_exception.MigrationPreCheckError(reason=reason)


def stats_of(compute_info):
    """The stats of a compute-node record (object, primitive or dict)."""
    if compute_info is None:
        return {}
    if isinstance(compute_info, dict):
        stats = compute_info.get('stats')
        if stats is None:
            stats = compute_info.get('nova_object.data', {}).get('stats')
    else:
        stats = getattr(compute_info, 'stats', None)
    if isinstance(stats, str):
        stats = jsonutils.loads(stats)
    return stats or {}


def _peer_certificate(pem):
    """A file holding a peer daemon's certificate, for pinning."""
    directory = os.path.join(CONF.state_path, 'syscontainer', 'peers')
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, '%s.crt' % hashlib.sha256(
        pem.encode()).hexdigest())
    if not os.path.exists(path):
        # Named by its content: two writers write the same bytes.
        state_files.write_atomic(path, pem, mode=0o644)
    return path


#: Clients of peer daemons, by endpoint, pinned certificate, timeout and
#: this node's client certificate: a move to a peer reuses the TLS
#: connection of the previous one (a new handshake cost 0.13-0.2 s of each
#: move on a busy two-core host). A peer that publishes another
#: certificate gets a new client.
_PEERS = {}
_PEERS_LOCK = threading.Lock()


def target_client(context, dest):
    """A client for ``dest``'s daemon, from its published compute stats."""
    node = objects.ComputeNode.get_first_node_by_host_for_old_compat(
        context, dest)
    stats = stats_of(node)
    endpoint, pem = stats.get(ENDPOINT_STAT), stats.get(CERT_STAT)
    if not endpoint or not pem:
        raise _precheck_error(_('host %s publishes no migration endpoint') %
                              dest)
    cert = _peer_certificate(pem)
    group = CONF.syscontainer
    timeout = group.migration_timeout
    key = (endpoint, cert, timeout, group.client_cert, group.client_key)
    with _PEERS_LOCK:
        client = _PEERS.get(key)
        if client is None:
            client = _PEERS[key] = (
                daemon_client.DaemonClient(
                    endpoint=endpoint, server_cert=cert,
                    # The peer's published certificate is pinned whatever
                    # this node's [syscontainer] insecure says of its own
                    # daemon.
                    insecure=False, operation_timeout=timeout))
    return client


def sending_target(context, source_endpoint, dest):
    """A client for ``dest``'s daemon, once this node can send at all."""
    if not source_endpoint:
        raise _precheck_error(_('this node has no [syscontainer] '
                                'migration_endpoint'))
    return target_client(context, dest)
