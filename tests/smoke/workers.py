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
"""Concurrent workers of the smoke test's helper scripts.

``port_writes.py`` and ``api_clients.py`` run as scripts with the cloud's
Python (this directory is first on their path): each gives ``report`` a
function of the worker's index returning (requests done, failure
messages), and gets one JSON object printed: the requests made and every
failure's message.
"""

import concurrent.futures
import json


def report(worker, workers):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(worker, range(workers)))
    print(json.dumps({
        'requests': sum(done for done, _ in results),
        'failures': [f for _, failures in results for f in failures],
    }))
