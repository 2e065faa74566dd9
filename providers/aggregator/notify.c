/*
 * Aggregator webhooks: the signature (RSA over the body, or HMAC-SHA256
 * of "<t>.<body>" with a shared secret), then the event's charge or
 * refund object mapped to a payhook event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "aggregator_int.h"

/* ---- Verification ------------------------------------------------------- */

int
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
	if (t == NULL || ph_time_parse_unix(t, tlen, &ts) != PH_OK)
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

/* An optional unix time member, when present within range: *out is
 * left as it was when it is missing, null or 0 (a charge not paid yet
 * carries time_paid 0). */
static int
agg_time(const struct json_t *o, const char *path, int64_t *out,
    struct ph_diag *diag)
{
	int64_t t;
	int rc;

	if (ph_json_lookup(o, path) == NULL ||
	    json_is_null((const json_t *)ph_json_lookup(o, path)))
		return PH_OK;
	if ((rc = ph_json_get_int(o, path, 0, AGG_TIME_MAX, &t, diag)) !=
	    PH_OK)
		return rc;
	if (t > 0)
		*out = t;
	return PH_OK;
}

/* "object" names the kind of a resource: when present it must be want. */
int
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

/* A charge of this profile: a charge, of its app, in its mode (when it
 * says).  Another app's or mode's is refused, never skipped. */
int
agg_charge_ours(const struct agg_ctx *ctx, const struct json_t *ch,
    struct ph_diag *diag)
{
	const char *app;
	size_t n;
	int rc, live;

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
	return PH_OK;
}

/*
 * A charge, from an event or a query answer: it must be ours (app, and
 * livemode when it says), then its fields.  Fills a PAYMENT_SUCCEEDED
 * event when paid, and reports paid; created is the fallback time.
 */
int
agg_charge(const struct agg_ctx *ctx, const struct json_t *ch,
    int64_t created, struct ph_event *ev, int *paid, struct ph_diag *diag)
{
	const char *tn;
	size_t n;
	int rc;

	*paid = 0;
	if ((rc = agg_charge_ours(ctx, ch, diag)) != PH_OK)
		return rc;
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
	return ph_dedup_key(ev, diag, "pay", ev->txn_id, (char *)NULL);
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

PH_PARSE_NOTIFY(agg_parse_notify)
{
	const struct agg_ctx *ctx = p;
	const struct json_t *obj;
	const char *hv;
	char type[65];
	char id[PH_ID_MAX + 1];
	json_t *root = NULL;
	int64_t created = 0;
	int rc, live, paid;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL,
		    "aggregator: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = ph_body_check(req, AGG_BODY_MAX, diag)) != PH_OK)
		return rc;

	/* VERIFY, over the raw bytes, in the one way the profile pins. */
	if (ctx->mode == AGG_MODE_RSA) {
		if ((rc = ph_header_get(req->headers, req->nheaders,
		    AGG_RSA_HEADER, &hv, diag)) != PH_OK ||
		    (rc = agg_verify_rsa(ctx, hv, req->body, req->body_len,
		    diag)) != PH_OK)
			return rc;
	} else {
		if ((rc = ph_header_get(req->headers, req->nheaders,
		    ctx->header, &hv, diag)) != PH_OK ||
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
	    (rc = ph_json_copy_token(root, "type", type, sizeof(type),
	    AGG_TYPE_EXTRA, diag)) != PH_OK)
		goto out;
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
	if (rc == PH_OK)
		rc = ph_dedup_key(ev, diag, "evt", id, (char *)NULL);
out:
	json_decref(root);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/* Any 2xx is received: 200 {"ok":true}; refused 400, retry 500. */
PH_ACK(agg_ack)
{
	static const char ok[] = "{\"ok\":true}";

	if (kind == PH_ACK_OK) {
		memset(out, 0, sizeof(*out));
		out->status = 200;
		memcpy(out->body, ok, sizeof(ok) - 1);
		out->body_len = sizeof(ok) - 1;
		memcpy(out->content_type, "application/json",
		    sizeof("application/json"));
		return;
	}
	ph_ack_json_failure(out, kind, reason, NULL, NULL, "error");
}
