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
"""Scale and density benchmark: N idle servers through Nova, N raw ones.

What is measured (issue 17, parts 1, 2 and 4)
    * Density: idle busybox servers booted through Nova's API (in-process
      API, conductor, scheduler, Placement and one nova-compute running this
      driver on the real daemon), ``BENCH_SCALE_BATCH`` at a time, until
      ``BENCH_SCALE_COUNT`` (default 200) are ACTIVE: per batch the time of
      each boot from its POST to ACTIVE with no task (p50, p95, max), read
      from Nova's database every 0.2 s. Host memory per idle container from
      the kernel's figures: MemAvailable before and after (divided by N),
      each container's cgroup ``memory.usage_in_bytes`` and ``total_rss``
      (v1) and its ``[lxc monitor]`` process; the daemon's RSS and this
      process's (API, conductor, scheduler and nova-compute in one, so an
      upper bound of nova-compute's) before and after.
    * Periodic cost at N: Nova's own ``update_available_resource`` and
      ``_sync_power_states`` (run to its last per-instance sync), and the
      driver's list_instances, list_instance_uuids and get_info for every
      instance (fresh and cached): wall time and the REST requests the
      client layer sent (``DaemonClient.requests_sent``).
    * The same N as raw daemon containers (same config and devices as
      Nova's, created and started ``BENCH_SCALE_BATCH`` at a time by
      ``BENCH_SCALE_BUILDS`` threads, Nova's max_concurrent_builds): the
      same figures.
    * Deletion of all, then what is left: containers, images, veths,
      bridges and qdiscs against the counts before.
    * Concurrency: the image cache emptied, ``BENCH_SCALE_CONCURRENT``
      (default 20) servers posted at once: all ACTIVE?, images imported,
      time to the last ACTIVE, against as many raw concurrent create+start
      from a fresh import.

Placement must admit N servers of 1 vCPU / 64 MiB on this 2-core host:
cpu_allocation_ratio is set to 128 (256 VCPU), ram 1.0 (N x 64 MiB), no
disk (root_gb 0); the instance, core and RAM quotas are unlimited.

This is a benchmark: it prints figures and never fails on them (it fails
only when it cannot run). ``tox -e scale`` runs it at 200;
``tox -e bench-short`` at 20 (as .ci/run does).
"""

import concurrent.futures
import glob
import io
import os
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.parse

import fixtures
from nova.compute import provider_tree
from nova import context as nova_context
from nova import objects
from oslo_utils import units
from pylxd import exceptions as lxd_exceptions

from tests.functional import base
from tests.functional import daemon
from tests import rawlxd

COUNT = int(os.environ.get('BENCH_SCALE_COUNT', '200'))
BATCH = int(os.environ.get('BENCH_SCALE_BATCH', '20'))
BUILDS = int(os.environ.get('BENCH_SCALE_BUILDS', '10'))
CONCURRENT = int(os.environ.get('BENCH_SCALE_CONCURRENT', '20'))
#: Seconds the idle containers are given before their memory is read.
SETTLE = float(os.environ.get('BENCH_SCALE_SETTLE', '5'))
BOOT_TIMEOUT = 900
RAW = daemon.NAME_PREFIX + 'raw-%04d'
HOST = 'scalebench'


def say(text=''):
    sys.__stdout__.write(text + '\n')
    sys.__stdout__.flush()


def pct(samples, q):
    ordered = sorted(samples)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(samples):
    if not samples:
        return 'none'
    return 'p50 %.2f s, p95 %.2f s, max %.2f s (n=%d)' % (
        pct(samples, 0.5), pct(samples, 0.95), max(samples), len(samples))


def meminfo_kib(field):
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def daemon_pid():
    try:
        with open('/var/log/nova-syscontainer/lxd.pid') as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pss_kib(pid):
    """Proportional set size: shared pages divided among their users."""
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def monitors_kib(prefix):
    """Total PSS of the [lxc monitor] processes of containers ``prefix*``.

    PSS, not RSS: each monitor is a fork of the daemon, whose pages it
    shares with the daemon and every other monitor.
    """
    total = count = 0
    for path in glob.glob('/proc/[0-9]*/cmdline'):
        try:
            with open(path, 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if cmd.startswith('[lxc monitor]') and (' ' + prefix) in cmd:
            kib = pss_kib(int(path.split('/')[2]))
            if kib:
                total += kib
                count += 1
    return total, count


def cgroup_memory(prefix):
    """(usage_in_bytes, total_rss) lists of the containers ``prefix*``.

    cgroup v1 (this host); a v2 host gives memory.current and anon.
    """
    usage, rss = [], []
    v1 = glob.glob('/sys/fs/cgroup/memory/lxc.payload.%s*' % prefix)
    for path in v1:
        try:
            with open(os.path.join(path, 'memory.usage_in_bytes')) as f:
                usage.append(int(f.read()))
            with open(os.path.join(path, 'memory.stat')) as f:
                stat = dict(line.split() for line in f)
            rss.append(int(stat['total_rss']))
        except (OSError, KeyError, ValueError):
            pass
    if not v1:
        for path in glob.glob('/sys/fs/cgroup/lxc.payload.%s*' % prefix):
            try:
                with open(os.path.join(path, 'memory.current')) as f:
                    usage.append(int(f.read()))
                with open(os.path.join(path, 'memory.stat')) as f:
                    stat = dict(line.split() for line in f)
                rss.append(int(stat['anon']))
            except (OSError, KeyError, ValueError):
                pass
    return usage, rss


def host_counts():
    """Veths, bridges (by name) and qdiscs on the host (leftovers check)."""
    def lines(*cmd):
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line.strip()]

    def names(kind):
        return {line.split(':')[1].strip().split('@')[0] for line in lines(
            'ip', '-o', 'link', 'show', 'type', kind)}

    return {'veths': names('veth'), 'bridges': names('bridge'),
            'qdiscs': len(lines('tc', 'qdisc', 'show'))}


def fresh_image(data):
    """The test image with one more file: a fingerprint no daemon holds."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as src, \
            tarfile.open(fileobj=out, mode='w:gz') as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member)
                        if member.isfile() else None)
        stamp = ('%d %f\n' % (os.getpid(), time.time())).encode()
        info = tarfile.TarInfo('rootfs/etc/nsc-scale-bench')
        info.size = len(stamp)
        info.mtime = int(time.time())
        dst.addfile(info, io.BytesIO(stamp))
    return out.getvalue()


class ScaleBench(base.SysContainerTestCase):

    START_COMPUTE = False

    def setUp(self):
        super().setUp()
        self.flags(cpu_allocation_ratio=128.0, ram_allocation_ratio=1.0,
                   reserved_host_memory_mb=512,
                   max_concurrent_builds=BUILDS)
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        # A host name of its own: containers another run left for host1
        # would stop a new host1 from starting (Nova's sanity check).
        self.compute = self.start_compute(HOST)
        self.tiny = self.make_flavor('bench.tiny', vcpus=1, memory_mb=64)
        self.admin = nova_context.get_admin_context()

    # -- helpers -----------------------------------------------------------
    def post_batch(self, count, start_seq, image_id=None):
        """Post ``count`` servers in one request; {uuid: time of the POST}.

        One multi-create POST (min_count = max_count = count), not one per
        server: Nova's functional cell fixture can deadlock its
        reader-writer lock under native threads when the API's quota check
        races many builds (seen at 200 servers posted one by one).
        """
        server = self._build_server(
            name='scale-%04d' % start_seq,
            image_uuid=image_id or self.image_id,
            flavor_id=self.tiny, networks='none')
        server.update(min_count=count, max_count=count,
                      return_reservation_id=True)
        t = time.monotonic()
        rid = self.api.post_server({'server': server})['reservation_id']
        # The API lists the servers of a reservation at once (from their
        # build requests); the cell database has them only once scheduled.
        servers = self.api.get_servers(
            detail=False, search_opts={'reservation_id': rid})
        return {srv['id']: t for srv in servers}

    def wait_active(self, posted):
        """{uuid: seconds from POST to ACTIVE}; errors are reported."""
        done, errors = {}, []
        pending = set(posted)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while pending and time.monotonic() < deadline:
            now = time.monotonic()
            for inst in objects.InstanceList.get_by_filters(
                    self.admin, {'uuid': list(pending)}, expected_attrs=[]):
                if inst.vm_state == 'active' and inst.task_state is None:
                    done[inst.uuid] = now - posted[inst.uuid]
                    pending.discard(inst.uuid)
                elif inst.vm_state == 'error':
                    errors.append(inst.uuid)
                    pending.discard(inst.uuid)
            time.sleep(0.2)
        if errors or pending:
            say('  NOT ACTIVE: %d in ERROR, %d still building' % (
                len(errors), len(pending)))
            for srv_id in errors[:3]:
                fault = self.api.get_server(srv_id).get('fault', {})
                say('    %s: %s' % (srv_id, fault.get('message')))
        return done

    def delete_all_servers(self):
        start = time.monotonic()
        servers = self.api.get_servers(detail=False)
        for srv in servers:
            self.api.delete_server(srv['id'])
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.api.get_servers(detail=False):
            if time.monotonic() > deadline:
                say('  servers still there after %d s' % BOOT_TIMEOUT)
                break
            time.sleep(1)
        return len(servers), time.monotonic() - start

    def memory_report(self, label, prefix, count, avail_before):
        time.sleep(SETTLE)  # let the idle containers settle
        avail = meminfo_kib('MemAvailable')
        usage, rss = cgroup_memory(prefix)
        mon_kib, mons = monitors_kib(prefix)
        say('%s memory with %d idle containers:' % (label, count))
        say('  MemAvailable: %.0f MiB less than before = %.1f MiB per '
            'container (the whole host; other work on it adds noise)' % (
                (avail_before - avail) / 1024.0,
                (avail_before - avail) / 1024.0 / max(count, 1)))
        if usage:
            say('  cgroup memory.usage_in_bytes: mean %.1f MiB, max %.1f MiB;'
                ' total_rss mean %.2f MiB (n=%d)' % (
                    statistics.fmean(usage) / units.Mi,
                    max(usage) / units.Mi,
                    statistics.fmean(rss) / units.Mi, len(usage)))
        if mons:
            say('  [lxc monitor] processes: %d, PSS %.2f MiB each (outside '
                'the cgroups)' % (mons, mon_kib / 1024.0 / mons))
        pid = daemon_pid()
        say('  daemon (lxd, pid %s) RSS: %.0f MiB; this process (API, '
            'conductor, scheduler, nova-compute) RSS: %.0f MiB' % (
                pid, (rss_kib(pid) or 0) / 1024.0,
                rss_kib(os.getpid()) / 1024.0))

    def timed(self, func, *args):
        client = self.driver(HOST).client
        sent = client.requests_sent
        start = time.monotonic()
        result = func(*args)
        return (result, time.monotonic() - start,
                client.requests_sent - sent)

    def periodic_report(self, count):
        manager = self.compute.manager
        drv = self.driver(HOST)
        insts = objects.InstanceList.get_by_host(self.admin, HOST)

        def sync_power_states():
            manager._sync_power_states(self.admin)
            while True:
                with manager.syncs_in_progress() as syncs:
                    if not syncs:
                        return
                time.sleep(0.01)

        def driver_resources():
            drv.get_available_resource(HOST)
            tree = provider_tree.ProviderTree()
            tree.new_root(HOST, drv._node_uuid)
            drv.update_provider_tree(tree, HOST)

        def get_info_all(use_cache):
            return [drv.get_info(inst, use_cache=use_cache).state
                    for inst in insts]

        say('periodic cost at %d instances (wall time, REST requests the '
            'client sent):' % count)
        for label, func, args in (
                ('update_available_resource (Nova RT)',
                 manager.update_available_resource, (self.admin,)),
                ('  its driver calls (resources, provider tree)',
                 driver_resources, ()),
                ('_sync_power_states (Nova, to the last sync)',
                 sync_power_states, ()),
                ('list_instances', drv.list_instances, ()),
                ('list_instance_uuids', drv.list_instance_uuids, ()),
                ('get_num_instances', drv.get_num_instances, ()),
                ('get_info for all, use_cache=True', get_info_all, (True,)),
                ('get_info for all, use_cache=False', get_info_all,
                 (False,))):
            _r, seconds, sent = self.timed(func, *args)
            say('  %-46s %6.3f s %5d requests' % (label, seconds, sent))

    def raw_body(self, name, template):
        return {'name': name, 'type': 'container',
                'profiles': template['profiles'],
                'config': {k: v for k, v in template['config'].items()
                           if not k.startswith(('volatile.', 'image.',
                                                'user.'))},
                'devices': template['devices'],
                'source': {'type': 'image',
                           'fingerprint': template['config'][
                               'volatile.base_image']}}

    def raw_create(self, lxd, body):
        start = time.monotonic()
        rawlxd.wait_operation(lxd, lxd.api.instances.post(json=body))
        rawlxd.wait_operation(lxd, lxd.api.instances[body['name']].state.put(
            json={'action': 'start', 'force': False}))
        return time.monotonic() - start

    def raw_batches(self, template, total):
        lxd = self.daemon.lxd
        seq = 0
        with concurrent.futures.ThreadPoolExecutor(BUILDS) as pool:
            while seq < total:
                n = min(BATCH, total - seq)
                bodies = [self.raw_body(RAW % (seq + i), template)
                          for i in range(n)]
                start = time.monotonic()
                times = list(pool.map(
                    lambda b: self.raw_create(lxd, b), bodies))
                seq += n
                say('  raw batch %3d-%3d: create+start %s; batch %.1f s' % (
                    seq - n + 1, seq, spread(times),
                    time.monotonic() - start))

    def raw_remove_all(self):
        lxd = self.daemon.lxd
        names = [n for n in self.daemon.names() if n.startswith(
            daemon.NAME_PREFIX + 'raw-')]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: rawlxd.remove(lxd, n), names))

    def drop_image(self, fingerprint):
        try:
            rawlxd.wait_operation(
                self.daemon.lxd,
                self.daemon.lxd.api.images[fingerprint].delete())
        except lxd_exceptions.NotFound:
            pass

    def leftovers(self, before, images_before):
        names = self.daemon.names()
        images = {rec['fingerprint'] for rec in self.daemon.images()}
        counts = host_counts()
        say('  left: %d containers of this run, %d images more than before;'
            ' veths %d (before %d), bridges %d (before %d), qdiscs %d '
            '(before %d)' % (
                len([n for n in names if n.startswith(daemon.NAME_PREFIX)]),
                len(images - images_before), len(counts['veths']),
                len(before['veths']), len(counts['bridges']),
                len(before['bridges']), counts['qdiscs'], before['qdiscs']))
        for kind in ('veths', 'bridges'):
            new = sorted(counts[kind] - before[kind])
            if new:
                say('    new %s (this run\'s servers have no ports: not '
                    'theirs; the all-in-one cloud runs without the host '
                    'lock): %s' % (kind, ' '.join(new)))

    # -- the benchmark -----------------------------------------------------
    def test_scale_bench(self):
        info = self.daemon.lxd.host_info['environment']
        say('')
        say('scale benchmark: %d idle busybox servers (1 vCPU, 64 MiB) in '
            'batches of %d, max_concurrent_builds %d; %s %s, pool %s, '
            'kernel %s' % (COUNT, BATCH, BUILDS, info.get('server'),
                           info['server_version'], daemon.POOL,
                           os.uname().release))
        say('  cpu_allocation_ratio 128, ram_allocation_ratio 1.0, '
            'reserved_host_memory_mb 512, quotas unlimited')
        before = host_counts()
        images_before = {rec['fingerprint'] for rec in self.daemon.images()}
        prefix = daemon.NAME_PREFIX
        avail0 = meminfo_kib('MemAvailable')
        pid = daemon_pid()
        say('  before: MemAvailable %.0f MiB, daemon RSS %.0f MiB, this '
            'process RSS %.0f MiB' % (avail0 / 1024.0,
                                      (rss_kib(pid) or 0) / 1024.0,
                                      rss_kib(os.getpid()) / 1024.0))

        # 1. density through Nova
        seq, active = 0, 0
        start_all = time.monotonic()
        while seq < COUNT:
            n = min(BATCH, COUNT - seq)
            start = time.monotonic()
            posted = self.post_batch(n, seq)
            done = self.wait_active(posted)
            seq += n
            active += len(done)
            say('  nova batch %3d-%3d: POST to ACTIVE %s; batch %.1f s' % (
                seq - n + 1, seq, spread(list(done.values())),
                time.monotonic() - start))
        say('  %d of %d ACTIVE in %.1f s' % (
            active, COUNT, time.monotonic() - start_all))
        nova_names = [nm for nm in self.daemon.names()
                      if nm.startswith(prefix)]
        template = self.daemon.instance(nova_names[0])
        self.memory_report('nova', prefix, len(nova_names), avail0)

        # 2. periodic cost
        self.periodic_report(active)

        # deletion
        deleted, seconds = self.delete_all_servers()
        say('  deleted %d servers through Nova in %.1f s' % (deleted,
                                                             seconds))
        self.leftovers(before, images_before)

        # 1b. the same number of raw containers
        time.sleep(SETTLE)
        avail1 = meminfo_kib('MemAvailable')
        self.raw_batches(template, COUNT)
        self.memory_report('raw', prefix + 'raw-', COUNT, avail1)
        start = time.monotonic()
        self.raw_remove_all()
        say('  removed %d raw containers in %.1f s' % (
            COUNT, time.monotonic() - start))

        # 4. concurrency from a cold image cache: an image no daemon holds
        data = fresh_image(self.image_data)
        image_id = self.add_image(data, name='scale-cold')
        imports = []

        def hook(response, *args, **kwargs):
            request = response.request
            if (request.method == 'POST' and
                    urllib.parse.urlparse(request.url).path == '/1.0/images'):
                imports.append(request.url)

        session = self.driver(HOST).client.api.session
        session.hooks['response'].append(hook)
        start = time.monotonic()
        posted = self.post_batch(CONCURRENT, COUNT, image_id)
        done = self.wait_active(posted)
        last = time.monotonic() - start
        session.hooks['response'].remove(hook)
        say('concurrency: %d servers posted at once from a cold image cache:'
            ' %d ACTIVE, %d image import(s), last ACTIVE after %.1f s '
            '(POST to ACTIVE %s)' % (CONCURRENT, len(done), len(imports),
                                     last, spread(list(done.values()))))
        self.delete_all_servers()
        daemon.delete_nova_images(self.daemon.lxd)
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'cold.tar.gz')
        with open(path, 'wb') as f:
            f.write(data)
        start = time.monotonic()
        fingerprint = self.daemon.import_image(path)
        config = dict(template['config'], **{
            'volatile.base_image': fingerprint})
        bodies = [self.raw_body(RAW % i, dict(template, config=config))
                  for i in range(CONCURRENT)]
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
            times = list(pool.map(
                lambda b: self.raw_create(self.daemon.lxd, b), bodies))
        last_raw = time.monotonic() - start
        say('  raw: one import, then %d concurrent create+start: last '
            'running after %.1f s (create+start %s); nova/raw %.2f' % (
                CONCURRENT, last_raw, spread(times), last / last_raw))
        self.raw_remove_all()
        self.drop_image(fingerprint)
        say('after everything:')
        self.leftovers(before, images_before)
