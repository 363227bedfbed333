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
"""The README's main job: boot a server through Nova on the real daemon.

Nova's API, conductor, scheduler and nova-compute run in this process
(Nova's own service code, with Placement and an in-memory Glance), and
nova-compute uses ``compute_driver = syscontainer.SysContainerDriver``
against the LXD daemon of this machine. Run by ``tools/demo.sh``.
"""

import subprocess
import sys
import time

from tests.functional import base
from tests.functional import daemon


def say(text=''):
    sys.__stdout__.write(text + '\n')
    sys.__stdout__.flush()


class BootDemo(base.SysContainerTestCase):

    def test_boot_a_server(self):
        info = self.daemon.lxd.host_info['environment']
        say('== Nova %s services in this process, compute_driver = %s' % (
            __import__('nova.version').version.version_string(),
            self.compute_driver))
        say('== LXD %s at %s, storage pool %r' % (
            info['server_version'], daemon.ENDPOINT, daemon.POOL))
        flavor = self.make_flavor('demo.small', vcpus=1, memory_mb=256)
        say('== openstack flavor create demo.small --vcpus 1 --ram 256 '
            '--disk 0')
        say('== openstack server create --image busybox-counter '
            '--flavor demo.small --nic none demo')
        start = time.monotonic()
        server = self.boot(name='demo', flavor_id=flavor)
        say('   status %s on host %s after %.1f s (instance_name %s)' % (
            server['status'], server['OS-EXT-SRV-ATTR:host'],
            time.monotonic() - start, self.container_name(server)))
        name = self.container_name(server)

        say('== lxc list %s' % name)
        say(subprocess.run(['lxc', 'list', name, '-c', 'nsPt'],
                           capture_output=True, text=True).stdout.rstrip())
        say('== what the kernel enforces (cgroup files of the container)')
        limit = int(self.daemon.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
        say('   memory.limit_in_bytes = %d (%d MiB)' % (limit, limit >> 20))
        say('   cpuset.cpus = %s' % self.daemon.cgroup_value(
            name, 'cpuset', 'cpuset.cpus'))
        token, pid, count = self.daemon.counter(name)
        say('== a process inside: token %s, pid %d, counted to %d' % (
            token, pid, count))
        say('== openstack console log show demo')
        output = self.api.post_server_action(
            server['id'], {'os-getConsoleOutput': {'length': 5}})['output']
        for line in output.splitlines():
            say('   ' + line)
        say('== openstack server delete demo')
        self._delete_server(server)
        say('   container gone from the daemon: %s' % (
            name not in self.daemon.names()))
