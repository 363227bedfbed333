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
"""Images refused before the daemon unpacks them; a stalled Glance."""

import os
import threading

from nova import conf

from nova_syscontainer.virt import image as images
from tests.functional import base
from tests.functional import faults

CONF = conf.CONF


class StallingGlance(object):
    """Glance's download for chosen images sends 64 KiB, then stalls."""

    def __init__(self, glance):
        self.glance = glance
        self.stalled = set()
        self.release = threading.Event()
        self.original = glance.download
        glance.download = self.download

    def download(self, context, image_id, data=None, dst_path=None,
                 trusted_certs=None):
        if image_id not in self.stalled or data is None:
            return self.original(context, image_id, data=data,
                                 dst_path=dst_path,
                                 trusted_certs=trusted_certs)
        data.write(b'\x1f\x8b' + b'\0' * (64 * 1024 - 2))
        self.release.wait(60)

    def stop(self):
        self.release.set()
        self.glance.download = self.original


class ImageSafetyTest(base.SysContainerTestCase):

    def ours(self, image_id):
        alias = images.alias_for(image_id)
        return [img for img in self.daemon.images()
                if alias in [a['name'] for a in img.get('aliases') or []]]

    def spool(self):
        spool = CONF.syscontainer.image_spool_dir
        return os.listdir(spool) if os.path.isdir(spool) else []

    def refused(self, image_id, words, **kwargs):
        server = self.boot(image_id=image_id, expected_state='ERROR',
                           **kwargs)
        self.assertIn(words, server['fault']['message'])
        self.assertNotIn(self.container_name(server), self.daemon.names())
        self.assertEqual([], self.ours(image_id))
        self.assertEqual([], self.spool())
        return server

    def test_stalled_download_releases_the_lock(self):
        self.flags(image_download_stall_timeout=2, group='syscontainer')
        stalling = StallingGlance(self.glance)
        self.addCleanup(stalling.stop)
        image_id = self.add_image(faults.with_members(self.image_data))
        stalling.stalled.add(image_id)
        self.refused(image_id, 'no data arrived for 2 s')
        # The image lock is free again: the same image, no longer stalled,
        # boots (and is imported once, now).
        stalling.stalled.discard(image_id)
        server = self.boot(image_id=image_id)
        self.assertEqual(1, len(self.ours(image_id)))
        self._delete_server(server)

    def test_image_larger_than_root_disk_refused(self):
        # The quota pool enforces root disk sizes, so a disk flavor builds.
        self.flags(storage_pool='quota', group='syscontainer')
        self.restart_compute_service(self.compute)
        flavor = self.make_flavor('d1', disk=1)
        image_id = self.add_image(faults.bomb(self.image_data,
                                              declared=2 * 1024 ** 3))
        server = self.refused(image_id, "than the flavor's root disk of 1 GiB",
                              flavor_id=flavor)
        self.assertIn('unpacks to at least', server['fault']['message'])

    def test_hashless_image_refused(self):
        data = faults.with_members(self.image_data)
        image_id = self.add_image(data)
        image = self.glance.images[image_id]
        for key in ('checksum', 'os_hash_algo', 'os_hash_value'):
            image.pop(key, None)
        self.refused(image_id, 'has no hash in Glance')
