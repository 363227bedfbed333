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
"""Snapshot benchmark: Nova's createImage against a raw daemon snapshot.

What is measured
    A running busybox server holding ``BENCH_SNAPSHOT_MIB`` (default 300)
    MiB of random bytes on its root file system (written from the host
    through /proc/<init>/root and given to the container's root, so no exec
    session is left; random, so the daemon's gzip cannot shrink it: the
    worst case), snapshotted two ways:

    * nova: ``createImage`` through Nova's in-process API until the
      server has no task, read from Nova's database every 0.1 s (an API
      request every 0.1 s, in this one process, would compete with
      nova-compute's upload for the interpreter: one more sample is taken
      that way and printed, not counted). This includes the upload into
      the test Glance (tests/functional/glance_store.py), which writes the
      image to a file and computes md5 and sha512 as Glance would; its
      time waiting on reads and its own work are printed apart.
    * raw: the least a client does with plain pylxd: POST a stateless
      snapshot, publish it (``POST /1.0/images``, source snapshot), stream
      the export into a file, delete image and snapshot.

    nova-compute's memory: the test process (API, conductor, scheduler and
    compute in one) has its peak RSS reset (``5 > /proc/self/clear_refs``)
    before each Nova snapshot; VmHWM after it, against VmRSS before it, is
    what the snapshot cost in memory. Samples are interleaved.

    This is a benchmark: it prints figures and never fails on them.

Run::

    /opt/tox/bin/tox -e bench-snapshot
"""

import contextlib
import os
import re
import statistics
import sys
import time

import fixtures
from nova import objects

from tests.functional import base
from tests.functional import glance_store
from tests import rawlxd

MIB = int(os.environ.get('BENCH_SNAPSHOT_MIB', '300'))
REPEAT = int(os.environ.get('BENCH_SNAPSHOT_REPEAT', '2'))


def say(text=''):
    sys.__stdout__.write(text + '\n')
    sys.__stdout__.flush()


def status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


class SnapshotBench(base.SysContainerTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.store = self.useFixture(glance_store.UploadStore(
            self.glance, self.tmp))

    def ballast(self, name):
        root = '/proc/%d/root' % self.daemon.init_pid(name)
        path = root + '/var/bench-ballast'
        with open(path, 'wb') as f:
            for _i in range(MIB):
                f.write(os.urandom(1024 * 1024))
        # Owned by the container's root: LXD 5.0.2 leaves files whose
        # owner is outside the container's id map out of a published image.
        owner = os.stat(root)
        os.chown(path, owner.st_uid, owner.st_gid)

    def task_state(self, server, poll):
        if poll == 'api':
            return self.api.get_server(server['id'])['OS-EXT-STS:task_state']
        return objects.Instance.get_by_uuid(self.ctxt,
                                            server['id']).task_state

    def nova_snapshot(self, server, poll='db'):
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        rss_before = status_kib('VmRSS')
        start = time.monotonic()
        image_id = self.api.post_server_action(
            server['id'], {'createImage': {'name': 'bench'}})['image_id']
        deadline = start + 600
        while True:
            if self.task_state(server, poll) is None:
                break
            if time.monotonic() > deadline:
                self.fail('snapshot did not end within 600 s')
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        peak = status_kib('VmHWM')
        self.assertEqual('active',
                         self.glance.show(self.ctxt, image_id)['status'])
        size = os.path.getsize(self.store.path(image_id))
        os.unlink(self.store.path(image_id))
        return (elapsed, rss_before, peak, size,
                self.driver_phases(image_id) + (self.store.read_seconds,
                                                self.store.store_seconds))

    def driver_phases(self, image_id):
        """(snapshot+publish, export+upload) seconds the driver logged."""
        found = re.search(r'Snapshot %s: \d+ bytes uploaded; snapshot and '
                          r'publish ([\d.]+) s, export and upload ([\d.]+) s'
                          % image_id, self.stdlog.logger.output)
        return (float(found.group(1)), float(found.group(2))) if found \
            else (float('nan'), float('nan'))

    def raw_snapshot(self, lxd, name, i):
        snap = 'bench-raw-%d' % i
        marks = [time.monotonic()]
        rawlxd.wait_operation(lxd, lxd.api.instances[name].snapshots.post(
            json={'name': snap, 'stateful': False}))
        marks.append(time.monotonic())
        op = rawlxd.wait_operation(lxd, lxd.api.images.post(json={
            'source': {'type': 'snapshot', 'name': '%s/%s' % (name, snap)}}))
        marks.append(time.monotonic())
        fp = op['metadata']['fingerprint']
        path = os.path.join(self.tmp, 'raw-export')
        with contextlib.closing(lxd.api.images[fp].export.get(
                stream=True, is_api=False)) as response, \
                open(path, 'wb') as f:
            for chunk in response.iter_content(64 * 1024):
                f.write(chunk)
        marks.append(time.monotonic())
        rawlxd.wait_operation(lxd, lxd.api.images[fp].delete())
        rawlxd.wait_operation(
            lxd, lxd.api.instances[name].snapshots[snap].delete())
        marks.append(time.monotonic())
        size = os.path.getsize(path)
        os.unlink(path)
        phases = [b - a for a, b in zip(marks, marks[1:])]
        return marks[-1] - marks[0], size, phases

    def test_snapshot_bench(self):
        server = self.boot()
        name = self.container_name(server)
        self.ballast(name)
        lxd = self.daemon.lxd
        nova, raw, growth, peaks = [], [], [], []
        for i in range(REPEAT):
            elapsed, before, peak, size, (pub, up, read, store) = \
                self.nova_snapshot(server)
            nova.append(elapsed)
            growth.append((peak - before) / 1024.0)
            peaks.append(peak / 1024.0)
            say('nova sample %d: %.2f s (driver: snapshot+publish %.2f s, '
                'export+upload %.2f s, of which Glance waited %.2f s on '
                'reads and spent %.2f s writing and hashing; the rest is '
                'Nova), image %.1f MiB, RSS %.0f MiB before, peak %.0f MiB'
                % (i, elapsed, pub, up, read, store, size / 2.0 ** 20,
                   before / 1024.0, peak / 1024.0))
            elapsed, size, phases = self.raw_snapshot(lxd, name, i)
            raw.append(elapsed)
            say('raw sample %d: %.2f s (snapshot %.2f, publish %.2f, '
                'export %.2f, delete %.2f s), image %.1f MiB' % (
                    (i, elapsed) + tuple(phases) + (size / 2.0 ** 20,)))
        elapsed, _before, _peak, _size, (pub, up, read, store) = \
            self.nova_snapshot(server, poll='api')
        say('nova sample polled through the API every 0.1 s (not counted): '
            '%.2f s (snapshot+publish %.2f s, export+upload %.2f s, Glance '
            'waited %.2f s on reads, spent %.2f s writing and hashing)' % (
                elapsed, pub, up, read, store))
        n, r = statistics.median(nova), statistics.median(raw)
        say('')
        say('snapshot of a running container with %d MiB of random bytes '
            '(%d samples each)' % (MIB, REPEAT))
        say('  nova createImage: median %.2f s' % n)
        say('  raw snapshot+publish+export+delete: median %.2f s' % r)
        say('  ratio nova/raw: %.2f' % (n / r))
        say('  process peak RSS during the snapshot: max %.0f MiB, at most '
            '%.0f MiB above its RSS before' % (max(peaks), max(growth)))
