/*
 * The aggregator's active query: the order's charge by its id, or the
 * app's paid charges page by page, the answer verified as a webhook is
 * when it carries a signature, and the charge read as the notification
 * reads it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "aggregator_int.h"

/*
 * The charge an order is known by: {"charge":"ch_..."} in the attempt's
 * data (the merchant made the charge), else the transaction payhook has
 * recorded for it.  "" when neither: the list is read instead.
 */
static int
agg_charge_id(const struct ph_order_ref *order, char id[PH_ID_MAX + 1],
    struct ph_diag *diag)
{
	json_error_t jerr;
	json_t *root = NULL;
	const json_t *v;
	const char *s = NULL;
	int rc = PH_OK;

	id[0] = '\0';
	if (order->attempt != NULL && order->attempt[0] != '\0') {
		if ((root = json_loads(order->attempt, JSON_REJECT_DUPLICATES,
		    &jerr)) == NULL || !json_is_object(root)) {
			json_decref(root);
			return ph_fail(diag, PH_E_FIELD, "the attempt's data is "
			    "not a JSON object");
		}
		if ((v = json_object_get(root, "charge")) != NULL) {
			if (!json_is_string(v)) {
				rc = ph_fail(diag, PH_E_FIELD, "the attempt's "
				    "charge is not a string");
				goto out;
			}
			s = json_string_value(v);
		}
	}
	if (s == NULL && order->txn_id != NULL && order->txn_id[0] != '\0')
		s = order->txn_id;
	if (s != NULL && ph_copy_token(id, PH_ID_MAX + 1, s, AGG_ID_EXTRA,
	    "charge id", diag) != PH_OK)
		rc = PH_E_FIELD;
out:
	json_decref(root);
	return rc;
}

static int
agg_order_ok(const struct agg_ctx *ctx, const struct ph_order_ref *order,
    struct ph_diag *diag)
{
	if (ctx == NULL)
		return ph_fail(diag, PH_E_INTERNAL,
		    "aggregator: NULL argument");
	return ph_order_check(order, PH_ID_MAX, AGG_ORDER_EXTRA, "order_no",
	    diag);
}

/*
 * GET /v1/charges/<charge id> when the charge is known; else the list
 * with the parameters Ping++ documents, nothing that would select the
 * order (the API has no such parameter, and one that ignored it would
 * answer with other orders' charges): app[id], limit, paid=true,
 * created[gte] a little before the order was registered, and
 * starting_after=<the cursor> for the next page.  Bearer <api key>.
 * pingpp-python example/charge/list.py and retrieve.py, pingpp-java
 * ChargeExample.java; tests/vectors/FINDINGS.md section 1.
 */
PH_CALL_REQUEST(agg_query_request)
{
	const struct agg_ctx *ctx = p;
	char id[PH_ID_MAX + 1];
	const char *cursor;
	struct ph_buf path;
	int rc;

	(void)cc;
	if (out == NULL)
		return ph_fail(diag, PH_E_INTERNAL,
		    "aggregator: NULL argument");
	memset(out, 0, sizeof(*out));
	if ((rc = agg_order_ok(ctx, order, diag)) != PH_OK)
		return rc;
	if (ctx->api_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "query needs api_key_file in "
		    "this profile");
	if ((rc = agg_charge_id(order, id, diag)) != PH_OK)
		return rc;
	cursor = order->cursor != NULL ? order->cursor : "";
	if (cursor[0] == AGG_LIST_MARK[0]) {
		/* The charge named was unpaid: the order's others. */
		cursor++;
		id[0] = '\0';
	}
	if (cursor[0] != '\0' && (id[0] != '\0' ||
	    !ph_token_valid(cursor, strlen(cursor), PH_ID_MAX, AGG_ID_EXTRA)))
		return ph_fail(diag, PH_E_FIELD, "cursor: not a charge id of "
		    "the list");
	ph_buf_init(&path, sizeof(out->path) - 1);
	if (id[0] != '\0') {
		ph_buf_puts(&path, "/v1/charges/");
		ph_buf_pct(&path, id);
	} else {
		ph_buf_puts(&path, "/v1/charges?app[id]=");
		ph_buf_pct(&path, ctx->app_id);
		ph_buf_printf(&path, "&limit=%d&paid=true", AGG_PAGE_LIMIT);
		if (order->created_at > AGG_CREATED_MARGIN_S)
			ph_buf_printf(&path, "&created[gte]=%lld",
			    (long long)(order->created_at -
			    AGG_CREATED_MARGIN_S));
		if (cursor[0] != '\0') {
			ph_buf_puts(&path, "&starting_after=");
			ph_buf_pct(&path, cursor);
		}
	}
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

/* Not paid (yet): the order's own amount unless a charge of it said. */
static int
agg_query_event(const struct ph_order_ref *order, enum ph_event_kind kind,
    const char *state, struct ph_event *ev, struct ph_diag *diag)
{
	ev->kind = kind;
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id), order->order_id,
	    AGG_ORDER_EXTRA, "order_no", diag) != PH_OK)
		return PH_E_FIELD;
	if (ev->currency[0] == '\0') {
		ev->amount = order->amount >= 0 ? order->amount : 0;
		memcpy(ev->currency, order->currency != NULL &&
		    ph_currency_valid(order->currency) ? order->currency :
		    "CNY", 4);
	}
	return ph_dedup_key(ev, diag, "query", ev->order_id, state,
	    (char *)NULL);
}

/* The answer, verified when it carries a signature, parsed; root is the
 * caller's on PH_OK. */
static int
agg_answer(const struct agg_ctx *ctx, const struct ph_http_response *in,
    json_t **root, struct ph_diag *diag)
{
	char text[AGG_TEXT_MAX + 1], code[AGG_TEXT_MAX + 1];
	const char *sig = NULL, *m = NULL, *c = NULL;
	json_t *doc = NULL;
	int rc;

	*root = NULL;
	if (in->status != 200) {
		if (in->body != NULL && in->body_len > 0 &&
		    ph_json_parse(in->body, in->body_len, &agg_answer_limits,
		    &doc, NULL) == PH_OK) {
			ph_json_opt_string(doc, "error.type", 64, &c, NULL,
			    NULL);
			ph_json_opt_string(doc, "error.message", 256, &m, NULL,
			    NULL);
		}
		ph_diag_text(code, sizeof(code), c, AGG_TEXT_MAX);
		ph_diag_text(text, sizeof(text), m, AGG_TEXT_MAX);
		json_decref(doc);
		return ph_fail(diag, PH_E_PROVIDER, "query: HTTP %d, %s: %s",
		    in->status, code, text);
	}
	/* Ping++ documents no signature on API answers (TLS and the secret
	 * key vouch for them); one that does carry it must check. */
	if (ctx->mode == AGG_MODE_RSA) {
		rc = ph_header_get(in->headers, in->nheaders, AGG_RSA_HEADER,
		    &sig, NULL);
		if (sig != NULL && (rc != PH_OK || (rc = agg_verify_rsa(ctx,
		    sig, in->body, in->body_len, diag)) != PH_OK)) {
			if (rc != PH_E_SIGNATURE)
				rc = ph_fail(diag, PH_E_SIGNATURE, "query: %s "
				    "sent more than once or empty",
				    AGG_RSA_HEADER);
			return rc;
		}
	}
	return ph_json_parse(in->body, in->body_len, &agg_answer_limits, root,
	    diag);
}

/*
 * One charge, asked for by id: it must be the order's.  Unpaid, it is not
 * the order's last word: a shopper who switched wallets paid another
 * charge of the same order_no (one charge per channel), so the order's
 * charges are listed next (QUERY_MORE, the list's mark as the cursor).
 */
static int
agg_query_charge(const struct agg_ctx *ctx, const struct ph_order_ref *order,
    const json_t *ch, struct ph_event *ev, struct ph_diag *diag)
{
	struct ph_event cur;
	int rc, paid;

	memset(&cur, 0, sizeof(cur));
	if ((rc = agg_charge(ctx, ch, 0, &cur, &paid, diag)) != PH_OK)
		return rc;
	if (strcmp(cur.order_id, order->order_id) != 0)
		return ph_fail(diag, PH_E_FIELD, "query: the charge asked for "
		    "is of another order");
	if (paid) {
		*ev = cur;
		return PH_OK;
	}
	ev->kind = PH_EV_QUERY_MORE;
	ev->cursor[0] = AGG_LIST_MARK[0];
	return PH_OK;
}

/* Does paid charge cur pay order as it is (its amount and currency)? */
static int
agg_pays(const struct ph_order_ref *order, const struct ph_event *cur)
{
	return cur->amount == order->amount && order->currency != NULL &&
	    strcmp(cur->currency, order->currency) == 0;
}

/*
 * One page of the app's charges, newest first.  Charges of other orders
 * are passed over (the list is the app's); one of another app or mode is
 * refused.  The order's paid charge that pays it (its amount, its
 * currency) is the payment (its key is the one its event carries); one
 * that does not is the answer only when the list has no more (a shopper
 * may have paid another charge of the order in full).  Otherwise, while
 * the list has more, the next page starts after this page's last charge
 * (marked when the list follows an unpaid charge named: listing); at its
 * end, the order has no paid charge in the window: pending.
 */
static int
agg_query_list(const struct agg_ctx *ctx, const struct ph_order_ref *order,
    const json_t *root, int listing, struct ph_event *ev,
    struct ph_diag *diag)
{
	struct ph_event cur, unpaid, other;
	const json_t *data, *ch;
	const char *no;
	char last[PH_ID_MAX + 1];
	int rc, paid, more = 0, found = 0, have_other = 0;
	size_t i, n;

	if ((rc = agg_object_is(root, "list", 1, diag)) != PH_OK)
		return rc;
	data = ph_json_lookup(root, "data");
	if (!json_is_array(data))
		return ph_fail(diag, PH_E_FIELD, "data: missing or not a list");
	if (ph_json_lookup(root, "has_more") != NULL &&
	    (rc = ph_json_get_bool(root, "has_more", &more, diag)) != PH_OK)
		return rc;
	last[0] = '\0';
	memset(&unpaid, 0, sizeof(unpaid));
	memset(&other, 0, sizeof(other));
	for (i = 0; i < json_array_size(data); i++) {
		ch = json_array_get(data, i);
		if (!json_is_object(ch))
			return ph_fail(diag, PH_E_FIELD, "data[%zu]: not an "
			    "object", i);
		if ((rc = agg_charge_ours(ctx, ch, diag)) != PH_OK ||
		    (rc = ph_json_copy_token(ch, "id", last, sizeof(last),
		    AGG_ID_EXTRA, diag)) != PH_OK ||
		    (rc = ph_json_get_string(ch, "order_no", PH_ID_MAX, &no,
		    &n, diag)) != PH_OK)
			return rc;
		if (strcmp(no, order->order_id) != 0)
			continue;
		memset(&cur, 0, sizeof(cur));
		if ((rc = agg_charge(ctx, ch, 0, &cur, &paid, diag)) != PH_OK)
			return rc;
		if (paid && agg_pays(order, &cur)) {
			*ev = cur;
			return PH_OK;
		}
		if (paid && !have_other++)
			other = cur;
		else if (!paid && found++ == 0)
			unpaid = cur;
	}
	if (more) {
		if (last[0] == '\0')
			return ph_fail(diag, PH_E_PROVIDER, "query: an empty "
			    "page that says it has more");
		ev->kind = PH_EV_QUERY_MORE;
		if ((size_t)snprintf(ev->cursor, sizeof(ev->cursor), "%s%s",
		    listing ? AGG_LIST_MARK : "", last) >= sizeof(ev->cursor))
			return ph_fail(diag, PH_E_PROVIDER, "query: a charge id "
			    "too long to page on");
		return PH_OK;
	}
	if (have_other) {
		*ev = other;
		return PH_OK;
	}
	if (found > 0) {
		ev->amount = unpaid.amount;
		memcpy(ev->currency, unpaid.currency, sizeof(ev->currency));
		memcpy(ev->channel, unpaid.channel, sizeof(ev->channel));
	}
	return agg_query_event(order, PH_EV_PAYMENT_PENDING, "UNPAID", ev,
	    diag);
}

PH_CALL_RESPONSE(agg_query_response)
{
	const struct agg_ctx *ctx = p;
	char id[PH_ID_MAX + 1];
	json_t *root = NULL;
	int rc, listing;

	if (in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL,
		    "aggregator: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = agg_order_ok(ctx, order, diag)) != PH_OK ||
	    (rc = agg_charge_id(order, id, diag)) != PH_OK ||
	    (rc = agg_answer(ctx, in, &root, diag)) != PH_OK)
		goto out;
	listing = order->cursor != NULL && order->cursor[0] == AGG_LIST_MARK[0];
	rc = id[0] != '\0' && !listing ? agg_query_charge(ctx, order, root,
	    ev, diag) : agg_query_list(ctx, order, root, listing, ev, diag);
out:
	json_decref(root);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/*
 * The order an event names, read without verifying it: the core only
 * asks the aggregator about that order, it never applies anything from it.
 */
PH_NOTIFY_HINT(agg_notify_hint)
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
