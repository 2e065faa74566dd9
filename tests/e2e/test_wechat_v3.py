"""WeChat Pay API v3 end to end: lighttpd in front of two payhook.fcgi
processes, a [profile.wxv3] with plugin = wechat and api_version = 3 next to
the v2 profiles of the same plugin.

Platform certificates, the WeChat Pay public key and the merchant key are
made here with the `cryptography` package; notifications are encrypted
(AES-256-GCM with the APIv3 key) and signed (RSA-SHA256 over
"timestamp\\nnonce\\nbody\\n") here too, independently of payhook's code.

Covers: a valid notification pays the order (204, no body); a replay and a
resend under a new notification id are acknowledged without change; the
same transaction with another amount raises notification.conflict, and so
does a refund notification id re-sent with another amount; certificate
rotation and the public-key mode; every forgery (tampered body, ciphertext,
tag or associated data, another key, an unknown serial, stale or future
timestamps, a signature probe, missing headers) and every unacceptable
plaintext (a duplicate JSON key, amount 12.5 or "12", a missing field,
another mchid) is refused with 400 {"code":"FAIL",...} and changes nothing;
the v3 order query through a loopback WeChat Pay, its request checked byte
for byte (the Authorization signature verified with the merchant public
key), and its answers applied.
"""

import base64
import datetime
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import priv_pem, pub_pem, rsa_key  # noqa: E402

harness.need_cryptography()
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

APPID = 'wxd678efh567hg6787'
MCHID = '1230000109'
APIV3_KEY = 'V3e2eKey0123456789abcdefABCDEFGH'
PUB_ID = 'PUB_KEY_ID_0114232134912410000000000000000000'
MERCHANT_SERIAL = '3775B6A45ACD588826D15E583A95F5DD2C3A0F4D'
SCHEME = 'WECHATPAY2-SHA256-RSA2048'
BEIJING = datetime.timezone(datetime.timedelta(hours=8))
assert len(APIV3_KEY) == 32


def cert_pem(key, serial):
    return harness.self_signed_pem(key, serial, 'Tenpay.com Root CA (test)')


class Keys:
    """The WeChat Pay side: two platform certificates (a rotation), the
    WeChat Pay public key, a key nobody configured; and the merchant key."""

    def __init__(self):
        self.a, self.b, self.c = rsa_key(), rsa_key(), rsa_key()
        self.other, self.merchant = rsa_key(), rsa_key()
        self.serial_a_int = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
        self.serial_b_int = 0x0A1B22C03DFE
        self.serial_a = '%X' % self.serial_a_int
        self.serial_b = '%X' % self.serial_b_int     # WeChat's spelling
        self.cert_a = cert_pem(self.a, self.serial_a_int)
        self.cert_b = cert_pem(self.b, self.serial_b_int)


KEYS = None


def b64(data):
    return base64.b64encode(data).decode('ascii')


def rfc3339_now():
    return datetime.datetime.now(BEIJING).isoformat(timespec='seconds')


def transaction(order, txn, amount=100, state='SUCCESS', **over):
    t = {
        'mchid': MCHID, 'appid': APPID, 'out_trade_no': order,
        'transaction_id': txn, 'trade_type': 'JSAPI', 'trade_state': state,
        'trade_state_desc': '支付成功', 'bank_type': 'CMC', 'attach': '',
        'success_time': rfc3339_now(),
        'payer': {'openid': 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'},
        'amount': {'total': amount, 'payer_total': amount, 'currency': 'CNY',
                   'payer_currency': 'CNY'},
    }
    t.update(over)
    return t


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False,
                      separators=(',', ':')).encode('utf-8')


def seal(plaintext, aad='transaction', nonce=None, key=APIV3_KEY):
    """(ciphertext||tag as base64, nonce)"""
    nonce = nonce or os.urandom(6).hex()
    ct = AESGCM(key.encode()).encrypt(nonce.encode(), plaintext, aad.encode())
    return b64(ct), nonce


def envelope(plain, nid=None, event_type='TRANSACTION.SUCCESS',
             original_type='transaction', aad='transaction', seal_aad=None,
             ciphertext=None):
    """The notification body.  plain: a dict or raw plaintext bytes."""
    pt = plain if isinstance(plain, bytes) else dumps(plain)
    ct, nonce = seal(pt, seal_aad if seal_aad is not None else aad)
    env = {
        'id': nid or 'EV-' + os.urandom(8).hex(),
        'create_time': rfc3339_now(),
        'resource_type': 'encrypt-resource',
        'event_type': event_type,
        'summary': '支付成功',
        'resource': {
            'original_type': original_type,
            'algorithm': 'AEAD_AES_256_GCM',
            'ciphertext': ciphertext if ciphertext is not None else ct,
            'associated_data': aad,
            'nonce': nonce,
        },
    }
    return dumps(env)


def signed(body, key=None, serial=None, ts=None, nonce=None):
    """The Wechatpay-* headers WeChat Pay sends with body."""
    key = key or KEYS.a
    serial = serial or KEYS.serial_a
    ts = str(int(time.time()) if ts is None else ts)
    nonce = nonce or os.urandom(16).hex().upper()
    msg = ts.encode() + b'\n' + nonce.encode() + b'\n' + body + b'\n'
    sig = b64(harness.rsa_sign(key, msg))
    return {
        'Wechatpay-Timestamp': ts,
        'Wechatpay-Nonce': nonce,
        'Wechatpay-Signature': sig,
        'Wechatpay-Serial': serial,
        'Wechatpay-Signature-Type': SCHEME,
        'Content-Type': 'application/json',
    }


def post(inst, body, headers, profile='wxv3'):
    return inst.request('POST', inst.path('/notify/' + profile), body,
                        headers)


def types_of(evs):
    return [e.get('type') for e in evs]


def check_ok(tap, r, name):
    return tap.ok((r.status, r.body) == (204, b''),
                  '%s: 204 with no body' % name, r.describe())


def check_refused(tap, r, name):
    body = r.json
    good = (r.status == 400 and isinstance(body, dict) and
            body.get('code') == 'FAIL' and
            isinstance(body.get('message'), str) and body['message'] != '')
    tap.ok(good, '%s: 400 {"code":"FAIL","message":...}' % name,
           r.describe())


def txn():
    return '42000' + str(int.from_bytes(os.urandom(10), 'big'))[:23].rjust(
        23, '0')


# ---------------------------------------------------------------------------
# A loopback WeChat Pay for the query
# ---------------------------------------------------------------------------

class MockWeChat(harness.MockServer):
    """Answers GET /v3/pay/transactions/out-trade-no/<id> from `answers`
    and POST .../out-trade-no/<id>/close from `closes` (id -> (status, body
    bytes, signing key or None, serial); a close not listed is 204, signed)
    and records every request."""

    def __init__(self):
        self.answers = {}
        self.closes = {}
        harness.MockServer.__init__(self)

    def handle(self, h, body):
        self.requests.append({'method': h.command, 'path': h.path,
                              'headers': list(h.headers.items()),
                              'body': body})
        m = re.match(r'^/v3/pay/transactions/out-trade-no/([^/?]+)/close$',
                     h.path)
        if m:
            self.reply(h, *self.closes.get(m.group(1), (
                204, b'', KEYS.a, KEYS.serial_a)))
            return
        m = re.match(r'^/v3/pay/transactions/out-trade-no/([^?]+)\?', h.path)
        status, out, key, serial = self.answers.get(
            m.group(1) if m else '', (404, dumps({
                'code': 'ORDER_NOT_EXIST', 'message': '订单不存在'}),
                KEYS.a, KEYS.serial_a))
        self.reply(h, status, out, key, serial)

    @staticmethod
    def reply(h, status, out, key, serial):
        h.send_response(status)
        if key is not None:
            for k, v in signed(out, key, serial).items():
                h.send_header(k, v)
        else:
            h.send_header('Content-Type', 'application/json')
        h.send_header('Content-Length', str(len(out)))
        h.end_headers()
        h.wfile.write(out)


# ---------------------------------------------------------------------------

def test_notifications(tap, inst):
    base = inst.last_seq()

    # ---- the happy path ------------------------------------------------
    oid = 'V1' + os.urandom(4).hex()
    tap.is_(inst.create_order(oid, 100, profile='wxv3').status, 201,
            'order %s created on wxv3' % oid)
    t1 = txn()
    body = envelope(transaction(oid, t1))
    hdrs = signed(body)
    r = post(inst, body, hdrs)
    check_ok(tap, r, 'valid TRANSACTION.SUCCESS')
    o1 = inst.order(oid) or {}
    tap.is_((o1.get('state'), o1.get('provider_txn_id')), ('PAID', t1),
            'order PAID with the transaction_id', repr(o1))
    evs = inst.all_events(base)
    tap.is_(types_of(evs), ['order.paid'], 'one order.paid event')
    if evs:
        tap.is_((evs[0].get('order_id'), evs[0].get('profile'),
                 evs[0].get('provider'), evs[0].get('amount'),
                 evs[0].get('currency')),
                (oid, 'wxv3', 'wechat', 100, 'CNY'),
                'order.paid: order, profile, provider, amount, currency')
    base = inst.last_seq()

    # ---- replays ---------------------------------------------------------
    r = post(inst, body, hdrs)
    check_ok(tap, r, 'replay of the same bytes and headers')
    body2 = envelope(transaction(oid, t1))
    check_ok(tap, post(inst, body2, signed(body2)),
             'the same payment under a new notification id')
    tap.is_(inst.order(oid), o1, 'replays: order unchanged')
    tap.is_(types_of(inst.all_events(base)), [], 'replays: no new event')

    # ---- the same transaction with another amount: a conflict -----------
    body3 = envelope(transaction(oid, t1, amount=200))
    r = post(inst, body3, signed(body3))
    tap.ok(r.status in (204, 200), 'conflicting notification: acknowledged',
           r.describe())
    evs = harness.check_conflict(tap, inst, oid, base, ('PAID', t1, 100),
                                 'conflict')
    if evs:
        tap.is_(evs[0].get('dedup_key'), 'pay:' + t1,
                'conflict: names the dedup key pay:<transaction_id>')
    base = inst.last_seq()

    # ---- refused, nothing changes ---------------------------------------
    oid2 = 'V2' + os.urandom(4).hex()
    tap.is_(inst.create_order(oid2, 100, profile='wxv3').status, 201,
            'order %s created' % oid2)
    before = inst.order(oid2)
    t2 = txn()
    good = transaction(oid2, t2)
    now = int(time.time())
    cases = []

    b = envelope(good)
    h = signed(b)
    cases.append(('tampered body', b.replace('支付成功'.encode(),
                                             '支付失败'.encode(), 1), h,
                  'signature mismatch'))
    ct, nonce = seal(dumps(good))
    raw = bytearray(base64.b64decode(ct))
    raw[3] ^= 1
    b = envelope(good, ciphertext=b64(bytes(raw)))
    cases.append(('tampered ciphertext (validly signed)', b, signed(b),
                  'AES-256-GCM'))
    raw = bytearray(base64.b64decode(ct))
    raw[-1] ^= 1
    b = envelope(good, ciphertext=b64(bytes(raw)))
    cases.append(('tampered tag (validly signed)', b, signed(b),
                  'AES-256-GCM'))
    b = envelope(good, ciphertext=b64(base64.b64decode(ct)[:-16]))
    cases.append(('tag cut off (validly signed)', b, signed(b),
                  'AES-256-GCM'))
    b = envelope(good, aad='transaction', seal_aad='refund')
    cases.append(('wrong associated_data (validly signed)', b, signed(b),
                  'AES-256-GCM'))
    b = envelope(good)
    cases.append(('signature by another key', b,
                  signed(b, key=KEYS.other), 'signature mismatch'))
    cases.append(('unknown Wechatpay-Serial', b,
                  signed(b, serial='7F00AA55AA55AA55AA55AA55AA55AA55AA55AA55'),
                  'unknown Wechatpay-Serial 7F00AA55AA55AA55AA55AA55AA55AA55'
                  'AA55AA55'))
    cases.append(('Wechatpay-Timestamp 10 minutes old', b,
                  signed(b, ts=now - 600), 'Wechatpay-Timestamp'))
    cases.append(('Wechatpay-Timestamp 10 minutes ahead', b,
                  signed(b, ts=now + 600), 'Wechatpay-Timestamp'))
    h = signed(b)
    h['Wechatpay-Signature'] = 'WECHATPAY/SIGNTEST/' + h[
        'Wechatpay-Signature']
    cases.append(('WECHATPAY/SIGNTEST/ probe', b, h, 'Wechatpay-Signature'))
    h = signed(b)
    del h['Wechatpay-Signature']
    cases.append(('no Wechatpay-Signature header', b, h,
                  'Wechatpay-Signature missing'))
    h = signed(b)
    del h['Wechatpay-Serial']
    cases.append(('no Wechatpay-Serial header', b, h,
                  'Wechatpay-Serial missing'))
    dup = b.replace(b'{"id":"', b'{"id":"EV-dup","id":"', 1)
    cases.append(('duplicate JSON key in the envelope (validly signed)',
                  dup, signed(dup), 'duplicate'))
    pt = dumps(good).replace(b'"amount":{"total":100',
                             b'"amount":{"total":1,"total":100', 1)
    b = envelope(pt)
    cases.append(('duplicate JSON key in the resource', b, signed(b),
                  'duplicate'))
    pt = dumps(good).replace(b'"total":100', b'"total":12.5', 1)
    b = envelope(pt)
    cases.append(('amount 12.5', b, signed(b), 'amount.total'))
    pt = dumps(good).replace(b'"total":100', b'"total":"12"', 1)
    b = envelope(pt)
    cases.append(('amount as a string', b, signed(b), 'amount.total'))
    missing = dict(good)
    del missing['transaction_id']
    b = envelope(missing)
    cases.append(('missing transaction_id', b, signed(b),
                  'transaction_id: missing'))
    b = envelope(transaction(oid2, t2, mchid='1230000108'))
    cases.append(('another mchid', b, signed(b), 'mchid does not match'))
    b = envelope(good, nid='EV bad id')
    cases.append(('notification id with a space', b, signed(b), 'id:'))

    for name, b, h, why in cases:
        mark = len(inst.server.read_log())
        check_refused(tap, post(inst, b, h), name)
        logged = inst.server.read_log()[mark:]
        tap.ok(why in logged, '%s: the log says why (%s)' % (name, why),
               logged[-600:])
    tap.is_(inst.order(oid2), before, 'after %d refusals: order unchanged'
            % len(cases))
    tap.is_(types_of(inst.all_events(base)), [],
            'after the refusals: no new event')

    # A v3 notification sent to a v2 profile of the same plugin.
    b = envelope(good)
    r = post(inst, b, signed(b), profile='wxshop')
    tap.ok(r.status == 200 and harness.FAIL_ACK_RE.match(r.body or b''),
           'a v3 notification on the v2 profile: v2 FAIL ack', r.describe())

    # The good one still pays the order afterwards.
    b = envelope(good)
    check_ok(tap, post(inst, b, signed(b)), 'the genuine notification')
    tap.is_((inst.order(oid2) or {}).get('state'), 'PAID',
            'order %s PAID' % oid2)
    base = inst.last_seq()

    # ---- rotation and the public-key mode ------------------------------
    for tag, key, serial in (('second certificate', KEYS.b, KEYS.serial_b),
                             ('WeChat Pay public key', KEYS.c, PUB_ID)):
        o = 'V3' + os.urandom(4).hex()
        inst.create_order(o, 300, profile='wxv3')
        b = envelope(transaction(o, txn(), amount=300))
        check_ok(tap, post(inst, b, signed(b, key=key, serial=serial)),
                 'signed with the %s' % tag)
        tap.is_((inst.order(o) or {}).get('state'), 'PAID',
                '%s: order PAID' % tag)
    # WeChat writes a serial's bytes: a leading 0 names the same number.
    check_ok(tap, post(inst, b, signed(b, key=KEYS.b,
                                       serial='0' + KEYS.serial_b)),
             'serial with a leading zero: the same certificate')
    check_refused(tap, post(inst, b, signed(b, key=KEYS.b,
                                            serial=KEYS.serial_b[:-1])),
                  'another serial number: refused')
    base = inst.last_seq()

    # ---- states other than SUCCESS, refunds -----------------------------
    o = 'V4' + os.urandom(4).hex()
    inst.create_order(o, 100, profile='wxv3')
    before = inst.order(o)
    b = envelope(transaction(o, txn(), state='CLOSED'),
                 event_type='TRANSACTION.SUCCESS')
    check_ok(tap, post(inst, b, signed(b)),
             'TRANSACTION.SUCCESS over a CLOSED resource: acknowledged')
    tap.is_(inst.order(o), before, 'CLOSED resource: the order is not paid')
    b = envelope(transaction(o, txn(), state='PAYERROR'),
                 event_type='TRANSACTION.FAIL')
    check_ok(tap, post(inst, b, signed(b)), 'TRANSACTION.FAIL acknowledged')
    tap.is_(types_of(inst.all_events(base)), ['payment.failed'],
            'TRANSACTION.FAIL: payment.failed event')
    base = inst.last_seq()

    refund = {'mchid': MCHID, 'out_trade_no': oid, 'transaction_id': t1,
              'out_refund_no': 'R' + oid, 'refund_id': '5030' + t1[4:],
              'refund_status': 'SUCCESS', 'success_time': rfc3339_now(),
              'user_received_account': '招商银行信用卡0403',
              'amount': {'total': 100, 'refund': 50, 'payer_total': 100,
                         'payer_refund': 50}}
    nid = 'EV-refund-' + os.urandom(4).hex()
    b = envelope(refund, nid=nid, event_type='REFUND.SUCCESS',
                 original_type='refund', aad='refund')
    check_ok(tap, post(inst, b, signed(b)), 'REFUND.SUCCESS acknowledged')
    # What the core raises for a refund it did not ask for is its own
    # business; the plugin's part is that a repeat is one fact.
    tap.diag('REFUND.SUCCESS raised %r' % types_of(inst.all_events(base)))
    base = inst.last_seq()
    check_ok(tap, post(inst, b, signed(b)), 'REFUND.SUCCESS again')
    tap.is_(types_of(inst.all_events(base)), [],
            'REFUND.SUCCESS again: no new event')
    # WeChat gives each notification of one result its own id: the fact
    # is the refund and its status.
    b = envelope(refund, nid='EV-refund-' + os.urandom(4).hex(),
                 event_type='REFUND.SUCCESS', original_type='refund',
                 aad='refund')
    check_ok(tap, post(inst, b, signed(b)),
             'REFUND.SUCCESS under another notification id')
    tap.is_(types_of(inst.all_events(base)), [],
            'another notification id of the same refund result: no new '
            'event')
    refund['amount']['refund'] = 60
    b = envelope(refund, nid=nid, event_type='REFUND.SUCCESS',
                 original_type='refund', aad='refund')
    check_ok(tap, post(inst, b, signed(b)),
             'the same refund notification id with another amount')
    evs = [e for e in inst.all_events(base)
           if e.get('type') == 'notification.conflict']
    tap.is_(len(evs), 1,
            'same notification id, another amount: notification.conflict')
    if evs:
        tap.is_(evs[0].get('dedup_key'),
                'refund:%s:SUCCESS' % refund['refund_id'],
                'conflict names refund:<refund_id>:<refund_status>')


def parse_authorization(value):
    m = re.match(r'^WECHATPAY2-SHA256-RSA2048 mchid="([^"]*)",'
                 r'nonce_str="([^"]*)",signature="([^"]*)",'
                 r'timestamp="([^"]*)",serial_no="([^"]*)"$', value or '')
    return m.groups() if m else None


def test_query(tap, inst, mock):
    oid = 'Q1' + os.urandom(4).hex()
    inst.create_order(oid, 500, profile='wxv3')
    tq = txn()
    answer = dumps(transaction(oid, tq, amount=500))
    mock.answers[oid] = (200, answer, KEYS.a, KEYS.serial_a)
    base = inst.last_seq()
    t0 = int(time.time())
    r = inst.api('POST', '/orders/%s/query' % oid)
    t1 = int(time.time())
    tap.is_(r.status, 200, 'POST /orders/<id>/query', r.describe())
    calls = ((r.json or {}).get('query') or {}).get('calls') or []
    tap.is_([(c.get('profile'), c.get('asked'), c.get('result'))
             for c in calls], [('wxv3', True, 'paid')],
            'the query asked wxv3 and got a payment', repr(calls))
    tap.is_(len(mock.requests), 1, 'WeChat Pay was asked once')
    if mock.requests:
        q = mock.requests[-1]
        path = '/v3/pay/transactions/out-trade-no/%s?mchid=%s' % (oid, MCHID)
        tap.is_((q['method'], q['path'], q['body']), ('GET', path, b''),
                'query: GET, the path of doc/design/protocols.md §2.7, no body')
        hdrs = {k.lower(): v for k, v in q['headers']}
        tap.is_(hdrs.get('accept'), 'application/json', 'Accept JSON')
        tap.like(hdrs.get('user-agent', ''), r'^payhook/',
                 'User-Agent payhook/<version> (from the core)')
        parts = parse_authorization(hdrs.get('authorization'))
        tap.ok(parts is not None, 'Authorization: WECHATPAY2-SHA256-RSA2048 '
               'mchid,nonce_str,signature,timestamp,serial_no',
               repr(hdrs.get('authorization')))
        if parts:
            mchid, nonce, sig, ts, serial = parts
            tap.is_((mchid, serial), (MCHID, MERCHANT_SERIAL),
                    'Authorization: mchid and the merchant serial')
            tap.like(nonce, r'^[0-9A-F]{32}$', 'nonce_str: 32 hex')
            tap.ok(ts.isdigit() and t0 - 2 <= int(ts) <= t1 + 2,
                   'timestamp: now', ts)
            want = ('WECHATPAY2-SHA256-RSA2048 mchid="%s",nonce_str="%s",'
                    'signature="%s",timestamp="%s",serial_no="%s"'
                    % (MCHID, nonce, sig, ts, MERCHANT_SERIAL))
            tap.is_(hdrs.get('authorization'), want,
                    'Authorization, byte for byte')
            message = ('GET\n%s\n%s\n%s\n\n' % (path, ts, nonce)).encode()
            good = harness.rsa_verifies(KEYS.merchant.public_key(), sig,
                                        message)
            tap.ok(good, 'the signature verifies with the merchant public '
                   'key over GET\\npath\\ntimestamp\\nnonce\\n\\n')
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')), ('PAID', tq),
            'query answer SUCCESS: order PAID')
    tap.is_(types_of(inst.all_events(base)), ['order.paid'],
            'query: one order.paid event')
    base = inst.last_seq()
    b = envelope(transaction(oid, tq, amount=500))
    check_ok(tap, post(inst, b, signed(b)),
             'the notification of the queried payment')
    tap.is_(types_of(inst.all_events(base)), [],
            'notification after the query: same dedup key, no new event')

    # Not paid yet; an answer signed by another key; an unsigned answer.
    for tag, status, key in (('NOTPAY', 200, KEYS.a),
                             ('signed by another key', 200, KEYS.other),
                             ('unsigned', 200, None)):
        o2 = 'Q2' + os.urandom(4).hex()
        inst.create_order(o2, 500, profile='wxv3')
        st = 'NOTPAY' if tag == 'NOTPAY' else 'SUCCESS'
        mock.answers[o2] = (status, dumps(transaction(o2, txn(), amount=500,
                                                      state=st)),
                            key, KEYS.serial_a)
        base = inst.last_seq()
        r = inst.api('POST', '/orders/%s/query' % o2)
        tap.is_(r.status, 200, 'query (%s): answered' % tag, r.describe())
        tap.is_((inst.order(o2) or {}).get('state'), 'PENDING',
                'query answer %s: order stays PENDING' % tag)
        tap.is_(types_of(inst.all_events(base)), [],
                'query answer %s: no event' % tag)
        if tag != 'NOTPAY':
            calls = ((r.json or {}).get('query') or {}).get('calls') or []
            tap.ok(calls and calls[0].get('asked') is False,
                   'query answer %s: reported as not usable' % tag,
                   repr(calls))


def notpay(order, amount):
    """A query answer for an order not paid yet: no transaction, payer or
    time."""
    t = transaction(order, '', amount=amount, state='NOTPAY',
                    trade_state_desc='订单未支付')
    for k in ('transaction_id', 'success_time', 'payer', 'bank_type'):
        del t[k]
    return t


def close_requests(mock, oid):
    path = '/v3/pay/transactions/out-trade-no/%s/close' % oid
    return [q for q in mock.requests if q['path'] == path]


def sweep(inst):
    p = inst.cli('sweep')
    return p.returncode


def sweep_until(inst, pred, limit_s=15):
    deadline = time.time() + limit_s
    while time.time() < deadline:
        sweep(inst)
        if pred():
            return True
        time.sleep(0.3)
    return pred()


def test_close(tap, inst, mock):
    """An expired order WeChat says is NOTPAY is closed at WeChat
    (POST .../out-trade-no/{id}/close, {"mchid"}, signed like the query;
    204 signed over the empty body) and only then here; while WeChat's
    answer is an error or unsigned, the order stays PENDING."""
    oid = 'X1' + os.urandom(4).hex()
    base = inst.last_seq()
    r = inst.api('POST', '/orders', {'order_id': oid, 'amount': 300,
                                     'currency': 'CNY', 'profile': 'wxv3',
                                     'expires_in': 1})
    tap.is_(r.status, 201, 'close: order with expires_in 1', r.describe())
    mock.answers[oid] = (200, dumps(notpay(oid, 300)), KEYS.a,
                         KEYS.serial_a)
    time.sleep(1.2)
    for tag, answer in (
            ('503', (503, b'busy', None, None)),
            ('204 unsigned', (204, b'', None, None)),
            ('204 signed by another key', (204, b'', KEYS.other,
                                           KEYS.serial_a)),
            ('404 ORDER_NOT_EXIST', (404, dumps({
                'code': 'ORDER_NOT_EXIST', 'message': 'no'}), KEYS.a,
                KEYS.serial_a))):
        mock.closes[oid] = answer
        n = len(close_requests(mock, oid))
        sweep_until(inst, lambda: len(close_requests(mock, oid)) > n)
        tap.ok(len(close_requests(mock, oid)) > n,
               'close (%s): WeChat was asked to close' % tag)
        tap.is_((inst.order(oid) or {}).get('state'), 'PENDING',
                'close answered %s: the order stays PENDING' % tag)
    tap.is_(types_of(inst.all_events(base)), [],
            'no order.closed while WeChat has not closed it')
    q = close_requests(mock, oid)[-1]
    path = '/v3/pay/transactions/out-trade-no/%s/close' % oid
    tap.is_((q['method'], q['body']), ('POST', b'{"mchid":"%s"}'
                                       % MCHID.encode()),
            'close: POST {"mchid":"..."}')
    hdrs = {k.lower(): v for k, v in q['headers']}
    tap.like(hdrs.get('content-type', ''), r'^application/json',
             'close: Content-Type application/json')
    tap.is_(hdrs.get('accept'), 'application/json', 'close: Accept JSON')
    parts = parse_authorization(hdrs.get('authorization'))
    good = False
    if parts:
        mchid, nonce, sig, ts, serial = parts
        message = ('POST\n%s\n%s\n%s\n' % (path, ts, nonce)).encode() + \
            q['body'] + b'\n'
        good = (harness.rsa_verifies(KEYS.merchant.public_key(), sig,
                                     message) and
                (mchid, serial) == (MCHID, MERCHANT_SERIAL))
    tap.ok(good, 'close: Authorization signed by the merchant key over '
           'POST\\npath\\ntimestamp\\nnonce\\nbody\\n',
           repr(hdrs.get('authorization')))

    del mock.closes[oid]
    tap.ok(sweep_until(inst, lambda: (inst.order(oid) or {}).get('state') ==
                       'CLOSED'),
           'close answered 204, signed: the order is CLOSED',
           repr(inst.order(oid)))
    tap.is_(types_of(inst.all_events(base)), ['order.closed'],
            'close: one order.closed')

    # "Already paid": never closed; the next query finds the payment.
    o2 = 'X2' + os.urandom(4).hex()
    inst.api('POST', '/orders', {'order_id': o2, 'amount': 300,
                                 'currency': 'CNY', 'profile': 'wxv3',
                                 'expires_in': 1})
    mock.answers[o2] = (200, dumps(notpay(o2, 300)), KEYS.a, KEYS.serial_a)
    mock.closes[o2] = (400, dumps({'code': 'ORDERPAID', 'message': 'paid'}),
                       KEYS.a, KEYS.serial_a)
    time.sleep(1.2)
    sweep_until(inst, lambda: close_requests(mock, o2))
    tap.is_((inst.order(o2) or {}).get('state'), 'PENDING',
            'close answered ORDERPAID: not closed')
    tp = txn()
    mock.answers[o2] = (200, dumps(transaction(o2, tp, amount=300)),
                        KEYS.a, KEYS.serial_a)
    tap.ok(sweep_until(inst, lambda: (inst.order(o2) or {}).get('state') ==
                       'PAID'), 'ORDERPAID: the next query makes it PAID')


def main(tap):
    global KEYS
    KEYS = Keys()
    mock = MockWeChat()
    try:
        files = {
            'keys/wxv3.apiv3': (APIV3_KEY.encode(), 0o600),
            'keys/wxv3-merchant.key': (priv_pem(KEYS.merchant), 0o600),
            'wechatpay/cert-a.pem': (KEYS.cert_a, 0o644),
            'wechatpay/cert-b.pem': (KEYS.cert_b, 0o644),
            'wechatpay/pub.pem': (pub_pem(KEYS.c), 0o644),
        }
        profiles = dict(harness.PROFILES)
        profiles['wxv3'] = {
            'plugin': 'wechat',
            'settings': {
                'api_version': '3',
                'appid': APPID,
                'mch_id': MCHID,
                'apiv3_key_file': 'keys/wxv3.apiv3',
                'platform_cert_files':
                    'wechatpay/cert-a.pem wechatpay/cert-b.pem',
                'platform_public_key_file': 'wechatpay/pub.pem',
                'platform_public_key_id': PUB_ID,
                'merchant_private_key_file': 'keys/wxv3-merchant.key',
                'merchant_serial': MERCHANT_SERIAL,
                'query_schedule': '1s,1s,2s',
                'api_base': 'http://%s:%d' % (harness.HOST, mock.port),
                'allow_insecure_http': 'yes',
            },
            'files': files,
        }
        inst = harness.Instance(tap, 'wxv3', profiles=profiles)
        inst.check_passes('payhook check accepts the v3 profile')

        # A v2 key on the v3 profile is refused, naming it.
        harness.check_refuses(
            tap, 'wxv3bad', profiles, 'wxv3', ['sign_type', 'api_version = 3'],
            'payhook check refuses sign_type on the v3 profile',
            sign_type='MD5')

        inst.start()
        test_notifications(tap, inst)
        test_query(tap, inst, mock)
        test_close(tap, inst, mock)
        inst.stop()
    finally:
        mock.close()


if __name__ == '__main__':
    harness.run(main)
