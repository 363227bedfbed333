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

import unittest
from unittest import mock

from nova_syscontainer import exception
from nova_syscontainer.virt import client
from nova_syscontainer.virt import config_drive

SEED = config_drive.SEED_DIR

# What InstanceMetadata.metadata_for_config_drive() yields (abridged).
NOVA_ITEMS = [
    ('ec2/2009-04-04/meta-data.json', b'{}'),
    ('ec2/latest/meta-data.json', b'{}'),
    ('openstack/2012-08-10/meta_data.json', b'{"uuid": "u"}'),
    ('openstack/latest/meta_data.json', b'{"uuid": "u"}'),
    ('openstack/latest/user_data', b'#!/bin/sh\necho hi\n'),
    ('openstack/latest/network_data.json', '{"links": []}'),
    ('openstack/content/0000', b'file'),
]


class PlanTest(unittest.TestCase):

    def test_files_land_in_the_seed_directory_root_only(self):
        plan = config_drive.plan('u', NOVA_ITEMS)
        seeded = {f.path: f for f in plan.files if f.path.startswith(SEED)}
        self.assertEqual(len(NOVA_ITEMS), len(seeded))
        user_data = seeded[SEED + '/openstack/latest/user_data']
        self.assertEqual(b'#!/bin/sh\necho hi\n', user_data.content)
        self.assertEqual(0o600, user_data.mode)
        # str content (Nova yields some as str) is written as UTF-8.
        self.assertEqual(
            b'{"links": []}',
            seeded[SEED + '/openstack/latest/network_data.json'].content)

    def test_ds_identify_finds_a_dated_meta_data_json(self):
        # ds-identify (cloud-init 22.4) looks for
        # <seed>/openstack/2???-??-??/meta_data.json.
        paths = [f.path for f in config_drive.plan('u', NOVA_ITEMS).files]
        self.assertIn(SEED + '/openstack/2012-08-10/meta_data.json', paths)

    def test_config_drive_wins_over_devlxd(self):
        plan = config_drive.plan('u', NOVA_ITEMS)
        cfg = [f for f in plan.files
               if f.path == config_drive.DATASOURCE_CFG_PATH]
        self.assertEqual(1, len(cfg))
        self.assertIn(b'\ndatasource_list: [ ConfigDrive, None ]\n',
                      cfg[0].content)
        self.assertEqual(0o644, cfg[0].mode)

    def test_directories_parents_first_and_private_below_the_seed(self):
        plan = config_drive.plan('u', NOVA_ITEMS)
        paths = [p for p, _mode in plan.directories]
        self.assertEqual(len(paths), len(set(paths)))
        for i, path in enumerate(paths):
            parent = path.rsplit('/', 1)[0]
            if parent:
                self.assertIn(parent, paths[:i], path)
        modes = dict(plan.directories)
        self.assertEqual(0o755, modes['/var/lib/cloud'])
        self.assertEqual(0o700, modes[SEED])
        self.assertEqual(0o700, modes[SEED + '/openstack/latest'])
        self.assertEqual(0o755, modes['/etc/cloud/cloud.cfg.d'])
        # Every file's directory is created before it.
        for f in plan.files:
            self.assertIn(f.path.rsplit('/', 1)[0], paths)

    def test_paths_leaving_the_tree_are_refused(self):
        for bad in ('../../etc/shadow', '/etc/passwd', 'openstack/../../x',
                    '', '.', 'a\0b'):
            with self.subTest(path=bad):
                with self.assertRaises(exception.ConfigDriveRefused):
                    config_drive.plan('u', [(bad, b'x')])

    def test_empty_metadata_is_refused(self):
        with self.assertRaises(exception.ConfigDriveRefused) as ctx:
            config_drive.plan('u', [])
        # A build refusal: Nova does not reschedule it.
        self.assertIsInstance(ctx.exception, exception.InstanceBuildRefused)


class RequiredTest(unittest.TestCase):
    """Nova's own rule decides (nova.virt.configdrive.required_by)."""

    def instance(self, config_drive=False, launched_at=None, image_prop=None):
        inst = mock.Mock(config_drive=config_drive, launched_at=launched_at)
        props = {'img_config_drive': image_prop} if image_prop else {}
        inst.image_meta.properties.get.side_effect = (
            lambda key, default: props.get(key, default))
        return inst

    def test_requested_on_boot(self):
        self.assertTrue(config_drive.required(self.instance(True)))
        self.assertFalse(config_drive.required(self.instance(False)))

    def test_force_config_drive_for_new_instances_only(self):
        with mock.patch('nova.virt.configdrive.CONF') as conf:
            conf.force_config_drive = True
            self.assertTrue(config_drive.required(self.instance()))
            self.assertFalse(config_drive.required(
                self.instance(launched_at='2026-12-01')))

    def test_image_property_mandatory(self):
        self.assertTrue(config_drive.required(
            self.instance(image_prop='mandatory')))


class WriteFilesTest(unittest.TestCase):
    """The client's file API calls (the daemon itself is mocked)."""

    def test_creates_missing_directories_then_writes_files(self):
        c = client.DaemonClient(endpoint='/run/x.socket', project='p')
        calls = []

        def call(action, method, node, not_found=None, **kwargs):
            calls.append((method, kwargs['params']['path'],
                          kwargs.get('headers')))
            if method == 'get' and kwargs['params']['path'] == '/etc':
                return b'[]'
            if method == 'get':
                raise not_found
            return None

        files = [config_drive.File('/etc/x/f', b'data', 0o600)]
        with mock.patch.object(c, 'call', side_effect=call):
            c.write_files('c1', [('/etc', 0o755), ('/etc/x', 0o700)], files)
        self.assertEqual([('get', '/etc'), ('get', '/etc/x'),
                          ('post', '/etc/x'), ('post', '/etc/x/f')],
                         [(m, p) for m, p, _h in calls])
        self.assertEqual({'X-LXD-type': 'directory', 'X-LXD-mode': '0700',
                          'X-LXD-uid': '0', 'X-LXD-gid': '0',
                          'X-LXD-write': 'overwrite'}, calls[2][2])
        self.assertEqual('file', calls[3][2]['X-LXD-type'])
        self.assertEqual('0600', calls[3][2]['X-LXD-mode'])


class MetadataServiceTest(unittest.TestCase):
    """Instances without a config drive: the OpenStack datasource."""

    def test_drop_in_only_into_an_existing_cloud_cfg_d(self):
        drive = config_drive.metadata_service_plan()
        self.assertEqual([('/etc/cloud/cloud.cfg.d', None)],
                         drive.directories)
        self.assertEqual([config_drive.METADATA_SERVICE_CFG_PATH],
                         [f.path for f in drive.files])
        self.assertIn(b'datasource_list: [ OpenStack, None ]',
                      drive.files[0].content)
        self.assertEqual(0o644, drive.files[0].mode)

    def test_write_files_writes_nothing_without_a_required_directory(self):
        c = client.DaemonClient(endpoint='/run/x.socket', project='p')
        calls = []

        def call(action, method, node, not_found=None, **kwargs):
            calls.append((method, kwargs['params']['path']))
            if method == 'get':
                raise not_found
            return None

        drive = config_drive.metadata_service_plan()
        with mock.patch.object(c, 'call', side_effect=call):
            self.assertFalse(c.write_files('c1', drive.directories,
                                           drive.files))
        self.assertEqual([('get', '/etc/cloud/cloud.cfg.d')], calls)

        calls[:] = []
        with mock.patch.object(c, 'call', side_effect=lambda *a, **k: (
                calls.append((a[1], k['params']['path'])) or b'[]')):
            self.assertTrue(c.write_files('c1', drive.directories,
                                          drive.files))
        self.assertEqual([('get', '/etc/cloud/cloud.cfg.d'),
                          ('post', config_drive.METADATA_SERVICE_CFG_PATH)],
                         calls)
