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
"""CRIU checkpoint/restore: what a container needs to be moved in time.

Suspend/resume checkpoints a container to disk on one daemon; live
migration (planned) checkpoints it on one daemon and restores it on
another. Both need the container to have been created with the raw.lxc
lines of ``[syscontainer] checkpoint_raw_lxc``. Pure: no I/O.
"""


def _raw_lxc_lines(record):
    raw = record.get('config', {}).get('raw.lxc', '')
    return {' '.join(line.split()) for line in raw.splitlines()
            if line.strip()}


def missing_checkpoint_config(record, required_lines):
    """The required raw.lxc lines the container's config lacks.

    Lines are compared with white space folded, so ``a=1`` and ``a = 1``
    are different but ``a  = 1`` and ``a = 1`` are not.
    """
    have = _raw_lxc_lines(record)
    return [line for line in required_lines
            if ' '.join(line.split()) not in have]
