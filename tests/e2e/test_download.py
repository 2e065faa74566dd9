"""End to end: `payhook reconcile --download`, the statement payhook fetches
itself from the provider (the simulator), WeChat Pay v2 (downloadbill)
and v3 (tradebill, then the file it names).

For each profile: orders paid yesterday (Beijing time) in the simulator,
most notified, some whose every notification is lost; `reconcile
--download --date` fetches the day's trade bill, reads it as a statement
WeChat vouches for (TLS to its API for v2, the SHA1 of a signed answer for
v3), makes the lost ones PAID from it (their order.paid naming the
downloaded statement as source) and exits 0; the statement it read is
kept beside the reports, statement-PROFILE-DATE.txt, mode 0600, the
bytes the provider sent.  A day without a bill is no error: reconcile
says there is no statement and exits 0.  A v3 file that is not the one
whose SHA1 the signed tradebill answer gives (the simulator serves it
changed) is refused: exit 1, nothing reconciled, nothing kept.

payhook builds without the download (no --download option) skip this test.
"""

import datetime
import os
import stat
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_for, PROFILES, SimInstance, Simulator  # noqa: E402

try:
    from test_sim_providers import (V3_APPID, V3_KEY, V3_MCHID,  # noqa: E402
                                    V3_MERCHANT_SERIAL, V3_SERIAL_INT,
                                    priv_pem, pub_pem, rsa_key, self_signed,
                                    x509)
except ImportError:
    x509 = None

BJ = datetime.timezone(datetime.timedelta(hours=8))
N_PAID, N_LOST = 4, 2


def reconcile_download(inst, prof, day, reports):
    return inst.cli('reconcile', '--profile', prof, '--download', '--date',
                    day, '--report-dir', reports, timeout=300)



def v3_profile():
    """The WeChat Pay v3 profile of test_sim_providers, keys made here."""
    platform, merchant = rsa_key(), rsa_key()
    return {
        'plugin': 'wechat',
        'settings': {
            'api_version': '3', 'appid': V3_APPID, 'mch_id': V3_MCHID,
            'apiv3_key_file': 'keys/wxv3dl.apiv3',
            'platform_cert_files': 'wechatpay/platform.pem',
            'merchant_private_key_file': 'keys/wxv3dl-merchant.key',
            'merchant_serial': V3_MERCHANT_SERIAL,
        },
        'files': {
            'keys/wxv3dl.apiv3': (V3_KEY.encode(), 0o600),
            'keys/wxv3dl-merchant.key': (priv_pem(merchant), 0o600),
            'wechatpay/platform.pem': (self_signed(
                platform, V3_SERIAL_INT, 'Tenpay.com Root CA (test)'),
                0o644),
        },
        'sim': {'provider': 'wechat_v3', 'appid': V3_APPID,
                'mch_id': V3_MCHID, 'apiv3_key': V3_KEY,
                'platform_key': priv_pem(platform).decode(),
                'platform_serial': '%X' % V3_SERIAL_INT,
                'merchant_public_key': pub_pem(merchant).decode(),
                'merchant_serial': V3_MERCHANT_SERIAL},
    }


def pay_day(tap, inst, sim, prof, days_ago):
    """N_PAID orders paid in the simulator on a past day (Beijing), the
    first N_LOST of them never notified: (the day, the orders, the lost
    ones), the notified ones PAID in payhook, the lost ones PENDING."""
    when = datetime.datetime.now(BJ) - datetime.timedelta(days=days_ago)
    tag = os.urandom(3).hex()
    oids = ['D%s-%02d' % (tag, i) for i in range(N_PAID)]
    lost = oids[:N_LOST]
    for i, oid in enumerate(oids):
        r = inst.create_order(oid, 100 + i, profile=prof)
        tap.is_(r.status, 201, '%s: order %s created' % (prof, oid))
        r = sim.control('/_sim/pay', {
            'profile': prof, 'order_id': oid, 'amount': 100 + i,
            'time_end': when.replace(hour=10, minute=i, second=0)
            .strftime('%Y%m%d%H%M%S'),
            'notify': {'drop_all': True} if oid in lost else
            {'mode': 'normal'}})
        tap.is_(r.status, 200, '%s: %s paid in the simulator' % (prof, oid))
    tap.ok(wait_for(lambda: all((inst.order(o) or {}).get('state') == 'PAID'
                                for o in oids[N_LOST:]), timeout=60),
           '%s: the notified orders are PAID' % prof)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PENDING'
               for o in lost), '%s: the lost ones are not' % prof)
    return when.strftime('%Y-%m-%d'), oids, lost


def check_kept(tap, sim, prof, day, reports, out):
    """The statement reconciled is kept beside the reports: named as
    reconcile says, a regular file of mode 0600, the provider's bytes."""
    kept = os.path.join(reports, 'statement-%s-%s.txt' % (prof, day))
    tap.ok('downloaded: %s\n' % kept in out,
           '%s: reconcile names the statement it keeps' % prof, out)
    try:
        st = os.lstat(kept)
        with open(kept, 'rb') as fh:
            data = fh.read()
    except OSError as exc:
        tap.ok(False, '%s: %s is there' % (prof, kept), repr(exc))
        return
    tap.ok(stat.S_ISREG(st.st_mode), '%s: the statement kept is a regular '
           'file' % prof, oct(st.st_mode))
    tap.is_(oct(stat.S_IMODE(st.st_mode)), oct(0o600),
            '%s: the statement kept is mode 0600' % prof)
    r = sim.request('GET', '/_sim/statement?profile=%s&date=%s'
                    % (prof, day))
    tap.ok(r.status == 200 and data == r.body and
           data.startswith('交易时间,'.encode('utf-8')),
           '%s: the statement kept is the bill the provider sent (%d '
           'bytes)' % (prof, len(data)), r.describe(), data[:300])


def test_profile(tap, inst, sim, prof, workdir):
    day, _, lost = pay_day(tap, inst, sim, prof, 1)
    base = len(inst.all_events(0))
    reports = os.path.join(workdir, prof)
    os.makedirs(reports)
    r = reconcile_download(inst, prof, day, reports)
    tap.is_(r.returncode, 0, '%s: reconcile --download of %s' % (prof, day),
            r.stdout + r.stderr)
    tap.ok('statement lines' in r.stdout, '%s: it read the statement\'s '
           'lines' % prof, r.stdout)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PAID' for o in lost),
           '%s: the orders whose notifications were lost are PAID' % prof)
    paid = [e for e in inst.all_events(0)[base:]
            if e['type'] == 'order.paid' and e['order_id'] in lost]
    # The source's name is the core's: a statement, not the file an
    # operator vouches for (statement_file), nor a query.
    tap.ok(sorted(e['order_id'] for e in paid) == sorted(lost) and
           all((e.get('source') or '').startswith('statement') and
               e.get('source') != 'statement_file' for e in paid),
           '%s: one order.paid each, its source the downloaded statement'
           % prof, repr([(e['order_id'], e.get('source')) for e in paid]))
    check_kept(tap, sim, prof, day, reports, r.stdout)

    empty = (datetime.datetime.now(BJ) - datetime.timedelta(days=20)
             ).strftime('%Y-%m-%d')
    r = reconcile_download(inst, prof, empty, reports)
    tap.ok(r.returncode == 0 and 'no statement' in r.stdout.lower(),
           '%s: a day without a bill: "no statement", exit 0' % prof,
           r.stdout + r.stderr)


def test_tampered_file(tap, inst, sim, prof, workdir):
    """WeChat Pay v3: the file is not the one the signed answer's
    hash_value names.  Refused, exit 1, after the file was fetched;
    nothing reconciled, nothing kept.  The same day with the file as
    signed reconciles: the digest alone made the difference."""
    day, _, lost = pay_day(tap, inst, sim, prof, 2)
    reports = os.path.join(workdir, prof + '-tampered')
    os.makedirs(reports)
    sim.control('/_sim/bill_mode', {'file': 'tampered'})
    base = inst.last_seq()
    files = sim.stats()['bills']['files']
    r = reconcile_download(inst, prof, day, reports)
    sim.control('/_sim/bill_mode', {'file': 'ok'})
    tap.is_(r.returncode, 1, 'tampered file: exit 1', r.stdout + r.stderr)
    tap.like(r.stderr, r"the file's SHA1 [0-9a-f]{40} is not [0-9a-fA-F]{40}"
             r", the hash_value of the signed tradebill answer: refused",
             'tampered file: says its SHA1 is not the signed hash_value',
             r.stderr)
    tap.is_(sim.stats()['bills']['files'] - files, 1,
            'tampered file: refused once fetched, by its digest')
    tap.ok('statement lines' not in r.stdout and 'downloaded:'
           not in r.stdout, 'tampered file: nothing reconciled', r.stdout)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PENDING'
               for o in lost), 'tampered file: the orders it lists as paid '
           'stay PENDING')
    tap.is_([e.get('type') for e in inst.all_events(base)], [],
            'tampered file: no event')
    tap.is_(sorted(os.listdir(reports)), [], 'tampered file: no statement '
            'kept, no report written')

    r = reconcile_download(inst, prof, day, reports)
    tap.is_(r.returncode, 0, 'the same day, the file as signed: exit 0',
            r.stdout + r.stderr)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PAID' for o in lost),
           'the same day, the file as signed: the lost orders are PAID')


def main(tap):
    if x509 is None:
        tap.skip_all('python3 cryptography not installed '
                     '(Debian package python3-cryptography)')
    if "unrecognized option '--download'" in harness.run_cli(
            ['reconcile', '--download']).stderr:
        tap.skip_all('this payhook has no reconcile --download')
    cfg = dict(PROFILES)
    cfg['wxv3dl'] = v3_profile()
    sim = Simulator(tap, profiles=cfg, time_factor=1000,
                    name='sim-dl').start()
    inst = SimInstance(tap, 'download', sim_port=sim.port, profiles=cfg)
    inst.start()
    sim.point_at(inst)
    workdir = os.path.join(inst.dir, 'download')
    os.makedirs(workdir)
    test_profile(tap, inst, sim, 'wxshop', workdir)
    test_profile(tap, inst, sim, 'wxv3dl', workdir)
    test_tampered_file(tap, inst, sim, 'wxv3dl', workdir)
    inst.stop()
    tap.is_(sim.stop(), 0, 'the simulator stops cleanly')


if __name__ == '__main__':
    harness.run(main)
