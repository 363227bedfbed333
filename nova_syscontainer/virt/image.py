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
"""Glance images in the container daemon's image store.

An image is streamed from Glance to a spool file (never held in memory),
verified against Glance's hash, checked to be an LXD image, streamed into
the daemon once and named by the alias ``nova-image-<glance id>``. Later
spawns reuse it. Spawns and the cache manager take a per-image lock, so
concurrent spawns of one uncached image import it once and the cache manager
never removes an image a spawn is about to use.

Accepted Glance formats (anything else is refused before the daemon is
touched):

=================  ===========  =========================================
container_format   disk_format  content
=================  ===========  =========================================
bare               raw          LXD unified image: a tarball (plain,
                                gzip, bzip2 or xz) holding metadata.yaml
                                and rootfs/
bare               root-tar     a root filesystem tarball as distributions
                                publish them for containers (e.g. Ubuntu's
                                ``*-root.tar.xz``): no metadata.yaml; the
                                driver makes one from the image properties
                                ``architecture`` (required), ``os_distro``
                                and ``os_version`` and imports both as a
                                split LXD image. (``root-tar`` is nova-lxd's
                                name; Glance accepts it once listed in
                                ``[image_format] disk_formats``.)
=================  ===========  =========================================
"""

import dataclasses
import hashlib
import io
import json
import os
import tarfile
import threading
import time
import urllib.parse
import uuid

from nova.i18n import _
from nova.image import glance
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import timeutils
from requests_toolbelt import multipart

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import image_scan
from nova_syscontainer.virt import template

LOG = logging.getLogger(__name__)
CONF = sc_conf.CONF

ALIAS_PREFIX = 'nova-image-'
#: Image property marking a daemon image this driver imported.
OWNER_PROPERTY = 'nova.image_id'
#: Image property: bytes of the image's files once unpacked (the scan's).
UNPACKED_PROPERTY = 'nova.unpacked_bytes'
UNIFIED = ('bare', 'raw')
ROOT_TAR = ('bare', 'root-tar')
ACCEPTED_FORMATS = {UNIFIED, ROOT_TAR}
_CHUNK = 1024 * 1024


def alias_for(image_id):
    return ALIAS_PREFIX + image_id


def image_lock(image_id):
    """The lock that serialises importing, using and removing one image."""
    return lockutils.lock('syscontainer-image-%s' % image_id)


class _HashingWriter(object):
    """File-like sink that hashes what Glance streams into the spool file.

    It refuses more than ``limit`` bytes, and every write once the
    download was abandoned (the thread still reading from Glance then
    ends at its next chunk).
    """

    def __init__(self, fileobj, algorithm, image_id=None, limit=None):
        self._file = fileobj
        self.sha256 = hashlib.sha256()
        self.glance_hash = hashlib.new(algorithm) if algorithm else None
        self.size = 0
        self._image_id = image_id
        self._limit = limit
        self.abandoned = False
        self.last_write = time.monotonic()

    def write(self, chunk):
        if self.abandoned:
            raise IOError('the download was abandoned')
        if self._limit is not None and self.size + len(chunk) > self._limit:
            raise exception.ImageScanLimit(
                image_id=self._image_id, what=_('download size'),
                limit='%d bytes' % self._limit)
        self._file.write(chunk)
        self.sha256.update(chunk)
        if self.glance_hash is not None:
            self.glance_hash.update(chunk)
        self.size += len(chunk)
        self.last_write = time.monotonic()

    def flush(self):
        self._file.flush()

    def fileno(self):
        return self._file.fileno()

    def truncate(self, size=None):
        self._file.truncate(size)


def scan_bounds():
    """The :class:`image_scan.Bounds` the [syscontainer] options set."""
    opts = CONF.syscontainer
    setuid = opts.image_setuid_files
    return image_scan.Bounds(
        max_compressed_bytes=opts.image_max_download_mb * 1024 ** 2,
        max_unpacked_bytes=opts.image_max_unpacked_mb * 1024 ** 2,
        max_members=opts.image_max_members,
        max_seconds=opts.image_scan_timeout,
        refuse_setuid=(setuid == 'refuse' or
                       (setuid == 'auto' and opts.allow_privileged)))


def _expected_hash(meta):
    """(algorithm, hex digest) Glance promises for the image data."""
    algo, value = meta.get('os_hash_algo'), meta.get('os_hash_value')
    if algo and value:
        return algo, value
    if meta.get('checksum'):
        return 'md5', meta['checksum']
    return None, None


def check_format(image_id, meta):
    """Refuse a Glance image whose formats this driver cannot run."""
    formats = (meta.get('container_format'), meta.get('disk_format'))
    if formats not in ACCEPTED_FORMATS:
        raise exception.UnsupportedImage(
            image_id=image_id,
            reason=_('container_format %(c)s with disk_format %(d)s is not '
                     'a system container image; upload an LXD unified '
                     'image tarball with --container-format bare '
                     '--disk-format raw, or a root filesystem tarball '
                     'with --disk-format root-tar') % {'c': formats[0],
                                                       'd': formats[1]})
    return formats


def check_lxd_tarball(image_id, path, bounds=None):
    """Check that ``path`` is a safe LXD unified image; the scan's result.

    Read as a bounded stream (:mod:`image_scan`); nothing is extracted.
    """
    return image_scan.scan(image_id, path, image_scan.UNIFIED,
                           bounds or scan_bounds())


def check_root_tarball(image_id, path, bounds=None):
    """Check that ``path`` is a safe root filesystem tarball; the result.

    Refused besides what :mod:`image_scan` refuses: an LXD unified image
    (upload it as raw) and no ``etc/`` (not a root filesystem). LXD
    unpacks a split image's rootfs on the host. Nothing is extracted.
    """
    return image_scan.scan(image_id, path, image_scan.ROOT_TAR,
                           bounds or scan_bounds())


def root_tar_metadata(image_id, meta):
    """The metadata.yaml of a root-tar image, from its Glance properties.

    YAML is written as JSON values (valid YAML), so no property value can
    inject keys.
    """
    props = meta.get('properties') or {}
    arch = props.get('architecture') or props.get('hw_architecture')
    if not arch:
        raise exception.UnsupportedImage(
            image_id=image_id,
            reason=_('a root-tar image needs the property architecture '
                     '(e.g. x86_64) for its LXD metadata'))
    lines = ['architecture: %s' % json.dumps(str(arch)),
             'creation_date: %d' % int(timeutils.utcnow().timestamp()),
             'properties:',
             '  description: %s' % json.dumps(
                 str(meta.get('name') or image_id))]
    for key, prop in (('os', 'os_distro'), ('release', 'os_version')):
        if props.get(prop):
            lines.append('  %s: %s' % (key, json.dumps(str(props[prop]))))
    return ('\n'.join(lines) + '\n').encode('utf-8')


def metadata_tarball(metadata_yaml):
    """A gzip tarball holding only metadata.yaml (a split image's half)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tar:
        info = tarfile.TarInfo('metadata.yaml')
        info.size = len(metadata_yaml)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(metadata_yaml))
    return buf.getvalue()


class ImageStore(object):
    """Glance images cached in the daemon for one compute node."""

    def __init__(self, client, image_api=None):
        self._client = client
        self._image_api = image_api or glance.API()

    def _cached(self, image_id):
        """(fingerprint, record) of the daemon image for ``image_id``."""
        alias = self._client.get_alias(alias_for(image_id))
        record = alias and self._client.get_image(alias['target'])
        if record:
            return alias['target'], record
        return None, None

    def cached_fingerprint(self, image_id):
        """Fingerprint of the daemon image for ``image_id``, or None."""
        return self._cached(image_id)[0]

    def ensure(self, context, image_id, trusted_certs=None, root_gb=0):
        """Make the daemon hold ``image_id``; return (fingerprint, new).

        The caller must hold :func:`image_lock` for ``image_id`` until the
        container using it exists.

        :param root_gb: the flavor's root disk (0: no size); an image
            larger unpacked raises ImageTooLarge, before it is imported
            when it is new.
        """
        fingerprint, record = self._cached(image_id)
        if fingerprint:
            size = (record.get('properties') or {}).get(UNPACKED_PROPERTY)
            image_scan.check_fits(
                image_id, int(size) if str(size or '').isdigit() else None,
                root_gb)
            return fingerprint, False
        return self._import(context, image_id, trusted_certs, root_gb), True

    def _import(self, context, image_id, trusted_certs, root_gb=0):
        meta = self._image_api.get(context, image_id)
        formats = check_format(image_id, meta)
        bounds = dataclasses.replace(scan_bounds(),
                                     root_disk_bytes=root_gb * 1024 ** 3)
        if (meta.get('size') or 0) > bounds.max_compressed_bytes:
            raise exception.ImageScanLimit(
                image_id=image_id, what=_('download size'),
                limit='%d bytes' % bounds.max_compressed_bytes)
        spool_dir = CONF.syscontainer.image_spool_dir
        os.makedirs(spool_dir, mode=0o700, exist_ok=True)
        path = os.path.join(
            spool_dir, '%s.%s.part' % (image_id, uuid.uuid4().hex))
        start = time.monotonic()
        try:
            sha256 = self._download(context, image_id, meta, path,
                                    trusted_certs, bounds)
            if formats == ROOT_TAR:
                scanned = check_root_tarball(image_id, path, bounds)
                image_scan.check_fits(image_id, scanned.unpacked_bytes,
                                      root_gb)
                fingerprint = self._upload_split(
                    image_id, meta, path, scanned.unpacked_bytes)
            else:
                scanned = check_lxd_tarball(image_id, path, bounds)
                image_scan.check_fits(image_id, scanned.unpacked_bytes,
                                      root_gb)
                fingerprint = sha256
                if not self._client.get_image(fingerprint):
                    fingerprint = self._upload(image_id, meta, path,
                                               scanned.unpacked_bytes)
            self._set_alias(image_id, fingerprint)
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        LOG.info('Imported image %(id)s as %(fp)s in %(s).1f s',
                 {'id': image_id, 'fp': fingerprint,
                  's': time.monotonic() - start})
        return fingerprint

    def _download(self, context, image_id, meta, path, trusted_certs,
                  bounds=None):
        algo, expected = _expected_hash(meta)
        try:
            hashlib.new(algo) if algo else None
        except ValueError:
            raise exception.UnsupportedImage(
                image_id=image_id,
                reason=_('Glance hash algorithm %s is unknown') % algo)
        if expected is None and CONF.syscontainer.image_require_hash:
            raise exception.UnverifiedImage(image_id=image_id)
        limit = bounds.max_compressed_bytes if bounds else None
        with open(path, 'wb') as f:
            writer = _HashingWriter(f, algo, image_id, limit)
            self._fetch(context, image_id, writer, trusted_certs)
            f.flush()
            os.fsync(f.fileno())
        if meta.get('size') and writer.size != meta['size']:
            raise exception.UnsupportedImage(
                image_id=image_id,
                reason=_('received %(got)d bytes, Glance says %(want)d') %
                {'got': writer.size, 'want': meta['size']})
        if expected is None:
            LOG.warning('Image %s has no hash in Glance; its data cannot be '
                        'verified', image_id)
        elif writer.glance_hash.hexdigest() != expected:
            raise exception.UnsupportedImage(
                image_id=image_id,
                reason=_('its %s hash does not match Glance\'s') % algo)
        return writer.sha256.hexdigest()

    def _fetch(self, context, image_id, writer, trusted_certs):
        """Glance's download into ``writer``, bounded in time.

        Nova's Glance client sets no timeout of its own on the data, so
        the download runs in a thread watched from here: when it takes
        longer than image_download_timeout, or receives nothing for
        image_download_stall_timeout, it is abandoned (the thread ends at
        its next chunk, or when Glance's connection drops) and
        ImageDownloadTimeout raised; the caller then removes the spool
        file and releases the image lock.
        """
        outcome = {}

        def run():
            try:
                self._image_api.download(context, image_id, data=writer,
                                         trusted_certs=trusted_certs)
            except BaseException as e:  # handed to the waiting thread
                outcome['error'] = e

        total = CONF.syscontainer.image_download_timeout
        stall = CONF.syscontainer.image_download_stall_timeout
        thread = threading.Thread(target=run, daemon=True,
                                  name='glance-download-%s' % image_id)
        start = time.monotonic()
        thread.start()
        while True:
            thread.join(timeout=0.5)
            if not thread.is_alive():
                break
            now = time.monotonic()
            if now - start > total:
                reason = _('the download took more than %d s '
                           '([syscontainer] image_download_timeout)') % total
            elif now - writer.last_write > stall:
                reason = _('no data arrived for %(s)d s after %(n)d bytes '
                           '([syscontainer] image_download_stall_timeout)'
                           ) % {'s': stall, 'n': writer.size}
            else:
                continue
            writer.abandoned = True
            LOG.error('Abandoning the download of image %(id)s: %(why)s',
                      {'id': image_id, 'why': reason})
            raise exception.ImageDownloadTimeout(image_id=image_id,
                                                 reason=reason)
        if 'error' in outcome:
            raise outcome['error']

    def _upload(self, image_id, meta, path, unpacked_bytes=0):
        properties = {OWNER_PROPERTY: image_id,
                      UNPACKED_PROPERTY: str(unpacked_bytes),
                      'description': meta.get('name') or image_id}
        headers = {
            'Content-Type': 'application/octet-stream',
            'X-LXD-public': '0',
            'X-LXD-filename': os.path.basename(path),
            'X-LXD-properties': urllib.parse.urlencode(properties),
        }
        with open(path, 'rb') as data:
            return self._client.upload_image(
                data, headers, description='image %s' % image_id)

    def _upload_split(self, image_id, meta, path, unpacked_bytes=0):
        """A root-tar image as a split LXD image: our metadata + rootfs.

        The rootfs part is streamed from the spool file.
        """
        metadata = metadata_tarball(root_tar_metadata(image_id, meta))
        properties = {OWNER_PROPERTY: image_id,
                      UNPACKED_PROPERTY: str(unpacked_bytes),
                      'description': meta.get('name') or image_id}
        with open(path, 'rb') as data:
            encoder = multipart.MultipartEncoder(fields=[
                ('metadata', ('metadata.tar.gz', metadata,
                              'application/octet-stream')),
                ('rootfs', ('rootfs.tar', data,
                            'application/octet-stream'))])
            headers = {
                'Content-Type': encoder.content_type,
                'X-LXD-public': '0',
                'X-LXD-properties': urllib.parse.urlencode(properties),
            }
            return self._client.upload_image(
                encoder, headers, description='image %s' % image_id)

    def _set_alias(self, image_id, fingerprint):
        alias = alias_for(image_id)
        current = self._client.get_alias(alias)
        if current and current.get('target') == fingerprint:
            return
        if current:
            self._client.delete_alias(alias)
        self._client.create_alias(alias, fingerprint,
                                  description='Glance image %s' % image_id)

    # ------------------------------------------------------------------
    # Cache management (ComputeDriver.manage_image_cache)
    # ------------------------------------------------------------------
    def remove_unused(self, instances, min_age_seconds):
        """Remove our images that no instance uses; return their ids.

        An image is in use when a Nova instance on this host refers to it or
        a container of the project was created from it; its templates
        (template.py) do not count, and go with it. An image the driver
        imported is deleted; one that was already in the daemon (imported
        by the operator) only loses the driver's alias.
        """
        in_use_ids = {inst.image_ref for inst in instances if inst.image_ref}
        now = timeutils.utcnow(with_timezone=True)
        removed = []
        for image in self._client.list_images():
            image_id = _glance_id(image)
            if image_id is None or image_id in in_use_ids:
                continue
            with image_lock(image_id):
                in_use, templates = _users_now(self._client,
                                               image['fingerprint'])
                if in_use:
                    continue
                if _age_seconds(image, now) < min_age_seconds:
                    continue
                for name in templates:
                    LOG.info('Removing template %(name)s of unused image '
                             '%(id)s', {'name': name, 'id': image_id})
                    self._client.delete_instance(name)
                if (image.get('properties') or {}).get(OWNER_PROPERTY):
                    LOG.info('Removing unused image %(id)s (%(fp)s)',
                             {'id': image_id, 'fp': image['fingerprint']})
                    self._client.delete_image(image['fingerprint'])
                else:
                    LOG.info('Forgetting unused image %(id)s; the daemon '
                             'image %(fp)s is not ours and stays',
                             {'id': image_id, 'fp': image['fingerprint']})
                    self._client.delete_alias(alias_for(image_id))
                removed.append(image_id)
        return removed


def _glance_id(image):
    for alias in image.get('aliases') or []:
        if alias.get('name', '').startswith(ALIAS_PREFIX):
            return alias['name'][len(ALIAS_PREFIX):]
    return None


def _users_now(client, fingerprint):
    """Re-read under the lock: a spawn may just have used the image.

    Returns whether a container other than a template was made from it,
    and the names of its templates (template.py), which go with it.
    """
    in_use, templates = False, []
    for rec in client.list_instances():
        if rec['config'].get('volatile.base_image') != fingerprint:
            continue
        if template.is_template(rec):
            templates.append(rec['name'])
        else:
            in_use = True
    return in_use, templates


def _age_seconds(image, now):
    stamp = image.get('last_used_at') or image.get('uploaded_at')
    try:
        when = timeutils.parse_isotime(stamp)
    except (ValueError, TypeError):
        return float('inf')
    if when.year < 2000:  # never used: LXD reports year 1
        when = timeutils.parse_isotime(image.get('uploaded_at'))
    return (now - when).total_seconds()
