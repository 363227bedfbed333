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
"""One plan per operation, computed once before any I/O. Pure.

An operation that needs the flavor's limits or the ports' host plans
builds one :class:`Plan` first -- the limits (:func:`flavor_limits.translate`,
once), the host plan of every port (:func:`vif.plan`, once each) and, for
a spawn, the create body -- and hands it to the code that does the I/O
(:mod:`nics` plugs its ports, the client sends its body), which computes
none of it again. Building the plan is also where what the driver cannot
do is refused (``LimitError``, ``InstanceBuildRefused``): before anything
exists on the host or the daemon.

Only the image is left out of the create body: its fingerprint is known
once the image is in the daemon (:func:`create_body` adds it).
"""

import copy
import dataclasses

from nova_syscontainer.virt import container
from nova_syscontainer.virt import flavor_limits
from nova_syscontainer.virt import vif as vif_mod


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one operation gives an instance, computed once."""
    limits: flavor_limits.Limits
    #: ``(vif, vif.HostPlan)`` of every port, in network_info's order.
    nics: tuple = ()
    #: A spawn's create body without its image source, else None.
    body: dict = None


def nic_plans(instance, network_info, nic_limits):
    """``(vif, HostPlan)`` of every port; refuses all on one bad port."""
    return tuple((vif, vif_mod.plan(vif, nic_limits, instance.uuid))
                 for vif in network_info or [])


def build(instance, network_info, limits):
    """The plan of an operation on an existing container.

    :param limits: the :class:`flavor_limits.Limits` the operation gives
        the instance (translated once, by the caller).
    :raises InstanceBuildRefused: for a port this driver cannot plug.
    """
    return Plan(limits=limits,
                nics=nic_plans(instance, network_info, limits.nic))


def for_spawn(instance, network_info, limits, nodename, profiles,
              raw_lxc=(), checkpoint_config=None):
    """The plan of a spawn: :func:`build`'s, and the create body.

    The body is :func:`container.create_body`'s with a NIC device per
    port (:func:`vif.nic_devices_of`, from the same host plans).
    """
    plan = build(instance, network_info, limits)
    body = container.create_body(instance, nodename, None, limits, profiles,
                                 raw_lxc=raw_lxc,
                                 checkpoint_config=checkpoint_config)
    body['devices'].update(vif_mod.nic_devices_of(
        plan.nics, limits.nic, existing=body['devices']))
    return dataclasses.replace(plan, body=body)


def create_body(plan, fingerprint):
    """The spawn's ``POST /1.0/instances`` body for image ``fingerprint``.

    A copy: the plan itself is never changed.
    """
    body = copy.deepcopy(plan.body)
    body['source'] = {'type': 'image', 'fingerprint': fingerprint}
    return body
