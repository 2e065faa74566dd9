/*
 * The wechat plugin's v2 calls, driven through its table: orderquery and
 * closeorder requests byte for byte (their signs computed independently
 * with Python's hashlib and by the test's own signer), and their answers,
 * signed by that signer (wechat_v2_fixture.c): every trade_state,
 * business failures, signatures, the merchant's identity, the transport.
 */
#include <stdio.h>
#include <string.h>

#include "../../../../providers/wechat/wechat_test.h"

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"
#include "wechat_v2_fixture.h"

static struct ph_diag d;

/* ---- outbound calls: orderquery and closeorder -------------------------- */

/* cc->random is first, first + 1, ...: the nonce is the hex of the
 * first 16 bytes. */
static void
fixed_cc(struct ph_call_ctx *cc, unsigned int first)
{
	th_call_ctx(cc, 1414647400, first);
}

/* An unpaid order's answer: no payer, no transaction, no time. */
static void
unpaid_note(struct th_note *n, const char *order, const char *state)
{
	const char *const f[] = {
		"openid", NULL,
		"is_subscribe", NULL,
		"trade_type", NULL,
		"bank_type", NULL,
		"transaction_id", NULL,
		"time_end", NULL,
		"cash_fee", NULL,
		"trade_state_desc",
		    "\xe8\xae\xa2\xe5\x8d\x95"
		    "\xe6\x9c\xaa\xe6\x94\xaf\xe4\xbb\x98",
		NULL
	};

	w2fx_query_note(n, order, "", state);
	th_note_set_all(n, f);
}

/* A business failure (result_code FAIL) of either call. */
static void
fail_note(struct th_note *n, const char *err, const char *des)
{
	const char *const f[] = {
		"return_code", "SUCCESS",
		"return_msg", "OK",
		"appid", APPID,
		"mch_id", MCH_ID,
		"nonce_str", "4CHqpH8KqNqsNnnE",
		"result_code", "FAIL",
		"err_code", err,
		"err_code_des", des,
		NULL
	};

	th_note_fill(n, f);
}

/* closeorder's answer when the order was closed. */
static void
close_note(struct th_note *n)
{
	const char *const f[] = {
		"return_code", "SUCCESS",
		"return_msg", "OK",
		"appid", APPID,
		"mch_id", MCH_ID,
		"nonce_str", "BFK89FC6rxKCOjLX",
		"result_code", "SUCCESS",
		"result_msg", "OK",
		NULL
	};

	th_note_fill(n, f);
}

static void
test_call_requests(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_http_request r;
	struct ph_call_ctx cc;
	struct th_note n;
	void *ctx = NULL;
	char body[4096];
	size_t len;

	ok(p->query_request && p->query_response && p->close_request &&
	    p->close_response, "table: query and close entries set");

	/* MD5 profile, orderquery.  Expected bytes written out by hand;
	 * the sign was computed with Python's hashlib over
	 * "appid=wx2421b1c4370ec43b&mch_id=10000100&nonce_str=000102030405
	 * 060708090a0b0c0d0e0f&out_trade_no=1409811653&key=<KEY_MD5>". */
	w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5", &d);
	fixed_cc(&cc, 0);
	is_int(p->query_request(ctx, w2fx_order_ref("1409811653"), &cc, &r, &d),
	    PH_OK, "orderquery request: built");
	is_str(r.method, "POST", "orderquery request: POST");
	is_str(r.path, "/pay/orderquery", "orderquery request: path");
	is_str(r.content_type, "text/xml", "orderquery request: text/xml");
	is_int(r.nheaders, 0, "orderquery request: no extra headers");
	ok(th_req_body_is(&r, "<xml>"
	    "<appid><![CDATA[wx2421b1c4370ec43b]]></appid>"
	    "<mch_id><![CDATA[10000100]]></mch_id>"
	    "<nonce_str><![CDATA[000102030405060708090a0b0c0d0e0f]]>"
	    "</nonce_str>"
	    "<out_trade_no><![CDATA[1409811653]]></out_trade_no>"
	    "<sign><![CDATA[23D4A882058808B5D47964F4AE2C6566]]></sign>"
	    "</xml>"), "orderquery request: exact bytes (MD5)");
	memcpy(body, r.body, r.body_len < sizeof(body) - 1 ? r.body_len :
	    sizeof(body) - 1);
	body[r.body_len < sizeof(body) - 1 ? r.body_len : sizeof(body) - 1] =
	    '\0';
	ok(strstr(body, "sign_type") == NULL,
	    "orderquery request: no sign_type on an MD5 profile");
	/* The sign again, by the test's own signer. */
	memset(&n, 0, sizeof(n));
	th_note_set(&n, "appid", APPID);
	th_note_set(&n, "mch_id", MCH_ID);
	th_note_set(&n, "nonce_str", "000102030405060708090a0b0c0d0e0f");
	th_note_set(&n, "out_trade_no", "1409811653");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_str(th_note_get(&n, "sign"), "23D4A882058808B5D47964F4AE2C6566",
	    "orderquery request: the test's signer agrees");
	/* And the whole body, rendered by the test from those fields. */
	len = w2fx_render(&n, body, sizeof(body));
	ok(r.body_len == len && memcmp(r.body, body, len) == 0,
	    "orderquery request: same bytes as the test's renderer");

	/* Fresh random bytes, fresh nonce and sign. */
	fixed_cc(&cc, 0x10);
	is_int(p->query_request(ctx, w2fx_order_ref("1409811653"), &cc, &r, &d),
	    PH_OK, "orderquery request: other random bytes");
	memcpy(body, r.body, r.body_len);
	body[r.body_len] = '\0';
	ok(strstr(body, "<nonce_str><![CDATA[101112131415161718191a1b1c1d"
	    "1e1f]]></nonce_str>") != NULL,
	    "orderquery request: nonce is the hex of cc->random");
	ok(strstr(body, "23D4A882058808B5D47964F4AE2C6566") == NULL,
	    "orderquery request: another nonce, another sign");

	/* closeorder on the MD5 profile: same fields, other path. */
	fixed_cc(&cc, 0);
	is_int(p->close_request(ctx, w2fx_order_ref("1409811653"), &cc, &r, &d),
	    PH_OK, "closeorder request: built");
	is_str(r.method, "POST", "closeorder request: POST");
	is_str(r.path, "/pay/closeorder", "closeorder request: path");
	is_str(r.content_type, "text/xml", "closeorder request: text/xml");
	ok(th_req_body_is(&r, "<xml>"
	    "<appid><![CDATA[wx2421b1c4370ec43b]]></appid>"
	    "<mch_id><![CDATA[10000100]]></mch_id>"
	    "<nonce_str><![CDATA[000102030405060708090a0b0c0d0e0f]]>"
	    "</nonce_str>"
	    "<out_trade_no><![CDATA[1409811653]]></out_trade_no>"
	    "<sign><![CDATA[23D4A882058808B5D47964F4AE2C6566]]></sign>"
	    "</xml>"), "closeorder request: exact bytes (MD5)");

	/* Order ids WeChat would refuse are not sent. */
	memset(&r, 0x5a, sizeof(r));
	is_int(p->query_request(ctx, w2fx_order_ref("A/1"), &cc, &r, &d),
	    PH_E_FIELD, "request: order id with / refused");
	ok(r.body_len == 0 && r.path[0] == '\0',
	    "request: nothing half-built on failure");
	ok(strstr(d.msg, "out_trade_no") != NULL, "request: diagnostic");
	is_int(p->close_request(ctx,
	    w2fx_order_ref("123456789012345678901234567890123"), &cc, &r, &d),
	    PH_E_FIELD, "request: 33-character order id refused");
	is_int(p->query_request(ctx, w2fx_order_ref(""), &cc, &r, &d),
	    PH_E_FIELD, "request: empty order id refused");
	is_int(p->query_request(ctx, w2fx_order_ref(NULL), &cc, &r, &d),
	    PH_E_FIELD, "request: NULL order id refused");
	p->profile_free(ctx);

	/* HMAC-SHA256 profile, closeorder: sign_type is sent and signed.
	 * Sign by Python: hmac.new(KEY_HMAC, "appid=wxd930ea5d5a258f4f&
	 * mch_id=10000200&nonce_str=a0a1...af&out_trade_no=H-7|x*&
	 * sign_type=HMAC-SHA256&key=<KEY_HMAC>", sha256). */
	w2fx_mkprofile(&ctx, "wxd930ea5d5a258f4f", "10000200", KEY_HMAC,
	    "HMAC-SHA256", &d);
	fixed_cc(&cc, 0xa0);
	is_int(p->close_request(ctx, w2fx_order_ref("H-7|x*"), &cc, &r, &d),
	    PH_OK, "closeorder request (HMAC): built");
	ok(th_req_body_is(&r, "<xml>"
	    "<appid><![CDATA[wxd930ea5d5a258f4f]]></appid>"
	    "<mch_id><![CDATA[10000200]]></mch_id>"
	    "<nonce_str><![CDATA[a0a1a2a3a4a5a6a7a8a9aaabacadaeaf]]>"
	    "</nonce_str>"
	    "<out_trade_no><![CDATA[H-7|x*]]></out_trade_no>"
	    "<sign_type><![CDATA[HMAC-SHA256]]></sign_type>"
	    "<sign><![CDATA[41A3F7C7472889E9F446C005F73C5058C79B5102445268"
	    "362ACB086DCAE19483]]></sign>"
	    "</xml>"), "closeorder request: exact bytes (HMAC-SHA256)");
	memset(&n, 0, sizeof(n));
	th_note_set(&n, "appid", "wxd930ea5d5a258f4f");
	th_note_set(&n, "mch_id", "10000200");
	th_note_set(&n, "nonce_str", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	th_note_set(&n, "out_trade_no", "H-7|x*");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	w2fx_sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_str(th_note_get(&n, "sign"), "41A3F7C7472889E9F446C005F73C5058C79B51"
	    "02445268362ACB086DCAE19483",
	    "closeorder request (HMAC): the test's signer agrees");
	is_int(p->query_request(ctx, w2fx_order_ref("H-7|x*"), &cc, &r, &d),
	    PH_OK, "orderquery request (HMAC): built");
	is_str(r.path, "/pay/orderquery", "orderquery request (HMAC): path");
	len = w2fx_render(&n, body, sizeof(body));
	ok(r.body_len == len && memcmp(r.body, body, len) == 0,
	    "orderquery request (HMAC): same fields and sign");
	p->profile_free(ctx);
}

static void
test_query_answers(void)
{
	static const struct th_state rows[] = {
		{ "NOTPAY", PH_EV_PAYMENT_PENDING },
		{ "USERPAYING", PH_EV_PAYMENT_PENDING },
		{ "ACCEPT", PH_EV_PAYMENT_PENDING },
		{ "CLOSED", PH_EV_PAYMENT_CLOSED },
		{ "REVOKED", PH_EV_PAYMENT_CLOSED },
		{ "PAYERROR", PH_EV_PAYMENT_FAILED },
	};
	const char *txn = "1004400740201409030005092168";
	struct ph_event ev, nev;
	struct th_note n;
	void *ctx = NULL;
	char want[128];
	size_t i;

	w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5", &d);

	/* Paid. */
	w2fx_query_note(&n, "1409811653", txn, "SUCCESS");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "1409811653", &n, &ev, &d), PH_OK,
	    "query SUCCESS: accepted");
	is_event(&ev, "query SUCCESS", PH_EV_PAYMENT_SUCCEEDED, "1409811653",
	    txn, 1, "CNY", 1414647325, "pay:1004400740201409030005092168");
	is_str(ev.refund_id, "", "query SUCCESS: no refund id");
	/* The same payment's notification: one fact for the core. */
	w2fx_base_note(&n, "1409811653", txn);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &nev, &d), PH_OK,
	    "the payment's notification");
	is_str(nev.dedup_key, ev.dedup_key,
	    "query and notification carry the same dedup key");
	ok(nev.kind == ev.kind && nev.amount == ev.amount &&
	    strcmp(nev.txn_id, ev.txn_id) == 0 &&
	    nev.occurred_at == ev.occurred_at,
	    "query and notification describe the same payment");

	w2fx_query_note(&n, "1409811653", txn, "SUCCESS");
	th_note_set(&n, "fee_type", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	ok(w2fx_answer(ctx, 0, "1409811653", &n, &ev, &d) == PH_OK &&
	    strcmp(ev.currency, "CNY") == 0, "query SUCCESS: fee_type "
	    "defaults to CNY");
	w2fx_query_note(&n, "1409811653", txn, "SUCCESS");
	th_note_set(&n, "fee_type", "USD");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	ok(w2fx_answer(ctx, 0, "1409811653", &n, &ev, &d) == PH_OK &&
	    strcmp(ev.currency, "USD") == 0, "query SUCCESS: fee_type carried");

	/* Refunded after payment: still a payment, with its transaction. */
	w2fx_query_note(&n, "1409811653", txn, "REFUND");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "1409811653", &n, &ev, &d), PH_OK,
	    "query REFUND: accepted");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "query REFUND: it was paid");
	is_str(ev.txn_id, txn, "query REFUND: transaction id");
	is_str(ev.dedup_key, "pay:1004400740201409030005092168",
	    "query REFUND: the payment's dedup key");
	is_int(ev.amount, 1, "query REFUND: amount");

	/* Every other trade_state. */
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unpaid_note(&n, "O-42", rows[i].state);
		w2fx_sign_note(&n, KEY_MD5, "MD5");
		snprintf(want, sizeof(want), "query:O-42:%s", rows[i].state);
		ok(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d) == PH_OK &&
		    ev.kind == rows[i].kind, "query %s: event kind %d",
		    rows[i].state, (int)rows[i].kind);
		ok(strcmp(ev.order_id, "O-42") == 0 &&
		    strcmp(ev.dedup_key, want) == 0 &&
		    strcmp(ev.currency, "CNY") == 0 && ev.txn_id[0] == '\0' &&
		    ev.amount == 1, "query %s: order id, dedup key %s, CNY",
		    rows[i].state, want);
	}
	/* Without out_trade_no in the answer, the order asked about. */
	unpaid_note(&n, "O-42", "NOTPAY");
	th_note_set(&n, "out_trade_no", NULL);
	w2fx_set_raw(&n, "total_fee", NULL);
	th_note_set(&n, "fee_type", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	ok(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_PAYMENT_PENDING &&
	    strcmp(ev.order_id, "O-42") == 0 && ev.amount == 0 &&
	    strcmp(ev.currency, "CNY") == 0,
	    "query NOTPAY: bare answer, order id from the request, CNY");
	/* A closed order may name its transaction. */
	w2fx_query_note(&n, "O-42", "4200000000000000000000000001", "PAYERROR");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	ok(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d) == PH_OK &&
	    ev.kind == PH_EV_PAYMENT_FAILED &&
	    strcmp(ev.txn_id, "4200000000000000000000000001") == 0 &&
	    strcmp(ev.dedup_key, "query:O-42:PAYERROR") == 0,
	    "query PAYERROR: transaction id kept");

	w2fx_query_note(&n, "O-42", txn, "PAID");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query: unknown trade_state refused");
	ok(strstr(d.msg, "trade_state") != NULL, "unknown trade_state named");
	ok(th_event_empty(&ev), "refusal leaves an empty event");
	w2fx_query_note(&n, "O-42", txn, "success");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query: trade_state is case-sensitive");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "trade_state", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query: missing trade_state refused");

	/* The answer must be about the order asked about. */
	w2fx_query_note(&n, "O-43", txn, "SUCCESS");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query SUCCESS: another order's answer refused");
	ok(th_event_empty(&ev), "another order: empty event");
	unpaid_note(&n, "O-43", "NOTPAY");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query NOTPAY: another order's answer refused");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "transaction_id", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query SUCCESS: missing transaction_id refused");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	w2fx_set_raw(&n, "total_fee", "0.01");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query SUCCESS: decimal total_fee refused");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "time_end", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query SUCCESS: missing time_end refused");
	w2fx_query_note(&n, "O-42", "T-1", "CLOSED");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query CLOSED: invalid transaction_id refused");

	/* Business failures. */
	fail_note(&n, "ORDERNOTEXIST", "\xe6\xad\xa4\xe4\xba\xa4\xe6\x98\x93"
	    "\xe8\xae\xa2\xe5\x8d\x95\xe5\x8f\xb7\xe4\xb8\x8d\xe5\xad\x98"
	    "\xe5\x9c\xa8");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_OK,
	    "query ORDERNOTEXIST: accepted");
	is_int(ev.kind, PH_EV_NOT_FOUND, "query ORDERNOTEXIST: not found");
	is_str(ev.order_id, "O-42", "query ORDERNOTEXIST: order id");
	is_str(ev.dedup_key, "query:O-42:ORDERNOTEXIST",
	    "query ORDERNOTEXIST: dedup key");
	is_str(ev.currency, "CNY", "query ORDERNOTEXIST: CNY");
	fail_note(&n, "SYSTEMERROR", "\xe7\xb3\xbb\xe7\xbb\x9f\xe9\x94\x99"
	    "\xe8\xaf\xaf");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_PROVIDER,
	    "query SYSTEMERROR: ask later");
	ok(strstr(d.msg, "err_code SYSTEMERROR: ????") != NULL,
	    "query SYSTEMERROR: diagnostic has err_code and its text, "
	    "one ? per non-ASCII character");
	ok(th_event_empty(&ev), "query SYSTEMERROR: no event");
	fail_note(&n, "SIGNERROR", "sign error");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_PROVIDER,
	    "query SIGNERROR: an error");
	fail_note(&n, "ORDERNOTEXIST", "x");
	th_note_set(&n, "err_code", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_PROVIDER,
	    "query result_code FAIL without err_code: an error");
	fail_note(&n, "ORDER NOTEXIST", "x");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query: invalid err_code refused");
	fail_note(&n, "ORDERNOTEXIST", "x");
	th_note_set(&n, "result_code", "MAYBE");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_FIELD,
	    "query: unknown result_code refused");

	/* return_code FAIL: unsigned, an error with the provider's text. */
	memset(&n, 0, sizeof(n));
	th_note_set(&n, "return_code", "FAIL");
	th_note_set(&n, "return_msg", "\xe7\xad\xbe\xe5\x90\x8d\xe9\x94\x99"
	    "\xe8\xaf\xaf\n<b>");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_PROVIDER,
	    "query return_code FAIL: an error");
	ok(strstr(d.msg, "return_code FAIL: ????" "<b>") != NULL,
	    "query return_code FAIL: return_msg in the diagnostic, newline "
	    "dropped");
	ok(strchr(d.msg, '\n') == NULL, "diagnostic stays on one line");
	ok(th_event_empty(&ev), "query return_code FAIL: no event");
	th_note_set(&n, "return_msg", NULL);
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_PROVIDER,
	    "query return_code FAIL without return_msg");
	{
		char big[1024];

		memset(big, 'M', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		th_note_set(&n, "return_msg", big);
		is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_PROVIDER,
		    "query return_code FAIL with a long return_msg");
		ok(strlen(d.msg) < sizeof(d.msg), "long return_msg is cut");
	}

	/* Signatures. */
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	w2fx_set_raw(&n, "total_fee", "100000");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: tampered total_fee refused");
	ok(th_event_empty(&ev), "tampered: empty event");
	w2fx_query_note(&n, "O-42", txn, "NOTPAY");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "trade_state", "SUCCESS");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: trade_state NOTPAY turned SUCCESS refused");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: unsigned answer refused");
	ok(strstr(d.msg, "not signed") != NULL, "unsigned: diagnostic");
	th_note_set(&n, "sign", "");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: empty sign refused");
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: signed with another key refused");
	w2fx_sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: HMAC sign on the MD5 profile refused");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	w2fx_sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: sign_type HMAC-SHA256 on the MD5 profile refused");
	th_note_set(&n, "sign_type", "MD5");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_OK,
	    "query: sign_type MD5 spelled out accepted");
	fail_note(&n, "ORDERNOTEXIST", "x");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: unsigned ORDERNOTEXIST refused");
	fail_note(&n, "ORDERNOTEXIST", "x");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "nonce_str", "other");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: ORDERNOTEXIST with an altered field refused");

	/* Merchant identity, after the signature. */
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "appid", "wx0000000000000000");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_MERCHANT,
	    "query: appid mismatch refused");
	ok(strstr(d.msg, "appid") != NULL, "appid mismatch: diagnostic");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "appid", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_MERCHANT,
	    "query: missing appid refused");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "mch_id", "19999999");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_MERCHANT,
	    "query: mch_id mismatch refused");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "sub_mch_id", "1900000109");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_MERCHANT,
	    "query: sub_mch_id refused");
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "appid", "wx0000000000000000");
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_answer(ctx, 0, "O-42", &n, &ev, &d), PH_E_SIGNATURE,
	    "query: wrong appid and wrong key, the signature fails first");

	/* Transport. */
	w2fx_query_note(&n, "O-42", txn, "SUCCESS");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	{
		static char body[65536];
		size_t len = w2fx_render(&n, body, sizeof(body));

		is_int(w2fx_answer_body(ctx, 0, "O-42", 503, body, len, &ev,
		    &d), PH_E_PROVIDER, "query: HTTP 503 is an error");
		ok(strstr(d.msg, "503") != NULL, "HTTP status named");
		ok(th_event_empty(&ev), "HTTP 503: no event");
		is_int(w2fx_answer_body(ctx, 0, "O-42", 302, body, len, &ev,
		    &d), PH_E_PROVIDER, "query: HTTP 302 is an error");
		is_int(w2fx_answer_body(ctx, 0, "O-42", 200, "garbage\x01\xff",
		    9, &ev, &d), PH_E_MALFORMED, "query: garbage refused");
		is_int(w2fx_answer_body(ctx, 0, "O-42", 200, "", 0, &ev, &d),
		    PH_E_MALFORMED, "query: empty body refused");
		is_int(w2fx_answer_body(ctx, 0, "O-42", 200, body, len / 2, &ev,
		    &d), PH_E_MALFORMED, "query: truncated body refused");
		memmove(body + 14, body, len);
		memcpy(body, "<!DOCTYPE xml>", 14);
		is_int(w2fx_answer_body(ctx, 0, "O-42", 200, body, len + 14,
		    &ev, &d), PH_E_MALFORMED, "query: DOCTYPE refused");
	}
	is_int(w2fx_answer_body(ctx, 0, "A/1", 200, "<xml/>", 6, &ev, &d),
	    PH_E_FIELD, "query: invalid order id refused before parsing");
	is_int(payhook_provider()->query_response(NULL, w2fx_order_ref("O-42"),
	    NULL, &ev, &d), PH_E_INTERNAL, "query: NULL arguments");
	payhook_provider()->profile_free(ctx);

	/* HMAC-SHA256 profile: WeChat signs the answer with the request's
	 * algorithm and may leave sign_type out. */
	w2fx_mkprofile(&ctx, "wxd930ea5d5a258f4f", "10000200", KEY_HMAC,
	    "HMAC-SHA256", &d);
	w2fx_query_note(&n, "H1", txn, "SUCCESS");
	th_note_set(&n, "appid", "wxd930ea5d5a258f4f");
	th_note_set(&n, "mch_id", "10000200");
	w2fx_sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(w2fx_answer(ctx, 0, "H1", &n, &ev, &d), PH_OK,
	    "query (HMAC): answer without sign_type accepted");
	is_str(ev.dedup_key, "pay:1004400740201409030005092168",
	    "query (HMAC): dedup key");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	w2fx_sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(w2fx_answer(ctx, 0, "H1", &n, &ev, &d), PH_OK,
	    "query (HMAC): answer with sign_type accepted");
	th_note_set(&n, "sign_type", NULL);
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_answer(ctx, 0, "H1", &n, &ev, &d), PH_E_SIGNATURE,
	    "query (HMAC): MD5-signed answer refused");
	th_note_set(&n, "sign_type", "MD5");
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_answer(ctx, 0, "H1", &n, &ev, &d), PH_E_SIGNATURE,
	    "query (HMAC): sign_type=MD5 answer refused");
	payhook_provider()->profile_free(ctx);
}

static void
test_close_answers(void)
{
	static const struct {
		const char *err;
		int rc;
		enum ph_event_kind kind;
	} rows[] = {
		{ "ORDERCLOSED", PH_OK, PH_EV_PAYMENT_CLOSED },
		{ "ORDERPAID", PH_OK, PH_EV_PAYMENT_SUCCEEDED },
		{ "ORDERNOTEXIST", PH_OK, PH_EV_NOT_FOUND },
		{ "SYSTEMERROR", PH_E_PROVIDER, PH_EV__MAX },
		{ "SIGNERROR", PH_E_PROVIDER, PH_EV__MAX },
		{ "REQUIRE_POST_METHOD", PH_E_PROVIDER, PH_EV__MAX },
		{ "XML_FORMAT_ERROR", PH_E_PROVIDER, PH_EV__MAX },
	};
	struct ph_event ev;
	struct th_note n;
	void *ctx = NULL;
	char want[128];
	size_t i;

	w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5", &d);

	close_note(&n);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_OK,
	    "close SUCCESS: accepted");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "close SUCCESS: closed");
	is_str(ev.order_id, "C-1", "close SUCCESS: order id");
	is_str(ev.dedup_key, "close:C-1:CLOSED", "close SUCCESS: dedup key");
	is_str(ev.currency, "CNY", "close SUCCESS: CNY");
	is_str(ev.txn_id, "", "close SUCCESS: no transaction");

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		fail_note(&n, rows[i].err, "des");
		w2fx_sign_note(&n, KEY_MD5, "MD5");
		snprintf(want, sizeof(want), "close:C-1:%s", rows[i].err);
		if (rows[i].rc != PH_OK) {
			ok(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d) ==
			    rows[i].rc && th_event_empty(&ev) &&
			    strstr(d.msg, rows[i].err) != NULL,
			    "close %s: an error naming it, no event",
			    rows[i].err);
			continue;
		}
		ok(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d) == PH_OK &&
		    ev.kind == rows[i].kind, "close %s: event kind %d",
		    rows[i].err, (int)rows[i].kind);
		ok(strcmp(ev.order_id, "C-1") == 0 &&
		    strcmp(ev.dedup_key, want) == 0 &&
		    strcmp(ev.currency, "CNY") == 0 && ev.txn_id[0] == '\0' &&
		    ev.amount == 0, "close %s: order id, dedup key %s, no "
		    "transaction, no amount", rows[i].err, want);
	}

	memset(&n, 0, sizeof(n));
	th_note_set(&n, "return_code", "FAIL");
	th_note_set(&n, "return_msg", "XML_FORMAT_ERROR");
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_E_PROVIDER,
	    "close return_code FAIL: an error");
	ok(strstr(d.msg, "XML_FORMAT_ERROR") != NULL &&
	    strstr(d.msg, "closeorder") != NULL,
	    "close return_code FAIL: diagnostic");

	close_note(&n);
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_E_SIGNATURE,
	    "close: unsigned SUCCESS refused");
	fail_note(&n, "ORDERPAID", "paid");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "err_code", "ORDERCLOSED");
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_E_SIGNATURE,
	    "close: ORDERPAID turned ORDERCLOSED refused");
	ok(th_event_empty(&ev), "close tampered: no event");
	close_note(&n);
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_E_SIGNATURE,
	    "close: another key refused");
	close_note(&n);
	th_note_set(&n, "appid", "wx0000000000000000");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_E_MERCHANT,
	    "close: appid mismatch refused");
	close_note(&n);
	th_note_set(&n, "mch_id", "19999999");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_E_MERCHANT,
	    "close: mch_id mismatch refused");
	close_note(&n);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer_body(ctx, 1, "C-1", 500, "", 0, &ev, &d),
	    PH_E_PROVIDER, "close: HTTP 500 is an error");
	is_int(w2fx_answer_body(ctx, 1, "C-1", 200, "not xml", 7, &ev, &d),
	    PH_E_MALFORMED, "close: garbage refused");
	fail_note(&n, "ORDER PAID", "x");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_answer(ctx, 1, "C-1", &n, &ev, &d), PH_E_FIELD,
	    "close: invalid err_code refused");
	payhook_provider()->profile_free(ctx);
}

int
main(void)
{
	test_call_requests();
	test_query_answers();
	test_close_answers();
	return done_testing();
}
