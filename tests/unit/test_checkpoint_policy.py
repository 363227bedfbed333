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
"""The raw.lxc lines and keys of a checkpointable container, per host.

Issue 16 part 1: with the defaults, a host with AppArmor keeps the
daemon's confinement (no ``lxc.apparmor.profile`` line); only a host
without AppArmor gets the empty profile CRIU needs there. The checks of
suspend and live migration require exactly the lines a container of the
host was created with.
"""

import os
import tempfile
import unittest
from unittest import mock

import fixtures
from nova import exception as nova_exception
from oslo_config import fixture as config_fixture
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint
from nova_syscontainer.virt import checkpoint_check
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import container
from nova_syscontainer.virt import flavor_limits
from nova_syscontainer.virt import live_migration
from nova_syscontainer.virt import move_checks

EMPTY = 'lxc.apparmor.profile ='


def _enabled_file(text):
    fd, path = tempfile.mkstemp()
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    return path


class HostApparmorTest(unittest.TestCase):

    def test_file_says_y(self):
        path = _enabled_file('Y\n')
        self.addCleanup(os.unlink, path)
        self.assertTrue(checkpoint_policy.host_apparmor('auto', True, path))

    def test_file_says_n(self):
        path = _enabled_file('N\n')
        self.addCleanup(os.unlink, path)
        self.assertFalse(checkpoint_policy.host_apparmor('auto', True, path))

    def test_no_module(self):
        self.assertFalse(checkpoint_policy.host_apparmor(
            'auto', True, '/nonexistent/apparmor/enabled'))

    def test_remote_daemon_counts_as_apparmor(self):
        self.assertTrue(checkpoint_policy.host_apparmor(
            'auto', False, '/nonexistent/apparmor/enabled'))

    def test_explicit_settings_win(self):
        self.assertTrue(checkpoint_policy.host_apparmor(
            'enabled', True, '/nonexistent'))
        path = _enabled_file('Y')
        self.addCleanup(os.unlink, path)
        self.assertFalse(checkpoint_policy.host_apparmor(
            'disabled', True, path))


class PolicyTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(sc_conf.CONF))
        self.conf.config(group='syscontainer', endpoint='/x/unix.socket')
        self.useFixture(fixtures.MockPatchObject(checkpoint_policy, '_HOST',
                                                 {}))

    def _host(self, apparmor):
        setting = 'enabled' if apparmor else 'disabled'
        self.conf.config(group='syscontainer', apparmor=setting)
        checkpoint_policy.init_host('/x/unix.socket')

    def test_default_keeps_apparmor_confinement(self):
        # Before issue 16 part 1 the default carried the empty profile.
        self._host(apparmor=True)
        self.assertEqual(['lxc.pty.max = 1'], checkpoint_policy.raw_lxc())
        self.assertNotIn(EMPTY, sc_conf.CONF.syscontainer.checkpoint_raw_lxc)

    def test_no_apparmor_gets_empty_profile(self):
        self._host(apparmor=False)
        self.assertEqual(['lxc.pty.max = 1', EMPTY],
                         checkpoint_policy.raw_lxc())

    def test_empty_profile_not_doubled(self):
        self.conf.config(group='syscontainer',
                         checkpoint_raw_lxc=['lxc.pty.max = 1',
                                             'lxc.apparmor.profile  ='])
        self._host(apparmor=False)
        self.assertEqual(['lxc.pty.max = 1', 'lxc.apparmor.profile  ='],
                         checkpoint_policy.raw_lxc())

    def test_configured_profile_on_apparmor_host_warns(self):
        self.conf.config(group='syscontainer',
                         checkpoint_raw_lxc=['lxc.pty.max = 1', EMPTY])
        with mock.patch.object(checkpoint_policy.LOG, 'warning') as warn:
            self._host(apparmor=True)
        self.assertIn('AppArmor confinement', warn.call_args[0][0])

    def test_create_body_on_apparmor_host(self):
        self._host(apparmor=True)
        body = container.create_body(
            _instance(), 'node', 'fp',
            flavor_limits.Limits(config={}, devices={}), ['default'],
            raw_lxc=checkpoint_policy.create_raw_lxc(),
            checkpoint_config=checkpoint_policy.create_config())
        self.assertNotIn('apparmor', body['config']['raw.lxc'])
        self.assertEqual(checkpoint_check.DENY_UTS_UNSHARE,
                         body['config']['security.syscalls.deny'])

    def test_disabled_checkpoint_adds_nothing(self):
        self.conf.config(group='syscontainer', enable_checkpoint=False)
        self._host(apparmor=False)
        self.assertEqual([], checkpoint_policy.create_raw_lxc())
        self.assertEqual({}, checkpoint_policy.create_config())

    def test_dir_pool_warned_when_taking_live_migrations(self):
        self.conf.config(group='syscontainer',
                         migration_endpoint='https://192.0.2.5:8443')
        with mock.patch.object(checkpoint_policy.LOG, 'warning') as warn:
            checkpoint_policy.init_host('/x/unix.socket', 'dir')
        self.assertIn('btrfs', warn.call_args[0][0])
        with mock.patch.object(checkpoint_policy.LOG, 'warning') as warn:
            checkpoint_policy.init_host('/x/unix.socket', 'btrfs')
        self.assertFalse(warn.called)
        self.conf.config(group='syscontainer', migration_endpoint=None)
        with mock.patch.object(checkpoint_policy.LOG, 'warning') as warn:
            checkpoint_policy.init_host('/x/unix.socket', 'dir')
        self.assertFalse(warn.called)

    def test_uts_line_optional(self):
        self.conf.config(group='syscontainer',
                         checkpoint_deny_uts_namespace=False)
        self.assertEqual({}, checkpoint_policy.create_config())

    def _record(self, raw):
        return {'name': 'c', 'status': 'Running',
                'config': {'raw.lxc': raw}, 'expanded_config': {
                    'raw.lxc': raw}}

    def test_checks_agree_on_apparmor_host(self):
        # A container created on an AppArmor host (no profile line) passes
        # the suspend and live-migration checks of that host.
        self._host(apparmor=True)
        rec = self._record('\n'.join(checkpoint_policy.create_raw_lxc()))
        self.assertEqual([], move_checks.record_problems(
            rec, True, checkpoint_policy.raw_lxc()))
        client = mock.Mock(endpoint='https://remote:8443')
        checkpoint.suspendable(client, rec)
        with mock.patch.object(live_migration, 'check_criu'):
            live_migration.check_source(rec)

    def test_checks_agree_without_apparmor(self):
        self._host(apparmor=False)
        rec = self._record('lxc.pty.max = 1')
        client = mock.Mock(endpoint='https://remote:8443')
        self.assertRaises(exception.CheckpointRefused,
                          checkpoint.suspendable, client, rec)
        with mock.patch.object(live_migration, 'check_criu'):
            self.assertRaises(nova_exception.MigrationPreCheckError,
                              live_migration.check_source, rec)
        rec = self._record('\n'.join(checkpoint_policy.create_raw_lxc()))
        checkpoint.suspendable(client, rec)


def _instance():
    instance = mock.Mock(uuid='u-1', image_ref='img')
    instance.name = 'instance-00000001'
    instance.flavor.name = 'm1'
    return instance
