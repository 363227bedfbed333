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
"""The kernel's cgroup files of a process, for the tests' limit checks.

The functional tests (through their daemon fixture) and the smoke test
(with only the standard library) read the limits a container's init
really runs under here; nothing here asks the daemon.
"""

import os


def cgroup_dir(pid, controller):
    """Host path of ``pid``'s cgroup for a v1 controller (or "unified")."""
    with open('/proc/%d/cgroup' % pid) as f:
        for line in f:
            _hid, controllers, path = line.rstrip('\n').split(':', 2)
            if controller in controllers.split(','):
                return '/sys/fs/cgroup/%s%s' % (controllers, path)
            if controllers == '' and controller == 'unified':
                return '/sys/fs/cgroup/unified%s' % path
    raise AssertionError('no %s cgroup for pid %d' % (controller, pid))


def cgroup_value(pid, controller, filename):
    """The stripped content of one file of ``pid``'s cgroup."""
    with open(os.path.join(cgroup_dir(pid, controller), filename)) as f:
        return f.read().strip()
