"""End to end: beyond the peers.

The notification archive and replay (a notification refused by a key
mix-up is replayed after the key is fixed and settles the order); refused
notifications that name a pending order becoming query hints, rate-limited
per profile; certificate expiry in `payhook check` and /metrics; the
missed-notification (掉单) rate of a simulated day with dropped
notifications; events pushed to the merchant, signed, in order, again after
the receiver comes back, with a delivery log and `events resend`.
"""

import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PAYHOOK, PROFILES, PUSH_SECRET, SUCCESS_ACK,  # noqa
                     SimInstance, Simulator, make_payment, metric, txn_id,
                     wait_for)


class Receiver:
    """The merchant's event endpoint: records what arrives, answers 200
    or, while down, 503."""

    def __init__(self):
        self.got = []
        self.down = False
        self.delay = 0.0                # seconds before each answer
        self.answer_bytes = 0           # the answer's body, in bytes
        self.cut_body = False           # 200 saying 100 bytes, giving 10
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(n)
                time.sleep(outer.delay)
                outer.got.append((dict(self.headers), body, outer.down))
                if outer.cut_body:
                    # The connection closes after 10 of them (HTTP/1.0).
                    self.send_response(200)
                    self.send_header('Content-Length', '100')
                    self.end_headers()
                    self.wfile.write(b'x' * 10)
                    return
                self.send_response(503 if outer.down else 200)
                self.send_header('Content-Length', str(outer.answer_bytes))
                self.end_headers()
                try:
                    self.wfile.write(b'x' * outer.answer_bytes)
                except OSError:
                    pass            # payhook read what it needed

            def log_message(self, *_a):
                pass

        self.srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       daemon=True)
        self.thread.start()

    def accepted(self):
        return [json.loads(b) for h, b, down in self.got if not down]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def sweep(inst):
    return subprocess.run([PAYHOOK, '-c', inst.config, 'sweep'],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)


def sweep_bg(inst, stderr=subprocess.DEVNULL):
    """A sweep running beside the test (its Popen)."""
    return subprocess.Popen([PAYHOOK, '-c', inst.config, 'sweep'],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def test_replay(tap, inst):
    o = 'RPL-' + os.urandom(3).hex()
    inst.create_order(o, 300)
    keyfile = os.path.join(inst.etc, 'keys', 'wxshop.key')
    good = PROFILES['wxshop']['key']
    # A key mix-up: payhook holds the wrong key for a while.
    harness.write_file(keyfile, good[::-1])
    inst.stop()
    inst.start()
    body = make_payment(o, 300, txn_id('replay'))
    r = inst.notify(body)
    tap.ok(SUCCESS_ACK != r.body and b'FAIL' in r.body,
           'genuine notification refused while the key is wrong')
    r = inst.cli('notifications', 'list')
    lines = [l for l in r.stdout.splitlines() if '\t%s\t' % o in l]
    tap.is_(len(lines), 1, 'the archive lists it once', r.stdout[-500:])
    tap.ok(lines and '\trefused\t' in lines[0], '... as refused', *lines)
    nid = lines[0].split('\t')[0] if lines else '0'
    r = inst.cli('notifications', 'show', nid)
    shown = json.loads(r.stdout or '{}')
    tap.is_(shown.get('verdict'), 'refused', 'show: verdict')
    tap.ok('<out_trade_no>' in (shown.get('body_text') or '') or o in
           (shown.get('body_text') or ''), 'show: the raw body kept')
    r = inst.cli('notifications', 'replay', nid)
    tap.ok(r.returncode != 0 and 'still refused' in r.stdout,
           'replay before the fix: still refused', r.stdout + r.stderr)
    tap.is_(inst.order(o).get('state'), 'PENDING', '... order unchanged')
    r = inst.cli('notifications', 'list')
    lines = [l.split('\t') for l in r.stdout.splitlines()
             if 'replay_of=%s' % nid in l]
    tap.ok(len(lines) == 1 and lines[0][2:6] == [
        'wxshop', o, 'refused', 'refused_signature'], '... archived as '
        'the refusal on arrival is: the order it names, refused_signature',
        r.stdout[-600:])
    harness.write_file(keyfile, good)      # the fix
    base = inst.last_seq()
    r = inst.cli('notifications', 'replay', nid)
    tap.is_(r.returncode, 0, 'replay after the fix', r.stdout + r.stderr)
    tap.like(r.stdout, r'verified; order %s: applied, raised order\.paid'
             % o, '... verified and applied')
    tap.is_(inst.order(o).get('state'), 'PAID', '... the order is PAID')
    r = inst.cli('notifications', 'replay', nid)
    tap.like(r.stdout, r'duplicate', 'a second replay is a duplicate')
    tap.is_(len([e for e in inst.all_events(base)
                 if e.get('order_id') == o]), 1, '... one event in all')
    # A second payment of the paid order, refused, then replayed: named
    # as it would have been on arrival, double_payment.
    harness.write_file(keyfile, good[::-1])
    inst.stop()
    inst.start()
    r = inst.notify(make_payment(o, 300, txn_id('replay2')))
    tap.ok(SUCCESS_ACK != r.body, 'a second payment refused while the key '
           'is wrong')

    def refused_ids():
        r = inst.cli('notifications', 'list')
        return [l.split('\t')[0] for l in r.stdout.splitlines()
                if '\t%s\t' % o in l and '\trefused\t' in l and
                'replay_of=' not in l]
    harness.wait_for(lambda: len(refused_ids()) == 2, 10, 0.2)
    nid2 = (refused_ids() or ['0'])[-1]
    harness.write_file(keyfile, good)
    r = inst.cli('notifications', 'replay', nid2)
    tap.like(r.stdout, r'verified; order %s: double_payment, raised '
             r'order\.double_payment' % o, '... replayed after the fix: '
             'double_payment, as on arrival', r.stdout + r.stderr)
    r = inst.cli('notifications', 'list')
    lines = [l.split('\t') for l in r.stdout.splitlines()
             if 'replay_of=%s' % nid2 in l]
    tap.ok(len(lines) == 1 and lines[0][4:6] == ['verified',
           'double_payment'], '... archived with that outcome',
           r.stdout[-600:])
    inst.stop()
    inst.start()                            # serve with the good key


def test_duplicates_unarchived(tap, inst):
    """One genuine notification sent again and again, padded with the
    blanks its signature does not cover: acknowledged each time, archived
    once, so that its copies cannot evict the archive's other records."""
    o = 'DUPA-' + os.urandom(3).hex()
    inst.create_order(o, 300)
    body = harness.notify_xml(make_payment(o, 300, txn_id('dupa')))
    acks = []
    for i in range(12):
        padded = body.replace(b'</xml>', b' ' * (i * 997) + b'</xml>')
        acks.append(inst.notify(padded).body == SUCCESS_ACK)
    tap.ok(all(acks), 'a notification and 11 padded copies: every one '
           'acknowledged', acks)
    r = inst.cli('notifications', 'list')
    lines = [l for l in r.stdout.splitlines() if '\t%s\t' % o in l]
    tap.is_(len(lines), 1, '... archived once, the copies not', *lines)


def test_hints(tap, inst, sim):
    o = 'HINT-' + os.urandom(3).hex()
    inst.create_order(o, 400)
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': o,
                              'amount': 400, 'notify': {'drop_all': True}})
    before = ((sim.stats() or {}).get('by_order') or {}).get(o, {}).get(
        'query', 0)
    forged = make_payment(o, 400, txn_id('forged'), key='f' * 32)
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    q0 = metric(text, 'payhook_hints_queued_total') or 0
    r = inst.notify(forged)
    tap.ok(b'FAIL' in r.body, 'forged notification refused')
    tap.is_(inst.order(o).get('state'), 'PENDING', '... no state change')
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    tap.is_((metric(text, 'payhook_hints_queued_total') or 0) - q0, 1,
            '... but the order it names is queued for a query')
    rc = sweep(inst)
    n = ((sim.stats() or {}).get('by_order') or {}).get(o, {}).get(
        'query', 0) - before
    tap.is_(n, 1, 'forged notifications naming the order: exactly one '
            'query', rc.stderr[-400:])
    tap.is_(inst.order(o).get('state'), 'PAID',
            '... which settles it (the payment was real)')
    # A flood naming other pending orders: no more than the limit.
    others = ['FLD-%s-%d' % (os.urandom(2).hex(), i) for i in range(8)]
    for x in others:
        inst.create_order(x, 10)
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    q1 = metric(text, 'payhook_hints_queued_total') or 0
    for x in others:
        inst.notify(make_payment(x, 10, txn_id('fl'), key='f' * 32))
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    q2 = metric(text, 'payhook_hints_queued_total') or 0
    # 3 a minute per profile, shared with the hints above; the test may
    # straddle one minute boundary.
    tap.ok(q2 - q1 <= 3 + 3 and q2 - q1 < len(others),
           'a flood of %d forged notifications queues no more than '
           'hint_per_minute (%d)' % (len(others), q2 - q1))


def test_missed_rate(tap, inst, sim):
    ids = ['DAY-%s-%d' % (os.urandom(2).hex(), i) for i in range(10)]
    for i, o in enumerate(ids):
        inst.create_order(o, 100)
        sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': o,
                                  'amount': 100,
                                  'notify': {'drop_all': i < 3}})
    deadline = time.time() + 30
    while time.time() < deadline and any(
            inst.order(o).get('state') != 'PAID' for o in ids):
        sweep(inst)
        time.sleep(0.5)
    tap.ok(all(inst.order(o).get('state') == 'PAID' for o in ids),
           'a day of 10 payments, 3 notifications dropped: all PAID')
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    by = {src: metric(text, 'payhook_orders_paid_total{profile="wxshop",'
                            'source="%s"}' % src) or 0
          for src in ('notify', 'query', 'statement', 'replay')}
    paid_q = by['query']
    ratio = metric(text, 'payhook_missed_notification_ratio{profile='
                         '"wxshop"}')
    tap.ok(paid_q >= 3, 'paid by query: at least the 3 dropped', by)
    want = (by['query'] + by['statement']) / sum(by.values())
    tap.ok(ratio is not None and abs(ratio - want) < 0.001,
           'missed-notification ratio = (query + statement) / all (%s, '
           'want %.4f)' % (ratio, want), by)
    lag = metric(text, 'payhook_payment_lag_seconds_count{profile='
                       '"wxshop",source="query"}')
    tap.ok(lag is not None and 0 < lag <= paid_q,
           'payment lag reported: a histogram of the orders paid by query',
           lag, paid_q)
    # A payment for an order payhook does not know: an outcome beyond
    # the common ones, which stats counts as the metric does.
    stray = 'BSTRAY-' + os.urandom(3).hex()
    inst.pay(stray, 100, harness.txn_id(stray))
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    counted = {m.group(1): int(float(m.group(2))) for m in re.finditer(
        r'^payhook_notifications_total\{profile="wxshop",outcome="([a-z_]+)"'
        r'\} (\S+)$', text, re.M)}
    r = inst.cli('stats')
    st = json.loads(r.stdout or '{}')
    wx = (st.get('profiles') or {}).get('wxshop') or {}
    tap.is_(wx.get('paid_by', {}).get('query'), int(paid_q),
            'stats: paid by query')
    tap.ok(counted.get('unknown_order', 0) >= 1 and
           {k: v for k, v in (wx.get('notifications') or {}).items()
            if v} == counted,
           'stats: every notification outcome counted, as the metric '
           'counts it (unknown_order among them)',
           wx.get('notifications'), counted)
    told = sum(counted.values())
    refused = sum(v for k, v in counted.items() if k.startswith('refused_'))
    tap.ok(wx.get('notifications_total') == told and
           abs(wx.get('duplicate_ratio', -1) -
               counted.get('duplicate', 0) / told) < 1e-9 and
           abs(wx.get('verification_failure_ratio', -1) -
               refused / told) < 1e-9 and refused > 0,
           'stats: the duplicate and verification-failure shares of the '
           '%d notifications' % told, wx)
    acks = metric(text, 'payhook_notify_ack_seconds_count{profile='
                        '"wxshop"}') or 0
    ack_sum = metric(text, 'payhook_notify_ack_seconds_sum{profile='
                           '"wxshop"}') or 0
    tap.ok(acks > 0 and abs(wx.get('ack_seconds_mean', -1) -
                            ack_sum / acks) < 1e-6,
           'stats: the mean time to acknowledge, as the metric has it',
           wx.get('ack_seconds_mean'), ack_sum, acks)
    tap.is_((wx.get('notifications') or {}).get('amount_mismatch'),
            counted.get('amount_mismatch', 0),
            'stats: every outcome present, at 0 when none came '
            '(amount_mismatch)')


def test_push(tap, inst, recv):
    sweep(inst)
    got = recv.accepted()
    last = inst.last_seq()
    tap.ok(len(got) >= 1 and got[-1].get('seq') == last,
           'events pushed up to the last (%d)' % last,
           repr([g.get('seq') for g in got][-5:]))
    seqs = [g.get('seq') for g in got]
    tap.is_(seqs, sorted(seqs), '... in order')
    tap.is_(seqs, list(range(1, last + 1)), '... each once')
    ok = True
    for h, body, down in recv.got:
        sig = h.get('X-Payhook-Signature', '')
        m = re.match(r'^t=(\d+),v1=([0-9a-f]{64})$', sig)
        want = m and hmac.new(PUSH_SECRET.encode(),
                              m.group(1).encode() + b'.' + body,
                              hashlib.sha256).hexdigest()
        ok = ok and bool(m) and hmac.compare_digest(want, m.group(2))
    tap.ok(ok, 'every push signed t=...,v1=HMAC-SHA256(secret, t.body)')
    # The receiver goes down: events wait, in order.
    recv.down = True
    o = 'PUSH-' + os.urandom(3).hex()
    inst.create_order(o, 5)
    inst.notify(make_payment(o, 5, txn_id('push')))
    r = sweep(inst)
    tap.ok('not delivered' in r.stderr, 'receiver down: the sweeper logs it',
           r.stderr[-400:])

    def push_success():
        text = inst.request('GET', '/metrics').body.decode()
        m = re.search(r'^payhook_push_last_success_timestamp_seconds '
                      r'(\S+)$', text, re.M)
        return m and m.group(1)
    before = push_success()
    r = sweep(inst)
    tap.ok(r.returncode == 75 and re.search(r'event=push .*waiting=1',
                                            r.stderr) and
           push_success() == before, '... a pass while it backs off: the '
           'event still waits, exit 75, no push success counted',
           r.returncode, r.stderr[-300:], before, push_success())
    n_before = len(recv.accepted())
    recv.down = False
    time.sleep(5.5)                         # the first backoff
    sweep(inst)
    got = recv.accepted()
    tap.is_(len(got), n_before + 1, '... delivered when it is back')
    tap.is_(got[-1].get('order_id'), o, '... the waiting event')
    # A 2xx is delivered whatever its body: 1.5 MiB of it here.
    recv.answer_bytes = 1536 * 1024
    o = 'PUSHBIG-' + os.urandom(3).hex()
    inst.create_order(o, 6)
    inst.notify(make_payment(o, 6, txn_id('pushbig')))
    r = sweep(inst)
    recv.answer_bytes = 0
    seqs = [g.get('seq') for g in recv.accepted()]
    tap.ok(r.returncode == 0 and seqs == sorted(set(seqs)) and
           seqs[-1] == inst.last_seq(), 'a 200 with a 1.5 MiB body: '
           'delivered once, not sent again', r.returncode, seqs[-4:],
           r.stderr[-300:])
    # A 2xx whose body breaks off is delivered too: the receiver took it.
    recv.cut_body = True
    o = 'PUSHCUT-' + os.urandom(3).hex()
    inst.create_order(o, 6)
    inst.notify(make_payment(o, 6, txn_id('pushcut')))
    r = sweep(inst)
    recv.cut_body = False
    time.sleep(5.5)                         # a backoff, had it failed
    sweep(inst)
    seqs = [g.get('seq') for g in recv.accepted()]
    tap.ok(r.returncode == 0 and seqs == sorted(set(seqs)) and
           seqs[-1] == inst.last_seq(), 'a 200 whose body breaks off: '
           'delivered once, not sent again', r.returncode, seqs[-4:],
           r.stderr[-300:])
    got = recv.accepted()
    r = inst.cli('events', 'deliveries', '--endpoint', 'erp')
    tap.ok('\t503\t' in r.stdout and '\t200\t' in r.stdout,
           'delivery log shows the failure and the delivery',
           r.stdout[-400:])
    r = inst.cli('events', 'deliveries', '--endpoint', 'epr')
    tap.ok(r.returncode == 1 and 'no [push.epr] endpoint' in r.stderr,
           'a delivery log of a name never configured: exit 1, said so, '
           'not an empty log', r.returncode, r.stderr)
    log_before = inst.cli('events', 'deliveries', '--endpoint',
                          'erp').stdout.splitlines()
    r = inst.cli('events', 'resend', '--endpoint', 'erp', '--from', '1')
    tap.is_(r.returncode, 0, 'events resend', r.stderr)
    r = inst.cli('events', 'deliveries', '--endpoint', 'erp')
    tap.is_(r.stdout.splitlines(), log_before,
            '... which is no delivery attempt: the log is unchanged')
    sweep(inst)
    tap.is_(len(recv.accepted()), len(got) + inst.last_seq(),
            '... everything pushed again')
    lines = inst.cli('events', 'deliveries', '--endpoint',
                     'erp').stdout.splitlines()
    tap.is_(len(lines), len(log_before) + inst.last_seq(),
            '... each attempt a line in the delivery log, the second of an '
            'event within a second too', lines[-4:])


def paid_orders(inst, tag, n):
    """n orders made and paid by notification: the first and the last
    seq of the events they raised."""
    first = inst.last_seq() + 1
    for i in range(n):
        o = '%s-%d-%s' % (tag, i, os.urandom(3).hex())
        inst.create_order(o, 7)
        inst.notify(make_payment(o, 7, txn_id('%s%d' % (tag.lower(), i))))
    return first, inst.last_seq()


def test_push_shared(tap, inst, recv):
    """Two sweepers at once (a timer's and an operator's, or two hosts')
    share an endpoint: one of them holds it for its pass, so each event
    goes out once, in order; `events resend` goes back, never forward."""
    first, last = paid_orders(inst, 'PUSH2', 12)
    recv.delay = 0.05
    n_before = len(recv.got)
    procs = [sweep_bg(inst, subprocess.PIPE) for _ in range(2)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    recv.delay = 0.0
    sweep(inst)                 # whatever a pass left for the next one
    # Only this test's events: a pass may raise others (orders of the
    # tests before it settled by its queries).
    seqs = [x for x in (json.loads(b).get('seq') for h, b, down in
                        recv.got[n_before:]) if first <= x <= last]
    tap.is_(seqs, list(range(first, last + 1)), 'two sweepers at once: '
            'every event pushed once, in order', [e[-300:] for e in errs])
    # A sweeper killed while it holds the endpoint: the next one takes
    # it over at once, not when the lease runs out.
    first, last = paid_orders(inst, 'PUSHK', 10)
    recv.delay = 0.3
    n_before = len(recv.got)
    p = sweep_bg(inst)
    wait_for(lambda: len(recv.got) > n_before + 1, timeout=20)
    p.kill()
    p.wait()
    recv.delay = 0.0
    sweep(inst)
    # Only this test's events: a pass may raise others (orders of the
    # tests before it settled by its queries).
    seqs = [x for x in (json.loads(b).get('seq') for h, b, down in
                        recv.got[n_before:]) if first <= x <= last]
    tap.is_(sorted(set(seqs)), list(range(first, last + 1)),
            'a sweeper killed while pushing: the next pass, at once, '
            'delivers the rest', seqs)
    o = 'PUSH3-' + os.urandom(3).hex()
    inst.create_order(o, 8)
    inst.notify(make_payment(o, 8, txn_id('push3')))
    r = inst.cli('events', 'resend', '--endpoint', 'erp', '--from',
                 str(inst.last_seq() + 2))
    tap.is_(r.returncode, 1, 'events resend --from past the events not '
            'yet delivered: refused', r.stdout, r.stderr)
    tap.like(r.stderr, r'has not delivered event %d yet.*never forward'
             % inst.last_seq(), '... saying from where it delivers')
    time.sleep(1)               # the killed sweeper's last call answered
    n_before = len(recv.got)
    sweep(inst)
    tap.is_([json.loads(b).get('order_id') for h, b, d in
             recv.got[n_before:]], [o], '... and the waiting event is '
            'delivered, not skipped')
    # A receiver taking 3 s an answer, lease_s 5: the lease is renewed
    # when each answer came, not when its call began, so a second
    # sweeper 5.5 s on does not take the endpoint in the middle.
    first, last = paid_orders(inst, 'PUSHL', 4)
    recv.delay = 3.0
    n_before = len(recv.got)
    a = sweep_bg(inst)
    time.sleep(5.5)
    b = sweep_bg(inst)
    a.wait(timeout=120)
    b.wait(timeout=120)
    recv.delay = 0.0
    tap.is_(a.returncode, 75, 'a pass that left events waiting behind a '
            'slow receiver exits 75 (no push success counted)')

    def slow_seqs():
        return [x for x in (json.loads(body).get('seq') for h, body, d in
                            recv.got[n_before:]) if first <= x <= last]
    tap.ok(len(slow_seqs()) < 4, 'a receiver that slow is given about '
           'five seconds a pass: the rest of its events wait for the next '
           'pass, the compensation of this one not held up', slow_seqs())
    sweep(inst)
    tap.is_(slow_seqs(), list(range(first, last + 1)),
            'a slow receiver (3 s an answer, lease_s 5) and a second '
            'sweeper 5.5 s on: each event pushed once, in order')
    # Each push of a pass signed when it is sent, not when the pass
    # began: behind a receiver taking 1.2 s an answer, three events of
    # one pass carry times 2 s and more apart.
    paid_orders(inst, 'PUSHT', 3)
    recv.delay = 1.2
    n_before = len(recv.got)
    sweep(inst)
    recv.delay = 0.0
    t = [int(m.group(1)) for m in (re.match(r'^t=(\d+),', h.get(
        'X-Payhook-Signature', '')) for h, b, d in recv.got[n_before:])
         if m]
    tap.ok(len(t) == 3 and t[-1] - t[0] >= 2,
           'each push signed with the time it is sent', t)


def test_certs(tap):
    work = tempfile.mkdtemp(prefix='payhook-e2e-certs-')
    try:
        pki = harness.unionpay_test_pki(work)
        # A subject as a Chinese merchant's certificate has it: UTF-8,
        # long once each byte is escaped.
        mer_key, mer_cert = harness.unionpay_merchant_cert(
            work, 10, '/C=CN/O=上海某某商贸有限公司/CN=041@Z12@'
            '上海某某商贸有限公司浦东分公司@00000004')
        profiles = {'upshop': harness.unionpay_profile(
            '777290058110048', pki, mer_key, mer_cert)}
        inst = harness.Instance(tap, 'certs', profiles=profiles)
        r = inst.cli('check')
        tap.is_(r.returncode, 0, 'check passes with a certificate near '
                'expiry', r.stderr[-400:])
        tap.like(r.stderr, r'warning: profile upshop: sign_cert_file '
                 r'unionpay/sign\.pem: certificate .* expires on .*, in '
                 r'(9|10) day', 'check warns about the 10-day certificate',
                 r.stderr[-400:])
        tap.like(r.stdout, r'profile upshop: root_cert_file .* in \d{3,} '
                 'days', 'check lists the others with their expiry')
        tap.ok('sign_cert_file unionpay/sign.pem: certificate /C=CN/O=上海某'
               '某商贸有限公司/CN=041@Z12@上海某某商贸有限公司浦东分公司@00000004 '
               'expires' in r.stderr, '... naming it by its whole subject, '
               'a long UTF-8 one too, as written', r.stderr[-600:])
        # Three days ago the certificate was not valid yet: whatever it
        # signed then was refused, and check said so.
        lib = harness.libfaketime()
        if lib is None:
            tap.skip('a certificate not valid yet', 'libfaketime is not '
                     'installed')
        elif harness.built_with_asan():
            # libfaketime preloaded into an AddressSanitizer build hangs
            # in its start (both wrap the clock and allocation calls).
            tap.skip('a certificate not valid yet', 'not under '
                     'AddressSanitizer')
        else:
            r = subprocess.run(
                [harness.PAYHOOK, '-c', inst.config, 'check'],
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                errors='replace', timeout=60,
                env=dict(os.environ, LD_PRELOAD=lib, FAKETIME='-3d',
                         FAKETIME_DONT_FAKE_MONOTONIC='1'))
            tap.like(r.stderr, r'warning: profile upshop: sign_cert_file '
                     r'unionpay/sign\.pem: certificate .* is NOT VALID YET: '
                     r'from \S+, in 3 day', 'check three days before a '
                     'certificate\'s notBefore warns that it is not valid '
                     'yet', r.stderr[-600:])
        inst.start()
        text = inst.request('GET', inst.path('/metrics')).body.decode()
        m = re.search(r'^payhook_certificate_expiry_seconds\{profile='
                      r'"upshop",key="sign_cert_file",[^}]*\} (-?\d+)$',
                      text, re.M)
        tap.ok(m and 8 * 86400 < int(m.group(1)) <= 10 * 86400,
               '/metrics shows it expiring within 10 days',
               m.group(0) if m else text[-600:])
        tap.ok(m and 'subject="/C=CN/O=上海某某商贸有限公司/CN=041@Z12@上海某某'
               '商贸有限公司浦东分公司@00000004"' in m.group(0), '... labelled '
               'by its subject in UTF-8', m.group(0) if m else '')
        log = open(os.path.join(inst.dir, 'lighttpd-stdout.log'),
                   errors='replace').read()
        tap.ok('expires in' in log and 'sign_cert_file' in log,
               'the log warns about it')
        inst.cleanup()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_archive_full(tap):
    """A full archive drops its oldest records; it never costs an
    acknowledgement."""
    inst = harness.Instance(tap, 'archfull', max_procs=2,
                            core={'archive_map_mb': '1'})
    inst.start()
    ids = ['AF-%s-%d' % (os.urandom(2).hex(), i) for i in range(600)]
    for x in ids:
        inst.create_order(x, 10)
    bodies = [make_payment(x, 10, txn_id('af%d' % i))
              for i, x in enumerate(ids)]
    answers = harness.parallel(lambda b: inst.notify(b).body, bodies, 8)
    tap.is_(sum(1 for a in answers if a == SUCCESS_ACK), len(ids),
            'a 1 MiB archive filling up: every notification still SUCCESS')
    tap.ok(all(inst.order(x).get('state') == 'PAID' for x in ids[::50]),
           '... and applied')
    r = inst.cli('notifications', 'list', '--limit', '100000')
    tap.is_(r.returncode, 0, 'notifications list works on a full archive',
            r.stderr[-300:])
    tap.ok(any(x in r.stdout for x in ids[-20:]),
           '... the last notifications are in it')
    inst.cleanup()


class TwoPushInstance(SimInstance):
    """Events pushed to two endpoints: erp first, then crm."""

    def __init__(self, tap, crm_port, **kw):
        self.crm_port = crm_port
        super().__init__(tap, **kw)

    def extra_config(self):
        return super().extra_config() + (
            '\n[push.crm]\nurl = http://127.0.0.1:%d/hook\n'
            'secret_file = keys/push.secret\n'
            'allow_insecure_http = yes\n' % self.crm_port)


def test_push_two_endpoints(tap, sim):
    """A pass that reaches its second endpoint late (the first one slow)
    takes it for lease_s from then, not from when the pass began: a
    second sweeper arriving meanwhile finds it held and pushes nothing
    there twice."""
    erp, crm = Receiver(), Receiver()
    inst = TwoPushInstance(tap, crm.port, sim_port=sim.port,
                           core={'lease_s': '5', 'http_timeout_s': '4'},
                           push_port=erp.port)
    inst.start()
    try:
        first, last = paid_orders(inst, 'PUSH2E', 2)
        n = last - first + 1
        erp.delay, crm.delay = 3.0, 2.0
        a = sweep_bg(inst)
        # erp takes a n * 3 s (over lease_s); then crm, 2 s an event.
        # A lease on crm from the pass's start would have run out before
        # a reached it: b comes 0.5 s after.
        wait_for(lambda: len(erp.got) >= n or a.poll() is not None,
                 timeout=60)
        time.sleep(0.5)
        b = sweep_bg(inst)
        a.wait(timeout=120)
        b.wait(timeout=120)
        erp.delay = crm.delay = 0.0
        for name, recv in (('erp', erp), ('crm', crm)):
            seqs = [x for x in (json.loads(body).get('seq') for h, body, d
                                in recv.got) if first <= x <= last]
            tap.is_(seqs, list(range(first, last + 1)), 'two endpoints, '
                    'the first slow, a second sweeper arriving while the '
                    'first pushes to the second: each event pushed once '
                    'to %s, in order' % name)
        # The delivery log of every endpoint, oldest first across them:
        # erp's attempts came before crm's in that pass.
        lines = [ln.split('\t') for ln in inst.cli(
            'events', 'deliveries').stdout.splitlines()]
        tap.ok(lines and [ln[0] for ln in lines] == sorted(
            ln[0] for ln in lines) and lines[0][1] == 'erp' and
            lines[-1][1] == 'crm', 'events deliveries without --endpoint: '
            'every endpoint\'s attempts, oldest first', lines)
    finally:
        inst.stop()
        erp.close()
        crm.close()


def main(tap):
    recv = Receiver()
    sim = Simulator(tap, time_factor=1000).start()
    # The default profiles (both WeChat) on a fast query schedule; a
    # push endpoint.
    inst = SimInstance(tap, sim_port=sim.port,
                       core={'hint_per_minute': '3', 'lease_s': '5',
                             'http_timeout_s': '4'},
                       profile={'query_schedule': '1s,1s,2s'},
                       push_port=recv.port)
    inst.start()
    try:
        test_replay(tap, inst)
        test_duplicates_unarchived(tap, inst)
        sim.point_at(inst)              # the restarted server's port
        test_hints(tap, inst, sim)
        test_missed_rate(tap, inst, sim)
        test_push(tap, inst, recv)
        test_push_shared(tap, inst, recv)
        test_push_two_endpoints(tap, sim)
        if shutil.which('openssl'):
            test_certs(tap)
        test_archive_full(tap)
    finally:
        recv.close()


if __name__ == '__main__':
    harness.run(main)
