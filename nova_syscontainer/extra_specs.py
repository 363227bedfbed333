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
"""Validators of the ``syscontainer:`` flavor extra specs for Nova's API.

This module fulfils Nova's ``nova.api.extra_spec_validators`` entry-point
contract (``nova.api.validation.extra_specs.validators.load_validators``):
a module with a ``register()`` function that returns a list of
:class:`nova.api.validation.extra_specs.base.ExtraSpecValidator`. setup.cfg
registers it under the name ``syscontainer``.

Once registered, Nova's API (microversion 2.86 and later) refuses, with
HTTP 400, a flavor extra spec ``syscontainer:<key>`` whose value is not
valid, and any unknown key in the ``syscontainer`` namespace, instead of
letting every build of that flavor fail on a compute node later.

The validators are generated from
:data:`nova_syscontainer.virt.flavor_limits.NAMESPACE_KEYS`, the same table
the driver translates from, so the API and the driver cannot disagree on
which keys exist or on their bounds. Only what a single value can tell is
checked here: rules that depend on the flavor as a whole (swap for
``memory_swap_priority``) or on a compute node's configuration
(``allow_privileged``, ``allow_nesting``) stay with the driver.
"""

import re

from nova.api.validation.extra_specs import base

from nova_syscontainer.virt import flavor_limits

_CALL = '(?:%s)' % '|'.join(
    re.escape(call) for call in flavor_limits.INTERCEPTABLE)
#: One or more interceptable syscalls, comma-separated, blanks allowed
#: around each name (``setxattr``, ``mknod,setxattr``, ``mknod, setxattr``).
INTERCEPT_PATTERN = r'\s*%(c)s\s*(?:,\s*%(c)s\s*)*' % {'c': _CALL}
#: The value pattern of each str key (the unit tests check none lacks one).
STR_PATTERNS = {'intercept': INTERCEPT_PATTERN}


def _value(key):
    """The ``value`` schema of an ExtraSpecValidator for one key."""
    value = {'type': key.kind, 'description': key.description}
    if key.kind is int:
        if key.minimum is not None:
            value['min'] = key.minimum
        if key.maximum is not None:
            value['max'] = key.maximum
    elif key.kind is str and key.name in STR_PATTERNS:
        value['pattern'] = STR_PATTERNS[key.name]
    return value


def register():
    """The validators of every ``syscontainer:`` key (Nova's contract)."""
    return [
        base.ExtraSpecValidator(
            name=flavor_limits.PREFIX + key.name,
            description=key.description,
            value=_value(key),
        )
        for key in flavor_limits.NAMESPACE_KEYS.values()
    ]
