/*
 * The merchant's contract in the ledger, against real LMDB files:
 * Idempotency-Keys kept with their effects, refunds by the merchant's id
 * and their cancelling, facts that stay within their profile, ids that a
 * restore never hands out twice, and a schema 1 store brought up to date.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ledger/order.h"
#include "ops/proc.h"
#include "store/store.h"
#include "../../lib/ledger_fixture.h"
#include "../../lib/helpers.h"
#include "../../lib/tap.h"

static char dir[] = "/tmp/payhook-merchant-XXXXXX";

/* The answer a handler would give: the reply's code and refund id. */
static int
answer(void *arg, const struct ledger_reply *r, struct ph_buf *body)
{
	ph_buf_printf(body, "{\"rc\":%d,\"created\":%d,\"why\":%d,"
	    "\"refund_id\":\"%s\"}\n", r->rc, r->created, (int)r->why,
	    fx_str(r->rec, "refund_id"));
	return r->rc == PH_OK ? (r->created ? 201 : 200) : 409;
}

static void
idem_init(struct ledger_idem *idem, const char *key, const char *fp,
    int64_t now)
{
	memset(idem, 0, sizeof(*idem));
	snprintf(idem->key, sizeof(idem->key), "%s", key);
	snprintf(idem->fp, sizeof(idem->fp), "%s", fp);
	idem->now = now;
	idem->ttl_s = 86400;
	idem->lease_s = 60;
	idem->answer = answer;
}

/* The state a request under key with fingerprint fp finds at now; its
 * claim, if it makes one, is let go of at once. */
static enum ledger_idem_state
idem_state(struct store *s, const char *key, const char *fp, int64_t now)
{
	struct ledger_idem idem;
	enum ledger_idem_state st;

	idem_init(&idem, key, fp, now);
	ledger_idem_begin(s, &idem, &st);
	ledger_idem_free(&idem);
	return st;
}

static struct store *
open_at(const char *name)
{
	char path[300];
	struct store *s;
	struct ph_diag d;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	memset(&d, 0, sizeof(d));
	if (ledger_open(path, 16 << 20, &s, &d) != PH_OK) {
		diag("%s: %s", path, d.msg);
		return NULL;
	}
	return s;
}

/* In a child: claims the key "dead" and reports whether it got it. */
static int
claim_dead(void *arg)
{
	struct store *cs = open_at("m.mdb");
	enum ledger_idem_state st;
	struct ledger_idem c;

	(void)arg;
	idem_init(&c, "dead", "fp-d", FX_NOW);
	return cs != NULL && ledger_idem_begin(cs, &c, &st) == PH_OK &&
	    st == LEDGER_IDEM_RUN;
}

/*
 * A container's first process (pid 1 of its pid namespace) claims a key in
 * round one and is killed with the container; in round two, the container
 * started again, its new pid 1 retries.  Each round writes where it ran
 * (proc_where: host, boot, pid namespace) to where-<round> for the caller.
 * 0 when round one claimed the key; in round two, 0 when the claim was
 * taken over, 5 when it is held.
 */
static int
claim_in_container(void *arg)
{
	const int *round = arg;
	struct store *cs = open_at("m.mdb");
	enum ledger_idem_state st;
	char path[300], where[256];
	FILE *f;
	int rc;

	if (cs == NULL || getpid() != 1) {
		store_close(cs);
		return 2;
	}
	proc_where(where, sizeof(where));
	snprintf(path, sizeof(path), "%s/where-%d", dir, *round);
	if ((f = fopen(path, "w")) == NULL) {
		store_close(cs);
		return 6;
	}
	fprintf(f, "%s", where);
	fclose(f);
	if (*round == 0) {
		struct ledger_idem c;

		/* Its claim stays as the killed process left it. */
		idem_init(&c, "container", "fp-c", FX_NOW);
		rc = ledger_idem_begin(cs, &c, &st) == PH_OK &&
		    st == LEDGER_IDEM_RUN ? 0 : 3;
		ledger_idem_free(&c);
	} else {
		st = idem_state(cs, "container", "fp-c", FX_NOW + 1);
		rc = st == LEDGER_IDEM_RUN ? 0 : st == LEDGER_IDEM_BUSY ? 5 : 4;
	}
	store_close(cs);
	return rc;
}

/* What claim_in_container's round wrote of where it ran; "" if nothing. */
static void
container_where(int round, char *buf, size_t cap)
{
	char path[300];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/where-%d", dir, round);
	if ((f = fopen(path, "r")) != NULL) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

/* An order of profile paid by txn. */
static void
paid_order(struct store *s, const char *id, const char *profile,
    const char *txn, int64_t amount)
{
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *o = NULL;
	int created;

	memset(&d, 0, sizeof(d));
	fx_create(s, id, profile, amount, "CNY", FX_NOW - 100, &o, &created,
	    &d);
	json_decref(o);
	ev = fx_pay_event(id, txn, amount, "CNY");
	fx_apply(s, profile, &ev, &r, NULL);
}

static size_t
refund_count(struct store *s, const char *order_id)
{
	json_t *items;
	size_t n;

	if (ledger_order_refunds(s, order_id, &items) != PH_OK)
		return (size_t)-1;
	n = json_array_size(items);
	json_decref(items);
	return n;
}

static void
test_idempotency(struct store *s)
{
	struct ledger_idem idem;
	enum ledger_idem_state st;
	enum ledger_refusal why;
	struct ph_diag d;
	char first[256] = "";
	json_t *item;
	int i, created, rc;
	size_t pruned;

	paid_order(s, "I1", "wxshop", "TI1", 900);
	/* A refund of 300 asked three times under one key. */
	for (i = 0; i < 3; i++) {
		idem_init(&idem, "retry-me", "fp-a", FX_NOW + i);
		is_int(ledger_idem_begin(s, &idem, &st), PH_OK,
		    "try %d: the key is claimed or found", i + 1);
		if (i == 0) {
			is_int(st, LEDGER_IDEM_RUN, "first try: run the call");
			memset(&d, 0, sizeof(d));
			rc = fx_refund(s, "I1", NULL, 300, FX_NOW, &idem,
			    &item, &created, &why, &d);
			ok(rc == PH_OK && created && idem.kept &&
			    idem.status == 201, "... the refund is made and "
			    "its answer kept with it");
			snprintf(first, sizeof(first), "%s", idem.body.data);
			json_decref(item);
		} else {
			is_int(st, LEDGER_IDEM_REPLAY, "a retry replays");
			ok(idem.status == 201 && strcmp(idem.body.data,
			    first) == 0, "... the same status and bytes");
		}
		ledger_idem_free(&idem);
	}
	is_int(refund_count(s, "I1"), 1, "three tries with one key: one "
	    "refund");
	/* The same key for another request. */
	is_int(idem_state(s, "retry-me", "fp-b", FX_NOW + 5),
	    LEDGER_IDEM_REUSED, "the key with another request: reused");

	/* A claim whose call is still running, then abandoned. */
	idem_init(&idem, "slow", "fp-s", FX_NOW);
	ledger_idem_begin(s, &idem, &st);
	is_int(st, LEDGER_IDEM_RUN, "slow call claims its key");
	{
		struct ledger_idem later;

		is_int(idem_state(s, "slow", "fp-s", FX_NOW + 10),
		    LEDGER_IDEM_BUSY, "the same request meanwhile: in use");
		idem_init(&later, "slow", "fp-s", FX_NOW + 61);
		ledger_idem_begin(s, &later, &st);
		is_int(st, LEDGER_IDEM_RUN, "after the lease: taken over");
		/* The first call wakes up and tries to make its effect. */
		memset(&d, 0, sizeof(d));
		rc = fx_refund(s, "I1", NULL, 100, FX_NOW + 62, &idem, &item,
		    &created, &why, &d);
		ok(rc != PH_OK && !created, "the abandoned call cannot make "
		    "its effect any more");
		json_decref(item);
		is_int(refund_count(s, "I1"), 1, "... no second refund");
		rc = fx_refund(s, "I1", NULL, 100, FX_NOW + 62, &later, &item,
		    &created, &why, &d);
		ok(rc == PH_OK && created && later.kept, "the call that took "
		    "over makes it");
		json_decref(item);
		ledger_idem_free(&later);
	}
	ledger_idem_free(&idem);

	/* A call that runs longer than idempotency_ttl_s (an attempt waits
	 * for providers): its key is neither taken over nor forgotten. */
	idem_init(&idem, "longer", "fp-l", FX_NOW);
	idem.ttl_s = 60;
	idem.lease_s = 240;
	ledger_idem_begin(s, &idem, &st);
	is_int(st, LEDGER_IDEM_RUN, "a call of a key kept 60 s, leased 240 s");
	{
		size_t gone = 9;
		struct ledger_idem later;

		idem_init(&later, "longer", "fp-l", FX_NOW + 62);
		later.ttl_s = 60;
		later.lease_s = 240;
		ledger_idem_begin(s, &later, &st);
		is_int(st, LEDGER_IDEM_BUSY, "... a retry at 62 s: in use, not "
		    "taken over");
		ledger_idem_free(&later);
		ok(ledger_prune_idem(s, FX_NOW + 100, &gone) == PH_OK &&
		    gone == 0, "... nor pruned at 100 s (%zu gone)", gone);
		is_int(ledger_idem_end(s, &idem, 201, "{\"ok\":1}\n", 9),
		    PH_OK, "... the call answers");
		idem_init(&later, "longer", "fp-l", FX_NOW + 200);
		ledger_idem_begin(s, &later, &st);
		ok(st == LEDGER_IDEM_REPLAY && later.status == 201, "... a retry "
		    "at 200 s gets its answer, not a second call");
		ledger_idem_free(&later);
	}
	ledger_idem_free(&idem);

	/* A claim of a process that died, on this host: taken over at once. */
	{
		ok(fx_in_killed_child(claim_dead, NULL),
		    "a process claims a key and dies");
		is_int(idem_state(s, "dead", "fp-d", FX_NOW + 1),
		    LEDGER_IDEM_RUN, "... its claim is taken over at once, "
		    "lease or not");
	}

	/* Its pid given to another process when a container started again. */
	{
		int round, status[2] = { -1, -1 };

		for (round = 0; round < 2; round++) {
			usleep(30000);	/* a start time of its own */
			status[round] = fx_in_pidns(claim_in_container, &round);
		}
		char where[2][256];

		container_where(0, where[0], sizeof(where[0]));
		container_where(1, where[1], sizeof(where[1]));
		if (status[0] == FX_NO_PIDNS)
			skip(2, "a pid namespace and its /proc need root");
		else if (where[0][0] != '\0' &&
		    strcmp(where[0], where[1]) == 0) {
			is_int(status[0], 0, "a container's pid 1 claims a key "
			    "and is killed with its container");
			/* The kernel gave the new namespace the number of the
			 * old one, which it does only once that is gone. */
			is_int(status[1], 0, "... the container's new pid 1, "
			    "its namespace of the same number, takes the "
			    "claim over at once: the pid is alive, the process "
			    "is another");
		} else {
			is_int(status[0], 0, "a container's pid 1 claims a key "
			    "and is killed with its container");
			/* Another namespace: the old one may be alive, in a
			 * container beside this one, and its pid 1 says
			 * nothing here.  The lease decides. */
			is_int(status[1], 5, "... the container's new pid 1, "
			    "its namespace of another number, leaves the claim "
			    "to its lease: the old container may be running");
			if (status[1] != 5)
				diag("where: \"%s\", then \"%s\"", where[0],
				    where[1]);
		}
	}

	/* Answers without effect: a 4xx is kept, a 5xx lets go. */
	idem_init(&idem, "bad", "fp-x", FX_NOW);
	ledger_idem_begin(s, &idem, &st);
	is_int(ledger_idem_end(s, &idem, 400, "{\"error\":\"bad\"}\n", 17),
	    PH_OK, "a 400 is kept");
	ledger_idem_free(&idem);
	idem_init(&idem, "bad", "fp-x", FX_NOW + 1);
	ledger_idem_begin(s, &idem, &st);
	ok(st == LEDGER_IDEM_REPLAY && idem.status == 400, "... and replayed");
	ledger_idem_free(&idem);
	idem_init(&idem, "down", "fp-y", FX_NOW);
	ledger_idem_begin(s, &idem, &st);
	ledger_idem_end(s, &idem, 503, "{}\n", 3);
	ledger_idem_free(&idem);
	is_int(idem_state(s, "down", "fp-y", FX_NOW + 1), LEDGER_IDEM_RUN,
	    "a 503 is not kept: the retry runs");

	/* Forgotten after their time. */
	is_int(ledger_prune_idem(s, FX_NOW + 86400 + 100, &pruned), PH_OK,
	    "keys are pruned");
	ok(pruned >= 4, "... every key past its time (%zu)", pruned);
	is_int(idem_state(s, "retry-me", "fp-b", FX_NOW + 86400 + 200),
	    LEDGER_IDEM_RUN, "a forgotten key is new again");
}

static void
test_refund_ids(struct store *s)
{
	enum ledger_refusal why;
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *item = NULL, *lease = NULL, *items;
	int created;
	uint64_t seq;

	paid_order(s, "R1", "wxshop", "TR1", 1000);
	paid_order(s, "R2", "wxshop", "TR2", 1000);
	memset(&d, 0, sizeof(d));
	ok(fx_refund(s, "R1", "m-ref-1", 300, FX_NOW, NULL, &item, &created,
	    &why, &d) == PH_OK && created && strcmp(fx_str(item,
	    "refund_id"), "m-ref-1") == 0, "a refund with the merchant's id");
	json_decref(item);
	ok(fx_refund(s, "R1", "m-ref-1", 300, FX_NOW + 5, NULL, &item,
	    &created, &why, &d) == PH_OK && !created &&
	    strcmp(fx_str(item, "state"), "PENDING") == 0,
	    "the same again: the same refund, as it is now");
	json_decref(item);
	is_int(refund_count(s, "R1"), 1, "... still one refund");
	is_int(fx_refund(s, "R1", "m-ref-1", 301, FX_NOW, NULL, &item,
	    &created, &why, &d), PH_E_CONFLICT, "the id with another amount");
	is_int(why, LEDGER_REFUSAL_REFUND_ID, "... refund_id conflict");
	json_decref(item);
	is_int(fx_refund(s, "R2", "m-ref-1", 300, FX_NOW, NULL, &item,
	    &created, &why, &d), PH_E_CONFLICT, "the id on another order");
	json_decref(item);
	is_int(fx_refund(s, "R1", NULL, 701, FX_NOW, NULL, &item, &created,
	    &why, &d), PH_E_CONFLICT, "more than is left to refund");
	is_int(why, LEDGER_REFUSAL_TOO_MUCH, "... too much");
	json_decref(item);

	/* Cancel: before it is sent, and after. */
	ok(ledger_cancel_refund(s, "m-ref-1", FX_NOW + 10, NULL, &item, &why,
	    &d) == PH_OK && strcmp(fx_str(item, "state"), "CANCELLED") == 0,
	    "a refund never sent is cancelled");
	json_decref(item);
	ok(fx_events_of_type(s, "refund.cancelled", NULL) == 1,
	    "... refund.cancelled raised");
	ok(fx_refund(s, "R1", NULL, 1000, FX_NOW + 11, NULL, &item, &created,
	    &why, &d) == PH_OK, "its amount may be refunded again");
	seq = (uint64_t)json_integer_value(json_object_get(item, "seq"));
	{
		char id[LEDGER_REFUND_ID_MAX + 1];

		snprintf(id, sizeof(id), "%s", fx_str(item, "refund_id"));
		json_decref(item);
		is_int(ledger_cancel_refund(s, "m-ref-1", FX_NOW, NULL, &item,
		    &why, &d), PH_E_CONFLICT, "a cancelled refund: settled");
		is_int(why, LEDGER_REFUSAL_SETTLED, "... refund_settled");
		json_decref(item);
		int ours = 0;

		ledger_refund_lease(s, seq, FX_NOW + 12, 60, "runner", &lease);
		json_decref(lease);
		is_int(ledger_cancel_refund(s, id, FX_NOW + 13, NULL, &item,
		    &why, &d), PH_E_CONFLICT, "a refund a run holds");
		is_int(why, LEDGER_REFUSAL_IN_FLIGHT, "... refund_in_flight");
		json_decref(item);
		is_int(ledger_get_refund(s, id, &item), PH_OK,
		    "GET a refund by id");
		ok(!json_is_integer(json_object_get(item, "sent_at")),
		    "... not sent yet: its request is not built");
		json_decref(item);
		/* The run died before building it: once its lease is over,
		 * the merchant's to cancel (below, after the other case). */
		ok(ledger_refunds_sending(s, &seq, &ours, 1, "another",
		    FX_NOW + 14) == PH_OK && ours == 0, "a run whose lease it "
		    "is not may not send it");
		ok(ledger_refunds_sending(s, &seq, &ours, 1, "runner",
		    FX_NOW + 14) == PH_OK && ours == 1, "the run that holds it "
		    "sends it");
		is_int(ledger_get_refund(s, id, &item), PH_OK, "GET it again");
		ok(json_is_integer(json_object_get(item, "sent_at")),
		    "... it counts as sent from then on");
		json_decref(item);
		is_int(ledger_cancel_refund(s, id, FX_NOW + 100, NULL, &item,
		    &why, &d), PH_E_CONFLICT, "... its lease over: still sent");
		is_int(why, LEDGER_REFUSAL_IN_FLIGHT, "... refund_in_flight");
		json_decref(item);

		/* Leased by a run that died before it built the request. */
		paid_order(s, "R9", "wxshop", "TR9", 500);
		fx_refund(s, "R9", "m-ref-9", 500, FX_NOW, NULL, &item,
		    &created, &why, &d);
		seq = (uint64_t)json_integer_value(json_object_get(item,
		    "seq"));
		json_decref(item);
		ledger_refund_lease(s, seq, FX_NOW + 20, 60, "died", &lease);
		json_decref(lease);
		is_int(ledger_cancel_refund(s, "m-ref-9", FX_NOW + 21, NULL,
		    &item, &why, &d), PH_E_CONFLICT, "a refund leased by a run "
		    "that died before building it: refused while the lease "
		    "lasts");
		json_decref(item);
		ok(ledger_cancel_refund(s, "m-ref-9", FX_NOW + 81, NULL, &item,
		    &why, &d) == PH_OK && strcmp(fx_str(item, "state"),
		    "CANCELLED") == 0, "... cancelled once it is over: it was "
		    "never sent");
		json_decref(item);
	}
	is_int(ledger_get_refund(s, "no-such", &item), PH_E_NOTFOUND,
	    "an unknown refund id");
	is_int(ledger_cancel_refund(s, "no-such", FX_NOW, NULL, &item, &why,
	    &d), PH_E_NOTFOUND, "cancel of an unknown refund");

	/* Payhook's own refunds are the order's too. */
	ev = fx_pay_event("R2", "TR2-again", 1000, "CNY");
	fx_apply(s, "wxshop", &ev, &r, NULL);
	fx_refund(s, "R2", "m-ref-2", 100, FX_NOW, NULL, &item, &created,
	    &why, &d);
	json_decref(item);
	ok(ledger_order_refunds(s, "R2", &items) == PH_OK &&
	    json_array_size(items) == 2 && strcmp(fx_str(json_array_get(items,
	    0), "reason"), "double_payment") == 0 && strcmp(fx_str(
	    json_array_get(items, 1), "refund_id"), "m-ref-2") == 0,
	    "an order's refunds, payhook's own included, in the order asked");
	ok(strncmp(fx_str(json_array_get(items, 0), "refund_id"), "phr", 3) ==
	    0 && strlen(fx_str(json_array_get(items, 0), "refund_id")) > 15,
	    "payhook mints phr, the epoch and the sequence");
	json_decref(items);
	is_int(ledger_order_refunds(s, "nope", &items), PH_E_NOTFOUND,
	    "refunds of an unknown order");

	/* The merchant takes, for a refund of its own, the id payhook would
	 * mint next: payhook mints another. */
	paid_order(s, "R3", "wxshop", "TR3", 1000);
	fx_refund(s, "R3", NULL, 10, FX_NOW, NULL, &item, &created, &why, &d);
	seq = (uint64_t)json_integer_value(json_object_get(item, "seq"));
	json_decref(item);
	{
		char taken[LEDGER_REFUND_ID_MAX + 1], want[80];
		json_t *mine = NULL;

		snprintf(taken, sizeof(taken), "phr%.12s%llu", store_epoch(s),
		    (unsigned long long)seq + 2);
		ok(fx_refund(s, "R3", taken, 20, FX_NOW, NULL, &item,
		    &created, &why, &d) == PH_OK && created, "a merchant's "
		    "refund under the id payhook mints next");
		json_decref(item);
		ok(fx_refund(s, "R3", NULL, 30, FX_NOW, NULL, &item, &created,
		    &why, &d) == PH_OK && created, "then a refund payhook "
		    "names");
		snprintf(want, sizeof(want), "%sn1", taken);
		is_str(fx_str(item, "refund_id"), want, "... under another id");
		ok(ledger_get_refund(s, taken, &mine) == PH_OK &&
		    json_integer_value(json_object_get(mine, "amount")) == 20,
		    "the merchant's id still finds the merchant's refund");
		json_decref(mine);
		ok(ledger_get_refund(s, fx_str(item, "refund_id"), &mine) ==
		    PH_OK && json_integer_value(json_object_get(mine,
		    "amount")) == 30, "... and payhook's its own");
		json_decref(mine);
		json_decref(item);
	}

	/* A try whose answer was not taken, then a failure told by a
	 * notification: the try's error is no reason of the failure. */
	paid_order(s, "R5", "wxshop", "TR5", 1000);
	fx_refund(s, "R5", "m-ref-5", 100, FX_NOW, NULL, &item, &created,
	    &why, &d);
	seq = (uint64_t)json_integer_value(json_object_get(item, "seq"));
	json_decref(item);
	{
		struct ledger_result res;
		size_t n0 = fx_events_of_type(s, "refund.failed", NULL);

		ledger_refund_lease(s, seq, FX_NOW + 1, 60, "runner", &item);
		json_decref(item);
		ledger_refund_result(s, seq, "runner", PH_E_PROVIDER,
		    "answer (HTTP 503) not accepted", NULL, FX_NOW + 2, &res);
		ev = fx_refund_event("R5", "TR5", "m-ref-5", 100, 0);
		fx_apply(s, "wxshop", &ev, &r, NULL);
		ok(ledger_get_refund(s, "m-ref-5", &item) == PH_OK &&
		    strcmp(fx_str(item, "state"), "FAILED") == 0 &&
		    json_is_null(json_object_get(item, "last_error")),
		    "a refund a notification says failed, after a try that "
		    "got no answer: FAILED, no last_error of that try");
		json_decref(item);
		is_int(fx_events_of_type(s, "refund.failed", NULL), n0 + 1,
		    "... refund.failed raised");
	}

	/* A refund that failed, then verified made after all (an abnormal
	 * refund settled by hand at the provider): the money went back. */
	paid_order(s, "R4", "wxshop", "TR4", 1000);
	fx_refund(s, "R4", "m-ref-4", 600, FX_NOW, NULL, &item, &created,
	    &why, &d);
	json_decref(item);
	ev = fx_refund_event("R4", "TR4", "m-ref-4", 600, 0);
	fx_apply(s, "wxshop", &ev, &r, NULL);
	ok(ledger_get_refund(s, "m-ref-4", &item) == PH_OK &&
	    strcmp(fx_str(item, "state"), "FAILED") == 0, "a refund failed");
	json_decref(item);
	ev = fx_refund_event("R4", "TR4", "m-ref-4", 600, 1);
	is_int(fx_apply(s, "wxshop", &ev, &r, NULL), PH_OK, "then its "
	    "success, verified");
	is_str(r.event_type, "refund.succeeded", "... raised");
	ok(ledger_get_refund(s, "m-ref-4", &item) == PH_OK &&
	    strcmp(fx_str(item, "state"), "SUCCEEDED") == 0, "... the refund "
	    "SUCCEEDED");
	json_decref(item);
	ok(ledger_get_order(s, "R4", &item) == PH_OK &&
	    json_integer_value(json_object_get(item, "refunded")) == 600 &&
	    json_integer_value(json_object_get(item, "refund_requested")) ==
	    600 && strcmp(fx_str(item, "state"), "PAID") == 0,
	    "... counted on its order again: 600 refunded of 1000, PAID");
	json_decref(item);
	is_int(fx_refund(s, "R4", NULL, 401, FX_NOW, NULL, &item, &created,
	    &why, &d), PH_E_CONFLICT, "... so only 400 is left to refund");
	json_decref(item);
	ok(fx_events_of_type(s, "refund.succeeded", NULL) >= 1,
	    "... one refund.succeeded");
	fx_apply(s, "wxshop", &ev, &r, NULL);
	is_int(r.outcome, LEDGER_DUPLICATE, "the success again: a duplicate");
}

static void
test_profiles(struct store *s)
{
	enum ledger_refusal why;
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	json_t *item = NULL;
	int created;

	/* The victim's refund, named by the attacker's profile. */
	paid_order(s, "W1", "wxshop", "TW1", 500);
	memset(&d, 0, sizeof(d));
	fx_refund(s, "W1", "victim-1", 500, FX_NOW, NULL, &item, &created,
	    &why, &d);
	json_decref(item);
	ev = fx_refund_event("W1", "TW1", "victim-1", 500, 0);
	fx_apply(s, "attacker", &ev, &r, NULL);
	is_int(r.event, LEDGER_EV_REFUND_UNMATCHED, "a refund result from "
	    "another profile matches nothing");
	/* A WeChat v2 refund result has no integrity of its own (AES-ECB):
	 * a spliced one naming another order or currency matches nothing. */
	ev = fx_refund_event("W-other", "TW1", "victim-1", 500, 0);
	ev.dedup_key[0] = 'x';
	fx_apply(s, "wxshop", &ev, &r, NULL);
	is_int(r.event, LEDGER_EV_REFUND_UNMATCHED, "a refund result naming "
	    "another order matches nothing");
	ev = fx_refund_event("W1", "TW1", "victim-1", 500, 0);
	snprintf(ev.currency, sizeof(ev.currency), "USD");
	ev.dedup_key[0] = 'y';
	fx_apply(s, "wxshop", &ev, &r, NULL);
	is_int(r.event, LEDGER_EV_REFUND_UNMATCHED, "... or another currency");
	ev = fx_refund_event("W1", "TW1", "victim-1", 500, 0);
	ok(ledger_get_refund(s, "victim-1", &item) == PH_OK &&
	    strcmp(fx_str(item, "state"), "PENDING") == 0,
	    "... the victim's refund stays PENDING");
	json_decref(item);
	fx_apply(s, "wxshop", &ev, &r, NULL);
	ok(r.event == LEDGER_EV_REFUND_FAILED, "its own profile settles it");

	/* The victim's order and payment, first seen by another profile. */
	{
		json_t *o = NULL;

		fx_create(s, "W2", "wxshop", 700, "CNY", FX_NOW, &o, &created,
		    &d);
		json_decref(o);
	}
	ev = fx_pay_event("W2", "TW2", 700, "CNY");
	fx_apply(s, "attacker", &ev, &r, NULL);
	is_int(r.event, LEDGER_EV_ORDER_PROFILE_MISMATCH, "a payment through "
	    "another profile is recorded as a mismatch");
	fx_apply(s, "wxshop", &ev, &r, NULL);
	ok(r.outcome == LEDGER_APPLIED && r.event == LEDGER_EV_ORDER_PAID,
	    "the genuine notification still pays the order");
	is_str(fx_state(s, "W2"), "PAID", "... W2 PAID");
	fx_apply(s, "wxshop", &ev, &r, NULL);
	is_int(r.outcome, LEDGER_DUPLICATE, "and is a duplicate only within "
	    "its profile");
}

static void
test_event_ids(struct store *s)
{
	json_t *arr, *e;
	uint64_t next;
	size_t i;
	int good = 1;
	char want[64];

	ok(strlen(store_epoch(s)) == STORE_EPOCH_LEN, "the store has an "
	    "epoch (%s)", store_epoch(s));
	if (ledger_events(s, 0, 1000, &arr, &next) != PH_OK)
		arr = json_array();
	json_array_foreach(arr, i, e) {
		snprintf(want, sizeof(want), "%s-%lld", store_epoch(s),
		    (long long)json_integer_value(json_object_get(e, "seq")));
		if (strcmp(fx_str(e, "id"), want) != 0)
			good = 0;
	}
	ok(json_array_size(arr) > 0 && good, "every event's id is the epoch "
	    "and its seq");
	json_decref(arr);
}

/* Every event id and refund id s holds. */
static json_t *
ids_of(struct store *s)
{
	json_t *ids = json_object(), *arr, *e;
	uint64_t next;
	size_t i;

	if (ledger_events(s, 0, 1000, &arr, &next) == PH_OK) {
		json_array_foreach(arr, i, e)
			json_object_set_new(ids, fx_str(e, "id"), json_true());
		json_decref(arr);
	}
	if (ledger_refunds_list(s, 0, 1000, &arr) == PH_OK) {
		json_array_foreach(arr, i, e)
			json_object_set_new(ids, fx_str(e, "refund_id"),
			    json_true());
		json_decref(arr);
	}
	return ids;
}

/* store_restore of the backup file at backup, opened here. */
static int
restore_from(const char *path, const char *backup,
    struct store_restore_report *rep, struct ph_diag *d)
{
	int fd, rc;

	if ((fd = open(backup, O_RDONLY | O_CLOEXEC)) == -1)
		return ph_fail(d, PH_E_IO, "%s: %s", backup,
		    strerror(errno));
	rc = store_restore(path, fd, backup, 16 << 20, rep, d);
	close(fd);
	return rc;
}

static void
test_restore(void)
{
	struct store_restore_report rep;
	char path[300], backup[300];
	enum ledger_refusal why;
	struct ph_diag d;
	struct store *s;
	json_t *at_backup, *before, *after, *item, *v;
	const char *k;
	size_t fresh = 0, again = 0;
	int created, status, ready[2];
	pid_t child;
	char byte;

	snprintf(path, sizeof(path), "%s/restore.mdb", dir);
	snprintf(backup, sizeof(backup), "%s/restore.backup", dir);
	if ((s = open_at("restore.mdb")) == NULL) {
		ok(0, "restore: store opens");
		return;
	}
	paid_order(s, "B1", "wxshop", "TB1", 1000);
	memset(&d, 0, sizeof(d));
	ok(store_backup(s, backup, &d) == PH_OK, "a backup is taken");
	at_backup = ids_of(s);
	/* Handed out after the backup: the restore forgets them. */
	paid_order(s, "B2", "wxshop", "TB2", 1000);
	fx_refund(s, "B1", NULL, 100, FX_NOW, NULL, &item, &created, &why,
	    &d);
	json_decref(item);
	before = ids_of(s);
	store_close(s);

	/* Refused while another process has it open. */
	if (pipe(ready) == -1)
		ready[0] = ready[1] = -1;
	if ((child = fork()) == 0) {
		struct store *cs;

		close(ready[0]);
		if (ledger_open(path, 16 << 20, &cs, &d) == PH_OK) {
			/* Told once it has the store open: no guess at how
			 * long that takes (valgrind is slow). */
			(void)!write(ready[1], "o", 1);
			pause();
		}
		_exit(1);
	}
	close(ready[1]);
	(void)!read(ready[0], &byte, 1);
	close(ready[0]);
	memset(&d, 0, sizeof(d));
	is_int(restore_from(path, backup, &rep, &d),
	    PH_E_CONFLICT, "restore is refused while a process has the store "
	    "open");
	ok(strstr(d.msg, "process") != NULL, "... naming it: %s", d.msg);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);

	memset(&d, 0, sizeof(d));
	is_int(restore_from(path, backup, &rep, &d), PH_OK,
	    "restore once nobody has it open (%s)", d.msg);
	ok(rep.replaced && strcmp(rep.epoch_before, rep.epoch_after) != 0,
	    "... it gets a new epoch (%s to %s)", rep.epoch_before,
	    rep.epoch_after);
	if ((s = open_at("restore.mdb")) == NULL) {
		ok(0, "restored store opens");
		goto done;
	}
	is_str(fx_state(s, "B2"), "(none)", "the restored store is the "
	    "backup");
	is_str(store_epoch(s), rep.epoch_after, "... with the new epoch");
	/* The same work again: the same sequence numbers come next. */
	paid_order(s, "B3", "wxshop", "TB3", 1000);
	fx_refund(s, "B1", NULL, 100, FX_NOW, NULL, &item, &created, &why,
	    &d);
	json_decref(item);
	after = ids_of(s);
	json_object_foreach(after, k, v) {
		if (json_object_get(at_backup, k) != NULL)
			continue;
		fresh++;
		if (json_object_get(before, k) != NULL)
			again++;
	}
	ok(fresh >= 2, "ids were handed out after the restore (%zu)", fresh);
	is_int(again, 0, "none of them had been handed out before the "
	    "restore");
	json_decref(after);
	store_close(s);
done:
	json_decref(at_backup);
	json_decref(before);
}

/* A store written by schema 1: keys by provider, no epoch, no index. */
static int
write_v1(const char *path)
{
	static const char *const records[][3] = {
		{ "o", "V1", "{\"v\":1,\"order_id\":\"V1\",\"profile\":"
		    "\"wxshop\",\"amount\":500,\"currency\":\"CNY\",\"state\":"
		    "\"REFUNDING\",\"created_at\":1,\"updated_at\":1,\"paid_at\":"
		    "2,\"provider_txn_id\":\"TV1\",\"provider\":\"wechat\","
		    "\"paid_through\":\"wxshop\",\"exceptions\":[],"
		    "\"refund_requested\":100}" },
		{ "p", "TV1", "{\"v\":1,\"order_id\":\"V1\",\"profile\":"
		    "\"wxshop\",\"provider\":\"wechat\",\"provider_txn_id\":"
		    "\"TV1\",\"amount\":500,\"currency\":\"CNY\",\"status\":"
		    "\"SUCCEEDED\",\"disposition\":\"paid\",\"source\":\"notify\","
		    "\"occurred_at\":2,\"recorded_at\":2}" },
		{ "d", "pay:TV1", "{\"v\":1,\"digest\":\"x\",\"kind\":"
		    "\"payment.succeeded\",\"order_id\":\"V1\",\"source\":"
		    "\"notify\",\"first_seen\":2}" },
	};
	struct store *s;
	struct store_txn t;
	struct store_key k;
	struct ph_diag d;
	struct ph_event ev;
	char digest_rec[512];
	const char *refund = "{\"v\":1,\"seq\":1,\"refund_id\":"
	    "\"phr0000000000001\",\"reason\":\"merchant\",\"order_id\":\"V1\","
	    "\"profile\":\"wxshop\",\"provider\":\"wechat\",\"provider_txn_id\":"
	    "\"TV1\",\"amount\":100,\"payment_amount\":500,\"currency\":\"CNY\","
	    "\"state\":\"PENDING\",\"created_at\":3,\"updated_at\":3,\"tries\":0,"
	    "\"provider_refund_id\":null,\"last_error\":null}";
	const char *event = "{\"v\":1,\"seq\":1,\"type\":\"order.paid\","
	    "\"order_id\":\"V1\",\"profile\":\"wxshop\",\"provider\":\"wechat\","
	    "\"provider_txn_id\":\"TV1\",\"amount\":500,\"currency\":\"CNY\","
	    "\"at\":2,\"source\":\"notify\"}";
	size_t i;

	memset(&d, 0, sizeof(d));
	if (store_open(path, 16 << 20, 0, &s, &d) != PH_OK)
		return -1;
	if (store_begin(s, 1, &t) != PH_OK)
		return -1;
	/* The digest schema 1 stored for this very payment. */
	ev = fx_pay_event("V1", "TV1", 500, "CNY");
	{
		unsigned char h[PH_SHA256_LEN];
		char hex[2 * PH_SHA256_LEN + 1], text[256];

		snprintf(text, sizeof(text), "%d|%s|%s|%s|%lld|%s",
		    (int)ev.kind, ev.order_id, ev.txn_id, ev.refund_id,
		    (long long)ev.amount, ev.currency);
		ph_sha256(text, strlen(text), h);
		ph_hex_lower(h, sizeof(h), hex);
		snprintf(digest_rec, sizeof(digest_rec), "{\"v\":1,\"digest\":"
		    "\"%s\",\"kind\":\"payment.succeeded\",\"order_id\":\"V1\","
		    "\"source\":\"notify\",\"first_seen\":2}", hex);
	}
	for (i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
		const char *val = records[i][2];

		if (records[i][0][0] == 'o') {
			store_key_init(&k, STORE_KEY_ORDER);
			store_key_str(&k, records[i][1]);
			store_put(&t, STORE_DB_ORDERS, &k, val, strlen(val));
		} else if (records[i][0][0] == 'p') {
			store_key_init(&k, STORE_KEY_PAYMENT_V1);
			store_key_str(&k, "wechat");
			store_key_str(&k, records[i][1]);
			store_put(&t, STORE_DB_PAYMENTS, &k, val, strlen(val));
		} else {
			store_key_init(&k, STORE_KEY_DEDUP_V1);
			store_key_str(&k, "wechat");
			store_key_str(&k, records[i][1]);
			store_put(&t, STORE_DB_DEDUP, &k, digest_rec,
			    strlen(digest_rec));
		}
	}
	store_key_init(&k, 0);
	store_key_u64(&k, 1);
	store_put(&t, STORE_DB_REFUNDS, &k, refund, strlen(refund));
	store_put(&t, STORE_DB_EVENTS, &k, event, strlen(event));
	store_key_init(&k, 0);
	store_key_str(&k, "schema");
	store_put(&t, STORE_DB_META, &k, "1", 1);
	store_key_init(&k, 0);
	store_key_str(&k, "epoch");
	store_del(&t, STORE_DB_META, &k);
	if (store_commit(&t) != PH_OK)
		return -1;
	store_close(s);
	return 0;
}

/* How many records of db are still JSON text (-1: the scan failed). */
static int
json_records(struct store *s, enum store_db db)
{
	struct store_txn t;
	struct store_scan sc;
	int n = 0;

	if (store_begin(s, 0, &t) != PH_OK)
		return -1;
	store_scan_begin(&sc, &t, db, NULL);
	while (store_scan_next(&sc))
		if (sc.val.len > 0 && ((const char *)sc.val.data)[0] == '{')
			n++;
	store_scan_end(&sc);
	if (t.err != PH_OK)
		n = -1;
	store_abort(&t);
	return n;
}

/* Sets the schema version a store says it has. */
static int
set_schema(const char *path, const char *version)
{
	struct store_txn t;
	struct store_key k;
	struct ph_diag d;
	struct store *s;

	if (store_open(path, 16 << 20, STORE_OPEN_OLDER, &s, &d) != PH_OK ||
	    store_begin(s, 1, &t) != PH_OK)
		return -1;
	store_key_init(&k, 0);
	store_key_str(&k, "schema");
	store_put(&t, STORE_DB_META, &k, version, strlen(version));
	if (store_commit(&t) != PH_OK)
		return -1;
	store_close(s);
	return 0;
}

static void
test_migration(void)
{
	char path[300];
	struct ledger_batch b;
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	struct store *s;
	json_t *item, *items, *arr, *pay;
	uint64_t next;

	snprintf(path, sizeof(path), "%s/v1.mdb", dir);
	if (!ok(write_v1(path) == 0, "a schema 1 store is written"))
		return;
	memset(&d, 0, sizeof(d));
	s = NULL;
	ok(store_open(path, 16 << 20, 0, &s, &d) != PH_OK &&
	    strstr(d.msg, "schema version 1") != NULL, "store_open refuses it "
	    "unasked: %s", d.msg);
	store_close(s);
	if (!ok((s = open_at("v1.mdb")) != NULL, "ledger_open brings it up "
	    "to date"))
		return;
	is_int(store_schema(s), STORE_SCHEMA_VERSION, "... schema %d",
	    STORE_SCHEMA_VERSION);
	ok(strlen(store_epoch(s)) == STORE_EPOCH_LEN, "... with an epoch");
	ledger_batch_begin(&b, s);
	ok(ledger_batch_payment(&b, "wxshop", "TV1", &pay) == PH_OK &&
	    strcmp(fx_str(pay, "order_id"), "V1") == 0, "the payment is its "
	    "profile's now");
	json_decref(pay);
	ledger_batch_end(&b);
	ev = fx_pay_event("V1", "TV1", 500, "CNY");
	fx_apply(s, "wxshop", &ev, &r, NULL);
	is_int(r.outcome, LEDGER_DUPLICATE, "a notification schema 1 saw is "
	    "still a duplicate");
	{
		struct store_txn t;
		struct store_key k;
		struct store_val v;

		store_key_init(&k, STORE_KEY_DEDUP_V1);
		store_key_str(&k, "wechat");
		store_key_str(&k, "pay:TV1");
		ok(store_begin(s, 0, &t) == PH_OK &&
		    store_get(&t, STORE_DB_DEDUP, &k, &v) == PH_OK &&
		    v.len > 0 && ((const unsigned char *)v.data)[0] == 0xd1,
		    "its dedup record is a binary one (schema 3)");
		store_abort(&t);
	}
	ok(ledger_get_refund(s, "phr0000000000001", &item) == PH_OK &&
	    json_object_get(item, "sent_at") != NULL, "its refund is found by "
	    "id");
	json_decref(item);
	ok(ledger_order_refunds(s, "V1", &items) == PH_OK &&
	    json_array_size(items) == 1, "... and listed on its order");
	json_decref(items);
	ok(ledger_events(s, 0, 10, &arr, &next) == PH_OK &&
	    strlen(fx_str(json_array_get(arr, 0), "id")) > STORE_EPOCH_LEN,
	    "its event has an id");
	json_decref(arr);
	ok(json_records(s, STORE_DB_ORDERS) == 0 &&
	    json_records(s, STORE_DB_PAYMENTS) == 0 &&
	    json_records(s, STORE_DB_EVENTS) == 0 &&
	    json_records(s, STORE_DB_REFUNDS) == 0, "no record is JSON text "
	    "any more (schema 4: CBOR)");
	store_close(s);
	ok((s = open_at("v1.mdb")) != NULL, "and opens again as it is");
	store_close(s);

	/* A build of this schema refuses a store of the next. */
	{
		char newer[16], words[40];

		snprintf(newer, sizeof(newer), "%d", STORE_SCHEMA_VERSION + 1);
		snprintf(words, sizeof(words), "schema version %s", newer);
		ok(set_schema(path, newer) == 0, "the store now says schema "
		    "%s", newer);
		s = NULL;
		memset(&d, 0, sizeof(d));
		ok(store_open(path, 16 << 20, STORE_OPEN_OLDER, &s, &d) !=
		    PH_OK && strstr(d.msg, words) != NULL, "a newer store is "
		    "refused, even to a migration: %s", d.msg);
	}
	store_close(s);
}

/* Is the API's text of the order, made from its stored bytes, the text
 * its tree gives (what GET /orders/<id> answered before)? */
static int
api_text_same(struct store *s, const char *order_id)
{
	struct ph_buf out;
	json_t *o = NULL;
	char *want = NULL;
	int same;

	ph_buf_init(&out, 1 << 20);
	same = ledger_order_api(s, order_id, &out) == PH_OK &&
	    ledger_get_order(s, order_id, &o) == PH_OK &&
	    (want = json_dumps(order_to_api_new(o), JSON_COMPACT)) != NULL &&
	    strcmp(want, out.data) == 0;
	if (!same)
		diag("want %s\n#  got %s", want != NULL ? want : "(none)",
		    out.data != NULL ? out.data : "(none)");
	free(want);
	json_decref(o);
	ph_buf_free(&out);
	return same;
}

/* Is the API's text of the feed from after, made from the stored bytes,
 * the text of the events' trees (what GET /events answered before)? */
static int
events_text_same(struct store *s, uint64_t after, unsigned limit)
{
	struct ph_buf out;
	json_t *arr = NULL, *views = json_array(), *e;
	uint64_t next = 0, next2 = 1;
	char *want = NULL;
	size_t i;
	int same;

	ph_buf_init(&out, 1 << 20);
	same = ledger_events_api(s, after, limit, &out, &next) == PH_OK &&
	    ledger_events(s, after, limit, &arr, &next2) == PH_OK;
	json_array_foreach(arr, i, e)
		json_array_append_new(views, order_event_to_api(e));
	same = same && next == next2 &&
	    (want = json_dumps(views, JSON_COMPACT)) != NULL &&
	    strcmp(want, out.data) == 0;
	if (!same)
		diag("want %s (next %llu)\n#  got %s (next %llu)",
		    want != NULL ? want : "(none)", (unsigned long long)next2,
		    out.data != NULL ? out.data : "(none)",
		    (unsigned long long)next);
	free(want);
	json_decref(views);
	json_decref(arr);
	ph_buf_free(&out);
	return same;
}

/* An order whose attempt data nests deeper than a CBOR record goes (as
 * a store of schema 3 may hold one): kept in JSON text, read and written
 * as any other. */
static void
test_deep_record(struct store *s)
{
	struct ledger_new_order n;
	struct store_txn t;
	struct store_key k;
	struct store_val v;
	struct ph_diag d;
	json_t *data = fx_nested(70), *o = NULL;
	int created = 0, json = 0;

	memset(&n, 0, sizeof(n));
	n.order_id = "DEEP1";
	n.profile = "wxshop";
	n.amount = 100;
	n.currency = "CNY";
	n.attempt = data;
	memset(&d, 0, sizeof(d));
	is_int(ledger_create_order(s, &n, 1700000000, NULL, &o, &created, &d),
	    PH_OK, "an order with attempt data 70 deep is made: %s", d.msg);
	json_decref(o);
	o = NULL;
	ledger_key_order(&k, "DEEP1");
	if (store_begin(s, 0, &t) == PH_OK) {
		json = store_get(&t, STORE_DB_ORDERS, &k, &v) == PH_OK &&
		    ledger_is_json(&v);
		store_abort(&t);
	}
	ok(json, "... its record is JSON text");
	ok(ledger_get_order(s, "DEEP1", &o) == PH_OK &&
	    json_equal(json_object_get(json_array_get(json_object_get(o,
	    "attempts"), 0), "data"), data), "... and reads back the same");
	ok(api_text_same(s, "DEEP1"), "... and the API shows it as it shows "
	    "its tree");
	json_decref(o);
	json_decref(data);
}

/*
 * A store written by payhook of schema 3 (tests/unit/data/schema3.mdb:
 * demo/run-demo of 8227430, its order paid and a refund of it asked with
 * an Idempotency-Key, an order with attempt data made with one, a pending
 * order), opened by this build: brought up to date, every record there.
 */
static void
test_schema3_file(void)
{
	const char *top = getenv("top_srcdir");
	char from[4096], to[400];
	json_t *o = NULL, *arr = NULL, *r = NULL, *data;
	struct store *s;
	uint64_t next;
	size_t n = 0;
	char buf[65536];
	FILE *in, *out;

	snprintf(from, sizeof(from), "%s/tests/unit/data/schema3.mdb",
	    top != NULL && top[0] != '\0' ? top : ".");
	snprintf(to, sizeof(to), "%s/s3.mdb", dir);
	if ((in = fopen(from, "rb")) != NULL) {
		if ((out = fopen(to, "wb")) != NULL) {
			while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
				if (fwrite(buf, 1, n, out) != n)
					break;
			if (fclose(out) != 0)
				n = 1;
		} else
			n = 1;
		fclose(in);
	} else
		n = 1;
	if (!ok(n == 0, "the schema 3 store of 8227430 is copied (%s)", from))
		return;
	if (!ok((s = open_at("s3.mdb")) != NULL, "ledger_open brings it up"))
		return;
	is_int(store_schema(s), STORE_SCHEMA_VERSION, "... to schema %d",
	    STORE_SCHEMA_VERSION);
	ok(json_records(s, STORE_DB_ORDERS) == 0 &&
	    json_records(s, STORE_DB_PAYMENTS) == 0 &&
	    json_records(s, STORE_DB_EVENTS) == 0 &&
	    json_records(s, STORE_DB_REFUNDS) == 0 &&
	    json_records(s, STORE_DB_IDEM) == 0, "... no record left in JSON "
	    "text");
	ok(ledger_get_order(s, "DEMO-20261205210818-18227", &o) == PH_OK &&
	    strcmp(fx_str(o, "state"), "REFUNDING") == 0 &&
	    strcmp(fx_str(o, "provider_txn_id"),
	    "420020261206050818b1b9298ad0") == 0 &&
	    json_integer_value(json_object_get(o, "amount")) == 1,
	    "the paid order, a refund asked: REFUNDING, its transaction");
	json_decref(o);
	o = NULL;
	data = json_pack("{s:s, s:{s:[i, i, s, b, n]}}", "txnTime",
	    "20261205210000", "nested", "list", 1, -2, "\xe6\x94\xb6\xe6\xac"
	    "\xbe", 1);
	ok(ledger_get_order(s, "MIG-ATT-1", &o) == PH_OK &&
	    strcmp(fx_str(o, "state"), "PENDING") == 0 &&
	    json_integer_value(json_object_get(o, "amount")) == 2500 &&
	    json_equal(json_object_get(json_array_get(json_object_get(o,
	    "attempts"), 0), "data"), data), "the order with attempt data: "
	    "pending, 2500, its data the same");
	json_decref(data);
	json_decref(o);
	o = NULL;
	ok(ledger_get_order(s, "MIG-PEND-2", &o) == PH_OK &&
	    strcmp(fx_str(o, "state"), "PENDING") == 0, "the pending order");
	json_decref(o);
	ok(api_text_same(s, "DEMO-20261205210818-18227") &&
	    api_text_same(s, "MIG-ATT-1") && api_text_same(s, "MIG-PEND-2"),
	    "the API shows each order straight from its record as it shows "
	    "its tree");
	{
		struct ph_buf view;

		ph_buf_init(&view, 1 << 20);
		ph_buf_puts(&view, "x");
		is_int(ledger_order_api(s, "NO-SUCH-ORDER", &view),
		    PH_E_NOTFOUND, "an order not there is not found");
		ok(strcmp(view.data, "x") == 0, "... and nothing is written");
		ph_buf_free(&view);
	}
	ok(ledger_get_refund(s, "phr218b6511e63a1", &r) == PH_OK &&
	    json_integer_value(json_object_get(r, "amount")) == 1 &&
	    strcmp(fx_str(r, "merchant_reason"), "migration fixture") == 0,
	    "the refund, found by its id");
	json_decref(r);
	ok(ledger_events(s, 0, 10, &arr, &next) == PH_OK &&
	    json_array_size(arr) == 2 &&
	    strcmp(fx_str(json_array_get(arr, 0), "type"), "order.paid") == 0 &&
	    strcmp(fx_str(json_array_get(arr, 0), "id"),
	    "218b6511e63a6660-1") == 0, "the two events, order.paid first, "
	    "its id as before");
	json_decref(arr);
	ok(events_text_same(s, 0, 10) && events_text_same(s, 0, 1) &&
	    events_text_same(s, 1, 10) && events_text_same(s, 2, 10) &&
	    events_text_same(s, UINT64_MAX, 10), "the feed shown straight "
	    "from its records as from their trees: whole, one, after one, "
	    "past the end, after the last number there is");
	store_close(s);
}

/* A payment record as JSON text under ('p', key_profile, txn). */
static void
put_payment(struct store_txn *t, const char *key_profile, const char *txn,
    const char *status)
{
	struct store_key k;
	char val[512];

	snprintf(val, sizeof(val), "{\"v\":1,\"order_id\":\"O-%s\","
	    "\"profile\":\"wxshop\",\"provider\":\"wechat\","
	    "\"provider_txn_id\":\"%s\",\"amount\":100,\"currency\":"
	    "\"CNY\",\"status\":\"%s\",\"disposition\":\"%s\","
	    "\"source\":\"notify\",\"occurred_at\":0,\"recorded_at\":1}",
	    txn, txn, status, strcmp(status, "FAILED") == 0 ? "failed" :
	    "paid");
	ledger_key_pair(&k, STORE_KEY_PAYMENT, key_profile, txn);
	store_put(t, STORE_DB_PAYMENTS, &k, val, strlen(val));
}

/* The status of the payment record under ('p', profile, txn), or NULL. */
static char *
payment_status(struct store *s, const char *profile, const char *txn)
{
	struct store_txn t;
	struct store_key k;
	json_t *p = NULL;
	char *st = NULL;

	if (store_begin(s, 0, &t) != PH_OK)
		return NULL;
	ledger_key_pair(&k, STORE_KEY_PAYMENT, profile, txn);
	if (ledger_get(&t, STORE_DB_PAYMENTS, &k, &p) == PH_OK)
		st = strdup(fx_str(p, "status"));
	json_decref(p);
	store_abort(&t);
	return st;
}

/*
 * Schema 4 wrote a failed payment under the provider's name: brought to
 * schema 5, it is under its profile's key, unless a record of the same
 * transaction is there already.
 */
static void
test_schema4_failed_payments(void)
{
	char path[400], *st;
	struct store *s;
	struct store_txn t;
	struct ph_diag d;

	snprintf(path, sizeof(path), "%s/s4.mdb", dir);
	memset(&d, 0, sizeof(d));
	if (!ok(store_open(path, 16 << 20, 0, &s, &d) == PH_OK &&
	    store_begin(s, 1, &t) == PH_OK, "a store of schema 4"))
		return;
	put_payment(&t, "wechat", "TF1", "FAILED");	/* failed only */
	put_payment(&t, "wechat", "TF2", "FAILED");	/* failed, then paid */
	put_payment(&t, "wxshop", "TF2", "SUCCEEDED");
	put_payment(&t, "wxshop", "TF3", "SUCCEEDED");
	store_set_schema(&t, 4);
	ok(store_commit(&t) == PH_OK, "... with failed payments under the "
	    "provider's name");
	store_close(s);
	if (!ok((s = open_at("s4.mdb")) != NULL, "ledger_open brings it up"))
		return;
	is_int(store_schema(s), 5, "... to schema 5");
	st = payment_status(s, "wxshop", "TF1");
	is_str(st != NULL ? st : "(none)", "FAILED", "a failed payment: under "
	    "its profile's key");
	free(st);
	st = payment_status(s, "wxshop", "TF2");
	is_str(st != NULL ? st : "(none)", "SUCCEEDED", "failed, then paid: "
	    "the success stays");
	free(st);
	st = payment_status(s, "wxshop", "TF3");
	is_str(st != NULL ? st : "(none)", "SUCCEEDED", "a payment under its "
	    "profile's key is left");
	free(st);
	ok(payment_status(s, "wechat", "TF1") == NULL &&
	    payment_status(s, "wechat", "TF2") == NULL, "nothing left under "
	    "the provider's name");
	/* A payhook.fcgi of schema 4 still running writes one more. */
	if (ok(store_begin(s, 1, &t) == PH_OK, "schema 5, written as 4 did")) {
		put_payment(&t, "wechat", "TF4", "FAILED");
		ok(store_commit(&t) == PH_OK, "... a failed payment under the "
		    "provider's name");
	}
	{
		size_t moved = 99;
		int rc = ledger_migrate_strays(s, &moved);

		ok(rc == PH_OK && moved == 1, "ledger_migrate_strays moves it "
		    "(%zu)", moved);
		ledger_migrate_strays(s, &moved);
		is_int((int)moved, 0, "... and nothing more when run again");
	}
	st = payment_status(s, "wxshop", "TF4");
	is_str(st != NULL ? st : "(none)", "FAILED", "... under its "
	    "profile's key");
	free(st);
	store_close(s);
}

int
main(void)
{
	struct store *s;

	if (mkdtemp(dir) == NULL)
		return 1;
	if ((s = open_at("m.mdb")) == NULL) {
		ok(0, "store opens");
		return done_testing();
	}
	test_idempotency(s);
	test_refund_ids(s);
	test_profiles(s);
	test_event_ids(s);
	test_deep_record(s);
	{
		struct ph_buf b;
		uint64_t next = 0;
		int rc;

		ph_buf_init(&b, 1 << 20);
		rc = ledger_events_api(s, 0, 1000, &b, &next);
		ok(rc == PH_OK && next > 5 && events_text_same(s, 0, 1000) &&
		    events_text_same(s, 3, 2), "every event these tests made "
		    "(%llu) shown straight from its record as from its tree",
		    (unsigned long long)next);
		ph_buf_free(&b);
	}
	store_close(s);
	test_restore();
	test_migration();
	test_schema3_file();
	test_schema4_failed_payments();
	th_scratch_remove(dir);
	return done_testing();
}
