# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Concurrent port writes through Neutron's API (run by the smoke test).

Run with the cloud's Python (openstacksdk): ``python port_writes.py
NETWORK WORKERS ROUNDS``. Every worker, with a connection of its own,
creates a port on NETWORK, updates it and deletes it, ROUNDS times. Prints
one JSON object (workers.py): the requests made and every failure's
message.
"""

import sys

import openstack

import workers as workers_lib


def worker(network, rounds, index):
    conn = openstack.connect(cloud='syscontainer')
    done, failures = 0, []
    for r in range(rounds):
        try:
            port = conn.network.create_port(
                network_id=network, name='nsc-writes-%d-%d' % (index, r))
            done += 1
            conn.network.update_port(port, description='round %d' % r)
            done += 1
            conn.network.delete_port(port)
            done += 1
        except Exception as e:  # every failure is reported, none is fatal
            failures.append('%s: %s' % (type(e).__name__, e))
    return done, failures


def main():
    network, workers, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    workers_lib.report(lambda i: worker(network, rounds, i), workers)


if __name__ == '__main__':
    main()
