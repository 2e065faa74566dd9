/*
 * Alipay trade calls: alipay.trade.query, alipay.trade.close,
 * alipay.trade.refund and alipay.trade.fastpay.refund.query, signed and
 * verified by gateway.c: what each asks and what its answer means.
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

PH_CALL_REQUEST(ali_query_request)
{
	return ali_trade_request(p, &ali_query, order, cc, out, diag);
}

PH_CALL_REQUEST(ali_close_request)
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

/*
 * alipay.trade.fastpay.refund.query of a refund Alipay answered without
 * moving money (a repeated out_request_no): out_trade_no, trade_no (when
 * known), out_request_no, and query_options asking for gmt_refund_pay.
 */
static int
ali_refund_query_request(const struct ali_ctx *ctx,
    const struct ph_refund_ref *ref, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag)
{
	json_t *biz, *opts;
	int rc;

	opts = json_pack("[s]", "gmt_refund_pay");
	if ((biz = json_object()) == NULL || opts == NULL ||
	    ali_set_str(biz, "out_trade_no", ref->order_id) != 0 ||
	    (ref->txn_id != NULL && ref->txn_id[0] != '\0' &&
	    ali_set_str(biz, "trade_no", ref->txn_id) != 0) ||
	    ali_set_str(biz, "out_request_no", ref->refund_id) != 0 ||
	    json_object_set(biz, "query_options", opts) != 0) {
		json_decref(opts);
		json_decref(biz);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
	json_decref(opts);
	rc = ali_build(ctx, ali_refund_query.method, biz, cc->now, out, diag);
	json_decref(biz);
	return rc;
}

/* alipay.trade.refund with out_request_no = payhook's refund id, so a
 * retry can never refund twice. */
PH_REFUND_REQUEST(ali_refund_request)
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
	if (ref->query)
		return ali_refund_query_request(ctx, ref, cc, out, diag);
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

/* Fields of an event that is not a payment: from the order. */
static int
ali_from_order(const struct ph_order_ref *order, struct ph_event *ev,
    const char *tag, const char *state, struct ph_diag *diag)
{
	if (ph_event_from_order(ev, order, ALI_ORDER_EXTRA, diag) != PH_OK)
		return PH_E_FIELD;
	return ph_dedup_key(ev, diag, "ali", tag, ev->order_id, state,
	    (char *)NULL);
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


/*
 * TRADE_CLOSED is also a trade paid and then refunded in full: its
 * send_pay_date (when the money reached the seller) says it was paid.
 * The money did move, so it is a payment, as WeChat Pay's REFUND state;
 * the refund is a fact of its own.  Only an unpaid trade is closed.
 */
static int
ali_closed_paid(const json_t *r, const char *status)
{
	const char *v = json_string_value(json_object_get(r,
	    "send_pay_date"));

	return strcmp(status, "TRADE_CLOSED") == 0 && v != NULL && *v != '\0';
}

/*
 * alipay.trade.query, verified: 10000 with trade_status; 40004 with
 * ACQ.TRADE_NOT_EXIST is an order Alipay never saw; any other code
 * (20000 busy, 40004 others, 4000x) is an error to retry.
 */
static int
ali_query_event(const json_t *r, const void *call, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ph_order_ref *order = call;
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
	if (ph_in(status, ali_paid_states) || ali_closed_paid(r, status)) {
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
		return ph_dedup_key(ev, diag, "pay", ev->txn_id, (char *)NULL);
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

/*
 * The verified answer of method m about call (an order or a refund),
 * read into ev by read; ev is emptied first, and again on failure.
 */
typedef int ali_answer_fn(const json_t *r, const void *call,
    struct ph_event *ev, struct ph_diag *diag);

static int
ali_answer_event(const struct ali_ctx *ctx, const struct ali_method *m,
    const struct ph_http_response *in, ali_answer_fn *read, const void *call,
    struct ph_event *ev, struct ph_diag *diag)
{
	const json_t *r;
	json_t *root;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if ((rc = ali_open_answer(ctx, m, in, &root, &r, diag)) != PH_OK)
		return rc;
	rc = read(r, call, ev, diag);
	json_decref(root);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/* An answer about one order (query, close), its arguments checked. */
static int
ali_order_answer(void *p, const struct ali_method *m, ali_answer_fn *read,
    const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	if (p == NULL || order == NULL || in == NULL || ev == NULL ||
	    order->order_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	return ali_answer_event(p, m, in, read, order, ev, diag);
}

PH_CALL_RESPONSE(ali_query_response)
{
	return ali_order_answer(p, &ali_query, ali_query_event, order, in, ev,
	    diag);
}

/*
 * alipay.trade.close, verified: 10000 closed; ACQ.TRADE_NOT_EXIST not
 * found; ACQ.TRADE_STATUS_ERROR (paid, or closed already: the answer
 * does not say which) is IGNORED, so the core queries before deciding.
 */
static int
ali_close_event(const json_t *r, const void *call, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ph_order_ref *order = call;
	const char *code, *sub;
	int rc;

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
	return rc;
}

PH_CALL_RESPONSE(ali_close_response)
{
	return ali_order_answer(p, &ali_close, ali_close_event, order, in, ev,
	    diag);
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
static int ali_refund_ids(const struct ph_refund_ref *, int64_t,
    struct ph_event *, struct ph_diag *);

static int
ali_refund_event(const json_t *r, const void *call, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct ph_refund_ref *ref = call;
	const char *code, *sub, *fc;
	int64_t refunded;
	int rc;

	code = ali_code(r, &sub);
	if (strcmp(code, "40004") == 0 && ph_in(sub, ali_refund_final)) {
		/* Why, for the refund's last_error. */
		(void)ali_provider_error(r, "refund", 1, diag);
		ev->kind = PH_EV_REFUND_FAILED;
	}
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
	/* refund_fee is the trade's whole: this refund's amount is not
	 * told, only that it is not more than that. */
	return ali_refund_ids(ref, ref->amount, ev, diag);
}

/*
 * alipay.trade.fastpay.refund.query, verified: the refund asked about
 * (out_request_no, the trade; refund_amount the event's) with refund_status
 * REFUND_SUCCESS is done; without refund_status Alipay has not made it
 * (not received, or not carried out): NOT_FOUND, and the core sends it
 * again under the same out_request_no, as Alipay asks (a request number
 * is refunded once).  Every error code is retried: a query's refusal says
 * nothing of the refund.
 */
static int
ali_refund_query_event(const json_t *r, const void *call,
    struct ph_event *ev, struct ph_diag *diag)
{
	const struct ph_refund_ref *ref = call;
	const char *code, *sub, *v, *st;
	int64_t amount = ref->amount;
	int rc;

	code = ali_code(r, &sub);
	if (strcmp(code, "10000") != 0)
		return ali_provider_error(r, "refund query", 1, diag);
	if ((rc = ali_same_order(r, ref->order_id, 0, diag)) != PH_OK ||
	    (rc = ph_json_get_string(r, "out_request_no", 64, &v, NULL,
	    diag)) != PH_OK)
		return rc;
	if (strcmp(v, ref->refund_id) != 0)
		return ph_fail(diag, PH_E_FIELD, "the answer is about another "
		    "refund");
	if ((rc = ph_json_opt_string(r, "trade_no", PH_ID_MAX, &v, NULL,
	    diag)) != PH_OK)
		return rc;
	if (v != NULL && ref->txn_id != NULL && ref->txn_id[0] != '\0' &&
	    strcmp(v, ref->txn_id) != 0)
		return ph_fail(diag, PH_E_FIELD, "the answer is about another "
		    "trade");
	if (v != NULL && ph_copy_token(ev->txn_id, sizeof(ev->txn_id), v,
	    NULL, "trade_no", diag) != PH_OK)
		return PH_E_FIELD;
	if ((rc = ph_json_opt_string(r, "refund_status", 32, &st, NULL,
	    diag)) != PH_OK)
		return rc;
	if (st == NULL || *st == '\0')
		ev->kind = PH_EV_NOT_FOUND;
	else if (strcmp(st, "REFUND_SUCCESS") == 0) {
		ev->kind = PH_EV_REFUND_SUCCEEDED;
		/* refund_amount is this refund's, not the trade's total. */
		if ((rc = ali_json_yuan(r, "refund_amount", &amount,
		    diag)) != PH_OK)
			return rc;
		if ((rc = ali_json_opt_time(r, "gmt_refund_pay",
		    &ev->occurred_at, diag)) != PH_OK)
			return rc;
	} else
		return ph_fail(diag, PH_E_FIELD, "refund_status: unknown");
	return ali_refund_ids(ref, amount, ev, diag);
}

/* What a refund's event carries of the refund asked about, the amount
 * the answer reports (the core matches it with the refund's), and its
 * dedup key: the same whichever answer (the refund's, its query's) made
 * it. */
static int
ali_refund_ids(const struct ph_refund_ref *ref, int64_t amount,
    struct ph_event *ev, struct ph_diag *diag)
{
	/* An answer naming no trade (a refusal): the one asked about. */
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
	ev->amount = amount;
	memcpy(ev->currency, "CNY", 4);
	return ph_dedup_key(ev, diag, "refund", ev->txn_id,
	    ev->merchant_refund_id, (char *)NULL);
}

PH_REFUND_RESPONSE(ali_refund_response)
{
	if (p == NULL || ref == NULL || in == NULL || ev == NULL ||
	    ref->order_id == NULL || ref->refund_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	return ref->query ? ali_answer_event(p, &ali_refund_query, in,
	    ali_refund_query_event, ref, ev, diag) : ali_answer_event(p,
	    &ali_refund, in, ali_refund_event, ref, ev, diag);
}
