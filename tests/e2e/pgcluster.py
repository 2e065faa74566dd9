"""Private PostgreSQL clusters for payhook's end-to-end tests.

A test starts a throw-away primary, optionally a streaming standby, points
payhook at them with ``conninfo()``, and kills or promotes them:

    import pgcluster
    reason = pgcluster.available()      # None, or why not: '1..0 # SKIP'
    p = pgcluster.Cluster(None, 'primary').init().start()
    p.createdb('payhook')
    s = p.make_standby('standby')       # synchronous by default
    p.kill_immediate(); s.promote()

Layout: ``<base>/<name>/`` holds the server's Unix socket and its log
(postgresql.log), ``<base>/<name>/data`` the data directory.  With base None
the clusters share one fresh ``mkdtemp(prefix='payhook-pg-')``.  A Unix
socket path is limited to 107 bytes, so keep bases short (under /tmp).
Binaries: $PG_BINDIR, else the newest /usr/lib/postgresql/*/bin.

Root: initdb and postgres refuse to run as root, so when euid is 0 every
PostgreSQL program runs as ``nobody``/``nogroup`` through ``setpriv --reuid
--regid --clear-groups`` (util-linux), with HOME set to the cluster folder;
the folders are chowned to that user and the base made traversable (o+x).

Settings written to postgresql.conf, and why:

* ``listen_addresses = ''``: no TCP at all, only the Unix socket, so
  nothing listens on any network address; the socket sits in the cluster's
  own folder (``unix_socket_directories``) and each cluster gets its own
  port number (20000-60000), so the socket file names differ too;
* ``fsync``, ``synchronous_commit = on``: the tests check durability
  after crashes (``kill_immediate``), so nothing may be faked;
* ``wal_level = replica``, ``max_wal_senders = 5``: standbys by
  pg_basebackup and streaming replication;
* ``shared_buffers = 16MB``, ``max_connections = 100``: small and fixed,
  whatever the machine, so several clusters fit in a CI container;
* ``logging_collector = off``: ``pg_ctl -l`` writes the log, whose tail is
  put into every ``PgError``; ``cluster_name`` names the processes in ps.

pg_hba.conf allows only ``local`` (socket) connections, with ``trust`` or,
when init() is given a password, ``scram-sha-256``; the password goes to
the client programs (psql, pg_basebackup) as PGPASSWORD, never to the server.

A standby gets its own port, socket folder and log, ``primary_conninfo``
with ``application_name=<name>`` (the name synchronous_standby_names
refers to) and ``synchronous_standby_names = ''`` so that, once promoted, it
does not wait for standbys it has not got.  A synchronous standby replaces
the primary's previous synchronous_standby_names.

Every server still running at interpreter exit is stopped by its pid
(SIGQUIT, then SIGKILL to it and its children); the folders are removed
unless PAYHOOK_E2E_KEEP=1.  Every subprocess call has a timeout.  Standard
library only.
"""

import atexit
import glob
import grp
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import _alive  # a pid that runs, not a zombie

RUN_AS = ('nobody', 'nogroup')
PROGS = ('initdb', 'pg_ctl', 'postgres', 'psql', 'pg_basebackup')
_clusters, _removals, _ports = [], [], set()
_base = None
_owner = os.getpid()        # forked children must not stop the servers


class PgError(Exception):
    pass


def bindir():
    if os.environ.get('PG_BINDIR'):
        return os.environ['PG_BINDIR']
    dirs = sorted(glob.glob('/usr/lib/postgresql/*/bin'),
                  key=lambda d: [int(x) for x in re.findall(r'\d+', d)])
    return dirs[-1] if dirs else '/usr/lib/postgresql/bin'


def _ids():
    """(uid, gid) to run PostgreSQL as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    uid = pwd.getpwnam(RUN_AS[0]).pw_uid
    try:
        return uid, grp.getgrnam(RUN_AS[1]).gr_gid
    except KeyError:
        return uid, pwd.getpwnam(RUN_AS[0]).pw_gid


def _setpriv(ids):
    return ['setpriv', '--reuid=%d' % ids[0], '--regid=%d' % ids[1],
            '--clear-groups', '--']


def available():
    """None when clusters can be made here, else a short reason."""
    for prog in PROGS:
        if not os.access(os.path.join(bindir(), prog), os.X_OK):
            return 'PostgreSQL %s not found in %s' % (prog, bindir())
    if os.geteuid() != 0:
        return None
    if not shutil.which('setpriv'):
        return 'running as root and setpriv (util-linux) not found'
    try:
        subprocess.run(_setpriv(_ids()) + ['true'], check=True, timeout=30,
                       capture_output=True)
    except (KeyError, OSError, subprocess.SubprocessError) as exc:
        return 'cannot run as %s via setpriv: %s' % (RUN_AS[0], exc)
    return None


def _quote(v):
    """A libpq conninfo value."""
    if re.match(r'\A[\w./,:@-]+\Z', v):
        return v
    return "'" + v.replace('\\', '\\\\').replace("'", "\\'") + "'"



def _wait_gone(pids, secs):
    deadline = time.time() + secs
    while any(map(_alive, pids)) and time.time() < deadline:
        time.sleep(0.05)
    return not any(map(_alive, pids))


class Cluster:
    def __init__(self, base_dir, name, port=None):
        global _base
        if not re.match(r'\A[A-Za-z0-9_-]+\Z', name):
            raise PgError('cluster name %r: use letters, digits, _ and -'
                          % name)
        if base_dir is None:
            if _base is None:
                tmp = tempfile.gettempdir()
                _base = tempfile.mkdtemp(prefix='payhook-pg-',
                                         dir=tmp if len(tmp) < 40 else '/tmp')
                _removals.append(_base)
            base_dir = _base
        self.base, self.name = os.path.abspath(base_dir), name
        self.dir = os.path.join(self.base, name)
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'postgresql.log')
        self.ids, self.password, self.pid = _ids(), None, None
        while port is None or port in _ports:
            port = random.randint(20000, 60000)
            if os.path.exists(os.path.join(self.dir, '.s.PGSQL.%d' % port)):
                port = None
        self.port = port
        _ports.add(port)
        sock = os.path.join(self.dir, '.s.PGSQL.%d' % port)
        if len(sock.encode()) > 107:
            raise PgError('socket path %s is longer than 107 bytes; use a '
                          'shorter base dir' % sock)
        if self.base == _base:
            os.chmod(self.base, 0o755)
            self._own(self.base)
        else:                       # the caller's: make it traversable
            os.chmod(self.base, os.stat(self.base).st_mode | 0o001)
            _removals.append(self.dir)
        os.makedirs(self.dir, mode=0o755)
        os.chmod(self.dir, 0o755)
        self._own(self.dir)
        _clusters.append(self)

    # -- running programs -------------------------------------------------
    def _own(self, path):
        if self.ids:
            os.chown(path, *self.ids)

    def log_tail(self, lines=30):
        try:
            with open(self.log, errors='replace') as fh:
                return ''.join(fh.readlines()[-lines:])
        except OSError:
            return '(no server log)\n'

    def error(self, what, why, stderr=''):
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors='replace')
        return PgError('%s: %s\nstderr: %s\nserver log (%s) tail:\n%s'
                       % (what, why, (stderr or '').rstrip(), self.log,
                          self.log_tail()))

    def run(self, prog, *args, timeout=120, password=False, env=None):
        """Run a PostgreSQL program (as RUN_AS when root), with env added
        to its environment; its stdout."""
        cmd = [os.path.join(bindir(), prog)] + [str(a) for a in args]
        if env:
            # Set by env(1) after setpriv: a preloaded library (libfaketime)
            # then starts in the server's user, not in root's setpriv.
            cmd = ['env'] + ['%s=%s' % kv for kv in sorted(env.items())] + cmd
        env = {k: v for k, v in os.environ.items() if not k.startswith('PG')}
        env.update(HOME=self.dir, LC_ALL='C', LANG='C')  # no ~/.pgpass
        if password and self.password:
            env['PGPASSWORD'] = self.password
        full = (_setpriv(self.ids) if self.ids else []) + cmd
        try:
            res = subprocess.run(full, env=env, cwd=self.dir, timeout=timeout,
                                 capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, errors='replace')
        except subprocess.TimeoutExpired as exc:
            raise self.error(' '.join(cmd), 'timed out after %ds' % timeout,
                             exc.stderr)
        if res.returncode != 0:
            raise self.error(' '.join(cmd), 'exit %d' % res.returncode,
                             res.stderr)
        return res.stdout

    def _append_conf(self, lines):
        lines = ["port = %d" % self.port, "listen_addresses = ''",
                 "unix_socket_directories = '%s'" % self.dir,
                 "cluster_name = '%s'" % self.name, "logging_collector = off",
                 "log_destination = 'stderr'"] + lines
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as fh:
            fh.write('\n# pgcluster.py\n' + ''.join(l + '\n' for l in lines))

    # -- life cycle -------------------------------------------------------
    def init(self, auth='trust', password=None):
        args = ['-D', self.data, '-U', 'postgres', '-E', 'UTF8', '--locale=C']
        if password is not None:
            auth = 'scram-sha-256' if auth == 'trust' else auth
            self.password = password
            pwfile = os.path.join(self.dir, 'pwfile')
            with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600),
                      'w') as fh:
                fh.write(password + '\n')
            self._own(pwfile)
            args.append('--pwfile=' + pwfile)
        try:
            self.run('initdb', '--auth-local=' + auth, '--auth-host=reject',
                     *args)
        finally:
            if password is not None:
                os.unlink(pwfile)
        self._append_conf([
            "fsync = on", "synchronous_commit = on", "wal_level = replica",
            "max_wal_senders = 5", "shared_buffers = 16MB",
            "max_connections = 100"])
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as fh:
            fh.write('local all all %s\nlocal replication all %s\n'
                     % (auth, auth))
        return self

    def start(self, env=None):
        """pg_ctl start; env is added to the server's environment."""
        self.run('pg_ctl', '-D', self.data, '-l', self.log, '-w', '-t', 60,
                 'start', timeout=90, env=env)
        with open(os.path.join(self.data, 'postmaster.pid')) as fh:
            self.pid = int(fh.readline())
        return self

    def running(self):
        return self.pid is not None and _alive(self.pid)

    def _kill(self):
        """SIGKILL the postmaster and its children (each child calls
        setsid(), so a process-group kill would miss them)."""
        pids = [self.pid]
        for st in glob.glob('/proc/[0-9]*/stat'):
            try:
                with open(st) as fh:
                    data = fh.read()
                if int(data[data.rfind(')') + 2:].split()[1]) == self.pid:
                    pids.append(int(st.split('/')[2]))
            except (OSError, ValueError):
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _wait_gone(pids, 10)

    def stop(self, mode='fast'):
        """pg_ctl stop -m mode; SIGKILL if still alive 30 s later."""
        if self.running():
            try:
                self.run('pg_ctl', '-D', self.data, '-m', mode, '-w',
                         '-t', 30, 'stop', timeout=40)
            except PgError:
                pass
            if not _wait_gone([self.pid], 30):
                self._kill()
        self.pid = None

    def kill_immediate(self):
        self.stop(mode='immediate')

    def promote(self, timeout=60):
        self.run('pg_ctl', '-D', self.data, '-w', '-t', timeout, 'promote',
                 timeout=timeout + 30)
        self.wait_for("SELECT pg_is_in_recovery()", 'f', timeout)

    # -- SQL ----------------------------------------------------------------
    def conninfo(self, dbname='payhook', user='postgres'):
        return 'host=%s port=%d dbname=%s user=%s' % (
            _quote(self.dir), self.port, _quote(dbname), _quote(user))

    def psql(self, sql, dbname='postgres', timeout=60):
        return self.run('psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                        '-h', self.dir, '-p', self.port, '-U', 'postgres',
                        '-d', dbname, '-c', sql, timeout=timeout,
                        password=True)

    def wait_for(self, sql, want, timeout=60, dbname='postgres'):
        """Poll sql until its output (stripped) is want."""
        deadline, got = time.time() + timeout, None
        while time.time() < deadline:
            got = self.psql(sql, dbname).strip()
            if got == want:
                return
            time.sleep(0.1)
        raise self.error(sql, 'gave %r for %ds, not %r' % (got, timeout, want))

    def createdb(self, name):
        self.psql('CREATE DATABASE "%s"' % name.replace('"', '""'))

    def make_standby(self, name, synchronous=True):
        st = Cluster(self.base, name)
        st.password = self.password
        self.run('pg_basebackup', '-h', self.dir, '-p', self.port,
                 '-U', 'postgres', '-D', st.data, '-R', '-X', 'stream',
                 '--checkpoint=fast', timeout=300, password=True)
        st._append_conf([])
        auto = os.path.join(st.data, 'postgresql.auto.conf')
        with open(auto) as fh:
            keep = [l.rstrip('\n') + '\n' for l in fh if not re.match(
                r'\s*(primary_conninfo|synchronous_standby_names)\b', l)]
        ci = 'host=%s port=%d user=postgres application_name=%s' % (
            _quote(self.dir), self.port, name)
        if self.password:
            ci += ' password=' + _quote(self.password)
        ci = ci.replace('\\', '\\\\').replace("'", "''")   # a .conf string
        keep += ["primary_conninfo = '%s'\n" % ci,
                 "synchronous_standby_names = ''\n"]
        with open(auto, 'w') as fh:
            fh.write(''.join(keep))
        st.start()
        if synchronous:
            self.psql("ALTER SYSTEM SET synchronous_standby_names = '%s'"
                      % name)
            self.psql("SELECT pg_reload_conf()")
            self.wait_for("SELECT sync_state FROM pg_stat_replication "
                          "WHERE application_name = '%s'" % name, 'sync')
        return st


@atexit.register
def _cleanup():
    if os.getpid() != _owner:
        return
    for c in reversed(_clusters):
        if c.running():
            try:
                os.kill(c.pid, signal.SIGQUIT)      # immediate shutdown
            except OSError:
                pass
            if not _wait_gone([c.pid], 10):
                c._kill()
    for d in _removals:
        if os.environ.get('PAYHOOK_E2E_KEEP') == '1':
            print('# kept %s' % d)
        else:
            shutil.rmtree(d, ignore_errors=True)
