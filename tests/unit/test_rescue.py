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
"""Rescue's decisions (names, paths, body) and its roll-back on failure."""

import copy
import json
import types
import unittest
from unittest import mock

from nova.compute import vm_states
from nova import objects

from nova_syscontainer import exception
from nova_syscontainer.virt import container
from nova_syscontainer.virt import rescue

objects.register_all()

UUID = '9b1c2d3e-4f50-4a6b-8c7d-1e2f3a4b5c6d'
ORIG_IMAGE = '1f2e3d4c-5b6a-4789-8a0b-c1d2e3f40516'
RESCUE_IMAGE = '7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d'
IDMAP = json.dumps([{'Isuid': True, 'Isgid': False, 'Hostid': 100000,
                     'Nsid': 0, 'Maprange': 65536}])
ORIGINAL = {
    'name': 'instance-0000002a',
    'status': 'Stopped',
    'profiles': ['default', 'extra'],
    'config': {
        container.MANAGED_KEY: 'true', container.UUID_KEY: UUID,
        container.HOST_KEY: 'node1', container.IMAGE_KEY: ORIG_IMAGE,
        container.FLAVOR_KEY: 'm1', 'limits.memory': '128MiB',
        'limits.cpu.allowance': '50%', 'security.nesting': 'false',
        'raw.lxc': 'lxc.pty.max = 1', 'boot.autostart': 'false',
        'volatile.eth0.hwaddr': 'fa:16:3e:00:00:01',
        'volatile.last_state.idmap': IDMAP, 'user.other': 'x',
    },
    'devices': {
        'root': {'type': 'disk', 'path': '/', 'pool': 'quota',
                 'size': '1GiB'},
        'nic-port1': {'type': 'nic', 'nictype': 'bridged',
                      'parent': 'qbrport1', 'hwaddr': 'fa:16:3e:00:00:01'},
    },
    'expanded_devices': {},
}


def instance(vm_state=vm_states.ACTIVE):
    return types.SimpleNamespace(uuid=UUID, image_ref=ORIG_IMAGE,
                                 trusted_certs=None, vm_state=vm_state)


def image_meta(image_id=RESCUE_IMAGE, **props):
    return objects.ImageMeta.from_dict(
        {'id': image_id, 'properties': props})


class DecisionsTest(unittest.TestCase):

    def test_rescue_name_is_a_container_name(self):
        self.assertEqual('instance-0000002a-rescue',
                         rescue.rescue_name('instance-0000002a'))
        long_name = 'a' * 63
        name = rescue.rescue_name(long_name)
        self.assertEqual(63, len(name))
        self.assertTrue(name.endswith(rescue.SUFFIX))

    def test_daemon_dir(self):
        self.assertEqual('/srv/lxd', rescue.daemon_dir(
            '/srv/lxd', '/var/lib/lxd/unix.socket', {}))
        self.assertEqual('/var/lib/nova-syscontainer/lxd-b', rescue.daemon_dir(
            None, '/var/lib/nova-syscontainer/lxd-b/unix.socket', {}))
        self.assertEqual('/var/lib/lxd', rescue.daemon_dir(
            None, 'https://192.0.2.5:8443',
            {'environment': {'server': 'lxd'}}))
        self.assertEqual('/var/lib/incus', rescue.daemon_dir(
            None, 'https://192.0.2.5:8443',
            {'environment': {'server': 'incus'}}))

    def test_root_source_follows_the_daemon_layout(self):
        self.assertEqual(
            '/var/lib/lxd/storage-pools/quota/containers/c1/rootfs',
            rescue.root_source('/var/lib/lxd', 'quota', 'default', 'c1'))
        self.assertEqual(
            '/var/lib/lxd/storage-pools/p/containers/proj_c1/rootfs',
            rescue.root_source('/var/lib/lxd', 'p', 'proj', 'c1'))

    def test_root_pool_from_local_or_profile_devices(self):
        self.assertEqual('quota', rescue.root_pool(ORIGINAL))
        rec = {'devices': {}, 'expanded_devices': {
            'root': {'type': 'disk', 'path': '/', 'pool': 'default'}}}
        self.assertEqual('default', rescue.root_pool(rec))
        self.assertIsNone(rescue.root_pool({'devices': {}}))

    def test_body_keeps_limits_nics_root_and_adds_the_mount(self):
        body = rescue.create_body(ORIGINAL, instance(), RESCUE_IMAGE, 'fp',
                                  '/src/rootfs')
        self.assertEqual('instance-0000002a-rescue', body['name'])
        self.assertEqual(['default', 'extra'], body['profiles'])
        self.assertEqual({'type': 'image', 'fingerprint': 'fp'},
                         body['source'])
        config = body['config']
        for key in ('limits.memory', 'limits.cpu.allowance',
                    'security.nesting', 'raw.lxc', container.MANAGED_KEY,
                    container.UUID_KEY, container.HOST_KEY):
            self.assertEqual(ORIGINAL['config'][key], config[key], key)
        self.assertEqual(UUID, config[rescue.RESCUE_KEY])
        self.assertEqual(RESCUE_IMAGE, config[container.IMAGE_KEY])
        # No volatile state, no foreign keys of the original.
        self.assertFalse([k for k in config if k.startswith('volatile.')])
        self.assertNotIn('user.other', config)
        devices = body['devices']
        self.assertEqual(ORIGINAL['devices']['root'], devices['root'])
        self.assertEqual(ORIGINAL['devices']['nic-port1'],
                         devices['nic-port1'])
        self.assertEqual({'type': 'disk', 'source': '/src/rootfs',
                          'path': rescue.MOUNT_PATH},
                         devices[rescue.ROOT_DEVICE])
        self.assertTrue(rescue.is_rescue(body))
        self.assertFalse(rescue.is_rescue(ORIGINAL))

    def test_refusals(self):
        inst = instance()
        rescue.check_rescuable(inst, ORIGINAL, 'btrfs')
        rescue.check_rescuable(inst, ORIGINAL, 'dir')
        self.assertRaises(exception.RescueRefused, rescue.check_rescuable,
                          inst, ORIGINAL, 'zfs')
        isolated = copy.deepcopy(ORIGINAL)
        isolated['config']['security.idmap.isolated'] = 'true'
        with self.assertRaises(exception.RescueRefused) as ctx:
            rescue.check_rescuable(inst, isolated, 'dir')
        self.assertIn('isolated id map', str(ctx.exception))
        body = rescue.create_body(ORIGINAL, inst, 'i', 'fp', '/s')
        self.assertRaises(exception.RescueRefused, rescue.check_rescuable,
                          inst, body, 'dir')

    def test_same_idmap(self):
        self.assertTrue(rescue.same_idmap(
            ORIGINAL, {'config': {'volatile.idmap.next': IDMAP}}))
        self.assertFalse(rescue.same_idmap(
            ORIGINAL, {'config': {'volatile.idmap.next': '[]'}}))
        privileged = {'config': {'volatile.last_state.idmap': '[]'}}
        self.assertTrue(rescue.same_idmap(
            privileged, {'config': {'volatile.idmap.next': '[]'}}))


class FakeClient(object):
    """The daemon as far as rescue uses it: records, calls made."""

    project = 'default'

    def __init__(self, original):
        self.records = {original['name']: copy.deepcopy(original)}
        self.calls = []
        self.fail_on = None

    def _maybe_fail(self, call):
        self.calls.append(call)
        if self.fail_on == call[0]:
            raise exception.DaemonError(endpoint='e', action=call[0],
                                        reason='refused')

    def pool(self, name):
        return {'driver': 'btrfs'}

    def find_instance(self, name):
        return copy.deepcopy(self.records.get(name))

    def get_instance(self, name):
        return copy.deepcopy(self.records[name])

    def create_instance(self, body):
        self._maybe_fail(('create', body['name']))
        rec = copy.deepcopy(body)
        rec['status'] = 'Stopped'
        rec['config']['volatile.idmap.next'] = IDMAP
        self.records[body['name']] = rec

    def change_state(self, name, action, force=False):
        self._maybe_fail((action, name))
        self.records[name]['status'] = (
            'Running' if action == 'start' else 'Stopped')

    def get_writable(self, name):
        rec = self.records[name]
        return copy.deepcopy({key: rec.get(key) for key in (
            'config', 'devices', 'profiles')})

    def update_instance(self, name, body):
        self._maybe_fail(('update', name))
        self.records[name].update(copy.deepcopy(body))

    def delete_instance(self, name):
        self._maybe_fail(('delete', name))
        del self.records[name]

    def execute(self, name, command, stdin):
        self._maybe_fail(('exec', name, tuple(command), stdin))
        return 0, '', ''


class SequenceTest(unittest.TestCase):

    def setUp(self):
        self.client = FakeClient(ORIGINAL)
        self.store = mock.Mock()
        self.store.ensure.return_value = ('fp', False)
        self.rescue = rescue.rescue_name(ORIGINAL['name'])

    def start(self, inst=None, meta=None, password='s3cret'):
        rescue.start(self.client, self.store, 'ctx', inst or instance(),
                     self.client.get_instance(ORIGINAL['name']),
                     meta or image_meta(), password, '/var/lib/lxd')

    def test_rescue_then_unrescue(self):
        self.start(meta=image_meta(os_admin_user='admin'))
        self.store.ensure.assert_called_once_with('ctx', RESCUE_IMAGE, None)
        rec = self.client.records[self.rescue]
        self.assertEqual('Running', rec['status'])
        # The NICs are parked on the rescue container (LXD 5.0.2 starts
        # no second container with the same MAC).
        self.assertEqual(ORIGINAL['devices']['nic-port1'],
                         rec['devices']['nic-port1'])
        self.assertNotIn('nic-port1',
                         self.client.records[ORIGINAL['name']]['devices'])
        self.assertEqual(
            '/var/lib/lxd/storage-pools/quota/containers/'
            'instance-0000002a/rootfs',
            rec['devices'][rescue.ROOT_DEVICE]['source'])
        self.assertIn(('exec', self.rescue, ('chpasswd',),
                       b'admin:s3cret\n'), self.client.calls)
        self.assertEqual(rec, rescue.record(self.client, instance(),
                                            ORIGINAL['name']))

        rescue.finish(self.client, instance(vm_states.RESCUED),
                      self.client.get_instance(ORIGINAL['name']))
        self.assertNotIn(self.rescue, self.client.records)
        back = self.client.records[ORIGINAL['name']]
        self.assertEqual('Running', back['status'])
        # Exactly as it was: config, devices, profiles.
        self.assertEqual(ORIGINAL['config'], back['config'])
        self.assertEqual(ORIGINAL['devices'], back['devices'])
        self.assertEqual(ORIGINAL['profiles'], back['profiles'])

    def test_own_image_when_the_meta_has_no_id(self):
        self.start(meta=objects.ImageMeta.from_dict({'properties': {}}))
        self.store.ensure.assert_called_once_with('ctx', ORIG_IMAGE, None)

    def test_failed_start_removes_rescue_and_restarts_original(self):
        self.client.fail_on = 'start'
        self.assertRaises(exception.DaemonError, self.start)
        self.assertNotIn(self.rescue, self.client.records)
        # The start of the original failed too (fail_on), but was tried.
        self.assertIn(('start', ORIGINAL['name']), self.client.calls)

    def test_failed_password_rolls_back(self):
        self.client.fail_on = 'exec'
        self.assertRaises(exception.DaemonError, self.start)
        self.assertNotIn(self.rescue, self.client.records)
        self.assertEqual('Running',
                         self.client.records[ORIGINAL['name']]['status'])
        self.assertEqual(ORIGINAL['config'],
                         self.client.records[ORIGINAL['name']]['config'])
        self.assertEqual(ORIGINAL['devices'],
                         self.client.records[ORIGINAL['name']]['devices'])

    def test_a_stopped_server_stays_stopped_after_a_failure(self):
        self.client.fail_on = 'exec'
        self.assertRaises(exception.DaemonError, self.start,
                          instance(vm_states.STOPPED))
        self.assertEqual('Stopped',
                         self.client.records[ORIGINAL['name']]['status'])

    def test_image_without_chpasswd_is_rescued_anyway(self):
        def no_chpasswd(name, command, stdin):
            raise exception.GuestCommandNotFound(command='chpasswd')
        self.client.execute = no_chpasswd
        with self.assertLogs(rescue.LOG.logger, 'WARNING') as logs:
            self.start()
        self.assertEqual('Running',
                         self.client.records[self.rescue]['status'])
        self.assertIn('rescue password was not set', logs.output[0])

    def test_idmap_mismatch_is_refused_and_rolled_back(self):
        create = self.client.create_instance

        def isolated_create(body):
            create(body)
            self.client.records[body['name']]['config'][
                'volatile.idmap.next'] = '[]'
        self.client.create_instance = isolated_create
        self.assertRaises(exception.RescueRefused, self.start)
        self.assertNotIn(self.rescue, self.client.records)

    def test_a_foreign_container_of_that_name_is_never_touched(self):
        self.client.records[self.rescue] = {'name': self.rescue,
                                            'status': 'Running',
                                            'config': {}}
        self.assertRaises(exception.RescueRefused, self.start)
        self.assertIn(self.rescue, self.client.records)
        self.assertFalse([c for c in self.client.calls
                          if c[0] == 'create'])
        # destroy's removal leaves it too, without raising.
        self.assertFalse(rescue.remove(self.client, instance(),
                                       ORIGINAL['name'], strict=False))
        self.assertIn(self.rescue, self.client.records)

    def test_a_leftover_rescue_container_is_replaced(self):
        self.start()
        self.client.records[self.rescue]['config']['user.mark'] = 'old'
        self.start()
        self.assertNotIn('user.mark',
                         self.client.records[self.rescue]['config'])

    def test_zfs_pool_refused_before_anything(self):
        self.client.pool = lambda name: {'driver': 'zfs'}
        self.assertRaises(exception.RescueRefused, self.start)
        self.assertEqual([], self.client.calls)
        self.store.ensure.assert_not_called()
