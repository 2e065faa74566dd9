/*
 * WeChat Pay API v2 payment notifications (XML, MD5 or HMAC-SHA256), and
 * the order query (orderquery) and close (closeorder) calls; and, for
 * profiles with api_version = 3, WeChat Pay API v3 notifications (JSON,
 * RSA-signed headers, AES-256-GCM resource) and order query: the wx3_
 * functions, in their own section below.
 *
 * Order of work, cheapest and least trusting first: a bounded, strict
 * parse of the flat XML; the signature over every received field with
 * the algorithm the profile pins; only then the merchant identity and the
 * business fields.  See README.md for the keys and the quirks.
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

#define WX_KEY_LEN	32	/* an APIv2 key is exactly 32 characters */
#define WX_ID_MAX	32	/* appid, mch_id, out_trade_no, transaction_id */
#define WX_BEIJING	28800	/* time_end is in UTC+8 */

enum wx_sign_type {
	WX_SIGN_MD5,
	WX_SIGN_HMAC_SHA256,
	WX_SIGN__MAX
};

static const char *const wx_sign_names[WX_SIGN__MAX + 1] = {
	[WX_SIGN_MD5] = "MD5",
	[WX_SIGN_HMAC_SHA256] = "HMAC-SHA256",
	[WX_SIGN__MAX] = NULL,
};

/* Parallel to the values the core hands profile_new(). */
enum wx_conf {
	WX_CONF_APPID,
	WX_CONF_MCH_ID,
	WX_CONF_API_KEY_FILE,
	WX_CONF_SIGN_TYPE,
	WX_CONF_API_VERSION,
	WX_CONF_APIV3_KEY_FILE,
	WX_CONF_PLATFORM_CERT_FILES,
	WX_CONF_PLATFORM_PUBLIC_KEY_FILE,
	WX_CONF_PLATFORM_PUBLIC_KEY_ID,
	WX_CONF_MERCHANT_PRIVATE_KEY_FILE,
	WX_CONF_MERCHANT_SERIAL,
	WX_CONF_TIMESTAMP_TOLERANCE_S,
	WX_CONF_REFUND_NOTIFY_URL,
	WX_CONF__MAX
};

static const char *const wx_api_versions[] = { "2", "3", NULL };

static const struct ph_conf_key wx_conf_keys[WX_CONF__MAX + 1] = {
	[WX_CONF_APPID] = { "appid", PH_CONF_STRING, 1, NULL, 0, 0, NULL,
	    "the appid notifications must carry (wx...)" },
	[WX_CONF_MCH_ID] = { "mch_id", PH_CONF_STRING, 1, NULL, 0, 0, NULL,
	    "the merchant id notifications must carry" },
	/*
	 * Keys of one API version are not required by the table, and have
	 * no table default, so that profile_new() can require them for
	 * their version and refuse them on a profile of the other.
	 */
	[WX_CONF_API_KEY_FILE] = { "api_key_file", PH_CONF_SECRET_FILE, 0,
	    NULL, 0, 0, NULL,
	    "v2 (required): file holding the 32-character APIv2 key" },
	[WX_CONF_SIGN_TYPE] = { "sign_type", PH_CONF_ENUM, 0, wx_sign_names,
	    0, 0, NULL,
	    "v2: the only signature type accepted: MD5 (default) or "
	    "HMAC-SHA256" },
	[WX_CONF_API_VERSION] = { "api_version", PH_CONF_ENUM, 0,
	    wx_api_versions, 0, 0, "2",
	    "WeChat Pay API of this merchant account: 2 (XML) or 3 (JSON)" },
	[WX_CONF_APIV3_KEY_FILE] = { "apiv3_key_file", PH_CONF_SECRET_FILE, 0,
	    NULL, 0, 0, NULL,
	    "v3 (required): file holding the 32-byte APIv3 key" },
	[WX_CONF_PLATFORM_CERT_FILES] = { "platform_cert_files",
	    PH_CONF_FILES, 0, NULL, 0, 0, NULL,
	    "v3: WeChat Pay platform certificates (PEM, one per file)" },
	[WX_CONF_PLATFORM_PUBLIC_KEY_FILE] = { "platform_public_key_file",
	    PH_CONF_FILE, 0, NULL, 0, 0, NULL,
	    "v3: the WeChat Pay public key (PEM)" },
	[WX_CONF_PLATFORM_PUBLIC_KEY_ID] = { "platform_public_key_id",
	    PH_CONF_STRING, 0, NULL, 0, 0, NULL,
	    "v3: the id of that public key, PUB_KEY_ID_..." },
	[WX_CONF_MERCHANT_PRIVATE_KEY_FILE] = { "merchant_private_key_file",
	    PH_CONF_SECRET_FILE, 0, NULL, 0, 0, NULL,
	    "v3: private key of the merchant API certificate (PEM), to sign "
	    "queries" },
	[WX_CONF_MERCHANT_SERIAL] = { "merchant_serial", PH_CONF_STRING, 0,
	    NULL, 0, 0, NULL,
	    "v3: serial number (hex) of the merchant API certificate" },
	[WX_CONF_TIMESTAMP_TOLERANCE_S] = { "timestamp_tolerance_s",
	    PH_CONF_INT, 0, NULL, 1, 3600, NULL,
	    "v3: most seconds between Wechatpay-Timestamp and now (default "
	    "300)" },
	[WX_CONF_REFUND_NOTIFY_URL] = { "refund_notify_url", PH_CONF_STRING,
	    0, NULL, 0, 0, NULL,
	    "notify_url sent with refunds (payhook's /notify/<profile>); "
	    "absent: the one set at the merchant platform" },
	[WX_CONF__MAX] = { NULL, 0, 0, NULL, 0, 0, NULL, NULL },
};

static const struct ph_xml_limits wx_xml_limits = {
	.max_bytes = 64 * 1024,
	.max_fields = 128,
	.max_value = 2048,
};

/* Extra characters WeChat allows in out_trade_no. */
#define WX_ORDER_EXTRA "_-|*"
/* err_code values look like SYSTEMERROR or USER_ERR. */
#define WX_ERR_EXTRA "_-"

struct wx_ctx {
	char appid[WX_ID_MAX + 1];
	char mch_id[WX_ID_MAX + 1];
	unsigned char key[WX_KEY_LEN];
	enum wx_sign_type sign_type;
	int api_version;		/* 2 or 3 */
	struct wx3_ctx *v3;		/* api_version 3 only, else NULL */
	char refund_notify_url[257];	/* "" when not configured */
};

/* API v3, in the wx3_ section below. */
static int wx3_version(const struct ph_conf *conf, int *version,
    struct ph_diag *diag);
static int wx3_profile_new(const struct ph_conf *conf, struct wx_ctx *ctx,
    struct ph_diag *diag);
static void wx3_ctx_free(struct wx3_ctx *v3);
static int wx3_parse_notify(const struct wx_ctx *ctx,
    const struct ph_request *req, struct ph_event *ev, struct ph_diag *diag);
static void wx3_ack(enum ph_ack_kind kind, const char *reason,
    struct ph_response *out);
/* Refunds and bills, in their own section below. */
static int wx_refund_url(const struct ph_conf *conf, struct wx_ctx *ctx,
    struct ph_diag *diag);
static int wx_refund_notify(const struct wx_ctx *ctx,
    const struct ph_kvlist *kv, struct ph_event *ev, struct ph_diag *diag);

static void
wx_profile_free(void *p)
{
	struct wx_ctx *ctx = p;

	if (ctx == NULL)
		return;
	wx3_ctx_free(ctx->v3);
	ph_cleanse(ctx->key, sizeof(ctx->key));
	free(ctx);
}

static int
wx_profile_new(const struct ph_conf *conf, void **out, struct ph_diag *diag)
{
	const struct ph_conf_value *appid, *mch_id, *key, *st;
	struct wx_ctx *ctx = NULL;
	const char *st_name;
	size_t i;
	int rc;

	*out = NULL;
	appid = ph_conf_get(conf, "appid");
	mch_id = ph_conf_get(conf, "mch_id");
	key = ph_conf_get(conf, "api_key_file");
	st = ph_conf_get(conf, "sign_type");

	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if (appid == NULL || !appid->present) {
		rc = ph_fail(diag, PH_E_CONFIG, "appid is required");
		goto fail;
	}
	if (ph_copy_token(ctx->appid, sizeof(ctx->appid), appid->str, NULL,
	    "appid", diag) != PH_OK) {
		rc = PH_E_CONFIG;
		goto fail;
	}
	if (mch_id == NULL || !mch_id->present) {
		rc = ph_fail(diag, PH_E_CONFIG, "mch_id is required");
		goto fail;
	}
	if (ph_copy_token(ctx->mch_id, sizeof(ctx->mch_id), mch_id->str,
	    NULL, "mch_id", diag) != PH_OK) {
		rc = PH_E_CONFIG;
		goto fail;
	}

	if ((rc = wx_refund_url(conf, ctx, diag)) != PH_OK)
		goto fail;
	/* An API v3 profile shares appid and mch_id (and the refund
	 * notify_url) and nothing else. */
	if ((rc = wx3_version(conf, &ctx->api_version, diag)) != PH_OK)
		goto fail;
	if (ctx->api_version == 3) {
		if ((rc = wx3_profile_new(conf, ctx, diag)) != PH_OK)
			goto fail;
		*out = ctx;
		return PH_OK;
	}

	if (key == NULL || !key->present || key->blob.data == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "api_key_file is required");
		goto fail;
	}
	/* A wrong key fails every notification later; say so now. */
	if (key->blob.len != WX_KEY_LEN) {
		rc = ph_fail(diag, PH_E_CONFIG, "api_key_file: the APIv2 key "
		    "must be exactly %d characters, the file holds %zu bytes",
		    WX_KEY_LEN, key->blob.len);
		goto fail;
	}
	for (i = 0; i < WX_KEY_LEN; i++)
		if (key->blob.data[i] < 0x21 || key->blob.data[i] > 0x7e) {
			rc = ph_fail(diag, PH_E_CONFIG, "api_key_file: the "
			    "APIv2 key must be printable ASCII without spaces "
			    "(byte %zu is not)", i + 1);
			goto fail;
		}
	memcpy(ctx->key, key->blob.data, WX_KEY_LEN);

	st_name = st != NULL && st->present && st->str != NULL ?
	    st->str : "MD5";
	for (i = 0; i < WX_SIGN__MAX; i++)
		if (strcmp(st_name, wx_sign_names[i]) == 0)
			break;
	if (i == WX_SIGN__MAX) {
		rc = ph_fail(diag, PH_E_CONFIG,
		    "sign_type must be MD5 or HMAC-SHA256");
		goto fail;
	}
	ctx->sign_type = (enum wx_sign_type)i;
	*out = ctx;
	return PH_OK;
fail:
	wx_profile_free(ctx);
	return rc;
}

/* A present, non-empty value; WeChat treats empty values as absent. */
static const char *
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
static int
wx_sign(const struct wx_ctx *ctx, const struct ph_kvlist *kv, char *hex,
    struct ph_diag *diag)
{
	static const char *const skip[] = { "sign", NULL };
	unsigned char md[PH_SHA256_LEN];
	struct ph_buf s;
	int rc;

	ph_buf_init(&s, 2 * wx_xml_limits.max_bytes);
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

static int
wx_verify(const struct wx_ctx *ctx, const struct ph_kvlist *kv,
    struct ph_diag *diag)
{
	char want[2 * PH_SHA256_LEN + 1];
	const char *sign, *claimed;
	int rc;

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
	if ((rc = wx_sign(ctx, kv, want, diag)) != PH_OK)
		return rc;
	rc = ph_ct_equal_nocase(sign, strlen(sign), want, strlen(want)) ?
	    PH_OK : ph_fail(diag, PH_E_SIGNATURE, "signature mismatch");
	ph_cleanse(want, sizeof(want));
	return rc;
}

static int
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
	if ((v = wx_get(kv, "total_fee")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "total_fee: missing");
	if (ph_money_parse_minor(v, strlen(v), &ev->amount) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "total_fee: invalid");
	if ((v = wx_get(kv, "fee_type")) == NULL)
		v = "CNY";
	if (!ph_currency_valid(v))
		return ph_fail(diag, PH_E_FIELD, "fee_type: invalid");
	memcpy(ev->currency, v, 4);
	if ((v = wx_get(kv, "time_end")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "time_end: missing");
	if (ph_time_parse_compact(v, WX_BEIJING, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "time_end: invalid");
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s",
	    ev->txn_id) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
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
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "fail:%s:%s:%s",
	    ev->order_id, ev->txn_id[0] != '\0' ? ev->txn_id : "-", err) >=
	    (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/* "SUCCESS" or "FAIL"; anything else is not a result we understand. */
static int
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

static int
wx_parse_notify(void *p, const struct ph_request *req, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;
	struct ph_kvlist kv;
	const char *v;
	int rc, ret_ok, res_ok = 0;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if (ctx->api_version == 3)
		return wx3_parse_notify(ctx, req, ev, diag);
	if ((rc = ph_xml_parse_flat(req->body, req->body_len, "xml",
	    &wx_xml_limits, &kv, diag)) != PH_OK)
		return rc;
	/* A refund result: no sign, an encrypted req_info instead. */
	if (ph_kvlist_get(&kv, "req_info") != NULL) {
		rc = wx_refund_notify(ctx, &kv, ev, diag);
		goto out;
	}
	if ((rc = wx_verify(ctx, &kv, diag)) != PH_OK)
		goto out;

	/* Verified from here on; now is it ours, and what does it say. */
	if ((v = wx_get(&kv, "appid")) == NULL || strcmp(v, ctx->appid)) {
		rc = ph_fail(diag, PH_E_MERCHANT, "appid does not match");
		goto out;
	}
	if ((v = wx_get(&kv, "mch_id")) == NULL || strcmp(v, ctx->mch_id)) {
		rc = ph_fail(diag, PH_E_MERCHANT, "mch_id does not match");
		goto out;
	}
	/* Service-provider notifications name a sub-merchant this
	 * profile cannot check. */
	if (wx_get(&kv, "sub_mch_id") != NULL ||
	    wx_get(&kv, "sub_appid") != NULL) {
		rc = ph_fail(diag, PH_E_MERCHANT,
		    "sub_mch_id/sub_appid: service-provider mode is not "
		    "supported");
		goto out;
	}
	if ((rc = wx_result(&kv, "return_code", &ret_ok, diag)) != PH_OK)
		goto out;
	if (ret_ok && (rc = wx_result(&kv, "result_code", &res_ok,
	    diag)) != PH_OK)
		goto out;
	rc = ret_ok && res_ok ? wx_succeeded(&kv, ev, diag) :
	    wx_failed(&kv, ev, diag);
out:
	ph_kvlist_free(&kv);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
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

static void
wx_ack(void *p, enum ph_ack_kind kind, const char *reason,
    struct ph_response *out)
{
	static const char ok[] = "<xml><return_code><![CDATA[SUCCESS]]>"
	    "</return_code><return_msg><![CDATA[OK]]></return_msg></xml>";
	const struct wx_ctx *ctx = p;
	char msg[129];
	int n;

	if (ctx != NULL && ctx->api_version == 3) {
		wx3_ack(kind, reason, out);
		return;
	}
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

/* ---- Outbound calls: orderquery and closeorder ------------------------- */

/*
 * Both calls send the same five or six fields and get the same kind of
 * answer, so closeorder uses the wx_query_ helpers too.  The answer is
 * trusted in the same order as a notification: return_code (an unsigned
 * FAIL is normal and is only an error), then the signature over every
 * field, then appid and mch_id, then result_code and the business fields.
 */

#define WX_QUERY_PATH	"/pay/orderquery"
#define WX_CLOSE_PATH	"/pay/closeorder"
#define WX_NONCE_BYTES	16	/* 32 hex characters */
#define WX_TEXT_MAX	128	/* provider text quoted in a diagnostic */

/* trade_state of an orderquery answer (PROTOCOLS.md 1.6) and the event
 * it becomes. */
static const struct {
	const char *name;
	enum ph_event_kind kind;
} wx_query_states[] = {
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

/*
 * Copies provider text for a diagnostic: at most WX_TEXT_MAX bytes,
 * control characters dropped, each non-ASCII character (the XML parser
 * hands over valid UTF-8 only) shown as one '?', since diagnostics are
 * printable ASCII; "-" when nothing is left.
 */
static void
wx_query_text(char *dst, size_t cap, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t n = 0;

	for (; s != NULL && *s != '\0' && n + 1 < cap && n < WX_TEXT_MAX;
	    s++) {
		if (*s >= 0xc0)
			dst[n++] = '?';
		else if (*s >= 0x20 && *s < 0x7f)
			dst[n++] = (char)*s;
	}
	if (n == 0 && cap > 1)
		dst[n++] = '-';
	dst[n] = '\0';
}

/* The order id we send: WeChat's out_trade_no rules. */
static int
wx_query_order_id(const struct ph_order_ref *order, struct ph_diag *diag)
{
	if (order == NULL || order->order_id == NULL ||
	    !ph_token_valid(order->order_id, strlen(order->order_id),
	    WX_ID_MAX, WX_ORDER_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "order id is not a valid "
		    "WeChat out_trade_no (at most 32 of [A-Za-z0-9_-|*])");
	return PH_OK;
}

/*
 * Builds a signed request: appid, mch_id, nonce_str, out_trade_no,
 * sign_type (HMAC-SHA256 profiles only; absent means MD5), sign; flat XML
 * in that order.  The nonce is the lower-case hex of 16 random bytes the
 * core provides.
 */
static int
wx_query_build(const struct wx_ctx *ctx, const char *path,
    const struct ph_order_ref *order, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag)
{
	char nonce[2 * WX_NONCE_BYTES + 1], sign[2 * PH_SHA256_LEN + 1];
	struct ph_kvlist kv;
	struct ph_buf body;
	int rc;

	ph_kvlist_init(&kv, 8);
	ph_buf_init(&body, sizeof(out->body));
	if (ctx == NULL || cc == NULL || out == NULL) {
		rc = ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
		goto out;
	}
	memset(out, 0, sizeof(*out));
	if ((rc = wx_query_order_id(order, diag)) != PH_OK)
		goto out;
	ph_hex_lower(cc->random, WX_NONCE_BYTES, nonce);
	if ((rc = ph_kvlist_add(&kv, "appid", 5, ctx->appid,
	    strlen(ctx->appid), diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&kv, "mch_id", 6, ctx->mch_id,
	    strlen(ctx->mch_id), diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&kv, "nonce_str", 9, nonce, strlen(nonce),
	    diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&kv, "out_trade_no", 12, order->order_id,
	    strlen(order->order_id), diag)) != PH_OK)
		goto out;
	if (ctx->sign_type != WX_SIGN_MD5 &&
	    (rc = ph_kvlist_add(&kv, "sign_type", 9,
	    wx_sign_names[ctx->sign_type],
	    strlen(wx_sign_names[ctx->sign_type]), diag)) != PH_OK)
		goto out;
	if ((rc = wx_sign(ctx, &kv, sign, diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&kv, "sign", 4, sign, strlen(sign),
	    diag)) != PH_OK)
		goto out;
	if ((rc = ph_xml_write_flat("xml", &kv, &body)) != PH_OK) {
		ph_fail(diag, rc, "cannot write the request body");
		goto out;
	}
	memcpy(out->method, "POST", sizeof("POST"));
	memcpy(out->path, path, strlen(path) + 1);
	memcpy(out->content_type, "text/xml", sizeof("text/xml"));
	memcpy(out->body, body.data, body.len);
	out->body_len = body.len;
out:
	ph_kvlist_free(&kv);
	ph_buf_free(&body);
	if (rc != PH_OK && out != NULL)
		memset(out, 0, sizeof(*out));
	return rc;
}

static int
wx_query_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	return wx_query_build(p, WX_QUERY_PATH, order, cc, out, diag);
}

static int
wx_close_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
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
wx_query_verify(const struct wx_ctx *ctx, const struct ph_kvlist *kv,
    const char *what, struct ph_diag *diag)
{
	char want[2 * PH_SHA256_LEN + 1];
	const char *sign, *claimed;
	int rc;

	if ((sign = wx_get(kv, "sign")) == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: the answer is not "
		    "signed", what);
	if ((claimed = wx_get(kv, "sign_type")) != NULL &&
	    strcmp(claimed, wx_sign_names[ctx->sign_type]) != 0)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: sign_type %.32s "
		    "does not match the configured %s", what, claimed,
		    wx_sign_names[ctx->sign_type]);
	if ((rc = wx_sign(ctx, kv, want, diag)) != PH_OK)
		return rc;
	rc = ph_ct_equal_nocase(sign, strlen(sign), want, strlen(want)) ?
	    PH_OK : ph_fail(diag, PH_E_SIGNATURE, "%s: signature mismatch",
	    what);
	ph_cleanse(want, sizeof(want));
	return rc;
}

/*
 * Parses and verifies an answer up to result_code.  On PH_OK kv holds
 * the fields (caller frees) and *res_ok says whether result_code was
 * SUCCESS; on error kv is empty.
 */
static int
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
	    &wx_xml_limits, kv, diag)) != PH_OK)
		return rc;
	if ((rc = wx_result(kv, "return_code", &ret_ok, diag)) != PH_OK)
		goto fail;
	if (!ret_ok) {
		/* Unsigned as a rule; it only ever becomes an error. */
		wx_query_text(text, sizeof(text), wx_get(kv, "return_msg"));
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
static int
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
static int
wx_query_provider_error(const struct ph_kvlist *kv, const char *what,
    const char *err, struct ph_diag *diag)
{
	char text[WX_TEXT_MAX + 1];

	wx_query_text(text, sizeof(text), wx_get(kv, "err_code_des"));
	return ph_fail(diag, PH_E_PROVIDER, "%s: result_code FAIL, err_code "
	    "%s: %s", what, err, text);
}

/*
 * An event that is not a payment to apply: the order id, a dedup key
 * "<tag>:<order id>:<state>", and the currency (CNY) so the event is well
 * formed.  Nothing else is set.
 */
static int
wx_query_event(const struct ph_order_ref *order, enum ph_event_kind kind,
    const char *tag, const char *state, struct ph_event *ev,
    struct ph_diag *diag)
{
	ev->kind = kind;
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id),
	    order->order_id, WX_ORDER_EXTRA, "out_trade_no", diag) != PH_OK)
		return PH_E_FIELD;
	memcpy(ev->currency, "CNY", 4);
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "%s:%s:%s", tag,
	    ev->order_id, state) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
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

static int
wx_query_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;
	const char *state, *err;
	struct ph_kvlist kv;
	int rc, res_ok;
	size_t i;

	if (ctx == NULL || in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = wx_query_order_id(order, diag)) != PH_OK)
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
	for (i = 0; wx_query_states[i].name != NULL; i++)
		if (strcmp(state, wx_query_states[i].name) == 0)
			break;
	if (wx_query_states[i].name == NULL) {
		rc = ph_fail(diag, PH_E_FIELD, "trade_state: unknown");
		goto out;
	}
	if (wx_query_states[i].kind != PH_EV_PAYMENT_SUCCEEDED) {
		rc = wx_query_other(&kv, order, wx_query_states[i].kind,
		    wx_query_states[i].name, ev, diag);
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
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/*
 * closeorder: PAYMENT_CLOSED when the order is closed now or was before;
 * ORDERPAID is a PAYMENT_SUCCEEDED without transaction or amount, which
 * the core must not apply: it says "query this order"; ORDERNOTEXIST is
 * NOT_FOUND; anything else is an error worth retrying.
 */
static int
wx_close_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;
	struct ph_kvlist kv;
	const char *err;
	int rc, res_ok;

	if (ctx == NULL || in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = wx_query_order_id(order, diag)) != PH_OK)
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
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* ---- WeChat Pay API v3 (JSON, RSA-signed headers, AES-256-GCM) ---------- */

/*
 * Profiles with api_version = 3.  A notification is trusted in this order,
 * cheapest and least trusting first: the body bound; the Wechatpay-*
 * headers, each exactly once; the timestamp within timestamp_tolerance_s
 * of now; the platform key named by Wechatpay-Serial, looked up only among
 * the configured ones (never fetched, never taken from the message); the
 * RSA-SHA256 signature over "timestamp\nnonce\nbody\n" of the raw body; a
 * strict parse of the envelope; AES-256-GCM decryption of resource with
 * the APIv3 key (a bad tag refuses the whole notification, nothing of the
 * plaintext is looked at); a strict parse of the plaintext; its mchid and
 * appid; then the business fields, always from the decrypted object,
 * never from the clear-text event_type or summary.  A query answer goes
 * through the same signature check.
 */

#define WX3_BODY_MAX		(64 * 1024)
#define WX3_KEY_LEN		32	/* the APIv3 key */
#define WX3_KEYS_MAX		8	/* platform keys at once */
#define WX3_SERIAL_MAX		64
#define WX3_NONCE_MAX		64
#define WX3_TS_DIGITS		12
#define WX3_SIG_MAX		512	/* RSA-4096 */
#define WX3_GCM_IV_LEN		12
#define WX3_AAD_MAX		256
#define WX3_TOLERANCE_DEF	300
#define WX3_NONCE_BYTES		16	/* 32 upper-case hex characters */
#define WX3_TEXT_MAX		96	/* provider text in a diagnostic */
#define WX3_SCHEME		"WECHATPAY2-SHA256-RSA2048"
#define WX3_PUB_KEY_PREFIX	"PUB_KEY_ID_"
#define WX3_QUERY_PATH		"/v3/pay/transactions/out-trade-no/"
/* Notification ids ("EV-2018022511223320873"), refund ids, event types. */
#define WX3_ID_EXTRA		"_-"
#define WX3_TYPE_EXTRA		"._"
/* out_refund_no: [0-9A-Za-z_-|*@]. */
#define WX3_REFUND_EXTRA	"_-|*@"

/* The envelope is an object holding one object; the decrypted
 * transaction nests promotion_detail[].goods_detail[] (depth 5). */
static const struct ph_json_limits wx3_envelope_limits = { WX3_BODY_MAX, 4 };
static const struct ph_json_limits wx3_resource_limits = { WX3_BODY_MAX, 8 };

struct wx3_key {
	char serial[WX3_SERIAL_MAX + 1];	/* as Wechatpay-Serial has it */
	const struct ph_key *key;	/* the certificate's, or pubkey */
	struct ph_key *pubkey;		/* the public key; NULL for a cert */
	struct ph_cert *cert;		/* certificate; NULL for the key */
	int64_t not_before, not_after;	/* the certificate's */
};

struct wx3_ctx {
	unsigned char apiv3_key[WX3_KEY_LEN];
	struct wx3_key keys[WX3_KEYS_MAX];
	size_t nkeys;
	int64_t tolerance;
	struct ph_key *merchant_key;		/* NULL: no outbound calls */
	char merchant_serial[WX3_SERIAL_MAX + 1];
};

/* trade_state of a decrypted transaction and the event it becomes. */
static const struct {
	const char *name;
	enum ph_event_kind kind;
} wx3_trade_states[] = {
	{ "SUCCESS", PH_EV_PAYMENT_SUCCEEDED },
	/* Refunded after payment: the money did move; the refund is a
	 * separate fact. */
	{ "REFUND", PH_EV_PAYMENT_SUCCEEDED },
	{ "NOTPAY", PH_EV_PAYMENT_PENDING },
	{ "USERPAYING", PH_EV_PAYMENT_PENDING },
	{ "CLOSED", PH_EV_PAYMENT_CLOSED },
	{ "REVOKED", PH_EV_PAYMENT_FAILED },
	{ "PAYERROR", PH_EV_PAYMENT_FAILED },
	{ NULL, PH_EV__MAX },
};

/* The v3-only and v2-only configuration keys, for the cross checks. */
static const char *const wx3_only_keys[] = {
	"apiv3_key_file", "platform_cert_files", "platform_public_key_file",
	"platform_public_key_id", "merchant_private_key_file",
	"merchant_serial", "timestamp_tolerance_s", NULL
};
static const char *const wx3_v2_only_keys[] = {
	"api_key_file", "sign_type", NULL
};

/* Refuses any of names given on this profile. */
static int
wx3_refuse_keys(const struct ph_conf *conf, const char *const *names,
    int version, struct ph_diag *diag)
{
	const struct ph_conf_value *v;
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if ((v = ph_conf_get(conf, names[i])) != NULL && v->present)
			return ph_fail(diag, PH_E_CONFIG, "%s is an API v%d "
			    "key but this profile has api_version = %d",
			    names[i], version == 2 ? 3 : 2, version);
	return PH_OK;
}

/*
 * api_version: "2" (the default) or "3".  The keys of the other version
 * are refused rather than ignored: a v3 key on a v2 profile (or the
 * reverse) means the profile is not what its author thinks.
 */
static int
wx3_version(const struct ph_conf *conf, int *version, struct ph_diag *diag)
{
	const struct ph_conf_value *v = ph_conf_get(conf, "api_version");

	*version = 2;
	if (v != NULL && v->present && v->str != NULL) {
		if (strcmp(v->str, "3") == 0)
			*version = 3;
		else if (strcmp(v->str, "2") != 0)
			return ph_fail(diag, PH_E_CONFIG,
			    "api_version must be 2 or 3");
	}
	return wx3_refuse_keys(conf, *version == 2 ? wx3_only_keys :
	    wx3_v2_only_keys, *version, diag);
}

static void
wx3_key_clear(struct wx3_key *k)
{
	ph_key_free(k->pubkey);
	ph_cert_free(k->cert);
	memset(k, 0, sizeof(*k));
}

static void
wx3_ctx_free(struct wx3_ctx *v3)
{
	size_t i;

	if (v3 == NULL)
		return;
	for (i = 0; i < v3->nkeys; i++)
		wx3_key_clear(&v3->keys[i]);
	ph_key_free(v3->merchant_key);
	ph_cleanse(v3, sizeof(*v3));
	free(v3);
}

/*
 * A platform certificate, one per file; its serial as WeChat writes it in
 * Wechatpay-Serial: upper-case hex without leading zeros, as the official
 * SDKs print it (Java BigInteger.toString(16), Go %X).
 */
static int
wx3_load_cert(const struct ph_blob *b, struct wx3_key *k,
    struct ph_diag *diag)
{
	static const char what[] = "platform_cert_files";
	size_t n;
	int rc;

	if ((rc = ph_cert_load(b->data, b->len, &k->cert, 1, &n, what,
	    diag)) != PH_OK)
		return rc == PH_E_NOMEM ? rc : PH_E_CONFIG;
	if ((k->key = ph_cert_key(k->cert)) == NULL)
		rc = ph_fail(diag, PH_E_CONFIG, "%s: not an RSA key of %d bits "
		    "or more", what, PH_RSA_MIN_BITS);
	else if ((rc = ph_cert_serial(k->cert, 1, k->serial,
	    sizeof(k->serial))) != PH_OK)
		rc = ph_fail(diag, rc == PH_E_NOMEM ? rc : PH_E_CONFIG, "%s: a "
		    "serial number that is zero, negative or longer than %zu "
		    "hex digits", what, sizeof(k->serial) - 1);
	else if (ph_cert_validity(k->cert, &k->not_before,
	    &k->not_after) != PH_OK)
		rc = ph_fail(diag, PH_E_CONFIG, "%s: unreadable dates", what);
	if (rc != PH_OK)
		wx3_key_clear(k);
	return rc;
}

static int
wx3_load_pubkey(const struct ph_blob *b, const char *id, struct wx3_key *k,
    struct ph_diag *diag)
{
	size_t n = strlen(id);
	int rc;

	if (n <= strlen(WX3_PUB_KEY_PREFIX) || n > WX3_SERIAL_MAX ||
	    strncmp(id, WX3_PUB_KEY_PREFIX, strlen(WX3_PUB_KEY_PREFIX)) != 0 ||
	    !ph_token_valid(id, n, WX3_SERIAL_MAX, "_"))
		return ph_fail(diag, PH_E_CONFIG, "platform_public_key_id must "
		    "be PUB_KEY_ID_ followed by letters and digits (at most %d "
		    "characters in all)", WX3_SERIAL_MAX);
	if ((rc = ph_key_load(b, PH_KEY_PUBLIC, 0, "platform_public_key_file",
	    &k->pubkey, diag)) != PH_OK)
		return rc;
	k->key = k->pubkey;
	memcpy(k->serial, id, n + 1);
	return PH_OK;
}

static int
wx3_add_key(struct wx3_ctx *v3, const struct wx3_key *k,
    struct ph_diag *diag)
{
	size_t i;

	for (i = 0; i < v3->nkeys; i++)
		if (strcmp(v3->keys[i].serial, k->serial) == 0)
			return ph_fail(diag, PH_E_CONFIG, "platform key %s is "
			    "configured twice", k->serial);
	if (v3->nkeys == WX3_KEYS_MAX)
		return ph_fail(diag, PH_E_CONFIG, "more than %d platform keys",
		    WX3_KEYS_MAX);
	v3->keys[v3->nkeys++] = *k;
	return PH_OK;
}

/* A value given in the profile (and not only declared). */
static const struct ph_conf_value *
wx3_conf(const struct ph_conf *conf, const char *name)
{
	const struct ph_conf_value *v = ph_conf_get(conf, name);

	return v != NULL && v->present ? v : NULL;
}

static int
wx3_profile_new(const struct ph_conf *conf, struct wx_ctx *ctx,
    struct ph_diag *diag)
{
	const struct ph_conf_value *key, *certs, *pubf, *pubid, *priv, *ser,
	    *tol;
	struct wx3_ctx *v3;
	struct wx3_key k;
	size_t i;
	int rc;

	if ((v3 = calloc(1, sizeof(*v3))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	key = wx3_conf(conf, "apiv3_key_file");
	certs = wx3_conf(conf, "platform_cert_files");
	pubf = wx3_conf(conf, "platform_public_key_file");
	pubid = wx3_conf(conf, "platform_public_key_id");
	priv = wx3_conf(conf, "merchant_private_key_file");
	ser = wx3_conf(conf, "merchant_serial");
	tol = wx3_conf(conf, "timestamp_tolerance_s");

	if (key == NULL || key->blob.data == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "apiv3_key_file is required "
		    "with api_version = 3");
		goto fail;
	}
	/* Checked now: a wrong key would fail every notification later. */
	if (key->blob.len != WX3_KEY_LEN) {
		rc = ph_fail(diag, PH_E_CONFIG, "apiv3_key_file: the APIv3 key "
		    "must be exactly %d bytes, the file holds %zu", WX3_KEY_LEN,
		    key->blob.len);
		goto fail;
	}
	for (i = 0; i < WX3_KEY_LEN; i++)
		if (key->blob.data[i] < 0x21 || key->blob.data[i] > 0x7e) {
			rc = ph_fail(diag, PH_E_CONFIG, "apiv3_key_file: the "
			    "APIv3 key must be printable ASCII without spaces "
			    "(byte %zu is not)", i + 1);
			goto fail;
		}
	memcpy(v3->apiv3_key, key->blob.data, WX3_KEY_LEN);

	v3->tolerance = WX3_TOLERANCE_DEF;
	if (tol != NULL) {
		if (tol->num < 1 || tol->num > 3600) {
			rc = ph_fail(diag, PH_E_CONFIG, "timestamp_tolerance_s "
			    "must be from 1 to 3600");
			goto fail;
		}
		v3->tolerance = tol->num;
	}

	for (i = 0; certs != NULL && i < certs->nfiles; i++) {
		memset(&k, 0, sizeof(k));
		if ((rc = wx3_load_cert(&certs->files[i], &k, diag)) != PH_OK)
			goto fail;
		if ((rc = wx3_add_key(v3, &k, diag)) != PH_OK) {
			wx3_key_clear(&k);
			goto fail;
		}
	}
	if ((pubf == NULL) != (pubid == NULL)) {
		rc = ph_fail(diag, PH_E_CONFIG, "platform_public_key_file and "
		    "platform_public_key_id go together");
		goto fail;
	}
	if (pubf != NULL) {
		memset(&k, 0, sizeof(k));
		if ((rc = wx3_load_pubkey(&pubf->blob, pubid->str, &k,
		    diag)) != PH_OK)
			goto fail;
		if ((rc = wx3_add_key(v3, &k, diag)) != PH_OK) {
			wx3_key_clear(&k);
			goto fail;
		}
	}
	if (v3->nkeys == 0) {
		rc = ph_fail(diag, PH_E_CONFIG, "api_version = 3 needs "
		    "platform_cert_files, or platform_public_key_file with "
		    "platform_public_key_id, to verify WeChat Pay's "
		    "signatures");
		goto fail;
	}

	if ((priv == NULL) != (ser == NULL)) {
		rc = ph_fail(diag, PH_E_CONFIG, "merchant_private_key_file and "
		    "merchant_serial go together");
		goto fail;
	}
	if (priv != NULL) {
		if (ser->str == NULL || strlen(ser->str) > WX3_SERIAL_MAX ||
		    !ph_token_valid(ser->str, strlen(ser->str),
		    WX3_SERIAL_MAX, NULL) ||
		    strspn(ser->str, "0123456789ABCDEFabcdef") !=
		    strlen(ser->str)) {
			rc = ph_fail(diag, PH_E_CONFIG, "merchant_serial must "
			    "be the hex serial number of the merchant API "
			    "certificate");
			goto fail;
		}
		memcpy(v3->merchant_serial, ser->str, strlen(ser->str) + 1);
		if ((rc = ph_key_load(&priv->blob, PH_KEY_PRIVATE, 0,
		    "merchant_private_key_file", &v3->merchant_key,
		    diag)) != PH_OK)
			goto fail;
	}
	ctx->v3 = v3;
	return PH_OK;
fail:
	wx3_ctx_free(v3);
	return rc;
}

/* ---- v3 signatures ------------------------------------------------------ */

/* The one value of a header (names compared without case); a header
 * sent twice is ambiguous and refused. */
static int
wx3_header(const struct ph_header *h, size_t nh, const char *name,
    const char *what, const char **value, struct ph_diag *diag)
{
	size_t i;

	*value = NULL;
	for (i = 0; h != NULL && i < nh; i++) {
		if (h[i].name == NULL || h[i].value == NULL ||
		    strcasecmp(h[i].name, name) != 0)
			continue;
		if (*value != NULL)
			return ph_fail(diag, PH_E_SIGNATURE, "%s: %s sent more "
			    "than once", what, name);
		*value = h[i].value;
	}
	if (*value == NULL || **value == '\0')
		return ph_fail(diag, PH_E_SIGNATURE, "%s: %s missing", what,
		    name);
	return PH_OK;
}

/* Lines joined as WeChat signs them: each one followed by "\n". */
struct wx3_line {
	const void *p;
	size_t n;
};

static int
wx3_message(const struct wx3_line *l, size_t n, struct ph_buf *msg)
{
	size_t i;

	ph_buf_append(msg, "", 0);
	for (i = 0; i < n; i++) {
		ph_buf_append(msg, l[i].p, l[i].n);
		ph_buf_append(msg, "\n", 1);
	}
	return msg->err;
}

/* base64(RSA-SHA256, PKCS#1 v1.5, of msg) appended to out. */
static int
wx3_rsa_sign(const struct ph_key *key, const void *msg, size_t len,
    struct ph_buf *out, struct ph_diag *diag)
{
	if (key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "merchant_private_key_file "
		    "and merchant_serial are needed to sign requests");
	return ph_rsa_sign(key, "SHA256", msg, len, out, diag);
}

/* The signature of lines (each ending in "\n"), base64, into sig. */
static int
wx3_sign_lines(const struct wx3_ctx *v3, const struct wx3_line *l, size_t n,
    struct ph_buf *sig, struct ph_diag *diag)
{
	struct ph_buf msg;
	int rc;

	ph_buf_init(&msg, PH_HTTP_BODY_MAX + 4096);
	if ((rc = wx3_message(l, n, &msg)) != PH_OK)
		rc = ph_fail(diag, rc, "cannot build the sign string");
	else
		rc = wx3_rsa_sign(v3->merchant_key, msg.data, msg.len, sig,
		    diag);
	ph_buf_free(&msg);
	return rc;
}

/* A decimal of 1..12 digits, no sign. */
static int
wx3_timestamp(const char *s, int64_t *out)
{
	size_t i, n = strlen(s);
	int64_t v = 0;

	if (n == 0 || n > WX3_TS_DIGITS)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

/*
 * Verifies the Wechatpay-* signature of a notification or an answer:
 * PH_OK only when the platform key the configuration holds under
 * Wechatpay-Serial signed "timestamp\nnonce\nbody\n" within the
 * tolerance of now.  Signature probes (WECHATPAY/SIGNTEST/...) are not
 * base64 and fail like any other bad signature.
 */
static int
wx3_verify(const struct wx3_ctx *v3, const struct ph_header *h, size_t nh,
    const unsigned char *body, size_t len, int64_t now, const char *what,
    struct ph_diag *diag)
{
	const char *ts, *nonce, *sig64, *serial, *type;
	const struct wx3_key *k = NULL;
	unsigned char sig[WX3_SIG_MAX];
	struct wx3_line lines[3];
	struct ph_buf msg;
	size_t siglen = 0, i;
	int64_t t, skew;
	int rc;

	if ((rc = wx3_header(h, nh, "Wechatpay-Timestamp", what, &ts,
	    diag)) != PH_OK ||
	    (rc = wx3_header(h, nh, "Wechatpay-Nonce", what, &nonce,
	    diag)) != PH_OK ||
	    (rc = wx3_header(h, nh, "Wechatpay-Signature", what, &sig64,
	    diag)) != PH_OK ||
	    (rc = wx3_header(h, nh, "Wechatpay-Serial", what, &serial,
	    diag)) != PH_OK)
		return rc;
	/* Optional, but when sent it must name the one scheme we verify. */
	rc = wx3_header(h, nh, "Wechatpay-Signature-Type", what, &type, NULL);
	if (type != NULL && (rc != PH_OK || strcmp(type, WX3_SCHEME) != 0))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: "
		    "Wechatpay-Signature-Type %.40s is not %s", what, type,
		    WX3_SCHEME);
	if (!wx3_timestamp(ts, &t))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Timestamp "
		    "is not unix seconds", what);
	skew = t > now ? t - now : now - t;
	if (skew > v3->tolerance)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Timestamp "
		    "%lld is %lld s from now, more than %lld s", what,
		    (long long)t, (long long)skew, (long long)v3->tolerance);
	if (!ph_token_valid(nonce, strlen(nonce), WX3_NONCE_MAX, WX3_ID_EXTRA))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Nonce is "
		    "invalid", what);
	for (i = 0; i < v3->nkeys; i++)
		if (strcmp(v3->keys[i].serial, serial) == 0) {
			k = &v3->keys[i];
			break;
		}
	if (k == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: unknown "
		    "Wechatpay-Serial %.64s: no configured platform "
		    "certificate or public key has it", what, serial);
	if (k->cert != NULL && (now < k->not_before || now >= k->not_after))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: platform certificate "
		    "%s is not valid now", what, k->serial);
	if (ph_base64_decode(sig64, strlen(sig64), sig, sizeof(sig),
	    &siglen) != PH_OK || siglen == 0 || siglen != ph_key_size(k->key))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Signature "
		    "is not a base64 RSA signature for key %s", what,
		    k->serial);

	lines[0].p = ts;
	lines[0].n = strlen(ts);
	lines[1].p = nonce;
	lines[1].n = strlen(nonce);
	lines[2].p = body != NULL ? (const void *)body : "";
	lines[2].n = body != NULL ? len : 0;
	ph_buf_init(&msg, WX3_BODY_MAX + 128);
	if ((rc = wx3_message(lines, 3, &msg)) != PH_OK) {
		ph_fail(diag, rc, "%s: body larger than %d bytes", what,
		    WX3_BODY_MAX);
		goto out;
	}
	if (ph_rsa_verify(k->key, "SHA256", msg.data, msg.len, sig, siglen,
	    diag) != PH_OK) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "%s: signature mismatch "
		    "(platform key %s)", what, k->serial);
		goto out;
	}
	rc = PH_OK;
out:
	ph_buf_free(&msg);
	return rc;
}

/* ---- v3 resource decryption -------------------------------------------- */

/*
 * AEAD_AES_256_GCM (RFC 5116) with the APIv3 key: IV = the 12 bytes of
 * resource.nonce, AAD = resource.associated_data (fed even when empty),
 * ciphertext = base64 of data || 16-byte tag.  *plain (plen bytes, NUL
 * after them) is the caller's to cleanse and free; nothing is returned
 * unless the tag checked.
 */
static int
wx3_decrypt(const struct wx3_ctx *v3, const struct json_t *res,
    unsigned char **plain, size_t *plen, struct ph_diag *diag)
{
	const char *alg, *iv, *aad, *ct64;
	size_t ivlen, aadlen, ct64len, ctlen = 0;
	unsigned char *ct = NULL, *pt = NULL;
	int rc;

	*plain = NULL;
	*plen = 0;
	if ((rc = ph_json_get_string(res, "algorithm", 32, &alg, NULL,
	    diag)) != PH_OK)
		return rc;
	if (strcmp(alg, "AEAD_AES_256_GCM") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "resource.algorithm "
		    "%.32s is not AEAD_AES_256_GCM", alg);
	if ((rc = ph_json_get_string(res, "nonce", 64, &iv, &ivlen,
	    diag)) != PH_OK ||
	    (rc = ph_json_get_string(res, "associated_data", WX3_AAD_MAX,
	    &aad, &aadlen, diag)) != PH_OK ||
	    (rc = ph_json_get_string(res, "ciphertext", WX3_BODY_MAX, &ct64,
	    &ct64len, diag)) != PH_OK)
		return rc;
	if (ivlen != WX3_GCM_IV_LEN)
		return ph_fail(diag, PH_E_FIELD, "resource.nonce: %zu bytes, "
		    "not %d", ivlen, WX3_GCM_IV_LEN);
	if ((ct = malloc(ct64len / 4 * 3 + 1)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if (ph_base64_decode(ct64, ct64len, ct, ct64len / 4 * 3 + 1,
	    &ctlen) != PH_OK) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "resource.ciphertext is "
		    "not base64");
		goto out;
	}
	if (ctlen <= PH_GCM_TAG_LEN) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "resource.ciphertext: %zu "
		    "bytes, shorter than data and a 16-byte tag", ctlen);
		goto out;
	}
	if ((pt = malloc(ctlen + 1)) == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = ph_aes256gcm_decrypt(v3->apiv3_key,
	    (const unsigned char *)iv, ivlen, aad, aadlen, ct, ctlen, pt, plen,
	    diag)) != PH_OK) {
		if (rc == PH_E_SIGNATURE)
			ph_fail(diag, rc, "resource: AES-256-GCM authentication "
			    "failed (wrong APIv3 key, or the ciphertext, tag, "
			    "nonce or associated_data changed)");
		goto out;
	}
	pt[*plen] = '\0';
	*plain = pt;
	pt = NULL;
	rc = PH_OK;
out:
	if (pt != NULL) {
		ph_cleanse(pt, ctlen + 1);
		free(pt);
	}
	free(ct);
	return rc;
}

/* ---- v3 business fields ------------------------------------------------ */

/*
 * RFC 3339 as WeChat writes it, "2018-06-08T10:34:56+08:00": upper-case
 * T, an offset or Z, optional fractional seconds (dropped).
 */
static int
wx3_time(const char *s, int64_t *out)
{
	char compact[15];
	const char *p;
	long off = 0;
	int i;

	if (s == NULL || strnlen(s, 20) < 20 || s[4] != '-' || s[7] != '-' ||
	    s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return PH_E_FIELD;
	memcpy(compact, s, 4);
	memcpy(compact + 4, s + 5, 2);
	memcpy(compact + 6, s + 8, 2);
	memcpy(compact + 8, s + 11, 2);
	memcpy(compact + 10, s + 14, 2);
	memcpy(compact + 12, s + 17, 2);
	compact[14] = '\0';
	p = s + 19;
	if (*p == '.') {
		for (i = 0, p++; *p >= '0' && *p <= '9' && i < 10; p++, i++)
			continue;
		if (i == 0 || i > 9)
			return PH_E_FIELD;
	}
	if (p[0] == 'Z' && p[1] == '\0')
		off = 0;
	else if ((p[0] == '+' || p[0] == '-') && strnlen(p, 7) == 6 &&
	    p[3] == ':' && p[1] >= '0' && p[1] <= '2' && p[2] >= '0' &&
	    p[2] <= '9' && p[4] >= '0' && p[4] <= '5' && p[5] >= '0' &&
	    p[5] <= '9') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
		    ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
		if (off >= 86400)
			return PH_E_FIELD;
		if (p[0] == '-')
			off = -off;
	} else
		return PH_E_FIELD;
	return ph_time_parse_compact(compact, off, out);
}

/* mchid (and appid for transactions) must be the profile's; a
 * service-provider object names a sub-merchant we cannot check. */
static int
wx3_merchant(const struct wx_ctx *ctx, const struct json_t *o,
    int with_appid, struct ph_diag *diag)
{
	const char *v;

	if (ph_json_get_string(o, "mchid", WX_ID_MAX, &v, NULL, NULL) !=
	    PH_OK || strcmp(v, ctx->mch_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "mchid does not match");
	if (with_appid && (ph_json_get_string(o, "appid", WX_ID_MAX, &v, NULL,
	    NULL) != PH_OK || strcmp(v, ctx->appid) != 0))
		return ph_fail(diag, PH_E_MERCHANT, "appid does not match");
	if (ph_json_lookup(o, "sp_mchid") != NULL ||
	    ph_json_lookup(o, "sub_mchid") != NULL ||
	    ph_json_lookup(o, "sp_appid") != NULL ||
	    ph_json_lookup(o, "sub_appid") != NULL)
		return ph_fail(diag, PH_E_MERCHANT, "sp_mchid/sub_mchid: "
		    "service-provider mode is not supported");
	return PH_OK;
}

/* WeChat ids: out_trade_no with its extra characters, the others plain,
 * at most 32; copied into an event field. */
static int
wx3_id(const struct json_t *o, const char *path, const char *extra,
    char *dst, size_t cap, struct ph_diag *diag)
{
	char tmp[WX_ID_MAX + 1];
	int rc;

	if ((rc = ph_json_copy_token(o, path, tmp, sizeof(tmp), extra,
	    diag)) != PH_OK)
		return rc;
	return ph_copy_token(dst, cap, tmp, extra, path, diag);
}

static int
wx3_currency(const struct json_t *o, const char *path, int required,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *v;
	int rc;

	if ((rc = (required ? ph_json_get_string : ph_json_opt_string)(o, path,
	    3, &v, NULL, diag)) != PH_OK)
		return rc;
	if (v == NULL)
		v = "CNY";
	if (!ph_currency_valid(v))
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", path);
	memcpy(ev->currency, v, 4);
	return PH_OK;
}

/*
 * A decrypted transaction (notification) or a query answer.  notify_id
 * is the notification's id, NULL for a query; state tells the caller
 * what trade_state said.
 */
static int
wx3_transaction(const struct wx_ctx *ctx, const struct json_t *tx,
    const char *notify_id, struct ph_event *ev, const char **state,
    struct ph_diag *diag)
{
	const char *st, *v;
	size_t i;
	int rc;

	*state = NULL;
	if ((rc = wx3_merchant(ctx, tx, 1, diag)) != PH_OK)
		return rc;
	if ((rc = wx3_id(tx, "out_trade_no", WX_ORDER_EXTRA, ev->order_id,
	    sizeof(ev->order_id), diag)) != PH_OK)
		return rc;
	if ((rc = ph_json_get_string(tx, "trade_state", 32, &st, NULL,
	    diag)) != PH_OK)
		return rc;
	for (i = 0; wx3_trade_states[i].name != NULL; i++)
		if (strcmp(st, wx3_trade_states[i].name) == 0)
			break;
	if (wx3_trade_states[i].name == NULL)
		return ph_fail(diag, PH_E_FIELD, "trade_state: unknown");
	*state = wx3_trade_states[i].name;
	ev->kind = wx3_trade_states[i].kind;

	if (ev->kind == PH_EV_PAYMENT_SUCCEEDED) {
		if ((rc = wx3_id(tx, "transaction_id", NULL, ev->txn_id,
		    sizeof(ev->txn_id), diag)) != PH_OK ||
		    (rc = ph_json_get_amount(tx, "amount.total", &ev->amount,
		    diag)) != PH_OK ||
		    (rc = wx3_currency(tx, "amount.currency", 1, ev,
		    diag)) != PH_OK ||
		    (rc = ph_json_get_string(tx, "success_time", 40, &v, NULL,
		    diag)) != PH_OK)
			return rc;
		if (wx3_time(v, &ev->occurred_at) != PH_OK)
			return ph_fail(diag, PH_E_FIELD, "success_time: "
			    "invalid");
		/* The key of the payment whatever told us: notification,
		 * v2 or v3, or a query. */
		if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s",
		    ev->txn_id) >= (int)sizeof(ev->dedup_key))
			return ph_fail(diag, PH_E_FIELD, "dedup key too long");
		return PH_OK;
	}

	/* Not a payment: what else is there must still be valid. */
	if (ph_json_lookup(tx, "transaction_id") != NULL &&
	    (rc = wx3_id(tx, "transaction_id", NULL, ev->txn_id,
	    sizeof(ev->txn_id), diag)) != PH_OK)
		return rc;
	if (ph_json_lookup(tx, "amount.total") != NULL &&
	    (rc = ph_json_get_amount(tx, "amount.total", &ev->amount,
	    diag)) != PH_OK)
		return rc;
	if ((rc = wx3_currency(tx, "amount.currency", 0, ev, diag)) != PH_OK)
		return rc;
	if (notify_id != NULL)
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "notify:%s", notify_id);
	else
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "query:%s:%s", ev->order_id, *state);
	if (rc < 0 || rc >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/* A decrypted refund (REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED). */
static int
wx3_refund(const struct wx_ctx *ctx, const struct json_t *r,
    const char *notify_id, struct ph_event *ev, struct ph_diag *diag)
{
	const char *st, *v;
	int rc;

	if ((rc = wx3_merchant(ctx, r, 0, diag)) != PH_OK)
		return rc;
	if ((rc = wx3_id(r, "out_trade_no", WX_ORDER_EXTRA, ev->order_id,
	    sizeof(ev->order_id), diag)) != PH_OK ||
	    (rc = wx3_id(r, "transaction_id", NULL, ev->txn_id,
	    sizeof(ev->txn_id), diag)) != PH_OK ||
	    (rc = ph_json_copy_token(r, "refund_id", ev->refund_id,
	    sizeof(ev->refund_id), WX3_ID_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_get_string(r, "refund_status", 32, &st, NULL,
	    diag)) != PH_OK)
		return rc;
	/* Our own refund number, echoed: must be sane when given. */
	if (ph_json_lookup(r, "out_refund_no") != NULL &&
	    (rc = ph_json_copy_token(r, "out_refund_no",
	    ev->merchant_refund_id, sizeof(ev->merchant_refund_id),
	    WX3_REFUND_EXTRA, diag)) != PH_OK)
		return rc;
	if (strcmp(st, "SUCCESS") == 0)
		ev->kind = PH_EV_REFUND_SUCCEEDED;
	else if (strcmp(st, "CLOSED") == 0 || strcmp(st, "ABNORMAL") == 0)
		ev->kind = PH_EV_REFUND_FAILED;
	else
		return ph_fail(diag, PH_E_FIELD, "refund_status: unknown");
	if ((rc = ph_json_get_amount(r, "amount.refund", &ev->amount,
	    diag)) != PH_OK ||
	    (rc = wx3_currency(r, "amount.currency", 0, ev, diag)) != PH_OK ||
	    (rc = ph_json_opt_string(r, "success_time", 40, &v, NULL,
	    diag)) != PH_OK)
		return rc;
	if (v != NULL && wx3_time(v, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "success_time: invalid");
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "notify:%s",
	    notify_id) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/*
 * A verified notification of a kind payhook does not act on: it is
 * acknowledged.  The core wants an order id in every event; a resource
 * that names none gets "-".
 */
static int
wx3_ignored(const struct wx_ctx *ctx, const struct json_t *o,
    const char *notify_id, struct ph_event *ev, struct ph_diag *diag)
{
	int rc;

	if (ph_json_lookup(o, "mchid") != NULL &&
	    (rc = wx3_merchant(ctx, o, 0, diag)) != PH_OK)
		return rc;
	ev->kind = PH_EV_IGNORED;
	if (ph_json_lookup(o, "out_trade_no") == NULL ||
	    wx3_id(o, "out_trade_no", WX_ORDER_EXTRA, ev->order_id,
	    sizeof(ev->order_id), NULL) != PH_OK)
		memcpy(ev->order_id, "-", 2);
	memcpy(ev->currency, "CNY", 4);
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "notify:%s",
	    notify_id) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

static int
wx3_parse_notify(const struct wx_ctx *ctx, const struct ph_request *req,
    struct ph_event *ev, struct ph_diag *diag)
{
	const struct json_t *res;
	json_t *env = NULL, *doc = NULL;
	unsigned char *plain = NULL;
	const char *v, *otype, *state;
	char id[PH_ID_MAX + 1];
	size_t plen = 0;
	int rc;

	if (req->body == NULL || req->body_len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "empty body");
	if (req->body_len > WX3_BODY_MAX)
		return ph_fail(diag, PH_E_TOOBIG, "body larger than %d bytes",
		    WX3_BODY_MAX);
	if ((rc = wx3_verify(ctx->v3, req->headers, req->nheaders, req->body,
	    req->body_len, req->now, "notification", diag)) != PH_OK)
		return rc;

	/* Signed by WeChat Pay from here on; parse it once, strictly. */
	if ((rc = ph_json_parse(req->body, req->body_len,
	    &wx3_envelope_limits, &env, diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_copy_token(env, "id", id, sizeof(id), WX3_ID_EXTRA,
	    diag)) != PH_OK ||
	    (rc = ph_json_get_string(env, "event_type", 64, &v, NULL,
	    diag)) != PH_OK)
		goto out;
	if (!ph_token_valid(v, strlen(v), 64, WX3_TYPE_EXTRA)) {
		rc = ph_fail(diag, PH_E_FIELD, "event_type: invalid");
		goto out;
	}
	if ((rc = ph_json_get_string(env, "resource_type", 64, &v, NULL,
	    diag)) != PH_OK)
		goto out;
	if (strcmp(v, "encrypt-resource") != 0) {
		rc = ph_fail(diag, PH_E_UNSUPPORTED, "resource_type %.32s is "
		    "not encrypt-resource", v);
		goto out;
	}
	if ((rc = ph_json_get_object(env, "resource", &res, diag)) != PH_OK ||
	    (rc = ph_json_get_string(res, "original_type", 64, &otype, NULL,
	    diag)) != PH_OK)
		goto out;
	if ((rc = wx3_decrypt(ctx->v3, res, &plain, &plen, diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_parse(plain, plen, &wx3_resource_limits, &doc,
	    diag)) != PH_OK)
		goto out;

	if (strcmp(otype, "transaction") == 0)
		rc = wx3_transaction(ctx, doc, id, ev, &state, diag);
	else if (strcmp(otype, "refund") == 0)
		rc = wx3_refund(ctx, doc, id, ev, diag);
	else
		rc = wx3_ignored(ctx, doc, id, ev, diag);
out:
	if (plain != NULL) {
		ph_cleanse(plain, plen);
		free(plain);
	}
	json_decref(doc);
	json_decref(env);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/*
 * The v3 answer: success is 204 with no body; a failure is 4xx/5xx with
 * {"code":"FAIL","message":"..."} (400 refused, 500 retry later).  The
 * status decides: WeChat retries on any non-2xx.
 */
static void
wx3_ack(enum ph_ack_kind kind, const char *reason, struct ph_response *out)
{
	char msg[WX3_TEXT_MAX + 1];
	const char *s;
	size_t n = 0, len;
	json_t *doc;

	memset(out, 0, sizeof(*out));
	switch (kind) {
	case PH_ACK_OK:
		out->status = 204;
		return;
	case PH_ACK_REFUSED:
		out->status = 400;
		break;
	case PH_ACK_RETRY:
		out->status = 500;
		break;
	default:
		out->status = 500;
		return;
	}
	for (s = reason; s != NULL && *s != '\0' && n < sizeof(msg) - 1; s++)
		if ((unsigned char)*s >= 0x20 && (unsigned char)*s <= 0x7e)
			msg[n++] = *s;
	msg[n] = '\0';
	if (n == 0)
		snprintf(msg, sizeof(msg), "%s", kind == PH_ACK_RETRY ?
		    "temporarily unavailable" : "invalid notification");
	if ((doc = json_pack("{s:s, s:s}", "code", "FAIL", "message",
	    msg)) == NULL)
		return;
	len = json_dumpb(doc, (char *)out->body, sizeof(out->body),
	    JSON_COMPACT);
	json_decref(doc);
	if (len == 0 || len > sizeof(out->body)) {
		out->body_len = 0;
		return;
	}
	out->body_len = len;
	memcpy(out->content_type, "application/json",
	    sizeof("application/json"));
}

/* ---- v3 order query ------------------------------------------------------ */

static int
wx3_set_header(struct ph_http_request *out, const char *name,
    const char *value)
{
	size_t i = out->nheaders;

	if (i == PH_HTTP_HEADERS_MAX ||
	    strlen(name) >= sizeof(out->headers[i].name) ||
	    strlen(value) >= sizeof(out->headers[i].value))
		return PH_E_TOOBIG;
	memcpy(out->headers[i].name, name, strlen(name) + 1);
	memcpy(out->headers[i].value, value, strlen(value) + 1);
	out->nheaders++;
	return PH_OK;
}

/*
 * The Authorization header of a request: WECHATPAY2-SHA256-RSA2048 with
 * mchid, nonce_str, signature, timestamp and serial_no, the signature
 * over "METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n".
 */
static int
wx3_authorization(const struct wx_ctx *ctx, const char *method,
    const char *path, int64_t now, const char *nonce,
    const unsigned char *body, size_t body_len, struct ph_buf *out,
    struct ph_diag *diag)
{
	struct wx3_line l[5];
	struct ph_buf sig;
	char ts[24];
	int rc;

	snprintf(ts, sizeof(ts), "%lld", (long long)now);
	l[0].p = method;
	l[0].n = strlen(method);
	l[1].p = path;
	l[1].n = strlen(path);
	l[2].p = ts;
	l[2].n = strlen(ts);
	l[3].p = nonce;
	l[3].n = strlen(nonce);
	l[4].p = body != NULL ? (const void *)body : "";
	l[4].n = body != NULL ? body_len : 0;
	ph_buf_init(&sig, 1024);
	if ((rc = wx3_sign_lines(ctx->v3, l, 5, &sig, diag)) == PH_OK) {
		ph_buf_printf(out, "%s mchid=\"%s\",nonce_str=\"%s\","
		    "signature=\"%s\",timestamp=\"%s\",serial_no=\"%s\"",
		    WX3_SCHEME, ctx->mch_id, nonce, sig.data, ts,
		    ctx->v3->merchant_serial);
		if ((rc = out->err) != PH_OK)
			ph_fail(diag, rc, "Authorization header too long");
	}
	ph_buf_free(&sig);
	return rc;
}

/*
 * GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={mch_id},
 * signed with the merchant key at cc->now with a nonce of 16 of the
 * core's random bytes (32 upper-case hex).
 */
static int
wx3_query_request(const struct wx_ctx *ctx, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	char nonce[2 * WX3_NONCE_BYTES + 1];
	struct ph_buf path, auth;
	int rc;

	if (cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(out, 0, sizeof(*out));
	if (ctx->v3->merchant_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "query needs "
		    "merchant_private_key_file and merchant_serial in this "
		    "profile");
	if (order == NULL || order->order_id == NULL ||
	    !ph_token_valid(order->order_id, strlen(order->order_id),
	    WX_ID_MAX, WX_ORDER_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "order id is not a valid "
		    "WeChat out_trade_no (at most 32 of [A-Za-z0-9_-|*])");
	ph_hex_upper(cc->random, WX3_NONCE_BYTES, nonce);
	ph_buf_init(&path, sizeof(out->path) - 1);
	ph_buf_init(&auth, sizeof(out->headers[0].value) - 1);
	ph_buf_puts(&path, WX3_QUERY_PATH);
	ph_buf_pct(&path, order->order_id);
	ph_buf_puts(&path, "?mchid=");
	ph_buf_pct(&path, ctx->mch_id);
	if ((rc = path.err) != PH_OK) {
		ph_fail(diag, rc, "request path too long");
		goto out;
	}
	if ((rc = wx3_authorization(ctx, "GET", path.data, cc->now, nonce,
	    NULL, 0, &auth, diag)) != PH_OK)
		goto out;
	memcpy(out->method, "GET", sizeof("GET"));
	memcpy(out->path, path.data, path.len + 1);
	if ((rc = wx3_set_header(out, "Accept", "application/json")) !=
	    PH_OK ||
	    (rc = wx3_set_header(out, "Authorization", auth.data)) != PH_OK)
		ph_fail(diag, rc, "request headers too long");
out:
	ph_buf_free(&path);
	ph_buf_free(&auth);
	if (rc != PH_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Provider text for a diagnostic: printable ASCII only, bounded. */
static void
wx3_text(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; src != NULL && *src != '\0' && n + 1 < cap && n < WX3_TEXT_MAX;
	    src++)
		if ((unsigned char)*src >= 0x20 && (unsigned char)*src < 0x7f)
			dst[n++] = *src;
	if (n == 0 && cap > 1)
		dst[n++] = '-';
	dst[n] = '\0';
}

/*
 * The answer to a query.  5xx and SYSTEM_ERROR are "ask later" and need
 * no signature, since they change nothing.  Anything that becomes an
 * event (200, and 404 ORDER_NOT_EXIST) must carry a valid Wechatpay-*
 * signature, exactly as a notification.
 */
static int
wx3_query_response(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag)
{
	char code[WX3_TEXT_MAX + 1], text[WX3_TEXT_MAX + 1];
	json_t *doc = NULL;
	const char *state, *c = NULL, *m = NULL;
	int rc;

	if (in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if (order == NULL || order->order_id == NULL ||
	    !ph_token_valid(order->order_id, strlen(order->order_id),
	    WX_ID_MAX, WX_ORDER_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "order id is not a valid "
		    "WeChat out_trade_no");
	if (in->status != 200) {
		/* An error answer: its code, if it has one, is read before
		 * any signature, but only "ask later" comes of it unsigned. */
		if (in->body != NULL && in->body_len > 0 &&
		    ph_json_parse(in->body, in->body_len,
		    &wx3_envelope_limits, &doc, NULL) == PH_OK) {
			ph_json_opt_string(doc, "code", 64, &c, NULL, NULL);
			ph_json_opt_string(doc, "message", 256, &m, NULL, NULL);
		}
		wx3_text(code, sizeof(code), c);
		wx3_text(text, sizeof(text), m);
		if (in->status == 404 && c != NULL &&
		    (strcmp(c, "ORDER_NOT_EXIST") == 0 ||
		    strcmp(c, "ORDERNOTEXIST") == 0)) {
			if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders,
			    in->body, in->body_len, in->now, "query answer",
			    diag)) != PH_OK)
				goto out;
			ev->kind = PH_EV_NOT_FOUND;
			memcpy(ev->currency, "CNY", 4);
			if ((rc = ph_copy_token(ev->order_id,
			    sizeof(ev->order_id), order->order_id,
			    WX_ORDER_EXTRA, "out_trade_no", diag)) != PH_OK)
				goto out;
			if (snprintf(ev->dedup_key, sizeof(ev->dedup_key),
			    "query:%s:%s", ev->order_id, c) >=
			    (int)sizeof(ev->dedup_key))
				rc = ph_fail(diag, PH_E_FIELD,
				    "dedup key too long");
			goto out;
		}
		rc = ph_fail(diag, PH_E_PROVIDER, "query: HTTP %d, code %s: %s",
		    in->status, code, text);
		goto out;
	}
	if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders, in->body,
	    in->body_len, in->now, "query answer", diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_parse(in->body, in->body_len, &wx3_resource_limits,
	    &doc, diag)) != PH_OK)
		goto out;
	if ((rc = wx3_transaction(ctx, doc, NULL, ev, &state, diag)) != PH_OK)
		goto out;
	if (strcmp(ev->order_id, order->order_id) != 0)
		rc = ph_fail(diag, PH_E_FIELD, "query: out_trade_no is not the "
		    "order asked about");
out:
	json_decref(doc);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* ---- Refunds: v2 refund notification, refund requests, bills ------------ */

/*
 * API v2 refund result notification (PROTOCOLS.md 1.8): the same
 * notify_url, an unsigned outer <xml> with appid, mch_id and req_info,
 * the base64 of AES-256-ECB (PKCS#7) under the 32 ASCII bytes of the
 * lower-case hex MD5 of the APIv2 key.  There is no signature: what
 * vouches for it is that req_info decrypts with this profile's key, is
 * padded correctly and is the <root> document of a refund with sane
 * fields.  Anything less is refused, never guessed at.
 */

#define WX_REQ_INFO_MAX		(16 * 1024)	/* decoded bytes */
#define WX_AES_BLOCK		16
#define WX_REFUND_ID_MAX	64	/* out_refund_no: String(64) */
#define WX_REFUND_PATH		"/secapi/pay/refund"
#define WX3_REFUND_PATH		"/v3/refund/domestic/refunds"
#define WX_REFUND_DESC_MAX	80	/* refund_desc, reason: 80 bytes */

/* refund_status of a refund notification and the event it becomes. */
static const struct {
	const char *name;
	enum ph_event_kind kind;
} wx_refund_states[] = {
	{ "SUCCESS", PH_EV_REFUND_SUCCEEDED },
	/* CHANGE: the money could not go back (an abnormal refund, to be
	 * handled by a person at the merchant platform); REFUNDCLOSE:
	 * closed.  Neither refunded anything. */
	{ "CHANGE", PH_EV_REFUND_FAILED },
	{ "REFUNDCLOSE", PH_EV_REFUND_FAILED },
	{ NULL, PH_EV__MAX },
};

/* "yyyy-MM-dd HH:mm:ss" in Beijing time (success_time, 交易时间). */
static int
wx_time_dashed(const char *s, size_t len, int64_t *out)
{
	char compact[15];

	if (s == NULL || len != 19 || s[4] != '-' || s[7] != '-' ||
	    s[10] != ' ' || s[13] != ':' || s[16] != ':')
		return PH_E_FIELD;
	memcpy(compact, s, 4);
	memcpy(compact + 4, s + 5, 2);
	memcpy(compact + 6, s + 8, 2);
	memcpy(compact + 8, s + 11, 2);
	memcpy(compact + 10, s + 14, 2);
	memcpy(compact + 12, s + 17, 2);
	compact[14] = '\0';
	return ph_time_parse_compact(compact, WX_BEIJING, out);
}

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
static int
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
	const char *st, *v;
	int64_t total, n;
	size_t i;
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
	for (i = 0; wx_refund_states[i].name != NULL; i++)
		if (strcmp(st, wx_refund_states[i].name) == 0)
			break;
	if (wx_refund_states[i].name == NULL)
		return ph_fail(diag, PH_E_FIELD, "refund_status: unknown");
	ev->kind = wx_refund_states[i].kind;
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
	    wx_time_dashed(v, strlen(v), &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "success_time: invalid");
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "refund:%s:%s",
	    ev->refund_id, st) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/*
 * A v2 notification carrying req_info: a refund result.  The outer
 * fields are not authenticated, so they only ever refuse (another
 * merchant's, a sub-merchant's, a FAIL, a sign that does not belong).
 */
static int
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

static int
wx_in(const char *v, const char *const *set)
{
	size_t i;

	for (i = 0; v != NULL && set[i] != NULL; i++)
		if (strcmp(v, set[i]) == 0)
			return 1;
	return 0;
}

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

static int
wx_kv_add(struct ph_kvlist *kv, const char *k, const char *v,
    struct ph_diag *diag)
{
	return ph_kvlist_add(kv, k, strlen(k), v, strlen(v), diag);
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
	char nonce[2 * WX_NONCE_BYTES + 1], sign[2 * PH_SHA256_LEN + 1];
	char total[24], fee[24];
	const char *why;
	struct ph_kvlist kv;
	struct ph_buf body;
	int rc;

	ph_kvlist_init(&kv, 16);
	ph_buf_init(&body, sizeof(out->body));
	ph_hex_lower(cc->random, WX_NONCE_BYTES, nonce);
	snprintf(total, sizeof(total), "%lld", (long long)ref->payment_amount);
	snprintf(fee, sizeof(fee), "%lld", (long long)ref->amount);
	if ((rc = wx_kv_add(&kv, "appid", ctx->appid, diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "mch_id", ctx->mch_id, diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "nonce_str", nonce, diag)) != PH_OK ||
	    (ctx->sign_type != WX_SIGN_MD5 && (rc = wx_kv_add(&kv,
	    "sign_type", wx_sign_names[ctx->sign_type], diag)) != PH_OK) ||
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
	if ((rc = wx_sign(ctx, &kv, sign, diag)) != PH_OK ||
	    (rc = wx_kv_add(&kv, "sign", sign, diag)) != PH_OK)
		goto out;
	if ((rc = ph_xml_write_flat("xml", &kv, &body)) != PH_OK) {
		ph_fail(diag, rc, "cannot write the request body");
		goto out;
	}
	memcpy(out->method, "POST", sizeof("POST"));
	memcpy(out->path, WX_REFUND_PATH, sizeof(WX_REFUND_PATH));
	memcpy(out->content_type, "text/xml", sizeof("text/xml"));
	memcpy(out->body, body.data, body.len);
	out->body_len = body.len;
out:
	ph_kvlist_free(&kv);
	ph_buf_free(&body);
	return rc;
}

/* The event of a refund answer: ids from the request, the kind given. */
static int
wx_refund_event(const struct ph_refund_ref *ref, enum ph_event_kind kind,
    const char *refund_id, const char *state, struct ph_event *ev,
    struct ph_diag *diag)
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
	ev->amount = ref->amount;
	memcpy(ev->currency, ref->currency, 4);
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "refund:%s:%s",
	    ev->refund_id[0] != '\0' ? ev->refund_id : ref->refund_id,
	    state) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/*
 * The answer to a v2 refund.  return_code FAIL (unsigned) and a signed
 * FAIL with a retryable err_code are PH_E_PROVIDER; a signed FAIL with a
 * final err_code is REFUND_FAILED.  A signed SUCCESS must name the
 * refund asked for (out_refund_no, transaction_id, refund_fee) and is
 * PAYMENT_PENDING: accepted, the result comes by the refund notification
 * (or the next call with the same out_refund_no), unless the answer
 * carries a final refund_status.
 */
static int
wx_refund_response_v2(const struct wx_ctx *ctx,
    const struct ph_refund_ref *ref, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *v, *err, *refund_id;
	struct ph_kvlist kv;
	int64_t n;
	size_t i;
	int rc, res_ok;

	if ((rc = wx_query_parse(ctx, in, "refund", &kv, &res_ok,
	    diag)) != PH_OK)
		return rc;
	if (!res_ok) {
		if ((rc = wx_query_err_code(&kv, &err, diag)) != PH_OK)
			goto out;
		if (wx_in(err, wx_refund_final))
			rc = wx_refund_event(ref, PH_EV_REFUND_FAILED, NULL, err,
			    ev, diag);
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
	    ph_money_parse_minor(v, strlen(v), &n) != PH_OK ||
	    n != ref->amount) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: refund_fee is not the "
		    "amount asked for");
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
		for (i = 0; wx_refund_states[i].name != NULL; i++)
			if (strcmp(v, wx_refund_states[i].name) == 0)
				break;
		if (wx_refund_states[i].name != NULL) {
			rc = wx_refund_event(ref, wx_refund_states[i].kind,
			    refund_id, v, ev, diag);
			goto out;
		}
		if (strcmp(v, "PROCESSING") != 0) {
			rc = ph_fail(diag, PH_E_FIELD, "refund_status: "
			    "unknown");
			goto out;
		}
	}
	rc = wx_refund_event(ref, PH_EV_PAYMENT_PENDING, refund_id,
	    "ACCEPTED", ev, diag);
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
	char nonce[2 * WX3_NONCE_BYTES + 1];
	const char *why = wx_refund_reason(ref);
	json_t *doc = NULL, *amount;
	struct ph_buf auth;
	size_t len;
	int rc = PH_OK;

	if (ctx->v3->merchant_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "refunds need "
		    "merchant_private_key_file and merchant_serial in this "
		    "profile");
	ph_hex_upper(cc->random, WX3_NONCE_BYTES, nonce);
	ph_buf_init(&auth, sizeof(out->headers[0].value) - 1);
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
	if ((rc = wx3_authorization(ctx, "POST", WX3_REFUND_PATH, cc->now,
	    nonce, out->body, out->body_len, &auth, diag)) != PH_OK)
		goto out;
	memcpy(out->method, "POST", sizeof("POST"));
	memcpy(out->path, WX3_REFUND_PATH, sizeof(WX3_REFUND_PATH));
	memcpy(out->content_type, "application/json",
	    sizeof("application/json"));
	if ((rc = wx3_set_header(out, "Accept", "application/json")) !=
	    PH_OK ||
	    (rc = wx3_set_header(out, "Authorization", auth.data)) != PH_OK)
		ph_fail(diag, rc, "request headers too long");
out:
	json_decref(amount);
	json_decref(doc);
	ph_buf_free(&auth);
	return rc;
}

/* status of a v3 refund object and the event it becomes. */
static const struct {
	const char *name;
	enum ph_event_kind kind;
} wx3_refund_states[] = {
	{ "SUCCESS", PH_EV_REFUND_SUCCEEDED },
	{ "PROCESSING", PH_EV_PAYMENT_PENDING },
	{ "CLOSED", PH_EV_REFUND_FAILED },
	{ "ABNORMAL", PH_EV_REFUND_FAILED },
	{ NULL, PH_EV__MAX },
};

/*
 * The answer to a v3 refund.  200: the refund object, signed like every
 * answer, which must be the refund asked for; its status decides.  An
 * error answer is PH_E_PROVIDER, except a code no retry can change,
 * which is REFUND_FAILED only when its signature checks.
 */
static int
wx3_refund_response(const struct wx_ctx *ctx, const struct ph_refund_ref *ref,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	char code[WX3_TEXT_MAX + 1], text[WX3_TEXT_MAX + 1];
	char refund_id[PH_ID_MAX + 1];
	const char *c = NULL, *m = NULL, *v;
	json_t *doc = NULL;
	int64_t n;
	size_t i;
	int rc;

	if (in->status != 200) {
		if (in->body != NULL && in->body_len > 0 &&
		    ph_json_parse(in->body, in->body_len,
		    &wx3_envelope_limits, &doc, NULL) == PH_OK) {
			ph_json_opt_string(doc, "code", 64, &c, NULL, NULL);
			ph_json_opt_string(doc, "message", 256, &m, NULL, NULL);
		}
		wx3_text(code, sizeof(code), c);
		wx3_text(text, sizeof(text), m);
		if (in->status >= 400 && in->status < 500 &&
		    wx_in(c, wx3_refund_final)) {
			if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders,
			    in->body, in->body_len, in->now, "refund answer",
			    diag)) == PH_OK)
				rc = wx_refund_event(ref, PH_EV_REFUND_FAILED,
				    NULL, c, ev, diag);
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
	if (n != ref->amount) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: amount.refund is not "
		    "the amount asked for");
		goto out;
	}
	if ((rc = ph_json_copy_token(doc, "refund_id", refund_id,
	    sizeof(refund_id), WX3_ID_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_get_string(doc, "status", 32, &v, NULL,
	    diag)) != PH_OK)
		goto out;
	for (i = 0; wx3_refund_states[i].name != NULL; i++)
		if (strcmp(v, wx3_refund_states[i].name) == 0)
			break;
	if (wx3_refund_states[i].name == NULL) {
		rc = ph_fail(diag, PH_E_FIELD, "refund: status unknown");
		goto out;
	}
	if ((rc = wx_refund_event(ref, wx3_refund_states[i].kind, refund_id,
	    wx3_refund_states[i].name, ev, diag)) != PH_OK)
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

static int
wx_refund_request(void *p, const struct ph_refund_ref *ref,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;
	int rc;

	if (ctx == NULL || cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(out, 0, sizeof(*out));
	if ((rc = wx_refund_ref_ok(ref, diag)) != PH_OK)
		return rc;
	rc = ctx->api_version == 3 ?
	    wx3_refund_request(ctx, ref, cc, out, diag) :
	    wx_refund_request_v2(ctx, ref, cc, out, diag);
	if (rc != PH_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

static int
wx_refund_response(void *p, const struct ph_refund_ref *ref,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;
	int rc;

	if (ctx == NULL || in == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = wx_refund_ref_ok(ref, diag)) != PH_OK)
		return rc;
	rc = ctx->api_version == 3 ?
	    wx3_refund_response(ctx, ref, in, ev, diag) :
	    wx_refund_response_v2(ctx, ref, in, ev, diag);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* ---- Bills (对账单): the trade bill of v2 downloadbill and v3 tradebill -- */

/*
 * PROTOCOLS.md 1.9 and 2.8: a header line of Chinese column names (a
 * UTF-8 BOM may precede it), data lines whose every field starts with a
 * back-tick, a summary header and one summary line.  Columns are found
 * by name, not position, so the classic layout, the 2018 settlement
 * layout and the SUCCESS/REFUND bill types all read.  Data fields are
 * split on ",`" (a field is a back-tick and its text, so a comma inside
 * a product name does not split it).  Amounts are yuan, read into fen
 * with ph_money_parse_decimal; times are Beijing time.  The summary's
 * count and totals are checked at the end; a statement that stops
 * before its summary is refused as truncated.
 */

#define WXB_COLS_MAX	64
#define WXB_MAGIC	0x77786231u	/* "wxb1": the state was started */

enum wxb_col {
	WXB_TIME,		/* 交易时间 */
	WXB_MCH,		/* 商户号 */
	WXB_SUB_MCH,		/* 子商户号 / 特约商户号 */
	WXB_TXN,		/* 微信订单号 */
	WXB_ORDER,		/* 商户订单号 */
	WXB_STATE,		/* 交易状态 */
	WXB_CURRENCY,		/* 货币种类 */
	WXB_REFUND_ID,		/* 微信退款单号 */
	WXB_OUT_REFUND,		/* 商户退款单号 */
	WXB_REFUND_STATUS,	/* 退款状态 */
	/* Money columns, summed for the summary check. */
	WXB_TOTAL,		/* 总金额 (classic) */
	WXB_ORDER_AMOUNT,	/* 订单金额 (settlement layout) */
	WXB_SETTLE,		/* 应结订单金额 */
	WXB_REFUND_FEE,		/* 退款金额 */
	WXB_REFUND_ASKED,	/* 申请退款金额 */
	WXB__MAX
};
#define WXB_MONEY_FIRST	WXB_TOTAL

static const struct {
	const char *name;
	enum wxb_col col;
} wxb_cols[] = {
	{ "交易时间", WXB_TIME },
	{ "商户号", WXB_MCH },
	{ "子商户号", WXB_SUB_MCH },
	{ "特约商户号", WXB_SUB_MCH },
	{ "微信订单号", WXB_TXN },
	{ "商户订单号", WXB_ORDER },
	{ "交易状态", WXB_STATE },
	{ "货币种类", WXB_CURRENCY },
	{ "微信退款单号", WXB_REFUND_ID },
	{ "商户退款单号", WXB_OUT_REFUND },
	{ "退款状态", WXB_REFUND_STATUS },
	{ "总金额", WXB_TOTAL },
	{ "订单金额", WXB_ORDER_AMOUNT },
	{ "应结订单金额", WXB_SETTLE },
	{ "退款金额", WXB_REFUND_FEE },
	{ "申请退款金额", WXB_REFUND_ASKED },
	{ NULL, WXB__MAX },
};

/* Summary columns: the count, and the total of which money column. */
#define WXB_COUNT	WXB__MAX
static const struct {
	const char *name;
	enum wxb_col col;		/* WXB_COUNT for the count */
} wxb_sums[] = {
	{ "总交易单数", WXB_COUNT },
	{ "总交易额", WXB_TOTAL },
	{ "订单总金额", WXB_ORDER_AMOUNT },
	{ "应结订单总金额", WXB_SETTLE },
	{ "总退款金额", WXB_REFUND_FEE },
	{ "退款总金额", WXB_REFUND_FEE },
	{ "申请退款总金额", WXB_REFUND_ASKED },
	{ NULL, WXB__MAX },
};

enum wxb_phase {
	WXB_HEADER,		/* nothing read yet */
	WXB_ROWS,		/* data lines, until the summary header */
	WXB_SUMMARY,		/* the summary line is next */
	WXB_DONE,		/* only empty lines may follow */
	WXB__PHASES
};

/* Kept in ph_statement.state between lines. */
struct wxb_state {
	uint32_t magic;
	int phase;
	int ncols;			/* columns of the header */
	int nsum;			/* columns of the summary header */
	int col[WXB__MAX];		/* index of each column, or -1 */
	int sum[WXB__MAX + 1];		/* summary index of each total, -1 */
	uint64_t rows;			/* data lines */
	int64_t money[WXB__MAX];	/* sums of the money columns */
	int64_t count;			/* the summary's 总交易单数 */
	int64_t want[WXB__MAX];		/* the summary's totals */
};

_Static_assert(sizeof(struct wxb_state) <= PH_STATEMENT_STATE_MAX,
    "the bill parser's state must fit in struct ph_statement");

/* A field of a line: points into the line. */
struct wxb_field {
	const char *p;
	size_t n;
};

/*
 * Splits a header (sep ",") or a back-ticked line (sep ",`", the line
 * starting with "`") into at most max fields; -1 when it has more or
 * is not back-ticked.
 */
static int
wxb_split(const char *line, size_t len, int ticked, struct wxb_field *f,
    int max)
{
	size_t i, start;
	int n = 0;

	if (ticked) {
		if (len == 0 || line[0] != '`')
			return -1;
		start = 1;
	} else
		start = 0;
	for (i = start; i <= len; i++) {
		if (i < len && !(line[i] == ',' && (!ticked ||
		    (i + 1 < len && line[i + 1] == '`'))))
			continue;
		if (n == max)
			return -1;
		f[n].p = line + start;
		f[n].n = i - start;
		n++;
		start = i + 1 + (ticked ? 1 : 0);
		if (i < len && ticked)
			i++;
	}
	return n;
}

static int
wxb_is(const struct wxb_field *f, const char *s)
{
	return f->n == strlen(s) && memcmp(f->p, s, f->n) == 0;
}

/* A field copied as a NUL-terminated string (cap includes the NUL). */
static int
wxb_str(const struct wxb_field *f, char *dst, size_t cap)
{
	if (f->n >= cap)
		return -1;
	memcpy(dst, f->p, f->n);
	dst[f->n] = '\0';
	return memchr(dst, '\0', f->n) != NULL ? -1 : 0;
}

static int
wxb_header(struct wxb_state *s, const char *line, size_t len,
    uint64_t lineno, struct ph_diag *diag)
{
	struct wxb_field f[WXB_COLS_MAX];
	int n, i, j;

	/* An optional UTF-8 BOM before the first header only. */
	if (len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	if ((n = wxb_split(line, len, 0, f, WXB_COLS_MAX)) < 1)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: not a bill "
		    "header (more than %d columns?)",
		    (unsigned long long)lineno, WXB_COLS_MAX);
	for (i = 0; i < WXB__MAX; i++)
		s->col[i] = -1;
	for (i = 0; i < n; i++)
		for (j = 0; wxb_cols[j].name != NULL; j++) {
			if (!wxb_is(&f[i], wxb_cols[j].name))
				continue;
			if (s->col[wxb_cols[j].col] != -1)
				return ph_fail(diag, PH_E_MALFORMED, "line %llu: "
				    "column %d repeats a column name",
				    (unsigned long long)lineno, i + 1);
			s->col[wxb_cols[j].col] = i;
		}
	if (s->col[WXB_TIME] < 0 || s->col[WXB_MCH] < 0 ||
	    s->col[WXB_TXN] < 0 || s->col[WXB_ORDER] < 0 ||
	    s->col[WXB_STATE] < 0 || s->col[WXB_CURRENCY] < 0 ||
	    (s->col[WXB_TOTAL] < 0 && s->col[WXB_ORDER_AMOUNT] < 0))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: not a WeChat "
		    "Pay trade bill header (the columns of the time, merchant "
		    "id, WeChat and merchant order numbers, trade state, "
		    "currency and total or order amount are needed)",
		    (unsigned long long)lineno);
	s->ncols = n;
	s->phase = WXB_ROWS;
	return PH_OK;
}

static int
wxb_summary_header(struct wxb_state *s, const char *line, size_t len,
    uint64_t lineno, struct ph_diag *diag)
{
	struct wxb_field f[WXB_COLS_MAX];
	int n, i, j, amounts = 0;

	if ((n = wxb_split(line, len, 0, f, WXB_COLS_MAX)) < 1)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: not a summary "
		    "header", (unsigned long long)lineno);
	for (i = 0; i <= WXB__MAX; i++)
		s->sum[i] = -1;
	for (i = 0; i < n; i++)
		for (j = 0; wxb_sums[j].name != NULL; j++) {
			if (!wxb_is(&f[i], wxb_sums[j].name))
				continue;
			if (s->sum[wxb_sums[j].col] != -1)
				return ph_fail(diag, PH_E_MALFORMED, "line %llu: "
				    "summary column %d repeats a name",
				    (unsigned long long)lineno, i + 1);
			/* A total of a column the bill does not have
			 * cannot be checked. */
			if (wxb_sums[j].col != WXB_COUNT &&
			    s->col[wxb_sums[j].col] < 0)
				return ph_fail(diag, PH_E_MALFORMED, "line %llu: "
				    "summary column %d totals a column the "
				    "header lacks", (unsigned long long)lineno,
				    i + 1);
			s->sum[wxb_sums[j].col] = i;
			if (wxb_sums[j].col == WXB_TOTAL ||
			    wxb_sums[j].col == WXB_ORDER_AMOUNT ||
			    wxb_sums[j].col == WXB_SETTLE)
				amounts++;
		}
	if (s->sum[WXB_COUNT] < 0 || amounts == 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the summary "
		    "header names no row count or no total of the payments",
		    (unsigned long long)lineno);
	s->nsum = n;
	s->phase = WXB_SUMMARY;
	return PH_OK;
}

static int
wxb_summary(struct wxb_state *s, const char *line, size_t len,
    uint64_t lineno, struct ph_diag *diag)
{
	struct wxb_field f[WXB_COLS_MAX];
	int64_t v;
	int n, i;

	if ((n = wxb_split(line, len, 1, f, WXB_COLS_MAX)) != s->nsum)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the summary "
		    "line has %d fields, its header %d",
		    (unsigned long long)lineno, n, s->nsum);
	for (i = 0; i <= WXB__MAX; i++) {
		if (s->sum[i] < 0)
			continue;
		if (i == WXB_COUNT ? ph_money_parse_minor(f[s->sum[i]].p,
		    f[s->sum[i]].n, &v) != PH_OK :
		    ph_money_parse_decimal(f[s->sum[i]].p, f[s->sum[i]].n, 2,
		    &v) != PH_OK)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: "
			    "summary field %d is not a number",
			    (unsigned long long)lineno, s->sum[i] + 1);
		/* Compared at the end with what was read. */
		if (i == WXB_COUNT)
			s->count = v;
		else
			s->want[i] = v;
	}
	s->phase = WXB_DONE;
	return PH_OK;
}

/* Fills ev from a data line; ev->kind PH_EV_IGNORED for rows that are
 * not facts. */
static int
wxb_row(const struct wx_ctx *ctx, struct wxb_state *s, const char *line,
    size_t len, uint64_t lineno, struct ph_event *ev, struct ph_diag *diag)
{
	struct wxb_field f[WXB_COLS_MAX];
	int64_t amount[WXB__MAX];
	char state[32], buf[PH_ID_MAX + 1], text[WX_TEXT_MAX + 1];
	const struct wxb_field *c;
	int n, i, refund;

	if ((n = wxb_split(line, len, 1, f, WXB_COLS_MAX)) != s->ncols)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: %d fields, the "
		    "header has %d", (unsigned long long)lineno, n, s->ncols);
	/* Every money column, checked and summed on every row. */
	for (i = WXB_MONEY_FIRST; i < WXB__MAX; i++) {
		amount[i] = 0;
		if (s->col[i] < 0)
			continue;
		c = &f[s->col[i]];
		if (c->n > 0 && ph_money_parse_decimal(c->p, c->n, 2,
		    &amount[i]) != PH_OK)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: field "
			    "%d is not an amount in yuan",
			    (unsigned long long)lineno, s->col[i] + 1);
		if (s->money[i] > INT64_MAX - amount[i])
			return ph_fail(diag, PH_E_TOOBIG, "line %llu: the "
			    "bill's totals overflow", (unsigned long long)lineno);
		s->money[i] += amount[i];
	}
	s->rows++;

	c = &f[s->col[WXB_MCH]];
	if (wxb_str(c, buf, sizeof(buf)) != 0 || strcmp(buf, ctx->mch_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "line %llu: the merchant "
		    "id is not this profile's mch_id %s", (unsigned long long)lineno,
		    ctx->mch_id);
	if (s->col[WXB_SUB_MCH] >= 0) {
		c = &f[s->col[WXB_SUB_MCH]];
		if (!(c->n == 0 || wxb_is(c, "0")))
			return ph_fail(diag, PH_E_MERCHANT, "line %llu: a "
			    "sub-merchant's row: service-provider mode is not "
			    "supported", (unsigned long long)lineno);
	}
	if (wxb_str(&f[s->col[WXB_STATE]], state, sizeof(state)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the trade "
		    "state is invalid", (unsigned long long)lineno);
	if (strcmp(state, "SUCCESS") == 0)
		refund = 0;
	else if (strcmp(state, "REFUND") == 0)
		refund = 1;
	else if (strcmp(state, "REVOKED") == 0) {
		/* A micropay revoked after payment: no money stayed. */
		ev->kind = PH_EV_IGNORED;
		return PH_OK;
	} else {
		wx_query_text(text, sizeof(text), state);
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: trade state "
		    "%s is not SUCCESS, REFUND or REVOKED",
		    (unsigned long long)lineno, text);
	}

	if (refund) {
		if (s->col[WXB_REFUND_ID] < 0 || s->col[WXB_OUT_REFUND] < 0 ||
		    s->col[WXB_REFUND_STATUS] < 0 ||
		    (s->col[WXB_REFUND_FEE] < 0 &&
		    s->col[WXB_REFUND_ASKED] < 0))
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: a "
			    "refund in a bill without refund columns",
			    (unsigned long long)lineno);
		if (wxb_str(&f[s->col[WXB_REFUND_STATUS]], state,
		    sizeof(state)) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: the refund "
			    "status is invalid", (unsigned long long)lineno);
		if (strcmp(state, "PROCESSING") == 0 ||
		    strcmp(state, "CHANGE") == 0 ||
		    strcmp(state, "REFUNDCLOSE") == 0 ||
		    strcmp(state, "FAIL") == 0) {
			/* No money went back (yet). */
			ev->kind = PH_EV_IGNORED;
			return PH_OK;
		}
		if (strcmp(state, "SUCCESS") != 0) {
			wx_query_text(text, sizeof(text), state);
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: refund "
			    "status %s is unknown", (unsigned long long)lineno, text);
		}
		ev->kind = PH_EV_REFUND_SUCCEEDED;
		ev->amount = s->col[WXB_REFUND_ASKED] >= 0 ?
		    amount[WXB_REFUND_ASKED] : amount[WXB_REFUND_FEE];
		c = &f[s->col[s->col[WXB_REFUND_ASKED] >= 0 ?
		    WXB_REFUND_ASKED : WXB_REFUND_FEE]];
	} else {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		ev->amount = s->col[WXB_TOTAL] >= 0 ? amount[WXB_TOTAL] :
		    amount[WXB_ORDER_AMOUNT];
		c = &f[s->col[s->col[WXB_TOTAL] >= 0 ? WXB_TOTAL :
		    WXB_ORDER_AMOUNT]];
	}
	if (c->n == 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the amount "
		    "(field %d) is empty", (unsigned long long)lineno,
		    (int)(c - f) + 1);

	/* The identifiers, as the notification of the same fact has them. */
	if (wxb_str(&f[s->col[WXB_ORDER]], buf, sizeof(buf)) != 0 ||
	    !ph_token_valid(buf, strlen(buf), WX_ID_MAX, WX_ORDER_EXTRA))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the merchant "
		    "order number is not a valid out_trade_no", (unsigned long long)lineno);
	memcpy(ev->order_id, buf, strlen(buf) + 1);
	if (wxb_str(&f[s->col[WXB_TXN]], buf, sizeof(buf)) != 0 ||
	    !ph_token_valid(buf, strlen(buf), WX_ID_MAX, NULL))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the WeChat "
		    "order number is not a valid transaction_id", (unsigned long long)lineno);
	memcpy(ev->txn_id, buf, strlen(buf) + 1);
	if (wxb_str(&f[s->col[WXB_CURRENCY]], buf, sizeof(buf)) != 0 ||
	    !ph_currency_valid(buf))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the currency "
		    "is not a currency code", (unsigned long long)lineno);
	memcpy(ev->currency, buf, 4);
	c = &f[s->col[WXB_TIME]];
	if (wxb_str(c, buf, sizeof(buf)) != 0 ||
	    wx_time_dashed(buf, strlen(buf), &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the time is "
		    "not yyyy-MM-dd HH:mm:ss", (unsigned long long)lineno);
	if (refund) {
		if (wxb_str(&f[s->col[WXB_REFUND_ID]], buf, sizeof(buf)) != 0 ||
		    !ph_token_valid(buf, strlen(buf), WX_ID_MAX, NULL))
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: the WeChat "
			    "refund number is invalid", (unsigned long long)lineno);
		memcpy(ev->refund_id, buf, strlen(buf) + 1);
		if (wxb_str(&f[s->col[WXB_OUT_REFUND]], buf, sizeof(buf)) !=
		    0 || !ph_token_valid(buf, strlen(buf), WX_REFUND_ID_MAX,
		    WX3_REFUND_EXTRA))
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: the merchant "
			    "refund number is invalid", (unsigned long long)lineno);
		memcpy(ev->merchant_refund_id, buf, strlen(buf) + 1);
		snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "refund:%s:SUCCESS", ev->refund_id);
	} else
		/* The key of the payment's notification and query. */
		snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s",
		    ev->txn_id);
	return PH_OK;
}

/* The end: the summary must have been read and must agree. */
static int
wxb_end(const struct wxb_state *s, const struct ph_statement *st,
    struct ph_diag *diag)
{
	static const char *const names[WXB__MAX] = {
		[WXB_TOTAL] = "total amount",
		[WXB_ORDER_AMOUNT] = "order amount",
		[WXB_SETTLE] = "settlement amount",
		[WXB_REFUND_FEE] = "refund amount",
		[WXB_REFUND_ASKED] = "requested refund amount",
	};
	int i;

	if (s->phase != WXB_DONE)
		return ph_fail(diag, PH_E_MALFORMED, "the bill ends after line "
		    "%llu without its summary (truncated?)",
		    (unsigned long long)(st->line));
	if (s->count < 0 || (uint64_t)s->count != s->rows)
		return ph_fail(diag, PH_E_MALFORMED, "summary: the row count "
		    "says %lld rows, the bill has %llu", (long long)s->count,
		    (unsigned long long)s->rows);
	for (i = WXB_MONEY_FIRST; i < WXB__MAX; i++)
		if (s->sum[i] >= 0 && s->money[i] != s->want[i])
			return ph_fail(diag, PH_E_MALFORMED, "summary: the total "
			    "of %s is %lld fen, the rows add up to %lld",
			    names[i], (long long)s->want[i],
			    (long long)s->money[i]);
	return PH_OK;
}

/* One line of the bill, or its end (line NULL). */
static int
wxb_step(const void *p, void *state, const struct ph_statement *st,
    const char *line, size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;
	struct wxb_state *s = state;

	if (line == NULL) {
		if (s->phase == WXB_HEADER)
			return ph_fail(diag, PH_E_MALFORMED, "the bill is "
			    "empty");
		return wxb_end(s, st, diag);
	}
	switch (s->phase) {
	case WXB_HEADER:
		return wxb_header(s, line, len, st->line, diag);
	case WXB_ROWS:
		if (len > 0 && line[0] == '`')
			return wxb_row(ctx, s, line, len, st->line, ev, diag);
		if (len > 0)
			return wxb_summary_header(s, line, len, st->line, diag);
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: an empty line "
		    "among the rows", (unsigned long long)st->line);
	case WXB_SUMMARY:
		return wxb_summary(s, line, len, st->line, diag);
	default:
		if (len > 0)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: text "
			    "after the summary", (unsigned long long)st->line);
		return PH_OK;
	}
}

static int
wx_statement_line(void *p, struct ph_statement *st, const char *line,
    size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	struct wxb_state s;

	/* A zeroed state is WXB_HEADER: nothing read yet. */
	return ph_statement_drive(p, st, &s, sizeof(s), WXB_MAGIC, wxb_step,
	    line, len, ev, diag);
}

/* ---- The table: one entry per call, dispatched on api_version ----------- */

static int
wx_dispatch_query_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3)
		return wx3_query_request(ctx, order, cc, out, diag);
	return wx_query_request(p, order, cc, out, diag);
}

static int
wx_dispatch_query_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3)
		return wx3_query_response(ctx, order, in, ev, diag);
	return wx_query_response(p, order, in, ev, diag);
}

/* Closing an order is implemented for API v2 only. */
static int
wx_dispatch_close_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3) {
		if (out != NULL)
			memset(out, 0, sizeof(*out));
		return ph_fail(diag, PH_E_UNSUPPORTED, "close is not "
		    "implemented for api_version = 3 profiles");
	}
	return wx_close_request(p, order, cc, out, diag);
}

static int
wx_dispatch_close_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3) {
		if (ev != NULL)
			memset(ev, 0, sizeof(*ev));
		return ph_fail(diag, PH_E_UNSUPPORTED, "close is not "
		    "implemented for api_version = 3 profiles");
	}
	return wx_close_response(p, order, in, ev, diag);
}

/*
 * The order a v2 notification names, read without verifying it: the core
 * only queries that order at WeChat, it never applies anything from here.
 * v3 notifications carry the order inside the encrypted resource: no hint.
 */
static int
wx_notify_hint(void *p, const struct ph_request *req,
    char order_id[PH_ID_MAX + 1])
{
	const struct wx_ctx *ctx = p;
	struct ph_kvlist kv;
	const char *v;
	int rc;

	if (ctx == NULL || req == NULL || ctx->api_version == 3)
		return PH_E_UNSUPPORTED;
	if ((rc = ph_xml_parse_flat(req->body, req->body_len, "xml",
	    &wx_xml_limits, &kv, NULL)) != PH_OK)
		return rc;
	v = wx_get(&kv, "out_trade_no");
	rc = v != NULL ? ph_copy_token(order_id, PH_ID_MAX + 1, v, "_-|*",
	    "out_trade_no", NULL) : PH_E_FIELD;
	ph_kvlist_free(&kv);
	return rc;
}

PH_PROVIDER_DEFINE_HINT("wechat",
    "WeChat Pay API v2 and v3 notifications, order query, refunds and "
    "trade bills; v2 close",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE | PH_CAP_REFUND |
    PH_CAP_STATEMENT, wx_conf_keys,
    wx_profile_new, wx_profile_free, wx_parse_notify, wx_ack,
    wx_dispatch_query_request, wx_dispatch_query_response,
    wx_dispatch_close_request, wx_dispatch_close_response,
    wx_refund_request, wx_refund_response, wx_statement_line,
    wx_notify_hint)
