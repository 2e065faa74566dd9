/*
 * RSA keys and PKCS#1 v1.5 signatures over OpenSSL libcrypto, for every
 * provider that signs requests or verifies its provider's signatures.  A
 * key is read once per profile and refused when it is not RSA of
 * PH_RSA_MIN_BITS or more; OpenSSL errors become diagnostics through
 * ph_ossl_fail (crypto.c).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <payhook/sdk.h>

#include "sdk_int.h"

/* The labels each form takes, first the one a diagnostic names. */
static const char *const ph_key_labels[PH_KEY__MAX][4] = {
	[PH_KEY_PUBLIC] = { "PUBLIC KEY", NULL },
	[PH_KEY_PUBLIC_ANY] = { "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE",
	    NULL },
	[PH_KEY_PRIVATE] = { "PRIVATE KEY", "RSA PRIVATE KEY", NULL },
};

void
ph_key_free(struct ph_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

size_t
ph_key_size(const struct ph_key *k)
{
	int n = k != NULL ? EVP_PKEY_size(k->pkey) : 0;

	return n > 0 ? (size_t)n : 0;
}

/* Encrypted keys are refused: nobody is there to type a passphrase. */
static int
ph_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The key in DER of the given label (an index into ph_key_labels). */
static EVP_PKEY *
ph_key_der(enum ph_key_form form, size_t label, const unsigned char *der,
    long der_len)
{
	const unsigned char *p = der;
	EVP_PKEY *pkey = NULL;
	X509 *x509;

	if (form == PH_KEY_PRIVATE)
		pkey = label == 0 ? d2i_AutoPrivateKey(NULL, &p, der_len) :
		    d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, der_len);
	else if (label == 0)
		pkey = d2i_PUBKEY(NULL, &p, der_len);
	else if (label == 1)
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, der_len);
	else if ((x509 = d2i_X509(NULL, &p, der_len)) != NULL) {
		pkey = X509_get_pubkey(x509);
		X509_free(x509);
	}
	/* DER with trailing bytes is not one key. */
	if (pkey != NULL && p != der + der_len) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	return pkey;
}

/* Exactly one PEM block of one of the form's labels, only whitespace
 * around it, no headers. */
static int
ph_key_strict(const struct ph_blob *b, enum ph_key_form form,
    const char *what, EVP_PKEY **out, struct ph_diag *diag)
{
	const char *const *labels = ph_key_labels[form];
	BIO *bio = NULL;
	char *name = NULL;
	unsigned char *der = NULL;
	long der_len = 0;
	char why[80];
	size_t j;
	int rc;

	if ((bio = BIO_new_mem_buf(b->data, (int)b->len)) == NULL)
		return ph_ossl_fail(diag, PH_E_NOMEM, what);
	if ((rc = ph_pem_next(bio, &name, &der, &der_len, PH_E_CONFIG, what,
	    diag)) != PH_OK)
		goto out;
	rc = PH_E_CONFIG;
	if (der == NULL) {
		ph_fail(diag, rc, "%s: not a PEM file", what);
		goto out;
	}
	if (!ph_pem_rest_blank(bio)) {
		ph_fail(diag, rc, "%s: more than one PEM block or trailing "
		    "data (one per file)", what);
		goto out;
	}
	for (j = 0; labels[j] != NULL; j++)
		if (strcmp(name, labels[j]) == 0)
			break;
	if (labels[j] == NULL) {
		ph_fail(diag, rc, "%s: a PEM \"%.40s\" where %s was expected",
		    what, name, labels[0]);
		goto out;
	}
	if ((*out = ph_key_der(form, j, der, der_len)) == NULL) {
		snprintf(why, sizeof(why), "%.64s: bad key", what);
		ph_ossl_fail(diag, rc, why);
		goto out;
	}
	rc = PH_OK;
out:
	if (der != NULL)
		OPENSSL_cleanse(der, (size_t)der_len);
	OPENSSL_free(der);
	OPENSSL_free(name);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

/*
 * The DER inside a file given as bare base64 (how some consoles hand keys
 * out): whitespace anywhere is dropped, anything else must be strict
 * base64.  *out is malloc'd (caller cleanses and frees).
 */
static int
ph_key_bare_base64(const struct ph_blob *b, unsigned char **out,
    size_t *out_len)
{
	char *text;
	size_t i, n = 0;
	int rc;

	*out = NULL;
	if ((text = malloc(b->len + 1)) == NULL)
		return PH_E_NOMEM;
	for (i = 0; i < b->len; i++)
		if (b->data[i] != ' ' && b->data[i] != '\t' &&
		    b->data[i] != '\r' && b->data[i] != '\n')
			text[n++] = (char)b->data[i];
	if (n == 0 || (*out = malloc(n)) == NULL) {
		free(text);
		return n == 0 ? PH_E_MALFORMED : PH_E_NOMEM;
	}
	rc = ph_base64_decode(text, n, *out, n, out_len);
	ph_cleanse(text, n);
	free(text);
	if (rc != PH_OK || *out_len == 0 || *out_len > LONG_MAX) {
		ph_cleanse(*out, n);
		free(*out);
		*out = NULL;
		return PH_E_MALFORMED;
	}
	return PH_OK;
}

static int
ph_key_is_pem(const struct ph_blob *b)
{
	size_t i;

	for (i = 0; i < b->len && (b->data[i] == ' ' || b->data[i] == '\t' ||
	    b->data[i] == '\r' || b->data[i] == '\n'); i++)
		continue;
	return b->len - i >= 11 && memcmp(b->data + i, "-----BEGIN ", 11) == 0;
}

/*
 * OpenSSL's own reading of PEM, which passes over text around the block
 * (the "Bag Attributes" lines of a PKCS#12 export), or with PH_KEY_BASE64
 * the DER in bare base64.  OpenSSL's reason may quote the file, so the
 * diagnostic says only what is wrong.
 */
static int
ph_key_lenient(const struct ph_blob *b, enum ph_key_form form,
    unsigned flags, const char *what, EVP_PKEY **out, struct ph_diag *diag)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	BIO *bio;

	if (!(flags & PH_KEY_BASE64) || ph_key_is_pem(b)) {
		if ((bio = BIO_new_mem_buf(b->data, (int)b->len)) == NULL)
			return ph_ossl_fail(diag, PH_E_NOMEM, what);
		*out = form == PH_KEY_PRIVATE ?
		    PEM_read_bio_PrivateKey(bio, NULL, ph_no_passphrase, NULL) :
		    PEM_read_bio_PUBKEY(bio, NULL, ph_no_passphrase, NULL);
		BIO_free(bio);
	} else if ((flags & PH_KEY_BASE64) &&
	    ph_key_bare_base64(b, &der, &der_len) == PH_OK) {
		*out = ph_key_der(form, 0, der, (long)der_len);
		ph_cleanse(der, der_len);
		free(der);
	}
	ERR_clear_error();
	if (*out != NULL)
		return PH_OK;
	if (form == PH_KEY_PRIVATE)
		return ph_fail(diag, PH_E_CONFIG, "%s: not an unencrypted PEM "
		    "private key%s", what, (flags & PH_KEY_BASE64) ?
		    " or a base64 one" : "");
	return ph_fail(diag, PH_E_CONFIG, "%s: not a PEM PUBLIC KEY%s", what,
	    (flags & PH_KEY_BASE64) ? " or a base64 public key" : "");
}

int
ph_key_rsa_ok(const struct ph_key *k)
{
	return k != NULL && k->pkey != NULL &&
	    EVP_PKEY_base_id(k->pkey) == EVP_PKEY_RSA &&
	    EVP_PKEY_bits(k->pkey) >= PH_RSA_MIN_BITS;
}

int
ph_key_load(const struct ph_blob *b, enum ph_key_form form, unsigned flags,
    const char *what, struct ph_key **out, struct ph_diag *diag)
{
	struct ph_key *k;
	int rc;

	*out = NULL;
	if ((unsigned)form >= PH_KEY__MAX)
		return ph_fail(diag, PH_E_INTERNAL, "%s: no such key form",
		    what);
	if (b == NULL || b->data == NULL || b->len == 0 || b->len > INT_MAX)
		return ph_fail(diag, PH_E_CONFIG, "%s: empty", what);
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	rc = (flags & (PH_KEY_LENIENT | PH_KEY_BASE64)) ?
	    ph_key_lenient(b, form, flags, what, &k->pkey, diag) :
	    ph_key_strict(b, form, what, &k->pkey, diag);
	if (rc == PH_OK && !ph_key_rsa_ok(k))
		rc = ph_fail(diag, PH_E_CONFIG, "%s: not an RSA key of %d bits "
		    "or more", what, PH_RSA_MIN_BITS);
	if (rc != PH_OK) {
		ph_key_free(k);
		return rc;
	}
	*out = k;
	return PH_OK;
}

static const EVP_MD *
ph_rsa_md(const char *digest)
{
	if (digest != NULL && strcmp(digest, "SHA256") == 0)
		return EVP_sha256();
	if (digest != NULL && strcmp(digest, "SHA1") == 0)
		return EVP_sha1();
	return NULL;
}

int
ph_rsa_sign(const struct ph_key *k, const char *digest, const void *msg,
    size_t len, struct ph_buf *out, struct ph_diag *diag)
{
	const EVP_MD *md = ph_rsa_md(digest);
	unsigned char *sig = NULL;
	size_t siglen = ph_key_size(k);
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int rc;

	if (md == NULL)
		return ph_fail(diag, PH_E_UNSUPPORTED,
		    "RSA digest must be SHA1 or SHA256");
	if (k == NULL || siglen == 0)
		return ph_fail(diag, PH_E_CONFIG,
		    "no private key to sign with");
	if (msg == NULL && len > 0)
		return ph_fail(diag, PH_E_INTERNAL, "RSA sign: no message");
	if ((sig = malloc(siglen)) == NULL ||
	    (mctx = EVP_MD_CTX_new()) == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto out;
	}
	if (EVP_DigestSignInit(mctx, &pctx, md, NULL, k->pkey) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_DigestSign(mctx, sig, &siglen, len > 0 ? msg :
	    (const void *)"", len) != 1) {
		rc = ph_ossl_fail(diag, PH_E_INTERNAL, "RSA sign");
		goto out;
	}
	if ((rc = ph_base64_encode(sig, siglen, out)) != PH_OK)
		ph_fail(diag, rc, "cannot encode the signature");
out:
	EVP_MD_CTX_free(mctx);
	ph_cleanse(sig, ph_key_size(k));
	free(sig);
	ERR_clear_error();
	return rc;
}

int
ph_rsa_verify(const struct ph_key *k, const char *digest, const void *msg,
    size_t msg_len, const unsigned char *sig, size_t sig_len,
    struct ph_diag *diag)
{
	const EVP_MD *md = ph_rsa_md(digest);
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int rc = PH_E_SIGNATURE;

	if (md == NULL)
		return ph_fail(diag, PH_E_UNSUPPORTED,
		    "RSA digest must be SHA1 or SHA256");
	if (k == NULL || k->pkey == NULL)
		return ph_fail(diag, PH_E_CONFIG, "no key to verify with");
	if (sig == NULL || (msg == NULL && msg_len > 0))
		return ph_fail(diag, PH_E_SIGNATURE, "no signature");
	if (ph_key_size(k) == 0 || sig_len != ph_key_size(k))
		return ph_fail(diag, PH_E_SIGNATURE, "signature length %zu "
		    "does not match the key", sig_len);
	if ((mctx = EVP_MD_CTX_new()) == NULL) {
		rc = ph_ossl_fail(diag, PH_E_NOMEM, "RSA verify");
		goto out;
	}
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, k->pkey) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
		rc = ph_ossl_fail(diag, PH_E_INTERNAL, "RSA verify");
		goto out;
	}
	if (EVP_DigestVerify(mctx, sig, sig_len,
	    msg_len > 0 ? msg : (const void *)"", msg_len) != 1) {
		ph_ossl_fail(diag, PH_E_SIGNATURE, "RSA signature mismatch");
		goto out;
	}
	rc = PH_OK;
out:
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return rc;
}

int
ph_rsa_verify_pem(const char *digest, const unsigned char *pem,
    size_t pem_len, const void *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len, struct ph_diag *diag)
{
	const struct ph_blob b = { pem, pem_len };
	struct ph_key *k = NULL;
	int rc;

	if (ph_rsa_md(digest) == NULL)
		return ph_fail(diag, PH_E_UNSUPPORTED,
		    "RSA digest must be SHA1 or SHA256");
	if (pem == NULL || pem_len == 0 || pem_len > INT_MAX)
		return ph_fail(diag, PH_E_CONFIG, "no PEM key");
	if (sig == NULL || (msg == NULL && msg_len > 0))
		return ph_fail(diag, PH_E_SIGNATURE, "no signature");
	if ((rc = ph_key_load(&b, PH_KEY_PUBLIC_ANY, 0, "PEM", &k,
	    diag)) != PH_OK)
		return rc;
	rc = ph_rsa_verify(k, digest, msg, msg_len, sig, sig_len, diag);
	ph_key_free(k);
	return rc;
}
