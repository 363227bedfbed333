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
"""Glance images into the real daemon: import once, verify, refuse, expire."""

import gzip
import io
import os
import tarfile
import uuid

from nova import conf

from nova_syscontainer.virt import image as images
from tests.functional import base


CONF = conf.CONF


def variant(data):
    """The test image with one extra file: same OS, a fingerprint of its own.

    Each test gets an image the daemon has never seen, so that it starts
    from an empty cache whatever ran before.
    """
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as src, \
            tarfile.open(fileobj=out, mode='w') as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member)
                        if member.isfile() else None)
        tag = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo('rootfs/etc/variant')
        info.size = len(tag)
        dst.addfile(info, io.BytesIO(tag))
    return gzip.compress(out.getvalue(), compresslevel=1)


def plain_tarball(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w:gz') as tar:
        for name in members:
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b'data'))
    return out.getvalue()


def root_tarball(data):
    """The test image's rootfs as distributions publish one for containers.

    Members ``./etc/...`` and no metadata.yaml (like Ubuntu's
    ``*-root.tar.xz``), xz-compressed, with a file of its own so that each
    test's image is new to the daemon.
    """
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as src, \
            tarfile.open(fileobj=out, mode='w:xz') as dst:
        for member in src:
            if member.name != 'rootfs' and not member.name.startswith(
                    'rootfs/'):
                continue
            content = src.extractfile(member) if member.isfile() else None
            member.name = '.' + member.name[len('rootfs'):]
            dst.addfile(member, content)
        tag = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo('./etc/variant')
        info.size = len(tag)
        dst.addfile(info, io.BytesIO(tag))
    return out.getvalue()


class ImageTest(base.SysContainerTestCase):

    def ours(self, image_id):
        alias = images.alias_for(image_id)
        return [img for img in self.daemon.images()
                if alias in [a['name'] for a in img.get('aliases') or []]]

    def assert_nothing_left(self, server):
        name = self.container_name(server)
        self.assertNotIn(name, self.daemon.names())
        spool = CONF.syscontainer.image_spool_dir
        self.assertEqual([], os.listdir(spool) if os.path.isdir(spool)
                         else [])

    def test_concurrent_spawns_import_once_and_reuse(self):
        image_id = self.add_image(variant(self.image_data))
        self.assertEqual([], self.ours(image_id))
        server = self._build_server(
            image_uuid=image_id, flavor_id=self.flavor_id, networks='none')
        server['min_count'] = 3
        self.api.post_server({'server': server})
        servers = self.api.get_servers(detail=True)
        for srv in servers:
            self.wait_for(srv, 'ACTIVE')
        self.assertEqual(3, len(servers))
        imported = [line for line in self.stdlog.logger.output.splitlines()
                    if 'Imported image %s' % image_id in line]
        self.assertEqual(1, len(imported), imported)
        self.assertEqual(1, len(self.ours(image_id)))
        fingerprint = self.ours(image_id)[0]['fingerprint']
        for srv in servers:
            rec = self.daemon.instance(self.container_name(srv))
            self.assertEqual(fingerprint, rec['config']['volatile.base_image'])

    def test_unused_images_removed_by_cache_manager(self):
        self.flags(remove_unused_original_minimum_age_seconds=0,
                   group='image_cache')
        kept_id = self.add_image(variant(self.image_data))
        gone_id = self.add_image(variant(self.image_data))
        kept = self.boot(image_id=kept_id)
        gone = self.boot(image_id=gone_id)
        self._delete_server(gone)
        self.assertEqual(1, len(self.ours(gone_id)))

        self.compute.manager._run_image_cache_manager_pass(self.ctxt)

        self.assertEqual([], self.ours(gone_id))
        self.assertEqual(1, len(self.ours(kept_id)))
        self.assertEqual('Running', self.daemon.state(
            self.container_name(kept))['status'])

    def test_young_unused_image_kept(self):
        self.flags(remove_unused_original_minimum_age_seconds=3600,
                   group='image_cache')
        image_id = self.add_image(variant(self.image_data))
        self._delete_server(self.boot(image_id=image_id))
        self.compute.manager._run_image_cache_manager_pass(self.ctxt)
        self.assertEqual(1, len(self.ours(image_id)))

    def _boot_refused(self, image_id, message):
        server = self.boot(image_id=image_id, expected_state='ERROR')
        self.assertIn(message, server['fault']['message'])
        self.assert_nothing_left(server)
        self.assertEqual([], self.ours(image_id))
        return server

    def test_qcow2_refused(self):
        image_id = self.add_image(self.image_data, disk_format='qcow2')
        self._boot_refused(image_id, 'is not a system container image')

    def test_corrupt_data_refused(self):
        image_id = self.add_image(self.image_data, glance_hash='0' * 128)
        self._boot_refused(image_id, "hash does not match Glance's")

    def test_tarball_without_metadata_refused(self):
        image_id = self.add_image(plain_tarball(['rootfs/bin/sh']))
        self._boot_refused(image_id, 'lacks metadata.yaml')

    def test_not_a_tarball_refused(self):
        image_id = self.add_image(os.urandom(64 * 1024))
        self._boot_refused(image_id, 'not a readable tarball')

    def test_root_tar_boots_with_metadata_from_properties(self):
        image_id = self.add_image(
            root_tarball(self.image_data), disk_format='root-tar',
            properties={'os_distro': 'busybox', 'os_version': '1.35'})
        server = self.boot(image_id=image_id)
        name = self.container_name(server)
        # The rootfs really is the container's: busybox init runs the
        # image's counter.
        self.daemon.counter(name)
        [record] = self.ours(image_id)
        self.assertEqual('x86_64', record['architecture'])
        self.assertEqual('busybox', record['properties']['os'])
        self.assertEqual('1.35', record['properties']['release'])
        self.assertEqual(image_id, record['properties'][images.OWNER_PROPERTY])
        self._delete_server(server)

    def test_unified_image_as_root_tar_refused(self):
        image_id = self.add_image(variant(self.image_data),
                                  disk_format='root-tar')
        self._boot_refused(image_id, '--disk-format raw')

    def test_cache_image_preloads(self):
        image_id = self.add_image(variant(self.image_data))
        self.assertTrue(self.driver().cache_image(self.ctxt, image_id))
        self.assertFalse(self.driver().cache_image(self.ctxt, image_id))
        self.assertEqual(1, len(self.ours(image_id)))
