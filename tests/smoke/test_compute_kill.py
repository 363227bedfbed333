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
"""The cloud's nova-compute killed for real (SIGKILL) during a build.

Mixed into test_cloud_smoke.CloudSmokeTest (its cloud, its project member,
its helpers). The functional fault suite simulates a dying nova-compute
inside one process (tests/functional/faults.ComputeKilled), where
``finally`` blocks and the other threads still run. Here the cloud's own
nova-compute process gets SIGKILL from outside, as the OOM killer or a
crash would: nothing of it runs after. A member creates a server; once its
container exists on the daemon, before the server is ACTIVE, the process
named by the cloud's PID file is killed; ``tools/cloud.sh start-nova``
starts it again. Nova's init_host then sets a build it finds unfinished to
ERROR (Nova never rebuilds or reschedules it: ``_init_instance`` only knows
that the spawn did not finish); the driver's init_host (interrupted.py)
first removes what the build made and records the fault.
"""

import json
import os
import signal
import subprocess
import threading
import time

from tests import paths

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CLOUD = os.path.join(REPO, 'tools', 'cloud.sh')
LOGS = os.environ.get('SYSCONTAINER_CLOUD_LOGS',
                      '/var/log/nova-syscontainer/cloud')
#: nova_syscontainer.virt.container.UUID_KEY (the smoke env installs no
#: driver).
UUID_KEY = 'user.nova_syscontainer.instance_uuid'


def _out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True,
                          timeout=60).stdout


def compute_process():
    """(pid, start time) of the cloud's nova-compute, from its PID file."""
    with open(os.path.join(LOGS, 'nova-compute.pid')) as f:
        pid, start = f.read().split()
    return int(pid), start


def proc_stat(pid):
    """(start time, process group id) of a live process, or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] == 'Z':
        return None
    return fields[19], int(fields[2])


def group_members(pgid):
    """PIDs of the live processes of process group ``pgid``.

    The cloud's supervisord makes each service the leader of a process
    group of its own (and stops it by that group): nova-compute's privsep
    daemons are in its group.
    """
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[1] == pgid:
                found.append(int(entry))
    return sorted(found)


def host_census():
    """What a build puts on the host: links, br-int ports, qdiscs."""
    links = json.loads(_out('ip', '-j', '-d', 'link', 'show'))
    return {
        'links': {'%s (%s)' % (link['ifname'], (link.get('linkinfo') or {})
                               .get('info_kind', '-')) for link in links},
        'ovs ports': set(_out('ovs-vsctl', '--timeout=30', 'list-ports',
                              'br-int').split()),
        'qdiscs': {' '.join(line.split()[:5]) for line in
                   _out('tc', 'qdisc', 'show').splitlines() if line},
    }


def containers():
    """{name: record} of the daemon's containers (the cloud's project)."""
    return {rec['name']: rec for rec in json.loads(
        _out('lxc', 'query', '/1.0/instances?recursion=1'))}


class Killer(threading.Thread):
    """SIGKILLs nova-compute as soon as the server's container shows up.

    The server's container is the new one whose config carries the
    instance uuid key. Other containers may appear first: with the cloud's
    ``[syscontainer] image_templates = true`` the first build from an image
    makes that image's template (``nova-template-*``, no instance key, see
    nova_syscontainer/virt/template.py) before it copies it into the
    server's container. Those are recorded in ``others``, not killed for.
    """

    def __init__(self, pid, before, timeout=120):
        super().__init__(daemon=True)
        self.pid, self.before, self.timeout = pid, set(before), timeout
        self.record = None
        self.killed_at = None
        self.others = set()

    def run(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            new = {name: rec for name, rec in containers().items()
                   if name not in self.before}
            servers = sorted((rec for rec in new.values()
                              if UUID_KEY in rec.get('config', {})),
                             key=lambda r: r['name'])
            self.others.update(name for name in new
                               if UUID_KEY not in new[name].get('config', {}))
            if servers:
                os.kill(self.pid, signal.SIGKILL)
                self.killed_at = time.monotonic()
                self.record = servers[0]
                return
            time.sleep(0.05)


def start_nova():
    """``tools/cloud.sh start-nova``; its seconds."""
    started = time.monotonic()
    proc = subprocess.run([CLOUD, 'start-nova'], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError('cloud.sh start-nova failed (%d):\n%s\n%s' % (
            proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return time.monotonic() - started


class ComputeKillChecks(object):
    """Test methods for CloudSmokeTest (needs its osc/admin helpers)."""

    def _compute_back(self):
        """Start nova-compute again if the test stopped short of it."""
        pid, start = compute_process()
        if (proc_stat(pid) or ('dead',))[0] != start:
            start_nova()

    def test_nova_compute_sigkilled_mid_build(self):
        started = time.monotonic()
        image = self.admin('image', 'create', '--disk-format', 'raw',
                           '--container-format', 'bare', '--public',
                           '--file', paths.TEST_IMAGE, self.tag)
        self.addCleanup(self.admin, 'image', 'delete', image['id'],
                        fmt=False)
        # An egress limit, so that the port's qvb carries an HTB qdisc.
        flavor = self.admin('flavor', 'create', '--vcpus', '1', '--ram',
                            '128', '--disk', '1', '--property',
                            'quota:vif_outbound_average=500', self.tag)
        self.addCleanup(self.admin, 'flavor', 'delete', flavor['id'],
                        fmt=False)
        network = self.osc('network', 'create', self.tag)
        self.addCleanup(self.osc, 'network', 'delete', network['id'],
                        fmt=False)
        self.osc('subnet', 'create', '--network', network['id'],
                 '--subnet-range', '192.0.2.0/24', '--gateway', 'none',
                 '--no-dhcp', self.tag)
        self.addCleanup(self._delete_server, self.tag)

        census = host_census()
        pid, start = compute_process()
        self.assertEqual(start, (proc_stat(pid) or ('dead',))[0])
        # It leads its process group, so the group's emptiness after the
        # kill says something.
        self.assertEqual(pid, proc_stat(pid)[1])
        killer = Killer(pid, containers())
        # The cloud is shared: it gets its nova-compute back, whatever
        # happens here.
        self.addCleanup(self._compute_back)
        killer.start()
        create = time.monotonic()
        server = self.osc('server', 'create', '--flavor', flavor['id'],
                          '--image', image['id'], '--network',
                          network['id'], self.tag)
        killer.join(killer.timeout + 10)
        self.assertIsNotNone(
            killer.record, 'no container with %s appeared (others: %s)' % (
                UUID_KEY, sorted(killer.others)))
        # The process is gone (its own privsep daemons may still be
        # shutting down, in its process group).
        self.wait_for('nova-compute %d to die' % pid,
                      lambda: proc_stat(pid) is None, timeout=30)
        shown = self.admin('server', 'show', server['id'])
        self.assertEqual(server['id'], killer.record['config'][UUID_KEY])
        self.assertEqual(
            ('BUILD', 'spawning'),
            (shown['status'], shown['OS-EXT-STS:task_state']))
        name = shown['OS-EXT-SRV-ATTR:instance_name']
        self.assertEqual(name, killer.record['name'])
        port = self.osc('port', 'list', '--server', server['id'])[0]
        qbr, qvb, qvo = [(prefix + port['ID'])[:14]
                         for prefix in ('qbr', 'qvb', 'qvo')]
        left_by_death = {
            'container': containers().get(name, {}).get('status'),
            'links': [dev for dev in (qbr, qvb, qvo)
                      if os.path.exists('/sys/class/net/' + dev)],
            'qvb qdisc': 'htb' in subprocess.run(
                ['tc', 'qdisc', 'show', 'dev', qvb], capture_output=True,
                text=True).stdout}
        self.assertTrue(left_by_death['container'], left_by_death)

        restarted = start_nova()
        new_pid, _start = compute_process()
        self.assertNotEqual(pid, new_pid)
        self.assertIsNotNone(proc_stat(new_pid))
        self.assertEqual('ERROR', self.wait_status(server['id'], 'ERROR',
                                                   timeout=120))
        fault = self.admin('server', 'show', server['id'])['fault']
        self.assertIn('nova-compute stopped during the build',
                      fault['message'])

        # Nothing of the build is left: container, interfaces (bridges,
        # veths), br-int ports, qdiscs.
        self.assertNotIn(name, containers())
        now = host_census()
        left = {kind: sorted(now[kind] - census[kind]) for kind in now}
        self.assertEqual({kind: [] for kind in now}, left)
        self.assertEqual([], group_members(pid))
        # The service is back, and serves.
        services = self.admin('compute', 'service', 'list', '--service',
                              'nova-compute')
        self.assertEqual([('aio', 'enabled', 'up')], [
            (s['Host'], s['Status'], s['State']) for s in services])
        self.osc('server', 'delete', '--wait', server['id'], fmt=False)
        self.assertEqual([], self.osc('port', 'list', '--network',
                                      network['id'], '--device-owner',
                                      'compute:nova'))
        self.addCleanup(self._delete_server, self.tag + '-again')
        again = self.osc('server', 'create', '--flavor', flavor['id'],
                         '--image', image['id'], '--network',
                         network['id'], '--wait', self.tag + '-again')
        self.assertEqual('ACTIVE', again['status'])
        self.osc('server', 'delete', '--wait', again['id'], fmt=False)
        print('compute SIGKILL: killed %.1f s after the create call, the '
              'container %s (other new containers: %s); left by the '
              'death %s; start-nova %.1f s; '
              'server ERROR with its fault; left after the restart %s; '
              'next server ACTIVE; %.0f s in all' % (
                  killer.killed_at - create, killer.record['status'],
                  sorted(killer.others), left_by_death, restarted, left,
                  time.monotonic() - started))
