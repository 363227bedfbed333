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
"""The driver's orchestration on its error paths, without a daemon.

The client is the autospecced fake of tests/unit/fakes.py; the host's
network (nics) and the image store are autospecced mocks. What these
tests prove is the order of calls and what is left behind when a step
fails; the functional tests prove the same against the real daemon for
the paths a real daemon can be made to take.
"""

import contextlib
from unittest import mock

import fixtures
from nova.compute import power_state
from nova import context as nova_context
from nova import exception as nova_exception
from nova import objects
from nova.virt import fake as fake_virt
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import config_drive
from nova_syscontainer.virt import console_log
from nova_syscontainer.virt import container
from nova_syscontainer.virt import driver
from nova_syscontainer.virt import image as images
from nova_syscontainer.virt import nics
from tests.unit import fakes

CONF = sc_conf.CONF
objects.register_all()

UUID = '7a5c3e2b-1f4d-4c6b-9a8e-0d1c2b3a4f5e'
IMAGE = '5f0c3b9e-7d1a-4f2e-9c51-7d3e0a9b6c11'
RUNNING = daemon_client.RUNNING
STOPPED = daemon_client.STOPPED
FROZEN = daemon_client.FROZEN


def _instance(**updates):
    flavor = objects.Flavor(id=1, name='m1.tiny', memory_mb=128, vcpus=1,
                            root_gb=0, ephemeral_gb=0, swap=0, flavorid='1',
                            extra_specs={})
    fields = dict(id=1, uuid=UUID, image_ref=IMAGE, config_drive='',
                  flavor=flavor, system_metadata={}, trusted_certs=None,
                  host='host1', node='host1', task_state=None,
                  vm_state='active',
                  project_id='p', user_id='u', metadata={},
                  migration_context=None)
    fields.update(updates)
    return objects.Instance(nova_context.get_admin_context(), **fields)


class DriverTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(host='host1')
        self.flags(vif_plugging_timeout=0)
        self.flags(force_config_drive=False)
        self.virtapi = fake_virt.FakeVirtAPI()
        self.driver = driver.SysContainerDriver(self.virtapi)
        self.driver._nodename = 'host1'
        self.instance = _instance()
        self.name = self.instance.name
        self.daemon = fakes.daemon()
        self.driver.client = self.daemon
        self.driver.images = mock.create_autospec(images.ImageStore,
                                                  instance=True)
        self.driver.images.ensure.return_value = ('fp', False)
        self.nics = {}
        for fn in ('plug_all', 'unplug_all', 'neutron_events',
                   'remove_stale_for', 'attach', 'detach'):
            self.nics[fn] = self.useFixture(fixtures.MockPatchObject(
                nics, fn, autospec=True)).mock
        self.nics['neutron_events'].return_value = []
        # create_instance makes the container, stopped, as the daemon does.
        self.daemon.create_instance.side_effect = self._created

    def flags(self, group=None, **kw):
        for key, value in kw.items():
            CONF.set_override(key, value, group=group)
            self.addCleanup(CONF.clear_override, key, group=group)

    def _created(self, body):
        self.daemon.instances[body['name']] = dict(
            body, status=STOPPED, stateful=False)

    def add(self, status=RUNNING, uuid=UUID, **fields):
        self.daemon.instances[self.name] = fakes.record(
            self.name, uuid=uuid, status=status, **fields)
        return self.daemon.instances[self.name]

    def spawn(self, power_on=True, network_info=None):
        self.driver.spawn(nova_context.get_admin_context(), self.instance,
                          objects.ImageMeta.from_dict({}), [], 'pw', {},
                          network_info=network_info or [],
                          power_on=power_on)

    def daemon_error(self, action='do it', reason='refused',
                     cls=exception.DaemonError):
        return cls(endpoint=fakes.ENDPOINT, action=action, reason=reason)


class SpawnTest(DriverTestCase):

    def test_success_creates_and_starts(self):
        self.spawn()
        self.assertEqual([('start', self.name)], self.daemon.calls)
        body = self.daemon.create_instance.call_args.args[0]
        self.assertEqual('fp', body['source']['fingerprint'])
        self.assertEqual(UUID, body['config'][container.UUID_KEY])
        self.assertEqual(RUNNING, self.daemon.instances[self.name]['status'])
        self.nics['unplug_all'].assert_not_called()

    def test_power_on_false_leaves_it_stopped(self):
        self.spawn(power_on=False)
        self.assertEqual([], self.daemon.calls)
        self.assertEqual(STOPPED, self.daemon.instances[self.name]['status'])

    def test_refused_builds_touch_nothing(self):
        self.instance.image_ref = ''
        self.assertRaises(exception.InstanceBuildRefused, self.spawn)
        self.daemon.create_instance.assert_not_called()
        self.nics['plug_all'].assert_not_called()

    def test_an_existing_container_is_not_taken_over_or_removed(self):
        self.add(uuid='someone-else')
        self.assertRaises(nova_exception.InstanceExists, self.spawn)
        self.daemon.create_instance.assert_not_called()
        self.assertIn(self.name, self.daemon.instances)
        self.assertEqual([], self.daemon.calls)

    def test_image_failure_unplugs_and_creates_nothing(self):
        self.driver.images.ensure.side_effect = exception.UnsupportedImage(
            image_id=IMAGE, reason='not a tarball')
        self.assertRaises(exception.UnsupportedImage, self.spawn)
        self.daemon.create_instance.assert_not_called()
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_plug_failure_unplugs_and_creates_nothing(self):
        self.nics['plug_all'].side_effect = exception.VifPlugFailed(
            command='ip link add', reason='exists')
        self.assertRaises(exception.VifPlugFailed, self.spawn)
        self.daemon.create_instance.assert_not_called()
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_create_failure_leaves_nothing(self):
        # An uncancellable create that timed out may still have made it.
        def made_then_timed_out(body):
            self._created(body)
            raise self.daemon_error(cls=exception.DaemonTimeout)
        self.daemon.create_instance.side_effect = made_then_timed_out
        self.assertRaises(exception.DaemonTimeout, self.spawn)
        self.assertEqual({}, self.daemon.instances)
        self.assertIn(('delete', self.name), self.daemon.calls)
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_config_drive_failure_removes_the_container(self):
        self.instance.config_drive = 'True'
        # Nova's metadata needs its database: the plan is a stand-in.
        self.useFixture(fixtures.MockPatchObject(
            config_drive, 'plan_for', autospec=True)).mock.return_value = (
                mock.Mock(directories=[('/var/lib/cloud', 0o755)], files=[]))
        self.daemon.write_files.side_effect = self.daemon_error()
        self.assertRaises(exception.DaemonError, self.spawn)
        self.assertEqual({}, self.daemon.instances)
        self.assertNotIn(('start', self.name), self.daemon.calls)
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_start_failure_removes_the_container(self):
        def start_fails(name, action, **kw):
            raise self.daemon_error(action='start', reason='no init')
        self.daemon.change_state.side_effect = start_fails
        self.assertRaises(exception.DaemonError, self.spawn)
        self.assertEqual({}, self.daemon.instances)
        self.assertEqual(1, self.daemon.delete_instance.call_count)
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_a_running_leftover_is_stopped_before_it_is_deleted(self):
        def start_then_fail(name, action, **kw):
            if action != 'start':
                self.daemon.instances[name]['status'] = STOPPED
                return
            self.daemon.instances[name]['status'] = RUNNING
            raise self.daemon_error(cls=exception.DaemonTimeout)
        self.daemon.change_state.side_effect = start_then_fail
        self.assertRaises(exception.DaemonTimeout, self.spawn)
        self.assertEqual(
            [mock.call(self.name, 'start'),
             mock.call(self.name, 'stop', force=True)],
            self.daemon.change_state.call_args_list)
        self.assertEqual({}, self.daemon.instances)

    def _neutron_never_answers(self, fatal):
        self.flags(vif_plugging_timeout=300, vif_plugging_is_fatal=fatal)
        self.nics['neutron_events'].return_value = [
            ('network-vif-plugged', 'port1')]

        @contextlib.contextmanager
        def wait(instance, events, timeout, error_callback):
            yield
            raise nova_exception.InstanceEventTimeout()
        self.useFixture(fixtures.MockPatchObject(
            self.virtapi, 'wait_for_instance_event', wait))

    def test_a_port_neutron_failed_removes_the_started_container(self):
        self.flags(vif_plugging_timeout=300, vif_plugging_is_fatal=True)
        self.nics['neutron_events'].return_value = [
            ('network-vif-plugged', 'port1')]

        @contextlib.contextmanager
        def wait(instance, events, timeout, error_callback):
            yield
            error_callback('network-vif-plugged', instance)
        self.useFixture(fixtures.MockPatchObject(
            self.virtapi, 'wait_for_instance_event', wait))
        self.assertRaises(nova_exception.VirtualInterfaceCreateException,
                          self.spawn)
        self.assertEqual([('start', self.name), ('stop', self.name),
                          ('delete', self.name)], self.daemon.calls)
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_ports_never_plugged_is_fatal_and_removes_everything(self):
        self._neutron_never_answers(fatal=True)
        self.assertRaises(nova_exception.VirtualInterfaceCreateException,
                          self.spawn)
        self.assertEqual({}, self.daemon.instances)
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_ports_never_plugged_is_only_a_warning_if_not_fatal(self):
        self._neutron_never_answers(fatal=False)
        self.spawn()
        self.assertEqual(RUNNING, self.daemon.instances[self.name]['status'])
        self.nics['unplug_all'].assert_not_called()


class DestroyTest(DriverTestCase):

    def destroy(self, destroy_disks=True):
        self.driver.destroy(nova_context.get_admin_context(), self.instance,
                            [], destroy_disks=destroy_disks)

    def test_a_missing_container_is_destroyed_already(self):
        self.destroy()
        self.daemon.delete_instance.assert_not_called()
        self.daemon.change_state.assert_not_called()
        self.nics['unplug_all'].assert_called_once_with(self.instance, [])

    def test_a_container_of_another_instance_is_never_touched(self):
        self.add(uuid='someone-else')
        self.destroy()
        self.assertIn(self.name, self.daemon.instances)
        self.assertEqual([], self.daemon.calls)

    def test_running_or_frozen_is_stopped_by_force_then_deleted(self):
        for status in (RUNNING, FROZEN):
            self.daemon.calls[:] = []
            self.add(status=status)
            self.destroy()
            self.assertEqual([('stop', self.name), ('delete', self.name)],
                             self.daemon.calls)
            self.assertEqual({}, self.daemon.instances)

    def test_keeping_disks_only_stops_it(self):
        self.add()
        self.destroy(destroy_disks=False)
        self.assertEqual([('stop', self.name)], self.daemon.calls)
        self.assertEqual(STOPPED, self.daemon.instances[self.name]['status'])

    def test_a_daemon_error_is_not_swallowed(self):
        self.add(status=STOPPED)
        self.daemon.delete_instance.side_effect = self.daemon_error()
        self.assertRaises(exception.DaemonError, self.destroy)


class PowerTest(DriverTestCase):

    def test_power_off_timeout_then_force(self):
        self.add()
        calls = []

        def stop(name, action, timeout=None, force=False, **kw):
            calls.append((action, force, timeout))
            if not force:
                raise self.daemon_error(cls=exception.DaemonTimeout)
            self.daemon.instances[name]['status'] = STOPPED
        self.daemon.change_state.side_effect = stop
        self.driver.power_off(self.instance, timeout=7)
        self.assertEqual([('stop', False, 7), ('stop', True, None)], calls)
        self.assertEqual(STOPPED, self.daemon.instances[self.name]['status'])

    def test_power_off_clean_in_time_is_not_forced(self):
        self.add()
        self.driver.power_off(self.instance, timeout=7)
        self.daemon.change_state.assert_called_once_with(
            self.name, 'stop', force=False, timeout=7)

    def test_power_off_without_timeout_forces_at_once(self):
        self.add()
        self.driver.power_off(self.instance)
        self.daemon.change_state.assert_called_once_with(
            self.name, 'stop', force=True, timeout=None)

    def test_power_off_of_a_stopped_or_missing_one_does_nothing(self):
        self.driver.power_off(self.instance, timeout=7)
        self.add(status=STOPPED)
        self.driver.power_off(self.instance, timeout=7)
        self.daemon.change_state.assert_not_called()

    def test_a_frozen_container_is_stopped_by_force(self):
        self.add(status=FROZEN)
        self.driver.power_off(self.instance, timeout=7)
        self.daemon.change_state.assert_called_once_with(
            self.name, 'stop', force=True, timeout=7)

    def test_power_on_thaws_restores_or_starts(self):
        self.add(status=FROZEN)
        self.driver.power_on(None, self.instance, [])
        self.add(status=STOPPED, stateful=True)
        self.driver.power_on(None, self.instance, [])
        self.add(status=STOPPED)
        self.driver.power_on(None, self.instance, [])
        self.assertEqual([
            mock.call(self.name, 'unfreeze'),
            mock.call(self.name, 'start', stateful=True),
            mock.call(self.name, 'start', stateful=False)],
            self.daemon.change_state.call_args_list)
        # Only a restore leaves stale veths behind.
        self.assertEqual(1, self.nics['remove_stale_for'].call_count)
        self.assertEqual(3, self.nics['plug_all'].call_count)

    def test_soft_reboot_failing_falls_back_to_hard(self):
        self.add()

        def change(name, action, timeout=None, force=False, **kw):
            if action == 'restart':
                raise self.daemon_error(cls=exception.DaemonTimeout)
            self.daemon.instances[name]['status'] = (
                STOPPED if action == 'stop' else RUNNING)
        self.daemon.change_state.side_effect = change
        self.driver.reboot(None, self.instance, [], 'SOFT')
        self.assertEqual(
            ['restart', 'stop', 'start'],
            [c.args[1] for c in self.daemon.change_state.call_args_list])
        self.assertTrue(self.daemon.change_state.call_args_list[1].kwargs[
            'force'])

    def test_reboot_and_power_off_keep_the_boots_console_log(self):
        """A reboot or power off first saves the console log of the boot.

        The daemon starts a new console log at each start; Tempest's
        test_get_console_output reads the log after a hard reboot, as a
        VM's log file outlives its reboots.
        """
        for reboot in ('HARD', 'SOFT', None):
            self.daemon.reset_mock()
            self.add()
            calls = []
            self.daemon.console_log.side_effect = (
                lambda *a, **kw: calls.append('read') or b'booted\n')
            self.daemon.change_state.side_effect = (
                lambda name, action, **kw: calls.append(action))
            if reboot:
                self.driver.reboot(None, self.instance, [], reboot)
            else:
                self.driver.power_off(self.instance)
            self.assertEqual('read', calls[0], reboot)
            self.daemon.set_config.assert_called_once()
            self.assertIn(console_log.KEY,
                          self.daemon.set_config.call_args.args[1])

    def test_soft_reboot_of_a_stopped_container_starts_it(self):
        self.add(status=STOPPED)
        self.driver.reboot(None, self.instance, [], 'SOFT')
        self.daemon.change_state.assert_called_once_with(self.name, 'start')

    def test_get_info_maps_the_status_and_a_missing_one_is_not_found(self):
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.get_info, self.instance)
        self.assertFalse(self.driver.instance_exists(self.instance))
        self.add(uuid='someone-else')
        self.assertFalse(self.driver.instance_exists(self.instance))
        self.add(status=STOPPED, stateful=True)
        self.assertEqual(power_state.SUSPENDED,
                         self.driver.get_info(self.instance).state)


class SuspendTest(DriverTestCase):

    def setUp(self):
        super().setUp()
        self.suspendable = self.useFixture(fixtures.MockPatchObject(
            checkpoint, 'suspendable', autospec=True)).mock

    def suspend(self):
        self.driver.suspend(None, self.instance)

    def assertRolledBack(self, *fragments):
        e = self.assertRaises(nova_exception.InstanceFaultRollback,
                              self.suspend)
        self.assertIsInstance(e.inner_exception,
                              nova_exception.InstanceSuspendFailure)
        for fragment in fragments:
            self.assertIn(fragment, str(e.inner_exception))
        return e

    def test_success_checkpoints_and_stops(self):
        rec = self.add()
        self.suspend()
        self.daemon.change_state.assert_called_once_with(
            self.name, 'stop', stateful=True)
        self.nics['remove_stale_for'].assert_called_once_with(rec)

    def test_a_frozen_container_is_thawed_first(self):
        self.add(status=FROZEN)
        self.suspend()
        self.assertEqual([('unfreeze', self.name), ('stop', self.name)],
                         self.daemon.calls)

    def test_refused_before_the_daemon_is_asked_stays_active(self):
        self.add()
        self.suspendable.side_effect = exception.CheckpointRefused(
            name=self.name, reason='a task CRIU cannot dump')
        self.assertRolledBack('a task CRIU cannot dump')
        self.daemon.change_state.assert_not_called()

    def test_a_failed_dump_of_a_running_container_stays_active(self):
        self.add()

        def dump_fails(name, action, **kw):
            raise self.daemon_error(action='stop', reason='criu failed')
        self.daemon.change_state.side_effect = dump_fails
        e = self.assertRolledBack('criu failed')
        self.assertNotIn('started again', str(e.inner_exception))
        self.assertEqual(1, self.daemon.change_state.call_count)

    def test_a_failed_dump_that_stopped_it_starts_it_again(self):
        self.add()

        def change(name, action, stateful=False, **kw):
            if stateful:
                self.daemon.instances[name]['status'] = STOPPED
                raise self.daemon_error(action='stop', reason='criu failed')
            self.daemon.instances[name]['status'] = RUNNING
        self.daemon.change_state.side_effect = change
        self.assertRolledBack('criu failed', 'started again')
        self.assertEqual(RUNNING, self.daemon.instances[self.name]['status'])

    def test_a_failure_that_leaves_it_neither_running_nor_stopped(self):
        self.add()

        def dump_fails(name, action, **kw):
            self.daemon.instances[name]['status'] = 'Error'
            raise self.daemon_error(action='stop', reason='criu failed')
        self.daemon.change_state.side_effect = dump_fails
        self.assertRaises(nova_exception.InstanceSuspendFailure,
                          self.suspend)

    def test_resume_failure_is_typed_and_still_cleans_veths(self):
        self.add(status=STOPPED, stateful=True)

        def restore_fails(name, action, **kw):
            raise self.daemon_error(action='start', reason='restore failed')
        self.daemon.change_state.side_effect = restore_fails
        self.assertRaises(nova_exception.InstanceResumeFailure,
                          self.driver.resume, None, self.instance, [])
        self.assertEqual(1, self.nics['remove_stale_for'].call_count)


class NetworkTest(DriverTestCase):

    def test_plug_vifs_turns_a_refusal_into_a_plug_exception(self):
        self.nics['plug_all'].side_effect = exception.InstanceBuildRefused(
            instance_uuid=UUID, reason='no such vif type')
        e = self.assertRaises(nova_exception.VirtualInterfacePlugException,
                              self.driver.plug_vifs, self.instance, [])
        self.assertIn('no such vif type', str(e))

    def test_attach_and_detach_failures_are_nova_s_exceptions(self):
        self.add()
        vif = {'id': 'port1'}
        self.nics['attach'].side_effect = self.daemon_error()
        self.assertRaises(nova_exception.InterfaceAttachFailed,
                          self.driver.attach_interface, None, self.instance,
                          objects.ImageMeta.from_dict({}), vif)
        self.nics['detach'].side_effect = exception.VifPlugFailed(
            command='ip link del', reason='busy')
        self.assertRaises(nova_exception.InterfaceDetachFailed,
                          self.driver.detach_interface, None, self.instance,
                          vif)

    def test_attach_to_a_missing_container_is_not_found(self):
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.attach_interface, None, self.instance,
                          objects.ImageMeta.from_dict({}), {'id': 'port1'})
        self.nics['attach'].assert_not_called()
