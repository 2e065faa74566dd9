/*
 * The Alipay plugin, driven through its table.  Keys are made when the
 * test runs (Alipay's, the app's, an impostor's); notifications and
 * answers are signed here with a separate, deliberately plain
 * implementation of Alipay's rules (doc/design/protocols.md §4.2): every parameter
 * but sign and sign_type, sorted, k=v joined with '&', SHA256withRSA.
 */
#include <errno.h>
#include <iconv.h>
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

#define NOW		1796023800LL	/* 2026-11-30 07:30:00 UTC */
#define NOW_BJ		"2026-11-30 15:30:00"
#define PAID_BJ		"2026-11-30 15:29:40"
#define PAID_AT		1796023780LL
#define APP_ID		"2021004123456789"
#define SELLER_ID	"2088102119685838"
#define ORDER		"A20261130-0001"
#define TRADE_NO	"2026113022001403030500012345"
#define NOTIFY_ID	"2026113000222153030012345678901234"

/* ---- keys ---------------------------------------------------------------- */

static EVP_PKEY *alipay_key, *app_key, *other_key;
static char *alipay_pub_pem, *app_priv_pem, *other_pub_pem;

static void
keys_make(void)
{
	if ((alipay_key = EVP_RSA_gen(2048)) == NULL ||
	    (app_key = EVP_RSA_gen(2048)) == NULL ||
	    (other_key = EVP_RSA_gen(2048)) == NULL)
		abort();
	alipay_pub_pem = th_pem_key(alipay_key, 0);
	app_priv_pem = th_pem_key(app_key, 1);
	other_pub_pem = th_pem_key(other_key, 0);
}

static void
keys_free(void)
{
	EVP_PKEY_free(alipay_key);
	EVP_PKEY_free(app_key);
	EVP_PKEY_free(other_key);
	free(alipay_pub_pem);
	free(app_priv_pem);
	free(other_pub_pem);
}

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
	sign_how(n, alipay_key, HOW_RIGHT);
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

struct prof {
	const char *app_id, *seller_id, *pub, *priv;
};

static int
mkprofile(void **ctx, const struct prof *p)
{
	static struct th_conf c;

	th_conf_init(&c, payhook_provider(), "test");
	th_conf_str(&c, "app_id", p->app_id);
	th_conf_str(&c, "seller_id", p->seller_id);
	th_conf_file(&c, "alipay_public_key_file", p->pub);
	th_conf_file(&c, "app_private_key_file", p->priv);
	return th_profile_new(payhook_provider(), &c, ctx, &d);
}

static struct prof
good_prof(void)
{
	struct prof p = { APP_ID, SELLER_ID, NULL, NULL };

	p.pub = alipay_pub_pem;
	p.priv = app_priv_pem;
	return p;
}

static void
test_table(void)
{
	const struct ph_provider *p = payhook_provider();
	size_t i;

	is_int(p->abi, PH_PROVIDER_ABI, "table: ABI version");
	is_str(p->name, "alipay", "table: name");
	is_int(p->caps, PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_CLOSE |
	    PH_CAP_REFUND | PH_CAP_STATEMENT | PH_CAP_DOWNLOAD,
	    "table: notify, query, close, refund, statement, download");
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
	struct prof p;
	void *ctx = NULL;
	char *bare_pub, *bare_priv, *enc_priv, *cert;
	EVP_PKEY *small;
	BIO *b;
	X509 *x;
	long n;
	char *s;

	p = good_prof();
	is_int(mkprofile(&ctx, &p), PH_OK, "profile: valid");
	payhook_provider()->profile_free(ctx);

	bare_pub = th_pem_bare(alipay_pub_pem);
	bare_priv = th_pem_bare(app_priv_pem);
	p.pub = bare_pub;
	p.priv = bare_priv;
	is_int(mkprofile(&ctx, &p), PH_OK,
	    "profile: keys as the console's bare base64");
	payhook_provider()->profile_free(ctx);
	free(bare_pub);
	free(bare_priv);

	p = good_prof();
	p.priv = NULL;
	is_int(mkprofile(&ctx, &p), PH_OK,
	    "profile: notifications only (no app key)");
	payhook_provider()->profile_free(ctx);

	ctx = (void *)&ctx;
	p = good_prof();
	p.app_id = NULL;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: app_id required");
	ok(ctx == NULL, "profile: no context on failure");
	p = good_prof();
	p.seller_id = NULL;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: seller_id required");
	p = good_prof();
	p.seller_id = "2088 1021";
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: bad seller_id");
	p = good_prof();
	p.pub = NULL;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: alipay_public_key_file required");
	p = good_prof();
	p.pub = "not a key\n";
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: bad public key");
	p = good_prof();
	p.pub = app_priv_pem;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: a private key as Alipay's public key refused");
	ok(strstr(d.msg, "BEGIN") == NULL && strstr(d.msg, "MII") == NULL,
	    "profile: diagnostic quotes no key material");

	/* A certificate (Alipay's certificate mode) is refused. */
	if ((x = X509_new()) == NULL || X509_set_pubkey(x, alipay_key) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_sign(x, alipay_key, EVP_sha256()) == 0 ||
	    (b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, x) != 1)
		abort();
	n = BIO_get_mem_data(b, &s);
	if ((cert = malloc((size_t)n + 1)) == NULL)
		abort();
	memcpy(cert, s, (size_t)n);
	cert[n] = '\0';
	BIO_free(b);
	X509_free(x);
	p = good_prof();
	p.pub = cert;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: a certificate refused (certificate mode)");
	free(cert);

	if ((small = EVP_RSA_gen(1024)) == NULL)
		abort();
	s = th_pem_key(small, 0);
	p = good_prof();
	p.pub = s;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: a 1024-bit Alipay key refused");
	free(s);
	s = th_pem_key(small, 1);
	p = good_prof();
	p.priv = s;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: a 1024-bit app key refused");
	free(s);
	EVP_PKEY_free(small);

	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(b, app_key, EVP_aes_128_cbc(), NULL, 0,
	    NULL, (void *)"secret") != 1)
		abort();
	n = BIO_get_mem_data(b, &s);
	if ((enc_priv = malloc((size_t)n + 1)) == NULL)
		abort();
	memcpy(enc_priv, s, (size_t)n);
	enc_priv[n] = '\0';
	BIO_free(b);
	p = good_prof();
	p.priv = enc_priv;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: an encrypted app key refused");
	free(enc_priv);
	p = good_prof();
	p.priv = alipay_pub_pem;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
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
	struct prof p = good_prof();
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
	if (mkprofile(&ctx, &p) != PH_OK)
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
	sign_how(&n, other_key, HOW_RIGHT);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "signed by another key "
	    "refused");
	base_note(&n);
	sign_how(&n, app_key, HOW_RIGHT);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "signed by the app's own "
	    "key refused");

	base_note(&n);
	th_note_set(&n, "sign_type", "RSA");
	sign_how(&n, alipay_key, HOW_SHA1);
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
	sign_how(&n, alipay_key, HOW_NO_EMPTY);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "a signature that left out the empty field refused");
	base_note(&n);
	sign_how(&n, alipay_key, HOW_WITH_TYPE);
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

/* libcurl's escaping, built here: all but ALPHA DIGIT - . _ ~ as %XX. */
static void
curl_escape_into(char *out, size_t cap, const char *s)
{
	size_t o = strlen(out);

	for (; *s != '\0' && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, 4, "%%%02X", c);
	}
	out[o] = '\0';
}

/*
 * Checks a request against the parameters it must carry, as Alipay's SDKs
 * send them (alipay-sdk-python-all @ 6cba10e, alipay/aop/api/
 * DefaultAlipayClient.py lines 88-91 and 133, util/WebUtils.py lines
 * 117-144; alipay-easysdk payment/common/Client.java lines 127-156): the
 * common parameters in the query string, in order, byte for byte up to
 * "&sign=", then the sign; biz_content alone in the body; the sign
 * verified with the app's public key over every parameter, sorted, built
 * here.
 */
static void
check_request(const struct ph_http_request *rq, const char *method,
    const char *biz, const char *what)
{
	static char want[16384], str[16384], sign[2048], form[16384];
	const char *sp, *end;
	size_t i, o = 0;
	const char *q[][2] = {
		{ "app_id", APP_ID }, { "charset", "utf-8" },
		{ "format", "JSON" }, { "method", method },
		{ "sign_type", "RSA2" }, { "timestamp", NOW_BJ },
		{ "version", "1.0" },
	};
	const char *f[][2] = {
		{ "app_id", APP_ID }, { "biz_content", biz },
		{ "charset", "utf-8" }, { "format", "JSON" },
		{ "method", method }, { "sign_type", "RSA2" },
		{ "timestamp", NOW_BJ }, { "version", "1.0" },
	};

	is_str(rq->method, "POST", "%s: POST", what);
	is_str(rq->content_type,
	    "application/x-www-form-urlencoded;charset=utf-8",
	    "%s: form content type", what);
	snprintf(want, sizeof(want), "/gateway.do?");
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
		    "%s%s=", i > 0 ? "&" : "", q[i][0]);
		curl_escape_into(want, sizeof(want), q[i][1]);
	}
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "&sign=");
	str[0] = '\0';
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		snprintf(str + strlen(str), sizeof(str) - strlen(str),
		    "%s%s=%s", i > 0 ? "&" : "", f[i][0], f[i][1]);
	ok(strncmp(rq->path, want, strlen(want)) == 0,
	    "%s: the common parameters in the URL, byte for byte up to the "
	    "sign", what);
	if (strncmp(rq->path, want, strlen(want)) != 0)
		diag("got: %s\nwant: %s", rq->path, want);
	snprintf(form, sizeof(form), "biz_content=");
	curl_escape_into(form, sizeof(form), biz);
	ok(rq->body_len == strlen(form) &&
	    memcmp(rq->body, form, rq->body_len) == 0,
	    "%s: the body is biz_content alone", what);
	if (rq->body_len != strlen(form) ||
	    memcmp(rq->body, form, rq->body_len) != 0)
		diag("got: %.*s\nwant: %s", (int)rq->body_len,
		    (const char *)rq->body, form);
	sp = strncmp(rq->path, want, strlen(want)) == 0 ?
	    rq->path + strlen(want) : "";
	end = sp + strlen(sp);
	for (i = 0; sp + i < end && o + 1 < sizeof(sign); i++) {
		if (sp[i] == '%' && sp + i + 2 < end) {
			char hex[3] = { sp[i + 1], sp[i + 2], 0 };

			sign[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else
			sign[o++] = sp[i];
	}
	sign[o] = '\0';
	ok(strchr(sp, '&') == NULL, "%s: sign is last", what);
	ok(strlen(sign) == 344, "%s: a 256-byte sign in base64", what);
	ok(th_rsa_check(app_key, str, strlen(str), sign),
	    "%s: sign verifies with the app's public key over every "
	    "parameter, biz_content too", what);
	/* Its length depends on how many characters of the signature need
	 * percent-encoding (about 500 to 530 bytes): that the whole URL is
	 * there is shown by the sign verifying above; here, that the path
	 * holds more than ABI 1's 512 bytes, which often cut it. */
	ok(sizeof(rq->path) > 512 && strlen(rq->path) > 480 &&
	    strlen(rq->path) < sizeof(rq->path), "%s: the whole URL (%zu "
	    "bytes) fits the request's path (%zu bytes; ABI 1 had 512)", what,
	    strlen(rq->path), sizeof(rq->path));
}

static void
test_requests(void *ctx)
{
	struct ph_order_ref o = { ORDER, 1234, "CNY", "", NOW - 60, "",
	    NULL };
	struct ph_refund_ref rr = { ORDER, TRADE_NO, "phr0000000000042", 500,
	    1234, "CNY", "客户\"退货\"", "" };
	struct ph_http_request *rq = calloc(1, sizeof(*rq));
	struct ph_call_ctx cc;
	struct prof p = good_prof();
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
	check_request(rq, "alipay.trade.query",
	    "{\"out_trade_no\":\"" ORDER "\"}", "query");

	is_int(payhook_provider()->close_request(ctx, &o, &cc, rq, &d), PH_OK,
	    "close request built");
	check_request(rq, "alipay.trade.close",
	    "{\"out_trade_no\":\"" ORDER "\"}", "close");

	is_int(payhook_provider()->refund_request(ctx, &rr, &cc, rq, &d),
	    PH_OK, "refund request built");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	check_request(rq, "alipay.trade.refund",
	    "{\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\","
	    "\"refund_amount\":\"5.00\","
	    "\"out_request_no\":\"phr0000000000042\","
	    "\"refund_reason\":\"客户\\\"退货\\\"\"}", "refund");

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
	if (mkprofile(&bare, &p) != PH_OK)
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

static char answer_body[16384];

/* {"<node>":<obj>,"sign":"<RSA2 over obj as written>"}, with the sign
 * made by key (NULL: none) over signed_obj (NULL: obj). */
static size_t
answer_text(const char *node, const char *obj, const char *signed_obj,
    EVP_PKEY *key)
{
	char sign[1500];
	const char *s = signed_obj != NULL ? signed_obj : obj;

	if (key == NULL)
		return (size_t)snprintf(answer_body, sizeof(answer_body),
		    "{\"%s\":%s}", node, obj);
	th_rsa_sign(key, "SHA256", s, strlen(s), sign);
	return (size_t)snprintf(answer_body, sizeof(answer_body),
	    "{\"%s\":%s,\"sign\":\"%s\"}", node, obj, sign);
}

static int
feed(void *ctx, int op, size_t len, int status, struct ph_event *ev)
{
	struct ph_order_ref o = { ORDER, 1234, "CNY", "", NOW - 60, "",
	    NULL };
	struct ph_refund_ref rr = { ORDER, TRADE_NO, "phr0000000000042", 500,
	    1234, "CNY", "", "" };
	struct ph_http_response in;

	th_answer(&in, status, answer_body, len, NOW);
	d.msg[0] = '\0';
	if (op == 0)
		return payhook_provider()->query_response(ctx, &o, &in, ev,
		    &d);
	if (op == 1)
		return payhook_provider()->close_response(ctx, &o, &in, ev,
		    &d);
	return payhook_provider()->refund_response(ctx, &rr, &in, ev, &d);
}

#define QNODE "alipay_trade_query_response"

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

	len = answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_SUCCESS verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_event(&ev, "paid", PH_EV_PAYMENT_SUCCEEDED, ORDER, TRADE_NO, 1234,
	    "CNY", PAID_AT, nev.dedup_key);

	len = answer_text(QNODE, paid_obj("TRADE_FINISHED", "12.34"), NULL,
	    alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_FINISHED verifies");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "TRADE_FINISHED: paid");

	len = answer_text(QNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\","
	    "\"trade_status\":\"WAIT_BUYER_PAY\",\"total_amount\":\"12.34\"}",
	    NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "WAIT_BUYER_PAY verifies");
	is_int(ev.kind, PH_EV_PAYMENT_PENDING, "WAIT_BUYER_PAY: pending");
	is_str(ev.order_id, ORDER, "pending: order");
	is_str(ev.txn_id, "", "pending: no transaction");

	len = answer_text(QNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\","
	    "\"trade_status\":\"TRADE_CLOSED\",\"total_amount\":\"12.34\"}",
	    NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_CLOSED verifies");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "TRADE_CLOSED: closed");

	len = answer_text(QNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_NOT_EXIST\",\"sub_msg\":"
	    "\"交易不存在\",\"out_trade_no\":\"" ORDER "\"}", NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK, "TRADE_NOT_EXIST verifies");
	is_int(ev.kind, PH_EV_NOT_FOUND, "ACQ.TRADE_NOT_EXIST: not found");
	is_str(ev.order_id, ORDER, "not found: order");

	len = answer_text(QNODE, "{\"code\":\"20000\",\"msg\":\"Service "
	    "Currently Unavailable\",\"sub_code\":\"isp.unknow-error\","
	    "\"sub_msg\":\"系统繁忙\"}", NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "20000: ask again later");
	ok(strstr(d.msg, "20000") != NULL, "diagnostic: %s", d.msg);
	ok(ev.kind == 0 && ev.dedup_key[0] == '\0', "20000: no event");
	len = answer_text(QNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.SYSTEM_ERROR\"}", NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "40004 ACQ.SYSTEM_ERROR: ask again later");
	len = answer_text(QNODE, "{\"code\":\"40002\",\"msg\":\"Invalid "
	    "Arguments\",\"sub_code\":\"isv.invalid-signature\"}", NULL,
	    NULL);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "unsigned 40002: an error, nothing believed");
	ok(strstr(d.msg, "unsigned") != NULL, "diagnostic: %s", d.msg);
	len = (size_t)snprintf(answer_body, sizeof(answer_body),
	    "{\"error_response\":{\"code\":\"40002\",\"msg\":\"Invalid "
	    "Arguments\",\"sub_code\":\"isv.invalid-app-id\"}}");
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_PROVIDER,
	    "error_response: an error");

	/* Answers that must not be believed. */
	snprintf(spaced, sizeof(spaced), "%s", paid_obj("TRADE_SUCCESS",
	    "0.01"));
	len = answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), spaced,
	    alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "altered answer refused");
	len = answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    other_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "answer signed by another key refused");
	len = answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    NULL);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "unsigned success refused");
	len = answer_text("alipay_trade_close_response",
	    paid_obj("TRADE_SUCCESS", "12.34"), NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_MALFORMED,
	    "the answer of another method refused");
	len = answer_text(QNODE, paid_obj("TRADE_SUCCESS", "1.234"), NULL,
	    alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_FIELD,
	    "total_amount 1.234 refused");
	obj = paid_obj("TRADE_SUCCESS", "12.34");
	snprintf(spaced, sizeof(spaced), "%s", obj);
	*strstr(spaced, ORDER) = 'B';
	len = answer_text(QNODE, spaced, NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_FIELD,
	    "answer about another order refused");
	len = answer_text(QNODE, "{\"code\":\"10000\",\"code\":\"40004\"}",
	    NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_MALFORMED,
	    "duplicate key refused");
	len = answer_text(QNODE, paid_obj("TRADE_SUCCESS", "12.34"), NULL,
	    alipay_key);
	is_int(feed(ctx, 0, len, 502, &ev), PH_E_PROVIDER, "HTTP 502: ask "
	    "again later");

	/* The signed bytes are the text as sent, spaces and all. */
	snprintf(spaced, sizeof(spaced), "{ \"code\" : \"10000\", \"msg\": "
	    "\"Success\", \"out_trade_no\": \"" ORDER "\", \"trade_no\": \""
	    TRADE_NO "\", \"total_amount\": \"12.34\", \"send_pay_date\": \""
	    PAID_BJ "\", \"trade_status\": \"TRADE_SUCCESS\" }");
	len = answer_text(QNODE, spaced, NULL, alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_OK,
	    "an answer with spaces verifies over its own bytes");
	is_int(ev.amount, 1234, "... and is read");
	len = answer_text(QNODE, spaced, "{\"code\":\"10000\",\"msg\":"
	    "\"Success\",\"out_trade_no\":\"" ORDER "\",\"trade_no\":\""
	    TRADE_NO "\",\"total_amount\":\"12.34\",\"send_pay_date\":\""
	    PAID_BJ "\",\"trade_status\":\"TRADE_SUCCESS\"}", alipay_key);
	is_int(feed(ctx, 0, len, 200, &ev), PH_E_SIGNATURE,
	    "a sign over a re-serialised text refused");
	{
		char sign[1500], *p = spaced;

		th_rsa_sign(alipay_key, "SHA256", p, strlen(p), sign);
		len = (size_t)snprintf(answer_body, sizeof(answer_body),
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

	len = answer_text(CNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"out_trade_no\":\"" ORDER "\",\"trade_no\":\"" TRADE_NO "\"}",
	    NULL, alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_OK, "close 10000 verifies");
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "close 10000: closed");
	is_str(ev.order_id, ORDER, "closed: order");
	len = answer_text(CNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_NOT_EXIST\"}", NULL, alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_OK, "close: not exist");
	is_int(ev.kind, PH_EV_NOT_FOUND, "close: not found");
	len = answer_text(CNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_STATUS_ERROR\"}", NULL,
	    alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_OK, "close: status error");
	is_int(ev.kind, PH_EV_IGNORED, "close: status error is not a close "
	    "(the core queries)");
	len = answer_text(CNODE, "{\"code\":\"20000\",\"msg\":\"Service "
	    "Currently Unavailable\"}", NULL, alipay_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_E_PROVIDER, "close: 20000");
	len = answer_text(CNODE, "{\"code\":\"10000\",\"msg\":\"Success\"}",
	    NULL, other_key);
	is_int(feed(ctx, 1, len, 200, &ev), PH_E_SIGNATURE,
	    "close: another key refused");

	len = answer_text(RNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"buyer_logon_id\":\"abc***@example.com\",\"fund_change\":\"Y\","
	    "\"gmt_refund_pay\":\"" PAID_BJ "\",\"out_trade_no\":\"" ORDER "\","
	    "\"refund_fee\":\"5.00\",\"trade_no\":\"" TRADE_NO "\"}", NULL,
	    alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_OK, "refund Y verifies");
	is_int(ev.kind, PH_EV_REFUND_SUCCEEDED, "fund_change Y: refunded");
	is_str(ev.merchant_refund_id, "phr0000000000042",
	    "refund: merchant refund id is out_request_no");
	is_str(ev.txn_id, TRADE_NO, "refund: trade_no");
	is_int(ev.amount, 500, "refund: amount asked for");
	is_int(ev.occurred_at, PAID_AT, "refund: gmt_refund_pay");
	is_str(ev.dedup_key, "refund:" TRADE_NO ":phr0000000000042",
	    "refund: dedup key");
	len = answer_text(RNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"fund_change\":\"N\",\"out_trade_no\":\"" ORDER "\","
	    "\"refund_fee\":\"5.00\",\"trade_no\":\"" TRADE_NO "\"}", NULL,
	    alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_OK, "refund N verifies");
	is_int(ev.kind, PH_EV_PAYMENT_PENDING,
	    "fund_change N: pending, not confirmed");
	len = answer_text(RNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"fund_change\":\"Y\",\"out_trade_no\":\"" ORDER "\","
	    "\"refund_fee\":\"4.99\",\"trade_no\":\"" TRADE_NO "\"}", NULL,
	    alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_E_FIELD,
	    "refund_fee below the refund refused");
	len = answer_text(RNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.TRADE_HAS_CLOSE\"}", NULL,
	    alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_OK, "refund refused verifies");
	is_int(ev.kind, PH_EV_REFUND_FAILED, "ACQ.TRADE_HAS_CLOSE: failed");
	is_str(ev.merchant_refund_id, "phr0000000000042",
	    "failed: merchant refund id");
	len = answer_text(RNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"ACQ.SELLER_BALANCE_NOT_ENOUGH\"}", NULL,
	    alipay_key);
	is_int(feed(ctx, 2, len, 200, &ev), PH_E_PROVIDER,
	    "ACQ.SELLER_BALANCE_NOT_ENOUGH: retried");
}

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
	is_int(stream(ctx, 1, NULL, 6,
	    "2026113022001403030500099999\t,A20261130-0002\t,冻结\t,x,"
	    "2026-11-30 16:00:00,2026-11-30 16:00:05,\t,\t,\t,\t,x\t,1.00,"
	    "0.90,0.00,0.00,0.10,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,", evs,
	    &n), PH_E_UNSUPPORTED, "an unknown 业务类型 refused");
	ok(strstr(d.msg, "line 7") != NULL, "diagnostic names the line: %s",
	    d.msg);
	is_int(stream(ctx, 1, NULL, 6, "1,2,3", evs, &n), PH_E_MALFORMED,
	    "a short row refused");
	is_int(stream(ctx, 1, NULL, 6,
	    "2026113022001403030500099999\t,A20261130-0002\t,交易\t,x,"
	    "2026-11-30 16:00:00,2026-11-30 16:00:05,\t,\t,\t,\t,x\t,1.001,"
	    "0.90,0.00,0.00,0.10,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,", evs,
	    &n), PH_E_FIELD, "an amount with three decimals refused");
	is_int(stream(ctx, 1, NULL, 6,
	    "2026113022001403030500099999\t,\t,交易\t,x,"
	    "2026-11-30 16:00:00,2026-11-30 16:00:05,\t,\t,\t,\t,x\t,1.00,"
	    "0.90,0.00,0.00,0.10,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,", evs,
	    &n), PH_E_FIELD, "a payment without 商户订单号 refused");
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

/* The answer in answer_body to step step of the download of BILL_DAY. */
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
	return dl_feed(ctx, 0, "", answer_body, len, 200);
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
	struct prof p = good_prof();
	char *url;
	void *bare = NULL;

	if (rq == NULL || (url = malloc(PH_HTTP_PATH_MAX + 16)) == NULL)
		abort();
	is_int(dl_request(ctx, BILL_DAY, 0, "", rq), PH_OK,
	    "download step 0: the link query built");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	check_request(rq, "alipay.data.dataservice.bill.downloadurl.query",
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
	if (mkprofile(&bare, &p) != PH_OK)
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
	len = answer_text(BNODE, url_obj("http://dwbillcenter.alipay.com/"
	    "downloadBillFile.resource?bizType=X&userId=X&fileType=X&"
	    "bizDates=X&downloadFileName=X&fileId=X"), NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_OK,
	    "the document's sample: its plain-http link to the bill host "
	    "taken");
	is_int(dl.kind, PH_DL_NEXT, "... one more call");
	len = answer_text(BNODE, url_obj("https://dwbillcenter.alipay.com/"
	    "downloadBillFile.resource?bizType=X&userId=X&fileType=X&"
	    "bizDates=X&downloadFileName=X&fileId=X"), NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "the sample over https verifies");
	is_int(dl.kind, PH_DL_NEXT, "... one more call");

	len = answer_text(BNODE, url_obj(BILL_URL), NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "signed link verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_int(dl.kind, PH_DL_NEXT, "signed link: NEXT");
	is_str(dl.next, BILL_URL, "signed link: next is the link");
	len = answer_text(BNODE, url_obj(MOCK_URL), NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "a loopback http link (a test "
	    "Alipay) taken");
	is_str(dl.next, MOCK_URL, "... as given");
	/* JSON may escape the slashes; the link is the decoded text. */
	len = answer_text(BNODE, "{\"code\":\"10000\",\"msg\":\"Success\","
	    "\"bill_download_url\":\"https:\\/\\/dwbillcenter.alipay.com\\/"
	    "d?token=1\"}", NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "escaped slashes verify");
	is_str(dl.next, "https://dwbillcenter.alipay.com/d?token=1",
	    "... and are read");

	/* Answers not believed. */
	len = answer_text(BNODE, url_obj(BILL_URL), NULL, other_key);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE,
	    "a link signed by another key refused");
	ok(dl_nothing(), "bad signature: nothing given");
	snprintf(altered, sizeof(altered), "%s",
	    url_obj("https://dwbillcenter.alipay.com/d?token=1"));
	len = answer_text(BNODE, url_obj("https://dwbillcenter.alipay.com/"
	    "d?token=2"), altered, alipay_key);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE, "an altered link refused");
	len = answer_text(BNODE, url_obj(BILL_URL), NULL, NULL);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE, "an unsigned link refused");
	len = answer_text(QNODE, url_obj(BILL_URL), NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_E_MALFORMED,
	    "the answer of another method refused");
	len = answer_text(BNODE, url_obj(BILL_URL), NULL, alipay_key);
	is_int(dl_feed(ctx, 0, "", answer_body, len, 502), PH_E_PROVIDER,
	    "HTTP 502: ask again later");

	/* No bill, or an error. */
	len = answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.bill_not_exist\",\"sub_msg\":"
	    "\"账单不存在\"}", NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "isp.bill_not_exist verifies");
	is_int(dl.kind, PH_DL_NONE, "isp.bill_not_exist: no bill that day");
	len = answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.bill_not_exist\"}", NULL, NULL);
	is_int(dl_where(ctx, len), PH_E_PROVIDER,
	    "unsigned isp.bill_not_exist: an error, nothing believed");
	len = answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.bill_not_exist\"}", NULL, other_key);
	is_int(dl_where(ctx, len), PH_E_SIGNATURE,
	    "isp.bill_not_exist signed by another key refused");
	len = answer_text(BNODE, "{\"code\":\"40004\",\"msg\":\"Business "
	    "Failed\",\"sub_code\":\"isp.unknow-error\",\"sub_msg\":"
	    "\"try later\"}", NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_E_PROVIDER,
	    "40004 isp.unknow-error: ask again later");
	ok(strstr(d.msg, "40004") != NULL &&
	    strstr(d.msg, "isp.unknow-error") != NULL &&
	    strstr(d.msg, "try later") != NULL,
	    "diagnostic: code, sub_code, sub_msg: %s", d.msg);
	ok(dl_nothing(), "provider error: nothing given");
	len = answer_text(BNODE, "{\"code\":\"40002\",\"msg\":\"Invalid "
	    "Arguments\",\"sub_code\":\"isv.invalid-arguments\"}", NULL,
	    alipay_key);
	is_int(dl_where(ctx, len), PH_E_PROVIDER,
	    "40002 (a day not billed yet): an error");
	len = answer_text(BNODE, "{\"code\":\"10000\",\"msg\":\"Success\"}",
	    NULL, alipay_key);
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
			len = answer_text(BNODE, url_obj(bad[i]), NULL,
			    alipay_key);
			is_int(dl_where(ctx, len), PH_E_FIELD,
			    "link %s refused", bad[i]);
		}
	}
	len = answer_text(BNODE, url_obj("https://[::1]:8443/d"), NULL,
	    alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "an IPv6 literal with a port "
	    "read (its host is the core's check)");
	len = answer_text(BNODE, url_obj("http://[::1]:8080/d"), NULL,
	    alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "plain http to [::1] taken");
	len = answer_text(BNODE, url_obj("http://localhost:8080/d"), NULL,
	    alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "plain http to localhost taken");

	memset(url, 'a', sizeof(url));
	memcpy(url, "https://dwbillcenter.alipay.com/x?t=", 36);
	url[PH_HTTP_PATH_MAX - 1] = '\0';
	len = answer_text(BNODE, url_obj(url), NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_OK, "a link of %d bytes taken",
	    PH_HTTP_PATH_MAX - 1);
	is_int(strlen(dl.next), PH_HTTP_PATH_MAX - 1, "... whole");
	url[PH_HTTP_PATH_MAX - 1] = 'a';
	url[PH_HTTP_PATH_MAX] = '\0';
	len = answer_text(BNODE, url_obj(url), NULL, alipay_key);
	is_int(dl_where(ctx, len), PH_E_TOOBIG,
	    "a link one byte too long for a request refused");
	ok(dl_nothing(), "too long: nothing given");
	url[PH_HTTP_PATH_MAX + 8] = '\0';
	memset(url + PH_HTTP_PATH_MAX, 'a', 8);
	len = answer_text(BNODE, url_obj(url), NULL, alipay_key);
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
	struct prof p;
	void *ctx = NULL;

	keys_make();
	test_table();
	test_profiles();
	test_tv7();
	p = good_prof();
	if (mkprofile(&ctx, &p) != PH_OK) {
		diag("profile: %s", d.msg);
		abort();
	}
	test_valid(ctx);
	test_refused(ctx);
	test_ack(ctx);
	test_hint(ctx);
	test_requests(ctx);
	test_query_response(ctx);
	test_close_refund_response(ctx);
	test_statement(ctx);
	test_download_request(ctx);
	test_download_where(ctx);
	test_download_file(ctx);
	payhook_provider()->profile_free(ctx);
	keys_free();
	return done_testing();
}
