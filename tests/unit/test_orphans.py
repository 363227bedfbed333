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
"""Which containers the periodic sweep removes, and which it never does."""

import datetime
import unittest

from nova.compute import task_states
from nova.compute import vm_states

from nova_syscontainer.virt import container
from nova_syscontainer.virt import orphans

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.timezone.utc)


def record(uuid, host='node1', age=7200, managed=True):
    created = NOW - datetime.timedelta(seconds=age)
    config = {container.UUID_KEY: uuid, container.HOST_KEY: host}
    if managed:
        config[container.MANAGED_KEY] = 'true'
    return {'name': 'c-' + (uuid or 'none'), 'config': config,
            'created_at': created.strftime('%Y-%m-%dT%H:%M:%S.%f123Z')}


def chosen(records, local=(), seen=None, grace=600):
    return [rec['name'] for rec, _why in orphans.choose(
        records, 'node1', set(local), seen or {}, NOW, grace)]


class ChooseTest(unittest.TestCase):

    def test_unknown_and_deleted_instances_removed(self):
        self.assertEqual(['c-a', 'c-b'], chosen(
            [record('a'), record('b')],
            seen={'b': orphans.Seen(host='node1', deleted=True)}))

    def test_instance_on_this_host_kept(self):
        self.assertEqual([], chosen([record('a')], local=['a']))

    def test_other_nodes_and_unmanaged_containers_never_touched(self):
        self.assertEqual([], chosen([record('a', host='node2'),
                                     record('b', managed=False),
                                     record(None)]))

    def test_young_or_undated_container_kept(self):
        undated = dict(record('b'), created_at='0001-01-01T00:00:00Z')
        self.assertEqual([], chosen([record('a', age=30), undated,
                                     dict(record('c'), created_at=None)]))
        self.assertEqual(['c-a'], chosen([record('a', age=30)], grace=0))

    def test_instances_in_flight_kept(self):
        busy = {
            'live': orphans.Seen(host='node2',
                                 task_state=task_states.MIGRATING),
            'resized': orphans.Seen(host='node2', vm_state=vm_states.RESIZED),
            'revert': orphans.Seen(
                host='node2', vm_state=vm_states.RESIZED,
                task_state=task_states.RESIZE_REVERTING),
            'rescue': orphans.Seen(host='node2', vm_state=vm_states.RESCUED),
            'rescuing': orphans.Seen(host='node2',
                                     task_state=task_states.RESCUING),
            'evacuating': orphans.Seen(host='node2',
                                       task_state=task_states.REBUILDING),
            'ctx': orphans.Seen(host='node2', vm_state=vm_states.ACTIVE,
                                migrating=True),
        }
        self.assertEqual([], chosen([record(u) for u in busy], seen=busy))

    def test_instance_settled_elsewhere_removed(self):
        # Evacuated (or moved while this daemon was away) and settled.
        seen = {'a': orphans.Seen(host='node2', vm_state=vm_states.ACTIVE),
                'b': orphans.Seen(host=None,
                                  vm_state=vm_states.SHELVED_OFFLOADED)}
        found = orphans.choose([record('a'), record('b')], 'node1', set(),
                               seen, NOW, 600)
        self.assertEqual(['c-a', 'c-b'], [rec['name'] for rec, _ in found])
        self.assertIn('on host node2', found[0][1])
        self.assertIn('created 7200 s ago', found[0][1])

    def test_instance_found_on_this_host_now_kept(self):
        seen = {'a': orphans.Seen(host='node1', vm_state=vm_states.ACTIVE)}
        self.assertEqual([], chosen([record('a')], seen=seen))


class FakeClient(object):

    def __init__(self, records):
        self.records = records
        self.calls = []

    def list_instances(self):
        self.calls.append('list')
        return self.records


class SweepTest(unittest.TestCase):

    def test_no_database_query_when_every_container_is_local(self):
        class Inst(object):
            uuid, host, deleted = 'a', 'node1', False
        client = FakeClient([record('a'), record('x', host='node2')])
        self.assertEqual([], orphans.sweep(client, None, 'node1', [Inst()]))
        self.assertEqual(['list'], client.calls)
