#!/usr/bin/env python3
"""The man pages: lint-clean, rendered by man(1), and pointing at each
other correctly.

Each page of doc/ must pass `mandoc -T lint -W warning` without a message,
render with `man -l` (groff) without a warning, and every reference to a
payhook page (.Xr payhook... N) must name a page of doc/.  The names and
sections the pages give themselves (.Dt) must match their files.

So that the documentation follows the code: payhook.conf(5) documents every
key of [core], of profiles and of each plugin (the tables in src/conf/conf.c and
the providers' sources, read as test_deploy.py reads them), and every
provider in providers/ has its operator's page, docs/<name>.md; and
payhook-provider(3) lists every function include/payhook/sdk.h declares.

Without mandoc or man the checks that need them are skipped, except under
CI=true, where that fails (tools/install-deps installs both).
"""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'e2e'))
import harness  # noqa: E402
import deployed  # noqa: E402
import test_deploy  # noqa: E402

DOC = os.path.join(harness.TOP_SRCDIR, 'doc')
PAGES = ('payhook.1', 'payhook.fcgi.8', 'payhook.conf.5',
         'payhook-provider.3')


def run(cmd, env=None):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120, env=env)


def tool(tap, name):
    path = shutil.which(name)
    if path is None:
        if deployed.in_ci():
            tap.ok(False, '%s is needed under CI=true' % name,
                   'tools/install-deps installs it')
        else:
            deployed.skip(tap, '%s not found' % name)
    return path


def documented(tap):
    with open(os.path.join(DOC, 'payhook.conf.5'), encoding='utf-8') as fh:
        conf5 = fh.read()
    keys = set(re.findall(r'^\.It Ic (\w+)', conf5, re.M))
    core, profile, plugins = test_deploy.code_keys()
    tap.is_(sorted((core | profile) - keys), [], 'payhook.conf(5) documents '
            'every key of [core] and of profiles')
    for name, pkeys in sorted(plugins.items()):
        if name == 'template':
            continue
        tap.is_(sorted(pkeys - keys), [], 'payhook.conf(5) documents every '
                'key of plugin %s' % name)
        tap.ok(re.search(r'^\.Ss The %s plugin$' % name, conf5, re.M),
               'payhook.conf(5) has a section on plugin %s' % name)
    # payhook-provider(3) lists the SDK: every function sdk.h declares.
    with open(os.path.join(harness.TOP_SRCDIR, 'include', 'payhook',
                           'sdk.h'), encoding='utf-8') as fh:
        declared = set(re.findall(r'^[a-z].*?\b(ph_\w+)\(', fh.read(),
                                  re.M))
    with open(os.path.join(DOC, 'payhook-provider.3'),
              encoding='utf-8') as fh:
        listed = set(re.findall(r'^\.It Fn (ph_\w+)', fh.read(), re.M))
    tap.ok(len(declared) > 40, 'read the functions of sdk.h',
           sorted(declared))
    tap.is_(sorted(declared - listed), [], 'payhook-provider(3) lists '
            'every function of sdk.h')
    docs = os.path.join(harness.TOP_SRCDIR, 'docs')
    for prov in sorted(os.listdir(os.path.join(harness.TOP_SRCDIR,
                                               'providers'))):
        # The template is a starting point, documented by its README.
        if prov != 'template' and glob.glob(os.path.join(
                harness.TOP_SRCDIR, 'providers', prov, '*.c')):
            tap.ok(os.path.isfile(os.path.join(docs, prov + '.md')),
                   'docs/%s.md: the operator\'s page of provider %s'
                   % (prov, prov))


def main(tap):
    found = sorted(os.path.basename(p) for p in glob.glob(
        os.path.join(DOC, '*.[1-8]')))
    tap.is_(found, sorted(PAGES), 'doc/ holds the four pages')
    for page in PAGES:
        path = os.path.join(DOC, page)
        with open(path, encoding='utf-8') as fh:
            text = fh.read()
        m = re.search(r'^\.Dt (\S+) (\d)$', text, re.M)
        name, sect = page.rsplit('.', 1)
        tap.ok(m is not None and m.group(1) == name.upper()
               and m.group(2) == sect,
               '%s: .Dt names it %s(%s)' % (page, name, sect),
               m.group(0) if m else 'no .Dt')
        refs = re.findall(r'\bXr (payhook\S*) (\d)', text)
        known = dict(p.rsplit('.', 1) for p in PAGES)
        bad = sorted(set('%s(%s)' % r for r in refs
                         if known.get(r[0]) != r[1]))
        tap.is_(bad, [], '%s: every payhook page it refers to exists'
                % page)

    documented(tap)

    mandoc = tool(tap, 'mandoc')
    if mandoc:
        for page in PAGES:
            r = run([mandoc, '-T', 'lint', '-W', 'warning',
                     os.path.join(DOC, page)])
            msgs = (r.stdout + r.stderr).decode('utf-8', 'replace')
            tap.is_(msgs.strip(), '', '%s: mandoc -T lint -W warning is '
                    'silent' % page)
    man = tool(tap, 'man')
    if man:
        env = dict(os.environ, MANWIDTH='80', MAN_KEEP_FORMATTING='',
                   LC_ALL='C.UTF-8')
        for page in PAGES:
            r = run([man, '--warnings', '-l', os.path.join(DOC, page)],
                    env=env)
            out = r.stdout.decode('utf-8', 'replace')
            err = r.stderr.decode('utf-8', 'replace')
            tap.ok(r.returncode == 0 and 'NAME' in out and
                   'DESCRIPTION' in out and len(out.splitlines()) > 50,
                   '%s: man -l renders it' % page, err[-2000:])
            tap.is_(err.strip(), '', '%s: ... without a warning' % page)


if __name__ == '__main__':
    harness.run(main, need_lighttpd=False)
