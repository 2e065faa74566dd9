/*
 * Alipay open platform (支付宝开放平台): the asynchronous notification,
 * alipay.trade.query, alipay.trade.close, alipay.trade.refund and the
 * trade-detail bill (业务明细) for reconciliation.
 *
 * Notifications are forms signed with RSA2 (SHA256withRSA) by Alipay's
 * key over the sorted k=v string of every received parameter except sign
 * and sign_type.  Requests are forms signed the same way with the app's
 * private key (sign_type included, empty values left out); answers are
 * JSON whose response object is signed over its text exactly as it
 * appears in the body.  Order of work: a bounded strict parse, the
 * signature, then the app and seller, then the business fields.  See
 * README.md for the readings chosen where Alipay's documents are unclear.
 */
#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#define ALI_BEIJING	28800	/* gmt_* and timestamps: UTC+8 */
#define ALI_APPID_MAX	32
#define ALI_SELLER_MAX	32	/* "2088" and 12 digits in practice */
#define ALI_ORDER_EXTRA	"_-|*.:"	/* what payhook takes in order ids */
#define ALI_ID_EXTRA	"_-"
#define ALI_NOTIFY_ID_MAX 128
#define ALI_PATH	"/gateway.do"
#define ALI_FORM_CT	"application/x-www-form-urlencoded;charset=utf-8"
#define ALI_LINE_MAX	(16 * 1024)	/* one statement line, as UTF-8 */
#define ALI_COLS_MAX	64

/* Parallel to the values the core hands profile_new(). */
enum ali_conf {
	ALI_CONF_APP_ID,
	ALI_CONF_SELLER_ID,
	ALI_CONF_ALIPAY_PUBLIC_KEY_FILE,
	ALI_CONF_APP_PRIVATE_KEY_FILE,
	ALI_CONF__MAX
};

static const struct ph_conf_key ali_conf_keys[ALI_CONF__MAX + 1] = {
	[ALI_CONF_APP_ID] = { "app_id", PH_CONF_STRING, 1, NULL, 0, 0, NULL,
	    "the application (app_id) notifications must be addressed to" },
	[ALI_CONF_SELLER_ID] = { "seller_id", PH_CONF_STRING, 1, NULL, 0, 0,
	    NULL, "the seller's Alipay user id (2088...) payments must "
	    "go to" },
	[ALI_CONF_ALIPAY_PUBLIC_KEY_FILE] = { "alipay_public_key_file",
	    PH_CONF_FILE, 1, NULL, 0, 0, NULL,
	    "Alipay's RSA2 public key (PEM, or the console's base64 text)" },
	[ALI_CONF_APP_PRIVATE_KEY_FILE] = { "app_private_key_file",
	    PH_CONF_SECRET_FILE, 0, NULL, 0, 0, NULL,
	    "the app's private key that signs requests (PEM or base64)" },
	[ALI_CONF__MAX] = { NULL, 0, 0, NULL, 0, 0, NULL, NULL },
};

static const struct ph_form_limits ali_form_limits = {
	.max_bytes = 32 * 1024,
	.max_fields = 96,
	.max_value = 8192,
};

static const struct ph_json_limits ali_json_limits = {
	.max_bytes = 256 * 1024,
	.max_depth = 8,
};

struct ali_ctx {
	char app_id[ALI_APPID_MAX + 1];
	char seller_id[ALI_SELLER_MAX + 1];
	struct ph_key *alipay_key;	/* verifies notifications, answers */
	struct ph_key *app_key;		/* signs requests; NULL: none */
};

/* What an outbound call is, for the names of its answer. */
struct ali_method {
	const char *method;		/* "alipay.trade.query" */
	const char *node;		/* "alipay_trade_query_response" */
};

static const struct ali_method ali_query = {
	"alipay.trade.query", "alipay_trade_query_response" };
static const struct ali_method ali_close = {
	"alipay.trade.close", "alipay_trade_close_response" };
static const struct ali_method ali_refund = {
	"alipay.trade.refund", "alipay_trade_refund_response" };

/* ---- Profiles ------------------------------------------------------------ */

static void
ali_profile_free(void *p)
{
	struct ali_ctx *ctx = p;

	if (ctx == NULL)
		return;
	ph_key_free(ctx->alipay_key);
	ph_key_free(ctx->app_key);
	free(ctx);
}

static const struct ph_conf_value *
ali_conf(const struct ph_conf *conf, const char *name)
{
	const struct ph_conf_value *v = ph_conf_get(conf, name);

	return v != NULL && v->present ? v : NULL;
}

static int
ali_profile_new(const struct ph_conf *conf, void **out, struct ph_diag *diag)
{
	const struct ph_conf_value *v;
	struct ali_ctx *ctx;
	int rc;

	*out = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	rc = PH_E_CONFIG;
	if ((v = ali_conf(conf, "app_id")) == NULL) {
		ph_fail(diag, rc, "app_id is required");
		goto fail;
	}
	if (ph_copy_token(ctx->app_id, sizeof(ctx->app_id), v->str, NULL,
	    "app_id", diag) != PH_OK)
		goto fail;
	if ((v = ali_conf(conf, "seller_id")) == NULL) {
		ph_fail(diag, rc, "seller_id is required");
		goto fail;
	}
	if (ph_copy_token(ctx->seller_id, sizeof(ctx->seller_id), v->str,
	    NULL, "seller_id", diag) != PH_OK)
		goto fail;
	if ((v = ali_conf(conf, "alipay_public_key_file")) == NULL) {
		ph_fail(diag, rc, "alipay_public_key_file is required");
		goto fail;
	}
	/* Keys as Alipay's console and key tool hand them out: PEM, or the
	 * DER in bare base64.  Certificates (Alipay's certificate mode) are
	 * not supported. */
	if ((rc = ph_key_load(&v->blob, PH_KEY_PUBLIC, PH_KEY_BASE64,
	    "alipay_public_key_file", &ctx->alipay_key, diag)) != PH_OK)
		goto fail;
	if ((v = ali_conf(conf, "app_private_key_file")) != NULL &&
	    (rc = ph_key_load(&v->blob, PH_KEY_PRIVATE, PH_KEY_BASE64,
	    "app_private_key_file", &ctx->app_key, diag)) != PH_OK)
		goto fail;
	*out = ctx;
	return PH_OK;
fail:
	ali_profile_free(ctx);
	return rc;
}

/* ---- RSA2 ---------------------------------------------------------------- */

/* SHA256withRSA (PKCS#1 v1.5) of a base64 signature over msg. */
static int
ali_verify(const struct ali_ctx *ctx, const char *b64, size_t b64_len,
    const void *msg, size_t msg_len, struct ph_diag *diag)
{
	unsigned char sig[PH_RSA_SIG_MAX];
	size_t sig_len;

	if (ph_base64_decode(b64, b64_len, sig, sizeof(sig), &sig_len) !=
	    PH_OK || sig_len == 0)
		return ph_fail(diag, PH_E_SIGNATURE, "sign is not valid base64");
	if (sig_len != ph_key_size(ctx->alipay_key))
		return ph_fail(diag, PH_E_SIGNATURE, "sign of %zu bytes does "
		    "not fit Alipay's key", sig_len);
	if (ph_rsa_verify(ctx->alipay_key, "SHA256", msg, msg_len, sig,
	    sig_len, diag) != PH_OK)
		return ph_fail(diag, PH_E_SIGNATURE, "RSA2 signature does not "
		    "verify with Alipay's key");
	return PH_OK;
}

/* Appends the base64 SHA256withRSA signature of msg by the app's key. */
static int
ali_sign(const struct ali_ctx *ctx, const void *msg, size_t msg_len,
    struct ph_buf *out, struct ph_diag *diag)
{
	return ph_rsa_sign(ctx->app_key, "SHA256", msg, msg_len, out, diag);
}

/* ---- Small parsers ------------------------------------------------------- */

static int
ali_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Unix seconds as "yyyy-MM-dd HH:mm:ss" in Beijing time. */
static int
ali_time_text(int64_t t, char out[20])
{
	time_t bj;
	struct tm tm;

	if (t < 0 || t > INT64_C(253402271999) - ALI_BEIJING)
		return PH_E_FIELD;
	bj = (time_t)(t + ALI_BEIJING);
	if (gmtime_r(&bj, &tm) == NULL ||
	    strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm) != 19)
		return PH_E_FIELD;
	return PH_OK;
}

/* Yuan with at most two decimals, exactly, into fen. */
static int
ali_yuan(const char *s, size_t len, int64_t *out)
{
	return ph_money_parse_decimal(s, len, 2, out);
}

/* As ali_yuan, with an optional leading '-' (bills). */
static int
ali_yuan_signed(const char *s, size_t len, int64_t *out)
{
	int neg = len > 0 && s[0] == '-';
	int64_t v;

	if (ph_money_parse_decimal(s + neg, len - (size_t)neg, 2, &v) !=
	    PH_OK)
		return PH_E_FIELD;
	*out = neg ? -v : v;
	return PH_OK;
}

/* Printable text for a diagnostic: control bytes become spaces. */
static const char *
ali_diag_text(const char *v, char *buf, size_t cap)
{
	size_t i;

	if (v == NULL || v[0] == '\0')
		return "-";
	for (i = 0; v[i] != '\0' && i + 1 < cap; i++)
		buf[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? ' ' :
		    v[i];
	buf[i] = '\0';
	return buf;
}

static int
ali_is(const char *v, const char *const *set)
{
	size_t i;

	for (i = 0; v != NULL && set[i] != NULL; i++)
		if (strcmp(v, set[i]) == 0)
			return 1;
	return 0;
}

static const char *const ali_paid_states[] = {
	"TRADE_SUCCESS", "TRADE_FINISHED", NULL };

/* ---- Notifications ------------------------------------------------------- */

/* A present, non-empty value. */
static const char *
ali_get(const struct ph_kvlist *kv, const char *name)
{
	const char *v = ph_kvlist_get(kv, name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

static int
ali_token(const struct ph_kvlist *kv, const char *name, char *dst,
    size_t cap, const char *extra, struct ph_diag *diag)
{
	const char *v = ali_get(kv, name);

	dst[0] = '\0';
	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "%s: missing", name);
	return ph_copy_token(dst, cap, v, extra, name, diag);
}

/* Every name a plain ASCII identifier: sorting is then the SDK's, and no
 * name can bring '=' or '&' into the sign string. */
static int
ali_check_names(const struct ph_kvlist *kv, struct ph_diag *diag)
{
	size_t i;

	for (i = 0; i < kv->n; i++)
		if (!ph_token_valid(kv->items[i].key,
		    strlen(kv->items[i].key), 64, "_"))
			return ph_fail(diag, PH_E_MALFORMED,
			    "a field name that is not an ASCII identifier");
	return PH_OK;
}

/*
 * The one "valid" answer: sign_type RSA2 (RSA, i.e. SHA1withRSA, is
 * refused), and an RSA2 signature by Alipay's key over every received
 * field except sign and sign_type, empty values included, sorted by name
 * byte-wise, joined as k=v&k=v over the decoded bytes as received.
 */
static int
ali_verify_notify(const struct ali_ctx *ctx, const struct ph_kvlist *kv,
    struct ph_diag *diag)
{
	static const char *const skip[] = { "sign", "sign_type", NULL };
	const char *type, *sign;
	char buf[24];
	struct ph_buf s;
	int rc;

	if ((rc = ali_check_names(kv, diag)) != PH_OK)
		return rc;
	if ((type = ali_get(kv, "sign_type")) == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "sign_type: missing");
	if (strcmp(type, "RSA2") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "sign_type %s is not "
		    "supported: only RSA2 (SHA256withRSA)",
		    ali_diag_text(type, buf, sizeof(buf)));
	if ((sign = ali_get(kv, "sign")) == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "message is not signed");
	ph_buf_init(&s, ali_form_limits.max_bytes);
	if ((rc = ph_canonical_join(kv, skip, 0, &s)) != PH_OK) {
		ph_buf_free(&s);
		return ph_fail(diag, rc, "cannot build the sign string");
	}
	rc = ali_verify(ctx, sign, strlen(sign), s.data != NULL ? s.data : "",
	    s.len, diag);
	ph_buf_free(&s);
	return rc;
}

/* The app and the seller: is a verified message ours? */
static int
ali_check_party(const struct ali_ctx *ctx, const char *app_id,
    const char *seller_id, struct ph_diag *diag)
{
	if (app_id == NULL || !ph_ct_equal(app_id, strlen(app_id),
	    ctx->app_id, strlen(ctx->app_id)))
		return ph_fail(diag, PH_E_MERCHANT, "app_id does not match "
		    "the profile");
	if (seller_id == NULL || !ph_ct_equal(seller_id, strlen(seller_id),
	    ctx->seller_id, strlen(ctx->seller_id)))
		return ph_fail(diag, PH_E_MERCHANT, "seller_id does not match "
		    "the profile");
	return PH_OK;
}

/* Domestic trades are in CNY; a cross-border trade priced in another
 * currency (trans_currency) is refused rather than read as yuan. */
static int
ali_check_currency(const char *trans, struct ph_diag *diag)
{
	char buf[16];

	if (trans != NULL && trans[0] != '\0' && strcmp(trans, "CNY") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "trans_currency %s: "
		    "only CNY trades are supported",
		    ali_diag_text(trans, buf, sizeof(buf)));
	return PH_OK;
}

static int
ali_opt_time(const struct ph_kvlist *kv, const char *name, int64_t *out,
    struct ph_diag *diag)
{
	const char *v = ali_get(kv, name);

	*out = 0;
	if (v == NULL)
		return PH_OK;
	if (ph_time_parse_dashed(v, strlen(v), ALI_BEIJING, out) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "%s: not yyyy-MM-dd HH:mm:ss",
		    name);
	return PH_OK;
}

/* A verified notification of ours: what it says. */
static int
ali_notify_event(const struct ph_kvlist *kv, struct ph_event *ev,
    struct ph_diag *diag)
{
	char notify_id[ALI_NOTIFY_ID_MAX + 1], buf[40];
	const char *v, *status;
	int rc;

	if ((v = ali_get(kv, "notify_type")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "notify_type: missing");
	if (strcmp(v, "trade_status_sync") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "notify_type %s is not "
		    "trade_status_sync", ali_diag_text(v, buf, sizeof(buf)));
	if ((rc = ali_check_currency(ali_get(kv, "trans_currency"), diag)) !=
	    PH_OK)
		return rc;
	if ((rc = ali_token(kv, "out_trade_no", ev->order_id,
	    sizeof(ev->order_id), ALI_ORDER_EXTRA, diag)) != PH_OK ||
	    (rc = ali_token(kv, "trade_no", ev->txn_id, sizeof(ev->txn_id),
	    NULL, diag)) != PH_OK ||
	    (rc = ali_token(kv, "notify_id", notify_id, sizeof(notify_id),
	    ALI_ID_EXTRA, diag)) != PH_OK)
		return rc;
	if ((v = ali_get(kv, "total_amount")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "total_amount: missing");
	if (ali_yuan(v, strlen(v), &ev->amount) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "total_amount: not yuan with "
		    "at most two decimals");
	memcpy(ev->currency, "CNY", 4);
	if ((status = ali_get(kv, "trade_status")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "trade_status: missing");

	if (ali_is(status, ali_paid_states)) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		if ((v = ali_get(kv, "gmt_payment")) == NULL)
			return ph_fail(diag, PH_E_FIELD,
			    "gmt_payment: missing");
		if (ph_time_parse_dashed(v, strlen(v), ALI_BEIJING,
		    &ev->occurred_at) != PH_OK)
			return ph_fail(diag, PH_E_FIELD, "gmt_payment: not "
			    "yyyy-MM-dd HH:mm:ss");
		/* The key a query or a bill line of this payment carries. */
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s",
		    ev->txn_id);
	} else {
		if (strcmp(status, "TRADE_CLOSED") == 0) {
			ev->kind = PH_EV_PAYMENT_CLOSED;
			rc = ali_opt_time(kv, "gmt_close", &ev->occurred_at,
			    diag);
		} else if (strcmp(status, "WAIT_BUYER_PAY") == 0) {
			ev->kind = PH_EV_PAYMENT_PENDING;
			rc = ali_opt_time(kv, "gmt_create", &ev->occurred_at,
			    diag);
		} else
			return ph_fail(diag, PH_E_UNSUPPORTED, "trade_status "
			    "%s is not one this plugin knows",
			    ali_diag_text(status, buf, sizeof(buf)));
		if (rc != PH_OK)
			return rc;
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key), "ali:%s",
		    notify_id);
	}
	if (rc < 0 || rc >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/* Only forms are decoded as forms. */
static int
ali_is_form(const char *ct)
{
	static const char form[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(form) - 1;

	if (ct == NULL || strncasecmp(ct, form, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' ||
	    ct[n] == '\t';
}

static int
ali_parse_notify(void *p, const struct ph_request *req, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ali_ctx *ctx = p;
	struct ph_kvlist kv;
	int rc;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if (req->content_type != NULL && req->content_type[0] != '\0' &&
	    !ali_is_form(req->content_type))
		return ph_fail(diag, PH_E_MALFORMED, "Content-Type is not "
		    "application/x-www-form-urlencoded");
	if ((rc = ph_form_parse(req->body, req->body_len, &ali_form_limits,
	    &kv, diag)) != PH_OK)
		return rc;
	if ((rc = ali_verify_notify(ctx, &kv, diag)) == PH_OK &&
	    (rc = ali_check_party(ctx, ali_get(&kv, "app_id"),
	    ali_get(&kv, "seller_id"), diag)) == PH_OK)
		rc = ali_notify_event(&kv, ev, diag);
	ph_kvlist_free(&kv);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* ---- Acknowledgement ----------------------------------------------------- */

/*
 * Alipay reads the body only: exactly "success" stops the re-sends,
 * anything else is a failure it retries.  The status tells the web
 * server's log and payhook's metrics apart: 200 received, 400 refused,
 * 500 not recorded.
 */
static void
ali_ack(void *p, enum ph_ack_kind kind, const char *reason,
    struct ph_response *out)
{
	const char *text = "failure";

	(void)p;
	(void)reason;
	memset(out, 0, sizeof(*out));
	switch (kind) {
	case PH_ACK_OK:
		out->status = 200;
		text = "success";
		break;
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
	out->body_len = strlen(text);
	memcpy(out->body, text, out->body_len);
	memcpy(out->content_type, "text/plain", sizeof("text/plain"));
}

/* ---- Requests ------------------------------------------------------------ */

static int
ali_set_str(json_t *o, const char *k, const char *v)
{
	json_t *s = json_string(v);

	return s != NULL && json_object_set_new(o, k, s) == 0 ? 0 : -1;
}

/*
 * A signed request: the public parameters and biz_content (JSON text of
 * biz, compact, members in order), signed over every non-empty
 * parameter but sign, sorted, k=v&k=v; POSTed as a form to /gateway.do.
 */
static int
ali_build(const struct ali_ctx *ctx, const char *method, const json_t *biz,
    int64_t now, struct ph_http_request *out, struct ph_diag *diag)
{
	static const char *const skip[] = { "sign", NULL };
	struct ph_kvlist kv;
	struct ph_buf s, sig, body;
	char ts[20], *biz_text = NULL;
	size_t i;
	int rc;
	const char *fields[][2] = {
		{ "app_id", ctx->app_id },
		{ "biz_content", NULL },
		{ "charset", "utf-8" },
		{ "format", "JSON" },
		{ "method", method },
		{ "sign_type", "RSA2" },
		{ "timestamp", ts },
		{ "version", "1.0" },
	};

	memset(out, 0, sizeof(*out));
	if (ctx->app_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "Alipay calls need "
		    "app_private_key_file in the profile");
	if (ali_time_text(now, ts) != PH_OK)
		return ph_fail(diag, PH_E_INTERNAL, "time out of range");
	if ((biz_text = json_dumps(biz, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	    NULL)
		return ph_fail(diag, PH_E_NOMEM, "cannot write biz_content");
	fields[1][1] = biz_text;

	ph_kvlist_init(&kv, 16);
	ph_buf_init(&s, PH_HTTP_BODY_MAX);
	ph_buf_init(&sig, 2 * PH_RSA_SIG_MAX);
	ph_buf_init(&body, sizeof(out->body));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((rc = ph_kvlist_add(&kv, fields[i][0],
		    strlen(fields[i][0]), fields[i][1], strlen(fields[i][1]),
		    diag)) != PH_OK)
			goto out;
	if ((rc = ph_canonical_join(&kv, skip, 1, &s)) != PH_OK) {
		ph_fail(diag, rc, "cannot build the sign string");
		goto out;
	}
	if ((rc = ali_sign(ctx, s.data, s.len, &sig, diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&kv, "sign", 4, sig.data, sig.len,
	    diag)) != PH_OK)
		goto out;
	if ((rc = ph_form_write(&kv, &body)) != PH_OK) {
		ph_fail(diag, rc, "request larger than %zu bytes",
		    sizeof(out->body));
		goto out;
	}
	memcpy(out->method, "POST", sizeof("POST"));
	memcpy(out->path, ALI_PATH, sizeof(ALI_PATH));
	memcpy(out->content_type, ALI_FORM_CT, sizeof(ALI_FORM_CT));
	memcpy(out->body, body.data, body.len);
	out->body_len = body.len;
out:
	free(biz_text);
	ph_kvlist_free(&kv);
	ph_buf_free(&s);
	ph_buf_free(&sig);
	ph_buf_free(&body);
	if (rc != PH_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

static int
ali_order_id_ok(const char *id)
{
	return id != NULL && ph_token_valid(id, strlen(id), PH_ID_MAX,
	    ALI_ORDER_EXTRA);
}

/* {"out_trade_no": order id}: what query and close send. */
static int
ali_trade_request(void *p, const struct ali_method *m,
    const struct ph_order_ref *order, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag)
{
	const struct ali_ctx *ctx = p;
	json_t *biz;
	int rc;

	if (ctx == NULL || order == NULL || cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(out, 0, sizeof(*out));
	if (!ali_order_id_ok(order->order_id))
		return ph_fail(diag, PH_E_FIELD, "order id is not an Alipay "
		    "out_trade_no");
	if ((biz = json_object()) == NULL ||
	    ali_set_str(biz, "out_trade_no", order->order_id) != 0) {
		json_decref(biz);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
	rc = ali_build(ctx, m->method, biz, cc->now, out, diag);
	json_decref(biz);
	return rc;
}

static int
ali_query_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	return ali_trade_request(p, &ali_query, order, cc, out, diag);
}

static int
ali_close_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	return ali_trade_request(p, &ali_close, order, cc, out, diag);
}

/* Fen as yuan text: 1234 -> "12.34". */
static int
ali_yuan_text(int64_t fen, char *out, size_t cap)
{
	int n;

	if (fen < 0 || fen > PH_AMOUNT_MAX)
		return PH_E_FIELD;
	n = snprintf(out, cap, "%lld.%02lld", (long long)(fen / 100),
	    (long long)(fen % 100));
	return n > 0 && (size_t)n < cap ? PH_OK : PH_E_FIELD;
}

/* alipay.trade.refund with out_request_no = payhook's refund id, so a
 * retry can never refund twice. */
static int
ali_refund_request(void *p, const struct ph_refund_ref *ref,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	const struct ali_ctx *ctx = p;
	char amount[32];
	json_t *biz;
	int rc;

	if (ctx == NULL || ref == NULL || cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(out, 0, sizeof(*out));
	if (!ali_order_id_ok(ref->order_id))
		return ph_fail(diag, PH_E_FIELD, "order id is not an Alipay "
		    "out_trade_no");
	if (ref->refund_id == NULL || !ph_token_valid(ref->refund_id,
	    strlen(ref->refund_id), 64, ALI_ID_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "refund id is not an Alipay "
		    "out_request_no");
	if (ref->txn_id != NULL && ref->txn_id[0] != '\0' &&
	    !ph_token_valid(ref->txn_id, strlen(ref->txn_id), PH_ID_MAX, NULL))
		return ph_fail(diag, PH_E_FIELD, "transaction id is not an "
		    "Alipay trade_no");
	if (ref->currency == NULL || strcmp(ref->currency, "CNY") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "Alipay refunds are in "
		    "CNY");
	if (ref->amount <= 0 || (ref->payment_amount > 0 &&
	    ref->amount > ref->payment_amount) ||
	    ali_yuan_text(ref->amount, amount, sizeof(amount)) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "refund amount %lld is not "
		    "refundable", (long long)ref->amount);
	if ((biz = json_object()) == NULL ||
	    ali_set_str(biz, "out_trade_no", ref->order_id) != 0 ||
	    (ref->txn_id != NULL && ref->txn_id[0] != '\0' &&
	    ali_set_str(biz, "trade_no", ref->txn_id) != 0) ||
	    ali_set_str(biz, "refund_amount", amount) != 0 ||
	    ali_set_str(biz, "out_request_no", ref->refund_id) != 0) {
		json_decref(biz);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
	/* json_string refuses text that is not UTF-8: no reason then. */
	if (ref->reason != NULL && ref->reason[0] != '\0' &&
	    ali_set_str(biz, "refund_reason", ref->reason) != 0) {
		json_decref(biz);
		return ph_fail(diag, PH_E_FIELD, "refund reason is not UTF-8");
	}
	rc = ali_build(ctx, ali_refund.method, biz, cc->now, out, diag);
	json_decref(biz);
	return rc;
}

/* ---- Answers ------------------------------------------------------------- */

/*
 * The raw text of a top-level member's value in a JSON document that
 * jansson has already accepted: Alipay signs the response object as the
 * bytes it sent, so they are found, never re-serialised.  A scanner for
 * valid JSON, bounded by len all the same.
 */
static int
ali_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t
ali_json_ws(const char *s, size_t i, size_t n)
{
	while (i < n && ali_is_space((unsigned char)s[i]))
		i++;
	return i;
}

static int
ali_json_skip_string(const char *s, size_t n, size_t *i)
{
	size_t j = *i + 1;

	while (j < n && s[j] != '"')
		j += s[j] == '\\' ? 2 : 1;
	if (j >= n)
		return -1;
	*i = j + 1;
	return 0;
}

static int
ali_json_skip_value(const char *s, size_t n, size_t *i)
{
	size_t depth = 0, j = *i;

	if (j >= n)
		return -1;
	if (s[j] != '{' && s[j] != '[' && s[j] != '"') {
		/* A number or a literal: up to what ends it. */
		while (j < n && s[j] != ',' && s[j] != '}' && s[j] != ']' &&
		    !ali_is_space((unsigned char)s[j]))
			j++;
		if (j == *i)
			return -1;
		*i = j;
		return 0;
	}
	do {
		if (j >= n)
			return -1;
		if (s[j] == '"') {
			if (ali_json_skip_string(s, n, &j) != 0)
				return -1;
			continue;
		}
		if (s[j] == '{' || s[j] == '[')
			depth++;
		else if (s[j] == '}' || s[j] == ']')
			depth--;
		j++;
	} while (depth > 0);
	*i = j;
	return 0;
}

static int
ali_json_member_raw(const char *s, size_t n, const char *name,
    const char **val, size_t *val_len)
{
	size_t i, ks, ke, vs, nl = strlen(name);
	int found = 0;

	*val = NULL;
	*val_len = 0;
	i = ali_json_ws(s, 0, n);
	if (i >= n || s[i] != '{')
		return -1;
	i = ali_json_ws(s, i + 1, n);
	if (i < n && s[i] == '}')
		return -1;
	for (;;) {
		if (i >= n || s[i] != '"')
			return -1;
		ks = i + 1;
		if (ali_json_skip_string(s, n, &i) != 0)
			return -1;
		ke = i - 1;
		i = ali_json_ws(s, i, n);
		if (i >= n || s[i] != ':')
			return -1;
		i = ali_json_ws(s, i + 1, n);
		vs = i;
		if (ali_json_skip_value(s, n, &i) != 0)
			return -1;
		if (ke - ks == nl && memcmp(s + ks, name, nl) == 0) {
			if (found++)
				return -1;
			*val = s + vs;
			*val_len = i - vs;
		}
		i = ali_json_ws(s, i, n);
		if (i < n && s[i] == ',') {
			i = ali_json_ws(s, i + 1, n);
			continue;
		}
		if (i < n && s[i] == '}')
			break;
		return -1;
	}
	return found == 1 ? 0 : -1;
}

/* What a verified answer of code != 10000 says, for the diagnostic. */
static int
ali_provider_error(const json_t *r, const char *what, int verified,
    struct ph_diag *diag)
{
	char c[16], m[96], sc[64], sm[160];

	return ph_fail(diag, PH_E_PROVIDER, "Alipay %s the %s: code %s (%s), "
	    "sub_code %s (%s)%s", verified ? "refused" : "answered",
	    what,
	    ali_diag_text(json_string_value(json_object_get(r, "code")), c,
	    sizeof(c)),
	    ali_diag_text(json_string_value(json_object_get(r, "msg")), m,
	    sizeof(m)),
	    ali_diag_text(json_string_value(json_object_get(r, "sub_code")),
	    sc, sizeof(sc)),
	    ali_diag_text(json_string_value(json_object_get(r, "sub_msg")),
	    sm, sizeof(sm)),
	    verified ? "" : " (unsigned)");
}

/*
 * Parses an answer, finds the response object by its name, verifies the
 * RSA2 sign over its raw text, and returns the object (*root to free).
 * An unsigned answer that reports an error is PH_E_PROVIDER (nothing is
 * believed from it); any other unsigned or badly signed one is refused.
 */
static int
ali_open_answer(const struct ali_ctx *ctx, const struct ali_method *m,
    const struct ph_http_response *in, json_t **root, const json_t **resp,
    struct ph_diag *diag)
{
	const char *raw, *sign = NULL, *what = m->method;
	const json_t *r;
	size_t raw_len, sign_len = 0;
	int rc;

	*root = NULL;
	*resp = NULL;
	if (in->status != 200)
		return ph_fail(diag, PH_E_PROVIDER, "Alipay answered %s with "
		    "HTTP %d", what, in->status);
	if ((rc = ph_json_parse(in->body, in->body_len, &ali_json_limits,
	    root, diag)) != PH_OK)
		return rc;
	if ((rc = ph_json_opt_string(*root, "sign", 2 * PH_RSA_SIG_MAX, &sign,
	    &sign_len, diag)) != PH_OK)
		goto fail;
	if ((r = json_object_get(*root, m->node)) == NULL) {
		const json_t *e = json_object_get(*root, "error_response");

		rc = json_is_object(e) ? ali_provider_error(e, what, 0, diag) :
		    ph_fail(diag, PH_E_MALFORMED, "answer without %s",
		    m->node);
		goto fail;
	}
	if (!json_is_object(r)) {
		rc = ph_fail(diag, PH_E_MALFORMED, "%s is not an object",
		    m->node);
		goto fail;
	}
	if (sign == NULL || sign_len == 0) {
		const char *code = json_string_value(json_object_get(r,
		    "code"));

		rc = code != NULL && strcmp(code, "10000") != 0 ?
		    ali_provider_error(r, what, 0, diag) :
		    ph_fail(diag, PH_E_SIGNATURE, "answer is not signed");
		goto fail;
	}
	if (ali_json_member_raw((const char *)in->body, in->body_len, m->node,
	    &raw, &raw_len) != 0) {
		rc = ph_fail(diag, PH_E_MALFORMED, "cannot find the text of %s",
		    m->node);
		goto fail;
	}
	if ((rc = ali_verify(ctx, sign, sign_len, raw, raw_len, diag)) !=
	    PH_OK)
		goto fail;
	*resp = r;
	return PH_OK;
fail:
	json_decref(*root);
	*root = NULL;
	return rc;
}

/* Fields of an event that is not a payment: from the order. */
static int
ali_from_order(const struct ph_order_ref *order, struct ph_event *ev,
    const char *tag, const char *state, struct ph_diag *diag)
{
	if (order->currency == NULL || !ph_currency_valid(order->currency))
		return ph_fail(diag, PH_E_FIELD, "order currency invalid");
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id), order->order_id,
	    ALI_ORDER_EXTRA, "order id", diag) != PH_OK)
		return PH_E_FIELD;
	ev->amount = order->amount;
	memcpy(ev->currency, order->currency, 4);
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "ali:%s:%s:%s",
	    tag, ev->order_id, state) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/* The answer's out_trade_no must be the order asked about (when
 * required is 0, an answer without one is accepted). */
static int
ali_same_order(const json_t *r, const char *order_id, int required,
    struct ph_diag *diag)
{
	const char *v;
	int rc;

	if ((rc = (required ? ph_json_get_string : ph_json_opt_string)(r,
	    "out_trade_no", PH_ID_MAX, &v, NULL, diag)) != PH_OK)
		return rc;
	if (v != NULL && strcmp(v, order_id) != 0)
		return ph_fail(diag, PH_E_FIELD, "the answer is about another "
		    "order");
	return PH_OK;
}

static int
ali_json_yuan(const json_t *r, const char *path, int64_t *out,
    struct ph_diag *diag)
{
	const char *v;
	size_t len;
	int rc;

	if ((rc = ph_json_get_string(r, path, 32, &v, &len, diag)) != PH_OK)
		return rc;
	if (ali_yuan(v, len, out) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "%s: not yuan with at most "
		    "two decimals", path);
	return PH_OK;
}

static int
ali_json_opt_time(const json_t *r, const char *path, int64_t *out,
    struct ph_diag *diag)
{
	const char *v;
	size_t len;
	int rc;

	*out = 0;
	if ((rc = ph_json_opt_string(r, path, 32, &v, &len, diag)) != PH_OK ||
	    v == NULL || len == 0)
		return rc;
	if (ph_time_parse_dashed(v, len, ALI_BEIJING, out) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "%s: not yyyy-MM-dd HH:mm:ss",
		    path);
	return PH_OK;
}

static const char *
ali_code(const json_t *r, const char **sub)
{
	const char *c = json_string_value(json_object_get(r, "code"));
	const char *s = json_string_value(json_object_get(r, "sub_code"));

	*sub = s != NULL ? s : "";
	return c != NULL ? c : "";
}

/*
 * alipay.trade.query, verified: 10000 with trade_status; 40004 with
 * ACQ.TRADE_NOT_EXIST is an order Alipay never saw; any other code
 * (20000 busy, 40004 others, 4000x) is an error to retry.
 */
static int
ali_query_event(const json_t *r, const struct ph_order_ref *order,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *code, *sub, *status, *trans;
	char buf[40];
	int rc;

	code = ali_code(r, &sub);
	if (strcmp(code, "40004") == 0 &&
	    strcmp(sub, "ACQ.TRADE_NOT_EXIST") == 0) {
		ev->kind = PH_EV_NOT_FOUND;
		return ali_from_order(order, ev, "query", "not_found", diag);
	}
	if (strcmp(code, "10000") != 0)
		return ali_provider_error(r, "query", 1, diag);
	if ((rc = ali_same_order(r, order->order_id, 1, diag)) != PH_OK ||
	    (rc = ph_json_opt_string(r, "trans_currency", 8, &trans, NULL,
	    diag)) != PH_OK ||
	    (rc = ali_check_currency(trans, diag)) != PH_OK ||
	    (rc = ph_json_get_string(r, "trade_status", 32, &status, NULL,
	    diag)) != PH_OK)
		return rc;
	if (ali_is(status, ali_paid_states)) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		if ((rc = ph_json_copy_token(r, "out_trade_no", ev->order_id,
		    sizeof(ev->order_id), ALI_ORDER_EXTRA, diag)) != PH_OK ||
		    (rc = ph_json_copy_token(r, "trade_no", ev->txn_id,
		    sizeof(ev->txn_id), NULL, diag)) != PH_OK ||
		    (rc = ali_json_yuan(r, "total_amount", &ev->amount,
		    diag)) != PH_OK ||
		    (rc = ali_json_opt_time(r, "send_pay_date",
		    &ev->occurred_at, diag)) != PH_OK)
			return rc;
		memcpy(ev->currency, "CNY", 4);
		/* The key the notification of this payment carries. */
		if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s",
		    ev->txn_id) >= (int)sizeof(ev->dedup_key))
			return ph_fail(diag, PH_E_FIELD, "dedup key too long");
		return PH_OK;
	}
	if (strcmp(status, "WAIT_BUYER_PAY") == 0) {
		ev->kind = PH_EV_PAYMENT_PENDING;
		return ali_from_order(order, ev, "query", "WAIT_BUYER_PAY",
		    diag);
	}
	if (strcmp(status, "TRADE_CLOSED") == 0) {
		ev->kind = PH_EV_PAYMENT_CLOSED;
		return ali_from_order(order, ev, "query", "TRADE_CLOSED", diag);
	}
	return ph_fail(diag, PH_E_UNSUPPORTED, "trade_status %s is not one "
	    "this plugin knows", ali_diag_text(status, buf, sizeof(buf)));
}

static int
ali_query_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ali_ctx *ctx = p;
	const json_t *r;
	json_t *root;
	int rc;

	if (ctx == NULL || order == NULL || in == NULL || ev == NULL ||
	    order->order_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = ali_open_answer(ctx, &ali_query, in, &root, &r, diag)) !=
	    PH_OK)
		return rc;
	rc = ali_query_event(r, order, ev, diag);
	json_decref(root);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/*
 * alipay.trade.close, verified: 10000 closed; ACQ.TRADE_NOT_EXIST not
 * found; ACQ.TRADE_STATUS_ERROR (paid, or closed already: the answer
 * does not say which) is IGNORED, so the core queries before deciding.
 */
static int
ali_close_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ali_ctx *ctx = p;
	const char *code, *sub;
	const json_t *r;
	json_t *root;
	int rc;

	if (ctx == NULL || order == NULL || in == NULL || ev == NULL ||
	    order->order_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = ali_open_answer(ctx, &ali_close, in, &root, &r, diag)) !=
	    PH_OK)
		return rc;
	code = ali_code(r, &sub);
	if (strcmp(code, "10000") == 0) {
		ev->kind = PH_EV_PAYMENT_CLOSED;
		if ((rc = ali_same_order(r, order->order_id, 0, diag)) ==
		    PH_OK)
			rc = ali_from_order(order, ev, "close", "closed",
			    diag);
	} else if (strcmp(code, "40004") == 0 &&
	    strcmp(sub, "ACQ.TRADE_NOT_EXIST") == 0) {
		ev->kind = PH_EV_NOT_FOUND;
		rc = ali_from_order(order, ev, "close", "not_found", diag);
	} else if (strcmp(code, "40004") == 0 &&
	    strcmp(sub, "ACQ.TRADE_STATUS_ERROR") == 0) {
		ev->kind = PH_EV_IGNORED;
		rc = ali_from_order(order, ev, "close", "status_error", diag);
	} else
		rc = ali_provider_error(r, "close", 1, diag);
	json_decref(root);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* Refusals of alipay.trade.refund that no retry can change. */
static const char *const ali_refund_final[] = {
	"ACQ.TRADE_NOT_EXIST", "ACQ.TRADE_HAS_CLOSE", "ACQ.TRADE_HAS_FINISHED",
	"ACQ.TRADE_NOT_ALLOW_REFUND", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", NULL,
};

/*
 * alipay.trade.refund, verified: 10000 with fund_change Y is done; with
 * N (or none) money did not move in this call, which is how a repeated
 * out_request_no is answered as well: pending, to be confirmed by the
 * bill.  A final refusal is REFUND_FAILED; anything else is retried.
 */
static int
ali_refund_event(const json_t *r, const struct ph_refund_ref *ref,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *code, *sub, *fc;
	int64_t refunded;
	int rc;

	code = ali_code(r, &sub);
	if (strcmp(code, "40004") == 0 && ali_is(sub, ali_refund_final))
		ev->kind = PH_EV_REFUND_FAILED;
	else if (strcmp(code, "10000") != 0)
		return ali_provider_error(r, "refund", 1, diag);
	else {
		if ((rc = ali_same_order(r, ref->order_id, 1, diag)) != PH_OK ||
		    (rc = ph_json_opt_string(r, "fund_change", 4, &fc, NULL,
		    diag)) != PH_OK)
			return rc;
		ev->kind = fc != NULL && strcmp(fc, "Y") == 0 ?
		    PH_EV_REFUND_SUCCEEDED : PH_EV_PAYMENT_PENDING;
		if ((rc = ph_json_copy_token(r, "trade_no", ev->txn_id,
		    sizeof(ev->txn_id), NULL, diag)) != PH_OK)
			return rc;
		if (ref->txn_id != NULL && ref->txn_id[0] != '\0' &&
		    strcmp(ev->txn_id, ref->txn_id) != 0)
			return ph_fail(diag, PH_E_FIELD, "the answer is about "
			    "another trade");
		/* refund_fee is what the trade has had back in all. */
		if ((rc = ali_json_yuan(r, "refund_fee", &refunded, diag)) !=
		    PH_OK)
			return rc;
		if (ev->kind == PH_EV_REFUND_SUCCEEDED &&
		    refunded < ref->amount)
			return ph_fail(diag, PH_E_FIELD, "refund_fee is less "
			    "than the refund asked for");
		if ((rc = ali_json_opt_time(r, "gmt_refund_pay",
		    &ev->occurred_at, diag)) != PH_OK)
			return rc;
	}
	/* A refusal names no trade: the one payhook asked about. */
	if (ev->txn_id[0] == '\0' && ref->txn_id != NULL &&
	    ref->txn_id[0] != '\0' && ph_copy_token(ev->txn_id,
	    sizeof(ev->txn_id), ref->txn_id, NULL, "transaction id",
	    diag) != PH_OK)
		return PH_E_FIELD;
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id), ref->order_id,
	    ALI_ORDER_EXTRA, "order id", diag) != PH_OK ||
	    ph_copy_token(ev->merchant_refund_id,
	    sizeof(ev->merchant_refund_id), ref->refund_id, ALI_ID_EXTRA,
	    "refund id", diag) != PH_OK)
		return PH_E_FIELD;
	ev->amount = ref->amount;
	memcpy(ev->currency, "CNY", 4);
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "refund:%s:%s",
	    ev->txn_id, ev->merchant_refund_id) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

static int
ali_refund_response(void *p, const struct ph_refund_ref *ref,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ali_ctx *ctx = p;
	const json_t *r;
	json_t *root;
	int rc;

	if (ctx == NULL || ref == NULL || in == NULL || ev == NULL ||
	    ref->order_id == NULL || ref->refund_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = ali_open_answer(ctx, &ali_refund, in, &root, &r, diag)) !=
	    PH_OK)
		return rc;
	rc = ali_refund_event(r, ref, ev, diag);
	json_decref(root);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* ---- Statements: the trade-detail bill (业务明细) ----------------------- */

/*
 * The file Alipay's bill download gives for bill_type=trade, one line at
 * a time (README.md shows a sample):
 *
 *	#支付宝业务明细查询			preamble: '#' lines
 *	#----...业务明细列表----...		start of the list
 *	支付宝交易号,商户订单号,业务类型,...	header: columns found by name
 *	2019...\t,A1\t,交易\t,...		rows: 交易 (payment) or 退款
 *	#----...业务明细列表结束----...		end of the list
 *	#交易合计：6笔，商家实收共0.06元，...	totals, checked at the end
 *	#退款合计：4笔，商家实收退款共-0.04元，...
 *	#导出时间：[...]
 *
 * Text is GBK as Alipay sends it, or UTF-8 (a converted file): decided
 * by the first line with a non-ASCII byte.  Fields are split on ',',
 * may be double-quoted, and are trimmed of the tabs and spaces Alipay
 * pads them with.
 */
enum ali_phase {
	ALI_ST_PREAMBLE,	/* before the start marker */
	ALI_ST_HEADER,		/* the next line is the header */
	ALI_ST_ROWS,
	ALI_ST_TRAILER,		/* after the end marker */
	ALI_ST__MAX
};

enum ali_col {
	ALI_COL_TRADE_NO,
	ALI_COL_ORDER,
	ALI_COL_TYPE,
	ALI_COL_DONE,
	ALI_COL_AMOUNT,
	ALI_COL_RECEIPT,
	ALI_COL_REFUND_NO,
	ALI_COL__MAX
};

/* Column names, and a second spelling with ASCII parentheses. */
static const char *const ali_col_names[ALI_COL__MAX][2] = {
	[ALI_COL_TRADE_NO] = { "支付宝交易号", NULL },
	[ALI_COL_ORDER] = { "商户订单号", NULL },
	[ALI_COL_TYPE] = { "业务类型", NULL },
	[ALI_COL_DONE] = { "完成时间", NULL },
	[ALI_COL_AMOUNT] = { "订单金额（元）", "订单金额(元)" },
	[ALI_COL_RECEIPT] = { "商家实收（元）", "商家实收(元)" },
	[ALI_COL_REFUND_NO] = { "退款批次号/请求号", NULL },
};

#define ALI_MARK_LIST	"业务明细列表"
#define ALI_MARK_END	"业务明细列表结束"
#define ALI_TOTAL_PAY	"#交易合计："
#define ALI_TOTAL_REFUND "#退款合计："
#define ALI_TOTAL_PAY_AMT "商家实收共"
#define ALI_TOTAL_REFUND_AMT "商家实收退款共"

/* Kept in ph_statement.state between lines. */
struct ali_stmt {
	int phase;
	int enc;			/* 0 not known yet, 1 UTF-8, 2 GBK */
	int ncols;
	int col[ALI_COL__MAX];
	uint64_t pays, refunds;		/* rows seen */
	int64_t pay_receipt;		/* sums of 商家实收, fen */
	int64_t refund_receipt;
	int have_pay_total, have_refund_total;
	uint64_t pay_total_n, refund_total_n;
	int64_t pay_total, refund_total;
};

_Static_assert(sizeof(struct ali_stmt) <= PH_STATEMENT_STATE_MAX,
    "the statement state must fit the core's area");

/* Well-formed UTF-8 without overlongs or surrogates. */
static int
ali_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp, min;

	while (i < n) {
		unsigned char c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (n - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int
ali_has_high(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* The line as UTF-8 text in out (NUL-terminated). */
static int
ali_line_utf8(struct ali_stmt *z, uint64_t lineno, const char *line,
    size_t len, char *out, size_t cap, struct ph_diag *diag)
{
	iconv_t cd;
	char *ip = (char *)(uintptr_t)line, *op = out;
	size_t il = len, ol = cap - 1, r;

	if (memchr(line, '\0', len) != NULL)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: a "
		    "NUL byte", (unsigned long long)lineno);
	if (z->enc == 0 && ali_has_high(line, len))
		z->enc = ali_utf8_valid((const unsigned char *)line, len) ?
		    1 : 2;
	if (z->enc != 2) {
		if (len >= cap)
			return ph_fail(diag, PH_E_TOOBIG, "statement line "
			    "%llu: longer than %zu bytes",
			    (unsigned long long)lineno, cap - 1);
		if (z->enc == 1 && !ali_utf8_valid((const unsigned char *)line,
		    len))
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: not UTF-8 like the lines before it",
			    (unsigned long long)lineno);
		memcpy(out, line, len);
		out[len] = '\0';
		return PH_OK;
	}
	/* GB18030 reads every GBK byte sequence as GBK does. */
	if ((cd = iconv_open("UTF-8", "GB18030")) == (iconv_t)-1)
		return ph_fail(diag, PH_E_UNSUPPORTED, "statement: no GBK "
		    "converter");
	r = iconv(cd, &ip, &il, &op, &ol);
	iconv_close(cd);
	if (r == (size_t)-1 || il != 0)
		return ph_fail(diag, errno == E2BIG ? PH_E_TOOBIG :
		    PH_E_MALFORMED, "statement line %llu: %s",
		    (unsigned long long)lineno, errno == E2BIG ?
		    "too long" : "not GBK text");
	*op = '\0';
	return PH_OK;
}

static int
ali_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Splits a line into fields (pointers into buf, which is modified):
 * ',' separates, a field may be double-quoted with "" for a quote,
 * leading and trailing spaces and tabs are dropped.
 */
static int
ali_split(char *buf, char **f, int max, int *n)
{
	char *r = buf, *w, *start;
	int quoted;

	*n = 0;
	for (;;) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (*n == max)
			return -1;
		start = w = r;
		quoted = *r == '"';
		if (quoted) {
			for (r++;; r++) {
				if (*r == '\0')
					return -1;
				if (*r == '"') {
					if (r[1] != '"')
						break;
					r++;
				}
				*w++ = *r;
			}
			r++;
			while (*r == ' ' || *r == '\t')
				r++;
			if (*r != ',' && *r != '\0')
				return -1;
		} else {
			while (*r != ',' && *r != '\0') {
				if (*r == '"')
					return -1;
				*w++ = *r++;
			}
			while (w > start && (w[-1] == ' ' || w[-1] == '\t'))
				w--;
		}
		f[(*n)++] = start;
		if (*r == '\0') {
			*w = '\0';
			return 0;
		}
		r++;
		*w = '\0';
	}
}

static int
ali_header(struct ali_stmt *z, char *text, uint64_t lineno,
    struct ph_diag *diag)
{
	char *f[ALI_COLS_MAX];
	int n, i, c;

	if (ali_split(text, f, ALI_COLS_MAX, &n) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: the "
		    "header is not %d comma-separated names or fewer",
		    (unsigned long long)lineno, ALI_COLS_MAX);
	for (c = 0; c < ALI_COL__MAX; c++) {
		z->col[c] = -1;
		for (i = 0; i < n; i++) {
			if (strcmp(f[i], ali_col_names[c][0]) != 0 &&
			    (ali_col_names[c][1] == NULL ||
			    strcmp(f[i], ali_col_names[c][1]) != 0))
				continue;
			if (z->col[c] != -1)
				return ph_fail(diag, PH_E_MALFORMED,
				    "statement line %llu: column %s twice",
				    (unsigned long long)lineno,
				    ali_col_names[c][0]);
			z->col[c] = i;
		}
		if (z->col[c] == -1)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: no column %s", (unsigned long long)lineno,
			    ali_col_names[c][0]);
	}
	z->ncols = n;
	z->phase = ALI_ST_ROWS;
	return PH_OK;
}

/* One row of the list: a payment (交易) or a refund (退款). */
static int
ali_row(struct ali_stmt *z, struct ph_statement *st, char *text,
    struct ph_event *ev, struct ph_diag *diag)
{
	unsigned long long ln = (unsigned long long)st->line;
	char *f[ALI_COLS_MAX];
	const char *type, *v;
	int64_t amount, receipt;
	int n, refund, rc;

	if (ali_split(text, f, ALI_COLS_MAX, &n) != 0 || n != z->ncols)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: not "
		    "%d fields like the header", ln, z->ncols);
	type = f[z->col[ALI_COL_TYPE]];
	if (strcmp(type, "交易") == 0)
		refund = 0;
	else if (strcmp(type, "退款") == 0)
		refund = 1;
	else
		return ph_fail(diag, PH_E_UNSUPPORTED, "statement line %llu: "
		    "业务类型 is neither 交易 nor 退款", ln);
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id),
	    f[z->col[ALI_COL_ORDER]], ALI_ORDER_EXTRA, "商户订单号",
	    NULL) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "商户订单号 missing or not an order id", ln);
	if (ph_copy_token(ev->txn_id, sizeof(ev->txn_id),
	    f[z->col[ALI_COL_TRADE_NO]], NULL, "支付宝交易号", NULL) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "支付宝交易号 missing or invalid", ln);
	v = f[z->col[ALI_COL_DONE]];
	if (ph_time_parse_dashed(v, strlen(v), ALI_BEIJING,
	    &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "完成时间 is not yyyy-MM-dd HH:mm:ss", ln);
	v = f[z->col[ALI_COL_AMOUNT]];
	if (ali_yuan_signed(v, strlen(v), &amount) != PH_OK ||
	    (refund ? amount > 0 : amount < 0))
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "订单金额 is not a%s amount in yuan", ln, refund ?
		    " refunded" : " paid");
	v = f[z->col[ALI_COL_RECEIPT]];
	if (ali_yuan_signed(v, strlen(v), &receipt) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "商家实收 is not an amount in yuan", ln);
	memcpy(ev->currency, "CNY", 4);
	if (refund) {
		ev->kind = PH_EV_REFUND_SUCCEEDED;
		ev->amount = -amount;
		v = f[z->col[ALI_COL_REFUND_NO]];
		if (v[0] != '\0' && ph_copy_token(ev->merchant_refund_id,
		    sizeof(ev->merchant_refund_id), v, ALI_ID_EXTRA,
		    "退款批次号/请求号", NULL) != PH_OK)
			return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
			    "退款批次号/请求号 is not a refund id", ln);
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "refund:%s:%s", ev->txn_id, ev->merchant_refund_id);
		z->refunds++;
		z->refund_receipt += receipt;
	} else {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		ev->amount = amount;
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s",
		    ev->txn_id);
		z->pays++;
		z->pay_receipt += receipt;
	}
	if (rc < 0 || rc >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: dedup "
		    "key too long", ln);
	if (z->pay_receipt > PH_AMOUNT_MAX ||
	    z->pay_receipt < -PH_AMOUNT_MAX ||
	    z->refund_receipt > PH_AMOUNT_MAX ||
	    z->refund_receipt < -PH_AMOUNT_MAX)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: sums "
		    "out of range", ln);
	if (st->total > INT64_MAX - ev->amount)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: sums "
		    "out of range", ln);
	st->facts++;
	st->total += ev->amount;
	return PH_OK;
}

/* "#交易合计：6笔，商家实收共0.06元，..." and its refund twin. */
static int
ali_total(const char *s, const char *label, uint64_t *count,
    int64_t *amount)
{
	static const char bi[] = "笔，";
	const char *p = s, *e;
	uint64_t n = 0;

	if (!ali_digits(p, 1))
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (!ali_starts(p, bi))
		return -1;
	p += sizeof(bi) - 1;
	if (!ali_starts(p, label))
		return -1;
	p += strlen(label);
	for (e = p; *e == '-' || *e == '.' || (*e >= '0' && *e <= '9'); e++)
		continue;
	if (!ali_starts(e, "元") ||
	    ali_yuan_signed(p, (size_t)(e - p), amount) != PH_OK)
		return -1;
	*count = n;
	return 0;
}

static int
ali_trailer(struct ali_stmt *z, const char *text, uint64_t lineno,
    struct ph_diag *diag)
{
	size_t pl = strlen(ALI_TOTAL_PAY), rl = strlen(ALI_TOTAL_REFUND);

	if (text[0] != '#')
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: "
		    "data after the end of the list",
		    (unsigned long long)lineno);
	if (ali_starts(text, ALI_TOTAL_PAY)) {
		if (z->have_pay_total++ ||
		    ali_total(text + pl, ALI_TOTAL_PAY_AMT, &z->pay_total_n,
		    &z->pay_total) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: the payment totals are not understood",
			    (unsigned long long)lineno);
	} else if (ali_starts(text, ALI_TOTAL_REFUND)) {
		if (z->have_refund_total++ ||
		    ali_total(text + rl, ALI_TOTAL_REFUND_AMT,
		    &z->refund_total_n, &z->refund_total) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: the refund totals are not understood",
			    (unsigned long long)lineno);
	}
	return PH_OK;
}

static int
ali_statement_end(const struct ali_stmt *z, struct ph_diag *diag)
{
	if (z->phase != ALI_ST_TRAILER)
		return ph_fail(diag, PH_E_MALFORMED, "statement ended before "
		    "the end of its list (%s)", z->phase == ALI_ST_ROWS ?
		    "no end marker" : "no list");
	if (!z->have_pay_total || !z->have_refund_total)
		return ph_fail(diag, PH_E_MALFORMED, "statement without its "
		    "%s totals line", !z->have_pay_total ? "payment" :
		    "refund");
	if (z->pays != z->pay_total_n || z->pay_receipt != z->pay_total)
		return ph_fail(diag, PH_E_FIELD, "statement totals: %llu "
		    "payments of %lld fen listed, the file says %llu of "
		    "%lld", (unsigned long long)z->pays,
		    (long long)z->pay_receipt,
		    (unsigned long long)z->pay_total_n,
		    (long long)z->pay_total);
	if (z->refunds != z->refund_total_n ||
	    z->refund_receipt != z->refund_total)
		return ph_fail(diag, PH_E_FIELD, "statement totals: %llu "
		    "refunds of %lld fen listed, the file says %llu of "
		    "%lld", (unsigned long long)z->refunds,
		    (long long)z->refund_receipt,
		    (unsigned long long)z->refund_total_n,
		    (long long)z->refund_total);
	return PH_OK;
}

static int
ali_statement_step(struct ali_stmt *z, struct ph_statement *st,
    const char *line, size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	char text[ALI_LINE_MAX];
	int rc;

	ev->kind = PH_EV_IGNORED;
	if (line == NULL)
		return ali_statement_end(z, diag);
	if (st->line == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	if ((rc = ali_line_utf8(z, st->line, line, len, text, sizeof(text),
	    diag)) != PH_OK)
		return rc;
	if (text[0] == '\0')
		return PH_OK;
	switch (z->phase) {
	case ALI_ST_PREAMBLE:
		if (text[0] != '#')
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: data before the list starts",
			    (unsigned long long)st->line);
		if (strstr(text, ALI_MARK_END) != NULL)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: the list ends before it starts",
			    (unsigned long long)st->line);
		if (strstr(text, ALI_MARK_LIST) != NULL)
			z->phase = ALI_ST_HEADER;
		return PH_OK;
	case ALI_ST_HEADER:
		return ali_header(z, text, st->line, diag);
	case ALI_ST_ROWS:
		if (text[0] == '#') {
			if (strstr(text, ALI_MARK_END) == NULL)
				return ph_fail(diag, PH_E_MALFORMED,
				    "statement line %llu: a comment inside "
				    "the list",
				    (unsigned long long)st->line);
			z->phase = ALI_ST_TRAILER;
			return PH_OK;
		}
		return ali_row(z, st, text, ev, diag);
	case ALI_ST_TRAILER:
		return ali_trailer(z, text, st->line, diag);
	default:
		return ph_fail(diag, PH_E_INTERNAL, "statement state corrupt");
	}
}

static int
ali_statement_line(void *p, struct ph_statement *st, const char *line,
    size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	struct ali_stmt z;
	int rc;

	if (p == NULL || st == NULL || ev == NULL || (line == NULL && len > 0))
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	memcpy(&z, st->state, sizeof(z));
	if (z.phase < 0 || z.phase >= ALI_ST__MAX)
		return ph_fail(diag, PH_E_INTERNAL, "statement state corrupt");
	rc = ali_statement_step(&z, st, line, len, ev, diag);
	memcpy(st->state, &z, sizeof(z));
	if (rc != PH_OK) {
		memset(ev, 0, sizeof(*ev));
		ev->kind = PH_EV_IGNORED;
	}
	return rc;
}

/* ---- Hint ---------------------------------------------------------------- */

/*
 * The out_trade_no of a notification, read WITHOUT verifying it: when a
 * notification is refused (a key rotated at Alipay but not here, say),
 * the core only asks Alipay about that order; nothing is applied from it.
 */
static int
ali_notify_hint(void *p, const struct ph_request *req,
    char order_id[PH_ID_MAX + 1])
{
	struct ph_kvlist kv;
	const char *v;
	int rc;

	if (p == NULL || req == NULL)
		return PH_E_INTERNAL;
	if ((rc = ph_form_parse(req->body, req->body_len, &ali_form_limits,
	    &kv, NULL)) != PH_OK)
		return rc;
	v = ph_kvlist_get(&kv, "out_trade_no");
	rc = v != NULL ? ph_copy_token(order_id, PH_ID_MAX + 1, v,
	    ALI_ORDER_EXTRA, "out_trade_no", NULL) : PH_E_FIELD;
	ph_kvlist_free(&kv);
	return rc;
}

PH_PROVIDER_DEFINE_HINT("alipay",
    "Alipay open platform: notifications, trade query/close/refund, bills",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE | PH_CAP_REFUND |
    PH_CAP_STATEMENT, ali_conf_keys, ali_profile_new, ali_profile_free,
    ali_parse_notify, ali_ack, ali_query_request, ali_query_response,
    ali_close_request, ali_close_response, ali_refund_request,
    ali_refund_response, ali_statement_line, ali_notify_hint)
