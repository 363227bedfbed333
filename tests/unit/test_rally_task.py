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
"""The Rally task of tools/cloud.sh rally: what it runs and where.

Rendered as Rally renders it (Jinja arguments, then YAML): both Nova
scenarios, an SLA of no failure each, and tenant networks only in
RFC 2544's benchmarking block, never in a private range of the machine.
"""

import ipaddress
import os
import re

import testtools
import yaml

TASK = os.path.join(os.path.dirname(__file__), '..', '..', 'tools', 'cloud',
                    'rally', 'boot-and-delete.yaml')
ARGS = {'image': 'img', 'flavor': 'flv', 'times': '6', 'concurrency': '2'}
PRIVATE = [ipaddress.ip_network(n) for n in
           ('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16')]
BENCHMARKING = ipaddress.ip_network('198.18.0.0/15')


def render():
    with open(TASK) as f:
        text = re.sub(r'\{#.*?#\}', '', f.read(), flags=re.S)
    return yaml.safe_load(re.sub(r'\{\{\s*(\w+)\s*\}\}',
                                 lambda m: ARGS[m.group(1)], text))


class RallyTaskTest(testtools.TestCase):

    def test_scenarios_sla_and_arguments(self):
        task = render()
        self.assertEqual(2, task['version'])
        workloads = {next(iter(w['scenario'])): w
                     for sub in task['subtasks'] for w in sub['workloads']}
        self.assertEqual({'NovaServers.boot_and_delete_server',
                          'NovaServers.boot_and_list_server'},
                         set(workloads))
        for name, workload in workloads.items():
            self.assertEqual({'failure_rate': {'max': 0}}, workload['sla'])
            args = workload['scenario'][name]
            self.assertEqual({'name': 'img'}, args['image'])
            self.assertEqual({'name': 'flv'}, args['flavor'])
            self.assertEqual({'times': 6, 'concurrency': 2},
                             workload['runner']['constant'])

    def test_tenant_networks_are_in_the_benchmarking_block(self):
        for sub in render()['subtasks']:
            for workload in sub['workloads']:
                cidr = ipaddress.ip_network(
                    workload['contexts']['network']['start_cidr'])
                self.assertTrue(cidr.subnet_of(BENCHMARKING), cidr)
                self.assertFalse(any(cidr.overlaps(p) for p in PRIVATE))
