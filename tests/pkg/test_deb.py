#!/usr/bin/env python3
"""The Debian packages, built, installed and serving.

From a copy of the distribution (make distdir), `dpkg-buildpackage -us -uc
-b` builds payhook and payhook-dev.  As root, with payhook not installed
yet, they are installed with `dpkg -i` (otherwise unpacked with `dpkg -x`
into a temporary root), and then, with the installed files only:

* the installed example configuration passes `payhook check` (and, as
  root, `check --user www-data`), with the plugins found in the package's
  compiled-in plugin folder;
* Apache, configured with the installed examples/apache/payhook.conf, and
  lighttpd, with examples/lighttpd/payhook.conf, serve a signed WeChat Pay
  notification end to end: order created, notification acknowledged, the
  order PAID, `payhook order show` agrees;
* as root, Debian's own Apache configuration (a copy of /etc/apache2,
  moved to a free 127.0.0.1 port and private run and log folders) with the
  installed snippet put in conf-available and enabled by `a2enmod fcgid`
  and `a2enconf payhook`, exactly as README.md's Operating section says,
  serves a notification too;
* the sweeper's installed systemd unit runs: its ExecStart, as its User;
  and, installed, the line of examples/cron/payhook-sweep as its user,
  appending to /var/log/payhook/sweep.log (logrotate checks the rotation
  example when it is there);
* the template provider builds against payhook-dev with nothing but
  `cc -shared -fPIC template.c $(pkg-config --cflags --libs
  payhook-provider)` and loads;
* the installed man pages render with man(1).

Installed packages are purged at the end.  This takes a package build and
touches the machine's package database, so it runs under CI=true or with
PAYHOOK_TEST_DEB=1 only, and never inside a package build
(PAYHOOK_IN_PACKAGE_BUILD, set by debian/rules).
"""

import glob
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'e2e'))
import harness  # noqa: E402
import deployed  # noqa: E402

PACKAGES = ('payhook', 'payhook-dev')


def run(cmd, timeout=600, **kw):
    kw.setdefault('stdin', subprocess.DEVNULL)
    kw.setdefault('stdout', subprocess.PIPE)
    kw.setdefault('stderr', subprocess.STDOUT)
    try:
        return subprocess.run(cmd, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(cmd, -999, exc.stdout or b'')


def text(r, tail=3000):
    out = r.stdout
    if isinstance(out, bytes):
        out = out.decode('utf-8', 'replace')
    return (out or '')[-tail:]


def clean_env(**more):
    env = dict(os.environ)
    for k in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'DESTDIR'):
        env.pop(k, None)
    env.update(more)
    return env


def package_version():
    with open(os.path.join(harness.TOP_BUILDDIR, 'Makefile')) as fh:
        m = re.search(r'^PACKAGE_VERSION = (\S+)$', fh.read(), re.M)
    return m.group(1) if m else None


def installed(pkg):
    r = run(['dpkg-query', '-W', '-f=${Status}', pkg])
    return r.returncode == 0 and 'ok installed' in text(r)


def build(tap, work):
    """The .deb files, {package: path}, or None."""
    version = package_version()
    src = os.path.join(work, 'payhook-%s' % version)
    r = run(['make', '-C', harness.TOP_BUILDDIR, 'distdir',
             'distdir=' + src, 'top_distdir=' + src], env=clean_env())
    if not tap.is_(r.returncode, 0, 'make distdir', text(r)):
        return None
    tap.ok(os.path.isfile(os.path.join(src, 'debian', 'rules')),
           'the distribution carries debian/')
    env = clean_env(DEB_BUILD_OPTIONS='nocheck noautodbgsym parallel=2')
    r = run(['dpkg-buildpackage', '-us', '-uc', '-b', '-Pnocheck'], cwd=src,
            env=env, timeout=1500)
    if not tap.is_(r.returncode, 0, 'dpkg-buildpackage -us -uc -b',
                   text(r, 6000)):
        return None
    debs = {}
    for pkg in PACKAGES:
        hits = glob.glob(os.path.join(work, '%s_%s_*.deb' % (pkg, version)))
        tap.is_(len(hits), 1, '%s .deb built' % pkg, hits)
        if hits:
            debs[pkg] = hits[0]
    return debs if len(debs) == len(PACKAGES) else None


# Files each package must ship (a part of the path is enough).
SHIPS = {
    'payhook': ('./usr/bin/payhook.fcgi', './usr/bin/payhook',
                '/payhook/providers/wechat.so',
                './lib/systemd/system/payhook-sweep.timer',
                './usr/share/doc/payhook/examples/apache/payhook.conf',
                './usr/share/man/man8/payhook.fcgi.8.gz'),
    'payhook-dev': ('./usr/include/payhook/sdk.h', '/libpayhook-provider.a',
                    '/pkgconfig/payhook-provider.pc',
                    './usr/share/man/man3/payhook-provider.3.gz',
                    './usr/share/payhook/template/template.c',
                    './usr/share/payhook/template/README.md'),
}


def contents(tap, debs):
    for pkg, paths in SHIPS.items():
        listing = text(run(['dpkg-deb', '-c', debs[pkg]]), 100000)
        for path in paths:
            tap.ok(path in listing, '%s ships %s' % (pkg, path))
        if pkg == 'payhook':
            tap.ok('.la\n' not in listing, 'no libtool archives shipped')


class Layout:
    """Where the packaged files are: at / when installed, else below the
    unpacked root."""

    def __init__(self, root):
        self.root = root
        self.installed = root == ''

    def path(self, p):
        return self.root + p

    @property
    def examples(self):
        return self.path('/usr/share/doc/payhook/examples')

    @property
    def plugin_dir(self):
        hits = glob.glob(self.path('/usr/lib/*/payhook/providers'))
        return hits[0] if hits else None


def example_config(lay):
    subs = [('db_path = /var/lib/payhook/payhook.mdb',
             'db_path = var/payhook.mdb')]
    if not lay.installed:
        subs.append(('; plugin_dir = /usr/local/lib/payhook/providers',
                     'plugin_dir = %s' % lay.plugin_dir))
    return deployed.render(os.path.join(lay.examples,
                                        'payhook.conf.example'), subs)


def as_user(cmd, user):
    """cmd run as user (root only), as the systemd unit would."""
    if os.geteuid() == 0 and user and user != 'root':
        return ['runuser', '-u', user, '--'] + cmd
    return cmd


def serve(tap, lay, kind):
    cli = lay.path('/usr/bin/payhook')
    inst = harness.Instance(tap, name='deb-' + kind,
                            profiles={'wxshop': harness.PROFILES['wxshop']})
    harness.write_file(inst.config, example_config(lay), mode=0o644)
    r = run([cli, '-c', inst.config, 'check'])
    tap.like(text(r), r'configuration OK \(1 profile\(s\), 1 plugin\(s\)',
             '%s: the installed payhook checks the installed example '
             'configuration%s' % (kind, '' if not lay.installed else
                                  ', plugins from the compiled-in folder'))
    conf_path = '/etc/payhook/payhook.conf'
    subs = [(conf_path, inst.config)]
    if kind == 'lighttpd':
        subs.append(('/run/lighttpd/payhook.sock',
                     os.path.join(inst.dir, 'lighttpd', 'run',
                                  'payhook.sock')))
    if not lay.installed:
        subs.append(('/usr/bin/payhook.fcgi',
                     lay.path('/usr/bin/payhook.fcgi')))
    snippet = deployed.render(os.path.join(lay.examples, kind,
                                           'payhook.conf'), subs)
    server = (deployed.Apache if kind == 'apache' else
              deployed.Lighttpd)(inst, snippet)
    inst.server = server
    server.start()
    tap.ok(True, '%s with the installed snippet serves /healthz' % kind)
    fcgi = [p for p in server.backend_pids()
            if lay.path('/usr/bin/payhook.fcgi') in harness.cmdline(p)]
    tap.ok(fcgi, '%s runs the installed payhook.fcgi' % kind,
           [harness.cmdline(p) for p in server.backend_pids()])
    order = 'DEB-%s-%s' % (kind.upper(), os.urandom(4).hex())
    r = inst.create_order(order, 2590)
    tap.is_(r.status, 201, '%s: order created through the merchant API'
            % kind, r.describe())
    resp, fields = inst.pay(order, 2590, harness.txn_id('deb' + kind))
    harness.check_ack(tap, resp, 'SUCCESS', '%s: signed notification' % kind)
    tap.is_((inst.order(order) or {}).get('state'), 'PAID',
            '%s: the order is PAID' % kind)
    again = inst.notify(fields)
    harness.check_ack(tap, again, 'SUCCESS', '%s: the same again' % kind)
    evs = [e.get('type') for e in inst.all_events()
           if e.get('order_id') == order]
    tap.is_(evs, ['order.paid'], '%s: applied once' % kind)
    server.stop()
    r = run([cli, '-c', inst.config, 'order', 'show', order])
    tap.like(text(r), r'"state": "PAID"', '%s: payhook order show agrees'
             % kind)
    if os.geteuid() == 0:
        r = run([cli, '-c', inst.config, 'check', '--user', server.user])
        tap.like(text(r), r'usable by %s' % server.user,
                 '%s: payhook check --user %s' % (kind, server.user),
                 text(r))
    return inst


class DebianApache(deployed._Base):
    """apache2 with a copy of Debian's /etc/apache2 (apache2.conf,
    envvars, the default site), the snippet enabled the Debian way."""

    name = 'apache-debian'

    def __init__(self, inst, snippet, tap):
        deployed._Base.__init__(self, inst, snippet)
        self.tap = tap
        self.confdir = os.path.join(self.dir, 'apache2')

    def write_conf(self):
        if os.path.exists(self.confdir):
            shutil.rmtree(self.confdir)
        shutil.copytree('/etc/apache2', self.confdir, symlinks=True)
        for sub in ('run', 'lock', 'log', 'fcgid'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.errorlog = os.path.join(self.dir, 'log', 'error.log')
        with open(os.path.join(self.confdir, 'envvars'), 'a') as fh:
            fh.write('export APACHE_RUN_DIR=%s/run\n'
                     'export APACHE_PID_FILE=%s/run/apache2.pid\n'
                     'export APACHE_LOCK_DIR=%s/lock\n'
                     'export APACHE_LOG_DIR=%s/log\n'
                     % ((self.dir,) * 4))
        harness.write_file(os.path.join(self.confdir, 'ports.conf'),
                           'Listen %s:%d\n' % (harness.HOST, self.port),
                           mode=0o644)
        site = os.path.join(self.confdir, 'sites-available',
                            '000-default.conf')
        with open(site) as fh:
            text_ = fh.read()
        harness.write_file(site, text_.replace('<VirtualHost *:80>',
                                               '<VirtualHost *:%d>'
                                               % self.port), mode=0o644)
        with open(os.path.join(self.confdir, 'mods-available', 'fcgid.conf'),
                  'a') as fh:
            fh.write('FcgidIPCDir %s/fcgid\nFcgidProcessTableFile '
                     '%s/fcgid/shm\n' % (self.dir, self.dir))
        harness.write_file(os.path.join(self.confdir, 'conf-available',
                                        'payhook.conf'), self.snippet,
                           mode=0o644)
        env = clean_env(APACHE_CONFDIR=self.confdir,
                        APACHE_STATE_DIRECTORY=os.path.join(self.dir,
                                                            'state'))
        for cmd in (['a2enmod', '-q', 'fcgid'], ['a2enconf', '-q',
                                                 'payhook']):
            r = run(cmd, env=env)
            if r.returncode != 0:
                raise harness.StartError('%s: %s' % (' '.join(cmd),
                                                     text(r)))
        self.a2_ok = os.path.islink(os.path.join(self.confdir,
                                                 'conf-enabled',
                                                 'payhook.conf'))

    def command(self):
        return ['sh', '-c', '. "$APACHE_CONFDIR/envvars" && exec '
                '/usr/sbin/apache2 -d "$APACHE_CONFDIR" -DFOREGROUND']

    def start(self, timeout=30, health='/healthz'):
        os.environ['APACHE_CONFDIR'] = self.confdir
        try:
            return deployed._Base.start(self, timeout, health)
        finally:
            os.environ.pop('APACHE_CONFDIR', None)


def debian_apache(tap, lay):
    """Debian's Apache layout, configured as README.md says."""
    if not lay.installed or not os.path.isfile('/etc/apache2/apache2.conf') \
            or shutil.which('a2enconf') is None:
        deployed.skip(tap, "Debian's Apache layout: needs the installed "
                      'package, /etc/apache2 and a2enconf')
        return
    inst = harness.Instance(tap, name='deb-a2',
                            profiles={'wxshop': harness.PROFILES['wxshop']})
    harness.write_file(inst.config, example_config(lay), mode=0o644)
    snippet = deployed.render(os.path.join(lay.examples, 'apache',
                                           'payhook.conf'),
                              [('/etc/payhook/payhook.conf', inst.config)])
    server = DebianApache(inst, snippet, tap)
    inst.server = server
    server.start()
    tap.ok(server.a2_ok, "Debian's apache2.conf with the snippet enabled by "
           'a2enmod fcgid and a2enconf payhook serves /healthz')
    order = 'DEB-A2-' + os.urandom(4).hex()
    r = inst.create_order(order, 880)
    tap.is_(r.status, 201, 'a2enconf: order created', r.describe())
    resp, _f = inst.pay(order, 880, harness.txn_id('deba2'))
    harness.check_ack(tap, resp, 'SUCCESS', 'a2enconf: signed notification')
    tap.is_((inst.order(order) or {}).get('state'), 'PAID',
            'a2enconf: the order is PAID')
    r = inst.request('GET', '/', None)
    tap.ok(r.status in (403, 404), 'a2enconf: / is payhook\'s, not '
           "Debian's default page", r.describe())
    inst.cleanup()


def sweeper_unit(tap, lay, inst):
    """The installed unit's ExecStart, run as its User."""
    unit = lay.path('/lib/systemd/system/payhook-sweep.service')
    with open(unit) as fh:
        body = fh.read()
    m = re.search(r'^ExecStart=(.+)$', body, re.M)
    u = re.search(r'^User=(\S+)$', body, re.M)
    if not tap.ok(m and u, 'the sweeper unit has ExecStart and User'):
        return
    sa = shutil.which('systemd-analyze')
    if sa is None:
        deployed.skip(tap, 'systemd-analyze is not installed')
    else:
        r = run([sa, 'security', '--offline=true', '--no-pager', unit])
        mm = re.search(r'Overall exposure level for \S+: ([0-9.]+) (\w+)',
                       text(r, 10 ** 5))
        tap.ok(mm and float(mm.group(1)) <= 4.9,
               'systemd-analyze security rates the sweeper unit OK or '
               'better', mm and mm.group(0))
    argv = shlex.split(m.group(1))
    tap.is_(argv[1:], ['-c', '/etc/payhook/payhook.conf', 'sweep'],
            'ExecStart runs one sweep pass with /etc/payhook/payhook.conf',
            argv)
    tap.ok(argv[0] == '/usr/bin/payhook', 'ExecStart names the installed '
           'payhook', argv[0])
    argv = [lay.path(argv[0]), '-c', inst.config] + argv[3:]
    try:
        pwd.getpwnam(u.group(1))
    except KeyError:
        deployed.skip(tap, 'no user %s here' % u.group(1))
        return
    deployed.hand_over(inst.dir, u.group(1))
    r = run(as_user(argv, u.group(1)))
    tap.is_(r.returncode, 0, 'the sweeper unit\'s command runs as %s'
            % u.group(1), text(r))
    tap.like(text(r), r'event=sweep due=\d+', '... and logs its pass')


def cron_line(tap, lay, inst):
    """The cron example's line, run as its user, as cron would."""
    if not lay.installed or os.geteuid() != 0:
        deployed.skip(tap, 'the cron line: needs the installed package')
        return
    with open(os.path.join(lay.examples, 'cron', 'payhook-sweep')) as fh:
        lines = [ln for ln in fh.read().splitlines()
                 if re.match(r'^[*0-9]', ln)]
    if not tap.is_(len(lines), 1, 'the cron example has one job line',
                   lines):
        return
    fields = lines[0].split(None, 6)
    user, command = fields[5], fields[6]
    tap.like(command, r'^/usr/bin/payhook -c /etc/payhook/payhook\.conf '
             r'sweep >>/var/log/payhook/sweep\.log 2>&1$',
             'the cron job runs a sweep pass into /var/log/payhook')
    command = command.replace('/etc/payhook/payhook.conf', inst.config)
    r = run(['runuser', '-u', user, '--', 'sh', '-c', command])
    tap.is_(r.returncode, 0, 'the cron job runs as %s' % user, text(r))
    try:
        with open('/var/log/payhook/sweep.log') as fh:
            log = fh.read()
    except OSError as exc:
        log = str(exc)
    tap.like(log, r'event=sweep due=\d+', '... and appends its pass to '
             '/var/log/payhook/sweep.log')
    logrotate = shutil.which('logrotate') or (
        '/usr/sbin/logrotate' if os.access('/usr/sbin/logrotate', os.X_OK)
        else None)
    if logrotate is None:
        deployed.skip(tap, 'logrotate not installed')
        return
    state = os.path.join(inst.dir, 'logrotate.state')
    r = run([logrotate, '--debug', '--state', state,
             os.path.join(lay.examples, 'logrotate', 'payhook')])
    tap.ok(r.returncode == 0 and 'error' not in text(r).lower(),
           'logrotate accepts the rotation example', text(r))


def drop_in(tap, lay, work):
    """The template provider against payhook-dev."""
    src = os.path.join(work, 'tpl')
    os.makedirs(src)
    # The template payhook-dev ships, not the source tree's.
    shutil.copy(lay.path('/usr/share/payhook/template/template.c'), src)
    env = clean_env()
    if not lay.installed:
        pcs = glob.glob(lay.path('/usr/lib/*/pkgconfig/payhook-provider.pc'))
        pcdir = os.path.join(work, 'pc')
        os.makedirs(pcdir)
        with open(pcs[0]) as fh:
            pc = fh.read()
        pc = re.sub(r'^(prefix|libdir|includedir)=(/.*)$',
                    lambda mm: '%s=%s%s' % (mm.group(1), lay.root,
                                            mm.group(2)), pc, flags=re.M)
        harness.write_file(os.path.join(pcdir, 'payhook-provider.pc'), pc,
                           mode=0o644)
        env['PKG_CONFIG_PATH'] = pcdir
    r = run(['pkg-config', '--variable=abi', 'payhook-provider'], env=env)
    with open(lay.path('/usr/include/payhook/provider.h')) as fh:
        abi = re.search(r'^#define PH_PROVIDER_ABI (\d+)$', fh.read(), re.M)
    tap.is_(text(r).strip(), abi.group(1) if abi else None, 'payhook-dev: '
            'pkg-config\'s abi is the PH_PROVIDER_ABI of its headers')
    cmd = ('cc -shared -fPIC template.c '
           '$(pkg-config --cflags --libs payhook-provider) -o template.so')
    r = run(['sh', '-c', cmd], cwd=src, env=env)
    if not tap.is_(r.returncode, 0, 'payhook-dev: the template provider '
                   'builds with ' + cmd, text(r)):
        return
    plugins = os.path.join(work, 'plugins')
    os.makedirs(plugins)
    shutil.copy(os.path.join(src, 'template.so'), plugins)
    conf = os.path.join(work, 'tpl.conf')
    harness.write_file(os.path.join(work, 'tpl.token'),
                       'token-' + os.urandom(12).hex() + '\n')
    harness.write_file(os.path.join(work, 'tpl.secret'),
                       'secret-' + os.urandom(12).hex() + '\n')
    harness.write_file(conf, '[core]\ndb_path = tpl/payhook.mdb\n'
                       'plugin_dir = %s\napi_token_file = tpl.token\n'
                       '[profile.demo]\nplugin = template\n'
                       'secret_file = tpl.secret\nmerchant = shop1\n'
                       % plugins, mode=0o644)
    r = run([lay.path('/usr/bin/payhook'), '-c', conf, 'check'])
    tap.like(text(r), r'configuration OK \(1 profile\(s\), 1 plugin\(s\)',
             'the installed payhook loads it from a plugin folder')

    # -Wl,-z,defs from the .pc: a call nobody defines fails to link.
    with open(os.path.join(src, 'template.c')) as fh:
        body = fh.read()
    harness.write_file(os.path.join(src, 'typo.c'), body + (
        '\nint ph_typo_call(void);\n'
        'int payhook_typo(void) { return ph_typo_call(); }\n'))
    r = run(['sh', '-c', cmd.replace('template.c', 'typo.c').replace(
        'template.so', 'typo.so')], cwd=src, env=env)
    tap.ok(r.returncode != 0 and 'ph_typo_call' in text(r),
           'a plugin calling a function the SDK lacks does not link',
           text(r))

    # The local folder, searched when plugin_dir is not set.
    local = '/usr/local/lib/payhook/providers'
    if not lay.installed or os.geteuid() != 0 or os.path.exists(
            os.path.join(local, 'template.so')):
        deployed.skip(tap, 'the local plugin folder: needs the installed '
                      'package, root, and no template.so there')
        return
    made = not os.path.isdir(local)
    os.makedirs(local, exist_ok=True)
    shutil.copy(os.path.join(src, 'template.so'), local)
    try:
        with open(conf) as fh:
            text_conf = fh.read()
        harness.write_file(conf, re.sub(r'^plugin_dir = .*\n', '',
                                        text_conf, flags=re.M), mode=0o644)
        r = run([lay.path('/usr/bin/payhook'), '-c', conf, 'check'])
        tap.like(text(r), r'configuration OK', 'without plugin_dir, a '
                 'plugin in %s is found' % local)
    finally:
        os.unlink(os.path.join(local, 'template.so'))
        if made:
            shutil.rmtree('/usr/local/lib/payhook', ignore_errors=True)


def licence(tap, lay):
    path = lay.path('/usr/share/doc/payhook/copyright')
    try:
        with open(path) as fh:
            body = fh.read()
    except OSError as exc:
        body = str(exc)
    tap.ok('License: ISC' in body and 'unspecified' not in body,
           'debian/copyright states the ISC licence', body[:300])
    with open(os.path.join(harness.TOP_SRCDIR, 'LICENSE')) as fh:
        tap.like(fh.read(), r'Permission to use, copy, modify, and '
                 r'distribute', 'the tree carries LICENSE')


def upgrade(tap, debs):
    """Installing the packages again is an upgrade: it succeeds, and the
    maintainer scripts never stop the sweeper timer for good."""
    r = run(['dpkg', '-i', debs['payhook'], debs['payhook-dev']])
    tap.is_(r.returncode, 0, 'dpkg -i again (an upgrade)', text(r))
    scripts = {}
    for name in ('prerm', 'postinst'):
        try:
            with open('/var/lib/dpkg/info/payhook.%s' % name) as fh:
                scripts[name] = fh.read()
        except OSError:
            scripts[name] = ''
    # The installed prerm run as dpkg runs it, deb-systemd-invoke replaced
    # by one that notes what it is asked.
    calls = {}
    with tempfile.TemporaryDirectory() as bindir:
        log = os.path.join(bindir, 'calls')
        fake = os.path.join(bindir, 'deb-systemd-invoke')
        with open(fake, 'w') as fh:
            fh.write('#!/bin/sh\necho "$@" >> %s\n' % log)
        os.chmod(fake, 0o755)
        for arg in ('upgrade', 'remove'):
            if os.path.exists(log):
                os.unlink(log)
            r = run(['sh', '/var/lib/dpkg/info/payhook.prerm', arg, '0.1'],
                    env=clean_env(PATH=bindir + ':' + os.environ['PATH']))
            calls[arg] = (r.returncode, open(log).read().strip()
                          if os.path.exists(log) else '')
    tap.is_(calls['upgrade'], (0, ''),
            'prerm upgrade: the sweeper timer is left running')
    tap.ok(calls['remove'][0] == 0 and 'stop payhook-sweep.timer' in
           calls['remove'][1], 'prerm remove: the sweeper timer stopped',
           calls['remove'])
    tap.ok('restart payhook-sweep.timer' in scripts['postinst'],
           'postinst restarts a running sweeper timer after an upgrade')


def man_pages(tap, lay):
    if not lay.installed or shutil.which('man') is None:
        deployed.skip(tap, 'installed man pages: not installed here')
        return
    env = clean_env(MANWIDTH='80', LC_ALL='C.UTF-8')
    for sect, page in (('1', 'payhook'), ('8', 'payhook.fcgi'),
                       ('5', 'payhook.conf'), ('3', 'payhook-provider')):
        r = run(['man', sect, page], env=env)
        tap.ok(r.returncode == 0 and 'DESCRIPTION' in text(r, 10 ** 6),
               'man %s %s renders the installed page' % (sect, page),
               text(r, 500))


def skip_reason():
    if os.environ.get('PAYHOOK_IN_PACKAGE_BUILD'):
        return 'inside a package build'
    if not (deployed.in_ci() or os.environ.get('PAYHOOK_TEST_DEB') == '1'):
        return ('builds and installs the .deb: runs under CI=true or with '
                'PAYHOOK_TEST_DEB=1')
    return None


def main(tap):
    for tool in ('dpkg-buildpackage', 'dh', 'dpkg', 'dpkg-deb', 'cc',
                 'pkg-config'):
        if shutil.which(tool) is None:
            tap.ok(False, '%s is needed (tools/install-deps)' % tool)
            return
    missing = deployed.apache_missing()
    if missing:
        tap.ok(False, 'Apache with mod_fcgid is needed', missing)
        return
    work = tempfile.mkdtemp(prefix='payhook-deb-')
    os.chmod(work, 0o755)
    ours = []
    try:
        debs = build(tap, work)
        if debs is None:
            return
        contents(tap, debs)
        root = ''
        if os.geteuid() == 0 and not any(installed(p) for p in PACKAGES):
            r = run(['dpkg', '-i', debs['payhook'], debs['payhook-dev']])
            if not tap.is_(r.returncode, 0, 'dpkg -i payhook payhook-dev',
                           text(r)):
                return
            ours = list(PACKAGES)
            st = os.stat('/var/lib/payhook')
            tap.is_((st.st_mode & 0o777, pwd.getpwuid(st.st_uid).pw_name),
                    (0o700, 'www-data'), 'the package makes /var/lib/payhook '
                    'www-data\'s, mode 0700')
            st = os.stat('/var/backups/payhook')
            tap.is_((st.st_mode & 0o777, pwd.getpwuid(st.st_uid).pw_name),
                    (0o700, 'www-data'), '... and /var/backups/payhook, '
                    'where backups go')
        else:
            root = os.path.join(work, 'root')
            for pkg in PACKAGES:
                r = run(['dpkg', '-x', debs[pkg], root])
                tap.is_(r.returncode, 0, 'dpkg -x %s (payhook is installed '
                        'already, or not root)' % pkg, text(r))
        lay = Layout(root)
        inst = serve(tap, lay, 'apache')
        serve(tap, lay, 'lighttpd')
        debian_apache(tap, lay)
        sweeper_unit(tap, lay, inst)
        cron_line(tap, lay, inst)
        drop_in(tap, lay, work)
        man_pages(tap, lay)
        licence(tap, lay)
        if ours:
            upgrade(tap, debs)
        harness.cleanup_all()
    finally:
        harness.cleanup_all()
        if ours:
            r = run(['dpkg', '--purge'] + list(reversed(ours)))
            tap.is_(r.returncode, 0, 'dpkg --purge payhook-dev payhook',
                    text(r))
            tap.ok(not os.path.exists('/usr/bin/payhook.fcgi'),
                   '... and payhook.fcgi is gone')
        if os.environ.get('PAYHOOK_E2E_KEEP') == '1':
            sys.stdout.write('# kept %s\n' % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    if skip_reason():
        harness.Tap().skip_all(skip_reason())
    harness.run(main)
