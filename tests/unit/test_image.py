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

import hashlib
import io
import os
import tarfile
import tempfile
import unittest

from nova_syscontainer import exception
from nova_syscontainer.virt import image


def make_tar(path, members, mode='w:gz'):
    with tarfile.open(path, mode) as tar:
        for name in members:
            info = tarfile.TarInfo(name)
            if name.endswith('/'):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = b'architecture: x86_64\nproperties: {}\n'
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


class FormatTest(unittest.TestCase):

    def test_bare_raw_accepted(self):
        image.check_format('i', {'container_format': 'bare',
                                 'disk_format': 'raw'})

    def test_other_formats_refused_with_advice(self):
        for cf, df in (('bare', 'qcow2'), ('ovf', 'raw'), (None, None),
                       ('docker', 'raw')):
            with self.subTest(cf=cf, df=df):
                with self.assertRaises(exception.UnsupportedImage) as ctx:
                    image.check_format('img', {'container_format': cf,
                                               'disk_format': df})
                self.assertIn('--disk-format raw', str(ctx.exception))


class _TempDirTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def path(self, name):
        return os.path.join(self.dir.name, name)


class TarballTest(_TempDirTest):

    def test_unified_image_accepted_in_any_compression(self):
        for mode in ('w', 'w:gz', 'w:xz', 'w:bz2'):
            with self.subTest(mode=mode):
                p = self.path('img.' + mode.replace(':', ''))
                make_tar(p, ['metadata.yaml', 'rootfs/', 'rootfs/bin/sh'],
                         mode)
                image.check_lxd_tarball('i', p)

    def test_dot_slash_members_accepted(self):
        p = self.path('dot.tar')
        make_tar(p, ['./metadata.yaml', './rootfs/bin/sh'], 'w')
        image.check_lxd_tarball('i', p)

    def test_missing_metadata_refused(self):
        p = self.path('root.tar.gz')
        make_tar(p, ['rootfs/', 'rootfs/bin/sh'])
        with self.assertRaises(exception.UnsupportedImage) as ctx:
            image.check_lxd_tarball('i', p)
        self.assertIn('metadata.yaml', str(ctx.exception))

    def test_missing_rootfs_refused(self):
        p = self.path('meta.tar.gz')
        make_tar(p, ['metadata.yaml'])
        with self.assertRaises(exception.UnsupportedImage) as ctx:
            image.check_lxd_tarball('i', p)
        self.assertIn('rootfs/', str(ctx.exception))

    def test_not_a_tarball_refused(self):
        p = self.path('disk.qcow2')
        with open(p, 'wb') as f:
            f.write(b'QFI\xfb' + os.urandom(4096))
        with self.assertRaises(exception.UnsupportedImage) as ctx:
            image.check_lxd_tarball('i', p)
        self.assertIn('not a readable tarball', str(ctx.exception))


class RootTarTest(_TempDirTest):
    """disk_format root-tar: a distribution's rootfs tarball."""

    def test_format_accepted(self):
        self.assertEqual(image.ROOT_TAR, image.check_format(
            'i', {'container_format': 'bare', 'disk_format': 'root-tar'}))

    def test_rootfs_tarball_accepted(self):
        for mode in ('w:xz', 'w:gz', 'w'):
            with self.subTest(mode=mode):
                p = self.path('root.' + mode.replace(':', ''))
                make_tar(p, ['./', './etc/', './etc/os-release',
                             './sbin/init'], mode)
                image.check_root_tarball('i', p)

    def refused(self, members, why):
        p = self.path('bad.tar')
        make_tar(p, members, 'w')
        with self.assertRaises(exception.UnsupportedImage) as ctx:
            image.check_root_tarball('i', p)
        self.assertIn(why, str(ctx.exception))

    def test_unified_image_refused_with_advice(self):
        self.refused(['metadata.yaml', 'rootfs/etc/'], '--disk-format raw')

    def test_not_a_rootfs_refused(self):
        self.refused(['bin/sh'], 'no etc/')

    def test_members_leaving_the_tree_refused(self):
        for bad in ('/etc/passwd', '../etc/x', './etc/../../x'):
            with self.subTest(member=bad):
                self.refused(['etc/', bad], 'leaves the image')

    def test_hard_link_leaving_the_tree_refused(self):
        p = self.path('link.tar')
        with tarfile.open(p, 'w') as tar:
            tar.addfile(tarfile.TarInfo('etc/'))
            link = tarfile.TarInfo('etc/shadow')
            link.type = tarfile.LNKTYPE
            link.linkname = '../../etc/shadow'
            tar.addfile(link)
        with self.assertRaises(exception.UnsupportedImage):
            image.check_root_tarball('i', p)

    def test_metadata_from_properties(self):
        yaml_text = image.root_tar_metadata('i', {
            'name': 'noble', 'properties': {
                'architecture': 'x86_64', 'os_distro': 'ubuntu',
                'os_version': '24.04'}}).decode()
        lines = yaml_text.splitlines()
        self.assertEqual('architecture: "x86_64"', lines[0])
        self.assertTrue(lines[1].startswith('creation_date: '))
        self.assertIn('  os: "ubuntu"', lines)
        self.assertIn('  release: "24.04"', lines)
        self.assertIn('  description: "noble"', lines)

    def test_property_values_cannot_inject_yaml(self):
        yaml_text = image.root_tar_metadata('i', {'properties': {
            'architecture': 'x86_64\nexpiry_date: 1'}}).decode()
        self.assertNotIn('\nexpiry_date', yaml_text)

    def test_metadata_needs_architecture(self):
        with self.assertRaises(exception.UnsupportedImage) as ctx:
            image.root_tar_metadata('i', {'properties': {}})
        self.assertIn('architecture', str(ctx.exception))

    def test_metadata_tarball_holds_only_metadata_yaml(self):
        data = image.metadata_tarball(b'architecture: "x86_64"\n')
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            self.assertEqual(['metadata.yaml'], tar.getnames())
            self.assertEqual(b'architecture: "x86_64"\n',
                             tar.extractfile('metadata.yaml').read())


class HashTest(unittest.TestCase):

    def test_prefers_os_hash(self):
        self.assertEqual(('sha512', 'abc'), image._expected_hash(
            {'os_hash_algo': 'sha512', 'os_hash_value': 'abc',
             'checksum': 'md5sum'}))

    def test_falls_back_to_md5_checksum(self):
        self.assertEqual(('md5', 'x'),
                         image._expected_hash({'checksum': 'x'}))

    def test_none_when_glance_gives_nothing(self):
        self.assertEqual((None, None), image._expected_hash({}))

    def test_hashing_writer(self):
        sink = io.BytesIO()
        writer = image._HashingWriter(sink, 'sha512')
        for chunk in (b'abc', b'def'):
            writer.write(chunk)
        self.assertEqual(b'abcdef', sink.getvalue())
        self.assertEqual(6, writer.size)
        self.assertEqual(hashlib.sha256(b'abcdef').hexdigest(),
                         writer.sha256.hexdigest())
        self.assertEqual(hashlib.sha512(b'abcdef').hexdigest(),
                         writer.glance_hash.hexdigest())


class GlanceIdTest(unittest.TestCase):

    def test_alias_round_trip(self):
        rec = {'aliases': [{'name': 'other'},
                           {'name': image.alias_for('abc-1')}]}
        self.assertEqual('abc-1', image._glance_id(rec))
        self.assertIsNone(image._glance_id({'aliases': [{'name': 'x'}]}))
        self.assertIsNone(image._glance_id({'aliases': None}))
