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

from nova_syscontainer.virt import migrate

REQUIRED = ['lxc.pty.max = 1', 'lxc.apparmor.profile =']


class CheckpointConfigTest(unittest.TestCase):

    def test_all_present(self):
        rec = {'config': {'raw.lxc': 'lxc.pty.max = 1\n'
                                     'lxc.apparmor.profile =\nother = 2'}}
        self.assertEqual([], migrate.missing_checkpoint_config(rec,
                                                               REQUIRED))

    def test_whitespace_folded(self):
        rec = {'config': {'raw.lxc': '  lxc.pty.max   =  1 \n'
                                     'lxc.apparmor.profile  ='}}
        self.assertEqual([], migrate.missing_checkpoint_config(rec,
                                                               REQUIRED))

    def test_missing_lines_reported(self):
        rec = {'config': {'raw.lxc': 'lxc.pty.max = 1'}}
        self.assertEqual(['lxc.apparmor.profile ='],
                         migrate.missing_checkpoint_config(rec, REQUIRED))
        self.assertEqual(REQUIRED, migrate.missing_checkpoint_config(
            {'config': {}}, REQUIRED))
        self.assertEqual(REQUIRED, migrate.missing_checkpoint_config(
            {}, REQUIRED))
