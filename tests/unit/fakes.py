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
"""The unit tests' one stand-in for the client layer.

Every fake is ``mock.create_autospec`` of the real
:class:`nova_syscontainer.virt.client.DaemonClient` (with its mixins):
a call with arguments the real method would refuse raises TypeError, and
a method the client does not have raises AttributeError, so a fake cannot
drift from the real signatures. Functional tests never use this module:
they run the real daemon.
"""

from unittest import mock

from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import container

ENDPOINT = '/var/lib/lxd/unix.socket'


def client(endpoint=ENDPOINT, project='default', api_timeout=30,
           operation_timeout=120):
    """A bare autospec of DaemonClient; set return values as needed.

    The plain attributes ``__init__`` sets (endpoint, project, timeouts)
    are set too: an autospec of the class cannot know them.
    """
    fake = mock.create_autospec(daemon_client.DaemonClient, instance=True)
    fake.endpoint = endpoint
    fake.project = project
    fake.api_timeout = api_timeout
    fake.operation_timeout = operation_timeout
    return fake


def daemon(endpoint=ENDPOINT, instances=None, profiles=None,
           pools=('default',), fingerprint='f0'):
    """An autospec of DaemonClient whose instance calls act on dicts.

    State, read at call time so a test may change it: ``instances``
    (name -> record), ``profiles`` (name -> record), ``pools`` (names),
    ``fingerprint`` (of the daemon's certificate). ``calls`` lists what
    changed, in order: ``(action, name)`` for change_state,
    ``('delete', name)``, ``('cancel', op_id)``, ``('wait', op_id)``.
    A state change sets the record's status as the daemon would.
    Methods without a side effect here are plain autospecced mocks.
    """
    fake = client(endpoint)
    fake.instances = {} if instances is None else instances
    fake.profiles = profiles if profiles is not None else {
        'default': {'devices': {'root': {'type': 'disk', 'path': '/',
                                         'pool': 'default'}}}}
    fake.pools = pools
    fake.fingerprint = fingerprint
    fake.calls = []

    def absent(name, not_found):
        return not_found or exception.DaemonError(
            endpoint=fake.endpoint, action='read instance %s' % name,
            reason='not found')

    def get_instance(name, not_found=None):
        if name not in fake.instances:
            raise absent(name, not_found)
        return fake.instances[name]

    def get_state(name, not_found=None):
        rec = get_instance(name, not_found)
        return {'status': rec.get('status'), 'pid': rec.get('pid', 0)}

    def change_state(name, action, timeout=None, force=False,
                     stateful=False, not_found=None):
        rec = get_instance(name, not_found)
        fake.calls.append((action, name))
        rec['status'] = _STATUS_AFTER.get(action, rec.get('status'))
        if action == 'stop':
            rec['stateful'] = stateful
        elif action == 'start':
            rec['stateful'] = False

    def delete_instance(name, retry_busy=True):
        fake.calls.append(('delete', name))
        fake.instances.pop(name, None)

    def cancel_operation(op_id):
        fake.calls.append(('cancel', op_id))
        return True

    def wait_operation(action, op_id, timeout=None, not_found=None):
        fake.calls.append(('wait', op_id))
        return {}

    fake.server_info.side_effect = lambda: {'environment': {
        'certificate': 'PEM-' + fake.endpoint,
        'certificate_fingerprint': fake.fingerprint,
        'architectures': ['x86_64']}}
    fake.get_profile.side_effect = lambda name: fake.profiles.get(name)
    fake.pool_exists.side_effect = lambda name: name in fake.pools
    fake.list_instances.side_effect = lambda: list(fake.instances.values())
    fake.find_instance.side_effect = lambda name: fake.instances.get(name)
    fake.instance_exists.side_effect = lambda name: name in fake.instances
    fake.get_instance.side_effect = get_instance
    fake.get_state.side_effect = get_state
    fake.change_state.side_effect = change_state
    fake.delete_instance.side_effect = delete_instance
    fake.cancel_operation.side_effect = cancel_operation
    fake.wait_operation.side_effect = wait_operation
    fake.get_operation.return_value = None
    fake.console_log.return_value = b''
    return fake


_STATUS_AFTER = {
    'start': daemon_client.RUNNING,
    'restart': daemon_client.RUNNING,
    'unfreeze': daemon_client.RUNNING,
    'stop': daemon_client.STOPPED,
    'freeze': daemon_client.FROZEN,
}


def record(name='instance-00000001', uuid='11111111-2222-3333-4444-'
           '555555555555', host='host1', status=daemon_client.RUNNING,
           config=None, **fields):
    """A daemon record of a container this driver made for ``host``."""
    cfg = {container.MANAGED_KEY: 'true', container.UUID_KEY: uuid,
           container.HOST_KEY: host}
    cfg.update(config or {})
    rec = {'name': name, 'status': status, 'stateful': False,
           'config': cfg, 'expanded_config': dict(cfg), 'devices': {},
           'expanded_devices': {}, 'profiles': ['default']}
    rec.update(fields)
    return rec
