/*
 * The WeChat Pay v2 plugin, driven through its table with notifications
 * signed here by a separate, deliberately plain implementation of the
 * v2 signature rules (doc/design/protocols.md §1.2).
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

#define KEY_MD5  "192006250b4c09247ec02edce69f6a2d"
#define KEY_HMAC "Hm4cK3yE2eTestKeyForSha256Prof1x"
#define APPID    "wx2421b1c4370ec43b"
#define MCH_ID   "10000100"

/* ---- a notification under construction ------------------------------ */

/* Field k of n is sent as it is, never encoded. */
static void
mark_raw(struct th_note *n, const char *k)
{
	size_t i;

	for (i = 0; i < n->n; i++)
		if (strcmp(n->f[i].k, k) == 0)
			n->f[i].raw = 1;
}

static void
set_raw(struct th_note *n, const char *k, const char *v)
{
	th_note_set(n, k, v);
	mark_raw(n, k);
}

/* A realistic successful payment, in the order WeChat sends it. */
static void
base_note(struct th_note *n, const char *order, const char *txn)
{
	const char *const f[] = {
		"appid", APPID,
		"attach", "support",
		"bank_type", "CFT",
		"fee_type", "CNY",
		"is_subscribe", "Y",
		"mch_id", MCH_ID,
		"nonce_str", "5d2b6c2a8db53831f7eda20af46e531c",
		"openid", "oUpF8uMEb4qRXf22hE3X68TekukE",
		"out_trade_no", order,
		"result_code", "SUCCESS",
		"return_code", "SUCCESS",
		"time_end", "20141030133525",
		"total_fee", "1",
		"coupon_fee_0", "10",
		"coupon_count", "1",
		"coupon_type", "CASH",
		"coupon_id_0", "10000",
		"trade_type", "JSAPI",
		"transaction_id", txn,
		"cash_fee", "1",
		NULL
	};

	th_note_fill(n, f);
	mark_raw(n, "total_fee");
	mark_raw(n, "cash_fee");
}

/*
 * The v2 signature, written out step by step: drop sign and empty
 * values, sort names byte-wise, join k=v with &, append &key=KEY, then
 * MD5 or HMAC-SHA256 (keyed with KEY), upper-case hex.  include_empty
 * builds a wrong sign on purpose.
 */
static void
sign_with(struct th_note *n, const char *key, const char *alg,
    int include_empty)
{
	size_t idx[48], m = 0, i, j, t;
	char s[16384];
	size_t len = 0;
	unsigned char md[32];
	char hex[65];
	size_t mdlen;

	th_note_set(n, "sign", NULL);
	for (i = 0; i < n->n; i++)
		if (include_empty || n->f[i].v[0] != '\0')
			idx[m++] = i;
	for (i = 1; i < m; i++)		/* insertion sort by name */
		for (j = i; j > 0 && strcmp(n->f[idx[j - 1]].k,
		    n->f[idx[j]].k) > 0; j--) {
			t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	for (i = 0; i < m; i++)
		len += (size_t)snprintf(s + len, sizeof(s) - len, "%s%s=%s",
		    i > 0 ? "&" : "", n->f[idx[i]].k, n->f[idx[i]].v);
	len += (size_t)snprintf(s + len, sizeof(s) - len, "&key=%s", key);
	if (strcmp(alg, "MD5") == 0) {
		ph_md5(s, len, md);
		mdlen = 16;
	} else {
		ph_hmac_sha256(key, strlen(key), s, len, md);
		mdlen = 32;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02X", md[i]);
	th_note_set(n, "sign", hex);
}

static void
sign_note(struct th_note *n, const char *key, const char *alg)
{
	sign_with(n, key, alg, 0);
}

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
	sign_with(&t, key, "MD5", 0);
	th_note_set(n, "sign", t.f[t.n - 1].v);
}

static size_t
render(const struct th_note *n, char *out, size_t cap)
{
	size_t len = 0, i;

	len += (size_t)snprintf(out + len, cap - len, "<xml>");
	for (i = 0; i < n->n; i++)
		len += (size_t)snprintf(out + len, cap - len,
		    n->f[i].raw ? "<%s>%s</%s>" : "<%s><![CDATA[%s]]></%s>",
		    n->f[i].k, n->f[i].v, n->f[i].k);
	len += (size_t)snprintf(out + len, cap - len, "</xml>");
	return len;
}

static struct ph_diag d;

static int
run_body(void *ctx, const char *body, size_t len, struct ph_event *ev)
{
	return th_notify(payhook_provider(), ctx, body, len, "text/xml",
	    1414647400, ev, &d);
}

static int
run(void *ctx, const struct th_note *n, struct ph_event *ev)
{
	static char body[65536];

	return run_body(ctx, body, render(n, body, sizeof(body)), ev);
}

/* ---- profiles ----------------------------------------------------------- */

static int
mkprofile(void **ctx, const char *appid, const char *mch_id, const char *key,
    const char *sign_type)
{
	static struct th_conf c;

	th_wx2_conf(&c, payhook_provider(), "test", appid, mch_id, key,
	    sign_type);
	return th_profile_new(payhook_provider(), &c, ctx, &d);
}

static void
test_table(void)
{
	const struct ph_provider *p = payhook_provider();

	is_int(p->abi, PH_PROVIDER_ABI, "table: ABI version");
	is_str(p->name, "wechat", "table: name");
	is_int(p->caps, PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE |
	    PH_CAP_REFUND | PH_CAP_STATEMENT | PH_CAP_DOWNLOAD,
	    "table: notify, query, close, refund, statement and download");
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

	is_int(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5"), PH_OK,
	    "profile: valid");
	payhook_provider()->profile_free(ctx);
	ctx = NULL;
	is_int(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, NULL), PH_OK,
	    "profile: sign_type absent means MD5");
	ok(ctx != NULL && ((struct wx_ctx *)ctx)->sign_type == WX_SIGN_MD5,
	    "profile: MD5 by default");
	payhook_provider()->profile_free(ctx);
	ctx = NULL;
	is_int(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "HMAC-SHA256"), PH_OK,
	    "profile: HMAC-SHA256");
	payhook_provider()->profile_free(ctx);

	ctx = (void *)&ctx;
	is_int(mkprofile(&ctx, APPID, MCH_ID,
	    "192006250b4c09247ec02edce69f6a2", "MD5"), PH_E_CONFIG,
	    "profile: 31-character key refused");
	ok(ctx == NULL, "profile: no context on failure");
	ok(strstr(d.msg, "32") != NULL && strstr(d.msg, "api_key_file") !=
	    NULL, "profile: the diagnostic says why");
	ok(strstr(d.msg, "192006") == NULL, "profile: diagnostic hides key");
	is_int(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5 "a", "MD5"),
	    PH_E_CONFIG, "profile: 33-character key refused");
	is_int(mkprofile(&ctx, APPID, MCH_ID,
	    "192006250b4c09247ec02edce69f6a2\r", "MD5"), PH_E_CONFIG,
	    "profile: key with a control character refused");
	is_int(mkprofile(&ctx, APPID, MCH_ID,
	    "192006250b4c0924 ec02edce69f6a2d", "MD5"), PH_E_CONFIG,
	    "profile: key with a space refused");
	is_int(mkprofile(&ctx, APPID, MCH_ID, NULL, "MD5"), PH_E_CONFIG,
	    "profile: no key refused");
	is_int(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "SHA1"), PH_E_CONFIG,
	    "profile: unknown sign_type refused");
	is_int(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "md5"), PH_E_CONFIG,
	    "profile: sign_type is case-sensitive");
	is_int(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, ""), PH_E_CONFIG,
	    "profile: empty sign_type refused");
	is_int(mkprofile(&ctx, NULL, MCH_ID, KEY_MD5, "MD5"), PH_E_CONFIG,
	    "profile: missing appid refused");
	is_int(mkprofile(&ctx, "wx 1", MCH_ID, KEY_MD5, "MD5"), PH_E_CONFIG,
	    "profile: invalid appid refused");
	is_int(mkprofile(&ctx, APPID, NULL, KEY_MD5, "MD5"), PH_E_CONFIG,
	    "profile: missing mch_id refused");
	is_int(mkprofile(&ctx, APPID, "123456789012345678901234567890123",
	    KEY_MD5, "MD5"), PH_E_CONFIG, "profile: long mch_id refused");
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

	mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5");

	base_note(&n, "1409811653", "1004400740201409030005092168");
	sign_note(&n, KEY_MD5, "MD5");
	len = render(&n, body, sizeof(body));
	ok(strstr(body, "<total_fee>1</total_fee>") != NULL &&
	    strstr(body, "<bank_type><![CDATA[CFT]]></bank_type>") != NULL,
	    "the body mixes plain and CDATA values");
	is_int(run_body(ctx, body, len, &ev), PH_OK, "MD5: valid");
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
		is_int(run(ctx, &n, &ev), PH_OK, "MD5: lower-case sign");
	}

	/* Non-ASCII values are signed over their UTF-8 bytes. */
	base_note(&n, "A1", "T1");
	th_note_set(&n, "attach", "\xe5\xbe\xae\xe4\xbf\xa1\xe6\x94\xaf"
	    "\xe4\xbb\x98 #22");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "UTF-8 attach signed as bytes");

	/* An XML declaration in front changes nothing. */
	len = render(&n, body + 38, sizeof(body) - 38);
	memcpy(body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38);
	is_int(run_body(ctx, body, len + 38, &ev), PH_OK,
	    "XML declaration accepted");

	/* sign_type=MD5 spelled out is the same algorithm. */
	base_note(&n, "A1", "T1");
	th_note_set(&n, "sign_type", "MD5");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "MD5: explicit sign_type=MD5");

	base_note(&n, "A1", "T1");
	sign_note(&n, KEY_MD5, "MD5");
	set_raw(&n, "total_fee", "100000");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "tampered total_fee refused");
	is_int(ev.amount, 0, "refusal leaves an empty event");
	is_str(ev.order_id, "", "refusal leaves no order id");

	base_note(&n, "A1", "T1");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "wrong key refused");
	ok(strstr(d.msg, "signature") != NULL, "wrong key: diagnostic");

	base_note(&n, "A1", "T1");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "missing sign refused");
	th_note_set(&n, "sign", "");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "empty sign refused");

	base_note(&n, "A1", "T1");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "HMAC-signed on the MD5 profile refused");
	ok(strstr(d.msg, "HMAC-SHA256") && strstr(d.msg, "MD5"),
	    "sign_type mismatch diagnostic names both");

	/* Empty values are not signed; signing them is wrong. */
	base_note(&n, "A1", "T1");
	th_note_set(&n, "device_info", "");
	set_raw(&n, "coupon_fee", "");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "empty-value fields are not signed");
	sign_with(&n, KEY_MD5, "MD5", 1);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "a sign over empty values is refused");

	/* Unknown fields are signed: one added afterwards breaks it. */
	base_note(&n, "A1", "T1");
	th_note_set(&n, "coupon_fee_0", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "without coupon_fee_0");
	th_note_set(&n, "coupon_fee_0", "10");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "unknown field added after signing refused");

	/* Merchant identity, checked after the signature. */
	base_note(&n, "A1", "T1");
	th_note_set(&n, "appid", "wx0000000000000000");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT,
	    "wrong appid with a valid signature refused");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "mch_id", "19999999");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT,
	    "wrong mch_id with a valid signature refused");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "mch_id", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT, "missing mch_id refused");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "mch_id", "19999999");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "wrong mch_id and wrong key: the signature fails first");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "sub_mch_id", "1900000109");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT,
	    "service-provider notification refused");

	/* Business fields. */
	base_note(&n, "A1", "T1");
	th_note_set(&n, "transaction_id", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "missing transaction_id refused");
	ok(strstr(d.msg, "transaction_id") != NULL,
	    "missing transaction_id: diagnostic names it");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "out_trade_no", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "missing out_trade_no refused");
	base_note(&n, "A-1_2|3*4", "T1");
	sign_note(&n, KEY_MD5, "MD5");
	ok(run(ctx, &n, &ev) == PH_OK && strcmp(ev.order_id, "A-1_2|3*4") == 0,
	    "out_trade_no with _-|* accepted");
	base_note(&n, "A1/2", "T1");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "out_trade_no with / refused");
	base_note(&n, "123456789012345678901234567890123", "T1");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "33-character out_trade_no refused");
	base_note(&n, "A1", "T-1");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "transaction_id with - refused");
	base_note(&n, "A1", "T1");
	set_raw(&n, "total_fee", "1.00");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "decimal total_fee refused");
	ok(strstr(d.msg, "total_fee") != NULL, "total_fee named");
	base_note(&n, "A1", "T1");
	set_raw(&n, "total_fee", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "missing total_fee refused");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "fee_type", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	ok(run(ctx, &n, &ev) == PH_OK && strcmp(ev.currency, "CNY") == 0,
	    "fee_type defaults to CNY");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "fee_type", "USD");
	sign_note(&n, KEY_MD5, "MD5");
	ok(run(ctx, &n, &ev) == PH_OK && strcmp(ev.currency, "USD") == 0,
	    "fee_type USD carried");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "fee_type", "usd");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "invalid fee_type refused");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "time_end", "20141330133525");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "invalid time_end refused");
	ok(strstr(d.msg, "time_end") != NULL, "time_end named");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "return_code", "MAYBE");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "unknown return_code refused");

	/* Signed failures. */
	base_note(&n, "A1", "4200000001");
	th_note_set(&n, "result_code", "FAIL");
	th_note_set(&n, "err_code", "SYSTEMERROR");
	th_note_set(&n, "err_code_des", "bank refused");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "result_code FAIL accepted");
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
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "signed return_code FAIL accepted");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "return_code FAIL: failed");
	is_str(ev.dedup_key, "fail:A2:-:-", "return_code FAIL: dedup key");
	is_int(ev.amount, 0, "return_code FAIL: amount 0 when absent");
	is_str(ev.currency, "CNY", "return_code FAIL: currency default");
	th_note_set(&n, "out_trade_no", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD,
	    "failure without out_trade_no refused");

	/* Hostile bodies. */
	base_note(&n, "A1", "T1");
	sign_note(&n, KEY_MD5, "MD5");
	len = render(&n, body + 14, sizeof(body) - 14);
	memcpy(body, "<!DOCTYPE xml>", 14);
	is_int(run_body(ctx, body, len + 14, &ev), PH_E_MALFORMED,
	    "signed body behind a DOCTYPE refused");
	len = render(&n, body, sizeof(body));
	memmove(body + len - 6, "<sign>0</sign></xml>", 21);
	is_int(run_body(ctx, body, len + 14, &ev), PH_E_MALFORMED,
	    "second sign field refused");
	is_int(run_body(ctx, "<xml><a>1</a>", 13, &ev), PH_E_MALFORMED,
	    "truncated XML refused");
	is_int(run_body(ctx, "", 0, &ev), PH_E_MALFORMED, "empty body refused");
	is_int(run_body(ctx, "{\"a\":1}", 7, &ev), PH_E_MALFORMED,
	    "JSON body refused");
	base_note(&n, "A1", "T1");
	th_note_set(&n, "attach", "");
	{
		char big[3000];

		memset(big, 'B', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		th_note_set(&n, "openid", big);
	}
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_TOOBIG, "value over 2048 bytes refused");

	payhook_provider()->profile_free(ctx);
}

static void
test_hmac(void)
{
	struct ph_event ev;
	struct th_note n;
	void *ctx = NULL;

	mkprofile(&ctx, "wxd930ea5d5a258f4f", "10000200", KEY_HMAC,
	    "HMAC-SHA256");

	base_note(&n, "H1", "4200000002");
	th_note_set(&n, "appid", "wxd930ea5d5a258f4f");
	th_note_set(&n, "mch_id", "10000200");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_OK, "HMAC: valid");
	is_str(ev.dedup_key, "pay:4200000002", "HMAC: dedup key");
	is_int(ev.amount, 1, "HMAC: amount");

	th_note_set(&n, "sign_type", NULL);
	sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "HMAC sign without the sign_type field refused");

	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "MD5-signed (no sign_type) on the HMAC profile refused");
	ok(strstr(d.msg, "MD5") && strstr(d.msg, "HMAC-SHA256"),
	    "downgrade diagnostic names both");
	th_note_set(&n, "sign_type", "MD5");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "MD5-signed (sign_type=MD5) on the HMAC profile refused");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "sign_type=HMAC-SHA256 with an MD5 sign refused");
	sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "HMAC: wrong key refused");

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

/* ---- outbound calls: orderquery and closeorder -------------------------- */

static struct ph_order_ref *
order_ref(const char *id)
{
	return th_order_ref(id, 1, 1414647000);
}

/* cc->random is first, first + 1, ...: the nonce is the hex of the
 * first 16 bytes. */
static void
fixed_cc(struct ph_call_ctx *cc, unsigned int first)
{
	th_call_ctx(cc, 1414647400, first);
}

static int
answer_body(void *ctx, int close, const char *order, int status,
    const char *body, size_t len, struct ph_event *ev)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_http_response in;
	struct ph_header h = { "Content-Type", "text/xml" };

	th_answer(&in, status, body, len, 1414647400);
	in.headers = &h;
	in.nheaders = 1;
	d.msg[0] = '\0';
	/* Garbage in the event must not survive any answer. */
	memset(ev, 0x5a, sizeof(*ev));
	return close ? p->close_response(ctx, order_ref(order), &in, ev, &d) :
	    p->query_response(ctx, order_ref(order), &in, ev, &d);
}

static int
answer(void *ctx, int close, const char *order, const struct th_note *n,
    struct ph_event *ev)
{
	static char body[65536];

	return answer_body(ctx, close, order, 200, body,
	    render(n, body, sizeof(body)), ev);
}

/* An orderquery answer for a paid order, in the order WeChat writes it
 * (not signed yet). */
static void
query_note(struct th_note *n, const char *order, const char *txn,
    const char *state)
{
	const char *const f[] = {
		"return_code", "SUCCESS",
		"return_msg", "OK",
		"appid", APPID,
		"mch_id", MCH_ID,
		"device_info", "",
		"nonce_str", "IITRi8Iabbblz1Jc",
		"result_code", "SUCCESS",
		"openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		"is_subscribe", "Y",
		"trade_type", "JSAPI",
		"bank_type", "CFT",
		"total_fee", "1",
		"fee_type", "CNY",
		"transaction_id", txn,
		"out_trade_no", order,
		"attach", "",
		"time_end", "20141030133525",
		"trade_state", state,
		"trade_state_desc",
		    "\xe6\x94\xaf\xe4\xbb\x98"
		    "\xe6\x88\x90\xe5\x8a\x9f",
		"cash_fee", "1",
		NULL
	};

	th_note_fill(n, f);
	mark_raw(n, "total_fee");
	mark_raw(n, "cash_fee");
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

	query_note(n, order, "", state);
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
	mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5");
	fixed_cc(&cc, 0);
	is_int(p->query_request(ctx, order_ref("1409811653"), &cc, &r, &d),
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
	sign_note(&n, KEY_MD5, "MD5");
	is_str(th_note_get(&n, "sign"), "23D4A882058808B5D47964F4AE2C6566",
	    "orderquery request: the test's signer agrees");
	/* And the whole body, rendered by the test from those fields. */
	len = render(&n, body, sizeof(body));
	ok(r.body_len == len && memcmp(r.body, body, len) == 0,
	    "orderquery request: same bytes as the test's renderer");

	/* Fresh random bytes, fresh nonce and sign. */
	fixed_cc(&cc, 0x10);
	is_int(p->query_request(ctx, order_ref("1409811653"), &cc, &r, &d),
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
	is_int(p->close_request(ctx, order_ref("1409811653"), &cc, &r, &d),
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
	is_int(p->query_request(ctx, order_ref("A/1"), &cc, &r, &d),
	    PH_E_FIELD, "request: order id with / refused");
	ok(r.body_len == 0 && r.path[0] == '\0',
	    "request: nothing half-built on failure");
	ok(strstr(d.msg, "out_trade_no") != NULL, "request: diagnostic");
	is_int(p->close_request(ctx,
	    order_ref("123456789012345678901234567890123"), &cc, &r, &d),
	    PH_E_FIELD, "request: 33-character order id refused");
	is_int(p->query_request(ctx, order_ref(""), &cc, &r, &d), PH_E_FIELD,
	    "request: empty order id refused");
	is_int(p->query_request(ctx, order_ref(NULL), &cc, &r, &d),
	    PH_E_FIELD, "request: NULL order id refused");
	p->profile_free(ctx);

	/* HMAC-SHA256 profile, closeorder: sign_type is sent and signed.
	 * Sign by Python: hmac.new(KEY_HMAC, "appid=wxd930ea5d5a258f4f&
	 * mch_id=10000200&nonce_str=a0a1...af&out_trade_no=H-7|x*&
	 * sign_type=HMAC-SHA256&key=<KEY_HMAC>", sha256). */
	mkprofile(&ctx, "wxd930ea5d5a258f4f", "10000200", KEY_HMAC,
	    "HMAC-SHA256");
	fixed_cc(&cc, 0xa0);
	is_int(p->close_request(ctx, order_ref("H-7|x*"), &cc, &r, &d),
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
	sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_str(th_note_get(&n, "sign"), "41A3F7C7472889E9F446C005F73C5058C79B51"
	    "02445268362ACB086DCAE19483",
	    "closeorder request (HMAC): the test's signer agrees");
	is_int(p->query_request(ctx, order_ref("H-7|x*"), &cc, &r, &d),
	    PH_OK, "orderquery request (HMAC): built");
	is_str(r.path, "/pay/orderquery", "orderquery request (HMAC): path");
	len = render(&n, body, sizeof(body));
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

	mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5");

	/* Paid. */
	query_note(&n, "1409811653", txn, "SUCCESS");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "1409811653", &n, &ev), PH_OK,
	    "query SUCCESS: accepted");
	is_event(&ev, "query SUCCESS", PH_EV_PAYMENT_SUCCEEDED, "1409811653",
	    txn, 1, "CNY", 1414647325, "pay:1004400740201409030005092168");
	is_str(ev.refund_id, "", "query SUCCESS: no refund id");
	/* The same payment's notification: one fact for the core. */
	base_note(&n, "1409811653", txn);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &nev), PH_OK, "the payment's notification");
	is_str(nev.dedup_key, ev.dedup_key,
	    "query and notification carry the same dedup key");
	ok(nev.kind == ev.kind && nev.amount == ev.amount &&
	    strcmp(nev.txn_id, ev.txn_id) == 0 &&
	    nev.occurred_at == ev.occurred_at,
	    "query and notification describe the same payment");

	query_note(&n, "1409811653", txn, "SUCCESS");
	th_note_set(&n, "fee_type", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	ok(answer(ctx, 0, "1409811653", &n, &ev) == PH_OK &&
	    strcmp(ev.currency, "CNY") == 0, "query SUCCESS: fee_type "
	    "defaults to CNY");
	query_note(&n, "1409811653", txn, "SUCCESS");
	th_note_set(&n, "fee_type", "USD");
	sign_note(&n, KEY_MD5, "MD5");
	ok(answer(ctx, 0, "1409811653", &n, &ev) == PH_OK &&
	    strcmp(ev.currency, "USD") == 0, "query SUCCESS: fee_type carried");

	/* Refunded after payment: still a payment, with its transaction. */
	query_note(&n, "1409811653", txn, "REFUND");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "1409811653", &n, &ev), PH_OK,
	    "query REFUND: accepted");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "query REFUND: it was paid");
	is_str(ev.txn_id, txn, "query REFUND: transaction id");
	is_str(ev.dedup_key, "pay:1004400740201409030005092168",
	    "query REFUND: the payment's dedup key");
	is_int(ev.amount, 1, "query REFUND: amount");

	/* Every other trade_state. */
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unpaid_note(&n, "O-42", rows[i].state);
		sign_note(&n, KEY_MD5, "MD5");
		snprintf(want, sizeof(want), "query:O-42:%s", rows[i].state);
		ok(answer(ctx, 0, "O-42", &n, &ev) == PH_OK &&
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
	set_raw(&n, "total_fee", NULL);
	th_note_set(&n, "fee_type", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	ok(answer(ctx, 0, "O-42", &n, &ev) == PH_OK &&
	    ev.kind == PH_EV_PAYMENT_PENDING &&
	    strcmp(ev.order_id, "O-42") == 0 && ev.amount == 0 &&
	    strcmp(ev.currency, "CNY") == 0,
	    "query NOTPAY: bare answer, order id from the request, CNY");
	/* A closed order may name its transaction. */
	query_note(&n, "O-42", "4200000000000000000000000001", "PAYERROR");
	sign_note(&n, KEY_MD5, "MD5");
	ok(answer(ctx, 0, "O-42", &n, &ev) == PH_OK &&
	    ev.kind == PH_EV_PAYMENT_FAILED &&
	    strcmp(ev.txn_id, "4200000000000000000000000001") == 0 &&
	    strcmp(ev.dedup_key, "query:O-42:PAYERROR") == 0,
	    "query PAYERROR: transaction id kept");

	query_note(&n, "O-42", txn, "PAID");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query: unknown trade_state refused");
	ok(strstr(d.msg, "trade_state") != NULL, "unknown trade_state named");
	ok(th_event_empty(&ev), "refusal leaves an empty event");
	query_note(&n, "O-42", txn, "success");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query: trade_state is case-sensitive");
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "trade_state", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query: missing trade_state refused");

	/* The answer must be about the order asked about. */
	query_note(&n, "O-43", txn, "SUCCESS");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query SUCCESS: another order's answer refused");
	ok(th_event_empty(&ev), "another order: empty event");
	unpaid_note(&n, "O-43", "NOTPAY");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query NOTPAY: another order's answer refused");
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "transaction_id", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query SUCCESS: missing transaction_id refused");
	query_note(&n, "O-42", txn, "SUCCESS");
	set_raw(&n, "total_fee", "0.01");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query SUCCESS: decimal total_fee refused");
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "time_end", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query SUCCESS: missing time_end refused");
	query_note(&n, "O-42", "T-1", "CLOSED");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query CLOSED: invalid transaction_id refused");

	/* Business failures. */
	fail_note(&n, "ORDERNOTEXIST", "\xe6\xad\xa4\xe4\xba\xa4\xe6\x98\x93"
	    "\xe8\xae\xa2\xe5\x8d\x95\xe5\x8f\xb7\xe4\xb8\x8d\xe5\xad\x98"
	    "\xe5\x9c\xa8");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_OK,
	    "query ORDERNOTEXIST: accepted");
	is_int(ev.kind, PH_EV_NOT_FOUND, "query ORDERNOTEXIST: not found");
	is_str(ev.order_id, "O-42", "query ORDERNOTEXIST: order id");
	is_str(ev.dedup_key, "query:O-42:ORDERNOTEXIST",
	    "query ORDERNOTEXIST: dedup key");
	is_str(ev.currency, "CNY", "query ORDERNOTEXIST: CNY");
	fail_note(&n, "SYSTEMERROR", "\xe7\xb3\xbb\xe7\xbb\x9f\xe9\x94\x99"
	    "\xe8\xaf\xaf");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_PROVIDER,
	    "query SYSTEMERROR: ask later");
	ok(strstr(d.msg, "err_code SYSTEMERROR: ????") != NULL,
	    "query SYSTEMERROR: diagnostic has err_code and its text, "
	    "one ? per non-ASCII character");
	ok(th_event_empty(&ev), "query SYSTEMERROR: no event");
	fail_note(&n, "SIGNERROR", "sign error");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_PROVIDER,
	    "query SIGNERROR: an error");
	fail_note(&n, "ORDERNOTEXIST", "x");
	th_note_set(&n, "err_code", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_PROVIDER,
	    "query result_code FAIL without err_code: an error");
	fail_note(&n, "ORDER NOTEXIST", "x");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query: invalid err_code refused");
	fail_note(&n, "ORDERNOTEXIST", "x");
	th_note_set(&n, "result_code", "MAYBE");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_FIELD,
	    "query: unknown result_code refused");

	/* return_code FAIL: unsigned, an error with the provider's text. */
	memset(&n, 0, sizeof(n));
	th_note_set(&n, "return_code", "FAIL");
	th_note_set(&n, "return_msg", "\xe7\xad\xbe\xe5\x90\x8d\xe9\x94\x99"
	    "\xe8\xaf\xaf\n<b>");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_PROVIDER,
	    "query return_code FAIL: an error");
	ok(strstr(d.msg, "return_code FAIL: ????" "<b>") != NULL,
	    "query return_code FAIL: return_msg in the diagnostic, newline "
	    "dropped");
	ok(strchr(d.msg, '\n') == NULL, "diagnostic stays on one line");
	ok(th_event_empty(&ev), "query return_code FAIL: no event");
	th_note_set(&n, "return_msg", NULL);
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_PROVIDER,
	    "query return_code FAIL without return_msg");
	{
		char big[1024];

		memset(big, 'M', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		th_note_set(&n, "return_msg", big);
		is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_PROVIDER,
		    "query return_code FAIL with a long return_msg");
		ok(strlen(d.msg) < sizeof(d.msg), "long return_msg is cut");
	}

	/* Signatures. */
	query_note(&n, "O-42", txn, "SUCCESS");
	sign_note(&n, KEY_MD5, "MD5");
	set_raw(&n, "total_fee", "100000");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: tampered total_fee refused");
	ok(th_event_empty(&ev), "tampered: empty event");
	query_note(&n, "O-42", txn, "NOTPAY");
	sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "trade_state", "SUCCESS");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: trade_state NOTPAY turned SUCCESS refused");
	query_note(&n, "O-42", txn, "SUCCESS");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: unsigned answer refused");
	ok(strstr(d.msg, "not signed") != NULL, "unsigned: diagnostic");
	th_note_set(&n, "sign", "");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: empty sign refused");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: signed with another key refused");
	sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: HMAC sign on the MD5 profile refused");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: sign_type HMAC-SHA256 on the MD5 profile refused");
	th_note_set(&n, "sign_type", "MD5");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_OK,
	    "query: sign_type MD5 spelled out accepted");
	fail_note(&n, "ORDERNOTEXIST", "x");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: unsigned ORDERNOTEXIST refused");
	fail_note(&n, "ORDERNOTEXIST", "x");
	sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "nonce_str", "other");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: ORDERNOTEXIST with an altered field refused");

	/* Merchant identity, after the signature. */
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "appid", "wx0000000000000000");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_MERCHANT,
	    "query: appid mismatch refused");
	ok(strstr(d.msg, "appid") != NULL, "appid mismatch: diagnostic");
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "appid", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_MERCHANT,
	    "query: missing appid refused");
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "mch_id", "19999999");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_MERCHANT,
	    "query: mch_id mismatch refused");
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "sub_mch_id", "1900000109");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_MERCHANT,
	    "query: sub_mch_id refused");
	query_note(&n, "O-42", txn, "SUCCESS");
	th_note_set(&n, "appid", "wx0000000000000000");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(answer(ctx, 0, "O-42", &n, &ev), PH_E_SIGNATURE,
	    "query: wrong appid and wrong key, the signature fails first");

	/* Transport. */
	query_note(&n, "O-42", txn, "SUCCESS");
	sign_note(&n, KEY_MD5, "MD5");
	{
		static char body[65536];
		size_t len = render(&n, body, sizeof(body));

		is_int(answer_body(ctx, 0, "O-42", 503, body, len, &ev),
		    PH_E_PROVIDER, "query: HTTP 503 is an error");
		ok(strstr(d.msg, "503") != NULL, "HTTP status named");
		ok(th_event_empty(&ev), "HTTP 503: no event");
		is_int(answer_body(ctx, 0, "O-42", 302, body, len, &ev),
		    PH_E_PROVIDER, "query: HTTP 302 is an error");
		is_int(answer_body(ctx, 0, "O-42", 200, "garbage\x01\xff", 9,
		    &ev), PH_E_MALFORMED, "query: garbage refused");
		is_int(answer_body(ctx, 0, "O-42", 200, "", 0, &ev),
		    PH_E_MALFORMED, "query: empty body refused");
		is_int(answer_body(ctx, 0, "O-42", 200, body, len / 2, &ev),
		    PH_E_MALFORMED, "query: truncated body refused");
		memmove(body + 14, body, len);
		memcpy(body, "<!DOCTYPE xml>", 14);
		is_int(answer_body(ctx, 0, "O-42", 200, body, len + 14, &ev),
		    PH_E_MALFORMED, "query: DOCTYPE refused");
	}
	is_int(answer_body(ctx, 0, "A/1", 200, "<xml/>", 6, &ev), PH_E_FIELD,
	    "query: invalid order id refused before parsing");
	is_int(payhook_provider()->query_response(NULL, order_ref("O-42"),
	    NULL, &ev, &d), PH_E_INTERNAL, "query: NULL arguments");
	payhook_provider()->profile_free(ctx);

	/* HMAC-SHA256 profile: WeChat signs the answer with the request's
	 * algorithm and may leave sign_type out. */
	mkprofile(&ctx, "wxd930ea5d5a258f4f", "10000200", KEY_HMAC,
	    "HMAC-SHA256");
	query_note(&n, "H1", txn, "SUCCESS");
	th_note_set(&n, "appid", "wxd930ea5d5a258f4f");
	th_note_set(&n, "mch_id", "10000200");
	sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(answer(ctx, 0, "H1", &n, &ev), PH_OK,
	    "query (HMAC): answer without sign_type accepted");
	is_str(ev.dedup_key, "pay:1004400740201409030005092168",
	    "query (HMAC): dedup key");
	th_note_set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(answer(ctx, 0, "H1", &n, &ev), PH_OK,
	    "query (HMAC): answer with sign_type accepted");
	th_note_set(&n, "sign_type", NULL);
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(answer(ctx, 0, "H1", &n, &ev), PH_E_SIGNATURE,
	    "query (HMAC): MD5-signed answer refused");
	th_note_set(&n, "sign_type", "MD5");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(answer(ctx, 0, "H1", &n, &ev), PH_E_SIGNATURE,
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

	mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5");

	close_note(&n);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_OK, "close SUCCESS: accepted");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "close SUCCESS: closed");
	is_str(ev.order_id, "C-1", "close SUCCESS: order id");
	is_str(ev.dedup_key, "close:C-1:CLOSED", "close SUCCESS: dedup key");
	is_str(ev.currency, "CNY", "close SUCCESS: CNY");
	is_str(ev.txn_id, "", "close SUCCESS: no transaction");

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		fail_note(&n, rows[i].err, "des");
		sign_note(&n, KEY_MD5, "MD5");
		snprintf(want, sizeof(want), "close:C-1:%s", rows[i].err);
		if (rows[i].rc != PH_OK) {
			ok(answer(ctx, 1, "C-1", &n, &ev) == rows[i].rc &&
			    th_event_empty(&ev) &&
			    strstr(d.msg, rows[i].err) != NULL,
			    "close %s: an error naming it, no event",
			    rows[i].err);
			continue;
		}
		ok(answer(ctx, 1, "C-1", &n, &ev) == PH_OK &&
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
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_E_PROVIDER,
	    "close return_code FAIL: an error");
	ok(strstr(d.msg, "XML_FORMAT_ERROR") != NULL &&
	    strstr(d.msg, "closeorder") != NULL,
	    "close return_code FAIL: diagnostic");

	close_note(&n);
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_E_SIGNATURE,
	    "close: unsigned SUCCESS refused");
	fail_note(&n, "ORDERPAID", "paid");
	sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "err_code", "ORDERCLOSED");
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_E_SIGNATURE,
	    "close: ORDERPAID turned ORDERCLOSED refused");
	ok(th_event_empty(&ev), "close tampered: no event");
	close_note(&n);
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_E_SIGNATURE,
	    "close: another key refused");
	close_note(&n);
	th_note_set(&n, "appid", "wx0000000000000000");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_E_MERCHANT,
	    "close: appid mismatch refused");
	close_note(&n);
	th_note_set(&n, "mch_id", "19999999");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_E_MERCHANT,
	    "close: mch_id mismatch refused");
	close_note(&n);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer_body(ctx, 1, "C-1", 500, "", 0, &ev), PH_E_PROVIDER,
	    "close: HTTP 500 is an error");
	is_int(answer_body(ctx, 1, "C-1", 200, "not xml", 7, &ev),
	    PH_E_MALFORMED, "close: garbage refused");
	fail_note(&n, "ORDER PAID", "x");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(answer(ctx, 1, "C-1", &n, &ev), PH_E_FIELD,
	    "close: invalid err_code refused");
	payhook_provider()->profile_free(ctx);
}

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

	if (!ok(mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5") == PH_OK,
	    "hint: profile"))
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
	if (mkprofile(&ctx, "wxd930ea5d5a258f4f", MCH_ID, KEY_MD5, "MD5") !=
	    PH_OK)
		abort();
	body = th_vector("wechat/attach-spaces-signed-trimmed.xml", &len);
	is_int(run_body(ctx, body, len, &ev), PH_OK,
	    "vector: signed over trimmed values (WXPayUtil): verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(ev.order_id, "1409811653", "vector trimmed: order");
	is_str(ev.txn_id, txn, "vector trimmed: transaction");
	free(body);
	body = th_vector("wechat/attach-spaces-signed-raw.xml", &len);
	is_int(run_body(ctx, body, len, &ev2), PH_OK,
	    "vector: signed over raw values (WxPayDataBase): verifies");
	is_str(ev2.dedup_key, ev.dedup_key,
	    "vector: both forms are one payment (one dedup key)");
	body[strstr(body, "1004400740") - body] = '2';
	is_int(run_body(ctx, body, len, &ev2), PH_E_SIGNATURE,
	    "vector: raw form, transaction id changed: refused");
	free(body);
	body = th_vector("wechat/attach-spaces-signed-trimmed.xml", &len);
	body[strstr(body, "<total_fee>1<") - body + 11] = '2';
	is_int(run_body(ctx, body, len, &ev2), PH_E_SIGNATURE,
	    "vector: trimmed form, amount changed: refused");
	free(body);
	payhook_provider()->profile_free(ctx);

	ctx = NULL;
	mkprofile(&ctx, APPID, MCH_ID, KEY_MD5, "MD5");
	base_note(&n, "1409811653", txn);
	/* No CR: XML reads CR LF as LF, so the raw reading could not
	 * match. */
	th_note_set(&n, "attach", "\t support \n");
	th_note_set(&n, "device_info", "   ");
	sign_trimmed(&n, KEY_MD5);
	is_int(run(ctx, &n, &ev), PH_OK, "trimmed: tab, LF and a blank "
	    "value (left out) verify");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "raw: the same values verify");
	sign_trimmed(&n, KEY_MD5);
	th_note_set(&n, "attach", "\t support2 \n");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "trimmed: a changed value "
	    "refused");
	base_note(&n, "1409811653", txn);
	th_note_set(&n, "attach", " support ");
	sign_trimmed(&n, "0123456789abcdef0123456789abcdef");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "trimmed: another key "
	    "refused");
	base_note(&n, "1409811653", txn);
	th_note_set(&n, "out_trade_no", " 1409811653 ");
	sign_trimmed(&n, KEY_MD5);
	is_int(run(ctx, &n, &ev), PH_OK, "trimmed: a padded order id");
	is_str(ev.order_id, "1409811653", "trimmed: the event holds the "
	    "value that was signed");
	base_note(&n, "1409811653", txn);
	th_note_set(&n, "attach", "");
	th_note_set(&n, "device_info", " ");
	sign_note(&n, KEY_MD5, "MD5");
	th_note_set(&n, "device_info", NULL);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "raw: a signed blank value "
	    "cannot be dropped");

	/* A query answer is signed by the same server: the same rule. */
	query_note(&n, "1409811653", txn, "SUCCESS");
	th_note_set(&n, "attach", " support ");
	sign_trimmed(&n, KEY_MD5);
	is_int(answer(ctx, 0, "1409811653", &n, &ev), PH_OK,
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
	test_call_requests();
	test_query_answers();
	test_close_answers();
	test_padded_values();
	test_hint();
	return done_testing();
}
