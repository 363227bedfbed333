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
"""How the kept console log and the daemon's answers add up (pure part)."""

import unittest

from nova_syscontainer.virt import console_log


class MergedTest(unittest.TestCase):

    def test_running_appends_what_is_new(self):
        self.assertEqual(b'boot\nmore\n', console_log.merged(
            b'boot\n', b'more\n', True, 1000))
        # The same line twice is two lines: nothing is deduplicated.
        self.assertEqual(b'x\nx\n', console_log.merged(
            b'x\n', b'x\n', True, 1000))

    def test_running_nothing_new_after_a_restore(self):
        self.assertEqual(b'boot\n', console_log.merged(
            b'boot\n', b'', True, 1000))

    def test_stopped_file_extends_what_was_kept(self):
        self.assertEqual(b'boot\nmore\nstopping\n', console_log.merged(
            b'boot\nmore\n', b'boot\nmore\nstopping\n', False, 1000))

    def test_stopped_file_unrelated_keeps_what_was_kept(self):
        self.assertEqual(b'boot\n', console_log.merged(
            b'boot\n', b'other\n', False, 1000))

    def test_stopped_nothing_kept_is_the_file(self):
        self.assertEqual(b'file\n', console_log.merged(
            b'', b'file\n', False, 1000))

    def test_cap_keeps_the_newest_bytes(self):
        self.assertEqual(b'6789', console_log.merged(
            b'012345', b'6789', True, 4))
        self.assertEqual(b'', console_log.merged(b'a', b'b', True, 0))

    def test_encoding_round_trip(self):
        data = bytes(range(256))
        self.assertEqual(data, console_log.decode(console_log.encode(data)))
        self.assertEqual(b'', console_log.decode(None))
        self.assertEqual(b'', console_log.decode('not base64!'))


if __name__ == '__main__':
    unittest.main()
