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
"""Host files the functional, smoke and benchmark tests share.

Standard library only: the smoke environment has neither Nova nor pylxd.
tests/unit/test_shared_constants.py keeps these equal to what the shell
scripts that make the files use.
"""

import os

#: The busybox test image tools/setup-host.sh builds (an LXD unified
#: tarball); tools/lib/syscontainer-image.sh names it too.
TEST_IMAGE = os.environ.get(
    'SYSCONTAINER_TEST_IMAGE',
    '/var/cache/nova-syscontainer/images/busybox-counter.tar.gz')

#: The host lock every functional test of the LXD daemons holds for its
#: whole run (see tests/functional/daemon.py); the smoke test takes it too,
#: since the cloud's nova-compute works on the same daemon.
LXD_LOCK = '/run/lock/nova-syscontainer-functional.lock'
#: The lock of this run: the Incus runs, which use daemons of their own,
#: may take another (SYSCONTAINER_TEST_LOCK).
LOCK = os.environ.get('SYSCONTAINER_TEST_LOCK', LXD_LOCK)
