/*
 * Bringing an older store up to this payhook's records, on open.  Each
 * step runs in batches of short transactions and can be run again: a
 * crash in the middle leaves a store of the old version that the next
 * open takes up where it stopped.  The version is written last.
 *
 * Schema 1 to 2:
 *   - the store gets an epoch;
 *   - payments are keyed by profile, not provider (each record names its
 *     profile); schema 1's dedup keys stay where they are and are still
 *     read (ledger_apply) until `dedup prune` forgets them;
 *   - every refund is found by its id, every order lists its refunds, and
 *     a refund tried before counts as sent;
 *   - every event gets its id.
 *
 * Schema 2 to 3:
 *   - dedup records, read by every notification, become binary
 *     (ledger_dedup.c); a build of schema 2 refuses the store after.
 *
 * Schema 3 to 4:
 *   - orders, payments, events, refunds and idempotency records, JSON
 *     text until now, are written again in CBOR (ledger_cbor.c); a build
 *     of schema 3 refuses the store after.
 *
 * Schema 4 to 5:
 *   - the payment records of failed payments, which schema 4 wrote under
 *     the provider's name instead of the profile's, are moved to their
 *     profile's key (or dropped where a record of the same transaction is
 *     there already); on PostgreSQL they blocked the success of the same
 *     transaction.  A build of schema 4 refuses the store after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ops/log.h"

#define LEDGER_MIGRATE_BATCH 1000


/* Moves schema 1's payments to their profile's keys; *more while some
 * are left. */
static int
ledger_migrate_payments(struct store *s, int *more, size_t *moved)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key v1, k;
	json_t *p;
	size_t n = 0;
	int rc;

	*more = 0;
	store_key_init(&v1, STORE_KEY_PAYMENT_V1);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	store_scan_begin(&sc, &t, STORE_DB_PAYMENTS, &v1);
	while (store_scan_next(&sc) && store_val_has_prefix(&sc.key, &v1)) {
		if (n == LEDGER_MIGRATE_BATCH) {
			*more = 1;
			break;
		}
		if ((p = ledger_load(&sc.val)) == NULL) {
			t.err = PH_E_STORE;
			break;
		}
		ledger_key_pair(&k, STORE_KEY_PAYMENT, ledger_str(p, "profile"),
		    ledger_str(p, "provider_txn_id"));
		ledger_put(&t, STORE_DB_PAYMENTS, &k, p);
		json_decref(p);
		store_scan_del(&sc);
		n++;
	}
	store_scan_end(&sc);
	if ((rc = store_commit(&t)) == PH_OK)
		*moved += n;
	return rc;
}

/*
 * Moves the payments of class 'p' whose key does not name the profile
 * their record does, and indexes the orphans an older build recorded
 * without an index entry (ledger.c), from *resume on, a batch in one
 * transaction; *more while some are left to look at.
 */
static int
ledger_migrate_payment_keys(struct store *s, struct store_key *resume,
    int *more, size_t *moved)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key pre, k, here;
	struct store_key_reader r;
	struct store_val v, at;
	json_t *p;
	size_t n = 0;
	char profile[256];
	int rc;

	*more = 0;
	store_key_init(&pre, STORE_KEY_PAYMENT);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	store_scan_begin(&sc, &t, STORE_DB_PAYMENTS, resume->len > 0 ?
	    resume : &pre);
	while (store_scan_next(&sc) && store_val_has_prefix(&sc.key, &pre)) {
		if (n++ == LEDGER_MIGRATE_BATCH) {
			store_key_from_val(resume, &sc.key);
			*more = 1;
			break;
		}
		if ((p = ledger_load(&sc.val)) == NULL)
			continue;	/* refused where it is read */
		/* Its key as it stands, copied: the writes below may move
		 * what the scan points into. */
		store_key_from_val(&here, &sc.key);
		at.data = here.b;
		at.len = here.len;
		store_key_read(&r, &sc.key, 1);
		store_key_read_str(&r, profile, sizeof(profile));
		if (!r.bad && ledger_str(p, "profile")[0] != '\0' &&
		    strcmp(profile, ledger_str(p, "profile")) != 0) {
			ledger_key_pair(&k, STORE_KEY_PAYMENT,
			    ledger_str(p, "profile"),
			    ledger_str(p, "provider_txn_id"));
			/* Gone first: PostgreSQL holds one record per profile
			 * and transaction at every statement. */
			store_scan_del(&sc);
			if (!k.err && store_get(&t, STORE_DB_PAYMENTS, &k, &v) ==
			    PH_E_NOTFOUND)
				ledger_put(&t, STORE_DB_PAYMENTS, &k, p);
			(*moved)++;
			at.data = k.b;
			at.len = k.err ? 0 : k.len;
		}
		/* An orphan an older build recorded has no index entry. */
		if (!here.err && at.len > 0 && ledger_orphan_index(&t, p, &at))
			(*moved)++;
		json_decref(p);
	}
	store_scan_end(&sc);
	return store_commit(&t);
}

/* Brings one record (key, val) of database db up to date in t. */
typedef void ledger_migrate_fn(struct store *s, struct store_txn *t,
    enum store_db db, const struct store_val *key,
    const struct store_val *val);

/*
 * Runs fn over every record of db, LEDGER_MIGRATE_BATCH to a write
 * transaction (a store of millions is not brought up in one), resuming
 * where the last batch stopped.
 */
static int
ledger_migrate_all(struct store *s, enum store_db db, ledger_migrate_fn *fn)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key resume;
	size_t n;
	int rc, more = 1;

	store_key_init(&resume, 0);
	while (more) {
		more = 0;
		n = 0;
		if ((rc = store_begin(s, 1, &t)) != PH_OK)
			return rc;
		store_scan_begin(&sc, &t, db, &resume);
		while (store_scan_next(&sc)) {
			if (n++ == LEDGER_MIGRATE_BATCH) {
				store_key_from_val(&resume, &sc.key);
				more = 1;
				break;
			}
			fn(s, &t, db, &sc.key, &sc.val);
		}
		store_scan_end(&sc);
		if ((rc = store_commit(&t)) != PH_OK)
			return rc;
	}
	return PH_OK;
}

/* Indexes a refund and adds it to its order's list; one a runner has
 * tried counts as sent. */
static void
ledger_migrate_refund(struct store *s, struct store_txn *t, enum store_db db,
    const struct store_val *key, const struct store_val *val)
{
	struct store_key ok;
	json_t *r, *order = NULL;
	uint64_t seq;

	(void)s;
	(void)db;
	if (key->len != 8 || (r = ledger_load(val)) == NULL)
		return;
	seq = store_key_get_u64(key);
	ledger_refund_index(t, ledger_str(r, "refund_id"), seq);
	if (json_object_get(r, "sent_at") == NULL) {
		json_object_set_new(r, "sent_at", json_integer_value(
		    json_object_get(r, "tries")) > 0 ?
		    json_integer(json_integer_value(json_object_get(r,
		    "updated_at"))) : json_null());
		store_key_from_val(&ok, key);
		ledger_put(t, STORE_DB_REFUNDS, &ok, r);
	}
	ledger_key_order(&ok, ledger_str(r, "order_id"));
	if (!ok.err && ledger_get(t, STORE_DB_ORDERS, &ok, &order) == PH_OK) {
		ledger_order_add_refund(t, order, seq);
		ledger_put(t, STORE_DB_ORDERS, &ok, order);
	}
	json_decref(order);
	json_decref(r);
}

/* Gives an event its id. */
static void
ledger_migrate_event(struct store *s, struct store_txn *t, enum store_db db,
    const struct store_val *key, const struct store_val *val)
{
	struct store_key k;
	char id[STORE_EPOCH_LEN + 24];
	json_t *e;

	(void)db;
	if ((e = ledger_load(val)) == NULL)
		return;
	if (json_object_get(e, "id") == NULL) {
		ledger_event_id(store_epoch(s), store_key_get_u64(key), id);
		json_object_set_new(e, "id", json_string(id));
		store_key_from_val(&k, key);
		ledger_put(t, STORE_DB_EVENTS, &k, e);
	}
	json_decref(e);
}

/* A dedup record still in JSON written again as a binary one; one that
 * cannot be read is left as it is (and refused where it is read). */
static void
ledger_migrate_dedup(struct store *s, struct store_txn *t, enum store_db db,
    const struct store_val *key, const struct store_val *val)
{
	struct ledger_dedup d;
	struct store_key k;

	(void)s;
	(void)db;
	if (!ledger_is_json(val) || ledger_dedup_read(val, &d) != PH_OK)
		return;
	store_key_from_val(&k, key);
	ledger_dedup_put(t, &k, &d);
}

/* A record still in JSON text written again in CBOR; one that cannot be
 * read is left as it is (and refused where it is read). */
static void
ledger_migrate_cbor(struct store *s, struct store_txn *t, enum store_db db,
    const struct store_val *key, const struct store_val *val)
{
	struct store_key k;
	json_t *j;

	(void)s;
	if (!ledger_is_json(val) || (j = ledger_load(val)) == NULL)
		return;
	store_key_from_val(&k, key);
	ledger_put(t, db, &k, j);
	json_decref(j);
}

/* An orphan payment (ledger.c) indexed under its order id. */
static void
ledger_migrate_orphan(struct store *s, struct store_txn *t, enum store_db db,
    const struct store_val *key, const struct store_val *val)
{
	json_t *p;

	(void)s;
	(void)db;
	if (key->len == 0 || *(const unsigned char *)key->data !=
	    STORE_KEY_PAYMENT || (p = ledger_load(val)) == NULL)
		return;
	ledger_orphan_index(t, p, key);
	json_decref(p);
}

/*
 * Payments recorded for an order that did not exist before the orphan
 * index was kept are indexed once, the meta record "orphan_index" saying
 * so.  Not a schema step: a build before it reads the store as it did and
 * leaves the index alone.  An import's target is left to its source's
 * mark (an older source's orphans are indexed at the next opening).
 */
static int
ledger_migrate_orphans(struct store *s)
{
	struct store_txn t;
	struct store_key k;
	struct store_val v;
	int rc, done;

	store_key_init(&k, 0);
	store_key_str(&k, "orphan_index");
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	done = store_get(&t, STORE_DB_META, &k, &v) == PH_OK;
	rc = t.err;
	store_abort(&t);
	if (rc != PH_OK || done)
		return rc;
	if ((rc = ledger_migrate_all(s, STORE_DB_PAYMENTS,
	    ledger_migrate_orphan)) != PH_OK)
		return rc;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	store_put(&t, STORE_DB_META, &k, "1", 1);
	return store_commit(&t);
}

/* The last step of a migration: the store says it has version now. */
static int
ledger_migrate_done(struct store *s, int version)
{
	struct store_txn t;
	int rc;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	store_set_schema(&t, version);
	return store_commit(&t);
}

int
ledger_migrate_strays(struct store *s, size_t *moved)
{
	struct store_key resume;
	int rc, more = 1;

	*moved = 0;
	store_key_init(&resume, 0);
	while (more)
		if ((rc = ledger_migrate_payment_keys(s, &resume, &more,
		    moved)) != PH_OK)
			return rc;
	return PH_OK;
}

static int
ledger_migrate_4(struct store *s)
{
	size_t moved;
	int rc;

	if ((rc = ledger_migrate_strays(s, &moved)) != PH_OK)
		return rc;
	if ((rc = ledger_migrate_done(s, 5)) != PH_OK)
		return rc;
	log_info("database: brought from schema 4 to 5 (%zu payment "
	    "record(s) of failed payments keyed by profile)", moved);
	return PH_OK;
}

static int
ledger_migrate_3(struct store *s)
{
	static const enum store_db dbs[] = { STORE_DB_ORDERS,
	    STORE_DB_PAYMENTS, STORE_DB_EVENTS, STORE_DB_REFUNDS,
	    STORE_DB_IDEM };
	size_t i;
	int rc;

	for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
		if ((rc = ledger_migrate_all(s, dbs[i],
		    ledger_migrate_cbor)) != PH_OK)
			return rc;
	if ((rc = ledger_migrate_done(s, 4)) != PH_OK)
		return rc;
	log_info("database: brought from schema 3 to 4 (records in CBOR)");
	return PH_OK;
}

static int
ledger_migrate_2(struct store *s)
{
	int rc;

	if ((rc = ledger_migrate_all(s, STORE_DB_DEDUP,
	    ledger_migrate_dedup)) != PH_OK ||
	    (rc = ledger_migrate_done(s, 3)) != PH_OK)
		return rc;
	log_info("database: brought from schema 2 to 3 (dedup records in "
	    "binary form)");
	return PH_OK;
}

static int
ledger_migrate_1(struct store *s)
{
	struct store_txn t;
	size_t moved = 0;
	int rc, more = 1;

	if (store_epoch(s)[0] == '\0') {
		if ((rc = store_begin(s, 1, &t)) != PH_OK)
			return rc;
		store_new_epoch(&t);
		if ((rc = store_commit(&t)) != PH_OK)
			return rc;
	}
	while (more)
		if ((rc = ledger_migrate_payments(s, &more, &moved)) != PH_OK)
			return rc;
	if ((rc = ledger_migrate_all(s, STORE_DB_REFUNDS,
	    ledger_migrate_refund)) != PH_OK ||
	    (rc = ledger_migrate_all(s, STORE_DB_EVENTS,
	    ledger_migrate_event)) != PH_OK ||
	    (rc = ledger_migrate_done(s, 2)) != PH_OK)
		return rc;
	log_info("database: brought from schema 1 to 2 (%zu payment(s) "
	    "keyed by profile, epoch %s)", moved, store_epoch(s));
	return PH_OK;
}

int
ledger_migrate(struct store *s, struct ph_diag *diag)
{
	int rc;

	if (store_schema(s) < 2 && (rc = ledger_migrate_1(s)) != PH_OK)
		return ph_fail(diag, rc, "database: bringing schema 1 up to 2 "
		    "failed: %s (run it again: it resumes)", ph_strerror(rc));
	if (store_schema(s) < 3 && (rc = ledger_migrate_2(s)) != PH_OK)
		return ph_fail(diag, rc, "database: bringing schema 2 up to 3 "
		    "failed: %s (run it again: it resumes)", ph_strerror(rc));
	if (store_schema(s) < 4 && (rc = ledger_migrate_3(s)) != PH_OK)
		return ph_fail(diag, rc, "database: bringing schema 3 up to 4 "
		    "failed: %s (run it again: it resumes)", ph_strerror(rc));
	if (store_schema(s) < 5 && (rc = ledger_migrate_4(s)) != PH_OK)
		return ph_fail(diag, rc, "database: bringing schema 4 up to 5 "
		    "failed: %s (run it again: it resumes)", ph_strerror(rc));
	return PH_OK;
}

/* name = text in doc; text that is not UTF-8 (JSON cannot hold it) is
 * left out: its column stays empty rather than the record unwritten. */
static void
ledger_doc_text(json_t *doc, const char *name, const char *text)
{
	json_t *v = json_string(text);

	if (v != NULL)
		json_object_set_new(doc, name, v);
}

/* The parts of a record's key that its value does not hold, as members
 * of doc; -1 for a key not of the form its kind has. */
static int
ledger_key_doc(enum store_db db, const struct store_val *k, json_t *doc)
{
	struct store_key_reader r;
	char a[256], b[256];
	uint64_t u;

	store_key_read(&r, k, 1);
	switch (db) {
	case STORE_DB_DEDUP:
		store_key_read_str(&r, a, sizeof(a));
		store_key_read_str(&r, b, sizeof(b));
		if (r.bad)
			return -1;
		ledger_doc_text(doc, "profile", a);
		ledger_doc_text(doc, "dedup_key", b);
		return 0;
	case STORE_DB_IDEM:
		store_key_read_str(&r, a, sizeof(a));
		if (r.bad)
			return -1;
		ledger_doc_text(doc, "key", a);
		return 0;
	case STORE_DB_DUE:
		store_key_read(&r, k, 0);
		u = store_key_read_u64(&r);
		store_key_read_str(&r, a, sizeof(a));
		if (r.bad || u > INT64_MAX)
			return -1;
		ledger_doc_text(doc, "order_id", a);
		return json_object_set_new(doc, "due_at",
		    json_integer((json_int_t)u));
	case STORE_DB_REFUND_IDS:
	case STORE_DB_META:
		store_key_read(&r, k, 0);
		store_key_read_str(&r, a, sizeof(a));
		if (r.bad)
			return -1;
		ledger_doc_text(doc, db == STORE_DB_META ? "name" :
		    "refund_id", a);
		return 0;
	default:
		return 0;
	}
}

/*
 * The store's projection (store_spec's project): every record an operator
 * queries, as JSON text, for an engine that keeps it beside the record
 * (PostgreSQL's typed columns come from it).  The records are shown as
 * they are; dedup records, the due list and the refund index, which are
 * not JSON documents, as the fields they hold.  The push state and
 * reconciliation marks have none.
 */
static int
ledger_project(enum store_db db, const struct store_val *key,
    const struct store_val *val, struct ph_buf *out)
{
	struct ledger_dedup d;
	json_t *doc = NULL;
	char *text;
	int rc = PH_OK;

	switch (db) {
	case STORE_DB_ORDERS:
	case STORE_DB_PAYMENTS:
	case STORE_DB_EVENTS:
	case STORE_DB_REFUNDS:
	case STORE_DB_IDEM:
		if ((doc = ledger_load(val)) == NULL)
			return -PH_E_STORE;
		break;
	case STORE_DB_DEDUP:
		if (ledger_dedup_read(val, &d) != PH_OK)
			return -PH_E_STORE;
		doc = json_pack("{s:s, s:I, s:s, s:s, s:s}", "digest", d.digest,
		    "first_seen", (json_int_t)d.first_seen, "kind", d.kind,
		    "order_id", d.order_id, "source", d.source);
		break;
	case STORE_DB_REFUND_IDS:
		doc = json_pack("{s:I}", "seq",
		    (json_int_t)store_key_get_u64(val));
		break;
	case STORE_DB_DUE:
	case STORE_DB_META:
		doc = json_object();
		break;
	default:
		return 0;
	}
	if (doc == NULL)
		return -PH_E_NOMEM;
	if (ledger_key_doc(db, key, doc) != 0)
		rc = PH_E_STORE;
	else if ((text = json_dumps(doc, JSON_COMPACT)) == NULL)
		rc = PH_E_NOMEM;
	else {
		if (ph_buf_puts(out, text) != PH_OK)
			rc = PH_E_NOMEM;
		free(text);
	}
	json_decref(doc);
	return rc == PH_OK ? 1 : -rc;
}

int
ledger_open(const char *path, size_t map_size, struct store **out,
    struct ph_diag *diag)
{
	struct store_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.kind = STORE_LMDB;
	spec.path = path;
	spec.map_size = map_size;
	return ledger_open_spec(&spec, 0, out, diag);
}

int
ledger_open_spec(const struct store_spec *spec, int flags,
    struct store **out, struct ph_diag *diag)
{
	struct store_spec s = *spec;
	int rc, orc;

	s.project = ledger_project;
	if ((rc = store_open_spec(&s, flags | STORE_OPEN_OLDER, out,
	    diag)) != PH_OK)
		return rc;
	/* The index only spares a query: a store it cannot be written to
	 * (full, read-only) still opens, and the next opening tries again. */
	if ((rc = ledger_migrate(*out, diag)) == PH_OK &&
	    !(flags & STORE_OPEN_IMPORT) &&
	    (orc = ledger_migrate_orphans(*out)) != PH_OK)
		log_warn("database: indexing the payments of orders not "
		    "registered yet failed: %s (tried again at the next "
		    "opening)", ph_strerror(orc));
	if (rc != PH_OK) {
		store_close(*out);
		*out = NULL;
	}
	return rc;
}
