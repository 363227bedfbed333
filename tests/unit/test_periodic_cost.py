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
"""What Nova's periodic tasks cost in daemon calls, with a fake daemon.

Pins the calls the client layer sends (DaemonClient.requests_sent, checked
against the fake's own log) for what Nova's periodics call, at 200
instances: O(1) each (issue 17, part 2).
"""

import uuid

from nova.compute import power_state
from nova.compute import provider_tree
from oslo_utils import units
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import client
from nova_syscontainer.virt import container
from nova_syscontainer.virt import driver

CONF = sc_conf.CONF
NODE = 'node1'


class FakeResponse(object):

    def __init__(self, metadata):
        self._body = {'type': 'sync', 'metadata': metadata}
        self.content = b''

    def json(self):
        return self._body


class FakeNode(object):
    """A node of pylxd's API tree: a path, and GET served from ``daemon``."""

    def __init__(self, daemon, path):
        self._daemon, self._path = daemon, path

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return FakeNode(self._daemon, self._path + '/' + name)

    def __getitem__(self, name):
        return FakeNode(self._daemon, self._path + '/' + name)

    def get(self, params=None, **kwargs):
        return FakeResponse(self._daemon.answer(self._path, params or {}))


class FakeDaemon(object):
    """Containers, resources and a pool; logs every request it answers."""

    def __init__(self, count, status='Running'):
        self.log = []
        self.instances = {}
        for i in range(count):
            self.add('inst-%04d' % i, str(uuid.uuid4()), status)
        self.api = FakeNode(self, '')

    def add(self, name, instance_uuid, status, node=NODE):
        self.instances[name] = {
            'name': name, 'status': status, 'stateful': False,
            'config': {container.MANAGED_KEY: 'true',
                       container.UUID_KEY: instance_uuid,
                       container.HOST_KEY: node}}

    def answer(self, path, params):
        self.log.append(path)
        if path == '/instances':
            assert params.get('recursion') == 1
            return list(self.instances.values())
        if path.startswith('/instances/'):
            return self.instances[path.split('/')[2]]
        if path == '/resources':
            return {'cpu': {'total': 2}, 'memory': {'total': 24 * units.Gi,
                                                    'used': units.Gi}}
        if path == '/storage_pools/default/resources':
            return {'space': {'total': 100 * units.Gi, 'used': units.Gi}}
        raise AssertionError('unexpected request %s' % path)


class FakeInstance(object):

    def __init__(self, name, instance_uuid):
        self.uuid = instance_uuid
        self.name = name
        self.vm_state = 'active'


class PeriodicCostTest(testtools.TestCase):

    COUNT = 200

    def setUp(self):
        super().setUp()
        self.daemon = FakeDaemon(self.COUNT)
        self.driver = self.make_driver()

    def make_driver(self):
        drv = driver.SysContainerDriver(virtapi=None)
        drv._nodename = NODE
        drv._server_info = {'environment': {'server_version': '5.0.2'}}
        drv.client = client.DaemonClient(endpoint='/nonexistent.socket')
        drv.client._lxd = self.daemon
        drv.inventory._client = drv.client
        return drv

    def instances(self):
        return [FakeInstance(name, rec['config'][container.UUID_KEY])
                for name, rec in self.daemon.instances.items()]

    def calls(self, func, *args):
        """(result, requests the client counted), checked against the log."""
        before_count = self.driver.client.requests_sent
        before_log = len(self.daemon.log)
        result = func(*args)
        sent = self.driver.client.requests_sent - before_count
        self.assertEqual(len(self.daemon.log) - before_log, sent)
        return result, sent

    def test_list_instances_is_one_call(self):
        names, sent = self.calls(self.driver.list_instances)
        self.assertEqual(self.COUNT, len(names))
        self.assertEqual(1, sent)
        uuids, sent = self.calls(self.driver.list_instance_uuids)
        self.assertEqual(self.COUNT, len(uuids))
        self.assertEqual(1, sent)

    def test_other_nodes_containers_are_not_listed(self):
        self.daemon.add('other', str(uuid.uuid4()), 'Running', node='node2')
        self.assertNotIn('other', self.driver.list_instances())

    def sync_power_states(self):
        """What Nova's _sync_power_states asks of the driver."""
        count = self.driver.get_num_instances()
        return count, [self.driver.get_info(inst).state
                       for inst in self.instances()]

    def test_power_state_sync_is_one_call(self):
        (count, states), sent = self.calls(self.sync_power_states)
        self.assertEqual(self.COUNT, count)
        self.assertEqual([power_state.RUNNING] * self.COUNT, states)
        self.assertEqual(1, sent)

    def test_a_state_other_than_running_is_read_afresh(self):
        self.daemon.instances['inst-0003']['status'] = 'Stopped'
        self.daemon.instances['inst-0007']['status'] = 'Frozen'
        (_count, states), sent = self.calls(self.sync_power_states)
        self.assertEqual(power_state.SHUTDOWN, states[3])
        self.assertEqual(power_state.PAUSED, states[7])
        self.assertEqual(3, sent)
        self.assertEqual(['/instances', '/instances/inst-0003',
                          '/instances/inst-0007'], self.daemon.log)

    def test_a_stale_running_is_not_used_for_a_fresh_answer(self):
        self.driver.list_instances()
        self.daemon.instances['inst-0001']['status'] = 'Stopped'
        inst = self.instances()[1]
        info, sent = self.calls(self.driver.get_info, inst, False)
        self.assertEqual(power_state.SHUTDOWN, info.state)
        self.assertEqual(1, sent)

    def test_the_listing_ages_out(self):
        now = [1000.0]
        self.driver.inventory._clock = lambda: now[0]
        self.driver.list_instances()
        now[0] += CONF.syscontainer.instance_list_cache_seconds + 1
        _info, sent = self.calls(self.driver.get_info, self.instances()[0])
        self.assertEqual(1, sent)

    def test_another_instance_of_the_same_name_is_not_answered(self):
        self.driver.list_instances()
        stranger = FakeInstance('inst-0002', str(uuid.uuid4()))
        self.assertIsNone(self.driver.inventory.cached_state(stranger))

    def test_no_cache_when_disabled(self):
        self.flags_max_age(0)
        (_count, _states), sent = self.calls(self.sync_power_states)
        self.assertEqual(1 + self.COUNT, sent)

    def flags_max_age(self, seconds):
        self.driver.inventory._max_age = seconds

    def test_resource_update_is_a_constant_number_of_calls(self):
        def update_available_resource():
            self.driver.get_available_resource(NODE)
            tree = provider_tree.ProviderTree()
            tree.new_root(NODE, uuid.uuid4())
            self.driver.update_provider_tree(tree, NODE)

        _r, sent = self.calls(update_available_resource)
        self.assertEqual(4, sent)


class PeriodicCostFewInstancesTest(PeriodicCostTest):
    """The same counts with 3 instances: they do not grow with N."""

    COUNT = 3

    def test_a_state_other_than_running_is_read_afresh(self):
        self.daemon.instances['inst-0001']['status'] = 'Stopped'
        (_count, states), sent = self.calls(self.sync_power_states)
        self.assertEqual(power_state.SHUTDOWN, states[1])
        self.assertEqual(2, sent)
