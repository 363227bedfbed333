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
"""Shim that lets Nova load this out-of-tree driver.

Nova imports ``compute_driver`` only as ``nova.virt.<value>``, so operators
set ``compute_driver = syscontainer.SysContainerDriver`` and this module
re-exports the real class from :mod:`nova_syscontainer.virt.driver`.
This file is the only one the package installs inside Nova's namespace.
"""

from nova_syscontainer.virt.driver import SysContainerDriver

__all__ = ['SysContainerDriver']
