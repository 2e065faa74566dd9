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

#include "../../../../providers/unionpay/unionpay_test.h"

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"

#define MER "777290058110048"

static struct ph_diag d;

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

/* The payment row of good with its field i (from 0) v: a static, good
 * until the next call. */
static const char *
pay_row_with(size_t i, const char *v)
{
	static const char *const field[] = { MER, "01", "01", "A20261130001",
	    "782611301530001234567", "", "20261130153000", "1000", "156",
	    "1130" };
	static char row[256];
	size_t j;
	int n = 0;

	for (j = 0; j < sizeof(field) / sizeof(field[0]); j++)
		n += snprintf(row + n, sizeof(row) - (size_t)n, "%s%s",
		    j > 0 ? "," : "", j == i ? v : field[j]);
	return row;
}

int
main(void)
{
	/* The payment row of good with one field (from 0) wrong. */
	static const struct {
		size_t field;
		const char *value;
		int rc;
		const char *what;
	} bad_field[] = {
		{ 7, "10.00", PH_E_MALFORMED,
		    "txnAmt with a decimal point: refused" },
		{ 3, "\"A2026\"", PH_E_MALFORMED, "a quoted field: refused" },
		{ 6, "20261131153000", PH_E_MALFORMED, "November 31st: refused" },
		{ 1, "02", PH_E_UNSUPPORTED, "a pre-authorisation (02): refused" },
		{ 8, "999", PH_E_MALFORMED, "an unknown currencyCode: refused" },
	};
	/* A line of good replaced: the payment row cut short, the refund
	 * row, the header. */
	static const struct th_row_case bad_row[] = {
		{ 1, MER ",01,01,A20261130001,782611301530001234567",
		    PH_E_MALFORMED, 2, "line 2:", NULL,
		    "a short row: refused naming line 2" },
		{ 2, MER ",04,00,phr0000000000007,782611301800001234599,,"
		    "20261130180000,400,156,1130", PH_E_MALFORMED, -1,
		    "origQryId", NULL, "a refund without origQryId: refused" },
		{ 0, "merId,txnType,orderId,queryId,txnTime,txnAmt",
		    PH_E_MALFORMED, 1, "currencyCode", NULL,
		    "a header without currencyCode: refused at line 1" },
		{ 0, "merId,merId,txnType,orderId,queryId,txnTime,txnAmt,"
		    "currencyCode", PH_E_MALFORMED, -1, NULL, NULL,
		    "a column named twice: refused" },
	};
	const struct ph_provider *p = payhook_provider();
	struct up_ctx ctx = { .mer_id = MER };
	struct up_ctx other = { .mer_id = "898000000000001" };
	struct th_run r;
	int64_t t;
	size_t i;

	is_statement_read(p, &ctx, good, &r, &d, 2,
	    "... a payment and a refund", 2, 1400);
	/* orderId, queryId, txnAmt in fen, 156 is CNY, txnTime in Beijing
	 * time, the key of its notification. */
	ph_time_parse_compact("20261130153000", UP_BEIJING, &t);
	is_event(&r.ev[0], "txnType 01", PH_EV_PAYMENT_SUCCEEDED,
	    "A20261130001", "782611301530001234567", 1000, "CNY", t,
	    "up:782611301530001234567:01:00");
	is_refund(&r.ev[1], "txnType 04", "782611301800001234599",
	    "phr0000000000007", "782611301530001234567");
	is_str(r.ev[1].dedup_key, "up:782611301800001234599:04:00",
	    "... the key of its notification");
	ok(r.ev[1].order_id[0] == '\0', "... the payment's order not named: "
	    "its orderId is the refund's own");
	is_statement_frame(p, &ctx, good, 3, "total,3,1400", "total,2,1401",
	    "total,2,1400");
	{
		const char *const gap[] = { good[0], good[1], "", good[2],
		    good[3], NULL };

		th_feed(p, &ctx, gap, "", &r, &d);
		ok(r.rc == PH_E_MALFORMED && r.fail_line == 3,
		    "an empty line among the rows: refused");
	}
	for (i = 0; i < sizeof(bad_field) / sizeof(bad_field[0]); i++) {
		th_feed(p, &ctx, th_variant(good, 1,
		    pay_row_with(bad_field[i].field, bad_field[i].value)), "",
		    &r, &d);
		is_int(r.rc, bad_field[i].rc, "%s", bad_field[i].what);
	}
	is_statement_rows(p, &ctx, good, bad_row);
	th_feed(p, &other, good, "", &r, &d);
	ok(r.rc == PH_E_MERCHANT && r.fail_line == 2,
	    "another merchant's statement: refused at its first row");
	{
		const char *const none[] = { NULL };

		th_feed(p, &ctx, none, "", &r, &d);
		is_int(r.rc, PH_E_MALFORMED, "an empty file: refused");
	}
	return done_testing();
}
