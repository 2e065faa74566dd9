#!/usr/bin/env python3
"""End to end: payhook.fcgi's log lines under lighttpd, as operators read
them (payhook.fcgi(8), LOGGING).

Under `lighttpd -D` payhook's standard error is lighttpd's (the harness
keeps it in lighttpd-stdout.log), not server.errorlog.  Checked here:

* X-Request-Id: a well-formed one (1-64 of [A-Za-z0-9._-]) is echoed,
  another is replaced, none is minted (16 hex digits); every answer has
  one, errors and acknowledgements included;
* one event=request line per request, with its request_id, client, method,
  path, route, profile, order_id, outcome, status and duration_ms; other
  lines of the request (order created, order paid) carry the same id; a
  notification logs its request line and, when it pays an order, the
  order_paid fact, nothing else; a refused one a single line at warn
  with the reason;
* a wrong token is logged at warn, the token never;
* log_format = json: every line of payhook.fcgi and of `payhook sweep` is
  one JSON object with the same keys as in logfmt, numbers as numbers.
"""

import json
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Instance, SUCCESS_ACK, make_payment, txn_id  # noqa: E402

MINTED = re.compile(r'^[0-9a-f]{16}$')
REQUEST_KEYS = ['ts', 'level', 'prog', 'pid', 'event', 'request_id',
                'client', 'method', 'path', 'route', 'profile', 'order_id',
                'outcome', 'status', 'duration_ms']


def read_log(inst):
    with open(os.path.join(inst.dir, 'lighttpd-stdout.log'),
              errors='replace') as fh:
        return fh.read()


def logfmt(line):
    """The key=value pairs of a logfmt line, in order."""
    out = []
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        out.append((m.group(1), m.group(2)))
    return out


def with_id(lines, rid):
    return [l for l in lines if re.search(r' request_id=%s( |$)'
                                          % re.escape(rid), l)]


def test_logfmt(tap):
    inst = Instance(tap, 'logs')
    inst.start()
    ids = []

    r = inst.request('GET', inst.path('/healthz'),
                     headers={'X-Request-Id': 'trace-ABC_1.2'})
    tap.is_(r.headers.get('x-request-id'), 'trace-ABC_1.2',
            'a well-formed X-Request-Id is echoed')
    ids.append('trace-ABC_1.2')
    for bad in ('has space', 'x' * 65, 'semi;colon', '-', '._'):
        r = inst.request('GET', inst.path('/healthz'),
                         headers={'X-Request-Id': bad})
        got = r.headers.get('x-request-id', '')
        tap.ok(MINTED.match(got), 'X-Request-Id %r is replaced by a new '
               'one (%s)' % (bad[:12], got))
        ids.append(got)
    answers = [
        ('GET /healthz', inst.request('GET', inst.path('/healthz'))),
        ('404', inst.request('GET', inst.path('/nope'))),
        ('405', inst.request('DELETE', inst.path('/orders'))),
        ('401', inst.api('GET', '/orders/X', token='wrong-token-xyz')),
        ('201', inst.create_order('LOG-1', 100)),
    ]
    minted = [a.headers.get('x-request-id', '') for _n, a in answers]
    tap.ok(all(MINTED.match(m) for m in minted), 'without one, each '
           'answer gets a minted X-Request-Id: %s' % ', '.join(
               n for n, _a in answers), minted)
    tap.is_(len(set(minted)), len(minted), '... each another')
    ids += minted
    created = minted[-1]
    wrong = minted[-2]

    paid = inst.pay('LOG-1', 100, txn_id('log1'))[0]
    tap.is_(paid.body, SUCCESS_ACK, 'a notification pays LOG-1')
    tap.ok(MINTED.match(paid.headers.get('x-request-id', '')),
           '... its acknowledgement has an X-Request-Id too')
    forged = make_payment('LOG-1', 100, txn_id('forged'))
    forged['total_fee'] = 1
    refused = inst.notify(forged)
    inst.notify(make_payment('NOPE-1', 100, txn_id('forged2'), key='f' * 32))
    ids += [paid.headers['x-request-id'], refused.headers['x-request-id']]

    log = read_log(inst)
    lines = log.splitlines()
    if harness.E2E_STORE == 'lmdb':
        made = [l for l in lines if 'made a new, empty store' in l]
        tap.ok(len(made) == 1 and ' level=info ' in made[0] and
               'database %s did not exist' % os.path.join(
                   inst.etc, 'var', 'payhook.mdb') in made[0],
               'the new store is said once, naming its file, by the one '
               'process of the two that made it', *made)
    for rid in ids:
        reqs = [l for l in with_id(lines, rid) if ' event=request ' in l]
        if len(reqs) != 1:
            tap.ok(False, 'request %s: one request line' % rid, *reqs)
            break
    else:
        tap.ok(True, 'every request: exactly one event=request line with '
               'its request_id (%d)' % len(ids))
    line = [l for l in with_id(lines, paid.headers['x-request-id'])
            if ' event=request ' in l]
    keys = [k for k, _v in logfmt(line[0])] if line else []
    tap.is_(keys, REQUEST_KEYS, 'the request line: its keys, in order',
            *line)
    tap.like(line[0] if line else '', r' client=127\.0\.0\.1 method=POST '
             r'path=/notify/wxshop route=notify profile=wxshop '
             r'order_id=LOG-1 outcome=applied status=200 '
             r'duration_ms=\d+\.\d$', '... with their values (duration in '
             'milliseconds)')
    same = with_id(lines, paid.headers['x-request-id'])
    tap.is_(len(same), 2, 'a notification that pays: its request line and '
            'the order_paid fact, nothing more', *same)
    tap.ok(any(' event=order_paid request_id=%s order_id=LOG-1 amount=100 '
               'currency=CNY profile=wxshop provider=wechat txn_id='
               % paid.headers['x-request-id'] in l for l in same),
           '... the fact with the same request_id', *same)
    same = with_id(lines, created)
    tap.ok(len(same) == 2 and any('LOG-1 created' in l for l in same),
           'order creation: the request line and the order created line '
           'share the request_id', *same)
    tap.ok(any(' event=request ' in l and ' route=orders profile=wxshop '
               in l for l in same), '... the request line names the '
           'order\'s profile', *same)
    same = with_id(lines, refused.headers['x-request-id'])
    tap.ok(len(same) == 1 and ' level=warn ' in same[0] and
           'outcome=refused_signature' in same[0] and
           re.search(r' reason="signature verification failed: [^"]+"$',
                     same[0]), 'a refused signature: one line, at warn, '
           'with the reason', *same)
    same = with_id(lines, wrong)
    tap.ok(len(same) == 1 and ' level=warn ' in same[0] and
           ' status=401 ' in same[0] and
           'reason="the bearer token does not match"' in same[0],
           'a wrong token: at warn, saying so', *same)
    tap.ok('wrong-token-xyz' not in log and inst.token not in log,
           '... and no token in the log')
    payhook = [l for l in lines if 'prog=payhook.fcgi' in l]
    tap.ok(payhook and all(l.startswith('ts=') for l in payhook),
           'every line of payhook.fcgi is key=value')
    errorlog = open(inst.server.errorlog, errors='replace').read()
    tap.ok('prog=payhook.fcgi' not in errorlog, 'under lighttpd -D, none '
           'is in server.errorlog: lighttpd keeps only its own there')
    inst.cleanup()


def test_json(tap):
    inst = Instance(tap, 'jsonlogs', core={'log_format': 'json'})
    inst.start()
    inst.create_order('JS-1', 100)
    paid = inst.pay('JS-1', 100, txn_id('js1'))[0]
    wrong = inst.api('GET', '/orders/JS-1', token='wrong',
                     headers={'X-Request-Id': 'json-wrong-1'})
    tap.is_(wrong.headers.get('x-request-id'), 'json-wrong-1',
            'json: X-Request-Id echoed')
    p = inst.cli('sweep')
    tap.is_(p.returncode, 0, 'payhook sweep: exit 0', p.stderr[-400:])
    log = read_log(inst)
    objs, bad = [], []
    for l in log.splitlines():
        if 'payhook.fcgi' not in l:
            continue            # lighttpd's own
        try:
            objs.append(json.loads(l))
        except ValueError:
            bad.append(l)
    tap.ok(objs and not bad, 'json: every line of payhook.fcgi is a JSON '
           'object (%d)' % len(objs), *bad[:3])
    reqs = [o for o in objs if o.get('event') == 'request']
    mine = [o for o in reqs if o.get('request_id') ==
            paid.headers.get('x-request-id')]
    tap.is_(list(mine[0]) if mine else None, REQUEST_KEYS,
            'json: the request line has the same keys, in the same order')
    if mine:
        o = mine[0]
        tap.ok(isinstance(o['status'], int) and
               isinstance(o['duration_ms'], (int, float)) and
               isinstance(o['pid'], int), '... status, duration_ms and pid '
               'are numbers')
        tap.is_((o['route'], o['profile'], o['order_id'], o['outcome'],
                 o['client']), ('notify', 'wxshop', 'JS-1', 'applied',
                                '127.0.0.1'), '... the values')
    w = [o for o in reqs if o.get('request_id') == 'json-wrong-1']
    tap.ok(len(w) == 1 and w[0]['level'] == 'warn' and w[0]['status'] == 401,
           'json: the wrong token at warn', w)
    healthz = [o for o in reqs if o.get('route') == 'healthz']
    tap.ok(healthz and healthz[0]['profile'] is None, 'json: what is '
           'unknown is null', healthz[:1])
    sweep = []
    for l in p.stderr.splitlines():
        try:
            sweep.append(json.loads(l))
        except ValueError:
            bad.append(l)
    tap.ok(sweep and all(o.get('prog') == 'payhook' for o in sweep) and
           any(o.get('event') == 'sweep' and isinstance(o.get('due'), int)
               for o in sweep), 'json: payhook sweep logs JSON too, counts '
           'as numbers', p.stderr[-600:])
    inst.cleanup()


def main(tap):
    test_logfmt(tap)
    test_json(tap)


if __name__ == '__main__':
    harness.run(main)
