#!/bin/bash
# lib-services.sh - databases, service processes and Keystone/Nova
# bootstrap of the all-in-one cloud. Each start_* is idempotent: a service
# that supervisord has running is left alone.

# Run a service's command-line tool, its output into install.log.
run_logged() {
    local what=$1
    shift
    printf '\n==== %s %s\n' "$(date -u +%FT%TZ)" "$what" >>"$CLOUD_LOGS/setup.log"
    "$@" >>"$CLOUD_LOGS/setup.log" 2>&1 \
        || die "$what failed; see $CLOUD_LOGS/setup.log"
}

# Database schemas, made or upgraded once per virtualenv and database
# layout: the stamp holds the virtualenv's digest and the layout's
# version, so new service versions get their migrations and a moved
# database its schema.
readonly CLOUD_DB_LAYOUT=2   # 2: Keystone's in MariaDB too
sync_databases() {
    local stamp=$CLOUD_STATE/.db-synced digest
    digest="$(cat "$CLOUD_VENV/.nsc-digest") layout $CLOUD_DB_LAYOUT"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
        return 0
    fi
    # A cloud made when Keystone was on SQLite: its users and projects
    # (which every other database names) stay there; start afresh.
    if [ -e "$CLOUD_STATE/keystone.sqlite" ]; then
        die "Keystone's database moved to MariaDB: tools/cloud.sh reset," \
            "then start (this cloud's projects and servers go)"
    fi
    say "creating the databases (MariaDB)"
    local k=$CLOUD_CONF/keystone/keystone.conf
    run_logged "keystone db_sync" "$(venv_bin keystone-manage)" \
        --config-file "$k" db_sync
    run_logged "keystone fernet_setup" "$(venv_bin keystone-manage)" \
        --config-file "$k" fernet_setup --keystone-user root --keystone-group root
    run_logged "keystone credential_setup" "$(venv_bin keystone-manage)" \
        --config-file "$k" credential_setup --keystone-user root \
        --keystone-group root
    run_logged "placement db sync" env \
        "OS_PLACEMENT_CONFIG_DIR=$CLOUD_CONF/placement" \
        "$(venv_bin placement-manage)" \
        --config-file "$CLOUD_CONF/placement/placement.conf" db sync
    run_logged "glance db_sync" "$(venv_bin glance-manage)" \
        --config-file "$CLOUD_CONF/glance/glance-api.conf" db_sync
    run_logged "neutron upgrade heads" "$(venv_bin neutron-db-manage)" \
        --config-file "$CLOUD_CONF/neutron/neutron.conf" \
        --config-file "$CLOUD_CONF/neutron/plugins/ml2/ml2_conf.ini" \
        upgrade heads
    local n=(--config-file "$CLOUD_CONF/nova/nova.conf")
    run_logged "nova api_db sync" "$(venv_bin nova-manage)" "${n[@]}" \
        api_db sync
    if ! "$(venv_bin nova-manage)" "${n[@]}" cell_v2 list_cells 2>/dev/null \
            | grep -q ' cell0 '; then
        run_logged "nova map_cell0" "$(venv_bin nova-manage)" "${n[@]}" \
            cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)"
    fi
    if ! "$(venv_bin nova-manage)" "${n[@]}" cell_v2 list_cells 2>/dev/null \
            | grep -q ' cell1 '; then
        run_logged "nova create_cell cell1" "$(venv_bin nova-manage)" "${n[@]}" \
            cell_v2 create_cell --name cell1
    fi
    run_logged "nova db sync" "$(venv_bin nova-manage)" "${n[@]}" db sync
    printf '%s\n' "$digest" >"$stamp"
}

# The cloud's MariaDB server (lib-config.sh's my.cnf), run as Debian's
# "mysql" user; its data made on first start. Then the services'
# databases and their user, made if missing.
start_mariadb() {
    local cnf=$CLOUD_CONF/mariadb/my.cnf
    mkdir -p "$CLOUD_DB_DIR/data"
    chown mysql:mysql "$CLOUD_DB_DIR" "$CLOUD_DB_DIR/data"
    if [ ! -d "$CLOUD_DB_DIR/data/mysql" ]; then
        run_logged "mariadb-install-db" mariadb-install-db \
            --defaults-file="$cnf" --user=mysql --skip-test-db \
            --auth-root-authentication-method=socket
    fi
    start_service mariadb -- /usr/sbin/mariadbd --defaults-file="$cnf" \
        --user=mysql
    wait_for mariadb 120 mariadb-admin --socket="$CLOUD_DB_SOCKET" ping
    local db sql=""
    for db in keystone placement glance neutron nova_api nova_cell0 nova_cell1; do
        sql+="CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8;"
        sql+="GRANT ALL PRIVILEGES ON $db.* TO '$CLOUD_DB_USER'@'localhost';"
    done
    # root on the socket is the OS user root (unix_socket authentication);
    # the statements on stdin keep the password off command lines.
    run_logged "mariadb databases" mariadb --socket="$CLOUD_DB_SOCKET" <<EOT
CREATE USER IF NOT EXISTS '$CLOUD_DB_USER'@'localhost';
ALTER USER '$CLOUD_DB_USER'@'localhost' IDENTIFIED BY '$DATABASE_PASSWORD';
$sql
EOT
}

# A WSGI application under uwsgi, on loopback only, uwsgi speaking HTTP
# itself (http-socket). It does not keep connections alive: "Connection:
# close" tells clients so (without it keystoneauth reuses a closed
# connection and gets "Connection reset by peer"). uwsgi's HTTP router
# (--http, --http-keepalive) was tried instead and is worse: Keystone's
# first PUT of a role assignment (a 204, no length) got "Remote end closed
# connection without response". The "Remote end closed" errors Tempest's
# two workers got from Keystone were not uwsgi's: Keystone on SQLite
# raised "database is locked" before answering (see write_keystone_conf).
# Keystone (password hashing, tokens: CPU bound) and Nova's API get two
# processes, every service four threads a process, a backlog of 128, and
# 60 s instead of 4 s to read a request on a machine this busy.
# Glance reads a chunked upload through uwsgi.chunked_read, which holds
# a whole chunk in a buffer of at most --chunked-input-limit bytes
# (uwsgi's default 1 MiB): glanceclient sends 1 MiB chunks (its
# CHUNKSIZE), so with the chunk's size line and CRLF every upload of
# more than one chunk, e.g. Nova's snapshot of the stock guest, failed
# at once with "unable to receive chunked part" (an HTTP 500 within
# 0.1 s). DevStack does not see it: Apache's mod_proxy_http in front of
# Glance's uwsgi re-chunks the body (lib/apache,
# write_local_uwsgi_http_config). 8 MiB leaves room for any client's
# chunk; the buffer grows only as far as a chunk needs.
start_uwsgi() {
    local name=$1 port=$2 module=$3 processes=1
    local -a extra=()
    shift 3
    case $name in
        keystone|nova-api) processes=2 ;;
        glance) extra=(--chunked-input-limit $((8 * 1024 * 1024))) ;;
    esac
    start_service "$name" "$@" -- "$(venv_bin uwsgi)" \
        --master --need-app --die-on-term --lazy-apps --enable-threads \
        --http-socket "$CLOUD_IP:$port" --module "$module" \
        --virtualenv "$CLOUD_VENV" --processes "$processes" --threads 4 \
        --socket-timeout 60 --listen 128 \
        --buffer-size 65535 --http-auto-chunked --http-raw-body \
        --disable-logging --log-4xx --log-5xx \
        --add-header "Connection: close" "${extra[@]}" \
        --procname-prefix "nsc-cloud-$name "
}

# Erlang's distribution (epmd, and the node's and every rabbitmqctl's
# own distribution port, by default on all addresses) on loopback only.
readonly CLOUD_ERL_DIST_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export ERL_EPMD_ADDRESS=$CLOUD_IP
export RABBITMQ_CTL_ERL_ARGS=$CLOUD_ERL_DIST_ARGS

start_rabbitmq() {
    # Erlang's port mapper is shared by every Erlang node: the cloud runs
    # one of its own (a supervisord program, on loopback) only when none
    # runs, and stop ends only that one.
    # An epmd on every address with no node registered: what an Erlang
    # CLI (rabbitmqctl) started without ERL_EPMD_ADDRESS (this script's
    # before it set it). RabbitMQ's node would register with it: end it
    # (epmd -kill, its own request) so that the cloud starts one on
    # loopback.
    if ! service_pid epmd >/dev/null && ! service_pid rabbitmq >/dev/null \
        && pgrep -x epmd >/dev/null \
        && ss -Hltn 'sport = :4369' | awk '{print $4}' \
            | grep -qv '^127\.0\.0\.1:' \
        && ! epmd -names 2>/dev/null | grep -q '^name '; then
        say "ending an idle epmd that listens beyond loopback"
        epmd -kill >/dev/null 2>&1 || true
        sleep 1
    fi
    if service_pid epmd >/dev/null || ! pgrep -x epmd >/dev/null; then
        start_service epmd ERL_EPMD_ADDRESS="$CLOUD_IP" -- epmd
        wait_for epmd 30 epmd -names
    fi
    # The node as Debian's "rabbitmq" user, started directly: Debian's
    # /usr/sbin/rabbitmq-server wrapper runs it through su, which puts it
    # in a session (and process group) of its own, out of supervisord's
    # reach.
    start_service rabbitmq --user rabbitmq --dir /var/lib/rabbitmq \
        HOME=/var/lib/rabbitmq USER=rabbitmq LOGNAME=rabbitmq \
        RABBITMQ_NODE_IP_ADDRESS="$CLOUD_IP" \
        RABBITMQ_NODE_PORT="$RABBIT_PORT" ERL_EPMD_ADDRESS="$CLOUD_IP" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$CLOUD_ERL_DIST_ARGS" \
        RABBITMQ_LOGS=- -- /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_for rabbitmq 120 rabbitmqctl -q await_startup
    ensure_rabbit_user
}

# The cloud's RabbitMQ user, its generated password set (on stdin: never
# on a command line) at every start, full rights on "/"; Debian's "guest"
# (password "guest") deleted.
ensure_rabbit_user() {
    if ! rabbitmqctl -q list_users 2>/dev/null \
            | awk -v u="$CLOUD_RABBIT_USER" '$1 == u {f = 1} END {exit !f}'
    then
        printf '%s\n' "$RABBIT_PASSWORD" | run_logged "rabbitmq add_user" \
            rabbitmqctl add_user "$CLOUD_RABBIT_USER"
    else
        printf '%s\n' "$RABBIT_PASSWORD" | run_logged \
            "rabbitmq change_password" rabbitmqctl change_password \
            "$CLOUD_RABBIT_USER"
    fi
    run_logged "rabbitmq set_permissions" rabbitmqctl set_permissions \
        -p / "$CLOUD_RABBIT_USER" '.*' '.*' '.*'
    if rabbitmqctl -q list_users 2>/dev/null | awk '$1 == "guest" {f = 1}
            END {exit !f}'; then
        run_logged "rabbitmq delete_user guest" rabbitmqctl delete_user guest
    fi
}

start_keystone() {
    start_uwsgi keystone "$KEYSTONE_PORT" keystone.wsgi.api:application \
        "OS_KEYSTONE_CONFIG_FILES=$CLOUD_CONF/keystone/keystone.conf"
    wait_for keystone 120 http_up "$KEYSTONE_URL"
}

bootstrap_keystone() {
    say "bootstrapping Keystone (admin, catalog on $CLOUD_IP)"
    # Passwords through the environment, never a command line (any local
    # user reads those in /proc/<pid>/cmdline).
    OS_BOOTSTRAP_PASSWORD=$ADMIN_PASSWORD run_logged "keystone bootstrap" \
        "$(venv_bin keystone-manage)" \
        --config-file "$CLOUD_CONF/keystone/keystone.conf" bootstrap \
        --bootstrap-admin-url "$KEYSTONE_URL" \
        --bootstrap-internal-url "$KEYSTONE_URL" \
        --bootstrap-public-url "$KEYSTONE_URL" \
        --bootstrap-region-id "$CLOUD_REGION"
    NSC_ADMIN_PASSWORD=$ADMIN_PASSWORD NSC_SERVICE_PASSWORD=$SERVICE_PASSWORD \
        run_logged "register services" "$(venv_bin python)" \
        "$CLOUD_LIB/register.py" "$KEYSTONE_URL" "$CLOUD_REGION" \
        "compute:nova:http://$CLOUD_IP:$NOVA_PORT/v2.1" \
        "image:glance:http://$CLOUD_IP:$GLANCE_PORT" \
        "placement:placement:http://$CLOUD_IP:$PLACEMENT_PORT" \
        "network:neutron:http://$CLOUD_IP:$NEUTRON_PORT"
}

start_placement() {
    start_uwsgi placement "$PLACEMENT_PORT" placement.wsgi.api:application \
        "OS_PLACEMENT_CONFIG_DIR=$CLOUD_CONF/placement"
    wait_for placement 120 http_up "http://$CLOUD_IP:$PLACEMENT_PORT/"
}

start_glance() {
    start_uwsgi glance "$GLANCE_PORT" glance.wsgi.api:application \
        "OS_GLANCE_CONFIG_DIR=$CLOUD_CONF/glance"
    wait_for glance 120 http_answers "http://$CLOUD_IP:$GLANCE_PORT/versions"
}

start_neutron() {
    # neutron_api.py: Neutron's application, mappers configured first.
    start_uwsgi neutron "$NEUTRON_PORT" neutron_api:application \
        "OS_NEUTRON_CONFIG_DIR=$CLOUD_CONF/neutron" "PYTHONPATH=$CLOUD_LIB"
    wait_for neutron 120 http_up "http://$CLOUD_IP:$NEUTRON_PORT/"
    local c=(--config-file "$CLOUD_CONF/neutron/neutron.conf"
             --config-file "$CLOUD_CONF/neutron/plugins/ml2/ml2_conf.ini")
    # Under a WSGI server, Neutron's API process serves no RPC: the
    # agent's reports and port updates (which send Nova its
    # network-vif-plugged events) go to neutron-rpc-server.
    start_service neutron-rpc -- "$(venv_bin neutron-rpc-server)" "${c[@]}"
    wait_for neutron-rpc 120 rpc_consumers q-plugin q-reports-plugin
    # The real OVS agent, as root, on br-int (tools/setup-host.sh's) and
    # br-ex (the external network's).
    ensure_external_bridge
    # tools/setup-host.sh (run by every start) drops each br-int port
    # without a kernel interface, and so the agent's patch port int-br-ex
    # too (a patch port has none): br-ex is cut off until the agent
    # makes the pair again, which it does when it starts.
    if service_pid neutron-ovs-agent >/dev/null \
        && ! ovs-vsctl --timeout=30 port-to-br "int-$CLOUD_EXT_BRIDGE" \
            >/dev/null 2>&1; then
        say "int-$CLOUD_EXT_BRIDGE is gone from $CLOUD_OVS_BRIDGE: restarting the OVS agent"
        stop_service neutron-ovs-agent
    fi
    start_service neutron-ovs-agent -- "$(venv_bin neutron-openvswitch-agent)" \
        --config-file "$CLOUD_CONF/neutron/neutron.conf" \
        --config-file "$CLOUD_CONF/neutron/plugins/ml2/openvswitch_agent.ini"
    wait_for neutron-ovs-agent 180 agent_alive open-vswitch
    local agent
    for agent in l3 dhcp; do
        start_service "neutron-$agent-agent" -- \
            "$(venv_bin "neutron-$agent-agent")" "${c[0]}" "${c[1]}" \
            --config-file "$CLOUD_CONF/neutron/${agent}_agent.ini"
    done
    wait_for neutron-l3-agent 180 agent_alive l3
    wait_for neutron-dhcp-agent 180 agent_alive dhcp
    start_service neutron-metadata-agent -- \
        "$(venv_bin neutron-metadata-agent)" "${c[0]}" "${c[1]}" \
        --config-file "$CLOUD_CONF/neutron/metadata_agent.ini"
    wait_for neutron-metadata-agent 180 agent_alive metadata
    ensure_public_network
}

# The L3 agent's metadata proxies (haproxy in the routers' namespaces)
# daemonize like dnsmasq; each one's PID file is in Neutron's state
# directory, and only a haproxy with this cloud's files is ended.
stop_haproxy() {
    local pidf pid
    for pidf in "$CLOUD_STATE"/neutron/external/pids/*.pid; do
        [ -r "$pidf" ] || continue
        pid=$(cat "$pidf")
        if [[ $pid =~ ^[0-9]+$ ]] \
            && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null \
                | grep -q "^haproxy .*$CLOUD_STATE/neutron/"; then
            say "stopping haproxy (PID $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
}

# Neutron lists the host's agent of a type as alive (it reported).
agent_alive() {
    OS_CLOUD=$CLOUD_NAME "$(venv_bin openstack)" network agent list \
        --host "$CLOUD_HOST" --agent-type "$1" -f value -c Alive \
        | grep -qx True
}

# The addresses this machine must keep reaching through its own routes:
# its DNS servers and what the package mirrors' names resolve to.
egress_addresses() {
    awk '$1 == "nameserver" {print $2}' /etc/resolv.conf
    getent ahostsv4 pypi.org files.pythonhosted.org deb.debian.org \
        2>/dev/null | awk '{print $1}'
}

# Whether IPv4 address $1 is in CIDR $2.
in_cidr() {
    python3 -c 'import ipaddress, sys
sys.exit(ipaddress.ip_address(sys.argv[1]) not in
         ipaddress.ip_network(sys.argv[2], strict=False))' "$1" "$2"
}

# br-ex, the OVS bridge of physical network "public" (userspace datapath,
# as br-int), its own port up with the external subnet's first address:
# this machine is the external network's only other host. Refused when
# the subnet would take this machine's DNS or mirrors away.
ensure_external_bridge() {
    local br=$CLOUD_EXT_BRIDGE addr
    for addr in $(egress_addresses | sort -u); do
        if in_cidr "$addr" "$CLOUD_PUBLIC_CIDR"; then
            die "$CLOUD_PUBLIC_CIDR holds $addr, which this machine reaches" \
                "through its own network (DNS or package mirror): set" \
                "SYSCONTAINER_PUBLIC_CIDR to another TEST-NET range"
        fi
    done
    ovs-vsctl --timeout=30 --may-exist add-br "$br" \
        -- set bridge "$br" datapath_type=netdev
    local i
    for i in $(seq 40); do
        [ -e "/sys/class/net/$br" ] && break
        sleep 0.25
    done
    [ -e "/sys/class/net/$br" ] || die "OVS made no interface $br"
    ip link set "$br" up
    if ! ip -4 -o addr show dev "$br" | grep -q " $CLOUD_PUBLIC_GATEWAY/"; then
        ip addr add "$CLOUD_PUBLIC_GATEWAY/${CLOUD_PUBLIC_CIDR#*/}" dev "$br"
    fi
}

# The admin's external network (the default one) and its subnet (the
# floating IP pool), and the default subnet pool, made once.
ensure_public_network() {
    local -a os=(env "OS_CLOUD=$CLOUD_NAME" "$(venv_bin openstack)")
    if ! "${os[@]}" network show "$CLOUD_PUBLIC_NET" >/dev/null 2>&1; then
        run_logged "network create $CLOUD_PUBLIC_NET" "${os[@]}" network \
            create --external --default --provider-network-type flat \
            --provider-physical-network "$CLOUD_PHYSNET" "$CLOUD_PUBLIC_NET"
    elif [ "$("${os[@]}" network show "$CLOUD_PUBLIC_NET" -f value \
            -c is_default)" != True ]; then
        run_logged "network set --default" "${os[@]}" network set \
            --default "$CLOUD_PUBLIC_NET"
    fi
    if ! "${os[@]}" subnet pool show "$CLOUD_SUBNETPOOL" >/dev/null 2>&1
    then
        run_logged "subnet pool create $CLOUD_SUBNETPOOL" "${os[@]}" subnet \
            pool create --share --default --default-prefix-length 26 \
            --pool-prefix "$CLOUD_SUBNETPOOL_PREFIX" "$CLOUD_SUBNETPOOL"
    fi
    if ! "${os[@]}" subnet show "$CLOUD_PUBLIC_NET-subnet" >/dev/null 2>&1
    then
        run_logged "subnet create $CLOUD_PUBLIC_NET-subnet" "${os[@]}" \
            subnet create --network "$CLOUD_PUBLIC_NET" \
            --subnet-range "$CLOUD_PUBLIC_CIDR" \
            --gateway "$CLOUD_PUBLIC_GATEWAY" --no-dhcp \
            --allocation-pool \
            "start=${CLOUD_PUBLIC_POOL[0]},end=${CLOUD_PUBLIC_POOL[1]}" \
            "$CLOUD_PUBLIC_NET-subnet"
    fi
}

# The external network's id, or nothing (no cloud, or no network).
cloud_public_network_id() {
    OS_CLOUD=$CLOUD_NAME "$(venv_bin openstack)" network show \
        "$CLOUD_PUBLIC_NET" -f value -c id 2>/dev/null || true
}

# The DHCP agent's dnsmasq processes leave its session (they daemonize)
# and outlive it by design; each one's PID file is in Neutron's state
# directory. Only a process that is dnsmasq with this cloud's files is
# ended.
stop_dnsmasq() {
    local pidf pid
    for pidf in "$CLOUD_STATE"/neutron/dhcp/*/pid; do
        [ -r "$pidf" ] || continue
        pid=$(cat "$pidf")
        if [[ $pid =~ ^[0-9]+$ ]] \
            && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null \
                | grep -q "^dnsmasq .*$CLOUD_STATE/neutron/dhcp/"; then
            say "stopping dnsmasq (PID $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
}

start_nova() {
    local n=(--config-file "$CLOUD_CONF/nova/nova.conf")
    # cell1's mapping keeps the transport URL it was made with (the API
    # and the conductor reach nova-compute through it): set it again from
    # nova.conf, so that it names RabbitMQ's user and password of today
    # (a cloud made before had guest's). From the file, not the command
    # line.
    local cell1
    cell1=$("$(venv_bin nova-manage)" "${n[@]}" cell_v2 list_cells \
        2>/dev/null | awk -F'|' '$2 ~ / cell1 / {gsub(/ /, "", $3); print $3}')
    if [ -n "$cell1" ]; then
        run_logged "nova update_cell cell1" "$(venv_bin nova-manage)" \
            "${n[@]}" cell_v2 update_cell --cell_uuid "$cell1"
    fi
    start_uwsgi nova-api "$NOVA_PORT" nova.wsgi.osapi_compute:application \
        "OS_NOVA_CONFIG_DIR=$CLOUD_CONF/nova"
    wait_for nova-api 120 http_up "http://$CLOUD_IP:$NOVA_PORT/"
    # Nova's metadata API, for neutron-metadata-agent (loopback only).
    start_uwsgi nova-metadata "$NOVA_METADATA_PORT" \
        nova.wsgi.metadata:application "OS_NOVA_CONFIG_DIR=$CLOUD_CONF/nova"
    wait_for nova-metadata 120 http_up "http://$CLOUD_IP:$NOVA_METADATA_PORT/"
    start_service nova-conductor -- "$(venv_bin nova-conductor)" "${n[@]}"
    start_service nova-scheduler -- "$(venv_bin nova-scheduler)" "${n[@]}"
    start_service nova-compute -- "$(venv_bin nova-compute)" \
        --config-file "$CLOUD_CONF/nova/nova-cpu.conf"
    wait_for nova-compute 180 rpc_consumers "compute.$CLOUD_HOST" conductor \
        scheduler
    # Map the compute host into cell1 (quick no-op when already mapped).
    run_logged "nova discover_hosts" "$(venv_bin nova-manage)" "${n[@]}" \
        cell_v2 discover_hosts
}

# Every named RabbitMQ queue has a consumer. Nova's services consume
# their RPC topic only once they are ready: nova-compute after init_host
# and its first report of the node's inventory to Placement. (A compute
# node row alone proves nothing on a second start: it is kept.)
rpc_consumers() {
    local queues
    queues=$(rabbitmqctl -q list_queues name consumers 2>/dev/null) || return 1
    local q
    for q in "$@"; do
        awk -v q="$q" '$1 == q && $2 > 0 {found = 1} END {exit !found}' \
            <<<"$queues" || return 1
    done
}

# The cloud's root disk pool. tools/setup-host.sh's btrfs pool "quota"
# is a 3 GiB loop file: three 1 GiB servers fill its DISK_GB inventory
# (the driver reports the pool's size), so Tempest's and a tenant's
# servers found "No valid host". An allocation ratio above 1 would
# promise space the pool does not have. This pool's loop file is sparse
# (it takes what the containers write) and sized once, from the free
# space where the daemon keeps it: a quarter of it, 4 to 64 GiB. Its size
# stays when it exists (LXD 5.0 cannot shrink a pool).
ensure_storage_pool() {
    if "$CLOUD_CLI" storage show "$CLOUD_POOL" >/dev/null 2>&1; then
        return 0
    fi
    local free_gib size
    free_gib=$(df --output=avail -B1G "$CLOUD_DAEMON_DIR" | tail -n1 | tr -d ' G')
    size=$((free_gib / 4))
    ((size >= 4)) || size=4
    ((size <= 64)) || size=64
    ((free_gib >= size + 4)) \
        || die "only ${free_gib} GiB free under $CLOUD_DAEMON_DIR for a ${size} GiB pool"
    say "creating storage pool $CLOUD_POOL (btrfs, sparse ${size} GiB loop file;" \
        "${free_gib} GiB free)"
    run_logged "$CLOUD_CLI storage create $CLOUD_POOL" "$CLOUD_CLI" storage create \
        "$CLOUD_POOL" btrfs "size=${size}GiB"
}

start_all() {
    ensure_storage_pool
    start_rabbitmq
    start_keystone
    bootstrap_keystone
    start_placement
    start_glance
    start_neutron
    start_nova
}

stop_all() {
    local i name
    for ((i = ${#CLOUD_SERVICES[@]} - 1; i >= 0; i--)); do
        name=${CLOUD_SERVICES[$i]}
        if [ "$name" = rabbitmq ] && service_pid rabbitmq >/dev/null; then
            rabbitmqctl -q shutdown >>"$CLOUD_LOGS/rabbitmq.log" 2>&1 || true
        fi
        stop_service "$name"
        if [ "$name" = neutron-dhcp-agent ]; then
            stop_dnsmasq
        fi
        if [ "$name" = neutron-l3-agent ]; then
            stop_haproxy
        fi
    done
    stop_service epmd
    stop_supervisord
}

# supervisorctl's view of each service (a service never started:
# "STOPPED (not started)"); 3 when one of them is not running.
status_services() {
    local name line rc=0 up=0
    supervisord_up && up=1
    for name in "$@"; do
        line=""
        if [ "$up" = 1 ]; then
            line=$(supervisorctl_ status "$name" 2>/dev/null) || true
        fi
        if [ "$up" = 0 ]; then
            printf '%-32s STOPPED   (supervisord not running)\n' "$name"
            rc=3
        elif [[ $line != "$name "* ]]; then
            printf '%-32s STOPPED   (not started)\n' "$name"
            rc=3
        else
            printf '%s\n' "$line"
            [[ $line == "$name "*RUNNING* ]] || rc=3
        fi
    done
    return "$rc"
}

status_all() {
    status_services "${CLOUD_SERVICES[@]}"
}

# The host side of a stopped cloud's ports (nova-compute would unplug
# them): per port qbr<id>, the veth pair qvb<id>/qvo<id> and qvo's port
# in br-int, named by the container's qbr bridges.
unplug_port_links() {
    local bridge id
    for bridge in "$@"; do
        id=${bridge#qbr}
        ovs-vsctl --timeout=30 --if-exists del-port "$CLOUD_OVS_BRIDGE" \
            "qvo$id"
        ip link del "qvb$id" 2>/dev/null || true
        ip link del "qvo$id" 2>/dev/null || true
        ip link del "$bridge" 2>/dev/null || true
    done
}

# The OVS agent's marks on br-int, undone: its OpenFlow controller
# (itself), fail mode "secure", its flows and bridge settings. br-int is
# left as tools/setup-host.sh makes it: standalone, one NORMAL flow. The
# ports' local VLAN tags go with the ports (nova-compute unplugs them).
reset_integration_bridge() {
    local br=$CLOUD_OVS_BRIDGE
    ovs-vsctl --timeout=30 br-exists "$br" 2>/dev/null || return 0
    say "resetting $br (the OVS agent's controller, fail mode and flows)"
    ovs-vsctl --timeout=30 del-controller "$br" -- del-fail-mode "$br" \
        -- remove bridge "$br" other_config disable-in-band \
        -- remove bridge "$br" other_config mac-table-size \
        -- remove bridge "$br" other_config \
        mcast-snooping-disable-flood-unregistered
    ovs-ofctl del-flows "$br"
    ovs-ofctl add-flow "$br" priority=0,actions=NORMAL
}

# What the L3 and DHCP agents leave of a stopped cloud: their namespaces
# (qrouter-, qdhcp-), the veths' ends in br-int (qr-, qg-, tap) and br-ex.
reset_agents_devices() {
    local ns port
    for ns in $(ip netns list | awk '$1 ~ /^(qrouter|qdhcp)-/ {print $1}'); do
        ip netns delete "$ns" || true
    done
    if ovs-vsctl --timeout=30 br-exists "$CLOUD_OVS_BRIDGE" 2>/dev/null; then
        for port in $(ovs-vsctl --timeout=30 list-ports "$CLOUD_OVS_BRIDGE" \
                | grep -E '^(qr-|qg-|tap)' || true); do
            ovs-vsctl --timeout=30 --if-exists del-port "$CLOUD_OVS_BRIDGE" \
                "$port"
            ip link del "$port" 2>/dev/null || true
        done
    fi
    ovs-vsctl --timeout=30 --if-exists del-br "$CLOUD_EXT_BRIDGE"
}

# Back to nothing: services stopped, the containers this cloud's
# nova-compute made (marked with its host) deleted from the daemon, state
# and configuration removed. The virtualenv stays (reinstalling it is the
# slow part); remove $CLOUD_VENV too for a start from scratch.
reset_all() {
    stop_all
    local name
    for name in $("$CLOUD_CLI" list --format csv -c n 2>/dev/null); do
        if [ "$("$CLOUD_CLI" config get "$name" user.nova_syscontainer.host 2>/dev/null)" \
                = "$CLOUD_HOST" ]; then
            say "deleting container $name (made by this cloud)"
            local -a bridges
            mapfile -t bridges < <("$CLOUD_CLI" config show "$name" | awk '
                $1 == "parent:" && $2 ~ /^qbr/ {print $2}')
            "$CLOUD_CLI" delete --force "$name"
            unplug_port_links "${bridges[@]}"
        elif [[ $name == nova-template-* ]] && [ "$("$CLOUD_CLI" query \
                "/1.0/instances/$name" 2>/dev/null | "$(venv_bin python)" -c \
                'import json, sys; print(json.load(sys.stdin)["expanded_devices"]["root"]["pool"])' \
                2>/dev/null)" = "$CLOUD_POOL" ]; then
            # The driver's image templates (nova_syscontainer/virt/template.py)
            # in this cloud's pool: no host key, nothing plugged.
            say "deleting image template $name (in pool $CLOUD_POOL)"
            "$CLOUD_CLI" delete --force "$name"
        fi
    done
    reset_integration_bridge
    reset_agents_devices
    # The pool goes too when nothing else uses it (images LXD cached in it
    # are its own; another user's volumes keep it).
    if "$CLOUD_CLI" storage show "$CLOUD_POOL" >/dev/null 2>&1; then
        local image
        for image in $("$CLOUD_CLI" storage volume list "$CLOUD_POOL" --format csv \
                2>/dev/null | awk -F, '$1 == "image" {print $2}'); do
            "$CLOUD_CLI" storage volume delete "$CLOUD_POOL" "image/$image" \
                >/dev/null 2>&1 || true
        done
        if "$CLOUD_CLI" storage delete "$CLOUD_POOL" >/dev/null 2>&1; then
            say "storage pool $CLOUD_POOL deleted"
        else
            say "storage pool $CLOUD_POOL kept (still in use)"
        fi
    fi
    rm -rf "$CLOUD_STATE" "$CLOUD_CONF"
    say "reset: state and configuration removed"
}
