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
"""Diagnostics from real captured daemon state and kernel files.

tests/unit/data holds what LXD 5.0.2 and the kernel (cgroup v1) gave for
a running busybox container with 128 MiB, one CPU and one bridged NIC.
"""

import json
import os
import tempfile
import unittest

from nova.api.openstack.compute.schemas import server_diagnostics as schema
from nova.api.openstack.compute.views import server_diagnostics as views
from nova.api import validation
from nova import objects

from nova_syscontainer.virt import diagnostics
from nova_syscontainer.virt import host

DATA = os.path.join(os.path.dirname(__file__), 'data')
NAME = 'diag-scratch-1'
MAC = 'fa:16:3e:00:11:22'


def load(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


STATE = load('lxd-5.0.2-state-running-nic.json')
KERNEL = load('cgroup-v1-running.json')
RECORD = {'name': NAME, 'status': 'Running', 'stateful': False,
          'devices': {
              'eth0': {'hwaddr': MAC, 'nictype': 'bridged',
                       'parent': 'brdiag0', 'type': 'nic'},
              'root': {'path': '/', 'pool': 'default', 'type': 'disk'}}}


def figures(**overrides):
    values = dict(memory_limit=128 * 1024 * 1024,
                  cpu_times=((0, 122469176),), block_io=None, uptime=210)
    values.update(overrides)
    return diagnostics.KernelFigures(**values)


class ParseTest(unittest.TestCase):

    def test_cgroup_paths_and_ownership(self):
        paths = diagnostics.cgroup_paths(KERNEL['proc_pid_cgroup'])
        self.assertEqual(('memory', '/lxc.payload.' + NAME), paths['memory'])
        self.assertEqual(('unified', '/lxc.payload.' + NAME), paths[''])
        self.assertTrue(diagnostics.belongs_to(KERNEL['proc_pid_cgroup'],
                                               NAME))
        # A second daemon's container of the same name: "-1".
        self.assertTrue(diagnostics.belongs_to(
            '4:memory:/lxc.payload.%s-1\n' % NAME, NAME))
        # (So "diag-scratch" would also match this cgroup: the suffix
        # cannot be told from a name's own; the PID comes from that very
        # container's state, so only a reused PID could mislead it.)
        for other in ('diag-scratch-10', 'iag-scratch-1', NAME + '-x'):
            self.assertFalse(diagnostics.belongs_to(
                KERNEL['proc_pid_cgroup'], other), other)
        self.assertFalse(diagnostics.belongs_to(
            '0::/init.scope\n1:cpu:/\n', NAME))

    def test_joined_v1_hierarchies(self):
        paths = diagnostics.cgroup_paths('3:cpu,cpuacct:/lxc.payload.a\n')
        self.assertEqual(('cpu,cpuacct', '/lxc.payload.a'), paths['cpuacct'])
        self.assertEqual(('cpu,cpuacct', '/lxc.payload.a'), paths['cpu'])

    def test_figures_from_captured_files(self):
        self.assertEqual(134217728, diagnostics.memory_limit(
            KERNEL['memory.limit_in_bytes']))
        self.assertIsNone(diagnostics.memory_limit('9223372036854771712\n'))
        # The container ran on CPU 0 and 1 but may now run on 0 only.
        self.assertEqual(((0, 122469176),), diagnostics.cpu_times(
            KERNEL['cpuset.cpus'], KERNEL['cpuacct.usage_percpu']))
        self.assertEqual(((0, 5), (1, 7)),
                         diagnostics.cpu_times('0-1\n', '5 7 \n'))
        # No block device accounted to it (a dir pool on ext4 here).
        self.assertIsNone(diagnostics.block_io(
            KERNEL['blkio.throttle.io_service_bytes_recursive'],
            KERNEL['blkio.throttle.io_serviced_recursive']))
        self.assertEqual((10, 1, 300, 5), diagnostics.block_io(
            '8:0 Read 10\n8:0 Write 100\n8:16 Write 200\n8:0 Sync 1\n'
            'Total 310\n',
            '8:0 Read 1\n8:0 Write 2\n8:16 Write 3\nTotal 6\n'))

    def test_cgroup_v2_files(self):
        # Formats of the kernel's cgroup v2 documentation (this host runs
        # v1: not captured here).
        self.assertIsNone(diagnostics.memory_limit('max\n'))
        self.assertEqual(268435456, diagnostics.memory_limit('268435456\n'))
        self.assertEqual((10, 1, 300, 5), diagnostics.io_stat(
            '8:0 rbytes=10 wbytes=100 rios=1 wios=2 dbytes=0 dios=0\n'
            '8:16 rbytes=0 wbytes=200 rios=0 wios=3 dbytes=0 dios=0\n'))
        self.assertIsNone(diagnostics.io_stat(''))

    def test_uptime_from_init_start(self):
        # Started 50166 ticks (501.66 s) after boot; the host is up 711.41.
        self.assertEqual(209, diagnostics.uptime(
            KERNEL['proc_pid_stat'], KERNEL['proc_uptime'], 100))
        # A command name with spaces and a parenthesis.
        stat = '7 (a) b) S ' + ' '.join(['0'] * 18) + ' 300 0 0\n'
        self.assertEqual(7, diagnostics.uptime(stat, '10.5 1.0\n', 100))


class DiagnosticsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        objects.register_all()

    def test_instance_diagnostics(self):
        diags = diagnostics.instance_diagnostics(RECORD, STATE, figures(),
                                                 flavor_memory_mb=128)
        self.assertEqual('running', diags.state)
        self.assertEqual('libvirt', diags.driver)
        self.assertEqual('lxd', diags.hypervisor)
        self.assertEqual('linux', diags.hypervisor_os)
        self.assertEqual(210, diags.uptime)
        self.assertFalse(diags.config_drive)
        self.assertEqual(128, diags.memory_details.maximum)
        self.assertEqual(1, diags.memory_details.used)  # 720 KiB, rounded up
        self.assertEqual([(0, 122469176, None)],
                         [(c.id, c.time, c.utilisation)
                          for c in diags.cpu_details])
        self.assertEqual(1, diags.num_nics)
        nic = diags.nic_details[0]
        self.assertEqual(MAC, nic.mac_address)
        counters = STATE['network']['eth0']['counters']
        self.assertEqual(counters['bytes_received'], nic.rx_octets)
        self.assertEqual(counters['packets_sent'], nic.tx_packets)
        self.assertEqual(0, nic.rx_drop)
        self.assertIsNone(nic.rx_rate)
        self.assertEqual([], diags.disk_details)

    def test_passes_novas_2_48_response_schema(self):
        diags = diagnostics.instance_diagnostics(
            RECORD, STATE, figures(block_io=(1, 2, 3, 4)), 128)
        body = views.ViewBuilder().instance_diagnostics(diags)
        validation.validators._SchemaValidator(
            schema.index_response_v248).validate(body)
        self.assertEqual({'read_bytes': 1, 'read_requests': 2,
                          'write_bytes': 3, 'write_requests': 4,
                          'errors_count': None}, body['disk_details'][0])

    def test_without_kernel_figures(self):
        # A daemon on another host: only what the daemon says.
        diags = diagnostics.instance_diagnostics(RECORD, STATE, None, 256)
        self.assertEqual(256, diags.memory_details.maximum)
        self.assertEqual([], diags.cpu_details)
        self.assertIsNone(diags.uptime)
        self.assertEqual(1, diags.num_nics)

    def test_nic_the_daemon_does_not_report(self):
        state = dict(STATE, network={'lo': STATE['network']['lo']})
        diags = diagnostics.instance_diagnostics(RECORD, state, figures(),
                                                 128)
        self.assertEqual(MAC, diags.nic_details[0].mac_address)
        self.assertIsNone(diags.nic_details[0].rx_octets)

    def test_frozen_is_paused(self):
        state = dict(STATE, status='Frozen')
        self.assertEqual('paused', diagnostics.instance_diagnostics(
            RECORD, state, None, 128).state)

    def test_legacy(self):
        state = dict(STATE, disk={'root': {'usage': 16384}})
        out = diagnostics.legacy_diagnostics(RECORD, state, figures(), 128)
        counters = STATE['network']['eth0']['counters']
        self.assertEqual({
            'memory': 131072, 'memory-used': 720,
            'cpu_time': STATE['cpu']['usage'], 'cpu0_time': 122469176,
            'eth0_rx': counters['bytes_received'],
            'eth0_rx_packets': counters['packets_received'],
            'eth0_rx_errors': 0, 'eth0_rx_drop': 0,
            'eth0_tx': counters['bytes_sent'],
            'eth0_tx_packets': counters['packets_sent'],
            'eth0_tx_errors': 0, 'eth0_tx_drop': 0,
            'root_usage': 16384, 'uptime': 210}, out)


class KernelFiguresTest(unittest.TestCase):
    """host.kernel_figures on a copy of the captured files."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(__import__('shutil').rmtree, self.root)
        self.proc = os.path.join(self.root, 'proc')
        self.cg = os.path.join(self.root, 'cgroup')
        pid_dir = os.path.join(self.proc, str(STATE['pid']))
        self.write(os.path.join(pid_dir, 'cgroup'), KERNEL['proc_pid_cgroup'])
        self.write(os.path.join(pid_dir, 'stat'), KERNEL['proc_pid_stat'])
        self.write(os.path.join(self.proc, 'uptime'), KERNEL['proc_uptime'])
        for controller, filename in (
                ('memory', 'memory.limit_in_bytes'),
                ('cpuset', 'cpuset.cpus'),
                ('cpuacct', 'cpuacct.usage_percpu'),
                ('blkio', 'blkio.throttle.io_service_bytes_recursive'),
                ('blkio', 'blkio.throttle.io_serviced_recursive')):
            self.write(os.path.join(self.cg, controller,
                                    'lxc.payload.' + NAME, filename),
                       KERNEL[filename])

    @staticmethod
    def write(path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)

    def read(self, name=NAME):
        return host.kernel_figures(STATE['pid'], name, proc=self.proc,
                                   cgroup_root=self.cg)

    def test_reads_every_figure(self):
        got = self.read()
        self.assertEqual(134217728, got.memory_limit)
        self.assertEqual(((0, 122469176),), got.cpu_times)
        self.assertIsNone(got.block_io)
        self.assertGreater(got.uptime, 0)

    def test_another_containers_pid_gives_nothing(self):
        self.assertIsNone(self.read('someone-else'))
        self.assertIsNone(host.kernel_figures(
            12345678, NAME, proc=self.proc, cgroup_root=self.cg))
        self.assertIsNone(host.kernel_figures(
            None, NAME, proc=self.proc, cgroup_root=self.cg))

    def test_cgroup_v2_only_host(self):
        # A v2-only host: the unified hierarchy is the cgroup root.
        pid_dir = os.path.join(self.proc, str(STATE['pid']))
        self.write(os.path.join(pid_dir, 'cgroup'),
                   '0::/lxc.payload.%s\n' % NAME)
        self.write(os.path.join(self.cg, 'cgroup.controllers'), 'memory io\n')
        leaf = os.path.join(self.cg, 'lxc.payload.' + NAME)
        self.write(os.path.join(leaf, 'memory.max'), '134217728\n')
        self.write(os.path.join(leaf, 'io.stat'),
                   '254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 '
                   'dios=0\n')
        got = self.read()
        self.assertEqual(134217728, got.memory_limit)
        self.assertIsNone(got.cpu_times)
        self.assertEqual((4096, 1, 8192, 2), got.block_io)
        self.assertGreater(got.uptime, 0)

    def test_missing_file_leaves_its_field_empty(self):
        os.unlink(os.path.join(self.cg, 'memory', 'lxc.payload.' + NAME,
                               'memory.limit_in_bytes'))
        got = self.read()
        self.assertIsNone(got.memory_limit)
        self.assertEqual(((0, 122469176),), got.cpu_times)
