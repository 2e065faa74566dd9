"""The merchant API under lighttpd: authentication, order creation and its
validation, reads, the event feed and its paging, error shapes, method and
route errors, body size, and base_path (a second instance under /pay/)."""

import json
import os
import re
import socket
import sys
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check_ack, check_json_error, is_rfc3339_utc  # noqa: E402


def test_auth(tap, inst):
    r = inst.api('GET', '/orders/NOPE', token=None)
    check_json_error(tap, r, 401, 'GET /orders/x without Authorization')
    tap.is_(r.headers.get('www-authenticate'), 'Bearer realm="payhook"',
            '... saying how to authenticate (WWW-Authenticate)')
    r = inst.api('GET', '/orders/NOPE', token='wrong-token')
    check_json_error(tap, r, 401, 'GET /orders/x with a wrong token')
    r = inst.api('GET', '/orders/NOPE', token=inst.token + 'x')
    check_json_error(tap, r, 401, 'token with one extra character')
    r = inst.api('GET', '/orders/NOPE', token=inst.token[:-1])
    check_json_error(tap, r, 401, 'token missing its last character')
    r = inst.api('GET', '/orders/NOPE', token='',
                 headers={'Authorization': 'Basic ' + inst.token})
    check_json_error(tap, r, 401, 'token under the Basic scheme')
    r = inst.api('GET', '/orders/NOPE', token=None,
                 headers={'Authorization': inst.token})
    check_json_error(tap, r, 401, 'token without a scheme')
    r = inst.api('GET', '/events', token=None)
    check_json_error(tap, r, 401, 'GET /events without Authorization')
    r = inst.api('POST', '/orders', {'order_id': 'AUTH1', 'amount': 1,
                                     'currency': 'CNY', 'profile': 'wxshop'},
                 token=None)
    check_json_error(tap, r, 401, 'POST /orders without Authorization')
    tap.is_(inst.api('GET', '/orders/AUTH1').status, 404,
            'the unauthenticated create stored nothing')
    r = inst.api('GET', '/orders/NOPE')
    check_json_error(tap, r, 404, 'right token, unknown order')
    r = inst.api('GET', '/events')
    tap.is_(r.status, 200, 'right token: GET /events 200', r.describe())
    tap.like(r.content_type, r'^application/json',
             'JSON answers have Content-Type application/json')


def test_create(tap, inst):
    body = {'order_id': 'A1', 'amount': 100, 'currency': 'CNY',
            'profile': 'wxshop'}
    r = inst.api('POST', '/orders', body)
    tap.is_(r.status, 201, 'POST /orders: 201 Created', r.describe())
    o = r.json or {}
    harness.check_order_keys(tap, o, 'order JSON')
    tap.is_({k: o.get(k) for k in ('order_id', 'profile', 'amount',
                                   'currency', 'state', 'paid_at',
                                   'provider_txn_id', 'exceptions')},
            {'order_id': 'A1', 'profile': 'wxshop', 'amount': 100,
             'currency': 'CNY', 'state': 'PENDING', 'paid_at': None,
             'provider_txn_id': None, 'exceptions': []},
            'order JSON: values')
    tap.ok(is_rfc3339_utc(o.get('created_at')) and
           is_rfc3339_utc(o.get('updated_at')),
           'created_at/updated_at are RFC 3339 UTC',
           repr((o.get('created_at'), o.get('updated_at'))))
    r2 = inst.api('POST', '/orders', body)
    tap.is_(r2.status, 200, 'identical create again: 200', r2.describe())
    tap.is_(r2.json, r.json, 'identical create again: the same order')
    # Same content, other key order and spacing: still identical.
    r3 = inst.api('POST', '/orders', '{ "profile":"wxshop", "currency":"CNY",'
                  ' "amount":100, "order_id":"A1" }')
    tap.is_(r3.status, 200, 'identical create, keys reordered: 200',
            r3.describe())
    r = inst.api('GET', '/orders/A1')
    tap.is_((r.status, r.json), (200, r2.json), 'GET /orders/A1')
    for name, change in (('amount', {'amount': 101}),
                         ('currency', {'currency': 'USD'}),
                         ('profile', {'profile': 'wxhmac'}),
                         ('expires_in', {'expires_in': 600}),
                         ('attempt data', {'attempt': {'x': '1'}})):
        b = dict(body, **change)
        check_json_error(tap, inst.api('POST', '/orders', b), 409,
                         'same order_id, different %s' % name)
    tap.is_(inst.order('A1'), r2.json, 'the conflicting creates changed '
            'nothing')
    # Expiry and attempt data are part of what is identical.
    be = dict(body, order_id='A1-exp', expires_in=600,
              attempt={'x': '1'})
    r = inst.api('POST', '/orders', be)
    tap.is_(r.status, 201, 'an order with expires_in and attempt data',
            r.describe())
    r2 = inst.api('POST', '/orders', dict(be))
    tap.is_((r2.status, r2.json), (200, r.json), '... the same again: 200, '
            'the same order', r2.describe())
    for name, change in (('another expires_in', {'expires_in': 7776000}),
                         ('no expires_in', {'expires_in': None}),
                         ('other attempt data', {'attempt': {'x': '2'}}),
                         ('no attempt data', {'attempt': None})):
        b = {k: v for k, v in dict(be, **change).items() if v is not None}
        check_json_error(tap, inst.api('POST', '/orders', b), 409,
                         '... again with %s: 409' % name)
    tap.is_(inst.order('A1-exp'), r.json, '... which changed nothing')

    # order_id: 1-64 chars of [A-Za-z0-9_-|*.:]
    for oid in ('x' * 64, 'a', 'Az09_-|*.:', '2026.11.30:42|*x'):
        r = inst.api('POST', '/orders', dict(body, order_id=oid))
        tap.is_(r.status, 201, 'order_id %r accepted' % oid, r.describe())
        r = inst.api('GET', '/orders/' + urllib.parse.quote(oid, safe=''))
        tap.is_((r.status, (r.json or {}).get('order_id')), (200, oid),
                'GET order %r (percent-encoded path)' % oid, r.describe())
    r = inst.api('GET', '/orders/Az09_-|*.:')
    tap.is_((r.status, (r.json or {}).get('order_id')), (200, 'Az09_-|*.:'),
            'GET order with the allowed characters left raw', r.describe())

    bad = [
        ('amount 12.5', dict(body, order_id='B1', amount=12.5)),
        ('amount "100"', dict(body, order_id='B2', amount='100')),
        ('amount 0', dict(body, order_id='B3', amount=0)),
        ('amount -1', dict(body, order_id='B4', amount=-1)),
        ('amount 100.0', '{"order_id":"B5","amount":100.0,"currency":"CNY",'
                         '"profile":"wxshop"}'),
        ('amount 1e2', '{"order_id":"B6","amount":1e2,"currency":"CNY",'
                       '"profile":"wxshop"}'),
        ('amount true', dict(body, order_id='B7', amount=True)),
        ('amount null', dict(body, order_id='B8', amount=None)),
        ('amount 2^63', '{"order_id":"B9","amount":9223372036854775808,'
                        '"currency":"CNY","profile":"wxshop"}'),
        ('missing amount', {'order_id': 'B10', 'currency': 'CNY',
                            'profile': 'wxshop'}),
        ('missing currency', {'order_id': 'B11', 'amount': 1,
                              'profile': 'wxshop'}),
        ('missing profile', {'order_id': 'B12', 'amount': 1,
                             'currency': 'CNY'}),
        ('missing order_id', {'amount': 1, 'currency': 'CNY',
                              'profile': 'wxshop'}),
        ('currency "cny"', dict(body, order_id='B13', currency='cny')),
        ('currency "CN"', dict(body, order_id='B14', currency='CN')),
        ('currency "CNYY"', dict(body, order_id='B15', currency='CNYY')),
        ('currency "C1Y"', dict(body, order_id='B16', currency='C1Y')),
        ('currency 156', dict(body, order_id='B17', currency=156)),
        ('unknown profile', dict(body, order_id='B18', profile='nosuch')),
        ('unknown extra field', dict(body, order_id='B19', note='hi')),
        ('order_id empty', dict(body, order_id='')),
        ('order_id 65 chars', dict(body, order_id='x' * 65)),
        ('order_id with a space', dict(body, order_id='B 20')),
        ('order_id with a slash', dict(body, order_id='B/21')),
        ('order_id with a quote', dict(body, order_id="B'22")),
        ('order_id non-ASCII', dict(body, order_id='B23\u8ba2\u5355')),
        ('order_id a number', dict(body, order_id=24)),
        ('duplicate key', '{"order_id":"B25","amount":1,"amount":100000,'
                          '"currency":"CNY","profile":"wxshop"}'),
        ('not JSON', 'order_id=B26&amount=1'),
        ('truncated JSON', '{"order_id":"B27","amount":1,'),
        ('a JSON array', json.dumps([body])),
        ('empty body', ''),
        ('trailing garbage', json.dumps(dict(body, order_id='B28')) + 'x'),
    ]
    for name, b in bad:
        r = inst.api('POST', '/orders', b)
        check_json_error(tap, r, 400, 'POST /orders with %s' % name)
    for oid in ('B1', 'B2', 'B5', 'B9', 'B18', 'B25', 'B28'):
        tap.is_(inst.api('GET', '/orders/' + oid).status, 404,
                'rejected order %s was not stored' % oid)


def test_create_races(tap, inst):
    """16 clients create the same order at once: one 201, the rest 200
    with the same order; 16 clients create one id with 16 different
    amounts: one 201, fifteen 409."""
    body = {'order_id': 'RACE1', 'amount': 300, 'currency': 'CNY',
            'profile': 'wxshop'}
    res = harness.parallel(lambda _i: inst.api('POST', '/orders', body),
                           range(16), 16)
    tap.is_(sorted(r.status for r in res), [200] * 15 + [201],
            '16 identical creates at once: one 201, fifteen 200')
    tap.ok(len({json.dumps(r.json, sort_keys=True) for r in res}) == 1,
           '16 identical creates at once: the same order JSON')
    res = harness.parallel(
        lambda i: inst.api('POST', '/orders', dict(body, order_id='RACE2',
                                                   amount=100 + i)),
        range(16), 16)
    tap.is_(sorted(r.status for r in res), [201] + [409] * 15,
            '16 conflicting creates at once: one 201, fifteen 409')
    winner = [r.json for r in res if r.status == 201]
    tap.is_(inst.order('RACE2'), winner[0] if winner else None,
            'the stored order is the one answered 201')


def test_routes(tap, inst):
    tok = inst.token
    for method, path in (('DELETE', '/orders/A1'), ('PUT', '/orders/A1'),
                         ('POST', '/orders/A1'), ('PUT', '/orders'),
                         ('POST', '/events'), ('POST', '/healthz')):
        r = inst.api(method, path, token=tok)
        check_json_error(tap, r, 405, '%s %s' % (method, path))
    r = inst.request('GET', '/notify/wxshop')
    tap.is_(r.status, 405, 'GET /notify/wxshop: 405', r.describe())
    r = inst.request('PUT', '/notify/wxshop', b'<xml></xml>')
    tap.is_(r.status, 405, 'PUT /notify/wxshop: 405', r.describe())
    for path in ('/nope', '/orders/A1/extra', '/notify', '/ordersX',
                 '/healthz/x'):
        r = inst.api('GET', path)
        check_json_error(tap, r, 404, 'unknown route GET %s' % path)
    r = inst.request('POST', '/notify/nosuch', b'<xml></xml>',
                     {'Content-Type': 'text/xml'})
    check_json_error(tap, r, 404, 'POST /notify/<unknown profile>')
    r = inst.request('GET', '/healthz')
    tap.is_((r.status, (r.json or {}).get('status')), (200, 'ok'),
            'GET /healthz, no auth')
    version = harness.run_fcgi_version()
    tap.ok(version and (r.json or {}).get('version') == version[0] and
           (r.json or {}).get('commit', '') == version[1],
           '... names the build as payhook.fcgi --version does',
           r.describe(), version)
    r = inst.request('GET', '/healthz?x=1')
    tap.is_((r.status, (r.json or {}).get('status')), (200, 'ok'),
            'query string ignored for routing')
    r = inst.api('GET', '/orders/A1?foo=bar')
    tap.is_((r.status, (r.json or {}).get('order_id')), (200, 'A1'),
            'GET /orders/A1?foo=bar')
    # A body that is not JSON, or not an object: said the same way on
    # every call that takes one.
    for path in ('/orders', '/orders/A1/attempts', '/orders/A1/refunds'):
        r = inst.api('POST', path, '0100')
        tap.ok(r.status == 400 and (r.json or {}).get('message', '').
               startswith('body is not valid JSON: ') and 'column' in
               (r.json or {}).get('message', ''), 'POST %s, a body that is '
               'not JSON: 400, saying where it breaks' % path, r.describe())
        for body in ('[1]', 'null', '"x"'):
            r = inst.api('POST', path, body)
            tap.ok(r.status == 400 and (r.json or {}).get('message', '').
                   startswith('body must be a JSON object like {'),
                   'POST %s, a body that is not an object (%s): 400, with '
                   'an example' % (path, body), r.describe())


def test_chunked(tap, inst):
    """Bodies sent with Transfer-Encoding: chunked (no Content-Length from
    the client) reach payhook whole."""
    import http.client
    inst.create_order('CHUNK1', 42)
    body = harness.notify_xml(harness.make_payment('CHUNK1', 42,
                                                   harness.txn_id('chunk')))
    conn = http.client.HTTPConnection(harness.HOST, inst.server.port,
                                      timeout=30)
    try:
        conn.request('POST', inst.path('/notify/wxshop'),
                     body=iter([body[:100], body[100:333], body[333:]]),
                     headers={'Content-Type': 'text/xml',
                              'Transfer-Encoding': 'chunked'},
                     encode_chunked=True)
        resp = conn.getresponse()
        r = harness.Response(resp.status, {k.lower(): v for k, v in
                                           resp.getheaders()}, resp.read())
    finally:
        conn.close()
    check_ack(tap, r, 'SUCCESS', 'chunked notification')
    tap.is_((inst.order('CHUNK1') or {}).get('state'), 'PAID',
            'chunked notification: order PAID')
    conn = http.client.HTTPConnection(harness.HOST, inst.server.port,
                                      timeout=30)
    b = json.dumps({'order_id': 'CHUNK2', 'amount': 5, 'currency': 'CNY',
                    'profile': 'wxshop'}).encode()
    try:
        conn.request('POST', inst.path('/orders'), body=iter([b[:10], b[10:]]),
                     headers={'Content-Type': 'application/json',
                              'Authorization': 'Bearer ' + inst.token,
                              'Transfer-Encoding': 'chunked'},
                     encode_chunked=True)
        resp = conn.getresponse()
        status = resp.status
        resp.read()
    finally:
        conn.close()
    tap.is_(status, 201, 'chunked POST /orders: 201')
    # Two requests on one kept-alive connection.
    conn = http.client.HTTPConnection(harness.HOST, inst.server.port,
                                      timeout=30)
    try:
        got = []
        for oid in ('CHUNK1', 'CHUNK2'):
            conn.request('GET', inst.path('/orders/' + oid),
                         headers={'Authorization': 'Bearer ' + inst.token})
            resp = conn.getresponse()
            got.append((resp.status, json.loads(resp.read()).get('order_id')))
    finally:
        conn.close()
    tap.is_(got, [(200, 'CHUNK1'), (200, 'CHUNK2')],
            'two requests on one keep-alive connection')


def test_body_limit(tap, inst):
    pad = inst.max_body_bytes
    b = json.dumps({'order_id': 'BIG1', 'amount': 1, 'currency': 'CNY',
                    'profile': 'wxshop'})
    r = inst.api('POST', '/orders', b + ' ' * (pad + 1 - len(b)))
    check_json_error(tap, r, 413, 'POST /orders one byte over max_body_bytes')
    tap.is_(inst.api('GET', '/orders/BIG1').status, 404,
            'oversize create stored nothing')
    r = inst.api('POST', '/orders', b + ' ' * (pad - len(b)))
    tap.is_(r.status, 201, 'POST /orders of exactly max_body_bytes: 201',
            r.describe())


def test_events(tap, inst):
    r = inst.events()
    feed = r.json or {}
    tap.is_(r.status, 200, 'GET /events: 200', r.describe())
    tap.ok(isinstance(feed.get('events'), list) and
           isinstance(feed.get('next'), int), 'feed has events[] and next')
    base = inst.last_seq()
    r = inst.events(after=base)
    epoch = feed.get('epoch')
    tap.ok(isinstance(epoch, str) and re.match(r'^[0-9a-f]{16}$', epoch),
           'the feed names its epoch', feed)
    tap.is_(r.json, {'epoch': epoch, 'events': [], 'next': base},
            'nothing after the last seq: next = after')
    r = inst.events(after=base + 1000)
    tap.is_(r.json, {'epoch': epoch, 'events': [], 'next': base + 1000},
            'after beyond the end: empty, next = after')
    r = inst.events(after=2 ** 63 - 1)
    tap.is_(r.json, {'epoch': epoch, 'events': [], 'next': 2 ** 63 - 1},
            'after 2^63-1, the largest sequence number: next = after')

    # Make 9 events: 7 paid orders, one unknown order, one failed payment.
    ids = ['E%d' % i for i in range(7)]
    for oid in ids:
        inst.create_order(oid, 10)
    for oid in ids:
        r, _ = inst.pay(oid, 10, harness.txn_id(oid))
        check_ack(tap, r, 'SUCCESS', 'pay %s' % oid)
    r, _ = inst.pay('E-UNKNOWN', 10, harness.txn_id('unknown'))
    check_ack(tap, r, 'SUCCESS', 'pay an unknown order')
    inst.create_order('E-FAIL', 10)
    r, _ = inst.pay('E-FAIL', 10, harness.txn_id('fail'), result_code='FAIL')
    check_ack(tap, r, 'SUCCESS', 'failed payment')

    full = inst.all_events(base)
    tap.is_([e.get('type') for e in full],
            ['order.paid'] * 7 + ['payment.unknown_order', 'payment.failed'],
            'nine new events, in commit order')
    tap.is_([e.get('order_id') for e in full], ids + ['E-UNKNOWN', 'E-FAIL'],
            'events name the orders in the order paid')
    seqs = [e.get('seq') for e in full]
    tap.ok(seqs == sorted(set(seqs)) and all(s > base for s in seqs),
           'seqs strictly increasing, all after the base', repr(seqs))

    # Page with limit=2: each event exactly once, next = last seq returned.
    pages, after, seen = 0, base, []
    while pages < 20:
        r = inst.events(after=after, limit=2)
        page = r.json or {}
        evs = page.get('events') or []
        if not evs:
            tap.is_(page.get('next'), after, 'last page: empty, next = after')
            break
        pages += 1
        tap.ok(len(evs) <= 2, 'page %d: at most limit=2 events' % pages)
        tap.is_(page.get('next'), evs[-1].get('seq'),
                'page %d: next = seq of its last event' % pages)
        seen += evs
        after = page['next']
    tap.is_(pages, 5, 'nine events come in five pages of limit=2')
    tap.is_([e.get('seq') for e in seen], seqs,
            'paging returns every event exactly once, in order')
    tap.is_(seen, full, 'paged events equal the single-page events')

    r = inst.events(after=seqs[3], limit=3)
    tap.is_([e.get('seq') for e in (r.json or {}).get('events') or []],
            seqs[4:7], 'after=<a middle seq>&limit=3')
    r = inst.events(after=base)
    tap.is_(len((r.json or {}).get('events') or []), 9,
            'default limit returns all nine')
    r = inst.events(after=0, limit=1)
    first = (r.json or {}).get('events') or [{}]
    tap.is_(((r.json or {}).get('next'), len(first)), (first[0].get('seq'), 1),
            'after=0&limit=1: the first event')
    r = inst.events(limit=1)
    tap.is_(r.json, inst.events(after=0, limit=1).json,
            'after defaults to 0')
    r = inst.events(after=base, limit=1000)
    tap.is_(r.status, 200, 'limit=1000 accepted', r.describe())
    r = inst.events(after=base, limit=5000)
    tap.ok(r.status == 400 or (r.status == 200 and len(
        (r.json or {}).get('events') or []) <= 1000),
        'limit over 1000: refused or capped', r.describe())
    for q in ('after=abc', 'after=-1', 'limit=abc', 'limit=-5',
              'after=1.5', 'after=99999999999999999999999',
              'after=9223372036854775808', 'after=18446744073709551615'):
        r = inst.api('GET', '/events?' + q)
        check_json_error(tap, r, 400, 'GET /events?%s' % q)
    # A parameter twice or misspelt, or an epoch no page gave: refused,
    # never the first value taken or the rest ignored.
    for q, why in (('after=1&after=3', 'after given twice'),
                   ('limit=1&limit=1000', 'limit given twice'),
                   ('limt=2', 'unknown query parameter "limt"'),
                   ('epoch=not-an-epoch', 'epoch must be'),
                   ('epoch=', 'epoch must be'),
                   ('epoch=ABCDEF0123456789', 'epoch must be')):
        r = inst.api('GET', '/events?' + q)
        tap.ok(r.status == 400 and why in ((r.json or {}).get('message')
                                           or ''),
               'GET /events?%s: 400, %s' % (q, why), r.describe())
    epoch = (inst.events(after=0, limit=1).json or {}).get('epoch')
    r = inst.api('GET', '/events?after=0&limit=1&epoch=%s&' % epoch)
    tap.is_(r.status, 200, 'after, limit and the epoch once each (a '
            'trailing &): 200', r.describe())

    ev = full[0]
    tap.is_(set(ev) >= {'seq', 'type', 'order_id', 'profile', 'provider',
                        'provider_txn_id', 'amount', 'currency', 'at',
                        'source'}, True, 'event has the documented keys',
            repr(sorted(ev)))


def test_base_path(tap):
    inst = harness.Instance(tap, 'basepath', base_path='/pay/')
    inst.start()
    r = inst.request('GET', '/pay/healthz')
    tap.is_((r.status, (r.json or {}).get('status')), (200, 'ok'),
            'base_path /pay/: GET /pay/healthz')
    r = inst.api('POST', '/pay/orders', {'order_id': 'BP1', 'amount': 5,
                                         'currency': 'CNY',
                                         'profile': 'wxshop'}, raw_path=True)
    tap.is_(r.status, 201, 'base_path /pay/: POST /pay/orders 201',
            r.describe())
    r = inst.api('GET', '/pay/orders/BP1', raw_path=True)
    tap.is_((r.status, (r.json or {}).get('order_id')), (200, 'BP1'),
            'base_path /pay/: GET /pay/orders/BP1')
    r = inst.api('POST', '/orders', {'order_id': 'BP2', 'amount': 5,
                                     'currency': 'CNY', 'profile': 'wxshop'},
                 raw_path=True)
    check_json_error(tap, r, 404, 'base_path /pay/: POST /orders')
    r = inst.api('GET', '/orders/BP1', raw_path=True)
    check_json_error(tap, r, 404, 'base_path /pay/: GET /orders/BP1')
    r = inst.request('GET', '/healthz')
    tap.is_(r.status, 404, 'base_path /pay/: GET /healthz 404', r.describe())
    r = inst.api('GET', '/payorders/BP1', raw_path=True)
    tap.is_(r.status, 404, 'base_path /pay/: /payorders/BP1 is not below it',
            r.describe())
    fields = harness.make_payment('BP1', 5, harness.txn_id('bp'))
    r = inst.request('POST', '/pay/notify/wxshop', harness.notify_xml(fields),
                     {'Content-Type': 'text/xml'})
    check_ack(tap, r, 'SUCCESS', 'base_path /pay/: POST /pay/notify/wxshop')
    r = inst.request('POST', '/notify/wxshop', harness.notify_xml(fields),
                     {'Content-Type': 'text/xml'})
    tap.is_(r.status, 404, 'base_path /pay/: POST /notify/wxshop 404',
            r.describe())
    r = inst.api('GET', '/pay/events', raw_path=True)
    tap.is_([e.get('type') for e in (r.json or {}).get('events') or []],
            ['order.paid'], 'base_path /pay/: GET /pay/events')
    inst.stop()


def test_header_limit(tap, inst):
    """More request headers than payhook reads is a refusal, never a call
    run with some of them (an Idempotency-Key among them) left out."""
    inst.create_order('HDR1', 30)
    inst.pay('HDR1', 30, harness.txn_id('hdr1'))
    many = {'X-Trace-%03d' % i: 'v' for i in range(120)}
    many['Idempotency-Key'] = 'hdr-key'
    got = [inst.api('POST', '/orders/HDR1/refunds', {'amount': 10},
                    headers=many) for _ in range(2)]
    tap.is_([(r.status, (r.json or {}).get('error')) for r in got],
            [(431, 'too_many_headers')] * 2,
            'a call with 121 headers: 431 too_many_headers')
    r = inst.api('GET', '/orders/HDR1/refunds')
    tap.is_((r.json or {}).get('refunds'), [], '... and no refund made')
    few = dict(list(many.items())[-20:])
    r = inst.api('POST', '/orders/HDR1/refunds', {'amount': 10},
                 headers=few)
    tap.is_(r.status, 201, 'the same call with 20 headers: 201',
            r.describe())
    # The bound itself, every line counted: lighttpd adds a
    # CONTENT_LENGTH of 0 to a GET, which is no header of the client's.
    for n, want in ((100, 200), (101, 431)):
        lines = ['GET /orders/HDR1 HTTP/1.1', 'Host: %s' % harness.HOST,
                 'Authorization: Bearer ' + inst.token, 'Connection: close']
        lines += ['X-Pad-%03d: v' % i for i in range(n - 3)]
        with socket.create_connection((harness.HOST, inst.server.port),
                                      timeout=10) as sk:
            sk.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
            head = sk.makefile('rb').readline()
        tap.like(head.decode('latin-1'), r'^HTTP/1\.1 %d ' % want,
                 'a GET of exactly %d request headers: %d' % (n, want))


def test_facts_after_the_fact(tap, inst):
    """Verified facts that come after payhook thought a matter closed are
    taken, not swallowed: a refund the merchant cancelled and then made at
    the merchant platform under its refund_id; the paying transaction told
    again through another merchant account with another amount."""
    prof = harness.PROFILES['wxshop']
    oid = 'CM-' + os.urandom(4).hex()
    inst.create_order(oid, 1000)
    txn = harness.txn_id(oid)
    inst.pay(oid, 1000, txn)
    rid = oid + '-r1'
    inst.api('POST', '/orders/%s/refunds' % oid,
             {'amount': 600, 'refund_id': rid})
    c = inst.api('POST', '/refunds/%s/cancel' % rid)
    tap.is_((c.json or {}).get('state'), 'CANCELLED', 'a refund cancelled',
            c.describe())
    base = inst.last_seq()
    r = inst.notify(harness.wechat_refund_notification(
        prof, rid, oid, txn, 600, 1000, 'SUCCESS'))
    evs = inst.all_events(base)
    o = inst.order(oid) or {}
    tap.is_((r.status, [(e['type'], e.get('previous_state')) for e in evs],
             (inst.api('GET', '/refunds/' + rid).json or {}).get('state'),
             o.get('refunded')),
            (200, [('refund.succeeded', 'CANCELLED')], 'SUCCEEDED', 600),
            '... then made at the platform under its id: SUCCEEDED, '
            'counted on the order, refund.succeeded says it was cancelled',
            r.describe(), evs, o)
    more = inst.api('POST', '/orders/%s/refunds' % oid, {'amount': 1000})
    tap.is_((more.status, (more.json or {}).get('error')), (409, 'conflict'),
            '... so no more than the 400 left may be asked', more.describe())

    # Another refund cancelled and found made by the operator.
    r = inst.api('POST', '/orders/%s/refunds' % oid,
                 {'amount': 400, 'refund_id': oid + '-r2'})
    inst.api('POST', '/refunds/%s-r2/cancel' % oid)
    p = inst.cli('refunds', 'settle', oid + '-r2', '--failed')
    tap.ok(p.returncode == 1 and 'is CANCELLED already' in p.stderr,
           'refunds settle --failed of a cancelled refund: refused',
           p.returncode, p.stderr)
    p = inst.cli('refunds', 'settle', oid + '-r2', '--succeeded')
    tap.is_((p.returncode, (inst.order(oid) or {}).get('refunded'),
             (inst.order(oid) or {}).get('state')), (0, 1000, 'REFUNDED'),
            'refunds settle --succeeded of a cancelled refund made by hand: '
            'counted, the order REFUNDED', p.stderr[-300:])

    # The paying transaction, verified again through another merchant
    # account: that account's fact, about another order of the same id
    # (profiles are walls), whatever its amount; neither a conflict
    # planted on this order nor a duplicate of its own payment.
    for amount, want, what in (
            (900, ['order.profile_mismatch'], 'with another amount: '
             'order.profile_mismatch, no notification.conflict'),
            (500, ['order.profile_mismatch'], 'with the same amount: '
             'order.profile_mismatch, recorded as that account\'s')):
        oid = 'CT-' + os.urandom(4).hex()
        inst.create_order(oid, 500)
        txn = harness.txn_id(oid)
        inst.pay(oid, 500, txn)
        base = inst.last_seq()
        r, _ = inst.pay(oid, amount, txn, profile='wxhmac')
        tap.is_([e['type'] for e in inst.all_events(base)], want,
                'the paying transaction through another account ' + what,
                r.describe())
        o = inst.order(oid) or {}
        tap.is_((o.get('state'), o.get('provider_txn_id'),
                 o.get('paid_through')), ('PAID', txn, 'wxshop'),
                '... the order as its own payment left it')

def main(tap):
    inst = harness.Instance(tap, 'api')
    inst.start()
    test_auth(tap, inst)
    test_create(tap, inst)
    test_create_races(tap, inst)
    test_routes(tap, inst)
    test_chunked(tap, inst)
    test_body_limit(tap, inst)
    test_header_limit(tap, inst)
    test_events(tap, inst)
    test_facts_after_the_fact(tap, inst)
    inst.stop()
    test_base_path(tap)


if __name__ == '__main__':
    harness.run(main)
