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

from nova_syscontainer import exception
from nova_syscontainer.virt import daemon_kind


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
