#!/usr/bin/env python3
"""Hostile statement downloads (`payhook reconcile --download`).

Each function below is one attack on the statement payhook fetches
itself, and what payhook must do about it:

* a link elsewhere: a provider's signed answer names where the bill is,
  and the link points at a place the profile did not choose: another
  port of 127.0.0.1, another name of the host, https where api_base says
  http.  payhook calls only api_base's origin, or https on port 443 to a
  host the plugin lists: it refuses the link (exit 1, "refused to call
  ..."), never connects there, reconciles nothing and keeps nothing.
  Alipay (the link query's bill_download_url, a loopback Alipay) and
  WeChat Pay v3 (tradebill's download_url, the simulator), whose plain
  http link is asked of api_base by its path: the file then comes from
  the simulator, never from where the link points;
* an answer without end: a provider API whose bill answer is larger than
  the 256 MiB payhook takes (sent until payhook hangs up, chunked or
  until the connection closes, or announced by a Content-Length above
  the bound).  payhook stops at the bound and refuses for good: exit 1
  (not 75: the day is as large when asked again), saying why, never holds much more than the bound in memory,
  reconciles nothing and keeps nothing.

Run by hand after make: tests/e2e/run-python tests/attacks/test_downloads.py
"""

import os
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
import harness  # noqa: E402
from harness import HOST, PROFILES, LoopbackListener, MockServer  # noqa

try:
    import test_alipay  # noqa: E402
    from test_download import pay_day, v3_profile  # noqa: E402
except ImportError:     # python3-cryptography
    test_alipay = None

MIB = 1 << 20
BOUND = 256 * MIB           # what payhook takes of one answer
SENT_MAX = BOUND + 64 * MIB  # what the endless API sends at the most


def reconcile_download(inst, prof, day, reports, timeout=300):
    return inst.cli('reconcile', '--profile', prof, '--download', '--date',
                    day, '--report-dir', reports, timeout=timeout)


def new_reports(inst, name):
    path = os.path.join(inst.dir, 'reports-' + name)
    os.makedirs(path)
    return path


def check_unchanged(tap, inst, what, r, base, pending, reports):
    """Nothing reconciled: no statement read, the orders the statement
    names still PENDING, no event, nothing written beside the reports."""
    tap.ok('statement lines' not in r.stdout and 'downloaded:'
           not in r.stdout, '%s: no statement read' % what, r.stdout)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PENDING'
               for o in pending), '%s: the orders it names stay PENDING'
           % what)
    tap.is_([e.get('type') for e in inst.all_events(base)], [],
            '%s: no event' % what)
    tap.is_(sorted(os.listdir(reports)), [], '%s: no statement kept, no '
            'report written' % what)


def check_refused_link(tap, inst, what, r, link, base, pending, reports):
    tap.is_(r.returncode, 1, '%s: exit 1' % what, r.stdout + r.stderr)
    tap.like(r.stderr, r'statement download: refused to call %s, neither '
             r"api_base's origin nor an https download host of the \w+ "
             r'plugin' % link.replace('.', r'\.'),
             '%s: refused, saying where it would have gone' % what)
    check_unchanged(tap, inst, what, r, base, pending, reports)


# ---------------------------------------------------------------------------
# 1. Links elsewhere
# ---------------------------------------------------------------------------

def test_alipay_links(tap, inst, mock, listener):
    """Attack: a signed Alipay answer whose bill_download_url points
    where the profile's api_base does not (the mock's own links are
    http://127.0.0.1:<its port>)."""
    cases = [
        ('another name of the host', 'http://localhost:%d' % mock.port,
         'http://localhost:%d' % mock.port, mock),
        ('another port', 'http://%s:%d' % (HOST, listener.port),
         'http://%s:%d' % (HOST, listener.port), listener),
        ('https where api_base is http', 'https://%s:%d' % (HOST, mock.port),
         'https://%s:%d' % (HOST, mock.port), mock),
    ]
    for days_ago, (name, origin, refused, there) in enumerate(cases, 4):
        what = 'Alipay link to %s' % name
        day = test_alipay.bill_day(days_ago)
        pend = 'AX' + os.urandom(5).hex().upper()
        tap.is_(inst.create_order(pend, 1234, profile='alishop').status, 201,
                '%s: an order the bill says was paid' % what)
        mock.bills[day] = test_alipay.bill_zip(day, test_alipay.gbk_text(
            test_alipay.bill_lines([(pend, test_alipay.new_trade_no())])))
        mock.elsewhere[day] = origin
        reports = new_reports(inst, 'alipay-%d' % days_ago)
        base, nreq = inst.last_seq(), len(mock.requests)
        seen = there.connections
        r = reconcile_download(inst, 'alishop', day, reports)
        asked = len(mock.requests) - nreq
        tap.is_(asked, 1, '%s: the link asked for once' % what)
        check_refused_link(tap, inst, what, r, refused, base, [pend],
                           reports)
        # The mock counts the connection of the link query too.
        tap.is_(there.connections - seen - (asked if there is mock else 0),
                0, '%s: no connection to where it points' % what)
    tap.is_(mock.downloads, [], 'Alipay: no link was ever fetched')


def test_wechat_links(tap, inst, sim, listener):
    """Attack: a signed WeChat Pay v3 tradebill answer whose download_url
    points elsewhere (/_sim/bill_mode link)."""
    prof = 'wxv3dl'
    origin = 'https://%s:%d' % (HOST, listener.port)
    day, _, lost = pay_day(tap, inst, sim, prof, 3)
    what = 'WeChat v3 link to another port over https'
    reports = new_reports(inst, 'wechat-https')
    sim.control('/_sim/bill_mode', {'link': origin})
    base, files = inst.last_seq(), sim.stats()['bills']['files']
    r = reconcile_download(inst, prof, day, reports)
    check_refused_link(tap, inst, what, r, origin, base, lost, reports)
    tap.is_((listener.connections, sim.stats()['bills']['files'] - files),
            (0, 0), '%s: no connection there, no file fetched' % what)

    # Plain http: only the path and query of the link are taken, asked of
    # api_base; the file comes from the simulator as signed.
    origin = 'http://%s:%d' % (HOST, listener.port)
    what = 'WeChat v3 link to another port over http'
    sim.control('/_sim/bill_mode', {'link': origin})
    r = reconcile_download(inst, prof, day, reports)
    sim.control('/_sim/bill_mode', {})
    tap.is_(r.returncode, 0, '%s: the file asked of api_base: exit 0' % what,
            r.stdout + r.stderr)
    tap.is_((listener.connections, sim.stats()['bills']['files'] - files),
            (0, 1), '%s: no connection there, the file fetched from the '
            'simulator' % what)
    tap.ok(all((inst.order(o) or {}).get('state') == 'PAID' for o in lost),
           '%s: the statement as signed reconciled' % what)


# ---------------------------------------------------------------------------
# 2. An answer without end
# ---------------------------------------------------------------------------

class EndlessApi(MockServer):
    """A WeChat Pay v2 API whose every answer is a trade bill that goes
    on: its header, then the same row of `oid` again and again, at most
    SENT_MAX bytes, sent until the client hangs up.  framing: 'chunked',
    'close' (no length, the end of the connection is the end) or
    'length' (Content-Length: SENT_MAX)."""

    def __init__(self, oid):
        self.framing = 'chunked'
        self.sent = 0
        bill = harness.provsim.WeChatBill
        row = ','.join('`' + v for v in bill.payment_row(
            PROFILES['wxshop'], '2026-01-01 10:00:00', harness.txn_id('e'),
            oid, 'CNY', 100)).encode('utf-8') + b'\r\n'
        self.head = bill.BILL_HEADER.encode('utf-8') + b'\r\n'
        self.chunk = row * (MIB // len(row))
        MockServer.__init__(self)

    def handle(self, h, body):
        self.requests.append(h.path)
        self.sent = 0
        chunked = self.framing == 'chunked'
        framing = {'chunked': b'Transfer-Encoding: chunked\r\n',
                   'close': b'',
                   'length': b'Content-Length: %d\r\n' % SENT_MAX}
        h.close_connection = True
        try:
            h.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain; '
                          b'charset=utf-8\r\nConnection: close\r\n' +
                          framing[self.framing] + b'\r\n')
            data = self.head
            while self.sent + len(data) <= SENT_MAX:
                h.wfile.write(b'%x\r\n%s\r\n' % (len(data), data)
                              if chunked else data)
                self.sent += len(data)
                data = self.chunk
            if chunked:
                h.wfile.write(b'0\r\n\r\n')
        except OSError:
            pass        # payhook hung up


def cli_measured(inst, *args, timeout=300):
    """`payhook -c CONFIG args` as Instance.cli, and the peak resident
    size of that process (KiB, from wait4): (CompletedProcess, KiB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([harness.PAYHOOK, '-c', inst.config] +
                             list(args), stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        _, status, usage = os.wait4(p.pid, 0)
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        text = []
        for fh in (out, err):
            fh.seek(0)
            text.append(fh.read().decode('utf-8', 'replace'))
    return subprocess.CompletedProcess(p.args, p.returncode, *text), \
        usage.ru_maxrss


def test_endless_answer(tap, inst, api, oid):
    """Attack: the provider API (or whoever answers for it) sends a bill
    larger than payhook takes."""
    said = r'answer larger than %d bytes' % BOUND
    for framing in ('chunked', 'close', 'length'):
        what = 'a bill without end (%s)' % framing
        api.framing = framing
        reports = new_reports(inst, 'endless-' + framing)
        base, t0 = inst.last_seq(), time.time()
        r, rss = cli_measured(inst, 'reconcile', '--profile', 'wxbig',
                              '--download', '--date', '2026-01-01',
                              '--report-dir', reports)
        took = time.time() - t0
        tap.diag('%s: exit %d after %.1f s, %d MiB sent, peak RSS %d MiB'
                 % (what, r.returncode, took, api.sent // MIB, rss // 1024))
        # Exit 1, not 75: the same day is as large when asked again.
        tap.is_(r.returncode, 1, '%s: refused for good, exit 1' % what,
                r.stdout + r.stderr)
        tap.like(r.stderr, r'payhook: reconcile wxbig 2026-01-01: '
                 r'statement download: %s' % said,
                 '%s: says the answer was too large' % what)
        tap.ok(api.sent < SENT_MAX, '%s: payhook hung up before the end '
               '(%d MiB of %d sent)' % (what, api.sent // MIB,
                                        SENT_MAX // MIB))
        held = '%s: payhook held at most the bound and 64 MiB' % what
        if harness.built_with_asan():
            tap.skip(held, 'AddressSanitizer build: its quarantine keeps '
                     'freed buffers (peak RSS %d MiB)' % (rss // 1024))
        else:
            tap.ok(rss < (BOUND + 64 * MIB) // 1024, '%s (peak RSS %d MiB)'
                   % (held, rss // 1024))
        check_unchanged(tap, inst, what, r, base, [oid], reports)


# ---------------------------------------------------------------------------

def main(tap):
    if test_alipay is None or test_alipay.rsa is None:
        tap.skip_all('python3 cryptography not installed '
                     '(Debian package python3-cryptography)')
    keys = {'alipay': harness.rsa_key(), 'app': harness.rsa_key()}
    mock = test_alipay.MockAlipay(keys['alipay'], keys['app'].public_key())
    oid = 'EN' + os.urandom(5).hex().upper()
    api = EndlessApi(oid)
    listener = LoopbackListener()
    v3 = v3_profile()
    sim = harness.Simulator(tap, profiles={'wxv3dl': v3}, time_factor=1000,
                            name='sim-dl').start()
    v3['settings'].update(api_base=sim.api_base, allow_insecure_http='yes')
    wx = PROFILES['wxshop']
    profiles = {
        'wxv3dl': v3,
        'wxbig': {'plugin': 'wechat', 'settings': {
            'appid': wx['appid'], 'mch_id': wx['mch_id'],
            'api_key_file': 'keys/wxbig.key', 'sign_type': 'MD5',
            'api_base': 'http://%s:%d' % (HOST, api.port),
            'allow_insecure_http': 'yes'},
            'files': {'keys/wxbig.key': (wx['key'], 0o600)}},
        'alishop': harness.alipay_profile(
            test_alipay.APP_ID, test_alipay.SELLER_ID,
            harness.pub_pem(keys['alipay']), harness.priv_pem(keys['app']),
            api_base='http://%s:%d' % (HOST, mock.port)),
    }
    try:
        inst = harness.Instance(tap, 'downloads', profiles=profiles)
        inst.start()
        sim.point_at(inst)
        t0 = time.time()
        test_alipay_links(tap, inst, mock, listener)
        test_wechat_links(tap, inst, sim, listener)
        tap.diag('links: %.1f s' % (time.time() - t0))
        t0 = time.time()
        tap.is_(inst.create_order(oid, 100, profile='wxbig').status, 201,
                'an order the endless bill names')
        test_endless_answer(tap, inst, api, oid)
        tap.diag('answers without end: %.1f s' % (time.time() - t0))
        inst.stop()
        tap.is_(sim.stop(), 0, 'the simulator stops cleanly')
    finally:
        for server in (mock, api, listener):
            server.close()


if __name__ == '__main__':
    harness.run(main)
