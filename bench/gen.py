"""Signed request bodies for the benchmark, computed here with the
standard library, python3-cryptography and the openssl command, never by
payhook's code.  One Provider per profile of the benchmark's configuration:
WeChat Pay v2 (MD5) always, and for scenario E every other provider whose
plugin is built and accepts its profile (`payhook check`).
"""

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'e2e'))
from harness import write_file  # noqa: E402

WX_SUCCESS_ACK = (b'<xml><return_code><![CDATA[SUCCESS]]></return_code>'
                  b'<return_msg><![CDATA[OK]]></return_msg></xml>')
BEIJING = datetime.timezone(datetime.timedelta(hours=8))


class Provider:
    """name: shown in the table; tag: in order ids; profile: its section;
    config: the INI text of the profile; ok_status/ok_body: the answer of
    an acknowledged notification (ok_body None: any body)."""
    name = tag = profile = config = ''
    amount = 1000
    ok_status = 200
    ok_body = None

    def notification(self, order_id):
        """(method, path, headers, body bytes) paying order_id."""
        raise NotImplementedError


# ---------------------------------------------------------------------------
# WeChat Pay v2 (XML, MD5)
# ---------------------------------------------------------------------------

class WeChatV2(Provider):
    name, tag, profile = 'wechat-v2', 'wx', 'wxshop'
    appid, mch_id = 'wx2421b1c4370ec43b', '10000100'
    key = '192006250b4c09247ec02edce69f6a2d'
    ok_body = WX_SUCCESS_ACK

    def __init__(self, etc):
        write_file(os.path.join(etc, 'keys', 'wxshop.key'), self.key)
        self.config = '\n'.join([
            '[profile.wxshop]', 'plugin = wechat', 'appid = ' + self.appid,
            'mch_id = ' + self.mch_id, 'api_key_file = keys/wxshop.key',
            'sign_type = MD5', ''])
        self.n = 0

    def notification(self, order_id):
        self.n += 1
        txn = '4200%024d' % (int(hashlib.sha256(
            order_id.encode()).hexdigest()[:18], 16) * 1000 + self.n % 1000)
        f = {
            'appid': self.appid, 'bank_type': 'CFT', 'cash_fee': self.amount,
            'fee_type': 'CNY', 'is_subscribe': 'N', 'mch_id': self.mch_id,
            'nonce_str': os.urandom(16).hex(),
            'openid': 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
            'out_trade_no': order_id, 'result_code': 'SUCCESS',
            'return_code': 'SUCCESS',
            'time_end': datetime.datetime.now(BEIJING).strftime(
                '%Y%m%d%H%M%S'),
            'total_fee': self.amount, 'trade_type': 'JSAPI',
            'transaction_id': txn[:32],
        }
        text = '&'.join('%s=%s' % (k, f[k]) for k in sorted(f))
        f['sign'] = hashlib.md5((text + '&key=' + self.key).encode()
                                ).hexdigest().upper()
        parts = ['<xml>']
        for k, v in f.items():
            v = str(v) if isinstance(v, int) else '<![CDATA[%s]]>' % v
            parts.append('<%s>%s</%s>' % (k, v, k))
        parts.append('</xml>')
        return ('POST', '/notify/wxshop', {'Content-Type': 'text/xml'},
                ''.join(parts).encode())


# ---------------------------------------------------------------------------
# Scenario E: the RSA-verified providers
# ---------------------------------------------------------------------------

def _crypto():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    return hashes, serialization, padding, rsa


def _rsa_key():
    return _crypto()[3].generate_private_key(public_exponent=65537,
                                            key_size=2048)


def _pem_public(key):
    _, ser, _, _ = _crypto()
    return key.public_key().public_bytes(
        ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)


def _pem_private(key):
    _, ser, _, _ = _crypto()
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                             ser.NoEncryption())


def _sign(key, data):
    hashes, _, padding, _ = _crypto()
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _openssl(args, cwd):
    r = subprocess.run(['openssl'] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError('openssl %s: %s' % (args[0], r.stderr.decode()))


class UnionPay(Provider):
    """ACP 5.1.0 backend notification: a form signed with RSA-SHA256 over
    the hex SHA-256 of the canonical string, UnionPay's certificate in the
    message, checked against a test root and intermediate made here."""
    name, tag, profile = 'unionpay', 'up', 'upshop'
    mer_id = '777290058110048'
    ok_body = b'ok'
    signer_cn = '\u4e2d\u56fd\u94f6\u8054\u80a1\u4efd\u6709\u9650\u516c\u53f8'

    def __init__(self, etc):
        from cryptography.hazmat.primitives import serialization
        d = os.path.join(etc, 'unionpay')
        os.makedirs(d, exist_ok=True)
        write_file(os.path.join(d, 'ca.ext'),
                   'basicConstraints=critical,CA:TRUE\n'
                   'keyUsage=critical,keyCertSign,cRLSign\n', 0o644)
        write_file(os.path.join(d, 'leaf.ext'),
                   'keyUsage=critical,digitalSignature,nonRepudiation\n',
                   0o644)
        _openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                  'root.key', '-out', 'root.pem', '-subj',
                  '/C=CN/O=Bench UnionPay/CN=Bench UnionPay Root', '-days',
                  '30', '-sha256', '-addext',
                  'basicConstraints=critical,CA:TRUE', '-addext',
                  'keyUsage=critical,keyCertSign,cRLSign'], d)
        _openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout',
                  'middle.key', '-out', 'middle.csr', '-subj',
                  '/C=CN/O=Bench UnionPay/CN=Bench UnionPay Middle'], d)
        _openssl(['x509', '-req', '-in', 'middle.csr', '-CA', 'root.pem',
                  '-CAkey', 'root.key', '-set_serial', '2', '-days', '30',
                  '-sha256', '-extfile', 'ca.ext', '-out', 'middle.pem'], d)
        _openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt',
                  'rsa_keygen_bits:2048', '-out', 'leaf.key'], d)
        _openssl(['req', '-new', '-key', 'leaf.key', '-utf8', '-out',
                  'leaf.csr', '-subj', '/C=CN/O=China UnionPay/CN=041@Z12@%s'
                  '@00000001' % self.signer_cn], d)
        _openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'middle.pem',
                  '-CAkey', 'middle.key', '-set_serial', '69026276696',
                  '-days', '30', '-sha256', '-extfile', 'leaf.ext', '-out',
                  'leaf.pem'], d)
        with open(os.path.join(d, 'leaf.key'), 'rb') as fh:
            self.key = serialization.load_pem_private_key(fh.read(), None)
        with open(os.path.join(d, 'leaf.pem')) as fh:
            self.cert = fh.read()
        self.config = '\n'.join([
            '[profile.upshop]', 'plugin = unionpay',
            'mer_id = ' + self.mer_id,
            'root_cert_file = unionpay/root.pem',
            'middle_cert_file = unionpay/middle.pem', ''])
        self.n = 0

    def notification(self, order_id):
        from urllib.parse import quote_plus
        self.n += 1
        now = datetime.datetime.now(BEIJING)
        f = {
            'accessType': '0', 'bizType': '000201', 'currencyCode': '156',
            'encoding': 'UTF-8', 'merId': self.mer_id, 'orderId': order_id,
            'queryId': '7826%017d' % (int.from_bytes(os.urandom(5), 'big') *
                                      1000 + self.n % 1000),
            'respCode': '00', 'respMsg': 'Success!',
            'settleAmt': str(self.amount), 'settleCurrencyCode': '156',
            'settleDate': now.strftime('%m%d'), 'signMethod': '01',
            'signPubKeyCert': self.cert, 'traceNo': '%06d' % (self.n % 10**6),
            'traceTime': now.strftime('%m%d%H%M%S'),
            'txnAmt': str(self.amount), 'txnSubType': '01',
            'txnTime': now.strftime('%Y%m%d%H%M%S'), 'txnType': '01',
            'version': '5.1.0',
        }
        text = '&'.join('%s=%s' % (k, f[k]) for k in sorted(f))
        digest = hashlib.sha256(text.encode()).hexdigest().encode()
        f['signature'] = base64.b64encode(_sign(self.key, digest)).decode()
        body = '&'.join('%s=%s' % (quote_plus(k, safe=''),
                                   quote_plus(v, safe=''))
                        for k, v in f.items()).encode()
        return ('POST', '/notify/upshop', {
            'Content-Type': 'application/x-www-form-urlencoded'}, body)


class WeChatV3(Provider):
    """WeChat Pay API v3: JSON envelope, the transaction sealed with
    AES-256-GCM under the APIv3 key, RSA-SHA256 Wechatpay-* headers from a
    platform certificate made here."""
    name, tag, profile = 'wechat-v3', 'w3', 'wxv3'
    appid, mchid = 'wxd678efh567hg6787', '1230000109'
    apiv3_key = 'V3benchKey0123456789abcdefABCDEF'
    ok_status, ok_body = 204, None

    def __init__(self, etc):
        from cryptography import x509
        from cryptography.x509.oid import NameOID
        hashes, ser, _, _ = _crypto()
        self.key = _rsa_key()
        self.serial = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             'Tenpay.com Root CA (bench)')])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(self.key.public_key())
                .serial_number(self.serial)
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .sign(self.key, hashes.SHA256()))
        write_file(os.path.join(etc, 'wechatpay', 'cert.pem'),
                   cert.public_bytes(ser.Encoding.PEM), 0o644)
        write_file(os.path.join(etc, 'keys', 'wxv3.apiv3'), self.apiv3_key)
        write_file(os.path.join(etc, 'keys', 'wxv3-merchant.key'),
                   _pem_private(_rsa_key()))
        self.config = '\n'.join([
            '[profile.wxv3]', 'plugin = wechat', 'api_version = 3',
            'appid = ' + self.appid, 'mch_id = ' + self.mchid,
            'apiv3_key_file = keys/wxv3.apiv3',
            'platform_cert_files = wechatpay/cert.pem',
            'merchant_private_key_file = keys/wxv3-merchant.key',
            'merchant_serial = 3775B6A45ACD588826D15E583A95F5DD2C3A0F4D',
            ''])
        self.n = 0

    def notification(self, order_id):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self.n += 1
        now = datetime.datetime.now(BEIJING).isoformat(timespec='seconds')
        tx = {
            'mchid': self.mchid, 'appid': self.appid,
            'out_trade_no': order_id,
            'transaction_id': '42000%023d' % (
                int.from_bytes(os.urandom(8), 'big') % 10**20 * 1000 +
                self.n % 1000),
            'trade_type': 'JSAPI', 'trade_state': 'SUCCESS',
            'trade_state_desc': 'OK', 'bank_type': 'CMC', 'attach': '',
            'success_time': now,
            'payer': {'openid': 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o'},
            'amount': {'total': self.amount, 'payer_total': self.amount,
                       'currency': 'CNY', 'payer_currency': 'CNY'},
        }
        nonce = os.urandom(6).hex()
        ct = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), json.dumps(tx, separators=(',', ':')).encode(),
            b'transaction')
        body = json.dumps({
            'id': 'EV-' + os.urandom(8).hex(), 'create_time': now,
            'resource_type': 'encrypt-resource',
            'event_type': 'TRANSACTION.SUCCESS', 'summary': 'OK',
            'resource': {'original_type': 'transaction',
                         'algorithm': 'AEAD_AES_256_GCM',
                         'ciphertext': base64.b64encode(ct).decode(),
                         'associated_data': 'transaction', 'nonce': nonce},
        }, separators=(',', ':')).encode()
        ts = str(int(datetime.datetime.now().timestamp()))
        wnonce = os.urandom(16).hex().upper()
        sig = _sign(self.key, ts.encode() + b'\n' + wnonce.encode() + b'\n' +
                    body + b'\n')
        return ('POST', '/notify/wxv3', {
            'Content-Type': 'application/json',
            'Wechatpay-Timestamp': ts, 'Wechatpay-Nonce': wnonce,
            'Wechatpay-Signature': base64.b64encode(sig).decode(),
            'Wechatpay-Serial': '%X' % self.serial,
            'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048'}, body)


class Aggregator(Provider):
    """A Ping++-style charge.succeeded event, RSA-SHA256 over the raw body
    in X-Pingplusplus-Signature."""
    name, tag, profile = 'aggregator-rsa', 'ag', 'pingxx'
    app = 'app_1Gqj58ynP0mHeX1q'
    ok_body = b'{"ok":true}'

    def __init__(self, etc):
        self.key = _rsa_key()
        write_file(os.path.join(etc, 'pingxx', 'public.pem'),
                   _pem_public(self.key), 0o644)
        write_file(os.path.join(etc, 'keys', 'pingxx.apikey'),
                   'sk_test_ibbTe5jLGCi5rzfH4OqPW9KC\n')
        self.config = '\n'.join([
            '[profile.pingxx]', 'plugin = aggregator', 'signature = rsa',
            'app_id = ' + self.app,
            'webhook_public_key_file = pingxx/public.pem',
            'api_key_file = keys/pingxx.apikey', ''])

    def notification(self, order_id):
        now = int(datetime.datetime.now().timestamp())
        charge = {
            'id': 'ch_' + os.urandom(12).hex(), 'object': 'charge',
            'created': now - 30, 'livemode': True, 'paid': True,
            'refunded': False, 'reversed': False, 'app': self.app,
            'channel': 'wx_pub', 'order_no': order_id,
            'client_ip': '127.0.0.1', 'amount': self.amount,
            'amount_settle': self.amount, 'currency': 'cny',
            'subject': 'Subject', 'body': 'Body', 'extra': {},
            'time_paid': now - 5, 'time_expire': now + 3600,
            'time_settle': None,
            'transaction_no': '4200001234201409186089400000',
            'refunds': {'object': 'list', 'url': '/v1/charges/x/refunds',
                        'has_more': False, 'data': []},
            'amount_refunded': 0, 'failure_code': None, 'failure_msg': None,
            'metadata': {}, 'credential': {}, 'description': None,
        }
        body = json.dumps({
            'id': 'evt_' + os.urandom(12).hex(), 'created': now,
            'livemode': True, 'type': 'charge.succeeded',
            'data': {'object': charge}, 'object': 'event',
            'request': 'iar_qH4y1KbTy5eLGm1uHSTS00s', 'pending_webhooks': 0,
        }, separators=(',', ':')).encode()
        return ('POST', '/notify/pingxx', {
            'Content-Type': 'application/json',
            'X-Pingplusplus-Signature': base64.b64encode(
                _sign(self.key, body)).decode()}, body)


# ---------------------------------------------------------------------------
# Which providers
# ---------------------------------------------------------------------------

def _check(payhook, etc, config_text):
    """payhook check on a configuration holding config_text; ('', True)
    or (its complaint, False)."""
    path = os.path.join(etc, 'probe.conf')
    write_file(path, config_text, 0o644)
    r = subprocess.run([payhook, '-c', path, 'check'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    os.unlink(path)
    return r.stdout.decode('utf-8', 'replace').strip(), r.returncode == 0


# (name, plugin file, class) of scenario E
OPTIONAL = [
    ('unionpay', 'unionpay', UnionPay),
    ('wechat-v3', 'wechat', WeChatV3),
    ('aggregator-rsa', 'aggregator', Aggregator),
]


def providers(etc, plugin_dir, payhook, skip=(), log=print):
    out = [WeChatV2(etc)]
    core = '\n'.join(['[core]', 'db_path = var/probe.mdb',
                      'plugin_dir = %s' % plugin_dir,
                      'api_token_file = keys/api.token', ''])
    for name, plugin, cls in OPTIONAL:
        if name in skip or 'all' in skip:
            log('E %s: left out (--skip)' % name)
            continue
        if not os.path.exists(os.path.join(plugin_dir, plugin + '.so')):
            log('E %s: plugin %s is not built; not measured' % (name,
                                                                 plugin))
            continue
        try:
            prov = cls(etc)
        except Exception as exc:     # a missing tool or package
            log('E %s: cannot make its messages (%s); not measured'
                % (name, exc))
            continue
        msg, ok = _check(payhook, etc, core + prov.config)
        if not ok:
            log('E %s: the plugin refuses the profile; not measured: %s'
                % (name, ' / '.join(msg.splitlines()[-3:]) or '?'))
            continue
        out.append(prov)
    for suffix in ('', '-lock'):
        try:
            os.unlink(os.path.join(etc, 'var', 'probe.mdb' + suffix))
        except FileNotFoundError:
            pass
    return out
