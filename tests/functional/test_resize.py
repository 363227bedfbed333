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
"""Resize on one host: the kernel's limits follow the flavor."""

import os

from nova.virt import hardware

from tests.functional import base

MiB = 1024 * 1024


class SameHostResizeTest(base.SysContainerTestCase):

    def setUp(self):
        super().setUp()
        self.flags(allow_resize_to_same_host=True)
        self.big = self.make_flavor('c2.medium', vcpus=2, memory_mb=256)

    def enforced(self, name):
        memory = int(self.daemon.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
        cpus = len(hardware.parse_cpu_spec(self.daemon.cgroup_value(
            name, 'cpuset', 'cpuset.cpus')))
        return memory // MiB, cpus

    def write(self, name, path, text):
        with open('/proc/%d/root%s' % (self.daemon.init_pid(name), path),
                  'w') as f:
            f.write(text)

    def exists(self, name, path):
        return os.path.exists('/proc/%d/root%s' % (
            self.daemon.init_pid(name), path))

    def resize(self, server, flavor):
        return self.action(server, {'resize': {'flavorRef': flavor}},
                           'VERIFY_RESIZE')

    def test_resize_confirm_applies_new_limits_and_keeps_data(self):
        server = self.boot()
        name = self.container_name(server)
        self.assertEqual((128, 1), self.enforced(name))
        self.write(name, '/root/before-resize', 'kept')

        server = self.resize(server, self.big)
        self.assertEqual(name, self.container_name(server))
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual((256, 2), self.enforced(name))
        self.assertTrue(self.exists(name, '/root/before-resize'))

        server = self.action(server, {'confirmResize': None}, 'ACTIVE')
        self.assertEqual((256, 2), self.enforced(name))
        self.assertEqual('c2.medium', self.daemon.instance(name)['config'][
            'user.nova_syscontainer.flavor'])

    def test_revert_restores_old_limits_and_keeps_data(self):
        server = self.boot()
        name = self.container_name(server)
        self.write(name, '/root/before-resize', 'kept')
        server = self.resize(server, self.big)
        self.write(name, '/root/during-resize', 'kept too')
        self.assertEqual((256, 2), self.enforced(name))

        server = self.action(server, {'revertResize': None}, 'ACTIVE')
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual((128, 1), self.enforced(name))
        self.assertTrue(self.exists(name, '/root/before-resize'))
        self.assertTrue(self.exists(name, '/root/during-resize'))
        self.assertEqual('c1.small', self.daemon.instance(name)['config'][
            'user.nova_syscontainer.flavor'])

    def test_revert_after_suspend_resume(self):
        # A CRIU restore leaves LXD 5.0.2 unable to restore snapshots of the
        # container ("In use"); revert must not depend on one.
        server = self.boot()
        name = self.container_name(server)
        server = self.action(server, {'suspend': None}, 'SUSPENDED')
        server = self.action(server, {'resume': None}, 'ACTIVE')
        server = self.resize(server, self.big)
        server = self.action(server, {'revertResize': None}, 'ACTIVE')
        self.assertEqual((128, 1), self.enforced(name))

    def test_resize_of_stopped_server_stays_stopped(self):
        server = self.boot()
        name = self.container_name(server)
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        server = self.resize(server, self.big)
        server = self.action(server, {'confirmResize': None}, 'SHUTOFF')
        self.assertEqual('Stopped', self.daemon.state(name)['status'])
        config = self.daemon.instance(name)['config']
        self.assertEqual('256MiB', config['limits.memory'])

    def test_unenforceable_flavor_refused_before_anything_changes(self):
        server = self.boot()
        name = self.container_name(server)
        token = self.daemon.counter(name)[0]
        bad = self.make_flavor('c2.quota', vcpus=2, memory_mb=256,
                               extra_specs={'quota:cpu_limit': '512'})
        self.api.post_server_action(server['id'],
                                    {'resize': {'flavorRef': bad}})
        self._wait_for_instance_action_event(
            server, 'resize', 'compute_resize_instance', 'Error')
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertEqual(token, self.daemon.counter(name)[0],
                         'the container was never stopped')
        self.assertEqual((128, 1), self.enforced(name))
