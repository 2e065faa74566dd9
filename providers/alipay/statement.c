/*
 * Statements: the trade-detail bill (业务明细).
 *
 * The file Alipay's bill download gives for bill_type=trade, one line at
 * a time (README.md shows a sample):
 *
 *	#支付宝业务明细查询			preamble: '#' lines
 *	#----...业务明细列表----...		start of the list
 *	支付宝交易号,商户订单号,业务类型,...	header: columns found by name
 *	2019...\t,A1\t,交易\t,...		rows: 交易 (payment) or 退款
 *	#----...业务明细列表结束----...		end of the list
 *	#交易合计：6笔，商家实收共0.06元，...	totals, checked at the end
 *	#退款合计：4笔，商家实收退款共-0.04元，...
 *	#导出时间：[...]
 *
 * Text is GBK as Alipay sends it, or UTF-8 (a converted file): decided
 * by the first line with a non-ASCII byte.  Fields are split on ',',
 * may be double-quoted, and are trimmed of the tabs and spaces Alipay
 * pads them with.
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

enum ali_phase {
	ALI_ST_PREAMBLE,	/* before the start marker */
	ALI_ST_HEADER,		/* the next line is the header */
	ALI_ST_ROWS,
	ALI_ST_TRAILER,		/* after the end marker */
	ALI_ST__MAX
};

enum ali_col {
	ALI_COL_TRADE_NO,
	ALI_COL_ORDER,
	ALI_COL_TYPE,
	ALI_COL_DONE,
	ALI_COL_AMOUNT,
	ALI_COL_RECEIPT,
	ALI_COL_REFUND_NO,
	ALI_COL__MAX
};

/* Column names, and a second spelling with ASCII parentheses. */
static const char *const ali_col_names[ALI_COL__MAX][2] = {
	[ALI_COL_TRADE_NO] = { "支付宝交易号", NULL },
	[ALI_COL_ORDER] = { "商户订单号", NULL },
	[ALI_COL_TYPE] = { "业务类型", NULL },
	[ALI_COL_DONE] = { "完成时间", NULL },
	[ALI_COL_AMOUNT] = { "订单金额（元）", "订单金额(元)" },
	[ALI_COL_RECEIPT] = { "商家实收（元）", "商家实收(元)" },
	[ALI_COL_REFUND_NO] = { "退款批次号/请求号", NULL },
};

#define ALI_MARK_LIST	"业务明细列表"
#define ALI_MARK_END	"业务明细列表结束"
#define ALI_TOTAL_PAY	"#交易合计："
#define ALI_TOTAL_REFUND "#退款合计："
#define ALI_TOTAL_PAY_AMT "商家实收共"
#define ALI_TOTAL_REFUND_AMT "商家实收退款共"

/* Kept in ph_statement.state between lines. */
struct ali_stmt {
	int phase;
	int enc;			/* 0 not known yet, 1 UTF-8, 2 GBK */
	int ncols;
	int col[ALI_COL__MAX];
	uint64_t pays, refunds;		/* rows seen */
	int64_t pay_receipt;		/* sums of 商家实收, fen */
	int64_t refund_receipt;
	int have_pay_total, have_refund_total;
	uint64_t pay_total_n, refund_total_n;
	int64_t pay_total, refund_total;
	int have_account;		/* its #账号 line seen, and ours */
};

_Static_assert(sizeof(struct ali_stmt) <= PH_STATEMENT_STATE_MAX,
    "the statement state must fit the core's area");

/* Well-formed UTF-8 without overlongs or surrogates. */
static int
ali_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp, min;

	while (i < n) {
		unsigned char c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (n - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int
ali_has_high(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* The line as UTF-8 text in out (NUL-terminated). */
static int
ali_line_utf8(struct ali_stmt *z, uint64_t lineno, const char *line,
    size_t len, char *out, size_t cap, struct ph_diag *diag)
{
	iconv_t cd;
	char *ip = (char *)(uintptr_t)line, *op = out;
	size_t il = len, ol = cap - 1, r;

	if (memchr(line, '\0', len) != NULL)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: a "
		    "NUL byte", (unsigned long long)lineno);
	if (z->enc == 0 && ali_has_high(line, len))
		z->enc = ali_utf8_valid((const unsigned char *)line, len) ?
		    1 : 2;
	if (z->enc != 2) {
		if (len >= cap)
			return ph_fail(diag, PH_E_TOOBIG, "statement line "
			    "%llu: longer than %zu bytes",
			    (unsigned long long)lineno, cap - 1);
		if (z->enc == 1 && !ali_utf8_valid((const unsigned char *)line,
		    len))
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: not UTF-8 like the lines before it",
			    (unsigned long long)lineno);
		memcpy(out, line, len);
		out[len] = '\0';
		return PH_OK;
	}
	/* GB18030 reads every GBK byte sequence as GBK does. */
	if ((cd = iconv_open("UTF-8", "GB18030")) == (iconv_t)-1)
		return ph_fail(diag, PH_E_UNSUPPORTED, "statement: no GBK "
		    "converter");
	r = iconv(cd, &ip, &il, &op, &ol);
	iconv_close(cd);
	if (r == (size_t)-1 || il != 0)
		return ph_fail(diag, errno == E2BIG ? PH_E_TOOBIG :
		    PH_E_MALFORMED, "statement line %llu: %s",
		    (unsigned long long)lineno, errno == E2BIG ?
		    "too long" : "not GBK text");
	*op = '\0';
	return PH_OK;
}

static int
ali_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Splits a line into fields (pointers into buf, which is modified):
 * ',' separates, a field may be double-quoted with "" for a quote,
 * leading and trailing spaces and tabs are dropped.
 */
static int
ali_split(char *buf, char **f, int max, int *n)
{
	char *r = buf, *w, *start;
	int quoted;

	*n = 0;
	for (;;) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (*n == max)
			return -1;
		start = w = r;
		quoted = *r == '"';
		if (quoted) {
			for (r++;; r++) {
				if (*r == '\0')
					return -1;
				if (*r == '"') {
					if (r[1] != '"')
						break;
					r++;
				}
				*w++ = *r;
			}
			r++;
			while (*r == ' ' || *r == '\t')
				r++;
			if (*r != ',' && *r != '\0')
				return -1;
		} else {
			while (*r != ',' && *r != '\0') {
				if (*r == '"')
					return -1;
				*w++ = *r++;
			}
			while (w > start && (w[-1] == ' ' || w[-1] == '\t'))
				w--;
		}
		f[(*n)++] = start;
		if (*r == '\0') {
			*w = '\0';
			return 0;
		}
		r++;
		*w = '\0';
	}
}

static int
ali_header(struct ali_stmt *z, char *text, uint64_t lineno,
    struct ph_diag *diag)
{
	char *f[ALI_COLS_MAX];
	int n, i, c;

	if (ali_split(text, f, ALI_COLS_MAX, &n) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: the "
		    "header is not %d comma-separated names or fewer",
		    (unsigned long long)lineno, ALI_COLS_MAX);
	for (c = 0; c < ALI_COL__MAX; c++) {
		z->col[c] = -1;
		for (i = 0; i < n; i++) {
			if (strcmp(f[i], ali_col_names[c][0]) != 0 &&
			    (ali_col_names[c][1] == NULL ||
			    strcmp(f[i], ali_col_names[c][1]) != 0))
				continue;
			if (z->col[c] != -1)
				return ph_fail(diag, PH_E_MALFORMED,
				    "statement line %llu: column %s twice",
				    (unsigned long long)lineno,
				    ali_col_names[c][0]);
			z->col[c] = i;
		}
		if (z->col[c] == -1)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: no column %s", (unsigned long long)lineno,
			    ali_col_names[c][0]);
	}
	z->ncols = n;
	z->phase = ALI_ST_ROWS;
	return PH_OK;
}

/* One row of the list: a payment (交易) or a refund (退款). */
static int
ali_row(struct ali_stmt *z, struct ph_statement *st, char *text,
    struct ph_event *ev, struct ph_diag *diag)
{
	unsigned long long ln = (unsigned long long)st->line;
	char *f[ALI_COLS_MAX];
	const char *type, *v;
	int64_t amount, receipt;
	int n, refund, rc;

	if (ali_split(text, f, ALI_COLS_MAX, &n) != 0 || n != z->ncols)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: not "
		    "%d fields like the header", ln, z->ncols);
	type = f[z->col[ALI_COL_TYPE]];
	refund = strcmp(type, "退款") == 0;
	if (!refund && strcmp(type, "交易") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "statement line %llu: "
		    "业务类型 is neither 交易 nor 退款", ln);
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id),
	    f[z->col[ALI_COL_ORDER]], ALI_ORDER_EXTRA, "商户订单号",
	    NULL) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "商户订单号 missing or not an order id", ln);
	if (ph_copy_token(ev->txn_id, sizeof(ev->txn_id),
	    f[z->col[ALI_COL_TRADE_NO]], NULL, "支付宝交易号", NULL) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "支付宝交易号 missing or invalid", ln);
	v = f[z->col[ALI_COL_DONE]];
	if (ph_time_parse_dashed(v, strlen(v), ALI_BEIJING,
	    &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "完成时间 is not yyyy-MM-dd HH:mm:ss", ln);
	v = f[z->col[ALI_COL_AMOUNT]];
	if (ali_yuan_signed(v, strlen(v), &amount) != PH_OK ||
	    (refund ? amount > 0 : amount < 0))
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "订单金额 is not a%s amount in yuan", ln, refund ?
		    " refunded" : " paid");
	v = f[z->col[ALI_COL_RECEIPT]];
	if (ali_yuan_signed(v, strlen(v), &receipt) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "商家实收 is not an amount in yuan", ln);
	memcpy(ev->currency, "CNY", 4);
	if (refund) {
		ev->kind = PH_EV_REFUND_SUCCEEDED;
		ev->amount = -amount;
		v = f[z->col[ALI_COL_REFUND_NO]];
		if (v[0] != '\0' && ph_copy_token(ev->merchant_refund_id,
		    sizeof(ev->merchant_refund_id), v, ALI_ID_EXTRA,
		    "退款批次号/请求号", NULL) != PH_OK)
			return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
			    "退款批次号/请求号 is not a refund id", ln);
		rc = ph_dedup_key(ev, diag, "refund", ev->txn_id,
		    ev->merchant_refund_id, (char *)NULL);
		z->refunds++;
		z->refund_receipt += receipt;
	} else {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		ev->amount = amount;
		rc = ph_dedup_key(ev, diag, "pay", ev->txn_id, (char *)NULL);
		z->pays++;
		z->pay_receipt += receipt;
	}
	if (rc != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: dedup "
		    "key too long", ln);
	if (z->pay_receipt > PH_AMOUNT_MAX ||
	    z->pay_receipt < -PH_AMOUNT_MAX ||
	    z->refund_receipt > PH_AMOUNT_MAX ||
	    z->refund_receipt < -PH_AMOUNT_MAX)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: sums "
		    "out of range", ln);
	if (st->total > INT64_MAX - ev->amount)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: sums "
		    "out of range", ln);
	st->facts++;
	st->total += ev->amount;
	return PH_OK;
}

/* "#交易合计：6笔，商家实收共0.06元，..." and its refund twin. */
static int
ali_total(const char *s, const char *label, uint64_t *count,
    int64_t *amount)
{
	static const char bi[] = "笔，";
	const char *p = s, *e;
	uint64_t n = 0;

	if (!ali_digits(p, 1))
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (!ali_starts(p, bi))
		return -1;
	p += sizeof(bi) - 1;
	if (!ali_starts(p, label))
		return -1;
	p += strlen(label);
	for (e = p; *e == '-' || *e == '.' || (*e >= '0' && *e <= '9'); e++)
		continue;
	if (!ali_starts(e, "元") ||
	    ali_yuan_signed(p, (size_t)(e - p), amount) != PH_OK)
		return -1;
	*count = n;
	return 0;
}

static int
ali_trailer(struct ali_stmt *z, const char *text, uint64_t lineno,
    struct ph_diag *diag)
{
	size_t pl = strlen(ALI_TOTAL_PAY), rl = strlen(ALI_TOTAL_REFUND);

	if (text[0] != '#')
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: "
		    "data after the end of the list",
		    (unsigned long long)lineno);
	if (ali_starts(text, ALI_TOTAL_PAY)) {
		if (z->have_pay_total++ ||
		    ali_total(text + pl, ALI_TOTAL_PAY_AMT, &z->pay_total_n,
		    &z->pay_total) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: the payment totals are not understood",
			    (unsigned long long)lineno);
	} else if (ali_starts(text, ALI_TOTAL_REFUND)) {
		if (z->have_refund_total++ ||
		    ali_total(text + rl, ALI_TOTAL_REFUND_AMT,
		    &z->refund_total_n, &z->refund_total) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: the refund totals are not understood",
			    (unsigned long long)lineno);
	}
	return PH_OK;
}

/* The rows of one kind listed, against the file's totals line for them. */
static int
ali_totals_match(const char *what, uint64_t n, int64_t sum, uint64_t file_n,
    int64_t file_sum, struct ph_diag *diag)
{
	if (n != file_n || sum != file_sum)
		return ph_fail(diag, PH_E_FIELD, "statement totals: %llu %s "
		    "of %lld fen listed, the file says %llu of %lld",
		    (unsigned long long)n, what, (long long)sum,
		    (unsigned long long)file_n, (long long)file_sum);
	return PH_OK;
}

static int
ali_statement_end(const struct ali_stmt *z, struct ph_diag *diag)
{
	int rc;

	if (z->phase != ALI_ST_TRAILER)
		return ph_fail(diag, PH_E_MALFORMED, "statement ended before "
		    "the end of its list (%s)", z->phase == ALI_ST_ROWS ?
		    "no end marker" : "no list");
	if (!z->have_pay_total || !z->have_refund_total)
		return ph_fail(diag, PH_E_MALFORMED, "statement without its "
		    "%s totals line", !z->have_pay_total ? "payment" :
		    "refund");
	if ((rc = ali_totals_match("payments", z->pays, z->pay_receipt,
	    z->pay_total_n, z->pay_total, diag)) != PH_OK)
		return rc;
	return ali_totals_match("refunds", z->refunds, z->refund_receipt,
	    z->refund_total_n, z->refund_total, diag);
}

/*
 * "#账号：[20881021196858380156]": whose bill it is, the seller's id (2088
 * and 12 digits) and the account's code.  The bill of another seller is
 * refused: its payments are not this profile's; so is a bill that does
 * not say whose it is before its list (its rows name no seller).
 */
static int
ali_account(const struct ali_ctx *ctx, struct ali_stmt *z, const char *text,
    uint64_t lineno, struct ph_diag *diag)
{
	size_t n = strlen(ctx->seller_id), len;
	const char *p, *e;

	if (!ali_starts(text, "#账号：") && !ali_starts(text, "#账号:"))
		return PH_OK;
	if ((p = strchr(text, '[')) == NULL || (e = strchr(++p, ']')) ==
	    NULL || (len = (size_t)(e - p)) == 0 || strspn(p, "0123456789") !=
	    len)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: "
		    "the account is not understood", (unsigned long long)lineno);
	z->have_account = len >= n && memcmp(p, ctx->seller_id, n) == 0;
	return z->have_account ? PH_OK : ph_fail(diag, PH_E_MERCHANT,
	    "statement line %llu: the bill of account %.*s, not of this "
	    "profile's seller_id %s", (unsigned long long)lineno, (int)len, p,
	    ctx->seller_id);
}

static int
ali_statement_step(const struct ali_ctx *ctx, struct ali_stmt *z,
    struct ph_statement *st, const char *line, size_t len,
    struct ph_event *ev, struct ph_diag *diag)
{
	char text[ALI_LINE_MAX];
	int rc;

	ev->kind = PH_EV_IGNORED;
	if (line == NULL)
		return ali_statement_end(z, diag);
	if (st->line == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	if ((rc = ali_line_utf8(z, st->line, line, len, text, sizeof(text),
	    diag)) != PH_OK)
		return rc;
	if (text[0] == '\0')
		return PH_OK;
	switch (z->phase) {
	case ALI_ST_PREAMBLE:
		if (text[0] != '#')
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: data before the list starts",
			    (unsigned long long)st->line);
		if (strstr(text, ALI_MARK_END) != NULL)
			return ph_fail(diag, PH_E_MALFORMED, "statement line "
			    "%llu: the list ends before it starts",
			    (unsigned long long)st->line);
		if ((rc = ali_account(ctx, z, text, st->line, diag)) != PH_OK)
			return rc;
		if (strstr(text, ALI_MARK_LIST) == NULL)
			return PH_OK;
		if (!z->have_account)
			return ph_fail(diag, PH_E_MERCHANT, "statement line "
			    "%llu: the list starts, but the bill has not said "
			    "whose it is (no account line): it cannot be "
			    "checked as this profile's",
			    (unsigned long long)st->line);
		z->phase = ALI_ST_HEADER;
		return PH_OK;
	case ALI_ST_HEADER:
		return ali_header(z, text, st->line, diag);
	case ALI_ST_ROWS:
		if (text[0] == '#') {
			if (strstr(text, ALI_MARK_END) == NULL)
				return ph_fail(diag, PH_E_MALFORMED,
				    "statement line %llu: a comment inside "
				    "the list",
				    (unsigned long long)st->line);
			z->phase = ALI_ST_TRAILER;
			return PH_OK;
		}
		return ali_row(z, st, text, ev, diag);
	case ALI_ST_TRAILER:
		return ali_trailer(z, text, st->line, diag);
	default:
		return ph_fail(diag, PH_E_INTERNAL, "statement state corrupt");
	}
}

PH_STATEMENT_LINE(ali_statement_line)
{
	struct ali_stmt z;
	int rc;

	if (p == NULL || st == NULL || ev == NULL || (line == NULL && len > 0))
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	memcpy(&z, st->state, sizeof(z));
	if (z.phase < 0 || z.phase >= ALI_ST__MAX)
		return ph_fail(diag, PH_E_INTERNAL, "statement state corrupt");
	rc = ali_statement_step(p, &z, st, line, len, ev, diag);
	memcpy(st->state, &z, sizeof(z));
	if (rc != PH_OK) {
		memset(ev, 0, sizeof(*ev));
		ev->kind = PH_EV_IGNORED;
	}
	return rc;
}
