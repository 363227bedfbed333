#!/bin/bash
# syscontainer-image.sh - how an image for the nova-syscontainer driver is
# registered in Glance. Sourced (never run) by devstack/plugin.sh and
# usable by tools/cloud.sh, so that both register images the same way.
#
#   SYSCONTAINER_IMAGE_CREATE_ARGS
#       Arguments for "openstack image create" (add --file and a name):
#       an LXD unified image tarball is container_format bare, disk_format
#       raw (nova_syscontainer/virt/image.py also accepts disk_format
#       root-tar for a distribution's rootfs tarball: doc/source/guests.rst),
#       with the properties Nova's ImagePropertiesFilter matches against what the
#       driver reports (architecture of this host, hypervisor_type lxc,
#       vm_mode exe), as the functional tests' images carry them.
#   SYSCONTAINER_TEST_IMAGE_FILE
#       The busybox test image tools/setup-host.sh builds.

# shellcheck disable=SC2034  # used by the scripts that source this file
SYSCONTAINER_IMAGE_CREATE_ARGS=(
    --container-format bare --disk-format raw
    --property "architecture=$(uname -m)"
    --property hypervisor_type=lxc
    --property vm_mode=exe
)
# shellcheck disable=SC2034
SYSCONTAINER_TEST_IMAGE_FILE=/var/cache/nova-syscontainer/images/busybox-counter.tar.gz
