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
import shutil
import stat
import tempfile
import unittest
from unittest import mock

from nova import exception as nova_exception
from nova import objects

from nova_syscontainer import privsep
from nova_syscontainer.privsep import criu_host
from nova_syscontainer.virt import criu_processes
from nova_syscontainer.virt import live_migration

objects.register_all()


class CriuVerdictTest(unittest.TestCase):

    def test_success(self):
        self.assertIsNone(criu_processes.criu_verdict('criu', 0,
                                                      'Looks good.\n'))
        self.assertIsNone(criu_processes.criu_verdict(
            'criu', 0, 'Looks good but some kernel features are missing'))

    def test_failure_keeps_the_error_lines(self):
        out = ('(00.01) Warn: something\n'
               '(00.02) Error (criu/vdso.c:1): Unexpected rt vDSO area '
               'bounds\n(00.03) Error (criu/cr-check.c:2): check failed\n'
               'Looks bad.\n')
        reason = criu_processes.criu_verdict('/usr/sbin/criu', 1, out)
        self.assertIn('"/usr/sbin/criu check" failed with exit status 1',
                      reason)
        self.assertIn('Unexpected rt vDSO area bounds', reason)
        self.assertIn('check failed', reason)
        self.assertNotIn('Warn', reason)

    def test_failure_without_errors_or_output(self):
        self.assertIn('Looks bad', criu_processes.criu_verdict(
            'criu', 2, 'Looks bad.'))
        self.assertIn('no output', criu_processes.criu_verdict(
            'criu', 2, ''))


class CriuProblemTest(unittest.TestCase):
    """Real programs run in place of criu.

    In-process: the ``criu_admin`` entry point's own code, no privsep
    daemon, and the scripts (in a temporary directory) count as root's.
    """

    def setUp(self):
        super().setUp()
        for patch in (
                mock.patch.object(privsep.criu_admin, 'client_mode', False),
                mock.patch.object(privsep, 'ready'),
                mock.patch.object(criu_host, '_owned_by_root')):
            patch.start()
            self.addCleanup(patch.stop)

    def script(self, body):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        path = os.path.join(d, 'criu')
        with open(path, 'w') as f:
            f.write('#!/bin/sh\n' + body + '\n')
        os.chmod(path, stat.S_IRWXU)
        return path

    def test_empty_path_skips(self):
        self.assertIsNone(criu_processes.criu_problem(''))
        self.assertIsNone(criu_processes.criu_problem(None))

    def test_missing_binary(self):
        reason = criu_processes.criu_problem('/nonexistent/criu')
        self.assertIn('CRIU cannot be run as /nonexistent/criu', reason)

    def test_passing_and_failing_check(self):
        good = self.script('[ "$1" = check ] && echo "Looks good." && '
                           'exit 0; exit 9')
        self.assertIsNone(criu_processes.criu_problem(good))
        bad = self.script('echo "Error (x.c:1): no kernel support" >&2; '
                          'exit 1')
        self.assertIn('no kernel support', criu_processes.criu_problem(bad))

    def test_check_criu_raises_precheck_error(self):
        e = self.assertRaises(
            nova_exception.MigrationPreCheckError, live_migration.check_criu,
            '/nonexistent/criu', 'destination')
        self.assertIn('CRIU is not usable on the destination node', str(e))
        live_migration.check_criu(None, 'source')

    def assertRaises(self, exc, fn, *args):
        try:
            fn(*args)
        except exc as e:
            return e
        self.fail('%s not raised' % exc.__name__)
