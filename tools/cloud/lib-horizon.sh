#!/bin/bash
# lib-horizon.sh - consoles of the all-in-one cloud: nova-serialproxy and
# Horizon (sourced by tools/cloud.sh: install_horizon after install_venv,
# write_console_conf after write_all_conf, start_consoles after start_all,
# stop_consoles before stop_all and reset_all, horizon_info after the demo
# of "up").
#
# Every compute's [serial_console] is enabled (the driver bridges each
# instance's /dev/console to a TCP port that nova-serialproxy connects to,
# doc/source/consoles.rst); nova-serialproxy listens on 127.0.0.1:6083.
# Horizon 27.0.0 from PyPI, under the project's upper-constraints.txt, in
# a virtualenv of its own ($HORIZON_VENV: its Django and XStatic packages
# stay out of the services' virtualenv), runs as its own process on
# http://127.0.0.1:$HORIZON_PORT/: the services' uwsgi (one process, four
# threads) with Horizon's virtualenv, uwsgi serving the static files. Its
# sessions are in a local memory cache (one process needs no memcached),
# its Console tab is the serial console (CONSOLE_TYPE SERIAL). A project
# "demo" with a member user "demo" is made for logging in; the password is
# DEMO_PASSWORD in $CLOUD_CONF/secrets (0600).
#
# Cost (measured 2026-12-07 on 2 busy cores): pip about 45 s; the static
# files collected (7 s) and compressed offline (5-13 s: Horizon 27
# compiles its SCSS with libsass) once per Horizon version and settings,
# the default theme only. Both are kept across stop, start and reset.

# shellcheck disable=SC2034  # read by tools/cloud.sh and the tests
readonly HORIZON_VERSION=27.0.0
readonly HORIZON_VENV=${SYSCONTAINER_HORIZON_VENV:-/opt/nova-syscontainer/horizon-venv}
readonly HORIZON_PORT=${SYSCONTAINER_HORIZON_PORT:-8080}
readonly HORIZON_URL=http://$CLOUD_IP:$HORIZON_PORT/
readonly HORIZON_STATIC=$HORIZON_VENV/static
readonly SERIALPROXY_PORT=6083
# Start order; stop goes the other way.
readonly CONSOLE_SERVICES=(nova-serialproxy horizon)
readonly DEMO_PROJECT=demo
readonly DEMO_USER=demo

horizon_python() { printf '%s/bin/python\n' "$HORIZON_VENV"; }

# [serial_console] for the API, the proxy and nova-compute alike (the
# files hold passwords: call it under umask 077).
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

# Horizon's local_settings.py. No secret in it: the key is read from a
# 0600 file of $CLOUD_CONF at start, so the file (and the static files
# compressed from it) are the same on every machine.
horizon_settings() {
    cat <<EOF
# Written by tools/cloud/lib-horizon.sh; rewritten at every start.
DEBUG = False
ALLOWED_HOSTS = ['$CLOUD_IP', 'localhost']
with open('$CLOUD_CONF/horizon/secret_key') as _f:
    SECRET_KEY = _f.read().strip()
OPENSTACK_HOST = '$CLOUD_IP'
OPENSTACK_KEYSTONE_URL = '$KEYSTONE_URL'
OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'
OPENSTACK_ENDPOINT_TYPE = 'publicURL'
WEBROOT = '/'
# One process: its memory is the cache its sessions need.
CACHES = {'default': {
    'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}
SESSION_ENGINE = 'django.contrib.sessions.backends.cache'
STATIC_ROOT = '$HORIZON_STATIC'
# Compressed once at install (tools/cloud/lib-horizon.sh), for the one
# theme offered: half the work of Horizon's two.
COMPRESS_OFFLINE = True
AVAILABLE_THEMES = [('default', 'Default', 'themes/default')]
DEFAULT_THEME = 'default'
# The instance's Console tab: Nova's serial console (nova-serialproxy),
# in an iframe of Horizon's own page (Django's default, DENY, blanks it).
CONSOLE_TYPE = 'SERIAL'
X_FRAME_OPTIONS = 'SAMEORIGIN'
# No volumes (the driver attaches none): Launch Instance boots from images.
LAUNCH_INSTANCE_DEFAULTS = {'create_volume': False,
                            'hide_create_volume': True}
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
# files collected and compressed (again when the settings or the
# virtualenv change), the secret key (0600, made once).
install_horizon() {
    local log=$CLOUD_LOGS/install.log digest t0=$SECONDS
    digest=$(horizon_digest)
    if [ "$(cat "$HORIZON_VENV/.nsc-digest" 2>/dev/null)" != "$digest" ]; then
        say "installing Horizon $HORIZON_VERSION into $HORIZON_VENV (pip; about a minute)"
        rm -rf "$HORIZON_VENV"
        "$CLOUD_PYTHON" -m venv "$HORIZON_VENV" >>"$log" 2>&1
        "$HORIZON_VENV/bin/pip" install -q -U pip >>"$log" 2>&1
        "$HORIZON_VENV/bin/pip" install -q -c "$REPO/upper-constraints.txt" \
            "horizon==$HORIZON_VERSION" >>"$log" 2>&1 \
            || die "pip install horizon failed; see $log"
        printf '%s\n' "$digest" >"$HORIZON_VENV/.nsc-digest"
        say "Horizon installed in $((SECONDS - t0))s"
    fi
    (
        umask 077
        mkdir -p "$CLOUD_CONF/horizon"
        if [ ! -s "$CLOUD_CONF/horizon/secret_key" ]; then
            openssl rand -hex 32 >"$CLOUD_CONF/horizon/secret_key"
        fi
    )
    local settings stamp t1=$SECONDS
    settings=$("$(horizon_python)" -c \
        'import openstack_dashboard, os; print(os.path.join(os.path.dirname(openstack_dashboard.__file__), "local", "local_settings.py"))') \
        || die "Horizon's virtualenv $HORIZON_VENV is broken: remove it"
    horizon_settings >"$settings.tmp"
    mv "$settings.tmp" "$settings"
    stamp="$digest $(sha256sum "$settings" | cut -d' ' -f1)"
    if [ "$(cat "$HORIZON_VENV/.nsc-static" 2>/dev/null)" != "$stamp" ]; then
        say "collecting and compressing Horizon's static files (once)"
        local admin=$HORIZON_VENV/bin/django-admin
        local settings_opt=--settings=openstack_dashboard.settings
        rm -f "$HORIZON_VENV/.nsc-static"
        run_logged "horizon collectstatic" "$admin" collectstatic \
            "$settings_opt" --noinput --clear
        run_logged "horizon compress" "$admin" compress "$settings_opt" \
            --force
        printf '%s\n' "$stamp" >"$HORIZON_VENV/.nsc-static"
        say "Horizon's static files ready in $((SECONDS - t1))s"
    fi
}

# The demo project and its member user, made or updated through the SDK
# as the cloud's admin (clouds.yaml); the password from the secrets file
# through the environment, never a command line.
ensure_demo_user() {
    local secrets=$CLOUD_CONF/secrets
    if ! grep -q '^DEMO_PASSWORD=' "$secrets"; then
        (umask 077; printf 'DEMO_PASSWORD=%s\n' "$(openssl rand -hex 12)" \
            >>"$secrets")
    fi
    load_secrets
    NSC_DEMO_PASSWORD=$DEMO_PASSWORD run_logged "demo project and user" \
        "$(venv_bin python)" - "$CLOUD_NAME" "$DEMO_PROJECT" "$DEMO_USER" \
        <<'PYEOF'
import os
import sys

import openstack

cloud, project_name, user_name = sys.argv[1:]
password = os.environ['NSC_DEMO_PASSWORD']
ident = openstack.connect(cloud=cloud).identity
project = (ident.find_project(project_name, domain_id='default')
           or ident.create_project(name=project_name, domain_id='default',
                                   description='Horizon demo project'))
user = ident.find_user(user_name, domain_id='default')
if user is None:
    user = ident.create_user(name=user_name, domain_id='default',
                             default_project_id=project.id,
                             password=password)
else:
    ident.update_user(user, password=password,
                      default_project_id=project.id)
ident.assign_project_role_to_user(project, user, ident.find_role('member'))
print('demo user %s in project %s' % (user.id, project.id))
PYEOF
}

start_consoles() {
    start_service nova-serialproxy -- "$(venv_bin nova-serialproxy)" \
        --config-file "$CLOUD_CONF/nova/nova.conf"
    wait_for nova-serialproxy 60 bash -c \
        "exec 3<>/dev/tcp/$CLOUD_IP/$SERIALPROXY_PORT"
    # The services' uwsgi with Horizon's virtualenv (same Python);
    # one process: the sessions live in its memory.
    start_service horizon \
        "DJANGO_SETTINGS_MODULE=openstack_dashboard.settings" -- \
        "$(venv_bin uwsgi)" --master --need-app --die-on-term \
        --enable-threads --http-socket "$CLOUD_IP:$HORIZON_PORT" \
        --virtualenv "$HORIZON_VENV" \
        --module openstack_dashboard.wsgi:application \
        --processes 1 --threads 4 --socket-timeout 60 --listen 128 \
        --buffer-size 65535 --static-map "/static=$HORIZON_STATIC" \
        --disable-logging --log-4xx --log-5xx \
        --procname-prefix "nsc-cloud-horizon "
    wait_for horizon 120 http_up "${HORIZON_URL}auth/login/"
    ensure_demo_user
}

stop_consoles() {
    local i
    for ((i = ${#CONSOLE_SERVICES[@]} - 1; i >= 0; i--)); do
        stop_service "${CONSOLE_SERVICES[$i]}"
    done
}

status_consoles() {
    status_services "${CONSOLE_SERVICES[@]}"
}

# What "up" ends with: where Horizon is and how to log in (the password
# read from the 0600 secrets file; printf is the shell's own, so it is on
# no command line).
horizon_info() {
    load_secrets
    printf '\ncloud: Horizon at %s\n' "$HORIZON_URL"
    printf '  log in as "%s" (project "%s"), password %s\n' "$DEMO_USER" \
        "$DEMO_PROJECT" "$DEMO_PASSWORD"
    printf '  (DEMO_PASSWORD in %s); an instance'"'"'s Console tab is its\n' \
        "$CLOUD_CONF/secrets"
    printf '  serial console (nova-serialproxy at ws://%s:%s/).\n' \
        "$CLOUD_IP" "$SERIALPROXY_PORT"
}
