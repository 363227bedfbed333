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
"""A container's diagnostics, as Nova's server-diagnostics API shows them.

Pure: the daemon's instance record and state (``GET
/1.0/instances/<name>`` and ``.../state``) and the texts of the kernel
files :mod:`host` reads (cgroup files of the container, its init's
``/proc/<pid>/stat``, ``/proc/uptime``) become Nova's
``nova.objects.diagnostics.Diagnostics`` (microversion >= 2.48) or the
free-form dict of the legacy API (< 2.48).

What comes from where:

* state: the daemon's status; cpu total and memory used: the daemon's
  state (``cpu.usage`` ns, ``memory.usage`` bytes);
* memory maximum: the kernel's ``memory.limit_in_bytes`` (v2:
  ``memory.max``; the flavor sets it), else the flavor's memory_mb;
  memory used is rounded up to whole MiB, so that a container using a few
  hundred KiB does not show 0;
* cpu_details: one entry per CPU of the container's cpuset (the host CPUs
  its tasks may run on, as many as the flavor's vCPUs when the daemon pins
  them), with the kernel's ``cpuacct.usage_percpu`` time on that CPU.
  The daemon moves a container between CPUs now and then, so these times
  can add up to less than the total in the legacy ``cpu_time``. cgroup v2
  has no per-CPU times: no entries there;
* nic_details: the daemon's counters of each NIC of the instance, matched
  by MAC; counters are the container's (rx is what the container got);
* disk_details: the root disk's block I/O the kernel accounted to the
  container (v1 blkio, v2 io.stat), only when the kernel accounts any
  device to it; the root disk's usage, where the storage pool reports it,
  only in the legacy dict (Nova's DiskDiagnostics has no field for it);
* uptime: seconds since the container's init started.
"""

import dataclasses

from nova.compute import power_state
from nova import objects
from nova.virt import hardware
from oslo_utils import units

from nova_syscontainer.virt import container

#: Nova's Diagnostics.driver is a closed enum (nova.objects.fields.
#: HypervisorDriver, and the 2.48 response schema allows only ironic,
#: libvirt, vmwareapi and xenapi): any other value raises ValueError in
#: the object or fails the API's response validation. 'libvirt' is what
#: Nova's own system containers (libvirt's virt_type=lxc) report; the
#: ``hypervisor`` field says what really runs the container.
DRIVER = 'libvirt'
HYPERVISOR_OS = 'linux'


@dataclasses.dataclass(frozen=True)
class KernelFigures:
    """What the kernel's files tell of one running container.

    Every field is None where the file was missing or unreadable.
    """
    memory_limit: int = None
    #: ((host cpu, ns), ...) for the CPUs of the container's cpuset.
    cpu_times: tuple = None
    #: (read_bytes, read_requests, write_bytes, write_requests), summed
    #: over the block devices the kernel accounted to the container.
    block_io: tuple = None
    uptime: int = None


# ----------------------------------------------------------------------
# Parsing the kernel's files
# ----------------------------------------------------------------------
#: Larger than any machine's memory: the kernel's "no limit" (v1 prints
#: 9223372036854771712, PAGE_COUNTER_MAX pages).
_UNLIMITED = 1 << 60


def cgroup_paths(proc_cgroup):
    """{controller: (hierarchy, path)} from ``/proc/<pid>/cgroup``.

    ``hierarchy`` is the directory under /sys/fs/cgroup: the comma-joined
    controllers of a v1 hierarchy (each controller gets its own key), or
    'unified' for the v2 hierarchy (key '').
    """
    paths = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        for controller in controllers.split(',') if controllers else ['']:
            paths[controller] = (controllers or 'unified', path)
    return paths


def belongs_to(proc_cgroup, name):
    """Whether a process runs in the daemon's cgroup of container ``name``.

    LXD and Incus put a container's tasks in ``lxc.payload.<name>``
    (``lxc.payload.<name>-<n>`` when a second daemon on the host runs one
    of that name); a process elsewhere (another container, a PID of a
    remote daemon's host) is not this container's.
    """
    payload = 'lxc.payload.' + name
    for _hierarchy, path in cgroup_paths(proc_cgroup).values():
        leaf = path.rstrip('/').rsplit('/', 1)[-1]
        if leaf == payload or (leaf.startswith(payload + '-') and
                               leaf[len(payload) + 1:].isdigit()):
            return True
    return False


def memory_limit(text):
    """Bytes of v1 ``memory.limit_in_bytes`` or v2 ``memory.max``.

    None when unlimited (v2 says "max").
    """
    if text.strip() == 'max':
        return None
    value = int(text.strip())
    return None if value >= _UNLIMITED else value


def cpu_times(cpuset_text, percpu_text):
    """((cpu, ns), ...) for the CPUs of a cpuset, from usage_percpu."""
    times = [int(word) for word in percpu_text.split()]
    cpus = sorted(hardware.parse_cpu_spec(cpuset_text.strip()))
    return tuple((cpu, times[cpu]) for cpu in cpus if cpu < len(times))


def _blkio_totals(text):
    """({'Read': n, 'Write': n}, devices) of a v1 blkio file."""
    totals = {'Read': 0, 'Write': 0}
    devices = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and ':' in words[0]:
            devices.add(words[0])
            if words[1] in totals:
                totals[words[1]] += int(words[2])
    return totals, devices


def block_io(service_bytes_text, serviced_text):
    """(read_bytes, read_requests, write_bytes, write_requests) or None.

    None when the kernel accounted no block device to the container (a
    pool on a file system whose I/O the kernel does not charge to it).
    """
    octets, devices = _blkio_totals(service_bytes_text)
    requests, _devices = _blkio_totals(serviced_text)
    if not devices:
        return None
    return (octets['Read'], requests['Read'], octets['Write'],
            requests['Write'])


def io_stat(text):
    """block_io's tuple from a v2 ``io.stat``, or None with no device."""
    totals = {'rbytes': 0, 'rios': 0, 'wbytes': 0, 'wios': 0}
    devices = 0
    for line in text.splitlines():
        words = line.split()
        if not words or ':' not in words[0]:
            continue
        devices += 1
        for word in words[1:]:
            key, _sep, value = word.partition('=')
            if key in totals:
                totals[key] += int(value)
    if not devices:
        return None
    return (totals['rbytes'], totals['rios'], totals['wbytes'],
            totals['wios'])


def uptime(proc_pid_stat, proc_uptime, clock_ticks):
    """Whole seconds since the process of ``proc_pid_stat`` started.

    Its start time (field 22, clock ticks after boot) against the host's
    uptime; the command name (field 2) may hold spaces and parentheses,
    so fields are counted after its last ')'.
    """
    fields = proc_pid_stat.rsplit(')', 1)[1].split()
    started = int(fields[19]) / clock_ticks
    return max(0, int(float(proc_uptime.split()[0]) - started))


# ----------------------------------------------------------------------
# Nova's objects
# ----------------------------------------------------------------------
def nic_macs(record):
    """MACs of the instance's NICs, in device-name order."""
    devices = record.get('devices') or {}
    return [devices[name]['hwaddr'] for name in sorted(devices)
            if devices[name].get('type') == 'nic' and
            devices[name].get('hwaddr')]


def _interfaces_by_mac(state):
    return {(nic.get('hwaddr') or '').lower(): (ifname, nic)
            for ifname, nic in (state.get('network') or {}).items()
            if nic.get('hwaddr')}


def _nic_counters(counters):
    return dict(
        rx_octets=counters.get('bytes_received'),
        rx_packets=counters.get('packets_received'),
        rx_errors=counters.get('errors_received'),
        rx_drop=counters.get('packets_dropped_inbound'),
        tx_octets=counters.get('bytes_sent'),
        tx_packets=counters.get('packets_sent'),
        tx_errors=counters.get('errors_sent'),
        tx_drop=counters.get('packets_dropped_outbound'))


def instance_diagnostics(record, state, kernel, flavor_memory_mb,
                         hypervisor='lxd'):
    """``nova.objects.diagnostics.Diagnostics`` of a container.

    :param record: the daemon's instance record (its devices).
    :param state: the daemon's instance state.
    :param kernel: :class:`KernelFigures`, or None where the kernel's
        files could not be read (a daemon on another host).
    :param flavor_memory_mb: the instance's flavor memory, the maximum
        where the kernel gives none.
    :param hypervisor: the daemon's name (``lxd`` or ``incus``).
    """
    kernel = kernel or KernelFigures()
    state_code = container.power_state_of(state.get('status'),
                                          record.get('stateful', False))
    diags = objects.Diagnostics(
        state=power_state.STATE_MAP[state_code], driver=DRIVER,
        hypervisor=hypervisor, hypervisor_os=HYPERVISOR_OS,
        uptime=kernel.uptime, config_drive=False)
    limit = kernel.memory_limit
    used = (state.get('memory') or {}).get('usage')
    diags.memory_details = objects.MemoryDiagnostics(
        maximum=limit // units.Mi if limit else flavor_memory_mb,
        used=-(-used // units.Mi) if used is not None else None)
    for vcpu, (_cpu, ns) in enumerate(kernel.cpu_times or ()):
        diags.add_cpu(id=vcpu, time=ns)
    interfaces = _interfaces_by_mac(state)
    for mac in nic_macs(record):
        _ifname, nic = interfaces.get(mac.lower(), (None, {}))
        diags.add_nic(mac_address=mac,
                      **_nic_counters(nic.get('counters') or {}))
    if kernel.block_io is not None:
        read_bytes, read_requests, write_bytes, write_requests = (
            kernel.block_io)
        diags.add_disk(read_bytes=read_bytes, read_requests=read_requests,
                       write_bytes=write_bytes,
                       write_requests=write_requests)
    return diags


def legacy_diagnostics(record, state, kernel, flavor_memory_mb):
    """The dict of the legacy API (microversion < 2.48).

    Free-form, keyed as Nova's libvirt driver keys its own: ``memory``
    (the maximum, KiB), ``cpu<N>_time`` (ns), ``<ifname>_rx`` ...; plus
    ``cpu_time`` (ns, all CPUs), ``memory-used`` (KiB), ``uptime`` (s) and
    ``root_usage`` (bytes) where the storage pool reports it.
    """
    diags = instance_diagnostics(record, state, kernel, flavor_memory_mb)
    out = {'memory': diags.memory_details.maximum * units.Ki}
    if diags.memory_details.used is not None:
        out['memory-used'] = state['memory']['usage'] // units.Ki
    cpu_total = (state.get('cpu') or {}).get('usage')
    if cpu_total is not None:
        out['cpu_time'] = cpu_total
    for cpu in diags.cpu_details:
        out['cpu%d_time' % cpu.id] = cpu.time
    interfaces = _interfaces_by_mac(state)
    for nic in diags.nic_details:
        ifname, _nic = interfaces.get(nic.mac_address.lower(), (None, {}))
        if ifname is None:
            continue
        for key, suffix in (('rx_octets', 'rx'), ('rx_packets', 'rx_packets'),
                            ('rx_errors', 'rx_errors'), ('rx_drop', 'rx_drop'),
                            ('tx_octets', 'tx'), ('tx_packets', 'tx_packets'),
                            ('tx_errors', 'tx_errors'),
                            ('tx_drop', 'tx_drop')):
            out['%s_%s' % (ifname, suffix)] = getattr(nic, key)
    for disk in diags.disk_details:
        out.update({'root_read': disk.read_bytes,
                    'root_read_req': disk.read_requests,
                    'root_write': disk.write_bytes,
                    'root_write_req': disk.write_requests})
    root_usage = ((state.get('disk') or {}).get('root') or {}).get('usage')
    if root_usage is not None:
        out['root_usage'] = root_usage
    if diags.uptime is not None:
        out['uptime'] = diags.uptime
    return out
