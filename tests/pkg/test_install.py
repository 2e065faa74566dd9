#!/usr/bin/env python3
"""`make install DESTDIR=...`, and a provider built against what it
installed.

The build is installed into a temporary DESTDIR.  The tree must hold the
programs, the plugins in the compiled-in plugin folder (an absolute path
below the prefix), the plugin SDK (headers, libpayhook-provider.a,
payhook-provider.pc), the man pages and the deployment examples, and
nothing in it may point into the build or source tree (no RPATH, no path
outside debug information).

Then the template provider is copied out of the source tree and built with
nothing but
    cc -shared -fPIC template.c $(pkg-config --cflags --libs payhook-provider)
against the installed SDK (its .pc read as if the tree had been moved to
its prefix), dropped into an empty plugin folder, named in a profile, and a
notification goes through it end to end: the installed payhook.fcgi under
lighttpd, an order created, the signed webhook acknowledged and applied
once, a forged one refused.  The complete example plugin of
payhook-provider(3) is built the same way and takes a notification too,
so the man page's code cannot rot.
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'e2e'))
import harness  # noqa: E402

MAN_PAGES = ('man1/payhook.1', 'man8/payhook.fcgi.8', 'man5/payhook.conf.5',
             'man3/payhook-provider.3')
DOCS = ('wechat.md', 'unionpay.md', 'alipay.md', 'aggregator.md')
EXAMPLES = ('payhook.conf.example', 'apache/payhook.conf',
            'lighttpd/payhook.conf', 'systemd/payhook-sweep.service',
            'systemd/payhook-sweep.timer', 'cron/payhook-sweep',
            'logrotate/payhook', 'prometheus/alerts.yml',
            'grafana/payhook.json')


def run(cmd, **kw):
    kw.setdefault('stdin', subprocess.DEVNULL)
    kw.setdefault('stdout', subprocess.PIPE)
    kw.setdefault('stderr', subprocess.STDOUT)
    kw.setdefault('timeout', 600)
    return subprocess.run(cmd, **kw)


def text(r):
    return (r.stdout or b'').decode('utf-8', 'replace')[-3000:]


def make_install(stage):
    """make install DESTDIR=stage in the build tree, outside the make that
    runs the tests (its jobserver is not ours)."""
    env = dict(os.environ)
    for k in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES', 'DESTDIR'):
        env.pop(k, None)
    return run([os.environ.get('MAKE_PROG', 'make'), '-C',
                harness.TOP_BUILDDIR, 'install', 'DESTDIR=' + stage], env=env)


def find(stage, suffix):
    """The one staged file whose path ends with suffix, or None."""
    hits = []
    for root, _dirs, files in os.walk(stage):
        for name in files:
            path = os.path.join(root, name)
            if path.endswith('/' + suffix):
                hits.append(path)
    return hits[0] if len(hits) == 1 else None


def pc_vars(path):
    """The variables of a .pc file, ${...} expanded."""
    out = {}
    with open(path) as fh:
        for line in fh:
            m = re.match(r'(\w+)=(.*)$', line.strip())
            if m:
                out[m.group(1)] = re.sub(r'\$\{(\w+)\}',
                                         lambda v: out.get(v.group(1), ''),
                                         m.group(2))
    return out


def is_binary(path):
    with open(path, 'rb') as fh:
        head = fh.read(8)
    return head.startswith(b'\x7fELF') or head.startswith(b'!<arch>\n')


def content_without_debug(path, tmp):
    """The bytes of path; for ELF files and archives, of a copy without
    debug information (which names the build folder, as it should)."""
    if not is_binary(path):
        with open(path, 'rb') as fh:
            return fh.read()
    copy = os.path.join(tmp, 'nodebug')
    r = run(['objcopy', '--strip-debug', path, copy])
    if r.returncode != 0:
        raise RuntimeError('objcopy %s: %s' % (path, text(r)))
    with open(copy, 'rb') as fh:
        data = fh.read()
    os.unlink(copy)
    return data


def elf_paths(path):
    """RPATH and RUNPATH entries of an ELF file."""
    r = run(['readelf', '-d', path])
    return re.findall(r'\((?:RPATH|RUNPATH)\).*?\[(.*?)\]', text(r))


def check_tree(tap, stage):
    """Returns the install locations, from the installed .pc."""
    pc = find(stage, 'pkgconfig/payhook-provider.pc')
    tap.ok(pc is not None, 'payhook-provider.pc installed')
    if pc is None:
        return None
    v = pc_vars(pc)
    where = {'prefix': v.get('prefix'), 'libdir': v.get('libdir'),
             'includedir': v.get('includedir'),
             'providerdir': v.get('providerdir'), 'pc': pc}
    tap.ok(all(where[k] and where[k].startswith('/') for k in
               ('prefix', 'libdir', 'includedir', 'providerdir')),
           'the .pc names absolute install folders', where)
    staged = lambda p: stage + p  # noqa: E731
    fcgi = find(stage, 'bin/payhook.fcgi')
    cli = find(stage, 'bin/payhook')
    tap.ok(fcgi and cli, 'payhook and payhook.fcgi installed')
    where['fcgi'], where['cli'] = fcgi, cli
    for plug in ('wechat.so', 'unionpay.so'):
        tap.ok(os.path.isfile(staged(os.path.join(where['providerdir'],
                                                  plug))),
               '%s installed in %s' % (plug, where['providerdir']))
    for hdr in ('provider.h', 'sdk.h'):
        tap.ok(os.path.isfile(staged(os.path.join(where['includedir'],
                                                  'payhook', hdr))),
               'payhook/%s installed' % hdr)
    tap.ok(os.path.isfile(staged(os.path.join(where['libdir'],
                                              'libpayhook-provider.a'))),
           'libpayhook-provider.a installed in libdir')
    for page in MAN_PAGES:
        tap.ok(find(stage, page) is not None, 'man page %s installed' % page)
    for page in DOCS:
        tap.ok(find(stage, 'doc/payhook/' + page) is not None,
               'provider page %s installed' % page)
    for ex in EXAMPLES:
        path = find(stage, 'examples/' + ex)
        tap.ok(path is not None, 'example %s installed' % ex)
        if path and not ex.endswith('.example'):
            with open(path, encoding='utf-8') as fh:
                body = fh.read()
            left = re.findall(r'@[A-Z_]+@', body)
            tap.ok(not left, '... with its paths filled in', left)
    # The compiled-in plugin folder is the installed one, absolute.
    for prog in (cli, fcgi):
        if prog:
            with open(prog, 'rb') as fh:
                data = fh.read()
            tap.ok(where['providerdir'].encode() + b'\0' in data,
                   '%s has the plugin folder %s compiled in'
                   % (os.path.basename(prog), where['providerdir']))
    # Nothing points into the build or source tree.
    roots = {harness.TOP_BUILDDIR, harness.TOP_SRCDIR}
    bad, rpaths, nfiles = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for root, _dirs, files in os.walk(stage):
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path):
                    continue
                nfiles += 1
                data = content_without_debug(path, tmp)
                # The install folders may lie below the source tree (as
                # under make distcheck): those names are meant.
                data = data.replace(where['prefix'].encode(), b'PREFIX')
                if any(r.encode() in data for r in roots):
                    bad.append(path[len(stage):])
                if data.startswith(b'\x7fELF'):
                    rpaths += ['%s: %s' % (path[len(stage):], e)
                               for e in elf_paths(path)]
    tap.ok(nfiles > 10, 'looked at every installed file (%d)' % nfiles)
    tap.is_(bad, [], 'no installed file names the build or source tree')
    tap.is_(rpaths, [], 'no RPATH or RUNPATH in installed programs and '
            'plugins')
    return where


def man_example():
    """The C code of the EXAMPLES section of payhook-provider(3)."""
    with open(os.path.join(harness.TOP_SRCDIR, 'doc', 'payhook-provider.3'),
              encoding='utf-8') as fh:
        page = fh.read()
    start = page.index('.Bd -literal\n', page.index('.Sh EXAMPLES'))
    code = page[start + len('.Bd -literal\n'):page.index('\n.Ed\n', start)]
    return code.replace('\\-', '-').replace('\\e', '\\') + '\n'


def build_provider(tap, stage, where, work):
    """Builds a copy of the template provider and the example of
    payhook-provider(3) against the installed SDK; returns the plugin
    folder holding them, or None."""
    src = os.path.join(work, 'acme')
    os.makedirs(src)
    shutil.copy(os.path.join(harness.TOP_SRCDIR, 'providers', 'template',
                             'template.c'), src)
    harness.write_file(os.path.join(src, 'acme.c'), man_example(),
                       mode=0o644)
    # The .pc as it reads once the tree is at its prefix: every absolute
    # folder in it moved by the DESTDIR.
    pcdir = os.path.join(work, 'pkgconfig')
    os.makedirs(pcdir)
    with open(where['pc']) as fh:
        pc = fh.read()
    pc = re.sub(r'^(\w+)=(/.*)$', lambda m: '%s=%s%s' % (m.group(1), stage,
                                                        m.group(2)),
                pc, flags=re.M)
    harness.write_file(os.path.join(pcdir, 'payhook-provider.pc'), pc,
                       mode=0o644)
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    env.pop('PKG_CONFIG_LIBDIR', None)
    cmd = ('cc -shared -fPIC template.c '
           '$(pkg-config --cflags --libs payhook-provider) -o template.so')
    r = run(['sh', '-c', cmd], cwd=src, env=env)
    if not tap.is_(r.returncode, 0, 'the template provider builds out of '
                   'the tree with: ' + cmd, text(r)):
        return None
    r = run(['nm', '-D', '--defined-only', os.path.join(src,
                                                        'template.so')])
    syms = sorted(set(line.split()[-1] for line in text(r).splitlines()
                      if re.match(r'^[0-9a-f]+ [A-Z] ', line)))
    tap.is_(syms, ['payhook_provider'], 'it exports one symbol, '
            'payhook_provider')
    plugins = os.path.join(work, 'plugins')
    os.makedirs(plugins)
    shutil.copy(os.path.join(src, 'template.so'), plugins)
    cmd = cmd.replace('template', 'acme')
    r = run(['sh', '-c', cmd], cwd=src, env=env)
    if tap.is_(r.returncode, 0, 'the example of payhook-provider(3) builds '
               'the same way', text(r)):
        shutil.copy(os.path.join(src, 'acme.so'), plugins)
    return plugins


class DropInInstance(harness.Instance):
    """An instance whose only plugin is the one built above."""

    def __init__(self, tap, plugin_dir, **kw):
        self.plugin_dir = plugin_dir
        harness.Instance.__init__(self, tap, **kw)

    def core_settings(self):
        core = harness.Instance.core_settings(self)
        core['plugin_dir'] = self.plugin_dir
        return core


SECRET = 'acme-webhook-secret-' + os.urandom(8).hex()


def webhook(inst, fields, secret=SECRET):
    body = json.dumps(fields, separators=(',', ':')).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return inst.request('POST', '/notify/acme', body,
                        {'Content-Type': 'application/json',
                         'X-Template-Signature': sig})


def serve_drop_in(tap, where, plugins):
    profiles = {'acme': {
        'plugin': 'template',
        'settings': {'secret_file': 'keys/acme.secret', 'merchant': 'shop1'},
        'files': {'keys/acme.secret': (SECRET + '\n', 0o600)},
    }}
    example = os.path.exists(os.path.join(plugins, 'acme.so'))
    if example:
        profiles['acmeshop'] = {
            'plugin': 'acme',
            'settings': {'secret_file': 'keys/acmeshop.secret',
                         'merchant': 'shop1'},
            'files': {'keys/acmeshop.secret': (SECRET, 0o600)},
        }
    inst = DropInInstance(tap, plugins, name='dropin', profiles=profiles)
    r = subprocess.run([where['cli'], '-c', inst.config, 'check'],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    n = len(profiles)
    tap.like(text(r), r'configuration OK \(%d profile\(s\), %d plugin\(s\)'
             % (n, n), 'the installed payhook check loads the dropped-in '
             'plugins')
    # The installed payhook.fcgi, under lighttpd.
    harness.PAYHOOK_FCGI = where['fcgi']
    inst.start()
    tap.ok(True, 'the installed payhook.fcgi serves /healthz')
    order = 'ACME-' + os.urandom(4).hex()
    r = inst.create_order(order, 4321, profile='acme')
    tap.is_(r.status, 201, 'an order on the drop-in profile', r.describe())
    event = {'id': 'evt_' + os.urandom(6).hex(), 'type': 'payment.succeeded',
             'merchant': 'shop1', 'order_id': order,
             'txn_id': 'T' + os.urandom(6).hex(), 'amount': 4321,
             'currency': 'CNY', 'time': int(time.time())}
    forged = webhook(inst, event, secret='not-the-secret-at-all')
    tap.is_(forged.status, 400, 'a webhook with a wrong signature: 400',
            forged.describe())
    tap.is_((inst.order(order) or {}).get('state'), 'PENDING',
            '... and nothing changed')
    r = webhook(inst, event)
    tap.is_((r.status, r.json), (200, {'ok': True}), 'the signed webhook '
            'goes through the drop-in provider: 200 {"ok":true}',
            r.describe())
    tap.is_((inst.order(order) or {}).get('state'), 'PAID',
            'the order is PAID')
    r = webhook(inst, event)
    tap.is_(r.status, 200, 'the same webhook again: 200', r.describe())
    evs = [e.get('type') for e in inst.all_events()
           if e.get('order_id') == order]
    tap.is_(evs, ['order.paid'], 'applied once')
    if example:
        man_page_plugin(tap, inst)


def man_page_plugin(tap, inst):
    """A notification through the example plugin of payhook-provider(3):
    flat XML, HMAC-SHA256 in lower-case hex over the sorted non-empty
    fields but sign, k=v joined by '&'."""
    order = 'MAN-' + os.urandom(4).hex()
    r = inst.create_order(order, 990, profile='acmeshop')
    tap.is_(r.status, 201, 'an order on the example plugin\'s profile',
            r.describe())
    fields = {'merchant': 'shop1', 'order': order,
              'txn': 'T' + os.urandom(6).hex(), 'amount': '990'}
    text_ = '&'.join('%s=%s' % (k, fields[k]) for k in sorted(fields))
    fields['sign'] = hmac.new(SECRET.encode(), text_.encode(),
                              hashlib.sha256).hexdigest()
    body = ('<xml>' + ''.join('<%s>%s</%s>' % (k, v, k)
                              for k, v in fields.items()) + '</xml>').encode()
    r = inst.request('POST', '/notify/acmeshop', body,
                     {'Content-Type': 'text/xml'})
    tap.is_((r.status, r.body), (200, b'OK'), 'the man page\'s example '
            'plugin acknowledges a signed notification', r.describe())
    tap.is_((inst.order(order) or {}).get('state'), 'PAID',
            '... and the order is PAID')


TOOLS = ('cc', 'pkg-config', 'objcopy', 'readelf', 'nm')


def main(tap):
    with tempfile.TemporaryDirectory(prefix='payhook-install-') as work:
        stage = os.path.join(work, 'destdir')
        r = make_install(stage)
        if not tap.is_(r.returncode, 0, 'make install DESTDIR=...',
                       text(r)):
            return
        where = check_tree(tap, stage)
        if where is None:
            return
        plugins = build_provider(tap, stage, where, work)
        if plugins is None:
            return
        serve_drop_in(tap, where, plugins)
        harness.cleanup_all()


if __name__ == '__main__':
    for tool in TOOLS:
        if shutil.which(tool) is None:
            harness.Tap().skip_all('%s not found' % tool)
    harness.run(main)
