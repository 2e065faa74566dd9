"""The provider simulator (tests/sim/provsim.py) playing UnionPay, WeChat
Pay API v3 and a Ping++-style aggregator (RSA and HMAC profiles) against
payhook under lighttpd, and its query and close APIs checked against the
providers' rules computed here (hashlib, hmac, python3-cryptography).

Keys are made here at test time: UnionPay's root, intermediate and
signing certificate with the `openssl` command (harness.unionpay_test_pki),
the rest with the cryptography package.

For each profile: a payment taken in the simulator is notified and makes
the order PAID; lost sends advance the schedule; a payment whose every
notification is lost is recovered by `payhook sweep` through the
provider's query API; duplicated sends, and a notification that arrives
after the sweeper applied its payment, are acknowledged without change;
an expired order the provider says is unpaid is closed (UnionPay and the
aggregator).  Then each schedule's number of sends and span (drop_all),
a profile's own retry_gaps, and the APIs answered from the ledger:
signed answers for paid, unpaid and unknown orders, WeChat Pay v3 close
and its trade bill (tradebill and the file it names), and requests with a
bad signature or key refused.
"""

import base64
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PAYHOOK, SimInstance, Simulator,  # noqa: E402
                     priv_pem, pub_pem, rsa_key, wait_for)
from harness import read_bytes as read  # noqa: E402
from harness import self_signed_pem as self_signed  # noqa: E402

harness.need_cryptography()
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

SCHEDULE = '1s,1s,2s'
BEIJING = datetime.timezone(datetime.timedelta(hours=8))
MER_ID = '777290058110097'
V3_APPID, V3_MCHID = 'wxd678efh567hg6787', '1230000109'
V3_KEY = 'SimV3ApiKey0123456789abcdefGHIJK'
V3_SERIAL_INT = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
V3_MERCHANT_SERIAL = '3775B6A45ACD588826D15E583A95F5DD2C3A0F4D'
APP = 'app_SimAgg0000000001'
APIKEY = 'sk_test_provsim0123456789abcdef'
SECRET = 'whsec_provsim_0123456789abcdefABC'
ALL = ('upsim', 'wxv3sim', 'aggrsa', 'agghmac')
SENDS = {'upsim': 5, 'wxv3sim': 16, 'aggrsa': 8, 'agghmac': 8}
GAPS = {'upsim': 60 + 120 + 240 + 300,
        'wxv3sim': 15 + 15 + 30 + 180 + 600 + 1200 + 3 * 1800 + 3600 +
        3 * 10800 + 2 * 21600,
        'aggrsa': 120 + 600 + 600 + 3600 + 7200 + 21600 + 54000}
GAPS['agghmac'] = GAPS['aggrsa']
assert len(V3_KEY) == 32


# ---- keys -----------------------------------------------------------------

class Keys:
    def __init__(self, work):
        # UnionPay: its PKI (openssl), the merchant's certificate.
        self.up = harness.unionpay_test_pki(work)
        self.up_signer = serialization.load_pem_private_key(
            read(self.up['leaf.key']), None)
        self.up_cert = x509.load_pem_x509_certificate(
            read(self.up['leaf.pem']))
        self.mer = rsa_key()
        self.mer_pem = self_signed(self.mer, 68759529225,
                                   '041@Z12@Test Merchant@00000004')
        self.mer_key_path = os.path.join(work, 'mer.key')
        self.mer_cert_path = os.path.join(work, 'mer.pem')
        harness.write_file(self.mer_key_path, priv_pem(self.mer))
        harness.write_file(self.mer_cert_path, self.mer_pem)
        # WeChat Pay v3: the platform key and certificate, the merchant.
        self.platform = rsa_key()
        self.platform_cert = self_signed(self.platform, V3_SERIAL_INT,
                                         'Tenpay.com Root CA (test)')
        self.platform_serial = '%X' % V3_SERIAL_INT
        self.v3_merchant = rsa_key()
        # The aggregator's webhook key.
        self.webhook = rsa_key()
        self.other = rsa_key()


def profiles(k):
    return {
        'upsim': {
            'plugin': 'unionpay',
            'settings': {
                'mer_id': MER_ID,
                'root_cert_file': 'unionpay/root.pem',
                'middle_cert_file': 'unionpay/middle.pem',
                'sign_key_file': 'keys/upsim-sign.key',
                'sign_cert_file': 'unionpay/upsim-sign.pem',
                'verify_cert_files': 'unionpay/verify.pem',
            },
            'files': {
                'unionpay/root.pem': (read(k.up['root.pem']), 0o644),
                'unionpay/middle.pem': (read(k.up['middle.pem']), 0o644),
                'unionpay/upsim-sign.pem': (k.mer_pem, 0o644),
                'unionpay/verify.pem': (read(k.up['leaf.pem']), 0o644),
                'keys/upsim-sign.key': (priv_pem(k.mer), 0o600),
            },
            # Key material as file paths.
            'sim': {'provider': 'unionpay', 'mer_id': MER_ID,
                    'sign_key': k.up['leaf.key'],
                    'sign_cert': k.up['leaf.pem'],
                    'merchant_cert': k.mer_cert_path},
        },
        'wxv3sim': {
            'plugin': 'wechat',
            'settings': {
                'api_version': '3', 'appid': V3_APPID, 'mch_id': V3_MCHID,
                'apiv3_key_file': 'keys/wxv3sim.apiv3',
                'platform_cert_files': 'wechatpay/platform.pem',
                'merchant_private_key_file': 'keys/wxv3sim-merchant.key',
                'merchant_serial': V3_MERCHANT_SERIAL,
            },
            'files': {
                'keys/wxv3sim.apiv3': (V3_KEY.encode(), 0o600),
                'keys/wxv3sim-merchant.key': (priv_pem(k.v3_merchant),
                                              0o600),
                'wechatpay/platform.pem': (k.platform_cert, 0o644),
            },
            # Key material as PEM text.
            'sim': {'provider': 'wechat_v3', 'appid': V3_APPID,
                    'mch_id': V3_MCHID, 'apiv3_key': V3_KEY,
                    'platform_key': priv_pem(k.platform).decode(),
                    'platform_serial': k.platform_serial,
                    'merchant_public_key': pub_pem(k.v3_merchant).decode(),
                    'merchant_serial': V3_MERCHANT_SERIAL},
        },
        'aggrsa': {
            'plugin': 'aggregator',
            'settings': {
                'signature': 'rsa', 'app_id': APP,
                'webhook_public_key_file': 'agg/webhook.pem',
                'api_key_file': 'keys/aggrsa.apikey',
            },
            'files': {
                'agg/webhook.pem': (pub_pem(k.webhook), 0o644),
                'keys/aggrsa.apikey': (APIKEY.encode() + b'\n', 0o600),
            },
            'sim': {'provider': 'aggregator', 'app_id': APP,
                    'signature': 'rsa', 'api_key': APIKEY,
                    'webhook_private_key': priv_pem(k.webhook).decode(),
                    'channel': 'upacp', 'sign_answers': True},
        },
        'agghmac': {
            'plugin': 'aggregator',
            'settings': {
                'signature': 'hmac', 'app_id': APP + 'h',
                'webhook_secret_file': 'keys/agghmac.whsec',
                'signature_header': 'Stripe-Signature',
                'api_key_file': 'keys/agghmac.apikey',
            },
            'files': {
                'keys/agghmac.whsec': (SECRET.encode(), 0o600),
                'keys/agghmac.apikey': (APIKEY.encode() + b'h', 0o600),
            },
            'sim': {'provider': 'aggregator', 'app_id': APP + 'h',
                    'signature': 'hmac', 'webhook_secret': SECRET,
                    'signature_header': 'Stripe-Signature',
                    'api_key': APIKEY + 'h'},
        },
    }


# ---- helpers ----------------------------------------------------------------

def beijing_now():
    return datetime.datetime.now(BEIJING).strftime('%Y%m%d%H%M%S')


def new_oid(tag):
    # Letters and digits only: a valid orderId for every provider.
    return tag + os.urandom(5).hex().upper()


def sweep(inst):
    p = subprocess.run([PAYHOOK, '-c', inst.config, 'sweep'],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stderr.decode('utf-8', 'replace')


def sweep_until(inst, oid, state, limit_s=30):
    start = time.time()
    while time.time() - start < limit_s:
        sweep(inst)
        if (inst.order(oid) or {}).get('state') == state:
            return time.time() - start
        time.sleep(0.3)
    return None


def state_of(inst, oid):
    return (inst.order(oid) or {}).get('state')


def events_for(inst, oid, base):
    return [e.get('type') for e in inst.all_events(base)
            if e.get('order_id') == oid]


def sends(sim, oid):
    return sim.deliveries(oid) or []


def new_order(inst, prof, oid, amount, **more):
    """An order at payhook; UnionPay orders carry the attempt's txnTime
    (UnionPay's order key), returned for the simulator's time_end."""
    txn_time = beijing_now()
    if prof == 'upsim':
        more['attempt'] = {'txnTime': txn_time}
    r = inst.create_order(oid, amount, profile=prof, **more)
    return r, txn_time


def sim_pay(sim, prof, oid, amount, txn_time, notify=None):
    body = {'profile': prof, 'order_id': oid, 'amount': amount,
            'time_end': txn_time}
    if notify:
        body['notify'] = notify
    r = sim.control('/_sim/pay', body)
    return r, (r.json or {}).get('txn_id')


# ---- payhook and the simulator, per profile -------------------------------

def test_profile(tap, sim, inst, prof):
    t = prof + ': '

    # A payment, notified once and acknowledged.
    oid = new_oid('N')
    r, tt = new_order(inst, prof, oid, 1000)
    tap.is_(r.status, 201, t + 'order created', r.describe())
    base = inst.last_seq()
    r, txn = sim_pay(sim, prof, oid, 1000, tt)
    tap.is_(r.status, 200, t + '/_sim/pay', r.describe())
    tap.is_(wait_for(lambda: state_of(inst, oid) == 'PAID'), True,
            t + 'the notification makes the order PAID')
    tap.is_((inst.order(oid) or {}).get('provider_txn_id'), txn,
            t + "payhook recorded the simulator's transaction id")
    tap.ok(wait_for(lambda: any(d['acked'] for d in sends(sim, oid))),
           t + 'the simulator recognised the acknowledgement')
    time.sleep(0.3)
    ds = sends(sim, oid)
    tap.is_([(d['attempt'], d['dropped'], d['acked']) for d in ds],
            [(1, False, True)], t + 'one send, then the schedule stopped',
            json.dumps(ds)[:1500])
    tap.is_(events_for(inst, oid, base), ['order.paid'],
            t + 'one order.paid event')

    # Lost sends advance the schedule; the next one is acknowledged.
    oid = new_oid('L')
    r, tt = new_order(inst, prof, oid, 1100)
    sim_pay(sim, prof, oid, 1100, tt, {'drop_first': 1})
    tap.is_(wait_for(lambda: state_of(inst, oid) == 'PAID'), True,
            t + 'drop_first 1: the second send makes the order PAID')
    # The simulator records a send once payhook's answer is in: after
    # the order is PAID, not before.
    wait_for(lambda: any(d['acked'] for d in sends(sim, oid)))
    tap.is_([(d['attempt'], d['dropped'], d['acked'])
             for d in sends(sim, oid)], [(1, True, False), (2, False, True)],
            t + 'drop_first 1: send 1 lost, send 2 acknowledged')

    # Every send lost: the sweeper asks the provider.
    oid = new_oid('D')
    r, tt = new_order(inst, prof, oid, 1200)
    base = inst.last_seq()
    r, txn = sim_pay(sim, prof, oid, 1200, tt, {'drop_all': True})
    took = sweep_until(inst, oid, 'PAID')
    tap.ok(took is not None, t + 'drop_all: payhook sweep makes the order '
           'PAID through the query API')
    tap.diag(t + 'recovered by the sweeper in %.1fs (query_schedule %s)'
             % (took or -1, SCHEDULE))
    tap.is_((inst.order(oid) or {}).get('provider_txn_id'), txn,
            t + 'drop_all: with the transaction the query reported')
    tap.ok(((sim.stats().get('by_order') or {}).get(oid) or {})
           .get('query', 0) >= 1, t + 'drop_all: the simulator was queried')
    tap.ok(all(d['dropped'] for d in sends(sim, oid)),
           t + 'drop_all: no notification reached payhook')
    sweep(inst)
    tap.is_(events_for(inst, oid, base), ['order.paid'],
            t + 'drop_all: one order.paid, another pass adds nothing')

    # Three copies of the send at once.
    oid = new_oid('C')
    r, tt = new_order(inst, prof, oid, 1300)
    base = inst.last_seq()
    sim_pay(sim, prof, oid, 1300, tt, {'duplicate': 2})
    tap.ok(wait_for(lambda: len([d for d in sends(sim, oid)
                                 if d['acked']]) == 3),
           t + 'duplicate 2: all three copies acknowledged',
           json.dumps(sends(sim, oid))[:1500])
    time.sleep(0.2)
    tap.is_(sorted((d['attempt'], d['copy']) for d in sends(sim, oid)),
            [(1, 0), (1, 1), (1, 2)], t + 'duplicate 2: no second send')
    tap.is_(events_for(inst, oid, base), ['order.paid'],
            t + 'duplicate 2: the order paid once')

    # The notification arrives after the sweeper applied the payment.
    oid = new_oid('T')
    r, tt = new_order(inst, prof, oid, 1400)
    base = inst.last_seq()
    sim.control('/_sim/mode', {'notify': 'pause'})
    try:
        r, txn = sim_pay(sim, prof, oid, 1400, tt)
        tap.ok(sweep_until(inst, oid, 'PAID') is not None,
               t + 'paused notifications: the sweeper pays the order')
    finally:
        sim.control('/_sim/mode', {'notify': 'ok'})
    tap.ok(wait_for(lambda: any(d['acked'] for d in sends(sim, oid))),
           t + 'the late notification is acknowledged',
           json.dumps(sends(sim, oid))[:1500])
    tap.is_(events_for(inst, oid, base), ['order.paid'],
            t + 'the late notification changes nothing')


def test_unionpay_variant(tap, sim, inst, cfg):
    """upsim as a 5.0.0 GBK merchant whose query answers are
    percent-encoded forms: notified, and recovered by the sweeper."""
    url = 'http://%s:%d%s' % (harness.HOST, inst.server.port,
                              inst.path('/notify/upsim'))
    r = sim.control('/_sim/profile', dict(
        cfg['upsim']['sim'], name='upsim', notify_url=url, version='5.0.0',
        encoding='GBK', reply_syntax='form'))
    tap.is_(r.status, 200, 'upsim: now 5.0.0, GBK, form answers',
            r.describe())
    try:
        oid = new_oid('G')
        r, tt = new_order(inst, 'upsim', oid, 1700)
        r, txn = sim_pay(sim, 'upsim', oid, 1700, tt)
        tap.is_(wait_for(lambda: state_of(inst, oid) == 'PAID'), True,
                'upsim 5.0.0 GBK: the notification makes the order PAID')
        # The simulator records a delivery once payhook has answered it,
        # which may be just after the order is seen PAID.
        ds = wait_for(lambda: sends(sim, oid))
        tap.ok(ds and 'certId=' in ds[0]['request'] and
               'encoding=GBK' in ds[0]['request'] and
               'signPubKeyCert' not in ds[0]['request'],
               'upsim 5.0.0 GBK: certId, no signPubKeyCert',
               json.dumps(ds)[:800])
        oid = new_oid('G')
        r, tt = new_order(inst, 'upsim', oid, 1800)
        r, txn = sim_pay(sim, 'upsim', oid, 1800, tt, {'drop_all': True})
        tap.ok(sweep_until(inst, oid, 'PAID') is not None,
               'upsim 5.0.0 GBK: the sweeper reads the form answer')
        tap.is_((inst.order(oid) or {}).get('provider_txn_id'), txn,
                'upsim 5.0.0 GBK: with the queryId')
    finally:
        sim.point_at(inst)


def test_expiry(tap, sim, inst, prof):
    """An expired order the provider knows unpaid: closed by the sweeper
    (these providers have no close API: the query's answer suffices)."""
    t = prof + ': '
    oid = new_oid('X')
    r, tt = new_order(inst, prof, oid, 1500, expires_in=1)
    tap.is_(r.status, 201, t + 'order with expires_in 1', r.describe())
    sim.control('/_sim/order', {'profile': prof, 'order_id': oid,
                                'amount': 1500})
    time.sleep(1.2)
    tap.ok(sweep_until(inst, oid, 'CLOSED', 15) is not None,
           t + 'expired and unpaid at the simulator: CLOSED',
           repr(inst.order(oid)))
    tap.is_(sim.stats()['by_order'].get(oid, {}).get('close', 0), 0,
            t + 'no close call (the provider has none)')


def test_expiry_v3(tap, sim, inst):
    """An expired WeChat Pay v3 order the simulator knows unpaid: closed
    at WeChat (POST .../out-trade-no/{id}/close, answered 204, signed)
    before it is closed here; while the close fails (503, or an unsigned
    answer that is not JSON) it stays PENDING and open at WeChat."""
    t = 'wxv3sim: '
    oid = new_oid('XC')
    base = inst.last_seq()
    r, tt = new_order(inst, 'wxv3sim', oid, 1500, expires_in=1)
    tap.is_(r.status, 201, t + 'order with expires_in 1', r.describe())
    sim.control('/_sim/order', {'profile': 'wxv3sim', 'order_id': oid,
                                'amount': 1500})
    time.sleep(1.2)
    for mode in ('down', 'garbage'):
        sim.control('/_sim/mode', {'close': mode})
        calls = sim.stats()['by_order'].get(oid, {}).get('close', 0)
        wait_for(lambda: sweep(inst) and sim.stats()['by_order'].get(
            oid, {}).get('close', 0) > calls, 15, 0.3)
        tap.ok(sim.stats()['by_order'].get(oid, {}).get('close', 0) > calls,
               t + 'close %s: the close API was called' % mode)
        tap.is_(state_of(inst, oid), 'PENDING',
                t + 'close %s: the order stays PENDING' % mode)
        tap.ok(not sim.ledger()['orders'].get(oid, {}).get('closed'),
               t + 'close %s: and open at WeChat' % mode)
    tap.is_(events_for(inst, oid, base), [],
            t + 'no order.closed while the close fails')
    sim.control('/_sim/mode', {'close': 'ok'})
    tap.ok(sweep_until(inst, oid, 'CLOSED', 15) is not None,
           t + 'close answered 204: the order is CLOSED',
           repr(inst.order(oid)))
    tap.ok(sim.ledger()['orders'].get(oid, {}).get('closed'),
           t + '... closed at WeChat first')
    tap.is_(events_for(inst, oid, base), ['order.closed'],
            t + '... one order.closed')


def test_schedules(tap, cfg):
    """Every send lost, at factor 100000: the number of sends and their
    span; and a profile's own retry_gaps."""
    sim = Simulator(tap, profiles=cfg, time_factor=100000,
                    name='sim-fast').start()
    for prof in ALL:
        r = sim.control('/_sim/profile', harness.sim_profile(
            prof, cfg[prof], 'http://127.0.0.1:9/never'))
        tap.is_(r.status, 200, '%s: profile re-pointed' % prof,
                r.describe())
    t0 = time.time()
    for prof in ALL:
        sim.control('/_sim/pay', {'profile': prof, 'order_id': 'S' + prof,
                                  'amount': 1,
                                  'notify': {'drop_all': True}})
    for prof in ALL:
        oid = 'S' + prof
        tap.ok(wait_for(lambda: len(sends(sim, oid)) >= SENDS[prof],
                        timeout=20), '%s: %d sends' % (prof, SENDS[prof]))
    time.sleep(0.5)
    for prof in ALL:
        ds = sends(sim, 'S' + prof)
        tap.is_([(d['attempt'], d['dropped']) for d in ds],
                [(i + 1, True) for i in range(SENDS[prof])],
                '%s: every send lost, none after the last' % prof)
        if len(ds) == SENDS[prof]:
            span = ds[-1]['at'] - ds[0]['at']
            want = GAPS[prof] / 100000.0
            tap.ok(want <= span < want + 3, '%s: the sends span the '
                   'schedule / 100000 (%.3f s, want %.3f s)'
                   % (prof, span, want))
    tap.diag('schedules took %.1fs' % (time.time() - t0))
    own = dict(cfg['aggrsa']['sim'], name='own', retry_gaps=[1, 2],
               notify_url='http://127.0.0.1:9/never')
    tap.is_(sim.control('/_sim/profile', own).status, 200,
            'a profile with retry_gaps [1, 2]')
    sim.control('/_sim/pay', {'profile': 'own', 'order_id': 'Sown',
                              'amount': 1, 'notify': {'drop_all': True}})
    tap.ok(wait_for(lambda: len(sends(sim, 'Sown')) >= 3, timeout=10),
           'retry_gaps [1, 2]: three sends')
    time.sleep(0.3)
    tap.is_(len(sends(sim, 'Sown')), 3, 'retry_gaps [1, 2]: no more')
    for bad in ({'retry_gaps': 'x'}, {'signature': 'md5'},
                {'webhook_private_key': 'not a key'},
                {'webhook_secret': SECRET}):
        r = sim.control('/_sim/profile', dict(own, **bad))
        tap.is_(r.status, 400, 'profile refused: %s' % json.dumps(bad)[:60],
                r.describe())
    tap.is_(sim.stop(), 0, 'the fast simulator stops cleanly')


# ---- the APIs, checked with the rules computed here -------------------------

def up_sign_string(pairs, skip_empty=False):
    items = sorted((k, v) for k, v in pairs
                   if k != b'signature' and not (skip_empty and v == b''))
    return b'&'.join(k + b'=' + v for k, v in items)


def up_request(k, oid, txn_time, key=None, **over):
    f = {'version': '5.1.0', 'encoding': 'UTF-8', 'signMethod': '01',
         'txnType': '00', 'txnSubType': '00', 'bizType': '000000',
         'accessType': '0', 'channelType': '07', 'merId': MER_ID,
         'orderId': oid, 'txnTime': txn_time, 'certId': '68759529225'}
    f.update(over)
    pairs = [(a.encode(), b.encode()) for a, b in f.items()]
    hexd = hashlib.sha256(up_sign_string(pairs, True)).hexdigest().encode()
    sig = (key or k.mer).sign(hexd, padding.PKCS1v15(), hashes.SHA256())
    pairs.append((b'signature', base64.b64encode(sig)))
    return '&'.join('%s=%s' % (urllib.parse.quote_plus(a),
                               urllib.parse.quote_plus(b))
                    for a, b in pairs).encode()


def up_reply(k, body):
    """UnionPay's reply syntax (values not escaped; no value here holds
    '&') -> (fields, the signature verifies with its signPubKeyCert,
    which is UnionPay's certificate)."""
    pairs = [tuple(p.split(b'=', 1)) for p in (body or b'').split(b'&')]
    if not pairs or any(len(p) != 2 for p in pairs):
        return None, False
    f = dict(pairs)
    hexd = hashlib.sha256(up_sign_string(pairs)).hexdigest().encode()
    good = f.get(b'signPubKeyCert') == k.up_cert.public_bytes(
        serialization.Encoding.PEM)
    try:
        k.up_cert.public_key().verify(base64.b64decode(f[b'signature']),
                                      hexd, padding.PKCS1v15(),
                                      hashes.SHA256())
    except Exception:
        good = False
    return {a.decode(): b.decode('utf-8') for a, b in pairs}, good


def test_unionpay_api(tap, sim, k):
    paid, unpaid, tt = new_oid('UA'), new_oid('UB'), beijing_now()
    r, txn = sim_pay(sim, 'upsim', paid, 2000, tt, {'drop_all': True})
    sim.control('/_sim/order', {'profile': 'upsim', 'order_id': unpaid,
                                'amount': 2100})
    path = '/gateway/api/queryTrans.do'
    form = {'Content-Type': 'application/x-www-form-urlencoded'}
    for name, body, want in (
            ('paid', up_request(k, paid, tt),
             {'respCode': '00', 'origRespCode': '00', 'queryId': txn,
              'txnAmt': '2000', 'currencyCode': '156', 'orderId': paid,
              'txnTime': tt, 'merId': MER_ID}),
            ('paid, another txnTime', up_request(k, paid, '20200101000000'),
             {'respCode': '34'}),
            ('unpaid', up_request(k, unpaid, tt),
             {'respCode': '00', 'origRespCode': '05'}),
            ('unknown', up_request(k, new_oid('UC'), tt),
             {'respCode': '34'}),
            ('signed by another key', up_request(k, paid, tt, key=k.other),
             {'respCode': '11'}),
            ('another certId', up_request(k, paid, tt, certId='1'),
             {'respCode': '11'})):
        r = sim.request('POST', path, body, form)
        f, good = up_reply(k, r.body)
        tap.ok(r.status == 200 and r.content_type.startswith('text/html'),
               'UnionPay query (%s): 200, reply syntax' % name,
               r.describe())
        tap.ok(good, 'UnionPay query (%s): signed by UnionPay (5.1.0, '
               'checked here)' % name, r.describe())
        tap.is_({key: (f or {}).get(key) for key in want}, want,
                'UnionPay query (%s): %s' % (name, want['respCode']))
    r = sim.request('POST', path, up_request(k, paid, tt,
                                             merId='777290058110000'), form)
    tap.is_(r.status, 400, 'UnionPay query of an unknown merId: HTTP 400')


def v3_call(sim, k, method, target, body=b'', key=None, mchid=V3_MCHID,
            ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    nonce = os.urandom(16).hex().upper()
    msg = ('%s\n%s\n%s\n%s\n' % (method, target, ts, nonce)).encode() + \
        body + b'\n'
    sig = base64.b64encode((key or k.v3_merchant).sign(
        msg, padding.PKCS1v15(), hashes.SHA256())).decode()
    auth = ('WECHATPAY2-SHA256-RSA2048 mchid="%s",nonce_str="%s",'
            'signature="%s",timestamp="%s",serial_no="%s"'
            % (mchid, nonce, sig, ts, V3_MERCHANT_SERIAL))
    hdrs = {'Authorization': auth, 'Accept': 'application/json'}
    if body:
        hdrs['Content-Type'] = 'application/json'
    r = sim.request(method, target, body or None, hdrs)
    h = r.headers
    good = False
    if h.get('wechatpay-serial') == k.platform_serial and \
            h.get('wechatpay-signature-type') == 'WECHATPAY2-SHA256-RSA2048':
        m = ('%s\n%s\n' % (h.get('wechatpay-timestamp'),
                           h.get('wechatpay-nonce'))).encode() + r.body + b'\n'
        try:
            k.platform.public_key().verify(
                base64.b64decode(h.get('wechatpay-signature', '')), m,
                padding.PKCS1v15(), hashes.SHA256())
            good = True
        except Exception:
            pass
    return r, good


def test_v3_api(tap, sim, k):
    paid, unpaid = new_oid('VA'), new_oid('VB')
    tt = beijing_now()
    r, txn = sim_pay(sim, 'wxv3sim', paid, 3000, tt, {'drop_all': True})
    sim.control('/_sim/order', {'profile': 'wxv3sim', 'order_id': unpaid,
                                'amount': 3100})
    q = '/v3/pay/transactions/out-trade-no/%s?mchid=' + V3_MCHID
    r, good = v3_call(sim, k, 'GET', q % paid)
    j = r.json or {}
    tap.ok(r.status == 200 and good, 'v3 query (paid): 200, signed with the '
           'platform key (checked here)', r.describe())
    tap.is_((j.get('trade_state'), j.get('transaction_id'),
             (j.get('amount') or {}).get('total'), j.get('out_trade_no'),
             j.get('mchid'), j.get('appid'), j.get('success_time')),
            ('SUCCESS', txn, 3000, paid, V3_MCHID, V3_APPID,
             datetime.datetime.strptime(tt, '%Y%m%d%H%M%S').strftime(
                 '%Y-%m-%dT%H:%M:%S+08:00')),
            'v3 query (paid): the payment from the ledger')
    r, good = v3_call(sim, k, 'GET', '/v3/pay/transactions/id/%s?mchid=%s'
                      % (txn, V3_MCHID))
    tap.ok(good and (r.json or {}).get('out_trade_no') == paid,
           'v3 query by transaction id', r.describe())
    r, good = v3_call(sim, k, 'GET', q % unpaid)
    tap.ok(r.status == 200 and good and
           (r.json or {}).get('trade_state') == 'NOTPAY',
           'v3 query (unpaid): NOTPAY, signed', r.describe())
    r, good = v3_call(sim, k, 'GET', q % new_oid('VC'))
    tap.ok(r.status == 404 and good and
           (r.json or {}).get('code') == 'ORDER_NOT_EXIST',
           'v3 query (unknown): 404 ORDER_NOT_EXIST, signed', r.describe())
    for name, kw in (('signed by another key', {'key': k.other}),
                     ('a stale timestamp',
                      {'ts': int(time.time()) - 600})):
        r, good = v3_call(sim, k, 'GET', q % paid, **kw)
        tap.ok(r.status == 401 and good and
               (r.json or {}).get('code') == 'SIGN_ERROR',
               'v3 query (%s): 401 SIGN_ERROR' % name, r.describe())
    r, good = v3_call(sim, k, 'GET', '/v3/pay/transactions/out-trade-no/'
                      '%s?mchid=1900000000' % paid)
    tap.is_(r.status, 400, 'v3 query naming another mchid: 400')

    close = '/v3/pay/transactions/out-trade-no/%s/close'
    body = json.dumps({'mchid': V3_MCHID}).encode()
    r, good = v3_call(sim, k, 'POST', close % unpaid, body)
    tap.ok(r.status == 204 and r.body == b'' and good,
           'v3 close (unpaid): 204, no body, signed', r.describe())
    r, good = v3_call(sim, k, 'GET', q % unpaid)
    tap.is_((r.json or {}).get('trade_state'), 'CLOSED',
            'v3 query after close: CLOSED')
    r, good = v3_call(sim, k, 'POST', close % paid, body)
    tap.ok(r.status == 400 and good and
           (r.json or {}).get('code') == 'ORDERPAID',
           'v3 close (paid): 400 ORDERPAID', r.describe())
    st = sim.stats()['by_order']
    tap.is_((st.get(unpaid, {}).get('close'), st.get(paid, {}).get('close')),
            (1, 1), 'stats count v3 closes per order')


def test_v3_bill_api(tap, sim, k):
    """tradebill: a signed answer naming the file and its SHA1; the file,
    unsigned, at the simulator's own download_url; NO_STATEMENT_EXIST for
    a day without a bill."""
    oid = new_oid('VD')
    sim_pay(sim, 'wxv3sim', oid, 4321, '20250102120000', {'drop_all': True})
    r, good = v3_call(sim, k, 'GET', '/v3/bill/tradebill?bill_date='
                      '2025-01-02&bill_type=ALL')
    j = r.json or {}
    url = j.get('download_url') or ''
    tap.ok(r.status == 200 and good and j.get('hash_type') == 'SHA1' and
           url.startswith('http://127.0.0.1:%d/v3/billdownload/file?token='
                          % sim.port),
           'v3 tradebill: 200, signed, SHA1, a download_url of the '
           'simulator', r.describe())
    target = url[len('http://127.0.0.1:%d' % sim.port):]
    r, good = v3_call(sim, k, 'GET', target)
    want = sim.request('GET', '/_sim/statement?profile=wxv3sim&'
                       'date=2025-01-02')
    tap.ok(r.status == 200 and not good and r.body == want.body and
           hashlib.sha1(r.body).hexdigest() == j.get('hash_value'),
           'v3 billdownload: the bill, unsigned, its SHA1 the hash_value',
           r.describe())
    tap.ok(oid.encode() in r.body and b'`43.21,' in r.body,
           'v3 billdownload: the payment is in it')
    r, good = v3_call(sim, k, 'GET', target, key=k.other)
    tap.is_(r.status, 401, 'v3 billdownload signed by another key: 401')
    r, good = v3_call(sim, k, 'GET', '/v3/billdownload/file?token=nope')
    tap.is_(r.status, 404, 'v3 billdownload of an unknown token: 404')
    r, good = v3_call(sim, k, 'GET', '/v3/bill/tradebill?bill_date='
                      '1999-01-01&bill_type=ALL')
    tap.ok(r.status == 400 and good and
           (r.json or {}).get('code') == 'NO_STATEMENT_EXIST',
           'v3 tradebill of a day without payments: 400 NO_STATEMENT_EXIST, '
           'signed', r.describe())


def beijing_ago(seconds):
    return (datetime.datetime.now(BEIJING) - datetime.timedelta(
        seconds=seconds)).strftime('%Y%m%d%H%M%S')


def test_aggregator_api(tap, sim, k):
    """The simulator's charges API, as Ping++ documents it: a charge by
    its id, and the app's list with app[id], limit, paid, created and
    starting_after; order_no is no parameter and is ignored."""
    since = int(time.time()) - 600
    oid = new_oid('GA')
    r, t1 = sim_pay(sim, 'aggrsa', oid, 4000, beijing_ago(120),
                    {'drop_all': True})
    r, t2 = sim_pay(sim, 'aggrsa', oid, 4000, beijing_now(),
                    {'drop_all': True})
    other = new_oid('GX')
    r, t3 = sim_pay(sim, 'aggrsa', other, 10, beijing_ago(60),
                    {'drop_all': True})

    def get(target, key=APIKEY):
        return sim.request('GET', target, headers={
            'Authorization': 'Bearer ' + key, 'Accept': 'application/json'})

    def call(query, key=APIKEY, app=APP):
        return get('/v1/charges?app[id]=%s%s' % (app, query), key)

    def rows(r):
        return [(c.get('id'), c.get('paid'), c.get('order_no'),
                 c.get('amount'), c.get('currency'), c.get('channel'),
                 c.get('app')) for c in (r.json or {}).get('data') or []]

    r = call('&limit=100&created[gte]=%d&order_no=%s' % (since, oid))
    j = r.json or {}
    mine = [x for x in rows(r) if x[2] == oid]
    tap.is_((r.status, j.get('object'), j.get('has_more'), mine),
            (200, 'list', False,
             [(t2, True, oid, 4000, 'cny', 'upacp', APP),
              (t1, True, oid, 4000, 'cny', 'upacp', APP)]),
            'aggregator list: the order\'s charges, newest first',
            r.describe())
    tap.ok(any(x[0] == t3 for x in rows(r)),
           'aggregator list: order_no is no parameter: other orders\' '
           'charges are listed too')
    try:
        k.webhook.public_key().verify(
            base64.b64decode(r.headers.get('x-pingplusplus-signature', '')),
            r.body, padding.PKCS1v15(), hashes.SHA256())
        good = True
    except Exception:
        good = False
    tap.ok(good, 'aggregator query (sign_answers): X-Pingplusplus-Signature '
           'verifies over the body (checked here)')
    r = call('&limit=1&created[gte]=%d' % since)
    first = rows(r)
    tap.ok(r.status == 200 and len(first) == 1 and
           (r.json or {}).get('has_more') is True,
           'aggregator list: limit=1, has_more', r.describe())
    if first:
        r = call('&limit=1&created[gte]=%d&starting_after=%s'
                 % (since, first[0][0]))
        tap.ok(r.status == 200 and len(rows(r)) == 1 and
               rows(r)[0][0] != first[0][0],
               'aggregator list: starting_after gives the next page',
               r.describe())
    unpaid = new_oid('GU')
    sim.control('/_sim/order', {'profile': 'aggrsa', 'order_id': unpaid,
                                'amount': 5})
    tap.ok(any(x[2] == unpaid and x[1] is False for x in rows(call(
        '&limit=100&paid=false&created[gte]=%d' % since))) and
           not any(x[2] == unpaid for x in rows(call(
               '&limit=100&paid=true&created[gte]=%d' % since))),
           'aggregator list: paid=false lists the unpaid charge, '
           'paid=true does not')
    tap.is_(call('&created[gte]=%d' % (int(time.time()) + 3600)).json.get(
        'data'), [], 'aggregator list: created[gte] in the future: empty')
    r = get('/v1/charges/%s' % t1)
    tap.is_((r.status, (r.json or {}).get('id'), (r.json or {}).get(
        'order_no'), (r.json or {}).get('paid')), (200, t1, oid, True),
        'aggregator retrieve: GET /v1/charges/<id>', r.describe())
    r = get('/v1/charges/ch_nosuchcharge000000000000')
    tap.is_(r.status, 404, 'aggregator retrieve: an unknown charge: 404')
    r = call('&limit=100', key='sk_test_wrong')
    tap.ok(r.status == 401 and isinstance(
        ((r.json or {}).get('error') or {}).get('message'), str),
        'aggregator query with a wrong key: 401 {"error": {...}}',
        r.describe())
    r = call('&limit=100', key=APIKEY + 'h', app=APP + 'h')
    tap.ok(r.status == 200 and not any(x[2] == oid for x in rows(r)) and
           'x-pingplusplus-signature' not in r.headers,
           "aggregator query with the hmac profile's key: not this "
           "profile's charges, no signature header", r.describe())
    r = call('&limit=100', app=APP + 'h')
    tap.is_(r.status, 400, "aggregator query: app[id] of another key: 400")
    r = call('&limit=101')
    tap.is_(r.status, 400, "aggregator query: limit above 100: 400")
    r = sim.control('/_sim/out_of_order', {'profile': 'aggrsa',
                                           'order_id': new_oid('GC'),
                                           'amount': 1})
    tap.is_(r.status, 400, 'aggregator: no notification of a failed '
            'charge (out_of_order is 400)', r.describe())


def test_earlier_attempt_paid(tap, sim, inst):
    """UnionPay keys a payment by orderId and txnTime: an order whose
    shopper opened nine attempts (nine txnTimes) and paid the first, every
    notification lost, is asked about at every attempt's txnTime, not the
    latest alone nor the first few: paid, the guard refuses another, never
    closed."""
    t = 'upsim: '

    def txn_time(ago):
        return (datetime.datetime.now(BEIJING) - datetime.timedelta(
            seconds=ago)).strftime('%Y%m%d%H%M%S')

    oid = new_oid('EA')
    first = txn_time(20)
    inst.create_order(oid, 700, profile='upsim', expires_in=8,
                      attempt={'txnTime': first})
    got = [inst.api('POST', '/orders/%s/attempts' % oid,
                    {'profile': 'upsim', 'data': {'txnTime': txn_time(ago)}}
                    ).status for ago in range(19, 11, -1)]
    tap.is_(got, [201] * 8, t + 'eight more attempts, each another '
            'txnTime')
    sim_pay(sim, 'upsim', oid, 700, first, notify={'drop_all': True})
    tap.ok(sweep_until(inst, oid, 'PAID', 20) is not None,
           t + 'the first of nine attempts paid: the sweeper finds the '
           'payment', inst.order(oid))
    r = inst.api('POST', '/orders/%s/attempts' % oid,
                 {'profile': 'upsim', 'data': {'txnTime': beijing_now()}})
    tap.is_((r.status, (r.json or {}).get('error')), (409, 'already_paid'),
            t + 'another attempt: 409 already_paid', r.describe())
    time.sleep(8)
    sweep(inst)
    tap.is_(state_of(inst, oid), 'PAID', t + 'past its expiry it stays '
            'PAID, never closed')


def test_asked_once(tap, inst):
    """WeChat Pay knows an order by its id alone: an order of three
    attempts, each with data of its own, is asked about in one call, not
    three identical ones; UnionPay, which keys a payment by txnTime, at
    each attempt's."""
    for prof, data, calls in (
            ('wxv3sim', lambda i: {'scene': 'S%d' % i}, 1),
            ('upsim', lambda i: {'txnTime': (datetime.datetime.now(
                BEIJING) - datetime.timedelta(seconds=10 - i)).strftime(
                    '%Y%m%d%H%M%S')}, 3)):
        oid = new_oid('AO')
        inst.create_order(oid, 300, profile=prof, attempt=data(0))
        got = [inst.api('POST', '/orders/%s/attempts' % oid,
                        {'profile': prof, 'data': data(i)}).status
               for i in (1, 2)]
        r = inst.api('POST', '/orders/%s/query' % oid)
        asked = ((r.json or {}).get('query') or {}).get('calls') or []
        tap.is_((got, r.status, len(asked)), ([201, 201], 200, calls),
                '%s: an order of three attempts with data of their own is '
                'asked in %d call(s)' % (prof, calls), r.describe())


def test_forged(tap, sim, inst, k, cfg):
    """The profiles again, signing with what payhook does not trust: every
    send refused (HTTP 400, not acknowledged), the order left PENDING.
    So what payhook accepted above, it accepted for its signature."""
    bad = {
        # Right chain, same key, another company in the CN.
        'upsim': {'sign_cert': k.up['othercn.pem']},
        'wxv3sim': {'platform_key': priv_pem(k.other).decode()},
        'aggrsa': {'webhook_private_key': priv_pem(k.other).decode()},
        'agghmac': {'webhook_secret': 'whsec_not_the_secret_0123456789'},
    }
    for prof, over in bad.items():
        name = 'forged-' + prof
        url = 'http://%s:%d%s' % (harness.HOST, inst.server.port,
                                  inst.path('/notify/' + prof))
        r = sim.control('/_sim/profile', dict(
            cfg[prof]['sim'], name=name, notify_url=url, retry_gaps=[],
            **over))
        tap.is_(r.status, 200, '%s: added' % name, r.describe())
        oid = new_oid('F')
        r, tt = new_order(inst, prof, oid, 1600)
        sim_pay(sim, name, oid, 1600, tt)
        ds = wait_for(lambda: [d for d in sends(sim, oid)
                               if d['status'] is not None])
        tap.is_([(d['status'], d['acked']) for d in ds or []],
                [(400, False)], '%s: the one send is refused (400)' % name,
                json.dumps(sends(sim, oid))[:1500])
        tap.is_(state_of(inst, oid), 'PENDING',
                '%s: the order stays PENDING' % name)


def main(tap):
    if shutil.which('openssl') is None:
        tap.skip_all('the openssl command is not installed')
    work = tempfile.mkdtemp(prefix='payhook-e2e-simprov-')
    try:
        k = Keys(work)
        cfg = profiles(k)
        sim = Simulator(tap, profiles=cfg, time_factor=1000,
                        name='sim-prov').start()
        # Queries go to the simulator, on a compressed query schedule.
        inst = SimInstance(tap, 'simprov', sim_port=sim.port, profiles=cfg,
                           core=dict(harness.QUICK_SWEEP,
                                     attempt_hold_s='0'),
                           profile={'query_schedule': SCHEDULE})
        p = inst.cli('check')
        tap.ok(p.returncode == 0, 'payhook check accepts the profiles',
               p.stdout + p.stderr)
        inst.start()
        sim.point_at(inst)
        for prof in ALL:
            test_profile(tap, sim, inst, prof)
        test_unionpay_variant(tap, sim, inst, cfg)
        for prof in ('upsim', 'aggrsa', 'agghmac'):
            test_expiry(tap, sim, inst, prof)
        test_expiry_v3(tap, sim, inst)
        test_earlier_attempt_paid(tap, sim, inst)
        test_asked_once(tap, inst)
        test_unionpay_api(tap, sim, k)
        test_v3_api(tap, sim, k)
        test_v3_bill_api(tap, sim, k)
        test_aggregator_api(tap, sim, k)
        test_forged(tap, sim, inst, k, cfg)
        inst.stop()
        tap.is_(sim.stop(), 0, 'the simulator stops cleanly')
        test_schedules(tap, cfg)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    harness.run(main)
