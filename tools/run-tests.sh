#!/bin/bash
# run-tests.sh - the whole test suite on a fresh Debian 12 machine (as root).
#
# Sets up the host (tools/setup-host.sh: two LXD daemons, two Incus
# daemons, CRIU, storage pools, busybox test image) and builds the stock
# Debian guest image (both cached), installs tox in a private virtualenv,
# then runs the style checks, the documentation build (warnings are
# errors: the support matrix renders), the unit tests, the functional
# tests (Nova's own services driving the driver against the real daemon:
# the whole suite on LXD, a subset on Incus, tox -e functional-incus) and
# the smoke test of the all-in-one cloud (tools/cloud.sh, through the
# openstack CLI). The cloud's packages and virtualenvs are installed in the
# background meanwhile (tools/cloud.sh install). .ci/run calls exactly this.
set -Eeuo pipefail

cd "$(dirname "$0")/.."
readonly REPO=$PWD
readonly BOOTSTRAP=$REPO/.tox/.bootstrap
readonly LOG_DIR=/var/log/nova-syscontainer
readonly ENVS=${SYSCONTAINER_TOX_ENVS:-pep8,docs,py3,functional,functional-eventlet,functional-incus,smoke}

say() { printf 'run-tests: %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "run-tests: must run as root (it starts the LXD daemon)" >&2
    exit 1
fi

# Incus (two daemons beside LXD's) only when its suite runs: about 30 s
# (apt download and unpack, daemons started) on a fresh machine.
setup_args=(--second-daemon)
case ,$ENVS, in
    *,functional-incus,*) setup_args+=(--incus) ;;
esac
say "preparing the host (two daemons: migration tests move containers; ${setup_args[*]})"
tools/setup-host.sh "${setup_args[@]}"

# The stock Debian guest of the functional and smoke tests: built once from
# Debian's packages (about 7 min on 2 cores), then a cached no-op.
say "building the stock guest image (cached: $(tools/build-stock-image.sh --print-path))"
tools/build-stock-image.sh >/dev/null

if ! command -v shellcheck >/dev/null; then
    say "installing shellcheck"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck \
        >>"$LOG_DIR/setup-host.log" 2>&1 || {
        apt-get update -q >>"$LOG_DIR/setup-host.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck \
            >>"$LOG_DIR/setup-host.log" 2>&1
    }
fi

# The smoke tests' cloud (tools/cloud.sh: Debian packages and three
# virtualenvs, about 7 min on a fresh machine, a no-op later) and their
# browser are installed in the background while the other envs run; the
# smoke env's "cloud.sh up" waits for the install through the cloud's lock.
install_pid=
case ,$ENVS, in
    *,smoke,*)
        say "installing the all-in-one cloud and chromium in the background" \
            "(log $LOG_DIR/cloud-install.log)"
        {
            tools/cloud.sh install
            if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                    --no-install-recommends chromium chromium-driver
            fi
        } >>"$LOG_DIR/cloud-install.log" 2>&1 &
        install_pid=$!
        ;;
esac

if [ ! -x "$BOOTSTRAP/bin/tox" ]; then
    say "installing tox"
    python3 -m venv "$BOOTSTRAP"
    "$BOOTSTRAP/bin/pip" install -q 'tox>=4.6,<5'
fi

say "running tox -e $ENVS"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# pipefail: the status is tox's, not tee's.
"$BOOTSTRAP/bin/tox" -e "$ENVS" 2>&1 | tee "$out" || status=$?

if [ -n "$install_pid" ] && ! wait "$install_pid"; then
    say "the cloud's background install failed; the end of $LOG_DIR/cloud-install.log:"
    tail -n 20 "$LOG_DIR/cloud-install.log" || true
    status=1
fi

# stestr prints " - Passed: N" and " - Failed: N" per run; add them up into
# one closing line.
passed=$(awk '/^ - Passed: /{s+=$3} END{print s+0}' "$out")
failed=$(awk '/^ - Failed: /{s+=$3} END{print s+0}' "$out")
echo "tests: ${passed} passed, ${failed} failed"
if [ "$status" = 0 ] && [ "$failed" != 0 ]; then
    status=1
fi
if [ "$status" = 0 ] && [ "$passed" = 0 ]; then
    say "no test ran"
    status=1
fi
exit "$status"
