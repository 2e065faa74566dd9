"""End to end: reconciliation against the provider's statement, and refunds.

lighttpd + payhook.fcgi + the provider simulator + `payhook reconcile` and
`payhook refunds run`, all on 127.0.0.1, WeChat Pay v2.

A day in the simulator (PAYHOOK_RECON_N orders, 2000 by default, paid at
times spread over yesterday, Beijing time): most notified normally, some
notifications dropped every time, some orders paid twice (notified, or
the second payment never notified), one amount shown otherwise in the
statement, one payment left out of it, and one payment payhook holds that
the simulator never took (a correctly signed notification sent straight
to payhook).  `payhook reconcile` on the simulator's trade bill must put
each case in its category, exactly (report CSV and JSON, summary
counts), make the dropped orders PAID from the statement and have every
double payment on the refund work list; run again it must report the same
and change nothing.  `payhook refunds run` refunds each double payment
exactly once even when killed with SIGKILL while its refund calls are in
flight and run again (the simulator counts refunds per out_refund_no); the
refund notifications (req_info, AES-256-ECB) settle the work items; the
statement of the refunds' day matches them.  Then merchant refunds through
POST /orders/<id>/refunds: never more than was paid (409), refund.requested,
refund.succeeded and refund.failed, REFUNDING and REFUNDED.
"""

import csv
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PAYHOOK, wait_for, SimInstance, Simulator  # noqa: E402

N = int(os.environ.get('PAYHOOK_RECON_N', '2000'))
N_DROPPED = 20          # every notification lost
N_DOUBLE = 10           # paid twice, both notified
N_DOUBLE_SILENT = 5     # paid twice, the second never notified
BJ = datetime.timezone(datetime.timedelta(hours=8))


class ReconInstance(SimInstance):
    """Short leases (the killed refund run's leases run out quickly) and
    enough map for a few thousand orders."""

    def core_settings(self):
        core = SimInstance.core_settings(self)
        core['lease_s'] = '5'
        core['map_size_mb'] = '256'
        core['http_timeout_s'] = '4'        # below lease_s
        return core


# Bound of each `payhook` command here: a few thousand orders.
CLI_TIMEOUT = 600


def snapshot(inst):
    """What reconciling again must not change: the event feed and the
    orders, as the command line prints them."""
    events = inst.cli('events', 'tail', '--after', '0', timeout=CLI_TIMEOUT)
    orders = inst.cli('order', 'list', '--limit', '100000', '--json',
                      timeout=CLI_TIMEOUT)
    return events.returncode, orders.returncode, events.stdout, orders.stdout


def refunds_list(inst, every=True):
    r = inst.cli('refunds', 'list', *(['--all'] if every else []),
                 timeout=CLI_TIMEOUT)
    rows = [line.split('\t') for line in r.stdout.splitlines() if line]
    return r.returncode, [{'refund_id': r[0], 'state': r[1], 'reason': r[2],
                 'order_id': r[3], 'amount': int(r[4]), 'currency': r[5],
                 'txn_id': r[6]} for r in rows if len(r) == 7]


def refunds_run(inst):
    return inst.cli('refunds', 'run', timeout=CLI_TIMEOUT)


def reconcile(inst, statement, day, report_dir, trust=True):
    """The statement fetched from the simulator here stands for one
    payhook fetched itself: the operator vouches for it (--trust-file)."""
    r = inst.cli('reconcile', '--profile', 'wxshop', '--statement',
                 statement, '--date', day, '--report-dir', report_dir,
                 *(['--trust-file'] if trust else []), timeout=CLI_TIMEOUT)
    return r.returncode, r.stdout, r.stderr, harness.recon_counts(r.stdout)


def read_report(report_dir, day):
    base = os.path.join(report_dir, 'reconcile-wxshop-%s' % day)
    with open(base + '.json', encoding='utf-8') as fh:
        doc = json.load(fh)
    with open(base + '.csv', encoding='utf-8', newline='') as fh:
        rows = list(csv.DictReader(fh))
    return doc, rows


def by_cat(rows, cat, key='provider_txn_id'):
    return sorted(r[key] for r in rows if r['category'] == cat)


def fetch_statement(tap, sim, day, path, bom=False):
    r = sim.request('GET', '/_sim/statement?profile=wxshop&date=%s%s'
                    % (day, '&bom=1' if bom else ''))
    tap.is_(r.status, 200, 'the simulator writes the statement of %s' % day,
            r.describe())
    with open(path, 'wb') as fh:
        fh.write(r.body or b'')
    return r.body or b''


def sim_pay(sim, oid, amount, when, notify=None, force=False):
    body = {'profile': 'wxshop', 'order_id': oid, 'amount': amount,
            'time_end': when, 'notify': notify or {'mode': 'normal'}}
    if force:
        body['force'] = True
    r = sim.control('/_sim/pay', body)
    if r.status != 200:
        raise RuntimeError('simulator refused a payment: ' + r.describe())
    return r.json['txn_id']


def paid_refund_of(inst, sim, tag, amount):
    """An order of amount paid through the simulator and a refund of it
    asked for: (order id, refund id)."""
    oid = '%s-%s' % (tag, os.urandom(4).hex())
    inst.create_order(oid, amount)
    sim_pay(sim, oid, amount, None)
    wait_for(lambda: (inst.order(oid) or {}).get('state') == 'PAID',
             timeout=20)
    r = inst.api('POST', '/orders/%s/refunds' % oid, {'amount': amount})
    return oid, (r.json or {}).get('refund_id')


def refund_state(inst, rid):
    return (inst.api('GET', '/refunds/%s' % rid).json or {}).get('state')


def test_day(tap, inst, sim, workdir):
    yesterday = (datetime.datetime.now(BJ) - datetime.timedelta(days=1))
    day = yesterday.strftime('%Y-%m-%d')
    start = datetime.datetime(yesterday.year, yesterday.month,
                              yesterday.day, 0, 0, 5, tzinfo=BJ)
    tag = os.urandom(3).hex()

    def when(i):
        return (start + datetime.timedelta(seconds=37 * i)
                ).strftime('%Y%m%d%H%M%S')

    oids = ['R%s-%05d' % (tag, i) for i in range(N)]
    amount = {o: 100 + i % 997 for i, o in enumerate(oids)}
    dropped = oids[:N_DROPPED]
    doubles = oids[N_DROPPED:N_DROPPED + N_DOUBLE]
    silent = oids[N_DROPPED + N_DOUBLE:N_DROPPED + N_DOUBLE + N_DOUBLE_SILENT]
    k = N_DROPPED + N_DOUBLE + N_DOUBLE_SILENT
    altered, omitted, only_here = oids[k], oids[k + 1], oids[k + 2]
    normal = oids[k + 3:]

    t0 = time.time()
    created = harness.parallel(
        lambda o: inst.create_order(o, amount[o]).status, oids, workers=16)
    tap.is_(sorted(set(created)), [201], '%d orders created' % N)
    tap.diag('created %d orders in %.1f s' % (N, time.time() - t0))

    t0 = time.time()
    index = {o: i for i, o in enumerate(oids)}
    txn = {}

    def pay(o):
        i = index[o]
        if o in dropped:
            return [sim_pay(sim, o, amount[o], when(i), {'drop_all': True})]
        if o in doubles:
            return [sim_pay(sim, o, amount[o], when(i)),
                    sim_pay(sim, o, amount[o], when(i + N), force=True)]
        if o in silent:
            return [sim_pay(sim, o, amount[o], when(i)),
                    sim_pay(sim, o, amount[o], when(i + N),
                            {'drop_all': True}, force=True)]
        if o == only_here:
            return []
        return [sim_pay(sim, o, amount[o], when(i))]

    for o, t in zip(oids, harness.parallel(pay, oids, workers=16)):
        txn[o] = t
    # The payment only payhook knows: signed like WeChat's, sent straight
    # to payhook, for a transaction the simulator never took.
    txn[only_here] = [harness.txn_id('onlyhere')]
    r, _ = inst.pay(only_here, amount[only_here], txn[only_here][0],
                    time_end=when(index[only_here]))
    tap.ok(r.status == 200 and r.body == harness.SUCCESS_ACK,
           'a payment the simulator never took, notified to payhook',
           r.describe())
    acked_want = N - N_DROPPED - 1 + N_DOUBLE
    got = wait_for(lambda: sim.stats()['notifications']['acked'] >=
                   acked_want, timeout=300)
    tap.ok(got, 'the simulator delivered %d notifications' % acked_want,
           repr(sim.stats().get('notifications')))
    tap.diag('paid and notified in %.1f s' % (time.time() - t0))
    time.sleep(0.5)

    # The discrepancies of the statement.
    r = sim.control('/_sim/alter', {'txn_id': txn[altered][0],
                                    'amount': amount[altered] + 1})
    tap.is_((r.status, r.json), (200, {'txn_id': txn[altered][0],
                                       'amount': amount[altered] + 1,
                                       'omit': False}),
            'simulator: another amount for one payment in the statement')
    r = sim.control('/_sim/alter', {'txn_id': txn[omitted][0],
                                    'omit': True})
    tap.is_(r.status, 200, 'simulator: one payment left out')

    states = {o: (inst.order(o) or {}).get('state') for o in
              dropped + doubles[:2] + normal[:5]}
    tap.ok(all(states[o] == 'PENDING' for o in dropped),
           'before: the orders whose notifications were lost are PENDING')
    tap.ok(all(states[o] == 'PAID' for o in doubles[:2] + normal[:5]),
           'before: the notified ones are PAID')
    rc, before_refunds = refunds_list(inst)
    tap.is_(sorted(x['order_id'] for x in before_refunds), sorted(doubles),
            'before: the notified double payments are on the refund list')

    stmt = os.path.join(workdir, 'bill-%s.txt' % day)
    text = fetch_statement(tap, sim, day, stmt, bom=True)
    rows_want = N - 2 + N_DOUBLE + N_DOUBLE_SILENT
    tap.is_(text.count(b'\r\n'), rows_want + 3,
            'the statement: header, %d rows, summary (CRLF)' % rows_want)
    tap.ok(text.startswith(b'\xef\xbb\xbf'), '... after a UTF-8 BOM')

    reports = os.path.join(workdir, 'reports')
    os.makedirs(reports)

    # A statement that does not add up changes nothing, not even the rows
    # before the place where that shows (its summary, at the end).
    snap0 = snapshot(inst)
    bad = os.path.join(workdir, 'bill-bad.txt')
    lines = text.split(b'\r\n')
    summary = lines[-2].split(b',')
    summary[0] = b'`%d' % (rows_want + 1)
    with open(bad, 'wb') as fh:
        fh.write(b'\r\n'.join(lines[:-2] + [b','.join(summary), b'']))
    rc, out, err, counts = reconcile(inst, bad, day, reports)
    tap.ok(rc != 0 and 'row count' in err, 'a statement whose summary '
           'does not add up: refused', err.strip())
    with open(bad, 'wb') as fh:
        fh.write(b'\r\n'.join(lines[:-3] + [b'']))
    rc, out, err, counts = reconcile(inst, bad, day, reports)
    tap.ok(rc != 0 and 'truncated' in err, 'a truncated statement: refused',
           err.strip())
    tap.ok(snapshot(inst) == snap0 and os.listdir(reports) == [] and
           all((inst.order(o) or {}).get('state') == 'PENDING'
               for o in dropped[:3]),
           '... and nothing changed: no order paid from them, no event, '
           'no report')
    t0 = time.time()
    rc, out, err, counts = reconcile(inst, stmt, day, reports)
    took = time.time() - t0
    tap.is_(rc, 0, 'payhook reconcile: exit 0', err)
    tap.diag('reconcile of %d rows took %.2f s' % (rows_want, took))
    for line in out.splitlines():
        tap.diag('  ' + line)
    want = {'matched': len(normal) + N_DOUBLE + N_DOUBLE_SILENT,
            'missing_here': N_DROPPED,
            'missing_at_provider': 2,
            'amount_differs': 1,
            'double_payment': N_DOUBLE + N_DOUBLE_SILENT,
            'amount_mismatch': 0, 'unknown_order': 0, 'late_payment': 0,
            'other_account': 0, 'refund_matched': 0, 'refund_mismatch': 0}
    tap.is_(counts, want, 'the summary counts, category by category')
    tap.ok('%d statement lines' % (rows_want + 3) in out,
           'the summary counts the statement lines')

    doc, rows = read_report(reports, day)
    tap.is_(doc.get('summary'), want, 'the JSON report: the same summary')
    amounts = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^\s+(\w+)\s+\d+\s+(-?\d+)$', out, re.M)}
    tap.ok(len(amounts) == len(want) and doc.get('amounts') == amounts,
           'the JSON report: the amounts the standard output shows, '
           'category by category', doc.get('amounts'), amounts)
    tap.is_((doc.get('profile'), doc.get('date'), doc.get('statement_lines')),
            ('wxshop', day, rows_want + 3), 'the JSON report: profile, day, '
            'lines')
    tap.is_(len(doc.get('rows', [])), sum(want.values()),
            'the JSON report: a row per fact')
    tap.is_(len(rows), sum(want.values()), 'the CSV report: a row per fact')
    tap.is_(by_cat(rows, 'missing_here'), sorted(txn[o][0] for o in dropped),
            'missing here: exactly the payments whose notifications were '
            'lost')
    tap.is_(by_cat(rows, 'missing_at_provider'),
            sorted([txn[omitted][0], txn[only_here][0]]),
            'missing at the provider: the payment left out and the one '
            'only payhook has')
    tap.is_(by_cat(rows, 'amount_differs'), [txn[altered][0]],
            'amount differs: the altered payment')
    differs = [r for r in rows if r['category'] == 'amount_differs']
    tap.is_([(r['statement_amount'], r['stored_amount']) for r in differs],
            [(str(amount[altered] + 1), str(amount[altered]))],
            '... with both amounts')
    tap.is_(by_cat(rows, 'double_payment', 'order_id'),
            sorted(doubles + silent),
            'double payments: one row for each order paid twice')
    tap.is_(sorted(r['provider_txn_id'] for r in rows
                   if r['category'] == 'double_payment'
                   and r['order_id'] in silent),
            sorted(txn[o][1] for o in silent),
            '... the silent second payments among them')
    matched = set(by_cat(rows, 'matched'))
    tap.ok(all(txn[o][0] in matched for o in normal[:50] + normal[-50:]),
           'matched: the normal payments')
    tap.ok(all(r['action'] == 'applied from the statement' for r in rows
               if r['category'] == 'missing_here') and
           all(r['action'] == 'on the refund work list' for r in rows
               if r['category'] == 'double_payment'),
           'the report says what was done')

    # The repairs.
    orders = {o: inst.order(o) or {} for o in dropped}
    tap.ok(all(orders[o].get('state') == 'PAID' and
               orders[o].get('provider_txn_id') == txn[o][0]
               for o in dropped), 'the dropped orders are PAID now, with '
           'their transactions')
    paid_ev = [e for e in inst.all_events(0)
               if e['type'] == 'order.paid' and e['order_id'] in dropped]
    tap.is_(sorted((e['order_id'], e.get('source')) for e in paid_ev),
            sorted((o, 'statement_file') for o in dropped),
            '... one order.paid each, its source the vouched-for file')
    here_ev = [e for e in inst.all_events(0)
               if e['type'] == 'reconcile.missing_here' and
               e['order_id'] in dropped]
    tap.is_(sorted((e['order_id'], e.get('statement')) for e in here_ev),
            sorted((o, 'vouched_for') for o in dropped),
            '... and one reconcile.missing_here each, the file vouched for')
    rc, items = refunds_list(inst)
    dbl = [x for x in items if x['reason'] == 'double_payment']
    tap.is_(sorted(x['order_id'] for x in dbl), sorted(doubles + silent),
            'every double payment is on the refund work list, once')
    tap.ok(all(x['state'] == 'PENDING' and x['amount'] == amount[x['order_id']]
               for x in dbl), '... PENDING, for the whole extra payment')
    tap.ok(all(re.match(r'^phr[0-9a-f]{12}[0-9]+$', x['refund_id'])
               for x in dbl), '... each with a refund id payhook minted '
           '(phr, the epoch, the sequence)', [x['refund_id'] for x in dbl])
    tap.is_(sorted(x['txn_id'] for x in dbl if x['order_id'] in silent),
            sorted(txn[o][1] for o in silent),
            '... the silent ones refund the second payment')

    # Again: the same report, nothing changed.
    snap = snapshot(inst)
    with open(os.path.join(reports, 'reconcile-wxshop-%s.json' % day),
              'rb') as fh:
        first_json = fh.read()
    with open(os.path.join(reports, 'reconcile-wxshop-%s.csv' % day),
              'rb') as fh:
        first_csv = fh.read()
    rc, out2, err, counts2 = reconcile(inst, stmt, day, reports)
    tap.is_((rc, counts2), (0, want), 'reconcile again: the same counts')
    with open(os.path.join(reports, 'reconcile-wxshop-%s.json' % day),
              'rb') as fh:
        tap.ok(fh.read() == first_json, '... the same JSON report')
    with open(os.path.join(reports, 'reconcile-wxshop-%s.csv' % day),
              'rb') as fh:
        tap.ok(fh.read() == first_csv, '... the same CSV report')
    snap2 = snapshot(inst)
    tap.ok(snap[:2] == (0, 0) and snap2[:2] == (0, 0), '... (payhook events '
           'and order list ran)')
    tap.ok(snap[2] == snap2[2], '... payhook events: unchanged')
    tail = [json.loads(x)['seq'] for x in snap2[2].splitlines()]
    feed = [e['seq'] for e in inst.all_events(0)]
    tap.ok(len(feed) > 1000 and tail == feed, '... events tail without '
           '--follow prints the whole feed, past its first page of 1000',
           len(tail), len(feed))
    tap.ok(snap[3] == snap2[3], '... payhook order list: unchanged')
    rc, items2 = refunds_list(inst)
    tap.is_(items2, items, '... the refund work list: unchanged')

    test_refund_run(tap, inst, sim, dbl, amount, workdir, reports)


def test_refund_run(tap, inst, sim, dbl, amount, workdir, reports):
    """The double payments refunded exactly once, through a SIGKILL."""
    ids = sorted(x['refund_id'] for x in dbl)
    base = inst.last_seq()
    # Slow refund answers, refund notifications held back: the runner is
    # killed while its calls are in flight at the simulator.
    sim.control('/_sim/mode', {'notify': 'pause', 'slow_s': 2})
    sim.control('/_sim/refund_mode', {'api': 'slow'})
    p = subprocess.Popen([PAYHOOK, '-c', inst.config, 'refunds', 'run'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    inflight = wait_for(lambda: sim.stats()['refunds']['calls'] >= 1,
                        timeout=20, step=0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    calls_at_kill = sim.stats()['refunds']['calls']
    tap.ok(inflight and p.returncode == -signal.SIGKILL and
           calls_at_kill >= 1, 'refunds run killed with SIGKILL with %d '
           'refund calls in flight' % calls_at_kill)
    # The simulator finishes what it was sent: those refunds are made
    # although payhook never heard the answers.
    wait_for(lambda: sim.stats()['refunds']['made'] >= calls_at_kill,
             timeout=10)
    made_at_kill = sim.stats()['refunds']['made']
    rc, items = refunds_list(inst)
    tap.ok(all(x['state'] == 'PENDING' for x in items
               if x['refund_id'] in ids),
           '... payhook still holds every one as PENDING (%d made at the '
           'provider)' % made_at_kill)
    sim.control('/_sim/refund_mode', {'api': 'ok'})
    err = refunds_run(inst).stderr.strip()
    tap.diag('refunds run right after: ' + err.splitlines()[-1]
             if err else 'refunds run right after: (no output)')
    time.sleep(5.5)     # the killed run's leases (lease_s = 5) run out
    r = refunds_run(inst)
    tap.is_(r.returncode, 0, 'refunds run again once the leases ran out: '
            'exit 0', r.stderr)
    st = sim.stats()['refunds']
    tap.is_(sorted(st['by_id']), ids, 'the simulator saw exactly our refund '
            'ids')
    tap.is_(sorted(set(v['refunds'] for v in st['by_id'].values())), [1],
            'each refund id refunded exactly once')
    tap.is_(st['made'], len(ids), '%d refunds in all' % len(ids))
    views = [inst.api('GET', '/refunds/%s' % i).json or {} for i in ids]
    tap.ok(all('merchant_reason' in v and v['merchant_reason'] is None and
               v.get('reason') == 'double_payment' for v in views),
           'GET /refunds/<id> of a refund payhook queued: reason '
           'double_payment, merchant_reason null', views[:1])
    tap.ok(any(v['calls'] >= 2 for v in st['by_id'].values()),
           'the in-flight ones were asked again with the same id (%s)'
           % sorted(v['calls'] for v in st['by_id'].values()))
    sref = sim.control('/_sim/refunds', method='GET').json['refunds']
    tap.is_(sorted((v['txn_id'], v['amount']) for v in sref.values()),
            sorted((x['txn_id'], x['amount']) for x in dbl),
            '... of each extra payment, for its whole amount')
    rc, items = refunds_list(inst)
    # Those the killed run had not leased went out at once with the run
    # right after; the run after that asked about them (settled by the
    # answer) and sent the rest again.
    tap.ok(all(x['state'] in ('PROCESSING', 'SUCCEEDED') for x in items
               if x['refund_id'] in ids),
           'accepted: PROCESSING until the refund notifications come, or '
           'SUCCEEDED by a query', [(x['refund_id'], x['state'])
                                    for x in items if x['refund_id'] in ids])

    sim.control('/_sim/mode', {'notify': 'ok', 'slow_s': 10})
    tap.ok(wait_for(lambda: all(x['state'] == 'SUCCEEDED' for x in
                                refunds_list(inst)[1]
                                if x['refund_id'] in ids), timeout=60),
           'the refund notifications (req_info) settle every one: '
           'SUCCEEDED')
    evs = [e for e in inst.all_events(base)]
    succ = [e for e in evs if e['type'] == 'refund.succeeded']
    tap.is_(sorted(e.get('refund_id') for e in succ), ids,
            'one refund.succeeded per refund')
    tap.is_(sorted(e.get('provider_refund_id') for e in succ),
            sorted(v['refund_id'] for v in sref.values()),
            '... naming WeChat\'s refund id')
    tap.ok(not [e for e in evs if e['type'] in ('refund.unmatched',
                                                'notification.conflict')],
           '... no refund.unmatched, no conflict')
    dels = [d for d in sim.deliveries() if d['result'] == 'REFUND']
    tap.ok(dels and all(d['acked'] for d in dels if not d['dropped']),
           'payhook acknowledged every refund notification')
    rc = refunds_run(inst).returncode
    tap.is_((rc, sim.stats()['refunds']['made']), (0, len(ids)),
            'another refunds run: nothing due, nothing refunded')
    o = dbl[0]['order_id']
    ex = [e for e in (inst.order(o) or {}).get('exceptions', [])
          if e.get('refund_state')]
    tap.is_([e.get('refund_state') for e in ex], ['SUCCEEDED'],
            'the order\'s double-payment exception shows the refund done')

    # The refunds' own day: the statement lists them, reconciled as ours.
    today = datetime.datetime.now(BJ).strftime('%Y-%m-%d')
    stmt = os.path.join(workdir, 'bill-%s.txt' % today)
    fetch_statement(tap, sim, today, stmt)
    rc, out, err, counts = reconcile(inst, stmt, today, reports)
    tap.is_((rc, counts.get('refund_matched'), counts.get('refund_mismatch'),
             counts.get('missing_at_provider')), (0, len(ids), 0, 0),
            'the statement of the refunds\' day: every refund matched', out +
            err)

    # A refund is ours only with its payment and the provider's own id
    # too: a row naming another payment, or a second refund under one of
    # our ids (another WeChat refund id, the summary adding up), is not.
    with open(stmt, encoding='utf-8', newline='') as fh:
        lines = fh.read().split('\r\n')
    at = [i for i, line in enumerate(lines) if '`REFUND,' in line][0]
    f = lines[at].split(',`')
    moved = f[:5] + ['4200000000000000000000000001'] + f[6:]
    twice = f[:14] + ['50000000000000000000000000001'] + f[15:]
    total = lines[-2].split(',')
    total[0] = '`%d' % (int(total[0][1:]) + 1)
    total[2] = '`%.2f' % (float(total[2][1:]) + float(f[16]))
    for name, text in (
            ('another payment',
             lines[:at] + [',`'.join(moved)] + lines[at + 1:]),
            ('a second refund under the same id',
             lines[:-3] + [',`'.join(twice), lines[-3], ','.join(total),
                           lines[-1]])):
        bad = os.path.join(workdir, 'bill-%s-%s.txt' % (today, len(name)))
        with open(bad, 'w', encoding='utf-8', newline='') as fh:
            fh.write('\r\n'.join(text))
        base = inst.last_seq()
        rc, out, err, counts = reconcile(inst, bad, today, reports)
        tap.is_((rc, counts.get('refund_mismatch'),
                 [e['type'] for e in inst.all_events(base)]),
                (0, 1, ['reconcile.refund_mismatch']),
                'a refund row of %s: refund_mismatch, raised' % name,
                out + err)


def test_merchant_refunds(tap, inst, sim):
    def pay(oid, amount):
        inst.create_order(oid, amount)
        sim_pay(sim, oid, amount, None)
        return wait_for(lambda: (inst.order(oid) or {}).get('state') ==
                        'PAID', timeout=20)

    def refund(oid, amount, reason='customer returned the goods'):
        return inst.api('POST', '/orders/%s/refunds' % oid,
                        {'amount': amount, 'reason': reason})

    def asked(oid, amount, status, name):
        """Asks amount of oid back; one test point, the answer's status."""
        r = refund(oid, amount)
        tap.is_(r.status, status, name, r.describe())
        return r

    def states(oid):
        return [x['state'] for x in refunds_list(inst)[1]
                if x['order_id'] == oid]

    def refunding(oid):
        """The order's state, amount refunded and amount asked back."""
        o = inst.order(oid) or {}
        return o.get('state'), o.get('refunded'), o.get('refund_requested')

    def event_types(oid, base):
        return [e['type'] for e in inst.all_events(base)
                if e.get('order_id') == oid]

    def settled(oid, n):
        got = wait_for(lambda: sum(1 for s in states(oid)
                                   if s in ('SUCCEEDED', 'FAILED')) >= n,
                       timeout=30)
        if not got:
            tap.diag('refunds of %s: %s' % (oid, states(oid)))
        return got

    oid = 'MR-' + os.urandom(4).hex()
    tap.ok(pay(oid, 1000), 'merchant refund: order %s PAID' % oid)
    base = inst.last_seq()
    r = asked(oid, 300, 201, 'POST /orders/<id>/refunds 300 of 1000: 201')
    body = r.json or {}
    tap.ok(body.get('refund_id', '').startswith('phr') and
           body.get('amount') == 300 and body.get('state') == 'PENDING',
           '... the refund, PENDING, with its id', r.describe())
    o = inst.order(oid)
    tap.is_((o.get('state'), o.get('refund_requested')), ('REFUNDING', 300),
            '... the order is REFUNDING, 300 asked')
    asked(oid, 701, 409, 'another 701 would exceed what was paid: 409')
    asked(oid, 700, 201, 'the remaining 700: 201')
    asked(oid, 1, 409, 'one fen more: 409')
    tap.is_(event_types(oid, base), ['refund.requested', 'refund.requested'],
            'refund.requested twice, nothing for the refused ones')
    r = refunds_run(inst)
    tap.is_(r.returncode, 0, 'refunds run', r.stderr)
    tap.ok(settled(oid, 2), 'both refunds settle by notification')
    tap.is_(refunding(oid), ('REFUNDED', 1000, 1000),
            'the order is REFUNDED, 1000 refunded')
    tap.is_(event_types(oid, base),
            ['refund.requested', 'refund.requested', 'refund.succeeded',
             'refund.succeeded'], '... refund.succeeded twice')
    asked(oid, 1, 409, 'a refunded order cannot be refunded again')

    # A partial refund, then one the provider refuses for good.
    oid = 'MF-' + os.urandom(4).hex()
    tap.ok(pay(oid, 500), 'order %s PAID' % oid)
    base = inst.last_seq()
    r = refund(oid, 200)
    refunds_run(inst)
    tap.ok(settled(oid, 1), 'a partial refund of 200 settles')
    tap.is_(refunding(oid), ('PAID', 200, 200),
            '... the order is PAID again, 200 refunded')
    sim.control('/_sim/refund_mode', {'error': 'TRADE_OVERDUE'})
    asked(oid, 300, 201, 'another 300 asked')
    tap.is_(inst.order(oid).get('state'), 'REFUNDING', '... REFUNDING')
    refunds_run(inst)
    sim.control('/_sim/refund_mode', {'error': ''})
    tap.is_(refunding(oid), ('PAID', 200, 200), 'TRADE_OVERDUE: refused '
            'for good, the order is PAID with 200 refunded')
    tap.is_(event_types(oid, base),
            ['refund.requested', 'refund.succeeded', 'refund.requested',
             'refund.failed'], 'refund.failed raised')
    asked(oid, 300, 201, 'the 300 can be asked again')

    # A notification of a refund payhook never asked for is recorded and
    # raised, nothing else.
    r = inst.api('GET', '/orders/nope-' + os.urandom(2).hex())
    tap.is_(r.status, 404, '(unknown order: 404)')


def test_late_refund_success(tap, inst, sim):
    """A refund reported failed (WeChat Pay's abnormal CHANGE), its amount
    asked again by the merchant, then reported SUCCESS after all (settled
    by hand at the merchant platform): the money went back once, so the
    second refund, not sent yet, is cancelled and never sent."""
    oid = 'LATE-' + os.urandom(4).hex()
    inst.create_order(oid, 1000)
    txn = sim_pay(sim, oid, 1000, None)
    wait_for(lambda: (inst.order(oid) or {}).get('state') == 'PAID',
             timeout=20)
    base = inst.last_seq()
    sim.control('/_sim/refund_mode', {'notify': 'drop'})
    inst.api('POST', '/orders/%s/refunds' % oid,
             {'amount': 1000, 'refund_id': oid + '-r1'})
    refunds_run(inst)
    sim.control('/_sim/refund_mode', {'notify': 'ok'})
    prof = harness.PROFILES['wxshop']
    # The refund the simulator made, under its own refund id, which the
    # day's statement lists.
    theirs = (sim.control('/_sim/refunds', method='GET').json or {}).get(
        'refunds', {}).get(oid + '-r1', {}).get('refund_id')
    inst.notify(harness.wechat_refund_notification(
        prof, oid + '-r1', oid, txn, 1000, 1000, 'CHANGE', theirs))
    tap.is_((inst.api('GET', '/refunds/%s-r1' % oid).json or {}).get(
        'state'), 'FAILED', 'late success: the refund reported CHANGE '
        'fails, its amount released')
    r2 = inst.api('POST', '/orders/%s/refunds' % oid,
                  {'amount': 1000, 'refund_id': oid + '-r2'})
    tap.is_(r2.status, 201, '... asked again as a second refund: 201',
            r2.describe())
    inst.notify(harness.wechat_refund_notification(
        prof, oid + '-r1', oid, txn, 1000, 1000, 'SUCCESS', theirs))
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('refunded'), o.get('refund_requested')),
            ('REFUNDED', 1000, 1000), 'the first reported SUCCESS after '
            'all: REFUNDED, 1000 refunded of 1000 asked', o)
    tap.is_([(e['type'], e.get('refund_id')) for e in
             inst.all_events(base) if e.get('order_id') == oid][-2:],
            [('refund.cancelled', oid + '-r2'),
             ('refund.succeeded', oid + '-r1')],
            '... the second refund cancelled, then the first succeeded')
    refunds_run(inst)
    made = (sim.stats().get('refunds') or {}).get('by_id', {})
    tap.is_(((inst.api('GET', '/refunds/%s-r2' % oid).json or {}).get(
        'state'), made.get(oid + '-r2', {}).get('calls', 0)),
        ('CANCELLED', 0), '... and never sent to the provider')

    # A failure reported after that: raised, the refund still SUCCEEDED.
    base = inst.last_seq()
    r = inst.notify(harness.wechat_refund_notification(
        prof, oid + '-r1', oid, txn, 1000, 1000, 'REFUNDCLOSE', theirs))
    tap.is_((r.status, [(e['type'], e.get('previous_state'), e.get('state'))
                        for e in inst.all_events(base)]),
            (200, [('refund.failed', 'SUCCEEDED', 'SUCCEEDED')]),
            'REFUNDCLOSE after SUCCESS: acknowledged, raised as '
            'refund.failed with previous_state SUCCEEDED', r.describe())
    tap.is_((inst.api('GET', '/refunds/%s-r1' % oid).json or {}).get(
        'state'), 'SUCCEEDED', '... the refund still SUCCEEDED')
    base = inst.last_seq()
    r = inst.notify(harness.wechat_refund_notification(
        prof, oid + '-r1', oid, txn, 1000, 1000, 'CHANGE', theirs))
    tap.is_((r.status, [e['type'] for e in inst.all_events(base)]),
            (200, []), '... another failure of it after that: acknowledged, '
            'raised once only', r.describe())

    # The second refund already gone out and succeeded when the first
    # succeeds after all: more went back than the payment, which nothing
    # can call back; raised on the order for someone to recover.
    def paid(tag):
        o = '%s-%s' % (tag, os.urandom(4).hex())
        inst.create_order(o, 1000)
        t = sim_pay(sim, o, 1000, None)
        wait_for(lambda: (inst.order(o) or {}).get('state') == 'PAID',
                 timeout=20)
        return o, t

    def tell(o, t, n, amount, status):
        """Refund o-r<n>'s result, under the simulator's refund id."""
        made = (sim.control('/_sim/refunds', method='GET').json or {}).get(
            'refunds', {}).get('%s-r%d' % (o, n), {})
        inst.notify(harness.wechat_refund_notification(
            prof, '%s-r%d' % (o, n), o, t, amount, 1000, status,
            made.get('refund_id')))

    def ask(o, n, amount):
        inst.api('POST', '/orders/%s/refunds' % o,
                 {'amount': amount, 'refund_id': '%s-r%d' % (o, n)})
        refunds_run(inst)

    def over(o):
        return [(x.get('type'), x.get('amount'), x.get('refund_id'))
                for x in (inst.order(o) or {}).get('exceptions', [])]

    ov, otxn = paid('OVER')
    sim.control('/_sim/refund_mode', {'notify': 'drop'})
    ask(ov, 1, 600)
    tell(ov, otxn, 1, 600, 'CHANGE')
    ask(ov, 2, 600)
    tell(ov, otxn, 2, 600, 'CHANGE')
    ask(ov, 3, 1000)
    tell(ov, otxn, 3, 1000, 'SUCCESS')
    base = inst.last_seq()
    tell(ov, otxn, 1, 600, 'SUCCESS')
    tell(ov, otxn, 2, 600, 'SUCCESS')
    tap.ok((inst.order(ov) or {}).get('refunded') == 2200 and
           over(ov) == [('over_refunded', 600, ov + '-r1'),
                        ('over_refunded', 600, ov + '-r2')],
           'two failed refunds of 600 succeeding after a third of 1000 went '
           'out: 2200 refunded of 1000, exception over_refunded of 600 '
           'each (1200 over in all)', inst.order(ov))
    tap.is_([(e['type'], e.get('refund_id'), e.get('over_refunded'))
             for e in inst.all_events(base) if e.get('order_id') == ov],
            [('refund.succeeded', ov + '-r1', 600),
             ('refund.succeeded', ov + '-r2', 600)],
            '... each refund.succeeded says its part: over_refunded 600')
    # The late success first, the refund asked since succeeding after.
    ow, wtxn = paid('OVER2')
    sim.control('/_sim/refund_mode', {'status': 'CHANGE'})
    ask(ow, 1, 600)
    tell(ow, wtxn, 1, 600, 'CHANGE')
    sim.control('/_sim/refund_mode', {'status': 'SUCCESS'})
    ask(ow, 2, 1000)
    tell(ow, wtxn, 1, 600, 'SUCCESS')
    tell(ow, wtxn, 2, 1000, 'SUCCESS')
    tap.ok((inst.order(ow) or {}).get('refunded') == 1600 and
           over(ow) == [('over_refunded', 600, ow + '-r2')],
           'a failed refund of 600 succeeding while the 1000 asked since '
           'is out, which then succeeds too: over_refunded of 600 on that '
           'one', inst.order(ow), over(ow))
    sim.control('/_sim/refund_mode', {'notify': 'ok'})

    # A refund payhook never asked for (made at the merchant platform):
    # raised, and an exception on the order.
    base = inst.last_seq()
    r = inst.notify(harness.wechat_refund_notification(
        prof, 'portal-' + os.urandom(3).hex(), oid, txn, 300, 1000,
        'SUCCESS'))
    tap.is_([e['type'] for e in inst.all_events(base)],
            ['refund.unmatched'], 'a refund made by hand at the platform: '
            'refund.unmatched')
    tap.is_([x.get('type') for x in (inst.order(oid) or {}).get(
        'exceptions', [])], ['refund_unmatched'],
        '... and an exception refund_unmatched on the order')


def test_unverified(tap, inst, sim, workdir):
    """A statement nobody vouches for: what it says payhook lacks raises
    alarms and is asked about at the provider; only what the provider
    confirms is applied, and no refund is queued from it."""
    two = (datetime.datetime.now(BJ) - datetime.timedelta(days=2))
    day = two.strftime('%Y-%m-%d')
    start = datetime.datetime(two.year, two.month, two.day, 1, 0, 0,
                              tzinfo=BJ)
    tag = os.urandom(3).hex()
    oids = ['U%s-%02d' % (tag, i) for i in range(6)]
    lost, silent, forged = oids[:3], oids[3], oids[4]
    for i, o in enumerate(oids):
        inst.create_order(o, 500 + i)
    stamp = [(start + datetime.timedelta(minutes=i)).strftime('%Y%m%d%H%M%S')
             for i in range(10)]
    txn = {}
    for i, o in enumerate(lost):
        txn[o] = sim_pay(sim, o, 500 + oids.index(o), stamp[i],
                         {'drop_all': True})
    txn[silent] = sim_pay(sim, silent, 503, stamp[3])
    wait_for(lambda: (inst.order(silent) or {}).get('state') == 'PAID',
             timeout=60)
    extra = sim_pay(sim, silent, 503, stamp[4], {'drop_all': True},
                    force=True)
    stmt = os.path.join(workdir, 'bill-unverified-%s.txt' % day)
    fetch_statement(tap, sim, day, stmt)
    # A row for an order nobody paid, written into the file by hand.
    with open(stmt, 'rb') as fh:
        text = fh.read()
    lines = text.split(b'\r\n')
    row = lines[1].split(b',')
    fake_txn = harness.txn_id('forged')
    row = [f.replace(txn[lost[0]].encode(), fake_txn.encode())
           .replace(lost[0].encode(), forged.encode()) for f in row]
    forged_text = b'\r\n'.join(lines[:2] + [b','.join(row)] + lines[2:])
    reports = os.path.join(workdir, 'reports-unverified')
    os.makedirs(reports)
    base = len(inst.all_events(0))
    rc, out, err, counts = reconcile(inst, stmt, day, reports, trust=False)
    tap.is_(rc, 0, 'an unverified statement: reconcile runs', err)
    tap.is_(counts.get('missing_here'), len(lost) + 1,
            '... the payments payhook lacks are missing here', out)
    tap.ok('asked the provider about %d order(s)' % len(lost) in out and
           '%d confirmed' % len(lost) in out,
           '... and the provider was asked about each pending one', out)
    doc, rows = read_report(reports, day)
    tap.ok(all(r['action'].startswith('not applied') for r in rows
               if r['category'] == 'missing_here'),
           '... the report says nothing was applied from the file')
    evs = inst.all_events(0)[base:]
    tap.is_(sorted(e['order_id'] for e in evs
                   if e['type'] == 'reconcile.missing_here'),
            sorted(lost + [silent]), '... reconcile.missing_here raised '
            'for each')
    tap.is_(sorted((e['order_id'], e.get('source')) for e in evs
                   if e['type'] == 'order.paid'),
            sorted((o, 'query') for o in lost),
            '... the orders the provider confirmed are PAID, by query')
    tap.ok(not any(e['type'] == 'order.double_payment' for e in evs),
           '... the second payment the file shows queues no refund')
    tap.ok(extra, 'the simulator took the second payment')
    tap.ok(any(r['provider_txn_id'] == extra and 'settled already' in
               r['action'] for r in rows),
           '... its row says it waits for a trusted statement, the order '
           'being paid already (nothing to ask)',
           [r for r in rows if r['provider_txn_id'] == extra])
    # Run again: the same report, the payments the provider confirmed
    # since still missing here.
    again = reconcile(inst, stmt, day, reports, trust=False)[3]
    tap.is_(again, counts, 'the unverified statement run again: the same '
            'counts', again)
    # The forged row.
    with open(stmt, 'wb') as fh:
        fh.write(forged_text)
    rc, out, err, counts = reconcile(inst, stmt, day, reports, trust=False)
    tap.is_((inst.order(forged) or {}).get('state'), 'PENDING',
            'a statement that says an unpaid order was paid: it stays '
            'PENDING', out + err)


def bill_moved(src, dst, oid):
    """Statements src and dst (the simulator's bytes) with the row of
    order oid moved from src to dst, each summary made to agree."""
    def parts(text):
        lines = text.split(b'\r\n')
        return lines[:-3], lines[-3], lines[-2].split(b',')

    def summary(fields, n, fen):
        fields = list(fields)
        fields[0] = b'`%d' % (int(fields[0].strip(b'`')) + n)
        total = int(round(float(fields[1].strip(b'`')) * 100)) + fen
        fields[1] = b'`%d.%02d' % (total // 100, total % 100)
        return b','.join(fields)

    s_rows, s_head, s_sum = parts(src)
    d_rows, d_head, d_sum = parts(dst)
    row = [r for r in s_rows if oid.encode() in r][0]
    fen = int(round(float(row.split(b',')[12].strip(b'`')) * 100))
    return (b'\r\n'.join([r for r in s_rows if r != row] +
                          [s_head, summary(s_sum, -1, -fen), b'']),
            b'\r\n'.join(d_rows + [row, d_head, summary(d_sum, 1, fen),
                                    b'']))


def test_slack_neighbour(tap, inst, sim, workdir):
    """A provider's cut-off may put a payment near midnight in the other
    day's statement (within the slack payhook(1) allows): one of 00:30
    that day D's statement lists, one of 23:30 that D+1's lists; neither
    is raised missing at the provider, in the ordinary order of the runs
    (D, then D+1).  One of 23:15 that neither lists is raised, by D+1's
    run, once."""
    d = datetime.datetime.now(BJ) - datetime.timedelta(days=6)
    d1 = d + datetime.timedelta(days=1)
    days = [x.strftime('%Y-%m-%d') for x in (d, d1)]
    tag = os.urandom(3).hex()
    late, early, lost = 'SLA' + tag, 'SLE' + tag, 'SLL' + tag
    for oid, amount, when in ((late, 700, d1.replace(hour=0, minute=30)),
                              (early, 600, d.replace(hour=23, minute=30)),
                              (lost, 500, d.replace(hour=23, minute=15)),
                              ('SLB' + tag, 800, d.replace(hour=12)),
                              ('SLC' + tag, 900, d1.replace(hour=12))):
        inst.create_order(oid, amount)
        sim_pay(sim, oid, amount, when.strftime('%Y%m%d%H%M%S'))
        wait_for(lambda: (inst.order(oid) or {}).get('state') == 'PAID',
                 timeout=30)
    sim_d, sim_d1 = [fetch_statement(tap, sim, day, os.path.join(
        workdir, 'slack-sim-%s.txt' % day)) for day in days]
    day_d1, day_d = bill_moved(sim_d1, sim_d, late)
    day_d, day_d1 = bill_moved(day_d, day_d1, early)
    day_d = bill_moved(day_d, day_d1, lost)[0]
    reports = os.path.join(workdir, 'slack')
    os.makedirs(reports)
    base = inst.last_seq()
    got = []
    for day, text in zip(days, (day_d, day_d1)):
        path = os.path.join(workdir, 'slack-%s.txt' % day)
        with open(path, 'wb') as fh:
            fh.write(text)
        got.append(reconcile(inst, path, day, reports))
    mine = []
    for day in days:
        doc, rows = read_report(reports, day)
        mine += [(day, r['category'], r['order_id']) for r in rows
                 if r['order_id'] in (late, early, lost)]
    evs = [(e['type'], e.get('order_id')) for e in inst.all_events(base)
           if e.get('order_id') in (late, early, lost)]
    tap.ok([g[0] for g in got] == [0, 0] and sorted(mine) == sorted([
        (days[0], 'matched', late), (days[1], 'matched', early),
        (days[1], 'missing_at_provider', lost)]) and
           evs == [('reconcile.missing_at_provider', lost)],
           'payments near midnight in the other day\'s statement: matched '
           'there, not missing at the provider; one neither lists raised '
           'once, by the day after\'s run', [g[0] for g in got], mine, evs,
           got[0][2][-300:], got[1][2][-300:])


def test_unverified_unanswered(tap, inst, sim, workdir):
    """An unverified statement lists a payment of a pending order while
    the provider's query is down: not "0 confirmed" but exit 75, the
    order asked again by the next run, which confirms it."""
    four = (datetime.datetime.now(BJ) - datetime.timedelta(days=4))
    day = four.strftime('%Y-%m-%d')
    oid = 'UA-' + os.urandom(4).hex()
    inst.create_order(oid, 700)
    sim_pay(sim, oid, 700, four.replace(hour=9).strftime('%Y%m%d%H%M%S'),
            {'drop_all': True})
    stmt = os.path.join(workdir, 'bill-unanswered-%s.txt' % day)
    fetch_statement(tap, sim, day, stmt)
    reports = os.path.join(workdir, 'reports-unanswered')
    os.makedirs(reports)
    sim.control('/_sim/mode', {'query': 'down'})
    rc, out, err, counts = reconcile(inst, stmt, day, reports, trust=False)
    sim.control('/_sim/mode', {'query': 'ok'})
    tap.ok(rc == 75 and 'not answered: run it again' in out and
           'got no usable answer' in err and
           (inst.order(oid) or {}).get('state') == 'PENDING',
           'the provider down while an unverified statement\'s pending '
           'order is asked about: exit 75, saying so', rc, out[-300:],
           err[-300:])
    rc, out, err, counts = reconcile(inst, stmt, day, reports, trust=False)
    tap.ok(rc == 0 and (inst.order(oid) or {}).get('state') == 'PAID',
           '... run again, the provider up: exit 0, the order PAID', rc,
           out[-300:], err[-300:])


def test_refused_statements(tap, inst, sim, workdir):
    """A statement that lists a payment twice, a statement of another day
    than the one asked, and a report folder that cannot be written: each
    refused before anything is applied."""
    three = (datetime.datetime.now(BJ) - datetime.timedelta(days=3))
    day = three.strftime('%Y-%m-%d')
    other = (three + datetime.timedelta(days=1)).strftime('%Y-%m-%d')
    at = datetime.datetime(three.year, three.month, three.day, 10, 0, 0,
                           tzinfo=BJ).strftime('%Y%m%d%H%M%S')
    o = 'RF-' + os.urandom(4).hex()
    inst.create_order(o, 900)
    sim_pay(sim, o, 900, at, {'drop_all': True})
    stmt = os.path.join(workdir, 'bill-refused-%s.txt' % day)
    fetch_statement(tap, sim, day, stmt)
    reports = os.path.join(workdir, 'reports-refused')
    os.makedirs(reports)
    with open(stmt, 'rb') as fh:
        text = fh.read()
    lines = text.split(b'\r\n')
    base = inst.last_seq()

    # The row of the payment twice, the summary made to agree.
    rows = [ln for ln in lines[1:] if o.encode() in ln]
    summary = lines[-2].split(b',')
    n = int(summary[0].strip(b'`')) + 1
    total = '%.2f' % (float(summary[1].strip(b'`')) + 9.00)
    summary[0], summary[1] = b'`%d' % n, b'`' + total.encode()
    twice = b'\r\n'.join(lines[:-3] + rows + lines[-3:-2] +
                          [b','.join(summary)] + lines[-1:])
    dup = os.path.join(workdir, 'bill-twice-%s.txt' % day)
    with open(dup, 'wb') as fh:
        fh.write(twice)
    rc, out, err, counts = reconcile(inst, dup, day, reports)
    m = re.search(r'statement line (\d+): the payment of line (\d+) '
                  r'again \(pay:[^)]+\): a fact is listed once', err)
    tap.ok(rc == 1 and m and int(m.group(1)) == len(lines) - 2 and
           int(m.group(2)) < int(m.group(1)),
           'a statement that lists a payment twice: refused, naming the '
           'lines', rc, err[-300:])

    rc, out, err, counts = reconcile(inst, stmt, other, reports)
    tap.ok(rc == 1 and 'another day' in err,
           'the statement of %s given as the one of %s: refused' % (day,
                                                                   other),
           rc, err[-300:])

    missing = os.path.join(workdir, 'no-such-folder')
    rc, out, err, counts = reconcile(inst, stmt, day, missing)
    tap.ok(rc == 1 and 'report folder' in err,
           'a report folder that is not there: refused', rc, err[-300:])
    tap.is_([e['type'] for e in inst.all_events(base)], [],
            '... none of the three changed anything: no event')
    tap.is_((inst.order(o) or {}).get('state'), 'PENDING',
            '... the payment they list is not applied')
    rc, out, err, counts = reconcile(inst, stmt, day, reports)
    tap.ok(rc == 0 and (inst.order(o) or {}).get('state') == 'PAID',
           'the statement itself, into a folder that is there: applied',
           rc, err[-300:])


def main(tap):
    sim = Simulator(tap, time_factor=1000).start()
    inst = ReconInstance(tap, sim_port=sim.port, max_procs=4)
    inst.start()
    sim.point_at(inst)
    workdir = os.path.join(inst.dir, 'recon')
    os.makedirs(workdir)
    test_day(tap, inst, sim, workdir)
    test_unverified(tap, inst, sim, workdir)
    test_unverified_unanswered(tap, inst, sim, workdir)
    test_slack_neighbour(tap, inst, sim, workdir)
    test_merchant_refunds(tap, inst, sim)
    test_late_refund_success(tap, inst, sim)
    test_refund_query(tap, inst, sim)
    test_lost_refund_result(tap, inst, sim, workdir)
    test_refused_statements(tap, inst, sim, workdir)
    test_settle_by_hand(tap, inst, sim, workdir)
    test_failed_then_listed(tap, inst, sim, workdir)
    test_extra_refund_state(tap, inst, sim, workdir)
    test_listed_before_registered(tap, inst, sim, workdir)
    test_many_refunds(tap, inst, sim)
    test_backup_killed(tap, inst, workdir)


def test_backup_killed(tap, inst, workdir):
    """`payhook backup` killed while it copies (here a store of some
    thousands of orders): nothing is left under the name given, where a
    copy taken off-site would be a broken one; run again, it writes it."""
    if harness.E2E_STORE != 'lmdb':
        return                  # PostgreSQL: backup refuses
    dest = os.path.join(workdir, 'killed.mdb')
    p = subprocess.Popen([harness.PAYHOOK, '-c', inst.config, 'backup',
                          dest], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen, deadline = [], time.time() + 30
    while p.poll() is None and not seen and time.time() < deadline:
        seen = [n for n in os.listdir(workdir) if n.startswith('killed.')]
    p.kill()
    p.wait()
    whole = os.path.exists(dest) and subprocess.run(
        ['mdb_stat', '-n', dest], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0
    tap.ok(seen and (not os.path.exists(dest) or whole), 'backup killed '
           'while it copies: no file half written under the name given',
           seen, os.path.exists(dest) and os.path.getsize(dest))
    for n in os.listdir(workdir):
        if n.startswith('killed.'):
            os.unlink(os.path.join(workdir, n))
    r = inst.cli('backup', dest)
    tap.ok(r.returncode == 0 and subprocess.run(
        ['mdb_stat', '-n', dest], stdout=subprocess.DEVNULL).returncode == 0,
        '... run again, it writes a whole copy', r.stderr[-300:])


def test_many_refunds(tap, inst, sim):
    """More refunds to make than one batch of the runner (256): one run
    sends every one of them, the newest too (it took the oldest 256 only,
    and while they stayed open at the provider, no newer refund was ever
    sent)."""
    sim.control('/_sim/refund_mode', {'api': 'ok', 'notify': 'drop'})
    tag = 'MR' + os.urandom(3).hex()
    oids = ['%s-%03d' % (tag, i) for i in range(257)]

    def paid_refund(oid):
        inst.create_order(oid, 100)
        inst.pay(oid, 100, harness.txn_id(oid))
        r = inst.api('POST', '/orders/%s/refunds' % oid, {'amount': 100})
        return (r.json or {}).get('refund_id')

    rids = harness.parallel(paid_refund, oids, workers=8)
    tap.ok(all(rids), '257 paid orders, a refund asked of each')
    r = refunds_run(inst)
    unsent = [rid for rid in rids if (inst.api('GET', '/refunds/%s' % rid)
                                      .json or {}).get('sent_at') is None]
    # (The simulator has none of these payments: each answer is a
    # refusal, which the run reports; sent is what counts here.)
    m = re.search(r' due=(\d+) sent=(\d+) ', r.stderr)
    tap.ok(unsent == [] and m and int(m.group(1)) >= 257 and
           m.group(1) == m.group(2),
           'one refunds run sends all 257 refunds, past its batch of 256 '
           '(and any other still open)', unsent, r.stderr[-300:])
    sim.control('/_sim/refund_mode', {'notify': 'ok'})


def test_listed_before_registered(tap, inst, sim, workdir):
    """A payment only the statement tells of, for an order the merchant
    registers after the reconcile (its notifications lost): unknown_order
    then; registered, the order is PAID, and the next reconcile of the
    day reports it missing here and raises reconcile.missing_here, once."""
    day = datetime.datetime.now(BJ).strftime('%Y-%m-%d')
    oid = 'LB-' + os.urandom(4).hex()
    r = sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': oid,
                                  'amount': 700,
                                  'notify': {'drop_all': True}})
    txn = (r.json or {}).get('txn_id')
    tap.ok(txn, 'the provider takes a payment of an order payhook lacks',
           r.describe())
    path = os.path.join(workdir, 'listed-before-registered.txt')
    fetch_statement(tap, sim, day, path)
    reports = os.path.join(workdir, 'listed-before-registered')
    os.makedirs(reports)
    base = inst.last_seq()

    def run():
        rc, out, err, counts = reconcile(inst, path, day, reports)
        doc, rows = read_report(reports, day)
        return [x['category'] for x in rows if x['provider_txn_id'] == txn]
    tap.is_(run(), ['unknown_order'], 'reconciled before it is registered: '
            'unknown_order')
    r = inst.create_order(oid, 700)
    tap.is_((r.status, (r.json or {}).get('state')), (201, 'PAID'),
            '... registered: 201 PAID', r.describe())
    tap.is_(run(), ['missing_here'], '... reconciled again: missing here')
    run()
    tap.is_([e['type'] for e in inst.all_events(base)
             if e.get('order_id') == oid],
            ['payment.unknown_order', 'order.paid',
             'reconcile.missing_here'],
            '... raised as reconcile.missing_here, once over three runs')


def test_failed_then_listed(tap, inst, sim, workdir):
    """A payment payhook knows only as failed (a notification said so)
    that the statement lists as made, every notification of it lost: it is
    missing here, applied from the statement, not "matched"."""
    day = datetime.datetime.now(BJ).strftime('%Y-%m-%d')
    oid = 'FL-' + os.urandom(4).hex()
    inst.create_order(oid, 500)
    txn = harness.txn_id(oid)
    inst.pay(oid, 500, txn, result_code='FAIL')
    r = sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': oid,
                                  'amount': 500, 'txn_id': txn,
                                  'notify': {'drop_all': True}})
    tap.is_(r.status, 200, 'the provider takes the payment the '
            'notification said failed', r.describe())
    path = os.path.join(workdir, 'failed-then-listed.txt')
    fetch_statement(tap, sim, day, path)
    reports = os.path.join(workdir, 'failed-then-listed')
    os.makedirs(reports)
    base = inst.last_seq()
    rc, out, err, counts = reconcile(inst, path, day, reports)
    doc, rows = read_report(reports, day)
    mine = [(x['category'], x['action']) for x in rows
            if x['provider_txn_id'] == txn]
    tap.is_((mine, (inst.order(oid) or {}).get('state'),
             [e['type'] for e in inst.all_events(base)
              if e.get('order_id') == oid]),
            ([('missing_here', 'applied from the statement')], 'PAID',
             ['order.paid', 'reconcile.missing_here']),
            'a payment known as failed, listed as made: missing here, '
            'applied, the order PAID', err[-400:])


def test_extra_refund_state(tap, inst, sim, workdir):
    """A double payment's row says where its refund stands: on the work
    list, refunded, or failed and left to a person; a payment the statement
    lists in another currency names the currency payhook holds.  The same
    again when reconciled again."""
    day = datetime.datetime.now(BJ).strftime('%Y-%m-%d')
    extra = {}
    for how in ('queued', 'succeeded', 'failed'):
        oid = 'XR-%s-%s' % (how, os.urandom(3).hex())
        inst.create_order(oid, 600)
        sim_pay(sim, oid, 600, None)
        wait_for(lambda: (inst.order(oid) or {}).get('state') == 'PAID',
                 timeout=20)
        txn = sim_pay(sim, oid, 600, None, force=True)
        wait_for(lambda: any(x['order_id'] == oid
                             for x in refunds_list(inst)[1]), timeout=20)
        rid = [x['refund_id'] for x in refunds_list(inst)[1]
               if x['order_id'] == oid][0]
        if how != 'queued':
            r = inst.cli('refunds', 'settle', rid, '--' + how)
            tap.is_(r.returncode, 0, 'refunds settle --%s of the double '
                    'payment\'s refund' % how, r.stderr[-300:])
        extra[how] = (txn, rid)
    # And a payment the statement lists in another currency.
    other = 'XR-usd-' + os.urandom(3).hex()
    inst.create_order(other, 600)
    usd = sim_pay(sim, other, 600, None)
    wait_for(lambda: (inst.order(other) or {}).get('state') == 'PAID',
             timeout=20)
    path = os.path.join(workdir, 'extra-refunds.txt')
    text = fetch_statement(tap, sim, day, path).decode('utf-8')
    lines = text.split('\r\n')
    at = [i for i, line in enumerate(lines) if usd in line][0]
    tap.ok('`CNY' in lines[at], 'the statement lists the payment in CNY',
           lines[at])
    lines[at] = lines[at].replace('`CNY', '`USD')
    with open(path, 'w', encoding='utf-8', newline='') as fh:
        fh.write('\r\n'.join(lines))
    want = {
        usd: 'raised: for a person to look at (payhook holds it in CNY)',
        extra['queued'][0]: 'on the refund work list',
        extra['succeeded'][0]: 'refunded: refund %s' % extra['succeeded'][1],
        extra['failed'][0]: 'its refund %s failed: for a person to look at'
        % extra['failed'][1],
    }
    for run in ('', 'again: '):
        reports = os.path.join(workdir, 'extra-refunds' + run[:5])
        os.makedirs(reports)
        rc, out, err, counts = reconcile(inst, path, day, reports)
        doc, rows = read_report(reports, day)
        got = {x['provider_txn_id']: (x['category'], x['action'])
               for x in rows if x['provider_txn_id'] in want}
        in_json = {x['provider_txn_id']: x['action'] for x in doc['rows']
                   if x['provider_txn_id'] in want}
        tap.is_((rc, got, in_json),
                (0, {t: ('amount_differs' if t == usd else 'double_payment',
                         a) for t, a in want.items()}, want),
                '%sa double payment\'s row says where its refund stands '
                '(queued, refunded, failed), one in another currency names '
                'the one payhook holds, in both reports' % run, err[-400:])


def test_refund_query(tap, inst, sim):
    """A refund WeChat accepted whose result notification is lost: the
    next run asks for its state (/pay/refundquery) instead of sending it
    again, and that answer settles it, either way."""
    def paid_refund(amount):
        return paid_refund_of(inst, sim, 'RQ', amount)

    def state(rid):
        return refund_state(inst, rid)

    def seen(rid):
        return sim.stats()['refunds']['by_id'].get(rid)

    def view(rid):
        return inst.api('GET', '/refunds/%s' % rid).json or {}

    sim.control('/_sim/refund_mode', {'notify': 'drop'})
    oid, rid = paid_refund(600)
    tap.ok(view(rid).get('merchant_reason') == '' and
           view(rid).get('reason') == 'merchant',
           'a merchant\'s refund asked for without a reason: '
           'merchant_reason empty', view(rid))
    base = inst.last_seq()
    r = refunds_run(inst)
    tap.ok(r.returncode == 0 and state(rid) == 'PROCESSING' and
           seen(rid) == {'calls': 1, 'refunds': 1, 'queries': 0},
           'refund query: the first run sends the refund, accepted: '
           'PROCESSING, nothing asked', r.stderr[-300:], seen(rid))
    tap.ok(re.match(r'^\d+$', view(rid).get('provider_refund_id') or ''),
           '... its provider_refund_id, as WeChat\'s accepting answer named '
           'it, shown while PROCESSING', view(rid))
    sim.control('/_sim/refund_mode', {'api': 'down'})
    r = refunds_run(inst)
    tap.ok(r.returncode != 0 and state(rid) == 'PROCESSING',
           '... the refund API down: the next run fails and it stays '
           'PROCESSING', r.returncode, state(rid))
    sim.control('/_sim/refund_mode', {'api': 'ok'})
    r = refunds_run(inst)
    o = inst.order(oid) or {}
    tap.ok(r.returncode == 0 and state(rid) == 'SUCCEEDED' and
           o.get('state') == 'REFUNDED' and o.get('refunded') == 600,
           '... then the run asks WeChat and the answer settles it: '
           'SUCCEEDED, the order REFUNDED', r.stderr[-300:], o)
    tap.is_(seen(rid), {'calls': 1, 'refunds': 1, 'queries': 1},
            '... one refund query, the refund never sent again')
    sref = sim.control('/_sim/refunds', method='GET').json['refunds']
    evs = [(e['type'], e.get('source'), e.get('provider_refund_id'))
           for e in inst.all_events(base) if e.get('order_id') == oid]
    tap.is_(evs, [('refund.succeeded', 'refund', sref[rid]['refund_id'])],
            '... refund.succeeded, naming WeChat\'s refund id')
    refunds_run(inst)
    tap.is_(seen(rid), {'calls': 1, 'refunds': 1, 'queries': 1},
            '... settled: not asked about again')

    # Closed at WeChat (REFUNDCLOSE): the query fails it, the amount may
    # be asked for again.
    sim.control('/_sim/refund_mode', {'status': 'REFUNDCLOSE'})
    oid, rid = paid_refund(700)
    refunds_run(inst)
    sim.control('/_sim/refund_mode', {'status': 'SUCCESS'})
    r = refunds_run(inst)
    o = inst.order(oid) or {}
    tap.ok(r.returncode == 0 and state(rid) == 'FAILED' and
           o.get('state') == 'PAID' and not o.get('refunded') and
           not o.get('refund_requested'),
           'refund query: REFUNDCLOSE fails it, the order PAID, nothing '
           'held back', r.stderr[-300:], o)

    # WeChat's signed answers about our refund report another amount:
    # not the refund as asked, so nothing is settled; raised once as
    # refund.unmatched, held PROCESSING for a person to settle.
    sim.control('/_sim/refund_mode', {'answer_delta': -100})
    oid, rid = paid_refund(800)
    base = inst.last_seq()
    r = refunds_run(inst)
    evs = [(e['type'], e.get('amount'), e.get('refund_id'))
           for e in inst.all_events(base) if e.get('order_id') == oid]
    tap.ok(r.returncode == 75 and state(rid) == 'PROCESSING' and
           'the provider reports 700, not the 800 asked' in r.stderr and
           evs == [('refund.unmatched', 700, rid)],
           'an answer reporting 700 of a refund of 800: exit 75, a '
           'warning, PROCESSING, refund.unmatched with the amount '
           'reported', r.returncode, r.stderr[-300:], evs)
    tap.ok('settle it by hand' in (view(rid).get('last_error') or '') and
           [x.get('type') for x in (inst.order(oid) or {}).get(
               'exceptions', [])] == ['refund_unmatched'] and
           (inst.order(oid) or {}).get('refunded', 0) == 0,
           '... its last_error says why, an exception on the order, '
           'nothing counted refunded', view(rid), inst.order(oid))
    # The same amount told again by a refund notification: the same
    # answer, raised once whichever path brings it.
    sref = sim.control('/_sim/refunds', method='GET').json['refunds'][rid]
    base = inst.last_seq()
    n = inst.notify(harness.wechat_refund_notification(
        harness.PROFILES['wxshop'], rid, oid, sref['txn_id'], 700, 800,
        'SUCCESS', refund_id=sref['refund_id']))
    tap.ok(n.status == 200 and n.body == harness.SUCCESS_ACK and
           inst.all_events(base) == [] and state(rid) == 'PROCESSING',
           '... a refund notification of the same 700: acknowledged, '
           'nothing raised again, still PROCESSING', n.describe(),
           inst.all_events(base))
    base = inst.last_seq()
    r = refunds_run(inst)
    tap.ok(r.returncode == 75 and state(rid) == 'PROCESSING' and
           inst.all_events(base) == [] and seen(rid) == {
               'calls': 1, 'refunds': 1, 'queries': 1},
           '... the next run asks (refundquery: SUCCESS, 700 again): '
           'exit 75, nothing raised again, never sent again',
           r.returncode, seen(rid), inst.all_events(base))
    sim.control('/_sim/refund_mode', {'answer_delta': 0})
    r = refunds_run(inst)
    o = inst.order(oid) or {}
    tap.ok(r.returncode == 0 and state(rid) == 'SUCCEEDED' and
           o.get('refunded') == 800 and view(rid).get('last_error') is None,
           '... an answer of the amount asked settles it, and what held it '
           'back is no longer shown', r.returncode, r.stderr[-300:], o,
           view(rid))
    # An answer reporting 0 is another amount too, not "none told".
    sim.control('/_sim/refund_mode', {'answer_delta': -900})
    oid, rid = paid_refund(900)
    base = inst.last_seq()
    r = refunds_run(inst)
    evs = [(e['type'], e.get('amount')) for e in inst.all_events(base)
           if e.get('order_id') == oid]
    tap.ok(r.returncode == 75 and state(rid) == 'PROCESSING' and
           evs == [('refund.unmatched', 0)] and
           not (inst.order(oid) or {}).get('refunded'),
           'an answer reporting 0 of a refund of 900: refund.unmatched, '
           'nothing refunded', r.returncode, r.stderr[-300:], evs,
           inst.order(oid))
    sim.control('/_sim/refund_mode', {'answer_delta': 0})
    refunds_run(inst)
    sim.control('/_sim/refund_mode', {'notify': 'ok'})


def test_settle_by_hand(tap, inst, sim, workdir):
    """Refunds held for an answer of another amount, settled by the
    operator with what the provider's platform shows: the money counted
    as the operator says, and a settlement the day's statement does not
    bear out raised by reconciliation."""
    def paid_refund(amount):
        return paid_refund_of(inst, sim, 'SH', amount)

    def state(rid):
        return refund_state(inst, rid)

    sim.control('/_sim/refund_mode', {'notify': 'drop', 'answer_delta': -900})
    oid, rid = paid_refund(900)
    first = oid
    refunds_run(inst)
    # Here the operator finds that it did not go back.
    base = inst.last_seq()
    r = inst.cli('refunds', 'settle', rid, '--failed')
    o = inst.order(oid) or {}
    tap.ok(r.returncode == 0 and json.loads(r.stdout or '{}').get(
        'state') == 'FAILED' and state(rid) == 'FAILED' and
           o.get('refund_requested', 0) == 0 and [
               (e['type'], e.get('source')) for e in inst.all_events(base)
           ] == [('refund.failed', 'operator')], 'refunds settle --failed: '
           'FAILED, its amount free again, refund.failed from the operator',
           r.returncode, r.stdout[-300:], r.stderr[-300:], o,
           inst.all_events(base))
    for args, want in ((['--failed'], 'is FAILED already'),
                       (['--succeeded', '--amount', '901'],
                        'cannot have succeeded with more')):
        r = inst.cli('refunds', 'settle', rid, *args)
        tap.ok(r.returncode == 1 and want in r.stderr, 'refunds settle %s '
               'of that refund: exit 1, saying why' % ' '.join(args),
               r.returncode, r.stderr[-300:])
    # Here that 700 of the 800 asked went back: the rest is free again.
    sim.control('/_sim/refund_mode', {'answer_delta': -100})
    oid, rid = paid_refund(800)
    refunds_run(inst)
    base = inst.last_seq()
    r = inst.cli('refunds', 'settle', rid, '--succeeded', '--amount', '700')
    got = json.loads(r.stdout or '{}')
    o = inst.order(oid) or {}
    tap.ok(r.returncode == 0 and (got.get('state'), got.get('amount'),
                                  got.get('asked_amount')) ==
           ('SUCCEEDED', 700, 800) and got.get('last_error') is None and
           (o.get('refunded'), o.get('refund_requested')) == (700, 700) and
           [(e['type'], e.get('amount'), e.get('source')) for e in
            inst.all_events(base)] == [('refund.succeeded', 700, 'operator')],
           'refunds settle --succeeded --amount 700 of a refund of 800 held '
           'for that answer: SUCCEEDED with 700 (asked_amount 800), 700 '
           'refunded, refund.succeeded from the operator', r.returncode,
           r.stdout[-400:], r.stderr[-300:], o, inst.all_events(base))
    r = inst.api('POST', '/orders/%s/refunds' % oid,
                 {'amount': 800, 'refund_id': rid})
    tap.ok(r.status == 200 and (r.json or {}).get('amount') == 700,
           '... the merchant asking the same refund of 800 again: 200, the '
           'refund as it is now', r.describe())
    r = inst.api('POST', '/orders/%s/refunds' % oid, {'amount': 100})
    tap.is_(r.status, 201, '... the 100 that did not go back may be asked '
            'again', r.describe())
    inst.api('POST', '/refunds/%s/cancel' % (r.json or {}).get('refund_id'))
    sim.control('/_sim/refund_mode', {'answer_delta': 0})
    r = refunds_run(inst)
    tap.is_(r.returncode, 0, '... and the next run has nothing held back',
            r.stderr[-300:])
    # Not while refunds run has it: its answer, on the way, counts.
    sim.control('/_sim/mode', {'slow_s': 3})
    sim.control('/_sim/refund_mode', {'api': 'slow'})
    busy, brid = paid_refund(500)
    runner = subprocess.Popen([harness.PAYHOOK, '-c', inst.config, 'refunds',
                               'run'], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: (inst.api('GET', '/refunds/%s' % brid).json or {}).get(
        'sent_at') is not None, timeout=10)
    r = inst.cli('refunds', 'settle', brid, '--failed')
    tap.ok(r.returncode == 1 and 'is leased to refunds run for' in r.stderr,
           'refunds settle of a refund refunds run is sending: exit 1, '
           'saying why', r.returncode, r.stderr[-300:])
    runner.wait(timeout=60)
    # One at a time behind the slow provider, three refunds outlast
    # lease_s (5): each is leased as it goes out, so one still waiting is
    # the operator's to settle (and never sent then), one in flight not.
    one = os.path.join(inst.etc, 'one-at-a-time.conf')   # same paths
    with open(inst.config) as fh:
        harness.write_file(one, fh.read().replace(
            '[core]\n', '[core]\nsweep_concurrency = 1\n', 1), 0o644)
    three = [paid_refund(300)[1] for _ in range(3)]
    runner = subprocess.Popen([harness.PAYHOOK, '-c', one, 'refunds', 'run'],
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: (inst.api('GET', '/refunds/%s' % three[1]).json or
                      {}).get('sent_at') is not None, timeout=20)
    in_flight = inst.cli('refunds', 'settle', three[1], '--failed')
    waiting = inst.cli('refunds', 'settle', three[2], '--failed')
    runner.wait(timeout=60)
    made = (sim.stats().get('refunds') or {}).get('by_id', {})
    tap.ok(in_flight.returncode == 1 and waiting.returncode == 0 and
           refund_state(inst, three[2]) == 'FAILED' and
           made.get(three[2], {}).get('calls', 0) == 0,
           'refunds run one at a time past lease_s: the refund in flight '
           'cannot be settled by hand, the one still waiting can, and is '
           'never sent', in_flight.stderr[-200:], waiting.stderr[-200:],
           made.get(three[2]))
    sim.control('/_sim/refund_mode', {'api': 'ok'})
    sim.control('/_sim/mode', {'slow_s': 10})
    refunds_run(inst)
    tap.ok(refund_state(inst, brid) == 'SUCCEEDED' and
           refund_state(inst, three[1]) == 'SUCCEEDED', '... and their '
           'answers settled those in flight')
    # A double payment is repaid whole, or not: no rest to ask again.
    dbl = 'SHD-' + os.urandom(4).hex()
    inst.create_order(dbl, 1000)
    sim_pay(sim, dbl, 1000, None)
    wait_for(lambda: (inst.order(dbl) or {}).get('state') == 'PAID',
             timeout=20)
    sim.control('/_sim/refund_mode', {'answer_delta': -100})
    sim_pay(sim, dbl, 1000, None, force=True)
    wait_for(lambda: [x for x in (inst.order(dbl) or {}).get(
        'exceptions', []) if x.get('type') == 'double_payment'], timeout=20)
    refunds_run(inst)
    drid = next((x.get('refund_id') for x in (inst.api(
        'GET', '/orders/%s/refunds' % dbl).json or {}).get('refunds', [])
        if x.get('reason') == 'double_payment'), None)
    r = inst.cli('refunds', 'settle', str(drid), '--succeeded', '--amount',
                 '900')
    tap.ok(r.returncode == 1 and 'repays a double_payment whole' in r.stderr
           and refund_state(inst, drid) == 'PROCESSING', 'refunds settle '
           '--amount of a double payment\'s refund: exit 1, saying why',
           r.returncode, r.stderr[-300:], drid)
    r = inst.cli('refunds', 'settle', str(drid), '--succeeded')
    tap.ok(r.returncode == 0 and refund_state(inst, drid) == 'SUCCEEDED',
           '... --succeeded in whole: SUCCEEDED', r.returncode,
           r.stderr[-300:])
    sim.control('/_sim/refund_mode', {'answer_delta': 0})
    sim.control('/_sim/refund_mode', {'notify': 'ok'})
    # The provider's statement lists both refunds as asked: neither
    # settlement is borne out, and the day's reconciliation says so.
    today = datetime.datetime.now(BJ).strftime('%Y-%m-%d')
    stmt = os.path.join(workdir, 'bill-hand-%s.txt' % today)
    fetch_statement(tap, sim, today, stmt)
    reports = os.path.join(workdir, 'hand')
    os.makedirs(reports)
    rc, out, err, counts = reconcile(inst, stmt, today, reports)
    doc, rows = read_report(reports, today)
    mine = sorted((r['order_id'], r['category']) for r in rows
                  if r['order_id'] in (first, oid) and
                  r['category'].startswith('refund'))
    tap.is_(mine, sorted([(first, 'refund_mismatch'),
                          (oid, 'refund_mismatch')]),
            'refunds settled by hand unlike the statement: '
            'refund_mismatch, each', out + err)


def test_lost_refund_result(tap, inst, sim, workdir):
    """A refund made at the provider whose result notification is lost
    and whose state cannot be asked (the refund API down after it was
    accepted): the day's statement settles it, only when it is one
    payhook may trust."""
    oid = 'LR-' + os.urandom(4).hex()
    inst.create_order(oid, 800)
    sim_pay(sim, oid, 800, None)
    wait_for(lambda: (inst.order(oid) or {}).get('state') == 'PAID',
             timeout=20)
    sim.control('/_sim/refund_mode', {'notify': 'drop'})
    r = inst.api('POST', '/orders/%s/refunds' % oid, {'amount': 800})
    rid = (r.json or {}).get('refund_id')
    refunds_run(inst)
    sim.control('/_sim/refund_mode', {'api': 'down'})
    refunds_run(inst)
    sim.control('/_sim/refund_mode', {'notify': 'ok'})
    got = inst.api('GET', '/refunds/%s' % rid).json or {}
    tap.is_(got.get('state'), 'PROCESSING', 'a refund whose result never '
            'came and cannot be asked: PROCESSING after two runs', got)
    today = datetime.datetime.now(BJ).strftime('%Y-%m-%d')
    stmt = os.path.join(workdir, 'bill-lost-%s.txt' % today)
    fetch_statement(tap, sim, today, stmt)
    reports = os.path.join(workdir, 'lost')
    os.makedirs(reports)
    rc, out, err, counts = reconcile(inst, stmt, today, reports,
                                     trust=False)
    got = inst.api('GET', '/refunds/%s' % rid).json or {}
    tap.ok(rc == 0 and got.get('state') == 'PROCESSING',
           '... an unverified statement listing it settles nothing',
           rc, got, err[-300:])
    doc, rows = read_report(reports, today)
    mine = [r for r in rows if r['order_id'] == oid and
            r['category'].startswith('refund')]
    tap.ok(len(mine) == 1 and mine[0]['category'] == 'refund_matched' and
           'not settled' in mine[0]['action'],
           '... and matches it, saying it is not settled: ours, its result '
           'awaited, no mismatch', mine)
    base = inst.last_seq()
    rc, out, err, counts = reconcile(inst, stmt, today, reports)
    got = inst.api('GET', '/refunds/%s' % rid).json or {}
    o = inst.order(oid) or {}
    tap.ok(rc == 0 and got.get('state') == 'SUCCEEDED' and
           o.get('state') == 'REFUNDED' and o.get('refunded') == 800,
           '... the statement payhook trusts settles it: SUCCEEDED, the '
           'order REFUNDED', rc, got, o, err[-300:])
    evs = [(e['type'], e.get('source')) for e in inst.all_events(base)
           if e.get('order_id') == oid]
    tap.is_(evs, [('refund.succeeded', 'statement_file')],
            '... refund.succeeded, learnt from the statement')
    rc, out2, err, counts = reconcile(inst, stmt, today, reports)
    tap.ok(rc == 0 and counts.get('refund_mismatch') == 0,
           '... and the statement reconciled again: every refund matched',
           out2 + err)
    sim.control('/_sim/refund_mode', {'api': 'ok'})


if __name__ == '__main__':
    harness.run(main)
