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
"""ImageStore's import policy: hashes, download bounds, root disk fit."""

import hashlib
import io
import os
import tarfile
import tempfile
import threading
import unittest

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import image


def unified_tarball():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tar:
        for name, data in (('metadata.yaml',
                            b'architecture: x86_64\nproperties: {}\n'),
                           ('rootfs/etc/hostname', b'x' * 1000)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeGlance(object):

    def __init__(self, data, hashed=True, stall=None):
        self.data = data
        self.hashed = hashed
        self.stall = stall
        self.downloads = 0

    def get(self, context, image_id):
        meta = {'id': image_id, 'container_format': 'bare',
                'disk_format': 'raw', 'size': len(self.data)}
        if self.hashed:
            meta.update(os_hash_algo='sha512',
                        os_hash_value=hashlib.sha512(self.data).hexdigest())
        return meta

    def download(self, context, image_id, data=None, trusted_certs=None):
        self.downloads += 1
        data.write(self.data[:100])
        if self.stall is not None:
            self.stall.wait(30)
        data.write(self.data[100:])


class FakeDaemon(object):

    def __init__(self):
        self.images = {}
        self.aliases = {}

    def get_alias(self, alias):
        return self.aliases.get(alias)

    def get_image(self, fingerprint):
        return self.images.get(fingerprint)

    def upload_image(self, data, headers, description):
        body = data.read()
        fingerprint = hashlib.sha256(body).hexdigest()
        props = dict(p.split('=', 1) for p in
                     headers['X-LXD-properties'].split('&'))
        self.images[fingerprint] = {'fingerprint': fingerprint,
                                    'properties': props}
        return fingerprint

    def create_alias(self, alias, fingerprint, description=''):
        self.aliases[alias] = {'target': fingerprint}


class StoreTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.override('image_spool_dir', self.dir.name)
        self.data = unified_tarball()
        self.daemon = FakeDaemon()

    def override(self, name, value):
        sc_conf.CONF.set_override(name, value, group='syscontainer')
        self.addCleanup(sc_conf.CONF.clear_override, name,
                        group='syscontainer')

    def store(self, glance):
        return image.ImageStore(self.daemon, image_api=glance)

    def assert_spool_empty(self):
        self.assertEqual([], os.listdir(self.dir.name))

    def test_import_records_unpacked_size(self):
        fingerprint, new = self.store(FakeGlance(self.data)).ensure(
            None, 'img', root_gb=1)
        self.assertTrue(new)
        metadata = b'architecture: x86_64\nproperties: {}\n'
        self.assertEqual(str(len(metadata) + 1000),
                         self.daemon.images[fingerprint]['properties'][
                             image.UNPACKED_PROPERTY])
        self.assert_spool_empty()

    def test_cached_image_checked_against_the_flavor(self):
        store = self.store(FakeGlance(self.data))
        fingerprint, _new = store.ensure(None, 'img')
        self.daemon.images[fingerprint]['properties'][
            image.UNPACKED_PROPERTY] = str(3 * 1024 ** 3)
        self.assertRaises(exception.ImageTooLarge, store.ensure, None, 'img',
                          root_gb=2)
        self.assertEqual((fingerprint, False),
                         store.ensure(None, 'img', root_gb=0))

    def test_hashless_image_refused_before_download(self):
        glance = FakeGlance(self.data, hashed=False)
        self.assertRaises(exception.UnverifiedImage,
                          self.store(glance).ensure, None, 'img')
        self.assertEqual(0, glance.downloads)
        self.assert_spool_empty()

    def test_hashless_image_accepted_when_allowed(self):
        self.override('image_require_hash', False)
        self.store(FakeGlance(self.data, hashed=False)).ensure(None, 'img')

    def test_stalled_download_abandoned(self):
        self.override('image_download_stall_timeout', 1)
        stall = threading.Event()
        self.addCleanup(stall.set)
        with self.assertRaises(exception.ImageDownloadTimeout) as ctx:
            self.store(FakeGlance(self.data, stall=stall)).ensure(None, 'img')
        self.assertIn('no data arrived for 1 s after 100 bytes',
                      str(ctx.exception))
        self.assert_spool_empty()
        self.assertEqual({}, self.daemon.images)

    def test_slow_download_abandoned(self):
        self.override('image_download_timeout', 1)
        stall = threading.Event()
        self.addCleanup(stall.set)
        with self.assertRaises(exception.ImageDownloadTimeout) as ctx:
            self.store(FakeGlance(self.data, stall=stall)).ensure(None, 'img')
        self.assertIn('more than 1 s', str(ctx.exception))

    def test_download_larger_than_glance_size_stopped(self):
        self.override('image_max_download_mb', 1)
        glance = FakeGlance(self.data + b'\0' * (2 * 1024 ** 2))
        glance.get = lambda ctx, image_id: dict(
            FakeGlance.get(glance, ctx, image_id), size=0)
        self.assertRaises(exception.ImageScanLimit,
                          self.store(glance).ensure, None, 'img')
        self.assert_spool_empty()

    def test_setuid_refused_where_privileged_allowed(self):
        self.override('allow_privileged', True)
        self.assertTrue(image.scan_bounds().refuse_setuid)
        self.override('allow_privileged', False)
        self.assertFalse(image.scan_bounds().refuse_setuid)
        self.override('image_setuid_files', 'refuse')
        self.assertTrue(image.scan_bounds().refuse_setuid)
