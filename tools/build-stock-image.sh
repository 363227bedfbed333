#!/bin/bash
# build-stock-image.sh - build (once) the project's stock guest image: Debian 12
# bookworm from Debian's own packages (debootstrap, minbase + systemd, cloud-init,
# openssh-server), packed as an LXD unified tarball (metadata.yaml + rootfs, gzip).
#
# Idempotent: the tarball is cached under /var/cache/nova-syscontainer/images/
# with a sha256 file, its name and metadata.yaml carrying the recipe version
# (nova_syscontainer_image_version). A second run only checks the cache and
# prints the path; a rebuild happens only when RECIPE_VERSION below changes (or
# the cache is missing or corrupt). Each recipe has its own file, so checkouts
# of two recipes on one host (worktrees, a CI clone) never rebuild over each
# other. Concurrent callers wait on a lock, so one build serves them all.
#
# Last line of stdout on success: the absolute path of the tarball.
set -Eeuo pipefail

usage() {
    cat <<'EOF'
Usage: tools/build-stock-image.sh [--print-path] [-h|--help]

Build or reuse the stock Debian 12 guest image (run as root; needs debootstrap
and the Debian mirror, default http://deb.debian.org/debian or $STOCK_IMAGE_MIRROR).

  --print-path  print the tarball path and exit without building or checking
  -h, --help    show this help

Last line on success: the tarball path
(/var/cache/nova-syscontainer/images/debian-12-stock-r<recipe>.tar.gz).
Build log: /var/log/nova-syscontainer/build-stock-image.log.
EOF
}

readonly CACHE_DIR=/var/cache/nova-syscontainer
readonly IMAGE_DIR=$CACHE_DIR/images
readonly DEB_CACHE=$CACHE_DIR/debootstrap-bookworm
readonly LOG_DIR=/var/log/nova-syscontainer
readonly LOG=$LOG_DIR/build-stock-image.log
# One lock for every recipe: builds share the debootstrap cache.
readonly LOCK_FILE=$IMAGE_DIR/.debian-12-stock.lock
# A build takes about 6 min on 2 busy cores; a waiter gives up after this.
readonly LOCK_TIMEOUT=1800
readonly SUITE=bookworm
readonly MIRROR=${STOCK_IMAGE_MIRROR:-http://deb.debian.org/debian}
# Bump when anything below that ends up in the image changes: a cached tarball of
# another version is rebuilt.
readonly RECIPE_VERSION=3
readonly IMAGE=$IMAGE_DIR/debian-12-stock-r$RECIPE_VERSION.tar.gz
# python3-cffi-backend must be named: debootstrap resolves only Depends, and
# without it python3-cryptography (cloud-init -> python3-jwt/oauthlib) stays
# unconfigured and the whole install fails. udev (not in minbase, and a
# package of its own in bookworm) must be there: /sys is writable in an LXD
# container, so systemd-networkd 252 expects udev and, without it, never
# configures a link (it waits for udev to initialise it; then
# systemd-networkd-wait-online blocks cloud-init's network stage for 2 min).
# curl, iputils-ping and sudo are what Tempest's scenario tests run in the
# guest over SSH (tempest.scenario.test_server_basic_ops curls the metadata
# API; the remote client pings, runs "sudo sh -c" and "sudo cat"); with sudo
# installed, cloud-init gives its default user "debian" NOPASSWD sudo
# (/etc/sudoers.d/90-cloud-init-users), as on Debian's cloud images.
readonly PACKAGES=systemd,systemd-sysv,udev,dbus,cloud-init,openssh-server,iproute2,procps,netbase,python3,python3-cffi-backend,curl,iputils-ping,sudo

say() { printf 'build-stock-image: %s\n' "$*" >&2; printf '=== %s %s\n' "$(date '+%F %T')" "$*" >>"$LOG"; }
die() { printf 'build-stock-image: FAILED: %s (log: %s)\n' "$*" "$LOG" >&2; exit 1; }

image_valid() {
    [[ -s $IMAGE && -s $IMAGE.sha256 ]] || return 1
    (cd "$IMAGE_DIR" && sha256sum --status -c "$(basename "$IMAGE").sha256" 2>/dev/null) || return 1
    # metadata.yaml is the first member (--sort=name): stop reading there.
    tar -xzOf "$IMAGE" --occurrence=1 metadata.yaml 2>/dev/null |
        grep -q "^  nova_syscontainer_image_version: \"$RECIPE_VERSION\"\$"
}

WORK=""
cleanup() {
    local root=${WORK:+$WORK/rootfs}
    if [[ -n $root ]]; then
        # Never rm -rf through a mount debootstrap may have left behind.
        local m
        for m in proc sys dev/pts dev; do
            mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
        done
        rm -rf --one-file-system "$WORK"
    fi
}

# configure_rootfs ROOT: what turns a debootstrap tree into a cloud guest.
configure_rootfs() {
    local root=$1
    # Each instance must get its own identities at first boot: systemd writes a
    # machine-id into an empty file, cloud-init (cc_ssh) generates host keys.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
    printf 'debian\n' >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
    # minbase has neither ifupdown nor netplan: cloud-init renders its network
    # configuration (DHCP fallback, or network_data.json of a config drive) for
    # systemd-networkd, which Debian ships disabled.
    chroot "$root" systemctl enable systemd-networkd.service >>"$LOG" 2>&1
    # systemd-networkd-wait-online waits (2 min) for a link even when there is
    # none to configure: a server booted without a port would stall
    # cloud-init's network stage. cloud-init-local writes one .network file per
    # NIC before networkd starts, so no file means nothing to wait for.
    mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
    cat >"$root/etc/systemd/system/systemd-networkd-wait-online.service.d/10-nova-syscontainer.conf" <<'EOF'
# nova-syscontainer stock image: wait only if some link is to be configured.
[Unit]
ConditionPathExistsGlob=/etc/systemd/network/*.network
EOF
    # binfmt_misc cannot be mounted in a container; the unit only fails.
    chroot "$root" systemctl mask systemd-binfmt.service proc-sys-fs-binfmt_misc.automount >>"$LOG" 2>&1
    mkdir -p "$root/etc/cloud/cloud.cfg.d"
    cat >"$root/etc/cloud/cloud.cfg.d/90-nova-syscontainer.cfg" <<'EOF'
# nova-syscontainer stock image (tools/build-stock-image.sh)
# The image has no locales package (minbase): C.UTF-8 is built into libc, and
# cc_locale would only fail trying to generate en_US.UTF-8.
locale: false
# The instance's hostname in /etc/hosts: sudo looks its host up on every
# call, and without it asks DNS, which a project network may not answer.
manage_etc_hosts: true
EOF
    # debootstrap leaves its .debs and apt lists; an image needs neither.
    rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root/var/log/bootstrap.log"
    mkdir -p "$root/var/lib/apt/lists/partial"
    printf 'deb %s %s main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
        "$MIRROR" "$SUITE" "$SUITE" >"$root/etc/apt/sources.list"
}

build() {
    say "building $IMAGE (recipe $RECIPE_VERSION, debootstrap $SUITE from $MIRROR)"
    command -v debootstrap >/dev/null || {
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >>"$LOG" 2>&1 ||
            die "cannot install debootstrap"
    }
    mkdir -p "$DEB_CACHE"
    WORK=$(mktemp -d "$IMAGE_DIR/build-stock.XXXXXX")
    local root=$WORK/rootfs start=$SECONDS
    mkdir "$root"
    # --cache-dir keeps the downloaded .debs: a rebuild after a recipe change
    # downloads only what changed.
    debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$DEB_CACHE" \
        "$SUITE" "$root" "$MIRROR" >>"$LOG" 2>&1 ||
        die "debootstrap $SUITE failed"
    say "debootstrap done in $((SECONDS - start)) s"
    configure_rootfs "$root"
    cat >"$WORK/metadata.yaml" <<EOF
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: Debian 12 bookworm stock cloud guest (nova-syscontainer)
  os: debian
  release: $SUITE
  version: "12"
  nova_syscontainer_image_version: "$RECIPE_VERSION"
EOF
    tar -C "$WORK" --numeric-owner --sort=name --xattrs --xattrs-include='security.capability' \
        -czf "$WORK/image.tar.gz" metadata.yaml rootfs >>"$LOG" 2>&1 || die "tar failed"
    (cd "$WORK" && sha256sum image.tar.gz | sed "s/image.tar.gz/$(basename "$IMAGE")/" >image.sha256)
    # Tarball first, then its checksum: a reader never sees a checksum of
    # another tarball as valid.
    mv "$WORK/image.tar.gz" "$IMAGE"
    mv "$WORK/image.sha256" "$IMAGE.sha256"
    say "built $IMAGE ($(du -m "$IMAGE" | cut -f1) MB) in $((SECONDS - start)) s"
}

# Other recipes' tarballs more than a day old: a checkout still on one of
# them builds it again when it needs it.
prune_other_recipes() {
    find "$IMAGE_DIR" -maxdepth 1 -name 'debian-12-stock*.tar.gz*' \
        ! -name "$(basename "$IMAGE")*" -mtime +0 -print -delete >>"$LOG" 2>&1 || true
}

main() {
    case ${1:-} in
        -h | --help) usage; exit 0 ;;
        --print-path) echo "$IMAGE"; exit 0 ;;
        "") ;;
        *) usage >&2; exit 2 ;;
    esac
    [[ $EUID -eq 0 ]] || die "run as root (debootstrap and chroot)"
    mkdir -p "$IMAGE_DIR" "$LOG_DIR"
    if ! image_valid; then
        exec 9>"$LOCK_FILE"
        flock -w "$LOCK_TIMEOUT" 9 || die "another build holds $LOCK_FILE for over $LOCK_TIMEOUT s"
        trap cleanup EXIT
        trap 'exit 130' INT TERM
        # Somebody else may have built it while we waited.
        image_valid || build
        image_valid || die "the freshly built $IMAGE does not validate"
        prune_other_recipes
    fi
    echo "$IMAGE"
}

main "$@"
