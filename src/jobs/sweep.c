/*
 * The compensation sweeper.  Every order it touches is leased in LMDB
 * first, so two sweepers never ask about one order at the same moment; a
 * sweeper killed mid-pass leaves leases that simply run out.  Nothing here
 * changes an order except through the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "store/archive.h"
#include "ledger/ledger.h"
#include "ops/log.h"
#include "ledger/order.h"
#include "jobs/query.h"
#include "jobs/sweep.h"

#define SWEEP_BATCH 256
/* The longest wait before an order whose provider did not answer is
 * asked again: the wait doubles from its schedule's step up to this. */
#define SWEEP_RETRY_MAX_S 3600

struct sweep_order {
	json_t *order;			/* leased record, owned */
	char id[PH_ID_MAX + 1];
	size_t nattempts;		/* when it was leased and asked about */
	size_t first_job, njobs;
};

static int
sweep_is_pending(const json_t *order)
{
	const char *st = json_string_value(json_object_get(order, "state"));

	return st != NULL && strcmp(st, order_state_name(ORDER_PENDING)) == 0;
}

/* Re-reads the order after the queries were applied. */
static int
sweep_still_pending(struct store *s, const char *id, json_t **order)
{
	json_t *o;

	if (ledger_get_order(s, id, &o) != PH_OK)
		return 0;
	json_decref(*order);
	*order = o;
	return sweep_is_pending(o);
}

static int64_t
sweep_next(const struct conf *c, const json_t *order, int64_t now)
{
	const struct conf_profile *pr;
	json_t *exp = json_object_get(order, "expires_at");

	pr = conf_profile(c, json_string_value(json_object_get(order,
	    "profile")));
	if (pr == NULL)
		return 0;
	return order_next_query(now, (long)json_integer_value(
	    json_object_get(order, "query_count")) + 1,
	    json_is_integer(exp) ? json_integer_value(exp) : 0, pr->schedule,
	    pr->nschedule);
}

/*
 * When to ask again about an order one of whose calls was not answered
 * (the provider down, refusing for its rate limit, answering garbage; or
 * the answer not stored): an ask that was not answered does not use up the
 * order's schedule, or an outage longer than the schedule would leave a
 * paid order unasked for good.  The wait is the schedule's step, doubled
 * for each such pass in a row, up to SWEEP_RETRY_MAX_S (or the step, when
 * longer); and at the expiry, when the order is to be closed.
 */
static int64_t
sweep_retry(const struct conf *c, const json_t *order, int64_t now)
{
	const struct conf_profile *pr;
	json_t *exp = json_object_get(order, "expires_at");
	int64_t step, wait, cap;
	long done, fails;

	pr = conf_profile(c, json_string_value(json_object_get(order,
	    "profile")));
	if (pr == NULL || pr->nschedule == 0)
		return now + SWEEP_RETRY_MAX_S;
	done = (long)json_integer_value(json_object_get(order,
	    "query_count"));
	fails = ledger_query_failures(order);
	step = pr->schedule[(size_t)done < pr->nschedule ? (size_t)done :
	    pr->nschedule - 1];
	if (step < 1)
		step = 1;
	cap = step > SWEEP_RETRY_MAX_S ? step : SWEEP_RETRY_MAX_S;
	for (wait = step; fails > 0 && wait < cap; fails--)
		wait *= 2;
	if (wait > cap)
		wait = cap;
	if (json_is_integer(exp) && json_integer_value(exp) > now &&
	    now + wait > json_integer_value(exp))
		return json_integer_value(exp);
	return now + wait;
}

/* Was every one of so's calls answered and its answer stored?  One left
 * unanswered may be the one that was paid. */
static int
sweep_answered(const struct sweep_order *so, const struct query_job *jobs)
{
	size_t j;

	for (j = so->first_job; j < so->first_job + so->njobs; j++)
		if (jobs[j].err != PH_OK || jobs[j].store_err != PH_OK)
			return 0;
	return 1;
}

/*
 * A pending order offered on profiles (names, n of them) the configuration
 * no longer has: it cannot be asked there, so it is never closed and never
 * dropped, but asked again (at its other profiles too) within
 * SWEEP_UNCONFIGURED_S, with a warning each time, until the profile is
 * configured again.  Returns the next query time.
 */
#define SWEEP_UNCONFIGURED_S 600
static int64_t
sweep_unconfigured(const struct conf *c, const json_t *order, const char *id,
    const char **names, size_t n, int64_t now, struct sweep_stats *st)
{
	int64_t next = sweep_next(c, order, now);

	log_warn("sweep: order %s was offered on profile %s%s, which the "
	    "configuration no longer has: not asked there, not closed; "
	    "asked again in %ds", id, names[0], n > 1 ? " (and others)" : "",
	    SWEEP_UNCONFIGURED_S);
	st->failures++;
	st->config_failures++;
	if (next == 0 || next > now + SWEEP_UNCONFIGURED_S)
		next = now + SWEEP_UNCONFIGURED_S;
	return next;
}

/*
 * Holds the order's lease again before its closes go out: a wave's
 * closes are sent an order at a time, after all its queries, so the last
 * ones can come after the lease the wave took has run out and another
 * sweeper has taken the order.  0: that sweeper has it (or it is settled
 * now): it is left to it.
 */
static int
sweep_renew(const struct conf *c, struct store *s, const char *token,
    const char *id)
{
	json_t *order = NULL;
	int rc;

	rc = ledger_lease(s, id, (int64_t)time(NULL), (int64_t)c->lease_s,
	    token, &order);
	json_decref(order);
	return rc == PH_OK;
}

/*
 * An expired order every provider says is unpaid, or paid only by
 * payments that do not fit it: close it where the provider can close,
 * then here, where the payments that do not fit it are queued to go back
 * (ledger_close_order); asked again for ever, it would keep them.  Returns
 * 1 when closed here; *again when a provider says it is paid (the next
 * pass queries it), *unanswered when a close call got no answer (it is
 * tried again as an unanswered ask is, not after the schedule's next
 * step).
 */
static int
sweep_close(const struct conf *c, struct store *s, const char *token,
    struct sweep_order *so, struct query_job *qjobs, int64_t now,
    int *again, int *unanswered, struct sweep_stats *st)
{
	struct query_job *jobs;
	struct ledger_result res;
	struct ph_diag diag;
	size_t i, n = 0;
	int confirmed = 1, misfits = 0, rc;

	/* Unpaid everywhere (or by what does not fit), every query
	 * answered, before any close. */
	for (i = 0; i < so->njobs; i++) {
		const struct query_job *q = &qjobs[so->first_job + i];

		if (q->err == PH_OK && q->store_err == PH_OK &&
		    q->ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
		    ledger_order_misfit(so->order, q->ev.txn_id) != NULL) {
			misfits++;
			continue;
		}
		if (q->err != PH_OK || (q->ev.kind != PH_EV_PAYMENT_PENDING &&
		    q->ev.kind != PH_EV_PAYMENT_FAILED &&
		    q->ev.kind != PH_EV_NOT_FOUND &&
		    q->ev.kind != PH_EV_PAYMENT_CLOSED))
			return 0;
	}
	if ((jobs = calloc(so->njobs, sizeof(*jobs))) == NULL)
		return 0;
	for (i = 0; i < so->njobs; i++) {
		const struct query_job *q = &qjobs[so->first_job + i];

		if ((q->ev.kind == PH_EV_PAYMENT_PENDING ||
		    q->ev.kind == PH_EV_PAYMENT_FAILED) &&
		    (q->profile->plugin->prov->caps & PH_CAP_CLOSE))
			query_prepare(&jobs[n++], QUERY_OP_CLOSE, &q->target,
			    so->order, now);
	}
	if (n > 0 && !sweep_renew(c, s, token, so->id)) {
		for (i = 0; i < n; i++)
			query_job_free(&jobs[i]);
		free(jobs);
		return 0;
	}
	query_send(c, jobs, n, c->sweep_concurrency);
	for (i = 0; i < n; i++) {
		if (!jobs[i].prepared && jobs[i].err == PH_E_UNSUPPORTED) {
			/* This profile cannot close (e.g. an API version
			 * without it): the query's "unpaid" is all there is. */
			query_job_free(&jobs[i]);
			continue;
		}
		query_finish(s, &jobs[i], now);
		if (jobs[i].err != PH_OK) {
			confirmed = 0;
			*unanswered = 1;
			st->failures++;
		} else if (jobs[i].ev.kind != PH_EV_PAYMENT_CLOSED) {
			/* "Already paid": the next pass queries it. */
			confirmed = 0;
			*again = 1;
			log_warn("close %s at %s: the provider says it is paid; "
			    "querying it", so->id, jobs[i].profile->name);
		}
		query_job_free(&jobs[i]);
	}
	free(jobs);
	if (!confirmed)
		return 0;
	memset(&diag, 0, sizeof(diag));
	rc = ledger_close_order(s, so->id, now, misfits > 0 ? "expired, paid "
	    "at the provider only by payments that do not fit it (refunded)" :
	    "expired, unpaid at the provider", &res, &diag);
	if (rc != PH_OK) {
		log_warn("close %s: %s", so->id, diag.msg);
		return 0;
	}
	st->closed++;
	return 1;
}

/*
 * One wave of a batch: orders of ids from *at on, leased now, as many as
 * make at most sweep_concurrency provider calls (one order at least), so
 * that every call of the wave is in flight at once and the wave ends
 * within about one http_timeout_s, inside the leases (lease_s is above
 * it).  A batch sent whole would keep the last orders' leases running
 * while the first ones' calls were answered, and another sweeper could
 * take them and ask again.  An order whose calls would not fit is left,
 * leased, to the next wave, which leases it again.  *at moves past the
 * orders looked at; orders holds cap of them, jobs cap calls (cap is
 * sweep_concurrency and one order's every call more).
 */
static void
sweep_wave(const struct conf *c, struct store *s, const char *token,
    json_t *ids, size_t *at, int hinted, struct sweep_order *orders,
    size_t cap, struct query_job *jobs, struct sweep_stats *st)
{
	int64_t now = (int64_t)time(NULL);
	size_t i, j, n = 0, njobs = 0;

	for (; *at < json_array_size(ids); (*at)++) {
		const char *id = json_string_value(json_array_get(ids, *at));
		struct sweep_order *so = &orders[n];
		/* Borrowed from the leased record, which the re-read after
		 * the calls replaces: good for preparing the calls only
		 * (each call holds its own reference to its data). */
		struct query_target targets[QUERY_TARGETS_MAX];
		size_t ntargets;

		if (n == cap || njobs >= c->sweep_concurrency)
			break;
		if (ledger_lease(s, id, now, (int64_t)c->lease_s, token,
		    &so->order) != PH_OK) {
			json_decref(so->order);
			so->order = NULL;
			continue;
		}
		ntargets = query_targets(c, so->order, targets,
		    QUERY_TARGETS_MAX);
		if (njobs > 0 && njobs + ntargets > c->sweep_concurrency) {
			json_decref(so->order);
			so->order = NULL;
			break;
		}
		ph_strlcpy(so->id, id, sizeof(so->id));
		so->nattempts = json_array_size(json_object_get(so->order,
		    "attempts"));
		so->first_job = njobs;
		for (j = 0; j < ntargets; j++)
			query_prepare(&jobs[njobs++], QUERY_OP_QUERY,
			    &targets[j], so->order, now);
		so->njobs = njobs - so->first_job;
		n++;
	}
	st->leased += n;
	query_send(c, jobs, njobs, c->sweep_concurrency);
	for (i = 0; i < njobs; i++) {
		query_finish(s, &jobs[i], now);
		st->queries++;
		if (jobs[i].store_err != PH_OK)
			st->store_errors++;
		else if (jobs[i].err != PH_OK) {
			st->failures++;
			if (jobs[i].err == PH_E_CONFIG)
				st->config_failures++;
		} else if (jobs[i].applied.event == LEDGER_EV_ORDER_PAID)
			st->paid++;
	}
	for (i = 0; i < n; i++) {
		struct sweep_order *so = &orders[i];
		const char *gone[QUERY_TARGETS_MAX];
		size_t ngone;
		json_t *exp;
		int64_t next = 0;
		int again = 0, unanswered = 0, how = hinted ?
		    LEDGER_ASK_HINTED : LEDGER_ASK_ANSWERED;

		if (sweep_still_pending(s, so->id, &so->order)) {
			exp = json_object_get(so->order, "expires_at");
			ngone = query_unconfigured(c, so->order, gone,
			    QUERY_TARGETS_MAX);
			if (ngone > 0)
				next = sweep_unconfigured(c, so->order, so->id,
				    gone, ngone, now, st);
			else if (json_array_size(json_object_get(so->order,
			    "attempts")) != so->nattempts)
				/* An attempt opened while it was asked about:
				 * not asked there yet, so neither closed.  The
				 * next pass asks (a second after: never this
				 * pass again, which would spin on it). */
				next = now + 1;
			else if (so->njobs > 0 && !sweep_answered(so, jobs)) {
				next = sweep_retry(c, so->order, now);
				if (!hinted)
					how = LEDGER_ASK_UNANSWERED;
			} else if (!(json_is_integer(exp) &&
			    json_integer_value(exp) <= now &&
			    so->njobs > 0 &&
			    sweep_close(c, s, token, so, jobs, now, &again,
			    &unanswered, st)))
				next = again ? now + 1 : sweep_next(c,
				    so->order, now);
			if (unanswered && !again) {
				next = sweep_retry(c, so->order, now);
				if (!hinted)
					how = LEDGER_ASK_UNANSWERED;
			}
		}
		if (ledger_reschedule(s, so->id, token, next, now,
		    (enum ledger_ask)how) != PH_OK) {
			log_err("sweep: order %s could not be rescheduled; "
			    "its lease runs out in %lus", so->id, c->lease_s);
			st->store_errors++;
		}
		json_decref(so->order);
	}
	for (i = 0; i < njobs; i++)
		query_job_free(&jobs[i]);
}

static void
sweep_batch(const struct conf *c, struct store *s, const char *token,
    json_t *ids, int hinted, struct sweep_stats *st)
{
	struct sweep_order *orders;
	struct query_job *jobs;
	/* Room for the last order's every target past the planned calls. */
	size_t at = 0, wave = c->sweep_concurrency + QUERY_TARGETS_MAX;

	orders = calloc(wave, sizeof(*orders));
	jobs = calloc(wave, sizeof(*jobs));
	if (orders != NULL && jobs != NULL)
		while (at < json_array_size(ids))
			sweep_wave(c, s, token, ids, &at, hinted, orders,
			    wave, jobs, st);
	free(jobs);
	free(orders);
}

#define SWEEP_PRUNE_EVERY_S 3600
static int64_t sweep_pruned_at;	/* when this process last pruned keys */

int
sweep_pass(const struct conf *c, struct store *s, int64_t now,
    const char *token, struct sweep_stats *st)
{
	json_t *ids;
	int rc;

	memset(st, 0, sizeof(*st));
	/* Keys past their time, at most once an hour per sweeper: the scan
	 * reads every key. */
	if (now - sweep_pruned_at >= SWEEP_PRUNE_EVERY_S &&
	    ledger_prune_idem(s, now, &st->forgotten) == PH_OK)
		sweep_pruned_at = now;
	/* Orders refused notifications named: asked about first. */
	if (archive_hints_take(SWEEP_BATCH, &ids) == PH_OK) {
		st->due += json_array_size(ids);
		if (json_array_size(ids) > 0)
			sweep_batch(c, s, token, ids, 1, st);
		json_decref(ids);
	}
	/* Batches, so a backlog of many thousands stays in bounded memory;
	 * each order handled is rescheduled into the future or dropped from
	 * the due list, so the next batch is new work. */
	for (;;) {
		size_t got, before = st->leased;

		if ((rc = ledger_due(s, now, SWEEP_BATCH, &ids)) != PH_OK)
			return rc;
		got = json_array_size(ids);
		st->due += got;
		if (got > 0)
			sweep_batch(c, s, token, ids, 0, st);
		json_decref(ids);
		/* Done when the list is drained, or when all that is left
		 * is leased by another sweeper. */
		if (got < SWEEP_BATCH || st->leased == before)
			break;
	}
	return PH_OK;
}
