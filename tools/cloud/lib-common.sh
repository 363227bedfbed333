#!/bin/bash
# lib-common.sh - paths, messages and process handling of the all-in-one
# cloud (sourced by tools/cloud.sh; no systemd: every service is a program
# of the cloud's own supervisord, stopped by its process group only).

# shellcheck disable=SC2034  # the other lib-*.sh files use these
readonly CLOUD_CONF=${SYSCONTAINER_CLOUD_CONF:-/etc/nova-syscontainer/cloud}
readonly CLOUD_STATE=${SYSCONTAINER_CLOUD_STATE:-/var/lib/nova-syscontainer/cloud}
readonly CLOUD_LOGS=${SYSCONTAINER_CLOUD_LOGS:-/var/log/nova-syscontainer/cloud}
readonly CLOUD_VENV=${SYSCONTAINER_CLOUD_VENV:-/opt/nova-syscontainer/cloud-venv}
readonly CLOUDS_YAML=${SYSCONTAINER_CLOUDS_YAML:-/etc/openstack/clouds.yaml}
readonly CLOUD_NAME=syscontainer
readonly CLOUD_HOST=aio            # nova-compute's host name
readonly CLOUD_REGION=RegionOne
readonly CLOUD_IP=127.0.0.1        # every service listens on loopback only
readonly KEYSTONE_PORT=5000
readonly GLANCE_PORT=9292
readonly PLACEMENT_PORT=8778
readonly NOVA_PORT=8774
readonly NOVA_METADATA_PORT=8775
readonly NEUTRON_PORT=9696
readonly RABBIT_PORT=5672
readonly KEYSTONE_URL=http://$CLOUD_IP:$KEYSTONE_PORT/v3
# The cloud's own MariaDB server: its data, and the unix socket that is
# its only way in (no TCP port, so a distribution's server, if any, is
# left alone).
readonly CLOUD_DB_DIR=$CLOUD_STATE/mariadb
readonly CLOUD_DB_SOCKET=$CLOUD_DB_DIR/mysqld.sock
readonly CLOUD_DB_USER=openstack
# The cloud's own btrfs storage pool for root disks (quotas enforced),
# a sparse loop file sized from the machine's free disk when first made.
readonly CLOUD_POOL=${SYSCONTAINER_CLOUD_POOL:-aio}
# The container daemon: lxd (LXD 5.0, the default) or incus (Incus 6.0,
# which tools/setup-host.sh --incus installs beside LXD); its command-line
# client, its directory, and the host script's arguments for it.
readonly CLOUD_DAEMON_KIND=${SYSCONTAINER_CLOUD_DAEMON_KIND:-lxd}
case $CLOUD_DAEMON_KIND in
    lxd) readonly CLOUD_CLI=lxc CLOUD_DAEMON_DIR=/var/lib/lxd CLOUD_SETUP_HOST_ARGS=() ;;
    incus) readonly CLOUD_CLI=incus CLOUD_DAEMON_DIR=/var/lib/incus CLOUD_SETUP_HOST_ARGS=(--incus) ;;
    *) echo "SYSCONTAINER_CLOUD_DAEMON_KIND must be lxd or incus" >&2; exit 2 ;;
esac
# tools/setup-host.sh's OVS integration bridge (userspace datapath).
readonly CLOUD_OVS_BRIDGE=${SYSCONTAINER_OVS_BRIDGE:-br-int}
# The floating IPs' network: a flat provider network on physical network
# "public", which the OVS agent maps to the OVS bridge br-ex. br-ex's own
# port has the first address of TEST-NET-2 (RFC 5737, documentation only),
# so the routers' gateways and the floating IPs are reachable from this
# machine, and from nowhere else. Not TEST-NET-3: on this kind of machine
# the package mirrors' proxy answers at 203.0.113.80 (pypi.org and
# deb.debian.org resolve to it), and a route to 203.0.113.0/24 on br-ex
# cut the machine off from it (measured: pip's "No route to host").
readonly CLOUD_EXT_BRIDGE=${SYSCONTAINER_EXT_BRIDGE:-br-ex}
readonly CLOUD_PHYSNET=public
readonly CLOUD_PUBLIC_NET=public
readonly CLOUD_PUBLIC_CIDR=${SYSCONTAINER_PUBLIC_CIDR:-198.51.100.0/24}
readonly CLOUD_PUBLIC_GATEWAY=${CLOUD_PUBLIC_CIDR%.*/*}.1
readonly CLOUD_PUBLIC_POOL=("${CLOUD_PUBLIC_CIDR%.*/*}.100" "${CLOUD_PUBLIC_CIDR%.*/*}.199")
# The default subnet pool (shared) projects' subnets can take addresses
# from, as DevStack makes one: with the default external network, Neutron
# can allocate a project's network, subnet and router by itself ("auto
# allocated topology", Nova's networks "auto"). RFC 2544's benchmarking
# block, never a private range of this machine's; /26 a subnet.
readonly CLOUD_SUBNETPOOL=shared-default-subnetpool-v4
readonly CLOUD_SUBNETPOOL_PREFIX=198.19.0.0/16
# Services in start order; stop goes the other way.
readonly CLOUD_SERVICES=(mariadb rabbitmq keystone placement glance neutron
                         neutron-rpc neutron-ovs-agent neutron-l3-agent
                         neutron-dhcp-agent neutron-metadata-agent
                         nova-api nova-metadata nova-conductor nova-scheduler
                         nova-compute)

say() { printf 'cloud: %s\n' "$*"; }
die() { printf 'cloud: ERROR: %s\n' "$*" >&2; exit 1; }

# Process supervision: the cloud's own supervisord (Supervisor 4.3 from
# PyPI, in $CLOUD_VENV; lib-install.sh). Its configuration is generated:
# $CLOUD_CONF/supervisord.conf (0600; not in a service's directory, whose
# *.conf write_all_conf removes at every start) and, in
# $CLOUD_CONF/supervisor/programs/ (0700), one NAME.conf per service,
# written when the service is started. Its control socket is a unix
# socket in $CLOUD_STATE/supervisor/ (directory and socket 0700), and it
# has no TCP listener. Not Debian's "supervisor" package: its maintainer
# scripts start a system-wide supervisord (/etc/supervisor) through the
# init script, one more daemon on a machine where this cloud is only one
# of several things.
readonly CLOUD_SUPERVISOR_CONF_DIR=$CLOUD_CONF/supervisor
readonly CLOUD_SUPERVISOR_CONF=$CLOUD_CONF/supervisord.conf
readonly CLOUD_SUPERVISOR_RUN=$CLOUD_STATE/supervisor
readonly CLOUD_SUPERVISOR_SOCKET=$CLOUD_SUPERVISOR_RUN/supervisord.sock

supervisorctl_() {
    "$CLOUD_VENV/bin/supervisorctl" -c "$CLOUD_SUPERVISOR_CONF" "$@"
}

# supervisord answers on its socket.
supervisord_up() {
    [ -S "$CLOUD_SUPERVISOR_SOCKET" ] && [ -r "$CLOUD_SUPERVISOR_CONF" ] \
        && supervisorctl_ pid >/dev/null 2>&1
}

write_supervisord_conf() {
    install -d -m 0700 "$CLOUD_SUPERVISOR_CONF_DIR" \
        "$CLOUD_SUPERVISOR_CONF_DIR/programs" "$CLOUD_SUPERVISOR_RUN"
    (umask 077; cat >"$CLOUD_SUPERVISOR_CONF" <<EOF
; Generated by tools/cloud.sh (lib-common.sh): the all-in-one cloud's own
; supervisord. Programs in programs/*.conf; none starts by itself.
[unix_http_server]
file = $CLOUD_SUPERVISOR_SOCKET
chmod = 0700

[supervisord]
user = root
directory = /
logfile = $CLOUD_LOGS/supervisord.log
logfile_maxbytes = 10MB
logfile_backups = 2
pidfile = $CLOUD_SUPERVISOR_RUN/supervisord.pid
identifier = nova-syscontainer-cloud

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://$CLOUD_SUPERVISOR_SOCKET

[include]
files = $CLOUD_SUPERVISOR_CONF_DIR/programs/*.conf
EOF
    )
}

# supervisord running, started if need be. It gets no descriptor but
# stdin, stdout and stderr (on /dev/null): not fd 9 (cloud.sh's lock), nor
# a lock its caller holds around it, as "flock
# /run/lock/nova-syscontainer-cloud.lock tools/cloud.sh up" does (without
# -o, flock leaves its fd open for the command). supervisord would keep
# such a descriptor as long as it runs, and so hold the lock. (Its
# children get none either: Supervisor closes every descriptor above 2 in
# the child before exec.)
CLOUD_SUPERVISORD_SEEN=0   # this cloud.sh has seen supervisord answer
ensure_supervisord() {
    if [ "$CLOUD_SUPERVISORD_SEEN" = 1 ] && [ -S "$CLOUD_SUPERVISOR_SOCKET" ] \
        || supervisord_up; then
        CLOUD_SUPERVISORD_SEEN=1
        return 0
    fi
    [ -x "$CLOUD_VENV/bin/supervisord" ] \
        || die "no supervisord in $CLOUD_VENV: tools/cloud.sh install"
    # One supervisord per cloud: one that runs but does not answer is
    # not replaced by a second one.
    local old
    old=$(cat "$CLOUD_SUPERVISOR_RUN/supervisord.pid" 2>/dev/null) || true
    if [[ $old =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$old/cmdline" \
            2>/dev/null | grep -q "supervisord -c $CLOUD_SUPERVISOR_CONF"; then
        die "supervisord (PID $old) runs but does not answer on" \
            "$CLOUD_SUPERVISOR_SOCKET; see $CLOUD_LOGS/supervisord.log"
    fi
    write_supervisord_conf
    rm -f "$CLOUD_SUPERVISOR_SOCKET"
    # shellcheck disable=SC2016  # expanded by the inner shell
    bash -c '
        for fd in /proc/$$/fd/*; do
            fd=${fd##*/}
            [ "$fd" -le 2 ] || eval "exec $fd>&-"
        done
        exec "$@"' supervisord "$CLOUD_VENV/bin/supervisord" \
        -c "$CLOUD_SUPERVISOR_CONF" </dev/null >/dev/null 2>&1 9>&- \
        || die "supervisord did not start; see $CLOUD_LOGS/supervisord.log"
    local i
    for i in $(seq 100); do
        if supervisord_up; then
            CLOUD_SUPERVISORD_SEEN=1
            return 0
        fi
        sleep 0.1
    done
    die "supervisord does not answer on $CLOUD_SUPERVISOR_SOCKET; see" \
        "$CLOUD_LOGS/supervisord.log"
}

# A value for Supervisor's configuration: "%" is its interpolation
# character.
supervisor_escape() { printf '%s' "${1//%/%%}"; }

# ARGS as one command line that Supervisor splits back (Python's
# shlex.split): each word in single quotes unless plain. Not printf %q:
# its "\ " at the end of a word (uwsgi's --procname-prefix "... ") would
# be cut by the configuration parser, which strips a value's trailing
# blanks.
shell_words() {
    local w sq="'" line=""
    for w in "$@"; do
        if [[ ! $w =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then
            w="'${w//$sq/$sq\"$sq\"$sq}'"
        fi
        line+="${line:+ }$w"
    done
    printf '%s' "$line"
}

# $CLOUD_LOGS/NAME.pid, for readers that want a service's process without
# supervisorctl (tests/smoke): "PID START", START being the process's
# start time in clock ticks since boot (/proc/PID/stat field 22), which
# tells it from a later process that got the same PID. Written at each
# start from what supervisord reports, removed at stop; a service that
# died keeps its file, naming a process that no longer runs.
pid_file() { printf '%s/%s.pid\n' "$CLOUD_LOGS" "$1"; }

# The PID of a service's process, if supervisord has it running.
service_pid() {
    local pid
    [ -S "$CLOUD_SUPERVISOR_SOCKET" ] || return 1
    pid=$(supervisorctl_ pid "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
    printf '%s\n' "$pid"
}

# How long a service has between TERM and KILL at stop.
stop_wait_secs() {
    case $1 in
        # It leaves its loop within a second of TERM, then some thread
        # keeps the process alive (measured: still there after 15 s); its
        # state lives in OVS, so KILL loses nothing.
        neutron-ovs-agent) echo 5 ;;
        *) echo 15 ;;
    esac
}

# start_service NAME [VAR=VALUE ...] [--user USER] [--dir DIR] -- COMMAND ARGS...
# Start COMMAND as supervisord's program NAME (output appended to
# $CLOUD_LOGS/NAME.log), unless it runs already. The program's file is
# written only when NAME does not run, so a running service is never
# restarted by a change of its command line.
#
# autorestart = false, deliberately: a service that dies stays down until
# it is started again. "tools/cloud.sh status" shows it EXITED (with its
# exit status or signal, from supervisord), and "tools/cloud.sh start"
# (every service) or "start-nova" (Nova's) starts it. A restarted
# nova-compute would hide a crash loop, and the SIGKILL smoke test
# (tests/smoke/test_compute_kill.py) needs the killed nova-compute to stay
# dead until start-nova, as on a cloud whose init system does not restart
# it.
#
# Each program is a process group of its own (Supervisor calls setpgrp in
# the child); stopasgroup and killasgroup signal the whole group, so a
# uwsgi master's workers and an agent's privsep helpers go with it.
start_service() {
    local name=$1 user=root dir=/
    shift
    local -a envs=()
    while [ "$1" != -- ]; do
        case $1 in
            --user) user=$2; shift ;;
            --dir) dir=$2; shift ;;
            *) envs+=("$1") ;;
        esac
        shift
    done
    shift
    ensure_supervisord
    local pid
    if pid=$(service_pid "$name"); then
        say "$name already running (PID $pid)"
        return 0
    fi
    local log=$CLOUD_LOGS/$name.log env="" e command
    for e in "${envs[@]}"; do
        [[ $e != *\"* ]] || die "start_service $name: a quote in $e"
        env+="${env:+,}${e%%=*}=\"$(supervisor_escape "${e#*=}")\""
    done
    command=$(shell_words "$@")
    (umask 077; cat >"$CLOUD_SUPERVISOR_CONF_DIR/programs/$name.conf" <<EOF
[program:$name]
command = $(supervisor_escape "$command")
environment = $env
user = $user
directory = $dir
autostart = false
autorestart = false
startsecs = 0
stopsignal = TERM
stopwaitsecs = $(stop_wait_secs "$name")
stopasgroup = true
killasgroup = true
redirect_stderr = true
stdout_logfile = $log
stdout_logfile_maxbytes = 0
stdout_logfile_backups = 0
EOF
    )
    printf '\n==== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >>"$log"
    supervisorctl_ update "$name" >/dev/null \
        || die "supervisorctl update $name failed"
    supervisorctl_ start "$name" >/dev/null \
        || die "supervisorctl start $name failed; see $log"
    pid=$(service_pid "$name") || die "$name exited at once; see $log"
    local start
    start=$(proc_start_time "$pid") || die "$name exited at once; see $log"
    printf '%s %s\n' "$pid" "$start" >"$(pid_file "$name")"
    say "started $name (PID $pid, log $log)"
}

# The start time of a process (clock ticks since boot).
proc_start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    local -a f
    read -r -a f <<<"$stat"
    printf '%s\n' "${f[19]}"
}

# The process of NAME's PID file still runs: wait_for's check, read from
# /proc instead of asking supervisord at every poll (supervisorctl is a
# Python program; about 0.1 s a call here).
service_alive() {
    local pid start
    read -r pid start <"$(pid_file "$1")" 2>/dev/null || return 1
    [ -n "$start" ] && [ "$(proc_start_time "$pid")" = "$start" ]
}

# Stop a service: supervisord sends TERM to its process group, KILL to
# the group after stop_wait_secs. Then KILL to what is left of the group
# (workers whose master exited first). Nothing else is signalled.
stop_service() {
    local name=$1 pid
    if ! pid=$(service_pid "$name"); then
        rm -f "$(pid_file "$name")"
        return 0
    fi
    say "stopping $name (PID $pid)"
    supervisorctl_ stop "$name" >/dev/null || true
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$(pid_file "$name")"
}

# supervisord ended (after every program is stopped).
stop_supervisord() {
    supervisord_up || return 0
    local pid i
    pid=$(supervisorctl_ pid 2>/dev/null) || true
    say "stopping supervisord (PID $pid)"
    supervisorctl_ shutdown >/dev/null 2>&1 || true
    for i in $(seq 100); do
        if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    rm -f "$CLOUD_SUPERVISOR_SOCKET"
}

# wait_for NAME SECONDS COMMAND...: until COMMAND succeeds; fail with the
# tail of NAME's log if it does not, or if NAME's process died.
wait_for() {
    local name=$1 secs=$2 i
    shift 2
    for i in $(seq $((secs * 4))); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ! service_alive "$name"; then
            tail -n 30 "$CLOUD_LOGS/$name.log" >&2 || true
            die "$name exited; see $CLOUD_LOGS/$name.log"
        fi
        sleep 0.25
    done
    tail -n 30 "$CLOUD_LOGS/$name.log" >&2 || true
    die "$name did not answer within ${secs}s; see $CLOUD_LOGS/$name.log"
}

http_up() { curl -sf -o /dev/null --noproxy '*' -m 5 "$1"; }
# Any HTTP answer, even 401: the service is listening and serving.
http_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' -m 5 "$1") \
        || return 1
    [ "$code" != 000 ]
}

venv_bin() { printf '%s/bin/%s\n' "$CLOUD_VENV" "$1"; }
