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
"""The snapshot sequence's decisions and its clean-up on every failure."""

import types
import unittest
from unittest import mock

from nova.compute import task_states
from nova import exception as nova_exception

from nova_syscontainer import exception
from nova_syscontainer.virt import image
from nova_syscontainer.virt import snapshot
from tests.unit import fakes

IMAGE = '0d5a1c3e-5b0e-4f7a-9c2d-2b7e4c1f0a99'
INSTANCE = types.SimpleNamespace(uuid='inst-uuid', project_id='proj',
                                 os_type=None)


class DecisionsTest(unittest.TestCase):

    def test_formats_are_those_the_driver_boots(self):
        meta = snapshot.glance_metadata(INSTANCE)
        self.assertIn((meta['container_format'], meta['disk_format']),
                      image.ACCEPTED_FORMATS)
        self.assertEqual('snapshot', meta['properties']['image_location'])
        self.assertEqual('proj', meta['properties']['owner_id'])

    def test_publish_body_names_snapshot_and_glance_image(self):
        body = snapshot.publish_body('c1', IMAGE, 'inst-uuid')
        self.assertEqual({'type': 'snapshot',
                          'name': 'c1/nova-snapshot-' + IMAGE},
                         body['source'])
        self.assertEqual(IMAGE,
                         body['properties'][snapshot.SNAPSHOT_PROPERTY])

    def test_split_export_recognised(self):
        self.assertTrue(snapshot.is_split_export(
            'multipart/form-data; boundary=x'))
        self.assertFalse(snapshot.is_split_export('application/octet-stream'))

    def test_leftovers_never_include_images_imported_from_glance(self):
        recs = [
            {'fingerprint': 'pub',
             'properties': {snapshot.SNAPSHOT_PROPERTY: IMAGE}},
            {'fingerprint': 'imported',
             'properties': {snapshot.SNAPSHOT_PROPERTY: IMAGE,
                            image.OWNER_PROPERTY: IMAGE}},
            {'fingerprint': 'other',
             'properties': {snapshot.SNAPSHOT_PROPERTY: 'x'}},
            {'fingerprint': 'plain', 'properties': None},
        ]
        self.assertEqual(['pub'], snapshot.leftovers(recs, IMAGE))


class TakeTest(unittest.TestCase):

    def setUp(self):
        self.client = fakes.client()
        self.client.publish_image.return_value = 'fp'
        self.client.list_images.return_value = []
        self.stream = mock.Mock(content_type='application/octet-stream',
                                size=10)
        self.client.export_image.return_value = self.stream
        self.glance = mock.Mock()
        self.states = mock.Mock()

    def take(self):
        snapshot.take(self.client, 'ctx', INSTANCE, 'c1', IMAGE, self.states,
                      image_api=self.glance)

    def test_success_reports_states_uploads_stream_and_cleans(self):
        self.take()
        self.assertEqual([
            mock.call(task_state=task_states.IMAGE_PENDING_UPLOAD),
            mock.call(task_state=task_states.IMAGE_UPLOADING,
                      expected_state=task_states.IMAGE_PENDING_UPLOAD)],
            self.states.call_args_list)
        self.client.create_snapshot.assert_called_once_with(
            'c1', 'nova-snapshot-' + IMAGE)
        self.glance.update.assert_called_once_with(
            'ctx', IMAGE, snapshot.glance_metadata(INSTANCE),
            data=self.stream, purge_props=False)
        self.stream.close.assert_called_once_with()
        self.client.delete_image.assert_called_once_with('fp')
        self.client.delete_snapshot.assert_called_with(
            'c1', 'nova-snapshot-' + IMAGE)

    def test_failed_upload_removes_snapshot_and_image_and_reraises(self):
        self.glance.update.side_effect = nova_exception.ImageNotFound(
            image_id=IMAGE)
        with self.assertRaises(nova_exception.ImageNotFound):
            self.take()
        self.client.delete_image.assert_called_once_with('fp')
        self.client.delete_snapshot.assert_called_with(
            'c1', 'nova-snapshot-' + IMAGE)
        self.stream.close.assert_called_once_with()

    def test_failed_publish_removes_image_found_by_property(self):
        self.client.publish_image.side_effect = exception.DaemonTimeout(
            endpoint='e', action='publish', timeout=1)
        self.client.list_images.return_value = [
            {'fingerprint': 'late',
             'properties': {snapshot.SNAPSHOT_PROPERTY: IMAGE}}]
        with self.assertRaises(exception.DaemonTimeout):
            self.take()
        self.client.delete_image.assert_called_once_with('late')
        self.client.delete_snapshot.assert_called_once_with(
            'c1', 'nova-snapshot-' + IMAGE)
        self.glance.update.assert_not_called()

    def test_split_export_refused_and_cleaned(self):
        self.stream.content_type = 'multipart/form-data; boundary=b'
        with self.assertRaises(exception.SnapshotFailed):
            self.take()
        self.glance.update.assert_not_called()
        self.client.delete_image.assert_called_once_with('fp')

    def test_clean_up_error_does_not_hide_the_failure(self):
        self.glance.update.side_effect = ValueError('upload broke')
        self.client.delete_image.side_effect = exception.DaemonUnavailable(
            endpoint='e', reason='gone')
        with self.assertRaises(ValueError):
            self.take()
