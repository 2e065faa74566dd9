/*
 * The Alipay plugin, driven through its table: its profiles,
 * notifications (TV-7 among them), acknowledgements, and the calls to its
 * gateway (query, close, refund) with their answers; statements and bill
 * downloads are test_alipay_bill.c.  Keys are made when the test runs
 * (alipay_fixture.c); notifications and answers are signed here with a
 * separate, deliberately plain implementation of Alipay's rules
 * (doc/design/protocols.md §4.2): every parameter but sign and
 * sign_type, sorted, k=v joined with '&', SHA256withRSA.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../../providers/alipay/alipay_test.h"

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
#include "alipay_fixture.h"
#include "alipay_check.h"

#define NOTIFY_ID	"2026113000222153030012345678901234"

/* ---- messages under construction ----------------------------------------- */

/* A payment notification of ORDER, 12.34 yuan, paid at PAID_BJ. */
static void
base_note(struct th_note *n)
{
	const char *const f[] = {
		"gmt_create", "2026-11-30 15:29:30",
		"charset", "utf-8",
		"seller_email", "shop@example.com",
		"subject", "测试 订单 & more=1",
		"buyer_id", "2088102116773037",
		"invoice_amount", "12.34",
		"notify_id", NOTIFY_ID,
		"fund_bill_list",
		    "[{\"amount\":\"12.34\",\"fundChannel\":\"ALIPAYACCOUNT\"}]",
		"notify_type", "trade_status_sync",
		"trade_status", "TRADE_SUCCESS",
		"receipt_amount", "12.34",
		"app_id", APP_ID,
		"buyer_pay_amount", "12.34",
		"sign_type", "RSA2",
		"seller_id", SELLER_ID,
		"gmt_payment", PAID_BJ,
		"notify_time", "2026-11-30 15:29:41",
		"passback_params", "",
		"version", "1.0",
		"out_trade_no", ORDER,
		"total_amount", "12.34",
		"trade_no", TRADE_NO,
		"auth_app_id", APP_ID,
		"buyer_logon_id", "abc***@example.com",
		"point_amount", "0.00",
		NULL
	};

	th_note_fill(n, f);
}

enum how {
	HOW_RIGHT,		/* without sign and sign_type, empties kept */
	HOW_NO_EMPTY,		/* empty values left out */
	HOW_WITH_TYPE,		/* sign_type kept */
	HOW_SHA1,		/* SHA1withRSA, as sign_type=RSA means */
};

static char sstr[65536];

static size_t
sign_string(const struct th_note *n, enum how how)
{
	static const char *const plain[] = { "sign", "sign_type", NULL };
	static const char *const typed[] = { "sign", NULL };

	return th_note_join(n, how == HOW_WITH_TYPE ? typed : plain,
	    how != HOW_NO_EMPTY, sstr, sizeof(sstr));
}

static void
sign_how(struct th_note *n, EVP_PKEY *key, enum how how)
{
	char b64[1500];
	size_t len;

	th_note_set(n, "sign", NULL);
	len = sign_string(n, how);
	th_rsa_sign(key, how == HOW_SHA1 ? "SHA1" : "SHA256", sstr, len, b64);
	th_note_set(n, "sign", b64);
}

static void
sign_note(struct th_note *n)
{
	sign_how(n, afx_alipay_key, HOW_RIGHT);
}

static char body[65536];

static size_t
render(const struct th_note *n, const char *dup, const char *dupval)
{
	return th_note_form(n, dup, dupval, body, sizeof(body));
}

static struct ph_diag d;

static int
run_len(void *ctx, size_t len, const char *ct, struct ph_event *ev)
{
	return th_notify(payhook_provider(), ctx, body, len, ct, NOW, ev, &d);
}

static int
run(void *ctx, const struct th_note *n, struct ph_event *ev)
{
	return run_len(ctx, render(n, NULL, NULL),
	    "application/x-www-form-urlencoded; charset=utf-8", ev);
}

/* ---- profiles ------------------------------------------------------------ */

static void
test_table(void)
{
	const struct ph_provider *p = payhook_provider();
	size_t i;

	is_int(p->abi, PH_PROVIDER_ABI, "table: ABI version");
	is_str(p->name, "alipay", "table: name");
	is_int(p->caps, PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE |
	    PH_CAP_REFUND | PH_CAP_STATEMENT | PH_CAP_DOWNLOAD |
	    PH_CAP_ORDER_KEYED, "table: notify, query, close, refund, "
	    "statement, download; orders known by their id alone");
	ok(p->profile_new && p->profile_free && p->parse_notify && p->ack &&
	    p->query_request && p->query_response && p->close_request &&
	    p->close_response && p->refund_request && p->refund_response &&
	    p->statement_line && p->statement_request &&
	    p->statement_response, "table: every entry set");
	ok(p->notify_hint != NULL, "table: notify hint set");
	ok(p->download_hosts != NULL && p->download_hosts[0] != NULL &&
	    strcmp(p->download_hosts[0], "dwbillcenter.alipay.com") == 0 &&
	    p->download_hosts[1] == NULL,
	    "table: bill links on dwbillcenter.alipay.com alone");
	for (i = 0; p->conf_keys[i].name != NULL; i++)
		ok(strcmp(p->conf_keys[i].name, "api_base") != 0,
		    "key %s is not api_base", p->conf_keys[i].name);
	is_int(i, 4, "four keys");
	is_int(p->conf_keys[ALI_CONF_APP_PRIVATE_KEY_FILE].type,
	    PH_CONF_SECRET_FILE, "app_private_key_file is a secret file");
	ok(p->conf_keys[ALI_CONF_APP_ID].required &&
	    p->conf_keys[ALI_CONF_SELLER_ID].required &&
	    p->conf_keys[ALI_CONF_ALIPAY_PUBLIC_KEY_FILE].required &&
	    !p->conf_keys[ALI_CONF_APP_PRIVATE_KEY_FILE].required,
	    "app_id, seller_id, alipay_public_key_file required");
}

static void
test_profiles(void)
{
	struct afx_prof p;
	void *ctx = NULL;
	char *bare_pub, *bare_priv, *enc_priv, *cert;
	EVP_PKEY *small;
	BIO *b;
	X509 *x;
	long n;
	char *s;

	p = afx_good_prof();
	is_int(afx_mkprofile(&ctx, &p, &d), PH_OK, "profile: valid");
	payhook_provider()->profile_free(ctx);

	bare_pub = th_pem_bare(afx_alipay_pub_pem);
	bare_priv = th_pem_bare(afx_app_priv_pem);
	p.pub = bare_pub;
	p.priv = bare_priv;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_OK,
	    "profile: keys as the console's bare base64");
	payhook_provider()->profile_free(ctx);
	free(bare_pub);
	free(bare_priv);

	p = afx_good_prof();
	p.priv = NULL;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_OK,
	    "profile: notifications only (no app key)");
	payhook_provider()->profile_free(ctx);

	ctx = (void *)&ctx;
	p = afx_good_prof();
	p.app_id = NULL;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: app_id required");
	ok(ctx == NULL, "profile: no context on failure");
	p = afx_good_prof();
	p.seller_id = NULL;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: seller_id required");
	p = afx_good_prof();
	p.seller_id = "2088 1021";
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: bad seller_id");
	p = afx_good_prof();
	p.pub = NULL;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: alipay_public_key_file required");
	p = afx_good_prof();
	p.pub = "not a key\n";
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: bad public key");
	p = afx_good_prof();
	p.pub = afx_app_priv_pem;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: a private key as Alipay's public key refused");
	ok(strstr(d.msg, "BEGIN") == NULL && strstr(d.msg, "MII") == NULL,
	    "profile: diagnostic quotes no key material");

	/* A certificate (Alipay's certificate mode) is refused. */
	if ((x = X509_new()) == NULL ||
	    X509_set_pubkey(x, afx_alipay_key) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_sign(x, afx_alipay_key, EVP_sha256()) == 0 ||
	    (b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, x) != 1)
		abort();
	n = BIO_get_mem_data(b, &s);
	if ((cert = malloc((size_t)n + 1)) == NULL)
		abort();
	memcpy(cert, s, (size_t)n);
	cert[n] = '\0';
	BIO_free(b);
	X509_free(x);
	p = afx_good_prof();
	p.pub = cert;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: a certificate refused (certificate mode)");
	free(cert);

	if ((small = EVP_RSA_gen(1024)) == NULL)
		abort();
	s = th_pem_key(small, 0);
	p = afx_good_prof();
	p.pub = s;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: a 1024-bit Alipay key refused");
	free(s);
	s = th_pem_key(small, 1);
	p = afx_good_prof();
	p.priv = s;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: a 1024-bit app key refused");
	free(s);
	EVP_PKEY_free(small);

	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(b, afx_app_key, EVP_aes_128_cbc(), NULL, 0,
	    NULL, (void *)"secret") != 1)
		abort();
	n = BIO_get_mem_data(b, &s);
	if ((enc_priv = malloc((size_t)n + 1)) == NULL)
		abort();
	memcpy(enc_priv, s, (size_t)n);
	enc_priv[n] = '\0';
	BIO_free(b);
	p = afx_good_prof();
	p.priv = enc_priv;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: an encrypted app key refused");
	free(enc_priv);
	p = afx_good_prof();
	p.priv = afx_alipay_pub_pem;
	is_int(afx_mkprofile(&ctx, &p, &d), PH_E_CONFIG,
	    "profile: a public key as the app key refused");
	ok(ctx == NULL, "profile: still no context");
	payhook_provider()->profile_free(NULL);
	ok(1, "profile_free(NULL) is harmless");
}

/* ---- TV-7 ---------------------------------------------------------------- */

/*
 * doc/design/protocols.md TV-7: Alipay's published example notification.  Its
 * documented string to verify leaves out gmt_create; the rule (every
 * received key but sign and sign_type, sorted) keeps it.
 */
static const char *const tv7[][2] = {
	{ "total_amount", "2.00" }, { "buyer_id", "2088102116773037" },
	{ "body", "大乐透2.1" }, { "trade_no", "2016071921001003030200089909" },
	{ "refund_fee", "0.00" }, { "notify_time", "2016-07-19 14:10:49" },
	{ "subject", "大乐透2.1" }, { "sign_type", "RSA2" },
	{ "charset", "utf-8" }, { "notify_type", "trade_status_sync" },
	{ "out_trade_no", "0719141034-6418" },
	{ "gmt_close", "2016-07-19 14:10:46" },
	{ "gmt_payment", "2016-07-19 14:10:47" },
	{ "trade_status", "TRADE_SUCCESS" }, { "version", "1.0" },
	{ "sign", "…" }, { "gmt_create", "2016-07-19 14:10:44" },
	{ "app_id", "2015102700040153" }, { "seller_id", "2088102119685838" },
	{ "notify_id", "4a91b7a78a503640467525113fb7d8bg8e" },
};

static const char tv7_string[] =
    "app_id=2015102700040153&body=大乐透2.1&buyer_id=2088102116773037&"
    "charset=utf-8&gmt_close=2016-07-19 14:10:46&gmt_create=2016-07-19 "
    "14:10:44&gmt_payment=2016-07-19 14:10:47&notify_id=4a91b7a78a50364046"
    "7525113fb7d8bg8e&notify_time=2016-07-19 14:10:49&notify_type="
    "trade_status_sync&out_trade_no=0719141034-6418&refund_fee=0.00&"
    "seller_id=2088102119685838&subject=大乐透2.1&total_amount=2.00&"
    "trade_no=2016071921001003030200089909&trade_status=TRADE_SUCCESS&"
    "version=1.0";

static void
test_tv7(void)
{
	static const char *const skip[] = { "sign", "sign_type", NULL };
	struct afx_prof p = afx_good_prof();
	struct ph_kvlist kv;
	struct ph_event ev;
	struct ph_buf s;
	struct th_note n;
	void *ctx = NULL;
	size_t i, len;

	memset(&n, 0, sizeof(n));
	for (i = 0; i < sizeof(tv7) / sizeof(tv7[0]); i++)
		th_note_set(&n, tv7[i][0], tv7[i][1]);
	len = render(&n, NULL, NULL);
	is_int(ph_form_parse((const unsigned char *)body, len,
	    &ali_form_limits, &kv, &d), PH_OK, "TV-7: the form decodes");
	ph_buf_init(&s, 65536);
	is_int(ph_canonical_join(&kv, skip, 0, &s), PH_OK,
	    "TV-7: canonical string built");
	is_str(s.data, tv7_string, "TV-7: every received key but sign and "
	    "sign_type, sorted, gmt_create included");
	ok(strstr(s.data, "gmt_create=2016-07-19 14:10:44") != NULL,
	    "TV-7: gmt_create is in it (the documented string omits it)");
	ph_buf_free(&s);
	ph_kvlist_free(&kv);
	is_int(sign_string(&n, HOW_RIGHT), strlen(tv7_string),
	    "TV-7: the test's own signer builds the same string");
	is_str(sstr, tv7_string, "TV-7: ... byte for byte");

	/* The same notification signed with the test's key, end to end. */
	p.app_id = "2015102700040153";
	p.seller_id = "2088102119685838";
	if (afx_mkprofile(&ctx, &p, &d) != PH_OK)
		abort();
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "TV-7 notification verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(ev.order_id, "0719141034-6418", "TV-7: out_trade_no");
	is_str(ev.txn_id, "2016071921001003030200089909", "TV-7: trade_no");
	is_int(ev.amount, 200, "TV-7: 2.00 yuan is 200 fen");
	is_int(ev.occurred_at, 1468908647LL,
	    "TV-7: gmt_payment read as Beijing time");
	/* Signed without gmt_create, as the documented string is. */
	th_note_set(&n, "gmt_create", NULL);
	sign_note(&n);
	th_note_set(&n, "gmt_create", "2016-07-19 14:10:44");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "TV-7: a signature that left out gmt_create does not verify");
	payhook_provider()->profile_free(ctx);
}

/* ---- notifications ------------------------------------------------------- */

static void
test_valid(void *ctx)
{
	struct ph_event ev;
	struct th_note n;

	base_note(&n);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "payment verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "TRADE_SUCCESS: paid");
	is_str(ev.order_id, ORDER, "order_id is out_trade_no");
	is_str(ev.txn_id, TRADE_NO, "txn_id is trade_no");
	is_str(ev.refund_id, "", "no refund_id");
	is_str(ev.merchant_refund_id, "", "no merchant refund id");
	is_int(ev.amount, 1234, "12.34 yuan is 1234 fen");
	is_str(ev.currency, "CNY", "currency CNY");
	is_int(ev.occurred_at, PAID_AT, "gmt_payment read as Beijing time");
	is_str(ev.dedup_key, "pay:" TRADE_NO, "dedup key pay:<trade_no>");
	is_str(ev.channel, "", "no channel");

	th_note_set(&n, "trade_status", "TRADE_FINISHED");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "TRADE_FINISHED verifies");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "TRADE_FINISHED: paid");
	is_str(ev.dedup_key, "pay:" TRADE_NO,
	    "TRADE_FINISHED: the same fact as TRADE_SUCCESS");

	base_note(&n);
	th_note_set(&n, "zz_added_later", "whatever Alipay adds");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK,
	    "an unknown field is signed over and accepted");

	base_note(&n);
	th_note_set(&n, "total_amount", "5");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "total_amount without decimals");
	is_int(ev.amount, 500, "5 yuan is 500 fen");
	th_note_set(&n, "total_amount", "0.01");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "total_amount 0.01");
	is_int(ev.amount, 1, "0.01 yuan is 1 fen");
	th_note_set(&n, "total_amount", "99999999.99");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "total_amount 99999999.99");
	is_int(ev.amount, 9999999999LL, "... exactly, in fen");

	/* charset=gbk: verified over the GBK bytes as received. */
	base_note(&n);
	th_note_set(&n, "charset", "gbk");
	th_note_set(&n, "subject", "\xb2\xe2\xca\xd4 \xb6\xa9\xb5\xa5");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "GBK notification verifies over "
	    "its GBK bytes");
	is_int(ev.amount, 1234, "GBK: amount");

	base_note(&n);
	th_note_set(&n, "trade_status", "TRADE_CLOSED");
	th_note_set(&n, "gmt_close", "2026-11-30 15:29:40");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "TRADE_CLOSED verifies");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "TRADE_CLOSED: closed");
	is_str(ev.dedup_key, "ali:" NOTIFY_ID, "closed: ali:<notify_id>");
	is_int(ev.occurred_at, PAID_AT, "closed: at gmt_close");
	is_str(ev.order_id, ORDER, "closed: order");

	base_note(&n);
	th_note_set(&n, "trade_status", "WAIT_BUYER_PAY");
	th_note_set(&n, "gmt_payment", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "WAIT_BUYER_PAY verifies");
	is_int(ev.kind, PH_EV_PAYMENT_PENDING, "WAIT_BUYER_PAY: pending");
	is_str(ev.dedup_key, "ali:" NOTIFY_ID, "pending: ali:<notify_id>");

	base_note(&n);
	th_note_set(&n, "trade_status", "TRADE_PENDING");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED,
	    "an unknown trade_status refused");
	ok(strstr(d.msg, "TRADE_PENDING") != NULL, "diagnostic: %s", d.msg);
}

static void
test_refused(void *ctx)
{
	static const char *const amounts[] = {
		"1.234", "-1", "1e3", "1.", ".5", "01.00", "1,00", " 1.00",
		"１.00", "0x10", "",
	};
	struct ph_event ev;
	struct th_note n;
	size_t len, i;

	base_note(&n);
	th_note_set(&n, "total_amount", "0.01");
	sign_note(&n);
	th_note_set(&n, "total_amount", "12.34");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "tampered amount refused");
	ok(ev.kind == 0 && ev.order_id[0] == '\0' && ev.dedup_key[0] == '\0',
	    "refused: event left empty");

	base_note(&n);
	sign_how(&n, afx_other_key, HOW_RIGHT);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "signed by another key "
	    "refused");
	base_note(&n);
	sign_how(&n, afx_app_key, HOW_RIGHT);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "signed by the app's own "
	    "key refused");

	base_note(&n);
	th_note_set(&n, "sign_type", "RSA");
	sign_how(&n, afx_alipay_key, HOW_SHA1);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED,
	    "sign_type RSA (SHA1withRSA) refused: no downgrade");
	ok(strstr(d.msg, "RSA2") != NULL, "diagnostic: %s", d.msg);
	th_note_set(&n, "sign_type", "RSA2");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "a SHA1withRSA signature under sign_type RSA2 refused");
	base_note(&n);
	th_note_set(&n, "sign_type", "rsa2");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED, "sign_type rsa2 refused");
	base_note(&n);
	th_note_set(&n, "sign_type", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "no sign_type refused");

	base_note(&n);
	sign_how(&n, afx_alipay_key, HOW_NO_EMPTY);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "a signature that left out the empty field refused");
	base_note(&n);
	sign_how(&n, afx_alipay_key, HOW_WITH_TYPE);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "a signature that kept sign_type refused");

	base_note(&n);
	th_note_set(&n, "app_id", "2021004123456780");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT, "wrong app_id refused");
	ok(strstr(d.msg, "app_id") != NULL, "diagnostic: %s", d.msg);
	th_note_set(&n, "app_id", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT, "no app_id refused");
	base_note(&n);
	th_note_set(&n, "seller_id", "2088102119685839");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT, "wrong seller_id refused");
	ok(strstr(d.msg, "seller_id") != NULL, "diagnostic: %s", d.msg);
	th_note_set(&n, "seller_id", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT, "no seller_id refused");

	base_note(&n);
	sign_note(&n);
	len = render(&n, "total_amount", "0.01");
	is_int(run_len(ctx, len, "application/x-www-form-urlencoded", &ev),
	    PH_E_MALFORMED, "duplicated field refused");
	len = render(&n, "total%5Famount", "0.01");
	is_int(run_len(ctx, len, "application/x-www-form-urlencoded", &ev),
	    PH_E_MALFORMED, "duplicated field (escaped name) refused");
	len = render(&n, "sign", th_note_get(&n, "sign"));
	is_int(run_len(ctx, len, "application/x-www-form-urlencoded", &ev),
	    PH_E_MALFORMED, "sign given twice refused");

	for (i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		base_note(&n);
		th_note_set(&n, "total_amount", amounts[i]);
		sign_note(&n);
		is_int(run(ctx, &n, &ev), PH_E_FIELD,
		    "total_amount \"%s\" refused", amounts[i]);
	}
	base_note(&n);
	th_note_set(&n, "total_amount", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "no total_amount refused");

	base_note(&n);
	th_note_set(&n, "sign", NULL);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "missing sign refused");
	th_note_set(&n, "sign", "");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "empty sign refused");
	th_note_set(&n, "sign", "not*base64==");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "bad base64 refused");
	ok(strstr(d.msg, "base64") != NULL, "diagnostic: %s", d.msg);
	th_note_set(&n, "sign", "AAAA");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "short sign refused");

	base_note(&n);
	th_note_set(&n, "gmt_payment", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "paid without gmt_payment "
	    "refused");
	th_note_set(&n, "gmt_payment", "2026-11-31 15:29:40");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "impossible gmt_payment "
	    "refused");
	th_note_set(&n, "gmt_payment", "2026-11-30T15:29:40");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "gmt_payment with a T refused");

	base_note(&n);
	th_note_set(&n, "out_trade_no", "A1/2");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "out_trade_no with '/' "
	    "refused");
	base_note(&n);
	th_note_set(&n, "trade_no", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "no trade_no refused");
	base_note(&n);
	th_note_set(&n, "notify_id", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "no notify_id refused");
	base_note(&n);
	th_note_set(&n, "notify_type", "trade_refund_sync");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED,
	    "another notify_type refused");
	base_note(&n);
	th_note_set(&n, "trans_currency", "USD");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED,
	    "a trade priced in USD refused");
	th_note_set(&n, "trans_currency", "CNY");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "trans_currency CNY accepted");

	base_note(&n);
	th_note_set(&n, "total.amount", "1");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_MALFORMED,
	    "a field name with punctuation refused");

	base_note(&n);
	sign_note(&n);
	len = render(&n, NULL, NULL);
	is_int(run_len(ctx, len, "application/json", &ev), PH_E_MALFORMED,
	    "a JSON content type refused");
	is_int(run_len(ctx, len, "", &ev), PH_OK,
	    "no content type: decoded as a form");
	body[len - 1] = '%';
	is_int(run_len(ctx, len, "", &ev), PH_E_MALFORMED,
	    "a broken escape refused");
	is_int(run_len(ctx, 0, "", &ev), PH_E_SIGNATURE, "an empty body "
	    "refused");
}

static void
test_ack(void *ctx)
{
	struct ph_response r;

	payhook_provider()->ack(ctx, PH_ACK_OK, NULL, &r);
	is_int(r.status, 200, "ack ok: 200");
	ok(r.body_len == 7 && memcmp(r.body, "success", 7) == 0,
	    "ack ok: exactly success");
	is_str(r.content_type, "text/plain", "ack ok: text/plain");
	payhook_provider()->ack(ctx, PH_ACK_REFUSED, "bad signature", &r);
	is_int(r.status, 400, "ack refused: 400");
	ok(r.body_len == 7 && memcmp(r.body, "failure", 7) == 0,
	    "ack refused: failure");
	payhook_provider()->ack(ctx, PH_ACK_RETRY, "disk", &r);
	is_int(r.status, 500, "ack retry: 500");
	ok(r.body_len == 7 && memcmp(r.body, "failure", 7) == 0,
	    "ack retry: failure");
}

static void
test_hint(void *ctx)
{
	struct ph_request req;
	char order[PH_ID_MAX + 1];
	struct th_note n;

	base_note(&n);
	th_note_set(&n, "sign", "forged");
	memset(&req, 0, sizeof(req));
	req.body = (const unsigned char *)body;
	req.body_len = render(&n, NULL, NULL);
	is_int(payhook_provider()->notify_hint(ctx, &req, order), PH_OK,
	    "hint: read from an unverified notification");
	is_str(order, ORDER, "hint: its out_trade_no");
	th_note_set(&n, "out_trade_no", "A1/2");
	req.body_len = render(&n, NULL, NULL);
	ok(payhook_provider()->notify_hint(ctx, &req, order) != PH_OK,
	    "hint: none from an id payhook cannot hold");
	th_note_set(&n, "out_trade_no", NULL);
	req.body_len = render(&n, NULL, NULL);
	ok(payhook_provider()->notify_hint(ctx, &req, order) != PH_OK,
	    "hint: none without out_trade_no");
	req.body_len = render(&n, "sign", "x");
	ok(payhook_provider()->notify_hint(ctx, &req, order) != PH_OK,
	    "hint: none from a malformed form");
}

/* ---- requests ------------------------------------------------------------ */

static void
test_requests(void *ctx)
{
	struct ph_order_ref o = { ORDER, 1234, "CNY", "", NOW - 60, "",
	    NULL };
	struct ph_refund_ref rr = { ORDER, TRADE_NO, "phr0000000000042", 500,
	    1234, "CNY", "客户\"退货\"", "", 0 };
	struct ph_http_request *rq = calloc(1, sizeof(*rq));
	struct ph_call_ctx cc;
	struct afx_prof p = afx_good_prof();
	void *bare = NULL;

	if (rq == NULL)
		abort();
	memset(&cc, 0, sizeof(cc));
	cc.now = NOW;
	d.msg[0] = '\0';
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d), PH_OK,
	    "query request built");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	afx_check_request(rq, "alipay.trade.query",
	    "{\"out_trade_no\":\"" ORDER "\"}", "query");

	is_int(payhook_provider()->close_request(ctx, &o, &cc, rq, &d), PH_OK,
	    "close request built");
	afx_check_request(rq, "alipay.trade.close",
	    "{\"out_trade_no\":\"" ORDER "\"}", "close");

	is_int(payhook_provider()->refund_request(ctx, &rr, &cc, rq, &d),
	    PH_OK, "refund request built");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	afx_check_request(rq, "alipay.trade.refund",
	    "{\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\","
	    "\"refund_amount\":\"5.00\","
	    "\"out_request_no\":\"phr0000000000042\","
	    "\"refund_reason\":\"客户\\\"退货\\\"\"}", "refund");

	rr.query = 1;
	is_int(payhook_provider()->refund_request(ctx, &rr, &cc, rq, &d),
	    PH_OK, "refund query built");
	afx_check_request(rq, "alipay.trade.fastpay.refund.query",
	    "{\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\","
	    "\"out_request_no\":\"phr0000000000042\","
	    "\"query_options\":[\"gmt_refund_pay\"]}", "refund query");
	rr.query = 0;

	rr.amount = 1235;
	is_int(payhook_provider()->refund_request(ctx, &rr, &cc, rq, &d),
	    PH_E_FIELD, "refund of more than the payment refused");
	ok(rq->body_len == 0 && rq->path[0] == '\0',
	    "refund: nothing built on failure");
	rr.amount = 0;
	is_int(payhook_provider()->refund_request(ctx, &rr, &cc, rq, &d),
	    PH_E_FIELD, "refund of nothing refused");
	rr.amount = 500;
	rr.currency = "USD";
	is_int(payhook_provider()->refund_request(ctx, &rr, &cc, rq, &d),
	    PH_E_UNSUPPORTED, "refund in USD refused");
	rr.currency = "CNY";
	rr.refund_id = "phr/1";
	is_int(payhook_provider()->refund_request(ctx, &rr, &cc, rq, &d),
	    PH_E_FIELD, "refund id Alipay cannot take refused");

	o.order_id = "A\"1";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "order id with a quote refused");
	ok(rq->body_len == 0, "query: nothing built on failure");

	p.priv = NULL;
	if (afx_mkprofile(&bare, &p, &d) != PH_OK)
		abort();
	o.order_id = ORDER;
	is_int(payhook_provider()->query_request(bare, &o, &cc, rq, &d),
	    PH_E_CONFIG, "query without an app key refused");
	ok(strstr(d.msg, "app_private_key_file") != NULL,
	    "diagnostic: %s", d.msg);
	payhook_provider()->profile_free(bare);
	free(rq);
}

/* ---- answers ------------------------------------------------------------- */

static int
feed(void *ctx, int op, size_t len, int status, struct ph_event *ev)
{
	struct ph_order_ref o = { ORDER, 1234, "CNY", "", NOW - 60, "",
	    NULL };
	struct ph_refund_ref rr = { ORDER, TRADE_NO, "phr0000000000042", 500,
	    1234, "CNY", "", "", 0 };
	struct ph_http_response in;

	th_answer(&in, status, afx_answer_body, len, NOW);
	d.msg[0] = '\0';
	if (op == 0)
		return payhook_provider()->query_response(ctx, &o, &in, ev,
		    &d);
	if (op == 1)
		return payhook_provider()->close_response(ctx, &o, &in, ev,
		    &d);
	rr.query = op == 3;
	return payhook_provider()->refund_response(ctx, &rr, &in, ev, &d);
}

static const char *
paid_obj(const char *status, const char *amount)
{
	static char obj[1024];

	snprintf(obj, sizeof(obj), "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"buyer_logon_id\":\"abc***@example.com\",\"buyer_pay_amount\":"
	    "\"%s\",\"buyer_user_id\":\"2088102116773037\",\"fund_bill_list\":"
	    "[{\"amount\":\"%s\",\"fund_channel\":\"ALIPAYACCOUNT\"}],"
	    "\"invoice_amount\":\"%s\",\"out_trade_no\":\"" ORDER "\","
	    "\"point_amount\":\"0.00\",\"receipt_amount\":\"%s\","
	    "\"send_pay_date\":\"" PAID_BJ "\",\"total_amount\":\"%s\","
	    "\"trade_no\":\"" TRADE_NO "\",\"trade_status\":\"%s\"}",
	    amount, amount, amount, amount, amount, status);
	return obj;
}

static void
test_query_response(void *ctx)
{
	struct ph_event ev, nev;
	struct th_note n;
	size_t len;
	const char *obj;
	char spaced[2048];

	base_note(&n);
	sign_note(&n);
	if (run(ctx, &n, &nev) != PH_OK)
		abort();

	len = afx_answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_SUCCESS verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_event(&ev, "paid", PH_EV_PAYMENT_SUCCEEDED, ORDER, TRADE_NO, 1234,
	    "CNY", PAID_AT, nev.dedup_key);

	len = afx_answer_text(QNODE, paid_obj("TRADE_FINISHED", "12.34"), NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_FINISHED verifies");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "TRADE_FINISHED: paid");

	len = afx_answer_text(QNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\","
	    "\"trade_status\":\"WAIT_BUYER_PAY\",\"total_amount\":\"12.34\"}",
	    NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "WAIT_BUYER_PAY verifies");
	is_int(ev.kind, PH_EV_PAYMENT_PENDING, "WAIT_BUYER_PAY: pending");
	is_str(ev.order_id, ORDER, "pending: order");
	is_str(ev.txn_id, "", "pending: no transaction");

	len = afx_answer_text(QNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\","
	    "\"trade_status\":\"TRADE_CLOSED\",\"total_amount\":\"12.34\"}",
	    NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_CLOSED verifies");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "TRADE_CLOSED: closed");

	/* Paid, then refunded in full (at the merchant's portal, say):
	 * closed too, but with the day the money reached the seller. */
	len = afx_answer_text(QNODE, paid_obj("TRADE_CLOSED", "12.34"), NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK,
	    "TRADE_CLOSED with send_pay_date verifies");
	is_event(&ev, "closed after a full refund: paid",
	    PH_EV_PAYMENT_SUCCEEDED, ORDER, TRADE_NO, 1234, "CNY", PAID_AT,
	    nev.dedup_key);

	len = afx_answer_text(QNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_NOT_EXIST\",\"sub_msg\":"
	    "\"交易不存在\",\"out_trade_no\":\"" ORDER "\"}", NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_NOT_EXIST verifies");
	is_int(ev.kind, PH_EV_NOT_FOUND, "ACQ.TRADE_NOT_EXIST: not found");
	is_str(ev.order_id, ORDER, "not found: order");

	len = afx_answer_text(QNODE, "{\"code\":\"20000\",\"msg\":\"Service "
	    "Currently Unavailable\",\"sub_code\":\"isp.unknow-error\","
	    "\"sub_msg\":\"系统繁忙\"}", NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "20000: ask again later");
	ok(strstr(d.msg, "20000") != NULL, "diagnostic: %s", d.msg);
	ok(ev.kind == 0 && ev.dedup_key[0] == '\0', "20000: no event");
	len = afx_answer_text(QNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.SYSTEM_ERROR\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "40004 ACQ.SYSTEM_ERROR: ask again later");
	len = afx_answer_text(QNODE, "{\"code\":\"40002\",\"msg\":\"Invalid "
	    "Arguments\",\"sub_code\":\"isv.invalid-signature\"}", NULL,
	    NULL);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "unsigned 40002: an error, nothing believed");
	ok(strstr(d.msg, "unsigned") != NULL, "diagnostic: %s", d.msg);
	len = (size_t)snprintf(afx_answer_body, sizeof(afx_answer_body),
	    "{\"error_response\":{\"code\":\"40002\",\"msg\":\"Invalid "
	    "Arguments\",\"sub_code\":\"isv.invalid-app-id\"}}");
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "error_response: an error");

	/* Answers that must not be believed. */
	snprintf(spaced, sizeof(spaced), "%s", paid_obj("TRADE_SUCCESS",
	    "0.01"));
	len = afx_answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), spaced,
	    afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "altered answer refused");
	len = afx_answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    afx_other_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "answer signed by another key refused");
	len = afx_answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    NULL);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "unsigned success refused");
	len = afx_answer_text("alipay_trade_close_response",
	    paid_obj("TRADE_SUCCESS", "12.34"), NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_MALFORMED,
	    "the answer of another method refused");
	len = afx_answer_text(QNODE, paid_obj("TRADE_SUCCESS", "1.234"), NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_FIELD,
	    "total_amount 1.234 refused");
	obj = paid_obj("TRADE_SUCCESS", "12.34");
	snprintf(spaced, sizeof(spaced), "%s", obj);
	*strstr(spaced, ORDER) = 'B';
	len = afx_answer_text(QNODE, spaced, NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_FIELD,
	    "answer about another order refused");
	len = afx_answer_text(QNODE, "{\"code\":\"10000\",\"code\":\"40004\"}",
	    NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_MALFORMED,
	    "duplicate key refused");
	len = afx_answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 0, len, 502, &ev), PH_E_PROVIDER, "HTTP 502: ask "
	    "again later");

	/* The signed bytes are the text as sent, spaces and all. */
	snprintf(spaced, sizeof(spaced), "{ \"code\" : \"10000\", \"msg\": "
	    "\"Success\", \"out_trade_no\": \"" ORDER "\", \"trade_no\": \""
	    TRADE_NO "\", \"total_amount\": \"12.34\", \"send_pay_date\": \""
	    PAID_BJ "\", \"trade_status\": \"TRADE_SUCCESS\" }");
	len = afx_answer_text(QNODE, spaced, NULL, afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK,
	    "an answer with spaces verifies over its own bytes");
	is_int(ev.amount, 1234, "... and is read");
	len = afx_answer_text(QNODE, spaced, "{\"code\":\"10000\",\"msg\":"
	    "\"Success\",\"out_trade_no\":\"" ORDER "\",\"trade_no\":\""
	    TRADE_NO "\",\"total_amount\":\"12.34\",\"send_pay_date\":\""
	    PAID_BJ "\",\"trade_status\":\"TRADE_SUCCESS\"}", afx_alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "a sign over a re-serialised text refused");
	{
		char sign[1500], *p = spaced;

		th_rsa_sign(afx_alipay_key, "SHA256", p, strlen(p), sign);
		len = (size_t)snprintf(afx_answer_body, sizeof(afx_answer_body),
		    "{\"sign\":\"%s\",\"alipay_cert_sn\":\"x\",\n \"" QNODE
		    "\" : %s }", sign, p);
	}
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK,
	    "sign first, response last, with white space: verifies");
}

#define CNODE "alipay_trade_close_response"
#define RNODE "alipay_trade_refund_response"

static void
test_close_refund_response(void *ctx)
{
	struct ph_event ev;
	size_t len;

	len = afx_answer_text(CNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\"}",
	    NULL, afx_alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_OK, "close 10000 verifies");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "close 10000: closed");
	is_str(ev.order_id, ORDER, "closed: order");
	len = afx_answer_text(CNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_NOT_EXIST\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_OK, "close: not exist");
	is_int(ev.kind, PH_EV_NOT_FOUND, "close: not found");
	len = afx_answer_text(CNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_STATUS_ERROR\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_OK, "close: status error");
	is_int(ev.kind, PH_EV_IGNORED, "close: status error is not a close "
	    "(the core queries)");
	len = afx_answer_text(CNODE, "{\"code\":\"20000\",\"msg\":\"Service "
	    "Currently Unavailable\"}", NULL, afx_alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_E_PROVIDER, "close: 20000");
	len = afx_answer_text(CNODE, "{\"code\":\"10000\",\"msg\":\"Success\"}",
	    NULL, afx_other_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_E_SIGNATURE,
	    "close: another key refused");

	len = afx_answer_text(RNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"buyer_logon_id\":\"abc***@example.com\",\"fund_change\":\"Y\","
	    "\"gmt_refund_pay\":\"" PAID_BJ "\",\"out_trade_no\":\"" ORDER "\","
	    "\"refund_fee\":\"5.00\",\"trade_no\":\"" TRADE_NO "\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_OK, "refund Y verifies");
	is_int(ev.kind, PH_EV_REFUND_SUCCEEDED, "fund_change Y: refunded");
	is_str(ev.merchant_refund_id, "phr0000000000042",
	    "refund: merchant refund id is out_request_no");
	is_str(ev.txn_id, TRADE_NO, "refund: trade_no");
	is_int(ev.amount, 500, "refund: amount asked for");
	is_int(ev.occurred_at, PAID_AT, "refund: gmt_refund_pay");
	is_str(ev.dedup_key, "refund:" TRADE_NO ":phr0000000000042",
	    "refund: dedup key");
	len = afx_answer_text(RNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"fund_change\":\"N\",\"out_trade_no\":\"" ORDER "\","
	    "\"refund_fee\":\"5.00\",\"trade_no\":\"" TRADE_NO "\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_OK, "refund N verifies");
	is_int(ev.kind, PH_EV_PAYMENT_PENDING,
	    "fund_change N: pending, not confirmed");
	len = afx_answer_text(RNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"fund_change\":\"Y\",\"out_trade_no\":\"" ORDER "\","
	    "\"refund_fee\":\"4.99\",\"trade_no\":\"" TRADE_NO "\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_E_FIELD,
	    "refund_fee below the refund refused");
	len = afx_answer_text(RNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_HAS_CLOSE\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_OK, "refund refused verifies");
	is_int(ev.kind, PH_EV_REFUND_FAILED, "ACQ.TRADE_HAS_CLOSE: failed");
	is_str(ev.merchant_refund_id, "phr0000000000042",
	    "failed: merchant refund id");
	len = afx_answer_text(RNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.SELLER_BALANCE_NOT_ENOUGH\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_E_PROVIDER,
	    "ACQ.SELLER_BALANCE_NOT_ENOUGH: retried");
}

#define RQNODE "alipay_trade_fastpay_refund_query_response"

/* A signed refund query answer: out_request_no req, refund_amount amount
 * and refund_status status (NULL: none, as Alipay answers for a refund
 * it has not made). */
static size_t
refund_query_answer(const char *req, const char *amount, const char *status)
{
	char obj[1024];

	snprintf(obj, sizeof(obj), "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"gmt_refund_pay\":\"" PAID_BJ "\",\"out_request_no\":\"%s\","
	    "\"out_trade_no\":\"" ORDER "\",\"refund_amount\":\"%s\","
	    "%s%s%s\"total_amount\":\"12.34\",\"trade_no\":\"" TRADE_NO "\"}",
	    req, amount, status != NULL ? "\"refund_status\":\"" : "",
	    status != NULL ? status : "", status != NULL ? "\"," : "");
	return afx_answer_text(RQNODE, obj, NULL, afx_alipay_key);
}

static void
test_refund_query_response(void *ctx)
{
	struct ph_event ev;
	size_t len;

	len = refund_query_answer("phr0000000000042", "5.00",
	    "REFUND_SUCCESS");
	is_int(feed(ctx, 3, len, 200, &ev), PH_OK, "refund query verifies");
	is_int(ev.kind, PH_EV_REFUND_SUCCEEDED,
	    "REFUND_SUCCESS: refunded");
	is_str(ev.merchant_refund_id, "phr0000000000042",
	    "... merchant refund id is out_request_no");
	is_str(ev.txn_id, TRADE_NO, "... trade_no");
	is_int(ev.amount, 500, "... amount asked for");
	is_int(ev.occurred_at, PAID_AT, "... at gmt_refund_pay");
	is_str(ev.dedup_key, "refund:" TRADE_NO ":phr0000000000042",
	    "... the refund answer's dedup key");
	len = refund_query_answer("phr0000000000042", "5.00", NULL);
	is_int(feed(ctx, 3, len, 200, &ev), PH_OK, "no refund_status "
	    "verifies");
	is_int(ev.kind, PH_EV_NOT_FOUND,
	    "... not made: not found, for the core to send it again");
	len = refund_query_answer("phr0000000000043", "5.00",
	    "REFUND_SUCCESS");
	is_int(feed(ctx, 3, len, 200, &ev), PH_E_FIELD,
	    "an answer about another refund refused");
	len = refund_query_answer("phr0000000000042", "4.99",
	    "REFUND_SUCCESS");
	ok(feed(ctx, 3, len, 200, &ev) == PH_OK && ev.kind ==
	    PH_EV_REFUND_SUCCEEDED && ev.amount == 499,
	    "refund_amount other than asked for: the amount Alipay reports, "
	    "for the core to match");
	len = refund_query_answer("phr0000000000042", "5.00", "REFUND_ODD");
	is_int(feed(ctx, 3, len, 200, &ev), PH_E_FIELD,
	    "an unknown refund_status refused");
	len = afx_answer_text(RQNODE, "{\"code\":\"40004\",\"msg\":"
	    "\"Business Failed\",\"sub_code\":\"ACQ.TRADE_NOT_EXIST\"}",
	    NULL, afx_alipay_key);
	is_int(feed(ctx, 3, len, 200, &ev), PH_E_PROVIDER,
	    "a query's ACQ.TRADE_NOT_EXIST: asked again, the refund not "
	    "failed");
	len = refund_query_answer("phr0000000000042", "5.00",
	    "REFUND_SUCCESS");
	afx_answer_body[len - 3] ^= 1;	/* inside the sign */
	ok(feed(ctx, 3, len, 200, &ev) != PH_OK,
	    "a refund query answer whose sign does not verify refused");
	len = afx_answer_text(RNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"fund_change\":\"Y\",\"out_trade_no\":\"" ORDER "\","
	    "\"refund_fee\":\"5.00\",\"trade_no\":\"" TRADE_NO "\"}", NULL,
	    afx_alipay_key);
	is_int(feed(ctx, 3, len, 200, &ev), PH_E_MALFORMED,
	    "a refund's answer to a query refused (another method's node)");
}

int
main(void)
{
	void *ctx;

	afx_keys_make();
	test_table();
	test_profiles();
	test_tv7();
	ctx = afx_good_ctx(&d);
	test_valid(ctx);
	test_refused(ctx);
	test_ack(ctx);
	test_hint(ctx);
	test_requests(ctx);
	test_query_response(ctx);
	test_close_refund_response(ctx);
	test_refund_query_response(ctx);
	payhook_provider()->profile_free(ctx);
	afx_keys_free();
	return done_testing();
}
