/*
 * The ledger applies verified facts: each one, whatever brought it, in one
 * write transaction (dedup key, payment record, order transition, outbox
 * events, refund work), committed durably before ledger_apply returns.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ops/text.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "ledger/order.h"

static const char *const ledger_outcome_names[LEDGER__MAX] = {
	"applied", "duplicate", "recorded", "conflict", "noop",
};

static const char *const ledger_kind_names[PH_EV__MAX] = {
	"payment.succeeded", "payment.failed", "payment.pending",
	"payment.closed", "refund.succeeded", "refund.failed", "not_found",
	"ignored", "query.more",
};

const char *
ledger_outcome_name(enum ledger_outcome o)
{
	return o < LEDGER__MAX ? ledger_outcome_names[o] : "?";
}

const char *
ledger_result_label(const struct ledger_result *res)
{
	const char *dot;

	if (res->outcome == LEDGER_RECORDED && res->event_type[0] != '\0') {
		if (res->event == LEDGER_EV_PAYMENT_FAILED)
			return "payment_failed";
		dot = strchr(res->event_type, '.');
		return dot != NULL ? dot + 1 : res->event_type;
	}
	return ledger_outcome_name(res->outcome);
}

/* ---- Applying facts ------------------------------------------------------ */

/* The digest that tells a duplicate from a conflict: the verified facts
 * that matter, not the bytes they came in. */
static void
ledger_digest(const struct ph_event *ev, char hex[2 * PH_SHA256_LEN + 1])
{
	/* "kind|order|txn|refund|amount|currency", as "%d|%s|%s|%s|%lld|%s"
	 * wrote it (every digest stored is of these bytes); the fields are
	 * the event's bounded arrays, so it always fits */
	char text[3 * (PH_ID_MAX + 1) + 2 * TEXT_INT_MAX + 16];
	char kind[TEXT_INT_MAX], amount[TEXT_INT_MAX];
	unsigned char d[PH_SHA256_LEN];
	const char *order = ev->order_id;
	size_t n;

	/* A refund result that names no order stands for itself by its
	 * merchant refund id, the value UnionPay's plugin gave order_id
	 * before (its digests stored since stay the same). */
	if (order[0] == '\0' && ledger_kind_is_refund(ev->kind))
		order = ev->merchant_refund_id;
	text_int(kind, (long long)ev->kind);
	text_int(amount, (long long)ev->amount);
	n = text_cat(text, sizeof(text), kind, "|", order, "|",
	    ev->txn_id, "|", ev->refund_id, "|", amount, "|", ev->currency,
	    (char *)NULL);
	ph_sha256(text, n < sizeof(text) ? n : sizeof(text) - 1, d);
	ph_hex_lower(d, sizeof(d), hex);
}

static void
ledger_payment_record(struct store_txn *t, const struct ledger_fact *f,
    const struct store_key *k, const char *status, const char *disposition)
{
	const struct ph_event *ev = f->ev;
	struct ledger_field p[] = {
		LEDGER_INT("v", LEDGER_RECORD_VERSION),
		LEDGER_STR("order_id", ev->order_id),
		LEDGER_STR("profile", f->profile),
		LEDGER_STR("provider", f->provider),
		LEDGER_STR("provider_txn_id", ev->txn_id),
		LEDGER_INT("amount", ev->amount),
		LEDGER_STR("currency", ev->currency),
		LEDGER_STR("status", status),
		LEDGER_STR("disposition", disposition),
		LEDGER_STR("source", f->source),
		LEDGER_INT("occurred_at", ev->occurred_at),
		LEDGER_INT("recorded_at", f->now),
		LEDGER_STR("channel", ev->channel),
	};
	size_t n = sizeof(p) / sizeof(p[0]);

	/* a payment record, written straight from its fields (no tree) */
	if (ev->channel[0] == '\0')
		n--;
	ledger_put_fields(t, STORE_DB_PAYMENTS, k, p, n, NULL);
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
	seq = ledger_emit_new(t, f, LEDGER_EV_NOTIFICATION_CONFLICT, f->ev->order_id,
	    json_pack("{s:s, s:s, s:s}", "dedup_key", f->ev->dedup_key,
	    "detail", what, "kind", ledger_kind_names[f->ev->kind]));
	ledger_note(r, LEDGER_EV_NOTIFICATION_CONFLICT, seq);
	ledger_key_order(&k, f->ev->order_id);
	if (ledger_get(t, STORE_DB_ORDERS, &k, &order) == PH_OK) {
		ledger_add_exception_new(t, order, f, "notification_conflict",
		    json_pack("{s:s}", "dedup_key", f->ev->dedup_key));
		ledger_put(t, STORE_DB_ORDERS, &k, order);
	}
	json_decref(order);
	r->outcome = LEDGER_CONFLICT;
}

/* An order paid: the fact, as fields of one line. */
static void
ledger_log_paid(const struct ledger_fact *f)
{
	struct log_line l;

	/* field by field: one for every payment, where formatting a text to
	 * parse it again cost 11,000 instructions */
	log_line_init(&l, LOG_LVL_INFO, "order_paid");
	log_line_str(&l, "order_id", f->ev->order_id);
	log_line_int(&l, "amount", (long long)f->ev->amount);
	log_line_str(&l, "currency", f->ev->currency);
	log_line_str(&l, "profile", f->profile);
	log_line_str(&l, "provider", f->provider);
	log_line_str(&l, "txn_id", f->ev->txn_id);
	log_line_str(&l, "source", f->source);
	log_line_write(&l);
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

/* Is pay a payment recorded while its order did not exist (and, with
 * order_id, one of that order)? */
static int
ledger_is_orphan(const json_t *pay, const char *order_id)
{
	return strcmp(ledger_str(pay, "status"), "SUCCEEDED") == 0 &&
	    strcmp(ledger_str(pay, "disposition"), "unknown_order") == 0 &&
	    (order_id == NULL ||
	    strcmp(ledger_str(pay, "order_id"), order_id) == 0);
}

/* f and ev as a stored payment pay states its fact (f's strings point
 * into pay), told by source at now. */
static void
ledger_payment_fact(const json_t *pay, const char *source, int64_t now,
    struct ph_event *ev, struct ledger_fact *f)
{
	ledger_record_event(pay, PH_EV_PAYMENT_SUCCEEDED, ev);
	ev->occurred_at = json_integer_value(json_object_get(pay,
	    "occurred_at"));
	ph_strlcpy(ev->channel, ledger_str(pay, "channel"),
	    sizeof(ev->channel));
	f->profile = ledger_str(pay, "profile");
	f->provider = ledger_str(pay, "provider");
	f->source = source;
	f->ev = ev;
	f->now = now;
}

/*
 * A payment recorded while its order did not exist (disposition
 * unknown_order: the provider took the money before the merchant's
 * POST /orders went through) whose order exists now, brought again by a
 * query or a replay: it is applied to the order then, not
 * answered as a duplicate, or the order would stay unpaid for good.  The
 * notifications' own retries are left to that query (the sweeper asks
 * about every pending order), so that a duplicate costs no more reads.
 */
static int
ledger_payment_orphan(struct store_txn *t, const struct ledger_fact *f)
{
	const struct ph_event *ev = f->ev;
	struct store_key pk, ok;
	struct store_val v;
	json_t *pay = NULL;
	int orphan;

	if (ev->kind != PH_EV_PAYMENT_SUCCEEDED ||
	    strcmp(f->source, ledger_source_name(LEDGER_SRC_NOTIFY)) == 0)
		return 0;
	ledger_key_pair(&pk, STORE_KEY_PAYMENT, f->profile, ev->txn_id);
	if (pk.err || ledger_get(t, STORE_DB_PAYMENTS, &pk, &pay) != PH_OK)
		return 0;
	orphan = ledger_is_orphan(pay, ev->order_id);
	json_decref(pay);
	if (!orphan)
		return 0;
	ledger_key_order(&ok, ev->order_id);
	return !ok.err && store_get(t, STORE_DB_ORDERS, &ok, &v) == PH_OK;
}

/*
 * The orphan index (STORE_DB_RECON, LEDGER_KEY_ORPHAN): order id, profile
 * and transaction of each payment recorded while its order did not exist,
 * the payment's key as value.  Registering the order reads it
 * (ledger_adopt_orphans): a provider whose query cannot find a payment
 * made long before the order was registered (a charge list searched from
 * the order's creation) would otherwise leave it unapplied and the order
 * closed at its expiry, paid.
 */
static void
ledger_orphan_key(struct store_key *k, const char *order_id,
    const char *profile, const char *txn_id)
{
	store_key_init(k, LEDGER_KEY_ORPHAN);
	store_key_str(k, order_id);
	store_key_str(k, profile);
	store_key_str(k, txn_id);
}

/*
 * A second payment f of order (paid by paid_txn), or one after it closed
 * (type order.double_payment or order.late_payment): recorded as an
 * exception, its money queued to go back, the event raised; its sequence
 * number.  The refund's in *refund when asked.
 */
static uint64_t
ledger_extra_payment(struct store_txn *t, json_t *order,
    const struct ledger_fact *f, const char *paid_txn,
    enum ledger_event type, uint64_t *refund)
{
	const struct ph_event *ev = f->ev;
	const char *disposition = ledger_event_name(type) + strlen("order.");
	uint64_t seq;

	seq = ledger_queue_refund(t, f, order, disposition);
	if (refund != NULL)
		*refund = seq;
	ledger_add_exception_new(t, order, f, disposition,
	    json_pack("{s:I}", "refund_seq", (json_int_t)seq));
	log_warn("order %s: %s %s of %lld %s (paid by %s): recorded, "
	    "refund queued as #%llu", ev->order_id, disposition,
	    ev->txn_id, (long long)ev->amount, ev->currency,
	    paid_txn != NULL ? paid_txn : "-", (unsigned long long)seq);
	return ledger_emit_new(t, f, type, ev->order_id, json_pack(
	    "{s:s?, s:I}", "paid_txn_id", paid_txn, "refund_seq",
	    (json_int_t)seq));
}

/*
 * The payment record (and its key, in pk) that exception e of order
 * speaks of, while it is still recorded with e's verdict: through one of
 * the profiles the order allows.
 */
static json_t *
ledger_stray_payment(struct store_txn *t, const json_t *order,
    const json_t *e, struct store_key *pk)
{
	const char *txn = ledger_str(e, "provider_txn_id");
	const char *type = ledger_str(e, "type");
	const char *profile;
	json_t *pay, *a;
	size_t i, n = json_array_size(json_object_get(order, "attempts"));

	/* The order's profile, then its attempts' */
	for (i = 0; i <= n; i++) {
		if (i == 0)
			profile = ledger_str(order, "profile");
		else {
			a = json_array_get(json_object_get(order, "attempts"),
			    i - 1);
			profile = ledger_str(a, "profile");
		}
		if (profile[0] == '\0')
			continue;
		ledger_key_pair(pk, STORE_KEY_PAYMENT, profile, txn);
		pay = NULL;
		if (pk->err || ledger_get(t, STORE_DB_PAYMENTS, pk, &pay) !=
		    PH_OK)
			continue;
		if (strcmp(ledger_str(pay, "status"), "SUCCEEDED") == 0 &&
		    strcmp(ledger_str(pay, "disposition"), type) == 0 &&
		    strcmp(ledger_str(pay, "order_id"),
		    ledger_str(order, "order_id")) == 0)
			return pay;
		json_decref(pay);
	}
	return NULL;
}

/*
 * Order has just been paid (by the transaction paid_txn) or closed
 * (paid_txn NULL): a payment of another amount or currency recorded
 * before that, through one of the order's own profiles, is now a second
 * payment of it (type order.double_payment) or one the closed order will
 * not take (order.late_payment), as it is when it comes after (order.c),
 * and its money is queued to go back.  Otherwise a shopper who paid the
 * wrong amount would keep it paid, nothing queued, and payhook has no
 * refund of an unpaid order to offer.  One through another account
 * (profile_mismatch) is left as it was: it may be another merchant's order
 * of the same id, or the same transaction told through the wrong profile
 * first, and no refund goes out through an account the order was never
 * offered on.  source and now are the settling fact's.
 */
static void
ledger_refund_strays(struct store_txn *t, json_t *order, const char *paid_txn,
    enum ledger_event type, const char *source, int64_t now)
{
	json_t *ex = json_object_get(order, "exceptions"), *e, *pay;
	size_t i, n = json_array_size(ex);
	struct store_key pk;
	struct ledger_fact f;
	struct ph_event ev;
	uint64_t refund;

	/* n fixed first: the exceptions added below are not looked at */
	for (i = 0; i < n && t->err == PH_OK; i++) {
		e = json_array_get(ex, i);
		if (!ledger_is_misfit(e) || (paid_txn != NULL &&
		    strcmp(ledger_str(e, "provider_txn_id"), paid_txn) == 0))
			continue;
		if ((pay = ledger_stray_payment(t, order, e, &pk)) == NULL)
			continue;
		ledger_payment_fact(pay, source, now, &ev, &f);
		ledger_extra_payment(t, order, &f, paid_txn, type, &refund);
		json_object_set_new(e, "refund_seq", json_integer(
		    (json_int_t)refund));
		json_object_set_new(pay, "disposition", json_string(
		    ledger_event_name(type) + strlen("order.")));
		ledger_put(t, STORE_DB_PAYMENTS, &pk, pay);
		json_decref(pay);
	}
}

static void
ledger_payment_succeeded(struct store_txn *t, const struct ledger_fact *f,
    int adopt, struct ledger_result *r)
{
	const struct ph_event *ev = f->ev;
	struct store_key pk, ok;
	json_t *pay = NULL, *order = NULL;
	const char *disposition, *paid_txn;
	enum ledger_event type;
	enum order_verdict verdict;
	struct order_view view;
	struct order_payment pay_in;
	uint64_t seq;
	int state, rc;

	ledger_key_pair(&pk, STORE_KEY_PAYMENT, f->profile, ev->txn_id);
	rc = ledger_get(t, STORE_DB_PAYMENTS, &pk, &pay);
	if (rc == PH_OK && strcmp(ledger_str(pay, "status"), "SUCCEEDED") == 0 &&
	    !adopt && !ledger_payment_orphan(t, f)) {
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
	if (rc == PH_OK && strcmp(ledger_str(pay, "status"),
	    "SUCCEEDED") == 0) {
		/* an orphan applied now: its index entry goes */
		ledger_orphan_key(&ok, ev->order_id, f->profile, ev->txn_id);
		if (!ok.err)
			store_del(t, STORE_DB_RECON, &ok);
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
		ledger_orphan_key(&ok, ev->order_id, f->profile, ev->txn_id);
		if (!ok.err && !pk.err)
			store_put(t, STORE_DB_RECON, &ok, pk.b, pk.len);
		seq = ledger_emit_new(t, f, LEDGER_EV_PAYMENT_UNKNOWN_ORDER, ev->order_id,
		    NULL);
		ledger_note(r, LEDGER_EV_PAYMENT_UNKNOWN_ORDER, seq);
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
	case ORDER_V_CONFLICT:
		json_decref(order);
		ledger_conflict(t, f, "the order's paying transaction with "
		    "another amount or currency", r);
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
		type = LEDGER_EV_ORDER_PAID;
		r->outcome = LEDGER_APPLIED;
		seq = ledger_emit_new(t, f, type, ev->order_id, NULL);
		ledger_refund_strays(t, order, ev->txn_id,
		    LEDGER_EV_ORDER_DOUBLE_PAYMENT, f->source, f->now);
		break;
	case ORDER_V_MISMATCH:
		ledger_add_exception_new(t, order, f, "amount_mismatch",
		    json_pack("{s:O, s:O}",
		    "expected_amount", json_object_get(order, "amount"),
		    "expected_currency", json_object_get(order, "currency")));
		disposition = "amount_mismatch";
		type = LEDGER_EV_ORDER_AMOUNT_MISMATCH;
		r->outcome = LEDGER_RECORDED;
		log_warn("order %s: payment %s of %lld %s does not match the "
		    "order (%lld %s): recorded, order not paid", ev->order_id,
		    ev->txn_id, (long long)ev->amount, ev->currency,
		    (long long)json_integer_value(json_object_get(order,
		    "amount")), ledger_str(order, "currency"));
		seq = ledger_emit_new(t, f, type, ev->order_id, json_pack(
		    "{s:O, s:O}",
		    "expected_amount", json_object_get(order, "amount"),
		    "expected_currency", json_object_get(order, "currency")));
		break;
	case ORDER_V_PROFILE:
		ledger_add_exception_new(t, order, f, "profile_mismatch",
		    json_pack("{s:s, s:O}", "paid_through", f->profile,
		    "expected_profile", json_object_get(order, "profile")));
		disposition = "profile_mismatch";
		type = LEDGER_EV_ORDER_PROFILE_MISMATCH;
		r->outcome = LEDGER_RECORDED;
		log_warn("order %s: payment %s of %lld %s arrived through "
		    "profile %s, the order belongs to %s: recorded, not the "
		    "order's", ev->order_id, ev->txn_id, (long long)ev->amount,
		    ev->currency, f->profile, ledger_str(order, "profile"));
		seq = ledger_emit_new(t, f, type, ev->order_id, json_pack(
		    "{s:O}", "expected_profile",
		    json_object_get(order, "profile")));
		break;
	case ORDER_V_DOUBLE:
	case ORDER_V_LATE:
	default:
		type = verdict == ORDER_V_LATE ? LEDGER_EV_ORDER_LATE_PAYMENT :
		    LEDGER_EV_ORDER_DOUBLE_PAYMENT;
		disposition = ledger_event_name(type) + strlen("order.");
		seq = ledger_extra_payment(t, order, f, paid_txn, type, NULL);
		r->outcome = LEDGER_RECORDED;
		break;
	}
	ledger_note(r, type, seq);
	ledger_put(t, STORE_DB_ORDERS, &ok, order);
	ledger_payment_record(t, f, &pk, "SUCCEEDED", disposition);
	json_decref(order);
}

/* Applies the orphan payment whose key v holds to its order, now
 * registered; a record that is no orphan of order_id any more (applied by
 * a query since) is left alone. */
static void
ledger_adopt_one(struct store_txn *t, const char *order_id,
    const struct store_val *v, int64_t now, struct ledger_adopted *a)
{
	struct store_key pk;
	struct ledger_fact f;
	struct ledger_result r;
	struct ph_event ev;
	json_t *pay = NULL;

	store_key_from_val(&pk, v);
	if (pk.err || ledger_get(t, STORE_DB_PAYMENTS, &pk, &pay) != PH_OK)
		return;
	if (!ledger_is_orphan(pay, order_id)) {
		json_decref(pay);
		return;
	}
	ledger_payment_fact(pay, ledger_str(pay, "source"), now, &ev, &f);
	memset(&r, 0, sizeof(r));
	log_info("order %s registered: payment %s of %lld %s recorded "
	    "before it (unknown_order) applied", order_id, ev.txn_id,
	    (long long)ev.amount, ev.currency);
	ledger_payment_succeeded(t, &f, 1, &r);
	a->applied++;
	if (r.event == LEDGER_EV_ORDER_PAID && t->err == PH_OK) {
		a->paid = 1;
		ledger_paid_keep(&a->kept, &f);
	}
	json_decref(pay);
}

#define LEDGER_ADOPT_BATCH 8

void
ledger_adopt_orphans(struct store_txn *t, const char *order_id, int64_t now,
    struct ledger_adopted *a)
{
	struct store_key from, keys[LEDGER_ADOPT_BATCH];
	struct store_scan sc;
	struct store_val v;
	size_t i, n;

	memset(a, 0, sizeof(*a));
	store_key_init(&from, LEDGER_KEY_ORPHAN);
	store_key_str(&from, order_id);
	if (from.err)
		return;
	/* The payment keys first, their entries gone, then each applied:
	 * applying writes to other databases than the one scanned. */
	do {
		n = 0;
		store_scan_begin(&sc, t, STORE_DB_RECON, &from);
		while (n < LEDGER_ADOPT_BATCH && store_scan_next(&sc) &&
		    store_val_has_prefix(&sc.key, &from)) {
			store_key_from_val(&keys[n++], &sc.val);
			store_scan_del(&sc);
		}
		store_scan_end(&sc);
		for (i = 0; i < n && t->err == PH_OK; i++) {
			v.data = keys[i].b;
			v.len = keys[i].len;
			ledger_adopt_one(t, order_id, &v, now, a);
		}
	} while (n == LEDGER_ADOPT_BATCH && t->err == PH_OK);
}

int
ledger_orphan_index(struct store_txn *t, const json_t *pay,
    const struct store_val *pk)
{
	struct store_key k;
	struct store_val v;

	if (!ledger_is_orphan(pay, NULL))
		return 0;
	ledger_orphan_key(&k, ledger_str(pay, "order_id"),
	    ledger_str(pay, "profile"), ledger_str(pay, "provider_txn_id"));
	if (k.err || store_get(t, STORE_DB_RECON, &k, &v) == PH_OK)
		return 0;
	store_put(t, STORE_DB_RECON, &k, pk->data, pk->len);
	return 1;
}

/*
 * Is f a failure told through a profile its order was never offered on?
 * Then it is another order of the same id (as a success there is,
 * order.profile_mismatch), and payment.failed would let one account's
 * traffic tell the merchant that another account's order failed.  No
 * money moved, so nothing is raised: the payment record keeps it.
 */
static int
ledger_failure_foreign(struct store_txn *t, const struct ledger_fact *f)
{
	struct store_key ok;
	json_t *order = NULL;
	int foreign;

	ledger_key_order(&ok, f->ev->order_id);
	if (ledger_get(t, STORE_DB_ORDERS, &ok, &order) != PH_OK)
		return 0;
	foreign = !ledger_profile_allowed(order, f->profile);
	json_decref(order);
	if (foreign)
		log_warn("order %s: a payment failure (%s) through profile %s, "
		    "on which the order was never offered: not this order's, "
		    "nothing raised", f->ev->order_id,
		    f->ev->txn_id[0] != '\0' ? f->ev->txn_id : "no txn",
		    f->profile);
	return foreign;
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
		/* The profile's, as every payment is (doc/design/store.md):
		 * where a success of the same transaction is found. */
		ledger_key_pair(&pk, STORE_KEY_PAYMENT, f->profile,
		    ev->txn_id);
		rc = ledger_get(t, STORE_DB_PAYMENTS, &pk, &pay);
		/* A failure never overwrites a payment known to succeed. */
		if (rc == PH_E_NOTFOUND)
			ledger_payment_record(t, f, &pk, "FAILED", "failed");
		/* The same failure told again, its dedup key pruned since
		 * (or under another key): the payment record remembers it,
		 * as it remembers a success. */
		if (rc == PH_OK && strcmp(ledger_str(pay, "status"),
		    "FAILED") == 0) {
			json_decref(pay);
			r->outcome = LEDGER_DUPLICATE;
			return;
		}
		json_decref(pay);
		/* A transaction known to have succeeded said to have failed:
		 * the provider contradicts itself, and a merchant told
		 * payment.failed might stop a paid order. */
		if (rc == PH_OK) {
			ledger_conflict(t, f, "a failure of a transaction "
			    "recorded as paid", r);
			return;
		}
	}
	if (ledger_failure_foreign(t, f)) {
		r->outcome = LEDGER_RECORDED;
		return;
	}
	log_info("order %s: payment failed at %s (%s)", ev->order_id,
	    f->provider, ev->txn_id[0] != '\0' ? ev->txn_id : "no txn");
	seq = ledger_emit_new(t, f, LEDGER_EV_PAYMENT_FAILED, ev->order_id, NULL);
	ledger_note(r, LEDGER_EV_PAYMENT_FAILED, seq);
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
	if (f->ev->occurred_at > 0 && lag >= 0)
		metrics_observe("payhook_payment_lag_seconds", labels,
		    (double)lag);
}

/* Where a fact is looked for: its digest and dedup keys. */
struct ledger_fact_keys {
	char digest[2 * PH_SHA256_LEN + 1];
	struct store_key dk;		/* the profile's dedup key */
	struct store_key dk_v1;		/* schema 1's, provider-wide */
	struct store_key conflict;	/* this content of a known dedup key
					 * recorded as a conflict (made by
					 * ledger_seen when it is one) */
};

/* The dedup key of f with the digest of its content: where a conflict
 * is remembered.  Its text stays in PH_DEDUP_MAX + 74 bytes, a key's
 * text in 255. */
static void
ledger_conflict_key(const struct ledger_fact *f, const char *digest,
    struct store_key *k)
{
	char text[PH_DEDUP_MAX + sizeof("#conflict:") + 2 * PH_SHA256_LEN];

	snprintf(text, sizeof(text), "%s#conflict:%s", f->ev->dedup_key,
	    digest);
	ledger_key_pair(k, STORE_KEY_DEDUP, f->profile, text);
}

/*
 * Looks for the dedup key (the profile's, else schema 1's provider-wide
 * key of the same fact); 1 when it is known with the same digest, or
 * when this other content of it was recorded as a conflict already: a
 * provider sends a conflicting notification again and again, and it is
 * one conflict.
 */
static int
ledger_seen(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_fact_keys *k, int *conflict)
{
	struct ledger_dedup d;
	int rc;

	*conflict = 0;
	rc = ledger_dedup_get(t, &k->dk, &d);
	if (rc == PH_E_NOTFOUND && !k->dk_v1.err)
		rc = ledger_dedup_get(t, &k->dk_v1, &d);
	if (rc != PH_OK)
		return 0;
	if (strcmp(d.digest, k->digest) == 0)
		return !ledger_payment_orphan(t, f);
	ledger_conflict_key(f, k->digest, &k->conflict);
	if (!k->conflict.err && ledger_dedup_get(t, &k->conflict, &d) ==
	    PH_OK && strcmp(d.digest, k->digest) == 0)
		return 1;
	*conflict = 1;
	return 0;
}

/* Is the fixed-size field NUL-terminated within its size? */
#define LEDGER_TERMINATED(field) \
	(memchr((field), '\0', sizeof(field)) != NULL)

/* Text a record and the event feed can hold: UTF-8 (JSON and CBOR
 * hold nothing else; a write of other bytes fails) without control
 * characters (the log's). */
static int
ledger_text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), len;

	while (n > 0) {
		if (*p < 0x20 || *p == 0x7f || (len = text_utf8_len(p, n)) == 0)
			return 0;
		p += len;
		n -= len;
	}
	return 1;
}

/* 9999-12-31T23:59:59Z: the last time an RFC 3339 text can hold. */
#define LEDGER_TIME_MAX 253402300799LL

int
ledger_event_check(const struct ph_event *ev, struct ph_diag *diag)
{
	static const struct {
		size_t off;
		const char *name;
	} texts[] = {
		{ offsetof(struct ph_event, txn_id), "txn_id" },
		{ offsetof(struct ph_event, refund_id), "refund_id" },
		{ offsetof(struct ph_event, dedup_key), "dedup_key" },
		{ offsetof(struct ph_event, channel), "channel" },
		{ offsetof(struct ph_event, merchant_refund_id),
		    "merchant_refund_id" },
		{ offsetof(struct ph_event, cursor), "cursor" },
	};
	size_t i;

	if (!LEDGER_TERMINATED(ev->order_id) ||
	    !LEDGER_TERMINATED(ev->txn_id) ||
	    !LEDGER_TERMINATED(ev->refund_id) ||
	    !LEDGER_TERMINATED(ev->currency) ||
	    !LEDGER_TERMINATED(ev->dedup_key) ||
	    !LEDGER_TERMINATED(ev->channel) ||
	    !LEDGER_TERMINATED(ev->merchant_refund_id) ||
	    !LEDGER_TERMINATED(ev->cursor))
		return ph_fail(diag, PH_E_FIELD, "a field of the event is not "
		    "terminated");
	if ((unsigned)ev->kind >= PH_EV__MAX)
		return ph_fail(diag, PH_E_FIELD, "unknown event kind %d",
		    (int)ev->kind);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (!ledger_text_ok((const char *)ev + texts[i].off))
			return ph_fail(diag, PH_E_FIELD, "%s is not UTF-8 "
			    "text without control characters", texts[i].name);
	if (ev->occurred_at < 0 || ev->occurred_at > LEDGER_TIME_MAX)
		return ph_fail(diag, PH_E_FIELD, "occurred_at %lld out of "
		    "range (unix seconds up to the year 9999, or 0)",
		    (long long)ev->occurred_at);
	/* The query runner consumes it; anywhere else it is a bug. */
	if (ev->kind == PH_EV_QUERY_MORE)
		return ph_fail(diag, PH_E_FIELD, "a page marker (query.more) "
		    "is not an event");
	if (ev->amount < 0 || ev->amount > PH_AMOUNT_MAX)
		return ph_fail(diag, PH_E_FIELD, "amount %lld out of range",
		    (long long)ev->amount);
	/* An event payhook does not act on needs nothing more. */
	if (ev->kind == PH_EV_IGNORED)
		return PH_OK;
	if (ev->dedup_key[0] == '\0')
		return ph_fail(diag, PH_E_FIELD, "the event has no dedup key");
	/* A refund result may name only the payment: the ledger finds
	 * its order through the payment it recorded. */
	if (!(ev->order_id[0] == '\0' && ledger_kind_is_refund(ev->kind)) &&
	    !order_id_valid(ev->order_id, strlen(ev->order_id)))
		return ph_fail(diag, PH_E_FIELD, "invalid order id \"%s\"",
		    ev->order_id);
	if (ev->kind == PH_EV_NOT_FOUND || ev->kind == PH_EV_PAYMENT_PENDING)
		return PH_OK;
	if (!ph_currency_valid(ev->currency))
		return ph_fail(diag, PH_E_FIELD, "invalid currency \"%s\"",
		    ev->currency);
	/* A payment moves money: a verified "success" of nothing is not
	 * one, whatever the provider's grammar allowed
	 * (doc/design/security.md §2.4). */
	if (ev->kind == PH_EV_PAYMENT_SUCCEEDED && ev->amount <= 0)
		return ph_fail(diag, PH_E_FIELD, "a successful payment of "
		    "amount %lld", (long long)ev->amount);
	if ((ev->kind == PH_EV_PAYMENT_SUCCEEDED ||
	    ev->kind == PH_EV_REFUND_SUCCEEDED ||
	    ev->kind == PH_EV_REFUND_FAILED) && ev->txn_id[0] == '\0')
		return ph_fail(diag, PH_E_FIELD, "the event names no "
		    "transaction");
	return PH_OK;
}

/* The digest and dedup keys of f: PH_OK, or why f cannot be applied. */
static int
ledger_fact_keys(const struct ledger_fact *f, struct ledger_fact_keys *k,
    struct ph_diag *diag)
{
	const struct ph_event *ev = f->ev;
	struct ph_diag why;

	memset(&why, 0, sizeof(why));
	/* Every caller has checked the event already; this is the same
	 * check, for a caller that forgot. */
	if (ledger_event_check(ev, &why) != PH_OK)
		return ph_fail(diag, PH_E_INTERNAL, "plugin %s gave an invalid "
		    "event: %s", f->provider, why.msg);
	/* Whatever is applied is remembered by its dedup key. */
	if (ev->dedup_key[0] == '\0')
		return ph_fail(diag, PH_E_INTERNAL, "plugin %s gave an event "
		    "without dedup key", f->provider);
	ledger_digest(ev, k->digest);
	ledger_key_pair(&k->dk, STORE_KEY_DEDUP, f->profile, ev->dedup_key);
	ledger_key_pair(&k->dk_v1, STORE_KEY_DEDUP_V1, f->provider,
	    ev->dedup_key);
	k->conflict.err = 1;
	if (k->dk.err)
		return ph_fail(diag, PH_E_INTERNAL, "dedup key too long");
	return PH_OK;
}

/* A fact given the order its event did not name. */
struct ledger_named {
	struct ledger_fact f;
	struct ph_event ev;
};

/*
 * f, or when its event is a refund result that names only its payment
 * (UnionPay's), its copy in n naming the order that payment was recorded
 * for.
 */
static const struct ledger_fact *
ledger_fact_order(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_named *n)
{
	if (f->ev->order_id[0] != '\0' || !ledger_kind_is_refund(f->ev->kind))
		return f;
	n->ev = *f->ev;
	ledger_payment_order(t, f->profile, n->ev.txn_id, n->ev.order_id,
	    sizeof(n->ev.order_id));
	n->f = *f;
	n->f.ev = &n->ev;
	return &n->f;
}

void
ledger_fact_order_id(struct store *s, const struct ledger_fact *f,
    char order_id[PH_ID_MAX + 1])
{
	struct ledger_named n;
	struct store_txn t;

	ph_strlcpy(order_id, f->ev->order_id, PH_ID_MAX + 1);
	if (order_id[0] != '\0' || store_begin(s, 0, &t) != PH_OK)
		return;
	ph_strlcpy(order_id, ledger_fact_order(&t, f, &n)->ev->order_id,
	    PH_ID_MAX + 1);
	store_abort(&t);
}

int
ledger_apply_txn(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag)
{
	const struct ph_event *ev = f->ev;
	struct ledger_fact_keys k;
	struct ledger_dedup d;
	struct ledger_named n;
	int rc, conflict;

	memset(r, 0, sizeof(*r));
	if ((rc = ledger_fact_keys(f, &k, diag)) != PH_OK)
		return rc;
	/* For every path below, a conflict's as much as a settlement's; the
	 * digest stays the event's as the provider told it. */
	f = ledger_fact_order(t, f, &n);
	ev = f->ev;
	if (ledger_seen(t, f, &k, &conflict)) {
		r->outcome = LEDGER_DUPLICATE;
		return t->err;
	}
	memset(&d, 0, sizeof(d));
	memcpy(d.digest, k.digest, sizeof(d.digest));
	d.first_seen = f->now;
	ph_strlcpy(d.kind, ledger_kind_names[ev->kind], sizeof(d.kind));
	ph_strlcpy(d.order_id, ev->order_id, sizeof(d.order_id));
	ph_strlcpy(d.source, f->source, sizeof(d.source));
	if (conflict) {
		ledger_conflict(t, f, "same dedup key, different payload", r);
		/* The same conflicting content again is a duplicate. */
		if (!k.conflict.err)
			ledger_dedup_put(t, &k.conflict, &d);
		return t->err;
	}
	ledger_dedup_put(t, &k.dk, &d);
	switch (ev->kind) {
	case PH_EV_PAYMENT_SUCCEEDED:
		ledger_payment_succeeded(t, f, 0, r);
		break;
	case PH_EV_PAYMENT_FAILED:
		ledger_payment_failed(t, f, r);
		break;
	case PH_EV_REFUND_SUCCEEDED:
	case PH_EV_REFUND_FAILED:
		ledger_refund_fact(t, f, r);
		break;
	default:
		r->outcome = LEDGER_NOOP;
		break;
	}
	return t->err;
}

void
ledger_applied(const struct ledger_fact *f, const struct ledger_result *r)
{
	/* Only what is committed is told: a transaction aborted (a full
	 * store, a leader killed) or run again paid nothing. */
	if (r->event == LEDGER_EV_ORDER_PAID) {
		ledger_log_paid(f);
		ledger_paid_metrics(f);
	}
}

void
ledger_paid_keep(struct ledger_paid_kept *k, const struct ledger_fact *f)
{
	k->ev = *f->ev;
	ph_strlcpy(k->profile, f->profile, sizeof(k->profile));
	ph_strlcpy(k->provider, f->provider, sizeof(k->provider));
	ph_strlcpy(k->source, f->source, sizeof(k->source));
	k->now = f->now;
}

void
ledger_paid_tell(const struct ledger_paid_kept *k)
{
	struct ledger_fact f;

	f.profile = k->profile;
	f.provider = k->provider;
	f.source = k->source;
	f.ev = &k->ev;
	f.now = k->now;
	ledger_log_paid(&f);
	ledger_paid_metrics(&f);
}

int
ledger_known(struct store *s, const struct ledger_fact *f,
    struct ledger_result *r, int *known, struct ph_diag *diag)
{
	struct ledger_fact_keys k;
	struct store_txn t;
	int rc, conflict;

	*known = 0;
	memset(r, 0, sizeof(*r));
	if ((rc = ledger_fact_keys(f, &k, diag)) != PH_OK)
		return rc;
	/* Retries are the common case: answer them without the writer lock.
	 * What a transaction sees is committed; store_settle() makes sure it
	 * is on disk before it is acknowledged again. */
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	*known = ledger_seen(&t, f, &k, &conflict);
	store_abort(&t);
	if (*known) {
		if ((rc = store_settle(&t)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		r->outcome = LEDGER_DUPLICATE;
	}
	return PH_OK;
}

int
ledger_apply_alone(struct store *s, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag)
{
	struct store_txn t;
	int rc;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if ((rc = ledger_apply_txn(&t, f, r, diag)) != PH_OK) {
		store_abort(&t);
		memset(r, 0, sizeof(*r));
		return ledger_store_fail(diag, rc);
	}
	if ((rc = store_commit(&t)) != PH_OK) {
		memset(r, 0, sizeof(*r));
		return ledger_store_fail(diag, rc);
	}
	ledger_applied(f, r);
	return PH_OK;
}

int
ledger_close_order(struct store *s, const char *order_id, int64_t now,
    const char *reason, struct ledger_result *r, struct ph_diag *diag)
{
	struct ledger_fact f;
	struct ph_event ev;
	struct store_txn t;
	struct store_key k;
	json_t *order;
	uint64_t seq;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = ledger_open_order(s, order_id, &t, &k, &order)) != PH_OK)
		return ph_fail(diag, rc, "order %s: %s", order_id,
		    ph_strerror(rc));
	if (!ledger_is_pending(order)) {
		store_abort(&t);
		rc = ph_fail(diag, PH_E_CONFLICT, "order %s is %s, not closed",
		    order_id, ledger_str(order, "state"));
		json_decref(order);
		return rc;
	}
	json_object_set_new(order, "state",
	    json_string(order_state_name(ORDER_CLOSED)));
	json_object_set_new(order, "closed_at", json_integer(now));
	json_object_set_new(order, "close_reason", json_string(reason));
	json_object_set_new(order, "updated_at", json_integer(now));
	ledger_hold(order, "lease_until", "lease_owner", NULL, 0);
	ledger_guard_hold(order, NULL, 0);
	ledger_set_due(&t, order, 0);
	ledger_count(&t, ORDER_PENDING, -1);
	ledger_count(&t, ORDER_CLOSED, 1);

	memset(&ev, 0, sizeof(ev));
	ev.kind = PH_EV_PAYMENT_CLOSED;
	ph_strlcpy(ev.order_id, order_id, sizeof(ev.order_id));
	ev.amount = json_integer_value(json_object_get(order, "amount"));
	ph_strlcpy(ev.currency, ledger_str(order, "currency"),
	    sizeof(ev.currency));
	f.profile = ledger_str(order, "profile");
	f.provider = "";
	f.source = "sweep";
	f.ev = &ev;
	f.now = now;
	seq = ledger_emit_new(&t, &f, LEDGER_EV_ORDER_CLOSED, order_id,
	    json_pack("{s:s}", "reason", reason));
	ledger_note(r, LEDGER_EV_ORDER_CLOSED, seq);
	/* What it holds that did not fit it goes back: it is closed now. */
	ledger_refund_strays(&t, order, NULL, LEDGER_EV_ORDER_LATE_PAYMENT,
	    "sweep", now);
	ledger_put(&t, STORE_DB_ORDERS, &k, order);
	r->outcome = LEDGER_APPLIED;
	rc = store_commit(&t);
	json_decref(order);
	if (rc != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	log_info("order %s closed: %s", order_id, reason);
	return PH_OK;
}
