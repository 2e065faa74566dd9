/*
 * LMDB store.  Only this file includes LMDB's error codes in its logic;
 * store_status() is where they become payhook's.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/metrics.h"
#include "store/store.h"

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

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_DB__MAX];
	char *path;
	/* Every transaction up to this id is on disk, as far as this process
	 * knows (a flush it waited for began after their meta pages were
	 * written). */
	uint64_t synced;
	int schema;			/* the file's schema version */
	int schema_found;		/* ... when it was opened */
	char epoch[STORE_EPOCH_LEN + 1];
	char epoch_new[STORE_EPOCH_LEN + 1];	/* made in an open txn */
};

static const char *const store_db_names[STORE_DB__MAX] = {
	"orders", "payments", "dedup", "events", "refunds", "meta", "due",
	"recon", "push", "idempotency", "refund_ids",
};

const char *
store_db_name(enum store_db db)
{
	return db < STORE_DB__MAX ? store_db_names[db] : "?";
}

/* The one translation of LMDB's errors into payhook's. */
static int
store_status(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return PH_OK;
	case MDB_NOTFOUND:
		return PH_E_NOTFOUND;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return PH_E_STORE_FULL;
	case ENOMEM:
		return PH_E_NOMEM;
	default:
		return PH_E_STORE;
	}
}

/* Creates the folder that holds the database file when it is missing. */
static int
store_mkparent(const char *path, struct ph_diag *diag)
{
	char *tmp, *dir;
	struct stat st;
	int rc = PH_OK;

	if ((tmp = strdup(path)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	dir = dirname(tmp);
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || mkdir(dir, 0700) == -1)
			rc = ph_fail(diag, PH_E_IO, "database folder %s: %s",
			    dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode))
		rc = ph_fail(diag, PH_E_IO, "database folder %s: not a folder",
		    dir);
	free(tmp);
	return rc;
}

static void
store_meta_key(struct store_key *k, const char *name)
{
	store_key_init(k, 0);
	store_key_str(k, name);
}

const char *
store_path(const struct store *s)
{
	return s->path;
}

int
store_schema(const struct store *s)
{
	return s->schema;
}

int
store_schema_found(const struct store *s)
{
	return s->schema_found;
}

const char *
store_epoch(const struct store *s)
{
	return s->epoch;
}

void
store_set_schema(struct store_txn *t, int version)
{
	struct store_key k;
	char v[16];
	int n;

	n = snprintf(v, sizeof(v), "%d", version);
	store_meta_key(&k, "schema");
	store_put(t, STORE_DB_META, &k, v, (size_t)n);
	if (t->err == PH_OK)
		t->store->schema = version;
}

void
store_new_epoch(struct store_txn *t)
{
	unsigned char r[STORE_EPOCH_LEN / 2];
	struct store_key k;

	if (t->err != PH_OK)
		return;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		t->err = PH_E_IO;
		return;
	}
	ph_hex_lower(r, sizeof(r), t->store->epoch_new);
	store_meta_key(&k, "epoch");
	store_put(t, STORE_DB_META, &k, t->store->epoch_new,
	    STORE_EPOCH_LEN);
}

/* Reads the schema version and the epoch; a new file gets both. */
static int
store_check_schema(struct store *s, int flags, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key k;
	struct store_val v;
	char have[16];
	int rc;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database %s: %s", s->path,
		    ph_strerror(rc));
	store_meta_key(&k, "schema");
	rc = store_get(&t, STORE_DB_META, &k, &v);
	if (rc == PH_E_NOTFOUND) {
		store_set_schema(&t, STORE_SCHEMA_VERSION);
		s->schema_found = STORE_SCHEMA_VERSION;
		store_new_epoch(&t);
		if ((rc = store_commit(&t)) != PH_OK)
			return ph_fail(diag, rc, "database %s: cannot write "
			    "its schema version: %s", s->path,
			    ph_strerror(rc));
		return PH_OK;
	}
	if (rc != PH_OK) {
		store_abort(&t);
		return ph_fail(diag, rc, "database %s: %s", s->path,
		    ph_strerror(rc));
	}
	snprintf(have, sizeof(have), "%.*s", (int)(v.len < 15 ? v.len : 15),
	    (const char *)v.data);
	s->schema = s->schema_found = (int)strtol(have, NULL, 10);
	store_meta_key(&k, "epoch");
	if (store_get(&t, STORE_DB_META, &k, &v) == PH_OK &&
	    v.len == STORE_EPOCH_LEN)
		memcpy(s->epoch, v.data, STORE_EPOCH_LEN);
	store_abort(&t);
	if (s->schema > STORE_SCHEMA_VERSION || s->schema < 1)
		return ph_fail(diag, PH_E_STORE, "database %s has schema "
		    "version %s; this payhook reads versions up to %d: use the "
		    "payhook that wrote it", s->path, have,
		    STORE_SCHEMA_VERSION);
	if (s->schema < STORE_SCHEMA_VERSION && !(flags & STORE_OPEN_OLDER))
		return ph_fail(diag, PH_E_STORE, "database %s has schema "
		    "version %d and must be brought up to version %d first "
		    "(payhook check does it)", s->path, s->schema,
		    STORE_SCHEMA_VERSION);
	return PH_OK;
}

/* Opens (creating if needed) the LMDB file at path. */
static int
store_open_file(const char *path, size_t map_size, int flags,
    struct store **out, struct ph_diag *diag)
{
	struct store *s;
	MDB_txn *txn = NULL;
	unsigned int envflags = 0, unsafe;
	int rc, dead = 0, i;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->path = strdup(path)) == NULL) {
		free(s);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
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
		store_close(s);
		return PH_E_STORE;
	}
	/* Reader slots of processes killed mid-read would pin old pages. */
	if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
		log_warn("database %s: cleared %d stale reader slot(s)", path,
		    dead);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		goto fail;
	for (i = 0; i < STORE_DB__MAX; i++)
		if ((rc = mdb_dbi_open(txn, store_db_names[i], MDB_CREATE,
		    &s->dbi[i])) != 0)
			goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	txn = NULL;
	if ((rc = store_check_schema(s, flags, diag)) != PH_OK) {
		store_close(s);
		return rc;
	}
	*out = s;
	return PH_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	ph_fail(diag, store_status(rc), "database %s: %s", path,
	    mdb_strerror(rc));
	store_close(s);
	return store_status(rc) == PH_OK ? PH_E_STORE : store_status(rc);
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
	int rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.new", path,
	    (long)getpid()) >= sizeof(tmp) ||
	    (size_t)snprintf(lock, sizeof(lock), "%s-lock", tmp) >=
	    sizeof(lock))
		return ph_fail(diag, PH_E_IO, "database %s: path too long",
		    path);
	/* Left by a process of this pid that did not finish. */
	(void)unlink(tmp);
	(void)unlink(lock);
	if ((rc = store_open_file(tmp, map_size, 0, &s, diag)) != PH_OK)
		goto cleanup;
	store_close(s);
	if (link(tmp, path) == -1 && errno != EEXIST)
		rc = ph_fail(diag, PH_E_IO, "database %s: %s", path,
		    strerror(errno));
	else if (store_sync_dir(path) == -1)
		rc = ph_fail(diag, PH_E_IO, "database folder of %s: %s", path,
		    strerror(errno));
cleanup:
	(void)unlink(tmp);
	(void)unlink(lock);
	return rc;
}

int
store_open(const char *path, size_t map_size, int flags, struct store **out,
    struct ph_diag *diag)
{
	struct stat st;
	int rc;

	*out = NULL;
	if ((rc = store_mkparent(path, diag)) != PH_OK)
		return rc;
	if (stat(path, &st) == -1 && errno == ENOENT &&
	    (rc = store_create(path, map_size, diag)) != PH_OK)
		return rc;
	return store_open_file(path, map_size, flags, out, diag);
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->env != NULL)
		mdb_env_close(s->env);
	free(s->path);
	free(s);
}

/*
 * A write found the map full: counted, and the time writes began to fail
 * kept for /readyz, until a write transaction commits without meeting a
 * full map in any of its nested ones (store_commit).
 */
static void
store_full(struct store_txn *t)
{
	struct store_txn *p;

	for (p = t; p != NULL; p = p->parent)
		p->full = 1;
	metrics_add("payhook_store_full_total", NULL, 1);
	metrics_set_first("payhook_store_full_since_timestamp_seconds", NULL,
	    (uint64_t)time(NULL));
}

/* Marks t failed with the translation of an LMDB error; returns it. */
static int
store_fail(struct store_txn *t, int mdb_rc)
{
	int st = store_status(mdb_rc);

	if (st == PH_OK)
		st = PH_E_STORE;
	if (t->err == PH_OK) {
		t->err = st;
		log_err("database: %s", mdb_strerror(mdb_rc));
		if (mdb_rc == MDB_MAP_FULL)
			store_full(t);
	}
	return t->err;
}

int
store_begin(struct store *s, int write, struct store_txn *t)
{
	MDB_txn *txn = NULL;
	int rc;

	memset(t, 0, sizeof(*t));
	t->store = s;
	t->write = write;
	rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED) {
		/* Another process grew the map: adopt its size and retry. */
		if (mdb_env_set_mapsize(s->env, 0) == 0)
			rc = mdb_txn_begin(s->env, NULL,
			    write ? 0 : MDB_RDONLY, &txn);
	}
	if (rc != 0)
		return store_fail(t, rc);
	t->txn = txn;
	/* A reader sees up to its own id, a writer up to the one before. */
	t->seen = mdb_txn_id(txn) - (write ? 1 : 0);
	return PH_OK;
}

int
store_begin_nested(struct store_txn *parent, struct store_txn *child)
{
	MDB_txn *txn = NULL;
	int rc;

	memset(child, 0, sizeof(*child));
	child->store = parent->store;
	child->write = 1;
	child->nested = 1;
	if (parent->err != PH_OK || !parent->write)
		return child->err = parent->err != PH_OK ? parent->err :
		    PH_E_INTERNAL;
	if ((rc = mdb_txn_begin(parent->store->env, parent->txn, 0,
	    &txn)) != 0)
		return store_fail(child, rc);
	child->txn = txn;
	child->seen = parent->seen;
	child->parent = parent;
	return PH_OK;
}

/*
 * Returns when every transaction up to id is on disk: at once when this
 * process knows it already, else after a flush.  The flush covers every
 * meta page written before it began, so afterwards this process knows up
 * to the last transaction committed when it began.
 */
static int
store_sync_to(struct store *s, uint64_t id)
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

int
store_settle(struct store_txn *t)
{
	int rc;

	if (t->store == NULL)
		return PH_E_INTERNAL;
	if ((rc = store_sync_to(t->store, t->seen)) != 0) {
		log_err("database: flush: %s", mdb_strerror(rc));
		return store_status(rc) == PH_OK ? PH_E_STORE :
		    store_status(rc);
	}
	return PH_OK;
}

int
store_get(struct store_txn *t, enum store_db db, const struct store_key *k,
    struct store_val *out)
{
	MDB_val key, val;
	int rc;

	if (t->err != PH_OK)
		return t->err;
	if (k->err)
		return t->err = PH_E_INTERNAL;
	key.mv_data = (void *)k->b;
	key.mv_size = k->len;
	rc = mdb_get(t->txn, t->store->dbi[db], &key, &val);
	if (rc == MDB_NOTFOUND)
		return PH_E_NOTFOUND;
	if (rc != 0)
		return store_fail(t, rc);
	out->data = val.mv_data;
	out->len = val.mv_size;
	return PH_OK;
}

/*
 * Whether t may write at k, which *key then names; the sticky error is
 * set (a key that overflowed, a read transaction) when not.
 */
static int
store_writable(struct store_txn *t, const struct store_key *k, MDB_val *key)
{
	if (t->err != PH_OK)
		return 0;
	if (k->err || !t->write) {
		t->err = PH_E_INTERNAL;
		return 0;
	}
	key->mv_data = (void *)k->b;
	key->mv_size = k->len;
	return 1;
}

void
store_put(struct store_txn *t, enum store_db db, const struct store_key *k,
    const void *val, size_t len)
{
	MDB_val key, v;
	int rc;

	if (!store_writable(t, k, &key))
		return;
	v.mv_data = (void *)val;
	v.mv_size = len;
	if ((rc = mdb_put(t->txn, t->store->dbi[db], &key, &v, 0)) != 0)
		store_fail(t, rc);
}

void
store_del(struct store_txn *t, enum store_db db, const struct store_key *k)
{
	MDB_val key;
	int rc;

	if (!store_writable(t, k, &key))
		return;
	rc = mdb_del(t->txn, t->store->dbi[db], &key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		store_fail(t, rc);
}

static MDB_cursor *
store_cursor(struct store_txn *t, enum store_db db)
{
	MDB_cursor *c;
	int rc;

	if (t->err != PH_OK)
		return NULL;
	if ((rc = mdb_cursor_open(t->txn, t->store->dbi[db], &c)) != 0) {
		store_fail(t, rc);
		return NULL;
	}
	return c;
}

void
store_scan_begin(struct store_scan *sc, struct store_txn *t,
    enum store_db db, const struct store_key *from)
{
	memset(sc, 0, sizeof(*sc));
	sc->t = t;
	if (from != NULL && from->err) {
		if (t->err == PH_OK)
			t->err = PH_E_INTERNAL;
		return;
	}
	if (from != NULL)
		sc->from = *from;
	sc->cursor = store_cursor(t, db);
}

int
store_scan_next(struct store_scan *sc)
{
	MDB_val k, v;
	int rc;

	if (sc->cursor == NULL || sc->t->err != PH_OK)
		return 0;
	if (!sc->started && sc->from.len > 0) {
		k.mv_data = sc->from.b;
		k.mv_size = sc->from.len;
		rc = mdb_cursor_get(sc->cursor, &k, &v, MDB_SET_RANGE);
	} else
		rc = mdb_cursor_get(sc->cursor, &k, &v,
		    sc->started ? MDB_NEXT : MDB_FIRST);
	sc->started = 1;
	if (rc != 0) {
		if (rc != MDB_NOTFOUND)
			store_fail(sc->t, rc);
		store_scan_end(sc);
		return 0;
	}
	sc->key.data = k.mv_data;
	sc->key.len = k.mv_size;
	sc->val.data = v.mv_data;
	sc->val.len = v.mv_size;
	return 1;
}

void
store_scan_del(struct store_scan *sc)
{
	int rc;

	if (sc->cursor == NULL || sc->t->err != PH_OK)
		return;
	if (!sc->t->write) {
		sc->t->err = PH_E_INTERNAL;
		return;
	}
	/* LMDB leaves the cursor on the next record, which MDB_NEXT then
	 * returns rather than skipping. */
	if ((rc = mdb_cursor_del(sc->cursor, 0)) != 0)
		store_fail(sc->t, rc);
}

void
store_scan_end(struct store_scan *sc)
{
	if (sc->cursor != NULL)
		mdb_cursor_close(sc->cursor);
	sc->cursor = NULL;
}

int
store_val_has_prefix(const struct store_val *v, const struct store_key *k)
{
	return v->len >= k->len && memcmp(v->data, k->b, k->len) == 0;
}

void
store_key_from_val(struct store_key *k, const struct store_val *v)
{
	k->err = v->len > sizeof(k->b);
	k->len = k->err ? 0 : v->len;
	if (!k->err)
		memcpy(k->b, v->data, v->len);
}

uint64_t
store_next_seq(struct store_txn *t, enum store_db db)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t next = 1;
	int rc;

	if ((c = store_cursor(t, db)) == NULL)
		return 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8) {
		struct store_val last = { k.mv_data, k.mv_size };

		next = store_key_get_u64(&last) + 1;
	}
	else if (rc != 0 && rc != MDB_NOTFOUND)
		store_fail(t, rc);
	mdb_cursor_close(c);
	return t->err == PH_OK ? next : 0;
}

/*
 * Bytes this thread has sent towards the disk: the kernel counts a page
 * when a write first dirties it in the page cache.  Read around a commit
 * (whose pages the flush leaves clean), it is what the commit wrote: its
 * dirty B-tree pages and a meta page.
 */
static uint64_t
store_written_bytes(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_oublock * 512;
}

int
store_commit(struct store_txn *t)
{
	uint64_t id, written;
	int rc;

	if (t->txn == NULL)
		return t->err != PH_OK ? t->err : PH_E_INTERNAL;
	if (t->err != PH_OK) {
		store_abort(t);
		return t->err;
	}
	id = mdb_txn_id(t->txn);
	/* a system call: only for the commits that are counted */
	written = t->write && !t->nested ? store_written_bytes() : 0;
	rc = mdb_txn_commit(t->txn);
	t->txn = NULL;
	if (rc != 0)
		return store_fail(t, rc);
	if (t->nested)
		return PH_OK;
	if (t->store->epoch_new[0] != '\0') {
		memcpy(t->store->epoch, t->store->epoch_new,
		    sizeof(t->store->epoch));
		t->store->epoch_new[0] = '\0';
	}
	/* With STORE_SHARED_SYNC the meta page is flushed here, before the
	 * caller may answer: a failed flush is a failed commit. */
	if (t->write && (rc = store_sync_to(t->store, id)) != 0)
		return store_fail(t, rc);
	if (t->write && !t->full)
		metrics_set("payhook_store_full_since_timestamp_seconds", NULL,
		    0);
	if (t->write) {
		metrics_add("payhook_store_commits_total", NULL, 1);
		metrics_add("payhook_store_commit_written_bytes_total", NULL,
		    store_written_bytes() - written);
	}
	return PH_OK;
}

void
store_abort(struct store_txn *t)
{
	if (t->txn != NULL) {
		mdb_txn_abort(t->txn);
		if (t->write && !t->nested)
			t->store->epoch_new[0] = '\0';
	}
	t->txn = NULL;
}

void
store_key_init(struct store_key *k, unsigned char klass)
{
	k->len = 0;
	k->err = 0;
	if (klass != 0)
		k->b[k->len++] = klass;
}

void
store_key_str(struct store_key *k, const char *s)
{
	size_t n = strlen(s);

	if (n > 255 || k->len + 1 + n > sizeof(k->b)) {
		k->err = 1;
		return;
	}
	k->b[k->len++] = (unsigned char)n;
	memcpy(k->b + k->len, s, n);
	k->len += n;
}

void
store_key_u64(struct store_key *k, uint64_t v)
{
	int i;

	if (k->len + 8 > sizeof(k->b)) {
		k->err = 1;
		return;
	}
	for (i = 7; i >= 0; i--)
		k->b[k->len++] = (unsigned char)(v >> (i * 8));
}

uint64_t
store_key_get_u64(const struct store_val *v)
{
	const unsigned char *p = v->data;
	uint64_t r = 0;
	size_t i;

	for (i = 0; i < 8 && i < v->len; i++)
		r = (r << 8) | p[i];
	return r;
}

int
store_stats(struct store *s, struct store_stats *st)
{
	struct store_txn t;
	MDB_envinfo info;
	MDB_stat ms;
	int rc, i;

	memset(st, 0, sizeof(*st));
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	for (i = 0; i < STORE_DB__MAX; i++) {
		if ((rc = mdb_stat(t.txn, s->dbi[i], &ms)) != 0) {
			store_abort(&t);
			return store_status(rc);
		}
		st->entries[i] = ms.ms_entries;
	}
	store_abort(&t);
	if (mdb_env_info(s->env, &info) == 0 &&
	    mdb_env_stat(s->env, &ms) == 0) {
		st->map_size = info.me_mapsize;
		st->map_used = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
		st->readers_used = info.me_numreaders;
		st->readers_max = info.me_maxreaders;
	}
	return PH_OK;
}

double
store_fill(const struct store_stats *st)
{
	if (st->map_size == 0)
		return 0;
	return st->map_used >= st->map_size ? 1.0 :
	    (double)st->map_used / (double)st->map_size;
}

int
store_backup(struct store *s, const char *path, struct ph_diag *diag)
{
	struct stat st;
	int fd, rc;

	if (stat(path, &st) == 0)
		return ph_fail(diag, PH_E_IO, "backup %s: the file exists; "
		    "refusing to overwrite it", path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1)
		return ph_fail(diag, PH_E_IO, "backup %s: %s", path,
		    strerror(errno));
	rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
	if (rc == 0 && fsync(fd) == -1)
		rc = errno;
	if (close(fd) == -1 && rc == 0)
		rc = errno;
	if (rc != 0) {
		unlink(path);
		return ph_fail(diag, PH_E_IO, "backup %s: %s", path,
		    mdb_strerror(rc));
	}
	return PH_OK;
}

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

/* Copies from to a new file to (mode 0600), flushed. */
static int
store_copy_file(const char *from, const char *to, size_t *bytes,
    struct ph_diag *diag)
{
	char buf[65536];
	ssize_t n, w;
	int in, out, rc = PH_OK;

	*bytes = 0;
	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1)
		return ph_fail(diag, PH_E_IO, "backup %s: %s", from,
		    strerror(errno));
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1) {
		close(in);
		return ph_fail(diag, PH_E_IO, "%s: %s", to, strerror(errno));
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
		*bytes += (size_t)n;
	}
	if (n == -1)
		rc = ph_fail(diag, PH_E_IO, "backup %s: %s", from,
		    strerror(errno));
	else if (fsync(out) == -1)
		rc = ph_fail(diag, PH_E_IO, "%s: %s", to, strerror(errno));
done:
	close(in);
	if (close(out) == -1 && rc == PH_OK)
		rc = ph_fail(diag, PH_E_IO, "%s: %s", to, strerror(errno));
	if (rc != PH_OK)
		unlink(to);
	return rc;
}

/* The owner of the folder that holds path. */
static int
store_dir_owner(const char *path, struct stat *st)
{
	char *tmp = strdup(path);
	int rc;

	if (tmp == NULL)
		return -1;
	rc = stat(dirname(tmp), st);
	free(tmp);
	return rc;
}

int
store_restore(const char *path, const char *backup, size_t map_size,
    struct store_restore_report *rep, struct ph_diag *diag)
{
	char tmp[4096], lock[4096], tmplock[4200];
	struct store *s = NULL;
	struct store_txn t;
	struct stat st;
	long pid;
	int rc, busy;

	memset(rep, 0, sizeof(*rep));
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
	else if (geteuid() == 0 && store_dir_owner(path, &st) == 0) {
		/* No store to take after: root gives it to the folder's
		 * owner, the user payhook.fcgi runs as. */
		rep->uid = (long)st.st_uid;
		rep->gid = (long)st.st_gid;
	}
	unlink(tmp);
	unlink(tmplock);
	if ((rc = store_copy_file(backup, tmp, &rep->bytes, diag)) != PH_OK)
		return rc;
	/* The copy must be a store this payhook reads; it gets a new epoch
	 * before anything can read it. */
	if ((rc = store_open(tmp, map_size, STORE_OPEN_OLDER, &s, diag)) !=
	    PH_OK)
		goto fail;
	ph_strlcpy(rep->epoch_before, s->epoch, sizeof(rep->epoch_before));
	if ((rc = store_begin(s, 1, &t)) == PH_OK) {
		store_new_epoch(&t);
		rc = store_commit(&t);
	}
	if (rc != PH_OK) {
		ph_fail(diag, rc, "backup %s: cannot give it a new epoch: %s",
		    backup, ph_strerror(rc));
		goto fail;
	}
	ph_strlcpy(rep->epoch_after, s->epoch, sizeof(rep->epoch_after));
	store_close(s);
	s = NULL;
	unlink(tmplock);
	if (chown(tmp, (uid_t)rep->uid, (gid_t)rep->gid) == -1 ||
	    chmod(tmp, (mode_t)rep->mode) == -1) {
		rc = ph_fail(diag, PH_E_IO, "%s: cannot give it the owner and "
		    "mode of %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
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
	snprintf(tmplock, sizeof(tmplock), "%s-group", path);
	unlink(tmplock);
	store_sync_dir(path);
	return PH_OK;
fail:
	store_close(s);
	unlink(tmp);
	unlink(tmplock);
	return rc;
}
