#!/bin/bash
# devstack/plugin.sh - DevStack plugin for nova-syscontainer.
#
#   [[local|localrc]]
#   VIRT_DRIVER=syscontainer
#   enable_plugin nova-syscontainer <git URL of this repository> [branch]
#
# Phases (DevStack sources this file with "stack <phase>", "unstack",
# "clean"):
#   stack pre-install  tools/setup-host.sh prepares the host (LXD daemon,
#                      CRIU, storage pools, client certificate, test image);
#   stack install      the package, non-editable (the nova/virt/syscontainer
#                      shim must land in site-packages);
#   stack post-config  nova-compute's settings through the project's one
#                      writer (tools/lib/syscontainer-conf.sh); Glance
#                      accepts the image format the driver boots; with
#                      n-sproxy, Horizon's Console tab is the serial
#                      console;
#   stack extra        nova-compute restarted as root (Neutron ports need
#                      it); the test image is uploaded to Glance;
#   stack test-config  Tempest: the test image, and off what the driver
#                      does not do.
# Everything the all-in-one cloud (tools/cloud.sh) also does comes from the
# same project scripts, never from a copy here.
# Nova's service tokens ([service_user] send_service_user_token, which
# Neutron needs to let a member's server delete remove its compute-owned
# port) and [DEFAULT] allow_resize_to_same_host are DevStack's own: lib/nova
# writes both into nova.conf (NOVA_USE_SERVICE_TOKEN and
# NOVA_ALLOW_MOVE_TO_SAME_HOST default to True) and
# makes nova-cpu.conf from it, so this plugin sets neither.

_XTRACE_SYSCONTAINER=$(set +o | grep xtrace)
set +o xtrace

# The one writer of the driver's nova.conf settings, shared with the
# all-in-one cloud.
# shellcheck source=tools/lib/syscontainer-conf.sh
source "$SYSCONTAINER_DIR/tools/lib/syscontainer-conf.sh"
# How images are registered in Glance (formats and properties).
# shellcheck source=tools/lib/syscontainer-image.sh
source "$SYSCONTAINER_DIR/tools/lib/syscontainer-image.sh"

# syscontainer_prepare_host: run the project's host preparation as root.
function syscontainer_prepare_host {
    echo_summary "Preparing the $SYSCONTAINER_DAEMON_KIND host for nova-syscontainer"
    local -a args
    read -r -a args <<<"$SYSCONTAINER_SETUP_HOST_ARGS"
    sudo "$SYSCONTAINER_SETUP_HOST" "${args[@]}" ||
        die $LINENO "$SYSCONTAINER_SETUP_HOST failed (see /var/log/nova-syscontainer/setup-host.log)"
}

# syscontainer_use_project_pins: in DevStack's upper-constraints.txt,
# replace the pins of $SYSCONTAINER_CONSTRAINT_OVERRIDES by this project's
# (its upper-constraints.txt). A package this project does not pin keeps
# DevStack's pin.
function syscontainer_use_project_pins {
    local uc=${REQUIREMENTS_DIR:+$REQUIREMENTS_DIR/upper-constraints.txt}
    [[ -n $uc && -f $uc ]] || return 0
    local name pin version
    for name in $SYSCONTAINER_CONSTRAINT_OVERRIDES; do
        # Ours are "name==version" (pip freeze), DevStack's "name===version".
        pin=$(grep -i -m1 -E "^$name===?[^=]" "$SYSCONTAINER_DIR/upper-constraints.txt") || continue
        version=${pin##*=}
        if grep -qi "^$name===" "$uc"; then
            sed -i "s/^$name===.*/$name===$version/I" "$uc"
        else
            echo "$name===$version" >>"$uc"
        fi
    done
}

# syscontainer_install: the package, non-editable, so that Nova finds the
# driver as nova.virt.syscontainer.
function syscontainer_install {
    echo_summary "Installing nova-syscontainer"
    syscontainer_use_project_pins
    setup_install "$SYSCONTAINER_DIR"
}

# syscontainer_install_client_cert: nova-compute runs as $STACK_USER; give
# it a copy of the client certificate and key that it can read.
function syscontainer_install_client_cert {
    local dest=$NOVA_CONF_DIR/syscontainer
    sudo install -d -o "$STACK_USER" -m 700 "$dest"
    sudo install -o "$STACK_USER" -m 644 "$SYSCONTAINER_HOST_CONF_DIR/client.crt" "$dest/client.crt"
    sudo install -o "$STACK_USER" -m 600 "$SYSCONTAINER_HOST_CONF_DIR/client.key" "$dest/client.key"
}

# syscontainer_configure_nova: the driver's settings in $NOVA_CONF (DevStack
# makes nova-cpu.conf from it when it starts nova-compute).
function syscontainer_configure_nova {
    echo_summary "Configuring nova-compute for nova-syscontainer"
    local -a opts
    read -r -a opts <<<"$SYSCONTAINER_CONF_OPTS"
    opts=("daemon_kind=$SYSCONTAINER_DAEMON_KIND" "${opts[@]}")
    if [[ -n $SYSCONTAINER_MIGRATION_ENDPOINT ]]; then
        opts=("migration_endpoint=$SYSCONTAINER_MIGRATION_ENDPOINT" "${opts[@]}")
    fi
    if [[ $SYSCONTAINER_ENDPOINT == https://* ]]; then
        syscontainer_install_client_cert
    fi
    SYSCONTAINER_ENDPOINT=$SYSCONTAINER_ENDPOINT \
        SYSCONTAINER_STORAGE_POOL=$SYSCONTAINER_STORAGE_POOL \
        SYSCONTAINER_CLIENT_CERT=$NOVA_CONF_DIR/syscontainer/client.crt \
        SYSCONTAINER_CLIENT_KEY=$NOVA_CONF_DIR/syscontainer/client.key \
        SYSCONTAINER_SERVER_CERT=$SYSCONTAINER_SERVER_CERT \
        syscontainer_write_compute_conf "$NOVA_CONF" "${opts[@]}" ||
        die $LINENO "could not write the driver's settings into $NOVA_CONF"
}

# syscontainer_glance_accepts GROUP_KEY FORMAT: make Glance's list
# [image_format] KEY accept FORMAT. An unset list is Glance's default, which
# accepts bare and raw already; a list set (here or, deprecated, in
# [DEFAULT]) without FORMAT gets it added.
function syscontainer_glance_accepts {
    local key=$1 format=$2 current
    current=$(iniget "$GLANCE_API_CONF" image_format "$key")
    [[ -n $current ]] || current=$(iniget "$GLANCE_API_CONF" DEFAULT "$key")
    [[ -n $current ]] || return 0
    if [[ ,${current// /}, != *,$format,* ]]; then
        current="$current,$format"
    fi
    iniset "$GLANCE_API_CONF" image_format "$key" "$current"
}

# syscontainer_configure_glance: the driver boots LXD unified image
# tarballs uploaded as container_format bare, disk_format raw (see
# nova_syscontainer/virt/image.py).
function syscontainer_configure_glance {
    syscontainer_glance_accepts container_formats bare
    syscontainer_glance_accepts disk_formats raw
}

# syscontainer_configure_consoles: with DevStack's n-sproxy (which runs
# nova-serialproxy and sets [serial_console] enabled and base_url for
# nova-compute), the listeners' address if one is given, and Horizon's
# Console tab on the serial console (in its local_settings.py, before
# DevStack compresses Horizon's static files and starts it).
function syscontainer_configure_consoles {
    if is_service_enabled n-cpu && [[ -n $SYSCONTAINER_SERIAL_PROXYCLIENT_ADDRESS ]]; then
        iniset "$NOVA_CONF" serial_console proxyclient_address \
            "$SYSCONTAINER_SERIAL_PROXYCLIENT_ADDRESS"
    fi
    if is_service_enabled horizon; then
        local settings=$HORIZON_DIR/openstack_dashboard/local/local_settings.py
        [[ -f $settings ]] || die $LINENO "no Horizon settings at $settings"
        _horizon_config_set "$settings" "" CONSOLE_TYPE \
            "\"$SYSCONTAINER_HORIZON_CONSOLE_TYPE\""
    fi
}

# syscontainer_compute_as_root: DevStack started nova-compute as
# $STACK_USER; plugging Neutron ports needs root (bridges, veths, qdiscs).
function syscontainer_compute_as_root {
    local unit=devstack@n-cpu.service
    local dropin=$SYSCONTAINER_SYSTEMD_DIR/$unit.d
    echo_summary "Restarting nova-compute as root for nova-syscontainer"
    sudo install -d -m 755 "$dropin"
    printf '[Service]\nUser=root\nGroup=root\n' |
        sudo tee "$dropin/nova-syscontainer.conf" >/dev/null
    sudo systemctl daemon-reload
    sudo systemctl restart "$unit" || die $LINENO "restarting $unit as root failed"
}

# syscontainer_image_id: the id of the test image in Glance, or nothing.
function syscontainer_image_id {
    openstack --os-cloud=devstack-admin --os-region-name="$REGION_NAME" \
        image show "$SYSCONTAINER_IMAGE_NAME" -f value -c id 2>/dev/null || true
}

# syscontainer_upload_image: the test image that tools/setup-host.sh built,
# once, with the properties that send it to this driver's computes only.
function syscontainer_upload_image {
    echo_summary "Uploading the nova-syscontainer test image"
    [[ -s $SYSCONTAINER_IMAGE_FILE ]] ||
        die $LINENO "no test image at $SYSCONTAINER_IMAGE_FILE (tools/setup-host.sh builds it)"
    if [[ -n $(syscontainer_image_id) ]]; then
        return 0
    fi
    openstack --os-cloud=devstack-admin --os-region-name="$REGION_NAME" \
        image create "$SYSCONTAINER_IMAGE_NAME" --public \
        "${SYSCONTAINER_IMAGE_CREATE_ARGS[@]}" \
        --file "$SYSCONTAINER_IMAGE_FILE" ||
        die $LINENO "uploading $SYSCONTAINER_IMAGE_FILE to Glance failed"
}

# syscontainer_configure_tempest: the test image, and what the driver does
# not support turned off.
function syscontainer_configure_tempest {
    echo_summary "Configuring Tempest for nova-syscontainer"
    local image_id migrations=False
    image_id=$(syscontainer_image_id)
    [[ -n $image_id ]] || die $LINENO "image $SYSCONTAINER_IMAGE_NAME is not in Glance"
    iniset "$TEMPEST_CONFIG" compute image_ref "$image_id"
    iniset "$TEMPEST_CONFIG" compute image_ref_alt "$image_id"
    [[ -z $SYSCONTAINER_MIGRATION_ENDPOINT ]] || migrations=True
    # The flags come from the project's one list (tools/lib/
    # syscontainer-conf.sh), which the all-in-one's Tempest runner uses too.
    local -a triples
    mapfile -t triples < <(syscontainer_tempest_triples "$migrations" \
        "$SYSCONTAINER_COMPUTE_AS_ROOT")
    local i
    for ((i = 0; i < ${#triples[@]}; i += 3)); do
        iniset "$TEMPEST_CONFIG" "${triples[i]}" "${triples[i + 1]}" "${triples[i + 2]}"
    done
}

if is_service_enabled nova-syscontainer; then
    if [[ "$1" == "stack" && "$2" == "pre-install" ]]; then
        syscontainer_prepare_host
    elif [[ "$1" == "stack" && "$2" == "install" ]]; then
        syscontainer_install
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        if is_service_enabled n-cpu; then
            syscontainer_configure_nova
        fi
        if is_service_enabled g-api; then
            syscontainer_configure_glance
        fi
        if is_service_enabled n-sproxy; then
            syscontainer_configure_consoles
        fi
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        if is_service_enabled n-cpu && [[ $SYSCONTAINER_COMPUTE_AS_ROOT == True ]]; then
            syscontainer_compute_as_root
        fi
        if is_service_enabled g-api; then
            syscontainer_upload_image
        fi
    elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
        if is_service_enabled tempest; then
            syscontainer_configure_tempest
        fi
    fi
    # unstack and clean: the LXD daemon and its containers belong to the
    # host (tools/setup-host.sh); DevStack's own clean-up deletes the
    # servers through Nova, which removes their containers.
fi

$_XTRACE_SYSCONTAINER
