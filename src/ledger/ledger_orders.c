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

int
ledger_create_order(struct store *s, const struct ledger_new_order *n,
    int64_t now, json_t **out, int *created, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key k;
	json_t *o = NULL, *att;
	int rc;

	*out = NULL;
	*created = 0;
	ledger_key_order(&k, n->order_id);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	rc = ledger_get(&t, STORE_DB_ORDERS, &k, &o);
	if (rc == PH_OK) {
		store_abort(&t);
		*out = o;
		if ((rc = store_settle(&t)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		if (strcmp(ledger_str(o, "profile"), n->profile) == 0 &&
		    json_integer_value(json_object_get(o, "amount")) ==
		    n->amount && strcmp(ledger_str(o, "currency"),
		    n->currency) == 0)
			return PH_OK;
		return ph_fail(diag, PH_E_CONFLICT, "order %s exists with "
		    "other content", n->order_id);
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
	ledger_set_due(&t, o, n->first_query_at);
	ledger_put(&t, STORE_DB_ORDERS, &k, o);
	ledger_count(&t, ORDER_PENDING, 1);
	if ((rc = store_commit(&t)) != PH_OK) {
		json_decref(o);
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	}
	*out = o;
	*created = 1;
	return PH_OK;
}

int
ledger_get_order(struct store *s, const char *order_id, json_t **out)
{
	struct store_txn t;
	struct store_key k;
	int rc;

	*out = NULL;
	ledger_key_order(&k, order_id);
	if (k.err)
		return PH_E_NOTFOUND;
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	rc = ledger_get(&t, STORE_DB_ORDERS, &k, out);
	store_abort(&t);
	if (rc == PH_OK && (rc = store_settle(&t)) != PH_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

int
ledger_events(struct store *s, uint64_t after, unsigned limit, json_t **out,
    uint64_t *next)
{
	struct store_txn t;
	struct store_key k;
	struct store_scan sc;
	json_t *arr, *e;
	int rc;

	*out = NULL;
	*next = after;
	if (limit == 0 || limit > LEDGER_EVENTS_MAX)
		limit = LEDGER_EVENTS_MAX;
	if ((arr = json_array()) == NULL)
		return PH_E_NOMEM;
	if ((rc = store_begin(s, 0, &t)) != PH_OK) {
		json_decref(arr);
		return rc;
	}
	if (after != UINT64_MAX) {
		store_key_init(&k, 0);
		store_key_u64(&k, after + 1);
		store_scan_begin(&sc, &t, STORE_DB_EVENTS, &k);
		while (json_array_size(arr) < limit && store_scan_next(&sc)) {
			if ((e = ledger_load(&sc.val)) == NULL) {
				t.err = PH_E_STORE;
				break;
			}
			json_array_append_new(arr, e);
			*next = store_key_get_u64(&sc.key);
		}
		store_scan_end(&sc);
	}
	rc = t.err;
	store_abort(&t);
	/* An event shown must not vanish in a crash: its sequence number
	 * would be given again to another. */
	if (rc == PH_OK)
		rc = store_settle(&t);
	if (rc != PH_OK) {
		json_decref(arr);
		*next = after;
		return rc;
	}
	*out = arr;
	return PH_OK;
}

int
ledger_list_orders(struct store *s, const char *state, const char *after,
    size_t limit, json_t **out)
{
	struct store_txn t;
	struct store_key k;
	struct store_scan sc;
	json_t *arr, *o;
	int rc;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return PH_E_NOMEM;
	if ((rc = store_begin(s, 0, &t)) != PH_OK) {
		json_decref(arr);
		return rc;
	}
	ledger_key_order(&k, after);
	store_scan_begin(&sc, &t, STORE_DB_ORDERS, &k);
	while (json_array_size(arr) < limit && store_scan_next(&sc)) {
		/* Past `after`, not at it. */
		if (*after != '\0' && sc.key.len == k.len &&
		    memcmp(sc.key.data, k.b, k.len) == 0)
			continue;
		if ((o = ledger_load(&sc.val)) == NULL)
			continue;
		if (state == NULL || strcmp(ledger_str(o, "state"), state) == 0)
			json_array_append_new(arr, o);
		else
			json_decref(o);
	}
	store_scan_end(&sc);
	rc = t.err;
	store_abort(&t);
	if (rc == PH_OK)
		rc = store_settle(&t);
	if (rc != PH_OK) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return PH_OK;
}

int
ledger_prune_dedup(struct store *s, int64_t before, size_t *removed)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key resume;
	size_t batch;
	json_t *d;
	int rc, more = 1;

	*removed = 0;
	store_key_init(&resume, 0);
	/* Short transactions: the FastCGI processes must not wait on us. */
	while (more) {
		if ((rc = store_begin(s, 1, &t)) != PH_OK)
			return rc;
		batch = 0;
		more = 0;
		store_scan_begin(&sc, &t, STORE_DB_DEDUP, &resume);
		while (store_scan_next(&sc)) {
			/* Where to go on from, copied before a delete. */
			store_key_from_val(&resume, &sc.key);
			if ((d = ledger_load(&sc.val)) == NULL)
				continue;
			if (json_integer_value(json_object_get(d,
			    "first_seen")) < before) {
				store_scan_del(&sc);
				batch++;
			}
			json_decref(d);
			if (batch == 1000) {
				/* Go on from here in the next transaction. */
				more = 1;
				break;
			}
		}
		store_scan_end(&sc);
		if ((rc = store_commit(&t)) != PH_OK)
			return rc;
		*removed += batch;
	}
	return PH_OK;
}
