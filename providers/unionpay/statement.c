/*
 * Statements (payhook reconcile).
 *
 * UnionPay hands its reconciliation files (对账文件) out zipped, in a
 * fixed-width layout known only from a third party, separators
 * unconfirmed (doc/design/protocols.md §3.6 and §8.2).  Rather than guess at widths,
 * this plugin reads a CSV of ACP field names: the operator converts the
 * file into it (README.md), the simulator writes it.  UTF-8, an optional
 * BOM, LF or CRLF:
 *
 *   merId,txnType,orderId,queryId,origQryId,txnTime,txnAmt,currencyCode
 *   777290058110048,01,A1,782611301530001234567,,20261130153000,1000,156
 *   777290058110048,04,phr0000000000007,782611301530001234599,
 *       782611301530001234567,20261130180000,400,156   (one line)
 *   total,2,1400
 *
 * Columns by name (others ignored; merId, txnType, orderId, queryId,
 * txnTime, txnAmt, currencyCode required, origQryId for refunds); no
 * quoting (every value is an identifier or digits); the last line
 * "total,<rows>,<sum of txnAmt>" is required, so a truncated file is
 * refused.  The rows are settled transactions: txnType 01 a payment
 * (keyed as its notification with respCode 00), 04 and 31 a refund whose
 * orderId is the refund's own (payhook's refund id when payhook made it).
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

enum up_st_col {
	UP_ST_MERID, UP_ST_TXNTYPE, UP_ST_ORDERID, UP_ST_QUERYID,
	UP_ST_ORIGQRYID, UP_ST_TXNTIME, UP_ST_TXNAMT, UP_ST_CURRENCY,
	UP_ST__MAX
};

static const char *const up_st_names[UP_ST__MAX] = {
	"merId", "txnType", "orderId", "queryId", "origQryId", "txnTime",
	"txnAmt", "currencyCode",
};

/* A field as a NUL-terminated token of [A-Za-z0-9], at most max. */
static int
up_st_token(const char *f, size_t n, size_t max, char *dst, size_t cap)
{
	return ph_csv_token(f, n, max, NULL, dst, cap);
}

/* One settled payment or refund of the statement. */
static int
up_st_row(const void *p, const struct ph_csv_row *r, uint64_t no,
    struct ph_event *ev, struct ph_diag *diag)
{
	static const char *const refunds[] = { "04", "31", NULL };
	const struct up_ctx *ctx = p;
	const char *const *f = r->f;
	const size_t *n = r->n;
	char buf[PH_ID_MAX + 1], type[3], qid[PH_ID_MAX + 1];
	size_t i;
	int c, rc;

	c = r->col[UP_ST_MERID];
	if (up_st_token(f[c], n[c], UP_MERID_MAX, buf, sizeof(buf)) != 0 ||
	    strcmp(buf, ctx->mer_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "line %llu: merId is not "
		    "this profile's mer_id %s", (unsigned long long)no,
		    ctx->mer_id);
	if ((rc = ph_csv_row_token(r, UP_ST_TXNTYPE, "txnType", no, 2, NULL,
	    type, sizeof(type), diag)) != PH_OK)
		return rc;
	if (strcmp(type, "01") != 0 && !ph_in(type, refunds))
		return ph_fail(diag, PH_E_UNSUPPORTED, "line %llu: txnType %s "
		    "is not a payment (01), refund (04) or undo (31)",
		    (unsigned long long)no, type);
	c = r->col[UP_ST_TXNAMT];
	if (ph_money_parse_minor(f[c], n[c], &ev->amount) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: txnAmt is not "
		    "an amount in fen", (unsigned long long)no);
	c = r->col[UP_ST_CURRENCY];
	for (i = 0; up_currencies[i].num != NULL; i++)
		if (n[c] == 3 && memcmp(f[c], up_currencies[i].num, 3) == 0)
			break;
	if (up_currencies[i].num == NULL)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: currencyCode "
		    "is not one this plugin knows", (unsigned long long)no);
	memcpy(ev->currency, up_currencies[i].alpha, 4);
	c = r->col[UP_ST_TXNTIME];
	if (n[c] != 14 || up_st_token(f[c], n[c], 14, buf, sizeof(buf)) != 0 ||
	    ph_time_parse_compact(buf, UP_BEIJING, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: txnTime is not "
		    "yyyyMMddHHmmss", (unsigned long long)no);
	if ((rc = ph_csv_row_token(r, UP_ST_ORDERID, "orderId", no,
	    UP_ORDER_MAX, NULL, ev->order_id, sizeof(ev->order_id),
	    diag)) != PH_OK ||
	    (rc = ph_csv_row_token(r, UP_ST_QUERYID, "queryId", no, PH_ID_MAX,
	    NULL, qid, sizeof(qid), diag)) != PH_OK)
		return rc;
	if (strcmp(type, "01") == 0) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		memcpy(ev->txn_id, qid, strlen(qid) + 1);
	} else {
		ev->kind = PH_EV_REFUND_SUCCEEDED;
		memcpy(ev->refund_id, qid, strlen(qid) + 1);
		memcpy(ev->merchant_refund_id, ev->order_id,
		    strlen(ev->order_id) + 1);
		ev->order_id[0] = '\0';
		c = r->col[UP_ST_ORIGQRYID];
		if (c < 0 || up_st_token(f[c], n[c], PH_ID_MAX, ev->txn_id,
		    sizeof(ev->txn_id)) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: a "
			    "refund without a valid origQryId",
			    (unsigned long long)no);
	}
	/* The key of this transaction's successful notification. */
	return ph_dedup_key(ev, diag, "up", qid, type, "00", (char *)NULL);
}

static const struct ph_csv_layout up_st_layout = {
	up_st_names, UP_ST__MAX, 1u << UP_ST_ORIGQRYID, "txnAmt", up_st_row,
};

PH_STATEMENT_LINE(up_statement_line)
{
	return ph_csv_statement_line(&up_st_layout, p, st, line, len, ev,
	    diag);
}
