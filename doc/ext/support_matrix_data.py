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
"""Read doc/source/support-matrix.ini (Nova's format, one driver).

Pure: configparser only, so that the Sphinx extension that renders the
matrix and the unit test that checks every claim read it the same way.
"""

import collections
import configparser

DRIVER = 'syscontainer'
#: Support levels, as in Nova's matrix.
LEVELS = ('complete', 'partial', 'unknown', 'missing')
#: Levels that claim the feature works: each needs a proving test.
CLAIMED = ('complete', 'partial')
#: Section prefixes of features (the rest, [driver.*], names drivers).
FEATURE_PREFIXES = ('operation.', 'guest.', 'console.', 'storage.',
                    'networking.')

Feature = collections.namedtuple(
    'Feature', 'key title status notes cli level driver_notes tests')


class MatrixError(ValueError):
    """The matrix file breaks one of its rules."""


def load(path):
    """(driver title, [Feature...]) from the matrix at ``path``.

    Raises MatrixError when a feature lacks a title, status or support
    level, has an unknown level, claims support without naming a test,
    names tests for a feature it does not claim, or is partial without
    driver notes saying why.
    """
    parser = configparser.ConfigParser(interpolation=None)
    with open(path) as f:
        parser.read_file(f)
    driver_section = 'driver.' + DRIVER
    if not parser.has_section(driver_section):
        raise MatrixError('no [%s] section' % driver_section)
    features = []
    for key in parser.sections():
        if not key.startswith(FEATURE_PREFIXES):
            continue
        sec = parser[key]

        def get(option, sec=sec):
            return ' '.join(sec.get(option, '').split())

        for option in ('title', 'status', 'driver.' + DRIVER):
            if not get(option):
                raise MatrixError('[%s] has no %s' % (key, option))
        level = get('driver.' + DRIVER)
        if level not in LEVELS:
            raise MatrixError('[%s] support level %r is not one of %s'
                              % (key, level, ', '.join(LEVELS)))
        tests = sec.get('tests.' + DRIVER, '').split()
        if level in CLAIMED and not tests:
            raise MatrixError('[%s] claims %s support but names no test'
                              % (key, level))
        if level not in CLAIMED and tests:
            raise MatrixError('[%s] names tests but is %s' % (key, level))
        notes = get('driver-notes.' + DRIVER)
        if level in ('partial', 'unknown') and not notes:
            raise MatrixError('[%s] is %s without driver notes saying why'
                              % (key, level))
        features.append(Feature(
            key=key, title=get('title'), status=get('status'),
            notes=get('notes'), cli=get('cli'), level=level,
            driver_notes=notes, tests=tests))
    if not features:
        raise MatrixError('no features')
    return parser[driver_section].get('title', DRIVER), features
