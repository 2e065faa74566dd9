/*
 * WeChat Pay API v3: closing an unpaid order, so that an order payhook
 * gave up on cannot be paid afterwards (doc/design/protocols.md §2.7).
 *
 * POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close with
 * {"mchid":"..."}, signed like the query; WeChat answers 204 with a
 * Wechatpay-* signature over the empty body.  The request is that of
 * wechatpay-go's CloseOrder (services/payments/jsapi/api_jsapi.go) and
 * wechatpay-java's JsapiService.closeOrder; tests/vectors/FINDINGS.md §4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "wechat_int.h"

/* Codes of a signed answer: the order is paid (ask the query), or was
 * closed already.  WeChat's v3 spellings are not confirmed; the v2 ones
 * are accepted too, as the query accepts ORDERNOTEXIST. */
static const char *const wx3_close_paid[] = { "ORDERPAID", "ORDER_PAID",
    NULL };
static const char *const wx3_close_closed[] = { "ORDERCLOSED",
    "ORDER_CLOSED", NULL };

int
wx3_close_request(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag)
{
	json_t *doc;
	size_t len;
	int rc;

	if ((rc = wx3_order_call_ok(ctx, order, cc, out, "close",
	    diag)) != PH_OK)
		return rc;
	if ((doc = json_pack("{s:s}", "mchid", ctx->mch_id)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	len = json_dumpb(doc, (char *)out->body, sizeof(out->body),
	    JSON_COMPACT);
	json_decref(doc);
	if (len == 0 || len > sizeof(out->body))
		return ph_fail(diag, PH_E_TOOBIG, "request body too long");
	out->body_len = len;
	return wx3_order_request(ctx, cc, "POST", order, "/close", out, diag);
}

/*
 * The answer to a close.  Closed only on WeChat's word: a 204 (or 200)
 * whose Wechatpay-* signature checks, or a signed error saying the order
 * was closed already.  A signed "paid" is PAYMENT_SUCCEEDED without a
 * transaction: nothing to apply, the core queries the order.  Anything
 * else, unsigned answers included, is PH_E_PROVIDER: ask again later,
 * the order stays pending.
 */
int
wx3_close_response(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag)
{
	char code[WX3_TEXT_MAX + 1], text[WX3_TEXT_MAX + 1];
	struct ph_diag why;
	const char *c = NULL;
	json_t *doc = NULL;
	int rc;

	if ((rc = wx_order_answer_ok(ctx, order, in, ev, diag)) != PH_OK)
		return rc;
	if (in->status == 204 || in->status == 200) {
		why.msg[0] = '\0';
		if (wx3_verify(ctx->v3, in->headers, in->nheaders, in->body,
		    in->body_len, in->now, "close answer", &why) != PH_OK)
			return ph_fail(diag, PH_E_PROVIDER, "close: HTTP %d "
			    "without a valid signature (%s): ask again later",
			    in->status, why.msg);
		rc = wx_query_event(order, PH_EV_PAYMENT_CLOSED, "close",
		    "CLOSED", ev, diag);
		goto out;
	}
	wx3_error_of(in, &doc, &c, code, text);
	if (in->status >= 400 && in->status < 500 && c != NULL &&
	    (ph_in(c, wx3_close_paid) || ph_in(c, wx3_close_closed))) {
		if (wx3_verify(ctx->v3, in->headers, in->nheaders, in->body,
		    in->body_len, in->now, "close answer", diag) != PH_OK) {
			rc = ph_fail(diag, PH_E_PROVIDER, "close: HTTP %d, "
			    "code %s, not signed: ask again later", in->status,
			    code);
			goto out;
		}
		rc = wx_query_event(order, ph_in(c, wx3_close_paid) ?
		    PH_EV_PAYMENT_SUCCEEDED : PH_EV_PAYMENT_CLOSED, "close", c,
		    ev, diag);
		goto out;
	}
	rc = ph_fail(diag, PH_E_PROVIDER, "close: HTTP %d, code %s: %s",
	    in->status, code, text);
out:
	json_decref(doc);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}
