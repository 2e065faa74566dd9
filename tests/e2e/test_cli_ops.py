"""`payhook` and `payhook.fcgi` as operators and their schedulers see them:
versions, help, and exit statuses (payhook(1), EXIT STATUS).

--version prints "PROG VERSION (commit abc1234)" (the commit only from a
git checkout) and exits 0; --help and -h print the usage on stdout and exit
0; a usage error prints on stderr and exits 64 before anything is opened;
a refused configuration exits 78; a job that could not reach a provider or
a push endpoint exits 75, under lighttpd with the providers' API and the
push endpoint on ports where nothing listens.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (  # noqa: E402
    PAYHOOK, PAYHOOK_FCGI, SUCCESS_ACK, Instance, make_payment, run_cli,
    txn_id, write_file)

EX_USAGE, EX_TEMPFAIL, EX_CONFIG = 64, 75, 78

# Every command the usage must list, as typed.
COMMANDS = ('check', 'order show', 'order list', 'events', 'events tail',
            'events resend', 'events deliveries', 'stats', 'dedup prune',
            'backup', 'reconcile', 'notifications list', 'notifications show',
            'notifications replay', 'refunds run', 'refunds list', 'sweep')


def run(prog, *args, env=None):
    return subprocess.run([prog] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors='replace', timeout=120, env=env)


def package_version():
    with open(os.path.join(harness.TOP_SRCDIR, 'configure.ac'),
              encoding='utf-8') as fh:
        return re.search(r'AC_INIT\(\[payhook\], \[([^]]+)\]',
                         fh.read()).group(1)


def git_head():
    """The checkout's commit, or None outside a git checkout."""
    git = shutil.which('git')
    if git is None or not os.path.exists(os.path.join(harness.TOP_SRCDIR,
                                                      '.git')):
        return None
    p = subprocess.run([git, '-C', harness.TOP_SRCDIR, 'rev-parse', 'HEAD'],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def test_versions(tap):
    version, head = package_version(), git_head()
    for prog in (PAYHOOK, PAYHOOK_FCGI):
        name = os.path.basename(prog)
        p = run(prog, '--version')
        tap.is_(p.returncode, 0, '%s --version: exit 0' % name, p.stderr)
        m = re.fullmatch(r'(\S+) (\S+)(?: \(commit ([0-9a-f]{7,})\))?\n',
                         p.stdout)
        tap.ok(m and m.group(1) == name and m.group(2) == version,
               '%s --version: "%s %s (commit ...)"' % (name, name, version),
               repr(p.stdout))
        tap.is_(p.stderr, '', '... nothing on stderr')
        if head is None:
            tap.ok(m and m.group(3) is None, '... no commit outside a git '
                   'checkout', repr(p.stdout))
        else:
            tap.ok(m and m.group(3) and head.startswith(m.group(3)),
                   '... the commit of the checkout (%s)' % head[:7],
                   repr(p.stdout))
    for flag in ('--help', '-h'):
        p = run(PAYHOOK, flag)
        tap.is_(p.returncode, 0, 'payhook %s: exit 0' % flag, p.stderr)
        tap.ok(p.stdout.startswith('usage: payhook') and p.stderr == '',
               '... the usage on stdout, nothing on stderr',
               p.stdout[:200], p.stderr[:200])
        missing = [c for c in COMMANDS if '\n  %s ' % c not in p.stdout and
                   '\n  %s\n' % c not in p.stdout]
        tap.is_(missing, [], '... listing every command')
    for words in (['stats'], ['refunds', 'settle'], ['sweep'],
                  ['events', 'tail'], ['order'], ['refunds'],
                  ['order', 'show']):
        p = run(PAYHOOK, *(words + ['--help']))
        tap.ok(p.returncode == 0 and p.stderr == '' and
               p.stdout.startswith('usage: payhook [-c FILE] %s' %
                                   ' '.join(words)),
               'payhook %s --help: its usage on stdout, exit 0, no '
               'configuration needed' % ' '.join(words), p.returncode,
               p.stdout[:200], p.stderr[:200])
    p = run(PAYHOOK_FCGI, '--version', 'extra')
    tap.ok(p.returncode == EX_USAGE and 'unknown argument extra' in p.stderr,
           'payhook.fcgi --version extra: exit 64 naming "extra"', p.stderr)
    p = run(PAYHOOK_FCGI, '--help')
    tap.ok(p.returncode == 0 and p.stdout.startswith('usage: payhook.fcgi')
           and p.stderr == '', 'payhook.fcgi --help: the usage on stdout, '
           'exit 0', p.stdout, p.stderr)
    p = run(PAYHOOK_FCGI, '--frobnicate')
    tap.ok(p.returncode == EX_USAGE and p.stdout == '' and
           'usage: payhook.fcgi' in p.stderr, 'payhook.fcgi with an unknown '
           'argument: usage on stderr, exit 64', p.returncode, p.stderr)


def test_usage(tap, inst):
    """Usage errors: exit 64, stderr only, whatever the configuration."""
    absent = os.path.join(inst.dir, 'absent.conf')
    cases = [
        ([], 'no command'),
        (['frobnicate'], 'an unknown command'),
        (['-x', 'stats'], 'an unknown option'),
        (['stats', 'extra'], 'stats with an argument'),
        (['order'], 'order without an id'),
        (['order', 'show'], 'order show without an id'),
        (['dedup'], 'dedup without prune'),
        (['events', '--limit', '0'], 'events --limit 0'),
        (['sweep', '--interval', '0'], 'sweep --interval 0'),
        (['refunds', 'list', '--none'], 'refunds list --none'),
        (['notifications', 'show', 'x'], 'notifications show x'),
        (['reconcile', '--profile', 'wxshop'], 'reconcile without '
         '--statement'),
        (['reconcile', '--profile', 'wxshop', '--download', '--date',
          '%d-06-01' % (datetime.date.today().year + 1)],
         'reconcile of a day not begun yet'),
        (['check', '--user'], 'check --user without a user'),
        (['refunds', 'settle', 'R1'], 'refunds settle without an outcome'),
        (['refunds', 'settle', 'R1', '--succeeded', '--failed'],
         'refunds settle with both outcomes'),
        (['refunds', 'settle', 'R1', '--failed', '--amount', '5'],
         'refunds settle --failed --amount'),
        (['refunds', 'settle', '--succeeded'], 'refunds settle without an '
         'id'),
    ]
    for args, name in cases:
        for config in (inst.config, absent):
            p = run_cli(['-c', config] + args)
            tap.ok(p.returncode == EX_USAGE and p.stdout == '' and
                   p.stderr != '', '%s (%s configuration): exit 64, stderr '
                   'only' % (name, 'good' if config == inst.config else
                             'absent'),
                   'exit %s' % p.returncode, p.stdout[:300], p.stderr[:300])
    p = run_cli(['-c', inst.config, 'order'])
    tap.ok('usage: payhook [-c FILE] order show ID' in p.stderr and
           'order list' in p.stderr, 'a wrong "order": the usage of its '
           'commands', p.stderr)
    env = dict(os.environ)
    env.pop('PAYHOOK_CONFIG', None)
    p = run(PAYHOOK, 'stats', env=env)
    tap.ok(p.returncode == EX_USAGE and 'no configuration' in p.stderr,
           'no -c and no PAYHOOK_CONFIG: exit 64', p.returncode, p.stderr)


def test_config_errors(tap, inst):
    absent = os.path.join(inst.dir, 'absent.conf')
    bad = os.path.join(inst.etc, 'bad.conf')
    with open(inst.config, encoding='utf-8') as fh:
        write_file(bad, fh.read() + '\n[core]\ncolour = blue\n', mode=0o644)
    for config, what in ((absent, 'a missing'), (bad, 'a refused')):
        for args in (['check'], ['stats'], ['sweep'], ['refunds', 'run']):
            p = run_cli(['-c', config] + args)
            tap.is_(p.returncode, EX_CONFIG, '%s configuration: %s exits 78'
                    % (what, ' '.join(args)), p.stderr[-300:])
    p = run_cli(['-c', inst.config, 'check', '--user', 'no-such-user-x'])
    tap.is_(p.returncode, EX_USAGE, 'check --user of an unknown user: '
            'exit 64', p.stderr)


def dead_ends(tap, name, push=False):
    """An instance whose providers' API (without push) or push endpoint
    (with push) is a port where nothing listens; without push an order is
    due a second after it is made."""
    dead_port = harness.free_port()
    core = {'http_timeout_s': '5', 'http_connect_timeout_s': '2'}
    if push:
        return Instance(tap, name, core=core, push_port=dead_port)
    return Instance(tap, name, core=core, profile={
        'api_base': 'http://127.0.0.1:%d' % dead_port,
        'allow_insecure_http': 'yes', 'query_schedule': '1s,1h'})


def paid_order(tap, inst, tag, amount):
    o = '%s-%s' % (tag, os.urandom(3).hex())
    inst.create_order(o, amount)
    r = inst.notify(make_payment(o, amount, txn_id(tag)))
    tap.is_(r.body, SUCCESS_ACK, 'order %s paid by notification' % o)
    return o


def test_tempfail(tap):
    inst = dead_ends(tap, 'deadapi')
    inst.start()
    o = paid_order(tap, inst, 'RF', 500)
    r = inst.api('POST', '/orders/%s/refunds' % o,
                 {'amount': 200, 'reason': 'returned'})
    tap.is_(r.status, 201, 'a refund asked for', r.describe())
    p = inst.cli('refunds', 'run')
    tap.is_(p.returncode, EX_TEMPFAIL, 'refunds run, the provider '
            'unreachable: exit 75', p.stderr[-600:])
    tap.ok('errors=1' in p.stderr, '... and it logs the refund it could not '
           'send', p.stderr[-600:])
    p = inst.cli('refunds', 'list')
    tap.ok(p.returncode == 0 and '\tPENDING\t' in p.stdout,
           '... which stays on the work list', p.stdout)

    pending = 'SW-%s' % os.urandom(3).hex()
    inst.create_order(pending, 300)
    time.sleep(1.2)
    p = inst.cli('sweep')
    tap.is_(p.returncode, EX_TEMPFAIL, 'sweep, the provider unreachable: '
            'exit 75', p.stderr[-600:])
    tap.ok(re.search(r'event=sweep .*queries=1 failed=1', p.stderr),
           '... its pass logs the failed query', p.stderr[-600:])
    text = inst.request('GET', '/metrics').body.decode('utf-8', 'replace')
    tap.ok(re.search(r'^payhook_sweeper_passes_total\{result="provider_'
                     r'error"\} 1$', text, re.M) and
           'payhook_sweeper_passes_total{result="ok"}' not in text,
           '... and /metrics counts it as a provider_error pass, not ok',
           [l for l in text.splitlines() if 'passes' in l])
    # Unanswered, it is asked again a second on (the step it is at):
    # paid meanwhile by its notification, it is due no more.
    r = inst.notify(make_payment(pending, 300, txn_id('SW')))
    tap.is_(r.body, SUCCESS_ACK, '... then paid by its notification')
    p = inst.cli('sweep')
    tap.is_(p.returncode, 0, 'sweep with nothing due: exit 0',
            p.stderr[-600:])

    inst = dead_ends(tap, 'deadpush', push=True)
    inst.start()
    paid_order(tap, inst, 'PU', 700)
    p = inst.cli('sweep')
    tap.is_(p.returncode, EX_TEMPFAIL, 'sweep, the push endpoint '
            'unreachable: exit 75', p.stderr[-600:])
    tap.ok(re.search(r'event=push .*failed=[1-9]', p.stderr),
           '... its pass logs the failed delivery', p.stderr[-600:])
    p = inst.cli('events', 'resend', '--endpoint', 'erp')
    tap.is_(p.returncode, 0, 'events resend: exit 0 (nothing is called)',
            p.stderr)
    p = inst.cli('events', 'resend', '--endpoint', 'erp', '--from', '0')
    tap.ok(p.returncode == 0 and 'from event 1 ' in p.stdout, 'events '
           'resend --from 0: from the first event, as it says', p.stdout,
           p.stderr)
    p = inst.cli('events', 'resend', '--endpoint', 'nosuch')
    tap.is_(p.returncode, 1, 'events resend to an endpoint not configured: '
            'exit 1', p.stderr)


def test_output_lost(tap, inst):
    """A command whose standard output cannot be written (a full disk)
    did not do its job: exit 1 and a message, not 0."""
    inst.start()
    o = paid_order(tap, inst, 'DF', 300)
    after = inst.last_seq()
    inst.stop()
    for args in (['order', 'list'], ['order', 'list', '--json'],
                 ['order', 'show', o], ['events'], ['stats'], ['--help'],
                 ['--version']):
        with open('/dev/full', 'w') as full:
            p = subprocess.run([PAYHOOK, '-c', inst.config] + args,
                               stdin=subprocess.DEVNULL, stdout=full,
                               stderr=subprocess.PIPE, text=True,
                               timeout=60)
        tap.ok(p.returncode == 1 and 'standard output could not be '
               'written: No space left on device' in p.stderr,
               '%s, its output to a full disk: exit 1, said' %
               ' '.join(args), p.returncode, p.stderr[-300:])
    # A follower does not go on for ever while what it prints is lost:
    # it ends at the first event it could not write.
    with open('/dev/full', 'w') as full:
        p = subprocess.Popen([PAYHOOK, '-c', inst.config, 'events', 'tail',
                              '--follow', '--after', str(after)],
                             stdin=subprocess.DEVNULL, stdout=full,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    alive = p.poll() is None
    inst.start()
    paid_order(tap, inst, 'DG', 300)
    inst.stop()
    try:
        err = p.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        err = p.communicate()[1] + ' (still running after 20 s)'
    tap.ok(alive and p.returncode == 1 and err.count(
        'standard output could not be written') == 1, 'events tail --follow, '
           'its output to a full disk: follows while there is nothing to '
           'write, then exits 1 at the first event, said once', alive,
           p.returncode, err[-300:])


def test_no_api_base(tap):
    """A profile without api_base: the sweep's query is never sent, and
    its log says why (payhook.conf(5): it fails with "no api_base")."""
    inst = Instance(tap, 'noapibase', profile={'query_schedule': '1s,1h'})
    inst.start()
    o = 'NB-%s' % os.urandom(3).hex()
    inst.create_order(o, 300)
    inst.stop()
    time.sleep(1.2)
    p = inst.cli('check')
    tap.ok(p.returncode == 0 and re.search(
        r'warning: \[profile\.\w+\] has no api_base: payhook cannot '
        r'query, close or refund through it', p.stderr),
        'check, a profile without api_base: a warning that says what '
        'cannot be done', p.returncode, p.stderr[-600:])
    p = inst.cli('sweep')
    tap.ok(p.returncode == EX_CONFIG and re.search(
        r'query %s at \w+: not sent: profile \w+ has no api_base' % o,
        p.stderr), 'sweep, a profile without api_base: exit 78 (the '
        'configuration, not the provider), a warn line naming the order '
        'and why', p.returncode, p.stderr[-600:])
    p = inst.cli('sweep')
    tap.is_(p.returncode, EX_CONFIG, '... the next pass, nothing due while '
            'the order waits: 78 still, not 75 (a run again cannot help)',
            p.stderr[-600:])


def test_job_log_json(tap):
    """log_format = json: every line the jobs write is a JSON object of
    prog payhook, the configuration's warnings among them (push to plain
    HTTP is one)."""
    inst = Instance(tap, 'jsonlog', push_port=harness.free_port(),
                    core={'log_format': 'json'})
    inst.start()
    paid_order(tap, inst, 'JL', 100)
    inst.stop()
    for args in (['sweep'], ['refunds', 'run']):
        p = inst.cli(*args)
        bad, warned = [], False
        for line in p.stderr.splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                o = None
            if not isinstance(o, dict) or o.get('prog') != 'payhook':
                bad.append(line)
            elif o.get('level') == 'warn' and 'allow_insecure_http' in \
                    o.get('msg', ''):
                warned = True
        tap.ok(not bad and warned, '%s, log_format json: every line a '
               'JSON object, the configuration\'s warning too' %
               ' '.join(args), bad[:3], p.stderr[-400:])
    # A signature header name longer than a request's header holds is
    # refused, not cut short on the way out.
    with open(inst.config) as fh:
        conf = fh.read()
    with open(inst.config, 'w') as fh:
        fh.write(conf.replace('[push.erp]\n', '[push.erp]\n'
                              'signature_header = X-%s\n' % ('S' * 62), 1))
    p = inst.cli('check')
    tap.ok(p.returncode == 78 and 'signature_header is 64 characters: at '
           'most 63' in p.stderr, 'a signature_header of 64 characters: '
           'refused', p.returncode, p.stderr[-300:])
    with open(inst.config, 'w') as fh:
        fh.write(conf)


def main(tap):
    test_versions(tap)
    inst = Instance(tap, 'cliops')
    test_usage(tap, inst)
    test_config_errors(tap, inst)
    p = inst.cli('order', 'show', 'NO-SUCH-ORDER')
    tap.is_(p.returncode, 2, 'order show of an unknown order: exit 2')
    test_output_lost(tap, inst)
    test_no_api_base(tap)
    test_job_log_json(tap)
    test_tempfail(tap)


if __name__ == '__main__':
    harness.run(main)
