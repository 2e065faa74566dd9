#!/usr/bin/env python3
"""Store limits (doc/design/security.md T17): a 1 MiB LMDB map fills during the test.
Notifications then get the provider's failure answer (so it retries),
payhook's log says what to do (raise map_size_mb), nothing half-written
remains (mdb_dump -a unchanged), and after the map is enlarged and
payhook restarted the provider simulator's retries succeed."""

import os
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main(tap):
    harness.lmdb_only(tap, 'an LMDB map filling up')
    if shutil.which('mdb_dump') is None:
        tap.skip_all('mdb_dump not found (Debian package lmdb-utils)')
    sim, inst = harness.start_with_simulator(tap, 'full', time_factor=30,
                                             core={'map_size_mb': '1'})
    orders, full = harness.fill_store(inst, 'FULL')
    tap.ok(full is not None and full.status in (503, 507),
           'order creation stops with a storage answer when the 1 MiB map '
           'is full (%d orders fit)' % len(orders),
           full.describe() if full else 'never full')
    tap.like((full.json or {}).get('message', '') if full else '',
             r'map_size_mb', '... and the answer says to raise map_size_mb')
    if full is not None and full.status == 503:
        tap.is_(full.headers.get('retry-after'), '5', '... and when to '
                'retry (Retry-After: 5)', full.describe())
    before = harness.store_dump(inst)
    payers = orders[:5]
    for o in payers:
        sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': o,
                                  'amount': 100})
    time.sleep(2)
    dels = sim.deliveries()
    tap.ok(dels and not any(d.get('acked') for d in dels),
           'notifications into the full store are not acknowledged',
           repr([(d.get('status'), d.get('body')) for d in dels[:3]]))
    tap.ok(any(harness.FAIL_ACK_RE.match((d.get('body') or '').encode())
               for d in dels), '... they get the WeChat failure answer')
    tap.ok(before == harness.store_dump(inst), 'nothing half-written: the '
           'store is unchanged (mdb_dump -a)')
    log = inst.server.read_log()
    tap.like(log, r'(?i)(full|MDB_MAP_FULL).*map_size_mb',
             'the log says the map is full and to raise map_size_mb')
    # Restart payhook: the web server starts new processes, which read
    # the enlarged map_size_mb.
    inst.core_extra['map_size_mb'] = '64'
    inst.write()
    for pid in inst.server.backend_pids():
        os.kill(pid, signal.SIGTERM)
    end = time.time() + 90
    while time.time() < end:
        if all((inst.order(o) or {}).get('state') == 'PAID' for o in payers):
            break
        time.sleep(1)
    tap.is_([(inst.order(o) or {}).get('state') for o in payers],
            ['PAID'] * len(payers), 'after map_size_mb is raised and '
            'payhook restarted, the retries pay every order')
    paid = [e['order_id'] for e in inst.all_events(0)
            if e.get('type') == 'order.paid']
    tap.is_(sorted(paid), sorted(payers), '... each exactly once')


if __name__ == '__main__':
    harness.run(main)
