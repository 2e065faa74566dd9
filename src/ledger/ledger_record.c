/*
 * The ledger's records: how they are read from and written to the store,
 * their keys, the outbox, exceptions on orders, and the counts of orders
 * per state.  The layer the ledger's other files build on; it calls
 * nothing above it.
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

static const char *const ledger_event_names[LEDGER_EV__MAX] = {
	[LEDGER_EV_NONE] = "",
	[LEDGER_EV_ORDER_PAID] = "order.paid",
	[LEDGER_EV_ORDER_DOUBLE_PAYMENT] = "order.double_payment",
	[LEDGER_EV_ORDER_LATE_PAYMENT] = "order.late_payment",
	[LEDGER_EV_ORDER_AMOUNT_MISMATCH] = "order.amount_mismatch",
	[LEDGER_EV_ORDER_PROFILE_MISMATCH] = "order.profile_mismatch",
	[LEDGER_EV_ORDER_CLOSED] = "order.closed",
	[LEDGER_EV_PAYMENT_UNKNOWN_ORDER] = "payment.unknown_order",
	[LEDGER_EV_PAYMENT_FAILED] = "payment.failed",
	[LEDGER_EV_NOTIFICATION_CONFLICT] = "notification.conflict",
	[LEDGER_EV_REFUND_REQUESTED] = "refund.requested",
	[LEDGER_EV_REFUND_SUCCEEDED] = "refund.succeeded",
	[LEDGER_EV_REFUND_FAILED] = "refund.failed",
	[LEDGER_EV_REFUND_UNMATCHED] = "refund.unmatched",
	[LEDGER_EV_REFUND_CANCELLED] = "refund.cancelled",
	[LEDGER_EV_RECONCILE_AMOUNT_DIFFERS] = "reconcile.amount_differs",
	[LEDGER_EV_RECONCILE_MISSING_AT_PROVIDER] = "reconcile.missing_at_provider",
	[LEDGER_EV_RECONCILE_REFUND_MISMATCH] = "reconcile.refund_mismatch",
	[LEDGER_EV_RECONCILE_MISSING_HERE] = "reconcile.missing_here",
};

static const char *const ledger_source_names[LEDGER_SRC__MAX] = {
	"notify", "query", "statement", "statement_file", "replay",
};

const char *
ledger_source_name(enum ledger_source src)
{
	return src < LEDGER_SRC__MAX ? ledger_source_names[src] : "?";
}

int
ledger_source_missed(enum ledger_source src)
{
	return src == LEDGER_SRC_QUERY || src == LEDGER_SRC_STATEMENT ||
	    src == LEDGER_SRC_STATEMENT_FILE;
}

const char *
ledger_event_name(enum ledger_event e)
{
	return e < LEDGER_EV__MAX && ledger_event_names[e] != NULL ?
	    ledger_event_names[e] : "";
}

/* ---- Records in and out of the store ------------------------------------ */

int
ledger_is_json(const struct store_val *v)
{
	return v->len > 0 && ((const char *)v->data)[0] == '{';
}

/*
 * A record: CBOR (ledger_cbor.c), or JSON text as schema 3 and before
 * wrote it, and as a payhook of schema 3 still running beside the
 * migration may write it until it is replaced.
 */
json_t *
ledger_load(const struct store_val *v)
{
	json_error_t jerr;
	json_t *j;

	if (!ledger_is_json(v)) {
		if ((j = ledger_cbor_read(v->data, v->len)) == NULL)
			log_err("database: unreadable record (CBOR, %zu "
			    "bytes)", v->len);
		return j;
	}
	j = json_loadb(v->data, v->len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j)) {
		log_err("database: unreadable record: %s", jerr.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* Reads a JSON record; PH_OK, PH_E_NOTFOUND or a sticky error. */
int
ledger_get(struct store_txn *t, enum store_db db, const struct store_key *k,
    json_t **out)
{
	struct store_val v;
	int rc;

	*out = NULL;
	if ((rc = store_get(t, db, k, &v)) != PH_OK)
		return rc;
	if ((*out = ledger_load(&v)) == NULL)
		return t->err = PH_E_STORE;
	return PH_OK;
}

void
ledger_put(struct store_txn *t, enum store_db db, const struct store_key *k,
    const json_t *j)
{
	struct ph_buf b;
	char *s;
	int rc;

	if (j == NULL) {
		if (t->err == PH_OK)
			t->err = PH_E_NOMEM;
		return;
	}
	rc = ledger_cbor_write(j, &b);
	if (rc == PH_OK)
		store_put(t, db, k, b.data, b.len);
	ph_buf_free(&b);
	if (rc != PH_E_TOOBIG) {
		if (rc != PH_OK && t->err == PH_OK)
			t->err = rc;
		return;
	}
	/* Deeper than a CBOR record goes (a record of schema 3 with such
	 * attempt data), or larger: JSON text, read as well as ever. */
	log_warn("database: a record nested too deep for CBOR is kept as "
	    "JSON text");
	if ((s = json_dumps(j, JSON_COMPACT)) == NULL) {
		if (t->err == PH_OK)
			t->err = PH_E_NOMEM;
		return;
	}
	store_put(t, db, k, s, strlen(s));
	free(s);
}

void
ledger_put_fields(struct store_txn *t, enum store_db db,
    const struct store_key *k, const struct ledger_field *f, size_t n,
    const json_t *extra)
{
	struct ph_buf b;
	int rc;

	if ((rc = ledger_cbor_fields(f, n, extra, &b)) == PH_OK)
		store_put(t, db, k, b.data, b.len);
	else if (t->err == PH_OK)
		t->err = rc;
	ph_buf_free(&b);
}

void
ledger_key_order(struct store_key *k, const char *order_id)
{
	store_key_init(k, STORE_KEY_ORDER);
	store_key_str(k, order_id);
}

void
ledger_key_pair(struct store_key *k, unsigned char klass, const char *a,
    const char *b)
{
	store_key_init(k, klass);
	store_key_str(k, a);
	store_key_str(k, b);
}

void
ledger_event_id(const char *epoch, uint64_t seq,
    char out[STORE_EPOCH_LEN + 24])
{
	snprintf(out, STORE_EPOCH_LEN + 24, "%s-%llu", epoch,
	    (unsigned long long)seq);
}

/* Appends an event to the outbox and returns its sequence number; takes
 * extra (merged into the event; may be NULL). */
uint64_t
ledger_emit_new(struct store_txn *t, const struct ledger_fact *f,
    enum ledger_event type, const char *order_id, json_t *extra)
{
	const struct ph_event *ev = f->ev;
	char id[STORE_EPOCH_LEN + 24];
	struct ledger_field e[14];
	struct store_key k;
	uint64_t seq;
	size_t n = 0;

	if ((seq = store_next_seq(t, STORE_DB_EVENTS)) == 0) {
		json_decref(extra);
		return 0;
	}
	ledger_event_id(store_epoch(t->store), seq, id);
	e[n++] = (struct ledger_field)LEDGER_INT("v", LEDGER_RECORD_VERSION);
	e[n++] = (struct ledger_field)LEDGER_STR("id", id);
	e[n++] = (struct ledger_field)LEDGER_INT("seq", seq);
	e[n++] = (struct ledger_field)LEDGER_STR("type",
	    ledger_event_name(type));
	e[n++] = (struct ledger_field)LEDGER_STR("order_id", order_id);
	e[n++] = (struct ledger_field)LEDGER_STR("profile", f->profile);
	e[n++] = (struct ledger_field)LEDGER_STR("provider", f->provider);
	e[n++] = (struct ledger_field)LEDGER_STR("provider_txn_id",
	    ev->txn_id);
	e[n++] = (struct ledger_field)LEDGER_INT("amount", ev->amount);
	e[n++] = (struct ledger_field)LEDGER_STR("currency", ev->currency);
	e[n++] = (struct ledger_field)LEDGER_INT("at", f->now);
	e[n++] = (struct ledger_field)LEDGER_STR("source", f->source);
	if (ev->occurred_at > 0)
		e[n++] = (struct ledger_field)LEDGER_INT("occurred_at",
		    ev->occurred_at);
	if (ev->channel[0] != '\0')
		e[n++] = (struct ledger_field)LEDGER_STR("channel",
		    ev->channel);
	store_key_init(&k, 0);
	store_key_u64(&k, seq);
	ledger_put_fields(t, STORE_DB_EVENTS, &k, e, n, extra);
	json_decref(extra);
	return seq;
}

void
ledger_note(struct ledger_result *r, enum ledger_event type, uint64_t seq)
{
	if (r->event == LEDGER_EV_NONE && seq != 0) {
		r->event = type;
		ph_strlcpy(r->event_type, ledger_event_name(type),
		    sizeof(r->event_type));
		r->seq = seq;
	}
}

/*
 * Adds exception x to the order's list.  extra is taken (its reference
 * stolen, jansson's _new convention).  Nothing is dropped silently: when
 * the entry cannot be made the transaction fails with PH_E_NOMEM.
 */
void
ledger_add_exception_fields_new(struct store_txn *t, json_t *order,
    const struct ledger_exception *x, json_t *extra)
{
	json_t *ex = json_object_get(order, "exceptions"), *e;

	e = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}",
	    "type", x->type,
	    "provider", x->provider,
	    "provider_txn_id", x->txn_id,
	    "amount", (json_int_t)x->amount,
	    "currency", x->currency,
	    "at", (json_int_t)x->at);
	if (e != NULL && extra != NULL && json_object_update(e, extra) != 0) {
		json_decref(e);
		e = NULL;
	}
	json_decref(extra);
	if (e != NULL && !json_is_array(ex)) {
		ex = json_array();
		if (json_object_set_new(order, "exceptions", ex) != 0)
			ex = NULL;
	}
	if (ex == NULL && e != NULL) {
		json_decref(e);
		e = NULL;
	}
	/* json_array_append_new takes e even when it fails. */
	if (e == NULL || json_array_append_new(ex, e) != 0 ||
	    json_object_set_new(order, "updated_at",
	    json_integer(x->at)) != 0) {
		if (t->err == PH_OK)
			t->err = PH_E_NOMEM;
	}
}

/* An exception about the fact f: its provider, payment and amount. */
void
ledger_add_exception_new(struct store_txn *t, json_t *order,
    const struct ledger_fact *f, const char *type, json_t *extra)
{
	struct ledger_exception x = {
		.type = type,
		.provider = f->provider,
		.txn_id = f->ev->txn_id,
		.amount = f->ev->amount,
		.currency = f->ev->currency,
		.at = f->now,
	};

	ledger_add_exception_fields_new(t, order, &x, extra);
}

void
ledger_payment_order(struct store_txn *t, const char *profile,
    const char *txn_id, char *order_id, size_t cap)
{
	struct store_key pk;
	json_t *pay = NULL;

	order_id[0] = '\0';
	ledger_key_pair(&pk, STORE_KEY_PAYMENT, profile, txn_id);
	if (!pk.err && ledger_get(t, STORE_DB_PAYMENTS, &pk, &pay) == PH_OK)
		ph_strlcpy(order_id, ledger_str(pay, "order_id"), cap);
	json_decref(pay);
}

int
ledger_kind_is_refund(enum ph_event_kind kind)
{
	return kind == PH_EV_REFUND_SUCCEEDED || kind == PH_EV_REFUND_FAILED;
}

const char *
ledger_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

int
ledger_is_misfit(const json_t *e)
{
	return strcmp(ledger_str(e, "type"), "amount_mismatch") == 0 &&
	    json_object_get(e, "refund_seq") == NULL;
}

const json_t *
ledger_order_misfit(const json_t *order, const char *txn)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(order, "exceptions"), i, e)
		if (ledger_is_misfit(e) && (txn == NULL ||
		    strcmp(ledger_str(e, "provider_txn_id"), txn) == 0))
			return e;
	return NULL;
}

void
ledger_record_event(const json_t *rec, enum ph_event_kind kind,
    struct ph_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ph_strlcpy(ev->order_id, ledger_str(rec, "order_id"),
	    sizeof(ev->order_id));
	ph_strlcpy(ev->txn_id, ledger_str(rec, "provider_txn_id"),
	    sizeof(ev->txn_id));
	ev->amount = json_integer_value(json_object_get(rec, "amount"));
	ph_strlcpy(ev->currency, ledger_str(rec, "currency"),
	    sizeof(ev->currency));
}

/* ---- Counts of orders per state ------------------------------------------ */

static void
ledger_key_count(struct store_key *k, int state)
{
	char name[32];

	snprintf(name, sizeof(name), "orders.%s", order_state_name(state));
	store_key_init(k, 0);
	store_key_str(k, name);
}

static uint64_t
ledger_count_get(struct store_txn *t, int state)
{
	struct store_key k;
	struct store_val v;
	char buf[24];

	ledger_key_count(&k, state);
	if (store_get(t, STORE_DB_META, &k, &v) != PH_OK || v.len == 0 ||
	    v.len >= sizeof(buf))
		return 0;
	memcpy(buf, v.data, v.len);
	buf[v.len] = '\0';
	return strtoull(buf, NULL, 10);
}

static void
ledger_count_set(struct store_txn *t, int state, uint64_t n)
{
	struct store_key k;
	char buf[24];
	int len;

	ledger_key_count(&k, state);
	len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)n);
	store_put(t, STORE_DB_META, &k, buf, (size_t)len);
}

void
ledger_count(struct store_txn *t, int state, int delta)
{
	uint64_t n = ledger_count_get(t, state);

	if (delta < 0 && n < (uint64_t)-delta)
		n = 0;
	else
		n += (uint64_t)(int64_t)delta;
	ledger_count_set(t, state, n);
}

int
ledger_counts_init(struct store *s)
{
	uint64_t counts[ORDER__MAX] = { 0 };
	struct store_txn t;
	struct store_key k;
	struct store_scan sc;
	struct store_val val;
	json_t *o;
	int rc, i;

	store_key_init(&k, 0);
	store_key_str(&k, "orders.counted");
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	rc = store_get(&t, STORE_DB_META, &k, &val);
	store_abort(&t);
	if (rc == PH_OK)
		return PH_OK;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	if (store_get(&t, STORE_DB_META, &k, &val) == PH_OK) {
		store_abort(&t);
		return PH_OK;
	}
	store_scan_begin(&sc, &t, STORE_DB_ORDERS, NULL);
	while (store_scan_next(&sc)) {
		if ((o = ledger_load(&sc.val)) == NULL)
			continue;
		if ((i = order_state_parse(ledger_str(o, "state"))) >= 0)
			counts[i]++;
		json_decref(o);
	}
	store_scan_end(&sc);
	for (i = 0; i < ORDER__MAX; i++)
		ledger_count_set(&t, i, counts[i]);
	store_put(&t, STORE_DB_META, &k, "1", 1);
	return store_commit(&t);
}

int
ledger_counts(struct store *s, uint64_t counts[], size_t n)
{
	struct store_txn t;
	size_t i;
	int rc;

	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	for (i = 0; i < n && i < ORDER__MAX; i++)
		counts[i] = ledger_count_get(&t, (int)i);
	rc = t.err;
	store_abort(&t);
	return rc;
}

int
ledger_prune_before(struct store *s, enum store_db db, ledger_time_fn *when,
    int64_t before, size_t *removed)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key resume;
	size_t batch;
	int64_t at;
	int rc, more = 1;

	*removed = 0;
	store_key_init(&resume, 0);
	/* Short transactions: the FastCGI processes must not wait on us. */
	while (more) {
		if ((rc = store_begin(s, 1, &t)) != PH_OK)
			return rc;
		batch = 0;
		more = 0;
		store_scan_begin(&sc, &t, db, &resume);
		while (store_scan_next(&sc)) {
			/* Where to go on from, copied before a delete. */
			store_key_from_val(&resume, &sc.key);
			if (when(&sc.val, &at) != 0)
				continue;
			if (at < before) {
				store_scan_del(&sc);
				batch++;
			}
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

int
ledger_read_end(struct store_txn *t, int rc, json_t **out)
{
	store_abort(t);
	if (rc == PH_OK)
		rc = store_settle(t);
	if (rc != PH_OK) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

int
ledger_collect(struct store *s, enum store_db db, const struct store_key *from,
    size_t limit, ledger_keep_fn *keep, void *arg, json_t **out)
{
	struct store_txn t;
	struct store_scan sc;
	json_t *arr;
	int rc;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return PH_E_NOMEM;
	if ((rc = store_begin(s, 0, &t)) != PH_OK) {
		json_decref(arr);
		return rc;
	}
	store_scan_begin(&sc, &t, db, from);
	while (json_array_size(arr) < limit && store_scan_next(&sc))
		if ((rc = keep(&sc, arr, arg)) != 0) {
			if (rc != 1 && t.err == PH_OK)
				t.err = rc;
			break;
		}
	store_scan_end(&sc);
	if ((rc = ledger_read_end(&t, t.err, &arr)) != PH_OK)
		return rc;
	*out = arr;
	return PH_OK;
}

int
ledger_store_fail(struct ph_diag *diag, int rc)
{
	return ph_fail(diag, rc, "database: %s: %s", ph_strerror(rc),
	    rc == PH_E_STORE_FULL ? LEDGER_FULL_ADVICE : "see the log");
}
