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
"""The client layer's commands run inside a guest (the exec API).

A part of :class:`client.DaemonClient` (it inherits :class:`GuestCalls`),
kept in a module of its own for size; the connection, its timeouts and
its error mapping are the client's.
"""

import threading

from pylxd import exceptions as lxd_exceptions
import requests

from nova_syscontainer import exception


class GuestCalls(object):
    """Commands in a running instance."""

    def execute(self, name, command, stdin, timeout=None):
        """Run ``command`` in a running instance; (exit code, stdout, stderr).

        ``POST /1.0/instances/<name>/exec`` with websockets (pylxd's
        Instance.execute): ``stdin`` (bytes or str) reaches the command
        through its stdin websocket only, never its argv, the request
        body or a log. The command runs as root with the daemon's default
        environment. Waits at most ``timeout`` seconds (api_timeout by
        default); a command still running then raises DaemonTimeout (the
        daemon cannot cancel an exec; its process is left to end). Raises
        GuestCommandNotFound when the guest has no such command,
        DaemonError on any other refusal.
        """
        action = 'run %s in %s' % (command[0], name)
        timeout = timeout or self.api_timeout
        outcome = {}

        def run():
            try:
                inst = self._connect().instances.get(name)
                outcome['result'] = inst.execute(list(command),
                                                 stdin_payload=stdin)
            except Exception as e:  # handed to the caller's thread
                outcome['error'] = e

        worker = threading.Thread(target=run, daemon=True,
                                  name='exec-%s' % name)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise exception.DaemonTimeout(endpoint=self.endpoint,
                                          action=action, timeout=timeout)
        error = outcome.get('error')
        if error is None:
            result = outcome['result']
            return result.exit_code, result.stdout, result.stderr
        if isinstance(error, lxd_exceptions.LXDAPIException):
            if 'command not found' in str(error).lower():
                raise exception.GuestCommandNotFound(command=command[0])
            raise exception.DaemonError(endpoint=self.endpoint,
                                        action=action, reason=str(error))
        if isinstance(error, (requests.RequestException, OSError)):
            self.reset()
            raise exception.DaemonUnavailable(
                endpoint=self.endpoint, reason='%s: %s' % (action, error))
        raise error
