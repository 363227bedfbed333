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
"""devstack/plugin.sh, phase by phase, in isolation.

DevStack itself cannot run here, so its own functions the plugin calls
(is_service_enabled, iniset, iniget, setup_install, die, echo_summary, the
openstack client and sudo) are small stand-ins defined below. What is
under test is the plugin and the project's real config writer
(tools/lib/syscontainer-conf.sh): the nova.conf it produces is read back
with oslo.config and the driver's own option definitions. The host
preparation is replaced, through SYSCONTAINER_SETUP_HOST, by a stub that
records how it was called.
"""

import configparser
import importlib.util
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

from oslo_config import cfg

from nova_syscontainer import conf as sc_conf

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

# Tempest [compute-feature-enabled] flag -> the support-matrix feature it
# exercises. The plugin turns a flag on exactly when the matrix claims the
# feature (complete or partial).
TEMPEST_TO_MATRIX = {
    'console_output': 'console.serial.log',
    'pause': 'operation.pause',
    'suspend': 'operation.suspend',
    'resize': 'operation.resize',
    'rescue': 'operation.rescue',
    'stable_rescue': 'operation.rescue',
    'shelve': 'operation.snapshot',
    'shelve_migrate': 'operation.snapshot',
    'snapshot': 'operation.snapshot',
    'interface_attach': 'operation.attach-interface',
    'config_drive': 'guest.setup.configdrive',
    'metadata_service': 'guest.setup.metadata-service',
    'personality': 'guest.setup.inject.file',
    'change_password': 'operation.set-admin-password',
    'disk_config': 'guest.disk.autoconfig',
    'vnc_console': 'console.vnc',
    'spice_console': 'console.spice',
    'serial_console': 'console.serial.interactive',
    'attach_encrypted_volume': 'operation.encrypted-volume',
    'swap_volume': 'operation.swap-volume',
    'volume_multiattach': 'operation.multiattach-volume',
    'volume_backed_live_migration': 'storage.block',
    'block_migration_for_live_migration': 'storage.block',
    'ide_bus': 'storage.block',
}
#: Flags that stay False although the matrix claims partial support: the
#: feature needs something in the guest that DevStack's Tempest image
#: (busybox-counter) lacks, so Tempest's test could only fail there.
NEEDS_MORE_THAN_THE_TEMPEST_IMAGE = {
    # busybox has no chpasswd applet: changePassword answers 409.
    'change_password',
}

#: Flags that stay False although their matrix feature is claimed: the
#: part of the feature Tempest's test exercises is not proved (yet).
NOT_PROVED_PART = {
    # Stable-device rescue (hw_rescue_device/hw_rescue_bus) and the rescue
    # of a volume-backed server: only plain rescue is proved.
    'stable_rescue',
}

# DevStack's functions, as far as the plugin uses them.
STAND_INS = r'''
set -o errexit -o nounset
CALLS=$WORK/calls.log
: >"$CALLS"
record() { printf '%s\n' "$*" >>"$CALLS"; }
echo_summary() { record "summary $*"; }
die() { shift; echo "die: $*" >&2; exit 3; }
enable_service() { ENABLED_SERVICES+=",$1"; }
is_service_enabled() {
    local s
    for s in "$@"; do [[ ,$ENABLED_SERVICES, == *,$s,* ]] && return 0; done
    return 1
}
setup_install() { record "setup_install $*"; }
systemctl() { record "systemctl $*"; }
sudo() { record "sudo $*"; "$@"; }
_ini() {
    python3 - "$@" <<'PYEOF'
import configparser, sys
op, path, section, key = sys.argv[1:5]
c = configparser.ConfigParser(interpolation=None, default_section='@none@')
c.optionxform = str
c.read(path)
if op == 'get':
    print(c.get(section, key, fallback=''))
else:
    if not c.has_section(section):
        c.add_section(section)
    c.set(section, key, sys.argv[5])
    with open(path, 'w') as f:
        c.write(f)
PYEOF
}
iniset() { [[ $1 == -sudo ]] && shift; _ini set "$@"; }
iniget() { _ini get "$@"; }
# The openstack client against a pretend Glance: one file per image.
openstack() {
    record "openstack $*"
    local verb='' name='' arg
    for arg in "$@"; do
        if [[ -n $verb && -z $name ]]; then name=$arg; fi
        case $arg in show | create) verb=$arg ;; esac
    done
    mkdir -p "$WORK/glance"
    if [[ $verb == show ]]; then
        [[ -f $WORK/glance/$name ]] || { echo "No Image found" >&2; return 1; }
        cat "$WORK/glance/$name"
    else
        echo "id-of-$name" >"$WORK/glance/$name"
    fi
}
DEST=$WORK/opt
STACK_USER=$(id -un)
REGION_NAME=RegionOne
NOVA_CONF_DIR=$WORK/etc/nova
NOVA_CONF=$NOVA_CONF_DIR/nova.conf
GLANCE_API_CONF=$WORK/etc/glance/glance-api.conf
TEMPEST_CONFIG=$WORK/etc/tempest/tempest.conf
SYSCONTAINER_SYSTEMD_DIR=$WORK/systemd
ENABLED_SERVICES=n-cpu,n-api,g-api,tempest
mkdir -p "$NOVA_CONF_DIR" "$WORK/etc/glance" "$WORK/etc/tempest"
'''


def run_phases(work, phases, settings=''):
    """Run plugin phases in bash with the stand-ins, files under ``work``.

    ``settings`` is shell code run before devstack/settings is sourced (as
    local.conf's localrc would be). Returns the CompletedProcess.
    """
    script = [STAND_INS, settings,
              'source %s/devstack/override-defaults' % REPO,
              'source %s/devstack/settings' % REPO]
    for phase in phases:
        script.append('source %s/devstack/plugin.sh %s' % (REPO, phase))
    script.append('declare -p VIRT_DRIVER ENABLED_SERVICES '
                  'SYSCONTAINER_SETUP_HOST DEFAULT_IMAGE_NAME')
    return subprocess.run(['bash', '-c', '\n'.join(script)],
                          env=dict(os.environ, WORK=work),
                          capture_output=True, text=True)


class PluginTest(unittest.TestCase):

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix='devstack-plugin-')
        self.addCleanup(shutil.rmtree, self.work)
        # What tools/setup-host.sh makes, in a private place.
        self.host_conf = self.path('etc/nova-syscontainer')
        os.makedirs(self.host_conf)
        self.write('etc/nova-syscontainer/client.crt', 'CERT\n')
        self.write('etc/nova-syscontainer/client.key', 'KEY\n')
        self.write('etc/nova-syscontainer/lxd-server.crt', 'SERVER\n')
        self.image = self.write('cache/busybox-counter.tar.gz', 'tarball')
        self.setup_host = self.write(
            'setup-host-stub.sh',
            '#!/bin/bash\n'
            'echo "setup-host $* uid=$(id -u)" >>"$WORK/calls.log"\n')
        os.chmod(self.setup_host, 0o755)

    def path(self, rel):
        return os.path.join(self.work, rel)

    def write(self, rel, text):
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(textwrap.dedent(text))
        return path

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def ini(self, rel):
        parser = configparser.ConfigParser(interpolation=None,
                                           default_section='@none@')
        parser.optionxform = str
        parser.read(self.path(rel))
        return parser

    def calls(self):
        return self.read('calls.log').splitlines()

    def run_plugin(self, *phases, settings='', check=True):
        """Source settings and plugin.sh once per phase, like stack.sh."""
        proc = run_phases(self.work, phases, '\n'.join([
            'SYSCONTAINER_SETUP_HOST=%s' % self.setup_host,
            'SYSCONTAINER_HOST_CONF_DIR=%s' % self.host_conf,
            'SYSCONTAINER_IMAGE_FILE=%s' % self.image,
            settings]))
        if check:
            self.assertEqual(0, proc.returncode, proc.stderr)
        return proc

    # -- settings ---------------------------------------------------------
    def test_settings_select_the_driver_and_the_real_host_script(self):
        out = self.run_plugin(settings='unset SYSCONTAINER_SETUP_HOST'
                              ).stdout
        self.assertIn('VIRT_DRIVER="syscontainer"', out)
        self.assertIn(',nova-syscontainer', out)
        self.assertIn('SYSCONTAINER_SETUP_HOST="%s/tools/setup-host.sh"'
                      % REPO, out)
        self.assertIn('DEFAULT_IMAGE_NAME="busybox-counter"', out)
        self.assertTrue(os.access(os.path.join(REPO, 'tools/setup-host.sh'),
                                  os.X_OK))

    # -- pre-install --------------------------------------------------------
    def test_pre_install_runs_the_host_script_as_root(self):
        self.run_plugin('stack pre-install', settings=(
            'SYSCONTAINER_SETUP_HOST_ARGS="--second-daemon --verify"'))
        calls = self.calls()
        self.assertIn('sudo %s --second-daemon --verify' % self.setup_host,
                      calls)
        self.assertIn('setup-host --second-daemon --verify uid=%d'
                      % os.getuid(), calls)

    def test_pre_install_stops_when_the_host_script_fails(self):
        self.write('setup-host-stub.sh', '#!/bin/bash\nexit 1\n')
        proc = self.run_plugin('stack pre-install', check=False)
        self.assertEqual(3, proc.returncode)
        self.assertIn('setup-host-stub.sh failed', proc.stderr)

    # -- install -------------------------------------------------------------
    def test_install_is_not_editable_and_uses_the_project_pins(self):
        uc = self.write('requirements/upper-constraints.txt', '''\
            cryptography===43.0.3
            nova-client===1.0
            pylxd===2.3.9
            ''')
        self.run_plugin('stack install', settings=(
            'REQUIREMENTS_DIR=%s' % os.path.dirname(uc)))
        self.assertIn('setup_install %s' % REPO, self.calls())
        ours = {}
        with open(os.path.join(REPO, 'upper-constraints.txt')) as f:
            for line in f:
                if '==' in line and not line.startswith('#'):
                    name, version = line.strip().split('==')
                    ours[name.lower()] = version
        with open(uc) as f:
            pins = dict(line.strip().split('===') for line in f)
        self.assertEqual(ours['cryptography'], pins['cryptography'])
        self.assertEqual(ours['pylxd'], pins['pylxd'])
        self.assertNotEqual('43.0.3', pins['cryptography'])
        self.assertEqual('1.0', pins['nova-client'])

    # -- post-config ---------------------------------------------------------
    def load_nova_conf(self):
        conf = cfg.ConfigOpts()
        sc_conf.register_opts(conf)
        conf.register_opt(cfg.StrOpt('compute_driver'))
        conf.register_opt(cfg.BoolOpt('debug'))
        conf(args=[], default_config_files=[self.path('etc/nova/nova.conf')])
        return conf

    def test_post_config_writes_nova_conf_through_the_shared_writer(self):
        self.write('etc/nova/nova.conf', '''\
            [DEFAULT]
            # kept
            debug = True
            ''')
        self.run_plugin('stack post-config', settings=(
            'SYSCONTAINER_CONF_OPTS="root_disk_size_unenforceable=warn '
            'allow_nesting=true"'))
        conf = self.load_nova_conf()
        nova_dir = self.path('etc/nova')
        self.assertEqual('syscontainer.SysContainerDriver',
                         conf.compute_driver)
        self.assertTrue(conf.debug)
        self.assertIn('# kept', self.read('etc/nova/nova.conf'))
        sc = conf.syscontainer
        self.assertEqual('https://127.0.0.1:8443', sc.endpoint)
        self.assertEqual(nova_dir + '/syscontainer/client.crt',
                         sc.client_cert)
        self.assertEqual(nova_dir + '/syscontainer/client.key',
                         sc.client_key)
        self.assertEqual(self.host_conf + '/lxd-server.crt', sc.server_cert)
        self.assertEqual('quota', sc.storage_pool)
        self.assertEqual('warn', sc.root_disk_size_unenforceable)
        self.assertTrue(sc.allow_nesting)
        self.assertIsNone(sc.migration_endpoint)
        # nova-compute (STACK_USER) can read its copy of the key; nobody
        # else can.
        key = os.stat(sc.client_key)
        self.assertEqual(0o600, key.st_mode & 0o777)
        self.assertEqual(os.getuid(), key.st_uid)
        with open(sc.client_key) as f:
            self.assertEqual('KEY\n', f.read())

    def test_incus_kind_picks_endpoint_certificate_and_host_script(self):
        self.write('etc/nova-syscontainer/incus-server.crt', 'SERVER\n')
        self.run_plugin('stack pre-install', 'stack post-config', settings=(
            'SYSCONTAINER_DAEMON_KIND=incus'))
        self.assertIn('sudo %s --incus' % self.setup_host, self.calls())
        sc = self.load_nova_conf().syscontainer
        self.assertEqual('https://127.0.0.1:8543', sc.endpoint)
        self.assertEqual(self.host_conf + '/incus-server.crt',
                         sc.server_cert)
        self.assertEqual('incus', sc.daemon_kind)

    def test_lxd_is_the_default_kind(self):
        self.run_plugin('stack post-config')
        self.assertEqual('lxd', self.load_nova_conf().syscontainer
                         .daemon_kind)

    def test_an_unknown_kind_is_refused(self):
        proc = self.run_plugin(settings='SYSCONTAINER_DAEMON_KIND=docker',
                               check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('must be lxd or incus', proc.stdout + proc.stderr)

    def test_post_config_migration_endpoint_and_unix_socket(self):
        self.run_plugin('stack post-config', settings=(
            'SYSCONTAINER_ENDPOINT=/var/lib/lxd/unix.socket\n'
            'SYSCONTAINER_MIGRATION_ENDPOINT=https://192.0.2.5:8443'))
        sc = self.load_nova_conf().syscontainer
        self.assertEqual('/var/lib/lxd/unix.socket', sc.endpoint)
        self.assertEqual('https://192.0.2.5:8443', sc.migration_endpoint)
        self.assertIsNone(sc.client_cert)
        self.assertFalse(os.path.exists(self.path('etc/nova/syscontainer')))

    def test_post_config_refuses_a_malformed_option(self):
        proc = self.run_plugin('stack post-config', check=False,
                               settings='SYSCONTAINER_CONF_OPTS=nonsense')
        self.assertEqual(3, proc.returncode)
        self.assertIn("'nonsense' is not", proc.stderr)

    def test_post_config_glance_accepts_bare_raw(self):
        self.write('etc/glance/glance-api.conf', '''\
            [DEFAULT]
            disk_formats = ami,ari,aki,vhd,vmdk,qcow2
            [image_format]
            container_formats = bare,ovf
            ''')
        self.run_plugin('stack post-config')
        glance = self.ini('etc/glance/glance-api.conf')
        self.assertEqual('ami,ari,aki,vhd,vmdk,qcow2,raw',
                         glance.get('image_format', 'disk_formats'))
        self.assertEqual('bare,ovf',
                         glance.get('image_format', 'container_formats'))

    def test_post_config_leaves_glance_defaults_alone(self):
        self.write('etc/glance/glance-api.conf', '[DEFAULT]\ndebug = True\n')
        self.run_plugin('stack post-config')
        glance = self.ini('etc/glance/glance-api.conf')
        # Glance's defaults accept bare and raw already.
        self.assertFalse(glance.has_section('image_format'))

    # DevStack's lib/horizon helper, as far as the plugin uses it (a
    # top-level option: the old line dropped, the new one appended).
    HORIZON_STAND_IN = textwrap.dedent(r'''
        HORIZON_DIR=$WORK/horizon
        _horizon_config_set() {
            sed -e "/^$3/d" -i "$1"
            echo "$3 = $4" >>"$1"
        }
        ''')

    def test_post_config_horizon_console_tab_is_the_serial_console(self):
        settings = self.write(
            'horizon/openstack_dashboard/local/local_settings.py',
            'DEBUG = False\nCONSOLE_TYPE = "AUTO"\n')
        self.run_plugin('stack post-config', settings=(
            self.HORIZON_STAND_IN +
            'ENABLED_SERVICES+=,n-sproxy,horizon\n'
            'SYSCONTAINER_SERIAL_PROXYCLIENT_ADDRESS=192.0.2.7'))
        with open(settings) as f:
            self.assertEqual('DEBUG = False\nCONSOLE_TYPE = "SERIAL"\n',
                             f.read())
        self.assertEqual('192.0.2.7', self.ini('etc/nova/nova.conf').get(
            'serial_console', 'proxyclient_address'))

    def test_post_config_without_the_serial_proxy_leaves_consoles(self):
        settings = self.write(
            'horizon/openstack_dashboard/local/local_settings.py',
            'CONSOLE_TYPE = "AUTO"\n')
        self.run_plugin('stack post-config', settings=(
            self.HORIZON_STAND_IN + 'ENABLED_SERVICES+=,horizon\n'
            'SYSCONTAINER_SERIAL_PROXYCLIENT_ADDRESS=192.0.2.7'))
        with open(settings) as f:
            self.assertEqual('CONSOLE_TYPE = "AUTO"\n', f.read())
        self.assertFalse(self.ini('etc/nova/nova.conf').has_section(
            'serial_console'))

    # -- extra ---------------------------------------------------------------
    def test_extra_uploads_the_test_image_once(self):
        self.run_plugin('stack extra', 'stack extra')
        creates = [c for c in self.calls() if ' image create ' in c]
        self.assertEqual(1, len(creates), self.calls())
        create = creates[0]
        for part in ('image create busybox-counter --public',
                     '--container-format bare --disk-format raw',
                     '--property architecture=%s' % os.uname().machine,
                     '--property hypervisor_type=lxc',
                     '--property vm_mode=exe',
                     '--file %s' % self.image):
            self.assertIn(part, create)

    def test_extra_restarts_nova_compute_as_root(self):
        self.run_plugin('stack extra')
        dropin = self.ini(
            'systemd/devstack@n-cpu.service.d/nova-syscontainer.conf')
        self.assertEqual('root', dropin.get('Service', 'User'))
        self.assertEqual('root', dropin.get('Service', 'Group'))
        calls = self.calls()
        reload = calls.index('systemctl daemon-reload')
        restart = calls.index('systemctl restart devstack@n-cpu.service')
        self.assertLess(reload, restart)

    def test_extra_leaves_nova_compute_alone_when_asked(self):
        self.run_plugin('stack extra', 'stack test-config', settings=(
            'SYSCONTAINER_COMPUTE_AS_ROOT=False'))
        self.assertFalse(os.path.exists(self.path('systemd')))
        self.assertEqual([], [c for c in self.calls()
                              if c.startswith('systemctl')])
        tempest = self.ini('etc/tempest/tempest.conf')
        self.assertEqual('False', tempest.get('compute-feature-enabled',
                                              'interface_attach'))

    def test_extra_without_the_image_says_so(self):
        os.unlink(self.image)
        proc = self.run_plugin('stack extra', check=False)
        self.assertEqual(3, proc.returncode)
        self.assertIn('no test image at %s' % self.image, proc.stderr)

    # -- test-config ---------------------------------------------------------
    def test_test_config_sets_image_and_unsupported_features(self):
        self.write('etc/tempest/tempest.conf', '''\
            [compute-feature-enabled]
            stable_rescue = True
            vnc_console = True
            ''')
        self.run_plugin('stack extra', 'stack test-config')
        tempest = self.ini('etc/tempest/tempest.conf')
        self.assertEqual('id-of-busybox-counter',
                         tempest.get('compute', 'image_ref'))
        self.assertEqual('id-of-busybox-counter',
                         tempest.get('compute', 'image_ref_alt'))
        features = dict(tempest.items('compute-feature-enabled'))
        for off in ('stable_rescue', 'vnc_console', 'spice_console',
                    'attach_encrypted_volume', 'config_drive',
                    'live_migration', 'cold_migration'):
            self.assertEqual('False', features[off], off)
        for on in ('console_output', 'pause', 'suspend', 'resize',
                   'interface_attach', 'snapshot', 'shelve', 'rescue',
                   'shelve_migrate', 'serial_console'):
            self.assertEqual('True', features[on], on)
        self.assertEqual('False', tempest.get('validation', 'run_validation'))

    def test_test_config_migrations_with_an_endpoint(self):
        self.run_plugin('stack extra', 'stack test-config', settings=(
            'SYSCONTAINER_MIGRATION_ENDPOINT=https://192.0.2.5:8443'))
        tempest = self.ini('etc/tempest/tempest.conf')
        self.assertEqual('True', tempest.get('compute-feature-enabled',
                                             'live_migration'))
        self.assertEqual('True', tempest.get('compute-feature-enabled',
                                             'cold_migration'))

    def test_test_config_without_the_image_fails(self):
        proc = self.run_plugin('stack test-config', check=False)
        self.assertEqual(3, proc.returncode)
        self.assertIn('busybox-counter is not in Glance', proc.stderr)

    def test_tempest_flags_follow_the_support_matrix(self):
        proc = self.run_plugin('unstack', settings=(
            'trap \'printf "%s\\n" "${SYSCONTAINER_TEMPEST_FEATURES[@]}" '
            '>"$WORK/flags"\' EXIT'))
        self.assertEqual(0, proc.returncode)
        flags = dict(line.split('=') for line in
                     self.read('flags').split())
        spec = importlib.util.spec_from_file_location(
            'support_matrix_data',
            os.path.join(REPO, 'doc', 'ext', 'support_matrix_data.py'))
        data = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(data)
        _title, features = data.load(
            os.path.join(REPO, 'doc', 'source', 'support-matrix.ini'))
        levels = {f.key: f.level for f in features}
        self.assertEqual(set(TEMPEST_TO_MATRIX), set(flags))
        for flag, key in TEMPEST_TO_MATRIX.items():
            if flag in NEEDS_MORE_THAN_THE_TEMPEST_IMAGE:
                self.assertEqual(('partial', 'False'),
                                 (levels[key], flags[flag]), flag)
                continue
            if flag in NOT_PROVED_PART:
                self.assertIn(levels[key], data.CLAIMED, flag)
                self.assertEqual('False', flags[flag], flag)
                continue
            self.assertEqual(str(levels[key] in data.CLAIMED), flags[flag],
                             'Tempest %s vs [%s] %s'
                             % (flag, key, levels[key]))

    def test_validation_only_when_asked(self):
        def triples(*args):
            out = subprocess.run(
                ['bash', '-c', '. "$0"; syscontainer_tempest_triples "$@"',
                 os.path.join(REPO, 'tools', 'lib', 'syscontainer-conf.sh')]
                + list(args), check=True, capture_output=True,
                text=True).stdout.split('\n')
            return {(out[i], out[i + 1]): out[i + 2]
                    for i in range(0, len(out) - 2, 3)}
        # DevStack's busybox image has no SSH server: off unless asked
        # (tools/cloud.sh tempest --validation, with the stock guest).
        self.assertEqual('False', triples('False', 'True')[
            ('validation', 'run_validation')])
        got = triples('False', 'True', 'True')
        self.assertEqual('True', got[('validation', 'run_validation')])
        self.assertEqual('True', got[('compute-feature-enabled',
                                      'metadata_service')])
        self.assertEqual('False', got[('compute-feature-enabled',
                                       'config_drive')])
        self.assertEqual('False', got[('compute-feature-enabled',
                                       'change_password')])

    # -- disabled ----------------------------------------------------------
    def test_nothing_happens_when_the_service_is_disabled(self):
        self.run_plugin('stack pre-install', 'stack post-config',
                        'stack extra', settings=(
                            'enable_service() { :; }'))
        self.assertEqual([], self.calls())
        self.assertFalse(os.path.exists(self.path('etc/nova/nova.conf')))


if __name__ == '__main__':
    unittest.main()
