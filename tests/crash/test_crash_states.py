#!/usr/bin/env python3
"""Power loss, not just kill -9: the store's crash states (tests/crash).

1. Records a load through lighttpd with the write recorder preloaded into
   every payhook.fcgi and payhook process: orders created, notifications
   (new, duplicated, retried, double payments, a failure before the
   success, replays), sweeper passes, a reconciliation, a refund run and
   its refund notifications, reads of the event feed and of orders.
2. Builds the crash states of every crash point of the log and opens
   them with payhook (crashstates.py): each must open cleanly and hold
   every fact acknowledged before its crash point, once, with no hole in
   the event feed.
3. Records a short load through a payhook.fcgi built with
   PH_TEST_ACK_BEFORE_SYNC (it answers before its commit's meta page is
   flushed) and checks that the same checker finds lost acknowledgements.

Prints one summary line:
  crash-states: built N, checked N, acknowledged facts N, failures N;
  broken store caught: yes|no

Environment: PAYHOOK_CRASH_STATES_SEED (default 1), PAYHOOK_CRASH_STATES_MAX
(distinct crash states checked at most, default 1100; 0 = every one),
PAYHOOK_CRASH_STATES_SCALE (load multiplier, default 1),
PAYHOOK_CRASH_STATES_RANDOM (random subsets per crash point, default 4).
`make crash-states` runs it with every state, a larger load and more
random subsets.
"""

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import PAYHOOK, Simulator  # noqa: E402
import test_crash  # noqa: E402  (the kill -9 test: its instance)
from test_crash import wait_for  # noqa: E402
import crashstates  # noqa: E402

SEED = os.environ.get('PAYHOOK_CRASH_STATES_SEED', '1')
LIMIT = int(os.environ.get('PAYHOOK_CRASH_STATES_MAX', '1100'))
SCALE = max(1, int(os.environ.get('PAYHOOK_CRASH_STATES_SCALE', '1')))
RANDOMS = int(os.environ.get('PAYHOOK_CRASH_STATES_RANDOM', '4'))
WORKERS = 2
BROKEN_LIMIT = 200      # crash states of the broken store's run checked

SHIM = os.path.join(harness.TOP_BUILDDIR, 'tests', 'crash', '.libs',
                    'recorder.so')
ACKFIRST_FCGI = os.path.join(harness.TOP_BUILDDIR, 'tests', 'crash',
                             'payhook-ackfirst.fcgi')
BJ = datetime.timezone(datetime.timedelta(hours=8))


class Recorder:
    """A log file and the environment that preloads the recorder."""

    def __init__(self, workdir, db):
        # A raw capture of every byte (the merchant's token included), not
        # a log of payhook's: not named .log, so that the log scan of
        # tools/run-tests, which looks for secrets in logs, leaves it.
        self.log = os.path.join(workdir, 'writes.rec')
        self.db = db
        # The store, and the copy a new store is made in
        # (src/store/store_lmdb.c).
        self.files = '%s:%s.*.new' % (db, db)

    def env(self, stdout=False):
        pre = os.environ.get('LD_PRELOAD')
        env = dict(os.environ, LD_PRELOAD=pre + ':' + SHIM if pre else SHIM,
                   PH_REC_LOG=self.log, PH_REC_FILES=self.files)
        if stdout:
            env['PH_REC_STDOUT'] = '1'
        else:
            env.pop('PH_REC_STDOUT', None)
        return env

    def fcgi_wrapper(self, workdir, fcgi):
        """A script lighttpd spawns in place of payhook.fcgi: the real one,
        recorded."""
        path = os.path.join(workdir, 'payhook.fcgi-recorded')
        harness.write_file(path, '#!/bin/sh\n'
                           'LD_PRELOAD=${LD_PRELOAD:+$LD_PRELOAD:}%s\n'
                           'PH_REC_LOG=%s PH_REC_FILES=%s\n'
                           'export LD_PRELOAD PH_REC_LOG PH_REC_FILES\n'
                           'exec %s "$@"\n' % (sh(SHIM), sh(self.log),
                                               sh(self.files), sh(fcgi)),
                           mode=0o755)
        return path

    def cli(self, inst, *args, stdout=False, timeout=120):
        p = subprocess.run([PAYHOOK, '-c', inst.config] + list(args),
                           env=self.env(stdout), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        return (p.returncode, p.stdout.decode('utf-8', 'replace'),
                p.stderr.decode('utf-8', 'replace'))


def sh(text):
    return "'" + text.replace("'", "'\\''") + "'"


class StatesInstance(test_crash.CrashInstance):
    """The kill -9 test's instance (short leases, a 1 s query schedule),
    but wxhmac's orders are not queried for an hour: its lost payments are
    found by reconciling."""

    def profile_settings(self):
        out = test_crash.CrashInstance.profile_settings(self)
        out['wxhmac']['query_schedule'] = '1h'
        return out


def start(tap, name, fcgi, sim, procs=3):
    """A recorded instance: lighttpd spawns fcgi under the recorder."""
    inst = StatesInstance(tap, name, sim_port=sim.port, max_procs=procs)
    rec = Recorder(inst.dir, inst.db)
    real = harness.PAYHOOK_FCGI
    harness.PAYHOOK_FCGI = rec.fcgi_wrapper(inst.dir, fcgi)
    try:
        inst.start()
    finally:
        harness.PAYHOOK_FCGI = real
    sim.point_at(inst)
    return inst, rec


def sim_pay(sim, profile, oid, amount, notify=None, when=None, force=False):
    body = {'profile': profile, 'order_id': oid, 'amount': amount,
            'notify': notify or {'mode': 'normal'}}
    if when:
        body['time_end'] = when
    if force:
        body['force'] = True
    r = sim.control('/_sim/pay', body)
    if r.status != 200:
        raise RuntimeError('the simulator refused a payment: '
                           + r.describe())
    return r.json['txn_id']


def acked(sim):
    return sum(1 for d in sim.deliveries() or [] if d.get('acked'))


def load(tap, inst, rec, sim):
    """The recorded load of the main run."""
    tag = os.urandom(3).hex()
    n_normal, n_dup, n_retry = 110 * SCALE, 30 * SCALE, 15 * SCALE
    n_double, n_ooo, n_swept, n_stmt = 10 * SCALE, 8 * SCALE, 12 * SCALE, \
        8 * SCALE
    groups = [('N', 'wxshop', n_normal), ('D', 'wxshop', n_dup),
              ('R', 'wxshop', n_retry), ('X', 'wxshop', n_double),
              ('O', 'wxshop', n_ooo), ('S', 'wxshop', n_swept),
              ('M', 'wxhmac', n_stmt)]
    orders = []
    for g, profile, n in groups:
        orders += [(g, profile, 'CS%s-%s%04d' % (tag, g, i), 100 + i)
                   for i in range(n)]
    made = harness.parallel(
        lambda o: inst.create_order(o[2], o[3], profile=o[1]).status,
        orders, workers=6)
    tap.is_(sorted(set(made)), [201], '%d orders created' % len(orders))

    yesterday = datetime.datetime.now(BJ) - datetime.timedelta(days=1)
    day = yesterday.strftime('%Y-%m-%d')
    noon = yesterday.replace(hour=12, minute=0, second=0, microsecond=0)

    def pay(o):
        g, profile, oid, amount = o
        if g == 'N':
            return sim_pay(sim, profile, oid, amount)
        if g == 'D':
            return sim_pay(sim, profile, oid, amount, {'duplicate': 1})
        if g == 'R':
            return sim_pay(sim, profile, oid, amount, {'drop_first': 1})
        if g == 'X':
            sim_pay(sim, profile, oid, amount)
            return sim_pay(sim, profile, oid, amount, force=True)
        if g == 'O':
            r = sim.control('/_sim/out_of_order', {
                'profile': profile, 'order_id': oid, 'amount': amount,
                'gap_s': 0.1})
            return (r.json or {}).get('txn_id')
        if g == 'S':
            return sim_pay(sim, profile, oid, amount, {'drop_all': True})
        return sim_pay(sim, profile, oid, amount, {'drop_all': True},
                       when=(noon + datetime.timedelta(seconds=oids_i[oid])
                             ).strftime('%Y%m%d%H%M%S'))
    oids_i = {o[2]: i for i, o in enumerate(orders)}
    txns = harness.parallel(pay, orders, workers=6)
    tap.ok(all(txns), 'the simulator took every payment')
    want = n_normal + n_dup + n_retry + 2 * n_double + 2 * n_ooo
    got = wait_for(lambda: acked(sim) >= want, 120)
    tap.ok(got, '%d notifications acknowledged' % want,
           'acknowledged: %d' % acked(sim))

    # Replays: notifications the provider sends again, much later.
    firsts = [d for d in sim.deliveries() if d.get('acked')][:20 * SCALE]
    replayed = [inst.notify(d['request'].encode('utf-8'), 'wxshop')
                for d in firsts]
    tap.ok(all(r.status == 200 and r.body == harness.SUCCESS_ACK
               for r in replayed),
           '%d notifications replayed, each acknowledged again'
           % len(replayed))

    # The sweeper finds the payments whose notifications were all lost.
    time.sleep(1.2)
    swept = [o[2] for o in orders if o[0] == 'S']
    passes = 0
    for _ in range(4):
        rc, _out, err = rec.cli(inst, 'sweep')
        passes += 1
        if rc != 0:
            tap.diag('sweep: ' + err[-400:])
        if all((inst.order(o) or {}).get('state') == 'PAID' for o in swept):
            break
        time.sleep(1.0)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PAID' for o in swept),
           'sweeper passes (%d) paid the %d orders whose notifications '
           'were lost' % (passes, len(swept)))

    # Reconciliation finds the wxhmac payments nobody was told about.
    stmt = os.path.join(inst.dir, 'statement.txt')
    r = sim.request('GET', '/_sim/statement?profile=wxhmac&date=' + day)
    with open(stmt, 'wb') as fh:
        fh.write(r.body or b'')
    rc, out, err = rec.cli(inst, 'reconcile', '--profile', 'wxhmac',
                           '--statement', stmt, '--date', day,
                           '--report-dir', inst.dir)
    stmt_orders = [o[2] for o in orders if o[0] == 'M']
    tap.ok(rc == 0 and all((inst.order(o) or {}).get('state') == 'PAID'
                           for o in stmt_orders),
           'a reconciliation paid the %d orders only the statement knew'
           % len(stmt_orders), out + err)

    # The double payments' refunds, and their refund notifications.
    before = acked(sim)
    rc, out, err = rec.cli(inst, 'refunds', 'run')
    tap.is_(rc, 0, 'a refund run', out + err)
    wait_for(lambda: acked(sim) >= before + n_double, 60)
    tap.ok(acked(sim) >= before + n_double,
           '%d refund notifications acknowledged' % n_double,
           'acknowledged: %d' % (acked(sim) - before))

    # The merchant reads: orders, the event feed (API and command line).
    for o in orders[::7]:
        inst.get_order(o[2])
    evs = inst.all_events(0)
    rc, out, _ = rec.cli(inst, 'events', '--limit', '1000', stdout=True)
    tap.ok(rc == 0 and evs, 'the event feed read through the API (%d '
           'events) and the command line' % len(evs))


def broken_load(tap, inst, sim):
    """A short load for the store that answers before it flushes: one
    notification at a time, so that a commit's meta page waits for the
    next commit to be flushed."""
    tag = os.urandom(3).hex()
    oids = ['CB%s-%03d' % (tag, i) for i in range(12)]
    for i, o in enumerate(oids):
        inst.create_order(o, 200 + i)
    for i, o in enumerate(oids):
        sim_pay(sim, 'wxshop', o, 200 + i)
        n = i + 1
        wait_for(lambda: acked(sim) >= n, 20)
        time.sleep(0.05)
    return acked(sim)


def check_states(tap, name, inst, rec, limit, log=True):
    recording = crashstates.Recording(rec.log)
    keys = {p: v['key'] for p, v in harness.PROFILES.items()}
    facts = crashstates.all_facts(recording, keys)
    # The states are only read back: on a memory file system payhook's
    # flushes of them cost nothing.
    shm = '/dev/shm'
    work = tempfile.mkdtemp(prefix='payhook-crash-states-', dir=shm) \
        if os.path.isdir(shm) and os.access(shm, os.W_OK) else \
        tempfile.mkdtemp(prefix='states-', dir=inst.dir)
    with open(inst.config, encoding='utf-8') as fh:
        conf = fh.read()
    n = [0]

    def make_config(db):
        n[0] += 1
        path = os.path.join(inst.etc, 'crash-%d.conf' % n[0])
        text = '\n'.join('db_path = %s' % db if line.startswith('db_path')
                         else line for line in conf.splitlines()) + '\n'
        harness.write_file(path, text, mode=0o644)
        return path
    plan = crashstates.Plan(SEED, prefixes=None, randoms=RANDOMS, torn=3,
                            limit=limit or None)
    t0 = time.time()
    try:
        res = crashstates.run(recording, facts, inst.db, plan, PAYHOOK,
                              make_config, work, workers=WORKERS,
                              log=tap.diag if log else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tap.diag('%s: %d records (%d writes, %d flushes, %d answers) from %d '
             'processes; %d crash points, %d crash states, %d distinct; '
             'built %d, checked %d in %.0f s; %d facts acknowledged; '
             'seed %s'
             % (name, len(recording.recs),
                recording.count(crashstates.R_WRITE),
                recording.count(crashstates.R_SYNC_DONE),
                sum(1 for e in recording.exchanges if e.ack is not None),
                len(recording.procs), res.points, res.states, res.distinct,
                res.built, res.checked, time.time() - t0, res.facts, SEED))
    return recording, facts, res


def recorder_sound(tap, recording, facts, sim):
    """The log against what the simulator saw: every acknowledgement it
    received is an acknowledged fact in the log."""
    kinds = {}
    for f in facts:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    tap.diag('facts: %s' % ', '.join('%s %d' % kv for kv in
                                     sorted(kinds.items())))
    logged = set()
    for ex in recording.exchanges:
        if ex.ack is not None and ex.argv is None and \
                ex.uri.startswith('/notify/') and \
                ex.resp_body == harness.SUCCESS_ACK:
            logged.add(ex.body)
    missing = [d for d in sim.deliveries() if d.get('acked') and
               d['request'].encode('utf-8') not in logged]
    tap.is_(len(missing), 0, 'every acknowledgement the simulator received '
            'is in the log (%d acknowledged exchanges)' % len(logged))
    tap.ok(recording.count(crashstates.R_SYNC_DONE) > 0 and
           recording.count(crashstates.R_WRITE) > 0,
           'the log holds the store\'s writes and flushes')


def main(tap):
    """The two runs; the summary line is printed once, whatever happens."""
    out = {'built': 0, 'checked': 0, 'facts': 0, 'failures': 0,
           'caught': False}
    try:
        both_runs(tap, out)
    finally:
        sys.stdout.write('crash-states: built %d, checked %d, acknowledged '
                         'facts %d, failures %d; broken store caught: %s\n'
                         % (out['built'], out['checked'], out['facts'],
                            out['failures'], 'yes' if out['caught'] else
                            'no'))
        sys.stdout.flush()


def both_runs(tap, out):
    for path, what in ((SHIM, 'the write recorder'),
                       (ACKFIRST_FCGI, 'the broken store\'s payhook.fcgi')):
        if not os.path.exists(path):
            tap.ok(False, '%s is built (%s)' % (what, path),
                   'run make check (it builds the check programs)')
            return
    tap.diag('seed %s; at most %s distinct crash states' % (
        SEED, LIMIT or 'every'))
    t0 = time.time()
    sim = Simulator(tap, time_factor=300).start()
    inst, rec = start(tap, 'states', harness.PAYHOOK_FCGI, sim)
    load(tap, inst, rec, sim)
    inst.stop()
    tap.diag('recorded load: %.0f s' % (time.time() - t0))
    recording, facts, res = check_states(tap, 'store', inst, rec, LIMIT)
    out.update(built=res.built, checked=res.checked, facts=len(facts),
               failures=len(res.failures))
    recorder_sound(tap, recording, facts, sim)
    for text in res.failures[:20]:
        tap.diag('FAILED ' + text)
    tap.ok(res.checked >= 1000 or (LIMIT and LIMIT < 1000),
           'at least 1000 crash states checked (%d)' % res.checked)
    tap.is_(len(res.failures), 0, 'every crash state opens and holds every '
            'acknowledged fact once, with no hole in the event feed')

    # The same checker against a store that answers before it flushes.
    sim.control('/_sim/reset')
    binst, brec = start(tap, 'ackfirst', ACKFIRST_FCGI, sim, procs=2)
    n = broken_load(tap, binst, sim)
    binst.stop()
    _, bfacts, bres = check_states(tap, 'broken store', binst, brec,
                                   BROKEN_LIMIT, log=False)
    for text in bres.failures[:3]:
        tap.diag('broken store: ' + text)
    out['caught'] = len(bres.failures) > 0 and len(bfacts) > 0
    tap.ok(out['caught'], 'the broken store (PH_TEST_ACK_BEFORE_SYNC, %d '
           'notifications acknowledged) is caught: %d of %d crash states '
           'fail' % (n, len(bres.failures), bres.checked))


if __name__ == '__main__':
    harness.run(main)
