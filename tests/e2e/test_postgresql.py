#!/usr/bin/env python3
"""End to end: the PostgreSQL store (store = postgresql), on private
clusters this test makes (pgcluster.py: initdb in a temporary folder, Unix
sockets only, stopped by pid).

* `payhook check` makes payhook's tables; payhook.fcgi and the other
  commands refuse a database without them, or of another layout; a
  password in pg_conninfo is refused, pg_password_file (mode 0600) is how a
  password is given.  In a schema payhook the DBA made for a role that
  may not create schemas, check makes the tables; a role that may not
  write them is refused, naming the table and the right.
* Under lighttpd: orders, a notification and its duplicate, the order and
  the event feed, as on LMDB; the records in typed columns an operator
  queries with SQL (amounts bigint, times timestamptz).
* Two hosts (two lighttpd, each with its payhook.fcgi processes and its own
  local folder) on one database: the same notifications sent to both at
  the same moment are applied once and acknowledged by both, the feed in
  order with no hole.
* Failover: two hosts, a primary with a synchronous standby, pg_conninfo
  naming both (target_session_attrs=read-write), each notification sent to
  both hosts; the primary killed (immediate) and the standby promoted in
  the middle of the load: every notification
  acknowledged is there once, nothing applied twice, those answered "retry"
  meanwhile are applied when the provider sends them again, the feed in
  order.
* Two hosts' sweepers at once over the same due orders whose
  notifications never came: each paid once.  Then, on both hosts at the
  same moment: the pre-payment guard for the same orders (one attempt
  recorded), the refund runners (each refund made once at the provider),
  and the reconciliation of one day's statement (one refund for each
  payment made twice).
* /readyz reads none of payhook's tables (it answers while a session
  holds them all locked).
* A session holding an order's row locked: the notification for it is
  answered with the retry format and a merchant call that writes it 503
  store_unavailable, within seconds (lock_timeout), not when the lock
  goes.
* The server lost without closing the connection (a network namespace
  of its own, pgblackhole.py): the notification in flight is answered
  with the retry format within seconds (TCP keepalives, tcp_user_timeout).
* A synchronous standby away: no notification is acknowledged before it
  has it (a commit whose wait for it was cut short by statement_timeout
  or by the session's end stands on the primary only).
* `payhook store import`: an LMDB store copied into an empty PostgreSQL
  one, the counts compared; a store that is not empty is refused.
"""

import concurrent.futures
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Instance  # noqa: E402
import pgcluster  # noqa: E402


def pg_instance(tap, name, conninfo, **kw):
    core = {'store': 'postgresql', 'pg_conninfo': conninfo}
    core.update(kw.pop('core', {}))
    return Instance(tap, name, core=core, **kw)


def sql(cluster, text):
    return cluster.psql(text, dbname='payhook').strip()


def acked(resp):
    return resp.status == 200 and resp.body == harness.SUCCESS_ACK


def test_tables(tap, pri):
    pri.createdb('payhook')
    inst = pg_instance(tap, 'pgcheck', pri.conninfo())
    r = inst.cli('stats')
    tap.ok(r.returncode != 0 and 'holds no payhook tables' in r.stderr and
           'payhook check makes them' in r.stderr,
           'a database without payhook tables: refused, saying what makes '
           'them', r.stderr)
    env = dict(os.environ, PAYHOOK_CONFIG=inst.config)
    p = harness.subprocess.run([harness.PAYHOOK_FCGI], env=env,
                               stdin=harness.subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
    tap.ok(p.returncode != 0 and 'holds no payhook tables' in p.stderr,
           'payhook.fcgi refuses it too and makes nothing', p.stderr)
    tap.is_(sql(pri, "select count(*) from pg_namespace where nspname = "
                "'payhook'"), '0', '... no schema payhook was made')
    # A new host: db_path's folder, where its own files go, not there yet.
    var = os.path.dirname(inst.db)
    shutil.rmtree(var, ignore_errors=True)
    r = inst.cli('check')
    tap.ok(r.returncode == 0 and 'configuration OK' in r.stdout and
           'postgresql' in r.stdout, 'payhook check makes the tables',
           r.stdout + r.stderr)
    tap.ok(os.path.isdir(var) and os.stat(var).st_mode & 0o777 == 0o700,
           '... and db_path\'s folder, mode 0700, for the host\'s own files')
    tables = sql(pri, "select string_agg(tablename, ',' order by tablename)"
                 " from pg_tables where schemaname = 'payhook'")
    tap.is_(tables, 'dedup,due,events,idempotency,layout,meta,orders,'
            'payments,push,recon,refund_ids,refunds',
            '... a table per kind of record, and the layout')
    r = inst.cli('check')
    tap.is_(r.returncode, 0, 'check again: nothing to make', r.stderr)
    tap.ok(sql(pri, "select data_type from information_schema.columns "
               "where table_schema = 'payhook' and table_name = 'payments' "
               "and column_name = 'amount'") == 'bigint' and
           sql(pri, "select data_type from information_schema.columns "
               "where table_schema = 'payhook' and table_name = 'orders' "
               "and column_name = 'created_at'") ==
           'timestamp with time zone',
           'amounts are bigint, times timestamptz')
    sql(pri, 'update payhook.layout set version = 99')
    r = inst.cli('check')
    tap.ok(r.returncode != 0 and 'layout 99' in r.stderr and
           'layout 1' in r.stderr, 'another layout is refused, naming both',
           r.stderr)
    sql(pri, 'update payhook.layout set version = 1')

    bad = pg_instance(tap, 'pgpass', pri.conninfo() + ' password=hunter2')
    r = bad.cli('check')
    tap.ok(r.returncode != 0 and 'pg_password_file' in r.stderr and
           'hunter2' not in r.stderr,
           'a password in pg_conninfo is refused, without repeating it',
           r.stderr)
    return inst


def role_check(tap, role, grants):
    """A new role, the DBA's SQL grants run in database premade, then
    payhook check as that role: (its instance, check's result)."""
    PRI.psql("CREATE ROLE %s LOGIN" % role)
    PRI.psql(grants, dbname='premade')
    inst = pg_instance(tap, 'pg' + role, PRI.conninfo(dbname='premade',
                                                      user=role))
    return inst, inst.cli('check')


def test_premade_schema(tap):
    """Least privilege: the DBA made the database and an empty schema
    payhook owned by payhook's role, which may not create schemas:
    check makes the tables in it."""
    PRI.createdb('premade')
    inst, r = role_check(tap, 'app', "CREATE SCHEMA payhook AUTHORIZATION "
                         "app; REVOKE CREATE ON DATABASE premade FROM PUBLIC")
    tap.ok(r.returncode == 0 and 'configuration OK' in r.stdout,
           'a schema payhook the DBA made for a role that may not create '
           'one: check makes the tables in it', r.stdout + r.stderr)
    tap.is_(PRI.psql("select count(*) from pg_tables where schemaname = "
                     "'payhook' and tableowner = 'app'",
                     dbname='premade').strip(), '12',
            '... the role owns them')


def test_read_only_role(tap):
    """A role that may only read payhook's tables (made by another):
    check refuses it, naming a table and the right missing, instead of
    "configuration OK" and a payhook.fcgi that fails every write."""
    inst, r = role_check(tap, 'ro', "GRANT USAGE ON SCHEMA payhook TO ro; "
                         "GRANT SELECT ON ALL TABLES IN SCHEMA payhook TO "
                         "ro")
    tap.ok(r.returncode == 1 and 'role ro has no INSERT right on table '
           'payhook.dedup' in r.stderr and 'configuration OK' not in
           r.stdout, 'a role that may only read the tables: check '
           'refuses it (exit 1), naming the table and the right',
           r.returncode, r.stdout + r.stderr)
    tap.is_(inst.cli('stats').returncode, 0, '... stats, which only reads, '
            'runs as it')
    PRI.psql("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA payhook "
             "TO ro", dbname='premade')
    r = inst.cli('check')
    tap.is_(r.returncode, 0, '... given INSERT, UPDATE and DELETE, it '
            'passes', r.stdout + r.stderr)


def test_password(tap):
    """A cluster with scram-sha-256: the password from pg_password_file."""
    base = os.path.dirname(PRI.dir)
    c = pgcluster.Cluster(base, 'scram').init(password='s3cret-pw').start()
    c.createdb('payhook')
    files = {'keys/pg.pw': (b's3cret-pw\n', 0o644)}
    inst = pg_instance(tap, 'pgscram', c.conninfo(),
                       core={'pg_password_file': 'keys/pg.pw'}, files=files)
    r = inst.cli('check')
    tap.ok(r.returncode != 0 and 'pg_password_file' in r.stderr,
           'a password file others may read is refused', r.stderr)
    os.chmod(os.path.join(inst.etc, 'keys', 'pg.pw'), 0o600)
    r = inst.cli('check')
    tap.is_(r.returncode, 0, 'mode 0600: check connects with it',
            r.stdout + r.stderr)
    os.chmod(os.path.join(inst.etc, 'keys', 'pg.pw'), 0o600)
    with open(os.path.join(inst.etc, 'keys', 'pg.pw'), 'w') as fh:
        fh.write('wrong\n')
    r = inst.cli('stats')
    tap.ok(r.returncode != 0 and 'password authentication failed' in
           r.stderr, 'a wrong password: the server\'s refusal is shown',
           r.stderr)
    c.stop()


def test_one_host(tap, inst):
    inst.start()
    tap.is_(inst.create_order('PGA1', 1234).status, 201, 'an order')
    resp, fields = inst.pay('PGA1', 1234, harness.txn_id('pga1'))
    tap.ok(acked(resp), 'its payment notification is acknowledged',
           resp.describe())
    again = inst.notify(fields)
    tap.ok(acked(again), '... and again, the duplicate', again.describe())
    o = inst.order('PGA1')
    tap.is_((o or {}).get('state'), 'PAID', 'the order is PAID')
    evs = inst.all_events()
    tap.is_([(e['seq'], e['type']) for e in evs], [(1, 'order.paid')],
            'one event, order.paid')
    tap.is_(sql(PRI, "select order_id || ' ' || amount || ' ' || status || "
                "' ' || disposition || ' ' || (recorded_at > now() - "
                "interval '1 hour') from payhook.payments"),
            'PGA1 1234 SUCCEEDED paid true',
            'the payment as typed columns: order, amount, status, time')
    tap.is_(sql(PRI, "select count(*) from payhook.dedup where profile = "
                "'wxshop' and kind = 'payment.succeeded'"), '1',
            'one dedup key, its profile and kind queryable')
    r = inst.cli('stats')
    st = json.loads(r.stdout) if r.returncode == 0 else {}
    tap.ok(st.get('store') == 'postgresql' and
           'dbname' in (st.get('database') or '') and
           not (st.get('database') or '').endswith('.mdb'),
           'stats names the engine and the server\'s database, not a file',
           r.stdout[:300], r.stderr[-300:])
    tap.is_(sql(PRI, "select state || ' ' || amount || ' ' || currency "
                "from payhook.orders where order_id = 'PGA1'"),
            'PAID 1234 CNY', 'the order as typed columns')
    test_readyz_no_tables(tap, inst)
    r = inst.cli('backup', os.path.join(inst.dir, 'x.mdb'))
    tap.ok(r.returncode != 0 and 'pg_dump' in r.stderr,
           'payhook backup points to the server\'s own tools', r.stderr)
    r = inst.cli('restore', os.path.join(inst.dir, 'x.mdb'))
    tap.ok(r.returncode != 0 and 'PostgreSQL' in r.stderr,
           'so does payhook restore', r.stderr)


def test_readyz_no_tables(tap, inst):
    """/readyz, asked every few seconds by every load balancer, reads
    none of payhook's tables: it answers while a session holds every one
    of them locked (a count of rows would wait for the lock)."""
    tables = [t for t in sql(PRI, "select string_agg('payhook.' || relname, "
                             "',') from pg_stat_user_tables where schemaname "
                             "= 'payhook'").split(',') if t]
    holder = threading.Thread(target=PRI.psql, args=(
        'BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; '
        'SELECT pg_sleep(6); COMMIT;' % ', '.join(tables),), kwargs={
            'dbname': 'payhook'})
    holder.start()
    PRI.wait_for("select count(*) from pg_locks where mode = "
                 "'AccessExclusiveLock' and granted and relation in (select "
                 "oid from pg_class where relnamespace = 'payhook'::regnamespace"
                 " and relkind = 'r')", str(len(tables)), 10, 'payhook')
    t0 = time.monotonic()
    try:
        r = inst.request('GET', inst.path('/readyz'), timeout=4)
        status = r.status
    except Exception as e:  # noqa: BLE001 (a timeout is the failure)
        status = 'no answer: %s' % e
    took = time.monotonic() - t0
    holder.join()
    tap.ok(status == 200 and took < 3, '/readyz answers while every table '
           'of payhook is locked (%d tables, %.2f s)' % (len(tables), took),
           'status %s' % status)


def test_row_lock(tap):
    """A session holding a lock on an order's row (an operator's
    forgotten SELECT ... FOR UPDATE in psql): a notification for that
    order is answered with the retry format and a merchant call that
    writes it 503 store_unavailable, each within the provider's five
    seconds, instead of waiting (and holding every other writer back)
    until the lock goes; then the notification sent again is applied."""
    PRI.createdb('rowlock')
    inst = pg_instance(tap, 'pglock', PRI.conninfo(dbname='rowlock'),
                       max_procs=2)
    tap.is_(inst.cli('check').returncode, 0, 'row lock: the tables made')
    inst.start()
    inst.create_order('LOCK1', 1000)
    holder = threading.Thread(target=PRI.psql, args=(
        "BEGIN; SELECT order_id FROM payhook.orders WHERE order_id = "
        "'LOCK1' FOR UPDATE; SELECT pg_sleep(7); COMMIT;",), kwargs={
            'dbname': 'rowlock'})
    holder.start()
    PRI.wait_for("select count(*) from pg_locks where locktype = "
                 "'transactionid' and mode = 'ExclusiveLock' and pid in "
                 "(select pid from pg_stat_activity where query like "
                 "'%FOR UPDATE%' and pid <> pg_backend_pid())", '1', 10)
    body = harness.notify_xml(harness.make_payment(
        'LOCK1', 1000, harness.txn_id('lock1')))

    def timed(call):
        t0 = time.monotonic()
        try:
            r = call()
        except Exception as e:  # noqa: BLE001 (a timeout is the failure)
            r = harness.Response(None, {}, b'', str(e))
        return r, time.monotonic() - t0
    r, took = timed(lambda: inst.request(
        'POST', inst.path('/notify/wxshop'), body,
        {'Content-Type': 'text/xml'}, timeout=10))
    tap.ok(harness.FAIL_ACK_RE.match(r.body or b'') and took < 5,
           'the order\'s row locked by another session: the notification '
           'is answered with the retry format in %.1f s' % took,
           r.describe())
    r, took = timed(lambda: inst.api(
        'POST', '/orders/LOCK1/attempts', {'profile': 'wxshop'}))
    tap.ok(r.status == 503 and (r.json or {}).get('error') ==
           'store_unavailable' and took < 5, '... a merchant call that '
           'writes the order: 503 store_unavailable in %.1f s' % took,
           r.describe())
    tap.is_(inst.create_order('LOCK2', 500).status, 201,
            '... another order is written meanwhile')
    holder.join()
    tap.ok(acked(inst.notify(body)) and (inst.order('LOCK1') or {}).get(
        'state') == 'PAID', '... the lock gone, the notification sent again '
        'is applied')
    inst.stop()


def test_blackholed(tap):
    """The server lost without closing the connection (power lost, a
    partition: packets go nowhere, nothing is reset), in a network
    namespace of its own (pgblackhole.py): the notification in flight
    is answered with the retry format within about ten seconds (TCP
    keepalives, tcp_user_timeout), not never; the server back, the one
    sent again is applied."""
    if os.geteuid() != 0 or not shutil.which('unshare') or \
            not shutil.which('ip'):
        tap.skip('blackholed server', 'needs root, unshare and ip (a '
                 'network namespace of its own)')
        return
    PRI.createdb('blackhole')
    sock = os.path.join(PRI.dir, '.s.PGSQL.%d' % PRI.port)
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'pgblackhole.py')
    p = subprocess.run(['unshare', '-n', sys.executable, helper, sock,
                        'blackhole'], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=180)
    try:
        out = json.loads(p.stdout.splitlines()[-1])
    except (IndexError, ValueError):
        out = {}
    lost, back = out.get('lost') or {}, out.get('back') or {}
    tap.ok(out.get('check') == 0 and out.get('order') == 201,
           'blackholed: the tables and an order made through the proxy',
           p.stdout[-600:], p.stderr[-1500:])
    tap.ok(lost.get('status') is not None and harness.FAIL_ACK_RE.match(
        (lost.get('body') or '').encode()) and lost.get('secs', 99) < 25,
        'the server gone silent: the notification in flight is answered '
        'with the retry format in %s s' % lost.get('secs'), lost)
    tap.ok(back.get('status') == 200 and (back.get('body') or '').encode()
           == harness.SUCCESS_ACK and out.get('state') == 'PAID',
           '... the server reachable again: sent again, it is applied',
           back, out.get('state'))


def test_stalled_writer(tap):
    """Host A, through a proxy, goes silent in the middle of a write (its
    session holds the writers' lock, idle in transaction): host B's
    notifications are answered with the retry format for a few seconds,
    then applied, once the server ends A's idle session (5 s for
    payhook.fcgi), not after a minute; host A gives its connection up
    when no answer comes (6 s) and answers with the retry format, not
    never."""
    PRI.createdb('stall')
    px = harness.UnixProxy(os.path.join(PRI.dir, '.s.PGSQL.%d' % PRI.port))
    a = pg_instance(tap, 'pgstalla', 'host=127.0.0.1 port=%d dbname=stall '
                    'user=postgres' % px.port, max_procs=1)
    b = pg_instance(tap, 'pgstallb', PRI.conninfo(dbname='stall'),
                    max_procs=2)
    tap.is_(b.cli('check').returncode, 0, 'stalled writer: the tables made')
    a.start()
    b.start()
    tap.is_(a.create_order('STA', 100).status, 201, '... host A writes '
            'through the proxy')
    ids = ['STB%02d' % i for i in range(30)]
    for o in ids:
        b.create_order(o, 100)
    px.freeze_after(b'pg_advisory_xact_lock')
    got = []

    def on_a():
        t = time.monotonic()
        r = a.notify(harness.notify_xml(harness.make_payment(
            'STA', 100, harness.txn_id('sta'))))
        got.append((r, time.monotonic() - t))

    th = threading.Thread(target=on_a, daemon=True)
    th.start()
    harness.wait_for(lambda: px.frozen, 20)
    t0, first = time.monotonic(), None
    for o in ids:
        r = b.notify(harness.notify_xml(harness.make_payment(
            o, 100, harness.txn_id(o))))
        if acked(r):
            first = time.monotonic() - t0
            break
        time.sleep(1)
    tap.ok(px.frozen and first is not None and first < 20, 'host A silent '
           'holding the writers\' lock: host B applies again after %s s'
           % (None if first is None else round(first, 1)))
    th.join(30)
    tap.ok(got and harness.FAIL_ACK_RE.match(got[0][0].body or b'') and
           got[0][1] < 20, '... and host A, its connection silent, answers '
           'its notification with the retry format (in %s s), not never'
           % (round(got[0][1], 1) if got else None),
           got[0][0].describe() if got else 'no answer')
    px.close()
    a.stop()
    b.stop()


def test_two_host_recon(tap, hosts, sim):
    """Yesterday's statement reconciled by both hosts at the same moment:
    each payment made twice (the second never notified) gets one refund of
    the extra payment, not one per host."""
    bj = datetime.timezone(datetime.timedelta(hours=8))
    day0 = datetime.datetime.now(bj) - datetime.timedelta(days=1)
    day = day0.strftime('%Y-%m-%d')
    at = datetime.datetime(day0.year, day0.month, day0.day, 10, 0, 0,
                           tzinfo=bj).strftime('%Y%m%d%H%M%S')
    sim.control('/_sim/mode', {'notify': 'ok'})
    oids = ['PGRC%02d' % i for i in range(8)]
    twice = oids[:3]
    extra = []
    for oid in oids:
        hosts[0].create_order(oid, 700)
        body = {'profile': 'wxshop', 'order_id': oid, 'amount': 700,
                'time_end': at, 'notify': {'mode': 'normal'}}
        sim.control('/_sim/pay', body)
        if oid in twice:
            body.update(force=True, notify={'drop_all': True})
            extra.append(sim.control('/_sim/pay', body).json['txn_id'])
    paid = harness.wait_for(lambda: all(
        (hosts[1].order(o) or {}).get('state') == 'PAID' for o in oids),
        timeout=60)
    tap.ok(paid, 'reconcile: %d orders paid, %d of them twice (the second '
           'never notified)' % (len(oids), len(twice)))
    stmt = os.path.join(hosts[0].dir, 'statement.csv')
    r = sim.request('GET', '/_sim/statement?profile=wxshop&date=' + day)
    with open(stmt, 'wb') as fh:
        fh.write(r.body or b'')

    def recon(h):
        return h.cli('reconcile', '--profile', 'wxshop', '--statement', stmt,
                     '--date', day, '--report-dir', h.dir, '--trust-file',
                     timeout=120)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        runs = list(ex.map(recon, hosts))
    # One run of a day at a time: the other, when they overlapped, exits
    # 75 naming the one running, and is run again after it.
    tap.ok(any(p.returncode == 0 for p in runs) and
           all(p.returncode == 0 or (p.returncode == 75 and
                                     'another reconcile of wxshop:%s is '
                                     'running' % day in p.stderr)
               for p in runs), 'payhook reconcile of the same day on both '
           'hosts at once: one runs, the other runs too or exits 75 saying '
           'which runs (%s)' % [p.returncode for p in runs],
           [p.stderr[-400:] for p in runs])
    for h, p in zip(hosts, runs):
        if p.returncode == 75:
            p = recon(h)
            tap.is_(p.returncode, 0, '... the refused one run again',
                    p.stderr[-400:])
    r = hosts[1].cli('refunds', 'list', '--all')
    rows = [line.split('\t') for line in r.stdout.splitlines() if line]
    tap.is_(sorted(x[6] for x in rows if len(x) == 7 and
                   x[2] == 'double_payment'), sorted(extra),
            'one refund for each extra payment, whichever host found it',
            r.stdout[-800:])


def feed_in_order(tap, evs, name):
    seqs = [e['seq'] for e in evs]
    tap.is_(seqs, list(range(1, len(seqs) + 1)), name + ': seq 1..%d, '
            'no hole, none twice' % len(seqs))


def test_two_hosts(tap, a):
    b = pg_instance(tap, 'pghostb', PRI.conninfo())
    b.start()
    base = a.last_seq()
    n = 60
    ids = ['PG2H%03d' % i for i in range(n)]
    for oid in ids:
        if a.create_order(oid, 500).status != 201:
            tap.ok(False, 'order %s created' % oid)
            return
    notes = [harness.notify_xml(harness.make_payment(
        oid, 500, harness.txn_id(oid))) for oid in ids]
    go = threading.Barrier(2)

    def send(inst):
        go.wait()
        return [inst.notify(body) for body in notes]

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        fa, fb = ex.submit(send, a), ex.submit(send, b)
        ra, rb = fa.result(), fb.result()
    tap.ok(all(acked(r) for r in ra + rb),
           'the same %d notifications at two hosts at once: all '
           'acknowledged by both' % n,
           [r.describe() for r in ra + rb if not acked(r)][:3])
    tap.is_(sql(PRI, "select count(*) from payhook.payments where "
                "order_id like 'PG2H%'"), str(n), 'each applied once')
    evs = [e for e in b.all_events(base)]
    tap.is_(sorted(e['order_id'] for e in evs if e['type'] == 'order.paid'),
            ids, 'one order.paid per order')
    feed_in_order(tap, a.all_events(), 'the feed')
    tap.is_(a.all_events(), b.all_events(), 'both hosts show the same feed')
    b.stop()


def test_failover(tap):
    base = os.path.dirname(PRI.dir)
    p = pgcluster.Cluster(base, 'fo1').init().start()
    p.createdb('payhook')
    s = p.make_standby('fo2')
    conninfo = ('host=%s,%s port=%d,%d dbname=payhook user=postgres '
                'target_session_attrs=read-write connect_timeout=2'
                % (p.dir, s.dir, p.port, s.port))
    hosts = [pg_instance(tap, 'pgfail%d' % i, conninfo, max_procs=3)
             for i in (1, 2)]
    r = hosts[0].cli('check')
    tap.is_(r.returncode, 0, 'failover: check makes the tables on the '
            'primary', r.stdout + r.stderr)
    for h in hosts:
        h.start()
    n = 240
    ids = ['PGF%03d' % i for i in range(n)]
    results = {}

    def load(part):
        # Two hosts: each notification goes to both, in one order or
        # the other, while the other threads do the same.
        first, second = hosts[part % 2], hosts[1 - part % 2]
        for oid in ids[part::4]:
            for _ in range(200):        # a merchant retries its own call
                if first.create_order(oid, 700).status in (200, 201):
                    break
                time.sleep(0.05)
            body = harness.notify_xml(harness.make_payment(
                oid, 700, harness.txn_id(oid)))
            results[oid] = (body, first.notify(body), second.notify(body))

    killed = {}

    def failover():
        while len(results) < n // 3:
            time.sleep(0.01)
        killed['acked_before'] = sum(acked(r1) or acked(r2) for _b, r1, r2
                                     in list(results.values()))
        p.kill_immediate()
        time.sleep(0.5)
        s.promote()

    with concurrent.futures.ThreadPoolExecutor(5) as ex:
        jobs = [ex.submit(load, i) for i in range(4)]
        fo = ex.submit(failover)
        for j in jobs:
            j.result()
        fo.result()
    answers = [r for _b, r1, r2 in results.values() for r in (r1, r2)]
    n_acked = sum(acked(r) for r in answers)
    tap.ok(killed.get('acked_before', 0) > 0 and n_acked > killed.get(
        'acked_before', 0), 'two hosts; the primary was killed mid-load '
        '(%s orders acknowledged before), the standby promoted; %d of %d '
        'answers acknowledged' % (killed.get('acked_before'), n_acked,
                                  len(answers)))
    for h in hosts:
        log = open(h.server.stdout_log, errors='replace').read()
        tap.ok('connected again' in log, '%s: payhook.fcgi lost its '
               'connection and found the new primary without a restart'
               % h.name, log[-3000:])
    bad = [(r.status, r.body[:160]) for r in answers
           if not acked(r) and not harness.FAIL_ACK_RE.match(r.body)]
    tap.is_(bad, [], 'every other answer is WeChat\'s retry format (FAIL): '
            'nothing acknowledged unrecorded')
    retried = [oid for oid, (_b, r1, r2) in results.items()
               if not (acked(r1) or acked(r2))]
    for oid in retried:                 # the provider sends them again
        for _ in range(100):
            if acked(hosts[0].notify(results[oid][0])):
                break
            time.sleep(0.1)
    acked_ids = [oid for oid, (_b, r1, r2) in results.items()
                 if acked(r1) or acked(r2)]
    lost = [oid for oid in acked_ids if (hosts[1].order(oid) or {}).get(
        'state') != 'PAID']
    tap.is_(lost, [], 'every notification acknowledged before, during and '
            'after the failover is there: its order PAID (%d)'
            % len(acked_ids))
    tap.is_(sql(s, "select count(*), count(distinct order_id) from "
                "payhook.payments"), '%d|%d' % (n, n),
            'after the retries every order paid once: no payment twice')
    evs = hosts[0].all_events()
    feed_in_order(tap, evs, 'the feed after the failover')
    tap.is_(sorted(e['order_id'] for e in evs if e['type'] == 'order.paid'),
            sorted(ids), 'one order.paid per order')
    tap.is_(hosts[1].all_events(), evs, 'both hosts show the same feed')
    for h in hosts:
        h.stop()
    s.stop()


def test_standby_named(tap):
    """pg_conninfo naming a standby alone, or first without
    target_session_attrs: payhook takes only a server that takes writes,
    so it does not start on the standby alone (a load balancer sees no
    ready host there), and takes the primary named after it."""
    base = os.path.dirname(PRI.dir)
    p = pgcluster.Cluster(base, 'ro1').init().start()
    p.createdb('payhook')
    prim = pg_instance(tap, 'pgroprim', p.conninfo())
    r = prim.cli('check')
    tap.is_(r.returncode, 0, 'standby: the tables made on the primary',
            r.stdout + r.stderr)
    s = p.make_standby('ro2', synchronous=False)
    only = pg_instance(tap, 'pgroonly', s.conninfo())
    r = only.cli('check')
    tap.ok(r.returncode != 0 and 'read-only' in r.stderr, 'pg_conninfo '
           'naming a standby alone: check refused, saying it is read-only',
           r.returncode, r.stderr[-400:])
    try:        # as with a server down: payhook.fcgi does not start
        only.server = harness.Server(only)
        only.server.start(timeout=8)
        started = True
    except harness.StartError as e:
        started, why = False, str(e)
    tap.ok(not started and 'session is read-only' in why, '... nor does '
           'payhook.fcgi start: /healthz never served, the log saying why',
           why[-300:] if not started else 'started')
    if started:
        only.stop()
    both = pg_instance(tap, 'pgroboth', 'host=%s,%s port=%d,%d '
                       'dbname=payhook user=postgres' % (
                           s.dir, p.dir, s.port, p.port))
    both.start()
    r = both.create_order('PGRO2', 100)
    n = both.notify(harness.notify_xml(harness.make_payment(
        'PGRO2', 100, harness.txn_id('pgro2'))))
    tap.ok(r.status == 201 and acked(n) and (both.order('PGRO2') or {}).get(
        'state') == 'PAID', 'the standby named first, the primary after it '
        '(no target_session_attrs): the primary taken, the order paid',
        r.describe(), n.describe())
    both.stop()
    s.stop()
    p.stop()


def test_sync_standby_away(tap):
    """A synchronous standby away: a commit waits for it.  An operator
    ending the waiting session leaves the commit on the primary only,
    seen by the others; payhook runs the transaction again and finds the
    fact applied, but does not acknowledge it before the standby has it,
    nor a duplicate of it; a wait cancelled (the commit stands on the
    primary only) is answered with the retry format.  The standby back,
    those waiting are acknowledged, and the standby has the payment."""
    base = os.path.dirname(PRI.dir)
    p = pgcluster.Cluster(base, 'sync1').init().start()
    p.createdb('payhook')
    s = p.make_standby('sync2')
    inst = pg_instance(tap, 'pgsync', p.conninfo(), max_procs=2)
    tap.is_(inst.cli('check').returncode, 0, 'sync: the tables made')
    inst.start()
    inst.create_order('SY1', 100)
    body = harness.notify_xml(harness.make_payment('SY1', 100,
                                                   harness.txn_id('SY1')))
    waiting = ("select count(*) from pg_stat_activity where wait_event = "
               "'SyncRep' and application_name = 'payhook'")
    sessions = ("from pg_stat_activity where wait_event = 'SyncRep' and "
                "application_name = 'payhook'")
    s.stop()
    out = {}

    def send(key):
        out[key] = inst.notify(body)
    first = threading.Thread(target=send, args=('first',))
    first.start()
    p.wait_for(waiting, '1', 10, 'payhook')
    p.psql("select pg_terminate_backend(pid) " + sessions)
    time.sleep(1.5)
    tap.ok('first' not in out and sql(p, waiting) == '1', 'the standby '
           'away, the session whose commit waited for it ended: the '
           'transaction run again finds the payment applied and waits for '
           'the standby, not acknowledged', out.get('first'))
    p.psql("select pg_cancel_backend(pid) " + sessions)
    first.join(30)
    r = out.get('first')
    tap.ok(r is not None and not acked(r) and
           harness.FAIL_ACK_RE.match(r.body or b''), '... that wait '
           'cancelled: answered with the retry format',
           r and r.describe())
    again = threading.Thread(target=send, args=('again',))
    again.start()
    p.wait_for(waiting, '1', 10, 'payhook')
    time.sleep(1)
    tap.ok('again' not in out, '... sent again, found applied on the '
           'primary only: waits for the standby too')
    s.start()
    again.join(30)
    tap.ok(acked(out.get('again') or harness.Response(None, {}, b'')),
           'the standby back: it is acknowledged')
    tap.is_(s.psql("select count(*) from payhook.payments where order_id "
                   "= 'SY1'", dbname='payhook').strip(), '1',
            '... and the standby has the payment')
    inst.stop()
    s.stop()
    p.stop()


def test_import(tap):
    lm = Instance(tap, 'pgimp-lmdb')
    lm.start()
    for i in range(25):
        oid = 'IMP%02d' % i
        lm.create_order(oid, 300 + i)
        if i % 2 == 0:
            lm.pay(oid, 300 + i, harness.txn_id(oid))
    feed = lm.all_events()
    lm.stop()
    PRI.createdb('imported')
    pg = pg_instance(tap, 'pgimp', PRI.conninfo(dbname='imported'))
    # An import that fails half-way (here the events refused by a
    # constraint) takes out what it copied: the store is new again.
    tap.is_(pg.cli('check').returncode, 0, 'store import: the tables made')
    PRI.psql("alter table payhook.events add constraint no_events "
             "check (false)", dbname='imported')
    r = pg.cli('store', 'import', lm.config)
    left = PRI.psql("select (select count(*) from payhook.orders) + "
                    "(select count(*) from payhook.payments)",
                    dbname='imported').strip()
    tap.ok(r.returncode == 1 and 'events records' in r.stderr and
           left == '0', 'store import failing at the events: exit 1, '
           'naming them, and the orders and payments copied taken out',
           r.returncode, r.stderr[-300:], left)
    PRI.psql("alter table payhook.events drop constraint no_events",
             dbname='imported')
    test_import_killed(tap, lm, pg)
    r = pg.cli('store', 'import', lm.config)
    tap.ok(r.returncode == 0 and 'the counts of both agree' in r.stdout,
           'store import: an LMDB store into a new PostgreSQL database',
           r.stdout + r.stderr)
    tap.like(r.stdout, r'orders +25\b', '... 25 orders counted')
    pg.start()
    tap.is_(pg.all_events(), feed, 'the feed is the same, ids and epoch')
    tap.is_((pg.order('IMP04') or {}).get('state'), 'PAID',
            'a paid order is PAID')
    tap.is_(PRI.psql("select count(*) from payhook.payments",
                     dbname='imported').strip(), '13',
            'its payments are rows with typed columns')
    pg.stop()
    r = pg.cli('store', 'import', lm.config)
    tap.ok(r.returncode != 0 and 'not empty' in r.stderr,
           'a second import into the same store is refused', r.stderr)
    old = feed[0]['id'].split('-')[0]
    r = pg.cli('store', 'new-epoch')
    tap.ok(r.returncode == 0 and ('(was %s)' % old) in r.stdout,
           'store new-epoch: a new epoch, the old one named', r.stdout +
           r.stderr)
    pg.start()
    pg.create_order('IMP99', 990)
    pg.pay('IMP99', 990, harness.txn_id('IMP99'))
    r = pg.events()
    new = (r.json or {}).get('epoch')
    tap.ok(new and new != old and r.json['events'][-1]['id'].startswith(
        new + '-'), 'the feed shows it, and new events carry it',
        r.describe())
    tap.ok(r.json['events'][-1]['seq'] >= feed[-1]['seq'] + 2 ** 32,
           '... with sequence numbers 2^32 past the store\'s before',
           r.json['events'][-1]['seq'], feed[-1]['seq'])
    pg.stop()


def test_import_killed(tap, lm, pg):
    """An import killed half way (its copy of the events held up by a
    lock, the orders and payments copied): the store left is refused by
    check, saying so; the next import starts it over (the caller's)."""
    def hold():
        try:
            PRI.psql("begin; lock table payhook.events in share mode; "
                     "select pg_sleep(60); commit;", 'imported', 90)
        except pgcluster.PgError:
            pass                # ended below, by pg_terminate_backend
    held = threading.Thread(target=hold)
    held.start()
    PRI.wait_for("select count(*) from pg_locks where mode = 'ShareLock' "
                 "and relation = 'payhook.events'::regclass", '1', 10,
                 'imported')
    imp = subprocess.Popen([harness.PAYHOOK, '-c', pg.config, 'store',
                            'import', lm.config], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    copied = ("select (select count(*) from payhook.orders) || ' ' || "
              "(select count(*) from payhook.payments)")
    PRI.wait_for(copied, '25 13', 30, 'imported')
    imp.kill()
    imp.wait()
    PRI.psql("select pg_terminate_backend(pid) from pg_stat_activity "
             "where query like '%pg_sleep(60)%' and pid <> "
             "pg_backend_pid()")
    held.join(30)
    r = pg.cli('check')
    tap.ok(r.returncode != 0 and 'half made' in r.stderr and
           'run payhook store import again' in r.stderr, 'an import killed half way '
           '(orders and payments copied, not the events): check refuses '
           'the store, saying so', r.returncode, r.stderr[-400:])


def test_two_host_sweep(tap):
    """Payments whose notifications never came (the simulator holds
    them): both hosts' sweepers query the same due orders at once; each
    order is paid once, one event each."""
    PRI.createdb('sweep2')
    conninfo = PRI.conninfo(dbname='sweep2')
    sim = harness.Simulator(tap).start()
    hosts = [harness.SimInstance(tap, 'pgsweep%d' % i, sim_port=sim.port,
                                 core={'store': 'postgresql',
                                       'pg_conninfo': conninfo},
                                 profile={'query_schedule': '1s,1h'})
             for i in (1, 2)]
    r = hosts[0].cli('check')
    tap.is_(r.returncode, 0, 'sweep: the tables made', r.stderr)
    hosts[0].start()
    sim.point_at(hosts[0])
    sim.control('/_sim/mode', {'notify': 'pause'})
    ids = ['PGSW%02d' % i for i in range(30)]
    for oid in ids:
        hosts[0].create_order(oid, 800)
        sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': oid,
                                  'amount': 800})
    time.sleep(1.3)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        runs = list(ex.map(lambda h: h.cli('sweep', timeout=120), hosts))
    tap.ok(all(p.returncode == 0 for p in runs), 'payhook sweep on both '
           'hosts at once: both exit 0', [p.stderr[-400:] for p in runs])
    tap.is_([o for o in ids if (hosts[0].order(o) or {}).get('state') !=
             'PAID'], [], 'every order found paid by a query')
    tap.is_(PRI.psql("select count(*) || ' ' || count(distinct order_id) "
                     "from payhook.payments", dbname='sweep2').strip(),
            '30 30', 'each paid once')
    evs = hosts[0].all_events()
    feed_in_order(tap, evs, 'the sweepers\' feed')
    tap.is_(sorted(e['order_id'] for e in evs if e['type'] == 'order.paid'),
            ids, 'one order.paid per order')
    hosts[1].start()
    test_two_host_guard(tap, hosts)
    test_two_host_refunds(tap, hosts, sim, ids)
    test_two_host_recon(tap, hosts, sim)
    for h in hosts:
        h.stop()
    sim.stop()


def test_two_host_guard(tap, hosts):
    """The pre-payment guard asked on both hosts at the same moment for
    the same order: one attempt is recorded, the other refused."""
    gids = ['PGGU%02d' % i for i in range(12)]
    for oid in gids:
        hosts[0].create_order(oid, 500)
    calls = [(h, oid) for oid in gids for h in hosts]
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as ex:
        got = list(ex.map(lambda c: c[0].api(
            'POST', '/orders/%s/attempts' % c[1], {'profile': 'wxshop'}),
            calls))
    pairs = [sorted((r.status, (r.json or {}).get('error', '') if
                     r.status != 201 else '') for r in got[i:i + 2])
             for i in range(0, len(got), 2)]
    tap.is_([p for p in pairs if p != [(201, ''), (409,
             'attempt_in_progress')]], [], 'the pre-payment guard on both '
            'hosts at once: for each of %d orders one 201 and one 409 '
            'attempt_in_progress' % len(gids))


def test_two_host_refunds(tap, hosts, sim, ids):
    """A refund of each paid order, then both hosts' refund runners at
    once: the provider is asked to make each refund once."""
    asked = [hosts[k % 2].api('POST', '/orders/%s/refunds' % oid,
                              {'amount': 300, 'refund_id': 'R-' + oid})
             for k, oid in enumerate(ids)]
    tap.is_([r.status for r in asked if r.status != 201], [],
            '%d refunds asked for, half on each host' % len(ids))
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        runs = list(ex.map(lambda h: h.cli('refunds', 'run', timeout=120),
                           hosts))
    tap.ok(all(p.returncode == 0 for p in runs), 'payhook refunds run on '
           'both hosts at once: both exit 0',
           [p.stderr[-400:] for p in runs])
    made = (sim.control('/_sim/stats', method='GET').json or {}).get(
        'refunds', {})
    by_order = {}
    for r in (sim.control('/_sim/refunds', method='GET').json or {}).get(
            'refunds', {}).values():
        by_order[r['order_id']] = by_order.get(r['order_id'], 0) + 1
    tap.ok(made.get('made') == len(ids) and by_order == {o: 1 for o in ids}
           and all(v.get('refunds', 0) <= 1 for v in
                   made.get('by_id', {}).values()),
           'the provider made each refund once (%s made, %d calls)' % (
               made.get('made'), made.get('calls', 0)),
           'by order: %r' % {o: n for o, n in by_order.items() if n != 1})
    r = hosts[1].cli('refunds', 'list', '--all')
    rows = [line.split('\t') for line in r.stdout.splitlines() if line]
    tap.is_(sorted((x[0], x[1] != 'PENDING') for x in rows),
            [('R-' + o, True) for o in ids],
            'each refund listed once, none left to send', r.stdout[-600:])


def test_store_down(tap):
    """The database going down while the sweeper and the refund runner
    wait for the provider: the provider's answers are not recorded, and
    each command says the database failed (exit 1, the sweeper's pass
    counted as an error), not that the provider did; once the database is
    back, the next runs record them once."""
    cl = pgcluster.Cluster(None, 'pgdown').init().start()
    cl.createdb('down')
    sim = harness.Simulator(tap).start()
    inst = harness.SimInstance(tap, 'pgdown', sim_port=sim.port, core={
        'store': 'postgresql', 'pg_conninfo': cl.conninfo(dbname='down'),
        'lease_s': '5', 'http_timeout_s': '4', 'attempt_hold_s': '0'},
        profile={'query_schedule': '1s'}, max_procs=1)
    tap.is_(inst.cli('check').returncode, 0, 'down: the tables made')
    inst.start()
    sim.point_at(inst)
    inst.create_order('DOWN1', 1000)
    sim.control('/_sim/pay', {'profile': 'wxshop', 'order_id': 'DOWN1',
                              'amount': 1000, 'notify': {'drop_all': True}})
    time.sleep(1.3)

    def down_during(args, asked):
        """Runs payhook args; the database stopped once asked() holds."""
        p = subprocess.Popen([harness.PAYHOOK, '-c', inst.config] + args,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        harness.wait_for(asked, 10, 0.02)
        cl.stop(mode='immediate')
        err = p.communicate(timeout=90)[1]
        cl.start()
        return p.returncode, err

    sim.control('/_sim/mode', {'query': 'slow', 'slow_s': 2.0})
    rc, err = down_during(['sweep'], lambda: sim.stats()['total'].get(
        'query', 0) >= 1)
    sim.control('/_sim/mode', {'query': 'ok'})
    tap.ok(rc == 1 and 'not recorded' in err, 'the database down while '
           'the sweeper asks: exit 1, the payment not recorded', rc,
           err[-400:])
    passes = [line for line in inst.request('GET', '/metrics').body.decode()
              .splitlines() if line.startswith('payhook_sweeper_passes_total{')]
    tap.ok(any('result="error"' in x and not x.endswith(' 0')
               for x in passes), '... the pass counted as an error',
           passes)
    took = harness.wait_for(lambda: inst.cli('sweep').returncode == 0 and
                            (inst.order('DOWN1') or {}).get('state') ==
                            'PAID', 20, 0.5)
    tap.ok(took, '... the database back: the next pass pays the order')

    r = inst.api('POST', '/orders/DOWN1/refunds', {'amount': 1000})
    tap.is_(r.status, 201, 'a refund asked for', r.describe())
    rid = (r.json or {}).get('refund_id')
    sim.control('/_sim/refund_mode', {'api': 'slow'})
    sim.control('/_sim/mode', {'slow_s': 2.0})
    rc, err = down_during(['refunds', 'run'], lambda: sim.stats()[
        'refunds']['calls'] >= 1)
    sim.control('/_sim/refund_mode', {'api': 'ok'})
    tap.ok(rc == 1 and 'not recorded' in err, 'the database down while '
           'the refund runner waits for the provider: exit 1, the result '
           'not recorded', rc, err[-400:])

    def settled():
        """A run after the lease of the failed one ran out."""
        inst.cli('refunds', 'run')
        return (inst.api('GET', '/refunds/%s' % rid).json or {}).get(
            'state') in ('PROCESSING', 'SUCCEEDED')

    tap.ok(harness.wait_for(settled, 30, 1) and
           sim.stats()['refunds']['made'] == 1, '... the database back: '
           'a later run records it, the refund made once at the provider',
           sim.stats()['refunds'])

    # A merchant's keyed call the database fails under, while it asks the
    # provider about the order's earlier attempt: answered 503, and its
    # claims (the Idempotency-Key's, the order's guard) let go once the
    # database is back, so that the retry the README asks for runs.
    inst.create_order('DOWN2', 500)
    r = inst.api('POST', '/orders/DOWN2/attempts', {'profile': 'wxshop'})
    tap.is_(r.status, 201, 'an attempt on DOWN2', r.describe())
    sim.control('/_sim/mode', {'query': 'slow', 'slow_s': 2.0})
    asked = sim.stats()['total'].get('query', 0)
    out = {}
    key = {'Idempotency-Key': 'down2-' + os.urandom(3).hex()}

    def call():
        out['r'] = inst.api('POST', '/orders/DOWN2/attempts',
                            {'profile': 'wxshop'}, headers=key)
    th = threading.Thread(target=call)
    th.start()
    harness.wait_for(lambda: sim.stats()['total'].get('query', 0) > asked,
                     10, 0.02)
    cl.stop(mode='immediate')
    th.join(60)
    sim.control('/_sim/mode', {'query': 'ok'})
    cl.start()
    first = out.get('r')
    tap.is_((first.status, (first.json or {}).get('error')) if first else
            None, (503, 'store_unavailable'), 'a keyed attempt the '
            'database fails under: 503 store_unavailable',
            first.describe() if first else '')
    r = inst.api('POST', '/orders/DOWN2/attempts', {'profile': 'wxshop'},
                 headers=key)
    tap.is_(r.status, 201, '... the database back: the retry with its '
            'key runs at once (not 409 while the claims\' leases run)',
            r.describe())
    test_follow_restart(tap, inst, cl)
    inst.stop()
    sim.stop()
    cl.stop()


def test_follow_restart(tap, inst, cl):
    """`events tail --follow` outlives the database restarted (as a
    failover restarts it): it says so once and goes on printing."""
    out = os.path.join(inst.dir, 'tail.out')
    err = os.path.join(inst.dir, 'tail.err')
    with open(out, 'w') as fo, open(err, 'w') as fe:
        p = subprocess.Popen([harness.PAYHOOK, '-c', inst.config, 'events',
                              'tail', '--follow'], stdin=subprocess.DEVNULL,
                             stdout=fo, stderr=fe)

    def text(path):
        with open(path) as f:
            return f.read()
    harness.wait_for(lambda: 'order.paid' in text(out), 10)
    cl.stop(mode='fast')
    time.sleep(2.5)
    cl.start()
    inst.create_order('DOWN3', 700)
    inst.pay('DOWN3', 700, harness.txn_id('DOWN3'))
    tap.ok(harness.wait_for(lambda: '"DOWN3"' in text(out), 15) and
           p.poll() is None, 'events tail --follow: the database '
           'restarted, it goes on and prints the next event', p.poll(),
           text(err)[-300:])
    tap.ok(text(err).count('trying again') == 1, '... having said once '
           'that it waits for the store', text(err)[-300:])
    p.terminate()
    p.wait(timeout=30)


def test_clock_skew_watch(tap, inst, offset):
    """A sweep --watch started while the clocks agreed: the clock is
    checked before every pass, not only at the start, and the watch
    resumes by itself once the clocks agree again."""
    err = os.path.join(inst.dir, 'watch.err')
    with open(err, 'w') as f:
        p = subprocess.Popen([harness.PAYHOOK, '-c', inst.config, 'sweep',
                              '--watch', '--interval', '1'],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=f)

    def text(path):
        with open(path) as f:
            return f.read()

    def refusals():
        return text(err).count('not run')
    time.sleep(2.5)
    tap.ok(p.poll() is None and refusals() == 0, 'skew: a watch runs '
           'while the clocks agree', text(err)[-300:])
    harness.write_file(offset, '+300\n', 0o644)
    time.sleep(3.5)
    n = refusals()
    tap.ok(p.poll() is None and n >= 2 and
           's behind the database server' in text(err),
           'skew: the server\'s clock moved 300 s on: the watch refuses '
           'every pass from then on, saying why, and goes on', n,
           text(err)[-300:])
    harness.write_file(offset, '+0\n', 0o644)
    time.sleep(1.5)
    n = refusals()
    time.sleep(2.5)
    tap.ok(p.poll() is None and refusals() == n, 'skew: the clocks '
           'agree again: the watch makes its passes again',
           refusals(), n)
    p.terminate()
    tap.is_(p.wait(timeout=30), 0, 'skew: the watch ends on SIGTERM with '
            'its last pass\'s status (0)')
    # A watch started while the clocks disagree waits for them too.
    harness.write_file(offset, '+300\n', 0o644)
    with open(err, 'w') as f:
        p = subprocess.Popen([harness.PAYHOOK, '-c', inst.config, 'sweep',
                              '--watch', '--interval', '1'],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=f)
    time.sleep(2.5)
    alive = p.poll() is None
    harness.write_file(offset, '+0\n', 0o644)
    time.sleep(1.5)
    n = refusals()
    time.sleep(2.5)
    tap.ok(alive and p.poll() is None and n >= 1 and refusals() == n,
           'skew: a watch started while the clocks disagree refuses its '
           'passes, goes on, and makes them once they agree', alive, n,
           text(err)[-300:])
    p.terminate()
    p.wait(timeout=30)


def test_clock_skew(tap):
    """A host whose clock is far off the database server's, which other
    hosts' leases and holds are read against: /readyz takes it out of
    the load balancer and the jobs that lease refuse to run, saying
    why.  The server's clock runs five minutes ahead (libfaketime in its
    environment only)."""
    lib = harness.libfaketime()
    if lib is None:
        tap.skip('clock skew', 'libfaketime is not installed')
        return
    # The server's offset is read from a file at every clock read, so
    # that it can move while payhook runs.
    tmp = tempfile.mkdtemp(prefix='payhook-skew-')
    os.chmod(tmp, 0o755)     # read by the server's user
    offset = os.path.join(tmp, 'offset')
    harness.write_file(offset, '+0\n', 0o644)
    cl = pgcluster.Cluster(None, 'pgskew').init().start(env={
        'LD_PRELOAD': lib, 'FAKETIME_TIMESTAMP_FILE': offset,
        'FAKETIME_NO_CACHE': '1'})
    cl.createdb('skew')
    inst = pg_instance(tap, 'pgskew', cl.conninfo(dbname='skew'))
    tap.is_(inst.cli('check').returncode, 0, 'skew: the tables made')
    test_clock_skew_watch(tap, inst, offset)
    harness.write_file(offset, '+300\n', 0o644)
    inst.start()
    r = inst.request('GET', '/readyz')
    reasons = (r.json or {}).get('reasons') or []
    tap.ok(r.status == 503 and any(re.match(
        r"clock_skew: this host's clock is 30\d\.\d s behind the "
        r"database server's", x) for x in reasons), 'a host 300 s behind '
        'the server: /readyz 503 clock_skew, saying by how much',
        r.describe())
    for args in (['sweep'], ['refunds', 'run']):
        p = inst.cli(*args)
        tap.ok(p.returncode == 1 and 's behind the database server' in
               p.stderr and 'not run' in p.stderr, '%s refuses to run, '
               'saying why' % ' '.join(args), p.returncode, p.stderr[-300:])
    inst.stop()
    cl.stop()
    shutil.rmtree(tmp, ignore_errors=True)


PRI = None


def main(tap):
    global PRI
    why = pgcluster.available()
    if why:
        tap.skip_all(why)
        return
    PRI = pgcluster.Cluster(None, 'pg1').init().start()
    inst = test_tables(tap, PRI)
    test_premade_schema(tap)
    test_read_only_role(tap)
    test_password(tap)
    test_one_host(tap, inst)
    test_two_hosts(tap, inst)
    inst.stop()
    test_row_lock(tap)
    test_blackholed(tap)
    test_stalled_writer(tap)
    test_import(tap)
    test_two_host_sweep(tap)
    test_failover(tap)
    test_standby_named(tap)
    test_sync_standby_away(tap)
    test_store_down(tap)
    test_clock_skew(tap)
    PRI.stop()


if __name__ == '__main__':
    harness.run(main)
