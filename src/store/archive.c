/*
 * Notification archive in a second LMDB environment, opened with
 * MDB_NOSYNC: its commits cost no flush.  A crash may lose the last
 * records or, at worst, the archive file itself; the store of money facts
 * is a different file and is never affected.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lmdb.h>

#include <payhook/sdk.h>

#include "store/archive.h"
#include "ops/log.h"

static MDB_env *archive_env;
static MDB_dbi archive_dbi;		/* id -> notification record */
static MDB_dbi archive_hints;		/* order id -> profile; rate counts */

int
archive_open(const char *db_path, size_t map_mb)
{
	char path[4096];
	MDB_txn *txn;
	int rc;

	if (snprintf(path, sizeof(path), "%s-archive", db_path) >=
	    (int)sizeof(path))
		return PH_E_CONFIG;
	if ((rc = mdb_env_create(&archive_env)) != 0)
		goto fail;
	if ((rc = mdb_env_set_mapsize(archive_env, map_mb << 20)) != 0 ||
	    (rc = mdb_env_set_maxdbs(archive_env, 4)) != 0 ||
	    (rc = mdb_env_set_maxreaders(archive_env, 256)) != 0 ||
	    (rc = mdb_env_open(archive_env, path, MDB_NOSUBDIR | MDB_NOTLS |
	    MDB_NOSYNC, 0600)) != 0)
		goto fail;
	mdb_reader_check(archive_env, NULL);
	if ((rc = mdb_txn_begin(archive_env, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "notifications", MDB_CREATE,
	    &archive_dbi)) != 0 || (rc = mdb_dbi_open(txn, "hints",
	    MDB_CREATE, &archive_hints)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return PH_OK;
fail:
	log_warn("notification archive %s: %s; notifications are not "
	    "archived", path, mdb_strerror(rc));
	if (archive_env != NULL)
		mdb_env_close(archive_env);
	archive_env = NULL;
	return PH_E_STORE;
}

void
archive_close(void)
{
	if (archive_env != NULL)
		mdb_env_close(archive_env);
	archive_env = NULL;
}

static void
archive_key(unsigned char k[8], uint64_t id)
{
	int i;

	for (i = 7; i >= 0; i--, id >>= 8)
		k[i] = (unsigned char)id;
}

static uint64_t
archive_id(const MDB_val *k)
{
	const unsigned char *p = k->mv_data;
	uint64_t id = 0;
	size_t i;

	for (i = 0; i < 8 && i < k->mv_size; i++)
		id = id << 8 | p[i];
	return id;
}

static json_t *
archive_headers(const struct ph_header *h, size_t n)
{
	unsigned char d[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 8];
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		const char *v = h[i].value;

		/* Secrets of the caller, never of the provider's message. */
		if (strcasecmp(h[i].name, "Authorization") == 0 ||
		    strcasecmp(h[i].name, "Cookie") == 0) {
			ph_sha256(v, strlen(v), d);
			memcpy(hex, "sha256:", 7);
			ph_hex_lower(d, sizeof(d), hex + 7);
			v = hex;
		}
		json_array_append_new(a, json_pack("[s, s]", h[i].name, v));
	}
	return a;
}

#define ARCHIVE_DROP 1000	/* records dropped when the map is full */

static int archive_warned;	/* said once per process that it is full */

/*
 * Writes record j under the next id in one transaction; an LMDB error
 * code.  mdb_txn_commit() frees the transaction even when it fails, so
 * only a transaction that was not committed is aborted.
 */
static int
archive_write(json_t *j, uint64_t *id_out)
{
	unsigned char k[8];
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val key, val;
	uint64_t id = 1;
	char *s;
	int rc;

	if ((rc = mdb_txn_begin(archive_env, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, archive_dbi, &c)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if (mdb_cursor_get(c, &key, &val, MDB_LAST) == 0)
		id = archive_id(&key) + 1;
	mdb_cursor_close(c);
	json_object_set_new(j, "id", json_integer((json_int_t)id));
	if ((s = json_dumps(j, JSON_COMPACT)) == NULL) {
		mdb_txn_abort(txn);
		return ENOMEM;
	}
	archive_key(k, id);
	key.mv_data = k;
	key.mv_size = 8;
	val.mv_data = s;
	val.mv_size = strlen(s);
	rc = mdb_put(txn, archive_dbi, &key, &val, 0);
	free(s);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return rc;
	*id_out = id;
	return 0;
}

/* Drops the n oldest records. */
static void
archive_drop_oldest(size_t n)
{
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val key, val;
	size_t i = 0;
	int rc;

	if (mdb_txn_begin(archive_env, NULL, 0, &txn) != 0)
		return;
	if (mdb_cursor_open(txn, archive_dbi, &c) != 0) {
		mdb_txn_abort(txn);
		return;
	}
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0 && i < n;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT), i++)
		if (mdb_cursor_del(c, 0) != 0)
			break;
	mdb_cursor_close(c);
	mdb_txn_commit(txn);
}

uint64_t
archive_put(const struct archive_rec *r)
{
	struct ph_buf b64;
	unsigned char d[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	uint64_t id = 0;
	json_t *j;
	int rc;

	if (archive_env == NULL)
		return 0;
	ph_buf_init(&b64, 4 * r->body_len / 3 + 16);
	ph_base64_encode(r->body, r->body_len, &b64);
	ph_sha256(r->body, r->body_len, d);
	ph_hex_lower(d, sizeof(d), hex);
	j = json_pack("{s:i, s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, "
	    "s:s, s:s, s:s, s:I}",
	    "v", 1, "at", (json_int_t)r->at, "profile", r->profile,
	    "provider", r->provider, "method", r->method,
	    "content_type", r->content_type,
	    "headers", archive_headers(r->headers, r->nheaders),
	    "body", b64.data != NULL ? b64.data : "",
	    "body_sha256", hex, "verdict", r->verdict, "reason", r->reason,
	    "order_id", r->order_id, "outcome", r->outcome,
	    "replay_of", (json_int_t)r->replay_of);
	ph_buf_free(&b64);
	if (j == NULL)
		return 0;
	rc = archive_write(j, &id);
	if (rc == MDB_MAP_FULL) {
		/* Full before archive_days ran out: the oldest records go,
		 * never the new one's acknowledgement. */
		archive_drop_oldest(ARCHIVE_DROP);
		rc = archive_write(j, &id);
	}
	if (rc != 0) {
		if (!archive_warned)
			log_warn("notification archive: %s; notifications are "
			    "not archived (the store of payments is not "
			    "affected): raise archive_map_mb or lower "
			    "archive_days", mdb_strerror(rc));
		archive_warned = 1;
		id = 0;
	}
	json_decref(j);
	return id;
}

int
archive_get(uint64_t id, json_t **out)
{
	unsigned char k[8];
	MDB_txn *txn;
	MDB_val key, val;
	int rc;

	*out = NULL;
	if (archive_env == NULL)
		return PH_E_NOTFOUND;
	if (mdb_txn_begin(archive_env, NULL, MDB_RDONLY, &txn) != 0)
		return PH_E_STORE;
	archive_key(k, id);
	key.mv_data = k;
	key.mv_size = 8;
	rc = mdb_get(txn, archive_dbi, &key, &val);
	if (rc == 0)
		*out = json_loadb(val.mv_data, val.mv_size, 0, NULL);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND)
		return PH_E_NOTFOUND;
	return *out != NULL ? PH_OK : PH_E_STORE;
}

int
archive_list(uint64_t after, size_t limit, json_t **out)
{
	unsigned char k[8];
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val key, val;
	json_t *arr = json_array(), *j;
	int rc;

	*out = arr;
	if (archive_env == NULL)
		return PH_OK;
	if (mdb_txn_begin(archive_env, NULL, MDB_RDONLY, &txn) != 0)
		return PH_E_STORE;
	if (mdb_cursor_open(txn, archive_dbi, &c) != 0) {
		mdb_txn_abort(txn);
		return PH_E_STORE;
	}
	archive_key(k, after + 1);
	key.mv_data = k;
	key.mv_size = 8;
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	    rc == 0 && json_array_size(arr) < limit;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT))
		if ((j = json_loadb(val.mv_data, val.mv_size, 0, NULL)) != NULL)
			json_array_append_new(arr, j);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return PH_OK;
}

int
archive_prune(int64_t before, size_t *removed)
{
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val key, val;
	json_t *j;
	int rc, more = 1;

	*removed = 0;
	if (archive_env == NULL)
		return PH_OK;
	/* Oldest first: stop at the first record young enough to keep. */
	while (more) {
		size_t n = 0;

		more = 0;
		if (mdb_txn_begin(archive_env, NULL, 0, &txn) != 0)
			return PH_E_STORE;
		if (mdb_cursor_open(txn, archive_dbi, &c) != 0) {
			mdb_txn_abort(txn);
			return PH_E_STORE;
		}
		for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			int64_t at;

			j = json_loadb(val.mv_data, val.mv_size, 0, NULL);
			at = json_integer_value(json_object_get(j, "at"));
			json_decref(j);
			if (at >= before)
				break;
			if (mdb_cursor_del(c, 0) != 0)
				break;
			if (++n == 1000) {
				more = 1;
				break;
			}
		}
		mdb_cursor_close(c);
		if (mdb_txn_commit(txn) != 0)
			return PH_E_STORE;
		*removed += n;
	}
	return PH_OK;
}

int
archive_body(const json_t *rec, unsigned char **body, size_t *len)
{
	const char *b64 = json_string_value(json_object_get(rec, "body"));
	size_t n;

	*body = NULL;
	*len = 0;
	if (b64 == NULL)
		return PH_E_MALFORMED;
	n = strlen(b64);
	if ((*body = malloc(n / 4 * 3 + 4)) == NULL)
		return PH_E_NOMEM;
	if (n == 0)
		return PH_OK;
	return ph_base64_decode(b64, n, *body, n / 4 * 3 + 3, len);
}

/*
 * Hints live here, not in the store: a refused notification must leave
 * the store of money facts exactly as it was.
 */
int
archive_hint(const char *profile, const char *order_id, int64_t now,
    unsigned long per_minute)
{
	char rate[128], buf[24];
	unsigned long used = 0;
	MDB_txn *txn;
	MDB_val key, val;
	int n;

	if (archive_env == NULL || per_minute == 0)
		return 0;
	if (mdb_txn_begin(archive_env, NULL, 0, &txn) != 0)
		return 0;
	n = snprintf(rate, sizeof(rate), "\001rate:%s:%lld", profile,
	    (long long)(now / 60));
	key.mv_data = rate;
	key.mv_size = (size_t)n;
	if (mdb_get(txn, archive_hints, &key, &val) == 0 &&
	    val.mv_size < sizeof(buf)) {
		memcpy(buf, val.mv_data, val.mv_size);
		buf[val.mv_size] = '\0';
		used = strtoul(buf, NULL, 10);
	}
	if (used >= per_minute) {
		mdb_txn_abort(txn);
		return 0;
	}
	n = snprintf(buf, sizeof(buf), "%lu", used + 1);
	val.mv_data = buf;
	val.mv_size = (size_t)n;
	if (mdb_put(txn, archive_hints, &key, &val, 0) != 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	key.mv_data = (void *)order_id;
	key.mv_size = strlen(order_id);
	val.mv_data = (void *)profile;
	val.mv_size = strlen(profile);
	if (mdb_put(txn, archive_hints, &key, &val, 0) != 0) {
		mdb_txn_abort(txn);
		return 0;
	}
	/* A failed commit frees the transaction: nothing to abort. */
	return mdb_txn_commit(txn) == 0;
}

int
archive_hints_take(size_t limit, json_t **ids)
{
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val key, val;
	int rc;

	*ids = json_array();
	if (archive_env == NULL)
		return PH_OK;
	if (mdb_txn_begin(archive_env, NULL, 0, &txn) != 0)
		return PH_E_STORE;
	if (mdb_cursor_open(txn, archive_hints, &c) != 0) {
		mdb_txn_abort(txn);
		return PH_E_STORE;
	}
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
	    rc == 0 && json_array_size(*ids) < limit;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		const char *k = key.mv_data;

		/* Rate counters start with \001 and sort first: old ones go,
		 * the current minute's stay. */
		if (key.mv_size > 0 && k[0] == '\001')
			continue;
		json_array_append_new(*ids, json_stringn(k, key.mv_size));
		mdb_cursor_del(c, 0);
	}
	mdb_cursor_close(c);
	if (mdb_txn_commit(txn) != 0)
		return PH_E_STORE;
	return PH_OK;
}
