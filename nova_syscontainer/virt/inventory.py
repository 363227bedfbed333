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
"""This node's containers in one daemon call, remembered for the periodics.

Nova's ``_sync_power_states`` periodic first counts the instances on the
hypervisor (``get_num_instances``, which is ``len(list_instances())``) and
then asks ``get_info(instance)`` -- with ``use_cache=True`` -- for every
instance of the host, five at a time. One ``GET /1.0/instances/<name>``
each would make it O(N) daemon calls; instead :meth:`Inventory.records`
remembers the one listing (``GET /1.0/instances?recursion=1``, which
carries every container's status) and :meth:`Inventory.cached_state`
answers from it.

Only RUNNING is answered from the listing: a stale RUNNING makes Nova's
sync do nothing harmful (a STOPPED server "found running" is force-stopped,
which is a no-op on a stopped container), whereas a stale SHUTDOWN or
SUSPENDED could make it stop a server that was started or resumed after
the listing. Every other state is read afresh by the caller. So at scale,
with the servers running, the whole periodic costs one daemon call.

:meth:`Inventory.records` is also the one place that lists this node's
containers, for whoever needs them (list_instances, list_instance_uuids,
a sweep of orphans).
"""

import threading
import time

from nova.compute import power_state

from nova_syscontainer.virt import container


class Inventory(object):
    """The listing of one node's containers on one daemon.

    :param client: the :class:`~nova_syscontainer.virt.client.DaemonClient`.
    :param max_age: seconds a listing may answer :meth:`cached_state`
        (0: never).
    :param clock: a monotonic clock (tests pass their own).
    """

    def __init__(self, client, max_age, clock=time.monotonic):
        self._client = client
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._by_name = {}
        self._taken = None

    def records(self, nodename):
        """The records of the containers this driver made for ``nodename``.

        One daemon call, whatever their number; the answer is remembered
        for :meth:`cached_state`.
        """
        taken = self._clock()
        recs = [rec for rec in self._client.list_instances()
                if container.is_managed(rec, nodename)]
        with self._lock:
            self._by_name = {rec['name']: rec for rec in recs}
            self._taken = taken
        return recs

    def cached_state(self, instance):
        """The power state of ``instance`` if a fresh listing saw it running.

        None means "ask the daemon": no listing younger than ``max_age``,
        the container was not in it (or was another instance's), or it was
        not running.
        """
        with self._lock:
            if (self._taken is None or self._max_age <= 0 or
                    self._clock() - self._taken > self._max_age):
                return None
            rec = self._by_name.get(container.name(instance))
        if rec is None or container.instance_uuid(rec) != instance.uuid:
            return None
        state = container.power_state_of(rec.get('status'),
                                         rec.get('stateful', False))
        return state if state == power_state.RUNNING else None

    def forget(self):
        """Drop the remembered listing (the next answers are fresh)."""
        with self._lock:
            self._by_name = {}
            self._taken = None
