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
"""One plan per operation: built once, handed to the I/O, never redone.

The counting tests run the driver and the real :mod:`nics` over a mocked
host (:func:`network.plug` and ``unplug`` only) and count what is
translated: the flavor (:func:`flavor_limits.translate`) and every port
(:func:`vif.plan`). Before the plan, a spawn with two ports planned each
port three times (a check, the plugging, the create body).
"""

import fixtures
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects

from nova_syscontainer import exception
from nova_syscontainer.virt import flavor_limits
from nova_syscontainer.virt import network
from nova_syscontainer.virt import nics
from nova_syscontainer.virt import operation_plan
from nova_syscontainer.virt import vif as vif_mod
from tests.unit import test_driver
from tests.unit.test_vif import make_vif

#: The real function: DriverTestCase mocks it.
REAL_PLUG_ALL = nics.plug_all
REAL_ATTACH = nics.attach

PORTS = ('5b048e97-89aa-4c3e-9d1f-0123456789ab',
         '6c159fa8-90bb-4d4f-8e20-123456789abc')


def network_info():
    return network_model.NetworkInfo([
        make_vif(port_id=port, mac='fa:16:3e:00:00:0%d' % i)
        for i, port in enumerate(PORTS, 1)])


class PlanTest(test_driver.DriverTestCase):
    """The plan itself (pure)."""

    def limits(self, **nic):
        return flavor_limits.Limits(config={'limits.cpu': '1'},
                                    devices={}, nic=nic)

    def test_spawn_plan_has_one_nic_per_port_and_no_image(self):
        plan = operation_plan.for_spawn(
            self.instance, network_info(),
            self.limits(**{'limits.ingress': '800kbit',
                           'limits.egress': '1600kbit'}),
            'host1', ['default'])
        self.assertEqual(list(PORTS), [hp.port_id for _v, hp in plan.nics])
        self.assertEqual([1600, 1600],
                         [hp.egress_kbit for _v, hp in plan.nics])
        nic = plan.body['devices']['nic-' + PORTS[1]]
        self.assertEqual(('eth1', '800kbit', 'fa:16:3e:00:00:02'),
                         (nic['name'], nic['limits.ingress'], nic['hwaddr']))
        self.assertEqual('1', plan.body['config']['limits.cpu'])
        self.assertIsNone(plan.body['source']['fingerprint'])

    def test_create_body_adds_the_image_to_a_copy(self):
        plan = operation_plan.for_spawn(self.instance, network_info(),
                                        self.limits(), 'host1', [])
        body = operation_plan.create_body(plan, 'fp')
        self.assertEqual({'type': 'image', 'fingerprint': 'fp'},
                         body['source'])
        body['devices'].clear()
        self.assertIsNone(plan.body['source']['fingerprint'])
        self.assertIn('nic-' + PORTS[0], plan.body['devices'])

    def test_a_port_it_cannot_plug_refuses_the_whole_plan(self):
        bad = network_model.NetworkInfo(
            [make_vif(), make_vif('bridge', port_id=PORTS[1])])
        self.assertRaises(exception.InstanceBuildRefused,
                          operation_plan.build, self.instance, bad,
                          self.limits())


class OnePlanPerOperationTest(test_driver.DriverTestCase):
    """Each operation translates the flavor once and each port once."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatchObject(nics, 'plug_all',
                                                 REAL_PLUG_ALL))
        self.useFixture(fixtures.MockPatchObject(nics, 'attach',
                                                 REAL_ATTACH))
        self.plugged = self.useFixture(fixtures.MockPatchObject(
            network, 'plug', autospec=True)).mock
        self.useFixture(fixtures.MockPatchObject(network, 'unplug',
                                                 autospec=True))
        self.translate = self.useFixture(fixtures.MockPatchObject(
            flavor_limits, 'translate', wraps=flavor_limits.translate)).mock
        self.vif_plan = self.useFixture(fixtures.MockPatchObject(
            vif_mod, 'plan', wraps=vif_mod.plan)).mock
        self.instance.flavor.extra_specs = {
            'quota:vif_outbound_average': '200'}
        self.network_info = network_info()

    def assertTranslated(self, flavors, ports):
        self.assertEqual((flavors, ports), (self.translate.call_count,
                                            self.vif_plan.call_count))

    def test_spawn(self):
        self.spawn(network_info=self.network_info)
        self.assertTranslated(1, 2)
        # What was computed once reached both the host and the daemon.
        self.assertEqual([1600, 1600], [c.args[2].egress_kbit for c in
                                        self.plugged.call_args_list])
        body = self.daemon.create_instance.call_args.args[0]
        self.assertEqual(['eth0', 'eth1'], [
            body['devices']['nic-' + port]['name'] for port in PORTS])
        self.assertEqual('fp', body['source']['fingerprint'])

    def test_a_refused_port_fails_the_spawn_before_anything_exists(self):
        self.network_info[1]['type'] = 'bridge'
        self.assertRaises(exception.InstanceBuildRefused, self.spawn,
                          network_info=self.network_info)
        self.plugged.assert_not_called()
        self.daemon.create_instance.assert_not_called()
        self.driver.images.ensure.assert_not_called()

    def test_plug_vifs(self):
        self.driver.plug_vifs(self.instance, self.network_info)
        self.assertTranslated(1, 2)
        self.assertEqual(2, self.plugged.call_count)

    def test_plug_vifs_keeps_nova_s_contract_for_a_refused_port(self):
        self.network_info[1]['type'] = 'bridge'
        self.assertRaises(nova_exception.VirtualInterfacePlugException,
                          self.driver.plug_vifs, self.instance,
                          self.network_info)
        self.plugged.assert_not_called()

    def test_attach_interface(self):
        self.add()
        self.daemon.get_writable.return_value = {'config': {},
                                                 'devices': {}}
        self.driver.attach_interface(None, self.instance,
                                     objects.ImageMeta.from_dict({}),
                                     self.network_info[0])
        self.assertTranslated(1, 1)
        body = self.daemon.update_instance.call_args.args[1]
        self.assertIn('nic-' + PORTS[0], body['devices'])

    def test_finish_revert_migration(self):
        rec = self.add(status=test_driver.STOPPED)
        self.daemon.get_writable.return_value = {
            'config': dict(rec['config']), 'devices': {}, 'profiles': []}
        self.driver.finish_revert_migration(None, self.instance,
                                            self.network_info, None,
                                            power_on=False)
        self.assertTranslated(1, 2)
        self.assertEqual(2, self.plugged.call_count)
