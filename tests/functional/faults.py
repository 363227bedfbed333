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
"""Helpers of the fault suite: hostile images and a leftovers census."""

import gzip
import io
import subprocess
import tarfile
import uuid


def _copy(src, dst, skip=()):
    for member in src:
        if member.name in skip:
            continue
        dst.addfile(member, src.extractfile(member)
                    if member.isfile() else None)


def with_members(data, *members, metadata=None):
    """The test image (gzip tarball) with crafted members appended.

    Each member is (TarInfo, bytes or None). ``metadata`` replaces
    metadata.yaml. A tag file makes every result new to the daemon.
    """
    out = io.BytesIO()
    skip = ('metadata.yaml',) if metadata is not None else ()
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as src, \
            tarfile.open(fileobj=out, mode='w',
                         format=tarfile.GNU_FORMAT) as dst:
        _copy(src, dst, skip)
        if metadata is not None:
            info = tarfile.TarInfo('metadata.yaml')
            info.size = len(metadata)
            dst.addfile(info, io.BytesIO(metadata))
        tag = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo('rootfs/etc/variant')
        info.size = len(tag)
        dst.addfile(info, io.BytesIO(tag))
        for info, content in members:
            dst.addfile(info, io.BytesIO(content) if content else None)
    return gzip.compress(out.getvalue(), compresslevel=1)


def tar_member(name, content=b'x', **attrs):
    info = tarfile.TarInfo(name)
    for key, value in attrs.items():
        setattr(info, key, value)
    if info.isreg():
        info.size = len(content)
    else:
        content = None
    return info, content


def bomb(data, declared=1 << 40):
    """The test image followed by a member claiming ``declared`` bytes.

    Only a MiB of it follows, compressed to about a KiB: a scan that
    trusted the stream would read a TiB.
    """
    with gzip.open(io.BytesIO(data)) as f:
        raw = f.read()
    raw = raw.rstrip(b'\0')
    raw += b'\0' * (-len(raw) % 512)
    info = tarfile.TarInfo('rootfs/zero')
    info.size = declared
    raw += info.tobuf(format=tarfile.GNU_FORMAT) + b'\0' * (1 << 20)
    return gzip.compress(raw, compresslevel=6)


def hostile_set(data):
    """{name: (image bytes, the fault's expected words, glance kwargs)}."""
    metadata = (b'architecture: x86_64\ncreation_date: 1\nproperties: {}\n'
                b'templates:\n  /etc/hosts:\n    when: [create]\n'
                b'    template: hosts.tpl\n')
    return {
        'bomb': (bomb(data), 'unpacked size exceeds', {}),
        'traversal': (with_members(data, tar_member(
            'rootfs/../../../etc/cron.d/evil')), 'leaves the image', {}),
        'absolute': (with_members(data, tar_member('/etc/cron.d/evil')),
                     'leaves the image', {}),
        'device': (with_members(data, tar_member(
            'rootfs/dev/kmem', type=tarfile.CHRTYPE, devmajor=1,
            devminor=2)), 'device node', {}),
        'symlink-escape': (with_members(
            data, tar_member('rootfs/escape', type=tarfile.SYMTYPE,
                             linkname='/'),
            tar_member('rootfs/escape/etc/shadow')),
            'through the symbolic link', {}),
        'templates': (with_members(data, tar_member(
            'templates/hosts.tpl', b'{{ container.name }}'),
            metadata=metadata), 'metadata templates', {}),
        # The image that crashed LXD 5.0.2's import (nil properties map).
        'no-properties': (with_members(data, metadata=(
            b'architecture: x86_64\ncreation_date: 1\n')),
            'no "properties" mapping', {}),
        'setuid': (with_members(data, tar_member(
            'rootfs/bin/rootshell', mode=0o4755)), 'setuid', {}),
        'wrong-hash': (with_members(data), "hash does not match Glance's",
                       {'glance_hash': '0' * 128}),
    }


class Census(object):
    """What the host holds that a failed operation could leave behind."""

    def __init__(self, daemon, prefix):
        self.daemon = daemon
        self.prefix = prefix
        self.before = self.take()

    def take(self):
        links = subprocess.run(['ip', '-o', 'link', 'show'],
                               capture_output=True, text=True).stdout
        qdiscs = subprocess.run(['tc', 'qdisc', 'show'],
                                capture_output=True, text=True).stdout
        return {
            'containers': {n for n in self.daemon.names()
                           if n.startswith(self.prefix)},
            'images': {img['fingerprint'] for img in self.daemon.images()},
            'links': {line.split(':')[1].strip().split('@')[0]
                      for line in links.splitlines() if ':' in line},
            'qdiscs': {' '.join(line.split()[:5])
                       for line in qdiscs.splitlines() if line.strip()},
        }

    def left(self, allowed_images=()):
        """{kind: sorted names} new since the census began."""
        now = self.take()
        found = {kind: sorted(now[kind] - self.before[kind])
                 for kind in now}
        found['images'] = [fp for fp in found['images']
                           if fp not in set(allowed_images)]
        return {kind: names for kind, names in found.items() if names}


class ComputeKilled(BaseException):
    """nova-compute's death, simulated in the thread doing the operation.

    Nova's functional framework runs every service in this one process, so
    nova-compute cannot be killed for real. Raised in the compute's thread
    at a chosen point, this BaseException escapes every ``except
    Exception`` of Nova's manager and of the driver, so none of their
    error handling runs: no rollback, no driver cleanup, no ERROR state,
    no fault, and the thread ends. Together with Nova's
    ``restart_compute_service`` (a new manager and driver; init_host runs
    again) it stands for a process killed and restarted.

    What it does not simulate: ``finally`` blocks and context managers
    still run in the dying thread (Nova's instance lock and build
    semaphore are released, the resource claim is aborted, the action
    event is finished with this error), which a killed process would not
    do; the other threads of the process (periodic tasks, the RPC server)
    live on until the restart; and the daemon keeps its connection to the
    old driver's client until the restart makes a new one.
    """


def die_after(obj, attr, died):
    """Make ``obj.<attr>`` run, then kill the compute's thread.

    ``died`` (a threading.Event) is set just before ComputeKilled is
    raised. Returns the original, to put back.
    """
    original = getattr(obj, attr)

    def run_then_die(*args, **kwargs):
        original(*args, **kwargs)
        died.set()
        raise ComputeKilled('nova-compute killed after %s' % attr)

    setattr(obj, attr, run_then_die)
    return original
