/*
 * Merchant API handlers.  Input is validated field by field before the
 * ledger sees it; every refusal names the field.
 */
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api.h"
#include "ledger.h"
#include "log.h"
#include "order.h"

#define API_EVENTS_DEFAULT 100
#define API_EVENTS_MAX 1000

/* The status a storage problem is answered with. */
static void
api_store_error(struct fc_response *resp, int rc)
{
	if (rc == PH_E_STORE_FULL)
		fc_error(resp, 503, "store_full", "the database is full; "
		    "the operator must raise map_size_mb");
	else
		fc_error(resp, 503, "store_unavailable",
		    "the database is unavailable: %s", ph_strerror(rc));
}

static const char *const api_order_fields[] = {
	"order_id", "amount", "currency", "profile", NULL,
};

void
api_create_order(struct fc_ctx *ctx, const struct fc_request *req,
    struct fc_response *resp)
{
	const char *key, *order_id, *currency, *profile;
	struct ph_diag diag;
	json_error_t jerr;
	json_t *in, *v, *order = NULL, *view;
	json_int_t amount;
	int created, rc;
	size_t i;

	in = json_loadb((const char *)req->body, req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (in == NULL) {
		fc_error(resp, 400, "bad_request", "body is not valid JSON: "
		    "%s (line %d, column %d)", jerr.text, jerr.line,
		    jerr.column);
		return;
	}
	if (!json_is_object(in)) {
		fc_error(resp, 400, "bad_request", "body must be a JSON object");
		goto done;
	}
	json_object_foreach(in, key, v) {
		for (i = 0; api_order_fields[i] != NULL; i++)
			if (strcmp(key, api_order_fields[i]) == 0)
				break;
		if (api_order_fields[i] == NULL) {
			fc_error(resp, 400, "bad_request",
			    "unknown field \"%s\"", key);
			goto done;
		}
	}
	v = json_object_get(in, "order_id");
	order_id = json_string_value(v);
	if (order_id == NULL ||
	    !order_id_valid(order_id, json_string_length(v))) {
		fc_error(resp, 400, "bad_request", "order_id must be a string "
		    "of 1-64 characters from [A-Za-z0-9_-|*.:]");
		goto done;
	}
	v = json_object_get(in, "amount");
	if (!json_is_integer(v) || (amount = json_integer_value(v)) <= 0 ||
	    amount > PH_AMOUNT_MAX) {
		fc_error(resp, 400, "bad_request", "amount must be a positive "
		    "integer in minor units (fen), at most %lld",
		    (long long)PH_AMOUNT_MAX);
		goto done;
	}
	currency = json_string_value(json_object_get(in, "currency"));
	if (currency == NULL || !ph_currency_valid(currency)) {
		fc_error(resp, 400, "bad_request", "currency must be an ISO "
		    "4217 code of three uppercase letters, e.g. \"CNY\"");
		goto done;
	}
	profile = json_string_value(json_object_get(in, "profile"));
	if (profile == NULL) {
		fc_error(resp, 400, "bad_request", "profile must name a "
		    "configured profile");
		goto done;
	}
	if (conf_profile(ctx->conf, profile) == NULL) {
		fc_error(resp, 400, "bad_request", "profile \"%s\" is not "
		    "configured", profile);
		goto done;
	}

	memset(&diag, 0, sizeof(diag));
	rc = ledger_create_order(ctx->store, order_id, profile, amount,
	    currency, req->now, &order, &created, &diag);
	if (rc == PH_E_CONFLICT) {
		view = json_pack("{s:s, s:s, s:o}", "error", "conflict",
		    "message", "an order with this id exists with other "
		    "content", "order", order_to_api(order));
		fc_json(resp, 409, view);
		json_decref(view);
		goto done;
	}
	if (rc != PH_OK) {
		log_err("create order %s: %s", order_id, diag.msg);
		api_store_error(resp, rc);
		goto done;
	}
	if (created)
		log_info("order %s created: %lld %s via profile %s", order_id,
		    (long long)amount, currency, profile);
	view = order_to_api(order);
	fc_json(resp, created ? 201 : 200, view);
	json_decref(view);
done:
	json_decref(order);
	json_decref(in);
}

void
api_get_order(struct fc_ctx *ctx, const char *order_id,
    struct fc_response *resp)
{
	json_t *order, *view;
	int rc;

	if (!order_id_valid(order_id, strlen(order_id))) {
		fc_error(resp, 404, "not_found", "no such order");
		return;
	}
	rc = ledger_get_order(ctx->store, order_id, &order);
	if (rc == PH_E_NOTFOUND) {
		fc_error(resp, 404, "not_found", "no order \"%s\"", order_id);
		return;
	}
	if (rc != PH_OK) {
		api_store_error(resp, rc);
		return;
	}
	view = order_to_api(order);
	fc_json(resp, 200, view);
	json_decref(view);
	json_decref(order);
}

/* Parses a decimal query parameter; -1 when present but invalid. */
static int
api_uint_param(const char *uri, const char *name, unsigned long long max,
    unsigned long long *out)
{
	char buf[32], *p;
	unsigned long long v = 0;
	int rc;

	if ((rc = fc_query_param(uri, name, buf, sizeof(buf))) <= 0)
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
api_events(struct fc_ctx *ctx, const struct fc_request *req,
    struct fc_response *resp)
{
	unsigned long long after = 0, limit = API_EVENTS_DEFAULT;
	json_t *events, *out, *e;
	uint64_t next;
	size_t i;
	int rc;

	if (api_uint_param(req->uri, "after", UINT64_MAX, &after) < 0) {
		fc_error(resp, 400, "bad_request", "after must be a sequence "
		    "number (a whole number, 0 for the start)");
		return;
	}
	if (api_uint_param(req->uri, "limit", UINT64_MAX, &limit) < 0 ||
	    limit < 1 || limit > API_EVENTS_MAX) {
		fc_error(resp, 400, "bad_request", "limit must be a whole "
		    "number from 1 to %d", API_EVENTS_MAX);
		return;
	}
	rc = ledger_events(ctx->store, after, (unsigned)limit, &events, &next);
	if (rc != PH_OK) {
		api_store_error(resp, rc);
		return;
	}
	out = json_pack("{s:[], s:I}", "events", "next", (json_int_t)next);
	json_array_foreach(events, i, e)
		json_array_append_new(json_object_get(out, "events"),
		    order_event_to_api(e));
	fc_json(resp, 200, out);
	json_decref(out);
	json_decref(events);
}

void
api_health(struct fc_ctx *ctx, struct fc_response *resp)
{
	struct store_txn t;
	json_t *j;
	int rc;

	if ((rc = store_begin(ctx->store, 0, &t)) != PH_OK) {
		fc_error(resp, 503, "store_unavailable",
		    "the database is unavailable: %s", ph_strerror(rc));
		return;
	}
	store_abort(&t);
	j = json_pack("{s:s}", "status", "ok");
	fc_json(resp, 200, j);
	json_decref(j);
}
