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
"""The destination's record of ports plugged for incoming live moves."""

import shutil
import tempfile
from unittest import mock
import uuid as uuidlib

from nova.compute import task_states
from nova.network import model
from nova import objects
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import incoming_ports
from nova_syscontainer.virt import network
from nova_syscontainer.virt import nics
from tests.unit.test_vif import make_vif

objects.register_all()

PORT2 = '6c159fa8-9abc-4d5f-8e2a-123456789abc'


def U(name):
    """A real UUID for a readable name."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_OID, name))


def instance(name, host='host1', task_state=None, deleted=False):
    return objects.Instance(uuid=U(name), id=7, project_id='p', host=host,
                            task_state=task_state, deleted=deleted)


class DecideTest(testtools.TestCase):

    def test_decisions(self):
        decide = incoming_ports.decide
        self.assertEqual(incoming_ports.UNPLUG, decide(None, 'host2'))
        self.assertEqual(incoming_ports.UNPLUG,
                         decide(instance('u', deleted=True), 'host2'))
        # Cut live move: the source's restart put it back on host1.
        self.assertEqual(incoming_ports.UNPLUG,
                         decide(instance('u', 'host1'), 'host2'))
        # Still moving (or any other task): never touched.
        self.assertEqual(incoming_ports.KEEP, decide(
            instance('u', 'host1', task_states.MIGRATING), 'host2'))
        self.assertEqual(incoming_ports.KEEP, decide(
            instance('u', 'host2', task_states.MIGRATING), 'host2'))
        # It arrived: its ports are its own.
        self.assertEqual(incoming_ports.FORGET,
                         decide(instance('u', 'host2'), 'host2'))


class IncomingPortsTest(testtools.TestCase):

    def patch(self, obj, attr, value):
        patcher = mock.patch.object(obj, attr, value)
        patcher.start()
        self.addCleanup(patcher.stop)

    def setUp(self):
        super().setUp()
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        sc_conf.CONF.set_override('state_path', tmp)
        self.addCleanup(sc_conf.CONF.clear_override, 'state_path')
        self.ports = incoming_ports.IncomingPorts('host2')
        self.db = []
        self.patch(
            objects.InstanceList, 'get_by_filters',
            lambda context, filters, expected_attrs=None: [
                i for i in self.db if i.uuid in filters['uuid']])
        self.in_use = set()
        self.patch(
            network, 'bridge_in_use',
            lambda host_plan: host_plan.bridge in self.in_use)
        self.unplug = mock.Mock()
        self.patch(nics, 'unplug_all', self.unplug)
        self.context = mock.Mock()

    def add(self, name, *vifs):
        self.ports.add(instance(name), model.NetworkInfo(
            vifs or [make_vif()]))

    def uuids(self, *names):
        return sorted(U(name) for name in names)

    def test_remembered_across_restarts_and_forgotten(self):
        self.add('a')
        self.add('b')
        self.assertEqual(self.uuids('a', 'b'),
                         incoming_ports.IncomingPorts('host2').uuids())
        self.assertEqual([], incoming_ports.IncomingPorts('host1').uuids())
        self.ports.discard(U('a'))
        self.ports.discard(U('nothing'))
        self.assertEqual(self.uuids('b'), self.ports.uuids())

    def test_cut_move_unplugs_the_remembered_ports(self):
        self.add('cut', make_vif(), make_vif(port_id=PORT2,
                                             mac='fa:16:3e:00:00:02'))
        self.db.append(instance('cut', 'host1'))
        self.assertEqual(self.uuids('cut'), self.ports.sweep(self.context))
        self.assertEqual(1, self.unplug.call_count)
        inst, network_info = self.unplug.call_args[0][:2]
        self.assertEqual(U('cut'), inst.uuid)
        # What pre_live_migration was handed, as os-vif needs it.
        self.assertIsInstance(network_info[0], model.VIF)
        self.assertEqual([make_vif()['id'], PORT2],
                         [vif['id'] for vif in network_info])
        self.assertEqual('br-int', network_info[0]['network']['bridge'])
        self.assertEqual({'only_unused': True}, self.unplug.call_args[1])
        self.assertEqual([], self.ports.uuids())

    def test_deleted_or_unknown_instances_unplugged(self):
        self.add('deleted')
        self.add('unknown')
        self.db.append(instance('deleted', 'host1', deleted=True))
        self.assertEqual(self.uuids('deleted', 'unknown'),
                         sorted(self.ports.sweep(self.context)))
        unknown = [c[0][0] for c in self.unplug.call_args_list
                   if c[0][0].uuid == U('unknown')][0]
        # A stand-in made of what was remembered: os-vif names it.
        self.assertEqual((7, 'p'), (unknown.id, unknown.project_id))
        self.assertEqual([], self.ports.uuids())

    def test_moving_kept_arrived_forgotten_untouched(self):
        self.add('moving')
        self.add('arrived')
        self.db.extend([instance('moving', 'host1', task_states.MIGRATING),
                        instance('arrived', 'host2')])
        self.assertEqual([], self.ports.sweep(self.context))
        self.unplug.assert_not_called()
        self.assertEqual(self.uuids('moving'), self.ports.uuids())

    def test_ports_still_in_use_kept_for_the_next_pass(self):
        self.add('cut')
        self.db.append(instance('cut', 'host1'))
        self.in_use.add('qbr' + make_vif()['id'][:11])
        self.assertEqual([], self.ports.sweep(self.context))
        self.unplug.assert_not_called()
        self.assertEqual(self.uuids('cut'), self.ports.uuids())
        self.in_use.clear()
        self.assertEqual(self.uuids('cut'), self.ports.sweep(self.context))
        self.assertEqual([], self.ports.uuids())

    def test_a_live_record_wins_over_a_deleted_one(self):
        self.add('u')
        self.db.extend([instance('u', 'host1', deleted=True),
                        instance('u', 'host2')])
        self.assertEqual([], self.ports.sweep(self.context))
        self.unplug.assert_not_called()

    def test_sweep_safely_never_raises(self):
        self.add('u')
        self.patch(
            objects.InstanceList, 'get_by_filters',
            mock.Mock(side_effect=RuntimeError('db gone')))
        self.assertEqual([], self.ports.sweep_safely(self.context))
        self.assertEqual(self.uuids('u'), self.ports.uuids())
