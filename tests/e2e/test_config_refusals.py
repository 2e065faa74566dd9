#!/usr/bin/env python3
"""Configuration and secrets refused at start: a key file that group or
others may read, a missing key file, a plugin that is not a payhook
plugin, a plugin built for another ABI version.  Each is refused by
`payhook check` and by payhook.fcgi itself (started as the web server
would, without a FastCGI socket: it must exit before serving) with a
message naming the problem, and no message carries the key."""

import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TEST_PLUGINS = os.path.join(harness.TOP_BUILDDIR, 'tests', 'unit', 'src',
                            'plugin', '.libs')


def fcgi_start(inst):
    """payhook.fcgi with PAYHOOK_CONFIG: (exit status, stderr)."""
    env = dict(os.environ, PAYHOOK_CONFIG=inst.config)
    try:
        p = subprocess.run([harness.PAYHOOK_FCGI], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        return p.returncode, p.stderr.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired:
        return None, 'still running after 30 s: it did not refuse'


def case(tap, name, inst, regex):
    key = harness.PROFILES['wxshop']['key']
    r = inst.cli('check')
    tap.ok(r.returncode != 0, '%s: payhook check refuses' % name,
           r.stdout + r.stderr)
    tap.like(r.stderr, regex, '%s: payhook check says why' % name)
    tap.ok(key not in r.stdout + r.stderr, '%s: check prints no key' % name)
    rc, err = fcgi_start(inst)
    tap.ok(rc not in (0, None), '%s: payhook.fcgi refuses to start' % name,
           'exit %r: %s' % (rc, err[-800:]))
    tap.like(err, regex, '%s: payhook.fcgi says why' % name)
    tap.ok(key not in err, '%s: payhook.fcgi logs no key' % name)


def main(tap):
    inst = harness.Instance(tap, 'refusals')
    r = inst.cli('check')
    tap.is_(r.returncode, 0, 'the unchanged configuration is accepted',
            r.stdout + r.stderr)
    keyfile = os.path.join(inst.etc, 'keys', 'wxshop.key')

    os.chmod(keyfile, 0o644)
    case(tap, 'key file readable by others', inst,
         r'(?i)wxshop\.key.*(permission|mode|group|other|access)')
    os.chmod(keyfile, 0o640)
    case(tap, 'key file readable by its group', inst,
         r'(?i)wxshop\.key.*(permission|mode|group|other|access)')
    os.chmod(keyfile, 0o600)

    os.rename(keyfile, keyfile + '.gone')
    case(tap, 'missing key file', inst, r'(?i)wxshop\.key.*(no such|missing|cannot|not found)')
    os.rename(keyfile + '.gone', keyfile)

    # A FIFO would block whoever opens it until something writes to it.
    os.rename(keyfile, keyfile + '.real')
    os.mkfifo(keyfile, 0o600)
    case(tap, 'key file that is a FIFO', inst,
         r'wxshop\.key: not a regular file')
    os.unlink(keyfile)
    os.rename(keyfile + '.real', keyfile)

    # A file of [core] named with the line of its key.
    token = os.path.join(inst.etc, 'keys', 'api.token')
    os.rename(token, token + '.gone')
    line = [n for n, text in enumerate(open(inst.config), 1)
            if text.startswith('api_token_file')][0]
    case(tap, 'missing api_token_file', inst,
         r'line %d: api_token_file \S*api\.token: No such file' % line)
    os.rename(token + '.gone', token)

    # A lease shorter than a provider call may wait: said, not refused.
    short = harness.Instance(tap, 'shortlease', core={'lease_s': '8',
                                                      'http_timeout_s': '8'})
    r = short.cli('check')
    tap.ok(r.returncode == 0 and 'warning: ' in r.stderr and
           'lease_s = 8 is not above http_timeout_s = 8' in r.stderr,
           'lease_s not above http_timeout_s: a warning, check passes',
           r.returncode, r.stderr[-300:])
    short.cleanup()

    r = harness.run_cli(['-c', inst.etc, 'check'])
    tap.ok(r.returncode == 78 and '%s: a folder, not a configuration file'
           % inst.etc in r.stderr, '-c naming a folder: refused as one, '
           'exit 78', r.returncode, r.stderr)

    plugins = os.path.join(inst.dir, 'plugins')
    os.makedirs(plugins)
    for so in os.listdir(harness.PLUGIN_DIR):
        if so.endswith('.so'):
            shutil.copy(os.path.join(harness.PLUGIN_DIR, so), plugins)
    conf = open(inst.config).read()
    with open(inst.config, 'w') as fh:
        fh.write(conf.replace('plugin_dir = ' + harness.PLUGIN_DIR,
                              'plugin_dir = ' + plugins))
    r = inst.cli('check')
    tap.is_(r.returncode, 0, 'a copy of the plugin folder is accepted',
            r.stdout + r.stderr)
    target = os.path.join(plugins, 'wechat.so')
    for name, src, regex in (
            ('not a payhook plugin', 'nosym.so', r'(?i)wechat\.so.*payhook_provider'),
            ('another ABI version', 'badabi.so', r'(?i)wechat\.so.*ABI version'),
            ('not a shared object', None, r'(?i)wechat\.so')):
        os.remove(target)
        if src is None:
            with open(target, 'w') as fh:
                fh.write('this is not an ELF file\n')
        else:
            shutil.copy(os.path.join(TEST_PLUGINS, src), target)
        case(tap, name, inst, regex)
    shutil.copy(os.path.join(harness.PLUGIN_DIR, 'wechat.so'), target)
    r = inst.cli('check')
    tap.is_(r.returncode, 0, 'the real plugin back: accepted again',
            r.stdout + r.stderr)


if __name__ == '__main__':
    harness.run(main, need_lighttpd=False)
