/*
 * The WeChat Pay v2 plugin, driven through its table with notifications
 * signed here by a separate, deliberately plain implementation of the
 * v2 signature rules (PROTOCOLS.md 1.2).
 */
#include "../../providers/wechat/wechat.c"

#include "tap.h"

#define KEY_MD5  "192006250b4c09247ec02edce69f6a2d"
#define KEY_HMAC "Hm4cK3yE2eTestKeyForSha256Prof1x"
#define APPID    "wx2421b1c4370ec43b"
#define MCH_ID   "10000100"

/* ---- a notification under construction ------------------------------ */

struct field {
	char k[64];
	char v[3072];
	int raw;		/* written without CDATA */
};

struct note {
	struct field f[48];
	size_t n;
};

static void
set(struct note *n, const char *k, const char *v)
{
	size_t i;

	for (i = 0; i < n->n; i++)
		if (strcmp(n->f[i].k, k) == 0)
			break;
	if (v == NULL) {
		if (i < n->n) {
			memmove(&n->f[i], &n->f[i + 1],
			    (n->n - i - 1) * sizeof(n->f[0]));
			n->n--;
		}
		return;
	}
	if (i == n->n) {
		if (n->n == sizeof(n->f) / sizeof(n->f[0]))
			abort();
		n->n++;
		n->f[i].raw = 0;
	}
	snprintf(n->f[i].k, sizeof(n->f[i].k), "%s", k);
	snprintf(n->f[i].v, sizeof(n->f[i].v), "%s", v);
}

static void
set_raw(struct note *n, const char *k, const char *v)
{
	size_t i;

	set(n, k, v);
	for (i = 0; i < n->n; i++)
		if (strcmp(n->f[i].k, k) == 0)
			n->f[i].raw = 1;
}

/* A realistic successful payment, in the order WeChat sends it. */
static void
base_note(struct note *n, const char *order, const char *txn)
{
	memset(n, 0, sizeof(*n));
	set(n, "appid", APPID);
	set(n, "attach", "support");
	set(n, "bank_type", "CFT");
	set(n, "fee_type", "CNY");
	set(n, "is_subscribe", "Y");
	set(n, "mch_id", MCH_ID);
	set(n, "nonce_str", "5d2b6c2a8db53831f7eda20af46e531c");
	set(n, "openid", "oUpF8uMEb4qRXf22hE3X68TekukE");
	set(n, "out_trade_no", order);
	set(n, "result_code", "SUCCESS");
	set(n, "return_code", "SUCCESS");
	set(n, "time_end", "20141030133525");
	set_raw(n, "total_fee", "1");
	set(n, "coupon_fee_0", "10");
	set(n, "coupon_count", "1");
	set(n, "coupon_type", "CASH");
	set(n, "coupon_id_0", "10000");
	set(n, "trade_type", "JSAPI");
	set(n, "transaction_id", txn);
	set_raw(n, "cash_fee", "1");
}

/*
 * The v2 signature, written out step by step: drop sign and empty
 * values, sort names byte-wise, join k=v with &, append &key=KEY, then
 * MD5 or HMAC-SHA256 (keyed with KEY), upper-case hex.  include_empty
 * builds a wrong sign on purpose.
 */
static void
sign_with(struct note *n, const char *key, const char *alg,
    int include_empty)
{
	size_t idx[48], m = 0, i, j, t;
	char s[16384];
	size_t len = 0;
	unsigned char md[32];
	char hex[65];
	size_t mdlen;

	set(n, "sign", NULL);
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
	set(n, "sign", hex);
}

static void
sign_note(struct note *n, const char *key, const char *alg)
{
	sign_with(n, key, alg, 0);
}

static size_t
render(const struct note *n, char *out, size_t cap)
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
	struct ph_request req;
	struct ph_header h = { "Content-Type", "text/xml" };

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.content_type = "text/xml";
	req.body = (const unsigned char *)body;
	req.body_len = len;
	req.headers = &h;
	req.nheaders = 1;
	req.now = 1414647400;
	d.msg[0] = '\0';
	return payhook_provider()->parse_notify(ctx, &req, ev, &d);
}

static int
run(void *ctx, const struct note *n, struct ph_event *ev)
{
	static char body[65536];

	return run_body(ctx, body, render(n, body, sizeof(body)), ev);
}

/* ---- profiles ----------------------------------------------------------- */

static int
mkprofile(void **ctx, const char *appid, const char *mch_id, const char *key,
    const char *sign_type)
{
	static struct ph_conf_value v[WX_CONF__MAX];
	struct ph_conf conf = { "test", v, WX_CONF__MAX };

	memset(v, 0, sizeof(v));
	v[WX_CONF_APPID].name = "appid";
	v[WX_CONF_APPID].present = appid != NULL;
	v[WX_CONF_APPID].str = appid != NULL ? appid : "";
	v[WX_CONF_MCH_ID].name = "mch_id";
	v[WX_CONF_MCH_ID].present = mch_id != NULL;
	v[WX_CONF_MCH_ID].str = mch_id != NULL ? mch_id : "";
	v[WX_CONF_API_KEY_FILE].name = "api_key_file";
	v[WX_CONF_API_KEY_FILE].present = key != NULL;
	v[WX_CONF_API_KEY_FILE].str = key != NULL ? "keys/test.key" : "";
	v[WX_CONF_API_KEY_FILE].blob.data = (const unsigned char *)key;
	v[WX_CONF_API_KEY_FILE].blob.len = key != NULL ? strlen(key) : 0;
	v[WX_CONF_SIGN_TYPE].name = "sign_type";
	v[WX_CONF_SIGN_TYPE].present = sign_type != NULL;
	v[WX_CONF_SIGN_TYPE].str = sign_type != NULL ? sign_type : "";
	d.msg[0] = '\0';
	return payhook_provider()->profile_new(&conf, ctx, &d);
}

static void
test_table(void)
{
	const struct ph_provider *p = payhook_provider();
	size_t i;

	is_int(p->abi, PH_PROVIDER_ABI, "table: ABI version");
	is_str(p->name, "wechat", "table: name");
	is_int(p->caps, PH_CAP_NOTIFY, "table: notify only");
	ok(p->profile_new && p->profile_free && p->parse_notify && p->ack,
	    "table: all notify entries set");
	for (i = 0; i < 4; i++)
		if (p->reserved[i] != NULL)
			break;
	is_int(i, 4, "table: reserved entries NULL");
	is_str(p->conf_keys[WX_CONF_APPID].name, "appid", "key 0 appid");
	is_str(p->conf_keys[WX_CONF_MCH_ID].name, "mch_id", "key 1 mch_id");
	is_str(p->conf_keys[WX_CONF_API_KEY_FILE].name, "api_key_file",
	    "key 2 api_key_file");
	is_int(p->conf_keys[WX_CONF_API_KEY_FILE].type, PH_CONF_SECRET_FILE,
	    "api_key_file is a secret file");
	is_str(p->conf_keys[WX_CONF_SIGN_TYPE].def, "MD5",
	    "sign_type defaults to MD5");
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
	struct note n;
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
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "MD5: payment succeeded");
	is_str(ev.order_id, "1409811653", "MD5: order id");
	is_str(ev.txn_id, "1004400740201409030005092168", "MD5: txn id");
	is_int(ev.amount, 1, "MD5: amount in fen");
	is_str(ev.currency, "CNY", "MD5: currency");
	is_int(ev.occurred_at, 1414647325, "MD5: time_end at UTC+8");
	is_str(ev.dedup_key, "pay:1004400740201409030005092168",
	    "MD5: dedup key");
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
	set(&n, "attach", "\xe5\xbe\xae\xe4\xbf\xa1\xe6\x94\xaf\xe4\xbb\x98 #22");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "UTF-8 attach signed as bytes");

	/* An XML declaration in front changes nothing. */
	len = render(&n, body + 38, sizeof(body) - 38);
	memcpy(body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38);
	is_int(run_body(ctx, body, len + 38, &ev), PH_OK,
	    "XML declaration accepted");

	/* sign_type=MD5 spelled out is the same algorithm. */
	base_note(&n, "A1", "T1");
	set(&n, "sign_type", "MD5");
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
	set(&n, "sign", "");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "empty sign refused");

	base_note(&n, "A1", "T1");
	set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "HMAC-signed on the MD5 profile refused");
	ok(strstr(d.msg, "HMAC-SHA256") && strstr(d.msg, "MD5"),
	    "sign_type mismatch diagnostic names both");

	/* Empty values are not signed; signing them is wrong. */
	base_note(&n, "A1", "T1");
	set(&n, "device_info", "");
	set_raw(&n, "coupon_fee", "");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "empty-value fields are not signed");
	sign_with(&n, KEY_MD5, "MD5", 1);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "a sign over empty values is refused");

	/* Unknown fields are signed: one added afterwards breaks it. */
	base_note(&n, "A1", "T1");
	set(&n, "coupon_fee_0", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "without coupon_fee_0");
	set(&n, "coupon_fee_0", "10");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "unknown field added after signing refused");

	/* Merchant identity, checked after the signature. */
	base_note(&n, "A1", "T1");
	set(&n, "appid", "wx0000000000000000");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT,
	    "wrong appid with a valid signature refused");
	base_note(&n, "A1", "T1");
	set(&n, "mch_id", "19999999");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT,
	    "wrong mch_id with a valid signature refused");
	base_note(&n, "A1", "T1");
	set(&n, "mch_id", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT, "missing mch_id refused");
	base_note(&n, "A1", "T1");
	set(&n, "mch_id", "19999999");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "wrong mch_id and wrong key: the signature fails first");
	base_note(&n, "A1", "T1");
	set(&n, "sub_mch_id", "1900000109");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT,
	    "service-provider notification refused");

	/* Business fields. */
	base_note(&n, "A1", "T1");
	set(&n, "transaction_id", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "missing transaction_id refused");
	ok(strstr(d.msg, "transaction_id") != NULL,
	    "missing transaction_id: diagnostic names it");
	base_note(&n, "A1", "T1");
	set(&n, "out_trade_no", NULL);
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
	set(&n, "fee_type", NULL);
	sign_note(&n, KEY_MD5, "MD5");
	ok(run(ctx, &n, &ev) == PH_OK && strcmp(ev.currency, "CNY") == 0,
	    "fee_type defaults to CNY");
	base_note(&n, "A1", "T1");
	set(&n, "fee_type", "USD");
	sign_note(&n, KEY_MD5, "MD5");
	ok(run(ctx, &n, &ev) == PH_OK && strcmp(ev.currency, "USD") == 0,
	    "fee_type USD carried");
	base_note(&n, "A1", "T1");
	set(&n, "fee_type", "usd");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "invalid fee_type refused");
	base_note(&n, "A1", "T1");
	set(&n, "time_end", "20141330133525");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "invalid time_end refused");
	ok(strstr(d.msg, "time_end") != NULL, "time_end named");
	base_note(&n, "A1", "T1");
	set(&n, "return_code", "MAYBE");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "unknown return_code refused");

	/* Signed failures. */
	base_note(&n, "A1", "4200000001");
	set(&n, "result_code", "FAIL");
	set(&n, "err_code", "SYSTEMERROR");
	set(&n, "err_code_des", "bank refused");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "result_code FAIL accepted");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "result_code FAIL: payment failed");
	is_str(ev.order_id, "A1", "failure: order id");
	is_str(ev.dedup_key, "fail:A1:4200000001:SYSTEMERROR",
	    "failure: dedup key");
	is_int(ev.amount, 1, "failure: amount when given");

	memset(&n, 0, sizeof(n));
	set(&n, "return_code", "FAIL");
	set(&n, "return_msg", "SIGNERROR");
	set(&n, "appid", APPID);
	set(&n, "mch_id", MCH_ID);
	set(&n, "nonce_str", "abc");
	set(&n, "out_trade_no", "A2");
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_OK, "signed return_code FAIL accepted");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "return_code FAIL: failed");
	is_str(ev.dedup_key, "fail:A2:-:-", "return_code FAIL: dedup key");
	is_int(ev.amount, 0, "return_code FAIL: amount 0 when absent");
	is_str(ev.currency, "CNY", "return_code FAIL: currency default");
	set(&n, "out_trade_no", NULL);
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
	set(&n, "attach", "");
	{
		char big[3000];

		memset(big, 'B', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		set(&n, "openid", big);
	}
	sign_note(&n, KEY_MD5, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_TOOBIG, "value over 2048 bytes refused");

	payhook_provider()->profile_free(ctx);
}

static void
test_hmac(void)
{
	struct ph_event ev;
	struct note n;
	void *ctx = NULL;

	mkprofile(&ctx, "wxd930ea5d5a258f4f", "10000200", KEY_HMAC,
	    "HMAC-SHA256");

	base_note(&n, "H1", "4200000002");
	set(&n, "appid", "wxd930ea5d5a258f4f");
	set(&n, "mch_id", "10000200");
	set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_OK, "HMAC: valid");
	is_str(ev.dedup_key, "pay:4200000002", "HMAC: dedup key");
	is_int(ev.amount, 1, "HMAC: amount");

	set(&n, "sign_type", NULL);
	sign_note(&n, KEY_HMAC, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "HMAC sign without the sign_type field refused");

	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "MD5-signed (no sign_type) on the HMAC profile refused");
	ok(strstr(d.msg, "MD5") && strstr(d.msg, "HMAC-SHA256"),
	    "downgrade diagnostic names both");
	set(&n, "sign_type", "MD5");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "MD5-signed (sign_type=MD5) on the HMAC profile refused");
	set(&n, "sign_type", "HMAC-SHA256");
	sign_note(&n, KEY_HMAC, "MD5");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "sign_type=HMAC-SHA256 with an MD5 sign refused");
	sign_note(&n, KEY_MD5, "HMAC-SHA256");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "HMAC: wrong key refused");

	payhook_provider()->profile_free(ctx);
}

/* ---- acknowledgements ----------------------------------------------- */

static int
body_is(const struct ph_response *r, const char *want)
{
	return r->body_len == strlen(want) &&
	    memcmp(r->body, want, r->body_len) == 0;
}

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
	ok(body_is(&r, "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
	    "<return_msg><![CDATA[OK]]></return_msg></xml>"),
	    "ack OK: exact bytes");

	p->ack(NULL, PH_ACK_REFUSED, "signature mismatch", &r);
	is_int(r.status, 200, "ack REFUSED: 200");
	is_str(r.content_type, "text/xml", "ack REFUSED: text/xml");
	ok(body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[signature mismatch]]></return_msg></xml>"),
	    "ack REFUSED: exact bytes with the reason");

	p->ack(NULL, PH_ACK_REFUSED, NULL, &r);
	ok(body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[invalid notification]]></return_msg></xml>"),
	    "ack REFUSED: default reason");

	p->ack(NULL, PH_ACK_RETRY, NULL, &r);
	is_int(r.status, 500, "ack RETRY: 500");
	ok(body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
	    "<return_msg><![CDATA[temporarily unavailable]]></return_msg>"
	    "</xml>"), "ack RETRY: exact bytes");
	p->ack(NULL, PH_ACK_RETRY, "store full", &r);
	ok(r.status == 500 && body_is(&r, "<xml><return_code><![CDATA[FAIL]]>"
	    "</return_code><return_msg><![CDATA[store full]]></return_msg>"
	    "</xml>"), "ack RETRY: with a reason");

	p->ack(NULL, PH_ACK_REFUSED, "a]]>b\n\xe4\xb8\xad<c>", &r);
	ok(body_is(&r, "<xml><return_code><![CDATA[FAIL]]></return_code>"
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

int
main(void)
{
	test_table();
	test_profiles();
	test_md5();
	test_hmac();
	test_ack();
	return done_testing();
}
