#!/usr/bin/env python3
"""provsim: a payment provider simulator for payhook's tests.

It plays the provider's side on 127.0.0.1: it keeps a ledger of orders and
payments, notifies the merchant on the provider's retry schedule (dropping,
delaying and duplicating deliveries on request), and answers the
provider's query and close APIs from its ledger.  Signatures are computed
here, from the providers' published rules, never by payhook's code.
Standard library only, but for the python3 cryptography package, which
UnionPay, WeChat Pay v3 and RSA aggregator profiles need.

    python3 tests/sim/provsim.py --port PORT --config sim.json \\
        [--time-factor F] [--log FILE]

PORT 0 picks a free port.  When ready it prints exactly one line on stdout,
``provsim listening on 127.0.0.1:PORT`` (the real port), and it stops
cleanly on SIGTERM or SIGINT (exit status 0).

sim.json::

    {"profiles": [{"name": "wxshop", "provider": "wechat",
                   "appid": "wx...", "mch_id": "...",
                   "key": "<32-character APIv2 key>", "sign_type": "MD5",
                   "notify_url": "http://127.0.0.1:NNNN/notify/wxshop"}]}

Time: the gaps of the provider's documented retry schedule are divided by
the time factor F (default 1).  ``delay_s`` given to /_sim/pay and the
``slow`` mode's wait are real seconds, never divided.

Control API (JSON in and out; errors are HTTP 4xx with {"error": text}):

POST /_sim/pay        {"profile", "order_id", "amount", "currency"?="CNY",
                       "txn_id"? (28 digits generated), "time_end"? (now,
                       Beijing), "force"? (pay a closed order),
                       "notify"?: {"drop_first": N, "drop_all": bool,
                                   "delay_s": S, "duplicate": N,
                                   "mode": "normal"}}
                      -> {"txn_id", "order_id"}
    A successful payment enters the ledger (trade_state SUCCESS) and its
    notification is scheduled: the first send after delay_s (default 0),
    then the schedule's gaps / F after each send, until a send is
    acknowledged or the schedule is exhausted.  drop_first N: the first N
    sends are lost (recorded with "dropped": true, never sent, and they
    still advance the schedule); drop_all: every send is lost;
    duplicate N: every send goes out N extra times at once.  Paying an
    order again adds a second payment (a double payment).  Paying a closed
    order is 409 unless "force": true.
POST /_sim/pay_twice  {"profile", "order_id", "amount", "currency"?,
                       "notify"?} -> {"txn_ids": [t1, t2], "order_id"}
    Two successful payments of one order, both notified.
POST /_sim/out_of_order {"profile", "order_id", "amount", "currency"?,
                       "gap_s"? = 0.2}
                      -> {"txn_id", "failed_txn_id", "order_id"}
    A failed attempt and then a successful payment; the SUCCESS
    notification is sent first and the FAIL notification gap_s (real)
    seconds later, each on its own schedule.
POST /_sim/order      {"profile", "order_id", "amount", "currency"?}
                      -> {"order_id", "trade_state": "NOTPAY"}
POST /_sim/mode       {"query"?: "ok"|"down"|"hangup"|"garbage"|"slow",
                       "close"?: same, "notify"?: "ok"|"pause",
                       "slow_s"?: seconds (default 10)} -> the modes
    down: HTTP 503; hangup: the connection is closed without an answer;
    garbage: HTTP 200 with bytes that are not XML; slow: waits slow_s
    seconds, then answers normally.  notify pause: nothing is sent until
    notify is ok again; then the due sends go out and the schedule goes on
    from there.
POST /_sim/profile    one profile object as in sim.json: adds it, or
                      replaces the profile of that name (e.g. to set
                      notify_url once the merchant's port is known)
POST /_sim/reset      forgets ledger, deliveries and stats, cancels
                      pending notifications, sets every mode back to ok
GET  /_sim/ledger     {"orders": {order_id: {"trade_state", "txn_ids",
                       "amount", "closed", "currency", "profile"}}}
GET  /_sim/deliveries[?order_id=X][&txn_id=T]
                      [{"at", "txn_id", "order_id", "dropped", "status",
                        "body", "acked", "attempt", "copy", "result",
                        "request", "error"}, ...] in send order
    at: unix seconds (float) of the send; status: the merchant's HTTP
    status (null when dropped or no answer); body: the merchant's answer
    (text, null when none); acked: the answer acknowledged the
    notification; attempt: 1-based send number of that notification;
    copy: 0, or 1..N for duplicates; result: SUCCESS or FAIL (the
    notification's result_code); request: the notification body sent.
GET  /_sim/stats      {"total": {"query": n, "close": n},
                       "most_at_once": n,
                       "by_order": {order_id: {"query": n, "close": n}},
                       "notifications": {"sent": n, "dropped": n,
                       "acked": n}}
    most_at_once: the most query/close requests in the simulator at one
    time (a slow mode shows how many calls a sweeper makes together).
    Every request to the query/close API is counted, whatever the mode
    and whether or not its signature checks; the aggregator's list names
    no order, and counts by_order for the orders of the page it answers
    (none when it does not answer).

GET  /_sim/statement?profile=P&date=YYYY-MM-DD[&bom=1][&eol=lf]
                      the provider's statement of that (Beijing) day, as
    the provider would hand it over: for wechat (and wechat_v3) the
    trade bill of
    downloadbill (bill_type ALL, classic layout, doc/design/protocols.md §1.9), text
    with every field back-ticked, CRLF line ends (eol=lf: LF), a UTF-8
    BOM first when bom=1.  Rows: every successful payment whose time_end
    is on that day (a double payment is two rows; payments whose
    notifications were dropped are there like any other) and every
    refund made on that day (交易状态 REFUND, 总金额 0.00, the refund's
    amount, ids and status); then the summary (count, totals).
POST /_sim/alter      {"txn_id", "amount"?: fen, "omit"?: bool}
                      -> {"txn_id", "amount", "omit"}
    A discrepancy for reconciliation tests: the statement shows another
    amount for that payment, or (omit) leaves it out.  The ledger, the
    notifications and the query answers are not changed.
POST /_sim/refund_mode {"api"?: "ok"|"down"|"hangup"|"garbage"|"slow",
                       "error"?: an err_code or "", "status"?: "SUCCESS"|
                       "CHANGE"|"REFUNDCLOSE", "notify"?: "ok"|"drop",
                       "answer_delta"?: fen}
                      -> the refund modes
    api: as the query modes, for the refund API; error: every new refund
    is answered result_code FAIL with this err_code (signed) and nothing
    is refunded; status: the refund_status of refunds made from now on;
    notify drop: refund notifications are lost; answer_delta: the
    WeChat Pay v2 refund and refundquery answers report refund_fee this
    many fen off the refund's (signed; the refund and its notification
    keep theirs).  The notify pause of /_sim/mode holds refund
    notifications too.  /_sim/reset sets them back to ok, "", SUCCESS,
    ok, 0.
GET  /_sim/refunds    {"refunds": {out_refund_no: {"refund_id", "txn_id",
                       "order_id", "amount", "status", "success_time",
                       "calls"}}}
/_sim/stats also carries "refunds": {"calls": n, "made": n, "queries": n,
    "by_id": {out_refund_no: {"calls": n, "refunds": n, "queries": n}}}:
    every request to the refund API (whatever the mode), the refunds
    actually made per out_refund_no, which is never more than 1, and the
    refund queries answered (/pay/refundquery; the refund modes' api
    applies to them).
/_sim/stats also carries "bills": {"calls": n, "files": n}, every request
    to the bill APIs below, and those of them that fetched a WeChat Pay
    v3 bill file; they have no modes and always answer.
POST /_sim/bill_mode  {"file"?: "ok"|"tampered", "link"?: origin or ""}
                      -> the bill modes
    file tampered: the WeChat Pay v3 bill file served is not the one whose
    SHA1 the signed tradebill answer gives (its first row's amount a fen
    more, the totals adding up, as a file changed on its way).  link:
    the signed answer's download_url names this origin (e.g.
    "https://127.0.0.1:9") instead of the simulator's.  Each setting left
    out is set back (ok, ""); /_sim/reset sets both back.

Provider API (WeChat Pay v2):
POST /pay/orderquery, POST /pay/closeorder: XML in, XML out, every answer
signed with the profile's key (see WeChatV2).
POST /secapi/pay/refund: a refund of a payment (by transaction_id, else
the order's first payment), recorded under out_refund_no: the same
out_refund_no again never refunds twice, it is answered with the refund
already made.  Refunding more than what is left of the payment is
err_code ERROR.  Each refund made is notified (the refund result
notification, req_info encrypted with AES-256-ECB under md5(key), no
sign) to the profile's notify_url on the payment schedule.
POST /pay/refundquery by out_refund_no: that refund's state (fields
suffixed _0, refund_status_0 its status), signed; err_code REFUNDNOTEXIST
for a refund not made.  The simulator
speaks plain HTTP, so the client certificate WeChat requires here is not
checked.
POST /pay/downloadbill: the bill of bill_date (yyyyMMdd, bill_type ALL,
no tar_type) exactly as /_sim/statement gives it, as text/plain; a day
without a payment or a refund is <xml> return_code FAIL, return_msg "No
Bill Exist", error_code 20002; a bad signature, bill_date or bill_type
is return_code FAIL too.

Provider API (UnionPay, "provider": "unionpay"):
POST /gateway/api/queryTrans.do (no close: UnionPay has none).
WeChat Pay v3 ("wechat_v3"): GET /v3/pay/transactions/out-trade-no/{id}
?mchid=, GET /v3/pay/transactions/id/{transaction_id}?mchid=, POST
/v3/pay/transactions/out-trade-no/{id}/close, GET /v3/bill/tradebill
?bill_date=YYYY-MM-DD&bill_type=ALL (signed JSON: hash_type SHA1,
hash_value, download_url = this simulator's /v3/billdownload/file
?token=...; 400 NO_STATEMENT_EXIST for a day without a bill) and GET
/v3/billdownload/file?token= (the bill, unsigned, as WeChat's).
Aggregator, Ping++ style ("aggregator"): GET /v1/charges/{id} and
GET /v1/charges?app[id]=&limit=&paid=&created[gte]=&starting_after= (no
close).
Their profile fields (merchant ids; key material as PEM text or a file
path), notifications, acknowledgements, request checks and answers are
described in the classes UnionPay, WeChatV3 and Aggregator.  Their
schedules: WeChat v3 as v2 (16 sends); UnionPay 5 sends, 1, 2, 4 and 5
minutes apart, and the aggregator 8 sends, 2m, 10m, 10m, 1h, 2h, 6h and
15h apart: neither is confirmed (doc/design/protocols.md §8.1, §8.3), and a profile
of these three may give its own "retry_gaps": [seconds, ...].

Adding a provider: subclass Provider, give it a name, its retry gaps, how
to render and sign a notification (delivery_headers for headers signed
afresh at each send), how to recognise an acknowledgement and the API
routes it answers (api_routes and answer, or api_kind and api_answer for
paths with parameters and answers with headers); list it in PROVIDERS.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
import types
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

try:        # UnionPay, WeChat Pay v3 and RSA aggregator profiles need it
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    x509 = None

HOST = '127.0.0.1'
NOTIFY_TIMEOUT = 5          # seconds a merchant has to answer (WeChat: 5 s)
MAX_BODY = 1 << 20


class SimError(Exception):
    """A control request that cannot be done: HTTP status and text."""

    def __init__(self, status, text):
        Exception.__init__(self, text)
        self.status = status
        self.text = text


def beijing_now():
    return (datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(hours=8)).strftime('%Y%m%d%H%M%S')


# ---------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------

class Provider:
    """One provider protocol.  An instance serves one profile."""

    name = None
    # Seconds between sends after the first (the first is immediate).
    retry_gaps = ()
    # path -> method name, for the provider API this class answers.
    api_routes = {}

    def __init__(self, conf):
        self.conf = conf
        self.profile = conf['name']
        self.notify_url = conf.get('notify_url') or ''

    @classmethod
    def check(cls, conf):
        """Raises ValueError when a profile's configuration is unusable."""

    def new_txn_id(self):
        raise NotImplementedError

    def notification(self, order, payment, result):
        """(content type, body bytes) of the notification of payment."""
        raise NotImplementedError

    def is_ack(self, status, body):
        raise NotImplementedError

    def delivery_headers(self, body):
        """Headers of one send of a notification beyond its Content-Type,
        computed at each send (e.g. a signature over a fresh timestamp)."""
        return {}

    # -- the provider API: how the HTTP layer reaches a class --------------
    # The defaults serve WeChatV2-style classes: exact paths in api_routes,
    # order_of_request(body) and answer(sim, kind, method, body).
    api_content_type = 'text/xml'

    @classmethod
    def api_kind(cls, method, url):
        """'query', 'close', ... for a request to url (a urlsplit result)
        that this provider answers; None when it is not one of its."""
        return cls.api_routes.get(url.path)

    @classmethod
    def api_order(cls, kind, req):
        """The order a request (an ApiRequest) is about, for the stats."""
        return cls.order_of_request(req.body)

    @classmethod
    def order_of_request(cls, body):
        return ''

    @classmethod
    def api_answer(cls, sim, kind, req):
        """(HTTP status, content type, body bytes, {header: value})."""
        status, out = cls.answer(sim, kind, req.method, req.body)
        return status, cls.api_content_type, out, {}


class WeChatBill:
    """The trade bill of WeChat Pay, v2 and v3 alike (doc/design/protocols.md
    §1.9, §2.8): what /_sim/statement shows and the bill APIs hand over."""

    BILL_HEADER = ('交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,'
                   '商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,'
                   '总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,'
                   '退款金额,代金券或立减优惠退款金额,退款类型,退款状态,'
                   '商品名称,商户数据包,手续费,费率')
    BILL_SUMMARY = ('总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,'
                    '手续费总金额')

    @staticmethod
    def yuan(fen):
        return '%d.%02d' % (fen // 100, fen % 100)

    @classmethod
    def payment_row(cls, conf, when, txn_id, order_id, currency, fen):
        """The fields of one payment's row: when 'yyyy-MM-dd HH:mm:ss',
        conf the profile's (appid, mch_id)."""
        return [when, conf['appid'], conf['mch_id'], '0', '', txn_id,
                order_id, 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', 'JSAPI', 'SUCCESS',
                'CFT', currency, cls.yuan(fen), '0.00', '0', '0', '0.00',
                '0.00', '', '', '商品', '', '0.00', '0.60%']

    @classmethod
    def bill_text(cls, rows, eol='\r\n', bom=False):
        """The bill of rows (time, fields, amount paid, amount refunded):
        the header, a row each, the summary, every value back-ticked."""
        lines = [('\ufeff' if bom else '') + cls.BILL_HEADER]
        lines += [','.join('`' + v for v in r[1]) for r in rows]
        lines.append(cls.BILL_SUMMARY)
        lines.append(','.join('`' + v for v in (
            str(len(rows)), cls.yuan(sum(r[2] for r in rows)),
            cls.yuan(sum(r[3] for r in rows)), '0.00', '0.00')))
        return (eol.join(lines) + eol).encode('utf-8')

    def bill_rows(self, sim, day):
        """The rows of the ALL trade bill of day (yyyyMMdd, Beijing):
        (time, fields, amount paid, amount refunded), in time order."""
        rows = []
        dashed = '%s-%s-%s' % (day[:4], day[4:6], day[6:])
        with sim.lock:
            for o in sim.orders.values():
                if o['profile'] != self.profile:
                    continue
                for p in o['payments']:
                    if p['time_end'][:8] != day or p.get('omit'):
                        continue
                    t = p['time_end']
                    when = '%s-%s-%s %s:%s:%s' % (t[:4], t[4:6], t[6:8],
                                                  t[8:10], t[10:12], t[12:])
                    amount = p.get('statement_amount', p['amount'])
                    rows.append((when, self.payment_row(
                        self.conf, when, p['txn_id'], o['order_id'],
                        p['currency'], amount), amount, 0))
            for r in sim.refunds.values():
                if r['profile'] != self.profile or \
                        r['success_time'][:10] != dashed:
                    continue
                o = sim.orders[r['order_id']]
                rows.append((r['success_time'], [
                    r['success_time'], self.conf['appid'],
                    self.conf['mch_id'], '0', '', r['txn_id'], o['order_id'],
                    'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', 'JSAPI', 'REFUND', 'CFT',
                    o['currency'], '0.00', '0.00', r['refund_id'],
                    r['out_refund_no'], self.yuan(r['amount']), '0.00',
                    'ORIGINAL', r['status'], '商品', '', '0.00', '0.60%'],
                    0, r['amount']))
        rows.sort(key=lambda r: r[0])
        return rows

    def statement(self, sim, day, eol='\r\n', bom=False, rows=None):
        """The ALL trade bill of day (yyyyMMdd, Beijing) as text."""
        if rows is None:
            rows = self.bill_rows(sim, day)
        return self.bill_text(rows, eol, bom)


class WeChatV2(WeChatBill, Provider):
    """WeChat Pay API v2: XML, MD5 or HMAC-SHA256 (doc/design/protocols.md §1).

    Notifications carry sign_type only when it is HMAC-SHA256.  Query and
    close answers are signed with the algorithm of the request (its
    sign_type field, absent = MD5) and carry no sign_type, as WeChat's
    do.  A request whose signature does not check gets return_code
    SUCCESS, result_code FAIL, err_code SIGNERROR, signed with the
    algorithm the request names (or the profile's when it names none we
    know).
    """

    name = 'wechat'
    # 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h: 16 sends.
    retry_gaps = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600,
                  10800, 10800, 10800, 21600, 21600)
    api_routes = {'/pay/orderquery': 'query', '/pay/closeorder': 'close',
                  '/secapi/pay/refund': 'refund',
                  '/pay/refundquery': 'refundquery',
                  '/pay/downloadbill': 'bill'}
    SIGN_TYPES = ('MD5', 'HMAC-SHA256')

    @classmethod
    def check(cls, conf):
        for k in ('appid', 'mch_id', 'key'):
            if not isinstance(conf.get(k), str) or not conf[k]:
                raise ValueError('profile %s: %s is required'
                                 % (conf.get('name'), k))
        if len(conf['key']) != 32:
            raise ValueError('profile %s: the APIv2 key must be 32 '
                             'characters' % conf['name'])
        if conf.get('sign_type', 'MD5') not in cls.SIGN_TYPES:
            raise ValueError('profile %s: sign_type must be MD5 or '
                             'HMAC-SHA256' % conf['name'])

    @property
    def sign_type(self):
        return self.conf.get('sign_type', 'MD5')

    # -- the v2 signature ----------------------------------------------
    @staticmethod
    def sign(fields, key, sign_type):
        """Every non-empty field but sign, sorted by name (bytes), k=v
        joined by &, then &key=KEY; MD5 or HMAC-SHA256 keyed with KEY;
        upper-case hex."""
        items = sorted(((k, v) for k, v in fields
                        if k != 'sign' and v != ''),
                       key=lambda kv: kv[0].encode('utf-8'))
        text = '&'.join('%s=%s' % kv for kv in items) + '&key=' + key
        data = text.encode('utf-8')
        if sign_type == 'MD5':
            return hashlib.md5(data).hexdigest().upper()
        if sign_type == 'HMAC-SHA256':
            return hmac.new(key.encode('utf-8'), data,
                            hashlib.sha256).hexdigest().upper()
        raise ValueError('unknown sign_type %r' % sign_type)

    def signed(self, fields, sign_type=None):
        fields = [(k, str(v)) for k, v in fields]
        return fields + [('sign', self.sign(fields, self.conf['key'],
                                            sign_type or self.sign_type))]

    @staticmethod
    def render(fields):
        """<xml> with CDATA values; integers (total_fee, cash_fee) bare, as
        WeChat writes them."""
        out = ['<xml>']
        for k, v in fields:
            if k in ('total_fee', 'cash_fee') and v.isdigit():
                out.append('<%s>%s</%s>' % (k, v, k))
            else:
                out.append('<%s><![CDATA[%s]]></%s>'
                           % (k, v.replace(']]>', ']]]]><![CDATA[>'), k))
        out.append('</xml>')
        return ''.join(out).encode('utf-8')

    @staticmethod
    def parse(body):
        """Flat <xml> -> list of (name, value); ValueError when it is not
        one (DOCTYPE, nesting, repeated names, another root)."""
        if b'<!DOCTYPE' in body.upper() or b'<!ENTITY' in body.upper():
            raise ValueError('DOCTYPE or ENTITY')
        root = ET.fromstring(body)
        if root.tag != 'xml':
            raise ValueError('root is not xml')
        out, seen = [], set()
        for child in root:
            if len(child) or child.tag in seen:
                raise ValueError('nested or repeated field %s' % child.tag)
            seen.add(child.tag)
            out.append((child.tag, child.text or ''))
        return out

    def nonce(self):
        return os.urandom(16).hex()

    def new_txn_id(self):
        return '4200' + ''.join('%d' % (b % 10) for b in os.urandom(24))

    # -- notifications --------------------------------------------------
    def notification(self, order, payment, result):
        f = [('return_code', 'SUCCESS'),
             ('appid', self.conf['appid']),
             ('mch_id', self.conf['mch_id']),
             ('nonce_str', self.nonce())]
        if self.sign_type != 'MD5':
            f.append(('sign_type', self.sign_type))
        f.append(('result_code', result))
        if result != 'SUCCESS':
            f += [('err_code', 'BANKERROR'),
                  ('err_code_des', 'bank refused the payment')]
        f += [('openid', 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'),
              ('is_subscribe', 'N'),
              ('trade_type', 'JSAPI'),
              ('bank_type', 'CFT'),
              ('total_fee', payment['amount']),
              ('fee_type', payment['currency']),
              ('cash_fee', payment['amount']),
              ('transaction_id', payment['txn_id']),
              ('out_trade_no', order['order_id']),
              ('time_end', payment['time_end'])]
        return 'text/xml', self.render(self.signed(f))

    def is_ack(self, status, body):
        if status != 200 or not body:
            return False
        try:
            return dict(self.parse(body)).get('return_code') == 'SUCCESS'
        except (ValueError, ET.ParseError):
            return False

    # -- the query and close API -----------------------------------------
    @classmethod
    def order_of_request(cls, body):
        """The out_trade_no a request names, for the stats; '' if none."""
        try:
            return dict(cls.parse(body)).get('out_trade_no', '')
        except (ValueError, ET.ParseError):
            return ''

    @staticmethod
    def fail_xml(msg):
        return WeChatV2.render([('return_code', 'FAIL'),
                                ('return_msg', msg)])

    @classmethod
    def checked(cls, sim, method, body, bad_sign=None):
        """A v2 API request, checked as WeChat checks it: (refusal, call).
        refusal is the answer (HTTP status, body) to a request that is not
        a POST of flat XML naming a profile's appid and mch_id (an unsigned
        return_code FAIL), or to one whose signature does not check
        (bad_sign, by default result_code FAIL, err_code SIGNERROR); else
        None and call has prof, req (the fields), and reply(fields) and
        error(code, des), which answer with result_code SUCCESS or FAIL,
        signed with the algorithm the request names (the profile's when it
        names none we know)."""
        if method != 'POST':
            return (200, cls.fail_xml('REQUIRE_POST_METHOD')), None
        try:
            fields = cls.parse(body)
        except (ValueError, ET.ParseError):
            return (200, cls.fail_xml('XML_FORMAT_ERROR')), None
        req = dict(fields)
        prof = sim.find_profile(cls.name, appid=req.get('appid'),
                                mch_id=req.get('mch_id'))
        if prof is None:
            return (200, cls.fail_xml('appid and mch_id do not match')), None
        claimed = req.get('sign_type') or 'MD5'
        alg = claimed if claimed in cls.SIGN_TYPES else prof.sign_type
        head = [('return_code', 'SUCCESS'), ('return_msg', 'OK'),
                ('appid', prof.conf['appid']),
                ('mch_id', prof.conf['mch_id']),
                ('nonce_str', prof.nonce())]

        def reply(fields2):
            return 200, cls.render(prof.signed(head + fields2, alg))

        def error(code, des):
            return reply([('result_code', 'FAIL'), ('err_code', code),
                          ('err_code_des', des)])

        want = req.get('sign', '')
        good = (claimed in cls.SIGN_TYPES and want != '' and
                hmac.compare_digest(
                    cls.sign(fields, prof.conf['key'], claimed).encode(),
                    want.upper().encode()))
        if not good:
            return bad_sign or error('SIGNERROR', '签名错误'), None
        return None, types.SimpleNamespace(prof=prof, req=req, reply=reply,
                                           error=error)

    @classmethod
    def answer(cls, sim, kind, method, body):
        """Answers /pay/orderquery (kind 'query') or /pay/closeorder
        ('close'), and /secapi/pay/refund ('refund', answer_refund):
        (HTTP status, body bytes)."""
        if kind == 'refund':
            return cls.answer_refund(sim, method, body)
        if kind == 'refundquery':
            return cls.answer_refundquery(sim, method, body)
        if kind == 'bill':
            return cls.answer_bill(sim, method, body)
        refusal, call = cls.checked(sim, method, body)
        if refusal is not None:
            return refusal
        prof, req, reply, error = call.prof, call.req, call.reply, call.error
        order_id = req.get('out_trade_no', '')
        txn = req.get('transaction_id', '')
        if order_id == '' and txn == '':
            return error('PARAM_ERROR', 'out_trade_no is required')
        with sim.lock:
            order = sim.orders.get(order_id) if order_id else \
                sim.order_by_txn(txn)
            if order is not None and order['profile'] != prof.profile:
                order = None
            if order is None:
                return error('ORDERNOTEXIST', '此交易订单号不存在')
            if kind == 'close':
                if order['trade_state'] == 'SUCCESS':
                    return error('ORDERPAID', '订单已支付')
                if order['trade_state'] == 'CLOSED':
                    return error('ORDERCLOSED', '订单已关闭')
                order['trade_state'] = 'CLOSED'
                order['closed'] = True
                sim.log('close %s: closed' % order['order_id'])
                return reply([('result_code', 'SUCCESS'),
                              ('result_msg', 'OK')])
            return reply(cls.query_fields(order))

    @staticmethod
    def query_fields(order):
        state = order['trade_state']
        f = [('device_info', ''), ('result_code', 'SUCCESS')]
        if state == 'SUCCESS':
            # The order's payment: the first one (a second one is a
            # double payment the statement would show).
            p = order['payments'][0]
            return f + [('openid', 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'),
                        ('is_subscribe', 'N'),
                        ('trade_type', 'JSAPI'),
                        ('bank_type', 'CFT'),
                        ('total_fee', str(p['amount'])),
                        ('fee_type', p['currency']),
                        ('transaction_id', p['txn_id']),
                        ('out_trade_no', order['order_id']),
                        ('attach', ''),
                        ('time_end', p['time_end']),
                        ('trade_state', 'SUCCESS'),
                        ('trade_state_desc', '支付成功'),
                        ('cash_fee', str(p['amount']))]
        desc = {'NOTPAY': '订单未支付', 'CLOSED': '订单已关闭'}
        return f + [('total_fee', str(order['amount'])),
                    ('out_trade_no', order['order_id']),
                    ('trade_state', state),
                    ('trade_state_desc', desc.get(state, state))]

    # -- refunds (doc/design/protocols.md §1.8, §1.10) ---------------------------------------
    def new_refund_id(self):
        return '5000' + ''.join('%d' % (b % 10) for b in os.urandom(25))

    def req_info(self, plain):
        """base64(AES-256-ECB(PKCS#7(plain))) under the 32 ASCII bytes of
        lower-hex md5(APIv2 key)."""
        key = hashlib.md5(self.conf['key'].encode('utf-8')).hexdigest()
        try:
            from cryptography.hazmat.primitives.ciphers import (
                Cipher, algorithms, modes)
            pad = 16 - len(plain) % 16
            enc = Cipher(algorithms.AES(key.encode()), modes.ECB()).encryptor()
            ct = enc.update(plain + bytes([pad]) * pad) + enc.finalize()
        except ImportError:
            ct = subprocess.run(['openssl', 'enc', '-aes-256-ecb', '-K',
                                 key.encode().hex()], input=plain,
                                stdout=subprocess.PIPE, check=True).stdout
        return base64.b64encode(ct).decode('ascii')

    def refund_notification(self, order, refund):
        """The refund result notification: unsigned outer XML, the facts
        in req_info."""
        inner = [('out_refund_no', refund['out_refund_no']),
                 ('out_trade_no', order['order_id']),
                 ('refund_account', 'REFUND_SOURCE_RECHARGE_FUNDS'),
                 ('refund_fee', str(refund['amount'])),
                 ('refund_id', refund['refund_id']),
                 ('refund_recv_accout', '支付用户零钱'),
                 ('refund_request_source', 'API'),
                 ('refund_status', refund['status']),
                 ('settlement_refund_fee', str(refund['amount'])),
                 ('settlement_total_fee', str(refund['total_fee'])),
                 ('total_fee', str(refund['total_fee'])),
                 ('transaction_id', refund['txn_id'])]
        if refund['status'] == 'SUCCESS':
            inner.append(('success_time', refund['success_time']))
        plain = self.render(inner).replace(b'<xml>', b'<root>', 1)
        plain = plain[:-len(b'</xml>')] + b'</root>'
        f = [('return_code', 'SUCCESS'),
             ('appid', self.conf['appid']),
             ('mch_id', self.conf['mch_id']),
             ('nonce_str', self.nonce()),
             ('req_info', self.req_info(plain))]
        return 'text/xml', self.render(f)

    @classmethod
    def answer_refund(cls, sim, method, body):
        """Answers /secapi/pay/refund: (HTTP status, body bytes)."""
        refusal, call = cls.checked(sim, method, body)
        if refusal is not None:
            return refusal
        prof, req, reply, error = call.prof, call.req, call.reply, call.error
        no = req.get('out_refund_no', '')
        if not re.fullmatch(r'[0-9A-Za-z_|*@-]{1,64}', no):
            return error('PARAM_ERROR', 'out_refund_no')
        try:
            total, fee = int(req.get('total_fee', '')), \
                int(req.get('refund_fee', ''))
        except ValueError:
            return error('PARAM_ERROR', 'total_fee and refund_fee')
        txn, oid = req.get('transaction_id', ''), req.get('out_trade_no', '')
        with sim.lock:
            order = sim.order_by_txn(txn) if txn else sim.orders.get(oid)
            if order is None or order['profile'] != prof.profile or \
                    not order['payments']:
                return error('ORDERNOTEXIST', '订单不存在')
            pay = next((p for p in order['payments'] if p['txn_id'] == txn),
                       order['payments'][0])
            old = sim.refunds.get(no)
            if old is not None:
                # The same out_refund_no: the refund already made, never a
                # second one.
                old['calls'] += 1
                sim.refund_stats['by_id'][no]['calls'] += 1
                if old['txn_id'] != pay['txn_id'] or old['amount'] != fee:
                    return error('INVALID_REQUEST',
                                 '同一退款单号参数不一致')
                sim.log('refund %s again: already made (%s)'
                        % (no, old['refund_id']))
                refund = old
            else:
                sim.refund_stats['by_id'].setdefault(
                    no, {'calls': 0, 'refunds': 0, 'queries': 0})['calls'] += 1
                if sim.refund_modes['error']:
                    return error(sim.refund_modes['error'],
                                 'refused by the simulator')
                if total != pay['amount']:
                    return error('PARAM_ERROR', '订单金额不一致')
                # A refund that failed (CHANGE, REFUNDCLOSE) gave nothing
                # back: its amount may be refunded again.
                done = sum(r['amount'] for r in sim.refunds.values()
                           if r['txn_id'] == pay['txn_id'] and
                           r['status'] not in ('CHANGE', 'REFUNDCLOSE'))
                if fee <= 0 or fee > pay['amount'] - done:
                    return error('ERROR', '累计退款金额大于支付金额')
                refund = {'out_refund_no': no,
                          'refund_id': prof.new_refund_id(),
                          'txn_id': pay['txn_id'],
                          'order_id': order['order_id'],
                          'profile': prof.profile, 'amount': fee,
                          'total_fee': pay['amount'],
                          'status': sim.refund_modes['status'],
                          'success_time': datetime.datetime.now(
                              datetime.timezone(datetime.timedelta(hours=8)))
                          .strftime('%Y-%m-%d %H:%M:%S'),
                          'calls': 1}
                sim.refunds[no] = refund
                sim.refund_stats['made'] += 1
                sim.refund_stats['by_id'][no]['refunds'] += 1
                sim.log('refund %s of txn %s: %d fen, %s (%s)'
                        % (no, pay['txn_id'], fee, refund['status'],
                           refund['refund_id']))
                sim.notify_refund(prof, order, pay, refund)
            return reply([('result_code', 'SUCCESS'),
                          ('transaction_id', refund['txn_id']),
                          ('out_trade_no', order['order_id']),
                          ('out_refund_no', no),
                          ('refund_id', refund['refund_id']),
                          ('refund_channel', ''),
                          ('refund_fee', str(refund['amount'] +
                                             sim.refund_modes['answer_delta'])),
                          ('coupon_refund_fee', '0'),
                          ('total_fee', str(refund['total_fee'])),
                          ('cash_fee', str(refund['total_fee'])),
                          ('coupon_refund_count', '0'),
                          ('cash_refund_fee', str(refund['amount']))])

    @classmethod
    def answer_refundquery(cls, sim, method, body):
        """Answers /pay/refundquery by out_refund_no (the one way payhook
        asks): the refund's state as WeChat lists it, fields suffixed _0;
        err_code REFUNDNOTEXIST for a refund never made."""
        refusal, call = cls.checked(sim, method, body)
        if refusal is not None:
            return refusal
        no = call.req.get('out_refund_no', '')
        if not no:
            return call.error('PARAM_ERROR', 'out_refund_no')
        with sim.lock:
            sim.refund_stats['queries'] += 1
            refund = sim.refunds.get(no)
            if no in sim.refund_stats['by_id']:
                sim.refund_stats['by_id'][no]['queries'] += 1
            if refund is None or refund['profile'] != call.prof.profile:
                return call.error('REFUNDNOTEXIST', '退款订单查询失败')
            fields = [('result_code', 'SUCCESS'),
                      ('transaction_id', refund['txn_id']),
                      ('out_trade_no', refund['order_id']),
                      ('total_fee', str(refund['total_fee'])),
                      ('cash_fee', str(refund['total_fee'])),
                      ('refund_count', '1'),
                      ('out_refund_no_0', no),
                      ('refund_id_0', refund['refund_id']),
                      ('refund_channel_0', 'ORIGINAL'),
                      ('refund_fee_0', str(refund['amount'] +
                                           sim.refund_modes['answer_delta'])),
                      ('refund_status_0', refund['status']),
                      ('refund_account_0', 'REFUND_SOURCE_RECHARGE_FUNDS'),
                      ('refund_recv_accout_0', '支付用户零钱')]
            if refund['status'] == 'SUCCESS':
                fields.append(('refund_success_time_0',
                               refund['success_time']))
        return call.reply(fields)

    # -- the trade bill (downloadbill, doc/design/protocols.md §1.9) --------
    @classmethod
    def answer_bill(cls, sim, method, body):
        """Answers /pay/downloadbill: the bill of bill_date as text (bill
        type ALL, no tar_type), or return_code FAIL: "No Bill Exist"
        (error_code 20002) for a day without a payment or a refund, a
        bad signature, bill_date or bill_type."""
        refusal, call = cls.checked(
            sim, method, body, bad_sign=(200, cls.fail_xml('SIGN ERROR')))
        if refusal is not None:
            return refusal
        day = call.req.get('bill_date', '')
        if not re.fullmatch(r'\d{8}', day):
            return 200, cls.fail_xml('invalid bill_date')
        if call.req.get('bill_type', 'ALL') != 'ALL':
            return 200, cls.fail_xml('invalid bill_type')
        if call.req.get('tar_type'):
            return 200, cls.fail_xml('tar_type: the simulator writes no '
                                     'GZIP')
        rows = call.prof.bill_rows(sim, day)
        if not rows:
            return 200, cls.render([('return_code', 'FAIL'),
                                    ('return_msg', 'No Bill Exist'),
                                    ('error_code', '20002')])
        return 200, call.prof.statement(sim, day, rows=rows)

    @classmethod
    def api_answer(cls, sim, kind, req):
        status, ctype, out, headers = super().api_answer(sim, kind, req)
        if kind == 'bill' and not out.startswith(b'<xml>'):
            ctype = 'text/plain; charset=utf-8'
        return status, ctype, out, headers


# ---------------------------------------------------------------------------
# Providers that sign with RSA (and encrypt with AES): python3-cryptography
# ---------------------------------------------------------------------------

BEIJING = datetime.timezone(datetime.timedelta(hours=8))


def _json_bytes(obj):
    return json.dumps(obj, ensure_ascii=False,
                      separators=(',', ':')).encode('utf-8')


def _beijing_epoch(stamp):
    """yyyyMMddHHmmss, Beijing time -> unix seconds; None if it is not
    one (such a value is passed on as given, for tests of refusals)."""
    try:
        return int(datetime.datetime.strptime(stamp, '%Y%m%d%H%M%S')
                   .replace(tzinfo=BEIJING).timestamp())
    except (TypeError, ValueError):
        return None


def _rfc3339(stamp):
    """yyyyMMddHHmmss, Beijing -> 2018-06-08T10:34:56+08:00 (as given
    when it is not one)."""
    t = _beijing_epoch(stamp)
    if t is None:
        return stamp
    return datetime.datetime.fromtimestamp(t, BEIJING).isoformat()


def _alnum(n):
    chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
    return ''.join(chars[b % 62] for b in os.urandom(n))


def _digits(n, seed=None):
    """n digits: random, or derived from seed (the same seed, the same
    digits)."""
    src = os.urandom(n) if seed is None else hashlib.sha256(
        seed.encode('utf-8')).digest() * (n // 32 + 1)
    return ''.join('%d' % (b % 10) for b in src[:n])


class KeyedProvider(Provider):
    """What the providers below share.  Key material is given in the
    profile as PEM text or as the path of a PEM file (absolute, or
    relative to the simulator's working directory).  Where the provider's
    retry schedule is not confirmed, a profile may replace it:
    "retry_gaps": [seconds between sends, ...]."""

    required = ()

    def __init__(self, conf):
        Provider.__init__(self, conf)
        self.keys = self.load(conf)
        if conf.get('retry_gaps') is not None:
            self.retry_gaps = tuple(conf['retry_gaps'])

    @classmethod
    def needs_crypto(cls, conf):
        return True

    @classmethod
    def check(cls, conf):
        name = conf.get('name')
        if cls.needs_crypto(conf) and x509 is None:
            raise ValueError('profile %s: provider %s needs the python3 '
                             'cryptography package' % (name, cls.name))
        for k in cls.required:
            if not isinstance(conf.get(k), str) or not conf[k]:
                raise ValueError('profile %s: %s is required' % (name, k))
        gaps = conf.get('retry_gaps')
        if gaps is not None and not (
                isinstance(gaps, list) and
                all(isinstance(g, (int, float)) and not isinstance(g, bool)
                    and g >= 0 for g in gaps)):
            raise ValueError('profile %s: retry_gaps: a list of '
                             'non-negative seconds' % name)
        cls.load(conf)

    @classmethod
    def load(cls, conf):
        """The profile's keys, loaded; ValueError when one is unusable."""
        return {}

    @staticmethod
    def pem(conf, key):
        v = conf.get(key)
        if not isinstance(v, str) or not v:
            raise ValueError('profile %s: %s is required'
                             % (conf.get('name'), key))
        if v.lstrip().startswith('-----BEGIN'):
            return v.encode('ascii')
        try:
            with open(v, 'rb') as fh:
                return fh.read()
        except OSError as exc:
            raise ValueError('profile %s: %s: %s' % (conf.get('name'), key,
                                                     exc))

    @classmethod
    def loaded(cls, conf, key, load, what):
        """load(the PEM of key); ValueError saying it is not `what` when
        load fails."""
        data = cls.pem(conf, key)
        try:
            return load(data)
        except Exception as exc:
            raise ValueError('profile %s: %s: not %s (%s)'
                             % (conf.get('name'), key, what, exc))

    @classmethod
    def private_key(cls, conf, key):
        return cls.loaded(conf, key, lambda data: serialization
                          .load_pem_private_key(data, None),
                          'an unencrypted PEM private key')

    @classmethod
    def certificate(cls, conf, key):
        return cls.loaded(conf, key, x509.load_pem_x509_certificate,
                          'a PEM certificate')

    @classmethod
    def public_key(cls, conf, key):
        """A PUBLIC KEY, or the key of a CERTIFICATE."""
        if b'CERTIFICATE' in cls.pem(conf, key):
            return cls.certificate(conf, key).public_key()
        return cls.loaded(conf, key, serialization.load_pem_public_key,
                          'a PEM public key')

    @staticmethod
    def rsa_sign(key, data, alg=None):
        return key.sign(data, padding.PKCS1v15(), alg or hashes.SHA256())

    @staticmethod
    def rsa_ok(pub, sig, data, alg=None):
        try:
            pub.verify(sig, data, padding.PKCS1v15(), alg or hashes.SHA256())
            return True
        except (InvalidSignature, ValueError, TypeError):
            return False


class UnionPay(KeyedProvider):
    """China UnionPay online gateway, ACP (doc/design/protocols.md §3).

    Profile: "mer_id"; "sign_key" and "sign_cert", UnionPay's signing key
    and its certificate (for payhook to accept it, issued under the root
    and intermediate payhook is configured with, CN x@y@<signer_cn>@z);
    "merchant_cert" (or "merchant_public_key"), what verifies the
    merchant's query requests; optional "version" ("5.1.0", or "5.0.0":
    certId instead of signPubKeyCert, SHA-1), "encoding" ("UTF-8" or
    "GBK"), "reply_syntax" ("raw": query answers as UnionPay's SDKs read
    them, k=v& with values not escaped, Content-Type text/html; "form":
    percent-encoded, application/x-www-form-urlencoded), "retry_gaps".

    Every message is signed as ACP signs: the fields but signature,
    sorted by name, k=v joined by &, over the bytes in the message's
    encoding; SHA-256 (5.1.0) or SHA-1 (5.0.0) of that, as lowercase hex
    text, signed with RSA PKCS#1 v1.5 (SHA256withRSA, SHA1withRSA).
    Notifications are forms (txnType 01, respCode 00, or 60 for a failed
    payment), acknowledged by HTTP 200 whatever the body.

    queryTrans.do: the request's signature is checked over its non-empty
    fields (the SDK signs requests after dropping blank values) with the
    merchant's key, and certId must be the serial of merchant_cert when
    one is configured: otherwise respCode 11.  A request without orderId
    or txnTime, or of another txnType, gets 10.  The order is UnionPay's
    order key (orderId, txnTime): an order with payments is found only
    with the txnTime of one of them (a payment's time_end), an order
    registered unpaid with any.  Answers, signed: paid 00 with
    origRespCode 00 and the payment (queryId, txnAmt, ...); known but
    unpaid 00 with origRespCode 05 (processing); unknown 34.  A request
    naming no configured merId gets HTTP 400 text.  UnionPay has no close
    API.
    """

    name = 'unionpay'
    # Unconfirmed (doc/design/protocols.md §3.4 and §8.1): "up to 5 sends", the gaps
    # quoted as "0,1,2,4 min" in one copy and "1,2,4,5 min" in another.
    # Chosen: the first send at once, then 1, 2, 4 and 5 minutes later (5
    # sends over 12 minutes).  A profile may give its own retry_gaps.
    retry_gaps = (60, 120, 240, 300)
    api_routes = {'/gateway/api/queryTrans.do': 'query'}
    api_content_type = 'text/html;charset=UTF-8'
    required = ('mer_id',)
    CURRENCIES = {'CNY': '156', 'HKD': '344', 'USD': '840', 'EUR': '978',
                  'JPY': '392', 'GBP': '826'}

    @classmethod
    def load(cls, conf):
        name = conf.get('name')
        if conf.get('version', '5.1.0') not in ('5.1.0', '5.0.0'):
            raise ValueError('profile %s: version must be 5.1.0 or 5.0.0'
                             % name)
        if str(conf.get('encoding', 'UTF-8')).upper() not in ('UTF-8',
                                                               'GBK'):
            raise ValueError('profile %s: encoding must be UTF-8 or GBK'
                             % name)
        if conf.get('reply_syntax', 'raw') not in ('raw', 'form'):
            raise ValueError('profile %s: reply_syntax must be raw or form'
                             % name)
        keys = {'sign_key': cls.private_key(conf, 'sign_key')}
        cert = cls.certificate(conf, 'sign_cert')
        if cert.public_key().public_numbers() != \
                keys['sign_key'].public_key().public_numbers():
            raise ValueError('profile %s: sign_cert is not the certificate '
                             'of sign_key' % name)
        keys['sign_cert'] = cert.public_bytes(
            serialization.Encoding.PEM).decode('ascii')
        keys['cert_id'] = str(cert.serial_number)
        keys['merchant_key'] = keys['merchant_cert_id'] = None
        if conf.get('merchant_cert'):
            mc = cls.certificate(conf, 'merchant_cert')
            keys['merchant_key'] = mc.public_key()
            keys['merchant_cert_id'] = str(mc.serial_number)
        elif conf.get('merchant_public_key'):
            keys['merchant_key'] = cls.public_key(conf,
                                                  'merchant_public_key')
        return keys

    @property
    def version(self):
        return self.conf.get('version', '5.1.0')

    @property
    def encoding(self):
        return str(self.conf.get('encoding', 'UTF-8')).upper()

    def new_txn_id(self):
        # queryId: 21 digits.
        return beijing_now()[4:] + _digits(11)

    # -- the ACP signature ------------------------------------------------
    @staticmethod
    def sign_string(fields, skip_empty=False):
        """fields: (bytes name, bytes value) pairs -> the canonical bytes:
        all but signature (and the empty ones, skip_empty), sorted by
        name, k=v joined by &."""
        items = sorted((k, v) for k, v in fields
                       if k != b'signature' and not (skip_empty and v == b''))
        return b'&'.join(k + b'=' + v for k, v in items)

    @staticmethod
    def digest_alg(version):
        if version == '5.0.0':
            return hashlib.sha1, hashes.SHA1()
        return hashlib.sha256, hashes.SHA256()

    def signed(self, fields):
        """(name, text) pairs -> (bytes, bytes) pairs in the profile's
        encoding, with signPubKeyCert (5.1.0) or certId (5.0.0) and
        signature."""
        codec = 'gbk' if self.encoding == 'GBK' else 'utf-8'
        out = [(k.encode('ascii'), v.encode(codec)) for k, v in fields]
        if self.version == '5.1.0':
            out.append((b'signPubKeyCert',
                        self.keys['sign_cert'].encode('ascii')))
        else:
            out.append((b'certId', self.keys['cert_id'].encode('ascii')))
        digest, alg = self.digest_alg(self.version)
        hexd = digest(self.sign_string(out)).hexdigest().encode('ascii')
        sig = self.rsa_sign(self.keys['sign_key'], hexd, alg)
        return out + [(b'signature', base64.b64encode(sig))]

    @staticmethod
    def form(fields):
        return '&'.join('%s=%s' % (urllib.parse.quote_plus(k, safe=''),
                                   urllib.parse.quote_plus(v, safe=''))
                        for k, v in fields).encode('ascii')

    @staticmethod
    def parse_form(body):
        """A form -> (bytes, bytes) pairs, strictly: ValueError on an
        empty pair, a pair without '=', an empty or repeated name."""
        if not body:
            raise ValueError('empty body')
        out, seen = [], set()
        for pair in body.split(b'&'):
            if b'=' not in pair:
                raise ValueError('a field without "="')
            k, v = (urllib.parse.unquote_to_bytes(x.replace(b'+', b' '))
                    for x in pair.split(b'=', 1))
            if not k or k in seen:
                raise ValueError('an empty or repeated field name')
            seen.add(k)
            out.append((k, v))
        return out

    def payment_fields(self, p):
        amount = str(p['amount'])
        cur = self.CURRENCIES.get(p['currency'], p['currency'])
        now = beijing_now()
        return [('queryId', p['txn_id']), ('txnAmt', amount),
                ('currencyCode', cur), ('traceNo', p['txn_id'][-6:]),
                ('traceTime', now[4:]), ('settleAmt', amount),
                ('settleCurrencyCode', cur), ('settleDate', now[4:8])]

    # -- notifications ------------------------------------------------------
    def notification(self, order, payment, result):
        ok = result == 'SUCCESS'
        f = [('version', self.version), ('encoding', self.encoding),
             ('signMethod', '01'), ('txnType', '01'), ('txnSubType', '01'),
             ('bizType', '000201'), ('accessType', '0'),
             ('merId', self.conf['mer_id']), ('orderId', order['order_id']),
             ('txnTime', payment['time_end'])]
        f += self.payment_fields(payment)
        if ok:
            f += [('respCode', '00'), ('respMsg', '成功[0000000]')]
        else:
            f = [kv for kv in f if not kv[0].startswith('settle')]
            f += [('respCode', '60'), ('respMsg', '交易失败')]
        return ('application/x-www-form-urlencoded;charset=' + self.encoding,
                self.form(self.signed(f)))

    def is_ack(self, status, body):
        return status == 200

    # -- queryTrans.do ------------------------------------------------------
    @classmethod
    def api_order(cls, kind, req):
        try:
            oid = dict(cls.parse_form(req.body)).get(b'orderId', b'')
        except ValueError:
            return ''
        return oid.decode('utf-8', 'replace')

    @classmethod
    def api_answer(cls, sim, kind, req):
        if req.method != 'POST':
            return 405, 'text/plain', b'POST only\n', {'Allow': 'POST'}
        try:
            fields = cls.parse_form(req.body)
        except ValueError as exc:
            return 400, 'text/plain', ('%s\n' % exc).encode(), {}
        mer = dict(fields).get(b'merId', b'').decode('utf-8', 'replace')
        prof = sim.find_profile(cls.name, mer_id=mer)
        if prof is None:
            return 400, 'text/plain', b'no merchant with this merId\n', {}
        return prof.query(sim, fields)

    def request_error(self, fields):
        """(respCode, respMsg) when a query request is not acceptable."""
        f = dict(fields)
        version = f.get(b'version', b'').decode('ascii', 'replace')
        if version not in ('5.1.0', '5.0.0') or \
                f.get(b'signMethod') != b'01':
            return '10', '报文格式错误 (version or signMethod)'
        key, cert_id = self.keys['merchant_key'], \
            self.keys['merchant_cert_id']
        if key is None:
            return '11', '验证签名失败 (no merchant key configured)'
        if cert_id is not None and f.get(b'certId', b'').decode(
                'ascii', 'replace') != cert_id:
            return '11', '验证签名失败 (certId)'
        try:
            sig = base64.b64decode(f.get(b'signature', b''), validate=True)
        except ValueError:
            sig = b''
        digest, alg = self.digest_alg(version)
        hexd = digest(self.sign_string(fields, skip_empty=True)) \
            .hexdigest().encode('ascii')
        if not sig or not self.rsa_ok(key, sig, hexd, alg):
            return '11', '验证签名失败'
        if f.get(b'txnType') != b'00' or not f.get(b'orderId') or \
                not f.get(b'txnTime'):
            return '10', '报文格式错误 (txnType 00, orderId, txnTime)'
        return None

    def query(self, sim, fields):
        f = dict(fields)
        enc = f.get(b'encoding', b'UTF-8').decode('ascii', 'replace')
        codec = 'gbk' if enc.upper() == 'GBK' else 'utf-8'

        def val(name):
            return f.get(name.encode(), b'').decode(codec, 'replace')

        oid, txn_time = val('orderId'), val('txnTime')
        head = [('version', self.version), ('encoding', self.encoding),
                ('signMethod', '01'), ('txnType', '00'),
                ('txnSubType', '00'), ('bizType', val('bizType') or '000000'),
                ('accessType', '0'), ('merId', self.conf['mer_id']),
                ('orderId', oid), ('txnTime', txn_time)]

        def reply(code, msg, more=()):
            out = self.signed(head + [('respCode', code), ('respMsg', msg)] +
                              list(more))
            if self.conf.get('reply_syntax', 'raw') == 'form':
                return (200, 'application/x-www-form-urlencoded;charset=' +
                        self.encoding, self.form(out), {})
            return (200, 'text/html;charset=' + self.encoding,
                    b'&'.join(k + b'=' + v for k, v in out), {})

        bad = self.request_error(fields)
        if bad is not None:
            return reply(*bad)
        with sim.lock:
            order = sim.orders.get(oid)
            if order is not None and order['profile'] != self.profile:
                order = None
            pays = order['payments'] if order is not None else []
            match = [p for p in pays if p['time_end'] == txn_time]
            if order is None or (pays and not match):
                return reply('34', '无此交易')
            if order['trade_state'] != 'SUCCESS':
                return reply('00', '成功[0000000]',
                             [('origRespCode', '05'),
                              ('origRespMsg', '交易处理中')])
            return reply('00', '成功[0000000]',
                         [('origRespCode', '00'),
                          ('origRespMsg', '成功[0000000]')] +
                         self.payment_fields(match[0]))


class WeChatV3(WeChatBill, KeyedProvider):
    """WeChat Pay API v3 (doc/design/protocols.md §2); the profile's
    "provider" is "wechat_v3" (payhook: plugin wechat, api_version 3).

    Profile: "appid", "mch_id", "apiv3_key" (the 32-byte APIv3 key);
    "platform_key", the private key that signs as WeChat Pay, and
    "platform_serial", what Wechatpay-Serial says (a platform certificate
    serial in upper-case hex, or PUB_KEY_ID_...); "merchant_public_key"
    (a PUBLIC KEY or the merchant's API CERTIFICATE), what verifies the
    merchant's requests, and optional "merchant_serial", the serial_no
    they must name.

    Notifications: JSON, the transaction (trade_state SUCCESS, or
    PAYERROR for a failed payment) encrypted with AEAD_AES_256_GCM under
    the APIv3 key (12-character nonce, associated_data "transaction"),
    the same notification id and body at every send, Wechatpay-* headers
    signed afresh at each send (RSA-SHA256 over timestamp\\nnonce\\nbody\\n).
    Acknowledged by HTTP 200 or 204.

    API: GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=,
    GET /v3/pay/transactions/id/{transaction_id}?mchid= (query) and
    POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close with
    {"mchid"} (close).  The Authorization (WECHATPAY2-SHA256-RSA2048 with
    mchid, nonce_str, signature, timestamp, serial_no) must verify over
    METHOD\\npath?query as sent\\ntimestamp\\nnonce\\nbody\\n with the
    merchant key, its timestamp within 5 minutes: otherwise 401
    SIGN_ERROR.  mchid of the query string or close body must be the
    Authorization's (400 PARAM_ERROR).  Every answer is signed with the
    platform key, errors too.  Query: 200 with the transaction (SUCCESS
    with the first payment, or NOTPAY/CLOSED with the order's amount),
    404 ORDER_NOT_EXIST.  Close: 204; a paid order 400 ORDERPAID, a
    closed one 400 ORDERCLOSED (v3 codes for these two are unconfirmed;
    the v2 ones are used), unknown 404 ORDER_NOT_EXIST.  Bills: see
    answer_bill; the Authorization of the file's GET is checked over its
    path and query too.  A request whose Authorization names no
    configured mchid gets an unsigned 401.
    """

    name = 'wechat_v3'
    # 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (doc/design/protocols.md §2.5), as v2: 16 sends.
    retry_gaps = WeChatV2.retry_gaps
    api_content_type = 'application/json'
    required = ('appid', 'mch_id', 'apiv3_key', 'platform_serial')
    SCHEME = 'WECHATPAY2-SHA256-RSA2048'
    QUERY_RE = re.compile(r'\A/v3/pay/transactions/(out-trade-no|id)/'
                          r'([^/]+)\Z')
    CLOSE_RE = re.compile(r'\A/v3/pay/transactions/out-trade-no/([^/]+)'
                          r'/close\Z')
    BILL_ROUTES = {'/v3/bill/tradebill': 'bill',
                   '/v3/billdownload/file': 'billfile'}
    TOLERANCE = 300
    STATE_DESC = {'SUCCESS': '支付成功', 'NOTPAY': '订单未支付',
                  'CLOSED': '已关闭', 'PAYERROR': '支付失败'}

    @classmethod
    def load(cls, conf):
        if len(conf['apiv3_key'].encode('utf-8')) != 32:
            raise ValueError('profile %s: apiv3_key must be 32 bytes'
                             % conf['name'])
        keys = {'platform_key': cls.private_key(conf, 'platform_key'),
                'merchant_key': None}
        if conf.get('merchant_public_key'):
            keys['merchant_key'] = cls.public_key(conf,
                                                  'merchant_public_key')
        return keys

    def new_txn_id(self):
        return '4200' + _digits(24)

    def sign_headers(self, body):
        ts = str(int(time.time()))
        nonce = os.urandom(16).hex().upper()
        msg = ts.encode() + b'\n' + nonce.encode() + b'\n' + body + b'\n'
        sig = self.rsa_sign(self.keys['platform_key'], msg)
        return {'Wechatpay-Timestamp': ts, 'Wechatpay-Nonce': nonce,
                'Wechatpay-Signature': base64.b64encode(sig).decode('ascii'),
                'Wechatpay-Serial': self.conf['platform_serial'],
                'Wechatpay-Signature-Type': self.SCHEME}

    def transaction(self, order, payment, state):
        t = {'appid': self.conf['appid'], 'mchid': self.conf['mch_id'],
             'out_trade_no': order['order_id']}
        if payment is None:
            t.update({'trade_state': state,
                      'trade_state_desc': self.STATE_DESC.get(state, state),
                      'amount': {'total': order['amount'],
                                 'currency': order['currency'],
                                 'payer_currency': order['currency']}})
            return t
        t.update({'transaction_id': payment['txn_id'], 'trade_type': 'JSAPI',
                  'trade_state': state,
                  'trade_state_desc': self.STATE_DESC.get(state, state),
                  'bank_type': 'OTHERS', 'attach': ''})
        if state == 'SUCCESS':
            t['success_time'] = _rfc3339(payment['time_end'])
        t['payer'] = {'openid': 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'}
        t['amount'] = {'total': payment['amount'],
                       'payer_total': payment['amount'],
                       'currency': payment['currency'],
                       'payer_currency': payment['currency']}
        return t

    # -- notifications ------------------------------------------------------
    def notification(self, order, payment, result):
        ok = result == 'SUCCESS'
        plain = _json_bytes(self.transaction(order, payment,
                                             'SUCCESS' if ok else 'PAYERROR'))
        nonce, aad = _alnum(12), 'transaction'
        ct = AESGCM(self.conf['apiv3_key'].encode('utf-8')).encrypt(
            nonce.encode('ascii'), plain, aad.encode('ascii'))
        env = {'id': str(uuid.uuid4()),
               'create_time': datetime.datetime.now(BEIJING).isoformat(
                   timespec='seconds'),
               'resource_type': 'encrypt-resource',
               'event_type': 'TRANSACTION.SUCCESS' if ok else
               'TRANSACTION.FAIL',
               'summary': '支付成功' if ok else '支付失败',
               'resource': {'original_type': 'transaction',
                            'algorithm': 'AEAD_AES_256_GCM',
                            'ciphertext': base64.b64encode(ct).decode(),
                            'associated_data': aad, 'nonce': nonce}}
        return 'application/json', _json_bytes(env)

    def delivery_headers(self, body):
        return self.sign_headers(body)

    def is_ack(self, status, body):
        return status in (200, 204)

    # -- the API ------------------------------------------------------------
    @classmethod
    def api_kind(cls, method, url):
        if url.path in cls.BILL_ROUTES:
            return cls.BILL_ROUTES[url.path]
        if cls.CLOSE_RE.match(url.path):
            return 'close'
        if cls.QUERY_RE.match(url.path):
            return 'query'
        return None

    @classmethod
    def api_order(cls, kind, req):
        m = cls.CLOSE_RE.match(req.url.path)
        if m:
            return urllib.parse.unquote(m.group(1))
        m = cls.QUERY_RE.match(req.url.path)
        if m and m.group(1) == 'out-trade-no':
            return urllib.parse.unquote(m.group(2))
        return ''

    @classmethod
    def authorization(cls, value):
        """The items of an Authorization header, or None."""
        if not value or not value.startswith(cls.SCHEME + ' '):
            return None
        items = {}
        for part in value[len(cls.SCHEME) + 1:].split(','):
            m = re.match(r'\A\s*([a-z_]+)="([^"]*)"\s*\Z', part)
            if not m or m.group(1) in items:
                return None
            items[m.group(1)] = m.group(2)
        if set(items) != {'mchid', 'nonce_str', 'signature', 'timestamp',
                          'serial_no'}:
            return None
        return items

    @classmethod
    def api_answer(cls, sim, kind, req):
        auth = cls.authorization(req.headers.get('Authorization'))
        prof = sim.find_profile(cls.name, mch_id=auth['mchid']) \
            if auth else None
        if prof is None:
            return (401, 'application/json', _json_bytes(
                {'code': 'SIGN_ERROR', 'message': 'Authorization missing, '
                 'malformed or of an unknown mchid'}), {})
        return prof.answer_request(sim, kind, req, auth)

    def reply(self, status, obj=None):
        body = _json_bytes(obj) if obj is not None else b''
        return status, 'application/json', body, self.sign_headers(body)

    def error(self, status, code, message):
        return self.reply(status, {'code': code, 'message': message})

    def answer_request(self, sim, kind, req, auth):
        if req.method != ('POST' if kind == 'close' else 'GET'):
            return self.error(405, 'METHOD_NOT_ALLOWED', 'method not allowed')
        key = self.keys['merchant_key']
        msg = ('%s\n%s\n%s\n%s\n' % (req.method, req.target,
                                     auth['timestamp'], auth['nonce_str'])
               ).encode('utf-8') + req.body + b'\n'
        try:
            sig = base64.b64decode(auth['signature'], validate=True)
        except ValueError:
            sig = b''
        ts = auth['timestamp']
        if not (ts.isdigit() and abs(int(ts) - time.time()) <=
                self.TOLERANCE):
            return self.error(401, 'SIGN_ERROR', 'Authorization timestamp '
                              'is more than 5 minutes off')
        if self.conf.get('merchant_serial') and \
                auth['serial_no'] != self.conf['merchant_serial']:
            return self.error(401, 'SIGN_ERROR', 'serial_no is not the '
                              "merchant's certificate")
        if key is None or not sig or not self.rsa_ok(key, sig, msg):
            return self.error(401, 'SIGN_ERROR', '签名错误')
        if kind in self.BILL_ROUTES.values():
            return self.answer_bill(sim, kind, req)
        if kind == 'close':
            m = self.CLOSE_RE.match(req.url.path)
            by, ident = 'out-trade-no', urllib.parse.unquote(m.group(1))
            try:
                mchid = json.loads(req.body.decode('utf-8')).get('mchid')
            except (ValueError, UnicodeDecodeError, AttributeError):
                mchid = None
        else:
            m = self.QUERY_RE.match(req.url.path)
            by, ident = m.group(1), urllib.parse.unquote(m.group(2))
            mchid = (urllib.parse.parse_qs(req.url.query).get('mchid') or
                     [None])[0]
        if mchid != auth['mchid']:
            return self.error(400, 'PARAM_ERROR', 'mchid is missing or is '
                              "not the Authorization's")
        with sim.lock:
            order = sim.orders.get(ident) if by == 'out-trade-no' else \
                sim.order_by_txn(ident)
            if order is not None and order['profile'] != self.profile:
                order = None
            if order is None:
                return self.error(404, 'ORDER_NOT_EXIST', '订单不存在')
            state = order['trade_state']
            if kind == 'query':
                pay = None
                if state == 'SUCCESS':
                    pay = [p for p in order['payments']
                           if by == 'out-trade-no' or p['txn_id'] == ident]
                    pay = pay[0]
                return self.reply(200, self.transaction(order, pay, state))
            if state == 'SUCCESS':
                return self.error(400, 'ORDERPAID', '订单已支付')
            if state == 'CLOSED':
                return self.error(400, 'ORDERCLOSED', '订单已关闭')
            order['trade_state'] = 'CLOSED'
            order['closed'] = True
            sim.log('close %s: closed' % order['order_id'])
            return self.reply(204)


    def answer_bill(self, sim, kind, req):
        """GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL: the
        bill of that day is made now and kept under a fresh token; the
        signed answer gives its SHA1 and download_url, the simulator's own
        /v3/billdownload/file?token=...; a day without a payment or a
        refund is 400 NO_STATEMENT_EXIST.  GET of that download_url: the
        file as it was made, unsigned, as WeChat's; an unknown token is
        404 RESOURCE_NOT_EXISTS."""
        q = urllib.parse.parse_qs(req.url.query)
        if kind == 'billfile':
            with sim.lock:
                data = sim.bill_files.get((q.get('token') or [''])[0])
            if data is None:
                return self.error(404, 'RESOURCE_NOT_EXISTS', '文件不存在')
            return 200, 'application/octet-stream', data, {}
        date = (q.get('bill_date') or [''])[0]
        if not re.fullmatch(r'\d{4}-\d{2}-\d{2}', date) or \
                (q.get('bill_type') or ['ALL'])[0] != 'ALL':
            return self.error(400, 'PARAM_ERROR', 'bill_date or bill_type')
        day = date.replace('-', '')
        rows = self.bill_rows(sim, day)
        if not rows:
            return self.error(400, 'NO_STATEMENT_EXIST', '账单文件不存在')
        data = self.statement(sim, day, rows=rows)
        token = _alnum(32)
        with sim.lock:
            modes = dict(sim.bill_modes)
            sim.bill_files[token] = data if modes['file'] == 'ok' else \
                self.bill_text(self.tampered(rows))
        return self.reply(200, {
            'hash_type': 'SHA1',
            'hash_value': hashlib.sha1(data).hexdigest(),
            'download_url': '%s/v3/billdownload/file?token=%s'
                            % (modes['link'] or sim.base_url, token)})

    def tampered(self, rows):
        """rows as a file changed on its way would have them: the first
        one's amount a fen more, the totals adding up."""
        when, fields, paid, refunded = rows[0]
        fields = fields[:12] + [self.yuan(paid + 1)] + fields[13:]
        return [(when, fields, paid + 1, refunded)] + rows[1:]


class Aggregator(KeyedProvider):
    """A Ping++-style aggregator (doc/design/protocols.md §5.1 and §5.2).

    Profile: "app_id"; "signature": "rsa" with "webhook_private_key"
    (events carry X-Pingplusplus-Signature, base64 RSA-SHA256 over the
    raw body), or "hmac" with "webhook_secret" and optional
    "signature_header" (default X-Signature: t=<unix>,v1=<hex
    HMAC-SHA256 of "<t>.<body>">); "api_key", the secret key queries must
    bring as Authorization: Bearer; optional "livemode" (true),
    "channel" (the wallet named in charges, default wx_pub),
    "sign_answers" (rsa only, default false: Ping++ documents no
    signature on API answers; true adds X-Pingplusplus-Signature to
    them), "retry_gaps".

    Notifications: a charge.succeeded event (the same event id and body
    at every send; an HMAC signature over a fresh t at each send), the
    charge with id = the txn id (ch_...), order_no, amount, lower-case
    currency, channel, transaction_no (the wallet's number), paid,
    time_paid.  Ping++ has no event for a failed charge: paying with
    result FAIL (out_of_order) is refused with 400.  Any 2xx
    acknowledges.

    The API, as Ping++ documents it (the Bearer key must be a profile's
    api_key, else 401; errors as {"error": {"type", "message"}}):
    GET /v1/charges/{id} retrieves one charge of the key's profile (404
    when there is none); GET /v1/charges lists the profile's charges,
    newest first, with app[id] required (that profile's app_id, else 400),
    limit (1 to 100, default 10), paid=true|false, created[gte|gt|lte|lt]
    (unix seconds) and starting_after=<charge id> (the page after that
    charge); has_more says whether a page follows.  The list has no order
    parameter: order_no, if sent, is ignored, as an API that does not know
    it would (tests/vectors/FINDINGS.md section 1).  Charges: every payment
    of an order (paid), or one unpaid charge for an order registered
    unpaid, created when the order was registered.  The aggregator has no
    close API.
    """

    name = 'aggregator'
    # Unconfirmed (doc/design/protocols.md §5.1 and §8.3): Ping++ documents none.
    # Chosen: the first send at once, then 2m, 10m, 10m, 1h, 2h, 6h, 15h
    # (8 sends within 25 hours, the pattern Alipay documents and
    # aggregators commonly copy).  A profile may give its own retry_gaps.
    retry_gaps = (120, 600, 600, 3600, 7200, 21600, 54000)
    api_content_type = 'application/json'
    required = ('app_id', 'signature')
    RSA_HEADER = 'X-Pingplusplus-Signature'
    CHARGE_RE = re.compile(r'\A/v1/charges/([A-Za-z0-9_-]{1,64})\Z')
    CREATED_OPS = {'gte': lambda a, b: a >= b, 'gt': lambda a, b: a > b,
                   'lte': lambda a, b: a <= b, 'lt': lambda a, b: a < b}

    @classmethod
    def needs_crypto(cls, conf):
        return conf.get('signature') != 'hmac'

    @classmethod
    def load(cls, conf):
        name, mode = conf.get('name'), conf.get('signature')
        for k in ('livemode', 'sign_answers'):
            if not isinstance(conf.get(k, False), bool):
                raise ValueError('profile %s: %s: true or false' % (name, k))
        for k in ('api_key', 'channel', 'signature_header'):
            if k in conf and (not isinstance(conf[k], str) or not conf[k]):
                raise ValueError('profile %s: %s: a non-empty string'
                                 % (name, k))
        if mode == 'rsa':
            if 'webhook_secret' in conf or 'signature_header' in conf:
                raise ValueError('profile %s: webhook_secret and '
                                 'signature_header are for hmac' % name)
            return {'webhook_key': cls.private_key(conf,
                                                   'webhook_private_key')}
        if mode == 'hmac':
            if not isinstance(conf.get('webhook_secret'), str) or \
                    not conf['webhook_secret']:
                raise ValueError('profile %s: webhook_secret is required'
                                 % name)
            if 'webhook_private_key' in conf or conf.get('sign_answers'):
                raise ValueError('profile %s: webhook_private_key and '
                                 'sign_answers are for rsa' % name)
            return {}
        raise ValueError('profile %s: signature must be rsa or hmac' % name)

    @property
    def livemode(self):
        return self.conf.get('livemode', True)

    def new_txn_id(self):
        return 'ch_' + _alnum(24)

    def charge(self, order, payment):
        """A charge object: payment's (paid), or the order's unpaid one."""
        paid = payment is not None
        src = payment if paid else order
        if paid:
            ch = payment['txn_id']
            t = _beijing_epoch(payment['time_end'])
            time_paid = t if t is not None else payment['time_end']
            created = (t or int(time.time())) - 60
            wallet = ('4200' if self.channel.startswith('wx') else '2026') \
                + _digits(24, ch)
        else:
            ch = 'ch_' + hashlib.sha256(('%s/%s' % (
                self.profile, order['order_id'])).encode()).hexdigest()[:24]
            time_paid = wallet = None
            created = order.get('created', int(time.time()))
        return {'id': ch, 'object': 'charge', 'created': created,
                'livemode': self.livemode, 'paid': paid, 'refunded': False,
                'reversed': False, 'app': self.conf['app_id'],
                'channel': self.channel, 'order_no': order['order_id'],
                'client_ip': '127.0.0.1', 'amount': src['amount'],
                'amount_settle': src['amount'],
                'currency': src['currency'].lower(),
                'subject': 'provsim order', 'body': 'provsim order',
                'extra': {}, 'time_paid': time_paid,
                'time_expire': created + 7200, 'time_settle': None,
                'transaction_no': wallet,
                'refunds': {'object': 'list', 'url': '/v1/charges/%s/refunds'
                            % ch, 'has_more': False, 'data': []},
                'amount_refunded': 0, 'failure_code': None,
                'failure_msg': None, 'metadata': {}, 'credential': {},
                'description': None}

    @property
    def channel(self):
        return self.conf.get('channel', 'wx_pub')

    def rsa_signature(self, body):
        return base64.b64encode(self.rsa_sign(self.keys['webhook_key'],
                                              body)).decode('ascii')

    # -- notifications ------------------------------------------------------
    def notification(self, order, payment, result):
        if result != 'SUCCESS':
            raise SimError(400, 'profile %s: the aggregator sends no event '
                           'for a failed charge' % self.profile)
        ev = {'id': 'evt_' + _alnum(24), 'created': int(time.time()),
              'livemode': self.livemode, 'type': 'charge.succeeded',
              'data': {'object': self.charge(order, payment)},
              'object': 'event', 'pending_webhooks': 1,
              'request': 'iar_' + _alnum(24)}
        return 'application/json', _json_bytes(ev)

    def delivery_headers(self, body):
        if self.conf['signature'] == 'rsa':
            return {self.RSA_HEADER: self.rsa_signature(body)}
        t = str(int(time.time()))
        v1 = hmac.new(self.conf['webhook_secret'].encode('utf-8'),
                      t.encode() + b'.' + body, hashlib.sha256).hexdigest()
        return {self.conf.get('signature_header', 'X-Signature'):
                't=%s,v1=%s' % (t, v1)}

    def is_ack(self, status, body):
        return 200 <= status <= 299

    # -- GET /v1/charges, GET /v1/charges/{id} -----------------------------
    @classmethod
    def api_kind(cls, method, url):
        if url.path == '/v1/charges' or cls.CHARGE_RE.match(url.path):
            return 'query'
        return None

    @classmethod
    def api_order(cls, kind, req):
        # A list names no order; a retrieve names a charge.  Counted by
        # api_answer, which knows the orders.
        return None

    @staticmethod
    def error(status, message, etype='invalid_request_error'):
        return (status, 'application/json', _json_bytes(
            {'error': {'type': etype, 'message': message}}), {})

    def charges(self, sim):
        """Every charge of this profile, newest first (lock held)."""
        out = []
        for order in sim.orders.values():
            if order['profile'] != self.profile:
                continue
            if order['payments']:
                out += [self.charge(order, p) for p in order['payments']]
            else:
                out.append(self.charge(order, None))
        out.sort(key=lambda c: (c['created'], c['id']), reverse=True)
        return out

    @classmethod
    def list_filter(cls, q):
        """A predicate on charges from the list's query, or an error."""
        tests = []
        paid = (q.get('paid') or [None])[0]
        if paid is not None:
            if paid not in ('true', 'false'):
                raise ValueError('paid: true or false')
            tests.append(lambda c, v=(paid == 'true'): c['paid'] == v)
        for op, fn in cls.CREATED_OPS.items():
            v = (q.get('created[%s]' % op) or [None])[0]
            if v is None:
                continue
            if not v.isdigit():
                raise ValueError('created[%s]: unix seconds' % op)
            tests.append(lambda c, fn=fn, v=int(v): fn(c['created'], v))
        return lambda c: all(t(c) for t in tests)

    @classmethod
    def api_answer(cls, sim, kind, req):
        auth = req.headers.get('Authorization') or ''
        given = auth[7:].encode('utf-8') if auth.startswith('Bearer ') \
            else b''
        with sim.lock:
            profs = [p for p in sim.profiles.values() if p.name == cls.name]
        prof = None
        for p in profs:
            key = p.conf.get('api_key')
            if key and given and hmac.compare_digest(key.encode('utf-8'),
                                                     given):
                prof = p
                break
        if prof is None:
            return cls.error(401, 'No valid API key provided')
        if req.method != 'GET':
            return cls.error(400, 'only reading charges is simulated')
        m = cls.CHARGE_RE.match(req.url.path)
        with sim.lock:
            charges = prof.charges(sim)
        if m:
            found = [c for c in charges if c['id'] == m.group(1)]
            sim.count_order(kind, found[0]['order_no'] if found else '')
            if not found:
                return cls.error(404, 'No such charge: %s' % m.group(1))
            return prof.answer_body(_json_bytes(found[0]))
        q = urllib.parse.parse_qs(req.url.query, keep_blank_values=True)
        if (q.get('app[id]') or [''])[0] != prof.conf['app_id']:
            return cls.error(400, 'app[id] is not the app of this key')
        limit = (q.get('limit') or ['10'])[0]
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return cls.error(400, 'limit: 1 to 100')
        try:
            keep = cls.list_filter(q)
        except ValueError as exc:
            return cls.error(400, str(exc))
        charges = [c for c in charges if keep(c)]
        after = (q.get('starting_after') or [None])[0]
        if after is not None:
            ids = [c['id'] for c in charges]
            if after not in ids:
                return cls.error(400, 'starting_after: no such charge')
            charges = charges[ids.index(after) + 1:]
        page = charges[:int(limit)]
        for order_no in sorted({c['order_no'] for c in page}):
            sim.count_order(kind, order_no)
        if not page:
            sim.count_order(kind, '')
        return prof.answer_body(_json_bytes({
            'object': 'list', 'url': '/v1/charges',
            'has_more': len(charges) > len(page), 'data': page}))

    def answer_body(self, body):
        headers = {}
        if self.conf.get('sign_answers'):
            headers[self.RSA_HEADER] = self.rsa_signature(body)
        return 200, 'application/json', body, headers


PROVIDERS = {cls.name: cls for cls in (WeChatV2, UnionPay, WeChatV3,
                                        Aggregator)}


# ---------------------------------------------------------------------------
# The simulator: ledger, deliveries, modes
# ---------------------------------------------------------------------------

class Job:
    """The notification of one payment, on its provider's schedule."""

    def __init__(self, prov, order_id, payment, result, opts, start_at):
        self.prov = prov
        self.order_id = order_id
        self.payment = payment
        self.result = result
        self.opts = opts
        self.start_at = start_at        # monotonic time of the first send
        self.content_type = None
        self.body = None
        self.done = False


class Sim:
    def __init__(self, time_factor=1.0, logfile=None):
        self.time_factor = float(time_factor)
        self.logfile = logfile
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        self.profiles = {}          # name -> Provider instance
        self.base_url = 'http://%s' % HOST  # with the port once listening
        self.stopping = False
        self._loglock = threading.Lock()
        self.reset_state()

    def reset_state(self):
        with self.lock:
            self.generation = getattr(self, 'generation', 0) + 1
            self.orders = {}
            self.deliveries = []
            self.stats = {'total': {'query': 0, 'close': 0}, 'by_order': {},
                          'most_at_once': 0}
            self.at_once = 0
            self.modes = {'query': 'ok', 'close': 'ok', 'notify': 'ok'}
            self.slow_s = 10.0
            self.refunds = {}       # out_refund_no -> refund
            self.refund_stats = {'calls': 0, 'made': 0, 'queries': 0,
                                 'by_id': {}}
            self.refund_modes = {'api': 'ok', 'error': '',
                                 'status': 'SUCCESS', 'notify': 'ok',
                                 'answer_delta': 0}
            self.bill_files = {}    # v3 download token -> bill bytes
            self.bill_stats = {'calls': 0, 'files': 0}
            self.bill_modes = {'file': 'ok', 'link': ''}
            self.cv.notify_all()

    # -- logging ------------------------------------------------------------
    def log(self, text):
        if not self.logfile:
            return
        line = '%s %s\n' % (datetime.datetime.now(datetime.timezone.utc)
                            .strftime('%Y-%m-%dT%H:%M:%S.%fZ'), text)
        with self._loglock:
            with open(self.logfile, 'a', encoding='utf-8') as fh:
                fh.write(line)

    # -- profiles -------------------------------------------------------------
    def add_profile(self, conf):
        if not isinstance(conf, dict):
            raise ValueError('a profile is a JSON object')
        name, prov = conf.get('name'), conf.get('provider')
        if not isinstance(name, str) or not name:
            raise ValueError('profile: name is required')
        if prov not in PROVIDERS:
            raise ValueError('profile %s: unknown provider %r (known: %s)'
                             % (name, prov, ', '.join(sorted(PROVIDERS))))
        PROVIDERS[prov].check(conf)
        with self.lock:
            self.profiles[name] = PROVIDERS[prov](dict(conf))

    def find_profile(self, provider, **match):
        with self.lock:
            for p in self.profiles.values():
                if p.name == provider and all(
                        p.conf.get(k) == v for k, v in match.items()):
                    return p
        return None

    def profile(self, name):
        p = self.profiles.get(name)
        if p is None:
            raise SimError(400, 'unknown profile %r' % (name,))
        return p

    # -- the ledger -------------------------------------------------------------
    def order_by_txn(self, txn):
        for o in self.orders.values():
            if txn in o['txn_ids']:
                return o
        return None

    def _order(self, prov, order_id, amount, currency):
        o = self.orders.get(order_id)
        if o is None:
            o = {'order_id': order_id, 'profile': prov.profile,
                 'amount': amount, 'currency': currency,
                 'trade_state': 'NOTPAY', 'txn_ids': [], 'closed': False,
                 'payments': [], 'created': int(time.time())}
            self.orders[order_id] = o
        elif o['profile'] != prov.profile:
            raise SimError(409, 'order %s belongs to profile %s'
                           % (order_id, o['profile']))
        return o

    def register_order(self, prov, order_id, amount, currency):
        with self.lock:
            o = self._order(prov, order_id, amount, currency)
            self.log('order %s registered (%s)' % (order_id,
                                                   o['trade_state']))
            return o['trade_state']

    def pay(self, prov, order_id, amount, currency, txn=None, time_end=None,
            opts=None, force=False, result='SUCCESS', delay=None):
        """Records a payment (or, result FAIL, a failed attempt) and
        schedules its notification.  Returns the transaction id."""
        opts = opts or {}
        with self.lock:
            o = self._order(prov, order_id, amount, currency)
            if o['closed'] and result == 'SUCCESS' and not force:
                raise SimError(409, 'order %s is closed' % order_id)
            txn = txn or prov.new_txn_id()
            if self.order_by_txn(txn) is not None:
                raise SimError(409, 'transaction %s exists' % txn)
            payment = {'txn_id': txn, 'amount': amount,
                       'currency': currency,
                       'time_end': time_end or beijing_now(),
                       'result': result}
            if result == 'SUCCESS':
                o['payments'].append(payment)
                o['txn_ids'].append(txn)
                o['trade_state'] = 'SUCCESS'
            delay = float(opts.get('delay_s', 0)) if delay is None else delay
            job = Job(prov, order_id, payment, result, opts,
                      time.monotonic() + delay)
            job.content_type, job.body = prov.notification(o, payment, result)
            gen = self.generation
            self.log('pay %s txn %s %s amount %d %s notify %s'
                     % (order_id, txn, result, amount, currency,
                        json.dumps(opts, sort_keys=True)))
        threading.Thread(target=self._run_job, args=(job, gen),
                         daemon=True).start()
        return txn

    def notify_refund(self, prov, order, payment, refund):
        """Schedules the notification of a refund made (lock held)."""
        opts = {'drop_all': self.refund_modes['notify'] == 'drop'}
        job = Job(prov, order['order_id'], payment, 'REFUND', opts,
                  time.monotonic())
        job.content_type, job.body = prov.refund_notification(order, refund)
        threading.Thread(target=self._run_job, args=(job, self.generation),
                         daemon=True).start()

    # -- notification delivery -------------------------------------------------
    def _wait_until(self, when, gen):
        """Waits for monotonic time `when` and for notify mode ok; False
        when reset or stopping."""
        with self.cv:
            while True:
                if self.stopping or self.generation != gen:
                    return False
                left = when - time.monotonic()
                if left <= 0 and self.modes['notify'] == 'ok':
                    return True
                self.cv.wait(left if left > 0 else None)

    def _run_job(self, job, gen):
        gaps = job.prov.retry_gaps
        drop_first = int(job.opts.get('drop_first', 0) or 0)
        drop_all = bool(job.opts.get('drop_all', False))
        copies = 1 + int(job.opts.get('duplicate', 0) or 0)
        when = job.start_at
        for attempt in range(1, len(gaps) + 2):
            if not self._wait_until(when, gen):
                return
            dropped = drop_all or attempt <= drop_first
            if dropped:
                self._record(job, attempt, 0, True, None, None, False, None,
                             gen)
                acked = False
            else:
                results = [None] * copies
                threads = [threading.Thread(
                    target=self._send, args=(job, attempt, c, results, gen))
                    for c in range(copies)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                acked = any(results)
            if acked:
                job.done = True
                self.log('notify %s txn %s: acknowledged at send %d'
                         % (job.order_id, job.payment['txn_id'], attempt))
                return
            if attempt <= len(gaps):
                when = time.monotonic() + gaps[attempt - 1] / self.time_factor
        self.log('notify %s txn %s: schedule exhausted, never acknowledged'
                 % (job.order_id, job.payment['txn_id']))

    def _send(self, job, attempt, copy, results, gen):
        status = body = err = None
        url = urllib.parse.urlsplit(job.prov.notify_url)
        at = time.time()
        try:
            if url.scheme != 'http' or url.hostname != HOST:
                raise ValueError('notify_url must be http://127.0.0.1:...'
                                 ', not %r' % job.prov.notify_url)
            conn = http.client.HTTPConnection(url.hostname, url.port or 80,
                                              timeout=NOTIFY_TIMEOUT)
            try:
                path = url.path or '/'
                if url.query:
                    path += '?' + url.query
                headers = {'Content-Type': job.content_type}
                headers.update(job.prov.delivery_headers(job.body))
                conn.request('POST', path, body=job.body, headers=headers)
                resp = conn.getresponse()
                status, raw = resp.status, resp.read()
                body = raw.decode('utf-8', 'replace')
            finally:
                conn.close()
        except Exception as exc:        # the merchant did not answer
            err = '%s: %s' % (type(exc).__name__, exc)
            raw = None
        acked = status is not None and job.prov.is_ack(status, raw)
        results[copy] = acked
        self._record(job, attempt, copy, False, status, body, acked, err,
                     gen, at)

    def _record(self, job, attempt, copy, dropped, status, body, acked, err,
                gen, at=None):
        rec = {'at': at if at is not None else time.time(),
               'txn_id': job.payment['txn_id'], 'order_id': job.order_id,
               'dropped': dropped, 'status': status, 'body': body,
               'acked': acked, 'attempt': attempt, 'copy': copy,
               'result': job.result,
               'request': job.body.decode('utf-8', 'replace'),
               'error': err}
        with self.lock:
            if self.generation != gen:
                return
            self.deliveries.append(rec)
        self.log('notify %s txn %s send %d copy %d: %s'
                 % (job.order_id, job.payment['txn_id'], attempt, copy,
                    'dropped' if dropped else 'status %s%s%s' % (
                        status, ' acked' if acked else '',
                        ' (%s)' % err if err else '')))

    # -- the provider API -------------------------------------------------------
    def count(self, kind, order_id):
        with self.lock:
            self.stats['total'][kind] += 1
            if order_id:
                self.count_order(kind, order_id)

    def count_order(self, kind, order_id):
        """by_order only: for an API whose request names no order (the
        aggregator's list), counted by the orders its answer is about."""
        if not order_id:
            return
        with self.lock:
            per = self.stats['by_order'].setdefault(
                order_id, {'query': 0, 'close': 0})
            per[kind] += 1

    def stop(self):
        with self.cv:
            self.stopping = True
            self.cv.notify_all()


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Hangup(Exception):
    pass


class ApiRequest:
    """A provider API request as received: method, target (path and
    query exactly as sent), url (its urlsplit), headers (any case), body."""

    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        self.url = urllib.parse.urlsplit(target)
        self.headers = headers
        self.body = body


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'provsim/1'
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        self.server.sim.log('http %s %s' % (self.address_string(),
                                            fmt % args))

    def _read_body(self):
        try:
            n = int(self.headers.get('Content-Length') or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            raise SimError(400, 'bad Content-Length')
        return self.rfile.read(n) if n else b''

    def _send(self, status, body, ctype, headers=None):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj, ensure_ascii=False)
                   .encode('utf-8'), 'application/json')

    def do_GET(self):
        self._dispatch('GET')

    def do_POST(self):
        self._dispatch('POST')

    def _dispatch(self, method):
        sim = self.server.sim
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
            if url.path == '/_sim/statement' and method == 'GET':
                self._send(200, statement(sim, url), 'text/plain; '
                           'charset=utf-8')
                return
            if url.path.startswith('/_sim/'):
                status, obj = control(sim, method, url, body)
                self._json(status, obj)
                return
            for cls in PROVIDERS.values():
                kind = cls.api_kind(method, url)
                if kind is not None:
                    self._provider_api(sim, cls, kind,
                                       ApiRequest(method, self.path,
                                                  self.headers, body))
                    return
            self._json(404, {'error': 'no route %s' % url.path})
        except SimError as exc:
            self._json(exc.status, {'error': exc.text})
        except Hangup:
            self.close_connection = True

    def _provider_api(self, sim, cls, kind, req):
        order_id = cls.api_order(kind, req)
        if kind in ('refund', 'refundquery'):
            # Counted and moded apart, so the query/close stats and
            # modes keep their shape; a refund's query is of the refund
            # API (its mode), counted under "queries".
            with sim.lock:
                sim.refund_stats['calls'] += kind == 'refund'
                mode, slow = sim.refund_modes['api'], sim.slow_s
        elif kind in ('bill', 'billfile'):
            # The bill APIs have no modes: always answered.
            with sim.lock:
                sim.bill_stats['calls'] += 1
                sim.bill_stats['files'] += kind == 'billfile'
                mode, slow = 'ok', sim.slow_s
        else:
            sim.count(kind, order_id)
            with sim.lock:
                mode, slow = sim.modes[kind], sim.slow_s
                sim.at_once += 1
                sim.stats['most_at_once'] = max(sim.stats['most_at_once'],
                                                sim.at_once)
            try:
                self._api_moded(sim, cls, kind, req, mode, slow)
            finally:
                with sim.lock:
                    sim.at_once -= 1
            return
        self._api_moded(sim, cls, kind, req, mode, slow)

    def _api_moded(self, sim, cls, kind, req, mode, slow):
        order_id = cls.api_order(kind, req)
        sim.log('%s %s (mode %s)' % (kind, order_id, mode))
        if mode == 'down':
            self._send(503, b'Service Unavailable\n', 'text/plain')
            return
        if mode == 'hangup':
            raise Hangup()
        if mode == 'garbage':
            self._send(200, b'\x00\xffnot xml at all <<<\x01',
                       cls.api_content_type)
            return
        if mode == 'slow':
            time.sleep(slow)
        status, ctype, out, headers = cls.api_answer(sim, kind, req)
        self._send(status, out, ctype, headers)


def statement(sim, url):
    """GET /_sim/statement: the bill text, or SimError."""
    q = urllib.parse.parse_qs(url.query)
    prof = sim.profile((q.get('profile') or [''])[0])
    date = (q.get('date') or [''])[0]
    if not re.fullmatch(r'\d{4}-\d{2}-\d{2}', date):
        raise SimError(400, 'date: YYYY-MM-DD is required')
    if not hasattr(prof, 'statement'):
        raise SimError(400, 'provider %s writes no statements' % prof.name)
    eol = '\n' if (q.get('eol') or [''])[0] == 'lf' else '\r\n'
    return prof.statement(sim, date.replace('-', ''), eol=eol,
                          bom=(q.get('bom') or [''])[0] == '1')


def _json_body(body):
    if not body:
        return {}
    try:
        obj = json.loads(body.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        raise SimError(400, 'the body is not JSON')
    if not isinstance(obj, dict):
        raise SimError(400, 'the body is not a JSON object')
    return obj


def _str(req, name, default=None):
    v = req.get(name, default)
    if not isinstance(v, str) or v == '':
        raise SimError(400, '%s: a non-empty string is required' % name)
    return v


def _amount(req):
    v = req.get('amount')
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise SimError(400, 'amount: a non-negative integer (fen) is '
                       'required')
    return v


def _notify_opts(req):
    opts = req.get('notify') or {}
    if not isinstance(opts, dict):
        raise SimError(400, 'notify: an object is required')
    for k in ('drop_first', 'duplicate'):
        if k in opts and (not isinstance(opts[k], int) or opts[k] < 0):
            raise SimError(400, 'notify.%s: a non-negative integer' % k)
    if 'delay_s' in opts and (not isinstance(opts['delay_s'], (int, float))
                              or opts['delay_s'] < 0):
        raise SimError(400, 'notify.delay_s: a non-negative number')
    if opts.get('mode', 'normal') != 'normal':
        raise SimError(400, 'notify.mode: only "normal" is known')
    unknown = set(opts) - {'drop_first', 'drop_all', 'delay_s', 'duplicate',
                           'mode'}
    if unknown:
        raise SimError(400, 'notify: unknown keys %s' % sorted(unknown))
    return opts


def control(sim, method, url, body):
    """The /_sim/ API: (HTTP status, JSON object)."""
    route = url.path
    query = urllib.parse.parse_qs(url.query)
    if method == 'GET':
        with sim.lock:
            if route == '/_sim/ledger':
                return 200, {'orders': {
                    oid: {'trade_state': o['trade_state'],
                          'txn_ids': list(o['txn_ids']),
                          'amount': o['amount'], 'closed': o['closed'],
                          'currency': o['currency'],
                          'profile': o['profile']}
                    for oid, o in sim.orders.items()}}
            if route == '/_sim/deliveries':
                out = sim.deliveries
                for key in ('order_id', 'txn_id'):
                    if key in query:
                        out = [d for d in out if d[key] == query[key][0]]
                return 200, sorted(out, key=lambda d: d['at'])
            if route == '/_sim/refunds':
                return 200, {'refunds': {
                    no: {k: r[k] for k in ('refund_id', 'txn_id', 'order_id',
                                           'amount', 'status',
                                           'success_time', 'calls')}
                    for no, r in sim.refunds.items()}}
            if route == '/_sim/stats':
                st = json.loads(json.dumps(sim.stats))
                st['refunds'] = json.loads(json.dumps(sim.refund_stats))
                st['bills'] = dict(sim.bill_stats)
                st['notifications'] = {
                    'sent': sum(1 for d in sim.deliveries
                                if not d['dropped']),
                    'dropped': sum(1 for d in sim.deliveries
                                   if d['dropped']),
                    'acked': sum(1 for d in sim.deliveries if d['acked'])}
                return 200, st
            if route == '/_sim/mode':
                return 200, dict(sim.modes, slow_s=sim.slow_s)
        raise SimError(404, 'no route GET %s' % route)
    if method != 'POST':
        raise SimError(405, 'GET or POST')
    req = _json_body(body)
    if route == '/_sim/pay':
        prov = sim.profile(req.get('profile'))
        txn = sim.pay(prov, _str(req, 'order_id'), _amount(req),
                      _str(req, 'currency', 'CNY'),
                      txn=req.get('txn_id') or None,
                      time_end=req.get('time_end') or None,
                      opts=_notify_opts(req),
                      force=bool(req.get('force', False)))
        return 200, {'txn_id': txn, 'order_id': req['order_id']}
    if route == '/_sim/pay_twice':
        prov = sim.profile(req.get('profile'))
        oid, amount = _str(req, 'order_id'), _amount(req)
        cur, opts = _str(req, 'currency', 'CNY'), _notify_opts(req)
        t1 = sim.pay(prov, oid, amount, cur, opts=opts)
        t2 = sim.pay(prov, oid, amount, cur, opts=opts, force=True)
        return 200, {'txn_ids': [t1, t2], 'order_id': oid}
    if route == '/_sim/out_of_order':
        prov = sim.profile(req.get('profile'))
        oid, amount = _str(req, 'order_id'), _amount(req)
        cur = _str(req, 'currency', 'CNY')
        gap = req.get('gap_s', 0.2)
        if not isinstance(gap, (int, float)) or gap < 0:
            raise SimError(400, 'gap_s: a non-negative number')
        # The failed attempt happened first; its notification is late.
        with sim.lock:
            failed = sim.pay(prov, oid, amount, cur, result='FAIL',
                             delay=float(gap))
            txn = sim.pay(prov, oid, amount, cur, delay=0.0)
        return 200, {'txn_id': txn, 'failed_txn_id': failed,
                     'order_id': oid}
    if route == '/_sim/order':
        prov = sim.profile(req.get('profile'))
        oid = _str(req, 'order_id')
        state = sim.register_order(prov, oid, _amount(req),
                                   _str(req, 'currency', 'CNY'))
        return 200, {'order_id': oid, 'trade_state': state}
    if route == '/_sim/mode':
        allowed = {'query': ('ok', 'down', 'hangup', 'garbage', 'slow'),
                   'close': ('ok', 'down', 'hangup', 'garbage', 'slow'),
                   'notify': ('ok', 'pause')}
        for k in req:
            if k == 'slow_s':
                if not isinstance(req[k], (int, float)) or req[k] < 0:
                    raise SimError(400, 'slow_s: a non-negative number')
            elif k not in allowed or req[k] not in allowed[k]:
                raise SimError(400, 'mode %s=%r: known are %s'
                               % (k, req[k], json.dumps(allowed)))
        with sim.cv:
            for k, v in req.items():
                if k == 'slow_s':
                    sim.slow_s = float(v)
                else:
                    sim.modes[k] = v
            sim.cv.notify_all()
            sim.log('mode %s' % json.dumps(sim.modes, sort_keys=True))
            return 200, dict(sim.modes, slow_s=sim.slow_s)
    if route == '/_sim/alter':
        txn = _str(req, 'txn_id')
        with sim.lock:
            order = sim.order_by_txn(txn)
            if order is None:
                raise SimError(404, 'no payment %s' % txn)
            pay = next(p for p in order['payments'] if p['txn_id'] == txn)
            if 'amount' in req:
                pay['statement_amount'] = _amount(req)
            if 'omit' in req:
                if not isinstance(req['omit'], bool):
                    raise SimError(400, 'omit: true or false')
                pay['omit'] = req['omit']
            sim.log('alter %s: %s' % (txn, json.dumps(req, sort_keys=True)))
            return 200, {'txn_id': txn,
                         'amount': pay.get('statement_amount', pay['amount']),
                         'omit': bool(pay.get('omit'))}
    if route == '/_sim/refund_mode':
        allowed = {'api': ('ok', 'down', 'hangup', 'garbage', 'slow'),
                   'status': ('SUCCESS', 'CHANGE', 'REFUNDCLOSE'),
                   'notify': ('ok', 'drop')}
        for k, v in req.items():
            if k == 'error':
                if not isinstance(v, str) or not re.fullmatch(
                        r'[A-Z_]{0,32}', v):
                    raise SimError(400, 'error: an err_code or ""')
            elif k == 'answer_delta':
                if type(v) is not int:
                    raise SimError(400, 'answer_delta: a whole number '
                                   'of fen')
            elif k not in allowed or v not in allowed[k]:
                raise SimError(400, 'refund mode %s=%r: known are %s'
                               % (k, v, json.dumps(allowed)))
        with sim.lock:
            sim.refund_modes.update(req)
            sim.log('refund mode %s' % json.dumps(sim.refund_modes,
                                                   sort_keys=True))
            return 200, dict(sim.refund_modes)
    if route == '/_sim/bill_mode':
        file_mode, link = req.get('file', 'ok'), req.get('link', '')
        if file_mode not in ('ok', 'tampered') or set(req) - {'file', 'link'}:
            raise SimError(400, 'bill mode: "file": "ok" or "tampered", '
                           '"link": an origin or ""')
        if not isinstance(link, str) or not re.fullmatch(
                r'(https?://[^/?#\s]+)?', link):
            raise SimError(400, 'link: scheme://host[:port] or ""')
        with sim.lock:
            sim.bill_modes.update(file=file_mode, link=link)
            sim.log('bill mode %s' % json.dumps(sim.bill_modes,
                                                 sort_keys=True))
            return 200, dict(sim.bill_modes)
    if route == '/_sim/profile':
        try:
            sim.add_profile(req)
        except ValueError as exc:
            raise SimError(400, str(exc))
        return 200, {'profile': req['name']}
    if route == '/_sim/reset':
        sim.reset_state()
        sim.log('reset')
        return 200, {'reset': True}
    raise SimError(404, 'no route POST %s' % route)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Tests drive it from many threads at once: the default backlog of 5
    # resets connections.
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description='payment provider simulator')
    ap.add_argument('--port', type=int, required=True,
                    help='port on 127.0.0.1 (0: any free port)')
    ap.add_argument('--config', required=True, help='sim.json')
    ap.add_argument('--time-factor', type=float, default=1.0,
                    help='divide the retry schedule by this (default 1)')
    ap.add_argument('--log', help='append a line per event to this file')
    args = ap.parse_args(argv)
    if args.time_factor <= 0:
        ap.error('--time-factor must be positive')

    sim = Sim(args.time_factor, args.log)
    try:
        with open(args.config, encoding='utf-8') as fh:
            conf = json.load(fh)
        if not isinstance(conf, dict) or \
                not isinstance(conf.get('profiles'), list):
            raise ValueError('the config needs "profiles": [...]')
        for p in conf['profiles']:
            sim.add_profile(p)
    except (OSError, ValueError) as exc:
        sys.stderr.write('provsim: %s: %s\n' % (args.config, exc))
        return 2

    try:
        srv = Server((HOST, args.port), Handler)
    except OSError as exc:
        sys.stderr.write('provsim: cannot listen on %s:%d: %s\n'
                         % (HOST, args.port, exc))
        return 1
    srv.sim = sim

    def on_signal(signum, _frame):
        sim.log('signal %d: stopping' % signum)
        sim.stop()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port = srv.server_address[1]
    sim.base_url = 'http://%s:%d' % (HOST, port)
    sim.log('listening on %s:%d, time factor %g' % (HOST, port,
                                                    args.time_factor))
    sys.stdout.write('provsim listening on %s:%d\n' % (HOST, port))
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    sim.log('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
