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
"""The bounded safety scan, one small crafted tarball per refusal."""

import gzip
import io
import itertools
import os
import tarfile
import tempfile
import unittest

from nova_syscontainer import exception
from nova_syscontainer.virt import image_scan


def member(name, data=b'x', **attrs):
    """(TarInfo, data) for one crafted member."""
    info = tarfile.TarInfo(name)
    for key, value in attrs.items():
        setattr(info, key, value)
    if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data)
    else:
        data = None
    return info, data


def directory(name):
    return member(name, type=tarfile.DIRTYPE, mode=0o755)


METADATA = member('metadata.yaml', b'architecture: x86_64\n'
                                   b'creation_date: 1\nproperties: {}\n')
ROOTFS = [directory('rootfs'), directory('rootfs/etc'),
          member('rootfs/etc/hostname', b'c1\n')]


def build(path, members, mode='w:gz'):
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


class ScanTest(unittest.TestCase):

    bounds = image_scan.Bounds()

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.count = itertools.count()

    def tarball(self, members, mode='w:gz'):
        path = os.path.join(self.dir.name, 'img%d' % next(self.count))
        build(path, members, mode)
        return path

    def unified(self, *extra, bounds=None):
        return image_scan.scan('img', self.tarball([METADATA] + ROOTFS +
                                                   list(extra)),
                               image_scan.UNIFIED, bounds or self.bounds)

    def refused(self, error, *extra, bounds=None, text=None):
        with self.assertRaises(error) as ctx:
            self.unified(*extra, bounds=bounds)
        if text:
            self.assertIn(text, str(ctx.exception))
        return ctx.exception

    def test_clean_image_accepted_with_its_size(self):
        result = self.unified(member('rootfs/bin/sh', b'12345'))
        self.assertEqual(len(METADATA[1]) + 3 + 5, result.unpacked_bytes)
        self.assertEqual(5, result.members)

    def test_every_compression_read(self):
        for mode in ('w', 'w:gz', 'w:bz2', 'w:xz'):
            with self.subTest(mode=mode):
                path = self.tarball([METADATA] + ROOTFS, mode)
                image_scan.scan('img', path, image_scan.UNIFIED, self.bounds)

    def test_dot_dot_refused(self):
        self.refused(exception.HostileImage,
                     member('rootfs/../../etc/cron.d/x'), text='leaves')

    def test_absolute_path_refused(self):
        self.refused(exception.HostileImage, member('/etc/passwd'),
                     text='absolute')

    def test_device_nodes_refused(self):
        for kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            with self.subTest(kind=kind):
                self.refused(exception.HostileImage,
                             member('rootfs/dev/sda', type=kind,
                                    devmajor=8, devminor=0),
                             text='device node rootfs/dev/sda')

    def test_char_devices_beyond_the_harmless_ones_refused(self):
        self.refused(exception.HostileImage,
                     member('rootfs/dev/null', type=tarfile.CHRTYPE,
                            devmajor=1, devminor=2), text='device node')

    def test_harmless_char_devices_accepted(self):
        # What debootstrap writes into every Debian root filesystem.
        self.unified(*[member('rootfs/dev/d%d%d' % dev, type=tarfile.CHRTYPE,
                              devmajor=dev[0], devminor=dev[1])
                       for dev in sorted(image_scan.HARMLESS_CHAR_DEVICES)])

    def test_fifo_accepted(self):
        self.unified(member('rootfs/run/fifo', type=tarfile.FIFOTYPE))

    def test_setuid_and_setgid_refused_when_asked(self):
        strict = image_scan.Bounds(refuse_setuid=True)
        for mode in (0o4755, 0o2755):
            with self.subTest(mode=oct(mode)):
                self.refused(exception.HostileImage,
                             member('rootfs/bin/su', mode=mode),
                             bounds=strict, text='setuid or setgid')
        # A setgid directory (group inheritance) is no privilege.
        self.unified(member('rootfs/srv', type=tarfile.DIRTYPE, mode=0o2775),
                     bounds=strict)

    def test_setuid_accepted_by_default(self):
        self.unified(member('rootfs/bin/su', mode=0o4755))

    def test_hard_link_outside_refused(self):
        for target in ('/etc/shadow', '../etc/shadow', 'metadata.yaml'):
            with self.subTest(target=target):
                self.refused(exception.HostileImage,
                             member('rootfs/x', type=tarfile.LNKTYPE,
                                    linkname=target), text='hard link')

    def test_hard_link_inside_accepted(self):
        self.unified(member('rootfs/etc/name', type=tarfile.LNKTYPE,
                            linkname='rootfs/etc/hostname'))

    def test_relative_symlink_escaping_refused(self):
        self.refused(exception.HostileImage,
                     member('rootfs/etc/evil', type=tarfile.SYMTYPE,
                            linkname='../../../root'),
                     text='symbolic link rootfs/etc/evil')

    def test_symlinks_inside_accepted(self):
        self.unified(
            member('rootfs/bin', type=tarfile.SYMTYPE, linkname='usr/bin'),
            member('rootfs/etc/os', type=tarfile.SYMTYPE,
                   linkname='../usr/lib/os-release'),
            # Absolute: resolved in the container's root by the guest.
            member('rootfs/etc/mtab', type=tarfile.SYMTYPE,
                   linkname='/proc/self/mounts'))

    def test_member_through_symlink_refused(self):
        self.refused(exception.HostileImage,
                     member('rootfs/escape', type=tarfile.SYMTYPE,
                            linkname='/'),
                     member('rootfs/escape/etc/shadow'),
                     text='through the symbolic link rootfs/escape')

    def test_templates_directory_refused(self):
        self.refused(exception.HostileImage, directory('templates'),
                     member('templates/hostname.tpl', b'{{ container }}'),
                     text='metadata templates')

    def test_templates_key_refused(self):
        metadata = member('metadata.yaml', b'architecture: x86_64\n'
                          b'templates:\n  /etc/hostname:\n'
                          b'    template: hostname.tpl\n    when: [create]\n')
        path = self.tarball([metadata] + ROOTFS)
        with self.assertRaises(exception.HostileImage) as ctx:
            image_scan.scan('img', path, image_scan.UNIFIED, self.bounds)
        self.assertIn('templates key', str(ctx.exception))

    def test_metadata_without_a_properties_map_refused(self):
        # LXD 5.0.2 panics importing it with upload properties (measured).
        for text in (b'architecture: x86_64\n',
                     b'architecture: x86_64\nproperties:\n',
                     b'architecture: x86_64\nproperties: [a]\n',
                     b'- x86_64\n'):
            path = self.tarball([member('metadata.yaml', text)] + ROOTFS)
            with self.assertRaises(exception.UnsupportedImage) as ctx:
                image_scan.scan('img', path, image_scan.UNIFIED, self.bounds)
            self.assertIn('metadata.yaml', str(ctx.exception))

    def test_bomb_refused_from_its_header(self):
        # A member claiming 1 TiB: refused before any of it is read.
        info = tarfile.TarInfo('rootfs/zero')
        info.size = 1 << 40
        header = info.tobuf(format=tarfile.GNU_FORMAT)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w') as tar:
            for info_, data in [METADATA] + ROOTFS:
                tar.addfile(info_, io.BytesIO(data) if data else None)
        raw = buf.getvalue().rstrip(b'\0')
        raw += b'\0' * (-len(raw) % 512) + header + b'\0' * (1 << 20)
        path = os.path.join(self.dir.name, 'bomb.tar.gz')
        with open(path, 'wb') as f:
            f.write(gzip.compress(raw))
        with self.assertRaises(exception.ImageScanLimit) as ctx:
            image_scan.scan('img', path, image_scan.UNIFIED, self.bounds)
        self.assertIn('unpacked size', str(ctx.exception))

    def test_decompressed_stream_bounded(self):
        # 4 MiB of zeros compress to a few KiB; the bound is 1 MiB.
        small = image_scan.Bounds(max_unpacked_bytes=1024 ** 2)
        self.refused(exception.ImageScanLimit,
                     member('rootfs/zeros', b'\0' * (4 * 1024 ** 2)),
                     bounds=small, text='unpacked size')

    def test_member_count_bounded(self):
        few = image_scan.Bounds(max_members=10)
        self.refused(exception.ImageScanLimit,
                     *[member('rootfs/f%d' % i) for i in range(10)],
                     bounds=few, text='number of members')

    def test_compressed_size_bounded(self):
        tiny = image_scan.Bounds(max_compressed_bytes=16)
        self.refused(exception.ImageScanLimit, bounds=tiny,
                     text='download size')

    def test_scan_time_bounded(self):
        ticks = itertools.count(step=10.0)
        path = self.tarball([METADATA] + ROOTFS)
        with self.assertRaises(exception.ImageScanLimit) as ctx:
            image_scan.scan('img', path, image_scan.UNIFIED,
                            image_scan.Bounds(max_seconds=5),
                            clock=lambda: next(ticks))
        self.assertIn('scan time', str(ctx.exception))

    def test_not_a_tarball(self):
        path = os.path.join(self.dir.name, 'junk')
        with open(path, 'wb') as f:
            f.write(os.urandom(4096))
        self.assertRaises(exception.UnsupportedImage, image_scan.scan,
                          'img', path, image_scan.UNIFIED, self.bounds)

    def test_root_tar(self):
        ok = self.tarball([directory('./etc'), member('./etc/hostname')])
        image_scan.scan('img', ok, image_scan.ROOT_TAR, self.bounds)
        bad = self.tarball([directory('./etc'), member('./../x')])
        self.assertRaises(exception.HostileImage, image_scan.scan,
                          'img', bad, image_scan.ROOT_TAR, self.bounds)
        link = self.tarball([directory('./etc'),
                             member('./etc/x', type=tarfile.SYMTYPE,
                                    linkname='../../x')])
        self.assertRaises(exception.HostileImage, image_scan.scan,
                          'img', link, image_scan.ROOT_TAR, self.bounds)


class FitsTest(unittest.TestCase):

    def test_larger_than_root_disk_refused(self):
        with self.assertRaises(exception.ImageTooLarge) as ctx:
            image_scan.check_fits('img', 2 * 1024 ** 3, 1)
        self.assertIn('root disk of 1 GiB', str(ctx.exception))

    def test_fits_or_no_size(self):
        image_scan.check_fits('img', 1024 ** 3, 1)
        image_scan.check_fits('img', 10 * 1024 ** 3, 0)
        image_scan.check_fits('img', None, 1)


class RootDiskTest(ScanTest):

    def test_refused_from_the_header_passing_the_root_disk(self):
        info = tarfile.TarInfo('rootfs/big')
        info.size = 2 * 1024 ** 3
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w') as tar:
            for info_, data in [METADATA] + ROOTFS:
                tar.addfile(info_, io.BytesIO(data) if data else None)
        raw = buf.getvalue().rstrip(b'\0')
        raw += b'\0' * (-len(raw) % 512) + info.tobuf() + b'\0' * 4096
        path = os.path.join(self.dir.name, 'big.tar.gz')
        with open(path, 'wb') as f:
            f.write(gzip.compress(raw))
        with self.assertRaises(exception.ImageTooLarge):
            image_scan.scan('img', path, image_scan.UNIFIED,
                            image_scan.Bounds(root_disk_bytes=1024 ** 3))
