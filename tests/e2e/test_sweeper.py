"""End to end: no missed and no double payments.

lighttpd + payhook.fcgi + the provider simulator + the sweeper, all on
127.0.0.1.  Covers: a notification dropped every time, recovered by the
sweeper; a late notification after the sweeper applied the query; a second
payment prevented by the pre-payment guard; a double payment that still
happens, recorded and queued for refund; expiry (closed at the provider and
here when unpaid, PAID when paid but never notified); a provider down or
answering garbage; a sweeper killed with SIGKILL in the middle of a pass;
the merchant's "query now"; concurrent attempts.

The schedules are compressed: the profiles poll at 1s,1s,2s and the
sweeper is run pass by pass, so every scenario takes seconds.
"""

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PAYHOOK, wait_for  # noqa: E402

SCHEDULE = '1s,1s,2s'


def oid(tag):
    return '%s-%s' % (tag, os.urandom(4).hex())


def sweep(inst, *extra, timeout=60):
    """One sweeper pass; (exit status, stderr)."""
    p = subprocess.run([PAYHOOK, '-c', inst.config, 'sweep'] + list(extra),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode('utf-8', 'replace')


def api_time(text):
    """Seconds since the epoch of a time as the API writes it."""
    return datetime.datetime.fromisoformat(
        text.replace('Z', '+00:00')).timestamp()


def sweep_until(inst, order_id, state, limit_s=30):
    """Runs passes until the order reaches state; seconds taken, or None."""
    start = time.time()
    while time.time() - start < limit_s:
        sweep(inst)
        if inst.order(order_id).get('state') == state:
            return time.time() - start
        time.sleep(0.3)
    return None


def unpaid_order(inst, sim, o, expires_in):
    """An order of 100 on wxshop, known to the simulator as unpaid."""
    inst.api('POST', '/orders', {'order_id': o, 'amount': 100,
                                 'currency': 'CNY', 'profile': 'wxshop',
                                 'expires_in': expires_in})
    sim.control('/_sim/order', {'profile': 'wxshop', 'order_id': o,
                                'amount': 100})


def events_for(inst, order_id, base):
    return [e['type'] for e in inst.all_events(base)
            if e.get('order_id') == order_id]


def sim_pay(sim, tap, order_id, amount, notify=None, profile='wxshop'):
    r = sim.control('/_sim/pay', {'profile': profile, 'order_id': order_id,
                                  'amount': amount,
                                  'notify': notify or {'mode': 'normal'}})
    tap.is_(r.status, 200, 'simulator took the payment for %s' % order_id,
            r.describe())
    return (r.json or {}).get('txn_id')


def test_dropped(tap, inst, sim):
    o = oid('DROP')
    base = inst.last_seq()
    inst.create_order(o, 1234)
    txn = sim_pay(sim, tap, o, 1234, {'drop_all': True})
    took = sweep_until(inst, o, 'PAID')
    tap.ok(took is not None, 'dropped notifications: the sweeper made the '
           'order PAID')
    tap.diag('dropped-notification recovery took %.1fs with query_schedule '
             '%s' % (took or -1, SCHEDULE))
    order = inst.order(o)
    tap.is_(order.get('provider_txn_id'), txn, '... with the provider txn')
    tap.is_(events_for(inst, o, base), ['order.paid'],
            '... exactly one order.paid event')
    sweep(inst)
    tap.is_(events_for(inst, o, base), ['order.paid'],
            '... and another pass adds nothing')
    tap.ok(order.get('next_query_at') is None, '... off the query schedule')
    tap.ok(harness.is_rfc3339_utc(order.get('last_query_at')),
           '... last_query_at an RFC 3339 time like the others',
           order.get('last_query_at'))


def test_late_notification(tap, inst, sim):
    o = oid('LATE')
    base = inst.last_seq()
    inst.create_order(o, 500)
    sim.control('/_sim/mode', {'notify': 'pause'})
    txn = sim_pay(sim, tap, o, 500)
    took = sweep_until(inst, o, 'PAID')
    tap.ok(took is not None, 'late notification: sweeper applied the query '
           'result first')
    sim.control('/_sim/mode', {'notify': 'ok'})
    acked = wait_for(lambda: any(d.get('acked') for d in
                                 sim.deliveries(o) or []), 15, 0.1)
    tap.ok(acked, '... the late notification then got a SUCCESS ack',
           json.dumps(sim.deliveries(o))[:800])
    tap.is_(events_for(inst, o, base), ['order.paid'],
            '... and nothing changed twice')
    tap.is_(inst.order(o).get('provider_txn_id'), txn, '... same txn')


def test_guard(tap, inst, sim):
    o = oid('GUARD')
    base = inst.last_seq()
    inst.create_order(o, 800)
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop'})
    tap.is_(r.status, 201, 'first attempt: 201', r.describe())
    tap.ok(len((r.json or {}).get('attempts') or []) >= 1,
           '... recorded on the order')
    sim.control('/_sim/mode', {'notify': 'pause'})
    sim_pay(sim, tap, o, 800)
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop'})
    tap.is_(r.status, 409, 'second attempt after an unnotified payment: '
            '409 (the guard asked the provider)', r.describe())
    tap.is_((r.json or {}).get('error'), 'already_paid', '... already_paid')
    tap.is_(inst.order(o).get('state'), 'PAID', '... and the order is PAID')
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop'})
    tap.is_(r.status, 409, 'a third attempt: 409 straight away')
    sim.control('/_sim/mode', {'notify': 'ok'})
    wait_for(lambda: any(d.get('acked') for d in sim.deliveries(o) or []),
             10, 0.1)
    tap.is_(events_for(inst, o, base), ['order.paid'],
            '... one order.paid in all')

    # Paid at an earlier attempt, but 240 of 250, its notifications
    # lost: a new attempt would be a second payment for the order.
    om = oid('GMIS')
    inst.create_order(om, 250)
    sim_pay(sim, tap, om, 240, {'drop_all': True})
    before = len((inst.order(om) or {}).get('attempts') or [])
    r = inst.api('POST', '/orders/%s/attempts' % om, {'profile': 'wxhmac'})
    tap.is_((r.status, (r.json or {}).get('error')), (409,
            'payment_mismatch'), 'an earlier attempt found paid 240 of '
            '250: 409 payment_mismatch', r.describe())
    tap.ok(len((inst.order(om) or {}).get('attempts') or []) == before and
           'amount_mismatch' in (r.json or {}).get('message', ''),
           '... no attempt recorded, the message naming the exception',
           r.describe())

    r = inst.api('POST', '/orders/nope-%s/attempts' % o,
                 {'profile': 'wxshop'})
    tap.is_(r.status, 404, 'attempt on an unknown order: 404')
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'nope'})
    tap.is_(r.status, 400, 'attempt on an unknown profile: 400')
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop',
                                                      'extra': 1})
    tap.is_(r.status, 400, 'attempt with an unknown field: 400')
    r = inst.api('GET', '/orders/%s/attempts' % o)
    tap.is_(r.status, 405, 'GET on attempts: 405')

    # Concurrent attempts on a fresh order: never two 201s.
    o2 = oid('RACE')
    inst.create_order(o2, 900)
    sim.control('/_sim/order', {'profile': 'wxshop', 'order_id': o2,
                                'amount': 900})
    sim.control('/_sim/mode', {'query': 'slow', 'slow_s': 1})
    statuses = []

    def attempt(_):
        statuses.append(inst.api('POST', '/orders/%s/attempts' % o2,
                                 {'profile': 'wxshop'}).status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sim.control('/_sim/mode', {'query': 'ok'})
    tap.ok(statuses.count(201) <= 1, 'concurrent attempts: at most one 201',
           repr(statuses))
    tap.ok(all(s in (201, 409, 503) for s in statuses),
           '... the others 409 (in progress) or 503 (provider slow)',
           repr(statuses))

    # Provider data given with the order is its first attempt: the hold
    # counts from it.
    o3 = oid('WITHDATA')
    r = inst.api('POST', '/orders', {'order_id': o3, 'amount': 300,
                                     'currency': 'CNY', 'profile': 'wxshop',
                                     'attempt': {'prepay_id': 'wx-1'}})
    tap.is_(r.status, 201, 'an order made with its first attempt\'s data',
            r.describe())
    sim.control('/_sim/order', {'profile': 'wxshop', 'order_id': o3,
                                'amount': 300})
    r = inst.api('POST', '/orders/%s/attempts' % o3, {'profile': 'wxshop'})
    tap.is_((r.status, (r.json or {}).get('error')),
            (409, 'attempt_in_progress'), '... another attempt right after: '
            '409 attempt_in_progress', r.describe())


def test_double_payment(tap, inst, sim):
    o = oid('TWICE')
    base = inst.last_seq()
    inst.create_order(o, 700)
    r = sim.control('/_sim/pay_twice', {'profile': 'wxshop', 'order_id': o,
                                        'amount': 700})
    tap.is_(r.status, 200, 'simulator took two payments', r.describe())
    ok = wait_for(lambda: 'order.double_payment' in events_for(inst, o, base),
                  15, 0.1)
    tap.ok(ok, 'two payments notified: order.double_payment raised',
           repr(events_for(inst, o, base)))
    order = inst.order(o)
    tap.is_(order.get('state'), 'PAID', '... order PAID once')
    ex = [e for e in order.get('exceptions') or []
          if e.get('type') == 'double_payment']
    tap.is_(len(ex), 1, '... one double_payment exception')
    tap.ok(ex and isinstance(ex[0].get('refund_seq'), int),
           '... queued for refund', repr(ex))
    tap.is_(events_for(inst, o, base).count('order.paid'), 1,
            '... one order.paid')


def test_expiry(tap, inst, sim):
    # Unpaid: closed at the provider, then here.
    o = oid('EXP')
    base = inst.last_seq()
    r = inst.api('POST', '/orders', {'order_id': o, 'amount': 100,
                                     'currency': 'CNY', 'profile': 'wxshop',
                                     'expires_in': 2})
    tap.is_(r.status, 201, 'order with expires_in: 201', r.describe())
    tap.ok(isinstance((r.json or {}).get('expires_at'), str),
           '... expires_at shown')
    sim.control('/_sim/order', {'profile': 'wxshop', 'order_id': o,
                                'amount': 100})
    # Expired, not closed yet: a payment opened now would come after it
    # is closed (late, to be refunded), so the guard opens none.
    time.sleep(2.2)
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop'})
    tap.ok(r.status == 409 and (r.json or {}).get('error') ==
           'order_expired' and 'open a new order' in (r.json or {}).get(
               'message', '') and (r.json or {}).get('order', {}).get(
               'state') == 'PENDING', 'an expired order not closed yet: no '
           'new attempt (409 order_expired, saying to open a new order)',
           r.describe())
    took = sweep_until(inst, o, 'CLOSED', 20)
    tap.ok(took is not None, 'expired unpaid order: CLOSED here',
           repr(inst.order(o)))
    tap.ok((sim.ledger() or {}).get('orders', {}).get(o, {}).get('closed'),
           '... and closed at the provider first',
           json.dumps((sim.ledger() or {}).get('orders', {}).get(o)))
    tap.ok(((sim.stats() or {}).get('by_order') or {}).get(o, {}).get(
        'close', 0) >= 1, '... the close API was called')
    tap.is_(events_for(inst, o, base), ['order.closed'],
            '... order.closed raised')
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop'})
    tap.is_((r.status, (r.json or {}).get('error')), (409, 'order_closed'),
            '... no new attempt on a closed order')

    # Paid but never notified: PAID, never CLOSED.
    o = oid('EXPPAID')
    base = inst.last_seq()
    inst.api('POST', '/orders', {'order_id': o, 'amount': 100,
                                 'currency': 'CNY', 'profile': 'wxshop',
                                 'expires_in': 2})
    sim_pay(sim, tap, o, 100, {'drop_all': True})
    time.sleep(2.2)
    took = sweep_until(inst, o, 'PAID', 20)
    tap.ok(took is not None, 'expired order paid but never notified: PAID',
           repr(inst.order(o)))
    sweep(inst)
    time.sleep(1)
    sweep(inst)
    tap.is_(inst.order(o).get('state'), 'PAID', '... and stays PAID')
    tap.is_(events_for(inst, o, base), ['order.paid'],
            '... no order.closed')


def test_provider_trouble(tap, inst, sim):
    for mode in ('down', 'garbage'):
        o = oid('DOWN')
        base = inst.last_seq()
        inst.create_order(o, 321)
        sim_pay(sim, tap, o, 321, {'drop_all': True})
        sim.control('/_sim/mode', {'query': mode})
        time.sleep(1.1)
        rc, err = sweep(inst)
        tap.is_(rc, 75, 'provider %s: the sweeper pass exits 75 '
                '(EX_TEMPFAIL: a provider call failed)' % mode, err[-600:])
        tap.ok('query ' + o in err or o in err,
               '... and logs the failed query', err[-600:])
        order = inst.order(o)
        tap.is_(order.get('state'), 'PENDING', '... order still PENDING')
        tap.ok(isinstance(order.get('next_query_at'), str),
               '... rescheduled (backs off)', repr(order))
        rc, err = sweep(inst)
        text = inst.request('GET', inst.path('/metrics')).body.decode()
        tap.ok(rc == 75 and harness.metric(
            text, 'payhook_sweep_failing') == 1,
            '... a pass right after, the order waiting for its retry: '
            'exit 75 still, payhook_sweep_failing 1 (no success while '
            'the provider may be out of reach)', rc, err[-600:])
        sim.control('/_sim/mode', {'query': 'ok'})
        took = sweep_until(inst, o, 'PAID', 20)
        tap.ok(took is not None, '... recovers when the provider is back')
        text = inst.request('GET', inst.path('/metrics')).body.decode()
        tap.is_(harness.metric(text, 'payhook_sweep_failing'), 0,
                '... payhook_sweep_failing back at 0')
        tap.is_(events_for(inst, o, base), ['order.paid'],
                '... one order.paid, nothing lost')


def asked_in_passes(inst, sim, order_id, n, limit_s=40):
    """Runs sweeper passes until the simulator was asked about order_id
    n times; whether it was within limit_s."""
    def enough():
        sweep(inst)
        return sim.stats()['by_order'].get(order_id, {}).get('query', 0) >= n
    return wait_for(enough, limit_s, 0.3)


def test_close_down(tap, inst, sim):
    """An expired unpaid order whose close call goes unanswered (the
    provider's close API down): that is an unanswered ask, tried again
    waiting longer each time, not a step of the schedule used up; once
    the close API is back, it is closed."""
    o = oid('CLOSEDOWN')
    base = inst.last_seq()
    unpaid_order(inst, sim, o, 2)
    sim.control('/_sim/mode', {'close': 'down'})
    time.sleep(2.2)

    def closes():
        return sim.stats()['by_order'].get(o, {}).get('close', 0)

    def enough():
        sweep(inst)
        return closes() >= 4
    tap.ok(wait_for(enough, 40, 0.3), 'close API down: the close tried '
           'four times')
    order = inst.order(o) or {}
    tap.ok(order.get('state') == 'PENDING' and
           order.get('query_failures', 0) >= 4 and
           order.get('query_count', 99) <= 1, '... still PENDING, its '
           'schedule not used up, the failures counted', repr(order))
    sim.control('/_sim/mode', {'close': 'ok'})
    took = sweep_until(inst, o, 'CLOSED', 40)
    tap.ok(took is not None, '... the close API back: CLOSED',
           repr(inst.order(o)))
    tap.is_(events_for(inst, o, base), ['order.closed'],
            '... one order.closed')


def test_outage_outlasts_schedule(tap, inst, sim):
    """The provider down for longer than an order's schedule (an order
    without expiry, its notifications lost): unanswered asks do not use
    the schedule up, they are tried again, waiting longer each time; once
    the provider is back, the order is asked and paid."""
    o = oid('OUTAGE')
    base = inst.last_seq()
    inst.create_order(o, 432)
    sim_pay(sim, tap, o, 432, {'drop_all': True})
    sim.control('/_sim/mode', {'query': 'down'})

    tap.ok(asked_in_passes(inst, sim, o, 4), 'provider down: the order '
           'asked four times, more than its schedule\'s three steps')
    order = inst.order(o) or {}
    tap.ok(order.get('state') == 'PENDING' and
           isinstance(order.get('next_query_at'), str) and
           order.get('query_count') == 0 and
           order.get('query_failures', 0) >= 4, '... still due, its '
           'schedule not used up (query_count 0), the failures counted',
           repr(order))
    gap = (api_time(order['next_query_at']) -
           api_time(order['last_query_at'])
           if order.get('next_query_at') and order.get('last_query_at')
           else None)
    tap.ok(gap is not None and gap >= 8, '... the wait doubled from the first step (1 s) '
           'with each failure in a row', gap)
    sim.control('/_sim/mode', {'query': 'ok'})
    took = sweep_until(inst, o, 'PAID', 40)
    tap.ok(took is not None, '... the provider back: the order is asked '
           'and paid')
    tap.is_(events_for(inst, o, base), ['order.paid'], '... one order.paid')
    order = inst.order(o) or {}
    tap.ok('query_failures' not in order, '... the run of failures over',
           repr(order))


def test_outage_of_one_profile(tap, inst, sim):
    """An order offered on two profiles, paid through one whose provider
    is then down while the other answers NOTPAY: the ask half answered
    does not use the schedule up either, and once that provider is back
    the order is asked there and paid."""
    o = oid('HALF')
    base = inst.last_seq()
    inst.create_order(o, 345, profile='wxhmac')
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop'})
    tap.is_(r.status, 201, 'an order offered on wxhmac, then wxshop',
            r.describe())
    sim_pay(sim, tap, o, 345, {'drop_all': True}, profile='wxhmac')
    served = inst.profile_settings

    def hmac_down():
        out = served()
        out['wxhmac']['api_base'] = 'http://127.0.0.1:%d' % harness.free_port()
        return out
    inst.profile_settings = hmac_down
    inst.write()

    tap.ok(asked_in_passes(inst, sim, o, 4), 'wxhmac\'s provider down: '
           'asked at wxshop four times, more than the schedule\'s three '
           'steps')
    order = inst.order(o) or {}
    tap.ok(order.get('state') == 'PENDING' and order.get('query_count') == 0
           and isinstance(order.get('next_query_at'), str), '... still '
           'due, no step used up', repr(order))
    inst.profile_settings = served
    inst.write()
    tap.ok(sweep_until(inst, o, 'PAID', 40) is not None, '... wxhmac back: '
           'asked there, PAID')
    tap.is_(events_for(inst, o, base), ['order.paid'], '... one order.paid')


def test_query_now(tap, inst, sim):
    o = oid('QNOW')
    inst.create_order(o, 250)
    r = inst.api('POST', '/orders/%s/query' % o)
    tap.is_(r.status, 200, 'query now on an unpaid order: 200',
            r.describe())
    q = (r.json or {}).get('query') or {}
    tap.is_(q.get('provider_unavailable'), False, '... provider asked')
    tap.is_([c.get('result') for c in q.get('calls') or []], ['not_found'],
            '... which does not know the order yet')
    sim_pay(sim, tap, o, 250, {'drop_all': True})
    sim.control('/_sim/mode', {'query': 'down'})
    r = inst.api('POST', '/orders/%s/query' % o)
    tap.is_(r.status, 200, 'query now with the provider down: 200')
    tap.is_(((r.json or {}).get('query') or {}).get('provider_unavailable'),
            True, '... says the provider could not be asked')
    tap.is_((r.json or {}).get('state'), 'PENDING',
            '... the stored state, not a guess')
    sim.control('/_sim/mode', {'query': 'ok'})
    r = inst.api('POST', '/orders/%s/query' % o)
    tap.is_((r.json or {}).get('state'), 'PAID',
            'query now after paying: PAID', r.describe())
    tap.is_([(c.get('result'), c.get('outcome')) for c in
             ((r.json or {}).get('query') or {}).get('calls') or []],
            [('paid', 'applied')], '... the provider said paid, and it was '
            'applied')
    # Paid at the provider, but not the order's amount: the provider's
    # "paid" and what payhook made of it.
    om = oid('QMIS')
    inst.create_order(om, 250)
    sim_pay(sim, tap, om, 240, {'drop_all': True})
    r = inst.api('POST', '/orders/%s/query' % om)
    tap.ok((r.json or {}).get('state') == 'PENDING' and [
        (c.get('result'), c.get('outcome')) for c in
        ((r.json or {}).get('query') or {}).get('calls') or []] ==
        [('paid', 'amount_mismatch')], 'query now, paid 240 of 250: '
        'PENDING, the call says paid and amount_mismatch', r.describe())
    r = inst.api('POST', '/orders/nope-%s/query' % o)
    tap.is_(r.status, 404, 'query now on an unknown order: 404')
    r = inst.api('POST', '/orders/%s/query' % o, token='wrong')
    tap.is_(r.status, 401, 'query now without the token: 401')
    r = inst.api('POST', '/orders/%s/query' % o, {})
    tap.is_(r.status, 200, 'query now with {}: 200', r.describe())
    o2 = oid('QBODY')
    inst.create_order(o2, 250)
    asked = sim.stats()['total']['query']
    for body in ('{', 'not json at all', '{"force":true}', '[1,2]'):
        r = inst.api('POST', '/orders/%s/query' % o2, body)
        tap.ok(r.status == 400 and (r.json or {}).get('error') ==
               'bad_request', 'query now with the body %r: 400 bad_request'
               % body, r.describe())
    tap.is_(sim.stats()['total']['query'], asked,
            '... and the provider was not asked')


def test_killed_sweeper(tap, inst, sim):
    o = oid('KILL')
    base = inst.last_seq()
    inst.create_order(o, 999)
    sim_pay(sim, tap, o, 999, {'drop_all': True})
    sim.control('/_sim/mode', {'query': 'slow', 'slow_s': 10})
    time.sleep(1.1)
    p = subprocess.Popen([PAYHOOK, '-c', inst.config, 'sweep'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    got_query = wait_for(lambda: ((sim.stats() or {}).get('by_order') or
                                  {}).get(o, {}).get('query', 0) > 0, 5, 0.1)
    time.sleep(0.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    tap.ok(got_query, 'sweeper killed with SIGKILL while its query was in '
           'flight')
    sim.control('/_sim/mode', {'query': 'ok'})
    rc, err = sweep(inst)
    tap.is_(inst.order(o).get('state'), 'PENDING',
            '... a pass right after skips the leased order', err[-400:])
    took = sweep_until(inst, o, 'PAID', 30)
    tap.ok(took is not None, '... once the lease runs out the next pass '
           'finishes the work')
    tap.is_(events_for(inst, o, base), ['order.paid'],
            '... applied exactly once')


def test_watch(tap, inst, sim):
    o = oid('WATCH')
    inst.create_order(o, 42)
    sim_pay(sim, tap, o, 42, {'drop_all': True})
    p = subprocess.Popen([PAYHOOK, '-c', inst.config, 'sweep', '--watch',
                          '--interval', '1'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    ok = wait_for(lambda: inst.order(o).get('state') == 'PAID', 20, 0.1)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    tap.ok(ok, 'sweep --watch pays a dropped order by itself')
    tap.is_(rc, 0, '... and stops cleanly on SIGTERM')


def two_sweepers(sim, inst, call, slow_s):
    """A sweeper pass while the provider answers call ('query' or 'close')
    in slow_s seconds, and a second pass started once the first one's
    leases (QUICK_SWEEP: 5 s) have run out; the results of both."""
    sim.control('/_sim/mode', {call: 'slow', 'slow_s': slow_s})
    first = {}
    t = threading.Thread(target=lambda: first.update(rc=sweep(inst)))
    t.start()
    time.sleep(5.5)
    second = sweep(inst)
    t.join()
    sim.control('/_sim/mode', {call: 'ok'})
    return first.get('rc'), second


def each_once(tap, sim, inst, ids, kind, delay, what):
    """Two sweepers (two_sweepers) with kind calls delay seconds long:
    one test point, that the provider got one call of kind per order."""
    first, second = two_sweepers(sim, inst, kind, delay)
    by = sim.stats().get('by_order', {})
    calls = {o: (by.get(o) or {}).get(kind) for o in ids}
    tap.is_(sorted(set(calls.values())), [1], what, calls, first, second)


def lease_instance(tap, name, concurrency):
    """An instance of its own for a test of the sweepers' leases: quick
    sweeps, sweep_concurrency calls a wave."""
    return harness.start_with_simulator(
        tap, name, time_factor=1000,
        core=dict(harness.QUICK_SWEEP,
                  sweep_concurrency=str(concurrency)),
        profile={'query_schedule': SCHEDULE})


def test_paid_before_registered(tap, inst, sim):
    """The shopper pays before the merchant's POST /orders goes through:
    the notification is recorded as payment.unknown_order and
    acknowledged; registering the order applies it (201 PAID, order.paid),
    and neither the merchant's query nor the sweeper's applies it again."""
    for how in ('query', 'sweep'):
        o = oid('EARLY')
        base = inst.last_seq()
        sim_pay(sim, tap, o, 100)
        wait_for(lambda: any(d['acked'] for d in sim.deliveries(o)), 10)
        tap.is_(events_for(inst, o, base), ['payment.unknown_order'],
                '%s: paid before it was registered: payment.unknown_order'
                % how)
        r = inst.create_order(o, 100)
        tap.is_((r.status, (r.json or {}).get('state')), (201, 'PAID'),
                '... then registered: 201 PAID', r.describe())
        tap.is_(events_for(inst, o, base), ['payment.unknown_order',
                                            'order.paid'],
                '... order.paid raised once')
        if how == 'query':
            r = inst.api('POST', '/orders/%s/query' % o)
            tap.is_((r.json or {}).get('state'), 'PAID',
                    '... the merchant\'s query finds it paid', r.describe())
        else:
            sweep(inst)
        tap.is_(events_for(inst, o, base), ['payment.unknown_order',
                                            'order.paid'],
                '... and asking again changes nothing')
        tap.is_(inst.create_order(o, 100).status, 200,
                '... registering it again is the same order')


def paid_unheard(sim, inst, tag, n):
    """n orders paid at the provider, every notification dropped, due for
    their first query; their ids."""
    ids = [oid('%s%d' % (tag, i)) for i in range(n)]
    for o in ids:
        inst.create_order(o, 100)
        sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': o,
                                  'amount': 100, 'notify': {'drop_all': True}})
    time.sleep(1.2)
    return ids


def test_lease_waves(tap):
    """A sweeper leases the orders of a batch as it asks about them, a
    wave of sweep_concurrency calls at a time, not the whole batch at
    once: a second sweeper coming after the first's oldest leases would
    have run out never asks the provider about an order again."""
    sim, inst = lease_instance(tap, 'waves', 1)
    ids = paid_unheard(sim, inst, 'WAVE', 5)
    each_once(tap, sim, inst, ids, 'query', 1.5, 'two sweepers, one after '
              'the other\'s leases would have run out: each order asked '
              'about once')
    tap.ok(all((inst.order(o) or {}).get('state') == 'PAID' for o in ids),
           '... and every one of them PAID')
    inst.stop()
    sim.stop()


def test_wave_width(tap):
    """A wave makes sweep_concurrency calls at once (the default, 8),
    not fewer: sixteen orders due, the provider slow, two waves of eight
    calls in flight together."""
    sim, inst = lease_instance(tap, 'width', 8)
    ids = paid_unheard(sim, inst, 'WIDE', 16)
    sim.control('/_sim/mode', {'query': 'slow', 'slow_s': 1.0})
    rc, err = sweep(inst)
    sim.control('/_sim/mode', {'query': 'ok'})
    st = sim.stats()
    tap.is_(st['most_at_once'], 8, 'sixteen orders due, the provider slow: '
            'eight calls in flight together', err[-300:])
    tap.is_(st['total']['query'], 16, '... each order asked once in the '
            'pass')
    tap.ok(all((inst.order(o) or {}).get('state') == 'PAID' for o in ids),
           '... and every one of them PAID')
    inst.stop()
    sim.stop()


def test_removed_profile(tap):
    """A profile taken out of the configuration (renamed, or removed by
    mistake) while an order of it is pending and paid at the provider, its
    notification lost: the order is neither dropped from the schedule nor
    closed when it expires, the sweep and the query route say why, and the
    order is asked again, and paid, once the profile is back."""
    sim, inst = lease_instance(tap, 'rmprof', 4)
    # One never paid, without expiry, asked along its schedule to its end:
    # no longer due, but pending, and payable still.
    ended = oid('RMEND')
    inst.create_order(ended, 100, profile='wxhmac')
    sim.control('/_sim/order', {'profile': 'wxhmac', 'order_id': ended,
                                'amount': 100})

    def ended_due():
        inst.cli('sweep')
        return (inst.order(ended) or {}).get('next_query_at')
    tap.ok(wait_for(lambda: ended_due() is None, 15, 0.5), 'an order '
           'without expiry asked to the end of its schedule: no longer due',
           inst.order(ended))
    o = oid('RMPROF')
    r = inst.create_order(o, 100, profile='wxhmac', expires_in=2)
    tap.is_(r.status, 201, 'an order on wxhmac', r.describe())
    sim_pay(sim, tap, o, 100, {'drop_all': True}, profile='wxhmac')
    # A paid order of the same profile with a refund asked for.
    paid = oid('RMREF')
    inst.create_order(paid, 100, profile='wxhmac')
    sim_pay(sim, tap, paid, 100, profile='wxhmac')
    wait_for(lambda: (inst.order(paid) or {}).get('state') == 'PAID', 10)
    r = inst.api('POST', '/orders/%s/refunds' % paid, {'amount': 40})
    tap.is_(r.status, 201, 'a refund of a paid wxhmac order', r.describe())
    rid = (r.json or {}).get('refund_id') or '?'
    # An order offered on wxhmac, then on wxshop, paid there unheard.
    both = oid('RMBOTH')
    inst.create_order(both, 100, profile='wxhmac')
    r = inst.api('POST', '/orders/%s/attempts' % both, {'profile': 'wxshop'})
    tap.is_(r.status, 201, 'an order offered on wxhmac, then on wxshop',
            r.describe())
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    last_ok = harness.metric(
        text, 'payhook_sweep_last_success_timestamp_seconds')
    inst.stop()
    kept = dict(inst.profiles)
    del inst.profiles['wxhmac']
    inst.write()
    p = inst.cli('check')
    tap.ok(p.returncode == 0 and 'warning: profile wxhmac is not '
           'configured, but 3 pending order(s)' in p.stderr and
           (o in p.stderr or ended in p.stderr) and paid not in p.stderr and
           'but 1 refund(s) wait to be sent through it (%s)' % rid in
           p.stderr, 'check: warnings naming the profile, its three '
           'pending orders (the one no longer due too, not its paid one) '
           'and its refund', p.returncode, p.stderr[-400:])
    p = inst.cli('refunds', 'run')
    tap.ok(p.returncode == 78 and rid in p.stderr and 'wxhmac' in p.stderr
           and 'no longer configured' in p.stderr, 'refunds run, profile '
           'gone: exit 78 (the configuration), a warning naming the refund '
           'and the profile',
           p.returncode, p.stderr[-400:])
    got = inst.cli('refunds', 'list')
    tap.is_([line.split('\t')[1] for line in got.stdout.splitlines()
             if line.split('\t')[0] == rid], ['PENDING'],
            '... and the refund waits', got.stdout[-300:])
    time.sleep(2.2)
    rc, err = sweep(inst)
    tap.is_(rc, 78, 'profile gone: the sweep exits 78 (the configuration), '
            'the order waits', err)
    tap.ok(o in err and 'wxhmac' in err and 'no longer has' in err,
           '... a warning naming the order and the profile', err)
    got = inst.cli('order', 'show', o)
    order = json.loads(got.stdout) if got.returncode == 0 else {}
    tap.is_(order.get('state'), 'PENDING', '... expired, but not closed')
    due = order.get('next_query_at')
    left = (datetime.datetime.strptime(due, '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=datetime.timezone.utc).timestamp() - time.time()
        if isinstance(due, str) else None)
    tap.ok(left is not None and 0 < left <= 600, '... and still on the '
           'schedule, asked again within ten minutes', due, left)
    sim_pay(sim, tap, both, 100, {'drop_all': True})   # after the sweep
    inst.start()
    text = inst.request('GET', inst.path('/metrics')).body.decode()
    tap.is_((harness.metric(text, 'payhook_sweep_failing'),
             harness.metric(
                 text, 'payhook_sweep_last_success_timestamp_seconds')),
            (1, last_ok or 'none before'), '... and no success: payhook_sweep_failing 1, '
            'the last success where it was')
    r = inst.api('POST', '/orders/%s/attempts' % both, {'profile': 'wxshop'})
    tap.is_((r.status, (r.json or {}).get('error'),
             (inst.order(both) or {}).get('state')),
            (409, 'already_paid', 'PAID'), 'an attempt on it, wxhmac not '
            'asked (gone), wxshop saying paid: 409 already_paid, not 503 '
            '"try again"', r.describe())
    got = inst.api('GET', '/refunds/%s' % rid).json or {}
    tap.is_((got.get('state'), got.get('sent_at'), got.get('tries'),
             got.get('last_error')),
            ('PENDING', None, 0, 'its profile is no longer configured'),
            '... never sent: sent_at null, no try, last_error says why', got)
    r = inst.api('POST', '/orders/%s/query' % o)
    tap.is_(((r.json or {}).get('query') or {}), {
        'provider_unavailable': True,
        'calls': [{'profile': 'wxhmac', 'asked': False,
                   'error': 'profile wxhmac is not configured'}]},
        'POST /query: the profile not asked, and why', r.describe())
    inst.stop()
    inst.profiles = kept
    inst.write()
    inst.start()
    r = inst.api('POST', '/orders/%s/query' % o)
    tap.is_((r.json or {}).get('state'), 'PAID', 'the profile back: the '
            'order asked again is PAID', r.describe())
    inst.stop()
    sim.stop()


def test_close_lease(tap):
    """The closes of a wave go out an order at a time, after its queries:
    each holds its order's lease again first, so that a close sent after
    the wave's lease ran out is never sent by two sweepers."""
    sim, inst = lease_instance(tap, 'closelease', 16)
    # 16 calls: the 5 orders in one wave (room is kept for an order of
    # 8 profiles), their closes 2 s each, one after the other.
    ids = [oid('CLOSE%d' % i) for i in range(5)]
    for o in ids:
        unpaid_order(inst, sim, o, 1)
    time.sleep(1.5)
    each_once(tap, sim, inst, ids, 'close', 2, 'two sweepers, the second '
              'after the first\'s wave lease ran out, its closes still '
              'going out: each order closed at the provider once')
    tap.ok(all((inst.order(o) or {}).get('state') == 'CLOSED' for o in ids),
           '... and every one of them CLOSED',
           [(inst.order(o) or {}).get('state') for o in ids])
    inst.stop()
    sim.stop()


def test_attempt_outlives_expiry(tap, inst, sim):
    """An attempt asked for before the order expires, its earlier attempts'
    check at a slow provider ending after: 409 order_expired (the sweeper
    may be closing the order at the providers it knows, not this one)."""
    o = oid('ATX')
    unpaid_order(inst, sim, o, 3)
    time.sleep(1)
    sim.control('/_sim/mode', {'query': 'slow', 'slow_s': 2.5})
    try:
        r = inst.api('POST', '/orders/%s/attempts' % o,
                     {'profile': 'wxhmac'})
    finally:
        sim.control('/_sim/mode', {'query': 'ok'})
    tap.is_((r.status, (r.json or {}).get('error'),
             len((inst.order(o) or {}).get('attempts') or [])),
            (409, 'order_expired', 1), 'an attempt whose checks end past '
            'the expiry: 409 order_expired, not recorded', r.describe())


def test_expired_paid_attempt(tap, inst, sim):
    """An order past its expiry, not closed yet, that the shopper paid
    without a word (every notification lost): an attempt is refused, but
    409 already_paid after asking the provider, not order_expired (which
    tells the merchant to open a new order, for the shopper to pay
    twice)."""
    o = oid('EXPP')
    inst.create_order(o, 100, expires_in=2)
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': o,
                              'amount': 100, 'notify': {'drop_all': True}})
    time.sleep(2.3)
    r = inst.api('POST', '/orders/%s/attempts' % o, {'profile': 'wxshop'})
    tap.is_((r.status, (r.json or {}).get('error'),
             ((r.json or {}).get('order') or {}).get('state')),
            (409, 'already_paid', 'PAID'), 'an attempt on an expired order '
            'paid unheard: the provider asked, 409 already_paid',
            r.describe())
    o2 = oid('EXPU')
    unpaid_order(inst, sim, o2, 2)
    time.sleep(2.3)
    r = inst.api('POST', '/orders/%s/attempts' % o2, {'profile': 'wxshop'})
    tap.is_((r.status, (r.json or {}).get('error')), (409, 'order_expired'),
            '... one not paid: 409 order_expired', r.describe())


def test_expired_misfit(tap, inst, sim):
    """An order of 100 the shopper paid 90 (every notification lost),
    then expired: the sweeper finds the payment, which does not fit, and
    closes the order, the 90 queued to go back (order.late_payment); not
    asked about for ever, the money kept."""
    o = oid('MISX')
    inst.create_order(o, 100, expires_in=2)
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': o,
                              'amount': 90, 'notify': {'drop_all': True}})
    base = inst.last_seq()
    time.sleep(2.2)
    for _ in range(4):
        sweep(inst)
        if (inst.order(o) or {}).get('state') != 'PENDING':
            break
        time.sleep(1.1)
    order = inst.order(o) or {}
    ex = {e.get('type'): e for e in order.get('exceptions') or []}
    tap.is_((order.get('state'), order.get('next_query_at')),
            ('CLOSED', None), 'an expired order paid only with the wrong '
            'amount: CLOSED, no longer asked about', order)
    tap.ok('amount_mismatch' in ex and 'late_payment' in ex and
           ex['late_payment'].get('amount') == 90 and
           ex['amount_mismatch'].get('refund_seq') is not None,
           '... the 90 queued to go back (late_payment)', order)
    tap.is_(events_for(inst, o, base), ['order.amount_mismatch',
            'order.closed', 'order.late_payment'], '... its events')
    r = inst.cli('refunds', 'run')
    tap.is_([x.get('amount') for x in (inst.api(
        'GET', '/orders/%s/refunds' % o).json or {}).get('refunds') or []],
        [90], '... and the refund runner makes it', r.stderr[-400:])


class CloseSaysPaid(harness.MockServer):
    """WeChat Pay v2 for one order: "not paid" to a query until the close,
    which answers ORDERPAID (the shopper paid between the two), then the
    payment."""

    def __init__(self, order_id, txn):
        self.order_id, self.txn, self.closed = order_id, txn, False
        self.queries = 0
        harness.MockServer.__init__(self)

    def handle(self, h, body):
        prof = harness.PROFILES['wxshop']
        f = {'return_code': 'SUCCESS', 'appid': prof['appid'],
             'mch_id': prof['mch_id'], 'nonce_str': os.urandom(8).hex()}
        if 'closeorder' in h.path:
            self.closed = True
            f.update(result_code='FAIL', err_code='ORDERPAID',
                     err_code_des='paid')
        else:
            self.queries += 1
            f.update(result_code='SUCCESS', out_trade_no=self.order_id,
                     total_fee='100', trade_state='NOTPAY')
            if self.closed:
                f.update(trade_state='SUCCESS', transaction_id=self.txn,
                         fee_type='CNY', cash_fee='100', trade_type='JSAPI',
                         time_end=harness.beijing_time_end())
        f['sign'] = harness.sign_v2(f, prof['key'],
                                    prof.get('sign_type', 'MD5'))
        out = harness.notify_xml(f)
        h.send_response(200)
        h.send_header('Content-Type', 'text/xml')
        h.send_header('Content-Length', str(len(out)))
        h.end_headers()
        h.wfile.write(out)


def test_close_says_paid(tap):
    """An expired order's close answered "already paid": the sweeper's
    next pass asks about it at once, not after the schedule's next delay
    (hours, late in the schedule)."""
    o = oid('CSP')
    mock = CloseSaysPaid(o, harness.txn_id(o))
    inst = harness.Instance(
        tap, 'closepaid', profiles={'wxshop': harness.PROFILES['wxshop']},
        core=dict(harness.QUICK_SWEEP), profile={
            'api_base': 'http://127.0.0.1:%d' % mock.port,
            'allow_insecure_http': 'yes', 'query_schedule': '1s,6h'})
    inst.start()
    inst.create_order(o, 100, expires_in=1)
    time.sleep(1.5)
    sweep(inst)
    first = mock.queries
    time.sleep(1.1)
    sweep(inst)
    tap.is_((mock.closed, mock.queries - first,
             (inst.order(o) or {}).get('state')), (True, 1, 'PAID'),
            'close answered ORDERPAID: the next pass queries it, not the '
            'schedule\'s next delay, and it is PAID', inst.order(o))
    inst.stop()
    mock.close()


def main(tap):
    sim, inst = harness.start_with_simulator(
        tap, time_factor=1000, core=harness.QUICK_SWEEP,
        profile={'query_schedule': SCHEDULE})
    r = inst.cli('check')
    tap.is_(r.returncode, 0, 'payhook check passes', r.stderr[-400:])
    tap.ok('allow_insecure_http' in r.stderr,
           '... and warns about the plain-http profiles', r.stderr[-400:])
    test_dropped(tap, inst, sim)
    test_late_notification(tap, inst, sim)
    test_guard(tap, inst, sim)
    test_double_payment(tap, inst, sim)
    test_query_now(tap, inst, sim)
    test_provider_trouble(tap, inst, sim)
    test_outage_outlasts_schedule(tap, inst, sim)
    test_outage_of_one_profile(tap, inst, sim)
    test_killed_sweeper(tap, inst, sim)
    test_expiry(tap, inst, sim)
    test_attempt_outlives_expiry(tap, inst, sim)
    test_expired_paid_attempt(tap, inst, sim)
    test_expired_misfit(tap, inst, sim)
    test_paid_before_registered(tap, inst, sim)
    test_close_down(tap, inst, sim)
    test_watch(tap, inst, sim)
    test_lease_waves(tap)
    test_wave_width(tap)
    test_close_lease(tap)
    test_close_says_paid(tap)
    test_removed_profile(tap)


if __name__ == '__main__':
    harness.run(main)
