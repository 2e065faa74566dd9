#!/usr/bin/env python3
"""Reconciling a statement of a million rows: time and memory.

Writes a WeChat Pay trade bill (the downloadbill text: BOM, back-ticked
fields, CRLF, the summary) of ROWS successful payments of one Beijing day,
streamed to a file, and reconciles it twice with `payhook reconcile`
against a fresh store:

  cold  every row is a payment payhook never heard of: each is applied
        from the statement through the ledger (one durable transaction
        each; payments of unknown orders, since no order exists)
  warm  the same statement again: every row is found, nothing is applied,
        and the report and the store end up as after the cold run

For each run it prints the wall time, the CPU time and the peak resident
set size of the payhook process (from wait4), split into its anonymous
part (heap and stack: what payhook allocates) and its mapped files (the
LMDB map, which holds the pages of the store it touched, and the
program), sampled from /proc; and the sizes of the statement, the reports
and the store.  The statement is read one line at a time by the plugin
(struct ph_statement) and the batch commits every 2000 rows, so the
anonymous memory grows with ROWS only by the first pass's 8-byte
fingerprint of each fact (the proof that none is listed twice): compare
`--rows 100000` with the default.  The mapped part is the kernel's page cache of the store
file, which it can drop at will (on a disk) and which grows with the
store, not with the statement.

The store goes on /dev/shm when it is there (--dir to choose): on tmpfs a
durable commit costs next to nothing, so the figures are those of
reconciling, not of the disk; on a disk the cold run costs one or two
fsyncs per row (see bench/commit_floor for that floor).

Run by `make bench-recon` (BENCH_RECON_ARGS to pass options), or by hand
in the build tree after `make`:
  python3 bench/recon_million.py [--rows N] [--dir DIR] [--keep]
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get('top_srcdir') or
                         os.path.join(HERE, '..'))
BUILDDIR = os.path.abspath(os.environ.get('top_builddir') or SRCDIR)
PAYHOOK = os.path.join(BUILDDIR, 'payhook')
PLUGIN_DIR = os.path.join(BUILDDIR, 'providers', '.libs')

APPID, MCH_ID = 'wx2421b1c4370ec43b', '10000100'
KEY = '192006250b4c09247ec02edce69f6a2d'
HEADER = ('交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,'
          '用户标识,交易类型,交易状态,付款银行,货币种类,总金额,'
          '代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,'
          '代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,'
          '手续费,费率')
SUMMARY = '总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额'


def write_bill(path, rows, day):
    """rows payments spread over day (yyyy-mm-dd); returns the bytes."""
    total = 0
    secs = 86400 * 1000 // max(rows, 1)     # ms between payments
    with open(path, 'w', encoding='utf-8', newline='') as fh:
        fh.write('\ufeff' + HEADER + '\r\n')
        buf = []
        for i in range(rows):
            ms = i * secs
            t = '%s %02d:%02d:%02d' % (day, ms // 3600000,
                                       ms // 60000 % 60, ms // 1000 % 60)
            fen = 1 + (i * 7919) % 99999
            total += fen
            buf.append('`%s,`%s,`%s,`0,`,`4200%024d,`B%011d,`oUpF8uMuAJO_M2'
                       'pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`CFT,`CNY,`%d.%02d,'
                       '`0.00,`0,`0,`0.00,`0.00,`,`,`商品,`,`0.00,`0.60%%\r\n'
                       % (t, APPID, MCH_ID, i, i, fen // 100, fen % 100))
            if len(buf) == 10000:
                fh.write(''.join(buf))
                buf = []
        fh.write(''.join(buf))
        fh.write(SUMMARY + '\r\n')
        fh.write('`%d,`%d.%02d,`0.00,`0.00,`0.00\r\n'
                 % (rows, total // 100, total % 100))
    return os.path.getsize(path)


def write_conf(d, rows):
    os.makedirs(os.path.join(d, 'keys'), mode=0o700)
    for name, text in (('api.token', 'bench-' + os.urandom(8).hex()),
                       ('wxshop.key', KEY)):
        p = os.path.join(d, 'keys', name)
        with open(p, 'w') as fh:
            fh.write(text)
        os.chmod(p, 0o600)
    # Measured: about 2.5 KiB of map per applied row; twice that, at least
    # 256 MiB.
    map_mb = max(256, rows * 5 // 1024)
    conf = os.path.join(d, 'payhook.conf')
    with open(conf, 'w') as fh:
        fh.write('[core]\ndb_path = var/payhook.mdb\nmap_size_mb = %d\n'
                 'plugin_dir = %s\napi_token_file = keys/api.token\n'
                 'log_level = warn\n\n'
                 '[profile.wxshop]\nplugin = wechat\nappid = %s\n'
                 'mch_id = %s\napi_key_file = keys/wxshop.key\n'
                 'sign_type = MD5\n' % (map_mb, PLUGIN_DIR, APPID, MCH_ID))
    return conf


def status_kib(pid):
    """RssAnon and RssFile + RssShmem of pid in KiB, from /proc; None
    when it is gone."""
    try:
        with open('/proc/%d/status' % pid) as fh:
            f = dict(line.split(':', 1) for line in fh if ':' in line)
        kib = {k: int(f[k].split()[0]) for k in ('RssAnon', 'RssFile',
                                                 'RssShmem') if k in f}
        return kib.get('RssAnon', 0), kib.get('RssFile', 0) + \
            kib.get('RssShmem', 0)
    except (OSError, ValueError):
        return None


def run(argv):
    """Runs argv; (exit status, stdout, wall s, user s, sys s, peak RSS
    KiB, peak anonymous KiB, peak mapped-file KiB).  The peak RSS comes
    from wait4 (that process alone); anonymous memory (heap, stack) and
    mapped files (the LMDB map, the program) are sampled from
    /proc/<pid>/status every 20 ms."""
    out = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT)
    anon = mapped = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        kib = status_kib(p.pid)
        if kib is not None:
            anon, mapped = max(anon, kib[0]), max(mapped, kib[1])
        time.sleep(0.02)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode('utf-8', 'replace')
    return (p.returncode, text, wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss,
            anon, mapped)


def du(path):
    n = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                n += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return n


def mib(n):
    return '%.1f MiB' % (n / 1048576.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', type=int, default=1000000,
                    help='payments in the statement (default 1000000)')
    ap.add_argument('--dir', help='where the store, statement and reports '
                    'go (default: a new folder in /dev/shm, else TMPDIR)')
    ap.add_argument('--keep', action='store_true',
                    help='keep the folder (printed) afterwards')
    args = ap.parse_args()
    if args.rows < 1:
        ap.error('--rows must be positive')
    if not os.access(PAYHOOK, os.X_OK):
        sys.exit('bench/recon_million.py: %s is not built: run make' %
                 PAYHOOK)
    base = args.dir or ('/dev/shm' if os.access('/dev/shm', os.W_OK)
                        else None)
    d = tempfile.mkdtemp(prefix='payhook-recon-', dir=base)
    try:
        day = (datetime.datetime.now(datetime.timezone(
            datetime.timedelta(hours=8))) - datetime.timedelta(days=1)
               ).strftime('%Y-%m-%d')
        conf = write_conf(d, args.rows)
        bill = os.path.join(d, 'bill.txt')
        reports = os.path.join(d, 'reports')
        os.makedirs(reports)
        t0 = time.monotonic()
        size = write_bill(bill, args.rows, day)
        print('statement: %d rows, %s, written in %.1f s (%s)'
              % (args.rows, mib(size), time.monotonic() - t0, d))
        results = {}
        for name in ('cold', 'warm'):
            rc, text, wall, user, system, rss, anon, mapped = run(
                [PAYHOOK, '-c', conf, 'reconcile', '--profile', 'wxshop',
                 '--statement', bill, '--date', day, '--report-dir',
                 reports])
            if rc != 0:
                sys.stdout.write(text)
                sys.exit('bench/recon_million.py: reconcile (%s) exited '
                         'with %d' % (name, rc))
            counts = {}
            for line in text.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1].isdigit() and \
                        parts[1] != '0':
                    counts[parts[0]] = int(parts[1])
            results[name] = {'wall_s': round(wall, 2),
                             'user_s': round(user, 2),
                             'sys_s': round(system, 2),
                             'max_rss_kib': rss,
                             'max_anon_kib': anon,
                             'max_mapped_kib': mapped,
                             'rows_per_s': round(args.rows / wall),
                             'categories': counts}
            print('%-4s %7.1f s wall %6.1f s user %5.1f s sys  peak RSS '
                  '%6.1f MiB (anonymous %5.1f MiB, mapped store and '
                  'program %6.1f MiB)  %7d rows/s  %s'
                  % (name, wall, user, system, rss / 1024.0, anon / 1024.0,
                     mapped / 1024.0, args.rows / wall, json.dumps(counts)))
        rep = sum(os.path.getsize(os.path.join(reports, f))
                  for f in os.listdir(reports))
        print('reports: %s; store: %s' % (mib(rep),
                                           mib(du(os.path.join(d, 'var')))))
        print(json.dumps({'rows': args.rows, 'statement_bytes': size,
                          'dir': base or tempfile.gettempdir(),
                          'runs': results}, sort_keys=True))
    finally:
        if args.keep:
            print('kept %s' % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
