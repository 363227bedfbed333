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
"""Typed errors of nova-syscontainer.

All of them are Nova exceptions, so that Nova records their message as the
instance fault an operator sees in ``openstack server show``.
"""

from nova import exception
from nova.i18n import _


class DaemonUnavailable(exception.HypervisorUnavailable):
    msg_fmt = _('The container daemon at %(endpoint)s cannot be reached: '
                '%(reason)s')


class DaemonError(exception.NovaException):
    msg_fmt = _('The container daemon at %(endpoint)s failed to %(action)s: '
                '%(reason)s')


class DaemonOperationFailed(DaemonError):
    """A background operation of the daemon ended in failure."""


class DaemonTimeout(DaemonError):
    msg_fmt = _('The container daemon at %(endpoint)s did not %(action)s '
                'within %(timeout)s seconds')


class DaemonIncompatible(exception.NovaException):
    msg_fmt = _('The container daemon at %(endpoint)s cannot be used: '
                '%(reason)s')


class UnsupportedImage(exception.ImageUnacceptable):
    """An image that cannot become a container root filesystem."""


class InstanceBuildRefused(exception.InvalidInput):
    """A request this driver refuses before creating anything.

    A subclass of InvalidInput, so that Nova aborts the build with this
    message as the fault instead of rescheduling it.
    """
    msg_fmt = _('Instance %(instance_uuid)s cannot be built here: %(reason)s')


class MigrationFailed(exception.NovaException):
    """Moving a container to another daemon failed.

    Raised after the move was rolled back as far as it could be: the
    message says what state the source was left in and what, if anything,
    could not be cleaned up.
    """
    msg_fmt = _('Moving container %(name)s to %(target)s failed: '
                '%(reason)s')


class MigrationTargetUnsuitable(MigrationFailed,
                                exception.MigrationPreCheckError):
    """A move refused before anything was sent to either daemon.

    Also a MigrationPreCheckError, so that Nova's conductor tries another
    destination host instead of failing the live migration outright.
    """
    msg_fmt = _('Container %(name)s cannot be moved to %(target)s: '
                '%(reason)s')


class VifPlugFailed(exception.VirtualInterfacePlugException):
    """Creating or removing a port's host interfaces failed."""
    msg_fmt = _('Plugging a network port on the host failed (%(command)s): '
                '%(reason)s')


class GuestCommandNotFound(exception.NovaException):
    """The guest has no such command (the daemon's exec found none)."""
    msg_fmt = _('The guest has no %(command)s command')


class GuestPasswordNotSupported(exception.SetAdminPasswdNotSupported):
    """The guest cannot change passwords the way the driver does it.

    A SetAdminPasswdNotSupported: Nova's compute manager then clears the
    task state and keeps the server ACTIVE, and the API answers 409 with
    this message.
    """
    msg_fmt = _('Set admin password is not supported by this guest: '
                '%(reason)s')


class SnapshotFailed(exception.NovaException):
    """A snapshot could not be made; nothing was left in the daemon."""
    msg_fmt = _('Snapshot %(image_id)s failed: %(reason)s')


class ConfigDriveRefused(InstanceBuildRefused):
    """Nova's config drive metadata cannot be written into the container."""
    msg_fmt = _('The config drive of instance %(instance_uuid)s cannot be '
                'written: %(reason)s')


class CheckpointRefused(exception.NovaException):
    """A CRIU checkpoint refused before the daemon was asked for one.

    The container is untouched and still running.
    """
    msg_fmt = _('Container %(name)s cannot be checkpointed: %(reason)s')


class ConsoleBusy(DaemonError):
    """The daemon refused to attach a console another client holds."""


class RescueRefused(exception.InstanceNotRescuable):
    """A rescue refused, or rolled back; the original container is intact.

    Its message names what keeps the instance from being rescued here.
    """


class HostileImage(UnsupportedImage):
    """An image tarball holding something unsafe to unpack on the host."""
    msg_fmt = _('Image %(image_id)s is refused as unsafe: %(reason)s')


class ImageScanLimit(UnsupportedImage):
    """An image whose safety scan would cost more than its bounds allow."""
    msg_fmt = _('Image %(image_id)s is refused: its %(what)s exceeds the '
                'limit of %(limit)s (see the [syscontainer] image_max_* '
                'options)')


class ImageTooLarge(UnsupportedImage):
    """An image larger unpacked than the flavor's root disk."""
    msg_fmt = _('Image %(image_id)s unpacks to at least %(size)d bytes, '
                'more than the flavor\'s root disk of %(root_gb)d GiB')


class UnverifiedImage(UnsupportedImage):
    """An image Glance gives no hash for, refused by the operator's option."""
    msg_fmt = _('Image %(image_id)s has no hash in Glance, so its data '
                'cannot be verified ([syscontainer] image_require_hash)')


class ImageDownloadTimeout(exception.ImageUnacceptable):
    """A Glance download that stalled or took too long; it was abandoned.

    An ImageUnacceptable, so that Nova aborts the build with this message
    as the fault (the spool file is gone and the image lock released).
    """
    msg_fmt = _('Image %(image_id)s could not be downloaded from Glance: '
                '%(reason)s')
