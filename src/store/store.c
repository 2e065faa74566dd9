/*
 * The store's rules, the same for every engine: the sticky error, keys,
 * the schema version and the epoch (meta records), and the dispatch to the
 * engine (store_lmdb.c, store_pg.c) for everything that touches records.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/metrics.h"
#include "store/store_int.h"

static const char *const store_db_names[STORE_DB__MAX] = {
	"orders", "payments", "dedup", "events", "refunds", "meta", "due",
	"recon", "push", "idempotency", "refund_ids",
};

const char *
store_db_name(enum store_db db)
{
	return db < STORE_DB__MAX ? store_db_names[db] : "?";
}

void *
store_alloc(const struct store_engine *eng, size_t sz, const char *path,
    const char *where)
{
	struct store *s;

	if ((s = calloc(1, sz)) == NULL)
		return NULL;
	s->eng = eng;
	if ((s->path = strdup(path)) == NULL ||
	    (s->where = strdup(where)) == NULL) {
		store_free(s);
		return NULL;
	}
	return s;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	free(s->path);
	free(s->where);
	free(s);
}

const char *
store_engine_name(const struct store *s)
{
	return s->eng->name;
}

const char *
store_where(const struct store *s)
{
	return s->where;
}

int
store_project(struct store *s, enum store_db db, const struct store_val *key,
    const struct store_val *val, struct ph_buf *out)
{
	return s->project != NULL ? s->project(db, key, val, out) : 0;
}

void
store_close(struct store *s)
{
	if (s != NULL)
		s->eng->close(s);
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
store_meta_key(struct store_key *k, const char *name)
{
	store_key_init(k, 0);
	store_key_str(k, name);
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

/* An epoch as payhook makes them: STORE_EPOCH_LEN lower-case hex digits.
 * Anything else in the meta record is damage, never shown in an id. */
static int
store_epoch_valid(const struct store_val *v)
{
	const char *p = v->data;
	size_t i;

	if (v->len != STORE_EPOCH_LEN)
		return 0;
	for (i = 0; i < v->len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		    (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

int
store_check_schema(struct store *s, int flags, int create,
    struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key k;
	struct store_val v;
	char have[16], num[24];
	int rc;

	/* Read first: only a store without its schema needs a writer, and
	 * the writer lock may be held a while (a stuck commit). */
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return ph_fail(diag, rc, "database %s: %s", s->where,
		    ph_strerror(rc));
	store_meta_key(&k, "schema");
	rc = store_get(&t, STORE_DB_META, &k, &v);
	if (rc == PH_E_NOTFOUND && create) {
		/* Made by this opening, unless another did meanwhile. */
		store_abort(&t);
		if ((rc = store_begin(s, 1, &t)) != PH_OK)
			return ph_fail(diag, rc, "database %s: %s", s->where,
			    ph_strerror(rc));
		rc = store_get(&t, STORE_DB_META, &k, &v);
	}
	if (rc == PH_E_NOTFOUND && create) {
		store_set_schema(&t, STORE_SCHEMA_VERSION);
		s->schema_found = STORE_SCHEMA_VERSION;
		store_new_epoch(&t);
		if ((rc = store_commit(&t)) != PH_OK)
			return ph_fail(diag, rc, "database %s: cannot write "
			    "its schema version: %s", s->where,
			    ph_strerror(rc));
		return PH_OK;
	}
	if (rc == PH_E_NOTFOUND) {
		store_abort(&t);
		return ph_fail(diag, PH_E_STORE, "database %s holds no "
		    "payhook records yet (payhook check makes them)", s->where);
	}
	if (rc != PH_OK) {
		store_abort(&t);
		return ph_fail(diag, rc, "database %s: %s", s->where,
		    ph_strerror(rc));
	}
	snprintf(have, sizeof(have), "%.*s", (int)(v.len < 15 ? v.len : 15),
	    (const char *)v.data);
	s->schema = s->schema_found = (int)strtol(have, NULL, 10);
	store_meta_key(&k, STORE_META_IMPORT);
	if (!(flags & STORE_OPEN_IMPORT) &&
	    store_get(&t, STORE_DB_META, &k, &v) == PH_OK) {
		store_abort(&t);
		return ph_fail(diag, PH_E_STORE, "database %s is half made: an "
		    "import into it did not finish; run payhook store import "
		    "again, which starts over (it was from %.*s)", s->where,
		    (int)(v.len < 512 ? v.len : 512), (const char *)v.data);
	}
	store_meta_key(&k, "epoch");
	rc = store_get(&t, STORE_DB_META, &k, &v);
	if (rc == PH_OK && !store_epoch_valid(&v)) {
		store_abort(&t);
		return ph_fail(diag, PH_E_STORE, "database %s: its epoch is "
		    "damaged (%zu bytes, not %d hex digits)", s->where, v.len,
		    STORE_EPOCH_LEN);
	}
	if (rc == PH_OK)
		memcpy(s->epoch, v.data, STORE_EPOCH_LEN);
	/* Decimal text, as the schema version: every engine's meta holds
	 * text. */
	store_meta_key(&k, "seq_floor");
	s->seq_floor = 0;
	if (store_get(&t, STORE_DB_META, &k, &v) == PH_OK && v.len > 0 &&
	    v.len < sizeof(num)) {
		snprintf(num, sizeof(num), "%.*s", (int)v.len,
		    (const char *)v.data);
		s->seq_floor = strtoull(num, NULL, 10);
	}
	store_abort(&t);
	if (s->schema > STORE_SCHEMA_VERSION || s->schema < 1)
		return ph_fail(diag, PH_E_STORE, "database %s has schema "
		    "version %s; this payhook reads versions up to %d: use the "
		    "payhook that wrote it", s->where, have,
		    STORE_SCHEMA_VERSION);
	if (s->schema < STORE_SCHEMA_VERSION && !(flags & STORE_OPEN_OLDER))
		return ph_fail(diag, PH_E_STORE, "database %s has schema "
		    "version %d and must be brought up to version %d first "
		    "(payhook check does it)", s->where, s->schema,
		    STORE_SCHEMA_VERSION);
	return PH_OK;
}

/* Records an engine's failure as t's sticky error (the first one stays). */
static int
store_failed(struct store_txn *t, int rc)
{
	if (rc == PH_OK)
		rc = PH_E_STORE;
	if (t->err == PH_OK)
		t->err = rc;
	return t->err;
}

void
store_note_full(struct store_txn *t)
{
	struct store_txn *p;

	for (p = t; p != NULL; p = p->parent)
		p->full = 1;
	metrics_add("payhook_store_full_total", NULL, 1);
	metrics_set_first("payhook_store_full_since_timestamp_seconds", NULL,
	    (uint64_t)time(NULL));
}

void
store_note_unwritable(struct store_txn *t)
{
	(void)t;
	metrics_set_first("payhook_store_unwritable_since_timestamp_seconds",
	    NULL, (uint64_t)time(NULL));
}

int
store_probe_write(struct store *s, int64_t now)
{
	struct store_txn t;
	struct store_key k;
	char v[24];
	int rc, n;

	if (metrics_get("payhook_store_full_since_timestamp_seconds",
	    NULL) == 0 && metrics_get("payhook_store_unwritable_since_"
	    "timestamp_seconds", NULL) == 0)
		return PH_OK;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	n = snprintf(v, sizeof(v), "%lld", (long long)now);
	store_meta_key(&k, "write_probe");
	store_put(&t, STORE_DB_META, &k, v, (size_t)n);
	return store_commit(&t);
}

int
store_begin(struct store *s, int write, struct store_txn *t)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->store = s;
	t->write = write;
	if ((rc = s->eng->begin(t)) != PH_OK)
		return store_failed(t, rc);
	return PH_OK;
}

int
store_begin_nested(struct store_txn *parent, struct store_txn *child)
{
	int rc;

	memset(child, 0, sizeof(*child));
	child->store = parent->store;
	child->write = 1;
	child->nested = 1;
	if (parent->err != PH_OK || !parent->write)
		return child->err = parent->err != PH_OK ? parent->err :
		    PH_E_INTERNAL;
	child->seen = parent->seen;
	child->parent = parent;
	if ((rc = parent->store->eng->begin_nested(child)) != PH_OK)
		return store_failed(child, rc);
	return PH_OK;
}

int
store_get(struct store_txn *t, enum store_db db, const struct store_key *k,
    struct store_val *out)
{
	int rc;

	if (t->err != PH_OK)
		return t->err;
	if (k->err)
		return t->err = PH_E_INTERNAL;
	rc = t->store->eng->get(t, db, k, out);
	if (rc != PH_OK && rc != PH_E_NOTFOUND)
		return store_failed(t, rc);
	return rc;
}

/* Whether t may write at k; the sticky error is set (a key that
 * overflowed, a read transaction) when not. */
static int
store_writable(struct store_txn *t, const struct store_key *k)
{
	if (t->err != PH_OK)
		return 0;
	if (k->err || !t->write) {
		t->err = PH_E_INTERNAL;
		return 0;
	}
	return 1;
}

void
store_put(struct store_txn *t, enum store_db db, const struct store_key *k,
    const void *val, size_t len)
{
	int rc;

	if (!store_writable(t, k))
		return;
	if ((rc = t->store->eng->put(t, db, k, val, len)) != PH_OK)
		store_failed(t, rc);
	else
		t->wrote = 1;
}

void
store_del(struct store_txn *t, enum store_db db, const struct store_key *k)
{
	int rc;

	if (!store_writable(t, k))
		return;
	if ((rc = t->store->eng->del(t, db, k)) != PH_OK)
		store_failed(t, rc);
	else
		t->wrote = 1;
}

/* The sequence number after the last of db's keys; 0 on t's error. */
static uint64_t
store_after_last(struct store_txn *t, enum store_db db)
{
	struct store_val last;
	int rc;

	if (t->err != PH_OK)
		return 0;
	rc = t->store->eng->last(t, db, &last);
	if (rc == PH_E_NOTFOUND)
		return 1;
	if (rc != PH_OK) {
		store_failed(t, rc);
		return 0;
	}
	return last.len == 8 ? store_key_get_u64(&last) + 1 : 1;
}

/* The least sequence number t's store may hand out next: past its floor
 * and the last of its events and refunds; 0 on t's error. */
static uint64_t
store_seq_high(struct store_txn *t)
{
	uint64_t high = t->store->seq_floor, e, r;

	e = store_after_last(t, STORE_DB_EVENTS);
	r = store_after_last(t, STORE_DB_REFUNDS);
	if (t->err != PH_OK)
		return 0;
	if (e > high)
		high = e;
	if (r > high)
		high = r;
	return high;
}

int
store_seq_next(struct store *s, uint64_t *next)
{
	struct store_txn t;
	int rc;

	*next = 0;
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	*next = store_seq_high(&t);
	rc = t.err;
	store_abort(&t);
	return rc;
}

uint64_t
store_seq_jump(struct store_txn *t, uint64_t past)
{
	uint64_t floor;
	struct store_key k;
	char num[24];
	int n;

	floor = store_seq_high(t);
	if (t->err != PH_OK)
		return 0;
	if (past > floor)
		floor = past;
	floor += STORE_SEQ_GAP;
	n = snprintf(num, sizeof(num), "%llu", (unsigned long long)floor);
	store_meta_key(&k, "seq_floor");
	store_put(t, STORE_DB_META, &k, num, (size_t)n);
	if (t->err != PH_OK)
		return 0;
	t->store->seq_floor = floor;
	return floor;
}

uint64_t
store_next_seq(struct store_txn *t, enum store_db db)
{
	uint64_t seq = store_after_last(t, db);

	return seq != 0 && seq < t->store->seq_floor ? t->store->seq_floor :
	    seq;
}

int
store_commit(struct store_txn *t)
{
	int rc;

	if (t->txn == NULL)
		return t->err != PH_OK ? t->err : PH_E_INTERNAL;
	if (t->err != PH_OK) {
		store_abort(t);
		return t->err;
	}
	rc = t->store->eng->commit(t);
	t->txn = NULL;
	if (rc != PH_OK)
		return store_failed(t, rc);
	if (t->nested) {
		t->parent->wrote |= t->wrote;
		return PH_OK;
	}
	if (t->store->epoch_new[0] != '\0') {
		memcpy(t->store->epoch, t->store->epoch_new,
		    sizeof(t->store->epoch));
		t->store->epoch_new[0] = '\0';
	}
	/* Room again, and writable, once something was written. */
	if (t->write && t->wrote && !t->full) {
		metrics_set("payhook_store_full_since_timestamp_seconds", NULL,
		    0);
		metrics_set("payhook_store_unwritable_since_timestamp_seconds",
		    NULL, 0);
	}
	return PH_OK;
}

void
store_abort(struct store_txn *t)
{
	if (t->txn != NULL) {
		t->store->eng->abort(t);
		if (t->write && !t->nested)
			t->store->epoch_new[0] = '\0';
	}
	t->txn = NULL;
}

int
store_settle(struct store_txn *t)
{
	if (t->store == NULL)
		return PH_E_INTERNAL;
	return t->store->eng->settle(t);
}

void
store_scan_begin(struct store_scan *sc, struct store_txn *t,
    enum store_db db, const struct store_key *from)
{
	int rc;

	memset(sc, 0, sizeof(*sc));
	sc->t = t;
	if (from != NULL && from->err) {
		if (t->err == PH_OK)
			t->err = PH_E_INTERNAL;
		return;
	}
	if (from != NULL)
		sc->from = *from;
	if (t->err != PH_OK)
		return;
	if ((rc = t->store->eng->scan_open(sc, db)) != PH_OK)
		store_failed(t, rc);
}

int
store_scan_next(struct store_scan *sc)
{
	int rc;

	if (sc->cursor == NULL || sc->t->err != PH_OK)
		return 0;
	rc = sc->t->store->eng->scan_step(sc);
	sc->started = 1;
	if (rc == 1)
		return 1;
	if (rc < 0)
		store_failed(sc->t, -rc);
	store_scan_end(sc);
	return 0;
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
	if ((rc = sc->t->store->eng->scan_del(sc)) != PH_OK)
		store_failed(sc->t, rc);
	else
		sc->t->wrote = 1;
}

void
store_scan_end(struct store_scan *sc)
{
	if (sc->cursor != NULL)
		sc->t->store->eng->scan_close(sc);
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

void
store_key_read(struct store_key_reader *r, const struct store_val *key,
    size_t off)
{
	r->p = key->data;
	r->len = key->len;
	r->off = off;
	r->bad = off > key->len;
}

uint64_t
store_key_read_u64(struct store_key_reader *r)
{
	struct store_val v;

	if (r->bad || r->len - r->off < 8) {
		r->bad = 1;
		return 0;
	}
	v.data = r->p + r->off;
	v.len = 8;
	r->off += 8;
	return store_key_get_u64(&v);
}

void
store_key_read_str(struct store_key_reader *r, char *out, size_t cap)
{
	size_t n;

	out[0] = '\0';
	if (r->bad || r->off >= r->len || (n = r->p[r->off]) >= cap ||
	    r->len - r->off - 1 < n) {
		r->bad = 1;
		return;
	}
	memcpy(out, r->p + r->off + 1, n);
	out[n] = '\0';
	r->off += 1 + n;
}

int
store_key_read_all(const struct store_key_reader *r)
{
	return !r->bad && r->off == r->len;
}

int
store_stats(struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	return s->eng->stats(s, st);
}

int
store_space(struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	return s->eng->space != NULL ? s->eng->space(s, st) : PH_OK;
}

int
store_others(struct store *s, long *pid)
{
	*pid = 0;
	return s->eng->others != NULL ? s->eng->others(s, pid) : -1;
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
store_retryable(const struct store *s)
{
	return s->eng->retryable != NULL && s->eng->retryable(s);
}

static int64_t
store_ms(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/* How far the shared clock is ahead of this host's, in milliseconds. */
static int
store_clock_skew(struct store *s, int64_t *skew_ms)
{
	struct timespec a, b;
	int64_t there;
	int rc;

	*skew_ms = 0;
	if (s->eng->clock == NULL)
		return PH_OK;
	clock_gettime(CLOCK_REALTIME, &a);
	if ((rc = s->eng->clock(s, &there)) != PH_OK)
		return rc;
	clock_gettime(CLOCK_REALTIME, &b);
	/* Read halfway through the round trip, as well as it can tell. */
	*skew_ms = there - (store_ms(&a) + store_ms(&b)) / 2;
	return PH_OK;
}

int
store_clock_off(struct store *s, char *why, size_t len)
{
	int64_t skew;
	int rc;

	if ((rc = store_clock_skew(s, &skew)) != PH_OK) {
		snprintf(why, len, "the database server's clock cannot be "
		    "read: %s", ph_strerror(rc));
		return -1;
	}
	if (llabs(skew) <= STORE_SKEW_MAX_MS)
		return 0;
	snprintf(why, len, "this host's clock is %.1f s %s the database "
	    "server's", llabs(skew) / 1000.0, skew > 0 ? "behind" :
	    "ahead of");
	return 1;
}

int
store_backup(struct store *s, const char *path, struct ph_diag *diag)
{
	return s->eng->backup(s, path, diag);
}

/*
 * Creates the folder that holds path when it is missing (mode 0700): the
 * LMDB file's, and with either engine the files local to a host beside
 * it (metrics, the archive, the group commit's).
 */
int
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
