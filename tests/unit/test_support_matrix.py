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
"""No claim without a test: doc/source/support-matrix.ini against the code.

Every feature the matrix claims (complete or partial) must name functional
tests that exist in tests/functional (read with ast, not imported: they
need the daemon), and the matrix must agree with what the driver class
really implements and advertises.
"""

import ast
import importlib.util
import os
import tempfile
import textwrap
import unittest

from nova.virt import driver as nova_driver

from nova_syscontainer.virt import driver

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MATRIX = os.path.join(REPO, 'doc', 'source', 'support-matrix.ini')
FUNCTIONAL = os.path.join(REPO, 'tests', 'functional')


def _load_data_module():
    spec = importlib.util.spec_from_file_location(
        'support_matrix_data',
        os.path.join(REPO, 'doc', 'ext', 'support_matrix_data.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


data = _load_data_module()

# Matrix feature -> the ComputeDriver method that implements it. A feature
# is "missing" exactly when the driver does not override that method.
METHODS = {
    'operation.attach-volume': 'attach_volume',
    'operation.detach-volume': 'detach_volume',
    'operation.extend-volume': 'extend_volume',
    'operation.attach-interface': 'attach_interface',
    'operation.detach-interface': 'detach_interface',
    'operation.maintenance-mode': 'host_maintenance_mode',
    'operation.get-guest-info': 'get_info',
    'operation.get-host-uptime': 'get_host_uptime',
    'operation.get-host-ip': 'get_host_ip_addr',
    'operation.live-migrate': 'live_migration',
    'operation.force-live-migration-to-complete':
        'live_migration_force_complete',
    'operation.abort-in-progress-live-migration': 'live_migration_abort',
    'operation.launch': 'spawn',
    'operation.pause': 'pause',
    'operation.unpause': 'unpause',
    'operation.reboot': 'reboot',
    'operation.rescue': 'rescue',
    'operation.resize': 'migrate_disk_and_power_off',
    'operation.cold-migrate': 'migrate_disk_and_power_off',
    'operation.suspend': 'suspend',
    'operation.resume': 'resume',
    'operation.resume-on-host-boot': 'resume_state_on_host_boot',
    'operation.power-off-on': 'power_off',
    'operation.set-admin-password': 'set_admin_password',
    'operation.diagnostics': 'get_instance_diagnostics',
    'operation.snapshot': 'snapshot',
    'operation.swap-volume': 'swap_volume',
    'operation.terminate': 'destroy',
    'operation.trigger-crash-dump': 'trigger_crash_dump',
    'operation.quiesce': 'quiesce',
    'operation.unquiesce': 'unquiesce',
    'operation.cache-images': 'cache_image',
    'console.serial.log': 'get_console_output',
    'console.serial.interactive': 'get_serial_console',
    'console.spice': 'get_spice_console',
    'console.vnc': 'get_vnc_console',
}

# Matrix feature -> the driver capability Nova schedules and gates on.
CAPABILITIES = {
    'operation.cache-images': 'has_imagecache',
    'operation.evacuate': 'supports_evacuate',
    'operation.attach-interface': 'supports_attach_interface',
    'operation.attach-tagged-interface': 'supports_tagged_attach_interface',
    'operation.attach-tagged-volume': 'supports_tagged_attach_volume',
    'operation.extend-volume': 'supports_extend_volume',
    'operation.multiattach-volume': 'supports_multiattach',
    'operation.trusted-certs': 'supports_trusted_certs',
    'operation.device-tags': 'supports_device_tagging',
    'operation.boot-emulated-tpm': 'supports_vtpm',
}


def functional_test_exists(test_id):
    """True when ``module.Class[.test_method]`` is a functional test.

    A method may be defined on the class or on a base class of the same
    module; a class alone must hold at least one test method.
    """
    parts = test_id.split('.')
    if len(parts) not in (2, 3):
        return False
    path = os.path.join(FUNCTIONAL, parts[0] + '.py')
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    classes = {node.name: node for node in tree.body
               if isinstance(node, ast.ClassDef)}

    def methods(name, seen=()):
        cls = classes.get(name)
        if cls is None or name in seen:
            return set()
        found = {node.name for node in cls.body
                 if isinstance(node, ast.FunctionDef) and
                 node.name.startswith('test_')}
        for base in cls.bases:
            if isinstance(base, ast.Name):
                found |= methods(base.id, seen + (name,))
        return found

    if parts[1] not in classes:
        return False
    tests = methods(parts[1])
    if len(parts) == 2:
        return bool(tests)
    return parts[2] in tests


class MatrixTest(unittest.TestCase):

    def setUp(self):
        self.title, self.features = data.load(MATRIX)
        self.by_key = {f.key: f for f in self.features}

    def test_every_named_test_exists(self):
        for feature in self.features:
            for test_id in feature.tests:
                self.assertTrue(functional_test_exists(test_id),
                                '[%s] names %s, which is not a test in '
                                'tests/functional' % (feature.key, test_id))

    def test_every_claim_names_a_test(self):
        claimed = [f for f in self.features if f.level in data.CLAIMED]
        self.assertGreater(len(claimed), 10)
        for feature in claimed:
            self.assertTrue(feature.tests, feature.key)

    def test_missing_exactly_when_the_driver_lacks_the_method(self):
        for key, method in METHODS.items():
            feature = self.by_key[key]
            ours = getattr(driver.SysContainerDriver, method)
            base = getattr(nova_driver.ComputeDriver, method)
            implemented = ours is not base
            self.assertEqual(
                implemented, feature.level != 'missing',
                '[%s] says %s but SysContainerDriver %s %s()'
                % (key, feature.level,
                   'overrides' if implemented else 'does not override',
                   method))

    def test_capabilities_agree(self):
        caps = driver.SysContainerDriver.capabilities
        for key, cap in CAPABILITIES.items():
            self.assertEqual(caps[cap],
                             self.by_key[key].level != 'missing',
                             '[%s] vs capability %s' % (key, cap))

    def test_volumes_and_networks_refused_at_build_are_missing(self):
        # The driver refuses block devices at build; the matrix must not
        # claim any block storage.
        for key, feature in self.by_key.items():
            if key.startswith('storage.block'):
                self.assertEqual('missing', feature.level, key)


class RulesTest(unittest.TestCase):
    """The checker itself fails on a bad matrix."""

    def load(self, features):
        text = '[driver.syscontainer]\ntitle=t\n' + textwrap.dedent(features)
        with tempfile.NamedTemporaryFile('w', suffix='.ini',
                                         delete=False) as f:
            f.write(text)
        self.addCleanup(os.unlink, f.name)
        return data.load(f.name)

    def test_claim_without_test_refused(self):
        self.assertRaisesRegex(
            data.MatrixError, 'names no test', self.load, '''\
            [operation.pause]
            title=Pause
            status=optional
            driver.syscontainer=complete
            ''')

    def test_partial_without_notes_refused(self):
        self.assertRaisesRegex(
            data.MatrixError, 'without driver notes', self.load, '''\
            [operation.pause]
            title=Pause
            status=optional
            driver.syscontainer=partial
            tests.syscontainer=test_lifecycle.LifecycleTest
            ''')

    def test_tests_on_a_missing_feature_refused(self):
        self.assertRaisesRegex(
            data.MatrixError, 'names tests but is missing', self.load, '''\
            [operation.pause]
            title=Pause
            status=optional
            driver.syscontainer=missing
            tests.syscontainer=test_lifecycle.LifecycleTest
            ''')

    def test_unknown_level_refused(self):
        self.assertRaisesRegex(
            data.MatrixError, 'support level', self.load, '''\
            [operation.pause]
            title=Pause
            status=optional
            driver.syscontainer=yes
            ''')

    def test_test_ids_resolved_against_the_tree(self):
        self.assertTrue(functional_test_exists(
            'test_lifecycle.LifecycleTest.test_power_cycle'))
        self.assertTrue(functional_test_exists('test_lifecycle.LifecycleTest'))
        self.assertFalse(functional_test_exists(
            'test_lifecycle.LifecycleTest.test_no_such_test'))
        self.assertFalse(functional_test_exists(
            'test_lifecycle.NoSuchTest.test_power_cycle'))
        self.assertFalse(functional_test_exists('no_such_module.Test'))
        self.assertFalse(functional_test_exists('test_lifecycle'))


if __name__ == '__main__':
    unittest.main()
