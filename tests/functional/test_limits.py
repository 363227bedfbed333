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
"""Flavor limits, read back from the kernel of the running container.

Each test boots a server through Nova's API with a flavor and reads the
value the kernel enforces: the container's cgroup files, its uid map, its
mounts, the btrfs qgroup of its root disk. The daemon's config is never
taken as proof.
"""

import os
import subprocess

from tests.functional import base

MiB = 1024 * 1024
SETXATTR_PROBE = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
int main(int argc, char **argv) {
    int r = setxattr(argv[1], argv[2], "y", 1, 0);
    printf("%d %s\n", r, r ? strerror(errno) : "ok");
    return r ? 1 : 0;
}
"""
DEFAULT_UID_MAP = '0 100000 10000001'
QUOTA_POOL = 'quota'
QUOTA_POOL_PATH = os.path.join(os.path.dirname(base.daemon.ENDPOINT),
                               'storage-pools', QUOTA_POOL)


class LimitsTest(base.SysContainerTestCase):

    def boot_with(self, expected_state='ACTIVE', swap=0, vcpus=1,
                  memory_mb=128, disk=0, **extra_specs):
        flavor = self.admin_api.post_flavor({'flavor': {
            'name': 'f-%d' % len(self.admin_api.get_flavors()),
            'vcpus': vcpus, 'ram': memory_mb, 'disk': disk, 'swap': swap,
            'id': None}})
        if extra_specs:
            self.admin_api.post_extra_spec(flavor['id'], {'extra_specs': {
                key.replace('__', ':'): str(value)
                for key, value in extra_specs.items()}})
        server = self.boot(flavor_id=flavor['id'],
                           expected_state=expected_state)
        return server, self.container_name(server)

    def cg(self, name, controller, filename):
        return self.daemon.cgroup_value(name, controller, filename)

    def uid_map(self, name):
        return ' '.join(self.daemon.read_file(
            name, '/proc/1/uid_map').split())

    # -- CPU ---------------------------------------------------------------
    def test_cpu_shares_exact(self):
        _server, name = self.boot_with(quota__cpu_shares=512)
        self.assertEqual('512', self.cg(name, 'cpu', 'cpu.shares'))

    def test_cpu_quota_is_per_vcpu(self):
        _server, name = self.boot_with(vcpus=2, quota__cpu_quota=20000,
                                       quota__cpu_period=50000)
        self.assertEqual('50000', self.cg(name, 'cpu', 'cpu.cfs_period_us'))
        self.assertEqual('40000', self.cg(name, 'cpu', 'cpu.cfs_quota_us'))

    def test_cpu_quota_default_period_and_microseconds(self):
        _server, name = self.boot_with(quota__cpu_quota=1500)
        self.assertEqual('100000', self.cg(name, 'cpu', 'cpu.cfs_period_us'))
        self.assertEqual('1500', self.cg(name, 'cpu', 'cpu.cfs_quota_us'))

    def test_cpu_priority(self):
        _server, name = self.boot_with(syscontainer__cpu_priority=5)
        self.assertEqual('1019', self.cg(name, 'cpu', 'cpu.shares'))

    def test_cpu_period_out_of_range_refused(self):
        server, name = self.boot_with(expected_state='ERROR',
                                      quota__cpu_quota=2000,
                                      quota__cpu_period=1100000)
        self.assertIn('quota:cpu_period', server['fault']['message'])
        self.assertNotIn(name, self.daemon.names())

    # -- memory and processes ----------------------------------------------
    def test_no_swap_flavor(self):
        _server, name = self.boot_with(memory_mb=96)
        self.assertEqual(str(96 * MiB), self.cg(
            name, 'memory', 'memory.limit_in_bytes'))
        self.assertEqual('0', self.cg(name, 'memory', 'memory.swappiness'))

    def test_swap_flavor_and_swap_priority(self):
        _server, name = self.boot_with(
            memory_mb=96, swap=64, syscontainer__memory_swap_priority=3)
        # LXD: swappiness = 60 + (10 - priority).
        self.assertEqual('67', self.cg(name, 'memory', 'memory.swappiness'))
        # memory+swap may not exceed the flavor's memory either.
        self.assertEqual(str(96 * MiB), self.cg(
            name, 'memory', 'memory.memsw.limit_in_bytes'))

    def test_swap_priority_without_swap_refused(self):
        server, _name = self.boot_with(
            expected_state='ERROR', syscontainer__memory_swap_priority=3)
        self.assertIn('allows no swap', server['fault']['message'])

    def test_process_limit(self):
        _server, name = self.boot_with(syscontainer__processes=50)
        self.assertEqual('50', self.cg(name, 'pids', 'pids.max'))

    def test_default_process_limit_without_the_extra_spec(self):
        # A flavor without syscontainer:processes still gets a pids.max:
        # [syscontainer] default_processes (2000 by default) ...
        _server, name = self.boot_with()
        self.assertEqual('2000', self.cg(name, 'pids', 'pids.max'))
        # ... which an operator can lift (0: no limit).
        self.flags(default_processes=0, group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        _server, name = self.boot_with()
        self.assertEqual('max', self.cg(name, 'pids', 'pids.max'))

    # -- disk --------------------------------------------------------------
    def throttle(self, name, filename):
        lines = self.cg(name, 'blkio', filename).splitlines()
        return sorted(line.split()[1] for line in lines)

    def test_disk_bytes_and_iops(self):
        _server, name = self.boot_with(quota__disk_read_bytes_sec=1048576,
                                       quota__disk_write_iops_sec=100)
        self.assertEqual(['1048576'], self.throttle(
            name, 'blkio.throttle.read_bps_device'))
        self.assertEqual(['100'], self.throttle(
            name, 'blkio.throttle.write_iops_device'))
        self.assertEqual([], self.throttle(
            name, 'blkio.throttle.write_bps_device'))

    def test_disk_total(self):
        _server, name = self.boot_with(quota__disk_total_bytes_sec=2000000)
        self.assertEqual(['2000000'], self.throttle(
            name, 'blkio.throttle.read_bps_device'))
        self.assertEqual(['2000000'], self.throttle(
            name, 'blkio.throttle.write_bps_device'))

    def test_disk_total_with_read_refused(self):
        server, _name = self.boot_with(
            expected_state='ERROR', quota__disk_total_bytes_sec=2000000,
            quota__disk_read_bytes_sec=1000000)
        self.assertIn('cannot be combined', server['fault']['message'])

    def test_root_disk_size_on_a_pool_that_enforces_it(self):
        self.flags(storage_pool=QUOTA_POOL, group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        _server, name = self.boot_with(disk=1)
        out = subprocess.run(
            ['btrfs', 'qgroup', 'show', '-re', '--raw', QUOTA_POOL_PATH],
            capture_output=True, text=True, check=True).stdout
        rows = [line.split() for line in out.splitlines()
                if line.endswith('containers/' + name)]
        self.assertEqual(1, len(rows), out)
        self.assertEqual(str(1024 * MiB), rows[0][3])  # max referenced

    def test_root_disk_size_refused_on_dir_pool(self):
        server, name = self.boot_with(expected_state='ERROR', disk=1)
        self.assertIn('cannot enforce a disk size',
                      server['fault']['message'])
        self.assertNotIn(name, self.daemon.names())

    # -- security ----------------------------------------------------------
    def test_unprivileged_by_default(self):
        _server, name = self.boot_with()
        self.assertEqual(DEFAULT_UID_MAP, self.uid_map(name))

    def test_isolated_idmap(self):
        _server, name = self.boot_with(syscontainer__idmap_isolated='true')
        uid_map = self.uid_map(name).split()
        self.assertEqual('0', uid_map[0])
        self.assertNotEqual('100000', uid_map[1])
        self.assertEqual('65536', uid_map[2])

    def test_privileged_refused_unless_allowed(self):
        server, name = self.boot_with(expected_state='ERROR',
                                      syscontainer__privileged='true')
        self.assertIn('allow_privileged', server['fault']['message'])
        self.assertNotIn(name, self.daemon.names())

        self.flags(allow_privileged=True, group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        _server, name = self.boot_with(syscontainer__privileged='true')
        self.assertEqual('0 0 4294967295', self.uid_map(name))

    def test_nesting_refused_unless_allowed(self):
        server, _name = self.boot_with(expected_state='ERROR',
                                       syscontainer__nesting='true')
        self.assertIn('allow_nesting', server['fault']['message'])

        self.flags(allow_nesting=True, group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        _server, name = self.boot_with(syscontainer__nesting='true')
        mounts = self.daemon.read_file(name, '/proc/1/mounts')
        self.assertIn('/dev/.lxc/proc', mounts)
        self.assertEqual(DEFAULT_UID_MAP, self.uid_map(name))

    def test_setxattr_intercepted_only_when_asked(self):
        probe = self._setxattr_probe()
        results = {}
        for asked in (False, True):
            specs = {'syscontainer__intercept': 'setxattr'} if asked else {}
            _server, name = self.boot_with(**specs)
            subprocess.run(['lxc', 'file', 'push', '--mode', '0755', probe,
                            name + '/tmp/setxattr-probe'], check=True)
            # trusted.* xattrs need CAP_SYS_ADMIN in the host's namespace;
            # the daemon sets the overlay ones for the container when it
            # intercepts setxattr.
            results[asked] = subprocess.run(
                ['lxc', 'exec', name, '--', '/tmp/setxattr-probe', '/root',
                 'trusted.overlay.opaque'], capture_output=True, text=True)
        self.assertNotEqual(0, results[False].returncode, results[False])
        self.assertIn('Operation not permitted', results[False].stdout)
        self.assertEqual(0, results[True].returncode, results[True])

    def _setxattr_probe(self):
        """A static binary calling setxattr(2) (busybox has no applet)."""
        tmp = self.useFixture(base.fixtures.TempDir()).path
        source = os.path.join(tmp, 'probe.c')
        with open(source, 'w') as f:
            f.write(SETXATTR_PROBE)
        binary = os.path.join(tmp, 'probe')
        subprocess.run(['gcc', '-static', '-O1', '-o', binary, source],
                       check=True)
        return binary

    def test_image_properties_cannot_raise_privileges(self):
        image_id = self.add_image(self.image_data)
        self.glance.update(None, image_id, {'properties': {
            'architecture': 'x86_64', 'hypervisor_type': 'lxc',
            'vm_mode': 'exe', 'security.privileged': 'true',
            'syscontainer:privileged': 'true', 'limits.memory': '8GiB',
            'raw.lxc': 'lxc.cgroup.memory.limit_in_bytes = -1'}})
        server = self.boot(image_id=image_id)
        name = self.container_name(server)
        self.assertEqual(DEFAULT_UID_MAP, self.uid_map(name))
        self.assertEqual(str(128 * MiB), self.cg(
            name, 'memory', 'memory.limit_in_bytes'))


class ResizeLimitsTest(base.SysContainerTestCase):

    def test_resize_and_revert_change_enforced_cpu_shares(self):
        self.flags(allow_resize_to_same_host=True)
        small = self.make_flavor('s', extra_specs={
            'quota:cpu_shares': '512', 'syscontainer:processes': '40'})
        large = self.make_flavor('l', memory_mb=192, extra_specs={
            'quota:cpu_shares': '2048'})
        server = self.boot(flavor_id=small)
        name = self.container_name(server)
        self.assertEqual('512', self.daemon.cgroup_value(
            name, 'cpu', 'cpu.shares'))
        self.assertEqual('40', self.daemon.cgroup_value(
            name, 'pids', 'pids.max'))

        server = self.action(server, {'resize': {'flavorRef': large}},
                             'VERIFY_RESIZE')
        self.assertEqual('2048', self.daemon.cgroup_value(
            name, 'cpu', 'cpu.shares'))
        # The large flavor sets no process limit: the node's default holds.
        self.assertEqual('2000', self.daemon.cgroup_value(
            name, 'pids', 'pids.max'))

        server = self.action(server, {'revertResize': None}, 'ACTIVE')
        self.assertEqual('512', self.daemon.cgroup_value(
            name, 'cpu', 'cpu.shares'))
        self.assertEqual('40', self.daemon.cgroup_value(
            name, 'pids', 'pids.max'))
        self.assertEqual(str(128 * MiB), self.daemon.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
