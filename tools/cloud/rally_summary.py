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
"""One line per Rally workload from a ``rally task report --json`` file.

Prints the scenario, its iterations and failures, the durations of its
iterations (min, median, 90th percentile, max) and whether its SLA passed;
exits 1 when a workload failed its SLA or had a failed iteration.
Standard library only (it runs in Rally's virtualenv).
"""

import json
import statistics
import sys


def workloads(report):
    for task in report.get('tasks', []):
        for subtask in task.get('subtasks', []):
            for workload in subtask.get('workloads', []):
                yield workload


def p90(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def main(path):
    with open(path) as f:
        report = json.load(f)
    ok = True
    seen = 0
    for workload in workloads(report):
        seen += 1
        name = workload.get('name') or next(iter(workload.get('scenario',
                                                              {})), '?')
        data = workload.get('data', [])
        failed = [it for it in data if it.get('error')]
        durations = [it['duration'] for it in data if not it.get('error')]
        sla = workload.get('pass_sla', False)
        ok = ok and sla and not failed
        figures = ('min %.1f s, median %.1f s, p90 %.1f s, max %.1f s' % (
            min(durations), statistics.median(durations), p90(durations),
            max(durations)) if durations else 'no successful iteration')
        print('rally: %s: %d iterations, %d failed; %s; SLA %s' % (
            name, len(data), len(failed), figures,
            'passed' if sla else 'FAILED'))
        for it in failed[:3]:
            print('rally:   error: %s' % ' '.join(it['error'][:2])[:300])
    if not seen:
        print('rally: the report has no workload')
        return 1
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
