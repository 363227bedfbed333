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
"""The compute node: daemon checks, inventory, listing, failure cleanup."""

from nova import conf
from nova import exception as nova_exception

from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import container
from nova_syscontainer.virt import driver as sc_driver
from tests.functional import base
from tests.functional import daemon

CONF = conf.CONF
BROKEN_PROFILE = daemon.BASE_PREFIX + 'broken'
OTHER_UUID = '0f0f0f0f-0000-4000-8000-0f0f0f0f0f0f'


class InitHostTest(base.SysContainerTestCase):
    START_COMPUTE = False

    def init_host(self, **flags):
        self.flags(group='syscontainer', **flags)
        drv = sc_driver.SysContainerDriver(None)
        drv.init_host('hostx')
        return drv

    def test_unreachable_endpoint_named_in_error(self):
        with self.assertRaises(exception.DaemonUnavailable) as ctx:
            self.init_host(endpoint='/nonexistent/unix.socket')
        self.assertIn('/nonexistent/unix.socket', str(ctx.exception))

    def test_refused_https_port_named_in_error(self):
        with self.assertRaises(exception.DaemonUnavailable) as ctx:
            self.init_host(endpoint='https://127.0.0.1:1')
        self.assertIn('https://127.0.0.1:1', str(ctx.exception))

    def test_https_with_client_certificate_pinned_server(self):
        drv = self.init_host(endpoint=daemon.HTTPS_ENDPOINT,
                             client_cert=daemon.CLIENT_CERT,
                             client_key=daemon.CLIENT_KEY,
                             server_cert=daemon.SERVER_CERT)
        self.assertIsInstance(drv.list_instances(), list)
        self.assertEqual('lxd', drv.get_available_resource(
            'hostx')['hypervisor_type'])

    def test_https_without_client_certificate_not_trusted(self):
        with self.assertRaises(exception.DaemonIncompatible) as ctx:
            self.init_host(endpoint=daemon.HTTPS_ENDPOINT,
                           server_cert=daemon.SERVER_CERT)
        self.assertIn('does not trust', str(ctx.exception))
        self.assertIn(daemon.HTTPS_ENDPOINT, str(ctx.exception))

    def test_wrong_server_certificate_refused(self):
        # The client certificate is not the daemon's: pinning must fail.
        with self.assertRaises(exception.DaemonUnavailable):
            self.init_host(endpoint=daemon.HTTPS_ENDPOINT,
                           client_cert=daemon.CLIENT_CERT,
                           client_key=daemon.CLIENT_KEY,
                           server_cert=daemon.CLIENT_CERT)

    def test_ca_bundle_environment_cannot_change_verification(self):
        # This environment sets REQUESTS_CA_BUNDLE to the system store,
        # which does not know the daemon's self-signed certificate.
        self.useFixture(base.fixtures.EnvironmentVariable(
            'REQUESTS_CA_BUNDLE', '/etc/ssl/certs/ca-certificates.crt'))
        drv = self.init_host(endpoint=daemon.HTTPS_ENDPOINT,
                             client_cert=daemon.CLIENT_CERT,
                             client_key=daemon.CLIENT_KEY,
                             server_cert=daemon.SERVER_CERT)
        self.assertIsInstance(drv.list_instance_uuids(), list)

    def test_missing_storage_pool(self):
        with self.assertRaises(exception.DaemonError) as ctx:
            self.init_host(storage_pool='no-such-pool')
        self.assertIn('no-such-pool', str(ctx.exception))


class NodeTest(base.SysContainerTestCase):

    def test_inventory_from_daemon_figures(self):
        lxd = self.daemon.lxd
        resources = lxd.api.resources.get().json()['metadata']
        rp_uuid = self._get_provider_uuid_by_host('host1')
        inventory = self._get_provider_inventory(rp_uuid)
        self.assertEqual(resources['cpu']['total'],
                         inventory['VCPU']['total'])
        self.assertEqual(resources['memory']['total'] // 1024 ** 2,
                         inventory['MEMORY_MB']['total'])
        pool = lxd.api.storage_pools[daemon.POOL].resources.get().json()
        self.assertEqual(pool['metadata']['space']['total'] // 1024 ** 3,
                         inventory['DISK_GB']['total'])
        self.assertEqual(CONF.reserved_host_memory_mb,
                         inventory['MEMORY_MB']['reserved'])
        self.assertEqual(CONF.initial_cpu_allocation_ratio,
                         inventory['VCPU']['allocation_ratio'])
        hyp = self.admin_api.api_get(
            '/os-hypervisors/detail').body['hypervisors'][0]
        self.assertEqual('lxd', hyp['hypervisor_type'])

    def test_reserved_and_ratios_follow_config(self):
        self.flags(reserved_host_memory_mb=1024, reserved_host_cpus=1,
                   cpu_allocation_ratio=4.0)
        self._run_periodics()
        inventory = self._get_provider_inventory(
            self._get_provider_uuid_by_host('host1'))
        self.assertEqual(1024, inventory['MEMORY_MB']['reserved'])
        self.assertEqual(1, inventory['VCPU']['reserved'])
        self.assertEqual(4.0, inventory['VCPU']['allocation_ratio'])

    def test_lists_only_this_nodes_containers_in_one_call(self):
        servers = [self.boot(name='vm%d' % i) for i in range(3)]
        fingerprint = self.daemon.instance(
            self.container_name(servers[0]))['config']['volatile.base_image']
        # A container the operator made by hand, and one of another node.
        self.daemon.create_raw(daemon.NAME_PREFIX + 'handmade', fingerprint,
                               start=False)
        self.daemon.create_raw(
            daemon.NAME_PREFIX + 'othernode', fingerprint, start=False,
            config={container.MANAGED_KEY: 'true',
                    container.HOST_KEY: 'host9',
                    container.UUID_KEY: OTHER_UUID})

        calls = []
        real_call = daemon_client.DaemonClient.call

        def counting(client, *args, **kwargs):
            calls.append(args[0])
            return real_call(client, *args, **kwargs)
        self.useFixture(base.fixtures.MonkeyPatch(
            'nova_syscontainer.virt.client.DaemonClient.call', counting))

        drv = self.driver()
        self.assertEqual(sorted(s['id'] for s in servers),
                         sorted(drv.list_instance_uuids()))
        self.assertEqual(1, len(calls), calls)
        self.assertEqual(
            sorted(self.container_name(s) for s in servers),
            sorted(drv.list_instances()))
        self.assertEqual(2, len(calls))

    def test_resume_state_on_host_boot(self):
        self.flags(resume_guests_state_on_host_boot=True)
        server = self.boot()
        name = self.container_name(server)
        # The host went down: the container is stopped behind Nova's back.
        self.daemon.change_state(name, 'stop', force=True)
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        self.wait_until(
            lambda: self.daemon.state(name)['status'] == 'Running',
            what='the container to be started again')
        self.wait_for(server, 'ACTIVE')

    def _use_profile(self, name, body):
        self.daemon.ensure_profile(name, body)
        self.flags(profiles=['default', name], group='syscontainer')
        self.flags(max_attempts=1, group='scheduler')

    def test_failed_create_leaves_no_container(self):
        self._use_profile(BROKEN_PROFILE + '-create', {
            'devices': {'data': {'type': 'disk', 'path': '/mnt',
                                 'source': '/nonexistent-source'}}})
        server = self.boot(expected_state='ERROR')
        self.assertIn('failed to create instance', server['fault']['message'])
        self.assertNotIn(self.container_name(server), self.daemon.names())

    def test_failed_start_leaves_no_container(self):
        # The daemon accepts the profile but cannot start with it.
        self._use_profile(BROKEN_PROFILE + '-start', {
            'config': {'linux.kernel_modules': 'nsc_ft_no_such_module'}})
        server = self.boot(expected_state='ERROR')
        self.assertIn('failed to start instance', server['fault']['message'])
        self.assertNotIn(self.container_name(server), self.daemon.names())

    def test_name_taken_by_another_container_is_not_touched(self):
        self.flags(max_attempts=1, group='scheduler')
        fingerprint = self.daemon.import_image()
        self.flags(instance_name_template=daemon.NAME_PREFIX + 'id-%08x')
        taken = daemon.NAME_PREFIX + 'id-%08x' % 1
        self.daemon.create_raw(taken, fingerprint, start=True)
        server = self.boot(expected_state='ERROR')
        self.assertEqual(taken, self.container_name(server))
        self.assertIn('already exists', server['fault']['message'])
        rec = self.daemon.instance(taken)
        self.assertEqual('Running', rec['status'])
        self.assertNotIn(container.MANAGED_KEY, rec['config'])

    def test_flavor_that_cannot_be_enforced_is_refused(self):
        flavor = self.make_flavor('with-quota', extra_specs={
            'quota:cpu_limit': '512'})
        server = self.boot(flavor_id=flavor, expected_state='ERROR')
        self.assertIn('quota:cpu_limit', server['fault']['message'])
        self.assertNotIn(self.container_name(server), self.daemon.names())

    def test_get_info_of_unknown_instance(self):
        server = self.boot()
        inst = self.instance(server)
        drv = self.driver()
        self.daemon.change_state(self.container_name(server), 'stop',
                                 force=True)
        base.daemon.delete_instance(self.daemon.lxd,
                                    self.container_name(server))
        self.assertRaises(nova_exception.InstanceNotFound, drv.get_info,
                          inst)
