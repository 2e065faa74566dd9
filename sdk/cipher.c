/*
 * Symmetric decryption over OpenSSL libcrypto: AES-256-GCM (the AEAD of
 * WeChat Pay v3 resources) and AES-256-ECB with PKCS#7 padding (WeChat
 * Pay v2 refund notifications).  Nothing is handed back unless the tag,
 * or the padding, checked; OpenSSL errors become diagnostics through
 * ph_ossl_fail (crypto.c).
 */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <payhook/sdk.h>

#include "sdk_int.h"

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
