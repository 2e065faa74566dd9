#!/usr/bin/env python3
"""End to end: /metrics as Prometheus reads it, and the monitoring files
shipped in deploy/.

lighttpd with two payhook.fcgi processes, the provider simulator, a push
receiver, and every job: notifications (signed, forged, one named by a
wrong token's call), a sweep that finds dropped notifications' payments,
a refunds run, a reconcile, event push.  Then:

* ``promtool check metrics`` on the page (Prometheus's own linter): it
  prints nothing and exits 0, before any traffic and after it;
* payhook_build_info names the build payhook.fcgi --version names;
* the histograms: buckets cumulative, ending in +Inf, _count equal to
  the +Inf bucket and to the requests sent (by route and by profile);
* the jobs' last-success timestamps: 0 before, the time of the run after
  a run without a provider failure, unchanged by a sweep whose provider
  is down;
* every family on the page is documented in payhook.fcgi(8);
* ``promtool check rules deploy/prometheus/alerts.yml`` and
  ``promtool test rules tests/e2e/alerts_test.yml`` (the alerts fire on
  the series they are meant for, and not otherwise);
* the alerting rules and deploy/grafana/payhook.json use only metric
  names on the page.

promtool comes from PATH or from Debian's prometheus package
(tools/promtool); without either the file is skipped.
"""

import datetime
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PAYHOOK_FCGI, SUCCESS_ACK, make_payment,  # noqa: E402
                     parse_metrics, txn_id)
from test_beyond import Receiver  # noqa: E402

BJ = datetime.timezone(datetime.timedelta(hours=8))
JOBS = ('sweep', 'refunds', 'reconcile', 'push')
SUFFIXES = ('_bucket', '_sum', '_count')


def family_of(name, types):
    """The family a sample name belongs to (a histogram's _bucket, _sum,
    _count are its own)."""
    if name in types:
        return name
    for suffix in SUFFIXES:
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == 'histogram':
            return base
    return None


def histogram(values, family, labels):
    """[(le, cumulative count)...], sum, count of one histogram series;
    labels: 'k="v"' pairs joined by commas."""
    buckets = []
    pre = '%s_bucket{%s,le="' % (family, labels)
    for series, v in values.items():
        if series.startswith(pre):
            le = series[len(pre):-2]
            buckets.append((float('inf') if le == '+Inf' else float(le), v))
    buckets.sort()
    return (buckets, values.get('%s_sum{%s}' % (family, labels)),
            values.get('%s_count{%s}' % (family, labels)))


def check_histogram(tap, values, family, labels, want, name):
    buckets, total, count = histogram(values, family, labels)
    counts = [c for _le, c in buckets]
    tap.ok(len(buckets) >= 2 and buckets[-1][0] == float('inf'),
           '%s: buckets end in le="+Inf"' % name, buckets)
    tap.ok(all(a <= b for a, b in zip(counts, counts[1:])),
           '%s: buckets never decrease (cumulative)' % name, counts)
    tap.ok(counts and count == counts[-1],
           '%s: _count is the +Inf bucket' % name, count, counts)
    tap.is_(count, want, '%s: _count is the traffic sent (%s)' % (name, want))
    tap.ok(total is not None and total >= 0, '%s: _sum present' % name)


def promtool_metrics(tap, text, name):
    r = harness.run_promtool(['check', 'metrics'], stdin=text.encode())
    out = (r.stdout + r.stderr).decode('utf-8', 'replace')
    tap.ok(r.returncode == 0 and out.strip() == '',
           '%s: promtool check metrics prints nothing, exits 0' % name,
           'exit %s' % r.returncode, out)


def scrape(inst):
    r = inst.request('GET', inst.path('/metrics'))
    if r.status != 200:
        raise RuntimeError('GET /metrics: ' + r.describe())
    return r.body.decode('utf-8')


def fs_type(path):
    """The type of the file system holding path, from /proc/mounts."""
    best, kind = '', None
    path = os.path.realpath(path)
    with open('/proc/mounts') as f:
        for line in f:
            parts = line.split()
            mnt = parts[1].replace('\\040', ' ')
            if (path == mnt or path.startswith(mnt.rstrip('/') + '/')) and \
                    len(mnt) > len(best):
                best, kind = mnt, parts[2]
    return kind


def check_commit_bytes(tap, inst, before, after):
    """Six orders made and six paid: twelve commits at least, each writing
    at least a B-tree page and a meta page, as the kernel counts them."""
    n = after.get('payhook_store_commits_total', 0) - \
        before.get('payhook_store_commits_total', 0)
    b = after.get('payhook_store_commit_written_bytes_total', 0) - \
        before.get('payhook_store_commit_written_bytes_total', 0)
    tap.ok(n >= 12, 'payhook_store_commits_total counted the 12 writes', n)
    kind = fs_type(inst.dir)
    if harness.E2E_STORE != 'lmdb':
        tap.skip('payhook_store_commit_written_bytes_total',
                 'LMDB\'s pages; PostgreSQL writes its own')
        return
    if kind in ('tmpfs', 'ramfs'):
        tap.skip('payhook_store_commit_written_bytes_total',
                 'the store is on %s, whose pages the kernel does not count '
                 'as written' % kind)
        return
    tap.ok(n > 0 and b >= 2 * 4096 * n,
           'payhook_store_commit_written_bytes_total: at least two pages a '
           'commit (%.1f pages)' % (b / 4096 / n if n else 0), b)


def job_times(values):
    return {j: values.get('payhook_%s_last_success_timestamp_seconds' % j)
            for j in JOBS}


def payhook_names(text):
    """Metric names in PromQL text (label names and values never start
    with payhook_ in ours)."""
    return set(re.findall(r'\b(payhook_[a-z0-9_]+)', text))


def main(tap):
    path, why = harness.promtool()
    if path is None:
        tap.skip_all('no promtool: %s' % why)
    r = harness.run_promtool(['--version'])
    tap.diag((r.stdout + r.stderr).decode('utf-8', 'replace').splitlines()[0])
    recv = Receiver()
    # Fast query schedules, short timeouts, one unverified notification a
    # minute per source kept in the archive (the next is dropped and
    # counted), and a push endpoint.
    sim, inst = harness.start_with_simulator(
        tap, 'metrics', time_factor=1000, max_procs=2,
        core=dict(harness.QUICK_SWEEP, archive_unverified_per_source='1'),
        profile={'query_schedule': '1s,1s,2s'}, push_port=recv.port)
    # Only the notifications sent here reach payhook: they are counted.
    sim.control('/_sim/refund_mode', {'notify': 'drop'})

    text = scrape(inst)
    promtool_metrics(tap, text, 'a fresh instance')
    values, types = parse_metrics(text)
    fresh = {f: types.get(f) for f in ('payhook_provider_calls_total',
                                       'payhook_refunds_total')}
    tap.is_(fresh, {f: 'counter' for f in fresh}, 'a fresh instance '
            'describes the families without a sample yet (HELP and TYPE)')
    tap.is_(len(re.findall(r'^# TYPE ', text, re.M)),
            len(set(re.findall(r'^# TYPE (\S+)', text, re.M))),
            '... each family once')
    tap.is_(job_times(values), {j: 0 for j in JOBS},
            'no job has succeeded yet: every last-success timestamp is 0')
    tap.ok(0 <= values.get('payhook_store_fill_ratio', -1) < 0.5,
           'payhook_store_fill_ratio between 0 and 1',
           values.get('payhook_store_fill_ratio'))
    out = subprocess.run([PAYHOOK_FCGI, '--version'], stdout=subprocess.PIPE,
                         text=True).stdout
    m = re.match(r'^payhook\.fcgi (\S+)(?: \(commit ([0-9a-f]+)\))?$',
                 out.strip())
    want = 'payhook_build_info{version="%s",commit="%s"}' % (
        m.group(1), m.group(2) or '') if m else None
    tap.is_(values.get(want), 1.0, 'build_info names the build: %s' % want,
            out)
    tap.is_(types.get('payhook_build_info'), 'gauge', '... a gauge')

    # Traffic: each notification counted here.
    before = values
    sent = {'wxshop': 0, 'wxhmac': 0}
    paid = []
    for i in range(6):
        o = 'MET-%s-%d' % (os.urandom(3).hex(), i)
        prof = 'wxshop' if i < 4 else 'wxhmac'
        inst.create_order(o, 100 + i, profile=prof)
        r, _f = inst.pay(o, 100 + i, txn_id('met%d' % i), profile=prof)
        sent[prof] += 1
        tap.is_(r.body, SUCCESS_ACK, 'notification of %s acknowledged' % o)
        paid.append(o)
    check_commit_bytes(tap, inst, before, parse_metrics(scrape(inst))[0])
    acked = dict(sent)      # the forged below are answered, not acked
    # Forged, naming no order of ours: one a minute from an address is
    # archived, so of three at least one is dropped, whenever the minute
    # turns.
    for _ in range(3):
        forged = make_payment('NOPE-%s' % os.urandom(3).hex(), 1,
                              txn_id('forged'))
        forged['total_fee'] = 2
        inst.notify(forged)
        sent['wxshop'] += 1
    r = inst.api('GET', '/orders/' + paid[0], token='wrong')
    tap.is_(r.status, 401, 'a wrong token: 401')

    # Payments whose notification is lost: found by the sweeper.
    lost = []
    for i in range(2):
        o = 'LOST-%s-%d' % (os.urandom(3).hex(), i)
        inst.create_order(o, 500)
        sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': o,
                                  'amount': 500, 'notify': {'drop_all': True}})
        lost.append(o)
    time.sleep(1.2)
    t_sweep = int(time.time())
    deadline = time.time() + 30
    while time.time() < deadline:
        p = inst.cli('sweep')
        if all((inst.order(o) or {}).get('state') == 'PAID' for o in lost):
            break
        time.sleep(0.5)
    tap.is_(p.returncode, 0, 'sweep: exit 0', p.stderr[-600:])
    tap.ok(all((inst.order(o) or {}).get('state') == 'PAID' for o in lost),
           'the sweeper found the lost payments')
    tap.ok(recv.accepted(), 'the sweep pushed events to the receiver')
    tap.ok(set(lost) <= {e.get('order_id') for e in recv.accepted()
                         if e.get('type') == 'order.paid'},
           '... the order.paid events of the payments that pass found, in '
           'the same pass', [e.get('order_id') for e in recv.accepted()])

    # A refund of a payment the simulator made, carried out.
    r = inst.api('POST', '/orders/%s/refunds' % lost[0],
                 {'amount': 50, 'reason': 'returned'})
    tap.is_(r.status, 201, 'a refund asked for', r.describe())
    t_refunds = int(time.time())
    p = inst.cli('refunds', 'run')
    tap.is_(p.returncode, 0, 'refunds run: exit 0', p.stderr[-600:])

    # Today's statement, vouched for.
    day = datetime.datetime.now(BJ).strftime('%Y-%m-%d')
    stmt = os.path.join(inst.dir, 'statement.csv')
    r = sim.request('GET', '/_sim/statement?profile=wxshop&date=%s' % day)
    with open(stmt, 'wb') as fh:
        fh.write(r.body or b'')
    t_recon = int(time.time())
    p = inst.cli('reconcile', '--profile', 'wxshop', '--statement', stmt,
                 '--date', day, '--report-dir', inst.dir, '--trust-file')
    tap.is_(p.returncode, 0, 'reconcile: exit 0', p.stderr[-600:])
    t_end = int(time.time()) + 1

    text = scrape(inst)
    promtool_metrics(tap, text, 'after every route and job')
    values, types = parse_metrics(text)
    times = job_times(values)
    for job, since in (('sweep', t_sweep), ('push', t_sweep),
                       ('refunds', t_refunds), ('reconcile', t_recon)):
        tap.ok(times[job] is not None and since <= times[job] <= t_end,
               'payhook_%s_last_success_timestamp_seconds: the run\'s time'
               % job, times[job], (since, t_end))

    # The histograms against the traffic sent.
    notify_reqs = sum(v for k, v in values.items() if k.startswith(
        'payhook_requests_total{route="notify",'))
    tap.is_(notify_reqs, float(sum(sent.values())),
            'requests_total counts every notification')
    check_histogram(tap, values, 'payhook_request_duration_seconds',
                    'route="notify"', notify_reqs, 'request duration '
                    'of notify')
    check_histogram(tap, values, 'payhook_request_duration_seconds',
                    'route="order"', sum(v for k, v in values.items()
                                         if k.startswith('payhook_requests_'
                                                         'total{route="order"'
                                                         ',')),
                    'request duration of order')
    for prof, n in acked.items():
        check_histogram(tap, values, 'payhook_notify_ack_seconds',
                        'profile="%s"' % prof, float(n),
                        'acknowledgement latency of %s, the forged '
                        'notifications\' refusals not among them' % prof)
    lag_n = sum(v for k, v in values.items() if k.startswith(
        'payhook_payment_lag_seconds_count{profile="wxshop"'))
    paid_n = sum(v for k, v in values.items() if k.startswith(
        'payhook_orders_paid_total{profile="wxshop"'))
    tap.ok(0 < lag_n <= paid_n, 'payment lag: one observation per payment '
           'with a payment time (%s of %s)' % (lag_n, paid_n))
    tap.ok(values.get('payhook_orders_paid_total{profile="wxshop",'
                      'source="query"}', 0) >= 2, 'paid by query counted')
    tap.is_(types.get('payhook_request_duration_seconds'), 'histogram',
            'request duration is a histogram')
    tap.ok(not any(n.endswith('_mean') or 'microseconds' in n
                   for n in types), 'no _mean gauge, no microseconds',
           sorted(types))
    tap.ok(values.get('payhook_archive_dropped_total{class="unverified"}',
                      0) >= 1, 'a forged notification over the minute\'s '
           'share was not archived, and counted')

    # A run with a provider failure does not count as a success: a
    # refund the provider refuses to know (its payment is not the
    # simulator's), a sweep with the provider down.
    r = inst.api('POST', '/orders/%s/refunds' % paid[1],
                 {'amount': 50, 'reason': 'returned'})
    p = inst.cli('refunds', 'run')
    tap.ok(p.returncode != 0, 'refunds run, the provider answering an '
           'error: exit non-zero (%d)' % p.returncode, p.stderr[-400:])
    sim.stop()
    o = 'DOWN-%s' % os.urandom(3).hex()
    inst.create_order(o, 300)
    time.sleep(1.2)
    p = inst.cli('sweep')
    tap.ok(p.returncode != 0, 'sweep with the provider down: exit non-zero '
           '(%d)' % p.returncode, p.stderr[-400:])
    values2, _t = parse_metrics(scrape(inst))
    tap.is_((job_times(values2)['sweep'], job_times(values2)['refunds']),
            (times['sweep'], times['refunds']), '... and neither timestamp '
            'moves: they stay those of the last success')

    # Documented, every family.
    with open(os.path.join(harness.TOP_SRCDIR, 'doc', 'payhook.fcgi.8'),
              encoding='utf-8') as fh:
        man = fh.read()
    undocumented = sorted(f for f in types if not re.search(
        r'(?<![a-z0-9_])%s(?![a-z0-9_])' % f, man))
    tap.ok(not undocumented, 'every family is in payhook.fcgi(8)',
           undocumented)

    # The shipped alerting rules and dashboard.
    rules = os.path.join(harness.TOP_SRCDIR, 'deploy', 'prometheus',
                         'alerts.yml')
    r = harness.run_promtool(['check', 'rules', rules])
    out = (r.stdout + r.stderr).decode('utf-8', 'replace')
    tap.ok(r.returncode == 0 and 'SUCCESS' in out,
           'promtool check rules deploy/prometheus/alerts.yml', out)
    tap.diag(out.strip())
    r = harness.run_promtool(['test', 'rules', os.path.join(
        harness.TOP_SRCDIR, 'tests', 'e2e', 'alerts_test.yml')])
    out = (r.stdout + r.stderr).decode('utf-8', 'replace')
    tap.ok(r.returncode == 0 and 'SUCCESS' in out,
           'promtool test rules tests/e2e/alerts_test.yml: the alerts fire '
           'as meant', out[-3000:])
    with open(rules, encoding='utf-8') as fh:
        names = payhook_names(fh.read())
    unknown = sorted(n for n in names if family_of(n, types) is None)
    tap.ok(names and not unknown, 'the rules use %d metric names, all '
           'on /metrics' % len(names), unknown)
    with open(os.path.join(harness.TOP_SRCDIR, 'deploy', 'grafana',
                           'payhook.json'), encoding='utf-8') as fh:
        try:
            dash = json.load(fh)
        except ValueError as exc:
            dash = None
            tap.ok(False, 'the dashboard is JSON', str(exc))
    if dash is not None:
        exprs = []

        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in ('expr', 'query', 'definition') and \
                            isinstance(v, str):
                        exprs.append(v)
                    else:
                        walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(dash)
        names = payhook_names('\n'.join(exprs))
        unknown = sorted(n for n in names if family_of(n, types) is None)
        tap.ok(len(exprs) >= 10 and not unknown,
               'the dashboard\'s %d queries use %d metric names, all on '
               '/metrics' % (len(exprs), len(names)), unknown)
        shown = {family_of(n, types) for n in names}
        missing = sorted(f for f in types if f not in shown)
        if missing:
            tap.diag('families the dashboard does not show: %s'
                     % ', '.join(missing))

    # The file removed: every process counts again from zero, in the file
    # the next sweep makes (payhook.fcgi(8)); a process looks once a
    # second.
    os.remove(inst.db + '-metrics')
    time.sleep(1.1)
    for _ in range(4):
        scrape(inst)
    inst.cli('sweep')

    def passes():
        return sum(v for k, v in parse_metrics(scrape(inst))[0].items()
                   if k.startswith('payhook_sweeper_passes_total{'))
    tap.is_({passes() for _ in range(8)}, {1.0},
            'the metrics file removed: every process shows the one sweep '
            'pass since')
    recv.close()


if __name__ == '__main__':
    harness.run(main)
