"""End to end: `payhook reconcile --download`, the statement payhook fetches
itself from the provider (the simulator), WeChat Pay v2 (downloadbill)
and v3 (tradebill, then the file it names).

For each profile: orders paid yesterday (Beijing time) in the simulator,
most notified, some whose every notification is lost; `reconcile
--download --date` fetches the day's trade bill, reads it as a statement
WeChat vouches for (TLS to its API for v2, the SHA1 of a signed answer for
v3), makes the lost ones PAID from it (their order.paid naming the
downloaded statement as source) and exits 0.  A day without a bill is no
error: reconcile says there is no statement and exits 0.

payhook builds without the download (no --download option) skip this test.
"""

import datetime
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import PAYHOOK, wait_for, PROFILES, SimInstance, Simulator  # noqa: E402

try:
    from test_sim_providers import (V3_APPID, V3_KEY, V3_MCHID,  # noqa: E402
                                    V3_MERCHANT_SERIAL, V3_SERIAL_INT,
                                    priv_pem, pub_pem, rsa_key, self_signed,
                                    x509)
except ImportError:
    x509 = None

BJ = datetime.timezone(datetime.timedelta(hours=8))
N_PAID, N_LOST = 4, 2


def cli(inst, *args, timeout=300):
    p = subprocess.run([PAYHOOK, '-c', inst.config] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))



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


def test_profile(tap, inst, sim, prof, workdir):
    yesterday = datetime.datetime.now(BJ) - datetime.timedelta(days=1)
    day = yesterday.strftime('%Y-%m-%d')
    tag = os.urandom(3).hex()
    oids = ['D%s-%02d' % (tag, i) for i in range(N_PAID)]
    lost = oids[:N_LOST]
    for i, oid in enumerate(oids):
        r = inst.create_order(oid, 100 + i, profile=prof)
        tap.is_(r.status, 201, '%s: order %s created' % (prof, oid))
        when = yesterday.replace(hour=10, minute=i, second=0)
        r = sim.control('/_sim/pay', {
            'profile': prof, 'order_id': oid, 'amount': 100 + i,
            'time_end': when.strftime('%Y%m%d%H%M%S'),
            'notify': {'drop_all': True} if oid in lost else
            {'mode': 'normal'}})
        tap.is_(r.status, 200, '%s: %s paid in the simulator' % (prof, oid))
    tap.ok(wait_for(lambda: all((inst.order(o) or {}).get('state') == 'PAID'
                                for o in oids[N_LOST:]), timeout=60),
           '%s: the notified orders are PAID' % prof)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PENDING'
               for o in lost), '%s: the lost ones are not' % prof)

    base = len(inst.all_events(0))
    reports = os.path.join(workdir, prof)
    os.makedirs(reports)
    rc, out, err = cli(inst, 'reconcile', '--profile', prof, '--download',
                       '--date', day, '--report-dir', reports)
    tap.is_(rc, 0, '%s: reconcile --download of %s' % (prof, day),
            out + err)
    tap.ok('statement lines' in out, '%s: it read the statement\'s lines'
           % prof, out)
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

    empty = (datetime.datetime.now(BJ) - datetime.timedelta(days=20)
             ).strftime('%Y-%m-%d')
    rc, out, err = cli(inst, 'reconcile', '--profile', prof, '--download',
                       '--date', empty, '--report-dir', reports)
    tap.ok(rc == 0 and 'no statement' in out.lower(),
           '%s: a day without a bill: "no statement", exit 0' % prof,
           out + err)


def main(tap):
    if x509 is None:
        tap.skip_all('python3 cryptography not installed '
                     '(Debian package python3-cryptography)')
    p = subprocess.run([PAYHOOK, 'reconcile', '--download'],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if b"unrecognized option '--download'" in p.stderr:
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
    inst.stop()
    tap.is_(sim.stop(), 0, 'the simulator stops cleanly')


if __name__ == '__main__':
    harness.run(main)
