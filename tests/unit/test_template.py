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
"""Unit tests of template.py: the plan is pure, the daemon calls faked."""

import fixtures
import testtools

from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import image
from nova_syscontainer.virt import template
from tests.unit import fakes

FP = 'a' * 64
MAP = '[{"Isuid":true,"Hostid":100000,"Nsid":0,"Maprange":65536}]'


def shifted(fingerprint=FP, status=daemon_client.STOPPED, **config):
    base = {'volatile.base_image': fingerprint,
            'boot.autostart': 'false',
            'volatile.last_state.idmap': MAP, 'volatile.idmap.next': MAP}
    base.update(config)
    return {'name': template.name(fingerprint, 'quota'), 'status': status,
            'config': {k: v for k, v in base.items() if v is not None}}


class PlanTest(testtools.TestCase):

    def test_name_is_a_valid_container_name_for_any_pool(self):
        for pool in ('quota', 'a' * 200, 'pool with spaces', 'ünï'):
            got = template.name(FP, pool)
            self.assertLessEqual(len(got), 63)
            self.assertRegex(got, r'^[a-z][a-z0-9-]*$')
            self.assertTrue(got.startswith(template.PREFIX))
        self.assertNotEqual(template.name(FP, 'a'), template.name(FP, 'b'))
        self.assertNotEqual(template.name(FP, 'a'),
                            template.name('b' * 64, 'a'))

    def test_no_instance_name_is_a_template(self):
        self.assertFalse(template.is_template({'name': 'instance-00000001'}))
        self.assertTrue(template.is_template(
            {'name': template.name(FP, 'quota')}))

    def test_only_the_default_id_map_is_eligible(self):
        self.assertTrue(template.eligible({'config': {
            'limits.memory': '128MiB', 'security.privileged': 'false',
            'security.idmap.isolated': 'false'}}))
        for config in ({'security.privileged': 'true'},
                       {'security.idmap.isolated': 'True'},
                       {'raw.idmap': 'both 1000 1000'},
                       {'security.idmap.size': '65536'},
                       {'security.idmap.base': '200000'}):
            self.assertFalse(template.eligible({'config': config}), config)

    def test_creation_body_runs_no_guest_program(self):
        body = template.creation_body(FP, 'quota')
        self.assertEqual({'raw.lxc': 'lxc.init.cmd = /bin/true',
                          'boot.autostart': 'false'}, body['config'])
        self.assertEqual([], body['profiles'])
        self.assertEqual({'type': 'image', 'fingerprint': FP},
                         body['source'])
        self.assertEqual('quota', body['devices']['root']['pool'])

    def test_copy_keeps_the_body_and_changes_only_the_source(self):
        body = {'name': 'i-1', 'config': {'limits.cpu': '1'},
                'devices': {'root': {'size': '1GiB'}},
                'source': {'type': 'image', 'fingerprint': FP}}
        got = template.copy_of(body, 'nova-template-x')
        self.assertEqual({'type': 'copy', 'source': 'nova-template-x',
                          'instance_only': True}, got['source'])
        self.assertEqual(dict(body, source=got['source']), got)
        self.assertEqual('image', body['source']['type'])  # not changed

    def test_ready_needs_stopped_shifted_and_clean(self):
        self.assertTrue(template.ready(shifted(), FP))
        self.assertFalse(template.ready(shifted(), 'b' * 64))
        self.assertFalse(template.ready(
            shifted(status=daemon_client.RUNNING), FP))
        # One the daemon would start again by itself (made before the
        # driver set boot.autostart on templates).
        self.assertFalse(template.ready(
            shifted(**{'boot.autostart': None}), FP))
        self.assertFalse(template.ready(
            shifted(**{'raw.lxc': template.SHIFT_LINE}), FP))
        self.assertFalse(template.ready(
            shifted(**{'volatile.last_state.idmap': '[]'}), FP))
        self.assertFalse(template.ready(
            shifted(**{'volatile.last_state.idmap': None}), FP))
        self.assertFalse(template.ready(
            shifted(**{'volatile.idmap.next': '[{"other": 1}]'}), FP))

    def test_for_pool(self):
        client = fakes.client()
        self.assertIsNone(template.for_pool(client, 'p', 'btrfs', False))
        self.assertIsNone(template.for_pool(client, 'p', 'dir', True))
        got = template.for_pool(client, 'p', 'zfs', True)
        self.assertEqual('p', got.pool)


class TemplatesTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.client = fakes.client()
        self.templates = template.Templates(self.client, 'quota')
        self.tmpl = template.name(FP, 'quota')

    def test_a_ready_template_is_used_as_it_is(self):
        self.client.find_instance.return_value = shifted()
        self.assertEqual(self.tmpl, self.templates.source_for(FP))
        self.client.create_instance.assert_not_called()
        self.client.delete_instance.assert_not_called()

    def test_made_shifted_then_the_shift_line_removed(self):
        self.client.find_instance.return_value = None
        self.client.get_state.side_effect = [
            {'status': daemon_client.RUNNING},
            {'status': daemon_client.STOPPED}]
        self.client.get_writable.return_value = {
            'config': {'raw.lxc': template.SHIFT_LINE, 'image.os': 'x'},
            'devices': {}, 'profiles': []}
        self.client.get_instance.return_value = shifted()
        self.assertEqual(self.tmpl, self.templates.source_for(FP))
        self.client.create_instance.assert_called_once_with(
            template.creation_body(FP, 'quota'))
        self.client.change_state.assert_called_once_with(self.tmpl, 'start')
        put = self.client.update_instance.call_args[0]
        self.assertEqual(self.tmpl, put[0])
        self.assertEqual({'image.os': 'x'}, put[1]['config'])

    def test_a_stale_template_is_made_again(self):
        self.client.find_instance.return_value = shifted(
            status=daemon_client.RUNNING)
        self.client.get_state.return_value = {
            'status': daemon_client.STOPPED}
        self.client.get_writable.return_value = {'config': {}}
        self.client.get_instance.return_value = shifted()
        self.assertEqual(self.tmpl, self.templates.source_for(FP))
        self.client.delete_instance.assert_called_once_with(self.tmpl)
        self.client.create_instance.assert_called_once()

    def test_a_failure_removes_what_was_made_and_gives_none(self):
        self.client.find_instance.return_value = None
        self.client.change_state.side_effect = RuntimeError('no /bin/true')
        self.assertIsNone(self.templates.source_for(FP))
        self.client.delete_instance.assert_called_once_with(self.tmpl)

    def test_an_unshifted_template_is_refused(self):
        self.client.find_instance.return_value = None
        self.client.get_state.return_value = {
            'status': daemon_client.STOPPED}
        self.client.get_writable.return_value = {'config': {}}
        self.client.get_instance.return_value = shifted(
            **{'volatile.last_state.idmap': '[]'})
        self.assertIsNone(self.templates.source_for(FP))
        self.client.delete_instance.assert_called_once_with(self.tmpl)

    def test_a_template_that_never_stops_is_given_up(self):
        self.client.find_instance.return_value = None
        self.client.get_state.return_value = {
            'status': daemon_client.RUNNING}
        # The stop wait's clock runs out at once.
        self.useFixture(fixtures.MonkeyPatch(
            'nova_syscontainer.virt.template.STOP_WAIT_SECONDS', -1))
        self.useFixture(fixtures.MonkeyPatch(
            'nova_syscontainer.virt.template.time.sleep', lambda s: None))
        self.assertIsNone(self.templates.source_for(FP))
        self.client.update_instance.assert_not_called()
        self.client.delete_instance.assert_called_once_with(self.tmpl)


class ImageCacheTest(testtools.TestCase):
    """remove_unused: templates do not keep an image, and go with it."""

    def store(self, *instances):
        """An ImageStore whose daemon holds one old image of ours."""
        self.client = fakes.client()
        image_id = '6a1e2c4e-0d1b-4a51-9a0e-2b4f0b4a8d11'
        self.client.list_images.return_value = [{
            'fingerprint': FP, 'uploaded_at': '2020-01-01T00:00:00Z',
            'aliases': [{'name': image.alias_for(image_id)}],
            'properties': {image.OWNER_PROPERTY: 'x'}}]
        self.client.list_instances.return_value = list(instances)
        return image.ImageStore(self.client), image_id

    def test_template_goes_with_its_unused_image(self):
        store, image_id = self.store(shifted())
        self.assertEqual([image_id], store.remove_unused([], 0))
        self.client.delete_instance.assert_called_once_with(
            template.name(FP, 'quota'))
        self.client.delete_image.assert_called_once_with(FP)

    def test_an_instance_keeps_the_image_and_its_template(self):
        store, _image_id = self.store(shifted(), {
            'name': 'instance-1', 'config': {'volatile.base_image': FP}})
        self.assertEqual([], store.remove_unused([], 0))
        self.client.delete_instance.assert_not_called()
        self.client.delete_image.assert_not_called()
