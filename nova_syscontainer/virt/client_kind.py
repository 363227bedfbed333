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
"""Which daemon the client talks to (LXD or Incus): a mixin of DaemonClient.

The kind is read from the daemon's own ``GET /1.0`` once and kept;
:mod:`daemon_kind` says what differs, and the calls that must differ ask
:attr:`KindCalls.daemon` instead of testing for a kind themselves.
"""

from oslo_log import log as logging
from pylxd import exceptions as lxd_exceptions

from nova_syscontainer import exception
from nova_syscontainer.virt import daemon_kind

LOG = logging.getLogger(__name__)


class KindCalls:
    """Mixin: ``self`` is a DaemonClient (``server_info``, ``endpoint``)."""

    _daemon = None
    _expected_kind = daemon_kind.AUTO

    def _identify(self, info):
        """Remember the daemon behind a ``GET /1.0`` answer (first time)."""
        if self._daemon is None:
            try:
                self._daemon = daemon_kind.identify(info or {},
                                                    self._expected_kind)
            except daemon_kind.UnknownDaemon as e:
                raise exception.DaemonIncompatible(endpoint=self.endpoint,
                                                   reason=str(e))
        return info

    @property
    def daemon(self):
        """The :class:`daemon_kind.Daemon` (LXD or Incus, its version)."""
        if self._daemon is None:
            self.server_info()
        return self._daemon

    def _for_daemon(self, body):
        """An instance body with the config keys this kind needs."""
        return dict(body, config=daemon_kind.instance_config(
            self.daemon.kind, body.get('config') or {}))

    def _wait_once(self, op_id, step):
        """One ``GET /1.0/operations/<id>/wait`` of ``step`` s; the operation.

        Incus 6.0.4 answers it with an error both when the operation failed
        (its error) and when ``step`` ran out while it still runs ("context
        deadline exceeded": a live move longer than 30 s was taken for a
        failed one and rolled back); LXD 5.0.2 answers 200 and the operation
        either way. After such an error the operation itself is read: its
        status says which. A 404 and errors of that read propagate.
        """
        try:
            return self.api.operations[op_id].wait.get(
                params={'timeout': step},
                timeout=step + self.api_timeout).json()['metadata']
        except lxd_exceptions.NotFound:
            raise
        except lxd_exceptions.LXDAPIException as e:
            LOG.debug('Waiting on operation %s: %s; reading it', op_id, e)
            return self.api.operations[op_id].get().json()['metadata']
