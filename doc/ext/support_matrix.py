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
"""Sphinx directive that renders doc/source/support-matrix.ini.

``.. support-matrix:: support-matrix.ini`` renders a summary table (feature,
Nova's status, this driver's support, the tests that prove it) and then one
entry per feature with its notes. A matrix that breaks the rules of
:mod:`support_matrix_data` (a claim without a test, say) fails the build.
"""

import os
import re

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.parsers.rst import directives

import support_matrix_data as data


def _target_id(key):
    return 'feature-' + re.sub(r'[^a-z0-9]+', '-', key.lower())


def _test_list(tests):
    if not tests:
        return nodes.paragraph(text='-')
    items = nodes.bullet_list()
    for test in tests:
        para = nodes.paragraph()
        para += nodes.literal(text='tests.functional.' + test)
        items += nodes.list_item('', para)
    return items


class SupportMatrixDirective(Directive):
    required_arguments = 1
    option_spec = {'title': directives.unchanged}

    def run(self):
        env = self.state.document.settings.env
        rel, path = env.relfn2path(self.arguments[0])
        env.note_dependency(rel)
        try:
            driver_title, features = data.load(path)
        except (OSError, data.MatrixError) as e:
            raise self.error('%s: %s' % (os.path.basename(path), e))
        intro = nodes.paragraph(
            text='Support levels are those of the %s driver.' % driver_title)
        return [intro, self._summary(features), self._details(features)]

    def _summary(self, features):
        table = nodes.table(classes=['support-matrix'])
        group = nodes.tgroup(cols=4)
        table += group
        for width in (40, 12, 12, 36):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += self._row(['Feature', 'Status', 'Support', 'Proved by'])
        body = nodes.tbody()
        group += body
        for feature in features:
            ref = nodes.reference('', feature.title, internal=True,
                                  refid=_target_id(feature.key))
            title = nodes.paragraph()
            title += ref
            body += self._row([title, feature.status, feature.level,
                               _test_list(feature.tests)])
        return table

    @staticmethod
    def _row(cells):
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            if isinstance(cell, str):
                cell = nodes.paragraph(text=cell)
            entry += cell
            row += entry
        return row

    def _details(self, features):
        container = nodes.container(classes=['support-matrix-details'])
        for feature in features:
            container += nodes.target('', '', ids=[_target_id(feature.key)])
            container += nodes.rubric(text=feature.title)
            fields = nodes.field_list()
            for name, value in (('Key', feature.key),
                                ('Status', feature.status),
                                ('Support', feature.level),
                                ('Notes', feature.notes),
                                ('CLI', feature.cli),
                                ('Driver notes', feature.driver_notes)):
                if value:
                    fields += self._field(name, nodes.paragraph(text=value))
            if feature.tests:
                fields += self._field('Proved by', _test_list(feature.tests))
            container += fields
        return container

    @staticmethod
    def _field(name, body):
        field = nodes.field()
        field += nodes.field_name(text=name)
        field_body = nodes.field_body()
        field_body += body
        field += field_body
        return field


def setup(app):
    app.add_directive('support-matrix', SupportMatrixDirective)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
