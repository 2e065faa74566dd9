/*
 * Alipay asynchronous notifications and the RSA2 signatures of every
 * message.  Notifications are forms signed with RSA2 (SHA256withRSA) by
 * Alipay's key over the sorted k=v string of every received parameter
 * except sign and sign_type.  Order of work: a bounded strict parse, the
 * signature, then the app and seller, then the business fields.
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

/* ---- RSA2 ---------------------------------------------------------------- */

/* SHA256withRSA (PKCS#1 v1.5) of a base64 signature over msg. */
int
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
int
ali_sign(const struct ali_ctx *ctx, const void *msg, size_t msg_len,
    struct ph_buf *out, struct ph_diag *diag)
{
	return ph_rsa_sign(ctx->app_key, "SHA256", msg, msg_len, out, diag);
}

/* ---- Small parsers ------------------------------------------------------- */

int
ali_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Unix seconds as "yyyy-MM-dd HH:mm:ss" in Beijing time. */
int
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
int
ali_yuan(const char *s, size_t len, int64_t *out)
{
	return ph_money_parse_decimal(s, len, 2, out);
}

/* As ali_yuan, with an optional leading '-' (bills). */
int
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
const char *
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

const char *const ali_paid_states[] = {
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
int
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
	if (v != NULL &&
	    ph_time_parse_dashed(v, strlen(v), ALI_BEIJING, out) != PH_OK)
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

	if (ph_in(status, ali_paid_states)) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		if ((v = ali_get(kv, "gmt_payment")) == NULL)
			return ph_fail(diag, PH_E_FIELD,
			    "gmt_payment: missing");
		if (ph_time_parse_dashed(v, strlen(v), ALI_BEIJING,
		    &ev->occurred_at) != PH_OK)
			return ph_fail(diag, PH_E_FIELD, "gmt_payment: not "
			    "yyyy-MM-dd HH:mm:ss");
		/* The key a query or a bill line of this payment carries. */
		rc = ph_dedup_key(ev, diag, "pay", ev->txn_id, (char *)NULL);
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
		rc = ph_dedup_key(ev, diag, "ali", notify_id, (char *)NULL);
	}
	return rc;
}

PH_PARSE_NOTIFY(ali_parse_notify)
{
	const struct ali_ctx *ctx = p;
	struct ph_kvlist kv;
	int rc;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = ph_form_request(req, &ali_form_limits, &kv, diag)) != PH_OK)
		return rc;
	if ((rc = ali_verify_notify(ctx, &kv, diag)) == PH_OK &&
	    (rc = ali_check_party(ctx, ali_get(&kv, "app_id"),
	    ali_get(&kv, "seller_id"), diag)) == PH_OK)
		rc = ali_notify_event(&kv, ev, diag);
	ph_kvlist_free(&kv);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/* ---- Acknowledgement ----------------------------------------------------- */

/*
 * Alipay reads the body only: exactly "success" stops the re-sends,
 * anything else is a failure it retries.  The status tells the web
 * server's log and payhook's metrics apart: 200 received, 400 refused,
 * 500 not recorded.
 */
PH_ACK(ali_ack)
{
	(void)p;
	(void)reason;
	ph_ack_text(out, kind, kind == PH_ACK_OK ? "success" : "failure");
}
