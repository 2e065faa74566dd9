/*
 * Refunds in the ledger: the work list (double payments, late payments,
 * refunds the merchant asks for), the runner's leases, and what the
 * providers answer.  A refund never exceeds what was paid: the order keeps
 * the total requested (neither failed nor cancelled) and the total
 * refunded, and the sequence numbers of its refunds ("refunds").
 *
 * A refund is found by its sequence number (STORE_DB_REFUNDS) or by its
 * id (STORE_DB_REFUND_IDS: id -> sequence).  The id is the merchant's, or
 * one payhook mints: "phr", the first 12 digits of the store's epoch and
 * the sequence number, so that no id is ever minted twice, not even
 * after a restore.  A merchant may have taken that id for a refund of its
 * own already: then "n" and a count follow, until the id is free (no
 * id minted without them has an "n" there).  It is the id the provider is
 * sent, which makes the provider's own idempotency cover a runner that
 * dies after sending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ops/log.h"
#include "ops/text.h"
#include "ledger/order.h"

static const char *const ledger_refund_state_names[LEDGER_REFUND__MAX] = {
	"PENDING", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELLED",
};

const char *
ledger_refund_state_name(enum ledger_refund_state st)
{
	return st < LEDGER_REFUND__MAX ? ledger_refund_state_names[st] : "?";
}

int
ledger_refund_state_parse(const char *name)
{
	return text_name_find(ledger_refund_state_names, LEDGER_REFUND__MAX,
	    name, 0);
}

/* The state of work item r, or -1 when the record says none known. */
static int
ledger_refund_state(const json_t *r)
{
	return ledger_refund_state_parse(ledger_str(r, "state"));
}

static int
ledger_refund_settled(const json_t *r)
{
	int st = ledger_refund_state(r);

	return st == LEDGER_REFUND_SUCCEEDED || st == LEDGER_REFUND_FAILED ||
	    st == LEDGER_REFUND_CANCELLED;
}

int
ledger_refund_id_valid(const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len > LEDGER_REFUND_ID_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != '\0' &&
		    strchr("_-|*@.", c) != NULL)))
			return 0;
	}
	return 1;
}

static void
ledger_key_seq(struct store_key *k, uint64_t seq)
{
	store_key_init(k, 0);
	store_key_u64(k, seq);
}

static void
ledger_key_refund_id(struct store_key *k, const char *id)
{
	store_key_init(k, 0);
	store_key_str(k, id);
}

/* The sequence number of the refund with this id, or 0. */
static uint64_t
ledger_refund_seq(struct store_txn *t, const char *id)
{
	struct store_key k;
	struct store_val v;

	ledger_key_refund_id(&k, id);
	if (k.err || store_get(t, STORE_DB_REFUND_IDS, &k, &v) != PH_OK ||
	    v.len != 8)
		return 0;
	return store_key_get_u64(&v);
}

/* The refund with this id and its key; PH_OK, PH_E_NOTFOUND or an error. */
static int
ledger_refund_by_id(struct store_txn *t, const char *id, struct store_key *k,
    json_t **r)
{
	uint64_t seq = ledger_refund_seq(t, id);

	*r = NULL;
	if (seq == 0)
		return t->err != PH_OK ? t->err : PH_E_NOTFOUND;
	ledger_key_seq(k, seq);
	return ledger_get(t, STORE_DB_REFUNDS, k, r);
}

int
ledger_refund_get_txn(struct store_txn *t, const char *refund_id,
    json_t **item)
{
	struct store_key k;

	return ledger_refund_by_id(t, refund_id, &k, item);
}

int
ledger_refund_of_extra(struct store_txn *t, const json_t *order,
    const char *profile, const char *txn_id, json_t **item)
{
	json_t *ex = json_object_get(order, "exceptions"), *e, *r;
	struct store_key k;
	size_t i;
	int rc;

	*item = NULL;
	for (i = 0; i < json_array_size(ex); i++) {
		e = json_array_get(ex, i);
		if (json_object_get(e, "refund_seq") == NULL ||
		    strcmp(ledger_str(e, "provider_txn_id"), txn_id) != 0)
			continue;
		ledger_key_seq(&k, (uint64_t)json_integer_value(
		    json_object_get(e, "refund_seq")));
		if ((rc = ledger_get(t, STORE_DB_REFUNDS, &k, &r)) ==
		    PH_E_NOTFOUND)
			continue;
		if (rc != PH_OK)
			return rc;
		/* One transaction id may be two profiles' payments. */
		if (strcmp(ledger_str(r, "profile"), profile) == 0 &&
		    strcmp(ledger_str(r, "provider_txn_id"), txn_id) == 0) {
			*item = r;
			return PH_OK;
		}
		json_decref(r);
	}
	return PH_E_NOTFOUND;
}

void
ledger_refund_index(struct store_txn *t, const char *id, uint64_t seq)
{
	struct store_key k, v;

	ledger_key_refund_id(&k, id);
	ledger_key_seq(&v, seq);
	store_put(t, STORE_DB_REFUND_IDS, &k, v.b, v.len);
}

/* A refund id for refund seq that no refund has: into id (cap bytes, at
 * least LEDGER_REFUND_ID_MAX + 1); PH_OK, or the failure t holds. */
static int
ledger_refund_mint(struct store_txn *t, uint64_t seq, char *id, size_t cap)
{
	unsigned n;

	snprintf(id, cap, "phr%.12s%llu", store_epoch(t->store),
	    (unsigned long long)seq);
	/* Letters and digits only: what every provider takes. */
	for (n = 1; ledger_refund_seq(t, id) != 0; n++)
		snprintf(id, cap, "phr%.12s%llun%u", store_epoch(t->store),
		    (unsigned long long)seq, n);
	return t->err;
}

/* Adds refund seq to the order's list (once). */
void
ledger_order_add_refund(struct store_txn *t, json_t *order, uint64_t seq)
{
	json_t *list = json_object_get(order, "refunds"), *v;
	size_t i;

	if (!json_is_array(list)) {
		list = json_array();
		if (json_object_set_new(order, "refunds", list) != 0)
			list = NULL;
	}
	if (list == NULL) {
		t->err = t->err != PH_OK ? t->err : PH_E_NOMEM;
		return;
	}
	json_array_foreach(list, i, v)
		if ((uint64_t)json_integer_value(v) == seq)
			return;
	if (json_array_append_new(list, json_integer((json_int_t)seq)) != 0 &&
	    t->err == PH_OK)
		t->err = PH_E_NOMEM;
}

/*
 * Puts a new work item on the list and on order's list of refunds (the
 * caller puts order back); refund_id NULL mints one.  Its sequence
 * number, 0 on failure (t has the error).
 */
static uint64_t
ledger_put_refund(struct store_txn *t, json_t *order, const char *reason,
    const char *refund_id, const char *profile, const char *provider,
    const char *txn_id, int64_t amount, int64_t payment_amount,
    const char *currency, int64_t now)
{
	struct store_key k;
	char id[LEDGER_REFUND_ID_MAX + 1];
	uint64_t seq;
	json_t *r;

	if ((seq = store_next_seq(t, STORE_DB_REFUNDS)) == 0)
		return 0;
	if (refund_id != NULL)
		ph_strlcpy(id, refund_id, sizeof(id));
	else if (ledger_refund_mint(t, seq, id, sizeof(id)) != PH_OK)
		return 0;
	r = json_pack("{s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
	    "s:s, s:s, s:I, s:I, s:i, s:n, s:n, s:n}",
	    "v", LEDGER_RECORD_VERSION,
	    "seq", (json_int_t)seq,
	    "refund_id", id,
	    "reason", reason,
	    "order_id", ledger_str(order, "order_id"),
	    "profile", profile,
	    "provider", provider,
	    "provider_txn_id", txn_id,
	    "amount", (json_int_t)amount,
	    "payment_amount", (json_int_t)payment_amount,
	    "currency", currency,
	    "state", ledger_refund_state_name(LEDGER_REFUND_PENDING),
	    "created_at", (json_int_t)now,
	    "updated_at", (json_int_t)now,
	    "tries", 0,
	    "provider_refund_id",
	    "last_error",
	    "sent_at");
	ledger_key_seq(&k, seq);
	ledger_put(t, STORE_DB_REFUNDS, &k, r);
	json_decref(r);
	ledger_refund_index(t, id, seq);
	ledger_order_add_refund(t, order, seq);
	return t->err == PH_OK ? seq : 0;
}

/* Raises a refund.* event about work item r; takes extra. */
static uint64_t
ledger_refund_event_new(struct store_txn *t, const json_t *r,
    enum ledger_event type, const char *source, int64_t now, json_t *extra)
{
	struct ledger_fact f;
	struct ph_event ev;
	json_t *x;

	ledger_record_event(r, PH_EV_REFUND_SUCCEEDED, &ev);
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
	/* Why it failed, where that is known. */
	if (x != NULL && type == LEDGER_EV_REFUND_FAILED &&
	    json_is_string(json_object_get(r, "last_error")))
		json_object_set(x, "last_error", json_object_get(r,
		    "last_error"));
	return ledger_emit_new(t, &f, type, ev.order_id, x);
}

/* The event that queues it (order.double_payment, order.late_payment)
 * names the refund: no separate refund.requested. */
uint64_t
ledger_queue_refund(struct store_txn *t, const struct ledger_fact *f,
    json_t *order, const char *reason)
{
	const struct ph_event *ev = f->ev;

	return ledger_put_refund(t, order, reason, NULL, f->profile,
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

/*
 * Keeps the reply with idem, if any, and commits: what every merchant
 * call of this file ends with.  When the commit fails, *item is released
 * and the status (in diag) says why.
 */
static int
ledger_refund_commit(struct store_txn *t, struct ledger_idem *idem, int rc,
    int created, enum ledger_refusal why, json_t **item,
    struct ph_diag *diag)
{
	int crc;

	ledger_idem_keep(t, idem, rc, created, why, diag->msg, *item);
	if ((crc = store_commit(t)) == PH_OK)
		return PH_OK;
	json_decref(*item);
	*item = NULL;
	return ph_fail(diag, crc, "database: %s", ph_strerror(crc));
}

int
ledger_request_refund(struct store *s, const struct ledger_refund_req *rq,
    int64_t now, struct ledger_idem *idem, json_t **item, int *created,
    enum ledger_refusal *why, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key ok, rk;
	json_t *order = NULL;
	int64_t paid, asked;
	const char *txn;
	uint64_t seq;
	int rc, st, crc;

	*item = NULL;
	*created = 0;
	*why = LEDGER_REFUSAL_NONE;
	ledger_key_order(&ok, rq->order_id);
	if (ok.err)
		return PH_E_NOTFOUND;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if (rq->refund_id != NULL) {
		rc = ledger_refund_by_id(&t, rq->refund_id, &rk, item);
		if (rc == PH_OK) {
			/* Asked before: the same refund, or another one;
			 * by what was asked, though it was settled for
			 * less by hand (asked_amount). */
			json_t *was = json_object_get(*item, "asked_amount");

			if (!json_is_integer(was))
				was = json_object_get(*item, "amount");
			/* Only the merchant's own: one payhook made for a
			 * double or late payment was never asked for. */
			if (strcmp(ledger_str(*item, "order_id"),
			    rq->order_id) == 0 && json_integer_value(was) ==
			    rq->amount && strcmp(ledger_str(*item, "reason"),
			    "merchant") == 0)
				rc = PH_OK;
			else {
				*why = LEDGER_REFUSAL_REFUND_ID;
				rc = ph_fail(diag, PH_E_CONFLICT, "refund id %s "
				    "names a refund of %lld on order %s "
				    "(reason %s)", rq->refund_id,
				    (long long)json_integer_value(
				    json_object_get(*item, "amount")),
				    ledger_str(*item, "order_id"),
				    ledger_str(*item, "reason"));
			}
			goto reply;
		}
		if (rc != PH_E_NOTFOUND)
			goto fail;
	}
	if ((rc = ledger_get(&t, STORE_DB_ORDERS, &ok, &order)) != PH_OK) {
		if (rc != PH_E_NOTFOUND)
			goto fail;
		goto reply;
	}
	st = order_state_parse(ledger_str(order, "state"));
	txn = json_string_value(json_object_get(order, "provider_txn_id"));
	if ((st != ORDER_PAID && st != ORDER_REFUNDING) || txn == NULL) {
		*why = LEDGER_REFUSAL_NOT_PAID;
		rc = ph_fail(diag, PH_E_CONFLICT, "order %s is %s: only a paid "
		    "order can be refunded%s", rq->order_id,
		    ledger_str(order, "state"), st == ORDER_PENDING &&
		    ledger_order_misfit(order, NULL) != NULL ? "; the payments it holds "
		    "that do not fit it (its exceptions) are queued to go "
		    "back once it is paid, or closed past its expiry when "
		    "it has one; until then a refund of them is made at the "
		    "provider" : "");
		goto reply;
	}
	paid = json_integer_value(json_object_get(order, "amount"));
	asked = json_integer_value(json_object_get(order, "refund_requested"));
	if (json_array_size(json_object_get(order, "refunds")) >=
	    LEDGER_REFUNDS_MAX) {
		*why = LEDGER_REFUSAL_REFUNDS_MAX;
		rc = ph_fail(diag, PH_E_CONFLICT, "order %s has %d refunds, the "
		    "most an order may have: refund the rest at the provider",
		    rq->order_id, LEDGER_REFUNDS_MAX);
		goto reply;
	}
	if (rq->amount <= 0 || rq->amount > paid - asked) {
		*why = LEDGER_REFUSAL_TOO_MUCH;
		rc = ph_fail(diag, PH_E_CONFLICT, "order %s: refunding %lld "
		    "would exceed what was paid (%lld paid, %lld already "
		    "asked)", rq->order_id, (long long)rq->amount,
		    (long long)paid, (long long)asked);
		goto reply;
	}
	seq = ledger_put_refund(&t, order, "merchant", rq->refund_id,
	    ledger_str(order, "paid_through")[0] != '\0' ?
	    ledger_str(order, "paid_through") : ledger_str(order, "profile"),
	    ledger_str(order, "provider"), txn, rq->amount, paid,
	    ledger_str(order, "currency"), now);
	json_object_set_new(order, "refund_requested",
	    json_integer(asked + rq->amount));
	/* Both totals shown from the first refund asked for on. */
	if (json_object_get(order, "refunded") == NULL)
		json_object_set_new(order, "refunded", json_integer(0));
	ledger_order_refund_state(&t, order, now);
	ledger_put(&t, STORE_DB_ORDERS, &ok, order);
	ledger_key_seq(&rk, seq);
	if (seq != 0 && ledger_get(&t, STORE_DB_REFUNDS, &rk, item) == PH_OK) {
		json_object_set_new(*item, "merchant_reason",
		    json_string(rq->reason));
		ledger_put(&t, STORE_DB_REFUNDS, &rk, *item);
		ledger_refund_event_new(&t, *item, LEDGER_EV_REFUND_REQUESTED,
		    "api", now, NULL);
	}
	*created = 1;
	rc = PH_OK;
reply:
	if (idem == NULL && !*created) {
		/* Nothing written: the answer is about committed state. */
		store_abort(&t);
		json_decref(order);
		if (rc == PH_OK && (rc = store_settle(&t)) != PH_OK) {
			json_decref(*item);
			*item = NULL;
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		}
		return rc;
	}
	json_decref(order);
	if ((crc = ledger_refund_commit(&t, idem, rc, *created, *why, item,
	    diag)) != PH_OK) {
		*created = 0;
		return crc;
	}
	if (*created)
		log_info("order %s: refund %s of %lld requested%s%s%s",
		    rq->order_id, ledger_str(*item, "refund_id"),
		    (long long)rq->amount, rq->reason[0] != '\0' ? " (" : "",
		    rq->reason, rq->reason[0] != '\0' ? ")" : "");
	return rc;
fail:
	store_abort(&t);
	json_decref(order);
	json_decref(*item);
	*item = NULL;
	return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
}

/* Takes refund r's amount off what its order has asked (a refund that
 * failed or was cancelled), or marks the extra payment's exception. */
static void
ledger_refund_release(struct store_txn *t, json_t *order, const json_t *r,
    int64_t now)
{
	int64_t amount = json_integer_value(json_object_get(r, "amount"));

	if (strcmp(ledger_str(r, "reason"), "merchant") == 0) {
		json_object_set_new(order, "refund_requested",
		    json_integer(json_integer_value(json_object_get(order,
		    "refund_requested")) - amount));
		ledger_order_refund_state(t, order, now);
	}
}

/* Marks the exception of the extra payment refund r repays. */
static void
ledger_refund_mark_exception(json_t *order, const json_t *r, int64_t now)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(order, "exceptions"), i, e)
		if (json_integer_value(json_object_get(e, "refund_seq")) ==
		    json_integer_value(json_object_get(r, "seq")))
			json_object_set_new(e, "refund_state",
			    json_string(ledger_str(r, "state")));
	json_object_set_new(order, "updated_at", json_integer(now));
}

int
ledger_cancel_refund(struct store *s, const char *refund_id, int64_t now,
    struct ledger_idem *idem, json_t **item, enum ledger_refusal *why,
    struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key rk, ok;
	json_t *order = NULL;
	int rc, st, crc, changed = 0;

	*item = NULL;
	*why = LEDGER_REFUSAL_NONE;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	rc = ledger_refund_by_id(&t, refund_id, &rk, item);
	if (rc != PH_OK && rc != PH_E_NOTFOUND)
		goto fail;
	if (rc == PH_OK) {
		st = ledger_refund_state(*item);
		if (ledger_refund_settled(*item)) {
			*why = LEDGER_REFUSAL_SETTLED;
			rc = ph_fail(diag, PH_E_CONFLICT, "refund %s is %s",
			    refund_id, ledger_str(*item, "state"));
		} else if (st != LEDGER_REFUND_PENDING ||
		    json_is_integer(json_object_get(*item, "sent_at"))) {
			*why = LEDGER_REFUSAL_IN_FLIGHT;
			rc = ph_fail(diag, PH_E_CONFLICT, "refund %s was sent "
			    "to the provider already", refund_id);
		} else if (json_integer_value(json_object_get(*item,
		    "lease_until")) > now) {
			/* A run holds it, and may be sending it now. */
			*why = LEDGER_REFUSAL_IN_FLIGHT;
			rc = ph_fail(diag, PH_E_CONFLICT, "refund %s is being "
			    "sent to the provider right now", refund_id);
		} else {
			json_object_set_new(*item, "state", json_string(
			    ledger_refund_state_name(LEDGER_REFUND_CANCELLED)));
			json_object_set_new(*item, "updated_at",
			    json_integer(now));
			ledger_put(&t, STORE_DB_REFUNDS, &rk, *item);
			ledger_key_order(&ok, ledger_str(*item, "order_id"));
			if (ledger_get(&t, STORE_DB_ORDERS, &ok, &order) ==
			    PH_OK) {
				ledger_refund_release(&t, order, *item, now);
				ledger_refund_mark_exception(order, *item, now);
				ledger_put(&t, STORE_DB_ORDERS, &ok, order);
			}
			ledger_refund_event_new(&t, *item,
			    LEDGER_EV_REFUND_CANCELLED, "api", now, NULL);
			changed = 1;
		}
	}
	if (idem == NULL && !changed) {
		store_abort(&t);
		json_decref(order);
		return rc;
	}
	json_decref(order);
	if ((crc = ledger_refund_commit(&t, idem, rc, 0, *why, item, diag)) !=
	    PH_OK)
		return crc;
	if (changed)
		log_info("refund %s of order %s cancelled", refund_id,
		    ledger_str(*item, "order_id"));
	return rc;
fail:
	store_abort(&t);
	json_decref(*item);
	*item = NULL;
	return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
}

int
ledger_get_refund(struct store *s, const char *refund_id, json_t **item)
{
	struct store_txn t;
	struct store_key k;
	int rc;

	*item = NULL;
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	rc = ledger_refund_by_id(&t, refund_id, &k, item);
	return ledger_read_end(&t, rc, item);
}

int
ledger_order_refunds(struct store *s, const char *order_id, json_t **items)
{
	struct store_txn t;
	struct store_key k;
	json_t *order = NULL, *arr, *v, *r;
	size_t i;
	int rc;

	*items = NULL;
	ledger_key_order(&k, order_id);
	if (k.err)
		return PH_E_NOTFOUND;
	if ((arr = json_array()) == NULL)
		return PH_E_NOMEM;
	if ((rc = store_begin(s, 0, &t)) != PH_OK) {
		json_decref(arr);
		return rc;
	}
	rc = ledger_get(&t, STORE_DB_ORDERS, &k, &order);
	json_array_foreach(json_object_get(order, "refunds"), i, v) {
		ledger_key_seq(&k, (uint64_t)json_integer_value(v));
		if (ledger_get(&t, STORE_DB_REFUNDS, &k, &r) == PH_OK &&
		    json_array_append_new(arr, r) != 0)
			t.err = PH_E_NOMEM;
	}
	if (rc == PH_OK)
		rc = t.err;
	json_decref(order);
	if ((rc = ledger_read_end(&t, rc, &arr)) != PH_OK)
		return rc;
	*items = arr;
	return PH_OK;
}

/* A refund work item; with *open_only, only one still to settle. */
static int
ledger_keep_refund(const struct store_scan *sc, json_t *arr, void *arg)
{
	const int *open_only = arg;
	json_t *r;
	int st;

	if ((r = ledger_load(&sc->val)) == NULL)
		return 0;
	st = ledger_refund_state(r);
	if (!*open_only || st == LEDGER_REFUND_PENDING ||
	    st == LEDGER_REFUND_PROCESSING)
		json_array_append_new(arr, r);
	else
		json_decref(r);
	return 0;
}

static int
ledger_refund_scan(struct store *s, uint64_t after, size_t limit,
    int open_only, json_t **items)
{
	struct store_key k;

	ledger_key_seq(&k, after + 1);
	return ledger_collect(s, STORE_DB_REFUNDS, &k, limit,
	    ledger_keep_refund, &open_only, items);
}

int
ledger_refunds_due(struct store *s, uint64_t after, size_t limit,
    json_t **items)
{
	return ledger_refund_scan(s, after, limit, 1, items);
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
	int rc, st;

	*item = NULL;
	ledger_key_seq(&k, seq);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	if ((rc = ledger_get(&t, STORE_DB_REFUNDS, &k, item)) != PH_OK) {
		store_abort(&t);
		return rc;
	}
	st = ledger_refund_state(*item);
	u = json_object_get(*item, "lease_until");
	if ((st != LEDGER_REFUND_PENDING && st != LEDGER_REFUND_PROCESSING) ||
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

int
ledger_refunds_sending(struct store *s, const uint64_t *seqs, int *ours,
    size_t n, const char *token, int64_t now)
{
	struct store_txn t;
	struct store_key k;
	json_t *r;
	size_t i;
	int rc;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	for (i = 0; i < n && t.err == PH_OK; i++) {
		ours[i] = 0;
		ledger_key_seq(&k, seqs[i]);
		if (ledger_get(&t, STORE_DB_REFUNDS, &k, &r) != PH_OK)
			continue;
		if (strcmp(ledger_str(r, "lease_owner"), token) == 0 &&
		    json_integer_value(json_object_get(r, "lease_until")) >
		    now) {
			ours[i] = 1;
			if (!json_is_integer(json_object_get(r, "sent_at"))) {
				json_object_set_new(r, "sent_at",
				    json_integer(now));
				ledger_put(&t, STORE_DB_REFUNDS, &k, r);
			}
		}
		json_decref(r);
	}
	if (t.err != PH_OK) {
		rc = t.err;
		store_abort(&t);
		return rc;
	}
	return store_commit(&t);
}

/*
 * A refund that failed and then succeeded counts on its order again, but
 * the merchant may have asked for its amount again meanwhile (a failed
 * refund's amount is released).  What no longer fits the payment must
 * not go out: the refunds of the order not sent yet are cancelled, the
 * newest first, until what is asked fits, each with refund.cancelled; one
 * the provider has already cannot be called back, and a warning says so.
 */
static void
ledger_refund_overask(struct store_txn *t, json_t *order, const json_t *late,
    const char *source, int64_t now)
{
	int64_t paid = json_integer_value(json_object_get(order, "amount"));
	int64_t asked = json_integer_value(json_object_get(order,
	    "refund_requested"));
	json_t *list = json_object_get(order, "refunds"), *r;
	struct store_key k;
	size_t i;

	for (i = json_array_size(list); i-- > 0 && asked > paid; ) {
		ledger_key_seq(&k, (uint64_t)json_integer_value(
		    json_array_get(list, i)));
		if (ledger_get(t, STORE_DB_REFUNDS, &k, &r) != PH_OK)
			continue;
		if (strcmp(ledger_str(r, "reason"), "merchant") != 0 ||
		    ledger_refund_settled(r) ||
		    json_equal(json_object_get(r, "seq"),
		    json_object_get(late, "seq"))) {
			json_decref(r);
			continue;
		}
		if (ledger_refund_state(r) != LEDGER_REFUND_PENDING ||
		    json_is_integer(json_object_get(r, "sent_at"))) {
			log_warn("refund %s of order %s is with the provider "
			    "already, though refund %s, which had failed, gave "
			    "the money back: more than the payment may go back",
			    ledger_str(r, "refund_id"), ledger_str(r,
			    "order_id"), ledger_str(late, "refund_id"));
			json_decref(r);
			continue;
		}
		json_object_set_new(r, "state", json_string(
		    ledger_refund_state_name(LEDGER_REFUND_CANCELLED)));
		json_object_set_new(r, "updated_at", json_integer(now));
		json_object_set_new(r, "last_error", json_pack("s++",
		    "cancelled: refund ", ledger_str(late, "refund_id"),
		    " succeeded after it had failed and gave the money back"));
		ledger_put(t, STORE_DB_REFUNDS, &k, r);
		asked -= json_integer_value(json_object_get(r, "amount"));
		ledger_refund_event_new(t, r, LEDGER_EV_REFUND_CANCELLED,
		    source, now, json_pack("{s:s}", "refunded_by",
		    ledger_str(late, "refund_id")));
		log_warn("refund %s of order %s cancelled: refund %s, which "
		    "had failed, gave the money back", ledger_str(r,
		    "refund_id"), ledger_str(r, "order_id"), ledger_str(late,
		    "refund_id"));
		json_decref(r);
	}
	json_object_set_new(order, "refund_requested", json_integer(asked));
}

/*
 * A refund that had failed succeeded after all, while refunds asked since
 * had gone out too (which of them succeeds last does not matter): more
 * went back than the payment, and nothing can call it back.  An exception
 * over_refunded on the order, of the amount over that refund r's success
 * makes, for someone to recover; returns that amount (0: none over).
 */
static int64_t
ledger_refund_over(struct store_txn *t, json_t *order, const json_t *r,
    int64_t now)
{
	int64_t over = json_integer_value(json_object_get(order, "refunded")) -
	    json_integer_value(json_object_get(order, "amount"));
	int64_t amount = json_integer_value(json_object_get(r, "amount"));
	struct ledger_exception x;

	if (over <= 0)
		return 0;
	/* This refund's part of it: an earlier late one raised its own. */
	if (over > amount)
		over = amount;
	x.type = "over_refunded";
	x.provider = ledger_str(r, "provider");
	x.txn_id = ledger_str(r, "provider_txn_id");
	x.amount = over;
	x.currency = ledger_str(r, "currency");
	x.at = now;
	ledger_add_exception_fields_new(t, order, &x, json_pack("{s:s}",
	    "refund_id", ledger_str(r, "refund_id")));
	log_warn("order %s: refund %s succeeded with a refund that had "
	    "failed succeeding after all: %lld more than the payment went "
	    "back; raised as over_refunded", ledger_str(order, "order_id"),
	    ledger_str(r, "refund_id"), (long long)over);
	return over;
}

/* The reason a failure settled by hand gives (before settled_by was
 * kept, the one mark of it). */
#define LEDGER_REFUND_HAND_FAILED	"failed: settled by hand"

int
ledger_refund_hand_settled(const json_t *item)
{
	return strcmp(ledger_str(item, "settled_by"), "operator") == 0 ||
	    (ledger_refund_state(item) == LEDGER_REFUND_FAILED &&
	    strcmp(ledger_str(item, "last_error"),
	    LEDGER_REFUND_HAND_FAILED) == 0);
}

/*
 * Moves item r (stored at k) to SUCCEEDED or FAILED and carries it to its
 * order.  Returns the event raised, or LEDGER_EV_NONE when it was settled
 * already (a repeat changes nothing).  One that FAILED and is then
 * verified SUCCEEDED (WeChat Pay's abnormal refund, settled by hand at the
 * merchant platform) did give the money back: it becomes SUCCEEDED, counts
 * on its order again, and the event says what it was.  So does one the
 * merchant cancelled (payhook never sent it) and then made at the
 * provider's platform under the same refund id; a failure of it changes
 * nothing.
 */
static enum ledger_event
ledger_refund_settle(struct store_txn *t, const struct store_key *k,
    json_t *r, int succeeded, const char *provider_refund_id,
    const char *source, int64_t now, uint64_t *seq_out)
{
	enum ledger_event type;
	struct store_key ok;
	json_t *order = NULL, *extra;
	int64_t amount = json_integer_value(json_object_get(r, "amount"));
	int64_t over = 0;
	enum ledger_refund_state was = LEDGER_REFUND_FAILED;
	int late = 0;

	if (ledger_refund_settled(r)) {
		if (!succeeded && ledger_refund_state(r) ==
		    LEDGER_REFUND_SUCCEEDED) {
			/* The money went back; a failure reported after that
			 * cannot undo it, but nobody may miss that it came:
			 * raised once (a statement row, a query answer and a
			 * notification of it each bring it again). */
			if (json_is_true(json_object_get(r,
			    "failed_after_success")))
				return LEDGER_EV_NONE;
			json_object_set_new(r, "failed_after_success",
			    json_true());
			ledger_put(t, STORE_DB_REFUNDS, k, r);
			log_warn("refund %s of order %s: reported failed after it "
			    "had succeeded: it stays SUCCEEDED; raised",
			    ledger_str(r, "refund_id"), ledger_str(r,
			    "order_id"));
			*seq_out = ledger_refund_event_new(t, r,
			    LEDGER_EV_REFUND_FAILED, source, now, json_pack(
			    "{s:s, s:s}", "previous_state",
			    ledger_refund_state_name(LEDGER_REFUND_SUCCEEDED),
			    "state", ledger_refund_state_name(
			    LEDGER_REFUND_SUCCEEDED)));
			return LEDGER_EV_REFUND_FAILED;
		}
		was = ledger_refund_state(r);
		if (!succeeded || (was != LEDGER_REFUND_FAILED &&
		    was != LEDGER_REFUND_CANCELLED))
			return LEDGER_EV_NONE;
		late = 1;
	}
	json_object_set_new(r, "state", json_string(ledger_refund_state_name(
	    succeeded ? LEDGER_REFUND_SUCCEEDED : LEDGER_REFUND_FAILED)));
	json_object_set_new(r, "updated_at", json_integer(now));
	/* Who settled it (not shown): a statement does not overrule what
	 * the operator found, it raises the difference for a person. */
	json_object_set_new(r, "settled_by", json_string(source));
	json_object_del(r, "lease_until");
	json_object_del(r, "lease_owner");
	/* What held it back (an answer of another amount, a call that
	 * failed) is over: a failure's own reason was set by the refund
	 * runner; told by anything else, it has none. */
	if (succeeded || strcmp(source, "refund") != 0)
		json_object_set_new(r, "last_error", json_null());
	if (provider_refund_id != NULL && *provider_refund_id != '\0')
		json_object_set_new(r, "provider_refund_id",
		    json_string(provider_refund_id));
	ledger_put(t, STORE_DB_REFUNDS, k, r);

	ledger_key_order(&ok, ledger_str(r, "order_id"));
	if (ledger_get(t, STORE_DB_ORDERS, &ok, &order) == PH_OK) {
		if (strcmp(ledger_str(r, "reason"), "merchant") != 0)
			/* The refund of an extra payment: its exception. */
			ledger_refund_mark_exception(order, r, now);
		else if (succeeded) {
			/* A refund of the payment that paid the order; one
			 * that had failed was released then: asked again. */
			if (late) {
				json_object_set_new(order, "refund_requested",
				    json_integer(json_integer_value(
				    json_object_get(order,
				    "refund_requested")) + amount));
				ledger_refund_overask(t, order, r, source,
				    now);
			}
			json_object_set_new(order, "refunded",
			    json_integer(json_integer_value(
			    json_object_get(order, "refunded")) + amount));
			/* Over the payment: by this one, or by one that
			 * failed and succeeded after all, before it. */
			over = ledger_refund_over(t, order, r, now);
			ledger_order_refund_state(t, order, now);
		} else
			ledger_refund_release(t, order, r, now);
		ledger_put(t, STORE_DB_ORDERS, &ok, order);
	}
	json_decref(order);
	type = succeeded ? LEDGER_EV_REFUND_SUCCEEDED : LEDGER_EV_REFUND_FAILED;
	extra = json_object();
	if (provider_refund_id != NULL && *provider_refund_id != '\0')
		json_object_set_new(extra, "provider_refund_id",
		    json_string(provider_refund_id));
	if (late)
		json_object_set_new(extra, "previous_state", json_string(
		    ledger_refund_state_name(was)));
	if (over > 0)
		json_object_set_new(extra, "over_refunded", json_integer(over));
	*seq_out = ledger_refund_event_new(t, r, type, source, now, extra);
	if (late)
		log_warn("refund %s of order %s: succeeded after it was %s: "
		    "the money went back; counted on its order again",
		    ledger_str(r, "refund_id"), ledger_str(r, "order_id"),
		    ledger_refund_state_name(was));
	else
		log_info("refund %s of order %s: %s", ledger_str(r,
		    "refund_id"), ledger_str(r, "order_id"), succeeded ?
		    "succeeded" : "failed");
	return type;
}

/* A refund result payhook cannot match, on a known order: an exception
 * there too, as every fact that does not fit. */
static void
ledger_refund_unmatched_mark(struct store_txn *t, const struct ledger_fact *f)
{
	const struct ph_event *ev = f->ev;
	struct store_key ok;
	json_t *order = NULL;

	ledger_key_order(&ok, ev->order_id);
	if (ok.err || ledger_get(t, STORE_DB_ORDERS, &ok, &order) != PH_OK)
		return;
	ledger_add_exception_new(t, order, f, "refund_unmatched", json_pack(
	    "{s:s, s:s}", "provider_refund_id", ev->refund_id, "refund_id",
	    ev->merchant_refund_id));
	ledger_put(t, STORE_DB_ORDERS, &ok, order);
	json_decref(order);
}

/* Raises refund result f, which settles nothing: refund.unmatched with
 * the amount f reports, and an exception on its order. */
static void
ledger_refund_unmatched(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *res)
{
	const struct ph_event *ev = f->ev;
	uint64_t seq;

	seq = ledger_emit_new(t, f, LEDGER_EV_REFUND_UNMATCHED, ev->order_id,
	    json_pack("{s:s, s:s}", "provider_refund_id", ev->refund_id,
	    "refund_id", ev->merchant_refund_id));
	ledger_refund_unmatched_mark(t, f);
	ledger_note(res, LEDGER_EV_REFUND_UNMATCHED, seq);
	res->outcome = LEDGER_RECORDED;
}

int
ledger_refund_amount_off(const struct ph_event *ev, int64_t asked)
{
	return (ev->kind == PH_EV_REFUND_SUCCEEDED ||
	    ev->kind == PH_EV_REFUND_FAILED ||
	    ev->kind == PH_EV_PAYMENT_PENDING) && ev->amount != asked;
}

/* Lets the runner's lease on r go, when token holds it. */
static void
ledger_refund_unlease(json_t *r, const char *token)
{
	if (strcmp(ledger_str(r, "lease_owner"), token) == 0) {
		json_object_del(r, "lease_until");
		json_object_del(r, "lease_owner");
	}
}

/*
 * The provider's answer about refund r reports another amount: not the
 * refund as payhook asked for it, so it settles nothing.  Raised once as
 * refund.unmatched (the answer's amount and state; an exception on the
 * order), the refund held PROCESSING with why: asked about again, the
 * same answer raises nothing more, until someone settles it by hand.
 */
static void
ledger_refund_other_amount(struct store_txn *t, json_t *r,
    const struct ph_event *ev, const char *source, int64_t now,
    struct ledger_result *res)
{
	struct ledger_fact f;
	json_t *seen;
	char why[192];

	res->outcome = LEDGER_NOOP;
	/* Held back only once sent: a result about a refund never sent
	 * (a notification) must not stop it going out. */
	if (!ledger_refund_settled(r) &&
	    json_is_integer(json_object_get(r, "sent_at"))) {
		snprintf(why, sizeof(why), "the provider reports this refund "
		    "%s with %lld, not the %lld asked: raised as "
		    "refund.unmatched; settle it by hand (payhook refunds "
		    "settle)", ev->kind ==
		    PH_EV_REFUND_SUCCEEDED ? "succeeded" : ev->kind ==
		    PH_EV_REFUND_FAILED ? "failed" : "accepted",
		    (long long)ev->amount, (long long)json_integer_value(
		    json_object_get(r, "amount")));
		json_object_set_new(r, "state", json_string(
		    ledger_refund_state_name(LEDGER_REFUND_PROCESSING)));
		json_object_set_new(r, "last_error", json_string(why));
		json_object_set_new(r, "updated_at", json_integer(now));
	}
	seen = json_object_get(r, "answer_amount");
	if (!json_is_integer(seen) || json_integer_value(seen) != ev->amount) {
		json_object_set_new(r, "answer_amount",
		    json_integer(ev->amount));
		log_info("refund %s of order %s: the provider reports %lld, "
		    "not the %lld asked: raised as refund.unmatched",
		    ledger_str(r, "refund_id"), ledger_str(r, "order_id"),
		    (long long)ev->amount, (long long)json_integer_value(
		    json_object_get(r, "amount")));
		f.profile = ledger_str(r, "profile");
		f.provider = ledger_str(r, "provider");
		f.source = source;
		f.ev = ev;
		f.now = now;
		ledger_refund_unmatched(t, &f, res);
	}
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
	if (err == PH_OK && ledger_refund_amount_off(ev,
	    json_integer_value(json_object_get(r, "amount")))) {
		ledger_refund_other_amount(&t, r, ev, "refund", now, res);
		ledger_refund_unlease(r, token);
		ledger_put(&t, STORE_DB_REFUNDS, &k, r);
	} else if (err != PH_OK || ev->kind == PH_EV_PAYMENT_PENDING ||
	    ev->kind == PH_EV_NOT_FOUND) {
		/*
		 * Not settled by this answer: note why, let the lease go, try
		 * later.  A refund notification may have settled the item
		 * while the answer was on its way: that state stays.  One the
		 * provider has not made (NOT_FOUND, to a query) is PENDING
		 * again: sent again, never taken for failed.
		 */
		int settled = ledger_refund_settled(r);

		if (err == PH_OK && !settled)
			json_object_set_new(r, "state", json_string(
			    ledger_refund_state_name(ev->kind ==
			    PH_EV_NOT_FOUND ? LEDGER_REFUND_PENDING :
			    LEDGER_REFUND_PROCESSING)));
		if (!settled) {
			json_object_set_new(r, "last_error", err != PH_OK ?
			    json_string(message) : json_null());
			json_object_set_new(r, "updated_at",
			    json_integer(now));
		}
		/* The provider's number for it, once an answer names it:
		 * what support quotes while it is being made. */
		if (err == PH_OK && !settled && ev->refund_id[0] != '\0')
			json_object_set_new(r, "provider_refund_id",
			    json_string(ev->refund_id));
		ledger_refund_unlease(r, token);
		ledger_put(&t, STORE_DB_REFUNDS, &k, r);
		res->outcome = LEDGER_NOOP;
	} else {
		/* Why a refund failed, where the runner knows it: the
		 * provider's reason, or none (not an earlier try's). */
		if (ev->kind == PH_EV_REFUND_FAILED &&
		    !ledger_refund_settled(r))
			json_object_set_new(r, "last_error", message != NULL &&
			    *message != '\0' ? json_string(message) :
			    json_null());
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

/*
 * What the operator found at the provider, for a refund payhook cannot
 * settle by itself (an answer of another amount holds it PROCESSING; a
 * provider without a refund call fails it, to be made by hand): it
 * succeeded, with amount (0: the amount asked; less: the rest is free to
 * be asked again), or it failed.  One that failed may be found made after
 * all, as a late answer would settle it.  Raised as refund.succeeded or
 * refund.failed with source "operator".
 */
int
ledger_refund_by_hand(struct store *s, const char *refund_id, int succeeded,
    int64_t amount, int64_t now, json_t **item, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key k, ok;
	json_t *order = NULL;
	uint64_t eseq = 0;
	int64_t asked, lease;
	int rc, st;

	*item = NULL;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if ((rc = ledger_refund_by_id(&t, refund_id, &k, item)) != PH_OK) {
		store_abort(&t);
		return rc == PH_E_NOTFOUND ? ph_fail(diag, rc, "no refund %s",
		    refund_id) : ph_fail(diag, rc, "database: %s",
		    ph_strerror(rc));
	}
	st = ledger_refund_state(*item);
	asked = json_integer_value(json_object_get(*item, "amount"));
	lease = json_integer_value(json_object_get(*item, "lease_until"));
	/* One that failed or was cancelled may have been made after all
	 * (at the provider's platform): found so, it succeeded. */
	if (st == LEDGER_REFUND_SUCCEEDED || (!succeeded &&
	    (st == LEDGER_REFUND_FAILED || st == LEDGER_REFUND_CANCELLED))) {
		rc = ph_fail(diag, PH_E_CONFLICT, "refund %s is %s already%s",
		    refund_id, ledger_refund_state_name(st), st ==
		    LEDGER_REFUND_CANCELLED ? ": it was never sent" : "");
		goto refused;
	}
	if (amount > asked) {
		rc = ph_fail(diag, PH_E_CONFLICT, "refund %s asked for %lld: "
		    "it cannot have succeeded with more", refund_id,
		    (long long)asked);
		goto refused;
	}
	/* The runner's answer, on its way, would be dropped on a refund
	 * settled meanwhile: what the provider does then is what counts. */
	if (lease > now && (st == LEDGER_REFUND_PENDING ||
	    st == LEDGER_REFUND_PROCESSING)) {
		rc = ph_fail(diag, PH_E_CONFLICT, "refund %s is leased to "
		    "refunds run for %llds more (a run sending it, or one "
		    "killed while it did): settle it once the lease is over",
		    refund_id, (long long)(lease - now));
		goto refused;
	}
	/* A double or late payment is repaid whole: nothing could ask for
	 * the rest of it again through payhook. */
	if (amount > 0 && amount < asked &&
	    strcmp(ledger_str(*item, "reason"), "merchant") != 0) {
		rc = ph_fail(diag, PH_E_CONFLICT, "refund %s repays a %s "
		    "whole: settle it --succeeded or --failed, and refund a "
		    "part left at the provider's platform", refund_id,
		    ledger_str(*item, "reason"));
		goto refused;
	}
	if (amount > 0 && amount < asked) {
		/* A failed or cancelled one's amount was released whole;
		 * otherwise the part that did not go back is free again. */
		ledger_key_order(&ok, ledger_str(*item, "order_id"));
		if (st != LEDGER_REFUND_FAILED &&
		    st != LEDGER_REFUND_CANCELLED &&
		    ledger_get(&t, STORE_DB_ORDERS, &ok, &order) == PH_OK) {
			json_object_set_new(order, "refund_requested",
			    json_integer(json_integer_value(json_object_get(
			    order, "refund_requested")) - (asked - amount)));
			ledger_put(&t, STORE_DB_ORDERS, &ok, order);
		}
		json_decref(order);
		json_object_set_new(*item, "asked_amount", json_integer(asked));
		json_object_set_new(*item, "amount", json_integer(amount));
	}
	if (!succeeded)
		json_object_set_new(*item, "last_error",
		    json_string(LEDGER_REFUND_HAND_FAILED));
	ledger_refund_settle(&t, &k, *item, succeeded, NULL, "operator", now,
	    &eseq);
	log_warn("refund %s of order %s settled by hand: %s, %lld of %lld",
	    refund_id, ledger_str(*item, "order_id"), succeeded ?
	    "succeeded" : "failed", (long long)json_integer_value(
	    json_object_get(*item, "amount")), (long long)asked);
	if ((rc = store_commit(&t)) != PH_OK) {
		json_decref(*item);
		*item = NULL;
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	}
	return PH_OK;
refused:
	store_abort(&t);
	json_decref(*item);
	*item = NULL;
	return rc;
}

/*
 * A refund result from a notification or a statement.  It settles only a
 * refund of its own profile and provider, of the transaction it names and
 * the amount payhook asked for: a fact verified under one merchant account
 * never answers for another's refund.  Anything else is recorded and
 * raised as refund.unmatched.
 */
void
ledger_refund_fact(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *res)
{
	const struct ph_event *ev = f->ev;
	struct store_key k;
	enum ledger_event type;
	uint64_t eseq = 0;
	json_t *r = NULL;
	int rc;

	rc = ev->merchant_refund_id[0] != '\0' ?
	    ledger_refund_by_id(t, ev->merchant_refund_id, &k, &r) :
	    PH_E_NOTFOUND;
	if (rc != PH_OK ||
	    strcmp(ledger_str(r, "profile"), f->profile) != 0 ||
	    strcmp(ledger_str(r, "provider"), f->provider) != 0 ||
	    strcmp(ledger_str(r, "provider_txn_id"), ev->txn_id) != 0 ||
	    (ev->order_id[0] != '\0' &&
	    strcmp(ledger_str(r, "order_id"), ev->order_id) != 0) ||
	    (ev->currency[0] != '\0' &&
	    strcmp(ledger_str(r, "currency"), ev->currency) != 0)) {
		/* Not a refund payhook asked for, or not as it asked: every
		 * field the result names must be the refund's (a WeChat v2
		 * refund result is AES-ECB, with no integrity of its own). */
		json_decref(r);
		if (t->err != PH_OK)
			return;
		log_warn("refund %s (%s) of %lld %s on %s from %s (profile %s) "
		    "matches no refund payhook asked for: recorded",
		    ev->refund_id, ev->merchant_refund_id,
		    (long long)ev->amount, ev->currency, ev->txn_id,
		    f->provider, f->profile);
		ledger_refund_unmatched(t, f, res);
		return;
	}
	if (ledger_refund_amount_off(ev, json_integer_value(
	    json_object_get(r, "amount")))) {
		/* The refund asked for, of another amount: as the runner
		 * takes such an answer, raised once whichever brings it. */
		ledger_refund_other_amount(t, r, ev, f->source, f->now, res);
		ledger_put(t, STORE_DB_REFUNDS, &k, r);
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
