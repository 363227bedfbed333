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
"""Register the all-in-one cloud's services in Keystone (idempotent).

Run by tools/cloud.sh with the cloud's virtualenv, after keystone-manage
bootstrap made the admin user and the identity endpoints:

    NSC_ADMIN_PASSWORD=... NSC_SERVICE_PASSWORD=... \
        python register.py AUTH_URL REGION TYPE:NAME:URL ...

makes the project "service", one user per service NAME with the admin and
service roles there (password NSC_SERVICE_PASSWORD), and for each service its
catalog entry with public and internal endpoints at URL. What exists is
kept (passwords, the admin's too, are set again, which rehashes them at
Keystone's current cost), so a second run changes nothing else. The
passwords come from the environment, never the command line (readable by
any local user in /proc/<pid>/cmdline).
"""

import os
import sys

import openstack

INTERFACES = ('public', 'internal')


def main(argv):
    auth_url, region = argv[:2]
    admin_password = os.environ['NSC_ADMIN_PASSWORD']
    service_password = os.environ['NSC_SERVICE_PASSWORD']
    conn = openstack.connect(
        auth_url=auth_url, username='admin', password=admin_password,
        project_name='admin', user_domain_name='Default',
        project_domain_name='Default', region_name=region,
        identity_api_version='3')
    ident = conn.identity
    project = (ident.find_project('service', domain_id='default')
               or ident.create_project(name='service', domain_id='default',
                                       description='Service users'))
    admin = ident.find_role('admin')
    # Tokens that services send on behalf of users (X-Service-Token) must
    # carry this role ([keystone_authtoken] service_token_roles), or
    # keystonemiddleware rejects the request with 401.
    service_role = (ident.find_role('service')
                    or ident.create_role(name='service'))
    for spec in argv[2:]:
        stype, name, url = spec.split(':', 2)
        user = ident.find_user(name, domain_id='default')
        if user is None:
            user = ident.create_user(name=name, domain_id='default',
                                     password=service_password)
        else:
            ident.update_user(user, password=service_password)
        ident.assign_project_role_to_user(project, user, admin)
        ident.assign_project_role_to_user(project, user, service_role)

        services = [s for s in ident.services() if s.type == stype]
        service = services[0] if services else ident.create_service(
            name=name, type=stype, enabled=True)
        have = {e.interface: e for e in ident.endpoints(
            service_id=service.id) if e.region_id == region}
        for interface in INTERFACES:
            endpoint = have.get(interface)
            if endpoint is None:
                ident.create_endpoint(service_id=service.id, url=url,
                                      interface=interface, region_id=region)
            elif endpoint.url != url:
                ident.update_endpoint(endpoint, url=url)
    # keystone-manage bootstrap keeps an existing admin's password hash,
    # so set it again: Keystone rehashes it at the current
    # [identity] password_hash_rounds (a cloud made before that was 4
    # kept 12 rounds for admin, whose tokens make Tempest's dynamic
    # credentials). Last, as it revokes this connection's own token.
    ident.update_user(ident.find_user('admin', domain_id='default'),
                      password=admin_password)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
