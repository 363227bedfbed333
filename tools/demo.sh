#!/bin/bash
# demo.sh - the main job on a fresh Debian 12 machine (as root): prepare the
# host, then boot a server through Nova's API on the real LXD daemon and
# show the container running, its enforced limits and its console log.
set -Eeuo pipefail

cd "$(dirname "$0")/.."
readonly BOOTSTRAP=$PWD/.tox/.bootstrap

if [ "$(id -u)" != 0 ]; then
    echo "demo: must run as root (it starts the LXD daemon)" >&2
    exit 1
fi
tools/setup-host.sh
if [ ! -x "$BOOTSTRAP/bin/tox" ]; then
    python3 -m venv "$BOOTSTRAP"
    "$BOOTSTRAP/bin/pip" install -q 'tox>=4.6,<5'
fi
exec "$BOOTSTRAP/bin/tox" -q -e demo
