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
"""Configuration options of the ``[syscontainer]`` group.

``oslo-config-generator --namespace nova_syscontainer`` renders them (see
``etc/nova-syscontainer-config-generator.conf``); the ``oslo.config.opts``
entry point points at :func:`list_opts`.
"""

import copy

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'syscontainer',
    title='System container driver options',
    help='Options for the nova-syscontainer compute driver, which runs '
         'instances as LXD system containers.')

daemon_opts = [
    cfg.StrOpt(
        'endpoint',
        default='/var/lib/lxd/unix.socket',
        help='Where the container daemon listens: the path of its local '
             'unix socket (for example /var/lib/lxd/unix.socket), or an '
             'https:// URL of a remote daemon (for example '
             'https://127.0.0.1:8443), which then needs client_cert and '
             'client_key. Tested with LXD 5.0 and Incus 6.0 '
             '(/var/lib/incus/unix.socket).'),
    cfg.StrOpt(
        'client_cert',
        help='PEM client certificate presented to an https endpoint. The '
             'daemon must trust it (lxc config trust add).'),
    cfg.StrOpt(
        'client_key',
        help='PEM private key of client_cert.'),
    cfg.StrOpt(
        'server_cert',
        help='PEM certificate of the daemon (its server.crt). When set, the '
             'connection is accepted only from a daemon presenting exactly '
             'this certificate (pinned by fingerprint). When unset, an https '
             'endpoint is verified against the system CA store. Environment '
             'variables such as REQUESTS_CA_BUNDLE never change this.'),
    cfg.BoolOpt(
        'insecure',
        default=False,
        help='Do not verify the https daemon\'s certificate at all. For '
             'tests only. It applies to this node\'s own daemon: the '
             'daemons of migration peers are always verified against the '
             'certificate they publish.'),
    cfg.StrOpt(
        'project',
        default='default',
        help='Daemon project holding this compute node\'s containers and '
             'images. It must exist. On LXD 5.0 a CRIU restore (resume, '
             'live migration) fails in any project but "default": the '
             'restored container stops again at once (measured with LXD '
             '5.0.2), so keep "default" where enable_checkpoint is set.'),
    cfg.IntOpt(
        'api_timeout',
        default=60,
        min=1,
        help='Seconds one HTTP request to the daemon may take before it is '
             'abandoned and reported as a hypervisor failure.'),
    cfg.IntOpt(
        'operation_timeout',
        default=600,
        min=1,
        help='Seconds to wait for one background operation of the daemon '
             '(creating a container, importing an image, a stateful stop) '
             'to finish. Nothing waits longer than this.'),
    cfg.IntOpt(
        'busy_retries',
        default=5,
        min=0,
        help='How many times a call that the daemon refuses because the '
             'instance is busy with another operation is retried (one '
             'second apart).'),
]

instance_opts = [
    cfg.StrOpt(
        'storage_pool',
        default='default',
        help='Storage pool for root disks. Root disk sizes (flavor root_gb) '
             'are enforced only on pools whose driver supports quotas '
             '(btrfs, zfs, lvm, ceph); see root_disk_size_unenforceable.'),
    cfg.StrOpt(
        'root_disk_size_unenforceable',
        default='refuse',
        choices=[('refuse', 'fail the build with a clear fault'),
                 ('warn', 'build the instance without a disk size limit '
                          'and log a warning')],
        help='What to do with a flavor whose root_gb is not 0 when '
             'storage_pool cannot enforce a disk size (a dir pool).'),
    cfg.BoolOpt(
        'allow_privileged',
        default=False,
        help='Honour the flavor extra spec syscontainer:privileged=true, '
             'which runs a container with host root as its root. Without '
             'this option such a flavor fails to build with a clear fault. '
             'Containers are unprivileged by default.'),
    cfg.BoolOpt(
        'allow_nesting',
        default=False,
        help='Honour the flavor extra spec syscontainer:nesting=true '
             '(containers inside the container). Without this option such '
             'a flavor fails to build with a clear fault.'),
    cfg.IntOpt(
        'default_processes',
        default=2000,
        min=0,
        max=4194304,
        help='Most processes (and threads) a container may run at once '
             'when its flavor sets no syscontainer:processes: the pids '
             'cgroup enforces it (pids.max). Without a limit one tenant\'s '
             'fork bomb can exhaust the PIDs of the whole host, and every '
             'other container and host service with it. Too low a value '
             'breaks guests that run many threads (a database, a JVM); '
             'flavors that need more say so with syscontainer:processes. '
             '0 sets no limit.'),
    cfg.StrOpt(
        'cgroup_version',
        default='auto',
        choices=[('auto', 'read it from this host\'s /sys/fs/cgroup (right '
                          'when the daemon is local)'),
                 ('1', 'legacy hierarchies, one per controller'),
                 ('2', 'the unified hierarchy')],
        help='cgroup version of the daemon\'s host. Exact CPU weights and '
             'CFS quotas (quota:cpu_shares, quota:cpu_period, '
             'quota:cpu_quota) are written as raw cgroup keys, which differ '
             'between versions.'),
    cfg.ListOpt(
        'profiles',
        default=['default'],
        help='Daemon profiles applied to every instance, in order. The '
             'driver adds its own settings on top; the profiles must not '
             'carry a root disk on another pool than storage_pool.'),
    cfg.BoolOpt(
        'enable_checkpoint',
        default=True,
        help='Prepare every container for CRIU checkpoint/restore, which '
             'suspend/resume and live migration need. The host needs a CRIU '
             'that works with its kernel.'),
    cfg.ListOpt(
        'checkpoint_raw_lxc',
        default=['lxc.pty.max = 1'],
        bounds=False,
        help='raw.lxc lines written into each container when '
             'enable_checkpoint is set. "lxc.pty.max = 1": LXD 5.0.2 then '
             'gives the console a host pty and PID 1 /dev/null as stdio; '
             'without it a CRIU restore fails on the console. Only guest '
             'programs that open /dev/console (a getty on console) are on '
             'the serial console then. On a host whose kernel has '
             'no AppArmor the driver adds "lxc.apparmor.profile =" itself '
             '(see apparmor); never add that line here for a host with '
             'AppArmor: it replaces the daemon\'s AppArmor confinement of '
             'every container.'),
    cfg.IntOpt(
        'console_log_max_bytes',
        default=100 * 1024,
        min=1024,
        help='The most of a container\'s console log returned by '
             'get_console_output (its newest bytes).'),
    cfg.IntOpt(
        'console_log_keep_bytes',
        default=64 * 1024,
        min=0,
        help='The most of a container\'s console log the driver keeps in '
             'the container\'s config (its newest bytes, base64), so that '
             'the log survives a CRIU restore and a migration: LXD 5.0.2 '
             'hands out each console byte only once while the container '
             'runs, and none after a restore. 0 keeps nothing.'),
]

migration_opts = [
    cfg.BoolOpt(
        'allow_live_migration',
        default=True,
        help='Accept live migrations to this node (CRIU checkpoint on the '
             'source daemon, restore on this one). Needs '
             'migration_endpoint and enable_checkpoint.'),
    cfg.StrOpt(
        'migration_endpoint',
        help='https URL under which other nodes\' daemons and computes '
             'reach this node\'s daemon, for example https://10.0.0.5:8443. '
             'It is published to the other computes (in this node\'s '
             'compute record) with the daemon\'s certificate. The daemons '
             'must trust each other\'s certificates, and every daemon must '
             'trust this node\'s client_cert. Without it this node can '
             'neither send nor receive a live migration.'),
    cfg.IntOpt(
        'migration_timeout',
        default=300,
        min=10,
        help='Seconds a live migration may take before it is rolled back '
             '(the source keeps running).'),
    cfg.StrOpt(
        'criu_path',
        default='criu',
        help='The CRIU program the daemon on this host runs (a name looked '
             'up in PATH, or a path). Before a live migration is accepted '
             '(destination) or sent (source), nova-compute runs "<criu_path> '
             'check" (in the privsep daemon of [nova_syscontainer_criu]) and '
             'refuses the migration unless it passes. The program must be '
             'named criu and owned by root, in directories only root may '
             'write. Empty skips the check.'),
]

image_opts = [
    cfg.StrOpt(
        'image_spool_dir',
        default='$state_path/syscontainer/spool',
        help='Directory where Glance images are streamed and verified '
             'before they are imported into the daemon. An image is '
             'removed from it as soon as the daemon holds it.'),
    cfg.BoolOpt(
        'image_templates',
        default=False,
        help='Create containers as copies of a per-image template on a '
             'copy-on-write storage pool (btrfs, zfs) instead of from the '
             'image. LXD 5.0 shifts every new unprivileged container\'s '
             'root file system on disk at its first start, which takes '
             'seconds for a full distribution image (about 3 s for a '
             '350 MB Debian guest); a template is started once (with an '
             'init that exits at once, so no guest program runs in it) to '
             'be shifted, and its copies start with no shift. Costs one '
             'stopped container per image and pool, removed with the '
             'image by the image cache manager, and a slower first spawn '
             'of each image. Ignored, with a warning, on a pool that is '
             'not copy-on-write; instances with their own id map '
             '(privileged, isolated) are always created from the image.'),
]

network_opts = [
    cfg.StrOpt(
        'ovs_datapath_type',
        default='system',
        help='OVS datapath type used for a port whose binding does not '
             'name one (Neutron\'s OVS and OVN drivers do). os-vif sets it '
             'on the integration bridge, so it must be the bridge\'s own: '
             '"netdev" (userspace datapath) on a kernel without the '
             'openvswitch module.'),
]

daemon_kind_opts = [
    cfg.StrOpt(
        'daemon_kind',
        default='auto',
        choices=[('auto', 'read it from the daemon (GET /1.0 '
                          'environment.server)'),
                 ('lxd', 'LXD 5.0'), ('incus', 'Incus 6.0')],
        help='The kind of container daemon behind endpoint. "auto" (the '
             'default) reads it from the daemon when nova-compute starts; '
             'another value is an assertion: nova-compute refuses to start '
             'when the daemon reports another kind, and uses it for a '
             'daemon that reports none. Containers move only between nodes '
             'whose daemons are of one kind.'),
]

scale_opts = [
    cfg.IntOpt(
        'instance_list_cache_seconds',
        default=60, min=0,
        help='How long the listing of this node\'s containers that '
             'list_instances (and Nova\'s power-state sync, through '
             'get_num_instances) fetches in one daemon call may answer '
             'get_info(use_cache=True) for a container it saw running, '
             'instead of one daemon call per instance. Only "running" is '
             'answered from it (a stale "running" makes Nova do nothing '
             'harmful); any other state is read afresh. 0 reads every '
             'instance afresh.'),
]


rescue_opts = [
    cfg.StrOpt(
        'daemon_dir',
        help='The daemon\'s data directory (LXD_DIR) as the daemon sees '
             'it, under which it mounts its storage pools '
             '(storage-pools/<pool>/containers/<name>/rootfs). Rescue '
             'gives the rescue container the original container\'s root '
             'file system by that path. Unset: the directory of a '
             'unix-socket endpoint, else /var/lib/lxd for LXD and '
             '/var/lib/incus for Incus (a snap LXD: '
             '/var/snap/lxd/common/lxd).'),
]


checkpoint_opts = [
    cfg.StrOpt(
        'apparmor',
        default='auto',
        choices=[('auto', 'read /sys/module/apparmor/parameters/enabled on '
                          'this host when the daemon is local; a remote '
                          'daemon\'s host is taken to have AppArmor'),
                 ('enabled', 'the daemon\'s host has AppArmor'),
                 ('disabled', 'the daemon\'s host has no AppArmor')],
        help='Whether the kernel of the daemon\'s host has AppArmor, read '
             'once at start. Only where it has none does a container '
             'prepared for checkpointing get the raw.lxc line '
             '"lxc.apparmor.profile =" (LXC then applies no profile, which '
             'CRIU\'s restore needs there). Where it has AppArmor the '
             'daemon\'s own profile stays on every container.'),
    cfg.BoolOpt(
        'checkpoint_deny_uts_namespace',
        default=True,
        help='With enable_checkpoint, make unshare(CLONE_NEWUTS) fail with '
             'EPERM inside each new container (a security.syscalls.deny '
             'seccomp line). CRIU cannot dump a task with a UTS namespace '
             'of its own; systemd\'s ProtectHostname= (systemd-logind in a '
             'stock Debian 12 guest) then runs the unit with the '
             'container\'s host name namespace instead, with a warning in '
             'the journal. A guest program that needs its own UTS '
             'namespace fails with EPERM. The line is written at create '
             'and kept by resize and migration; containers created before '
             'get it at their next rebuild.'),
]

image_safety_opts = [
    cfg.IntOpt(
        'image_max_download_mb',
        default=10240,
        min=1,
        help='Largest image, in MiB as Glance stores it (compressed), '
             'that is downloaded and imported. A larger one fails the '
             'build with a clear fault before (when Glance states its size) '
             'or while it is downloaded.'),
    cfg.IntOpt(
        'image_max_unpacked_mb',
        default=51200,
        min=1,
        help='Most MiB an image tarball may decompress to. The safety scan '
             'counts the decompressed stream and refuses a member whose '
             'declared size passes this from its header, so a '
             'decompression bomb costs nova-compute at most this much '
             'reading. The flavor\'s root disk, where it sets one, bounds '
             'the unpacked size too.'),
    cfg.IntOpt(
        'image_max_members',
        default=1000000,
        min=1,
        help='Most files, directories and links an image tarball may hold '
             '(a Debian or Ubuntu root filesystem holds 10,000 to 60,000).'),
    cfg.IntOpt(
        'image_scan_timeout',
        default=300,
        min=1,
        help='Seconds the safety scan of one image may take before the '
             'image is refused. The scan runs while the image lock is held, '
             'so it bounds how long other spawns of that image wait.'),
    cfg.StrOpt(
        'image_setuid_files',
        default='auto',
        choices=[('auto', 'refuse them where allow_privileged is set, '
                          'accept them otherwise'),
                 ('refuse', 'refuse every image holding one'),
                 ('accept', 'accept them')],
        help='What to do with an image holding setuid or setgid files. '
             'Distributions ship some (su, passwd, mount), so refusing them '
             'refuses every stock distribution image; in an unprivileged '
             'container their owner is an unprivileged host user, so they '
             'grant nothing on the host. In a privileged container the '
             'container\'s root is the host\'s, hence "auto".'),
    cfg.BoolOpt(
        'image_require_hash',
        default=True,
        help='Refuse an image for which Glance gives no hash (os_hash_value '
             'or checksum), whose data therefore cannot be verified. Glance '
             'hashes every image uploaded through its API (and so every '
             'snapshot this driver makes); only an image registered by '
             'location has none, and its data may change behind Glance. The '
             'daemon unpacks images on the host as root, so an unverifiable '
             'one is refused unless this is turned off, in which case it is '
             'accepted with a warning.'),
    cfg.IntOpt(
        'image_download_timeout',
        default=3600,
        min=1,
        help='Seconds the download of one image from Glance may take in '
             'all. The download runs while the image lock is held: when it '
             'is abandoned the lock is released, the spool file removed and '
             'the build fails with a clear fault.'),
    cfg.IntOpt(
        'image_download_stall_timeout',
        default=120,
        min=1,
        help='Seconds a download from Glance may go without receiving any '
             'data before it is abandoned (like image_download_timeout).'),
]

sweep_opts = [
    cfg.BoolOpt(
        'remove_orphan_containers',
        default=True,
        help='In the image cache manager\'s periodic pass ([image_cache] '
             'manager_interval), remove the containers carrying this '
             'node\'s marker whose instance Nova does not have on this host '
             '(left by a create the daemon finished after it timed out, an '
             'instance deleted while this node was away). Instances in a '
             'move, resize, rescue or evacuation are never touched, nor '
             'containers younger than orphan_grace_seconds. Each removal is '
             'logged.'),
    cfg.IntOpt(
        'orphan_grace_seconds',
        default=1800,
        min=0,
        help='Age below which a container is never removed as an orphan, '
             'whatever Nova says of its instance: a create, a migration or '
             'a rescue in flight may not be recorded in Nova yet.'),
]


ALL_OPTS = (daemon_opts + instance_opts + migration_opts + image_opts +
            network_opts + daemon_kind_opts + scale_opts + rescue_opts +
            checkpoint_opts + image_safety_opts + sweep_opts)


def register_opts(conf):
    """Register the ``[syscontainer]`` options on ``conf``."""
    conf.register_group(GROUP)
    conf.register_opts(ALL_OPTS, group=GROUP)


#: oslo.privsep's options of the driver's privsep contexts, registered by
#: oslo.privsep: nova_syscontainer.privsep.net_admin, proc_admin and
#: criu_admin.
PRIVSEP_GROUP = 'nova_syscontainer_privileged'
PROC_PRIVSEP_GROUP = 'nova_syscontainer_proc'
CRIU_PRIVSEP_GROUP = 'nova_syscontainer_criu'


def list_opts():
    """Entry point of ``oslo.config.opts`` for the sample config."""
    from oslo_privsep import priv_context
    return [(GROUP, ALL_OPTS)] + [
        (group, copy.deepcopy(priv_context.OPTS))
        for group in (PRIVSEP_GROUP, PROC_PRIVSEP_GROUP, CRIU_PRIVSEP_GROUP)]


CONF = cfg.CONF
register_opts(CONF)
