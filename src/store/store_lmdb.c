/*
 * The LMDB engine of the store: one environment per process, a named
 * database per kind of record.  Only this file includes LMDB's error codes
 * in its logic; lmdb_status() is where they become payhook's.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>

#include <lmdb.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/metrics.h"
#include "store/store_int.h"

/*
 * How a commit becomes durable (doc/design/security.md §3); the one switch.
 *
 * 1: the environment is opened with MDB_NOMETASYNC.  mdb_txn_commit()
 *    writes the data pages and flushes them, writes the meta page without
 *    a flush and releases the writer lock; store_commit() then flushes
 *    with mdb_env_sync(env, 1) and returns only when that is done, so
 *    nothing is acknowledged before its meta page is on disk.  The second
 *    flush is outside the writer lock: while one process flushes its meta
 *    page the next one commits, and the flushes of several processes
 *    overlap (the kernel merges flushes that wait together).  A crash at
 *    any instant leaves the old meta page or the new one, and either
 *    points at data pages that were flushed before it was written.
 *    Other processes see a commit before its meta page is flushed: whoever
 *    answers from what a transaction saw (a duplicate acknowledged, an
 *    order or the event feed shown) calls store_settle() first.
 * 0: LMDB's default: both flushes inside mdb_txn_commit(), under the
 *    writer lock; store_settle() has nothing to do.
 *
 * MDB_NOSYNC, MDB_MAPASYNC, MDB_WRITEMAP and MDB_NOLOCK are refused either
 * way, and MDB_NOMETASYNC unless this is 1.
 */
#ifndef STORE_SHARED_SYNC
#define STORE_SHARED_SYNC 1
#endif

/* A broken store for tests/crash only (its payhook-ackfirst.fcgi): commits
 * are answered before their meta page is flushed.  No other build sets it. */
#ifdef PH_TEST_ACK_BEFORE_SYNC
#define STORE_FLUSH_META 0
#else
#define STORE_FLUSH_META 1
#endif

struct lmdb_store {
	struct store s;			/* first: what store.c shares */
	MDB_env *env;
	MDB_dbi dbi[STORE_DB__MAX];
	/* Every transaction up to this id is on disk, as far as this process
	 * knows (a flush it waited for began after their meta pages were
	 * written). */
	uint64_t synced;
};

static const struct store_engine lmdb_engine;

static struct lmdb_store *
lmdb_of(const struct store *s)
{
	return (struct lmdb_store *)s;
}

/* The one translation of LMDB's errors into payhook's. */
static int
lmdb_status(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return PH_OK;
	case MDB_NOTFOUND:
		return PH_E_NOTFOUND;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case ENOSPC:		/* the disk under the map */
	case EDQUOT:
		return PH_E_STORE_FULL;
	case ENOMEM:
		return PH_E_NOMEM;
	default:
		return PH_E_STORE;
	}
}

/*
 * Refuses a file shorter than its last page: LMDB maps the file, and a
 * page read past its end kills the process with SIGBUS, without a word.
 * A copy cut short, or a file system that lost the file's tail, leaves
 * one like that.
 */
static int
lmdb_check_size(MDB_env *env, const char *path, struct ph_diag *diag)
{
	MDB_envinfo info;
	MDB_stat ms;
	mdb_filehandle_t fd;
	struct stat st;
	unsigned long long need;

	if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &ms) != 0 ||
	    mdb_env_get_fd(env, &fd) != 0 || fstat(fd, &st) == -1)
		return ph_fail(diag, PH_E_STORE, "database %s: cannot tell its "
		    "size", path);
	need = ((unsigned long long)info.me_last_pgno + 1) * ms.ms_psize;
	if ((unsigned long long)st.st_size < need)
		return ph_fail(diag, PH_E_STORE, "database %s is truncated: "
		    "%lld bytes, its pages need %llu (a copy cut short?); "
		    "nothing was read: put a backup back (payhook restore)",
		    path, (long long)st.st_size, need);
	return PH_OK;
}

/* Opens (creating if needed) the LMDB file at path. */
static int
lmdb_open_file(const char *path, size_t map_size, int flags,
    struct store **out, struct ph_diag *diag)
{
	struct lmdb_store *s;
	MDB_txn *txn = NULL;
	unsigned int envflags = 0, unsafe;
	int rc, dead = 0, i;

	*out = NULL;
	if ((s = store_alloc(&lmdb_engine, sizeof(*s), path, path)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if ((rc = mdb_env_create(&s->env)) != 0)
		goto fail;
	if ((rc = mdb_env_set_maxdbs(s->env, STORE_DB__MAX + 2)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, 256)) != 0)
		goto fail;
	/*
	 * No MDB_NOSYNC: a notification is acknowledged only after its
	 * transaction is on disk; MDB_NOMETASYNC only with the flush of
	 * store_commit() (STORE_SHARED_SYNC).  MDB_NOTLS because read
	 * transactions are not tied to threads here.
	 */
	rc = mdb_env_open(s->env, path, MDB_NOSUBDIR | MDB_NOTLS |
	    (STORE_SHARED_SYNC ? MDB_NOMETASYNC : 0), 0600);
	if (rc != 0)
		goto fail;
	unsafe = MDB_NOSYNC | MDB_MAPASYNC | MDB_WRITEMAP | MDB_NOLOCK |
	    (STORE_SHARED_SYNC ? 0 : MDB_NOMETASYNC);
	if (mdb_env_get_flags(s->env, &envflags) == 0 && (envflags & unsafe)) {
		ph_fail(diag, PH_E_STORE, "database %s: opened with flags "
		    "0x%x that give up durability; refusing to serve", path,
		    envflags);
		store_close(&s->s);
		return PH_E_STORE;
	}
	if ((rc = lmdb_check_size(s->env, path, diag)) != PH_OK) {
		store_close(&s->s);
		return rc;
	}
	/* Reader slots of processes killed mid-read would pin old pages. */
	if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
		log_warn("database %s: cleared %d stale reader slot(s)", path,
		    dead);
	/* The databases' handles from a read transaction when they are all
	 * there: an opening must not wait for the writer lock, which a
	 * process stuck in a commit may hold (a new payhook.fcgi answers
	 * /readyz with why meanwhile).  A write transaction makes them. */
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		goto fail;
	for (i = 0; i < STORE_DB__MAX && rc == 0; i++)
		rc = mdb_dbi_open(txn, store_db_name(i), 0, &s->dbi[i]);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
			txn = NULL;
			goto fail;
		}
		for (i = 0; i < STORE_DB__MAX && rc == 0; i++)
			rc = mdb_dbi_open(txn, store_db_name(i), MDB_CREATE,
			    &s->dbi[i]);
	}
	if (rc != 0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	txn = NULL;
	if ((rc = store_check_schema(&s->s, flags,
	    !(flags & STORE_OPEN_EXISTING), diag)) != PH_OK) {
		store_close(&s->s);
		return rc;
	}
	*out = &s->s;
	return PH_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	ph_fail(diag, lmdb_status(rc), "database %s: %s", path,
	    mdb_strerror(rc));
	store_close(&s->s);
	return lmdb_status(rc) == PH_OK ? PH_E_STORE : lmdb_status(rc);
}

/* Flushes the folder that holds path, so a name given in it is on disk. */
static int
store_sync_dir(const char *path)
{
	char *tmp = strdup(path);
	int fd, rc = -1;

	if (tmp == NULL)
		return -1;
	if ((fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
	    -1) {
		rc = fsync(fd);
		close(fd);
	}
	free(tmp);
	return rc;
}

/*
 * Makes a new database whole before it has its name.  mdb_env_open()
 * writes a new file's two meta pages without a flush, and the first
 * commit flushes them: a power cut in between can leave a file whose
 * first page is no meta page, which LMDB refuses (MDB_INVALID) until
 * somebody deletes it.  And a file's name is on disk only once its
 * folder is flushed, which nothing else does: without it a power cut
 * can take the whole database, every acknowledged fact in it.  So the
 * database is made as PATH.PID.new, its schema and epoch committed and
 * flushed, then linked to PATH and the folder flushed.  Of processes
 * starting together the first link wins and the others drop their copy
 * (each flushes the folder: the winner's link must be on disk before
 * anyone answers from the file).  A power cut leaves PATH whole or
 * absent, at worst with a stray PATH.PID.new beside it.
 */
static int
store_create(const char *path, size_t map_size, struct ph_diag *diag)
{
	char tmp[PATH_MAX], lock[PATH_MAX];
	struct store *s;
	int rc, won;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.new", path,
	    (long)getpid()) >= sizeof(tmp) ||
	    (size_t)snprintf(lock, sizeof(lock), "%s-lock", tmp) >=
	    sizeof(lock))
		return ph_fail(diag, PH_E_IO, "database %s: path too long",
		    path);
	/* Left by a process of this pid that did not finish. */
	(void)unlink(tmp);
	(void)unlink(lock);
	if ((rc = lmdb_open_file(tmp, map_size, 0, &s, diag)) != PH_OK)
		goto cleanup;
	store_close(s);
	if ((won = link(tmp, path) == 0) == 0 && errno != EEXIST)
		rc = ph_fail(diag, PH_E_IO, "database %s: %s", path,
		    strerror(errno));
	else if (store_sync_dir(path) == -1)
		rc = ph_fail(diag, PH_E_IO, "database folder of %s: %s", path,
		    strerror(errno));
	else if (won)
		/* Said once, by the process that made it: a db_path that
		 * points at the wrong place (a volume not mounted) shows. */
		log_info("database %s did not exist: made a new, empty store",
		    path);
cleanup:
	(void)unlink(tmp);
	(void)unlink(lock);
	return rc;
}

/*
 * The store's folder, flocked: exclusively by a restore (store_restore),
 * shared by an open for as long as it takes.  A restore checks that no
 * process has the store open, renames its copy over the store and
 * removes the old lock file; an open between the two would map the file
 * replaced (its commits lost with it), or the new one under the old lock
 * file while later opens make another (two writers' locks for one file).
 * The lock waits up to STORE_FOLDER_WAIT_MS for the other side (an open
 * takes moments; a restore may take minutes, and the open is refused).
 * *dfd gets the folder's descriptor, which holds the lock until closed.
 */
#define STORE_FOLDER_WAIT_MS	3000

static int
store_folder_lock(const char *path, int how, int *dfd, struct ph_diag *diag)
{
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	char *tmp, *dir;
	int fd, waited, rc = PH_OK;

	*dfd = -1;
	if ((tmp = strdup(path)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	dir = dirname(tmp);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		rc = ph_fail(diag, PH_E_IO, "database folder %s: %s", dir,
		    strerror(errno));
		goto done;
	}
	for (waited = 0; flock(fd, how | LOCK_NB) == -1; waited += 10) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			rc = ph_fail(diag, PH_E_IO, "database folder %s: "
			    "cannot lock it: %s", dir, strerror(errno));
		else if (waited >= STORE_FOLDER_WAIT_MS)
			rc = ph_fail(diag, PH_E_STORE, how == LOCK_EX ?
			    "database %s: another payhook restore of it is "
			    "running (or a process was opening it); nothing "
			    "was replaced" : "database %s: a payhook restore of "
			    "it is under way: open it again when it has ended",
			    path);
		else {
			nanosleep(&nap, NULL);
			continue;
		}
		close(fd);
		goto done;
	}
	*dfd = fd;
done:
	free(tmp);
	return rc;
}

/* store_lmdb_open() without the folder's lock: a restore's own opens,
 * which hold it exclusively. */
static int
store_lmdb_open_unlocked(const char *path, size_t map_size, int flags,
    struct store **out, struct ph_diag *diag)
{
	struct stat st;
	int rc;

	if (stat(path, &st) == -1) {
		if (errno == ENOENT &&
		    (rc = store_create(path, map_size, diag)) != PH_OK)
			return rc;
	} else if (st.st_size == 0)
		/* LMDB would make a new database of it: every order the
		 * file held would be gone without a word. */
		return ph_fail(diag, PH_E_STORE, "database %s is an empty file "
		    "(0 bytes), not a database: put a backup back (payhook "
		    "restore), or remove it to start a new store", path);
	return lmdb_open_file(path, map_size, flags, out, diag);
}

int
store_lmdb_open(const char *path, size_t map_size, int flags,
    struct store **out, struct ph_diag *diag)
{
	int dfd, rc;

	*out = NULL;
	if ((rc = store_mkparent(path, diag)) != PH_OK ||
	    (rc = store_folder_lock(path, LOCK_SH, &dfd, diag)) != PH_OK)
		return rc;
	rc = store_lmdb_open_unlocked(path, map_size, flags, out, diag);
	close(dfd);
	return rc;
}

static void
lmdb_close(struct store *st)
{
	struct lmdb_store *s = lmdb_of(st);

	if (s->env != NULL)
		mdb_env_close(s->env);
	store_free(st);
}

/* Less room than this on the database's file system is a full disk. */
#define LMDB_DISK_SLACK	(1024 * 1024)

/*
 * LMDB reports a write cut short as EIO, and a full disk cuts writes
 * short: an EIO with no room left under the file is a full disk.
 */
static int
lmdb_disk_full(const struct store_txn *t)
{
	struct statvfs vs;
	int fd;

	return mdb_env_get_fd(lmdb_of(t->store)->env, &fd) == 0 &&
	    fstatvfs(fd, &vs) == 0 &&
	    (uint64_t)vs.f_bavail * vs.f_frsize < LMDB_DISK_SLACK;
}

/* The translation of an LMDB error, logged once (the first of t's);
 * a full map or disk counted (store_note_full). */
static int
lmdb_fail(struct store_txn *t, int mdb_rc)
{
	int full = mdb_rc == EIO && lmdb_disk_full(t);
	int st = lmdb_status(full ? ENOSPC : mdb_rc);

	if (st == PH_OK)
		st = PH_E_STORE;
	if (t->err == PH_OK) {
		log_err("database: %s%s", mdb_strerror(mdb_rc), full ?
		    " (no room left on its disk)" : "");
		if (full)
			mdb_rc = ENOSPC;
		if (mdb_rc == MDB_MAP_FULL || mdb_rc == ENOSPC ||
		    mdb_rc == EDQUOT)
			store_note_full(t);
		else if (t->write && (mdb_rc == EROFS || mdb_rc == EPERM ||
		    mdb_rc == EACCES || mdb_rc == EIO))
			store_note_unwritable(t);
	}
	return st;
}

static int
lmdb_begin(struct store_txn *t)
{
	struct lmdb_store *s = lmdb_of(t->store);
	MDB_txn *txn = NULL;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, t->write ? 0 : MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED) {
		/* Another process grew the map: adopt its size and retry. */
		if (mdb_env_set_mapsize(s->env, 0) == 0)
			rc = mdb_txn_begin(s->env, NULL,
			    t->write ? 0 : MDB_RDONLY, &txn);
	}
	if (rc != 0)
		return lmdb_fail(t, rc);
	t->txn = txn;
	/* A reader sees up to its own id, a writer up to the one before. */
	t->seen = mdb_txn_id(txn) - (t->write ? 1 : 0);
	return PH_OK;
}

static int
lmdb_begin_nested(struct store_txn *child)
{
	MDB_txn *txn = NULL;
	int rc;

	if ((rc = mdb_txn_begin(lmdb_of(child->store)->env,
	    child->parent->txn, 0, &txn)) != 0)
		return lmdb_fail(child, rc);
	child->txn = txn;
	return PH_OK;
}

/*
 * Returns when every transaction up to id is on disk: at once when this
 * process knows it already, else after a flush.  The flush covers every
 * meta page written before it began, so afterwards this process knows up
 * to the last transaction committed when it began.
 */
static int
lmdb_sync_to(struct lmdb_store *s, uint64_t id)
{
	MDB_envinfo info;
	int rc;

	if (!STORE_SHARED_SYNC || !STORE_FLUSH_META || id <= s->synced)
		return 0;
	if ((rc = mdb_env_info(s->env, &info)) != 0)
		return rc;
	if ((rc = mdb_env_sync(s->env, 1)) != 0)
		return rc;
	if (info.me_last_txnid > s->synced)
		s->synced = info.me_last_txnid;
	return 0;
}

static int
lmdb_settle(struct store_txn *t)
{
	int rc;

	if ((rc = lmdb_sync_to(lmdb_of(t->store), t->seen)) != 0) {
		log_err("database: flush: %s", mdb_strerror(rc));
		return lmdb_status(rc) == PH_OK ? PH_E_STORE :
		    lmdb_status(rc);
	}
	return PH_OK;
}

static void
lmdb_key(const struct store_key *k, MDB_val *key)
{
	key->mv_data = (void *)k->b;
	key->mv_size = k->len;
}

/* What a lookup that returned rc found: v as out, PH_E_NOTFOUND, or the
 * failure. */
static int
lmdb_found(struct store_txn *t, int rc, const MDB_val *v,
    struct store_val *out)
{
	if (rc == MDB_NOTFOUND)
		return PH_E_NOTFOUND;
	if (rc != 0)
		return lmdb_fail(t, rc);
	out->data = v->mv_data;
	out->len = v->mv_size;
	return PH_OK;
}

static int
lmdb_get(struct store_txn *t, enum store_db db, const struct store_key *k,
    struct store_val *out)
{
	MDB_val key, val;

	lmdb_key(k, &key);
	return lmdb_found(t, mdb_get(t->txn, lmdb_of(t->store)->dbi[db], &key,
	    &val), &val, out);
}

static int
lmdb_put(struct store_txn *t, enum store_db db, const struct store_key *k,
    const void *val, size_t len)
{
	MDB_val key, v;
	int rc;

	lmdb_key(k, &key);
	v.mv_data = (void *)val;
	v.mv_size = len;
	if ((rc = mdb_put(t->txn, lmdb_of(t->store)->dbi[db], &key, &v,
	    0)) != 0)
		return lmdb_fail(t, rc);
	return PH_OK;
}

static int
lmdb_del(struct store_txn *t, enum store_db db, const struct store_key *k)
{
	MDB_val key;
	int rc;

	lmdb_key(k, &key);
	rc = mdb_del(t->txn, lmdb_of(t->store)->dbi[db], &key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail(t, rc);
	return PH_OK;
}

static int
lmdb_cursor(struct store_txn *t, enum store_db db, MDB_cursor **c)
{
	int rc;

	if ((rc = mdb_cursor_open(t->txn, lmdb_of(t->store)->dbi[db], c)) !=
	    0) {
		*c = NULL;
		return lmdb_fail(t, rc);
	}
	return PH_OK;
}

static int
lmdb_last(struct store_txn *t, enum store_db db, struct store_val *last)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = lmdb_cursor(t, db, &c)) != PH_OK)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	return lmdb_found(t, rc, &k, last);
}

static int
lmdb_scan_open(struct store_scan *sc, enum store_db db)
{
	MDB_cursor *c;
	int rc;

	if ((rc = lmdb_cursor(sc->t, db, &c)) == PH_OK)
		sc->cursor = c;
	return rc;
}

static int
lmdb_scan_step(struct store_scan *sc)
{
	MDB_val k, v;
	int rc;

	if (!sc->started && sc->from.len > 0) {
		k.mv_data = sc->from.b;
		k.mv_size = sc->from.len;
		rc = mdb_cursor_get(sc->cursor, &k, &v, MDB_SET_RANGE);
	} else
		rc = mdb_cursor_get(sc->cursor, &k, &v,
		    sc->started ? MDB_NEXT : MDB_FIRST);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return -lmdb_fail(sc->t, rc);
	sc->key.data = k.mv_data;
	sc->key.len = k.mv_size;
	sc->val.data = v.mv_data;
	sc->val.len = v.mv_size;
	return 1;
}

static int
lmdb_scan_del(struct store_scan *sc)
{
	int rc;

	/* LMDB leaves the cursor on the next record, which MDB_NEXT then
	 * returns rather than skipping. */
	if ((rc = mdb_cursor_del(sc->cursor, 0)) != 0)
		return lmdb_fail(sc->t, rc);
	return PH_OK;
}

static void
lmdb_scan_close(struct store_scan *sc)
{
	mdb_cursor_close(sc->cursor);
}

/*
 * Bytes this thread has sent towards the disk: the kernel counts a page
 * when a write first dirties it in the page cache.  Read around a commit
 * (whose pages the flush leaves clean), it is what the commit wrote: its
 * dirty B-tree pages and a meta page.
 */
static uint64_t
lmdb_written_bytes(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_oublock * 512;
}

static int
lmdb_commit(struct store_txn *t)
{
	uint64_t id, written;
	int rc;

	id = mdb_txn_id(t->txn);
	/* a system call: only for the commits that are counted */
	written = t->write && !t->nested ? lmdb_written_bytes() : 0;
	rc = mdb_txn_commit(t->txn);
	t->txn = NULL;
	if (rc != 0)
		return lmdb_fail(t, rc);
	if (t->nested || !t->write)
		return PH_OK;
	/* With STORE_SHARED_SYNC the meta page is flushed here, before the
	 * caller may answer: a failed flush is a failed commit. */
	if ((rc = lmdb_sync_to(lmdb_of(t->store), id)) != 0)
		return lmdb_fail(t, rc);
	metrics_add("payhook_store_commits_total", NULL, 1);
	metrics_add("payhook_store_commit_written_bytes_total", NULL,
	    lmdb_written_bytes() - written);
	/* A commit can reuse the file's free pages on a disk still full:
	 * it proves room only once the disk has some (store_commit). */
	if (metrics_get("payhook_store_full_since_timestamp_seconds",
	    NULL) != 0 && lmdb_disk_full(t))
		t->full = 1;
	return PH_OK;
}

static void
lmdb_abort(struct store_txn *t)
{
	mdb_txn_abort(t->txn);
}

static int
lmdb_space(struct store *st_, struct store_stats *st)
{
	struct lmdb_store *s = lmdb_of(st_);
	MDB_envinfo info;
	MDB_stat ms;

	if (mdb_env_info(s->env, &info) == 0 &&
	    mdb_env_stat(s->env, &ms) == 0) {
		st->map_size = info.me_mapsize;
		st->map_used = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
		st->readers_used = info.me_numreaders;
		st->readers_max = info.me_maxreaders;
	}
	return PH_OK;
}

static int
lmdb_stats(struct store *st_, struct store_stats *st)
{
	struct lmdb_store *s = lmdb_of(st_);
	struct store_txn t;
	MDB_stat ms;
	int rc, i;

	if ((rc = store_begin(st_, 0, &t)) != PH_OK)
		return rc;
	for (i = 0; i < STORE_DB__MAX; i++) {
		if ((rc = mdb_stat(t.txn, s->dbi[i], &ms)) != 0) {
			store_abort(&t);
			return lmdb_status(rc);
		}
		st->entries[i] = ms.ms_entries;
	}
	store_abort(&t);
	return lmdb_space(st_, st);
}

static int
lmdb_backup(struct store *st_, const char *path, struct ph_diag *diag)
{
	char tmp[4096], dir[4096], *base;
	struct stat st;
	int fd, dfd, rc;

	if (stat(path, &st) == 0)
		return ph_fail(diag, PH_E_IO, S_ISDIR(st.st_mode) ?
		    "backup: %s is a folder: name the backup file to make "
		    "in it" : "backup: the file exists, not overwritten: %s",
		    path);
	/* Written under another name beside it and linked into place once
	 * whole and on disk: a backup killed half way leaves no file by
	 * the name given, where a copy taken off-site would be a broken
	 * one (the partial file's name says what it is).  A name too long
	 * to take the suffix gets a short one in the same folder. */
	ph_strlcpy(dir, path, sizeof(dir));
	base = basename(dir);
	if (strlen(base) + sizeof(".partial-XXXXXX") - 1 <= NAME_MAX)
		rc = snprintf(tmp, sizeof(tmp), "%s.partial-XXXXXX", path);
	else {
		ph_strlcpy(dir, path, sizeof(dir));
		rc = snprintf(tmp, sizeof(tmp), "%s/.payhook-backup.partial-"
		    "XXXXXX", dirname(dir));
	}
	if (rc < 0 || rc >= (int)sizeof(tmp))
		return ph_fail(diag, PH_E_IO, "backup: the name is too long: "
		    "%s", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return ph_fail(diag, PH_E_IO, "backup: %s: %s",
		    strerror(errno), path);
	rc = mdb_env_copyfd2(lmdb_of(st_)->env, fd, MDB_CP_COMPACT);
	if (rc == 0 && fsync(fd) == -1)
		rc = errno;
	if (close(fd) == -1 && rc == 0)
		rc = errno;
	/* link(2) fails on a name taken meanwhile: nothing overwritten. */
	if (rc == 0 && link(tmp, path) == -1)
		rc = errno;
	unlink(tmp);
	if (rc != 0)
		return ph_fail(diag, PH_E_IO, "backup: %s: %s",
		    mdb_strerror(rc), path);
	ph_strlcpy(dir, path, sizeof(dir));
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return PH_OK;
}

static int store_in_use(const char *path, long *pid);

/* Its own lock on the lock file is not seen by F_GETLK: only others'. */
static int
lmdb_others(struct store *s, long *pid)
{
	return store_in_use(store_path(s), pid);
}

static const struct store_engine lmdb_engine = {
	.name = "lmdb",
	.close = lmdb_close,
	.begin = lmdb_begin,
	.begin_nested = lmdb_begin_nested,
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.last = lmdb_last,
	.scan_open = lmdb_scan_open,
	.scan_step = lmdb_scan_step,
	.scan_del = lmdb_scan_del,
	.scan_close = lmdb_scan_close,
	.commit = lmdb_commit,
	.abort = lmdb_abort,
	.settle = lmdb_settle,
	.stats = lmdb_stats,
	.space = lmdb_space,
	.backup = lmdb_backup,
	.others = lmdb_others,
};

/*
 * Is another process holding the LMDB environment at path?  Every process
 * that opens it keeps a lock on the first byte of its lock file; *pid is
 * one of them.
 */
static int
store_in_use(const char *path, long *pid)
{
	char lock[4096];
	struct flock fl;
	int fd, busy = 0;

	*pid = 0;
	if (snprintf(lock, sizeof(lock), "%s-lock", path) >= (int)sizeof(lock))
		return -1;
	if ((fd = open(lock, O_RDWR | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	if (fcntl(fd, F_GETLK, &fl) == -1)
		busy = -1;
	else if (fl.l_type != F_UNLCK) {
		busy = 1;
		*pid = (long)fl.l_pid;
	}
	close(fd);
	return busy;
}

/*
 * Copies what fd holds (from, in messages) to a new file to, flushed, with
 * rep's mode and, as root, its owner: set through the new file's own
 * descriptor, never by name.
 */
static int
store_copy_file(int in, const char *from, const char *to,
    struct store_restore_report *rep, struct ph_diag *diag)
{
	char buf[65536];
	ssize_t n, w;
	int out, rc = PH_OK;

	rep->bytes = 0;
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return ph_fail(diag, PH_E_IO, "%s: %s", to, strerror(errno));
	if ((geteuid() == 0 && fchown(out, (uid_t)rep->uid,
	    (gid_t)rep->gid) == -1) || fchmod(out, (mode_t)rep->mode) == -1) {
		rc = ph_fail(diag, PH_E_IO, "%s: cannot give it the owner and "
		    "mode of the database: %s", to, strerror(errno));
		goto done;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (w = 0; w < n; ) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k == -1) {
				rc = ph_fail(diag, PH_E_IO, "%s: %s", to,
				    strerror(errno));
				goto done;
			}
			w += k;
		}
		rep->bytes += (size_t)n;
	}
	if (n == -1)
		rc = ph_fail(diag, PH_E_IO, "backup %s: %s", from,
		    strerror(errno));
	else if (fsync(out) == -1)
		rc = ph_fail(diag, PH_E_IO, "%s: %s", to, strerror(errno));
done:
	if (close(out) == -1 && rc == PH_OK)
		rc = ph_fail(diag, PH_E_IO, "%s: %s", to, strerror(errno));
	if (rc != PH_OK)
		unlink(to);
	return rc;
}

/* The most a restore's child may take to read the store replaced. */
#define RESTORE_CHILD_S	60

/* What the child of restore_replaced_next() hands back. */
struct restore_seq {
	int rc;
	uint64_t next;
	char why[sizeof(((struct store_restore_report *)0)->replaced_unread)];
};

/* In the child: opens the store at path as any command does, reads its
 * next sequence number. */
static void
restore_seq_read(const char *path, size_t map_size, struct restore_seq *r)
{
	struct ph_diag diag;
	struct store *s;

	memset(&diag, 0, sizeof(diag));
	if ((r->rc = store_lmdb_open_unlocked(path, map_size, STORE_OPEN_OLDER |
	    STORE_OPEN_EXISTING, &s, &diag)) != PH_OK) {
		ph_strlcpy(r->why, diag.msg, sizeof(r->why));
		return;
	}
	if ((r->rc = store_seq_next(s, &r->next)) != PH_OK)
		snprintf(r->why, sizeof(r->why), "database %s: %s", path,
		    ph_strerror(r->rc));
	store_close(s);
}

/*
 * The next sequence number of the store a restore replaces, which may
 * have handed out more than the backup holds (or been restored from it
 * before) into rep; why not in rep->replaced_unread.  Read in a child:
 * a damaged store, often why it is restored, can crash its reader, and
 * the restore goes on without it.  No process has the store open.
 */
static void
restore_replaced_next(const char *path, size_t map_size, int dfd,
    struct store_restore_report *rep)
{
	struct restore_seq r;
	ssize_t n;
	pid_t pid;
	int p[2], status;

	memset(&r, 0, sizeof(r));
	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(rep->replaced_unread, sizeof(rep->replaced_unread),
		    "pipe: %s", strerror(errno));
		return;
	}
	if ((pid = fork()) == -1) {
		snprintf(rep->replaced_unread, sizeof(rep->replaced_unread),
		    "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		/* The folder's lock is the restore's: a child that hung
		 * would keep every open refused after the restore ended. */
		close(dfd);
		alarm(RESTORE_CHILD_S);
		restore_seq_read(path, map_size, &r);
		/* Less than PIPE_BUF: written and read whole. */
		n = write(p[1], &r, sizeof(r));
		_exit(n == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	while ((n = read(p[0], &r, sizeof(r))) == -1 && errno == EINTR)
		;
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(r))
		snprintf(rep->replaced_unread, sizeof(rep->replaced_unread),
		    "database %s: its reader died%s", path,
		    WIFSIGNALED(status) ? " of a signal" : "");
	else if (r.rc != PH_OK)
		ph_strlcpy(rep->replaced_unread, r.why,
		    sizeof(rep->replaced_unread));
	else if (r.next > STORE_SEQ_SANE)
		/* A flipped bit in a key LMDB does not check: taken as
		 * is, it would put every number past the feed's range. */
		snprintf(rep->replaced_unread, sizeof(rep->replaced_unread),
		    "database %s: its next sequence number %llu is past any "
		    "payhook hands out: damaged", path,
		    (unsigned long long)r.next);
	else
		rep->seq_replaced = r.next;
}

/* The restore itself, the folder's lock held (store_folder_lock). */
static int
restore_locked(const char *path, int fd, int dfd, const char *backup,
    size_t map_size, struct store_restore_report *rep,
    struct ph_diag *diag)
{
	char tmp[4096], lock[4096], tmplock[4200];
	char why[sizeof(((struct ph_diag *)0)->msg)];
	struct store *s = NULL;
	struct store_txn t;
	struct stat st;
	long pid;
	int rc, busy;

	if (snprintf(tmp, sizeof(tmp), "%s.restore", path) >=
	    (int)sizeof(tmp) || snprintf(lock, sizeof(lock), "%s-lock",
	    path) >= (int)sizeof(lock))
		return ph_fail(diag, PH_E_CONFIG, "database path too long");
	snprintf(tmplock, sizeof(tmplock), "%s-lock", tmp);
	if ((busy = store_in_use(path, &pid)) < 0)
		return ph_fail(diag, PH_E_IO, "database %s: cannot tell whether "
		    "it is in use: %s", path, strerror(errno));
	if (busy)
		return ph_fail(diag, PH_E_CONFLICT, "database %s is open in "
		    "process %ld (and maybe others): stop the web server's "
		    "payhook processes and the sweeper first", path, pid);
	rep->uid = (long)getuid();
	rep->gid = (long)getgid();
	rep->mode = 0600;
	if (stat(path, &st) == 0) {
		rep->replaced = 1;
		rep->uid = (long)st.st_uid;
		rep->gid = (long)st.st_gid;
		rep->mode = (unsigned)(st.st_mode & 07777);
	} else if (errno != ENOENT)
		return ph_fail(diag, PH_E_IO, "database %s: %s", path,
		    strerror(errno));
	/* The store must stay the owner's to read and write. */
	rep->mode |= S_IRUSR | S_IWUSR;
	if (rep->replaced)
		restore_replaced_next(path, map_size, dfd, rep);
	/* Left by a restore that died: the lock makes the name this run's. */
	unlink(tmp);
	unlink(tmplock);
	if ((rc = store_copy_file(fd, backup, tmp, rep, diag)) != PH_OK)
		return rc;
	/* The copy must be a store this payhook reads, never one LMDB
	 * would make of an empty file; it gets a new epoch before anything
	 * can read it. */
	if (rep->bytes == 0) {
		rc = ph_fail(diag, PH_E_STORE, "backup %s is empty (0 bytes): "
		    "not a payhook database; nothing was replaced", backup);
		goto fail;
	}
	if ((rc = store_lmdb_open_unlocked(tmp, map_size, STORE_OPEN_OLDER |
	    STORE_OPEN_EXISTING, &s, diag)) != PH_OK) {
		ph_strlcpy(why, diag->msg, sizeof(why));
		ph_fail(diag, rc, "backup %s is not a database this payhook "
		    "reads (%s); nothing was replaced", backup, why);
		goto fail;
	}
	ph_strlcpy(rep->epoch_before, store_epoch(s),
	    sizeof(rep->epoch_before));
	if ((rc = store_seq_next(s, &rep->seq_backup)) == PH_OK &&
	    (rc = store_begin(s, 1, &t)) == PH_OK) {
		store_new_epoch(&t);
		rep->seq_from = store_seq_jump(&t, rep->seq_replaced);
		rc = store_commit(&t);
	}
	if (rc != PH_OK) {
		ph_fail(diag, rc, "backup %s: cannot give it a new epoch: %s",
		    backup, ph_strerror(rc));
		goto fail;
	}
	ph_strlcpy(rep->epoch_after, store_epoch(s),
	    sizeof(rep->epoch_after));
	store_close(s);
	s = NULL;
	unlink(tmplock);
	/* Checked again: a process may have opened the store meanwhile. */
	if ((busy = store_in_use(path, &pid)) != 0) {
		rc = ph_fail(diag, PH_E_CONFLICT, "database %s was opened by "
		    "process %ld during the restore; nothing was replaced",
		    path, pid);
		goto fail;
	}
	if (rename(tmp, path) == -1) {
		rc = ph_fail(diag, PH_E_IO, "rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto fail;
	}
	/* The old lock file describes readers of the file replaced, and
	 * the group commit file facts meant for it. */
	if (unlink(lock) == 0)
		rep->lock_removed = 1;
	snprintf(tmplock, sizeof(tmplock), "%s" STORE_GROUP_SUFFIX, path);
	unlink(tmplock);
	snprintf(tmplock, sizeof(tmplock), "%s-group", path);	/* older */
	unlink(tmplock);
	store_sync_dir(path);
	return PH_OK;
fail:
	store_close(s);
	unlink(tmp);
	unlink(tmplock);
	return rc;
}

int
store_restore(const char *path, int fd, const char *backup,
    size_t map_size, struct store_restore_report *rep,
    struct ph_diag *diag)
{
	int dfd, rc;

	memset(rep, 0, sizeof(*rep));
	/* A new host: the folder as the store's open would make it. */
	if ((rc = store_mkparent(path, diag)) != PH_OK)
		return rc;
	/* One restore at a time, and no open of the store meanwhile (each
	 * restore copies to the same name beside the store). */
	if ((rc = store_folder_lock(path, LOCK_EX, &dfd, diag)) != PH_OK)
		return rc;
	rc = restore_locked(path, fd, dfd, backup, map_size, rep, diag);
	close(dfd);
	return rc;
}
