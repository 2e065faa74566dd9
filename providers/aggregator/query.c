/*
 * The aggregator's active query: the charges of an order
 * (GET /v1/charges), the answer verified as a webhook is when it carries
 * a signature, and the charge read as the notification reads it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "aggregator_int.h"

/* GET /v1/charges?order_no=<id>&app[id]=<app_id>, Bearer <api key>. */
int
agg_query_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	const struct agg_ctx *ctx = p;
	struct ph_buf path;
	int rc;

	if (ctx == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL,
		    "aggregator: NULL argument");
	memset(out, 0, sizeof(*out));
	if (ctx->api_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "query needs api_key_file in "
		    "this profile");
	if (order == NULL || order->order_id == NULL ||
	    !ph_token_valid(order->order_id, strlen(order->order_id),
	    PH_ID_MAX, AGG_ORDER_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "order id is not a valid "
		    "order_no");
	ph_buf_init(&path, sizeof(out->path) - 1);
	ph_buf_puts(&path, "/v1/charges?order_no=");
	ph_buf_pct(&path, order->order_id);
	ph_buf_puts(&path, "&app[id]=");
	ph_buf_pct(&path, ctx->app_id);
	if ((rc = path.err) != PH_OK) {
		ph_fail(diag, rc, "request path too long");
		goto out;
	}
	if ((rc = ph_request_set(out, "GET", path.data, NULL, NULL)) !=
	    PH_OK ||
	    (rc = ph_request_header(out, "Accept", "application/json", "")) !=
	    PH_OK ||
	    (rc = ph_request_header(out, "Authorization", "Bearer ",
	    ctx->api_key)) != PH_OK)
		ph_fail(diag, rc, "request headers too long");
out:
	ph_buf_free(&path);
	if (rc != PH_OK)
		ph_cleanse(out, sizeof(*out));
	return rc;
}

static int
agg_query_event(const struct ph_order_ref *order, enum ph_event_kind kind,
    const char *state, struct ph_event *ev, struct ph_diag *diag)
{
	ev->kind = kind;
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id), order->order_id,
	    AGG_ORDER_EXTRA, "order_no", diag) != PH_OK)
		return PH_E_FIELD;
	if (ev->currency[0] == '\0')
		memcpy(ev->currency, "CNY", 4);
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "query:%s:%s",
	    ev->order_id, state) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/*
 * The list of the order's charges.  Verification: the API answers over
 * TLS with our secret key and Ping++ does not document a signature on
 * it; on an rsa profile an answer that does carry X-Pingplusplus-Signature
 * is verified like an event, and refused if it does not check.  Every
 * charge listed must be ours and of this order; the first paid one is
 * the payment (its key is the one its event carries), none paid is
 * pending, no charge is not found.
 */
int
agg_query_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct agg_ctx *ctx = p;
	char text[AGG_TEXT_MAX + 1], code[AGG_TEXT_MAX + 1];
	const char *sig = NULL, *m = NULL, *c = NULL;
	struct ph_event cur, first;
	const json_t *data, *ch;
	json_t *root = NULL;
	int rc, paid, more = 0, found = 0;
	size_t i;

	if (ctx == NULL || in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL,
		    "aggregator: NULL argument");
	memset(ev, 0, sizeof(*ev));
	memset(&first, 0, sizeof(first));
	if (order == NULL || order->order_id == NULL ||
	    !ph_token_valid(order->order_id, strlen(order->order_id),
	    PH_ID_MAX, AGG_ORDER_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "order id is not a valid "
		    "order_no");
	if (in->status != 200) {
		if (in->body != NULL && in->body_len > 0 &&
		    ph_json_parse(in->body, in->body_len, &agg_answer_limits,
		    &root, NULL) == PH_OK) {
			ph_json_opt_string(root, "error.type", 64, &c, NULL,
			    NULL);
			ph_json_opt_string(root, "error.message", 256, &m, NULL,
			    NULL);
		}
		ph_diag_text(code, sizeof(code), c, AGG_TEXT_MAX);
		ph_diag_text(text, sizeof(text), m, AGG_TEXT_MAX);
		rc = ph_fail(diag, PH_E_PROVIDER, "query: HTTP %d, %s: %s",
		    in->status, code, text);
		goto out;
	}
	if (ctx->mode == AGG_MODE_RSA) {
		rc = ph_header_get(in->headers, in->nheaders, AGG_RSA_HEADER,
		    &sig, NULL);
		if (sig != NULL && (rc != PH_OK || (rc = agg_verify_rsa(ctx,
		    sig, in->body, in->body_len, diag)) != PH_OK)) {
			if (rc != PH_E_SIGNATURE)
				rc = ph_fail(diag, PH_E_SIGNATURE, "query: %s "
				    "sent more than once or empty",
				    AGG_RSA_HEADER);
			goto out;
		}
	}
	if ((rc = ph_json_parse(in->body, in->body_len, &agg_answer_limits,
	    &root, diag)) != PH_OK)
		goto out;
	if ((rc = agg_object_is(root, "list", 0, diag)) != PH_OK)
		goto out;
	data = ph_json_lookup(root, "data");
	if (!json_is_array(data)) {
		rc = ph_fail(diag, PH_E_FIELD, "data: missing or not a list");
		goto out;
	}
	if (ph_json_lookup(root, "has_more") != NULL &&
	    (rc = ph_json_get_bool(root, "has_more", &more, diag)) != PH_OK)
		goto out;
	for (i = 0; i < json_array_size(data); i++) {
		ch = json_array_get(data, i);
		memset(&cur, 0, sizeof(cur));
		if (!json_is_object(ch)) {
			rc = ph_fail(diag, PH_E_FIELD, "data[%zu]: not an "
			    "object", i);
			goto out;
		}
		if ((rc = agg_charge(ctx, ch, 0, &cur, &paid, diag)) != PH_OK)
			goto out;
		if (strcmp(cur.order_id, order->order_id) != 0) {
			rc = ph_fail(diag, PH_E_FIELD, "query: the answer "
			    "lists a charge of another order");
			goto out;
		}
		if (paid) {
			*ev = cur;
			goto out;
		}
		if (found++ == 0)
			first = cur;
	}
	/* Not paid on this page: say nothing unless the page is all. */
	if (more) {
		rc = ph_fail(diag, PH_E_PROVIDER, "query: more charges than "
		    "one page holds, none of them paid");
		goto out;
	}
	if (found == 0)
		rc = agg_query_event(order, PH_EV_NOT_FOUND, "NOTFOUND", ev,
		    diag);
	else {
		/* The latest unpaid charge says what there is. */
		ev->amount = first.amount;
		memcpy(ev->currency, first.currency, sizeof(ev->currency));
		memcpy(ev->channel, first.channel, sizeof(ev->channel));
		rc = agg_query_event(order, PH_EV_PAYMENT_PENDING, "UNPAID",
		    ev, diag);
	}
out:
	json_decref(root);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/*
 * The order an event names, read without verifying it: the core only
 * asks the aggregator about that order, it never applies anything from it.
 */
int
agg_notify_hint(void *p, const struct ph_request *req,
    char order_id[PH_ID_MAX + 1])
{
	const json_t *obj;
	json_t *doc;
	int rc;

	if (p == NULL || req == NULL)
		return PH_E_INTERNAL;
	if ((rc = ph_json_parse(req->body, req->body_len, &agg_event_limits,
	    &doc, NULL)) != PH_OK)
		return rc;
	obj = ph_json_lookup(doc, "data.object");
	rc = obj != NULL && json_is_object(obj) ? ph_json_copy_token(obj,
	    "order_no", order_id, PH_ID_MAX + 1, AGG_ORDER_EXTRA, NULL) :
	    PH_E_FIELD;
	json_decref(doc);
	return rc;
}
