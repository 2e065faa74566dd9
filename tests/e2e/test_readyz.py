#!/usr/bin/env python3
"""End to end: GET /readyz, readiness as a load balancer asks for it.

Under lighttpd: a fresh instance is ready; a 1 MiB database filled with
orders (as in test_store_full.py) turns /readyz to 503 with store_fill
once more than ready_max_fill of its map is in use, then with store_full
once writes fail, while /healthz (liveness) stays 200 and `payhook check`
warns on stdout and exits 0.  A metrics file that cannot be opened and an
archive that cannot be written are reasons too, named without their
paths.  A full disk under the database and a metrics file that stops
taking writes are reasons, not crashes, and pass once mended.  /readyz
needs no token; its reasons are "code: text".
"""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Instance  # noqa: E402


def ready(inst):
    """(status, body as JSON or None, codes of the reasons)."""
    r = inst.request('GET', inst.path('/readyz'))
    body = r.json
    codes = [x.split(':', 1)[0] for x in (body or {}).get('reasons', [])
             if isinstance(x, str)]
    return r.status, body, codes, r


def test_fill(tap):
    inst = Instance(tap, 'readyfill', core={'map_size_mb': '1'})
    inst.start()
    status, body, codes, r = ready(inst)
    tap.is_((status, body), (200, {'status': 'ready'}),
            'a fresh instance: 200 {"status":"ready"}', r.describe())
    p = inst.cli('check')
    tap.ok(p.returncode == 0 and 'warning' not in p.stdout,
           'payhook check: no warning on an empty database', p.stdout)

    seen = []

    def probe(i):
        if i % 20 == 0 and not seen:
            status, body, codes, _r = ready(inst)
            if status != 200:
                seen.append((status, body, codes, i + 1))

    orders, full = harness.fill_store(inst, 'RDY', probe)
    n = len(orders)
    seen_fill = seen[0] if seen else None
    tap.ok(seen_fill is not None and seen_fill[0] == 503 and
           seen_fill[2] == ['store_fill'], '/readyz turned 503 with '
           'store_fill before the store was full (after %s of %d orders)'
           % (seen_fill and seen_fill[3], n), seen_fill)
    if seen_fill:
        tap.is_(seen_fill[1].get('status'), 'not_ready', '... not_ready')
        tap.like(seen_fill[1]['reasons'][0], r'^store_fill: 0\.9\d\d of the '
                 r'database map is in use, above ready_max_fill 0\.95: raise '
                 r'map_size_mb$', '... saying how full, and what to do')
    tap.ok(full is not None and full.status in (503, 507),
           'then the store is full: order creation refused', full and
           full.describe())
    status, body, codes, r = ready(inst)
    tap.is_(status, 503, 'a full store: /readyz 503', r.describe())
    tap.ok('store_full' in codes and 'store_fill' in codes,
           '... store_full (writes fail) and store_fill', codes)
    full_reason = [x for x in (body or {}).get('reasons', [])
                   if x.startswith('store_full:')]
    tap.ok(full_reason and re.search(r'since \d{4}-\d\d-\d\dT', full_reason[0]),
           '... since when', full_reason)
    tap.ok(inst.dir not in r.body.decode('utf-8', 'replace'),
           '... naming no path')
    h = inst.request('GET', inst.path('/healthz'))
    tap.is_(h.status, 200, '/healthz stays 200: liveness, not readiness',
            h.describe())
    r = inst.request('HEAD', inst.path('/readyz'))
    tap.is_(r.status, 503, 'HEAD /readyz: 503 too')
    p = inst.cli('check')
    tap.is_(p.returncode, 0, 'payhook check on the full store: exit 0',
            p.stderr[-400:])
    tap.like(p.stdout, r'payhook: warning: database \S+ is \d+\.\d% full, '
             r'above ready_max_fill \(0\.95\): GET /readyz answers 503; '
             r'raise map_size_mb \(now 1\)\n', '... and warns on stdout',
             p.stdout)
    log = inst.server.read_log()
    lines = [l for l in log.splitlines() if 'route=readyz' in l and
             'status=503' in l]
    tap.ok(lines and all(' level=warn ' in l and 'outcome=not_ready' in l
                         for l in lines),
           'a 503 of /readyz is logged at warn, outcome not_ready',
           *lines[:2])
    # payhook check wrote once (what /readyz waits for, and a host its
    # balancer took out gets no traffic to do it): a small write still
    # fits, so store_full is gone, store_fill says the rest.
    status, body, codes, r = ready(inst)
    tap.ok(status == 503 and codes == ['store_fill'], 'after payhook '
           'check: store_full gone (its write went through), store_fill '
           'left', r.describe())
    inst.stop()
    inst.core_extra['map_size_mb'] = '8'
    inst.write()
    inst.start()
    status, body, codes, r = ready(inst)
    tap.is_(status, 200, '... map_size_mb raised as it says, restarted: '
            '/readyz 200', r.describe())
    inst.cleanup()


def test_files(tap):
    inst = Instance(tap, 'readyfiles')
    # What every request writes beside the database, made unusable
    # (as root no mode keeps a file from being written: a folder where
    # the metrics file goes, a file where the archive folder goes).
    os.makedirs(inst.db + '-metrics')
    with open(inst.db + '-archive', 'w') as fh:
        fh.write('not a folder\n')
    inst.start()
    status, body, codes, r = ready(inst)
    tap.is_(status, 503, 'metrics and archive unusable: /readyz 503',
            r.describe())
    tap.is_(sorted(codes), ['archive_not_writable', 'metrics_not_writable'],
            '... both named')
    tap.ok('could not be opened: Is a directory' in r.body.decode(
        'utf-8', 'replace'), '... the metrics file saying why (the '
        'system\'s reason: a full disk says so)', r.body)
    tap.ok(inst.dir not in r.body.decode('utf-8', 'replace'),
           '... without their paths', r.body)
    tap.is_(inst.request('GET', inst.path('/healthz')).status, 200,
            '/healthz stays 200')
    tap.is_(inst.request('GET', inst.path('/readyz'),
                         headers={'Authorization': 'Bearer nope'}).status,
            503, 'no token is needed (a wrong one changes nothing)')
    inst.stop()
    os.rmdir(inst.db + '-metrics')
    os.unlink(inst.db + '-archive')
    inst.start()
    status, body, codes, r = ready(inst)
    tap.is_((status, body), (200, {'status': 'ready'}),
            'fixed and restarted: 200 ready', r.describe())
    inst.cleanup()


def crashes(inst):
    """The web server's lines about a backend that died by a signal."""
    path = os.path.join(inst.dir, 'lighttpd-error.log')
    text = open(path).read() if os.path.exists(path) else ''
    return [x for x in text.splitlines() if 'signalled' in x]


def test_disk_full(tap):
    """The disk under the database fills up (map_size_mb is far larger):
    writes are refused so that providers retry, /readyz says store_full
    and archive_not_writable, nothing dies, and all comes back once room
    is freed."""
    mnt = tempfile.mkdtemp(prefix='payhook-e2e-full-')
    if os.geteuid() != 0 or subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs',
             mnt], stderr=subprocess.DEVNULL).returncode != 0:
        os.rmdir(mnt)
        tap.skip('disk full', 'a small file system needs root (mount)')
        return
    inst = None
    try:
        inst = Instance(tap, 'readydisk', core={
            'db_path': mnt + '/payhook.mdb', 'map_size_mb': '64'})
        inst.start()
        for i in range(3):
            inst.create_order('DF%d' % i, 100)
            inst.pay('DF%d' % i, 100, harness.txn_id('df%d' % i))
        st = os.statvfs(mnt)
        with open(os.path.join(mnt, 'filler'), 'wb') as f:
            try:
                f.write(b'\0' * (st.f_bavail * st.f_frsize))
            except OSError:
                pass
        answers = []
        for i in range(3, 40):
            inst.create_order('DF%d' % i, 100)
            r, _ = inst.pay('DF%d' % i, 100, harness.txn_id('df%d' % i))
            answers.append(r)
        refused = [r for r in answers if r.status != 200]
        tap.ok(refused and all(b'SUCCESS' not in r.body for r in refused),
               'disk full: notifications refused so that the provider '
               'retries', [r.describe() for r in answers[-2:]])
        status, body, codes, r = ready(inst)
        tap.ok(status == 503 and 'store_full' in codes and
               'archive_not_writable' in codes,
               'disk full: /readyz 503 store_full and archive_not_writable',
               r.describe())
        tap.ok(re.search(r'free room', r.body.decode('utf-8', 'replace'))
               is not None and mnt not in r.body.decode('utf-8', 'replace'),
               '... saying what to do, naming no path', r.describe())
        tap.is_(crashes(inst), [], 'disk full: no payhook.fcgi died')
        # A pass that writes nothing (nothing due) proves nothing: the
        # disk still full, the host stays out of service.
        inst.cli('sweep')
        inst.cli('check')
        status, body, codes, r = ready(inst)
        tap.ok(status == 503 and 'store_full' in codes, 'disk still full: '
               'a sweeper pass and payhook check leave /readyz 503 '
               'store_full', r.describe())
        os.unlink(os.path.join(mnt, 'filler'))
        # Nothing comes while a load balancer holds traffic back: the
        # sweeper's pass writes, and /readyz tries the archive itself.
        inst.cli('sweep')
        status, body, codes, r = ready(inst)
        tap.is_(status, 200, 'room freed: ready again after a sweeper '
                'pass, before any notification', r.describe())
        inst.create_order('DFX', 100)
        pay, _ = inst.pay('DFX', 100, harness.txn_id('dfx'))
        tap.is_((pay.status, (inst.order('DFX') or {}).get('state')),
                (200, 'PAID'), '... and a notification is applied',
                pay.describe())
    finally:
        if inst is not None:
            inst.cleanup()
        subprocess.run(['umount', mnt])
        os.rmdir(mnt)


def immutable(tap, inst, path, what):
    """Makes path immutable (chattr +i); else skips what, the instance
    cleaned up."""
    if os.geteuid() == 0 and subprocess.run(
            ['chattr', '+i', path], stderr=subprocess.DEVNULL).returncode == 0:
        return True
    inst.cleanup()
    tap.skip(what, 'chattr +i needs root and a file system that has it')
    return False


def test_unwritable(tap):
    """The database file refuses writes for another reason than room
    (made immutable, as a read-only file system or an I/O error would):
    notifications are refused so that the provider retries, /readyz says
    store_unwritable, and all comes back once the file takes writes."""
    inst = Instance(tap, 'readyro')
    inst.start()
    inst.create_order('RO1', 100)
    db = inst.db
    if not immutable(tap, inst, db, 'store unwritable'):
        return
    try:
        r, _ = inst.pay('RO1', 100, harness.txn_id('ro1'))
        tap.ok(r.status != 200 or b'SUCCESS' not in r.body, 'the database '
               'file immutable: the notification refused so that the '
               'provider retries', r.describe())
        status, body, codes, r = ready(inst)
        tap.ok(status == 503 and 'store_unwritable' in codes,
               '... /readyz 503 store_unwritable', r.describe())
        inst.cli('sweep')
        status, body, codes, r = ready(inst)
        tap.ok(status == 503 and 'store_unwritable' in codes,
               '... still, after a sweeper pass', r.describe())
    finally:
        subprocess.run(['chattr', '-i', db])
    inst.cli('sweep')
    status, body, codes, r = ready(inst)
    tap.is_(status, 200, 'the file takes writes again: ready after a '
            'sweeper pass', r.describe())
    r, _ = inst.pay('RO1', 100, harness.txn_id('ro1'))
    tap.is_((r.status, (inst.order('RO1') or {}).get('state')),
            (200, 'PAID'), '... and the notification is applied',
            r.describe())
    inst.cleanup()


def test_metrics_refused(tap):
    """The metrics file refuses writes while payhook.fcgi has it mapped
    (made immutable; a file system remounted read-only does the same):
    not a crash, but /readyz metrics_not_writable, and ready again once
    the file can be written."""
    inst = Instance(tap, 'readymetrics')
    inst.start()
    m = inst.db + '-metrics'
    if not immutable(tap, inst, m, 'metrics file refused'):
        return
    try:
        got = [ready(inst) for _ in range(4)]
    finally:
        subprocess.run(['chattr', '-i', m])
    tap.ok(all(g[0] == 503 and 'metrics_not_writable' in g[2] for g in got),
           'metrics file immutable: /readyz 503 metrics_not_writable',
           [g[3].describe() for g in got])
    tap.is_(crashes(inst), [], '... and no payhook.fcgi died')
    time.sleep(1.2)
    got = [ready(inst) for _ in range(4)]
    tap.ok(all(g[0] == 200 for g in got), 'writable again: ready within '
           'a second, without a restart', [g[3].describe() for g in got])

    # The same under sweep --watch, whose passes the alerts read.
    sweeper = subprocess.Popen(
        [harness.PAYHOOK, '-c', inst.config, 'sweep', '--watch',
         '--interval', '1'], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        subprocess.run(['chattr', '+i', m])
        fd = os.open(m, os.O_RDONLY)     # written back: the next write
        os.fsync(fd)                     # through the mapping faults
        os.close(fd)
        time.sleep(2.5)
        subprocess.run(['chattr', '-i', m])
        alive = sweeper.poll() is None
        before = passes(inst)
        time.sleep(3.5)
        after = passes(inst)
    finally:
        subprocess.run(['chattr', '-i', m])
        sweeper.terminate()
        _, err = sweeper.communicate(timeout=30)
    tap.ok(alive and after > before, 'sweep --watch through it: alive, '
           'its passes counted again once the file takes writes',
           before, after, err[-600:])
    inst.cleanup()


def passes(inst):
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    return sum(float(v) for v in re.findall(
        r'^payhook_sweeper_passes_total(?:\{[^}]*\})? (\S+)$', text, re.M))


# Holds LMDB's write lock of the database at argv[1] until stdin closes:
# another program (a tool left open, a stopped process) in the middle of a
# write transaction, through the library itself.
LOCK_HOLDER = r'''
import ctypes, sys
lmdb = ctypes.CDLL('liblmdb.so.0')
env, txn = ctypes.c_void_p(), ctypes.c_void_p()
MDB_NOSUBDIR, MDB_NOTLS = 0x4000, 0x200000
assert lmdb.mdb_env_create(ctypes.byref(env)) == 0
lmdb.mdb_env_set_maxdbs(env, 32)
lmdb.mdb_env_set_maxreaders(env, 256)
assert lmdb.mdb_env_open(env, sys.argv[1].encode(), MDB_NOSUBDIR | MDB_NOTLS,
                         0o600) == 0
assert lmdb.mdb_txn_begin(env, None, 0, ctypes.byref(txn)) == 0
print('held', flush=True)
sys.stdin.read()
lmdb.mdb_txn_abort(txn)
lmdb.mdb_env_close(env)
'''


def test_stuck_writer(tap):
    """Another process holds the database's write lock and does not
    finish: a notification waits (unanswered, never acknowledged), /readyz
    says store_stuck once a fact has waited past 10 s, /metrics shows the
    wait, and all comes back when the lock is let go."""
    inst = Instance(tap, 'readystuck')
    inst.start()
    inst.create_order('SW1', 100)
    db = os.path.join(inst.etc, 'var', 'payhook.mdb')
    holder = subprocess.Popen([sys.executable, '-c', LOCK_HOLDER, db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        tap.is_(holder.stdout.readline().strip(), 'held',
                'stuck writer: another process takes the write lock')
        answer = []
        t = threading.Thread(target=lambda: answer.append(
            inst.pay('SW1', 100, harness.txn_id('sw1'))[0]))
        t.start()
        time.sleep(2)
        status, body, codes, r = ready(inst)
        tap.ok(status == 200 and not answer, 'stuck writer: a notification '
               'waits, unanswered; /readyz still ready 2 s in',
               r.describe())
        got = harness.wait_for(lambda: 'store_stuck' in ready(inst)[2],
                               timeout=20, step=0.5)
        status, body, codes, r = ready(inst)
        tap.ok(got and status == 503 and not answer and
               re.search(r'write lock', r.body.decode()),
               'stuck writer: /readyz 503 store_stuck once a fact has '
               'waited past 10 s, naming the write lock', r.describe())
        m = inst.request('GET', inst.path('/metrics'))
        wait = harness.metric(m.body.decode('utf-8', 'replace'),
                              'payhook_store_write_wait_seconds')
        tap.ok(wait is not None and wait >= 10, 'stuck writer: /metrics '
               'payhook_store_write_wait_seconds %s' % wait)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    t.join(timeout=30)
    tap.ok(answer and answer[0].status == 200 and
           b'SUCCESS' in answer[0].body and
           (inst.order('SW1') or {}).get('state') == 'PAID',
           'stuck writer: once the lock is let go the notification is '
           'applied and acknowledged', answer and answer[0].describe())
    tap.ok(harness.wait_for(lambda: ready(inst)[0] == 200, timeout=10),
           'stuck writer: /readyz ready again')
    inst.stop()


def main(tap):
    test_files(tap)
    test_metrics_refused(tap)
    if harness.E2E_STORE == 'lmdb':      # the LMDB map filling up
        test_fill(tap)
        test_disk_full(tap)
        test_unwritable(tap)
        test_stuck_writer(tap)


if __name__ == '__main__':
    harness.run(main)
