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

import unittest
from unittest import mock

from nova import exception as nova_exception

from nova_syscontainer import exception
from nova_syscontainer.virt import guest
from tests.unit import fakes

INSTANCE = mock.Mock(uuid='11111111-2222-3333-4444-555555555555')


class PasswordTest(unittest.TestCase):

    def test_admin_user(self):
        self.assertEqual('root', guest.admin_user({}))
        self.assertEqual('debian',
                         guest.admin_user({'os_admin_user': 'debian'}))

    def test_input_is_one_line(self):
        self.assertEqual(b'root:p@ss: w\xc3\xb6rd\n',
                         guest.chpasswd_input('root', 'p@ss: w\u00f6rd'))

    def test_line_breaks_refused(self):
        for password in ('a\nbob:x', 'a\rb'):
            self.assertRaises(exception.GuestPasswordNotSupported,
                              guest.chpasswd_input, 'root', password)
        for user in ('', 'a:b', 'a\nb'):
            self.assertRaises(exception.GuestPasswordNotSupported,
                              guest.chpasswd_input, user, 'pw')

    def test_runs_chpasswd_with_the_password_on_stdin_only(self):
        client = fakes.client()
        client.execute.return_value = (0, '', '')
        guest.set_password(client, 'c1', INSTANCE, 'root', 's3cret')
        client.execute.assert_called_once_with('c1', ('chpasswd',),
                                               b'root:s3cret\n')

    def test_no_chpasswd_is_not_supported(self):
        client = fakes.client()
        client.execute.side_effect = exception.GuestCommandNotFound(
            command='chpasswd')
        e = self.raised(exception.GuestPasswordNotSupported,
                        guest.set_password, client, 'c1', INSTANCE,
                        'root', 'pw')
        self.assertIsInstance(e, nova_exception.SetAdminPasswdNotSupported)
        self.assertIn('has no chpasswd', e.format_message())

    def test_refusal_is_a_failure_without_the_password(self):
        client = fakes.client()
        client.execute.return_value = (
            1, '', "chpasswd: line 1: user 'root' s3cret does not exist\n")
        e = self.raised(nova_exception.InstancePasswordSetFailed,
                        guest.set_password, client, 'c1', INSTANCE,
                        'root', 's3cret')
        self.assertIn('exited with 1', str(e))
        self.assertNotIn('s3cret', str(e))

    def raised(self, exc, func, *args):
        with self.assertRaises(exc) as caught:
            func(*args)
        return caught.exception
