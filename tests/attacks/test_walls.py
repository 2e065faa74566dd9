#!/usr/bin/env python3
"""Multi-step attacks through a real lighttpd and payhook.fcgi.

Each function below is one attack, played against a real server with a
real LMDB store, and what payhook must do about it:

* profiles are walls: a second WeChat v2 profile (an attacker's own
  merchant account, or the victim's account configured twice) can neither
  settle the victim's refund nor pre-empt the victim's payment;
* forged notifications that name a pending order get it queried, but can
  neither use up nor move its query schedule;
* error answers quoting long non-ASCII or invalid UTF-8 input stay valid
  UTF-8 and say what was wrong (never "out of memory");
* `payhook reconcile` does not follow links planted at its report names,
  and its reports are private (0600);
* `metrics_token_file` puts /metrics behind a bearer token, and /metrics
  never shows a path of the configuration.

Run by hand after make: tests/e2e/run-python tests/attacks/test_walls.py
"""

import datetime
import json
import os
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
import harness  # noqa: E402
from harness import (PROFILES, SUCCESS_ACK, FAIL_ACK_RE, Instance,  # noqa
                     make_payment, metric, txn_id)

BJ = datetime.timezone(datetime.timedelta(hours=8))

# The victim, an attacker with a merchant account of their own on the same
# plugin, and the victim's own WeChat account configured a second time.
WALL_PROFILES = {
    'wxshop': PROFILES['wxshop'],
    'wxevil': {
        'plugin': 'wechat',
        'appid': 'wxe7e1a5c0ffee0bad',
        'mch_id': '16660666',
        'key': 'Ev1lMerchantKeyOfTheAttacker0042',
        'sign_type': 'MD5',
    },
    'wxshop2': dict(PROFILES['wxshop']),
}
assert all(len(p['key']) == 32 for p in WALL_PROFILES.values())
assert WALL_PROFILES['wxevil']['key'] != PROFILES['wxshop']['key']


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def events_since(inst, base):
    return inst.all_events(base)


def of_order(evs, oid, etype=None):
    return [e for e in evs if e.get('order_id') == oid and
            (etype is None or e.get('type') == etype)]


def strict_utf8_message(resp):
    """(ok, message): the body decodes as UTF-8 strictly, is JSON, and its
    message is a string that encodes back to UTF-8 (no lone surrogates
    smuggled in through \\u escapes)."""
    try:
        doc = json.loads(resp.body.decode('utf-8', 'strict'))
        msg = doc.get('message')
        msg.encode('utf-8', 'strict')
        return isinstance(msg, str), msg
    except (ValueError, UnicodeError, AttributeError, TypeError) as exc:
        return False, repr(exc)


def is_ack(resp):
    return resp.status == 200 and resp.body == SUCCESS_ACK


# ---------------------------------------------------------------------------
# 1. Profiles are walls
# ---------------------------------------------------------------------------

def test_foreign_refund_result(tap, inst):
    """Attack: a refund result forged with another merchant's key.

    The attacker holds the key of another WeChat v2 profile (wxevil) of
    the same payhook.  They post to their own /notify/wxevil a refund
    notification, encrypted with their own key, naming the victim's refund
    id, transaction and amount: first refund_status CHANGE (which would
    fail the victim's refund, so that it is never sent and a second one
    can follow), then SUCCESS (which would mark the order REFUNDED though
    nothing was refunded).  Neither may touch the victim's refund: it is
    recorded as refund.unmatched."""
    oid = 'WALL-R-' + os.urandom(3).hex()
    txn = txn_id('victim-refund')
    tap.is_(inst.create_order(oid, 1000).status, 201, 'victim order created')
    r, _ = inst.pay(oid, 1000, txn)
    tap.ok(is_ack(r), 'victim order paid through wxshop', r.describe())
    r = inst.api('POST', '/orders/%s/refunds' % oid,
                 {'amount': 300, 'refund_id': 'victim-r1'})
    tap.is_(r.status, 201, 'merchant refund victim-r1 of 300 asked for',
            r.describe())
    before = inst.order(oid) or {}
    tap.is_((before.get('state'), before.get('refund_requested')),
            ('REFUNDING', 300), 'the order is REFUNDING, 300 requested',
            before)
    refund0 = inst.api('GET', '/refunds/victim-r1').json or {}
    tap.is_(refund0.get('state'), 'PENDING', 'the refund is PENDING',
            refund0)
    base = inst.last_seq()

    for status in ('CHANGE', 'SUCCESS'):
        body = harness.wechat_refund_notification(
            WALL_PROFILES['wxevil'], 'victim-r1', oid, txn, 300, 1000,
            status)
        r = inst.notify(body, 'wxevil')
        tap.is_(r.status, 200, 'forged refund %s on /notify/wxevil: HTTP '
                '200 (verified under wxevil, recorded)' % status,
                r.describe())
        rf = inst.api('GET', '/refunds/victim-r1').json or {}
        tap.is_(rf.get('state'), 'PENDING',
                'after the forged %s: the victim\'s refund stays PENDING'
                % status, rf)
        tap.is_((rf.get('provider_refund_id'), rf.get('sent_at')),
                (refund0.get('provider_refund_id'), refund0.get('sent_at')),
                '... and learns nothing from it', rf)
        o = inst.order(oid) or {}
        tap.is_(o.get('refund_requested'), before.get('refund_requested'),
                '... the order\'s refund_requested is unchanged (%s)'
                % status, o)
        tap.ok(o.get('state') != 'REFUNDED' and
               o.get('state') == before.get('state'),
               '... the order is not REFUNDED (%s): %s'
               % (status, o.get('state')), o)
        tap.is_(o.get('refunded', 0), before.get('refunded', 0),
                '... nothing counted as refunded (%s)' % status, o)

    evs = events_since(inst, base)
    unmatched = [e for e in evs if e.get('type') == 'refund.unmatched']
    tap.is_(len(unmatched), 2, 'the feed shows refund.unmatched for each '
            'forged result', evs)
    tap.ok(all(e.get('refund_id') == 'victim-r1' for e in unmatched),
           '... naming the refund id they claimed', unmatched)
    settled = [e for e in evs if e.get('type') in
               ('refund.failed', 'refund.succeeded', 'order.refunded')]
    tap.is_(settled, [], '... and no refund.failed or refund.succeeded')
    refunds = (inst.api('GET', '/orders/%s/refunds' % oid).json or {}).get(
        'refunds')
    tap.is_([(x.get('refund_id'), x.get('state'), x.get('amount'))
             for x in refunds or []], [('victim-r1', 'PENDING', 300)],
            'the order has its one refund, PENDING, and no other')


def test_foreign_payment_first(tap, inst):
    """Attack: another merchant's notification pre-empts the victim's
    payment.

    The attacker signs with their own key (wxevil) a payment notification
    naming the victim's pending order and a transaction id.  It is a
    profile mismatch, recorded; the genuine notification of that
    transaction on the victim's profile must then pay the order, not be
    answered as a duplicate of the attacker's fact."""
    oid = 'WALL-P-' + os.urandom(3).hex()
    txn = txn_id('preempt')
    tap.is_(inst.create_order(oid, 500).status, 201, 'victim order created')
    base = inst.last_seq()
    r, _ = inst.pay(oid, 500, txn, profile='wxevil')
    tap.is_(r.status, 200, 'attacker\'s notification on /notify/wxevil: '
            'HTTP 200', r.describe())
    o = inst.order(oid) or {}
    tap.is_(o.get('state'), 'PENDING', '... the victim order stays PENDING',
            o)
    tap.ok('profile_mismatch' in [x.get('type') for x in
                                  o.get('exceptions') or []],
           '... with a profile_mismatch exception', o)
    tap.is_(len(of_order(events_since(inst, base), oid,
                         'order.profile_mismatch')), 1,
            '... and order.profile_mismatch in the feed')

    r, _ = inst.pay(oid, 500, txn, profile='wxshop')
    tap.ok(is_ack(r), 'the genuine notification of that transaction on '
           '/notify/wxshop is acknowledged', r.describe())
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id'), o.get('paid_through')),
            ('PAID', txn, 'wxshop'), '... and pays the order (not a '
            'duplicate of the attacker\'s fact)', o)
    evs = events_since(inst, base)
    tap.is_(len(of_order(evs, oid, 'order.paid')), 1,
            '... one order.paid in the feed', of_order(evs, oid))
    tap.is_(of_order(evs, oid, 'order.double_payment'), [],
            '... and no double payment')


def test_same_account_twice(tap, inst):
    """Attack: the victim's genuine notification delivered to a second
    profile of the same WeChat account first.

    wxshop2 has exactly wxshop's credentials (one account configured
    twice), so a notification meant for /notify/wxshop also verifies on
    /notify/wxshop2.  Delivered there first (by anyone: no key is needed,
    it is a captured genuine message), it must not swallow the right
    delivery: the order ends PAID through wxshop."""
    oid = 'WALL-S-' + os.urandom(3).hex()
    txn = txn_id('twice')
    tap.is_(inst.create_order(oid, 700).status, 201, 'victim order created')
    base = inst.last_seq()
    fields = make_payment(oid, 700, txn, profile='wxshop',
                          profiles=inst.profiles)
    r = inst.notify(fields, 'wxshop2')
    tap.is_(r.status, 200, 'the genuine notification on /notify/wxshop2: '
            'HTTP 200', r.describe())
    o = inst.order(oid) or {}
    tap.is_(o.get('state'), 'PENDING', '... the order is not paid through '
            'a profile it was not registered with', o)
    r = inst.notify(fields, 'wxshop')
    tap.ok(is_ack(r), 'the same notification on /notify/wxshop: '
           'acknowledged', r.describe())
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id'), o.get('paid_through')),
            ('PAID', txn, 'wxshop'), 'the order ends PAID through wxshop', o)
    evs = events_since(inst, base)
    tap.is_(len(of_order(evs, oid, 'order.paid')), 1,
            '... one order.paid in the feed', of_order(evs, oid))
    tap.is_(of_order(evs, oid, 'order.double_payment'), [],
            '... one transaction is one payment: no double payment')
    refunds = (inst.api('GET', '/orders/%s/refunds' % oid).json or {}).get(
        'refunds')
    tap.is_(refunds, [], '... and no refund queued')


def test_foreign_payment_after(tap, inst):
    """Attack: another merchant's notification on the victim's paid order.

    The victim's order is paid through wxshop.  The attacker then signs
    with their own key (wxevil) a payment naming that order and another
    transaction.  The same order id under another account is another
    order: the victim's order must not take it as a second payment of its
    own, with a refund queued through the attacker's account and the
    order's refunds and state changed; it is a profile mismatch, recorded
    and raised, as it is while the order is pending."""
    oid = 'WALL-A-' + os.urandom(3).hex()
    txn = txn_id('victim')
    tap.is_(inst.create_order(oid, 900).status, 201, 'victim order created')
    r, _ = inst.pay(oid, 900, txn, profile='wxshop')
    tap.ok(is_ack(r), 'the victim\'s payment on /notify/wxshop is '
           'acknowledged', r.describe())
    base = inst.last_seq()
    r, _ = inst.pay(oid, 900, txn_id('evil'), profile='wxevil')
    tap.ok(is_ack(r), 'the attacker\'s payment on /notify/wxevil: '
           'acknowledged (a genuine fact of that account, recorded)',
           r.describe())
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id'), o.get('paid_through')),
            ('PAID', txn, 'wxshop'), '... the victim order still PAID by '
            'its own payment', o)
    tap.is_(sorted(x.get('type') for x in o.get('exceptions') or []),
            ['profile_mismatch'], '... with a profile_mismatch exception, '
            'not a double payment', o.get('exceptions'))
    refunds = (inst.api('GET', '/orders/%s/refunds' % oid).json or {}).get(
        'refunds')
    tap.is_(refunds, [], '... no refund queued through the attacker\'s '
            'account')
    evs = events_since(inst, base)
    tap.is_([e.get('type') for e in of_order(evs, oid)],
            ['order.profile_mismatch'], '... and only '
            'order.profile_mismatch in the feed', of_order(evs, oid))


# ---------------------------------------------------------------------------
# 2. Forged notifications cannot drain the compensation schedule
# ---------------------------------------------------------------------------

FORGED_ROUNDS = 20


def test_hints_keep_schedule(tap, inst, sim):
    """Attack: forged notifications drain an order's query schedule.

    Each forged notification (bad signature, refused) naming a pending
    order makes the next sweep query it.  Those queries must not count
    against the order's query_schedule nor move it: after many rounds of
    forgery and sweep the order is still due at the same time, with the
    same query count, and is never dropped from polling."""
    oid = 'WALL-H-' + os.urandom(3).hex()
    tap.is_(inst.create_order(oid, 400).status, 201, 'pending order created')
    o0 = inst.order(oid) or {}
    count0, next0 = o0.get('query_count'), o0.get('next_query_at')
    tap.ok(isinstance(count0, int) and next0 is not None,
           'the order is on the schedule: query_count %r, next_query_at %r'
           % (count0, next0), o0)
    text = inst.request('GET', inst.path('/metrics')).body.decode('utf-8',
                                                                  'replace')
    hints0 = metric(text, 'payhook_hints_queued_total') or 0
    q0 = ((sim.stats() or {}).get('by_order') or {}).get(oid, {}).get(
        'query', 0)

    refused = swept = 0
    for i in range(FORGED_ROUNDS):
        forged = make_payment(oid, 400, txn_id('forged-%d' % i),
                              key='f' * 32)
        r = inst.notify(forged)
        if r.status == 200 and FAIL_ACK_RE.match(r.body or b''):
            refused += 1
        rc = inst.cli('sweep')
        if rc.returncode == 0:
            swept += 1
        else:
            tap.diag('sweep %d: rc %s %s' % (i, rc.returncode,
                                             rc.stderr[-300:]))
    tap.is_(refused, FORGED_ROUNDS, 'every forged notification refused')
    tap.is_(swept, FORGED_ROUNDS, 'every sweep pass ran')
    text = inst.request('GET', inst.path('/metrics')).body.decode('utf-8',
                                                                  'replace')
    hints = (metric(text, 'payhook_hints_queued_total') or 0) - hints0
    queries = ((sim.stats() or {}).get('by_order') or {}).get(oid, {}).get(
        'query', 0) - q0
    tap.is_((hints, queries), (FORGED_ROUNDS, FORGED_ROUNDS),
            'each forged notification was hinted and queried once '
            '(hints, provider queries)')
    o = inst.order(oid) or {}
    tap.is_(o.get('state'), 'PENDING', 'the order is still PENDING', o)
    tap.is_(o.get('query_count'), count0, 'hinted queries do not use up '
            'the schedule: query_count unchanged', o)
    tap.is_(o.get('next_query_at'), next0, '... nor move it: next_query_at '
            'unchanged', o)
    tap.ok(o.get('next_query_at') is not None,
           '... the order is still due later (not dropped from polling)', o)


# ---------------------------------------------------------------------------
# 3. Error answers don't lie
# ---------------------------------------------------------------------------

def test_error_answers(tap, inst):
    """Attack: long non-ASCII or invalid UTF-8 input in a merchant call.

    An error message quoting it must be cut on a character boundary (or
    the bad bytes replaced) and still say what was wrong: a 400
    bad_request, never an "internal" "out of memory"."""
    tag = os.urandom(3).hex()
    paid, pending = 'WALL-EP-' + tag, 'WALL-EQ-' + tag
    inst.create_order(paid, 100)
    r, _ = inst.pay(paid, 100, txn_id('err'))
    tap.ok(is_ack(r), 'an order to refund is paid', r.describe())
    tap.is_(inst.create_order(pending, 100).status, 201,
            'an order to open attempts on is created')
    good = {'order_id': 'WALL-E-' + tag, 'amount': 100, 'currency': 'CNY',
            'profile': 'wxshop'}
    cjk = '\u4e2d' * 300          # 900 bytes: longer than any error message

    def with_member(obj, raw_member):
        text = json.dumps(obj)[:-1].encode('utf-8')
        return text + b', "' + raw_member + b'": 1}'

    calls = [
        ('an unknown member named by 300 three-byte characters',
         '/orders', with_member(good, cjk.encode('utf-8'))),
        ('an unknown member with invalid UTF-8 bytes',
         '/orders', with_member(good, b'bad\xff\xfe\xc3(\xed\xa0\x80x')),
        ('an unknown member of 300 three-byte characters and a cut one',
         '/orders', with_member(good, cjk.encode('utf-8') + b'\xe4\xb8')),
        ('an unknown profile named by 300 three-byte characters',
         '/orders', json.dumps(dict(good, profile=cjk),
                               ensure_ascii=False).encode('utf-8')),
        ('a refund with an unknown member of 300 three-byte characters',
         '/orders/%s/refunds' % paid,
         with_member({'amount': 10}, cjk.encode('utf-8'))),
        ('an attempt with an unknown member of 300 three-byte characters',
         '/orders/%s/attempts' % pending,
         with_member({'profile': 'wxshop'}, cjk.encode('utf-8'))),
    ]
    for name, route, body in calls:
        r = inst.api('POST', route, body)
        tap.is_(r.status, 400, '%s: HTTP 400' % name, r.describe())
        ok, msg = strict_utf8_message(r)
        tap.ok(ok, '%s: the message is valid UTF-8' % name, r.describe())
        doc = r.json or {}
        tap.is_(doc.get('error'), 'bad_request', '%s: error bad_request'
                % name, r.describe())
        tap.ok(b'out of memory' not in (r.body or b'') and
               doc.get('error') != 'internal',
               '%s: never "internal" / "out of memory"' % name,
               r.describe())
        tap.diag('%s: message of %d bytes' % (name, len(
            (msg or '').encode('utf-8', 'replace'))))
    tap.is_(inst.get_order(good['order_id']).status, 404,
            'no order was created by any of them')
    o = inst.order(paid) or {}
    tap.is_((o.get('state'), o.get('refund_requested', 0)), ('PAID', 0),
            'no refund was asked for by any of them', o)


# ---------------------------------------------------------------------------
# 4. Reconciliation reports don't follow planted links and are private
# ---------------------------------------------------------------------------

def wechat_bill(prof, rows):
    """A WeChat Pay v2 ALL trade bill (CRLF, every value after a
    backtick): rows are (when 'yyyy-MM-dd HH:mm:ss', txn, order_id, fen)."""
    bill = harness.provsim.WeChatBill
    return bill.bill_text([
        (when, bill.payment_row(prof, when, txn, oid, 'CNY', fen), fen, 0)
        for when, txn, oid, fen in rows])


def test_report_links(tap, inst):
    """Attack: links planted in the report directory.

    Whoever can write to the report directory plants symbolic links at
    the report names and at "<report>.part", pointing at a file of the
    operator's outside it.  `payhook reconcile` must leave that file
    alone, and write its reports as regular files of mode 0600."""
    work = os.path.join(inst.dir, 'recon')
    reports = os.path.join(work, 'reports')
    os.makedirs(reports)
    victim = os.path.join(work, 'victim.conf')
    precious = b'# the operator\'s file, not a report\nsecret = 1\n'
    with open(victim, 'wb') as fh:
        fh.write(precious)
    os.chmod(victim, 0o644)

    day_dt = datetime.datetime.now(BJ) - datetime.timedelta(days=1)
    day = day_dt.strftime('%Y-%m-%d')
    stmt = os.path.join(work, 'bill-%s.txt' % day)
    when = day_dt.strftime('%Y-%m-%d') + ' 10:00:00'
    # One payment payhook does not know, of an order it does not know.
    with open(stmt, 'wb') as fh:
        fh.write(wechat_bill(PROFILES['wxshop'], [
            (when, txn_id('stmt'), 'WALL-STMT-' + os.urandom(3).hex(),
             123)]))

    names = ['reconcile-wxshop-%s.%s' % (day, ext) for ext in ('csv', 'json')]
    planted = []
    for n in names:
        for link in (n, n + '.part'):
            os.symlink(victim, os.path.join(reports, link))
            planted.append(link)
    r = inst.cli('reconcile', '--profile', 'wxshop', '--statement', stmt,
                 '--date', day, '--report-dir', reports)
    tap.is_(r.returncode, 0, 'reconcile with links planted at %s'
            % ', '.join(planted), r.stdout[-400:] + r.stderr[-800:])
    with open(victim, 'rb') as fh:
        tap.is_(fh.read(), precious, 'the file the links point at is '
                'unchanged')
    tap.is_(stat.S_IMODE(os.stat(victim).st_mode), 0o644,
            '... and so is its mode')
    for n in names:
        path = os.path.join(reports, n)
        try:
            st = os.lstat(path)
        except OSError as exc:
            tap.ok(False, 'report %s exists' % n, repr(exc))
            continue
        tap.ok(stat.S_ISREG(st.st_mode), 'report %s is a regular file, not '
               'the planted link' % n, oct(st.st_mode))
        tap.is_(oct(stat.S_IMODE(st.st_mode)), oct(0o600),
                'report %s is mode 0600' % n)
    try:
        with open(os.path.join(reports, names[1]), encoding='utf-8') as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        doc = {'error': repr(exc)}
    tap.is_((doc.get('profile'), doc.get('date')), ('wxshop', day),
            'the JSON report is the report of that day', doc)
    tap.diag('report directory afterwards: %s' % sorted(os.listdir(reports)))


# ---------------------------------------------------------------------------
# 5. metrics_token_file
# ---------------------------------------------------------------------------

METRICS_TOKEN = 'mt-' + os.urandom(32).hex()[:29]
assert len(METRICS_TOKEN) == 32


def write_client_cert(inst):
    """A client certificate (and its key, 0600) for wxshop's refund calls:
    a file whose path /metrics must not show."""
    certs = os.path.join(inst.etc, 'certs')
    keys = os.path.join(inst.etc, 'keys')
    os.makedirs(certs, exist_ok=True)
    os.makedirs(keys, exist_ok=True)
    key = os.path.join(keys, 'wxshop-client.key')
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
         'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key,
         '-out', os.path.join(certs, 'wxshop-client.pem'),
         '-subj', '/CN=10000100/O=wxshop client', '-days', '30'],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, check=True, timeout=60)
    os.chmod(key, 0o600)


class CertInstance(Instance):
    """wxshop with a client certificate, whose expiry /metrics reports."""

    def profile_settings(self):
        out = Instance.profile_settings(self)
        out['wxshop']['client_cert_file'] = 'certs/wxshop-client.pem'
        out['wxshop']['client_key_file'] = 'keys/wxshop-client.key'
        return out

    def write(self):
        write_client_cert(self)
        Instance.write(self)


def check_metrics_text(tap, inst, text, name):
    """The client certificate's expiry is there, and no path of the
    configuration is."""
    tap.ok('payhook_certificate_expiry_seconds{profile="wxshop",'
           'key="client_cert_file"' in text,
           '%s: the client certificate\'s expiry is reported' % name,
           [l for l in text.splitlines() if 'certificate' in l][:5])
    for p in (inst.dir, inst.etc, 'certs/wxshop-client.pem',
              'wxshop-client.pem', 'keys/'):
        tap.ok(p not in text, '%s: /metrics does not show %r' % (name, p),
               [l for l in text.splitlines() if p in l][:5])


def test_metrics_open(tap, inst):
    """Attack: learning the configuration's file paths from /metrics.

    Without metrics_token_file /metrics is open (the web server restricts
    it); it reports certificate expiry by profile and key, never by file
    path."""
    r = inst.request('GET', inst.path('/metrics'))
    tap.is_(r.status, 200, 'without metrics_token_file: GET /metrics '
            'without a token: 200', r.describe())
    text = (r.body or b'').decode('utf-8', 'replace')
    tap.ok('payhook_' in text, '... with the metrics', r.describe())
    check_metrics_text(tap, inst, text, 'without metrics_token_file')


def test_metrics_token(tap, inst):
    """Attack: reading /metrics (order counts, certificate details) without
    being allowed to.

    With metrics_token_file set, /metrics requires its bearer token: no
    token, a wrong one, or the merchant API's token get 401; the right one
    gets the metrics, which show no path of the configuration."""
    path = inst.path('/metrics')
    cases = [('no Authorization', {}),
             ('a wrong token', {'Authorization': 'Bearer ' + 'x' * 32}),
             ('the token with one character changed',
              {'Authorization': 'Bearer ' + METRICS_TOKEN[:-1] +
               ('0' if METRICS_TOKEN[-1] != '0' else '1')}),
             ('the token without "Bearer"', {'Authorization': METRICS_TOKEN}),
             ('the merchant API token',
              {'Authorization': 'Bearer ' + inst.token})]
    for name, hdrs in cases:
        r = inst.request('GET', path, headers=hdrs)
        tap.is_(r.status, 401, 'GET /metrics with %s: 401' % name,
                r.describe())
        tap.ok(b'payhook_' not in (r.body or b''),
               '... and no metrics in the answer', r.describe())
    r = inst.request('GET', path,
                     headers={'Authorization': 'Bearer ' + METRICS_TOKEN})
    tap.is_(r.status, 200, 'GET /metrics with Authorization: Bearer '
            '<token>: 200', r.describe())
    text = (r.body or b'').decode('utf-8', 'replace')
    tap.ok('payhook_' in text, '... with the metrics', r.describe())
    check_metrics_text(tap, inst, text, 'with metrics_token_file')
    r = inst.request('GET', inst.path('/healthz'))
    tap.is_(r.status, 200, '/healthz stays open', r.describe())


# ---------------------------------------------------------------------------

def main(tap):
    t0 = time.time()
    inst = CertInstance(tap, name='walls', profiles=WALL_PROFILES)
    inst.start()
    test_foreign_refund_result(tap, inst)
    test_foreign_payment_first(tap, inst)
    test_same_account_twice(tap, inst)
    test_foreign_payment_after(tap, inst)
    test_error_answers(tap, inst)
    test_report_links(tap, inst)
    test_metrics_open(tap, inst)
    tap.diag('walls, errors, reports: %.1f s' % (time.time() - t0))

    t1 = time.time()
    # A long schedule; hints never limited by the rate, so that every
    # forged notification becomes a query.
    sim, hinst = harness.start_with_simulator(
        tap, 'hints', core={'hint_per_minute': '1000'},
        profile={'query_schedule': '1h'})
    test_hints_keep_schedule(tap, hinst, sim)
    hinst.stop()
    sim.stop()
    tap.diag('hints: %.1f s' % (time.time() - t1))

    t2 = time.time()
    # /metrics behind a bearer token.
    minst = CertInstance(
        tap, name='metrics',
        core={'metrics_token_file': 'keys/metrics.token'},
        files={'keys/metrics.token': (METRICS_TOKEN, 0o600)})
    minst.start()
    test_metrics_token(tap, minst)
    tap.diag('metrics: %.1f s; in all %.1f s' % (time.time() - t2,
                                                  time.time() - t0))


if __name__ == '__main__':
    harness.run(main)
