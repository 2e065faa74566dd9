/*
 * WeChat Pay (微信支付): the plugin's table, its configuration keys and
 * profiles, and the entries that choose between API v2 (v2.c) and v3
 * (v3.c) by the profile's api_version; refunds are in refund.c, trade
 * bills in bill.c and their download in billget.c.  See README.md for
 * the keys and the quirks.
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

static const char *const wx_api_versions[] = { "2", "3", NULL };

static const struct ph_conf_key wx_conf_keys[WX_CONF__MAX + 1] = {
	[WX_CONF_APPID] = { .name = "appid", .type = PH_CONF_STRING,
	    .required = 1,
	    .help = "the appid notifications must carry (wx...)" },
	[WX_CONF_MCH_ID] = { .name = "mch_id", .type = PH_CONF_STRING,
	    .required = 1,
	    .help = "the merchant id notifications must carry" },
	/*
	 * Keys of one API version are not required by the table, and have
	 * no table default, so that profile_new() can require them for
	 * their version and refuse them on a profile of the other.
	 */
	[WX_CONF_API_KEY_FILE] = { .name = "api_key_file",
	    .type = PH_CONF_SECRET_FILE,
	    .help = "v2 (required): file holding the 32-character APIv2 key" },
	[WX_CONF_SIGN_TYPE] = { .name = "sign_type", .type = PH_CONF_ENUM,
	    .choices = wx_sign_names,
	    .help = "v2: the only signature type accepted: MD5 (default) "
	    "or HMAC-SHA256" },
	[WX_CONF_API_VERSION] = { .name = "api_version", .type = PH_CONF_ENUM,
	    .choices = wx_api_versions, .def = "2",
	    .help = "WeChat Pay API of this merchant account: 2 (XML) or 3 "
	    "(JSON)" },
	[WX_CONF_APIV3_KEY_FILE] = { .name = "apiv3_key_file",
	    .type = PH_CONF_SECRET_FILE,
	    .help = "v3 (required): file holding the 32-byte APIv3 key" },
	[WX_CONF_PLATFORM_CERT_FILES] = { .name = "platform_cert_files",
	    .type = PH_CONF_FILES,
	    .help = "v3: WeChat Pay platform certificates (PEM, one per "
	    "file)" },
	[WX_CONF_PLATFORM_PUBLIC_KEY_FILE] = {
	    .name = "platform_public_key_file", .type = PH_CONF_FILE,
	    .help = "v3: the WeChat Pay public key (PEM)" },
	[WX_CONF_PLATFORM_PUBLIC_KEY_ID] = { .name = "platform_public_key_id",
	    .type = PH_CONF_STRING,
	    .help = "v3: the id of that public key, PUB_KEY_ID_..." },
	[WX_CONF_MERCHANT_PRIVATE_KEY_FILE] = {
	    .name = "merchant_private_key_file", .type = PH_CONF_SECRET_FILE,
	    .help = "v3: private key of the merchant API certificate "
	    "(PEM), to sign queries" },
	[WX_CONF_MERCHANT_SERIAL] = { .name = "merchant_serial",
	    .type = PH_CONF_STRING,
	    .help = "v3: serial number (hex) of the merchant API "
	    "certificate" },
	[WX_CONF_TIMESTAMP_TOLERANCE_S] = { .name = "timestamp_tolerance_s",
	    .type = PH_CONF_INT, .min = 1, .max = 3600,
	    .help = "v3: most seconds between Wechatpay-Timestamp and now "
	    "(default 300)" },
	[WX_CONF_REFUND_NOTIFY_URL] = { .name = "refund_notify_url",
	    .type = PH_CONF_STRING,
	    .help = "notify_url sent with refunds (payhook's "
	    "/notify/<profile>); absent: the one set at the merchant "
	    "platform" },
};

static PH_PROFILE_FREE(wx_profile_free)
{
	struct wx_ctx *ctx = p;

	if (ctx == NULL)
		return;
	wx3_ctx_free(ctx->v3);
	ph_cleanse(ctx->key, sizeof(ctx->key));
	free(ctx);
}

static PH_PROFILE_NEW(wx_profile_new)
{
	const struct ph_conf_value *key, *st;
	struct wx_ctx *ctx = NULL;
	const char *st_name;
	size_t i;
	int rc;

	*out = NULL;
	key = ph_conf_get(conf, "api_key_file");
	st = ph_conf_get(conf, "sign_type");

	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if ((rc = ph_conf_token(conf, "appid", ctx->appid, sizeof(ctx->appid),
	    NULL, diag)) != PH_OK ||
	    (rc = ph_conf_token(conf, "mch_id", ctx->mch_id,
	    sizeof(ctx->mch_id), NULL, diag)) != PH_OK ||
	    (rc = wx_refund_url(conf, ctx, diag)) != PH_OK)
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
	if ((rc = ph_secret_check(&key->blob, WX_KEY_LEN, WX_KEY_LEN,
	    "api_key_file", diag)) != PH_OK)
		goto fail;
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

/* ---- The table: one entry per call, dispatched on api_version ----------- */

/* A notification: v3 JSON, or v2 XML holding a payment or a refund. */
static PH_PARSE_NOTIFY(wx_parse_notify)
{
	const struct wx_ctx *ctx = p;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(ev, 0, sizeof(*ev));
	return ctx->api_version == 3 ? wx3_parse_notify(ctx, req, ev, diag) :
	    wx2_parse_notify(ctx, req, ev, diag);
}

static PH_ACK(wx_ack)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3)
		wx3_ack(kind, reason, out);
	else
		wx2_ack(kind, reason, out);
}

static PH_CALL_REQUEST(wx_dispatch_query_request)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3)
		return wx3_query_request(ctx, order, cc, out, diag);
	return wx_query_request(p, order, cc, out, diag);
}

static PH_CALL_RESPONSE(wx_dispatch_query_response)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3)
		return wx3_query_response(ctx, order, in, ev, diag);
	return wx_query_response(p, order, in, ev, diag);
}

static PH_CALL_REQUEST(wx_dispatch_close_request)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3)
		return wx3_close_request(ctx, order, cc, out, diag);
	return wx_close_request(p, order, cc, out, diag);
}

static PH_CALL_RESPONSE(wx_dispatch_close_response)
{
	const struct wx_ctx *ctx = p;

	if (ctx != NULL && ctx->api_version == 3)
		return wx3_close_response(ctx, order, in, ev, diag);
	return wx_close_response(p, order, in, ev, diag);
}

/*
 * The order a v2 notification names, read without verifying it: the core
 * only queries that order at WeChat, it never applies anything from here.
 * v3 notifications carry the order inside the encrypted resource: no hint.
 */
static PH_NOTIFY_HINT(wx_notify_hint)
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

/* Where tradebill's download_url may point, besides api_base's host. */
static const char *const wx_download_hosts[] = {
	"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com", NULL
};

PH_PROVIDER_DEFINE_DOWNLOAD("wechat",
    "WeChat Pay API v2 and v3 notifications, order query and close, "
    "refunds and trade bills, downloaded or given",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE | PH_CAP_REFUND |
    PH_CAP_STATEMENT | PH_CAP_DOWNLOAD | PH_CAP_ORDER_KEYED, wx_conf_keys,
    wx_profile_new, wx_profile_free, wx_parse_notify, wx_ack,
    wx_dispatch_query_request, wx_dispatch_query_response,
    wx_dispatch_close_request, wx_dispatch_close_response,
    wx_refund_request, wx_refund_response, wx_statement_line,
    wx_notify_hint, wx_statement_request, wx_statement_response,
    wx_download_hosts)
