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
"""Shifted image templates: a large guest created in a second.

Why (LXD 5.0.2, measured on kernel 6.18, doc/source/scale.rst): the daemon
reports ``idmapped_mounts`` yet shifts an unprivileged container's root
file system *on disk* at its first start ("Remapping container
filesystem"), rewriting the owner of every inode. On a copy-on-write pool
a container made from an image is a snapshot of the image's volume (under
a second) but its first start then walks the whole tree: 2.5-3 s for the
350 MB stock Debian guest. A *copy* of a container that has been shifted
already is a snapshot too, and LXD keeps the source's
``volatile.last_state.idmap`` on a copy, so the copy starts with no shift.

So, per image and pool, one stopped container, the *template*: made from
the image, started once with ``lxc.init.cmd = /bin/true`` so that the
daemon shifts its root while none of the guest's own programs runs (no
machine id, host keys or cloud-init state is made in it), then left
stopped with that line removed. Spawn copies it instead of unpacking the
image. The template carries no marker of any node or instance, so
list_instances and the orphan sweep never see it; the image cache removes
it with its image (image.py).

Used only when ``[syscontainer] image_templates`` is set and the pool is
copy-on-write (a copy on ``dir`` is a full copy, no faster), and only for
an instance with the node's default id map: a privileged container or one
with an isolated or raw id map is created from the image as before.

:func:`name`, :func:`eligible`, :func:`creation_body`, :func:`copy_of`
and :func:`ready` are pure; :class:`Templates` does the daemon calls,
through the client, under the caller's image lock.
"""

import hashlib
import time

from oslo_log import log as logging

from nova_syscontainer.virt import client as daemon_client

LOG = logging.getLogger(__name__)

#: Every template's name starts so; no instance name of the driver does
#: (container.name: instance_name_template).
PREFIX = 'nova-template-'
#: Pools on which a copy is a snapshot.
COPY_ON_WRITE_POOL_DRIVERS = frozenset(['btrfs', 'zfs'])
#: The template's only start: the daemon shifts the root, then this init
#: exits at once and the container stops.
SHIFT_LINE = 'lxc.init.cmd = /bin/true'
#: Config keys that give a container an id map other than the node's
#: default one (true values only, for the two booleans).
_OWN_ID_MAP_KEYS = ('security.privileged', 'security.idmap.isolated')
_OWN_ID_MAP_PREFIXES = ('raw.idmap', 'security.idmap.base',
                        'security.idmap.size')
#: A template starts only when the driver starts it, as every container
#: of the driver (container.create_body). Without it, LXD 5.0.2, which
#: leaves ``volatile.last_state.power`` RUNNING when a container's init
#: exits on its own (the shifting start), starts the template when the
#: daemon starts again: seen on 2026-12-08 after a daemon kill, when the
#: template booted its guest, which writes a machine id, host keys and
#: cloud-init state that every later copy would carry.
AUTOSTART_KEY = 'boot.autostart'
#: How long the shifting start may take before the template is given up.
STOP_WAIT_SECONDS = 120


def name(fingerprint, pool):
    """The template of image ``fingerprint`` on ``pool``.

    A valid container name (at most 63 characters, a letter first) for
    any pool name: the pool is hashed.
    """
    digest = hashlib.sha256(pool.encode('utf-8')).hexdigest()[:8]
    return '%s%s-%s' % (PREFIX, fingerprint[:12], digest)


def is_template(record):
    """Whether a daemon instance record is one of the driver's templates."""
    return record.get('name', '').startswith(PREFIX)


def eligible(body):
    """Whether a create body may be served by a copy of a template.

    Only a container with the node's default id map: the template's root
    is shifted to that map.
    """
    config = body.get('config') or {}
    if any(str(config.get(key, '')).lower() == 'true'
           for key in _OWN_ID_MAP_KEYS):
        return False
    return not any(key.startswith(_OWN_ID_MAP_PREFIXES) for key in config)


def creation_body(fingerprint, pool):
    """``POST /1.0/instances`` of a template: the image, only a root disk."""
    return {
        'name': name(fingerprint, pool),
        'type': 'container',
        'profiles': [],
        'config': {'raw.lxc': SHIFT_LINE, AUTOSTART_KEY: 'false'},
        'devices': {'root': {'type': 'disk', 'path': '/', 'pool': pool}},
        'description': 'nova-syscontainer template of image %s' % fingerprint,
        'source': {'type': 'image', 'fingerprint': fingerprint},
    }


def copy_of(body, template):
    """``body`` made a copy of ``template`` rather than an unpack.

    The daemon adds the template's remaining config and devices to the
    body's; the template has only a root disk (the body's wins) and its
    volatile keys, of which LXD keeps ``volatile.base_image`` and
    ``volatile.last_state.idmap`` on a copy.
    """
    return dict(body, source={'type': 'copy', 'source': template,
                              'instance_only': True})


def ready(record, fingerprint):
    """Whether a template's record is a usable one of ``fingerprint``.

    Stopped, never started by the daemon itself, of that image, the shift
    line removed, and shifted to the map it will start with (an empty last
    map: never started).
    """
    config = record.get('config') or {}
    last = config.get('volatile.last_state.idmap')
    return (record.get('status') == daemon_client.STOPPED and
            config.get(AUTOSTART_KEY) == 'false' and
            config.get('volatile.base_image') == fingerprint and
            'raw.lxc' not in config and
            last not in (None, '', '[]') and
            last == config.get('volatile.idmap.next'))


def for_pool(client, pool, pool_driver, enabled):
    """The node's :class:`Templates`, or None (read at init_host)."""
    if not enabled:
        return None
    if pool_driver not in COPY_ON_WRITE_POOL_DRIVERS:
        LOG.warning('[syscontainer] image_templates is set but pool %(pool)s '
                    'is %(driver)s, where a copy is no faster than an '
                    'unpack: containers are created from images',
                    {'pool': pool, 'driver': pool_driver})
        return None
    return Templates(client, pool)


class Templates(object):
    """The templates of one pool of one daemon."""

    def __init__(self, client, pool):
        self._client = client
        self.pool = pool

    def source_for(self, fingerprint):
        """The name of a ready template of the image, made if need be.

        Runs under the image's lock. Never raises: when a template cannot
        be had, it logs why, removes what it made and returns None, and
        the caller creates from the image as without templates.
        """
        tmpl = name(fingerprint, self.pool)
        try:
            record = self._client.find_instance(tmpl)
            if record is not None and ready(record, fingerprint):
                return tmpl
            if record is not None:
                LOG.warning('Template %s is not usable (status %s); '
                            'making it again', tmpl, record.get('status'))
                self._client.delete_instance(tmpl)
            return self._make(tmpl, fingerprint)
        except Exception as exc:
            LOG.warning('No template of image %(fp)s on pool %(pool)s, '
                        'creating from the image: %(err)s',
                        {'fp': fingerprint, 'pool': self.pool, 'err': exc})
            self._remove(tmpl)
            return None

    def _make(self, tmpl, fingerprint):
        started = time.monotonic()
        self._client.create_instance(creation_body(fingerprint, self.pool))
        self._client.change_state(tmpl, 'start')
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while True:
            state = self._client.get_state(tmpl) or {}
            if state.get('status') == daemon_client.STOPPED:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('the template did not stop within %d s '
                                   'of its shifting start' %
                                   STOP_WAIT_SECONDS)
            time.sleep(0.2)
        writable = self._client.get_writable(tmpl)
        config = {key: value for key, value in writable['config'].items()
                  if key != 'raw.lxc'}
        self._client.update_instance(tmpl, dict(writable, config=config))
        record = self._client.get_instance(tmpl)
        if not ready(record, fingerprint):
            raise RuntimeError('the daemon did not shift its root (last id '
                               'map %r)' % record.get('config', {}).get(
                                   'volatile.last_state.idmap'))
        LOG.info('Template %(name)s of image %(fp)s made in %(secs).1f s',
                 {'name': tmpl, 'fp': fingerprint,
                  'secs': time.monotonic() - started})
        return tmpl

    def _remove(self, tmpl):
        try:
            self._client.delete_instance(tmpl)
        except Exception as exc:
            LOG.warning('Could not remove template %(name)s: %(err)s',
                        {'name': tmpl, 'err': exc})
