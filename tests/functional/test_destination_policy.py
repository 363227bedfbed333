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
"""A destination whose own policy refuses the flavor refuses the move."""

from tests.functional import test_live_migration


class DestinationPolicyTest(test_live_migration.MigrationTestCase):

    def test_destination_refusing_the_flavor_refused_before_moving(self):
        # host1 allows nesting; host2 (started in setUp) does not.
        self.flags(allow_nesting=True, group='syscontainer')
        self.compute = self.restart_host1()
        flavor = self.make_flavor('nest', extra_specs={
            'syscontainer:nesting': 'true'})
        server = self.boot(host='host1', flavor_id=flavor)
        name = self.container_name(server)
        self.assertEqual('true', self.daemon.instance(name)['config'][
            'security.nesting'])
        token, pid, _count = self.daemon.counter(name)
        self.assert_migration_fails_source_kept(server, name)
        self.assertEqual((token, pid), self.daemon.counter(name)[:2])
        self.assertIn("this node's policy refuses the instance's flavor",
                      self.stdlog.logger.output)
        self.assertIn('allow_nesting', self.stdlog.logger.output)
        self._delete_server(server)
