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
"""The daemon's running operations on one instance: a mixin of DaemonClient.

A nova-compute that died during a live migration forgot the id of the
source daemon's migration operation; its successor finds the operation
again here (``GET /1.0/operations?recursion=1``, whose records name the
instances they act on in ``resources``).
"""


class OperationCalls:
    """Mixin: ``self`` is a DaemonClient (``call``)."""

    def running_operations(self, name):
        """The running operations whose resources name instance ``name``."""
        found = self.call('list operations', 'get',
                          lambda api: api.operations,
                          params={'recursion': 1}, read=True) or {}
        path = '/1.0/instances/%s' % name
        return [op for op in found.get('running') or ()
                if any(res.split('?')[0] == path for res in
                       (op.get('resources') or {}).get('instances') or ())]
