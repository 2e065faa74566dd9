#!/usr/bin/env python3
"""An existing store brought up to this payhook: the store of schema 3
that demo/run-demo of 8227430 wrote (tests/unit/data/schema3.mdb: a paid
order with a refund asked, an order with attempt data, a pending order,
Idempotency-Keys) under `payhook check`, which says it brings it to the
current schema (records in CBOR since 4), then served: every order and event as it was, and a
new payment applied to it."""

import os
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FIXTURE = os.path.join(harness.TOP_SRCDIR, 'tests', 'unit', 'data',
                       'schema3.mdb')


def main(tap):
    harness.lmdb_only(tap, 'LMDB stores of older schemas brought up to '
                      'date')
    inst = harness.Instance(tap, 'upgrade')
    os.makedirs(os.path.dirname(inst.db), exist_ok=True)
    shutil.copyfile(FIXTURE, inst.db)
    os.chmod(inst.db, 0o600)

    p = inst.cli('check')
    tap.is_(p.returncode, 0, 'check of a schema 3 store: exit 0',
            p.stderr[-500:])
    tap.ok('brought from schema 3 to 5' in p.stdout,
           '... it says it brought the database to schema 5', p.stdout)
    p = inst.cli('check')
    tap.ok(p.returncode == 0 and 'brought' not in p.stdout,
           'a second check has nothing to bring up', p.stdout)

    inst.start()
    o = inst.order('MIG-ATT-1') or {}
    tap.is_((o.get('state'), o.get('amount')), ('PENDING', 2500),
            'the order with attempt data: pending, 2500', repr(o)[:300])
    data = ((o.get('attempts') or [{}])[0]).get('data')
    tap.is_(data, {'txnTime': '20261205210000',
                   'nested': {'list': [1, -2, '\u6536\u6b3e', True, None]}},
            '... its attempt data as it was given')
    o = inst.order('DEMO-20261205210818-18227') or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')),
            ('REFUNDING', '420020261206050818b1b9298ad0'),
            'the paid order with a refund asked: REFUNDING, its transaction')
    r = inst.api('GET', '/refunds/phr218b6511e63a1')
    tap.is_((r.status, (r.json or {}).get('amount')), (200, 1),
            'its refund, by id', r.describe())
    r = inst.events(after=0)
    evs = (r.json or {}).get('events') or []
    tap.is_([(e.get('id'), e.get('type')) for e in evs],
            [('218b6511e63a6660-1', 'order.paid'),
             ('218b6511e63a6660-2', 'refund.requested')],
            'the two events, their ids as before', r.describe())

    r, _ = inst.pay('MIG-PEND-2', 300, harness.txn_id('MIG-PEND-2'))
    tap.is_(r.status, 200, 'a payment of the pending order is acknowledged',
            r.describe())
    tap.is_((inst.order('MIG-PEND-2') or {}).get('state'), 'PAID',
            '... and the order is PAID')
    evs = (inst.events(after=2).json or {}).get('events') or []
    tap.is_([(e.get('id'), e.get('type')) for e in evs],
            [('218b6511e63a6660-3', 'order.paid')],
            '... its event next in the feed, of the same epoch')
    inst.cleanup()


if __name__ == '__main__':
    harness.run(main)
