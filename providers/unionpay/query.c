/*
 * UnionPay's transaction status query (queryTrans.do): the request,
 * signed with the merchant's key, and the answer, verified as a
 * notification is and read into an event.
 */
#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <pthread.h>
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

#include "unionpay_int.h"

/* txnTime of the payment attempt: {"txnTime":"yyyyMMddHHmmss"}. */
static int
up_attempt_time(const char *attempt, char out[15], struct ph_diag *diag)
{
	json_error_t jerr;
	json_t *root = NULL, *t;
	const char *v;
	int64_t ignored;
	int rc = PH_E_FIELD;

	if (attempt == NULL || attempt[0] == '\0' ||
	    (root = json_loads(attempt, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL || !json_is_object(root) ||
	    (t = json_object_get(root, "txnTime")) == NULL) {
		ph_fail(diag, rc, "UnionPay query needs the attempt's txnTime");
		goto out;
	}
	if (!json_is_string(t) || strlen(v = json_string_value(t)) != 14 ||
	    ph_time_parse_compact(v, UP_BEIJING, &ignored) != PH_OK) {
		ph_fail(diag, rc, "the attempt's txnTime is not "
		    "yyyyMMddHHmmss");
		goto out;
	}
	memcpy(out, v, 15);
	rc = PH_OK;
out:
	json_decref(root);
	return rc;
}

/* signature: base64 RSA-SHA256 over the lowercase hex SHA-256 of the
 * canonical string of the non-empty fields. */
static int
up_sign(const struct up_ctx *ctx, struct ph_kvlist *kv, struct ph_diag *diag)
{
	static const char *const skip[] = { "signature", NULL };
	unsigned char md[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	struct ph_buf s, b64;
	int rc;

	ph_buf_init(&s, PH_HTTP_BODY_MAX);
	ph_buf_init(&b64, 2 * PH_RSA_SIG_MAX);
	if ((rc = ph_canonical_join(kv, skip, 1, &s)) != PH_OK ||
	    (rc = ph_sha256(s.data, s.len, md)) != PH_OK) {
		ph_fail(diag, rc, "cannot build the sign string");
		goto out;
	}
	ph_hex_lower(md, PH_SHA256_LEN, hex);
	if ((rc = ph_rsa_sign(ctx->sign_key, "SHA256", hex, strlen(hex), &b64,
	    diag)) != PH_OK)
		goto out;
	if ((rc = ph_kvlist_add(kv, "signature", 9, b64.data, b64.len,
	    diag)) != PH_OK) {
		ph_fail(diag, rc, "cannot add the signature");
		goto out;
	}
	rc = PH_OK;
out:
	ph_buf_free(&s);
	ph_buf_free(&b64);
	return rc;
}

/*
 * The fields of the official query demo, Java 5.1.0 (Form_6_5_Query.java):
 * no channelType (only older demos send one, 07 or 08, and disagree), and
 * the profile's bizType, 000201 as that demo sends or 000000 as the .NET
 * and 5.0.0 demos do.  The order is named by merId, orderId and the
 * original txnTime in every demo.
 */
PH_CALL_REQUEST(up_query_request)
{
	static const char ct[] = "application/x-www-form-urlencoded";
	const struct up_ctx *ctx = p;
	struct ph_kvlist kv;
	struct ph_buf body;
	char txn_time[15];
	size_t i;
	int rc;
	const char *fields[][2] = {
		{ "version", "5.1.0" },
		{ "encoding", "UTF-8" },
		{ "signMethod", "01" },
		{ "txnType", "00" },
		{ "txnSubType", "00" },
		{ "bizType", NULL },
		{ "accessType", "0" },
		{ "merId", NULL },
		{ "orderId", NULL },
		{ "txnTime", txn_time },
		{ "certId", NULL },
	};

	(void)cc;
	if (ctx == NULL || order == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "unionpay: NULL argument");
	memset(out, 0, sizeof(*out));
	if (ctx->sign_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "UnionPay queries need "
		    "sign_key_file and sign_cert_file in the profile");
	if (order->order_id == NULL || !ph_token_valid(order->order_id,
	    strlen(order->order_id), UP_ORDER_MAX, NULL))
		return ph_fail(diag, PH_E_FIELD, "order id is not a UnionPay "
		    "orderId (1 to %d letters and digits)", UP_ORDER_MAX);
	if ((rc = up_attempt_time(order->attempt, txn_time, diag)) != PH_OK)
		return rc;
	fields[5][1] = ctx->query_biz_type;
	fields[7][1] = ctx->mer_id;
	fields[8][1] = order->order_id;
	fields[10][1] = ctx->cert_id;

	ph_kvlist_init(&kv, 16);
	ph_buf_init(&body, sizeof(out->body));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((rc = ph_kvlist_add(&kv, fields[i][0],
		    strlen(fields[i][0]), fields[i][1], strlen(fields[i][1]),
		    diag)) != PH_OK)
			goto out;
	if ((rc = up_sign(ctx, &kv, diag)) != PH_OK)
		goto out;
	if ((rc = ph_form_write(&kv, &body)) != PH_OK) {
		ph_fail(diag, rc, "cannot write the request body");
		goto out;
	}
	if ((rc = ph_request_set(out, "POST", UP_QUERY_PATH, ct,
	    &body)) != PH_OK)
		ph_fail(diag, rc, "cannot write the request");
out:
	ph_kvlist_free(&kv);
	ph_buf_free(&body);
	return ph_clear_on_fail(rc, out, sizeof(*out));
}

/*
 * A reply in UnionPay's own syntax, as its SDKs read it: k=v joined by
 * '&', values not percent-encoded, a value opening with '{' or '[' runs
 * to the matching close so it may hold '&'.  Strict: every pair has a
 * name and '=', no pair is empty, no name repeats, brackets close.
 */
static int
up_parse_reply(const unsigned char *body, size_t len, struct ph_kvlist *kv,
    struct ph_diag *diag)
{
	const char *s = (const char *)body, *key = NULL, *val = NULL;
	size_t i, start = 0;
	char close = 0;
	int rc;

	ph_kvlist_init(kv, up_form_limits.max_fields);
	if (len > up_form_limits.max_bytes)
		return ph_fail(diag, PH_E_TOOBIG, "reply larger than %zu bytes",
		    up_form_limits.max_bytes);
	if (len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "empty reply");
	for (i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '&';

		if (key == NULL || val == NULL) {
			if (c == '=' && i > start) {
				key = s + start;
				val = s + i + 1;
			} else if (c == '&' || c == '=') {
				rc = ph_fail(diag, PH_E_MALFORMED, "reply: a "
				    "field without a name or '='");
				goto fail;
			}
			continue;
		}
		if (close != 0) {
			if (c == close)
				close = 0;
			if (i < len)
				continue;
			rc = ph_fail(diag, PH_E_MALFORMED,
			    "reply: unclosed bracket");
			goto fail;
		}
		if (c == '{' || c == '[') {
			close = c == '{' ? '}' : ']';
			continue;
		}
		if (c != '&')
			continue;
		if ((size_t)(s + i - val) > up_form_limits.max_value) {
			rc = ph_fail(diag, PH_E_TOOBIG, "reply: a value "
			    "longer than %zu bytes", up_form_limits.max_value);
			goto fail;
		}
		if ((rc = ph_kvlist_add(kv, key, (size_t)(val - 1 - key), val,
		    (size_t)(s + i - val), diag)) != PH_OK)
			goto fail;
		key = val = NULL;
		start = i + 1;
	}
	return PH_OK;
fail:
	ph_kvlist_free(kv);
	return rc;
}

static const char *
up_header(const struct ph_http_response *in, const char *name)
{
	size_t i;

	for (i = 0; in->headers != NULL && i < in->nheaders; i++)
		if (in->headers[i].name != NULL &&
		    strcasecmp(in->headers[i].name, name) == 0)
			return in->headers[i].value;
	return NULL;
}

/*
 * The decision table of the official demo for a verified answer:
 * respCode 00 with origRespCode 00 (or A6) paid; 03/04/05 still
 * processing; anything else failed.  respCode 34: no such order;
 * 03/04/05: busy, ask later; anything else: the query was refused.
 */
static int
up_query_event(const struct up_msg *m, const struct ph_order_ref *order,
    struct ph_event *ev, struct ph_diag *diag)
{
	char resp[3], orig[3], qid[PH_ID_MAX + 1], oid[PH_ID_MAX + 1];
	char type[3], msg[96];
	int rc;

	if ((rc = up_token(m, "respCode", resp, sizeof(resp), 2, diag)) !=
	    PH_OK)
		return rc;
	if (strcmp(resp, "34") == 0) {
		ev->kind = PH_EV_NOT_FOUND;
		if ((rc = ph_event_from_order(ev, order, NULL, diag)) != PH_OK)
			return rc;
		return ph_dedup_key(ev, diag, "up", "query", ev->order_id,
		    "34", (char *)NULL);
	}
	if (strcmp(resp, "00") != 0)
		return ph_fail(diag, PH_E_PROVIDER, "UnionPay %s the query: "
		    "respCode %s (%s)", ph_in(resp, up_busy_codes) ?
		    "is busy; ask again later for" : "refused", resp,
		    up_diag_text(m, "respMsg", msg, sizeof(msg)));

	if ((rc = up_token(m, "orderId", oid, sizeof(oid), UP_ORDER_MAX,
	    diag)) != PH_OK)
		return rc;
	if (strcmp(oid, order->order_id) != 0)
		return ph_fail(diag, PH_E_FIELD, "the answer is about another "
		    "order");
	if (up_get(m, "txnType") != NULL) {
		if ((rc = up_token(m, "txnType", type, sizeof(type), 2,
		    diag)) != PH_OK)
			return rc;
		if (strcmp(type, "00") != 0 && strcmp(type, "01") != 0)
			return ph_fail(diag, PH_E_FIELD, "the answer is about "
			    "a txnType %s transaction, not a payment", type);
	}
	if ((rc = up_token(m, "origRespCode", orig, sizeof(orig), 2,
	    diag)) != PH_OK)
		return rc;
	if (ph_in(orig, up_busy_codes)) {
		ev->kind = PH_EV_PAYMENT_PENDING;
		if ((rc = ph_event_from_order(ev, order, NULL, diag)) != PH_OK)
			return rc;
		return ph_dedup_key(ev, diag, "up", "query", ev->order_id,
		    "pending", orig, (char *)NULL);
	}
	memcpy(ev->order_id, oid, strlen(oid) + 1);
	if (ph_in(orig, up_success_codes)) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		if ((rc = up_token(m, "queryId", qid, sizeof(qid), PH_ID_MAX,
		    diag)) != PH_OK ||
		    (rc = up_amount(m, ev, diag)) != PH_OK ||
		    (rc = up_txn_time(m, ev, diag)) != PH_OK)
			return rc;
	} else {
		ev->kind = PH_EV_PAYMENT_FAILED;
		qid[0] = '\0';
		if (up_get(m, "queryId") != NULL && (rc = up_token(m,
		    "queryId", qid, sizeof(qid), PH_ID_MAX, diag)) != PH_OK)
			return rc;
		if (up_get(m, "txnAmt") != NULL) {
			if ((rc = up_amount(m, ev, diag)) != PH_OK)
				return rc;
		} else if ((rc = ph_event_from_order(ev, order, NULL, diag)) != PH_OK)
			return rc;
		if (up_get(m, "txnTime") != NULL &&
		    (rc = up_txn_time(m, ev, diag)) != PH_OK)
			return rc;
	}
	memcpy(ev->txn_id, qid, strlen(qid) + 1);
	/* The key the notification of this payment carries. */
	if (qid[0] != '\0')
		return ph_dedup_key(ev, diag, "up", qid, "01", orig,
		    (char *)NULL);
	return ph_dedup_key(ev, diag, "up", "query", ev->order_id, "01", orig,
	    (char *)NULL);
}

PH_CALL_RESPONSE(up_query_response)
{
	struct up_ctx *ctx = p;
	struct up_msg m;
	int rc;

	if (ctx == NULL || order == NULL || in == NULL || ev == NULL ||
	    order->order_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "unionpay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	memset(&m, 0, sizeof(m));
	if (in->status != 200)
		return ph_fail(diag, PH_E_PROVIDER, "UnionPay answered the "
		    "query with HTTP %d", in->status);
	/* UnionPay's SDKs read replies without percent-decoding; a reply
	 * that says it is a form is decoded as one. */
	if (ph_is_form(up_header(in, "Content-Type")))
		rc = ph_form_parse(in->body, in->body_len, &up_form_limits,
		    &m.kv, diag);
	else
		rc = up_parse_reply(in->body, in->body_len, &m.kv, diag);
	if (rc != PH_OK)
		return rc;
	if ((rc = up_open(ctx, &m, UP_ANSWER, in->now, diag)) == PH_OK)
		rc = up_query_event(&m, order, ev, diag);
	ph_kvlist_free(&m.kv);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/*
 * The order a notification names, read without verifying it: the core
 * only asks UnionPay about that order, it never applies anything from it.
 */
PH_NOTIFY_HINT(up_notify_hint)
{
	if (p == NULL)
		return PH_E_INTERNAL;
	return ph_form_hint(req, &up_form_limits, "orderId", NULL, order_id);
}
