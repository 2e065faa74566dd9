/*
 * Alipay open platform (支付宝开放平台): the plugin's table, its
 * configuration keys and profiles.  Notifications and their RSA2
 * signatures are in notify.c, the gateway's signed requests and answers
 * in gateway.c, the trade calls (query, close, refund) in trade.c, the
 * trade-detail bill in statement.c and its download in billget.c.  See
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

#include "alipay_int.h"

static const struct ph_conf_key ali_conf_keys[ALI_CONF__MAX + 1] = {
	[ALI_CONF_APP_ID] = { .name = "app_id", .type = PH_CONF_STRING,
	    .required = 1,
	    .help = "the application (app_id) notifications must be "
	    "addressed to" },
	[ALI_CONF_SELLER_ID] = { .name = "seller_id", .type = PH_CONF_STRING,
	    .required = 1,
	    .help = "the seller's Alipay user id (2088...) payments must "
	    "go to" },
	[ALI_CONF_ALIPAY_PUBLIC_KEY_FILE] = { .name = "alipay_public_key_file",
	    .type = PH_CONF_FILE, .required = 1,
	    .help = "Alipay's RSA2 public key (PEM, or the console's "
	    "base64 text)" },
	[ALI_CONF_APP_PRIVATE_KEY_FILE] = { .name = "app_private_key_file",
	    .type = PH_CONF_SECRET_FILE,
	    .help = "the app's private key that signs requests (PEM or "
	    "base64)" },
};

const struct ph_form_limits ali_form_limits = {
	.max_bytes = 32 * 1024,
	.max_fields = 96,
	.max_value = 8192,
};

const struct ph_json_limits ali_json_limits = {
	.max_bytes = 256 * 1024,
	.max_depth = 8,
};

const struct ali_method ali_query = {
	"alipay.trade.query", "alipay_trade_query_response" };
const struct ali_method ali_close = {
	"alipay.trade.close", "alipay_trade_close_response" };
const struct ali_method ali_refund = {
	"alipay.trade.refund", "alipay_trade_refund_response" };
const struct ali_method ali_refund_query = {
	"alipay.trade.fastpay.refund.query",
	"alipay_trade_fastpay_refund_query_response" };
const struct ali_method ali_bill_url = {
	"alipay.data.dataservice.bill.downloadurl.query",
	"alipay_data_dataservice_bill_downloadurl_query_response" };

/* Where the links the bill's download query names point. */
static const char *const ali_download_hosts[] = { ALI_BILL_HOST, NULL };

/* ---- Profiles ------------------------------------------------------------ */

static PH_PROFILE_FREE(ali_profile_free)
{
	struct ali_ctx *ctx = p;

	if (ctx == NULL)
		return;
	ph_key_free(ctx->alipay_key);
	ph_key_free(ctx->app_key);
	free(ctx);
}

static PH_PROFILE_NEW(ali_profile_new)
{
	const struct ph_conf_value *v;
	struct ali_ctx *ctx;
	int rc;

	*out = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if ((rc = ph_conf_token(conf, "app_id", ctx->app_id,
	    sizeof(ctx->app_id), NULL, diag)) != PH_OK ||
	    (rc = ph_conf_token(conf, "seller_id", ctx->seller_id,
	    sizeof(ctx->seller_id), NULL, diag)) != PH_OK)
		goto fail;
	if ((v = ph_conf_given(conf, "alipay_public_key_file")) == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "alipay_public_key_file is "
		    "required");
		goto fail;
	}
	/* Keys as Alipay's console and key tool hand them out: PEM, or the
	 * DER in bare base64.  Certificates (Alipay's certificate mode) are
	 * not supported. */
	if ((rc = ph_key_load(&v->blob, PH_KEY_PUBLIC, PH_KEY_BASE64,
	    "alipay_public_key_file", &ctx->alipay_key, diag)) != PH_OK)
		goto fail;
	if ((v = ph_conf_given(conf, "app_private_key_file")) != NULL &&
	    (rc = ph_key_load(&v->blob, PH_KEY_PRIVATE, PH_KEY_BASE64,
	    "app_private_key_file", &ctx->app_key, diag)) != PH_OK)
		goto fail;
	*out = ctx;
	return PH_OK;
fail:
	ali_profile_free(ctx);
	return rc;
}

/* ---- Hint ---------------------------------------------------------------- */

/*
 * The out_trade_no of a notification, read WITHOUT verifying it: when a
 * notification is refused (a key rotated at Alipay but not here, say),
 * the core only asks Alipay about that order; nothing is applied from it.
 */
static PH_NOTIFY_HINT(ali_notify_hint)
{
	if (p == NULL)
		return PH_E_INTERNAL;
	return ph_form_hint(req, &ali_form_limits, "out_trade_no",
	    ALI_ORDER_EXTRA, order_id);
}

PH_PROVIDER_DEFINE_DOWNLOAD("alipay",
    "Alipay open platform: notifications, trade query/close/refund, bills "
    "(read or downloaded)",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE | PH_CAP_REFUND |
    PH_CAP_STATEMENT | PH_CAP_DOWNLOAD | PH_CAP_ORDER_KEYED, ali_conf_keys,
    ali_profile_new, ali_profile_free, ali_parse_notify, ali_ack, ali_query_request,
    ali_query_response, ali_close_request, ali_close_response,
    ali_refund_request, ali_refund_response, ali_statement_line,
    ali_notify_hint, ali_statement_request, ali_statement_response,
    ali_download_hosts)
