#!/usr/bin/env python3
"""Crash tests of the store's shared flush (STORE_SHARED_SYNC in
src/store/store_lmdb.c): every acknowledged notification survives, and
nothing is acknowledged before what it acknowledges is flushed.

1. kill: lighttpd on 127.0.0.1 runs four payhook.fcgi processes.  In
   rounds, until 300 kills, N orders are created and each order's WeChat
   Pay v2 notification is sent twice at once (so that first deliveries
   race their duplicates) and then again, like a provider, until it is
   acknowledged, by 16 client threads, while SIGKILL hits a random
   payhook.fcgi every 20-300 ms.  Then: every
   acknowledged notification's order is PAID by that transaction; no
   order was paid twice nor holds an exception; one order.paid event per
   paid order; and, with lighttpd stopped, the store passes `payhook check`
   and `mdb_dump` reads every record.

2. trace: the same traffic (without kills) against payhook.fcgi processes
   run under strace, which records with timestamps every meta-page write
   (pwrite below offset 2 pages of the database), every fdatasync and
   every answer.  A power cut loses what was not flushed; so for each
   SUCCESS answer, every meta page written before the request was
   accepted, and those the answering process wrote since, must be covered
   by one fdatasync that began after the last of them and ended before the
   answer (a meta page written through an O_DSYNC descriptor, as LMDB
   does without MDB_NOMETASYNC, is on disk when its write returns).  A
   build without the explicit flush fails this check (see
   bench/README.md).

kill -9 cannot lose what the kernel already holds, and a true power cut
(dropping the disk's volatile cache) cannot be simulated on this machine;
the trace check stands in for it by checking the order of writes and
flushes the kernel was asked for.

    python3 bench/crash.py [-n 1000] [--kills 300] [--trace-n 600]
                           [--fcgi PATH] [--only kill|trace]
"""

import argparse
import collections
import glob
import http.client
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402
import run  # noqa: E402

FAILURES = []


def check(cond, what):
    print('%s - %s' % ('ok' if cond else 'NOT OK', what))
    sys.stdout.flush()
    if not cond:
        FAILURES.append(what)
    return cond


class Client(threading.Thread):
    """Sends notifications from a queue until each is acknowledged."""

    def __init__(self, port, work, acked, lock, deadline):
        threading.Thread.__init__(self, daemon=True)
        self.port, self.work, self.acked = port, work, acked
        self.lock, self.deadline = lock, deadline
        self.conn = None
        self.sent = 0

    def send(self, body):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(run.HOST,
                                                           self.port,
                                                           timeout=30)
                self.conn.request('POST', '/notify/wxshop', body,
                                  {'Content-Type': 'text/xml'})
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return None, b''

    def run(self):
        while time.time() < self.deadline:
            try:
                idx, body, tries = self.work.get(timeout=0.5)
            except queue.Empty:
                if self.work.unfinished_tasks == 0:
                    return
                continue
            status, answer = self.send(body)
            self.sent += 1
            if status == 200 and answer == gen.WX_SUCCESS_ACK:
                with self.lock:
                    self.acked.add(idx)
            else:
                # Not acknowledged: the provider tries again, later.
                time.sleep(min(1.0, 0.02 * (tries + 1)))
                self.work.put((idx, body, tries + 1))
            self.work.task_done()


def drive(port, notes, threads, seconds, killer=None):
    """Each notification twice at once, then until acknowledged.  Returns
    the set of acknowledged indexes and the number of requests."""
    work = queue.Queue()
    for idx, (_, _, _, body) in enumerate(notes):
        work.put((idx, body, 0))
        work.put((idx, body, 0))
    acked, lock = set(), threading.Lock()
    deadline = time.time() + seconds
    clients = [Client(port, work, acked, lock, deadline)
               for _ in range(threads)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(seconds + 60)
    if killer:
        killer.set()
    return acked, sum(c.sent for c in clients)


def killer_thread(srv, stop, kills, pause):
    rnd = random.Random()
    while not stop.wait(rnd.uniform(0.02, 0.3)):
        if pause.is_set():
            continue
        pids = srv.backends()
        if pids:
            try:
                os.kill(rnd.choice(pids), signal.SIGKILL)
                kills[0] += 1
            except ProcessLookupError:
                pass


def healthy(port, timeout=60):
    """Waits until lighttpd has every backend back (after kills it holds
    a dead one off for a while and answers 503)."""
    deadline, good = time.time() + timeout, 0
    while time.time() < deadline and good < 20:
        st, _ = run.http(port, 'GET', '/healthz', timeout=5)
        good = good + 1 if st == 200 else 0
        time.sleep(0.05 if st == 200 else 0.5)
    return good >= 20


def read_orders(port, token, ids):
    out = {}

    def one(i):
        st, body = run.http(port, 'GET', '/orders/' + i,
                            headers={'Authorization': 'Bearer ' + token})
        return i, (json.loads(body) if st == 200 else None)
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for i, o in pool.map(one, ids):
            out[i] = o
    return out


def read_events(port, token):
    evs, after = [], 0
    while True:
        st, body = run.http(port, 'GET', '/events?after=%d&limit=1000'
                            % after, headers={'Authorization': 'Bearer ' +
                                              token})
        if st != 200:
            raise RuntimeError('GET /events: %s' % st)
        j = json.loads(body)
        if not j['events']:
            return evs
        evs += j['events']
        after = j['next']


def phase_kill(opts):
    print('# kill: rounds of %d orders, each notified twice at once, '
          'SIGKILL every 20-300 ms, until %d kills' % (opts.n, opts.kills))
    b = run.Bench(argparse.Namespace(procs=4, skip=['all'], map_mb=1024, archive_mb=4096,
                                     seconds=1))
    try:
        b.configure()
        b.ph = run.Lighttpd(b.dir, 'payhook', opts.fcgi, 4, {
            'PAYHOOK_CONFIG': os.path.join(b.etc, 'payhook.conf')}).start()
        wx = b.providers[0]
        ids, txn, acked_ids = [], [], set()
        stop, pause, kills = threading.Event(), threading.Event(), [0]
        k = threading.Thread(target=killer_thread,
                             args=(b.ph, stop, kills, pause), daemon=True)
        k.start()
        t0, sent, rounds = time.time(), 0, 0
        while kills[0] < opts.kills and time.time() < t0 + opts.seconds:
            # The orders are made without kills (wrk does not retry).
            pause.set()
            healthy(b.ph.port)
            rids = b.order_ids('k', opts.n)
            b.create_orders([(wx, i) for i in rids])
            notes = [wx.notification(i) for i in rids]
            pause.clear()
            acked, n = drive(b.ph.port, notes, 16,
                             max(30, t0 + opts.seconds - time.time()))
            sent += n
            rounds += 1
            acked_ids |= {rids[i] for i in acked}
            ids += rids
            txn += [re.search(rb'<transaction_id><!\[CDATA\[(\d+)\]\]>',
                              note[3]).group(1).decode() for note in notes]
        stop.set()
        k.join(5)
        healthy(b.ph.port)
        print('# %d rounds, %d requests, %d kills, %.0f s' % (
            rounds, sent, kills[0], time.time() - t0))
        check(kills[0] >= opts.kills, 'processes were killed under load '
              '(%d)' % kills[0])
        check(len(acked_ids) == len(ids), 'every notification was '
              'acknowledged in the end (%d of %d)' % (len(acked_ids),
                                                      len(ids)))
        time.sleep(1)
        orders = read_orders(b.ph.port, b.token, ids)
        lost = [i for i, t in zip(ids, txn) if i in acked_ids and (
            not orders.get(i) or orders[i].get('state') != 'PAID' or
            orders[i].get('provider_txn_id') != t)]
        check(not lost, 'every acknowledged notification is in the store: '
              'order PAID by its transaction (%d missing%s)'
              % (len(lost), ': ' + ' '.join(lost[:5]) if lost else ''))
        odd = [i for i, o in orders.items() if o and o.get('exceptions')]
        check(not odd, 'no order holds an exception (double payment, '
              'conflict): %d' % len(odd))
        evs = read_events(b.ph.port, b.token)
        paid = collections.Counter(e.get('order_id') for e in evs
                                   if e.get('type') == 'order.paid')
        check(all(paid[i] == 1 for i in acked_ids) and
              all(n == 1 for n in paid.values()),
              'one order.paid event per acknowledged order, never two')
        seqs = [e.get('seq') for e in evs]
        check(seqs == sorted(set(seqs)), 'event sequence numbers are '
              'unique and in order')
        b.ph.stop()
        b.ph = None
        r = subprocess.run([run.PAYHOOK, '-c', os.path.join(
            b.etc, 'payhook.conf'), 'check'], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        check(r.returncode == 0, 'the store opens: payhook check')
        db = os.path.join(b.etc, 'var', 'payhook.mdb')
        r = subprocess.run(['mdb_dump', '-n', '-a', db],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        check(r.returncode == 0, 'mdb_dump reads every database%s'
              % (': ' + r.stderr.decode().strip()[:200]
                 if r.returncode else ''))
    finally:
        b.cleanup()


# ---------------------------------------------------------------------------
# The trace check
# ---------------------------------------------------------------------------

LINE = re.compile(r'^(\d+\.\d+) (\w+)\((.*)\) += (-?\d+)(?:.*<(\d+\.\d+)>)?')


def parse_trace(path, db_name):
    """The events of one process: (start, end, kind, detail)."""
    evs, fds = [], {}       # fd -> opened with O_DSYNC/O_SYNC
    with open(path, errors='replace') as fh:
        for line in fh:
            m = LINE.match(line)
            if not m:
                continue
            start, call, args, ret = (float(m.group(1)), m.group(2),
                                      m.group(3), int(m.group(4)))
            end = start + float(m.group(5) or 0)
            if call == 'openat' and args.split(', ')[1].strip('"').endswith(
                    db_name) and ret >= 0:
                fds[ret] = 'O_DSYNC' in args or 'O_SYNC' in args
            elif call in ('accept', 'accept4') and ret >= 0:
                evs.append((start, end, 'accept', ret))
            elif call == 'pwrite64':
                fd = int(args.split(',', 1)[0])
                off = int(args.rsplit(',', 1)[1])
                # A meta page written through an O_DSYNC descriptor (LMDB
                # without MDB_NOMETASYNC) is on disk when the write ends.
                if fd in fds and off < 8192 and ret > 0:
                    evs.append((start, end, 'meta-dsync' if fds[fd] else
                                'meta', off))
            elif call in ('fdatasync', 'fsync'):
                if int(args) in fds and ret == 0:
                    evs.append((start, end, 'flush', 0))
            elif call in ('write', 'writev') and 'SUCCESS' in args:
                evs.append((start, end, 'ack', 0))
    return evs


def oracle(per_proc):
    """Checks every ack; returns (acks, violations)."""
    metas = sorted(e[1] for evs in per_proc.values() for e in evs
                   if e[2] == 'meta')
    flushes = sorted((e[0], e[1]) for evs in per_proc.values() for e in evs
                     if e[2] == 'flush')
    import bisect
    acks = bad = 0
    examples = []
    for pid, evs in per_proc.items():
        accepted = None
        own = []
        for start, end, kind, _ in evs:
            if kind == 'accept':
                accepted, own = end, []
            elif kind == 'meta' and accepted is not None:
                own.append(end)
            elif kind == 'ack' and accepted is not None:
                acks += 1
                # The meta pages this answer depends on: every one written
                # before the request came, and its own since.
                i = bisect.bisect_left(metas, accepted)
                deps = own + ([metas[i - 1]] if i else [])
                if not deps:
                    continue
                need = max(deps)
                covered = any(fs > need and fe < start
                              for fs, fe in flushes)
                if not covered:
                    bad += 1
                    if len(examples) < 3:
                        examples.append('pid %d: answer at %.6f, meta page '
                                        'written at %.6f, no flush between'
                                        % (pid, start, need))
    return acks, bad, examples


def phase_trace(opts):
    if shutil.which('strace') is None:
        check(False, 'strace is installed (apt-get install strace)')
        return
    print('# trace: %d orders under strace, each notified twice at once'
          % opts.trace_n)
    b = run.Bench(argparse.Namespace(procs=4, skip=['all'], map_mb=256, archive_mb=1024,
                                     seconds=1))
    tdir = os.path.join(b.dir, 'trace')
    os.makedirs(tdir)
    wrapper = os.path.join(b.dir, 'payhook-strace')
    with open(wrapper, 'w') as fh:
        fh.write('#!/bin/sh\nexec strace -qq -ff -ttt -T -s 300 -e trace='
                 'openat,accept,accept4,pwrite64,fdatasync,fsync,write,writev'
                 ' -o %s/t %s\n' % (tdir, opts.fcgi))
    os.chmod(wrapper, 0o755)
    try:
        b.configure()
        b.ph = run.Lighttpd(b.dir, 'payhook', wrapper, 4, {
            'PAYHOOK_CONFIG': os.path.join(b.etc, 'payhook.conf')}).start()
        wx = b.providers[0]
        ids = b.order_ids('t', opts.trace_n)
        b.create_orders([(wx, i) for i in ids])
        notes = [wx.notification(i) for i in ids]
        acked, sent = drive(b.ph.port, notes, 8, opts.seconds)
        check(len(acked) == len(ids), 'trace: every notification '
              'acknowledged (%d of %d, %d requests)' % (len(acked),
                                                       len(ids), sent))
        # The backends are strace processes, each tracing one
        # payhook.fcgi.  strace ignores lighttpd's SIGTERM (it blocks fatal
        # signals when it writes to files), and lighttpd would start new
        # backends for those that end: so stop lighttpd first, then end
        # the traced processes, and strace finishes its files and exits.
        tracers = run.proc_children(b.ph.proc.pid)
        traced = [k for p in tracers for k in run.proc_children(p)]
        b.ph.stop()
        b.ph = None
        for pid in traced:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 20
        while time.time() < deadline and any(
                'strace' in run.cmdline(p) for p in tracers):
            time.sleep(0.1)
        for pid in tracers:
            if 'strace' in run.cmdline(pid):
                os.kill(pid, signal.SIGKILL)
        per_proc = {}
        for path in glob.glob(os.path.join(tdir, 't.*')):
            evs = parse_trace(path, 'payhook.mdb')
            if evs:
                per_proc[int(path.rsplit('.', 1)[1])] = evs
        acks, bad, examples = oracle(per_proc)
        check(acks >= len(ids), 'trace: SUCCESS answers seen in the traces '
              '(%d)' % acks)
        check(bad == 0, 'trace: every SUCCESS answer came after a flush '
              'that began after every meta page it depends on (%d of %d '
              'violate)%s' % (bad, acks, ''.join('\n#   ' + e
                                                 for e in examples)))
    finally:
        b.cleanup()


def main():
    ap = argparse.ArgumentParser()
    run.int_option(ap, '-n', 1000, 'orders in each round of the kill phase')
    run.int_option(ap, '--kills', 300,
                   'SIGKILLs the kill phase sends at least')
    ap.add_argument('--trace-n', type=int, default=600)
    run.int_option(ap, '--seconds', 240, 'bound of each phase')
    ap.add_argument('--fcgi', default=run.PAYHOOK_FCGI)
    ap.add_argument('--only', choices=('kill', 'trace'))
    opts = ap.parse_args()
    signal.signal(signal.SIGTERM, run._on_signal)
    if opts.only != 'trace':
        phase_kill(opts)
    if opts.only != 'kill':
        phase_trace(opts)
    print('crash: %s' % ('all checks passed' if not FAILURES else
                         '%d check(s) failed' % len(FAILURES)))
    sys.exit(1 if FAILURES else 0)


if __name__ == '__main__':
    main()
