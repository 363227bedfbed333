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
"""The driver's state files: whole or not at all, and no lost update."""

import os
import tempfile
import threading
from unittest import mock

import fixtures
import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import leftovers
from nova_syscontainer.virt import state_files


class FakeInstance(object):
    def __init__(self, n):
        self.uuid = '00000000-0000-4000-8000-%012d' % n
        self.name = 'instance-%08x' % n


class StateFilesTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        sc_conf.CONF.set_override('state_path', self.dir)
        self.addCleanup(sc_conf.CONF.clear_override, 'state_path')

    def test_concurrent_adds_lose_nothing(self):
        pending = leftovers.PendingCleanups('node1')
        # Widen the read-modify-write window: without the lock, threads
        # read the same old content and the last writer wins.
        real_load = pending._load

        def slow_load():
            content = real_load()
            threading.Event().wait(0.01)
            return content

        pending._load = slow_load
        threads = [threading.Thread(target=pending.add,
                                    args=(FakeInstance(n),))
                   for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(FakeInstance(n).uuid for n in range(20)),
                         sorted(leftovers.PendingCleanups(
                             'node1').uuids()))

    def test_a_failed_write_keeps_the_old_content_and_no_temporary(self):
        pending = leftovers.PendingCleanups('node1')
        pending.add(FakeInstance(1))
        with mock.patch.object(os, 'replace', side_effect=OSError('disk')):
            self.assertRaises(OSError, pending.add, FakeInstance(2))
        self.assertEqual([FakeInstance(1).uuid], pending.uuids())
        # Nothing but the file itself and its lock file.
        self.assertEqual(
            ['pending-cleanup-node1.json'],
            [f for f in os.listdir(os.path.dirname(pending.path))
             if 'lock' not in f])

    def test_write_atomic_mode_and_content(self):
        path = os.path.join(tempfile.mkdtemp(dir=self.dir), 'sub', 'f')
        state_files.write_atomic(path, 'x', mode=0o644)
        state_files.write_atomic(path, 'y')
        with open(path) as f:
            self.assertEqual('y', f.read())
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        self.assertEqual(0o700, os.stat(os.path.dirname(path)).st_mode &
                         0o777)
