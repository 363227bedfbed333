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

import types
import unittest

from nova.compute import power_state

from nova_syscontainer import exception
from nova_syscontainer.virt import container
from nova_syscontainer.virt import flavor_limits


def instance(name='instance-0000000a', uuid='3c4b7a8e-0000-4000-8000-1'):
    return types.SimpleNamespace(
        name=name, uuid=uuid, image_ref='img-1',
        flavor=types.SimpleNamespace(name='small'))


class NameTest(unittest.TestCase):

    def test_instance_name_is_container_name(self):
        self.assertEqual('instance-0000000a',
                         container.name(instance()))

    def test_invalid_names_refused(self):
        for bad in ('0abc', 'a_b', 'x' * 64, 'abc-', 'a.b'):
            with self.subTest(name=bad):
                self.assertRaises(exception.InstanceBuildRefused,
                                  container.name, instance(name=bad))


class PowerStateTest(unittest.TestCase):

    def test_mapping(self):
        cases = [('Running', False, power_state.RUNNING),
                 ('Frozen', False, power_state.PAUSED),
                 ('Stopped', False, power_state.SHUTDOWN),
                 ('Stopped', True, power_state.SUSPENDED),
                 ('Error', False, power_state.CRASHED),
                 ('Starting', False, power_state.NOSTATE)]
        for status, stateful, expected in cases:
            with self.subTest(status=status, stateful=stateful):
                self.assertEqual(
                    expected, container.power_state_of(status, stateful))


class CreateBodyTest(unittest.TestCase):

    def test_markers_cannot_be_overridden(self):
        limits = flavor_limits.Limits(
            config={'limits.cpu': '1', container.MANAGED_KEY: 'false'},
            devices={'root': {'type': 'disk', 'path': '/',
                              'pool': 'default'}},
            raw_lxc=['lxc.cgroup.cpu.shares = 512'])
        body = container.create_body(
            instance(), 'node1', 'f' * 64, limits, ['default'],
            raw_lxc=['lxc.pty.max = 1'])
        cfg = body['config']
        self.assertEqual('true', cfg[container.MANAGED_KEY])
        self.assertEqual('1', cfg['limits.cpu'])
        self.assertEqual('lxc.pty.max = 1\nlxc.cgroup.cpu.shares = 512',
                         cfg['raw.lxc'])
        self.assertEqual(instance().uuid, cfg[container.UUID_KEY])
        self.assertEqual({'type': 'image', 'fingerprint': 'f' * 64},
                         body['source'])
        self.assertTrue(container.is_managed(body))
        self.assertTrue(container.is_managed(body, 'node1'))
        self.assertFalse(container.is_managed(body, 'node2'))
        self.assertEqual(instance().uuid, container.instance_uuid(body))
        # What cloud-init's OpenStack datasource looks for without DMI.
        self.assertEqual('OpenStack Nova',
                         cfg['environment.product_name'])

    def test_unmanaged_record(self):
        self.assertFalse(container.is_managed({'config': {}}))
        self.assertFalse(container.is_managed({}))

    def test_no_raw_lxc_without_lines(self):
        limits = flavor_limits.Limits(config={}, devices={})
        body = container.create_body(instance(), 'n', 'f', limits, [])
        self.assertNotIn('raw.lxc', body['config'])


class ReconfiguredTest(unittest.TestCase):

    def test_flavor_keys_replaced_others_kept(self):
        writable = {
            'config': {'limits.cpu': '1', 'limits.memory': '128MiB',
                       'limits.processes': '50', 'security.nesting': 'true',
                       'raw.lxc': 'old', 'volatile.base_image': 'abc',
                       'user.other': 'x', container.FLAVOR_KEY: 'small'},
            'devices': {'root': {'type': 'disk', 'path': '/',
                                 'pool': 'default', 'size': '1GiB'},
                        'data': {'type': 'disk', 'path': '/mnt'}},
            'profiles': ['default'], 'description': 'd',
        }
        limits = flavor_limits.Limits(
            config={'limits.cpu': '2', 'limits.memory': '256MiB'},
            devices={'root': {'type': 'disk', 'path': '/',
                              'pool': 'default', 'size': '2GiB'}})
        inst = instance()
        inst.flavor.name = 'big'
        body = container.reconfigured(writable, inst, 'node1', limits,
                                      raw_lxc=['new'])
        cfg = body['config']
        self.assertEqual('2', cfg['limits.cpu'])
        self.assertEqual('256MiB', cfg['limits.memory'])
        self.assertNotIn('limits.processes', cfg)
        self.assertNotIn('security.nesting', cfg)
        self.assertEqual('new', cfg['raw.lxc'])
        self.assertEqual('abc', cfg['volatile.base_image'])
        self.assertEqual('x', cfg['user.other'])
        self.assertEqual('big', cfg[container.FLAVOR_KEY])
        self.assertEqual('2GiB', body['devices']['root']['size'])
        self.assertIn('data', body['devices'])
        self.assertEqual(['default'], body['profiles'])
        # The caller's record is not modified.
        self.assertEqual('1', writable['config']['limits.cpu'])
