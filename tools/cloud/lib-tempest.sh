#!/bin/bash
# lib-tempest.sh - Tempest against the running all-in-one cloud, as
# DevStack's Tempest job runs it: Tempest from PyPI in a virtualenv of its
# own, tempest.conf written from the cloud (Keystone, the test image, two
# flavors, the compute flags of the project's one list in
# tools/lib/syscontainer-conf.sh, which the DevStack plugin writes too),
# dynamic credentials (Tempest makes a project, users and their network
# per test class; the admin's credentials are only for that), the
# repository's exclusion list, and a report under $TEMPEST_LOGS.

readonly TEMPEST_VERSION=47.0.0
# Its subunit2html writes the run's HTML report.
readonly TEMPEST_OS_TESTR_VERSION=3.0.0
readonly TEMPEST_VENV=${SYSCONTAINER_TEMPEST_VENV:-/opt/nova-syscontainer/tempest-venv}
readonly TEMPEST_LOGS=${SYSCONTAINER_TEMPEST_LOGS:-/var/log/nova-syscontainer/tempest}
# Its own workspace (stestr repository, tempest.conf): a second run at once
# takes another (SYSCONTAINER_TEMPEST_WORKSPACE).
readonly TEMPEST_WORKSPACE=${SYSCONTAINER_TEMPEST_WORKSPACE:-$CLOUD_STATE/tempest}
readonly TEMPEST_CONF=$TEMPEST_WORKSPACE/etc/tempest.conf
readonly TEMPEST_EXCLUDE=$CLOUD_LIB/tempest-exclude.txt
# With --validation (the stock systemd guest) this one too.
readonly TEMPEST_EXCLUDE_STOCK=$CLOUD_LIB/tempest-exclude-stock.txt
readonly TEMPEST_EXCLUDE_BUSYBOX=$CLOUD_LIB/tempest-exclude-busybox.txt
readonly TEMPEST_CONCURRENCY=${SYSCONTAINER_TEMPEST_CONCURRENCY:-2}
readonly TEMPEST_IMAGE=tempest-busybox
readonly TEMPEST_FLAVOR=tempest.nano
readonly TEMPEST_FLAVOR_ALT=tempest.micro
# --validation: Tempest logs into its servers over SSH through floating
# IPs, so its image is the stock Debian 12 guest (tools/build-stock-image.sh:
# cloud-init, sshd; cloud-init's default user "debian" gets the key from
# Nova's metadata API), with flavors that hold systemd.
readonly TEMPEST_STOCK_IMAGE=tempest-debian-12
readonly TEMPEST_STOCK_FLAVOR=tempest.small
readonly TEMPEST_STOCK_FLAVOR_ALT=tempest.medium
readonly TEMPEST_SSH_USER=debian
# The networks Tempest makes for its projects: RFC 2544's benchmarking
# block, never a private range of this machine's (Tempest's default is
# 10.100.0.0/16), /28 each.
readonly TEMPEST_PROJECT_CIDR=198.18.0.0/16

install_tempest() {
    local log=$CLOUD_LOGS/install.log
    if [ "$(cat "$TEMPEST_VENV/.nsc-tempest" 2>/dev/null)" = "$TEMPEST_VERSION" ]
    then
        install_subunit2html
        return 0
    fi
    say "installing Tempest $TEMPEST_VERSION into $TEMPEST_VENV (pip; about a minute)"
    rm -rf "$TEMPEST_VENV"
    "$CLOUD_PYTHON" -m venv "$TEMPEST_VENV" >>"$log" 2>&1
    "$TEMPEST_VENV/bin/pip" install -q -U pip >>"$log" 2>&1
    "$TEMPEST_VENV/bin/pip" install -q "tempest==$TEMPEST_VERSION" >>"$log" 2>&1 \
        || die "pip install tempest failed; see $log"
    printf '%s\n' "$TEMPEST_VERSION" >"$TEMPEST_VENV/.nsc-tempest"
    install_subunit2html
}

install_subunit2html() {
    [ ! -x "$TEMPEST_VENV/bin/subunit2html" ] || return 0
    "$TEMPEST_VENV/bin/pip" install -q "os-testr==$TEMPEST_OS_TESTR_VERSION" \
        >>"$CLOUD_LOGS/install.log" 2>&1 \
        || die "pip install os-testr failed; see $CLOUD_LOGS/install.log"
}

# The id of an image, flavor or network by name (admin), or nothing.
resource_id() {
    osc_quiet "$1" show "$2" -f value -c id 2>/dev/null || true
}

# What Tempest needs that an admin makes: the test image (public, replaced
# when the tarball changes), two flavors (resize goes from one to the
# other). Kept between runs.
tempest_resources() {
    glance_image "$TEMPEST_IMAGE" "$DEMO_IMAGE_FILE" >/dev/null
    if [ -z "$(resource_id flavor "$TEMPEST_FLAVOR")" ]; then
        osc_quiet flavor create --vcpus 1 --ram 128 --disk 1 \
            "$TEMPEST_FLAVOR" >/dev/null
    fi
    if [ -z "$(resource_id flavor "$TEMPEST_FLAVOR_ALT")" ]; then
        osc_quiet flavor create --vcpus 1 --ram 192 --disk 1 \
            "$TEMPEST_FLAVOR_ALT" >/dev/null
    fi
}

# The stock guest and its flavors, for --validation (built or reused by
# tools/build-stock-image.sh; glance_image replaces the image when the
# recipe, so the tarball, changes).
tempest_stock_resources() {
    local file
    file=$("$REPO/tools/build-stock-image.sh" | tail -n1) \
        || die "tools/build-stock-image.sh failed"
    glance_image "$TEMPEST_STOCK_IMAGE" "$file" \
        --property os_distro=debian >/dev/null
    if [ -z "$(resource_id flavor "$TEMPEST_STOCK_FLAVOR")" ]; then
        osc_quiet flavor create --vcpus 1 --ram 512 --disk 2 \
            "$TEMPEST_STOCK_FLAVOR" >/dev/null
    fi
    if [ -z "$(resource_id flavor "$TEMPEST_STOCK_FLAVOR_ALT")" ]; then
        osc_quiet flavor create --vcpus 1 --ram 640 --disk 2 \
            "$TEMPEST_STOCK_FLAVOR_ALT" >/dev/null
    fi
}

# write_tempest_conf VALIDATION (True: the stock guest, SSH checks on)
write_tempest_conf() {
    local validation=$1
    mkdir -p "$TEMPEST_WORKSPACE/etc" "$TEMPEST_WORKSPACE/locks"
    local image flavor flavor_alt public_net
    if [ "$validation" = True ]; then
        image=$(resource_id image "$TEMPEST_STOCK_IMAGE")
        flavor=$(resource_id flavor "$TEMPEST_STOCK_FLAVOR")
        flavor_alt=$(resource_id flavor "$TEMPEST_STOCK_FLAVOR_ALT")
    else
        image=$(resource_id image "$TEMPEST_IMAGE")
        flavor=$(resource_id flavor "$TEMPEST_FLAVOR")
        flavor_alt=$(resource_id flavor "$TEMPEST_FLAVOR_ALT")
    fi
    if [ -z "$image" ] || [ -z "$flavor" ] || [ -z "$flavor_alt" ]; then
        die "Tempest's image or flavors are missing"
    fi
    public_net=$(cloud_public_network_id)
    # Neutron's extensions as it lists them (Tempest's default, "all",
    # runs tests of extensions this Neutron has not loaded, such as
    # auto-allocated-topology), as DevStack writes them.
    local extensions
    extensions=$(osc_quiet extension list --network -f value -c Alias \
        | sort | paste -sd, -)
    [ -n "$extensions" ] || die "Neutron lists no extensions"
    rm -f "$TEMPEST_CONF"
    # The admin's password is in it: readable by root only.
    (
        umask 077
        {
            printf '%s\n' \
                DEFAULT log_file "$TEMPEST_LOGS/tempest.log" \
                oslo_concurrency lock_path "$TEMPEST_WORKSPACE/locks" \
                auth use_dynamic_credentials true \
                auth create_isolated_networks true \
                auth admin_username admin \
                auth admin_password "$ADMIN_PASSWORD" \
                auth admin_project_name admin \
                auth admin_domain_name Default \
                auth default_credentials_domain_name Default \
                identity uri_v3 "$KEYSTONE_URL" \
                identity auth_version v3 \
                identity region "$CLOUD_REGION" \
                identity v3_endpoint_type public \
                compute region "$CLOUD_REGION" \
                compute image_ref "$image" \
                compute image_ref_alt "$image" \
                compute flavor_ref "$flavor" \
                compute flavor_ref_alt "$flavor_alt" \
                compute min_compute_nodes 1 \
                compute max_microversion latest \
                compute endpoint_type public \
                image region "$CLOUD_REGION" \
                network region "$CLOUD_REGION" \
                network project_network_cidr "$TEMPEST_PROJECT_CIDR" \
                network project_network_mask_bits 28 \
                network-feature-enabled ipv6 false \
                network-feature-enabled api_extensions "$extensions" \
                service_available nova true \
                service_available neutron true \
                service_available glance true \
                service_available cinder false \
                service_available swift false \
                service_available horizon false \
                placement region "$CLOUD_REGION"
            if [ -n "$public_net" ]; then
                printf '%s\n' network public_network_id "$public_net" \
                    network floating_network_name "$CLOUD_PUBLIC_NET"
            fi
            if [ "$validation" = True ]; then
                # Floating IPs from "public" (this machine routes it over
                # br-ex), the key Tempest makes, cloud-init's user; a
                # systemd guest boots in tens of seconds here.
                printf '%s\n' \
                    validation connect_method floating \
                    validation auth_method keypair \
                    validation ip_version_for_ssh 4 \
                    validation image_ssh_user "$TEMPEST_SSH_USER" \
                    validation image_alt_ssh_user "$TEMPEST_SSH_USER" \
                    validation ssh_timeout 420 \
                    validation ping_timeout 240 \
                    validation connect_timeout 60
                # Tempest renews a guest's DHCP lease only with udhcpc,
                # dhclient or dhcpcd (its default, udhcpc, is CirrOS's);
                # the stock guest's DHCP client is systemd-networkd's, so
                # none: empty, as Tempest's option offers, skips
                # test_subnet_details ("DHCP client is not available")
                # instead of failing on "cat /var/run/udhcpc.eth0.pid".
                printf '%s\n' scenario dhcp_client ''
                # The shelve and snapshot scenarios write a timestamp
                # before and read it after the server boots again, in
                # /tmp by default; Debian empties /tmp at every boot
                # (tmpfiles.d/tmp.conf "D /tmp", systemd-tmpfiles
                # --remove --boot), as on a virtual machine. /var/tmp
                # survives a boot.
                printf '%s\n' scenario target_dir /var/tmp
            fi
            # One node, no migration endpoint: no migrations; nova-compute
            # runs as root, so NICs can be hot-plugged.
            syscontainer_tempest_triples False True "$validation"
        } | ini "$TEMPEST_CONF"
    )
}

# cmd_tempest [--validation] [REGEX]: Tempest's smoke set, or the tests
# REGEX selects (with --validation: on the stock guest, over SSH),
# minus the exclusion list; the counts printed, the subunit stream, its
# HTML rendering and the text report kept in $TEMPEST_LOGS. Non-zero when
# a test failed.
cmd_tempest() {
    local validation=False
    if [ "${1:-}" = --validation ]; then
        validation=True
        shift
    fi
    local regex=${1:-}
    status_all >/dev/null || die "the cloud is not running (tools/cloud.sh start)"
    load_secrets
    mkdir -p "$TEMPEST_LOGS"
    install_tempest
    tempest_resources
    if [ "$validation" = True ]; then
        tempest_stock_resources
    fi
    if [ ! -f "$TEMPEST_WORKSPACE/.stestr.conf" ]; then
        rm -rf "$TEMPEST_WORKSPACE"
        run_logged "tempest init" "$TEMPEST_VENV/bin/tempest" init \
            --workspace-path "$CLOUD_STATE/tempest-workspaces.yaml" \
            --name "nova-syscontainer-${TEMPEST_WORKSPACE##*/}" "$TEMPEST_WORKSPACE"
    fi
    write_tempest_conf "$validation"
    local -a select=(--smoke)
    [ -z "$regex" ] || select=(--regex "$regex")
    local stamp report t0=$SECONDS rc=0
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    report=$TEMPEST_LOGS/tempest-$stamp
    # The exclusions this run used, kept with its report.
    local exclude=$report.exclude
    cat "$TEMPEST_EXCLUDE" >"$exclude"
    if [ "$validation" = True ]; then
        cat "$TEMPEST_EXCLUDE_STOCK" >>"$exclude"
    else
        cat "$TEMPEST_EXCLUDE_BUSYBOX" >>"$exclude"
    fi
    (cd "$TEMPEST_WORKSPACE" && "$TEMPEST_VENV/bin/tempest" run --list-tests \
        --config-file "$TEMPEST_CONF" "${select[@]}") >"$report.listed" 2>>"$report.txt" \
        || die "tempest could not list its tests; see $report.txt"
    say "Tempest ${select[*]} (concurrency $TEMPEST_CONCURRENCY), report $report.txt"
    (cd "$TEMPEST_WORKSPACE" && "$TEMPEST_VENV/bin/tempest" run \
        --config-file "$TEMPEST_CONF" "${select[@]}" --exclude-list "$exclude" \
        --concurrency "$TEMPEST_CONCURRENCY") >>"$report.txt" 2>&1 || rc=$?
    (cd "$TEMPEST_WORKSPACE" && "$TEMPEST_VENV/bin/stestr" last --subunit) \
        >"$report.subunit" 2>/dev/null || true
    "$TEMPEST_VENV/bin/subunit2html" "$report.subunit" "$report.html" \
        >/dev/null 2>&1 || say "subunit2html could not write $report.html"
    local summary
    summary=$("$TEMPEST_VENV/bin/python" "$CLOUD_LIB/tempest_counts.py" \
        "$report.subunit" "$report.listed" "$exclude") \
        || die "could not read Tempest's results; see $report.txt"
    printf '%s\n' "$summary" >>"$report.txt"
    # The counts line first (with the time), then the failed ids.
    say "tempest: $(head -n1 <<<"$summary") in $((SECONDS - t0))s;" \
        "report $report.html, subunit $report.subunit"
    tail -n +2 <<<"$summary"
    return "$rc"
}
