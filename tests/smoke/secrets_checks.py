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
"""The all-in-one's secrets stay with root (mixed into CloudSmokeTest).

Before: the services' files were written with the default umask (0644
files holding passwords, 0755 directories), keystone-manage bootstrap and
register.py had the admin and service passwords on their command lines
(any local user reads /proc/<pid>/cmdline), RabbitMQ took Debian's
guest/guest, and an epmd started by the first rabbitmqctl listened on
every address.
"""

import os
import stat
import subprocess
import threading

CONF_DIR = os.environ.get('SYSCONTAINER_CLOUD_CONF',
                          '/etc/nova-syscontainer/cloud')
CLOUDS_YAML = os.environ.get('SYSCONTAINER_CLOUDS_YAML',
                             '/etc/openstack/clouds.yaml')
LOOPBACK = ('127.0.0.1:', '[::1]:', '[::ffff:127.0.0.1]:')


def _secrets():
    values = {}
    with open(os.path.join(CONF_DIR, 'secrets')) as f:
        for line in f:
            key, _sep, value = line.strip().partition('=')
            if value:
                values[key] = value
    return values


def _cmdlines():
    """Every process's command line, as any local user reads it."""
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                yield pid, f.read().replace(b'\0', b' ').decode(
                    'utf-8', 'replace')
        except OSError:
            continue


class CmdlineWatch(object):
    """Every command line seen while something runs (polled, 10 a s).

    The commands that take passwords (keystone-manage bootstrap,
    register.py, rabbitmqctl, nova-manage) run during tools/cloud.sh start
    only: CloudSmokeTest watches its start with this.
    """

    def __init__(self):
        self.seen = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._done.is_set():
            self.seen.update(line for _pid, line in _cmdlines())
            self._done.wait(0.1)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._done.set()
        self._thread.join()
        return self.seen


class SecretsChecks(object):
    """Test methods for CloudSmokeTest."""

    def test_secrets_readable_by_root_only(self):
        modes = {}
        for top, dirs, files in os.walk(CONF_DIR):
            mode = stat.S_IMODE(os.stat(top).st_mode)
            if mode != 0o700:
                modes[top] = oct(mode)
            for name in files:
                path = os.path.join(top, name)
                mode = stat.S_IMODE(os.stat(path).st_mode)
                if mode & 0o077:
                    modes[path] = oct(mode)
        mode = stat.S_IMODE(os.stat(CLOUDS_YAML).st_mode)
        if mode & 0o077:
            modes[CLOUDS_YAML] = oct(mode)
        self.assertEqual({}, modes)

    def test_no_password_on_a_command_line(self):
        secrets = _secrets()
        self.assertEqual(
            {'ADMIN_PASSWORD', 'SERVICE_PASSWORD', 'DATABASE_PASSWORD',
             'RABBIT_PASSWORD', 'METADATA_SECRET', 'DEMO_PASSWORD'},
            set(secrets))
        # Now, and during the class's tools/cloud.sh start (bootstrap,
        # registration, RabbitMQ's user, the cell's transport URL, the
        # demo user Horizon's users log in as).
        lines = set(line for _pid, line in _cmdlines())
        lines |= getattr(self, 'start_cmdlines', set())
        self.assertTrue(any('keystone-manage' in line for line in lines),
                        'the start was not watched')
        found = sorted((name, line[:200]) for line in lines
                       for name, value in secrets.items() if value in line)
        self.assertEqual([], found)

    def test_rabbitmq_own_user_and_erlang_on_loopback(self):
        users = subprocess.run(['rabbitmqctl', '-q', 'list_users'],
                               capture_output=True, text=True, timeout=120,
                               env=dict(os.environ,
                                        ERL_EPMD_ADDRESS='127.0.0.1'))
        self.assertEqual(0, users.returncode, users.stderr)
        names = [line.split()[0] for line in users.stdout.splitlines()[1:]
                 if line.strip()]
        self.assertEqual(['openstack'], names)
        with open(os.path.join(CONF_DIR, 'nova', 'nova.conf')) as f:
            self.assertNotIn('guest:guest', f.read())
        # epmd and the node's distribution port (beam.smp's listeners
        # besides AMQP's) on loopback only.
        listen = subprocess.run(['ss', '-Hltnp'], capture_output=True,
                                text=True, timeout=60).stdout
        erlang = [line.split() for line in listen.splitlines()
                  if '"epmd"' in line or '"beam.smp"' in line]
        self.assertTrue(any('"epmd"' in ' '.join(f) for f in erlang),
                        listen)
        self.assertEqual([], [f[3] for f in erlang
                              if not f[3].startswith(LOOPBACK)])
