#!/usr/bin/env python3
"""After the whole suite (tools/run-tests): the logs every end-to-end
server wrote (web server error logs with payhook's stderr, payhook's own
logs), kept by harness.collect_logs in PAYHOOK_E2E_LOGDIR, hold none of
the keys and tokens any test configured; and the sanitizer build left no
AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer report in
PAYHOOK_SANITIZER_LOGS."""

import json
import os
import re

import harness


def secret_needles(text):
    """What must never appear: the whole secret, and for PEM keys every
    line of their base64 body."""
    text = text.strip()
    out = set()
    if len(text) >= 8 and '\n' not in text:
        out.add(text)
    for line in text.splitlines():
        line = line.strip()
        if len(line) >= 24 and re.fullmatch(r'[A-Za-z0-9+/=]+', line):
            out.add(line)
    return out


def main(tap):
    root = os.environ.get('PAYHOOK_E2E_LOGDIR')
    if not root or not os.path.isdir(root):
        tap.skip_all('no collected logs (run through tools/run-tests)')
    needles = {}
    logs = []
    for inst in sorted(os.listdir(root)):
        d = os.path.join(root, inst)
        if not os.path.isdir(d):
            continue
        try:
            with open(os.path.join(d, 'secrets.json')) as fh:
                for s in json.load(fh):
                    for n in secret_needles(s):
                        needles.setdefault(n, inst)
        except (OSError, ValueError):
            pass
        logs += [os.path.join(d, f) for f in sorted(os.listdir(d))
                 if f != 'secrets.json']
    tap.ok(len(logs) >= 10, 'logs of at least 10 servers were collected',
           'found %d' % len(logs))
    tap.ok(len(needles) >= 10, 'at least 10 secrets were configured',
           'found %d' % len(needles))
    total = 0
    leaks = []
    for path in logs:
        with open(path, 'rb') as fh:
            text = fh.read().decode('utf-8', 'replace')
        total += text.count('\n')
        for n, owner in needles.items():
            if n in text:
                leaks.append('%s: secret of %s (%s...)' % (
                    os.path.relpath(path, root), owner, n[:6]))
    tap.ok(not leaks, 'no key or token in %d log lines of %d files'
           % (total, len(logs)), *leaks[:20])
    san = os.environ.get('PAYHOOK_SANITIZER_LOGS')
    if san and os.path.isdir(san):
        reports = sorted(os.listdir(san))
        texts = []
        for r in reports[:5]:
            with open(os.path.join(san, r), 'rb') as fh:
                texts.append('%s:\n%s' % (r, fh.read()[:3000].decode(
                    'utf-8', 'replace')))
        tap.ok(not reports, 'no sanitizer report from the sanitizer build '
               '(%d files)' % len(reports), *texts)


if __name__ == '__main__':
    harness.run(main, need_lighttpd=False)
