"""Web servers configured with the files payhook ships in deploy/.

The end-to-end tests of the deployment (test_deploy.py) and of the
packages (tests/pkg/) serve payhook through the very snippets an operator
installs, with only their paths, ports and addresses replaced:

* ``render(path, subs)``: a deploy/ file with each ``old -> new`` of subs
  replaced; every ``old`` must occur (a snippet that changed shape fails the
  test instead of being served half-rendered), and no ``@NAME@``
  placeholder may be left.
* ``Apache``: a private Apache httpd 2.4 (``apache2 -DFOREGROUND``, its own
  ServerRoot, PidFile, logs and mod_fcgid IPC folder in the instance's
  directory) on a free 127.0.0.1 port that loads mod_fcgid and includes the
  rendered deploy/apache snippet.
* ``Lighttpd``: lighttpd with a main configuration like Debian's that
  includes the rendered deploy/lighttpd snippet.

Both stand in for harness.Server (``inst.server``): ``port``, ``start()``,
``stop()`` (by pid: the server, then any payhook.fcgi it left), ``read_log()``
and the error log copied into the TAP output after a failed check.  As root
they run payhook.fcgi as an unprivileged user (www-data, else nobody), as a
real installation does, after handing it the instance's directory.
"""

import grp
import os
import pwd
import re
import shutil
import subprocess
import time

import harness

DEPLOY_DIR = os.path.join(harness.TOP_SRCDIR, 'deploy')
APACHE_MODULES = os.environ.get('APACHE_MODULES', '/usr/lib/apache2/modules')


class RenderError(Exception):
    pass


def render(path, subs):
    """The text of `path` with every key of subs (an ordered mapping or a
    list of pairs) replaced by its value.  Each key must occur."""
    with open(path, encoding='utf-8') as fh:
        text = fh.read()
    pairs = subs.items() if isinstance(subs, dict) else subs
    for old, new in pairs:
        if old not in text:
            raise RenderError('%s: %r not found' % (path, old))
        text = text.replace(old, new)
    left = sorted(set(re.findall(r'@[A-Z_]+@', text)))
    if left:
        raise RenderError('%s: placeholders left: %s' % (path, left))
    return text


def in_ci():
    return os.environ.get('CI', '').lower() in ('true', '1', 'yes')


def skip(tap, reason):
    """One skipped test point (TAP ``# SKIP``)."""
    with tap._lock:
        tap.count += 1
        tap._out('ok %d # SKIP %s' % (tap.count, ' '.join(
            str(reason).split())))


def apache_path():
    env = os.environ.get('APACHE')
    if env == 'no':
        return None
    for cand in ([env] if env else []) + [shutil.which('apache2'),
                                          '/usr/sbin/apache2',
                                          shutil.which('httpd')]:
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def apache_missing():
    """None when Apache and mod_fcgid are there, else what is missing."""
    if apache_path() is None:
        return 'apache2 not found (apt-get install apache2)'
    if not os.path.exists(os.path.join(APACHE_MODULES, 'mod_fcgid.so')):
        return ('mod_fcgid.so not in %s (apt-get install '
                'libapache2-mod-fcgid)' % APACHE_MODULES)
    return None


def service_user():
    """(user, group) the web server's children run as: as root an
    unprivileged account, else whoever runs the test."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name
    for name in ('www-data', 'nobody'):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name
    raise harness.StartError('no unprivileged account (www-data, nobody)')


def hand_over(path, user):
    """As root: make `user` own everything below path (key files stay
    0600, as payhook wants them)."""
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(name, pw.pw_uid, pw.pw_gid)


def private_copy(inst, fcgi, plugin_dir=None):
    """Copies payhook.fcgi (and the plugins) into the instance's directory,
    so that an unprivileged server user can run them wherever the build
    tree is.  Returns (fcgi, plugin_dir) of the copies."""
    bindir = os.path.join(inst.dir, 'bin')
    os.makedirs(bindir, exist_ok=True)
    dst = os.path.join(bindir, os.path.basename(fcgi))
    shutil.copy2(fcgi, dst)
    plugins = None
    if plugin_dir:
        plugins = os.path.join(inst.dir, 'plugins')
        os.makedirs(plugins, exist_ok=True)
        for name in os.listdir(plugin_dir):
            if name.endswith('.so'):
                shutil.copy2(os.path.join(plugin_dir, name), plugins)
    os.chmod(inst.dir, 0o755)
    return dst, plugins


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = harness.proc_children(todo.pop())
        out += kids
        todo += kids
    return out


class _Base:
    """What Apache and Lighttpd share: start, wait for /healthz, stop by
    pid, logs into the TAP output."""

    name = 'server'

    def __init__(self, inst, snippet):
        self.inst = inst
        self.snippet = snippet          # the rendered deploy/ file
        self.proc = None
        self.port = None
        self.dir = os.path.join(inst.dir, self.name)
        self.errorlog = os.path.join(self.dir, 'error.log')
        self.stdout_log = os.path.join(self.dir, 'stdout.log')
        self.user, self.group = service_user()
        self._log_offset = 0
        self._backends = set()

    def command(self):
        raise NotImplementedError

    def write_snippet(self, subdirs):
        """Makes the folders subdirs below the server's directory and
        writes the rendered snippet there as payhook.conf."""
        for sub in subdirs:
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.snippet_path = os.path.join(self.dir, 'payhook.conf')
        harness.write_file(self.snippet_path, self.snippet, mode=0o644)

    def write_conf(self):
        raise NotImplementedError

    def start(self, timeout=30, health='/healthz'):
        last = ''
        for _attempt in range(3):
            self.port = harness.free_port()
            os.makedirs(self.dir, exist_ok=True)
            self.write_conf()
            hand_over(self.inst.dir, self.user)
            self._log_offset = self._log_size()
            out = open(self.stdout_log, 'ab')
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.dir,
                start_new_session=True)
            out.close()
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                r = harness.http_request(self.port, 'GET',
                                         self.inst.path(health), timeout=5)
                if r.status == 200:
                    self._backends = set(self.backend_pids())
                    self.inst.tap.fail_hooks.append(self.dump_log)
                    self.inst.tap.mark_hooks.append(self.mark_log)
                    return self
                time.sleep(0.1)
            last = self.read_log()
            self.stop()
            if 'Address already in use' in last:
                continue
            break
        raise harness.StartError('%s did not serve %s on %s:%s\n%s'
                                 % (self.name, health, harness.HOST,
                                    self.port, last[-4000:]))

    def backend_pids(self):
        if not self.proc:
            return []
        return [p for p in _descendants(self.proc.pid)
                if harness.is_payhook_fcgi(p)]

    def stop(self):
        if not self.proc:
            return
        harness.stop_web_server(self, set(self.backend_pids()) |
                                self._backends, 20)

    def _log_size(self):
        try:
            return os.path.getsize(self.errorlog)
        except OSError:
            return 0

    def read_log(self):
        return harness.read_text_files(self.errorlog, self.stdout_log)

    def mark_log(self):
        self._log_offset = self._log_size()

    def dump_log(self, max_lines=60):
        if self.proc is None:
            return
        try:
            with open(self.errorlog, 'rb') as fh:
                fh.seek(self._log_offset)
                data = fh.read()
                self._log_offset = fh.tell()
        except OSError:
            return
        lines = data.decode('utf-8', 'replace').splitlines()
        if lines:
            tap = self.inst.tap
            tap.diag('--- %s error log, last %d of %d new lines ---'
                     % (self.name, min(len(lines), max_lines), len(lines)))
            for line in lines[-max_lines:]:
                tap.diag('  ' + line)
            tap.diag('--- end of log ---')


class Apache(_Base):
    """Apache httpd with mod_fcgid, including the rendered snippet."""

    name = 'apache'

    def write_conf(self):
        self.write_snippet(('htdocs', 'run', 'fcgid'))
        mods = ['mpm_event', 'authz_core', 'authz_host', 'alias', 'fcgid']
        conf = ['# Apache for payhook tests (generated): main part; the',
                '# payhook part is the shipped deploy/apache snippet.',
                'ServerRoot "%s"' % self.dir,
                'ServerName %s' % harness.HOST,
                'Listen %s:%d' % (harness.HOST, self.port),
                'PidFile "%s/run/httpd.pid"' % self.dir,
                'DefaultRuntimeDir "%s/run"' % self.dir,
                'Mutex file:%s/run default' % self.dir,
                'ErrorLog "%s"' % self.errorlog,
                'LogLevel warn',
                'User %s' % self.user,
                'Group %s' % self.group,
                'DocumentRoot "%s/htdocs"' % self.dir,
                'StartServers 1',
                'ServerLimit 2',
                'ThreadsPerChild 16',
                'MinSpareThreads 4',
                'MaxSpareThreads 32',
                'MaxRequestWorkers 32']
        conf += ['LoadModule %s_module "%s/mod_%s.so"'
                 % (m, APACHE_MODULES, m) for m in mods]
        conf += ['FcgidIPCDir "%s/fcgid"' % self.dir,
                 'FcgidProcessTableFile "%s/fcgid/shm"' % self.dir,
                 'Include "%s"' % self.snippet_path]
        harness.write_file(os.path.join(self.dir, 'httpd.conf'),
                           '\n'.join(conf) + '\n', mode=0o644)

    def command(self):
        return [apache_path(), '-d', self.dir, '-f',
                os.path.join(self.dir, 'httpd.conf'), '-DFOREGROUND']


class Lighttpd(_Base):
    """lighttpd with a main configuration like Debian's
    (/etc/lighttpd/lighttpd.conf) that includes the rendered snippet."""

    name = 'lighttpd'

    def write_conf(self):
        self.write_snippet(('htdocs', 'run', 'uploads'))
        conf = ['# lighttpd for payhook tests (generated): main part; the',
                '# payhook part is the shipped deploy/lighttpd snippet.',
                'server.modules = ( "mod_indexfile", "mod_access", '
                '"mod_alias", "mod_redirect" )',
                'server.bind = "%s"' % harness.HOST,
                'server.port = %d' % self.port,
                'server.document-root = "%s/htdocs"' % self.dir,
                'server.upload-dirs = ( "%s/uploads" )' % self.dir,
                'server.errorlog = "%s"' % self.errorlog,
                'server.pid-file = "%s/run/lighttpd.pid"' % self.dir]
        if os.geteuid() == 0:
            conf += ['server.username = "%s"' % self.user,
                     'server.groupname = "%s"' % self.group]
        conf += ['include "%s"' % self.snippet_path]
        harness.write_file(os.path.join(self.dir, 'lighttpd.conf'),
                           '\n'.join(conf) + '\n', mode=0o644)

    def command(self):
        return [harness.lighttpd_path(), '-D', '-f',
                os.path.join(self.dir, 'lighttpd.conf')]
