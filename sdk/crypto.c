/*
 * Digests, MACs, encodings, the reading of PEM and symmetric decryption
 * over OpenSSL libcrypto.  OpenSSL's error queue is translated here
 * (ph_ossl_fail) and nowhere else: every failure clears it, so no stale
 * error reaches an unrelated caller.  Keys and RSA are in pkey.c,
 * certificates in cert.c; providers call none of OpenSSL themselves.
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <payhook/sdk.h>

#include "sdk_int.h"

int
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

/*
 * The digests, fetched once: EVP_md5() and the like make OpenSSL 3 look
 * the algorithm up again on every use, 2,300 instructions of a digest of
 * a short text (a third of it).  A fetch that fails leaves the legacy
 * object in place.
 */
static const EVP_MD *ph_md_md5, *ph_md_sha1, *ph_md_sha256;
static pthread_once_t ph_md_once = PTHREAD_ONCE_INIT;

static const EVP_MD *
ph_md_fetch(const char *name, const EVP_MD *legacy)
{
	EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);

	if (md == NULL) {
		ERR_clear_error();
		return legacy;
	}
	return md;			/* kept for the life of the process */
}

static void
ph_md_init(void)
{
	ph_md_md5 = ph_md_fetch("MD5", EVP_md5());
	ph_md_sha1 = ph_md_fetch("SHA1", EVP_sha1());
	ph_md_sha256 = ph_md_fetch("SHA256", EVP_sha256());
}

static int
ph_digest(const EVP_MD *const *mdp, const void *p, size_t n,
    unsigned char *out, unsigned int want)
{
	const EVP_MD *md;
	unsigned int len = 0;

	if (pthread_once(&ph_md_once, ph_md_init) != 0)
		return PH_E_INTERNAL;
	if ((md = *mdp) == NULL)
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
	return ph_digest(&ph_md_md5, p, n, out, PH_MD5_LEN);
}

int
ph_sha1(const void *p, size_t n, unsigned char out[PH_SHA1_LEN])
{
	return ph_digest(&ph_md_sha1, p, n, out, PH_SHA1_LEN);
}

int
ph_sha256(const void *p, size_t n, unsigned char out[PH_SHA256_LEN])
{
	return ph_digest(&ph_md_sha256, p, n, out, PH_SHA256_LEN);
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
	if (pthread_once(&ph_md_once, ph_md_init) != 0)
		return PH_E_INTERNAL;
	if (HMAC(ph_md_sha256, key_len > 0 ? key : empty, (int)key_len,
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

void
ph_cleanse(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

static int
ph_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
ph_pem_rest_blank(BIO *bio)
{
	char *rest = NULL;
	long n = BIO_get_mem_data(bio, &rest), i;

	for (i = 0; i < n; i++)
		if (!ph_is_space(rest[i]))
			return 0;
	return 1;
}

int
ph_pem_next(BIO *bio, char **label, unsigned char **der, long *der_len,
    int status, const char *what, struct ph_diag *diag)
{
	char *rest = NULL, *header = NULL;
	long n = BIO_get_mem_data(bio, &rest), i;
	int rc = status;

	*label = NULL;
	*der = NULL;
	*der_len = 0;
	for (i = 0; i < n && ph_is_space(rest[i]); i++)
		continue;
	if (i == n)
		return PH_OK;
	if (n - i < 11 || memcmp(rest + i, "-----BEGIN ", 11) != 0)
		return ph_fail(diag, status, "%s: data outside a PEM block",
		    what);
	/* PEM_read_bio wants the block at a line start: drop what was
	 * skipped (a memory BIO reads without copying out of it). */
	while (i > 0) {
		char skip[64];
		int k = BIO_read(bio, skip, i < (long)sizeof(skip) ? (int)i :
		    (int)sizeof(skip));

		if (k <= 0)
			return ph_ossl_fail(diag, PH_E_INTERNAL, what);
		i -= k;
	}
	if (PEM_read_bio(bio, label, &header, der, der_len) != 1)
		return ph_ossl_fail(diag, status, what);
	if (header != NULL && header[0] != '\0') {
		ph_fail(diag, status, "%s: PEM headers (an encrypted key?) are "
		    "not supported", what);
		goto fail;
	}
	OPENSSL_free(header);
	return PH_OK;
fail:
	OPENSSL_free(header);
	OPENSSL_free(*label);
	if (*der != NULL) {
		OPENSSL_cleanse(*der, (size_t)*der_len);
		OPENSSL_free(*der);
	}
	*label = NULL;
	*der = NULL;
	*der_len = 0;
	ERR_clear_error();
	return rc;
}

/*
 * AES-256-GCM (the AEAD of WeChat Pay v3 resources) and AES-256-ECB with
 * PKCS#7 padding (WeChat Pay v2 refund notifications): nothing is handed
 * back unless the tag, or the padding, checked.
 */
int
ph_aes256gcm_decrypt(const unsigned char key[PH_AES256_KEY_LEN],
    const unsigned char *iv, size_t iv_len, const void *aad, size_t aad_len,
    const unsigned char *ct, size_t ct_len, unsigned char *out,
    size_t *out_len, struct ph_diag *diag)
{
	static const unsigned char empty[1];
	EVP_CIPHER_CTX *c = NULL;
	size_t n_ct;
	int rc, n = 0, fin = 0;

	*out_len = 0;
	/* Checked before subtracting the tag: no size_t underflow. */
	if (ct == NULL || ct_len <= PH_GCM_TAG_LEN)
		return ph_fail(diag, PH_E_SIGNATURE, "AES-256-GCM: %zu bytes, "
		    "shorter than data and a %d-byte tag", ct_len,
		    PH_GCM_TAG_LEN);
	if (iv == NULL || iv_len == 0 || iv_len > INT_MAX ||
	    aad_len > INT_MAX || ct_len > INT_MAX ||
	    (aad == NULL && aad_len > 0))
		return ph_fail(diag, PH_E_INTERNAL, "AES-256-GCM: bad lengths");
	n_ct = ct_len - PH_GCM_TAG_LEN;
	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len,
	    NULL) != 1 ||
	    EVP_DecryptInit_ex(c, NULL, NULL, key, iv) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad_len > 0 ? aad : empty,
	    (int)aad_len) != 1 ||
	    EVP_DecryptUpdate(c, out, &n, ct, (int)n_ct) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, PH_GCM_TAG_LEN,
	    (void *)(ct + n_ct)) != 1) {
		rc = ph_ossl_fail(diag, PH_E_INTERNAL, "AES-256-GCM");
		goto out;
	}
	if (EVP_DecryptFinal_ex(c, out + n, &fin) != 1) {
		ERR_clear_error();
		rc = ph_fail(diag, PH_E_SIGNATURE, "AES-256-GCM authentication "
		    "failed");
		goto out;
	}
	*out_len = (size_t)n + (size_t)fin;
	rc = PH_OK;
out:
	if (rc != PH_OK)
		OPENSSL_cleanse(out, n_ct);
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int
ph_aes256ecb_decrypt(const unsigned char key[PH_AES256_KEY_LEN],
    const unsigned char *ct, size_t ct_len, unsigned char *out,
    size_t *out_len, struct ph_diag *diag)
{
	EVP_CIPHER_CTX *c = NULL;
	int rc, n = 0, fin = 0;

	*out_len = 0;
	if (ct == NULL || ct_len == 0 || ct_len % PH_AES_BLOCK != 0 ||
	    ct_len > INT_MAX)
		return ph_fail(diag, PH_E_SIGNATURE, "AES-256-ECB: not whole "
		    "AES blocks");
	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if (EVP_DecryptInit_ex(c, EVP_aes_256_ecb(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 1) != 1 ||
	    EVP_DecryptUpdate(c, out, &n, ct, (int)ct_len) != 1) {
		rc = ph_ossl_fail(diag, PH_E_INTERNAL, "AES-256-ECB");
		goto out;
	}
	if (EVP_DecryptFinal_ex(c, out + n, &fin) != 1) {
		ERR_clear_error();
		rc = ph_fail(diag, PH_E_SIGNATURE, "AES-256-ECB: bad padding");
		goto out;
	}
	*out_len = (size_t)n + (size_t)fin;
	rc = PH_OK;
out:
	if (rc != PH_OK)
		OPENSSL_cleanse(out, ct_len + PH_AES_BLOCK);
	EVP_CIPHER_CTX_free(c);
	return rc;
}
