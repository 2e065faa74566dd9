/*
 * The wechat plugin's statement download (statement_request and
 * statement_response), driven through its table: v2 downloadbill (the
 * request's fields and signature, checked here with OpenSSL; the bill,
 * "No Bill Exist" and the other answers) and v3 tradebill (the signed
 * request, the signed answer naming the file, the file checked against
 * its SHA1).  The official pages 下载对账单 (downloadbill), 申请交易账单
 * (tradebill) and 下载账单 (billdownload) describe the messages; the
 * answers here are shaped as their examples.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../../../providers/wechat/wechat_test.h"

#include "../../lib/helpers.h"
#include "../../lib/tap.h"

#define KEY_MD5		"192006250b4c09247ec02edce69f6a2d"
#define KEY_HMAC	"Hm4cK3yE2eTestKeyForSha256Prof1x"
#define APPID		"wx2421b1c4370ec43b"
#define MCH_ID		"10000100"
#define V3_MCHID	"1230000109"
#define V3_APPID	"wxd678efh567hg6787"
#define V3_KEY		"0123456789abcdefABCDEFGHijklmnop"
#define V3_PUB_ID	"PUB_KEY_ID_0114232134912410000000000000000000"
#define V3_SERIAL	"408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"
#define NOW		1700000000LL
#define FILE_URL	"https://api.mch.weixin.qq.com/v3/billdownload/file?" \
			"token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_" \
			"isgaUtBzp4QtiozLO"

/* A bill as downloadbill hands it: BOM, CRLF, one payment, summary. */
static const char bill[] =
	"\xef\xbb\xbf" "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,"
	"商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,"
	"代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,"
	"代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,"
	"费率\r\n"
	"`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,"
	"`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,"
	"`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,"
	"`被扫支付测试,`订单额外描述,`0,`0.60%\r\n"
	"总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额\r\n"
	"`1,`0.01,`0.0,`0.0,`0\r\n";

static struct ph_diag d;
static struct th_conf cv;
static struct ph_call_ctx cc;
static EVP_PKEY *tv3;

static int
v2profile(void **ctx, const char *key, const char *sign_type)
{
	th_wx2_conf(&cv, payhook_provider(), "wx2", APPID, MCH_ID, key,
	    sign_type);
	return th_profile_new(payhook_provider(), &cv, ctx, &d);
}

/* The TV-3 key is the merchant's and, as a public key, the platform's. */
static int
v3profile(void **ctx, int with_merchant_key)
{
	th_wx3_conf(&cv, payhook_provider(), "wx3", V3_APPID, V3_MCHID, V3_KEY,
	    V3_PUB_ID, with_merchant_key ? V3_SERIAL : NULL);
	return th_profile_new(payhook_provider(), &cv, ctx, &d);
}

static void
mkcc(void)
{
	th_call_ctx(&cc, NOW, 0);
}

static struct ph_download_ref
dref(const char *date, unsigned step, const char *next)
{
	struct ph_download_ref r;

	r.date = date;
	r.step = step;
	r.next = next;
	return r;
}

/* ---- v2 ------------------------------------------------------------------ */

/* Whether the request's sign is key's signature of its other fields,
 * computed here: sorted k=v&...&key=KEY, MD5 or HMAC-SHA256, upper hex. */
static int
v2_signed(const struct ph_kvlist *kv, const char *key, int hmac)
{
	static const char *const skip[] = { "sign", NULL };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct th_note n;
	char text[4096], hex[2 * EVP_MAX_MD_SIZE + 1];
	const char *sign = ph_kvlist_get(kv, "sign");
	size_t i, len;

	memset(&n, 0, sizeof(n));
	for (i = 0; i < kv->n; i++)
		th_note_set(&n, kv->items[i].key, kv->items[i].val);
	len = th_note_join(&n, skip, 0, text, sizeof(text));
	len += (size_t)snprintf(text + len, sizeof(text) - len, "&key=%s",
	    key);
	if (hmac)
		HMAC(EVP_sha256(), key, (int)strlen(key),
		    (unsigned char *)text, len, md, &mdlen);
	else
		EVP_Digest(text, len, md, &mdlen, EVP_md5(), NULL);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02X", md[i]);
	return sign != NULL && strcmp(sign, hex) == 0;
}

static void
test_v2_request(void)
{
	const struct ph_provider *p = payhook_provider();
	static const struct ph_xml_limits lim = { 65536, 64, 2048 };
	struct ph_http_request req;
	struct ph_download_ref r;
	struct ph_kvlist kv;
	void *ctx = NULL, *hm = NULL;

	mkcc();
	ok(v2profile(&ctx, KEY_MD5, NULL) == PH_OK, "v2 MD5 profile");
	r = dref("2026-12-04", 0, "");
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "v2: downloadbill request built");
	is_str(req.method, "POST", "... POST");
	is_str(req.path, "/pay/downloadbill", "... /pay/downloadbill");
	is_str(req.content_type, "text/xml", "... XML");
	ok(ph_xml_parse_flat(req.body, req.body_len, "xml", &lim, &kv,
	    &d) == PH_OK, "... its body is flat XML");
	is_str(ph_kvlist_get(&kv, "appid"), APPID, "... appid");
	is_str(ph_kvlist_get(&kv, "mch_id"), MCH_ID, "... mch_id");
	is_str(ph_kvlist_get(&kv, "nonce_str"),
	    "000102030405060708090a0b0c0d0e0f", "... nonce_str from the core's "
	    "random bytes");
	is_str(ph_kvlist_get(&kv, "bill_date"), "20261204",
	    "... bill_date yyyyMMdd");
	is_str(ph_kvlist_get(&kv, "bill_type"), "ALL", "... bill_type ALL");
	ok(ph_kvlist_get(&kv, "tar_type") == NULL,
	    "... no tar_type: the bill comes as text");
	ok(ph_kvlist_get(&kv, "sign_type") == NULL,
	    "... no sign_type on an MD5 profile");
	ok(v2_signed(&kv, KEY_MD5, 0), "... its MD5 sign verifies");
	is_int(kv.n, 6, "... six fields in all");
	ph_kvlist_free(&kv);

	ok(v2profile(&hm, KEY_HMAC, "HMAC-SHA256") == PH_OK,
	    "v2 HMAC-SHA256 profile");
	is_int(p->statement_request(hm, &r, &cc, &req, &d), PH_OK,
	    "v2 HMAC: request built");
	ok(ph_xml_parse_flat(req.body, req.body_len, "xml", &lim, &kv,
	    &d) == PH_OK, "... flat XML");
	is_str(ph_kvlist_get(&kv, "sign_type"), "HMAC-SHA256",
	    "... sign_type HMAC-SHA256");
	ok(v2_signed(&kv, KEY_HMAC, 1), "... its HMAC-SHA256 sign verifies");
	ph_kvlist_free(&kv);

	r = dref("2026-1-04", 0, "");
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_E_FIELD,
	    "a date not YYYY-MM-DD: refused");
	ok(strstr(d.msg, "YYYY-MM-DD") != NULL && req.path[0] == '\0',
	    "... saying so, with no request left");
	r = dref("2026-13-04", 0, "");
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_E_FIELD,
	    "month 13: refused");
	r = dref("2026-12-04&x", 0, "");
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_E_FIELD,
	    "a date with more after it: refused");
	r = dref("2026-12-04", 1, "x");
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_E_INTERNAL,
	    "v2 has no second call");
	p->profile_free(hm);
	p->profile_free(ctx);
}

static struct ph_http_response answer;

static void
answer_of(int status, const char *body)
{
	th_answer(&answer, status, body, strlen(body), NOW);
}

/*
 * The answer bill is taken for r as the statement, the whole body as it is
 * (what and all name the two points); dl is left describing it.
 */
static void
is_whole_bill(const struct ph_provider *p, void *ctx,
    const struct ph_download_ref *r, struct ph_download *dl,
    const char *what, const char *all)
{
	answer_of(200, bill);
	is_int(p->statement_response(ctx, r, &answer, dl, &d), PH_OK, "%s",
	    what);
	ok(dl->kind == PH_DL_STATEMENT && dl->offset == 0 &&
	    dl->len == strlen(bill) && dl->packing == PH_PACK_NONE, "%s", all);
}

/* What the core gives statement_line after a download: the bill's lines,
 * which the reader with ctx takes (one point). */
static void
is_bill_read(const struct ph_provider *p, void *ctx)
{
	struct th_run run;
	const char *lines[8];
	char copy[sizeof(bill)], *s, *e;
	size_t n = 0;

	memcpy(copy, bill, sizeof(bill));
	for (s = copy; n < 7 && (e = strstr(s, "\r\n")) != NULL; s = e + 2) {
		*e = '\0';
		lines[n++] = s;
	}
	lines[n] = NULL;
	th_feed(p, ctx, lines, "\r\n", &run, &d);
	ok(run.rc == PH_OK && run.nev == 1 &&
	    strcmp(run.ev[0].order_id, "1415640626") == 0 &&
	    run.ev[0].amount == 1, "... which the bill reader takes");
}

static void
test_v2_response(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_download_ref r = dref("2026-12-04", 0, "");
	struct ph_download dl;
	void *ctx = NULL;

	ok(v2profile(&ctx, KEY_MD5, NULL) == PH_OK, "v2 profile");
	is_whole_bill(p, ctx, &r, &dl, "v2: the bill text is the statement",
	    "... all of the body, as it is");
	is_bill_read(p, ctx);

	answer_of(200, "\n <xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[No Bill Exist]]></return_msg><error_code>"
	    "<![CDATA[20002]]></error_code></xml>");
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_OK,
	    "v2 FAIL No Bill Exist: an answer");
	is_int(dl.kind, PH_DL_NONE, "... no statement that day");
	answer_of(200, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[NO Bill Exist]]></return_msg></xml>");
	ok(p->statement_response(ctx, &r, &answer, &dl, &d) == PH_OK &&
	    dl.kind == PH_DL_NONE, "... as the error table spells it too");
	answer_of(200, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[Bill Creating]]></return_msg><error_code>"
	    "<![CDATA[20001]]></error_code></xml>");
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v2 FAIL Bill Creating: ask later");
	ok(strstr(d.msg, "Bill Creating") != NULL && dl.kind == 0,
	    "... the diagnostic quotes WeChat, nothing is given");
	diag("%s", d.msg);
	answer_of(200, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[签名错误]]></return_msg></xml>");
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v2 FAIL of another reason: ask later");
	answer_of(200, "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
	    "</xml>");
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v2 XML SUCCESS without a bill: not a statement");
	answer_of(200, "<xml><return_code>FAIL</return_code>");
	ok(p->statement_response(ctx, &r, &answer, &dl, &d) != PH_OK &&
	    dl.kind == 0, "v2 broken XML: refused, not taken as a bill");
	answer_of(500, bill);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v2 HTTP 500: ask later, even with a bill");
	ok(strstr(d.msg, "500") != NULL, "... naming the status");
	answer_of(404, "");
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v2 HTTP 404: ask later");
	answer_of(200, " \r\n");
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v2 blank answer: not a statement");
	p->profile_free(ctx);
}

/* ---- v3 ------------------------------------------------------------------ */

static struct th_wx3_answer v3;

/* An answer of WeChat Pay, signed with the platform key when signed_. */
static void
v3answer(int status, const char *body, int signed_)
{
	th_wx3_answer(&v3, tv3, V3_PUB_ID, status, body, NOW);
	if (!signed_)
		v3.sig[10] = v3.sig[10] == 'A' ? 'B' : 'A';
	answer = v3.in;
}

/* Whether req's Authorization is the merchant's signature of the request
 * to target at NOW with the nonce of mkcc(). */
static int
v3_authorized(const struct ph_http_request *req, const char *target)
{
	const char *auth = th_req_header(req, "Authorization"), *sig;
	char msg[4096], s[1400];
	size_t n;
	int m;

	if (auth == NULL || strncmp(auth, "WECHATPAY2-SHA256-RSA2048 "
	    "mchid=\"" V3_MCHID "\",nonce_str=\"000102030405060708090A0B0C0D0E0F"
	    "\",signature=\"", 96) != 0 ||
	    strstr(auth, "\",timestamp=\"1700000000\",serial_no=\"" V3_SERIAL
	    "\"") == NULL || (sig = strstr(auth, "signature=\"")) == NULL)
		return 0;
	sig += strlen("signature=\"");
	n = strcspn(sig, "\"");
	snprintf(s, sizeof(s), "%.*s", (int)n, sig);
	m = snprintf(msg, sizeof(msg), "GET\n%s\n1700000000\n"
	    "000102030405060708090A0B0C0D0E0F\n\n", target);
	return th_rsa_check(tv3, msg, (size_t)m, s);
}

static void
test_v3_tradebill(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_download_ref r = dref("2026-12-04", 0, "");
	struct ph_http_request req;
	struct ph_download dl;
	char body[4096], url[2200];
	void *ctx = NULL, *nokey = NULL;

	mkcc();
	ok(v3profile(&ctx, 1) == PH_OK, "v3 profile with the merchant key");
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "v3: tradebill request built");
	is_str(req.method, "GET", "... GET");
	is_str(req.path, "/v3/bill/tradebill?bill_date=2026-12-04&"
	    "bill_type=ALL", "... /v3/bill/tradebill with bill_date and "
	    "bill_type");
	ok(req.body_len == 0 && req.content_type[0] == '\0',
	    "... no body, no content type");
	ok(v3_authorized(&req, req.path),
	    "... its Authorization verifies over GET and the path");
	ok(v3profile(&nokey, 0) == PH_OK, "v3 profile without merchant key");
	is_int(p->statement_request(nokey, &r, &cc, &req, &d), PH_E_CONFIG,
	    "... cannot ask for a bill");
	ok(strstr(d.msg, "merchant_private_key_file") != NULL,
	    "... saying what is missing");
	p->profile_free(nokey);

	v3answer(200, "{\"hash_type\":\"SHA1\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\",\"download_url\":\""
	    FILE_URL "\"}", 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_OK,
	    "v3: signed tradebill answer read");
	is_int(dl.kind, PH_DL_NEXT, "... one more call");
	is_str(dl.next, "SHA1 79BB0F45FC4C42234A918000B2668D689E2BDE04 "
	    FILE_URL, "... carrying the digest and the URL");
	v3answer(200, "{\"hash_type\":\"SHA1\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\",\"download_url\":\""
	    FILE_URL "\"}", 0);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_SIGNATURE, "... with a bad signature: refused");
	ok(dl.kind == 0 && dl.next[0] == '\0', "... giving nothing");
	answer.nheaders = 0;
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_SIGNATURE, "... unsigned: refused");

	v3answer(400, "{\"code\":\"NO_STATEMENT_EXIST\",\"message\":"
	    "\"账单文件不存在\"}", 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_OK,
	    "v3 400 NO_STATEMENT_EXIST, signed: an answer");
	is_int(dl.kind, PH_DL_NONE, "... no statement that day");
	v3answer(400, "{\"code\":\"NO_STATEMENT_EXIST\",\"message\":"
	    "\"账单文件不存在\"}", 0);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_SIGNATURE, "... not signed: not believed");
	v3answer(400, "{\"code\":\"BILL_CREATING\",\"message\":\"账单生成中\"}",
	    1);
	ok(p->statement_response(ctx, &r, &answer, &dl, &d) ==
	    PH_E_PROVIDER && strstr(d.msg, "BILL_CREATING") != NULL,
	    "v3 400 BILL_CREATING: ask later");
	diag("%s", d.msg);
	v3answer(500, "{\"code\":\"SYSTEM_ERROR\",\"message\":\"系统繁忙\"}", 0);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v3 500 SYSTEM_ERROR: ask later");
	v3answer(502, "", 0);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_PROVIDER, "v3 502 without a body: ask later");

	v3answer(200, "{\"hash_type\":\"MD5\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\",\"download_url\":\""
	    FILE_URL "\"}", 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_UNSUPPORTED, "hash_type other than SHA1: refused");
	v3answer(200, "{\"hash_type\":\"SHA1\",\"hash_value\":\"79BB0F45\","
	    "\"download_url\":\"" FILE_URL "\"}", 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_E_FIELD,
	    "a hash_value of 8 digits: refused");
	v3answer(200, "{\"hash_type\":\"SHA1\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\"}", 1);
	ok(p->statement_response(ctx, &r, &answer, &dl, &d) != PH_OK &&
	    dl.kind == 0, "no download_url: refused");
	v3answer(200, "{\"hash_type\":\"SHA1\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\",\"download_url\":"
	    "\"ftp://api.mch.weixin.qq.com/v3/billdownload/file\"}", 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_E_FIELD,
	    "a download_url not https: refused");
	v3answer(200, "{\"hash_type\":\"SHA1\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\",\"download_url\":"
	    "\"https://api.mch.weixin.qq.com@evil.example/v3/x\"}", 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_E_FIELD,
	    "a download_url with user information: refused");
	v3answer(200, "{\"hash_type\":\"SHA1\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\",\"download_url\":"
	    "\"https://api.mch.weixin.qq.com/v3/a b\"}", 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_E_FIELD,
	    "a download_url with a blank: refused");
	memset(url, 'a', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	memcpy(url, "https://api.mch.weixin.qq.com/", 30);
	snprintf(body, sizeof(body), "{\"hash_type\":\"SHA1\",\"hash_value\":"
	    "\"79BB0F45FC4C42234A918000B2668D689E2BDE04\",\"download_url\":"
	    "\"%s\"}", url);
	v3answer(200, body, 1);
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d), PH_E_TOOBIG,
	    "a download_url longer than a request path: refused");
	ok(dl.kind == 0 && dl.next[0] == '\0', "... nothing given");
	p->profile_free(ctx);
}

static void
test_v3_file(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_download_ref r;
	struct ph_http_request req;
	struct ph_download dl;
	unsigned char md[PH_SHA1_LEN];
	char hex[2 * PH_SHA1_LEN + 1], next[PH_DOWNLOAD_NEXT_MAX];
	void *ctx = NULL;

	mkcc();
	ok(v3profile(&ctx, 1) == PH_OK, "v3 profile");
	EVP_Digest(bill, strlen(bill), md, NULL, EVP_sha1(), NULL);
	ph_hex_upper(md, sizeof(md), hex);
	snprintf(next, sizeof(next), "SHA1 %s " FILE_URL, hex);
	r = dref("2026-12-04", 1, next);
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "v3: file request built");
	is_str(req.method, "GET", "... GET");
	is_str(req.path, FILE_URL, "... of the absolute download_url");
	ok(v3_authorized(&req, "/v3/billdownload/file?token=6XIv5TUPto7pByrTQ"
	    "Khd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO"),
	    "... its Authorization verifies over the URL's path and query");

	is_whole_bill(p, ctx, &r, &dl,
	    "v3: the file whose SHA1 is hash_value (upper-case hex)",
	    "... is the statement, all of it, unpacked");
	ph_hex_lower(md, sizeof(md), hex);
	snprintf(next, sizeof(next), "SHA1 %s " FILE_URL, hex);
	ok(p->statement_response(ctx, &r, &answer, &dl, &d) == PH_OK &&
	    dl.kind == PH_DL_STATEMENT, "... lower-case hex as well");
	answer_of(200, "交易时间,公众账号ID\r\n");
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_SIGNATURE, "a file of another SHA1: refused");
	ok(strstr(d.msg, "SHA1") != NULL && strstr(d.msg, hex) != NULL &&
	    dl.kind == 0, "... the diagnostic names both digests");
	diag("%s", d.msg);
	answer_of(404, "{\"code\":\"RESOURCE_NOT_EXISTS\",\"message\":"
	    "\"token expired\"}");
	ok(p->statement_response(ctx, &r, &answer, &dl, &d) ==
	    PH_E_PROVIDER && strstr(d.msg, "RESOURCE_NOT_EXISTS") != NULL,
	    "file answer 404: ask later");

	snprintf(next, sizeof(next), "SHA1 %s http://127.0.0.1:8080/v3/"
	    "billdownload/file?token=abc", hex);
	r.next = next;
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_OK,
	    "a plain http download_url (a simulator's)");
	is_str(req.path, "/v3/billdownload/file?token=abc",
	    "... is asked of api_base, by its path and query");
	ok(v3_authorized(&req, req.path), "... signed over them");

	r.next = "SHA1 1234 " FILE_URL;
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_E_INTERNAL,
	    "a next that is not the tradebill answer's: refused");
	ok(req.path[0] == '\0', "... no request left");
	r.next = "";
	is_int(p->statement_response(ctx, &r, &answer, &dl, &d),
	    PH_E_INTERNAL, "... for the answer too");
	r.step = 2;
	r.next = next;
	is_int(p->statement_request(ctx, &r, &cc, &req, &d), PH_E_INTERNAL,
	    "v3 has no third call");
	p->profile_free(ctx);
}

int
main(void)
{
	if ((tv3 = th_key_of_pem(th_tv3_priv_pem)) == NULL)
		abort();
	test_v2_request();
	test_v2_response();
	test_v3_tradebill();
	test_v3_file();
	EVP_PKEY_free(tv3);
	return done_testing();
}
