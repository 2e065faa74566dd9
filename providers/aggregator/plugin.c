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

#include "aggregator_int.h"

const struct ph_json_limits agg_event_limits = { AGG_BODY_MAX, 8 };
const struct ph_json_limits agg_answer_limits = { AGG_ANSWER_MAX, 8 };

static const char *const agg_mode_names[AGG_MODE__MAX + 1] = {
	[AGG_MODE_RSA] = "rsa",
	[AGG_MODE_HMAC] = "hmac",
	[AGG_MODE__MAX] = NULL,
};

/*
 * Keys of one mode have no table default, so that profile_new() can
 * require them in their mode and refuse them in the other.
 */
static const struct ph_conf_key agg_conf_keys[AGG_CONF__MAX + 1] = {
	[AGG_CONF_SIGNATURE] = { .name = "signature", .type = PH_CONF_ENUM,
	    .required = 1, .choices = agg_mode_names,
	    .help = "how events are verified: rsa or hmac" },
	[AGG_CONF_APP_ID] = { .name = "app_id", .type = PH_CONF_STRING,
	    .required = 1,
	    .help = "our app at the aggregator (app_...): charges must "
	    "carry it" },
	[AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE] = {
	    .name = "webhook_public_key_file", .type = PH_CONF_FILE,
	    .help = "rsa (required): the aggregator's public key (PEM)" },
	[AGG_CONF_WEBHOOK_SECRET_FILE] = { .name = "webhook_secret_file",
	    .type = PH_CONF_SECRET_FILE,
	    .help = "hmac (required): file holding the webhook signing "
	    "secret" },
	[AGG_CONF_SIGNATURE_HEADER] = { .name = "signature_header",
	    .type = PH_CONF_STRING,
	    .help = "hmac: header carrying t=...,v1=... (default "
	    "X-Signature)" },
	[AGG_CONF_TOLERANCE_S] = { .name = "tolerance_s", .type = PH_CONF_INT,
	    .min = 1, .max = 3600,
	    .help = "hmac: most seconds between t and now (default 300)" },
	[AGG_CONF_LIVEMODE] = { .name = "livemode", .type = PH_CONF_BOOL,
	    .def = "yes",
	    .help = "accept live events (yes) or test-mode events (no)" },
	[AGG_CONF_API_KEY_FILE] = { .name = "api_key_file",
	    .type = PH_CONF_SECRET_FILE,
	    .help = "secret API key (sk_...) for queries, sent as a Bearer "
	    "token" },
};

static PH_PROFILE_FREE(agg_profile_free)
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

static int
agg_refuse(const struct ph_conf *conf, const char *name, const char *mode,
    struct ph_diag *diag)
{
	if (ph_conf_given(conf, name) != NULL)
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
	key = ph_conf_given(conf, "webhook_public_key_file");
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
	secret = ph_conf_given(conf, "webhook_secret_file");
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

	hdr = ph_conf_given(conf, "signature_header");
	name = hdr != NULL ? hdr->str : AGG_HMAC_HEADER_DEF;
	if (name == NULL || !ph_token_valid(name, strlen(name),
	    sizeof(ctx->header) - 1, "-"))
		return ph_fail(diag, PH_E_CONFIG, "signature_header must be a "
		    "header name: letters, digits and '-'");
	memcpy(ctx->header, name, strlen(name) + 1);

	ctx->tolerance = AGG_TOLERANCE_DEF;
	if ((tol = ph_conf_given(conf, "tolerance_s")) != NULL) {
		if (tol->num < 1 || tol->num > 3600)
			return ph_fail(diag, PH_E_CONFIG, "tolerance_s must be "
			    "from 1 to 3600");
		ctx->tolerance = tol->num;
	}
	return PH_OK;
}

static PH_PROFILE_NEW(agg_profile_new)
{
	const struct ph_conf_value *mode, *live, *key;
	struct agg_ctx *ctx;
	int rc;

	*out = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	mode = ph_conf_given(conf, "signature");
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
	if ((rc = ph_conf_token(conf, "app_id", ctx->app_id,
	    sizeof(ctx->app_id), AGG_ID_EXTRA, diag)) != PH_OK)
		goto fail;
	live = ph_conf_given(conf, "livemode");
	ctx->livemode = live != NULL ? live->num != 0 : 1;

	rc = ctx->mode == AGG_MODE_RSA ? agg_rsa_profile(conf, ctx, diag) :
	    agg_hmac_profile(conf, ctx, diag);
	if (rc != PH_OK)
		goto fail;

	if ((key = ph_conf_given(conf, "api_key_file")) != NULL) {
		if ((rc = ph_secret_check(&key->blob, 1, AGG_API_KEY_MAX,
		    "api_key_file", diag)) != PH_OK)
			goto fail;
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

PH_PROVIDER_DEFINE_HINT("aggregator",
    "Aggregator webhooks (Ping++ style, RSA or HMAC), charge query and "
    "statements",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_STATEMENT, agg_conf_keys,
    agg_profile_new, agg_profile_free, agg_parse_notify, agg_ack,
    agg_query_request, agg_query_response, NULL, NULL, NULL, NULL,
    agg_statement_line, agg_notify_hint)
