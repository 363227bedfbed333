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
"""Concurrent API clients, as Tempest's workers are (run by the smoke test).

Run with the cloud's Python: ``python api_clients.py WORKERS ROUNDS``,
credentials in the environment (OS_CLOUD or OS_AUTH_URL and the rest).
Every worker keeps one keystoneauth session (its connections
are reused, as Tempest's and the SDK's are) and, ROUNDS times, gets a new
token from Keystone, then lists servers (Nova), images (Glance), networks
(Neutron) and Keystone's projects of its user. Prints one JSON object:
the requests made and every failure's message.
"""

import sys

import openstack

import workers as workers_lib


def worker(rounds):
    conn = openstack.connect()
    done, failures = 0, []
    for _ in range(rounds):
        calls = (
            lambda: conn.session.get_token(),
            lambda: list(conn.compute.servers()),
            lambda: list(conn.image.images()),
            lambda: list(conn.network.networks()),
            lambda: conn.session.get('/auth/projects',
                                     endpoint_filter={'service_type':
                                                      'identity'}),
        )
        # A new token every round: Keystone serves a POST each time.
        conn.session.invalidate()
        for call in calls:
            try:
                call()
                done += 1
            except Exception as e:  # every failure is reported
                failures.append('%s: %s' % (type(e).__name__, e))
    return done, failures


def main():
    workers, rounds = int(sys.argv[1]), int(sys.argv[2])
    workers_lib.report(lambda _: worker(rounds), workers)


if __name__ == '__main__':
    main()
