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
from nova_syscontainer.virt import live_migration
from tests.unit import fakes

objects.register_all()


class CriuVerdictTest(unittest.TestCase):

    def test_success(self):
        self.assertIsNone(live_migration.criu_verdict('criu', 0,
                                                      'Looks good.\n'))
        self.assertIsNone(live_migration.criu_verdict(
            'criu', 0, 'Looks good but some kernel features are missing'))

    def test_failure_keeps_the_error_lines(self):
        out = ('(00.01) Warn: something\n'
               '(00.02) Error (criu/vdso.c:1): Unexpected rt vDSO area '
               'bounds\n(00.03) Error (criu/cr-check.c:2): check failed\n'
               'Looks bad.\n')
        reason = live_migration.criu_verdict('/usr/sbin/criu', 1, out)
        self.assertIn('"/usr/sbin/criu check" failed with exit status 1',
                      reason)
        self.assertIn('Unexpected rt vDSO area bounds', reason)
        self.assertIn('check failed', reason)
        self.assertNotIn('Warn', reason)

    def test_failure_without_errors_or_output(self):
        self.assertIn('Looks bad', live_migration.criu_verdict(
            'criu', 2, 'Looks bad.'))
        self.assertIn('no output', live_migration.criu_verdict(
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
        self.assertIsNone(live_migration.criu_problem(''))
        self.assertIsNone(live_migration.criu_problem(None))

    def test_missing_binary(self):
        reason = live_migration.criu_problem('/nonexistent/criu')
        self.assertIn('CRIU cannot be run as /nonexistent/criu', reason)

    def test_passing_and_failing_check(self):
        good = self.script('[ "$1" = check ] && echo "Looks good." && '
                           'exit 0; exit 9')
        self.assertIsNone(live_migration.criu_problem(good))
        bad = self.script('echo "Error (x.c:1): no kernel support" >&2; '
                          'exit 1')
        self.assertIn('no kernel support', live_migration.criu_problem(bad))

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


def deleted(daemon):
    return [call[1] for call in daemon.calls if call[0] == 'delete']


class FakeInstance(object):
    def __init__(self, uuid, host, task_state=None):
        self.uuid, self.host, self.task_state = uuid, host, task_state


class PendingCleanupsTest(unittest.TestCase):

    def setUp(self):
        from nova_syscontainer import conf as sc_conf
        from nova_syscontainer.virt import container
        self.container = container
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        sc_conf.CONF.set_override('state_path', self.tmp)
        self.addCleanup(sc_conf.CONF.clear_override, 'state_path')
        self.pending = live_migration.PendingCleanups('host2')
        self.db = {}
        orig = live_migration.objects.Instance.get_by_uuid

        def get_by_uuid(context, uuid):
            if uuid not in self.db:
                raise nova_exception.InstanceNotFound(instance_id=uuid)
            return self.db[uuid]
        live_migration.objects.Instance.get_by_uuid = get_by_uuid
        self.addCleanup(setattr, live_migration.objects.Instance,
                        'get_by_uuid', orig)

    def record(self, uuid, host='host1', status='Stopped'):
        return {'name': 'c-' + uuid, 'status': status, 'config': {
            self.container.UUID_KEY: uuid, self.container.HOST_KEY: host}}

    def add(self, uuid):
        inst = FakeInstance(uuid, 'host1')
        self.pending._store(dict(self.pending._load(),
                                 **{uuid: 'c-' + uuid}))
        return inst

    def test_persisted_and_retried(self):
        self.db['u1'] = self.add('u1')
        daemon = fakes.daemon(instances={'c-u1': self.record('u1')})
        # Another PendingCleanups (a restarted nova-compute) sees it.
        again = live_migration.PendingCleanups('host2')
        self.assertEqual(['u1'], again.uuids())
        self.assertEqual(['u1'], again.retry(None, daemon))
        self.assertEqual(['c-u1'], deleted(daemon))
        self.assertEqual([], self.pending.uuids())

    def test_never_removes_what_this_node_owns_or_moves(self):
        self.db['adopted'] = self.add('adopted')
        self.db['here'] = FakeInstance('here', 'host2')
        self.add('here')
        self.db['moving'] = FakeInstance('moving', 'host1', 'migrating')
        self.add('moving')
        self.add('gone')      # deleted from Nova: its leftover goes
        self.add('other')     # a container of that name, another uuid
        daemon = fakes.daemon(instances={
            'c-adopted': self.record('adopted', host='host2'),
            'c-here': self.record('here'),
            'c-moving': self.record('moving'),
            'c-gone': self.record('gone', status='Running'),
            'c-other': self.record('someone-else')})
        done = self.pending.retry(None, daemon)
        self.assertEqual(['c-gone'], deleted(daemon))
        self.assertEqual({'adopted', 'gone', 'other'}, set(done))
        self.assertEqual({'here', 'moving'}, set(self.pending.uuids()))


class TargetClientTest(unittest.TestCase):
    """A peer's client is reused while the peer publishes the same cert."""

    def setUp(self):
        from unittest import mock

        from nova_syscontainer import conf as sc_conf
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        sc_conf.CONF.set_override('state_path', self.tmp)
        self.addCleanup(sc_conf.CONF.clear_override, 'state_path')
        self.stats = {live_migration.ENDPOINT_STAT: 'https://b:8443',
                      live_migration.CERT_STAT: 'PEM-1'}
        node = mock.patch.object(
            live_migration.objects.ComputeNode,
            'get_first_node_by_host_for_old_compat',
            side_effect=lambda ctxt, host: {'stats': dict(self.stats)})
        node.start()
        self.addCleanup(node.stop)
        self.addCleanup(live_migration._PEERS.clear)

    def test_reused_until_the_certificate_changes(self):
        first = live_migration.target_client(None, 'host2')
        self.assertIs(first, live_migration.target_client(None, 'host2'))
        self.assertEqual('https://b:8443', first.endpoint)
        self.stats[live_migration.CERT_STAT] = 'PEM-2'
        second = live_migration.target_client(None, 'host2')
        self.assertIsNot(first, second)
        with open(second._server_cert) as f:
            self.assertEqual('PEM-2', f.read())

    def test_a_peer_without_endpoint_is_refused(self):
        del self.stats[live_migration.ENDPOINT_STAT]
        self.assertRaises(nova_exception.MigrationPreCheckError,
                          live_migration.target_client, None, 'host2')
