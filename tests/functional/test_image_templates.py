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
"""Shifted image templates (template.py) on the real daemon's btrfs pool.

With ``[syscontainer] image_templates`` on the ``quota`` (btrfs) pool of
tools/setup-host.sh, servers booted through Nova's API are btrfs
snapshots of one stopped, already shifted template per image: the kernel
says so (the subvolume's parent UUID is the template's). An instance with
its own id map is created from the image; the image cache manager
removes the template with its unused image; and the stock Debian guest,
copied, boots with its own machine id and runs its config drive's user
data. Figures (ACTIVE after, per server) are printed, never asserted.
"""

import base64
import os
import subprocess
import time
import uuid

from oslo_config import cfg

from nova_syscontainer.virt import template
from tests.functional import base
from tests.functional import test_guest
from tests.functional import test_images
from tests import rawlxd

CONF = cfg.CONF
POOL = 'quota'
POOL_PATH = os.path.join(os.path.dirname(base.daemon.ENDPOINT),
                         'storage-pools', POOL)


def subvolume(path):
    """``btrfs subvolume show``: its UUID and its parent's (or None)."""
    out = subprocess.run(['btrfs', 'subvolume', 'show', path],
                         capture_output=True, text=True, check=True).stdout
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.strip().partition(':')
        if sep:
            fields[key.strip()] = value.strip()
    parent = fields.get('Parent UUID')
    return fields['UUID'], None if parent in (None, '-') else parent


def referenced_limit(name):
    """The btrfs qgroup limit (max referenced bytes) of a container's root."""
    out = subprocess.run(['btrfs', 'qgroup', 'show', '-re', '--raw',
                          POOL_PATH], capture_output=True, text=True,
                         check=True).stdout
    rows = [line.split() for line in out.splitlines()
            if line.endswith('containers/' + name)]
    return rows[0][3] if len(rows) == 1 else out


class ImageTemplateTest(base.SysContainerTestCase):
    """Servers as copies of a shifted template, proved by btrfs itself."""

    #: The image cache test removes images: start from an empty store.
    KEEP_IMAGES = False

    def setUp(self):
        super().setUp()
        self.flags(image_templates=True, storage_pool=POOL,
                   group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)

    def remove_template_later(self, fingerprint):
        name = template.name(fingerprint, POOL)
        self.addCleanup(rawlxd.remove, self.daemon.lxd, name)
        return name

    def boot_on_template(self, name, **kwargs):
        start = time.monotonic()
        server = self.boot(name=name, **kwargs)
        took = time.monotonic() - start
        container = self.container_name(server)
        fingerprint = self.daemon.instance(container)['config'][
            'volatile.base_image']
        return server, container, fingerprint, took

    def container_path(self, name):
        return os.path.join(POOL_PATH, 'containers', name)

    def test_servers_are_snapshots_of_one_shifted_template(self):
        flavor = self.make_flavor('t1.disk', disk=1)
        one, first, fingerprint, took1 = self.boot_on_template(
            'one', flavor_id=flavor)
        tmpl = self.remove_template_later(fingerprint)
        two, second, _fp, took2 = self.boot_on_template(
            'two', flavor_id=flavor)
        print('FIGURES image templates (busybox, btrfs): ACTIVE after '
              '%.1f s (template made), %.1f s (copy)' % (took1, took2))

        record = self.daemon.instance(tmpl)
        self.assertTrue(template.ready(record, fingerprint), record)
        self.assertNotIn(tmpl, [s['name'] for s in
                                self.api.get_servers(detail=True)])
        self.assertNotIn(tmpl, self.driver().list_instances())
        tmpl_uuid, _parent = subvolume(self.container_path(tmpl))
        for name in (first, second):
            self.assertEqual(tmpl_uuid,
                             subvolume(self.container_path(name))[1],
                             '%s is not a snapshot of %s' % (name, tmpl))
            # The node's default map: the template's root was shifted to it.
            self.assertEqual('0 100000', ' '.join(self.daemon.read_file(
                name, '/proc/1/uid_map').split()[:2]))
            self.assertIsNotNone(self.daemon.counter(name))
            # The copy got the flavor's root disk size, in the kernel.
            self.assertEqual(str(1024 ** 3), referenced_limit(name))
        self.assertEqual('Stopped', record['status'])
        # A daemon that starts again does not boot the template (LXD 5.0.2
        # leaves volatile.last_state.power RUNNING after the shifting start).
        self.assertEqual('false', record['config']['boot.autostart'])
        for server in (one, two):
            self._delete_server(server)

    def test_an_isolated_id_map_is_created_from_the_image(self):
        _one, first, fingerprint, _t = self.boot_on_template('plain')
        tmpl = self.remove_template_later(fingerprint)
        flavor = self.make_flavor('t1.isolated', extra_specs={
            'syscontainer:idmap_isolated': 'true'})
        _two, isolated, _fp, _t = self.boot_on_template(
            'isolated', flavor_id=flavor)
        tmpl_uuid, _parent = subvolume(self.container_path(tmpl))
        self.assertEqual(tmpl_uuid, subvolume(self.container_path(first))[1])
        self.assertNotEqual(tmpl_uuid,
                            subvolume(self.container_path(isolated))[1])
        self.assertNotEqual('100000', self.daemon.read_file(
            isolated, '/proc/1/uid_map').split()[1])

    def test_image_cache_removes_the_template_with_the_image(self):
        # An image of its own (one more file): no other container on the
        # daemon (another test's, an all-in-one server's) shares its
        # fingerprint, so the driver imported it and may delete it.
        image_id = self.add_image(test_images.variant(self.image_data))
        server, _name, fingerprint, _t = self.boot_on_template(
            'cached', image_id=image_id)
        tmpl = self.remove_template_later(fingerprint)
        self.assertIn(tmpl, self.daemon.names())
        self.flags(remove_unused_original_minimum_age_seconds=0,
                   group='image_cache')
        # In use: the image and its template stay.
        self.driver().manage_image_cache(
            self.ctxt, [self.instance(server)])
        self.assertIn(tmpl, self.daemon.names())
        self.assertIn(fingerprint,
                      [i['fingerprint'] for i in self.daemon.images()])
        self._delete_server(server)
        self.driver().manage_image_cache(self.ctxt, [])
        self.assertNotIn(tmpl, self.daemon.names())
        self.assertNotIn(fingerprint,
                         [i['fingerprint'] for i in self.daemon.images()])


class StockGuestTemplateTest(base.SysContainerTestCase):
    """The stock Debian guest, copied from its template, boots as itself."""

    KEEP_IMAGES = False

    def setUp(self):
        super().setUp()
        path = test_guest.stock_image(self)
        with open(path, 'rb') as f:
            self.stock_id = self.add_image(f.read(), image_id=str(
                uuid.uuid4()), name='debian-12-stock')
        self.flags(image_templates=True, storage_pool=POOL,
                   group='syscontainer')
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)

    def test_copies_have_their_own_identity_and_user_data(self):
        flavor = self.make_flavor('g1.tmpl', memory_mb=256)
        names, tokens, took = [], [], []
        for i in range(3):
            token = uuid.uuid4().hex
            user_data = '#!/bin/sh\necho %s > /var/tmp/nsc-token\n' % token
            body = self._build_server(
                name='stock-%d' % i, image_uuid=self.stock_id,
                flavor_id=flavor, networks='none')
            body.update(config_drive=True, user_data=base64.b64encode(
                user_data.encode()).decode())
            start = time.monotonic()
            server = self.api.post_server({'server': body})
            server = self.wait_for(server, 'ACTIVE', timeout=300)
            took.append(time.monotonic() - start)
            name = self.container_name(server)
            if i == 0:
                fingerprint = self.daemon.instance(name)['config'][
                    'volatile.base_image']
                tmpl = template.name(fingerprint, POOL)
                self.addCleanup(rawlxd.remove, self.daemon.lxd, tmpl)
            names.append(name)
            tokens.append(token)
        print('FIGURES image templates (stock Debian 12 guest, btrfs): '
              'ACTIVE after %s s (the first made the template)' %
              ', '.join('%.1f' % t for t in took))

        tmpl_uuid, _parent = subvolume(os.path.join(
            POOL_PATH, 'containers', tmpl))
        machine_ids = set()
        for name, token in zip(names, tokens):
            self.assertEqual(tmpl_uuid, subvolume(os.path.join(
                POOL_PATH, 'containers', name))[1])
            token_path = '/proc/%d/root/var/tmp/nsc-token' % (
                self.daemon.init_pid(name))
            self.wait_until(lambda: os.path.exists(token_path),
                            timeout=test_guest.CLOUD_INIT_TIMEOUT,
                            what='the user data of %s' % name)
            self.assertEqual(token + '\n',
                             self.daemon.read_file(name, '/var/tmp/nsc-token'))
            machine_ids.add(self.daemon.read_file(
                name, '/etc/machine-id').strip())
        # The template never ran the guest: each copy made its own id.
        self.assertEqual(3, len(machine_ids - {''}))
