"""End to end under Apache httpd with mod_fcgid.

The core WeChat Pay v2 notification scenarios, served through the shipped
deploy/apache snippet with several payhook.fcgi processes and
FcgidMaxRequestsPerProcess low enough that mod_fcgid recycles processes
during the run: a signed notification pays the order, retries change
nothing, forged, mis-addressed and downgraded notifications are refused
and change nothing, an amount mismatch is recorded, and 300 distinct
notifications sent concurrently are each recorded exactly once.

Skipped when apache2 or mod_fcgid is missing, except under CI=true.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployed  # noqa: E402
import harness  # noqa: E402
from harness import (PROFILES, SUCCESS_ACK, check_ack, make_payment,  # noqa
                     txn_id)

APACHE_IN = os.path.join(deployed.DEPLOY_DIR, 'apache', 'payhook.conf.in')
RECYCLE_AFTER = 20


def events_of(inst, order_id, base):
    return [e['type'] for e in inst.all_events(base)
            if e.get('order_id') == order_id]


def main(tap):
    missing = deployed.apache_missing()
    if missing:
        if deployed.in_ci():
            tap.ok(False, 'Apache with mod_fcgid is needed under CI=true',
                   missing)
            return
        deployed.skip(tap, 'Apache: ' + missing)
        return
    inst = harness.Instance(tap, name='apache')
    fcgi, plugins = deployed.private_copy(inst, harness.PAYHOOK_FCGI,
                                          harness.PLUGIN_DIR)
    text = open(inst.config).read().replace(
        'plugin_dir = %s' % harness.PLUGIN_DIR, 'plugin_dir = %s' % plugins)
    harness.write_file(inst.config, text, mode=0o644)
    snippet = deployed.render(APACHE_IN, [
        ('@PAYHOOK_FCGI@', fcgi), ('@PAYHOOK_CONFIG@', inst.config)])
    # Several processes from the start, recycled after a few requests.
    snippet += ('\nFcgidMaxRequestsPerProcess %d\n' % RECYCLE_AFTER)
    server = deployed.Apache(inst, snippet)
    inst.server = server
    server.start()
    first = set(server.backend_pids())
    tap.ok(len(first) >= 1, 'Apache started payhook.fcgi', sorted(first))
    seen = set(first)

    base = inst.last_seq()
    o = 'AP-' + os.urandom(4).hex()
    tap.is_(inst.create_order(o, 880).status, 201, 'order created')
    body = make_payment(o, 880, txn_id('ap'))
    r = inst.notify(body)
    tap.is_(r.body, SUCCESS_ACK, 'signed notification: SUCCESS, byte-exact')
    order = inst.order(o)
    tap.is_(order.get('state'), 'PAID', 'order PAID')
    for i in range(3):
        tap.is_(inst.notify(body).body, SUCCESS_ACK, 'retry %d: SUCCESS' % i)
    tap.is_(events_of(inst, o, base), ['order.paid'],
            'exactly one order.paid')

    # A request target in absolute form, which Apache passes as it came:
    # routed by its path, as lighttpd's is.
    oa = 'APA-' + os.urandom(4).hex()
    inst.create_order(oa, 120)
    body = harness.notify_xml(make_payment(oa, 120, txn_id('apa')))
    r = harness.http_request(
        server.port, 'POST', 'http://127.0.0.1:%d/notify/wxshop' %
        server.port, body, {'Content-Type': 'text/xml'})
    tap.ok(r.body == SUCCESS_ACK and (inst.order(oa) or {}).get('state') ==
           'PAID', 'POST http://host/notify/wxshop (absolute form): '
           'SUCCESS, the order PAID', r.describe())

    r = inst.api('TRACE', '/orders/' + o)
    tap.ok(r.status == 405 and inst.token.encode() not in (r.body or b''),
           'TRACE is payhook\'s 405, no echo of the request and its token',
           r.status, (r.body or b'')[:200])

    o2 = 'AP2-' + os.urandom(4).hex()
    inst.create_order(o2, 100)
    before = inst.order(o2)
    seq = inst.last_seq()
    forged = make_payment(o2, 100, txn_id('f'), key='z' * 32)
    check_ack(tap, inst.notify(forged), 'FAIL', 'forged signature: FAIL')
    wrong = make_payment(o2, 100, txn_id('w'), appid='wx0000000000000000')
    check_ack(tap, inst.notify(wrong), 'FAIL', 'wrong appid: FAIL')
    down = make_payment(o2, 100, txn_id('d'), profile='wxhmac',
                        sign_type='MD5', key=PROFILES['wxhmac']['key'])
    check_ack(tap, inst.notify(down, profile='wxhmac'), 'FAIL',
              'MD5-signed notification on the HMAC-SHA256 profile: FAIL')
    tap.is_(inst.order(o2), before, '... the order unchanged')
    tap.is_(inst.last_seq(), seq, '... no event')

    r = inst.notify(make_payment(o2, 99, txn_id('mm')))
    tap.is_(r.body, SUCCESS_ACK, 'amount mismatch: recorded, SUCCESS')
    o2r = inst.order(o2)
    tap.is_(o2r.get('state'), 'PENDING', '... not paid')
    tap.is_([e.get('type') for e in o2r.get('exceptions') or []],
            ['amount_mismatch'], '... exception visible')

    # Many at once, across processes that mod_fcgid keeps replacing.
    ids = ['APC-%s-%d' % (os.urandom(3).hex(), i) for i in range(300)]
    for x in ids:
        inst.create_order(x, 1)
        seen.update(server.backend_pids())
    base = inst.last_seq()
    bodies = [make_payment(x, 1, txn_id('c%d' % i))
              for i, x in enumerate(ids)]

    def send(b):
        r = inst.notify(b)
        seen.update(server.backend_pids())
        return r.body

    answers = harness.parallel(send, bodies, workers=12)
    tap.is_(sum(1 for a in answers if a == SUCCESS_ACK), len(ids),
            'all %d concurrent notifications: SUCCESS' % len(ids))
    evs = [e for e in inst.all_events(base) if e.get('type') == 'order.paid']
    tap.is_(sorted(e.get('order_id') for e in evs), sorted(ids),
            'each recorded exactly once')
    tap.ok(all(inst.order(x).get('state') == 'PAID' for x in ids[::25]),
           'orders PAID')
    tap.ok(len(seen - first) >= 2, 'mod_fcgid recycled payhook.fcgi '
           'processes during the run (%d processes seen, FcgidMaxRequests'
           'PerProcess %d)' % (len(seen), RECYCLE_AFTER), sorted(seen))
    r = inst.cli('check')
    tap.is_(r.returncode, 0, 'the store opens cleanly afterwards', r.stderr)


if __name__ == '__main__':
    harness.run(main)
