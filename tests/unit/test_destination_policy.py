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
"""A container arriving from another node gets this node's policy."""

import types
import unittest

from nova import exception as nova_exception

from nova_syscontainer.virt import container
from nova_syscontainer.virt import destination_policy as policy
from nova_syscontainer.virt import flavor_limits as fl

SOURCE = fl.Options(allow_privileged=True, allow_nesting=True,
                    cgroup_version=1, pool_enforces_size=True)
DEST = fl.Options(cgroup_version=2)


def instance(**extra_specs):
    return types.SimpleNamespace(
        name='instance-0000000a', uuid='3c4b7a8e-0000-4000-8000-1',
        image_ref='img-1', flavor=types.SimpleNamespace(
            name='small', vcpus=1, memory_mb=256, root_gb=0, ephemeral_gb=0,
            swap=0, extra_specs=dict(extra_specs)))


def translator(options):
    return lambda inst: fl.translate(inst.flavor, {}, options)


class CheckTest(unittest.TestCase):

    def test_privileged_or_nesting_refused_where_not_allowed(self):
        for key in ('privileged', 'nesting'):
            with self.subTest(key=key):
                inst = instance(**{fl.PREFIX + key: 'true'})
                policy.check(translator(SOURCE), inst)
                with self.assertRaises(
                        nova_exception.MigrationPreCheckError) as ctx:
                    policy.check(translator(DEST), inst)
                self.assertIn("this node's policy refuses", str(ctx.exception))
                self.assertIn('allow_' + key, str(ctx.exception))

    def test_root_size_refused_where_the_pool_cannot_enforce_it(self):
        inst = instance()
        inst.flavor.root_gb = 1
        policy.check(translator(SOURCE), inst)
        self.assertRaises(nova_exception.MigrationPreCheckError,
                          policy.check, translator(DEST), inst)
        policy.check(translator(fl.Options(unenforceable_root_size=fl.WARN)),
                     inst)

    def test_accepted_flavor_gives_the_limits(self):
        limits = policy.check(translator(DEST), instance())
        self.assertEqual('1', limits.config['limits.cpu'])


class ReapplyTest(unittest.TestCase):

    def arrived(self, inst, source_lines):
        """What the source wrote into the container (its own policy)."""
        limits = fl.translate(inst.flavor, {}, SOURCE)
        body = container.create_body(inst, 'source', 'fp', limits,
                                     ['default'], raw_lxc=source_lines)
        return {'config': dict(body['config'], **{
            'volatile.eth0.hwaddr': '00:16:3e:00:00:01'}),
            'devices': body['devices'], 'profiles': ['default']}

    def test_source_policy_replaced(self):
        inst = instance(**{'quota:cpu_shares': '512'})
        writable = self.arrived(inst, ['lxc.pty.max = 1',
                                       'lxc.apparmor.profile ='])
        self.assertIn('cpu.shares = 512', writable['config']['raw.lxc'])
        limits = fl.translate(inst.flavor, {}, DEST)
        body = policy.reapply(writable, inst, 'dest', limits,
                              ['lxc.pty.max = 1'])
        config = body['config']
        # cgroup v2 keys, this node's CRIU lines only, this node's marker.
        self.assertEqual('lxc.pty.max = 1\nlxc.cgroup2.cpu.weight = 20',
                         config['raw.lxc'])
        self.assertEqual('dest', config[container.HOST_KEY])
        self.assertEqual('00:16:3e:00:00:01',
                         config['volatile.eth0.hwaddr'])
        self.assertEqual(['raw.lxc', container.HOST_KEY],
                         policy.changes(writable, body))

    def test_privileged_key_of_the_source_dropped(self):
        inst = instance()
        writable = self.arrived(inst, [])
        writable['config']['security.privileged'] = 'true'
        body = policy.reapply(writable, inst, 'dest',
                              fl.translate(inst.flavor, {}, DEST), [])
        self.assertNotIn('security.privileged', body['config'])
        self.assertIn('security.privileged',
                      policy.changes(writable, body))
