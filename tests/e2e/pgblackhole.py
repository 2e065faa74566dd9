#!/usr/bin/env python3
"""A PostgreSQL server lost without a word (power lost, a partition),
for test_postgresql.py: run in a network namespace of its own
(``unshare -n``), so that nothing outside it is touched.

    unshare -n python3 pgblackhole.py SOCKET DBNAME

Inside: loopback up, an address of its own (ADDR) on it, and a TCP proxy
on ADDR to the cluster's Unix socket SOCKET (a file: reachable from any
namespace).  A payhook instance there connects through ADDR, makes the
tables (check) and an order; then ADDR is removed.  Every packet to or
from it goes nowhere from then on, and no connection is reset: the
server neither answers nor closes, as a host that lost power.  A
notification is sent then, and again once ADDR is back.  The last line
of stdout is JSON: for each notification its status, body and seconds.

Standard library and harness.py only; everything chatty goes to stderr.
"""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ADDR = '10.203.0.1'


class QuietTap(harness.Tap):
    def _out(self, line):
        sys.stderr.write(line + '\n')


def ip(*args):
    subprocess.run(['ip'] + list(args), check=True, timeout=30)


def timed_notify(inst, body, timeout):
    t0 = time.monotonic()
    try:
        r = inst.request('POST', inst.path('/notify/wxshop'), body,
                         {'Content-Type': 'text/xml'}, timeout=timeout)
        status, text = r.status, (r.body or b'').decode(errors='replace')
    except Exception as e:  # noqa: BLE001 (no answer is the failure)
        status, text = None, 'no answer: %s' % e
    return {'status': status, 'body': text,
            'secs': round(time.monotonic() - t0, 1)}


def main(sock_path, dbname):
    ip('link', 'set', 'lo', 'up')
    ip('addr', 'add', ADDR + '/32', 'dev', 'lo')
    px = harness.UnixProxy(sock_path, ADDR)
    conninfo = ('host=%s port=%d dbname=%s user=postgres '
                'target_session_attrs=read-write connect_timeout=3'
                % (ADDR, px.port, dbname))
    tap = QuietTap()
    inst = harness.Instance(tap, 'pgblackhole', max_procs=1, core={
        'store': 'postgresql', 'pg_conninfo': conninfo})
    out = {}
    try:
        r = inst.cli('check')
        out['check'] = r.returncode
        inst.start()
        out['order'] = inst.create_order('BH1', 100).status
        body = harness.notify_xml(harness.make_payment(
            'BH1', 100, harness.txn_id('bh1')))
        ip('addr', 'del', ADDR + '/32', 'dev', 'lo')
        out['lost'] = timed_notify(inst, body, 45)
        ip('addr', 'add', ADDR + '/32', 'dev', 'lo')
        out['back'] = timed_notify(inst, body, 45)
        out['state'] = (inst.order('BH1') or {}).get('state')
    finally:
        inst.stop()
        harness.cleanup_all()
    sys.stdout.write(json.dumps(out) + '\n')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
