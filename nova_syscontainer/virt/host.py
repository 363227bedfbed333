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
"""What the compute node offers, from the daemon's own figures.

The daemon's ``/1.0/resources`` (CPUs, memory) and the storage pool's
``resources`` (space) are turned into the dict that
``ComputeDriver.get_available_resource`` returns and the Placement
inventory ``update_provider_tree`` sets. Pure, but for
:func:`cgroup_version`, which may look at this host's /sys/fs/cgroup, and
:func:`kernel_figures`, which reads a running container's cgroup and /proc
files for its diagnostics.
"""

import dataclasses
import os

from oslo_serialization import jsonutils
from oslo_utils import units
from oslo_utils import versionutils

from nova.objects import fields

from nova_syscontainer.virt import diagnostics

#: Pool drivers whose volumes can carry an enforced size.
SIZE_ENFORCING_POOL_DRIVERS = frozenset(['btrfs', 'zfs', 'lvm', 'ceph'])


@dataclasses.dataclass(frozen=True)
class HostResources:
    vcpus: int
    memory_mb: int
    memory_mb_used: int
    disk_gb: int
    disk_gb_used: int
    disk_gb_free: int
    arch: str
    cpu_info: str
    hypervisor_version: int


def from_daemon(server_info, resources, pool_resources):
    """Build :class:`HostResources` from the daemon's answers."""
    cpu = resources.get('cpu', {})
    memory = resources.get('memory', {})
    space = pool_resources.get('space', {})
    env = server_info.get('environment', {})
    arch = fields.Architecture.canonicalize(
        env.get('kernel_architecture') or cpu.get('architecture') or
        'x86_64')
    sockets = cpu.get('sockets') or [{}]
    first = sockets[0]
    cores = first.get('cores') or []
    threads = len((cores[0] if cores else {}).get('threads') or [1])
    cpu_info = {
        'arch': arch,
        'model': first.get('name', 'unknown'),
        'vendor': first.get('vendor', 'unknown'),
        'topology': {'sockets': len(sockets),
                     'cores': max(1, len(cores)),
                     'threads': threads},
        'features': [],
    }
    total = int(space.get('total', 0))
    used = int(space.get('used', 0))
    return HostResources(
        vcpus=int(cpu.get('total', 0)),
        memory_mb=int(memory.get('total', 0)) // units.Mi,
        memory_mb_used=int(memory.get('used', 0)) // units.Mi,
        disk_gb=total // units.Gi,
        disk_gb_used=used // units.Gi,
        disk_gb_free=max(0, total - used) // units.Gi,
        arch=arch,
        cpu_info=jsonutils.dumps(cpu_info),
        hypervisor_version=hypervisor_version(env.get('server_version')),
    )


def cgroup_version(setting, root='/sys/fs/cgroup'):
    """1 or 2: the configured version, or this host's for 'auto'.

    A unified-only host has cgroup.controllers at the cgroup root; a host
    with legacy hierarchies (even with a unified one beside them) has not.
    """
    if setting in ('1', '2'):
        return int(setting)
    return 2 if os.path.exists(os.path.join(root,
                                            'cgroup.controllers')) else 1


def hypervisor_version(version):
    """Nova's integer form of the daemon version ('5.0.2' -> 5000002)."""
    try:
        return versionutils.convert_version_to_int(version) or 0
    except (TypeError, ValueError, AttributeError):
        return 0


def resource_dict(res, nodename):
    """The dict ``ComputeDriver.get_available_resource`` returns."""
    return {
        'vcpus': res.vcpus,
        'memory_mb': res.memory_mb,
        'local_gb': res.disk_gb,
        'vcpus_used': 0,
        'memory_mb_used': res.memory_mb_used,
        'local_gb_used': res.disk_gb_used,
        'hypervisor_type': fields.HVType.LXD,
        'hypervisor_version': res.hypervisor_version,
        'hypervisor_hostname': nodename,
        'cpu_info': res.cpu_info,
        'disk_available_least': res.disk_gb_free,
        'numa_topology': None,
        'supported_instances': [
            (res.arch, fields.HVType.LXD, fields.VMMode.EXE),
            (res.arch, fields.HVType.LXC, fields.VMMode.EXE),
        ],
    }


def inventory(res, ratios, reserved_cpus, reserved_memory_mb,
              reserved_disk_gb):
    """Placement inventory of VCPU, MEMORY_MB and DISK_GB."""
    def record(total, reserved, ratio):
        return {'total': total, 'min_unit': 1, 'max_unit': total,
                'step_size': 1, 'allocation_ratio': ratio,
                'reserved': reserved}

    inv = {
        'VCPU': record(res.vcpus, reserved_cpus, ratios['VCPU']),
        'MEMORY_MB': record(res.memory_mb, reserved_memory_mb,
                            ratios['MEMORY_MB']),
    }
    if res.disk_gb > 0:
        inv['DISK_GB'] = record(res.disk_gb, reserved_disk_gb,
                                ratios['DISK_GB'])
    return inv


def kernel_figures(pid, name, proc='/proc', cgroup_root='/sys/fs/cgroup'):
    """diagnostics.KernelFigures of container ``name`` whose init is ``pid``.

    ``pid`` is the daemon's (its instance state); the files are read only
    when that process runs in the container's own cgroup on this host, so
    that a daemon on another host (whose PIDs mean nothing here) or a PID
    reused meanwhile gives None rather than another process's figures.
    A file that cannot be read or parsed leaves its field None. Where the
    container has no v1 memory controller (a cgroup v2 host), its v2
    files give the memory limit and block I/O; v2 has no per-CPU times.
    """
    def read(path):
        with open(path) as f:
            return f.read()

    try:
        proc_cgroup = read(os.path.join(proc, str(pid), 'cgroup'))
    except (OSError, TypeError):
        return None
    if not diagnostics.belongs_to(proc_cgroup, name):
        return None
    paths = diagnostics.cgroup_paths(proc_cgroup)
    unified_is_root = cgroup_version('auto', cgroup_root) == 2

    def cgroup_file(controller, filename):
        hierarchy, path = paths[controller]
        if hierarchy == 'unified' and unified_is_root:
            hierarchy = ''  # v2 only: the unified hierarchy is the root
        return read(os.path.join(cgroup_root, hierarchy, path.lstrip('/'),
                                 filename))

    def figure(parse, *readers):
        try:
            return parse(*[reader() for reader in readers])
        except (OSError, KeyError, ValueError, IndexError):
            return None

    uptime = figure(
        lambda stat, up: diagnostics.uptime(
            stat, up, os.sysconf('SC_CLK_TCK')),
        lambda: read(os.path.join(proc, str(pid), 'stat')),
        lambda: read(os.path.join(proc, 'uptime')))
    if 'memory' not in paths:
        return diagnostics.KernelFigures(
            memory_limit=figure(diagnostics.memory_limit,
                                lambda: cgroup_file('', 'memory.max')),
            block_io=figure(diagnostics.io_stat,
                            lambda: cgroup_file('', 'io.stat')),
            uptime=uptime)
    return diagnostics.KernelFigures(
        memory_limit=figure(
            diagnostics.memory_limit,
            lambda: cgroup_file('memory', 'memory.limit_in_bytes')),
        cpu_times=figure(
            diagnostics.cpu_times,
            lambda: cgroup_file('cpuset', 'cpuset.cpus'),
            lambda: cgroup_file('cpuacct', 'cpuacct.usage_percpu')),
        block_io=figure(
            diagnostics.block_io,
            lambda: cgroup_file(
                'blkio', 'blkio.throttle.io_service_bytes_recursive'),
            lambda: cgroup_file('blkio',
                                'blkio.throttle.io_serviced_recursive')),
        uptime=uptime)
