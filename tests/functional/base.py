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
"""Nova's own in-process services driving this driver on a real daemon.

:class:`SysContainerTestCase` starts Nova's API, conductor, scheduler, the
Placement fixture and Glance fixture (Nova's functional-test framework, as
Nova's own tests use it) and one or more nova-compute services whose
``compute_driver`` is ``syscontainer.SysContainerDriver`` -- loaded through
the installed ``nova.virt.syscontainer`` shim, talking to the real daemon.
"""

import builtins
import glob
import hashlib
import os
import sys
import time
import uuid

import fixtures
from oslo_privsep import daemon as privsep_daemon
import urllib3

from nova import context as nova_context
from nova import objects
from nova.tests.functional import integrated_helpers
import nova.virt.node

# Registers the [syscontainer] options before Nova's config fixture snapshots
# the configuration (options registered during a test are dropped after it).
from nova_syscontainer import conf as sc_conf  # noqa: F401
from tests.functional import daemon

# Nova's TestCase poisons host I/O that a real driver and the tests' kernel
# checks need (os.uname, reads below /sys). The real functions are kept
# here, before any test has run, to undo that.
_REAL_HOST_IO = {
    'os.uname': os.uname,
    'builtins.open': builtins.open,
    'os.listdir': os.listdir,
    'os.path.isdir': os.path.isdir,
    'glob.glob': glob.glob,
    'glob.iglob': glob.iglob,
    # Nova's PrivsepNoHelperFixture forbids privsep daemons (Nova's own
    # tests mock every privileged call); this driver's host changes run in
    # real ones (nova_syscontainer.privsep).
    'oslo_privsep.daemon.RootwrapClientChannel':
        privsep_daemon.RootwrapClientChannel,
}

#: The namespace of the test image's Glance ids (uuid5 of its sha256).
TEST_IMAGE_NAMESPACE = uuid.UUID('5f0c3b9e-7d1a-4f2e-9c51-7d3e0a9b6c11')


def image_id_of(data):
    """The Glance id of the test image: one per content, never reused.

    A Glance image's data never changes, and the driver reuses the image a
    daemon imported under that id; a fixed id would serve a daemon's old
    copy after the image file was rebuilt (a new recipe version).
    """
    return str(uuid.uuid5(TEST_IMAGE_NAMESPACE,
                          hashlib.sha256(data).hexdigest()))


def image_metadata(data, image_id=None, name='busybox-counter',
                   disk_format='raw', container_format='bare',
                   glance_hash=None, properties=None):
    """Glance metadata of an image holding ``data``, with its real hashes.

    ``properties`` are added to the ones every test image carries.
    """
    return {
        'id': image_id or str(uuid.uuid4()),
        'name': name, 'status': 'active', 'visibility': 'public',
        'disk_format': disk_format, 'container_format': container_format,
        'size': len(data), 'min_disk': 0, 'min_ram': 0,
        'checksum': hashlib.md5(data).hexdigest(),
        'os_hash_algo': 'sha512',
        'os_hash_value': glance_hash or hashlib.sha512(data).hexdigest(),
        'properties': dict({'architecture': 'x86_64',
                            'hypervisor_type': 'lxc', 'vm_mode': 'exe'},
                           **(properties or {})),
    }


class SysContainerTestCase(integrated_helpers.ProviderUsageBaseTestCase):
    """Nova services + this driver + the real daemon."""

    compute_driver = 'syscontainer.SysContainerDriver'
    #: Start a compute service named host1 in setUp.
    START_COMPUTE = True
    #: Keep images in the daemon's test project between tests (faster);
    #: image tests set this to False to start from an empty store.
    KEEP_IMAGES = True

    def setUp(self):
        # The OSAPI fixture loads the paste pipeline during super().setUp().
        self.flags(api_paste_config=os.path.join(
            sys.prefix, 'etc/nova/api-paste.ini'), group='wsgi')
        super().setUp()
        for target, real in _REAL_HOST_IO.items():
            self.useFixture(fixtures.MonkeyPatch(target, real))
        # wsgi-intercept replaces urllib3's HTTPS connection class with one
        # that cannot take urllib3 2's arguments; the daemon's https endpoint
        # needs the real one.
        self.useFixture(fixtures.MonkeyPatch(
            'urllib3.connectionpool.HTTPSConnectionPool.ConnectionCls',
            urllib3.connection.HTTPSConnection))
        tmp = self.useFixture(fixtures.TempDir()).path
        self.flags(state_path=tmp, instances_path=os.path.join(tmp, 'inst'))
        self.flags(lock_path=os.path.join(tmp, 'locks'),
                   group='oslo_concurrency')
        self.daemon = self.useFixture(daemon.DaemonFixture(
            keep_images=self.KEEP_IMAGES))
        self.flags(endpoint=daemon.ENDPOINT, project=daemon.PROJECT,
                   storage_pool=daemon.POOL, group='syscontainer')
        self.flags(instance_name_template=daemon.NAME_TEMPLATE)
        self.ctxt = nova_context.get_admin_context()
        with open(daemon.IMAGE_PATH, 'rb') as f:
            self.image_data = f.read()
        self.image_id = self.add_image(self.image_data,
                                       image_id=image_id_of(
                                           self.image_data))
        self.flavor_id = self.make_flavor('c1.small', vcpus=1,
                                          memory_mb=128)
        if self.START_COMPUTE:
            self.compute = self.start_compute('host1')

    def start_compute(self, host):
        # One process, several computes: each driver must see its own node
        # UUID (nova.virt.node caches one per process).
        nova.virt.node.LOCAL_NODE_UUID = None
        self._start_compute(host)
        return self.computes[host]

    def driver(self, host='host1'):
        return self.computes[host].driver

    def add_image(self, data, image_id=None, **kwargs):
        meta = image_metadata(data, image_id=image_id, **kwargs)
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'img')
        with open(path, 'wb') as f:
            f.write(data)
        with open(path, 'rb') as f:
            self.glance.create(None, meta, data=f)
        return meta['id']

    def make_flavor(self, name, vcpus=1, memory_mb=128, disk=0,
                    extra_specs=None):
        flavor = self.admin_api.post_flavor({'flavor': {
            'name': name, 'vcpus': vcpus, 'ram': memory_mb, 'disk': disk,
            'id': None}})
        if extra_specs:
            self.admin_api.post_extra_spec(
                flavor['id'], {'extra_specs': extra_specs})
        return flavor['id']

    # -- servers -----------------------------------------------------------
    def boot(self, name='vm', image_id=None, flavor_id=None,
             expected_state='ACTIVE', **kwargs):
        server = self._build_server(
            name=name, image_uuid=image_id or self.image_id,
            flavor_id=flavor_id or self.flavor_id, networks='none', **kwargs)
        server = self.api.post_server({'server': server})
        return self.wait_for(server, expected_state)

    def wait_for(self, server, status, timeout=60):
        """Wait for a status with no task running (longer than Nova's 5 s)."""
        params = {'status': status}
        if status != 'ERROR':
            params['OS-EXT-STS:task_state'] = None
        return self._wait_for_server_parameter(
            server, params, max_retries=int(timeout / 0.5))

    def action(self, server, body, status, timeout=60):
        self.api.post_server_action(server['id'], body)
        return self.wait_for(server, status, timeout)

    def container_name(self, server):
        return self.api.get_server(
            server['id'])['OS-EXT-SRV-ATTR:instance_name']

    def instance(self, server):
        return objects.Instance.get_by_uuid(
            self.ctxt, server['id'], expected_attrs=['flavor'])

    def wait_until(self, predicate, timeout=30, what='condition'):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail('timed out waiting for %s' % what)
            time.sleep(0.2)


class TwoHostsTestCase(SysContainerTestCase):
    """Two nova-computes: host1 drives the first daemon, host2 the second.

    The second daemon is ``tools/setup-host.sh --second-daemon``'s. Each
    compute publishes its daemon's https endpoint for migrations.
    """
    START_COMPUTE = False

    def setUp(self):
        super().setUp()
        self.second = self.useFixture(daemon.SecondDaemonFixture())
        self.flags(client_cert=daemon.CLIENT_CERT,
                   client_key=daemon.CLIENT_KEY, group='syscontainer')
        self.use_first_daemon()
        self.compute = self.start_compute('host1')
        self.flags(endpoint=daemon.SECOND_ENDPOINT,
                   migration_endpoint=daemon.SECOND_HTTPS_ENDPOINT,
                   group='syscontainer')
        self.compute2 = self.start_compute('host2')

    def use_first_daemon(self):
        # Drivers read these options when they are created.
        self.flags(endpoint=daemon.ENDPOINT,
                   migration_endpoint=daemon.HTTPS_ENDPOINT,
                   group='syscontainer')

    def restart_host1(self):
        """A new nova-compute for host1, with host1's settings and node."""
        old = self.computes['host1']
        self.use_first_daemon()
        nova.virt.node.LOCAL_NODE_UUID = old.manager.driver._node_uuid
        return self.restart_compute_service(old,
                                            keep_hypervisor_state=False)
