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
"""Rescue and unrescue (``ComputeDriver.rescue`` and ``unrescue``).

A rescued server is two containers on its daemon:

* the **original**, ``<name>``: Nova stopped it before calling the driver;
  the driver never changes it (config, devices, files stay as they were);
* the **rescue container**, ``<name>-rescue``, created from the rescue
  image (Nova chooses it: the one the user named, else the instance's
  base or own image) with the original's profiles, flavor keys
  (``limits.*``, ``security.*``, ``raw.lxc``), root disk device (same
  pool, same size) and NIC devices (same MACs on the same host ports), and
  one more disk device, ``rescue-root``, which bind-mounts the original's
  root file system read-write at :data:`MOUNT_PATH` (``/mnt/rescue-root``).
  While it exists the original's NIC devices are parked on it (LXD 5.0.2
  starts no container whose NIC MAC another container's NIC has, stopped
  or not); unrescue gives them back unchanged.
  It carries the keys that mark the instance's containers (managed, host,
  instance UUID) and :data:`RESCUE_KEY` = the instance UUID; the driver's
  own listings leave it out (:func:`is_rescue`), and so must any sweep of
  orphans: it belongs to a live instance and goes with it.

The rescue password (Nova passes the user's, or one it generated) is set
with the rescue image's ``chpasswd`` (:mod:`guest`); an image without one
is rescued all the same, with a warning.

The original's root file system is reached by its path on the daemon's
host, ``<daemon_dir>/storage-pools/<pool>/containers/<volume>/rootfs``:
LXD's (>= 3.0) and Incus's layout. On ``dir`` and ``btrfs`` pools an
instance volume stays there while the instance is stopped; the ``zfs``,
``lvm`` and ``ceph`` drivers mount it only while the instance runs, so a
rescue there is refused before anything is made. The files keep their
owners: the rescue container gets the same id map as the original
(checked, not assumed: a container with an isolated id map is refused).

Unrescue deletes the rescue container and starts the original. A rescue
that fails removes the rescue container and starts the original again if
it ran before; Nova 34's manager then puts the server in ERROR
(``ComputeManager.rescue_instance`` does so on any driver error), from
which a hard reboot brings the untouched original back to ACTIVE.

The pure functions decide names, paths and the request body; :func:`start`,
:func:`finish` and :func:`remove` do the daemon I/O through
:class:`~nova_syscontainer.virt.client.DaemonClient` only.
"""

import json
import os

from nova.compute import vm_states
from nova.i18n import _
from oslo_log import log as logging
from oslo_utils import excutils

from nova_syscontainer import exception
from nova_syscontainer.virt import client as daemon_client
from nova_syscontainer.virt import container
from nova_syscontainer.virt import guest
from nova_syscontainer.virt import image as images
from nova_syscontainer.virt import vif as vif_mod

LOG = logging.getLogger(__name__)

SUFFIX = '-rescue'
#: Config key of a rescue container: the UUID of the instance it rescues.
RESCUE_KEY = 'user.nova_syscontainer.rescue_of'
#: Where the original root file system is inside the rescue container.
MOUNT_PATH = '/mnt/rescue-root'
ROOT_DEVICE = 'rescue-root'
#: Pool drivers whose instance volumes stay mounted while stopped.
PATH_POOL_DRIVERS = ('dir', 'btrfs')
#: Container names the daemon takes (a host name).
_NAME_MAX = 63


def rescue_name(name):
    """The rescue container of container ``name``."""
    return name[:_NAME_MAX - len(SUFFIX)].rstrip('-') + SUFFIX


def is_rescue(record):
    """Whether a daemon record is a rescue container."""
    return bool((record.get('config') or {}).get(RESCUE_KEY))


def rescues(record, instance_uuid):
    """Whether ``record`` is the rescue container of ``instance_uuid``."""
    return (record.get('config') or {}).get(RESCUE_KEY) == instance_uuid


def daemon_dir(option, endpoint, server_info):
    """The daemon's data directory (see the ``daemon_dir`` option).

    :param server_info: the daemon's ``GET /1.0`` document.
    """
    if option:
        return option
    if endpoint.startswith('/'):
        return os.path.dirname(endpoint)
    server = ((server_info or {}).get('environment') or {}).get('server')
    return '/var/lib/incus' if server == 'incus' else '/var/lib/lxd'


def volume_dir(project, name):
    """The directory of an instance's volume: the daemon's own naming."""
    return name if project == 'default' else '%s_%s' % (project, name)


def root_pool(record):
    """The storage pool of the container's root disk."""
    devices = dict(record.get('expanded_devices') or {},
                   **(record.get('devices') or {}))
    for device in devices.values():
        if device.get('type') == 'disk' and device.get('path') == '/':
            return device.get('pool')
    return None


def root_source(base_dir, pool, project, name):
    """The host path of container ``name``'s root file system."""
    return os.path.join(base_dir, 'storage-pools', pool, 'containers',
                        volume_dir(project, name), 'rootfs')


def check_rescuable(instance, record, pool_driver):
    """Refuse (RescueRefused) what this module cannot rescue."""
    def refuse(reason):
        raise exception.RescueRefused(instance_id=instance.uuid,
                                      reason=reason)

    config = record.get('config') or {}
    if is_rescue(record):
        refuse(_('%s is itself a rescue container') % record['name'])
    if config.get('security.idmap.isolated', '').lower() == 'true':
        refuse(_('the container has an isolated id map; a rescue container '
                 'would see its files owned by nobody'))
    if pool_driver not in PATH_POOL_DRIVERS:
        refuse(_('its root disk is on a %(driver)s pool, whose volumes are '
                 'mounted only while their instance runs; rescue works on '
                 '%(ok)s pools') % {'driver': pool_driver,
                                    'ok': ' and '.join(PATH_POOL_DRIVERS)})


def create_body(original, instance, image_id, fingerprint, source):
    """``POST /1.0/instances`` body of the (stopped) rescue container."""
    config = {key: value for key, value in original['config'].items()
              if key.startswith(container.FLAVOR_CONFIG_PREFIXES) or
              key in (container.MANAGED_KEY, container.UUID_KEY,
                      container.HOST_KEY, container.FLAVOR_KEY)}
    config.update({container.IMAGE_KEY: image_id or '',
                   RESCUE_KEY: instance.uuid,
                   'boot.autostart': 'false'})
    devices = dict(original.get('devices') or {})
    devices[ROOT_DEVICE] = {'type': 'disk', 'source': source,
                            'path': MOUNT_PATH}
    return {
        'name': rescue_name(original['name']),
        'type': 'container',
        'profiles': list(original.get('profiles') or []),
        'config': config,
        'devices': devices,
        'description': 'Rescue of Nova instance %s' % instance.uuid,
        'source': {'type': 'image', 'fingerprint': fingerprint},
    }


def nic_devices(devices):
    """The devices among ``devices`` that are our ports' NICs."""
    return {name: device for name, device in (devices or {}).items()
            if vif_mod.port_of_device(name) and device.get('type') == 'nic'}


def _idmap(config, key):
    try:
        return json.loads(config.get(key) or '[]')
    except ValueError:
        return None


def same_idmap(original, rescue):
    """Whether the rescue container maps ids as the original's files are.

    The original's files are shifted to ``volatile.last_state.idmap``; the
    rescue container will run with its ``volatile.idmap.next``.
    """
    on_disk = _idmap(original.get('config') or {},
                     'volatile.last_state.idmap')
    return on_disk is not None and on_disk == _idmap(
        rescue.get('config') or {}, 'volatile.idmap.next')


# ----------------------------------------------------------------------
# Daemon I/O
# ----------------------------------------------------------------------
def start(client, image_store, context, instance, original, image_meta,
          password, base_dir):
    """Rescue ``instance`` (``ComputeDriver.rescue``); see the module doc.

    ``original`` is the daemon record of the instance's (stopped)
    container. On failure the rescue container is removed, the original
    started again if the instance was ACTIVE, and the error raised.
    """
    name = original['name']
    pool = root_pool(original)
    if not pool:
        raise exception.RescueRefused(instance_id=instance.uuid,
                                      reason=_('it has no root disk'))
    check_rescuable(instance, original, client.pool(pool).get('driver'))
    source = root_source(base_dir, pool, client.project, name)
    rescue = rescue_name(name)
    try:
        remove(client, instance, name)
        image_id = (image_meta.id if image_meta.obj_attr_is_set('id')
                    else None) or instance.image_ref
        with images.image_lock(image_id):
            fingerprint, _new = image_store.ensure(context, image_id,
                                                   instance.trusted_certs)
            client.create_instance(create_body(original, instance, image_id,
                                               fingerprint, source))
        if not same_idmap(original, client.get_instance(rescue)):
            raise exception.RescueRefused(
                instance_id=instance.uuid,
                reason=_('the rescue container would not map user ids as '
                         'the original\'s files are'))
        _park_nics(client, name)
        client.change_state(rescue, 'start')
        _set_password(client, rescue, instance, image_meta, password)
    except Exception:
        with excutils.save_and_reraise_exception():
            LOG.warning('Rescue failed; removing %(rescue)s, the original '
                        '%(name)s is unchanged', {'rescue': rescue,
                                                  'name': name},
                        instance=instance)
            _roll_back(client, instance, name)
    LOG.info('Rescued: %(rescue)s runs with %(name)s\'s root file system '
             'at %(path)s', {'rescue': rescue, 'name': name,
                             'path': MOUNT_PATH}, instance=instance)


def _set_password(client, rescue, instance, image_meta, password):
    if not password:
        return
    props = image_meta.properties
    user = guest.admin_user(
        {'os_admin_user': props.os_admin_user}
        if props.obj_attr_is_set('os_admin_user') else {})
    try:
        guest.set_password(client, rescue, instance, user, password)
    except exception.GuestPasswordNotSupported as e:
        LOG.warning('The rescue password was not set: %s', e,
                    instance=instance)


def _park_nics(client, name):
    """Take the NICs off the (stopped) original while it is rescued.

    LXD 5.0.2 refuses to start a container with a NIC whose MAC another
    container's NIC on the same parent has, even a stopped one ("MAC
    address ... already defined on another NIC", measured): the rescue
    container holds them (exact copies) until unrescue gives them back.
    """
    writable = client.get_writable(name)
    if nic_devices(writable['devices']):
        client.update_instance(name, dict(writable, devices={
            key: value for key, value in writable['devices'].items()
            if key not in nic_devices(writable['devices'])}))


def _give_back_nics(client, name, devices):
    """Put the rescue container's NIC devices back on the original."""
    writable = client.get_writable(name)
    missing = {key: value for key, value in nic_devices(devices).items()
               if key not in writable['devices']}
    if missing:
        client.update_instance(name, dict(writable, devices=dict(
            writable['devices'], **missing)))


def _roll_back(client, instance, name):
    """Remove the rescue container; restart an original that ran. Quiet."""
    try:
        rec = record(client, instance, name)
        remove(client, instance, name, strict=False)
        if rec:
            _give_back_nics(client, name, rec.get('devices'))
    except Exception as e:
        LOG.warning('The rescue container was not removed, or the '
                    'original\'s NICs not given back: %s', e,
                    instance=instance)
    if instance.vm_state != vm_states.ACTIVE:
        return
    try:
        if client.get_instance(name).get('status') != daemon_client.RUNNING:
            client.change_state(name, 'start')
    except Exception:
        LOG.exception('Could not start the original container %s again '
                      'after the failed rescue', name, instance=instance)


def record(client, instance, name):
    """The daemon record of the instance's rescue container, or None."""
    rec = client.find_instance(rescue_name(name))
    return rec if rec and rescues(rec, instance.uuid) else None


def remove(client, instance, name, strict=True):
    """Stop and delete the instance's rescue container, if there is one.

    A container of that name that is not this instance's rescue container
    is never touched; with ``strict`` it raises RescueRefused (a rescue
    cannot make its container), else it is only logged.
    """
    rescue = rescue_name(name)
    rec = client.find_instance(rescue)
    if rec is None:
        return False
    if not rescues(rec, instance.uuid):
        if not strict:
            LOG.warning('Container %s is not this instance\'s rescue '
                        'container; kept', rescue, instance=instance)
            return False
        raise exception.RescueRefused(
            instance_id=instance.uuid,
            reason=_('a container %s exists that is not its rescue '
                     'container') % rescue)
    if rec.get('status') in (daemon_client.RUNNING, daemon_client.FROZEN):
        client.change_state(rescue, 'stop', force=True)
    client.delete_instance(rescue)
    return True


def finish(client, instance, original):
    """Unrescue (``ComputeDriver.unrescue``): back to the original.

    The rescue container is deleted, then the original started; its
    config, devices and files are those it had before the rescue (plus
    what was changed through the rescue container's mount).
    """
    name = original['name']
    rec = record(client, instance, name)
    remove(client, instance, name)
    if rec:
        _give_back_nics(client, name, rec.get('devices'))
    if original.get('status') != daemon_client.RUNNING:
        client.change_state(name, 'start')
    LOG.info('Unrescued: %s runs again', name, instance=instance)
