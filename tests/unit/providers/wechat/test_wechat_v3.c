/*
 * The WeChat Pay API v3 side of the wechat plugin, driven through its
 * table.  Platform keys and certificates are generated here with
 * OpenSSL; notifications and answers are encrypted and signed here by a
 * separate, deliberately plain implementation of doc/design/protocols.md §2.3-2.6.
 * The official worked examples TV-3 (request signature), TV-4 (JSAPI
 * paySign) and TV-5 (verification with the WeChat Pay public key) are
 * checked byte for byte.
 */
#include <limits.h>
#include <stddef.h>
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

#include <openssl/bio.h>

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"

#define APPID	"wxd678efh567hg6787"
#define MCHID	"1230000109"
#define V3KEY	"0123456789abcdefABCDEFGHijklmnop"
#define NOW	1700000000LL
#define SER_A	"5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
#define SER_B	"0ABCDEF0123456789"	/* ABCDEF0123456789, the same number */
#define PUB_ID	"PUB_KEY_ID_0114232134912410000000000000000000"
#define TV3_SERIAL "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"

static struct ph_diag d;

/* ---- keys and certificates, made here ------------------------------- */

static EVP_PKEY *plat_a, *plat_b, *plat_c, *tv3_key, *weak;
static char *cert_a, *cert_b, *cert_old, *pub_c, *cert_weak, *cert_zero;

/* A self-signed certificate of key with this serial and validity. */
static char *
mkcert(EVP_PKEY *k, const char *serial_hex, int64_t nb, int64_t na)
{
	static const char *const name[] = { "CN",
	    "Tenpay.com Root CA (payhook test)", NULL };
	const struct th_cert c = { k, name, NULL, NULL, serial_hex, nb, na, 0,
	    1 };

	return th_cert_pem(&c);
}

static void
make_keys(void)
{
	plat_a = EVP_RSA_gen(2048);
	plat_b = EVP_RSA_gen(2048);
	plat_c = EVP_RSA_gen(2048);
	weak = EVP_RSA_gen(1024);
	tv3_key = th_key_of_pem(th_tv3_priv_pem);
	if (plat_a == NULL || plat_b == NULL || plat_c == NULL ||
	    weak == NULL || tv3_key == NULL)
		abort();
	cert_a = mkcert(plat_a, SER_A, NOW - 86400, NOW + 5 * 365 * 86400LL);
	cert_b = mkcert(plat_b, SER_B, NOW - 86400, NOW + 5 * 365 * 86400LL);
	cert_old = mkcert(plat_b, "7777", NOW - 3 * 86400, NOW - 86400);
	cert_weak = mkcert(weak, "1234", NOW - 86400, NOW + 86400);
	cert_zero = mkcert(plat_a, "0", NOW - 86400, NOW + 86400);
	pub_c = th_pem_key(plat_c, 0);
}

static void
free_keys(void)
{
	EVP_PKEY_free(plat_a);
	EVP_PKEY_free(plat_b);
	EVP_PKEY_free(plat_c);
	EVP_PKEY_free(weak);
	EVP_PKEY_free(tv3_key);
	free(cert_a);
	free(cert_b);
	free(cert_old);
	free(cert_weak);
	free(cert_zero);
	free(pub_c);
}

/* ---- profiles ------------------------------------------------------------ */

struct prof {
	const char *appid, *mch_id, *version;
	const char *v3key;
	const char *certs[4];
	const char *pub, *pub_id;
	const char *priv, *serial;
	const char *tolerance;
	const char *api_key, *sign_type;	/* v2 keys */
};

static void
prof_v3(struct prof *p)
{
	memset(p, 0, sizeof(*p));
	p->appid = APPID;
	p->mch_id = MCHID;
	p->version = "3";
	p->v3key = V3KEY;
	p->certs[0] = cert_a;
	p->certs[1] = cert_b;
	p->certs[2] = cert_old;
	p->pub = pub_c;
	p->pub_id = PUB_ID;
	p->priv = th_tv3_priv_pem;
	p->serial = TV3_SERIAL;
}

static int
mkprof(const struct prof *p, void **ctx)
{
	static struct th_conf c;
	const struct {
		const char *name, *s;
	} f[] = {
		{ "appid", p->appid },
		{ "mch_id", p->mch_id },
		{ "api_version", p->version },
		{ "apiv3_key_file", p->v3key },
		{ "platform_public_key_file", p->pub },
		{ "platform_public_key_id", p->pub_id },
		{ "merchant_private_key_file", p->priv },
		{ "merchant_serial", p->serial },
		{ "timestamp_tolerance_s", p->tolerance },
		{ "api_key_file", p->api_key },
		{ "sign_type", p->sign_type },
	};
	size_t i;

	th_conf_init(&c, payhook_provider(), "v3test");
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		th_conf_set(&c, f[i].name, f[i].s);
	th_conf_files_n(&c, "platform_cert_files", p->certs, 4);
	/* Taken as a number, as the configuration would have parsed it. */
	if (p->tolerance != NULL)
		c.v[WX_CONF_TIMESTAMP_TOLERANCE_S].num =
		    strtoll(p->tolerance, NULL, 10);
	*ctx = NULL;
	return th_profile_new(payhook_provider(), &c, ctx, &d);
}

/* A context of the profile of prof_v3. */
static void *
v3ctx(void)
{
	struct prof p;
	void *ctx;

	prof_v3(&p);
	mkprof(&p, &ctx);
	return ctx;
}

/* ---- notifications, encrypted and signed here ------------------------ */

static void
b64(const unsigned char *p, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* AES-256-GCM of plain; out is base64(ciphertext || tag). */
static void
seal(const char *key, const char *nonce, const char *aad, const char *plain,
    char *out)
{
	static unsigned char ct[16384];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0;
	size_t len = strlen(plain);

	EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)strlen(nonce),
	    NULL);
	EVP_EncryptInit_ex(c, NULL, NULL, (const unsigned char *)key,
	    (const unsigned char *)nonce);
	EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad,
	    (int)strlen(aad));
	EVP_EncryptUpdate(c, ct, &n, (const unsigned char *)plain, (int)len);
	EVP_EncryptFinal_ex(c, ct + n, &f);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + len);
	EVP_CIPHER_CTX_free(c);
	b64(ct, len + 16, out);
}

/* base64 RSA-SHA256 of msg with key k. */
static void
rsa_sign(EVP_PKEY *k, const void *msg, size_t len, char *out)
{
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();

	EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k);
	EVP_DigestSign(m, sig, &siglen, msg, len);
	EVP_MD_CTX_free(m);
	b64(sig, siglen, out);
}

/* The envelope around an encrypted resource. */
static size_t
envelope(char *out, size_t cap, const char *id, const char *event_type,
    const char *otype, const char *plain, const char *aad, const char *nonce)
{
	static char ct[24000];

	seal(V3KEY, nonce, aad, plain, ct);
	return (size_t)snprintf(out, cap, "{\"id\":\"%s\","
	    "\"create_time\":\"2015-05-20T13:29:35+08:00\","
	    "\"resource_type\":\"encrypt-resource\",\"event_type\":\"%s\","
	    "\"summary\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\x88\x90\xe5\x8a\x9f\","
	    "\"resource\":{\"original_type\":\"%s\","
	    "\"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"%s\","
	    "\"associated_data\":\"%s\",\"nonce\":\"%s\"}}", id, event_type,
	    otype, ct, aad, nonce);
}

/* A decrypted transaction; amount is JSON text ("100", "12.5", "\"12\""). */
static void
tx(char *out, size_t cap, const char *order, const char *txn,
    const char *state, const char *amount)
{
	snprintf(out, cap, "{\"mchid\":\"" MCHID "\",\"appid\":\"" APPID "\","
	    "\"out_trade_no\":\"%s\",\"transaction_id\":\"%s\","
	    "\"trade_type\":\"JSAPI\",\"trade_state\":\"%s\","
	    "\"trade_state_desc\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\x88\x90"
	    "\xe5\x8a\x9f\",\"bank_type\":\"CMC\",\"attach\":\"\","
	    "\"success_time\":\"2018-06-08T10:34:56+08:00\","
	    "\"payer\":{\"openid\":\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\"},"
	    "\"amount\":{\"total\":%s,\"payer_total\":100,\"currency\":\"CNY\","
	    "\"payer_currency\":\"CNY\"},\"promotion_detail\":[{\"coupon_id\":"
	    "\"109519\",\"goods_detail\":[{\"goods_id\":\"M1006\","
	    "\"quantity\":1}]}]}", order, txn, state, amount);
}

/* Signed headers of a body: what WeChat Pay sends with it. */
struct sent {
	struct ph_header h[8];
	size_t nh;
	char ts[24], nonce[40], sig[800], serial[80];
};

static void
sign_body(struct sent *s, EVP_PKEY *k, const char *serial, long long ts,
    const char *body, size_t len)
{
	static char msg[70000];
	size_t n;

	memset(s, 0, sizeof(*s));
	snprintf(s->ts, sizeof(s->ts), "%lld", ts);
	snprintf(s->nonce, sizeof(s->nonce), "%s",
	    "593BEC0C930BF1AFEB40B4A08C8FB242");
	snprintf(s->serial, sizeof(s->serial), "%s", serial);
	n = (size_t)snprintf(msg, sizeof(msg), "%s\n%s\n", s->ts, s->nonce);
	memcpy(msg + n, body, len);
	n += len;
	msg[n++] = '\n';
	rsa_sign(k, msg, n, s->sig);
	th_wx3_headers(s->h, s->ts, s->nonce, s->sig, s->serial);
	s->h[4].name = "Wechatpay-Signature-Type";
	s->h[4].value = WX3_SCHEME;
	s->h[5].name = "Content-Type";
	s->h[5].value = "application/json";
	s->nh = 6;
}

static int
deliver(void *ctx, const struct sent *s, const char *body, size_t len,
    long long now, struct ph_event *ev)
{
	struct ph_request req;

	th_post(&req, "application/json", body, len, now);
	req.headers = s->h;
	req.nheaders = s->nh;
	d.msg[0] = '\0';
	memset(ev, 0x5a, sizeof(*ev));
	return payhook_provider()->parse_notify(ctx, &req, ev, &d);
}

/* Build, sign with plat_a, deliver at NOW. */
static char body[70000];
static size_t blen;
static struct sent snt;

static int
notify_plain(void *ctx, const char *otype, const char *plain,
    struct ph_event *ev)
{
	blen = envelope(body, sizeof(body), "EV-2018022511223320873",
	    "TRANSACTION.SUCCESS", otype, plain, "transaction", "fdasflkja484");
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	return deliver(ctx, &snt, body, blen, NOW, ev);
}

/* body as it stands, signed with the first platform certificate at t,
 * delivered at NOW. */
static int
deliver_at(void *ctx, int64_t t, struct ph_event *ev)
{
	sign_body(&snt, plat_a, SER_A, t, body, blen);
	return deliver(ctx, &snt, body, blen, NOW, ev);
}

static int
notify_raw(void *ctx, const char *raw, struct ph_event *ev)
{
	blen = strlen(raw);
	memcpy(body, raw, blen + 1);
	return deliver_at(ctx, NOW, ev);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_table(void)
{
	/* The kind of value a key takes. */
	static const struct {
		int key;
		enum ph_conf_type type;
		const char *what;
	} kind[] = {
		{ WX_CONF_API_VERSION, PH_CONF_ENUM, "api_version is an enum" },
		{ WX_CONF_APIV3_KEY_FILE, PH_CONF_SECRET_FILE,
		    "apiv3_key_file is a secret file" },
		{ WX_CONF_PLATFORM_CERT_FILES, PH_CONF_FILES,
		    "platform_cert_files takes several files" },
		{ WX_CONF_MERCHANT_PRIVATE_KEY_FILE, PH_CONF_SECRET_FILE,
		    "merchant_private_key_file is secret" },
	};
	const struct ph_provider *p = payhook_provider();
	size_t i;

	is_str(p->conf_keys[WX_CONF_API_VERSION].name, "api_version",
	    "table: api_version key");
	for (i = 0; i < sizeof(kind) / sizeof(kind[0]); i++)
		is_int(p->conf_keys[kind[i].key].type, kind[i].type,
		    kind[i].what);
	is_str(p->conf_keys[WX_CONF_API_VERSION].def, "2",
	    "api_version defaults to 2");
	ok(p->conf_keys[WX_CONF_TIMESTAMP_TOLERANCE_S].type == PH_CONF_INT &&
	    p->conf_keys[WX_CONF_TIMESTAMP_TOLERANCE_S].def == NULL,
	    "timestamp_tolerance_s: INT, default applied by the plugin");
	ok(p->conf_keys[WX_CONF_API_KEY_FILE].required == 0 &&
	    p->conf_keys[WX_CONF_SIGN_TYPE].def == NULL,
	    "v2-only keys: not required by the table, no table default");
	ok((p->caps & PH_CAP_QUERY) && p->query_request != NULL &&
	    p->query_response != NULL, "table: query entries set");
}

static void
test_profiles(void)
{
	/* The v3 profile with one field (its offset) set to value: refused. */
#define PROF(field) offsetof(struct prof, field)
	const struct {
		size_t field;
		const char *value, *what;
	} refused[] = {
		{ PROF(v3key), "0123456789abcdef ABCDEFGHijklmno",
		    "v3: APIv3 key with a space" },
		{ PROF(pub_id), NULL, "v3: public key without id" },
		{ PROF(pub_id), "KEY_0114232134912410000000000000000000",
		    "v3: id without PUB_KEY_ID_" },
		{ PROF(pub), cert_a,
		    "v3: a certificate where the public key is expected" },
		{ PROF(certs[0]), pub_c, "v3: a public key where a certificate "
		    "is expected" },
		{ PROF(certs[0]), cert_weak,
		    "v3: RSA-1024 certificate refused" },
		{ PROF(certs[0]), cert_zero, "v3: serial number 0 refused" },
		{ PROF(serial), NULL,
		    "v3: merchant key without merchant_serial" },
		{ PROF(priv), NULL, "v3: merchant_serial without the key" },
		{ PROF(serial), "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DG",
		    "v3: merchant_serial not hex" },
		{ PROF(priv), th_tv3_pub_pem, "v3: public key as the merchant "
		    "private key refused" },
		{ PROF(tolerance), "0", "v3: tolerance 0 refused" },
		{ PROF(version), "4", "api_version 4 refused" },
		{ PROF(sign_type), "MD5", "v3: sign_type refused" },
	};
#undef PROF
	struct prof p;
	void *ctx;
	struct wx_ctx *c;
	size_t i;

	prof_v3(&p);
	is_int(mkprof(&p, &ctx), PH_OK, "v3 profile: certificates, public key "
	    "and merchant key");
	c = ctx;
	ok(c != NULL && c->api_version == 3 && c->v3 != NULL &&
	    c->v3->nkeys == 4, "v3 profile: four platform keys");
	if (c != NULL && c->v3 != NULL && c->v3->nkeys == 4) {
		is_str(c->v3->keys[0].serial, SER_A, "certificate serial in "
		    "upper-case hex");
		is_str(c->v3->keys[1].serial, "ABCDEF0123456789",
		    "certificate serial without leading zeros");
		is_str(c->v3->keys[3].serial, PUB_ID, "public key id");
		is_int(c->v3->tolerance, 300, "tolerance defaults to 300 s");
	}
	payhook_provider()->profile_free(ctx);

	prof_v3(&p);
	p.certs[0] = NULL;
	p.priv = p.serial = NULL;
	p.tolerance = "60";
	is_int(mkprof(&p, &ctx), PH_OK, "v3 profile: public key only, no "
	    "merchant key");
	c = ctx;
	ok(c != NULL && c->v3->nkeys == 1 && c->v3->tolerance == 60 &&
	    c->v3->merchant_key == NULL, "public key mode, tolerance 60");
	payhook_provider()->profile_free(ctx);

	prof_v3(&p);
	p.pub = p.pub_id = NULL;
	is_int(mkprof(&p, &ctx), PH_OK, "v3 profile: certificates only");
	payhook_provider()->profile_free(ctx);

	prof_v3(&p);
	p.v3key = NULL;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v3: apiv3_key_file required");
	ok(ctx == NULL && strstr(d.msg, "apiv3_key_file") != NULL,
	    "v3: no context, the diagnostic names the key");
	prof_v3(&p);
	p.v3key = "0123456789abcdefABCDEFGHijklmno";
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v3: 31-byte APIv3 key refused");
	ok(strstr(d.msg, "32") != NULL && strstr(d.msg, "0123456") == NULL,
	    "v3: key length named, key not shown");
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		prof_v3(&p);
		*(const char **)((char *)&p + refused[i].field) =
		    refused[i].value;
		is_int(mkprof(&p, &ctx), PH_E_CONFIG, refused[i].what);
	}
	prof_v3(&p);
	p.certs[3] = cert_a;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v3: one certificate twice");
	ok(strstr(d.msg, SER_A) != NULL, "v3: the duplicate serial is named");
	prof_v3(&p);
	p.certs[0] = NULL;
	p.pub = p.pub_id = NULL;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v3: no platform key refused");
	ok(strstr(d.msg, "platform_cert_files") != NULL,
	    "v3: the diagnostic says which keys are needed");
	{
		char two[8192];

		snprintf(two, sizeof(two), "%s%s", cert_a, cert_b);
		prof_v3(&p);
		p.certs[0] = two;
		is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v3: two certificates "
		    "in one file refused");
		snprintf(two, sizeof(two), "%sjunk\n", cert_a);
		p.certs[0] = two;
		is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v3: trailing data "
		    "after a certificate refused");
	}

	/* Keys of one version on a profile of the other. */
	prof_v3(&p);
	p.api_key = "192006250b4c09247ec02edce69f6a2d";
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v3: api_key_file refused");
	ok(strstr(d.msg, "api_key_file") != NULL &&
	    strstr(d.msg, "api_version = 3") != NULL,
	    "v3: the diagnostic names the v2 key and the version");
	memset(&p, 0, sizeof(p));
	p.appid = APPID;
	p.mch_id = MCHID;
	p.api_key = "192006250b4c09247ec02edce69f6a2d";
	is_int(mkprof(&p, &ctx), PH_OK, "v2 profile without api_version");
	ok(ctx != NULL && ((struct wx_ctx *)ctx)->api_version == 2 &&
	    ((struct wx_ctx *)ctx)->sign_type == WX_SIGN_MD5,
	    "v2 profile: version 2, MD5 by default");
	payhook_provider()->profile_free(ctx);
	p.version = "2";
	p.v3key = V3KEY;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v2: apiv3_key_file refused");
	ok(strstr(d.msg, "apiv3_key_file") != NULL &&
	    strstr(d.msg, "api_version = 2") != NULL,
	    "v2: the diagnostic names the v3 key and the version");
	p.v3key = NULL;
	p.tolerance = "300";
	is_int(mkprof(&p, &ctx), PH_E_CONFIG,
	    "v2: timestamp_tolerance_s refused");
	p.tolerance = NULL;
	p.certs[0] = cert_a;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v2: platform_cert_files "
	    "refused");
	p.certs[0] = NULL;
	p.api_key = NULL;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "v2: api_key_file required");
}

static void
test_notify(void)
{
	/* A decrypted transaction of order, trade_state and amount.total,
	 * with part of it (NULL: none) overwritten by with: refused. */
	static const struct {
		const char *order, *state, *amount, *part, *with;
		int rc;
		const char *what;
	} bad_tx[] = {
		{ "A1", "SUCCESS", "\"12\"", NULL, NULL, PH_E_FIELD,
		    "amount \"12\" refused" },
		{ "A1", "SUCCESS", "1e2", NULL, NULL, PH_E_FIELD,
		    "amount 1e2 refused" },
		{ "A1", "SUCCESS", "-1", NULL, NULL, PH_E_FIELD,
		    "amount -1 refused" },
		{ "A1", "SUCCESS", "1000000000000001", NULL, NULL, PH_E_FIELD,
		    "amount over PH_AMOUNT_MAX refused" },
		{ "A1", "SUCCESS", "99999999999999999999", NULL, NULL,
		    PH_E_MALFORMED, "amount beyond 64 bits refused" },
		{ "A1", "SUCCESS", "1,\"total\":100000", NULL, NULL,
		    PH_E_MALFORMED, "amount.total given twice refused" },
		{ "A1", "SUCCESS", "1", "\"transaction_id\"",
		    "\"transactionXid\"", PH_E_FIELD,
		    "missing transaction_id refused" },
		{ "A1", "SUCCESS", "1", MCHID, "1230000108", PH_E_MERCHANT,
		    "another mchid refused" },
		{ "A1", "SUCCESS", "1", APPID, "wxd678efh567hg6788",
		    PH_E_MERCHANT, "another appid refused" },
		{ "A1", "SUCCESS", "1", "+08:00", "+0800Z", PH_E_FIELD,
		    "success_time without the offset colon refused" },
		{ "A\"1", "SUCCESS", "1", NULL, NULL, PH_E_MALFORMED,
		    "broken plaintext JSON refused" },
		{ "A 1", "SUCCESS", "1", NULL, NULL, PH_E_FIELD,
		    "out_trade_no with a space refused" },
		{ "A1", "SUCCESS", "1", "\"CNY\"", "\"cny\"", PH_E_FIELD,
		    "lower-case currency refused" },
		{ "A1", "WEIRD", "1", NULL, NULL, PH_E_FIELD,
		    "unknown trade_state refused" },
	};
	/* Ciphertexts (base64) too short to hold a GCM tag and data. */
	static const struct th_case short_ct[] = {
		{ "AAAAAAAAAAAAAAAAAAAAAA==",
		    "ciphertext of 16 bytes (a tag and nothing) refused" },
		{ "AAAA", "ciphertext of 3 bytes refused before subtracting "
		    "the tag" },
	};
	struct ph_event ev;
	struct prof p;
	void *ctx;
	char plain[8192], raw[70000];
	size_t i;

	ctx = v3ctx();

	tx(plain, sizeof(plain), "1217752501201407033233368018",
	    "4200000123202306011234567890", "SUCCESS", "100");
	is_int(notify_plain(ctx, "transaction", plain, &ev), PH_OK,
	    "TRANSACTION.SUCCESS: verified and decrypted");
	is_event(&ev, "TRANSACTION.SUCCESS", PH_EV_PAYMENT_SUCCEEDED,
	    "1217752501201407033233368018", "4200000123202306011234567890", 100,
	    "CNY", 1528425296, "pay:4200000123202306011234567890");
	is_str(ev.refund_id, "", "no refund id");

	/* Certificate rotation: the second certificate, and the public key. */
	sign_body(&snt, plat_b, "ABCDEF0123456789", NOW, body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_OK,
	    "signed with the second (rotated) certificate");
	sign_body(&snt, plat_c, PUB_ID, NOW, body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_OK,
	    "signed with the WeChat Pay public key (PUB_KEY_ID_...)");
	sign_body(&snt, plat_b, SER_B, NOW, body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_OK,
	    "the serial with its leading zero (WeChat writes the serial's "
	    "bytes) names the same certificate");
	sign_body(&snt, plat_b, "000abcdef0123456789", NOW, body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_OK,
	    "... so do lower case and more zeros: the same number");
	sign_body(&snt, plat_b, "ABCDEF012345678", NOW, body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "another number is another certificate");
	sign_body(&snt, plat_b, "7777", NOW, body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "expired platform certificate refused");
	ok(strstr(d.msg, "7777") && strstr(d.msg, "not valid"),
	    "expired certificate: diagnostic");

	/* Header names are compared without case. */
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	snt.h[0].name = "WECHATPAY-TIMESTAMP";
	snt.h[2].name = "wechatpay-signature";
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_OK,
	    "header names in any case");

	/* Freshness: 300 s either way is accepted, 301 is not. */
	is_int(deliver_at(ctx, NOW - 300, &ev), PH_OK,
	    "timestamp 300 s old accepted");
	is_int(deliver_at(ctx, NOW - 301, &ev), PH_E_SIGNATURE,
	    "timestamp 301 s old refused");
	ok(th_event_empty(&ev), "refusal leaves an empty event");
	ok(strstr(d.msg, "Wechatpay-Timestamp") != NULL,
	    "stale: diagnostic names the header");
	is_int(deliver_at(ctx, NOW + 301, &ev), PH_E_SIGNATURE,
	    "timestamp 301 s ahead refused");
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	snprintf(snt.ts, sizeof(snt.ts), "+%lld", NOW);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "timestamp with a sign refused");

	/* Signature and key selection. */
	sign_body(&snt, tv3_key, SER_A, NOW, body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "signed by another key refused");
	sign_body(&snt, plat_a, "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NOW,
	    body, blen);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "unknown Wechatpay-Serial refused");
	ok(strstr(d.msg, "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF") != NULL &&
	    strstr(d.msg, "unknown") != NULL,
	    "unknown serial: the diagnostic names it");
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	snprintf(snt.sig, sizeof(snt.sig), "WECHATPAY/SIGNTEST/%s",
	    "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uib");
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "WECHATPAY/SIGNTEST/ probe refused");
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	snt.h[4].value = "WECHATPAY2-SHA256-RSA1024";
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "another Wechatpay-Signature-Type refused");
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	snt.nh = 4;
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_OK,
	    "Wechatpay-Signature-Type may be absent");
	for (i = 0; i < 4; i++) {
		sign_body(&snt, plat_a, SER_A, NOW, body, blen);
		snt.h[i].name = "X-Other";
		is_int(deliver(ctx, &snt, body, blen, NOW, &ev),
		    PH_E_SIGNATURE, "each Wechatpay-* header is required");
	}
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	snt.h[5].name = "Wechatpay-Serial";
	snt.h[5].value = SER_A;
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "a Wechatpay-* header sent twice refused");
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	snprintf(snt.nonce, sizeof(snt.nonce), "a\nb");
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "a nonce with a newline refused");

	/* Tampering. */
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	body[blen - 3] ^= 1;
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "tampered body refused");
	body[blen - 3] ^= 1;
	is_int(deliver(ctx, &snt, body, blen - 1, NOW, &ev), PH_E_SIGNATURE,
	    "truncated body refused");
	{
		char *ctp = strstr(body, "\"ciphertext\":\"") + 14;
		char *end = strchr(ctp, '"');

		ctp[4] = ctp[4] == 'A' ? 'B' : 'A';
		sign_body(&snt, plat_a, SER_A, NOW, body, blen);
		is_int(deliver(ctx, &snt, body, blen, NOW, &ev),
		    PH_E_SIGNATURE, "tampered ciphertext, validly signed, "
		    "refused by the GCM tag");
		ok(strstr(d.msg, "AES-256-GCM") != NULL,
		    "tampered ciphertext: diagnostic");
		ctp[4] = ctp[4] == 'A' ? 'B' : 'A';
		/* the last base64 quantum carries the tag's last bytes */
		end[-4] = end[-4] == 'A' ? 'B' : 'A';
		sign_body(&snt, plat_a, SER_A, NOW, body, blen);
		is_int(deliver(ctx, &snt, body, blen, NOW, &ev),
		    PH_E_SIGNATURE, "tampered tag refused");
		ok(th_event_empty(&ev), "tampered tag: no partial event");
	}
	blen = envelope(body, sizeof(body), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "transaction", "fdasflkja484");
	{
		char *aad = strstr(body, "\"associated_data\":\"transaction\"");

		memcpy(aad + 19, "TRANSACTION", 11);
	}
	is_int(deliver_at(ctx, NOW, &ev), PH_E_SIGNATURE,
	    "wrong associated_data refused");
	blen = envelope(body, sizeof(body), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	is_int(deliver_at(ctx, NOW, &ev), PH_OK,
	    "empty associated_data is fed and checks");
	blen = envelope(body, sizeof(body), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja48");
	is_int(deliver_at(ctx, NOW, &ev), PH_E_FIELD,
	    "an 11-byte GCM nonce refused");
	/* A short ciphertext: the tag alone, no data, or less. */
	for (i = 0; i < sizeof(short_ct) / sizeof(short_ct[0]); i++) {
		snprintf(raw, sizeof(raw), "{\"id\":\"EV-1\",\"event_type\":"
		    "\"TRANSACTION.SUCCESS\",\"resource_type\":"
		    "\"encrypt-resource\",\"resource\":{\"original_type\":"
		    "\"transaction\",\"algorithm\":\"AEAD_AES_256_GCM\","
		    "\"ciphertext\":\"%s\",\"associated_data\":\"\","
		    "\"nonce\":\"fdasflkja484\"}}", short_ct[i].in);
		is_int(notify_raw(ctx, raw, &ev), PH_E_SIGNATURE,
		    short_ct[i].what);
	}

	/* The envelope, strictly. */
	is_int(notify_raw(ctx, "{\"id\":\"EV-1\",\"id\":\"EV-2\"}", &ev),
	    PH_E_MALFORMED, "duplicate key in the envelope refused");
	blen = envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(raw + blen - 1, ",\"resource_type\":\"x\"}", 22);
	is_int(notify_raw(ctx, raw, &ev), PH_E_MALFORMED,
	    "a second resource_type refused");
	blen = envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(raw + blen, " x", 3);
	is_int(notify_raw(ctx, raw, &ev), PH_E_MALFORMED,
	    "trailing bytes after the JSON refused");
	blen = envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(strstr(raw, "AEAD_AES_256_GCM"), "AEAD_AES_128_GCM", 16);
	is_int(notify_raw(ctx, raw, &ev), PH_E_UNSUPPORTED,
	    "another algorithm refused");
	blen = envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(strstr(raw, "encrypt-resource"), "plain---resource", 16);
	is_int(notify_raw(ctx, raw, &ev), PH_E_UNSUPPORTED,
	    "resource_type other than encrypt-resource refused");
	is_int(notify_raw(ctx, "{\"id\":\"EV-1\",\"a\":[[[[[[1]]]]]]}", &ev),
	    PH_E_MALFORMED, "an envelope nested too deep refused");
	is_int(notify_raw(ctx, "{\"id\":\"EV-\xc0\xaf\"}", &ev),
	    PH_E_MALFORMED, "invalid UTF-8 refused");
	is_int(notify_raw(ctx, "[1]", &ev), PH_E_MALFORMED,
	    "a top-level array refused");
	blen = 0;
	sign_body(&snt, plat_a, SER_A, NOW, "", 0);
	is_int(deliver(ctx, &snt, "", 0, NOW, &ev), PH_E_MALFORMED,
	    "empty body refused");

	/* The decrypted resource, strictly. */
	tx(plain, sizeof(plain), "A1", "42000001", "SUCCESS", "12.5");
	is_int(notify_plain(ctx, "transaction", plain, &ev), PH_E_FIELD,
	    "amount 12.5 refused");
	ok(strstr(d.msg, "amount.total") != NULL, "amount: path named");
	for (i = 0; i < sizeof(bad_tx) / sizeof(bad_tx[0]); i++) {
		tx(plain, sizeof(plain), bad_tx[i].order, "42000001",
		    bad_tx[i].state, bad_tx[i].amount);
		if (bad_tx[i].part != NULL)
			memcpy(strstr(plain, bad_tx[i].part), bad_tx[i].with,
			    strlen(bad_tx[i].with));
		is_int(notify_plain(ctx, "transaction", plain, &ev),
		    bad_tx[i].rc, bad_tx[i].what);
	}
	tx(plain, sizeof(plain), "A1", "42000001", "SUCCESS", "1");
	snprintf(raw, sizeof(raw), "{\"sub_mchid\":\"1900000109\",%s",
	    plain + 1);
	is_int(notify_plain(ctx, "transaction", raw, &ev), PH_E_MERCHANT,
	    "service-provider sub_mchid refused");

	/* Mapping of the other states and events. */
	tx(plain, sizeof(plain), "A1", "42000001", "NOTPAY", "1");
	is_int(notify_plain(ctx, "transaction", plain, &ev), PH_OK,
	    "trade_state NOTPAY accepted");
	ok(ev.kind == PH_EV_PAYMENT_PENDING &&
	    strcmp(ev.dedup_key, "notify:EV-2018022511223320873") == 0,
	    "NOTPAY: pending, deduplicated by the notification id");
	tx(plain, sizeof(plain), "A1", "42000001", "CLOSED", "1");
	notify_plain(ctx, "transaction", plain, &ev);
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "CLOSED: payment closed");
	tx(plain, sizeof(plain), "A1", "42000001", "PAYERROR", "1");
	notify_plain(ctx, "transaction", plain, &ev);
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "PAYERROR: payment failed");
	/* The envelope says success, the decrypted state does not: the
	 * decrypted state wins. */
	tx(plain, sizeof(plain), "A1", "42000001", "NOTPAY", "1");
	blen = envelope(body, sizeof(body), "EV-9", "TRANSACTION.SUCCESS",
	    "transaction", plain, "transaction", "fdasflkja484");
	memcpy(strstr(body, "\"summary\":\""), "\"summary\":\"", 11);
	sign_body(&snt, plat_a, SER_A, NOW, body, blen);
	deliver(ctx, &snt, body, blen, NOW, &ev);
	is_int(ev.kind, PH_EV_PAYMENT_PENDING, "TRANSACTION.SUCCESS over a "
	    "NOTPAY resource is not a payment");

	snprintf(plain, sizeof(plain), "{\"mchid\":\"" MCHID "\","
	    "\"out_trade_no\":\"1217752501201407033233368018\","
	    "\"transaction_id\":\"1217752501201407033233368018\","
	    "\"out_refund_no\":\"R1217752501201407033233368@1\","
	    "\"refund_id\":\"1217752501201407033233368018\","
	    "\"refund_status\":\"SUCCESS\","
	    "\"success_time\":\"2018-06-08T10:34:56+08:00\","
	    "\"user_received_account\":\"\xe6\x8b\x9b\xe5\x95\x86\","
	    "\"amount\":{\"total\":999,\"refund\":990,\"payer_total\":999,"
	    "\"payer_refund\":990}}");
	is_int(notify_plain(ctx, "refund", plain, &ev), PH_OK,
	    "REFUND.SUCCESS accepted");
	ok(ev.kind == PH_EV_REFUND_SUCCEEDED && ev.amount == 990 &&
	    strcmp(ev.refund_id, "1217752501201407033233368018") == 0 &&
	    strcmp(ev.merchant_refund_id, "R1217752501201407033233368@1") ==
	    0 &&
	    strcmp(ev.currency, "CNY") == 0 && ev.occurred_at == 1528425296 &&
	    strcmp(ev.dedup_key, "notify:EV-2018022511223320873") == 0,
	    "refund: amount.refund, refund_id, out_refund_no, CNY, time, "
	    "notification id");
	memcpy(strstr(plain, "368@1"), "368 1", 5);
	is_int(notify_plain(ctx, "refund", plain, &ev), PH_E_FIELD,
	    "refund with an invalid out_refund_no refused");
	memcpy(strstr(plain, "368 1"), "368@1", 5);
	memcpy(strstr(plain, "\"SUCCESS\""), "\"CLOSED\" ", 9);
	notify_plain(ctx, "refund", plain, &ev);
	is_int(ev.kind, PH_EV_REFUND_FAILED, "refund CLOSED: refund failed");
	memcpy(strstr(plain, MCHID), "1230000108", 10);
	is_int(notify_plain(ctx, "refund", plain, &ev), PH_E_MERCHANT,
	    "refund of another mchid refused");

	snprintf(plain, sizeof(plain), "{\"mchid\":\"" MCHID "\","
	    "\"contract_id\":\"Wx15463511252015071056489715\"}");
	is_int(notify_plain(ctx, "contract", plain, &ev), PH_OK,
	    "an original_type payhook does not act on is acknowledged");
	ok(ev.kind == PH_EV_IGNORED && strcmp(ev.order_id, "-") == 0 &&
	    strcmp(ev.dedup_key, "notify:EV-2018022511223320873") == 0,
	    "ignored: kind, placeholder order id, notification id");
	payhook_provider()->profile_free(ctx);

	/* A profile with a tolerance of 60 s. */
	prof_v3(&p);
	p.tolerance = "60";
	mkprof(&p, &ctx);
	tx(plain, sizeof(plain), "A1", "42000001", "SUCCESS", "1");
	blen = envelope(body, sizeof(body), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "transaction", "fdasflkja484");
	is_int(deliver_at(ctx, NOW - 61, &ev), PH_E_SIGNATURE,
	    "tolerance 60: 61 s old refused");
	is_int(deliver_at(ctx, NOW - 60, &ev), PH_OK,
	    "tolerance 60: 60 s old accepted");
	payhook_provider()->profile_free(ctx);

	/* Another APIv3 key cannot decrypt. */
	prof_v3(&p);
	p.v3key = "ZZZZ456789abcdefABCDEFGHijklmnop";
	mkprof(&p, &ctx);
	is_int(deliver(ctx, &snt, body, blen, NOW, &ev), PH_E_SIGNATURE,
	    "another APIv3 key: refused by the tag");
	payhook_provider()->profile_free(ctx);
}

static void
test_time(void)
{
	/* Times of 2018-06-08 02:34:56 UTC. */
	static const struct th_case same[] = {
		{ "2018-06-08T10:34:56+08:00", "RFC 3339 +08:00" },
		{ "2018-06-08T02:34:56Z", "RFC 3339 Z" },
		{ "2018-06-07T21:04:56-05:30", "RFC 3339 -05:30" },
		{ "2018-06-08T02:34:56.123Z", "fractional seconds dropped" },
	};
	static const struct th_case refused[] = {
		{ "2018-06-08 10:34:56+08:00", "space for T refused" },
		{ "2018-02-30T10:34:56+08:00", "February 30 refused" },
		{ "2018-06-08T10:34:56+24:00", "offset of 24 h refused" },
		{ "2018-06-08T10:34:56", "no offset refused" },
		{ "2018-06-08T10:34:56+08:00 ", "trailing space refused" },
		{ "2018-06-08T10:34:56.Z", "empty fraction refused" },
	};
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		ok(wx3_time(same[i].in, &t) == PH_OK && t == 1528425296,
		    "%s", same[i].what);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ok(wx3_time(refused[i].in, &t) != PH_OK, "%s",
		    refused[i].what);
}

static void
test_ack(void)
{
	struct ph_response r;
	void *ctx;

	ctx = v3ctx();
	payhook_provider()->ack(ctx, PH_ACK_OK, NULL, &r);
	ok(r.status == 204 && r.body_len == 0 && r.content_type[0] == '\0',
	    "v3 ack: success is 204 with no body");
	payhook_provider()->ack(ctx, PH_ACK_REFUSED,
	    "signature verification failed", &r);
	is_int(r.status, 400, "v3 ack: refused is 400");
	ok(r.body_len == strlen("{\"code\":\"FAIL\",\"message\":\"signature "
	    "verification failed\"}") && memcmp(r.body, "{\"code\":\"FAIL\","
	    "\"message\":\"signature verification failed\"}", r.body_len) == 0,
	    "v3 ack: {\"code\":\"FAIL\",\"message\":...}");
	is_str(r.content_type, "application/json", "v3 ack: JSON");
	payhook_provider()->ack(ctx, PH_ACK_RETRY, "temporarily unavailable",
	    &r);
	ok(r.status == 500 && r.body_len > 0, "v3 ack: retry is 500");
	payhook_provider()->ack(ctx, PH_ACK_REFUSED, "say \"hi\"\n\\", &r);
	ok(r.status == 400 && r.body_len == strlen("{\"code\":\"FAIL\","
	    "\"message\":\"say \\\"hi\\\"\\\\\"}"), "v3 ack: reason escaped, "
	    "control characters dropped");
	payhook_provider()->ack(ctx, PH_ACK__MAX, NULL, &r);
	ok(r.status == 500 && r.body_len == 0, "v3 ack: unknown kind is a "
	    "bare 500");
	payhook_provider()->profile_free(ctx);
}

/* ---- the official worked examples ---------------------------------------- */

/* The lines a v3 signature is made over: l[i] is parts[i], i < n. */
static void
lines_of(struct wx3_line *l, const char *const *parts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		l[i].p = parts[i];
		l[i].n = strlen(parts[i]);
	}
}

static void
test_tv3_tv4(void)
{
	static const char tv3_body[] = "{\"appid\":\"wxd678efh567hg6787\","
	    "\"mchid\":\"1900007291\",\"description\":\"Image\xe5\xbd\xa2"
	    "\xe8\xb1\xa1\xe5\xba\x97-\xe6\xb7\xb1\xe5\x9c\xb3\xe8\x85\xbe"
	    "\xe5\xa4\xa7-QQ\xe5\x85\xac\xe4\xbb\x94\",\"out_trade_no\":"
	    "\"1217752501201407033233368018\",\"notify_url\":"
	    "\"https://www.weixin.qq.com/wxpay/pay.php\",\"amount\":"
	    "{\"total\":100,\"currency\":\"CNY\"},\"payer\":{\"openid\":"
	    "\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\"}}";
	static const char tv3_sig[] =
	    "jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1O"
	    "QBbKYhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1"
	    "CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg"
	    "6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe"
	    "5kwoDpw4Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdU"
	    "toE0liJGW3RGUNE0t4v01A==";
	static const char tv4_sig[] =
	    "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uib"
	    "cLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfR"
	    "W4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcI"
	    "LgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bd"
	    "u1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBx"
	    "KJ+qk5N61J7caYoepHFaxw==";
	/* What TV-3 signs, and TV-4 (the JSAPI paySign). */
	const char *const tv3_lines[] = { "POST", "/v3/pay/transactions/jsapi",
	    "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", tv3_body };
	static const char *const tv4_lines[] = { "wx2421b1c4370ec43b",
	    "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242",
	    "prepay_id=wx201410272009395522657a690389285100" };
	struct wx3_line l[5];
	struct ph_buf sig, msg, auth;
	unsigned char md[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	struct wx_ctx *c;
	struct prof p;
	void *ctx;

	prof_v3(&p);
	p.mch_id = "1900007291";
	is_int(mkprof(&p, &ctx), PH_OK, "TV-3 merchant profile with the "
	    "official test key");
	c = ctx;

	lines_of(l, tv3_lines, 5);
	ph_buf_init(&msg, 4096);
	wx3_message(l, 5, &msg);
	is_int(msg.len, 372, "TV-3: the sign string is 372 bytes");
	ph_sha256(msg.data, msg.len, md);
	ph_hex_lower(md, sizeof(md), hex);
	is_str(hex, "87a9f84cd9b4bdb78ec4dbe4595c8c8bf04d3e79a6765b2100741d1a"
	    "473d37af", "TV-3: SHA-256 of the sign string");
	ph_buf_free(&msg);
	ph_buf_init(&sig, 4096);
	is_int(wx3_sign_lines(c->v3, l, 5, &sig, &d), PH_OK, "TV-3: signed");
	is_str(sig.data, tv3_sig, "TV-3: the official signature, exactly");
	ph_buf_free(&sig);

	ph_buf_init(&auth, 4096);
	is_int(wx3_authorization(c, "POST", "/v3/pay/transactions/jsapi",
	    1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242",
	    (const unsigned char *)tv3_body, strlen(tv3_body), &auth, &d),
	    PH_OK, "TV-3: Authorization header built");
	is_str(auth.data, "WECHATPAY2-SHA256-RSA2048 mchid=\"1900007291\","
	    "nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\"" "jnks"
	    "4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKY"
	    "hFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9Qi"
	    "JuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4E"
	    "zwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4"
	    "Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW"
	    "3RGUNE0t4v01A==\",timestamp=\"1554208460\",serial_no=\""
	    TV3_SERIAL "\"", "TV-3: the whole Authorization header");
	ph_buf_free(&auth);

	lines_of(l, tv4_lines, 4);
	ph_buf_init(&sig, 4096);
	is_int(wx3_sign_lines(c->v3, l, 4, &sig, &d), PH_OK, "TV-4: signed");
	is_str(sig.data, tv4_sig, "TV-4: the official JSAPI paySign, exactly");
	ph_buf_free(&sig);
	payhook_provider()->profile_free(ctx);
}

static void
test_tv5(void)
{
	static const char body5[] =
	    "{\"code_url\":\"weixin://wxpay/bizpayurl?pr=JyC91EIz1\"}";
	static const char sig5[] =
	    "mfI1CPqvBrgcXfgXMFjdNIhBf27ACE2YyeWsWV9ZI7T7RU0vHvbQpu9Z32ogzc+k"
	    "8ZC5n3kz7h70eWKjgqNdKQF0eRp8mVKlmfzMLBVHbssB9jEZEDXThOX1XFqX7s7y"
	    "mia1hoHQxQagPGzkdWxtlZPZ4ZPvr1RiqkgAu6Is8MZgXXrRoBKqjmSdrP1N7uxz"
	    "J/cjfSiis9FiLjuADoqmQ1P7p2N876YPAol7Rn0+GswwAwxldbdLrmVSjfytfSBJ"
	    "FqTMHn4itojgxSWWN1byuckQt8hSTEv/Lg97QoeGniYP17T80pJeQyL3b+295FPH"
	    "SO2AtvCgyIbKMZ0BALilAA==";
	struct ph_header h[5] = {
		{ "Wechatpay-Timestamp", "1722850421" },
		{ "Wechatpay-Nonce", "d824f2e086d3c1df967785d13fcd22ef" },
		{ "Wechatpay-Serial",
		    "PUB_KEY_ID_0000000000000024101100397200000006" },
		{ "Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048" },
		{ "Wechatpay-Signature", sig5 },
	};
	char copy[sizeof(body5)];
	struct wx_ctx *c;
	struct prof p;
	void *ctx;
	size_t i;
	int bad = 0;

	prof_v3(&p);
	p.certs[0] = NULL;
	p.pub = th_tv5_pub_pem;
	p.pub_id = "PUB_KEY_ID_0000000000000024101100397200000006";
	is_int(mkprof(&p, &ctx), PH_OK, "TV-5: profile with the official "
	    "WeChat Pay public key");
	c = ctx;
	/* The example is from 2024: freshness is checked against the
	 * example's own time. */
	is_int(wx3_verify(c->v3, h, 5, (const unsigned char *)body5,
	    strlen(body5), 1722850421, "answer", &d), PH_OK,
	    "TV-5: the official answer verifies");
	is_int(wx3_verify(c->v3, h, 5, (const unsigned char *)body5,
	    strlen(body5), NOW, "answer", &d), PH_E_SIGNATURE,
	    "TV-5: but not years later (freshness)");
	for (i = 0; i < strlen(body5); i++) {
		memcpy(copy, body5, sizeof(body5));
		copy[i] ^= 0x01;
		if (wx3_verify(c->v3, h, 5, (const unsigned char *)copy,
		    strlen(body5), 1722850421, "answer", &d) !=
		    PH_E_SIGNATURE)
			bad++;
	}
	is_int(bad, 0, "TV-5: flipping any bit of any body byte fails");
	h[2].value = "PUB_KEY_ID_0000000000000024101100397200000007";
	is_int(wx3_verify(c->v3, h, 5, (const unsigned char *)body5,
	    strlen(body5), 1722850421, "answer", &d), PH_E_SIGNATURE,
	    "TV-5: another key id is unknown");
	payhook_provider()->profile_free(ctx);
}

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

/* The Authorization header of prof_v3's requests at fixed_cc's time and
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
	struct prof p;
	void *ctx;

	fixed_cc(&cc);
	prof_v3(&p);
	p.priv = p.serial = NULL;
	mkprof(&p, &ctx);
	is_int(close ? pv->close_request(ctx, order_ref("A1"), &cc, &r, &d) :
	    pv->query_request(ctx, order_ref("A1"), &cc, &r, &d), PH_E_CONFIG,
	    what);
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
	struct prof p;
	void *ctx;
	int found;

	ctx = v3ctx();
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
	mkprof(&p, &ctx);
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
respond(void *ctx, int close, const char *order, int status, struct sent *s,
    const char *b, struct ph_event *ev)
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
answer(void *ctx, const char *order, int status, struct sent *s,
    const char *b, struct ph_event *ev)
{
	return respond(ctx, 0, order, status, s, b, ev);
}

static int
close_answer(void *ctx, const char *order, int status, struct sent *s,
    const char *b, struct ph_event *ev)
{
	return respond(ctx, 1, order, status, s, b, ev);
}

static void
test_query_response(void)
{
	struct ph_event ev, nev;
	struct sent s;
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

	ctx = v3ctx();

	tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	sign_body(&s, plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_OK,
	    "query SUCCESS: verified");
	is_int(notify_plain(ctx, "transaction", plain, &nev), PH_OK,
	    "the same transaction as a notification");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
	    strcmp(ev.dedup_key, "pay:4200000987") == 0 &&
	    th_same_fact(&ev, &nev) && ev.occurred_at == nev.occurred_at,
	    "query and notification of one payment are one fact");

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		tx(plain, sizeof(plain), "Q1", "4200000987", states[i].state,
		    "100");
		sign_body(&s, plat_b, "ABCDEF0123456789", NOW, plain,
		    strlen(plain));
		is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_OK,
		    states[i].state);
		is_int(ev.kind, states[i].kind, states[i].state);
		if (states[i].kind != PH_EV_PAYMENT_SUCCEEDED) {
			snprintf(want, sizeof(want), "query:Q1:%s",
			    states[i].state);
			is_str(ev.dedup_key, want, "dedup key of the state");
		}
	}

	tx(plain, sizeof(plain), "Q2", "4200000987", "SUCCESS", "100");
	sign_body(&s, plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_FIELD,
	    "an answer about another order refused");
	ok(th_event_empty(&ev), "refused answer: empty event");
	is_int(answer(ctx, "Q1", 200, NULL, plain, &ev), PH_E_SIGNATURE,
	    "an unsigned 200 refused");
	tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	sign_body(&s, plat_a, SER_A, NOW, plain, strlen(plain));
	plain[strlen(plain) - 3] = '9';
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_SIGNATURE,
	    "a tampered answer refused");
	tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	sign_body(&s, plat_a, SER_A, NOW - 1000, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_SIGNATURE,
	    "a stale answer refused");
	tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "12.5");
	sign_body(&s, plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_FIELD,
	    "an answer with amount 12.5 refused");
	tx(plain, sizeof(plain), "Q1", "4200000987", "SUCCESS", "100");
	memcpy(strstr(plain, MCHID), "1230000108", 10);
	sign_body(&s, plat_a, SER_A, NOW, plain, strlen(plain));
	is_int(answer(ctx, "Q1", 200, &s, plain, &ev), PH_E_MERCHANT,
	    "an answer for another mchid refused");

	snprintf(plain, sizeof(plain), "{\"code\":\"ORDER_NOT_EXIST\","
	    "\"message\":\"\xe8\xae\xa2\xe5\x8d\x95\xe4\xb8\x8d\xe5\xad\x98"
	    "\xe5\x9c\xa8\"}");
	sign_body(&s, plat_a, SER_A, NOW, plain, strlen(plain));
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
	ctx = v3ctx();
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
	struct sent s;
	void *ctx;

	ctx = v3ctx();
	sign_body(&s, plat_a, SER_A, NOW, "", 0);
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
	sign_body(&s, plat_a, SER_A, NOW - 1000, "", 0);
	is_int(close_answer(ctx, "C1", 204, &s, "", &ev), PH_E_PROVIDER,
	    "close 204 with a stale signature: ask later");
	sign_body(&s, plat_c, SER_A, NOW, "", 0);
	is_int(close_answer(ctx, "C1", 204, &s, "", &ev), PH_E_PROVIDER,
	    "close 204 signed by another key: ask later");

	sign_body(&s, plat_a, SER_A, NOW, paid, strlen(paid));
	is_int(close_answer(ctx, "C1", 400, &s, paid, &ev), PH_OK,
	    "close 400 ORDERPAID, signed: an answer");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED && ev.txn_id[0] == '\0' &&
	    ev.amount == 0 && strcmp(ev.dedup_key, "close:C1:ORDERPAID") == 0,
	    "ORDERPAID: 'paid' without a transaction: the core queries");
	is_int(close_answer(ctx, "C1", 400, NULL, paid, &ev), PH_E_PROVIDER,
	    "close 400 ORDERPAID unsigned: ask later");
	sign_body(&s, plat_a, SER_A, NOW, closed, strlen(closed));
	is_int(close_answer(ctx, "C1", 400, &s, closed, &ev), PH_OK,
	    "close 400 ORDER_CLOSED, signed: closed already");
	ok(ev.kind == PH_EV_PAYMENT_CLOSED &&
	    strcmp(ev.dedup_key, "close:C1:ORDER_CLOSED") == 0,
	    "ORDER_CLOSED: payment closed");
	sign_body(&s, plat_a, SER_A, NOW, gone, strlen(gone));
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
	make_keys();
	test_table();
	test_profiles();
	test_notify();
	test_time();
	test_ack();
	test_tv3_tv4();
	test_tv5();
	test_query_request();
	test_query_response();
	test_close_request();
	test_close_response();
	free_keys();
	return done_testing();
}
