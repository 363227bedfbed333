#!/bin/bash
# setup-host.sh - turn a Debian 12 machine (root, no systemd as PID 1) into an
# LXD host for nova-syscontainer.  Idempotent: a second run is a fast no-op, and
# it starts cleanly over the leftovers of a daemon killed with SIGKILL.
#
# What it sets up:
#   - apt packages (lxd, lxd-client, iptables, busybox-static, rsync, btrfs-progs,
#     squashfs-tools, openssl, curl), installing only the missing ones;
#   - CRIU 4.2 or later from Debian forky (testing), unpacked privately under
#     /opt/nova-syscontainer/criu and run through the wrapper /usr/local/sbin/criu
#     (bookworm's criu 3.17 fails on kernel 6.x, and 4.1 cannot dump an inet socket
#     on Linux >= 6.16); forky is never added to the system's apt sources;
#   - lxcfs, started before the daemons (no systemd), so that free, nproc and
#     /proc/uptime inside a container show its limits and its own uptime;
#   - the default LXD daemon (LXD_DIR=/var/lib/lxd, https 127.0.0.1:8443), started
#     with setsid (no systemd), pid file and logs in /var/log/nova-syscontainer/;
#   - storage pools "default" (dir) and "quota" (btrfs on a 3GiB loop file, enforces
#     root disk sizes), a default profile with only a root disk and NO network;
#   - a TLS client certificate for Nova (/etc/nova-syscontainer/client.{crt,key})
#     trusted by the daemon, and the daemon's server certificate in
#     /etc/nova-syscontainer/lxd-server.crt;
#   - a busybox test image (/var/cache/nova-syscontainer/images/busybox-counter.tar.gz),
#     imported into the daemon(s) under the alias "busybox-counter";
#   - optionally (--second-daemon) a second daemon (LXD_DIR=/var/lib/nova-syscontainer/lxd-b,
#     https 127.0.0.1:8444) that trusts the first one and vice versa;
#   - Open vSwitch (Debian's openvswitch-switch) started without systemd, its
#     manager on 127.0.0.1:6640 (os-vif's default), and the integration bridge
#     br-int on the userspace datapath (datapath_type=netdev: this kernel has
#     no openvswitch module), with no address.
# It never creates a managed network and never gives an interface an address.
set -Eeuo pipefail

usage() {
    cat <<'EOF'
Usage: tools/setup-host.sh [--second-daemon] [--incus] [--verify] [-h|--help]

Prepare this machine as an LXD host for nova-syscontainer (idempotent; run as root).

  --second-daemon  also run a second LXD daemon (LXD_DIR=/var/lib/nova-syscontainer/lxd-b,
                   https://127.0.0.1:8444) trusting the first one and vice versa
                   (or set SYSCONTAINER_SECOND_DAEMON=1)
  --incus          also install Incus 6.0 (bookworm-backports, privately) and run its
                   daemon(s) beside LXD: see tools/lib/incus.sh (or SYSCONTAINER_INCUS=1)
  --verify         finish with a self-check on every daemon: boot the test image,
                   stateful stop + start (process state must survive), restart,
                   graceful stop, delete (or set SYSCONTAINER_VERIFY=1)
  -h, --help       show this help

Logs: /var/log/nova-syscontainer/ (setup-host.log, lxd.log, lxd-b.log).
Last line on success: "setup-host: OK ..." with the endpoints.
EOF
}

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
readonly STATE_DIR=/var/lib/nova-syscontainer
readonly LOG_DIR=/var/log/nova-syscontainer
readonly CONF_DIR=/etc/nova-syscontainer
readonly CACHE_DIR=/var/cache/nova-syscontainer
readonly LOG=$LOG_DIR/setup-host.log
readonly LOCK_FILE=/run/lock/nova-syscontainer-setup-host.lock

readonly APT_PACKAGES=(lxd lxd-client lxcfs iptables busybox-static rsync btrfs-progs
                       squashfs-tools openssl curl)

readonly CRIU_ROOT=/opt/nova-syscontainer/criu
readonly CRIU_WRAPPER=/usr/local/sbin/criu
readonly CRIU_SUITE=forky
readonly CRIU_CACHE=$CACHE_DIR/criu-$CRIU_SUITE
readonly CRIU_MIRROR=http://deb.debian.org/debian
# The oldest CRIU that dumps an inet socket on this kernel. Linux 6.16 refuses
# SO_PASSCRED/SO_PASSSEC on non-unix sockets, and CRIU 4.1.1 (trixie) then fails
# every dump of a process with a TCP or UDP socket ("sockets: Can't get 1:16 opt:
# Operation not supported"); fixed in CRIU 4.2 (checkpoint-restore/criu#2718).
readonly CRIU_MIN_VERSION=4.2
# The CRIU configuration file the wrapper hands CRIU (CRIU_CONFIG_FILE), written
# by ensure_criu_config.
readonly CRIU_CONFIG=/etc/nova-syscontainer/criu.conf

# The daemon's whole environment (env -i): PATH finds the criu wrapper first, and a
# proxy on a closed loopback port makes every non-loopback HTTP(S) request of LXD
# (e.g. its daily instance-types download from images.linuxcontainers.org) fail
# at once without even a DNS lookup; LXD never proxies loopback addresses, so the
# daemons still reach each other on 127.0.0.1.
readonly NO_EGRESS_PROXY=http://127.0.0.1:9
readonly DAEMON_ENV=(
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root
    LANG=C.UTF-8
    "https_proxy=$NO_EGRESS_PROXY"
    "http_proxy=$NO_EGRESS_PROXY"
    "no_proxy=127.0.0.1,localhost,::1"
)

readonly LXD_A_NAME=lxd LXD_A_DIR=/var/lib/lxd LXD_A_ADDR=127.0.0.1:8443
readonly LXD_B_NAME=lxd-b LXD_B_DIR=$STATE_DIR/lxd-b LXD_B_ADDR=127.0.0.1:8444
readonly QUOTA_POOL_SIZE=3GiB

readonly CLIENT_CRT=$CONF_DIR/client.crt
readonly CLIENT_KEY=$CONF_DIR/client.key
readonly CLIENT_CERT_NAME=nova-syscontainer

readonly IMAGE_DIR=$CACHE_DIR/images
readonly IMAGE=$IMAGE_DIR/busybox-counter.tar.gz
readonly IMAGE_ALIAS=busybox-counter
# Bump when the image recipe below changes: a cached tarball of another version is rebuilt.
readonly IMAGE_VERSION=2
readonly BOOT_MESSAGE="nova-syscontainer test image booted"

readonly RAW_LXC_CR=$'lxc.pty.max = 1\nlxc.apparmor.profile ='

SECOND_DAEMON=${SYSCONTAINER_SECOND_DAEMON:-0}
VERIFY=${SYSCONTAINER_VERIFY:-0}
VERIFY_CONTAINER=""     # set while a self-check container exists (cleaned up on exit)
VERIFY_DIR=""
SUMMARY=()

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
say() { printf 'setup-host: %s\n' "$*"; printf '=== %s %s\n' "$(date '+%F %T')" "$*" >>"$LOG"; }

die() {
    printf 'setup-host: FAILED: %s\n' "$*" >&2
    printf 'setup-host: see %s\n' "$LOG" >&2
    printf '!!! FAILED: %s\n' "$*" >>"$LOG" 2>/dev/null || true
    exit 1
}

on_error() {
    local rc=$? line=$1 cmd=$2
    die "line $line: '$cmd' exited with status $rc"
}

cleanup() {
    if [[ -n $VERIFY_CONTAINER ]]; then
        LXD_DIR=$VERIFY_DIR timeout 60 lxc delete --force "$VERIFY_CONTAINER" >>"$LOG" 2>&1 || true
    fi
}

# close_inherited_fds: close every fd above 2 of this (sub)shell, before it
# execs a daemon. Not only this script's own lock (fd 9): a caller's too, such as
# the functional host lock of "flock LOCK tools/setup-host.sh" (fd 3), which a
# daemon that inherited it held until it exited, so that no test could run.
close_inherited_fds() {
    local fd
    for fd in /proc/self/fd/*; do
        fd=${fd##*/}
        if ((fd > 2)); then
            eval "exec $fd>&-"
        fi
    done
}

# run CMD...: run a command with its output going to the log; on failure show
# the end of the log and stop.
run() {
    printf '+ %s\n' "$*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 15 "$LOG" | sed 's/^/  | /' >&2
        die "command failed: $*"
    fi
}

# at DIR lxc ARGS...: talk to the daemon of LXD_DIR=DIR (bounded in time).
at() {
    local dir=$1
    shift
    LXD_DIR=$dir timeout 120 "$@"
}

# cert_fingerprint FILE: lower-case hex SHA-256 of a PEM certificate, as LXD prints it.
cert_fingerprint() {
    openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f'
}

# install_if_changed SRC DST MODE: copy only when the content differs.
install_if_changed() {
    cmp -s "$1" "$2" || install -m "$3" "$1" "$2"
}

# ---------------------------------------------------------------------------
# 1. apt packages
# ---------------------------------------------------------------------------
ensure_packages() {
    local missing=() pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    say "installing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    run apt-get update -q
    run apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------
# 1b. Open vSwitch, userspace datapath (no kernel module needed)
# ---------------------------------------------------------------------------
readonly OVS_RUN_DIR=/var/run/openvswitch
readonly OVS_DB=/var/lib/openvswitch/conf.db
readonly OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
readonly OVS_BRIDGE=${SYSCONTAINER_OVS_BRIDGE:-br-int}

# ovs_running NAME: the OVS daemon NAME (ovsdb-server, ovs-vswitchd) is alive.
ovs_running() {
    local pidfile=$OVS_RUN_DIR/$1.pid
    [[ -s $pidfile ]] && alive "$(cat "$pidfile")"
}

ensure_ovs() {
    local status
    status=$(dpkg-query -W -f '${db:Status-Status}' openvswitch-switch 2>/dev/null || true)
    if [[ $status != installed ]]; then
        say "installing openvswitch-switch"
        export DEBIAN_FRONTEND=noninteractive
        run apt-get update -q
        run apt-get install -y -q --no-install-recommends openvswitch-switch
    fi
    mkdir -p "$OVS_RUN_DIR" "$(dirname "$OVS_DB")"
    if [[ ! -s $OVS_DB ]]; then
        run ovsdb-tool create "$OVS_DB" "$OVS_SCHEMA"
    elif [[ $(ovsdb-tool needs-conversion "$OVS_DB" "$OVS_SCHEMA") == yes ]]; then
        run ovsdb-tool convert "$OVS_DB" "$OVS_SCHEMA"
    fi
    # Killed daemons leave pid files and the socket; the daemons replace them.
    if ! ovs_running ovsdb-server; then
        say "starting ovsdb-server"
        run ovsdb-server "$OVS_DB" --remote="punix:$OVS_RUN_DIR/db.sock" \
            --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
            --pidfile="$OVS_RUN_DIR/ovsdb-server.pid" --detach \
            --log-file="$LOG_DIR/ovsdb-server.log" 9>&-
    fi
    run ovs-vsctl --timeout=30 --no-wait init
    # os-vif's [os_vif_ovs] ovsdb_connection default; loopback only.
    run ovs-vsctl --timeout=30 --no-wait set-manager ptcp:6640:127.0.0.1
    if ! ovs_running ovs-vswitchd; then
        say "starting ovs-vswitchd"
        run ovs-vswitchd "unix:$OVS_RUN_DIR/db.sock" \
            --pidfile="$OVS_RUN_DIR/ovs-vswitchd.pid" --detach \
            --log-file="$LOG_DIR/ovs-vswitchd.log" 9>&-
    fi
    run ovs-vsctl --timeout=30 --may-exist add-br "$OVS_BRIDGE" -- \
        set bridge "$OVS_BRIDGE" datapath_type=netdev
    # Ports whose kernel interface is gone (a killed test run) are dropped.
    # Only those of type "system" (a kernel interface): patch ports (the
    # Neutron agent's int-br-ex) and internal ports never have one there.
    local port type
    for port in $(ovs-vsctl --timeout=30 list-ports "$OVS_BRIDGE"); do
        [[ -e /sys/class/net/$port ]] && continue
        type=$(ovs-vsctl --timeout=30 get interface "$port" type 2>/dev/null) || type='""'
        [[ $type == '""' || $type == system ]] || continue
        run ovs-vsctl --timeout=30 del-port "$OVS_BRIDGE" "$port"
    done
    [[ $(ovs-vsctl --timeout=30 get bridge "$OVS_BRIDGE" datapath_type) == netdev ]] ||
        die "$OVS_BRIDGE is not on the netdev datapath"
}

# ---------------------------------------------------------------------------
# 2. CRIU >= 4.2 from forky, private
# ---------------------------------------------------------------------------
# criu_wrapper_text: the content of $CRIU_WRAPPER.
criu_wrapper_text() {
    cat <<EOF
#!/bin/sh
# Installed by nova-syscontainer tools/setup-host.sh: CRIU from Debian $CRIU_SUITE, run
# with $CRIU_SUITE's own dynamic loader and libraries (bookworm's criu 3.17 fails on
# kernel 6.x; CRIU before $CRIU_MIN_VERSION cannot dump inet sockets on Linux >= 6.16).
R=$CRIU_ROOT
if [ "\${1:-}" = restore ]; then
    # Workaround (seen with CRIU 4.1.1 + LXD 5.0.2 unprivileged containers): the restored init reads
    # timens-<id>.img right after clone(CLONE_NEWUSER), sometimes before its uid map
    # is written, i.e. as the overflow uid; the images directory (mode 0700) then
    # refuses it ("Unable to open timens-0.img: Permission denied"). Let everyone
    # search that directory: its parent (LXD's container dir) is root-only anyway.
    prev=
    for arg in "\$@"; do
        case \$prev in -D | --images-dir) chmod o+x "\$arg" 2>/dev/null || : ;; esac
        case \$arg in --images-dir=*) chmod o+x "\${arg#--images-dir=}" 2>/dev/null || : ;; esac
        prev=\$arg
    done
fi
# CRIU's own options for the daemon's checkpoints (see ensure_criu_config); a
# caller's CRIU_CONFIG_FILE wins.
if [ -z "\${CRIU_CONFIG_FILE:-}" ] && [ -r $CRIU_CONFIG ]; then
    CRIU_CONFIG_FILE=$CRIU_CONFIG
    export CRIU_CONFIG_FILE
fi
exec "\$R/usr/lib64/ld-linux-x86-64.so.2" --library-path "\$R/usr/lib/x86_64-linux-gnu" "\$R/usr/sbin/criu" "\$@"
EOF
}

# criu_version: the version the wrapper's CRIU reports (e.g. 4.2.1), or nothing.
criu_version() {
    "$CRIU_WRAPPER" --version 2>/dev/null | sed -n 's/^Version: *\([0-9][0-9.]*\).*/\1/p'
}

criu_works() {
    [[ -x $CRIU_WRAPPER && -x $CRIU_ROOT/usr/sbin/criu ]] || return 1
    local version
    version=$(criu_version)
    [[ -n $version ]] || return 1
    # At least CRIU_MIN_VERSION (sort -V puts the smaller first).
    [[ $(printf '%s\n%s\n' "$CRIU_MIN_VERSION" "$version" | sort -V | head -n 1) == "$CRIU_MIN_VERSION" ]] ||
        return 1
    "$CRIU_WRAPPER" check 2>&1 | grep -q 'Looks good'
}

# install_criu_payload: download $CRIU_SUITE's criu and every library it needs
# ($CRIU_SUITE's libc too; the closure of its dependencies as that suite's
# package lists give it) with a private apt configuration, and unpack them
# into $CRIU_ROOT.
install_criu_payload() {
    say "installing CRIU >= $CRIU_MIN_VERSION from Debian $CRIU_SUITE privately into $CRIU_ROOT"
    local t=$CRIU_CACHE
    mkdir -p "$t/lists/partial" "$t/archives/partial" "$t/cache" "$t/sources.list.d"
    printf 'deb %s %s main\n' "$CRIU_MIRROR" "$CRIU_SUITE" >"$t/sources.list"
    local apt_opts=(
        # An empty dpkg status: the closure below must not count this host's
        # (bookworm's) packages as already there.
        -o "Dir::State::status=/dev/null"
        -o "Dir::Etc::SourceList=$t/sources.list"
        -o "Dir::Etc::SourceParts=$t/sources.list.d"
        -o "Dir::State::Lists=$t/lists"
        -o "Dir::Cache=$t/cache"
        -o "Dir::Cache::Archives=$t/archives"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
        -o "APT::Get::List-Cleanup=0"
    )
    run apt-get "${apt_opts[@]}" update -q
    local -a packages
    # criu and the closure of its Depends/Pre-Depends (virtual packages, shown
    # as <name>, are provided by a real one the closure already lists).
    mapfile -t packages < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends \
        --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances criu |
        grep -v '^[ <]' | sort -u)
    ((${#packages[@]} > 1)) || die "apt-cache found no dependencies of $CRIU_SUITE's criu"
    printf 'criu closure (%s packages): %s\n' "${#packages[@]}" "${packages[*]}" >>"$LOG"
    rm -f "$t/archives/"*.deb
    # apt-get download writes into the current directory.
    (cd "$t/archives" && run apt-get "${apt_opts[@]}" download "${packages[@]}")

    local staging=$CRIU_ROOT.new deb
    rm -rf "$staging"
    mkdir -p "$staging"
    for deb in "$t/archives/"*.deb; do
        run dpkg-deb -x "$deb" "$staging"
    done
    if [[ ! -e $staging/usr/lib64/ld-linux-x86-64.so.2 ]]; then
        mkdir -p "$staging/usr/lib64"
        ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$staging/usr/lib64/ld-linux-x86-64.so.2"
    fi
    rm -rf "$CRIU_ROOT"
    mv "$staging" "$CRIU_ROOT"
}

ensure_criu() {
    local wrapper
    wrapper=$(criu_wrapper_text)
    if [[ ! -f $CRIU_WRAPPER || $(<"$CRIU_WRAPPER") != "$wrapper" ]]; then
        mkdir -p "$(dirname "$CRIU_WRAPPER")"
        printf '%s\n' "$wrapper" >"$CRIU_WRAPPER.new"
        chmod 755 "$CRIU_WRAPPER.new"
        mv "$CRIU_WRAPPER.new" "$CRIU_WRAPPER"
    fi
    if criu_works; then
        return 0
    fi
    install_criu_payload
    if ! criu_works; then
        "$CRIU_WRAPPER" check >>"$LOG" 2>&1 || true
        tail -n 15 "$LOG" | sed 's/^/  | /' >&2
        die "'$CRIU_WRAPPER check' does not say 'Looks good'"
    fi
}

# criu_config_text: the content of $CRIU_CONFIG (CRIU's config file syntax:
# one long option a line, without its dashes).
criu_config_text() {
    cat <<'EOF'
# Installed by nova-syscontainer tools/setup-host.sh; read by CRIU through
# CRIU_CONFIG_FILE, which the criu wrapper sets. See doc/source/migration.rst.
#
# systemd (252 in Debian 12) mounts a ramfs at /run/credentials/<unit> for
# units with credentials (systemd-sysusers, -sysctl, -tmpfiles-setup(-dev) in a
# stock boot); CRIU refuses ramfs ("mnt: FS mnt ./run/credentials/... unsupported").
# With ramfs enabled CRIU dumps the mount and restores it as a new, empty ramfs:
# the credential files of those units (oneshot units that have ended) are not
# carried over.
enable-fs ramfs
EOF
}

# ensure_criu_config: write $CRIU_CONFIG when its content differs.
ensure_criu_config() {
    local text
    text=$(criu_config_text)
    if [[ ! -f $CRIU_CONFIG || $(<"$CRIU_CONFIG") != "$text" ]]; then
        mkdir -p "$(dirname "$CRIU_CONFIG")"
        printf '%s\n' "$text" >"$CRIU_CONFIG.new"
        chmod 644 "$CRIU_CONFIG.new"
        mv "$CRIU_CONFIG.new" "$CRIU_CONFIG"
    fi
}

# ---------------------------------------------------------------------------
# 2b. lxcfs (no systemd: nothing else starts it)
# ---------------------------------------------------------------------------
# LXD 5.0 looks for lxcfs once, when the daemon starts, and then bind-mounts
# its /proc files (meminfo, cpuinfo, uptime, stat, ...) and /sys/devices/system/cpu
# into every container, so that free, nproc and uptime inside show the
# container's limits and its own uptime rather than the host's.
readonly LXCFS_DIR=/var/lib/lxcfs
readonly LXCFS_PIDFILE=/run/lxcfs.pid
LXCFS_STARTED=0     # set when this run (re)started lxcfs: running daemons must follow

lxcfs_mounted() {
    grep -q "^lxcfs $LXCFS_DIR fuse.lxcfs " /proc/self/mounts
}

lxcfs_running() {
    [[ -s $LXCFS_PIDFILE ]] && alive "$(cat "$LXCFS_PIDFILE")" && lxcfs_mounted &&
        timeout 5 cat "$LXCFS_DIR/proc/uptime" >/dev/null 2>&1
}

ensure_lxcfs() {
    lxcfs_running && return 0
    # A killed lxcfs leaves its FUSE mount behind ("Transport endpoint is not
    # connected"), and maybe a live process that no longer answers.
    if [[ -s $LXCFS_PIDFILE ]] && alive "$(cat "$LXCFS_PIDFILE")"; then
        kill -KILL "$(cat "$LXCFS_PIDFILE")" 2>/dev/null || true
    fi
    if lxcfs_mounted; then
        umount -l "$LXCFS_DIR" >>"$LOG" 2>&1 || die "cannot unmount the stale lxcfs at $LXCFS_DIR"
    fi
    rm -f "$LXCFS_PIDFILE"
    mkdir -p "$LXCFS_DIR"
    say "starting lxcfs on $LXCFS_DIR (log $LOG_DIR/lxcfs.log)"
    (
        cd /
        close_inherited_fds
        exec setsid lxcfs --foreground --pidfile="$LXCFS_PIDFILE" "$LXCFS_DIR" \
            </dev/null >>"$LOG_DIR/lxcfs.log" 2>&1
    ) &
    local i
    for i in $(seq 1 50); do
        if [[ -s $LXCFS_PIDFILE ]] && lxcfs_running; then
            # As Debian's init script does: every container's /proc depends on it.
            # Needs CAP_SYS_RESOURCE, which a root without it (this sandbox) lacks.
            echo -1000 2>/dev/null >"/proc/$(cat "$LXCFS_PIDFILE")/oom_score_adj" ||
                say "WARNING: could not protect lxcfs from the OOM killer (no CAP_SYS_RESOURCE)"
            LXCFS_STARTED=1
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$LOG_DIR/lxcfs.log" 2>/dev/null | sed 's/^/  | /' >&2
    die "lxcfs did not mount $LXCFS_DIR within 10 s"
}

# ---------------------------------------------------------------------------
# 3. LXD daemons (no systemd: setsid, pid file, bounded liveness checks)
# ---------------------------------------------------------------------------
daemon_answers() { # DIR
    LXD_DIR=$1 timeout 10 lxc query /1.0 >/dev/null 2>&1
}

# daemon_pids DIR: ids of running "lxd" daemon processes (not sub-commands such as
# forkstart or waitready) serving LXD_DIR=DIR.
daemon_pids() {
    local dir=$1 proc exe pid env_dir prev arg is_daemon
    local -a argv
    for proc in /proc/[0-9]*; do
        exe=$(readlink "$proc/exe" 2>/dev/null) || continue
        [[ ${exe% (deleted)} == */lxd ]] || continue
        mapfile -d '' -t argv 2>/dev/null <"$proc/cmdline" || continue
        # argv[0] must be lxd itself: container monitors are forks of lxd too, but
        # they rename themselves "[lxc monitor] <dir> <name>".
        [[ ${#argv[@]} -gt 0 && ${argv[0]##*/} == lxd ]] || continue
        is_daemon=1 prev=""
        for arg in "${argv[@]:1}"; do
            if [[ $arg != -* && $prev != --group && $prev != --logfile && $prev != --syslog ]]; then
                is_daemon=0
                break
            fi
            prev=$arg
        done
        ((is_daemon)) || continue
        env_dir=$(tr '\0' '\n' 2>/dev/null <"$proc/environ" | sed -n 's/^LXD_DIR=//p' | tail -n 1)
        [[ ${env_dir:-/var/lib/lxd} == "$dir" ]] || continue
        pid=${proc#/proc/}
        printf '%s\n' "$pid"
    done
}

# alive PID: the process exists and is not a zombie (PID 1 here may be slow to reap).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z ]]
}

# daemon_env_ok PID: the daemon runs with the environment this script gives it.
daemon_env_ok() {
    local environ var
    environ=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/environ") || return 1
    for var in "${DAEMON_ENV[@]}"; do
        grep -qxF -- "$var" <<<"$environ" || return 1
    done
}

# server_pid DIR: the daemon's pid as it reports it.
server_pid() {
    LXD_DIR=$1 timeout 10 lxc query /1.0 2>/dev/null | grep -o '"server_pid": *[0-9]*' | grep -o '[0-9]*$'
}

stop_stale_daemon() { # NAME DIR WHY PIDS...
    local name=$1 dir=$2 why=$3
    shift 3
    say "$name: daemon (pid $*) $why; ending it"
    kill -TERM "$@" 2>/dev/null || true
    local i pid alive_pids
    for i in $(seq 1 20); do
        alive_pids=()
        for pid in "$@"; do
            if alive "$pid"; then
                alive_pids+=("$pid")
            fi
        done
        ((${#alive_pids[@]} == 0)) && return 0
        if ((i == 10)); then
            kill -KILL "${alive_pids[@]}" 2>/dev/null || true
        fi
        sleep 0.5
    done
    die "$name: could not end the unresponsive daemon (pid ${alive_pids[*]}) for $dir"
}

ensure_daemon() { # NAME DIR
    local name=$1 dir=$2
    local pidfile=$LOG_DIR/$name.pid daemon_log=$LOG_DIR/$name.log
    local pids pid

    if daemon_answers "$dir" && ((LXCFS_STARTED)); then
        # It started without this lxcfs: its containers would not get it. A
        # daemon ended with SIGTERM leaves its containers running.
        mapfile -t pids < <(daemon_pids "$dir")
        ((${#pids[@]} == 0)) ||
            stop_stale_daemon "$name" "$dir" "started before lxcfs (re)started" "${pids[@]}"
    fi
    if daemon_answers "$dir"; then
        pid=$(server_pid "$dir") || pid=""
        if [[ -n $pid ]]; then
            echo "$pid" >"$pidfile"
            if ! daemon_env_ok "$pid"; then
                say "$name: WARNING: the running daemon (pid $pid) was not started by this script:" \
                    "it may not find $CRIU_WRAPPER and may try to reach the internet; end it" \
                    "(kill $pid; its containers keep running) and run this script again"
            fi
        fi
        return 0
    fi

    mapfile -t pids < <(daemon_pids "$dir")
    if ((${#pids[@]} > 0)); then
        # Maybe still starting up: give it a bounded chance first.
        if LXD_DIR=$dir timeout 35 lxd waitready --timeout 30 >>"$LOG" 2>&1 && daemon_answers "$dir"; then
            server_pid "$dir" >"$pidfile" || true
            return 0
        fi
        stop_stale_daemon "$name" "$dir" "is not answering" "${pids[@]}"
    fi

    # No daemon serves $dir now: whatever a killed daemon left is stale.
    rm -f "$dir/unix.socket" "$pidfile"
    mkdir -p "$dir"
    [[ $dir == "$LXD_A_DIR" ]] || chmod 711 "$dir"

    say "$name: starting LXD daemon (LXD_DIR=$dir, log $daemon_log)"
    printf '\n=== %s starting lxd for %s\n' "$(date '+%F %T')" "$dir" >>"$LOG_DIR/$name.out"
    # Clean environment; fds 0-2 redirected and every other fd (e.g. the lock) closed.
    (
        cd /
        close_inherited_fds
        exec env -i "${DAEMON_ENV[@]}" LXD_DIR="$dir" \
            setsid lxd --group root --logfile "$daemon_log" \
            </dev/null >>"$LOG_DIR/$name.out" 2>&1
    ) &
    local started=$! i
    echo "$started" >"$pidfile"
    # lxd waitready --timeout 60, in slices, so that a daemon that dies at once
    # (e.g. its port is taken) is reported at once.
    for i in $(seq 1 30); do
        if LXD_DIR=$dir timeout 5 lxd waitready --timeout 2 >>"$LOG" 2>&1; then
            break
        fi
        if ! alive "$started" || ((i == 30)); then
            tail -n 20 "$daemon_log" "$LOG_DIR/$name.out" 2>/dev/null | sed 's/^/  | /' >&2
            alive "$started" || die "$name: the daemon exited during start-up (see $daemon_log)"
            die "$name: daemon did not become ready within 60 s (see $daemon_log)"
        fi
    done
    daemon_answers "$dir" || die "$name: daemon is ready but does not answer 'lxc query /1.0'"
    server_pid "$dir" >"$pidfile" || true
}

# ---------------------------------------------------------------------------
# 4. Daemon configuration: https address, pools, default profile (no NIC)
# ---------------------------------------------------------------------------
# LXD and Incus take the same preseed (their pools, profile and address);
# only the command and its environment differ. KIND is lxd or incus.
daemon_cli() { # KIND DIR ARGS...
    local kind=$1 dir=$2
    shift 2
    case $kind in
        lxd) at "$dir" lxc "$@" ;;
        incus) INCUS_DIR=$dir timeout 120 incus "$@" ;;
    esac
}

daemon_init_preseed() { # KIND DIR < YAML
    case $1 in
        lxd) LXD_DIR=$2 timeout 300 lxd init --preseed ;;
        incus) INCUS_DIR=$2 timeout 300 incus admin init --preseed ;;
    esac
}

ensure_config() { # NAME DIR ADDR [KIND [QUOTA_POOL_SIZE]]
    local name=$1 dir=$2 addr=$3 kind=${4:-lxd} size=${5:-$QUOTA_POOL_SIZE}
    local pools have_default=0 have_quota=0 cur_addr init
    init=$([[ $kind == lxd ]] && echo 'lxd init' || echo 'incus admin init')
    pools=$(daemon_cli "$kind" "$dir" query /1.0/storage-pools) ||
        die "$name: cannot list storage pools"
    grep -q '"/1.0/storage-pools/default"' <<<"$pools" && have_default=1
    grep -q '"/1.0/storage-pools/quota"' <<<"$pools" && have_quota=1

    if ((have_default && have_quota)); then
        cur_addr=$(daemon_cli "$kind" "$dir" config get core.https_address)
        if [[ $cur_addr != "$addr" ]]; then
            say "$name: setting core.https_address=$addr (was '$cur_addr')"
            run daemon_cli "$kind" "$dir" config set core.https_address "$addr"
        fi
        return 0
    fi

    say "$name: preseeding (https $addr; pools default=dir, quota=btrfs $size loop file; no network)"
    local preseed
    preseed=$(
        printf 'config:\n  core.https_address: "%s"\n' "$addr"
        printf 'networks: []\n'
        printf 'storage_pools:\n'
        ((have_default)) || printf -- '- name: default\n  driver: dir\n'
        ((have_quota)) || printf -- '- name: quota\n  driver: btrfs\n  config:\n    size: %s\n' "$size"
        printf 'profiles:\n- name: default\n  description: nova-syscontainer default profile (root disk only, no network)\n'
        printf '  config: {}\n  devices:\n    root:\n      path: /\n      pool: default\n      type: disk\n'
    )
    printf '%s\n' "$preseed" >>"$LOG"
    if ! daemon_init_preseed "$kind" "$dir" <<<"$preseed" >>"$LOG" 2>&1; then
        tail -n 15 "$LOG" | sed 's/^/  | /' >&2
        die "$name: '$init --preseed' failed"
    fi
}

# ---------------------------------------------------------------------------
# 5. TLS: client certificate for Nova, trust, server certificates
# ---------------------------------------------------------------------------
ensure_client_cert() {
    mkdir -p "$CONF_DIR"
    chmod 755 "$CONF_DIR"
    if [[ -s $CLIENT_CRT && -s $CLIENT_KEY ]] &&
        openssl x509 -noout -checkend 2592000 -in "$CLIENT_CRT" >/dev/null 2>&1 &&
        [[ $(openssl x509 -noout -pubkey -in "$CLIENT_CRT" 2>/dev/null) == \
            "$(openssl pkey -pubout -in "$CLIENT_KEY" 2>/dev/null)" ]]; then
        chmod 600 "$CLIENT_KEY"
        return 0
    fi
    say "generating the Nova client certificate $CLIENT_CRT (EC P-384, 10 years)"
    (
        umask 077
        run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -sha384 -nodes \
            -days 3650 -subj "/O=nova-syscontainer/CN=nova-compute@$(hostname)" \
            -addext "extendedKeyUsage=clientAuth" \
            -keyout "$CLIENT_KEY.new" -out "$CLIENT_CRT.new"
    )
    chmod 600 "$CLIENT_KEY.new"
    chmod 644 "$CLIENT_CRT.new"
    mv "$CLIENT_KEY.new" "$CLIENT_KEY"
    mv "$CLIENT_CRT.new" "$CLIENT_CRT"
}

ensure_trusted() { # NAME DIR CERT_FILE CERT_NAME
    local name=$1 dir=$2 cert=$3 cert_name=$4 fp
    fp=$(cert_fingerprint "$cert")
    if at "$dir" lxc query "/1.0/certificates/$fp" >/dev/null 2>&1; then
        return 0
    fi
    say "$name: trusting $cert_name (${fp:0:12})"
    run at "$dir" lxc config trust add "$cert" --name "$cert_name"
}

export_server_cert() { # DIR DEST
    [[ -s $1/server.crt ]] || die "no server certificate at $1/server.crt"
    install_if_changed "$1/server.crt" "$2" 644
}

# check_https NAME ADDR SERVER_CRT: the https endpoint verifies against the exported
# server certificate and accepts the client certificate as trusted.
check_https() {
    local name=$1 addr=$2 server_crt=$3 out
    out=$(curl -sS --max-time 10 --noproxy '*' --cacert "$server_crt" \
        --cert "$CLIENT_CRT" --key "$CLIENT_KEY" "https://$addr/1.0" 2>&1) ||
        die "$name: https://$addr/1.0 with the client certificate failed: $out"
    grep -q '"auth": *"trusted"' <<<"$out" ||
        die "$name: https://$addr does not treat $CLIENT_CRT as trusted"
}

# ---------------------------------------------------------------------------
# 7. Test image: busybox, counter, clean shutdown on SIGPWR
# ---------------------------------------------------------------------------
image_valid() {
    [[ -s $IMAGE && -s $IMAGE.sha256 ]] || return 1
    (cd "$IMAGE_DIR" && sha256sum --status -c "$(basename "$IMAGE").sha256" 2>/dev/null) || return 1
    tar -xzOf "$IMAGE" metadata.yaml 2>/dev/null |
        grep -q "^  nova_syscontainer_image_version: \"$IMAGE_VERSION\"\$"
}

build_image() {
    say "building the test image $IMAGE"
    mkdir -p "$IMAGE_DIR"
    local work
    work=$(mktemp -d "$IMAGE_DIR/build.XXXXXX")
    local root=$work/rootfs
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,var/log}
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    # A copy, not a symlink: the image must carry the binary itself.
    cp --dereference /bin/busybox "$root/bin/busybox"
    chmod 755 "$root/bin/busybox"
    local applet
    while read -r applet; do
        [[ -e $root$applet || -L $root$applet ]] || ln -s /bin/busybox "$root$applet"
    done < <(/bin/busybox --list-full | sed 's|^|/|')
    ln -sf /bin/busybox "$root/sbin/init"

    # busybox init: SIGPWR (LXD's default halt signal) -> shutdown actions, SIGTERM
    # and SIGKILL to all processes, then power off: a clean exit of the container.
    cat >"$root/etc/inittab" <<EOF
::sysinit:/bin/mount -t tmpfs -o mode=1777 tmpfs /tmp
::sysinit:/bin/sh /etc/boot-log.sh
::respawn:/bin/sh /etc/counter.sh
::shutdown:/bin/sh -c 'echo "nova-syscontainer test image stopping" >/dev/console'
::ctrlaltdel:/sbin/reboot
EOF
    # A short boot log on the console, as a small cloud image (CirrOS) writes
    # one: the boot message (once a boot: tests count boots by it), the name
    # the guest got and its NICs with their MACs, then the end of the boot.
    cat >"$root/etc/boot-log.sh" <<EOF
#!/bin/sh
{
    echo "$BOOT_MESSAGE"
    echo "hostname: \$(hostname)"
    for nic in /sys/class/net/*; do
        echo "nic: \${nic##*/} \$(cat "\$nic/address" 2>/dev/null)"
    done
    echo "boot finished, starting the counter"
} >/dev/console
EOF
    chmod 755 "$root/etc/boot-log.sh"
    cat >"$root/etc/counter.sh" <<'EOF'
#!/bin/sh
# Writes "<random token> <pid> <count>" to /tmp/counter every second: a process
# whose state (token, pid, count) shows whether a checkpoint/restore kept it.
t=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
i=0
while true; do
    i=$((i + 1))
    echo "$t $$ $i" >/tmp/counter
    sleep 1
done
EOF
    chmod 755 "$root/etc/counter.sh"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    printf 'busybox-counter\n' >"$root/etc/hostname"

    cat >"$work/metadata.yaml" <<EOF
architecture: x86_64
creation_date: $(date +%s)
properties:
  description: nova-syscontainer busybox counter test image
  os: busybox
  release: "$(dpkg-query -W -f '${Version}' busybox-static)"
  nova_syscontainer_image_version: "$IMAGE_VERSION"
EOF
    run tar -C "$work" --numeric-owner --owner=0 --group=0 --sort=name \
        -czf "$work/image.tar.gz" metadata.yaml rootfs
    mv "$work/image.tar.gz" "$IMAGE"
    (cd "$IMAGE_DIR" && sha256sum "$(basename "$IMAGE")" >"$(basename "$IMAGE").sha256")
    rm -rf "$work"
}

ensure_image() {
    image_valid || build_image
    image_valid || die "the freshly built image $IMAGE does not validate"
}

image_fingerprint() { cut -d' ' -f1 "$IMAGE.sha256"; }

# ensure_image_imported NAME DIR: the daemon has the image and the alias points at it.
ensure_image_imported() {
    local name=$1 dir=$2 fp target
    fp=$(image_fingerprint)
    if ! at "$dir" lxc query "/1.0/images/$fp" >/dev/null 2>&1; then
        say "$name: importing the test image (${fp:0:12})"
        run at "$dir" lxc image import "$IMAGE" -q
    fi
    target=$(at "$dir" lxc query "/1.0/images/aliases/$IMAGE_ALIAS" 2>/dev/null |
        grep -o '"target": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}') || target=""
    if [[ $target != "$fp" ]]; then
        if [[ -n $target ]]; then
            run at "$dir" lxc image alias delete "$IMAGE_ALIAS"
            # The previous build of the test image is of no further use.
            run at "$dir" lxc image delete "$target"
        fi
        run at "$dir" lxc image alias create "$IMAGE_ALIAS" "$fp"
    fi
}

# ---------------------------------------------------------------------------
# 8. Self-check (--verify)
# ---------------------------------------------------------------------------
# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }

read_counter() { # DIR CONTAINER
    at "$1" lxc exec "$2" -- cat /tmp/counter 2>/dev/null
}

wait_counter() { # DIR CONTAINER MIN_COUNT -> prints "token pid count"
    local dir=$1 c=$2 min=$3 i line
    for i in $(seq 1 60); do
        line=$(read_counter "$dir" "$c") || line=""
        if [[ $line =~ ^[0-9a-f]+\ [0-9]+\ ([0-9]+)$ ]] && ((BASH_REMATCH[1] >= min)); then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.5
    done
    return 1
}

self_check() { # NAME DIR
    local name=$1 dir=$2 c=nova-syscontainer-selfcheck t0 before after
    local t_stop t_start t_restart t_graceful tok1 pid1 n1 tok2 pid2 n2
    say "$name: self-check (boot, stateful stop/start, restart, graceful stop)"
    VERIFY_DIR=$dir
    at "$dir" lxc delete --force "$c" >>"$LOG" 2>&1 || true
    VERIFY_CONTAINER=$c
    run at "$dir" lxc init "$IMAGE_ALIAS" "$c" -c "raw.lxc=$RAW_LXC_CR"
    run at "$dir" lxc start "$c"
    before=$(wait_counter "$dir" "$c" 2) || die "$name: test container wrote no /tmp/counter"
    at "$dir" lxc console --show-log "$c" 2>/dev/null | grep -q "$BOOT_MESSAGE" ||
        die "$name: console log lacks '$BOOT_MESSAGE'"
    if at "$dir" lxc network list --format csv 2>/dev/null | grep -q ',YES,'; then
        die "$name: a managed network exists; this host must have none"
    fi

    t0=$(now_ms)
    run at "$dir" lxc stop --stateful "$c"
    t_stop=$(($(now_ms) - t0))
    t0=$(now_ms)
    run at "$dir" lxc start "$c"
    t_start=$(($(now_ms) - t0))
    read -r tok1 pid1 n1 <<<"$before"
    after=$(wait_counter "$dir" "$c" $((n1 + 2))) || die "$name: counter did not continue after restore"
    read -r tok2 pid2 n2 <<<"$after"
    [[ $tok1 == "$tok2" && $pid1 == "$pid2" ]] ||
        die "$name: process state lost by stateful stop/start ('$before' -> '$after')"

    t0=$(now_ms)
    run at "$dir" lxc restart "$c"
    t_restart=$(($(now_ms) - t0))
    after=$(wait_counter "$dir" "$c" 1) || die "$name: counter missing after lxc restart"
    [[ ${after%% *} != "$tok1" ]] || die "$name: lxc restart did not reboot the container"

    t0=$(now_ms)
    run at "$dir" lxc stop "$c"
    t_graceful=$(($(now_ms) - t0))
    ((t_graceful < 20000)) || die "$name: graceful stop took ${t_graceful} ms (halt signal ignored?)"
    run at "$dir" lxc delete "$c"
    VERIFY_CONTAINER=""

    SUMMARY+=("$name self-check passed: counter '$before' -> '$tok2 $pid2 $n2' (same process);\
 stateful stop ${t_stop} ms, start ${t_start} ms, restart ${t_restart} ms, graceful stop ${t_graceful} ms")
}

# Incus beside LXD (--incus): its own file, so that the LXD path stays as it is.
# shellcheck source=tools/lib/incus.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/incus.sh"

# ---------------------------------------------------------------------------
# Kernel limits for many containers (doc/source/scale.rst)
# ---------------------------------------------------------------------------
# Every unprivileged container maps its root to the same host uid (1000000), so
# the per-user limits below are shared by ALL containers of the host; the
# defaults stop a node long before its memory does. Values as LXD's production
# set-up guide gives them (https://documentation.ubuntu.com/lxd/en/latest/
# reference/server_settings/). Only raised, never lowered; applied with
# sysctl -w (no systemd, no sysctl.d reload on this host), so each boot of the
# host needs this script again.
readonly KERNEL_LIMITS=(
    # systemd in each guest takes several inotify instances; 128 per uid (the
    # default) is used up by about 20 stock guests ("Too many open files").
    fs.inotify.max_user_instances=1048576
    fs.inotify.max_user_watches=1048576
    fs.inotify.max_queued_events=1048576
    # Each running container holds host PTYs (its console, lxc exec sessions).
    kernel.pty.max=65536
    # Neighbour tables: one entry per peer on every bridge; past gc_thresh3
    # the kernel drops new entries ("neighbour table overflow").
    net.ipv4.neigh.default.gc_thresh2=4096
    net.ipv4.neigh.default.gc_thresh3=8192
    net.ipv6.neigh.default.gc_thresh2=4096
    net.ipv6.neigh.default.gc_thresh3=8192
    # Keyrings: systemd and sshd create session keyrings; 200 keys / 20000
    # bytes per non-root uid (the default) serve a handful of guests.
    kernel.keys.maxkeys=2000
    kernel.keys.maxbytes=2000000
    # Memory maps and async I/O contexts of many guests' processes.
    vm.max_map_count=262144
    fs.aio-max-nr=524288
)

ensure_kernel_limits() {
    local entry key want have raised=()
    for entry in "${KERNEL_LIMITS[@]}"; do
        key=${entry%%=*}
        want=${entry#*=}
        have=$(sysctl -n "$key" 2>/dev/null) || { say "kernel limit $key: not on this kernel"; continue; }
        if ((have < want)); then
            run sysctl -q -w "$key=$want"
            raised+=("$key $have->$want")
        fi
    done
    if ((${#raised[@]})); then
        say "raised kernel limits: ${raised[*]}"
    fi
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
main() {
    while (($# > 0)); do
        case $1 in
            --second-daemon) SECOND_DAEMON=1 ;;
            --verify) VERIFY=1 ;;
            --incus) INCUS=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; exit 2 ;;
        esac
        shift
    done
    [[ $(id -u) == 0 ]] || { echo "setup-host: must run as root" >&2; exit 1; }
    [[ -n ${HOME:-} ]] || export HOME=/root

    mkdir -p "$LOG_DIR" "$STATE_DIR" "$CACHE_DIR" "$(dirname "$LOCK_FILE")"
    trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR
    trap cleanup EXIT
    exec 9>"$LOCK_FILE"
    flock -w 600 9 || die "another setup-host.sh is running (lock $LOCK_FILE)"
    printf '\n=== %s setup-host.sh %s\n' "$(date '+%F %T')" "$*" >>"$LOG"

    ensure_packages
    ensure_kernel_limits
    ensure_ovs
    ensure_criu_config
    ensure_criu
    ensure_lxcfs
    ensure_image
    ensure_client_cert

    local daemons=("$LXD_A_NAME|$LXD_A_DIR|$LXD_A_ADDR")
    ((SECOND_DAEMON)) && daemons+=("$LXD_B_NAME|$LXD_B_DIR|$LXD_B_ADDR")
    local entry name dir addr
    for entry in "${daemons[@]}"; do
        IFS='|' read -r name dir addr <<<"$entry"
        ensure_daemon "$name" "$dir"
        ensure_config "$name" "$dir" "$addr"
        ensure_trusted "$name" "$dir" "$CLIENT_CRT" "$CLIENT_CERT_NAME"
        export_server_cert "$dir" "$CONF_DIR/$name-server.crt"
        ensure_image_imported "$name" "$dir"
    done
    if ((SECOND_DAEMON)); then
        # Each daemon trusts the other's server certificate (migrations between them).
        ensure_trusted "$LXD_A_NAME" "$LXD_A_DIR" "$LXD_B_DIR/server.crt" "$LXD_B_NAME-server"
        ensure_trusted "$LXD_B_NAME" "$LXD_B_DIR" "$LXD_A_DIR/server.crt" "$LXD_A_NAME-server"
    fi
    for entry in "${daemons[@]}"; do
        IFS='|' read -r name dir addr <<<"$entry"
        daemon_answers "$dir" || die "$name: not answering on $dir/unix.socket"
        check_https "$name" "$addr" "$CONF_DIR/$name-server.crt"
    done

    ((INCUS)) && incus_setup

    if ((VERIFY)); then
        for entry in "${daemons[@]}"; do
            IFS='|' read -r name dir addr <<<"$entry"
            self_check "$name" "$dir"
        done
        local line
        for line in "${SUMMARY[@]}"; do
            say "$line"
        done
    fi

    local endpoints="$LXD_A_NAME=unix:$LXD_A_DIR/unix.socket,https://$LXD_A_ADDR"
    ((SECOND_DAEMON)) && endpoints+=" $LXD_B_NAME=unix:$LXD_B_DIR/unix.socket,https://$LXD_B_ADDR"
    endpoints+=$INCUS_ENDPOINTS
    printf '=== %s OK\n' "$(date '+%F %T')" >>"$LOG"
    echo "setup-host: OK $endpoints client-cert=$CLIENT_CRT image=$IMAGE_ALIAS($IMAGE) criu=$CRIU_WRAPPER ovs=$OVS_BRIDGE(netdev)"
}

main "$@"
