/*
 * Aggregator webhooks in the Ping++ style: a JSON event whose
 * data.object is a charge or a refund, the underlying wallet in
 * "channel".  Each profile pins one way of verifying them:
 *
 *	signature = rsa	  RSA-SHA256 (PKCS#1 v1.5) over the raw body, base64
 *			  in X-Pingplusplus-Signature, with the aggregator's
 *			  public key (Ping++);
 *	signature = hmac  "t=<unix>,v1=<hex>[,v1=<hex>...]" in a header,
 *			  HMAC-SHA256 keyed with a shared secret over
 *			  "<t>.<raw body>", t within tolerance_s of now
 *			  (Stripe's construction, for aggregators that use it).
 *
 * Order of work: bound the body, verify over the raw bytes with the key
 * the profile pins (never one the message names), parse once and
 * strictly, check the event is ours (livemode, app), then map.  The
 * active query lists the charges of an order (GET /v1/charges).  See
 * README.md for the keys, the dedup rule and the quirks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#define AGG_BODY_MAX		(64 * 1024)
#define AGG_ANSWER_MAX		(256 * 1024)
#define AGG_SECRET_MIN		16
#define AGG_SECRET_MAX		1024
#define AGG_API_KEY_MAX		256
#define AGG_SIG_MAX		512	/* RSA-4096 */
#define AGG_V1_MAX		16	/* v1 signatures in one header */
#define AGG_TS_DIGITS		12
#define AGG_TOLERANCE_DEF	300
#define AGG_TEXT_MAX		96
#define AGG_TIME_MAX		253402300799LL	/* 9999-12-31T23:59:59Z */
#define AGG_RSA_HEADER		"X-Pingplusplus-Signature"
#define AGG_HMAC_HEADER_DEF	"X-Signature"
/* Ids (evt_..., ch_..., re_...) and event types (charge.succeeded). */
#define AGG_ID_EXTRA		"_-"
#define AGG_TYPE_EXTRA		"._"
/* Merchant order numbers: what the core accepts as an order id. */
#define AGG_ORDER_EXTRA		"_-|*.:"

static const struct ph_json_limits agg_event_limits = { AGG_BODY_MAX, 8 };
static const struct ph_json_limits agg_answer_limits = { AGG_ANSWER_MAX, 8 };

enum agg_mode {
	AGG_MODE_RSA,
	AGG_MODE_HMAC,
	AGG_MODE__MAX
};

static const char *const agg_mode_names[AGG_MODE__MAX + 1] = {
	[AGG_MODE_RSA] = "rsa",
	[AGG_MODE_HMAC] = "hmac",
	[AGG_MODE__MAX] = NULL,
};

/* Parallel to the values the core hands profile_new(). */
enum agg_conf {
	AGG_CONF_SIGNATURE,
	AGG_CONF_APP_ID,
	AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE,
	AGG_CONF_WEBHOOK_SECRET_FILE,
	AGG_CONF_SIGNATURE_HEADER,
	AGG_CONF_TOLERANCE_S,
	AGG_CONF_LIVEMODE,
	AGG_CONF_API_KEY_FILE,
	AGG_CONF__MAX
};

/*
 * Keys of one mode have no table default, so that profile_new() can
 * require them in their mode and refuse them in the other.
 */
static const struct ph_conf_key agg_conf_keys[AGG_CONF__MAX + 1] = {
	[AGG_CONF_SIGNATURE] = { "signature", PH_CONF_ENUM, 1, agg_mode_names,
	    0, 0, NULL, "how events are verified: rsa or hmac" },
	[AGG_CONF_APP_ID] = { "app_id", PH_CONF_STRING, 1, NULL, 0, 0, NULL,
	    "our app at the aggregator (app_...): charges must carry it" },
	[AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE] = { "webhook_public_key_file",
	    PH_CONF_FILE, 0, NULL, 0, 0, NULL,
	    "rsa (required): the aggregator's public key (PEM)" },
	[AGG_CONF_WEBHOOK_SECRET_FILE] = { "webhook_secret_file",
	    PH_CONF_SECRET_FILE, 0, NULL, 0, 0, NULL,
	    "hmac (required): file holding the webhook signing secret" },
	[AGG_CONF_SIGNATURE_HEADER] = { "signature_header", PH_CONF_STRING, 0,
	    NULL, 0, 0, NULL,
	    "hmac: header carrying t=...,v1=... (default X-Signature)" },
	[AGG_CONF_TOLERANCE_S] = { "tolerance_s", PH_CONF_INT, 0, NULL, 1,
	    3600, NULL, "hmac: most seconds between t and now (default 300)" },
	[AGG_CONF_LIVEMODE] = { "livemode", PH_CONF_BOOL, 0, NULL, 0, 0,
	    "yes", "accept live events (yes) or test-mode events (no)" },
	[AGG_CONF_API_KEY_FILE] = { "api_key_file", PH_CONF_SECRET_FILE, 0,
	    NULL, 0, 0, NULL,
	    "secret API key (sk_...) for queries, sent as a Bearer token" },
	[AGG_CONF__MAX] = { NULL, 0, 0, NULL, 0, 0, NULL, NULL },
};

struct agg_ctx {
	enum agg_mode mode;
	char app_id[PH_ID_MAX + 1];
	int livemode;
	struct ph_key *pubkey;		/* rsa */
	char header[64];		/* hmac: signature header name */
	int64_t tolerance;		/* hmac */
	unsigned char *secret;		/* hmac: owned, cleansed on free */
	size_t secret_len;
	char *api_key;			/* NUL-terminated; NULL: no queries */
	size_t api_key_len;
};

static void
agg_profile_free(void *p)
{
	struct agg_ctx *ctx = p;

	if (ctx == NULL)
		return;
	if (ctx->secret != NULL) {
		ph_cleanse(ctx->secret, ctx->secret_len);
		free(ctx->secret);
	}
	if (ctx->api_key != NULL) {
		ph_cleanse(ctx->api_key, ctx->api_key_len);
		free(ctx->api_key);
	}
	ph_key_free(ctx->pubkey);
	ph_cleanse(ctx, sizeof(*ctx));
	free(ctx);
}

/* A value given in the profile. */
static const struct ph_conf_value *
agg_conf(const struct ph_conf *conf, const char *name)
{
	const struct ph_conf_value *v = ph_conf_get(conf, name);

	return v != NULL && v->present ? v : NULL;
}

static int
agg_refuse(const struct ph_conf *conf, const char *name, const char *mode,
    struct ph_diag *diag)
{
	if (agg_conf(conf, name) != NULL)
		return ph_fail(diag, PH_E_CONFIG, "%s is not used with "
		    "signature = %s", name, mode);
	return PH_OK;
}

static int
agg_rsa_profile(const struct ph_conf *conf, struct agg_ctx *ctx,
    struct ph_diag *diag)
{
	const struct ph_conf_value *key;
	int rc;

	if ((rc = agg_refuse(conf, "webhook_secret_file", "rsa",
	    diag)) != PH_OK ||
	    (rc = agg_refuse(conf, "signature_header", "rsa", diag)) != PH_OK ||
	    (rc = agg_refuse(conf, "tolerance_s", "rsa", diag)) != PH_OK)
		return rc;
	key = agg_conf(conf, "webhook_public_key_file");
	if (key == NULL || key->blob.data == NULL || key->blob.len == 0)
		return ph_fail(diag, PH_E_CONFIG, "webhook_public_key_file is "
		    "required with signature = rsa");
	/* PEM "PUBLIC KEY", "RSA PUBLIC KEY" or a certificate's, read once
	 * here: a bad key is a configuration error, not a refused event. */
	return ph_key_load(&key->blob, PH_KEY_PUBLIC_ANY, 0,
	    "webhook_public_key_file", &ctx->pubkey, diag);
}

static int
agg_hmac_profile(const struct ph_conf *conf, struct agg_ctx *ctx,
    struct ph_diag *diag)
{
	const struct ph_conf_value *secret, *hdr, *tol;
	const char *name;
	int rc;

	if ((rc = agg_refuse(conf, "webhook_public_key_file", "hmac",
	    diag)) != PH_OK)
		return rc;
	secret = agg_conf(conf, "webhook_secret_file");
	if (secret == NULL || secret->blob.data == NULL)
		return ph_fail(diag, PH_E_CONFIG, "webhook_secret_file is "
		    "required with signature = hmac");
	if (secret->blob.len < AGG_SECRET_MIN ||
	    secret->blob.len > AGG_SECRET_MAX)
		return ph_fail(diag, PH_E_CONFIG, "webhook_secret_file: the "
		    "secret must be %d to %d bytes, the file holds %zu",
		    AGG_SECRET_MIN, AGG_SECRET_MAX, secret->blob.len);
	if ((ctx->secret = malloc(secret->blob.len)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	memcpy(ctx->secret, secret->blob.data, secret->blob.len);
	ctx->secret_len = secret->blob.len;

	hdr = agg_conf(conf, "signature_header");
	name = hdr != NULL ? hdr->str : AGG_HMAC_HEADER_DEF;
	if (name == NULL || !ph_token_valid(name, strlen(name),
	    sizeof(ctx->header) - 1, "-"))
		return ph_fail(diag, PH_E_CONFIG, "signature_header must be a "
		    "header name: letters, digits and '-'");
	memcpy(ctx->header, name, strlen(name) + 1);

	ctx->tolerance = AGG_TOLERANCE_DEF;
	if ((tol = agg_conf(conf, "tolerance_s")) != NULL) {
		if (tol->num < 1 || tol->num > 3600)
			return ph_fail(diag, PH_E_CONFIG, "tolerance_s must be "
			    "from 1 to 3600");
		ctx->tolerance = tol->num;
	}
	return PH_OK;
}

static int
agg_profile_new(const struct ph_conf *conf, void **out, struct ph_diag *diag)
{
	const struct ph_conf_value *mode, *app, *live, *key;
	struct agg_ctx *ctx;
	size_t i;
	int rc;

	*out = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	mode = agg_conf(conf, "signature");
	if (mode == NULL || mode->str == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "signature (rsa or hmac) is "
		    "required");
		goto fail;
	}
	if (strcmp(mode->str, "rsa") == 0)
		ctx->mode = AGG_MODE_RSA;
	else if (strcmp(mode->str, "hmac") == 0)
		ctx->mode = AGG_MODE_HMAC;
	else {
		rc = ph_fail(diag, PH_E_CONFIG, "signature must be rsa or "
		    "hmac");
		goto fail;
	}
	app = agg_conf(conf, "app_id");
	if (app == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "app_id is required");
		goto fail;
	}
	if (ph_copy_token(ctx->app_id, sizeof(ctx->app_id), app->str,
	    AGG_ID_EXTRA, "app_id", diag) != PH_OK) {
		rc = PH_E_CONFIG;
		goto fail;
	}
	live = agg_conf(conf, "livemode");
	ctx->livemode = live != NULL ? live->num != 0 : 1;

	rc = ctx->mode == AGG_MODE_RSA ? agg_rsa_profile(conf, ctx, diag) :
	    agg_hmac_profile(conf, ctx, diag);
	if (rc != PH_OK)
		goto fail;

	if ((key = agg_conf(conf, "api_key_file")) != NULL) {
		if (key->blob.data == NULL || key->blob.len == 0 ||
		    key->blob.len > AGG_API_KEY_MAX) {
			rc = ph_fail(diag, PH_E_CONFIG, "api_key_file: the key "
			    "must be 1 to %d bytes", AGG_API_KEY_MAX);
			goto fail;
		}
		for (i = 0; i < key->blob.len; i++)
			if (key->blob.data[i] < 0x21 ||
			    key->blob.data[i] > 0x7e) {
				rc = ph_fail(diag, PH_E_CONFIG, "api_key_file: "
				    "the key must be printable ASCII without "
				    "spaces (byte %zu is not)", i + 1);
				goto fail;
			}
		if ((ctx->api_key = malloc(key->blob.len + 1)) == NULL) {
			rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
			goto fail;
		}
		memcpy(ctx->api_key, key->blob.data, key->blob.len);
		ctx->api_key[key->blob.len] = '\0';
		ctx->api_key_len = key->blob.len;
	}
	*out = ctx;
	return PH_OK;
fail:
	agg_profile_free(ctx);
	return rc;
}

/* ---- Verification ------------------------------------------------------- */

/* The one value of a header; a header sent twice is ambiguous. */
static int
agg_header(const struct ph_header *h, size_t nh, const char *name,
    const char **value, struct ph_diag *diag)
{
	size_t i;

	*value = NULL;
	for (i = 0; h != NULL && i < nh; i++) {
		if (h[i].name == NULL || h[i].value == NULL ||
		    strcasecmp(h[i].name, name) != 0)
			continue;
		if (*value != NULL)
			return ph_fail(diag, PH_E_SIGNATURE, "%s sent more "
			    "than once", name);
		*value = h[i].value;
	}
	if (*value == NULL || **value == '\0')
		return ph_fail(diag, PH_E_SIGNATURE, "%s missing", name);
	return PH_OK;
}

static int
agg_verify_rsa(const struct agg_ctx *ctx, const char *sig64,
    const unsigned char *body, size_t len, struct ph_diag *diag)
{
	unsigned char sig[AGG_SIG_MAX];
	size_t siglen = 0;

	if (ph_base64_decode(sig64, strlen(sig64), sig, sizeof(sig),
	    &siglen) != PH_OK || siglen == 0)
		return ph_fail(diag, PH_E_SIGNATURE, "%s is not base64",
		    AGG_RSA_HEADER);
	return ph_rsa_verify(ctx->pubkey, "SHA256", body, len, sig, siglen,
	    diag);
}

/* A decimal of 1..12 digits, no sign. */
static int
agg_timestamp(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > AGG_TS_DIGITS)
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
 * "t=<unix>,v1=<hex>[,v1=<hex>...]": t exactly once, every v1 kept
 * (several during a secret rotation), other schemes ignored.  Any v1
 * may match HMAC-SHA256(secret, "<t>.<body>"), compared in constant time.
 */
static int
agg_verify_hmac(const struct agg_ctx *ctx, const char *hv,
    const unsigned char *body, size_t len, int64_t now,
    struct ph_diag *diag)
{
	const char *v1[AGG_V1_MAX], *t = NULL, *p, *end, *eq;
	size_t v1len[AGG_V1_MAX], nv1 = 0, tlen = 0, i;
	unsigned char mac[PH_SHA256_LEN];
	char want[2 * PH_SHA256_LEN + 1];
	struct ph_buf msg;
	int64_t ts, skew;
	int rc, match = 0;

	for (p = hv; ; p = end + 1) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		if ((eq = memchr(p, '=', (size_t)(end - p))) == NULL ||
		    eq == p || eq + 1 == end)
			return ph_fail(diag, PH_E_SIGNATURE, "%s: an item is "
			    "not k=v", ctx->header);
		if (eq - p == 1 && p[0] == 't') {
			if (t != NULL)
				return ph_fail(diag, PH_E_SIGNATURE, "%s: t "
				    "given twice", ctx->header);
			t = eq + 1;
			tlen = (size_t)(end - t);
		} else if (eq - p == 2 && p[0] == 'v' && p[1] == '1') {
			if (nv1 == AGG_V1_MAX)
				return ph_fail(diag, PH_E_SIGNATURE, "%s: more "
				    "than %d v1 signatures", ctx->header,
				    AGG_V1_MAX);
			v1[nv1] = eq + 1;
			v1len[nv1++] = (size_t)(end - eq - 1);
		}
		if (*end == '\0')
			break;
	}
	if (t == NULL || !agg_timestamp(t, tlen, &ts))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: no valid t",
		    ctx->header);
	if (nv1 == 0)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: no v1 signature",
		    ctx->header);
	skew = ts > now ? ts - now : now - ts;
	if (skew > ctx->tolerance)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: t=%lld is %lld s "
		    "from now, more than %lld s", ctx->header, (long long)ts,
		    (long long)skew, (long long)ctx->tolerance);

	ph_buf_init(&msg, AGG_BODY_MAX + 64);
	ph_buf_append(&msg, t, tlen);
	ph_buf_append(&msg, ".", 1);
	ph_buf_append(&msg, body, len);
	if ((rc = msg.err) != PH_OK ||
	    (rc = ph_hmac_sha256(ctx->secret, ctx->secret_len, msg.data,
	    msg.len, mac)) != PH_OK) {
		ph_buf_free(&msg);
		return ph_fail(diag, rc, "cannot compute the signature");
	}
	ph_buf_free(&msg);
	ph_hex_lower(mac, sizeof(mac), want);
	/* Every v1 is compared, so the time taken says nothing of which. */
	for (i = 0; i < nv1; i++)
		match |= ph_ct_equal_nocase(v1[i], v1len[i], want,
		    2 * PH_SHA256_LEN);
	ph_cleanse(mac, sizeof(mac));
	ph_cleanse(want, sizeof(want));
	return match ? PH_OK : ph_fail(diag, PH_E_SIGNATURE,
	    "%s: no v1 signature matches", ctx->header);
}

/* ---- Mapping ------------------------------------------------------------ */

/* A three-letter currency in either case ("cny"), upper-cased. */
static int
agg_currency(const struct json_t *o, const char *path, int required,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *v;
	char cur[4];
	size_t n, i;
	int rc;

	if ((rc = (required ? ph_json_get_string : ph_json_opt_string)(o, path,
	    3, &v, &n, diag)) != PH_OK)
		return rc;
	if (v == NULL) {
		memcpy(ev->currency, "CNY", 4);
		return PH_OK;
	}
	for (i = 0; i < n; i++)
		cur[i] = (char)(v[i] >= 'a' && v[i] <= 'z' ? v[i] - 32 : v[i]);
	cur[n] = '\0';
	if (n != 3 || !ph_currency_valid(cur))
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", path);
	memcpy(ev->currency, cur, 4);
	return PH_OK;
}

/* An optional unix time member, when present within range. */
static int
agg_time(const struct json_t *o, const char *path, int64_t *out,
    struct ph_diag *diag)
{
	if (ph_json_lookup(o, path) == NULL ||
	    json_is_null((const json_t *)ph_json_lookup(o, path)))
		return PH_OK;
	return ph_json_get_int(o, path, 0, AGG_TIME_MAX, out, diag);
}

/* "object" names the kind of a resource: when present it must be want. */
static int
agg_object_is(const struct json_t *o, const char *want, int required,
    struct ph_diag *diag)
{
	const char *v;
	int rc;

	if ((rc = (required ? ph_json_get_string : ph_json_opt_string)(o,
	    "object", 32, &v, NULL, diag)) != PH_OK)
		return rc;
	if (v != NULL && strcmp(v, want) != 0)
		return ph_fail(diag, PH_E_FIELD, "object is %.32s, not %s", v,
		    want);
	return PH_OK;
}

/*
 * A charge, from an event or a query answer: it must be ours (app, and
 * livemode when it says), then its fields.  Fills a PAYMENT_SUCCEEDED
 * event when paid, and reports paid; created is the fallback time.
 */
static int
agg_charge(const struct agg_ctx *ctx, const struct json_t *ch,
    int64_t created, struct ph_event *ev, int *paid, struct ph_diag *diag)
{
	const char *app, *tn;
	size_t n;
	int rc, live;

	*paid = 0;
	if ((rc = agg_object_is(ch, "charge", 1, diag)) != PH_OK)
		return rc;
	if (ph_json_get_string(ch, "app", PH_ID_MAX, &app, &n, NULL) != PH_OK ||
	    strcmp(app, ctx->app_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "charge app does not match "
		    "app_id");
	if (ph_json_lookup(ch, "livemode") != NULL) {
		if ((rc = ph_json_get_bool(ch, "livemode", &live, diag)) !=
		    PH_OK)
			return rc;
		if (live != ctx->livemode)
			return ph_fail(diag, PH_E_MERCHANT, "a %s charge on a "
			    "%s profile", live ? "live" : "test-mode",
			    ctx->livemode ? "live" : "test-mode");
	}
	if ((rc = ph_json_copy_token(ch, "id", ev->txn_id, sizeof(ev->txn_id),
	    AGG_ID_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_copy_token(ch, "order_no", ev->order_id,
	    sizeof(ev->order_id), AGG_ORDER_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_get_bool(ch, "paid", paid, diag)) != PH_OK ||
	    (rc = ph_json_get_amount(ch, "amount", &ev->amount, diag)) !=
	    PH_OK ||
	    (rc = agg_currency(ch, "currency", 1, ev, diag)) != PH_OK ||
	    (rc = ph_json_copy_token(ch, "channel", ev->channel,
	    sizeof(ev->channel), "_", diag)) != PH_OK)
		return rc;
	/* The wallet's own trade number: no field in the event carries it,
	 * but it must be sane when given. */
	if ((rc = ph_json_opt_string(ch, "transaction_no", PH_ID_MAX, &tn, &n,
	    diag)) != PH_OK)
		return rc;
	if (tn != NULL && n > 0 && !ph_token_valid(tn, n, PH_ID_MAX,
	    AGG_ID_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "transaction_no: invalid");
	ev->occurred_at = created;
	if ((rc = agg_time(ch, "time_paid", &ev->occurred_at, diag)) != PH_OK)
		return rc;
	if (!*paid)
		return PH_OK;
	ev->kind = PH_EV_PAYMENT_SUCCEEDED;
	/* One payment, one key, whatever told us: the event or a query. */
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s",
	    ev->txn_id) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

static int
agg_refund(const struct json_t *re, int64_t created, struct ph_event *ev,
    struct ph_diag *diag)
{
	const char *st;
	int rc;

	if ((rc = agg_object_is(re, "refund", 1, diag)) != PH_OK)
		return rc;
	if ((rc = ph_json_get_string(re, "status", 32, &st, NULL, diag)) !=
	    PH_OK)
		return rc;
	if (strcmp(st, "succeeded") != 0)
		return ph_fail(diag, PH_E_FIELD, "refund.succeeded with status "
		    "%.32s", st);
	ev->kind = PH_EV_REFUND_SUCCEEDED;
	ev->occurred_at = created;
	if ((rc = ph_json_copy_token(re, "id", ev->refund_id,
	    sizeof(ev->refund_id), AGG_ID_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_copy_token(re, "charge", ev->txn_id,
	    sizeof(ev->txn_id), AGG_ID_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_copy_token(re, "charge_order_no", ev->order_id,
	    sizeof(ev->order_id), AGG_ORDER_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_get_amount(re, "amount", &ev->amount, diag)) !=
	    PH_OK ||
	    (rc = agg_currency(re, "currency", 0, ev, diag)) != PH_OK)
		return rc;
	return agg_time(re, "time_succeed", &ev->occurred_at, diag);
}

static int
agg_parse_notify(void *p, const struct ph_request *req, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct agg_ctx *ctx = p;
	const struct json_t *obj;
	const char *hv, *type;
	char id[PH_ID_MAX + 1];
	json_t *root = NULL;
	int64_t created = 0;
	int rc, live, paid;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL,
		    "aggregator: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if (req->body == NULL || req->body_len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "empty body");
	if (req->body_len > AGG_BODY_MAX)
		return ph_fail(diag, PH_E_TOOBIG, "body larger than %d bytes",
		    AGG_BODY_MAX);

	/* VERIFY, over the raw bytes, in the one way the profile pins. */
	if (ctx->mode == AGG_MODE_RSA) {
		if ((rc = agg_header(req->headers, req->nheaders,
		    AGG_RSA_HEADER, &hv, diag)) != PH_OK ||
		    (rc = agg_verify_rsa(ctx, hv, req->body, req->body_len,
		    diag)) != PH_OK)
			return rc;
	} else {
		if ((rc = agg_header(req->headers, req->nheaders, ctx->header,
		    &hv, diag)) != PH_OK ||
		    (rc = agg_verify_hmac(ctx, hv, req->body, req->body_len,
		    req->now, diag)) != PH_OK)
			return rc;
	}

	/* PARSE, once and strictly. */
	if ((rc = ph_json_parse(req->body, req->body_len, &agg_event_limits,
	    &root, diag)) != PH_OK)
		goto out;
	if ((rc = agg_object_is(root, "event", 0, diag)) != PH_OK ||
	    (rc = ph_json_copy_token(root, "id", id, sizeof(id), AGG_ID_EXTRA,
	    diag)) != PH_OK ||
	    (rc = ph_json_get_string(root, "type", 64, &type, NULL,
	    diag)) != PH_OK)
		goto out;
	if (!ph_token_valid(type, strlen(type), 64, AGG_TYPE_EXTRA)) {
		rc = ph_fail(diag, PH_E_FIELD, "type: invalid");
		goto out;
	}
	/* Test-mode events prove nothing about live money. */
	if ((rc = ph_json_get_bool(root, "livemode", &live, diag)) != PH_OK)
		goto out;
	if (live != ctx->livemode) {
		rc = ph_fail(diag, PH_E_MERCHANT, "a %s event on a %s profile",
		    live ? "live" : "test-mode", ctx->livemode ? "live" :
		    "test-mode");
		goto out;
	}
	if ((rc = agg_time(root, "created", &created, diag)) != PH_OK ||
	    (rc = ph_json_get_object(root, "data.object", &obj, diag)) !=
	    PH_OK)
		goto out;

	/* MAP.  Payments by their charge, everything else by event id. */
	if (strcmp(type, "charge.succeeded") == 0) {
		if ((rc = agg_charge(ctx, obj, created, ev, &paid, diag)) !=
		    PH_OK)
			goto out;
		if (!paid)
			rc = ph_fail(diag, PH_E_FIELD, "charge.succeeded for a "
			    "charge that is not paid");
		goto out;
	}
	if (strcmp(type, "refund.succeeded") == 0)
		rc = agg_refund(obj, created, ev, diag);
	else {
		/* Verified, not ours to act on: acknowledged so that it is
		 * not sent again.  The core wants an order id. */
		ev->kind = PH_EV_IGNORED;
		if (ph_json_copy_token(obj, "order_no", ev->order_id,
		    sizeof(ev->order_id), AGG_ORDER_EXTRA, NULL) != PH_OK)
			memcpy(ev->order_id, "-", 2);
		memcpy(ev->currency, "CNY", 4);
		ev->occurred_at = created;
	}
	if (rc == PH_OK && snprintf(ev->dedup_key, sizeof(ev->dedup_key),
	    "evt:%s", id) >= (int)sizeof(ev->dedup_key))
		rc = ph_fail(diag, PH_E_FIELD, "dedup key too long");
out:
	json_decref(root);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* Any 2xx is received: 200 {"ok":true}; refused 400, retry 500. */
static void
agg_ack(void *p, enum ph_ack_kind kind, const char *reason,
    struct ph_response *out)
{
	static const char ok[] = "{\"ok\":true}";
	char msg[AGG_TEXT_MAX + 1];
	const char *s;
	size_t n = 0, len;
	json_t *doc;

	memset(out, 0, sizeof(*out));
	switch (kind) {
	case PH_ACK_OK:
		out->status = 200;
		memcpy(out->body, ok, sizeof(ok) - 1);
		out->body_len = sizeof(ok) - 1;
		memcpy(out->content_type, "application/json",
		    sizeof("application/json"));
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
	if ((doc = json_pack("{s:s}", "error", msg)) == NULL)
		return;
	len = json_dumpb(doc, (char *)out->body, sizeof(out->body),
	    JSON_COMPACT);
	json_decref(doc);
	if (len == 0 || len > sizeof(out->body))
		return;
	out->body_len = len;
	memcpy(out->content_type, "application/json",
	    sizeof("application/json"));
}

/* ---- Query -------------------------------------------------------------- */

static int
agg_set_header(struct ph_http_request *out, const char *name,
    const char *v1, const char *v2)
{
	size_t i = out->nheaders, n1 = strlen(v1), n2 = strlen(v2);

	if (i == PH_HTTP_HEADERS_MAX ||
	    strlen(name) >= sizeof(out->headers[i].name) ||
	    n1 + n2 >= sizeof(out->headers[i].value))
		return PH_E_TOOBIG;
	memcpy(out->headers[i].name, name, strlen(name) + 1);
	memcpy(out->headers[i].value, v1, n1);
	memcpy(out->headers[i].value + n1, v2, n2 + 1);
	out->nheaders++;
	return PH_OK;
}

/* GET /v1/charges?order_no=<id>&app[id]=<app_id>, Bearer <api key>. */
static int
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
	memcpy(out->method, "GET", sizeof("GET"));
	memcpy(out->path, path.data, path.len + 1);
	if ((rc = agg_set_header(out, "Accept", "application/json", "")) !=
	    PH_OK ||
	    (rc = agg_set_header(out, "Authorization", "Bearer ",
	    ctx->api_key)) != PH_OK)
		ph_fail(diag, rc, "request headers too long");
out:
	ph_buf_free(&path);
	if (rc != PH_OK)
		ph_cleanse(out, sizeof(*out));
	return rc;
}

/* Provider text for a diagnostic: printable ASCII only, bounded. */
static void
agg_text(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; src != NULL && *src != '\0' && n + 1 < cap && n < AGG_TEXT_MAX;
	    src++)
		if ((unsigned char)*src >= 0x20 && (unsigned char)*src < 0x7f)
			dst[n++] = *src;
	if (n == 0 && cap > 1)
		dst[n++] = '-';
	dst[n] = '\0';
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
static int
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
		agg_text(code, sizeof(code), c);
		agg_text(text, sizeof(text), m);
		rc = ph_fail(diag, PH_E_PROVIDER, "query: HTTP %d, %s: %s",
		    in->status, code, text);
		goto out;
	}
	if (ctx->mode == AGG_MODE_RSA) {
		rc = agg_header(in->headers, in->nheaders, AGG_RSA_HEADER, &sig,
		    NULL);
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
static int
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

/* ---- Statements (payhook reconcile) -------------------------------------- */

/*
 * Ping++ documents no statement file for merchants (PROTOCOLS.md 5.1),
 * so this plugin reads a CSV of its own, in the words of the API's charge
 * and refund objects: the operator exports the day's charges and refunds
 * into it, the simulator writes it.  UTF-8, an optional BOM, LF or CRLF:
 *
 *   type,id,app,order_no,charge,amount,currency,channel,time,refund_no
 *   charge,ch_L8qn10mLmr1GS8e5OODmHaL4,app_1Gqj58ynP0mHeX1q,A1,,1000,cny,
 *       wx_pub,1764487800,                                    (one line)
 *   refund,re_y1u944PmfnrTHyvnL0nD0iD1,app_1Gqj58ynP0mHeX1q,A1,
 *       ch_L8qn10mLmr1GS8e5OODmHaL4,400,cny,,1764498600,phr0000000000007
 *   total,2,1400
 *
 * Columns by name (type, id, app, order_no, amount, currency and time
 * required; charge for refunds; channel and refund_no optional; others
 * ignored), no quoting, amounts in fen, times in unix seconds, the last
 * line "total,<rows>,<sum of amount>" required.  Rows are charges paid
 * and refunds succeeded: a charge is keyed as its charge.succeeded event
 * ("pay:<charge id>"), a refund carries the refund number payhook gave it
 * (refund_no), when there is one.
 */

enum agg_st_col {
	AGG_ST_TYPE, AGG_ST_ID, AGG_ST_APP, AGG_ST_ORDER, AGG_ST_CHARGE,
	AGG_ST_AMOUNT, AGG_ST_CURRENCY, AGG_ST_CHANNEL, AGG_ST_TIME,
	AGG_ST_REFUND_NO, AGG_ST__MAX
};

static const char *const agg_st_names[AGG_ST__MAX] = {
	"type", "id", "app", "order_no", "charge", "amount", "currency",
	"channel", "time", "refund_no",
};

/* A field as a token of ph_token_valid(extra) filling at most dst. */
static int
agg_st_token(const char *f, size_t n, const char *extra, char *dst,
    size_t cap)
{
	return ph_csv_token(f, n, cap - 1, extra, dst, cap);
}

/* One charge or refund of the statement. */
static int
agg_st_row(const void *p, const struct ph_csv_row *r, uint64_t no,
    struct ph_event *ev, struct ph_diag *diag)
{
	const struct agg_ctx *ctx = p;
	const char *const *f = r->f;
	const size_t *n = r->n;
	char buf[PH_ID_MAX + 1], id[PH_ID_MAX + 1];
	size_t i;
	int c, refund;

	c = r->col[AGG_ST_TYPE];
	if (n[c] == 6 && memcmp(f[c], "charge", 6) == 0)
		refund = 0;
	else if (n[c] == 6 && memcmp(f[c], "refund", 6) == 0)
		refund = 1;
	else
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: type is not "
		    "charge or refund", (unsigned long long)no);
	c = r->col[AGG_ST_AMOUNT];
	if (ph_money_parse_minor(f[c], n[c], &ev->amount) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: amount is not "
		    "an amount in fen", (unsigned long long)no);
	c = r->col[AGG_ST_APP];
	if (agg_st_token(f[c], n[c], AGG_ID_EXTRA, buf,
	    sizeof(buf)) != 0 ||
	    strcmp(buf, ctx->app_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "line %llu: app is not this "
		    "profile's app_id", (unsigned long long)no);
	c = r->col[AGG_ST_ID];
	if (agg_st_token(f[c], n[c], AGG_ID_EXTRA, id,
	    sizeof(id)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: id is invalid",
		    (unsigned long long)no);
	c = r->col[AGG_ST_ORDER];
	if (agg_st_token(f[c], n[c], AGG_ORDER_EXTRA, ev->order_id,
	    sizeof(ev->order_id)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: order_no is "
		    "invalid", (unsigned long long)no);
	c = r->col[AGG_ST_CURRENCY];
	if (n[c] != 3)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: currency is "
		    "not three letters", (unsigned long long)no);
	for (i = 0; i < 3; i++)
		ev->currency[i] = f[c][i] >= 'a' && f[c][i] <= 'z' ?
		    (char)(f[c][i] - 'a' + 'A') : f[c][i];
	ev->currency[3] = '\0';
	if (!ph_currency_valid(ev->currency))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: currency is "
		    "not three letters", (unsigned long long)no);
	c = r->col[AGG_ST_TIME];
	if (!agg_timestamp(f[c], n[c], &ev->occurred_at) ||
	    ev->occurred_at > AGG_TIME_MAX)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: time is not "
		    "unix seconds", (unsigned long long)no);
	if ((c = r->col[AGG_ST_CHANNEL]) >= 0 && n[c] > 0 &&
	    agg_st_token(f[c], n[c], "_", ev->channel,
	    sizeof(ev->channel)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: channel is "
		    "invalid", (unsigned long long)no);
	if (!refund) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		memcpy(ev->txn_id, id, strlen(id) + 1);
		/* The key of the charge's charge.succeeded and query. */
		snprintf(ev->dedup_key, sizeof(ev->dedup_key), "pay:%s", id);
		return PH_OK;
	}
	ev->kind = PH_EV_REFUND_SUCCEEDED;
	memcpy(ev->refund_id, id, strlen(id) + 1);
	c = r->col[AGG_ST_CHARGE];
	if (c < 0 || agg_st_token(f[c], n[c], AGG_ID_EXTRA, ev->txn_id,
	    sizeof(ev->txn_id)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: a refund "
		    "without a valid charge", (unsigned long long)no);
	if ((c = r->col[AGG_ST_REFUND_NO]) >= 0 && n[c] > 0 &&
	    agg_st_token(f[c], n[c], AGG_ID_EXTRA, ev->merchant_refund_id,
	    sizeof(ev->merchant_refund_id)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: refund_no is "
		    "invalid", (unsigned long long)no);
	snprintf(ev->dedup_key, sizeof(ev->dedup_key), "refund:%s", id);
	return PH_OK;
}

static const struct ph_csv_layout agg_st_layout = {
	agg_st_names, AGG_ST__MAX,
	(1u << AGG_ST_CHARGE) | (1u << AGG_ST_CHANNEL) | (1u << AGG_ST_REFUND_NO),
	"amount", agg_st_row,
};

static int
agg_statement_line(void *p, struct ph_statement *st, const char *line,
    size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	return ph_csv_statement_line(&agg_st_layout, p, st, line, len, ev,
	    diag);
}

PH_PROVIDER_DEFINE_HINT("aggregator",
    "Aggregator webhooks (Ping++ style, RSA or HMAC), charge query and "
    "statements",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_STATEMENT, agg_conf_keys,
    agg_profile_new, agg_profile_free, agg_parse_notify, agg_ack,
    agg_query_request, agg_query_response, NULL, NULL, NULL, NULL,
    agg_statement_line, agg_notify_hint)
