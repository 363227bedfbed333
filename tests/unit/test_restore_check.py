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
"""Tasks CRIU cannot restore on Incus's idmapped root filesystem."""

import os
import stat
import unittest

from nova_syscontainer.virt import restore_check

ROOT = '/proc/10/root'


def _fs(entries):
    """An lstat over {path: (mode, dev)}; others are absent."""
    def lstat(path):
        if path not in entries:
            raise FileNotFoundError(path)
        mode, dev = entries[path]
        return os.stat_result((mode, 0, dev, 0, 0, 0, 0, 0, 0, 0))
    return lstat


DIR = stat.S_IFDIR
FS = _fs({
    ROOT: (DIR | 0o755, 1),
    ROOT + '/root': (DIR | 0o700, 1),
    ROOT + '/root/work': (DIR | 0o755, 1),
    ROOT + '/tmp': (DIR | 0o1777, 2),       # a tmpfs: the container's
    ROOT + '/tmp/private': (DIR | 0o700, 2),
    ROOT + '/etc': (DIR | 0o755, 1),
})


class BlockedDirTest(unittest.TestCase):

    def test_roots_home_and_below_are_blocked(self):
        self.assertEqual('/root', restore_check.blocked_dir(
            ROOT, '/root', FS, FS))
        self.assertEqual('/root', restore_check.blocked_dir(
            ROOT, '/root/work', FS, FS))

    def test_searchable_and_other_filesystems_pass(self):
        for path in ('/', '/etc', '/tmp', '/tmp/private', '/gone'):
            self.assertIsNone(restore_check.blocked_dir(ROOT, path, FS, FS),
                              path)


class UnrestorableTest(unittest.TestCase):

    def test_names_the_tasks_in_root(self):
        cwds = {'/proc/10/cwd': '/', '/proc/11/cwd': '/root',
                '/proc/12/cwd': '/tmp'}

        def readlink(path):
            if path not in cwds:
                raise FileNotFoundError(path)
            return cwds[path]

        tasks = [{'pid': 10, 'comm': 'init'}, {'pid': 11, 'comm': 'sh'},
                 {'pid': 12, 'comm': 'sleep'}, {'pid': 13, 'comm': 'gone'}]
        found = restore_check.unrestorable(tasks, readlink, FS, FS)
        self.assertEqual([(11, 'sh', '/root')], found)
        self.assertIn('sh (pid 11) in /root', restore_check.describe(found))
        self.assertEqual([], restore_check.unrestorable([], readlink, FS,
                                                        FS))


if __name__ == '__main__':
    unittest.main()
