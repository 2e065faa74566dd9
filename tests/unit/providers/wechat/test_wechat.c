/*
 * The WeChat Pay v2 plugin, driven through its table: profiles,
 * notifications (MD5 and HMAC-SHA256, values with white space),
 * acknowledgements and notification hints; its orderquery and closeorder
 * calls are test_wechat_query.c.  Notifications are signed by a
 * separate, deliberately plain implementation of the v2 signature rules
 * (doc/design/protocols.md §1.2; wechat_v2_fixture.c).
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

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"
#include "wechat_v2_fixture.h"

static struct ph_diag d;

/* ---- a notification under construction ------------------------------ */

/*
 * The sign of WeChat's Java SDK: WXPayUtil.generateSignature
 * (Yuamo/WXPaySDKJava @ b5a890b, src/main/java/com/github/wxpay/sdk/
 * WXPayUtil.java lines 239-240) appends k=value.trim() for every value
 * whose trim() is not empty; Java's trim() takes every char up to ' ' off
 * both ends.  MD5 only.
 */
static void
sign_trimmed(struct th_note *n, const char *key)
{
	struct th_note t;
	size_t i, a, b, len;

	th_note_set(n, "sign", NULL);
	memset(&t, 0, sizeof(t));
	for (i = 0; i < n->n; i++) {
		const char *v = n->f[i].v;
		char buf[sizeof(n->f[0].v)];

		len = strlen(v);
		for (a = 0; a < len && (unsigned char)v[a] <= ' '; a++)
			;
		for (b = len; b > a && (unsigned char)v[b - 1] <= ' '; b--)
			;
		memcpy(buf, v + a, b - a);
		buf[b - a] = '\0';
		th_note_set(&t, n->f[i].k, buf);
	}
	w2fx_sign_with(&t, key, "MD5", 0);
	th_note_set(n, "sign", t.f[t.n - 1].v);
}

/* ---- profiles ----------------------------------------------------------- */

static void
test_table(void)
{
	const struct ph_provider *p = payhook_provider();

	is_int(p->abi, PH_PROVIDER_ABI, "table: ABI version");
	is_str(p->name, "wechat", "table: name");
	ok(p->caps == (PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE |
	    PH_CAP_REFUND | PH_CAP_STATEMENT | PH_CAP_DOWNLOAD |
	    PH_CAP_ORDER_KEYED), "table: notify, query, close, refund, "
	    "statement and download; orders known by their id alone");
	ok(p->profile_new && p->profile_free && p->parse_notify && p->ack,
	    "table: all notify entries set");
	ok(p->refund_request != NULL && p->refund_response != NULL &&
	    p->statement_line != NULL,
	    "table: refund and statement entries set");
	ok(p->statement_request != NULL && p->statement_response != NULL &&
	    p->download_hosts != NULL &&
	    strcmp(p->download_hosts[0], "api.mch.weixin.qq.com") == 0 &&
	    strcmp(p->download_hosts[1], "api2.mch.weixin.qq.com") == 0 &&
	    p->download_hosts[2] == NULL,
	    "table: download entries set, WeChat's two API hosts");
	is_str(p->conf_keys[WX_CONF_APPID].name, "appid", "key 0 appid");
	is_str(p->conf_keys[WX_CONF_MCH_ID].name, "mch_id", "key 1 mch_id");
	is_str(p->conf_keys[WX_CONF_API_KEY_FILE].name, "api_key_file",
	    "key 2 api_key_file");
	is_int(p->conf_keys[WX_CONF_API_KEY_FILE].type, PH_CONF_SECRET_FILE,
	    "api_key_file is a secret file");
	/* MD5 is the default, applied by profile_new() (test_profiles), not
	 * by the table: a key with a table default looks given, and an API
	 * v3 profile must be able to refuse sign_type. */
	ok(p->conf_keys[WX_CONF_SIGN_TYPE].def == NULL,
	    "sign_type: no table default");
	ok(p->conf_keys[WX_CONF__MAX].name == NULL, "keys end with NULL");
}

static void
test_profiles(void)
{
	void *ctx = NULL;

	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5", &d), PH_OK,
	    "profile: valid");
	payhook_provider()->profile_free(ctx);
	ctx = NULL;
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, NULL, &d), PH_OK,
	    "profile: sign_type absent means MD5");
	ok(ctx != NULL && ((struct wx_ctx *)ctx)->sign_type == WX_SIGN_MD5,
	    "profile: MD5 by default");
	payhook_provider()->profile_free(ctx);
	ctx = NULL;
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "HMAC-SHA256", &d),
	    PH_OK, "profile: HMAC-SHA256");
	payhook_provider()->profile_free(ctx);

	ctx = (void *)&ctx;
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID,
	    "192006250b4c09247ec02edce69f6a2", "MD5", &d), PH_E_CONFIG,
	    "profile: 31-character key refused");
	ok(ctx == NULL, "profile: no context on failure");
	ok(strstr(d.msg, "32") != NULL && strstr(d.msg, "api_key_file") !=
	    NULL, "profile: the diagnostic says why");
	ok(strstr(d.msg, "192006") == NULL, "profile: diagnostic hides key");
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5 "a", "MD5", &d),
	    PH_E_CONFIG, "profile: 33-character key refused");
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID,
	    "192006250b4c09247ec02edce69f6a2\r", "MD5", &d), PH_E_CONFIG,
	    "profile: key with a control character refused");
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID,
	    "192006250b4c0924 ec02edce69f6a2d", "MD5", &d), PH_E_CONFIG,
	    "profile: key with a space refused");
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, NULL, "MD5", &d),
	    PH_E_CONFIG, "profile: no key refused");
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "SHA1", &d),
	    PH_E_CONFIG, "profile: unknown sign_type refused");
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "md5", &d),
	    PH_E_CONFIG, "profile: sign_type is case-sensitive");
	is_int(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "", &d),
	    PH_E_CONFIG, "profile: empty sign_type refused");
	is_int(w2fx_mkprofile(&ctx, NULL, MCH_ID, KEY_MD5, "MD5", &d),
	    PH_E_CONFIG, "profile: missing appid refused");
	is_int(w2fx_mkprofile(&ctx, "wx 1", MCH_ID, KEY_MD5, "MD5", &d),
	    PH_E_CONFIG, "profile: invalid appid refused");
	is_int(w2fx_mkprofile(&ctx, APPID, NULL, KEY_MD5, "MD5", &d),
	    PH_E_CONFIG, "profile: missing mch_id refused");
	is_int(w2fx_mkprofile(&ctx, APPID, "123456789012345678901234567890123",
	    KEY_MD5, "MD5", &d), PH_E_CONFIG, "profile: long mch_id refused");
	ok(ctx == NULL, "profile: still no context");
	payhook_provider()->profile_free(NULL);
	ok(1, "profile_free(NULL) is harmless");
}

/* ---- notifications ---------------------------------------------------- */

static void
test_md5(void)
{
	struct ph_event ev;
	struct th_note n;
	void *ctx = NULL;
	char body[65536];
	size_t len;

	w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5", &d);

	w2fx_base_note(&n, "1409811653", "1004400740201409030005092168");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	len = w2fx_render(&n, body, sizeof(body));
	ok(strstr(body, "<total_fee>1</total_fee>") != NULL &&
	    strstr(body, "<bank_type><![CDATA[CFT]]></bank_type>") != NULL,
	    "the body mixes plain and CDATA values");
	is_int(w2fx_run_body(ctx, body, len, &ev, &d), PH_OK, "MD5: valid");
	is_event(&ev, "MD5", PH_EV_PAYMENT_SUCCEEDED, "1409811653",
	    "1004400740201409030005092168", 1, "CNY", 1414647325,
	    "pay:1004400740201409030005092168");
	is_str(ev.refund_id, "", "MD5: no refund id");
	is_str(ev.channel, "", "MD5: no channel");

	/* Lower-case hex is the same signature. */
	{
		size_t i;

		for (i = 0; i < n.n; i++)
			if (strcmp(n.f[i].k, "sign") == 0) {
				char *c;

				for (c = n.f[i].v; *c; c++)
					if (*c >= 'A' && *c <= 'F')
						*c = (char)(*c + 32);
			}
		is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK,
		    "MD5: lower-case sign");
	}

	/* Non-ASCII values are signed over their UTF-8 bytes. */
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "attach", "\xe5\xbe\xae\xe4\xbf\xa1\xe6\x94\xaf"
	    "\xe4\xbb\x98 #22");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK,
	    "UTF-8 attach signed as bytes");

	/* An XML declaration in front changes nothing. */
	len = w2fx_render(&n, body + 38, sizeof(body) - 38);
	memcpy(body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38);
	is_int(w2fx_run_body(ctx, body, len + 38, &ev, &d), PH_OK,
	    "XML declaration accepted");

	/* sign_type=MD5 spelled out is the same algorithm. */
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "sign_type", "MD5");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK,
	    "MD5: explicit sign_type=MD5");

	w2fx_base_note(&n, "A1", "T1");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	w2fx_set_raw(&n, "total_fee", "100000");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "tampered total_fee refused");
	is_int(ev.amount, 0, "refusal leaves an empty event");
	is_str(ev.order_id, "", "refusal leaves no order id");

	w2fx_base_note(&n, "A1", "T1");
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE, "wrong key refused");
	ok(strstr(d.msg, "signature") != NULL, "wrong key: diagnostic");

	w2fx_base_note(&n, "A1", "T1");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "missing sign refused");
	th_note_set(&n, "sign", "");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "empty sign refused");

	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	w2fx_sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "HMAC-signed on the MD5 profile refused");
	ok(strstr(d.msg, "HMAC-SHA256") && strstr(d.msg, "MD5"),
	    "sign_type mismatch diagnostic names both");

	/* Empty values are not signed; signing them is wrong. */
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "device_info", "");
	w2fx_set_raw(&n, "coupon_fee", "");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK,
	    "empty-value fields are not signed");
	w2fx_sign_with(&n, KEY_MD5, "MD5", 1);
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "a sign over empty values is refused");

	/* Unknown fields are signed: one added afterwards breaks it. */
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "coupon_fee_0", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK, "without coupon_fee_0");
	th_note_set(&n, "coupon_fee_0", "10");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "unknown field added after signing refused");

	/* Merchant identity, checked after the signature. */
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "appid", "wx0000000000000000");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_MERCHANT,
	    "wrong appid with a valid signature refused");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "mch_id", "19999999");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_MERCHANT,
	    "wrong mch_id with a valid signature refused");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "mch_id", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_MERCHANT,
	    "missing mch_id refused");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "mch_id", "19999999");
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "wrong mch_id and wrong key: the signature fails first");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "sub_mch_id", "1900000109");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_MERCHANT,
	    "service-provider notification refused");

	/* Business fields. */
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "transaction_id", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "missing transaction_id refused");
	ok(strstr(d.msg, "transaction_id") != NULL,
	    "missing transaction_id: diagnostic names it");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "out_trade_no", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "missing out_trade_no refused");
	w2fx_base_note(&n, "A-1_2|3*4", "T1");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	ok(w2fx_run(ctx, &n, &ev, &d) == PH_OK &&
	    strcmp(ev.order_id, "A-1_2|3*4") == 0,
	    "out_trade_no with _-|* accepted");
	w2fx_base_note(&n, "A1/2", "T1");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "out_trade_no with / refused");
	w2fx_base_note(&n, "123456789012345678901234567890123", "T1");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "33-character out_trade_no refused");
	w2fx_base_note(&n, "A1", "T-1");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "transaction_id with - refused");
	w2fx_base_note(&n, "A1", "T1");
	w2fx_set_raw(&n, "total_fee", "1.00");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "decimal total_fee refused");
	ok(strstr(d.msg, "total_fee") != NULL, "total_fee named");
	w2fx_base_note(&n, "A1", "T1");
	w2fx_set_raw(&n, "total_fee", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "missing total_fee refused");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "fee_type", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	ok(w2fx_run(ctx, &n, &ev, &d) == PH_OK &&
	    strcmp(ev.currency, "CNY") == 0, "fee_type defaults to CNY");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "fee_type", "USD");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	ok(w2fx_run(ctx, &n, &ev, &d) == PH_OK &&
	    strcmp(ev.currency, "USD") == 0, "fee_type USD carried");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "fee_type", "usd");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "invalid fee_type refused");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "time_end", "20141330133525");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "invalid time_end refused");
	ok(strstr(d.msg, "time_end") != NULL, "time_end named");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "return_code", "MAYBE");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "unknown return_code refused");

	/* Signed failures. */
	w2fx_base_note(&n, "A1", "4200000001");
	th_note_set(&n, "result_code", "FAIL");
	th_note_set(&n, "err_code", "SYSTEMERROR");
	th_note_set(&n, "err_code_des", "bank refused");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK, "result_code FAIL accepted");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "result_code FAIL: payment failed");
	is_str(ev.order_id, "A1", "failure: order id");
	is_str(ev.dedup_key, "fail:A1:4200000001:SYSTEMERROR",
	    "failure: dedup key");
	is_int(ev.amount, 1, "failure: amount when given");

	memset(&n, 0, sizeof(n));
	th_note_set(&n, "return_code", "FAIL");
	th_note_set(&n, "return_msg", "SIGNERROR");
	th_note_set(&n, "appid", APPID);
	th_note_set(&n, "mch_id", MCH_ID);
	th_note_set(&n, "nonce_str", "abc");
	th_note_set(&n, "out_trade_no", "A2");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK,
	    "signed return_code FAIL accepted");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "return_code FAIL: failed");
	is_str(ev.dedup_key, "fail:A2:-:-", "return_code FAIL: dedup key");
	is_int(ev.amount, 0, "return_code FAIL: amount 0 when absent");
	is_str(ev.currency, "CNY", "return_code FAIL: currency default");
	th_note_set(&n, "out_trade_no", NULL);
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_FIELD,
	    "failure without out_trade_no refused");

	/* Hostile bodies. */
	w2fx_base_note(&n, "A1", "T1");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	len = w2fx_render(&n, body + 14, sizeof(body) - 14);
	memcpy(body, "<!DOCTYPE xml>", 14);
	is_int(w2fx_run_body(ctx, body, len + 14, &ev, &d), PH_E_MALFORMED,
	    "signed body behind a DOCTYPE refused");
	len = w2fx_render(&n, body, sizeof(body));
	memmove(body + len - 6, "<sign>0</sign></xml>", 21);
	is_int(w2fx_run_body(ctx, body, len + 14, &ev, &d), PH_E_MALFORMED,
	    "second sign field refused");
	is_int(w2fx_run_body(ctx, "<xml><a>1</a>", 13, &ev, &d), PH_E_MALFORMED,
	    "truncated XML refused");
	is_int(w2fx_run_body(ctx, "", 0, &ev, &d), PH_E_MALFORMED,
	    "empty body refused");
	is_int(w2fx_run_body(ctx, "{\"a\":1}", 7, &ev, &d), PH_E_MALFORMED,
	    "JSON body refused");
	w2fx_base_note(&n, "A1", "T1");
	th_note_set(&n, "attach", "");
	{
		/* The longest value WeChat documents (promotion_detail,
		 * 6000 characters) is read; one over 24 KiB is not. */
		static char big[40000];
		size_t at;

		at = (size_t)snprintf(big, sizeof(big), "<xml><openid>");
		memset(big + at, 'B', 24 * 1024 + 1);
		at += 24 * 1024 + 1;
		at += (size_t)snprintf(big + at, sizeof(big) - at,
		    "</openid></xml>");
		is_int(w2fx_run_body(ctx, big, at, &ev, &d), PH_E_TOOBIG,
		    "a value over 24 KiB refused");
	}

	payhook_provider()->profile_free(ctx);
}

static void
test_hmac(void)
{
	struct ph_event ev;
	struct th_note n;
	void *ctx = NULL;

	w2fx_mkprofile(&ctx, "wxd930ea5d5a258f4f", "10000200", KEY_HMAC,
	    "HMAC-SHA256", &d);

	w2fx_base_note(&n, "H1", "4200000002");
	th_note_set(&n, "appid", "wxd930ea5d5a258f4f");
	th_note_set(&n, "mch_id", "10000200");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	w2fx_sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK, "HMAC: valid");
	is_str(ev.dedup_key, "pay:4200000002", "HMAC: dedup key");
	is_int(ev.amount, 1, "HMAC: amount");

	th_note_set(&n, "sign_type", NULL);
	w2fx_sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "HMAC sign without the sign_type field refused");

	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "MD5-signed (no sign_type) on the HMAC profile refused");
	ok(strstr(d.msg, "MD5") && strstr(d.msg, "HMAC-SHA256"),
	    "downgrade diagnostic names both");
	th_note_set(&n, "sign_type", "MD5");
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "MD5-signed (sign_type=MD5) on the HMAC profile refused");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	w2fx_sign_note(&n, KEY_HMAC, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "sign_type=HMAC-SHA256 with an MD5 sign refused");
	w2fx_sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "HMAC: wrong key refused");

	payhook_provider()->profile_free(ctx);
}

/* ---- acknowledgements ----------------------------------------------- */

static void
test_ack(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_response r;
	char reason[400];
	const char *m, *e;

	p->ack(NULL, PH_ACK_OK, "ignored", &r);
	is_int(r.status, 200, "ack OK: 200");
	is_str(r.content_type, "text/xml", "ack OK: text/xml");
	ok(th_ack_body_is(&r, "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
	    "<return_msg><![CDATA[OK]]></return_msg></xml>"),
	    "ack OK: exact bytes");

	p->ack(NULL, PH_ACK_REFUSED, "signature mismatch", &r);
	is_int(r.status, 200, "ack REFUSED: 200");
	is_str(r.content_type, "text/xml", "ack REFUSED: text/xml");
	ok(th_ack_body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[signature mismatch]]></return_msg></xml>"),
	    "ack REFUSED: exact bytes with the reason");

	p->ack(NULL, PH_ACK_REFUSED, NULL, &r);
	ok(th_ack_body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[invalid notification]]></return_msg></xml>"),
	    "ack REFUSED: default reason");

	p->ack(NULL, PH_ACK_RETRY, NULL, &r);
	is_int(r.status, 500, "ack RETRY: 500");
	ok(th_ack_body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[temporarily unavailable]]></return_msg>"
	    "</xml>"), "ack RETRY: exact bytes");
	p->ack(NULL, PH_ACK_RETRY, "store full", &r);
	ok(r.status == 500 && th_ack_body_is(&r, "<xml><return_code><![CDATA[FAIL]]>"
	    "</return_code><return_msg><![CDATA[store full]]></return_msg>"
	    "</xml>"), "ack RETRY: with a reason");

	p->ack(NULL, PH_ACK_REFUSED, "a]]>b\n\xe4\xb8\xad<c>", &r);
	ok(th_ack_body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[a]]b<c>]]></return_msg></xml>"),
	    "ack: reason cannot close the CDATA, printable ASCII only");
	p->ack(NULL, PH_ACK_REFUSED, "]]]]]>>", &r);
	m = (const char *)r.body + strlen("<xml><return_code><![CDATA[FAIL]]>"
	    "</return_code><return_msg><![CDATA[");
	e = strstr(m, "]]>");
	ok(e != NULL && strcmp(e, "]]></return_msg></xml>") == 0,
	    "ack: no ]]> survives in the reason");

	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	p->ack(NULL, PH_ACK_REFUSED, reason, &r);
	is_int(r.body_len, strlen("<xml><return_code><![CDATA[FAIL]]>"
	    "</return_code><return_msg><![CDATA[]]></return_msg></xml>") + 128,
	    "ack: reason cut at 128 bytes");
	p->ack(NULL, PH_ACK_REFUSED, "\n\n", &r);
	ok(strstr((const char *)r.body, "invalid notification") != NULL,
	    "ack: unprintable reason falls back to the default");

	p->ack(NULL, PH_ACK__MAX, NULL, &r);
	ok(r.status == 500 && r.body_len == 0, "ack: unknown kind is a bare 500");
}

/* ---- hints and padded values ----------------------------------------- */

/* The hint reads the order id without verifying anything, and nothing
 * else: garbage and documents without out_trade_no give no hint. */
static void
test_hint(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_request req;
	char order[PH_ID_MAX + 1];
	void *ctx = NULL;
	static const char good[] = "<xml><out_trade_no>H-1</out_trade_no>"
	    "<sign>FORGED</sign></xml>";
	static const char none[] = "<xml><total_fee>1</total_fee></xml>";
	static const char bad[] = "<xml><out_trade_no>a/b</out_trade_no></xml>";

	if (!ok(w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5", &d) ==
	    PH_OK, "hint: profile"))
		return;
	ok(p->notify_hint != NULL, "hint: entry set");
	memset(&req, 0, sizeof(req));
	req.body = (const unsigned char *)good;
	req.body_len = sizeof(good) - 1;
	is_int(p->notify_hint(ctx, &req, order), PH_OK,
	    "hint: a forged notification still names its order");
	is_str(order, "H-1", "hint: the order id");
	req.body = (const unsigned char *)none;
	req.body_len = sizeof(none) - 1;
	ok(p->notify_hint(ctx, &req, order) != PH_OK, "hint: none without "
	    "out_trade_no");
	req.body = (const unsigned char *)bad;
	req.body_len = sizeof(bad) - 1;
	ok(p->notify_hint(ctx, &req, order) != PH_OK, "hint: an order id "
	    "with a slash is no hint");
	req.body = (const unsigned char *)"garbage";
	req.body_len = 7;
	ok(p->notify_hint(ctx, &req, order) != PH_OK, "hint: none from "
	    "garbage");
	p->profile_free(ctx);
}

/*
 * Values with surrounding white space (tests/vectors/FINDINGS.md §3): the
 * PHP SDK signs them as they are, the Java SDK trimmed; both are WeChat's
 * own readings of its rule, and both are accepted.
 */
static void
test_padded_values(void)
{
	static const char txn[] = "1004400740201409030005092168";
	struct ph_event ev, ev2;
	struct th_note n;
	char *body;
	void *ctx = NULL;
	size_t len;

	/*
	 * The published vectors: tests/vectors/wechat/attach-spaces-signed-
	 * {raw,trimmed}.xml, WeChat's documented notification with the ids
	 * and key of its signing example (pay.weixin.qq.com/wiki/doc/api/
	 * jsapi.php?chapter=4_3; official-sign-example.json), attach
	 * " 支付测试 ", signed as the PHP SDK (raw) and as WXPayUtil
	 * (trimmed) sign.
	 */
	if (w2fx_mkprofile(&ctx, "wxd930ea5d5a258f4f", MCH_ID, KEY_MD5, "MD5",
	    &d) != PH_OK)
		abort();
	body = th_vector("wechat/attach-spaces-signed-trimmed.xml", &len);
	is_int(w2fx_run_body(ctx, body, len, &ev, &d), PH_OK,
	    "vector: signed over trimmed values (WXPayUtil): verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(ev.order_id, "1409811653", "vector trimmed: order");
	is_str(ev.txn_id, txn, "vector trimmed: transaction");
	free(body);
	body = th_vector("wechat/attach-spaces-signed-raw.xml", &len);
	is_int(w2fx_run_body(ctx, body, len, &ev2, &d), PH_OK,
	    "vector: signed over raw values (WxPayDataBase): verifies");
	is_str(ev2.dedup_key, ev.dedup_key,
	    "vector: both forms are one payment (one dedup key)");
	body[strstr(body, "1004400740") - body] = '2';
	is_int(w2fx_run_body(ctx, body, len, &ev2, &d), PH_E_SIGNATURE,
	    "vector: raw form, transaction id changed: refused");
	free(body);
	body = th_vector("wechat/attach-spaces-signed-trimmed.xml", &len);
	body[strstr(body, "<total_fee>1<") - body + 11] = '2';
	is_int(w2fx_run_body(ctx, body, len, &ev2, &d), PH_E_SIGNATURE,
	    "vector: trimmed form, amount changed: refused");
	free(body);
	payhook_provider()->profile_free(ctx);

	ctx = NULL;
	w2fx_mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5", &d);
	w2fx_base_note(&n, "1409811653", txn);
	/* No CR: XML reads CR LF as LF, so the raw reading could not
	 * match. */
	th_note_set(&n, "attach", "\t support \n");
	th_note_set(&n, "device_info", "   ");
	sign_trimmed(&n, KEY_MD5);
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK,
	    "trimmed: tab, LF and a blank value (left out) verify");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK,
	    "raw: the same values verify");
	sign_trimmed(&n, KEY_MD5);
	th_note_set(&n, "attach", "\t support2 \n");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "trimmed: a changed value refused");
	w2fx_base_note(&n, "1409811653", txn);
	th_note_set(&n, "attach", " support ");
	sign_trimmed(&n, "0123456789abcdef0123456789abcdef");
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "trimmed: another key refused");
	w2fx_base_note(&n, "1409811653", txn);
	th_note_set(&n, "out_trade_no", " 1409811653 ");
	sign_trimmed(&n, KEY_MD5);
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_OK, "trimmed: a padded order id");
	is_str(ev.order_id, "1409811653", "trimmed: the event holds the "
	    "value that was signed");
	w2fx_base_note(&n, "1409811653", txn);
	th_note_set(&n, "attach", "");
	th_note_set(&n, "device_info", " ");
	w2fx_sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "device_info", NULL);
	is_int(w2fx_run(ctx, &n, &ev, &d), PH_E_SIGNATURE,
	    "raw: a signed blank value cannot be dropped");

	/* A query answer is signed by the same server: the same rule. */
	w2fx_query_note(&n, "1409811653", txn, "SUCCESS");
	th_note_set(&n, "attach", " support ");
	sign_trimmed(&n, KEY_MD5);
	is_int(w2fx_answer(ctx, 0, "1409811653", &n, &ev, &d), PH_OK,
	    "query answer signed over trimmed values: accepted");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "query answer: paid");
	payhook_provider()->profile_free(ctx);
}

int
main(void)
{
	test_table();
	test_profiles();
	test_md5();
	test_hmac();
	test_ack();
	test_padded_values();
	test_hint();
	return done_testing();
}
