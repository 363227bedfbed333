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
"""Snapshots (createImage) and backups (createBackup) through Nova's API.

The server runs on the real daemon; the Glance side is Nova's Glance
fixture with :class:`glance_store.UploadStore`, so the uploaded bytes are
kept and the snapshot is booted again through the driver.
"""

import uuid

import fixtures

from nova_syscontainer.virt import container
from nova_syscontainer.virt import image as images
from nova_syscontainer.virt import snapshot as snapshots
from tests.functional import base
from tests.functional import glance_store


class SnapshotTest(base.SysContainerTestCase):

    def setUp(self):
        super().setUp()
        self.store = self.useFixture(glance_store.UploadStore(
            self.glance, self.useFixture(fixtures.TempDir()).path))

    # -- helpers -----------------------------------------------------------
    def write_marker(self, name, path, data):
        """A file on the container's root fs, through the daemon's file API."""
        self.daemon.lxd.api.instances[name].files.post(
            params={'path': path}, data=data,
            headers={'X-LXD-type': 'file', 'X-LXD-mode': '0644'})

    def snapshots_of(self, name):
        return self.daemon.lxd.api.instances[name].snapshots.get().json()[
            'metadata']

    def assert_nothing_left(self, name, image_id):
        self.assertEqual([], self.snapshots_of(name))
        self.assertEqual([], snapshots.leftovers(self.daemon.images(),
                                                 image_id))

    def create_image(self, server, body, status='ACTIVE'):
        image_id = self.api.post_server_action(
            server['id'], body)['image_id']
        server = self.wait_for(server, status)
        return image_id, server

    # -- tests ---------------------------------------------------------------
    def test_snapshot_of_running_server_boots_again(self):
        server = self.boot()
        name = self.container_name(server)
        marker = uuid.uuid4().hex
        self.write_marker(name, '/etc/snapshot-marker', marker.encode())
        token, pid, count = self.daemon.counter(name)

        image_id, server = self.create_image(
            server, {'createImage': {'name': 'snap1'}})

        # The container never stopped: same boot, same init, still counting.
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('Running', self.daemon.state(name)['status'])
        token2, pid2, _count = self.daemon.counter(name)
        self.assertEqual((token, pid), (token2, pid2))
        self.wait_until(lambda: self.daemon.counter(name)[2] > count,
                        what='the counter to go on counting')
        # Glance holds an active LXD unified tarball in the formats the
        # driver boots, with Nova's snapshot properties.
        meta = self.glance.show(self.ctxt, image_id)
        self.assertEqual('active', meta['status'])
        self.assertEqual(('bare', 'raw'), (meta['container_format'],
                                           meta['disk_format']))
        self.assertEqual('snapshot', meta['properties']['image_location'])
        self.assertGreater(meta['size'], 100 * 1024)
        images.check_lxd_tarball(image_id, self.store.path(image_id))
        self.assertLessEqual(self.store.largest_read, glance_store.CHUNK)
        self.assert_nothing_left(name, image_id)

        clone = self.boot(name='clone', image_id=image_id)
        clone_name = self.container_name(clone)
        self.assertEqual(marker, self.daemon.read_file(
            clone_name, '/etc/snapshot-marker'))
        self.assertGreater(self.daemon.counter(clone_name)[2], 0)

    def test_failed_snapshot_leaves_server_active_and_nothing_behind(self):
        # The Glance image is deleted before the driver uploads to it (as
        # a user may): Glance refuses the upload with ImageNotFound after
        # the daemon snapshotted and published. Nova abandons the
        # snapshot; the server stays ACTIVE and the daemon keeps nothing.
        server = self.boot()
        name = self.container_name(server)
        token, pid, _count = self.daemon.counter(name)
        seen = []

        def delete_first(image_id):
            seen.append(snapshots.leftovers(self.daemon.images(), image_id))
            self.glance.delete(self.ctxt, image_id)
        self.store.before_upload = delete_first

        image_id, server = self.create_image(
            server, {'createImage': {'name': 'doomed'}})

        self.assertEqual(1, len(seen))
        self.assertEqual(1, len(seen[0]), 'the daemon had published it')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])
        self.assertNotIn(image_id, self.glance.images)
        self.assert_nothing_left(name, image_id)
        self.assertIn('Snapshot %s failed; removing' % image_id,
                      self.stdlog.logger.output)

    def test_create_backup_rotation_keeps_two(self):
        server = self.boot()
        name = self.container_name(server)
        backups = []
        for i in range(3):
            image_id, server = self.create_image(server, {'createBackup': {
                'name': 'backup-%d' % i, 'backup_type': 'daily',
                'rotation': 2}})
            self.assertEqual('active',
                             self.glance.show(self.ctxt, image_id)['status'])
            backups.append(image_id)
            self.assert_nothing_left(name, image_id)

        def left():
            return sorted(img['id'] for img in self.glance.detail(
                self.ctxt, filters={'property-image_type': 'backup',
                                    'property-instance_uuid': server['id']}))
        # Nova rotates after the snapshot's task state was cleared.
        self.wait_until(lambda: len(left()) <= 2, what='the rotation')
        self.assertEqual(sorted(backups[1:]), left())
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('Running', self.daemon.state(name)['status'])

    def test_shelve_offload_and_unshelve_keep_the_root_fs(self):
        # Shelve is a snapshot of the stopped container, then its removal;
        # unshelve boots the snapshot again.
        self.flags(shelved_offload_time=0)
        server = self.boot()
        name = self.container_name(server)
        marker = uuid.uuid4().hex
        self.write_marker(name, '/etc/snapshot-marker', marker.encode())

        server = self.action(server, {'shelve': None}, 'SHELVED_OFFLOADED')
        self.assertNotIn(name, self.daemon.names())
        published = [rec for rec in self.daemon.images()
                     if snapshots.SNAPSHOT_PROPERTY in (
                         rec.get('properties') or {}) and
                     images.OWNER_PROPERTY not in rec['properties']]
        self.assertEqual([], published)

        server = self.action(server, {'unshelve': None}, 'ACTIVE')
        name = self.container_name(server)
        self.assertEqual(marker, self.daemon.read_file(
            name, '/etc/snapshot-marker'))
        self.assertGreater(self.daemon.counter(name)[2], 0)


class UnshelveElsewhereTest(base.TwoHostsTestCase):
    """Shelve-offload on host1, unshelve onto host2 (the second daemon)."""

    def setUp(self):
        super().setUp()
        self.store = self.useFixture(glance_store.UploadStore(
            self.glance, self.useFixture(fixtures.TempDir()).path))

    def test_unshelve_to_the_other_host_keeps_the_root_fs(self):
        self.flags(shelved_offload_time=0)
        server = self.boot(host='host1')
        name = self.container_name(server)
        marker = uuid.uuid4().hex
        self.daemon.lxd.api.instances[name].files.post(
            params={'path': '/etc/snapshot-marker'}, data=marker.encode(),
            headers={'X-LXD-type': 'file', 'X-LXD-mode': '0644'})

        server = self.action(server, {'shelve': None}, 'SHELVED_OFFLOADED')
        self.assertNotIn(name, self.daemon.names())
        # Unshelve to a named host: API 2.91, admin.
        server = self.action(server, {'unshelve': {'host': 'host2'}},
                             'ACTIVE')
        self.assertEqual('host2', server['OS-EXT-SRV-ATTR:host'])
        name = self.container_name(server)
        self.assertNotIn(name, self.daemon.names())
        rec = self.second.instance(name)
        self.assertEqual('Running', rec['status'])
        self.assertEqual('host2', rec['config'][container.HOST_KEY])
        self.assertEqual(marker, self.second.read_file(
            name, '/etc/snapshot-marker'))
        self.assertGreater(self.second.counter(name)[2], 0)
        # Nothing the snapshot published is left in either daemon.
        for daemon in (self.daemon, self.second):
            self.assertEqual([], [
                rec['fingerprint'] for rec in daemon.images()
                if snapshots.SNAPSHOT_PROPERTY in (
                    rec.get('properties') or {}) and
                images.OWNER_PROPERTY not in rec['properties']])
