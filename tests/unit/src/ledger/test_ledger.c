/*
 * The ledger against a real LMDB file: every outcome of the order state
 * machine, durability across a reopen, and a full map.
 */
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>

#include <fcntl.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ledger/order.h"
#include "store/store.h"
#include "ops/proc.h"
#include "../../lib/ledger_fixture.h"
#include "../../lib/helpers.h"
#include "../../lib/tap.h"

static char dir[] = "/tmp/payhook-ledger-XXXXXX";
static char dbpath[256];

/* In a child: takes the guard of order S1 as call "dead". */
static int
guard_dead(void *arg)
{
	enum ledger_refusal why;
	struct store *cs = NULL;
	struct ph_diag d;
	json_t *o = NULL;

	int held;

	(void)arg;
	memset(&d, 0, sizeof(d));
	held = store_open(dbpath, 16 << 20, 0, &cs, &d) == PH_OK &&
	    ledger_guard_begin(cs, "S1", 1700000190, 60, "dead", &o, &why, &d) ==
	    PH_OK;
	/* The guard is in the store; the memory goes before the kill (a
	 * killed process's leaks are reported under valgrind). */
	json_decref(o);
	if (cs != NULL)
		store_close(cs);
	return held;
}

static struct ph_diag last_diag;	/* of the last apply() */

static int
apply(struct store *s, const struct ph_event *ev, struct ledger_result *r)
{
	memset(&last_diag, 0, sizeof(last_diag));
	return fx_apply(s, "wxshop", ev, r, &last_diag);
}

/* How many payment records name transaction txn, and whether each is
 * under the profile it names (-1 when one is not). */
static int
payments_of(struct store *s, const char *txn)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key want;
	json_t *p;
	int n = 0;

	if (store_begin(s, 0, &t) != PH_OK)
		return -1;
	store_scan_begin(&sc, &t, STORE_DB_PAYMENTS, NULL);
	while (store_scan_next(&sc)) {
		if ((p = ledger_load(&sc.val)) == NULL)
			continue;
		if (strcmp(fx_str(p, "provider_txn_id"), txn) == 0) {
			ledger_key_pair(&want, STORE_KEY_PAYMENT,
			    fx_str(p, "profile"), txn);
			n = n < 0 || sc.key.len != want.len || memcmp(
			    sc.key.data, want.b, want.len) != 0 ? -1 : n + 1;
		}
		json_decref(p);
	}
	store_scan_end(&sc);
	store_abort(&t);
	return n;
}

static int
request_refund(struct store *s, const char *order_id, int64_t amount,
    int64_t now, json_t **item, struct ph_diag *d)
{
	enum ledger_refusal why;
	int created;

	return fx_refund(s, order_id, NULL, amount, now, NULL, item, &created,
	    &why, d);
}

static void
create(struct store *s, const char *id, int64_t amount, const char *cur)
{
	struct ph_diag d;
	json_t *o;
	int created;

	memset(&d, 0, sizeof(d));
	ok(fx_create(s, id, "wxshop", amount, cur, 1700000000, &o,
	    &created, &d) == PH_OK && created, "order %s created", id);
	json_decref(o);
}

static void
test_orders(struct store *s)
{
	struct ph_diag d;
	json_t *o;
	int created;

	create(s, "A1", 100, "CNY");
	memset(&d, 0, sizeof(d));
	is_int(fx_create(s, "A1", "wxshop", 100, "CNY", 1700000001,
	    &o, &created, &d), PH_OK, "same order again is fine");
	is_int(created, 0, "... and not created twice");
	json_decref(o);
	is_int(fx_create(s, "A1", "wxshop", 101, "CNY", 1700000001,
	    &o, &created, &d), PH_E_CONFLICT, "same id, other amount: conflict");
	json_decref(o);
	is_int(ledger_get_order(s, "nope", &o), PH_E_NOTFOUND,
	    "unknown order is not found");
}

static void
test_payments(struct store *s)
{
	struct ledger_result r;
	struct ph_event ev;
	uint64_t last, before;
	size_t failed_before;

	ev = fx_pay_event("A1", "T1", 100, "CNY");
	is_int(apply(s, &ev, &r), PH_OK, "payment applies");
	is_int(r.outcome, LEDGER_APPLIED, "... outcome applied");
	is_str(r.event_type, "order.paid", "... raises order.paid");
	is_str(fx_state(s, "A1"), "PAID", "... order is PAID");
	is_int(fx_events_of_type(s, "order.paid", &before), 1, "one order.paid");

	is_int(apply(s, &ev, &r), PH_OK, "same notification again");
	is_int(r.outcome, LEDGER_DUPLICATE, "... is a duplicate");
	fx_events_of_type(s, "order.paid", &last);
	is_int(last, before, "... and raises nothing");

	/* Same payment seen through another path (another dedup key). */
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "query:T1");
	is_int(apply(s, &ev, &r), PH_OK, "same payment via a query");
	is_int(r.outcome, LEDGER_DUPLICATE, "... is a duplicate too");

	ev = fx_pay_event("A1", "T2", 100, "CNY");
	is_int(apply(s, &ev, &r), PH_OK, "second payment for a paid order");
	is_int(r.outcome, LEDGER_RECORDED, "... recorded");
	is_str(r.event_type, "order.double_payment", "... raised");
	is_str(fx_state(s, "A1"), "PAID", "... order stays PAID");
	is_int(fx_exceptions(s, "A1", "double_payment"), 1,
	    "... exception on the order");

	create(s, "B1", 500, "CNY");
	ev = fx_pay_event("B1", "T3", 499, "CNY");
	is_int(apply(s, &ev, &r), PH_OK, "amount mismatch applies");
	is_int(r.outcome, LEDGER_RECORDED, "... recorded");
	is_str(r.event_type, "order.amount_mismatch", "... raised");
	is_str(fx_state(s, "B1"), "PENDING", "... order not paid");
	is_int(fx_exceptions(s, "B1", "amount_mismatch"), 1, "... exception");

	ev = fx_pay_event("B1", "T4", 500, "USD");
	apply(s, &ev, &r);
	is_str(r.event_type, "order.amount_mismatch", "currency mismatch too");
	is_str(fx_state(s, "B1"), "PENDING", "... order not paid");

	ev = fx_pay_event("B1", "T5", 500, "CNY");
	apply(s, &ev, &r);
	is_str(fx_state(s, "B1"), "PAID", "then the right payment pays it");

	ev = fx_pay_event("ZZ", "T6", 1, "CNY");
	is_int(apply(s, &ev, &r), PH_OK, "payment for an unknown order");
	is_str(r.event_type, "payment.unknown_order", "... raised");
	is_str(fx_state(s, "ZZ"), "(none)", "... no order invented");

	create(s, "C1", 100, "CNY");
	ev = fx_pay_event("C1", "T7", 100, "CNY");
	ev.kind = PH_EV_PAYMENT_FAILED;
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "fail:C1:T7:-");
	apply(s, &ev, &r);
	is_str(r.event_type, "payment.failed", "failed payment raised");
	is_str(fx_state(s, "C1"), "PENDING", "... order unchanged");
	is_int(payments_of(s, "T7"), 1, "... one payment record, the "
	    "profile's");
	create(s, "C2", 100, "CNY");
	ev = fx_pay_event("C2", "T70", 100, "CNY");
	ev.kind = PH_EV_PAYMENT_FAILED;
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "fail:C2:T70:-");
	apply(s, &ev, &r);
	ev = fx_pay_event("C2", "T70", 100, "CNY");
	apply(s, &ev, &r);
	is_str(fx_state(s, "C2"), "PAID", "a transaction that failed, then "
	    "succeeded, pays its order");
	is_int(payments_of(s, "T70"), 1, "... one payment record, the "
	    "success over the failure");
	ev = fx_pay_event("C2", "T70", 100, "CNY");
	ev.kind = PH_EV_PAYMENT_FAILED;
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "fail:C2:T70:again");
	apply(s, &ev, &r);
	ok(strcmp(r.event_type, "notification.conflict") == 0 &&
	    r.outcome == LEDGER_CONFLICT, "a failure of the transaction that "
	    "paid the order: a conflict, not payment.failed (%s)",
	    r.event_type);
	is_str(fx_state(s, "C2"), "PAID", "... the order still paid");
	apply(s, &ev, &r);
	is_int(r.outcome, LEDGER_DUPLICATE, "... told again: a duplicate");

	/* A failure through an account the order was never offered on is
	 * another order's of the same id: nothing told of this one. */
	create(s, "C3", 100, "CNY");
	failed_before = fx_events_of_type(s, "payment.failed", NULL);
	ev = fx_pay_event("C3", "T71", 100, "CNY");
	ev.kind = PH_EV_PAYMENT_FAILED;
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "fail:C3:T71:-");
	fx_apply(s, "wxother", &ev, &r, NULL);
	ok(r.outcome == LEDGER_RECORDED && r.event_type[0] == '\0' &&
	    fx_events_of_type(s, "payment.failed", NULL) == failed_before,
	    "a failure through another account: recorded, no payment.failed "
	    "(%s)", r.event_type);
	is_str(fx_state(s, "C3"), "PENDING", "... the order unchanged");
	fx_apply(s, "wxother", &ev, &r, NULL);
	is_int(r.outcome, LEDGER_DUPLICATE, "... told again: a duplicate");

	/* A page marker of a paged query is for the query runner only. */
	ev = fx_pay_event("C1", "T7", 100, "CNY");
	ev.kind = PH_EV_QUERY_MORE;
	snprintf(ev.cursor, sizeof(ev.cursor), "ch_next");
	is_int(apply(s, &ev, &r), PH_E_INTERNAL, "a query.more page marker is "
	    "refused by the ledger");
	is_str(fx_state(s, "C1"), "PENDING", "... order unchanged");

	/* Conflict: a known dedup key with a different payload (one
	 * conflict raised before, C2's). */
	ev = fx_pay_event("C1", "T8", 100, "CNY");
	apply(s, &ev, &r);
	is_str(fx_state(s, "C1"), "PAID", "C1 paid by T8");
	ev.amount = 1;
	is_int(apply(s, &ev, &r), PH_OK, "same key, other amount");
	is_int(r.outcome, LEDGER_CONFLICT, "... is a conflict");
	is_str(r.event_type, "notification.conflict", "... raised");
	is_int(fx_exceptions(s, "C1", "notification_conflict"), 1,
	    "... on the order");
	/* Providers send it again and again: the same conflict, once. */
	is_int(apply(s, &ev, &r), PH_OK, "the same conflicting fact again");
	is_int(r.outcome, LEDGER_DUPLICATE, "... is a duplicate");
	apply(s, &ev, &r);
	is_int(fx_exceptions(s, "C1", "notification_conflict"), 1,
	    "... no second exception on the order");
	is_int(fx_events_of_type(s, "notification.conflict", NULL), 2,
	    "... no second conflict event");
	ev.amount = 2;
	apply(s, &ev, &r);
	is_int(r.outcome, LEDGER_CONFLICT, "other content of the key: "
	    "another conflict");
	is_int(fx_exceptions(s, "C1", "notification_conflict"), 2,
	    "... on the order");
	ev.amount = 100;
	apply(s, &ev, &r);
	is_int(r.outcome, LEDGER_DUPLICATE, "the first content is still a "
	    "duplicate");
	is_str(fx_state(s, "C1"), "PAID", "... C1 paid as before");

	{
		json_t *o;
		int created;

		ok(fx_create(s, "D1", "other", 100, "CNY", 1700000000, &o,
		    &created, &last_diag) == PH_OK,
		    "order D1 created under profile other");
		json_decref(o);
	}
	ev = fx_pay_event("D1", "T9", 100, "CNY");
	apply(s, &ev, &r);
	is_int(r.outcome, LEDGER_RECORDED,
	    "payment through another profile is recorded");
	is_str(r.event_type, "order.profile_mismatch", "... raised");
	is_str(fx_state(s, "D1"), "PENDING", "... does not pay the order");
	is_int(fx_exceptions(s, "D1", "profile_mismatch"), 1, "... exception");

	is_int(fx_events_of_type(s, "order.paid", NULL), 4, "four orders paid");
}

static void
test_schedule(void)
{
	static const long sched[] = { 15, 30, 60 };

	is_int(order_next_query(1000, 0, 0, sched, 3), 1015, "first: +15s");
	is_int(order_next_query(1000, 2, 0, sched, 3), 1060, "third: +60s");
	is_int(order_next_query(1000, 3, 0, sched, 3), 0,
	    "no expiry: the schedule runs once");
	is_int(order_next_query(1000, 7, 5000, sched, 3), 1060,
	    "with expiry: the last delay repeats");
	is_int(order_next_query(1000, 2, 1020, sched, 3), 1020,
	    "never past the expiry");
	is_int(order_next_query(2000, 9, 1020, sched, 3), 2060,
	    "expired but not closed yet: keeps trying");
	is_int(order_next_query(1000, 0, 0, sched, 0), 0, "no schedule");
}

/* Order S1's guard taken by token at now for 60 s; the order it gives
 * let go. */
static int
guard_begin(struct store *s, int64_t now, const char *token,
    struct ph_diag *d)
{
	enum ledger_refusal why;
	json_t *o = NULL;
	int rc;

	rc = ledger_guard_begin(s, "S1", now, 60, token, &o, &why, d);
	json_decref(o);
	return rc;
}

/* token's attempt at S1 for profile at now, the next query due at
 * 1700000200; the order kept in *o when o is not NULL. */
static int
guard_end(struct store *s, const char *token, const char *profile,
    int64_t now, int64_t hold_s, json_t **o, struct ph_diag *d)
{
	enum ledger_refusal why;
	json_t *got = NULL;
	int rc;

	rc = ledger_guard_end(s, "S1", token, profile, NULL, now, hold_s,
	    1700000200, NULL, &got, &why, d);
	if (o != NULL)
		*o = got;
	else
		json_decref(got);
	return rc;
}

static void
test_sweeper_side(struct store *s)
{
	struct ledger_new_order n;
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *o, *ids;
	int created;

	memset(&n, 0, sizeof(n));
	n.order_id = "S1";
	n.profile = "wxshop";
	n.amount = 300;
	n.currency = "CNY";
	n.expires_at = 1700000900;
	n.first_query_at = 1700000015;
	memset(&d, 0, sizeof(d));
	ok(ledger_create_order(s, &n, 1700000000, NULL, &o, &created, &d) ==
	    PH_OK,
	    "order S1 with expiry and a first query time");
	json_decref(o);
	ok(ledger_due(s, 1700000014, 100, &ids) == PH_OK &&
	    json_array_size(ids) == 0, "not due before its time");
	json_decref(ids);
	ok(ledger_due(s, 1700000015, 100, &ids) == PH_OK &&
	    json_array_size(ids) == 1 &&
	    strcmp(json_string_value(json_array_get(ids, 0)), "S1") == 0,
	    "due at its time");
	json_decref(ids);

	is_int(ledger_lease(s, "S1", 1700000015, 60, "sweeper-a", &o), PH_OK,
	    "sweeper a takes the lease");
	json_decref(o);
	is_int(ledger_lease(s, "S1", 1700000016, 60, "sweeper-b", &o),
	    PH_E_CONFLICT, "sweeper b cannot take it meanwhile");
	json_decref(o);
	is_int(ledger_lease(s, "S1", 1700000080, 60, "sweeper-b", &o), PH_OK,
	    "a lease that ran out (killed sweeper) is taken over");
	json_decref(o);
	is_int(ledger_reschedule(s, "S1", "sweeper-b", 1700000100,
	    1700000080, LEDGER_ASK_ANSWERED), PH_OK, "rescheduled");
	ok(ledger_due(s, 1700000099, 100, &ids) == PH_OK &&
	    json_array_size(ids) == 0, "... off the list until then");
	json_decref(ids);
	ok(ledger_get_order(s, "S1", &o) == PH_OK &&
	    json_integer_value(json_object_get(o, "query_count")) == 1 &&
	    json_object_get(o, "lease_until") == NULL, "... counted, released");
	json_decref(o);

	/* The guard. */
	is_int(guard_begin(s, 1700000100, "g1", &d), PH_OK,
	    "guard held by g1");
	is_int(guard_begin(s, 1700000101, "g2", &d), PH_E_CONFLICT,
	    "a concurrent attempt is refused");
	is_int(guard_end(s, "g1", "wxhmac", 1700000102, 60, &o, &d), PH_OK,
	    "g1 records its attempt");
	ok(json_array_size(json_object_get(o, "attempts")) == 2,
	    "two attempts on the order");
	json_decref(o);
	is_int(guard_begin(s, 1700000110, "g4", &d), PH_OK,
	    "guard free again");
	is_int(guard_end(s, "g4", "wxshop", 1700000110, 60, NULL, &d),
	    PH_E_CONFLICT, "a new attempt 8s after an unsettled one is "
	    "refused");
	ok(strstr(d.msg, "not settled") != NULL, "... saying why: %s", d.msg);
	is_int(guard_begin(s, 1700000111, "g5", &d), PH_OK,
	    "... and the guard was let go");
	ledger_guard_release(s, "S1", "g5");

	/* A call whose hold ran out while it asked the provider, another
	 * call having taken the guard meanwhile: refused at its end. */
	is_int(guard_begin(s, 1700000120, "g6", &d), PH_OK,
	    "g6 holds the guard");
	is_int(guard_begin(s, 1700000181, "g7", &d), PH_OK,
	    "its hold run out, g7 takes it");
	is_int(guard_end(s, "g7", "wxhmac", 1700000181, 0, NULL, &d),
	    PH_OK, "... and opens its attempt");
	is_int(guard_end(s, "g6", "wxhmac", 1700000120, 0, NULL, &d),
	    PH_E_CONFLICT, "g6 at its end: refused, never two attempts at "
	    "once");
	ok(strstr(d.msg, "while this one was being checked") != NULL,
	    "... saying why: %s", d.msg);

	/* The guard of a call whose process was killed: taken over at once,
	 * not refusing every attempt until its hold runs out. */
	ok(fx_in_killed_child(guard_dead, NULL), "a call holds the guard and "
	    "its process is killed");
	is_int(guard_begin(s, 1700000191, "g8", &d), PH_OK,
	    "... the next call takes the guard at once");
	ledger_guard_release(s, "S1", "g8");

	/* An order has at most 32 attempts, its creation one of them: the
	 * next is refused for good, and the guard let go. */
	{
		enum ledger_refusal why;
		char tok[16];
		int i, got = PH_OK, made;

		fx_create(s, "SA", "wxshop", 100, "CNY", 1700000100, &o,
		    &made, &d);
		json_decref(o);
		for (i = 0; i < 40 && got == PH_OK; i++) {
			snprintf(tok, sizeof(tok), "a%d", i);
			if ((got = ledger_guard_begin(s, "SA", 1700000101 + i,
			    60, tok, &o, &why, &d)) != PH_OK)
				break;
			json_decref(o);
			got = ledger_guard_end(s, "SA", tok, "wxshop", NULL,
			    1700000101 + i, 0, 0, NULL, &o, &why, &d);
			json_decref(o);
		}
		ok(got == PH_E_TOOBIG && ledger_get_order(s, "SA", &o) ==
		    PH_OK && json_array_size(json_object_get(o,
		    "attempts")) == 32, "the attempt after 32 refused: too "
		    "many (%d calls: %s)", i, d.msg);
		json_decref(o);
		ok(strstr(d.msg, "the most an order may have") != NULL,
		    "... saying so: %s", d.msg);
		is_int(ledger_guard_begin(s, "SA", 1700000101 + i, 60, "after",
		    &o, &why, &d), PH_OK, "... and the guard was let go at once");
		json_decref(o);
		ledger_guard_release(s, "SA", "after");
	}

	/* A payment through the attempt's profile pays the order. */
	ev = fx_pay_event("S1", "TS1", 300, "CNY");
	{
		struct ledger_fact f = { "wxhmac", "wechat", "query", &ev,
		    1700000300 };

		ok(ledger_apply(s, &f, &r, &d) == PH_OK &&
		    r.outcome == LEDGER_APPLIED, "paid through the attempt's "
		    "profile");
	}
	ok(ledger_due(s, 1800000000, 100, &ids) == PH_OK, "due list read");
	{
		size_t i;
		int found = 0;

		for (i = 0; i < json_array_size(ids); i++)
			if (strcmp(json_string_value(json_array_get(ids, i)),
			    "S1") == 0)
				found = 1;
		ok(!found, "a paid order leaves the due list");
	}
	json_decref(ids);
	is_int(guard_begin(s, 1700000400, "g3", &d), PH_E_CONFLICT,
	    "guard refuses an attempt on a paid order");
	is_int(ledger_close_order(s, "S1", 1700001000, "expired", &r, &d),
	    PH_E_CONFLICT, "a paid order is never closed");
	is_str(fx_state(s, "S1"), "PAID", "... stays PAID");

	/* Closing, then a late payment. */
	create(s, "S2", 100, "CNY");
	is_int(ledger_close_order(s, "S2", 1700001000, "expired", &r, &d),
	    PH_OK, "pending order closed");
	is_str(r.event_type, "order.closed", "... order.closed raised");
	is_str(fx_state(s, "S2"), "CLOSED", "... CLOSED");
	ev = fx_pay_event("S2", "TS2", 100, "CNY");
	apply(s, &ev, &r);
	is_str(r.event_type, "order.late_payment", "late payment raised");
	is_str(fx_state(s, "S2"), "CLOSED", "... order stays CLOSED");
	is_int(fx_exceptions(s, "S2", "late_payment"), 1, "... exception");
}

static void
test_events_paging(struct store *s)
{
	json_t *arr;
	uint64_t next, prev = 0, seen = 0, expect = 1;
	int good = 1;

	for (;;) {
		size_t i;
		json_t *e;

		if (ledger_events(s, prev, 2, &arr, &next) != PH_OK) {
			good = 0;
			break;
		}
		if (json_array_size(arr) == 0) {
			json_decref(arr);
			break;
		}
		json_array_foreach(arr, i, e) {
			if ((uint64_t)json_integer_value(json_object_get(e,
			    "seq")) != expect++)
				good = 0;
			seen++;
		}
		json_decref(arr);
		prev = next;
	}
	ok(good && seen > 5, "paging by 2 sees every event once, in order");
	ok(ledger_events(s, 1000000, 10, &arr, &next) == PH_OK &&
	    json_array_size(arr) == 0 && next == 1000000,
	    "after the end: empty, next unchanged");
	json_decref(arr);
}

/* Order oid of 500 paid by transaction txn, then a refund of 200 asked:
 * its seq, and its id into id (24 bytes). */
static uint64_t
paid_refund_asked(struct store *s, const char *oid, const char *txn,
    char id[24], const char *what)
{
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *item = NULL;
	uint64_t seq;

	create(s, oid, 500, "CNY");
	ev = fx_pay_event(oid, txn, 500, "CNY");
	apply(s, &ev, &r);
	memset(&d, 0, sizeof(d));
	is_int(request_refund(s, oid, 200, 1700000200, &item, &d), PH_OK,
	    "%s: refund of 200 requested", what);
	seq = (uint64_t)json_integer_value(json_object_get(item, "seq"));
	snprintf(id, 24, "%s",
	    json_string_value(json_object_get(item, "refund_id")));
	json_decref(item);
	return seq;
}

/*
 * A refund notification can settle a work item while the runner still
 * waits for the provider's answer to the refund call; that answer
 * ("accepted, result later") must not take the item back to PROCESSING.
 */
static void
test_refund_race(struct store *s)
{
	struct ledger_result r;
	struct ph_event ev, pending;
	json_t *item = NULL, *leased = NULL, *o = NULL;
	uint64_t seq;
	char id[24];

	seq = paid_refund_asked(s, "RR1", "TXNRR1", id, "race");
	is_int(ledger_refund_lease(s, seq, 1700000201, 60, "runner", &leased),
	    PH_OK, "race: the runner leases it");
	json_decref(leased);

	/* The notification first. */
	memset(&ev, 0, sizeof(ev));
	ev.kind = PH_EV_REFUND_SUCCEEDED;
	snprintf(ev.order_id, sizeof(ev.order_id), "RR1");
	snprintf(ev.txn_id, sizeof(ev.txn_id), "TXNRR1");
	snprintf(ev.refund_id, sizeof(ev.refund_id), "50000001");
	snprintf(ev.merchant_refund_id, sizeof(ev.merchant_refund_id), "%s",
	    id);
	ev.amount = 200;
	snprintf(ev.currency, sizeof(ev.currency), "CNY");
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "refund:50000001:SUCCESS");
	is_int(apply(s, &ev, &r), PH_OK, "race: the refund notification "
	    "applies");
	/* Then the answer to the call. */
	pending = ev;
	pending.kind = PH_EV_PAYMENT_PENDING;
	is_int(ledger_refund_result(s, seq, "runner", PH_OK, "", &pending,
	    1700000202, &r), PH_OK, "race: the late 'accepted' answer is "
	    "recorded");
	ok(ledger_refunds_list(s, seq - 1, 1, &item) == PH_OK &&
	    json_array_size(item) == 1 && strcmp(json_string_value(
	    json_object_get(json_array_get(item, 0), "state")), "SUCCEEDED") ==
	    0, "race: the refund stays SUCCEEDED");
	json_decref(item);
	ok(ledger_get_order(s, "RR1", &o) == PH_OK &&
	    json_integer_value(json_object_get(o, "refunded")) == 200 &&
	    strcmp(json_string_value(json_object_get(o, "state")), "PAID") ==
	    0, "race: the order shows 200 refunded, PAID");
	json_decref(o);
}

/*
 * UnionPay's refund names the payment (origQryId) and the refund's own
 * orderId, not the payment's order: the ledger finds the order through
 * the payment, so payhook's refund made at the portal under its refund id
 * settles, and another is raised on the order it refunds.
 */
/*
 * The one event after *after names order oid (a test point, naming the
 * event type); returns the order's exception number nth (a reference,
 * NULL when none), and moves *after past the event.
 */
static json_t *
raised_on(struct store *s, uint64_t *after, const char *oid, size_t nth,
    const char *type)
{
	json_t *item = NULL, *o = NULL, *ex;

	ok(ledger_events(s, *after, 10, &item, after) == PH_OK &&
	    json_array_size(item) == 1 && strcmp(fx_str(json_array_get(item,
	    0), "order_id"), oid) == 0, "... %s names the order of the "
	    "payment", type);
	json_decref(item);
	ex = ledger_get_order(s, oid, &o) == PH_OK ? json_array_get(
	    json_object_get(o, "exceptions"), nth) : NULL;
	json_incref(ex);
	json_decref(o);
	return ex;
}

static void
test_refund_by_payment(struct store *s)
{
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *item = NULL, *o = NULL, *ex;
	char id[24];
	uint64_t after;
	int rc;

	paid_refund_asked(s, "RP1", "TXNRP1", id, "by payment");
	memset(&d, 0, sizeof(d));

	ev = fx_refund_event("", "TXNRP1", "PORTAL1", 100, 1);
	ok(ledger_event_check(&ev, &d) == PH_OK, "by payment: a refund "
	    "result naming no order is a valid event");
	ev.kind = PH_EV_PAYMENT_SUCCEEDED;
	ok(ledger_event_check(&ev, &d) != PH_OK, "... a payment naming no "
	    "order is not");
	ev.kind = PH_EV_REFUND_SUCCEEDED;
	after = 0;
	ledger_events(s, 0, 100000, &item, &after);
	json_decref(item);
	rc = apply(s, &ev, &r);
	ok(rc == PH_OK && r.outcome == LEDGER_RECORDED &&
	    r.event == LEDGER_EV_REFUND_UNMATCHED, "by payment: a refund "
	    "payhook did not ask for is raised (outcome %d)", r.outcome);
	ex = raised_on(s, &after, "RP1", 0, "refund.unmatched");
	ok(strcmp(fx_str(ex, "type"), "refund_unmatched") == 0 &&
	    strcmp(fx_str(ex, "refund_id"), "PORTAL1") == 0, "... and is an "
	    "exception on that order");
	json_decref(ex);

	/* The same refund told again with another amount: a conflict, on
	 * the order of the payment as much as the fact itself was. */
	ev = fx_refund_event("", "TXNRP1", "PORTAL1", 90, 1);
	ok(apply(s, &ev, &r) == PH_OK && r.outcome == LEDGER_CONFLICT,
	    "by payment: the same refund with another amount is a conflict "
	    "(outcome %d)", r.outcome);
	ex = raised_on(s, &after, "RP1", 1, "notification.conflict");
	ok(strcmp(fx_str(ex, "type"), "notification_conflict") == 0,
	    "... and is an exception on that order");
	json_decref(ex);

	/* Recorded by an earlier build, which named the refund's orderId as
	 * the order: the same fact again is a duplicate, not a conflict. */
	ev = fx_refund_event("PORTAL2", "TXNRP1", "PORTAL2", 50, 1);
	apply(s, &ev, &r);
	ev = fx_refund_event("", "TXNRP1", "PORTAL2", 50, 1);
	ok(apply(s, &ev, &r) == PH_OK && r.outcome == LEDGER_DUPLICATE,
	    "by payment: the fact as an earlier build recorded it is the same "
	    "(outcome %d)", r.outcome);

	ev = fx_refund_event("", "TXNRP1", id, 200, 1);
	ok(apply(s, &ev, &r) == PH_OK && r.outcome == LEDGER_APPLIED &&
	    r.event == LEDGER_EV_REFUND_SUCCEEDED, "by payment: payhook's "
	    "refund made under its id settles it (outcome %d)", r.outcome);
	ok(ledger_get_order(s, "RP1", &o) == PH_OK &&
	    json_integer_value(json_object_get(o, "refunded")) == 200,
	    "... the order shows 200 refunded");
	json_decref(o);
}

/* An opening does not wait for the writer lock: a process stuck in a
 * write transaction (a tool left open, a commit that hangs) leaves a new
 * payhook.fcgi able to start and answer /readyz with why. */
static void
test_open_beside_writer(void)
{
	char path[300], c;
	struct store *s = NULL, *cs = NULL;
	struct store_txn t;
	struct ph_diag d;
	struct timespec a, b;
	int p[2], rc;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/held.mdb", dir);
	memset(&d, 0, sizeof(d));
	if (!ok(ledger_open(path, 16 << 20, &s, &d) == PH_OK, "a store to "
	    "hold (%s)", d.msg))
		return;
	store_close(s);
	if (pipe(p) != 0)
		return;
	if ((pid = fork()) == 0) {
		close(p[0]);
		if (store_open(path, 16 << 20, 0, &cs, &d) != PH_OK ||
		    store_begin(cs, 1, &t) != PH_OK)
			_exit(1);
		(void)!write(p[1], "h", 1);
		sleep(60);
		_exit(0);
	}
	close(p[1]);
	if (!ok(pid > 0 && read(p[0], &c, 1) == 1, "another process holds "
	    "the writer lock")) {
		close(p[0]);
		return;
	}
	close(p[0]);
	clock_gettime(CLOCK_MONOTONIC, &a);
	alarm(20);		/* the old opening waited for ever */
	rc = ledger_open(path, 16 << 20, &s, &d);
	alarm(0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ok(rc == PH_OK && b.tv_sec - a.tv_sec < 5, "... and an opening does "
	    "not wait for it (%s)", d.msg);
	if (rc == PH_OK)
		store_close(s);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* How many lines of file path hold text. */
static size_t
count_in_file(const char *path, const char *text)
{
	char line[4096];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

static void
test_map_full(void)
{
	char path[300];
	struct store *s;
	struct ph_diag d;
	struct ledger_result r;
	struct ph_event ev;
	int i, rc = PH_OK, saved, logfd;
	char id[32], txn[32], logpath[300];
	size_t paid = 0;

	snprintf(path, sizeof(path), "%s/small.mdb", dir);
	memset(&d, 0, sizeof(d));
	if (!ok(store_open(path, 256 * 1024, 0, &s, &d) == PH_OK,
	    "small store opens"))
		return;
	/* The log of it, to count the order_paid lines. */
	snprintf(logpath, sizeof(logpath), "%s/small.log", dir);
	fflush(stderr);
	saved = dup(2);
	if ((logfd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600)) >= 0)
		dup2(logfd, 2);
	for (i = 0; i < 5000 && rc == PH_OK; i++) {
		json_t *o;
		int created;

		snprintf(id, sizeof(id), "O%d", i);
		snprintf(txn, sizeof(txn), "X%d", i);
		rc = fx_create(s, id, "wxshop", 1, "CNY", 1, &o,
		    &created, &d);
		json_decref(o);
		if (rc != PH_OK)
			break;
		ev = fx_pay_event(id, txn, 1, "CNY");
		if ((rc = apply(s, &ev, &r)) != PH_OK)
			d = last_diag;
		else if (r.event == LEDGER_EV_ORDER_PAID)
			paid++;
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (logfd >= 0)
		close(logfd);
	is_int(rc, PH_E_STORE_FULL, "a full map is reported as such");
	is_int(count_in_file(logpath, "event=order_paid"), paid, "the log "
	    "tells of the %zu payments committed, not of the one the full "
	    "store refused", paid);
	ok(strstr(d.msg, "map_size_mb") != NULL || strstr(d.msg, "full") !=
	    NULL, "... with a message that says so (%s)", d.msg);
	/* Whatever failed left nothing half-written: either the order was
	 * never created, or its payment was not applied. */
	{
		json_t *o = NULL;
		int st = ledger_get_order(s, id, &o);

		ok(st == PH_E_NOTFOUND || (st == PH_OK &&
		    strcmp(json_string_value(json_object_get(o, "state")),
		    "PENDING") == 0), "the failed write left nothing behind");
		json_decref(o);
	}
	store_close(s);
}

/* The dedup record's binary form: what is written reads back, what is
 * damaged is refused, and schema 2's JSON is still read. */
static void
test_dedup_record(struct store *s)
{
	static const char json[] = "{\"v\":1,\"digest\":\"ab\",\"kind\":"
	    "\"payment.succeeded\",\"order_id\":\"J1\",\"source\":"
	    "\"notify\",\"first_seen\":7}";
	struct ledger_dedup d, back;
	struct store_txn t;
	struct store_key k;
	struct store_val v;
	unsigned char copy[512];
	size_t len = 0;

	memset(&d, 0, sizeof(d));
	memset(d.digest, 'c', sizeof(d.digest) - 1);
	d.first_seen = 1700000000123LL;
	snprintf(d.kind, sizeof(d.kind), "refund.succeeded");
	snprintf(d.order_id, sizeof(d.order_id), "DD-1");
	snprintf(d.source, sizeof(d.source), "statement_file");
	store_key_init(&k, STORE_KEY_DEDUP);
	store_key_str(&k, "test");
	store_key_str(&k, "dd");
	ok(store_begin(s, 1, &t) == PH_OK, "dedup record: write");
	ledger_dedup_put(&t, &k, &d);
	is_int(store_commit(&t), PH_OK, "dedup record: committed");
	ok(store_begin(s, 0, &t) == PH_OK &&
	    ledger_dedup_get(&t, &k, &back) == PH_OK &&
	    strcmp(back.digest, d.digest) == 0 &&
	    back.first_seen == d.first_seen &&
	    strcmp(back.kind, d.kind) == 0 &&
	    strcmp(back.order_id, d.order_id) == 0 &&
	    strcmp(back.source, d.source) == 0,
	    "dedup record: reads back field for field");
	if (store_get(&t, STORE_DB_DEDUP, &k, &v) == PH_OK &&
	    v.len <= sizeof(copy)) {
		memcpy(copy, v.data, v.len);
		len = v.len;
	}
	store_abort(&t);
	is_int(len, 1 + 64 + 8 + 1 + 16 + 1 + 4 + 1 + 14,
	    "dedup record: 110 bytes");
	v.data = copy;
	v.len = len - 1;
	ok(ledger_dedup_read(&v, &back) != PH_OK, "dedup record: one byte "
	    "short refused");
	v.len = len + 1;
	copy[len] = 'x';
	ok(ledger_dedup_read(&v, &back) != PH_OK, "dedup record: a byte "
	    "more refused");
	v.len = len;
	copy[0] = 0xd2;
	ok(ledger_dedup_read(&v, &back) != PH_OK, "dedup record: another "
	    "version's tag refused");
	copy[0] = 0xd1;
	copy[1 + 64 + 8] = 200;
	ok(ledger_dedup_read(&v, &back) != PH_OK, "dedup record: a length "
	    "past the end refused");
	v.data = json;
	v.len = sizeof(json) - 1;
	ok(ledger_dedup_read(&v, &back) == PH_OK &&
	    strcmp(back.digest, "ab") == 0 && back.first_seen == 7 &&
	    strcmp(back.order_id, "J1") == 0, "dedup record: schema 2's "
	    "JSON still read");
}

/* A new store dir/name, as a test point named what; NULL when it did not
 * open. */
static struct store *
new_store(const char *name, size_t map, const char *what)
{
	char path[600];
	struct store *s = NULL;
	struct ph_diag d;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	memset(&d, 0, sizeof(d));
	if (!ok(store_open(path, map, 0, &s, &d) == PH_OK, "%s (%s)", what,
	    d.msg))
		return NULL;
	return s;
}

/* Rewrites order id's field name as an older payhook would have. */
static void
order_set(struct store *s, const char *id, const char *name, json_t *v)
{
	struct store_txn t;
	struct store_key k;
	json_t *o = NULL;

	ledger_key_order(&k, id);
	if (store_begin(s, 1, &t) != PH_OK)
		return;
	if (ledger_get(&t, STORE_DB_ORDERS, &k, &o) == PH_OK) {
		json_object_set_new(o, name, v);
		ledger_put(&t, STORE_DB_ORDERS, &k, o);
	} else
		json_decref(v);
	json_decref(o);
	store_commit(&t);
}

/*
 * Fields an older payhook (before the pid's start and the failures were
 * kept) does not know, sharing a store with it during an upgrade or a
 * rollback: the guard it takes over writes its pid but leaves the start
 * of the killed holder before it, which must not make it look gone; and
 * its answered ask moves the schedule's step without ending the run of
 * unanswered ones, which must end it all the same.
 */
static void
test_older_fields(struct store *s)
{
	enum ledger_refusal why;
	struct ph_diag d;
	json_t *o = NULL, *order;
	int created, i;

	memset(&d, 0, sizeof(d));
	fx_create(s, "UG1", "wxshop", 100, "CNY", FX_NOW, &o, &created, &d);
	json_decref(o);
	o = NULL;
	ok(ledger_guard_begin(s, "UG1", FX_NOW, 60, "new", &o, &why, &d) ==
	    PH_OK, "this build holds UG1's guard");
	json_decref(o);
	o = NULL;
	/* The holder killed; an older build's call (here pid 1, a live
	 * process started long before) takes the guard over. */
	order_set(s, "UG1", "guard_owner", json_string("older"));
	order_set(s, "UG1", "guard_pid", json_integer(1));
	is_int(ledger_guard_begin(s, "UG1", FX_NOW + 1, 60, "another", &o,
	    &why, &d), PH_E_CONFLICT, "an older build's live holder is not "
	    "taken for gone by the start its killed predecessor left");
	json_decref(o);

	for (i = 0; i < 3; i++) {
		ok(ledger_lease(s, "UG1", FX_NOW + 10 * i, 5, "sw", &o) ==
		    PH_OK, "leased (%d)", i);
		json_decref(o);
		ledger_reschedule(s, "UG1", "sw", FX_NOW + 10 * i + 5,
		    FX_NOW + 10 * i, LEDGER_ASK_UNANSWERED);
	}
	ok(ledger_get_order(s, "UG1", &order) == PH_OK &&
	    ledger_query_failures(order) == 3 &&
	    json_integer_value(json_object_get(order, "query_count")) == 0,
	    "three asks unanswered: three failures, no step used up");
	json_decref(order);
	/* An older build's answered ask: the step moves, the count stays. */
	order_set(s, "UG1", "query_count", json_integer(1));
	ok(ledger_get_order(s, "UG1", &order) == PH_OK &&
	    ledger_query_failures(order) == 0, "an older build's answer ended "
	    "the run");
	json_decref(order);
	ledger_lease(s, "UG1", FX_NOW + 40, 5, "sw", &o);
	json_decref(o);
	ledger_reschedule(s, "UG1", "sw", FX_NOW + 45, FX_NOW + 40,
	    LEDGER_ASK_UNANSWERED);
	ok(ledger_get_order(s, "UG1", &order) == PH_OK &&
	    ledger_query_failures(order) == 1 && json_integer_value(
	    json_object_get(order, "query_failures")) == 1, "... the next "
	    "unanswered ask starts a new one");
	json_decref(order);
}

/* A sweeper whose wave outlasted its lease (more calls than
 * sweep_concurrency, each up to http_timeout_s): another took the order
 * over and asked too; only the holder's ask counts, not both. */
static void
test_lease_overrun(struct store *s)
{
	struct ph_diag d;
	json_t *o = NULL;
	int created;

	memset(&d, 0, sizeof(d));
	fx_create(s, "LO1", "wxshop", 100, "CNY", FX_NOW, &o, &created, &d);
	json_decref(o);
	ok(ledger_lease(s, "LO1", FX_NOW, 5, "slow", &o) == PH_OK, "sweeper "
	    "slow leases LO1 for 5 s");
	json_decref(o);
	ok(ledger_lease(s, "LO1", FX_NOW + 6, 5, "next", &o) == PH_OK,
	    "... its wave outlasts the lease: sweeper next takes it over");
	json_decref(o);
	is_int(ledger_reschedule(s, "LO1", "slow", FX_NOW + 30, FX_NOW,
	    LEDGER_ASK_ANSWERED), PH_OK, "slow's wave ends");
	is_int(ledger_reschedule(s, "LO1", "next", FX_NOW + 30, FX_NOW + 6,
	    LEDGER_ASK_ANSWERED), PH_OK, "... then next's");
	o = NULL;
	if (ledger_get_order(s, "LO1", &o) != PH_OK)
		o = NULL;
	is_int(json_integer_value(json_object_get(o, "query_count")), 1,
	    "one step of the schedule used, not two");
	json_decref(o);
}

/* A fact a statement proves is applied in the reconciliation's batch,
 * with its alarm: a run killed before the batch commits leaves neither
 * (never the money without its alarm, which no later run would raise);
 * committed, both. */
static void
test_batch_apply(struct store *s)
{
	struct ledger_batch b;
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *o = NULL;
	size_t alarms;
	int created, round, rc, rc2 = -1, saved, logfd;
	char logpath[300];

	memset(&d, 0, sizeof(d));
	fx_create(s, "BA1", "wxshop", 700, "CNY", FX_NOW, &o, &created, &d);
	json_decref(o);
	ev = fx_pay_event("BA1", "TBA1", 700, "CNY");
	alarms = fx_events_of_type(s, "reconcile.missing_here", NULL);
	snprintf(logpath, sizeof(logpath), "%s/batch.log", dir);
	for (round = 0; round < 2; round++) {
		struct ledger_fact f = { "wxshop", "wechat", "statement", &ev,
		    FX_NOW };

		fflush(stderr);
		saved = dup(2);
		if ((logfd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY,
		    0600)) >= 0)
			dup2(logfd, 2);
		ledger_batch_begin(&b, s);
		rc = ledger_batch_apply(&b, &f, &r, &d);
		ledger_batch_alarm_new(&b, "wxshop/2023-11-14",
		    LEDGER_EV_RECONCILE_MISSING_HERE, "wxshop", "wechat", &ev,
		    json_object(), FX_NOW);
		if (round == 0)
			ledger_batch_abort(&b);	/* the run killed here */
		else
			rc2 = ledger_batch_end(&b);
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
		if (logfd >= 0)
			close(logfd);
		ok(rc == PH_OK && r.event == LEDGER_EV_ORDER_PAID, "a payment "
		    "the statement proves, applied in the batch (%s)", d.msg);
		is_int(count_in_file(logpath, "event=order_paid"), round,
		    round == 0 ? "... not told in the log before the batch "
		    "commits" : "... told once it has");
		if (round == 0) {
			is_str(fx_state(s, "BA1"), "PENDING", "... the run "
			    "killed before the batch committed: not paid");
			is_int(fx_events_of_type(s, "reconcile.missing_here",
			    NULL), alarms, "... and no alarm");
			continue;
		}
		is_int(rc2, PH_OK, "... the batch committed");
		is_str(fx_state(s, "BA1"), "PAID", "... paid");
		is_int(fx_events_of_type(s, "reconcile.missing_here", NULL),
		    alarms + 1, "... with its alarm");
	}
}

/* A key read back part by part as it was built; one cut short or with a
 * text too long for its buffer is bad, for good. */
static void
test_key_reader(void)
{
	struct store_key_reader r;
	struct store_key k;
	struct store_val v;
	char a[16], b[4];
	uint64_t u;

	store_key_init(&k, 'Z');
	store_key_str(&k, "erp");
	store_key_u64(&k, 1234567890123ULL);
	store_key_str(&k, "ORDER-1");
	v.data = k.b;
	v.len = k.len;
	store_key_read(&r, &v, 1);
	store_key_read_str(&r, a, sizeof(a));
	u = store_key_read_u64(&r);
	ok(!r.bad && strcmp(a, "erp") == 0 && u == 1234567890123ULL,
	    "key reader: a text and a number as written");
	store_key_read_str(&r, a, sizeof(a));
	ok(store_key_read_all(&r) && strcmp(a, "ORDER-1") == 0,
	    "... the last text, and the whole key read");
	store_key_read(&r, &v, 1);
	store_key_read_str(&r, b, sizeof(b));
	u = store_key_read_u64(&r);
	store_key_read_str(&r, b, sizeof(b));
	ok(r.bad && b[0] == '\0' && !store_key_read_all(&r), "... a text "
	    "longer than its buffer: bad, read as \"\"");
	v.len = 1 + 4 + 5;
	store_key_read(&r, &v, 1);
	store_key_read_str(&r, a, sizeof(a));
	u = store_key_read_u64(&r);
	ok(r.bad && u == 0, "... a key cut short: bad, the number 0");
	v.len = 0;
	store_key_read(&r, &v, 1);
	ok(r.bad, "... an offset past the key: bad");
}

/* Writes run's hold as another process left it: pid (its start read from
 * /proc), host, lease until. */
static void
hold_run(struct store *s, const char *run, long pid, const char *host,
    int64_t until)
{
	struct ledger_field f[] = {
		LEDGER_INT("v", 1),
		LEDGER_INT("pid", pid),
		LEDGER_INT("pid_start", (int64_t)proc_start_of((pid_t)pid)),
		LEDGER_STR("host", host),
		LEDGER_INT("until", until),
	};
	struct store_txn t;
	struct store_key k;

	store_key_init(&k, 'L');
	store_key_str(&k, run);
	store_begin(s, 1, &t);
	ledger_put_fields(&t, STORE_DB_RECON, &k, f, sizeof(f) / sizeof(f[0]),
	    NULL);
	store_commit(&t);
}

/* The run a reconcile clears and reads its marks of is held by one
 * process at a time. */
static void
test_run_claim(struct store *s)
{
	const char *run = "wxshop/2023-11-20";
	struct ledger_batch b;
	char host[LEDGER_HOST_MAX], name[256];
	struct ph_diag d;
	int64_t now = (int64_t)time(NULL);

	ledger_proc_host(host);
	memset(&d, 0, sizeof(d));
	hold_run(s, run, 1, host, now - 10);
	ledger_batch_begin(&b, s);
	ok(ledger_batch_clear(&b, run, &d) == PH_E_CONFLICT &&
	    strstr(d.msg, "another reconcile") != NULL &&
	    strstr(d.msg, "pid 1 ") != NULL, "a run held by a live process on "
	    "this host is refused, its lease run out or not: %s", d.msg);
	ledger_batch_end(&b);
	hold_run(s, run, 1, "elsewhere.example", now + 100);
	ledger_batch_begin(&b, s);
	ok(ledger_batch_clear(&b, run, &d) == PH_E_CONFLICT, "... one held "
	    "on another host within its lease too");
	ledger_batch_end(&b);
	hold_run(s, run, 1, "elsewhere.example", now - 1);
	ledger_batch_begin(&b, s);
	is_int(ledger_batch_clear(&b, run, &d), PH_OK, "... past it, it is "
	    "taken over");
	is_int(ledger_batch_clear(&b, run, &d), PH_OK, "... and the holder "
	    "may clear it again");
	ledger_batch_end(&b);
	hold_run(s, run, 999999, host, now + 100);
	ledger_batch_begin(&b, s);
	is_int(ledger_batch_clear(&b, run, &d), PH_OK, "a run whose holder "
	    "on this host is gone is taken over at once");
	ledger_batch_end(&b);
	/* The host's name alone (another host of this name, this one before
	 * a boot, or an older payhook): its pid says nothing here. */
	ok(gethostname(name, sizeof(name) - 1) == 0, "this host has a name");
	name[sizeof(name) - 1] = '\0';
	ok(strcmp(name, host) != 0 && strncmp(host, name, strlen(name)) == 0,
	    "a holder records more than the host's name: %s", host);
	hold_run(s, run, 999999, name, now + 100);
	ledger_batch_begin(&b, s);
	ok(ledger_batch_clear(&b, run, &d) == PH_E_CONFLICT, "a run held by "
	    "a gone pid on a host of this one's name but another boot or pid "
	    "namespace waits for its lease: %s", d.msg);
	ledger_batch_end(&b);
}

/* What a copy killed half way leaves: its mark (the meta record
 * "import") and some records.  Refused by every opening but an import's,
 * which starts over. */
static void
test_copy_killed(struct store *from)
{
	struct store_copy_report rep;
	struct store_txn t;
	struct store_key k;
	char path[600];
	struct store *to;
	struct ph_diag d;

	if ((to = new_store("killed.mdb", 16 << 20, "a store an import was "
	    "killed in")) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/killed.mdb", dir);
	memset(&d, 0, sizeof(d));
	store_begin(to, 1, &t);
	store_key_init(&k, 0);
	store_key_str(&k, "import");
	store_put(&t, STORE_DB_META, &k, "/var/lib/payhook/payhook.mdb", 28);
	store_key_init(&k, 0);
	store_key_str(&k, "STRAY");
	store_put(&t, STORE_DB_ORDERS, &k, "{}", 2);
	ok(store_commit(&t) == PH_OK, "... its mark and an order copied");
	store_close(to);
	ok(store_open(path, 16 << 20, 0, &to, &d) == PH_E_STORE &&
	    strstr(d.msg, "half made") != NULL &&
	    strstr(d.msg, "/var/lib/payhook/payhook.mdb") != NULL, "refused "
	    "when opened, naming the import's source (%s)", d.msg);
	memset(&d, 0, sizeof(d));
	if (!ok(store_open(path, 16 << 20, STORE_OPEN_IMPORT, &to, &d) ==
	    PH_OK, "an import opens it (%s)", d.msg))
		return;
	ok(store_copy(from, to, &rep, &d) == PH_OK &&
	    rep.to[STORE_DB_ORDERS] == rep.from[STORE_DB_ORDERS],
	    "... and copies into it again, what was there taken out (%s)",
	    d.msg);
	store_close(to);
	ok(store_open(path, 16 << 20, 0, &to, &d) == PH_OK &&
	    strcmp(store_epoch(to), store_epoch(from)) == 0, "the copy "
	    "whole, it opens: the same store moved (%s)", d.msg);
	store_close(to);
}

/* store_copy (payhook store import): every record into a new store, the
 * counts compared; the same store moved (its epoch goes with it); a store
 * that holds records refused. */
static void
test_copy(struct store *from)
{
	struct store_copy_report rep;
	char path[600];
	struct store *to;
	struct ph_diag d;
	size_t i, total = 0, same = 0;

	if ((to = new_store("copy.mdb", 16 << 20, "a new store to copy "
	    "into")) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/copy.mdb", dir);
	memset(&d, 0, sizeof(d));
	ok(store_copy(from, to, &rep, &d) == PH_OK, "store_copy (%s)", d.msg);
	for (i = 0; i < STORE_DB__MAX; i++) {
		total += rep.from[i];
		same += rep.from[i] == rep.to[i];
	}
	ok(total > 20 && same == STORE_DB__MAX && rep.to[STORE_DB_ORDERS] > 0 &&
	    rep.to[STORE_DB_EVENTS] > 0, "every kind counted alike on both "
	    "sides (%zu records)", total);
	is_str(fx_state(to, "A1"), "PAID", "the copy holds A1, PAID");
	is_str(store_epoch(to), store_epoch(from), "... and the epoch: the "
	    "same store moved");
	store_close(to);
	ok(store_open(path, 16 << 20, 0, &to, &d) == PH_OK,
	    "the copy reopens");
	is_str(store_epoch(to), store_epoch(from), "... with that epoch");
	ok(store_copy(from, to, &rep, &d) == PH_E_CONFLICT &&
	    strstr(d.msg, "not empty") != NULL, "a second copy into it is "
	    "refused (%s)", d.msg);
	store_close(to);
	test_copy_killed(from);
}

/* An epoch that is not 16 hex digits would go into every event id
 * unescaped: the store refuses to open instead. */
static void
test_damaged_epoch(void)
{
	char path[600];
	struct store_txn t;
	struct store_key k;
	struct store *s;
	struct ph_diag d;

	if ((s = new_store("epoch.mdb", 1 << 20, "a new store opens")) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/epoch.mdb", dir);
	memset(&d, 0, sizeof(d));
	ok(strlen(store_epoch(s)) == STORE_EPOCH_LEN &&
	    strspn(store_epoch(s), "0123456789abcdef") == STORE_EPOCH_LEN,
	    "its epoch is %d hex digits (%s)", STORE_EPOCH_LEN,
	    store_epoch(s));
	store_begin(s, 1, &t);
	store_key_init(&k, 0);
	store_key_str(&k, "epoch");
	store_put(&t, STORE_DB_META, &k, "0123456789ab\"<>", STORE_EPOCH_LEN);
	ok(store_commit(&t) == PH_OK, "an epoch with a quote written");
	store_close(s);
	ok(store_open(path, 1 << 20, 0, &s, &d) != PH_OK &&
	    strstr(d.msg, "epoch is damaged") != NULL,
	    "the store is refused, saying why (%s)", d.msg);
}

/*
 * A database file cut short (a copy that ran out of room) or emptied is
 * refused at open, saying so: never read, since a page past the end of
 * LMDB's map kills the process with SIGBUS, and never made a new store.
 */
static void
test_damaged_file(void)
{
	char path[300], id[32];
	struct store *s = NULL;
	struct ph_diag d;
	struct stat st;
	json_t *o;
	int i, created;

	snprintf(path, sizeof(path), "%s/cut.mdb", dir);
	memset(&d, 0, sizeof(d));
	if (!ok(store_open(path, 16 << 20, 0, &s, &d) == PH_OK,
	    "a store to cut opens (%s)", d.msg))
		return;
	for (i = 0; i < 400; i++) {
		snprintf(id, sizeof(id), "CUT%d", i);
		fx_create(s, id, "wxshop", 100, "CNY", 1700000000, &o,
		    &created, &d);
		json_decref(o);
	}
	store_close(s);
	s = NULL;
	memset(&st, 0, sizeof(st));
	(void)stat(path, &st);
	if (!ok(st.st_size > 16 * 4096 && truncate(path, st.st_size / 2) ==
	    0, "its file (%lld bytes) cut to half", (long long)st.st_size))
		return;
	memset(&d, 0, sizeof(d));
	is_int(store_open(path, 16 << 20, 0, &s, &d), PH_E_STORE,
	    "a database cut short: refused at open, not read");
	ok(s == NULL && strstr(d.msg, "truncated") != NULL &&
	    strstr(d.msg, path) != NULL, "... naming it: %s", d.msg);
	store_close(s);
	s = NULL;
	ok(truncate(path, 0) == 0, "its file emptied");
	memset(&d, 0, sizeof(d));
	is_int(store_open(path, 16 << 20, 0, &s, &d), PH_E_STORE,
	    "an empty file in place of the database: refused");
	ok(strstr(d.msg, "empty file") != NULL, "... saying so: %s", d.msg);
	ok(stat(path, &st) == 0 && st.st_size == 0,
	    "... and not made a new store");
	store_close(s);
}

/* How many orphan index entries (STORE_DB_RECON) order_id has. */
static int
orphans_of(struct store *s, const char *order_id)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key k;
	int n = 0;

	store_key_init(&k, LEDGER_KEY_ORPHAN);
	store_key_str(&k, order_id);
	if (store_begin(s, 0, &t) != PH_OK)
		return -1;
	store_scan_begin(&sc, &t, STORE_DB_RECON, &k);
	while (store_scan_next(&sc) && store_val_has_prefix(&sc.key, &k))
		n++;
	store_scan_end(&sc);
	store_abort(&t);
	return n;
}

/* What a plugin may put in an event: text the records can hold, a time an
 * RFC 3339 text can say. */
static void
test_event_text(struct store *s)
{
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	uint64_t before, after;

	create(s, "ET1", 100, "CNY");
	fx_events_of_type(s, "order.paid", &before);
	memset(&d, 0, sizeof(d));
	ev = fx_pay_event("ET1", "\xff\xfe" "A", 100, "CNY");
	ok(ledger_event_check(&ev, &d) == PH_E_FIELD &&
	    strstr(d.msg, "txn_id") != NULL, "a txn_id not UTF-8 is refused "
	    "by name: %s", d.msg);
	ok(apply(s, &ev, &r) != PH_OK && strcmp(fx_state(s, "ET1"),
	    "PENDING") == 0, "... and not applied");
	ev = fx_pay_event("ET1", "TET1", 100, "CNY");
	strcpy(ev.channel, "NATIVE\n");
	ok(ledger_event_check(&ev, &d) == PH_E_FIELD, "a channel with a "
	    "control character is refused");
	strcpy(ev.channel, "微信");
	ok(ledger_event_check(&ev, &d) == PH_OK, "UTF-8 text is not");
	ev.occurred_at = INT64_MAX;
	ok(ledger_event_check(&ev, &d) == PH_E_FIELD &&
	    strstr(d.msg, "occurred_at") != NULL, "occurred_at past the year "
	    "9999 is refused: %s", d.msg);
	ev.occurred_at = -1;
	ok(ledger_event_check(&ev, &d) == PH_E_FIELD, "... before 1970 too");
	ev.occurred_at = 253402300799LL;
	ok(ledger_event_check(&ev, &d) == PH_OK, "9999-12-31T23:59:59Z is "
	    "not");
	fx_events_of_type(s, "order.paid", &after);
	is_int(after, before, "nothing was raised meanwhile");
}

/* The one refund of order_id that payhook queued itself, with reason,
 * transaction and amount as asked: 1 when so. */
static int
queued_refund(struct store *s, const char *order_id, const char *reason,
    const char *txn, int64_t amount)
{
	json_t *list = NULL, *r;
	size_t i, n = 0, hit = 0;

	if (ledger_order_refunds(s, order_id, &list) != PH_OK)
		return 0;
	json_array_foreach(list, i, r) {
		n++;
		hit += strcmp(fx_str(r, "reason"), reason) == 0 &&
		    strcmp(fx_str(r, "provider_txn_id"), txn) == 0 &&
		    json_integer_value(json_object_get(r, "amount")) == amount;
	}
	json_decref(list);
	return n == 1 && hit == 1;
}

/* Order id of 600 CNY paid by txn through its own profile, then told by
 * the account wxother as paid by txn2, of 600 too: what that made, in r. */
static void
paid_then_foreign(struct store *s, const char *id, const char *txn,
    const char *txn2, struct ledger_result *r)
{
	struct ph_event ev;

	create(s, id, 600, "CNY");
	ev = fx_pay_event(id, txn, 600, "CNY");
	apply(s, &ev, r);
	ev = fx_pay_event(id, txn2, 600, "CNY");
	fx_apply(s, "wxother", &ev, r, NULL);
}

/* A payment that did not fit the order, then the right one: the first is
 * a second payment of the order once it is paid, as it is when it comes
 * after, and its money goes back. */
static void
test_stray_refund(struct store *s)
{
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *o = NULL;

	create(s, "SM1", 1000, "CNY");
	ev = fx_pay_event("SM1", "TSM1", 900, "CNY");
	apply(s, &ev, &r);
	is_str(r.event_type, "order.amount_mismatch", "900 of 1000 first: "
	    "amount_mismatch");
	ev = fx_pay_event("SM1", "TSM2", 1000, "CNY");
	apply(s, &ev, &r);
	is_str(r.event_type, "order.paid", "... then 1000 pays the order");
	is_int(fx_exceptions(s, "SM1", "double_payment"), 1,
	    "... and the 900 is a double payment");
	ok(queued_refund(s, "SM1", "double_payment", "TSM1", 900),
	    "... its 900 queued to go back");
	ok(ledger_get_order(s, "SM1", &o) == PH_OK &&
	    json_integer_value(json_object_get(json_array_get(
	    json_object_get(o, "exceptions"), 0), "refund_seq")) > 0,
	    "... the amount_mismatch naming the refund");
	json_decref(o);
	ev = fx_pay_event("SM1", "TSM1", 900, "CNY");
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "query:TSM1");
	apply(s, &ev, &r);
	ok(r.outcome == LEDGER_DUPLICATE && queued_refund(s, "SM1",
	    "double_payment", "TSM1", 900), "... told again: a duplicate, "
	    "still one refund");

	/* Unpaid but for a misfit: a refund asked for says how it goes. */
	create(s, "SM6", 1000, "CNY");
	ev = fx_pay_event("SM6", "TSM10", 900, "CNY");
	apply(s, &ev, &r);
	memset(&d, 0, sizeof(d));
	o = NULL;
	ok(request_refund(s, "SM6", 900, 1700000000, &o, &d) ==
	    PH_E_CONFLICT && strstr(d.msg, "are queued to go back once it is "
	    "paid") != NULL, "a refund of a pending order holding a misfit: "
	    "refused, saying how it goes back (%s)", d.msg);
	json_decref(o);

	/* Through another of the merchant's accounts, first. */
	create(s, "SM2", 1000, "CNY");
	ev = fx_pay_event("SM2", "TSM3", 1000, "CNY");
	fx_apply(s, "wxother", &ev, &r, NULL);
	is_str(r.event_type, "order.profile_mismatch", "another account "
	    "first: profile_mismatch");
	ev = fx_pay_event("SM2", "TSM4", 1000, "CNY");
	apply(s, &ev, &r);
	ok(strcmp(fx_state(s, "SM2"), "PAID") == 0 &&
	    !queued_refund(s, "SM2", "double_payment", "TSM3", 1000) &&
	    fx_exceptions(s, "SM2", "double_payment") == 0, "... then the "
	    "right one: PAID, nothing sent back through an account the order "
	    "was never offered on");
	/* Another order, another wrong amount first: its own refund. */
	create(s, "SM3", 800, "CNY");
	ev = fx_pay_event("SM3", "TSM5", 700, "CNY");
	apply(s, &ev, &r);
	ev = fx_pay_event("SM3", "TSM6", 800, "CNY");
	apply(s, &ev, &r);
	ok(queued_refund(s, "SM3", "double_payment", "TSM5", 700),
	    "a wrong amount, then the right one: one refund, of the first");

	/* Another account after the order was paid, or closed: the same id
	 * under another account is another order whatever the state, so
	 * nothing of it is booked on this one nor sent back through it. */
	paid_then_foreign(s, "SM4", "TSM7", "TSM8", &r);
	is_str(r.event_type, "order.profile_mismatch", "a paid order, then "
	    "another account's payment: profile_mismatch");
	ok(strcmp(fx_state(s, "SM4"), "PAID") == 0 &&
	    fx_exceptions(s, "SM4", "double_payment") == 0 &&
	    !queued_refund(s, "SM4", "double_payment", "TSM8", 600),
	    "... not a double payment of it: nothing sent back through an "
	    "account the order was never offered on");
	/* ... even naming the transaction that paid it: neither a duplicate
	 * nor a conflict of the order's own. */
	ev = fx_pay_event("SM4", "TSM7", 599, "CNY");
	fx_apply(s, "wxother", &ev, &r, NULL);
	ok(strcmp(r.event_type, "order.profile_mismatch") == 0 &&
	    fx_exceptions(s, "SM4", "notification_conflict") == 0,
	    "another account naming the order's paying transaction with "
	    "another amount: profile_mismatch, no conflict raised on the "
	    "order (%s)", r.event_type);
	paid_then_foreign(s, "SM7", "TSM11", "TSM11", &r);
	is_str(r.event_type, "order.profile_mismatch", "... with the same "
	    "amount: profile_mismatch, not a duplicate of the order's own");
	create(s, "SM5", 600, "CNY");
	is_int(ledger_close_order(s, "SM5", 1700001000, "expired", &r, &d),
	    PH_OK, "SM5 closed");
	ev = fx_pay_event("SM5", "TSM9", 600, "CNY");
	fx_apply(s, "wxother", &ev, &r, NULL);
	ok(strcmp(r.event_type, "order.profile_mismatch") == 0 &&
	    strcmp(fx_state(s, "SM5"), "CLOSED") == 0 &&
	    fx_exceptions(s, "SM5", "late_payment") == 0 &&
	    !queued_refund(s, "SM5", "late_payment", "TSM9", 600),
	    "a closed order, then another account's payment: "
	    "profile_mismatch, no late payment");
}

/* Registers order id of amount CNY through wxshop: 1 when made, 0 when it
 * was there, -1 on a failure or when the answer is not in state. */
static int
register_as(struct store *s, const char *id, int64_t amount,
    const char *state)
{
	struct ph_diag d;
	json_t *o = NULL;
	int created, rc;

	memset(&d, 0, sizeof(d));
	rc = fx_create(s, id, "wxshop", amount, "CNY", 1700000000, &o,
	    &created, &d);
	if (rc == PH_OK && strcmp(fx_str(o, "state"), state) == 0)
		rc = created;
	else
		rc = -1;
	json_decref(o);
	return rc;
}

/* Payments the provider told of before the merchant registered the order
 * (payment.unknown_order) are applied when it is registered. */
static void
test_orphans(struct store *s)
{
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *o;
	int created;

	ev = fx_pay_event("OR1", "TO1", 250, "CNY");
	apply(s, &ev, &r);
	is_str(r.event_type, "payment.unknown_order", "orphan: unknown order");
	ev = fx_pay_event("OR1", "TO2", 250, "CNY");
	apply(s, &ev, &r);
	is_int(orphans_of(s, "OR1"), 2, "... both payments indexed under it");
	memset(&d, 0, sizeof(d));
	ok(fx_create(s, "OR1", "wxshop", 250, "CNY", 1700000000, &o,
	    &created, &d) == PH_OK && created, "the order registered late");
	is_str(fx_str(o, "state"), "PAID", "... is answered PAID");
	is_str(fx_str(o, "provider_txn_id"), "TO1", "... by the first payment");
	json_decref(o);
	is_str(fx_state(s, "OR1"), "PAID", "... and stored PAID");
	is_int(fx_exceptions(s, "OR1", "double_payment"), 1,
	    "... the second payment a double payment (refund queued)");
	is_int(orphans_of(s, "OR1"), 0, "... the index entries gone");
	is_int(register_as(s, "OR1", 250, "PAID"), 0,
	    "registered again: the same order, nothing applied twice");
	is_int(fx_exceptions(s, "OR1", "double_payment"), 1,
	    "... still one double payment");

	ev = fx_pay_event("OR2", "TO3", 99, "CNY");
	apply(s, &ev, &r);
	is_int(register_as(s, "OR2", 100, "PENDING"), 1,
	    "an orphan of another amount: the order stays PENDING");
	is_int(fx_exceptions(s, "OR2", "amount_mismatch"), 1,
	    "... with an amount_mismatch exception");
	ev = fx_pay_event("OR2", "TO3", 99, "CNY");
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "query:TO3");
	apply(s, &ev, &r);
	is_int(fx_exceptions(s, "OR2", "amount_mismatch"), 1,
	    "... and the same payment queried again is not counted twice");
}

/* Drops the index entry of orphan txn of order_id, as an older build
 * never wrote it. */
static void
unindex(struct store *s, const char *order_id, const char *txn)
{
	struct store_txn t;
	struct store_key k;

	store_key_init(&k, LEDGER_KEY_ORPHAN);
	store_key_str(&k, order_id);
	store_key_str(&k, "wxshop");
	store_key_str(&k, txn);
	store_begin(s, 1, &t);
	store_del(&t, STORE_DB_RECON, &k);
	store_commit(&t);
}

/* A store whose orphans were recorded before the index is indexed when
 * it is opened. */
static void
test_orphan_backfill(void)
{
	char path[300];
	struct store *s;
	struct store_txn t;
	struct store_key k;
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	size_t moved;

	snprintf(path, sizeof(path), "%s/orphans.mdb", dir);
	memset(&d, 0, sizeof(d));
	if (!ok(ledger_open(path, 16 << 20, &s, &d) == PH_OK,
	    "a new store opens (%s)", d.msg))
		return;
	ev = fx_pay_event("OB1", "TB1", 10, "CNY");
	apply(s, &ev, &r);
	/* What a build before the index left: no entry, no mark. */
	unindex(s, "OB1", "TB1");
	store_begin(s, 1, &t);
	store_key_init(&k, 0);
	store_key_str(&k, "orphan_index");
	store_del(&t, STORE_DB_META, &k);
	ok(store_commit(&t) == PH_OK && orphans_of(s, "OB1") == 0,
	    "an orphan without its index entry");
	store_close(s);
	ok(ledger_open(path, 16 << 20, &s, &d) == PH_OK, "reopened");
	is_int(orphans_of(s, "OB1"), 1, "... the orphan indexed");
	is_int(register_as(s, "OB1", 10, "PAID"), 1,
	    "... and its order, registered, is PAID");

	/* An older payhook.fcgi still running after the upgrade (the mark
	 * set) records an orphan without its entry: check indexes it. */
	ev = fx_pay_event("OB2", "TB2", 10, "CNY");
	apply(s, &ev, &r);
	unindex(s, "OB2", "TB2");
	ok(ledger_migrate_strays(s, &moved) == PH_OK && moved == 1 &&
	    orphans_of(s, "OB2") == 1, "an orphan an older build recorded "
	    "after the upgrade is indexed by check (%zu)", moved);
	ok(ledger_migrate_strays(s, &moved) == PH_OK && moved == 0,
	    "... once");
	is_int(register_as(s, "OB2", 10, "PAID"), 1,
	    "... and its order, registered, is PAID");
	store_close(s);
}

int
main(void)
{
	struct store *s;
	struct ph_diag d;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(dbpath, sizeof(dbpath), "%s/var/payhook.mdb", dir);
	memset(&d, 0, sizeof(d));
	if (!ok(store_open(dbpath, 16 << 20, 0, &s, &d) == PH_OK,
	    "store opens, creating its folder (%s)", d.msg))
		return done_testing();
	test_key_reader();
	test_orders(s);
	test_payments(s);
	test_schedule();
	test_sweeper_side(s);
	test_events_paging(s);
	test_refund_race(s);
	test_refund_by_payment(s);
	test_dedup_record(s);
	test_batch_apply(s);
	test_run_claim(s);
	test_older_fields(s);
	test_lease_overrun(s);
	test_copy(s);
	test_orphans(s);
	test_stray_refund(s);
	test_event_text(s);
	store_close(s);
	test_orphan_backfill();

	/* Committed means durable: a new environment sees everything. */
	ok(store_open(dbpath, 16 << 20, 0, &s, &d) == PH_OK, "store reopens");
	is_str(fx_state(s, "A1"), "PAID", "A1 still PAID after reopen");
	store_close(s);

	test_damaged_epoch();
	test_damaged_file();
	test_map_full();
	test_open_beside_writer();
	th_scratch_remove(dir);
	return done_testing();
}
