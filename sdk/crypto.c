/*
 * Digests, MACs, encodings and RSA verification over OpenSSL libcrypto.
 * OpenSSL's error queue is translated here and nowhere else: every
 * failure clears it, so no stale error reaches an unrelated caller.
 */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <payhook/sdk.h>

/* RSA keys shorter than this are refused outright. */
#define PH_RSA_MIN_BITS 2048

static int
ph_ossl_fail(struct ph_diag *diag, int status, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[128];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		ph_fail(diag, status, "%s: %s", what, buf);
	} else
		ph_fail(diag, status, "%s", what);
	ERR_clear_error();
	return status;
}

static int
ph_digest(const EVP_MD *md, const void *p, size_t n, unsigned char *out,
    unsigned int want)
{
	unsigned int len = 0;

	if (md == NULL)
		return ph_ossl_fail(NULL, PH_E_UNSUPPORTED, "digest");
	if (p == NULL && n > 0)
		return PH_E_INTERNAL;
	if (EVP_Digest(n > 0 ? p : "", n, out, &len, md, NULL) != 1 ||
	    len != want)
		return ph_ossl_fail(NULL, PH_E_INTERNAL, "digest");
	return PH_OK;
}

int
ph_md5(const void *p, size_t n, unsigned char out[PH_MD5_LEN])
{
	return ph_digest(EVP_md5(), p, n, out, PH_MD5_LEN);
}

int
ph_sha1(const void *p, size_t n, unsigned char out[PH_SHA1_LEN])
{
	return ph_digest(EVP_sha1(), p, n, out, PH_SHA1_LEN);
}

int
ph_sha256(const void *p, size_t n, unsigned char out[PH_SHA256_LEN])
{
	return ph_digest(EVP_sha256(), p, n, out, PH_SHA256_LEN);
}

int
ph_hmac_sha256(const void *key, size_t key_len, const void *p, size_t n,
    unsigned char out[PH_SHA256_LEN])
{
	static const unsigned char empty[1];
	unsigned int len = 0;

	if (key_len > INT_MAX || (key == NULL && key_len > 0) ||
	    (p == NULL && n > 0))
		return PH_E_INTERNAL;
	if (HMAC(EVP_sha256(), key_len > 0 ? key : empty, (int)key_len,
	    n > 0 ? p : empty, n, out, &len) == NULL ||
	    len != PH_SHA256_LEN)
		return ph_ossl_fail(NULL, PH_E_INTERNAL, "HMAC-SHA256");
	return PH_OK;
}

static void
ph_hex(const unsigned char *p, size_t n, char *out, const char *digits)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

void
ph_hex_upper(const unsigned char *p, size_t n, char *out)
{
	ph_hex(p, n, out, "0123456789ABCDEF");
}

void
ph_hex_lower(const unsigned char *p, size_t n, char *out)
{
	ph_hex(p, n, out, "0123456789abcdef");
}

int
ph_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return 0;
	if (alen == 0)
		return 1;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

/* ASCII lower case without a data-dependent branch. */
static unsigned char
ph_ct_lower(unsigned char c)
{
	unsigned int upper = (unsigned int)(c - 'A') <= 'Z' - 'A';

	return (unsigned char)(c | (unsigned char)(upper << 5));
}

int
ph_ct_equal_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char x[64], y[64];
	size_t off, i, n;
	int diff = 0;

	if (alen != blen)
		return 0;
	for (off = 0; off < alen; off += n) {
		n = alen - off < sizeof(x) ? alen - off : sizeof(x);
		for (i = 0; i < n; i++) {
			x[i] = ph_ct_lower((unsigned char)a[off + i]);
			y[i] = ph_ct_lower((unsigned char)b[off + i]);
		}
		diff |= CRYPTO_memcmp(x, y, n);
	}
	OPENSSL_cleanse(x, sizeof(x));
	OPENSSL_cleanse(y, sizeof(y));
	return diff == 0;
}

static int
ph_b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * EVP_DecodeBlock alone skips whitespace, does not count padding and
 * tolerates non-zero trailing bits, so the input is checked first: whole
 * quanta, the standard alphabet, at most two '=' and only at the end, and
 * unused bits zero (one encoding per byte string).
 */
int
ph_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t out_max, size_t *out_len)
{
	unsigned char last[3];
	size_t i, pad = 0, dlen, body;
	int v;

	*out_len = 0;
	if (len == 0)
		return PH_OK;
	if (in == NULL || len % 4 != 0)
		return PH_E_MALFORMED;
	if (len > INT_MAX)
		return PH_E_TOOBIG;
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	if (pad == 1 && in[len - 2] == '=')
		return PH_E_MALFORMED;
	for (i = 0; i < len - pad; i++)
		if (ph_b64_val((unsigned char)in[i]) < 0)
			return PH_E_MALFORMED;
	v = ph_b64_val((unsigned char)in[len - pad - 1]);
	if ((pad == 2 && (v & 0x0f) != 0) || (pad == 1 && (v & 0x03) != 0))
		return PH_E_MALFORMED;
	dlen = len / 4 * 3 - pad;
	if (dlen > out_max)
		return PH_E_TOOBIG;

	/* All quanta but the last straight into out; the last (which may
	 * decode to fewer than 3 bytes) through a scratch block. */
	body = len - 4;
	if (body > 0 && EVP_DecodeBlock(out, (const unsigned char *)in,
	    (int)body) != (int)(body / 4 * 3))
		return ph_ossl_fail(NULL, PH_E_MALFORMED, "base64");
	if (EVP_DecodeBlock(last, (const unsigned char *)in + body, 4) != 3)
		return ph_ossl_fail(NULL, PH_E_MALFORMED, "base64");
	memcpy(out + body / 4 * 3, last, 3 - pad);
	*out_len = dlen;
	return PH_OK;
}

int
ph_base64_encode(const unsigned char *in, size_t len, struct ph_buf *out)
{
	unsigned char chunk[65];
	size_t off, n;
	int w;

	ph_buf_append(out, "", 0);
	for (off = 0; off < len; off += n) {
		/* 48 input bytes make 64 characters, no padding mid-way. */
		n = len - off < 48 ? len - off : 48;
		w = EVP_EncodeBlock(chunk, in + off, (int)n);
		if (w < 0)
			return out->err != PH_OK ? out->err :
			    (out->err = PH_E_INTERNAL);
		ph_buf_append(out, chunk, (size_t)w);
	}
	return out->err;
}

/*
 * One PEM block, nothing but whitespace around it, no encryption
 * headers, DER with no trailing bytes.
 */
static int
ph_pem_pubkey(const unsigned char *pem, size_t pem_len, EVP_PKEY **pkey,
    struct ph_diag *diag)
{
	BIO *bio = NULL;
	X509 *x509 = NULL;
	char *name = NULL, *header = NULL, *rest = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long der_len = 0, rest_len, i;
	size_t start;
	int rc = PH_E_CONFIG;

	*pkey = NULL;
	for (start = 0; start < pem_len && (pem[start] == ' ' ||
	    pem[start] == '\t' || pem[start] == '\r' || pem[start] == '\n');
	    start++)
		continue;
	if (pem_len - start < 11 || memcmp(pem + start, "-----BEGIN ", 11))
		return ph_fail(diag, PH_E_CONFIG, "not a PEM block");
	if ((bio = BIO_new_mem_buf(pem + start,
	    (int)(pem_len - start))) == NULL) {
		rc = ph_ossl_fail(diag, PH_E_NOMEM, "PEM");
		goto out;
	}
	if (PEM_read_bio(bio, &name, &header, &der, &der_len) != 1) {
		rc = ph_ossl_fail(diag, PH_E_CONFIG, "PEM");
		goto out;
	}
	rest_len = BIO_get_mem_data(bio, &rest);
	for (i = 0; i < rest_len; i++)
		if (rest[i] != ' ' && rest[i] != '\t' && rest[i] != '\r' &&
		    rest[i] != '\n') {
			ph_fail(diag, PH_E_CONFIG,
			    "PEM: more than one block or trailing data");
			goto out;
		}
	if (header != NULL && header[0] != '\0') {
		ph_fail(diag, PH_E_CONFIG, "PEM: headers are not supported");
		goto out;
	}
	p = der;
	if (strcmp(name, "PUBLIC KEY") == 0)
		*pkey = d2i_PUBKEY(NULL, &p, der_len);
	else if (strcmp(name, "RSA PUBLIC KEY") == 0)
		*pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, der_len);
	else if (strcmp(name, "CERTIFICATE") == 0) {
		if ((x509 = d2i_X509(NULL, &p, der_len)) != NULL)
			*pkey = X509_get_pubkey(x509);
	} else {
		ph_fail(diag, PH_E_CONFIG,
		    "PEM: %.40s is not a public key or certificate", name);
		goto out;
	}
	if (*pkey == NULL) {
		rc = ph_ossl_fail(diag, PH_E_CONFIG, "PEM: bad key");
		goto out;
	}
	if (p != der + der_len) {
		ph_fail(diag, PH_E_CONFIG, "PEM: trailing bytes after the key");
		EVP_PKEY_free(*pkey);
		*pkey = NULL;
		goto out;
	}
	rc = PH_OK;
out:
	X509_free(x509);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

int
ph_rsa_verify_pem(const char *digest, const unsigned char *pem,
    size_t pem_len, const void *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len, struct ph_diag *diag)
{
	const EVP_MD *md;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int rc;

	if (digest != NULL && strcmp(digest, "SHA256") == 0)
		md = EVP_sha256();
	else if (digest != NULL && strcmp(digest, "SHA1") == 0)
		md = EVP_sha1();
	else
		return ph_fail(diag, PH_E_UNSUPPORTED,
		    "RSA digest must be SHA1 or SHA256");
	if (pem == NULL || pem_len == 0 || pem_len > INT_MAX)
		return ph_fail(diag, PH_E_CONFIG, "no PEM key");
	if (sig == NULL || (msg == NULL && msg_len > 0))
		return ph_fail(diag, PH_E_SIGNATURE, "no signature");
	if ((rc = ph_pem_pubkey(pem, pem_len, &pkey, diag)) != PH_OK)
		return rc;

	rc = PH_E_SIGNATURE;
	if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
		rc = ph_fail(diag, PH_E_CONFIG, "key is not an RSA key");
		goto out;
	}
	if (EVP_PKEY_bits(pkey) < PH_RSA_MIN_BITS) {
		rc = ph_fail(diag, PH_E_CONFIG, "RSA key shorter than %d bits",
		    PH_RSA_MIN_BITS);
		goto out;
	}
	if (EVP_PKEY_size(pkey) <= 0 || sig_len != (size_t)EVP_PKEY_size(pkey)) {
		ph_fail(diag, PH_E_SIGNATURE, "signature length %zu does not "
		    "match the key", sig_len);
		goto out;
	}
	if ((mctx = EVP_MD_CTX_new()) == NULL) {
		rc = ph_ossl_fail(diag, PH_E_NOMEM, "RSA verify");
		goto out;
	}
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pkey) != 1 ||
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
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return rc;
}
