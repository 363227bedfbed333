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
"""Horizon in a real browser against the all-in-one cloud.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, installed
here when missing) driven by Selenium logs into Horizon
(``tools/cloud/lib-horizon.sh``) as the cloud's demo user, launches an
instance through the Launch Instance form (image, flavor, network, key
pair), waits for Active, opens the Console tab (Nova's serial console,
through nova-serialproxy, to the container's ``/dev/console``), logs in on
the terminal, types a command and reads its output, opens the Log tab, and
stops and starts the instance from the actions menu. A screenshot of each
step is kept in /var/log/nova-syscontainer/horizon-browser/.

The image is the busybox test image with ``getty`` on the console and a
root password, uploaded here; the project's network and key pair are made
with the CLI as the demo user (the form picks them).
"""

import fcntl
import gzip
import io
import os
import shutil
import subprocess
import tarfile
import time
import uuid

import testtools

from tests.smoke import test_cloud_smoke as smoke

SHOTS = os.environ.get('SYSCONTAINER_BROWSER_SHOTS',
                       '/var/log/nova-syscontainer/horizon-browser')
HORIZON = os.environ.get('SYSCONTAINER_HORIZON_URL', 'http://127.0.0.1:8080')
SECRETS = '/etc/nova-syscontainer/cloud/secrets'
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
ROOT_PASSWORD = 'console-' + uuid.uuid4().hex[:8]
WAIT = 90


def console_image(image, password):
    """The busybox test image with a getty on /dev/console.

    Root's password is ``password`` (MD5 crypt, which busybox's login
    knows).
    """
    hashed = subprocess.run(['openssl', 'passwd', '-1', password],
                            check=True, capture_output=True,
                            text=True).stdout.strip()
    src = tarfile.open(fileobj=io.BytesIO(image), mode='r:gz')
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode='w') as dst:
        for member in src.getmembers():
            extra = None
            if member.name == 'rootfs/etc/inittab':
                extra = src.extractfile(member).read() + (
                    b'::respawn:/sbin/getty 38400 console\n')
            elif member.name == 'rootfs/etc/passwd':
                extra = ('root:%s:0:0:root:/root:/bin/sh\n'
                         % hashed).encode()
            if extra is not None:
                member.size = len(extra)
                dst.addfile(member, io.BytesIO(extra))
            elif member.isfile():
                dst.addfile(member, src.extractfile(member))
            else:
                dst.addfile(member)
    return buf.getvalue()


def ensure_browser():
    """Debian's chromium and chromium-driver; seconds it took."""
    t0 = time.monotonic()
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        cmd = ['apt-get', 'install', '-y', '-q', 'chromium',
               'chromium-driver']
        if subprocess.run(cmd, env=env, capture_output=True,
                          timeout=600).returncode:
            smoke.run('apt-get', 'update', '-q', timeout=600)
            smoke.run(*cmd, env=env, timeout=600)
    return time.monotonic() - t0


def demo_password():
    with open(SECRETS) as f:
        for line in f:
            if line.startswith('DEMO_PASSWORD='):
                return line.split('=', 1)[1].strip()
    raise AssertionError('no DEMO_PASSWORD in %s (tools/cloud.sh start '
                         'makes it)' % SECRETS)


@testtools.skipUnless(os.environ.get('SYSCONTAINER_BROWSER_TEST') == '1',
                      'not yet proved against the all-in-one: '
                      'tools/cloud.sh does not start Horizon yet (see '
                      'tools/cloud/lib-horizon.sh); set '
                      'SYSCONTAINER_BROWSER_TEST=1 to run it')
class HorizonBrowserTest(testtools.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.started = time.monotonic()
        cls.lock_fd = os.open(smoke.LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(cls.lock_fd, fcntl.LOCK_EX)
        cls.cleanups = []
        try:
            cls.browser_install = ensure_browser()
            cls.was_up = smoke.run(smoke.CLOUD, 'status',
                                   check=False).returncode == 0
            smoke.run(smoke.CLOUD, 'start', timeout=1800)
            cls._resources()
        except BaseException:
            cls._finish()
            raise

    @classmethod
    def tearDownClass(cls):
        cls._finish()
        super().tearDownClass()

    @classmethod
    def admin(cls, *args):
        return smoke.run(smoke.OPENSTACK, '--os-cloud', 'syscontainer',
                         *args).stdout.strip()

    @classmethod
    def member(cls, *args):
        return smoke.run(smoke.OPENSTACK, *args, env=cls.member_env,
                         timeout=300).stdout.strip()

    @classmethod
    def _resources(cls):
        suffix = uuid.uuid4().hex[:6]
        cls.image = 'nsc-browser-%s' % suffix
        cls.flavor = 'nsc-browser-%s' % suffix
        cls.net = 'nsc-browser-%s' % suffix
        cls.key = 'nsc-browser-%s' % suffix
        cls.server = 'nsc-browser-%s' % suffix
        cls.password = demo_password()
        cls.member_env = dict(
            os.environ, OS_AUTH_URL=smoke.KEYSTONE, OS_USERNAME='demo',
            OS_PASSWORD=cls.password, OS_PROJECT_NAME='demo',
            OS_USER_DOMAIN_NAME='Default', OS_PROJECT_DOMAIN_NAME='Default',
            OS_REGION_NAME='RegionOne', OS_IDENTITY_API_VERSION='3',
            OS_INTERFACE='public')
        cls.member_env.pop('OS_CLOUD', None)
        with open(smoke.IMAGE_FILE, 'rb') as f:
            data = console_image(f.read(), ROOT_PASSWORD)
        path = os.path.join('/tmp', cls.image + '.tar.gz')
        with open(path, 'wb') as f:
            f.write(data)
        try:
            cls.admin('image', 'create', '--public', '--disk-format', 'raw',
                      '--container-format', 'bare', '--property',
                      'hypervisor_type=lxc', '--property',
                      'architecture=x86_64', '--file', path, cls.image)
        finally:
            os.unlink(path)
        cls.cleanups.append(('--os-cloud', 'syscontainer', 'image', 'delete',
                             cls.image))
        cls.admin('flavor', 'create', '--vcpus', '1', '--ram', '128',
                  '--disk', '1', cls.flavor)
        cls.cleanups.append(('--os-cloud', 'syscontainer', 'flavor',
                             'delete', cls.flavor))
        cls.member('network', 'create', cls.net)
        cls.cleanups.append(('network', 'delete', cls.net))
        cls.member('subnet', 'create', '--network', cls.net,
                   '--subnet-range', '192.0.2.0/26', '--gateway', 'none',
                   '--no-dhcp', cls.net)
        cls.member('keypair', 'create', '--type', 'ssh', cls.key)
        cls.cleanups.append(('keypair', 'delete', cls.key))

    @classmethod
    def _finish(cls):
        errors = []
        server = getattr(cls, 'server', None)
        if server and getattr(cls, 'member_env', None):
            proc = smoke.run(smoke.OPENSTACK, 'server', 'delete', '--wait',
                             server, env=cls.member_env, check=False,
                             timeout=300)
            if proc.returncode and 'No server' not in proc.stderr:
                errors.append(proc.stderr)
        for args in reversed(cls.cleanups):
            env = None if args[0] == '--os-cloud' else cls.member_env
            proc = smoke.run(smoke.OPENSTACK, *args, env=env, check=False)
            if proc.returncode:
                errors.append(proc.stderr)
        if not getattr(cls, 'was_up', True):
            smoke.run(smoke.CLOUD, 'stop', check=False)
        os.close(cls.lock_fd)
        if errors:
            raise AssertionError('\n'.join(errors))

    # -- the browser -------------------------------------------------------
    def setUp(self):
        super().setUp()
        from selenium import webdriver
        from selenium.webdriver.chrome import service
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ('--headless=new', '--no-sandbox', '--disable-gpu',
                    '--disable-dev-shm-usage', '--window-size=1400,1000',
                    '--no-proxy-server'):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(
            service=service.Service(CHROMEDRIVER), options=options)
        self.addCleanup(self.driver.quit)
        self.driver.set_page_load_timeout(WAIT)
        if os.path.isdir(SHOTS):
            shutil.rmtree(SHOTS)
        os.makedirs(SHOTS)
        self.shot_no = 0

    def shot(self, name):
        self.shot_no += 1
        path = os.path.join(SHOTS, '%02d-%s.png' % (self.shot_no, name))
        self.driver.save_screenshot(path)
        return path

    def wait(self, condition, timeout=WAIT, what='the page'):
        from selenium.common import exceptions
        from selenium.webdriver.support import ui
        try:
            return ui.WebDriverWait(self.driver, timeout, 0.3).until(
                condition)
        except exceptions.TimeoutException:
            self.shot('timeout')
            self.fail('timed out waiting for %s' % what)

    def find(self, xpath, timeout=WAIT, clickable=False):
        from selenium.webdriver.common import by
        from selenium.webdriver.support import expected_conditions as ec
        cond = (ec.element_to_be_clickable if clickable
                else ec.visibility_of_element_located)
        return self.wait(cond((by.By.XPATH, xpath)), timeout, xpath)

    def click(self, xpath, timeout=WAIT):
        element = self.find(xpath, timeout, clickable=True)
        self.driver.execute_script('arguments[0].scrollIntoView(true);',
                                   element)
        element.click()
        return element

    def row_status(self, name):
        xpath = ('//table[@id="instances"]//tr[.//a[normalize-space()="%s"]]'
                 '//td[contains(@class, "status_up") or '
                 'contains(@class, "status_down") or '
                 'contains(@class, "status_unknown")]' % name)
        from selenium.webdriver.common import by
        cells = self.driver.find_elements(by.By.XPATH, xpath)
        return cells[0].text.strip() if cells else ''

    def wait_status(self, name, status, timeout=WAIT):
        def done(driver):
            text = self.row_status(name)
            if text == status:
                return True
            if 'Error' in text:
                self.shot('error')
                self.fail('%s is %s' % (name, text))
            return False
        self.wait(done, timeout, '%s to be %s' % (name, status))

    def allocate(self, name):
        """In the current wizard step, move ``name``'s row up."""
        self.click('//div[contains(@class, "wizard-steps")]'
                   '//div[contains(@class, "step") and '
                   'not(contains(@class, "ng-hide"))]'
                   '//available//tr[.//td[normalize-space()="%s"]]//button'
                   % name)

    def step(self, title):
        self.click('//div[contains(@class, "wizard-nav")]'
                   '//span[normalize-space()="%s"]' % title)

    def type_on_console(self, text):
        from selenium.webdriver.common import action_chains
        action_chains.ActionChains(self.driver).send_keys(text).perform()

    def console_text(self):
        from selenium.webdriver.common import by
        return self.driver.find_element(by.By.TAG_NAME, 'body').text

    def wait_console(self, needle, timeout=60):
        self.wait(lambda d: needle in self.console_text(), timeout,
                  '%r on the console' % needle)

    def test_launch_console_log_stop_start(self):
        t0 = time.monotonic()
        d = self.driver
        d.get(HORIZON + '/auth/login/')
        self.find('//input[@id="id_username"]').send_keys('demo')
        self.find('//input[@id="id_password"]').send_keys(self.password)
        self.shot('login')
        self.click('//button[@id="loginBtn"]')
        self.find('//*[contains(@class, "navbar")]')

        d.get(HORIZON + '/project/instances/')
        self.click('//a[@id="instances__action_launch-ng"]')
        self.find('//input[@id="name"]').send_keys(self.server)
        self.shot('launch-details')
        self.step('Source')
        self.allocate(self.image)
        self.shot('launch-source')
        self.step('Flavor')
        self.allocate(self.flavor)
        self.step('Networks')
        from selenium.webdriver.common import by
        if not d.find_elements(
                by.By.XPATH, '//allocated//td[normalize-space()="%s"]'
                % self.net):
            self.allocate(self.net)
        self.step('Key Pair')
        if not d.find_elements(
                by.By.XPATH, '//allocated//td[normalize-space()="%s"]'
                % self.key):
            self.allocate(self.key)
        self.shot('launch-keypair')
        self.click('//button[contains(@class, "finish")]')
        self.find('//table[@id="instances"]//a[normalize-space()="%s"]'
                  % self.server)
        self.wait_status(self.server, 'Active', timeout=120)
        launched = time.monotonic() - t0
        self.shot('active')

        # The Console tab: the serial console in an iframe.
        self.click('//table[@id="instances"]//a[normalize-space()="%s"]'
                   % self.server)
        self.click('//a[normalize-space()="Console"]')
        frame = self.find('//iframe[@id="console_embed"]')
        d.switch_to.frame(frame)
        self.find('//*[contains(@class, "terminal")]')
        self.type_on_console('\n')
        self.wait_console('login:')
        self.type_on_console('root\n')
        self.wait_console('Password:')
        self.type_on_console(ROOT_PASSWORD + '\n')
        self.type_on_console('echo browser-$((6*7)); hostname\n')
        self.wait_console('browser-42')
        d.switch_to.default_content()
        self.shot('console')

        # The Log tab: the console log.
        self.click('//a[normalize-space()="Log"]')
        self.find('//pre[contains(@class, "logs")]')
        self.shot('log')

        # Stop and start from the actions menu of the instances table.
        d.get(HORIZON + '/project/instances/')
        self.instance_action('Shut Off Instance')
        self.wait_status(self.server, 'Shutoff')
        self.shot('shutoff')
        self.instance_action('Start Instance')
        self.wait_status(self.server, 'Active')
        self.shot('started')
        self.addDetail('browser-seconds', testtools.content.text_content(
            'launch to Active %.1f s, test %.1f s, chromium install %.1f s, '
            'class setup to end %.1f s' % (
                launched, time.monotonic() - t0, self.browser_install,
                time.monotonic() - self.started)))

    def instance_action(self, label):
        """An action of the instance's row, from its menu if need be."""
        from selenium.webdriver.common import by
        row = ('//table[@id="instances"]//tr[.//a[normalize-space()="%s"]]'
               % self.server)
        item = (row + '//*[self::a or self::button]'
                '[normalize-space()="%s"]' % label)
        visible = [e for e in self.driver.find_elements(by.By.XPATH, item)
                   if e.is_displayed()]
        if not visible:
            self.click(row + '//a[contains(@class, "dropdown-toggle")]')
        self.click(item)
        # Some actions ask first (a modal with the action's own button).
        confirm = ('//div[contains(@class, "modal-footer")]'
                   '//*[self::a or self::button][normalize-space()="%s"]'
                   % label)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            buttons = [e for e in self.driver.find_elements(
                by.By.XPATH, confirm) if e.is_displayed()]
            if buttons:
                buttons[0].click()
                return
            time.sleep(0.3)
