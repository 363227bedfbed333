#!/bin/bash
# lib-demo.sh - the end of the main command: the ordinary openstack CLI
# uploads the test image, makes a flavor with limits and boots a container
# server; then Nova, the LXD daemon and the kernel's cgroup files show it.

# How images are registered (tools/lib/syscontainer-image.sh, shared with
# the DevStack plugin): LXD unified tarball as raw/bare, with properties.
readonly DEMO_IMAGE_FILE=$SYSCONTAINER_TEST_IMAGE_FILE
readonly DEMO_IMAGE=busybox-counter
readonly DEMO_FLAVOR=sc.small
readonly DEMO_SERVER=${SYSCONTAINER_DEMO_SERVER:-demo}
readonly DEMO_NET=demo-net
# TEST-NET-1 (RFC 5737): only Neutron's port records get an address from
# it; no bridge or host interface ever does. No router, no gateway, no
# DHCP: the server's NIC is wired, not addressed.
readonly DEMO_SUBNET_RANGE=192.0.2.0/24

osc() {
    printf '\n$ openstack %s\n' "$*"
    OS_CLOUD=$CLOUD_NAME "$(venv_bin openstack)" "$@"
}
osc_quiet() { OS_CLOUD=$CLOUD_NAME "$(venv_bin openstack)" "$@"; }

# glance_image NAME FILE [ARGS...]: the public image NAME holds FILE's
# content. The image carries the tarball's sha256 (FILE.sha256, which the
# image's builder writes) as a property: kept between runs while the file
# stays, replaced (old ones deleted) when it changes, since a Glance image's
# data never changes and the driver reuses what a daemon already imported
# under its id. ARGS go to "openstack image create". Prints the image's id.
glance_image() {
    local name=$1 file=$2 sha current old
    shift 2
    [ -r "$file.sha256" ] || die "no $file.sha256 beside the image"
    sha=$(cut -d' ' -f1 "$file.sha256")
    current=$(osc_quiet image list --name "$name" \
        --property "nova_syscontainer_sha256=$sha" -f value -c ID)
    if [ -z "$current" ]; then
        for old in $(osc_quiet image list --name "$name" -f value -c ID); do
            osc_quiet image delete "$old"
        done
        current=$(osc_quiet image create \
            "${SYSCONTAINER_IMAGE_CREATE_ARGS[@]}" "$@" \
            --property "nova_syscontainer_sha256=$sha" --public \
            --file "$file" "$name" -f value -c id)
    fi
    printf '%s\n' "$current"
}

# The host path of a running container's cgroup for one v1 controller.
container_cgroup() {
    local pid=$1 controller=$2
    awk -F: -v c="$controller" '
        { n = split($2, cs, ","); for (i = 1; i <= n; i++)
              if (cs[i] == c) { print "/sys/fs/cgroup/" $2 $3; exit } }
    ' "/proc/$pid/cgroup"
}

# The server's port as Neutron and the OVS agent made it, and its NIC
# inside the container (container init PID $1).
demo_network() {
    local pid=$1 port mac short
    port=$(osc_quiet port list --server "$DEMO_SERVER" -f value -c ID | head -n1)
    [ -n "$port" ] || die "server $DEMO_SERVER has no port"
    osc port show "$port" -c id -c mac_address -c status -c fixed_ips \
        -c binding_host_id -c binding_vif_type -c binding_vif_details
    mac=$(osc_quiet port show "$port" -f value -c mac_address)
    short=${port:0:11}
    printf '\n$ ovs-vsctl list-ports %s\n' "$CLOUD_OVS_BRIDGE"
    ovs-vsctl --timeout=30 list-ports "$CLOUD_OVS_BRIDGE"
    printf '\n$ ovs-vsctl get port qvo%s tag   (the agent'"'"'s local VLAN)\n' \
        "$short"
    ovs-vsctl --timeout=30 get port "qvo$short" tag
    printf '\n$ nsenter -t %s -n ip -br link   (inside the container;' "$pid"
    printf ' the port'"'"'s MAC is %s)\n' "$mac"
    nsenter -t "$pid" -n ip -br link
    nsenter -t "$pid" -n ip -br link | grep -qi "$mac" \
        || die "no NIC with the port's MAC $mac in the container"
}

demo() {
    local t0=$SECONDS
    [ -r "$DEMO_IMAGE_FILE" ] || die "no test image $DEMO_IMAGE_FILE" \
        "(tools/setup-host.sh builds it)"
    local image
    image=$(glance_image "$DEMO_IMAGE" "$DEMO_IMAGE_FILE")
    osc image show "$image" -c id -c name -c disk_format -c container_format \
        -c size -c status
    # Limits the kernel enforces (doc/source/flavors.rst): 1 CPU, 128 MiB,
    # a 1 GiB root disk (btrfs qgroup), half a CPU's time, 100 processes.
    if ! osc_quiet flavor show "$DEMO_FLAVOR" >/dev/null 2>&1; then
        osc flavor create --vcpus 1 --ram 128 --disk 1 \
            --property quota:cpu_quota=50000 \
            --property quota:cpu_period=100000 \
            --property syscontainer:processes=100 "$DEMO_FLAVOR" \
            -c name -c vcpus -c ram -c disk -c properties
    fi
    if osc_quiet server show "$DEMO_SERVER" >/dev/null 2>&1; then
        osc server delete --wait "$DEMO_SERVER"
    fi
    # A "local" network (ports on this host only): Neutron binds the
    # server's port to the OVS agent here, which wires it in br-int.
    if ! osc_quiet network show "$DEMO_NET" >/dev/null 2>&1; then
        osc network create "$DEMO_NET" -c id -c name -c provider:network_type
        osc subnet create --network "$DEMO_NET" \
            --subnet-range "$DEMO_SUBNET_RANGE" --gateway none --no-dhcp \
            "$DEMO_NET-subnet" -c id -c cidr -c gateway_ip -c enable_dhcp
    fi
    local t1=$SECONDS
    osc server create --flavor "$DEMO_FLAVOR" --image "$image" \
        --network "$DEMO_NET" --wait "$DEMO_SERVER" \
        -c id -c name -c status -c OS-EXT-SRV-ATTR:instance_name \
        -c OS-EXT-SRV-ATTR:host
    local boot=$((SECONDS - t1))
    local status name
    status=$(osc_quiet server show "$DEMO_SERVER" -f value -c status)
    [ "$status" = ACTIVE ] || die "server $DEMO_SERVER is $status, not ACTIVE"
    name=$(osc_quiet server show "$DEMO_SERVER" -f value \
        -c OS-EXT-SRV-ATTR:instance_name)

    printf '\n$ %s list %s\n' "$CLOUD_CLI" "$name"
    "$CLOUD_CLI" list "$name" -c nsPt
    printf '\n$ %s config show %s | grep limits (what the driver set)\n' "$CLOUD_CLI" "$name"
    "$CLOUD_CLI" config show "$name" | grep -E 'limits\.|cfs_|size:' || true
    local pid
    pid=$("$CLOUD_CLI" info "$name" | awk '/^PID:/ {print $2}')
    [ -n "$pid" ] || die "container $name has no init process"
    printf '\nThe kernel enforces (cgroup v1 files of init PID %s):\n' "$pid"
    local cg
    cg=$(container_cgroup "$pid" memory)
    printf '  memory.limit_in_bytes = %s\n' "$(cat "$cg/memory.limit_in_bytes")"
    cg=$(container_cgroup "$pid" cpu)
    printf '  cpu.cfs_quota_us      = %s\n' "$(cat "$cg/cpu.cfs_quota_us")"
    printf '  cpu.cfs_period_us     = %s\n' "$(cat "$cg/cpu.cfs_period_us")"
    cg=$(container_cgroup "$pid" cpuset)
    printf '  cpuset.cpus           = %s\n' "$(cat "$cg/cpuset.cpus")"
    cg=$(container_cgroup "$pid" pids)
    printf '  pids.max              = %s\n' "$(cat "$cg/pids.max")"
    demo_network "$pid"
    echo
    osc console log show --lines 10 "$DEMO_SERVER"
    cat <<EOT

cloud: server "$DEMO_SERVER" ACTIVE in ${boot}s (demo $((SECONDS - t0))s). Go on with the openstack CLI:
  export OS_CLOUD=$CLOUD_NAME     # $CLOUDS_YAML
  openstack server stop $DEMO_SERVER; openstack server start $DEMO_SERVER
  openstack console log show $DEMO_SERVER
  openstack flavor set --property quota:cpu_quota=20000 $DEMO_FLAVOR  # next boots
  openstack port list --server $DEMO_SERVER --long
  openstack server delete $DEMO_SERVER
  tools/cloud.sh stop             # ends the services tools/cloud.sh started
EOT
}
