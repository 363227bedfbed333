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
"""Neutron ports on the real host plumbing, for the functional tests.

Nova's NeutronFixture hands out the ports; the driver plugs them through
os-vif into the real OVS integration bridge (tools/setup-host.sh: br-int
on OVS's userspace datapath) and the daemon gives the container its NICs.
:class:`FakeOVSAgent`, a small stand-in for Neutron's OVS agent, watches
the real OVS database and sends network-vif-plugged to Nova's API when a
port's interface is in the bridge, so spawn really waits for the events
as Nova expects.

Proof is read from the kernel and OVS: the container's own network
namespace (nsenter + ip), the host's interfaces and bridges, ovs-vsctl,
and tc. No interface ever gets an address.
"""

import copy
import json
import os
import subprocess
import threading
import uuid

MTU = 1450  # network_1 of Nova's NeutronFixture


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout


def ip_links(pid=None):
    """``ip -j -d link`` of the host, or of a process's netns."""
    prefix = ('nsenter', '-t', str(pid), '-n') if pid else ()
    return json.loads(run(*prefix, 'ip', '-j', '-d', 'link', 'show'))


def ovs_interfaces():
    out = json.loads(run('ovs-vsctl', '--timeout=10', '--format=json',
                         '--columns=name,ofport,external_ids', 'list',
                         'Interface'))
    rows = []
    for name, ofport, ext in out['data']:
        rows.append({'name': name, 'ofport': ofport,
                     'external_ids': dict(ext[1])})
    return rows


def host_link_exists(name):
    return os.path.exists('/sys/class/net/%s' % name)


def bridge_members(bridge):
    path = '/sys/class/net/%s/brif' % bridge
    return set(os.listdir(path)) if os.path.isdir(path) else set()


class FakeOVSAgent(object):
    """Neutron's OVS agent, as far as Nova can tell.

    Polls the real OVS database; once an interface carrying a port's
    ``iface-id`` has an OpenFlow port number (it is really in the bridge),
    sends network-vif-plugged for it to Nova's API, once per plug.
    """

    def __init__(self, api, port_ids):
        self.api = api
        self.port_ids = port_ids
        self.sent = []
        self._seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def _loop(self):
        while not self._stop.wait(0.2):
            try:
                rows = ovs_interfaces()
            except Exception:
                continue
            for row in rows:
                ext = row['external_ids']
                port = ext.get('iface-id')
                if (port not in self.port_ids or
                        not isinstance(row['ofport'], int) or
                        row['ofport'] <= 0):
                    continue
                key = (row['name'], ext.get('vm-uuid'))
                if key in self._seen:
                    continue
                self._seen.add(key)
                try:
                    self.api.create_server_external_events([{
                        'name': 'network-vif-plugged',
                        'server_uuid': ext['vm-uuid'],
                        'tag': port, 'status': 'completed'}])
                    self.sent.append(port)
                except Exception:
                    self._seen.discard(key)


class PortsMixin(object):
    """Ports, the fake agent and checks of the plumbing, for a test case.

    Mixed into a :class:`tests.functional.base.SysContainerTestCase`;
    call :meth:`set_up_ports` from setUp.
    """

    def set_up_ports(self):
        # NeutronFixture turns waiting off (vif_plugging_timeout=0); the
        # fake agent sends the events, so wait as a real cloud does.
        self.flags(vif_plugging_timeout=60, vif_plugging_is_fatal=True)
        self.flags(ovs_datapath_type='netdev', group='syscontainer')
        self.ports = {}
        # The agent watches self.ports, which make_port fills later.
        self.addCleanup(self.remove_port_links)
        self.agent = FakeOVSAgent(self.admin_api, self.ports)
        self.agent.start()
        self.addCleanup(self.agent.stop)
        # Cleanups run last-in first-out: a failed test's leftovers are
        # removed after the check that reports them.
        self.addCleanup(self.assert_no_port_left)

    def remove_port_links(self):
        for port_id in self.ports:
            qbr, qvb, qvo = self.port_links(port_id)
            subprocess.run(['ovs-vsctl', '--timeout=10', '--if-exists',
                            'del-port', qvo], capture_output=True)
            for name in (qvb, qbr):
                if host_link_exists(name):
                    subprocess.run(['ip', 'link', 'del', name],
                                   capture_output=True)

    def make_port(self, vif_details, vif_type='ovs'):
        port = copy.deepcopy(self.neutron.port_1)
        port_id = str(uuid.uuid4())
        mac = 'fa:16:3e:%02x:%02x:%02x' % tuple(uuid.uuid4().bytes[:3])
        # The fixed IP stays Neutron data: nothing here configures it on
        # any interface.
        port['fixed_ips'][0]['ip_address'] = '192.168.1.%d' % (
            100 + len(self.ports))
        port.update({'id': port_id, 'mac_address': mac, 'status': 'DOWN',
                     'binding:vif_details': vif_details,
                     'binding:vif_type': vif_type})
        self.neutron._ports[port_id] = port
        self.ports[port_id] = port
        return port

    def boot_with(self, ports, flavor_id=None, expected_state='ACTIVE',
                  **kwargs):
        server = self._build_server(
            name='net', image_uuid=self.image_id,
            flavor_id=flavor_id or self.flavor_id,
            networks=[{'port': p['id']} for p in ports], **kwargs)
        server = self.api.post_server({'server': server})
        return self.wait_for(server, expected_state)

    # -- reading the real plumbing ------------------------------------------
    def container_nics(self, server, daemon=None):
        """{mac: link} of the container's NICs, read in its netns."""
        daemon = daemon or self.daemon
        pid = daemon.init_pid(self.container_name(server))
        return {link['address']: link for link in ip_links(pid)
                if link.get('link_type') == 'ether'}

    def host_peer(self, nic):
        """The host-side veth of a container NIC (by its peer index)."""
        for link in ip_links():
            if link['ifindex'] == nic['link_index']:
                return link
        self.fail('no host peer for %s' % nic['ifname'])

    def assert_plugged(self, server, port, daemon=None):
        nic = self.container_nics(server, daemon)[port['mac_address']]
        self.assertEqual(MTU, nic['mtu'])
        peer = self.host_peer(nic)
        qbr, qvb, qvo = self.port_links(port['id'])
        # The container's NIC hangs on the port's bridge...
        self.assertEqual(qbr, peer.get('master'))
        self.assertEqual(MTU, peer['mtu'])
        self.assertEqual(qbr, self.link(qvb).get('master'))
        # ... which reaches the integration bridge through the port's OVS
        # port, carrying the ids Neutron's agent binds by.
        self.assertEqual('br-int', run('ovs-vsctl', 'port-to-br',
                                       qvo).strip())
        row = [r for r in ovs_interfaces() if r['name'] == qvo][0]
        self.assertEqual(port['id'], row['external_ids']['iface-id'])
        self.assertEqual(port['mac_address'],
                         row['external_ids']['attached-mac'])
        self.assertEqual(server['id'], row['external_ids']['vm-uuid'])
        self.assertGreater(row['ofport'], 0)
        return nic, peer

    def link(self, name):
        return json.loads(run('ip', '-j', '-d', 'link', 'show', name))[0]

    def port_links(self, port_id):
        return [(prefix + port_id)[:14] for prefix in ('qbr', 'qvb', 'qvo')]

    def assert_unplugged(self, port_id):
        for name in self.port_links(port_id):
            self.assertFalse(host_link_exists(name), name)
        self.assertNotIn(port_id, [
            r['external_ids'].get('iface-id') for r in ovs_interfaces()])

    def stale_links(self):
        """Host interfaces carrying one of the ports' MACs.

        A container's NIC lives in its namespace: on the host, such an
        interface is the container end of a veth pair left behind.
        """
        macs = {p['mac_address'] for p in self.ports.values()}
        return [link['ifname'] for link in ip_links()
                if link.get('address') in macs]

    def assert_no_port_left(self):
        for port_id in self.ports:
            self.assert_unplugged(port_id)
        self.assertEqual([], self.stale_links())
