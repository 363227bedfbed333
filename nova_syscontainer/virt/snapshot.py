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
"""Snapshots of running containers as Glance images.

``ComputeDriver.snapshot`` (and so Nova's createImage and createBackup) is
served in four daemon steps, none of which stops the container:

1. ``POST /1.0/instances/<name>/snapshots`` with ``stateful: false``: a
   copy of the root file system (on a ``dir`` pool an rsync of the running
   container's files, so as consistent as a copy of a live disk is);
2. ``POST /1.0/images`` with a ``snapshot`` source: the daemon packs that
   copy into an image. LXD 5.0.2 always publishes a *unified* image (one
   tarball: metadata.yaml + rootfs/), compressed with the daemon's
   ``images.compression_algorithm`` (gzip by default) -- exactly the format
   this driver boots (:mod:`nova_syscontainer.virt.image`);
3. ``GET /1.0/images/<fingerprint>/export``, streamed chunk by chunk into
   ``glance.API().update(..., data=<file-like>)``: the image is never held
   in memory nor spooled to disk by nova-compute;
4. the temporary snapshot and daemon image are deleted, whether the
   snapshot succeeded or not.

A split image (two parts, a multipart export) is refused rather than
repacked: the daemon never publishes one, so seeing one means the image is
not the one this driver published.

This module holds the decisions (names, request bodies, Glance metadata)
as pure functions, and :func:`take`, the sequence, which does its daemon
I/O through :class:`~nova_syscontainer.virt.client.DaemonClient` only.
"""

import contextlib
import time

from nova.compute import task_states
from nova.image import glance
from oslo_log import log as logging
from oslo_utils import excutils

from nova_syscontainer import exception
from nova_syscontainer.virt import image as images

LOG = logging.getLogger(__name__)

SNAPSHOT_PREFIX = 'nova-snapshot-'
#: Property of a daemon image published for a Glance snapshot (its id).
SNAPSHOT_PROPERTY = 'nova.snapshot_image_id'
#: Glance formats of a snapshot: those the driver accepts on boot.
CONTAINER_FORMAT, DISK_FORMAT = 'bare', 'raw'
_CHUNK = 1024 * 1024


def snapshot_name(image_id):
    """The daemon snapshot taken for the Glance image ``image_id``."""
    return SNAPSHOT_PREFIX + image_id


def publish_body(name, image_id, instance_uuid):
    """``POST /1.0/images`` body publishing the snapshot as an image."""
    return {
        'source': {'type': 'snapshot',
                   'name': '%s/%s' % (name, snapshot_name(image_id))},
        'public': False,
        'properties': {
            SNAPSHOT_PROPERTY: image_id,
            'description': 'Nova snapshot %s of instance %s' % (
                image_id, instance_uuid)},
    }


def glance_metadata(instance):
    """What the driver sets on the Glance image, as Nova's libvirt driver.

    Nova's API already copied the base image's properties (and, for a
    backup, image_type, backup_type and instance_uuid) onto the image; the
    update keeps them (``purge_props=False``) and adds the formats the
    driver boots and libvirt's snapshot properties.
    """
    properties = {'image_location': 'snapshot',
                  'image_state': 'available',
                  'owner_id': instance.project_id,
                  'hypervisor_type': 'lxc',
                  'vm_mode': 'exe'}
    if instance.os_type:
        properties['os_type'] = instance.os_type
    return {'container_format': CONTAINER_FORMAT,
            'disk_format': DISK_FORMAT,
            'properties': properties}


def is_split_export(content_type):
    """Whether an export is a split image (multipart: metadata + rootfs)."""
    return content_type.lower().startswith('multipart/')


def leftovers(image_records, image_id):
    """Fingerprints of daemon images published for ``image_id``.

    An image the driver imported from Glance (it carries the importer's
    ``nova.image_id``, and may carry this property from the tarball's
    metadata.yaml) is never one of them.
    """
    return [rec['fingerprint'] for rec in image_records
            if (rec.get('properties') or {}).get(SNAPSHOT_PROPERTY) ==
            image_id and not (rec.get('properties') or {}).get(
                images.OWNER_PROPERTY)]


def take(client, context, instance, name, image_id, update_task_state,
         image_api=None):
    """Snapshot container ``name`` into Glance image ``image_id``.

    Fulfils ``ComputeDriver.snapshot``: reports IMAGE_PENDING_UPLOAD, then
    IMAGE_UPLOADING (expected IMAGE_PENDING_UPLOAD) as Nova's libvirt
    driver does. On any failure the daemon snapshot and image are removed
    before the error propagates; Nova then deletes the Glance image
    (``delete_image_on_error``) and, the container never having stopped,
    the server stays ACTIVE. An ImageNotFound from Glance (the image was
    deleted meanwhile) propagates as is: Nova treats it as a snapshot
    abandoned, not as a fault.
    """
    image_api = image_api or glance.API()
    start = time.monotonic()
    update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
    snap = snapshot_name(image_id)
    fingerprint = None
    try:
        client.create_snapshot(name, snap)
        fingerprint = client.publish_image(
            publish_body(name, image_id, instance.uuid))
        client.delete_snapshot(name, snap)
        published = time.monotonic()
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        stream = client.export_image(fingerprint)
        with contextlib.closing(stream):
            if is_split_export(stream.content_type):
                raise exception.SnapshotFailed(
                    image_id=image_id, reason='the daemon exported a split '
                    'image (%s); only unified images can be uploaded' %
                    stream.content_type)
            image_api.update(context, image_id, glance_metadata(instance),
                             data=stream, purge_props=False)
    except Exception:
        with excutils.save_and_reraise_exception():
            LOG.warning('Snapshot %s failed; removing what it left in the '
                        'daemon', image_id, instance=instance)
            _clean_up(client, name, snap, image_id, fingerprint)
    _clean_up(client, name, snap, image_id, fingerprint)
    LOG.info('Snapshot %(id)s: %(size)d bytes uploaded; snapshot and '
             'publish %(p).1f s, export and upload %(u).1f s',
             {'id': image_id, 'size': stream.size, 'p': published - start,
              'u': time.monotonic() - published}, instance=instance)


def _clean_up(client, name, snap, image_id, fingerprint):
    """Remove the snapshot and published image(s); never raises.

    The image is also looked up by property: a publish that timed out may
    have created one whose fingerprint the driver never learnt.
    """
    try:
        client.delete_snapshot(name, snap)
        found = leftovers(client.list_images(), image_id)
        for fp in set(found) | ({fingerprint} if fingerprint else set()):
            client.delete_image(fp)
    except Exception as e:
        LOG.error('Could not remove the daemon snapshot %(snap)s of '
                  '%(name)s or its image: %(err)s; remove them by hand',
                  {'snap': snap, 'name': name, 'err': e})
