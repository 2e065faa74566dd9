"""Crash states of payhook's store, built from a recorded run and checked.

The recorder (tests/crash/recorder.c, preloaded into payhook.fcgi and
payhook) logs, in one ordered file, every write to the store's file, every
flush of it, and every answer the programs sent.  From that log this module

1. reads what was acknowledged, and when: each FastCGI exchange is parsed
   from the bytes read from and written to the socket; an answer counts
   from its first byte written (``facts_of``);
2. builds the file as a power cut at each point of the log could leave it
   (``Disk``): what a flush that completed before the point covered is
   there; each 4 KiB page written since is there in one of the versions
   the page cache held, or not at all, independently of the other pages
   (none of them, all of them, each prefix in log order, seeded random
   subsets), and the LMDB meta pages (pages 0 and 1) may be torn at
   512-byte sectors;
3. opens every distinct crash state with payhook (``payhook check``, then
   ``payhook events`` and ``payhook order list --json``) and judges what
   it reads back (``judge``): it must open cleanly; every fact
   acknowledged before the crash point must be there, applied once; the
   event feed must have no hole below its highest event.

The same bytes can arise at many crash points; they are opened once and
judged against the facts of the latest point where they arise (facts only
accumulate, so that is the strongest demand).  When a state fails, the
earliest point where it fails is reported with the writes it kept.

Standard library only; the refund notifications' req_info is decrypted
with python3-cryptography when present, else with the openssl command.
"""

import base64
import bisect
import collections
import concurrent.futures
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import time
import xml.etree.ElementTree as ET

PAGE = 4096
SECTOR = 512
META_PAGES = (0, 1)         # LMDB's two meta pages

# ---------------------------------------------------------------------------
# The log (the format of tests/crash/recorder.c)
# ---------------------------------------------------------------------------

HDR = struct.Struct('<IHHiIQQQQII')
MAGIC = 0x43524850
(R_PROC, R_OPEN, R_WRITE, R_TRUNC, R_SYNC_START, R_SYNC_DONE, R_MMAP,
 R_MSYNC, R_ACCEPT, R_REQUEST, R_ANSWER, R_CONN_CLOSE, R_LINK, R_RENAME,
 R_UNLINK) = range(1, 16)
F_DSYNC, F_CREATED, F_DIR = 0x1, 0x2, 0x4
TYPE_NAMES = {R_PROC: 'proc', R_OPEN: 'open', R_WRITE: 'write',
              R_TRUNC: 'truncate', R_SYNC_START: 'flush-start',
              R_SYNC_DONE: 'flush-done', R_MMAP: 'mmap', R_MSYNC: 'msync',
              R_ACCEPT: 'accept', R_REQUEST: 'request', R_ANSWER: 'answer',
              R_CONN_CLOSE: 'close', R_LINK: 'link', R_RENAME: 'rename',
              R_UNLINK: 'unlink'}
SYNC_NAMES = {1: 'fsync', 2: 'fdatasync', 3: 'msync'}
MAP_SHARED = 0x01
PROT_WRITE = 0x2

Rec = collections.namedtuple('Rec',
                             'idx type flags pid conn ino dir off aux data')


class LogError(Exception):
    pass


def read_log(path):
    """Every record of the log, in order."""
    with open(path, 'rb') as fh:
        data = fh.read()
    out = []
    pos = 0
    while pos < len(data):
        if pos + HDR.size > len(data):
            raise LogError('%s: a record header is cut at byte %d'
                           % (path, pos))
        magic, typ, flags, pid, conn, ino, dir_, off, aux, ln, _ = \
            HDR.unpack_from(data, pos)
        if magic != MAGIC or typ not in TYPE_NAMES:
            raise LogError('%s: no record at byte %d' % (path, pos))
        end = pos + HDR.size + ln
        if end > len(data):
            raise LogError('%s: the record at byte %d is cut' % (path, pos))
        out.append(Rec(len(out), typ, flags, pid, conn, ino, dir_, off,
                       aux, data[pos + HDR.size:end]))
        pos = end
    return out


def describe(rec):
    """One line about a record, for reports."""
    name = TYPE_NAMES[rec.type]
    if rec.type == R_WRITE:
        return ('#%d pid %d write %d bytes at %d%s'
                % (rec.idx, rec.pid, len(rec.data), rec.off,
                   ' (O_DSYNC)' if rec.flags & F_DSYNC else ''))
    if rec.type in (R_SYNC_START, R_SYNC_DONE):
        return '#%d pid %d %s%s %s' % (rec.idx, rec.pid,
                                       SYNC_NAMES.get(rec.aux, '?'),
                                       ' of the folder' if rec.flags & F_DIR
                                       else '', name)
    if rec.type in (R_OPEN, R_LINK, R_RENAME, R_UNLINK):
        return '#%d pid %d %s%s %s' % (
            rec.idx, rec.pid, name,
            ' (created)' if rec.type == R_OPEN and rec.flags & F_CREATED
            else '', ' -> '.join(p.decode('utf-8', 'replace')
                                 for p in rec.data.split(b'\0')))
    if rec.type == R_ANSWER:
        return '#%d pid %d answer on connection %d' % (rec.idx, rec.pid,
                                                        rec.conn)
    return '#%d pid %d %s' % (rec.idx, rec.pid, name)


# ---------------------------------------------------------------------------
# What was answered: FastCGI exchanges and the command line's output
# ---------------------------------------------------------------------------

class Exchange:
    """One request and its answer.  ack: the index of the record of the
    answer's first byte (None when nothing was answered)."""

    def __init__(self, pid, conn):
        self.pid, self.conn = pid, conn
        self.request = bytearray()
        self.answer = bytearray()
        self.ack = None
        self.params = {}
        self.body = b''
        self.status = None
        self.resp_headers = {}
        self.resp_body = b''
        self.argv = None        # a command line's answer: its arguments

    @property
    def method(self):
        return self.params.get('REQUEST_METHOD', '')

    @property
    def uri(self):
        return self.params.get('REQUEST_URI', '')


def _fcgi_records(data):
    pos = 0
    while pos + 8 <= len(data):
        _ver, typ, _rid, clen, plen, _ = struct.unpack_from('>BBHHBB', data,
                                                            pos)
        content = data[pos + 8:pos + 8 + clen]
        if len(content) < clen:
            return
        yield typ, content
        pos += 8 + clen + plen


def _fcgi_params(data):
    out = {}
    pos = 0

    def length():
        nonlocal pos
        b = data[pos]
        if b & 0x80:
            n = struct.unpack_from('>I', data, pos)[0] & 0x7fffffff
            pos += 4
        else:
            n = b
            pos += 1
        return n
    while pos < len(data):
        nl = length()
        vl = length()
        name = data[pos:pos + nl]
        pos += nl
        value = data[pos:pos + vl]
        pos += vl
        out[name.decode('latin-1')] = value.decode('utf-8', 'replace')
    return out


def _parse_exchange(ex):
    params = bytearray()
    stdin = bytearray()
    for typ, content in _fcgi_records(bytes(ex.request)):
        if typ == 4:
            params += content
        elif typ == 5:
            stdin += content
    ex.params = _fcgi_params(bytes(params))
    ex.body = bytes(stdin)
    stdout = bytearray()
    for typ, content in _fcgi_records(bytes(ex.answer)):
        if typ == 6:
            stdout += content
    head, _, body = bytes(stdout).partition(b'\r\n\r\n')
    for line in head.split(b'\r\n'):
        name, _, value = line.partition(b':')
        ex.resp_headers[name.strip().lower().decode('latin-1')] = \
            value.strip().decode('latin-1')
    m = re.match(r'(\d{3})', ex.resp_headers.get('status', ''))
    ex.status = int(m.group(1)) if m else None
    ex.resp_body = body


class Recording:
    """A recorded run: the records, the processes and the exchanges."""

    def __init__(self, path):
        self.path = path
        self.recs = read_log(path)
        self.procs = {}                 # pid -> argv
        self.exchanges = []
        conns = {}
        for r in self.recs:
            if r.type == R_PROC:
                self.procs[r.pid] = [a.decode('utf-8', 'replace') for a in
                                     r.data.split(b'\0') if a]
            elif r.type in (R_ACCEPT, R_REQUEST, R_ANSWER):
                key = (r.pid, r.conn)
                ex = conns.get(key)
                if ex is None or r.type == R_ACCEPT:
                    ex = conns[key] = Exchange(r.pid, r.conn)
                    self.exchanges.append(ex)
                if r.type == R_REQUEST:
                    ex.request += r.data
                elif r.type == R_ANSWER:
                    if ex.ack is None:
                        ex.ack = r.idx
                    ex.answer += r.data
        for ex in self.exchanges:
            if ex.conn == 0:        # standard output of a command
                ex.argv = self.procs.get(ex.pid, [])
                ex.resp_body = bytes(ex.answer)
            else:
                _parse_exchange(ex)

    def count(self, typ):
        return sum(1 for r in self.recs if r.type == typ)


# ---------------------------------------------------------------------------
# Facts: what an answer told somebody that a crash must not take back
# ---------------------------------------------------------------------------

PAYMENT_EVENTS = {'order.paid', 'order.double_payment', 'order.late_payment',
                  'order.amount_mismatch', 'order.profile_mismatch',
                  'payment.unknown_order'}
REFUND_SETTLED = {'refund.succeeded', 'refund.failed'}

Fact = collections.namedtuple('Fact', 'ack kind key detail')
# kind: 'payment' (key: profile, txn; detail: order id)
#       'payment_failed' (key: profile, txn, order id)
#       'refund' (key: refund id; detail: succeeded?)
#       'order' (key: order id; detail: amount)
#       'order_state' (key: order id; detail: (state, txn))
#       'event' (key: seq; detail: (type, order id, txn))

WECHAT_SUCCESS = (b'<xml><return_code><![CDATA[SUCCESS]]></return_code>')


def _xml_fields(body):
    root = ET.fromstring(body)
    return {child.tag: (child.text or '') for child in root}


def wechat_req_info(req_info, api_key):
    """The inner XML of a WeChat v2 refund notification: AES-256-ECB under
    the lower-hex MD5 of the API key, PKCS#7."""
    key = hashlib.md5(api_key.encode('utf-8')).hexdigest().encode('ascii')
    ct = base64.b64decode(req_info)
    try:
        from cryptography.hazmat.primitives.ciphers import (
            Cipher, algorithms, modes)
        dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
        plain = dec.update(ct) + dec.finalize()
        plain = plain[:-plain[-1]]
    except ImportError:
        plain = subprocess.run(['openssl', 'enc', '-d', '-aes-256-ecb', '-K',
                                key.hex()], input=ct, check=True,
                               stdout=subprocess.PIPE).stdout
    return _xml_fields(plain)


def _events_answer(ack, doc):
    out = []
    for e in (doc or {}).get('events') or []:
        out.append(Fact(ack, 'event', e.get('seq'),
                        (e.get('type'), e.get('order_id'),
                         e.get('provider_txn_id'))))
    return out


def facts_of(ex, keys):
    """The facts an exchange acknowledged (a list, often empty).  keys:
    {profile: WeChat v2 API key}, to read refund notifications."""
    if ex.ack is None:
        return []
    if ex.argv is not None:
        # `payhook events` printed the feed: those events were shown.
        if 'events' in ex.argv and 'tail' not in ex.argv:
            try:
                return _events_answer(ex.ack, json.loads(ex.resp_body))
            except ValueError:
                return []
        return []
    path = ex.uri.split('?', 1)[0]
    if ex.method == 'POST' and path.startswith('/notify/'):
        profile = path[len('/notify/'):]
        if ex.status != 200 or not ex.resp_body.startswith(WECHAT_SUCCESS):
            return []
        f = _xml_fields(ex.body)
        if 'req_info' in f:
            inner = wechat_req_info(f['req_info'], keys[profile])
            return [Fact(ex.ack, 'refund', inner['out_refund_no'],
                         inner.get('refund_status') == 'SUCCESS')]
        if f.get('result_code') == 'SUCCESS':
            return [Fact(ex.ack, 'payment', (profile, f['transaction_id']),
                         f['out_trade_no'])]
        if f.get('transaction_id'):
            return [Fact(ex.ack, 'payment_failed',
                         (profile, f['transaction_id'], f['out_trade_no']),
                         None)]
        return []
    if ex.status != 200 and ex.status != 201:
        return []
    try:
        doc = json.loads(ex.resp_body)
    except ValueError:
        return []
    if ex.method == 'POST' and path == '/orders' and ex.status == 201:
        return [Fact(ex.ack, 'order', doc['order_id'], doc.get('amount'))]
    if ex.method == 'GET' and path == '/events':
        return _events_answer(ex.ack, doc)
    if ex.method == 'GET' and path.startswith('/orders/') and \
            path.count('/') == 2 and isinstance(doc, dict):
        return [Fact(ex.ack, 'order_state', doc.get('order_id'),
                     (doc.get('state'), doc.get('provider_txn_id')))]
    return []


def all_facts(recording, keys):
    facts = []
    for ex in recording.exchanges:
        facts += facts_of(ex, keys)
    facts.sort(key=lambda f: f.ack)
    return facts


def fact_text(f):
    if f.kind == 'payment':
        return 'payment %s of order %s (profile %s)' % (f.key[1], f.detail,
                                                        f.key[0])
    if f.kind == 'payment_failed':
        return 'failed payment %s of order %s' % (f.key[1], f.key[2])
    if f.kind == 'refund':
        return 'refund %s' % f.key
    if f.kind == 'order':
        return 'order %s created' % f.key
    if f.kind == 'order_state':
        return 'order %s shown %s' % (f.key, f.detail[0])
    return 'event #%s shown (%s, order %s)' % (f.key, f.detail[0],
                                               f.detail[1])


# ---------------------------------------------------------------------------
# Judging what payhook read back from a crash state
# ---------------------------------------------------------------------------

def judge(back, facts):
    """Problems (strings) of a crash state's read-back against the facts
    acknowledged before its crash point; [] when it is sound."""
    if back.get('error'):
        return [back['error']]
    events = back['events']
    problems = []
    seqs = [e.get('seq') for e in events]
    if seqs != list(range(1, len(seqs) + 1)):
        missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs)) \
            if seqs else []
        problems.append('event feed has holes: highest %s, missing %s'
                        % (max(seqs) if seqs else 0, missing[:10]))
    pay = collections.defaultdict(list)
    failed = collections.defaultdict(list)
    refunds = collections.defaultdict(list)
    by_seq = {}
    for e in events:
        by_seq[e.get('seq')] = e
        if e.get('type') in PAYMENT_EVENTS:
            pay[(e.get('profile'), e.get('provider_txn_id'))].append(e)
        elif e.get('type') == 'payment.failed':
            failed[(e.get('profile'), e.get('provider_txn_id'),
                    e.get('order_id'))].append(e)
        elif e.get('type') in REFUND_SETTLED:
            refunds[e.get('refund_id')].append(e)
    for key, evs in pay.items():
        if len(evs) > 1:
            problems.append('payment %s applied %d times (events %s)'
                            % (key[1], len(evs), [e['seq'] for e in evs]))
    for key, evs in refunds.items():
        if len(evs) > 1:
            problems.append('refund %s settled %d times' % (key, len(evs)))
    orders = {o.get('order_id'): o for o in back['orders']}
    for f in facts:
        if f.kind == 'payment':
            evs = pay.get(f.key, [])
            if len(evs) != 1:
                problems.append('acknowledged %s: %d events'
                                % (fact_text(f), len(evs)))
            elif evs[0]['type'] == 'order.paid':
                o = orders.get(f.detail) or {}
                if o.get('provider_txn_id') != f.key[1] or \
                        o.get('state') == 'PENDING':
                    problems.append('acknowledged %s: the order is %s, '
                                    'paid by %s' % (fact_text(f),
                                                    o.get('state'),
                                                    o.get('provider_txn_id')))
        elif f.kind == 'payment_failed':
            if len(failed.get(f.key, [])) != 1:
                problems.append('acknowledged %s: %d events'
                                % (fact_text(f), len(failed.get(f.key, []))))
        elif f.kind == 'refund':
            if len(refunds.get(f.key, [])) != 1:
                problems.append('acknowledged %s: settled %d times'
                                % (fact_text(f), len(refunds.get(f.key,
                                                                 []))))
        elif f.kind == 'order':
            o = orders.get(f.key)
            if o is None or o.get('amount') != f.detail:
                problems.append('acknowledged %s: %s'
                                % (fact_text(f), 'missing' if o is None else
                                   'amount %s' % o.get('amount')))
        elif f.kind == 'order_state':
            o = orders.get(f.key)
            state, txn = f.detail
            if o is None:
                problems.append('%s: missing' % fact_text(f))
            elif state != 'PENDING' and (o.get('state') == 'PENDING' or
                                         o.get('provider_txn_id') != txn):
                problems.append('%s: now %s' % (fact_text(f), o.get('state')))
        elif f.kind == 'event':
            e = by_seq.get(f.key)
            if e is None or (e.get('type'), e.get('order_id'),
                             e.get('provider_txn_id')) != f.detail:
                problems.append('%s: %s' % (fact_text(f), 'missing'
                                            if e is None else
                                            'now %s' % e.get('type')))
    return problems


def read_back(payhook, config, timeout=60):
    """Opens the store of config with payhook: check, the event feed, the
    orders.  {'events': [...], 'orders': [...]} or {'error': text}."""
    def run(*args):
        try:
            p = subprocess.run([payhook, '-c', config] + list(args),
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, 'payhook %s: no answer in %d s' % (args[0], timeout)
        if p.returncode != 0:
            why = [line for line in p.stderr.decode('utf-8', 'replace')
                   .splitlines() if ': warning: ' not in line]
            return None, 'payhook %s: exit %d: %s' % (
                ' '.join(args[:2]), p.returncode,
                ' '.join(why)[-300:] or 'no message')
        return p.stdout, None
    def run_json(*args):
        out, err = run(*args)
        if err:
            return None, err
        try:
            return json.loads(out), None
        except ValueError:
            return None, 'payhook %s: not JSON' % ' '.join(args[:2])
    _, err = run('check')
    if err:
        return {'error': err}
    events = []
    after = 0
    while True:
        doc, err = run_json('events', '--after', str(after), '--limit',
                            '1000')
        if err:
            return {'error': err}
        batch = doc.get('events') or []
        events += batch
        if len(batch) < 1000:
            break
        after = doc['next']
    orders, err = run_json('order', 'list', '--json', '--limit', '100000')
    if err:
        return {'error': err}
    return {'events': events, 'orders': orders}


# ---------------------------------------------------------------------------
# The disk: what a power cut can leave
# ---------------------------------------------------------------------------

ZERO_PAGE = bytes(PAGE)


def _token(page, data):
    """A 128-bit token of one page's content; 0 for a page of zeros (the
    same as no page: both read as zeros)."""
    if data == ZERO_PAGE:
        return 0
    h = hashlib.blake2b(page.to_bytes(8, 'little') + data, digest_size=16)
    return int.from_bytes(h.digest(), 'little')


class Elem:
    """A page version (or a truncation) not known to be on disk: one page
    of one write, as the page cache held it after that write."""
    __slots__ = ('idx', 'page', 'data', 'token', 'end', 'trunc', 'rec')

    def __init__(self, rec, page, data, end, trunc=None):
        self.idx, self.rec, self.page, self.data = rec.idx, rec, page, data
        self.end, self.trunc = end, trunc
        self.token = _token(page, data) if data is not None else 0


class FileModel:
    """One file (an inode): its pages on disk for sure, in the page cache,
    and the page versions written since the last flush."""

    def __init__(self):
        self.durable = {}       # page -> bytes
        self.dtok = {}          # page -> token
        self.dsig = 0           # XOR of the durable pages' tokens
        self.dlen = 0
        self.cache = {}
        self.clen = 0
        self.pending = []       # Elem, in log order

    def write(self, rec):
        off, data = rec.off, rec.data
        end = off + len(data)
        self.clen = max(self.clen, end)
        elems = []
        for page in range(off // PAGE, (end - 1) // PAGE + 1):
            base = bytearray(self.cache.get(page, ZERO_PAGE))
            lo = max(off, page * PAGE)
            hi = min(end, (page + 1) * PAGE)
            base[lo - page * PAGE:hi - page * PAGE] = data[lo - off:hi - off]
            new = bytes(base)
            self.cache[page] = new
            elems.append(Elem(rec, page, new,
                              min(self.clen, (page + 1) * PAGE)))
        self.pending += elems
        return elems

    def truncate(self, rec):
        length = rec.off
        for page in list(self.cache):
            if page * PAGE >= length:
                del self.cache[page]
            elif (page + 1) * PAGE > length:
                keep = length - page * PAGE
                self.cache[page] = self.cache[page][:keep] + \
                    bytes(PAGE - keep)
        self.clen = length
        self.pending.append(Elem(rec, None, None, length, trunc=length))

    def _set_durable(self, page, data):
        tok = _token(page, data)
        self.dsig ^= self.dtok.get(page, 0) ^ tok
        self.durable[page] = data
        self.dtok[page] = tok

    def _make_durable(self, e):
        if e.trunc is not None:
            for page in list(self.durable):
                if page * PAGE >= e.trunc:
                    self.dsig ^= self.dtok.pop(page)
                    del self.durable[page]
                elif (page + 1) * PAGE > e.trunc:
                    keep = e.trunc - page * PAGE
                    self._set_durable(page, self.durable[page][:keep] +
                                      bytes(PAGE - keep))
            self.dlen = e.trunc
        else:
            self._set_durable(e.page, e.data)
            self.dlen = max(self.dlen, e.end)

    def flush(self, before):
        """A flush that started at record `before` completed: every
        pending element logged before it is on disk."""
        keep = []
        for e in self.pending:
            if e.idx >= before:
                keep.append(e)
            else:
                self._make_durable(e)
        self.pending = keep

    def flush_elems(self, elems):
        for e in elems:
            self._make_durable(e)
        gone = set(id(e) for e in elems)
        self.pending = [e for e in self.pending if id(e) not in gone]


class Names:
    """The names of the store's files: bound in the page cache (cache),
    bound on disk for sure (durable), and the operations on names not yet
    flushed with their folder (pending, in log order).  A folder's pending
    operations reach the disk in order (a prefix of them), as a journaled
    file system writes them."""

    def __init__(self):
        self.cache = {}         # name -> ino
        self.durable = {}
        self.pending = []       # (record, folder ino, [(name, ino|None)])

    def op(self, rec, binds):
        for name, ino in binds:
            if ino is None:
                self.cache.pop(name, None)
            else:
                self.cache[name] = ino
        self.pending.append((rec, rec.dir, binds))

    def flush(self, folder, before):
        keep = []
        for rec, d, binds in self.pending:
            if d == folder and rec.idx < before:
                for name, ino in binds:
                    if ino is None:
                        self.durable.pop(name, None)
                    else:
                        self.durable[name] = ino
            else:
                keep.append((rec, d, binds))
        self.pending = keep

    def prefixes(self, name):
        """(k, the inode name is bound to, or None) after the durable names
        and the first k pending operations: for the smallest k of each
        binding in turn (operations on other names change nothing)."""
        ino = self.durable.get(name)
        out = [(0, ino)]
        for k, (_rec, _d, binds) in enumerate(self.pending, 1):
            for n, i in binds:
                if n == name and i != ino:
                    ino = i
                    out.append((k, ino))
        return out

    def touching(self, name):
        """The pending operations on name."""
        return [rec for rec, _d, binds in self.pending
                if any(n == name for n, _i in binds)]


def _torn(old, new, mask):
    """new in the 512-byte sectors whose bit is set in mask, else old."""
    out = bytearray(old)
    for s in range(PAGE // SECTOR):
        if mask >> s & 1:
            out[s * SECTOR:(s + 1) * SECTOR] = new[s * SECTOR:(s + 1) * SECTOR]
    return bytes(out)


class Choice:
    """One crash state at a crash point: how many pending name operations
    reached the disk (names), the file the store's name then holds (ino,
    None when it has none), which of that file's pending elements reached
    the disk (kept), and its torn meta pages (torn: index -> (old, mask))."""
    __slots__ = ('name', 'names', 'ino', 'kept', 'torn', 'pending')

    def __init__(self, name, kept, torn=None):
        self.name, self.kept, self.torn = name, kept, torn or {}
        self.names, self.ino, self.pending = 0, None, ()

    @property
    def durable_only(self):
        return self.names == 0 and not self.kept and not self.torn


def choices(pending, point, seed, prefixes, randoms, torn_per_page):
    """The crash states of one file at one crash point.  pending: its
    elements not known to be on disk, in log order.  prefixes: how many
    prefixes (None: every one); randoms: how many seeded random subsets;
    torn_per_page: torn variants per pending meta page version."""
    n = len(pending)
    if n == 0:
        return [Choice('flushed', ())]
    out = [Choice('none', ()), Choice('all', tuple(range(n)))]
    ks = list(range(1, n))
    rnd = random.Random('%s/%d' % (seed, point))
    if prefixes is not None and len(ks) > prefixes:
        ks = sorted(rnd.sample(ks, prefixes))
    out += [Choice('prefix-%d' % k, tuple(range(k))) for k in ks]
    for j in range(randoms if n > 1 else 0):
        kept = tuple(i for i in range(n) if rnd.random() < 0.5)
        out.append(Choice('random-%d' % j, kept))
    # Torn meta pages: the page's previous version (on disk, or the one
    # before in the cache) in some sectors, this version in the others,
    # with every element logged before it kept.
    prev = {}
    for i, e in enumerate(pending):
        if e.trunc is not None:
            continue
        if e.page in META_PAGES:
            old = prev.get(e.page)
            masks = [(1 << s) - 1 for s in range(1, PAGE // SECTOR)]
            masks = rnd.sample(masks, min(torn_per_page, len(masks)))
            masks += [rnd.randrange(1, (1 << (PAGE // SECTOR)) - 1)
                      for _ in range(1 if torn_per_page else 0)]
            for m in masks:
                out.append(Choice('torn-%d-page%d-sectors%02x'
                                  % (i, e.page, m), tuple(range(i)),
                                  {i: (old, m)}))
        prev[e.page] = e.data
    return out


class Disk:
    """The store's files and their names while the log is replayed; db is
    the name payhook opens."""

    def __init__(self, db):
        self.db = os.path.normpath(db)
        self.files = {}         # ino -> FileModel
        self.names = Names()
        self.syncs = {}         # (pid, ino) -> index of its start record
        self.flushed = None     # (start, done) of the last flush

    def model(self, ino):
        fm = self.files.get(ino)
        if fm is None:
            fm = self.files[ino] = FileModel()
        return fm

    def apply(self, rec):
        """Replays one record.  Returns the elements of an O_DSYNC write
        (on disk once the write returned) for the caller to flush after
        its in-flight crash point, else None."""
        t = rec.type
        if t == R_WRITE:
            elems = self.model(rec.ino).write(rec)
            return elems if rec.flags & F_DSYNC else None
        if t == R_TRUNC:
            self.model(rec.ino).truncate(rec)
        elif t == R_OPEN:
            name = os.path.normpath(rec.data.decode('utf-8', 'replace'))
            if rec.flags & F_CREATED:
                self.model(rec.ino)
                self.names.op(rec, [(name, rec.ino)])
            elif self.names.cache.get(name) != rec.ino:
                # A file made before the log began: its name is on disk;
                # its bytes must be known.
                if rec.off != 0 and rec.ino not in self.files:
                    raise LogError('record #%d: %s was made before the '
                                   'recording began (%d bytes)'
                                   % (rec.idx, name, rec.off))
                self.model(rec.ino)
                self.names.cache[name] = rec.ino
                self.names.durable[name] = rec.ino
        elif t in (R_LINK, R_RENAME, R_UNLINK):
            paths = [os.path.normpath(p.decode('utf-8', 'replace'))
                     for p in rec.data.split(b'\0')]
            if t == R_LINK:
                self.names.op(rec, [(paths[1], rec.ino)])
            elif t == R_RENAME:
                self.names.op(rec, [(paths[0], None), (paths[1], rec.ino)])
            else:
                self.names.op(rec, [(paths[0], None)])
        elif t == R_SYNC_START:
            self.syncs[(rec.pid, rec.ino)] = rec.idx
        elif t == R_SYNC_DONE:
            start = self.syncs.pop((rec.pid, rec.ino), None)
            if start is not None and rec.off == 0:
                if rec.flags & F_DIR:
                    self.names.flush(rec.ino, start)
                else:
                    self.model(rec.ino).flush(start)
                    self.flushed = (start, rec.idx)
        elif t == R_MMAP:
            if rec.aux & PROT_WRITE and (rec.aux >> 16) & MAP_SHARED:
                raise LogError('record #%d: a store file is mapped '
                               'writable and shared: writes through the map '
                               'are not recorded' % rec.idx)
        return None

    def states(self, point, plan):
        """Every crash state of the store's name at this point."""
        for k, ino in self.names.prefixes(self.db):
            if ino is None:
                c = Choice('no-file', ())
                c.names = k
                yield c
                continue
            pending = self.files[ino].pending
            for c in choices(pending, point, plan.seed, plan.prefixes,
                             plan.randoms, plan.torn):
                c.names, c.ino, c.pending = k, ino, pending
                if k:
                    c.name = 'names-%d+%s' % (k, c.name)
                yield c

    def signature(self, c):
        """A content signature of what a crash state leaves under the
        store's name."""
        if c.ino is None:
            return ('no-file',)
        fm = self.files[c.ino]
        sig, length = fm.dsig, fm.dlen
        over = {}
        for i in c.kept:
            e = c.pending[i]
            if e.trunc is not None:
                return ('image', hashlib.sha256(self.image(c)).digest())
            over[e.page] = e
        for page, e in over.items():
            sig ^= fm.dtok.get(page, 0) ^ e.token
            length = max(length, e.end)
        for i, (old, mask) in c.torn.items():
            e = c.pending[i]
            base = old if old is not None else fm.durable.get(e.page,
                                                              ZERO_PAGE)
            prev = over.get(e.page)
            cur = prev.token if prev is not None else fm.dtok.get(e.page, 0)
            sig ^= cur ^ _token(e.page, _torn(base, e.data, mask))
            length = max(length, (e.page + 1) * PAGE)
        return (sig, length)

    def image(self, c):
        """The bytes under the store's name after a crash state, or None
        when there is no file of that name."""
        if c.ino is None:
            return None
        fm = self.files[c.ino]
        pages = dict(fm.durable)
        length = fm.dlen
        for i in c.kept:
            e = c.pending[i]
            if e.trunc is not None:
                length = e.trunc
                for p in list(pages):
                    if p * PAGE >= length:
                        del pages[p]
                continue
            pages[e.page] = e.data
            length = max(length, e.end)
        for i, (old, mask) in c.torn.items():
            e = c.pending[i]
            base = old if old is not None else fm.durable.get(e.page,
                                                              ZERO_PAGE)
            pages[e.page] = _torn(base, e.data, mask)
            length = max(length, (e.page + 1) * PAGE)
        out = bytearray(length)
        for p, data in pages.items():
            lo = p * PAGE
            if lo < length:
                out[lo:min(lo + PAGE, length)] = data[:length - lo]
        return bytes(out)

    def describe(self, c):
        """What a crash state holds, for a report."""
        parts = []
        ops = self.names.touching(self.db)
        if ops:
            parts.append('name operations not flushed with the folder: '
                         '%s; kept: %s'
                         % (', '.join('#%d %s' % (r.idx, TYPE_NAMES[r.type])
                                      for r in ops),
                            'the first %d of all' % c.names if c.names
                            else 'none'))
        if c.ino is None:
            parts.append('no file under the name %s' % self.db)
            return '; '.join(parts)
        parts.append('on disk: %s' % (
            'every write logged before #%d (the flush done at #%d)'
            % self.flushed if self.flushed else 'no flushed write'))
        kept = []
        for i in c.kept:
            e = c.pending[i]
            if e.trunc is not None:
                kept.append('truncate to %d (#%d)' % (e.trunc, e.idx))
            else:
                kept.append('page %d of #%d (pid %d)' % (e.page, e.idx,
                                                         e.rec.pid))
        for i, (_old, mask) in c.torn.items():
            kept.append('page %d of #%d torn, new in sectors %s'
                        % (c.pending[i].page, c.pending[i].idx,
                           [s for s in range(PAGE // SECTOR)
                            if mask >> s & 1]))
        parts.append('kept of %d page writes not flushed: %s'
                     % (len(c.pending), ', '.join(kept) if kept else
                        'none'))
        return '; '.join(parts)


def crash_points(recs):
    """The indices p (a crash after records 0..p-1) where what the disk
    can hold or what was acknowledged changes."""
    out = []
    seen = set()
    for r in recs:
        if r.type == R_ANSWER:
            if (r.pid, r.conn) in seen:
                continue
            seen.add((r.pid, r.conn))
        elif r.type not in (R_WRITE, R_TRUNC, R_SYNC_DONE, R_OPEN, R_LINK,
                            R_RENAME, R_UNLINK):
            continue
        out.append(r.idx + 1)
    return out


# ---------------------------------------------------------------------------
# Building and checking every crash state of a recording
# ---------------------------------------------------------------------------

class Plan:
    """How many crash states per crash point (see choices()), and how
    many distinct ones to check at most (limit, None: all)."""

    def __init__(self, seed, prefixes=None, randoms=4, torn=3, limit=None):
        self.seed, self.prefixes, self.randoms = seed, prefixes, randoms
        self.torn, self.limit = torn, limit


class Result:
    def __init__(self):
        self.points = 0
        self.states = 0             # (point, state) pairs enumerated
        self.distinct = 0           # distinct contents among them
        self.built = 0
        self.checked = 0
        self.failures = []          # report texts
        self.facts = 0


def _enumerate(recs, db, points, plan, visit):
    """Replays the log; calls visit(point, disk, choice) for every crash
    state of every crash point."""
    disk = Disk(db)
    pset = set(points)
    for r in recs:
        dsync = disk.apply(r)
        p = r.idx + 1
        if p not in pset:
            continue
        for c in disk.states(p, plan):
            visit(p, disk, c)
        if dsync:
            # An O_DSYNC write is on disk when it returns.
            disk.model(r.ino).flush_elems(dsync)
            for c in disk.states(p, plan):
                visit(p, disk, c)


def run(recording, facts, db, plan, payhook, make_config, workdir,
        workers=2, log=None):
    """Builds and checks the crash states of a recording.  db: the store's
    path as payhook opens it; make_config(path) writes a payhook
    configuration whose database is path and returns its name.  Returns a
    Result."""
    recs = recording.recs
    points = crash_points(recs)
    res = Result()
    res.points = len(points)
    res.facts = len(facts)
    t0 = time.time()
    # Pass 1: every crash state's content signature; where it arises.
    where = {}          # sig -> [first point, last point, durable only]

    def sign(p, disk, c):
        res.states += 1
        sig = disk.signature(c)
        w = where.get(sig)
        if w is None:
            where[sig] = [p, p, c.durable_only]
        else:
            w[1] = max(w[1], p)
            w[2] = w[2] or c.durable_only
    _enumerate(recs, db, points, plan, sign)
    res.distinct = len(where)
    chosen = list(where)
    if plan.limit is not None and len(chosen) > plan.limit:
        # A sample: first the states that hold only what was flushed (the
        # ones an answer given before its flush would fail), then the
        # others, each part in seeded random order.
        rnd = random.Random('%s/sample' % plan.seed)
        durable = sorted((s for s in chosen if where[s][2]), key=repr)
        others = sorted((s for s in chosen if not where[s][2]), key=repr)
        rnd.shuffle(durable)
        rnd.shuffle(others)
        share = min(len(durable), plan.limit * 3 // 4)
        chosen = durable[:share] + others[:plan.limit - share]
    chosen = set(chosen)
    if log:
        log('%d crash points, %d crash states, %d distinct (%.0f s); '
            'checking %d' % (res.points, res.states, res.distinct,
                             time.time() - t0, len(chosen)))
    # Pass 2: build each chosen state where it first arises, open it,
    # judge it against the facts of the latest point where it arises.
    slots = [os.path.join(workdir, 'state-%d.mdb' % i) for i in
             range(workers)]
    configs = [make_config(s) for s in slots]
    free = list(range(workers))
    ack_points = [f.ack for f in facts]
    failing = {}                # sig -> what payhook read back
    futures = {}
    done_first = set()

    def check_one(slot, data):
        path = slots[slot]
        for suffix in ('', '-lock', '-metrics', '-archive',
                       '-archive-lock'):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
        if data is not None:
            with open(path, 'wb') as fh:
                fh.write(data)
        return read_back(payhook, configs[slot])

    def collect(block):
        doneset, _ = concurrent.futures.wait(
            list(futures), return_when=concurrent.futures.FIRST_COMPLETED
            if block else concurrent.futures.ALL_COMPLETED)
        for fut in doneset:
            sig, slot = futures.pop(fut)
            free.append(slot)
            back = fut.result()
            res.checked += 1
            n = bisect.bisect_left(ack_points, where[sig][1])
            if judge(back, facts[:n]):
                failing[sig] = back

    def build(p, disk, c):
        sig = disk.signature(c)
        if sig not in chosen or sig in done_first:
            return
        done_first.add(sig)
        data = disk.image(c)
        res.built += 1
        while not free:
            collect(True)
        slot = free.pop()
        futures[pool.submit(check_one, slot, data)] = (sig, slot)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        _enumerate(recs, db, points, plan, build)
        if futures:
            collect(False)
    finally:
        pool.shutdown(wait=True)
    if failing:
        res.failures = _explain(recs, db, points, plan, facts, ack_points,
                                failing)
    return res


def _explain(recs, db, points, plan, facts, ack_points, failing):
    """The report of each failing state: the earliest crash point where
    it fails, what it holds, what is wrong."""
    reports = {}

    def visit(p, disk, c):
        sig = disk.signature(c)
        if sig not in failing or sig in reports:
            return
        n = bisect.bisect_left(ack_points, p)
        problems = judge(failing[sig], facts[:n])
        if not problems:
            return
        more = len(problems) - 3
        reports[sig] = (p, 'crash point %d (after %s), state %s: %s; %s'
            % (p, describe(recs[p - 1]), c.name, disk.describe(c),
               '; '.join(problems[:3]) +
               (' (and %d more)' % more if more > 0 else '')))
    _enumerate(recs, db, points, plan, visit)
    return [text for _p, text in sorted(reports.values())]
