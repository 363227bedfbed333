#!/bin/bash
# lib-demo.sh - the end of the main command: the ordinary openstack CLI
# boots a container server and we show it from Nova, the daemon and the
# kernel.
demo() { :; }
