#!/bin/bash
# lib-rally.sh - Rally (rally-openstack from PyPI, a virtualenv of its own)
# against the running all-in-one cloud: tools/cloud/rally/boot-and-delete.yaml
# (NovaServers.boot_and_delete_server and boot_and_list_server, SLA: no
# failure) with the Tempest image and flavor (lib-tempest.sh makes them),
# its HTML and JSON reports kept in $RALLY_LOGS.

readonly RALLY_OPENSTACK_VERSION=4.1.0
readonly RALLY_VENV=${SYSCONTAINER_RALLY_VENV:-/opt/nova-syscontainer/rally-venv}
readonly RALLY_LOGS=${SYSCONTAINER_RALLY_LOGS:-/var/log/nova-syscontainer/rally}
readonly RALLY_STATE=$CLOUD_STATE/rally
readonly RALLY_CONF=$RALLY_STATE/rally.conf
readonly RALLY_TASK=$CLOUD_LIB/rally/boot-and-delete.yaml
readonly RALLY_TIMES=${SYSCONTAINER_RALLY_TIMES:-10}
readonly RALLY_CONCURRENCY=${SYSCONTAINER_RALLY_CONCURRENCY:-2}

install_rally() {
    local log=$CLOUD_LOGS/install.log
    if [ "$(cat "$RALLY_VENV/.nsc-rally" 2>/dev/null)" = "$RALLY_OPENSTACK_VERSION" ]
    then
        return 0
    fi
    say "installing rally-openstack $RALLY_OPENSTACK_VERSION into $RALLY_VENV (pip; about two minutes)"
    rm -rf "$RALLY_VENV"
    "$CLOUD_PYTHON" -m venv "$RALLY_VENV" >>"$log" 2>&1
    "$RALLY_VENV/bin/pip" install -q "rally-openstack==$RALLY_OPENSTACK_VERSION" \
        >>"$log" 2>&1 || die "pip install rally-openstack failed; see $log"
    printf '%s\n' "$RALLY_OPENSTACK_VERSION" >"$RALLY_VENV/.nsc-rally"
}

rally_cli() { "$RALLY_VENV/bin/rally" --config-file "$RALLY_CONF" "$@"; }

# Rally's database and its environment "syscontainer" (the cloud's admin,
# whose password stays in files readable by root only, never in argv).
rally_environment() {
    (umask 077; mkdir -p "$RALLY_STATE")
    if [ ! -f "$RALLY_CONF" ]; then
        (umask 077; printf '[database]\nconnection = sqlite:///%s/rally.sqlite\n' \
            "$RALLY_STATE" >"$RALLY_CONF")
        run_logged "rally db create" rally_cli db create
    fi
    local spec=$RALLY_STATE/env-spec.json
    (umask 077; ADMIN_PASSWORD=$ADMIN_PASSWORD "$CLOUD_PYTHON" - "$spec" <<PY
import json, os, sys
spec = {'openstack': {
    'auth_url': '$KEYSTONE_URL', 'region_name': 'RegionOne',
    'admin': {'username': 'admin', 'password': os.environ['ADMIN_PASSWORD'],
              'project_name': 'admin', 'user_domain_name': 'Default',
              'project_domain_name': 'Default'}}}
with open(sys.argv[1], 'w') as f:
    json.dump(spec, f)
PY
    )
    if ! rally_cli env show syscontainer >/dev/null 2>&1; then
        run_logged "rally env create" rally_cli env create --name syscontainer \
            --spec "$spec"
    fi
    rally_cli env use syscontainer >/dev/null
}

# tools/cloud.sh rally: the task, its SLA checked, its reports kept.
# Non-zero when an iteration failed.
cmd_rally() {
    status_all >/dev/null || die "the cloud is not running (tools/cloud.sh start)"
    load_secrets
    mkdir -p "$RALLY_LOGS"
    install_rally
    tempest_resources
    rally_environment
    local stamp report t0=$SECONDS rc=0 uuid
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    report=$RALLY_LOGS/rally-$stamp
    say "Rally $RALLY_TASK ($RALLY_TIMES iterations, concurrency $RALLY_CONCURRENCY each), report $report.html"
    rally_cli task start "$RALLY_TASK" --task-args "{\"image\": \"$TEMPEST_IMAGE\", \"flavor\": \"$TEMPEST_FLAVOR\", \"times\": $RALLY_TIMES, \"concurrency\": $RALLY_CONCURRENCY}" \
        >"$report.txt" 2>&1 || rc=$?
    uuid=$(rally_cli task list --uuids-only 2>/dev/null | tail -n1)
    [ -n "$uuid" ] || die "Rally ran no task; see $report.txt"
    rally_cli task report --uuid "$uuid" --html --out "$report.html" >>"$report.txt" 2>&1 || true
    rally_cli task report --uuid "$uuid" --json --out "$report.json" >>"$report.txt" 2>&1 || true
    rally_cli task sla-check --uuid "$uuid" >>"$report.txt" 2>&1 || rc=1
    "$RALLY_VENV/bin/python" "$CLOUD_LIB/rally_summary.py" "$report.json" \
        || rc=1
    say "rally: task $uuid in $((SECONDS - t0))s; $report.html"
    return "$rc"
}
