/*
 * The ledger's side of the defences against missed payments: payment
 * attempts behind the pre-payment guard, the due list the sweeper works
 * from, its leases, and closing orders the provider confirmed unpaid.
 * Each function is one write transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ops/log.h"
#include "ops/proc.h"
#include "ledger/order.h"

#define LEDGER_ATTEMPTS_MAX 32

static void
ledger_key_due(struct store_key *k, int64_t at, const char *order_id)
{
	store_key_init(k, 0);
	store_key_u64(k, (uint64_t)at);
	store_key_str(k, order_id);
}

void
ledger_set_due(struct store_txn *t, json_t *order, int64_t at)
{
	const char *id = ledger_str(order, "order_id");
	json_t *old = json_object_get(order, "next_query_at");
	struct store_key k;

	if (json_is_integer(old)) {
		ledger_key_due(&k, json_integer_value(old), id);
		store_del(t, STORE_DB_DUE, &k);
	}
	if (at > 0) {
		ledger_key_due(&k, at, id);
		store_put(t, STORE_DB_DUE, &k, "", 0);
		json_object_set_new(order, "next_query_at", json_integer(at));
	} else
		json_object_set_new(order, "next_query_at", json_null());
}

/* Opens a write transaction and reads the order; *order owned by caller. */
int
ledger_open_order(struct store *s, const char *order_id, struct store_txn *t,
    struct store_key *k, json_t **order)
{
	int rc;

	*order = NULL;
	ledger_key_order(k, order_id);
	if (k->err)
		return PH_E_NOTFOUND;
	if ((rc = store_begin(s, 1, t)) != PH_OK)
		return rc;
	if ((rc = ledger_get(t, STORE_DB_ORDERS, k, order)) != PH_OK)
		store_abort(t);
	return rc;
}

int
ledger_is_pending(const json_t *order)
{
	return strcmp(ledger_str(order, "state"),
	    order_state_name(ORDER_PENDING)) == 0;
}

/* True while another holder's claim on field (guard or lease) runs. */
static int
ledger_held(const json_t *order, const char *until, const char *owner,
    const char *token, int64_t now)
{
	json_t *u = json_object_get(order, until);

	return json_is_integer(u) && json_integer_value(u) > now &&
	    strcmp(ledger_str(order, owner), token) != 0;
}

void
ledger_hold(json_t *order, const char *until, const char *owner,
    const char *token, int64_t expires)
{
	if (token == NULL) {
		json_object_del(order, until);
		json_object_del(order, owner);
		return;
	}
	json_object_set_new(order, until, json_integer(expires));
	json_object_set_new(order, owner, json_string(token));
}

/*
 * The pre-payment guard: held by one call at a time, named by token and by
 * its process, so that a call whose process was killed (on this host) is
 * taken over at once, as its Idempotency-Key is, instead of refusing every
 * attempt of the order until the hold runs out.
 */
static int
ledger_guard_held(const json_t *order, const char *token, int64_t now)
{
	json_int_t pid = json_integer_value(json_object_get(order,
	    "guard_pid"));
	const json_t *st = json_object_get(order, "guard_start");
	unsigned long long start = 0;

	/* [pid, start]: the start of that pid only.  An older payhook that
	 * took the guard since wrote its own pid and left this as it was. */
	if (json_integer_value(json_array_get(st, 0)) == pid)
		start = (unsigned long long)json_integer_value(
		    json_array_get(st, 1));
	return ledger_held(order, "guard_until", "guard_owner", token, now) &&
	    !ledger_proc_gone((long)pid, start, ledger_str(order,
	    "guard_host"));
}

void
ledger_guard_hold(json_t *order, const char *token, int64_t until)
{
	char host[LEDGER_HOST_MAX];

	ledger_hold(order, "guard_until", "guard_owner", token, until);
	if (token == NULL) {
		json_object_del(order, "guard_pid");
		json_object_del(order, "guard_start");
		json_object_del(order, "guard_host");
		return;
	}
	ledger_proc_host(host);
	json_object_set_new(order, "guard_pid", json_integer(getpid()));
	json_object_set_new(order, "guard_start", json_pack("[I, I]",
	    (json_int_t)getpid(), (json_int_t)proc_start()));
	json_object_set_new(order, "guard_host", json_string(host));
}

int
ledger_guard_begin(struct store *s, const char *order_id, int64_t now,
    int64_t hold_s, const char *token, json_t **order,
    enum ledger_refusal *why, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key k;
	int64_t expires;
	int rc;

	*why = LEDGER_REFUSAL_ATTEMPT;
	if ((rc = ledger_open_order(s, order_id, &t, &k, order)) != PH_OK)
		return rc == PH_E_NOTFOUND ? rc :
		    ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if (!ledger_is_pending(*order)) {
		store_abort(&t);
		return ph_fail(diag, PH_E_CONFLICT, "order %s is %s", order_id,
		    ledger_str(*order, "state"));
	}
	/* The sweep closes it at its providers, but not every provider has
	 * a close call: a payment opened now would come late, to be
	 * refunded (by hand where the provider has no refund call). */
	expires = json_integer_value(json_object_get(*order, "expires_at"));
	if (expires > 0 && now >= expires) {
		store_abort(&t);
		*why = LEDGER_REFUSAL_EXPIRED;
		return ph_fail(diag, PH_E_CONFLICT, "order %s expired %llds "
		    "ago: no new payment attempt; open a new order", order_id,
		    (long long)(now - expires));
	}
	if (ledger_guard_held(*order, token, now)) {
		store_abort(&t);
		*why = LEDGER_REFUSAL_HELD;
		return ph_fail(diag, PH_E_CONFLICT, "another payment attempt "
		    "for order %s is being opened right now", order_id);
	}
	ledger_guard_hold(*order, token, now + hold_s);
	ledger_put(&t, STORE_DB_ORDERS, &k, *order);
	if ((rc = store_commit(&t)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	return PH_OK;
}

/* When the latest attempt the merchant opened was opened: through
 * /attempts, or with the order when its provider data came with it (the
 * order's creation alone is none); 0 when none. */
static int64_t
ledger_last_attempt(const json_t *order)
{
	json_t *a;
	size_t i;
	int64_t last = 0;

	json_array_foreach(json_object_get(order, "attempts"), i, a)
		if ((strcmp(ledger_str(a, "source"), "attempt") == 0 ||
		    json_object_get(a, "data") != NULL) &&
		    json_integer_value(json_object_get(a, "at")) > last)
			last = json_integer_value(json_object_get(a, "at"));
	return last;
}

/* Keeps the guard's reply with idem (if any) and commits. */
static int
ledger_guard_commit(struct store_txn *t, struct ledger_idem *idem, int rc,
    enum ledger_refusal why, const char *message, const json_t *order)
{
	ledger_idem_keep(t, idem, rc, rc == PH_OK, why, message, order);
	return store_commit(t);
}

/* The exception of a payment of order that does not fit it (another
 * amount or currency, another merchant account); NULL when none. */
static const json_t *
ledger_mismatch(const json_t *order)
{
	const json_t *x;
	size_t i;

	json_array_foreach(json_object_get(order, "exceptions"), i, x)
		if (strcmp(ledger_str(x, "type"), "amount_mismatch") == 0 ||
		    strcmp(ledger_str(x, "type"), "profile_mismatch") == 0)
			return x;
	return NULL;
}

int
ledger_guard_end(struct store *s, const char *order_id, const char *token,
    const char *profile, const json_t *data, int64_t now, int64_t hold_s,
    int64_t next_query_at, struct ledger_idem *idem, json_t **order,
    enum ledger_refusal *why, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_key k;
	json_t *att, *list;
	const json_t *x;
	int64_t last, expires;
	int rc, paid;

	*why = LEDGER_REFUSAL_ATTEMPT;
	if ((rc = ledger_open_order(s, order_id, &t, &k, order)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	paid = !ledger_is_pending(*order);
	/* Still this call's: its hold may have run out while it asked the
	 * provider, and another call taken the guard (and let it go). */
	if (!paid && strcmp(ledger_str(*order, "guard_owner"), token) != 0) {
		store_abort(&t);
		*why = LEDGER_REFUSAL_HELD;
		return ph_fail(diag, PH_E_CONFLICT, "another payment attempt "
		    "for order %s was opened while this one was being checked",
		    order_id);
	}
	ledger_guard_hold(*order, NULL, 0);
	/* Expired while its earlier attempts were asked about: the sweeper
	 * may be closing it at its providers, this one's not among them. */
	expires = json_integer_value(json_object_get(*order, "expires_at"));
	if (!paid && expires > 0 && now >= expires) {
		ledger_put(&t, STORE_DB_ORDERS, &k, *order);
		*why = LEDGER_REFUSAL_EXPIRED;
		ph_fail(diag, PH_E_CONFLICT, "order %s expired while its "
		    "earlier payment attempts were checked: no new payment "
		    "attempt; open a new order", order_id);
		if ((rc = ledger_guard_commit(&t, idem, PH_E_CONFLICT,
		    LEDGER_REFUSAL_EXPIRED, diag->msg, *order)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		return PH_E_CONFLICT;
	}
	/* Paid already, but not as it says (another amount or currency,
	 * another merchant account): a new attempt would be a second
	 * payment the shopper makes for it. */
	if (!paid && (x = ledger_mismatch(*order)) != NULL) {
		ledger_put(&t, STORE_DB_ORDERS, &k, *order);
		*why = LEDGER_REFUSAL_MISMATCH;
		ph_fail(diag, PH_E_CONFLICT, "order %s has a payment that does "
		    "not fit it (%s: %s %lld %s; see its exceptions): no new "
		    "payment attempt; settle that payment (refund it) and "
		    "open a new order", order_id, ledger_str(x, "type"),
		    ledger_str(x, "provider_txn_id"), (long long)json_integer_value(
		    json_object_get(x, "amount")), ledger_str(x, "currency"));
		if ((rc = ledger_guard_commit(&t, idem, PH_E_CONFLICT,
		    LEDGER_REFUSAL_MISMATCH, diag->msg, *order)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		return PH_E_CONFLICT;
	}
	list = json_object_get(*order, "attempts");
	last = ledger_last_attempt(*order);
	if (!paid && hold_s > 0 && last > 0 && now - last < hold_s) {
		/* Let go, and say why no new attempt may start yet. */
		ledger_put(&t, STORE_DB_ORDERS, &k, *order);
		ph_fail(diag, PH_E_CONFLICT, "a payment attempt for order %s "
		    "was opened %llds ago and is not settled; a new one may "
		    "start %llds after it", order_id, (long long)(now - last),
		    (long long)hold_s);
		*why = LEDGER_REFUSAL_HELD;
		if ((rc = ledger_guard_commit(&t, idem, PH_E_CONFLICT,
		    LEDGER_REFUSAL_HELD, diag->msg, *order)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
		return PH_E_CONFLICT;
	}
	if (!paid) {
		if (!json_is_array(list)) {
			list = json_array();
			json_object_set_new(*order, "attempts", list);
		}
		if (json_array_size(list) >= LEDGER_ATTEMPTS_MAX) {
			/* Let go too: refused for good, not "in progress". */
			ledger_put(&t, STORE_DB_ORDERS, &k, *order);
			ph_fail(diag, PH_E_TOOBIG, "order %s has had %d payment "
			    "attempts (its creation counts as one), the most an "
			    "order may have: open a new order", order_id,
			    LEDGER_ATTEMPTS_MAX);
			if ((rc = ledger_guard_commit(&t, idem, PH_E_CONFLICT,
			    LEDGER_REFUSAL_ATTEMPTS_MAX, diag->msg, *order)) !=
			    PH_OK)
				return ph_fail(diag, rc, "database: %s",
				    ph_strerror(rc));
			return PH_E_TOOBIG;
		}
		att = json_pack("{s:s, s:I, s:s}", "profile", profile, "at",
		    (json_int_t)now, "source", "attempt");
		if (att != NULL && data != NULL)
			json_object_set(att, "data", (json_t *)data);
		json_array_append_new(list, att);
		json_object_set_new(*order, "updated_at", json_integer(now));
		/* A new attempt restarts the polling schedule. */
		json_object_set_new(*order, "query_count", json_integer(0));
		json_object_del(*order, "query_failures");
		json_object_del(*order, "query_failures_at");
		ledger_set_due(&t, *order, next_query_at);
	}
	ledger_put(&t, STORE_DB_ORDERS, &k, *order);
	if (paid)
		ph_fail(diag, PH_E_CONFLICT, "order %s is %s", order_id,
		    ledger_str(*order, "state"));
	if ((rc = ledger_guard_commit(&t, idem, paid ? PH_E_CONFLICT : PH_OK,
	    paid ? LEDGER_REFUSAL_ATTEMPT : LEDGER_REFUSAL_NONE,
	    paid ? diag->msg : "", *order)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	return paid ? PH_E_CONFLICT : PH_OK;
}

int
ledger_guard_release(struct store *s, const char *order_id,
    const char *token)
{
	struct store_txn t;
	struct store_key k;
	json_t *order;
	int rc;

	if ((rc = ledger_open_order(s, order_id, &t, &k, &order)) != PH_OK)
		return rc == PH_E_NOTFOUND ? PH_OK : rc;
	if (strcmp(ledger_str(order, "guard_owner"), token) == 0) {
		ledger_guard_hold(order, NULL, 0);
		ledger_put(&t, STORE_DB_ORDERS, &k, order);
		rc = store_commit(&t);
	} else
		store_abort(&t);
	json_decref(order);
	return rc;
}

/* An order id of the due list (time, length, id), up to now. */
static int
ledger_keep_due(const struct store_scan *sc, json_t *arr, void *arg)
{
	const int64_t *now = arg;
	struct store_key_reader r;
	char id[256];
	uint64_t due;

	store_key_read(&r, &sc->key, 0);
	due = store_key_read_u64(&r);
	if (r.bad || (int64_t)due > *now)
		return 1;
	store_key_read_str(&r, id, sizeof(id));
	if (store_key_read_all(&r))
		json_array_append_new(arr, json_string(id));
	return 0;
}

int
ledger_due(struct store *s, int64_t now, size_t limit, json_t **ids)
{
	return ledger_collect(s, STORE_DB_DUE, NULL, limit, ledger_keep_due,
	    &now, ids);
}

int
ledger_lease(struct store *s, const char *order_id, int64_t now,
    int64_t lease_s, const char *token, json_t **order)
{
	struct store_txn t;
	struct store_key k;
	int rc;

	if ((rc = ledger_open_order(s, order_id, &t, &k, order)) != PH_OK)
		return rc;
	if (!ledger_is_pending(*order)) {
		/* Settled since it was scheduled: it leaves the list. */
		ledger_set_due(&t, *order, 0);
		ledger_put(&t, STORE_DB_ORDERS, &k, *order);
		rc = store_commit(&t);
		return rc == PH_OK ? PH_E_CONFLICT : rc;
	}
	if (ledger_held(*order, "lease_until", "lease_owner", token, now)) {
		store_abort(&t);
		return PH_E_CONFLICT;
	}
	ledger_hold(*order, "lease_until", "lease_owner", token,
	    now + lease_s);
	ledger_put(&t, STORE_DB_ORDERS, &k, *order);
	return store_commit(&t);
}

long
ledger_query_failures(const json_t *order)
{
	const json_t *at = json_object_get(order, "query_failures_at");

	if (!json_is_integer(at) || json_integer_value(at) !=
	    json_integer_value(json_object_get(order, "query_count")))
		return 0;
	return (long)json_integer_value(json_object_get(order,
	    "query_failures"));
}

/* One more in the order's counter name. */
static void
ledger_count_up(json_t *order, const char *name)
{
	json_object_set_new(order, name, json_integer(json_integer_value(
	    json_object_get(order, name)) + 1));
}

int
ledger_reschedule(struct store *s, const char *order_id, const char *token,
    int64_t next_at, int64_t now, enum ledger_ask how)
{
	struct store_txn t;
	struct store_key k;
	json_t *order;
	int rc;

	if ((rc = ledger_open_order(s, order_id, &t, &k, &order)) != PH_OK)
		return rc;
	/* Another sweeper took the order over once this one's lease ran
	 * out (a wave longer than lease_s): its ask counts, not this one. */
	if (ledger_held(order, "lease_until", "lease_owner", token, now)) {
		store_abort(&t);
		json_decref(order);
		return PH_OK;
	}
	if (strcmp(ledger_str(order, "lease_owner"), token) == 0)
		ledger_hold(order, "lease_until", "lease_owner", NULL, 0);
	json_object_set_new(order, "last_query_at", json_integer(now));
	if (how == LEDGER_ASK_ANSWERED) {
		json_object_del(order, "query_failures");
		json_object_del(order, "query_failures_at");
	}
	if (!ledger_is_pending(order))
		ledger_set_due(&t, order, 0);
	else if (how == LEDGER_ASK_ANSWERED) {
		ledger_count_up(order, "query_count");
		ledger_set_due(&t, order, next_at);
	} else if (how == LEDGER_ASK_UNANSWERED) {
		/* A run of failures at one step of the schedule: one that an
		 * older payhook's answered ask ended (it moved the step, and
		 * knows nothing of this count) starts again. */
		if (ledger_query_failures(order) == 0)
			json_object_del(order, "query_failures");
		ledger_count_up(order, "query_failures");
		json_object_set_new(order, "query_failures_at", json_integer(
		    json_integer_value(json_object_get(order,
		    "query_count"))));
		ledger_set_due(&t, order, next_at);
	}
	/* A hint is unauthenticated traffic: its query neither uses up the
	 * order's schedule nor moves it. */
	ledger_put(&t, STORE_DB_ORDERS, &k, order);
	rc = store_commit(&t);
	json_decref(order);
	return rc;
}

