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
"""The checks a move between daemons must pass before anything moves."""

import unittest

from nova_syscontainer import exception
from nova_syscontainer.virt import move_checks
from tests.unit.test_daemon_move import _record
from tests.unit.test_daemon_move import FakeDaemon
from tests.unit.test_daemon_move import REQUIRED


class RecordChecksTest(unittest.TestCase):

    def test_root_pools(self):
        root = {'type': 'disk', 'path': '/', 'pool': 'p'}
        self.assertEqual('p', move_checks.root_disk_pool({'r': root}))
        self.assertIsNone(move_checks.root_disk_pool(
            {'d': {'type': 'disk', 'path': '/data', 'pool': 'q'}}))
        self.assertIsNone(move_checks.root_disk_pool(None))
        profiles = [{'devices': {'root': dict(root, pool='one')}},
                    {'devices': {}},
                    {'devices': {'root': dict(root, pool='two')}}]
        self.assertEqual('two', move_checks.expanded_root_pool({}, profiles))
        self.assertEqual('own', move_checks.expanded_root_pool(
            {'x': dict(root, pool='own')}, profiles))
        self.assertIsNone(move_checks.expanded_root_pool({}, []))

    def test_state_problems(self):
        self.assertEqual([], move_checks.state_problems(_record(), True))
        self.assertIn('cold move needs it Stopped',
                      move_checks.state_problems(_record(), False)[0])
        self.assertIn('live move needs it Running', move_checks.state_problems(
            _record(status='Frozen'), True)[0])

    def test_record_problems_live(self):
        self.assertEqual([], move_checks.record_problems(_record(), True,
                                                         REQUIRED))
        rec = _record()
        rec['expanded_config']['raw.lxc'] = 'lxc.pty.max = 1'
        rec['expanded_config']['security.idmap.isolated'] = 'True'
        problems = ' '.join(move_checks.record_problems(rec, True, REQUIRED))
        self.assertIn("'lxc.apparmor.profile ='", problems)
        self.assertIn('security.idmap.isolated', problems)
        # A cold move shifts the filesystem: neither matters.
        self.assertEqual([], move_checks.record_problems(
            dict(rec, status='Stopped'), False, REQUIRED))


MAP_A = ('[{"Isuid":true,"Isgid":false,"Hostid":100000,"Nsid":0,'
         '"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":100000,'
         '"Nsid":0,"Maprange":65536}]')
MAP_B = MAP_A.replace('100000', '200000')


class IdmapTest(unittest.TestCase):

    def rec(self, current=None, isolated=False, nxt=None):
        config = {}
        if current is not None:
            config['volatile.idmap.current'] = current
        if nxt is not None:
            config['volatile.idmap.next'] = nxt
        if isolated:
            config['security.idmap.isolated'] = 'true'
        return {'config': config, 'expanded_config': config}

    def test_same_or_unknown_is_fine(self):
        self.assertIsNone(move_checks.idmap_problem(self.rec(MAP_A),
                                                    [self.rec(MAP_A)]))
        # The same entries in another order and JSON spelling.
        flipped = ('[{"Nsid":0,"Isgid":true,"Isuid":false,"Hostid":100000,'
                   '"Maprange":65536},' + MAP_A[1:].split('},')[0] + '}]')
        self.assertIsNone(move_checks.idmap_problem(self.rec(MAP_A),
                                                    [self.rec(flipped)]))
        self.assertIsNone(move_checks.idmap_problem(self.rec(MAP_A), []))
        self.assertIsNone(move_checks.idmap_problem(self.rec(),
                                                    [self.rec(MAP_B)]))
        self.assertIsNone(move_checks.idmap_problem(self.rec('garbage'),
                                                    [self.rec(MAP_B)]))

    def test_different_map_refused(self):
        problem = move_checks.idmap_problem(self.rec(MAP_A), [self.rec(MAP_B)])
        self.assertIn('maps uids/gids differently', problem)
        self.assertIn('uid 0->200000+65536', problem)
        self.assertIn('here uid 0->100000+65536', problem)

    def test_isolated_containers_do_not_tell_the_daemon_map(self):
        target = [self.rec(MAP_B, isolated=True), self.rec(nxt=MAP_A)]
        self.assertEqual(move_checks._idmap({'volatile.idmap.current': MAP_A}),
                         move_checks.daemon_idmap(target))
        self.assertIsNone(move_checks.idmap_problem(self.rec(MAP_A), target))

    def test_check_target_refuses_a_live_move_only(self):
        source = FakeDaemon('https://a:8443', 'fa')
        other = {'volatile.idmap.current': MAP_B}
        target = FakeDaemon('https://b:8443', 'fb', instances={
            'other': _record(name='other', config=other,
                             expanded_config=other)})
        source.profiles['p2'] = target.profiles['p2'] = {'devices': {}}
        record = _record()
        record['expanded_config']['volatile.idmap.current'] = MAP_A
        with self.assertRaises(exception.MigrationTargetUnsuitable) as ctx:
            move_checks.check_target(source, target, record)
        self.assertIn('maps uids/gids differently', str(ctx.exception))
        record['status'] = 'Stopped'
        move_checks.check_target(source, target, record, live=False)
