"""UnionPay (ACP) backend notifications and the status query end to end:
lighttpd in front of two payhook.fcgi processes, a [profile.upshop] with
plugin = unionpay.

The PKI is made here with the `openssl` command (a root, an intermediate,
UnionPay's signing certificate and its impostors, a merchant key), and
messages are signed here with the `cryptography` package, independently of
payhook's code.  Covers: a signed 5.1.0 notification pays the order (HTTP
200, body `ok`); a repeat changes nothing; GBK and 5.0.0 messages; every
forgery and misaddressed message is refused with a non-200 answer and
leaves the order and the event feed as they were; the query of an order
through a loopback UnionPay that checks the request's signature.
"""

import base64
import csv
import datetime
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (unionpay_digest_hex, unionpay_form,  # noqa: E402
                     unionpay_sign_string)

harness.need_cryptography()
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

MER_ID = '777290058110048'
FORM = 'application/x-www-form-urlencoded'
BEIJING = datetime.timezone(datetime.timedelta(hours=8))

_SEQ = [0]


def new_query_id():
    _SEQ[0] += 1
    return '7826%017d' % (int.from_bytes(os.urandom(6), 'big') * 100 +
                          _SEQ[0] % 100)


def load_key(path):
    with open(path, 'rb') as fh:
        return serialization.load_pem_private_key(fh.read(), None)


read = harness.read_bytes


class Signer:
    def __init__(self, pki, d):
        self.key = load_key(pki['leaf.key'])
        self.leaf = read(pki['leaf.pem']).decode('ascii')
        self.othercn = read(pki['othercn.pem']).decode('ascii')
        self.foreign = read(pki['foreign.pem']).decode('ascii')
        self.serial = str(x509.load_pem_x509_certificate(
            self.leaf.encode()).serial_number)
        self.expired = self._expired(pki)

    def _expired(self, pki):
        """Right chain, right CN, ended yesterday (made here: the openssl
        command cannot backdate)."""
        mid = x509.load_pem_x509_certificate(read(pki['middle.pem']))
        leaf = x509.load_pem_x509_certificate(self.leaf.encode())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(leaf.subject).issuer_name(mid.subject)
                .public_key(self.key.public_key()).serial_number(13)
                .not_valid_before(now - datetime.timedelta(days=800))
                .not_valid_after(now - datetime.timedelta(days=1))
                .add_extension(x509.KeyUsage(True, True, False, False, False,
                                             False, False, False, False),
                               critical=True)
                .sign(load_key(pki['middle.key']), hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')

    def sign(self, fields, version='5.1.0', how='hex', answer=False):
        """Returns fields + [('signature', ...)]: RSA over the hex text of
        the digest ('hex'), or over the raw digest ('raw'); a notification
        signed without its empty fields (the SDK's filterBlank), an answer
        with them."""
        alg = hashes.SHA1() if version == '5.0.0' else hashes.SHA256()
        data = unionpay_digest_hex(fields, version, skip_empty=not answer)
        if how == 'raw':
            data = bytes.fromhex(data.decode('ascii'))
        sig = self.key.sign(data, padding.PKCS1v15(), alg)
        return [f for f in fields if f[0] != 'signature'] + [
            ('signature', base64.b64encode(sig).decode('ascii'))]


def notification(signer, order_id, query_id, amount=1000, version='5.1.0',
                 **over):
    now = datetime.datetime.now(BEIJING)
    f = {
        'accessType': '0', 'bizType': '000201', 'currencyCode': '156',
        'encoding': 'UTF-8', 'merId': MER_ID, 'orderId': order_id,
        'queryId': query_id, 'respCode': '00', 'respMsg': '成功[0000000]',
        'settleAmt': str(amount), 'settleCurrencyCode': '156',
        'settleDate': now.strftime('%m%d'), 'signMethod': '01',
        'traceNo': '123456', 'traceTime': now.strftime('%m%d%H%M%S'),
        'txnAmt': str(amount), 'txnSubType': '01',
        'txnTime': now.strftime('%Y%m%d%H%M%S'), 'txnType': '01',
        'version': version, 'reqReserved': '',
    }
    if version == '5.1.0':
        f['signPubKeyCert'] = signer.leaf
    else:
        f['certId'] = signer.serial
    f.update(over)
    return [(k, v) for k, v in f.items() if v is not None]


def types_of(evs):
    return [e.get('type') for e in evs]


def check_refused(tap, inst, name, body, order_id, base):
    before = inst.order(order_id)
    r = inst.notify(body, 'upshop', content_type=FORM)
    tap.ok(r.status is not None and r.status != 200,
           '%s: refused (not 200)' % name, r.describe())
    tap.is_(r.status, 400, '%s: HTTP 400' % name)
    tap.ok(r.body != b'ok' and r.content_type.startswith('text/plain'),
           '%s: a short text reason' % name, r.describe())
    tap.is_(inst.order(order_id), before, '%s: order unchanged' % name)
    tap.is_(types_of(inst.all_events(base)), [], '%s: no new event' % name)


class MockUnionPay(harness.MockServer):
    """queryTrans.do on 127.0.0.1: checks the request's signature with the
    merchant's certificate and answers in UnionPay's reply syntax (values
    not percent-encoded), signed with UnionPay's key."""

    methods = ('POST',)

    def __init__(self, signer, mer_cert_pem):
        self.signer = signer
        self.mer_key = x509.load_pem_x509_certificate(
            mer_cert_pem).public_key()
        self.answers = {}           # orderId -> (respCode, origRespCode, qid)
        harness.MockServer.__init__(self)

    def handle(self, h, body):
        from urllib.parse import parse_qsl
        fields = parse_qsl(body.decode('ascii'), keep_blank_values=True,
                           strict_parsing=True)
        req = dict(fields)
        sig_ok = False
        try:
            self.mer_key.verify(
                base64.b64decode(req.get('signature', '')),
                __import__('hashlib').sha256(unionpay_sign_string(
                    fields, skip_empty=True)).hexdigest().encode(),
                padding.PKCS1v15(), hashes.SHA256())
            sig_ok = True
        except Exception:
            pass
        self.requests.append((h.path, h.headers.get('Content-Type'), req,
                              sig_ok))
        resp, orig, qid = self.answers.get(req.get('orderId'),
                                           ('34', None, None))
        if not sig_ok:
            resp, orig = '11', None
        f = [('version', '5.1.0'), ('encoding', 'UTF-8'),
             ('signMethod', '01'), ('txnType', '00'), ('txnSubType', '00'),
             ('bizType', '000000'), ('accessType', '0'), ('merId', MER_ID),
             ('orderId', req.get('orderId', '')),
             ('txnTime', req.get('txnTime', '')), ('respCode', resp),
             ('respMsg', '成功[0000000]')]
        if orig is not None:
            f += [('origRespCode', orig), ('origRespMsg', '成功[0000000]'),
                  ('queryId', qid), ('txnAmt', '1000'),
                  ('currencyCode', '156'), ('traceNo', '654321')]
        f += [('signPubKeyCert', self.signer.leaf)]
        f = self.signer.sign(f, answer=True)
        out = '&'.join('%s=%s' % kv for kv in f).encode('utf-8')
        h.send_response(200)
        h.send_header('Content-Type', 'text/html;charset=UTF-8')
        h.send_header('Content-Length', str(len(out)))
        h.end_headers()
        h.wfile.write(out)


def test_notifications(tap, inst, signer, base):
    # ---- the happy path ------------------------------------------------
    oid = 'UP' + os.urandom(5).hex().upper()
    r = inst.create_order(oid, 1000, profile='upshop')
    tap.is_(r.status, 201, 'order created on profile upshop', r.describe())
    qid = new_query_id()
    fields = signer.sign(notification(signer, oid, qid))
    r = inst.notify(unionpay_form(fields), 'upshop', content_type=FORM)
    tap.is_((r.status, r.body), (200, b'ok'),
            'signed 5.1.0 notification: 200 ok', r.describe())
    tap.like(r.content_type, r'^text/plain', 'ack is text/plain')
    o = inst.order(oid)
    tap.is_((o or {}).get('state'), 'PAID', 'order PAID', repr(o))
    tap.is_((o or {}).get('provider_txn_id'), qid,
            'order carries queryId as the transaction')
    evs = inst.all_events(base)
    tap.is_(types_of(evs), ['order.paid'], 'one event: order.paid',
            repr(evs))
    base = inst.last_seq()

    r = inst.notify(unionpay_form(fields), 'upshop', content_type=FORM)
    tap.is_((r.status, r.body), (200, b'ok'), 'repeat: 200 ok')
    tap.is_(types_of(inst.all_events(base)), [], 'repeat: no new event')

    # ---- refusals, each against a fresh PENDING order ------------------
    pend = 'UP' + os.urandom(5).hex().upper()
    tap.is_(inst.create_order(pend, 1000, profile='upshop').status, 201,
            'second order created')

    def note(**over):
        return notification(signer, pend, new_query_id(), **over)

    cases = [
        ('certificate from another root with the right CN',
         signer.sign(note(signPubKeyCert=signer.foreign))),
        ('right chain, another company in the CN',
         signer.sign(note(signPubKeyCert=signer.othercn))),
        ('expired certificate',
         signer.sign(note(signPubKeyCert=signer.expired))),
        ('signature over a different amount',
         [(k, '1000' if k == 'txnAmt' else v)
          for k, v in signer.sign(note(txnAmt='1'))]),
        ('signature over the raw SHA-256 digest',
         signer.sign(note(), how='raw')),
        ('duplicated txnAmt', signer.sign(note(txnAmt='1')) +
         [('txnAmt', '1000')]),
        ('merId of another merchant',
         signer.sign(note(merId='777290058110049'))),
        ('signMethod 11', signer.sign(note(signMethod='11'))),
        ('version 6.0.0', signer.sign(note(version='6.0.0'))),
        ('missing signature', note()),
        ('bad base64', note() + [('signature', 'not*base64==')]),
        ('5.0.0 with an unknown certId',
         signer.sign(notification(signer, pend, new_query_id(),
                                  version='5.0.0', certId='1234567'),
                     version='5.0.0')),
    ]
    for name, f in cases:
        check_refused(tap, inst, name, unionpay_form(f), pend, base)
    body = unionpay_form(signer.sign(note())) + b'&txn%41mt=1'
    check_refused(tap, inst, 'duplicate spelt with an escape', body, pend,
                  base)
    check_refused(tap, inst, 'invalid escape',
                  unionpay_form(signer.sign(note())) + b'&x=%G1', pend, base)
    tap.is_((inst.order(pend) or {}).get('state'), 'PENDING',
            'after every refusal the order is still PENDING')

    # ---- GBK and 5.0.0 ----------------------------------------------------
    gbk = 'UP' + os.urandom(5).hex().upper()
    inst.create_order(gbk, 1000, profile='upshop')
    f = signer.sign(notification(
        signer, gbk, new_query_id(), encoding='GBK',
        reqReserved='中文备注'.encode('gbk'),
        respMsg='成功[0000000]'.encode('gbk')))
    r = inst.notify(unionpay_form(f), 'upshop', content_type=FORM)
    tap.is_((r.status, r.body), (200, b'ok'),
            'GBK notification (GBK bytes in reqReserved): 200 ok',
            r.describe())
    tap.is_((inst.order(gbk) or {}).get('state'), 'PAID', 'GBK: order PAID')

    v50 = 'UP' + os.urandom(5).hex().upper()
    inst.create_order(v50, 1000, profile='upshop')
    f = signer.sign(notification(signer, v50, new_query_id(),
                                 version='5.0.0'), version='5.0.0')
    r = inst.notify(unionpay_form(f), 'upshop', content_type=FORM)
    tap.is_((r.status, r.body), (200, b'ok'),
            '5.0.0 notification with a configured certId: 200 ok',
            r.describe())
    tap.is_((inst.order(v50) or {}).get('state'), 'PAID', '5.0.0: order PAID')


def test_query(tap, inst, signer, mock):
    oid = 'UQ' + os.urandom(5).hex().upper()
    txn_time = datetime.datetime.now(BEIJING).strftime('%Y%m%d%H%M%S')
    r = inst.create_order(oid, 1000, profile='upshop',
                          attempt={'txnTime': txn_time})
    tap.is_(r.status, 201, 'order with attempt data created', r.describe())
    qid = new_query_id()
    mock.answers[oid] = ('00', '00', qid)
    base = inst.last_seq()
    r = inst.api('POST', '/orders/%s/query' % oid)
    tap.is_(r.status, 200, 'POST /orders/<id>/query', r.describe())
    tap.ok(len(mock.requests) >= 1, 'UnionPay was asked')
    if mock.requests:
        path, ctype, req, sig_ok = mock.requests[-1]
        tap.is_(path, '/gateway/api/queryTrans.do', 'query path')
        tap.like(ctype or '', '^application/x-www-form-urlencoded',
                 'query content type')
        tap.ok(sig_ok, 'query signature verifies with the merchant '
               'certificate')
        tap.is_((req.get('orderId'), req.get('txnTime'), req.get('txnType'),
                 req.get('merId')), (oid, txn_time, '00', MER_ID),
                'query names the order, its txnTime, txnType 00, merId')
        # The official 5.1.0 query demo (Form_6_5_Query.java): bizType
        # 000201 (query_biz_type's default), no channelType.
        tap.is_((req.get('bizType'), 'channelType' in req),
                ('000201', False), 'query: bizType 000201, no channelType')
    o = inst.order(oid)
    tap.is_(((o or {}).get('state'), (o or {}).get('provider_txn_id')),
            ('PAID', qid), 'query answer 00/00: order PAID')
    tap.is_(types_of(inst.all_events(base)), ['order.paid'],
            'query: one order.paid event')

    # The notification of the same payment is then a duplicate.
    f = signer.sign(notification(signer, oid, qid, txnTime=txn_time))
    base = inst.last_seq()
    r = inst.notify(unionpay_form(f), 'upshop', content_type=FORM)
    tap.is_((r.status, r.body), (200, b'ok'),
            'late notification after the query: 200 ok')
    tap.is_(types_of(inst.all_events(base)), [],
            'late notification: same dedup key, no new event')

    pend = 'UQ' + os.urandom(5).hex().upper()
    inst.create_order(pend, 1000, profile='upshop',
                      attempt={'txnTime': txn_time})
    mock.answers[pend] = ('00', '04', None)
    r = inst.api('POST', '/orders/%s/query' % pend)
    tap.is_((inst.order(pend) or {}).get('state'), 'PENDING',
            'query answer 00/04: order stays PENDING', r.describe())


def test_no_download(tap, inst, mock):
    """UnionPay's plugin offers no statement download: asked for one,
    payhook says so, calls nobody and changes nothing."""
    base, calls = inst.last_seq(), len(mock.requests)
    r = inst.cli('reconcile', '--profile', 'upshop', '--download',
                 '--date', '2026-11-30', '--report-dir', inst.dir)
    tap.is_(r.returncode, 1, 'reconcile --download of a UnionPay profile: '
            'exit 1', r.stdout + r.stderr)
    tap.ok('offers no statement download' in r.stderr and
           '--statement' in r.stderr, 'and it says to give the file '
           'with --statement', r.stderr)
    tap.is_((len(mock.requests) - calls, inst.all_events(base)), (0, []),
            'no call to UnionPay, no event')


def test_portal_refunds(tap, inst, signer):
    """Refunds are made at UnionPay's portal: the one payhook queued for a
    double payment (its runner cannot make it) made there under payhook's
    refund id settles it; another is raised on the order it refunds."""
    oid, oid2 = ['UPD' + os.urandom(5).hex().upper() for _ in range(2)]
    q1, q2, q3, q4 = [new_query_id() for _ in range(4)]
    for o, qs in ((oid, (q1, q2)), (oid2, (q3, q4))):
        inst.create_order(o, 1000, profile='upshop')
        for q in qs:
            inst.notify(unionpay_form(signer.sign(notification(signer, o,
                                                               q))),
                        'upshop', content_type=FORM)
    r = inst.cli('refunds', 'run')
    m, m2 = [re.search(r'refund (phr[0-9a-z]+) of order %s: not sent' % o,
                       r.stderr) for o in (oid, oid2)]
    tap.ok(m is not None and m2 is not None, 'double payments: their '
           'refunds cannot be sent to UnionPay, they fail, to be made at '
           'the portal', r.stderr)
    rid = m.group(1) if m else 'none'
    rid2 = m2.group(1) if m2 else 'none'

    base = inst.last_seq()
    portal = new_query_id()
    fields = signer.sign(notification(
        signer, 'RF' + os.urandom(4).hex(), portal, amount=300,
        txnType='04', txnSubType='00', origQryId=q1))
    r = inst.notify(unionpay_form(fields), 'upshop', content_type=FORM)
    evs = inst.all_events(base)
    tap.is_((r.status, types_of(evs), [e.get('order_id') for e in evs]),
            (200, ['refund.unmatched'], [oid]),
            'a refund payhook did not ask for: refund.unmatched on the '
            'order of the payment it names', repr(evs))
    ex = [x for x in (inst.order(oid) or {}).get('exceptions') or []
          if x.get('type') == 'refund_unmatched']
    tap.is_([(x.get('provider_refund_id'), x.get('amount')) for x in ex],
            [(portal, 300)], '... and an exception on that order', repr(ex))
    r = inst.cli('notifications', 'list')
    lines = [l for l in r.stdout.splitlines() if '\t%s\t' % oid in l]
    tap.ok(len(lines) == 3 and
           lines[-1].endswith('\tverified\tunmatched'),
           '... the archive lists it under that order, with the two '
           'payments', *lines)

    base = inst.last_seq()
    made = new_query_id()
    fields = signer.sign(notification(
        signer, rid, made, amount=1000, txnType='04',
        txnSubType='00', origQryId=q2))
    r = inst.notify(unionpay_form(fields), 'upshop', content_type=FORM)
    got = inst.api('GET', '/refunds/' + rid)
    evs = inst.all_events(base)
    tap.is_((r.status, (got.json or {}).get('state'), types_of(evs)),
            (200, 'SUCCEEDED', ['refund.succeeded']),
            'the double payment refunded at the portal under payhook\'s '
            'refund id: that refund SUCCEEDED', got.describe())
    r = inst.notify(unionpay_form(fields), 'upshop', content_type=FORM)
    tap.is_((r.status, types_of(inst.all_events(base))),
            (200, ['refund.succeeded']), '... told again: a duplicate')

    # The day's statement lists the refunds under their own orderId: the
    # report names the order of each.  Another portal refund of the first
    # payment, whose notification was lost; the second double payment's
    # refund (FAILED: not sent) made at the portal, its notification lost.
    now = datetime.datetime.now(BEIJING)
    when = now.strftime('%Y%m%d%H%M%S')
    rows = [('01', oid, q1, '', 1000), ('01', oid, q2, '', 1000),
            ('01', oid2, q3, '', 1000), ('01', oid2, q4, '', 1000),
            ('04', 'RF' + os.urandom(4).hex(), portal, q1, 300),
            ('04', 'RG' + os.urandom(4).hex(), new_query_id(), q1, 200),
            ('04', rid, made, q2, 1000),
            ('04', rid2, new_query_id(), q4, 1000)]
    base = inst.last_seq()
    work = os.path.join(inst.dir, 'up-statement')
    os.makedirs(work)
    path = os.path.join(work, 'statement.csv')
    with open(path, 'w', encoding='utf-8') as fh:
        fh.write('merId,txnType,orderId,queryId,origQryId,txnTime,txnAmt,'
                 'currencyCode\n')
        for t, o, q, orig, amount in rows:
            fh.write('%s,%s,%s,%s,%s,%s,%d,156\n' % (MER_ID, t, o, q, orig,
                                                     when, amount))
        fh.write('total,%d,%d\n' % (len(rows), sum(x[4] for x in rows)))
    report = os.path.join(work, 'reconcile-upshop-%s.csv'
                          % now.strftime('%Y-%m-%d'))
    r = inst.cli('reconcile', '--profile', 'upshop', '--statement', path,
                 '--date', now.strftime('%Y-%m-%d'), '--report-dir', work,
                 '--trust-file')
    with open(report, newline='', encoding='utf-8') as fh:
        first = fh.read()
    rows = list(csv.DictReader(first.splitlines()))
    got = sorted((x['category'], x['order_id'], x['statement_amount'])
                 for x in rows if x['category'].startswith('refund'))
    tap.is_(got, sorted([('refund_matched', oid, '1000'),
                         ('refund_matched', oid2, '1000'),
                         ('refund_mismatch', oid, '200'),
                         ('refund_mismatch', oid, '300')]),
            'reconcile: each refund row of the statement names the order '
            'of the payment it refunds', r.stderr[-400:])
    evs = [e for e in inst.all_events(base)
           if e.get('order_id') in (oid, oid2)]
    tap.is_(sorted((e.get('type'), e.get('order_id'), e.get('amount'))
                   for e in evs),
            sorted([('reconcile.refund_mismatch', oid, 200),
                    ('reconcile.refund_mismatch', oid, 300),
                    ('refund.succeeded', oid2, 1000)]),
            'reconcile: an alarm for each refund payhook did not ask for, '
            'two of one payment; the failed refund the portal made is '
            'settled', repr(evs))
    got = inst.api('GET', '/refunds/' + rid2)
    tap.is_((got.json or {}).get('state'), 'SUCCEEDED', 'reconcile: the '
            'refund payhook held FAILED, listed as made by a statement the '
            'operator vouches for, is SUCCEEDED', got.describe())
    tap.is_([x['action'] for x in rows if x['provider_txn_id'] == q4 and
             x['category'] == 'double_payment'],
            ['refunded: refund %s' % rid2],
            '... and the report\'s row of its double payment says it was '
            'refunded, not that it failed', first)
    r = inst.cli('reconcile', '--profile', 'upshop', '--statement', path,
                 '--date', now.strftime('%Y-%m-%d'), '--report-dir', work,
                 '--trust-file')
    with open(report, newline='', encoding='utf-8') as fh:
        second = fh.read()
    tap.ok(r.returncode == 0 and second == first, 'reconcile again: the '
           'same report', r.stderr[-400:], first, second)


def main(tap):
    if shutil.which('openssl') is None:
        tap.skip_all('the openssl command is not installed')
    work = tempfile.mkdtemp(prefix='payhook-e2e-up-pki-')
    mock = None
    try:
        pki = harness.unionpay_test_pki(work)
        mer_key, mer_cert = harness.unionpay_merchant_cert(work, 700)
        signer = Signer(pki, work)
        mock = MockUnionPay(signer, read(mer_cert))
        profiles = {'upshop': harness.unionpay_profile(
            MER_ID, pki, mer_key, mer_cert, verify=True,
            api_base='http://%s:%d' % (harness.HOST, mock.port))}
        inst = harness.Instance(tap, 'unionpay', profiles=profiles)
        inst.check_passes('payhook check accepts the upshop profile')
        inst.start()
        base = inst.last_seq()
        test_notifications(tap, inst, signer, base)
        test_query(tap, inst, signer, mock)
        test_no_download(tap, inst, mock)
        test_portal_refunds(tap, inst, signer)
    finally:
        if mock is not None:
            mock.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    harness.run(main)
