"""The provider simulator (tests/sim/provsim.py) checked against payhook
and against the WeChat Pay v2 rules computed here with hashlib.

Covers: a payment notified and acknowledged once, the schedule stopping at
the acknowledgement; lost sends advancing the schedule (drop_first, and
drop_all to the end of the 16-send schedule); delayed, duplicated, paused,
doubled and out-of-order notifications; orderquery and closeorder answered
from the ledger and signed (MD5 and HMAC-SHA256) for paid, unpaid, unknown
and closed orders; SIGNERROR for a bad signature; the down, garbage,
hangup and slow modes; stats and reset; downloadbill (the bill, or No
Bill Exist); and payhook querying the
simulator for a payment whose notifications were all lost.
"""

import hashlib
import hmac
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PROFILES, SUCCESS_ACK, wait_for  # noqa: E402

# The documented WeChat v2 retry gaps (doc/design/protocols.md §1.5), in seconds.
GAPS = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600,
        10800, 10800, 10800, 21600, 21600]


# ---- WeChat v2, computed here ---------------------------------------------

def sign(fields, key, alg):
    items = sorted(((k, v) for k, v in fields if k != 'sign' and v != ''),
                   key=lambda kv: kv[0].encode())
    text = ('&'.join('%s=%s' % kv for kv in items) + '&key=' + key).encode()
    if alg == 'MD5':
        return hashlib.md5(text).hexdigest().upper()
    return hmac.new(key.encode(), text, hashlib.sha256).hexdigest().upper()


def parse_xml(body):
    """Flat <xml> -> list of (name, value) pairs, with a regex (CDATA or
    text), so the test does not share the simulator's parser."""
    m = re.match(rb'\A<xml>(.*)</xml>\Z', body or b'', re.S)
    if not m:
        return None
    out = []
    for name, cdata, text in re.findall(
            rb'<([A-Za-z_0-9]+)>(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))</\1>',
            m.group(1), re.S):
        out.append((name.decode(), (cdata or text).decode('utf-8')))
    return out


def request_xml(profile, order_id, alg=None, key=None, extra=()):
    p = PROFILES[profile]
    alg = alg or p['sign_type']
    f = [('appid', p['appid']), ('mch_id', p['mch_id']),
         ('nonce_str', os.urandom(16).hex()), ('out_trade_no', order_id)]
    if alg != 'MD5':
        f.append(('sign_type', alg))
    f += list(extra)
    f.append(('sign', sign(f, key or p['key'], alg)))
    return harness.notify_xml(f)


def call(sim, path, profile, order_id, **kw):
    """POST a signed request; (response, fields dict or None, sign ok)."""
    r = sim.request('POST', path, request_xml(profile, order_id, **kw),
                    {'Content-Type': 'text/xml'})
    fields = parse_xml(r.body)
    if fields is None:
        return r, None, False
    p = PROFILES[profile]
    alg = kw.get('alg') or p['sign_type']
    d = dict(fields)
    good = 'sign' in d and d['sign'] == sign(fields, p['key'], alg)
    return r, d, good


def check_answer(tap, sim, path, profile, order_id, want, name, absent=(),
                 **kw):
    """One test point: the answer to a signed request (see call) is
    signed, has every field of want with its value and none of absent.
    Returns the answer's fields."""
    r, f, good = call(sim, path, profile, order_id, **kw)
    f = f or {}
    tap.ok(good and all(f.get(k) == v for k, v in want.items()) and
           not any(k in f for k in absent), name, r.describe())
    return f


def order_state(inst, oid):
    o = inst.order(oid)
    return o.get('state') if o else None


def sends(sim, oid):
    return sim.deliveries(oid) or []


def new_order(inst, tag, amount, profile='wxshop'):
    """Creates an order of amount (its id: tag, '-', random hex) on
    profile; returns its id."""
    oid = tag + '-' + os.urandom(4).hex()
    inst.create_order(oid, amount, profile=profile)
    return oid


def sim_pay(sim, oid, amount, profile='wxshop', **notify):
    """The simulator pays order oid; notify: how it sends the
    notification (drop_first, duplicate, delay_s...)."""
    body = {'profile': profile, 'order_id': oid, 'amount': amount}
    if notify:
        body['notify'] = notify
    return sim.control('/_sim/pay', body)


# ---- the checks -------------------------------------------------------------

def test_notify(tap, sim, inst):
    # One payment, acknowledged at the first send.
    oid = 'S1-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oid, 100).status, 201, 'create order %s' % oid)
    r = sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': oid,
                                  'amount': 100})
    txn = (r.json or {}).get('txn_id', '')
    tap.ok(r.status == 200 and re.match(r'\A\d{28}\Z', txn),
           '/_sim/pay answers a 28-digit txn_id', r.describe())
    tap.is_(wait_for(lambda: order_state(inst, oid) == 'PAID'), True,
            'payhook has the order PAID')
    o = inst.order(oid) or {}
    tap.is_(o.get('provider_txn_id'), txn, 'payhook recorded the txn id')
    tap.ok(wait_for(lambda: any(d['acked'] for d in sends(sim, oid))),
           'the simulator saw the acknowledgement')
    time.sleep(0.3)     # 20 schedule gaps of 15 s at factor 1000
    ds = sends(sim, oid)
    tap.is_(len(ds), 1, 'one send, then the schedule stopped', repr(ds))
    if ds:
        d = ds[0]
        tap.is_((d['attempt'], d['dropped'], d['status'], d['acked']),
                (1, False, 200, True), 'send 1: delivered, HTTP 200, acked')
        tap.is_(d['body'], SUCCESS_ACK.decode(),
                "the delivery records payhook's exact SUCCESS ack")
        tap.is_(d['txn_id'], txn, 'the delivery names the txn')
        f = parse_xml(d['request'].encode())
        fd = dict(f or [])
        tap.is_((fd.get('out_trade_no'), fd.get('transaction_id'),
                 fd.get('total_fee'), fd.get('fee_type'),
                 fd.get('result_code')), (oid, txn, '100', 'CNY', 'SUCCESS'),
                'the notification carries the payment')
        tap.ok(fd.get('sign') == sign(f, PROFILES['wxshop']['key'], 'MD5'),
               'the notification is signed (MD5, checked here)')
        tap.ok(re.match(r'\A\d{14}\Z', fd.get('time_end', '')),
               'time_end is yyyyMMddHHmmss')
    led = sim.ledger()['orders'].get(oid, {})
    tap.is_((led.get('trade_state'), led.get('txn_ids'), led.get('amount'),
             led.get('closed')), ('SUCCESS', [txn], 100, False),
            'ledger: SUCCESS with the txn')

    # Two lost sends: the third is acknowledged.
    oid = new_order(inst, 'S2', 200)
    sim_pay(sim, oid, 200, drop_first=2)
    tap.is_(wait_for(lambda: order_state(inst, oid) == 'PAID'), True,
            'drop_first 2: the order is PAID')
    time.sleep(0.3)
    ds = sends(sim, oid)
    tap.is_([(d['attempt'], d['dropped'], d['acked']) for d in ds],
            [(1, True, False), (2, True, False), (3, False, True)],
            'drop_first 2: two lost sends, the third acked, then nothing')
    if len(ds) == 3:
        tap.ok(ds[0]['status'] is None and ds[1]['body'] is None,
               'lost sends have no status and no body')
        gap = ds[2]['at'] - ds[0]['at']
        tap.ok(0.029 <= gap < 2, 'the lost sends advanced the schedule '
               '(15 s + 15 s at factor 1000 = 30 ms; took %.3f s)' % gap)

    # HMAC-SHA256 profile.
    oid = new_order(inst, 'S3', 300, profile='wxhmac')
    sim_pay(sim, oid, 300, profile='wxhmac')
    tap.is_(wait_for(lambda: order_state(inst, oid) == 'PAID'), True,
            'HMAC-SHA256 profile: the order is PAID')
    ds = sends(sim, oid)
    if ds:
        f = parse_xml(ds[0]['request'].encode())
        tap.ok(dict(f).get('sign_type') == 'HMAC-SHA256' and
               dict(f).get('sign') == sign(f, PROFILES['wxhmac']['key'],
                                           'HMAC-SHA256'),
               'the HMAC notification is signed and says so')

    # Three copies of every send at once: one payment.
    oid = new_order(inst, 'S4', 400)
    base = inst.last_seq()
    sim_pay(sim, oid, 400, duplicate=2)
    tap.ok(wait_for(lambda: len(sends(sim, oid)) == 3), 'duplicate 2: '
           'three copies sent', repr(sends(sim, oid)))
    time.sleep(0.3)
    ds = sends(sim, oid)
    tap.is_(sorted((d['attempt'], d['copy'], d['acked']) for d in ds),
            [(1, 0, True), (1, 1, True), (1, 2, True)],
            'duplicate 2: all three copies of send 1 acked, no send 2')
    evs = [e for e in inst.all_events(base) if e.get('order_id') == oid]
    tap.is_([e.get('type') for e in evs], ['order.paid'],
            'duplicate 2: payhook paid the order once')

    # Delayed first send.
    oid = new_order(inst, 'S5', 500)
    t0 = time.time()
    sim_pay(sim, oid, 500, delay_s=0.6)
    time.sleep(0.3)
    tap.is_(sends(sim, oid), [], 'delay_s 0.6: nothing sent after 0.3 s')
    tap.ok(wait_for(lambda: any(d['acked'] for d in sends(sim, oid))),
           'delay_s 0.6: delivered later')
    ds = sends(sim, oid)
    tap.ok(ds and ds[0]['at'] - t0 >= 0.55, 'delay_s is real seconds, '
           'not divided by the time factor')

    # Paused notifications.
    oid = new_order(inst, 'S6', 600)
    r = sim.control('/_sim/mode', {'notify': 'pause'})
    tap.is_((r.json or {}).get('notify'), 'pause', 'notify paused')
    sim_pay(sim, oid, 600)
    time.sleep(0.4)
    tap.is_(sends(sim, oid), [], 'pause: nothing sent')
    tap.is_(order_state(inst, oid), 'PENDING', 'pause: the order waits')
    sim.control('/_sim/mode', {'notify': 'ok'})
    tap.is_(wait_for(lambda: order_state(inst, oid) == 'PAID'), True,
            'notify ok again: the held notification is delivered')

    # Two payments of one order.
    oid = new_order(inst, 'S7', 700)
    r = sim.control('/_sim/pay_twice', {'profile': 'wxshop',
                                        'order_id': oid, 'amount': 700})
    txns = (r.json or {}).get('txn_ids') or []
    tap.ok(len(txns) == 2 and txns[0] != txns[1],
           'pay_twice: two different txn ids', r.describe())
    tap.ok(wait_for(lambda: len([d for d in sends(sim, oid)
                                 if d['acked']]) == 2),
           'pay_twice: both notifications acknowledged')
    tap.is_(sorted(d['txn_id'] for d in sends(sim, oid)), sorted(txns),
            'pay_twice: one send per payment')
    tap.is_(sim.ledger()['orders'].get(oid, {}).get('txn_ids'), txns,
            'pay_twice: the ledger holds both')
    o = inst.order(oid) or {}
    tap.ok(o.get('state') == 'PAID' and o.get('exceptions'),
           'pay_twice: payhook has the order PAID with an exception',
           repr(o))

    # A failed attempt notified after the success.
    oid = new_order(inst, 'S8', 800)
    r = sim.control('/_sim/out_of_order', {'profile': 'wxshop',
                                           'order_id': oid, 'amount': 800})
    j = r.json or {}
    tap.ok(wait_for(lambda: len([d for d in sends(sim, oid)
                                 if d['acked']]) == 2),
           'out_of_order: both notifications acknowledged', r.describe())
    tap.is_([(d['result'], d['txn_id']) for d in sends(sim, oid)],
            [('SUCCESS', j.get('txn_id')), ('FAIL', j.get('failed_txn_id'))],
            'out_of_order: SUCCESS sent first, FAIL after')
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')),
            ('PAID', j.get('txn_id')),
            'out_of_order: payhook keeps the order PAID')


def test_schedule(tap):
    # The whole schedule at factor 100000 (24 h 4 min -> 0.87 s).
    sim = harness.Simulator(tap, time_factor=100000, name='sim-fast').start()
    sim.control('/_sim/profile', harness.sim_profile(
        'wxshop', PROFILES['wxshop'], 'http://127.0.0.1:9/never'))
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': 'D1',
                              'amount': 1, 'notify': {'drop_all': True}})
    tap.ok(wait_for(lambda: len(sends(sim, 'D1')) == 16, timeout=20),
           'drop_all: 16 sends in all', len(sends(sim, 'D1')))
    time.sleep(0.5)
    ds = sends(sim, 'D1')
    tap.is_([(d['attempt'], d['dropped'], d['acked']) for d in ds],
            [(i + 1, True, False) for i in range(16)],
            'drop_all: every send lost, none after the 16th')
    if len(ds) == 16:
        span = ds[-1]['at'] - ds[0]['at']
        tap.ok(sum(GAPS) / 100000.0 <= span < sum(GAPS) / 100000.0 + 5,
               'the sends span the documented 24 h 4 min / 100000 '
               '(%.3f s)' % span)
        big = ds[15]['at'] - ds[14]['at']
        small = ds[1]['at'] - ds[0]['at']
        tap.ok(big > small * 20, 'the last gap (6 h) is much longer than '
               'the first (15 s)')
    # A merchant that never answers: every send is an error.
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': 'D2',
                              'amount': 1})
    tap.ok(wait_for(lambda: len(sends(sim, 'D2')) == 16, timeout=30),
           'unreachable merchant: 16 sends')
    ds = sends(sim, 'D2')
    tap.ok(ds and all(d['status'] is None and d['error'] and not d['dropped']
                      for d in ds), 'unreachable merchant: no status, an '
           'error recorded')
    r = sim.control('/_sim/reset')
    tap.is_((r.status, sim.ledger(), sim.deliveries()),
            (200, {'orders': {}}, []), 'reset forgets everything')
    tap.is_(sim.stop(), 0, 'SIGTERM: the simulator exits with status 0')


def test_api(tap, sim):
    paid = 'Q1-' + os.urandom(4).hex()
    unpaid = 'Q2-' + os.urandom(4).hex()
    unknown = 'Q3-' + os.urandom(4).hex()
    r = sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': paid,
                                  'amount': 123,
                                  'time_end': '20250101120000',
                                  'notify': {'drop_all': True}})
    txn = (r.json or {}).get('txn_id')
    r = sim.control('/_sim/order', {'profile': 'wxshop',
                                    'order_id': unpaid, 'amount': 50})
    tap.is_((r.status, (r.json or {}).get('trade_state')), (200, 'NOTPAY'),
            '/_sim/order registers an unpaid order')

    r, f, good = call(sim, '/pay/orderquery', 'wxshop', paid)
    tap.is_((r.status, r.content_type), (200, 'text/xml'),
            'orderquery: HTTP 200 text/xml')
    tap.ok(good, 'orderquery (paid): the answer is signed (MD5)', r.describe())
    f = f or {}
    tap.is_((f.get('return_code'), f.get('result_code'), f.get('trade_state'),
             f.get('transaction_id'), f.get('total_fee'),
             f.get('out_trade_no'), f.get('time_end'), f.get('appid'),
             f.get('mch_id')),
            ('SUCCESS', 'SUCCESS', 'SUCCESS', txn, '123', paid,
             '20250101120000', PROFILES['wxshop']['appid'],
             PROFILES['wxshop']['mch_id']),
            'orderquery (paid): the payment from the ledger')
    tap.ok(b'<total_fee>123</total_fee>' in r.body,
           'orderquery: total_fee written bare, as WeChat does')

    query, close = '/pay/orderquery', '/pay/closeorder'
    check_answer(tap, sim, query, 'wxshop', unpaid,
                 {'trade_state': 'NOTPAY', 'result_code': 'SUCCESS'},
                 'orderquery (unpaid): NOTPAY, signed',
                 absent=('transaction_id',))
    check_answer(tap, sim, query, 'wxshop', unknown,
                 {'result_code': 'FAIL', 'err_code': 'ORDERNOTEXIST'},
                 'orderquery (unknown): ORDERNOTEXIST, signed')
    check_answer(tap, sim, query, 'wxhmac', paid,
                 {'err_code': 'ORDERNOTEXIST'},
                 "orderquery from another merchant: ORDERNOTEXIST, signed "
                 "with that merchant's key (HMAC-SHA256)")

    f = check_answer(tap, sim, query, 'wxshop', paid,
                     {'return_code': 'SUCCESS', 'result_code': 'FAIL',
                      'err_code': 'SIGNERROR'},
                     'orderquery with a bad sign: SIGNERROR, properly '
                     'signed', key='00000000000000000000000000000000')
    tap.ok('trade_state' not in f, 'SIGNERROR tells nothing')
    # WeChat takes the algorithm a request names and answers with it.
    check_answer(tap, sim, query, 'wxshop', unpaid, {'trade_state': 'NOTPAY'},
                 'HMAC-SHA256 request of the MD5 merchant: answered, signed '
                 'with HMAC-SHA256', alg='HMAC-SHA256')

    # closeorder
    for path, oid, want, name in (
            (close, paid, {'result_code': 'FAIL', 'err_code': 'ORDERPAID'},
             'closeorder (paid): ORDERPAID'),
            (close, unpaid, {'return_code': 'SUCCESS',
                             'result_code': 'SUCCESS'},
             'closeorder (unpaid): SUCCESS, signed'),
            (query, unpaid, {'trade_state': 'CLOSED'},
             'orderquery (closed): CLOSED'),
            (close, unpaid, {'err_code': 'ORDERCLOSED'},
             'closeorder (closed): ORDERCLOSED'),
            (close, unknown, {'err_code': 'ORDERNOTEXIST'},
             'closeorder (unknown): ORDERNOTEXIST')):
        check_answer(tap, sim, path, 'wxshop', oid, want, name)
    led = sim.ledger()['orders'].get(unpaid, {})
    tap.is_((led.get('trade_state'), led.get('closed'), led.get('txn_ids')),
            ('CLOSED', True, []), 'ledger: the unpaid order is closed')
    r = sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': unpaid,
                                  'amount': 50})
    tap.is_(r.status, 409, '/_sim/pay on a closed order: 409')

    # HMAC-SHA256 merchant.
    oid = 'Q4-' + os.urandom(4).hex()
    r = sim.control('/_sim/pay', {'profile': 'wxhmac', 'order_id': oid,
                                  'amount': 9, 'notify': {'drop_all': True}})
    check_answer(tap, sim, query, 'wxhmac', oid, {'trade_state': 'SUCCESS'},
                 'orderquery (HMAC-SHA256): signed with HMAC, no sign_type '
                 'in the answer', absent=('sign_type',))

    st = sim.stats()
    tap.is_(st.get('by_order', {}).get(paid), {'query': 3, 'close': 1},
            'stats: queries and closes of the paid order')
    tap.is_(st.get('by_order', {}).get(unpaid), {'query': 3, 'close': 2},
            'stats: queries and closes of the unpaid order')
    per = st.get('by_order', {}).values()
    tap.is_(st.get('total'), {'query': sum(c['query'] for c in per),
                              'close': sum(c['close'] for c in per)},
            'stats: the totals add up', repr(st))
    tap.is_(st.get('total'), {'query': 8, 'close': 4},
            'stats: 8 queries and 4 closes so far')

    # Modes.
    r = sim.control('/_sim/mode', {'query': 'down'})
    tap.is_(r.status, 200, 'mode query down')
    r, f, good = call(sim, '/pay/orderquery', 'wxshop', paid)
    tap.is_(r.status, 503, 'query down: HTTP 503')
    r, f, good = call(sim, '/pay/closeorder', 'wxshop', paid)
    tap.ok(good and f.get('err_code') == 'ORDERPAID',
           'query down leaves close working')
    sim.control('/_sim/mode', {'query': 'garbage', 'close': 'hangup'})
    r, f, good = call(sim, '/pay/orderquery', 'wxshop', paid)
    tap.ok(r.status == 200 and f is None and r.body,
           'query garbage: 200 with bytes that are not XML', r.describe())
    r, f, good = call(sim, '/pay/closeorder', 'wxshop', paid)
    tap.ok(r.status is None and r.error, 'close hangup: no answer',
           r.describe())
    sim.control('/_sim/mode', {'query': 'slow', 'slow_s': 0.5,
                               'close': 'ok'})
    t0 = time.time()
    r, f, good = call(sim, '/pay/orderquery', 'wxshop', paid)
    took = time.time() - t0
    tap.ok(good and took >= 0.45, 'query slow: a signed answer after the '
           'wait (%.2f s)' % took)
    r = sim.control('/_sim/mode', {'query': 'ok', 'slow_s': 10})
    tap.is_(r.json, {'query': 'ok', 'close': 'ok', 'notify': 'ok',
                     'slow_s': 10.0}, 'modes back to ok')
    r = sim.control('/_sim/mode', {'query': 'sideways'})
    tap.is_(r.status, 400, 'unknown mode: 400')
    r = sim.control('/_sim/pay', {'profile': 'nope', 'order_id': 'x',
                                  'amount': 1})
    tap.is_(r.status, 400, 'unknown profile: 400')
    r = sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': 'x',
                                  'amount': '1'})
    tap.is_(r.status, 400, 'amount as a string: 400')


def test_payhook_queries(tap, sim, inst):
    """payhook's own query of a payment whose notifications were lost."""
    oid = 'P1-' + os.urandom(4).hex()
    inst.create_order(oid, 321)
    r = sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': oid,
                                  'amount': 321,
                                  'notify': {'drop_all': True}})
    txn = (r.json or {}).get('txn_id')
    before = (sim.stats().get('by_order', {}).get(oid) or {}).get('query', 0)
    r = inst.api('POST', '/orders/%s/query' % oid)
    tap.is_(r.status, 200, 'payhook POST /orders/<id>/query', r.describe())
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')), ('PAID', txn),
            'payhook learnt the lost payment from the simulator')
    after = (sim.stats().get('by_order', {}).get(oid) or {}).get('query', 0)
    tap.is_(after - before, 1, 'the simulator received one query')


def bill_xml(profile, day, key=None, bill_type='ALL'):
    p = PROFILES[profile]
    alg = p['sign_type']
    f = [('appid', p['appid']), ('mch_id', p['mch_id']),
         ('nonce_str', os.urandom(16).hex()), ('bill_date', day),
         ('bill_type', bill_type)]
    if alg != 'MD5':
        f.append(('sign_type', alg))
    f.append(('sign', sign(f, key or p['key'], alg)))
    return harness.notify_xml(f)


def test_bill_api(tap, sim):
    """POST /pay/downloadbill: the bill /_sim/statement shows, as text, or
    the unsigned FAIL XML of a day without a bill."""
    oid = 'B1-' + os.urandom(4).hex()
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': oid,
                              'amount': 321, 'time_end': '20250102120000',
                              'notify': {'drop_all': True}})
    calls = (sim.stats().get('bills') or {}).get('calls', 0)
    r = sim.request('POST', '/pay/downloadbill',
                    bill_xml('wxshop', '20250102'),
                    {'Content-Type': 'text/xml'})
    want = sim.request('GET', '/_sim/statement?profile=wxshop&'
                       'date=2025-01-02')
    tap.ok(r.status == 200 and r.body == want.body and
           r.content_type.startswith('text/plain'),
           'downloadbill: the bill of that day, as /_sim/statement has it, '
           'text/plain', r.describe())
    tap.ok(oid.encode() in r.body and b'`3.21,' in r.body,
           'downloadbill: the payment is in it')
    r = sim.request('POST', '/pay/downloadbill',
                    bill_xml('wxshop', '19990101'),
                    {'Content-Type': 'text/xml'})
    f = dict(parse_xml(r.body) or [])
    tap.is_((r.status, f.get('return_code'), f.get('return_msg'),
             f.get('error_code'), 'sign' in f),
            (200, 'FAIL', 'No Bill Exist', '20002', False),
            'downloadbill of a day without payments: FAIL No Bill Exist, '
            'unsigned')
    r = sim.request('POST', '/pay/downloadbill',
                    bill_xml('wxshop', '20250102', key='x' * 32),
                    {'Content-Type': 'text/xml'})
    f = dict(parse_xml(r.body) or [])
    tap.is_((f.get('return_code'), f.get('return_msg')),
            ('FAIL', 'SIGN ERROR'), 'downloadbill with a bad signature: '
            'FAIL, no bill')
    r = sim.request('POST', '/pay/downloadbill',
                    bill_xml('wxshop', '20250102', bill_type='SUCCESS'),
                    {'Content-Type': 'text/xml'})
    tap.is_(dict(parse_xml(r.body) or []).get('return_code'), 'FAIL',
            'downloadbill of another bill_type: FAIL')
    tap.is_((sim.stats().get('bills') or {}).get('calls'), calls + 4,
            'stats count the bill calls')


def main(tap):
    sim = harness.Simulator(tap, time_factor=1000).start()
    tap.ok(sim.port, 'provsim prints "provsim listening on '
           '127.0.0.1:PORT"', harness.Simulator.read(sim.stdout_log))
    inst = harness.SimInstance(tap, 'sim', sim_port=sim.port)
    inst.start()
    sim.point_at(inst)

    test_notify(tap, sim, inst)
    test_api(tap, sim)
    test_bill_api(tap, sim)
    test_payhook_queries(tap, sim, inst)
    test_schedule(tap)
    inst.stop()
    tap.is_(sim.stop(), 0, 'SIGTERM: the simulator stops cleanly')
    log = harness.Simulator.read(sim.log)
    tap.ok('stopped' in log.splitlines()[-1] if log else False,
           'the log ends with the stop')


if __name__ == '__main__':
    harness.run(main)
