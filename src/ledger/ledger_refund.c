/*
 * Refunds in the ledger: the work list (double payments, late payments,
 * refunds the merchant asks for), the runner's leases, and what the
 * providers answer.  A refund never exceeds what was paid: the order keeps
 * the total requested (and not failed) and the total refunded.
 *
 * Order fields: "refund_requested" (minor units, not failed), "refunded"
 * (succeeded).  Work item states: PENDING (not yet accepted by the
 * provider), PROCESSING (accepted, result to come), SUCCEEDED, FAILED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ops/log.h"
#include "ledger/order.h"

void
ledger_refund_id(uint64_t seq, char out[24])
{
	snprintf(out, 24, "phr%013llu", (unsigned long long)seq);
}

/* The work item seq a payhook refund id names, or 0. */
static uint64_t
ledger_refund_seq(const char *id)
{
	uint64_t seq = 0;
	size_t i;

	if (strncmp(id, "phr", 3) != 0 || strlen(id) != 16)
		return 0;
	for (i = 3; id[i] != '\0'; i++) {
		if (id[i] < '0' || id[i] > '9')
			return 0;
		seq = seq * 10 + (uint64_t)(id[i] - '0');
	}
	return seq;
}

static void
ledger_key_seq(struct store_key *k, uint64_t seq)
{
	store_key_init(k, 0);
	store_key_u64(k, seq);
}

static uint64_t
ledger_put_refund(struct store_txn *t, const char *reason,
    const char *order_id, const char *profile, const char *provider,
    const char *txn_id, int64_t amount, int64_t payment_amount,
    const char *currency, int64_t now)
{
	struct store_key k;
	char id[24];
	uint64_t seq;
	json_t *r;

	if ((seq = store_next_seq(t, STORE_DB_REFUNDS)) == 0)
		return 0;
	ledger_refund_id(seq, id);
	r = json_pack("{s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
	    "s:s, s:s, s:I, s:I, s:i, s:n, s:n}",
	    "v", LEDGER_RECORD_VERSION,
	    "seq", (json_int_t)seq,
	    "refund_id", id,
	    "reason", reason,
	    "order_id", order_id,
	    "profile", profile,
	    "provider", provider,
	    "provider_txn_id", txn_id,
	    "amount", (json_int_t)amount,
	    "payment_amount", (json_int_t)payment_amount,
	    "currency", currency,
	    "state", "PENDING",
	    "created_at", (json_int_t)now,
	    "updated_at", (json_int_t)now,
	    "tries", 0,
	    "provider_refund_id",
	    "last_error");
	ledger_key_seq(&k, seq);
	ledger_put(t, STORE_DB_REFUNDS, &k, r);
	json_decref(r);
	return seq;
}

/* Raises a refund.* event about work item r. */
static uint64_t
ledger_refund_event_new(struct store_txn *t, const json_t *r,
    enum ledger_event type, const char *source, int64_t now, json_t *extra)
{
	struct ledger_fact f;
	struct ph_event ev;
	json_t *x;

	memset(&ev, 0, sizeof(ev));
	ev.kind = PH_EV_REFUND_SUCCEEDED;
	snprintf(ev.order_id, sizeof(ev.order_id), "%s",
	    ledger_str(r, "order_id"));
	snprintf(ev.txn_id, sizeof(ev.txn_id), "%s",
	    ledger_str(r, "provider_txn_id"));
	ev.amount = json_integer_value(json_object_get(r, "amount"));
	snprintf(ev.currency, sizeof(ev.currency), "%s",
	    ledger_str(r, "currency"));
	f.profile = ledger_str(r, "profile");
	f.provider = ledger_str(r, "provider");
	f.source = source;
	f.ev = &ev;
	f.now = now;
	x = json_pack("{s:s, s:s, s:I}", "refund_id", ledger_str(r,
	    "refund_id"), "reason", ledger_str(r, "reason"), "refund_seq",
	    json_integer_value(json_object_get(r, "seq")));
	if (x != NULL && extra != NULL)
		json_object_update(x, extra);
	json_decref(extra);
	return ledger_emit_new(t, &f, type, ev.order_id, x);
}

/* The event that queues it (order.double_payment, order.late_payment)
 * names the refund: no separate refund.requested. */
uint64_t
ledger_queue_refund(struct store_txn *t, const struct ledger_fact *f,
    const char *reason)
{
	const struct ph_event *ev = f->ev;

	return ledger_put_refund(t, reason, ev->order_id, f->profile,
	    f->provider, ev->txn_id, ev->amount, ev->amount, ev->currency,
	    f->now);
}

/* The order's state from its refund totals, once a refund moved. */
static void
ledger_order_refund_state(struct store_txn *t, json_t *order, int64_t now)
{
	int64_t paid = json_integer_value(json_object_get(order, "amount"));
	int64_t asked = json_integer_value(json_object_get(order,
	    "refund_requested"));
	int64_t done = json_integer_value(json_object_get(order, "refunded"));
	int from = order_state_parse(ledger_str(order, "state")), to;

	if (done >= paid && paid > 0)
		to = ORDER_REFUNDED;
	else if (asked > done)
		to = ORDER_REFUNDING;
	else
		to = ORDER_PAID;
	if (from == to || from < 0 || from == ORDER_PENDING ||
	    from == ORDER_CLOSED)
		return;
	json_object_set_new(order, "state", json_string(order_state_name(to)));
	json_object_set_new(order, "updated_at", json_integer(now));
	ledger_count(t, from, -1);
	ledger_count(t, to, 1);
}

int
ledger_request_refund(struct store *s, const char *order_id, int64_t amount,
    const char *reason, int64_t now, json_t **item, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key ok, rk;
	json_t *order = NULL;
	int64_t paid, asked;
	const char *txn;
	uint64_t seq;
	int rc, st;

	*item = NULL;
	ledger_key_order(&ok, order_id);
	if (ok.err)
		return PH_E_NOTFOUND;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if ((rc = ledger_get(&t, STORE_DB_ORDERS, &ok, &order)) != PH_OK) {
		store_abort(&t);
		return rc == PH_E_NOTFOUND ? rc :
		    ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	}
	st = order_state_parse(ledger_str(order, "state"));
	txn = json_string_value(json_object_get(order, "provider_txn_id"));
	if ((st != ORDER_PAID && st != ORDER_REFUNDING) || txn == NULL) {
		rc = ph_fail(diag, PH_E_CONFLICT, "order %s is %s: only a paid "
		    "order can be refunded", order_id,
		    ledger_str(order, "state"));
		goto fail;
	}
	paid = json_integer_value(json_object_get(order, "amount"));
	asked = json_integer_value(json_object_get(order, "refund_requested"));
	if (amount <= 0 || amount > paid - asked) {
		rc = ph_fail(diag, PH_E_CONFLICT, "order %s: refunding %lld "
		    "would exceed what was paid (%lld paid, %lld already "
		    "asked)", order_id, (long long)amount, (long long)paid,
		    (long long)asked);
		goto fail;
	}
	seq = ledger_put_refund(&t, "merchant", order_id,
	    ledger_str(order, "paid_through")[0] != '\0' ?
	    ledger_str(order, "paid_through") : ledger_str(order, "profile"),
	    ledger_str(order, "provider"), txn, amount, paid,
	    ledger_str(order, "currency"), now);
	json_object_set_new(order, "refund_requested",
	    json_integer(asked + amount));
	ledger_order_refund_state(&t, order, now);
	ledger_put(&t, STORE_DB_ORDERS, &ok, order);
	ledger_key_seq(&rk, seq);
	if (seq != 0 && ledger_get(&t, STORE_DB_REFUNDS, &rk, item) == PH_OK) {
		json_object_set_new(*item, "merchant_reason",
		    json_string(reason));
		ledger_put(&t, STORE_DB_REFUNDS, &rk, *item);
		ledger_refund_event_new(&t, *item, LEDGER_EV_REFUND_REQUESTED, "api", now,
		    NULL);
	}
	if ((rc = store_commit(&t)) != PH_OK) {
		json_decref(*item);
		*item = NULL;
		json_decref(order);
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	}
	log_info("order %s: refund %llu of %lld requested (%s)", order_id,
	    (unsigned long long)seq, (long long)amount, reason);
	json_decref(order);
	return PH_OK;
fail:
	store_abort(&t);
	json_decref(order);
	return rc;
}

static int
ledger_refund_scan(struct store *s, uint64_t after, size_t limit,
    int open_only, json_t **items)
{
	struct store_txn t;
	struct store_key k;
	struct store_scan sc;
	json_t *arr, *r;
	int rc;

	*items = NULL;
	if ((arr = json_array()) == NULL)
		return PH_E_NOMEM;
	if ((rc = store_begin(s, 0, &t)) != PH_OK) {
		json_decref(arr);
		return rc;
	}
	ledger_key_seq(&k, after + 1);
	store_scan_begin(&sc, &t, STORE_DB_REFUNDS, &k);
	while (json_array_size(arr) < limit && store_scan_next(&sc)) {
		const char *st;

		if ((r = ledger_load(&sc.val)) == NULL)
			continue;
		st = ledger_str(r, "state");
		if (!open_only || strcmp(st, "PENDING") == 0 ||
		    strcmp(st, "PROCESSING") == 0)
			json_array_append_new(arr, r);
		else
			json_decref(r);
	}
	store_scan_end(&sc);
	rc = t.err;
	store_abort(&t);
	if (rc != PH_OK) {
		json_decref(arr);
		return rc;
	}
	*items = arr;
	return PH_OK;
}

int
ledger_refunds_due(struct store *s, size_t limit, json_t **items)
{
	return ledger_refund_scan(s, 0, limit, 1, items);
}

int
ledger_refunds_list(struct store *s, uint64_t after, size_t limit,
    json_t **items)
{
	return ledger_refund_scan(s, after, limit, 0, items);
}

int
ledger_refund_lease(struct store *s, uint64_t seq, int64_t now,
    int64_t lease_s, const char *token, json_t **item)
{
	struct store_txn t;
	struct store_key k;
	json_t *u;
	const char *st;
	int rc;

	*item = NULL;
	ledger_key_seq(&k, seq);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	if ((rc = ledger_get(&t, STORE_DB_REFUNDS, &k, item)) != PH_OK) {
		store_abort(&t);
		return rc;
	}
	st = ledger_str(*item, "state");
	u = json_object_get(*item, "lease_until");
	if ((strcmp(st, "PENDING") != 0 && strcmp(st, "PROCESSING") != 0) ||
	    (json_is_integer(u) && json_integer_value(u) > now &&
	    strcmp(ledger_str(*item, "lease_owner"), token) != 0)) {
		store_abort(&t);
		return PH_E_CONFLICT;
	}
	json_object_set_new(*item, "lease_until", json_integer(now + lease_s));
	json_object_set_new(*item, "lease_owner", json_string(token));
	json_object_set_new(*item, "tries", json_integer(json_integer_value(
	    json_object_get(*item, "tries")) + 1));
	ledger_put(&t, STORE_DB_REFUNDS, &k, *item);
	return store_commit(&t);
}

/*
 * Moves item r (stored at k) to SUCCEEDED or FAILED and carries it to its
 * order.  Returns the event raised, or LEDGER_EV_NONE when it was settled
 * already (a repeat changes nothing).
 */
static enum ledger_event
ledger_refund_settle(struct store_txn *t, const struct store_key *k,
    json_t *r, int succeeded, const char *provider_refund_id,
    const char *source, int64_t now, uint64_t *seq_out)
{
	const char *st = ledger_str(r, "state");
	enum ledger_event type;
	struct store_key ok;
	json_t *order = NULL, *e;
	int64_t amount = json_integer_value(json_object_get(r, "amount"));
	size_t i;

	if (strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0)
		return LEDGER_EV_NONE;
	json_object_set_new(r, "state", json_string(succeeded ? "SUCCEEDED" :
	    "FAILED"));
	json_object_set_new(r, "updated_at", json_integer(now));
	json_object_del(r, "lease_until");
	json_object_del(r, "lease_owner");
	if (provider_refund_id != NULL && *provider_refund_id != '\0')
		json_object_set_new(r, "provider_refund_id",
		    json_string(provider_refund_id));
	ledger_put(t, STORE_DB_REFUNDS, k, r);

	ledger_key_order(&ok, ledger_str(r, "order_id"));
	if (ledger_get(t, STORE_DB_ORDERS, &ok, &order) == PH_OK) {
		if (strcmp(ledger_str(r, "reason"), "merchant") == 0) {
			/* A refund of the payment that paid the order. */
			if (succeeded)
				json_object_set_new(order, "refunded",
				    json_integer(json_integer_value(
				    json_object_get(order, "refunded")) +
				    amount));
			else
				json_object_set_new(order, "refund_requested",
				    json_integer(json_integer_value(
				    json_object_get(order,
				    "refund_requested")) - amount));
			ledger_order_refund_state(t, order, now);
		} else {
			/* The refund of an extra payment: its exception. */
			json_array_foreach(json_object_get(order,
			    "exceptions"), i, e)
				if (json_integer_value(json_object_get(e,
				    "refund_seq")) == json_integer_value(
				    json_object_get(r, "seq")))
					json_object_set_new(e, "refund_state",
					    json_string(succeeded ?
					    "SUCCEEDED" : "FAILED"));
			json_object_set_new(order, "updated_at",
			    json_integer(now));
		}
		ledger_put(t, STORE_DB_ORDERS, &ok, order);
	}
	json_decref(order);
	type = succeeded ? LEDGER_EV_REFUND_SUCCEEDED : LEDGER_EV_REFUND_FAILED;
	*seq_out = ledger_refund_event_new(t, r, type, source, now,
	    provider_refund_id != NULL && *provider_refund_id != '\0' ?
	    json_pack("{s:s}", "provider_refund_id", provider_refund_id) :
	    NULL);
	log_info("refund %s of order %s: %s", ledger_str(r, "refund_id"),
	    ledger_str(r, "order_id"), succeeded ? "succeeded" : "failed");
	return type;
}

int
ledger_refund_result(struct store *s, uint64_t seq, const char *token,
    int err, const char *message, const struct ph_event *ev, int64_t now,
    struct ledger_result *res)
{
	struct store_txn t;
	struct store_key k;
	json_t *r = NULL;
	enum ledger_event type;
	uint64_t eseq = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	ledger_key_seq(&k, seq);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	if ((rc = ledger_get(&t, STORE_DB_REFUNDS, &k, &r)) != PH_OK) {
		store_abort(&t);
		return rc;
	}
	if (err != PH_OK || ev->kind == PH_EV_PAYMENT_PENDING) {
		/*
		 * Not settled by this answer: note why, let the lease go, try
		 * later.  A refund notification may have settled the item
		 * while the answer was on its way: that state stays.
		 */
		const char *st = ledger_str(r, "state");
		int settled = strcmp(st, "SUCCEEDED") == 0 ||
		    strcmp(st, "FAILED") == 0;

		if (err == PH_OK && !settled)
			json_object_set_new(r, "state",
			    json_string("PROCESSING"));
		if (!settled) {
			json_object_set_new(r, "last_error", err != PH_OK ?
			    json_string(message) : json_null());
			json_object_set_new(r, "updated_at",
			    json_integer(now));
		}
		if (strcmp(ledger_str(r, "lease_owner"), token) == 0) {
			json_object_del(r, "lease_until");
			json_object_del(r, "lease_owner");
		}
		ledger_put(&t, STORE_DB_REFUNDS, &k, r);
		res->outcome = LEDGER_NOOP;
	} else {
		type = ledger_refund_settle(&t, &k, r,
		    ev->kind == PH_EV_REFUND_SUCCEEDED, ev->refund_id, "refund",
		    now, &eseq);
		res->outcome = type != LEDGER_EV_NONE ? LEDGER_APPLIED :
		    LEDGER_DUPLICATE;
		ledger_note(res, type, eseq);
	}
	json_decref(r);
	return store_commit(&t);
}

void
ledger_refund_fact(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *res)
{
	const struct ph_event *ev = f->ev;
	struct store_key k;
	enum ledger_event type;
	uint64_t seq = ledger_refund_seq(ev->merchant_refund_id), eseq = 0;
	json_t *r = NULL;

	ledger_key_seq(&k, seq);
	if (seq == 0 || ledger_get(t, STORE_DB_REFUNDS, &k, &r) != PH_OK ||
	    strcmp(ledger_str(r, "provider_txn_id"), ev->txn_id) != 0 ||
	    json_integer_value(json_object_get(r, "amount")) != ev->amount) {
		/* Not a refund payhook asked for, or not as it asked. */
		if (t->err != PH_OK) {
			json_decref(r);
			return;
		}
		log_warn("refund %s (%s) of %lld %s on %s from %s matches no "
		    "refund payhook asked for: recorded", ev->refund_id,
		    ev->merchant_refund_id, (long long)ev->amount,
		    ev->currency, ev->txn_id, f->provider);
		seq = ledger_emit_new(t, f, LEDGER_EV_REFUND_UNMATCHED, ev->order_id,
		    json_pack("{s:s, s:s}", "provider_refund_id",
		    ev->refund_id, "refund_id", ev->merchant_refund_id));
		ledger_note(res, LEDGER_EV_REFUND_UNMATCHED, seq);
		res->outcome = LEDGER_RECORDED;
		json_decref(r);
		return;
	}
	type = ledger_refund_settle(t, &k, r, ev->kind ==
	    PH_EV_REFUND_SUCCEEDED, ev->refund_id, f->source, f->now, &eseq);
	res->outcome = type != LEDGER_EV_NONE ? LEDGER_APPLIED :
	    LEDGER_DUPLICATE;
	ledger_note(res, type, eseq);
	json_decref(r);
}
