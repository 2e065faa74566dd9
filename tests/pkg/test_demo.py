#!/usr/bin/env python3
"""The README's run command, as far as it runs after the build: demo/run-demo.

It is run once with DEMO_ONESHOT=1 on a free port, its files in a
temporary RUNDIR and the build's programs (BUILDDIR), and must end well:
the order paid by a signed notification, the one whose first two
notifications the provider simulator lost paid by the third, the one
whose notifications were all lost paid by the active query, and both the
simulator and lighttpd stopped by their pids.
"""

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'e2e'))
import harness  # noqa: E402

DEMO = os.path.join(harness.TOP_SRCDIR, 'demo', 'run-demo')


def main(tap):
    with tempfile.TemporaryDirectory(prefix='payhook-demo-') as rundir:
        env = dict(os.environ, PORT=str(harness.free_port()),
                   DEMO_ONESHOT='1', RUNDIR=rundir,
                   BUILDDIR=harness.TOP_BUILDDIR)
        try:
            r = subprocess.run([DEMO], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env,
                               timeout=240)
            out, rc = r.stdout.decode('utf-8', 'replace'), r.returncode
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b'').decode('utf-8', 'replace')
            rc = 'timeout'
        tap.is_(rc, 0, 'demo/run-demo (DEMO_ONESHOT=1) ends well',
                out[-3000:])
        tap.is_(len(re.findall(r'^state: PAID$', out, re.M)), 3,
                '... three orders PAID: by the notification, by the '
                'simulator\'s third delivery, by the active query')
        tap.ok(re.search(r'send 1: lost\n  send 2: lost\n  send 3: HTTP '
                         r'200, acknowledged', out) is not None,
               '... the simulator lost two notifications and the third '
               'was acknowledged')
        tap.ok('provider simulator (pid' in out and 'lighttpd (pid' in out,
               '... and stopped what it started')
        tap.ok(os.path.exists(os.path.join(rundir, 'provsim.log')) and
               os.path.exists(os.path.join(rundir, 'var', 'payhook.mdb')),
               '... its files in RUNDIR')


if __name__ == '__main__':
    harness.run(main)
