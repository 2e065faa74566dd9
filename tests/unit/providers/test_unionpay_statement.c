/*
 * The unionpay plugin's statement reader (the CSV of ACP field names it
 * documents, since UnionPay's own file layout is unconfirmed), driven
 * through its table one line at a time.  Only mer_id of the profile is
 * used, so the context is made here without certificates.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../providers/unionpay/unionpay_test.h"

#include "../helpers.h"
#include "../tap.h"

#define MER "777290058110048"

static struct ph_diag d;

static void
feed(void *ctx, const char *const *lines, const char *term,
    struct th_run *r)
{
	th_feed(payhook_provider(), ctx, lines, term, r, &d);
}

static const char *const good[] = {
	"\xef\xbb\xbfmerId,txnType,txnSubType,orderId,queryId,origQryId,"
	"txnTime,txnAmt,currencyCode,settleDate",
	MER ",01,01,A20261130001,782611301530001234567,,20261130153000,1000,"
	"156,1130",
	MER ",04,00,phr0000000000007,782611301800001234599,"
	"782611301530001234567,20261130180000,400,156,1130",
	"total,2,1400",
	"",
	NULL
};

int
main(void)
{
	/* The payment row, each time with one field wrong. */
	static const struct {
		const char *row;
		int rc;
		const char *what;
	} bad_row[] = {
		{ MER ",01,01,A20261130001,782611301530001234567,,"
		    "20261130153000,10.00,156,1130", PH_E_MALFORMED,
		    "txnAmt with a decimal point: refused" },
		{ MER ",01,01,\"A2026\",782611301530001234567,,"
		    "20261130153000,1000,156,1130", PH_E_MALFORMED,
		    "a quoted field: refused" },
		{ MER ",01,01,A20261130001,782611301530001234567,,"
		    "20261131153000,1000,156,1130", PH_E_MALFORMED,
		    "November 31st: refused" },
		{ MER ",02,01,A20261130001,782611301530001234567,,"
		    "20261130153000,1000,156,1130", PH_E_UNSUPPORTED,
		    "a pre-authorisation (02): refused" },
		{ MER ",01,01,A20261130001,782611301530001234567,,"
		    "20261130153000,1000,999,1130", PH_E_MALFORMED,
		    "an unknown currencyCode: refused" },
	};
	const struct ph_provider *p = payhook_provider();
	struct up_ctx ctx, other;
	struct th_run r;
	int64_t t;
	size_t i;

	memset(&ctx, 0, sizeof(ctx));
	snprintf(ctx.mer_id, sizeof(ctx.mer_id), "%s", MER);
	memset(&other, 0, sizeof(other));
	snprintf(other.mer_id, sizeof(other.mer_id), "898000000000001");

	ok(p->caps & PH_CAP_STATEMENT, "the table reads statements");
	feed(&ctx, good, "\r", &r);
	is_int(r.rc, PH_OK, "a statement with a BOM and CRLF (CR left on): read");
	is_int(r.nev, 2, "... a payment and a refund");
	is_int(r.st.facts, 2, "... st->facts");
	is_int(r.st.total, 1400, "... st->total");
	is_int(r.ev[0].kind, PH_EV_PAYMENT_SUCCEEDED, "txnType 01: payment");
	is_str(r.ev[0].order_id, "A20261130001", "... orderId");
	is_str(r.ev[0].txn_id, "782611301530001234567", "... queryId");
	is_int(r.ev[0].amount, 1000, "... txnAmt in fen");
	is_str(r.ev[0].currency, "CNY", "... 156 is CNY");
	ph_time_parse_compact("20261130153000", UP_BEIJING, &t);
	is_int(r.ev[0].occurred_at, t, "... txnTime, Beijing time");
	is_str(r.ev[0].dedup_key, "up:782611301530001234567:01:00",
	    "... the key of its notification");
	is_int(r.ev[1].kind, PH_EV_REFUND_SUCCEEDED, "txnType 04: refund");
	is_str(r.ev[1].refund_id, "782611301800001234599",
	    "... refund_id is its queryId");
	is_str(r.ev[1].merchant_refund_id, "phr0000000000007",
	    "... merchant_refund_id is its orderId");
	is_str(r.ev[1].txn_id, "782611301530001234567",
	    "... txn_id is origQryId");
	is_str(r.ev[1].dedup_key, "up:782611301800001234599:04:00",
	    "... the key of its notification");
	feed(&ctx, good, "", &r);
	is_int(r.rc, PH_OK, "LF: read");

	feed(&ctx, th_variant(good, 3, "total,3,1400"), "", &r);
	ok(r.rc == PH_E_MALFORMED && r.fail_line == 4 &&
	    strstr(d.msg, "line 4:") != NULL, "a total of 3 rows for 2: "
	    "refused naming line 4");
	diag("%s", d.msg);
	feed(&ctx, th_variant(good, 3, "total,2,1401"), "", &r);
	is_int(r.rc, PH_E_MALFORMED, "a total amount off by one fen: refused");
	{
		const char *const cut[] = { good[0], good[1], good[2], NULL };
		const char *const gap[] = { good[0], good[1], "", good[2],
		    good[3], NULL };

		feed(&ctx, cut, "", &r);
		ok(r.rc == PH_E_MALFORMED && r.fail_line == 0 &&
		    strstr(d.msg, "truncated") != NULL, "no total line: "
		    "refused as truncated");
		feed(&ctx, gap, "", &r);
		ok(r.rc == PH_E_MALFORMED && r.fail_line == 3,
		    "an empty line among the rows: refused");
	}
	feed(&ctx, th_variant(good, 4, "total,2,1400"), "", &r);
	ok(r.rc == PH_E_MALFORMED && r.fail_line == 5,
	    "text after the total line: refused");
	feed(&ctx, th_variant(good, 1, MER ",01,01,A20261130001,782611301530001234567"),
	    "", &r);
	ok(r.rc == PH_E_MALFORMED && r.fail_line == 2 &&
	    strstr(d.msg, "line 2:") != NULL, "a short row: refused naming "
	    "line 2");
	for (i = 0; i < sizeof(bad_row) / sizeof(bad_row[0]); i++) {
		feed(&ctx, th_variant(good, 1, bad_row[i].row), "", &r);
		is_int(r.rc, bad_row[i].rc, bad_row[i].what);
	}
	feed(&ctx, th_variant(good, 2, MER ",04,00,phr0000000000007,"
	    "782611301800001234599,,20261130180000,400,156,1130"), "", &r);
	ok(r.rc == PH_E_MALFORMED && strstr(d.msg, "origQryId") != NULL,
	    "a refund without origQryId: refused");
	feed(&ctx, th_variant(good, 0, "merId,txnType,orderId,queryId,txnTime,txnAmt"),
	    "", &r);
	ok(r.rc == PH_E_MALFORMED && r.fail_line == 1 &&
	    strstr(d.msg, "currencyCode") != NULL,
	    "a header without currencyCode: refused at line 1");
	feed(&ctx, th_variant(good, 0, "merId,merId,txnType,orderId,queryId,txnTime,"
	    "txnAmt,currencyCode"), "", &r);
	is_int(r.rc, PH_E_MALFORMED, "a column named twice: refused");
	feed(&other, good, "", &r);
	ok(r.rc == PH_E_MERCHANT && r.fail_line == 2,
	    "another merchant's statement: refused at its first row");
	{
		const char *const none[] = { NULL };

		feed(&ctx, none, "", &r);
		is_int(r.rc, PH_E_MALFORMED, "an empty file: refused");
	}
	return done_testing();
}
