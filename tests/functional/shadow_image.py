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
"""The busybox test image plus the host's real shadow ``chpasswd``.

Busybox (Debian's static and dynamic builds alike) has no ``chpasswd``
applet. A stock Debian guest changes passwords with shadow's
``/usr/sbin/chpasswd`` through PAM's ``pam_unix``; this image carries the
host's very binary, the libraries it and the PAM modules load, the PAM
configuration of Debian's ``chpasswd`` service and an ``/etc/shadow``,
so that the driver's password change runs the same code as in a stock
guest, in a 3 MB image.
"""

import gzip
import io
import os
import subprocess
import tarfile

CHPASSWD = '/usr/sbin/chpasswd'
PAM_DIR = '/lib/x86_64-linux-gnu/security'
PAM_MODULES = ('pam_unix.so', 'pam_deny.so', 'pam_permit.so')
#: Not /etc/pam.d/other: it includes common-auth and more, which this
#: image lacks, and libpam then fails every service (pam_start 26).
PAM_CONFIG = ('/etc/pam.d/chpasswd', '/etc/pam.d/common-password',
              '/etc/login.defs')
#: A user's /etc/shadow entry before any change: a locked password.
SHADOW_ENTRY = '%s:*:20000:0:99999:7:::\n'


def _libraries(path):
    """Absolute paths of the shared libraries ``path`` loads (ldd)."""
    out = subprocess.run(['ldd', path], check=True, capture_output=True,
                         text=True).stdout
    libs = []
    for line in out.splitlines():
        words = line.split()
        if '=>' in words and len(words) > words.index('=>') + 1:
            target = words[words.index('=>') + 1]
            if target.startswith('/'):
                libs.append(target)
        elif words and words[0].startswith('/'):
            libs.append(words[0])
    return libs


def host_files():
    """The host files the image gets: chpasswd, PAM, their libraries."""
    binaries = [CHPASSWD] + [os.path.join(PAM_DIR, m) for m in PAM_MODULES]
    files = set(binaries) | set(PAM_CONFIG)
    for path in binaries:
        files.update(_libraries(path))
    return sorted(files)


def _file(name, text, mode=0o644):
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, io.BytesIO(data)


def with_chpasswd(image, users=('root',)):
    """A unified image tarball (bytes): ``image`` plus the files above.

    Every one of ``users`` gets a locked password in /etc/shadow; those
    other than root are added to /etc/passwd (uid 1000 on).
    """
    src = tarfile.open(fileobj=io.BytesIO(image), mode='r:gz')
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode='w') as dst:
        for member in src.getmembers():
            if member.name == 'rootfs/etc/passwd':
                passwd = src.extractfile(member).read().decode()
                passwd += ''.join(
                    '%s:x:%d:%d::/tmp:/bin/sh\n' % (user, uid, uid)
                    for uid, user in enumerate(
                        [u for u in users if u != 'root'], start=1000))
                dst.addfile(*_file(member.name, passwd))
            elif member.isfile():
                dst.addfile(member, src.extractfile(member))
            else:
                dst.addfile(member)
        for path in host_files():
            # Follow links: the image gets the real file at each path.
            dst.add(os.path.realpath(path), arcname='rootfs' + path)
        dst.addfile(*_file('rootfs/etc/shadow',
                           ''.join(SHADOW_ENTRY % user for user in users),
                           mode=0o640))
    return buf.getvalue()
