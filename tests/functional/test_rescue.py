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
"""Rescue and unrescue through Nova's API, on the real daemon.

The rescue container is read from the kernel's side (its init's root, its
network namespace) and the daemon's; the original container's record is
compared before and after.
"""

import gzip
import io
import os
import tarfile
import uuid

from nova_syscontainer.virt import console_log
from nova_syscontainer.virt import container
from nova_syscontainer.virt import rescue
from tests.functional import base
from tests.functional import guest
from tests.functional.ports import ip_links
from tests.functional.ports import PortsMixin
from tests.functional import shadow_image

QUOTA_POOL = 'quota'
MARKER = '/etc/rescue-marker'


def without_init():
    """An LXD unified image whose root has no /sbin/init: it cannot start.

    Its metadata.yaml has a ``properties`` map: LXD 5.0.2 panics (the
    daemon dies, images.go:715 "assignment to entry in nil map") importing
    an image without one when the request sets properties, as the driver's
    does.
    """
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode='w') as tar:
        for name, data in (
                ('metadata.yaml', b'architecture: x86_64\n'
                                  b'creation_date: 1700000000\n'
                                  b'properties:\n'
                                  b'  description: no init\n'),
                ('rootfs/etc/hostname', b'broken\n')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def kept(record):
    """What unrescue must give back.

    All but the daemon's volatile keys and the console log the driver
    keeps (console_log.KEY), which grows whenever the original stops, as
    a VM's console log file does.
    """
    return ({k: v for k, v in record['config'].items()
             if not k.startswith('volatile.') and k != console_log.KEY},
            record['devices'], record['profiles'])


class RescueTest(PortsMixin, base.SysContainerTestCase):

    def write_marker(self, name):
        marker = uuid.uuid4().hex
        self.daemon.lxd.api.instances[name].files.post(
            params={'path': MARKER}, data=marker.encode(),
            headers={'X-LXD-type': 'file', 'X-LXD-mode': '0644'})
        return marker

    def rescue(self, server, status='RESCUE', **body):
        return self.action(server, {'rescue': body or None}, status)

    def assert_rescued(self, server, name, marker):
        """The rescue container runs with the original's root inside."""
        self.assertEqual('Stopped', self.daemon.state(name)['status'])
        rescued = rescue.rescue_name(name)
        self.assertEqual('Running', self.daemon.state(rescued)['status'])
        self.assertEqual(marker, self.daemon.read_file(
            rescued, rescue.MOUNT_PATH + MARKER))
        # The rescue image's own root, not the original's.
        self.assertRaises(OSError, self.daemon.read_file, rescued, MARKER)
        # Nova shows what runs: the rescue container.
        self.assertEqual(1, self.api.get_server(server['id'])[
            'OS-EXT-STS:power_state'])
        # The driver's listing has one container for the instance.
        self.assertEqual([server['id']],
                         self.driver().list_instance_uuids())
        return rescued

    # -- tests -------------------------------------------------------------
    def test_rescue_shows_the_original_disk_and_unrescue_restores_it(self):
        self.set_up_ports()
        port = self.make_port({'ovs_hybrid_plug': True, 'port_filter': True})
        rescue_image = self.add_image(
            shadow_image.with_chpasswd(self.image_data), name='rescue')
        flavor = self.make_flavor('limited', memory_mb=192, extra_specs={
            'quota:cpu_shares': '512'})
        server = self.boot_with([port], flavor_id=flavor)
        name = self.container_name(server)
        marker = self.write_marker(name)
        before = kept(self.daemon.instance(name))
        memory = self.daemon.cgroup_value(name, 'memory',
                                          'memory.limit_in_bytes')

        server = self.rescue(server, adminPass='Rescue-pw-1',
                             rescue_image_ref=rescue_image)
        rescued = self.assert_rescued(server, name, marker)
        rec = self.daemon.instance(rescued)
        self.assertEqual(server['id'], rec['config'][rescue.RESCUE_KEY])
        self.assertEqual(rescue_image, rec['config'][container.IMAGE_KEY])
        # The flavor's limits and the port's NIC, on the port's bridge.
        self.assertEqual(memory, self.daemon.cgroup_value(
            rescued, 'memory', 'memory.limit_in_bytes'))
        nics = {link['address']: link for link in ip_links(
            self.daemon.init_pid(rescued)) if link.get('link_type') ==
            'ether'}
        self.assertEqual([port['mac_address']], list(nics))
        self.assertEqual(self.port_links(port['id'])[0],
                         self.host_peer(nics[port['mac_address']])['master'])
        # The rescue password, set by the rescue image's chpasswd.
        shadow = self.daemon.read_file(rescued, '/etc/shadow')
        self.assertTrue(shadow.startswith('root:$'), shadow)
        # Read-write, with the original's owners: root in the rescue
        # container is root of the original's files.
        guest.lxc_exec(self.daemon, rescued,
                       'echo fixed > %s/etc/fixed && chmod 600 %s/etc/fixed'
                       % (rescue.MOUNT_PATH, rescue.MOUNT_PATH))

        server = self.action(server, {'unrescue': None}, 'ACTIVE')
        self.assertNotIn(rescued, self.daemon.names())
        self.assertEqual(before, kept(self.daemon.instance(name)))
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual(marker, self.daemon.read_file(name, MARKER))
        self.assertEqual('fixed\n', self.daemon.read_file(name, '/etc/fixed'))
        root = '/proc/%d/root' % self.daemon.init_pid(name)
        self.assertEqual(os.stat(root).st_uid,
                         os.stat(root + '/etc/fixed').st_uid)
        self.assertEqual(memory, self.daemon.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
        self.assert_plugged(server, port)
        self.assertGreater(self.daemon.counter(name)[2], 0)
        # The port's host plumbing goes with the server (checked at
        # cleanup by assert_no_port_left).
        self._delete_server(server)

    def test_rescue_on_btrfs_and_delete_while_rescued(self):
        self.flags(storage_pool=QUOTA_POOL, group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        server = self.boot(flavor_id=self.make_flavor('disk1', disk=1))
        name = self.container_name(server)
        marker = self.write_marker(name)
        before = kept(self.daemon.instance(name))
        self.assertEqual('1GiB', before[1]['root']['size'])

        # No image named: Nova rescues with the instance's own image.
        server = self.rescue(server)
        rescued = self.assert_rescued(server, name, marker)
        self.assertEqual(before[1]['root'],
                         self.daemon.instance(rescued)['devices']['root'])
        server = self.action(server, {'unrescue': None}, 'ACTIVE')
        self.assertEqual(before, kept(self.daemon.instance(name)))
        self.assertEqual(marker, self.daemon.read_file(name, MARKER))

        server = self.rescue(server)
        self._delete_server(server)
        self.assertEqual([], [n for n in self.daemon.names()
                              if n in (name, rescued)])

    def test_failed_rescue_leaves_the_original_untouched(self):
        broken = self.add_image(without_init(), name='no-init')
        server = self.boot()
        name = self.container_name(server)
        marker = self.write_marker(name)
        before = kept(self.daemon.instance(name))

        # The daemon creates the rescue container, then cannot start it.
        server = self.rescue(server, 'ERROR', rescue_image_ref=broken)
        # Nova 34's manager puts the server in ERROR on any driver error
        # of a rescue; the driver has removed the rescue container and
        # started the original again, unchanged.
        self.assertIn('Driver Error', server['fault']['message'])
        self.assertNotIn(rescue.rescue_name(name), self.daemon.names())
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual(before, kept(self.daemon.instance(name)))
        self.assertEqual(marker, self.daemon.read_file(name, MARKER))
        self.assertIn('Rescue failed; removing', self.stdlog.logger.output)

        # A hard reboot (allowed from ERROR) makes it ACTIVE again.
        server = self.action(server, {'reboot': {'type': 'HARD'}}, 'ACTIVE')
        self.assertEqual(marker, self.daemon.read_file(name, MARKER))
