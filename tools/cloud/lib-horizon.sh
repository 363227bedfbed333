#!/bin/bash
# lib-horizon.sh - consoles of the all-in-one cloud: nova-serialproxy and
# Horizon. Not sourced by tools/cloud.sh yet: the hooks it needs there are
#   . lib-horizon.sh; install_horizon after install_venv;
#   write_console_conf after write_all_conf; start_consoles after start_all;
#   horizon_info after demo (up); stop_consoles before stop_all and reset_all
# (install_horizon measured: 41 s pip, 2 min collectstatic + compress).
#
# Every compute's [serial_console] is enabled (the driver bridges each
# instance's /dev/console to a TCP port that nova-serialproxy connects to,
# doc/source/consoles.rst); nova-serialproxy listens on 127.0.0.1:6083.
# Horizon 27.0.0 from PyPI, under the project's upper-constraints.txt, in
# a virtualenv of its own ($HORIZON_VENV: its Django and XStatic packages
# stay out of the services' virtualenv), runs as its own process on
# http://127.0.0.1:$HORIZON_PORT/ (Django's server, one process, threads;
# static files compressed once at install), its sessions in a local memory
# cache (one process needs no memcached), its Console tab on the serial
# console (CONSOLE_TYPE SERIAL). A project "demo" with a member user
# "demo" is made for logging in; its password is in $CLOUD_CONF/secrets.

# shellcheck disable=SC2034  # read by tools/cloud.sh and the tests
readonly HORIZON_VERSION=27.0.0
readonly HORIZON_VENV=${SYSCONTAINER_HORIZON_VENV:-/opt/nova-syscontainer/horizon-venv}
readonly HORIZON_PORT=${SYSCONTAINER_HORIZON_PORT:-8080}
readonly HORIZON_URL=http://$CLOUD_IP:$HORIZON_PORT/
readonly SERIALPROXY_PORT=6083
readonly CONSOLE_SERVICES=(nova-serialproxy horizon)
readonly DEMO_PROJECT=demo
readonly DEMO_USER=demo

horizon_python() { printf '%s/bin/python\n' "$HORIZON_VENV"; }

# [serial_console] for the API, the proxy and nova-compute alike.
write_console_conf() {
    local f
    for f in nova.conf nova-cpu.conf; do
        printf '%s\n' \
            serial_console enabled true \
            serial_console base_url "ws://$CLOUD_IP:$SERIALPROXY_PORT/" \
            serial_console proxyclient_address "$CLOUD_IP" \
            serial_console serialproxy_host "$CLOUD_IP" \
            serial_console serialproxy_port "$SERIALPROXY_PORT" \
            | ini "$CLOUD_CONF/nova/$f"
    done
}

horizon_settings() {
    local dir=$CLOUD_CONF/horizon
    cat <<EOF
# Written by tools/cloud/lib-horizon.sh.
DEBUG = False
ALLOWED_HOSTS = ['$CLOUD_IP', 'localhost']
SECRET_KEY = open('$dir/secret_key').read().strip()
OPENSTACK_HOST = '$CLOUD_IP'
OPENSTACK_KEYSTONE_URL = '$KEYSTONE_URL'
OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'
WEBROOT = '/'
LOGIN_URL = '/auth/login/'
LOGOUT_URL = '/auth/logout/'
LOGIN_REDIRECT_URL = '/'
# One process: its memory is the cache its sessions need.
CACHES = {'default': {
    'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}
SESSION_ENGINE = 'django.contrib.sessions.backends.cache'
STATIC_ROOT = '$HORIZON_VENV/static'
COMPRESS_OFFLINE = True
# The instance's Console tab: Nova's serial console (nova-serialproxy).
CONSOLE_TYPE = 'SERIAL'
# No volumes (the driver has none): Launch Instance boots from images.
LAUNCH_INSTANCE_DEFAULTS = {'create_volume': False}
OPENSTACK_NEUTRON_NETWORK = {'enable_router': True,
                             'enable_quotas': False,
                             'enable_distributed_router': False,
                             'enable_ha_router': False,
                             'enable_fip_topology_check': True}
TIME_ZONE = 'UTC'
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'file': {'class': 'logging.FileHandler',
                          'filename': '$CLOUD_LOGS/horizon-app.log'}},
    'root': {'handlers': ['file'], 'level': 'INFO'},
}
EOF
}

horizon_digest() {
    { printf '%s\n' "$HORIZON_VERSION"; cat "$REPO/upper-constraints.txt"; } \
        | sha256sum | cut -d' ' -f1
}

# The virtualenv (remade when the pins change), the settings, the static
# files collected and compressed (again when the settings change).
install_horizon() {
    local log=$CLOUD_LOGS/install.log digest dir=$CLOUD_CONF/horizon
    digest=$(horizon_digest)
    if [ "$(cat "$HORIZON_VENV/.nsc-digest" 2>/dev/null)" != "$digest" ]; then
        say "installing Horizon $HORIZON_VERSION into $HORIZON_VENV (pip)"
        rm -rf "$HORIZON_VENV"
        "$CLOUD_PYTHON" -m venv "$HORIZON_VENV" >>"$log" 2>&1
        "$HORIZON_VENV/bin/pip" install -q -U pip >>"$log" 2>&1
        "$HORIZON_VENV/bin/pip" install -q -c "$REPO/upper-constraints.txt" \
            "horizon==$HORIZON_VERSION" >>"$log" 2>&1 \
            || die "pip install horizon failed; see $log"
        printf '%s\n' "$digest" >"$HORIZON_VENV/.nsc-digest"
    fi
    mkdir -p "$dir"
    if [ ! -s "$dir/secret_key" ]; then
        (umask 077; openssl rand -hex 32 >"$dir/secret_key")
    fi
    local settings
    settings=$("$(horizon_python)" -c \
        'import openstack_dashboard, os; print(os.path.join(os.path.dirname(openstack_dashboard.__file__), "local", "local_settings.py"))')
    horizon_settings >"$settings.tmp"
    if ! cmp -s "$settings.tmp" "$settings" \
            || [ ! -e "$HORIZON_VENV/.nsc-static" ]; then
        mv "$settings.tmp" "$settings"
        say "collecting and compressing Horizon's static files (once)"
        run_logged "horizon collectstatic" "$HORIZON_VENV/bin/django-admin" \
            collectstatic --noinput --clear \
            --settings=openstack_dashboard.settings
        run_logged "horizon compress" "$HORIZON_VENV/bin/django-admin" \
            compress --force --settings=openstack_dashboard.settings
        touch "$HORIZON_VENV/.nsc-static"
    else
        rm -f "$settings.tmp"
    fi
}

# The demo project and its member user (idempotent).
ensure_demo_user() {
    local secrets=$CLOUD_CONF/secrets
    if ! grep -q '^DEMO_PASSWORD=' "$secrets"; then
        printf 'DEMO_PASSWORD=%s\n' "$(openssl rand -hex 12)" >>"$secrets"
    fi
    load_secrets
    local osc=("$(venv_bin openstack)" --os-cloud "$CLOUD_NAME")
    "${osc[@]}" project show "$DEMO_PROJECT" >/dev/null 2>&1 \
        || run_logged "project create $DEMO_PROJECT" "${osc[@]}" project \
            create --domain Default "$DEMO_PROJECT"
    if "${osc[@]}" user show "$DEMO_USER" >/dev/null 2>&1; then
        run_logged "user set $DEMO_USER" "${osc[@]}" user set \
            --password "$DEMO_PASSWORD" "$DEMO_USER"
    else
        run_logged "user create $DEMO_USER" "${osc[@]}" user create \
            --domain Default --project "$DEMO_PROJECT" \
            --password "$DEMO_PASSWORD" "$DEMO_USER"
    fi
    run_logged "role add member" "${osc[@]}" role add --project \
        "$DEMO_PROJECT" --user "$DEMO_USER" member
}

start_consoles() {
    start_service nova-serialproxy -- "$(venv_bin nova-serialproxy)" \
        --config-file "$CLOUD_CONF/nova/nova.conf"
    wait_for nova-serialproxy 60 bash -c \
        "exec 3<>/dev/tcp/$CLOUD_IP/$SERIALPROXY_PORT"
    start_service horizon PYTHONDONTWRITEBYTECODE=1 -- \
        "$HORIZON_VENV/bin/django-admin" runserver --noreload --insecure \
        --settings=openstack_dashboard.settings "$CLOUD_IP:$HORIZON_PORT"
    wait_for horizon 120 http_up "${HORIZON_URL}auth/login/"
    ensure_demo_user
}

stop_consoles() {
    local name
    for name in "${CONSOLE_SERVICES[@]}"; do
        stop_service "$name"
    done
}

horizon_info() {
    load_secrets
    cat <<EOT
cloud: Horizon at $HORIZON_URL -- log in as "$DEMO_USER" (project
  "$DEMO_PROJECT"), password $DEMO_PASSWORD; an instance's Console tab is
  its serial console (nova-serialproxy at ws://$CLOUD_IP:$SERIALPROXY_PORT/).
EOT
}
