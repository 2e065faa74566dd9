/*
 * The aggregator plugin's statement reader (the CSV of charge and refund
 * fields it documents, since Ping++ publishes no statement file), driven
 * through its table one line at a time.  Only app_id of the profile is
 * used, so the context is made here without keys.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../../providers/aggregator/aggregator_test.h"

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"

#define APP "app_1Gqj58ynP0mHeX1q"

static struct ph_diag d;

static const char *const good[] = {
	"\xef\xbb\xbftype,id,app,order_no,charge,amount,currency,channel,time,"
	"refund_no",
	"charge,ch_L8qn10mLmr1GS8e5OODmHaL4," APP ",A-1,,1000,cny,wx_pub,"
	"1764487800,",
	"refund,re_y1u944PmfnrTHyvnL0nD0iD1," APP ",A-1,"
	"ch_L8qn10mLmr1GS8e5OODmHaL4,400,cny,,1764498600,phr0000000000007",
	"refund,re_OtherRefundNotOurs0000001," APP ",A-1,"
	"ch_L8qn10mLmr1GS8e5OODmHaL4,100,cny,,1764498700,",
	"total,3,1500",
	"",
	NULL
};

int
main(void)
{
	/* A line of good replaced, refused as malformed. */
	static const struct th_row_case bad_row[] = {
		{ 1, "charge,ch_L8qn10mLmr1GS8e5OODmHaL4," APP
		    ",A-1,,10.00,cny,wx_pub,1764487800,", PH_E_MALFORMED, -1,
		    "line 2:", NULL,
		    "an amount in yuan: refused naming line 2" },
		{ 1, "transfer,tr_1," APP ",A-1,,1000,cny,,1764487800,",
		    PH_E_MALFORMED, -1, NULL, NULL,
		    "a type other than charge or refund: refused" },
		{ 2, "refund,re_y1u944PmfnrTHyvnL0nD0iD1," APP
		    ",A-1,,400,cny,,1764498600,phr0000000000007",
		    PH_E_MALFORMED, -1, "charge", NULL,
		    "a refund without its charge: refused" },
		{ 1, "charge,ch_L8qn10mLmr1GS8e5OODmHaL4," APP
		    ",A-1,,1000,cny,wx_pub,-5,", PH_E_MALFORMED, -1, NULL, NULL,
		    "a negative time: refused" },
		{ 1, "charge,ch_L8qn10mLmr1GS8e5OODmHaL4," APP
		    ",A/1,,1000,cny,wx_pub,1764487800,", PH_E_MALFORMED, -1,
		    NULL, NULL, "an order_no with a slash: refused" },
		{ 0, "type,id,app,order_no,amount,currency", PH_E_MALFORMED, 1,
		    "time", NULL, "a header without time: refused" },
		{ 1, "charge,ch_L8qn10mLmr1GS8e5OODmHaL4," APP
		    ",\"A-1\",,1000,cny,wx_pub,1764487800,", PH_E_MALFORMED,
		    -1, "a quoted field", NULL, "a quoted field (a "
		    "spreadsheet's export): refused, saying so" },
	};
	const struct ph_provider *p = payhook_provider();
	struct agg_ctx ctx = { .app_id = APP };
	struct agg_ctx other = { .app_id = "app_Another" };
	struct th_run r;

	is_statement_read(p, &ctx, good, &r, &d, 3,
	    "... a charge and two refunds", 3, 1500);
	diag("%s", d.msg);
	/* cny upper-cased; the key of its charge.succeeded */
	is_event(&r.ev[0], "charge", PH_EV_PAYMENT_SUCCEEDED, "A-1",
	    "ch_L8qn10mLmr1GS8e5OODmHaL4", 1000, "CNY", 1764487800,
	    "pay:ch_L8qn10mLmr1GS8e5OODmHaL4");
	is_str(r.ev[0].channel, "wx_pub", "charge: channel");
	is_refund(&r.ev[1], "refund", "re_y1u944PmfnrTHyvnL0nD0iD1",
	    "phr0000000000007", "ch_L8qn10mLmr1GS8e5OODmHaL4");
	is_str(r.ev[1].dedup_key, "refund:re_y1u944PmfnrTHyvnL0nD0iD1",
	    "... dedup key");
	is_str(r.ev[2].merchant_refund_id, "", "a refund without refund_no "
	    "has no merchant refund id");
	is_statement_frame(p, &ctx, good, 4, "total,4,1500", "total,3,1501",
	    "charge");
	is_statement_rows(p, &ctx, good, bad_row);
	th_feed(p, &other, good, "", &r, &d);
	ok(r.rc == PH_E_MERCHANT && r.fail_line == 2,
	    "another app's statement: refused at its first row");
	return done_testing();
}
