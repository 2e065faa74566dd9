#!/usr/bin/env python3
"""payhook's benchmark: its cost against the floor (see bench/README.md).

Starts two lighttpd servers on 127.0.0.1 with the same settings, one in
front of payhook.fcgi and one in front of bench/floor (a libfcgi responder
that reads the body and answers a fixed body), loads orders, and drives
each scenario with wrk replaying pre-generated, correctly signed requests
(bench/replay.lua) at 1, 8 and 32 connections:

  A  floor: bench/floor under the same server and settings
  B  new WeChat Pay v2 notifications (MD5), each for a different pending order
  C  the same notifications again (duplicates: the dedup path)
  D  GET /orders/<id> on the merchant API
  E  new notifications of each other provider plugin that is built
  F  bench/commit_floor: one LMDB write transaction and durable commit per
     operation, the store's environment flags, on the disk of the store

The disk of a virtual machine is noisy from one second to the next, and
other work on the machine comes and goes, so every figure comes from short
rounds: A, C, D one after the other (each C and D is compared with the A
just before it), and F, B, E.., F, B, E.., F (each B and E is compared
with the mean of the F before and after it).  A figure is the median over
its rounds, a ratio the median of the ratios within rounds.  Prints one
table and writes the same as JSON into bench/results/, with the machine's
description.

Run by `make bench`, or by hand in the build tree after `make bench`:
python3 bench/run.py [--quick] [--procs N] [--fcgi PATH --label TEXT].
Only 127.0.0.1 is contacted.  Every server is stopped by pid at the end.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get('top_srcdir') or
                         os.path.join(HERE, '..'))
BUILDDIR = os.path.abspath(os.environ.get('top_builddir') or SRCDIR)
PAYHOOK = os.path.join(BUILDDIR, 'payhook')
PAYHOOK_FCGI = os.path.join(BUILDDIR, 'payhook.fcgi')


def tree_path(path):
    """path as the results file keeps it, naming none of this machine's
    folders: relative to the build tree when inside it, else its name."""
    rel = os.path.relpath(os.path.abspath(path), BUILDDIR)
    return os.path.basename(path) if rel.startswith('..') else rel
FLOOR = os.path.join(BUILDDIR, 'bench', 'floor')
COMMIT_FLOOR = os.path.join(BUILDDIR, 'bench', 'commit_floor')
PLUGIN_DIR = os.path.join(BUILDDIR, 'providers', '.libs')
REPLAY = os.path.join(SRCDIR, 'bench', 'replay.lua')
REPLAY_ONCE = os.path.join(SRCDIR, 'bench', 'replay_once.lua')
HOST = '127.0.0.1'

sys.path.insert(0, HERE)
import gen  # noqa: E402  (bench/gen.py: signed bodies of every provider)
from harness import (cmdline, lighttpd_conf, metric,  # noqa: E402
                     proc_children, write_file)

SUCCESS_ACK = gen.WX_SUCCESS_ACK


def log(msg):
    sys.stderr.write('bench: %s\n' % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_kib(pid):
    """(VmRSS, RssAnon) in KiB: all resident pages, and those that are
    the process's own (heap, stacks), not shared libraries or the pages of
    the database file it has mapped."""
    got = {}
    try:
        with open('/proc/%d/status' % pid) as fh:
            for line in fh:
                if line.startswith(('VmRSS:', 'RssAnon:')):
                    got[line.split(':')[0]] = int(line.split()[1])
    except OSError:
        pass
    return got.get('VmRSS'), got.get('RssAnon')


def http(port, method, path, body=None, headers=None, timeout=30):
    import http.client
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException):
        return None, b''
    finally:
        conn.close()


class Lighttpd:
    """lighttpd -D on a free 127.0.0.1 port in front of one FastCGI
    program; the same settings for payhook.fcgi and for the floor."""

    def __init__(self, workdir, name, program, procs, env=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, 'run'), exist_ok=True)
        os.makedirs(os.path.join(self.dir, 'htdocs'), exist_ok=True)
        self.program = program
        self.procs = procs
        self.env = env or {}
        self.proc = None
        self.port = None
        self.errorlog = os.path.join(self.dir, 'error.log')

    def start(self, probe='/healthz'):
        lighttpd = shutil.which('lighttpd') or '/usr/sbin/lighttpd'
        for _ in range(3):
            self.port = free_port()
            conf = os.path.join(self.dir, 'lighttpd.conf')
            with open(conf, 'w') as fh:
                fh.write(lighttpd_conf(
                    self.port, docroot=os.path.join(self.dir, 'htdocs'),
                    uploads=self.dir, errorlog=self.errorlog,
                    program=self.program, env=self.env,
                    socket=os.path.join(self.dir, 'run', 'fcgi.sock'),
                    procs=self.procs, max_request_kib=128,
                    max_connections=1024))
            self.proc = subprocess.Popen(
                [lighttpd, '-D', '-f', conf], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd=self.dir, start_new_session=True)
            deadline = time.time() + 30
            while time.time() < deadline and self.proc.poll() is None:
                status, _ = http(self.port, 'GET', probe, timeout=5)
                if status is not None:
                    return self
                time.sleep(0.1)
            self.stop()
        raise RuntimeError('lighttpd did not start; see %s' % self.errorlog)

    def backends(self):
        if not self.proc:
            return []
        name = os.path.basename(self.program)
        return sorted(p for p in proc_children(self.proc.pid)
                      if name in cmdline(p))

    def stop(self):
        if not self.proc:
            return
        kids = self.backends()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in kids:
            deadline = time.time() + 5
            while os.path.exists('/proc/%d' % pid) and time.time() < deadline:
                time.sleep(0.05)
        self.proc = None


# ---------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------

def write_requests(path, reqs):
    """reqs: (method, path, {header: value}, body bytes) -> one a line."""
    with open(path, 'wb') as fh:
        for method, route, headers, body in reqs:
            hdr = '\x1f'.join('%s: %s' % kv for kv in headers.items())
            line = ('%s\t%s\t%s\t' % (method, route, hdr)).encode() + body
            if b'\n' in line or line.count(b'\t') != 3:
                raise ValueError('a request does not fit on one line')
            fh.write(line + b'\n')


def wrk(port, reqfile, conns, seconds, mode, status, body=None):
    """Runs wrk with bench/replay.lua.  mode "cycle": for `seconds`;
    mode "once": until every request of reqfile is answered, or `seconds`
    if that comes first.  Returns replay.lua's figures plus rate and
    errors."""
    threads = min(conns, 2)
    script = REPLAY
    work = os.path.dirname(reqfile)
    marker = os.path.join(work, 'done')
    if mode == 'once':
        script = os.path.join(work, 'once.lua')
        with open(script, 'w') as fh:
            for part in (REPLAY, REPLAY_ONCE):
                with open(part) as src:
                    fh.write(src.read())
        for t in range(threads):
            try:
                os.unlink('%s.%d' % (marker, t))
            except FileNotFoundError:
                pass
    args = ['wrk', '-t', str(threads), '-c', str(conns), '-d',
            '%ds' % seconds, '--timeout', '10s', '-s', script,
            'http://%s:%d/' % (HOST, port), '--', reqfile, mode,
            str(threads), str(status), marker]
    if body is not None:
        args.append(body.decode())
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if mode == 'once':
        deadline = time.time() + seconds + 60
        while proc.poll() is None and time.time() < deadline:
            if all(os.path.exists('%s.%d' % (marker, t))
                   for t in range(threads)):
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.01)
    try:
        out, err = proc.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    out = out.decode('utf-8', 'replace')
    m = re.search(r'^BENCH (\{.*\})$', out, re.M)
    if not m:
        raise RuntimeError('wrk gave no result:\n%s\n%s' % (
            out[-2000:], err.decode('utf-8', 'replace')[-2000:]))
    res = json.loads(m.group(1))
    res['rate'] = res['requests'] / (res['duration_us'] / 1e6)
    res['errors'] = res['bad'] + res['socket_errors'] + res['timeouts']
    return res


def commit_floor(db, procs, seconds, mode='full'):
    for suffix in ('', '-lock'):
        try:
            os.unlink(db + suffix)
        except FileNotFoundError:
            pass
    r = subprocess.run([COMMIT_FLOOR, '-m', mode, '-p', str(procs), '-s',
                        str(seconds), db], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=seconds + 120)
    if r.returncode != 0 and not r.stdout:
        raise RuntimeError('commit_floor failed: %s' % r.stderr.decode())
    res = json.loads(r.stdout.decode())
    return {'rate': res['rate'], 'requests': res['commits'],
            'p50_us': res['p50_us'], 'p99_us': res['p99_us'],
            'max_us': res['max_us'], 'errors': res['errors'],
            'exhausted': 0}


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------

def sh(args):
    try:
        return subprocess.run(args, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=20
                              ).stdout.decode('utf-8', 'replace').strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def fsync_us(path, n=200):
    """Mean microseconds of a 4 KiB overwrite and fdatasync in path's
    folder: what one flush costs on this disk, now."""
    fn = os.path.join(path, 'fsync.probe')
    fd = os.open(fn, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b'\1' * 65536, 0)
        os.fsync(fd)
        t0 = time.perf_counter()
        for i in range(n):
            os.pwrite(fd, b'\2' * 4096, (i % 16) * 4096)
            os.fdatasync(fd)
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        os.close(fd)
        os.unlink(fn)


def flush_pattern_us(path, pages=32, n=60):
    """Median microseconds of one fdatasync after overwriting `pages` 4 KiB
    pages of a 64 MiB file already on disk: the pages side by side, and
    the pages scattered over the file, as LMDB's commits write them once
    it reuses freed pages (what a flush of a commit costs depends on how
    many separate writes the disk is given, not only on the bytes)."""
    fn = os.path.join(path, 'flush.probe')
    span = 16384
    fd = os.open(fn, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        chunk = b'\1' * (1 << 20)
        for i in range(span * 4096 // len(chunk)):
            os.pwrite(fd, chunk, i * len(chunk))
        os.fsync(fd)
        rng = random.Random(1)
        out = {}
        for name in ('contiguous', 'scattered'):
            ts = []
            for _ in range(n):
                if name == 'contiguous':
                    base = rng.randrange(0, span - pages)
                    where = range(base, base + pages)
                else:
                    where = sorted(rng.sample(range(span), pages))
                for pg in where:
                    os.pwrite(fd, b'\2' * 4096, pg * 4096)
                t0 = time.perf_counter()
                os.fdatasync(fd)
                ts.append(time.perf_counter() - t0)
            out[name] = round(statistics.median(ts) * 1e6, 1)
        return out
    finally:
        os.close(fd)
        os.unlink(fn)


def machine(workdir):
    cpu = ''
    try:
        with open('/proc/cpuinfo') as fh:
            for line in fh:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ''
    try:
        with open('/proc/meminfo') as fh:
            mem = '%d MiB' % (int(fh.readline().split()[1]) // 1024)
    except (OSError, ValueError, IndexError):
        pass
    fs = sh(['findmnt', '-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '-T', workdir])
    pkgs = {}
    for p in ('lighttpd', 'liblmdb0', 'libfcgi0ldbl', 'libfcgi-bin', 'wrk',
              'libxml2', 'libjansson4', 'libssl3'):
        v = sh(['dpkg-query', '-W', '-f=${Version}', p])
        if v:
            pkgs[p] = v
    return {
        'hostname': platform.node(), 'cpu': cpu, 'cores': os.cpu_count(),
        'memory': mem, 'kernel': platform.release(),
        'os': sh(['sh', '-c', '. /etc/os-release && echo "$PRETTY_NAME"']),
        'store_fs': fs, 'packages': pkgs,
        'git': sh(['git', '-C', SRCDIR, 'describe', '--always', '--dirty']),
        'fdatasync_us': round(fsync_us(workdir), 1),
        'fdatasync_32_pages_us': flush_pattern_us(workdir),
    }


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, opts):
        self.o = opts
        tmp = tempfile.gettempdir()
        if len(tmp) > 40:
            tmp = '/tmp'
        self.dir = tempfile.mkdtemp(prefix='payhook-bench-', dir=tmp)
        self.etc = os.path.join(self.dir, 'etc')
        self.token = 'bench-' + os.urandom(12).hex()
        self.providers = []         # gen.Provider of every profile
        self.ph = self.fl = None
        self.seq = 0
        self.served = 0             # requests answered by payhook.fcgi
        self.rss = []               # (label, served, [kib per process])
        self.results = {}           # (scenario, conns) -> [round results]

    # -- set-up -----------------------------------------------------------
    def configure(self):
        os.makedirs(os.path.join(self.etc, 'var'), exist_ok=True)
        os.makedirs(os.path.join(self.etc, 'keys'), exist_ok=True)
        write_file(os.path.join(self.etc, 'keys', 'api.token'),
                  self.token + '\n')
        self.providers = gen.providers(self.etc, PLUGIN_DIR, PAYHOOK,
                                       skip=self.o.skip, log=log)
        core = ['[core]', 'db_path = var/payhook.mdb',
                'map_size_mb = %d' % self.o.map_mb,
                'plugin_dir = %s' % PLUGIN_DIR,
                'api_token_file = keys/api.token',
                'max_body_bytes = 65536', 'log_level = info', '']
        # The notification archive (where the tree has one) must not fill
        # up during a run: a full archive is not what is measured here.
        for extra in (['archive_map_mb = %d' % self.o.archive_mb], []):
            text = '\n'.join(core[:-1] + extra + [''] +
                             [p.config for p in self.providers])
            write_file(os.path.join(self.etc, 'payhook.conf'), text, 0o644)
            r = subprocess.run([PAYHOOK, '-c', os.path.join(
                self.etc, 'payhook.conf'), 'check'], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
            if r.returncode == 0 or (extra and b'archive_map_mb' not in
                                     r.stdout):
                break
        if r.returncode != 0:
            raise RuntimeError('payhook check: %s' % r.stdout.decode())

    def start(self):
        self.ph = Lighttpd(self.dir, 'payhook', self.o.fcgi, self.o.procs,
                           {'PAYHOOK_CONFIG': os.path.join(self.etc,
                                                           'payhook.conf')}
                           ).start()
        self.fl = Lighttpd(self.dir, 'floor', FLOOR, self.o.procs).start(
            probe='/')

    def stop(self):
        for srv in (self.ph, self.fl):
            if srv:
                srv.stop()

    def reqfile(self, name, reqs):
        path = os.path.join(self.dir, name + '.req')
        write_requests(path, reqs)
        return path

    def order_ids(self, tag, n):
        out = []
        for _ in range(n):
            self.seq += 1
            out.append('B%s%08d' % (tag, self.seq))
        return out

    def create_orders(self, orders, srv=None):
        """Creates pending orders through the merchant API (wrk, 32
        connections) of srv (payhook's LMDB server by default): orders is
        [(provider, order id)]; each must answer 201."""
        reqs = [('POST', '/orders', {'Authorization': 'Bearer ' + self.token,
                                     'Content-Type': 'application/json'},
                 json.dumps({'order_id': i, 'amount': prov.amount,
                             'currency': 'CNY', 'profile': prov.profile},
                            separators=(',', ':')).encode())
                for prov, i in orders]
        path = self.reqfile('create', reqs)
        res = wrk((srv or self.ph).port, path, 32, 300, 'once', 201)
        self.served += res['requests']
        if res['bad'] or res['sent'] != len(orders):
            raise RuntimeError('creating %d orders: %r' % (len(orders), res))

    def run_wrk(self, srv, reqfile, conns, mode, status, body):
        res = wrk(srv.port, reqfile, conns, self.o.seconds, mode, status,
                  body)
        if srv is self.ph:
            self.served += res['requests']
        return res

    @staticmethod
    def scenario_of(prov, first, suffix=''):
        return ('B' if prov is first else 'E:' + prov.name) + suffix

    def sample_rss(self, label):
        pids = self.ph.backends()
        vals = [rss_kib(p) for p in pids]
        self.rss.append({'after': label, 'served': self.served,
                         'rss_kib': [v[0] for v in vals],
                         'anon_kib': [v[1] for v in vals]})

    STORE_COUNTERS = ('payhook_store_group_commits_total',
                      'payhook_store_group_facts_total',
                      'payhook_store_commits_total',
                      'payhook_store_commit_written_bytes_total')

    def store_counts(self):
        """The store's counters so far, from /metrics: group commits and
        the facts they carried (facts over commits is notifications per
        durable flush), every write commit and the bytes it wrote."""
        status, body = http(self.ph.port, 'GET', '/metrics')
        text = body.decode('utf-8', 'replace') if status == 200 else ''
        return [metric(text, name) for name in self.STORE_COUNTERS]

    def run_new(self, prov, pool, conns):
        """A round of new notifications, with the facts each durable
        commit carried in it and the pages each commit wrote."""
        gc0, gf0, c0, b0 = self.store_counts()
        res = self.run_wrk(self.ph, pool, conns, 'once', prov.ok_status,
                           prov.ok_body)
        gc1, gf1, c1, b1 = self.store_counts()
        if None not in (gc0, gf0, gc1, gf1) and gc1 > gc0:
            res['facts_per_commit'] = (gf1 - gf0) / (gc1 - gc0)
        if None not in (c0, b0, c1, b1) and c1 > c0:
            res['pages_per_commit'] = (b1 - b0) / 4096 / (c1 - c0)
        return res

    def record(self, scen, conns, res):
        self.results.setdefault((scen, conns), []).append(res)
        log('%-18s c=%-2d %8.1f/s p50 %6.2f ms p99 %7.2f ms errors %d%s' % (
            scen, conns, res['rate'], res['p50_us'] / 1e3,
            res['p99_us'] / 1e3, res['errors'],
            ' (ran out after %.1f s)' % (res['duration_us'] / 1e6)
            if res.get('exhausted') else ''))

    def prepare_dups(self):
        """The set C replays and D reads: orders paid once already."""
        wx = self.providers[0]
        ids = self.order_ids('dup', self.o.dup_orders)
        self.create_orders([(wx, i) for i in ids])
        self.dup_ids = ids
        reqs = [wx.notification(i) for i in ids]
        self.c_file = self.reqfile('c', reqs)
        res = wrk(self.ph.port, self.c_file, 8, 300, 'once', 200,
                  SUCCESS_ACK)
        self.served += res['requests']
        if res['bad']:
            raise RuntimeError('first delivery of the C set: %r' % res)
        self.d_file = self.reqfile('d', [
            ('GET', '/orders/' + i, {'Authorization': 'Bearer ' + self.token},
             b'') for i in ids])
        self.a_file = self.reqfile('a', [
            ('POST', '/notify/floor', {'Content-Type': 'text/xml'}, r[3])
            for r in reqs])

    def new_pools(self, conns, srv=None, providers=None, suffix=''):
        """For every round of this level and every provider (of
        providers; default all), a file of new notifications for orders
        made first on srv (default payhook's LMDB server).  How many: what
        the fastest earlier round of the provider's scenario (its name and
        suffix) sent in a round, with room to spare; a round that runs out
        ends early and counts as the shorter round it was."""
        want, orders = {}, []
        for prov in providers or self.providers:
            scen = self.scenario_of(prov, self.providers[0], suffix)
            done = [r['rate'] for (sc, c), rs in self.results.items()
                    if sc == scen for r in rs]
            est = max(done + [self.o.first_estimate]) * 1.5
            n = int(est * self.o.seconds) + 50 * conns
            want[prov.name] = [self.order_ids(prov.tag, n)
                               for _ in range(self.o.disk_rounds)]
            orders += [(prov, i) for ids in want[prov.name] for i in ids]
        self.create_orders(orders, srv)
        pools = {}
        for prov in providers or self.providers:
            pools[prov.name] = [
                self.reqfile('new-%s-%d' % (prov.tag, k),
                             [prov.notification(i) for i in ids])
                for k, ids in enumerate(want[prov.name])]
        return pools

    def run(self):
        o = self.o
        self.configure()
        self.start()
        log('servers up: payhook on %d (%d processes), floor on %d' % (
            self.ph.port, o.procs, self.fl.port))
        self.prepare_dups()
        self.sample_rss('load')
        fdb = os.path.join(self.dir, 'floor.mdb')
        for conns in o.levels:
            # CPU-bound paths: rounds of A, C, D one after the other, so
            # that each C and D has an A measured under the same load.
            for _ in range(o.cpu_rounds):
                self.record('A', conns, self.run_wrk(
                    self.fl, self.a_file, conns, 'cycle', 200, SUCCESS_ACK))
                self.record('C', conns, self.run_wrk(
                    self.ph, self.c_file, conns, 'cycle', 200, SUCCESS_ACK))
                self.record('D', conns, self.run_wrk(
                    self.ph, self.d_file, conns, 'cycle', 200, None))
            self.sample_rss('A/C/D c=%d' % conns)
            # Disk-bound paths: F, then each provider's new notifications,
            # then F again, and so on: each round sits between two F.
            # F runs as many committing processes as payhook can have.
            pools = self.new_pools(conns)
            fprocs = min(conns, o.procs)
            self.record('F', conns, commit_floor(fdb, fprocs, o.seconds))
            for k in range(o.disk_rounds):
                for prov in self.providers:
                    scen = self.scenario_of(prov, self.providers[0])
                    self.record(scen, conns, self.run_new(
                        prov, pools[prov.name][k], conns))
                self.record('F', conns, commit_floor(fdb, fprocs,
                                                     o.seconds))
            self.sample_rss('B/E c=%d' % conns)
        # The memory target: at least 100 000 requests, then see whether
        # the processes grew over the last of them (from this sample on,
        # however many were served already).
        self.sample_rss('soak')
        while self.served < o.rss_requests:
            self.run_wrk(self.ph, self.c_file, 32, 'cycle', 200, SUCCESS_ACK)
            self.run_wrk(self.ph, self.d_file, 32, 'cycle', 200, None)
            self.sample_rss('soak')
        self.run_wrk(self.ph, self.c_file, 32, 'cycle', 200, SUCCESS_ACK)
        self.run_wrk(self.ph, self.d_file, 32, 'cycle', 200, None)
        self.sample_rss('final')
        if not o.no_postgresql:
            self.run_pg()

    def run_pg(self):
        """B, C and D again with store = postgresql, side by side with
        LMDB: the same requests to a second lighttpd and payhook.fcgi
        whose store is a private PostgreSQL cluster made here
        (tests/e2e/pgcluster.py: initdb in a temporary folder, a Unix
        socket, fsync and synchronous_commit on)."""
        sys.path.insert(0, os.path.join(SRCDIR, 'tests', 'e2e'))
        import pgcluster
        why = pgcluster.available()
        if why:
            log('PostgreSQL: left out (%s)' % why)
            return
        o, wx, srv = self.o, self.providers[0], None
        cl = pgcluster.Cluster(None, 'bench').init().start()
        try:
            cl.createdb('payhook')
            with open(os.path.join(self.etc, 'payhook.conf')) as fh:
                text = fh.read()
            text = text.replace('[core]\n', '[core]\nstore = postgresql\n'
                                'pg_conninfo = %s\n' % cl.conninfo(), 1)
            text = text.replace('db_path = var/payhook.mdb',
                                'db_path = var/pg/payhook.mdb', 1)
            conf = os.path.join(self.etc, 'payhook-pg.conf')
            write_file(conf, text, 0o644)
            r = subprocess.run([PAYHOOK, '-c', conf, 'check'],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise RuntimeError('payhook check (PostgreSQL): %s' %
                                   r.stdout.decode())
            srv = Lighttpd(self.dir, 'payhook-pg', o.fcgi, o.procs,
                           {'PAYHOOK_CONFIG': conf}).start()
            log('PostgreSQL: payhook on %d (%d processes)' % (srv.port,
                                                             o.procs))
            self.create_orders([(wx, i) for i in self.dup_ids], srv)
            res = wrk(srv.port, self.c_file, 8, 300, 'once', 200,
                      SUCCESS_ACK)
            if res['bad']:
                raise RuntimeError('first delivery of the C set '
                                   '(PostgreSQL): %r' % res)
            for conns in o.levels:
                for _ in range(o.cpu_rounds):
                    self.record('C:pg', conns, self.run_wrk(
                        srv, self.c_file, conns, 'cycle', 200, SUCCESS_ACK))
                    self.record('D:pg', conns, self.run_wrk(
                        srv, self.d_file, conns, 'cycle', 200, None))
                pools = self.new_pools(conns, srv, [wx], ':pg')
                for k in range(o.disk_rounds):
                    self.record('B:pg', conns, self.run_wrk(
                        srv, pools[wx.name][k], conns, 'once',
                        wx.ok_status, wx.ok_body))
        finally:
            if srv is not None:
                srv.stop()
            cl.stop()

    def cleanup(self):
        self.stop()
        if os.environ.get('PAYHOOK_BENCH_KEEP') == '1':
            log('kept %s' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def summarise(rounds):
    """Median rate, p50 and p99 over the rounds; the largest max; errors
    summed."""
    return {
        'rate': statistics.median(r['rate'] for r in rounds),
        'p50_us': statistics.median(r['p50_us'] for r in rounds),
        'p99_us': statistics.median(r['p99_us'] for r in rounds),
        'max_us': max(r['max_us'] for r in rounds),
        'errors': sum(r['errors'] for r in rounds),
        'requests': sum(r['requests'] for r in rounds),
        'rounds': [round(r['rate'], 1) for r in rounds],
    }


def ratios_of(results, conns, providers, disk_rounds):
    """Each ratio is the median over rounds of the ratio within a round:
    C and D against the A just before them, B and E against the mean of
    the F before and after them."""
    out = {}
    a = [r['rate'] for r in results.get(('A', conns), [])]
    f = [r['rate'] for r in results.get(('F', conns), [])]
    for scen in ('C', 'D'):
        x = [r['rate'] for r in results.get((scen, conns), [])]
        if a and x:
            out[scen + '/A'] = statistics.median(
                xi / ai for xi, ai in zip(x, a))
    for scen in ['B'] + ['E:' + p.name for p in providers[1:]]:
        x = [r['rate'] for r in results.get((scen, conns), [])]
        pairs = [(x[k], (f[k] + f[k + 1]) / 2) for k in range(len(x))
                 if k + 1 < len(f)]
        if pairs:
            out[scen + '/F'] = statistics.median(xi / fi for xi, fi in pairs)
    return out


# The hot path's targets: (label, value, met?) from the summary and the
# ratios; instructions are measured by make bench-profile (profile.py).
TARGET_RATIO_NEW = 2.0          # B / F, 8 and 32 connections
TARGET_RATIO_CPU = 0.8          # C / A and D / A
TARGET_P99_MS = 10.0            # B, C, D at 32 connections
TARGET_FACTS_PER_COMMIT = 4.0   # at 32 connections
TARGET_ANON_KIB = 8 * 1024      # RssAnon per process
FLAT_KIB = 256                  # growth over the soak that still is flat


def targets(summary, ratios, rounds, rss, levels):
    rows = []

    def row(label, value, fmt, met):
        rows.append('  %-50s %10s  %s' % (
            label, fmt % value if value is not None else '-',
            'not measured' if value is None else '' if met is None else
            ('met' if met(value) else 'not met')))

    for conns in (8, 32):
        if conns in levels:
            row('B / F, %d connections (>= %.1f)' % (conns, TARGET_RATIO_NEW),
                ratios[conns].get('B/F'), '%.2f',
                lambda v: v >= TARGET_RATIO_NEW)
    for conns in sorted(set(levels) | {32}):
        fpc = [r['facts_per_commit'] for r in rounds.get(('B', conns), [])
               if 'facts_per_commit' in r]
        if conns != 32 and not fpc:
            continue
        # The target is at 32 connections; fewer are shown, not judged.
        row('notifications per durable flush, %d conns%s' % (
            conns, ' (>= %d)' % TARGET_FACTS_PER_COMMIT
            if conns == 32 else ''),
            statistics.median(fpc) if fpc else None, '%.2f',
            (lambda v: v >= TARGET_FACTS_PER_COMMIT) if conns == 32 else None)
    for conns in levels:
        for k in ('C/A', 'D/A'):
            row('%s, %d connections (>= %.1f)' % (k, conns, TARGET_RATIO_CPU),
                ratios[conns].get(k), '%.2f',
                lambda v: v >= TARGET_RATIO_CPU)
    for scen in ('B', 'C', 'D'):
        r = summary.get((scen, 32))
        row('p99 of %s, 32 connections (<= %.0f ms)' % (scen, TARGET_P99_MS),
            r['p99_us'] / 1e3 if r else None, '%.2f ms',
            lambda v: v <= TARGET_P99_MS)
    anon = [a for s in rss for a in s['anon_kib'] if a is not None]
    row('RssAnon per process (<= %d MiB)' % (TARGET_ANON_KIB // 1024),
        max(anon) if anon else None, '%d KiB',
        lambda v: v <= TARGET_ANON_KIB)
    soak = [s for s in rss if s['after'] in ('soak', 'final')]
    if len(soak) >= 2:
        grew = max(max(a - b for a, b in zip(soak[-1]['anon_kib'],
                                             soak[0]['anon_kib'])), 0)
    else:
        grew = None
    row('RssAnon growth over the soak (flat: <= %d KiB)' % FLAT_KIB,
        grew, '%d KiB', lambda v: v <= FLAT_KIB)
    rows.append('  instructions per request (new <= 250k, duplicate <= '
                '100k, order read <= 80k): make bench-profile')
    for conns in sorted(set(levels) | {32}):
        ppc = [r['pages_per_commit'] for r in rounds.get(('B', conns), [])
               if 'pages_per_commit' in r]
        if ppc:
            # Shown, not judged: no target is set for it.
            row('pages written per commit (4 KiB), B, %d conns' % conns,
                statistics.median(ppc), '%.1f', None)
    return rows


def report(b, started, opts):
    summary = {k: summarise(v) for k, v in b.results.items()}
    ratios = {c: ratios_of(b.results, c, b.providers, opts.disk_rounds)
              for c in opts.levels}
    names = {'A': 'A floor (libfcgi)', 'B': 'B new WeChat v2',
             'C': 'C duplicates', 'D': 'D GET /orders/<id>',
             'F': 'F commit floor', 'B:pg': 'B PostgreSQL',
             'C:pg': 'C PostgreSQL', 'D:pg': 'D PostgreSQL'}
    order = ['A', 'B', 'C', 'D'] + sorted(set(
        k[0] for k in summary if k[0].startswith('E:'))) + ['F', 'B:pg',
                                                            'C:pg', 'D:pg']
    lines = ['%-22s %5s %9s %8s %8s %8s %6s  %s' % (
        'scenario', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'max ms',
        'errors', 'rounds (req/s)')]
    for conns in opts.levels:
        for scen in order:
            r = summary.get((scen, conns))
            if r is None:
                continue
            lines.append('%-22s %5d %9.0f %8.2f %8.2f %8.1f %6d  %s' % (
                names.get(scen, 'E ' + scen[2:]), conns, r['rate'],
                r['p50_us'] / 1e3, r['p99_us'] / 1e3, r['max_us'] / 1e3,
                r['errors'], ' '.join('%.0f' % x for x in r['rounds'])))
    lines.append('')
    lines.append('ratios (median over rounds of the ratio within a round):')
    for conns in opts.levels:
        lines.append('  c=%-2d  ' % conns + '  '.join(
            '%s %.2f' % (k, v) for k, v in ratios[conns].items()))
    pg = [(conns, scen) for conns in opts.levels for scen in 'BCD'
          if (scen + ':pg', conns) in summary and (scen, conns) in summary]
    if pg:
        lines.append('')
        lines.append('PostgreSQL beside LMDB (req/s of the PostgreSQL store '
                     'over the LMDB one; p99 ms):')
        for conns in opts.levels:
            lines.append('  c=%-2d  ' % conns + '  '.join(
                '%s %.2f (p99 %.1f)' % (
                    scen, summary[(scen + ':pg', conns)]['rate'] /
                    summary[(scen, conns)]['rate'],
                    summary[(scen + ':pg', conns)]['p99_us'] / 1e3)
                for c, scen in pg if c == conns))
    lines.append('')
    lines.append('targets:')
    lines.extend(targets(summary, ratios, b.results, b.rss, opts.levels))
    lines.append('')
    lines.append('RSS of each payhook.fcgi process, KiB: VmRSS (RssAnon: '
                 'its own memory; the rest is shared libraries and mapped '
                 'database pages)')
    for s in b.rss:
        lines.append('  after %-12s %7d requests: %s' % (
            s['after'], s['served'], '  '.join(
                '%s (%s)' % (r, a) for r, a in zip(s['rss_kib'],
                                                   s['anon_kib']))))
    text = '\n'.join(lines)
    out = {
        'date': started.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'machine': b.machine,
        'settings': {'procs': opts.procs, 'seconds': opts.seconds,
                     'levels': opts.levels, 'disk_rounds': opts.disk_rounds,
                     'cpu_rounds': opts.cpu_rounds,
                     'store_sync': b.store_sync,
                     'fcgi': tree_path(opts.fcgi),
                     'providers': [p.name for p in b.providers]},
        'scenarios': [dict(v, scenario=k[0], conns=k[1])
                      for k, v in summary.items()],
        'rounds': [dict(r, scenario=k[0], conns=k[1])
                   for k, v in b.results.items() for r in v],
        'ratios': {str(k): v for k, v in ratios.items()},
        'rss': b.rss,
        'served': b.served,
        'table': text,
    }
    return text, out


def store_sync_mode():
    """Which commit the built store does, from its own declaration."""
    try:
        with open(os.path.join(SRCDIR, 'src', 'store', 'store_lmdb.c')) as fh:
            m = re.search(r'^#define STORE_SHARED_SYNC\s+(\d)', fh.read(),
                          re.M)
    except OSError:
        m = None
    if m is None:
        return 'full (two flushes inside the commit)'
    return ('shared (MDB_NOMETASYNC, explicit sync before the answer)'
            if m.group(1) == '1' else 'full (two flushes inside the commit)')


def show(path):
    """Prints the table of a result file, computed again from its
    rounds (so that files of earlier versions print the same way)."""
    with open(path) as fh:
        saved = json.load(fh)
    st = saved['settings']
    b = argparse.Namespace(results={}, rss=saved['rss'], machine=saved[
        'machine'], store_sync=st['store_sync'], served=saved['served'],
        providers=[argparse.Namespace(name=n) for n in st['providers']])
    for r in saved['rounds']:
        b.results.setdefault((r['scenario'], r['conns']), []).append(r)
    opts = argparse.Namespace(**st)
    opts.fcgi = st.get('fcgi', '')
    text, _ = report(b, datetime.datetime.strptime(
        saved['date'], '%Y-%m-%dT%H:%M:%SZ'), opts)
    print('payhook bench, %s, %s (%s cores); store commit: %s; load '
          'average before: %s' % (saved['date'], b.machine['cpu'],
                                  b.machine['cores'], b.store_sync,
                                  b.machine.get('loadavg_before', ['?'])[0]))
    print(text)


def int_option(ap, flag, default, text):
    """An integer option of ap whose help, text, ends with its default."""
    ap.add_argument(flag, type=int, default=default,
                    help=text + ' (%(default)d)')


def _on_signal(signum, _frame):
    raise KeyboardInterrupt('signal %d' % signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    int_option(ap, '--procs', 4, 'payhook.fcgi (and floor) processes')
    int_option(ap, '--seconds', 2, 'seconds per round')
    ap.add_argument('--levels', default='1,8,32',
                    help='connection counts (1,8,32)')
    int_option(ap, '--disk-rounds', 3, 'rounds of B and E, interleaved with F')
    int_option(ap, '--cpu-rounds', 3, 'rounds of A, C and D')
    int_option(ap, '--dup-orders', 2000,
               'orders in the set C replays and D reads')
    ap.add_argument('--first-estimate', type=int, default=800,
                    help='notifications/s foreseen before the first round')
    ap.add_argument('--rss-requests', type=int, default=100000,
                    help='requests served before the last RSS sample')
    ap.add_argument('--map-mb', type=int, default=2048)
    ap.add_argument('--archive-mb', type=int, default=8192,
                    help='archive_map_mb, where the tree has an archive')
    ap.add_argument('--skip', default='',
                    help='providers of E to leave out, comma-separated')
    ap.add_argument('--no-postgresql', action='store_true',
                    help='leave out B, C and D on a PostgreSQL store')
    ap.add_argument('--quick', action='store_true',
                    help='2-second rounds, one of each, 8 connections only')
    ap.add_argument('--out', default=os.path.join(BUILDDIR, 'bench',
                                                  'results'))
    ap.add_argument('--fcgi', default=PAYHOOK_FCGI,
                    help='the payhook.fcgi to measure (this build\'s)')
    ap.add_argument('--label', default=None,
                    help='its store commit, for the report (default: what '
                    'src/store/store_lmdb.c declares)')
    ap.add_argument('--show', metavar='JSON',
                    help='print the table of an earlier run\'s JSON, again')
    opts = ap.parse_args()
    if opts.show:
        show(opts.show)
        return
    opts.levels = [int(x) for x in opts.levels.split(',')]
    opts.skip = [x for x in opts.skip.split(',') if x]
    if opts.quick:
        opts.seconds, opts.disk_rounds, opts.cpu_rounds = 2, 2, 1
        opts.levels, opts.rss_requests = [8], 0
    for prog in (PAYHOOK, opts.fcgi, FLOOR, COMMIT_FLOOR):
        if not os.access(prog, os.X_OK):
            sys.exit('bench: %s is not built (run make bench)' % prog)
    if shutil.which('wrk') is None:
        sys.exit('bench: wrk is not installed (apt-get install wrk)')
    started = datetime.datetime.now(datetime.timezone.utc)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    b = Bench(opts)
    t0 = time.time()
    try:
        b.machine = machine(b.dir)
        b.store_sync = opts.label or store_sync_mode()
        b.machine['loadavg_before'] = os.getloadavg()
        log('store commit: %s; one fdatasync here: %.0f us' % (
            b.store_sync, b.machine['fdatasync_us']))
        b.run()
    finally:
        b.cleanup()
    text, out = report(b, started, opts)
    out['elapsed_s'] = round(time.time() - t0, 1)
    os.makedirs(opts.out, exist_ok=True)
    path = os.path.join(opts.out, 'bench-%s.json' %
                        started.strftime('%Y%m%dT%H%M%SZ'))
    with open(path, 'w') as fh:
        json.dump(out, fh, indent=1)
        fh.write('\n')
    print('payhook bench, %s, %s (%s cores), %s; store commit: %s' % (
        out['date'], out['machine']['cpu'], out['machine']['cores'],
        out['machine']['store_fs'], b.store_sync))
    print('one fdatasync: %.0f us; %d payhook.fcgi processes; %d s rounds; '
          'load average before: %.2f' % (
              out['machine']['fdatasync_us'], opts.procs, opts.seconds,
              out['machine']['loadavg_before'][0]))
    f32 = out['machine']['fdatasync_32_pages_us']
    print('fdatasync after 32 pages written: %.0f us side by side, %.0f us '
          'scattered' % (f32['contiguous'], f32['scattered']))
    print(text)
    print('\nwritten: %s (%.0f s)' % (os.path.relpath(path), out['elapsed_s']))


if __name__ == '__main__':
    main()
