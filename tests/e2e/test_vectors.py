"""The providers' published vectors (tests/vectors/, README.md there names
the source of every file) replayed through the real server: lighttpd in
front of payhook.fcgi, one profile per vector configured with the vector's
own keys, certificates and ids, the message POSTed to /notify/<profile> as
the provider sends it, then the acknowledgement bytes, the order and the
event feed are checked.

Messages whose certificate or timestamp belongs to the past are replayed
with payhook.fcgi running at the vector's own time: lighttpd starts it with
libfaketime preloaded (LD_PRELOAD and FAKETIME in "bin-environment"), so
only payhook's clock moves and no check is loosened.  The same messages are
also sent to a payhook at today's time, which must refuse them.

Checks named "[FINDINGS §n: ...]" assert what the provider's own SDK does
where payhook once differed (tests/vectors/FINDINGS.md): they failed until
the plugin followed the SDK, and keep it following.

Vectors that cannot go through a notification route (payhook has no route
for them, or the signing certificate was never published) are checked here
for what they do show: that they decrypt with their key to the published
plaintext.
"""

import base64
import json
import os
import sys
from urllib.parse import quote_plus

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    AESGCM = None

VEC = os.path.join(harness.TOP_SRCDIR, 'tests', 'vectors')
FORM = 'application/x-www-form-urlencoded'
WX_SUCCESS = harness.SUCCESS_ACK


def vec(rel, mode='rb'):
    with open(os.path.join(VEC, rel), mode) as fh:
        return fh.read()


def vjson(rel):
    return json.loads(vec(rel).decode('utf-8'))


class FakeTimeServer(harness.Server):
    """lighttpd whose payhook.fcgi processes run at `when` ('YYYY-MM-DD
    hh:mm:ss', UTC): libfaketime in their environment only."""

    def __init__(self, inst, when, lib):
        harness.Server.__init__(self, inst)
        self.when = when
        self.lib = lib

    def write_conf(self):
        harness.Server.write_conf(self)
        if not self.when:
            return
        with open(self.conf, encoding='utf-8') as fh:
            text = fh.read()
        old = '"bin-environment" => ( "PAYHOOK_CONFIG" => "%s" )' \
            % self.inst.config
        new = ('"bin-environment" => ( "PAYHOOK_CONFIG" => "%s", '
               '"LD_PRELOAD" => "%s", "FAKETIME" => "@%s", '
               '"TZ" => "UTC" )' % (self.inst.config, self.lib, self.when))
        if old not in text:
            raise harness.StartError('lighttpd.conf has no bin-environment '
                                     'line to extend')
        harness.write_file(self.conf, text.replace(old, new), mode=0o644)


class VInstance(harness.Instance):
    def __init__(self, tap, name, profiles, when=None, lib=None):
        self.when = when
        self.lib = lib
        harness.Instance.__init__(self, tap, name, profiles=profiles)

    def start(self):
        self.server = FakeTimeServer(self, self.when, self.lib)
        self.server.start()
        return self.server

    def new_log(self):
        """What lighttpd and payhook.fcgi logged since the last call."""
        text = self.server.read_log()
        off = getattr(self, '_seen', 0)
        self._seen = len(text)
        return text[off:]


def types_of(evs):
    return [e.get('type') for e in evs]


def form(fields):
    return '&'.join('%s=%s' % (quote_plus(k.encode('utf-8'), safe=''),
                               quote_plus(v.encode('utf-8'), safe=''))
                    for k, v in fields).encode('ascii')


def check_clock(tap, inst, order_id, prefix, name):
    """The order's created_at shows payhook's clock: the vector's day."""
    o = inst.order(order_id) or {}
    tap.like(o.get('created_at') or '', '^' + prefix,
             '%s: payhook.fcgi runs at the vector\'s time (created_at %s)'
             % (name, o.get('created_at')))
    pids = inst.server.backend_pids()
    env = b''
    for pid in pids:
        try:
            with open('/proc/%d/environ' % pid, 'rb') as fh:
                env += fh.read()
        except OSError:
            pass
    tap.ok(b'FAKETIME=@' in env and b'libfaketime' in env,
           '%s: libfaketime is preloaded in payhook.fcgi only' % name,
           'backend pids %r' % pids)


def register(tap, inst, name, order_id, amount, profile):
    """One test point: the order is created (201)."""
    return tap.is_(inst.create_order(order_id, amount,
                                     profile=profile).status, 201,
                   '%s: order registered' % name)


def expect_paid(tap, inst, name, order_id, resp, ack, txn, paid_at, base,
                ack_status=200):
    tap.is_((resp.status, resp.body), (ack_status, ack),
            '%s: the provider\'s success answer' % name, resp.describe(),
            inst.new_log()[-3000:])
    o = inst.order(order_id) or {}
    tap.is_(o.get('state'), 'PAID', '%s: order %s PAID' % (name, order_id),
            repr(o))
    tap.is_(o.get('provider_txn_id'), txn,
            '%s: the provider\'s transaction id' % name)
    if paid_at is not None:
        tap.is_(o.get('paid_at'), paid_at,
                '%s: paid_at is the provider\'s payment time' % name)
    tap.is_(types_of(inst.all_events(base)), ['order.paid'],
            '%s: one event, order.paid' % name)


# ---------------------------------------------------------------------------
# Ping++ (aggregator): no timestamp in the signature, today's clock
# ---------------------------------------------------------------------------

def ping_profile(app_id, keyfile, livemode):
    return {'plugin': 'aggregator',
            'settings': {'signature': 'rsa', 'app_id': app_id,
                         'webhook_public_key_file': 'pingxx/' + keyfile,
                         'livemode': 'yes' if livemode else 'no'},
            'files': {'pingxx/' + keyfile:
                      (vec('aggregator/' + keyfile), 0o644)}}


def ping_post(inst, profile, stem, body=None):
    sig = vec('aggregator/%s.sig' % stem).decode('ascii').strip()
    body = vec('aggregator/%s.json' % stem) if body is None else body
    return inst.request('POST', '/notify/' + profile, body,
                        {'Content-Type': 'application/json',
                         'X-Pingplusplus-Signature': sig})


def ping_pays(tap, inst, name, profile, stem, order_id, charge_id, paid_at):
    """The Ping++ vector `stem` (a charge.succeeded of 100), posted to
    profile, pays its order, registered here first."""
    base = inst.last_seq()
    register(tap, inst, name, order_id, 100, profile)
    r = ping_post(inst, profile, stem)
    expect_paid(tap, inst, name, order_id, r, b'{"ok":true}', charge_id,
                paid_at, base)


def test_aggregator(tap):
    profiles = {
        'pingphp': ping_profile('app_vcPcqDeS88ixrPlu',
                                'pingpp-php-public-key.pem', True),
        'pingjava': ping_profile('app_eTC8yLuj9GSSL0yv',
                                 'pingpp-java-public-key.pem', False),
        'pingpy': ping_profile('app_1Gqj58ynP0mHeX1q',
                               'pingpp-python-public-key.pem', False),
    }
    inst = VInstance(tap, 'vec-pingpp', profiles)
    inst.check_passes('Ping++ profiles: payhook check')
    inst.start()
    ok = b'{"ok":true}'

    name = 'pingpp-php charge.succeeded (live)'
    ping_pays(tap, inst, name, 'pingphp', 'pingpp-php-charge-succeeded',
              '2015d019f7cf6c0d', 'ch_bq9IHKnn6GnLzsS0swOujr4x',
              '2015-06-15T11:34:34Z')
    base = inst.last_seq()
    r = ping_post(inst, 'pingphp', 'pingpp-php-charge-succeeded')
    tap.is_((r.status, r.body), (200, ok), '%s: resent: 200' % name)
    tap.is_(types_of(inst.all_events(base)), [], '%s: resent: no event'
            % name)
    body = bytearray(vec('aggregator/pingpp-php-charge-succeeded.json'))
    body[body.index(b'"amount":100') + 10] = ord('2')
    r = ping_post(inst, 'pingphp', 'pingpp-php-charge-succeeded',
                  bytes(body))
    tap.is_(r.status, 400, '%s: one byte changed: refused' % name,
            r.describe())

    name = 'pingpp-java charge.succeeded (test mode)'
    ping_pays(tap, inst, name, 'pingjava', 'pingpp-java-charge-succeeded',
              '1723795491985uqclqj7', 'ch_100240816592822384640019',
              '2024-08-16T08:07:55Z')
    r = ping_post(inst, 'pingphp', 'pingpp-java-charge-succeeded')
    tap.is_(r.status, 400, '%s: on the live profile (other key): refused'
            % name, r.describe())

    name = 'pingpp-python account.summary.available'
    base = inst.last_seq()
    r = ping_post(inst, 'pingpy', 'pingpp-python-summary')
    tap.is_((r.status, r.body), (200, ok),
            '%s: verified, acknowledged, ignored' % name, r.describe(),
            inst.new_log()[-2000:])
    tap.ok(not [t for t in types_of(inst.all_events(base))
                if t and t.startswith('order.')],
           '%s: no order event' % name)
    inst.stop()


# ---------------------------------------------------------------------------
# Alipay: no timestamp check, today's clock
# ---------------------------------------------------------------------------

def test_alipay(tap):
    profiles = {'aliyuque': harness.alipay_profile(
        '2019073166072302', '2088531891668739',
        vec('alipay/alipay-public-key-2019073166072302.pem'),
        name='aliyuque')}
    inst = VInstance(tap, 'vec-alipay', profiles)
    inst.check_passes('Alipay profile: payhook check')
    inst.start()

    name = 'alipay yuque TRADE_SUCCESS (production)'
    fields = vjson('alipay/yuque-trade-success.json')['fields']
    oid = dict(fields)['out_trade_no']
    base = inst.last_seq()
    register(tap, inst, name, oid, 10, 'aliyuque')
    r = inst.notify(form(fields), 'aliyuque', content_type=FORM)
    expect_paid(tap, inst, name, oid, r, b'success',
                '2019081522001468450512505578', '2019-08-15T07:56:24Z',
                base)
    base = inst.last_seq()
    r = inst.notify(form(fields), 'aliyuque', content_type=FORM)
    tap.is_((r.status, r.body), (200, b'success'), '%s: resent' % name)
    tap.is_(types_of(inst.all_events(base)), [], '%s: resent: no event'
            % name)

    name = 'alipay tpxy (signed for another app)'
    fields = vjson('alipay/tpxy-trade-success-other-key.json')['fields']
    oid = dict(fields)['out_trade_no']
    register(tap, inst, name, oid, 1, 'aliyuque')
    base = inst.last_seq()
    r = inst.notify(form(fields), 'aliyuque', content_type=FORM)
    tap.ok(r.status != 200 and r.body != b'success',
           '%s: refused' % name, r.describe())
    tap.is_((inst.order(oid) or {}).get('state'), 'PENDING',
            '%s: order still PENDING' % name)
    tap.is_(types_of(inst.all_events(base)), [], '%s: no event' % name)
    inst.stop()


# ---------------------------------------------------------------------------
# UnionPay: certificates of 2015-2018, replayed on 2017-03-24
# ---------------------------------------------------------------------------

UP_WHEN = '2017-03-24 02:12:00'       # 10:12 in Beijing


def up_profile(mer_id, signer_cn):
    files = {'unionpay/root.pem': (vec('unionpay/acp_test_root.pem'), 0o644),
             'unionpay/middle.pem': (vec('unionpay/acp_test_middle.pem'),
                                     0o644)}
    return {'plugin': 'unionpay',
            'settings': {'mer_id': mer_id,
                         'root_cert_file': 'unionpay/root.pem',
                         'middle_cert_file': 'unionpay/middle.pem',
                         'signer_cn': signer_cn},
            'files': files}


def up_profiles():
    return {'upapp': up_profile('777290058110048', '00040000:SIGN'),
            'upapp2': up_profile('777290058143823', '00040000:SIGN'),
            'upsdk': up_profile('700000000000001', '700000000000001:SIGN')}


UP_VECTORS = [
    # (name, file, profile, order id, amount, queryId)
    ('unionpay app demo 20170324101151', 'upacp-app-demo-20170324101151',
     'upapp', '20170324101151', 1, '201703241011516777928', None),
    ('unionpay app demo 20170324151119 (reqReserved)',
     'upacp-app-demo-20170324151119', 'upapp2', '20160615092209323', 1,
     '201703241511197447698', None),
    ('unionpay empty reqReserved, signed as the SDK signs',
     'derived-empty-reqReserved', 'upsdk', '20170601120000', 1,
     '201706011200001234567', 'FINDINGS §2: UnionPay filterBlank'),
]


def test_unionpay(tap, lib):
    inst = VInstance(tap, 'vec-unionpay', up_profiles(), when=UP_WHEN,
                     lib=lib)
    p = inst.cli('check')
    tap.ok(p.returncode in (0, 1), 'UnionPay profiles: payhook check runs',
           p.stdout + p.stderr)
    tap.diag('payhook check (today) on the UnionPay vector profiles: '
             + ' | '.join((p.stdout + p.stderr).strip().splitlines()[-4:]))
    inst.start()
    first = True
    for name, stem, prof, oid, amount, qid, fix in UP_VECTORS:
        label = '%s [%s]' % (name, fix) if fix else name
        fields = vjson('unionpay/%s.json' % stem)['fields']
        base = inst.last_seq()
        register(tap, inst, name, oid, amount, prof)
        if first:
            check_clock(tap, inst, oid, '2017-03-24', 'unionpay')
            first = False
        r = inst.notify(form(fields), prof, content_type=FORM)
        expect_paid(tap, inst, label, oid, r, b'ok', qid, None, base)
        base = inst.last_seq()
        r = inst.notify(form(fields), prof, content_type=FORM)
        tap.is_((r.status, r.body), (200, b'ok'), '%s: resent' % name)
        tap.is_(types_of(inst.all_events(base)), [],
                '%s: resent: no event' % name)
    inst.stop()

    # The same messages at today's time: the certificates have expired.
    inst = VInstance(tap, 'vec-unionpay-today', up_profiles())
    inst.start()
    for name, stem, prof, oid, amount, qid, fix in UP_VECTORS[:2]:
        fields = vjson('unionpay/%s.json' % stem)['fields']
        register(tap, inst, name + ' today', oid, amount, prof)
        inst.new_log()
        r = inst.notify(form(fields), prof, content_type=FORM)
        tap.is_(r.status, 400, '%s today: refused' % name, r.describe())
        tap.like(inst.new_log(), 'certificate has expired',
                 '%s today: because the signing certificate has expired'
                 % name)
        tap.is_((inst.order(oid) or {}).get('state'), 'PENDING',
                '%s today: order still PENDING' % name)
    inst.stop()


# ---------------------------------------------------------------------------
# WeChat Pay v2: the official example key; a value with surrounding spaces
# ---------------------------------------------------------------------------

def test_wechat_v2(tap):
    ex = vjson('wechat/official-sign-example.json')
    profiles = {'wxexample': {'plugin': 'wechat', 'appid':
                              'wxd930ea5d5a258f4f', 'mch_id': '10000100',
                              'key': ex['key'], 'sign_type': 'MD5'}}
    inst = VInstance(tap, 'vec-wechat', profiles)
    inst.start()
    oid = '1409811653'
    register(tap, inst, 'wechat v2', oid, 1, 'wxexample')
    base = inst.last_seq()
    name = 'wechat v2 attach with spaces, signed trimmed as WXPayUtil ' \
        '[FINDINGS §3: WeChat v2 trimmed values]'
    r = inst.notify(vec('wechat/attach-spaces-signed-trimmed.xml'),
                    'wxexample')
    tap.is_((r.status, r.body), (200, WX_SUCCESS),
            '%s: SUCCESS' % name, r.describe(), inst.new_log()[-2000:])
    tap.is_((inst.order(oid) or {}).get('state'), 'PAID',
            '%s: order PAID' % name)
    name = 'wechat v2 attach with spaces, signed over the raw values'
    r = inst.notify(vec('wechat/attach-spaces-signed-raw.xml'), 'wxexample')
    tap.is_((r.status, r.body), (200, WX_SUCCESS), '%s: SUCCESS' % name,
            r.describe(), inst.new_log()[-2000:])
    o = inst.order(oid) or {}
    tap.is_(o.get('state'), 'PAID', '%s: order PAID' % name)
    tap.is_(o.get('provider_txn_id'), '1004400740201409030005092168',
            '%s: transaction id' % name)
    tap.is_(types_of(inst.all_events(base)), ['order.paid'],
            'wechat v2: both forms are one payment, one order.paid')
    inst.stop()


# ---------------------------------------------------------------------------
# WeChat Pay v3: wechatpay-go's notification, at its own time
# ---------------------------------------------------------------------------

GO_WHEN = '2021-06-24 08:37:30'       # Wechatpay-Timestamp 1624523846 + 4 s


def wx3_profile():
    # The vector's APIv3 key, "testMchAPIv3Key0", is 16 bytes (the Go SDK's
    # AES-GCM then runs AES-128); WeChat's APIv3 keys, and payhook's
    # apiv3_key_file, are 32 bytes.  The profile has a 32-byte key, so the
    # signature is checked and the decryption must fail.
    return {'plugin': 'wechat',
            'settings': {'api_version': '3',
                         'appid': '054aa7d7a2a54ab5898df65bd96f001c',
                         'mch_id': '1234567890',
                         'apiv3_key_file': 'keys/wxgo.apiv3',
                         'platform_cert_files': 'wechatpay/go.pem'},
            'files': {'keys/wxgo.apiv3': (b'testMchAPIv3Key0' * 2, 0o600),
                      'wechatpay/go.pem': (vec(
                          'wechat_v3/wechatpay-go-notify-cert-'
                          'D7CE59D1F522D701.pem'), 0o644)}}


def test_wechat_v3(tap, lib):
    meta = vjson('wechat_v3/wechatpay-go-notify.json')
    body = vec('wechat_v3/wechatpay-go-notify.body')
    hdrs = dict(meta['headers'])
    for when, label in ((GO_WHEN, 'at its own time'), (None, 'today')):
        inst = VInstance(tap, 'vec-wxgo', {'wxgo': wx3_profile()},
                         when=when, lib=lib if when else None)
        inst.start()
        inst.new_log()
        r = inst.request('POST', '/notify/wxgo', body, hdrs)
        log = inst.new_log()
        tap.is_(r.status, 400, 'wechatpay-go notification %s: refused (no '
                '32-byte key decrypts it)' % label, r.describe())
        if when:
            tap.ok('AES-256-GCM authentication failed' in log,
                   'wechatpay-go notification at its own time: timestamp, '
                   'platform certificate D7CE59D1F522D701 and signature '
                   'pass; refused at the decryption', log[-2000:])
        else:
            tap.ok('Wechatpay-Timestamp' in log,
                   'wechatpay-go notification today: refused for its '
                   'timestamp', log[-2000:])
        inst.stop()


# ---------------------------------------------------------------------------
# Decryption-only vectors (no notification route can take them)
# ---------------------------------------------------------------------------

def test_decrypt_only(tap):
    if AESGCM is None:
        tap.ok(True, '# SKIP python3-cryptography missing')
        return
    meta = vjson('wechat_v3/capture-transaction-success.json')
    r = json.loads(vec('wechat_v3/capture-transaction-success.body'))
    res = r['resource']
    plain = AESGCM(meta['apiv3_key'].encode()).decrypt(
        res['nonce'].encode(), base64.b64decode(res['ciphertext']),
        res['associated_data'].encode()).decode('utf-8')
    tap.is_(plain, meta['plaintext'], 'wechat v3 capture: the resource '
            'decrypts with its APIv3 key to the transaction (its platform '
            'certificate was never published: not replayable)')
    got = vjson('wechat_v3/wechatpay-java-certificates-response.json')
    exp = vjson('wechat_v3/wechatpay-java-certificates-expected.json')
    ec = got['data'][0]['encrypt_certificate']
    cert = AESGCM(exp['apiv3_key'].encode()).decrypt(
        ec['nonce'].encode(), base64.b64decode(ec['ciphertext']),
        ec['associated_data'].encode()).decode('ascii')
    tap.is_(cert, exp['plaintext'], 'wechatpay-java /v3/certificates '
            'answer: decrypts to the platform certificate %s'
            % exp['serial_no'])


def main(tap):
    test_aggregator(tap)
    test_alipay(tap)
    test_wechat_v2(tap)
    test_decrypt_only(tap)
    lib = harness.libfaketime()
    if lib is None:
        tap.ok(False, 'libfaketime is installed (Debian package faketime, '
               'tools/install-deps): the UnionPay and WeChat v3 vectors '
               'run at their own time')
        return
    test_unionpay(tap, lib)
    test_wechat_v3(tap, lib)


if __name__ == '__main__':
    harness.run(main)
