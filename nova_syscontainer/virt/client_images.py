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
"""The client layer's image and snapshot calls.

A part of :class:`client.DaemonClient` (it inherits :class:`ImageCalls`),
kept in a module of its own for size: every call still goes through the
one call wrapper, ``DaemonClient.call``, with its timeouts and error
mapping.
"""

import requests
import urllib3

from nova_syscontainer import exception


class ImageCalls(object):
    """Daemon images, aliases, exports and instance snapshots."""

    def list_images(self):
        return self.call('list images', 'get', lambda api: api.images,
                         params={'recursion': 1}, read=True) or []

    def get_image(self, fingerprint):
        return self._read_or_none('read image %s' % fingerprint,
                                  lambda api: api.images[fingerprint])

    def get_alias(self, alias):
        return self._read_or_none('read image alias %s' % alias,
                                  lambda api: api.images.aliases[alias])

    def upload_image(self, data, headers, description):
        """Stream an image to the daemon; returns its fingerprint.

        ``data`` is a file object or a streaming multipart encoder, never
        the image in memory.
        """
        meta = self.call('import %s' % description, 'post',
                         lambda api: api.images, data=data, headers=headers,
                         timeout=self.operation_timeout)
        return meta['fingerprint']

    def create_alias(self, alias, fingerprint, description=''):
        self.call('create image alias %s' % alias, 'post',
                  lambda api: api.images.aliases,
                  json={'name': alias, 'target': fingerprint,
                        'description': description})

    def delete_alias(self, alias):
        self._delete_if_present('delete image alias %s' % alias,
                                lambda api: api.images.aliases[alias])

    def delete_image(self, fingerprint):
        self._delete_if_present('delete image %s' % fingerprint,
                                lambda api: api.images[fingerprint],
                                retry_busy=True)

    def publish_image(self, body):
        """``POST /1.0/images`` from an instance or snapshot; fingerprint."""
        return self.call('publish image %s' % body['source'].get('name'),
                         'post', lambda api: api.images, json=body)[
                             'fingerprint']

    def export_image(self, fingerprint):
        """``GET /1.0/images/<fp>/export`` as an :class:`ExportStream`."""
        action = 'export image %s' % fingerprint
        return ExportStream(self, action, self.call(
            action, 'get', lambda api: api.images[fingerprint].export,
            stream=True, is_api=False))

    # ------------------------------------------------------------------
    # Snapshots (stateless: the instance keeps running)
    # ------------------------------------------------------------------
    def create_snapshot(self, name, snapshot):
        """Snapshot an instance's root file system; it keeps running."""
        self.call('snapshot instance %s' % name, 'post',
                  lambda api: api.instances[name].snapshots,
                  json={'name': snapshot, 'stateful': False},
                  retry_busy=True)

    def delete_snapshot(self, name, snapshot):
        """Delete a snapshot; an absent one is not an error."""
        self._delete_if_present(
            'delete snapshot %s/%s' % (name, snapshot),
            lambda api: api.instances[name].snapshots[snapshot],
            retry_busy=True)


class ExportStream(object):
    """An image export read like a file, as the daemon sends it.

    Nothing is buffered beyond what one ``read(size)`` asks for; errors
    while reading map to DaemonUnavailable. Close it when done.
    """

    def __init__(self, client, action, response):
        self._client, self._action, self._response = client, action, response
        self.content_type = response.headers.get('Content-Type', '')
        self.size = 0

    def read(self, size=-1):
        try:
            chunk = self._response.raw.read(
                None if size is None or size < 0 else size)
        except (requests.RequestException, urllib3.exceptions.HTTPError,
                OSError) as e:
            raise exception.DaemonUnavailable(
                endpoint=self._client.endpoint,
                reason='%s: %s' % (self._action, e))
        self.size += len(chunk)
        return chunk

    def close(self):
        self._response.close()
