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
"""tools/build-stock-image.sh: its recipe, as its callers rely on it.

The build itself (debootstrap, minutes, root) is exercised by the
functional and smoke tests that boot the image; these read the script's
recipe and run its --print-path, which needs neither root nor a build.
"""

import os
import re
import subprocess

import testtools

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'tools', 'build-stock-image.sh')

#: What Tempest's scenario tests run in the guest over SSH
#: (tools/cloud.sh tempest --validation): curl of the metadata API in
#: test_server_basic_ops, ping and "sudo ..." in its remote client.
TEMPEST_GUEST_PACKAGES = {'curl', 'iputils-ping', 'sudo'}
#: What the image is for at all: cloud-init configures it, sshd lets the
#: tenant in, systemd-networkd (udev) brings its NIC up.
GUEST_PACKAGES = {'systemd', 'udev', 'cloud-init', 'openssh-server'}


def readonly(name):
    with open(SCRIPT) as f:
        match = re.search(r'^readonly %s=(\S+)$' % name, f.read(), re.M)
    return match.group(1) if match else None


class StockImageRecipeTest(testtools.TestCase):

    def test_packages_for_the_guest_and_for_tempest(self):
        packages = set(readonly('PACKAGES').split(','))
        self.assertEqual(set(), GUEST_PACKAGES - packages)
        self.assertEqual(set(), TEMPEST_GUEST_PACKAGES - packages)

    def test_the_cached_tarball_is_named_after_its_recipe(self):
        """Two recipes on one host never rebuild over each other."""
        recipe = readonly('RECIPE_VERSION')
        self.assertTrue(recipe and recipe.isdigit(), recipe)
        out = subprocess.run([SCRIPT, '--print-path'], check=True,
                             capture_output=True, text=True).stdout
        self.assertEqual(
            '/var/cache/nova-syscontainer/images/debian-12-stock-r%s.tar.gz'
            % recipe, out.strip().splitlines()[-1])
