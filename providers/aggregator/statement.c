/*
 * Statements (payhook reconcile).
 *
 * Ping++ documents no statement file for merchants (doc/design/protocols.md §5.4),
 * so this plugin reads a CSV of its own, in the words of the API's charge
 * and refund objects: the operator exports the day's charges and refunds
 * into it, the simulator writes it.  UTF-8, an optional BOM, LF or CRLF:
 *
 *   type,id,app,order_no,charge,amount,currency,channel,time,refund_no
 *   charge,ch_L8qn10mLmr1GS8e5OODmHaL4,app_1Gqj58ynP0mHeX1q,A1,,1000,cny,
 *       wx_pub,1764487800,                                    (one line)
 *   refund,re_y1u944PmfnrTHyvnL0nD0iD1,app_1Gqj58ynP0mHeX1q,A1,
 *       ch_L8qn10mLmr1GS8e5OODmHaL4,400,cny,,1764498600,phr0000000000007
 *   total,2,1400
 *
 * Columns by name (type, id, app, order_no, amount, currency and time
 * required; charge for refunds; channel and refund_no optional; others
 * ignored), no quoting, amounts in fen, times in unix seconds, the last
 * line "total,<rows>,<sum of amount>" required.  Rows are charges paid
 * and refunds succeeded: a charge is keyed as its charge.succeeded event
 * ("pay:<charge id>"), a refund carries the refund number payhook gave it
 * (refund_no), when there is one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "aggregator_int.h"

enum agg_st_col {
	AGG_ST_TYPE, AGG_ST_ID, AGG_ST_APP, AGG_ST_ORDER, AGG_ST_CHARGE,
	AGG_ST_AMOUNT, AGG_ST_CURRENCY, AGG_ST_CHANNEL, AGG_ST_TIME,
	AGG_ST_REFUND_NO, AGG_ST__MAX
};

static const char *const agg_st_names[AGG_ST__MAX] = {
	"type", "id", "app", "order_no", "charge", "amount", "currency",
	"channel", "time", "refund_no",
};

/* A field as a token of ph_token_valid(extra) filling at most dst. */
static int
agg_st_token(const char *f, size_t n, const char *extra, char *dst,
    size_t cap)
{
	return ph_csv_token(f, n, cap - 1, extra, dst, cap);
}

/* One charge or refund of the statement. */
static int
agg_st_row(const void *p, const struct ph_csv_row *r, uint64_t no,
    struct ph_event *ev, struct ph_diag *diag)
{
	const struct agg_ctx *ctx = p;
	const char *const *f = r->f;
	const size_t *n = r->n;
	char buf[PH_ID_MAX + 1], id[PH_ID_MAX + 1];
	size_t i;
	int c, rc, refund;

	c = r->col[AGG_ST_TYPE];
	if (n[c] == 6 && memcmp(f[c], "charge", 6) == 0)
		refund = 0;
	else if (n[c] == 6 && memcmp(f[c], "refund", 6) == 0)
		refund = 1;
	else
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: type is not "
		    "charge or refund", (unsigned long long)no);
	c = r->col[AGG_ST_AMOUNT];
	if (ph_money_parse_minor(f[c], n[c], &ev->amount) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: amount is not "
		    "an amount in fen", (unsigned long long)no);
	c = r->col[AGG_ST_APP];
	if (agg_st_token(f[c], n[c], AGG_ID_EXTRA, buf,
	    sizeof(buf)) != 0 ||
	    strcmp(buf, ctx->app_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "line %llu: app is not this "
		    "profile's app_id", (unsigned long long)no);
	if ((rc = ph_csv_row_token(r, AGG_ST_ID, "id", no, PH_ID_MAX,
	    AGG_ID_EXTRA, id, sizeof(id), diag)) != PH_OK ||
	    (rc = ph_csv_row_token(r, AGG_ST_ORDER, "order_no", no, PH_ID_MAX,
	    AGG_ORDER_EXTRA, ev->order_id, sizeof(ev->order_id),
	    diag)) != PH_OK)
		return rc;
	c = r->col[AGG_ST_CURRENCY];
	if (n[c] != 3)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: currency is "
		    "not three letters", (unsigned long long)no);
	for (i = 0; i < 3; i++)
		ev->currency[i] = f[c][i] >= 'a' && f[c][i] <= 'z' ?
		    (char)(f[c][i] - 'a' + 'A') : f[c][i];
	ev->currency[3] = '\0';
	if (!ph_currency_valid(ev->currency))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: currency is "
		    "not three letters", (unsigned long long)no);
	c = r->col[AGG_ST_TIME];
	if (ph_time_parse_unix(f[c], n[c], &ev->occurred_at) != PH_OK ||
	    ev->occurred_at > AGG_TIME_MAX)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: time is not "
		    "unix seconds", (unsigned long long)no);
	if ((c = r->col[AGG_ST_CHANNEL]) >= 0 && n[c] > 0 &&
	    agg_st_token(f[c], n[c], "_", ev->channel,
	    sizeof(ev->channel)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: channel is "
		    "invalid", (unsigned long long)no);
	if (!refund) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		memcpy(ev->txn_id, id, strlen(id) + 1);
		/* The key of the charge's charge.succeeded and query. */
		return ph_dedup_key(ev, diag, "pay", id, (char *)NULL);
	}
	ev->kind = PH_EV_REFUND_SUCCEEDED;
	memcpy(ev->refund_id, id, strlen(id) + 1);
	c = r->col[AGG_ST_CHARGE];
	if (c < 0 || agg_st_token(f[c], n[c], AGG_ID_EXTRA, ev->txn_id,
	    sizeof(ev->txn_id)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: a refund "
		    "without a valid charge", (unsigned long long)no);
	if ((c = r->col[AGG_ST_REFUND_NO]) >= 0 && n[c] > 0 &&
	    agg_st_token(f[c], n[c], AGG_ID_EXTRA, ev->merchant_refund_id,
	    sizeof(ev->merchant_refund_id)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: refund_no is "
		    "invalid", (unsigned long long)no);
	return ph_dedup_key(ev, diag, "refund", id, (char *)NULL);
}

static const struct ph_csv_layout agg_st_layout = {
	agg_st_names, AGG_ST__MAX,
	(1u << AGG_ST_CHARGE) | (1u << AGG_ST_CHANNEL) |
	    (1u << AGG_ST_REFUND_NO),
	"amount", agg_st_row,
};

PH_STATEMENT_LINE(agg_statement_line)
{
	return ph_csv_statement_line(&agg_st_layout, p, st, line, len, ev,
	    diag);
}
