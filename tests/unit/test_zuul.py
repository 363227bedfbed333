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
""".zuul.yaml: the DevStack Tempest job agrees with the plugin's flags."""

import os
import subprocess
import unittest

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
JOB = 'nova-syscontainer-tempest'


def tempest_flags():
    """SYSCONTAINER_TEMPEST_FEATURES, as the plugin reads it."""
    out = subprocess.run(
        ['bash', '-c', 'source tools/lib/syscontainer-conf.sh && '
         'printf "%s\\n" "${SYSCONTAINER_TEMPEST_FEATURES[@]}"'],
        cwd=REPO, check=True, capture_output=True, text=True).stdout
    return dict(line.split('=', 1) for line in out.split())


class ZuulTest(unittest.TestCase):

    def setUp(self):
        with open(os.path.join(REPO, '.zuul.yaml')) as f:
            self.config = yaml.safe_load(f)
        jobs = {item['job']['name']: item['job'] for item in self.config
                if 'job' in item}
        self.job = jobs[JOB]
        self.vars = self.job['vars']

    def test_a_devstack_tempest_job_with_the_plugin(self):
        self.assertEqual('devstack-tempest', self.job['parent'])
        self.assertIn('nova-syscontainer', self.vars['devstack_plugins'])
        self.assertEqual('syscontainer',
                         self.vars['devstack_localrc']['VIRT_DRIVER'])
        self.assertIn('openstack/nova', self.job['required-projects'])

    def test_the_project_runs_it(self):
        project = [item['project'] for item in self.config
                   if 'project' in item][0]
        for pipeline in ('check', 'gate'):
            self.assertIn(JOB, project[pipeline]['jobs'])

    def test_serial_proxy_follows_the_serial_console_flag(self):
        services = self.vars['devstack_services']
        self.assertEqual(tempest_flags()['serial_console'] == 'True',
                         services.get('n-sproxy', False))

    def test_no_volume_service_the_driver_cannot_use(self):
        flags = tempest_flags()
        services = self.vars['devstack_services']
        self.assertEqual('False', flags['attach_encrypted_volume'])
        for service in ('cinder', 'c-api', 'c-vol', 'c-sch'):
            self.assertIs(False, services[service], service)

    def test_flags_come_from_the_plugin_only(self):
        # The plugin's test-config phase writes Tempest's feature flags;
        # a copy here could drift from the support matrix.
        self.assertNotIn('compute-feature-enabled',
                         yaml.safe_dump(self.vars))

    def test_the_exclude_list_exists(self):
        path = self.vars['tempest_test_exclude_list']
        relative = path.rsplit('}}/', 1)[-1]
        self.assertTrue(os.path.isfile(os.path.join(REPO, relative)),
                        relative)
