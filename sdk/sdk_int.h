/*
 * Shared between the SDK's own files; neither installed nor meant for
 * providers.  Built with -fvisibility=hidden like the rest of the SDK, so
 * nothing here leaves a plugin.
 */
#ifndef PAYHOOK_SDK_INT_H
#define PAYHOOK_SDK_INT_H

#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <payhook/sdk.h>

/*
 * Fills diag with what and OpenSSL's last error, empties OpenSSL's error
 * queue, returns status.  The one place OpenSSL errors are translated.
 */
int ph_ossl_fail(struct ph_diag *diag, int status, const char *what);

/*
 * The next PEM block of bio, after nothing but whitespace: its label
 * (caller OPENSSL_free()s) and its DER (caller cleanses and
 * OPENSSL_free()s).  *der is NULL, with PH_OK, when only whitespace is
 * left.  Text outside a block and PEM headers (an encrypted key) are
 * refused with status, the diagnostic naming what.
 */
int ph_pem_next(BIO *bio, char **label, unsigned char **der, long *der_len,
    int status, const char *what, struct ph_diag *diag);

/* True when nothing but whitespace is left in bio. */
int ph_pem_rest_blank(BIO *bio);

/* An RSA key of PH_RSA_MIN_BITS or more (pkey.c). */
struct ph_key {
	EVP_PKEY *pkey;
};

/* True for an RSA key of PH_RSA_MIN_BITS or more. */
int ph_key_rsa_ok(const struct ph_key *k);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t ph_days_from_civil(int64_t y, int m, int d);

#endif /* PAYHOOK_SDK_INT_H */
