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
"""Pure mapping of Nova VIFs to host interfaces and daemon NIC devices."""

from unittest import mock

import fixtures
from nova.network import model
import testtools

from nova_syscontainer import exception
from nova_syscontainer.privsep import linux_net
from nova_syscontainer.virt import network
from nova_syscontainer.virt import nics
from nova_syscontainer.virt import vif

PORT = '5b048e97-89aa-4c3e-9d1f-0123456789ab'


def make_vif(vif_type='ovs', port_id=PORT, mac='fa:16:3e:00:00:01',
             mtu=1450, bridge='br-int', active=True, **kwargs):
    network = model.Network(id='net', bridge=bridge)
    if mtu:
        network['meta']['mtu'] = mtu
    return model.VIF(id=port_id, address=mac, network=network,
                     type=vif_type, devname=('tap' + port_id)[:14],
                     active=active, **kwargs)


class PlanTest(testtools.TestCase):

    def test_ovs_port_is_hybrid_plugged_with_port_names(self):
        plan = vif.plan(make_vif())
        self.assertEqual('qbr5b048e97-89', plan.bridge)
        self.assertEqual('qvb5b048e97-89', plan.inner)
        self.assertEqual('qvo5b048e97-89', plan.outer)
        self.assertEqual('br-int', plan.network_bridge)
        self.assertEqual(1450, plan.mtu)
        self.assertEqual('fa:16:3e:00:00:01', plan.mac)
        self.assertIsNone(plan.egress_kbit)

    def test_tap_ports_keep_their_devname_and_join_no_bridge(self):
        for bridge in (None, 'br-ignored'):
            plan = vif.plan(make_vif('tap', bridge=bridge))
            self.assertEqual('tap5b048e97-89', plan.outer)
            self.assertIsNone(plan.network_bridge)

    def test_egress_rate_from_flavor_limits(self):
        plan = vif.plan(make_vif(), {'limits.egress': '4000kbit',
                                     'limits.ingress': '8000kbit'})
        self.assertEqual(4000, plan.egress_kbit)

    def test_unsupported_types_are_refused_by_name(self):
        for vif_type in ('vhostuser', 'hw_veb', 'binding_failed', 'bridge',
                         'unbound', 'macvtap', None):
            e = self.assertRaises(exception.InstanceBuildRefused,
                                  vif.plan, make_vif(vif_type), None, 'u')
            self.assertIn(str(vif_type), str(e))
            self.assertIn('ovs, tap', str(e))

    def test_direct_vnic_refused(self):
        e = self.assertRaises(exception.InstanceBuildRefused, vif.plan,
                              make_vif(vnic_type='direct'))
        self.assertIn('direct', str(e))

    def test_ovs_without_bridge_or_mac_refused(self):
        self.assertRaises(exception.InstanceBuildRefused, vif.plan,
                          make_vif(bridge=None))
        self.assertRaises(exception.InstanceBuildRefused, vif.plan,
                          make_vif(mac=None))

    def test_names_that_are_no_interface_names_refused(self):
        # Each would reach `ip link` as a name: refused before any I/O.
        for kwargs in ({'port_id': '../../etc'}, {'port_id': 'x y'},
                       {'devname': 'tap x'}, {'devname': '../lo'},
                       {'devname': 'tap0123456789abcdef'},
                       {'bridge': 'br-int; reboot'}):
            with self.subTest(**kwargs):
                devname = kwargs.pop('devname', None)
                v = make_vif(**kwargs)
                if devname:
                    v['devname'] = devname
                self.assertRaises(exception.InstanceBuildRefused,
                                  vif.plan, v)
        vif.plan(make_vif(vif_type='tap'))


class StaleEndsTest(testtools.TestCase):
    """Which host links network.remove_stale_container_ends deletes."""

    MAC = 'fa:16:3e:00:00:01'

    def link(self, name='vethf7d44046', kind='veth', state='DOWN',
             master=None, mac=MAC):
        link = {'ifname': name, 'address': mac, 'operstate': state,
                'linkinfo': {'info_kind': kind}}
        if master:
            link['master'] = master
        return link

    def test_only_a_down_detached_lxd_veth_with_the_mac(self):
        links = [self.link(),                              # the leftover
                 self.link('vethabcdef12', mac='fa:16:3e:00:00:02'),
                 self.link('tap5b048e97-89', kind='tun'),  # a tap port
                 self.link('qvb5b048e97-89'),              # ours, named
                 self.link('veth0a0b0c0d', state='UP'),    # in use
                 self.link('veth1a1b1c1d', master='qbr5b048e97-89'),
                 self.link('eth0', kind=None)]             # the host's
        self.assertEqual(['vethf7d44046'], network.stale_container_ends(
            links, [self.MAC.upper()]))
        self.assertEqual([], network.stale_container_ends(links, [None]))


class DeviceTest(testtools.TestCase):

    def test_device_is_bridged_on_the_port_bridge(self):
        plan = vif.plan(make_vif())
        dev = vif.nic_device(plan, 'eth0', {'limits.ingress': '8000kbit',
                                            'limits.egress': '4000kbit'})
        self.assertEqual({'type': 'nic', 'nictype': 'bridged',
                          'parent': 'qbr5b048e97-89', 'name': 'eth0',
                          'hwaddr': 'fa:16:3e:00:00:01', 'mtu': '1450',
                          'limits.ingress': '8000kbit'}, dev)

    def test_no_mtu_no_limit(self):
        dev = vif.nic_device(vif.plan(make_vif(mtu=None)), 'eth0')
        self.assertNotIn('mtu', dev)
        self.assertNotIn('limits.ingress', dev)

    def test_interfaces_numbered_after_existing_nics(self):
        other = '11111111-2222-3333-4444-555555555555'
        existing = {'root': {'type': 'disk', 'path': '/'},
                    'nic-x': {'type': 'nic', 'name': 'eth0'}}
        devices = vif.nic_devices(
            [make_vif(), make_vif(port_id=other, mac='fa:16:3e:00:00:02')],
            existing=existing)
        self.assertEqual('eth1', devices['nic-' + PORT]['name'])
        self.assertEqual('eth2', devices['nic-' + other]['name'])
        # A port already in the container is not added twice.
        again = vif.nic_devices([make_vif()],
                                existing=dict(existing, **devices))
        self.assertEqual({}, again)

    def test_device_names_round_trip(self):
        self.assertEqual(PORT, vif.port_of_device(vif.device_name(PORT)))
        self.assertIsNone(vif.port_of_device('root'))

    def test_new_flavor_replaces_ingress_of_our_nics_only(self):
        devices = {'nic-' + PORT: {'type': 'nic', 'limits.ingress': '1kbit'},
                   'other': {'type': 'nic', 'limits.ingress': '1kbit'}}
        out = vif.with_nic_limits(devices, {'limits.ingress': '9kbit'})
        self.assertEqual('9kbit', out['nic-' + PORT]['limits.ingress'])
        self.assertEqual('1kbit', out['other']['limits.ingress'])
        out = vif.with_nic_limits(devices, {})
        self.assertNotIn('limits.ingress', out['nic-' + PORT])


class EventsTest(testtools.TestCase):

    def test_waits_only_for_ports_not_yet_active(self):
        down = make_vif(port_id='a', active=False)
        up = make_vif(port_id='b', active=True)
        self.assertEqual([('network-vif-plugged', 'a')],
                         nics.neutron_events([down, up]))
        self.assertEqual([], nics.neutron_events(None))


class NetdevChecksumTest(testtools.TestCase):
    """OVS's userspace datapath: no TX checksum offload into it."""

    def _plug(self, datapath):
        port = make_vif()
        plan = vif.plan(port)
        ran = []
        self.useFixture(fixtures.MockPatchObject(network, '_os_vif'))
        # os-vif's object, as _ovs_object makes it from the binding.
        self.useFixture(fixtures.MockPatchObject(
            network, '_ovs_object', return_value=mock.Mock(
                port_profile=mock.Mock(datapath_type=datapath))))
        self.useFixture(fixtures.MockPatchObject(network, 'shape_egress'))
        self.useFixture(fixtures.MockPatchObject(
            network, '_run', side_effect=lambda *cmd, **kw: ran.append(cmd)))
        # The privileged calls, by entry point: none reaches the host.
        self.useFixture(fixtures.MockPatchObject(
            network, '_priv',
            side_effect=lambda call, *args: ran.append((call,) + args)))
        network.plug(mock.Mock(), port, plan)
        return plan, ran

    def test_offload_off_on_qvb_for_netdev(self):
        plan, ran = self._plug('netdev')
        self.assertEqual([(linux_net.tx_checksum_off, plan.inner)], ran)

    def test_kernel_datapath_left_alone(self):
        _plan, ran = self._plug('system')
        self.assertEqual([], ran)
