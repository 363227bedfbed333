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
"""Spawn benchmark: the driver against raw pylxd on the real daemon.

What is measured
    The wall-clock time of ``SysContainerDriver.spawn`` (the real driver
    class, real Nova objects, the real daemon) of a 1 vCPU / 128 MiB
    instance from an image the daemon already holds, against the time of the
    least a client must do to get the same running container with plain
    pylxd: ``POST /1.0/instances`` and ``PUT .../state`` (start), each
    waited for through ``GET /1.0/operations/<id>/wait``.

Why
    The daemon's own work (unpacking the image on the pool, starting the
    container) dominates both sides, so the ratio driver/raw isolates what
    the driver adds: its extra daemon calls (existence check, image cache
    lookup), its locking and its Python. The target is a ratio of at most
    1.10. This is a benchmark, not a test: it reports the figures and a
    verdict and never fails on them.

How it stays fair
    * Both sides create the same container: the config and devices come
      from ``flavor_limits.translate`` and the driver's checkpoint raw.lxc
      lines with the driver's own options, and the script checks on the daemon
      that both containers carry the same limits, raw.lxc, devices and
      profiles.
    * The image is "cached": the driver finds it by the alias
      ``nova-image-<glance image id>``. The script imports the test tarball
      (if the daemon lacks its sha256 fingerprint) and creates that alias
      beforehand, so no Glance is involved and both sides start from the
      same fingerprint.
    * Samples are interleaved (driver, raw, driver, raw, ...) so that drift
      of the host hits both sides alike; one untimed warm-up spawn per side
      comes first. Each container is deleted after it is timed; deletion is
      not timed. Besides the statistics of each side, the statistics of
      the paired differences (sample i of the driver minus sample i of the
      raw side, taken moments apart) are printed: the least noisy estimate
      of what the driver adds.
    * Nothing is mocked. ``--trace`` adds one more (untimed) spawn per side
      that lists every HTTP request sent to the daemon, through the
      ``requests`` session's response hook.

Containers are named with the prefix ``nsc-bench-`` and only containers
with that prefix are ever removed -- at the start (leftovers of a killed
run) and at the end, also after a failure, Ctrl-C or SIGTERM. The cached
image and its alias are left in place for the next run.

Run from the repository root with the venv that has Nova and this package::

    /path/to/venv/bin/python tools/bench/spawn_bench.py [--count 20]

The driver measured is the *installed* ``nova_syscontainer`` (its path is
printed); reinstall the package after changing it.
"""

import argparse
import contextlib
import fcntl
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.parse

from nova import conf as nova_conf
from nova import context as nova_context
from nova.network import model as network_model
from nova import objects
from nova.virt import virtapi
from pylxd import exceptions as lxd_exceptions

import nova_syscontainer
from nova_syscontainer.virt import checkpoint_policy
from nova_syscontainer.virt import container
from nova_syscontainer.virt import driver as sc_driver
from nova_syscontainer.virt import image as sc_image
from nova_syscontainer.virt import template

# The raw side shares the tests' plain pylxd helpers (tests/rawlxd.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
from tests import rawlxd  # noqa: E402

CONF = nova_conf.CONF

PREFIX = 'nsc-bench-'
#: instance_name_template of the driver side: nsc-bench-00000001, ...
NAME_TEMPLATE = PREFIX + '%08x'
#: Names of the raw side: nsc-bench-raw-0001, ... ('raw' is not hex, so
#: the two sides can never collide).
RAW_NAME = PREFIX + 'raw-%04d'
#: The Glance image id the benchmark's cached image stands for. Nothing
#: asks Glance about it: the alias nova-image-<id> is created here.
BENCH_IMAGE_ID = '222e086e-8019-4c8c-9197-a2b3c72f721d'
DEFAULT_IMAGE = '/var/cache/nova-syscontainer/images/busybox-counter.tar.gz'
DEFAULT_ENDPOINT = '/var/lib/lxd/unix.socket'
TARGET_RATIO = 1.10
#: The host lock every functional test and benchmark holds for its whole
#: run (tests/functional/daemon.py): the daemons are shared.
LOCK_PATH = os.environ.get('SYSCONTAINER_TEST_LOCK',
                           '/run/lock/nova-syscontainer-functional.lock')


def say(text=''):
    print(text, flush=True)


# ----------------------------------------------------------------------
# Raw pylxd
# ----------------------------------------------------------------------
def raw_spawn(lxd, body):
    """Create and start a container, waiting for both operations."""
    rawlxd.wait_operation(lxd, lxd.api.instances.post(json=body))
    rawlxd.wait_operation(lxd, lxd.api.instances[body['name']].state.put(
        json={'action': 'start', 'force': False, 'stateful': False}))


def sweep(lxd):
    """Remove every container with the benchmark's prefix; their names."""
    return rawlxd.sweep(lxd, PREFIX)


def ensure_cached_image(lxd, path, image_id):
    """Make the daemon hold ``path`` under the driver's cache alias.

    :returns: (fingerprint, what was done, for the report).
    """
    fingerprint, imported = rawlxd.import_image(lxd, path)
    done = ['image imported from %s' % path if imported
            else 'image already in the daemon']
    alias = sc_image.alias_for(image_id)
    try:
        current = lxd.api.images.aliases[alias].get().json()['metadata']
    except lxd_exceptions.NotFound:
        current = None
    if current is None:
        lxd.api.images.aliases.post(json={
            'name': alias, 'target': fingerprint,
            'description': 'spawn benchmark (tools/bench/spawn_bench.py)'})
        done.append('alias %s created' % alias)
    elif current['target'] != fingerprint:
        lxd.api.images.aliases[alias].put(json={
            'target': fingerprint, 'description': current['description']})
        done.append('alias %s re-pointed' % alias)
    else:
        done.append('alias %s present' % alias)
    return fingerprint, ', '.join(done)


# ----------------------------------------------------------------------
# The driver side
# ----------------------------------------------------------------------
class BenchVirtAPI(virtapi.VirtAPI):
    """The compute manager's side of ``nova.virt.virtapi.VirtAPI``.

    spawn waits for Neutron's network-vif-plugged events through
    ``wait_for_instance_event``; the benchmark's instances have no ports,
    so there is nothing to wait for (the base class raises
    NotImplementedError).
    """

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, timeout=300,
                                error_callback=None):
        if event_names:
            raise RuntimeError('the benchmark has no Neutron to wait for '
                               '(events %s)' % event_names)
        yield

    def exit_wait_early(self, events):
        pass

    def update_compute_provider_status(self, context, rp_uuid, enabled):
        pass


def configure(args, state_path):
    CONF([], project='nova', default_config_files=[])
    CONF.set_override('state_path', state_path)
    CONF.set_override('instance_name_template', NAME_TEMPLATE)
    CONF.set_override('endpoint', args.endpoint, group='syscontainer')
    CONF.set_override('project', args.project, group='syscontainer')
    CONF.set_override('storage_pool', args.pool, group='syscontainer')
    CONF.set_override('image_templates', args.image_templates,
                      group='syscontainer')


def make_flavor(args):
    return objects.Flavor(
        id=1, flavorid='bench.small', name='bench.small', vcpus=args.vcpus,
        memory_mb=args.memory_mb, root_gb=0, ephemeral_gb=0, swap=0,
        extra_specs={}, is_public=True, disabled=False, rxtx_factor=1.0,
        vcpu_weight=0)


def make_image_meta(image_id):
    return objects.ImageMeta.from_dict({
        'id': image_id, 'name': 'busybox-counter', 'status': 'active',
        'container_format': 'bare', 'disk_format': 'raw',
        'min_disk': 0, 'min_ram': 0,
        'properties': {'architecture': 'x86_64',
                       'hypervisor_type': 'lxc', 'vm_mode': 'exe'}})


def make_instance(seq, flavor, image_id, ctxt):
    return objects.Instance(
        context=ctxt, id=seq, uuid='%08x-0000-4000-8000-%012x' % (
            os.getpid(), seq),
        project_id=ctxt.project_id, user_id=ctxt.user_id,
        image_ref=image_id, flavor=flavor, instance_type_id=flavor.id,
        vcpus=flavor.vcpus, memory_mb=flavor.memory_mb, root_gb=0,
        ephemeral_gb=0, host='bench', node='bench', vm_state='building',
        task_state='spawning', power_state=0, trusted_certs=None,
        config_drive='',
        system_metadata={}, metadata={})


def raw_body(name, fingerprint, instance, image_meta, drv):
    """The create body of the raw side: the driver's body, no driver.

    The same pure functions and options the driver's spawn uses
    (container.create_body with its limits and checkpoint lines and keys),
    under another name: both containers carry the same config, devices and
    profiles, and the raw side none of the driver's work around them.
    """
    body = container.create_body(
        instance, 'bench', fingerprint,
        drv._limits(instance, image_meta=image_meta),
        CONF.syscontainer.profiles, raw_lxc=drv._checkpoint_lines(),
        checkpoint_config=checkpoint_policy.create_config())
    return dict(body, name=name, description='spawn benchmark raw side')


def _shape(rec):
    """What must be equal on both sides: all but markers and volatile."""
    config = {k: v for k, v in rec['config'].items()
              if not k.startswith(('user.', 'volatile.', 'image.'))}
    return config, rec['devices'], rec['profiles']


# ----------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------
class Bench(object):

    def __init__(self, args, lxd, drv, fingerprint):
        self.args = args
        self.lxd = lxd
        self.driver = drv
        self.fingerprint = fingerprint
        self.ctxt = nova_context.RequestContext(
            user_id='spawn-bench', project_id='spawn-bench', is_admin=True)
        self.flavor = make_flavor(args)
        self.image_meta = make_image_meta(args.image_id)
        self.seq = 0

    def _next(self):
        self.seq += 1
        return self.seq

    def driver_once(self, keep=False, hook=None):
        instance = make_instance(self._next(), self.flavor,
                                 self.args.image_id, self.ctxt)
        with _hooked(self.driver.client.api.session, hook):
            start = time.perf_counter()
            self.driver.spawn(self.ctxt, instance, self.image_meta,
                              injected_files=[], admin_password=None,
                              allocations={},
                              network_info=network_model.NetworkInfo([]),
                              block_device_info=None, power_on=True)
            elapsed = time.perf_counter() - start
        rec = self.lxd.api.instances[instance.name].get().json()['metadata']
        if rec['status'] != 'Running':
            raise RuntimeError('%s is %s after spawn' % (
                instance.name, rec['status']))
        if not keep:
            self.driver.destroy(self.ctxt, instance,
                                network_model.NetworkInfo([]))
        return elapsed, rec

    def raw_once(self, keep=False, hook=None):
        seq = self._next()
        name = RAW_NAME % seq
        instance = make_instance(seq, self.flavor, self.args.image_id,
                                 self.ctxt)
        body = raw_body(name, self.fingerprint, instance, self.image_meta,
                        self.driver)
        with _hooked(self.lxd.api.session, hook):
            start = time.perf_counter()
            raw_spawn(self.lxd, body)
            elapsed = time.perf_counter() - start
        rec = self.lxd.api.instances[name].get().json()['metadata']
        if rec['status'] != 'Running':
            raise RuntimeError('%s is %s after start' % (name, rec['status']))
        if not keep:
            rawlxd.remove(self.lxd, name)
        return elapsed, rec

    def warm_up(self):
        """One untimed spawn per side; checks both made the same thing."""
        _t, drv_rec = self.driver_once(keep=True)
        _t, raw_rec = self.raw_once(keep=True)
        same = _shape(drv_rec) == _shape(raw_rec)
        if not same:
            say('WARNING: the two sides made different containers:')
            say('  driver: %r' % (_shape(drv_rec),))
            say('  raw:    %r' % (_shape(raw_rec),))
        sweep(self.lxd)
        return same, _shape(drv_rec)

    def run(self):
        driver_times, raw_times = [], []
        for i in range(self.args.count):
            driver_times.append(self.driver_once()[0])
            raw_times.append(self.raw_once()[0])
            if self.args.verbose:
                say('  %2d  driver %.4f s   raw %.4f s' % (
                    i + 1, driver_times[-1], raw_times[-1]))
        return driver_times, raw_times

    def trace(self):
        """One more spawn per side, listing the requests each sends."""
        for label, once in (('driver', self.driver_once),
                            ('raw', self.raw_once)):
            seen = []

            def hook(response, *args, **kwargs):
                seen.append((response.request.method,
                             _short(response.request.url),
                             response.elapsed.total_seconds()))

            elapsed = once(hook=hook)[0]
            say('  %s spawn: %.4f s, %d daemon requests (time to response '
                'headers each):' % (label, elapsed, len(seen)))
            for method, url, seconds in seen:
                say('    %-6s %-60s %.4f s' % (method, url, seconds))
            waited = sum(seconds for _m, _u, seconds in seen)
            say('    sum %.4f s; the rest, %.4f s, is client side (Python, '
                'reading bodies, locks)' % (waited, elapsed - waited))


@contextlib.contextmanager
def _hooked(session, hook):
    """Have ``hook`` see every response of ``session`` in the block."""
    if hook is None:
        yield
        return
    session.hooks['response'].append(hook)
    try:
        yield
    finally:
        session.hooks['response'].remove(hook)


def _short(url):
    parsed = urllib.parse.urlparse(url)
    query = '&'.join(p for p in parsed.query.split('&')
                     if p and not p.startswith('project='))
    return parsed.path + ('?' + query if query else '')


# ----------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------
def p90(samples):
    """90th percentile, linear interpolation between closest ranks."""
    ordered = sorted(samples)
    rank = 0.9 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples):
    return {'median': statistics.median(samples),
            'mean': statistics.fmean(samples),
            'p90': p90(samples), 'min': min(samples), 'max': max(samples)}


def report(driver_times, raw_times):
    columns = ('median', 'mean', 'p90', 'min', 'max')
    drv, raw = summary(driver_times), summary(raw_times)
    say()
    say('%-22s' % 'seconds (n=%d each)' % len(driver_times) +
        ''.join('%9s' % c for c in columns))
    for label, stats in (('driver spawn', drv),
                         ('raw pylxd create+start', raw)):
        say('%-22s' % label + ''.join('%9.4f' % stats[c] for c in columns))
    say('%-22s' % 'difference of stats' + ''.join(
        '%+9.4f' % (drv[c] - raw[c]) for c in columns))
    paired = [d - r for d, r in zip(driver_times, raw_times)]
    say('%-22s' % 'paired driver-raw' + ''.join(
        '%+9.4f' % value for value in (
            statistics.median(paired), statistics.fmean(paired),
            p90(paired), min(paired), max(paired))))
    ratio_median = drv['median'] / raw['median']
    ratio_mean = drv['mean'] / raw['mean']
    say()
    say('ratio driver/raw: median %.3f, mean %.3f (target <= %.2f)' % (
        ratio_median, ratio_mean, TARGET_RATIO))
    if ratio_median <= TARGET_RATIO and ratio_mean <= TARGET_RATIO:
        verdict = 'WITHIN TARGET'
    elif ratio_median <= TARGET_RATIO:
        verdict = 'MEDIAN WITHIN TARGET, MEAN ABOVE (outliers?)'
    else:
        verdict = 'ABOVE TARGET'
    say('verdict: %s (median ratio %.3f); the driver adds %+.1f ms to a '
        'spawn (median of the paired differences)' % (
            verdict, ratio_median, statistics.median(paired) * 1000))


# ----------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        description='Time SysContainerDriver.spawn against a raw pylxd '
                    'create+start of the same cached image on the real '
                    'daemon (interleaved; reports, never fails on timings).')
    parser.add_argument('--count', type=int, default=20,
                        help='timed spawns per side (default 20)')
    parser.add_argument('--endpoint', default=DEFAULT_ENDPOINT,
                        help='daemon unix socket (default %(default)s)')
    parser.add_argument('--project', default='default',
                        help='daemon project (default %(default)s)')
    parser.add_argument('--pool', default='default',
                        help='storage pool (default %(default)s)')
    parser.add_argument('--image', default=DEFAULT_IMAGE,
                        help='LXD unified image tarball to cache '
                             '(default %(default)s)')
    parser.add_argument('--image-id', default=BENCH_IMAGE_ID,
                        help='Glance image id the cached image stands for '
                             '(alias nova-image-<id>; default %(default)s)')
    parser.add_argument('--image-templates', action='store_true',
                        help='the driver copies a shifted template of the '
                             'image ([syscontainer] image_templates; a '
                             'copy-on-write pool); the raw side still '
                             'creates from the image. The template is made '
                             'in the warm-up and removed at the end')
    parser.add_argument('--vcpus', type=int, default=1)
    parser.add_argument('--memory-mb', type=int, default=128)
    parser.add_argument('--trace', action='store_true',
                        help='afterwards, one untimed spawn per side that '
                             'lists the daemon requests it sends')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='print every sample')
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error('--count must be at least 1')
    return args


def _terminate(signum, frame):
    raise KeyboardInterrupt()


def main(argv=None):
    args = parse_args(argv)
    if not os.path.exists(args.endpoint):
        say('No daemon socket at %s (run tools/setup-host.sh as root)' %
            args.endpoint)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    lock = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the process ends
    objects.register_all()
    state_path = tempfile.mkdtemp(prefix='spawn-bench-')
    lxd = fingerprint = None
    status = 0
    try:
        configure(args, state_path)
        lxd = rawlxd.connect(args.endpoint, args.project)
        leftovers = sweep(lxd)
        if leftovers:
            say('Removed leftovers of an earlier run: %s' %
                ', '.join(leftovers))
        fingerprint, image_note = ensure_cached_image(
            lxd, args.image, args.image_id)

        drv = sc_driver.SysContainerDriver(BenchVirtAPI())
        drv.init_host('bench')
        info = lxd.host_info
        env = info['environment']
        pool = lxd.api.storage_pools[args.pool].get().json()['metadata']
        bench = Bench(args, lxd, drv, fingerprint)

        say('nova-syscontainer spawn benchmark')
        say('  daemon  : %s %s at %s (project %s), kernel %s' % (
            env.get('server', 'lxd'), env.get('server_version'),
            args.endpoint, args.project, platform.release()))
        say('  pool    : %s, driver %s' % (args.pool, pool.get('driver')))
        say('  driver  : %s.SysContainerDriver from %s' % (
            sc_driver.__name__, os.path.dirname(nova_syscontainer.__file__)))
        say('  image   : %s (%s)' % (fingerprint, image_note))
        say('            pre-cached under the driver\'s alias, so no Glance '
            'is involved; both sides create from this fingerprint')
        say('  flavor  : %d vCPU, %d MiB, root_gb 0; checkpoint raw.lxc %s' % (
            args.vcpus, args.memory_mb,
            'on' if CONF.syscontainer.enable_checkpoint else 'off'))
        say('  driver creates from: %s' % (
            'a copy of the image\'s shifted template (image_templates)'
            if drv._templates else 'the image'))
        same, shape = bench.warm_up()
        say('  samples : %d per side, interleaved driver/raw after 1 untimed '
            'warm-up each; deletion not timed' % args.count)
        say('  same container on both sides (limits, raw.lxc, devices, '
            'profiles): %s' % ('yes' if same else 'NO'))
        if args.verbose:
            say('  shape   : %r' % (shape,))
        driver_times, raw_times = bench.run()
        report(driver_times, raw_times)
        if args.trace:
            say()
            say('daemon requests of one more (untimed) spawn per side:')
            bench.trace()
    except KeyboardInterrupt:
        say('\nInterrupted.')
        status = 130
    finally:
        # Clean-up runs to its end; a signal now would leave containers
        # behind (the next run sweeps them).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if lxd is not None:
                if args.image_templates and fingerprint:
                    rawlxd.remove(lxd, template.name(fingerprint, args.pool))
                removed = sweep(lxd)
                if removed:
                    say('Cleaned up %d container(s) with prefix %s' % (
                        len(removed), PREFIX))
        finally:
            shutil.rmtree(state_path, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
