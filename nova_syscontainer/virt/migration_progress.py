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
"""Progress of a live move, in the fields Nova's migration record has.

LXD 5.0.2 reports almost nothing while it moves a container: the source
operation's metadata holds only the websocket secrets, and the target's
``fs_progress`` (``"<name>: 4B (2B/s)"``) counts only the root-filesystem
rsync. Most of a live move is CRIU: it writes the processes' memory
(including tmpfs contents) into an images directory on the source host,
which LXD then sends to the target. So the figures are:

* ``memory_total``: the container's memory use when the move started (the
  daemon's ``state.memory.usage``), raised to the size of the checkpoint
  if that grows bigger;
* ``memory_processed``: bytes of the CRIU checkpoint written so far. The
  images directory is found through the ``criu dump`` process that traces
  the container's init (its ``-D``/``--images-dir`` argument), so this
  needs the source daemon on this host (a unix-socket endpoint), as the
  release of a stuck dump does; a remote source reports 0;
* ``disk_*`` stay empty: the only disk figure LXD 5.0.2 gives is the
  target's ``fs_progress`` of the first rootfs rsync, which stayed at a few
  bytes in every move measured here, and polling the target operation
  during the move is not free (see :data:`INTERVAL`).

Once the checkpoint is written, the rest of the move (sending it,
restoring on the target) shows as 100 % until Nova marks it completed.
"""

import os
import threading

from oslo_log import log as logging

from nova_syscontainer import exception
from nova_syscontainer.virt import criu_dump

LOG = logging.getLogger(__name__)

#: Seconds between two samples. Each sample reads one directory and, when
#: the figures changed, saves the migration and the instance. A move is
#: CPU-bound on the source while CRIU dumps (gzip of tmpfs contents), and
#: sampling every second measurably lengthened a 256 MiB move on a
#: two-core host; libvirt's driver saves its figures every 5 s.
INTERVAL = 3.0


def images_dir_of(argv):
    """The ``-D``/``--images-dir`` argument of a criu command line."""
    for i, arg in enumerate(argv):
        if arg in ('-D', '--images-dir') and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith('--images-dir='):
            return arg.split('=', 1)[1]
    return None


def tree_bytes(path):
    """Total size of the files below ``path`` (0 if it is gone)."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += tree_bytes(entry.path)
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def checkpoint_bytes(init_pid):
    """Bytes the CRIU dump tracing ``init_pid`` has written, or None."""
    dump = criu_dump.dumping(init_pid)
    if dump is None:
        return None
    criu, argv = dump
    directory = images_dir_of(argv)
    if not directory:
        return None
    # Through the dump's own root, whatever mount namespace it runs in.
    return tree_bytes('/proc/%d/root%s' % (criu, directory))


def figures(memory_start, dumped):
    """Nova's migration fields and instance.progress (pure).

    :param memory_start: the container's memory use at the start, or None.
    :param dumped: the largest checkpoint size seen so far, or None.
    A figure that is 0 or unknown is None (Nova's API schema wants null
    or at least 1); the disk figures always are (see the module's notes).
    """
    dumped = dumped or 0
    total = max(memory_start or 0, dumped) or None
    fields = {
        'memory_total': total,
        'memory_processed': dumped,
        'memory_remaining': (total - dumped) if total else None,
        'disk_total': None,
        'disk_processed': None,
        'disk_remaining': None,
    }
    progress = int(100 * dumped / total) if total else 0
    # Nova's API schema takes these figures as null or at least 1.
    return {key: value or None for key, value in fields.items()}, progress


class Monitor(object):
    """Samples a running move every INTERVAL seconds; reports changes.

    ``report(fields, progress)`` is called from the monitor's thread with
    the figures of :func:`figures` whenever they change. :meth:`stop`
    ends the thread (bounded wait) before the caller goes on.
    """

    def __init__(self, source, name, report, interval=INTERVAL):
        self.source = source
        self.name = name
        self.report = report
        self.interval = interval
        self._done = threading.Event()
        self._thread = None
        self._dumped = None
        self._last = None
        self._memory_start = None
        self._init_pid = None

    def start(self):
        try:
            state = self.source.get_state(self.name)
        except (exception.DaemonError, exception.DaemonUnavailable) as e:
            LOG.debug('No progress for %s: %s', self.name, e)
            return
        self._memory_start = (state.get('memory') or {}).get('usage')
        if self.source.endpoint.startswith('/'):
            self._init_pid = state.get('pid')
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self):
        if self._init_pid:
            dumped = checkpoint_bytes(self._init_pid)
            if dumped is not None:
                self._dumped = max(self._dumped or 0, dumped)
        return figures(self._memory_start, self._dumped)

    def _run(self):
        while not self._done.wait(self.interval):
            try:
                current = self.sample()
            except Exception as e:
                # Progress is only informative: never fail the move.
                LOG.debug('Progress of %s not sampled: %s', self.name, e)
                continue
            if current != self._last:
                self._last = current
                try:
                    self.report(*current)
                except Exception as e:
                    LOG.debug('Progress of %s not reported: %s',
                              self.name, e)

    def stop(self, timeout=10):
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout)
