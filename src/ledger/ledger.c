/*
 * The ledger applies verified facts.  Every change to an order, a payment,
 * the dedup table, the refund work list and the outbox happens here, in
 * one write transaction per fact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "ledger/order.h"

#define LEDGER_EVENTS_MAX 1000

static const char *const ledger_outcome_names[LEDGER__MAX] = {
	"applied", "duplicate", "recorded", "conflict", "noop",
};

static const char *const ledger_kind_names[PH_EV__MAX] = {
	"payment.succeeded", "payment.failed", "payment.pending",
	"payment.closed", "refund.succeeded", "refund.failed", "not_found",
	"ignored",
};

const char *
ledger_outcome_name(enum ledger_outcome o)
{
	return o < LEDGER__MAX ? ledger_outcome_names[o] : "?";
}

/* ---- Records in and out of the store ------------------------------------ */

json_t *
ledger_load(const MDB_val *v)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb(v->mv_data, v->mv_size, JSON_REJECT_DUPLICATES, &jerr);
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
	MDB_val v;
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
	char *s;

	if (j == NULL) {
		if (t->err == PH_OK)
			t->err = PH_E_NOMEM;
		return;
	}
	if ((s = json_dumps(j, JSON_COMPACT)) == NULL) {
		if (t->err == PH_OK)
			t->err = PH_E_NOMEM;
		return;
	}
	store_put(t, db, k, s, strlen(s));
	free(s);
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

/* Appends an event to the outbox; returns its sequence number. */
uint64_t
ledger_emit(struct store_txn *t, const struct ledger_fact *f,
    const char *type, const char *order_id, json_t *extra)
{
	const struct ph_event *ev = f->ev;
	struct store_key k;
	uint64_t seq;
	json_t *e;

	if ((seq = store_next_seq(t, STORE_DB_EVENTS)) == 0) {
		json_decref(extra);
		return 0;
	}
	e = json_pack("{s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, "
	    "s:s}",
	    "v", LEDGER_RECORD_VERSION,
	    "seq", (json_int_t)seq,
	    "type", type,
	    "order_id", order_id,
	    "profile", f->profile,
	    "provider", f->provider,
	    "provider_txn_id", ev->txn_id,
	    "amount", (json_int_t)ev->amount,
	    "currency", ev->currency,
	    "at", (json_int_t)f->now,
	    "source", f->source);
	if (e != NULL && ev->occurred_at > 0)
		json_object_set_new(e, "occurred_at",
		    json_integer(ev->occurred_at));
	if (e != NULL && ev->channel[0] != '\0')
		json_object_set_new(e, "channel", json_string(ev->channel));
	if (e != NULL && extra != NULL)
		json_object_update(e, extra);
	json_decref(extra);
	store_key_init(&k, 0);
	store_key_u64(&k, seq);
	ledger_put(t, STORE_DB_EVENTS, &k, e);
	json_decref(e);
	return seq;
}

void
ledger_note(struct ledger_result *r, const char *type, uint64_t seq)
{
	if (r->event_type[0] == '\0' && seq != 0) {
		snprintf(r->event_type, sizeof(r->event_type), "%s", type);
		r->seq = seq;
	}
}

void
ledger_add_exception(json_t *order, const struct ledger_fact *f,
    const char *type, json_t *extra)
{
	json_t *ex = json_object_get(order, "exceptions"), *e;

	e = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}",
	    "type", type,
	    "provider", f->provider,
	    "provider_txn_id", f->ev->txn_id,
	    "amount", (json_int_t)f->ev->amount,
	    "currency", f->ev->currency,
	    "at", (json_int_t)f->now);
	if (e != NULL && extra != NULL)
		json_object_update(e, extra);
	json_decref(extra);
	if (!json_is_array(ex)) {
		ex = json_array();
		json_object_set_new(order, "exceptions", ex);
	}
	json_array_append_new(ex, e);
	json_object_set_new(order, "updated_at", json_integer(f->now));
}

/* ---- Applying facts ------------------------------------------------------ */

/* The digest that tells a duplicate from a conflict: the verified facts
 * that matter, not the bytes they came in. */
static void
ledger_digest(const struct ph_event *ev, char hex[2 * PH_SHA256_LEN + 1])
{
	struct ph_buf b;
	unsigned char d[PH_SHA256_LEN];

	ph_buf_init(&b, 1024);
	ph_buf_printf(&b, "%d|%s|%s|%s|%lld|%s", (int)ev->kind, ev->order_id,
	    ev->txn_id, ev->refund_id, (long long)ev->amount, ev->currency);
	ph_sha256(b.data != NULL ? b.data : "", b.len, d);
	ph_buf_free(&b);
	ph_hex_lower(d, sizeof(d), hex);
}

static void
ledger_payment_record(struct store_txn *t, const struct ledger_fact *f,
    const struct store_key *k, const char *status, const char *disposition)
{
	const struct ph_event *ev = f->ev;
	json_t *p;

	p = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, "
	    "s:I, s:I}",
	    "v", LEDGER_RECORD_VERSION,
	    "order_id", ev->order_id,
	    "profile", f->profile,
	    "provider", f->provider,
	    "provider_txn_id", ev->txn_id,
	    "amount", (json_int_t)ev->amount,
	    "currency", ev->currency,
	    "status", status,
	    "disposition", disposition,
	    "source", f->source,
	    "occurred_at", (json_int_t)ev->occurred_at,
	    "recorded_at", (json_int_t)f->now);
	if (p != NULL && ev->channel[0] != '\0')
		json_object_set_new(p, "channel", json_string(ev->channel));
	ledger_put(t, STORE_DB_PAYMENTS, k, p);
	json_decref(p);
}

const char *
ledger_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static void
ledger_conflict(struct store_txn *t, const struct ledger_fact *f,
    const char *what, struct ledger_result *r)
{
	struct store_key k;
	json_t *order = NULL;
	uint64_t seq;

	log_warn("conflict: %s %s for order %s (provider %s, txn %s, "
	    "amount %lld %s): recorded, not applied", what,
	    f->ev->dedup_key, f->ev->order_id, f->provider, f->ev->txn_id,
	    (long long)f->ev->amount, f->ev->currency);
	seq = ledger_emit(t, f, "notification.conflict", f->ev->order_id,
	    json_pack("{s:s, s:s, s:s}", "dedup_key", f->ev->dedup_key,
	    "detail", what, "kind", ledger_kind_names[f->ev->kind]));
	ledger_note(r, "notification.conflict", seq);
	ledger_key_order(&k, f->ev->order_id);
	if (ledger_get(t, STORE_DB_ORDERS, &k, &order) == PH_OK) {
		ledger_add_exception(order, f, "notification_conflict",
		    json_pack("{s:s}", "dedup_key", f->ev->dedup_key));
		ledger_put(t, STORE_DB_ORDERS, &k, order);
	}
	json_decref(order);
	r->outcome = LEDGER_CONFLICT;
}

/* A payment may arrive through the order's profile or any profile the
 * merchant opened an attempt with. */
static int
ledger_profile_allowed(const json_t *order, const char *profile)
{
	json_t *a;
	size_t i;

	if (strcmp(ledger_str(order, "profile"), profile) == 0)
		return 1;
	json_array_foreach(json_object_get(order, "attempts"), i, a)
		if (strcmp(ledger_str(a, "profile"), profile) == 0)
			return 1;
	return 0;
}

static void
ledger_payment_succeeded(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *r)
{
	const struct ph_event *ev = f->ev;
	struct store_key pk, ok;
	json_t *pay = NULL, *order = NULL;
	const char *disposition, *paid_txn, *type;
	enum order_verdict verdict;
	struct order_view view;
	struct order_payment pay_in;
	uint64_t seq, refund;
	int state, rc;

	ledger_key_pair(&pk, STORE_KEY_PAYMENT, f->provider, ev->txn_id);
	rc = ledger_get(t, STORE_DB_PAYMENTS, &pk, &pay);
	if (rc == PH_OK && strcmp(ledger_str(pay, "status"), "SUCCEEDED") == 0) {
		/* Known through another path (a query, a statement). */
		if (strcmp(ledger_str(pay, "order_id"), ev->order_id) == 0 &&
		    json_integer_value(json_object_get(pay, "amount")) ==
		    ev->amount &&
		    strcmp(ledger_str(pay, "currency"), ev->currency) == 0)
			r->outcome = LEDGER_DUPLICATE;
		else
			ledger_conflict(t, f, "payment already recorded with "
			    "other facts", r);
		json_decref(pay);
		return;
	}
	json_decref(pay);
	if (rc != PH_OK && rc != PH_E_NOTFOUND)
		return;

	ledger_key_order(&ok, ev->order_id);
	rc = ledger_get(t, STORE_DB_ORDERS, &ok, &order);
	if (rc == PH_E_NOTFOUND) {
		log_warn("payment %s of %lld %s by %s for unknown order %s: "
		    "recorded", ev->txn_id, (long long)ev->amount,
		    ev->currency, f->provider, ev->order_id);
		ledger_payment_record(t, f, &pk, "SUCCEEDED", "unknown_order");
		seq = ledger_emit(t, f, "payment.unknown_order", ev->order_id,
		    NULL);
		ledger_note(r, "payment.unknown_order", seq);
		r->outcome = LEDGER_RECORDED;
		return;
	}
	if (rc != PH_OK)
		return;

	state = order_state_parse(ledger_str(order, "state"));
	paid_txn = json_string_value(json_object_get(order,
	    "provider_txn_id"));
	if (state < 0) {
		t->err = PH_E_STORE;
		log_err("order %s: unknown state \"%s\" in the database",
		    ev->order_id, ledger_str(order, "state"));
		json_decref(order);
		return;
	}
	view.state = state;
	view.amount = json_integer_value(json_object_get(order, "amount"));
	view.currency = ledger_str(order, "currency");
	view.paid_txn = paid_txn;
	pay_in.amount = ev->amount;
	pay_in.currency = ev->currency;
	pay_in.account_ok = ledger_profile_allowed(order, f->profile);
	pay_in.txn_id = ev->txn_id;
	verdict = order_decide_payment(&view, &pay_in);

	switch (verdict) {
	case ORDER_V_SAME:
		r->outcome = LEDGER_DUPLICATE;
		json_decref(order);
		return;
	case ORDER_V_PAY:
		json_object_set_new(order, "state",
		    json_string(order_state_name(ORDER_PAID)));
		json_object_set_new(order, "provider_txn_id",
		    json_string(ev->txn_id));
		json_object_set_new(order, "provider", json_string(f->provider));
		json_object_set_new(order, "paid_through",
		    json_string(f->profile));
		json_object_set_new(order, "paid_at", json_integer(
		    ev->occurred_at > 0 ? ev->occurred_at : f->now));
		json_object_set_new(order, "updated_at", json_integer(f->now));
		if (ev->channel[0] != '\0')
			json_object_set_new(order, "channel",
			    json_string(ev->channel));
		ledger_set_due(t, order, 0);
		ledger_count(t, ORDER_PENDING, -1);
		ledger_count(t, ORDER_PAID, 1);
		disposition = "paid";
		type = "order.paid";
		r->outcome = LEDGER_APPLIED;
		log_info("order %s paid: %lld %s, %s %s", ev->order_id,
		    (long long)ev->amount, ev->currency, f->provider,
		    ev->txn_id);
		seq = ledger_emit(t, f, type, ev->order_id, NULL);
		break;
	case ORDER_V_MISMATCH:
		ledger_add_exception(order, f, "amount_mismatch",
		    json_pack("{s:O, s:O}",
		    "expected_amount", json_object_get(order, "amount"),
		    "expected_currency", json_object_get(order, "currency")));
		disposition = "amount_mismatch";
		type = "order.amount_mismatch";
		r->outcome = LEDGER_RECORDED;
		log_warn("order %s: payment %s of %lld %s does not match the "
		    "order (%lld %s): recorded, order not paid", ev->order_id,
		    ev->txn_id, (long long)ev->amount, ev->currency,
		    (long long)json_integer_value(json_object_get(order,
		    "amount")), ledger_str(order, "currency"));
		seq = ledger_emit(t, f, type, ev->order_id, json_pack(
		    "{s:O, s:O}",
		    "expected_amount", json_object_get(order, "amount"),
		    "expected_currency", json_object_get(order, "currency")));
		break;
	case ORDER_V_PROFILE:
		ledger_add_exception(order, f, "profile_mismatch",
		    json_pack("{s:s, s:O}", "paid_through", f->profile,
		    "expected_profile", json_object_get(order, "profile")));
		disposition = "profile_mismatch";
		type = "order.profile_mismatch";
		r->outcome = LEDGER_RECORDED;
		log_warn("order %s: payment %s of %lld %s arrived through "
		    "profile %s, the order belongs to %s: recorded, order not "
		    "paid", ev->order_id, ev->txn_id, (long long)ev->amount,
		    ev->currency, f->profile, ledger_str(order, "profile"));
		seq = ledger_emit(t, f, type, ev->order_id, json_pack(
		    "{s:O}", "expected_profile",
		    json_object_get(order, "profile")));
		break;
	case ORDER_V_DOUBLE:
	case ORDER_V_LATE:
	default:
		disposition = verdict == ORDER_V_LATE ? "late_payment" :
		    "double_payment";
		type = verdict == ORDER_V_LATE ? "order.late_payment" :
		    "order.double_payment";
		refund = ledger_queue_refund(t, f, disposition);
		ledger_add_exception(order, f, disposition,
		    json_pack("{s:I}", "refund_seq", (json_int_t)refund));
		r->outcome = LEDGER_RECORDED;
		log_warn("order %s: %s %s of %lld %s (paid by %s): recorded, "
		    "refund queued as #%llu", ev->order_id, disposition,
		    ev->txn_id, (long long)ev->amount, ev->currency,
		    paid_txn != NULL ? paid_txn : "-",
		    (unsigned long long)refund);
		seq = ledger_emit(t, f, type, ev->order_id, json_pack(
		    "{s:s?, s:I}", "paid_txn_id", paid_txn,
		    "refund_seq", (json_int_t)refund));
		break;
	}
	ledger_note(r, type, seq);
	ledger_put(t, STORE_DB_ORDERS, &ok, order);
	ledger_payment_record(t, f, &pk, "SUCCEEDED", disposition);
	json_decref(order);
}

static void
ledger_payment_failed(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *r)
{
	const struct ph_event *ev = f->ev;
	struct store_key pk;
	json_t *pay = NULL;
	uint64_t seq;
	int rc;

	if (ev->txn_id[0] != '\0') {
		ledger_key_pair(&pk, STORE_KEY_PAYMENT, f->provider,
		    ev->txn_id);
		rc = ledger_get(t, STORE_DB_PAYMENTS, &pk, &pay);
		/* A failure never overwrites a payment known to succeed. */
		if (rc == PH_E_NOTFOUND)
			ledger_payment_record(t, f, &pk, "FAILED", "failed");
		json_decref(pay);
	}
	log_info("order %s: payment failed at %s (%s)", ev->order_id,
	    f->provider, ev->txn_id[0] != '\0' ? ev->txn_id : "no txn");
	seq = ledger_emit(t, f, "payment.failed", ev->order_id, NULL);
	ledger_note(r, "payment.failed", seq);
	r->outcome = LEDGER_RECORDED;
}

/*
 * Counters of how orders come to be paid, per profile and per source:
 * a rising share learnt by query or statement instead of notification
 * (the 掉单 rate) is how a merchant learns the notify URL broke.  Counted
 * after the commit, so only what is stored counts.
 */
static void
ledger_paid_metrics(const struct ledger_fact *f)
{
	char labels[128];
	int64_t lag = f->now - f->ev->occurred_at;

	snprintf(labels, sizeof(labels), "profile=%s&source=%s", f->profile,
	    f->source);
	metrics_add("payhook_orders_paid_total", labels, 1);
	if (f->ev->occurred_at > 0 && lag >= 0) {
		metrics_add("payhook_payment_lag_seconds_sum", labels,
		    (uint64_t)lag);
		metrics_add("payhook_payment_lag_seconds_count", labels, 1);
	}
}

/* Looks for the dedup key; 1 when it is known with the same digest. */
static int
ledger_seen(struct store_txn *t, const struct store_key *dk,
    const char *digest, int *conflict)
{
	json_t *d = NULL;
	int rc;

	*conflict = 0;
	rc = ledger_get(t, STORE_DB_DEDUP, dk, &d);
	if (rc != PH_OK)
		return 0;
	if (strcmp(ledger_str(d, "digest"), digest) == 0) {
		json_decref(d);
		return 1;
	}
	*conflict = 1;
	json_decref(d);
	return 0;
}

int
ledger_apply(struct store *s, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag)
{
	const struct ph_event *ev = f->ev;
	char digest[2 * PH_SHA256_LEN + 1];
	struct store_txn t;
	struct store_key dk;
	json_t *d;
	int rc, conflict;

	memset(r, 0, sizeof(*r));
	/* Facts about money name their order and currency; an event payhook
	 * does not act on (IGNORED) needs only its dedup key. */
	if (ev->kind >= PH_EV__MAX || ev->dedup_key[0] == '\0' ||
	    (ev->kind != PH_EV_IGNORED &&
	    (!order_id_valid(ev->order_id, strlen(ev->order_id)) ||
	    !ph_currency_valid(ev->currency))) ||
	    ev->amount < 0 || ev->amount > PH_AMOUNT_MAX)
		return ph_fail(diag, PH_E_INTERNAL, "plugin %s gave an "
		    "invalid event (order id \"%s\", dedup key \"%s\")",
		    f->provider, ev->order_id, ev->dedup_key);
	if (ev->kind == PH_EV_PAYMENT_SUCCEEDED && ev->txn_id[0] == '\0')
		return ph_fail(diag, PH_E_INTERNAL, "plugin %s gave a payment "
		    "without transaction id", f->provider);
	ledger_digest(ev, digest);
	ledger_key_pair(&dk, STORE_KEY_DEDUP, f->provider, ev->dedup_key);
	if (dk.err)
		return ph_fail(diag, PH_E_INTERNAL, "dedup key too long");

	/* Retries are the common case: answer them without the writer lock.
	 * What a transaction sees is committed; store_settle() makes sure it
	 * is on disk before it is acknowledged again. */
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if (ledger_seen(&t, &dk, digest, &conflict)) {
		store_abort(&t);
		if ((rc = store_settle(&t)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		r->outcome = LEDGER_DUPLICATE;
		return PH_OK;
	}
	store_abort(&t);

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if (ledger_seen(&t, &dk, digest, &conflict)) {
		store_abort(&t);
		if ((rc = store_settle(&t)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		r->outcome = LEDGER_DUPLICATE;
		return PH_OK;
	}
	if (conflict) {
		ledger_conflict(&t, f, "same dedup key, different payload", r);
	} else {
		d = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}",
		    "v", LEDGER_RECORD_VERSION,
		    "digest", digest,
		    "kind", ledger_kind_names[ev->kind],
		    "order_id", ev->order_id,
		    "source", f->source,
		    "first_seen", (json_int_t)f->now);
		ledger_put(&t, STORE_DB_DEDUP, &dk, d);
		json_decref(d);
		switch (ev->kind) {
		case PH_EV_PAYMENT_SUCCEEDED:
			ledger_payment_succeeded(&t, f, r);
			break;
		case PH_EV_PAYMENT_FAILED:
			ledger_payment_failed(&t, f, r);
			break;
		case PH_EV_REFUND_SUCCEEDED:
		case PH_EV_REFUND_FAILED:
			ledger_refund_fact(&t, f, r);
			break;
		default:
			r->outcome = LEDGER_NOOP;
			break;
		}
	}
	if ((rc = store_commit(&t)) != PH_OK) {
		memset(r, 0, sizeof(*r));
		return ph_fail(diag, rc, "database: %s: %s", ph_strerror(rc),
		    rc == PH_E_STORE_FULL ? "raise map_size_mb" :
		    "see the log");
	}
	if (strcmp(r->event_type, "order.paid") == 0)
		ledger_paid_metrics(f);
	return PH_OK;
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
	MDB_val v;
	char buf[24];

	ledger_key_count(&k, state);
	if (store_get(t, STORE_DB_META, &k, &v) != PH_OK || v.mv_size == 0 ||
	    v.mv_size >= sizeof(buf))
		return 0;
	memcpy(buf, v.mv_data, v.mv_size);
	buf[v.mv_size] = '\0';
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
	MDB_cursor *c;
	MDB_val key, val;
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
	if ((c = store_cursor(&t, STORE_DB_ORDERS)) == NULL) {
		rc = t.err;
		store_abort(&t);
		return rc;
	}
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if ((o = ledger_load(&val)) == NULL)
			continue;
		if ((i = order_state_parse(ledger_str(o, "state"))) >= 0)
			counts[i]++;
		json_decref(o);
	}
	mdb_cursor_close(c);
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
	MDB_cursor *c;
	MDB_val key, val;
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
	if ((c = store_cursor(&t, STORE_DB_EVENTS)) == NULL) {
		rc = t.err;
		goto done;
	}
	store_key_init(&k, 0);
	store_key_u64(&k, after == UINT64_MAX ? after : after + 1);
	key.mv_data = k.b;
	key.mv_size = k.len;
	rc = after == UINT64_MAX ? MDB_NOTFOUND :
	    mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && json_array_size(arr) < limit) {
		if ((e = ledger_load(&val)) == NULL) {
			rc = -1;
			break;
		}
		json_array_append_new(arr, e);
		*next = store_key_get_u64(&key);
		rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(c);
	rc = rc == 0 || rc == MDB_NOTFOUND ? PH_OK : PH_E_STORE;
done:
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
	MDB_cursor *c;
	MDB_val key, val;
	json_t *arr, *o;
	int rc;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return PH_E_NOMEM;
	if ((rc = store_begin(s, 0, &t)) != PH_OK) {
		json_decref(arr);
		return rc;
	}
	if ((c = store_cursor(&t, STORE_DB_ORDERS)) == NULL) {
		rc = t.err;
		store_abort(&t);
		json_decref(arr);
		return rc;
	}
	ledger_key_order(&k, after);
	key.mv_data = k.b;
	key.mv_size = k.len;
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	if (rc == 0 && *after != '\0' && key.mv_size == k.len &&
	    memcmp(key.mv_data, k.b, k.len) == 0)
		rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
	for (; rc == 0 && json_array_size(arr) < limit;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if ((o = ledger_load(&val)) == NULL)
			continue;
		if (state == NULL || strcmp(ledger_str(o, "state"), state) == 0)
			json_array_append_new(arr, o);
		else
			json_decref(o);
	}
	mdb_cursor_close(c);
	store_abort(&t);
	if ((rc != 0 && rc != MDB_NOTFOUND) || store_settle(&t) != PH_OK) {
		json_decref(arr);
		return PH_E_STORE;
	}
	*out = arr;
	return PH_OK;
}

int
ledger_prune_dedup(struct store *s, int64_t before, size_t *removed)
{
	struct store_txn t;
	MDB_cursor *c;
	MDB_val key, val;
	unsigned char resume[STORE_KEY_MAX];
	size_t batch, resume_len = 0;
	json_t *d;
	int rc, more = 1;

	*removed = 0;
	/* Short transactions: the FastCGI processes must not wait on us. */
	while (more) {
		if ((rc = store_begin(s, 1, &t)) != PH_OK)
			return rc;
		if ((c = store_cursor(&t, STORE_DB_DEDUP)) == NULL) {
			rc = t.err;
			store_abort(&t);
			return rc;
		}
		batch = 0;
		more = 0;
		key.mv_data = resume;
		key.mv_size = resume_len;
		rc = resume_len == 0 ? mdb_cursor_get(c, &key, &val, MDB_FIRST) :
		    mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		for (; rc == 0; rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			/* Where to go on from, copied before a delete. */
			if (key.mv_size <= sizeof(resume)) {
				memcpy(resume, key.mv_data, key.mv_size);
				resume_len = key.mv_size;
			}
			if ((d = ledger_load(&val)) == NULL)
				continue;
			if (json_integer_value(json_object_get(d,
			    "first_seen")) < before) {
				if ((rc = mdb_cursor_del(c, 0)) != 0) {
					json_decref(d);
					break;
				}
				batch++;
			}
			json_decref(d);
			if (batch == 1000) {
				/* Go on from here in the next transaction. */
				more = 1;
				break;
			}
		}
		mdb_cursor_close(c);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			store_fail(&t, rc);
			store_abort(&t);
			return t.err;
		}
		if ((rc = store_commit(&t)) != PH_OK)
			return rc;
		*removed += batch;
	}
	return PH_OK;
}

/* ---- Batches for reconciliation ------------------------------------------ */

#define LEDGER_BATCH_ROWS 2000
#define LEDGER_KEY_SEEN 'S'
#define LEDGER_KEY_ALARM 'A'

int
ledger_batch_begin(struct ledger_batch *b, struct store *s)
{
	int rc;

	memset(b, 0, sizeof(*b));
	b->s = s;
	if ((rc = store_begin(s, 1, &b->t)) == PH_OK)
		b->open = 1;
	return rc;
}

int
ledger_batch_flush(struct ledger_batch *b)
{
	int rc;

	if (b->open && (rc = store_commit(&b->t)) != PH_OK) {
		b->open = 0;
		return rc;
	}
	b->open = 0;
	b->n = 0;
	if ((rc = store_begin(b->s, 1, &b->t)) == PH_OK)
		b->open = 1;
	return rc;
}

int
ledger_batch_end(struct ledger_batch *b)
{
	int rc = PH_OK;

	if (b->open)
		rc = store_commit(&b->t);
	b->open = 0;
	return rc;
}

/* Counts a row; commits every LEDGER_BATCH_ROWS so writers elsewhere wait
 * no longer than that. */
static void
ledger_batch_row(struct ledger_batch *b)
{
	/* Never under an open cursor: ledger_batch_payments flushes. */
	if (++b->n >= LEDGER_BATCH_ROWS && !b->scanning)
		ledger_batch_flush(b);
}

int
ledger_batch_payment(struct ledger_batch *b, const char *provider,
    const char *txn_id, json_t **pay)
{
	struct store_key k;

	*pay = NULL;
	if (!b->open)
		return PH_E_STORE;
	ledger_key_pair(&k, STORE_KEY_PAYMENT, provider, txn_id);
	if (k.err)
		return PH_E_NOTFOUND;
	return ledger_get(&b->t, STORE_DB_PAYMENTS, &k, pay);
}

int
ledger_batch_refund(struct ledger_batch *b, const char *refund_id,
    json_t **item)
{
	struct store_key k;
	uint64_t seq = 0;
	size_t i;

	*item = NULL;
	if (!b->open)
		return PH_E_STORE;
	if (strncmp(refund_id, "phr", 3) != 0 || strlen(refund_id) != 16)
		return PH_E_NOTFOUND;
	for (i = 3; refund_id[i] != '\0'; i++) {
		if (refund_id[i] < '0' || refund_id[i] > '9')
			return PH_E_NOTFOUND;
		seq = seq * 10 + (uint64_t)(refund_id[i] - '0');
	}
	store_key_init(&k, 0);
	store_key_u64(&k, seq);
	return ledger_get(&b->t, STORE_DB_REFUNDS, &k, item);
}

static void
ledger_key_recon(struct store_key *k, unsigned char klass, const char *run,
    const char *txn_id, const char *type)
{
	store_key_init(k, klass);
	store_key_str(k, run);
	store_key_str(k, txn_id);
	if (type != NULL)
		store_key_str(k, type);
}

int
ledger_batch_clear(struct ledger_batch *b, const char *run)
{
	struct store_key k;
	MDB_cursor *c;
	MDB_val key, val;
	int rc;

	if (!b->open)
		return PH_E_STORE;
	store_key_init(&k, LEDGER_KEY_SEEN);
	store_key_str(&k, run);
	for (;;) {
		size_t n = 0;

		if ((c = store_cursor(&b->t, STORE_DB_RECON)) == NULL)
			return b->t.err;
		key.mv_data = k.b;
		key.mv_size = k.len;
		for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		    rc == 0 && key.mv_size >= k.len &&
		    memcmp(key.mv_data, k.b, k.len) == 0 &&
		    n < LEDGER_BATCH_ROWS;
		    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
			n++;
		}
		mdb_cursor_close(c);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_fail(&b->t, rc);
		if (n < LEDGER_BATCH_ROWS)
			return PH_OK;
		if ((rc = ledger_batch_flush(b)) != PH_OK)
			return rc;
	}
}

void
ledger_batch_mark(struct ledger_batch *b, const char *run, const char *txn_id)
{
	struct store_key k;

	if (!b->open)
		return;
	ledger_key_recon(&k, LEDGER_KEY_SEEN, run, txn_id, NULL);
	store_put(&b->t, STORE_DB_RECON, &k, "", 0);
	ledger_batch_row(b);
}

int
ledger_batch_seen(struct ledger_batch *b, const char *run, const char *txn_id)
{
	struct store_key k;
	MDB_val v;

	if (!b->open)
		return 0;
	ledger_key_recon(&k, LEDGER_KEY_SEEN, run, txn_id, NULL);
	return store_get(&b->t, STORE_DB_RECON, &k, &v) == PH_OK;
}

void
ledger_batch_alarm(struct ledger_batch *b, const char *run, const char *type,
    const char *profile, const char *provider, const struct ph_event *ev,
    json_t *extra, int64_t now)
{
	struct ledger_fact f;
	struct store_key k;
	MDB_val v;

	if (!b->open) {
		json_decref(extra);
		return;
	}
	ledger_key_recon(&k, LEDGER_KEY_ALARM, run, ev->txn_id, type);
	if (store_get(&b->t, STORE_DB_RECON, &k, &v) == PH_OK) {
		json_decref(extra);
		return;		/* raised by an earlier run */
	}
	store_put(&b->t, STORE_DB_RECON, &k, "", 0);
	f.profile = profile;
	f.provider = provider;
	f.source = "statement";
	f.ev = ev;
	f.now = now;
	log_warn("reconcile %s: %s: order %s, txn %s, %lld %s", run, type,
	    ev->order_id, ev->txn_id, (long long)ev->amount, ev->currency);
	ledger_emit(&b->t, &f, type, ev->order_id, extra);
	ledger_batch_row(b);
}

int
ledger_batch_payments(struct ledger_batch *b, const char *provider,
    int (*fn)(struct ledger_batch *b, const json_t *pay, void *arg),
    void *arg)
{
	unsigned char resume[STORE_KEY_MAX];
	size_t resume_len, n;
	struct store_key k;
	MDB_cursor *c;
	MDB_val key, val;
	json_t *p;
	int rc = 0, stop = 0, first = 1;

	store_key_init(&k, STORE_KEY_PAYMENT);
	store_key_str(&k, provider);
	memcpy(resume, k.b, k.len);
	resume_len = k.len;
	while (!stop) {
		if (!b->open)
			return PH_E_STORE;
		if ((c = store_cursor(&b->t, STORE_DB_PAYMENTS)) == NULL)
			return b->t.err;
		key.mv_data = resume;
		key.mv_size = resume_len;
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		/* Resuming: skip the record the last chunk ended on. */
		if (!first && rc == 0 && key.mv_size == resume_len &&
		    memcmp(key.mv_data, resume, resume_len) == 0)
			rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
		first = 0;
		b->scanning = 1;
		for (n = 0; rc == 0 && !stop && n < LEDGER_BATCH_ROWS &&
		    key.mv_size > k.len && memcmp(key.mv_data, k.b, k.len) == 0;
		    n++, rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			if (key.mv_size <= sizeof(resume)) {
				memcpy(resume, key.mv_data, key.mv_size);
				resume_len = key.mv_size;
			}
			if ((p = ledger_load(&val)) == NULL)
				continue;
			stop = fn(b, p, arg);
			json_decref(p);
		}
		b->scanning = 0;
		mdb_cursor_close(c);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_fail(&b->t, rc);
		if (n < LEDGER_BATCH_ROWS || stop)
			break;
		if ((rc = ledger_batch_flush(b)) != PH_OK)
			return rc;
	}
	return b->t.err;
}
