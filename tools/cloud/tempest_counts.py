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
"""The counts of a Tempest run (run by tools/cloud.sh tempest).

Run with Tempest's Python: ``python tempest_counts.py SUBUNIT LISTED
EXCLUDE``. SUBUNIT is the run's subunit v2 stream, LISTED the test ids
the selection listed before the exclusions, EXCLUDE the exclusion list
(one regex a line, "# reason" after it, as stestr reads it). Prints one
line: passed, skipped, failed and excluded counts, then every failed
test id. A class whose set-up failed counts as one failure. SUBUNIT may be
the stream of a run still going (stestr's temporary file in its
repository): tests not finished yet are not counted.
"""

import re
import sys

import subunit
import testtools


def outcomes(path):
    results = {}

    def record(test):
        # 'inprogress': a test a stopped run never finished (the stream
        # of a run still going, or cut off): neither passed nor failed.
        if test['status'] in ('exists', 'inprogress', None):
            return
        results[test['id']] = test['status']

    with open(path, 'rb') as f:
        # A stream cut off mid-packet (a run still going, or stopped) ends
        # in bytes that are no packet: read as attached text, not an error.
        stream = subunit.ByteStreamToStreamResult(
            f, non_subunit_name='stdout')
        result = testtools.StreamToDict(record)
        result.startTestRun()
        try:
            stream.run(result)
        finally:
            result.stopTestRun()
    return results


def excluded(listed_path, exclude_path):
    patterns = []
    with open(exclude_path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                patterns.append(re.compile(line))
    with open(listed_path) as f:
        ids = [line.strip() for line in f
               if line.startswith('tempest.') or line.startswith('setUp')]
    return [i for i in ids if any(p.search(i) for p in patterns)]


def main():
    subunit_path, listed_path, exclude_path = sys.argv[1:4]
    results = outcomes(subunit_path)
    passed = sum(1 for s in results.values() if s in ('success', 'xfail'))
    skipped = sum(1 for s in results.values() if s == 'skip')
    failed = sorted(i for i, s in results.items()
                    if s not in ('success', 'xfail', 'skip'))
    out = '%d passed, %d skipped, %d failed, %d excluded' % (
        passed, skipped, len(failed),
        len(excluded(listed_path, exclude_path)))
    for test_id in failed:
        out += '\n  FAILED %s' % test_id
    print(out)


if __name__ == '__main__':
    main()
