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
"""A Nova config drive as files in a container's root filesystem.

Pure, but for :func:`plan_for`, which runs Nova's own metadata code (it
reads the instance's security groups through Nova's network API).

Nova's libvirt driver writes the tree of
``nova.api.metadata.base.InstanceMetadata.metadata_for_config_drive()`` to
an ISO 9660 (or vfat) disk labelled ``config-2``. A container has no block
devices (and the hosts this driver runs on need not have ISO 9660), so the
same tree is written into the stopped container's root filesystem, before
its first start, where cloud-init's ConfigDrive datasource reads a config
drive it was seeded with::

    /var/lib/cloud/seed/config_drive/openstack/<version>/meta_data.json
    /var/lib/cloud/seed/config_drive/openstack/latest/user_data
    /var/lib/cloud/seed/config_drive/openstack/latest/network_data.json
    ...

(cloud-init 22.4: ``DataSourceConfigDrive`` reads ``<seed_dir>/config_drive``
first; ``ds-identify`` finds it by ``openstack/2???-??-??/meta_data.json``.)

Being part of the root filesystem, the tree travels with the container in
cold and live migrations and needs no cleanup on the host.

On LXD, cloud-init would otherwise pick DataSourceLXD (``/dev/lxd/sock``,
``security.devlxd``), which knows nothing of Nova's metadata. A drop-in
``datasource_list: [ ConfigDrive, None ]`` makes the config drive win; it is
written only into containers that get a config drive, and /dev/lxd stays
(``security.*`` keys belong to the flavor and a resize rewrites them).
"""

import posixpath

from nova.api.metadata import base as instance_metadata
from nova.i18n import _
from nova.virt import configdrive

from nova_syscontainer import exception

SEED_DIR = '/var/lib/cloud/seed/config_drive'
DATASOURCE_CFG_PATH = ('/etc/cloud/cloud.cfg.d/'
                       '95-nova-syscontainer-config-drive.cfg')
DATASOURCE_CFG = (
    b'# Written by nova-syscontainer: this instance has a Nova config drive\n'
    b'# in ' + SEED_DIR.encode() + b' and that, not /dev/lxd, is\n'
    b'# where its metadata comes from.\n'
    b'datasource_list: [ ConfigDrive, None ]\n')

#: Without a config drive, cloud-init reads Nova's metadata API
#: (169.254.169.254) through its OpenStack datasource, found through PID 1's
#: environment (container.PRODUCT_NAME); this drop-in makes it win over
#: DataSourceLXD too (ds-identify takes a one-entry list as it is).
METADATA_SERVICE_CFG_PATH = ('/etc/cloud/cloud.cfg.d/'
                             '95-nova-syscontainer-metadata-service.cfg')
METADATA_SERVICE_CFG = (
    b'# Written by nova-syscontainer: this instance has no config drive;\n'
    b"# its metadata comes from Nova's metadata API, not /dev/lxd.\n"
    b'datasource_list: [ OpenStack, None ]\n')

#: The tree holds user data and possibly an admin password: root only, as
#: cloud-init (root) is its only reader.
DIR_MODE = 0o700
#: Parents such as /var/lib/cloud, if the image lacks them.
OTHER_DIR_MODE = 0o755
FILE_MODE = 0o600
CFG_MODE = 0o644


class File(object):
    """One file to write: absolute path in the container, bytes, mode."""

    def __init__(self, path, content, mode):
        self.path = path
        self.content = content
        self.mode = mode

    def __repr__(self):
        return 'File(%r, %d bytes, %o)' % (self.path, len(self.content),
                                           self.mode)


class Plan(object):
    """What to write into a container: directories (parents first), files.

    ``directories`` are (path, mode) pairs. Those that already exist in the
    image are left as they are; the writer creates only the missing ones.
    """

    def __init__(self, directories, files):
        self.directories = directories
        self.files = files


def required(instance):
    """Whether the instance gets a config drive.

    Nova's own rule (``nova.virt.configdrive.required_by``), as the libvirt
    and Ironic drivers use it: ``config_drive=True`` on boot,
    ``[DEFAULT] force_config_drive``, or the image property
    ``img_config_drive=mandatory``.
    """
    return configdrive.required_by(instance)


def mark(instance):
    """Record on the instance that it has a config drive.

    ``nova.virt.configdrive.update_instance``, as the libvirt driver calls
    it: the API then shows ``config_drive`` for an instance that got one
    through ``force_config_drive`` or the image property.
    """
    configdrive.update_instance(instance)


def _checked(instance_uuid, relpath):
    if isinstance(relpath, bytes):
        relpath = relpath.decode('utf-8')
    norm = posixpath.normpath(relpath)
    if (not relpath or relpath.startswith('/') or norm.startswith('..') or
            norm in ('.', '') or '\0' in relpath):
        raise exception.ConfigDriveRefused(
            instance_uuid=instance_uuid,
            reason=_('the metadata path %r is not inside the config '
                     'drive') % relpath)
    return norm


def plan(instance_uuid, metadata_items):
    """The :class:`Plan` for Nova's config drive tree.

    :param metadata_items: (relative path, bytes or str) pairs, as
        ``InstanceMetadata.metadata_for_config_drive()`` yields them.
    :raises ConfigDriveRefused: on a path leaving the tree.
    """
    directories = []
    seen = set()
    files = []

    def add_dir(path):
        if path in seen or path == '/':
            return
        add_dir(posixpath.dirname(path))
        seen.add(path)
        inside = path == SEED_DIR or path.startswith(SEED_DIR + '/')
        directories.append((path, DIR_MODE if inside else OTHER_DIR_MODE))

    for relpath, content in metadata_items:
        path = posixpath.join(SEED_DIR, _checked(instance_uuid, relpath))
        if isinstance(content, str):
            content = content.encode('utf-8')
        add_dir(posixpath.dirname(path))
        files.append(File(path, content, FILE_MODE))
    if not files:
        raise exception.ConfigDriveRefused(
            instance_uuid=instance_uuid,
            reason=_("Nova's metadata for the config drive is empty"))
    add_dir(posixpath.dirname(DATASOURCE_CFG_PATH))
    files.append(File(DATASOURCE_CFG_PATH, DATASOURCE_CFG, CFG_MODE))
    return Plan(directories, files)


def plan_for(instance, network_info, injected_files=None,
             admin_password=None):
    """The :func:`plan` of Nova's config drive tree for ``instance``.

    Nova's metadata built as the libvirt driver builds it for its config
    drive (``InstanceMetadata(...).metadata_for_config_drive()``), with the
    admin password when one is given.
    """
    extra_md = {'admin_pass': admin_password} if admin_password else {}
    inst_md = instance_metadata.InstanceMetadata(
        instance, content=injected_files, extra_md=extra_md,
        network_info=network_info)
    return plan(instance.uuid, inst_md.metadata_for_config_drive())


def metadata_service_plan():
    """The :class:`Plan` of an instance without a config drive.

    Only the datasource drop-in, and only into an image that has cloud-init
    (``/etc/cloud/cloud.cfg.d``; other images get nothing): its OpenStack
    datasource then reads keys, user data and network_data.json from
    Nova's metadata API, which ``ComputeDriver.spawn`` leaves to the
    deployment (Neutron's metadata proxy, Nova's metadata API).
    """
    directory = posixpath.dirname(METADATA_SERVICE_CFG_PATH)
    return Plan([(directory, None)], [File(METADATA_SERVICE_CFG_PATH,
                                           METADATA_SERVICE_CFG, CFG_MODE)])
