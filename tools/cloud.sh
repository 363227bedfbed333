#!/bin/bash
# cloud.sh - a real single-node OpenStack whose compute runs LXD system
# containers through nova-syscontainer, on one Debian 12 machine (as root,
# no systemd needed).
#
#   tools/cloud.sh up       start (installing what is missing), then boot a
#                           server "demo" with the openstack CLI and show it,
#                           and print Horizon's URL and the demo user's login
#   tools/cloud.sh start    install what is missing, configure, start
#   tools/cloud.sh install  install what is missing only (Debian packages,
#                           the services', Horizon's and Tempest's
#                           virtualenvs): tools/run-tests.sh runs it beside
#                           the functional tests on a fresh machine
#   tools/cloud.sh demo     image, flavor, network, server create --wait,
#                           and show (its NIC and port too)
#   tools/cloud.sh tempest [--validation] [REGEX]
#                           Tempest (its own virtualenv) against the running
#                           cloud: the smoke set, or the tests REGEX selects,
#                           minus tools/cloud/tempest-exclude.txt; counts
#                           printed, subunit and report kept in
#                           /var/log/nova-syscontainer/tempest/.
#                           --validation: the stock Debian guest as Tempest's
#                           image, [validation] run_validation on (SSH
#                           through floating IPs), for the scenario tests
#   tools/cloud.sh rally    Rally (its own virtualenv) against the running
#                           cloud: tools/cloud/rally/boot-and-delete.yaml
#                           (boot_and_delete_server, boot_and_list_server,
#                           SLA no failure); reports in
#                           /var/log/nova-syscontainer/rally/.
#   tools/cloud.sh start-nova
#                           start those of Nova's services that are not
#                           running (a nova-compute that died, say) with the
#                           cloud's configuration, and wait until they serve
#   tools/cloud.sh stop     stop exactly the processes start started, and
#                           the cloud's supervisord
#   tools/cloud.sh status   which services run (supervisorctl's view)
#   tools/cloud.sh reset    stop, delete this cloud's containers, state and
#                           configuration (the virtualenv stays)
#
# Consoles: nova-serialproxy (every instance's serial console) and Horizon
# (tools/cloud/lib-horizon.sh), on 127.0.0.1 too; Horizon's Console tab is
# the serial console. A project "demo" with a member user "demo" logs in
# there (password DEMO_PASSWORD in the 0600 secrets file of the config dir).
# Services: RabbitMQ (Debian's), Keystone (fernet, bootstrap admin),
# Placement, Glance (file store), Neutron (API, RPC server, ML2 with the
# openvswitch driver, "local" networks for projects and a flat external
# network "public" on br-ex for floating IPs, the real OVS, L3 and DHCP
# agents), Nova API (uwsgi), conductor, scheduler and nova-compute with
# this driver, all on 127.0.0.1, their databases in a MariaDB server of the
# cloud's own (Debian's, socket only). The LXD daemon
# and Open vSwitch (br-int) come from tools/setup-host.sh.
#   config      /etc/nova-syscontainer/cloud/<service>/
#   state, DBs  /var/lib/nova-syscontainer/cloud/
#   logs, PIDs  /var/log/nova-syscontainer/cloud/
#   supervisord /etc/nova-syscontainer/cloud/supervisord.conf and supervisor/,
#               /var/lib/nova-syscontainer/cloud/supervisor/ (its socket)
#   services    /opt/nova-syscontainer/cloud-venv (own virtualenv)
#   CLI         /etc/openstack/clouds.yaml, cloud "syscontainer"
set -Eeuo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
readonly REPO
readonly CLOUD_LIB=$REPO/tools/cloud

# shellcheck source=tools/lib/syscontainer-conf.sh
. "$REPO/tools/lib/syscontainer-conf.sh"
# shellcheck source=tools/lib/syscontainer-image.sh
. "$REPO/tools/lib/syscontainer-image.sh"
# shellcheck source=tools/cloud/lib-common.sh
. "$CLOUD_LIB/lib-common.sh"
# shellcheck source=tools/cloud/lib-install.sh
. "$CLOUD_LIB/lib-install.sh"
# shellcheck source=tools/cloud/lib-config.sh
. "$CLOUD_LIB/lib-config.sh"
# shellcheck source=tools/cloud/lib-services.sh
. "$CLOUD_LIB/lib-services.sh"
# shellcheck source=tools/cloud/lib-demo.sh
. "$CLOUD_LIB/lib-demo.sh"
# shellcheck source=tools/cloud/lib-tempest.sh
. "$CLOUD_LIB/lib-tempest.sh"
# shellcheck source=tools/cloud/lib-rally.sh
. "$CLOUD_LIB/lib-rally.sh"
# shellcheck source=tools/cloud/lib-horizon.sh
. "$CLOUD_LIB/lib-horizon.sh"

usage() { sed -n '2,/^set -E/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# One cloud.sh at a time: two starts would race for the same supervisord.
# A session that holds the lock itself around several commands (flock on
# the same file) sets SYSCONTAINER_CLOUD_LOCK_HELD=1 for them: they would
# otherwise wait for it forever.
take_lock() {
    [ "${SYSCONTAINER_CLOUD_LOCK_HELD:-}" != 1 ] || return 0
    exec 9>/run/lock/nova-syscontainer-cloud.lock
    flock 9
}

# What the cloud and its Tempest need on the machine; a no-op when present.
cmd_install() {
    local t0=$SECONDS
    mkdir -p "$CLOUD_LOGS" "$CLOUD_STATE" "$CLOUD_CONF"
    install_apt_packages
    install_venv
    install_supervisor
    install_horizon
    install_tempest
    link_openstack_cli
    say "installed in $((SECONDS - t0))s"
}

cmd_start() {
    local t0=$SECONDS
    mkdir -p "$CLOUD_LOGS" "$CLOUD_STATE" "$CLOUD_CONF"
    say "preparing the host (tools/setup-host.sh ${CLOUD_SETUP_HOST_ARGS[*]})"
    "$REPO/tools/setup-host.sh" "${CLOUD_SETUP_HOST_ARGS[@]}"
    install_apt_packages
    install_venv
    install_supervisor
    install_horizon
    link_openstack_cli
    write_all_conf
    (umask 077; write_console_conf)
    start_mariadb
    sync_databases
    start_all
    start_consoles
    say "cloud up in $((SECONDS - t0))s: export OS_CLOUD=$CLOUD_NAME" \
        "(clouds.yaml: $CLOUDS_YAML); logs in $CLOUD_LOGS"
    say "Horizon at $HORIZON_URL (user $DEMO_USER, project $DEMO_PROJECT;" \
        "password: DEMO_PASSWORD in $CLOUD_CONF/secrets)"
}

# Every service; 3 when one of them is stopped.
cmd_status() {
    local rc=0
    status_all || rc=$?
    status_consoles || rc=$?
    return "$rc"
}

main() {
    local cmd=${1:-up}
    case $cmd in
        -h|--help|help) usage; return 0 ;;
    esac
    if [ "$(id -u)" != 0 ]; then
        die "must run as root (it starts the LXD daemon and the services)"
    fi
    case $cmd in
        up) take_lock; cmd_start; demo; horizon_info ;;
        start) take_lock; cmd_start ;;
        start-nova) take_lock; start_nova ;;
        install) take_lock; cmd_install ;;
        demo) take_lock; load_secrets; demo ;;
        tempest) shift; cmd_tempest "$@" ;;
        rally) cmd_rally ;;
        stop) take_lock; stop_consoles; stop_all ;;
        status) cmd_status ;;
        reset) take_lock; stop_consoles; reset_all ;;
        *) usage >&2; return 2 ;;
    esac
}

main "$@"
