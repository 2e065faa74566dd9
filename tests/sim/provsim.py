#!/usr/bin/env python3
"""provsim: a payment provider simulator for payhook's tests.

It plays the provider's side on 127.0.0.1: it keeps a ledger of orders and
payments, notifies the merchant on the provider's retry schedule (dropping,
delaying and duplicating deliveries on request), and answers the
provider's query and close APIs from its ledger.  Signatures are computed
here, from the providers' published rules, never by payhook's code.
Standard library only.

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
                       "by_order": {order_id: {"query": n, "close": n}},
                       "notifications": {"sent": n, "dropped": n,
                       "acked": n}}
    Every request to the query/close API is counted, whatever the mode
    and whether or not its signature checks.

Provider API (WeChat Pay v2):
POST /pay/orderquery, POST /pay/closeorder: XML in, XML out, every answer
signed with the profile's key (see WeChatV2).

Adding a provider: subclass Provider, give it a name, its retry gaps, how
to render and sign a notification, how to recognise an acknowledgement
and the API routes it answers; list it in PROVIDERS.
"""

import argparse
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
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

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


class WeChatV2(Provider):
    """WeChat Pay API v2: XML, MD5 or HMAC-SHA256 (PROTOCOLS.md section 1).

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
    api_routes = {'/pay/orderquery': 'query', '/pay/closeorder': 'close'}
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
    def answer(cls, sim, kind, method, body):
        """Answers /pay/orderquery (kind 'query') or /pay/closeorder
        ('close'): (HTTP status, body bytes)."""
        if method != 'POST':
            return 200, cls.fail_xml('REQUIRE_POST_METHOD')
        try:
            fields = cls.parse(body)
        except (ValueError, ET.ParseError):
            return 200, cls.fail_xml('XML_FORMAT_ERROR')
        req = dict(fields)
        prof = sim.find_profile(cls.name, appid=req.get('appid'),
                                mch_id=req.get('mch_id'))
        if prof is None:
            return 200, cls.fail_xml('appid and mch_id do not match')
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
            return error('SIGNERROR', '签名错误')
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


PROVIDERS = {cls.name: cls for cls in (WeChatV2,)}


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
        self.stopping = False
        self._loglock = threading.Lock()
        self.reset_state()

    def reset_state(self):
        with self.lock:
            self.generation = getattr(self, 'generation', 0) + 1
            self.orders = {}
            self.deliveries = []
            self.stats = {'total': {'query': 0, 'close': 0}, 'by_order': {}}
            self.modes = {'query': 'ok', 'close': 'ok', 'notify': 'ok'}
            self.slow_s = 10.0
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
                 'payments': []}
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
                conn.request('POST', path, body=job.body,
                             headers={'Content-Type': job.content_type})
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

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
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
            if url.path.startswith('/_sim/'):
                status, obj = control(sim, method, url, body)
                self._json(status, obj)
                return
            for cls in PROVIDERS.values():
                kind = cls.api_routes.get(url.path)
                if kind is not None:
                    self._provider_api(sim, cls, kind, method, body)
                    return
            self._json(404, {'error': 'no route %s' % url.path})
        except SimError as exc:
            self._json(exc.status, {'error': exc.text})
        except Hangup:
            self.close_connection = True

    def _provider_api(self, sim, cls, kind, method, body):
        sim.count(kind, cls.order_of_request(body))
        with sim.lock:
            mode, slow = sim.modes[kind], sim.slow_s
        sim.log('%s %s (mode %s)' % (kind, cls.order_of_request(body), mode))
        if mode == 'down':
            self._send(503, b'Service Unavailable\n', 'text/plain')
            return
        if mode == 'hangup':
            raise Hangup()
        if mode == 'garbage':
            self._send(200, b'\x00\xffnot xml at all <<<\x01', 'text/xml')
            return
        if mode == 'slow':
            time.sleep(slow)
        status, out = cls.answer(sim, kind, method, body)
        self._send(status, out, 'text/xml')


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
            if route == '/_sim/stats':
                st = json.loads(json.dumps(sim.stats))
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
