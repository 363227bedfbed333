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
"""The driver's own small files under ``state_path``: written whole or not.

The pending-cleanups record and the pinned certificates of migration
peers are read back after a crash or by another thread of nova-compute.
A write goes to a private temporary file in the same directory, is synced
and then renamed over the old one (and the directory synced), so a reader
sees the old content or the new one, never a torn file; :func:`lock`
serialises a read-modify-write across threads and processes.
"""

import os
import tempfile

from oslo_concurrency import lockutils
from oslo_serialization import jsonutils


def lock(path):
    """An inter-process lock guarding ``path`` (a context manager)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return lockutils.lock(os.path.basename(path), external=True,
                          lock_path=os.path.dirname(path))


def read_json(path):
    """The JSON object in ``path``; empty when it is missing or unreadable."""
    try:
        with open(path) as f:
            return jsonutils.loads(f.read())
    except (OSError, ValueError):
        return {}


def write_atomic(path, text, mode=0o600):
    """Replace ``path`` by ``text`` in one step that survives a crash."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory,
                               prefix='.%s.' % os.path.basename(path))
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
