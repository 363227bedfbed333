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

from nova_syscontainer import exception
from nova_syscontainer.virt import client
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


class _Daemon(client.DaemonClient):
    """A client whose requests answer from a script (no daemon)."""

    def __init__(self, answers):
        super().__init__(endpoint='/nonexistent/unix.socket')
        self.answers = list(answers)
        self.patched = []

    def call(self, action, method, node, **kwargs):
        if method == 'patch':
            self.patched.append(kwargs['json']['config'])
            return {}
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _refusal(reason):
    return exception.DaemonError(endpoint='/x', action='read',
                                 reason=reason)


def _record(status, kept=b''):
    config = {console_log.KEY: console_log.encode(kept)} if kept else {}
    return {'name': 'c1', 'status': status, 'config': config}


class ReadAndKeepTest(unittest.TestCase):

    def test_nothing_new_is_an_empty_log_not_an_error(self):
        # LXD 5.0.2's answer when the ring buffer has nothing new.
        daemon = _Daemon([_refusal('open : no such file or directory')])
        self.assertEqual(b'', daemon.console_log('c1'))

    def test_other_errors_stay_errors(self):
        daemon = _Daemon([_refusal('permission denied')])
        self.assertRaises(exception.DaemonError, daemon.console_log, 'c1')

    def test_running_read_saves_what_grew(self):
        daemon = _Daemon([b'more\n'])
        self.assertEqual(b'boot\nmore\n', console_log.read(
            daemon, _record('Running', b'boot\n')))
        self.assertEqual([{console_log.KEY: console_log.encode(
            b'boot\nmore\n')}], daemon.patched)

    def test_after_a_restore_the_kept_log(self):
        daemon = _Daemon([_refusal('open : no such file or directory')])
        self.assertEqual(b'boot\n', console_log.read(
            daemon, _record('Running', b'boot\n')))
        self.assertEqual([], daemon.patched)

    def test_stopped_read_saves_nothing(self):
        daemon = _Daemon([b'boot\nbye\n'])
        self.assertEqual(b'boot\nbye\n', console_log.read(
            daemon, _record('Stopped', b'boot\n')))
        self.assertEqual([], daemon.patched)

    def test_keep_never_raises(self):
        daemon = _Daemon([exception.DaemonUnavailable(endpoint='/x',
                                                      reason='gone')])
        console_log.keep(daemon, _record('Running', b'boot\n'))
        self.assertEqual([], daemon.patched)
