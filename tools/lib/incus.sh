# shellcheck shell=bash
# tools/lib/incus.sh - Incus daemons beside LXD, sourced by tools/setup-host.sh
# (--incus). Uses setup-host's helpers (say, run, die, alive, at-style timeouts,
# cert_fingerprint, install_if_changed, DAEMON_ENV, the test image and the client
# certificate) and changes nothing of the LXD path.
#
# What it sets up:
#   - Incus 6.0.x (incus-base + incus-client: containers only, no QEMU) from Debian
#     bookworm-backports, installed with apt-get through a private sources list and
#     lists dir ($INCUS_APT_DIR): the system's apt sources stay as they are, and a
#     later plain "apt-get upgrade" never sees backports;
#   - the daemon "incus" (INCUS_DIR=/var/lib/incus, https 127.0.0.1:8543) and with
#     --second-daemon "incus-b" (INCUS_DIR=/var/lib/nova-syscontainer/incus-b, https
#     127.0.0.1:8544), each started with setsid (no systemd), pid files and logs in
#     /var/log/nova-syscontainer/incus*.{pid,log,out}. Their sockets and directories
#     are their own: LXD's are /var/lib/lxd and /var/lib/nova-syscontainer/lxd-b;
#   - on each: pools "default" (dir) and "quota" (btrfs loop file), a default profile
#     with only a root disk and no NIC, the Nova client certificate trusted, the
#     server certificate exported to /etc/nova-syscontainer/<name>-server.crt, the
#     busybox test image under its alias; the two Incus daemons trust each other.

readonly INCUS_SUITE=bookworm-backports
readonly INCUS_MIRROR=http://deb.debian.org/debian
readonly INCUS_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
readonly INCUS_APT_DIR=$CACHE_DIR/apt-$INCUS_SUITE
# incus-base is the daemon without the VM parts (the "incus" package pulls QEMU).
readonly INCUS_PACKAGES=(incus-base incus-client)
readonly INCUS_MIN_VERSION=6.0

readonly INCUS_A_NAME=incus INCUS_A_DIR=/var/lib/incus INCUS_A_ADDR=127.0.0.1:8543
readonly INCUS_B_NAME=incus-b INCUS_B_DIR=$STATE_DIR/incus-b INCUS_B_ADDR=127.0.0.1:8544
readonly INCUS_QUOTA_POOL_SIZE=2GiB

INCUS=${SYSCONTAINER_INCUS:-0}

# iat DIR incus ARGS...: talk to the Incus daemon of INCUS_DIR=DIR (bounded in time).
iat() {
    local dir=$1
    shift
    INCUS_DIR=$dir timeout 120 "$@"
}

incus_answers() { # DIR
    INCUS_DIR=$1 timeout 10 incus query /1.0 >/dev/null 2>&1
}

incus_version_ok() {
    local v
    v=$(dpkg-query -W -f '${Version}' incus-base 2>/dev/null) || return 1
    [[ -n $v ]] || return 1
    [[ $(printf '%s\n%s\n' "$INCUS_MIN_VERSION" "$v" | sort -V | head -n 1) == "$INCUS_MIN_VERSION" ]]
}

incus_installed() {
    local pkg status
    for pkg in "${INCUS_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || return 1
    done
    incus_version_ok && command -v incus >/dev/null && [[ -x $(incusd_path) ]]
}

# incusd_path: the daemon binary (Debian puts it outside PATH).
incusd_path() {
    local p
    for p in /usr/libexec/incus/incusd /usr/lib/incus/incusd /usr/sbin/incusd /usr/bin/incusd; do
        [[ -x $p ]] && { printf '%s\n' "$p"; return 0; }
    done
    command -v incusd 2>/dev/null || printf '/usr/libexec/incus/incusd\n'
}

# ensure_incus_packages: apt-get with a private configuration that sees the
# system's own sources plus bookworm-backports, lists kept in $INCUS_APT_DIR.
ensure_incus_packages() {
    incus_installed && return 0
    local t=$INCUS_APT_DIR t0
    t0=$(date +%s%3N)
    say "installing ${INCUS_PACKAGES[*]} from Debian $INCUS_SUITE (private apt lists in $t)"
    mkdir -p "$t/lists/partial"
    printf 'deb [signed-by=%s] %s %s main\n' "$INCUS_KEYRING" "$INCUS_MIRROR" "$INCUS_SUITE" \
        >"$t/backports.list"
    local apt_opts=(
        -o "Dir::Etc::SourceList=$t/backports.list"
        # The system's own sources (read, never changed) for the dependencies.
        -o "Dir::Etc::SourceParts=/etc/apt/sources.list.d"
        -o "Dir::State::Lists=$t/lists"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
        -o "APT::Get::List-Cleanup=0"
    )
    if [[ -s /etc/apt/sources.list ]]; then
        cat /etc/apt/sources.list >>"$t/backports.list"
    fi
    export DEBIAN_FRONTEND=noninteractive
    run apt-get "${apt_opts[@]}" update -q
    run apt-get "${apt_opts[@]}" install -y -q --no-install-recommends \
        -t "$INCUS_SUITE" "${INCUS_PACKAGES[@]}"
    incus_installed || die "Incus >= $INCUS_MIN_VERSION is not installed after apt-get"
    say "incus packages installed in $(($(date +%s%3N) - t0)) ms"
}

# incus_daemon_pids DIR: running incusd daemons (not sub-commands such as
# forkstart) serving INCUS_DIR=DIR.
incus_daemon_pids() {
    local dir=$1 proc exe env_dir arg is_daemon prev
    local -a argv
    for proc in /proc/[0-9]*; do
        exe=$(readlink "$proc/exe" 2>/dev/null) || continue
        [[ ${exe% (deleted)} == */incusd ]] || continue
        mapfile -d '' -t argv 2>/dev/null <"$proc/cmdline" || continue
        [[ ${#argv[@]} -gt 0 && ${argv[0]##*/} == incusd ]] || continue
        is_daemon=1 prev=""
        for arg in "${argv[@]:1}"; do
            if [[ $arg != -* && $prev != --group && $prev != --logfile ]]; then
                is_daemon=0
                break
            fi
            prev=$arg
        done
        ((is_daemon)) || continue
        env_dir=$(tr '\0' '\n' 2>/dev/null <"$proc/environ" | sed -n 's/^INCUS_DIR=//p' | tail -n 1)
        [[ ${env_dir:-/var/lib/incus} == "$dir" ]] || continue
        printf '%s\n' "${proc#/proc/}"
    done
}

incus_server_pid() { # DIR
    INCUS_DIR=$1 timeout 10 incus query /1.0 2>/dev/null | grep -o '"server_pid": *[0-9]*' |
        grep -o '[0-9]*$'
}

ensure_incus_daemon() { # NAME DIR
    local name=$1 dir=$2
    local pidfile=$LOG_DIR/$name.pid daemon_log=$LOG_DIR/$name.log pids pid
    if incus_answers "$dir" && ((LXCFS_STARTED)); then
        mapfile -t pids < <(incus_daemon_pids "$dir")
        ((${#pids[@]} == 0)) ||
            stop_stale_daemon "$name" "$dir" "started before lxcfs (re)started" "${pids[@]}"
    fi
    if incus_answers "$dir"; then
        pid=$(incus_server_pid "$dir") || pid=""
        [[ -z $pid ]] || echo "$pid" >"$pidfile"
        return 0
    fi
    mapfile -t pids < <(incus_daemon_pids "$dir")
    if ((${#pids[@]} > 0)); then
        if INCUS_DIR=$dir timeout 35 incus admin waitready --timeout 30 >>"$LOG" 2>&1 &&
            incus_answers "$dir"; then
            incus_server_pid "$dir" >"$pidfile" || true
            return 0
        fi
        stop_stale_daemon "$name" "$dir" "is not answering" "${pids[@]}"
    fi
    # Nothing serves $dir: a killed daemon's socket and pid file are stale.
    rm -f "$dir/unix.socket" "$pidfile"
    mkdir -p "$dir"
    chmod 711 "$dir"
    say "$name: starting the Incus daemon (INCUS_DIR=$dir, log $daemon_log)"
    printf '\n=== %s starting incusd for %s\n' "$(date '+%F %T')" "$dir" >>"$LOG_DIR/$name.out"
    local incusd
    incusd=$(incusd_path)
    (
        cd /
        exec 9>&-
        exec env -i "${DAEMON_ENV[@]}" INCUS_DIR="$dir" \
            setsid "$incusd" --group root --logfile "$daemon_log" \
            </dev/null >>"$LOG_DIR/$name.out" 2>&1
    ) &
    local started=$! i
    echo "$started" >"$pidfile"
    for i in $(seq 1 30); do
        if INCUS_DIR=$dir timeout 5 incus admin waitready --timeout 2 >>"$LOG" 2>&1; then
            break
        fi
        if ! alive "$started" || ((i == 30)); then
            tail -n 20 "$daemon_log" "$LOG_DIR/$name.out" 2>/dev/null | sed 's/^/  | /' >&2
            alive "$started" || die "$name: incusd exited during start-up (see $daemon_log)"
            die "$name: incusd did not become ready within 60 s (see $daemon_log)"
        fi
    done
    incus_answers "$dir" || die "$name: incusd is ready but does not answer 'incus query /1.0'"
    incus_server_pid "$dir" >"$pidfile" || true
}

ensure_incus_trusted() { # NAME DIR CERT_FILE CERT_NAME
    local name=$1 dir=$2 cert=$3 cert_name=$4 fp
    fp=$(cert_fingerprint "$cert")
    iat "$dir" incus query "/1.0/certificates/$fp" >/dev/null 2>&1 && return 0
    say "$name: trusting $cert_name (${fp:0:12})"
    # Incus 6.0: "trust add" makes a join token; add-certificate adds a file.
    run iat "$dir" incus config trust add-certificate "$cert" --name "$cert_name"
}

ensure_incus_image() { # NAME DIR
    local name=$1 dir=$2 fp target
    fp=$(image_fingerprint)
    if ! iat "$dir" incus query "/1.0/images/$fp" >/dev/null 2>&1; then
        say "$name: importing the test image (${fp:0:12})"
        run iat "$dir" incus image import "$IMAGE" -q
    fi
    target=$(iat "$dir" incus query "/1.0/images/aliases/$IMAGE_ALIAS" 2>/dev/null |
        grep -o '"target": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}') || target=""
    if [[ $target != "$fp" ]]; then
        if [[ -n $target ]]; then
            run iat "$dir" incus image alias delete "$IMAGE_ALIAS"
            run iat "$dir" incus image delete "$target"
        fi
        run iat "$dir" incus image alias create "$IMAGE_ALIAS" "$fp"
    fi
}

# incus_setup: everything above, for incus and (with --second-daemon) incus-b.
# Prints nothing on success but the endpoints it appends to INCUS_ENDPOINTS.
INCUS_ENDPOINTS=""
incus_setup() {
    local t0
    t0=$(date +%s%3N)
    ensure_incus_packages
    local daemons=("$INCUS_A_NAME|$INCUS_A_DIR|$INCUS_A_ADDR") entry name dir addr
    ((SECOND_DAEMON)) && daemons+=("$INCUS_B_NAME|$INCUS_B_DIR|$INCUS_B_ADDR")
    for entry in "${daemons[@]}"; do
        IFS='|' read -r name dir addr <<<"$entry"
        ensure_incus_daemon "$name" "$dir"
        ensure_config "$name" "$dir" "$addr" incus "$INCUS_QUOTA_POOL_SIZE"
        ensure_incus_trusted "$name" "$dir" "$CLIENT_CRT" "$CLIENT_CERT_NAME"
        export_server_cert "$dir" "$CONF_DIR/$name-server.crt"
        ensure_incus_image "$name" "$dir"
    done
    if ((SECOND_DAEMON)); then
        ensure_incus_trusted "$INCUS_A_NAME" "$INCUS_A_DIR" "$INCUS_B_DIR/server.crt" "$INCUS_B_NAME-server"
        ensure_incus_trusted "$INCUS_B_NAME" "$INCUS_B_DIR" "$INCUS_A_DIR/server.crt" "$INCUS_A_NAME-server"
    fi
    for entry in "${daemons[@]}"; do
        IFS='|' read -r name dir addr <<<"$entry"
        incus_answers "$dir" || die "$name: not answering on $dir/unix.socket"
        check_https "$name" "$addr" "$CONF_DIR/$name-server.crt"
        INCUS_ENDPOINTS+=" $name=unix:$dir/unix.socket,https://$addr"
    done
    say "incus set-up took $(($(date +%s%3N) - t0)) ms"
}
