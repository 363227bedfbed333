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
"""Values the shell scripts must spell as the Python code does.

The Python side holds each value once; a shell script cannot import it,
so these tests read what the script would use and compare.
"""

import os
import subprocess

import testtools

from nova_syscontainer import conf as sc_conf
from nova_syscontainer.virt import checkpoint_check
from tests import paths

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SETUP_HOST = os.path.join(REPO, 'tools', 'setup-host.sh')
IMAGE_LIB = os.path.join(REPO, 'tools', 'lib', 'syscontainer-image.sh')


def _setup_host_values(*names):
    """The values of ``readonly NAME=...`` lines of tools/setup-host.sh.

    Only those assignment lines are evaluated (in order, so that one may
    use another), never the script itself.
    """
    with open(SETUP_HOST) as f:
        # Single-line scalar assignments only: an array opened on one line
        # and closed on later ones is not one of these constants.
        lines = [line for line in f if line.startswith('readonly ') and
                 line.count('(') == line.count(')')]
    script = ''.join(lines) + ''.join(
        'printf "%%s\\0" "$%s"\n' % name for name in names)
    out = subprocess.run(['bash', '-c', script], capture_output=True,
                         text=True, check=True, env={'PATH': os.defpath})
    return out.stdout.split('\0')[:len(names)]


class SharedConstantsTest(testtools.TestCase):

    def test_checkpoint_raw_lxc_of_the_host_self_check(self):
        # setup-host.sh --verify proves a stateful stop/start with the
        # lines the driver writes by default ([syscontainer]
        # checkpoint_raw_lxc, the one definition) on a host without
        # AppArmor, as this one: the empty profile line is added there.
        opt = {o.name: o for o in sc_conf.ALL_OPTS}['checkpoint_raw_lxc']
        raw_lxc, = _setup_host_values('RAW_LXC_CR')
        self.assertEqual('\n'.join(checkpoint_check.required_raw_lxc(
            opt.default, apparmor=False)), raw_lxc,
                         'tools/setup-host.sh RAW_LXC_CR differs from the '
                         'default of [syscontainer] checkpoint_raw_lxc')

    def test_test_image_path(self):
        if 'SYSCONTAINER_TEST_IMAGE' in os.environ:
            self.skipTest('SYSCONTAINER_TEST_IMAGE overrides the path')
        built, = _setup_host_values('IMAGE')
        self.assertEqual(built, paths.TEST_IMAGE)
        out = subprocess.run(
            ['bash', '-c', '. "$0"; printf %s "$SYSCONTAINER_TEST_IMAGE_FILE"',
             IMAGE_LIB], capture_output=True, text=True, check=True)
        self.assertEqual(built, out.stdout)
