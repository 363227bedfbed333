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
"""Nova's Glance fixture made to keep what a snapshot uploads.

Nova's GlanceFixture (nova/tests/fixtures/glance.py) drops the data passed
to ``update`` and ignores ``detail``'s filters and sort. A snapshot must be
read back and booted, and createBackup's rotation lists backups with
filters, so :class:`UploadStore` makes the fixture behave as Glance does
there: ``update(data=...)`` reads the data in chunks (as glanceclient does)
into a file, records its size and hashes and marks the image active;
``download`` streams that file back; ``detail`` honours
``filters={'property-<key>': value}`` and ``sort_key``/``sort_dir``;
``create`` gives each image its own, increasing, ``created_at``.
"""

import datetime
import hashlib
import os
import time

import fixtures
from nova import exception

CHUNK = 64 * 1024


class UploadStore(fixtures.Fixture):

    def __init__(self, glance, directory):
        super().__init__()
        self.glance = glance
        self.directory = directory
        #: Called with the image id just before an upload, if set.
        self.before_upload = None
        #: Largest read the uploader was asked for (never the whole image).
        self.largest_read = 0
        #: Seconds of the last upload spent waiting on ``data.read`` and
        #: spent on the store's own work (write, md5, sha512).
        self.read_seconds = self.store_seconds = 0.0
        self._paths = {}
        self._clock = datetime.datetime(2026, 1, 1)

    def _setUp(self):
        for name in ('create', 'update', 'download', 'detail'):
            original = getattr(self.glance, name)
            setattr(self.glance, name, getattr(self, '_' + name)(original))
            self.addCleanup(setattr, self.glance, name, original)

    def path(self, image_id):
        return self._paths[image_id]

    def _create(self, original):
        def create(context, metadata, data=None):
            if not metadata.get('created_at'):
                self._clock += datetime.timedelta(seconds=1)
                metadata['created_at'] = self._clock
            return original(context, metadata, data=data)
        return create

    def _update(self, original):
        def update(context, image_id, metadata, data=None,
                   purge_props=False):
            if data is not None and self.before_upload:
                self.before_upload(image_id)
            # Glance v2 as Nova's client drives it: metadata, then data.
            image = original(context, image_id, metadata,
                             purge_props=purge_props)
            if data is None:
                return image
            path = os.path.join(self.directory, image_id)
            md5, sha512, size = hashlib.md5(), hashlib.sha512(), 0
            self.read_seconds = self.store_seconds = 0.0
            with open(path, 'wb') as f:
                while True:
                    start = time.monotonic()
                    chunk = data.read(CHUNK)
                    read = time.monotonic()
                    self.read_seconds += read - start
                    self.largest_read = max(self.largest_read, len(chunk))
                    if not chunk:
                        break
                    f.write(chunk)
                    md5.update(chunk)
                    sha512.update(chunk)
                    size += len(chunk)
                    self.store_seconds += time.monotonic() - read
            if image_id not in self.glance.images:
                raise exception.ImageNotFound(image_id=image_id)
            self._paths[image_id] = path
            image.update(status='active', size=size,
                         checksum=md5.hexdigest(), os_hash_algo='sha512',
                         os_hash_value=sha512.hexdigest())
            return image
        return update

    def _download(self, original):
        def download(context, image_id, data=None, dst_path=None,
                     trusted_certs=None):
            if image_id not in self._paths or data is None:
                return original(context, image_id, data=data,
                                dst_path=dst_path,
                                trusted_certs=trusted_certs)
            self.glance.show(context, image_id)
            with open(self._paths[image_id], 'rb') as f:
                for chunk in iter(lambda: f.read(CHUNK), b''):
                    data.write(chunk)
        return download

    def _detail(self, original):
        def detail(context, filters=None, sort_key=None, sort_dir='desc',
                   **kwargs):
            found = original(context, **kwargs)
            for key, value in (filters or {}).items():
                if key.startswith('property-'):
                    prop = key[len('property-'):]
                    found = [img for img in found
                             if str(img.get('properties', {}).get(prop)) ==
                             str(value)]
            if sort_key:
                found.sort(key=lambda img: img.get(sort_key),
                           reverse=sort_dir == 'desc')
            return found
        return detail
