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
"""The live-migration data the driver borrows from Nova.

Live migration carries ``HyperVLiveMigrateData`` (live_migration.py,
check_destination). Nova keeps that class only for a while after the
Hyper-V driver's removal ("can be removed too in Nova 31.0.0 or later",
nova/objects/migrate_data.py). These tests fail the day the installed
Nova removes or changes what the driver relies on; doc/source/migration.rst
says what replaces it then.
"""

from unittest import mock

from nova.compute import manager
from nova import objects
from nova.objects import base as obj_base
from nova.objects import migrate_data
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import live_migration
from nova_syscontainer.virt import peers

CONF = sc_conf.CONF
objects.register_all()

#: The fields the driver or Nova's manager read or set on it in a live
#: migration: its own is_shared_instance_path, and LiveMigrateData's
#: migration (the driver's progress reports), vifs, wait_for_vif_plugged,
#: is_volume_backed, old_vol_attachment_ids and pci_dev_map_src_dst (the
#: manager's).
FIELDS = ('is_shared_instance_path', 'migration', 'vifs',
          'wait_for_vif_plugged', 'is_volume_backed',
          'old_vol_attachment_ids', 'pci_dev_map_src_dst')


class BorrowedMigrateDataTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        for key, value in (('allow_live_migration', True),
                           ('enable_checkpoint', True)):
            CONF.set_override(key, value, group='syscontainer')
            self.addCleanup(CONF.clear_override, key, group='syscontainer')

    def data(self):
        """What check_can_live_migrate_destination hands to Nova."""
        return live_migration.check_destination(
            'https://192.0.2.2:8443',
            {'stats': {peers.ENDPOINT_STAT:
                       'https://192.0.2.1:8443'}})

    def test_the_class_is_still_in_nova_and_registered(self):
        cls = migrate_data.HyperVLiveMigrateData
        self.assertIs(cls, objects.HyperVLiveMigrateData)
        self.assertTrue(issubclass(cls, migrate_data.LiveMigrateData))
        # A conductor, which never loads this driver, finds it by name.
        self.assertIs(cls, obj_base.NovaObject.obj_class_from_name(
            'HyperVLiveMigrateData', cls.VERSION))
        for field in FIELDS:
            self.assertIn(field, cls.fields)

    def test_what_the_driver_returns_survives_the_round_trip(self):
        data = self.data()
        self.assertIsInstance(data, migrate_data.HyperVLiveMigrateData)
        migration = objects.Migration(id=42, status='running')
        data.migration = migration
        data.wait_for_vif_plugged = True
        back = obj_base.NovaObject.obj_from_primitive(data.obj_to_primitive())
        self.assertIsInstance(back, migrate_data.HyperVLiveMigrateData)
        self.assertFalse(back.is_shared_instance_path)
        self.assertTrue(back.wait_for_vif_plugged)
        self.assertEqual(42, back.migration.id)
        self.assertTrue(back.obj_attr_is_set('migration'))

    def test_nova_still_cleans_up_both_ends_for_it(self):
        # For HyperVLiveMigrateData without a shared instance path Nova's
        # manager calls driver.cleanup (destroy_disks) on the source after
        # a move, and rollback_live_migration_at_destination after a
        # failed one; the driver relies on both. Generic LiveMigrateData
        # would get neither.
        flags = manager.ComputeManager._live_migration_cleanup_flags(
            mock.sentinel.manager, self.data())
        self.assertEqual((True, True), flags)

    def test_the_replacement_named_in_the_docs_gets_the_same_calls(self):
        # doc/source/migration.rst: if Nova drops the class, the driver
        # moves to LibvirtLiveMigrateData without shared storage; a class
        # of its own (or any other) would get no clean-up calls.
        libvirt = objects.LibvirtLiveMigrateData(
            is_shared_instance_path=False, is_shared_block_storage=False)
        other = objects.VMwareLiveMigrateData(cluster_name='c',
                                              datastore_regex='d')
        flags = manager.ComputeManager._live_migration_cleanup_flags
        self.assertEqual((True, True), flags(mock.sentinel.manager, libvirt))
        self.assertEqual((False, False), flags(mock.sentinel.manager, other))
