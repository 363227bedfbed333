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
"""Neutron's own API application, with its database mappers configured.

The all-in-one cloud runs only Neutron's API (no agents, no RPC workers).
There, Neutron 29's get_ports reads ``Port.port_forwardings``, a backref
that SQLAlchemy adds only when the mappers are configured; a process whose
first request lists ports (Nova asks for its servers' security groups that
way) fails with AttributeError until another query configures them
(measured: GET /v2.0/ports 500 first, 200 after GET /v2.0/networks).
Configuring them at start-up, after the plugins loaded their models, makes
the first request work too.
"""

from neutron.wsgi.api import application  # noqa: F401
from sqlalchemy import orm

orm.configure_mappers()
