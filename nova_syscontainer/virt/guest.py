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
"""Changing a guest's password with the guest's own ``chpasswd``.

A container has no guest agent: the daemon's exec API runs ``chpasswd``
inside it, as root, with ``user:password`` on its stdin (never in argv,
the request or a log). chpasswd exits when its input ends, so nothing is
left running in the container (a process left there would block a CRIU
checkpoint). Only the daemon call is in :mod:`client`; the rest is the
choice of user, the input and the mapping of outcomes to Nova's faults.
"""

from nova import exception as nova_exception
from nova.i18n import _

from nova_syscontainer import exception

CHPASSWD = ('chpasswd',)
#: Characters chpasswd's line format ("user:password\n") cannot carry.
_LINE_BREAKS = ('\n', '\r')


def admin_user(image_properties):
    """The user whose password changes: the image's os_admin_user, or root.

    Nova's convention (its libvirt driver does the same).
    """
    return image_properties.get('os_admin_user') or 'root'


def chpasswd_input(user, password):
    """chpasswd's stdin for one user; refuses what would break its format.

    A line break in the password would end the line early (and could set
    another user's password); a ':' or line break in the user name would
    name another user. Either raises GuestPasswordNotSupported.
    """
    if any(c in password for c in _LINE_BREAKS):
        raise exception.GuestPasswordNotSupported(
            reason=_('chpasswd cannot take a password holding a line '
                     'break'))
    if not user or ':' in user or any(c in user for c in _LINE_BREAKS):
        raise exception.GuestPasswordNotSupported(
            reason=_('%r is not a user name chpasswd can take') % user)
    return ('%s:%s\n' % (user, password)).encode('utf-8')


def set_password(client, name, instance, user, password):
    """Run chpasswd in container ``name``; Nova's faults on failure.

    :raises GuestPasswordNotSupported: the guest has no chpasswd (Nova
        keeps the server ACTIVE and answers 409 with the message).
    :raises InstancePasswordSetFailed: chpasswd refused (its own message,
        with the password removed should it echo it).
    """
    stdin = chpasswd_input(user, password)
    try:
        code, _out, err = client.execute(name, CHPASSWD, stdin)
    except exception.GuestCommandNotFound:
        raise exception.GuestPasswordNotSupported(
            reason=_('the guest has no chpasswd command'))
    if code != 0:
        detail = (err or '').replace(password, '***').strip()
        raise nova_exception.InstancePasswordSetFailed(
            instance=instance.uuid,
            reason=_('chpasswd in the guest exited with %(code)d: '
                     '%(detail)s') % {'code': code, 'detail': detail})
