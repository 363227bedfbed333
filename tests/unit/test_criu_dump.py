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
"""criu_dump's /proc readers, on real processes of this test.

A stand-in for ``criu dump`` needs no privilege: a process whose command
line holds ``dump`` forks a child that asks to be traced
(PTRACE_TRACEME) and then execs ``sleep``, so the stand-in is the child's
tracer, as criu is the container init's.
"""

import os
import signal
import subprocess
import sys
import unittest

from nova_syscontainer.virt import criu_dump

TRACER = '''
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
child = os.fork()
if child == 0:
    libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME
    os.execvp("sleep", ["sleep", "60"])
os.waitpid(child, 0)  # its stop at exec: it is traced by now
print(child, flush=True)
sys.stdin.read()
os.kill(child, 9)
os.waitpid(child, 0)
'''

WAITER = 'import sys; print("ready", flush=True); sys.stdin.read()'


class CriuDumpTest(unittest.TestCase):

    def _start(self, *cmd, **kw):
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, text=True,
                                stderr=subprocess.DEVNULL, **kw)
        self.addCleanup(self._close_pipes, proc)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(proc.kill)
        return proc

    def test_a_plain_child(self):
        cmd = [sys.executable, '-c', WAITER, 'plain']
        proc = self._start(*cmd, stdout=subprocess.PIPE)
        proc.stdout.readline()  # it runs its own code: exec is over
        self.assertEqual(cmd, criu_dump.argv(proc.pid))
        self.assertEqual(os.getpid(), criu_dump.parent(proc.pid))
        self.assertTrue(criu_dump.descends_from(proc.pid, os.getpid()))
        self.assertFalse(criu_dump.descends_from(os.getpid(), proc.pid))
        self.assertEqual(0, criu_dump.tracer(proc.pid))
        self.assertIsNone(criu_dump.dumping(proc.pid))
        self.assertIn(proc.pid, criu_dump.all_pids())

    def test_tasks_of_a_tree(self):
        # A child that forks a grandchild: both under the child, in this
        # process's namespaces.
        cmd = [sys.executable, '-c',
               'import os, sys, time\n'
               'kid = os.fork()\n'
               'if kid == 0:\n'
               '    time.sleep(60); os._exit(0)\n'
               'print(kid, flush=True); sys.stdin.read(); os.kill(kid, 9)']
        proc = self._start(*cmd, stdout=subprocess.PIPE)
        grandchild = int(proc.stdout.readline())
        tasks = criu_dump.tasks(proc.pid)
        self.assertEqual([proc.pid, grandchild], [t['pid'] for t in tasks])
        self.assertEqual(criu_dump.namespaces(os.getpid()),
                         tasks[1]['namespaces'])
        self.assertIn('uts', tasks[0]['namespaces'])
        self.assertTrue(tasks[0]['namespaces']['uts'].startswith('uts:['))
        self.assertEqual(criu_dump.comm(proc.pid), tasks[0]['comm'])

    def test_a_process_that_is_gone(self):
        proc = subprocess.Popen(['true'])
        proc.wait()
        self.assertEqual([], criu_dump.argv(proc.pid))
        self.assertEqual(0, criu_dump.parent(proc.pid))
        self.assertEqual(0, criu_dump.tracer(proc.pid))
        self.assertIsNone(criu_dump.dumping(proc.pid))
        self.assertNotIn(proc.pid, criu_dump.all_pids())
        self.assertEqual({}, criu_dump.namespaces(proc.pid))
        self.assertEqual('', criu_dump.comm(proc.pid))
        self.assertEqual([], criu_dump.tasks(proc.pid))

    def _traced_child(self, word):
        tracer = self._start(sys.executable, '-c', TRACER, word,
                             stdout=subprocess.PIPE)
        traced = int(tracer.stdout.readline())
        # A traced process stays stopped when its tracer is killed: the
        # stand-in kills it once its stdin closes; this is the fallback.
        self.addCleanup(self._kill, traced)
        self.addCleanup(tracer.wait, 10)
        self.addCleanup(tracer.stdin.close)
        return tracer, traced

    @staticmethod
    def _close_pipes(proc):
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    @staticmethod
    def _kill(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def test_the_dump_tracing_a_process(self):
        tracer, traced = self._traced_child('dump')
        self.assertEqual(tracer.pid, criu_dump.tracer(traced))
        self.assertTrue(criu_dump.descends_from(traced, tracer.pid))
        self.assertEqual(
            (tracer.pid, [sys.executable, '-c', TRACER, 'dump']),
            criu_dump.dumping(traced))

    def test_a_tracer_that_is_not_a_dump(self):
        tracer, traced = self._traced_child('restore')
        self.assertEqual(tracer.pid, criu_dump.tracer(traced))
        self.assertIsNone(criu_dump.dumping(traced))


if __name__ == '__main__':
    unittest.main()
