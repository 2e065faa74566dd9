/*
 * Bills (对账单): the trade bill of v2 downloadbill and v3 tradebill.
 *
 * doc/design/protocols.md §1.9 and §2.8: a header line of Chinese column names (a
 * UTF-8 BOM may precede it), data lines whose every field starts with a
 * back-tick, a summary header and one summary line.  Columns are found
 * by name, not position, so the classic layout, the 2018 settlement
 * layout and the SUCCESS/REFUND bill types all read.  Data fields are
 * split on ",`" (a field is a back-tick and its text, so a comma inside
 * a product name does not split it).  Amounts are yuan, read into fen
 * with ph_money_parse_decimal; times are Beijing time.  The summary's
 * count and totals are checked at the end; a statement that stops
 * before its summary is refused as truncated.
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

#define WXB_COLS_MAX	64
#define WXB_MAGIC	0x77786231u	/* "wxb1": the state was started */

enum wxb_col {
	WXB_TIME,		/* 交易时间 */
	WXB_APPID,		/* 公众账号ID */
	WXB_MCH,		/* 商户号 */
	WXB_SUB_MCH,		/* 子商户号 / 特约商户号 */
	WXB_TXN,		/* 微信订单号 */
	WXB_ORDER,		/* 商户订单号 */
	WXB_STATE,		/* 交易状态 */
	WXB_CURRENCY,		/* 货币种类 */
	WXB_REFUND_ID,		/* 微信退款单号 */
	WXB_OUT_REFUND,		/* 商户退款单号 */
	WXB_REFUND_STATUS,	/* 退款状态 */
	/* Money columns, summed for the summary check. */
	WXB_TOTAL,		/* 总金额 (classic) */
	WXB_ORDER_AMOUNT,	/* 订单金额 (settlement layout) */
	WXB_SETTLE,		/* 应结订单金额 */
	WXB_REFUND_FEE,		/* 退款金额 */
	WXB_REFUND_ASKED,	/* 申请退款金额 */
	WXB_COUPON_REFUND,	/* 代金券或立减优惠退款金额, 充值券退款金额 */
	WXB_FEE,		/* 手续费: signed (refunds give it back), in
				 * hundred-thousandths of a yuan */
	WXB__MAX
};
#define WXB_MONEY_FIRST	WXB_TOTAL

/* A column's name in a header and the column it is. */
struct wxb_name {
	const char *name;
	int col;			/* enum wxb_col, or WXB_COUNT */
};

static const struct wxb_name wxb_cols[] = {
	{ "交易时间", WXB_TIME },
	{ "公众账号ID", WXB_APPID },
	{ "商户号", WXB_MCH },
	{ "子商户号", WXB_SUB_MCH },
	{ "特约商户号", WXB_SUB_MCH },
	{ "微信订单号", WXB_TXN },
	{ "商户订单号", WXB_ORDER },
	{ "交易状态", WXB_STATE },
	{ "货币种类", WXB_CURRENCY },
	{ "微信退款单号", WXB_REFUND_ID },
	{ "商户退款单号", WXB_OUT_REFUND },
	{ "退款状态", WXB_REFUND_STATUS },
	{ "总金额", WXB_TOTAL },
	{ "订单金额", WXB_ORDER_AMOUNT },
	{ "应结订单金额", WXB_SETTLE },
	{ "退款金额", WXB_REFUND_FEE },
	{ "申请退款金额", WXB_REFUND_ASKED },
	{ "代金券或立减优惠退款金额", WXB_COUPON_REFUND },
	{ "充值券退款金额", WXB_COUPON_REFUND },
	{ "手续费", WXB_FEE },
	{ NULL, WXB__MAX },
};

/* Summary columns: the count, and the total of which money column. */
#define WXB_COUNT	WXB__MAX
static const struct wxb_name wxb_sums[] = {
	{ "总交易单数", WXB_COUNT },
	{ "总交易额", WXB_TOTAL },
	{ "订单总金额", WXB_ORDER_AMOUNT },
	{ "应结订单总金额", WXB_SETTLE },
	{ "总退款金额", WXB_REFUND_FEE },
	{ "退款总金额", WXB_REFUND_FEE },
	{ "申请退款总金额", WXB_REFUND_ASKED },
	{ "总代金券或立减优惠退款金额", WXB_COUPON_REFUND },
	{ "充值券退款总金额", WXB_COUPON_REFUND },
	{ "手续费总金额", WXB_FEE },
	{ NULL, WXB__MAX },
};

/*
 * A money field of column c: yuan with at most two decimals, the fee
 * with at most five (the bill gives it to a thousandth of a fen) and a
 * sign; PH_OK or PH_E_FIELD.
 */
static int
wxb_money(int c, const char *p, size_t n, int64_t *v)
{
	int neg = c == WXB_FEE && n > 1 && p[0] == '-';
	int rc;

	rc = ph_money_parse_decimal(p + neg, n - neg, c == WXB_FEE ? 5 : 2,
	    v);
	if (rc == PH_OK && neg)
		*v = -*v;
	return rc;
}

enum wxb_phase {
	WXB_HEADER,		/* nothing read yet */
	WXB_ROWS,		/* data lines, until the summary header */
	WXB_SUMMARY,		/* the summary line is next */
	WXB_DONE,		/* only empty lines may follow */
	WXB__PHASES
};

/* Kept in ph_statement.state between lines. */
struct wxb_state {
	uint32_t magic;
	int phase;
	int ncols;			/* columns of the header */
	int nsum;			/* columns of the summary header */
	int col[WXB__MAX];		/* index of each column, or -1 */
	int sum[WXB__MAX + 1];		/* summary index of each total, -1 */
	uint64_t rows;			/* data lines */
	int64_t money[WXB__MAX];	/* sums of the money columns */
	int64_t count;			/* the summary's 总交易单数 */
	int64_t want[WXB__MAX];		/* the summary's totals */
};

_Static_assert(sizeof(struct wxb_state) <= PH_STATEMENT_STATE_MAX,
    "the bill parser's state must fit in struct ph_statement");
#ifdef PH_UNITTEST
const size_t wxb_state_size = sizeof(struct wxb_state);
#endif

/* A field of a line: points into the line. */
struct wxb_field {
	const char *p;
	size_t n;
};

/* A line in its fields: n of them, or -1 (too many, or not back-ticked). */
struct wxb_line {
	struct wxb_field f[WXB_COLS_MAX];
	int n;
};

/*
 * Splits a header (sep ",") or a back-ticked line (sep ",`", the line
 * starting with "`") into at most max fields; -1 when it has more or
 * is not back-ticked.
 */
static int
wxb_split(const char *line, size_t len, int ticked, struct wxb_field *f,
    int max)
{
	size_t i, start;
	int n = 0;

	if (ticked) {
		if (len == 0 || line[0] != '`')
			return -1;
		start = 1;
	} else
		start = 0;
	for (i = start; i <= len; i++) {
		if (i < len && !(line[i] == ',' && (!ticked ||
		    (i + 1 < len && line[i + 1] == '`'))))
			continue;
		if (n == max)
			return -1;
		f[n].p = line + start;
		f[n].n = i - start;
		n++;
		start = i + 1 + (ticked ? 1 : 0);
		if (i < len && ticked)
			i++;
	}
	return n;
}

static int
wxb_is(const struct wxb_field *f, const char *s)
{
	return f->n == strlen(s) && memcmp(f->p, s, f->n) == 0;
}

/* A field copied as a NUL-terminated string (cap includes the NUL). */
static int
wxb_str(const struct wxb_field *f, char *dst, size_t cap)
{
	if (f->n >= cap)
		return -1;
	memcpy(dst, f->p, f->n);
	dst[f->n] = '\0';
	return memchr(dst, '\0', f->n) != NULL ? -1 : 0;
}

/*
 * Where the names of table t stand among the n fields f: map[col] is the
 * field's index, or -1 when none has the name (map has nmap entries, one
 * for each col of t).  Returns 0, or the number (from 1) of a field that
 * names a column already found.
 */
static int
wxb_map(const struct wxb_field *f, int n, const struct wxb_name *t,
    int *map, int nmap)
{
	int i, j;

	for (i = 0; i < nmap; i++)
		map[i] = -1;
	for (i = 0; i < n; i++)
		for (j = 0; t[j].name != NULL; j++) {
			if (!wxb_is(&f[i], t[j].name))
				continue;
			if (map[t[j].col] != -1)
				return i + 1;
			map[t[j].col] = i;
		}
	return 0;
}

static int
wxb_header(struct wxb_state *s, const struct wxb_line *l, uint64_t lineno,
    struct ph_diag *diag)
{
	int i;

	if (l->n < 1)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: not a bill "
		    "header (more than %d columns?)",
		    (unsigned long long)lineno, WXB_COLS_MAX);
	if ((i = wxb_map(l->f, l->n, wxb_cols, s->col, WXB__MAX)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: column %d "
		    "repeats a column name", (unsigned long long)lineno, i);
	if (s->col[WXB_TIME] < 0 || s->col[WXB_MCH] < 0 ||
	    s->col[WXB_TXN] < 0 || s->col[WXB_ORDER] < 0 ||
	    s->col[WXB_STATE] < 0 || s->col[WXB_CURRENCY] < 0 ||
	    (s->col[WXB_TOTAL] < 0 && s->col[WXB_ORDER_AMOUNT] < 0))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: not a WeChat "
		    "Pay trade bill header (the columns of the time, merchant "
		    "id, WeChat and merchant order numbers, trade state, "
		    "currency and total or order amount are needed)",
		    (unsigned long long)lineno);
	s->ncols = l->n;
	return PH_OK;
}

static int
wxb_summary_header(struct wxb_state *s, const struct wxb_line *l,
    uint64_t lineno, struct ph_diag *diag)
{
	int i, c, amounts = 0;

	if (l->n < 1)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: not a summary "
		    "header", (unsigned long long)lineno);
	if ((i = wxb_map(l->f, l->n, wxb_sums, s->sum, WXB__MAX + 1)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: summary "
		    "column %d repeats a name", (unsigned long long)lineno, i);
	for (c = 0; c < WXB__MAX; c++) {
		if (s->sum[c] < 0)
			continue;
		/* A total of a column the bill does not have cannot be
		 * checked. */
		if (s->col[c] < 0)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: "
			    "summary column %d totals a column the header "
			    "lacks", (unsigned long long)lineno,
			    s->sum[c] + 1);
		if (c == WXB_TOTAL || c == WXB_ORDER_AMOUNT || c == WXB_SETTLE)
			amounts++;
	}
	if (s->sum[WXB_COUNT] < 0 || amounts == 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the summary "
		    "header names no row count or no total of the payments",
		    (unsigned long long)lineno);
	s->nsum = l->n;
	return PH_OK;
}

static int
wxb_summary(struct wxb_state *s, const struct wxb_line *l, uint64_t lineno,
    struct ph_diag *diag)
{
	const struct wxb_field *f = l->f;
	int64_t v;
	int i;

	if (l->n != s->nsum)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the summary "
		    "line has %d fields, its header %d",
		    (unsigned long long)lineno, l->n, s->nsum);
	for (i = 0; i <= WXB__MAX; i++) {
		if (s->sum[i] < 0)
			continue;
		if (i == WXB_COUNT ? ph_money_parse_minor(f[s->sum[i]].p,
		    f[s->sum[i]].n, &v) != PH_OK :
		    wxb_money(i, f[s->sum[i]].p, f[s->sum[i]].n, &v) != PH_OK)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: "
			    "summary field %d is not a number",
			    (unsigned long long)lineno, s->sum[i] + 1);
		/* Compared at the end with what was read. */
		if (i == WXB_COUNT)
			s->count = v;
		else
			s->want[i] = v;
	}
	return PH_OK;
}

/* Fills ev from a data line; ev->kind PH_EV_IGNORED for rows that are
 * not facts. */
static int
wxb_row(const struct wx_ctx *ctx, struct wxb_state *s,
    const struct wxb_line *l, uint64_t lineno, struct ph_event *ev,
    struct ph_diag *diag)
{
	const struct wxb_field *f = l->f;
	int64_t amount[WXB__MAX];
	char state[32], buf[PH_ID_MAX + 1], text[WX_TEXT_MAX + 1];
	const struct wxb_field *c;
	int i, refund;

	if (l->n != s->ncols)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: %d fields, the "
		    "header has %d", (unsigned long long)lineno, l->n, s->ncols);
	/* Every money column, checked and summed on every row. */
	for (i = WXB_MONEY_FIRST; i < WXB__MAX; i++) {
		amount[i] = 0;
		if (s->col[i] < 0)
			continue;
		c = &f[s->col[i]];
		if (c->n > 0 && wxb_money(i, c->p, c->n, &amount[i]) != PH_OK)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: field "
			    "%d is not an amount in yuan",
			    (unsigned long long)lineno, s->col[i] + 1);
		if ((amount[i] > 0 && s->money[i] > INT64_MAX - amount[i]) ||
		    (amount[i] < 0 && s->money[i] < INT64_MIN - amount[i]))
			return ph_fail(diag, PH_E_TOOBIG, "line %llu: the "
			    "bill's totals overflow", (unsigned long long)lineno);
		s->money[i] += amount[i];
	}
	s->rows++;

	c = &f[s->col[WXB_MCH]];
	if (wxb_str(c, buf, sizeof(buf)) != 0 || strcmp(buf, ctx->mch_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "line %llu: the merchant "
		    "id is not this profile's mch_id %s", (unsigned long long)lineno,
		    ctx->mch_id);
	if (s->col[WXB_SUB_MCH] >= 0) {
		c = &f[s->col[WXB_SUB_MCH]];
		if (!(c->n == 0 || wxb_is(c, "0")))
			return ph_fail(diag, PH_E_MERCHANT, "line %llu: a "
			    "sub-merchant's row: service-provider mode is not "
			    "supported", (unsigned long long)lineno);
	}
	/* The row of another app on the same merchant account (an Official
	 * Account and a Mini Program share a mch_id): that app's profile
	 * reconciles it, as only that profile takes its notifications.  It
	 * counts toward the summary all the same. */
	if (s->col[WXB_APPID] >= 0) {
		c = &f[s->col[WXB_APPID]];
		if (c->n > 0 && !wxb_is(c, ctx->appid)) {
			ev->kind = PH_EV_IGNORED;
			return PH_OK;
		}
	}
	if (wxb_str(&f[s->col[WXB_STATE]], state, sizeof(state)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the trade "
		    "state is invalid", (unsigned long long)lineno);
	if (strcmp(state, "SUCCESS") == 0)
		refund = 0;
	else if (strcmp(state, "REFUND") == 0)
		refund = 1;
	else if (strcmp(state, "REVOKED") == 0) {
		/* A micropay revoked after payment: no money stayed. */
		ev->kind = PH_EV_IGNORED;
		return PH_OK;
	} else {
		ph_diag_text(text, sizeof(text), state, WX_TEXT_MAX);
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: trade state "
		    "%s is not SUCCESS, REFUND or REVOKED",
		    (unsigned long long)lineno, text);
	}

	if (refund) {
		if (s->col[WXB_REFUND_ID] < 0 || s->col[WXB_OUT_REFUND] < 0 ||
		    s->col[WXB_REFUND_STATUS] < 0 ||
		    (s->col[WXB_REFUND_FEE] < 0 &&
		    s->col[WXB_REFUND_ASKED] < 0))
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: a "
			    "refund in a bill without refund columns",
			    (unsigned long long)lineno);
		if (wxb_str(&f[s->col[WXB_REFUND_STATUS]], state,
		    sizeof(state)) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: the refund "
			    "status is invalid", (unsigned long long)lineno);
		if (strcmp(state, "PROCESSING") == 0 ||
		    strcmp(state, "CHANGE") == 0 ||
		    strcmp(state, "REFUNDCLOSE") == 0 ||
		    strcmp(state, "FAIL") == 0) {
			/* No money went back (yet). */
			ev->kind = PH_EV_IGNORED;
			return PH_OK;
		}
		if (strcmp(state, "SUCCESS") != 0) {
			ph_diag_text(text, sizeof(text), state, WX_TEXT_MAX);
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: refund "
			    "status %s is unknown", (unsigned long long)lineno, text);
		}
		ev->kind = PH_EV_REFUND_SUCCEEDED;
		ev->amount = s->col[WXB_REFUND_ASKED] >= 0 ?
		    amount[WXB_REFUND_ASKED] : amount[WXB_REFUND_FEE];
		c = &f[s->col[s->col[WXB_REFUND_ASKED] >= 0 ?
		    WXB_REFUND_ASKED : WXB_REFUND_FEE]];
	} else {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		ev->amount = s->col[WXB_TOTAL] >= 0 ? amount[WXB_TOTAL] :
		    amount[WXB_ORDER_AMOUNT];
		c = &f[s->col[s->col[WXB_TOTAL] >= 0 ? WXB_TOTAL :
		    WXB_ORDER_AMOUNT]];
	}
	if (c->n == 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the amount "
		    "(field %d) is empty", (unsigned long long)lineno,
		    (int)(c - f) + 1);

	/* The identifiers, as the notification of the same fact has them. */
	if (wxb_str(&f[s->col[WXB_ORDER]], buf, sizeof(buf)) != 0 ||
	    !ph_token_valid(buf, strlen(buf), WX_ID_MAX, WX_ORDER_EXTRA))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the merchant "
		    "order number is not a valid out_trade_no", (unsigned long long)lineno);
	memcpy(ev->order_id, buf, strlen(buf) + 1);
	if (wxb_str(&f[s->col[WXB_TXN]], buf, sizeof(buf)) != 0 ||
	    !ph_token_valid(buf, strlen(buf), WX_ID_MAX, NULL))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the WeChat "
		    "order number is not a valid transaction_id", (unsigned long long)lineno);
	memcpy(ev->txn_id, buf, strlen(buf) + 1);
	if (wxb_str(&f[s->col[WXB_CURRENCY]], buf, sizeof(buf)) != 0 ||
	    !ph_currency_valid(buf))
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the currency "
		    "is not a currency code", (unsigned long long)lineno);
	memcpy(ev->currency, buf, 4);
	c = &f[s->col[WXB_TIME]];
	if (wxb_str(c, buf, sizeof(buf)) != 0 ||
	    ph_time_parse_dashed(buf, strlen(buf), WX_BEIJING,
	    &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the time is "
		    "not yyyy-MM-dd HH:mm:ss", (unsigned long long)lineno);
	if (refund) {
		if (wxb_str(&f[s->col[WXB_REFUND_ID]], buf, sizeof(buf)) != 0 ||
		    !ph_token_valid(buf, strlen(buf), WX_ID_MAX, NULL))
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: the WeChat "
			    "refund number is invalid", (unsigned long long)lineno);
		memcpy(ev->refund_id, buf, strlen(buf) + 1);
		if (wxb_str(&f[s->col[WXB_OUT_REFUND]], buf, sizeof(buf)) !=
		    0 || !ph_token_valid(buf, strlen(buf), WX_REFUND_ID_MAX,
		    WX3_REFUND_EXTRA))
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: the merchant "
			    "refund number is invalid", (unsigned long long)lineno);
		memcpy(ev->merchant_refund_id, buf, strlen(buf) + 1);
		return ph_dedup_key(ev, diag, "refund", ev->refund_id,
		    "SUCCESS", (char *)NULL);
	}
	/* The key of the payment's notification and query. */
	return ph_dedup_key(ev, diag, "pay", ev->txn_id, (char *)NULL);
}

/* The end: the summary must have been read and must agree. */
static int
wxb_end(const struct wxb_state *s, const struct ph_statement *st,
    struct ph_diag *diag)
{
	static const char *const names[WXB__MAX] = {
		[WXB_TOTAL] = "total amount",
		[WXB_ORDER_AMOUNT] = "order amount",
		[WXB_SETTLE] = "settlement amount",
		[WXB_REFUND_FEE] = "refund amount",
		[WXB_REFUND_ASKED] = "requested refund amount",
		[WXB_COUPON_REFUND] = "coupon refund amount",
		[WXB_FEE] = "fee",
	};
	int i;

	if (s->phase != WXB_DONE)
		return ph_fail(diag, PH_E_MALFORMED, "the bill ends after line "
		    "%llu without its summary (truncated?)",
		    (unsigned long long)(st->line));
	if (s->count < 0 || (uint64_t)s->count != s->rows)
		return ph_fail(diag, PH_E_MALFORMED, "summary: the row count "
		    "says %lld rows, the bill has %llu", (long long)s->count,
		    (unsigned long long)s->rows);
	for (i = WXB_MONEY_FIRST; i < WXB__MAX; i++)
		if (s->sum[i] >= 0 && s->money[i] != s->want[i])
			return ph_fail(diag, PH_E_MALFORMED, "summary: the total "
			    "of %s is %lld %s, the rows add up to %lld",
			    names[i], (long long)s->want[i], i == WXB_FEE ?
			    "hundred-thousandths of a yuan" : "fen",
			    (long long)s->money[i]);
	return PH_OK;
}

/* One line of the bill, or its end (line NULL). */
static int
wxb_step(const void *p, void *state, const struct ph_statement *st,
    const char *line, size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	const struct wx_ctx *ctx = p;
	struct wxb_state *s = state;
	struct wxb_line l;
	int ticked, rc, next;

	if (line == NULL) {
		if (s->phase == WXB_HEADER)
			return ph_fail(diag, PH_E_MALFORMED, "the bill is "
			    "empty");
		return wxb_end(s, st, diag);
	}
	if (s->phase == WXB_DONE)
		return len == 0 ? PH_OK : ph_fail(diag, PH_E_MALFORMED,
		    "line %llu: text after the summary",
		    (unsigned long long)st->line);
	if (s->phase == WXB_ROWS && len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: an empty line "
		    "among the rows", (unsigned long long)st->line);
	/* An optional UTF-8 BOM before the first header only. */
	if (s->phase == WXB_HEADER && len >= 3 &&
	    memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	/* Rows and the summary are back-ticked; the headers are not. */
	ticked = s->phase == WXB_SUMMARY ||
	    (s->phase == WXB_ROWS && line[0] == '`');
	l.n = wxb_split(line, len, ticked, l.f, WXB_COLS_MAX);
	switch (s->phase) {
	case WXB_HEADER:
		rc = wxb_header(s, &l, st->line, diag);
		next = WXB_ROWS;
		break;
	case WXB_SUMMARY:
		rc = wxb_summary(s, &l, st->line, diag);
		next = WXB_DONE;
		break;
	default:
		if (ticked)
			return wxb_row(ctx, s, &l, st->line, ev, diag);
		rc = wxb_summary_header(s, &l, st->line, diag);
		next = WXB_SUMMARY;
	}
	if (rc == PH_OK)
		s->phase = next;
	return rc;
}

PH_STATEMENT_LINE(wx_statement_line)
{
	struct wxb_state s;

	/* A zeroed state is WXB_HEADER: nothing read yet. */
	return ph_statement_drive(p, st, &s, sizeof(s), WXB_MAGIC, wxb_step,
	    line, len, ev, diag);
}
