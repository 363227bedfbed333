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
"""The periodic sweep removes orphans, and nothing else, on a shared daemon.

Two compute nodes (host1, host2) drive one daemon, as migration tests
sometimes do; the sweep runs in host1's image cache manager pass.
"""

import uuid

from nova.compute import task_states

from nova_syscontainer.virt import container
from tests.functional import base
from tests.functional import daemon


class OrphanSweepTest(base.SysContainerTestCase):

    def setUp(self):
        super().setUp()
        self.compute2 = self.start_compute('host2')

    def sweep(self, grace):
        self.flags(orphan_grace_seconds=grace, group='syscontainer')
        self.compute.manager._run_image_cache_manager_pass(self.ctxt)

    def marked(self, instance_uuid, host='host1'):
        """A container carrying ``host``'s marker, made behind Nova's back.

        As a create the driver gave up on (timed out) leaves one.
        """
        name = daemon.NAME_PREFIX + uuid.uuid4().hex[:12]
        fingerprint = self.daemon.import_image()
        self.daemon.create_raw(name, fingerprint, start=True, config={
            container.MANAGED_KEY: 'true',
            container.UUID_KEY: instance_uuid,
            container.HOST_KEY: host})
        return name

    def test_orphans_removed_live_and_moving_instances_kept(self):
        gone = self.boot(name='gone', host='host1')
        gone_name = self.container_name(gone)
        other = self.boot(name='other', host='host2')
        other_name = self.container_name(other)
        live = self.boot(name='live', host='host1')
        live_name = self.container_name(live)
        # Nova forgets 'gone' behind the driver's back; a timed-out create
        # left a container of an instance Nova never placed here; and a
        # stale copy of host2's instance carries host1's marker while that
        # instance is being moved.
        self.instance(gone).destroy()
        timed_out = self.marked(str(uuid.uuid4()))
        stale_copy = self.marked(other['id'])
        moving = self.instance(other)
        moving.task_state = task_states.MIGRATING
        moving.save()

        self.sweep(grace=3600)   # all are young: nothing goes
        names = self.daemon.names()
        for name in (gone_name, timed_out, stale_copy):
            self.assertIn(name, names)

        self.sweep(grace=0)
        names = self.daemon.names()
        self.assertNotIn(gone_name, names)
        self.assertNotIn(timed_out, names)
        self.assertIn(stale_copy, names)        # its instance is moving
        self.assertIn(other_name, names)        # host2's, on one daemon
        self.assertIn(live_name, names)         # host1's own
        log = self.stdlog.logger.output
        self.assertIn('Removing orphan container %s' % gone_name, log)
        self.assertIn('Removing orphan container %s' % timed_out, log)

        moving = self.instance(other)
        moving.task_state = None
        moving.save()
        self.sweep(grace=0)
        names = self.daemon.names()
        self.assertNotIn(stale_copy, names)
        self.assertIn(other_name, names)
        self.assertIn(live_name, names)
        self.assertIn('its instance is on host host2', log +
                      self.stdlog.logger.output)
        self.assertEqual('ACTIVE', self.api.get_server(live['id'])['status'])
        for server in (live, other):
            self._delete_server(server)
        self.assertEqual([], [n for n in self.daemon.names()
                              if n.startswith(daemon.NAME_PREFIX)])

    def test_sweep_off(self):
        self.flags(remove_orphan_containers=False, group='syscontainer')
        orphan = self.marked(str(uuid.uuid4()))
        self.sweep(grace=0)
        self.assertIn(orphan, self.daemon.names())
