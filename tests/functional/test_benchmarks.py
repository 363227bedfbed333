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
"""Every benchmark, in short form, so that benchmark code keeps working.

Each runs in a process of its own (as ``tox -e bench``, ``bench-migration``,
``bench-snapshot`` and ``scale`` run them), which takes the host lock itself:
these tests hold none. They check only that the benchmark ran to its end
and printed its figures, never the figures (issue 17). The figures are
attached to the test result.
"""

import os
import subprocess
import sys

import testtools

#: tools/setup-host.sh --incus's first Incus daemon.
INCUS_SOCKET = '/var/lib/incus/unix.socket'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class ShortBenchmarksTest(testtools.TestCase):

    def run_bench(self, args, env, marker, timeout=600):
        environ = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1',
                       **env)
        proc = subprocess.run([sys.executable] + args, cwd=REPO, env=environ,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        self.addDetail('figures', testtools.content.text_content(
            proc.stdout))
        self.addDetail('stderr', testtools.content.text_content(
            proc.stderr[-20000:]))
        self.assertEqual(0, proc.returncode, proc.stdout[-3000:] +
                         proc.stderr[-3000:])
        self.assertIn(marker, proc.stdout)

    def _testtools_run(self, module, env, marker):
        self.run_bench(['-m', 'testtools.run', module], env, marker)

    def test_spawn_bench(self):
        self.run_bench(['tools/bench/spawn_bench.py', '--count', '2'], {},
                       'ratio driver/raw')

    def test_migration_bench(self):
        # LXD and Incus side by side, one sample of the small case each;
        # LXD alone on a host set up without --incus (run-tests.sh sets it
        # up whenever functional-incus runs).
        kinds = 'lxd,incus' if os.path.exists(INCUS_SOCKET) else 'lxd'
        self._testtools_run(
            'tests.bench.test_migration_bench.MigrationCompare',
            {'BENCH_MIGRATION_REPEAT': '1', 'BENCH_MIGRATION_CASES': 'small',
             'BENCH_MIGRATION_DAEMONS': kinds}, 'side by side done')

    def test_snapshot_bench(self):
        self._testtools_run('tests.bench.test_snapshot_bench',
                            {'BENCH_SNAPSHOT_REPEAT': '2',
                             'BENCH_SNAPSHOT_MIB': '4'}, 'ratio nova/raw')

    def test_scale_bench(self):
        self._testtools_run('tests.bench.test_scale_bench',
                            {'BENCH_SCALE_COUNT': '20',
                             'BENCH_SCALE_BATCH': '20',
                             'BENCH_SCALE_SETTLE': '1',
                             'BENCH_SCALE_CONCURRENT': '5'},
                            'after everything')
