#!/usr/bin/env python3
"""End to end: provider calls over TLS with a client certificate.

The provider simulator sits behind a TLS front on 127.0.0.1 that asks
every client for a certificate of the test's CA (as WeChat Pay v2 does of
refunds). A profile with client_cert_file and client_key_file makes its
refunds through it, the certificate presented; the CA given by ca_file
is the only one the front's certificate is checked against. A profile
without a client certificate is refused by the front, and its refund
stays pending with the reason logged, never made.
"""

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST  # noqa: E402


def openssl(*args):
    subprocess.run(['openssl'] + list(args), stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   check=True, timeout=60)


def make_pki(d):
    """A CA, the front's certificate for 127.0.0.1 and a client's, in d."""
    p = lambda n: os.path.join(d, n)
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
            'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('ca.key'),
            '-out', p('ca.pem'), '-subj', '/CN=payhook test CA', '-days', '2')
    make_cert(d, 'front', 'subjectAltName=IP:127.0.0.1')
    make_cert(d, 'client', 'extendedKeyUsage=clientAuth')


def make_cert(d, name, ext):
    """A certificate of the CA in d, CN name, with extension ext."""
    p = lambda n: os.path.join(d, n)
    openssl('req', '-newkey', 'ec', '-pkeyopt',
            'ec_paramgen_curve:prime256v1', '-nodes', '-keyout',
            p(name + '.key'), '-out', p(name + '.csr'), '-subj',
            '/CN=%s/O=payhook test' % name)
    with open(p(name + '.ext'), 'w') as f:
        f.write(ext + '\n')
    openssl('x509', '-req', '-in', p(name + '.csr'), '-CA', p('ca.pem'),
            '-CAkey', p('ca.key'), '-CAcreateserial', '-out',
            p(name + '.pem'), '-days', '2', '-extfile', p(name + '.ext'))
    os.chmod(p(name + '.key'), 0o600)


class Front:
    """TLS in front of the simulator: asks for a client certificate of the
    CA, records the client's CN (or the handshake's error), relays the
    bytes to the simulator's plain port."""

    def __init__(self, d, sim_port):
        self.sim_port = sim_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(d, 'front.pem'),
                                 os.path.join(d, 'front.key'))
        self.ctx.load_verify_locations(os.path.join(d, 'ca.pem'))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.seen = []              # client CNs, or 'refused: ...'
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _a = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        try:
            t = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.seen.append('refused: %s' % e)
            c.close()
            return
        cn = dict(x[0] for x in t.getpeercert().get('subject', ()))
        with self.lock:
            self.seen.append(cn.get('commonName'))
        up = socket.create_connection((HOST, self.sim_port), timeout=30)
        back = threading.Thread(target=harness.relay, args=(up, t),
                                daemon=True)
        back.start()
        harness.relay(t, up)
        back.join(30)
        t.close()
        up.close()

    def take(self):
        with self.lock:
            out, self.seen = self.seen, []
        return out

    def close(self):
        self.closed = True
        self.sock.close()


class TlsInstance(harness.Instance):
    """Every profile's calls go to the front over https, its CA the one
    ca_file names; wxshop presents the client certificate."""

    def __init__(self, tap, name, front_port, pki, **kw):
        self.front_port = front_port
        self.pki = pki
        harness.Instance.__init__(self, tap, name, **kw)

    def core_settings(self):
        core = harness.Instance.core_settings(self)
        core['ca_file'] = 'certs/ca.pem'
        return core

    def profile_settings(self):
        out = harness.Instance.profile_settings(self)
        for settings in out.values():
            settings['api_base'] = 'https://%s:%d' % (HOST, self.front_port)
        out['wxshop']['client_cert_file'] = 'certs/client.pem'
        out['wxshop']['client_key_file'] = 'keys/client.key'
        return out

    def write(self):
        for src, dst, mode in (('ca.pem', 'certs/ca.pem', 0o644),
                               ('client.pem', 'certs/client.pem', 0o644),
                               ('client.key', 'keys/client.key', 0o600)):
            with open(os.path.join(self.pki, src), 'rb') as f:
                harness.write_file(os.path.join(self.etc, dst), f.read(),
                                   mode=mode)
        harness.Instance.write(self)


def refund_of(tap, inst, sim, profile, oid):
    """Pays oid at the simulator through profile, asks for a refund of it
    and runs the refund runner; returns (runner, refund as the API shows
    it)."""
    inst.create_order(oid, 800, profile=profile)
    sim.control('/_sim/pay', {'profile': profile, 'order_id': oid,
                              'amount': 800})
    tap.ok(harness.wait_for(lambda: (inst.order(oid) or {}).get(
        'state') == 'PAID', 20), '%s: an order paid at the simulator' %
        profile)
    rid = 'TLS-' + oid
    r = inst.api('POST', '/orders/%s/refunds' % oid,
                 {'amount': 300, 'refund_id': rid})
    tap.is_(r.status, 201, '%s: refund asked' % profile, r.describe())
    p = inst.cli('refunds', 'run')
    return p, (inst.api('GET', '/refunds/' + rid).json or {})


def main(tap):
    pki = tempfile.mkdtemp(prefix='payhook-tls-')
    make_pki(pki)
    sim = harness.Simulator(tap, time_factor=1000).start()
    front = Front(pki, sim.port)
    inst = TlsInstance(tap, 'tls', front.port, pki, max_procs=1)
    inst.start()
    sim.point_at(inst)

    p, ref = refund_of(tap, inst, sim, 'wxshop', 'TLSA-' + os.urandom(3).hex())
    seen = front.take()
    tap.ok('client' in seen, 'the refund call presented the client '
           'certificate over TLS', seen, p.stderr[-600:])
    tap.ok(not [s for s in seen if s != 'client'], '... and every call of '
           'the profile did', seen)
    tap.is_(ref.get('state'), 'SUCCEEDED', '... the refund was made',
            ref, p.stdout[-400:], p.stderr[-600:])

    others = [n for n in inst.profiles if n != 'wxshop' and
              inst.profiles[n].get('plugin') == 'wechat']
    if not others:
        tap.skip('a profile without a client certificate', 'the suite '
                 'has one WeChat profile only')
    else:
        p, ref = refund_of(tap, inst, sim, others[0],
                           'TLSB-' + os.urandom(3).hex())
        seen = front.take()
        tap.ok(seen and all(s.startswith('refused') for s in seen),
               'a profile without a client certificate is refused by the '
               'front', seen, p.stderr[-600:])
        tap.is_(ref.get('state'), 'PENDING', '... its refund stays pending',
                ref)
        # The words after it are TLS's, and depend on which side of the
        # handshake saw the refusal first.
        tap.ok('provider not reached' in p.stderr, '... the runner says '
               'the provider was not reached', p.returncode,
               p.stderr[-600:])

    # payhook.fcgi asks the provider before an attempt: its one process
    # read the files when it started, and keeps presenting what it
    # checked after they are replaced by links to another certificate.
    oid = 'TLSC-' + os.urandom(3).hex()
    inst.create_order(oid, 500)
    front.take()
    r = inst.api('POST', '/orders/%s/attempts' % oid, {'profile': 'wxshop'})
    tap.is_((r.status, front.take()), (201, ['client']), 'an attempt: the '
            'provider is asked with the client certificate', r.describe())
    make_cert(pki, 'intruder', 'extendedKeyUsage=clientAuth')
    for src, dst in (('intruder.pem', 'certs/client.pem'),
                     ('intruder.key', 'keys/client.key')):
        os.unlink(os.path.join(inst.etc, dst))
        os.symlink(os.path.join(pki, src), os.path.join(inst.etc, dst))
    oid = 'TLSD-' + os.urandom(3).hex()
    inst.create_order(oid, 500)
    r = inst.api('POST', '/orders/%s/attempts' % oid, {'profile': 'wxshop'})
    tap.is_((r.status, front.take()), (201, ['client']), '... and with '
            'the one it checked after the files became links to another',
            r.describe())

    inst.cleanup()
    front.close()
    sim.stop()


if __name__ == '__main__':
    harness.run(main)
