"""`payhook` run as root never takes the store's files away from the web
server's user (payhook(1), FILES).

The store's folder belongs to a throwaway user (www-data or nobody), as it
does when payhook.fcgi runs as that user.  Root then runs check (which
creates the store), stats, notifications list, sweep, backup and restore: every
file beside the store (the lock, -metrics, the -archive folder and what it
holds) and the backup belong to that user, none to root.  check --user names each file the
server needs that is missing (and whether the user can create it) or that
the user cannot use.  Skipped unless run as root.
"""

import ctypes
import ctypes.util
import os
import pwd
import shutil
import stat
import struct
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployed  # noqa: E402
import harness  # noqa: E402
from harness import Instance  # noqa: E402

SIDE = ('', '-lock', '-metrics', '-archive', '-archive/budget',
        '-archive/hints', '-archive/seg')


def throwaway_user():
    for name in ('www-data', 'nobody'):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


class Owned(Instance):
    """The store in a folder of its own, reachable by anyone, owned by
    user; archive_days on, so that sweep opens the archive."""

    def __init__(self, tap, user):
        self.user = user
        self.base = tempfile.mkdtemp(prefix='payhook-e2e-owner-')
        os.chmod(self.base, 0o755)
        self.var = os.path.join(self.base, 'var')
        os.mkdir(self.var, 0o700)
        os.chown(self.var, user.pw_uid, user.pw_gid)
        Instance.__init__(self, tap, 'owner')
        self.db = os.path.join(self.var, 'payhook.mdb')

    def core_settings(self):
        core = Instance.core_settings(self)
        core['db_path'] = os.path.join(self.var, 'payhook.mdb')
        core['archive_days'] = '30'
        return core

    def cleanup(self):
        Instance.cleanup(self)
        shutil.rmtree(self.base, ignore_errors=True)


def owners(folder):
    """{file name: (uid, gid, mode)} of what folder holds, its folders'
    contents named folder/name."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            out[os.path.relpath(path, folder)] = (
                st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
    return out


def private(entry):
    """Mode 0700 for a folder, 0600 for a file: nobody else's business."""
    return entry[2] in (0o600, 0o700)


def reachable(path, user):
    """Whether user may enter every folder on the way to path."""
    path = os.path.abspath(path)
    while path != '/':
        path = os.path.dirname(path)
        st = os.stat(path)
        bit = (stat.S_IXUSR if st.st_uid == user.pw_uid else
               stat.S_IXGRP if st.st_gid == user.pw_gid else stat.S_IXOTH)
        if not st.st_mode & bit:
            return False
    return True


def root_owned(folder):
    return [n for n, (uid, _gid, _m) in owners(folder).items() if uid == 0]


IN_CREATE, IN_DELETE = 0x100, 0x200


def plant_links(var, db, victim, user):
    """In a child, as user, the owner of the store's folder var: a link to
    victim at each name restore works with there, the moment the name
    appears or goes (inotify).  Never returns."""
    os.setgroups([])
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    fd = libc.inotify_init()
    libc.inotify_add_watch(fd, var.encode(), IN_CREATE | IN_DELETE)
    tmp = os.path.join(var, db + '.restore')
    while True:
        buf, off = os.read(fd, 65536), 0
        while off < len(buf):
            _wd, mask, _cookie, n = struct.unpack_from('iIII', buf, off)
            name = buf[off + 16:off + 16 + n].split(b'\0', 1)[0].decode()
            off += 16 + n
            try:
                if mask & IN_CREATE and name == db + '.restore':
                    os.symlink(victim, tmp + '-lock')
                elif mask & IN_DELETE and name == db + '.restore-lock':
                    os.rename(tmp, tmp + '.moved')
                    os.symlink(victim, tmp)
            except OSError:
                pass


def restore_under_links(tap, inst, user, backup):
    """Root restores while the store's owner plants links in the store's
    folder: root writes through none of them and gives none away."""
    db = os.path.basename(inst.db)
    victim = os.path.join(inst.base, 'root-only')
    with open(victim, 'wb') as fh:
        fh.write(b'root only\n' * 64)
    os.chmod(victim, 0o600)
    with open(victim, 'rb') as fh:
        before = fh.read()
    pid = os.fork()
    if pid == 0:
        try:
            plant_links(inst.var, db, victim, user)
        finally:
            os._exit(0)
    time.sleep(0.3)
    rcs = [inst.cli('restore', backup).returncode for _ in range(5)]
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    st = os.stat(victim)
    with open(victim, 'rb') as fh:
        after = fh.read()
    tap.ok(after == before and (st.st_uid, stat.S_IMODE(st.st_mode)) ==
           (0, 0o600), 'links planted by %s while root restores (five '
           'times): root wrote through none and gave none away'
           % user.pw_name, rcs, after[:32], (st.st_uid, st.st_mode))
    for n in os.listdir(inst.var):
        path = os.path.join(inst.var, n)
        if os.path.islink(path) or n.endswith('.moved'):
            os.unlink(path)
    p = inst.cli('restore', backup)
    tap.is_(p.returncode, 0, '... and the next restore, with no links, '
            'puts the backup back', p.stderr)


def restore_over_link(tap, inst, user, who, backup):
    """The store's name made a link by the folder's owner, to a store only
    root may use: root acts as the folder's owner, not as the owner of
    what the link points to; the restore puts a store of the folder's
    owner in place of the link and leaves root's store as it was."""
    theirs = os.path.join(inst.base, 'root-store.mdb')
    shutil.copy(inst.db, theirs)
    os.chown(theirs, 0, 0)
    os.chmod(theirs, 0o600)
    with open(theirs, 'rb') as fh:
        before = fh.read()
    os.unlink(inst.db)
    os.symlink(theirs, inst.db)
    p = inst.cli('restore', backup)
    st = os.lstat(inst.db)
    with open(theirs, 'rb') as fh:
        after = fh.read()
    tap.ok(p.returncode == 0 and stat.S_ISREG(st.st_mode) and
           (st.st_uid, st.st_gid) == who and after == before,
           'root restores over a link to a store of root\'s: the store put '
           'back is %s\'s, root\'s store untouched' % user.pw_name,
           p.returncode, p.stderr[-300:], (st.st_uid, st.st_mode))
    os.unlink(theirs)


def main(tap):
    harness.lmdb_only(tap, 'who owns the LMDB file and its lock')
    if os.geteuid() != 0:
        tap.skip_all('not root: the store cannot be given to another user')
    user = throwaway_user()
    if user is None:
        tap.skip_all('no www-data or nobody user to give the store to')
    run(tap, Owned(tap, user), user, (user.pw_uid, user.pw_gid))


def run(tap, inst, user, who):
    db = os.path.basename(inst.db)
    p = inst.cli('check')
    tap.ok(p.returncode == 0 and ', created)' in p.stdout,
           'root runs check on a store folder of %s\'s: the store is '
           'created' % user.pw_name, p.stdout, p.stderr)
    got = owners(inst.var)
    tap.is_({n: got.get(n, (None, None, 0))[:2] for n in (db, db + '-lock')},
            {db: who, db + '-lock': who},
            '... and it and its lock belong to %s' % user.pw_name, got)

    p = inst.cli('stats')
    tap.is_(p.returncode, 0, 'root runs stats', p.stderr)
    p = inst.cli('notifications', 'list')
    tap.is_(p.returncode, 0, 'root runs notifications list', p.stderr)
    got = owners(inst.var)
    tap.is_(sorted(got), sorted(db + s for s in SIDE),
            'the store\'s files are there', got)
    tap.is_(root_owned(inst.var), [], '... and none is root\'s', got)
    tap.ok(all(got[n][:2] == who and private(got[n]) for n in got),
           '... each %s\'s, mode 0600 (folders 0700)' % user.pw_name, got)

    os.unlink(inst.db + '-metrics')
    shutil.rmtree(inst.db + '-archive')
    p = inst.cli('sweep')
    tap.is_(p.returncode, 0, 'root runs sweep (metrics and archive gone)',
            p.stderr)
    got = owners(inst.var)
    tap.ok(all(db + s in got for s in SIDE) and not root_owned(inst.var),
           '... which makes them again, %s\'s' % user.pw_name, got)

    rootdir = tempfile.mkdtemp(prefix='payhook-e2e-rootonly-')
    os.chmod(rootdir, 0o755)
    p = inst.cli('backup', os.path.join(rootdir, 'copy.mdb'))
    shutil.rmtree(rootdir, ignore_errors=True)
    tap.ok(p.returncode == 1 and 'Permission denied' in p.stderr and
           '(written as %s, the database\'s owner' % user.pw_name in
           p.stderr, 'root runs backup into a folder only root may write: '
           'refused, saying as whom it writes', p.returncode, p.stderr)
    backup = os.path.join(inst.var, 'copy.mdb')
    p = inst.cli('backup', backup)
    tap.is_(p.returncode, 0, 'root runs backup into the store\'s folder',
            p.stderr)
    st = os.stat(backup) if os.path.exists(backup) else None
    tap.ok(st is not None and (st.st_uid, st.st_gid) == who,
           '... the copy is %s\'s like the store' % user.pw_name,
           st and (st.st_uid, st.st_gid))
    os.chown(backup, 0, 0)
    p = inst.cli('restore', backup)
    tap.is_(p.returncode, 0, 'root restores a copy of root\'s', p.stderr)
    st = os.stat(inst.db)
    tap.is_((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), who + (0o600,),
            '... the restored store is %s\'s, mode 0600' % user.pw_name)
    tap.is_(root_owned(inst.var), ['copy.mdb'],
            '... and nothing beside it is root\'s but the copy')
    restore_under_links(tap, inst, user, backup)
    restore_over_link(tap, inst, user, who, backup)
    os.unlink(backup)
    p = inst.cli('backup', os.path.join(inst.dir, 'copy.mdb'))
    tap.ok(p.returncode == 1 and 'copy.mdb' in p.stderr,
           'backup into a folder only root may write: refused, naming it',
           p.returncode, p.stderr)

    # check --user: the server's files, missing or unusable.  The
    # configuration becomes the user's, as it is in a deployment.
    for root, dirs, files in os.walk(inst.dir):
        for n in dirs + files:
            os.chown(os.path.join(root, n), *who)
    os.chown(inst.dir, *who)
    os.chmod(inst.dir, 0o755)
    p = inst.cli('check', '--user', user.pw_name)
    if reachable(os.path.join(harness.PLUGIN_DIR, 'x'), user):
        tap.ok(p.returncode == 0 and p.stdout.rstrip().endswith(
            '; usable by %s' % user.pw_name), 'check --user %s: everything '
            'usable' % user.pw_name, p.stdout, p.stderr)
    else:
        deployed.skip(tap, 'check --user %s: the plugins of the build are '
                      'out of its reach' % user.pw_name)

    os.rmdir(inst.db + '-archive/hints')
    os.chown(inst.db + '-metrics', 0, 0)
    os.chown(inst.db + '-archive/seg', 0, 0)
    p = inst.cli('check', '--user', user.pw_name)
    tap.is_(p.returncode, 78, 'check --user with root\'s side files: exit 78',
            p.stderr)
    for what, path in (('metrics file', '-metrics'),
                       ('notification segments folder', '-archive/seg')):
        tap.ok('cannot write the %s %s' % (what, inst.db + path) in p.stderr,
               '... names the %s %s cannot write' % (what, user.pw_name),
               p.stderr)
    tap.ok('query hints folder %s-archive/hints: missing; user %s '
           'can create it' % (inst.db, user.pw_name) in p.stdout,
           '... says the hints folder is missing, and that %s can '
           'create it' % user.pw_name, p.stdout)
    tap.ok('hints' not in p.stderr,
           '... which is not a problem', p.stderr)

    os.chown(inst.db + '-metrics', *who)
    os.chown(inst.db + '-archive/seg', *who)
    os.unlink(inst.db + '-metrics')
    os.chmod(inst.var, 0o500)
    p = inst.cli('check', '--user', user.pw_name)
    tap.ok(p.returncode == 78 and 'metrics file %s-metrics: missing, and '
           'user %s cannot create it in %s (mode 0500, owner ' %
           (inst.db, user.pw_name, inst.var) in p.stderr,
           'a missing metrics file %s cannot create: named, exit 78'
           % user.pw_name, p.returncode, p.stderr)
    os.chmod(inst.var, 0o700)

    # A metrics token only root may read: payhook.fcgi as the user would
    # refuse the configuration, so check --user does.
    with open(inst.config) as fh:
        conf = fh.read()
    token = os.path.join(inst.etc, 'keys', 'metrics.token')
    harness.write_file(token, 'metrics-' + os.urandom(16).hex() + '\n')
    os.chown(token, 0, 0)
    with open(inst.config, 'w') as fh:
        fh.write(conf.replace('[core]\n', '[core]\nmetrics_token_file = '
                              'keys/metrics.token\n', 1))
    p = inst.cli('check', '--user', user.pw_name)
    tap.ok(p.returncode == 78 and 'cannot read the metrics_token_file '
           '%s' % token in p.stderr, 'a metrics_token_file %s cannot read: '
           'named, exit 78' % user.pw_name, p.returncode, p.stderr)
    # ... in a folder the user cannot enter: the folder named, with its
    # mode and owner, as every refusal is.
    keys = os.path.dirname(token)
    was = os.stat(keys)
    os.chown(token, *who)
    os.chown(keys, 0, 0)
    os.chmod(keys, 0o700)
    p = inst.cli('check', '--user', user.pw_name)
    tap.ok(p.returncode == 78 and 'user %s cannot enter %s (mode 0700, '
           'owner 0), on the way to the metrics_token_file' %
           (user.pw_name, keys) in p.stderr, 'a folder %s cannot enter: '
           'named with its mode and owner, exit 78' % user.pw_name,
           p.returncode, p.stderr)
    os.chown(keys, was.st_uid, was.st_gid)
    os.chmod(keys, was.st_mode & 0o7777)
    with open(inst.config, 'w') as fh:
        fh.write(conf)
    os.unlink(token)

    # A configuration named by a relative path: the folders above the
    # working folder are on its way too.
    etc = os.path.dirname(inst.config)
    was = os.stat(etc)
    os.chown(etc, 0, 0)
    os.chmod(etc, 0o700)
    p = inst.cli('check', '--user', user.pw_name,
                 config=os.path.basename(inst.config), cwd=etc)
    tap.ok(p.returncode == 78 and 'user %s cannot enter %s (mode 0700, '
           'owner 0), on the way to the configuration file' %
           (user.pw_name, os.path.realpath(etc)) in p.stderr,
           '-c with a relative path, its folder one %s cannot enter: named, '
           'exit 78' % user.pw_name, p.returncode, p.stderr)
    os.chown(etc, was.st_uid, was.st_gid)
    os.chmod(etc, was.st_mode & 0o7777)

    # The database's folder missing, in a folder the user cannot write:
    # refused, and nothing made (made by root, it would be root's and the
    # next check would name another problem).
    var = os.path.dirname(inst.db)
    shutil.rmtree(var)
    os.chown(inst.etc, 0, 0)
    os.chmod(inst.etc, 0o755)
    p = inst.cli('check', '--user', user.pw_name)
    tap.ok(p.returncode == 78 and 'user %s cannot create it' % user.pw_name
           in p.stderr, 'a database folder %s cannot create: named, exit 78'
           % user.pw_name, p.returncode, p.stderr)
    tap.ok(not os.path.exists(var), '... and nothing made there',
           os.listdir(inst.etc))


if __name__ == '__main__':
    harness.run(main, need_lighttpd=False)
