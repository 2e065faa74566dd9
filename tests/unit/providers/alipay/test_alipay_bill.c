/*
 * The Alipay plugin's statements and bill downloads, driven through its
 * table: a day's bill (业务明细) read line by line, in UTF-8 and GBK, its
 * totals checked; the two steps of a download (the signed link query
 * alipay.data.dataservice.bill.downloadurl.query, then the link's file),
 * the links taken and refused, and the zip the statement is read from.
 * Keys, profiles and signed answers are alipay_fixture.c's.
 */
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../providers/alipay/alipay_test.h"

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"
#include "alipay_fixture.h"
#include "alipay_check.h"

static struct ph_diag d;

/* ---- statements ---------------------------------------------------------- */

static const char *const bill[] = {
	"#支付宝业务明细查询",
	"#账号：[20881021196858380156]",
	"#起始日期：[2026年11月30日 00:00:00]   终止日期：[2026年12月01日 "
	    "00:00:00]",
	"#-----------------------------------------业务明细列表"
	    "----------------------------------------",
	"支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,"
	    "门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,"
	    "支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
	    "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
	    "退款批次号/请求号,服务费（元）,分润（元）,备注",
	TRADE_NO "\t," ORDER "\t,交易\t,测试,2026-11-30 15:29:30,"
	    PAID_BJ ",\t,\t,\t,\t,abc***@example.com\t,12.34,12.34,0.00,"
	    "0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.07,0.00,",
	"2026113022001403030500099999\t,A20261130-0002\t,交易\t,\"a, b\","
	    "2026-11-30 16:00:00,2026-11-30 16:00:05,\t,\t,\t,\t,x\t,1.00,"
	    "0.90,0.00,0.00,0.10,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,",
	TRADE_NO "\t," ORDER "\t,退款\t,测试,2026-11-30 15:29:30,"
	    "2026-11-30 18:00:00,\t,\t,\t,\t,abc***@example.com\t,-5.00,"
	    "-5.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,phr0000000000042\t,"
	    "0.00,0.00,",
	"#-----------------------------------------业务明细列表结束"
	    "------------------------------------",
	"#交易合计：2笔，商家实收共13.24元，商家优惠共0.00元",
	"#退款合计：1笔，商家实收退款共-5.00元，商家优惠退款共0.00元",
	"#导出时间：[2026年12月01日 06:27:10]",
};

#define NBILL (sizeof(bill) / sizeof(bill[0]))

/* The bill's second row (line 7) with its 商户订单号, 业务类型 and
 * 订单金额 as given. */
#define ROW2(order, type, amount) \
	"2026113022001403030500099999\t," order "\t," type "\t,x," \
	"2026-11-30 16:00:00,2026-11-30 16:00:05,\t,\t,\t,\t,x\t," amount \
	",0.90,0.00,0.00,0.10,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,"

static char *
to_gbk(const char *s)
{
	static char out[8192];
	char *ip = (char *)(uintptr_t)s, *op = out;
	size_t il = strlen(s), ol = sizeof(out) - 1;
	iconv_t cd = iconv_open("GBK", "UTF-8");

	if (cd == (iconv_t)-1 || iconv(cd, &ip, &il, &op, &ol) == (size_t)-1)
		abort();
	iconv_close(cd);
	*op = '\0';
	return out;
}

/*
 * Streams lines through statement_line as the core does; replace
 * (index, text) swaps one line (text NULL: drops it).  Returns the
 * first error, or the end's status; facts into evs.
 */
static int
stream(void *ctx, int gbk, const char *bom, size_t replace,
    const char *text, struct ph_event *evs, size_t *nev)
{
	struct ph_statement *st = calloc(1, sizeof(*st));
	struct ph_event ev;
	char line[8192];
	size_t i;
	int rc = PH_OK;

	if (st == NULL)
		abort();
	*nev = 0;
	for (i = 0; i < NBILL && rc == PH_OK; i++) {
		const char *s = i == replace ? text : bill[i];

		if (s == NULL)
			continue;
		snprintf(line, sizeof(line), "%s%s", i == 0 && bom != NULL ?
		    bom : "", gbk ? to_gbk(s) : s);
		st->line++;
		d.msg[0] = '\0';
		rc = payhook_provider()->statement_line(ctx, st, line,
		    strlen(line), &ev, &d);
		if (rc == PH_OK && ev.kind != PH_EV_IGNORED)
			evs[(*nev)++] = ev;
	}
	if (rc == PH_OK) {
		d.msg[0] = '\0';
		rc = payhook_provider()->statement_line(ctx, st, NULL, 0, &ev,
		    &d);
	}
	free(st);
	return rc;
}

static void
test_statement(void *ctx)
{
	struct ph_event evs[8];
	size_t n;
	int gbk;

	for (gbk = 0; gbk < 2; gbk++) {
		const char *e = gbk ? "GBK" : "UTF-8";

		is_int(stream(ctx, gbk, NULL, NBILL, NULL, evs, &n), PH_OK,
		    "%s bill reads, totals check", e);
		if (d.msg[0] != '\0')
			diag("%s", d.msg);
		is_int(n, 3, "%s: three facts", e);
		if (n != 3)
			continue;
		is_event(&evs[0], e, PH_EV_PAYMENT_SUCCEEDED, ORDER, TRADE_NO,
		    1234, "CNY", PAID_AT, "pay:" TRADE_NO);
		is_int(evs[1].amount, 100, "%s: 订单金额, not 商家实收", e);
		is_str(evs[1].order_id, "A20261130-0002",
		    "%s: a quoted field with a comma", e);
		is_int(evs[2].kind, PH_EV_REFUND_SUCCEEDED, "%s: 退款 is a "
		    "refund", e);
		is_int(evs[2].amount, 500, "%s: refund amount positive", e);
		is_str(evs[2].merchant_refund_id, "phr0000000000042",
		    "%s: 退款批次号/请求号", e);
		is_str(evs[2].txn_id, TRADE_NO, "%s: refund's trade", e);
	}
	is_int(stream(ctx, 0, "\xef\xbb\xbf", NBILL, NULL, evs, &n), PH_OK,
	    "UTF-8 with a BOM reads");

	is_int(stream(ctx, 1, NULL, 9,
	    "#交易合计：2笔，商家实收共13.25元，商家优惠共0.00元", evs, &n),
	    PH_E_FIELD, "payment total off by a fen refused at the end");
	ok(strstr(d.msg, "totals") != NULL, "diagnostic: %s", d.msg);
	is_int(stream(ctx, 1, NULL, 10,
	    "#退款合计：2笔，商家实收退款共-5.00元，商家优惠退款共0.00元", evs,
	    &n), PH_E_FIELD, "refund count off refused");
	is_int(stream(ctx, 1, NULL, 10, NULL, evs, &n), PH_E_MALFORMED,
	    "no refund totals refused");
	is_int(stream(ctx, 1, NULL, 9, "#交易合计：两笔", evs, &n),
	    PH_E_MALFORMED, "totals not understood refused");
	is_int(stream(ctx, 1, NULL, 8, NULL, evs, &n), PH_E_MALFORMED,
	    "a list without its end marker refused");
	is_int(stream(ctx, 1, NULL, 6, ROW2("A20261130-0002", "冻结", "1.00"),
	    evs, &n), PH_E_UNSUPPORTED, "an unknown 业务类型 refused");
	ok(strstr(d.msg, "line 7") != NULL, "diagnostic names the line: %s",
	    d.msg);
	is_int(stream(ctx, 1, NULL, 6, "1,2,3", evs, &n), PH_E_MALFORMED,
	    "a short row refused");
	is_int(stream(ctx, 1, NULL, 6, ROW2("A20261130-0002", "交易",
	    "1.001"), evs, &n), PH_E_FIELD,
	    "an amount with three decimals refused");
	is_int(stream(ctx, 1, NULL, 6, ROW2("", "交易", "1.00"), evs, &n),
	    PH_E_FIELD, "a payment without 商户订单号 refused");
	is_int(stream(ctx, 1, NULL, 4,
	    "支付宝交易号,商户订单号,业务类型,完成时间,订单金额（元）", evs,
	    &n),
	    PH_E_MALFORMED, "a header without 商家实收 refused");
	is_int(stream(ctx, 1, NULL, 1, "data", evs, &n), PH_E_MALFORMED,
	    "data before the list refused");
	is_int(stream(ctx, 1, NULL, 11, "more data", evs, &n),
	    PH_E_MALFORMED, "data after the list refused");
	is_int(stream(ctx, 0, NULL, 6, "\xb2\xe2\xca\xd4,x", evs, &n),
	    PH_E_MALFORMED, "a GBK line in a UTF-8 file refused");
	is_int(stream(ctx, 1, NULL, 1, "#账号：[20889999999999990156]", evs,
	    &n), PH_E_MERCHANT, "the bill of another seller refused");
	ok(strstr(d.msg, "line 2") != NULL && strstr(d.msg,
	    "20889999999999990156") != NULL, "... naming the line and the "
	    "account: %s", d.msg);
	is_int(n, 0, "... before any fact");
	is_int(stream(ctx, 0, NULL, 1, "#账号：[2088102119685838]", evs, &n),
	    PH_OK, "the seller's id alone, without the account's code, reads");
	is_int(stream(ctx, 0, NULL, 1, "#账号：[2088102119685838x]", evs, &n),
	    PH_E_MALFORMED, "an account that is not digits refused");
	is_int(stream(ctx, 1, NULL, 1, "#账户：[20881021196858380156]", evs,
	    &n), PH_E_MERCHANT, "a bill that does not say whose it is "
	    "refused (no #账号 line before the list)");
	ok(strstr(d.msg, "line 4") != NULL && strstr(d.msg, "no account "
	    "line") != NULL, "... naming the line where the list starts: %s",
	    d.msg);
	is_int(n, 0, "... before any fact");
}

/* ---- statement download -------------------------------------------------- */

#define BILL_DAY	"2026-11-29"
#define BNODE		"alipay_data_dataservice_bill_downloadurl_query_response"
#define BILL_URL	"https://dwbillcenter.alipay.com/downloadBillFile." \
    "resource?bizType=trade&userId=20881021196858380156&fileType=csv.zip&" \
    "bizDates=20261129&downloadFileName=20881021196858380156_20261129." \
    "csv.zip&fileId=%2Ftrade%2F20881021196858380156%2F20261129.csv.zip&" \
    "timestamp=1796023800&token=4b6f2c0a9e1d"
#define MOCK_URL	"http://127.0.0.1:41234/downloadBill?token=5e1f"

static struct ph_download dl;

/* The answer in afx_answer_body to step step of the download of BILL_DAY. */
static int
dl_feed(void *ctx, unsigned step, const char *next, const void *b,
    size_t len, int status)
{
	struct ph_download_ref ref = { BILL_DAY, step, next };
	struct ph_http_response in;

	th_answer(&in, status, b, len, NOW);
	d.msg[0] = '\0';
	memset(&dl, 0x5a, sizeof(dl));
	return payhook_provider()->statement_response(ctx, &ref, &in, &dl,
	    &d);
}

static int
dl_where(void *ctx, size_t len)
{
	return dl_feed(ctx, 0, "", afx_answer_body, len, 200);
}

static int
dl_nothing(void)
{
	return dl.kind == 0 && dl.next[0] == '\0' && dl.len == 0;
}

/* {"code":"10000","msg":"Success","bill_download_url":url} */
static const char *
url_obj(const char *url)
{
	static char obj[4096];

	snprintf(obj, sizeof(obj), "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"bill_download_url\":\"%s\"}", url);
	return obj;
}

static int
dl_request(void *ctx, const char *date, unsigned step, const char *next,
    struct ph_http_request *rq)
{
	struct ph_download_ref ref = { date, step, next };
	struct ph_call_ctx cc;

	memset(&cc, 0, sizeof(cc));
	cc.now = NOW;
	d.msg[0] = '\0';
	return payhook_provider()->statement_request(ctx, &ref, &cc, rq, &d);
}

static void
test_download_request(void *ctx)
{
	struct ph_http_request *rq = calloc(1, sizeof(*rq));
	struct afx_prof p = afx_good_prof();
	char *url;
	void *bare = NULL;

	if (rq == NULL || (url = malloc(PH_HTTP_PATH_MAX + 16)) == NULL)
		abort();
	is_int(dl_request(ctx, BILL_DAY, 0, "", rq), PH_OK,
	    "download step 0: the link query built");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	afx_check_request(rq, "alipay.data.dataservice.bill.downloadurl.query",
	    "{\"bill_type\":\"trade\",\"bill_date\":\"" BILL_DAY "\"}",
	    "bill link query");

	is_int(dl_request(ctx, "2026-02-30", 0, "", rq), PH_E_FIELD,
	    "step 0: a day not in the calendar refused");
	ok(rq->path[0] == '\0' && rq->body_len == 0,
	    "step 0: nothing built on failure");
	is_int(dl_request(ctx, "2026/11/29", 0, "", rq), PH_E_FIELD,
	    "step 0: a date not as YYYY-MM-DD refused");
	is_int(dl_request(ctx, "2026-11", 0, "", rq), PH_E_FIELD,
	    "step 0: a month (Alipay's monthly bill) refused");
	is_int(dl_request(ctx, NULL, 0, "", rq), PH_E_FIELD,
	    "step 0: no date refused");
	p.priv = NULL;
	if (afx_mkprofile(&bare, &p, &d) != PH_OK)
		abort();
	is_int(dl_request(bare, BILL_DAY, 0, "", rq), PH_E_CONFIG,
	    "step 0: without an app key refused");
	ok(strstr(d.msg, "app_private_key_file") != NULL, "diagnostic: %s",
	    d.msg);
	payhook_provider()->profile_free(bare);

	is_int(dl_request(ctx, BILL_DAY, 1, BILL_URL, rq), PH_OK,
	    "download step 1: the file's request built");
	is_str(rq->method, "GET", "step 1: GET");
	is_str(rq->path, BILL_URL, "step 1: the link, whole, as the path");
	ok(rq->content_type[0] == '\0' && rq->body_len == 0 &&
	    rq->nheaders == 0, "step 1: no body, no header, no signature");
	is_int(dl_request(ctx, BILL_DAY, 1, MOCK_URL, rq), PH_OK,
	    "step 1: a plain-http loopback link (a test Alipay) taken");
	is_str(rq->path, MOCK_URL, "step 1: ... as given");
	is_int(dl_request(ctx, BILL_DAY, 1, "http://dwbillcenter.alipay.com/"
	    "downloadBillFile.resource?token=x", rq), PH_OK,
	    "step 1: a plain-http link to the bill host taken");
	is_str(rq->path, "https://dwbillcenter.alipay.com/"
	    "downloadBillFile.resource?token=x", "step 1: ... fetched over "
	    "https");
	is_int(dl_request(ctx, BILL_DAY, 1, "http://dwbillcenter.alipay.com."
	    "evil.example/d", rq), PH_E_FIELD,
	    "step 1: a plain-http link elsewhere refused");
	ok(rq->path[0] == '\0', "step 1: nothing built on failure");
	memset(url, 'a', PH_HTTP_PATH_MAX);
	memcpy(url, "https://dwbillcenter.alipay.com/x?t=", 36);
	url[PH_HTTP_PATH_MAX - 1] = '\0';
	is_int(dl_request(ctx, BILL_DAY, 1, url, rq), PH_OK,
	    "step 1: a link of %d bytes fills the path", PH_HTTP_PATH_MAX - 1);
	is_int(strlen(rq->path), PH_HTTP_PATH_MAX - 1, "step 1: ... whole");
	url[PH_HTTP_PATH_MAX - 1] = 'a';
	url[PH_HTTP_PATH_MAX] = '\0';
	is_int(dl_request(ctx, BILL_DAY, 1, url, rq), PH_E_TOOBIG,
	    "step 1: one byte more refused, not cut");
	is_int(dl_request(ctx, BILL_DAY, 1, NULL, rq), PH_E_INTERNAL,
	    "step 1: no link is a bug");
	is_int(dl_request(ctx, BILL_DAY, 2, BILL_URL, rq), PH_E_INTERNAL,
	    "step 2 does not exist");
	free(url);
	free(rq);
}

static void
test_download_where(void *ctx)
{
	char url[PH_HTTP_PATH_MAX + 16], altered[4096];
	size_t len;

	/*
	 * The response sample of Alipay's 查询对账单下载地址
	 * (alipay.data.dataservice.bill.downloadurl.query) document:
	 * {"code":"10000","msg":"Success","bill_download_url":
	 * "http://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=X
	 * &userId=X&fileType=X&bizDates=X&downloadFileName=X&fileId=X"},
	 * signed.  Its link is plain http to the bill host: taken, and
	 * fetched over https (test_download_request); the same link over
	 * https is taken as it is.
	 */
	len = afx_answer_text(BNODE, url_obj("http://dwbillcenter.alipay.com/"
	    "downloadBillFile.resource?bizType=X&userId=X&fileType=X&"
	    "bizDates=X&downloadFileName=X&fileId=X"), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK,
	    "the document's sample: its plain-http link to the bill host "
	    "taken");
	is_int(dl.kind, PH_DL_NEXT, "... one more call");
	len = afx_answer_text(BNODE, url_obj("https://dwbillcenter.alipay.com/"
	    "downloadBillFile.resource?bizType=X&userId=X&fileType=X&"
	    "bizDates=X&downloadFileName=X&fileId=X"), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "the sample over https verifies");
	is_int(dl.kind, PH_DL_NEXT, "... one more call");

	len = afx_answer_text(BNODE, url_obj(BILL_URL), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "signed link verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_int(dl.kind, PH_DL_NEXT, "signed link: NEXT");
	is_str(dl.next, BILL_URL, "signed link: next is the link");
	len = afx_answer_text(BNODE, url_obj(MOCK_URL), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "a loopback http link (a test "
	    "Alipay) taken");
	is_str(dl.next, MOCK_URL, "... as given");
	/* JSON may escape the slashes; the link is the decoded text. */
	len = afx_answer_text(BNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"bill_download_url\":\"https:\\/\\/dwbillcenter.alipay.com\\/"
	    "d?token=1\"}", NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "escaped slashes verify");
	is_str(dl.next, "https://dwbillcenter.alipay.com/d?token=1",
	    "... and are read");

	/* Answers not believed. */
	len = afx_answer_text(BNODE, url_obj(BILL_URL), NULL, afx_other_key);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE,
	    "a link signed by another key refused");
	ok(dl_nothing(), "bad signature: nothing given");
	snprintf(altered, sizeof(altered), "%s",
	    url_obj("https://dwbillcenter.alipay.com/d?token=1"));
	len = afx_answer_text(BNODE, url_obj("https://dwbillcenter.alipay.com/"
	    "d?token=2"), altered, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE, "an altered link refused");
	len = afx_answer_text(BNODE, url_obj(BILL_URL), NULL, NULL);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE, "an unsigned link refused");
	len = afx_answer_text(QNODE, url_obj(BILL_URL), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_E_MALFORMED,
	    "the answer of another method refused");
	len = afx_answer_text(BNODE, url_obj(BILL_URL), NULL, afx_alipay_key);
	is_int(dl_feed(ctx, 0, "", afx_answer_body, len, 502), PH_E_PROVIDER,
	    "HTTP 502: ask again later");

	/* No bill, or an error. */
	len = afx_answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.bill_not_exist\",\"sub_msg\":"
	    "\"账单不存在\"}", NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "isp.bill_not_exist verifies");
	is_int(dl.kind, PH_DL_NONE, "isp.bill_not_exist: no bill that day");
	len = afx_answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.bill_not_exist\"}", NULL, NULL);
	is_int(dl_where(ctx, len), PH_E_PROVIDER,
	    "unsigned isp.bill_not_exist: an error, nothing believed");
	len = afx_answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.bill_not_exist\"}", NULL,
	    afx_other_key);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE,
	    "isp.bill_not_exist signed by another key refused");
	len = afx_answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.unknow-error\",\"sub_msg\":"
	    "\"try later\"}", NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_E_PROVIDER,
	    "40004 isp.unknow-error: ask again later");
	ok(strstr(d.msg, "40004") != NULL &&
	    strstr(d.msg, "isp.unknow-error") != NULL &&
	    strstr(d.msg, "try later") != NULL,
	    "diagnostic: code, sub_code, sub_msg: %s", d.msg);
	ok(dl_nothing(), "provider error: nothing given");
	len = afx_answer_text(BNODE, "{\"code\":\"40002\",\"msg\":\"Invalid "
	    "Arguments\",\"sub_code\":\"isv.invalid-arguments\"}", NULL,
	    afx_alipay_key);
	is_int(dl_where(ctx, len), PH_E_PROVIDER,
	    "40002 (a day not billed yet): an error");
	len = afx_answer_text(BNODE, "{\"code\":\"10000\",\"msg\":\"Success\"}",
	    NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_E_FIELD, "10000 without a link refused");

	/* Links refused. */
	{
		static const char *const bad[] = {
			"http://dwbillcenter.alipay.com.evil.example/d",
			"http://dwbillcenter.alipay.com:8080/d",
			"http://127.0.0.1.evil.example/d",
			"ftp://dwbillcenter.alipay.com/d",
			"//dwbillcenter.alipay.com/d",
			"/downloadBill?token=1",
			"https://",
			"https:///d",
			"https://:443/d",
			"https://127.0.0.1@evil.example/d",
			"https://dwbillcenter.alipay.com:x443/d",
			"https://dwbillcenter.alipay.com:/d",
			"https://dwbillcenter.alipay.com/d?token=a b",
			"https://dwbillcenter.alipay.com/d#f",
			"https://dwbillcenter.alipay.com/d?t=\\u00e9",
			"",
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			len = afx_answer_text(BNODE, url_obj(bad[i]), NULL,
			    afx_alipay_key);
			is_int(dl_where(ctx, len), PH_E_FIELD,
			    "link %s refused", bad[i]);
		}
	}
	len = afx_answer_text(BNODE, url_obj("https://[::1]:8443/d"), NULL,
	    afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "an IPv6 literal with a port "
	    "read (its host is the core's check)");
	len = afx_answer_text(BNODE, url_obj("http://[::1]:8080/d"), NULL,
	    afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "plain http to [::1] taken");
	len = afx_answer_text(BNODE, url_obj("http://localhost:8080/d"), NULL,
	    afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "plain http to localhost taken");

	memset(url, 'a', sizeof(url));
	memcpy(url, "https://dwbillcenter.alipay.com/x?t=", 36);
	url[PH_HTTP_PATH_MAX - 1] = '\0';
	len = afx_answer_text(BNODE, url_obj(url), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "a link of %d bytes taken",
	    PH_HTTP_PATH_MAX - 1);
	is_int(strlen(dl.next), PH_HTTP_PATH_MAX - 1, "... whole");
	url[PH_HTTP_PATH_MAX - 1] = 'a';
	url[PH_HTTP_PATH_MAX] = '\0';
	len = afx_answer_text(BNODE, url_obj(url), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_E_TOOBIG,
	    "a link one byte too long for a request refused");
	ok(dl_nothing(), "too long: nothing given");
	url[PH_HTTP_PATH_MAX + 8] = '\0';
	memset(url + PH_HTTP_PATH_MAX, 'a', 8);
	len = afx_answer_text(BNODE, url_obj(url), NULL, afx_alipay_key);
	is_int(dl_where(ctx, len), PH_E_TOOBIG,
	    "a link longer than the next call's text refused");
}

/* The names of a bill's zip, as Alipay gives them. */
static int
ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), m = strlen(end);

	return n >= m && memcmp(s + n - m, end, m) == 0;
}

static void
test_download_file(void *ctx)
{
	/* A zip's local file header: the signature, version 20, a GBK name
	 * (flags 0, no UTF-8 bit 0x800), what Alipay sends. */
	static const unsigned char zip[] =
	    "PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00rest";
	static const char html[] = "<html><body>链接已失效 (link expired)"
	    "</body></html>";
	char detail[128], summary[128];

	is_int(dl_feed(ctx, 1, BILL_URL, zip, sizeof(zip) - 1, 200), PH_OK,
	    "step 1: a zip is the statement");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_int(dl.kind, PH_DL_STATEMENT, "zip: STATEMENT");
	ok(dl.offset == 0 && dl.len == sizeof(zip) - 1,
	    "zip: the whole body");
	is_int(dl.packing, PH_PACK_ZIP, "zip: packed as a zip");
	ok(memcmp(dl.member[0], "\xd2\xb5\xce\xf1\xc3\xf7\xcf\xb8.csv",
	    sizeof("\xd2\xb5\xce\xf1\xc3\xf7\xcf\xb8.csv")) == 0,
	    "zip: member 业务明细.csv in GBK bytes");
	is_str(dl.member[1], "业务明细.csv", "zip: ... and in UTF-8");

	snprintf(detail, sizeof(detail), "%s",
	    to_gbk("20881021196858380156_20261129_业务明细.csv"));
	snprintf(summary, sizeof(summary), "%s",
	    to_gbk("20881021196858380156_20261129_业务明细(汇总).csv"));
	ok(ends_with(detail, dl.member[0]), "the detail's GBK name ends "
	    "with member 0");
	ok(!ends_with(summary, dl.member[0]) &&
	    !ends_with(summary, dl.member[1]),
	    "the summary's GBK name ends with neither");
	ok(ends_with("20881021196858380156_20261129_业务明细.csv",
	    dl.member[1]) &&
	    !ends_with("20881021196858380156_20261129_业务明细(汇总).csv",
	    dl.member[1]) &&
	    !ends_with("20881021196858380156_20261129_业务明细(汇总).csv",
	    dl.member[0]),
	    "UTF-8 names: the detail ends with member 1, the summary with "
	    "neither");

	is_int(dl_feed(ctx, 1, BILL_URL, html, sizeof(html) - 1, 200),
	    PH_E_PROVIDER, "step 1: an HTML page (expired link) refused");
	ok(strstr(d.msg, "not a zip") != NULL && strstr(d.msg, "<html>") !=
	    NULL, "diagnostic: %s", d.msg);
	ok(dl_nothing(), "HTML: nothing given");
	is_int(dl_feed(ctx, 1, BILL_URL, "PK", 2, 200), PH_E_PROVIDER,
	    "step 1: two bytes refused");
	is_int(dl_feed(ctx, 1, BILL_URL, "", 0, 200), PH_E_PROVIDER,
	    "step 1: an empty body refused");
	is_int(dl_feed(ctx, 1, BILL_URL, "PK\x05\x06", 4, 200),
	    PH_E_PROVIDER, "step 1: an empty zip's end record alone refused");
	is_int(dl_feed(ctx, 1, BILL_URL, zip, sizeof(zip) - 1, 404),
	    PH_E_PROVIDER, "step 1: HTTP 404 refused, even with a zip");
	ok(strstr(d.msg, "404") != NULL, "diagnostic: %s", d.msg);
	is_int(dl_feed(ctx, 2, BILL_URL, zip, sizeof(zip) - 1, 200),
	    PH_E_INTERNAL, "an answer to step 2 is a bug");
}

int
main(void)
{
	void *ctx;

	afx_keys_make();
	ctx = afx_good_ctx(&d);
	test_statement(ctx);
	test_download_request(ctx);
	test_download_where(ctx);
	test_download_file(ctx);
	payhook_provider()->profile_free(ctx);
	afx_keys_free();
	return done_testing();
}
