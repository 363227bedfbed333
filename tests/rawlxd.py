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
"""Plain pylxd access to the daemon, for tests and benchmarks only.

The driver never uses this: it is how the tests look at the daemon behind
the driver's back, and how the benchmark builds its raw baseline. It
imports nothing from Nova, so that importing it changes no concurrency
mode.
"""

import hashlib
import os
import time
import urllib.parse

import pylxd
from pylxd import exceptions as lxd_exceptions

OP_TIMEOUT = 120


def connect(endpoint, project='default'):
    """A pylxd client on a unix socket, blind to proxy/CA variables."""
    if not os.path.exists(endpoint):
        raise RuntimeError('No daemon socket at %s: run tools/setup-host.sh '
                           'first (as root)' % endpoint)
    session = pylxd.client.get_session_for_url(pylxd.client.DEFAULT_SCHEME)
    session.trust_env = False
    return pylxd.Client(endpoint=endpoint, session=session,
                        project=project, timeout=60)


def wait_operation(lxd, response):
    """Wait (bounded) for the operation a response started, if any."""
    body = response.json()
    if body.get('type') != 'async':
        return body.get('metadata')
    op_id = body['metadata']['id']
    deadline = time.monotonic() + OP_TIMEOUT
    while True:
        op = lxd.api.operations[op_id].wait.get(
            params={'timeout': 30}, timeout=60).json()['metadata']
        if op['status'] not in ('Pending', 'Running'):
            break
        if time.monotonic() > deadline:
            raise RuntimeError('daemon operation %s timed out' %
                               op.get('description'))
    if op['status'] != 'Success':
        raise RuntimeError('daemon operation %s failed: %s' % (
            op.get('description'), op.get('err') or op['status']))
    return op


def remove(lxd, name):
    """Stop (by force) and delete one container; absent is fine."""
    for attempt in range(10):
        try:
            rec = lxd.api.instances[name].get().json()['metadata']
            if rec['status'] in ('Running', 'Frozen'):
                wait_operation(lxd, lxd.api.instances[name].state.put(
                    json={'action': 'stop', 'force': True}))
            wait_operation(lxd, lxd.api.instances[name].delete())
            return
        except lxd_exceptions.NotFound:
            return
        except (lxd_exceptions.LXDAPIException, RuntimeError):
            if attempt == 9:
                raise
            time.sleep(1)


def _touches_prefix(op, prefix):
    urls = []
    for key in ('instances', 'containers'):
        urls.extend((op.get('resources') or {}).get(key) or [])
    return any(urllib.parse.urlparse(url).path.rsplit('/', 1)[-1]
               .startswith(prefix) for url in urls)


def sweep(lxd, prefix):
    """Remove every container whose name starts with prefix; their names.

    Operations still running on such containers (a create interrupted by a
    killed run) are waited for first, so that none appears after the sweep.
    """
    ops = lxd.api.operations.get(
        params={'recursion': 1}).json()['metadata'] or {}
    for op in ops.get('running') or []:
        if _touches_prefix(op, prefix):
            try:
                lxd.api.operations[op['id']].wait.get(
                    params={'timeout': OP_TIMEOUT}, timeout=OP_TIMEOUT + 30)
            except lxd_exceptions.LXDAPIException:
                pass
    removed = []
    for rec in lxd.api.instances.get(
            params={'recursion': 1}).json()['metadata'] or []:
        if rec['name'].startswith(prefix):
            remove(lxd, rec['name'])
            removed.append(rec['name'])
    return removed


def names(lxd):
    """Names of all instances of the client's project."""
    return [rec['name'] for rec in lxd.api.instances.get(
        params={'recursion': 1}).json()['metadata'] or []]


def import_image(lxd, path):
    """The daemon's fingerprint of an image file, imported if new.

    :returns: (fingerprint, True when this call imported it).
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b''):
            digest.update(chunk)
    fingerprint = digest.hexdigest()
    try:
        lxd.api.images[fingerprint].get()
        return fingerprint, False
    except lxd_exceptions.NotFound:
        pass
    with open(path, 'rb') as f:
        op = wait_operation(lxd, lxd.api.images.post(data=f, headers={
            'Content-Type': 'application/octet-stream',
            'X-LXD-public': '0'}))
    if op['metadata']['fingerprint'] != fingerprint:
        raise RuntimeError('the daemon imported %s as %s, not %s' % (
            path, op['metadata']['fingerprint'], fingerprint))
    return fingerprint, True
