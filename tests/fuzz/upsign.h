/*
 * Signing for the UnionPay fuzz targets, included after unionpay_test.h: a
 * test PKI made at start (root, middle, UnionPay's signing leaf, the
 * merchant's key) and the ACP 5.1.0 signature over fuzzed fields, so that
 * inputs reach the code behind the verifier, which runs unchanged.
 */
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#define FZ_MER_ID	"777290058110048"
#define FZ_DAY		86400L

static EVP_PKEY *fz_leaf_key, *fz_ca_key;
static char *fz_root, *fz_mid, *fz_leaf, *fz_mer_key_pem, *fz_mer_cert;
static int64_t fz_now;

static __attribute__((unused)) char *
fz_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	if (b == NULL || PEM_write_bio_X509(b, x) != 1)
		abort();
	n = BIO_get_mem_data(b, &p);
	s = fz_strndup((const uint8_t *)p, (size_t)n);
	BIO_free(b);
	return s;
}

static __attribute__((unused)) void
fz_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL ||
	    X509_add_ext(x, e, -1) != 1)
		abort();
	X509_EXTENSION_free(e);
}

static __attribute__((unused)) X509 *
fz_cert(EVP_PKEY *key, const char *o, const char *cn, X509 *issuer,
    EVP_PKEY *ikey, long serial, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	if (x == NULL || n == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -100 * FZ_DAY) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 700 * FZ_DAY) == NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8,
	    (const unsigned char *)"CN", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	    (const unsigned char *)o, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, n) != 1 ||
	    X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : n) != 1)
		abort();
	X509_NAME_free(n);
	if (ca) {
		fz_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
		    "critical,CA:TRUE");
		fz_ext(x, issuer != NULL ? issuer : x, NID_key_usage,
		    "critical,keyCertSign,cRLSign");
	} else
		fz_ext(x, issuer != NULL ? issuer : x, NID_key_usage,
		    "critical,digitalSignature,nonRepudiation");
	if (X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) == 0)
		abort();
	return x;
}

static __attribute__((unused)) void
fz_pki_make(void)
{
	X509 *root, *mid, *leaf, *mer;
	BIO *b;
	char *p;
	long n;

	fz_now = (int64_t)time(NULL);
	/* One CA key for root and middle keeps start-up quick. */
	if ((fz_ca_key = EVP_RSA_gen(2048)) == NULL ||
	    (fz_leaf_key = EVP_RSA_gen(2048)) == NULL)
		abort();
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
	fz_root = fz_pem(root);
	fz_mid = fz_pem(mid);
	fz_leaf = fz_pem(leaf);
	fz_mer_cert = fz_pem(mer);
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(b, fz_leaf_key, NULL, NULL, 0, NULL,
	    NULL) != 1)
		abort();
	n = BIO_get_mem_data(b, &p);
	fz_mer_key_pem = fz_strndup((const uint8_t *)p, (size_t)n);
	BIO_free(b);
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

static __attribute__((unused)) void *
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
	struct ph_kvlist kv, out;
	const uint8_t *p = data, *line, *eq;
	size_t left = size, n, rest, i, siglen;
	unsigned char d[PH_SHA256_LEN], sig[512];
	char hex[2 * PH_SHA256_LEN + 1];
	struct ph_buf s, b64;
	EVP_MD_CTX *mc;
	int ok;

	ph_kvlist_init(&kv, 64);
	while (left > 0) {
		line = p;
		p = fz_split(p, left, '\n', &n, &rest);
		left = rest;
		if ((eq = memchr(line, '=', n)) == NULL || eq == line ||
		    (eq - line == 14 && memcmp(line, "signPubKeyCert", 14) ==
		    0) || (eq - line == 9 && memcmp(line, "signature", 9) == 0))
			continue;
		ph_kvlist_add(&kv, (const char *)line, (size_t)(eq - line),
		    (const char *)eq + 1, n - (size_t)(eq - line) - 1, NULL);
	}
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
