/*
 * The template provider: a complete, minimal plugin to copy when adding a
 * provider.  It accepts a JSON webhook signed with HMAC-SHA256 over the
 * raw body, which is the shape most aggregators and card gateways use:
 *
 *	POST /notify/<profile>
 *	X-Template-Signature: <lower-case hex HMAC-SHA256(secret, body)>
 *
 *	{"id":"evt_1","type":"payment.succeeded","merchant":"shop1",
 *	 "order_id":"A1","txn_id":"T1","amount":123,"currency":"CNY",
 *	 "time":1700000000}
 *
 * To start a new provider: copy this file to providers/<name>/<name>.c,
 * rename the tpl_ prefix and the table's name, then replace the three
 * marked steps (VERIFY, PARSE, MAP) and the ACK formats with the
 * provider's.  Keep the order of the steps: that order is the security.
 *
 * Why no I/O: a plugin is handed bytes and returns a verdict.  The core
 * reads key files (conf values arrive as bytes), talks to the web server
 * and owns the store.  A plugin that cannot touch the outside world can be
 * tested with fixed vectors, fuzzed, and loaded into any process; so
 * never open a file or socket, never log, never keep a global.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

/* Bound every input before looking at it. */
#define TPL_BODY_MAX	(64 * 1024)
#define TPL_SECRET_MIN	16
#define TPL_SECRET_MAX	1024
#define TPL_SIG_HEADER	"X-Template-Signature"
/* Identifiers: [A-Za-z0-9] plus these. */
#define TPL_ID_EXTRA	"_-"

/*
 * Configuration keys.  The core parses the profile's section against
 * this table (types, required, defaults, reads files) and hands
 * profile_new() the values in the same order.
 */
enum tpl_conf {
	TPL_CONF_SECRET_FILE,
	TPL_CONF_MERCHANT,
	TPL_CONF__MAX
};

static const struct ph_conf_key tpl_conf_keys[TPL_CONF__MAX + 1] = {
	/* SECRET_FILE: the core refuses a group/world-readable file. */
	[TPL_CONF_SECRET_FILE] = { .name = "secret_file",
	    .type = PH_CONF_SECRET_FILE, .required = 1,
	    .help = "file holding the webhook signing secret" },
	[TPL_CONF_MERCHANT] = { .name = "merchant", .type = PH_CONF_STRING,
	    .required = 1,
	    .help = "our merchant id; notifications must carry it" },
};

/*
 * Per-profile context: all a plugin knows about one merchant account.
 * Copy what you need out of the conf values, validated, so the hot path
 * never re-checks configuration.
 */
struct tpl_ctx {
	char merchant[PH_ID_MAX + 1];
	size_t secret_len;
	unsigned char secret[];	/* secret_len bytes */
};

static PH_PROFILE_FREE(tpl_profile_free)
{
	struct tpl_ctx *ctx = p;

	if (ctx == NULL)
		return;
	ph_cleanse(ctx->secret, ctx->secret_len);
	free(ctx);
}

static PH_PROFILE_NEW(tpl_profile_new)
{
	const struct ph_conf_value *secret;
	struct tpl_ctx *ctx;
	int rc;

	*out = NULL;
	secret = ph_conf_get(conf, "secret_file");
	if (secret == NULL || !secret->present || secret->blob.data == NULL)
		return ph_fail(diag, PH_E_CONFIG, "secret_file is required");
	/* Refuse weak or absurd secrets at start-up, not per request. */
	if (secret->blob.len < TPL_SECRET_MIN ||
	    secret->blob.len > TPL_SECRET_MAX)
		return ph_fail(diag, PH_E_CONFIG, "secret_file: the secret "
		    "must be %d to %d bytes, the file holds %zu",
		    TPL_SECRET_MIN, TPL_SECRET_MAX, secret->blob.len);

	if ((ctx = calloc(1, sizeof(*ctx) + secret->blob.len)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if ((rc = ph_conf_token(conf, "merchant", ctx->merchant,
	    sizeof(ctx->merchant), TPL_ID_EXTRA, diag)) != PH_OK) {
		tpl_profile_free(ctx);
		return rc;
	}
	memcpy(ctx->secret, secret->blob.data, secret->blob.len);
	ctx->secret_len = secret->blob.len;
	*out = ctx;
	return PH_OK;
}

/*
 * Step 1, VERIFY: over the raw bytes, before any parsing of their
 * meaning, with the key our configuration names (never one the message
 * names), compared in constant time.  Any error on the way is a refusal.
 */
static int
tpl_verify(const struct tpl_ctx *ctx, const struct ph_request *req,
    struct ph_diag *diag)
{
	unsigned char mac[PH_SHA256_LEN];
	char want[2 * PH_SHA256_LEN + 1];
	const char *got;
	int rc;

	if ((rc = ph_header_get(req->headers, req->nheaders,
	    TPL_SIG_HEADER, &got, diag)) != PH_OK)
		return rc;
	if ((rc = ph_hmac_sha256(ctx->secret, ctx->secret_len, req->body,
	    req->body_len, mac)) != PH_OK)
		return ph_fail(diag, rc, "cannot compute the signature");
	ph_hex_lower(mac, sizeof(mac), want);
	rc = ph_ct_equal(got, strlen(got), want, strlen(want)) ? PH_OK :
	    ph_fail(diag, PH_E_SIGNATURE, "signature mismatch");
	ph_cleanse(mac, sizeof(mac));
	ph_cleanse(want, sizeof(want));
	return rc;
}

/* A required string member that is an identifier, copied into dst. */
static int
tpl_id(const json_t *obj, const char *name, char *dst, size_t cap,
    struct ph_diag *diag)
{
	const json_t *v = json_object_get(obj, name);

	if (!json_is_string(v))
		return ph_fail(diag, PH_E_FIELD, "%s: missing or not a string",
		    name);
	/* json_string_length, not strlen: the two differ if a NUL hid. */
	if (!ph_token_valid(json_string_value(v), json_string_length(v),
	    cap - 1, TPL_ID_EXTRA))
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", name);
	return ph_copy_token(dst, cap, json_string_value(v), TPL_ID_EXTRA,
	    name, diag);
}

/* A required integer member in [min, max].  A JSON real (12.5, 1e3) or
 * a string ("12") is refused: amounts are exact or they are wrong. */
static int
tpl_int(const json_t *obj, const char *name, json_int_t min, json_int_t max,
    int64_t *out, struct ph_diag *diag)
{
	const json_t *v = json_object_get(obj, name);

	if (!json_is_integer(v))
		return ph_fail(diag, PH_E_FIELD, "%s: missing or not an "
		    "integer", name);
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return ph_fail(diag, PH_E_FIELD, "%s: out of range", name);
	*out = (int64_t)json_integer_value(v);
	return PH_OK;
}

/*
 * Step 3, MAP: the provider's vocabulary onto struct ph_event.  Every
 * field is validated here; the core trusts what the event says.
 */
static int
tpl_map(const json_t *root, const char *type, struct ph_event *ev,
    struct ph_diag *diag)
{
	const json_t *cur;
	int rc;

	if (strcmp(type, "payment.succeeded") == 0)
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
	else if (strcmp(type, "payment.failed") == 0)
		ev->kind = PH_EV_PAYMENT_FAILED;
	else {
		/* Verified but not ours to act on: acknowledge so the
		 * provider stops resending, change nothing. */
		ev->kind = PH_EV_IGNORED;
		return PH_OK;
	}
	if ((rc = tpl_id(root, "order_id", ev->order_id,
	    sizeof(ev->order_id), diag)) != PH_OK)
		return rc;
	/* A failed payment may never have had a transaction. */
	if (ev->kind == PH_EV_PAYMENT_SUCCEEDED ||
	    json_object_get(root, "txn_id") != NULL)
		if ((rc = tpl_id(root, "txn_id", ev->txn_id,
		    sizeof(ev->txn_id), diag)) != PH_OK)
			return rc;
	if ((rc = tpl_int(root, "amount", 0, PH_AMOUNT_MAX, &ev->amount,
	    diag)) != PH_OK)
		return rc;
	cur = json_object_get(root, "currency");
	if (!json_is_string(cur) || json_string_length(cur) != 3 ||
	    !ph_currency_valid(json_string_value(cur)))
		return ph_fail(diag, PH_E_FIELD, "currency: invalid");
	memcpy(ev->currency, json_string_value(cur), 4);
	/* Up to 9999-12-31: a later time is a corrupt one. */
	return tpl_int(root, "time", 0, 253402300799LL, &ev->occurred_at,
	    diag);
}

static PH_PARSE_NOTIFY(tpl_parse_notify)
{
	const struct tpl_ctx *ctx = p;
	char id[PH_ID_MAX + 1];
	json_error_t jerr;
	json_t *root = NULL;
	const json_t *v;
	int rc;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "template: NULL argument");
	memset(ev, 0, sizeof(*ev));
	if ((rc = ph_body_check(req, TPL_BODY_MAX, diag)) != PH_OK)
		return rc;

	if ((rc = tpl_verify(ctx, req, diag)) != PH_OK)
		return rc;

	/*
	 * Step 2, PARSE: strictly, once, into the one structure that both
	 * the checks below and the mapping read.  Duplicate keys are refused
	 * (a parser that keeps the last copy and a human who reads the first
	 * disagree about what was signed); trailing bytes are refused by
	 * jansson's default end-of-input check.
	 */
	root = json_loadb((const char *)req->body, req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		rc = ph_fail(diag, PH_E_MALFORMED, "JSON: %.100s", jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = ph_fail(diag, PH_E_MALFORMED, "JSON: not an object");
		goto out;
	}

	/* Is it addressed to us?  A valid signature only says who sent it. */
	v = json_object_get(root, "merchant");
	if (!json_is_string(v) ||
	    json_string_length(v) != strlen(ctx->merchant) ||
	    strcmp(json_string_value(v), ctx->merchant) != 0) {
		rc = ph_fail(diag, PH_E_MERCHANT, "merchant does not match");
		goto out;
	}

	/* The event id is the provider's unique fact: our dedup key. */
	if ((rc = tpl_id(root, "id", id, sizeof(id), diag)) != PH_OK)
		goto out;
	if ((rc = ph_dedup_key(ev, diag, "evt", id, (char *)NULL)) != PH_OK)
		goto out;

	v = json_object_get(root, "type");
	if (!json_is_string(v) || !ph_token_valid(json_string_value(v),
	    json_string_length(v), 64, "._")) {
		rc = ph_fail(diag, PH_E_FIELD, "type: missing or invalid");
		goto out;
	}
	rc = tpl_map(root, json_string_value(v), ev, diag);
out:
	json_decref(root);
	/* Never leave a half-filled event behind a refusal. */
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/*
 * ACK: the bytes the provider expects for each outcome.  The core
 * decides the outcome; the plugin only renders it.  Reasons come from
 * diagnostics and may echo request bytes, so they are reduced to
 * printable ASCII and JSON-escaped by jansson.
 */
static PH_ACK(tpl_ack)
{
	static const char ok[] = "{\"ok\":true}";
	char msg[129];

	(void)p;
	memset(out, 0, sizeof(*out));
	if (kind == PH_ACK_OK) {
		out->status = 200;
		memcpy(out->content_type, "application/json",
		    sizeof("application/json"));
		memcpy(out->body, ok, sizeof(ok) - 1);
		out->body_len = sizeof(ok) - 1;
		return;
	}
	if (kind != PH_ACK_REFUSED && kind != PH_ACK_RETRY)
		goto fail;
	ph_ack_reason(kind, reason, msg, sizeof(msg));
	if (ph_response_json(out, kind == PH_ACK_REFUSED ? 400 : 503,
	    json_pack("{s:s}", "error", msg)) == PH_OK)
		return;
fail:
	/* Nothing sensible to say: a bare 500, as the contract asks. */
	memset(out, 0, sizeof(*out));
	out->status = 500;
}

PH_PROVIDER_DEFINE("template", "Template JSON webhook (a guide to copy)",
    PH_CAP_NOTIFY, tpl_conf_keys, tpl_profile_new, tpl_profile_free,
    tpl_parse_notify, tpl_ack)
