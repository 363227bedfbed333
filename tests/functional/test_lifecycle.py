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
"""The instance lifecycle through Nova's API on the real daemon."""

import os
import sys

from nova.compute import power_state
from nova import objects
from nova import utils
from nova.virt import hardware
from testtools import content

from nova_syscontainer.virt import container
from tests.functional import base

BOOT_LINE = 'nova-syscontainer test image booted'


class LifecycleTest(base.SysContainerTestCase):

    def test_runs_in_the_concurrency_mode_asked_for(self):
        # tox -e functional runs native threads, as production does;
        # tox -e functional-eventlet runs Nova's (deprecated) eventlet mode.
        threading_asked = os.environ.get(
            'OS_NOVA_DISABLE_EVENTLET_PATCHING', '').lower() in (
                '1', 'true', 'yes')
        self.assertEqual(threading_asked, utils.concurrency_mode_threading())
        if threading_asked:
            self.assertNotIn('eventlet', sys.modules)
        else:
            import eventlet.patcher
            self.assertTrue(eventlet.patcher.is_monkey_patched('thread'))

    def test_boot_runs_a_limited_container(self):
        server = self.boot()
        self.assertEqual('host1', server['OS-EXT-SRV-ATTR:host'])
        name = self.container_name(server)
        rec = self.daemon.instance(name)
        self.assertEqual('Running', rec['status'])
        self.assertEqual(server['id'], rec['config'][container.UUID_KEY])
        self.assertEqual('true', rec['config'][container.MANAGED_KEY])
        # The kernel enforces the flavor: 128 MiB, one CPU.
        self.assertEqual(str(128 * 1024 * 1024), self.daemon.cgroup_value(
            name, 'memory', 'memory.limit_in_bytes'))
        cpus = self.daemon.cgroup_value(name, 'cpuset', 'cpuset.cpus')
        self.assertEqual(1, len(hardware.parse_cpu_spec(cpus)))
        # The container's init really runs our image.
        token, pid, count = self.daemon.counter(name)
        self.assertGreater(count, 0)

        # The whole boot log through Nova's API, as Tempest's
        # test_get_console_output_with_unlimited_size reads it (more than
        # three lines): the boot message, the guest's host name, its NICs.
        def console():
            return self.api.post_server_action(
                server['id'], {'os-getConsoleOutput': {}})['output']
        logs = ['']

        def ended():
            logs.append(console())
            return 'boot finished' in logs[-1]
        self.addOnException(lambda _exc: self.addDetail(
            'console-output', content.text_content(logs[-1])))
        self.wait_until(ended, what='the end of the boot log')
        lines = logs[-1].splitlines()
        self.assertEqual(BOOT_LINE, lines[0])
        self.assertIn('hostname: %s' % name, lines)
        self.assertIn('nic: lo 00:00:00:00:00:00', lines)
        self.assertGreater(len(logs[-1].split('\n')), 3)

        self._delete_server(server)
        self.assertNotIn(name, self.daemon.names())

    def test_power_cycle(self):
        server = self.boot()
        name = self.container_name(server)
        token, _pid, _count = self.daemon.counter(name)

        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        self.assertEqual('Stopped', self.daemon.state(name)['status'])
        self.assertEqual(power_state.SHUTDOWN,
                         server['OS-EXT-STS:power_state'])

        server = self.action(server, {'os-start': None}, 'ACTIVE')
        self.assertEqual('Running', self.daemon.state(name)['status'])
        token2, _pid, _count = self.daemon.counter(name)
        self.assertNotEqual(token, token2, 'a stop/start boots afresh')

        for kind in ('SOFT', 'HARD'):
            before = self.daemon.counter(name)[0]
            server = self.action(server, {'reboot': {'type': kind}},
                                 'ACTIVE')
            self.assertEqual('Running', self.daemon.state(name)['status'])
            self.assertNotEqual(before, self.daemon.counter(name)[0],
                                '%s reboot restarted init' % kind)

        # The console log outlives stops and reboots, as a VM's log file
        # does (Tempest's test_get_console_output reads it after a hard
        # reboot): one boot line for each of the four boots.
        def boots():
            return self.api.post_server_action(
                server['id'], {'os-getConsoleOutput': {}})['output'].count(
                    BOOT_LINE)
        self.wait_until(lambda: boots() >= 4, what='four boot lines')
        self.assertEqual(4, boots())

    def test_stop_forces_after_shutdown_timeout(self):
        # busybox init needs about 2 s to halt; give it 1 s.
        self.flags(shutdown_timeout=1)
        server = self.boot()
        name = self.container_name(server)
        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        self.assertEqual('Stopped', self.daemon.state(name)['status'])
        self.assertIn('Clean shutdown did not finish in 1 s',
                      self.stdlog.logger.output)

    def test_pause_freezes_every_task(self):
        server = self.boot()
        name = self.container_name(server)
        server = self.action(server, {'pause': None}, 'PAUSED')
        self.assertEqual('Frozen', self.daemon.state(name)['status'])
        self.assertEqual('FROZEN', self.daemon.cgroup_value(
            name, 'freezer', 'freezer.state'))
        _t, _p, count = self.daemon.counter(name)
        server = self.action(server, {'unpause': None}, 'ACTIVE')
        self.assertEqual('THAWED', self.daemon.cgroup_value(
            name, 'freezer', 'freezer.state'))
        self.wait_until(lambda: self.daemon.counter(name)[2] > count,
                        what='the counter to tick after unpause')

    def test_suspend_resume_keeps_process_state(self):
        server = self.boot()
        name = self.container_name(server)
        self.wait_until(lambda: self.daemon.counter(name)[2] >= 2,
                        what='the counter to run')
        token, pid, count = self.daemon.counter(name)

        server = self.action(server, {'suspend': None}, 'SUSPENDED')
        state = self.daemon.instance(name)
        self.assertEqual('Stopped', state['status'])
        self.assertTrue(state['stateful'], 'CRIU state saved on disk')
        self.assertEqual(power_state.SUSPENDED,
                         server['OS-EXT-STS:power_state'])

        server = self.action(server, {'resume': None}, 'ACTIVE')
        token2, pid2, count2 = self.daemon.counter(name)
        self.assertEqual((token, pid), (token2, pid2),
                         'the same process, with its memory, came back')
        self.assertGreaterEqual(count2, count)
        self.wait_until(lambda: self.daemon.counter(name)[2] > count2,
                        what='the restored counter to go on counting')
        self.assertFalse(self.daemon.instance(name)['stateful'])

    def test_suspend_refused_without_checkpoint_config(self):
        self.flags(enable_checkpoint=False, group='syscontainer')
        server = self.boot()
        name = self.container_name(server)
        self.assertNotIn('raw.lxc', self.daemon.instance(name)['config'])
        self.flags(enable_checkpoint=True, group='syscontainer')
        self.api.post_server_action(server['id'], {'suspend': None})
        event = self._wait_for_instance_action_event(
            server, 'suspend', 'compute_suspend_instance', 'Error')
        self.assertIn('without the raw.lxc lines CRIU needs',
                      event['details'])
        self.assertEqual('Running', self.daemon.state(name)['status'])
        # Refused, not broken: the server stays ACTIVE (the driver raised
        # InstanceFaultRollback) and its fault says why.
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        fault = objects.InstanceFault.get_latest_for_instance(
            self.ctxt, server['id'])
        self.assertIn('without the raw.lxc lines CRIU needs', fault.message)

    def test_spawn_stopped_when_power_on_false(self):
        server = self.boot()
        name = self.container_name(server)
        inst = self.instance(server)
        drv = self.driver()
        drv.destroy(self.ctxt, inst, [])
        self.assertNotIn(name, self.daemon.names())
        drv.spawn(self.ctxt, inst, objects.ImageMeta.from_instance(inst),
                  [], None, {}, network_info=[], power_on=False)
        self.assertEqual('Stopped', self.daemon.state(name)['status'])
        self.assertEqual(power_state.SHUTDOWN, drv.get_info(inst).state)
        drv.power_on(self.ctxt, inst, [])
        self.assertEqual(power_state.RUNNING, drv.get_info(inst).state)

    def test_rebuild_boots_a_new_container_from_the_image(self):
        server = self.boot()
        name = self.container_name(server)
        token = self.daemon.counter(name)[0]
        server = self._rebuild_server(server, self.image_id)
        server = self.wait_for(server, 'ACTIVE')
        self.assertEqual('Running', self.daemon.state(name)['status'])
        self.assertNotEqual(token, self.daemon.counter(name)[0])

    def test_destroy_is_idempotent(self):
        server = self.boot()
        name = self.container_name(server)
        inst = self.instance(server)
        drv = self.driver()
        drv.destroy(self.ctxt, inst, [])
        drv.destroy(self.ctxt, inst, [])
        drv.cleanup(self.ctxt, inst, [])
        self.assertNotIn(name, self.daemon.names())
        self.assertFalse(drv.instance_exists(inst))
        self._delete_server(server)
