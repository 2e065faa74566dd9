/*
 * The UnionPay plugin, driven through its table.  The test makes its own
 * PKI when it runs (a root, an intermediate, UnionPay-style signing
 * certificates, a foreign hierarchy, a merchant key) and signs messages
 * with a separate, deliberately plain implementation of the ACP rules
 * (doc/design/protocols.md §3.2): sorted k=v string, lowercase hex digest, RSA over
 * that hex text.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../../providers/unionpay/unionpay_test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"

#define NOW		1796023800LL	/* 2026-11-30 07:30:00 UTC */
#define DAY		86400LL
#define MER_ID		"777290058110048"
#define ORDER		"UP20261130A1"
#define QUERY_ID	"782611301530001234567"
#define TXN_TIME	"20261130153000"	/* NOW in Beijing time */
#define CN_UNIONPAY	"中国银联股份有限公司"
#define MER_SERIAL	68759529225LL

/* ---- a test PKI ---------------------------------------------------------- */

struct pki {
	EVP_PKEY *root_key, *mid_key, *leaf_key, *mer_key;
	char *root, *mid;		/* PEM of the configured chain */
	char *leaf;			/* UnionPay's signing certificate */
	char *other_cn;			/* same chain, another company */
	char *expired;			/* same chain, expired */
	char *foreign;			/* right CN, another root */
	char *foreign_mid;
	char *self_signed;		/* right CN, self-signed */
	char *cn_in_o;			/* the name in O, CN elsewhere */
	char *by_root;			/* right CN, issued by the root */
	char *leaf_ca;			/* right CN and chain, a CA that
					 * may sign */
	char *mer_cert;			/* the merchant's certificate */
	char *mer_key_pem;
	char leaf_serial[32];
};

static struct pki pki;

/*
 * A certificate for key, named by (field, value) pairs, issued by
 * issuer/ikey (NULL: self-signed), valid from nb to na.
 */
static X509 *
mkcert(EVP_PKEY *key, const char *const *name, X509 *issuer,
    EVP_PKEY *ikey, int64_t serial, int64_t nb, int64_t na, int ca)
{
	char hex[24];
	const struct th_cert c = { key, name, issuer, ikey, hex, nb, na, ca,
	    0 };

	snprintf(hex, sizeof(hex), "%llX", (unsigned long long)serial);
	return th_cert(&c);
}

static char *
mkcert_pem(EVP_PKEY *key, const char *const *name, X509 *issuer,
    EVP_PKEY *ikey, int64_t serial, int64_t nb, int64_t na)
{
	X509 *x = mkcert(key, name, issuer, ikey, serial, nb, na, 0);
	char *s = th_pem_cert(x);

	X509_free(x);
	return s;
}

static void
pki_make(void)
{
	static const char *const root_name[] = { "C", "CN", "O",
	    "Test UnionPay", "CN", "Test UnionPay Root", NULL };
	static const char *const mid_name[] = { "C", "CN", "O",
	    "Test UnionPay", "CN", "Test UnionPay Middle", NULL };
	static const char *const leaf_name[] = { "C", "cn", "O",
	    "China UnionPay", "OU", "UPOP", "CN",
	    "041@Z12@" CN_UNIONPAY "@00000001", NULL };
	static const char *const other_name[] = { "C", "cn", "O",
	    "Somebody", "CN", "041@Z12@某商户有限公司@00000002", NULL };
	static const char *const cn_in_o_name[] = { "C", "cn", "O",
	    "041@Z12@" CN_UNIONPAY "@00000003", "CN", "nobody", NULL };
	static const char *const mer_name[] = { "C", "cn", "CN",
	    "041@Z12@Test Merchant@00000004", NULL };
	X509 *root, *mid, *froot, *fmid, *mer;
	EVP_PKEY *fkey;

	if ((pki.root_key = EVP_RSA_gen(2048)) == NULL ||
	    (pki.mid_key = EVP_RSA_gen(2048)) == NULL ||
	    (pki.leaf_key = EVP_RSA_gen(2048)) == NULL ||
	    (pki.mer_key = EVP_RSA_gen(2048)) == NULL)
		abort();
	root = mkcert(pki.root_key, root_name, NULL, NULL, 1,
	    NOW - 3650 * DAY, NOW + 3650 * DAY, 1);
	mid = mkcert(pki.mid_key, mid_name, root, pki.root_key, 2,
	    NOW - 1000 * DAY, NOW + 2000 * DAY, 1);
	pki.root = th_pem_cert(root);
	pki.mid = th_pem_cert(mid);
	pki.leaf = mkcert_pem(pki.leaf_key, leaf_name, mid, pki.mid_key,
	    69026276696LL, NOW - 100 * DAY, NOW + 700 * DAY);
	snprintf(pki.leaf_serial, sizeof(pki.leaf_serial), "69026276696");
	pki.other_cn = mkcert_pem(pki.leaf_key, other_name, mid, pki.mid_key,
	    11, NOW - 100 * DAY, NOW + 700 * DAY);
	pki.expired = mkcert_pem(pki.leaf_key, leaf_name, mid, pki.mid_key,
	    12, NOW - 800 * DAY, NOW - DAY);
	pki.cn_in_o = mkcert_pem(pki.leaf_key, cn_in_o_name, mid,
	    pki.mid_key, 13, NOW - 100 * DAY, NOW + 700 * DAY);
	pki.self_signed = mkcert_pem(pki.leaf_key, leaf_name, NULL, NULL, 14,
	    NOW - 100 * DAY, NOW + 700 * DAY);
	pki.by_root = mkcert_pem(pki.leaf_key, leaf_name, root, pki.root_key,
	    16, NOW - 100 * DAY, NOW + 700 * DAY);
	{
		X509 *x = mkcert(pki.leaf_key, leaf_name, mid, pki.mid_key,
		    17, NOW - 100 * DAY, NOW + 700 * DAY, 2);

		pki.leaf_ca = th_pem_cert(x);
		X509_free(x);
	}

	/* Another hierarchy with the same names, other keys. */
	fkey = pki.mer_key;
	froot = mkcert(fkey, root_name, NULL, NULL, 1, NOW - 3650 * DAY,
	    NOW + 3650 * DAY, 1);
	fmid = mkcert(fkey, mid_name, froot, fkey, 2, NOW - 1000 * DAY,
	    NOW + 2000 * DAY, 1);
	pki.foreign_mid = th_pem_cert(fmid);
	pki.foreign = mkcert_pem(pki.leaf_key, leaf_name, fmid, fkey, 15,
	    NOW - 100 * DAY, NOW + 700 * DAY);

	mer = mkcert(pki.mer_key, mer_name, NULL, NULL, MER_SERIAL,
	    NOW - 100 * DAY, NOW + 700 * DAY, 0);
	pki.mer_cert = th_pem_cert(mer);
	pki.mer_key_pem = th_pem_key(pki.mer_key, 1);
	X509_free(root);
	X509_free(mid);
	X509_free(froot);
	X509_free(fmid);
	X509_free(mer);
}

static void
pki_free(void)
{
	EVP_PKEY_free(pki.root_key);
	EVP_PKEY_free(pki.mid_key);
	EVP_PKEY_free(pki.leaf_key);
	EVP_PKEY_free(pki.mer_key);
	free(pki.root);
	free(pki.mid);
	free(pki.leaf);
	free(pki.other_cn);
	free(pki.expired);
	free(pki.foreign);
	free(pki.foreign_mid);
	free(pki.self_signed);
	free(pki.cn_in_o);
	free(pki.by_root);
	free(pki.leaf_ca);
	free(pki.mer_cert);
	free(pki.mer_key_pem);
}

/* ---- messages under construction ----------------------------------------- */

/* A 5.1.0 backend notification of a successful consume (txnType 01). */
static void
base_note(struct th_note *n)
{
	memset(n, 0, sizeof(*n));
	th_note_set(n, "accessType", "0");
	th_note_set(n, "bizType", "000201");
	th_note_set(n, "currencyCode", "156");
	th_note_set(n, "encoding", "UTF-8");
	th_note_set(n, "merId", MER_ID);
	th_note_set(n, "orderId", ORDER);
	th_note_set(n, "queryId", QUERY_ID);
	th_note_set(n, "respCode", "00");
	th_note_set(n, "respMsg", "成功[0000000]");
	th_note_set(n, "settleAmt", "1000");
	th_note_set(n, "settleCurrencyCode", "156");
	th_note_set(n, "settleDate", "1130");
	th_note_set(n, "signMethod", "01");
	th_note_set(n, "traceNo", "123456");
	th_note_set(n, "traceTime", "1130153000");
	th_note_set(n, "txnAmt", "1000");
	th_note_set(n, "txnSubType", "01");
	th_note_set(n, "txnTime", TXN_TIME);
	th_note_set(n, "txnType", "01");
	th_note_set(n, "version", "5.1.0");
	th_note_set(n, "reqReserved", "");
	th_note_set(n, "accNo", "6226****0048");
	th_note_set(n, "payCardType", "01");
	th_note_set(n, "signPubKeyCert", pki.leaf);
}

enum how {
	HOW_RIGHT,		/* RSA over the hex text of the digest */
	HOW_RAW_DIGEST,		/* RSA over the raw digest bytes */
	HOW_CANONICAL,		/* RSA over the canonical string itself */
};

/*
 * The ACP signature, step by step: every field but signature (empty
 * values too when with_empty), names sorted byte-wise, k=v joined with
 * '&', digested (SHA-256 for 5.1.0, SHA-1 for 5.0.0), lowercase hex,
 * then RSA PKCS#1 v1.5 over that text with the same digest.
 */
static void
sign_how(struct th_note *n, EVP_PKEY *key, int sha1, enum how how,
    int with_empty)
{
	static const char *const skip[] = { "signature", NULL };
	static char s[65536];
	size_t i, j, len, md_len, sig_len;
	unsigned char md[32], sig[1024];
	char hex[65], b64[1500];
	const EVP_MD *alg = sha1 ? EVP_sha1() : EVP_sha256();
	EVP_MD_CTX *mc;
	EVP_PKEY_CTX *pc;
	unsigned int ul;

	th_note_set(n, "signature", NULL);
	len = th_note_join(n, skip, with_empty, s, sizeof(s));
	if (EVP_Digest(s, len, md, &ul, alg, NULL) != 1)
		abort();
	md_len = ul;
	for (i = 0; i < md_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if ((mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mc, &pc, alg, NULL, key) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1)
		abort();
	sig_len = sizeof(sig);
	if (how == HOW_RIGHT)
		j = EVP_DigestSign(mc, sig, &sig_len,
		    (unsigned char *)hex, 2 * md_len);
	else if (how == HOW_RAW_DIGEST)
		j = EVP_DigestSign(mc, sig, &sig_len, md, md_len);
	else
		j = EVP_DigestSign(mc, sig, &sig_len,
		    (const unsigned char *)s, len);
	if (j != 1)
		abort();
	EVP_MD_CTX_free(mc);
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len);
	th_note_set(n, "signature", b64);
}

/*
 * A notification is signed as the official SDK signs (AcpService.sign
 * after SDKUtil.filterBlank): empty fields are left out of the string.
 * An answer of queryTrans.do is validated by the SDK as read, empty
 * fields included (tests/vectors/FINDINGS.md section 2).
 */
static void
sign_note(struct th_note *n)
{
	sign_how(n, pki.leaf_key, 0, HOW_RIGHT, 0);
}

static void
sign_answer(struct th_note *n)
{
	sign_how(n, pki.leaf_key, 0, HOW_RIGHT, 1);
}

static char body[65536];

static size_t
render(const struct th_note *n, const char *dup, const char *dupval)
{
	return th_note_form(n, dup, dupval, body, sizeof(body));
}

/* The message in UnionPay's reply syntax: nothing escaped. */
static size_t
render_raw(const struct th_note *n)
{
	size_t len = 0, i;

	for (i = 0; i < n->n; i++) {
		len += (size_t)snprintf(body + len, sizeof(body) - len,
		    "%s%s=", i > 0 ? "&" : "", n->f[i].k);
		memcpy(body + len, n->f[i].v, n->f[i].len);
		len += n->f[i].len;
	}
	body[len] = '\0';
	return len;
}

static struct ph_diag d;

static int
run_len(void *ctx, size_t len, int64_t now, const char *ct,
    struct ph_event *ev)
{
	return th_notify(payhook_provider(), ctx, body, len, ct, now, ev, &d);
}

static int
run_at(void *ctx, const struct th_note *n, int64_t now, struct ph_event *ev)
{
	return run_len(ctx, render(n, NULL, NULL), now,
	    "application/x-www-form-urlencoded;charset=UTF-8", ev);
}

static int
run(void *ctx, const struct th_note *n, struct ph_event *ev)
{
	return run_at(ctx, n, NOW, ev);
}

/* ---- profiles ------------------------------------------------------------ */

struct prof {
	const char *mer_id, *root, *mid, *signer_cn, *biz_type;
	const char *vcerts[3];
	const char *sign_key, *sign_cert;
};

static int
mkprofile(void **ctx, const struct prof *p)
{
	static struct th_conf c;

	th_conf_init(&c, payhook_provider(), "test");
	th_conf_str(&c, "mer_id", p->mer_id);
	th_conf_file(&c, "root_cert_file", p->root);
	th_conf_file(&c, "middle_cert_file", p->mid);
	th_conf_str(&c, "signer_cn", p->signer_cn != NULL ? p->signer_cn :
	    payhook_provider()->conf_keys[UP_CONF_SIGNER_CN].def);
	th_conf_files_n(&c, "verify_cert_files", p->vcerts, 3);
	th_conf_file(&c, "sign_key_file", p->sign_key);
	th_conf_file(&c, "sign_cert_file", p->sign_cert);
	th_conf_str(&c, "query_biz_type", p->biz_type);
	return th_profile_new(payhook_provider(), &c, ctx, &d);
}

static struct prof
good_prof(void)
{
	struct prof p;

	memset(&p, 0, sizeof(p));
	p.mer_id = MER_ID;
	p.root = pki.root;
	p.mid = pki.mid;
	p.vcerts[0] = pki.leaf;
	p.sign_key = pki.mer_key_pem;
	p.sign_cert = pki.mer_cert;
	return p;
}

static void
test_table(void)
{
	const struct ph_provider *p = payhook_provider();
	size_t i;

	is_int(p->abi, PH_PROVIDER_ABI, "table: ABI version");
	is_str(p->name, "unionpay", "table: name");
	is_int(p->caps, PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_STATEMENT,
	    "table: notify, query, statement");
	ok(p->profile_new && p->profile_free && p->parse_notify && p->ack &&
	    p->query_request && p->query_response, "table: entries set");
	ok(p->close_request == NULL && p->close_response == NULL,
	    "table: no close");
	ok(p->refund_request == NULL && p->refund_response == NULL &&
	    p->statement_line != NULL,
	    "table: statements, no refunds");
	for (i = 0; p->conf_keys[i].name != NULL; i++)
		ok(strcmp(p->conf_keys[i].name, "api_base") != 0,
		    "key %s is not api_base", p->conf_keys[i].name);
	is_int(i, UP_CONF__MAX, "eight keys");
	is_int(p->conf_keys[UP_CONF_QUERY_BIZ_TYPE].type, PH_CONF_ENUM,
	    "query_biz_type is a choice");
	is_str(p->conf_keys[UP_CONF_QUERY_BIZ_TYPE].def, "000201",
	    "query_biz_type defaults to the 5.1.0 demo's 000201");
	is_int(p->conf_keys[UP_CONF_SIGN_KEY_FILE].type, PH_CONF_SECRET_FILE,
	    "sign_key_file is a secret file");
	is_int(p->conf_keys[UP_CONF_VERIFY_CERT_FILES].type, PH_CONF_FILES,
	    "verify_cert_files is a file list");
	is_str(p->conf_keys[UP_CONF_SIGNER_CN].def, CN_UNIONPAY,
	    "signer_cn defaults to UnionPay's company name");
}

static void
test_profiles(void)
{
	struct prof p;
	void *ctx = NULL;
	char *two;
	size_t len;

	p = good_prof();
	is_int(mkprofile(&ctx, &p), PH_OK, "profile: valid");
	ok(ctx != NULL && strcmp(((struct up_ctx *)ctx)->cert_id,
	    "68759529225") == 0, "profile: certId is the serial in decimal");
	ok(ctx != NULL && ((struct up_ctx *)ctx)->nvcerts == 1 &&
	    strcmp(((struct up_ctx *)ctx)->vcerts[0].cert_id,
	    pki.leaf_serial) == 0, "profile: verify cert by serial");
	payhook_provider()->profile_free(ctx);
	ctx = NULL;

	p = good_prof();
	p.sign_key = p.sign_cert = NULL;
	p.vcerts[0] = NULL;
	is_int(mkprofile(&ctx, &p), PH_OK,
	    "profile: notifications only (no key, no 5.0.0 certs)");
	payhook_provider()->profile_free(ctx);

	ctx = (void *)&ctx;
	p = good_prof();
	p.mer_id = NULL;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: mer_id required");
	ok(ctx == NULL, "profile: no context on failure");
	p = good_prof();
	p.mer_id = "7772 9005";
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: bad mer_id");
	p = good_prof();
	p.root = NULL;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: root required");
	p = good_prof();
	p.mid = "not a certificate\n";
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: bad middle");
	p = good_prof();
	p.signer_cn = "a@b";
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: '@' in signer_cn");
	p = good_prof();
	p.signer_cn = "";
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: empty signer_cn");
	p = good_prof();
	p.sign_cert = NULL;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: sign_key_file without sign_cert_file");
	p = good_prof();
	p.sign_cert = pki.leaf;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: certificate of another key");
	ok(strstr(d.msg, "sign_cert_file") != NULL, "profile: says which");
	p = good_prof();
	p.sign_key = pki.root;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "profile: key not a key");
	ok(strstr(d.msg, "BEGIN") == NULL && strstr(d.msg, "MII") == NULL,
	    "profile: diagnostic quotes no key material");
	p = good_prof();
	p.vcerts[1] = pki.leaf;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: two verify certs with one serial");
	len = strlen(pki.leaf) + strlen(pki.mid) + 1;
	if ((two = malloc(len)) == NULL)
		abort();
	snprintf(two, len, "%s%s", pki.leaf, pki.mid);
	p = good_prof();
	p.vcerts[0] = two;
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG,
	    "profile: a verify file with two certificates");
	free(two);
	ok(ctx == NULL, "profile: still no context");
	payhook_provider()->profile_free(NULL);
	ok(1, "profile_free(NULL) is harmless");
}

/* ---- notifications ------------------------------------------------------- */

static void
test_valid(void *ctx)
{
	struct ph_event ev;
	struct th_note n;

	base_note(&n);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "5.1.0 payment verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "kind: payment succeeded");
	is_str(ev.order_id, ORDER, "order_id");
	is_str(ev.txn_id, QUERY_ID, "txn_id is queryId");
	is_str(ev.refund_id, "", "no refund_id");
	is_int(ev.amount, 1000, "amount in fen");
	is_str(ev.currency, "CNY", "currency 156 is CNY");
	is_int(ev.occurred_at, NOW, "txnTime is Beijing time");
	is_str(ev.dedup_key, "up:" QUERY_ID ":01:00", "dedup key");
	is_str(ev.channel, "", "no channel");

	/* Again: the certificate now comes from the cache. */
	is_int(run(ctx, &n, &ev), PH_OK, "same certificate again (cached)");
	is_int(run_at(ctx, &n, NOW + 701 * DAY, &ev), PH_E_SIGNATURE,
	    "cached certificate past its end refused");
	is_int(run_at(ctx, &n, NOW - 101 * DAY, &ev), PH_E_SIGNATURE,
	    "cached certificate before its start refused");
	ok(ev.kind == 0 && ev.order_id[0] == '\0' && ev.dedup_key[0] == '\0',
	    "refused: event left empty");

	base_note(&n);
	th_note_set(&n, "respCode", "A6");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "respCode A6");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "A6 is a payment");
	is_str(ev.dedup_key, "up:" QUERY_ID ":01:A6", "A6 dedup key");

	base_note(&n);
	th_note_set(&n, "respCode", "61");
	th_note_set(&n, "respMsg", "余额不足");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "failed payment verifies");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "respCode 61: failed");
	is_str(ev.dedup_key, "up:" QUERY_ID ":01:61",
	    "failed payment: dedup key has txnType and respCode");
	is_int(ev.amount, 1000, "failed payment: amount");
}

static void
test_refunds(void *ctx)
{
	struct ph_event ev;
	struct th_note n;

	base_note(&n);
	th_note_set(&n, "txnType", "04");
	th_note_set(&n, "orderId", "RF20261130B2");
	th_note_set(&n, "queryId", "782611301600009999999");
	th_note_set(&n, "origQryId", QUERY_ID);
	th_note_set(&n, "txnAmt", "300");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "refund verifies");
	is_refund(&ev, "txnType 04", "782611301600009999999", "RF20261130B2",
	    QUERY_ID);
	is_str(ev.order_id, "", "refund: the payment's order is not named");
	is_int(ev.amount, 300, "refund amount");
	is_str(ev.dedup_key, "up:782611301600009999999:04:00",
	    "refund dedup key");

	th_note_set(&n, "txnType", "31");
	th_note_set(&n, "respCode", "12");
	th_note_set(&n, "origQryId", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "failed undo verifies");
	is_int(ev.kind, PH_EV_REFUND_FAILED, "txnType 31 failed: refund "
	    "failed");
	is_str(ev.txn_id, "", "no origQryId: no txn_id");
	is_str(ev.dedup_key, "up:782611301600009999999:31:12",
	    "undo dedup key");

	base_note(&n);
	th_note_set(&n, "txnType", "02");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED, "pre-auth refused");
	ok(strstr(d.msg, "txnType") != NULL, "diagnostic names txnType");
}

static void
test_gbk(void *ctx)
{
	static const char remark[] = "\xd6\xd0\xce\xc4\xb1\xb8\xd7\xa2";
	static const char success[] = "\xb3\xc9\xb9\xa6";
	struct ph_event ev;
	struct th_note n;

	base_note(&n);
	th_note_set(&n, "encoding", "GBK");
	th_note_set_bytes(&n, "reqReserved", remark, sizeof(remark) - 1);
	th_note_set_bytes(&n, "respMsg", success, sizeof(success) - 1);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "GBK message verifies over its "
	    "GBK bytes");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(ev.order_id, ORDER, "GBK: order id");
	is_int(ev.amount, 1000, "GBK: amount");

	/* Signed over the UTF-8 text of the same values: not what came. */
	base_note(&n);
	th_note_set(&n, "encoding", "GBK");
	th_note_set(&n, "reqReserved", "中文备注");
	sign_note(&n);
	th_note_set_bytes(&n, "reqReserved", remark, sizeof(remark) - 1);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "GBK message signed over UTF-8 bytes refused");

	base_note(&n);
	th_note_set(&n, "encoding", "GB18030");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED, "encoding GB18030 "
	    "refused");

	base_note(&n);
	th_note_set(&n, "encoding", "GBK");
	th_note_set(&n, "orderId", "UP\xd6\xd0");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "non-ASCII orderId refused");
}

/* A notification whose signPubKeyCert is pem, signed with its key: refused
 * as a bad signature (what), its diagnostic naming needle (NULL: any). */
static void
refused_signer(void *ctx, const char *pem, const char *what,
    const char *needle)
{
	struct ph_event ev;
	struct th_note n;

	base_note(&n);
	th_note_set(&n, "signPubKeyCert", pem);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "%s", what);
	if (needle != NULL)
		ok(strstr(d.msg, needle) != NULL, "diagnostic: %s", d.msg);
}

static void
test_refused(void *ctx)
{
	struct ph_event ev;
	struct th_note n;
	char buf[8192];
	size_t len;

	refused_signer(ctx, pki.foreign, "certificate from another root with "
	    "the right CN refused", "signPubKeyCert");
	refused_signer(ctx, pki.self_signed, "self-signed certificate with the "
	    "right CN refused", NULL);
	refused_signer(ctx, pki.by_root, "the right CN issued straight by the "
	    "root, not through the intermediate, refused", "intermediate");
	refused_signer(ctx, pki.leaf_ca, "the right CN and chain, but a CA "
	    "certificate, refused", "CA certificate");
	refused_signer(ctx, pki.other_cn, "right chain, another company's CN "
	    "refused", "signer_cn");
	refused_signer(ctx, pki.cn_in_o, "the company name in O, not CN, "
	    "refused", NULL);
	refused_signer(ctx, pki.expired, "expired certificate refused",
	    "expired");

	base_note(&n);
	snprintf(buf, sizeof(buf), "%s%s", pki.leaf, pki.mid);
	th_note_set(&n, "signPubKeyCert", buf);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "two certificates in signPubKeyCert refused");

	base_note(&n);
	snprintf(buf, sizeof(buf), "%sgarbage", pki.leaf);
	th_note_set(&n, "signPubKeyCert", buf);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "trailing garbage after the certificate refused");

	base_note(&n);
	th_note_set(&n, "signPubKeyCert", pki.mid);
	sign_how(&n, pki.mid_key, 0, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "the intermediate itself as signer refused");

	base_note(&n);
	th_note_set(&n, "txnAmt", "1");
	sign_note(&n);
	th_note_set(&n, "txnAmt", "1000");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "signature made over a different amount refused");

	base_note(&n);
	sign_how(&n, pki.leaf_key, 0, HOW_RAW_DIGEST, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "signature over the raw SHA-256 digest refused");

	base_note(&n);
	sign_how(&n, pki.leaf_key, 0, HOW_CANONICAL, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "signature over the canonical string itself refused");

	base_note(&n);
	sign_how(&n, pki.leaf_key, 0, HOW_RIGHT, 1);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "notification signed over its empty field refused (the SDK "
	    "verifies without it)");

	base_note(&n);
	sign_how(&n, pki.leaf_key, 1, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "5.1.0 signed with SHA-1 refused");

	base_note(&n);
	sign_note(&n);
	len = render(&n, "txnAmt", "1");
	is_int(run_len(ctx, len, NOW, "application/x-www-form-urlencoded",
	    &ev), PH_E_MALFORMED, "duplicated field refused");
	len = render(&n, "txn%41mt", "1");
	is_int(run_len(ctx, len, NOW, "application/x-www-form-urlencoded",
	    &ev), PH_E_MALFORMED, "duplicated field (escaped name) refused");

	base_note(&n);
	th_note_set(&n, "merId", "777290058110049");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_MERCHANT,
	    "merId of another merchant refused");

	base_note(&n);
	th_note_set(&n, "signMethod", "11");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED, "signMethod 11 refused");
	ok(strstr(d.msg, "signMethod 11") != NULL, "diagnostic: %s", d.msg);
	th_note_set(&n, "signMethod", "12");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED, "signMethod 12 refused");
	th_note_set(&n, "signMethod", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "no signMethod refused");

	base_note(&n);
	th_note_set(&n, "version", "6.0.0");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_UNSUPPORTED, "version 6.0.0 refused");
	ok(strstr(d.msg, "6.0.0") != NULL, "diagnostic: %s", d.msg);

	base_note(&n);
	th_note_set(&n, "signature", NULL);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "missing signature refused");
	th_note_set(&n, "signature", "");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "empty signature refused");

	base_note(&n);
	sign_note(&n);
	th_note_set(&n, "signature", "not*base64==");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "bad base64 refused");
	ok(strstr(d.msg, "base64") != NULL, "diagnostic: %s", d.msg);
	th_note_set(&n, "signature", "AAAA");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "short signature refused");

	base_note(&n);
	th_note_set(&n, "signPubKeyCert", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "5.1.0 without signPubKeyCert refused");

	base_note(&n);
	th_note_set(&n, "currencyCode", "999");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "unknown currency refused");
	th_note_set(&n, "currencyCode", "840");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "840 is known");
	is_str(ev.currency, "USD", "840 is USD");

	base_note(&n);
	th_note_set(&n, "txnAmt", "10.00");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "decimal txnAmt refused");
	base_note(&n);
	th_note_set(&n, "txnTime", "20261131153000");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "impossible txnTime refused");
	base_note(&n);
	th_note_set(&n, "queryId", NULL);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_FIELD, "no queryId refused");

	base_note(&n);
	th_note_set(&n, "txn.Amt", "1");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_MALFORMED,
	    "a field name with punctuation refused");

	base_note(&n);
	sign_note(&n);
	len = render(&n, NULL, NULL);
	is_int(run_len(ctx, len, NOW, "application/json", &ev),
	    PH_E_MALFORMED, "a JSON content type refused");
	is_int(run_len(ctx, len, NOW, "", &ev), PH_OK,
	    "no content type: decoded as a form");
	body[len - 1] = '%';
	is_int(run_len(ctx, len, NOW, "", &ev), PH_E_MALFORMED,
	    "a broken escape refused");
}

static void
test_v500(void *ctx)
{
	struct ph_event ev;
	struct th_note n;

	base_note(&n);
	th_note_set(&n, "version", "5.0.0");
	th_note_set(&n, "signPubKeyCert", NULL);
	th_note_set(&n, "certId", pki.leaf_serial);
	sign_how(&n, pki.leaf_key, 1, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_OK, "5.0.0 with a configured certId");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(ev.dedup_key, "up:" QUERY_ID ":01:00", "5.0.0 dedup key");

	th_note_set(&n, "certId", "1234567");
	sign_how(&n, pki.leaf_key, 1, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "5.0.0 unknown certId "
	    "refused");
	ok(strstr(d.msg, "1234567") != NULL, "diagnostic: %s", d.msg);

	th_note_set(&n, "certId", pki.leaf_serial);
	sign_how(&n, pki.leaf_key, 0, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "5.0.0 signed with "
	    "SHA-256 refused");
	sign_how(&n, pki.mer_key, 1, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "5.0.0 signed with "
	    "another key refused");
	sign_how(&n, pki.leaf_key, 1, HOW_RIGHT, 0);
	is_int(run_at(ctx, &n, NOW + 701 * DAY, &ev), PH_E_SIGNATURE,
	    "5.0.0 certificate past its end refused");
	th_note_set(&n, "certId", NULL);
	sign_how(&n, pki.leaf_key, 1, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE, "5.0.0 without certId "
	    "refused");
}

static void
test_v500_unconfigured(void)
{
	struct prof p = good_prof();
	struct ph_event ev;
	struct th_note n;
	void *ctx = NULL;

	p.vcerts[0] = NULL;
	if (mkprofile(&ctx, &p) != PH_OK)
		abort();
	base_note(&n);
	th_note_set(&n, "version", "5.0.0");
	th_note_set(&n, "signPubKeyCert", NULL);
	th_note_set(&n, "certId", pki.leaf_serial);
	sign_how(&n, pki.leaf_key, 1, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "5.0.0 refused by a profile without verify_cert_files");
	payhook_provider()->profile_free(ctx);
}

static void
test_signer_cn(void)
{
	struct prof p = good_prof();
	struct ph_event ev;
	struct th_note n;
	void *ctx = NULL;

	p.signer_cn = "某商户有限公司";
	if (mkprofile(&ctx, &p) != PH_OK)
		abort();
	base_note(&n);
	th_note_set(&n, "signPubKeyCert", pki.other_cn);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK, "signer_cn is configurable");
	base_note(&n);
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "then UnionPay's own name is refused");
	payhook_provider()->profile_free(ctx);
}

static void
test_ack(void *ctx)
{
	struct ph_response r;

	payhook_provider()->ack(ctx, PH_ACK_OK, NULL, &r);
	is_int(r.status, 200, "ack ok: 200");
	is_int(r.body_len, 2, "ack ok: two bytes");
	ok(memcmp(r.body, "ok", 2) == 0, "ack ok: body ok");
	is_str(r.content_type, "text/plain", "ack ok: text/plain");
	payhook_provider()->ack(ctx, PH_ACK_REFUSED, "bad \x01signature\n",
	    &r);
	is_int(r.status, 400, "ack refused: 400");
	ok(r.body_len == 13 && memcmp(r.body, "bad signature", 13) == 0,
	    "ack refused: short printable reason");
	payhook_provider()->ack(ctx, PH_ACK_REFUSED, NULL, &r);
	ok(r.body_len > 0, "ack refused without reason: a body");
	payhook_provider()->ack(ctx, PH_ACK_RETRY, "disk", &r);
	is_int(r.status, 500, "ack retry: 500");
	ok(r.body_len > 0, "ack retry: a body");
}

/* ---- queries ------------------------------------------------------------- */

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The request body split and decoded here, into a note. */
static void
decode_body(const unsigned char *b, size_t len, struct th_note *n)
{
	char k[64], v[4096];
	size_t i = 0, kl, vl;

	memset(n, 0, sizeof(*n));
	while (i < len) {
		kl = vl = 0;
		while (i < len && b[i] != '=')
			k[kl++] = (char)b[i++];
		k[kl] = '\0';
		i++;
		while (i < len && b[i] != '&') {
			if (b[i] == '%' && i + 2 < len) {
				v[vl++] = (char)(hexval((char)b[i + 1]) * 16 +
				    hexval((char)b[i + 2]));
				i += 3;
			} else if (b[i] == '+') {
				v[vl++] = ' ';
				i++;
			} else
				v[vl++] = (char)b[i++];
		}
		i++;
		th_note_set_bytes(n, k, v, vl);
	}
}

/* Checks the request's signature with the merchant's public key, the
 * sign string built here from the non-empty fields. */
static int
verify_request(const struct th_note *n)
{
	static const char *const skip[] = { "signature", NULL };
	static char str[65536];
	unsigned char sig[512], md[32];
	const char *s = th_note_get(n, "signature");
	size_t i, sl;
	char hex[65];
	unsigned int ul;
	EVP_MD_CTX *mc;
	int rc;

	if (s == NULL || EVP_DecodeBlock(sig, (const unsigned char *)s,
	    (int)strlen(s)) != 258)
		return 0;
	sl = th_note_join(n, skip, 0, str, sizeof(str));
	if (EVP_Digest(str, sl, md, &ul, EVP_sha256(), NULL) != 1)
		return 0;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if ((mc = EVP_MD_CTX_new()) == NULL)
		return 0;
	rc = EVP_DigestVerifyInit(mc, NULL, EVP_sha256(), NULL,
	    pki.mer_key) == 1 && EVP_DigestVerify(mc, sig, 256,
	    (unsigned char *)hex, 64) == 1;
	EVP_MD_CTX_free(mc);
	return rc;
}

static void
test_query_request(void *ctx)
{
	static const char *const want[][2] = {
		{ "version", "5.1.0" }, { "encoding", "UTF-8" },
		{ "signMethod", "01" }, { "txnType", "00" },
		{ "txnSubType", "00" }, { "bizType", "000201" },
		{ "accessType", "0" },
		{ "merId", MER_ID }, { "orderId", ORDER },
		{ "txnTime", TXN_TIME }, { "certId", "68759529225" },
	};
	struct ph_order_ref o = { ORDER, 1000, "CNY", "", NOW - 60,
	    "{\"txnTime\":\"" TXN_TIME "\"}", NULL };
	struct ph_call_ctx cc;
	struct ph_http_request *rq = calloc(1, sizeof(*rq));
	struct prof p = good_prof();
	struct th_note n;
	void *bare = NULL;
	size_t i;

	memset(&cc, 0, sizeof(cc));
	cc.now = NOW;
	d.msg[0] = '\0';
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d), PH_OK,
	    "query request built");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(rq->method, "POST", "query: POST");
	is_str(rq->path, "/gateway/api/queryTrans.do", "query: path");
	is_str(rq->content_type, "application/x-www-form-urlencoded",
	    "query: form content type");
	decode_body(rq->body, rq->body_len, &n);
	/* ACPSample_B2C @ 2e8018c, src/com/unionpay/acp/demo/
	 * Form_6_5_Query.java lines 60-73, the official 5.1.0 query demo:
	 * these fields, bizType 000201, no channelType. */
	is_int(n.n, 12, "query: twelve fields, as the 5.1.0 demo sends");
	ok(th_note_get(&n, "channelType") == NULL,
	    "query: no channelType (the 5.1.0 demo sends none)");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		is_str(th_note_get(&n, want[i][0]), want[i][1], "query field %s",
		    want[i][0]);
	ok(th_note_get(&n, "signature") != NULL && strlen(th_note_get(&n, "signature")) ==
	    344, "query: 256-byte signature in base64");
	ok(verify_request(&n), "query: signature verifies with the "
	    "merchant's public key");
	ok(memchr(rq->body, '+', rq->body_len) == NULL &&
	    memchr(rq->body, '/', rq->body_len) == NULL,
	    "query: base64 '+' and '/' escaped");

	o.attempt = "";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "query without attempt data refused");
	is_str(d.msg, "UnionPay query needs the attempt's txnTime",
	    "query: says what is missing");
	ok(rq->body_len == 0, "query: nothing built on failure");
	o.attempt = "{\"other\":1}";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "attempt without txnTime refused");
	o.attempt = "{\"txnTime\":\"1\",\"txnTime\":\"" TXN_TIME "\"}";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "attempt with a duplicate key refused");
	o.attempt = "{\"txnTime\":20261130153000}";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "txnTime as a number refused");
	o.attempt = "{\"txnTime\":\"20261130\"}";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "short txnTime refused");
	o.attempt = "[\"" TXN_TIME "\"]";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "attempt not an object refused");
	o.attempt = "{\"txnTime\":\"" TXN_TIME "\"}";
	o.order_id = "UP-1";
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d),
	    PH_E_FIELD, "order id UnionPay cannot take refused");

	p.sign_key = p.sign_cert = NULL;
	if (mkprofile(&bare, &p) != PH_OK)
		abort();
	o.order_id = ORDER;
	is_int(payhook_provider()->query_request(bare, &o, &cc, rq, &d),
	    PH_E_CONFIG, "query without a signing key refused");
	payhook_provider()->profile_free(bare);
	free(rq);
}

/* A 5.1.0 answer of queryTrans.do, signed by UnionPay's certificate. */
static void
base_answer(struct th_note *n, const char *resp, const char *orig)
{
	memset(n, 0, sizeof(*n));
	th_note_set(n, "version", "5.1.0");
	th_note_set(n, "encoding", "UTF-8");
	th_note_set(n, "signMethod", "01");
	th_note_set(n, "txnType", "00");
	th_note_set(n, "txnSubType", "00");
	th_note_set(n, "bizType", "000000");
	th_note_set(n, "accessType", "0");
	th_note_set(n, "merId", MER_ID);
	th_note_set(n, "orderId", ORDER);
	th_note_set(n, "txnTime", TXN_TIME);
	th_note_set(n, "respCode", resp);
	th_note_set(n, "respMsg", "成功[0000000]");
	if (orig != NULL) {
		th_note_set(n, "origRespCode", orig);
		th_note_set(n, "origRespMsg", "成功[0000000]");
		th_note_set(n, "queryId", QUERY_ID);
		th_note_set(n, "txnAmt", "1000");
		th_note_set(n, "currencyCode", "156");
		th_note_set(n, "settleAmt", "1000");
		th_note_set(n, "settleDate", "1130");
		th_note_set(n, "traceNo", "123456");
		th_note_set(n, "traceTime", "1130153000");
	}
	th_note_set(n, "signPubKeyCert", pki.leaf);
	sign_answer(n);
}

static int
answer(void *ctx, const struct th_note *n, int raw, struct ph_event *ev)
{
	struct ph_order_ref o = { ORDER, 1000, "CNY", "", NOW - 60,
	    "{\"txnTime\":\"" TXN_TIME "\"}", NULL };
	struct ph_header h = { "Content-Type", raw ?
	    "text/html;charset=UTF-8" : "application/x-www-form-urlencoded" };
	struct ph_http_response in;

	th_answer(&in, 200, body,
	    raw ? render_raw(n) : render(n, NULL, NULL), NOW);
	in.headers = &h;
	in.nheaders = 1;
	d.msg[0] = '\0';
	return payhook_provider()->query_response(ctx, &o, &in, ev, &d);
}

static void
test_query_response(void *ctx)
{
	static const char *const pending[] = { "03", "04", "05" };
	struct ph_event ev, nev;
	struct ph_http_response in;
	struct ph_order_ref o = { ORDER, 1000, "CNY", "", NOW - 60, "",
	    NULL };
	struct th_note n;
	size_t i;

	/* The notification of the same payment, for its dedup key. */
	base_note(&n);
	sign_note(&n);
	if (run(ctx, &n, &nev) != PH_OK)
		abort();

	base_answer(&n, "00", "00");
	is_int(answer(ctx, &n, 1, &ev), PH_OK, "00/00 verifies (raw reply)");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_event(&ev, "00/00", PH_EV_PAYMENT_SUCCEEDED, ORDER, QUERY_ID, 1000,
	    "CNY", NOW, "up:" QUERY_ID ":01:00");
	is_str(ev.dedup_key, nev.dedup_key,
	    "00/00: dedup key equals the notification's");

	is_int(answer(ctx, &n, 0, &ev), PH_OK,
	    "00/00 as a percent-encoded form (by its content type)");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "form reply: paid");

	for (i = 0; i < 3; i++) {
		base_answer(&n, "00", pending[i]);
		is_int(answer(ctx, &n, 1, &ev), PH_OK, "00/%s verifies",
		    pending[i]);
		is_int(ev.kind, PH_EV_PAYMENT_PENDING, "00/%s: pending",
		    pending[i]);
		is_str(ev.order_id, ORDER, "pending: order id");
		{
			char want[64];

			snprintf(want, sizeof(want), "up:query:%s:pending:%s",
			    ORDER, pending[i]);
			is_str(ev.dedup_key, want, "pending: dedup key, as "
			    "ever");
		}
	}

	base_answer(&n, "00", "01");
	is_int(answer(ctx, &n, 1, &ev), PH_OK, "00/01 verifies");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "00/01: failed");
	is_str(ev.dedup_key, "up:" QUERY_ID ":01:01", "failed: dedup key");
	base_answer(&n, "00", "61");
	is_int(answer(ctx, &n, 1, &ev), PH_OK, "00/61 verifies");
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "00/61: failed");

	base_answer(&n, "34", NULL);
	is_int(answer(ctx, &n, 1, &ev), PH_OK, "34 verifies");
	is_int(ev.kind, PH_EV_NOT_FOUND, "34: not found");
	is_str(ev.order_id, ORDER, "34: order id");
	is_str(ev.dedup_key, "up:query:" ORDER ":34", "34: dedup key, as ever");

	for (i = 0; i < 3; i++) {
		base_answer(&n, pending[i], NULL);
		is_int(answer(ctx, &n, 1, &ev), PH_E_PROVIDER,
		    "respCode %s: provider busy", pending[i]);
		ok(ev.kind == 0 && ev.dedup_key[0] == '\0',
		    "busy: no event");
	}
	base_answer(&n, "11", NULL);
	is_int(answer(ctx, &n, 1, &ev), PH_E_PROVIDER,
	    "respCode 11: query refused");
	ok(strstr(d.msg, "11") != NULL, "diagnostic: %s", d.msg);

	/* Signed answers that must not be believed. */
	base_answer(&n, "00", "00");
	th_note_set(&n, "txnAmt", "1");
	is_int(answer(ctx, &n, 1, &ev), PH_E_SIGNATURE,
	    "altered answer refused");
	base_answer(&n, "00", "00");
	th_note_set(&n, "signature", NULL);
	is_int(answer(ctx, &n, 1, &ev), PH_E_SIGNATURE,
	    "unsigned answer refused");
	base_answer(&n, "00", "00");
	th_note_set(&n, "merId", "777290058110049");
	sign_answer(&n);
	is_int(answer(ctx, &n, 1, &ev), PH_E_MERCHANT,
	    "answer for another merchant refused");
	base_answer(&n, "00", "00");
	th_note_set(&n, "orderId", "UP20261130A2");
	sign_answer(&n);
	is_int(answer(ctx, &n, 1, &ev), PH_E_FIELD,
	    "answer about another order refused");
	base_answer(&n, "00", "00");
	th_note_set(&n, "signPubKeyCert", pki.other_cn);
	sign_answer(&n);
	is_int(answer(ctx, &n, 1, &ev), PH_E_SIGNATURE,
	    "answer signed by another company refused");

	/* Reply syntax: nested values, and what is refused. */
	base_answer(&n, "00", "00");
	th_note_set(&n, "reqReserved", "{a=1&b=[x&y]}");
	sign_answer(&n);
	is_int(answer(ctx, &n, 1, &ev), PH_OK,
	    "a '{...}' value holding '&' is one value");
	base_answer(&n, "00", "00");
	th_note_set(&n, "reqReserved", "{a=1&b=2");
	sign_answer(&n);
	is_int(answer(ctx, &n, 1, &ev), PH_E_MALFORMED,
	    "an unclosed '{' refused");
	base_answer(&n, "00", "00");
	render_raw(&n);
	th_answer(&in, 200, body, strlen(body), NOW);
	body[in.body_len++] = '&';
	is_int(payhook_provider()->query_response(ctx, &o, &in, &ev, &d),
	    PH_E_MALFORMED, "a trailing '&' refused");
	snprintf(body, sizeof(body), "respCode=00&respCode=34");
	in.body_len = strlen(body);
	is_int(payhook_provider()->query_response(ctx, &o, &in, &ev, &d),
	    PH_E_MALFORMED, "a repeated field refused");
	in.status = 503;
	is_int(payhook_provider()->query_response(ctx, &o, &in, &ev, &d),
	    PH_E_PROVIDER, "HTTP 503: ask later");
}

/*
 * Empty values.  A notification is verified without its empty fields
 * (the SDK's filterBlank when signing, BackRcvResponse dropping "" values
 * before validate); a value of white space is not empty (the receiver
 * does not trim).  An answer keeps its empty fields, as the SDK's
 * validate of a synchronous answer does.
 */
static void
test_empty_fields(void *ctx)
{
	struct ph_event ev;
	struct th_note n;

	base_note(&n);
	ok(th_note_get(&n, "reqReserved") != NULL &&
	    th_note_get(&n, "reqReserved")[0] == '\0',
	    "empty: the notification has an empty reqReserved");
	sign_note(&n);
	is_int(run(ctx, &n, &ev), PH_OK,
	    "empty: notification signed without its empty field verifies");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "empty: a payment");
	th_note_set(&n, "reqReserved", NULL);
	is_int(run(ctx, &n, &ev), PH_OK,
	    "empty: the same signature without the field at all verifies");

	base_note(&n);
	th_note_set(&n, "reqReserved", " ");
	sign_how(&n, pki.leaf_key, 0, HOW_RIGHT, 0);
	is_int(run(ctx, &n, &ev), PH_OK,
	    "empty: a value of one space is signed as it is");
	th_note_set(&n, "reqReserved", "");
	is_int(run(ctx, &n, &ev), PH_E_SIGNATURE,
	    "empty: that signature does not cover the value left empty");

	base_answer(&n, "00", "00");
	th_note_set(&n, "reqReserved", "");
	sign_answer(&n);
	is_int(answer(ctx, &n, 1, &ev), PH_OK,
	    "empty: answer signed over its empty field verifies");
	base_answer(&n, "00", "00");
	th_note_set(&n, "reqReserved", "");
	sign_note(&n);
	is_int(answer(ctx, &n, 1, &ev), PH_E_SIGNATURE,
	    "empty: answer signed without its empty field refused");
}

/*
 * Published vectors (tests/vectors/unionpay/, README.md there): the
 * UnionPay test environment's root and intermediate from the ACP SDK
 * (acp_test_root.cer, acp_test_middle.cer), at 2017-03-24 02:12:00 UTC,
 * inside the signing certificates' validity.
 */
#define UP_VEC_NOW	1490321520LL

static void
test_vectors(void)
{
	char *root = th_vector("unionpay/acp_test_root.pem", NULL);
	char *mid = th_vector("unionpay/acp_test_middle.pem", NULL);
	struct prof p;
	struct ph_event ev;
	struct th_note n;
	void *ctx = NULL;

	/*
	 * derived-empty-reqReserved.json: a 5.1.0 consumption notification
	 * with reqReserved empty, signed the SDK's way (SDKUtil.filterBlank,
	 * caolinke/ACPSample_B2C @ 2e8018c, src/com/unionpay/acp/sdk/
	 * SDKUtil.java lines 797-812) with the SDK's published test key
	 * acp_test_sign.pfx (Varorbc/PaySharp, test/PaySharp.UnitTest/).
	 */
	memset(&p, 0, sizeof(p));
	p.mer_id = "700000000000001";
	p.root = root;
	p.mid = mid;
	p.signer_cn = "700000000000001:SIGN";
	if (mkprofile(&ctx, &p) != PH_OK) {
		diag("profile: %s", d.msg);
		abort();
	}
	th_vector_note("unionpay/derived-empty-reqReserved.json", &n);
	is_int(run_at(ctx, &n, UP_VEC_NOW, &ev), PH_OK,
	    "vector: SDK-signed notification with an empty field verifies");
	if (d.msg[0] != '\0')
		diag("%s", d.msg);
	is_str(ev.order_id, "20170601120000", "vector: orderId");
	is_str(ev.txn_id, "201706011200001234567", "vector: queryId");
	is_int(ev.amount, 1, "vector: 1 fen");
	payhook_provider()->profile_free(ctx);

	/*
	 * upacp-app-demo-20170324101151.json: a real notification of the
	 * test environment in the official .NET app demo
	 * (upacp_demo_app/demo/api_05_app/BackRcvResponse.aspx.cs), no
	 * empty field: verified as before.
	 */
	p.mer_id = "777290058110048";
	p.signer_cn = "00040000:SIGN";
	if (mkprofile(&ctx, &p) != PH_OK)
		abort();
	th_vector_note("unionpay/upacp-app-demo-20170324101151.json", &n);
	is_int(run_at(ctx, &n, UP_VEC_NOW, &ev), PH_OK,
	    "vector: the demo's test-environment notification verifies");
	is_str(ev.txn_id, "201703241011516777928", "vector: its queryId");
	payhook_provider()->profile_free(ctx);
	free(root);
	free(mid);
}

/* bizType of queries: the profile's query_biz_type. */
static void
test_query_biz_type(void)
{
	struct ph_order_ref o = { ORDER, 1000, "CNY", "", NOW - 60,
	    "{\"txnTime\":\"" TXN_TIME "\"}", NULL };
	struct ph_http_request *rq = calloc(1, sizeof(*rq));
	struct prof p = good_prof();
	struct ph_call_ctx cc;
	struct th_note n;
	void *ctx = NULL;

	memset(&cc, 0, sizeof(cc));
	cc.now = NOW;
	p.biz_type = "000000";
	is_int(mkprofile(&ctx, &p), PH_OK, "query_biz_type 000000 accepted");
	is_int(payhook_provider()->query_request(ctx, &o, &cc, rq, &d), PH_OK,
	    "query with bizType 000000 built");
	decode_body(rq->body, rq->body_len, &n);
	is_str(th_note_get(&n, "bizType"), "000000",
	    "query: bizType as configured");
	ok(verify_request(&n), "query: still signed");
	payhook_provider()->profile_free(ctx);
	ctx = NULL;
	p.biz_type = "000202";
	is_int(mkprofile(&ctx, &p), PH_E_CONFIG, "query_biz_type 000202 "
	    "refused");
	ok(strstr(d.msg, "query_biz_type") != NULL, "diagnostic: %s", d.msg);
	ok(ctx == NULL, "no profile");
	free(rq);
}

/* The hint needs no verification and no context beyond a non-NULL one. */
static void
test_hint(void)
{
	static int dummy;
	/* orderId, in a notification not verified; none without it, none
	 * from a malformed form. */
	static const char good[] = "version=5.1.0&orderId=ORD20261130001&"
	    "signature=forged";
	static const char none[] = "version=5.1.0&txnAmt=1";

	is_hints(payhook_provider(), up_notify_hint, &dummy, good,
	    "ORD20261130001", none, "a=%zz");
}

int
main(void)
{
	struct prof p;
	void *ctx = NULL;

	pki_make();
	test_table();
	test_profiles();
	p = good_prof();
	if (mkprofile(&ctx, &p) != PH_OK) {
		diag("profile: %s", d.msg);
		abort();
	}
	test_valid(ctx);
	test_refunds(ctx);
	test_gbk(ctx);
	test_refused(ctx);
	test_v500(ctx);
	test_v500_unconfigured();
	test_signer_cn();
	test_ack(ctx);
	test_query_request(ctx);
	test_query_response(ctx);
	test_empty_fields(ctx);
	test_query_biz_type();
	test_vectors();
	test_hint();
	payhook_provider()->profile_free(ctx);
	pki_free();
	return done_testing();
}
