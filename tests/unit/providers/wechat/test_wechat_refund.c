/*
 * The wechat plugin's refunds and bills, driven through its table: the
 * trade bill parser (the official downloadbill sample TV-8, BOM and CRLF,
 * the settlement layout, refused summaries and lines), refund requests
 * byte for byte (v2 XML signed independently in Python, v3 JSON with its
 * Authorization verified here), refund answers, and the v2 refund
 * notification's req_info (AES-256-ECB): no official vector exists, so
 * the one here was made with Python's cryptography and agrees with
 * `openssl enc -aes-256-ecb`.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../../providers/wechat/wechat_test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <openssl/bio.h>

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"

#define KEY_MD5  "192006250b4c09247ec02edce69f6a2d"
#define KEY_HMAC "Hm4cK3yE2eTestKeyForSha256Prof1x"
#define APPID    "wx2421b1c4370ec43b"
#define MCH_ID   "10000100"
#define APPID2   "wxd930ea5d5a258f4f"
#define MCH_ID2  "10000200"

static struct ph_diag d;

/* ---- profiles ----------------------------------------------------------- */

static struct th_conf cv;

static int
v2profile(void **ctx, const char *appid, const char *mch, const char *key,
    const char *sign_type, const char *url)
{
	th_wx2_conf(&cv, payhook_provider(), "test", appid, mch, key,
	    sign_type);
	th_conf_str(&cv, "refund_notify_url", url);
	return th_profile_new(payhook_provider(), &cv, ctx, &d);
}

/* The official test key of TV-3 (th_tv3_priv_pem, helpers.h) is the
 * merchant's key here, and, as a WeChat Pay public key, the platform's
 * too. */
#define V3_MCHID	"1230000109"
#define V3_APPID	"wxd678efh567hg6787"
#define V3_KEY		"0123456789abcdefABCDEFGHijklmnop"
#define V3_PUB_ID	"PUB_KEY_ID_0114232134912410000000000000000000"
#define V3_SERIAL	"408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"
#define V3_NOW		1700000000LL

static int
v3profile(void **ctx, const char *url)
{
	th_wx3_conf(&cv, payhook_provider(), "test3", V3_APPID, V3_MCHID,
	    V3_KEY, V3_PUB_ID, V3_SERIAL);
	th_conf_str(&cv, "refund_notify_url", url);
	return th_profile_new(payhook_provider(), &cv, ctx, &d);
}

/* ---- bills ---------------------------------------------------------------- */

/* TV-8, the official downloadbill example (doc/design/protocols.md §7). */
static const char *const tv8[] = {
	"交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,"
	"用户标识,交易类型,交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,"
	"微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,"
	"退款状态,商品名称,商户数据包,手续费,费率",
	"`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,"
	"`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,"
	"`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,"
	"`被扫支付测试,`订单额外描述,`0,`0.60%",
	"`2014-11-10 16:46:14,`wx2421b1c4370ec43b,`10000100,`0,`1000,"
	"`1002780740201411100005729794,`1415635270,`085e9858e90ca40c0b5aee463,"
	"`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,"
	"`被扫支付测试,`订单额外描述,`0,`0.60%",
	"总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额",
	"`2,`0.02,`0.0,`0.0,`0",
	NULL
};

struct bill_run {
	int rc;			/* of the first failing call, or of the end */
	uint64_t fail_line;	/* 0: the end, else the line refused */
	size_t nev;
	struct ph_event ev[8];	/* the first facts */
	struct ph_statement st;
	char msg[PH_DIAG_MAX];
};

/*
 * Feeds lines (NULL-terminated) one at a time, each copied into its own
 * buffer with terminator as given, then the end.
 */
static void
bill(void *ctx, const char *const *lines, const char *term, int bom,
    struct bill_run *r)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_event ev;
	char buf[4096];
	size_t i, n;

	memset(r, 0, sizeof(*r));
	for (i = 0; lines[i] != NULL; i++) {
		n = (size_t)snprintf(buf, sizeof(buf), "%s%s%s",
		    bom && i == 0 ? "\xef\xbb\xbf" : "", lines[i], term);
		r->st.line++;
		d.msg[0] = '\0';
		if ((r->rc = p->statement_line(ctx, &r->st, buf, n, &ev,
		    &d)) != PH_OK) {
			r->fail_line = r->st.line;
			snprintf(r->msg, sizeof(r->msg), "%s", d.msg);
			return;
		}
		if (ev.kind != PH_EV_IGNORED && r->nev < 8)
			r->ev[r->nev++] = ev;
	}
	d.msg[0] = '\0';
	r->rc = p->statement_line(ctx, &r->st, NULL, 0, &ev, &d);
	snprintf(r->msg, sizeof(r->msg), "%s", d.msg);
}

/* The first row of TV-8 with its 交易时间, 交易状态, 总金额 and 商品名称
 * as given. */
#define TV8_ROW1(time, state, amount, goods) \
	"`" time ",`wx2421b1c4370ec43b,`10000100,`0,`1000," \
	"`1001690740201411100005734289,`1415640626," \
	"`085e9858e3ba5186aafcbaed1,`MICROPAY,`" state ",`OTHERS,`CNY,`" \
	amount ",`0.0,`0,`0,`0,`0,`,`,`" goods ",`订单额外描述,`0,`0.60%"

/* The summary of TV-8 changed. */
static const struct th_row_case summary_bad[] = {
	{ 4, "`3,`0.02,`0.0,`0.0,`0", PH_E_MALFORMED, 0, "row count", NULL,
	    "summary count 3 for 2 rows: refused at the end" },
	{ 4, "`2,`0.03,`0.0,`0.0,`0", PH_E_MALFORMED, -1, "total amount",
	    NULL, "summary total 0.03 for 0.02: refused" },
	{ 4, "`2,`0.02,`0.01,`0.0,`0", PH_E_MALFORMED, -1, NULL, NULL,
	    "summary refund total off: refused" },
	{ 4, "`2,`0.02,`0.0,`0.0", PH_E_MALFORMED, 5, NULL, NULL,
	    "summary line shorter than its header: refused, line 5" },
	{ 4, "`2,`0.0x,`0.0,`0.0,`0", PH_E_MALFORMED, 5, NULL, NULL,
	    "summary amount not a number: refused" },
	{ 3, "总交易额,总退款金额", PH_E_MALFORMED, 4, NULL, NULL,
	    "summary header without 总交易单数: refused" },
	{ 3, "总交易单数,总交易额,总退款金额,总交易额,手续费总金额",
	    PH_E_MALFORMED, 4, "line 4: summary column 4 repeats a name",
	    NULL, "summary header naming 总交易额 twice: refused, column 4" },
	{ 3, "总交易单数,总交易额,总退款金额,应结订单总金额,手续费总金额",
	    PH_E_MALFORMED, 4, "summary column 4 totals a column the header "
	    "lacks", NULL, "summary of 应结订单金额, a column TV-8 has not: "
	    "refused" },
};

/* A line of TV-8 changed. */
static const struct th_row_case row_bad[] = {
	{ 2, "`2014-11-10 16:46:14,`wx2421b1c4370ec43b,`10000100,`0,`1000,"
	    "`1002780740201411100005729794,`1415635270", PH_E_MALFORMED, 3,
	    "line 3:", NULL, "a row with 7 fields: refused naming line 3" },
	{ 1, TV8_ROW1("2014-11-10 16:33:45", "SUCCESS", "0.001",
	    "被扫支付测试"), PH_E_MALFORMED, -1, "line 2:", NULL,
	    "an amount with three decimals: refused naming line 2" },
	{ 1, "2014-11-10 16:33:45,wx2421b1c4370ec43b", PH_E_MALFORMED, 2,
	    NULL, NULL, "a row without back-ticks (read as the summary "
	    "header): refused" },
	{ 1, TV8_ROW1("2014-11-10 16:33:45", "NOTPAY", "0.01",
	    "被扫支付测试"), PH_E_MALFORMED, -1, "line 2:", "NOTPAY",
	    "交易状态 NOTPAY: refused, named" },
	{ 1, TV8_ROW1("2014-11-10 16:33:45", "SUCCESS", "0.01",
	    "被扫支付测试"), PH_OK, -1, NULL, NULL,
	    "(the same row as it was: read)" },
	{ 1, TV8_ROW1("2014-11-31 16:33:45", "SUCCESS", "0.01",
	    "被扫支付测试"), PH_E_MALFORMED, -1, "time", NULL,
	    "30 days hath November: 交易时间 refused" },
	{ 1, TV8_ROW1("2014-11-10 16:33:45", "SUCCESS", "0.01",
	    "被扫支付,测试"), PH_OK, -1, NULL, NULL,
	    "a comma inside 商品名称 does not split it" },
	{ 0, "交易时间,公众账号ID,商户号,微信订单号", PH_E_MALFORMED, 1, NULL,
	    NULL, "a header without 商户订单号: refused at line 1" },
	{ 0, "交易时间,公众账号ID,商户号,子商户号,特约商户号,微信订单号,"
	    "商户订单号", PH_E_MALFORMED, 1, "line 1: column 5 repeats a "
	    "column name", NULL, "a header naming the sub-merchant twice: "
	    "refused, column 5" },
	{ 2, "", PH_E_MALFORMED, 3, NULL, NULL,
	    "an empty line among the rows: refused" },
};

static int64_t
bj(const char *compact)
{
	int64_t t = 0;

	ph_time_parse_compact(compact, 28800, &t);
	return t;
}

static void
test_tv8(void)
{
	struct bill_run r;
	void *ctx = NULL, *other = NULL;

	ok(v2profile(&ctx, APPID, MCH_ID, KEY_MD5, NULL, NULL) == PH_OK,
	    "bill: profile");
	bill(ctx, tv8, "", 0, &r);
	is_int(r.rc, PH_OK, "TV-8: read to the end");
	is_int(r.nev, 2, "TV-8: 2 records");
	is_int(r.st.facts, 2, "TV-8: st->facts 2");
	is_int(r.st.total, 2, "TV-8: st->total 2 fen (0.02 yuan)");
	is_int(r.ev[0].kind, PH_EV_PAYMENT_SUCCEEDED, "TV-8 row 1: payment");
	is_str(r.ev[0].order_id, "1415640626", "TV-8 row 1: order id");
	is_str(r.ev[0].txn_id, "1001690740201411100005734289",
	    "TV-8 row 1: transaction id");
	is_int(r.ev[0].amount, 1, "TV-8 row 1: 0.01 yuan is 1 fen");
	is_str(r.ev[0].currency, "CNY", "TV-8 row 1: currency");
	is_int(r.ev[0].occurred_at, bj("20141110163345"),
	    "TV-8 row 1: 交易时间 in Beijing time");
	is_int(r.ev[0].occurred_at, 1415608425LL,
	    "TV-8 row 1: 2014-11-10 16:33:45 +08:00 is 1415608425");
	is_str(r.ev[0].dedup_key, "pay:1001690740201411100005734289",
	    "TV-8 row 1: the dedup key of the payment's notification");
	is_str(r.ev[1].order_id, "1415635270", "TV-8 row 2: order id");
	is_str(r.ev[1].dedup_key, "pay:1002780740201411100005729794",
	    "TV-8 row 2: dedup key");
	ok(r.ev[0].refund_id[0] == '\0' &&
	    r.ev[0].merchant_refund_id[0] == '\0', "TV-8: no refund ids");

	/* The core hands lines over without their terminator; a core that
	 * removed only the LF of a CRLF leaves a CR, which is read as one. */
	bill(ctx, tv8, "\r", 1, &r);
	ok(r.rc == PH_OK && r.nev == 2 && r.st.total == 2 &&
	    strcmp(r.ev[1].txn_id, "1002780740201411100005729794") == 0,
	    "TV-8 with a UTF-8 BOM and CRLF: the same");
	bill(ctx, tv8, "\r", 0, &r);
	is_int(r.rc, PH_OK, "lines handed over with a stray CR: read");

	/* The second row another app's of the same merchant account (a
	 * Mini Program beside the Official Account): not this profile's
	 * fact, but counted toward the summary. */
	bill(ctx, th_variant(tv8, 2, "`2014-11-10 16:46:14,`wx0000000000000002,"
	    "`10000100,`0,`1000,`1002780740201411100005729794,`1415635270,"
	    "`085e9858e90ca40c0b5aee463,`MICROPAY,`SUCCESS,`OTHERS,`CNY,"
	    "`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0,"
	    "`0.60%"), "", 0, &r);
	ok(r.rc == PH_OK && r.nev == 1 && strcmp(r.ev[0].order_id,
	    "1415640626") == 0, "a row of another appid on the same mch_id: "
	    "left to that app's profile, the summary still checked (rc %d, "
	    "%zu facts)", r.rc, r.nev);

	/* The summary, checked at the end. */
	is_statement_rows(payhook_provider(), ctx, tv8, summary_bad);

	/* Truncated: no summary. */
	bill(ctx, th_variant(th_variant(tv8, 4, NULL), 3, NULL), "", 0, &r);
	ok(r.rc == PH_E_MALFORMED && r.fail_line == 0 &&
	    strstr(r.msg, "truncated") != NULL,
	    "no summary: refused as truncated");
	bill(ctx, th_variant(tv8, 4, NULL), "", 0, &r);
	is_int(r.rc, PH_E_MALFORMED, "summary header without values: refused");

	/* Malformed lines are named. */
	is_statement_rows(payhook_provider(), ctx, tv8, row_bad);
	{
		const char *const more[] = { tv8[0], tv8[1], tv8[2], tv8[3],
		    tv8[4], "", "", NULL };
		const char *const after[] = { tv8[0], tv8[1], tv8[2], tv8[3],
		    tv8[4], "", "`1,`0.01", NULL };

		bill(ctx, more, "", 0, &r);
		is_int(r.rc, PH_OK, "empty lines after the summary: fine");
		bill(ctx, after, "", 0, &r);
		ok(r.rc == PH_E_MALFORMED && r.fail_line == 7,
		    "text after the summary: refused");
	}
	{
		const char *const none[] = { NULL };

		bill(ctx, none, "", 0, &r);
		is_int(r.rc, PH_E_MALFORMED, "an empty file: refused");
	}

	/* Another merchant's bill must not be reconciled against ours. */
	ok(v2profile(&other, APPID2, MCH_ID2, KEY_HMAC, "HMAC-SHA256",
	    NULL) == PH_OK, "bill: second profile");
	bill(other, tv8, "", 0, &r);
	ok(r.rc == PH_E_MERCHANT && r.fail_line == 2,
	    "TV-8 read by a profile of mch_id 10000200: refused");
	diag("%s", r.msg);
	payhook_provider()->profile_free(other);
	payhook_provider()->profile_free(ctx);
}

/* The 2018 settlement layout, with refunds and rows that are no facts. */
static const char *const settle[] = {
	"\xef\xbb\xbf交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,"
	"商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,"
	"代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,"
	"退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注",
	/* a payment of 25.00 with a 5.00 coupon: settles 20.00 */
	"`2026-11-30 09:00:01,`wx2421b1c4370ec43b,`10000100,`,`,"
	"`4200000000202611300000000001,`ORDER-1,`oX,`JSAPI,`SUCCESS,`CFT,`CNY,"
	"`20.00,`5.00,`0,`0,`0.00,`0.00,`,`,`T恤,`,`0.12000,`0.60%,`25.00,"
	"`0.00,`",
	/* its refund of 10.00, asked by payhook as phr0000000000003 */
	"`2026-11-30 10:00:00,`wx2421b1c4370ec43b,`10000100,`,`,"
	"`4200000000202611300000000001,`ORDER-1,`oX,`JSAPI,`REFUND,`CFT,`CNY,"
	"`0.00,`0.00,`50000000002026113000000000001,`phr0000000000003,`10.00,"
	"`0.00,`ORIGINAL,`SUCCESS,`T恤,`,`-0.06000,`0.60%,`0.00,`10.00,`",
	/* a refund still processing: no fact yet */
	"`2026-11-30 11:00:00,`wx2421b1c4370ec43b,`10000100,`,`,"
	"`4200000000202611300000000001,`ORDER-1,`oX,`JSAPI,`REFUND,`CFT,`CNY,"
	"`0.00,`0.00,`50000000002026113000000000002,`phr0000000000004,`1.00,"
	"`0.00,`ORIGINAL,`PROCESSING,`T恤,`,`-0.00600,`0.60%,`0.00,`1.00,`",
	/* a revoked micropay */
	"`2026-11-30 12:00:00,`wx2421b1c4370ec43b,`10000100,`,`,"
	"`4200000000202611300000000002,`ORDER-2,`oY,`MICROPAY,`REVOKED,`CFT,"
	"`CNY,`3.00,`0.00,`0,`0,`0.00,`0.00,`,`,`咖啡,`,`0.01800,`0.60%,"
	"`3.00,`0.00,`",
	"总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,"
	"订单总金额,申请退款总金额",
	"`4,`23.00,`11.00,`0.00,`0.07200,`28.00,`11.00",
	NULL
};

/* A line of the settlement bill changed. */
static const struct th_row_case settle_bad[] = {
	{ 6, "`4,`23.00,`11.00,`0.00,`0.07200,`28.00,`10.00", PH_E_MALFORMED,
	    -1, "requested refund", NULL, "申请退款总金额 off: refused" },
	{ 6, "`4,`23.01,`11.00,`0.00,`0.07200,`28.00,`11.00", PH_E_MALFORMED,
	    -1, "settlement", NULL, "应结订单总金额 off: refused" },
	{ 6, "`4,`23.00,`11.00,`0.00,`9.99000,`28.00,`11.00", PH_E_MALFORMED,
	    -1, "fee", NULL, "手续费总金额 off: refused" },
	{ 6, "`4,`23.00,`11.00,`0.00,`0.07201,`28.00,`11.00", PH_E_MALFORMED,
	    -1, "fee", NULL, "手续费总金额 off by a thousandth of a fen: "
	    "refused" },
	{ 6, "`4,`23.00,`11.00,`7.77,`0.07200,`28.00,`11.00", PH_E_MALFORMED,
	    -1, "coupon refund", NULL, "充值券退款总金额 off: refused" },
	{ 1, "`2026-11-30 09:00:01,`wx2421b1c4370ec43b,`10000100,`,`,"
	    "`4200000000202611300000000001,`ORDER-1,`oX,`JSAPI,`SUCCESS,`CFT,"
	    "`CNY,`20.00,`5.00,`0,`0,`0.00,`0.00,`,`,`T恤,`,`0.120001,`0.60%,"
	    "`25.00,`0.00,`", PH_E_MALFORMED, 2, NULL, NULL,
	    "a fee of six decimals: refused" },
	{ 3, "`2026-11-30 11:00:00,`wx2421b1c4370ec43b,`10000100,`,`,"
	    "`4200000000202611300000000001,`ORDER-1,`oX,`JSAPI,`REFUND,`CFT,"
	    "`CNY,`0.00,`0.00,`50000000002026113000000000002,"
	    "`phr0000000000004,`1.00,`0.00,`ORIGINAL,`LOST,`T恤,`,`-0.00600,"
	    "`0.60%,`0.00,`1.00,`", PH_E_MALFORMED, 4, NULL, NULL,
	    "退款状态 unknown: refused, line 4" },
	{ 1, "`2026-11-30 09:00:01,`wx2421b1c4370ec43b,`10000100,`1900000109,"
	    "`,`4200000000202611300000000001,`ORDER-1,`oX,`JSAPI,`SUCCESS,"
	    "`CFT,`CNY,`20.00,`5.00,`0,`0,`0.00,`0.00,`,`,`T恤,`,`0.12000,"
	    "`0.60%,`25.00,`0.00,`", PH_E_MERCHANT, 2, NULL, NULL,
	    "a sub-merchant's row: refused" },
};

static void
test_settlement(void)
{
	struct bill_run r;
	void *ctx = NULL;

	ok(v2profile(&ctx, APPID, MCH_ID, KEY_MD5, NULL, NULL) == PH_OK,
	    "settlement: profile");
	bill(ctx, settle, "\r", 0, &r);
	is_int(r.rc, PH_OK, "settlement layout: read to the end");
	diag("%s", r.msg);
	is_int(r.nev, 2, "... a payment and a refund (PROCESSING and REVOKED "
	    "rows are no facts)");
	is_int(r.st.facts, 2, "... st->facts");
	is_int(r.st.total, 3500, "... st->total 25.00 + 10.00");
	is_int(r.ev[0].kind, PH_EV_PAYMENT_SUCCEEDED, "payment row");
	is_int(r.ev[0].amount, 2500, "... amount is 订单金额, not 应结订单金额");
	is_str(r.ev[0].order_id, "ORDER-1", "... order id");
	is_refund(&r.ev[1], "refund row", "50000000002026113000000000001",
	    "phr0000000000003", "4200000000202611300000000001");
	is_str(r.ev[1].order_id, "ORDER-1", "... order id");
	is_int(r.ev[1].amount, 1000, "... amount is 申请退款金额");
	is_int(r.ev[1].occurred_at, bj("20261130100000"), "... time");
	is_str(r.ev[1].dedup_key,
	    "refund:50000000002026113000000000001:SUCCESS",
	    "... the dedup key of the refund's notification");

	is_statement_rows(payhook_provider(), ctx, settle, settle_bad);
	payhook_provider()->profile_free(ctx);
}

/* Many rows, streamed: state stays in struct ph_statement. */
static void
test_stream(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_statement st;
	struct ph_event ev;
	char line[512];
	void *ctx = NULL;
	uint64_t i, n = 100000, facts = 0;
	int rc = PH_OK, len;

	ok(v2profile(&ctx, APPID, MCH_ID, KEY_MD5, NULL, NULL) == PH_OK,
	    "stream: profile");
	memset(&st, 0, sizeof(st));
	st.line = 1;
	rc = p->statement_line(ctx, &st, tv8[0], strlen(tv8[0]), &ev, &d);
	for (i = 0; i < n && rc == PH_OK; i++) {
		len = snprintf(line, sizeof(line), "`2026-11-30 %02d:%02d:%02d,"
		    "`wx2421b1c4370ec43b,`10000100,`0,`,`42000000002026113%011llu,"
		    "`O%llu,`o,`JSAPI,`SUCCESS,`CFT,`CNY,`%llu.%02llu,`0.00,`0,"
		    "`0,`0,`0,`,`,`x,`,`0,`0.60%%", (int)(i / 3600 % 24),
		    (int)(i / 60 % 60), (int)(i % 60), (unsigned long long)i,
		    (unsigned long long)i, (unsigned long long)(i % 1000),
		    (unsigned long long)(i % 100));
		st.line++;
		rc = p->statement_line(ctx, &st, line, (size_t)len, &ev, &d);
		if (ev.kind == PH_EV_PAYMENT_SUCCEEDED)
			facts++;
	}
	is_int(rc, PH_OK, "100000 rows read one at a time");
	is_int(facts, n, "... each one a payment");
	/* sum of i%1000 yuan + i%100 fen over 0..99999 */
	len = snprintf(line, sizeof(line), "`%llu,`%lld.%02lld,`0,`0,`0",
	    (unsigned long long)n, (long long)(st.total / 100),
	    (long long)(st.total % 100));
	st.line++;
	rc = p->statement_line(ctx, &st, "总交易单数,总交易额,总退款金额,"
	    "总代金券或立减优惠退款金额,手续费总金额", strlen("总交易单数,总交易额,"
	    "总退款金额,总代金券或立减优惠退款金额,手续费总金额"), &ev, &d);
	st.line++;
	if (rc == PH_OK)
		rc = p->statement_line(ctx, &st, line, (size_t)len, &ev, &d);
	if (rc == PH_OK)
		rc = p->statement_line(ctx, &st, NULL, 0, &ev, &d);
	is_int(rc, PH_OK, "... and the summary agrees");
	is_int(st.total, 49950000LL * 100 + 4950000LL, "... st->total");
	ok(wxb_state_size <= PH_STATEMENT_STATE_MAX,
	    "the parser's state fits in ph_statement.state");
	p->profile_free(ctx);
}

/* ---- refund requests ------------------------------------------------------ */

static struct ph_call_ctx cc;

static void
mkcc(int64_t now)
{
	th_call_ctx(&cc, now, 0);
}

static struct ph_refund_ref
mkref(const char *order, const char *txn, const char *rid, int64_t amount,
    int64_t paid, const char *reason)
{
	struct ph_refund_ref r;

	memset(&r, 0, sizeof(r));
	r.order_id = order;
	r.txn_id = txn;
	r.refund_id = rid;
	r.amount = amount;
	r.payment_amount = paid;
	r.currency = "CNY";
	r.reason = reason;
	r.attempt = "";
	return r;
}

/* The MD5 profile and the refund the v2 tests ask about (A1415640626's
 * 50 of 100, phr0000000000007); the profile's context. */
static void *
v2_refund(struct ph_refund_ref *r, const char *what)
{
	void *ctx = NULL;

	mkcc(1700000000);
	ok(v2profile(&ctx, APPID, MCH_ID, KEY_MD5, NULL, NULL) == PH_OK,
	    "%s: MD5 profile", what);
	*r = mkref("A1415640626", "4200000215201811190261405420",
	    "phr0000000000007", 50, 100, "duplicate payment");
	return ctx;
}

static void
test_v2_requests(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_http_request req;
	struct ph_refund_ref r;
	void *ctx = NULL, *hm = NULL;
	static char long_reason[100];
	/* Reasons WeChat would refuse, or none: no refund_desc is sent. */
	const struct {
		const char *reason, *what;
	} unsent[] = {
		{ long_reason, "a reason over 80 bytes is not sent" },
		{ "line\nbreak", "a reason with a control character is not "
		    "sent" },
		{ "\xe9\x87", "a reason cut inside a UTF-8 character is not "
		    "sent" },
		{ "", "no reason, no refund_desc" },
	};
	size_t i;

	ctx = v2_refund(&r, "refund");
	is_int(p->refund_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "v2 refund request built");
	is_str(req.method, "POST", "... POST");
	is_str(req.path, "/secapi/pay/refund", "... to /secapi/pay/refund");
	is_str(req.content_type, "text/xml", "... text/xml");
	is_int(req.nheaders, 0, "... no extra headers (the client "
	    "certificate is the core's)");
	ok(th_req_body_is(&req, "<xml><appid><![CDATA[wx2421b1c4370ec43b]]></appid>"
	    "<mch_id><![CDATA[10000100]]></mch_id><nonce_str><![CDATA["
	    "000102030405060708090a0b0c0d0e0f]]></nonce_str><transaction_id>"
	    "<![CDATA[4200000215201811190261405420]]></transaction_id>"
	    "<out_refund_no><![CDATA[phr0000000000007]]></out_refund_no>"
	    "<total_fee><![CDATA[100]]></total_fee><refund_fee><![CDATA[50]]>"
	    "</refund_fee><refund_desc><![CDATA[duplicate payment]]>"
	    "</refund_desc><sign><![CDATA[E35D2F33EAE99454E65D722A9077199D]]>"
	    "</sign></xml>"),
	    "... byte for byte (MD5, signed independently)");
	diag("%.*s", (int)req.body_len, (const char *)req.body);

	ok(v2profile(&hm, APPID2, MCH_ID2, KEY_HMAC, "HMAC-SHA256",
	    "https://shop.example/notify/wxhmac") == PH_OK,
	    "refund: HMAC profile with refund_notify_url");
	r = mkref("B2", "4200000215201811190261405421", "phr0000000000008",
	    2500, 2500, "重复支付退款");
	is_int(p->refund_request(hm, &r, &cc, &req, &d), PH_OK,
	    "v2 HMAC-SHA256 refund request built");
	ok(th_req_body_is(&req, "<xml><appid><![CDATA[wxd930ea5d5a258f4f]]></appid>"
	    "<mch_id><![CDATA[10000200]]></mch_id><nonce_str><![CDATA["
	    "000102030405060708090a0b0c0d0e0f]]></nonce_str><sign_type>"
	    "<![CDATA[HMAC-SHA256]]></sign_type><transaction_id><![CDATA["
	    "4200000215201811190261405421]]></transaction_id><out_refund_no>"
	    "<![CDATA[phr0000000000008]]></out_refund_no><total_fee><![CDATA["
	    "2500]]></total_fee><refund_fee><![CDATA[2500]]></refund_fee>"
	    "<refund_desc><![CDATA[重复支付退款]]></refund_desc><notify_url>"
	    "<![CDATA[https://shop.example/notify/wxhmac]]></notify_url><sign>"
	    "<![CDATA[7D97853296A3C970891AD388D41055A80541DFB9FCD29D69A8B491DE"
	    "F680D0B5]]></sign></xml>"),
	    "... byte for byte (sign_type, notify_url, a Chinese reason)");

	/* What is not sent, and what is refused. */
	memset(long_reason, 'x', 81);
	r = mkref("A1", "4200000215201811190261405420", "phr0000000000007",
	    50, 100, long_reason);
	for (i = 0; i < sizeof(unsent) / sizeof(unsent[0]); i++) {
		r.reason = unsent[i].reason;
		ok(p->refund_request(ctx, &r, &cc, &req, &d) == PH_OK &&
		    strstr((const char *)req.body, "refund_desc") == NULL,
		    "%s", unsent[i].what);
	}
	r.currency = "HKD";
	ok(p->refund_request(ctx, &r, &cc, &req, &d) == PH_OK &&
	    strstr((const char *)req.body, "<refund_fee_type><![CDATA[HKD]]>")
	    != NULL, "a currency other than CNY is named (refund_fee_type)");
	r.currency = "CNY";
	r.amount = 101;
	ok(p->refund_request(ctx, &r, &cc, &req, &d) == PH_E_FIELD &&
	    req.body_len == 0, "more than the payment: refused, nothing built");
	r.amount = 0;
	is_int(p->refund_request(ctx, &r, &cc, &req, &d), PH_E_FIELD,
	    "a refund of 0: refused");
	r.amount = 50;
	r.refund_id = "phr 1";
	is_int(p->refund_request(ctx, &r, &cc, &req, &d), PH_E_FIELD,
	    "a refund id WeChat would not take: refused");
	r.refund_id = "phr0000000000007";
	r.txn_id = "";
	is_int(p->refund_request(ctx, &r, &cc, &req, &d), PH_E_FIELD,
	    "no transaction id: refused");
	p->profile_free(hm);
	p->profile_free(ctx);
}

/* ---- v2 refund answers ------------------------------------------------- */

/* Fields of an answer: a refundquery may list 50 refunds of ~10 each. */
#define KVS_MAX	640

struct kvs {
	const char *k[KVS_MAX];
	const char *v[KVS_MAX];
	size_t n;
};

static void
kv(struct kvs *s, const char *k, const char *v)
{
	if (s->n == KVS_MAX)
		abort();
	s->k[s->n] = k;
	s->v[s->n] = v;
	s->n++;
}

/* Sets the value of key k, which s has. */
static void
kv_set(struct kvs *s, const char *k, const char *v)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->k[i], k) == 0)
			s->v[i] = v;
}

/* A plain MD5 v2 signature, sorted by insertion sort. */
static void
md5sign(const struct kvs *s, const char *key, char out[33])
{
	static size_t idx[KVS_MAX];
	static char buf[128 * 1024];
	size_t i, j, t;
	size_t n = 0;
	unsigned char md[16];

	for (i = 0; i < s->n; i++)
		idx[i] = i;
	for (i = 1; i < s->n; i++)
		for (j = i; j > 0 && strcmp(s->k[idx[j - 1]], s->k[idx[j]]) > 0;
		    j--) {
			t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	for (i = 0; i < s->n; i++) {
		if (s->v[idx[i]][0] == '\0' || strcmp(s->k[idx[i]], "sign") == 0)
			continue;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s=%s",
		    n ? "&" : "", s->k[idx[i]], s->v[idx[i]]);
	}
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "&key=%s", key);
	EVP_Digest(buf, n, md, NULL, EVP_md5(), NULL);
	for (i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02X", md[i]);
}

static size_t
render(const struct kvs *s, char *out, size_t cap)
{
	size_t i, n = 0;

	n += (size_t)snprintf(out + n, cap - n, "<xml>");
	for (i = 0; i < s->n; i++)
		n += (size_t)snprintf(out + n, cap - n, "<%s><![CDATA[%s]]></%s>",
		    s->k[i], s->v[i], s->k[i]);
	n += (size_t)snprintf(out + n, cap - n, "</xml>");
	return n;
}

static char answer_buf[128 * 1024];
static struct ph_http_response answer;

static void
answer_of(const struct kvs *s, int signed_, int status)
{
	static char sig[33];
	struct kvs t = *s;

	if (signed_) {
		md5sign(&t, KEY_MD5, sig);
		kv(&t, "sign", sig);
	}
	th_answer(&answer, status, answer_buf,
	    render(&t, answer_buf, sizeof(answer_buf)), 1700000000);
}

static void
refund_head(struct kvs *s, const char *result)
{
	memset(s, 0, sizeof(*s));
	kv(s, "return_code", "SUCCESS");
	kv(s, "return_msg", "OK");
	kv(s, "appid", APPID);
	kv(s, "mch_id", MCH_ID);
	kv(s, "nonce_str", "NfsMFbUFpdbEhPXP");
	kv(s, "result_code", result);
}

/* A SUCCESS answer's head and the payment the tests' refund is of. */
static void
refund_payment(struct kvs *s)
{
	refund_head(s, "SUCCESS");
	kv(s, "transaction_id", "4200000215201811190261405420");
	kv(s, "out_trade_no", "A1415640626");
}

static void
refund_ok(struct kvs *s)
{
	refund_payment(s);
	kv(s, "out_refund_no", "phr0000000000007");
	kv(s, "refund_id", "50000408942018111907145868882");
	kv(s, "refund_channel", "");
	kv(s, "refund_fee", "50");
	kv(s, "coupon_refund_fee", "0");
	kv(s, "total_fee", "100");
	kv(s, "cash_fee", "100");
	kv(s, "coupon_refund_count", "0");
	kv(s, "cash_refund_fee", "50");
}

/* A FAIL answer with err_code code and, unless NULL, err_code_des des,
 * signed. */
static void
refund_fail(struct kvs *s, const char *code, const char *des)
{
	refund_head(s, "FAIL");
	kv(s, "err_code", code);
	if (des != NULL)
		kv(s, "err_code_des", des);
	answer_of(s, 1, 200);
}

static void
test_v2_answers(void)
{
	/* A field of a SUCCESS answer changed: refused. */
	static const struct {
		const char *key, *value, *what;
	} other[] = {
		{ "out_refund_no", "phr0000000000009",
		    "another out_refund_no: refused" },
		{ "refund_fee", "5x", "a refund_fee that is no amount: "
		    "refused" },
		{ "out_trade_no", "B2", "another order: refused" },
	};
	/* A FAIL answer to ask again later, the diagnostic naming msg
	 * (NULL: not checked). */
	static const struct {
		const char *code, *des, *msg, *what;
	} retry[] = {
		{ "SYSTEMERROR", "System Error", "SYSTEMERROR",
		    "SYSTEMERROR: ask again later with the same id" },
		{ "BIZERR_NEED_RETRY", NULL, NULL,
		    "BIZERR_NEED_RETRY: ask again later" },
		{ "NOTENOUGH", NULL, NULL,
		    "NOTENOUGH (balance): ask again later" },
	};
	const struct ph_provider *p = payhook_provider();
	struct ph_refund_ref r;
	struct ph_event ev;
	struct kvs s;
	void *ctx = NULL;
	size_t i;

	ctx = v2_refund(&r, "answers");

	refund_ok(&s);
	answer_of(&s, 1, 200);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_OK,
	    "SUCCESS answer read");
	is_int(ev.kind, PH_EV_PAYMENT_PENDING,
	    "... accepted: the result comes by notification");
	is_str(ev.merchant_refund_id, "phr0000000000007",
	    "... merchant refund id is ours");
	is_str(ev.refund_id, "50000408942018111907145868882",
	    "... WeChat's refund id");
	is_str(ev.txn_id, "4200000215201811190261405420", "... transaction");
	is_str(ev.order_id, "A1415640626", "... order");
	is_int(ev.amount, 50, "... amount");

	answer_of(&s, 0, 200);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_SIGNATURE,
	    "an unsigned SUCCESS: refused");
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		refund_ok(&s);
		kv_set(&s, other[i].key, other[i].value);
		answer_of(&s, 1, 200);
		is_int(p->refund_response(ctx, &r, &answer, &ev, &d),
		    PH_E_FIELD, "%s", other[i].what);
	}
	refund_ok(&s);
	kv_set(&s, "refund_fee", "51");
	answer_of(&s, 1, 200);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_PAYMENT_PENDING && ev.amount == 51,
	    "another refund_fee: the amount WeChat reports, for the core to "
	    "match");
	refund_ok(&s);
	kv(&s, "refund_status", "SUCCESS");
	answer_of(&s, 1, 200);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_SUCCEEDED,
	    "an answer carrying refund_status SUCCESS: refund succeeded");
	refund_ok(&s);
	answer_of(&s, 1, 500);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_PROVIDER,
	    "HTTP 500: ask again later");

	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
		refund_fail(&s, retry[i].code, retry[i].des);
		ok(p->refund_response(ctx, &r, &answer, &ev, &d) ==
		    PH_E_PROVIDER && (retry[i].msg == NULL ||
		    strstr(d.msg, retry[i].msg) != NULL), "%s", retry[i].what);
	}
	refund_fail(&s, "TRADE_OVERDUE", "订单已经超过退款期限");
	memset(&d, 0, sizeof(d));
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_FAILED &&
	    strcmp(ev.merchant_refund_id, "phr0000000000007") == 0 &&
	    ev.amount == 50, "TRADE_OVERDUE: refund failed for good");
	ok(strstr(d.msg, "TRADE_OVERDUE") != NULL, "... saying why in diag: "
	    "%s", d.msg);
	answer_of(&s, 0, 200);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_SIGNATURE,
	    "... but not unsigned");
	memset(&s, 0, sizeof(s));
	kv(&s, "return_code", "FAIL");
	kv(&s, "return_msg", "证书错误");
	answer_of(&s, 0, 200);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_PROVIDER,
	    "return_code FAIL (e.g. no client certificate): ask later");
	p->profile_free(ctx);
}

/* ---- v3 refunds ---------------------------------------------------------- */

static EVP_PKEY *tv3;

static EVP_PKEY *
load_priv(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

	BIO_free(b);
	return k;
}

static int
rsa_verify_b64(const char *msg, size_t len, const char *sig64)
{
	unsigned char sig[512];
	size_t n = 0;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int okv;

	if (ph_base64_decode(sig64, strlen(sig64), sig, sizeof(sig), &n) !=
	    PH_OK)
		return 0;
	okv = EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, tv3) == 1 &&
	    EVP_DigestVerify(m, sig, n, (const unsigned char *)msg, len) == 1;
	EVP_MD_CTX_free(m);
	return okv;
}

/* Whether req's Authorization signature verifies over method, path,
 * the test's time and nonce and body, as WeChat Pay checks it. */
static int
signed_over(const struct ph_http_request *req, const char *method,
    const char *path, const char *body)
{
	const char *auth = th_req_header(req, "Authorization"), *sig;
	char msg[4096], sigbuf[1024];
	size_t n;
	int m;

	if (auth == NULL || (sig = strstr(auth, "signature=\"")) == NULL)
		return 0;
	sig += strlen("signature=\"");
	n = strcspn(sig, "\"");
	snprintf(sigbuf, sizeof(sigbuf), "%.*s", (int)n, sig);
	m = snprintf(msg, sizeof(msg), "%s\n%s\n1700000000\n"
	    "000102030405060708090A0B0C0D0E0F\n%s\n", method, path, body);
	return n > 0 && rsa_verify_b64(msg, (size_t)m, sigbuf);
}

static struct th_wx3_answer v3;

/* An answer of WeChat Pay, signed with the platform key when signed_. */
static void
v3answer(int status, const char *body, int signed_)
{
	th_wx3_answer(&v3, tv3, V3_PUB_ID, status, body, V3_NOW);
	if (!signed_)
		v3.h[2].value = "WECHATPAY/SIGNTEST/AAAA";
	answer = v3.in;
}

static void
test_v3(void)
{
	const struct ph_provider *p = payhook_provider();
	static const char want[] = "{\"transaction_id\":"
	    "\"4200000991202103266853086457\",\"out_refund_no\":"
	    "\"phr0000000000011\",\"reason\":\"duplicate payment\","
	    "\"notify_url\":\"https://shop.example/notify/wx3\",\"amount\":"
	    "{\"refund\":1,\"total\":1,\"currency\":\"CNY\"}}";
	struct ph_http_request req;
	struct ph_refund_ref r;
	struct ph_event ev;
	const char *auth;
	void *ctx = NULL;

	tv3 = load_priv(th_tv3_priv_pem);
	mkcc(V3_NOW);
	ok(v3profile(&ctx, "https://shop.example/notify/wx3") == PH_OK,
	    "v3 profile with merchant key and refund_notify_url");
	diag("%s", d.msg);
	r = mkref("sdk12345678920210326145039", "4200000991202103266853086457",
	    "phr0000000000011", 1, 1, "duplicate payment");
	is_int(p->refund_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "v3 refund request built");
	is_str(req.method, "POST", "... POST");
	is_str(req.path, "/v3/refund/domestic/refunds",
	    "... /v3/refund/domestic/refunds");
	is_str(req.content_type, "application/json", "... JSON");
	ok(th_req_body_is(&req, want), "... body byte for byte");
	diag("%.*s", (int)req.body_len, (const char *)req.body);
	is_str(th_req_header(&req, "Accept"), "application/json", "... Accept");
	auth = th_req_header(&req, "Authorization");
	ok(auth != NULL && strncmp(auth, "WECHATPAY2-SHA256-RSA2048 "
	    "mchid=\"1230000109\",nonce_str=\"000102030405060708090A0B0C0D0E0F"
	    "\",signature=\"", 96) == 0 && strstr(auth, "\",timestamp=\""
	    "1700000000\",serial_no=\"" V3_SERIAL "\"") != NULL,
	    "... Authorization names mchid, nonce, timestamp, serial");
	ok(signed_over(&req, "POST", "/v3/refund/domestic/refunds", want),
	    "... its signature verifies over the five lines with the body");

	v3answer(200, "{\"amount\":{\"currency\":\"CNY\",\"discount_refund\":0,"
	    "\"payer_refund\":1,\"payer_total\":1,\"refund\":1,"
	    "\"settlement_refund\":1,\"settlement_total\":1,\"total\":1},"
	    "\"channel\":\"ORIGINAL\",\"create_time\":\"2021-03-26T14:52:08+08:00\","
	    "\"funds_account\":\"UNSETTLED\",\"out_refund_no\":\"phr0000000000011\","
	    "\"out_trade_no\":\"sdk12345678920210326145039\",\"promotion_detail\":"
	    "[],\"refund_id\":\"50001307732021032607480019805\",\"status\":"
	    "\"SUCCESS\",\"success_time\":\"2021-03-26T14:52:11+08:00\","
	    "\"transaction_id\":\"4200000991202103266853086457\","
	    "\"user_received_account\":\"支付用户零钱\"}", 1);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_SUCCEEDED &&
	    strcmp(ev.refund_id, "50001307732021032607480019805") == 0 &&
	    strcmp(ev.merchant_refund_id, "phr0000000000011") == 0 &&
	    ev.amount == 1, "v3 answer status SUCCESS: refund succeeded");
	diag("%s", d.msg);
	v3answer(200, "{\"amount\":{\"currency\":\"CNY\",\"refund\":1,"
	    "\"total\":1},\"out_refund_no\":\"phr0000000000011\",\"refund_id\":"
	    "\"50001307732021032607480019805\",\"status\":\"PROCESSING\","
	    "\"transaction_id\":\"4200000991202103266853086457\"}", 1);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_PAYMENT_PENDING,
	    "v3 answer PROCESSING: accepted, result later");
	v3answer(200, "{\"amount\":{\"currency\":\"CNY\",\"refund\":1,"
	    "\"total\":1},\"out_refund_no\":\"phr0000000000011\",\"refund_id\":"
	    "\"50001307732021032607480019805\",\"status\":\"PROCESSING\","
	    "\"transaction_id\":\"4200000991202103266853086457\"}", 0);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_SIGNATURE,
	    "... a signature probe is not an answer");
	v3answer(200, "{\"amount\":{\"currency\":\"CNY\",\"refund\":2,"
	    "\"total\":2},\"out_refund_no\":\"phr0000000000011\",\"refund_id\":"
	    "\"50001307732021032607480019805\",\"status\":\"SUCCESS\","
	    "\"transaction_id\":\"4200000991202103266853086457\"}", 1);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_SUCCEEDED && ev.amount == 2,
	    "v3 answer of another amount: the amount WeChat reports, for the "
	    "core to match");
	v3answer(200, "{\"amount\":{\"currency\":\"CNY\",\"refund\":1,"
	    "\"total\":1},\"out_refund_no\":\"phr0000000000011\",\"refund_id\":"
	    "\"50001307732021032607480019805\",\"status\":\"CLOSED\","
	    "\"transaction_id\":\"4200000991202103266853086457\"}", 1);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_FAILED, "v3 answer CLOSED: refund failed");
	v3answer(400, "{\"code\":\"INVALID_REQUEST\",\"message\":"
	    "\"订单已全额退款\"}", 1);
	memset(&d, 0, sizeof(d));
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_FAILED,
	    "v3 400 INVALID_REQUEST, signed: refund failed for good");
	ok(strstr(d.msg, "INVALID_REQUEST") != NULL, "... saying why in diag: "
	    "%s", d.msg);
	v3answer(400, "{\"code\":\"INVALID_REQUEST\",\"message\":"
	    "\"订单已全额退款\"}", 0);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_SIGNATURE,
	    "... unsigned: not believed");
	v3answer(500, "{\"code\":\"SYSTEM_ERROR\",\"message\":\"系统繁忙\"}", 1);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_E_PROVIDER &&
	    strstr(d.msg, "SYSTEM_ERROR") != NULL,
	    "v3 500 SYSTEM_ERROR: ask again later");
	v3answer(403, "{\"code\":\"NOT_ENOUGH\",\"message\":\"余额不足\"}", 1);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_PROVIDER,
	    "v3 403 NOT_ENOUGH: ask again later");
	p->profile_free(ctx);
	EVP_PKEY_free(tv3);
}

/* ---- a refund's query (ref->query) ----------------------------------------- */

/* A signed refundquery answer listing our refund with refund_status st
 * (SUCCESS: with its success time). */
static void
refundquery_ok(struct kvs *s, const char *st)
{
	refund_payment(s);
	kv(s, "total_fee", "100");
	kv(s, "cash_fee", "100");
	kv(s, "refund_count", "1");
	kv(s, "out_refund_no_0", "phr0000000000007");
	kv(s, "refund_id_0", "50000408942018111907145868882");
	kv(s, "refund_channel_0", "ORIGINAL");
	kv(s, "refund_fee_0", "50");
	kv(s, "refund_status_0", st);
	kv(s, "refund_recv_accout_0", "支付用户零钱");
	if (strcmp(st, "SUCCESS") == 0)
		kv(s, "refund_success_time_0", "2018-11-19 16:24:13");
}

static void
test_v2_query(void)
{
	/* refund_status of the refund listed and the event it makes. */
	static const struct {
		const char *status;
		enum ph_event_kind kind;
		const char *what;
	} states[] = {
		{ "PROCESSING", PH_EV_PAYMENT_PENDING,
		    "refundquery PROCESSING: still awaited" },
		{ "REFUNDCLOSE", PH_EV_REFUND_FAILED,
		    "refundquery REFUNDCLOSE: refund failed" },
		{ "CHANGE", PH_EV_REFUND_FAILED,
		    "refundquery CHANGE: refund failed (the money did not go "
		    "back)" },
	};
	/* A field of the listed refund or its payment changed: refused. */
	static const struct {
		const char *key, *value, *what;
	} other[] = {
		{ "out_refund_no_0", "phr0000000000009",
		    "refundquery listing another refund: refused" },
		{ "refund_fee_0", "", "refundquery without an amount: refused" },
		{ "transaction_id", "4200000215201811190261405421",
		    "refundquery of another payment: refused" },
		{ "refund_count", "", "refundquery without refund_count: "
		    "refused" },
		{ "refund_status_0", "SOMETHING", "refundquery with an unknown "
		    "refund_status: refused" },
		{ "refund_id_0", "", "refundquery without WeChat's refund id: "
		    "refused" },
	};
	const struct ph_provider *p = payhook_provider();
	struct ph_http_request req;
	struct ph_refund_ref r;
	struct ph_event ev;
	struct kvs s;
	char sig[33], want[1024];
	void *ctx = NULL;
	size_t i;

	ctx = v2_refund(&r, "refund query");
	r.query = 1;
	is_int(p->refund_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "v2 refund query built");
	is_str(req.method, "POST", "... POST");
	is_str(req.path, "/pay/refundquery", "... to /pay/refundquery");
	memset(&s, 0, sizeof(s));
	kv(&s, "appid", APPID);
	kv(&s, "mch_id", MCH_ID);
	kv(&s, "nonce_str", "000102030405060708090a0b0c0d0e0f");
	kv(&s, "out_refund_no", "phr0000000000007");
	md5sign(&s, KEY_MD5, sig);
	kv(&s, "sign", sig);
	render(&s, want, sizeof(want));
	ok(th_req_body_is(&req, want), "... appid, mch_id, nonce_str, "
	    "out_refund_no, sign: byte for byte (signed independently)");
	diag("%.*s", (int)req.body_len, (const char *)req.body);

	refundquery_ok(&s, "SUCCESS");
	answer_of(&s, 1, 200);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_SUCCEEDED,
	    "refundquery SUCCESS: refund succeeded");
	diag("%s", d.msg);
	is_str(ev.refund_id, "50000408942018111907145868882",
	    "... WeChat's refund id");
	is_str(ev.merchant_refund_id, "phr0000000000007", "... ours");
	is_int(ev.amount, 50, "... amount");
	is_int(ev.occurred_at, 1542615853, "... at refund_success_time_0 "
	    "(Beijing time)");
	ok(strstr(ev.dedup_key, "SUCCESS") != NULL, "... dedup key %s names "
	    "the state as the notification's does", ev.dedup_key);
	refundquery_ok(&s, "SUCCESS");
	kv_set(&s, "refund_fee_0", "51");
	answer_of(&s, 1, 200);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_SUCCEEDED && ev.amount == 51,
	    "refundquery of another amount: the amount WeChat reports, for "
	    "the core to match");
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		refundquery_ok(&s, states[i].status);
		answer_of(&s, 1, 200);
		ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
		    ev.kind == states[i].kind, "%s", states[i].what);
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		refundquery_ok(&s, "SUCCESS");
		kv_set(&s, other[i].key, other[i].value);
		answer_of(&s, 1, 200);
		is_int(p->refund_response(ctx, &r, &answer, &ev, &d),
		    PH_E_FIELD, "%s", other[i].what);
	}
	refundquery_ok(&s, "SUCCESS");
	answer_of(&s, 0, 200);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_SIGNATURE,
	    "an unsigned refundquery answer: refused");
	/* Ours the second of two listed. */
	refundquery_ok(&s, "SUCCESS");
	kv_set(&s, "refund_count", "2");
	kv_set(&s, "out_refund_no_0", "phr0000000000006");
	kv_set(&s, "refund_status_0", "PROCESSING");
	kv(&s, "out_refund_no_1", "phr0000000000007");
	kv(&s, "refund_id_1", "50000408942018111907145868883");
	kv(&s, "refund_fee_1", "50");
	kv(&s, "refund_status_1", "REFUNDCLOSE");
	answer_of(&s, 1, 200);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_FAILED &&
	    strcmp(ev.refund_id, "50000408942018111907145868883") == 0,
	    "ours listed second: its own fields (_1) decide");
	/* Ours the last of WX_REFUNDQUERY_MAX listed, each with nine
	 * fields. */
	{
		static const char *const names[] = { "out_refund_no",
		    "refund_id", "refund_channel", "refund_fee",
		    "settlement_refund_fee", "refund_status",
		    "refund_recv_accout", "refund_success_time",
		    "coupon_refund_fee" };
		static char keys[50][9][40], vals[50][9][40];
		size_t m, f;

		refundquery_ok(&s, "SUCCESS");
		s.n -= 8;	/* refund_count and the one listed */
		kv(&s, "refund_count", "50");
		for (m = 0; m < 50; m++)
			for (f = 0; f < 9; f++) {
				snprintf(keys[m][f], sizeof(keys[m][f]), "%s_%zu",
				    names[f], m);
				snprintf(vals[m][f], sizeof(vals[m][f]), "%s",
				    f == 0 ? (m == 49 ? "phr0000000000007" :
				    "phr0000000000006") : f == 1 ?
				    "50000408942018111907145868883" : f == 2 ?
				    "ORIGINAL" : f == 5 ? "SUCCESS" : f == 6 ?
				    "支付用户零钱" : f == 7 ? "2018-11-19 16:24:13" :
				    "1");
				if (m == 49 && f == 3)
					snprintf(vals[m][f], sizeof(vals[m][f]),
					    "50");
				kv(&s, keys[m][f], vals[m][f]);
			}
		answer_of(&s, 1, 200);
		ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
		    ev.kind == PH_EV_REFUND_SUCCEEDED && ev.amount == 50,
		    "ours the last of 50 listed (459 fields): read (%s)",
		    d.msg);
	}
	refund_fail(&s, "REFUNDNOTEXIST", "退款订单查询失败");
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_E_PROVIDER &&
	    strstr(d.msg, "REFUNDNOTEXIST") != NULL,
	    "REFUNDNOTEXIST: ask again later, never a failed refund");
	refund_fail(&s, "SYSTEMERROR", NULL);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_PROVIDER,
	    "SYSTEMERROR: ask again later");
	/* The same answer to a refund sent (not a query) is not read as a
	 * refund's answer. */
	refundquery_ok(&s, "SUCCESS");
	answer_of(&s, 1, 200);
	r.query = 0;
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_FIELD,
	    "a refundquery answer to a refund sent: refused");
	p->profile_free(ctx);
}

static void
test_v3_query(void)
{
	static const char path[] =
	    "/v3/refund/domestic/refunds/phr0000000000011";
	const struct ph_provider *p = payhook_provider();
	struct ph_http_request req;
	struct ph_refund_ref r;
	struct ph_event ev;
	void *ctx = NULL;

	tv3 = load_priv(th_tv3_priv_pem);
	mkcc(V3_NOW);
	ok(v3profile(&ctx, NULL) == PH_OK, "v3 refund query: profile");
	r = mkref("sdk12345678920210326145039", "4200000991202103266853086457",
	    "phr0000000000011", 1, 1, "duplicate payment");
	r.query = 1;
	is_int(p->refund_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "v3 refund query built");
	is_str(req.method, "GET", "... GET");
	is_str(req.path, path, "... of the refund by out_refund_no");
	is_int(req.body_len, 0, "... no body");
	ok(signed_over(&req, "GET", path, ""),
	    "... signed over the five lines, the body empty");

	v3answer(200, "{\"amount\":{\"currency\":\"CNY\",\"refund\":1,"
	    "\"total\":1},\"out_refund_no\":\"phr0000000000011\",\"refund_id\":"
	    "\"50001307732021032607480019805\",\"status\":\"SUCCESS\","
	    "\"success_time\":\"2021-03-26T14:52:11+08:00\","
	    "\"transaction_id\":\"4200000991202103266853086457\"}", 1);
	ok(p->refund_response(ctx, &r, &answer, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_REFUND_SUCCEEDED &&
	    strcmp(ev.refund_id, "50001307732021032607480019805") == 0,
	    "v3 refund object SUCCESS: refund succeeded");
	v3answer(400, "{\"code\":\"INVALID_REQUEST\",\"message\":"
	    "\"参数错误\"}", 1);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_PROVIDER,
	    "a query's signed 400 INVALID_REQUEST: ask again, the refund not "
	    "failed");
	v3answer(404, "{\"code\":\"RESOURCE_NOT_EXISTS\",\"message\":"
	    "\"退款单不存在\"}", 1);
	is_int(p->refund_response(ctx, &r, &answer, &ev, &d), PH_E_PROVIDER,
	    "404 RESOURCE_NOT_EXISTS: ask again later");
	p->profile_free(ctx);
	EVP_PKEY_free(tv3);
}

/* ---- the v2 refund notification ------------------------------------------ */

/* Made with Python's cryptography (AES-256-ECB, PKCS#7), the key the
 * ASCII of md5("192006250b4c09247ec02edce69f6a2d") =
 * "d96eb16afdd491fa1e705096edbc2205"; `openssl enc -aes-256-ecb -K
 * <hex of that> -base64 -A` gives the same. */
static const char req_info[] =
	"WBzGpzQuNpcFxIlFjUUD9Cnav91FiJre4NB1ybqgDkKxLC4Ky3R0ePARpM+ReCYwxyIJ"
	"DKwsKMcMuxrZm5SNh/oJNlm+UsOmQERpH5oyCFtF0Lqg+dnspmOPaGca+N1jGZeVnnQO"
	"QpnI+TbsVJeoKZwij1QRmDjcZFHYKSWXMPfOLXem62DhLzg2atZzVJ3hQFwEkllmKL2m"
	"XNZw78LyLkEt0mp1wXEawePWLn2zgoZgpFaapnfJUn2n6KJv2wbLSwPLXxWmJQdPOGz3"
	"P8OF6Ku2+CnH83Xa4eUmO7Ofl0dmIgEb0jL48gtcQtt2JjcBEfpwnPExTGsWkvH1weoi"
	"4jgD8SwppFwLJJvdfw7suexV6Oe5AY3tzLvYLmviYXNzu0IUKVooX19HDSJdArENhYkT"
	"V1pjwcytLdtQjh0tllit/IhjylujOijBDRRUk/4JL2Z9+x/cuPvtcy2Xw0ocncukD1hh"
	"LvXWNFSOPpnYlAMLpRJEPoddhilc4hAYrfWfNF/JdCLoke0crNCwzvLOEdDus2/LGhL8"
	"kbO0hnp+HrzOM9a3QC19qECiQ8YHMBlq5OKuXyWdQmor/4hxP4gtTlDCjIMh5KYNoKia"
	"JCoM3/CQZy2wq4QojmvPY1FLRIjOvuAdyR2rnhEjl+BgYVR2vGlZ50hqMTFToxmu/qK6"
	"yPdR3jUUEIrGJpckkriwOqHBWZ3zSt3W6yPiyZ/1Q4CpQFnzDQnzkRVZRg6t6FG7PbBH"
	"/7HbGB8ft/0PIJKnUK3GAy8wmLdYFV/qoznTAtL9CFWVYhfkCwPuGGl4lO5AewpLNz84"
	"O16zW/CeGiFNZDRiLKnnFVSYgF/3+B8hioXJSWgTPcMrAZC9RjR1d3gKbk3NqVjndqSe"
	"M62kUIryK8n2m+HXCMW0icutBx8XtBFNA56ppvW3xRgtVJDHZu3dL1g3OGT9Df9azirm"
	"DVbVUlsfhmfOGXvNaMEaA+PeOoyMBXJ0icLetVxE7qTPUsKNGfQoj3U6mstwVYsgk4kF"
	"Tfm62aE11oitOwkP3LMSrYnx1A==";

static int
notify_body(void *ctx, const char *body, struct ph_event *ev)
{
	return th_notify(payhook_provider(), ctx, body, strlen(body),
	    "text/xml", 1542615853, ev, &d);
}

static char nbody[16384];

static const char *
outer(const char *appid, const char *mch, const char *info, const char *extra)
{
	snprintf(nbody, sizeof(nbody), "<xml><return_code>SUCCESS</return_code>"
	    "<appid><![CDATA[%s]]></appid><mch_id><![CDATA[%s]]></mch_id>"
	    "<nonce_str><![CDATA[TeqClE3i0mvn3DrK]]></nonce_str>"
	    "<req_info><![CDATA[%s]]></req_info>%s</xml>", appid, mch, info,
	    extra);
	return nbody;
}

/* This test's own req_info for other contents: AES-256-ECB with the key
 * derived here. */
static const char *
encrypt_info(const char *key, const char *plain)
{
	static char out[8192];
	unsigned char md[16], k[33], ct[4096];	/* k: 32 hex + NUL */
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0, i;
	struct ph_buf b;

	EVP_Digest(key, strlen(key), md, NULL, EVP_md5(), NULL);
	for (i = 0; i < 16; i++)
		snprintf((char *)k + 2 * i, 3, "%02x", md[i]);
	EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, k, NULL);
	EVP_EncryptUpdate(c, ct, &n, (const unsigned char *)plain,
	    (int)strlen(plain));
	EVP_EncryptFinal_ex(c, ct + n, &f);
	EVP_CIPHER_CTX_free(c);
	ph_buf_init(&b, sizeof(out));
	ph_base64_encode(ct, (size_t)(n + f), &b);
	snprintf(out, sizeof(out), "%s", b.data);
	ph_buf_free(&b);
	return out;
}

static const char *
root(const char *status, const char *fee, const char *total, const char *time)
{
	static char out[4096];

	snprintf(out, sizeof(out), "<root><out_refund_no><![CDATA["
	    "phr0000000000002]]></out_refund_no><out_trade_no><![CDATA[O-2]]>"
	    "</out_trade_no><refund_fee><![CDATA[%s]]></refund_fee><refund_id>"
	    "<![CDATA[50000408942018111907145860002]]></refund_id>"
	    "<refund_status><![CDATA[%s]]></refund_status>%s%s%s<total_fee>"
	    "<![CDATA[%s]]></total_fee><transaction_id><![CDATA["
	    "4200000215201811190261400002]]></transaction_id></root>", fee,
	    status, time ? "<success_time><![CDATA[" : "", time ? time : "",
	    time ? "]]></success_time>" : "", total);
	return out;
}

/* The notification of our appid and mch_id whose req_info is plain,
 * encrypted with the MD5 profile's key, read by ctx. */
static int
notify_plain(void *ctx, const char *plain, struct ph_event *ev)
{
	return notify_body(ctx, outer(APPID, MCH_ID, encrypt_info(KEY_MD5,
	    plain), ""), ev);
}

static void
test_refund_notify(void)
{
	/* The contents of a refund of 100, each refused. */
	static const struct {
		const char *status, *fee, *time, *what;
	} refused[] = {
		{ "SUCCESS", "30", NULL,
		    "SUCCESS without success_time: refused" },
		{ "SUCCESS", "101", "2018-11-19 16:24:13",
		    "refund_fee above total_fee: refused" },
		{ "SUCCESS", "0", "2018-11-19 16:24:13",
		    "refund_fee 0: refused" },
		{ "DONE", "30", "2018-11-19 16:24:13",
		    "refund_status unknown: refused" },
		{ "SUCCESS", "30", "2018-11-19T16:24:13",
		    "success_time in another format: refused" },
	};
	struct ph_event ev;
	struct ph_response resp;
	void *ctx = NULL, *wrong = NULL, *hm = NULL;
	char bad[sizeof(req_info)];
	size_t i;

	ok(v2profile(&ctx, APPID, MCH_ID, KEY_MD5, NULL, NULL) == PH_OK,
	    "notify: profile");
	is_int(notify_body(ctx, outer(APPID, MCH_ID, req_info, ""), &ev), PH_OK,
	    "refund notification: req_info decrypts (vector from Python)");
	diag("%s", d.msg);
	is_refund(&ev, "refund notification", "50000408942018111907145868882",
	    "phr0000000000007", "4200000215201811190261405420");
	is_str(ev.order_id, "A1415640626", "... order_id = out_trade_no");
	is_int(ev.amount, 50, "... amount = refund_fee");
	is_str(ev.currency, "CNY", "... CNY");
	is_int(ev.occurred_at, bj("20181119162413"),
	    "... success_time in Beijing time");
	is_str(ev.dedup_key, "refund:50000408942018111907145868882:SUCCESS",
	    "... dedup key refund:<refund_id>:<status>");
	payhook_provider()->ack(ctx, PH_ACK_OK, NULL, &resp);
	ok(resp.status == 200 && resp.body_len > 0 &&
	    strstr((const char *)resp.body, "SUCCESS") != NULL,
	    "... acknowledged like a payment notification");

	/* Refusals. */
	ok(v2profile(&wrong, APPID, MCH_ID, "192006250b4c09247ec02edce69f6a2e",
	    NULL, NULL) == PH_OK, "a profile with another key");
	is_int(notify_body(wrong, outer(APPID, MCH_ID, req_info, ""), &ev),
	    PH_E_SIGNATURE, "another key: refused (bad padding or no <root>)");
	diag("%s", d.msg);
	ok(ev.kind == 0 && ev.order_id[0] == '\0', "... no event");
	memcpy(bad, req_info, sizeof(bad));
	bad[100] = bad[100] == 'A' ? 'B' : 'A';
	is_int(notify_body(ctx, outer(APPID, MCH_ID, bad, ""), &ev),
	    PH_E_SIGNATURE, "one block changed: refused");
	memcpy(bad, req_info, sizeof(bad));
	bad[sizeof(bad) - 4] = bad[sizeof(bad) - 4] == 'A' ? 'B' : 'A';
	is_int(notify_body(ctx, outer(APPID, MCH_ID, bad, ""), &ev),
	    PH_E_SIGNATURE, "the last block changed: refused");
	is_int(notify_body(ctx, outer(APPID, MCH_ID, "bm90IGFlcw==", ""), &ev),
	    PH_E_SIGNATURE, "not whole AES blocks: refused");
	is_int(notify_body(ctx, outer(APPID, MCH_ID, "!!!!", ""), &ev),
	    PH_E_SIGNATURE, "not base64: refused");
	is_int(notify_body(ctx, outer(APPID, MCH_ID, "", ""), &ev),
	    PH_E_SIGNATURE, "empty req_info: refused");
	is_int(notify_body(ctx, outer(APPID2, MCH_ID, req_info, ""), &ev),
	    PH_E_MERCHANT, "another appid: refused");
	is_int(notify_body(ctx, outer(APPID, MCH_ID2, req_info, ""), &ev),
	    PH_E_MERCHANT, "another mch_id: refused");
	is_int(notify_body(ctx, outer(APPID, MCH_ID, req_info,
	    "<sign>ABCDEF</sign>"), &ev), PH_E_SIGNATURE,
	    "a signed refund notification is not what WeChat sends: refused");
	is_int(notify_body(ctx, outer(APPID, MCH_ID, req_info,
	    "<sub_mch_id>1900000109</sub_mch_id>"), &ev), PH_E_MERCHANT,
	    "a sub-merchant's: refused");
	snprintf(nbody, sizeof(nbody), "<xml><return_code>FAIL</return_code>"
	    "<return_msg>x</return_msg><req_info>%s</req_info></xml>",
	    req_info);
	ok(notify_body(ctx, nbody, &ev) != PH_OK, "return_code FAIL: refused");

	/* Contents, encrypted here. */
	is_int(notify_plain(ctx, root("CHANGE", "30", "100", NULL), &ev),
	    PH_OK, "CHANGE (abnormal) read");
	ok(ev.kind == PH_EV_REFUND_FAILED && ev.occurred_at == 0 &&
	    strcmp(ev.dedup_key, "refund:50000408942018111907145860002:"
	    "CHANGE") == 0, "... refund failed, its own dedup key");
	is_int(notify_plain(ctx, root("REFUNDCLOSE", "30", "100", NULL), &ev),
	    PH_OK, "REFUNDCLOSE read");
	is_int(ev.kind, PH_EV_REFUND_FAILED, "... refund failed");
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		is_int(notify_plain(ctx, root(refused[i].status,
		    refused[i].fee, "100", refused[i].time), &ev), PH_E_FIELD,
		    "%s", refused[i].what);
	is_int(notify_plain(ctx, "<xml><refund_fee>1</refund_fee></xml>",
	    &ev), PH_E_SIGNATURE,
	    "decrypts, but the root is not <root>: refused");
	is_int(notify_plain(ctx, "<!DOCTYPE root [<!ENTITY x \"y\">]>"
	    "<root>&x;</root>", &ev), PH_E_SIGNATURE,
	    "a DOCTYPE inside req_info: refused");

	/* The HMAC profile's refunds use the same scheme with its key. */
	ok(v2profile(&hm, APPID2, MCH_ID2, KEY_HMAC, "HMAC-SHA256",
	    NULL) == PH_OK, "HMAC profile");
	is_int(notify_body(hm, outer(APPID2, MCH_ID2, encrypt_info(KEY_HMAC,
	    root("SUCCESS", "30", "100", "2018-11-19 16:24:13")), ""), &ev),
	    PH_OK, "an HMAC-SHA256 profile: md5 of its key decrypts");
	is_int(notify_body(hm, outer(APPID2, MCH_ID2, req_info, ""), &ev),
	    PH_E_SIGNATURE, "... and the other profile's req_info does not");
	payhook_provider()->profile_free(hm);
	payhook_provider()->profile_free(wrong);
	payhook_provider()->profile_free(ctx);
}

/* refund_notify_url values refused. */
static const struct th_case bad_url[] = {
	{ "https://shop.example/notify/wxshop?x=1",
	    "refund_notify_url with a query string: refused" },
	{ "ftp://shop.example/notify",
	    "refund_notify_url not http(s): refused" },
	{ "https://shop.example/a b",
	    "refund_notify_url with a space: refused" },
};

static void
test_profile_url(void)
{
	void *ctx = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++)
		is_int(v2profile(&ctx, APPID, MCH_ID, KEY_MD5, NULL,
		    bad_url[i].in), PH_E_CONFIG, "%s", bad_url[i].what);
	is_int(v2profile(&ctx, APPID, MCH_ID, KEY_MD5, NULL,
	    "http://127.0.0.1:8080/notify/wxshop"), PH_OK,
	    "refund_notify_url http: accepted");
	payhook_provider()->profile_free(ctx);
}

int
main(void)
{
	test_tv8();
	test_settlement();
	test_stream();
	test_v2_requests();
	test_v2_answers();
	test_v2_query();
	test_v3();
	test_v3_query();
	test_refund_notify();
	test_profile_url();
	return done_testing();
}
