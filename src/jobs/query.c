/*
 * Provider queries and closes: plugin builds, core sends, plugin reads,
 * ledger applies.  The answer of a query is a verified fact like a
 * notification; its payment event carries the same dedup key as the
 * payment's notification, so whichever arrives second changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "jobs/query.h"

static const char *const query_kind_names[PH_EV__MAX] = {
	"paid", "failed", "pending", "closed", "refunded", "refund_failed",
	"not_found", "ignored", "more",
};

static const char *const query_op_names[QUERY_OP__MAX] = {
	"query", "close", "refund",
};

const char *
query_kind_name(enum ph_event_kind k)
{
	return k < PH_EV__MAX ? query_kind_names[k] : "unknown";
}

/* The attempt data the merchant gave for this profile (the latest). */
static char *
query_attempt_text(const json_t *order, const char *profile)
{
	json_t *a, *data = NULL;
	size_t i;

	json_array_foreach(json_object_get(order, "attempts"), i, a) {
		const char *p = json_string_value(json_object_get(a,
		    "profile"));

		if (p != NULL && strcmp(p, profile) == 0 &&
		    json_is_object(json_object_get(a, "data")))
			data = json_object_get(a, "data");
	}
	return data != NULL ? json_dumps(data, JSON_COMPACT) : strdup("");
}

/* The profile names an order was offered on, its own first, then its
 * attempts' (NULL where one has none): at most QUERY_NAMES_MAX. */
static size_t
query_names(const json_t *order, const char *names[QUERY_NAMES_MAX])
{
	json_t *a;
	size_t i, n = 0;

	names[n++] = json_string_value(json_object_get(order, "profile"));
	json_array_foreach(json_object_get(order, "attempts"), i, a)
		if (n < QUERY_NAMES_MAX)
			names[n++] = json_string_value(json_object_get(a,
			    "profile"));
	return n;
}

/* The data of the newest attempt at profile pr (NULL: none gave any). */
static const json_t *
query_newest_data(const json_t *attempts, const struct conf_profile *pr)
{
	const json_t *a, *data;
	const char *p;
	size_t i;

	for (i = json_array_size(attempts); i-- > 0;) {
		a = json_array_get(attempts, i);
		data = json_object_get(a, "data");
		p = json_string_value(json_object_get(a, "profile"));
		if (json_is_object(data) && p != NULL &&
		    strcmp(p, pr->name) == 0)
			return data;
	}
	return NULL;
}

/* Is target (pr, data) in out[0..n) already? */
static int
query_target_known(const struct query_target *out, size_t n,
    const struct conf_profile *pr, const json_t *data)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (out[i].profile == pr && (out[i].data == data ||
		    (out[i].data != NULL && data != NULL &&
		    json_equal(out[i].data, data))))
			return 1;
	return 0;
}

size_t
query_targets(const struct conf *c, const json_t *order,
    struct query_target *out, size_t max)
{
	const json_t *attempts = json_object_get(order, "attempts"), *a, *data;
	const struct conf_profile *pr, *prs[QUERY_NAMES_MAX];
	const char *names[QUERY_NAMES_MAX], *name;
	size_t i, j, np = 0, n = 0, nn = query_names(order, names);

	/* Every profile first, with its newest attempt's data. */
	for (i = 0; i < nn; i++) {
		if (names[i] == NULL ||
		    (pr = conf_profile(c, names[i])) == NULL ||
		    !(pr->plugin->prov->caps & PH_CAP_QUERY))
			continue;
		for (j = 0; j < np && prs[j] != pr; j++)
			;
		if (j < np)
			continue;
		prs[np++] = pr;
		if (n < max) {
			out[n].profile = pr;
			out[n++].data = query_newest_data(attempts, pr);
		}
	}
	/* Then every other data an attempt gave there, newest first: a
	 * payment key (UnionPay's txnTime, an aggregator's charge) of its
	 * own, any of which the shopper may have paid.  Not where the
	 * provider knows the order by its id alone: the one call above
	 * answers for all of them. */
	for (i = json_array_size(attempts); i-- > 0 && n < max;) {
		a = json_array_get(attempts, i);
		data = json_object_get(a, "data");
		name = json_string_value(json_object_get(a, "profile"));
		if (!json_is_object(data) || name == NULL ||
		    (pr = conf_profile(c, name)) == NULL ||
		    !(pr->plugin->prov->caps & PH_CAP_QUERY) ||
		    (pr->plugin->prov->caps & PH_CAP_ORDER_KEYED) ||
		    query_target_known(out, n, pr, data))
			continue;
		out[n].profile = pr;
		out[n++].data = data;
	}
	return n;
}

size_t
query_unconfigured(const struct conf *c, const json_t *order,
    const char **out, size_t max)
{
	const char *names[QUERY_NAMES_MAX];
	size_t i, j, n = 0, nn = query_names(order, names);

	for (i = 0; i < nn && n < max; i++) {
		if (names[i] == NULL || conf_profile(c, names[i]) != NULL)
			continue;
		for (j = 0; j < n && strcmp(out[j], names[i]) != 0; j++)
			;
		if (j == n)
			out[n++] = names[i];
	}
	return n;
}

static const uint32_t query_op_caps[QUERY_OP__MAX] = {
	PH_CAP_QUERY, PH_CAP_CLOSE, PH_CAP_REFUND,
};

/* The checks every job starts with; 0 when it may go on. */
static int
query_job_start(struct query_job *job, enum query_op op,
    const struct conf_profile *pr)
{
	const struct ph_provider *prov = pr->plugin->prov;

	memset(job, 0, sizeof(*job));
	job->op = op;
	job->profile = pr;
	job->err = PH_E_UNSUPPORTED;
	if (!(prov->caps & query_op_caps[op])) {
		snprintf(job->message, sizeof(job->message), "provider %s "
		    "cannot %s", prov->name, query_op_names[op]);
		return -1;
	}
	if (pr->api_base == NULL) {
		job->err = PH_E_CONFIG;
		snprintf(job->message, sizeof(job->message), "profile %s has "
		    "no api_base", pr->name);
		return -1;
	}
	return 0;
}

/* The request buffer, once attempt data is known; 0 when allocated. */
static int
query_job_alloc(struct query_job *job)
{
	job->req = calloc(1, sizeof(*job->req));
	if (job->attempt == NULL || job->req == NULL) {
		job->err = PH_E_NOMEM;
		snprintf(job->message, sizeof(job->message), "out of memory");
		return -1;
	}
	return 0;
}

/* Time and fresh randomness for a request builder; 0 when available. */
static int
query_call_ctx(struct query_job *job, int64_t now, struct ph_call_ctx *cc)
{
	memset(cc, 0, sizeof(*cc));
	cc->now = now;
	if (getrandom(cc->random, sizeof(cc->random), 0) !=
	    (ssize_t)sizeof(cc->random)) {
		job->err = PH_E_INTERNAL;
		snprintf(job->message, sizeof(job->message), "no randomness");
		return -1;
	}
	return 0;
}

/* Records a request builder's refusal, or marks the job ready to send. */
static void
query_built(struct query_job *job, int rc, const struct ph_diag *diag)
{
	if (rc != PH_OK) {
		job->err = rc;
		snprintf(job->message, sizeof(job->message), "%s request not "
		    "built: %s", query_op_names[job->op], diag->msg[0] != '\0' ?
		    diag->msg : ph_strerror(rc));
		return;
	}
	job->call.profile = job->profile;
	job->call.req = job->req;
	job->prepared = 1;
	job->err = PH_OK;
}

/* Copies record o's string field key into dst; "" when it has none. */
static void
query_field(char *dst, size_t size, const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	ph_strlcpy(dst, v != NULL ? v : "", size);
}

void
query_prepare(struct query_job *job, enum query_op op,
    const struct query_target *t, const json_t *order, int64_t now)
{
	const struct conf_profile *pr = t->profile;
	const struct ph_provider *prov = pr->plugin->prov;
	struct ph_call_ctx cc;
	struct ph_diag diag;
	int started = query_job_start(job, op, pr);

	/* Its own reference to the data: a close is prepared from a query's
	 * target after the order it came from was read again. */
	job->target.profile = pr;
	job->target.data = t->data != NULL ? json_incref((json_t *)t->data) :
	    NULL;
	/* The order's id even for a job that cannot start: its log line. */
	query_field(job->order_id, sizeof(job->order_id), order, "order_id");
	if (started != 0)
		return;
	query_field(job->currency, sizeof(job->currency), order, "currency");
	query_field(job->txn_id, sizeof(job->txn_id), order,
	    "provider_txn_id");
	job->attempt = t->data != NULL ? json_dumps(t->data, JSON_COMPACT) :
	    strdup("");
	if (query_job_alloc(job) != 0 || query_call_ctx(job, now, &cc) != 0)
		return;
	job->ref.order_id = job->order_id;
	job->ref.amount = json_integer_value(json_object_get(order, "amount"));
	job->ref.currency = job->currency;
	job->ref.txn_id = job->txn_id;
	job->ref.created_at = json_integer_value(json_object_get(order,
	    "created_at"));
	job->ref.attempt = job->attempt;
	job->ref.cursor = job->cursor;
	memset(&diag, 0, sizeof(diag));
	query_built(job, loader_result(prov, op == QUERY_OP_QUERY ?
	    prov->query_request(pr->ctx, &job->ref, &cc, job->req, &diag) :
	    prov->close_request(pr->ctx, &job->ref, &cc, job->req, &diag),
	    &diag), &diag);
}

/*
 * The text the provider shows the payer: the merchant's own reason for a
 * refund it asked for, a plain sentence for the ones payhook queues.
 */
static const char *
query_refund_reason(const json_t *item)
{
	const char *why = json_string_value(json_object_get(item,
	    "merchant_reason"));
	const char *cat = json_string_value(json_object_get(item, "reason"));

	if (why != NULL && *why != '\0')
		return why;
	if (cat != NULL && strcmp(cat, "double_payment") == 0)
		return "Refund of a duplicate payment";
	/* After the close, or before it but not fitting the order (another
	 * amount or currency), which the close refunds too. */
	if (cat != NULL && strcmp(cat, "late_payment") == 0)
		return "Refund of a payment for an order closed unpaid";
	return "Refund";
}

void
query_prepare_refund(struct query_job *job, const struct conf_profile *pr,
    const json_t *item, const json_t *order, int64_t now)
{
	const struct ph_provider *prov = pr->plugin->prov;
	struct ph_call_ctx cc;
	struct ph_diag diag;
	const char *state;
	int can;

	can = query_job_start(job, QUERY_OP_REFUND, pr) == 0;
	/* Named even when it cannot be sent: the runner says which. */
	query_field(job->order_id, sizeof(job->order_id), item, "order_id");
	query_field(job->txn_id, sizeof(job->txn_id), item, "provider_txn_id");
	query_field(job->currency, sizeof(job->currency), item, "currency");
	query_field(job->refund_id, sizeof(job->refund_id), item, "refund_id");
	job->rref.amount = json_integer_value(json_object_get(item, "amount"));
	if (!can)
		return;
	ph_strlcpy(job->reason, query_refund_reason(item), sizeof(job->reason));
	job->attempt = order != NULL ? query_attempt_text(order, pr->name) :
	    strdup("");
	if (query_job_alloc(job) != 0 || query_call_ctx(job, now, &cc) != 0)
		return;
	job->rref.order_id = job->order_id;
	job->rref.txn_id = job->txn_id;
	job->rref.refund_id = job->refund_id;
	job->rref.payment_amount = json_integer_value(json_object_get(item,
	    "payment_amount"));
	job->rref.currency = job->currency;
	job->rref.reason = job->reason;
	job->rref.attempt = job->attempt;
	/* Accepted already, its result awaited: the plugin may ask for it
	 * (WeChat Pay's refund query) instead of sending it again. */
	state = json_string_value(json_object_get(item, "state"));
	job->rref.query = state != NULL &&
	    ledger_refund_state_parse(state) == LEDGER_REFUND_PROCESSING;
	memset(&diag, 0, sizeof(diag));
	query_built(job, loader_result(prov, prov->refund_request(pr->ctx,
	    &job->rref, &cc, job->req, &diag), &diag), &diag);
}

void
query_send(const struct conf *c, struct query_job *jobs, size_t n,
    size_t parallel)
{
	struct http_call *calls;
	size_t i, m = 0;

	if ((calls = calloc(n ? n : 1, sizeof(*calls))) == NULL) {
		for (i = 0; i < n; i++)
			if (jobs[i].prepared) {
				jobs[i].err = PH_E_NOMEM;
				jobs[i].prepared = 0;
			}
		return;
	}
	for (i = 0; i < n; i++) {
		jobs[i].conf = c;
		if (jobs[i].prepared)
			calls[m++] = jobs[i].call;
	}
	http_run(c, calls, m, parallel);
	for (i = 0, m = 0; i < n; i++)
		if (jobs[i].prepared)
			jobs[i].call = calls[m++];
	free(calls);
}

static void
query_count(const struct query_job *job, const char *result)
{
	char labels[160];

	snprintf(labels, sizeof(labels), "profile=%s&op=%s&result=%s",
	    job->profile->name, query_op_names[job->op], result);
	metrics_add("payhook_provider_calls_total", labels, 1);
}

/*
 * The next page of a list a query reads: the request built again with the
 * cursor the answer gave, sent alone.  0 when sent (the call holds its
 * answer); otherwise job->err says why.
 */
static int
query_next_page(struct query_job *job, int64_t now)
{
	const struct ph_provider *prov = job->profile->plugin->prov;
	struct ph_call_ctx cc;
	struct ph_diag diag;

	memcpy(job->cursor, job->ev.cursor, sizeof(job->cursor));
	job->cursor[sizeof(job->cursor) - 1] = '\0';
	http_call_free(&job->call);
	memset(&job->call, 0, sizeof(job->call));
	memset(job->req, 0, sizeof(*job->req));
	job->prepared = 0;
	if (query_call_ctx(job, now, &cc) != 0)
		return -1;
	memset(&diag, 0, sizeof(diag));
	query_built(job, loader_result(prov,
	    prov->query_request(job->profile->ctx, &job->ref, &cc, job->req,
	    &diag), &diag), &diag);
	if (!job->prepared)
		return -1;
	if (job->conf == NULL) {
		job->err = PH_E_INTERNAL;
		snprintf(job->message, sizeof(job->message), "a page asked "
		    "for outside query_send");
		return -1;
	}
	http_run(job->conf, &job->call, 1, 1);
	return 0;
}

/* What a job is about, for the log: "query O", "close O", or "refund R
 * of order O" (a refund's id, not its order's: an order may have many). */
static const char *
query_subject(const struct query_job *job, char *buf, size_t cap)
{
	if (job->op == QUERY_OP_REFUND)
		snprintf(buf, cap, "refund %s of order %s", job->refund_id,
		    job->order_id);
	else
		snprintf(buf, cap, "%s %s", query_op_names[job->op],
		    job->order_id);
	return buf;
}

/* query.h: why an answer is no refund's it settles. */
int
query_refund_same(const struct query_job *job, char *why, size_t cap)
{
	const struct ph_event *ev = &job->ev;

	if (ev->merchant_refund_id[0] != '\0' &&
	    strcmp(ev->merchant_refund_id, job->refund_id) != 0)
		snprintf(why, cap, "refund %s", ev->merchant_refund_id);
	else if (ev->order_id[0] != '\0' &&
	    strcmp(ev->order_id, job->order_id) != 0)
		snprintf(why, cap, "order %s", ev->order_id);
	else if (ev->txn_id[0] != '\0' && job->txn_id[0] != '\0' &&
	    strcmp(ev->txn_id, job->txn_id) != 0)
		snprintf(why, cap, "transaction %s", ev->txn_id);
	else if (ev->kind == PH_EV_REFUND_SUCCEEDED &&
	    strcmp(ev->currency, job->currency) != 0)
		snprintf(why, cap, "currency %s", ev->currency);
	else
		return 1;
	return 0;
}

void
query_finish(struct store *s, struct query_job *job, int64_t now)
{
	const struct ph_provider *prov;
	struct ph_http_response resp;
	struct ledger_fact fact;
	struct ph_diag diag;
	char subj[PH_ID_MAX * 2 + 32], other[PH_ID_MAX + 16];
	int rc, page = 1;

	if (!job->prepared) {
		/* Never sent (no api_base, a plugin's refusal): why, in
		 * the log; the refund runner says it for its own. */
		if (job->op != QUERY_OP_REFUND && job->message[0] != '\0')
			log_warn("%s at %s: not sent: %s",
			    query_subject(job, subj, sizeof(subj)),
			    job->profile->name, job->message);
		return;
	}
	prov = job->profile->plugin->prov;
again:
	if (job->call.err != PH_OK) {
		job->err = job->call.err;
		snprintf(job->message, sizeof(job->message), "provider not "
		    "reached: %s", job->call.errmsg);
		log_warn("%s at %s: %s", query_subject(job, subj,
		    sizeof(subj)), job->profile->name, job->message);
		query_count(job, "unreachable");
		return;
	}
	http_call_response(&job->call, now, &resp);
	memset(&diag, 0, sizeof(diag));
	memset(&job->ev, 0, sizeof(job->ev));
	if (job->op == QUERY_OP_QUERY)
		rc = prov->query_response(job->profile->ctx, &job->ref, &resp,
		    &job->ev, &diag);
	else if (job->op == QUERY_OP_CLOSE)
		rc = prov->close_response(job->profile->ctx, &job->ref, &resp,
		    &job->ev, &diag);
	else
		rc = prov->refund_response(job->profile->ctx, &job->rref,
		    &resp, &job->ev, &diag);
	rc = loader_result(prov, rc, &diag);
	if (rc == PH_OK && job->op == QUERY_OP_REFUND &&
	    job->ev.kind == PH_EV_REFUND_FAILED)
		/* Why the provider refused it, where the plugin said. */
		snprintf(job->message, sizeof(job->message), "%s", diag.msg);
	if (rc != PH_OK) {
		job->err = rc;
		snprintf(job->message, sizeof(job->message), "answer (HTTP "
		    "%d) not accepted: %s", job->call.status,
		    diag.msg[0] != '\0' ? diag.msg : ph_strerror(rc));
		log_warn("%s at %s: %s", query_subject(job, subj,
		    sizeof(subj)), job->profile->name, job->message);
		query_count(job, rc == PH_E_PROVIDER ? "provider_error" :
		    "bad_answer");
		return;
	}
	/* One page of a list: read the next, within the bound. */
	if (job->op == QUERY_OP_QUERY && job->ev.kind == PH_EV_QUERY_MORE &&
	    job->ev.cursor[0] != '\0' && memchr(job->ev.cursor, '\0',
	    sizeof(job->ev.cursor)) != NULL) {
		if (page >= PH_QUERY_PAGES_MAX) {
			job->err = PH_E_PROVIDER;
			snprintf(job->message, sizeof(job->message), "no answer "
			    "about the order in %d pages; asked again later",
			    page);
			log_warn("query %s at %s: %s", job->order_id,
			    job->profile->name, job->message);
			memset(&job->ev, 0, sizeof(job->ev));
			query_count(job, "provider_error");
			return;
		}
		query_count(job, "more");
		if (query_next_page(job, now) != 0) {
			log_warn("query %s at %s: %s", job->order_id,
			    job->profile->name, job->message);
			memset(&job->ev, 0, sizeof(job->ev));
			return;
		}
		page++;
		goto again;
	}
	/* A close answer of "already paid" is no fact: no transaction, no
	 * amount; the sweeper queries the order for them. */
	if (job->op == QUERY_OP_CLOSE &&
	    job->ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
	    job->ev.txn_id[0] == '\0') {
		query_count(job, query_kind_name(job->ev.kind));
		return;
	}
	if ((rc = ledger_event_check(&job->ev, &diag)) != PH_OK)
		snprintf(job->message, sizeof(job->message), "answer (HTTP "
		    "%d) read as an invalid event: %s", job->call.status,
		    diag.msg);
	else if (job->op == QUERY_OP_REFUND &&
	    !query_refund_same(job, other, sizeof(other))) {
		rc = PH_E_FIELD;
		snprintf(job->message, sizeof(job->message), "answer (HTTP "
		    "%d) is about %s, not this refund: nothing settled",
		    job->call.status, other);
	}
	if (rc != PH_OK) {
		/* The plugin's event breaks the contract: nothing of it is
		 * taken. */
		job->err = rc;
		log_err("%s at %s: plugin %s: %s", query_subject(job, subj,
		    sizeof(subj)), job->profile->name, prov->name,
		    job->message);
		memset(&job->ev, 0, sizeof(job->ev));
		query_count(job, "bad_answer");
		return;
	}
	log_info("%s at %s: %s", query_subject(job, subj, sizeof(subj)),
	    job->profile->name, query_kind_name(job->ev.kind));
	query_count(job, query_kind_name(job->ev.kind));
	/* Only a payment with its transaction is a fact to apply; a close
	 * answer of "already paid" carries none and asks for a query.  A
	 * refund answer goes to the refund runner. */
	if (job->op == QUERY_OP_REFUND ||
	    job->ev.kind != PH_EV_PAYMENT_SUCCEEDED ||
	    job->ev.txn_id[0] == '\0')
		return;
	if (strcmp(job->ev.order_id, job->order_id) != 0) {
		job->err = PH_E_FIELD;
		snprintf(job->message, sizeof(job->message), "provider "
		    "answered about order %s", job->ev.order_id);
		log_warn("%s at %s: %s", query_subject(job, subj,
		    sizeof(subj)), job->profile->name, job->message);
		return;
	}
	fact.profile = job->profile->name;
	fact.provider = prov->name;
	fact.source = "query";
	fact.ev = &job->ev;
	fact.now = now;
	memset(&diag, 0, sizeof(diag));
	if ((rc = ledger_apply(s, &fact, &job->applied, &diag)) != PH_OK) {
		job->err = rc;
		job->store_err = rc;
		snprintf(job->message, sizeof(job->message), "paid at the "
		    "provider but not recorded: %s", diag.msg);
		log_err("query %s at %s: %s", job->order_id,
		    job->profile->name, job->message);
	} else
		job->recorded = 1;
}

void
query_job_free(struct query_job *job)
{
	http_call_free(&job->call);
	free(job->attempt);
	free(job->req);
	json_decref((json_t *)job->target.data);
	job->attempt = NULL;
	job->req = NULL;
	job->target.data = NULL;
}
