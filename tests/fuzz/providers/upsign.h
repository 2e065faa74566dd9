/*
 * Signing for the UnionPay fuzz targets, included after unionpay_test.h: a
 * test PKI made at start (root, middle, UnionPay's signing leaf, the
 * merchant's key) and the ACP 5.1.0 signature over fuzzed fields, so that
 * inputs reach the code behind the verifier, which runs unchanged.
 * It also defines the targets' fz_init() and fz_fini(), which make and
 * free the PKI and the profile fz_ctx.
 */
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "../../unit/lib/helpers.h"

#define FZ_MER_ID	"777290058110048"
#define FZ_DAY		86400L

static EVP_PKEY *fz_leaf_key, *fz_ca_key;
static char *fz_root, *fz_mid, *fz_leaf, *fz_mer_key_pem, *fz_mer_cert;
static int64_t fz_now;

static __attribute__((unused)) X509 *
fz_cert(EVP_PKEY *key, const char *o, const char *cn, X509 *issuer,
    EVP_PKEY *ikey, long serial, int ca)
{
	const char *const name[] = { "C", "CN", "O", o, "CN", cn, NULL };
	char hex[24];
	const struct th_cert c = { key, name, issuer, ikey, hex,
	    fz_now - 100 * FZ_DAY, fz_now + 700 * FZ_DAY, ca, 0 };

	snprintf(hex, sizeof(hex), "%lX", serial);
	return th_cert(&c);
}

static __attribute__((unused)) void
fz_pki_make(void)
{
	X509 *root, *mid, *leaf, *mer;

	fz_now = (int64_t)time(NULL);
	/* One CA key for root and middle keeps start-up quick. */
	fz_ca_key = th_rsa_key(2048);
	fz_leaf_key = th_rsa_key(2048);
	root = fz_cert(fz_ca_key, "Test UnionPay", "Test UnionPay Root",
	    NULL, NULL, 1, 1);
	mid = fz_cert(fz_ca_key, "Test UnionPay", "Test UnionPay Middle",
	    root, fz_ca_key, 2, 1);
	leaf = fz_cert(fz_leaf_key, "China UnionPay",
	    "041@Z12@\xe4\xb8\xad\xe5\x9b\xbd\xe9\x93\xb6\xe8\x81\x94\xe8\x82"
	    "\xa1\xe4\xbb\xbd\xe6\x9c\x89\xe9\x99\x90\xe5\x85\xac\xe5\x8f\xb8"
	    "@00000001", mid, fz_ca_key, 69026276696L, 0);
	mer = fz_cert(fz_leaf_key, "Test Merchant",
	    "041@Z12@Test Merchant@00000004", NULL, NULL, 68759529225L, 0);
	fz_root = th_pem_cert(root);
	fz_mid = th_pem_cert(mid);
	fz_leaf = th_pem_cert(leaf);
	fz_mer_cert = th_pem_cert(mer);
	fz_mer_key_pem = th_pem_key(fz_leaf_key, 1);
	X509_free(root);
	X509_free(mid);
	X509_free(leaf);
	X509_free(mer);
}

static __attribute__((unused)) void
fz_pki_free(void)
{
	EVP_PKEY_free(fz_leaf_key);
	EVP_PKEY_free(fz_ca_key);
	free(fz_root);
	free(fz_mid);
	free(fz_leaf);
	free(fz_mer_key_pem);
	free(fz_mer_cert);
}

/*
 * Fields from "name=value" lines, with signPubKeyCert set to the leaf and
 * signature computed over all of them (ACP 5.1.0: SHA-256 hex of the
 * sorted k=v string, RSA-SHA256 over that text), as a form body, or
 * with raw set as k=v joined by '&' unescaped, the way answers come.
 */
static __attribute__((unused)) int
fz_up_body(const uint8_t *data, size_t size, int raw, struct ph_buf *body)
{
	static const char *const skip[] = { "signature", NULL };
	static const char *const own[] = { "signPubKeyCert", "signature",
	    NULL };
	struct ph_kvlist kv, out;
	size_t i, siglen;
	unsigned char d[PH_SHA256_LEN], sig[512];
	char hex[2 * PH_SHA256_LEN + 1];
	struct ph_buf s, b64;
	EVP_MD_CTX *mc;
	int ok;

	ph_kvlist_init(&kv, 64);
	/* The two fields it sets itself. */
	fz_fields(data, size, own, &kv);
	ph_kvlist_add(&kv, "signPubKeyCert", 14, fz_leaf, strlen(fz_leaf),
	    NULL);
	ph_buf_init(&s, 1u << 20);
	ph_canonical_join(&kv, skip, 0, &s);
	ph_sha256(s.data != NULL ? s.data : "", s.len, d);
	ph_buf_free(&s);
	ph_hex_lower(d, sizeof(d), hex);
	siglen = sizeof(sig);
	if ((mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, fz_leaf_key) !=
	    1 || EVP_DigestSign(mc, sig, &siglen, (unsigned char *)hex,
	    strlen(hex)) != 1)
		abort();
	EVP_MD_CTX_free(mc);
	ph_buf_init(&b64, 2048);
	ph_base64_encode(sig, siglen, &b64);
	ph_kvlist_init(&out, kv.max + 1);
	for (i = 0; i < kv.n; i++)
		ph_kvlist_add(&out, kv.items[i].key, strlen(kv.items[i].key),
		    kv.items[i].val, kv.items[i].val_len, NULL);
	ph_kvlist_add(&out, "signature", 9, b64.data, b64.len, NULL);
	ph_buf_free(&b64);
	ph_buf_init(body, 1u << 20);
	if (raw) {
		for (i = 0; i < out.n; i++)
			ph_buf_printf(body, "%s%s=%s", i > 0 ? "&" : "",
			    out.items[i].key, out.items[i].val);
		ok = !body->err;
	} else
		ok = ph_form_write(&out, body) == PH_OK && !body->err;
	ph_kvlist_free(&kv);
	ph_kvlist_free(&out);
	return ok;
}

/*
 * The input of the UnionPay targets: a first byte 'S' makes the rest
 * name=value lines that fz_up_body() signs (with raw as it takes it)
 * before run is handed them; anything else goes to run as it is.
 */
static __attribute__((unused)) void
fz_up_input(const uint8_t *data, size_t size, int raw,
    void (*run)(const void *, size_t))
{
	struct ph_buf body;

	if (size > 0 && data[0] == 'S') {
		if (fz_up_body(data + 1, size - 1, raw, &body))
			run(body.data, body.len);
		ph_buf_free(&body);
	} else
		run(data, size);
}

/* The targets' one profile, made at start with the PKI (every target
 * that includes this header uses it). */
static void *fz_ctx;

static void *
fz_up_profile(void)
{
	const struct fz_setting s[] = {
		{ "mer_id", FZ_MER_ID },
		{ "root_cert_file", fz_root },
		{ "middle_cert_file", fz_mid },
		{ "sign_key_file", fz_mer_key_pem },
		{ "sign_cert_file", fz_mer_cert },
		{ NULL, NULL },
	};

	return fz_profile(payhook_provider(), "upshop", s);
}

void
fz_init(void)
{
	fz_pki_make();
	fz_ctx = fz_up_profile();
}

void
fz_fini(void)
{
	fz_ctx = NULL;
	fz_pki_free();
}
