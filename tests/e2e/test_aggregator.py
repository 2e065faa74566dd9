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
changes nothing.  The charge query through a loopback aggregator, its
request checked byte for byte, its answers applied.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
except ImportError:
    print('1..0 # SKIP python3 cryptography not installed '
          '(Debian package python3-cryptography)')
    sys.exit(0)

import harness  # noqa: E402

APP = 'app_1Gqj58ynP0mHeX1q'
APIKEY = 'sk_test_ibbTe5jLGCi5rzfH4OqPW9KC'
SECRET = 'whsec_e2e_0123456789abcdefABCDEF'
OLD_SECRET = 'whsec_e2e_old_secret_rotated_away'
OK = b'{"ok":true}'

KEY = None          # the aggregator's signing key
OTHER = None        # a key nobody configured


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pub_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)


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
    sig = (key or KEY).sign(body, padding.PKCS1v15(), hashes.SHA256())
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

class MockAggregator:
    """GET /v1/charges?order_no=...: answers (status, body, signing key or
    None) from `answers` by order_no; records every request."""

    def __init__(self):
        self.answers = {}
        self.requests = []
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mock.handle(self)

        self.httpd = http.server.HTTPServer((harness.HOST, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def handle(self, h):
        from urllib.parse import parse_qsl, urlsplit
        self.requests.append({'method': h.command, 'path': h.path,
                              'headers': list(h.headers.items())})
        q = dict(parse_qsl(urlsplit(h.path).query))
        status, out, key = self.answers.get(q.get('order_no'), (
            200, dumps({'object': 'list', 'url': '/v1/charges',
                        'has_more': False, 'data': []}), None))
        h.send_response(status)
        h.send_header('Content-Type', 'application/json')
        if key is not None:
            h.send_header('X-Pingplusplus-Signature', base64.b64encode(
                key.sign(out, padding.PKCS1v15(), hashes.SHA256())).decode())
        h.send_header('Content-Length', str(len(out)))
        h.end_headers()
        h.wfile.write(out)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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


def test_query(tap, inst, mock):
    oid = 'Q' + os.urandom(5).hex()
    inst.create_order(oid, 700, profile='pingxx')
    ch = new_id('ch_')
    unpaid = charge(oid, new_id('ch_'), 700, paid=False)
    paid = charge(oid, ch, 700, channel='upacp')
    mock.answers[oid] = (200, dumps({'object': 'list', 'url': '/v1/charges',
                                     'has_more': False,
                                     'data': [unpaid, paid]}), None)
    base = inst.last_seq()
    r = inst.api('POST', '/orders/%s/query' % oid)
    tap.is_(r.status, 200, 'POST /orders/<id>/query', r.describe())
    calls = ((r.json or {}).get('query') or {}).get('calls') or []
    tap.is_([(c.get('profile'), c.get('asked'), c.get('result'))
             for c in calls], [('pingxx', True, 'paid')],
            'the query asked pingxx and got a payment', repr(calls))
    tap.is_(len(mock.requests), 1, 'the aggregator was asked once')
    if mock.requests:
        q = mock.requests[-1]
        tap.is_((q['method'], q['path']),
                ('GET', '/v1/charges?order_no=%s&app[id]=%s' % (oid, APP)),
                'query: GET /v1/charges?order_no=<id>&app[id]=<app_id>, '
                'byte for byte')
        hdrs = {k.lower(): v for k, v in q['headers']}
        tap.is_((hdrs.get('accept'), hdrs.get('authorization')),
                ('application/json', 'Bearer ' + APIKEY),
                'query: Accept JSON, Authorization: Bearer <api key>')
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')), ('PAID', ch),
            'query: the paid charge pays the order')
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

    # Unpaid, nothing, a signed answer, a badly signed one.
    for tag, data, key, state, asked in (
            ('unpaid', 'unpaid', None, 'PENDING', True),
            ('empty list', 'none', None, 'PENDING', True),
            ('signed answer', 'paid', KEY, 'PAID', True),
            ('answer signed by another key', 'paid', OTHER, 'PENDING',
             False)):
        o2 = 'Q' + os.urandom(5).hex()
        inst.create_order(o2, 700, profile='pingxx')
        items = {'unpaid': [charge(o2, amount=700, paid=False)],
                 'none': [],
                 'paid': [charge(o2, amount=700)]}[data]
        mock.answers[o2] = (200, dumps({'object': 'list', 'has_more': False,
                                        'data': items}), key)
        r = inst.api('POST', '/orders/%s/query' % o2)
        calls = ((r.json or {}).get('query') or {}).get('calls') or []
        tap.ok(r.status == 200 and calls and
               calls[0].get('asked') is asked,
               'query (%s): asked=%s' % (tag, asked), r.describe())
        tap.is_((inst.order(o2) or {}).get('state'), state,
                'query (%s): order %s' % (tag, state))


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
        p = inst.cli('check')
        tap.is_(p.returncode, 0, 'payhook check accepts both profiles',
                p.stdout + p.stderr)
        bad = dict(profiles)
        bad['pingxx'] = dict(profiles['pingxx'])
        bad['pingxx']['settings'] = dict(profiles['pingxx']['settings'],
                                         tolerance_s='300')
        p = harness.Instance(tap, 'aggbad', profiles=bad).cli('check')
        tap.ok(p.returncode != 0 and 'tolerance_s' in p.stdout + p.stderr,
               'payhook check refuses an hmac key on the rsa profile',
               p.stdout + p.stderr)

        inst.start()
        test_profile(tap, inst, 'pingxx', rsa_headers, rsa_refusals)
        test_profile(tap, inst, 'agghmac', hmac_headers, hmac_refusals)
        test_hmac_rotation(tap, inst)
        test_query(tap, inst, mock)
        inst.stop()
    finally:
        mock.close()


if __name__ == '__main__':
    harness.run(main)
