/*
 * Orders and the event feed: creating and reading orders, reading the
 * outbox, pruning dedup keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ledger/order.h"
#include "ops/log.h"
#include "ops/metrics.h"

#define LEDGER_EVENTS_MAX 1000

/* ---- Orders and the event feed ------------------------------------------ */

/*
 * Whether o is the order n asks for, made now: the same profile, amount,
 * currency, expiry (seconds after it was made) and first attempt's data.
 * Anything else is another order under the same id.
 */
static int
ledger_order_same(const json_t *o, const struct ledger_new_order *n,
    int64_t now)
{
	const json_t *exp = json_object_get(o, "expires_at");
	const json_t *data = json_object_get(json_array_get(json_object_get(o,
	    "attempts"), 0), "data");
	int64_t made = json_integer_value(json_object_get(o, "created_at"));
	int64_t had = json_is_integer(exp) ? json_integer_value(exp) - made : 0;
	int64_t asks = n->expires_at > 0 ? n->expires_at - now : 0;

	return strcmp(ledger_str(o, "profile"), n->profile) == 0 &&
	    json_integer_value(json_object_get(o, "amount")) == n->amount &&
	    strcmp(ledger_str(o, "currency"), n->currency) == 0 &&
	    had == asks && (data == NULL ? n->attempt == NULL :
	    n->attempt != NULL && json_equal(data, n->attempt));
}

int
ledger_create_order(struct store *s, const struct ledger_new_order *n,
    int64_t now, struct ledger_idem *idem, json_t **out, int *created,
    struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key k;
	struct ledger_adopted adopted;
	json_t *o = NULL, *att;
	int rc;

	*out = NULL;
	*created = 0;
	ledger_key_order(&k, n->order_id);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	rc = ledger_get(&t, STORE_DB_ORDERS, &k, &o);
	if (rc == PH_OK) {
		*out = o;
		if (ledger_order_same(o, n, now))
			rc = PH_OK;
		else
			rc = ph_fail(diag, PH_E_CONFLICT, "order %s exists with "
			    "other content", n->order_id);
		if (idem == NULL) {
			/* Nothing to write: the answer is about what is
			 * committed, so it must be on disk. */
			store_abort(&t);
			if (store_settle(&t) != PH_OK)
				return ph_fail(diag, PH_E_STORE, "database: "
				    "flush failed");
			return rc;
		}
		ledger_idem_keep(&t, idem, rc, 0, rc == PH_OK ?
		    LEDGER_REFUSAL_NONE : LEDGER_REFUSAL_ORDER_CONFLICT,
		    diag->msg, o);
		if (store_commit(&t) != PH_OK)
			return ph_fail(diag, t.err, "database: %s",
			    ph_strerror(t.err));
		return rc;
	}
	if (rc != PH_E_NOTFOUND) {
		store_abort(&t);
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	}
	o = order_record_new(n->order_id, n->profile, n->amount, n->currency,
	    now);
	att = json_pack("{s:s, s:I, s:s}", "profile", n->profile, "at",
	    (json_int_t)now, "source", "order");
	if (att != NULL && n->attempt != NULL)
		json_object_set(att, "data", (json_t *)n->attempt);
	json_object_set_new(o, "attempts", json_pack("[o]", att));
	json_object_set_new(o, "expires_at", n->expires_at > 0 ?
	    json_integer(n->expires_at) : json_null());
	json_object_set_new(o, "query_count", json_integer(0));
	json_object_set_new(o, "next_query_at", json_null());
	json_object_set_new(o, "refunds", json_array());
	ledger_set_due(&t, o, n->first_query_at);
	ledger_put(&t, STORE_DB_ORDERS, &k, o);
	ledger_count(&t, ORDER_PENDING, 1);
	/* A payment the provider told of before the order was registered
	 * is applied to it now: the answer shows the order as it is. */
	ledger_adopt_orphans(&t, n->order_id, now, &adopted);
	if (adopted.applied > 0) {
		json_decref(o);
		o = NULL;
		if (ledger_get(&t, STORE_DB_ORDERS, &k, &o) != PH_OK &&
		    t.err == PH_OK)
			t.err = PH_E_STORE;
	}
	ledger_idem_keep(&t, idem, PH_OK, 1, LEDGER_REFUSAL_NONE, "", o);
	if ((rc = store_commit(&t)) != PH_OK) {
		json_decref(o);
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	}
	if (adopted.paid)
		ledger_paid_tell(&adopted.kept);
	*out = o;
	*created = 1;
	return PH_OK;
}

/* Starts the read of an order: its key in k, a read transaction in t
 * (PH_OK), or PH_E_NOTFOUND for an id no order can have. */
static int
ledger_order_begin(struct store *s, const char *order_id,
    struct store_txn *t, struct store_key *k)
{
	ledger_key_order(k, order_id);
	if (k->err)
		return PH_E_NOTFOUND;
	return store_begin(s, 0, t);
}

int
ledger_get_order(struct store *s, const char *order_id, json_t **out)
{
	struct store_txn t;
	struct store_key k;
	int rc;

	*out = NULL;
	if ((rc = ledger_order_begin(s, order_id, &t, &k)) != PH_OK)
		return rc;
	rc = ledger_get(&t, STORE_DB_ORDERS, &k, out);
	return ledger_read_end(&t, rc, out);
}

/* The API's text of a record read as JSON text, or holding what only its
 * tree can show: through the tree, as the record's other readers do. */
static int
ledger_view_tree(const struct store_val *v, const struct order_api_spec *spec,
    struct ph_buf *out)
{
	json_t *j;
	char *text;

	if ((j = order_view_new(ledger_load(v), spec)) == NULL)
		return PH_E_STORE;
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		return PH_E_NOMEM;
	ph_buf_puts(out, text);
	free(text);
	return out->err ? PH_E_NOMEM : PH_OK;
}

/* The API's text of a stored record by spec, appended to out: straight
 * from its CBOR, or through its tree where only the tree can show it. */
static int
ledger_view_record(const struct store_val *v,
    const struct order_api_spec *spec, struct ph_buf *out)
{
	int rc;

	rc = ledger_is_json(v) ? PH_E_UNSUPPORTED :
	    ledger_cbor_view(v->data, v->len, spec, out);
	if (rc == PH_E_UNSUPPORTED)
		rc = ledger_view_tree(v, spec, out);
	else if (rc == PH_E_STORE)
		log_err("database: unreadable record (CBOR, %zu bytes)",
		    v->len);
	return rc;
}

int
ledger_order_api(struct store *s, const char *order_id, struct ph_buf *out)
{
	struct store_txn t;
	struct store_key k;
	struct store_val v;
	int rc;

	if ((rc = ledger_order_begin(s, order_id, &t, &k)) != PH_OK)
		return rc;
	/* the record's bytes are the store's until the transaction ends */
	if ((rc = store_get(&t, STORE_DB_ORDERS, &k, &v)) == PH_OK)
		rc = ledger_view_record(&v, &order_api_order, out);
	store_abort(&t);
	if (rc == PH_OK)
		rc = store_settle(&t);
	return rc;
}

/* An event of the feed; the last one's sequence number in *next. */
static int
ledger_keep_event(const struct store_scan *sc, json_t *arr, void *arg)
{
	uint64_t *next = arg;
	json_t *e;

	if ((e = ledger_load(&sc->val)) == NULL)
		return PH_E_STORE;
	json_array_append_new(arr, e);
	*next = store_key_get_u64(&sc->key);
	return 0;
}

int
ledger_events(struct store *s, uint64_t after, unsigned limit, json_t **out,
    uint64_t *next)
{
	struct store_key k;
	int rc;

	*next = after;
	if (limit == 0 || limit > LEDGER_EVENTS_MAX)
		limit = LEDGER_EVENTS_MAX;
	/* Past the last sequence number there is nothing to read; the
	 * read still settles: an event shown must not vanish in a crash,
	 * or its sequence number would be given again to another. */
	store_key_init(&k, 0);
	store_key_u64(&k, after == UINT64_MAX ? after : after + 1);
	rc = ledger_collect(s, STORE_DB_EVENTS, &k, after == UINT64_MAX ? 0 :
	    limit, ledger_keep_event, next, out);
	if (rc != PH_OK)
		*next = after;
	return rc;
}

int
ledger_events_api(struct store *s, uint64_t after, unsigned limit,
    struct ph_buf *out, uint64_t *next)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key k;
	unsigned n = 0;
	int rc;

	*next = after;
	if (limit == 0 || limit > LEDGER_EVENTS_MAX)
		limit = LEDGER_EVENTS_MAX;
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	ph_buf_append(out, "[", 1);
	/* As ledger_events reads them, each shown straight from its record
	 * while the transaction holds the bytes. */
	if (after != UINT64_MAX) {
		store_key_init(&k, 0);
		store_key_u64(&k, after + 1);
		store_scan_begin(&sc, &t, STORE_DB_EVENTS, &k);
		while (n < limit && store_scan_next(&sc)) {
			if (n++ > 0)
				ph_buf_append(out, ",", 1);
			if ((rc = ledger_view_record(&sc.val, &order_api_event,
			    out)) != PH_OK) {
				if (t.err == PH_OK)
					t.err = rc;
				break;
			}
			*next = store_key_get_u64(&sc.key);
		}
		store_scan_end(&sc);
	}
	ph_buf_append(out, "]", 1);
	rc = t.err != PH_OK ? t.err : out->err ? PH_E_NOMEM : PH_OK;
	/* the read still settles: an event shown must not vanish in a
	 * crash, or its sequence number would be given again to another */
	store_abort(&t);
	if (rc == PH_OK)
		rc = store_settle(&t);
	if (rc != PH_OK)
		*next = after;
	return rc;
}

struct ledger_order_filter {
	const char *state;		/* or NULL for any */
	const struct store_key *after;	/* its key, skipped */
};

static int
ledger_keep_order(const struct store_scan *sc, json_t *arr, void *arg)
{
	const struct ledger_order_filter *f = arg;
	json_t *o;

	/* Past `after`, not at it. */
	if (sc->key.len == f->after->len &&
	    memcmp(sc->key.data, f->after->b, f->after->len) == 0)
		return 0;
	if ((o = ledger_load(&sc->val)) == NULL)
		return 0;
	if (f->state == NULL || strcmp(ledger_str(o, "state"), f->state) == 0)
		json_array_append_new(arr, o);
	else
		json_decref(o);
	return 0;
}

int
ledger_list_orders(struct store *s, const char *state, const char *after,
    size_t limit, json_t **out)
{
	struct ledger_order_filter f;
	struct store_key k;

	ledger_key_order(&k, after);
	f.state = state;
	f.after = &k;
	return ledger_collect(s, STORE_DB_ORDERS, &k, limit, ledger_keep_order,
	    &f, out);
}

int
ledger_prune_dedup(struct store *s, int64_t before, size_t *removed)
{
	return ledger_prune_before(s, STORE_DB_DEDUP, ledger_dedup_first_seen,
	    before, removed);
}
