#!/bin/bash
# lib-config.sh - configuration files of the all-in-one cloud, written with
# the project's one ini writer (tools/lib/syscontainer-conf.sh), which the
# DevStack plugin uses too. Every service's files live in
# $CLOUD_CONF/<service>/. Every service's database is in the cloud's
# MariaDB server (db_url).

# Passwords made once per machine, kept in $CLOUD_CONF/secrets (0600).
load_secrets() {
    local secrets=$CLOUD_CONF/secrets
    if [ ! -s "$secrets" ]; then
        (umask 077; mkdir -p "$CLOUD_CONF")
        (
            umask 077
            printf 'ADMIN_PASSWORD=%s\nSERVICE_PASSWORD=%s\n' \
                "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" \
                >"$secrets.tmp"
            mv "$secrets.tmp" "$secrets"
        )
    fi
    # A file from before the database server, RabbitMQ's own user or the
    # metadata proxy lacks that secret: added, under the same umask.
    local var
    for var in DATABASE_PASSWORD RABBIT_PASSWORD METADATA_SECRET; do
        if ! grep -q "^$var=" "$secrets"; then
            (umask 077; printf '%s=%s\n' "$var" "$(openssl rand -hex 16)" \
                >>"$secrets")
        fi
    done
    chmod 0600 "$secrets"
    # shellcheck disable=SC1090  # written just above
    . "$secrets"
}

# A database of the cloud's MariaDB server, through its socket.
db_url() {
    printf 'mysql+pymysql://%s:%s@localhost/%s?unix_socket=%s&charset=utf8\n' \
        "$CLOUD_DB_USER" "$DATABASE_PASSWORD" "$1" "$CLOUD_DB_SOCKET"
}
# RabbitMQ's user of the cloud (lib-services.sh makes it; Debian's
# "guest" is deleted), its password generated with the others.
readonly CLOUD_RABBIT_USER=openstack
transport_url() {
    printf 'rabbit://%s:%s@%s:%s/\n' "$CLOUD_RABBIT_USER" "$RABBIT_PASSWORD" \
        "$CLOUD_IP" "$RABBIT_PORT"
}

# The [keystone_authtoken] (or another section's) password auth of a
# service user, as triples for syscontainer_iniset.
auth_triples() {
    local section=$1 user=$2
    printf '%s\n' \
        "$section" auth_type password \
        "$section" auth_url "http://$CLOUD_IP:$KEYSTONE_PORT" \
        "$section" username "$user" \
        "$section" password "$SERVICE_PASSWORD" \
        "$section" project_name service \
        "$section" user_domain_name Default \
        "$section" project_domain_name Default \
        "$section" region_name "$CLOUD_REGION"
}

authtoken_triples() {
    auth_triples keystone_authtoken "$1"
    printf '%s\n' keystone_authtoken www_authenticate_uri \
        "http://$CLOUD_IP:$KEYSTONE_PORT"
}

# ini FILE < triples (one word a line: SECTION, KEY, VALUE, ...)
ini() {
    local file=$1
    local -a triples
    mapfile -t triples
    syscontainer_iniset "$file" "${triples[@]}"
}

# The cloud's MariaDB server: unix socket only, data in $CLOUD_DB_DIR,
# memory sized for one small cloud. Several processes of each service
# (Neutron's API and RPC server, Nova's API, conductor and scheduler)
# write the same tables at once, which SQLite refuses: with oslo.db's
# transactions (BEGIN, read, then write) the second writer fails at once
# with "database is locked" in every journal mode, and the services do
# not retry it (measured: a server delete failed on Neutron's HTTP 500).
write_mariadb_conf() {
    local dir=$CLOUD_CONF/mariadb
    mkdir -p "$dir"
    cat >"$dir/my.cnf" <<EOT
[mysqld]
datadir = $CLOUD_DB_DIR/data
socket = $CLOUD_DB_SOCKET
pid-file = $CLOUD_DB_DIR/mariadbd.pid
skip-networking
skip-name-resolve
innodb_buffer_pool_size = 128M
max_connections = 1000
character-set-server = utf8mb3
collation-server = utf8mb3_general_ci
EOT
}

# Keystone's database is MariaDB's too: on SQLite, concurrent writers
# (Tempest's workers making projects and users, a password update) got
# "database is locked", an exception before any answer, and uwsgi closed
# the connection: the clients' "Remote end closed connection without
# response" (12 times in a Tempest run with two workers; measured again
# on a service registration while the machine was busy).
# Passwords are hashed with 4 bcrypt rounds, as DevStack does
# (KEYSTONE_PASSWORD_HASH_ROUNDS). Keystone's default, 12, cost 0.74 s
# per password check here at load 9 (bcrypt.checkpw; 1 ms at 4 rounds),
# and every password token pays it: Tempest's dynamic credentials and
# every service's own token. Tokens took 3-5 s in a Tempest run under
# load. register.py sets the service passwords again at every start,
# so they are rehashed with the new cost.
write_keystone_conf() {
    local dir=$CLOUD_CONF/keystone
    mkdir -p "$dir" "$CLOUD_STATE/keystone"
    ini "$dir/keystone.conf" <<EOT
database
connection
$(db_url keystone)
token
provider
fernet
fernet_tokens
key_repository
$CLOUD_STATE/keystone/fernet-keys
fernet_receipts
key_repository
$CLOUD_STATE/keystone/fernet-keys
credential
key_repository
$CLOUD_STATE/keystone/credential-keys
identity
password_hash_rounds
4
EOT
}

write_placement_conf() {
    local dir=$CLOUD_CONF/placement
    mkdir -p "$dir"
    {
        printf '%s\n' placement_database connection "$(db_url placement)" \
            api auth_strategy keystone
        authtoken_triples placement
    } | ini "$dir/placement.conf"
}

write_glance_conf() {
    local dir=$CLOUD_CONF/glance
    mkdir -p "$dir" "$CLOUD_STATE/glance/images" \
        "$CLOUD_STATE/glance/staging" "$CLOUD_STATE/glance/tasks"
    cp "$CLOUD_VENV/etc/glance/glance-api-paste.ini" "$dir/"
    {
        printf '%s\n' \
            DEFAULT enabled_backends fs:file \
            database connection "$(db_url glance)" \
            glance_store default_backend fs \
            fs filesystem_store_datadir "$CLOUD_STATE/glance/images" \
            os_glance_staging_store filesystem_store_datadir \
            "$CLOUD_STATE/glance/staging" \
            os_glance_tasks_store filesystem_store_datadir \
            "$CLOUD_STATE/glance/tasks" \
            paste_deploy flavor keystone \
            paste_deploy config_file "$dir/glance-api-paste.ini" \
            oslo_concurrency lock_path "$CLOUD_STATE/glance/locks"
        authtoken_triples glance
    } | ini "$dir/glance-api.conf"
}

write_neutron_conf() {
    local dir=$CLOUD_CONF/neutron
    mkdir -p "$dir/plugins/ml2" "$CLOUD_STATE/neutron"
    cp "$CLOUD_VENV/etc/neutron/api-paste.ini" "$dir/"
    # ML2 with the openvswitch mechanism driver and "local" networks
    # (ports of one host, no tunnels, no physical network): the real
    # neutron-openvswitch-agent wires the ports in br-int. Neutron tells
    # Nova when a port goes up (network-vif-plugged), so Nova waits for
    # it. Neutron's get_ports needs the port-forwarding models (and those
    # the router's), so both service plugins are loaded.
    {
        printf '%s\n' \
            DEFAULT core_plugin ml2 \
            DEFAULT service_plugins router,port_forwarding \
            DEFAULT auth_strategy keystone \
            DEFAULT transport_url "$(transport_url)" \
            DEFAULT api_paste_config "$dir/api-paste.ini" \
            DEFAULT state_path "$CLOUD_STATE/neutron" \
            DEFAULT host "$CLOUD_HOST" \
            DEFAULT notify_nova_on_port_status_changes true \
            DEFAULT notify_nova_on_port_data_changes true \
            database connection "$(db_url neutron)" \
            oslo_concurrency lock_path "$CLOUD_STATE/neutron/locks"
        authtoken_triples neutron
        auth_triples nova nova
        printf '%s\n' nova endpoint_type public
    } | ini "$dir/neutron.conf"
    # Projects' networks stay "local"; the one flat network is the
    # admin's external network for routers' gateways and floating IPs.
    printf '%s\n' \
        ml2 type_drivers local,flat \
        ml2 tenant_network_types local \
        ml2 mechanism_drivers openvswitch \
        ml2 extension_drivers port_security \
        ml2_type_flat flat_networks "$CLOUD_PHYSNET" \
        | ini "$dir/plugins/ml2/ml2_conf.ini"
    write_ovs_agent_conf "$dir"
    write_l3_dhcp_agent_conf "$dir"
}

# The privsep daemons' helper of an agent (as root, no sudo).
privsep_triples() {
    local helper=$1 section
    for section in privsep privsep_dhcp_release privsep_ovs_vsctl \
            privsep_namespace privsep_conntrack privsep_link; do
        printf '%s\n' "$section" helper_command "$helper"
    done
}

# Neutron's L3 agent (routers: namespaces qrouter-<id>, SNAT and floating
# IPs with iptables) and DHCP agent (dnsmasq in qdhcp-<id>), both on
# br-int through OVS. ovs_use_veth: the namespace end of each port is one
# end of a veth pair, the other end a port of br-int, like the servers'
# qvo ports; an OVS internal port moved into a namespace is a tap device
# of ovs-vswitchd's userspace datapath (Neutron turns checksum offload off
# on such veths for netdev bridges). The L3 agent's metadata proxy
# (haproxy in each router's namespace, 169.254.169.254:80 redirected to
# it) hands a guest's requests to neutron-metadata-agent through its unix
# socket ($state_path/metadata_proxy), which signs them with the shared
# secret for Nova's metadata API. A guest reaches it through its router:
# networks without one get no metadata service (the config drive serves
# them).
write_l3_dhcp_agent_conf() {
    local dir=$1 agent conf helper
    for agent in l3 dhcp; do
        conf=$dir/${agent}_agent.ini
        helper="$(venv_bin privsep-helper) --config-file $dir/neutron.conf"
        helper+=" --config-file $conf"
        {
            printf '%s\n' \
                DEFAULT interface_driver openvswitch \
                DEFAULT ovs_use_veth true \
                ovs integration_bridge "$CLOUD_OVS_BRIDGE" \
                ovs datapath_type netdev \
                agent root_helper env
            if [ "$agent" = l3 ]; then
                printf '%s\n' DEFAULT agent_mode legacy \
                    DEFAULT enable_metadata_proxy true
            else
                printf '%s\n' DEFAULT enable_isolated_metadata false \
                    DEFAULT dnsmasq_local_resolv false
            fi
            privsep_triples "$helper"
        } | ini "$conf"
    done
    conf=$dir/metadata_agent.ini
    helper="$(venv_bin privsep-helper) --config-file $dir/neutron.conf"
    helper+=" --config-file $conf"
    {
        printf '%s\n' \
            DEFAULT nova_metadata_host "$CLOUD_IP" \
            DEFAULT nova_metadata_port "$NOVA_METADATA_PORT" \
            DEFAULT nova_metadata_protocol http \
            DEFAULT metadata_proxy_shared_secret "$METADATA_SECRET" \
            DEFAULT metadata_workers 1 \
            agent root_helper env
        privsep_triples "$helper"
    } | ini "$conf"
}

# The agent runs as root: its root helper runs commands as they are
# (no sudo here) and privsep starts its daemons directly.
write_ovs_agent_conf() {
    local dir=$1
    local conf=$dir/plugins/ml2/openvswitch_agent.ini
    local helper
    helper="$(venv_bin privsep-helper) --config-file $dir/neutron.conf"
    helper+=" --config-file $conf"
    {
        # br-int is tools/setup-host.sh's, on OVS's userspace datapath
        # (this kernel has no openvswitch module); no tunnels; one
        # physical bridge, br-ex (lib-services.sh makes it), for the
        # external network; no firewall.
        printf '%s\n' \
            ovs integration_bridge "$CLOUD_OVS_BRIDGE" \
            ovs datapath_type netdev \
            ovs bridge_mappings "$CLOUD_PHYSNET:$CLOUD_EXT_BRIDGE" \
            ovs of_listen_address "$CLOUD_IP" \
            agent tunnel_types '' \
            agent root_helper env \
            securitygroup firewall_driver noop \
            securitygroup enable_security_group false
        privsep_triples "$helper"
    } | ini "$conf"
}

# What every Nova service of the cloud shares. One compute node: a
# resize may land on the host the server is on (without it every resize
# ends in "No valid host"). Allocation ratios for containers: a vCPU is
# a share of the host's CPUs (cpuset and CFS quota), with no vCPU thread
# or guest kernel behind it, so 16 (Nova's old default) instead of Nova
# 34's initial 4.0: 2 cores x 4 = 8 VCPU gave "No valid host" under two
# Tempest workers. Memory is a cgroup limit, charged only as the guest
# touches it (no guest kernel, no preallocated RAM): 1.5. Root disks are
# btrfs qgroup quotas in a sparse pool sized to the machine: 1.0, so a
# full pool never surprises a tenant whose quota says there is room.
readonly CLOUD_CPU_RATIO=${SYSCONTAINER_CPU_RATIO:-16.0}
readonly CLOUD_RAM_RATIO=${SYSCONTAINER_RAM_RATIO:-1.5}
readonly CLOUD_DISK_RATIO=${SYSCONTAINER_DISK_RATIO:-1.0}
nova_common_triples() {
    printf '%s\n' \
        DEFAULT transport_url "$(transport_url)" \
        DEFAULT my_ip "$CLOUD_IP" \
        DEFAULT host "$CLOUD_HOST" \
        DEFAULT state_path "$CLOUD_STATE/nova" \
        DEFAULT instances_path "$CLOUD_STATE/nova/instances" \
        DEFAULT instance_name_template "$CLOUD_HOST-%08x" \
        oslo_concurrency lock_path "$CLOUD_STATE/nova/locks" \
        vnc enabled false \
        placement valid_interfaces public \
        neutron valid_interfaces public \
        glance valid_interfaces public \
        DEFAULT allow_resize_to_same_host true \
        DEFAULT cpu_allocation_ratio "$CLOUD_CPU_RATIO" \
        DEFAULT ram_allocation_ratio "$CLOUD_RAM_RATIO" \
        DEFAULT disk_allocation_ratio "$CLOUD_DISK_RATIO" \
        neutron service_metadata_proxy true \
        neutron metadata_proxy_shared_secret "$METADATA_SECRET" \
        service_user send_service_user_token true
    auth_triples placement nova
    auth_triples neutron nova
    # Nova's calls on a user's behalf carry Nova's own token too (as
    # DevStack sets it, in nova.conf and nova-cpu.conf alike): Neutron 29
    # lets only a service delete a compute-owned port, so without it a
    # member's server delete fails with 403 "rule:delete_port is
    # disallowed by policy", the server goes to ERROR and keeps its
    # Placement allocations.
    auth_triples service_user nova
}

write_nova_conf() {
    local dir=$CLOUD_CONF/nova
    mkdir -p "$dir" "$CLOUD_STATE/nova/instances" "$CLOUD_STATE/nova/locks"
    cp "$CLOUD_VENV/etc/nova/api-paste.ini" "$dir/"
    # API, conductor, scheduler and nova-manage: with the databases.
    {
        nova_common_triples
        printf '%s\n' \
            api auth_strategy keystone \
            wsgi api_paste_config "$dir/api-paste.ini" \
            api_database connection "$(db_url nova_api)" \
            database connection "$(db_url nova_cell1)" \
            conductor workers 1 \
            scheduler workers 1
        authtoken_triples nova
    } | ini "$dir/nova.conf"
    # nova-compute reads only its own file, as in DevStack: no database
    # connection (it must reach the databases through the conductor; with
    # one, Nova's RPC version check tries the API database and logs
    # "No DB access allowed in nova-compute"), and the driver's settings
    # from the one writer that DevStack uses too. The cloud's btrfs pool
    # (lib-services.sh, ensure_storage_pool) enforces root disk sizes; on
    # it a server is a copy-on-write copy of its image's shifted template
    # (image_templates: a stock guest ACTIVE in about 3 s instead of 13 s,
    # doc/source/scale.rst), which reset_all removes with the servers.
    nova_common_triples | ini "$dir/nova-cpu.conf"
    SYSCONTAINER_ENDPOINT=$CLOUD_DAEMON_DIR/unix.socket \
    SYSCONTAINER_STORAGE_POOL=$CLOUD_POOL \
        syscontainer_write_compute_conf "$dir/nova-cpu.conf" \
        ovs_datapath_type=netdev daemon_kind="$CLOUD_DAEMON_KIND" \
        image_templates=true
}

write_clouds_yaml() {
    mkdir -p "$(dirname "$CLOUDS_YAML")"
    # Keep the other clouds of an existing file; (re)write ours.
    # The password through the environment, never the command line.
    NSC_ADMIN_PASSWORD=$ADMIN_PASSWORD "$(venv_bin python)" - "$CLOUDS_YAML" \
        "$CLOUD_NAME" "$KEYSTONE_URL" "$CLOUD_REGION" <<'PYEOF'
import os
import sys

import yaml

path, name, url, region = sys.argv[1:]
password = os.environ['NSC_ADMIN_PASSWORD']
data = {}
if os.path.exists(path):
    with open(path) as f:
        data = yaml.safe_load(f) or {}
data.setdefault('clouds', {})[name] = {
    'auth': {'auth_url': url, 'username': 'admin', 'password': password,
             'project_name': 'admin', 'user_domain_name': 'Default',
             'project_domain_name': 'Default'},
    'region_name': region,
    'interface': 'public',
    'identity_api_version': 3,
    # The CLI's default compute microversion is older than 2.86, below
    # which Nova does not validate flavor extra specs (the driver's
    # syscontainer: and quota: keys); 2.96 is known to both sides.
    'compute_api_version': '2.96',
}
old = os.umask(0o077)
with open(path + '.tmp', 'w') as f:
    yaml.safe_dump(data, f, default_flow_style=False)
os.umask(old)
os.replace(path + '.tmp', path)
PYEOF
}

# The files are generated whole at every start (stale keys never linger);
# change them here, not in place. They hold passwords: written under umask
# 077, in directories of mode 0700 (the services run as root; MariaDB
# reads its my.cnf as root before it becomes "mysql").
write_all_conf() {
    load_secrets
    # Neutron's state stays traversable: dnsmasq drops root and rereads
    # its hosts file there.
    (umask 022; mkdir -p "$CLOUD_STATE/neutron")
    (
        umask 077
        chmod 0700 "$CLOUD_CONF"
        find "$CLOUD_CONF" -type d -exec chmod 0700 {} +
        find "$CLOUD_CONF" -type f -exec chmod go-rwx {} +
        rm -f "$CLOUD_CONF"/*/*.conf "$CLOUD_CONF"/*/*.ini \
            "$CLOUD_CONF"/*/plugins/ml2/*.ini
        write_mariadb_conf
        write_keystone_conf
        write_placement_conf
        write_glance_conf
        write_neutron_conf
        write_nova_conf
        write_clouds_yaml
    )
}
