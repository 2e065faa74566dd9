/*
 * The wechat plugin's API v3 order query and close, driven through its
 * table: the requests byte for byte, signed with TV-3's merchant key (the
 * signatures computed independently, or verified here), and the signed
 * answers as WeChat Pay gives them (wechat_v3_fixture.c signs them): the
 * states of an order, errors, and answers not to be believed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../providers/wechat/wechat_test.h"

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"
#include "wechat_v3_fixture.h"

static struct ph_diag d;

/* ---- order query -------------------------------------------------------- */

static struct ph_order_ref *
order_ref(const char *id)
{
	return th_order_ref(id, 100, NOW - 600);
}

static void
fixed_cc(struct ph_call_ctx *cc)
{
	th_call_ctx(cc, 1554208460, 0);
}

/* Checks an RSA-SHA256 base64 signature with a PEM public key. */
static int
verify_with(const char *pem, const char *msg, const char *sig64)
{
	unsigned char sig[512];
	size_t n;

	if (ph_base64_decode(sig64, strlen(sig64), sig, sizeof(sig), &n) !=
	    PH_OK)
		return 0;
	return ph_rsa_verify_pem("SHA256", (const unsigned char *)pem,
	    strlen(pem), msg, strlen(msg), sig, n, NULL) == PH_OK;
}

/* The Authorization header of w3fx_prof_v3's requests at fixed_cc's time and
 * nonce, of signature sig. */
static void
auth_want(char *want, size_t cap, const char *sig)
{
	snprintf(want, cap, "WECHATPAY2-SHA256-RSA2048 mchid=\"1230000109\","
	    "nonce_str=\"000102030405060708090A0B0C0D0E0F\",signature=\"%s\","
	    "timestamp=\"1554208460\",serial_no=\"" TV3_SERIAL "\"", sig);
}

/* The signature="..." of an Authorization header hdr into sig (cap bytes,
 * empty where there is none): whether there is one that fits. */
static int
auth_signature(const char *hdr, char *sig, size_t cap)
{
	const char *s, *e;

	s = strstr(hdr, "signature=\"");
	e = s != NULL ? strchr(s + 11, '"') : NULL;
	if (s == NULL || e == NULL || (size_t)(e - s - 11) >= cap) {
		sig[0] = '\0';
		return 0;
	}
	memcpy(sig, s + 11, (size_t)(e - s - 11));
	sig[e - s - 11] = '\0';
	return 1;
}

/* A query (or, with close, a close) request of a v3 profile without a
 * merchant key is refused as configuration, named what, the diagnostic
 * naming names (NULL: not checked). */
static void
no_merchant_key(int close, const char *what, const char *names)
{
	const struct ph_provider *pv = payhook_provider();
	struct ph_http_request r;
	struct ph_call_ctx cc;
	struct w3fx_prof p;
	void *ctx;

	fixed_cc(&cc);
	w3fx_prof_v3(&p);
	p.priv = p.serial = NULL;
	w3fx_mkprof(&p, &ctx, &d);
	is_int(close ? pv->close_request(ctx, order_ref("A1"), &cc, &r, &d) :
	    pv->query_request(ctx, order_ref("A1"), &cc, &r, &d), PH_E_CONFIG,
	    "%s", what);
	if (names != NULL)
		ok(strstr(d.msg, names) != NULL,
		    "diagnostic names the missing key");
	pv->profile_free(ctx);
}

static void
test_query_request(void)
{
	/* Computed independently (Python cryptography) with the TV-3 key over
	 * "GET\n<path>\n1554208460\n000102030405060708090A0B0C0D0E0F\n\n". */
	static const char sig_q[] =
	    "RcNB2fES1krtFdW59Rkjk3VUNiFW3L8kWdGgPnuhWeGmZ4NR4XlPNsZ69zqK3USi"
	    "F/ZsQ6w59luMliSk8npaarxz6gl2l84Eekx4xbse+j08cTZkZLbFMWFAeUEihrvP"
	    "22zFObdX5pC0NmhM6GaGQMR1B+ACpARPaGb92wcLUQiYp2G1NBbKYb5hflbgglMY"
	    "EpssxfJwsKGnCpUaEnP+2y+7eB/Q8oHppg/jMaTdTCljst0/TsbwjZ6FhiYCLS43"
	    "u7feenRJ5UT9X+jtnLLh/TKNtgKtCVyg5hQ/mTDPwvhQjcH4XK9JzCt1ogw1YF9Q"
	    "wMZfevBzSgBW4NYeocWdgw==";
	static const char sig_pct[] =
	    "Auo/+UHiYWTxjMD41Eht0t4HhQUGM7lG6eJJVgRTYVJXcph+N67NbzBlHd4lN/6A"
	    "FQzeOdmb+odj94v7n21btwOs6cMQ0wuWBrx2cTZJ47xIciCspyW6j13jxKcNOV1N"
	    "TNjWVB6MEn580ovO5K3gXZc24xaT4+2dBvBRINPUAUUxMUh/C+SM+8t2llRXbsdy"
	    "l/zTPQXZYMAkIayzu7guwQ/I8Iykvf4argu08KAXxY13UPiEZ9vC+uFEy6XXjnp2"
	    "jgugOWKNJvBCzDDchufYTkJNlH5Bmb1DGo9EcIsEHCSM3x5eKto0VBex9CPmKb7R"
	    "fmHmcUgAcNoRid1hRuIJEA==";
	const struct ph_provider *pv = payhook_provider();
	struct ph_http_request r;
	struct ph_call_ctx cc;
	char want[2048], sig[400];
	struct w3fx_prof p;
	void *ctx;
	int found;

	ctx = w3fx_v3ctx(&d);
	fixed_cc(&cc);
	is_int(pv->query_request(ctx, order_ref("1217752501201407033233368018"),
	    &cc, &r, &d), PH_OK, "v3 query request built");
	is_str(r.method, "GET", "v3 query: GET");
	is_str(r.path, "/v3/pay/transactions/out-trade-no/"
	    "1217752501201407033233368018?mchid=1230000109",
	    "v3 query: path and query string (doc/design/protocols.md §2.7)");
	is_str(r.content_type, "", "v3 query: no content type");
	is_int(r.body_len, 0, "v3 query: no body");
	is_int(r.nheaders, 2, "v3 query: two headers (the core adds "
	    "User-Agent)");
	is_str(r.headers[0].name, "Accept", "header 1: Accept");
	is_str(r.headers[0].value, "application/json", "Accept JSON");
	is_str(r.headers[1].name, "Authorization", "header 2: Authorization");
	auth_want(want, sizeof(want), sig_q);
	is_str(r.headers[1].value, want, "v3 query: Authorization, byte for "
	    "byte");
	/* And the signature in it verifies with the merchant public key. */
	found = auth_signature(r.headers[1].value, sig, sizeof(sig));
	ok(found, "signature found in the header");
	if (found) {
		ok(verify_with(th_tv3_pub_pem, "GET\n/v3/pay/transactions/"
		    "out-trade-no/1217752501201407033233368018?mchid=1230000109"
		    "\n1554208460\n000102030405060708090A0B0C0D0E0F\n\n", sig),
		    "the Authorization signature verifies with the merchant "
		    "public key");
		ok(!verify_with(th_tv3_pub_pem, "GET\n/v3/pay/transactions/"
		    "out-trade-no/1217752501201407033233368018?mchid=1230000109"
		    "\n1554208461\n000102030405060708090A0B0C0D0E0F\n\n", sig),
		    "... and not over another timestamp");
	}

	is_int(pv->query_request(ctx, order_ref("A|B*1"), &cc, &r, &d), PH_OK,
	    "v3 query: out_trade_no with | and *");
	is_str(r.path, "/v3/pay/transactions/out-trade-no/A%7CB%2A1"
	    "?mchid=1230000109", "v3 query: percent-encoded as signed");
	auth_want(want, sizeof(want), sig_pct);
	is_str(r.headers[1].value, want, "v3 query: the encoded path is what "
	    "is signed");
	is_int(pv->query_request(ctx, order_ref("A.1"), &cc, &r, &d),
	    PH_E_FIELD, "v3 query: an id WeChat does not allow refused");
	ok(r.method[0] == '\0' && r.nheaders == 0, "refused: nothing built");
	is_int(pv->query_request(ctx,
	    order_ref("123456789012345678901234567890123"), &cc, &r, &d),
	    PH_E_FIELD, "v3 query: 33-character id refused");
	payhook_provider()->profile_free(ctx);

	no_merchant_key(0, "v3 query without a merchant key: configuration",
	    "merchant_private_key_file");

	/* A v2 profile still gets the v2 request. */
	memset(&p, 0, sizeof(p));
	p.appid = APPID;
	p.mch_id = MCHID;
	p.api_key = "192006250b4c09247ec02edce69f6a2d";
	w3fx_mkprof(&p, &ctx, &d);
	is_int(pv->query_request(ctx, order_ref("A1"), &cc, &r, &d), PH_OK,
	    "v2 profile: query request");
	ok(strcmp(r.method, "POST") == 0 &&
	    strcmp(r.path, "/pay/orderquery") == 0,
	    "v2 profile: still POST /pay/orderquery");
	payhook_provider()->profile_free(ctx);
}

/*
 * The answer of status with s's headers (none when NULL) and body b,
 * received at NOW, to a query of order, or with close to a close: d
 * emptied and *ev filled with junk beforehand.
 */
static int
respond(void *ctx, int close, const char *order, int status,
    struct w3fx_sent *s, const char *b, struct ph_event *ev)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_http_response in;

	memset(&in, 0, sizeof(in));
	in.status = status;
	in.headers = s != NULL ? s->h : NULL;
	in.nheaders = s != NULL ? s->nh : 0;
	in.body = (const unsigned char *)b;
	in.body_len = strlen(b);
	in.now = NOW;
	d.msg[0] = '\0';
	memset(ev, 0x5a, sizeof(*ev));
	if (close)
		return p->close_response(ctx, order_ref(order), &in, ev, &d);
	return p->query_response(ctx, order_ref(order), &in, ev, &d);
}

static int
answer(void *ctx, const char *order, int status, struct w3fx_sent *s,
    const char *b, struct ph_event *ev)
{
	return respond(ctx, 0, order, status, s, b, ev);
}

static int
close_answer(void *ctx, const char *order, int status, struct w3fx_sent *s,
    const char *b, struct ph_event *ev)
{
	return respond(ctx, 1, order, status, s, b, ev);
}

static void
test_query_response(void)
{
	static struct w3fx_msg note;
	struct ph_event ev, nev;
	struct w3fx_sent s;
	void *ctx;
	char plain[8192];
	static const struct th_state states[] = {
		{ "NOTPAY", PH_EV_PAYMENT_PENDING },
		{ "USERPAYING", PH_EV_PAYMENT_PENDING },
		{ "CLOSED", PH_EV_PAYMENT_CLOSED },
		{ "PAYERROR", PH_EV_PAYMENT_FAILED },
		{ "REVOKED", PH_EV_PAYMENT_FAILED },
		{ "REFUND", PH_EV_PAYMENT_SUCCEEDED },
	};
	size_t i;
	char want[128];

	ctx = w3fx_v3ctx(&d);

	w3fx_tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_OK,
	    "query SUCCESS: verified");
	is_int(w3fx_notify_plain(ctx, &note, "transaction", plain, &nev, &d),
	    PH_OK, "the same transaction as a notification");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
	    strcmp(ev.dedup_key, "pay:4200000987") == 0 &&
	    th_same_fact(&ev, &nev) && ev.occurred_at == nev.occurred_at,
	    "query and notification of one payment are one fact");

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		w3fx_tx(plain, sizeof(plain), "Q1", "4200000987",
		    states[i].state, "100");
		w3fx_sign_body(&s, w3fx_plat_b, "ABCDEF0123456789", NOW, plain,
		    strlen(plain));
		is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_OK,
		    "%s", states[i].state);
		is_int(ev.kind, states[i].kind, "%s", states[i].state);
		if (states[i].kind != PH_EV_PAYMENT_SUCCEEDED) {
			snprintf(want, sizeof(want), "query:Q1:%s",
			    states[i].state);
			is_str(ev.dedup_key, want, "dedup key of the state");
		}
	}

	w3fx_tx(plain, sizeof(plain), "Q2", "4200000987", "SUCCESS", "100");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_FIELD,
	    "an answer about another order refused");
	ok(th_event_empty(&ev), "refused answer: empty event");
	is_int(answer(ctx, "Q1", 200, NULL, plain, &ev), PH_E_SIGNATURE,
	    "an unsigned 200 refused");
	w3fx_tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, plain, strlen(plain));
	plain[strlen(plain) - 3] = '9';
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_SIGNATURE,
	    "a tampered answer refused");
	w3fx_tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW - 1000, plain,
	    strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_SIGNATURE,
	    "a stale answer refused");
	w3fx_tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "12.5");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_FIELD,
	    "an answer with amount 12.5 refused");
	w3fx_tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	memcpy(strstr(plain, MCHID), "1230000108", 10);
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_MERCHANT,
	    "an answer for another mchid refused");

	snprintf(plain, sizeof(plain), "{\"code\":\"ORDER_NOT_EXIST\","
	    "\"message\":\"\xe8\xae\xa2\xe5\x8d\x95\xe4\xb8\x8d\xe5\xad\x98"
	    "\xe5\x9c\xa8\"}");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 404, &s, plain, &ev), PH_OK,
	    "404 ORDER_NOT_EXIST, signed");
	ok(ev.kind == PH_EV_NOT_FOUND && strcmp(ev.order_id, "Q1") == 0 &&
	    strcmp(ev.dedup_key, "query:Q1:ORDER_NOT_EXIST") == 0 &&
	    strcmp(ev.currency, "CNY") == 0, "404: not found");
	is_int(answer(ctx, "Q1", 404, NULL, plain, &ev), PH_E_SIGNATURE,
	    "404 ORDER_NOT_EXIST unsigned: not trusted");
	snprintf(plain, sizeof(plain), "{\"code\":\"SYSTEM_ERROR\","
	    "\"message\":\"busy\"}");
	is_int(answer(ctx, "Q1", 500, NULL, plain, &ev), PH_E_PROVIDER,
	    "500 SYSTEM_ERROR: ask later");
	ok(strstr(d.msg, "SYSTEM_ERROR") != NULL && strstr(d.msg, "busy"),
	    "500: the code and message are in the diagnostic");
	is_int(answer(ctx, "Q1", 502, NULL, "<html>bad gateway</html>", &ev),
	    PH_E_PROVIDER, "502 with an HTML body: ask later");
	snprintf(plain, sizeof(plain), "{\"code\":\"SIGN_ERROR\","
	    "\"message\":\"\\u0007bad\\nsign\"}");
	is_int(answer(ctx, "Q1", 401, NULL, plain, &ev), PH_E_PROVIDER,
	    "401 SIGN_ERROR: an error, no event");
	ok(strstr(d.msg, "\n") == NULL, "provider text cleaned up");
	payhook_provider()->profile_free(ctx);
}

/*
 * Close (tests/vectors/FINDINGS.md §4): the request of wechatpay-go's
 * CloseOrder (wechatpay-apiv3/wechatpay-go @ 6dbd7ce, services/payments/
 * jsapi/api_jsapi.go lines 33-65, body CloseRequest of models.go lines
 * 130-133, example api_jsapi_example_test.go lines 48-53) and of WeChat's
 * page for it (pay.weixin.qq.com/doc/v3/merchant/4013070360): POST
 * .../out-trade-no/{out_trade_no}/close, {"mchid":"1230000109"}, signed
 * as every request (TV-3's key and serial); answered 204, signed over the
 * empty body.
 */
static void
test_close_request(void)
{
	static const char path[] = "/v3/pay/transactions/out-trade-no/"
	    "1217752501201407033233368018/close";
	const struct ph_provider *pv = payhook_provider();
	struct ph_http_request r;
	struct ph_call_ctx cc;
	char msg[1024], sig[400];
	void *ctx;

	ok(pv->caps & PH_CAP_CLOSE, "close: in the table");
	ctx = w3fx_v3ctx(&d);
	fixed_cc(&cc);
	is_int(pv->close_request(ctx, order_ref("1217752501201407033233368018"),
	    &cc, &r, &d), PH_OK, "v3 close request built");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(r.method, "POST", "v3 close: POST");
	is_str(r.path, path, "v3 close: path");
	is_str(r.content_type, "application/json", "v3 close: JSON body");
	ok(r.body_len == strlen("{\"mchid\":\"1230000109\"}") &&
	    memcmp(r.body, "{\"mchid\":\"1230000109\"}", r.body_len) == 0,
	    "v3 close: the body is exactly {\"mchid\":\"1230000109\"}");
	is_int(r.nheaders, 2, "v3 close: Accept and Authorization");
	is_str(r.headers[0].name, "Accept", "close header 1: Accept");
	is_str(r.headers[1].name, "Authorization", "close header 2");
	ok(strncmp(r.headers[1].value, WX3_SCHEME " mchid=\"1230000109\","
	    "nonce_str=\"000102030405060708090A0B0C0D0E0F\",signature=\"",
	    strlen(WX3_SCHEME) + 71) == 0 && strstr(r.headers[1].value,
	    "timestamp=\"1554208460\",serial_no=\"" TV3_SERIAL "\"") != NULL,
	    "v3 close: Authorization names mchid, nonce, time and serial");
	auth_signature(r.headers[1].value, sig, sizeof(sig));
	snprintf(msg, sizeof(msg), "POST\n%s\n1554208460\n"
	    "000102030405060708090A0B0C0D0E0F\n{\"mchid\":\"1230000109\"}\n",
	    path);
	ok(verify_with(th_tv3_pub_pem, msg, sig), "v3 close: signed over "
	    "POST, the path, time, nonce and the body");

	is_int(pv->close_request(ctx, order_ref("A|B*1"), &cc, &r, &d), PH_OK,
	    "v3 close: out_trade_no with | and *");
	is_str(r.path, "/v3/pay/transactions/out-trade-no/A%7CB%2A1/close",
	    "v3 close: percent-encoded as the Go SDK's PathEscape");
	is_int(pv->close_request(ctx, order_ref("A.1"), &cc, &r, &d),
	    PH_E_FIELD, "v3 close: an id WeChat does not allow refused");
	ok(r.method[0] == '\0' && r.nheaders == 0 && r.body_len == 0,
	    "refused close: nothing built");
	payhook_provider()->profile_free(ctx);

	no_merchant_key(1, "v3 close without a merchant key: configuration",
	    NULL);
}

static void
test_close_response(void)
{
	static const char paid[] = "{\"code\":\"ORDERPAID\","
	    "\"message\":\"paid\"}";
	static const char closed[] = "{\"code\":\"ORDER_CLOSED\","
	    "\"message\":\"closed\"}";
	static const char gone[] = "{\"code\":\"ORDER_NOT_EXIST\","
	    "\"message\":\"no such order\"}";
	struct ph_event ev;
	struct w3fx_sent s;
	void *ctx;

	ctx = w3fx_v3ctx(&d);
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, "", 0);
	is_int(close_answer(ctx, "C1", 204, &s, "", &ev), PH_OK,
	    "close 204, signed over the empty body: accepted");
	ok(ev.kind == PH_EV_PAYMENT_CLOSED && strcmp(ev.order_id, "C1") == 0 &&
	    strcmp(ev.dedup_key, "close:C1:CLOSED") == 0 &&
	    strcmp(ev.currency, "CNY") == 0 && ev.txn_id[0] == '\0',
	    "close 204: payment closed, close:C1:CLOSED");
	is_int(close_answer(ctx, "C1", 200, &s, "", &ev), PH_OK,
	    "close 200, signed: accepted");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "close 200: closed");

	is_int(close_answer(ctx, "C1", 204, NULL, "", &ev), PH_E_PROVIDER,
	    "close 204 unsigned: not closed, ask later");
	ok(th_event_empty(&ev), "unsigned 204: no event");
	is_int(close_answer(ctx, "C1", 204, &s, "{}", &ev), PH_E_PROVIDER,
	    "close 204 whose signature covers another body: ask later");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW - 1000, "", 0);
	is_int(close_answer(ctx, "C1", 204, &s, "", &ev), PH_E_PROVIDER,
	    "close 204 with a stale signature: ask later");
	w3fx_sign_body(&s, w3fx_plat_c, SER_A, NOW, "", 0);
	is_int(close_answer(ctx, "C1", 204, &s, "", &ev), PH_E_PROVIDER,
	    "close 204 signed by another key: ask later");

	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, paid, strlen(paid));
	is_int(close_answer(ctx, "C1", 400, &s, paid, &ev), PH_OK,
	    "close 400 ORDERPAID, signed: an answer");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED && ev.txn_id[0] == '\0' &&
	    ev.amount == 0 && strcmp(ev.dedup_key, "close:C1:ORDERPAID") == 0,
	    "ORDERPAID: 'paid' without a transaction: the core queries");
	is_int(close_answer(ctx, "C1", 400, NULL, paid, &ev), PH_E_PROVIDER,
	    "close 400 ORDERPAID unsigned: ask later");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, closed, strlen(closed));
	is_int(close_answer(ctx, "C1", 400, &s, closed, &ev), PH_OK,
	    "close 400 ORDER_CLOSED, signed: closed already");
	ok(ev.kind == PH_EV_PAYMENT_CLOSED &&
	    strcmp(ev.dedup_key, "close:C1:ORDER_CLOSED") == 0,
	    "ORDER_CLOSED: payment closed");
	w3fx_sign_body(&s, w3fx_plat_a, SER_A, NOW, gone, strlen(gone));
	is_int(close_answer(ctx, "C1", 404, &s, gone, &ev), PH_E_PROVIDER,
	    "close 404 ORDER_NOT_EXIST: not a close, ask later (the query "
	    "decides)");
	is_int(close_answer(ctx, "C1", 500, NULL, "{\"code\":\"SYSTEM_ERROR\","
	    "\"message\":\"busy\"}", &ev), PH_E_PROVIDER,
	    "close 500 SYSTEM_ERROR: ask later");
	ok(strstr(d.msg, "SYSTEM_ERROR") != NULL, "diagnostic: %s", d.msg);
	is_int(close_answer(ctx, "C1", 503, NULL, "", &ev), PH_E_PROVIDER,
	    "close 503 without a body: ask later");
	ok(th_event_empty(&ev), "error: no event");
	payhook_provider()->profile_free(ctx);
}

int
main(void)
{
	w3fx_make_keys();
	test_query_request();
	test_query_response();
	test_close_request();
	test_close_response();
	w3fx_free_keys();
	return done_testing();
}
