#!/usr/bin/env python3
"""Scenario B of two payhook.fcgi builds side by side, against F.

The disk's speed changes from one second to the next, so two whole runs
of bench/run.py minutes apart compare two different disks.  Here two
lighttpd servers run at once, one in front of this build's payhook.fcgi
and one in front of OTHER (e.g. built with -DSTORE_SHARED_SYNC=0), each
with its own store in the same folder, and the rounds alternate:
F, B(this), B(other), F, ... at 1, 8 and 32 connections.  Each B is
compared with the mean of the F before and after its pair.

    python3 bench/compare.py OTHER [--label-other TEXT] [--label TEXT]
"""

import argparse
import datetime
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('other', help='the other payhook.fcgi')
    ap.add_argument('--label', default=None)
    ap.add_argument('--label-other', default='other')
    ap.add_argument('--procs', type=int, default=4)
    ap.add_argument('--seconds', type=int, default=2)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--levels', default='1,8,32')
    ap.add_argument('--out', default=os.path.join(run.BUILDDIR, 'bench',
                                                  'results'))
    opts = ap.parse_args()
    levels = [int(x) for x in opts.levels.split(',')]

    def ns(fcgi):
        return argparse.Namespace(
            procs=opts.procs, skip=['all'], map_mb=2048, archive_mb=8192,
            seconds=opts.seconds, fcgi=fcgi, dup_orders=0,
            first_estimate=800, disk_rounds=opts.rounds)
    labels = [opts.label or run.store_sync_mode(), opts.label_other]
    benches = [run.Bench(ns(run.PAYHOOK_FCGI)), run.Bench(ns(opts.other))]
    started = datetime.datetime.now(datetime.timezone.utc)
    rounds = []
    try:
        machine = run.machine(benches[0].dir)
        machine['loadavg_before'] = os.getloadavg()
        for b in benches:
            b.configure()
            b.ph = run.Lighttpd(b.dir, 'payhook', b.o.fcgi, opts.procs, {
                'PAYHOOK_CONFIG': os.path.join(b.etc,
                                               'payhook.conf')}).start()
        fdb = os.path.join(benches[0].dir, 'floor.mdb')
        for conns in levels:
            pools = [b.new_pools(conns) for b in benches]
            fprocs = min(conns, opts.procs)
            f = [run.commit_floor(fdb, fprocs, opts.seconds)]
            for k in range(opts.rounds):
                got = []
                for b, pool, label in zip(benches, pools, labels):
                    prov = b.providers[0]
                    res = b.run_wrk(b.ph, pool[prov.name][k], conns, 'once',
                                    prov.ok_status, prov.ok_body)
                    b.record('B', conns, res)
                    got.append(res)
                f.append(run.commit_floor(fdb, fprocs, opts.seconds))
                fmean = (f[-2]['rate'] + f[-1]['rate']) / 2
                rounds.append({'conns': conns, 'round': k, 'F': fmean,
                               'B': [g['rate'] for g in got],
                               'p99_us': [g['p99_us'] for g in got],
                               'errors': [g['errors'] for g in got]})
                run.log('c=%-2d F %7.0f/s  B %s %7.0f/s (%.2f F)  B %s '
                        '%7.0f/s (%.2f F)' % (
                            conns, fmean, labels[0][:6], got[0]['rate'],
                            got[0]['rate'] / fmean, labels[1][:6],
                            got[1]['rate'], got[1]['rate'] / fmean))
    finally:
        for b in benches:
            b.cleanup()
    lines = ['B/F, median over %d rounds of %d s (F: mean of the commit '
             'floor before and after each pair of B rounds)' % (
                 opts.rounds, opts.seconds),
             '%5s %10s %16s %16s %8s %8s' % (
                 'conns', 'F req/s', 'B ' + labels[0][:14],
                 'B ' + labels[1][:14], 'B/F', 'B/F')]
    out = {}
    for conns in levels:
        rs = [r for r in rounds if r['conns'] == conns]
        med = [statistics.median(r['B'][i] for r in rs) for i in (0, 1)]
        ratio = [statistics.median(r['B'][i] / r['F'] for r in rs)
                 for i in (0, 1)]
        fmed = statistics.median(r['F'] for r in rs)
        out[conns] = {'F': fmed, 'B': med, 'B/F': ratio,
                      'errors': [sum(r['errors'][i] for r in rs)
                                 for i in (0, 1)]}
        lines.append('%5d %10.0f %16.0f %16.0f %8.2f %8.2f' % (
            conns, fmed, med[0], med[1], ratio[0], ratio[1]))
    lines.append('columns: %s | %s' % tuple(labels))
    text = '\n'.join(lines)
    print(text)
    os.makedirs(opts.out, exist_ok=True)
    path = os.path.join(opts.out, 'compare-%s.json' %
                        started.strftime('%Y%m%dT%H%M%SZ'))
    with open(path, 'w') as fh:
        json.dump({'date': started.strftime('%Y-%m-%dT%H:%M:%SZ'),
                   'machine': machine, 'labels': labels,
                   'settings': {k: run.tree_path(v) if k in ('out', 'other')
                                and isinstance(v, str) else v
                                for k, v in vars(opts).items()},
                   'rounds': rounds,
                   'summary': {str(k): v for k, v in out.items()},
                   'table': text}, fh, indent=1)
        fh.write('\n')
    print('written: %s' % os.path.relpath(path))


if __name__ == '__main__':
    main()
