#!/bin/bash
# lib-common.sh - paths, messages and process handling of the all-in-one
# cloud (sourced by tools/cloud.sh; no systemd: every service is started
# with setsid into a session of its own, its PID in a file, and stopped by
# that PID's process group only).

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

# The start time of a process (clock ticks since boot), which tells a
# process from a later one that got the same PID.
proc_start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086  # split the fields on purpose
    set -- $stat
    printf '%s\n' "${20}"
}

pid_file() { printf '%s/%s.pid\n' "$CLOUD_LOGS" "$1"; }

# The PID recorded for a service, if that very process still runs.
service_pid() {
    local file pid start
    file=$(pid_file "$1")
    [ -r "$file" ] || return 1
    read -r pid start <"$file" || return 1
    [ -n "$pid" ] && [ -n "$start" ] || return 1
    [ "$(proc_start_time "$pid")" = "$start" ] || return 1
    printf '%s\n' "$pid"
}

# start_service NAME [VAR=VALUE ...] -- COMMAND ARGS...
# Start COMMAND in a session of its own (setsid), output appended to
# $CLOUD_LOGS/NAME.log, unless the process of NAME's PID file still runs.
start_service() {
    local name=$1
    shift
    local -a envs=()
    while [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    shift
    if service_pid "$name" >/dev/null; then
        say "$name already running (PID $(service_pid "$name"))"
        return 0
    fi
    local log pidf
    log=$CLOUD_LOGS/$name.log
    pidf=$(pid_file "$name")
    rm -f "$pidf"
    printf '\n==== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >>"$log"
    # The inner shell records its own PID and start time, then becomes
    # the service (exec), so the file names the service's own process.
    # No descriptor but stdin, stdout and stderr is passed on: not fd 9
    # (cloud.sh's lock), nor a lock its caller holds around it, as
    # "flock /run/nova-syscontainer-cloud.lock tools/cloud.sh up" does
    # (without -o flock leaves its fd open for the command): a service
    # that inherits a lock's descriptor holds the lock as long as it runs.
    # shellcheck disable=SC2016  # expanded by the inner shell
    env "${envs[@]}" setsid bash -c '
        for fd in /proc/$$/fd/*; do
            fd=${fd##*/}
            [ "$fd" -le 2 ] || eval "exec $fd>&-"
        done
        stat=$(cat /proc/$$/stat); stat=${stat##*) }
        read -r -a f <<<"$stat"
        printf "%s %s\n" "$$" "${f[19]}" >"$0.tmp" && mv "$0.tmp" "$0"
        exec "$@"' "$pidf" "$@" </dev/null >>"$log" 2>&1 9>&- &
    local i
    for i in $(seq 50); do
        [ -s "$pidf" ] && break
        sleep 0.1
    done
    say "started $name (PID $(cut -d' ' -f1 "$pidf"), log $log)"
}

# Stop a service: TERM to its whole process group (its session, as setsid
# made it), KILL after a grace period. Nothing else is signalled.
stop_service() {
    local name=$1 grace=${2:-15} pid i
    if ! pid=$(service_pid "$name"); then
        rm -f "$(pid_file "$name")"
        return 0
    fi
    say "stopping $name (PID $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq $((grace * 10))); do
        service_pid "$name" >/dev/null || break
        sleep 0.1
    done
    if service_pid "$name" >/dev/null; then
        say "$name did not stop in ${grace}s: KILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    # Workers left in the group after their master died.
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$(pid_file "$name")"
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
        if ! service_pid "$name" >/dev/null; then
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
