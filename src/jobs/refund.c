/*
 * The refund runner.  Work items are leased one by one as they go out,
 * so two runners never send one refund at the same moment, nor does the
 * operator settle one on its way; the provider's own idempotency (the
 * refund id) covers a runner killed after sending.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ledger/ledger.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "jobs/query.h"
#include "jobs/refund.h"

#define REFUND_BATCH 256

/* A string member of a refund record, "" when it has none. */
static const char *
refund_text(const json_t *item, const char *name)
{
	const char *v = json_string_value(json_object_get(item, name));

	return v != NULL ? v : "";
}

/*
 * The wave's refunds whose requests were built count as sent from now on
 * (ledger_refunds_sending), before any goes out.  One whose lease another
 * run has taken since is not sent (its job unprepared, PH_E_CONFLICT);
 * when the store cannot record it, none is.
 */
static void
refund_mark_sending(struct store *s, struct query_job *jobs,
    const uint64_t *seqs, size_t n, const char *token, int64_t now)
{
	uint64_t *mine;
	int *ours;
	size_t i, m = 0;
	int rc = PH_E_NOMEM;

	mine = calloc(n + 1, sizeof(*mine));
	ours = calloc(n + 1, sizeof(*ours));
	if (mine != NULL && ours != NULL) {
		for (i = 0; i < n; i++)
			if (jobs[i].prepared)
				mine[m++] = seqs[i];
		rc = m > 0 ? ledger_refunds_sending(s, mine, ours, m, token,
		    now) : PH_OK;
	}
	for (i = 0, m = 0; i < n; i++) {
		if (!jobs[i].prepared)
			continue;
		if (rc != PH_OK) {
			jobs[i].err = rc;
			snprintf(jobs[i].message, sizeof(jobs[i].message),
			    "not sent: it could not be recorded as sent (%s)",
			    ph_strerror(rc));
			jobs[i].prepared = 0;
		} else if (!ours[m]) {
			jobs[i].err = PH_E_CONFLICT;
			snprintf(jobs[i].message, sizeof(jobs[i].message),
			    "not sent: another run holds it now");
			jobs[i].prepared = 0;
		}
		m++;
	}
	free(mine);
	free(ours);
}

/*
 * Sends the count work items of items from from on, at once: each leased
 * now, as it goes out, and its answer recorded.  Returns the first result
 * the database did not record, else PH_OK.
 */
static int
refund_wave(const struct conf *c, struct store *s, json_t *items,
    size_t from, size_t count, const char *token, struct refund_stats *st)
{
	struct query_job *jobs;
	struct ledger_result res;
	json_t *item, *order;
	uint64_t *seqs;
	int64_t now = (int64_t)time(NULL);
	size_t i, n = 0;
	int rc, failed = PH_OK;	/* the first result not recorded */

	jobs = calloc(count + 1, sizeof(*jobs));
	seqs = calloc(count + 1, sizeof(*seqs));
	if (jobs == NULL || seqs == NULL) {
		free(jobs);
		free(seqs);
		return PH_E_NOMEM;
	}
	for (i = from; i < from + count; i++) {
		const struct conf_profile *pr;
		const char *pname;
		uint64_t seq;

		item = json_array_get(items, i);
		seq = (uint64_t)json_integer_value(json_object_get(item,
		    "seq"));
		pname = json_string_value(json_object_get(item, "profile"));
		if ((pr = conf_profile(c, pname != NULL ? pname : "")) == NULL) {
			/* Kept: the money is owed, and the profile may be
			 * configured again.  Not leased: nothing goes out
			 * now, and one never sent stays the merchant's to
			 * cancel (a lease marks it sent). */
			log_warn("refund %s of order %s: not sent: its profile "
			    "%s is no longer configured; it waits until it is",
			    refund_text(item, "refund_id"),
			    refund_text(item, "order_id"), refund_text(item,
			    "profile"));
			ledger_refund_result(s, seq, token, PH_E_CONFIG,
			    "its profile is no longer configured", NULL, now,
			    &res);
			st->errors++;
			st->config_errors++;
			continue;
		}
		/* Sent as the lease finds it, not as the list read at the
		 * start had it: a wave may go out minutes later, the refund
		 * sent meanwhile. */
		if (ledger_refund_lease(s, seq, now, (int64_t)c->lease_s, token,
		    &item) != PH_OK) {
			json_decref(item);
			continue;
		}
		order = NULL;
		ledger_get_order(s, json_string_value(json_object_get(item,
		    "order_id")), &order);
		query_prepare_refund(&jobs[n], pr, item, order, now);
		json_decref(order);
		json_decref(item);
		seqs[n++] = seq;
	}
	refund_mark_sending(s, jobs, seqs, n, token, now);
	query_send(c, jobs, n, n);
	for (i = 0; i < n; i++) {
		struct query_job *j = &jobs[i];
		const char *result;

		if (!j->prepared && j->err == PH_E_CONFLICT) {
			/* Another run's now: nothing of it is this run's. */
			log_warn("refund %s of order %s: %s", j->refund_id,
			    j->order_id, j->message);
			query_job_free(j);
			continue;
		}
		if (j->prepared) {
			st->sent++;
			query_finish(s, j, now);
		}
		if (!j->prepared && (j->err == PH_E_UNSUPPORTED ||
		    j->err == PH_E_FIELD)) {
			/* Never sent and never sendable as it is (the provider
			 * makes no refunds, or the plugin refuses what it
			 * holds): it fails here instead of waiting for ever,
			 * and its amount may be asked for again. */
			st->failed++;
			result = "failed";
			log_warn("refund %s of order %s: not sent: %s; it failed",
			    j->refund_id, j->order_id, j->message);
			j->err = PH_OK;
			j->ev.kind = PH_EV_REFUND_FAILED;
			j->ev.amount = j->rref.amount;
		} else if (j->err != PH_OK) {
			st->errors++;
			if (j->err == PH_E_CONFIG)
				st->config_errors++;
			result = "error";
			log_warn("refund %s of order %s: %s", j->refund_id,
			    j->order_id, j->message);
		} else if (ledger_refund_amount_off(&j->ev, j->rref.amount)) {
			/* Not the refund as asked: the ledger raises it, and
			 * it stays to be settled by hand. */
			st->errors++;
			result = "error";
			log_warn("refund %s of order %s: the provider reports "
			    "%lld, not the %lld asked; settle it by hand "
			    "(payhook refunds settle)", j->refund_id,
			    j->order_id,
			    (long long)j->ev.amount,
			    (long long)j->rref.amount);
		} else if (j->ev.kind == PH_EV_REFUND_SUCCEEDED) {
			st->succeeded++;
			result = "succeeded";
		} else if (j->ev.kind == PH_EV_REFUND_FAILED) {
			st->failed++;
			result = "failed";
			log_warn("refund %s of order %s: refused by the "
			    "provider: %s", j->refund_id, j->order_id,
			    j->message[0] != '\0' ? j->message : "no reason "
			    "given");
		} else if (j->ev.kind == PH_EV_NOT_FOUND && j->rref.query) {
			/* Asked about, not made there: sent again, under the
			 * same refund id, by the next run. */
			j->ev.amount = j->rref.amount;
			st->pending++;
			result = "pending";
			log_warn("refund %s of order %s: the provider has not "
			    "made it; it is sent again", j->refund_id,
			    j->order_id);
		} else {
			/* Pending, or a kind no refund answer has: nothing
			 * about the refund is taken from it. */
			if (j->ev.kind != PH_EV_PAYMENT_PENDING)
				j->ev.amount = j->rref.amount;
			j->ev.kind = PH_EV_PAYMENT_PENDING;
			st->pending++;
			result = "pending";
		}
		if ((rc = ledger_refund_result(s, seqs[i], token, j->err,
		    j->message, &j->ev, now, &res)) != PH_OK) {
			log_err("refund %s: result not recorded (%s); the "
			    "next run asks again with the same id",
			    j->refund_id, ph_strerror(rc));
			if (failed == PH_OK)
				failed = rc;
		}
		metrics_add("payhook_refunds_total", result[0] == 'e' ?
		    "result=error" : result[0] == 's' ? "result=succeeded" :
		    result[0] == 'f' ? "result=failed" : "result=pending", 1);
		query_job_free(j);
	}
	free(jobs);
	free(seqs);
	return failed;
}

int
refund_run(const struct conf *c, struct store *s, const char *token,
    struct refund_stats *st)
{
	json_t *items;
	uint64_t after = 0;
	size_t i, n, wave = c->sweep_concurrency > 0 ?
	    (size_t)c->sweep_concurrency : 1;
	int rc, failed = PH_OK;

	memset(st, 0, sizeof(*st));
	/*
	 * The whole list, REFUND_BATCH at a time: the first batch alone
	 * left every newer refund unsent while that many older ones were
	 * still being made (a bank card's refund takes days).
	 */
	do {
		if ((rc = ledger_refunds_due(s, after, REFUND_BATCH,
		    &items)) != PH_OK)
			return failed != PH_OK ? failed : rc;
		n = json_array_size(items);
		st->due += n;
		/*
		 * sweep_concurrency at once, each wave leased as it goes
		 * out: leases taken for the whole batch at its start ran
		 * out before its last waves went (256 refunds behind a slow
		 * provider), and another runner, or the operator's refunds
		 * settle, took a refund about to be sent.
		 */
		for (i = 0; i < n && failed != PH_E_NOMEM; i += wave) {
			rc = refund_wave(c, s, items, i, n - i < wave ?
			    n - i : wave, token, st);
			if (rc != PH_OK && (failed == PH_OK ||
			    rc == PH_E_NOMEM))
				failed = rc;
		}
		if (n > 0)
			after = (uint64_t)json_integer_value(json_object_get(
			    json_array_get(items, n - 1), "seq"));
		json_decref(items);
	} while (n == REFUND_BATCH && failed != PH_E_NOMEM);
	/* The database failed: the run did not do its work, whatever the
	 * providers answered. */
	return failed;
}
