#!/usr/bin/env python3
"""CPU profile of payhook.fcgi per request, for scenarios B, C and D.

`perf stat -e instructions` does not work on this kind of machine (no
hardware counters in the guest), so the profile is taken with
valgrind --tool=callgrind: lighttpd on 127.0.0.1 runs one payhook.fcgi
under callgrind; a fixed request set is sent one at a time (N new WeChat
Pay v2 notifications, then the same N again, then N order reads), and the
counters are zeroed before and dumped after each set.  Prints, for each
set, the instructions per request and the inclusive share of the functions
that matter; the callgrind files stay in bench/callgrind/ for
callgrind_annotate --inclusive=yes.

    python3 bench/profile.py [-n 300]
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402
import run  # noqa: E402

# Functions whose inclusive cost is shown, in this order (those absent
# from a profile are left out).
FOCUS = [
    'main_serve', 'main_read_body', 'main_headers', 'main_write',
    'fc_handle', 'notify_handle', 'wx_parse_notify', 'ph_xml_parse_flat',
    'xmlCtxtReadMemory', 'wx_verify', 'ph_md5', 'ledger_apply',
    'ledger_digest', 'store_begin', 'store_get', 'ledger_get',
    'ledger_load', 'json_loadb', 'json_dumps', 'json_pack', 'ledger_put',
    'mdb_txn_begin', 'mdb_get', 'mdb_put', 'mdb_txn_commit',
    'mdb_env_sync', 'notify_answer', 'log_msg', 'api_get_order',
    'ledger_get_order', 'order_to_api', 'fc_json', 'fc_authorised',
    'ph_sha256', 'FCGX_Accept_r', 'FCGX_Finish_r', 'FCGX_GetStr',
    'FCGX_PutStr', 'notify_archive', 'archive_put', 'ledger_seen',
    'log_kv', 'ph_mem_contains_nocase', 'EVP_Digest', 'malloc', 'free',
]


def callgrind_control(pid, flag):
    r = subprocess.run(['callgrind_control', flag, str(pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError('callgrind_control %s: %s' % (flag, r.stdout))


def annotate(path):
    """{function: inclusive Ir}, and the total, from one dump."""
    r = subprocess.run(['callgrind_annotate', '--inclusive=yes',
                        '--threshold=100', path], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=300)
    text = r.stdout.decode('utf-8', 'replace')
    total = 0
    m = re.search(r'^\s*([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS', text, re.M)
    if m:
        total = int(m.group(1).replace(',', ''))
    incl = {}
    for line in text.splitlines():
        m = re.match(r'^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+\S*:(\S+?)(?:\s|$)',
                     line)
        if m:
            name = m.group(2).split("'")[0]
            incl.setdefault(name, int(m.group(1).replace(',', '')))
    return total, incl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-n', type=int, default=300,
                    help='requests in each set (300)')
    ap.add_argument('--out', default=os.path.join(run.BUILDDIR, 'bench',
                                                  'callgrind'))
    opts = ap.parse_args()
    if shutil.which('valgrind') is None:
        sys.exit('profile: valgrind is not installed (apt-get install '
                 'valgrind)')
    os.makedirs(opts.out, exist_ok=True)
    for old in glob.glob(os.path.join(opts.out, 'callgrind.*')):
        os.unlink(old)
    b = run.Bench(argparse.Namespace(procs=1, skip=['all'], map_mb=256, archive_mb=1024,
                                     seconds=1))
    b.providers = []
    wrapper = os.path.join(b.dir, 'payhook-callgrind')
    with open(wrapper, 'w') as fh:
        fh.write('#!/bin/sh\nexec valgrind --tool=callgrind '
                 '--callgrind-out-file=%s/callgrind.%%p '
                 '--dump-instr=no --collect-atstart=yes %s\n'
                 % (opts.out, run.PAYHOOK_FCGI))
    os.chmod(wrapper, 0o755)
    try:
        b.configure()
        b.ph = run.Lighttpd(b.dir, 'payhook', wrapper, 1, {
            'PAYHOOK_CONFIG': os.path.join(b.etc, 'payhook.conf')}).start()
        pids = [p for p in run.proc_children(b.ph.proc.pid)]
        if len(pids) != 1:
            raise RuntimeError('expected one payhook.fcgi, got %r' % pids)
        pid = pids[0]
        wx = b.providers[0]
        ids = b.order_ids('prof', opts.n)
        auth = {'Authorization': 'Bearer ' + b.token}
        for i in ids:
            st, _ = run.http(b.ph.port, 'POST', '/orders', json.dumps(
                {'order_id': i, 'amount': wx.amount, 'currency': 'CNY',
                 'profile': 'wxshop'}), dict(auth, **{
                     'Content-Type': 'application/json'}))
            if st != 201:
                raise RuntimeError('create order: %s' % st)
        notes = [wx.notification(i) for i in ids]
        sets = [('B', notes), ('C', notes),
                ('D', [('GET', '/orders/' + i, auth, b'') for i in ids])]
        results = {}
        for name, reqs in sets:
            callgrind_control(pid, '-z')
            t0 = time.time()
            for method, path, headers, body in reqs:
                st, answer = run.http(b.ph.port, method, path, body or None,
                                      headers)
                if st != 200 or (name != 'D' and answer != gen.WX_SUCCESS_ACK):
                    raise RuntimeError('%s: %s %r' % (name, st, answer[:200]))
            callgrind_control(pid, '-d')
            time.sleep(0.5)
            dumps = sorted(glob.glob(os.path.join(opts.out,
                                                  'callgrind.%d.*' % pid)),
                           key=os.path.getmtime)
            dst = os.path.join(opts.out, 'callgrind.%s' % name)
            os.rename(dumps[-1], dst)
            total, incl = annotate(dst)
            results[name] = (total, incl)
            sys.stderr.write('profile: %s: %d requests in %.1f s under '
                             'callgrind\n' % (name, len(reqs),
                                              time.time() - t0))
    finally:
        b.cleanup()
        for left in glob.glob(os.path.join(opts.out, 'callgrind.[0-9]*')):
            os.unlink(left)
    n = opts.n
    print('instructions per request (callgrind, inclusive), %d requests '
          'a set' % n)
    print('%-22s %12s %12s %12s' % ('function', 'B new', 'C duplicate',
                                    'D GET order'))
    print('%-22s %12d %12d %12d' % (
        'ALL (whole process)', *(results[s][0] // n for s in 'BCD')))
    for f in FOCUS:
        vals = [results[s][1].get(f) for s in 'BCD']
        if not any(vals):
            continue
        print('%-22s %12s %12s %12s' % (f, *(
            '%d' % (v // n) if v else '-' for v in vals)))
    print('\ntargets (instructions per request, whole process):')
    for s, what, most in (('B', 'new notification', 250000),
                          ('C', 'duplicate', 100000),
                          ('D', 'GET /orders/<id>', 80000)):
        got = results[s][0] // n
        print('  %-30s %9d  (<= %d)  %s' % (
            what, got, most, 'met' if got <= most else 'not met'))
    print('\nfiles: %s/callgrind.{B,C,D}' % os.path.relpath(opts.out))


if __name__ == '__main__':
    main()
