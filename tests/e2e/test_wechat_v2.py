"""WeChat Pay v2 notifications end to end: lighttpd in front of two
payhook.fcgi processes sharing one LMDB file.

Covers: the SUCCESS acknowledgement byte for byte; idempotent duplicates;
forged, mis-addressed and downgraded notifications refused without a trace;
HMAC-SHA256 profiles; amount/currency mismatch, double payment, unknown
order and failed payment recorded as facts; DOCTYPE/XXE refused and never
fetched; 200 orders paid concurrently; 16 copies of one notification at
once; body size limit; durability across processes (read back with the
`payhook` command after lighttpd has stopped).
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (SUCCESS_ACK, check_ack, is_rfc3339_utc,  # noqa: E402
                     make_payment, notify_xml, txn_id)


def new_events(inst, base):
    return inst.all_events(base)


def types_of(evs):
    return [e.get('type') for e in evs]


def check_nothing_changed(tap, inst, name, order_id, before, base):
    """The order is exactly as it was and no event was added."""
    tap.is_(inst.order(order_id), before, '%s: order %s unchanged'
            % (name, order_id))
    tap.is_(types_of(new_events(inst, base)), [],
            '%s: no new event' % name)


def test_signer(tap):
    # The helper itself, on WeChat's published example (doc/design/protocols.md TV-1, TV-2).
    f = {'appid': 'wxd930ea5d5a258f4f', 'mch_id': '10000100',
         'device_info': '1000', 'body': 'test',
         'nonce_str': 'ibuaiVcKdpRxkhJA'}
    key = '192006250b4c09247ec02edce69f6a2d'
    tap.is_(harness.sign_v2(f, key, 'MD5'),
            '9A0A8659F005D6984697E2CA0A9CF3B7',
            'test signer reproduces the official MD5 example')
    tap.is_(harness.sign_v2(f, key, 'HMAC-SHA256'),
            '6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6',
            'test signer reproduces the official HMAC-SHA256 example')


def notify_as_provider(inst, bodies, ids):
    """Sends bodies[x] for every x in ids, 16 at a time, as a provider
    does: what is not acknowledged SUCCESS is sent again, five times at
    the most, half a second apart (while lighttpd brings its backends
    back it may answer 503 for a moment).  Returns the ids whose last
    answer was not SUCCESS, each with that answer."""
    def send(x):
        for _ in range(5):
            r = inst.notify(bodies[x])
            if (r.status, r.body) == (200, SUCCESS_ACK):
                break
            time.sleep(0.5)
        return r
    res = harness.parallel(send, ids, 16)
    return ['%s: %s' % (x, r.describe()) for x, r in zip(ids, res)
            if (r.status, r.body) != (200, SUCCESS_ACK)]


def check_exception(tap, order, kind, fact, name, what):
    """The order's exceptions are one of kind, recording fact
    ((provider_txn_id, amount, currency)).  Returns that exception, or
    None when there is none."""
    exc = order.get('exceptions') or []
    tap.is_([e.get('type') for e in exc], [kind],
            '%s: exception recorded' % name)
    if not exc:
        return None
    tap.is_((exc[0].get('provider_txn_id'), exc[0].get('amount'),
             exc[0].get('currency')), fact, '%s exception: %s' % (kind, what))
    return exc[0]


def check_event(tap, ev, name, **want):
    for k, v in want.items():
        tap.is_(ev.get(k), v, '%s: event %s' % (name, k))
    tap.ok(isinstance(ev.get('seq'), int) and ev['seq'] > 0,
           '%s: event seq is a positive integer' % name, repr(ev))
    tap.ok(is_rfc3339_utc(ev.get('at')), '%s: event at is RFC 3339 UTC'
           % name, repr(ev.get('at')))


def promotion_detail(chars):
    """A 单品优惠 promotion_detail (JSON, names in Chinese) of as many
    promotions as fit in chars characters."""
    one = ('{"promotion_id":"10980%05d","name":"单品惠-%d","scope":"SINGLE",'
           '"type":"DISCOUNT","amount":1,"activity_id":"10000",'
           '"wxpay_contribute":0,"merchant_contribute":1,'
           '"other_contribute":0,"goods_detail":[{"goods_id":"a%d",'
           '"goods_remark":"商品备注信息","quantity":1,"price":100,'
           '"discount_amount":1}]}')
    items = []
    while True:
        text = '{"promotion_detail":[%s]}' % ','.join(
            items + [one % ((len(items),) * 3)])
        if len(text) > chars:
            return '{"promotion_detail":[%s]}' % ','.join(items)
        items.append(one % ((len(items),) * 3))


def test_promotions(tap, inst):
    """WeChat sends promotion_detail, String(6000), with every payment of
    an order made with version=1.0: the longest it may be is taken."""
    oid = 'WP-' + os.urandom(4).hex()
    inst.create_order(oid, 100)
    pd = promotion_detail(6000)
    r = inst.notify(notify_xml(make_payment(oid, 100, txn_id('wp'), extra={
        'version': '1.0', 'promotion_detail': pd})))
    check_ack(tap, r, 'SUCCESS', 'a promotion_detail of %d characters '
              '(%d bytes)' % (len(pd), len(pd.encode())))
    tap.is_((inst.order(oid) or {}).get('state'), 'PAID', '... the order '
            'is paid')


def main(tap):
    test_signer(tap)

    inst = harness.Instance(tap, 'wechat', max_procs=2)
    srv = inst.start()
    backends = srv.backend_pids()
    tap.ok(len(backends) >= 2, 'lighttpd runs >= 2 payhook.fcgi processes',
           'backend pids: %r' % backends)

    r = inst.request('GET', '/healthz')
    tap.is_((r.status, (r.json or {}).get('status')), (200, 'ok'),
            'GET /healthz')

    base = inst.last_seq()
    tap.is_(base, 0, 'the event feed of a new store is empty')

    # ---- the happy path ------------------------------------------------
    oid = 'W1-' + os.urandom(4).hex()
    r = inst.create_order(oid, 100)
    tap.is_(r.status, 201, 'create order %s: 201' % oid, r.describe())
    o = r.json or {}
    harness.check_order_keys(tap, o, 'order JSON')
    tap.is_((o.get('state'), o.get('paid_at'), o.get('provider_txn_id'),
             o.get('exceptions')), ('PENDING', None, None, []),
            'new order: PENDING, not paid, no exceptions')

    t1 = txn_id('w1')
    fields = make_payment(oid, 100, t1)
    body = notify_xml(fields)
    r = inst.notify(body)
    check_ack(tap, r, 'SUCCESS', 'MD5 notification')
    tap.diag('ack Content-Type: %s' % r.content_type)
    o1 = inst.order(oid) or {}
    tap.is_(o1.get('state'), 'PAID', 'order PAID after the notification',
            repr(o1))
    tap.is_(o1.get('provider_txn_id'), t1, 'order carries transaction_id')
    tap.ok(is_rfc3339_utc(o1.get('paid_at')), 'paid_at is RFC 3339 UTC',
           repr(o1.get('paid_at')))
    tap.ok(is_rfc3339_utc(o1.get('updated_at')), 'updated_at is RFC 3339 UTC')
    tap.is_(o1.get('exceptions'), [], 'no exceptions on a clean payment')
    tap.is_((o1.get('amount'), o1.get('currency'), o1.get('profile')),
            (100, 'CNY', 'wxshop'), 'amount, currency, profile kept')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['order.paid'], 'exactly one order.paid event')
    if evs:
        check_event(tap, evs[0], 'order.paid', order_id=oid, profile='wxshop',
                    provider='wechat', provider_txn_id=t1, amount=100,
                    currency='CNY', source='notify')
    base = evs[-1]['seq'] if evs else base

    # ---- the same notification again, three times --------------------
    for i in range(3):
        r = inst.notify(body)
        check_ack(tap, r, 'SUCCESS', 'duplicate %d' % (i + 1))
    check_nothing_changed(tap, inst, 'duplicates', oid, o1, base)

    # ---- forged and mis-addressed notifications ----------------------
    oid2 = 'W2-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oid2, 100).status, 201, 'create order %s' % oid2)
    before2 = inst.order(oid2)

    f = make_payment(oid2, 100, txn_id('forged'))
    f['sign'] = ('0' if f['sign'][0] != '0' else '1') + f['sign'][1:]
    check_ack(tap, inst.notify(f), 'FAIL', 'forged signature')
    check_nothing_changed(tap, inst, 'forged signature', oid2, before2, base)

    f = make_payment(oid2, 100, txn_id('wrongkey'),
                     key='00000000000000000000000000000000')
    check_ack(tap, inst.notify(f), 'FAIL', 'signed with another key')

    f = make_payment(oid2, 1, txn_id('tamper'))
    f['total_fee'] = 100                    # changed after signing
    check_ack(tap, inst.notify(f), 'FAIL', 'field altered after signing')

    f = make_payment(oid2, 100, txn_id('nosign'), sign=False)
    check_ack(tap, inst.notify(f), 'FAIL', 'no sign field')

    f = make_payment(oid2, 100, txn_id('appid'), appid='wx0000000000000000')
    check_ack(tap, inst.notify(f), 'FAIL', 'wrong appid, valid signature')

    f = make_payment(oid2, 100, txn_id('mch'), mch_id='19999999')
    check_ack(tap, inst.notify(f), 'FAIL', 'wrong mch_id, valid signature')

    # The MD5 profile refuses an HMAC-signed notification (no downgrade or
    # upgrade: the algorithm comes from the profile).
    f = make_payment(oid2, 100, txn_id('hmac-on-md5'), sign_type='HMAC-SHA256')
    check_ack(tap, inst.notify(f), 'FAIL',
              'HMAC-SHA256 notification on the MD5 profile')

    # The notification for the HMAC profile sent to the MD5 profile's URL.
    f = make_payment(oid2, 100, txn_id('crossprofile'), profile='wxhmac')
    check_ack(tap, inst.notify(f, profile='wxshop'), 'FAIL',
              "another profile's notification on /notify/wxshop")
    check_nothing_changed(tap, inst, 'after all refusals', oid2, before2,
                          base)

    # ---- HMAC-SHA256 profile -------------------------------------------
    oidh = 'H1-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidh, 250, profile='wxhmac').status, 201,
            'create order %s on the HMAC profile' % oidh)
    beforeh = inst.order(oidh)
    f = make_payment(oidh, 250, txn_id('md5'), profile='wxhmac',
                     sign_type='MD5')
    check_ack(tap, inst.notify(f, 'wxhmac'), 'FAIL',
              'MD5 notification (no sign_type) on the HMAC profile')
    f = make_payment(oidh, 250, txn_id('md5'), profile='wxhmac',
                     sign_type='MD5', sign_type_field='MD5')
    check_ack(tap, inst.notify(f, 'wxhmac'), 'FAIL',
              'MD5 notification (sign_type=MD5) on the HMAC profile')
    f = make_payment(oidh, 250, txn_id('md5'), profile='wxhmac',
                     sign_type='MD5', sign_type_field='HMAC-SHA256')
    check_ack(tap, inst.notify(f, 'wxhmac'), 'FAIL',
              'sign_type=HMAC-SHA256 with an MD5 sign on the HMAC profile')
    f = make_payment(oidh, 250, txn_id('hmac-no-type'), profile='wxhmac',
                     sign_type_field=None)
    check_ack(tap, inst.notify(f, 'wxhmac'), 'FAIL',
              'HMAC sign without the sign_type field')
    check_nothing_changed(tap, inst, 'HMAC profile refusals', oidh, beforeh,
                          base)

    th = txn_id('hmac')
    f = make_payment(oidh, 250, th, profile='wxhmac')
    check_ack(tap, inst.notify(f, 'wxhmac'), 'SUCCESS',
              'HMAC-SHA256 notification on the HMAC profile')
    oh = inst.order(oidh) or {}
    tap.is_((oh.get('state'), oh.get('provider_txn_id')), ('PAID', th),
            'HMAC order PAID with its transaction id')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['order.paid'], 'one order.paid for the HMAC order')
    if evs:
        tap.is_((evs[0].get('order_id'), evs[0].get('profile')),
                (oidh, 'wxhmac'), 'event names the order and HMAC profile')
        base = evs[-1]['seq']

    # An order of the HMAC profile (merchant 10000200) paid through the MD5
    # profile (merchant 10000100), validly signed for the latter: the money
    # went to another merchant account, the order must not become PAID.
    oidx2 = 'XP-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidx2, 100, profile='wxhmac').status, 201,
            'create order %s on the HMAC profile' % oidx2)
    r, _ = inst.pay(oidx2, 100, txn_id('cross'), profile='wxshop')
    tap.is_(r.status, 200, 'payment through another profile: HTTP 200',
            r.describe())
    ox2 = inst.order(oidx2) or {}
    tap.is_((ox2.get('state'), ox2.get('provider_txn_id')), ('PENDING', None),
            "payment through another profile does not pay the order")
    evs = new_events(inst, base)
    tap.ok('order.paid' not in types_of(evs),
           'payment through another profile: no order.paid event',
           repr(types_of(evs)))
    tap.diag('payment through another profile: events %r, exceptions %r'
             % (types_of(evs), ox2.get('exceptions')))
    base = evs[-1]['seq'] if evs else base

    # ---- amount mismatch -----------------------------------------------
    oidm = 'M1-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidm, 100000).status, 201,
            'create order %s for 1000.00' % oidm)
    tm = txn_id('mismatch')
    r, _ = inst.pay(oidm, 1, tm)
    check_ack(tap, r, 'SUCCESS', 'amount mismatch (1 fen for 100000)')
    om = inst.order(oidm) or {}
    tap.is_(om.get('state'), 'PENDING', 'amount mismatch: order stays PENDING')
    tap.is_(om.get('provider_txn_id'), None,
            'amount mismatch: no paying transaction recorded on the order')
    exc = check_exception(tap, om, 'amount_mismatch', (tm, 1, 'CNY'),
                          'amount mismatch', 'txn, amount, currency')
    if exc is not None:
        tap.ok(is_rfc3339_utc(exc.get('at')), 'exception at is RFC 3339')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['order.amount_mismatch'],
            'amount mismatch: order.amount_mismatch event')
    if evs:
        check_event(tap, evs[0], 'order.amount_mismatch', order_id=oidm,
                    provider_txn_id=tm, amount=1, currency='CNY')
        base = evs[-1]['seq']
    r, _ = inst.pay(oidm, 1, tm)
    check_ack(tap, r, 'SUCCESS', 'amount mismatch repeated')
    tap.is_(types_of(new_events(inst, base)), [],
            'amount mismatch repeated: no new event')
    tap.is_(len((inst.order(oidm) or {}).get('exceptions') or []), 1,
            'amount mismatch repeated: still one exception')

    # ---- currency mismatch -----------------------------------------------
    oidc = 'C1-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidc, 300).status, 201, 'create order %s' % oidc)
    tc = txn_id('usd')
    r, _ = inst.pay(oidc, 300, tc, currency='USD')
    check_ack(tap, r, 'SUCCESS', 'currency mismatch (USD for CNY)')
    oc = inst.order(oidc) or {}
    tap.is_(oc.get('state'), 'PENDING', 'currency mismatch: order PENDING')
    tap.is_([e.get('type') for e in oc.get('exceptions') or []],
            ['amount_mismatch'], 'currency mismatch: amount_mismatch exception')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['order.amount_mismatch'],
            'currency mismatch: order.amount_mismatch event')
    if evs:
        tap.is_(evs[0].get('currency'), 'USD', 'event carries the notified '
                'currency')
        base = evs[-1]['seq']

    # ---- double payment --------------------------------------------------
    t2 = txn_id('double')
    r, _ = inst.pay(oid, 100, t2)
    check_ack(tap, r, 'SUCCESS', 'second payment of a PAID order')
    od = inst.order(oid) or {}
    tap.is_((od.get('state'), od.get('provider_txn_id'), od.get('paid_at')),
            ('PAID', t1, o1.get('paid_at')),
            'double payment: order stays PAID with the first transaction')
    check_exception(tap, od, 'double_payment', (t2, 100, 'CNY'),
                    'double payment', 'second txn, amount, currency')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['order.double_payment'],
            'double payment: order.double_payment event')
    if evs:
        check_event(tap, evs[0], 'order.double_payment', order_id=oid,
                    provider_txn_id=t2, amount=100)
        base = evs[-1]['seq']
    r, _ = inst.pay(oid, 100, t2)
    check_ack(tap, r, 'SUCCESS', 'double payment notified again')
    tap.is_(types_of(new_events(inst, base)), [],
            'double payment notified again: no new event')
    # The first notification still acknowledged, still nothing new.
    check_ack(tap, inst.notify(body), 'SUCCESS', 'first notification again')
    tap.is_(types_of(new_events(inst, base)), [],
            'first notification again: no new event')

    # The same payment re-sent with a fresh nonce_str (a provider retry that
    # is not byte-identical) is the same fact: acknowledged, nothing new.
    r, _ = inst.pay(oid, 100, t1)
    check_ack(tap, r, 'SUCCESS', 'same payment, new nonce_str')
    tap.is_(types_of(new_events(inst, base)), [],
            'same payment, new nonce_str: no new event')
    tap.is_((inst.order(oid) or {}).get('exceptions'), od.get('exceptions'),
            'same payment, new nonce_str: no new exception')

    # The same transaction_id with a different amount, validly signed: not a
    # duplicate but a conflict, raised.
    r, _ = inst.pay(oid, 200, t1)
    tap.ok(r.status == 200 and (r.body == SUCCESS_ACK or FAIL_RE_MATCH(r.body)),
           'conflicting notification: answered with a WeChat ack',
           r.describe())
    evs = harness.check_conflict(tap, inst, oid, base, ('PAID', t1, 100),
                                 'conflicting notification')
    base = evs[-1]['seq'] if evs else base

    # ---- unknown order -------------------------------------------------
    oidu = 'U1-' + os.urandom(4).hex()
    tu = txn_id('unknown')
    r, _ = inst.pay(oidu, 500, tu)
    check_ack(tap, r, 'SUCCESS', 'payment for an unknown order')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['payment.unknown_order'],
            'unknown order: payment.unknown_order event')
    if evs:
        check_event(tap, evs[0], 'payment.unknown_order', order_id=oidu,
                    provider_txn_id=tu, amount=500, currency='CNY',
                    profile='wxshop', provider='wechat')
        base = evs[-1]['seq']
    tap.is_(inst.get_order(oidu).status, 404,
            'unknown order: no order was invented')
    r, _ = inst.pay(oidu, 500, tu)
    check_ack(tap, r, 'SUCCESS', 'unknown order notified again')
    tap.is_(types_of(new_events(inst, base)), [],
            'unknown order notified again: no new event')

    # ---- result_code FAIL ---------------------------------------------
    oidf = 'F1-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidf, 700).status, 201, 'create order %s' % oidf)
    beforef = inst.order(oidf)
    r, _ = inst.pay(oidf, 700, txn_id('fail'), result_code='FAIL')
    check_ack(tap, r, 'SUCCESS', 'validly signed result_code=FAIL')
    tap.is_(inst.order(oidf), beforef, 'result FAIL: order unchanged')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['payment.failed'],
            'result FAIL: payment.failed event')
    if evs:
        tap.is_(evs[0].get('order_id'), oidf, 'payment.failed names the order')
        base = evs[-1]['seq']
    # The order can still be paid afterwards.
    tf = txn_id('after-fail')
    r, _ = inst.pay(oidf, 700, tf)
    check_ack(tap, r, 'SUCCESS', 'payment after a failed attempt')
    tap.is_((inst.order(oidf) or {}).get('state'), 'PAID',
            'order PAID after a failed attempt')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['order.paid'], 'order.paid after a failed attempt')
    base = evs[-1]['seq'] if evs else base
    # A failure of the transaction that paid it changes nothing: the
    # provider contradicts itself (a conflict), and no payment.failed
    # tells the merchant to stop a paid order.
    r, _ = inst.pay(oidf, 700, tf, result_code='FAIL')
    check_ack(tap, r, 'SUCCESS', 'result_code=FAIL for the transaction that '
              'paid the order')
    tap.is_((inst.order(oidf) or {}).get('state'), 'PAID', '... still PAID')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['notification.conflict'], '... raised as a '
            'notification.conflict, not payment.failed')
    base = evs[-1]['seq'] if evs else base
    # One transaction reported failed, then paid: it pays the order.
    oidg = 'F2-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidg, 700).status, 201, 'create order %s' % oidg)
    tg = txn_id('fail-then-paid')
    r, _ = inst.pay(oidg, 700, tg, result_code='FAIL')
    check_ack(tap, r, 'SUCCESS', 'a transaction reported FAIL')
    r, _ = inst.pay(oidg, 700, tg)
    check_ack(tap, r, 'SUCCESS', '... then SUCCESS')
    tap.is_((inst.order(oidg) or {}).get('state'), 'PAID',
            '... the order is PAID by it')
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['payment.failed', 'order.paid'],
            '... payment.failed, then order.paid')
    base = evs[-1]['seq'] if evs else base

    # ---- DOCTYPE / XXE -----------------------------------------------------
    oidx = 'X1-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidx, 100).status, 201, 'create order %s' % oidx)
    beforex = inst.order(oidx)
    listener = harness.LoopbackListener()
    try:
        good = notify_xml(make_payment(oidx, 100, txn_id('xxe')))
        inner = good[len(b'<xml>'):]
        variants = {
            'external file entity':
                b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM '
                b'"file:///etc/passwd">]><xml><attach>&x;</attach>' + inner,
            'external http entity (loopback listener)':
                b'<!DOCTYPE xml [<!ENTITY x SYSTEM "http://127.0.0.1:%d/x">]>'
                % listener.port + b'<xml><attach>&x;</attach>' + inner,
            'parameter entity (loopback listener)':
                b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:'
                + str(listener.port).encode() + b'/p.dtd"> %p;]><xml>' + inner,
            'billion laughs':
                b'<!DOCTYPE xml [<!ENTITY a "AAAAAAAAAA">'
                + b''.join(b'<!ENTITY %s "%s">' % (
                    bytes([c]), (b'&' + bytes([c - 1]) + b';') * 10)
                    for c in range(ord('b'), ord('j') + 1))
                + b']><xml><attach>&j;</attach>' + inner,
            'valid signed body behind a DOCTYPE':
                b'<!DOCTYPE xml>' + good,
            'XInclude':
                b'<xml xmlns:xi="http://www.w3.org/2001/XInclude">'
                b'<attach><xi:include href="file:///etc/passwd" parse="text"/>'
                b'</attach>' + inner,
        }
        for name, payload in variants.items():
            t0 = time.time()
            r = inst.notify(payload)
            check_ack(tap, r, 'FAIL', 'DOCTYPE/XXE: ' + name)
            tap.ok(b'root:' not in r.body, 'DOCTYPE/XXE: %s: no file content '
                   'echoed' % name)
            tap.ok(time.time() - t0 < 2.0, 'DOCTYPE/XXE: %s: answered fast'
                   % name, '%.3fs' % (time.time() - t0))
        time.sleep(0.3)
        tap.is_(listener.connections, 0,
                'no external entity was fetched (loopback listener untouched)')
    finally:
        listener.close()
    check_nothing_changed(tap, inst, 'DOCTYPE/XXE', oidx, beforex, base)

    # ---- 16 copies of one notification at once ---------------------------
    oidd = 'D16-' + os.urandom(4).hex()
    tap.is_(inst.create_order(oidd, 900).status, 201, 'create order %s' % oidd)
    td = txn_id('dup16')
    dbody = notify_xml(make_payment(oidd, 900, td))
    res = harness.parallel(lambda _i: inst.notify(dbody), range(16), 16)
    bad = [r.describe() for r in res if (r.status, r.body) != (200, SUCCESS_ACK)]
    tap.ok(not bad, '16 concurrent copies: all SUCCESS', *bad[:5])
    evs = new_events(inst, base)
    tap.is_(types_of(evs), ['order.paid'],
            '16 concurrent copies: exactly one order.paid event')
    tap.is_((inst.order(oidd) or {}).get('provider_txn_id'), td,
            '16 concurrent copies: order PAID once with the txn')
    base = evs[-1]['seq'] if evs else base

    # ---- two different payments of one order at the same moment ---------
    for round_ in range(3):
        oidr = 'R%d-%s' % (round_, os.urandom(4).hex())
        inst.create_order(oidr, 400)
        ta, tb = txn_id('ra'), txn_id('rb')
        ba = notify_xml(make_payment(oidr, 400, ta))
        bb = notify_xml(make_payment(oidr, 400, tb))
        res = harness.parallel(lambda b_: inst.notify(b_), [ba, bb, ba, bb], 4)
        tap.ok(all((r.status, r.body) == (200, SUCCESS_ACK) for r in res),
               'race %d: two payments at once, all SUCCESS' % round_,
               *[r.describe() for r in res])
        orr = inst.order(oidr) or {}
        evs = new_events(inst, base)
        tap.is_(sorted(types_of(evs)), ['order.double_payment', 'order.paid'],
                'race %d: one order.paid and one order.double_payment'
                % round_)
        paid_ev = [e for e in evs if e.get('type') == 'order.paid']
        dbl_ev = [e for e in evs if e.get('type') == 'order.double_payment']
        if paid_ev and dbl_ev:
            tap.is_((orr.get('state'), orr.get('provider_txn_id')),
                    ('PAID', paid_ev[0].get('provider_txn_id')),
                    'race %d: the order keeps the txn of order.paid' % round_)
            tap.is_([(e.get('type'), e.get('provider_txn_id')) for e in
                     orr.get('exceptions') or []],
                    [('double_payment', dbl_ev[0].get('provider_txn_id'))],
                    'race %d: the other txn is the double_payment' % round_)
        base = evs[-1]['seq'] if evs else base

    # ---- 200 orders paid concurrently ----------------------------------
    n = 200
    tag = os.urandom(3).hex()
    ids = ['P%s-%03d' % (tag, i) for i in range(n)]
    created = harness.parallel(lambda oid_: inst.create_order(oid_, 1000 + int(
        oid_[-3:])), ids, 16)
    bad = [r.describe() for r in created if r.status != 201]
    tap.ok(not bad, '%d orders created concurrently: all 201' % n, *bad[:5])
    base_conc = inst.last_seq()
    txns = {oid_: txn_id(oid_) for oid_ in ids}
    bodies = {oid_: notify_xml(make_payment(oid_, 1000 + int(oid_[-3:]),
                                            txns[oid_])) for oid_ in ids}
    # A merchant reading the feed while the payments land: following
    # `next`, it must see every event once, none skipped.
    import threading
    stop_reading = threading.Event()
    read, read_errors = [], []

    def feed_reader():
        cur = base_conc
        while True:
            r = inst.events(after=cur, limit=7)
            if r.status != 200 or not isinstance(r.json, dict):
                read_errors.append(r.describe())
                if len(read_errors) > 20:
                    return
                time.sleep(0.01)
                continue
            evs_ = r.json.get('events') or []
            if evs_:
                read.extend(evs_)
                cur = r.json.get('next')
            elif stop_reading.is_set():
                return
    reader = threading.Thread(target=feed_reader, daemon=True)
    reader.start()
    t0 = time.time()
    res = harness.parallel(lambda oid_: inst.notify(bodies[oid_]), ids, 16)
    tap.diag('%d notifications on 16 threads: %.2fs' % (n, time.time() - t0))
    stop_reading.set()
    reader.join(60)
    bad = ['%s: %s' % (i, r.describe()) for i, r in zip(ids, res)
           if (r.status, r.body) != (200, SUCCESS_ACK)]
    tap.ok(not bad, '%d concurrent notifications: all SUCCESS' % n, *bad[:5])
    orders = harness.parallel(inst.order, ids, 16)
    notpaid = ['%s: %r' % (i, (o or {}).get('state')) for i, o in
               zip(ids, orders)
               if not o or o.get('state') != 'PAID'
               or o.get('provider_txn_id') != txns[i]]
    tap.ok(not notpaid, 'every one of the %d orders is PAID with its txn' % n,
           *notpaid[:5])
    evs = new_events(inst, base_conc)
    tap.is_(len(evs), n, 'exactly %d new events' % n)
    tap.ok(all(e.get('type') == 'order.paid' for e in evs),
           'all of them order.paid', repr(sorted(set(types_of(evs)))))
    ev_ids = [e.get('order_id') for e in evs]
    tap.is_(sorted(ev_ids), sorted(ids), 'each order_id exactly once in the feed')
    seqs = [e.get('seq') for e in evs]
    tap.ok(seqs == sorted(set(seqs)), 'event seqs strictly increasing')
    tap.ok(not read_errors, 'feed read during the burst: no error',
           *read_errors[:3])
    tap.is_([e.get('seq') for e in read], seqs,
            'feed read during the burst (limit=7, following next): every '
            'event exactly once, none skipped')
    base = evs[-1]['seq'] if evs else base

    r = inst.events(after=base_conc)
    page = r.json or {}
    tap.is_(len(page.get('events') or []), 100,
            'GET /events without limit: the default 100')
    tap.is_(page.get('next'), (page.get('events') or [{}])[-1].get('seq'),
            'default page: next = seq of its 100th event')
    r = inst.events(after=base_conc, limit=5000)
    tap.ok(r.status == 400 or (r.status == 200 and len(
        (r.json or {}).get('events') or []) <= 1000),
        'limit over the maximum: refused or capped at 1000', r.describe())

    # ---- payhook.fcgi killed: before a burst, and in the middle of one ----
    for pid in srv.backend_pids():
        os.kill(pid, 9)
    # lighttpd restarts dead backends when traffic needs them: keep asking.
    # The count is read once per look: a child lighttpd has forked but not
    # yet turned into payhook.fcgi is not one, and a second read could
    # land on such a moment after the first saw both.
    deadline = time.time() + 30
    pids = srv.backend_pids()
    while time.time() < deadline and len(pids) < 2:
        try:
            inst.request('GET', '/healthz', timeout=5)
        except Exception:
            pass
        time.sleep(0.1)
        pids = srv.backend_pids()
    tap.ok(len(pids) >= 2, 'lighttpd respawned payhook.fcgi after SIGKILL',
           repr(pids))
    k_ids = ['K%s-%03d' % (tag, i) for i in range(40)]
    harness.parallel(lambda x: inst.create_order(x, 77), k_ids, 16)
    k_txn = {x: txn_id(x) for x in k_ids}
    k_body = {x: notify_xml(make_payment(x, 77, k_txn[x])) for x in k_ids}
    bad = notify_as_provider(inst, k_body, k_ids)
    tap.ok(not bad, 'after SIGKILL of every payhook.fcgi: 40 notifications '
           'all SUCCESS (stale readers/locks handled)', *bad[:5])

    c_ids = ['Z%s-%03d' % (tag, i) for i in range(120)]
    harness.parallel(lambda x: inst.create_order(x, 55), c_ids, 16)
    c_txn = {x: txn_id(x) for x in c_ids}
    c_body = {x: notify_xml(make_payment(x, 55, c_txn[x])) for x in c_ids}
    import threading
    done = {'n': 0}
    lock = threading.Lock()
    killed = []

    def send_and_maybe_kill(x):
        r = inst.notify(c_body[x])
        with lock:
            done['n'] += 1
            if done['n'] == 30:
                for pid in srv.backend_pids():
                    try:
                        os.kill(pid, 9)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass
        return r
    res = harness.parallel(send_and_maybe_kill, c_ids, 16)
    tap.diag('killed %r mid-burst; answers: %r' % (killed, sorted(
        {str(r.status) for r in res})))
    acked = [x for x, r in zip(c_ids, res)
             if (r.status, r.body) == (200, SUCCESS_ACK)]
    # lighttpd restarts dead backends when traffic needs them: keep asking.
    deadline = time.time() + 30
    while time.time() < deadline and len(srv.backend_pids()) < 2:
        try:
            inst.request('GET', '/healthz', timeout=5)
        except Exception:
            pass
        time.sleep(0.1)
    lost = [x for x in acked if (inst.order(x) or {}).get('state') != 'PAID']
    tap.ok(not lost, 'SIGKILL mid-burst: every acknowledged notification was '
           'committed (%d acknowledged)' % len(acked), *lost[:5])
    bad = notify_as_provider(inst, c_body, c_ids)
    tap.ok(not bad, 'SIGKILL mid-burst: the provider retries of all 120 are '
           'SUCCESS', *bad[:5])
    notpaid = [x for x in c_ids if (inst.order(x) or {}).get('state') != 'PAID']
    tap.ok(not notpaid, 'SIGKILL mid-burst: all 120 orders PAID after the '
           'retry', *notpaid[:5])
    evs = new_events(inst, base)
    want = sorted(k_ids + c_ids)
    tap.is_(sorted(e.get('order_id') for e in evs), want,
            'SIGKILL runs: each order exactly once in the feed')
    tap.ok(all(e.get('type') == 'order.paid' for e in evs),
           'SIGKILL runs: only order.paid events')
    base = evs[-1]['seq'] if evs else base

    # ---- body size limit ------------------------------------------------
    big = b'<xml>' + b'<attach><![CDATA[' + b'A' * 70000 + b']]></attach></xml>'
    r = inst.notify(big)
    tap.is_(r.status, 413, 'notification over max_body_bytes: 413',
            r.describe())
    tap.is_(types_of(new_events(inst, base)), [], 'oversize body: no event')

    # Everything refused above is still refused, nothing changed since.
    snapshot = {i: inst.order(i) for i in (oid, oid2, oidh, oidm, oidf)}
    # A notification just under the limit is parsed (and refused for its bad
    # signature), not rejected for its size.
    f = make_payment(oid2, 100, txn_id('big'), attach='B' * 60000)
    f['sign'] = '0' * 32
    r = inst.notify(f)
    tap.ok(r.status == 200 and FAIL_RE_MATCH(r.body),
           'body under max_body_bytes reaches the verifier (FAIL ack)',
           r.describe())

    # ---- durability: stop the server, read the LMDB file with the CLI ---
    pids = srv.backend_pids()
    inst.stop()
    time.sleep(0.2)
    left = [p for p in pids if harness._alive(p)]
    tap.is_(left, [], 'payhook.fcgi processes gone after lighttpd stopped')
    if harness.E2E_STORE == 'lmdb':
        tap.ok(os.path.exists(inst.db), 'LMDB file exists at db_path',
               inst.db)
    for oid_, want in ((oid, snapshot[oid]), (ids[0], None),
                       (ids[-1], None), (oidm, snapshot[oidm])):
        p = inst.cli('order', oid_)
        tap.is_(p.returncode, 0, 'payhook order %s: exit 0' % oid_, p.stderr)
        try:
            got = json.loads(p.stdout)
        except ValueError:
            got = None
        if want is None:
            tap.is_((got or {}).get('state'), 'PAID',
                    'payhook order %s: PAID in the LMDB file' % oid_,
                    p.stdout[:300])
            tap.is_((got or {}).get('provider_txn_id'), txns.get(oid_),
                    'payhook order %s: txn in the LMDB file' % oid_)
        else:
            tap.is_(got, want, 'payhook order %s: same JSON as the API' % oid_,
                    p.stdout[:300])
    p = inst.cli('events', '--after', '0', '--limit', '1000')
    try:
        feed = json.loads(p.stdout)
    except ValueError:
        feed = None
    tap.ok(p.returncode == 0 and isinstance(feed, dict), 'payhook events: '
           'exit 0, JSON', p.stderr[:300], p.stdout[:300])
    feed_evs = (feed or {}).get('events') or []
    tap.is_(feed_evs[-1]['seq'] if feed_evs else None, base,
            'payhook events: same last seq as the API')
    tap.is_((feed or {}).get('next'), base, 'payhook events: next')
    paid_ids = [e.get('order_id') for e in feed_evs
                if e.get('type') == 'order.paid']
    tap.ok(len(paid_ids) == len(set(paid_ids)),
           'payhook events: no order paid twice in the whole feed')
    p = inst.cli('events', '--after', str(base - 3), '--limit', '2')
    try:
        feed = json.loads(p.stdout)
    except ValueError:
        feed = {}
    tap.is_([e.get('seq') for e in (feed or {}).get('events') or []],
            [base - 2, base - 1], 'payhook events --after --limit')
    tap.is_((feed or {}).get('next'), base - 1,
            'payhook events --after --limit: next')

    # ---- and a restart serves the same state --------------------------
    inst.start()
    tap.is_(inst.order(oid), snapshot[oid], 'after restart: order unchanged')
    check_ack(tap, inst.notify(body), 'SUCCESS',
              'after restart: the first notification again')
    tap.is_(types_of(new_events(inst, base)), [],
            'after restart: still no new event')
    test_promotions(tap, inst)

    inst.stop()
    if harness.E2E_STORE == 'lmdb':      # a full LMDB map
        test_store_full(tap)


def test_store_full(tap):
    """A 1 MiB map filled up: storage errors are answered as such (API 500
    or 503 JSON, notification 500 with a FAIL ack so that WeChat retries),
    nothing crashes, what was stored stays readable."""
    inst = harness.Instance(tap, 'full')
    with open(inst.config) as fh:
        text = fh.read()
    with open(inst.config, 'w') as fh:
        fh.write(text.replace('map_size_mb = 64', 'map_size_mb = 1'))
    inst.start()
    first = 'FULL-00000'
    tap.is_(inst.create_order(first, 100).status, 201, 'store 1 MiB: '
            'first order created')
    last = None
    pad = 'x' * 40
    for i in range(1, 40000):
        r = inst.create_order('FULL-%05d-%s' % (i, pad), 100)
        if r.status != 201:
            last = r
            break
    tap.ok(last is not None, 'store 1 MiB: creating orders ends in an error',
           'created %d orders' % i)
    if last is None:
        return
    tap.diag('store full after %d orders: %s' % (i, last.describe()))
    tap.ok(last.status in (500, 503), 'store full: POST /orders answers '
           '500 or 503', last.describe())
    body = last.json
    tap.ok(isinstance(body, dict) and isinstance(body.get('error'), str)
           and isinstance(body.get('message'), str),
           'store full: JSON error body', last.describe())
    r, _ = inst.pay(first, 100, txn_id('full'))
    tap.is_(r.status, 500, 'store full: notification answered 500',
            r.describe())
    tap.ok(FAIL_RE_MATCH(r.body), 'store full: notification FAIL ack (WeChat '
           'will retry)', r.describe())
    r = inst.request('GET', '/healthz')
    tap.is_(r.status, 200, 'store full: /healthz still answers')
    o = inst.order(first) or {}
    tap.is_(o.get('state'), 'PENDING', 'store full: stored order readable, '
            'unchanged')
    tap.ok(len(inst.server.backend_pids()) >= 2,
           'store full: payhook.fcgi processes still running')
    inst.stop()


def FAIL_RE_MATCH(body):
    return harness.FAIL_ACK_RE.match(body or b'') is not None


if __name__ == '__main__':
    harness.run(main)
