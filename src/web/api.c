/*
 * Merchant API handlers.  Input is validated field by field before the
 * ledger sees it; every refusal names the field.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "web/api.h"
#include "jobs/certs.h"
#include "ledger/ledger.h"
#include "ops/text.h"
#include "ops/metrics.h"
#include "ops/log.h"
#include "ledger/order.h"
#include "jobs/query.h"
#include "web/stuck.h"

#define API_EVENTS_DEFAULT 100
#define API_EVENTS_MAX 1000

/* The status a storage problem is answered with. */
static void
api_store_error(struct web_response *resp, int rc)
{
	if (rc == PH_E_STORE_FULL)
		web_error(resp, 503, "store_full", "the database is full; "
		    "the operator must " LEDGER_FULL_ADVICE);
	else
		web_error(resp, 503, "store_unavailable",
		    "the database is unavailable: %s", ph_strerror(rc));
}

/*
 * After reading the record a request names: 404 naming it when there is
 * none, the store's answer for any other failure.  Non-zero when resp is
 * answered and the handler is done.
 */
static int
api_read_failed(struct web_response *resp, int rc, const char *what,
    const char *id)
{
	if (rc == PH_E_NOTFOUND)
		web_error(resp, 404, "not_found", "no %s \"%s\"", what, id);
	else if (rc != PH_OK)
		api_store_error(resp, rc);
	return rc != PH_OK;
}

/* Writes view as an answer body kept for idempotent replay; releases it. */
static void
api_body(struct ph_buf *body, json_t *view)
{
	if (web_json_text(view, body) != 0)
		body->err = 1;
	json_decref(view);
}

/* Answers view and releases it. */
static void
api_send(struct web_response *resp, int status, json_t *view)
{
	web_json(resp, status, view);
	json_decref(view);
}

static const char *const api_order_fields[] = {
	"order_id", "amount", "currency", "profile", "expires_in", "attempt",
	"attempt_data", "provider_data", "data", NULL,
};

/*
 * Provider-specific attempt data (e.g. UnionPay's txnTime) may be given
 * under any of these names; at most one of them.
 */
static const char *const api_attempt_names[] = {
	"attempt", "attempt_data", "provider_data", "data", NULL,
};

/* The attempt data of a request body (borrowed), NULL when none; -1 when
 * given twice under different names. */
static int
api_attempt_data(const json_t *in, const json_t **out, struct web_response *resp)
{
	size_t i;

	*out = NULL;
	for (i = 0; api_attempt_names[i] != NULL; i++) {
		const json_t *v = json_object_get(in, api_attempt_names[i]);

		if (v == NULL)
			continue;
		if (*out != NULL) {
			web_error(resp, 400, "bad_request", "attempt data given "
			    "twice (\"%s\" and another name)",
			    api_attempt_names[i]);
			return -1;
		}
		*out = v;
	}
	return 0;
}

#define API_EXPIRES_MAX (90L * 86400)	/* an order may wait 90 days */
#define API_ATTEMPT_MAX 2048		/* bytes of provider attempt data */
#define API_ATTEMPT_DEPTH 8		/* its objects and arrays, nested */
#define API_GUARD_HOLD_S 60		/* seconds the guard holds an order,
					 * besides its calls' time */

/* Validates provider attempt data: a small JSON object, or absent. */
static int
api_attempt_valid(const json_t *v, struct web_response *resp,
    const char *field)
{
	char *text;
	size_t len;

	if (v == NULL)
		return 1;
	if (!json_is_object(v)) {
		web_error(resp, 400, "bad_request", "%s must be a JSON object "
		    "of provider-specific attempt data", field);
		return 0;
	}
	text = json_dumps(v, JSON_COMPACT);
	len = text != NULL ? strlen(text) : API_ATTEMPT_MAX + 1;
	free(text);
	if (len > API_ATTEMPT_MAX) {
		web_error(resp, 400, "bad_request", "%s is larger than %d "
		    "bytes", field, API_ATTEMPT_MAX);
		return 0;
	}
	/* what a record can hold (src/ledger/ledger_cbor.c) and more than
	 * any provider's attempt data needs */
	if (!ph_json_depth_within(v, API_ATTEMPT_DEPTH)) {
		web_error(resp, 400, "bad_request", "%s nests objects and "
		    "arrays more than %d deep", field, API_ATTEMPT_DEPTH);
		return 0;
	}
	return 1;
}

/* When the sweeper first asks about a new attempt on profile pr. */
static int64_t
api_first_query(const struct conf_profile *pr, int64_t now,
    int64_t expires_at)
{
	return order_next_query(now, 0, expires_at, pr->schedule,
	    pr->nschedule);
}

/* Answers a merchant call from what the ledger did. */
static void
api_reply(struct web_response *resp, ledger_answer_fn fn, int rc,
    int created, enum ledger_refusal why, const char *message,
    const json_t *rec)
{
	struct ledger_reply r;

	r.rc = rc;
	r.created = created;
	r.why = why;
	r.message = message;
	r.rec = rec;
	web_reply(resp, fn, NULL, &r);
	resp->passes = rc != PH_OK && ledger_refusal_passes(why);
}

/* Appends {"error": code, "message": text, key: view} (view taken). */
static int
api_refusal(struct ph_buf *body, int status, const char *code,
    const char *message, const char *key, json_t *view)
{
	char msg[512];
	json_t *j;

	web_utf8_copy(msg, sizeof(msg), message);
	j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	if (j != NULL && key != NULL && view != NULL)
		json_object_set_new(j, key, view);
	else
		json_decref(view);
	api_body(body, j);
	return status;
}

/*
 * The request's body as a JSON object (caller frees), or NULL with resp
 * the 400 saying why: where the JSON breaks, or that it is not an object
 * like example.
 */
static json_t *
api_body_object(const struct web_request *req, struct web_response *resp,
    const char *example)
{
	json_error_t jerr;
	json_t *in;

	in = json_loadb((const char *)req->body, req->body_len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (in == NULL) {
		web_error(resp, 400, "bad_request", "body is not valid JSON: "
		    "%s (line %d, column %d)", jerr.text, jerr.line,
		    jerr.column);
		return NULL;
	}
	if (!json_is_object(in)) {
		web_error(resp, 400, "bad_request", "body must be a JSON object "
		    "like %s", example);
		json_decref(in);
		return NULL;
	}
	return in;
}

/* The answer to POST /orders. */
static int
api_order_answer(void *arg, const struct ledger_reply *r,
    struct ph_buf *body)
{
	json_t *view = order_to_api(r->rec);
	int status = r->created ? 201 : 200;

	if (r->rc == PH_E_CONFLICT)
		return api_refusal(body, 409, "conflict", "an order with this id "
		    "exists with other content", "order", view);
	api_body(body, view);
	return status;
}

void
api_create_order(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp)
{
	const char *key, *order_id, *currency, *profile;
	const struct conf_profile *pr;
	const json_t *attempt;
	struct ledger_new_order n;
	json_int_t expires_in = 0;
	struct ph_diag diag;
	json_t *in, *v, *order = NULL;
	json_int_t amount;
	int created, rc;
	size_t i;

	if ((in = api_body_object(req, resp, "{\"order_id\": \"A-1\", "
	    "\"amount\": 100, ...}")) == NULL)
		return;
	json_object_foreach(in, key, v) {
		for (i = 0; api_order_fields[i] != NULL; i++)
			if (strcmp(key, api_order_fields[i]) == 0)
				break;
		if (api_order_fields[i] == NULL) {
			web_error(resp, 400, "bad_request",
			    "unknown field \"%s\"", key);
			goto done;
		}
	}
	v = json_object_get(in, "order_id");
	order_id = json_string_value(v);
	if (order_id == NULL ||
	    !order_id_valid(order_id, json_string_length(v))) {
		web_error(resp, 400, "bad_request", "order_id must be a string "
		    "of 1-64 characters from [A-Za-z0-9_-|*.:]");
		goto done;
	}
	v = json_object_get(in, "amount");
	if (!json_is_integer(v) || (amount = json_integer_value(v)) <= 0 ||
	    amount > PH_AMOUNT_MAX) {
		web_error(resp, 400, "bad_request", "amount must be a positive "
		    "integer in minor units (fen), at most %lld",
		    (long long)PH_AMOUNT_MAX);
		goto done;
	}
	currency = json_string_value(json_object_get(in, "currency"));
	if (currency == NULL || !ph_currency_valid(currency)) {
		web_error(resp, 400, "bad_request", "currency must be an ISO "
		    "4217 code of three uppercase letters, e.g. \"CNY\"");
		goto done;
	}
	profile = json_string_value(json_object_get(in, "profile"));
	if (profile == NULL) {
		web_error(resp, 400, "bad_request", "profile must name a "
		    "configured profile");
		goto done;
	}
	if ((pr = conf_profile(ctx->conf, profile)) == NULL) {
		web_error(resp, 400, "bad_request", "profile \"%s\" is not "
		    "configured", profile);
		goto done;
	}
	web_note_set(resp->note.profile, pr->name);
	v = json_object_get(in, "expires_in");
	if (v != NULL && (!json_is_integer(v) ||
	    (expires_in = json_integer_value(v)) < 1 ||
	    expires_in > API_EXPIRES_MAX)) {
		web_error(resp, 400, "bad_request", "expires_in must be a whole "
		    "number of seconds from 1 to %ld", API_EXPIRES_MAX);
		goto done;
	}
	if (api_attempt_data(in, &attempt, resp) == -1 ||
	    !api_attempt_valid(attempt, resp, "attempt"))
		goto done;

	web_note_set(resp->note.order_id, order_id);
	memset(&n, 0, sizeof(n));
	n.order_id = order_id;
	n.profile = profile;
	n.amount = amount;
	n.currency = currency;
	n.expires_at = expires_in > 0 ? req->now + expires_in : 0;
	n.attempt = attempt;
	n.first_query_at = api_first_query(pr, req->now, n.expires_at);
	memset(&diag, 0, sizeof(diag));
	if (req->idem != NULL)
		req->idem->answer = api_order_answer;
	rc = ledger_create_order(ctx->store, &n, req->now, req->idem, &order,
	    &created, &diag);
	if (rc != PH_OK && rc != PH_E_CONFLICT) {
		log_err("create order %s: %s", order_id, diag.msg);
		api_store_error(resp, rc);
		goto done;
	}
	if (created)
		log_info("order %s created: %lld %s via profile %s", order_id,
		    (long long)amount, currency, profile);
	api_reply(resp, api_order_answer, rc, created,
	    rc == PH_OK ? LEDGER_REFUSAL_NONE : LEDGER_REFUSAL_ORDER_CONFLICT,
	    diag.msg, order);
done:
	json_decref(order);
	json_decref(in);
}

void
api_get_order(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp)
{
	struct ph_buf *body;
	int rc;

	if (!order_id_valid(order_id, strlen(order_id))) {
		web_error(resp, 404, "not_found", "no such order");
		return;
	}
	body = web_json_body(resp, 200);
	rc = ledger_order_api(ctx->store, order_id, body);
	if (rc == PH_OK && ph_buf_puts(body, "\n") != PH_OK)
		rc = PH_E_NOMEM;
	api_read_failed(resp, rc, "order", order_id);
}

/*
 * Asks every queryable profile of order now and applies what they say.
 * Returns a JSON array describing each call (caller owns); *unreached is
 * set when a provider could not be asked or gave no usable answer, *paid
 * (may be NULL) when one said paid.
 */
static json_t *
api_ask(struct web_ctx *ctx, const json_t *order, int64_t now, int *unreached,
    int *paid)
{
	struct query_target ts[QUERY_TARGETS_MAX];
	struct query_job *jobs;
	const char *gone[QUERY_TARGETS_MAX];
	json_t *out = json_array(), *r;
	size_t i, n;

	*unreached = 0;
	if (paid != NULL)
		*paid = 0;
	if ((jobs = calloc(QUERY_TARGETS_MAX, sizeof(*jobs))) == NULL) {
		*unreached = 1;
		return out;
	}
	/* A profile taken out of the configuration cannot be asked: the
	 * order stays as stored, and the answer says so. */
	n = query_unconfigured(ctx->conf, order, gone, QUERY_TARGETS_MAX);
	for (i = 0; i < n; i++) {
		*unreached = 1;
		json_array_append_new(out, json_pack("{s:s, s:b, s:s++}",
		    "profile", gone[i], "asked", 0, "error", "profile ",
		    gone[i], " is not configured"));
	}
	n = query_targets(ctx->conf, order, ts, QUERY_TARGETS_MAX);
	for (i = 0; i < n; i++)
		query_prepare(&jobs[i], QUERY_OP_QUERY, &ts[i], order, now);
	query_send(ctx->conf, jobs, n, n);
	for (i = 0; i < n; i++) {
		query_finish(ctx->store, &jobs[i], now);
		if (jobs[i].err == PH_OK) {
			r = json_pack("{s:s, s:b, s:s}", "profile",
			    ts[i].profile->name, "asked", 1, "result",
			    query_kind_name(jobs[i].ev.kind));
			/* "paid", but not necessarily of this order's
			 * amount: what payhook made of it. */
			if (r != NULL && jobs[i].recorded)
				json_object_set_new(r, "outcome", json_string(
				    ledger_result_label(&jobs[i].applied)));
			if (paid != NULL && jobs[i].ev.kind ==
			    PH_EV_PAYMENT_SUCCEEDED)
				*paid = 1;
		} else {
			*unreached = 1;
			r = json_pack("{s:s, s:b, s:s}", "profile",
			    ts[i].profile->name, "asked", 0, "error",
			    jobs[i].message);
		}
		json_array_append_new(out, r);
		query_job_free(&jobs[i]);
	}
	free(jobs);
	return out;
}

/* A call that takes no body: none, or {}; else 400, and 0. */
static int
api_no_body(const struct web_request *req, struct web_response *resp,
    const char *what)
{
	if (req->body_len == 0 || (req->body_len == 2 &&
	    memcmp(req->body, "{}", 2) == 0))
		return 1;
	web_error(resp, 400, "bad_request", "%s takes no body (or {})", what);
	return 0;
}

void
api_query_order(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp)
{
	json_t *order, *asked, *view;
	int rc, unreached = 0;

	if (!api_no_body(req, resp, "a query"))
		return;
	rc = order_id_valid(order_id, strlen(order_id)) ?
	    ledger_get_order(ctx->store, order_id, &order) : PH_E_NOTFOUND;
	if (api_read_failed(resp, rc, "order", order_id))
		return;
	if (strcmp(json_string_value(json_object_get(order, "state")),
	    order_state_name(ORDER_PENDING)) != 0)
		asked = json_array();	/* settled: nothing to ask */
	else {
		asked = api_ask(ctx, order, req->now, &unreached, NULL);
		json_decref(order);
		if ((rc = ledger_get_order(ctx->store, order_id, &order)) !=
		    PH_OK) {
			json_decref(asked);
			api_store_error(resp, rc);
			return;
		}
	}
	view = order_to_api(order);
	json_object_set_new(view, "query", json_pack("{s:b, s:o}",
	    "provider_unavailable", unreached, "calls", asked));
	api_send(resp, 200, view);
	json_decref(order);
}

/* The answer to POST /orders/<id>/attempts. */
static int
api_attempt_answer(void *arg, const struct ledger_reply *r,
    struct ph_buf *body)
{
	const char *st = json_string_value(json_object_get(r->rec, "state"));
	const char *code = "already_paid";
	json_t *view = order_to_api(r->rec);

	if (r->rc == PH_OK) {
		api_body(body, view);
		return 201;
	}
	if (r->why == LEDGER_REFUSAL_ATTEMPTS_MAX)
		code = "too_many_attempts";
	else if (r->why == LEDGER_REFUSAL_MISMATCH)
		code = "payment_mismatch";
	else if (r->why == LEDGER_REFUSAL_EXPIRED)
		code = "order_expired";
	else if (r->why == LEDGER_REFUSAL_HELD || st == NULL ||
	    strcmp(st, "PENDING") == 0)
		code = "attempt_in_progress";
	else if (strcmp(st, "CLOSED") == 0)
		code = "order_closed";
	return api_refusal(body, 409, code, r->message, "order", view);
}

/*
 * An attempt refused because the order expired: no new attempt, but one
 * opened before may have been paid without a word yet, and "open a new
 * order" would have the shopper pay twice.  Its providers are asked, as
 * for any attempt; one that says paid makes the answer already_paid, with
 * the order as it now is (*order replaced).
 */
static void
api_attempt_expired(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, json_t **order, enum ledger_refusal *why,
    struct ph_diag *diag)
{
	json_t *asked, *now = NULL;
	const char *st;
	int unreached, paid;

	asked = api_ask(ctx, *order, req->now, &unreached, &paid);
	json_decref(asked);
	if (!paid || ledger_get_order(ctx->store, order_id, &now) != PH_OK)
		return;
	st = json_string_value(json_object_get(now, "state"));
	if (st != NULL && strcmp(st, "PENDING") != 0) {
		*why = LEDGER_REFUSAL_ATTEMPT;
		ph_fail(diag, PH_E_CONFLICT, "order %s is %s", order_id, st);
	}
	json_decref(*order);
	*order = now;
}

void
api_attempt(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp)
{
	const struct conf_profile *pr;
	char token[33];
	unsigned char rnd[16];
	struct ph_diag diag;
	json_t *in, *order = NULL, *asked = NULL, *view, *v;
	const char *key, *profile;
	const json_t *data;
	enum ledger_refusal why = LEDGER_REFUSAL_ATTEMPT;
	int64_t expires_at, end;
	int rc, unreached = 0, paid = 0;

	if ((in = api_body_object(req, resp,
	    "{\"profile\": \"wxshop\"}")) == NULL)
		return;
	json_object_foreach(in, key, v) {
		size_t i;

		for (i = 0; api_attempt_names[i] != NULL; i++)
			if (strcmp(key, api_attempt_names[i]) == 0)
				break;
		if (strcmp(key, "profile") != 0 &&
		    api_attempt_names[i] == NULL) {
			web_error(resp, 400, "bad_request",
			    "unknown field \"%s\"", key);
			goto done;
		}
	}
	profile = json_string_value(json_object_get(in, "profile"));
	if (profile == NULL || (pr = conf_profile(ctx->conf, profile)) ==
	    NULL) {
		web_error(resp, 400, "bad_request", "profile must name a "
		    "configured profile");
		goto done;
	}
	web_note_set(resp->note.profile, pr->name);
	if (api_attempt_data(in, &data, resp) == -1 ||
	    !api_attempt_valid(data, resp, "data"))
		goto done;
	if (!order_id_valid(order_id, strlen(order_id))) {
		web_error(resp, 404, "not_found", "no order \"%s\"", order_id);
		goto done;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		web_error(resp, 500, "internal", "no randomness available");
		goto done;
	}
	ph_hex_lower(rnd, sizeof(rnd), token);
	memset(&diag, 0, sizeof(diag));
	/* Held past the slowest call (its queries of earlier attempts):
	 * a call whose hold ran out is refused at its end anyway. */
	rc = ledger_guard_begin(ctx->store, order_id, req->now,
	    API_GUARD_HOLD_S + 2 * (int64_t)ctx->conf->http_timeout_s, token,
	    &order, &why, &diag);
	if (rc == PH_E_CONFLICT && why == LEDGER_REFUSAL_EXPIRED)
		api_attempt_expired(ctx, req, order_id, &order, &why, &diag);
	if (rc == PH_E_CONFLICT)
		goto refused;
	if (api_read_failed(resp, rc, "order", order_id))
		goto done;
	/* Earlier attempts may have been paid without a word yet.  One
	 * found paid settles it whatever the others said: the order is paid
	 * (already_paid), or holds a payment that does not fit it
	 * (payment_mismatch). */
	asked = api_ask(ctx, order, req->now, &unreached, &paid);
	if (unreached && !paid) {
		if (ledger_guard_release(ctx->store, order_id, token) != PH_OK)
			web_stuck_add(WEB_STUCK_GUARD, order_id, token);
		view = json_pack("{s:s, s:s, s:O}", "error",
		    "provider_unavailable", "message", "an earlier payment "
		    "attempt could not be checked at the provider; not opening "
		    "another one (try again)", "query", asked);
		api_send(resp, 503, view);
		goto done;
	}
	expires_at = json_integer_value(json_object_get(order, "expires_at"));
	json_decref(order);
	order = NULL;
	memset(&diag, 0, sizeof(diag));
	if (req->idem != NULL)
		req->idem->answer = api_attempt_answer;
	/* Recorded when it ends: the checks above take time. */
	end = (int64_t)time(NULL);
	if (end < req->now)
		end = req->now;
	rc = ledger_guard_end(ctx->store, order_id, token, profile,
	    data, end, (int64_t)ctx->conf->attempt_hold_s,
	    api_first_query(pr, end, expires_at), req->idem, &order,
	    &why, &diag);
	if (rc == PH_E_TOOBIG) {
		api_reply(resp, api_attempt_answer, PH_E_CONFLICT, 0,
		    LEDGER_REFUSAL_ATTEMPTS_MAX, diag.msg, order);
		goto done;
	}
	if (rc != PH_OK && rc != PH_E_CONFLICT) {
		log_err("attempt on order %s: %s", order_id, diag.msg);
		/* The guard is still ours: let go once the store is back. */
		web_stuck_add(WEB_STUCK_GUARD, order_id, token);
		api_store_error(resp, rc);
		goto done;
	}
	if (rc == PH_OK)
		log_info("order %s: payment attempt opened on profile %s",
		    order_id, profile);
refused:
	api_reply(resp, api_attempt_answer, rc, rc == PH_OK,
	    rc == PH_OK ? LEDGER_REFUSAL_NONE : why, diag.msg, order);
done:
	json_decref(asked);
	json_decref(order);
	json_decref(in);
}

/* A refund as the API shows it (caller frees): merchant_reason on every
 * one, null for those payhook queues itself (none was given). */
static json_t *
api_refund_view(const json_t *item)
{
	return order_refund_to_api_new(json_deep_copy(item));
}

/* The answer to a refund call: POST /orders/<id>/refunds (201 new, 200
 * the same again) or POST /refunds/<id>/cancel (200). */
static int
api_refund_answer(void *arg, const struct ledger_reply *r,
    struct ph_buf *body)
{
	json_t *view;

	if (r->rc == PH_E_NOTFOUND)
		return api_refusal(body, 404, "not_found", r->message[0] !=
		    '\0' ? r->message : "no such order or refund", NULL,
		    NULL);
	if (r->rc == PH_E_CONFLICT) {
		switch (r->why) {
		case LEDGER_REFUSAL_REFUND_ID:
			return api_refusal(body, 409, "refund_id_conflict",
			    r->message, "refund", api_refund_view(r->rec));
		case LEDGER_REFUSAL_IN_FLIGHT:
			return api_refusal(body, 409, "refund_in_flight",
			    r->message, "refund", api_refund_view(r->rec));
		case LEDGER_REFUSAL_SETTLED:
			return api_refusal(body, 409, "refund_settled",
			    r->message, "refund", api_refund_view(r->rec));
		case LEDGER_REFUSAL_REFUNDS_MAX:
			return api_refusal(body, 409, "too_many_refunds",
			    r->message, NULL, NULL);
		default:
			return api_refusal(body, 409, "conflict", r->message,
			    NULL, NULL);
		}
	}
	view = api_refund_view(r->rec);
	api_body(body, view);
	return r->created ? 201 : 200;
}

/*
 * Whether pr's plugin can send a refund under rq's refund_id of order,
 * paid through pr: a request built now, as the refund run would build it,
 * of the least amount (what is left to refund is the ledger's to judge),
 * and no call goes out.  A refund_id the plugin refuses would be accepted
 * here and fail at the first run; when it does, resp is the 400 and 0.  A
 * request it cannot build for any other reason (no api_base, a key) is
 * the run's to report.
 */
static int
api_refund_sendable(const struct conf_profile *pr, const json_t *order,
    const struct ledger_refund_req *rq, int64_t now,
    struct web_response *resp)
{
	struct query_job job;
	json_t *item;
	int ok = 1;

	item = json_pack("{s:s, s:O, s:O, s:s, s:I, s:O, s:s}",
	    "order_id", rq->order_id,
	    "provider_txn_id", json_object_get(order, "provider_txn_id"),
	    "currency", json_object_get(order, "currency"),
	    "refund_id", rq->refund_id,
	    "amount", (json_int_t)1,
	    "payment_amount", json_object_get(order, "amount"),
	    "reason", "merchant");
	if (item == NULL)
		return 1;
	memset(&job, 0, sizeof(job));
	query_prepare_refund(&job, pr, item, order, now);
	if (!job.prepared && job.err == PH_E_FIELD) {
		web_error(resp, 400, "bad_request", "profile %s (%s) cannot "
		    "make this refund: %s", pr->name, pr->plugin->prov->name,
		    job.message);
		ok = 0;
	}
	query_job_free(&job);
	json_decref(item);
	return ok;
}

/* Is rq's refund_id one a refund has already (asked before: the ledger
 * answers for it as it is, whatever the plugin would say now)? */
static int
api_refund_known(struct web_ctx *ctx, const struct ledger_refund_req *rq)
{
	json_t *item = NULL;
	int known;

	known = ledger_get_refund(ctx->store, rq->refund_id, &item) == PH_OK;
	json_decref(item);
	return known;
}

/*
 * Whether the provider an order was paid through makes refunds through
 * payhook (PH_CAP_REFUND); when it does not, resp is the 409 and 0.  A
 * refund it cannot send would wait for ever.  An order not there or not
 * paid is for ledger_request_refund to answer.  When it does, but its
 * plugin cannot take a new refund_id the merchant chose
 * (api_refund_sendable; payhook's own ids fit every plugin), resp is the
 * 400 and 0.
 */
static int
api_refundable(struct web_ctx *ctx, const struct ledger_refund_req *rq,
    int64_t now, struct web_response *resp)
{
	const char *order_id = rq->order_id;
	const struct conf_profile *pr = NULL;
	const char *profile;
	json_t *order = NULL;
	int ok = 1, st;

	if (ledger_get_order(ctx->store, order_id, &order) != PH_OK)
		return 1;
	st = order_state_parse(json_string_value(json_object_get(order,
	    "state")));
	if (st == ORDER_PENDING || st == ORDER_CLOSED) {
		json_decref(order);
		return 1;
	}
	profile = json_string_value(json_object_get(order, "paid_through"));
	if (profile == NULL)
		profile = json_string_value(json_object_get(order, "profile"));
	if (profile != NULL && (pr = conf_profile(ctx->conf, profile)) !=
	    NULL && !(pr->plugin->prov->caps & PH_CAP_REFUND)) {
		web_error(resp, 409, "refund_unsupported", "order \"%s\" was "
		    "paid through profile %s, whose provider (%s) makes no "
		    "refunds through payhook: refund it at the provider",
		    order_id, profile, pr->plugin->prov->name);
		ok = 0;
	} else if (pr != NULL && rq->refund_id != NULL &&
	    json_is_string(json_object_get(order, "provider_txn_id")) &&
	    !api_refund_known(ctx, rq))
		ok = api_refund_sendable(pr, order, rq, now, resp);
	json_decref(order);
	return ok;
}

void
api_refund(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp)
{
	struct ledger_refund_req rq;
	enum ledger_refusal why;
	json_t *in, *v, *item = NULL;
	struct ph_diag diag;
	const char *key;
	int rc, created;

	if ((in = api_body_object(req, resp,
	    "{\"amount\": 100, \"reason\": \"...\"}")) == NULL)
		return;
	memset(&rq, 0, sizeof(rq));
	rq.order_id = order_id;
	rq.reason = "";
	json_object_foreach(in, key, v)
		if (strcmp(key, "amount") != 0 && strcmp(key, "reason") != 0 &&
		    strcmp(key, "refund_id") != 0) {
			web_error(resp, 400, "bad_request",
			    "unknown field \"%s\"", key);
			goto done;
		}
	v = json_object_get(in, "amount");
	if (!json_is_integer(v) || (rq.amount = json_integer_value(v)) <= 0 ||
	    rq.amount > PH_AMOUNT_MAX) {
		web_error(resp, 400, "bad_request", "amount must be a positive "
		    "integer in minor units");
		goto done;
	}
	v = json_object_get(in, "reason");
	if (v != NULL && (!json_is_string(v) ||
	    json_string_length(v) > 80)) {
		web_error(resp, 400, "bad_request", "reason must be a string of "
		    "at most 80 bytes");
		goto done;
	}
	if (v != NULL)
		rq.reason = json_string_value(v);
	v = json_object_get(in, "refund_id");
	if (v != NULL && (!json_is_string(v) ||
	    !ledger_refund_id_valid(json_string_value(v),
	    json_string_length(v)))) {
		web_error(resp, 400, "bad_request", "refund_id must be a string "
		    "of 1-%d characters from [A-Za-z0-9_-|*@.]",
		    LEDGER_REFUND_ID_MAX);
		goto done;
	}
	if (v != NULL)
		rq.refund_id = json_string_value(v);
	if (!order_id_valid(order_id, strlen(order_id))) {
		web_error(resp, 404, "not_found", "no order \"%s\"", order_id);
		goto done;
	}
	if (!api_refundable(ctx, &rq, req->now, resp))
		goto done;
	memset(&diag, 0, sizeof(diag));
	if (req->idem != NULL)
		req->idem->answer = api_refund_answer;
	rc = ledger_request_refund(ctx->store, &rq, req->now, req->idem, &item,
	    &created, &why, &diag);
	if (rc == PH_E_NOTFOUND)
		ph_fail(&diag, rc, "no order \"%s\"", order_id);
	else if (rc != PH_OK && rc != PH_E_CONFLICT) {
		api_store_error(resp, rc);
		goto done;
	}
	api_reply(resp, api_refund_answer, rc, created, why, diag.msg, item);
done:
	json_decref(item);
	json_decref(in);
}

void
api_cancel_refund(struct web_ctx *ctx, const struct web_request *req,
    const char *refund_id, struct web_response *resp)
{
	enum ledger_refusal why;
	struct ph_diag diag;
	json_t *item = NULL;
	int rc;

	if (!api_no_body(req, resp, "a cancel"))
		return;
	memset(&diag, 0, sizeof(diag));
	if (req->idem != NULL)
		req->idem->answer = api_refund_answer;
	rc = ledger_cancel_refund(ctx->store, refund_id, req->now, req->idem,
	    &item, &why, &diag);
	if (rc == PH_E_NOTFOUND) {
		/* As GET /refunds/<id> says it: the id as sent (ph_fail's
		 * text is ASCII, for logs). */
		char text[sizeof(diag.msg)];

		snprintf(text, sizeof(text), "no refund \"%s\"", refund_id);
		web_utf8_copy(diag.msg, sizeof(diag.msg), text);
	} else if (rc != PH_OK && rc != PH_E_CONFLICT) {
		api_store_error(resp, rc);
		return;
	}
	api_reply(resp, api_refund_answer, rc, 0, why, diag.msg, item);
	json_decref(item);
}

void
api_get_refund(struct web_ctx *ctx, const struct web_request *req,
    const char *refund_id, struct web_response *resp)
{
	json_t *item;
	int rc;

	rc = ledger_get_refund(ctx->store, refund_id, &item);
	if (api_read_failed(resp, rc, "refund", refund_id))
		return;
	api_send(resp, 200, api_refund_view(item));
	json_decref(item);
}

void
api_order_refunds(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp)
{
	json_t *items, *out, *e;
	size_t i;
	int rc;

	rc = order_id_valid(order_id, strlen(order_id)) ?
	    ledger_order_refunds(ctx->store, order_id, &items) : PH_E_NOTFOUND;
	if (api_read_failed(resp, rc, "order", order_id))
		return;
	out = json_pack("{s:[]}", "refunds");
	json_array_foreach(items, i, e)
		json_array_append_new(json_object_get(out, "refunds"),
		    api_refund_view(e));
	api_send(resp, 200, out);
	json_decref(items);
}

/* Parses a decimal query parameter; -1 when present but invalid. */
static int
api_uint_param(const char *uri, const char *name, unsigned long long max,
    unsigned long long *out)
{
	char buf[32], *p;
	unsigned long long v = 0;
	int rc;

	if ((rc = web_query_param(uri, name, buf, sizeof(buf))) <= 0)
		return rc;
	if (buf[0] == '\0')
		return -1;
	for (p = buf; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > (max - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	*out = v;
	return 1;
}

void
api_events(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp)
{
	static const char *const api_events_params[] = { "after", "limit",
	    "epoch", NULL };
	unsigned long long after = 0, limit = API_EVENTS_DEFAULT;
	const char *epoch = store_epoch(ctx->store);
	char want[STORE_EPOCH_LEN + 2], head[STORE_EPOCH_LEN + 64], bad[72];
	int twice;
	char num[TEXT_INT_MAX];
	struct ph_buf *body;
	json_t *out;
	uint64_t next;
	int rc;

	if (web_query_known(req->uri, api_events_params, bad, sizeof(bad),
	    &twice) != 0) {
		web_error(resp, 400, "bad_request", twice ? "query parameter "
		    "%s given twice" : "unknown query parameter \"%s\" (after, "
		    "limit, epoch)", bad);
		return;
	}
	/* Up to what next can say: a JSON integer is signed. */
	if (api_uint_param(req->uri, "after", INT64_MAX, &after) < 0) {
		web_error(resp, 400, "bad_request", "after must be a sequence "
		    "number (a whole number from 0, the start, to 2^63-1)");
		return;
	}
	if (api_uint_param(req->uri, "limit", UINT64_MAX, &limit) < 0 ||
	    limit < 1 || limit > API_EVENTS_MAX) {
		web_error(resp, 400, "bad_request", "limit must be a whole "
		    "number from 1 to %d", API_EVENTS_MAX);
		return;
	}
	/* A cursor of another epoch counts sequence numbers that a restore
	 * has since given out again: the reader must start over. */
	rc = web_query_param(req->uri, "epoch", want, sizeof(want));
	if (rc != 0 && (rc < 0 || strlen(want) != STORE_EPOCH_LEN ||
	    strspn(want, "0123456789abcdef") != STORE_EPOCH_LEN)) {
		web_error(resp, 400, "bad_request", "epoch must be the %d hex "
		    "digits a page of the feed gave", STORE_EPOCH_LEN);
		return;
	}
	if (rc > 0 && strcmp(want, epoch) != 0) {
		out = json_pack("{s:s, s:s, s:s}", "error",
		    "feed_epoch_changed", "message", "the feed was restored "
		    "from a backup since this cursor was taken: read it again "
		    "from the start and deduplicate by event id", "epoch",
		    epoch);
		api_send(resp, 409, out);
		return;
	}
	/* {"epoch":…,"events":[…],"next":N}, the events written straight
	 * from their records (the epoch is hex digits: nothing to escape) */
	body = web_json_body(resp, 200);
	text_cat(head, sizeof(head), "{\"epoch\":\"", epoch, "\",\"events\":",
	    (char *)NULL);
	ph_buf_puts(body, head);
	rc = ledger_events_api(ctx->store, after, (unsigned)limit, body,
	    &next);
	if (rc == PH_OK) {
		text_int(num, (long long)next);
		text_cat(head, sizeof(head), ",\"next\":", num, "}\n",
		    (char *)NULL);
		if (ph_buf_puts(body, head) != PH_OK)
			rc = PH_E_NOMEM;
	}
	if (rc != PH_OK)
		api_store_error(resp, rc);
}
