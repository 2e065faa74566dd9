"""The aggregator plugin end to end: lighttpd in front of two payhook.fcgi
processes, a Ping++-style profile verified by RSA ([profile.pingxx]) and a
Stripe-style HMAC profile ([profile.agghmac]).

Keys are made here with the `cryptography` package; events are signed here
(RSA-SHA256 over the raw body; HMAC-SHA256 over "<t>.<raw body>" with
hmac/hashlib), independently of payhook's code.

Covers, for both profiles: a valid charge.succeeded pays the order (200
{"ok":true}) and names the underlying channel; a replay and a resend under
a new event id change nothing; the same charge with another amount, and
the same refund event id with another amount, raise notification.conflict;
event types payhook does not act on are acknowledged; every forgery
(tampered body, another key or secret, a missing header, stale or future
t) and every unacceptable event (a duplicate JSON key, amount 12.5 or "12",
a missing field, another app, a test-mode event) is refused with 400 and
changes nothing.  The charge query through a loopback aggregator that,
like Ping++, takes no order parameter: the app's paid charges read page by
page (the order's picked here), or the attempt's charge by its id; the
requests checked byte for byte, the answers applied.
"""

import base64
import calendar
import hashlib
import hmac
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pub_pem, rsa_key  # noqa: E402

APP = 'app_1Gqj58ynP0mHeX1q'
APIKEY = 'sk_test_ibbTe5jLGCi5rzfH4OqPW9KC'
SECRET = 'whsec_e2e_0123456789abcdefABCDEF'
OLD_SECRET = 'whsec_e2e_old_secret_rotated_away'
OK = b'{"ok":true}'

KEY = None          # the aggregator's signing key
OTHER = None        # a key nobody configured


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False,
                      separators=(',', ':')).encode('utf-8')


def new_id(prefix):
    return prefix + os.urandom(12).hex()


def charge(order, ch=None, amount=100, paid=True, channel='wx_pub', **over):
    now = int(time.time())
    c = {
        'id': ch or new_id('ch_'), 'object': 'charge', 'created': now - 30,
        'livemode': True, 'paid': paid, 'refunded': False,
        'reversed': False, 'app': APP, 'channel': channel,
        'order_no': order, 'client_ip': '127.0.0.1', 'amount': amount,
        'amount_settle': amount, 'currency': 'cny', 'subject': 'Subject',
        'body': 'Body', 'extra': {}, 'time_paid': now - 5 if paid else None,
        'time_expire': now + 3600, 'time_settle': None,
        'transaction_no': '4200001234201409186089400000' if paid else None,
        'refunds': {'object': 'list', 'url': '/v1/charges/x/refunds',
                    'has_more': False, 'data': []},
        'amount_refunded': 0, 'failure_code': None, 'failure_msg': None,
        'metadata': {}, 'credential': {}, 'description': None,
    }
    c.update(over)
    return c


def event(obj, type_='charge.succeeded', eid=None, live=True):
    return dumps({
        'id': eid or new_id('evt_'), 'created': int(time.time()),
        'livemode': live, 'type': type_, 'data': {'object': obj},
        'object': 'event', 'request': 'iar_qH4y1KbTy5eLGm1uHSTS00s',
        'pending_webhooks': 0,
    })


def rsa_headers(body, key=None):
    sig = harness.rsa_sign(key or KEY, body)
    return {'X-Pingplusplus-Signature': base64.b64encode(sig).decode(),
            'Content-Type': 'application/json'}


def hmac_v1(secret, t, body):
    return hmac.new(secret.encode(), str(t).encode() + b'.' + body,
                    hashlib.sha256).hexdigest()


def hmac_headers(body, secret=SECRET, t=None, extra_v1=()):
    t = int(time.time()) if t is None else t
    v1 = ['v1=' + x for x in extra_v1] + ['v1=' + hmac_v1(secret, t, body)]
    return {'X-Signature': ','.join(['t=%d' % t] + v1),
            'Content-Type': 'application/json'}


def post(inst, profile, body, headers):
    return inst.request('POST', inst.path('/notify/' + profile), body,
                        headers)


def types_of(evs):
    return [e.get('type') for e in evs]


def check_ok(tap, r, name):
    return tap.is_((r.status, r.body), (200, OK), '%s: 200 {"ok":true}'
                   % name, r.describe())


def check_refused(tap, inst, r, name, why, mark):
    body = r.json
    tap.ok(r.status == 400 and isinstance(body, dict) and
           isinstance(body.get('error'), str) and body['error'] != '',
           '%s: 400 {"error":...}' % name, r.describe())
    logged = inst.server.read_log()[mark:]
    tap.ok(why in logged, '%s: the log says why (%s)' % (name, why),
           logged[-600:])


# ---------------------------------------------------------------------------
# A loopback aggregator for the query
# ---------------------------------------------------------------------------

class MockAggregator(harness.MockServer):
    """The charges API as Ping++ documents it, on 127.0.0.1: GET
    /v1/charges/<id> (one of `charges`, else 404) and GET /v1/charges, the
    app's charges newest first with app[id], limit (default 10), paid,
    created[gte] and starting_after, has_more when a page follows.  It
    takes no order parameter: order_no, if sent, is ignored, so a client
    relying on it gets other orders' charges.  `sign_key` signs every
    answer (X-Pingplusplus-Signature) when set; `override` maps a path
    prefix to (status, body) answered instead.  Records every request."""

    methods = ('GET',)

    def __init__(self):
        self.charges = []       # newest first
        self.sign_key = None
        self.override = {}
        harness.MockServer.__init__(self)

    def add(self, *charges):
        """Charges made now, newest first after those already there."""
        self.charges = list(charges) + self.charges

    def answer(self, path):
        from urllib.parse import parse_qs, urlsplit
        for prefix, out in self.override.items():
            if path.startswith(prefix):
                return out
        url = urlsplit(path)
        if url.path.startswith('/v1/charges/'):
            cid = url.path[len('/v1/charges/'):]
            found = [c for c in self.charges if c['id'] == cid]
            if not found:
                return 404, dumps({'error': {
                    'type': 'invalid_request_error',
                    'message': 'No such charge: ' + cid}})
            return 200, dumps(found[0])
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if q.get('app[id]') != APP:
            return 400, dumps({'error': {'type': 'invalid_request_error',
                                         'message': 'app[id] is required'}})
        rows = list(self.charges)
        if 'paid' in q:
            rows = [c for c in rows if c['paid'] == (q['paid'] == 'true')]
        if 'created[gte]' in q:
            since = int(q['created[gte]'])
            rows = [c for c in rows if c['created'] >= since]
        if 'starting_after' in q:
            ids = [c['id'] for c in rows]
            rows = rows[ids.index(q['starting_after']) + 1:] \
                if q['starting_after'] in ids else []
        limit = int(q.get('limit', '10'))
        return 200, dumps({'object': 'list', 'url': '/v1/charges',
                           'has_more': len(rows) > limit,
                           'data': rows[:limit]})

    def handle(self, h, body):
        self.requests.append({'method': h.command, 'path': h.path,
                              'headers': list(h.headers.items())})
        status, out = self.answer(h.path)
        h.send_response(status)
        h.send_header('Content-Type', 'application/json')
        if self.sign_key is not None:
            h.send_header('X-Pingplusplus-Signature', base64.b64encode(
                harness.rsa_sign(self.sign_key, out)).decode())
        h.send_header('Content-Length', str(len(out)))
        h.end_headers()
        h.wfile.write(out)


# ---------------------------------------------------------------------------

def test_profile(tap, inst, profile, headers_for, refusals):
    """The scenarios both verification modes share."""
    base = inst.last_seq()
    oid = 'A' + os.urandom(5).hex()
    tap.is_(inst.create_order(oid, 200, profile=profile).status, 201,
            '%s: order %s created' % (profile, oid))
    ch = new_id('ch_')
    body = event(charge(oid, ch, 200, channel='alipay_wap'))
    hdrs = headers_for(body)
    check_ok(tap, post(inst, profile, body, hdrs),
             '%s: valid charge.succeeded' % profile)
    o1 = inst.order(oid) or {}
    tap.is_((o1.get('state'), o1.get('provider_txn_id')), ('PAID', ch),
            '%s: order PAID, the charge is the transaction' % profile,
            repr(o1))
    evs = inst.all_events(base)
    tap.is_(types_of(evs), ['order.paid'], '%s: one order.paid' % profile)
    if evs:
        tap.is_((evs[0].get('provider'), evs[0].get('channel'),
                 evs[0].get('amount'), evs[0].get('currency')),
                ('aggregator', 'alipay_wap', 200, 'CNY'),
                '%s: order.paid names the channel, amount in fen, CNY'
                % profile)
    base = inst.last_seq()

    check_ok(tap, post(inst, profile, body, hdrs),
             '%s: replay of the same bytes' % profile)
    b = event(charge(oid, ch, 200, channel='alipay_wap'))
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: the same charge under a new event id' % profile)
    tap.is_(inst.order(oid), o1, '%s: replays change nothing' % profile)
    tap.is_(types_of(inst.all_events(base)), [],
            '%s: replays add no event' % profile)

    b = event(charge(oid, ch, 250, channel='alipay_wap'))
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: the same charge with another amount' % profile)
    evs = inst.all_events(base)
    tap.is_(types_of(evs), ['notification.conflict'],
            '%s: notification.conflict raised' % profile)
    if evs:
        tap.is_(evs[0].get('dedup_key'), 'pay:' + ch,
                '%s: the conflict names pay:<charge id>' % profile)
    oc = inst.order(oid) or {}
    tap.is_((oc.get('state'), oc.get('amount'), oc.get('provider_txn_id')),
            ('PAID', 200, ch), '%s: conflict leaves the order as paid'
            % profile)
    base = inst.last_seq()

    # The aggregator makes no refunds through payhook: a refund asked for
    # is refused, one payhook queues itself (a second payment) fails at
    # the runner with its reason, never waits for ever.
    r = inst.api('POST', '/orders/%s/refunds' % oid, {'amount': 50})
    tap.is_((r.status, (r.json or {}).get('error')),
            (409, 'refund_unsupported'), '%s: a refund asked for: 409 '
            'refund_unsupported' % profile, r.describe())
    # Of an order not paid: that it is not paid, not how it was paid.
    unpaid = 'UNP-' + os.urandom(3).hex()
    inst.create_order(unpaid, 100, profile=profile)
    r = inst.api('POST', '/orders/%s/refunds' % unpaid, {'amount': 50})
    tap.ok(r.status == 409 and (r.json or {}).get('error') == 'conflict' and
           'PENDING' in (r.json or {}).get('message', ''),
           '%s: a refund of an order not paid: 409 conflict, saying it is '
           'PENDING' % profile, r.describe())
    b = event(charge(oid, new_id('ch_'), 200, channel='alipay_wap'))
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: a second charge of the paid order' % profile)
    p = inst.cli('refunds', 'run')
    evs = types_of(inst.all_events(base))
    tap.ok(p.returncode == 0 and evs == ['order.double_payment',
                                         'refund.failed'],
           '%s: its refund fails at the first run (exit 0): '
           'order.double_payment, refund.failed' % profile, p.returncode,
           evs, p.stderr[-300:])
    tap.ok('cannot refund' in p.stderr, '%s: ... the runner says why'
           % profile, p.stderr[-300:])
    base = inst.last_seq()

    # A refund event id re-sent with another amount is a conflict too.
    rid = new_id('evt_')
    refund = {'id': new_id('re_'), 'object': 'refund', 'order_no': 'r1',
              'amount': 50, 'created': int(time.time()), 'succeed': True,
              'status': 'succeeded', 'time_succeed': int(time.time()),
              'charge': ch, 'charge_order_no': oid,
              'transaction_no': '2008450740201411110000174436'}
    b = event(refund, 'refund.succeeded', rid)
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: refund.succeeded' % profile)
    # What the core raises for a refund it did not ask for is its own
    # business; the plugin's part is that a repeat is one fact.
    tap.diag('%s: refund.succeeded raised %r'
             % (profile, types_of(inst.all_events(base))))
    base = inst.last_seq()
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: refund.succeeded again' % profile)
    tap.is_(types_of(inst.all_events(base)), [],
            '%s: refund.succeeded again: no new event' % profile)
    refund['amount'] = 60
    b = event(refund, 'refund.succeeded', rid)
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: the same refund event id with another amount' % profile)
    evs = [e for e in inst.all_events(base)
           if e.get('type') == 'notification.conflict']
    tap.is_(len(evs), 1, '%s: refund conflict raised' % profile)
    if evs:
        tap.is_(evs[0].get('dedup_key'), 'evt:' + rid,
                '%s: the conflict names evt:<event id>' % profile)
    base = inst.last_seq()

    # Types payhook does not act on are acknowledged.
    o2 = 'B' + os.urandom(5).hex()
    inst.create_order(o2, 100, profile=profile)
    before = inst.order(o2)
    b = event({'acct_id': 'acct_1', 'summary_from': 1, 'summary_to': 2,
               'charges_amount': 1000}, 'summary.daily.available')
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: summary.daily.available acknowledged' % profile)
    b = event(charge(o2, amount=100, paid=False), 'charge.pending')
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: an unknown charge event type acknowledged' % profile)
    tap.is_(inst.order(o2), before, '%s: ignored events change nothing'
            % profile)

    # Refused, and nothing changes.
    good = charge(o2, amount=100)
    cases = list(refusals(good))
    b = event(good)
    cases.append(('duplicate JSON key', b.replace(b'{"id":"', b'{"id":"x",'
                  b'"id":"', 1), None, 'duplicate'))
    cases.append(('amount 12.5', event(dict(good, amount=12.5)), None,
                  'amount'))
    cases.append(('amount as a string', event(dict(good, amount='100')),
                  None, 'amount'))
    missing = dict(good)
    del missing['order_no']
    cases.append(('missing order_no', event(missing), None,
                  'order_no: missing'))
    cases.append(('a charge of another app', event(dict(good,
                  app='app_other')), None, 'app does not match'))
    cases.append(('a test-mode event', event(good, live=False), None,
                  'test-mode event'))
    cases.append(('charge.succeeded of an unpaid charge', event(
        dict(good, paid=False)), None, 'not paid'))
    for name, b, h, why in cases:
        mark = len(inst.server.read_log())
        r = post(inst, profile, b, h if h is not None else headers_for(b))
        check_refused(tap, inst, r, '%s: %s' % (profile, name), why, mark)
    tap.is_(inst.order(o2), before, '%s: after %d refusals the order is '
            'unchanged' % (profile, len(cases)))
    tap.is_(types_of(inst.all_events(base)), [],
            '%s: after the refusals no new event' % profile)
    b = event(good)
    check_ok(tap, post(inst, profile, b, headers_for(b)),
             '%s: the genuine event still pays' % profile)
    tap.is_((inst.order(o2) or {}).get('state'), 'PAID',
            '%s: order %s PAID' % (profile, o2))


def rsa_refusals(good):
    b = event(good)
    h = rsa_headers(b)
    yield ('tampered body', b.replace(b'"amount":100', b'"amount":1', 1),
           h, 'RSA signature mismatch')
    yield ('signed by another key', b, rsa_headers(b, OTHER),
           'RSA signature mismatch')
    yield ('no signature header', b, {'Content-Type': 'application/json'},
           'X-Pingplusplus-Signature missing')
    yield ('an HMAC header instead', b, hmac_headers(b),
           'X-Pingplusplus-Signature missing')


def hmac_refusals(good):
    b = event(good)
    now = int(time.time())
    yield ('tampered body', b.replace(b'"amount":100', b'"amount":1', 1),
           hmac_headers(b), 'no v1 signature matches')
    yield ('another secret', b, hmac_headers(b, OLD_SECRET),
           'no v1 signature matches')
    yield ('t 10 minutes old', b, hmac_headers(b, t=now - 600),
           's from now')
    yield ('t 10 minutes ahead', b, hmac_headers(b, t=now + 600),
           's from now')
    h = hmac_headers(b)
    h['X-Signature'] = h['X-Signature'].replace('v1=', 'v0=')
    yield ('only a v0 signature', b, h, 'no v1 signature')
    yield ('no signature header', b, {'Content-Type': 'application/json'},
           'X-Signature missing')
    yield ('an RSA header instead', b, rsa_headers(b),
           'X-Signature missing')


def test_hmac_rotation(tap, inst):
    oid = 'R' + os.urandom(5).hex()
    inst.create_order(oid, 300, profile='agghmac')
    b = event(charge(oid, amount=300))
    t = int(time.time())
    h = hmac_headers(b, t=t, extra_v1=(hmac_v1(OLD_SECRET, t, b),))
    tap.like(h['X-Signature'], r'^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$',
             'rotation: two v1 signatures, the first by the old secret')
    check_ok(tap, post(inst, 'agghmac', b, h),
             'rotation: one matching v1 is enough')
    tap.is_((inst.order(oid) or {}).get('state'), 'PAID', 'rotation: PAID')


def created_of(inst, oid):
    """The order's created_at at payhook, in unix seconds."""
    import calendar
    t = (inst.order(oid) or {}).get('created_at', '')[:19]
    return calendar.timegm(time.strptime(t, '%Y-%m-%dT%H:%M:%S'))


def others(n, created):
    """n paid charges of other orders, newest first."""
    return [charge('X%d' % i, new_id('ch_'), 100, created=created - i)
            for i in range(n)]


def query(inst, oid):
    r = inst.api('POST', '/orders/%s/query' % oid)
    return r, ((r.json or {}).get('query') or {}).get('calls') or []


def test_query(tap, inst, mock):
    """The charge query against an API that has no order parameter (Ping++
    documents none; tests/vectors/FINDINGS.md section 1): the app's paid
    charges read page by page, the order's picked by order_no here."""
    oid = 'Q' + os.urandom(5).hex()
    inst.create_order(oid, 700, profile='pingxx')
    t0 = created_of(inst, oid)
    ch = new_id('ch_')
    paid = charge(oid, ch, 700, channel='upacp', created=t0 + 5)
    mock.add(charge(oid, new_id('ch_'), 700, paid=False, created=t0 + 1),
             paid)
    # 150 newer paid charges of other orders: the order's is on page 2.
    mock.add(*others(150, t0 + 300))
    base = inst.last_seq()
    n0 = len(mock.requests)
    r, calls = query(inst, oid)
    tap.is_(r.status, 200, 'POST /orders/<id>/query', r.describe())
    tap.is_([(c.get('profile'), c.get('asked'), c.get('result'))
             for c in calls], [('pingxx', True, 'paid')],
            'the query asked pingxx and got a payment', repr(calls))
    reqs = mock.requests[n0:]
    first = '/v1/charges?app[id]=%s&limit=100&paid=true&created[gte]=%d' \
        % (APP, t0 - 600)
    tap.is_([(q['method'], q['path']) for q in reqs],
            [('GET', first),
             ('GET', first + '&starting_after=' +
              mock.charges[99]['id'])],
            'query: the app\'s paid charges since 10 minutes before the '
            'order, then the page after the 100th; byte for byte')
    tap.ok(not any('order_no' in q['path'] for q in reqs),
           'query: no order_no (the list has no such parameter)')
    if reqs:
        hdrs = {k.lower(): v for k, v in reqs[0]['headers']}
        tap.is_((hdrs.get('accept'), hdrs.get('authorization')),
                ('application/json', 'Bearer ' + APIKEY),
                'query: Accept JSON, Authorization: Bearer <api key>')
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')), ('PAID', ch),
            'query: the paid charge pays the order, other orders\' '
            'charges passed over')
    evs = inst.all_events(base)
    tap.is_(types_of(evs), ['order.paid'], 'query: one order.paid')
    if evs:
        tap.is_((evs[0].get('channel'), evs[0].get('source')),
                ('upacp', 'query'), 'query: channel, source query')
    base = inst.last_seq()
    b = event(paid)
    check_ok(tap, post(inst, 'pingxx', b, rsa_headers(b)),
             'the charge.succeeded of the queried charge')
    tap.is_(types_of(inst.all_events(base)), [],
            'event after the query: same dedup key, no new event')

    # The charge named by the attempt: retrieved by its id.
    o2 = 'Q' + os.urandom(5).hex()
    c2 = new_id('ch_')
    r = inst.create_order(o2, 300, profile='pingxx', attempt={'charge': c2})
    tap.is_(r.status, 201, 'order with the attempt\'s charge', r.describe())
    mock.add(charge(o2, c2, 300, created=created_of(inst, o2)))
    n0 = len(mock.requests)
    r, calls = query(inst, o2)
    tap.is_([q['path'] for q in mock.requests[n0:]], ['/v1/charges/' + c2],
            'query: GET /v1/charges/<the attempt\'s charge>')
    tap.is_((inst.order(o2) or {}).get('provider_txn_id'), c2,
            'query by charge id: PAID with it')

    # The charge named by the attempt unpaid: the shopper switched
    # wallets and paid another charge of the order, its event lost.
    o5 = 'Q' + os.urandom(5).hex()
    c5, c6 = new_id('ch_'), new_id('ch_')
    inst.create_order(o5, 300, profile='pingxx', attempt={'charge': c5})
    t5 = created_of(inst, o5)
    mock.add(charge(o5, c5, 300, paid=False, created=t5 + 1),
             charge(o5, c6, 300, channel='alipay', created=t5 + 2))
    n0 = len(mock.requests)
    r, calls = query(inst, o5)
    asked = [q['path'] for q in mock.requests[n0:]]
    tap.ok(asked[:1] == ['/v1/charges/' + c5] and len(asked) == 2 and
           asked[1].startswith('/v1/charges?app[id]=') and
           (inst.order(o5) or {}).get('provider_txn_id') == c6,
           'query: the attempt\'s charge unpaid, the order\'s charges '
           'listed next: PAID with the one paid through another wallet',
           asked, inst.order(o5))

    # Not paid (only an unpaid charge, or none); signed answers.
    for tag, items, key, state, asked in (
            ('unpaid', 'unpaid', None, 'PENDING', True),
            ('no charge', 'none', None, 'PENDING', True),
            ('signed answer', 'paid', KEY, 'PAID', True),
            ('answer signed by another key', 'paid', OTHER, 'PENDING',
             False)):
        o3 = 'Q' + os.urandom(5).hex()
        inst.create_order(o3, 700, profile='pingxx')
        t3 = created_of(inst, o3)
        if items != 'none':
            mock.add(charge(o3, amount=700, paid=items == 'paid',
                            created=t3 + 1))
        mock.sign_key = key
        r, calls = query(inst, o3)
        mock.sign_key = None
        tap.ok(r.status == 200 and calls and
               calls[0].get('asked') is asked,
               'query (%s): asked=%s' % (tag, asked), repr(calls))
        tap.is_((inst.order(o3) or {}).get('state'), state,
                'query (%s): order %s' % (tag, state))

    # More pages than payhook reads: no conclusion, asked again later.
    o4 = 'Q' + os.urandom(5).hex()
    inst.create_order(o4, 700, profile='pingxx')
    t4 = created_of(inst, o4)
    mock.add(charge(o4, amount=700, created=t4 + 1))
    mock.add(*others(1000, t4 + 5000))
    n0 = len(mock.requests)
    r, calls = query(inst, o4)
    tap.is_(len(mock.requests) - n0, 10, 'query: at most 10 pages read')
    tap.ok(calls and calls[0].get('asked') is False,
           'query past 10 pages: no answer (asked again later)',
           repr(calls))
    tap.is_((inst.order(o4) or {}).get('state'), 'PENDING',
            'query past 10 pages: the order stays PENDING')
    mock.charges = [c for c in mock.charges if not c['order_no'].startswith(
        'X')]

    # A charge of another app on the page is refused, not passed over.
    o5 = 'Q' + os.urandom(5).hex()
    inst.create_order(o5, 700, profile='pingxx')
    mock.add(charge('X1', amount=5, app='app_other',
                    created=created_of(inst, o5) + 2),
             charge(o5, amount=700, created=created_of(inst, o5) + 1))
    r, calls = query(inst, o5)
    tap.ok(calls and calls[0].get('asked') is False,
           'query: a charge of another app on the page: refused',
           repr(calls))
    tap.is_((inst.order(o5) or {}).get('state'), 'PENDING',
            '... and the order stays PENDING')


def test_statement_day(tap, inst):
    """reconcile without --date reconciles the day it checked the
    statement against, one whose slack holds all its payments: a refund of
    the day before, a row without a time, or payments of the slack before
    or after it listed first must not choose another day, where the
    payment missing from the statement would go unseen and one rightly
    absent be raised."""
    def utc(text):
        return calendar.timegm(time.strptime(text, '%Y-%m-%d %H:%M:%S'))

    tag = os.urandom(3).hex()
    rows_of = {}

    def paid(name, when):
        """An order paid at when (UTC): its statement row."""
        oid = '%s-%s' % (name, tag)
        inst.create_order(oid, 100, profile='agghmac')
        ch = new_id('ch_')
        b = event(charge(oid, ch=ch, time_paid=utc(when)))
        check_ok(tap, post(inst, 'agghmac', b, hmac_headers(b)),
                 'statement day: %s paid' % oid)
        rows_of[oid] = ch
        return oid, 'charge,%s,%s,%s,,100,cny,wx_pub,%d,' % (
            ch, APP, oid, utc(when))

    before, _ = paid('SD0', '2026-11-05 04:00:00')
    listed, pay_row = paid('SD1', '2026-11-06 02:00:00')
    dropped, dropped_row = paid('SD2', '2026-11-06 03:00:00')
    rep = os.path.join(inst.dir, 'statement-day')
    os.makedirs(rep)

    def run(name, rows, want, what):
        path = os.path.join(rep, name)
        with open(path, 'w') as fh:
            fh.write('\n'.join(
                ['type,id,app,order_no,charge,amount,currency,channel,'
                 'time,refund_no'] + rows +
                ['total,%d,%d' % (len(rows), 100 * len(rows))]) + '\n')
        r = inst.cli('reconcile', '--profile', 'agghmac', '--statement',
                     path, '--report-dir', rep)
        tap.ok(r.returncode == 0 and r.stdout.startswith(
            'reconcile agghmac %s' % want), 'statement day: ' + what,
            r.returncode, r.stdout[:200], r.stderr[-300:])

    # A refund that succeeded at 23:00 Beijing the day before, first.
    run('refund-first.csv', [
        'refund,%s,%s,%s,%s,100,cny,,%d,' % (
            new_id('re_'), APP, before, rows_of[before],
            utc('2026-11-05 15:00:00')), pay_row], '2026-11-06',
        'a refund of the day before listed first: the day of the payments '
        'is reconciled')
    rows = []
    path = os.path.join(rep, 'reconcile-agghmac-2026-11-06.json')
    if os.path.exists(path):
        with open(path) as fh:
            rows = json.load(fh).get('rows', [])
    missing = sorted(x['order_id'] for x in rows
                     if x.get('category') == 'missing_at_provider')
    tap.is_(missing, [dropped], 'statement day: ... the payment of that '
            'day left out of the statement is raised, the one of the day '
            'before is not', rows)
    # A payment of the slack before the day (23:50 Beijing) listed first.
    _, late_row = paid('SDL', '2026-11-05 15:50:00')
    run('slack-first.csv', [late_row, pay_row, dropped_row], '2026-11-06',
        'a payment of 23:50 the day before listed first: the day of the '
        'others is reconciled')
    # More payments of the slack after the day (00:20 and 00:40 Beijing
    # the day after) than of the day: the only day whose slack holds all.
    after = [paid('SDA%d' % i, when)[1] for i, when in enumerate((
        '2026-11-06 16:20:00', '2026-11-06 16:40:00'))]
    run('slack-after.csv', [pay_row] + after, '2026-11-06',
        'more payments of 00:20 and 00:40 the day after than of the day: '
        'the day whose slack holds them all')
    # A row without a time first: not the day of 1970.
    run('time-zero-first.csv', [
        'charge,%s,%s,%s,,100,cny,wx_pub,0,' % (
            new_id('ch_'), APP, 'SDZ-' + tag), pay_row], '2026-11-06',
        'a row without a time first: the day of the payments is reconciled')
    tap.ok(not os.path.exists(os.path.join(
        rep, 'reconcile-agghmac-1970-01-01.json')),
        'statement day: ... and no report of 1970-01-01')


def test_unverified_unsendable(tap, inst):
    """A statement nobody vouches for lists a pending order of a profile
    without api_base as paid: payhook would ask the aggregator, cannot,
    and says so with exit 78 (a run again would not ask either)."""
    now = int(time.time())
    oid = 'UN-' + os.urandom(3).hex()
    inst.create_order(oid, 100, profile='agghmac')
    rep = os.path.join(inst.dir, 'unsendable')
    os.makedirs(rep)
    path = os.path.join(rep, 'stmt.csv')
    with open(path, 'w') as fh:
        fh.write('type,id,app,order_no,charge,amount,currency,channel,time,'
                 'refund_no\ncharge,%s,%s,%s,,100,cny,wx_pub,%d,\n'
                 'total,1,100\n' % (new_id('ch_'), APP, oid, now))
    r = inst.cli('reconcile', '--profile', 'agghmac', '--statement', path,
                 '--report-dir', rep)
    tap.ok(r.returncode == 78 and 'could not be made' in r.stderr and
           (inst.order(oid) or {}).get('state') == 'PENDING',
           'an unverified statement\'s payment of a pending order, the '
           'profile without api_base: exit 78, saying the call could not '
           'be made; the order still PENDING', r.returncode,
           r.stdout[-300:], r.stderr[-400:])


def main(tap):
    global KEY, OTHER
    KEY, OTHER = rsa_key(), rsa_key()
    mock = MockAggregator()
    try:
        profiles = {
            'pingxx': {
                'plugin': 'aggregator',
                'settings': {
                    'signature': 'rsa',
                    'app_id': APP,
                    'webhook_public_key_file': 'pingxx/public.pem',
                    'api_key_file': 'keys/pingxx.apikey',
                    'api_base': 'http://%s:%d' % (harness.HOST, mock.port),
                    'allow_insecure_http': 'yes',
                },
                'files': {
                    'pingxx/public.pem': (pub_pem(KEY), 0o644),
                    'keys/pingxx.apikey': (APIKEY.encode() + b'\n', 0o600),
                },
            },
            'agghmac': {
                'plugin': 'aggregator',
                'settings': {
                    'signature': 'hmac',
                    'app_id': APP,
                    'webhook_secret_file': 'keys/agghmac.whsec',
                    'tolerance_s': '300',
                },
                'files': {
                    'keys/agghmac.whsec': (SECRET.encode(), 0o600),
                },
            },
        }
        inst = harness.Instance(tap, 'aggregator', profiles=profiles)
        inst.check_passes('payhook check accepts both profiles')
        harness.check_refuses(
            tap, 'aggbad', profiles, 'pingxx', ['tolerance_s'],
            'payhook check refuses an hmac key on the rsa profile',
            tolerance_s='300')

        inst.start()
        test_profile(tap, inst, 'pingxx', rsa_headers, rsa_refusals)
        test_profile(tap, inst, 'agghmac', hmac_headers, hmac_refusals)
        test_hmac_rotation(tap, inst)
        test_query(tap, inst, mock)
        test_statement_day(tap, inst)
        test_unverified_unsendable(tap, inst)
        inst.stop()
    finally:
        mock.close()


if __name__ == '__main__':
    harness.run(main, need_cryptography=True)
