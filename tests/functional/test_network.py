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
"""Neutron ports as container NICs, on the real host plumbing.

See :mod:`tests.functional.ports` for how ports, the stand-in for
Neutron's OVS agent and the checks of the plumbing work. No interface
ever gets an address.
"""

import json

from tests.functional import base
from tests.functional.ports import host_link_exists
from tests.functional.ports import ip_links
from tests.functional.ports import MTU
from tests.functional.ports import PortsMixin
from tests.functional.ports import run


class NetworkTest(PortsMixin, base.SysContainerTestCase):

    def setUp(self):
        super().setUp()
        self.set_up_ports()
        # One port as Neutron's OVS agent with the iptables firewall binds
        # it (hybrid plug), one as with the OVS firewall or OVN.
        self.hybrid = self.make_port({'ovs_hybrid_plug': True,
                                      'port_filter': True})
        self.plain = self.make_port({'port_filter': True})
        self.extra = self.make_port({'ovs_hybrid_plug': True})

    # -- tests -------------------------------------------------------------
    def test_boot_with_two_ports_attach_detach_delete(self):
        server = self.boot_with([self.hybrid, self.plain])
        # Spawn waited for Neutron's events of both ports.
        self.assertIn(self.hybrid['id'], self.agent.sent)
        self.assertIn(self.plain['id'], self.agent.sent)
        nics = self.container_nics(server)
        self.assertEqual({self.hybrid['mac_address'],
                          self.plain['mac_address']}, set(nics))
        self.assertEqual('eth0', nics[self.hybrid['mac_address']]['ifname'])
        self.assertEqual('eth1', nics[self.plain['mac_address']]['ifname'])
        for port in (self.hybrid, self.plain):
            self.assert_plugged(server, port)

        # Attach at run time: a third NIC appears in the running container.
        self.api.attach_interface(
            server['id'], {'interfaceAttachment': {
                'port_id': self.extra['id']}})
        self.wait_until(
            lambda: self.extra['mac_address'] in self.container_nics(server),
            what='the attached NIC')
        nic, _peer = self.assert_plugged(server, self.extra)
        self.assertEqual('eth2', nic['ifname'])

        # Detach at run time: NIC gone, nothing left on the host.
        self.api.detach_interface(server['id'], self.extra['id'])
        self.wait_until(
            lambda: not host_link_exists(self.port_links(
                self.extra['id'])[0]),
            what='the detached port to be unplugged')
        self.assertNotIn(self.extra['mac_address'],
                         self.container_nics(server))
        self.assert_unplugged(self.extra['id'])

        peers = [self.host_peer(n)['ifname']
                 for n in self.container_nics(server).values()]
        self._delete_server(server)
        for name in peers:
            self.assertFalse(host_link_exists(name), name)
        self.assert_unplugged(self.hybrid['id'])
        self.assert_unplugged(self.plain['id'])

    def test_nics_survive_stop_start_reboot_suspend_resume(self):
        server = self.boot_with([self.hybrid, self.plain])
        name = self.container_name(server)
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        # Stopped: the ports stay plugged for Neutron.
        for port_id in (self.hybrid['id'], self.plain['id']):
            for link in self.port_links(port_id):
                self.assertTrue(host_link_exists(link), link)
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        for port in (self.hybrid, self.plain):
            self.assert_plugged(server, port)
        server = self.action(server, {'reboot': {'type': 'HARD'}}, 'ACTIVE')
        for port in (self.hybrid, self.plain):
            self.assert_plugged(server, port)

        _token, pid, _count = self.daemon.counter(name)
        server = self.action(server, {'suspend': None}, 'SUSPENDED')
        server = self.action(server, {'resume': None}, 'ACTIVE')
        _token, pid2, _count = self.daemon.counter(name)
        self.assertEqual(pid, pid2, 'restored, not rebooted')
        for port in (self.hybrid, self.plain):
            self.assert_plugged(server, port)
        # CRIU's checkpoint leaves the container's end of each veth on the
        # host: the driver removed them.
        macs = {self.hybrid['mac_address'], self.plain['mac_address']}
        self.assertEqual([], [link['ifname'] for link in ip_links()
                              if link.get('address') in macs])
        self._delete_server(server)

    def test_flavor_nic_limits_are_in_tc(self):
        flavor = self.make_flavor('c1.shaped', extra_specs={
            'quota:vif_inbound_average': '1000',   # kB/s -> 8 Mbit/s in
            'quota:vif_outbound_average': '500'})  # kB/s -> 4 Mbit/s out
        server = self.boot_with([self.hybrid], flavor_id=flavor)
        _nic, peer = self.assert_plugged(server, self.hybrid)
        # To the container: the daemon's HTB on its host-side veth.
        self.assertIn('rate 8Mbit',
                      run('tc', 'class', 'show', 'dev', peer['ifname']))
        # From the container: HTB on the port's inner veth, which all its
        # traffic leaves the port bridge through.
        qvb = self.port_links(self.hybrid['id'])[1]
        self.assertIn('rate 4Mbit', run('tc', 'class', 'show', 'dev', qvb))
        self.assertIn('htb', run('tc', 'qdisc', 'show', 'dev', qvb))
        # Power-on plugs the ports again: the shaping stays as it was.
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        _nic, peer = self.assert_plugged(server, self.hybrid)
        self.assertIn('rate 8Mbit',
                      run('tc', 'class', 'show', 'dev', peer['ifname']))
        self.assertIn('rate 4Mbit', run('tc', 'class', 'show', 'dev', qvb))
        self._delete_server(server)

    def test_unsupported_vif_type_is_refused(self):
        port = self.make_port({}, vif_type='vhostuser')
        server = self.boot_with([port], expected_state='ERROR')
        fault = self.api.get_server(server['id'])['fault']['message']
        self.assertIn('vhostuser', fault)
        self.assertEqual([], [n for n in self.daemon.names()
                              if server['id'] in n])

    def test_restart_with_a_flavor_now_refused_keeps_the_service(self):
        # nova-compute plugs every instance's ports at start-up. One whose
        # flavor a later option change refuses (here: nesting, no longer
        # allowed) fails that instance alone, as Nova's plug_vifs contract
        # says (VirtualInterfacePlugException -> ERROR); the service starts
        # and the other instances keep their ports.
        self.flags(allow_nesting=True, group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        nesting = self.make_flavor('nest', extra_specs={
            'syscontainer:nesting': 'true'})
        refused = self.boot_with([self.hybrid], flavor_id=nesting)
        kept = self.boot_with([self.plain])

        self.flags(allow_nesting=False, group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        self.assertEqual('up', self.admin_api.get_services(
            binary='nova-compute', host='host1')[0]['state'])
        # (Nova records no instance fault for this error state.)
        self._wait_for_server_parameter(refused, {'status': 'ERROR'},
                                        max_retries=120,
                                        wait_for_fault_key=False)
        self.assertEqual('ACTIVE', self.api.get_server(kept['id'])['status'])
        self.assert_plugged(kept, self.plain)
        # The refused instance's container was left as it was.
        self.assertEqual('Running', self.daemon.state(
            self.container_name(refused))['status'])
        self._delete_server(kept)
        # (Nova's _delete_server helper refuses to wait on an ERROR server.)
        self.api.delete_server(refused['id'])
        self.wait_until(lambda: refused['id'] not in [
            s['id'] for s in self.api.get_servers(detail=False)],
            what='the refused server to be deleted')

    def test_tap_port(self):
        # A port as a routing backend (calico-like) binds it. No OVS agent
        # reports it, so it is ACTIVE already and spawn has no event to
        # wait for (as with Nova's libvirt driver).
        port = self.make_port({}, vif_type='tap')
        port['status'] = 'ACTIVE'
        server = self.boot_with([port])
        nic = self.container_nics(server)[port['mac_address']]
        self.assertEqual(MTU, nic['mtu'])
        qbr, qvb, _qvo = self.port_links(port['id'])
        peer = self.host_peer(nic)
        self.assertEqual(qbr, peer.get('master'))
        self.assertEqual(qbr, self.link(qvb).get('master'))
        # The port's devname is the other end of qvb, in no bridge, with
        # no address: the routing backend takes it from there.
        tap_name = ('tap' + port['id'])[:14]
        tap = self.link(tap_name)
        # (ip names a peer in the same namespace by its name.)
        self.assertEqual(qvb, tap.get('link'))
        self.assertIsNone(tap.get('master'))
        self.assertEqual([], self.ipv4_addresses(tap_name))

        self._delete_server(server)
        self.assertFalse(host_link_exists(tap_name))
        self.assertFalse(host_link_exists(peer['ifname']))

    @staticmethod
    def ipv4_addresses(dev):
        out = json.loads(run('ip', '-j', '-4', 'addr', 'show', 'dev', dev))
        return [a['local'] for entry in out
                for a in entry.get('addr_info', [])]
