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
"""The syscontainer: extra specs at Nova's API; accepted flavors' limits.

:class:`ExtraSpecsApiTest`: Nova's API (microversion 2.86 and later) refuses
a bad ``syscontainer:`` value or key with HTTP 400, through the validators
this package registers (``nova_syscontainer.extra_specs``).

:class:`AcceptedFlavorsOnDaemonTest`: every flavor that
``flavor_limits.translate`` accepts, under the options of a real compute's
driver, makes a container the daemon creates and starts.
"""

import types
import uuid

import hypothesis
from hypothesis import strategies as st
from pylxd import exceptions as lxd_exceptions

from nova import conf
from nova import objects
from nova.tests.functional.api import client

from nova_syscontainer.virt import container
from nova_syscontainer.virt import flavor_limits as fl
from tests import flavor_strategies as fs
from tests.functional import base
from tests.functional import daemon
from tests import rawlxd

CONF = conf.CONF
MiB = 1024 * 1024
P = fl.PREFIX

#: (key, value) pairs Nova's API must refuse.
BAD_SPECS = (
    (P + 'processes', 'abc'),
    (P + 'processes', '1'),
    (P + 'processes', '4194305'),
    (P + 'processes', '1.5'),
    (P + 'cpu_priority', '11'),
    (P + 'memory_swap_priority', '-1'),
    (P + 'privileged', 'maybe'),
    (P + 'nesting', '2'),
    (P + 'idmap_isolated', 'yess'),
    (P + 'intercept', 'ptrace'),
    (P + 'intercept', 'setxattr,ptrace'),
    (P + 'intercept', 'setxattr,'),
    (P + 'nonsense', '1'),
)
GOOD_SPECS = {
    P + 'processes': '100',
    P + 'cpu_priority': '5',
    P + 'memory_swap_priority': '10',
    P + 'idmap_isolated': 'true',
    P + 'nesting': 'False',
    P + 'privileged': '0',
    P + 'intercept': 'setxattr, mknod',
}


class ExtraSpecsApiTest(base.SysContainerTestCase):
    """Nova's API validates our namespace (no compute needed)."""

    START_COMPUTE = False

    def setUp(self):
        super().setUp()
        self.admin_api.microversion = '2.86'
        self.flavor = self.admin_api.post_flavor({'flavor': {
            'name': 'specs', 'vcpus': 1, 'ram': 64, 'disk': 0,
            'id': None}})['id']

    def post(self, specs):
        return self.admin_api.post_extra_spec(self.flavor,
                                              {'extra_specs': specs})

    def assertRefused(self, call, *args):
        with self.assertRaises(client.OpenStackApiException) as ctx:
            call(*args)
        self.assertEqual(400, ctx.exception.response.status_code)
        self.assertIn('Validation failed', str(ctx.exception))
        return ctx.exception

    def test_bad_values_and_unknown_keys_refused(self):
        for microversion in ('2.86', 'latest'):
            self.admin_api.microversion = microversion
            for key, value in BAD_SPECS:
                with self.subTest(microversion=microversion, key=key,
                                  value=value):
                    error = self.assertRefused(self.post, {key: value})
                    self.assertIn(key if 'nonsense' in key else value,
                                  str(error))
        self.assertEqual({}, self.admin_api.get_extra_specs(self.flavor))

    def test_one_bad_key_refuses_the_whole_request(self):
        self.assertRefused(self.post, dict(
            GOOD_SPECS, **{P + 'processes': '2'}))
        self.assertEqual({}, self.admin_api.get_extra_specs(self.flavor))

    def test_good_values_accepted(self):
        response = self.post(GOOD_SPECS)
        self.assertEqual(200, response.status)
        self.assertEqual(GOOD_SPECS,
                         self.admin_api.get_extra_specs(self.flavor))

    def test_update_of_one_key_validated(self):
        key = P + 'processes'
        self.assertRefused(self.admin_api.put_extra_spec, self.flavor, key,
                           {key: 'abc'})
        response = self.admin_api.put_extra_spec(self.flavor, key,
                                                 {key: '64'})
        self.assertEqual(200, response.status)
        self.assertEqual({key: '64'},
                         self.admin_api.get_extra_specs(self.flavor))

    def test_other_namespaces_unchanged(self):
        # Nova's own namespaces are still validated by Nova; foreign
        # (unregistered) namespaces pass, as before.
        response = self.post({'hw:cpu_policy': 'shared',
                              'custom:anything': 'x'})
        self.assertEqual(200, response.status)

    def test_before_2_86_bad_values_accepted(self):
        self.admin_api.microversion = '2.85'
        bad = {P + 'processes': 'abc', P + 'privileged': 'maybe',
               P + 'intercept': 'ptrace', P + 'nonsense': '1'}
        response = self.post(bad)
        self.assertEqual(200, response.status)
        self.assertEqual(bad, self.admin_api.get_extra_specs(self.flavor))


def _specs_for_the_daemon():
    """Extra specs of valid syntax (the rules still refuse some).

    peak and burst are only ever 0 (anything else is always refused).
    Numbers stay within +-2**40 (tests.flavor_strategies), below the
    bounds past which the daemon or the kernel refuse what translate
    accepts (see KnownDaemonRefusalsTest).
    """
    def values(key):
        if key.endswith(('_peak', '_burst')):
            return st.just('0')
        return fs.value_of(key, valid_only=True)

    keys = fs.QUOTA_KEYS + fs.NAMESPACE_KEYS
    return st.lists(st.sampled_from(keys), unique=True, min_size=2,
                    max_size=8).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {key: values(key) for key in chosen}))


class _OnDaemon(base.SysContainerTestCase):
    """Create and start containers from translated flavors, directly."""

    START_COMPUTE = False

    def setUp(self):
        super().setUp()
        # Everything a flavor may ask for is allowed on this compute, so
        # that privileged and nesting containers are tried too.
        self.flags(allow_privileged=True, allow_nesting=True,
                   root_disk_size_unenforceable='warn', group='syscontainer')
        self.compute = self.start_compute('host1')
        self.options = self.driver()._limit_options
        self.checkpoint_lines = self.driver()._checkpoint_lines()
        self.fingerprint = self.daemon.import_image()
        self.admin_api.microversion = 'latest'

    def flavor(self, vcpus=1, memory_mb=128, root_gb=0, swap=0,
               extra_specs=None):
        """A real nova.objects.Flavor, made through Nova's API."""
        body = self.admin_api.post_flavor({'flavor': {
            'name': 'f-%s' % uuid.uuid4().hex[:8], 'vcpus': vcpus,
            'ram': memory_mb, 'disk': root_gb, 'swap': swap, 'id': None}})
        if extra_specs:
            self.admin_api.post_extra_spec(body['id'],
                                           {'extra_specs': extra_specs})
        return objects.Flavor.get_by_flavor_id(self.ctxt, body['id'])

    def body(self, flavor, limits):
        """The driver's create body for ``flavor``, and a NIC with limits.

        The driver attaches no NIC yet; a p2p NIC carries the limits it
        will set, so that the daemon (and tc) take their values too. Only
        limits.ingress: this host's kernel has no tc police action, which
        the daemon's limits.egress needs.
        """
        name = daemon.NAME_PREFIX + 'hyp-' + uuid.uuid4().hex[:12]
        instance = types.SimpleNamespace(
            name=name, uuid=str(uuid.uuid4()), image_ref=self.image_id,
            flavor=flavor)
        body = container.create_body(
            instance, self.driver()._nodename, self.fingerprint, limits,
            CONF.syscontainer.profiles, raw_lxc=self.checkpoint_lines)
        if 'limits.ingress' in limits.nic:
            body['devices']['eth0'] = {
                'type': 'nic', 'nictype': 'p2p', 'name': 'eth0',
                'limits.ingress': limits.nic['limits.ingress']}
        return body

    def create_and_start(self, body):
        """Create and start the container; its daemon error, or None."""
        lxd = self.daemon.lxd
        name = body['name']
        try:
            rawlxd.wait_operation(lxd, lxd.api.instances.post(json=body))
            self.daemon.change_state(name, 'start')
        except Exception as error:
            return str(error)
        return None

    def remove(self, name):
        rawlxd.remove(self.daemon.lxd, name)


class AcceptedFlavorsOnDaemonTest(_OnDaemon):

    @hypothesis.settings(
        max_examples=15, deadline=None, database=None,
        suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture,
                               hypothesis.HealthCheck.too_slow,
                               hypothesis.HealthCheck.filter_too_much])
    @hypothesis.given(
        vcpus=st.integers(1, 2),
        memory_mb=st.sampled_from((64, 128)) | st.integers(64, 512),
        root_gb=st.sampled_from((0, 1)),
        swap=st.sampled_from((0, 64)),
        specs=_specs_for_the_daemon())
    def test_accepted_flavor_runs(self, vcpus, memory_mb, root_gb, swap,
                                  specs):
        flavor = self.flavor(vcpus, memory_mb, root_gb, swap, specs)
        try:
            limits = fl.translate(flavor, {}, self.options)
        except fl.LimitError:
            hypothesis.reject()
        body = self.body(flavor, limits)
        name = body['name']
        try:
            error = self.create_and_start(body)
            self.assertIsNone(error, 'the daemon refused an accepted '
                              'flavor %r: %s' % (specs, error))
            state = self.daemon.state(name)
            self.assertEqual('Running', state['status'])
            self.assertGreater(state['pid'], 0)
            # The kernel holds the flavor's memory.
            self.assertEqual(str(memory_mb * MiB), self.daemon.cgroup_value(
                name, 'memory', 'memory.limit_in_bytes'))
        finally:
            self.remove(name)


class DaemonBoundsTest(_OnDaemon):
    """The daemon's and the kernel's bounds on translated values.

    At a bound the container runs; past it, translate refuses the flavor
    (LimitError) instead of building a container that would not start or
    a limit the kernel would hold differently.
    """

    def daemon_error(self, vcpus=1, **specs):
        """None if translate refuses or the container runs; else the error.

        The error is the daemon's, or the LXC log line that says why the
        container did not start.
        """
        flavor = self.flavor(vcpus=vcpus, extra_specs={
            key.replace('__', ':'): value for key, value in specs.items()})
        try:
            limits = fl.translate(flavor, {}, self.options)
        except fl.LimitError:
            return None
        body = self.body(flavor, limits)
        name = body['name']
        try:
            error = self.create_and_start(body)
            if error is None:
                self.assertEqual('Running', self.daemon.state(name)['status'])
                return None
            return '\n'.join([error] + self.lxc_errors(name))
        finally:
            self.remove(name)

    def lxc_errors(self, name):
        """The ERROR lines of LXC's log (none if LXC never ran)."""
        try:
            log = self.daemon.lxd.api.instances[name].logs['lxc.log'].get()
        except lxd_exceptions.LXDAPIException:
            return []
        return [line for line in log.text.splitlines() if 'ERROR' in line]

    def assertRefused(self, vcpus=1, **specs):
        """Past a bound: translate refuses, naming the key."""
        flavor = self.flavor(vcpus=vcpus, extra_specs={
            key.replace('__', ':'): value for key, value in specs.items()})
        with self.assertRaises(fl.LimitError) as ctx:
            fl.translate(flavor, {}, self.options)
        for key in specs:
            self.assertIn(key.replace('__', ':'), str(ctx.exception))

    def test_at_the_bounds(self):
        for vcpus, specs in (
                # The kernel's largest CFS quota for a cgroup: 2**44 - 1 us.
                (1, {'quota__cpu_quota': str(2 ** 44 - 1)}),
                (2, {'quota__cpu_quota': str(2 ** 43 - 1)}),
                # The daemon parses disk limits as int64.
                (1, {'quota__disk_read_bytes_sec': str(2 ** 63 - 1)}),
                (1, {'quota__disk_write_iops_sec': str(2 ** 32 - 2)}),
                # 8*N kbit, in bit/s, as int64.
                (1, {'quota__vif_inbound_average': str(
                    (2 ** 63 - 1) // 8000)})):
            with self.subTest(vcpus=vcpus, **specs):
                self.assertIsNone(self.daemon_error(vcpus=vcpus, **specs))

    def test_cpu_quota_past_the_kernel_bound(self):
        # The kernel refuses it at start: Failed to set "cpu.cfs_quota_us"
        # to "17592186044416".
        self.assertRefused(vcpus=2, quota__cpu_quota=str(2 ** 43))

    def test_disk_bytes_past_int64(self):
        # The daemon: Invalid integer: 9223372036854775808.
        self.assertRefused(quota__disk_read_bytes_sec=str(2 ** 63))

    def test_disk_iops_past_uint32(self):
        # cgroup v1 blk-throttle keeps IOPS in 32 bits: 2**32 + 1 would be
        # held as 1 IOPS, and 2**63 is refused by the daemon.
        self.assertRefused(quota__disk_read_iops_sec=str(2 ** 32 + 1))
        self.assertRefused(quota__disk_read_iops_sec=str(2 ** 63))

    def test_vif_average_past_int64_bits(self):
        # The daemon: Overflow multiplying 9223372036854776 with 1000.
        self.assertRefused(
            quota__vif_inbound_average=str((2 ** 63 - 1) // 8000 + 1))
