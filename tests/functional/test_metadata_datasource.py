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
"""An instance without a config drive is pointed at Nova's metadata API.

What the driver does for it (ComputeDriver.spawn): PID 1's environment
names the platform (``product_name=OpenStack Nova``, which cloud-init's
OpenStack datasource and ds-identify look for where there is no DMI) and,
in an image with cloud-init, a drop-in ``datasource_list: [ OpenStack,
None ]`` so that the datasource wins over DataSourceLXD. That the API is
reachable from the guest (Neutron's metadata proxy and agent, Nova's
metadata service) is the deployment's: tests/smoke proves it end to end in
the all-in-one, logging in with the key the guest read from the API.
"""

import io
import os
import tarfile

from tests.functional import base

DROP_IN = ('/etc/cloud/cloud.cfg.d/'
           '95-nova-syscontainer-metadata-service.cfg')


def with_cloud_cfg_dir(data):
    """The busybox image's tarball plus an empty /etc/cloud/cloud.cfg.d."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as src, \
            tarfile.open(fileobj=out, mode='w:gz') as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member)
                        if member.isfile() else None)
        for path in ('rootfs/etc/cloud', 'rootfs/etc/cloud/cloud.cfg.d'):
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            dst.addfile(info)
    return out.getvalue()


class MetadataDatasourceTest(base.SysContainerTestCase):
    """cloud-init of a config-drive-less instance reads the metadata API."""

    def boot_body(self, name, image_uuid, **extra):
        body = self._build_server(name=name, image_uuid=image_uuid,
                                  flavor_id=self.flavor_id, networks='none')
        body.update(extra)
        server = self.api.post_server({'server': body})
        return self.wait_for(server, 'ACTIVE')

    def test_platform_named_and_datasource_dropped_in(self):
        image = self.add_image(with_cloud_cfg_dir(self.image_data),
                               name='with-cloud-init')
        server = self.boot_body(name='md', image_uuid=image)
        name = self.container_name(server)
        config = self.daemon.instance(name)['config']
        self.assertEqual('OpenStack Nova',
                         config['environment.product_name'])
        with open('/proc/%d/environ' % self.daemon.init_pid(name),
                  'rb') as f:
            self.assertIn(b'product_name=OpenStack Nova',
                          f.read().split(b'\0'))
        self.assertIn('datasource_list: [ OpenStack, None ]',
                      self.daemon.read_file(name, DROP_IN))
        self._delete_server(server)

    def test_no_drop_in_without_cloud_init_nor_with_a_config_drive(self):
        plain = self.boot_body(name='plain', image_uuid=self.image_id)
        root = '/proc/%d/root' % self.daemon.init_pid(
            self.container_name(plain))
        self.assertFalse(os.path.exists(root + '/etc/cloud'))
        self._delete_server(plain)

        image = self.add_image(with_cloud_cfg_dir(self.image_data),
                               name='with-cloud-init')
        drive = self.boot_body(name='cd', image_uuid=image,
                               config_drive=True)
        root = '/proc/%d/root' % self.daemon.init_pid(
            self.container_name(drive))
        self.assertFalse(os.path.exists(root + DROP_IN))
        self.assertTrue(os.path.exists(
            root + '/etc/cloud/cloud.cfg.d/'
            '95-nova-syscontainer-config-drive.cfg'))
        self._delete_server(drive)
