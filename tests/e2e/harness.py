"""Shared support for payhook's end-to-end tests.

Every test file imports this module and calls ``harness.run(main)``.  The
harness gives a test:

* ``Tap``: TAP output for automake's tap-driver (``ok N - name``,
  ``not ok N - name``, ``# diag`` lines, the plan ``1..N`` at the end, or
  ``1..0 # SKIP reason`` for the whole file);
* ``Instance``: a temporary directory holding a payhook configuration, key
  files (mode 0600), the API token and the LMDB file;
* ``Server``: a real lighttpd (``lighttpd -D``) on a free 127.0.0.1 port that
  spawns two or more ``payhook.fcgi`` processes through mod_fastcgi; it is
  stopped by pid at exit and on failure, and its error log and its
  standard error (where payhook.fcgi's lines go, lighttpd-stdout.log) are
  copied into the TAP output as ``#`` lines whenever a check fails;
* WeChat Pay v2 helpers computed here, independently of payhook's code:
  ``sign_v2``, ``notify_xml``, ``make_payment``;
* merchant API helpers: ``api``, ``create_order``, ``get_order``, ``events``.

Environment (set by ``make check``): top_srcdir, top_builddir, PYTHON3,
LIGHTTPD (a path, or "no").  Run by hand from the source tree after a build:
``tests/e2e/run-python tests/e2e/test_api.py``.  Set PAYHOOK_E2E_KEEP=1 to keep
the temporary directories for inspection.

Only the standard library is used, and nothing talks to any address other
than 127.0.0.1.
"""

import base64
import concurrent.futures
import datetime
import glob
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.abspath(os.environ.get('top_srcdir')
                             or os.path.join(HERE, '..', '..'))
TOP_BUILDDIR = os.path.abspath(os.environ.get('top_builddir') or TOP_SRCDIR)
PAYHOOK = os.path.join(TOP_BUILDDIR, 'payhook')
PAYHOOK_FCGI = os.path.join(TOP_BUILDDIR, 'payhook.fcgi')


def built_with_asan(prog=PAYHOOK):
    """True when prog is built with AddressSanitizer, whose quarantine
    keeps freed memory resident: its RSS is not the program's own."""
    try:
        with open(prog, 'rb') as fh:
            return b'__asan_init' in fh.read()
    except OSError:
        return False
PLUGIN_DIR = os.path.join(TOP_BUILDDIR, 'providers', '.libs')
CASES_DIR = os.path.join(HERE, 'cases')

# The provider simulator signs and writes bills by the providers' rules;
# the tests sign and write theirs with the same code.
sys.path.insert(0, os.path.join(TOP_SRCDIR, 'tests', 'sim'))
import provsim  # noqa: E402

HOST = '127.0.0.1'

SUCCESS_ACK = (b'<xml><return_code><![CDATA[SUCCESS]]></return_code>'
               b'<return_msg><![CDATA[OK]]></return_msg></xml>')
FAIL_ACK_RE = re.compile(
    rb'\A<xml><return_code><!\[CDATA\[FAIL\]\]></return_code>'
    rb'<return_msg><!\[CDATA\[(.+?)\]\]></return_msg></xml>\Z', re.S)
RFC3339_UTC_RE = re.compile(
    r'\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z\Z')

# The profiles every instance is configured with.  Keys are exactly 32
# characters; wxshop uses the key of WeChat's published signing example.
PROFILES = {
    'wxshop': {
        'plugin': 'wechat',
        'appid': 'wx2421b1c4370ec43b',
        'mch_id': '10000100',
        'key': '192006250b4c09247ec02edce69f6a2d',
        'sign_type': 'MD5',
    },
    'wxhmac': {
        'plugin': 'wechat',
        'appid': 'wxd930ea5d5a258f4f',
        'mch_id': '10000200',
        'key': 'Hm4cK3yE2eTestKeyForSha256Prof1x',
        'sign_type': 'HMAC-SHA256',
    },
}
assert all(len(p['key']) == 32 for p in PROFILES.values())

# The secret events are pushed with (Instance(push_port=...)).
PUSH_SECRET = 'push-secret-' + os.urandom(8).hex()

# A sweeper that gives up soon: short leases and provider timeouts.
QUICK_SWEEP = {'lease_s': '5', 'http_timeout_s': '3',
               'http_connect_timeout_s': '2'}

ORDER_KEYS = {'order_id', 'profile', 'amount', 'currency', 'state',
              'created_at', 'updated_at', 'paid_at', 'provider_txn_id',
              'exceptions'}


def lighttpd_path():
    """The lighttpd binary to use, or None when there is none."""
    env = os.environ.get('LIGHTTPD')
    if env == 'no':
        return None
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which('lighttpd')
    if found:
        return found
    for cand in ('/usr/sbin/lighttpd', '/usr/local/sbin/lighttpd'):
        if os.access(cand, os.X_OK):
            return cand
    return None


# ---------------------------------------------------------------------------
# TAP
# ---------------------------------------------------------------------------

class Tap:
    """A TAP producer: one check = one test point, plan printed at the end."""

    def __init__(self):
        self.count = 0
        self.failed = 0
        self.fail_hooks = []        # run after a failed check
        self.mark_hooks = []        # run after every check
        self.skipped = False        # the plan was printed by skip_all
        self._lock = threading.Lock()

    @staticmethod
    def _clean(name):
        # '#' would start a TAP directive; keep a name on one line.
        return ' '.join(str(name).replace('#', 'no.').split())

    def _out(self, line):
        sys.stdout.write(line + '\n')
        sys.stdout.flush()

    def diag(self, msg):
        text = str(msg)
        for line in text.splitlines() or ['']:
            self._out('# ' + line)

    def ok(self, cond, name, *diags):
        with self._lock:
            self.count += 1
            self._out('%sok %d - %s' % ('' if cond else 'not ', self.count,
                                        self._clean(name)))
            if not cond:
                self.failed += 1
                for d in diags:
                    self.diag(d)
                for hook in list(self.fail_hooks):
                    try:
                        hook()
                    except Exception as exc:  # never let a hook hide a result
                        self.diag('(fail hook raised %r)' % exc)
            for hook in list(self.mark_hooks):
                try:
                    hook()
                except Exception as exc:
                    self.diag('(mark hook raised %r)' % exc)
        return bool(cond)

    def is_(self, got, want, name, *diags):
        return self.ok(got == want, name, 'got:  %s' % _short(got),
                       'want: %s' % _short(want), *diags)

    def like(self, got, regex, name, *diags):
        good = isinstance(got, (str, bytes)) and re.search(regex, got) is not None
        return self.ok(good, name, 'got:  %s' % _short(got),
                       'want: match %r' % (regex,), *diags)

    def skip(self, name, reason):
        """One point not run here, and why (TAP's # SKIP)."""
        with self._lock:
            self.count += 1
            self._out('ok %d - %s # SKIP %s' % (self.count, self._clean(name),
                                              self._clean(reason)))

    def skip_all(self, reason):
        self._out('1..0 # SKIP %s' % self._clean(reason))
        self.skipped = True
        sys.exit(0)

    def bail(self, reason):
        self._out('Bail out! %s' % self._clean(reason))

    def done(self):
        # skip_all from a test's main() exits through run(), which ends
        # here: one plan only.
        if self.skipped:
            return 0
        self._out('1..%d' % self.count)
        return 1 if self.failed else 0


def _short(value, limit=600):
    if isinstance(value, bytes):
        text = repr(value)
    elif isinstance(value, (dict, list)):
        try:
            text = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = repr(value)
    if len(text) > limit:
        text = text[:limit] + '... (%d chars)' % len(text)
    return text


# ---------------------------------------------------------------------------
# WeChat Pay v2, computed here (never by payhook's code)
# ---------------------------------------------------------------------------

def _pairs(fields):
    if isinstance(fields, dict):
        return list(fields.items())
    return [tuple(p) for p in fields]


def sign_v2(fields, key, sign_type='MD5'):
    """WeChat v2 signature: every non-empty field but `sign`, sorted by name
    (bytewise), `k=v` joined by `&`, then `&key=KEY`; MD5 or HMAC-SHA256,
    upper-case hex."""
    return provsim.WeChatV2.sign([(str(k), str(v)) for k, v in
                                  _pairs(fields) if v is not None],
                                 key, sign_type)


def _cdata(value):
    return '<![CDATA[' + value.replace(']]>', ']]]]><![CDATA[>') + ']]>'


def _xml_escape(value):
    return (value.replace('&', '&amp;').replace('<', '&lt;')
            .replace('>', '&gt;'))


def notify_xml(fields, cdata=True):
    """The notification body: `<xml>` with one element per field; Python
    ints are written bare, strings in CDATA (or escaped text when
    cdata=False).  `fields` is a dict or a list of (name, value) pairs (a
    list may repeat a name)."""
    parts = ['<xml>']
    for k, v in _pairs(fields):
        if isinstance(v, int) and not isinstance(v, bool):
            text = str(v)
        elif cdata:
            text = _cdata(str(v))
        else:
            text = _xml_escape(str(v))
        parts.append('<%s>%s</%s>' % (k, text, k))
    parts.append('</xml>')
    return ''.join(parts).encode('utf-8')


def aes_ecb_encrypt(key, plain):
    """AES-256-ECB with PKCS#7 padding (python3-cryptography)."""
    from cryptography.hazmat.primitives.ciphers import (Cipher, algorithms,
                                                        modes)
    pad = 16 - len(plain) % 16
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(plain + bytes([pad]) * pad) + enc.finalize()


def req_info(api_key, plain):
    """base64(AES-256-ECB(PKCS#7(plain))) under the 32 ASCII bytes of the
    lower-hex MD5 of the APIv2 key, as WeChat encrypts refund results."""
    key = hashlib.md5(api_key.encode('utf-8')).hexdigest().encode('ascii')
    return base64.b64encode(aes_ecb_encrypt(key, plain)).decode('ascii')


def wechat_refund_notification(prof, out_refund_no, order_id, txn,
                               refund_fee, total_fee, status,
                               refund_id=None):
    """A WeChat v2 refund result notification made with `prof`'s key:
    unsigned outer XML with the profile's appid and mch_id, the facts in
    req_info (a <root> document)."""
    inner = [('out_refund_no', out_refund_no),
             ('out_trade_no', order_id),
             ('refund_account', 'REFUND_SOURCE_RECHARGE_FUNDS'),
             ('refund_fee', str(refund_fee)),
             ('refund_id', refund_id or '50300' + txn_id('refund')[4:27]),
             ('refund_recv_accout', '支付用户零钱'),
             ('refund_request_source', 'API'),
             ('refund_status', status),
             ('settlement_refund_fee', str(refund_fee)),
             ('settlement_total_fee', str(total_fee)),
             ('total_fee', str(total_fee)),
             ('transaction_id', txn)]
    if status == 'SUCCESS':
        inner.append(('success_time', datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8)))
                      .strftime('%Y-%m-%d %H:%M:%S')))
    plain = notify_xml(inner)
    plain = b'<root>' + plain[len(b'<xml>'):-len(b'</xml>')] + b'</root>'
    outer = [('return_code', 'SUCCESS'),
             ('appid', prof['appid']),
             ('mch_id', prof['mch_id']),
             ('nonce_str', nonce()),
             ('req_info', req_info(prof['key'], plain))]
    return notify_xml(outer)



def beijing_time_end(when=None):
    """`time_end` format: yyyyMMddHHmmss, Beijing time (UTC+8)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    return (when + datetime.timedelta(hours=8)).strftime('%Y%m%d%H%M%S')


def libfaketime():
    """The preloadable libfaketime of Debian's `faketime` package, or
    None."""
    env = os.environ.get('LIBFAKETIME')
    if env:
        return env if os.path.exists(env) else None
    for pat in ('/usr/lib/*/faketime/libfaketime.so.1',
                '/usr/lib/faketime/libfaketime.so.1',
                '/usr/local/lib/faketime/libfaketime.so.1'):
        found = sorted(glob.glob(pat))
        if found:
            return found[0]
    return None


def nonce():
    return os.urandom(16).hex()[:32]


_DEFAULT = object()


def make_payment(order_id, amount, txn_id, profile='wxshop', currency='CNY',
                 result_code='SUCCESS', sign_type=None, key=None,
                 sign_type_field=_DEFAULT, extra=None, omit=(), sign=True,
                 profiles=None, **overrides):
    """The fields of a WeChat v2 payment notification, signed.

    sign_type: the algorithm used (default: the profile's).
    sign_type_field: the value of the `sign_type` field; by default
        "HMAC-SHA256" when signing with HMAC and absent for MD5; None = absent.
    extra: more fields (added before signing); omit: fields to leave out;
    overrides: replace field values (before signing).
    Returns an insertion-ordered dict ending with `sign`."""
    prof = (profiles or PROFILES)[profile]
    sign_type = sign_type or prof['sign_type']
    key = key or prof['key']
    if sign_type_field is _DEFAULT:
        sign_type_field = 'HMAC-SHA256' if sign_type == 'HMAC-SHA256' else None
    f = {
        'return_code': 'SUCCESS',
        'appid': prof['appid'],
        'mch_id': prof['mch_id'],
        'nonce_str': nonce(),
    }
    if sign_type_field is not None:
        f['sign_type'] = sign_type_field
    f['result_code'] = result_code
    if result_code != 'SUCCESS':
        f['err_code'] = 'SYSTEMERROR'
        f['err_code_des'] = 'payment failed'
    f.update({
        'openid': 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
        'is_subscribe': 'N',
        'trade_type': 'JSAPI',
        'bank_type': 'CFT',
        'total_fee': amount,
        'fee_type': currency,
        'cash_fee': amount,
        'transaction_id': txn_id,
        'out_trade_no': order_id,
        'time_end': beijing_time_end(),
    })
    if extra:
        f.update(extra)
    f.update(overrides)
    for name in omit:
        f.pop(name, None)
    if sign:
        f['sign'] = sign_v2(f, key, sign_type)
    return f


def txn_id(tag):
    """A 28-32 digit WeChat-looking transaction id, unique per call."""
    global _TXN_SEQ
    with _TXN_LOCK:
        _TXN_SEQ += 1
        seq = _TXN_SEQ
    digest = hashlib.sha256(('%s/%d/%f' % (tag, seq, time.time()))
                            .encode()).hexdigest()
    return '4200' + str(int(digest[:20], 16))[:24].rjust(24, '0')


_TXN_SEQ = 0
_TXN_LOCK = threading.Lock()


# ---------------------------------------------------------------------------
# UnionPay (ACP), computed here (never by payhook's code)
# ---------------------------------------------------------------------------

UP_SIGNER_CN = '\u4e2d\u56fd\u94f6\u8054\u80a1\u4efd\u6709\u9650\u516c\u53f8'


def _up_bytes(value):
    return value if isinstance(value, bytes) else str(value).encode('utf-8')


def unionpay_sign_string(fields, skip_empty=False):
    """The ACP canonical string (bytes): every field but `signature`
    (empty values too, as the SDK validates a query answer; skip_empty for
    requests and notifications, as the SDK's filterBlank signs them),
    names sorted bytewise, `k=v` joined by `&`, values as their bytes
    (bytes values are taken as they are, e.g. GBK)."""
    items = [(str(k).encode('ascii'), _up_bytes(v))
             for k, v in _pairs(fields)
             if k != 'signature' and not (skip_empty and _up_bytes(v) == b'')]
    items.sort(key=lambda kv: kv[0])
    return b'&'.join(k + b'=' + v for k, v in items)


def unionpay_digest_hex(fields, version='5.1.0', skip_empty=True):
    """What UnionPay's RSA signature covers: the lowercase hex text of the
    SHA-256 (5.1.0) or SHA-1 (5.0.0) of the canonical string; a
    notification's without its empty fields (skip_empty), a query
    answer's with them."""
    alg = hashlib.sha1 if version == '5.0.0' else hashlib.sha256
    return alg(unionpay_sign_string(fields, skip_empty)).hexdigest() \
        .encode('ascii')


def unionpay_form(fields):
    """A form body (bytes): each name and value percent-encoded (a space
    as '+'), in the given order; a list may repeat a name."""
    from urllib.parse import quote_plus
    return '&'.join('%s=%s' % (quote_plus(_up_bytes(k), safe=''),
                               quote_plus(_up_bytes(v), safe=''))
                    for k, v in _pairs(fields)).encode('ascii')


def _openssl(args, cwd):
    r = subprocess.run(['openssl'] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError('openssl %s: %s' % (' '.join(args),
                                               r.stderr.decode('utf-8',
                                                               'replace')))


def unionpay_test_pki(d, signer_cn=UP_SIGNER_CN):
    """A test PKI made with the `openssl` command in directory d: a root
    and an intermediate (root.pem, middle.pem), UnionPay's signing
    certificate leaf.pem (CN 041@Z12@<signer_cn>@00000001, serial
    69026276696, key leaf.key) and, with the same key, othercn.pem (right
    chain, another company) and foreign.pem (right CN, under another root
    and intermediate of the same names).  Returns {name: path}."""
    def ext(name, text):
        with open(os.path.join(d, name), 'w') as fh:
            fh.write(text)
    ext('ca.ext', 'basicConstraints=critical,CA:TRUE\n'
                  'keyUsage=critical,keyCertSign,cRLSign\n')
    ext('leaf.ext', 'keyUsage=critical,digitalSignature,nonRepudiation\n')
    root_subj = '/C=CN/O=Test UnionPay/CN=Test UnionPay Root'
    mid_subj = '/C=CN/O=Test UnionPay/CN=Test UnionPay Middle'
    for tag in ('', 'x'):
        _openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                  '-keyout', tag + 'root.key', '-out', tag + 'root.pem',
                  '-subj', root_subj, '-days', '3650', '-sha256',
                  '-addext', 'basicConstraints=critical,CA:TRUE',
                  '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d)
        _openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes',
                  '-keyout', tag + 'middle.key', '-out', tag + 'middle.csr',
                  '-subj', mid_subj], d)
        _openssl(['x509', '-req', '-in', tag + 'middle.csr', '-CA',
                  tag + 'root.pem', '-CAkey', tag + 'root.key',
                  '-set_serial', '2', '-days', '3000', '-sha256',
                  '-extfile', 'ca.ext', '-out', tag + 'middle.pem'], d)
    _openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt',
              'rsa_keygen_bits:2048', '-out', 'leaf.key'], d)
    for name, cn, serial, tag in (
            ('leaf', signer_cn, '69026276696', ''),
            ('othercn', '\u67d0\u5546\u6237\u6709\u9650\u516c\u53f8', '11', ''),
            ('foreign', signer_cn, '12', 'x')):
        _openssl(['req', '-new', '-key', 'leaf.key', '-utf8', '-out',
                  name + '.csr', '-subj',
                  '/C=CN/O=China UnionPay/CN=041@Z12@%s@00000001' % cn], d)
        _openssl(['x509', '-req', '-in', name + '.csr', '-CA',
                  tag + 'middle.pem', '-CAkey', tag + 'middle.key',
                  '-set_serial', serial, '-days', '700', '-sha256',
                  '-extfile', 'leaf.ext', '-out', name + '.pem'], d)
    names = ('root.pem', 'middle.pem', 'root.key', 'middle.key', 'leaf.key',
             'leaf.pem', 'othercn.pem', 'foreign.pem')
    return {n: os.path.join(d, n) for n in names}


def unionpay_merchant_cert(d, days,
                           subject='/C=CN/CN=041@Z12@Test Merchant@00000004'):
    """The merchant's signing key and self-signed certificate (subject
    CN 041@Z12@Test Merchant@00000004 unless given, UTF-8; serial
    68759529225, valid for `days` days), made with the `openssl` command
    in directory d as mer.key and mer.pem.  Returns (key path,
    certificate path)."""
    _openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-utf8',
              '-keyout', 'mer.key', '-out', 'mer.pem', '-subj', subject,
              '-days', str(days), '-set_serial', '68759529225'], d)
    return os.path.join(d, 'mer.key'), os.path.join(d, 'mer.pem')


def unionpay_profile(mer_id, pki, sign_key, sign_cert, verify=False,
                     api_base=None):
    """A profile entry for Instance(profiles=...) with plugin = unionpay:
    the test PKI's root and intermediate (with verify, its signing
    certificate as verify_cert_files), the merchant's key and certificate
    (paths of files) as files below etc/ and, with api_base, the loopback
    UnionPay it calls (allow_insecure_http)."""
    settings = {'mer_id': mer_id,
                'root_cert_file': 'unionpay/root.pem',
                'middle_cert_file': 'unionpay/middle.pem'}
    files = {'unionpay/root.pem': (read_bytes(pki['root.pem']), 0o644),
             'unionpay/middle.pem': (read_bytes(pki['middle.pem']), 0o644)}
    if verify:
        settings['verify_cert_files'] = 'unionpay/verify.pem'
        files['unionpay/verify.pem'] = (read_bytes(pki['leaf.pem']), 0o644)
    settings['sign_key_file'] = 'keys/upshop-sign.key'
    settings['sign_cert_file'] = 'unionpay/sign.pem'
    files['unionpay/sign.pem'] = (read_bytes(sign_cert), 0o644)
    files['keys/upshop-sign.key'] = (read_bytes(sign_key), 0o600)
    if api_base is not None:
        settings['api_base'] = api_base
        settings['allow_insecure_http'] = 'yes'
    return {'plugin': 'unionpay', 'settings': settings, 'files': files}


def read_bytes(path):
    with open(path, 'rb') as fh:
        return fh.read()


# ---------------------------------------------------------------------------
# Keys and certificates made with python3's cryptography package (imported
# only by the tests that need it)
# ---------------------------------------------------------------------------

NO_CRYPTOGRAPHY = ('python3 cryptography not installed '
                   '(Debian package python3-cryptography)')


def have_cryptography():
    """Whether python3's cryptography package is installed."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


def need_cryptography():
    """Skips the whole test file (a TAP plan 1..0, exit 0) when python3's
    cryptography package is not installed; for a file that imports it
    itself, called before that import."""
    if not have_cryptography():
        print('1..0 # SKIP ' + NO_CRYPTOGRAPHY)
        sys.exit(0)


def rsa_key():
    """A new 2048-bit RSA key."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pub_pem(key):
    """The public half of a private key: SubjectPublicKeyInfo PEM."""
    from cryptography.hazmat.primitives import serialization
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def priv_pem(key):
    """A private key as unencrypted PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def rsa_sign(key, data):
    """key's RSA signature of data, SHA-256 with PKCS#1 v1.5 padding (the
    simulator's)."""
    return provsim.KeyedProvider.rsa_sign(key, data)


def rsa_verifies(pub, sig_b64, data):
    """Whether sig_b64 (base64 text) is the RSA signature of data by the
    private half of pub, SHA-256 with PKCS#1 v1.5 padding."""
    try:
        sig = base64.b64decode(sig_b64, validate=True)
    except ValueError:
        return False
    return provsim.KeyedProvider.rsa_ok(pub, sig, data)


def self_signed_pem(key, serial, cn):
    """A self-signed certificate (PEM) of key with the common name cn,
    valid from yesterday for a year."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365))
         .sign(key, hashes.SHA256()))
    return c.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------
# Alipay, computed here (never by payhook's code)
# ---------------------------------------------------------------------------

def alipay_sign_string(fields, skip=('sign', 'sign_type'), skip_empty=False):
    """What Alipay's RSA2 sign covers (bytes): every field but `skip`
    (notifications: sign and sign_type, empty values kept; requests:
    skip=('sign',), skip_empty=True), names sorted bytewise, `k=v` joined
    by `&`, values as their UTF-8 bytes."""
    items = [(str(k).encode('ascii'), _up_bytes(v))
             for k, v in _pairs(fields)
             if k not in skip and not (skip_empty and _up_bytes(v) == b'')]
    items.sort(key=lambda kv: kv[0])
    return b'&'.join(k + b'=' + v for k, v in items)


def alipay_profile(app_id, seller_id, alipay_public_pem, app_private_pem=None,
                   api_base=None, name='alishop'):
    """A profile entry for Instance(profiles=...) with plugin = alipay:
    the keys as files below etc/ (the app key mode 0600) and, with
    api_base, the loopback Alipay it calls (allow_insecure_http)."""
    settings = {'app_id': app_id, 'seller_id': seller_id,
                'alipay_public_key_file': 'alipay/%s-alipay.pem' % name}
    files = {settings['alipay_public_key_file']: (alipay_public_pem, 0o644)}
    if app_private_pem is not None:
        settings['app_private_key_file'] = 'keys/%s-app.key' % name
        files[settings['app_private_key_file']] = (app_private_pem, 0o600)
    if api_base is not None:
        settings['api_base'] = api_base
        settings['allow_insecure_http'] = 'yes'
    return {'plugin': 'alipay', 'settings': settings, 'files': files}


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body, error=None):
        self.status = status
        self.headers = headers          # lower-case names
        self.body = body                # bytes
        self.error = error              # exception text when no answer
        self._json = _DEFAULT

    @property
    def json(self):
        """The decoded JSON body, or None when it is not JSON."""
        if self._json is _DEFAULT:
            try:
                self._json = json.loads(self.body.decode('utf-8'))
            except (ValueError, UnicodeDecodeError):
                self._json = None
        return self._json

    @property
    def content_type(self):
        return self.headers.get('content-type', '')

    def describe(self):
        if self.error:
            return 'no answer: %s' % self.error
        return 'HTTP %s %s body=%s' % (self.status, self.content_type,
                                        _short(self.body, 400))

    def __repr__(self):
        return '<Response %s>' % self.describe()


def http_request(port, method, path, body=None, headers=None, timeout=60):
    if isinstance(body, str):
        body = body.encode('utf-8')
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return Response(resp.status, hdrs, data)
    except (OSError, http.client.HTTPException) as exc:
        return Response(None, {}, b'', error='%s: %s' % (type(exc).__name__, exc))
    finally:
        conn.close()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class MockServer:
    """A loopback provider API: an HTTP server on a free 127.0.0.1 port,
    on its own thread, that hands each request of the methods in
    `methods` to self.handle(h, body) (h: the request handler; body: the
    request's bytes, b'' without one); other methods get 501.
    connections counts the connections it accepted, requests or not (a
    TLS handshake is no request)."""

    methods = ('GET', 'POST')

    def __init__(self):
        self.requests = []
        self.connections = 0
        mock = self

        class Server(http.server.HTTPServer):
            def verify_request(self, request, client_address):
                mock.connections += 1
                return True

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                mock._serve(self)

            do_POST = do_GET

        self.httpd = Server((HOST, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def _serve(self, h):
        if h.command not in self.methods:
            h.send_error(501, 'Unsupported method (%r)' % h.command)
            return
        n = int(h.headers.get('Content-Length') or '0')
        self.handle(h, h.rfile.read(n) if n else b'')

    def handle(self, h, body):
        raise NotImplementedError

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class LoopbackListener:
    """A TCP listener on 127.0.0.1 that records every connection it gets:
    used to prove that an XML external entity was never fetched."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


# ---------------------------------------------------------------------------
# Instances: config, keys, token, LMDB, and the lighttpd in front
# ---------------------------------------------------------------------------

_LIVE = []          # every Instance created, cleaned up at exit

# PAYHOOK_E2E_STORE=postgresql (tools/run-tests sets it for a second pass
# of the suite): every Instance keeps its records in a database of its own
# on one private PostgreSQL cluster (pgcluster.py), made with the first
# Instance and stopped at exit; its tables are made by `payhook check` as
# soon as the Instance is written.  A file that tests what only the LMDB
# store has calls lmdb_only(tap, why) first.
E2E_STORE = os.environ.get('PAYHOOK_E2E_STORE') or 'lmdb'
_PG = {'cluster': None, 'n': 0}


def pg_database(name):
    """A new database on the suite's cluster: (its name, its libpq
    conninfo)."""
    import pgcluster
    if _PG['cluster'] is None:
        why = pgcluster.available()
        if why:
            raise StartError('PAYHOOK_E2E_STORE=postgresql: ' + why)
        _PG['cluster'] = pgcluster.Cluster(None, 'e2e').init().start()
    _PG['n'] += 1
    db = ('e2e_%d_%s' % (_PG['n'], re.sub(r'\W', '_', name)))[:60]
    _PG['cluster'].createdb(db)
    return db, _PG['cluster'].conninfo(dbname=db)


def lmdb_only(tap, why):
    """Skips the whole file when the suite runs on PostgreSQL."""
    if E2E_STORE != 'lmdb':
        tap.skip_all('tests the LMDB store only: ' + why)


def config_text(core, profiles, extra=''):
    """INI text for payhook: `core` and each profile are ordered dicts."""
    lines = ['; payhook end-to-end test configuration', '[core]']
    lines += ['%s = %s' % kv for kv in core.items()]
    for name, settings in profiles.items():
        lines += ['', '[profile.%s]' % name]
        lines += ['%s = %s' % kv for kv in settings.items()]
    return '\n'.join(lines) + '\n' + extra


def relay(src, dst, gate=None, up=False):
    """Copies what src sends to dst until src ends or either fails, then
    shuts both down (so the other direction's relay ends too).  With gate
    (a UnixProxy), each piece waits while the gate is frozen, and one
    going up (client to server) is shown to it."""
    try:
        while True:
            data = src.recv(65536)
            while gate is not None and gate.frozen:
                time.sleep(0.05)
            if not data:
                break
            dst.sendall(data)
            if gate is not None and up:
                gate.passed(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class UnixProxy:
    """TCP on (addr, a free port) to the Unix socket sock_path, a thread
    per direction.  freeze_after(marker): once a piece holding marker has
    gone up, the proxy goes silent both ways, closing nothing (a host cut
    off, a proxy that stalled), until thaw()."""

    def __init__(self, sock_path, addr=HOST):
        self.sock_path = sock_path
        self.ls = socket.socket()
        self.ls.bind((addr, 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.marker, self.frozen = None, False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.ls.accept()
                b = socket.socket(socket.AF_UNIX)
                b.connect(self.sock_path)
            except OSError:
                if self.ls.fileno() < 0:
                    return
                continue
            for src, dst, up in ((a, b, True), (b, a, False)):
                threading.Thread(target=relay, args=(src, dst, self, up),
                                 daemon=True).start()

    def freeze_after(self, marker):
        self.marker = marker

    def passed(self, data):
        if self.marker is not None and self.marker in data:
            self.frozen = True

    def thaw(self):
        self.marker, self.frozen = None, False

    def close(self):
        self.thaw()
        self.ls.close()


def write_file(path, data, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode('utf-8')
    with open(path, 'wb') as fh:
        fh.write(data)
    os.chmod(path, mode)


class Instance:
    """One payhook installation in a temporary directory:

        DIR/etc/payhook.conf       the config (PAYHOOK_CONFIG / -c)
        DIR/etc/keys/api.token     bearer token, mode 0600
        DIR/etc/keys/<profile>.key API keys, mode 0600
        DIR/etc/var/payhook.mdb    the LMDB file (db_path = var/payhook.mdb)
        DIR/lighttpd.conf, DIR/lighttpd-error.log, DIR/run/ (sockets)

    core: [core] keys set over the defaults; profile: keys set in every
    profile; files: more files below etc/, {path: (data, mode)};
    push_port: events are pushed to http://127.0.0.1:<push_port>/hook,
    signed with PUSH_SECRET ([push.erp]).
    """

    def __init__(self, tap, name='main', base_path=None, max_body_bytes=65536,
                 max_procs=2, profiles=None, log_level='info', core=None,
                 profile=None, files=None, push_port=None):
        self.tap = tap
        self.name = name
        self.base_path = base_path
        self.max_body_bytes = max_body_bytes
        self.max_procs = max_procs
        self.profiles = profiles or PROFILES
        self.log_level = log_level
        self.core_extra = dict(core or {})          # more [core] keys
        self.profile_extra = dict(profile or {})    # in every profile
        self.files = dict(files or {})   # {path below etc/: (data, mode)}
        self.push_port = push_port
        tmp = tempfile.gettempdir()
        if len(tmp) > 40:       # unix socket paths are short
            tmp = '/tmp'
        self.dir = tempfile.mkdtemp(prefix='payhook-e2e-%s-' % name, dir=tmp)
        self.etc = os.path.join(self.dir, 'etc')
        self.config = os.path.join(self.etc, 'payhook.conf')
        self.db = os.path.join(self.etc, 'var', 'payhook.mdb')
        self.token = 'e2e-' + os.urandom(18).hex()
        self.server = None
        _LIVE.append(self)
        pg = E2E_STORE == 'postgresql' and 'store' not in self.core_extra
        self.pg_dbname = None       # the suite's database, on PostgreSQL
        if pg:
            self.core_extra['store'] = 'postgresql'
            self.pg_dbname, self.core_extra['pg_conninfo'] = pg_database(
                name)
        self.write()
        if pg:
            # What the operator does first: the tables (a configuration a
            # test means to be refused is refused here too, and again
            # where the test asks).
            run_cli(['-c', self.config, 'check'])

    def core_settings(self):
        core = {
            'db_path': 'var/payhook.mdb',
            'map_size_mb': '64',
            'plugin_dir': PLUGIN_DIR,
            'api_token_file': 'keys/api.token',
            'max_body_bytes': str(self.max_body_bytes),
        }
        if self.base_path is not None:
            core['base_path'] = self.base_path
        if self.log_level:
            core['log_level'] = self.log_level
        core.update(self.core_extra)
        return core

    def profile_settings(self):
        out = {}
        for name, p in self.profiles.items():
            if 'settings' in p:
                # A profile given as its config keys (e.g. unionpay):
                # written as they are, files named relative to etc/.
                out[name] = dict({'plugin': p['plugin']}, **p['settings'])
            else:
                out[name] = {
                    'plugin': p['plugin'],
                    'appid': p['appid'],
                    'mch_id': p['mch_id'],
                    'api_key_file': 'keys/%s.key' % name,
                    'sign_type': p['sign_type'],
                }
            out[name].update(self.profile_extra)
        return out

    def extra_config(self):
        """Config text after the profiles: the [push.erp] section when
        events are pushed."""
        if not self.push_port:
            return ''
        return ('\n[push.erp]\nurl = http://127.0.0.1:%d/hook\n'
                'secret_file = keys/push.secret\n'
                'allow_insecure_http = yes\n' % self.push_port)

    def write(self):
        os.makedirs(os.path.join(self.etc, 'var'), exist_ok=True)
        # One trailing newline is allowed in the token file: use it.
        write_file(os.path.join(self.etc, 'keys', 'api.token'),
                   self.token + '\n')
        for name, p in self.profiles.items():
            if 'key' in p:
                write_file(os.path.join(self.etc, 'keys', '%s.key' % name),
                           p['key'])
            # Extra files of a profile: {path below etc/: (bytes, mode)}.
            for rel, (data, mode) in p.get('files', {}).items():
                write_file(os.path.join(self.etc, rel), data, mode=mode)
        for rel, (data, mode) in self.files.items():
            write_file(os.path.join(self.etc, rel), data, mode=mode)
        if self.push_port:
            write_file(os.path.join(self.etc, 'keys', 'push.secret'),
                       PUSH_SECRET)
        write_file(self.config,
                   config_text(self.core_settings(), self.profile_settings(),
                               self.extra_config()),
                   mode=0o644)

    # -- the web server ----------------------------------------------------
    def start(self):
        self.server = Server(self)
        self.server.start()
        return self.server

    def stop(self):
        if self.server:
            self.server.stop()

    def cleanup(self):
        if self.server:
            self.server.stop()
        collect_logs(self)
        if os.environ.get('PAYHOOK_E2E_KEEP') == '1':
            sys.stdout.write('# kept %s\n' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- HTTP helpers -------------------------------------------------------
    def path(self, route):
        """A route below base_path: path('/orders') -> '/pay/orders'."""
        if not self.base_path or self.base_path == '/':
            return route
        return self.base_path.rstrip('/') + route

    def request(self, method, path, body=None, headers=None, timeout=60):
        return http_request(self.server.port, method, path, body, headers,
                            timeout)

    def api(self, method, route, body=None, token=_DEFAULT, headers=None,
            raw_path=False):
        """A merchant API call: body dict/list -> JSON; token: default the
        instance's, None = no Authorization header, str = that token."""
        hdrs = {}
        if token is _DEFAULT:
            token = self.token
        if token is not None:
            hdrs['Authorization'] = 'Bearer ' + token
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if body is not None:
            hdrs['Content-Type'] = 'application/json'
        hdrs.update(headers or {})
        return self.request(method, route if raw_path else self.path(route),
                            body, hdrs)

    def create_order(self, order_id, amount, currency='CNY', profile='wxshop',
                     **more):
        body = {'order_id': order_id, 'amount': amount,
                'currency': currency, 'profile': profile}
        body.update(more)
        return self.api('POST', '/orders', body)

    def get_order(self, order_id):
        return self.api('GET', '/orders/' + order_id)

    def order(self, order_id):
        """The order JSON, or None."""
        r = self.get_order(order_id)
        return r.json if r.status == 200 else None

    def events(self, after=None, limit=None):
        q = []
        if after is not None:
            q.append('after=%s' % after)
        if limit is not None:
            q.append('limit=%s' % limit)
        return self.api('GET', '/events' + ('?' + '&'.join(q) if q else ''))

    def all_events(self, after=0):
        """Every event after `after`, following `next` (limit 1000)."""
        out = []
        for _ in range(1000):
            r = self.events(after, 1000)
            if r.status != 200 or not isinstance(r.json, dict):
                raise RuntimeError('GET /events failed: ' + r.describe())
            batch = r.json.get('events') or []
            out += batch
            if not batch:
                return out
            after = r.json['next']
        raise RuntimeError('event feed does not end')

    def last_seq(self):
        evs = self.all_events(0)
        return evs[-1]['seq'] if evs else 0

    def notify(self, body, profile='wxshop', content_type='text/xml',
               method='POST', route=None):
        if isinstance(body, (dict, list)):
            body = notify_xml(body)
        return self.request(method, self.path(route or '/notify/' + profile),
                            body, {'Content-Type': content_type})

    def pay(self, order_id, amount, txn, profile='wxshop', **kw):
        """Send a signed payment notification; returns (response, fields)."""
        fields = make_payment(order_id, amount, txn, profile=profile,
                              profiles=self.profiles, **kw)
        return self.notify(fields, profile), fields

    # -- the command-line tool -------------------------------------------
    def cli(self, *args, config=None, cwd=None, timeout=60):
        return run_cli(['-c', config or self.config] + list(args), cwd=cwd,
                       timeout=timeout)

    def check_passes(self, name):
        """One test point, `name`: `payhook check` exits 0 (its output is
        the diagnostic)."""
        r = self.cli('check')
        return self.tap.is_(r.returncode, 0, name, r.stdout + r.stderr)


def check_with_settings(tap, name, profiles, profile, **settings):
    """`payhook check` (a CompletedProcess) of an instance called name
    with profiles, where profile's settings are changed by settings."""
    bad = dict(profiles)
    bad[profile] = dict(profiles[profile],
                        settings=dict(profiles[profile]['settings'],
                                      **settings))
    return Instance(tap, name, profiles=bad).cli('check')


def check_refuses(tap, name, profiles, profile, words, what, **settings):
    """One test point, what: `payhook check` of an instance called name
    with profiles, where profile's settings are changed by settings,
    fails, and what it says on stderr holds each of words."""
    p = check_with_settings(tap, name, profiles, profile, **settings)
    return tap.ok(p.returncode != 0 and all(w in p.stderr for w in words),
                  what, p.stdout + p.stderr)


def collect_logs(inst):
    """With PAYHOOK_E2E_LOGDIR set (tools/run-tests), keeps the instance's
    logs and the secrets it configured there, for check_logs.py to prove
    that no log line carries a key or token."""
    dest = os.environ.get('PAYHOOK_E2E_LOGDIR')
    if not dest or not os.path.isdir(inst.dir):
        return
    out = tempfile.mkdtemp(prefix='%s-' % inst.name, dir=dest)
    secrets = [inst.token]
    keys = os.path.join(inst.etc, 'keys')
    for root, _dirs, files in os.walk(inst.dir):
        for name in files:
            path = os.path.join(root, name)
            if root.startswith(keys) and name != 'README':
                try:
                    with open(path, 'rb') as fh:
                        secrets.append(fh.read().decode('utf-8', 'replace'))
                except OSError:
                    pass
            elif name.endswith('.log'):
                shutil.copy(path, os.path.join(
                    out, os.path.relpath(path, inst.dir).replace('/', '_')))
    with open(os.path.join(out, 'secrets.json'), 'w') as fh:
        json.dump(secrets, fh)


def run_cli(args, cwd=None, timeout=60):
    """Run the `payhook` command-line tool; returns CompletedProcess (text)."""
    try:
        return subprocess.run([PAYHOOK] + list(args), cwd=cwd,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, text=True, errors='replace')
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, -999, exc.stdout or '',
                                           'timed out after %ss' % timeout)


def run_fcgi_version():
    """(version, commit) from `payhook.fcgi --version`, commit '' when the
    build names none; None when it cannot be read."""
    try:
        out = subprocess.run([PAYHOOK_FCGI, '--version'],
                             stdout=subprocess.PIPE, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r'payhook\.fcgi (\S+)(?: \(commit (\S+)\))?', out)
    return (m.group(1), m.group(2) or '') if m else None


def proc_children(pid):
    """pids of the direct children of `pid` (from /proc)."""
    kids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as fh:
                data = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and ')'
        rest = data[data.rfind(')') + 2:].split()
        if len(rest) > 1 and rest[1] == str(pid):
            kids.append(int(entry))
    return kids


def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as fh:
            return fh.read().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return ''


def is_payhook_fcgi(pid):
    """Is pid a payhook.fcgi (by the program it runs, not by an argument
    naming a folder of payhook's, as Apache's -d does)?"""
    prog = cmdline(pid).split(' ', 1)[0]
    return 'payhook.fcgi' in os.path.basename(prog)


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as fh:
            data = fh.read()
    except OSError:
        return False
    state = data[data.rfind(')') + 2:].split()[0]
    return state != 'Z'


class StartError(Exception):
    pass


def stop_process(proc, wait):
    """SIGTERM proc (a Popen), wait `wait` seconds, SIGKILL as a
    fallback."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        except ProcessLookupError:
            pass


def stop_web_server(server, backends, wait):
    """Stops a web server (server.proc, see stop_process), then makes sure
    the payhook.fcgi processes it spawned (backends: pids) are gone, and
    takes its log hooks (dump_log, mark_log) off its instance's tap."""
    stop_process(server.proc, wait)
    for pid in backends:
        deadline = time.time() + 5
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if _alive(pid) and is_payhook_fcgi(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    server.proc = None
    tap = server.inst.tap
    for hooks, fn in ((tap.fail_hooks, server.dump_log),
                      (tap.mark_hooks, server.mark_log)):
        if fn in hooks:
            hooks.remove(fn)


def read_text_files(*paths):
    """The text of the files one after the other; one that cannot be read
    adds nothing."""
    text = ''
    for path in paths:
        try:
            with open(path, 'rb') as fh:
                text += fh.read().decode('utf-8', 'replace')
        except OSError:
            pass
    return text


def lighttpd_conf(port, docroot, uploads, errorlog, program, env, socket,
                  procs, max_request_kib, max_connections):
    """The configuration of a lighttpd on HOST:port in front of procs
    processes of the FastCGI program, which it spawns with env (a dict)
    and reaches at socket."""
    return '''server.modules += ( "mod_fastcgi" )
server.bind = "{host}"
server.port = {port}
server.document-root = "{docroot}"
server.upload-dirs = ( "{uploads}" )
server.errorlog = "{errorlog}"
server.max-request-size = {max_request_kib}
server.max-connections = {max_connections}
fastcgi.server = (
  "/" => ((
    "bin-path" => "{program}",
    "bin-environment" => ( {env} ),
    "socket" => "{socket}",
    "min-procs" => {procs},
    "max-procs" => {procs},
    "check-local" => "disable",
    "fix-root-scriptname" => "enable"
  ))
)
'''.format(host=HOST, port=port, docroot=docroot, uploads=uploads,
           errorlog=errorlog, max_request_kib=max_request_kib,
           max_connections=max_connections, program=program,
           env=', '.join('"%s" => "%s"' % kv for kv in env.items()),
           socket=socket, procs=procs)


class Server:
    """lighttpd in the foreground (-D), spawning payhook.fcgi processes."""

    def __init__(self, inst):
        self.inst = inst
        self.lighttpd = lighttpd_path()
        self.proc = None
        self.port = None
        self.conf = os.path.join(inst.dir, 'lighttpd.conf')
        self.errorlog = os.path.join(inst.dir, 'lighttpd-error.log')
        self.stdout_log = os.path.join(inst.dir, 'lighttpd-stdout.log')
        self.rundir = os.path.join(inst.dir, 'run')
        self.docroot = os.path.join(inst.dir, 'htdocs')
        self.uploads = os.path.join(inst.dir, 'uploads')
        self._log_offset = {}
        self._backend_pids = set()

    def write_conf(self):
        for d in (self.rundir, self.docroot, self.uploads):
            os.makedirs(d, exist_ok=True)
        conf = ('# lighttpd for payhook end-to-end tests (generated)\n' +
                lighttpd_conf(
                    self.port, docroot=self.docroot, uploads=self.uploads,
                    errorlog=self.errorlog, program=PAYHOOK_FCGI,
                    env={'PAYHOOK_CONFIG': self.inst.config},
                    socket=os.path.join(self.rundir, 'payhook.sock'),
                    procs=self.inst.max_procs, max_request_kib=8192,
                    max_connections=512))
        write_file(self.conf, conf, mode=0o644)

    def start(self, timeout=30):
        if not os.access(PAYHOOK_FCGI, os.X_OK):
            raise StartError('%s is not built' % PAYHOOK_FCGI)
        last = ''
        for _attempt in range(3):
            self.port = free_port()
            self.write_conf()
            self._log_offset = self._log_size()
            out = open(self.stdout_log, 'ab')
            self.proc = subprocess.Popen(
                [self.lighttpd, '-D', '-f', self.conf],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.inst.dir, start_new_session=True)
            out.close()
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                r = http_request(self.port, 'GET', self.inst.path('/healthz'),
                                 timeout=5)
                if r.status == 200:
                    self._backend_pids = set(self.backend_pids())
                    tap = self.inst.tap
                    tap.fail_hooks.append(self.dump_log)
                    tap.mark_hooks.append(self.mark_log)
                    return
                time.sleep(0.1)
            log = self.read_log()
            self.stop()
            last = log
            if 'Address already in use' in log:
                continue
            break
        raise StartError('lighttpd did not serve /healthz on %s:%s\n%s'
                         % (HOST, self.port, last[-4000:]))

    def wait_serving(self, timeout=60):
        """Wait until /healthz answers 200 again: after its backends were
        killed lighttpd answers 503 ("all handlers ... are down") until it
        has spawned them again, longer on a slow (sanitizer) build."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = http_request(self.port, 'GET', self.inst.path('/healthz'),
                             timeout=5)
            if r.status == 200:
                return True
            time.sleep(0.2)
        return False

    def backend_pids(self):
        """pids of the payhook.fcgi processes lighttpd spawned."""
        if not self.proc:
            return []
        return [p for p in proc_children(self.proc.pid)
                if is_payhook_fcgi(p)]

    def stop(self):
        """SIGTERM lighttpd, wait, SIGKILL as a fallback; then make sure the
        payhook.fcgi processes it spawned are gone (by pid)."""
        if not self.proc:
            return
        stop_web_server(self, set(self.backend_pids()) | self._backend_pids,
                        15)

    def _log_size(self):
        """{log file: its size}: lighttpd's error log and its standard
        error, which is payhook.fcgi's (lighttpd -D)."""
        out = {}
        for path in (self.errorlog, self.stdout_log):
            try:
                out[path] = os.path.getsize(path)
            except OSError:
                out[path] = 0
        return out

    def read_log(self):
        return read_text_files(self.errorlog, self.stdout_log)

    def mark_log(self):
        """After each check: what the log holds so far belongs to earlier
        checks."""
        self._log_offset = self._log_size()

    def dump_log(self, max_lines=60):
        """Copy what lighttpd logged (server.errorlog) and payhook.fcgi
        logged (on lighttpd's standard error) since the previous check into
        the TAP output."""
        if self.proc is None:
            return
        offsets = self._log_offset if isinstance(self._log_offset,
                                                 dict) else {}
        tap = self.inst.tap
        for path, what in ((self.errorlog, 'lighttpd error log'),
                           (self.stdout_log, 'payhook.fcgi (lighttpd '
                                             'stderr)')):
            try:
                with open(path, 'rb') as fh:
                    fh.seek(offsets.get(path, 0))
                    data = fh.read()
                    offsets[path] = fh.tell()
            except OSError:
                continue
            lines = data.decode('utf-8', 'replace').splitlines()
            if not lines:
                continue
            tap.diag('--- %s (%s), last %d of %d new lines ---'
                     % (what, self.inst.name, min(len(lines), max_lines),
                        len(lines)))
            for line in lines[-max_lines:]:
                tap.diag('  ' + line)
            tap.diag('--- end of log ---')
        self._log_offset = offsets


# ---------------------------------------------------------------------------
# Prometheus's promtool
# ---------------------------------------------------------------------------

_PROMTOOL = []


def promtool():
    """(path, None) of a promtool, or (None, why there is none).

    tools/promtool finds it: on PATH, else taken out of Debian's prometheus
    package (apt-get download, never installed) into a cache folder."""
    if not _PROMTOOL:
        try:
            r = subprocess.run([os.path.join(TOP_SRCDIR, 'tools', 'promtool')],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=600, text=True, errors='replace')
            path = r.stdout.strip()
            if r.returncode == 0 and os.access(path, os.X_OK):
                _PROMTOOL.append((path, None))
            else:
                _PROMTOOL.append((None, r.stderr.strip() or
                                  'tools/promtool exited %d' % r.returncode))
        except (OSError, subprocess.TimeoutExpired) as exc:
            _PROMTOOL.append((None, 'tools/promtool: %s' % exc))
    return _PROMTOOL[0]


def run_promtool(args, stdin=None, timeout=120):
    """promtool with args (and bytes on stdin): CompletedProcess (text)."""
    path, why = promtool()
    if path is None:
        raise RuntimeError(why)
    return subprocess.run([path] + list(args), input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


# ---------------------------------------------------------------------------
# Checks shared by several test files
# ---------------------------------------------------------------------------

def check_json_error(tap, resp, status, name):
    """An error answer: the status, and a JSON body with string "error" and
    "message"."""
    good = tap.is_(resp.status, status, '%s: HTTP %d' % (name, status),
                   resp.describe())
    body = resp.json
    shaped = (isinstance(body, dict) and isinstance(body.get('error'), str)
              and body.get('error') != ''
              and isinstance(body.get('message'), str))
    tap.ok(shaped, '%s: JSON {"error","message"}' % name, resp.describe())
    return good and shaped


def check_ack(tap, resp, ack, name):
    """A WeChat acknowledgement: HTTP 200 and the exact SUCCESS bytes, or
    the FAIL shape with a non-empty reason."""
    tap.is_(resp.status, 200, '%s: HTTP 200' % name, resp.describe())
    if ack == 'SUCCESS':
        return tap.is_(resp.body, SUCCESS_ACK,
                       '%s: SUCCESS ack, byte-exact' % name)
    m = FAIL_ACK_RE.match(resp.body or b'')
    ok = tap.ok(m is not None, '%s: FAIL ack with a reason' % name,
                resp.describe())
    if m:
        tap.diag('%s: FAIL reason: %s' % (name, m.group(1).decode(
            'utf-8', 'replace')))
    return ok


def check_conflict(tap, inst, oid, base, paid, name):
    """After a validly signed notification that contradicts the order's
    payment: the order unchanged ((state, provider_txn_id, amount) ==
    paid), a notification_conflict exception on it, and one
    notification.conflict event after seq base.  Returns those events."""
    oc = inst.order(oid) or {}
    tap.is_((oc.get('state'), oc.get('provider_txn_id'), oc.get('amount')),
            paid, '%s: order unchanged' % name)
    tap.ok('notification_conflict' in [e.get('type') for e in
                                       oc.get('exceptions') or []],
           '%s: notification_conflict exception on the order' % name,
           repr(oc.get('exceptions')))
    evs = inst.all_events(base)
    tap.is_([e.get('type') for e in evs], ['notification.conflict'],
            '%s: notification.conflict event' % name)
    return evs


def recon_counts(stdout):
    """The category counts `payhook reconcile` prints: {category: n}."""
    counts = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def check_order_keys(tap, order, name):
    """Every documented key of the order JSON is there (extra keys are
    reported as a diagnostic, not an error)."""
    keys = set(order) if isinstance(order, dict) else set()
    missing = sorted(ORDER_KEYS - keys)
    tap.ok(not missing, '%s has every documented key' % name,
           'missing: %r' % missing)
    extra = sorted(keys - ORDER_KEYS)
    if extra:
        tap.diag('%s: keys beyond the contract: %r' % (name, extra))


def metric(text, series):
    """The value of one exact series line of a Prometheus text page, or
    None."""
    for line in text.splitlines():
        if line.startswith(series + ' '):
            return float(line.rsplit(' ', 1)[1])
    return None


def parse_metrics(text):
    """{series: value} and {family: type} of a Prometheus text page."""
    values, types = {}, {}
    for line in text.splitlines():
        m = re.match(r'^# TYPE (\S+) (\S+)$', line)
        if m:
            types[m.group(1)] = m.group(2)
        elif line and not line.startswith('#'):
            series, value = line.rsplit(' ', 1)
            values[series] = float(value)
    return values, types


def wait_for(pred, timeout=15, step=0.05):
    """pred()'s first true value within timeout seconds, else its last."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def store_dump(inst):
    """The store's whole logical content: every named database, key and
    value (`mdb_dump -a`; on PostgreSQL, every table's k and v)."""
    if inst.pg_dbname is not None:
        c = _PG['cluster']
        tables = c.psql("select string_agg(tablename, ' ' order by "
                        "tablename) from pg_tables where schemaname = "
                        "'payhook' and tablename <> 'layout'",
                        dbname=inst.pg_dbname).split()
        return ''.join(c.psql("select '%s', encode(k, 'hex'), "
                              "encode(v, 'hex') from payhook.%s order by k"
                              % (t, t), dbname=inst.pg_dbname)
                       for t in tables).encode()
    r = subprocess.run(['mdb_dump', '-a', '-n', inst.db],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError('mdb_dump: %s' % r.stderr.decode())
    return r.stdout


def fill_store(inst, prefix, after_each=None, most=20000):
    """Creates orders of 100 (ids: prefix, a number, padding) until one is
    refused, `most` at the most; after_each(i) runs after the i-th is
    created.  Returns (the ids created, the refusing Response or None)."""
    orders, refused = [], None
    for i in range(most):
        o = '%s%05d-%s' % (prefix, i, 'x' * 22)
        r = inst.create_order(o, 100)
        if r.status != 201:
            refused = r
            break
        orders.append(o)
        if after_each:
            after_each(i)
    return orders, refused


def is_rfc3339_utc(value):
    return isinstance(value, str) and RFC3339_UTC_RE.match(value) is not None


def parallel(fn, items, workers=16):
    """Run fn(item) for every item on `workers` threads; results in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def load_cases():
    """Every scenario in tests/e2e/cases/*.json, sorted by file name."""
    out = []
    for name in sorted(os.listdir(CASES_DIR)):
        if name.endswith('.json'):
            with open(os.path.join(CASES_DIR, name), encoding='utf-8') as fh:
                out.append((name, json.load(fh)))
    return out


# ---------------------------------------------------------------------------
# Running a test file
# ---------------------------------------------------------------------------

def cleanup_all():
    while _LIVE:
        inst = _LIVE.pop()
        try:
            inst.cleanup()
        except Exception as exc:
            sys.stdout.write('# cleanup of %s failed: %r\n' % (inst.dir, exc))


def _on_signal(signum, _frame):
    raise KeyboardInterrupt('signal %d' % signum)


def _stop_servers():
    for inst in list(_LIVE):
        try:
            inst.stop()
        except Exception:
            pass


def _on_alarm(_signum, _frame):
    # Stop the servers first so that worker threads waiting on them fail
    # at once instead of running into their own timeouts.
    _stop_servers()
    raise KeyboardInterrupt('watchdog: the test ran longer than %ss '
                            '(PAYHOOK_E2E_TIMEOUT)' % _timeout())


def _timeout():
    try:
        return max(1, int(os.environ.get('PAYHOOK_E2E_TIMEOUT', '900')))
    except ValueError:
        return 900


def run(main, need_lighttpd=True, need_cryptography=False):
    """Run `main(tap)`, print the plan, stop every server, exit.  Without
    lighttpd, or python3's cryptography package where need_cryptography
    is set, the whole file is skipped."""
    tap = Tap()
    if need_lighttpd and lighttpd_path() is None:
        tap.skip_all('lighttpd not found (configure found LIGHTTPD=%s)'
                     % os.environ.get('LIGHTTPD', 'unset'))
    if need_cryptography and not have_cryptography():
        tap.skip_all(NO_CRYPTOGRAPHY)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(_timeout())
    status = 1
    try:
        for prog in (PAYHOOK, PAYHOOK_FCGI):
            if not os.access(prog, os.X_OK):
                tap.ok(False, '%s is built' % os.path.relpath(prog,
                                                              TOP_BUILDDIR),
                       'run make first (top_builddir=%s)' % TOP_BUILDDIR)
        if tap.failed == 0:
            main(tap)
    except KeyboardInterrupt as exc:
        tap.ok(False, 'interrupted (%s)' % exc)
    except Exception as exc:
        tap.ok(False, 'test script stopped early: %s: %s'
               % (type(exc).__name__, str(exc).splitlines()[0] if str(exc)
                  else ''), traceback.format_exc())
    finally:
        signal.alarm(0)
        cleanup_all()
        status = tap.done()
    sys.exit(status)


# ---------------------------------------------------------------------------
# The provider simulator (tests/sim/provsim.py)
# ---------------------------------------------------------------------------

PROVSIM = os.path.join(TOP_SRCDIR, 'tests', 'sim', 'provsim.py')


def sim_profile(name, prof, notify_url=''):
    """A provsim profile (sim.json entry) from one of PROFILES, or from a
    profile's own 'sim' entry (the provider's fields, e.g. keys) when it
    has one."""
    if 'sim' in prof:
        return dict(prof['sim'], name=name, notify_url=notify_url)
    return {'name': name, 'provider': prof['plugin'],
            'appid': prof['appid'], 'mch_id': prof['mch_id'],
            'key': prof['key'], 'sign_type': prof['sign_type'],
            'notify_url': notify_url}


class Simulator:
    """provsim on a free 127.0.0.1 port (``--port 0``), in its own
    temporary directory (sim.json, provsim.log, its stdout and stderr),
    stopped by pid at exit and on failure.

        sim = Simulator(tap, time_factor=1000).start()
        inst = SimInstance(tap, sim_port=sim.port); inst.start()
        sim.point_at(inst)          # notify_url of every profile
        sim.control('/_sim/pay', {...}).json
    """

    def __init__(self, tap, profiles=None, time_factor=1, name='sim'):
        self.tap = tap
        self.name = name
        self.profiles = profiles or PROFILES
        self.time_factor = time_factor
        self.proc = None
        self.port = None
        self.returncode = None
        self.dir = tempfile.mkdtemp(prefix='payhook-%s-' % name)
        self.config = os.path.join(self.dir, 'sim.json')
        self.log = os.path.join(self.dir, 'provsim.log')
        self.stdout_log = os.path.join(self.dir, 'stdout.log')
        self.stderr_log = os.path.join(self.dir, 'stderr.log')
        _LIVE.append(self)

    def write_config(self, notify_base=''):
        profiles = [sim_profile(n, p, notify_base + '/notify/' + n
                                if notify_base else '')
                    for n, p in self.profiles.items()]
        write_file(self.config, json.dumps({'profiles': profiles},
                                           indent=1), mode=0o600)

    def start(self, timeout=20, notify_base=''):
        self.write_config(notify_base)
        out = open(self.stdout_log, 'wb')
        err = open(self.stderr_log, 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, PROVSIM, '--port', '0', '--config', self.config,
             '--time-factor', str(self.time_factor), '--log', self.log],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.dir,
            start_new_session=True)
        out.close()
        err.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.match(r'provsim listening on 127\.0\.0\.1:(\d+)\n',
                         self.read(self.stdout_log))
            if m:
                self.port = int(m.group(1))
                self.tap.fail_hooks.append(self.dump_log)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        text = self.read(self.stderr_log)
        self.stop()
        raise StartError('provsim did not start: %s' % text[-2000:])

    @staticmethod
    def read(path):
        try:
            with open(path, 'rb') as fh:
                return fh.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    @property
    def api_base(self):
        return 'http://%s:%d' % (HOST, self.port)

    def request(self, method, path, body=None, headers=None, timeout=60):
        return http_request(self.port, method, path, body, headers, timeout)

    def control(self, path, obj=None, method='POST'):
        """A /_sim/ call: obj -> JSON body; the Response (see .json)."""
        if method == 'GET':
            return self.request('GET', path)
        return self.request('POST', path, json.dumps(obj or {}),
                            {'Content-Type': 'application/json'})

    def point_at(self, inst):
        """Sets every profile's notify_url to inst's /notify/<profile>."""
        for name, p in self.profiles.items():
            url = 'http://%s:%d%s' % (HOST, inst.server.port,
                                      inst.path('/notify/' + name))
            r = self.control('/_sim/profile', sim_profile(name, p, url))
            if r.status != 200:
                raise StartError('provsim refused profile %s: %s'
                                 % (name, r.describe()))

    def ledger(self):
        return self.control('/_sim/ledger', method='GET').json

    def deliveries(self, order_id=None):
        q = '?order_id=' + order_id if order_id else ''
        return self.control('/_sim/deliveries' + q, method='GET').json

    def stats(self):
        return self.control('/_sim/stats', method='GET').json

    def stop(self):
        """SIGTERM by pid, wait, SIGKILL as a fallback.  Returns the exit
        status (None when it was not running)."""
        if not self.proc:
            return self.returncode
        stop_process(self.proc, 10)
        self.returncode = self.proc.returncode
        self.proc = None
        if self.dump_log in self.tap.fail_hooks:
            self.tap.fail_hooks.remove(self.dump_log)
        return self.returncode

    def dump_log(self, max_lines=40):
        lines = self.read(self.log).splitlines()
        if lines:
            self.tap.diag('--- provsim log (%s), last %d lines ---'
                          % (self.name, min(len(lines), max_lines)))
            for line in lines[-max_lines:]:
                self.tap.diag('  ' + line)
        errs = self.read(self.stderr_log).strip()
        if errs:
            self.tap.diag('--- provsim stderr ---\n' + errs[-2000:])

    def cleanup(self):
        self.stop()
        if os.environ.get('PAYHOOK_E2E_KEEP') == '1':
            sys.stdout.write('# kept %s\n' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class SimInstance(Instance):
    """An Instance whose profiles send their queries and closes to a
    simulator: ``api_base = http://127.0.0.1:<sim_port>`` and
    ``allow_insecure_http = yes``.  Without sim_port (the default) it is a
    plain Instance and the two keys are not written."""

    def __init__(self, tap, name='main', sim_port=None, **kw):
        self.sim_port = sim_port
        Instance.__init__(self, tap, name, **kw)

    def profile_settings(self):
        out = Instance.profile_settings(self)
        if self.sim_port:
            for settings in out.values():
                settings['api_base'] = 'http://%s:%d' % (HOST, self.sim_port)
                settings['allow_insecure_http'] = 'yes'
        return out


def start_with_simulator(tap, name='main', time_factor=1, cls=None, **kw):
    """A simulator and an instance of cls (SimInstance by default, given
    name and **kw) that sends its queries to it, both started, the
    simulator's notifications addressed to the instance.  Returns
    (sim, inst)."""
    sim = Simulator(tap, time_factor=time_factor).start()
    inst = (cls or SimInstance)(tap, name, sim_port=sim.port, **kw)
    inst.start()
    sim.point_at(inst)
    return sim, inst
