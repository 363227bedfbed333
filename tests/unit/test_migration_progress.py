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

import os
import tempfile
import threading
import unittest

from nova_syscontainer.virt import migration_progress as progress
from tests.unit import fakes


class PureTest(unittest.TestCase):

    def test_images_dir(self):
        self.assertEqual('/tmp/x/final', progress.images_dir_of(
            ['criu', 'dump', '--tcp-established', '-D', '/tmp/x/final',
             '-o', '/tmp/x/final/dump.log']))
        self.assertEqual('/d', progress.images_dir_of(
            ['criu', 'dump', '--images-dir=/d']))
        self.assertEqual('/e', progress.images_dir_of(
            ['criu', 'dump', '--images-dir', '/e']))
        self.assertIsNone(progress.images_dir_of(['criu', 'dump', '-D']))
        self.assertIsNone(progress.images_dir_of(['criu', 'dump']))

    def test_tree_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, 'sub'))
            for path, size in (('a', 10), ('sub/b', 5)):
                with open(os.path.join(d, path), 'wb') as f:
                    f.write(b'x' * size)
            os.symlink('/etc/passwd', os.path.join(d, 'link'))
            self.assertEqual(15, progress.tree_bytes(d))
        self.assertEqual(0, progress.tree_bytes(d))  # gone


class FiguresTest(unittest.TestCase):

    def test_nothing_known(self):
        fields, pct = progress.figures(None, None)
        self.assertEqual(0, pct)
        self.assertEqual(dict.fromkeys(fields), fields)
        self.assertIsNone(fields['memory_remaining'])

    def test_dump_under_way(self):
        fields, pct = progress.figures(1000, 250)
        self.assertEqual({'memory_total': 1000, 'memory_processed': 250,
                          'memory_remaining': 750, 'disk_total': None,
                          'disk_processed': None, 'disk_remaining': None},
                         fields)
        self.assertEqual(25, pct)

    def test_checkpoint_bigger_than_usage_raises_total(self):
        fields, pct = progress.figures(1000, 1500)
        self.assertEqual(1500, fields['memory_total'])
        self.assertIsNone(fields['memory_remaining'])
        self.assertEqual(100, pct)


def FakeClient(endpoint='/s', state=None):
    client = fakes.client(endpoint)
    client.get_state.return_value = state or {}
    return client


class MonitorTest(unittest.TestCase):

    def test_sample_remote_source(self):
        source = FakeClient(endpoint='https://a:8443', state={
            'pid': 1, 'memory': {'usage': 4000}})
        mon = progress.Monitor(source, 'c', lambda *a: None, interval=3600)
        mon.start()
        # A remote source: its processes are not looked at.
        self.assertIsNone(mon._init_pid)
        fields, pct = mon.sample()
        mon.stop()
        self.assertEqual(4000, fields['memory_total'])
        self.assertIsNone(fields['memory_processed'])
        self.assertIsNone(fields['disk_processed'])
        self.assertEqual(0, pct)

    def test_reports_changes_from_its_thread(self):
        source = FakeClient(state={'pid': 42, 'memory': {'usage': 1000}})
        sizes = iter([100, 100, 400] + [400] * 1000)
        orig = progress.checkpoint_bytes
        progress.checkpoint_bytes = lambda pid: next(sizes)
        self.addCleanup(setattr, progress, 'checkpoint_bytes', orig)
        reports = []
        done = threading.Event()

        def report(fields, pct):
            reports.append((fields['memory_processed'], pct))
            if pct == 40:
                done.set()
        mon = progress.Monitor(source, 'c', report, interval=0.01)
        mon.start()
        self.assertTrue(done.wait(10))
        mon.stop()
        self.assertEqual([(100, 10), (400, 40)], reports)

    def test_local_source_counts_the_checkpoint_never_backwards(self):
        source = FakeClient(state={'pid': 42, 'memory': {'usage': 1000}})
        sizes = iter([300, None, 200, 900])
        mon = progress.Monitor(source, 'c', lambda *a: None, interval=3600)
        orig = progress.checkpoint_bytes
        progress.checkpoint_bytes = lambda pid: next(sizes)
        self.addCleanup(setattr, progress, 'checkpoint_bytes', orig)
        mon.start()
        mon.stop()
        got = [mon.sample()[0]['memory_processed'] for _ in range(4)]
        self.assertEqual([300, 300, 300, 900], got)
