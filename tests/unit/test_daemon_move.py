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

import copy
import unittest
from unittest import mock

from nova_syscontainer import exception
from nova_syscontainer.virt import daemon_move
from nova_syscontainer.virt import move_checks
from tests.unit import fakes

REQUIRED = ['lxc.pty.max = 1', 'lxc.apparmor.profile =']


RECORD = {
    'name': 'c1', 'architecture': 'x86_64', 'status': 'Running',
    'ephemeral': False, 'description': 'd', 'profiles': ['default', 'p2'],
    'devices': {},
    'config': {'limits.memory': '128MiB', 'raw.lxc': '\n'.join(REQUIRED),
               'volatile.idmap.current': '[]', 'volatile.idmap.next': '[]',
               'volatile.last_state.power': 'RUNNING',
               'volatile.last_state.idmap': '[]',
               'volatile.uuid': 'u', 'volatile.eth0.hwaddr': 'h'},
    'expanded_config': {},
    'expanded_devices': {'root': {'type': 'disk', 'path': '/',
                                  'pool': 'default'}},
}


def _record(**changes):
    rec = copy.deepcopy(RECORD)
    rec['expanded_config'] = dict(rec['config'])
    rec.update(changes)
    return rec


class TargetRequestTest(unittest.TestCase):

    def test_migratable_config_drops_local_keys_only(self):
        self.assertEqual(
            {'limits.memory': '128MiB', 'raw.lxc': '\n'.join(REQUIRED),
             'volatile.uuid': 'u', 'volatile.eth0.hwaddr': 'h'},
            daemon_move.migratable_config(RECORD['config']))
        self.assertEqual({}, daemon_move.migratable_config(None))

    def test_target_request(self):
        body = daemon_move.target_request(
            RECORD, 'https://a:8443/1.0/operations/x', 'PEM',
            {'control': 'c', 'fs': 'f', 'criu': 'r'}, True)
        self.assertEqual('c1', body['name'])
        self.assertEqual('container', body['type'])
        self.assertEqual(['default', 'p2'], body['profiles'])
        self.assertEqual(daemon_move.migratable_config(RECORD['config']),
                         body['config'])
        self.assertFalse(body['ephemeral'])
        self.assertEqual({'type': 'migration', 'mode': 'pull',
                          'operation': 'https://a:8443/1.0/operations/x',
                          'certificate': 'PEM',
                          'secrets': {'control': 'c', 'fs': 'f',
                                      'criu': 'r'},
                          'live': True, 'instance_only': True},
                         body['source'])
        # The source record is left as it was.
        self.assertIn('volatile.idmap.next', RECORD['config'])


def FakeDaemon(endpoint, fingerprint, **state):
    """A daemon (tests/unit/fakes.py) that offers and receives 'c1'."""
    daemon = fakes.daemon(endpoint, fingerprint=fingerprint, **state)
    daemon.refuse = None

    def offer(name, live):
        daemon.calls.append(('offer', name, live))
        return {'id': 'op1', 'metadata': {'control': 'c', 'fs': 'f'}}

    def receive(body):
        daemon.calls.append(('receive', body))
        if daemon.refuse:
            raise exception.DaemonError(endpoint=endpoint, action='receive',
                                        reason=daemon.refuse)
        config = dict(body['config'], **{'volatile.idmap.current': '[]'})
        daemon.instances[body['name']] = dict(body, status='Running',
                                              config=config)
        return {'id': 'op2'}

    def wait(action, op_id, timeout=None, not_found=None):
        daemon.calls.append(('wait', op_id))
        if op_id == 'op1':
            raise not_found  # the source forgot its finished operation
        return {}

    daemon.start_migration_source.side_effect = offer
    daemon.start_migration_target.side_effect = receive
    daemon.wait_operation.side_effect = wait
    return daemon


class CheckAndMoveTest(unittest.TestCase):

    def setUp(self):
        self.source = FakeDaemon('https://a:8443', 'fa',
                                 instances={'c1': _record()})
        self.source.profiles['p2'] = {'devices': {}}
        self.target = FakeDaemon('https://b:8443', 'fb')
        self.target.profiles['p2'] = {'devices': {}}

    def test_the_settling_source_is_deleted_at_short_intervals(self):
        refusals = [exception.DaemonError(
            endpoint='a', action='delete instance c1', reason=reason)
            for reason in ('Instance is running',
                           'Instance is busy running a "stop" operation')]
        delete = self.source.delete_instance
        calls = []

        def settling(name, retry_busy=True):
            calls.append(retry_busy)
            if refusals:
                raise refusals.pop(0)
            return delete(name)
        self.source.delete_instance = settling
        with mock.patch.object(daemon_move.time, 'sleep') as sleep:
            figures = daemon_move.move(self.source, self.target, 'c1',
                                       'https://a:8443/', check=True)
        self.assertTrue(figures['source_removed'])
        self.assertEqual([False, False, False], calls)
        sleep.assert_called_with(daemon_move.SETTLE_INTERVAL)
        self.assertNotIn('c1', self.source.instances)

    def test_other_refusals_of_the_source_delete_are_not_retried(self):
        def refuse(name, retry_busy=True):
            raise exception.DaemonError(endpoint='a', action='delete',
                                        reason='Permission denied')
        self.source.delete_instance = refuse
        with mock.patch.object(daemon_move.time, 'sleep') as sleep:
            figures = daemon_move.move(self.source, self.target, 'c1',
                                       'https://a:8443/', check=True)
        self.assertFalse(figures['source_removed'])
        sleep.assert_not_called()

    def test_check_passes(self):
        move_checks.check_target(self.source, self.target, _record())

    def test_check_lists_every_problem(self):
        del self.target.profiles['p2']
        self.target.instances['c1'] = _record()
        with self.assertRaises(exception.MigrationTargetUnsuitable) as ctx:
            move_checks.check_target(self.source, self.target, _record())
        self.assertIn('lacks the profile(s) p2', str(ctx.exception))
        self.assertIn('already has an instance', str(ctx.exception))
        self.assertIsInstance(ctx.exception, exception.MigrationFailed)

    def test_check_missing_pool_and_landing_pool(self):
        self.target.pools = ()
        with self.assertRaises(exception.MigrationTargetUnsuitable) as ctx:
            move_checks.check_target(self.source, self.target, _record())
        self.assertIn('storage pool default', str(ctx.exception))
        # The pool exists, but the target's default profile would put the
        # root disk elsewhere.
        self.target.pools = ('default', 'other')
        self.target.profiles['default']['devices']['root']['pool'] = 'other'
        with self.assertRaises(exception.MigrationTargetUnsuitable) as ctx:
            move_checks.check_target(self.source, self.target, _record())
        self.assertIn('would land on pool other', str(ctx.exception))

    def test_check_same_daemon(self):
        self.target.fingerprint = 'fa'
        with self.assertRaises(exception.MigrationTargetUnsuitable) as ctx:
            move_checks.check_target(self.source, self.target, _record())
        self.assertIn('same daemon', str(ctx.exception))

    def test_move_success(self):
        figures = daemon_move.move(self.source, self.target, 'c1',
                                   'https://a:8443/', check=True)
        self.assertTrue(figures['source_removed'])
        self.assertGreaterEqual(figures['total'], figures['target_done'])
        body = [c for c in self.target.calls if c[0] == 'receive'][0][1]
        self.assertEqual('https://a:8443/1.0/operations/op1',
                         body['source']['operation'])
        self.assertEqual('PEM-https://a:8443', body['source']['certificate'])
        self.assertIn(('delete', 'c1'), self.source.calls)
        self.assertNotIn('c1', self.source.instances)

    def test_move_refused_by_target_rolls_back(self):
        self.target.refuse = 'Requested profile "p2" doesn\'t exist'
        with self.assertRaises(exception.MigrationFailed) as ctx:
            daemon_move.move(self.source, self.target, 'c1', 'https://a:8443',
                             check=False, release_grace=0)
        self.assertNotIsInstance(ctx.exception,
                                 exception.MigrationTargetUnsuitable)
        self.assertIn('p2', str(ctx.exception))
        self.assertIn('the source is Running', str(ctx.exception))
        self.assertIn(('cancel', 'op1'), self.source.calls)
        self.assertNotIn(('delete', 'c1'), self.source.calls)
        self.assertNotIn('c1', self.target.instances)

    def test_move_never_deletes_a_preexisting_target_instance(self):
        self.target.instances['c1'] = _record(status='Stopped')
        with self.assertRaises(exception.MigrationTargetUnsuitable):
            daemon_move.move(self.source, self.target, 'c1', 'https://a:8443',
                             check=False)
        self.assertEqual([], self.source.calls)
        self.assertEqual([], self.target.calls)
        self.assertIn('c1', self.target.instances)

    def test_cleanup_target(self):
        self.assertFalse(daemon_move.cleanup_target(self.target, 'c1'))
        self.target.instances['c1'] = _record(status='Running')
        self.assertTrue(daemon_move.cleanup_target(self.target, 'c1'))
        self.assertEqual([('stop', 'c1'), ('delete', 'c1')],
                         self.target.calls)


class ReleaseSourceTest(unittest.TestCase):
    """release_source and _roll_back after the source's move failed."""

    def setUp(self):
        self.clock = [0.0]
        patches = [
            mock.patch.object(daemon_move.time, 'monotonic',
                              side_effect=lambda: self.clock[0]),
            mock.patch.object(daemon_move.time, 'sleep',
                              side_effect=self._sleep),
        ]
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)
        self.source = fakes.client()
        self.source.get_operation.return_value = {'status': 'Failure'}

    def _sleep(self, seconds):
        self.clock[0] += seconds

    def test_a_dump_that_starts_after_the_operation_is_released(self):
        # Quiet at first; CRIU starts tracing the init 1 s later.
        tracers = iter([0, 0, 4242, 4242, 0, 0, 0, 0, 0, 0, 0, 0])
        with mock.patch.object(daemon_move.criu_dump, 'tracer',
                               side_effect=lambda pid: next(tracers)), \
                mock.patch.object(daemon_move.criu_processes,
                                  'release_stuck_dump',
                                  side_effect=[False, False, False, True]
                                  + [False] * 10) as release:
            self.assertTrue(daemon_move.release_source(
                self.source, 'c1', ['op1'], init_pid=77, grace=30))
        # Without the late-dump window it returned after the first look,
        # before the fourth call released the dump.
        self.assertGreaterEqual(release.call_count, 4)

    def test_quiet_for_the_window_is_released(self):
        with mock.patch.object(daemon_move.criu_dump, 'tracer',
                               return_value=0), \
                mock.patch.object(daemon_move.criu_processes,
                                  'release_stuck_dump',
                                  return_value=False):
            self.assertTrue(daemon_move.release_source(
                self.source, 'c1', ['op1'], init_pid=77, grace=30))
        self.assertGreaterEqual(self.clock[0], daemon_move.LATE_DUMP_WINDOW)
        self.assertLess(self.clock[0], daemon_move.LATE_DUMP_WINDOW + 1)

    def test_freezing_settles_then_is_unfrozen(self):
        target = fakes.client()
        statuses = iter(['Freezing', 'Freezing', 'Frozen', 'Running'])
        with mock.patch.object(daemon_move, '_status',
                               side_effect=lambda client, name: next(
                                   statuses)), \
                mock.patch.object(daemon_move, 'cleanup_target'):
            notes = daemon_move._roll_back(self.source, target, 'c1', 'op1',
                                           live=False, init_pid=None, grace=30)
        self.source.change_state.assert_called_once_with('c1', 'unfreeze')
        self.assertEqual('the source is Running', notes[0])
