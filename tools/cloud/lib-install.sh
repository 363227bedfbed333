#!/bin/bash
# lib-install.sh - what the all-in-one cloud needs on the machine: Debian
# packages, and one virtualenv ($CLOUD_VENV) holding the services and this
# project's package, installed non-editable so that Nova finds the
# nova/virt/syscontainer shim in site-packages.

# conntrack: the L3 agent clears a floating IP's connections; ethtool: it
# turns checksum offload off on its veths (userspace datapath); dnsmasq:
# the DHCP agent's server; haproxy: the L3 agent's metadata proxy; ping
# and ssh: Tempest's --validation and the smoke test reach guests with them.
readonly CLOUD_APT=(mariadb-server rabbitmq-server python3-venv python3-dev gcc
                    curl openssl conntrack ethtool dnsmasq-base haproxy
                    iputils-ping openssh-client)
readonly CLOUD_PYTHON=${SYSCONTAINER_PYTHON:-python3}

install_apt_packages() {
    local -a missing=()
    local pkg
    for pkg in "${CLOUD_APT[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
            | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    say "installing ${missing[*]} (apt)"
    local log=$CLOUD_LOGS/install.log
    # No systemd here: nothing gets started by the packages' scripts.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
        >>"$log" 2>&1 || {
        apt-get update -q >>"$log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
            >>"$log" 2>&1
    } || die "apt-get install ${missing[*]} failed; see $log"
}

# A digest of what the virtualenv was made from; a change remakes it.
venv_digest() {
    cat "$REPO/upper-constraints.txt" "$CLOUD_LIB/requirements.txt" \
        "$CLOUD_LIB/cloud-constraints.txt" | sha256sum | cut -d' ' -f1
}

# A digest of this project's package sources; a change reinstalls it.
package_digest() {
    (cd "$REPO" && find nova nova_syscontainer -name '*.py' -print0 \
        | sort -z | xargs -0 sha256sum
     cat setup.cfg setup.py requirements.txt 2>/dev/null) \
        | sha256sum | cut -d' ' -f1
}

install_venv() {
    local log=$CLOUD_LOGS/install.log digest
    local -a pip=("$(venv_bin pip)" install -q -c "$REPO/upper-constraints.txt"
                  -c "$CLOUD_LIB/cloud-constraints.txt")
    digest=$(venv_digest)
    if [ "$(cat "$CLOUD_VENV/.nsc-digest" 2>/dev/null)" != "$digest" ]; then
        say "installing the services into $CLOUD_VENV (pip; a few minutes)"
        rm -rf "$CLOUD_VENV"
        "$CLOUD_PYTHON" -m venv "$CLOUD_VENV" >>"$log" 2>&1
        "$(venv_bin pip)" install -q -U pip >>"$log" 2>&1
        "${pip[@]}" -r "$CLOUD_LIB/requirements.txt" "$REPO" >>"$log" 2>&1 \
            || die "pip install failed; see $log"
        package_digest >"$CLOUD_VENV/.nsc-package-digest"
        printf '%s\n' "$digest" >"$CLOUD_VENV/.nsc-digest"
    fi
    digest=$(package_digest)
    if [ "$(cat "$CLOUD_VENV/.nsc-package-digest" 2>/dev/null)" != "$digest" ]
    then
        say "installing nova-syscontainer from $REPO (non-editable)"
        "$(venv_bin pip)" uninstall -q -y nova-syscontainer >>"$log" 2>&1 || true
        "${pip[@]}" "$REPO" >>"$log" 2>&1 || die "pip install failed; see $log"
        printf '%s\n' "$digest" >"$CLOUD_VENV/.nsc-package-digest"
    fi
    "$(venv_bin python)" -c 'import nova.virt.syscontainer' 2>>"$log" \
        || die "Nova cannot import the nova/virt/syscontainer shim in $CLOUD_VENV"
}

# Supervisor, the cloud's process supervisor (lib-common.sh), from PyPI
# into $CLOUD_VENV. A step of its own, not a line of requirements.txt:
# that would change the virtualenv's digest and so rebuild the whole
# virtualenv (minutes) on every machine that has one.
readonly CLOUD_SUPERVISOR_VERSION=4.3.0
install_supervisor() {
    if [ "$("$CLOUD_VENV/bin/supervisord" --version 2>/dev/null)" \
            = "$CLOUD_SUPERVISOR_VERSION" ]; then
        return 0
    fi
    say "installing supervisor $CLOUD_SUPERVISOR_VERSION into $CLOUD_VENV (pip)"
    "$(venv_bin pip)" install -q "supervisor==$CLOUD_SUPERVISOR_VERSION" \
        >>"$CLOUD_LOGS/install.log" 2>&1 \
        || die "pip install supervisor failed; see $CLOUD_LOGS/install.log"
}

# The `openstack` command for the user: a link to the cloud's client,
# made only where no other `openstack` command exists.
link_openstack_cli() {
    local link=/usr/local/bin/openstack
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$(venv_bin openstack)" ]; then
        return 0
    fi
    if [ -e "$link" ] || command -v openstack >/dev/null 2>&1; then
        return 0
    fi
    ln -s "$(venv_bin openstack)" "$link"
}
