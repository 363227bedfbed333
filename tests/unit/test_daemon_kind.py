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
"""The daemon kinds (LXD 5.0, Incus 6.0) and what the client does with them."""

import types
import unittest

from nova import exception as nova_exception

from nova_syscontainer import exception
from nova_syscontainer.virt import client
from nova_syscontainer.virt import daemon_kind
from nova_syscontainer.virt import driver_live_migration

# The parts of GET /1.0 that tell the daemons apart, as measured.
INCUS_INFO = {'auth': 'trusted',
              'api_extensions': ['instances', 'resources', 'projects'],
              'environment': {'server': 'incus', 'server_name': 'vm',
                              'server_version': '6.0.4'}}
LXD_INFO = {'auth': 'trusted',
            'api_extensions': ['instances', 'resources', 'projects'],
            'environment': {'server': 'lxd', 'server_name': 'vm',
                            'server_version': '5.0.2'}}


class IdentifyTest(unittest.TestCase):

    def test_read_from_the_daemon(self):
        incus = daemon_kind.identify(INCUS_INFO)
        self.assertEqual(daemon_kind.INCUS, incus.kind.name)
        self.assertEqual('6.0.4', incus.version)
        self.assertEqual('incus 6.0.4', incus.stat)
        self.assertEqual('Incus 6.0.4', str(incus))
        self.assertEqual(daemon_kind.LXD,
                         daemon_kind.identify(LXD_INFO).kind.name)

    def test_an_explicit_kind_must_match(self):
        self.assertEqual('incus', daemon_kind.identify(
            INCUS_INFO, 'incus').kind.name)
        with self.assertRaisesRegex(daemon_kind.UnknownDaemon,
                                    'Incus 6.0.4 but .* says LXD'):
            daemon_kind.identify(INCUS_INFO, 'lxd')

    def test_a_daemon_that_does_not_say_needs_the_option(self):
        silent = {'environment': {'server_version': '6.0.4'}}
        with self.assertRaisesRegex(daemon_kind.UnknownDaemon,
                                    'daemon_kind'):
            daemon_kind.identify(silent)
        self.assertEqual('incus', daemon_kind.identify(
            silent, 'incus').kind.name)

    def test_unknown_servers_and_values_refused(self):
        self.assertRaises(daemon_kind.UnknownDaemon, daemon_kind.identify,
                          {'environment': {'server': 'other'}})
        self.assertRaises(daemon_kind.UnknownDaemon, daemon_kind.identify,
                          LXD_INFO, 'docker')


class ConfigTest(unittest.TestCase):

    def test_incus_gets_migration_stateful_with_the_checkpoint_lines(self):
        incus = daemon_kind.KINDS['incus']
        config = {'raw.lxc': 'lxc.pty.max = 1', 'limits.cpu': '1'}
        out = daemon_kind.instance_config(incus, config)
        self.assertEqual('true', out['migration.stateful'])
        self.assertNotIn('migration.stateful', config)
        self.assertEqual([], daemon_kind.checkpoint_config_missing(incus,
                                                                   out))
        self.assertEqual(['migration.stateful=true'],
                         daemon_kind.checkpoint_config_missing(incus,
                                                               config))

    def test_not_without_raw_lxc_and_never_on_lxd(self):
        incus, lxd = daemon_kind.KINDS['incus'], daemon_kind.KINDS['lxd']
        self.assertEqual({'a': 'b'},
                         daemon_kind.instance_config(incus, {'a': 'b'}))
        config = {'raw.lxc': 'lxc.pty.max = 1'}
        self.assertEqual(config, daemon_kind.instance_config(lxd, config))
        self.assertEqual([], daemon_kind.checkpoint_config_missing(lxd, {}))

    def test_an_operator_choice_is_kept(self):
        out = daemon_kind.instance_config(
            daemon_kind.KINDS['incus'],
            {'raw.lxc': 'x', 'migration.stateful': 'false'})
        self.assertEqual('false', out['migration.stateful'])

    def test_console_no_data_marker(self):
        self.assertTrue(daemon_kind.console_no_data(
            'failed: open : no such file or directory'))
        self.assertFalse(daemon_kind.console_no_data('permission denied'))
        self.assertFalse(daemon_kind.console_no_data(None))


class MigrationProblemTest(unittest.TestCase):

    def test_same_kind_moves(self):
        incus = daemon_kind.identify(INCUS_INFO)
        self.assertIsNone(daemon_kind.migration_problem(incus,
                                                        'incus 6.0.3'))

    def test_lxd_and_incus_refused_with_both_named(self):
        incus = daemon_kind.identify(INCUS_INFO)
        reason = daemon_kind.migration_problem(incus, 'lxd 5.0.2')
        self.assertIn('LXD (lxd 5.0.2)', reason)
        self.assertIn('Incus 6.0.4', reason)
        lxd = daemon_kind.identify(LXD_INFO)
        self.assertIn('Incus', daemon_kind.migration_problem(
            lxd, 'incus 6.0.4'))

    def test_a_peer_publishing_nothing_is_lxd(self):
        lxd = daemon_kind.identify(LXD_INFO)
        self.assertIsNone(daemon_kind.migration_problem(lxd, None))
        incus = daemon_kind.identify(INCUS_INFO)
        self.assertIn('no daemon kind published',
                      daemon_kind.migration_problem(incus, None))


class PreCheckTest(unittest.TestCase):
    """ComputeDriver.check_can_live_migrate_destination's kind check."""

    def node(self, info):
        return types.SimpleNamespace(client=types.SimpleNamespace(
            daemon=daemon_kind.identify(info)))

    def check(self, info, peer_stats):
        driver_live_migration.LiveMigrationMixin._check_same_kind(
            self.node(info), {'stats': peer_stats})

    def test_refused_between_kinds(self):
        self.assertRaisesRegex(
            nova_exception.MigrationPreCheckError, 'LXD .* Incus 6.0.4',
            self.check, INCUS_INFO, {daemon_kind.STAT: 'lxd 5.0.2'})

    def test_accepted_within_a_kind(self):
        self.check(INCUS_INFO, {daemon_kind.STAT: 'incus 6.0.4'})
        self.check(LXD_INFO, {})


class _Client(client.DaemonClient):
    """A client whose requests answer from a script (no daemon)."""

    def __init__(self, info, kind=None):
        super().__init__(endpoint='/nonexistent/unix.socket', kind=kind)
        self.info = info
        self.sent = []

    def call(self, action, method, node, **kwargs):
        if method == 'get':
            return self.info
        self.sent.append(kwargs.get('json'))
        return {}


class ClientTest(unittest.TestCase):

    def test_create_adds_what_incus_needs(self):
        daemon = _Client(INCUS_INFO)
        daemon.check_compatible()
        daemon.create_instance({'name': 'c', 'config': {'raw.lxc': 'x'}})
        daemon.start_migration_target({'name': 'c',
                                       'config': {'raw.lxc': 'x'}})
        self.assertEqual(['true', 'true'], [
            body['config']['migration.stateful'] for body in daemon.sent])

    def test_create_on_lxd_unchanged(self):
        daemon = _Client(LXD_INFO)
        body = {'name': 'c', 'config': {'raw.lxc': 'x'}}
        daemon.create_instance(body)
        self.assertEqual([body], daemon.sent)
        self.assertEqual('lxd', daemon.daemon.kind.name)

    def test_kind_mismatch_is_incompatible(self):
        daemon = _Client(INCUS_INFO, kind='lxd')
        self.assertRaisesRegex(exception.DaemonIncompatible, 'says LXD',
                               daemon.check_compatible)

    def test_untrusted_names_the_kinds_trust_command(self):
        daemon = _Client(dict(INCUS_INFO, auth='untrusted'))
        self.assertRaisesRegex(exception.DaemonIncompatible,
                               'incus config trust add-certificate',
                               daemon.check_compatible)


if __name__ == '__main__':
    unittest.main()
