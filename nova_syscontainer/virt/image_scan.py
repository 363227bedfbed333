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
"""A bounded safety scan of an image tarball, before the daemon unpacks it.

Pure apart from reading the one spool file it is given: nothing is
extracted, nothing is written, no daemon is called.

The daemon unpacks an image on its host as root, so the tarball is read
as a stream here first and refused with a typed error
(:class:`~nova_syscontainer.exception.HostileImage`) when it holds:

* a member whose path is absolute or goes through ``..``;
* a hard link whose target leaves the tree, a symbolic link whose
  relative target leaves it, or a member stored *through* a symbolic
  link of the same archive (the classic way to write outside the tree);
* a block device node, or a character device node other than those every
  container gets from its daemon anyway (:data:`HARMLESS_CHAR_DEVICES`:
  null, zero, full, random, urandom, tty, console, ptmx, which
  debootstrap writes into every Debian root filesystem);
* a setuid or setgid file, when the caller asks (distributions ship
  ``su``, ``passwd``, ``mount``: an unprivileged container maps their
  root to an unprivileged host user, see ``image_setuid_files``);
* LXD metadata templates: a ``templates/`` member or a ``templates`` key
  in metadata.yaml (the daemon renders them with the container's config,
  as root, on the host).

The scan is bounded (:class:`Bounds`), so a decompression bomb costs at
most the bounds: the compressed size, the decompressed bytes (counted on
the decompressed stream itself, so a huge pax or long-name header counts
too; a member's declared size is refused from its header, before its data
is decompressed), the number of members and the wall time. Exceeding a
bound raises :class:`~nova_syscontainer.exception.ImageScanLimit`. An
unpacked size larger than the flavor's root disk raises
:class:`~nova_syscontainer.exception.ImageTooLarge`.
"""

import bz2
import dataclasses
import gzip
import io
import lzma
import os
import posixpath
import stat
import tarfile
import time

import yaml

from nova.i18n import _

from nova_syscontainer import exception

UNIFIED = 'unified'
ROOT_TAR = 'root-tar'

#: The largest metadata.yaml read (LXD's own are a few hundred bytes).
METADATA_MAX_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
#: (major, minor) of the character devices anyone may open: /dev/null,
#: zero, full, random, urandom, tty, console, ptmx.
HARMLESS_CHAR_DEVICES = frozenset({(1, 3), (1, 5), (1, 7), (1, 8), (1, 9),
                                   (5, 0), (5, 1), (5, 2)})


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What one scan may cost, and the flavor's root disk."""
    max_compressed_bytes: int = 10 * 1024 ** 3
    max_unpacked_bytes: int = 50 * 1024 ** 3
    max_members: int = 1000000
    max_seconds: float = 300.0
    #: Refuse setuid and setgid files.
    refuse_setuid: bool = False
    #: The flavor's root disk in bytes (0: none): a larger image is
    #: refused from the member header that passes it.
    root_disk_bytes: int = 0


@dataclasses.dataclass
class Result:
    """What a scan found in an accepted tarball."""
    #: Bytes of the members' data once unpacked.
    unpacked_bytes: int = 0
    members: int = 0
    found_metadata: bool = False
    found_rootfs: bool = False
    found_etc: bool = False


def _hostile(image_id, reason):
    return exception.HostileImage(image_id=image_id, reason=reason)


class _BoundedReader(io.RawIOBase):
    """The decompressed stream, counting bytes and time as tarfile reads."""

    def __init__(self, image_id, stream, bounds, deadline, clock):
        self._id = image_id
        self._stream = stream
        self._bounds = bounds
        self._deadline = deadline
        self._clock = clock
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buf):
        if self._clock() > self._deadline:
            raise exception.ImageScanLimit(
                image_id=self._id, what=_('scan time'),
                limit='%d s' % self._bounds.max_seconds)
        data = self._stream.read(min(len(buf), _CHUNK))
        self.count += len(data)
        if self.count > self._bounds.max_unpacked_bytes:
            raise exception.ImageScanLimit(
                image_id=self._id, what=_('unpacked size'),
                limit='%d bytes' % self._bounds.max_unpacked_bytes)
        buf[:len(data)] = data
        return len(data)


def _decompressed(fileobj):
    """A reader of ``fileobj``'s tar stream, by its compression magic."""
    magic = fileobj.read(6)
    fileobj.seek(0)
    if magic.startswith(b'\x1f\x8b'):
        return gzip.GzipFile(fileobj=fileobj, mode='rb')
    if magic.startswith(b'BZh'):
        return bz2.BZ2File(fileobj, mode='rb')
    if magic.startswith(b'\xfd7zXZ\x00'):
        return lzma.LZMAFile(fileobj, mode='rb')
    return fileobj


def _parts(name):
    return [p for p in name.split('/') if p not in ('', '.')]


def _relative(name):
    """The member's path inside the archive, without ``./``."""
    return '/'.join(_parts(name))


def _escapes(path):
    """Whether a normalised relative path leaves its root."""
    return path == '..' or path.startswith('../')


class _Scan(object):

    def __init__(self, image_id, kind, bounds):
        self.image_id = image_id
        self.kind = kind
        self.bounds = bounds
        self.result = Result()
        self._symlinks = set()

    def root_of(self, rel):
        """The root a member's links must stay in ('' is the archive)."""
        if self.kind == UNIFIED and (rel == 'rootfs' or
                                     rel.startswith('rootfs/')):
            return 'rootfs'
        return ''

    def check_path(self, member, rel):
        name = member.name
        if name.startswith('/') or '..' in name.split('/'):
            raise _hostile(self.image_id, _(
                'the tarball member %s leaves the image (an absolute path '
                'or "..")') % name)
        parts = rel.split('/')
        for depth in range(1, len(parts)):
            if '/'.join(parts[:depth]) in self._symlinks:
                raise _hostile(self.image_id, _(
                    'the tarball member %(name)s is stored through the '
                    'symbolic link %(link)s') % {
                        'name': name, 'link': '/'.join(parts[:depth])})

    def check_link(self, member, rel):
        root = self.root_of(rel)
        if member.islnk():
            target = member.linkname
            if target.startswith('/') or _escapes(
                    posixpath.normpath(target)):
                raise _hostile(self.image_id, _(
                    'the hard link %(name)s points outside the image '
                    '(%(target)s)') % {'name': member.name,
                                       'target': target})
            norm = _relative(posixpath.normpath(target))
            if root and not (norm == root or norm.startswith(root + '/')):
                raise _hostile(self.image_id, _(
                    'the hard link %(name)s points outside rootfs/ '
                    '(%(target)s)') % {'name': member.name,
                                       'target': target})
        elif member.issym():
            self._symlinks.add(rel)
            target = member.linkname
            # An absolute target is resolved inside the container's root
            # when the guest follows it; a relative one is resolved from
            # where the link is and must not climb out of its root.
            if target.startswith('/'):
                return
            inside = posixpath.relpath(rel, root) if root else rel
            resolved = posixpath.normpath(
                posixpath.join(posixpath.dirname(inside), target))
            if _escapes(resolved):
                raise _hostile(self.image_id, _(
                    'the symbolic link %(name)s points outside the image '
                    '(%(target)s)') % {'name': member.name,
                                       'target': target})

    def check_kind(self, member):
        if member.isblk() or (member.ischr() and (
                member.devmajor, member.devminor) not in
                HARMLESS_CHAR_DEVICES):
            raise _hostile(self.image_id, _(
                'the tarball holds the device node %s') % member.name)
        if (self.bounds.refuse_setuid and not member.isdir() and
                member.mode & (stat.S_ISUID | stat.S_ISGID)):
            raise _hostile(self.image_id, _(
                'the tarball holds the setuid or setgid file %s') %
                member.name)

    def check_templates(self, tar, member, rel):
        if self.kind != UNIFIED:
            if rel == 'metadata.yaml':
                raise exception.UnsupportedImage(
                    image_id=self.image_id,
                    reason=_('the tarball holds metadata.yaml: it is an LXD '
                             'unified image, upload it with --disk-format '
                             'raw'))
            return
        if rel == 'templates' or rel.startswith('templates/'):
            raise _hostile(self.image_id, _(
                'the image carries LXD metadata templates (%s), which the '
                'daemon would render on the host') % member.name)
        if rel == 'metadata.yaml' and member.isfile():
            self.result.found_metadata = True
            if member.size > METADATA_MAX_BYTES:
                raise _hostile(self.image_id, _(
                    'metadata.yaml is %d bytes') % member.size)
            try:
                metadata = yaml.safe_load(tar.extractfile(member).read())
            except yaml.YAMLError as e:
                raise exception.UnsupportedImage(
                    image_id=self.image_id,
                    reason=_('metadata.yaml is not YAML (%s)') % e)
            if isinstance(metadata, dict) and metadata.get('templates'):
                raise _hostile(self.image_id, _(
                    'the image carries LXD metadata templates (the '
                    'templates key of metadata.yaml), which the daemon '
                    'would render on the host'))
            if not isinstance(metadata, dict):
                raise exception.UnsupportedImage(
                    image_id=self.image_id,
                    reason=_('metadata.yaml is not a mapping'))
            # LXD 5.0.2 crashes (panic "assignment to entry in nil map",
            # lxd/images.go getImgPostInfo) when an upload carries
            # properties, as the driver's does, and the image's own
            # metadata.yaml has no properties map: one such Glance image
            # would take the node's daemon down. Measured 2026-12-02.
            if not isinstance(metadata.get('properties'), dict):
                raise exception.UnsupportedImage(
                    image_id=self.image_id,
                    reason=_('metadata.yaml has no "properties" mapping '
                             '(add "properties: {}"); LXD 5.0.2 cannot '
                             'import such an image safely'))

    def member(self, tar, member, reader_count):
        result = self.result
        result.members += 1
        if result.members > self.bounds.max_members:
            raise exception.ImageScanLimit(
                image_id=self.image_id, what=_('number of members'),
                limit=self.bounds.max_members)
        # Refused from the header: the data is never decompressed.
        if (reader_count + member.size > self.bounds.max_unpacked_bytes or
                result.unpacked_bytes + member.size >
                self.bounds.max_unpacked_bytes):
            raise exception.ImageScanLimit(
                image_id=self.image_id, what=_('unpacked size'),
                limit='%d bytes' % self.bounds.max_unpacked_bytes)
        result.unpacked_bytes += member.size
        if (self.bounds.root_disk_bytes and
                result.unpacked_bytes > self.bounds.root_disk_bytes):
            raise exception.ImageTooLarge(
                image_id=self.image_id, size=result.unpacked_bytes,
                root_gb=self.bounds.root_disk_bytes // 1024 ** 3)
        rel = _relative(member.name)
        self.check_path(member, rel)
        self.check_kind(member)
        self.check_link(member, rel)
        self.check_templates(tar, member, rel)
        if rel == 'rootfs' or rel.startswith('rootfs/'):
            result.found_rootfs = True
        if rel == 'etc' or rel.startswith('etc/'):
            result.found_etc = True


def scan(image_id, path, kind, bounds, clock=time.monotonic):
    """Scan the tarball at ``path``; its :class:`Result` if it is safe.

    :param kind: :data:`UNIFIED` (metadata.yaml and rootfs/) or
        :data:`ROOT_TAR` (a root filesystem, no metadata.yaml).
    :raises HostileImage: for unsafe content.
    :raises ImageScanLimit: when a bound is exceeded.
    :raises UnsupportedImage: for data that is not a tarball of that kind.
    """
    size = os.path.getsize(path)
    if size > bounds.max_compressed_bytes:
        raise exception.ImageScanLimit(
            image_id=image_id, what=_('download size'),
            limit='%d bytes' % bounds.max_compressed_bytes)
    checker = _Scan(image_id, kind, bounds)
    deadline = clock() + bounds.max_seconds
    try:
        with open(path, 'rb') as raw:
            reader = _BoundedReader(image_id, _decompressed(raw), bounds,
                                    deadline, clock)
            buffered = io.BufferedReader(reader, buffer_size=_CHUNK)
            with tarfile.open(fileobj=buffered, mode='r|') as tar:
                for member in tar:
                    checker.member(tar, member, reader.count)
                    if clock() > deadline:
                        raise exception.ImageScanLimit(
                            image_id=image_id, what=_('scan time'),
                            limit='%d s' % bounds.max_seconds)
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError,
            gzip.BadGzipFile) as e:
        raise exception.UnsupportedImage(
            image_id=image_id,
            reason=_('the data is not a readable tarball (%s)') % e)
    _check_complete(image_id, kind, checker.result)
    return checker.result


def _check_complete(image_id, kind, result):
    if kind == ROOT_TAR:
        if not result.found_etc:
            raise exception.UnsupportedImage(
                image_id=image_id,
                reason=_('the tarball has no etc/, so it is not a root '
                         'filesystem'))
        return
    missing = [part for part, ok in (('metadata.yaml', result.found_metadata),
                                     ('rootfs/', result.found_rootfs))
               if not ok]
    if missing:
        raise exception.UnsupportedImage(
            image_id=image_id,
            reason=_('the tarball lacks %s, so it is not an LXD unified '
                     'image') % ' and '.join(missing))


def check_fits(image_id, unpacked_bytes, root_gb):
    """Refuse an image larger unpacked than a flavor's root disk.

    A flavor with root_gb 0 sets no root disk size: anything fits.
    """
    if not root_gb or unpacked_bytes is None:
        return
    if unpacked_bytes > root_gb * 1024 ** 3:
        raise exception.ImageTooLarge(
            image_id=image_id, size=unpacked_bytes, root_gb=root_gb)
