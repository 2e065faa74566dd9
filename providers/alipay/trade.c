/*
 * Alipay trade calls: alipay.trade.query, alipay.trade.close and
 * alipay.trade.refund.  Requests are signed with the app's private key
 * (sign_type included, empty values left out), the common parameters in
 * the URL and biz_content in the form body; answers are JSON whose
 * response object is signed over its text exactly as it appears in the
 * body.
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

/* ---- Requests ------------------------------------------------------------ */

static int
ali_set_str(json_t *o, const char *k, const char *v)
{
	json_t *s = json_string(v);

	return s != NULL && json_object_set_new(o, k, s) == 0 ? 0 : -1;
}

/*
 * A signed request, sent as Alipay's SDKs send it: the common parameters
 * (app_id, charset, format, method, sign_type, timestamp, version, then
 * sign) in the query string of /gateway.do, and biz_content (JSON text of
 * biz, compact, members in order) alone in the form body.  The sign
 * covers every non-empty parameter of both but sign, sorted, k=v&k=v.
 * alipay-sdk-python-all DefaultAlipayClient.py lines 88-91, 122, 133;
 * alipay-sdk-java-all AbstractAlipayClient.getRequestUrl; public threads
 * quote the gateway refusing requests without charset in the URL
 * (tests/vectors/FINDINGS.md section 5).
 */
static int
ali_build(const struct ali_ctx *ctx, const char *method, const json_t *biz,
    int64_t now, struct ph_http_request *out, struct ph_diag *diag)
{
	static const char *const skip[] = { "sign", NULL };
	struct ph_kvlist common, all, form;
	struct ph_buf s, sig, path, body;
	char ts[20], *biz_text = NULL;
	size_t i;
	int rc;
	const char *fields[][2] = {
		{ "app_id", ctx->app_id },
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

	ph_kvlist_init(&common, 16);
	ph_kvlist_init(&all, 16);
	ph_kvlist_init(&form, 1);
	ph_buf_init(&s, PH_HTTP_BODY_MAX);
	ph_buf_init(&sig, 2 * PH_RSA_SIG_MAX);
	ph_buf_init(&path, sizeof(out->path) - 1);
	ph_buf_init(&body, sizeof(out->body));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((rc = ph_kvlist_add(&common, fields[i][0],
		    strlen(fields[i][0]), fields[i][1], strlen(fields[i][1]),
		    diag)) != PH_OK ||
		    (rc = ph_kvlist_add(&all, fields[i][0],
		    strlen(fields[i][0]), fields[i][1], strlen(fields[i][1]),
		    diag)) != PH_OK)
			goto out;
	if ((rc = ph_kvlist_add(&all, "biz_content", 11, biz_text,
	    strlen(biz_text), diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&form, "biz_content", 11, biz_text,
	    strlen(biz_text), diag)) != PH_OK)
		goto out;
	if ((rc = ph_canonical_join(&all, skip, 1, &s)) != PH_OK) {
		ph_fail(diag, rc, "cannot build the sign string");
		goto out;
	}
	if ((rc = ali_sign(ctx, s.data, s.len, &sig, diag)) != PH_OK ||
	    (rc = ph_kvlist_add(&common, "sign", 4, sig.data, sig.len,
	    diag)) != PH_OK)
		goto out;
	ph_buf_puts(&path, ALI_PATH "?");
	if ((rc = ph_form_write(&common, &path)) != PH_OK) {
		ph_fail(diag, rc, "request URL longer than %zu bytes",
		    sizeof(out->path) - 1);
		goto out;
	}
	if ((rc = ph_form_write(&form, &body)) != PH_OK) {
		ph_fail(diag, rc, "request larger than %zu bytes",
		    sizeof(out->body));
		goto out;
	}
	if ((rc = ph_request_set(out, "POST", path.data, ALI_FORM_CT,
	    &body)) != PH_OK)
		ph_fail(diag, rc, "cannot write the request");
out:
	free(biz_text);
	ph_kvlist_free(&common);
	ph_kvlist_free(&all);
	ph_kvlist_free(&form);
	ph_buf_free(&s);
	ph_buf_free(&sig);
	ph_buf_free(&path);
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

int
ali_query_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	return ali_trade_request(p, &ali_query, order, cc, out, diag);
}

int
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
int
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
	if (ph_in(status, ali_paid_states)) {
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

int
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
int
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
	if (strcmp(code, "40004") == 0 && ph_in(sub, ali_refund_final))
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

int
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
