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
"""Neutron ports across live and cold migration, through Nova's API.

host1 and host2 are two daemons of one machine: they share the OVS
integration bridge and every port's host interfaces (qbr, qvb, qvo), so
the checks here read which container hangs on a port's bridge, and that
nothing else does. See :mod:`tests.functional.ports` for the ports and the
stand-in for Neutron's OVS agent.
"""

from tests.functional.ports import bridge_members
from tests.functional.ports import host_link_exists
from tests.functional.ports import PortsMixin
from tests.functional.ports import run
from tests.functional import test_live_migration


class NICMigrationTestCase(PortsMixin, test_live_migration.MigrationTestCase):

    def setUp(self):
        super().setUp()
        self.set_up_ports()
        # Both hosts share one OVS and the ports' interfaces, which exist
        # before the move: an OVS agent sees no new interface and sends no
        # network-vif-plugged for the destination. This is the case Nova's
        # option is for ("the networking backend ... does not support
        # sending these events").
        self.flags(live_migration_wait_for_vif_plug=False, group='compute')
        self.hybrid = self.make_port({'ovs_hybrid_plug': True,
                                      'port_filter': True})
        self.plain = self.make_port({'port_filter': True})

    def assert_only_nic_on_bridges(self, server, daemon, ports):
        """Each port's bridge holds its qvb and this container's NIC only.

        Also no interface on the host carries a port's MAC (the container
        end of a veth pair left by a CRIU checkpoint would).
        """
        peers = []
        for port in ports:
            _nic, peer = self.assert_plugged(server, port, daemon)
            qbr, qvb, _qvo = self.port_links(port['id'])
            self.assertEqual({qvb, peer['ifname']}, bridge_members(qbr))
            peers.append(peer['ifname'])
        self.assertEqual([], self.stale_links())
        return peers

    def delete_and_check(self, server, peers, ports):
        self._delete_server(server)
        for name in peers:
            self.assertFalse(host_link_exists(name), name)
        for port in ports:
            self.assert_unplugged(port['id'])
        self.assertEqual([], self.stale_links())


class LiveMigrationNICsTest(NICMigrationTestCase):

    def test_live_migration_moves_the_nics(self):
        ports = [self.hybrid, self.plain]
        server = self.boot_with(ports, host='host1')
        name = self.container_name(server)
        self.assert_only_nic_on_bridges(server, self.daemon, ports)
        self.wait_until(lambda: self.daemon.counter(name)[2] >= 2,
                        what='the counter to run')
        token, pid, count = self.daemon.counter(name)

        self.live_migrate(server)
        server = self.wait_for_landing(server)
        self.wait_migration(server, 'completed')
        self.assertNotIn(name, self.daemon.names())
        # The same process, with its memory, on host2.
        token2, pid2, count2 = self.second.counter(name)
        self.assertEqual((token, pid), (token2, pid2))
        self.assertGreaterEqual(count2, count)
        # Its NICs: the ports' MACs and MTU, each on its port's bridge,
        # which is in br-int with the port's iface-id; nothing of the
        # source's container left on the host.
        nics = self.container_nics(server, self.second)
        self.assertEqual({self.hybrid['mac_address'],
                          self.plain['mac_address']}, set(nics))
        self.assertEqual('eth0', nics[self.hybrid['mac_address']]['ifname'])
        self.assertEqual('eth1', nics[self.plain['mac_address']]['ifname'])
        peers = self.assert_only_nic_on_bridges(server, self.second, ports)

        self.delete_and_check(server, peers, ports)
        self.assertNotIn(name, self.second.names())

    def test_refused_move_keeps_the_nics_on_host1(self):
        # The container uses a profile the second daemon lacks: the source
        # refuses the move after host2's pre_live_migration plugged the
        # ports, and host2 rolls back.
        only_on_first = test_live_migration.ONLY_ON_FIRST
        self.daemon.ensure_profile(only_on_first, {'config': {}})
        self.second.delete_profile(only_on_first)
        self.flags(profiles=['default', only_on_first], group='syscontainer')
        ports = [self.hybrid, self.plain]
        server = self.boot_with(ports, host='host1')
        name = self.container_name(server)
        peers = self.assert_only_nic_on_bridges(server, self.daemon, ports)
        token, pid, _count = self.daemon.counter(name)

        self.live_migrate(server)
        self.wait_migration(server, 'error', 'failed', timeout=60)
        # host2's rollback (a cast) has run.
        self.notifier.wait_for_versioned_notifications(
            'instance.live_migration_rollback_dest.end', timeout=60)
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertIn('lacks the profile', self.stdlog.logger.output)
        self.assertNotIn(name, self.second.names())
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])
        self.assertEqual(peers, self.assert_only_nic_on_bridges(
            server, self.daemon, ports))
        self.delete_and_check(server, peers, ports)

    def test_aborted_move_keeps_the_nics_on_host1(self):
        ports = [self.hybrid, self.plain]
        server = self.boot_with(ports, host='host1')
        name = self.container_name(server)
        self.assert_only_nic_on_bridges(server, self.daemon, ports)
        token, pid, count = self.daemon.counter(name)
        # By then CRIU's checkpoint has left the container ends of the
        # NICs' veths on the host.
        migration = self.start_live_migration(server)
        self.abort_migration(server, migration)
        self.notifier.wait_for_versioned_notifications(
            'instance.live_migration_rollback_dest.end', timeout=60)
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertNotIn(name, self.second.names())
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])
        self.wait_until(lambda: self.daemon.counter(name)[2] > count,
                        what='the source counter to keep ticking')
        peers = self.assert_only_nic_on_bridges(server, self.daemon, ports)
        self.delete_and_check(server, peers, ports)

    def test_target_daemon_killed_nics_kept_then_unplugged_on_host2(self):
        # host2's daemon crashes (SIGKILL) about 2 s into the move, as in
        # test_live_migration.LiveMigrationTest, here with two ports.
        ports = [self.hybrid, self.plain]
        server = self.boot_with(ports, host='host1')
        name = self.container_name(server)
        self.assert_only_nic_on_bridges(server, self.daemon, ports)
        token, pid, _count = self.daemon.counter(name)
        self.start_live_migration(server)
        self.kill_target_daemon(server)
        self.notifier.wait_for_versioned_notifications(
            'instance.live_migration_rollback_dest.end', timeout=120)
        server = self.wait_for(server, 'ACTIVE', timeout=120)
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        value = self.daemon.counter(name)
        self.assertEqual((token, pid), value[:2])
        self.wait_until(lambda: self.daemon.counter(name)[2] > value[2] + 1,
                        what='the source counter to keep ticking')
        self.assert_only_nic_on_bridges(server, self.daemon, ports)
        # host2 could not clean its dead daemon: it remembers the instance.
        pending = self.computes['host2'].driver._pending_cleanups
        self.assertEqual([server['id']], pending.uuids())
        # On two machines nothing would use the ports on host2 any more;
        # here host1's stopped container does not either, which is what
        # host2's next resource update then sees, once its daemon is back:
        # it removes the leftover and unplugs the ports.
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        self.second.ensure_running()
        self.computes['host2'].manager.update_available_resource(self.ctxt)
        self.assertNotIn(name, self.second.names())
        self.assertEqual([], pending.uuids())
        for port in ports:
            self.assert_unplugged(port['id'])
        # host1 plugs them again when it starts the instance.
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        peers = self.assert_only_nic_on_bridges(server, self.daemon, ports)
        self.delete_and_check(server, peers, ports)

    def test_rollback_at_destination_unplugs_unused_ports(self):
        # On two machines, nothing on the destination uses the ports after
        # a failed move. Here the stopped instance on host1 has no NIC on
        # its ports' bridges, which is what host2's rollback then sees.
        ports = [self.hybrid, self.plain]
        server = self.boot_with(ports, host='host1')
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        for port in ports:
            qbr, qvb, _qvo = self.port_links(port['id'])
            self.assertEqual({qvb}, bridge_members(qbr))
        instance = self.instance(server)
        self.computes['host2'].driver.rollback_live_migration_at_destination(
            self.ctxt, instance, instance.get_network_info(),
            {'block_device_mapping': []}, destroy_disks=True,
            migrate_data=None)
        for port in ports:
            self.assert_unplugged(port['id'])
        # host1 plugs them again when it starts the instance.
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        peers = self.assert_only_nic_on_bridges(server, self.daemon, ports)
        self.delete_and_check(server, peers, ports)


class ColdMigrationNICsTest(NICMigrationTestCase):
    """Cold migration and resize to another host, with a port."""

    def test_cold_migrate_confirm_with_a_port(self):
        ports = [self.hybrid]
        server = self.boot_with(ports, host='host1')
        name = self.container_name(server)
        self.assert_only_nic_on_bridges(server, self.daemon, ports)
        server = self.action(server, {'migrate': {'host': 'host2'}},
                             'VERIFY_RESIZE', timeout=120)
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        # The stopped source copy has no NIC: only host2's hangs on the
        # port's bridge.
        self.assertEqual('Stopped', self.daemon.state(name)['status'])
        self.assert_only_nic_on_bridges(server, self.second, ports)

        server = self.action(server, {'confirmResize': None}, 'ACTIVE')
        self.assertNotIn(name, self.daemon.names())
        # Confirming on host1 kept the port host2's container uses.
        peers = self.assert_only_nic_on_bridges(server, self.second, ports)
        self.delete_and_check(server, peers, ports)
        self.assertNotIn(name, self.second.names())

    def nic_rates(self, server, daemon):
        """tc classes of the port's two shaping points, as text.

        To the container: the daemon's HTB on the NIC's host-side veth;
        from it: the driver's HTB on the port's qvb.
        """
        _nic, peer = self.assert_plugged(server, self.hybrid, daemon)
        qvb = self.port_links(self.hybrid['id'])[1]
        return (run('tc', 'class', 'show', 'dev', peer['ifname']),
                run('tc', 'class', 'show', 'dev', qvb))

    def test_resize_to_another_host_changes_nic_limits_and_revert(self):
        old = self.make_flavor('c1.shaped', extra_specs={
            'quota:vif_inbound_average': '1000',   # kB/s -> 8 Mbit/s in
            'quota:vif_outbound_average': '500'})  # kB/s -> 4 Mbit/s out
        new = self.make_flavor('c1.shaped2', extra_specs={
            'quota:vif_inbound_average': '2000',   # 16 Mbit/s in
            'quota:vif_outbound_average': '250'})  # 2 Mbit/s out
        ports = [self.hybrid]
        server = self.boot_with(ports, flavor_id=old, host='host1')
        name = self.container_name(server)
        inbound, outbound = self.nic_rates(server, self.daemon)
        self.assertIn('rate 8Mbit', inbound)
        self.assertIn('rate 4Mbit', outbound)

        server = self.action(server, {'resize': {'flavorRef': new}},
                             'VERIFY_RESIZE', timeout=120)
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        self.assert_only_nic_on_bridges(server, self.second, ports)
        inbound, outbound = self.nic_rates(server, self.second)
        self.assertIn('rate 16Mbit', inbound)
        self.assertNotIn('rate 8Mbit', inbound)
        self.assertIn('rate 2Mbit', outbound)
        self.assertNotIn('rate 4Mbit', outbound)

        server = self.action(server, {'revertResize': None}, 'ACTIVE',
                             timeout=120)
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        self.assertNotIn(name, self.second.names())
        peers = self.assert_only_nic_on_bridges(server, self.daemon, ports)
        inbound, outbound = self.nic_rates(server, self.daemon)
        self.assertIn('rate 8Mbit', inbound)
        self.assertNotIn('rate 16Mbit', inbound)
        self.assertIn('rate 4Mbit', outbound)
        self.assertNotIn('rate 2Mbit', outbound)
        self.delete_and_check(server, peers, ports)
