"""`payhook -c FILE check`: a sound configuration is reported OK; each kind
of problem makes it exit non-zero with a message on stderr that names the
problem (the key, the section, the file, the plugin).  No web server."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import config_text, write_file  # noqa: E402


class Variants:
    def __init__(self, inst):
        self.inst = inst
        self.n = 0

    def write(self, core=None, profiles=None, extra='', drop_core=(),
              text=None):
        """A config next to the good one (so keys/ resolves the same)."""
        c = self.inst.core_settings()
        c.update(core or {})
        for k in drop_core:
            c.pop(k, None)
        p = self.inst.profile_settings()
        for name, changes in (profiles or {}).items():
            if changes is None:
                p.pop(name, None)
                continue
            p.setdefault(name, {})
            for k, v in changes.items():
                if v is None:
                    p[name].pop(k, None)
                else:
                    p[name][k] = v
        self.n += 1
        path = os.path.join(self.inst.etc, 'variant-%02d.conf' % self.n)
        write_file(path, text if text is not None else config_text(c, p, extra),
                   mode=0o644)
        return path


def refused(tap, inst, path, name, *names):
    """`check` fails and its stderr names each of `names`."""
    p = inst.cli('check', config=path)
    good = tap.ok(p.returncode not in (0, -999) and p.returncode > 0,
                  '%s: check exits non-zero' % name,
                  'exit %s' % p.returncode, 'stdout: ' + p.stdout[:500],
                  'stderr: ' + p.stderr[:500])
    tap.ok('configuration OK' not in p.stdout,
           '%s: no "configuration OK"' % name)
    for word in names:
        # a tuple: any one of these names the problem
        alts = word if isinstance(word, tuple) else (word,)
        tap.ok(any(a in p.stderr for a in alts),
               '%s: stderr names %s' % (name, ' or '.join(map(repr, alts))),
               'stderr: ' + (p.stderr[:800] or '(empty)'))
    tap.ok(p.stderr.strip() != '' and
           all(line.strip() for line in p.stderr.strip().splitlines()),
           '%s: problems reported one per line' % name,
           'stderr: ' + repr(p.stderr[:300]))
    return good


def main(tap):
    inst = harness.Instance(tap, 'cli')
    v = Variants(inst)

    p = inst.cli('check')
    tap.is_(p.returncode, 0, 'check of the good config: exit 0',
            'stderr: ' + p.stderr[:800])
    tap.ok('configuration OK' in p.stdout,
           'check of the good config prints "configuration OK"',
           'stdout: ' + p.stdout[:300])
    p = inst.cli('check', cwd='/')
    tap.ok(p.returncode == 0 and 'configuration OK' in p.stdout,
           'check from another working directory: relative paths follow '
           'the config file', 'stderr: ' + p.stderr[:500])

    # Unknown names.
    refused(tap, inst, v.write(extra='[frobnicate]\ncolour = blue\n'),
            'unknown section', 'frobnicate')
    path = v.write(core={'colour': 'blue'})
    refused(tap, inst, path, 'unknown key in [core]', 'colour')
    refused(tap, inst, v.write(profiles={'wxshop': {'api_secret': 'x'}}),
            'unknown key in a profile', 'api_secret')
    refused(tap, inst, v.write(core={'colour': 'blue'},
                               profiles={'wxshop': {'api_secret': 'x'}}),
            'two unknown keys: both reported', 'colour', 'api_secret')

    # Key files: permissions, length, presence.
    keys = os.path.join(inst.etc, 'keys')
    good_key = harness.PROFILES['wxshop']['key']
    write_file(os.path.join(keys, 'loose.key'), good_key, mode=0o644)
    refused(tap, inst, v.write(profiles={'wxshop': {
        'api_key_file': 'keys/loose.key'}}), 'API key file mode 0644',
        'loose.key')
    write_file(os.path.join(keys, 'group.key'), good_key, mode=0o640)
    refused(tap, inst, v.write(profiles={'wxshop': {
        'api_key_file': 'keys/group.key'}}), 'API key file mode 0640',
        'group.key')
    write_file(os.path.join(keys, 'short.key'), good_key[:31])
    refused(tap, inst, v.write(profiles={'wxshop': {
        'api_key_file': 'keys/short.key'}}), '31-character API key',
        ('short.key', 'api_key_file'))
    write_file(os.path.join(keys, 'long.key'), good_key + 'z')
    refused(tap, inst, v.write(profiles={'wxshop': {
        'api_key_file': 'keys/long.key'}}), '33-character API key',
        ('long.key', 'api_key_file'))
    refused(tap, inst, v.write(profiles={'wxshop': {
        'api_key_file': 'keys/absent.key'}}), 'missing API key file',
        'absent.key')
    write_file(os.path.join(keys, 'loose.token'), inst.token + '\n',
               mode=0o644)
    refused(tap, inst, v.write(core={'api_token_file': 'keys/loose.token'}),
            'API token file mode 0644', 'loose.token')
    write_file(os.path.join(keys, 'empty.token'), '')
    refused(tap, inst, v.write(core={'api_token_file': 'keys/empty.token'}),
            'empty API token file', 'empty.token')

    # Plugins.
    refused(tap, inst, v.write(profiles={'wxshop': {'plugin': 'nosuch'}}),
            'profile naming a missing plugin', 'nosuch')
    nowhere = os.path.join(inst.dir, 'no', 'such', 'dir')
    refused(tap, inst, v.write(core={'plugin_dir': nowhere}),
            'plugin_dir pointing to nowhere', nowhere)

    # Values.
    refused(tap, inst, v.write(profiles={'wxshop': {'sign_type': 'SHA1'}}),
            'sign_type SHA1', 'sign_type')
    refused(tap, inst, v.write(profiles={'wxshop': {'appid': None}}),
            'profile without appid', 'appid')
    refused(tap, inst, v.write(profiles={'wxshop': {'mch_id': None}}),
            'profile without mch_id', 'mch_id')
    refused(tap, inst, v.write(core={'max_body_bytes': 'lots'}),
            'max_body_bytes not a number', 'max_body_bytes')
    refused(tap, inst, v.write(core={'map_size_mb': '-1'}),
            'map_size_mb negative', 'map_size_mb')
    refused(tap, inst, v.write(core={'log_level': 'chatty'}),
            'log_level unknown', 'log_level')
    refused(tap, inst, v.write(text='[core\ndb_path = x\n'),
            'a line that does not parse')

    missing = os.path.join(inst.dir, 'absent.conf')
    p = harness.run_cli(['-c', missing, 'check'])
    tap.ok(p.returncode > 0 and 'absent.conf' in p.stderr,
           'check of a missing config file: non-zero, names it',
           'exit %s stderr %s' % (p.returncode, p.stderr[:300]))
    tap.is_(p.stderr.splitlines()[0] if p.stderr else '',
            'payhook: %s: cannot be opened: No such file or directory' %
            missing, '... once, saying why')
    # (payhook backup copies an LMDB store; PostgreSQL has its own tools)
    if harness.E2E_STORE == 'lmdb':
        p = inst.cli('backup', inst.dir)
        tap.ok(p.returncode == 1 and 'is a folder: name the backup file' in
               p.stderr, 'backup into a folder: refused, saying to name a '
               'file', p.returncode, p.stderr)
    p = inst.cli('frobnicate')
    tap.ok(p.returncode > 0, 'unknown command: non-zero exit',
           'exit %s' % p.returncode)
    p = inst.cli('order', 'NO-SUCH-ORDER')
    tap.ok(p.returncode > 0, 'payhook order <unknown id>: non-zero exit',
           'exit %s stdout %s' % (p.returncode, p.stdout[:200]))

    # After all that, the good config is still good.
    p = inst.cli('check')
    tap.ok(p.returncode == 0 and 'configuration OK' in p.stdout,
           'the good config still checks OK')


if __name__ == '__main__':
    harness.run(main, need_lighttpd=False)
