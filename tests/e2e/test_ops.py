"""End to end: what operators see.

Under lighttpd with three payhook.fcgi processes: the key=value log line
of every request, GET /metrics with counters shared by all processes (the
same figures whichever process answers), orders per state; and the admin
commands: order show/list, events tail, stats, dedup prune (a payment
stays deduplicated after its key is pruned), backup, check --user.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Instance, SUCCESS_ACK, make_payment,  # noqa: E402
                     metric, txn_id)


def check_backup(tap, inst):
    """payhook backup while serving: a valid LMDB copy, never over a file."""
    backup = os.path.join(inst.dir, 'backup.mdb')
    r = inst.cli('backup', backup)
    tap.is_(r.returncode, 0, 'backup while serving: exit 0', r.stderr)
    st = subprocess.run(['mdb_stat', '-n', '-a', backup],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    tap.is_(st.returncode, 0, '... a valid LMDB file', st.stderr)
    tap.like(st.stdout, r'Status of orders\n(.*\n)*?\s+Entries: 21\n',
             '... holding the 21 orders (20 paid, one failed)',
             st.stdout[:600])
    r = inst.cli('backup', backup)
    tap.ok(r.returncode != 0 and 'exists' in r.stderr,
           'backup refuses to overwrite')
    # A name as long as the file system takes (255 bytes): too long to
    # carry the partial file's suffix, which is then a short name beside.
    long_name = os.path.join(inst.dir, 'b' * 251 + '.mdb')
    r = inst.cli('backup', long_name)
    short = os.path.join(inst.dir, 'short.mdb')   # mdb_stat adds "-lock"
    if os.path.exists(long_name):
        shutil.copyfile(long_name, short)
    tap.ok(r.returncode == 0 and os.path.exists(short) and subprocess.run(
        ['mdb_stat', '-n', short], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0 and not [
        n for n in os.listdir(inst.dir) if 'partial' in n],
        'backup to a 255-byte name: a whole copy, nothing partial left',
        r.returncode, r.stderr[-300:])
    for f in (long_name, short, short + '-lock'):
        if os.path.exists(f):
            os.unlink(f)
    r = inst.cli('backup', os.path.join(inst.dir, 'b' * 256))
    tap.ok(r.returncode != 0 and 'too long' in r.stderr[:120],
           'a name longer than that: refused, the reason before the name',
           r.stderr[:200])


def main(tap):
    inst = Instance(tap, name='ops', max_procs=3)
    inst.start()
    ids = ['OPS-%s-%d' % (os.urandom(3).hex(), i) for i in range(20)]
    bodies = []
    for i, o in enumerate(ids):
        inst.create_order(o, 100 + i)
        bodies.append(make_payment(o, 100 + i, txn_id('ops%d' % i)))
    for b in bodies:
        tap.is_(inst.notify(b).body, SUCCESS_ACK, 'notification acked')
    for b in bodies[:5]:
        inst.notify(b)                      # five duplicates
    forged = make_payment(ids[0], 100, txn_id('forged'))
    forged['total_fee'] = 1                 # changed after signing
    inst.notify(forged)                     # one refused

    # The same figures whichever process answers the scrape.
    pages = [inst.request('GET', inst.path('/metrics')) for _ in range(6)]
    tap.ok(all(p.status == 200 for p in pages), 'GET /metrics: 200')
    tap.like(pages[0].headers.get('content-type', ''), r'^text/plain',
             '... Prometheus text format')
    text = pages[-1].body.decode()
    applied = [metric(p.body.decode(), 'payhook_notifications_total'
                      '{profile="wxshop",outcome="applied"}') for p in pages]
    tap.is_(applied[-1], 20, 'notifications applied: 20', text[:1500])
    tap.ok(len(set(applied)) == 1, 'every process reports the same count',
           repr(applied))
    tap.is_(metric(text, 'payhook_notifications_total{profile="wxshop",'
                         'outcome="duplicate"}'), 5, 'duplicates: 5')
    refused = sum(v for k, v in re.findall(
        r'^payhook_notifications_total\{profile="wxshop",'
        r'outcome="(refused_[a-z_]+)"\} (\d+)$', text, re.M) for v in [int(v)])
    tap.is_(refused, 1, 'refusals: 1')
    tap.is_(metric(text, 'payhook_orders{state="PAID"}'), 20,
            'orders PAID: 20')
    tap.is_(metric(text, 'payhook_orders{state="PENDING"}'), 0,
            'orders PENDING: 0')
    tap.ok((metric(text, 'payhook_requests_total{route="notify",'
                         'status="200"}') or 0) >= 26,
           'requests counted by route and status')
    tap.ok(metric(text, 'payhook_outbox_events') == 20, 'outbox: 20 events')
    tap.ok((metric(text, 'payhook_store_used_bytes') or 0) > 0,
           'store use reported')

    # One key=value line per request.
    log = open(os.path.join(inst.dir, 'lighttpd-stdout.log'),
               errors='replace').read()
    reqs = [l for l in log.splitlines() if ' event=request ' in l]
    tap.ok(len(reqs) >= 40, 'a log line per request (%d)' % len(reqs))
    tap.ok(all(re.match(r'^ts=\S+ level=(info|warn|error|debug) '
                        r'prog=payhook\.fcgi pid=\d+ event=request ', l)
               for l in reqs), 'each starts ts= level= prog= pid= event=',
           *reqs[:2])
    line = [l for l in reqs if 'order_id=%s ' % ids[3] in l and
            'outcome=applied' in l]
    tap.is_(len(line), 1, 'the notification of %s logged once as applied'
            % ids[3])
    tap.ok(line and re.search(r' route=notify profile=wxshop order_id=\S+ '
                              r'outcome=applied status=200 '
                              r'duration_ms=\d+\.\d$', line[0]),
           '... with route, profile, order, outcome, status and duration',
           *line)
    tap.ok(any('outcome=refused_signature' in l for l in reqs),
           'the forged one logged as refused_signature')
    tap.ok(all(not l.strip() or l.startswith('ts=') or 'lighttpd' in l or
               l.startswith('20') for l in log.splitlines()),
           'every payhook line is key=value')
    for secret in (inst.token, harness.PROFILES['wxshop']['key']):
        tap.ok(secret not in log, 'no secret in the log')

    # Admin commands.
    r = inst.cli('order', 'show', ids[0])
    tap.is_(r.returncode, 0, 'order show: exit 0', r.stderr)
    tap.is_(json.loads(r.stdout or '{}').get('state'), 'PAID',
            '... prints the order')
    r = inst.cli('order', 'show', 'nope')
    tap.is_(r.returncode, 2, 'order show of an unknown order: exit 2')
    r = inst.cli('order', 'list', '--state', 'PAID', '--limit', '1000')
    tap.is_(len(r.stdout.splitlines()), 20, 'order list --state PAID: 20')
    tap.ok(all(l.split('\t')[1] == 'PAID' for l in r.stdout.splitlines()),
           '... all PAID')
    r = inst.cli('order', 'list', '--state', 'PENDING')
    tap.is_(r.stdout, '', 'order list --state PENDING: none')
    r = inst.cli('order', 'list', '--state', 'NOPE')
    tap.ok(r.returncode != 0, 'order list --state NOPE refused')
    r = inst.cli('order', 'list', '--limit', '5', '--json')
    tap.is_(len(json.loads(r.stdout or '[]')), 5, 'order list --json')
    r = inst.cli('events', 'tail', '--after', '15')
    tap.is_(len(r.stdout.splitlines()), 5, 'events tail --after 15: 5 lines')
    # Sequence numbers are JSON's signed 64-bit integers, as GET /events
    # takes them: 2^63-1 is the last, one more is a usage error.
    r = inst.cli('events', '--limit', '1')
    tap.is_(json.loads(r.stdout or '{}').get('epoch'),
            (inst.events(after=0, limit=1).json or {}).get('epoch'),
            'events: the epoch, as GET /events serves it')
    r = inst.cli('events', '--after', str(2 ** 63 - 1))
    tap.ok(r.returncode == 0 and json.loads(r.stdout or '{}').get('next') ==
           2 ** 63 - 1, 'events --after 2^63-1: nothing after it, next '
           'the same', r.stdout[-200:])
    for cmd in (['events'], ['events', 'tail']):
        r = inst.cli(*cmd, '--after', str(2 ** 63))
        tap.ok(r.returncode == 64 and '--after' in r.stderr,
               '%s --after 2^63: exit 64, naming --after' % ' '.join(cmd),
               r.returncode, r.stdout[-200:], r.stderr)
    tap.ok(all(json.loads(l).get('type') == 'order.paid'
               for l in r.stdout.splitlines()), '... one JSON event each')
    r = inst.cli('stats')
    st = json.loads(r.stdout or '{}')
    tap.is_((st.get('orders') or {}).get('PAID'), 20, 'stats: 20 PAID')

    # A failed payment too: its record remembers it, as a success's does.
    failed = 'OPSF-' + os.urandom(3).hex()
    inst.create_order(failed, 300)
    fbody = make_payment(failed, 300, txn_id('opsfail'), result_code='FAIL')
    inst.notify(fbody)
    r = inst.cli('dedup', 'prune', '--older-than', '1d')
    tap.like(r.stdout, r': 0 key', 'dedup prune --older-than 1d: nothing',
             r.stdout)
    time.sleep(2.2)     # whole seconds: first seen at least 2s ago
    r = inst.cli('dedup', 'prune', '--older-than', '1s')
    tap.is_(r.returncode, 0, 'dedup prune: exit 0', r.stderr)
    tap.like(r.stdout, r': 21 key', 'dedup prune --older-than 1s: the 21 '
             'keys', r.stdout)
    base = inst.last_seq()
    tap.is_(inst.notify(bodies[0]).body, SUCCESS_ACK,
            'a retry after pruning: SUCCESS')
    tap.is_(inst.last_seq(), base, '... and still nothing new (the payment '
            'record dedups it)')
    tap.is_(inst.notify(fbody).body, SUCCESS_ACK,
            'a failed payment\'s retry after pruning: SUCCESS')
    tap.is_(inst.last_seq(), base, '... and no payment.failed again (its '
            'payment record dedups it)')
    r = inst.cli('dedup', 'prune', '--older-than', 'soon')
    tap.ok(r.returncode != 0, 'dedup prune with a bad age refused')

    if harness.E2E_STORE == 'lmdb':     # PostgreSQL: the server's tools
        check_backup(tap, inst)

    r = inst.cli('check', '--user', 'root')
    tap.is_(r.returncode, 0, 'check --user root: OK', r.stderr)
    r = inst.cli('check', '--user', 'nobody')
    tap.ok(r.returncode != 0 and 'nobody cannot' in r.stderr,
           'check --user nobody: names what nobody cannot read',
           r.stderr[-500:])
    r = inst.cli('check', '--user', 'no-such-user-x')
    tap.ok(r.returncode != 0, 'check --user of an unknown user fails')


if __name__ == '__main__':
    harness.run(main)
