#!/usr/bin/env python3
"""The merchant's contract through lighttpd: Idempotency-Key on every
mutating call, refunds by the merchant's id (create, read, list, cancel),
the event feed's epoch and event ids, `payhook restore` (no event or refund
id handed out twice, an old-epoch cursor answered 409), and an
Idempotency-Key whose call is killed with SIGKILL between its effect and
its answer."""

import ctypes
import ctypes.util
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check_json_error  # noqa: E402


def paid(tap, inst, oid, amount=1000):
    inst.create_order(oid, amount)
    r, _ = inst.pay(oid, amount, harness.txn_id(oid))
    st = (inst.order(oid) or {}).get('state')
    tap.is_(st, 'PAID', 'order %s paid' % oid, r.describe())


def refund(inst, oid, body, key=None):
    hdrs = {'Idempotency-Key': key} if key is not None else None
    return inst.api('POST', '/orders/%s/refunds' % oid, body, headers=hdrs)


def refunds_of(inst, oid):
    r = inst.api('GET', '/orders/%s/refunds' % oid)
    return (r.json or {}).get('refunds') if r.status == 200 else None


def test_keys(tap, inst):
    oid = 'IK-' + os.urandom(4).hex()
    paid(tap, inst, oid)
    body = {'amount': 300, 'reason': 'retry'}
    answers = [refund(inst, oid, body, key='k-' + oid) for _ in range(3)]
    tap.is_([a.status for a in answers], [201, 201, 201],
            'a refund sent three times with one key: 201 each time',
            [a.describe() for a in answers])
    tap.ok(answers[0].body == answers[1].body == answers[2].body,
           '... the same bytes each time')
    tap.is_([a.headers.get('idempotent-replayed') for a in answers],
            [None, 'true', 'true'],
            '... the retries say Idempotent-Replayed: true')
    tap.is_(len(refunds_of(inst, oid) or []), 1, '... one refund made')
    tap.is_((inst.order(oid) or {}).get('refund_requested'), 300,
            '... 300 asked, not 900')
    tap.is_((inst.order(oid) or {}).get('refunded'), 0,
            '... the order shows refunded too: 0 so far')
    r = refund(inst, oid, {'amount': 200}, key='k-' + oid)
    check_json_error(tap, r, 422, 'the key with another body')
    tap.is_((r.json or {}).get('error'), 'idempotency_key_reused',
            '... idempotency_key_reused')
    r = inst.api('POST', '/orders/%s/attempts' % oid, {'profile': 'wxshop'},
                 headers={'Idempotency-Key': 'k-' + oid})
    tap.is_((r.status, (r.json or {}).get('error')),
            (422, 'idempotency_key_reused'),
            'the key on another route: reused', r.describe())
    # An empty key is refused too (tests/unit/src/web/test_fc.c); lighttpd drops
    # empty header fields before payhook sees them.
    for bad, name in (('x' * 256, '256 characters'),
                      ('caf\u00e9', 'not ASCII'), ('a\tb', 'a tab')):
        r = refund(inst, oid, body, key=bad)
        tap.is_((r.status, (r.json or {}).get('error')),
                (400, 'invalid_idempotency_key'),
                'an Idempotency-Key %s: 400 invalid_idempotency_key' % name,
                r.describe())
    r = refund(inst, oid, {'amount': 1}, key='x' * 255)
    tap.is_(r.status, 201, 'a key of 255 characters is fine', r.describe())
    # The URI is part of the key's fingerprint, however long.
    long_path = '/orders?' + 'q' * 6000
    order = {'order_id': 'LONGURI-' + oid, 'amount': 100, 'currency': 'CNY',
             'profile': 'wxshop'}
    r1, r2 = [inst.api('POST', long_path, order, raw_path=True,
                       headers={'Idempotency-Key': 'long-' + oid})
              for _ in range(2)]
    tap.ok(r1.status == 201 and r2.status == 201 and r1.body == r2.body and
           r2.headers.get('idempotent-replayed') == 'true', 'a key on a '
           'call of a 6,000-byte URI: made, then replayed (not 503)',
           r1.describe(), r2.describe())
    # A 4xx answer is kept too; the body it was given is part of the key.
    r1 = refund(inst, oid, {'amount': 10 ** 6}, key='too-much-' + oid)
    r2 = refund(inst, oid, {'amount': 10 ** 6}, key='too-much-' + oid)
    tap.ok(r1.status == 409 and r2.status == 409 and r1.body == r2.body and
           r2.headers.get('idempotent-replayed') == 'true',
           'a refused call is answered the same again', r2.describe())
    # Orders and attempts.
    oid2 = 'IO-' + os.urandom(4).hex()
    create = {'order_id': oid2, 'amount': 50, 'currency': 'CNY',
              'profile': 'wxshop'}
    a = inst.api('POST', '/orders', create, headers={'Idempotency-Key': oid2})
    b = inst.api('POST', '/orders', create, headers={'Idempotency-Key': oid2})
    tap.ok(a.status == 201 and b.status == 201 and a.body == b.body and
           b.headers.get('idempotent-replayed') == 'true',
           'POST /orders replayed: the same 201', b.describe())
    r = inst.api('POST', '/orders/%s/attempts' % oid2, {'profile': 'wxshop'},
                 headers={'Idempotency-Key': 'att-' + oid2})
    r2 = inst.api('POST', '/orders/%s/attempts' % oid2, {'profile': 'wxshop'},
                  headers={'Idempotency-Key': 'att-' + oid2})
    tap.ok(r.status == r2.status and r.body == r2.body and
           r2.headers.get('idempotent-replayed') == 'true',
           'an attempt replayed: the same answer', r2.describe())
    o = inst.order(oid2) or {}
    tap.is_(len([x for x in o.get('attempts', [])
                 if x.get('source') == 'attempt']), 1,
            '... one attempt recorded')


def test_refund_ids(tap, inst, sim):
    # An unknown id is named as it was sent, by a cancel as by a read.
    for method, path in (('GET', '/refunds/%s'),
                         ('POST', '/refunds/%s/cancel')):
        r = inst.api(method, path % ('%C3%A9' * 3))
        tap.is_((r.status, (r.json or {}).get('message')),
                (404, 'no refund "\u00e9\u00e9\u00e9"'), '%s of an unknown '
                'refund id not in ASCII: 404, naming it' % method,
                r.describe())
    oid = 'RI-' + os.urandom(4).hex()
    paid(tap, inst, oid)
    rid = 'mr-' + os.urandom(4).hex()
    r = refund(inst, oid, {'amount': 400, 'refund_id': rid})
    tap.is_(r.status, 201, 'a refund with refund_id: 201', r.describe())
    tap.is_(((r.json or {}).get('refund_id'), (r.json or {}).get('state')),
            (rid, 'PENDING'), '... with that id, PENDING')
    r = refund(inst, oid, {'amount': 400, 'refund_id': rid})
    tap.is_(r.status, 200, 'the same refund_id, order and amount: 200',
            r.describe())
    tap.is_((r.json or {}).get('refund_id'), rid, '... the same refund')
    r = refund(inst, oid, {'amount': 401, 'refund_id': rid})
    tap.is_((r.status, (r.json or {}).get('error')),
            (409, 'refund_id_conflict'), 'another amount: 409 '
            'refund_id_conflict', r.describe())
    other = 'RO-' + os.urandom(4).hex()
    paid(tap, inst, other)
    r = refund(inst, other, {'amount': 400, 'refund_id': rid})
    tap.is_((r.status, (r.json or {}).get('error')),
            (409, 'refund_id_conflict'), 'another order: 409', r.describe())
    # A double payment: payhook's own refund of it is not the merchant's.
    dbl = 'RD-' + os.urandom(4).hex()
    paid(tap, inst, dbl, amount=500)
    inst.pay(dbl, 500, harness.txn_id(dbl + '-again'))
    mine = [x for x in refunds_of(inst, dbl) or []
            if x.get('reason') == 'double_payment']
    theirs = mine[0].get('refund_id') if mine else 'none'
    r = refund(inst, dbl, {'amount': 500, 'refund_id': theirs})
    tap.is_((r.status, (r.json or {}).get('error'),
             len(refunds_of(inst, dbl) or [])),
            (409, 'refund_id_conflict', 1),
            'the refund_id of payhook\'s refund of a double payment: 409 '
            'refund_id_conflict, not that refund as the merchant\'s',
            r.describe())
    r = inst.api('POST', '/refunds/%s/cancel' % theirs)
    tap.is_((r.status, (r.json or {}).get('state'),
             (r.json or {}).get('reason')), (200, 'CANCELLED', 'double_payment'),
            '... which the merchant may cancel (given back another way)',
            r.describe())
    for bad in ('', 'x' * 65, 'has space', 'ü'):
        r = refund(inst, oid, {'amount': 1, 'refund_id': bad})
        tap.is_(r.status, 400, 'refund_id %r refused: 400' % bad,
                r.describe())
    r = inst.api('GET', '/refunds/' + rid)
    tap.is_((r.status, (r.json or {}).get('amount')), (200, 400),
            'GET /refunds/<id>', r.describe())
    check_json_error(tap, inst.api('GET', '/refunds/nope-' + rid), 404,
                     'GET an unknown refund')
    r = refund(inst, oid, {'amount': 100})
    minted = (r.json or {}).get('refund_id', '')
    tap.like(minted, r'^phr[0-9a-f]{12}[0-9]+$',
             'without refund_id payhook mints one')
    lst = refunds_of(inst, oid)
    tap.is_([x.get('refund_id') for x in lst or []], [rid, minted],
            'GET /orders/<id>/refunds: every refund, in the order asked')
    check_json_error(tap, inst.api('GET', '/orders/NOPE-%s/refunds' % rid),
                     404, 'refunds of an unknown order')
    # Cancel.
    r = inst.api('POST', '/refunds/%s/cancel' % rid)
    tap.is_((r.status, (r.json or {}).get('state')), (200, 'CANCELLED'),
            'a refund not yet sent is cancelled', r.describe())
    tap.is_((inst.order(oid) or {}).get('refund_requested'), 100,
            '... its amount no longer counts')
    evs = [e for e in inst.all_events(0) if e.get('type') ==
           'refund.cancelled' and e.get('refund_id') == rid]
    tap.is_(len(evs), 1, '... refund.cancelled raised')
    r = inst.api('POST', '/refunds/%s/cancel' % rid)
    tap.is_((r.status, (r.json or {}).get('error')), (409, 'refund_settled'),
            'cancelling it again: 409 refund_settled', r.describe())
    r = inst.api('POST', '/refunds/nope-%s/cancel' % rid)
    tap.is_(r.status, 404, 'cancelling an unknown refund: 404')
    # An id WeChat Pay does not take as out_refund_no ('.'): refused at
    # once (the plugin builds the request as the run would, and says
    # why), not accepted to fail at the first run.
    dot = 'mr.' + os.urandom(4).hex()
    r = refund(inst, oid, {'amount': 50, 'refund_id': dot})
    tap.ok(r.status == 400 and 'out_refund_no' in
           (r.json or {}).get('message', ''), 'a refund_id with a dot: 400, '
           'saying what the provider does not take', r.describe())
    inst.cli('refunds', 'run')
    r = inst.api('POST', '/refunds/%s/cancel' % minted)
    tap.is_((r.status, (r.json or {}).get('error')),
            (409, 'refund_in_flight'),
            'a refund the runner has sent: 409 refund_in_flight',
            r.describe())
    got = inst.api('GET', '/refunds/' + dot)
    tap.is_(got.status, 404, '... the one WeChat Pay cannot take was never '
            'made', got.describe())
    tap.is_((inst.order(oid) or {}).get('refund_requested'), 100,
            '... and its amount never counted')
    # Ids of the longest length go to the provider whole: two that share
    # their first 40 characters are two refunds there (an order the
    # simulator took the payment of).
    sim_oid = 'RL-' + os.urandom(4).hex()
    inst.create_order(sim_oid, 1000)
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': sim_oid,
                              'amount': 1000})
    tap.ok(harness.wait_for(lambda: (inst.order(sim_oid) or {}).get(
        'state') == 'PAID', 20), 'an order paid at the simulator')
    stem = 'L' * 40 + os.urandom(3).hex()
    longs = [stem + c * (64 - len(stem)) for c in 'ab']
    for lid in longs:
        r = refund(inst, sim_oid, {'amount': 10, 'refund_id': lid})
        tap.is_(r.status, 201, 'a refund_id of 64 characters: 201',
                r.describe())
    r = inst.cli('refunds', 'run')
    made = (sim.control('/_sim/refunds', method='GET').json or {}).get(
        'refunds', {})
    tap.is_(sorted(k for k in made if k.startswith(stem)), longs,
            '... each sent whole as out_refund_no, two refunds made',
            r.stdout + r.stderr)
    tap.is_([(inst.api('GET', '/refunds/' + lid).json or {}).get('state')
             for lid in longs], ['SUCCEEDED', 'SUCCEEDED'],
            '... and both SUCCEEDED')


def test_feed(tap, inst):
    r = inst.events(0, 5)
    feed = r.json or {}
    epoch = feed.get('epoch', '')
    tap.like(epoch, r'^[0-9a-f]{16}$', 'GET /events names the epoch')
    tap.ok(all(e.get('id') == '%s-%d' % (epoch, e.get('seq'))
               for e in feed.get('events', [])) and feed.get('events'),
           'every event has its id: epoch and seq')
    r = inst.api('GET', '/events?after=0&epoch=' + epoch)
    tap.is_(r.status, 200, 'a cursor of this epoch reads on', r.describe())
    r = inst.api('GET', '/events?after=3&epoch=0123456789abcdef')
    tap.is_((r.status, (r.json or {}).get('error'),
             (r.json or {}).get('epoch')),
            (409, 'feed_epoch_changed', epoch),
            'a cursor of another epoch: 409 feed_epoch_changed and the '
            'current epoch', r.describe())


def test_restore(tap, inst, sim):
    """A backup, ids handed out after it, the backup restored: none of
    those ids is handed out again, and a reader of the old epoch is told."""
    backup = os.path.join(inst.dir, 'restore-me.mdb')
    p = inst.cli('backup', backup)
    tap.is_(p.returncode, 0, 'backup', p.stderr)
    old_epoch = (inst.events(0, 1).json or {}).get('epoch')
    before = inst.all_events(0)
    oid = 'RS-' + os.urandom(4).hex()
    paid(tap, inst, oid)
    minted = (refund(inst, oid, {'amount': 100}).json or {}).get('refund_id')
    after = inst.all_events(0)
    lost = {e['id'] for e in after} - {e['id'] for e in before}
    tap.ok(minted and lost, 'ids handed out after the backup: a refund id '
           'and %d event ids' % len(lost))
    st0 = os.stat(inst.db)
    state = (inst.order(oid) or {}).get('state')

    p = inst.cli('restore', backup)
    tap.ok(p.returncode == 75 and 'is open in process' in p.stderr,
           'restore while payhook.fcgi has the store open: refused, exit '
           '75, naming a process', p.returncode, p.stderr)
    tap.ok(state and (inst.order(oid) or {}).get('state') == state,
           '... and the store is untouched', state)
    p = inst.cli('store', 'new-epoch')
    tap.ok(p.returncode == 75 and 'is open in process' in p.stderr and
           (inst.events(0, 1).json or {}).get('epoch') == old_epoch,
           'store new-epoch while payhook.fcgi has the store open: refused, '
           'exit 75, naming a process; the epoch unchanged', p.returncode,
           p.stderr)
    inst.stop()
    p = inst.cli('restore', os.path.join(inst.dir, 'no-such.mdb'))
    tap.ok(p.returncode == 1 and 'no-such.mdb' in p.stderr,
           'restore of a missing file: exit 1, naming it', p.stderr)
    # A backup whose copy failed (0 bytes), and another program's LMDB
    # file: LMDB would make a new, empty store of either.
    empty = os.path.join(inst.dir, 'empty.mdb')
    open(empty, 'wb').close()
    foreign = os.path.join(inst.dir, 'foreign.mdb')
    subprocess.run(['mdb_load', '-n', '-f', '/dev/stdin', foreign],
                   input=b'VERSION=3\nformat=print\ntype=btree\n'
                   b'HEADER=END\n key\n value\nDATA=END\n', check=True)
    for path, why in ((empty, 'is empty (0 bytes)'),
                      (foreign, 'is not a database this payhook reads')):
        p = inst.cli('restore', path)
        tap.ok(p.returncode == 1 and why in p.stderr and
               'nothing was replaced' in p.stderr,
               'restore of %s: refused, exit 1 (%s)'
               % (os.path.basename(path), why), p.returncode, p.stderr)
        tap.ok(os.stat(inst.db).st_ino == st0.st_ino and
               inst.cli('order', 'show', oid).returncode == 0,
               '... the store is the one that was there, its orders kept')
    p = inst.cli('restore', backup)
    tap.is_(p.returncode, 0, 'restore once every process is gone',
            p.stderr)
    tap.like(p.stdout, r'epoch [0-9a-f]{16} \(the backup\'s was %s\)'
             % old_epoch, '... prints the new epoch and the backup\'s',
             p.stdout)
    tap.ok('removed the stale lock file' in p.stdout,
           '... and that it removed the stale lock file', p.stdout)
    st1 = os.stat(inst.db)
    tap.is_((st1.st_uid, st1.st_gid, st1.st_mode & 0o7777),
            (st0.st_uid, st0.st_gid, st0.st_mode & 0o7777),
            '... the store keeps its owner and mode')
    inst.start()
    sim.point_at(inst)
    tap.is_(inst.order(oid), None, 'the restored store is the backup: the '
            'order made after it is gone')
    r = inst.api('GET', '/events?after=0&epoch=' + old_epoch)
    new_epoch = (r.json or {}).get('epoch')
    tap.ok(r.status == 409 and (r.json or {}).get('error') ==
           'feed_epoch_changed' and new_epoch not in (None, old_epoch),
           'a cursor of the old epoch: 409 feed_epoch_changed, with the '
           'new epoch', r.describe())
    paid(tap, inst, oid)
    again = (refund(inst, oid, {'amount': 100}).json or {}).get('refund_id')
    tap.ok(again and again != minted, 'the refund id minted again differs '
           '(%s, was %s)' % (again, minted))
    now = {e['id'] for e in inst.all_events(0)}
    tap.is_(sorted(now & lost), [], 'no event id handed out after the '
            'backup is handed out again')
    tap.ok({e['id'] for e in before} <= now,
           '... and the events the backup holds keep their ids, so a '
           'reader that re-reads can deduplicate them')
    # A reader that never sends the epoch, its cursor at the last event
    # it read before the restore: it is given every event made since, as
    # sequence numbers go on far past any handed out before.
    cursor = max(e['seq'] for e in after)
    since = [e for e in inst.all_events(0)
             if e['id'] not in {x['id'] for x in before}]
    r = inst.api('GET', '/events?after=%d&limit=1000' % cursor)
    tap.is_(sorted(e['id'] for e in (r.json or {}).get('events') or []),
            sorted(e['id'] for e in since), 'a reader without the epoch, '
            'its cursor past the backup: given every event made since the '
            'restore, none skipped', r.describe())
    tap.ok(since and min(e['seq'] for e in since) >=
           max(e['seq'] for e in before) + 2 ** 32,
           '... their sequence numbers 2^32 past the backup\'s',
           [e['seq'] for e in since][:3])

    # A new host: db_path's folder not there yet.
    fresh = harness.Instance(tap, 'restore-fresh')
    var = os.path.dirname(fresh.db)
    shutil.rmtree(var)
    p = fresh.cli('restore', backup)
    tap.ok(p.returncode == 0 and os.path.isfile(fresh.db) and
           os.stat(var).st_mode & 0o777 == 0o700,
           'restore on a host without db_path\'s folder: made (0700), the '
           'store restored in it', p.returncode, p.stderr)
    fresh.cleanup()


def test_restore_twice(tap):
    """One backup restored twice: sequence numbers after the second
    restore go on past those handed out after the first, so a reader that
    keeps only its cursor misses none of the new events, and refund ids
    go on too; before, the second restore jumped 2^32 past the backup's
    again and handed the same numbers out once more."""
    inst = harness.Instance(tap, 'restore-twice')
    inst.start()
    paid(tap, inst, 'R2-A')
    backup = os.path.join(inst.dir, 'nightly.mdb')
    tap.is_(inst.cli('backup', backup).returncode, 0, 'backup')
    inst.stop()
    tap.is_(inst.cli('restore', backup).returncode, 0, 'restored once')
    inst.start()
    paid(tap, inst, 'R2-B')
    paid(tap, inst, 'R2-C')
    first = inst.all_events(0)
    cursor = max(e['seq'] for e in first)
    r1 = (refund(inst, 'R2-B', {'amount': 100}).json or {}).get('refund_id')
    inst.stop()
    p = inst.cli('restore', backup)
    tap.is_(p.returncode, 0, 'the same backup restored again', p.stderr)
    m = re.search(r'sequence numbers go on from (\d+): 2\^32 past the '
                  r'backup\'s next \((\d+)\) and the replaced store\'s '
                  r'\((\d+)\)', p.stdout)
    tap.ok(m and int(m.group(3)) > cursor and
           int(m.group(1)) == int(m.group(3)) + 2 ** 32,
           '... it says the sequence numbers go on 2^32 past the replaced '
           'store\'s, which went past the backup\'s', cursor, p.stdout)
    inst.start()
    paid(tap, inst, 'R2-D')
    old = {e['id'] for e in first}
    new = [e['id'] for e in inst.all_events(0) if e['id'] not in old]
    r = inst.events(after=cursor, limit=1000)
    seen = [e['id'] for e in (r.json or {}).get('events') or []]
    tap.ok(new and sorted(seen) == sorted(new),
           'a reader without the epoch, its cursor %d from after the first '
           'restore: given every event made after the second' % cursor,
           new, seen)
    r2 = (refund(inst, 'R2-D', {'amount': 100}).json or {}).get('refund_id')
    n1, n2 = (int(re.sub(r'^phr[0-9a-f]{12}', '', x or '') or 0)
              for x in (r1, r2))
    tap.ok(n1 and n2 > n1, '... and the refund minted after it goes on '
           'past the one minted after the first', r1, r2)
    # A store whose last event key has its top bit flipped (LMDB checks
    # no key): its next number is past any payhook hands out, so it is
    # not trusted, and the feed's next cursor stays one it takes.
    last = inst.last_seq()
    inst.stop()
    with open(inst.db, 'rb') as fh:
        data = fh.read()
    data = data.replace(struct.pack('>Q', last),
                        struct.pack('>Q', last | (1 << 63)))
    with open(inst.db, 'wb') as fh:
        fh.write(data)
    p = inst.cli('restore', backup)
    tap.ok(p.returncode == 0 and 'is past any payhook hands out: damaged'
           in p.stderr, 'a store with a damaged sequence number replaced: '
           'restored, with a warning', p.stdout, p.stderr)
    inst.start()
    paid(tap, inst, 'R2-E')
    r = inst.events(after=0, limit=1000)
    nxt = (r.json or {}).get('next')
    tap.ok(isinstance(nxt, int) and 0 < nxt < 2 ** 48 and
           inst.events(after=nxt).status == 200, '... the feed\'s next '
           'cursor is one it takes', nxt)
    inst.stop()
    # A store that cannot be read (damaged: often why one restores).
    with open(inst.db, 'r+b') as fh:
        fh.write(b'\xff' * 4096)
    p = inst.cli('restore', backup)
    tap.ok(p.returncode == 0 and 'warning: the store replaced could not '
           'be read' in p.stderr and 'go on from' in p.stdout and
           'replaced store\'s' not in p.stdout,
           'a damaged store replaced: restored, with a warning that the '
           'sequence numbers go on past the backup\'s only', p.stdout,
           p.stderr)
    inst.cleanup()


def padded_backup(tap, inst, mib):
    """A backup of inst's store (stopped) grown by mib MiB of padding in a
    table of its own, so that copying it takes a while."""
    pad = os.path.join(inst.dir, 'pad.txt')
    with open(pad, 'w') as fh:
        fh.write('VERSION=3\nformat=print\ntype=btree\nmapsize=%d\n'
                 'HEADER=END\n' % (256 << 20))
        for i in range(mib):
            fh.write(' k%05d\n %s\n' % (i, 'ab' * (1 << 19)))
        fh.write('DATA=END\n')
    subprocess.run(['mdb_load', '-n', '-s', 'zpad', '-f', pad, inst.db],
                   check=True)
    os.unlink(pad)
    backup = os.path.join(inst.dir, 'padded.mdb')
    p = inst.cli('backup', backup)
    tap.is_(p.returncode, 0, 'a backup of %d MiB' % mib, p.stderr)
    return backup


def stopped_mid_copy(inst, backup):
    """A restore of backup, stopped (SIGSTOP) the moment its copy beside
    the store appears (inotify): (process, whether it was caught before
    its rename)."""
    libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    ino = libc.inotify_init()
    var, name = os.path.split(inst.db)
    libc.inotify_add_watch(ino, var.encode(), 0x100)      # IN_CREATE
    proc = subprocess.Popen([harness.PAYHOOK, '-c', inst.config, 'restore',
                             backup], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    caught, ino_before = False, os.stat(inst.db).st_ino
    deadline = time.time() + 10
    while not caught and time.time() < deadline:
        if not select.select([ino], [], [], 0.5)[0]:
            continue
        buf, off = os.read(ino, 65536), 0
        while off < len(buf):
            n = struct.unpack_from('iIII', buf, off)[3]
            got = buf[off + 16:off + 16 + n].split(b'\0', 1)[0].decode()
            off += 16 + n
            if got == name + '.restore':
                os.kill(proc.pid, signal.SIGSTOP)
                caught = True
                break
    os.close(ino)
    return proc, caught and os.stat(inst.db).st_ino == ino_before


def test_restore_one_at_a_time(tap):
    """Two restores of one store at once: the second is refused at once
    (exit 1) and the first puts the whole backup in place; before, both
    copied to the same name beside the store and the store left was an
    empty one."""
    inst = harness.Instance(tap, 'restore-twice-at-once',
                            core={'map_size_mb': '256'})
    inst.start()
    inst.create_order('RT-1', 100)
    inst.pay('RT-1', 100, harness.txn_id('RT-1'))
    inst.stop()
    backup = padded_backup(tap, inst, 48)
    first, caught = stopped_mid_copy(inst, backup)
    tap.ok(caught, 'a restore stopped while it copies the backup')
    p = inst.cli('restore', backup)
    tap.ok(p.returncode == 1 and 'another payhook restore of it is '
           'running' in p.stderr and 'nothing was replaced' in p.stderr,
           '... a second restore meanwhile: refused within seconds, exit 1',
           p.returncode, p.stdout, p.stderr)
    p = inst.cli('sweep')
    tap.ok(p.returncode != 0 and 'a payhook restore of it is under way'
           in p.stderr, '... a sweep meanwhile: not run, saying why (it '
           'would open the store the restore is about to replace)',
           p.returncode, p.stderr[-300:])
    os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=60)
    tap.is_(first.returncode, 0, '... and the first one, let go, puts the '
            'backup in place', err)
    tap.ok(os.path.getsize(inst.db) >= os.path.getsize(backup) and
           inst.cli('order', 'show', 'RT-1').returncode == 0,
           '... the store is the whole backup, its order there',
           os.path.getsize(inst.db), os.path.getsize(backup))
    tap.is_(sorted(n for n in os.listdir(os.path.dirname(inst.db))
                   if '.restore' in n), [],
            '... and no copy is left beside it')
    p = inst.cli('restore', backup)
    tap.is_(p.returncode, 0, 'a restore after it: done', p.stderr)
    inst.cleanup()


def test_killed_between(tap):
    """SIGKILLs of payhook.fcgi while refunds are asked under keys, as
    clients retry after a timeout: every key ends with exactly one refund,
    and its answers agree."""
    inst = harness.Instance(tap, 'idem-kill', max_procs=4, log_level='warn')
    inst.start()
    n = int(os.environ.get('PAYHOOK_IDEM_KILL_N', '200'))
    oids = ['KB%03d-%s' % (i, os.urandom(2).hex()) for i in range(n)]
    for oid in oids:
        inst.create_order(oid, 500)
        inst.pay(oid, 500, harness.txn_id(oid))
    stop = threading.Event()
    kills = [0]

    answered = [0]

    def killer():
        rnd = random.Random(7)
        seen = -1
        while not stop.wait(rnd.uniform(0.005, 0.03)):
            # A kill only once a request was answered since the last:
            # killing faster than processes start (a sanitizer build
            # starts slowly) would let no request through at all.
            if answered[0] == seen:
                continue
            pids = inst.server.backend_pids()
            if pids:
                try:
                    os.kill(rnd.choice(pids), signal.SIGKILL)
                    kills[0] += 1
                    seen = answered[0]
                except ProcessLookupError:
                    pass
    th = threading.Thread(target=killer, daemon=True)
    th.start()

    def ask(oid):
        """Until two answers: the first (maybe after lost ones) and a
        retry of it."""
        seen = []
        deadline = time.time() + 120
        while len(seen) < 2 and time.time() < deadline:
            r = refund(inst, oid, {'amount': 120}, key='kill-' + oid)
            if r.status is not None and r.status < 500:
                answered[0] += 1
            if r.status is not None and r.status < 500 and \
                    (r.json or {}).get('error') != 'idempotency_key_in_use':
                seen.append(r)
            else:
                # Lost, or its first try still running: later.
                time.sleep(0.05)
        return seen
    res = harness.parallel(ask, oids, workers=8)
    stop.set()
    th.join()
    tap.diag('%d SIGKILLs of payhook.fcgi while %d keys were asked'
             % (kills[0], n))
    tap.ok(kills[0] >= 10, 'payhook.fcgi was killed at least 10 times',
           kills[0])
    odd = {oid: [r.describe() for r in seen] for oid, seen in
           zip(oids, res) if len(seen) != 2 or
           any(r.status != 201 for r in seen)}
    tap.is_(odd, {}, 'every key was answered 201, and again 201')
    tap.ok(all(s[0].body == s[1].body for s in res if len(s) == 2),
           '... with the same bytes both times')
    # lighttpd may hold its backends down for a moment after the kills:
    # read once it serves again.
    deadline = time.time() + 60
    while time.time() < deadline and \
            inst.request('GET', '/healthz').status != 200:
        time.sleep(0.5)

    def count(oid):
        for _ in range(20):
            got = refunds_of(inst, oid)
            if got is not None:
                return len(got)
            time.sleep(0.5)
        return None
    counts = {oid: count(oid) for oid in oids}
    tap.is_(sorted(set(counts.values())), [1],
            'every key made exactly one refund', counts)
    inst.cleanup()


def nested(depth, leaf):
    """Attempt data: objects nested depth deep around leaf."""
    v = leaf
    for i in range(depth - 1):
        v = {'n%d' % i: v}
    return v


def test_attempt_data(tap, inst):
    """Attempt data goes into the order's record (CBOR) and comes back
    the same: a long key, unicode, numbers, as deep as the API takes."""
    oid = 'AD-' + os.urandom(4).hex()
    data = {'list': ['\u6536\u6b3e', -5, 2 ** 40, True, None, {}, []],
            'deep': nested(7, {'k' * 300: 'v'})}
    r = inst.create_order(oid, 100, attempt=data)
    tap.is_(r.status, 201, 'attempt data nested 8 deep, a key of 300 '
            'bytes: 201', r.describe())
    atts = (inst.order(oid) or {}).get('attempts') or [{}]
    tap.is_(atts[0].get('data'), data, '... read back the same')
    r = inst.create_order(oid + 'x', 100, attempt=nested(9, {'a': 1}))
    check_json_error(tap, r, 400, 'attempt data nested 9 deep')
    tap.ok('more than 8 deep' in ((r.json or {}).get('message') or ''),
           '... the message says how deep it may go', r.describe())
    tap.is_(inst.get_order(oid + 'x').status, 404, '... no order made')


def test_refunds_max(tap, inst):
    """An order takes at most 100 refunds: the 101st the merchant asks for
    is 409 too_many_refunds, one asked before is still answered, and the
    refund payhook queues for a double payment goes all the same."""
    oid = 'RM-' + os.urandom(4).hex()
    paid(tap, inst, oid, amount=1000)
    codes = [refund(inst, oid, {'amount': 1, 'refund_id': 'rm%d-%s' %
                                (i, oid)}).status for i in range(100)]
    tap.is_(sorted(set(codes)), [201], '100 refunds of one order: 201 each')
    r = refund(inst, oid, {'amount': 1})
    tap.is_((r.status, (r.json or {}).get('error')),
            (409, 'too_many_refunds'), 'the 101st: 409 too_many_refunds',
            r.describe())
    r = refund(inst, oid, {'amount': 1, 'refund_id': 'rm7-' + oid})
    tap.is_(r.status, 200, '... one asked before: 200, as it is',
            r.describe())
    inst.pay(oid, 1000, harness.txn_id(oid + '-again'))
    got = refunds_of(inst, oid) or []
    tap.is_((len(got), [x.get('reason') for x in got][-1]),
            (101, 'double_payment'), '... a double payment\'s refund is '
            'queued all the same, and the list answers', len(got))


def test_attempt_passes(tap, sim):
    """An attempt refused because another holds the order passes by
    itself: the refusal is not kept under its Idempotency-Key, and the same
    call retried once the hold is over opens the attempt.  A 503 says when
    to try again."""
    inst = harness.SimInstance(tap, 'passes', sim_port=sim.port,
                               core={'attempt_hold_s': '6'})
    inst.start()
    try:
        oid = 'AP-' + os.urandom(4).hex()
        inst.create_order(oid, 100)

        def attempt(key):
            return inst.api('POST', '/orders/%s/attempts' % oid,
                            {'profile': 'wxshop'},
                            headers={'Idempotency-Key': key})
        first = attempt('a-' + oid)
        first_at = time.time()
        tap.is_(first.status, 201, 'an attempt opened', first.describe())
        r1, r2 = attempt('b-' + oid), attempt('b-' + oid)
        tap.ok([(r.status, (r.json or {}).get('error'),
                 r.headers.get('idempotent-replayed')) for r in (r1, r2)] ==
               [(409, 'attempt_in_progress', None)] * 2, 'another key while '
               'the first attempt is younger than attempt_hold_s: 409 '
               'attempt_in_progress, and again, not replayed',
               r1.describe(), r2.describe())
        # The hold runs from the first attempt's second (whole seconds).
        time.sleep(max(0.0, first_at + 7.0 - time.time()))
        r3, r4 = attempt('b-' + oid), attempt('b-' + oid)
        tap.ok(r3.status == 201 and r3.headers.get('idempotent-replayed')
               is None and r4.status == 201 and r4.body == r3.body and
               r4.headers.get('idempotent-replayed') == 'true', 'the same '
               'key once the hold is over: 201, then replayed',
               r3.describe(), r4.describe())
    finally:
        inst.cleanup()
    # No provider to ask about the order's earlier attempt.
    inst = harness.Instance(tap, 'unasked')
    inst.start()
    try:
        oid = 'AU-' + os.urandom(4).hex()
        inst.create_order(oid, 100)
        r = inst.api('POST', '/orders/%s/attempts' % oid,
                     {'profile': 'wxshop'})
        tap.is_((r.status, (r.json or {}).get('error'),
                 r.headers.get('retry-after')),
                (503, 'provider_unavailable', '5'), 'an attempt whose '
                'earlier one could not be checked: 503 provider_unavailable '
                'with Retry-After: 5', r.describe())
    finally:
        inst.cleanup()


def main(tap):
    # Attempts ask the provider first, the refund runner sends: both to
    # the simulator.
    sim = harness.Simulator(tap, time_factor=1000).start()
    inst = harness.SimInstance(tap, 'merchant', sim_port=sim.port)
    inst.start()
    sim.point_at(inst)
    test_keys(tap, inst)
    test_refund_ids(tap, inst, sim)
    test_feed(tap, inst)
    test_attempt_data(tap, inst)
    test_refunds_max(tap, inst)
    test_attempt_passes(tap, sim)
    if harness.E2E_STORE == 'lmdb':      # payhook backup and restore
        test_restore(tap, inst, sim)
        test_restore_twice(tap)
        test_restore_one_at_a_time(tap)
    inst.cleanup()
    sim.stop()
    test_killed_between(tap)


if __name__ == '__main__':
    harness.run(main)
