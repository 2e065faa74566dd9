/*
 * Refunds: v2 refund notification, refund requests, bills.
 *
 * API v2 refund result notification (doc/design/protocols.md §1.8, §1.10): the same
 * notify_url, an unsigned outer <xml> with appid, mch_id and req_info,
 * the base64 of AES-256-ECB (PKCS#7) under the 32 ASCII bytes of the
 * lower-case hex MD5 of the APIv2 key.  There is no signature: what
 * vouches for it is that req_info decrypts with this profile's key, is
 * padded correctly and is the <root> document of a refund with sane
 * fields.  Anything less is refused, never guessed at.
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

/* refund_status of a refund notification and the event it becomes. */
static const struct ph_state wx_refund_states[] = {
	{ "SUCCESS", PH_EV_REFUND_SUCCEEDED },
	/* CHANGE: the money could not go back (an abnormal refund, to be
	 * handled by a person at the merchant platform); REFUNDCLOSE:
	 * closed.  Neither refunded anything. */
	{ "CHANGE", PH_EV_REFUND_FAILED },
	{ "REFUNDCLOSE", PH_EV_REFUND_FAILED },
	{ NULL, PH_EV__MAX },
};

/* The req_info key: the 32 ASCII characters of lower-hex MD5(APIv2 key). */
static int
wx_req_info_key(const struct wx_ctx *ctx, unsigned char key[32])
{
	unsigned char md[PH_MD5_LEN];
	char hex[2 * PH_MD5_LEN + 1];
	int rc;

	if ((rc = ph_md5(ctx->key, WX_KEY_LEN, md)) == PH_OK) {
		ph_hex_lower(md, PH_MD5_LEN, hex);
		memcpy(key, hex, 32);
	}
	ph_cleanse(md, sizeof(md));
	ph_cleanse(hex, sizeof(hex));
	return rc;
}

/*
 * base64 -> AES-256-ECB -> PKCS#7.  *plain (plen bytes, NUL after them)
 * is the caller's to cleanse and free.  Any failure is a refusal: this
 * decryption is the notification's only authentication.
 */
static int
wx_req_info_decrypt(const struct wx_ctx *ctx, const char *b64,
    unsigned char **plain, size_t *plen, struct ph_diag *diag)
{
	unsigned char key[32], *ct = NULL, *pt = NULL;
	size_t len = b64 != NULL ? strlen(b64) : 0, ctlen = 0;
	int rc;

	*plain = NULL;
	*plen = 0;
	if (len == 0 || len > WX_REQ_INFO_MAX / 3 * 4 + 4)
		return ph_fail(diag, PH_E_SIGNATURE, "req_info: empty or "
		    "larger than %d bytes", WX_REQ_INFO_MAX);
	if ((ct = malloc(len / 4 * 3 + 1)) == NULL ||
	    (pt = malloc(len / 4 * 3 + WX_AES_BLOCK + 1)) == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto out;
	}
	if (ph_base64_decode(b64, len, ct, len / 4 * 3 + 1, &ctlen) !=
	    PH_OK || ctlen == 0 || ctlen % WX_AES_BLOCK != 0) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "req_info is not base64 of "
		    "whole AES blocks");
		goto out;
	}
	if ((rc = wx_req_info_key(ctx, key)) != PH_OK) {
		ph_fail(diag, rc, "cannot derive the req_info key");
		goto out;
	}
	if ((rc = ph_aes256ecb_decrypt(key, ct, ctlen, pt, plen,
	    diag)) != PH_OK) {
		if (rc == PH_E_SIGNATURE)
			ph_fail(diag, rc, "req_info does not decrypt with this "
			    "profile's key (bad padding)");
		goto out;
	}
	pt[*plen] = '\0';
	*plain = pt;
	pt = NULL;
	rc = PH_OK;
out:
	ph_cleanse(key, sizeof(key));
	if (pt != NULL) {
		ph_cleanse(pt, len / 4 * 3 + WX_AES_BLOCK + 1);
		free(pt);
	}
	free(ct);
	return rc;
}

/* refund_notify_url: sent as notify_url with refunds, when given. */
int
wx_refund_url(const struct ph_conf *conf, struct wx_ctx *ctx,
    struct ph_diag *diag)
{
	const struct ph_conf_value *v = ph_conf_get(conf, "refund_notify_url");
	const char *s;
	size_t n;

	if (v == NULL || !v->present || v->str == NULL || v->str[0] == '\0')
		return PH_OK;
	s = v->str;
	n = strlen(s);
	if (n >= sizeof(ctx->refund_notify_url) ||
	    (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) ||
	    strpbrk(s, "?#") != NULL)
		return ph_fail(diag, PH_E_CONFIG, "refund_notify_url must be an "
		    "http(s) URL of at most %zu bytes without query string",
		    sizeof(ctx->refund_notify_url) - 1);
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    *s == '<' || *s == '>' || *s == '"' || *s == '\'')
			return ph_fail(diag, PH_E_CONFIG, "refund_notify_url: "
			    "spaces, quotes and non-ASCII are not allowed");
	memcpy(ctx->refund_notify_url, v->str, n + 1);
	return PH_OK;
}

/* A required amount in fen from a decrypted refund. */
static int
wx_fen(const struct ph_kvlist *kv, const char *name, int64_t *out,
    struct ph_diag *diag)
{
	const char *v = wx_get(kv, name);

	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "req_info %s: missing", name);
	if (ph_money_parse_minor(v, strlen(v), out) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "req_info %s: invalid", name);
	return PH_OK;
}

/* The decrypted <root> of a refund notification, into ev. */
static int
wx_refund_fields(const struct ph_kvlist *kv, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ph_state *state;
	const char *st, *v;
	int64_t total, n;
	int rc;

	if ((rc = wx_copy_id(ev->order_id, sizeof(ev->order_id), kv,
	    "out_trade_no", WX_ORDER_EXTRA, diag)) != PH_OK ||
	    (rc = wx_copy_id(ev->txn_id, sizeof(ev->txn_id), kv,
	    "transaction_id", NULL, diag)) != PH_OK ||
	    (rc = wx_copy_id(ev->refund_id, sizeof(ev->refund_id), kv,
	    "refund_id", NULL, diag)) != PH_OK)
		return rc;
	/* Our own refund number (payhook's refund id), echoed. */
	if ((v = wx_get(kv, "out_refund_no")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "out_refund_no: missing");
	if ((rc = ph_copy_token(ev->merchant_refund_id,
	    sizeof(ev->merchant_refund_id), v, WX3_REFUND_EXTRA,
	    "out_refund_no", diag)) != PH_OK)
		return rc;
	if ((rc = wx_fen(kv, "refund_fee", &ev->amount, diag)) != PH_OK ||
	    (rc = wx_fen(kv, "total_fee", &total, diag)) != PH_OK)
		return rc;
	if (ev->amount == 0 || ev->amount > total)
		return ph_fail(diag, PH_E_FIELD, "refund_fee %lld is not within "
		    "1..total_fee %lld", (long long)ev->amount,
		    (long long)total);
	/* What the user got back can never exceed what was refunded. */
	if ((v = wx_get(kv, "settlement_refund_fee")) != NULL &&
	    (ph_money_parse_minor(v, strlen(v), &n) != PH_OK ||
	    n > ev->amount))
		return ph_fail(diag, PH_E_FIELD, "settlement_refund_fee: "
		    "invalid");
	if ((st = wx_get(kv, "refund_status")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "refund_status: missing");
	if ((state = ph_state_find(wx_refund_states, st)) == NULL)
		return ph_fail(diag, PH_E_FIELD, "refund_status: unknown");
	ev->kind = state->kind;
	/* A refund in any currency but CNY names it; absent means CNY. */
	if ((v = wx_get(kv, "refund_fee_type")) == NULL &&
	    (v = wx_get(kv, "fee_type")) == NULL)
		v = "CNY";
	if (!ph_currency_valid(v))
		return ph_fail(diag, PH_E_FIELD, "refund_fee_type: invalid");
	memcpy(ev->currency, v, 4);
	v = wx_get(kv, "success_time");
	if (v == NULL && ev->kind == PH_EV_REFUND_SUCCEEDED)
		return ph_fail(diag, PH_E_FIELD, "success_time: missing");
	if (v != NULL &&
	    ph_time_parse_dashed(v, strlen(v), WX_BEIJING,
	    &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "success_time: invalid");
	return ph_dedup_key(ev, diag, "refund", ev->refund_id, st,
	    (char *)NULL);
}

/*
 * A v2 notification carrying req_info: a refund result.  The outer
 * fields are not authenticated, so they only ever refuse (another
 * merchant's, a sub-merchant's, a FAIL, a sign that does not belong).
 */
int
wx_refund_notify(const struct wx_ctx *ctx, const struct ph_kvlist *kv,
    struct ph_event *ev, struct ph_diag *diag)
{
	struct ph_kvlist in;
	unsigned char *plain = NULL;
	size_t plen = 0;
	const char *v;
	int rc, ok;

	ph_kvlist_init(&in, 0);
	if (wx_get(kv, "sign") != NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "a refund notification "
		    "(req_info) is never signed: refusing one that is");
	if ((rc = wx_result(kv, "return_code", &ok, diag)) != PH_OK)
		return rc;
	if (!ok)
		return ph_fail(diag, PH_E_FIELD, "refund notification with "
		    "return_code FAIL");
	if ((v = wx_get(kv, "appid")) == NULL || strcmp(v, ctx->appid) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "appid does not match");
	if ((v = wx_get(kv, "mch_id")) == NULL || strcmp(v, ctx->mch_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "mch_id does not match");
	if (wx_get(kv, "sub_mch_id") != NULL || wx_get(kv, "sub_appid") != NULL)
		return ph_fail(diag, PH_E_MERCHANT, "sub_mch_id/sub_appid: "
		    "service-provider mode is not supported");
	if ((rc = wx_req_info_decrypt(ctx, wx_get(kv, "req_info"), &plain,
	    &plen, diag)) != PH_OK)
		return rc;
	if (ph_xml_parse_flat(plain, plen, "root", &wx_xml_limits, &in,
	    NULL) != PH_OK) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "req_info decrypts, but not "
		    "to a refund <root> document");
		goto out;
	}
	rc = wx_refund_fields(&in, ev, diag);
out:
	ph_kvlist_free(&in);
	ph_cleanse(plain, plen);
	free(plain);
	return rc;
}

/* ---- Refund requests (v2 /secapi/pay/refund, v3 domestic refunds) -------- */

/*
 * err_code of a refused v2 refund that no retry can change: the order
 * is past the refund period, the payer's account is closed or abnormal,
 * the transaction is not refundable, or the refund is refused for good
 * (ERROR: e.g. more than was paid).  Every other code (SYSTEMERROR,
 * BIZERR_NEED_RETRY, NOTENOUGH, FREQUENCY_LIMITED, a signature or
 * parameter error, ...) is "ask again later with the same refund id",
 * which can never refund twice.
 */
static const char *const wx_refund_final[] = {
	"TRADE_OVERDUE", "USER_ACCOUNT_ABNORMAL", "INVALID_TRANSACTIONID",
	"ERROR", NULL
};
/* The same for v3 error codes. */
static const char *const wx3_refund_final[] = {
	"USER_ACCOUNT_ABNORMAL", "INVALID_REQUEST", NULL
};

/* Valid UTF-8 without control characters, at most max bytes. */
static int
wx_text_ok(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k, need;

	if (n > max)
		return 0;
	while (i < n) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			need = 1;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			need = 2;
		else
			return 0;	/* no 4-byte characters at WeChat */
		for (k = 1; k <= need; k++)
			if (i + k >= n || (p[i + k] & 0xc0) != 0x80)
				return 0;
		if (need == 2 && ((p[i] == 0xe0 && p[i + 1] < 0xa0) ||
		    (p[i] == 0xed && p[i + 1] >= 0xa0)))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* What a refund request needs from the core, checked before any byte. */
static int
wx_refund_ref_ok(const struct ph_refund_ref *ref, struct ph_diag *diag)
{
	if (ref == NULL || ref->refund_id == NULL || ref->txn_id == NULL ||
	    ref->currency == NULL || ref->order_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	if (!ph_token_valid(ref->refund_id, strlen(ref->refund_id),
	    WX_REFUND_ID_MAX, WX3_REFUND_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "refund id is not a valid "
		    "out_refund_no (1 to 64 of [A-Za-z0-9_-|*@])");
	if (!ph_token_valid(ref->txn_id, strlen(ref->txn_id), WX_ID_MAX,
	    NULL))
		return ph_fail(diag, PH_E_FIELD, "the payment has no valid "
		    "WeChat transaction_id");
	if (ref->amount <= 0 || ref->payment_amount < ref->amount ||
	    ref->payment_amount > PH_AMOUNT_MAX)
		return ph_fail(diag, PH_E_FIELD, "refund of %lld out of a "
		    "payment of %lld", (long long)ref->amount,
		    (long long)ref->payment_amount);
	if (!ph_currency_valid(ref->currency))
		return ph_fail(diag, PH_E_FIELD, "currency: invalid");
	return PH_OK;
}

/* The reason sent along, shown to the payer: only when it is text. */
static const char *
wx_refund_reason(const struct ph_refund_ref *ref)
{
	if (ref->reason == NULL || ref->reason[0] == '\0' ||
	    !wx_text_ok(ref->reason, WX_REFUND_DESC_MAX) ||
	    strstr(ref->reason, "]]>") != NULL)
		return NULL;
	return ref->reason;
}

/*
 * POST /secapi/pay/refund (the core presents the profile's client
 * certificate): appid, mch_id, nonce_str, sign_type (HMAC-SHA256
 * profiles), transaction_id, out_refund_no (payhook's refund id, the
 * same on every retry: WeChat refunds one out_refund_no once),
 * total_fee, refund_fee, refund_fee_type (not CNY only), refund_desc
 * (when given), notify_url (when configured), sign; flat XML in that
 * order.
 */
static int
wx_refund_request_v2(const struct wx_ctx *ctx, const struct ph_refund_ref *ref,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	char total[24], fee[24];
	const char *why;
	struct ph_kvlist kv;
	int rc;

	ph_kvlist_init(&kv, 16);
	snprintf(total, sizeof(total), "%lld", (long long)ref->payment_amount);
	snprintf(fee, sizeof(fee), "%lld", (long long)ref->amount);
	if ((rc = wx_request_head(ctx, cc, &kv, diag)) != PH_OK ||
	    (rc = wx_request_sign_type(ctx, &kv, diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "transaction_id", ref->txn_id,
	    diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "out_refund_no", ref->refund_id,
	    diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "total_fee", total, diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "refund_fee", fee, diag)) != PH_OK ||
	    (strcmp(ref->currency, "CNY") != 0 && (rc = wx_kv_add(&kv,
	    "refund_fee_type", ref->currency, diag)) != PH_OK) ||
	    ((why = wx_refund_reason(ref)) != NULL &&
	    (rc = wx_kv_add(&kv, "refund_desc", why, diag)) != PH_OK) ||
	    (ctx->refund_notify_url[0] != '\0' && (rc = wx_kv_add(&kv,
	    "notify_url", ctx->refund_notify_url, diag)) != PH_OK))
		goto out;
	rc = wx_request_xml(ctx, WX_REFUND_PATH, &kv, out, diag);
out:
	ph_kvlist_free(&kv);
	return rc;
}

/* The event of a refund answer: ids from the request, the kind given,
 * the amount the answer reports (the core matches it with the refund's:
 * another is raised, not settled). */
static int
wx_refund_event(const struct ph_refund_ref *ref, enum ph_event_kind kind,
    const char *refund_id, const char *state, int64_t amount,
    struct ph_event *ev, struct ph_diag *diag)
{
	ev->kind = kind;
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id), ref->order_id,
	    WX_ORDER_EXTRA, "out_trade_no", diag) != PH_OK ||
	    ph_copy_token(ev->txn_id, sizeof(ev->txn_id), ref->txn_id, NULL,
	    "transaction_id", diag) != PH_OK ||
	    ph_copy_token(ev->merchant_refund_id,
	    sizeof(ev->merchant_refund_id), ref->refund_id, WX3_REFUND_EXTRA,
	    "out_refund_no", diag) != PH_OK)
		return PH_E_FIELD;
	if (refund_id != NULL && ph_copy_token(ev->refund_id,
	    sizeof(ev->refund_id), refund_id, WX3_ID_EXTRA, "refund_id",
	    diag) != PH_OK)
		return PH_E_FIELD;
	ev->amount = amount;
	memcpy(ev->currency, ref->currency, 4);
	return ph_dedup_key(ev, diag, "refund",
	    ev->refund_id[0] != '\0' ? ev->refund_id : ref->refund_id, state,
	    (char *)NULL);
}

/*
 * The answer to a v2 refund.  return_code FAIL (unsigned) and a signed
 * FAIL with a retryable err_code are PH_E_PROVIDER; a signed FAIL with a
 * final err_code is REFUND_FAILED.  A signed SUCCESS must name the
 * refund asked for (out_refund_no, transaction_id; its refund_fee is the
 * event's amount, which the core matches) and is PAYMENT_PENDING: accepted, the result comes by the refund notification
 * (or the next call with the same out_refund_no), unless the answer
 * carries a final refund_status.
 */
static int
wx_refund_response_v2(const struct wx_ctx *ctx,
    const struct ph_refund_ref *ref, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *v, *err, *refund_id;
	const struct ph_state *state;
	struct ph_kvlist kv;
	int64_t n;
	int rc, res_ok;

	if ((rc = wx_query_parse(ctx, in, "refund", &kv, &res_ok,
	    diag)) != PH_OK)
		return rc;
	if (!res_ok) {
		if ((rc = wx_query_err_code(&kv, &err, diag)) != PH_OK)
			goto out;
		if (ph_in(err, wx_refund_final)) {
			/* Why, for the refund's last_error. */
			(void)wx_query_provider_error(&kv, "refund", err, diag);
			rc = wx_refund_event(ref, PH_EV_REFUND_FAILED, NULL, err,
			    ref->amount, ev, diag);
		}
		else
			rc = wx_query_provider_error(&kv, "refund", err, diag);
		goto out;
	}
	if ((v = wx_get(&kv, "out_refund_no")) == NULL ||
	    strcmp(v, ref->refund_id) != 0) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: out_refund_no is not "
		    "the refund asked for");
		goto out;
	}
	if (((v = wx_get(&kv, "transaction_id")) != NULL &&
	    strcmp(v, ref->txn_id) != 0) ||
	    ((v = wx_get(&kv, "out_trade_no")) != NULL &&
	    strcmp(v, ref->order_id) != 0)) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: transaction_id or "
		    "out_trade_no is not the payment asked about");
		goto out;
	}
	if ((v = wx_get(&kv, "refund_fee")) == NULL ||
	    ph_money_parse_minor(v, strlen(v), &n) != PH_OK) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: refund_fee missing or "
		    "invalid");
		goto out;
	}
	refund_id = wx_get(&kv, "refund_id");
	if (refund_id != NULL && !ph_token_valid(refund_id, strlen(refund_id),
	    WX_ID_MAX, NULL)) {
		rc = ph_fail(diag, PH_E_FIELD, "refund_id: invalid");
		goto out;
	}
	/* Not in the documented answer; honoured if WeChat sends it. */
	if ((v = wx_get(&kv, "refund_status")) != NULL) {
		if ((state = ph_state_find(wx_refund_states, v)) != NULL) {
			rc = wx_refund_event(ref, state->kind, refund_id, v,
			    n, ev, diag);
			goto out;
		}
		if (strcmp(v, "PROCESSING") != 0) {
			rc = ph_fail(diag, PH_E_FIELD, "refund_status: "
			    "unknown");
			goto out;
		}
	}
	rc = wx_refund_event(ref, PH_EV_PAYMENT_PENDING, refund_id,
	    "ACCEPTED", n, ev, diag);
out:
	ph_kvlist_free(&kv);
	return rc;
}

/*
 * POST /v3/refund/domestic/refunds, JSON in this order:
 * transaction_id, out_refund_no, reason (when given), notify_url (when
 * configured), amount {refund, total, currency}; signed like a query.
 */
static int
wx3_refund_request(const struct wx_ctx *ctx, const struct ph_refund_ref *ref,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	const char *why = wx_refund_reason(ref);
	json_t *doc = NULL, *amount;
	size_t len;
	int rc = PH_OK;

	if (!wx3_can_sign(ctx, "a refund", diag))
		return PH_E_CONFIG;
	amount = json_pack("{s:I, s:I, s:s}", "refund",
	    (json_int_t)ref->amount, "total", (json_int_t)ref->payment_amount,
	    "currency", ref->currency);
	doc = json_pack("{s:s, s:s}", "transaction_id", ref->txn_id,
	    "out_refund_no", ref->refund_id);
	if (amount == NULL || doc == NULL ||
	    (why != NULL && json_object_set_new(doc, "reason",
	    json_string(why)) != 0) ||
	    (ctx->refund_notify_url[0] != '\0' && json_object_set_new(doc,
	    "notify_url", json_string(ctx->refund_notify_url)) != 0) ||
	    json_object_set(doc, "amount", amount) != 0) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto out;
	}
	len = json_dumpb(doc, (char *)out->body, sizeof(out->body),
	    JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (len == 0 || len > sizeof(out->body)) {
		rc = ph_fail(diag, PH_E_TOOBIG, "request body too long");
		goto out;
	}
	out->body_len = len;
	rc = wx3_request_signed(ctx, cc, "POST", WX3_REFUND_PATH, out, diag);
out:
	json_decref(amount);
	json_decref(doc);
	return rc;
}

/* status of a v3 refund object and the event it becomes. */
static const struct ph_state wx3_refund_states[] = {
	{ "SUCCESS", PH_EV_REFUND_SUCCEEDED },
	{ "PROCESSING", PH_EV_PAYMENT_PENDING },
	{ "CLOSED", PH_EV_REFUND_FAILED },
	{ "ABNORMAL", PH_EV_REFUND_FAILED },
	{ NULL, PH_EV__MAX },
};

/*
 * The answer to a v3 refund or its query.  200: the refund object,
 * signed like every answer, which must be the refund asked for; its
 * status decides.  An error answer is PH_E_PROVIDER, except a refund's
 * code no retry can change, which is REFUND_FAILED only when its
 * signature checks.
 */
static int
wx3_refund_response(const struct wx_ctx *ctx, const struct ph_refund_ref *ref,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	char code[WX3_TEXT_MAX + 1], text[WX3_TEXT_MAX + 1];
	char refund_id[PH_ID_MAX + 1];
	const struct ph_state *state;
	const char *c = NULL, *v;
	json_t *doc = NULL;
	int64_t n;
	int rc;

	if (in->status != 200) {
		wx3_error_of(in, &doc, &c, code, text);
		/* A query's refusal says nothing of the refund asked about. */
		if (!ref->query && in->status >= 400 && in->status < 500 &&
		    ph_in(c, wx3_refund_final)) {
			if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders,
			    in->body, in->body_len, in->now, "refund answer",
			    diag)) == PH_OK) {
				/* Why, for the refund's last_error. */
				(void)ph_fail(diag, PH_E_PROVIDER, "refund: HTTP "
				    "%d, code %s: %s", in->status, code, text);
				rc = wx_refund_event(ref, PH_EV_REFUND_FAILED,
				    NULL, c, ref->amount, ev, diag);
			}
			goto out;
		}
		rc = ph_fail(diag, PH_E_PROVIDER, "refund: HTTP %d, code %s: "
		    "%s", in->status, code, text);
		goto out;
	}
	if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders, in->body,
	    in->body_len, in->now, "refund answer", diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_parse(in->body, in->body_len, &wx3_resource_limits,
	    &doc, diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_get_string(doc, "out_refund_no", WX_REFUND_ID_MAX,
	    &v, NULL, diag)) != PH_OK)
		goto out;
	if (strcmp(v, ref->refund_id) != 0) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: out_refund_no is not "
		    "the refund asked for");
		goto out;
	}
	if (ph_json_lookup(doc, "transaction_id") != NULL &&
	    (ph_json_get_string(doc, "transaction_id", WX_ID_MAX, &v, NULL,
	    NULL) != PH_OK || strcmp(v, ref->txn_id) != 0)) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: transaction_id is not "
		    "the payment asked about");
		goto out;
	}
	if ((rc = ph_json_get_amount(doc, "amount.refund", &n,
	    diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_copy_token(doc, "refund_id", refund_id,
	    sizeof(refund_id), WX3_ID_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_get_string(doc, "status", 32, &v, NULL,
	    diag)) != PH_OK)
		goto out;
	if ((state = ph_state_find(wx3_refund_states, v)) == NULL) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: status unknown");
		goto out;
	}
	if ((rc = wx_refund_event(ref, state->kind, refund_id, state->name,
	    n, ev, diag)) != PH_OK)
		goto out;
	if (ph_json_opt_string(doc, "success_time", 40, &v, NULL,
	    NULL) == PH_OK && v != NULL && wx3_time(v, &ev->occurred_at) !=
	    PH_OK) {
		rc = ph_fail(diag, PH_E_FIELD, "success_time: invalid");
		goto out;
	}
out:
	json_decref(doc);
	return rc;
}

/* ---- Refund queries (v2 /pay/refundquery, v3 GET of the refund) -------- */

/*
 * POST /pay/refundquery: appid, mch_id, nonce_str, sign_type
 * (HMAC-SHA256 profiles), out_refund_no, sign.  WeChat needs no client
 * certificate here; the one the core presents with refund calls is
 * harmless.
 */
static int
wx_refundquery_request_v2(const struct wx_ctx *ctx,
    const struct ph_refund_ref *ref, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag)
{
	struct ph_kvlist kv;
	int rc;

	ph_kvlist_init(&kv, 8);
	if ((rc = wx_request_head(ctx, cc, &kv, diag)) == PH_OK &&
	    (rc = wx_request_sign_type(ctx, &kv, diag)) == PH_OK &&
	    (rc = wx_kv_add(&kv, "out_refund_no", ref->refund_id,
	    diag)) == PH_OK)
		rc = wx_request_xml(ctx, WX_REFUNDQUERY_PATH, &kv, out, diag);
	ph_kvlist_free(&kv);
	return rc;
}

/* Field name_i of a refundquery answer's i-th refund. */
static const char *
wx_refund_nth(const struct ph_kvlist *kv, const char *name, int i)
{
	char key[40];

	snprintf(key, sizeof(key), "%s_%d", name, i);
	return wx_get(kv, key);
}

/*
 * The answer to a v2 refundquery.  A signed SUCCESS lists the refunds
 * asked about (refund_count of them, fields suffixed _0, _1, ...): the
 * one whose out_refund_no is ours must be of the payment asked about
 * (its refund_fee is the event's amount), and its refund_status decides as a notification's would
 * (PROCESSING: still awaited).  Every FAIL is PH_E_PROVIDER, REFUNDNOTEXIST
 * among them: a refund WeChat accepted is never taken for failed because
 * one answer does not find it.
 */
static int
wx_refundquery_response_v2(const struct wx_ctx *ctx,
    const struct ph_refund_ref *ref, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *v, *err, *st, *refund_id;
	const struct ph_state *state;
	struct ph_kvlist kv;
	int64_t count, n;
	int rc, res_ok, i;

	if ((rc = wx_query_parse(ctx, in, "refundquery", &kv, &res_ok,
	    diag)) != PH_OK)
		return rc;
	if (!res_ok) {
		if ((rc = wx_query_err_code(&kv, &err, diag)) == PH_OK)
			rc = wx_query_provider_error(&kv, "refundquery", err,
			    diag);
		goto out;
	}
	if (((v = wx_get(&kv, "transaction_id")) != NULL &&
	    strcmp(v, ref->txn_id) != 0) ||
	    ((v = wx_get(&kv, "out_trade_no")) != NULL &&
	    strcmp(v, ref->order_id) != 0)) {
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: transaction_id or "
		    "out_trade_no is not the payment asked about");
		goto out;
	}
	if ((v = wx_get(&kv, "refund_count")) == NULL ||
	    ph_money_parse_minor(v, strlen(v), &count) != PH_OK ||
	    count > WX_REFUNDQUERY_MAX) {
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: refund_count "
		    "missing or invalid");
		goto out;
	}
	for (i = 0; i < count; i++)
		if ((v = wx_refund_nth(&kv, "out_refund_no", i)) != NULL &&
		    strcmp(v, ref->refund_id) == 0)
			break;
	if (i == count) {
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: the answer does "
		    "not list the refund asked about");
		goto out;
	}
	if ((v = wx_refund_nth(&kv, "refund_fee", i)) == NULL ||
	    ph_money_parse_minor(v, strlen(v), &n) != PH_OK) {
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: refund_fee "
		    "missing or invalid");
		goto out;
	}
	refund_id = wx_refund_nth(&kv, "refund_id", i);
	if (refund_id == NULL || !ph_token_valid(refund_id, strlen(refund_id),
	    WX_ID_MAX, NULL)) {
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: refund_id missing "
		    "or invalid");
		goto out;
	}
	if ((st = wx_refund_nth(&kv, "refund_status", i)) == NULL) {
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: refund_status "
		    "missing");
		goto out;
	}
	if ((state = ph_state_find(wx_refund_states, st)) != NULL)
		rc = wx_refund_event(ref, state->kind, refund_id, st, n, ev,
		    diag);
	else if (strcmp(st, "PROCESSING") == 0)
		rc = wx_refund_event(ref, PH_EV_PAYMENT_PENDING, refund_id, st,
		    n, ev, diag);
	else {
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: refund_status "
		    "unknown");
		goto out;
	}
	if (rc == PH_OK && ev->kind == PH_EV_REFUND_SUCCEEDED &&
	    (v = wx_refund_nth(&kv, "refund_success_time", i)) != NULL &&
	    ph_time_parse_dashed(v, strlen(v), WX_BEIJING,
	    &ev->occurred_at) != PH_OK)
		rc = ph_fail(diag, PH_E_FIELD, "refundquery: "
		    "refund_success_time invalid");
out:
	ph_kvlist_free(&kv);
	return rc;
}

/*
 * GET /v3/refund/domestic/refunds/{out_refund_no}: its answer is the
 * refund object a refund's answer is, read by wx3_refund_response.
 */
static int
wx3_refundquery_request(const struct wx_ctx *ctx,
    const struct ph_refund_ref *ref, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag)
{
	if (!wx3_can_sign(ctx, "a refund query", diag))
		return PH_E_CONFIG;
	return wx3_request_id(ctx, cc, "GET", WX3_REFUND_PATH "/",
	    ref->refund_id, NULL, out, diag);
}

PH_REFUND_REQUEST(wx_refund_request)
{
	const struct wx_ctx *ctx = p;
	int rc;

	if (ctx == NULL || cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(out, 0, sizeof(*out));
	if ((rc = wx_refund_ref_ok(ref, diag)) != PH_OK)
		return rc;
	if (ctx->api_version == 3)
		rc = ref->query ? wx3_refundquery_request(ctx, ref, cc, out,
		    diag) : wx3_refund_request(ctx, ref, cc, out, diag);
	else
		rc = ref->query ? wx_refundquery_request_v2(ctx, ref, cc, out,
		    diag) : wx_refund_request_v2(ctx, ref, cc, out, diag);
	return ph_clear_on_fail(rc, out, sizeof(*out));
}

PH_REFUND_RESPONSE(wx_refund_response)
{
	const struct wx_ctx *ctx = p;
	int rc;

	if (ctx == NULL || in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = wx_refund_ref_ok(ref, diag)) != PH_OK)
		return rc;
	/* v3 answers a refund and its query with the same object. */
	if (ctx->api_version == 3)
		rc = wx3_refund_response(ctx, ref, in, ev, diag);
	else
		rc = ref->query ? wx_refundquery_response_v2(ctx, ref, in, ev,
		    diag) : wx_refund_response_v2(ctx, ref, in, ev, diag);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}
