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
"""The README and the docs name only files and tests that exist.

Figures and stories live in ``doc/source``; what keeps them honest is this
test: every repository path they name (``tools/...``,
``nova_syscontainer/...``, ``tests/...``, ``doc/source/...``) must exist,
and every test they name as
``test_module.Class.test_method`` (optionally ``tests.<suite>.`` first) must
be a method of that class in one of the test suites. Tests are found by
reading the source (``ast``), so nothing is imported.
"""

import ast
import functools
import glob
import os
import re

import testtools

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
SUITES = ('unit', 'functional', 'smoke', 'bench')

#: Repository paths as the docs write them. A trailing placeholder such as
#: ``<service>`` or a glob is not a path.
PATH = re.compile(
    r'(?<![\w./-])((?:tools|nova_syscontainer|tests|doc/source|devstack|etc|'
    r'releasenotes)/[\w./-]*[\w/])')
TEST_ID = re.compile(
    r'(?<![\w.])(?:tests\.(?:%s)\.)?(test_\w+)\.([A-Z]\w+)\.(test_\w+)'
    % '|'.join(SUITES))


def documents():
    yield os.path.join(REPO, 'README.md')
    for path in sorted(glob.glob(os.path.join(REPO, 'doc', 'source',
                                              '*.rst'))):
        yield path


@functools.lru_cache(maxsize=None)
def test_classes(module):
    """{class name: ({method names}, (base names))} of ``module``.py.

    Read once from every suite that has such a module.
    """
    found = {}
    for suite in SUITES:
        path = os.path.join(REPO, 'tests', suite, module + '.py')
        if not os.path.exists(path):
            continue
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                methods, bases = found.setdefault(node.name, (set(), []))
                methods.update(item.name for item in node.body
                               if isinstance(item, (ast.FunctionDef,
                                                    ast.AsyncFunctionDef)))
                bases.extend(b.id for b in node.bases
                             if isinstance(b, ast.Name))
    return found


def inherited(module, cls, method):
    """Whether ``cls`` of ``module`` or a base named in it has ``method``."""
    classes = test_classes(module)
    seen = set()
    todo = [cls]
    while todo:
        name = todo.pop()
        if name in seen or name not in classes:
            continue
        seen.add(name)
        methods, bases = classes[name]
        if method in methods:
            return True
        todo.extend(bases)
    return False


def named_paths(text):
    for match in PATH.finditer(text):
        path = match.group(1).rstrip('.')
        if any(c in path for c in '<*{'):
            continue
        yield path


class DocNamesTest(testtools.TestCase):

    def test_every_named_path_exists(self):
        missing = []
        for doc in documents():
            with open(doc) as f:
                text = f.read()
            for path in named_paths(text):
                if not os.path.exists(os.path.join(REPO, path)):
                    missing.append('%s: %s' % (os.path.relpath(doc, REPO),
                                               path))
        self.assertEqual([], missing)

    def test_every_named_test_exists(self):
        missing = []
        for doc in documents():
            with open(doc) as f:
                text = f.read()
            for module, cls, method in TEST_ID.findall(text):
                if not inherited(module, cls, method):
                    missing.append('%s: %s.%s.%s' % (
                        os.path.relpath(doc, REPO), module, cls, method))
        self.assertEqual([], missing)

    def test_the_checks_see_a_wrong_name(self):
        self.assertEqual(['tools/no-such-script.sh'],
                         list(named_paths('run ``tools/no-such-script.sh``')))
        self.assertFalse(inherited('test_doc_names', 'DocNamesTest',
                                   'test_no_such_method'))
        self.assertTrue(inherited('test_doc_names', 'DocNamesTest',
                                  'test_every_named_test_exists'))
