/*
 * WeChat Pay API v2 payment notifications (XML, MD5 or HMAC-SHA256), and
 * the order query (orderquery) and close (closeorder) calls.
 *
 * Order of work, cheapest and least trusting first: a bounded, strict
 * parse of the flat XML; the signature over every received field with
 * the algorithm the profile pins; only then the merchant identity and the
 * business fields.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "wechat_int.h"

const char *const wx_sign_names[WX_SIGN__MAX + 1] = {
	[WX_SIGN_MD5] = "MD5",
	[WX_SIGN_HMAC_SHA256] = "HMAC-SHA256",
	[WX_SIGN__MAX] = NULL,
};

/* A value as long as the longest WeChat documents: promotion_detail,
 * String(6000), sent with every payment of an order made with version=1.0,
 * in characters of up to 3 bytes (its names are Chinese). */
#define WX_VALUE_MAX	(24 * 1024)

/* What a notification (and a refund's decrypted req_info) may be. */
const struct ph_xml_limits wx_xml_limits = {
	.max_bytes = 64 * 1024,
	.max_fields = 128,
	.max_value = WX_VALUE_MAX,
};

/* What an answer to our own call may be: a refundquery lists up to
 * WX_REFUNDQUERY_MAX refunds of about ten fields each, and three more for
 * each coupon of a refund. */
const struct ph_xml_limits wx_answer_limits = {
	.max_bytes = 128 * 1024,
	.max_fields = 2048,
	.max_value = WX_VALUE_MAX,
};

/* A present, non-empty value; WeChat treats empty values as absent. */
const char *
wx_get(const struct ph_kvlist *kv, const char *name)
{
	const char *v = ph_kvlist_get(kv, name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/*
 * The expected sign: every received field but sign, empty values
 * skipped, sorted, joined, "&key=" appended, digested with the pinned
 * algorithm, upper hex.  hex holds 2 * PH_SHA256_LEN + 1.
 */
int
wx_sign(const struct wx_ctx *ctx, const struct ph_kvlist *kv, char *hex,
    struct ph_diag *diag)
{
	static const char *const skip[] = { "sign", NULL };
	unsigned char md[PH_SHA256_LEN];
	struct ph_buf s;
	int rc;

	ph_buf_init(&s, 2 * wx_answer_limits.max_bytes);
	ph_canonical_join(kv, skip, 1, &s);
	ph_buf_puts(&s, "&key=");
	ph_buf_append(&s, ctx->key, WX_KEY_LEN);
	if ((rc = s.err) != PH_OK) {
		ph_fail(diag, rc, "cannot build the sign string");
		goto out;
	}
	if (ctx->sign_type == WX_SIGN_MD5) {
		if ((rc = ph_md5(s.data, s.len, md)) == PH_OK)
			ph_hex_upper(md, PH_MD5_LEN, hex);
	} else {
		if ((rc = ph_hmac_sha256(ctx->key, WX_KEY_LEN, s.data, s.len,
		    md)) == PH_OK)
			ph_hex_upper(md, PH_SHA256_LEN, hex);
	}
	if (rc != PH_OK)
		ph_fail(diag, rc, "cannot compute the signature");
out:
	/* The sign string ends with the key. */
	if (s.data != NULL)
		ph_cleanse(s.data, s.cap);
	ph_buf_free(&s);
	ph_cleanse(md, sizeof(md));
	return rc;
}

/* Java's String.trim() takes every char up to ' ' off both ends. */
static int
wx_padded(const struct ph_kv *f)
{
	return f->val_len > 0 && ((unsigned char)f->val[0] <= ' ' ||
	    (unsigned char)f->val[f->val_len - 1] <= ' ');
}

/* kv with every value trimmed, and those left empty dropped. */
static int
wx_trimmed(const struct ph_kvlist *kv, struct ph_kvlist *out,
    struct ph_diag *diag)
{
	const struct ph_kv *f;
	size_t i, a, b;
	int rc;

	ph_kvlist_init(out, kv->n);
	for (i = 0; i < kv->n; i++) {
		f = &kv->items[i];
		for (a = 0; a < f->val_len && (unsigned char)f->val[a] <= ' ';
		    a++)
			;
		for (b = f->val_len; b > a &&
		    (unsigned char)f->val[b - 1] <= ' '; b--)
			;
		if (b == a)
			continue;
		if ((rc = ph_kvlist_add(out, f->key, strlen(f->key),
		    f->val + a, b - a, diag)) != PH_OK) {
			ph_kvlist_free(out);
			return rc;
		}
	}
	return PH_OK;
}

/*
 * Whether sign is WeChat's signature of kv, under either reading of the
 * signing rule.  The rule (doc/design/protocols.md §1.2) skips empty
 * values and says nothing of white space, and WeChat's own SDKs differ:
 * the PHP SDK (WxPayDataBase::ToUrlParams) signs values as they are, the
 * Java SDK (WXPayUtil.generateSignature) signs them trimmed and skips
 * those left blank, and verifies notifications that way.  What WeChat's
 * server does is not documented; a value with surrounding white space can
 * only be one the merchant chose and WeChat echoes (attach).  Both
 * readings are keyed with the APIv2 key, so accepting either gives a
 * forger nothing: the values as received first, then, only when that
 * fails and some value is padded, the trimmed ones.  When only the
 * trimmed reading matches, kv becomes the trimmed values, so what is read
 * afterwards is exactly what was signed.  Both compares are constant-time.
 * tests/vectors/FINDINGS.md §3.
 */
static int
wx_check_sign(const struct wx_ctx *ctx, struct ph_kvlist *kv,
    const char *sign, int *match, struct ph_diag *diag)
{
	char want[2 * PH_SHA256_LEN + 1];
	struct ph_kvlist t;
	size_t i;
	int rc, padded = 0;

	*match = 0;
	if ((rc = wx_sign(ctx, kv, want, diag)) != PH_OK)
		return rc;
	*match = ph_ct_equal_nocase(sign, strlen(sign), want, strlen(want));
	ph_cleanse(want, sizeof(want));
	for (i = 0; i < kv->n; i++)
		if (strcmp(kv->items[i].key, "sign") != 0 &&
		    wx_padded(&kv->items[i]))
			padded = 1;
	if (*match || !padded)
		return PH_OK;
	if ((rc = wx_trimmed(kv, &t, diag)) != PH_OK)
		return rc;
	if ((rc = wx_sign(ctx, &t, want, diag)) == PH_OK &&
	    (*match = ph_ct_equal_nocase(sign, strlen(sign), want,
	    strlen(want)))) {
		ph_kvlist_free(kv);
		*kv = t;
	} else
		ph_kvlist_free(&t);
	ph_cleanse(want, sizeof(want));
	return rc;
}

static int
wx_verify(const struct wx_ctx *ctx, struct ph_kvlist *kv,
    struct ph_diag *diag)
{
	const char *sign, *claimed;
	int rc, match;

	if ((sign = wx_get(kv, "sign")) == NULL)
		return ph_fail(diag, PH_E_SIGNATURE,
		    "notification is not signed");
	/*
	 * The message names its algorithm but does not choose it: anything
	 * but the profile's sign_type is refused, so no downgrade to MD5.
	 */
	if ((claimed = wx_get(kv, "sign_type")) == NULL)
		claimed = "MD5";
	if (strcmp(claimed, wx_sign_names[ctx->sign_type]) != 0)
		return ph_fail(diag, PH_E_SIGNATURE, "sign_type %.32s does "
		    "not match the configured %s", claimed,
		    wx_sign_names[ctx->sign_type]);
	if ((rc = wx_check_sign(ctx, kv, sign, &match, diag)) != PH_OK)
		return rc;
	return match ? PH_OK :
	    ph_fail(diag, PH_E_SIGNATURE, "signature mismatch");
}

int
wx_copy_id(char *dst, size_t cap, const struct ph_kvlist *kv,
    const char *name, const char *extra, struct ph_diag *diag)
{
	const char *v = wx_get(kv, name);

	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "%s: missing", name);
	if (!ph_token_valid(v, strlen(v), WX_ID_MAX, extra))
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", name);
	return ph_copy_token(dst, cap, v, extra, name, diag);
}

static int
wx_succeeded(const struct ph_kvlist *kv, struct ph_event *ev,
    struct ph_diag *diag)
{
	const char *v;
	int rc;

	ev->kind = PH_EV_PAYMENT_SUCCEEDED;
	if ((rc = wx_copy_id(ev->order_id, sizeof(ev->order_id), kv,
	    "out_trade_no", WX_ORDER_EXTRA, diag)) != PH_OK)
		return rc;
	if ((rc = wx_copy_id(ev->txn_id, sizeof(ev->txn_id), kv,
	    "transaction_id", NULL, diag)) != PH_OK)
		return rc;
	if ((rc = ph_kv_amount(kv, "total_fee", &ev->amount, diag)) != PH_OK)
		return rc;
	if ((v = wx_get(kv, "fee_type")) == NULL)
		v = "CNY";
	if (!ph_currency_valid(v))
		return ph_fail(diag, PH_E_FIELD, "fee_type: invalid");
	memcpy(ev->currency, v, 4);
	if ((v = wx_get(kv, "time_end")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "time_end: missing");
	if (ph_time_parse_compact(v, WX_BEIJING, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "time_end: invalid");
	return ph_dedup_key(ev, diag, "pay", ev->txn_id, (char *)NULL);
}

/*
 * A signed failure.  Only out_trade_no is required; the rest is taken
 * when present and valid.  Identifiers that go into the dedup key must
 * be valid when present, since dropping them would merge distinct facts.
 */
static int
wx_failed(const struct ph_kvlist *kv, struct ph_event *ev,
    struct ph_diag *diag)
{
	const char *v, *err = "-";
	int64_t n;
	int rc;

	ev->kind = PH_EV_PAYMENT_FAILED;
	if ((rc = wx_copy_id(ev->order_id, sizeof(ev->order_id), kv,
	    "out_trade_no", WX_ORDER_EXTRA, diag)) != PH_OK)
		return rc;
	if (wx_get(kv, "transaction_id") != NULL &&
	    (rc = wx_copy_id(ev->txn_id, sizeof(ev->txn_id), kv,
	    "transaction_id", NULL, diag)) != PH_OK)
		return rc;
	if ((v = wx_get(kv, "err_code")) != NULL) {
		if (!ph_token_valid(v, strlen(v), WX_ID_MAX, WX_ERR_EXTRA))
			return ph_fail(diag, PH_E_FIELD, "err_code: invalid");
		err = v;
	}
	if ((v = wx_get(kv, "total_fee")) != NULL &&
	    ph_money_parse_minor(v, strlen(v), &n) == PH_OK)
		ev->amount = n;
	if ((v = wx_get(kv, "fee_type")) == NULL || !ph_currency_valid(v))
		v = "CNY";
	memcpy(ev->currency, v, 4);
	if ((v = wx_get(kv, "time_end")) != NULL &&
	    ph_time_parse_compact(v, WX_BEIJING, &n) == PH_OK)
		ev->occurred_at = n;
	return ph_dedup_key(ev, diag, "fail", ev->order_id,
	    ev->txn_id[0] != '\0' ? ev->txn_id : "-", err, (char *)NULL);
}

/* "SUCCESS" or "FAIL"; anything else is not a result we understand. */
int
wx_result(const struct ph_kvlist *kv, const char *name, int *success,
    struct ph_diag *diag)
{
	const char *v = wx_get(kv, name);

	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "%s: missing", name);
	if (strcmp(v, "SUCCESS") == 0)
		*success = 1;
	else if (strcmp(v, "FAIL") == 0)
		*success = 0;
	else
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", name);
	return PH_OK;
}

/* A payment notification, its XML parsed by wx2_parse_notify. */
int
wx_pay_notify(const struct wx_ctx *ctx, struct ph_kvlist *kv,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *v;
	int rc, ret_ok, res_ok = 0;

	if ((rc = wx_verify(ctx, kv, diag)) != PH_OK)
		return rc;

	/* Verified from here on; now is it ours, and what does it say. */
	if ((v = wx_get(kv, "appid")) == NULL || strcmp(v, ctx->appid))
		return ph_fail(diag, PH_E_MERCHANT, "appid does not match");
	if ((v = wx_get(kv, "mch_id")) == NULL || strcmp(v, ctx->mch_id))
		return ph_fail(diag, PH_E_MERCHANT, "mch_id does not match");
	/* Service-provider notifications name a sub-merchant this
	 * profile cannot check. */
	if (wx_get(kv, "sub_mch_id") != NULL ||
	    wx_get(kv, "sub_appid") != NULL)
		return ph_fail(diag, PH_E_MERCHANT,
		    "sub_mch_id/sub_appid: service-provider mode is not "
		    "supported");
	if ((rc = wx_result(kv, "return_code", &ret_ok, diag)) != PH_OK)
		return rc;
	if (ret_ok && (rc = wx_result(kv, "result_code", &res_ok,
	    diag)) != PH_OK)
		return rc;
	return ret_ok && res_ok ? wx_succeeded(kv, ev, diag) :
	    wx_failed(kv, ev, diag);
}

/*
 * Copies reason as printable ASCII, at most 128 bytes, never forming
 * "]]>" (which would end the CDATA section early).
 */
static size_t
wx_reason(char *dst, size_t cap, const char *reason, const char *def)
{
	size_t n = 0;
	const char *s;

	for (s = reason; s != NULL && *s != '\0' && n < cap - 1 && n < 128;
	    s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c > 0x7e)
			continue;
		if (c == '>' && n >= 2 && dst[n - 1] == ']' &&
		    dst[n - 2] == ']')
			continue;
		dst[n++] = (char)c;
	}
	if (n == 0) {
		n = strlen(def);
		memcpy(dst, def, n);
	}
	dst[n] = '\0';
	return n;
}

void
wx2_ack(enum ph_ack_kind kind, const char *reason, struct ph_response *out)
{
	static const char ok[] = "<xml><return_code><![CDATA[SUCCESS]]>"
	    "</return_code><return_msg><![CDATA[OK]]></return_msg></xml>";
	char msg[129];
	int n;

	memset(out, 0, sizeof(*out));
	switch (kind) {
	case PH_ACK_OK:
		out->status = 200;
		memcpy(out->body, ok, sizeof(ok) - 1);
		out->body_len = sizeof(ok) - 1;
		break;
	case PH_ACK_REFUSED:
	case PH_ACK_RETRY:
		/* WeChat retries on FAIL whatever the status; a 5xx also
		 * tells any proxy in between that we failed. */
		out->status = kind == PH_ACK_RETRY ? 500 : 200;
		wx_reason(msg, sizeof(msg), reason, kind == PH_ACK_RETRY ?
		    "temporarily unavailable" : "invalid notification");
		n = snprintf((char *)out->body, sizeof(out->body),
		    "<xml><return_code><![CDATA[FAIL]]></return_code>"
		    "<return_msg><![CDATA[%s]]></return_msg></xml>", msg);
		if (n < 0 || (size_t)n >= sizeof(out->body)) {
			memset(out, 0, sizeof(*out));
			out->status = 500;
			return;
		}
		out->body_len = (size_t)n;
		break;
	default:
		out->status = 500;
		return;
	}
	memcpy(out->content_type, "text/xml", sizeof("text/xml"));
}

/* A v2 notification: XML holding a payment, or a refund's result (no
 * sign, an encrypted req_info instead). */
int
wx2_parse_notify(const struct wx_ctx *ctx, const struct ph_request *req,
    struct ph_event *ev, struct ph_diag *diag)
{
	struct ph_kvlist kv;
	int rc;

	if ((rc = ph_xml_parse_flat(req->body, req->body_len, "xml",
	    &wx_xml_limits, &kv, diag)) != PH_OK)
		return rc;
	rc = ph_kvlist_get(&kv, "req_info") != NULL ?
	    wx_refund_notify(ctx, &kv, ev, diag) :
	    wx_pay_notify(ctx, &kv, ev, diag);
	ph_kvlist_free(&kv);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/* ---- Outbound calls: orderquery and closeorder ------------------------- */

/*
 * Both calls send the same five or six fields and get the same kind of
 * answer, so closeorder uses the wx_query_ helpers too.  The answer is
 * trusted in the same order as a notification: return_code (an unsigned
 * FAIL is normal and is only an error), then the signature over every
 * field, then appid and mch_id, then result_code and the business fields.
 */

/* trade_state of an orderquery answer (doc/design/protocols.md §1.6) and the event
 * it becomes. */
static const struct ph_state wx_query_states[] = {
	{ "SUCCESS", PH_EV_PAYMENT_SUCCEEDED },
	/* Refunded after payment: the money did move, so it is a payment
	 * with its transaction; the refund is a separate fact. */
	{ "REFUND", PH_EV_PAYMENT_SUCCEEDED },
	{ "NOTPAY", PH_EV_PAYMENT_PENDING },
	{ "USERPAYING", PH_EV_PAYMENT_PENDING },
	{ "ACCEPT", PH_EV_PAYMENT_PENDING },
	{ "CLOSED", PH_EV_PAYMENT_CLOSED },
	{ "REVOKED", PH_EV_PAYMENT_CLOSED },
	{ "PAYERROR", PH_EV_PAYMENT_FAILED },
	{ NULL, PH_EV__MAX },
};

/* The order id we send, of v2 and v3 alike: WeChat's out_trade_no rules. */
int
wx_order_check(const struct ph_order_ref *order, struct ph_diag *diag)
{
	return ph_order_check(order, WX_ID_MAX, WX_ORDER_EXTRA, "WeChat "
	    "out_trade_no (at most 32 of [A-Za-z0-9_-|*])", diag);
}

/*
 * The start of every answer about an order, v2's and v3's, query and
 * close: its arguments and the order id; ev is emptied.
 */
int
wx_order_answer_ok(const struct wx_ctx *ctx, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	if (ctx == NULL || in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	return wx_order_check(order, diag);
}

int
wx_kv_add(struct ph_kvlist *kv, const char *k, const char *v,
    struct ph_diag *diag)
{
	return ph_kvlist_add(kv, k, strlen(k), v, strlen(v), diag);
}

/*
 * How every v2 request starts: appid, mch_id, and nonce_str, the
 * lower-case hex of 16 random bytes the core provides.
 */
int
wx_request_head(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    struct ph_kvlist *kv, struct ph_diag *diag)
{
	char nonce[2 * WX_NONCE_BYTES + 1];
	int rc;

	ph_hex_lower(cc->random, WX_NONCE_BYTES, nonce);
	if ((rc = wx_kv_add(kv, "appid", ctx->appid, diag)) != PH_OK ||
	    (rc = wx_kv_add(kv, "mch_id", ctx->mch_id, diag)) != PH_OK)
		return rc;
	return wx_kv_add(kv, "nonce_str", nonce, diag);
}

/* sign_type, on HMAC-SHA256 profiles only: absent means MD5. */
int
wx_request_sign_type(const struct wx_ctx *ctx, struct ph_kvlist *kv,
    struct ph_diag *diag)
{
	if (ctx->sign_type == WX_SIGN_MD5)
		return PH_OK;
	return wx_kv_add(kv, "sign_type", wx_sign_names[ctx->sign_type],
	    diag);
}

/* out as a POST of kv to path, signed: sign last, flat XML in kv's order. */
int
wx_request_xml(const struct wx_ctx *ctx, const char *path,
    struct ph_kvlist *kv, struct ph_http_request *out, struct ph_diag *diag)
{
	char sign[2 * PH_SHA256_LEN + 1];
	struct ph_buf body;
	int rc;

	ph_buf_init(&body, sizeof(out->body));
	if ((rc = wx_sign(ctx, kv, sign, diag)) != PH_OK ||
	    (rc = wx_kv_add(kv, "sign", sign, diag)) != PH_OK)
		goto out;
	if ((rc = ph_xml_write_flat("xml", kv, &body)) != PH_OK) {
		ph_fail(diag, rc, "cannot write the request body");
		goto out;
	}
	if ((rc = ph_request_set(out, "POST", path, "text/xml",
	    &body)) != PH_OK)
		ph_fail(diag, rc, "cannot write the request");
out:
	ph_buf_free(&body);
	return rc;
}

/*
 * Builds a signed request: appid, mch_id, nonce_str, out_trade_no,
 * sign_type (HMAC-SHA256 profiles only), sign; flat XML in that order.
 */
static int
wx_query_build(const struct wx_ctx *ctx, const char *path,
    const struct ph_order_ref *order, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag)
{
	struct ph_kvlist kv;
	int rc;

	ph_kvlist_init(&kv, 8);
	if (ctx == NULL || cc == NULL || out == NULL) {
		rc = ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
		goto out;
	}
	memset(out, 0, sizeof(*out));
	if ((rc = wx_order_check(order, diag)) != PH_OK ||
	    (rc = wx_request_head(ctx, cc, &kv, diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "out_trade_no", order->order_id,
	    diag)) != PH_OK ||
	    (rc = wx_request_sign_type(ctx, &kv, diag)) != PH_OK)
		goto out;
	rc = wx_request_xml(ctx, path, &kv, out, diag);
out:
	ph_kvlist_free(&kv);
	return ph_clear_on_fail(rc, out, sizeof(*out));
}

PH_CALL_REQUEST(wx_query_request)
{
	return wx_query_build(p, WX_QUERY_PATH, order, cc, out, diag);
}

PH_CALL_REQUEST(wx_close_request)
{
	return wx_query_build(p, WX_CLOSE_PATH, order, cc, out, diag);
}

/*
 * The signature of an answer.  WeChat signs it with the algorithm of the
 * request, which is the profile's, and usually sends no sign_type: absent
 * is accepted, but one naming another algorithm is refused.  Unsigned is
 * refused.
 */
static int
wx_query_verify(const struct wx_ctx *ctx, struct ph_kvlist *kv,
    const char *what, struct ph_diag *diag)
{
	const char *sign, *claimed;
	int rc, match;

	if ((sign = wx_get(kv, "sign")) == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: the answer is not "
		    "signed", what);
	if ((claimed = wx_get(kv, "sign_type")) != NULL &&
	    strcmp(claimed, wx_sign_names[ctx->sign_type]) != 0)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: sign_type %.32s "
		    "does not match the configured %s", what, claimed,
		    wx_sign_names[ctx->sign_type]);
	if ((rc = wx_check_sign(ctx, kv, sign, &match, diag)) != PH_OK)
		return rc;
	return match ? PH_OK : ph_fail(diag, PH_E_SIGNATURE,
	    "%s: signature mismatch", what);
}

/*
 * Parses and verifies an answer up to result_code.  On PH_OK kv holds
 * the fields (caller frees) and *res_ok says whether result_code was
 * SUCCESS; on error kv is empty.
 */
int
wx_query_parse(const struct wx_ctx *ctx, const struct ph_http_response *in,
    const char *what, struct ph_kvlist *kv, int *res_ok,
    struct ph_diag *diag)
{
	char text[WX_TEXT_MAX + 1];
	const char *v;
	int rc, ret_ok;

	ph_kvlist_init(kv, 0);
	if (in->status != 200)
		return ph_fail(diag, PH_E_PROVIDER, "%s: HTTP status %d",
		    what, in->status);
	if ((rc = ph_xml_parse_flat(in->body, in->body_len, "xml",
	    &wx_answer_limits, kv, diag)) != PH_OK)
		return rc;
	if ((rc = wx_result(kv, "return_code", &ret_ok, diag)) != PH_OK)
		goto fail;
	if (!ret_ok) {
		/* Unsigned as a rule; it only ever becomes an error. */
		ph_diag_text(text, sizeof(text), wx_get(kv, "return_msg"),
		    WX_TEXT_MAX);
		rc = ph_fail(diag, PH_E_PROVIDER, "%s: return_code FAIL: %s",
		    what, text);
		goto fail;
	}
	if ((rc = wx_query_verify(ctx, kv, what, diag)) != PH_OK)
		goto fail;
	if ((v = wx_get(kv, "appid")) == NULL || strcmp(v, ctx->appid)) {
		rc = ph_fail(diag, PH_E_MERCHANT, "%s: appid does not match",
		    what);
		goto fail;
	}
	if ((v = wx_get(kv, "mch_id")) == NULL || strcmp(v, ctx->mch_id)) {
		rc = ph_fail(diag, PH_E_MERCHANT, "%s: mch_id does not match",
		    what);
		goto fail;
	}
	if (wx_get(kv, "sub_mch_id") != NULL ||
	    wx_get(kv, "sub_appid") != NULL) {
		rc = ph_fail(diag, PH_E_MERCHANT, "%s: sub_mch_id/sub_appid: "
		    "service-provider mode is not supported", what);
		goto fail;
	}
	if ((rc = wx_result(kv, "result_code", res_ok, diag)) != PH_OK)
		goto fail;
	return PH_OK;
fail:
	ph_kvlist_free(kv);
	return rc;
}

/* err_code of a signed business failure, validated; "-" when absent. */
int
wx_query_err_code(const struct ph_kvlist *kv, const char **err,
    struct ph_diag *diag)
{
	const char *v = wx_get(kv, "err_code");

	*err = "-";
	if (v == NULL)
		return PH_OK;
	if (!ph_token_valid(v, strlen(v), WX_ID_MAX, WX_ERR_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "err_code: invalid");
	*err = v;
	return PH_OK;
}

/* A business failure the core should retry later. */
int
wx_query_provider_error(const struct ph_kvlist *kv, const char *what,
    const char *err, struct ph_diag *diag)
{
	char text[WX_TEXT_MAX + 1];

	ph_diag_text(text, sizeof(text), wx_get(kv, "err_code_des"),
	    WX_TEXT_MAX);
	return ph_fail(diag, PH_E_PROVIDER, "%s: result_code FAIL, err_code "
	    "%s: %s", what, err, text);
}

/*
 * An event that is not a payment to apply: the order id, a dedup key
 * "<tag>:<order id>:<state>", and the currency (CNY) so the event is well
 * formed.  Nothing else is set.
 */
int
wx_query_event(const struct ph_order_ref *order, enum ph_event_kind kind,
    const char *tag, const char *state, struct ph_event *ev,
    struct ph_diag *diag)
{
	ev->kind = kind;
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id),
	    order->order_id, WX_ORDER_EXTRA, "out_trade_no", diag) != PH_OK)
		return PH_E_FIELD;
	memcpy(ev->currency, "CNY", 4);
	return ph_dedup_key(ev, diag, tag, ev->order_id, state, (char *)NULL);
}

/*
 * A trade_state other than a payment: what the answer says besides is
 * taken when present and valid; out_trade_no, when present, must be the
 * order asked about, and a transaction_id must be valid.
 */
static int
wx_query_other(const struct ph_kvlist *kv, const struct ph_order_ref *order,
    enum ph_event_kind kind, const char *state, struct ph_event *ev,
    struct ph_diag *diag)
{
	const char *v;
	int64_t n;
	int rc;

	if ((v = wx_get(kv, "out_trade_no")) != NULL &&
	    strcmp(v, order->order_id) != 0)
		return ph_fail(diag, PH_E_FIELD, "orderquery: out_trade_no is "
		    "not the order asked about");
	if ((rc = wx_query_event(order, kind, "query", state, ev,
	    diag)) != PH_OK)
		return rc;
	if (wx_get(kv, "transaction_id") != NULL &&
	    (rc = wx_copy_id(ev->txn_id, sizeof(ev->txn_id), kv,
	    "transaction_id", NULL, diag)) != PH_OK)
		return rc;
	if ((v = wx_get(kv, "total_fee")) != NULL &&
	    ph_money_parse_minor(v, strlen(v), &n) == PH_OK)
		ev->amount = n;
	if ((v = wx_get(kv, "fee_type")) != NULL && ph_currency_valid(v))
		memcpy(ev->currency, v, 4);
	if ((v = wx_get(kv, "time_end")) != NULL &&
	    ph_time_parse_compact(v, WX_BEIJING, &n) == PH_OK)
		ev->occurred_at = n;
	return PH_OK;
}

PH_CALL_RESPONSE(wx_query_response)
{
	const struct wx_ctx *ctx = p;
	const struct ph_state *known;
	const char *state, *err;
	struct ph_kvlist kv;
	int rc, res_ok;

	if ((rc = wx_order_answer_ok(ctx, order, in, ev, diag)) != PH_OK)
		return rc;
	if ((rc = wx_query_parse(ctx, in, "orderquery", &kv, &res_ok,
	    diag)) != PH_OK)
		return rc;
	if (!res_ok) {
		if ((rc = wx_query_err_code(&kv, &err, diag)) != PH_OK)
			goto out;
		rc = strcmp(err, "ORDERNOTEXIST") == 0 ?
		    wx_query_event(order, PH_EV_NOT_FOUND, "query", err, ev,
		    diag) : wx_query_provider_error(&kv, "orderquery", err,
		    diag);
		goto out;
	}
	if ((state = wx_get(&kv, "trade_state")) == NULL) {
		rc = ph_fail(diag, PH_E_FIELD, "trade_state: missing");
		goto out;
	}
	if ((known = ph_state_find(wx_query_states, state)) == NULL) {
		rc = ph_fail(diag, PH_E_FIELD, "trade_state: unknown");
		goto out;
	}
	if (known->kind != PH_EV_PAYMENT_SUCCEEDED) {
		rc = wx_query_other(&kv, order, known->kind, known->name, ev,
		    diag);
		goto out;
	}
	/* Paid: exactly what the payment's notification yields, so the
	 * core's dedup sees one fact ("pay:<transaction_id>"). */
	if ((rc = wx_succeeded(&kv, ev, diag)) != PH_OK)
		goto out;
	if (strcmp(ev->order_id, order->order_id) != 0)
		rc = ph_fail(diag, PH_E_FIELD, "orderquery: out_trade_no is "
		    "not the order asked about");
out:
	ph_kvlist_free(&kv);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/*
 * closeorder: PAYMENT_CLOSED when the order is closed now or was before;
 * ORDERPAID is a PAYMENT_SUCCEEDED without transaction or amount, which
 * the core must not apply: it says "query this order"; ORDERNOTEXIST is
 * NOT_FOUND; anything else is an error worth retrying.
 */
PH_CALL_RESPONSE(wx_close_response)
{
	const struct wx_ctx *ctx = p;
	struct ph_kvlist kv;
	const char *err;
	int rc, res_ok;

	if ((rc = wx_order_answer_ok(ctx, order, in, ev, diag)) != PH_OK)
		return rc;
	if ((rc = wx_query_parse(ctx, in, "closeorder", &kv, &res_ok,
	    diag)) != PH_OK)
		return rc;
	if (res_ok) {
		rc = wx_query_event(order, PH_EV_PAYMENT_CLOSED, "close",
		    "CLOSED", ev, diag);
		goto out;
	}
	if ((rc = wx_query_err_code(&kv, &err, diag)) != PH_OK)
		goto out;
	if (strcmp(err, "ORDERCLOSED") == 0)
		rc = wx_query_event(order, PH_EV_PAYMENT_CLOSED, "close", err,
		    ev, diag);
	else if (strcmp(err, "ORDERPAID") == 0)
		rc = wx_query_event(order, PH_EV_PAYMENT_SUCCEEDED, "close",
		    err, ev, diag);
	else if (strcmp(err, "ORDERNOTEXIST") == 0)
		rc = wx_query_event(order, PH_EV_NOT_FOUND, "close", err, ev,
		    diag);
	else
		rc = wx_query_provider_error(&kv, "closeorder", err, diag);
out:
	ph_kvlist_free(&kv);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

