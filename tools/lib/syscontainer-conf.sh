#!/bin/bash
# syscontainer-conf.sh - the ONE writer of nova-compute's configuration for
# the nova-syscontainer driver. Sourced (never run) by tools/cloud.sh (the
# all-in-one cloud) and by devstack/plugin.sh, so both deploy the same
# settings and the all-in-one smoke test proves what DevStack gets.
#
# Interface (bash; needs python3 on PATH, nothing else):
#
#   syscontainer_iniset FILE SECTION KEY VALUE [SECTION KEY VALUE ...]
#       Set options in an ini file, in place (several triples: one pass).
#       The file and the section are created when absent; every other line
#       (comments, other sections, other keys, their order) is kept as it
#       was. A key already set in that section is replaced where it stands.
#
#   syscontainer_write_compute_conf FILE [[SECTION.]KEY=VALUE ...]
#       Write the driver's settings into nova.conf FILE:
#         [DEFAULT]      compute_driver = syscontainer.SysContainerDriver
#         [syscontainer] endpoint       = $SYSCONTAINER_ENDPOINT
#                                         (default /var/lib/lxd/unix.socket)
#                        storage_pool   = $SYSCONTAINER_STORAGE_POOL
#                                         (default "default")
#       and, when the endpoint is https:// , client_cert and client_key
#       ($SYSCONTAINER_CLIENT_CERT / _KEY, default
#       /etc/nova-syscontainer/client.{crt,key}, as tools/setup-host.sh
#       makes them) and server_cert ($SYSCONTAINER_SERVER_CERT, only when
#       set). Each further argument overrides or adds one option:
#       "KEY=VALUE" goes to [syscontainer] (see nova_syscontainer/conf.py
#       for every option), "SECTION.KEY=VALUE" to that section, e.g.
#         syscontainer_write_compute_conf /etc/nova/nova-cpu.conf \
#             endpoint=https://127.0.0.1:8443 DEFAULT.host=aio \
#             root_disk_size_unenforceable=warn
#       Returns non-zero, with a message on stderr, on a malformed argument.
#
#   SYSCONTAINER_TEMPEST_FEATURES (array of FLAG=True|False)
#   syscontainer_tempest_triples MIGRATIONS INTERFACE_ATTACH [VALIDATION]
#       Tempest's flags for this driver, one word a line as SECTION KEY
#       VALUE triples: [compute-feature-enabled] from the array (what
#       doc/source/support-matrix.ini claims; tests/unit checks the two
#       agree), interface_attach only if INTERFACE_ATTACH is True (it needs
#       nova-compute as root), cold_migration and live_migration set to
#       MIGRATIONS (True only with a migration endpoint), and [validation]
#       run_validation VALIDATION (default False: the busybox test image
#       runs no SSH server; True only with a stock cloud guest image, with
#       cloud-init and sshd, and floating IPs, as tools/cloud.sh tempest
#       --validation has). The DevStack plugin and tools/cloud.sh tempest
#       both write exactly these.

# Set several options at once: FILE then SECTION KEY VALUE triples.
# shellcheck disable=SC2016  # Python, not shell
_SYSCONTAINER_INI_PY='
import os
import re
import sys

# FILE and the triples come NUL-separated on stdin, never as arguments:
# values are passwords, and any local user reads /proc/<pid>/cmdline.
args = [a.decode("utf-8") for a in sys.stdin.buffer.read().split(b"\0")[:-1]]
path = args.pop(0)
settings = [tuple(args[i:i + 3]) for i in range(0, len(args), 3)]

lines = []
if os.path.exists(path):
    with open(path) as f:
        lines = f.read().splitlines()

section_re = re.compile(r"^\s*\[([^\]]+)\]\s*$")
for section, key, value in settings:
    key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*[=:]")
    current = None
    last_in_section = None   # index of the last line of the section
    replaced = False
    for i, line in enumerate(lines):
        m = section_re.match(line)
        if m:
            current = m.group(1).strip()
            if current == section:
                last_in_section = i
            continue
        if current != section:
            continue
        if line.strip():
            last_in_section = i
        if not replaced and key_re.match(line):
            lines[i] = "%s = %s" % (key, value)
            replaced = True
    if replaced:
        continue
    new = "%s = %s" % (key, value)
    if last_in_section is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines.extend(["[%s]" % section, new])
    else:
        lines.insert(last_in_section + 1, new)

directory = os.path.dirname(path)
if directory:
    os.makedirs(directory, exist_ok=True)
tmp = path + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(lines) + "\n")
os.replace(tmp, path)
'
_syscontainer_ini_write() {
    printf '%s\0' "$@" | python3 -c "$_SYSCONTAINER_INI_PY"
}

syscontainer_iniset() {
    if [ "$#" -lt 4 ] || [ $((($# - 1) % 3)) != 0 ]; then
        echo "syscontainer_iniset: usage: FILE SECTION KEY VALUE" \
            "[SECTION KEY VALUE ...]" >&2
        return 2
    fi
    _syscontainer_ini_write "$@"
}

syscontainer_write_compute_conf() {
    local file=${1:?syscontainer_write_compute_conf: nova.conf path needed}
    shift
    local endpoint=${SYSCONTAINER_ENDPOINT:-/var/lib/lxd/unix.socket}
    local -a triples=(
        DEFAULT compute_driver syscontainer.SysContainerDriver
        syscontainer endpoint "$endpoint"
        syscontainer storage_pool "${SYSCONTAINER_STORAGE_POOL:-default}"
    )
    local arg key value section
    for arg in "$@"; do
        case $arg in
            endpoint=https://*) endpoint=${arg#endpoint=} ;;
        esac
    done
    if [[ $endpoint == https://* ]]; then
        triples+=(
            syscontainer client_cert
            "${SYSCONTAINER_CLIENT_CERT:-/etc/nova-syscontainer/client.crt}"
            syscontainer client_key
            "${SYSCONTAINER_CLIENT_KEY:-/etc/nova-syscontainer/client.key}"
        )
        if [ -n "${SYSCONTAINER_SERVER_CERT:-}" ]; then
            triples+=(syscontainer server_cert "$SYSCONTAINER_SERVER_CERT")
        fi
    fi
    for arg in "$@"; do
        if [[ $arg != *=* ]] || [[ ${arg%%=*} == "" ]]; then
            echo "syscontainer_write_compute_conf: '$arg' is not" \
                "[SECTION.]KEY=VALUE" >&2
            return 2
        fi
        key=${arg%%=*}
        value=${arg#*=}
        section=syscontainer
        if [[ $key == *.* ]]; then
            section=${key%%.*}
            key=${key#*.}
        fi
        triples+=("$section" "$key" "$value")
    done
    _syscontainer_ini_write "$file" "${triples[@]}"
}

# Tempest [compute-feature-enabled] flags, from what the driver does (see
# doc/source/support-matrix.ini, where each supported feature names the
# functional test that proves it). Migrations are set separately: they need
# a migration endpoint.
# shellcheck disable=SC2034  # read by syscontainer_tempest_triples and tests
SYSCONTAINER_TEMPEST_FEATURES=(
    console_output=True       # the container's console log
    pause=True                # freezer cgroup
    suspend=True              # CRIU checkpoint to disk
    resize=True               # same host and (with an endpoint) another host
    rescue=True               # a rescue container with the original's root
    stable_rescue=False       # hw_rescue_device/bus and volume-backed: not proved
    shelve=True               # offload through a snapshot in Glance, unshelve
    shelve_migrate=True       # unshelve onto another host, from Glance
    snapshot=True             # the running container streamed into Glance
    interface_attach=True     # NICs hot-plugged (nova-compute as root)
    # Tempest's config drive tests mount a drive labelled config-2; a
    # container has no block device: the same tree reaches cloud-init
    # through its seed directory instead (support matrix:
    # guest.setup.configdrive-seed), which Tempest does not test.
    config_drive=False
    # The driver points cloud-init's OpenStack datasource at Nova's
    # metadata API; the all-in-one's smoke test logs into a stock guest
    # with the key it read there. Tempest reads the API only over SSH
    # ([validation] run_validation).
    metadata_service=True
    personality=False         # no file injection
    # chpasswd in the guest (functional test); Tempest's test then logs in
    # with the new password over SSH as image_ssh_user: not proved, and
    # busybox (DevStack's Tempest image) has no chpasswd.
    change_password=False
    disk_config=False         # a container has no partition table
    vnc_console=False         # no graphical console
    spice_console=False
    serial_console=True       # test_serial_console (doc/source/consoles.rst)
    attach_encrypted_volume=False  # volumes: not implemented
    swap_volume=False
    volume_multiattach=False
    volume_backed_live_migration=False
    block_migration_for_live_migration=False
    ide_bus=False
)

syscontainer_tempest_triples() {
    local migrations=${1:?MIGRATIONS (True or False) needed}
    local interface_attach=${2:?INTERFACE_ATTACH (True or False) needed}
    local validation=${3:-False}
    local flag key value
    for flag in "${SYSCONTAINER_TEMPEST_FEATURES[@]}"; do
        key=${flag%%=*}
        value=${flag#*=}
        if [ "$key" = interface_attach ] && [ "$interface_attach" != True ]; then
            value=False
        fi
        printf '%s\n' compute-feature-enabled "$key" "$value"
    done
    printf '%s\n' compute-feature-enabled cold_migration "$migrations" \
        compute-feature-enabled live_migration "$migrations" \
        validation run_validation "$validation"
}
