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
"""Stock guest launch per storage pool: create and start, and how.

What is measured (issue 17, part 3)
    The stock Debian 12 guest of tools/build-stock-image.sh (about 350 MB
    unpacked) imported once into the daemon, then ``BENCH_POOLS_REPEAT``
    (default 3) containers created and started from it on each pool of
    ``BENCH_POOLS`` (default ``default,quota``: setup-host's ``dir`` and
    ``btrfs`` pools): the create and the start timed apart, the first
    container of a pool apart from the next (a copy-on-write pool unpacks
    the image once, into an image volume every later container
    snapshots). For each container: whether its root file system was
    shifted on disk (host owner of its rootfs is the container's mapped
    root, e.g. 1000000) or left as in the image (owner 0: the daemon mounts
    it idmapped), and the memory its cgroup uses after the start.

    Raw daemon calls only: the driver adds nothing to either (see the
    spawn benchmark); the pool is its ``[syscontainer] storage_pool``.

This is a benchmark: it prints figures and never fails on them.
"""

import os
import statistics
import subprocess
import sys
import time

import fixtures
from pylxd import exceptions as lxd_exceptions
import testtools

from tests.functional import daemon
from tests import rawlxd

POOLS = os.environ.get('BENCH_POOLS', 'default,quota').split(',')
REPEAT = int(os.environ.get('BENCH_POOLS_REPEAT', '3'))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def say(text=''):
    sys.__stdout__.write(text + '\n')
    sys.__stdout__.flush()


def stock_image_path():
    return subprocess.run(
        [os.path.join(REPO, 'tools', 'build-stock-image.sh'), '--print-path'],
        capture_output=True, text=True, check=True).stdout.strip()


class PoolBench(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.path = stock_image_path()
        if not os.path.exists(self.path):
            self.skipTest('no stock image at %s (tools/build-stock-image.sh)'
                          % self.path)
        self.daemon = self.useFixture(daemon.DaemonFixture())
        self.lxd = self.daemon.lxd
        self.useFixture(fixtures.Timeout(1800, gentle=True))

    def drop_image(self, fingerprint):
        try:
            rawlxd.wait_operation(self.lxd,
                                  self.lxd.api.images[fingerprint].delete())
        except lxd_exceptions.NotFound:
            pass

    def rootfs_owner(self, pool, name):
        """The host uid owning the container's root directory, or None.

        The pools of the first daemon are mounted (btrfs) or kept (dir)
        under its storage-pools directory.
        """
        try:
            return os.stat(os.path.join(
                '/var/lib/lxd/storage-pools', pool, 'containers', name,
                'rootfs')).st_uid
        except OSError:
            return None

    def launch(self, pool, name, fingerprint=None, template=None):
        """Create (from the image, or as a copy of ``template``) and start."""
        source = ({'type': 'copy', 'source': template} if template else
                  {'type': 'image', 'fingerprint': fingerprint})
        start = time.monotonic()
        rawlxd.wait_operation(self.lxd, self.lxd.api.instances.post(json={
            'name': name, 'type': 'container', 'profiles': ['default'],
            'devices': {'root': {'type': 'disk', 'path': '/',
                                 'pool': pool}},
            'source': source}))
        created = time.monotonic()
        rawlxd.wait_operation(self.lxd, self.lxd.api.instances[name].state.put(
            json={'action': 'start', 'force': False}))
        started = time.monotonic()
        return created - start, started - created

    def test_pool_bench(self):
        start = time.monotonic()
        fingerprint, imported = rawlxd.import_image(self.lxd, self.path)
        self.addCleanup(self.drop_image, fingerprint)
        if not imported:
            # Imported by someone else; time a fresh import of our own.
            self.drop_image(fingerprint)
            start = time.monotonic()
            fingerprint, imported = rawlxd.import_image(self.lxd, self.path)
        say('')
        say('stock guest launch per pool: %s (%.0f MB), import %.1f s' % (
            os.path.basename(self.path), os.path.getsize(self.path) / 1e6,
            time.monotonic() - start))
        for pool in POOLS:
            rec = self.lxd.api.storage_pools[pool].get().json()['metadata']
            firsts, creates, starts = [], [], []
            for i in range(REPEAT):
                name = '%spool-%s-%d' % (daemon.NAME_PREFIX, pool, i)
                c, s = self.launch(pool, name, fingerprint)
                (firsts if i == 0 else creates).append(c)
                starts.append(s)
                state = self.lxd.api.instances[name].state.get().json()[
                    'metadata']
                owner = self.rootfs_owner(pool, name)
                say('  %-8s (%s) #%d: create %.2f s, start %.2f s, rootfs '
                    'owner on the host %s (%s), memory %s' % (
                        pool, rec['driver'], i, c, s, owner,
                        'idmapped, not shifted' if owner == 0 else
                        'shifted on disk' if owner else 'not visible',
                        '%.0f MiB' % (state['memory']['usage'] / 2.0 ** 20)
                        if state.get('memory') else '?'))
            # A shifted image cache: a stopped container started once (so
            # shifted), copied; the copy carries its volatile.last_state.idmap.
            template = '%spool-%s-0' % (daemon.NAME_PREFIX, pool)
            rawlxd.wait_operation(self.lxd, self.lxd.api.instances[
                template].state.put(json={'action': 'stop', 'force': True}))
            copies = []
            for i in range(REPEAT):
                name = '%spool-%s-copy%d' % (daemon.NAME_PREFIX, pool, i)
                c, s = self.launch(pool, name, template=template)
                copies.append(c + s)
                say('  %-8s (%s) copy of a shifted container #%d: create %.2f'
                    ' s, start %.2f s, rootfs owner %s' % (
                        pool, rec['driver'], i, c, s,
                        self.rootfs_owner(pool, name)))
                rawlxd.remove(self.lxd, name)
            say('  %-8s copy of a shifted container: create+start median '
                '%.2f s' % (pool, statistics.median(copies)))
            delete_start = time.monotonic()
            for i in range(REPEAT):
                rawlxd.remove(self.lxd, '%spool-%s-%d' % (
                    daemon.NAME_PREFIX, pool, i))
            say('  %-8s first create %.2f s, next creates median %s, starts '
                'median %.2f s; create+start of a next one %s; delete %.1f s '
                'each' % (
                    pool, firsts[0],
                    '%.2f s' % statistics.median(creates) if creates else '-',
                    statistics.median(starts),
                    '%.2f s' % (statistics.median(creates) +
                                statistics.median(starts[1:]))
                    if creates else '-',
                    (time.monotonic() - delete_start) / REPEAT))
