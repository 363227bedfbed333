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
"""Leftovers of failed moves, removed now or remembered in a state file."""

import shutil
import tempfile
import unittest

from nova import exception as nova_exception
from nova import objects

from nova_syscontainer.virt import leftovers
from tests.unit import fakes

objects.register_all()


def deleted(daemon):
    return [call[1] for call in daemon.calls if call[0] == 'delete']


class FakeInstance(object):
    def __init__(self, uuid, host, task_state=None):
        self.uuid, self.host, self.task_state = uuid, host, task_state


class PendingCleanupsTest(unittest.TestCase):

    def setUp(self):
        from nova_syscontainer import conf as sc_conf
        from nova_syscontainer.virt import container
        self.container = container
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        sc_conf.CONF.set_override('state_path', self.tmp)
        self.addCleanup(sc_conf.CONF.clear_override, 'state_path')
        self.pending = leftovers.PendingCleanups('host2')
        self.db = {}
        orig = leftovers.objects.Instance.get_by_uuid

        def get_by_uuid(context, uuid):
            if uuid not in self.db:
                raise nova_exception.InstanceNotFound(instance_id=uuid)
            return self.db[uuid]
        leftovers.objects.Instance.get_by_uuid = get_by_uuid
        self.addCleanup(setattr, leftovers.objects.Instance,
                        'get_by_uuid', orig)

    def record(self, uuid, host='host1', status='Stopped'):
        return {'name': 'c-' + uuid, 'status': status, 'config': {
            self.container.UUID_KEY: uuid, self.container.HOST_KEY: host}}

    def add(self, uuid):
        inst = FakeInstance(uuid, 'host1')
        self.pending._store(dict(self.pending._load(),
                                 **{uuid: 'c-' + uuid}))
        return inst

    def test_persisted_and_retried(self):
        self.db['u1'] = self.add('u1')
        daemon = fakes.daemon(instances={'c-u1': self.record('u1')})
        # Another PendingCleanups (a restarted nova-compute) sees it.
        again = leftovers.PendingCleanups('host2')
        self.assertEqual(['u1'], again.uuids())
        self.assertEqual(['u1'], again.retry(None, daemon))
        self.assertEqual(['c-u1'], deleted(daemon))
        self.assertEqual([], self.pending.uuids())

    def test_never_removes_what_this_node_owns_or_moves(self):
        self.db['adopted'] = self.add('adopted')
        self.db['here'] = FakeInstance('here', 'host2')
        self.add('here')
        self.db['moving'] = FakeInstance('moving', 'host1', 'migrating')
        self.add('moving')
        self.add('gone')      # deleted from Nova: its leftover goes
        self.add('other')     # a container of that name, another uuid
        daemon = fakes.daemon(instances={
            'c-adopted': self.record('adopted', host='host2'),
            'c-here': self.record('here'),
            'c-moving': self.record('moving'),
            'c-gone': self.record('gone', status='Running'),
            'c-other': self.record('someone-else')})
        done = self.pending.retry(None, daemon)
        self.assertEqual(['c-gone'], deleted(daemon))
        self.assertEqual({'adopted', 'gone', 'other'}, set(done))
        self.assertEqual({'here', 'moving'}, set(self.pending.uuids()))
