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
"""The pre-check of a CRIU dump, on data shaped like criu_dump.tasks."""

import unittest

from nova_syscontainer import exception
from nova_syscontainer.virt import checkpoint_check

INIT_NS = {ns: '%s:[40265318%02d]' % (ns, i) for i, ns in enumerate(
    ('cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'))}


def task(task_pid, comm, **own):
    ns = dict(INIT_NS)
    for kind, ident in own.items():
        ns[kind] = '%s:[%s]' % (kind, ident)
    return {'pid': task_pid, 'comm': comm, 'namespaces': ns}


class NestedNamespacesTest(unittest.TestCase):

    def test_all_in_init_namespaces(self):
        tasks = [task(100, 'init'), task(101, 'sh'), task(102, 'sleep')]
        self.assertEqual([], checkpoint_check.nested_namespaces(tasks))
        checkpoint_check.check('c', tasks)

    def test_no_tasks(self):
        self.assertEqual([], checkpoint_check.nested_namespaces([]))
        checkpoint_check.check('c', [])

    def test_nested_uts_is_refused(self):
        tasks = [task(100, 'systemd'), task(140, 'systemd-logind', uts=9,
                                            mnt=8)]
        self.assertEqual([(140, 'systemd-logind', ['uts'])],
                         checkpoint_check.nested_namespaces(tasks))
        with self.assertRaises(exception.CheckpointRefused) as cm:
            checkpoint_check.check('ctr', tasks)
        e = cm.exception
        self.assertIn('Container ctr cannot be checkpointed', str(e))
        self.assertIn('systemd-logind (pid 140): uts', str(e))

    def test_nested_mnt_and_net_are_dumpable(self):
        # CRIU dumps nested mount and network namespaces (CLONE_SUBNS).
        tasks = [task(100, 'init'), task(101, 'svc', mnt=7, net=6)]
        self.assertEqual([], checkpoint_check.nested_namespaces(tasks))

    def test_every_undumpable_type(self):
        own = {ns: 5 for ns in checkpoint_check.UNDUMPABLE_NESTED}
        tasks = [task(1, 'init'), task(2, 'x', **own)]
        self.assertEqual(
            [(2, 'x', list(checkpoint_check.UNDUMPABLE_NESTED))],
            checkpoint_check.nested_namespaces(tasks))

    def test_a_type_init_lacks_is_not_judged(self):
        init = task(1, 'init')
        del init['namespaces']['time']
        tasks = [init, task(2, 'x', time=5)]
        self.assertEqual([], checkpoint_check.nested_namespaces(tasks))

    def test_a_type_the_task_lacks_is_not_judged(self):
        kid = task(2, 'x')
        del kid['namespaces']['uts']  # ended while it was read
        self.assertEqual([], checkpoint_check.nested_namespaces(
            [task(1, 'init'), kid]))

    def test_many_tasks_are_counted_not_all_named(self):
        tasks = [task(1, 'init')] + [task(10 + i, 'u%d' % i, uts=i)
                                     for i in range(8)]
        text = checkpoint_check.describe(
            checkpoint_check.nested_namespaces(tasks))
        self.assertIn('u4 (pid 14): uts', text)
        self.assertNotIn('u5 (pid 15)', text)
        self.assertIn(' and 3 more', text)


class UnrestorableMountsTest(unittest.TestCase):

    def test_systemd_propagation_tunnel_is_refused(self):
        logind = task(140, 'systemd-logind', mnt=8)
        logind['mounts'] = ['/', '/run', '/run/systemd/incoming']
        tasks = [task(100, 'systemd'), logind]
        self.assertEqual(140, checkpoint_check.unrestorable_mounts(
            tasks)[0][0])
        with self.assertRaises(exception.CheckpointRefused) as cm:
            checkpoint_check.check('ctr', tasks)
        self.assertIn('systemd-logind (pid 140)', str(cm.exception))
        self.assertIn('/run/systemd/incoming', str(cm.exception))

    def test_other_private_mounts_pass(self):
        svc = task(141, 'svc', mnt=9)
        svc['mounts'] = ['/', '/tmp', '/var/tmp']
        checkpoint_check.check('ctr', [task(100, 'init'), svc])

    def test_init_own_mounts_are_not_judged(self):
        init = task(100, 'systemd')
        init['mounts'] = ['/run/systemd/incoming']
        checkpoint_check.check('ctr', [init, task(101, 'sh')])


if __name__ == '__main__':
    unittest.main()


REQUIRED = ['lxc.pty.max = 1', 'lxc.apparmor.profile =']


class CheckpointConfigTest(unittest.TestCase):

    def test_all_present(self):
        rec = {'config': {'raw.lxc': 'lxc.pty.max = 1\n'
                                     'lxc.apparmor.profile =\nother = 2'}}
        self.assertEqual([], checkpoint_check.missing_checkpoint_config(
            rec, REQUIRED))

    def test_whitespace_folded(self):
        rec = {'config': {'raw.lxc': '  lxc.pty.max   =  1 \n'
                                     'lxc.apparmor.profile  ='}}
        self.assertEqual([], checkpoint_check.missing_checkpoint_config(
            rec, REQUIRED))

    def test_missing_lines_reported(self):
        rec = {'config': {'raw.lxc': 'lxc.pty.max = 1'}}
        self.assertEqual(['lxc.apparmor.profile ='],
                         checkpoint_check.missing_checkpoint_config(
                             rec, REQUIRED))
        self.assertEqual(REQUIRED, checkpoint_check.missing_checkpoint_config(
            {'config': {}}, REQUIRED))
        self.assertEqual(REQUIRED, checkpoint_check.missing_checkpoint_config(
            {}, REQUIRED))
