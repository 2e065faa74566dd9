#!/usr/bin/env python3
"""Floods and untrusted files, through a real lighttpd and payhook.fcgi.

Each function below is one attack, played against a real server with a
real LMDB store, and what payhook must do about it:

* the notification archive cannot be flooded or evaded: thousands of
  forged 64 KB notifications from one address, and hundreds naming a
  pending order, fill only their own class's budget (its rate per source
  or profile, its share of archive_map_mb); a genuine notification
  refused by a configuration mistake, archived before the flood, is still
  there after it and after the sweeper's pruning, and can be replayed
  once the mistake is fixed; a genuine notification after the flood is
  archived; a refused notification whose Content-Type carries bytes that
  are not UTF-8 is archived too; and none of the refused traffic writes a
  byte of the store of money facts;
* `payhook reconcile` trusts no file it is handed: a hand-made statement
  saying a pending order was paid raises reconcile.missing_here, has the
  order asked about at the provider, and pays nothing and queues no
  refund; only with --trust-file (the operator vouches for the file) is
  the order paid, and its order.paid says statement_file.

Run by hand after make: tests/e2e/run-python tests/attacks/test_floods.py
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
import harness  # noqa: E402
from harness import (PROFILES, SUCCESS_ACK, FAIL_ACK_RE, Instance,  # noqa
                     make_payment, recon_counts, store_dump, txn_id)
from test_walls import BJ, wechat_bill  # noqa: E402

# ---------------------------------------------------------------------------
# The archive under a flood
# ---------------------------------------------------------------------------

ARCHIVE_MAP_MB = 8
ARCHIVE_UNVERIFIED_MB = 2
PER_MINUTE = 200
PER_SOURCE = 100
FLOOD_N = int(os.environ.get('PAYHOOK_FLOOD_N', '3000'))
FLOOD_WORKERS = 8
BURST_N = 400
OURS_N = 600
BURST_SOURCE = '127.0.0.2'
FORGED_KEY = 'f0rg3d' + 'f' * 26
MIB = 1 << 20

# wxmis: a WeChat account whose key the operator mistyped in payhook's
# configuration (keys/wxmis.key holds MISTYPED_KEY); the account's real
# key, with which WeChat signs, is TRUE_KEY.
TRUE_KEY = 'TrueKeyOfTheMisconfiguredAcct042'
MISTYPED_KEY = 'TrueKeyOfTheMisconfiguredAcct024'
FLOOD_PROFILES = {
    'wxshop': PROFILES['wxshop'],
    'wxmis': {
        'plugin': 'wechat',
        'appid': 'wx5d1e0f00d15c0f1e',
        'mch_id': '10000300',
        'key': MISTYPED_KEY,
        'sign_type': 'MD5',
    },
}
assert len(TRUE_KEY) == len(MISTYPED_KEY) == len(FORGED_KEY) == 32

# Content-Type bytes that are not UTF-8 (Latin-1 é, then 0xFF 0xFE), and
# what an operator must be shown for them: U+FFFD where each byte was.
RAW_CTYPE = b'text/xml; charset=caf\xe9; x=\xff\xfe'
SHOWN_CTYPE = 'text/xml; charset=caf\ufffd; x=\ufffd\ufffd'

# ~62 KB of padding in 30 fields of 2000 bytes (the WeChat v2 parser takes
# at most 128 fields of 2048 bytes and 64 KB in all): well-formed bodies
# that cost a full parse and a signature check each.
PADDING = [('pad%02d' % i, ('%02d' % i) * 1000) for i in range(30)]


# A small archive: 8 MiB, 2 MiB for each refused class, and rates that a
# flood from one address runs into.
FLOOD_CORE = {
    'archive_map_mb': str(ARCHIVE_MAP_MB),
    'archive_unverified_mb': str(ARCHIVE_UNVERIFIED_MB),
    'archive_unverified_per_minute': str(PER_MINUTE),
    'archive_unverified_per_source': str(PER_SOURCE),
}


def dump_diff(a, b):
    al, bl = a.splitlines(), b.splitlines()
    sa, sb = set(al), set(bl)
    return 'new lines: %r\ngone lines: %r' % (
        [l for l in bl if l not in sa][:10],
        [l for l in al if l not in sb][:10])


def archive_list(inst):
    """`payhook notifications list`: [{id, time, profile, order, verdict,
    outcome, replay_of}] (tab-separated lines)."""
    r = inst.cli('notifications', 'list', '--limit', '100000', timeout=120)
    if r.returncode != 0:
        raise RuntimeError('notifications list: rc %s: %s'
                           % (r.returncode, r.stderr[-500:]))
    out = []
    for line in r.stdout.splitlines():
        f = line.split('\t')
        if len(f) < 6:
            continue
        rec = dict(zip(('id', 'time', 'profile', 'order', 'verdict',
                        'outcome'), f[:6]))
        rec['replay_of'] = f[6][len('replay_of='):] if len(f) > 6 else None
        out.append(rec)
    return out


def archive_show(inst, rid):
    """`payhook notifications show ID` as JSON, or None."""
    r = inst.cli('notifications', 'show', str(rid))
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def body_of(rec):
    try:
        return base64.b64decode((rec or {}).get('body', ''), validate=True)
    except (ValueError, TypeError):
        return None


def header(rec, name):
    vals = [v for n, v in (rec or {}).get('headers') or []
            if n.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else vals or None


def seg_sizes(inst):
    """{segment file name: bytes} of <db>-archive/seg/."""
    seg = inst.db + '-archive/seg'
    try:
        names = os.listdir(seg)
    except OSError:
        return {}
    return {n: os.path.getsize(os.path.join(seg, n)) for n in names}


def forged_body(order_id):
    """A forged payment notification of ~62 KB for order_id: wxshop's
    appid and mch_id, signed with a key that is nobody's."""
    fields = make_payment(order_id, 2500, txn_id('flood'), key=FORGED_KEY,
                          extra=PADDING)
    return harness.notify_xml(fields)


def small_forged_body(i):
    """A forged payment notification of ~1 KB, naming no order payhook
    knows."""
    return harness.notify_xml(make_payment('FLR-%05d' % i, 100,
                                           txn_id('burst-%d' % i),
                                           key=FORGED_KEY))


def post_from(inst, source, body, profile='wxshop'):
    """POST body to /notify/<profile> over a connection made from the
    local address `source` (any 127/8 address is this host)."""
    conn = http.client.HTTPConnection(harness.HOST, inst.server.port,
                                      timeout=60, source_address=(source, 0))
    try:
        conn.request('POST', inst.path('/notify/' + profile), body=body,
                     headers={'Content-Type': 'text/xml'})
        resp = conn.getresponse()
        return harness.Response(resp.status, {k.lower(): v for k, v in
                                              resp.getheaders()}, resp.read())
    except (OSError, http.client.HTTPException) as exc:
        return harness.Response(None, {}, b'', error='%s: %s'
                                % (type(exc).__name__, exc))
    finally:
        conn.close()


def minutes_touched(t0, t1):
    """How many minutes of the clock (the archive's rate windows) the
    interval [t0, t1] touches."""
    return int(t1 // 60) - int(t0 // 60) + 1


def is_refusal(r):
    return r.status == 200 and FAIL_ACK_RE.match(r.body or b'') is not None


def test_archive_flood(tap, inst):
    """Attack: flooding the notification archive, and evading it.

    An outsider posts thousands of forged 64 KB notifications, fast: from
    one address (127.0.0.1), naming no order, after a burst of small ones
    from another (127.0.0.2); then hundreds naming a pending order of the
    shop (one they opened themselves and left unpaid), so that they land
    in the class kept for refused notifications that may be genuine.  The
    aim: fill the archive so that nothing else is kept, or have its
    pruning push out the genuine notification payhook refused by a
    configuration mistake, which the operator means to replay.  A
    notification whose Content-Type holds bytes that are not UTF-8 must
    not slip past the archive either.  Forged traffic may fill only its
    own class, within its rate per source (per profile) and its share; the
    archive stays within archive_map_mb; the refused genuine record
    outlives the flood and the sweeper's pruning, byte for byte, and
    replays once the key is fixed; a genuine notification after the flood
    is archived; the store of money facts does not change."""
    tag = os.urandom(3).hex()
    mis_oid, paid_oid, ct_oid, bait_oid = ('FLA-' + tag, 'FLB-' + tag,
                                           'FLC-' + tag, 'FLO-' + tag)
    for oid, prof in ((mis_oid, 'wxmis'), (paid_oid, 'wxshop'),
                      (ct_oid, 'wxshop'), (bait_oid, 'wxshop')):
        r = inst.create_order(oid, 2500, profile=prof)
        tap.is_(r.status, 201, 'pending order %s on %s' % (oid, prof),
                r.describe())

    # (a) WeChat signs with the account's true key; payhook has a mistyped
    # one: refused, but it names our pending order, so it is kept as
    # "ours", for a replay once the key is fixed.
    mis_txn = txn_id('misconfigured')
    mis_body = harness.notify_xml(make_payment(
        mis_oid, 2500, mis_txn, profile='wxmis', profiles=FLOOD_PROFILES,
        key=TRUE_KEY))
    r = inst.notify(mis_body, 'wxmis')
    tap.ok(is_refusal(r), 'a genuine notification on /notify/wxmis, whose '
           'key payhook has mistyped: refused', r.describe())
    recs = [x for x in archive_list(inst) if x['order'] == mis_oid]
    tap.is_([(x['profile'], x['verdict']) for x in recs],
            [('wxmis', 'refused')], 'it is in `notifications list`: '
            'profile wxmis, our order, refused', recs)
    mis_id = recs[0]['id'] if len(recs) == 1 else None
    shown = archive_show(inst, mis_id) if mis_id else None
    tap.is_((shown or {}).get('class'), 'ours',
            '`notifications show %s`: class "ours"' % mis_id, shown)

    # (d) A refused notification whose Content-Type is not UTF-8 (it names
    # a pending order: class "ours").
    ct_body = harness.notify_xml(make_payment(ct_oid, 2500,
                                              txn_id('latin1-ctype'),
                                              key=FORGED_KEY))
    r = inst.request('POST', inst.path('/notify/wxshop'), ct_body,
                     {'Content-Type': RAW_CTYPE})
    tap.ok(is_refusal(r), 'a forged notification with Content-Type %r: '
           'refused' % RAW_CTYPE, r.describe())
    recs = [x for x in archive_list(inst) if x['order'] == ct_oid]
    tap.is_([(x['profile'], x['verdict']) for x in recs],
            [('wxshop', 'refused')], '... and archived: it is in '
            '`notifications list`', recs)
    shown = archive_show(inst, recs[0]['id']) if len(recs) == 1 else None
    tap.is_((shown or {}).get('content_type'), SHOWN_CTYPE,
            '`notifications show`: its content_type with U+FFFD where the '
            'bytes were', shown)
    tap.is_(header(shown, 'Content-Type'), SHOWN_CTYPE,
            '... and so is its Content-Type header', (shown or {}).get(
                'headers'))
    tap.ok(body_of(shown) == ct_body, '... its body byte for byte as sent')

    before = store_dump(inst)

    # (b) The rate: a burst of small forged notifications from one other
    # address, 127.0.0.2, is kept only up to its rate per source.
    t_start = time.time()
    answers = harness.parallel(
        lambda i: post_from(inst, BURST_SOURCE, small_forged_body(i)),
        range(BURST_N), workers=FLOOD_WORKERS)
    minutes = minutes_touched(t_start, time.time())
    tap.is_(sum(1 for a in answers if is_refusal(a)), BURST_N,
            '%d small forged notifications from %s: each refused'
            % (BURST_N, BURST_SOURCE),
            *[a.describe() for a in answers if not is_refusal(a)][:5])
    burst = [x for x in archive_list(inst) if x['order'].startswith('FLR-')]
    tap.ok(PER_SOURCE <= len(burst) <= PER_SOURCE * minutes,
           '... %d of them archived: the rate per source, %d a minute '
           '(%d minute(s))' % (len(burst), PER_SOURCE, minutes))
    shown = archive_show(inst, burst[-1]['id']) if burst else None
    tap.is_(((shown or {}).get('class'), (shown or {}).get('source')),
            ('unverified', BURST_SOURCE), '... of class "unverified", from '
            '%s' % BURST_SOURCE, shown)

    # (b) The flood: ~64 KB each, bad signatures, no pending order named,
    # all from 127.0.0.1, as fast as it goes.
    body_len = len(forged_body('FLD-00000'))
    # A share's worth of such records, and one more for each process
    # appending at once.
    slack = inst.max_procs * (body_len + 1024)
    share_n = (ARCHIVE_UNVERIFIED_MB * MIB + slack) // body_len
    t_start = time.time()
    answers = harness.parallel(
        lambda i: inst.notify(forged_body('FLD-%05d' % i), 'wxshop'),
        range(FLOOD_N), workers=FLOOD_WORKERS)
    took = time.time() - t_start
    minutes = minutes_touched(t_start, time.time())
    tap.is_(sum(1 for a in answers if is_refusal(a)), FLOOD_N,
            '%d forged notifications of %d bytes from 127.0.0.1: each '
            'refused' % (FLOOD_N, body_len),
            *[a.describe() for a in answers if not is_refusal(a)][:5])
    tap.diag('flood: %d notifications in %.1f s (%.0f/s)'
             % (FLOOD_N, took, FLOOD_N / max(took, 0.001)))
    flood = [x for x in archive_list(inst) if x['order'].startswith('FLD-')]
    kept = len(flood)
    tap.ok(0 < kept <= min(PER_SOURCE * minutes, share_n),
           '... %d of them archived, no more than their rate (%d a minute, '
           '%d minute(s)) and their share (%d MiB) allow'
           % (kept, PER_SOURCE, minutes, ARCHIVE_UNVERIFIED_MB))
    shown = [archive_show(inst, x['id']) or {} for x in flood[:1] +
             flood[-1:]]
    tap.is_({(x.get('class'), x.get('source')) for x in shown},
            {('unverified', '127.0.0.1')}, '... of class "unverified", from '
            '127.0.0.1 (first and last looked at)')

    # (b) The flood of the second class: ~64 KB each, bad signatures, each
    # naming the pending order the attacker opened.
    t_start = time.time()
    answers = harness.parallel(
        lambda i: inst.notify(forged_body(bait_oid), 'wxshop'),
        range(OURS_N), workers=FLOOD_WORKERS)
    minutes = minutes_touched(t_start, time.time())
    tap.is_(sum(1 for a in answers if is_refusal(a)), OURS_N,
            '%d forged notifications of %d bytes naming pending order %s: '
            'each refused' % (OURS_N, body_len, bait_oid),
            *[a.describe() for a in answers if not is_refusal(a)][:5])
    ours = [x for x in archive_list(inst) if x['order'] == bait_oid]
    tap.ok(0 < len(ours) <= min(PER_SOURCE * minutes, share_n),
           '... %d of them archived, no more than their rate (%d a minute '
           'for the profile, %d minute(s)) and their share (%d MiB) allow'
           % (len(ours), PER_SOURCE, minutes, ARCHIVE_UNVERIFIED_MB))
    shown = archive_show(inst, ours[-1]['id']) if ours else None
    tap.is_((shown or {}).get('class'), 'ours', '... of class "ours"',
            shown)

    # (e) Refused traffic never writes the store.
    after = store_dump(inst)
    tap.ok(after == before, 'the store of money facts is exactly as before '
           'the burst and the floods (mdb_dump -a, %d bytes)' % len(after),
           dump_diff(before, after))

    # The archive on disk: within archive_map_mb, each refused class
    # within its share.
    sizes = seg_sizes(inst)
    total = sum(sizes.values())
    by_class = {c: sum(v for n, v in sizes.items() if n.endswith('-' + c))
                for c in 'vou'}
    tap.diag('archive after the floods: %d bytes in %s; by class %r'
             % (total, sorted(sizes), by_class))
    tap.ok(total <= ARCHIVE_MAP_MB * MIB + slack, 'the archive folder '
           '(%s-archive/seg) holds at most archive_map_mb: %d bytes <= %d '
           'MiB (+ a record a process)' % (os.path.basename(inst.db), total,
                                            ARCHIVE_MAP_MB), sizes)
    for c, name in (('u', 'unverified'), ('o', 'ours')):
        tap.ok(by_class[c] <= ARCHIVE_UNVERIFIED_MB * MIB + slack,
               'the class "%s" holds at most its share: %d bytes <= %d MiB '
               '(+ a record a process)' % (name, by_class[c],
                                           ARCHIVE_UNVERIFIED_MB), sizes)

    # (c) The record of the genuine refused notification outlived the
    # floods ...
    shown = archive_show(inst, mis_id) if mis_id else None
    tap.ok(shown is not None and body_of(shown) == mis_body,
           'after the floods: record %s is still there, its body byte for '
           'byte as sent' % mis_id, shown)

    # ... and the sweeper's pass, which prunes the archive.  This instance
    # has no provider to ask: once the orders the floods named are due (a
    # slow, sanitizer, build gets there), their queries cannot be sent (no
    # api_base) and the pass says so with 78; it must never fail (1).
    r = inst.cli('sweep')
    tap.ok(r.returncode == 0 or (r.returncode == 78 and
           re.search(r'event=sweep .* failed=[1-9]', r.stderr)),
           '`payhook sweep` (which prunes the archive): exit 0, or 78 for '
           'the provider this instance has no api_base for', r.returncode,
           r.stderr[-600:])
    tap.diag('archive after the sweep: %r' % seg_sizes(inst))

    shown = archive_show(inst, mis_id) if mis_id else None
    tap.ok(shown is not None and shown.get('class') == 'ours' and
           shown.get('order_id') == mis_oid,
           'after the sweep too: record %s is still there, class "ours"'
           % mis_id, shown)
    tap.ok(body_of(shown) == mis_body, '... its body byte for byte as sent',
           repr(body_of(shown))[:300])
    tap.is_((shown or {}).get('body_sha256'),
            hashlib.sha256(mis_body).hexdigest(), '... and its digest')

    # (c) A genuine notification after the flood is archived, verified.
    r, fields = inst.pay(paid_oid, 2500, txn_id('after-flood'))
    tap.ok(r.status == 200 and r.body == SUCCESS_ACK, 'after the floods: a '
           'genuine notification on /notify/wxshop is acknowledged',
           r.describe())
    recs = [x for x in archive_list(inst) if x['order'] == paid_oid]
    tap.is_([(x['profile'], x['verdict']) for x in recs],
            [('wxshop', 'verified')], '... it is in `notifications list`, '
            'verified', recs)
    shown = archive_show(inst, recs[0]['id']) if len(recs) == 1 else None
    tap.is_((shown or {}).get('class'), 'verified', '... class "verified"',
            shown)
    tap.ok(body_of(shown) == harness.notify_xml(fields),
           '... its body byte for byte as sent')

    # (c) The refused genuine one replays once the key is fixed.
    harness.write_file(os.path.join(inst.etc, 'keys', 'wxmis.key'), TRUE_KEY)
    base = inst.last_seq()
    r = inst.cli('notifications', 'replay', str(mis_id))
    tap.is_(r.returncode, 0, 'key fixed: `notifications replay %s` exits 0'
            % mis_id, r.stdout + r.stderr)
    tap.like(r.stdout, r'verified', '... and says it verified', r.stderr)
    o = inst.order(mis_oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')), ('PAID', mis_txn),
            'the order of the refused notification is PAID by its replay', o)
    paid = [e for e in inst.all_events(base) if e.get('type') == 'order.paid'
            and e.get('order_id') == mis_oid]
    tap.is_([e.get('source') for e in paid], ['replay'],
            '... one order.paid, source "replay"', paid)

    tap.diag('sent: %d small from %s (%d archived), %d of %d bytes from '
             '127.0.0.1 naming no order (%d archived), %d naming pending '
             'order %s (%d archived); archive after the floods %d bytes: '
             'verified %d, ours %d, unverified %d'
             % (BURST_N, BURST_SOURCE, len(burst), FLOOD_N, body_len, kept,
                OURS_N, bait_oid, len(ours), total, by_class['v'],
                by_class['o'], by_class['u']))


# ---------------------------------------------------------------------------
# Reconciliation and a file nobody vouched for
# ---------------------------------------------------------------------------

def test_untrusted_statement(tap, inst, sim):
    """Attack: a forged statement handed to `payhook reconcile`.

    Whoever can put a file where the operator picks up statements writes
    a WeChat bill of one row (the header, the row, the summary) saying that a
    pending order nobody paid was paid, with a made-up transaction.
    Reconciled without --trust-file it may raise an alarm and have the
    order asked about at the provider, nothing more: the order stays
    PENDING, no order.paid, no refund queued.  With --trust-file the
    operator vouches for the file: the order is paid, and its order.paid
    says so (source statement_file)."""
    oid = 'FLS-' + os.urandom(3).hex()
    amount = 4321
    r = inst.create_order(oid, amount)
    tap.is_(r.status, 201, 'pending order %s, which nobody pays' % oid,
            r.describe())
    work = os.path.join(inst.dir, 'statements')
    reports = os.path.join(work, 'reports')
    os.makedirs(reports)
    day_dt = datetime.datetime.now(BJ) - datetime.timedelta(days=1)
    day = day_dt.strftime('%Y-%m-%d')
    fake_txn = txn_id('forged-statement')
    stmt = os.path.join(work, 'bill-%s.txt' % day)
    with open(stmt, 'wb') as fh:
        fh.write(wechat_bill(PROFILES['wxshop'], [
            (day + ' 10:00:00', fake_txn, oid, amount)]))
    q0 = ((sim.stats() or {}).get('by_order') or {}).get(oid, {}).get(
        'query', 0)
    base = inst.last_seq()

    r = inst.cli('reconcile', '--profile', 'wxshop', '--statement', stmt,
                 '--date', day, '--report-dir', reports)
    tap.is_(r.returncode, 0, 'reconcile of the hand-made statement, without '
            '--trust-file: exit 0', r.stdout[-600:] + r.stderr[-600:])
    tap.diag(r.stdout.rstrip())
    tap.is_(recon_counts(r.stdout).get('missing_here'), 1,
            '... it reports the payment as missing here', r.stdout)
    o = inst.order(oid) or {}
    tap.is_(o.get('state'), 'PENDING', 'the order stays PENDING', o)
    tap.ok(not o.get('provider_txn_id'), '... with no transaction', o)
    evs = [e for e in inst.all_events(base) if e.get('order_id') == oid]
    types = [e.get('type') for e in evs]
    tap.is_(types.count('reconcile.missing_here'), 1,
            'the feed gains reconcile.missing_here for it', evs)
    tap.ok('order.paid' not in types, '... and no order.paid', evs)
    queries = ((sim.stats() or {}).get('by_order') or {}).get(oid, {}).get(
        'query', 0) - q0
    tap.ok(queries >= 1, 'the order was asked about at the provider (%d '
           'query)' % queries)
    refunds = (inst.api('GET', '/orders/%s/refunds' % oid).json or {}).get(
        'refunds')
    tap.is_(refunds, [], 'no refund queued for it')
    rl = inst.cli('refunds', 'list', '--all')
    tap.ok(rl.returncode == 0 and oid not in rl.stdout,
           '`payhook refunds list --all` shows nothing for it',
           rl.stdout + rl.stderr)

    base = inst.last_seq()
    r = inst.cli('reconcile', '--profile', 'wxshop', '--statement', stmt,
                 '--date', day, '--report-dir', reports, '--trust-file')
    tap.is_(r.returncode, 0, 'the same statement with --trust-file: exit 0',
            r.stdout[-600:] + r.stderr[-600:])
    tap.diag(r.stdout.rstrip())
    o = inst.order(oid) or {}
    tap.is_((o.get('state'), o.get('provider_txn_id')), ('PAID', fake_txn),
            'vouched for: the order is PAID with the statement\'s '
            'transaction', o)
    paid = [e for e in inst.all_events(base) if e.get('order_id') == oid and
            e.get('type') == 'order.paid']
    tap.is_([e.get('source') for e in paid], ['statement_file'],
            '... one order.paid, its source "statement_file"', paid)
    refunds = (inst.api('GET', '/orders/%s/refunds' % oid).json or {}).get(
        'refunds')
    tap.is_(refunds, [], '... and no refund queued')


# ---------------------------------------------------------------------------

def main(tap):
    if shutil.which('mdb_dump') is None:
        tap.skip_all('mdb_dump not found (Debian package lmdb-utils)')
    t0 = time.time()
    inst = Instance(tap, name='floods', profiles=FLOOD_PROFILES,
                    core=FLOOD_CORE)
    inst.start()
    test_archive_flood(tap, inst)
    inst.stop()
    tap.diag('archive: %.1f s' % (time.time() - t0))

    t1 = time.time()
    sim, sinst = harness.start_with_simulator(tap, 'untrusted')
    test_untrusted_statement(tap, sinst, sim)
    sinst.stop()
    sim.stop()
    tap.diag('reconcile: %.1f s; in all %.1f s' % (time.time() - t1,
                                                    time.time() - t0))


if __name__ == '__main__':
    harness.run(main)
