/*
 * X.509 certificates over OpenSSL libcrypto: reading them from PEM, the
 * facts providers pin (serial, validity, key usage, subject CN) and chain
 * verification against configured roots at a given time.  What a
 * provider requires of the facts (which CN, which serial format) stays in
 * the provider.  OpenSSL errors become diagnostics through ph_ossl_fail
 * (crypto.c).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <payhook/sdk.h>

#include "sdk_int.h"

struct ph_cert {
	X509 *x509;
	struct ph_key key;	/* pkey NULL unless RSA of PH_RSA_MIN_BITS+ */
};

struct ph_trust {
	X509_STORE *store;		/* the roots, trusted */
	STACK_OF(X509) *middle;		/* the intermediates, untrusted */
};

void
ph_cert_free(struct ph_cert *c)
{
	if (c == NULL)
		return;
	EVP_PKEY_free(c->key.pkey);
	X509_free(c->x509);
	free(c);
}

static struct ph_cert *
ph_cert_new(X509 *x509)
{
	struct ph_cert *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->x509 = x509;
	c->key.pkey = X509_get_pubkey(x509);
	if (!ph_key_rsa_ok(&c->key)) {
		EVP_PKEY_free(c->key.pkey);
		c->key.pkey = NULL;
	}
	ERR_clear_error();
	return c;
}

int
ph_cert_load(const unsigned char *pem, size_t len, struct ph_cert **certs,
    size_t max, size_t *n, const char *what, struct ph_diag *diag)
{
	const int rc = PH_E_MALFORMED;
	BIO *bio = NULL;
	char *name = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long der_len;
	X509 *x509;

	*n = 0;
	if (pem == NULL || len == 0 || len > INT_MAX)
		return ph_fail(diag, rc, "%s: no certificate", what);
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return ph_ossl_fail(diag, PH_E_NOMEM, what);
	for (;;) {
		if (ph_pem_next(bio, &name, &der, &der_len, rc, what,
		    diag) != PH_OK)
			goto fail;
		if (der == NULL)
			break;
		if (*n == max) {
			ph_fail(diag, rc, "%s: more than %zu certificate%s",
			    what, max, max == 1 ? " (one per file)" : "s");
			goto fail;
		}
		if (strcmp(name, "CERTIFICATE") != 0) {
			ph_fail(diag, rc, "%s: a PEM \"%.40s\" where "
			    "CERTIFICATE was expected", what, name);
			goto fail;
		}
		p = der;
		if ((x509 = d2i_X509(NULL, &p, der_len)) == NULL) {
			ph_ossl_fail(diag, rc, what);
			goto fail;
		}
		if (p != der + der_len) {
			X509_free(x509);
			ph_fail(diag, rc, "%s: trailing bytes in a certificate",
			    what);
			goto fail;
		}
		if ((certs[*n] = ph_cert_new(x509)) == NULL) {
			X509_free(x509);
			ph_fail(diag, PH_E_NOMEM, "out of memory");
			goto fail;
		}
		(*n)++;
		OPENSSL_free(name);
		OPENSSL_free(der);
		name = NULL;
		der = NULL;
	}
	if (*n == 0) {
		ph_fail(diag, rc, "%s: no certificate", what);
		goto fail;
	}
	BIO_free(bio);
	ERR_clear_error();
	return PH_OK;
fail:
	OPENSSL_free(name);
	OPENSSL_free(der);
	BIO_free(bio);
	while (*n > 0)
		ph_cert_free(certs[--*n]);
	ERR_clear_error();
	return rc;
}

const struct ph_key *
ph_cert_key(const struct ph_cert *c)
{
	return c != NULL && c->key.pkey != NULL ? &c->key : NULL;
}

int
ph_cert_serial(const struct ph_cert *c, int hex, char *out, size_t cap)
{
	BIGNUM *bn;
	char *text = NULL, *p;
	int rc = PH_E_MALFORMED;

	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->x509),
	    NULL)) == NULL) {
		ERR_clear_error();
		return PH_E_MALFORMED;
	}
	if (hex && (BN_is_negative(bn) || BN_is_zero(bn)))
		goto out;
	if ((text = hex ? BN_bn2hex(bn) : BN_bn2dec(bn)) == NULL) {
		rc = PH_E_NOMEM;
		goto out;
	}
	for (p = text; hex && *p == '0'; p++)
		continue;
	if (strlen(p) >= cap) {
		rc = PH_E_TOOBIG;
		goto out;
	}
	memcpy(out, p, strlen(p) + 1);
	rc = PH_OK;
out:
	OPENSSL_free(text);
	BN_free(bn);
	ERR_clear_error();
	return rc;
}

static int
ph_asn1_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return PH_E_MALFORMED;
	}
	*out = ph_days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1,
	    tm.tm_mday) * 86400 + tm.tm_hour * 3600LL + tm.tm_min * 60LL +
	    tm.tm_sec;
	return PH_OK;
}

static int
ph_x509_validity(const X509 *x, int64_t *not_before, int64_t *not_after)
{
	int rc;

	if ((rc = ph_asn1_time(X509_get0_notBefore(x), not_before)) != PH_OK)
		return rc;
	return ph_asn1_time(X509_get0_notAfter(x), not_after);
}

int
ph_cert_validity(const struct ph_cert *c, int64_t *not_before,
    int64_t *not_after)
{
	return ph_x509_validity(c->x509, not_before, not_after);
}

int
ph_cert_can_sign(const struct ph_cert *c)
{
	X509 *x = c->x509;

	return !(X509_get_extension_flags(x) & EXFLAG_KUSAGE) ||
	    (X509_get_key_usage(x) & (KU_DIGITAL_SIGNATURE |
	    KU_NON_REPUDIATION)) != 0;
}

int
ph_cert_has_key(const struct ph_cert *c, const struct ph_key *priv)
{
	int ok = c != NULL && priv != NULL && priv->pkey != NULL &&
	    X509_check_private_key(c->x509, priv->pkey) == 1;

	ERR_clear_error();
	return ok;
}

int
ph_cert_subject_cn(const struct ph_cert *c, char **out, const char *what,
    struct ph_diag *diag)
{
	X509_NAME *name = X509_get_subject_name(c->x509);
	unsigned char *cn = NULL;
	char *copy;
	int idx, len;

	*out = NULL;
	if (name == NULL ||
	    (idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
		return ph_fail(diag, PH_E_MALFORMED, "%s: the subject must "
		    "have exactly one CN", what);
	len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(
	    X509_NAME_get_entry(name, idx)));
	if (len < 0) {
		ERR_clear_error();
		return ph_fail(diag, PH_E_MALFORMED, "%s: unreadable CN", what);
	}
	if (memchr(cn, '\0', (size_t)len) != NULL) {
		OPENSSL_free(cn);
		return ph_fail(diag, PH_E_MALFORMED, "%s: CN contains NUL",
		    what);
	}
	if ((copy = malloc((size_t)len + 1)) == NULL) {
		OPENSSL_free(cn);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
	memcpy(copy, cn, (size_t)len);
	copy[len] = '\0';
	OPENSSL_free(cn);
	*out = copy;
	return PH_OK;
}

void
ph_trust_free(struct ph_trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->store);
	sk_X509_pop_free(t->middle, X509_free);
	free(t);
}

int
ph_trust_new(struct ph_trust **out)
{
	struct ph_trust *t;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return PH_E_NOMEM;
	if ((t->store = X509_STORE_new()) == NULL ||
	    (t->middle = sk_X509_new_null()) == NULL) {
		ph_trust_free(t);
		ERR_clear_error();
		return PH_E_NOMEM;
	}
	*out = t;
	return PH_OK;
}

int
ph_trust_add(struct ph_trust *t, const struct ph_cert *c, int root)
{
	if (root) {
		if (X509_STORE_add_cert(t->store, c->x509) != 1)
			return ph_ossl_fail(NULL, PH_E_CONFIG, "root");
		return PH_OK;
	}
	if (X509_up_ref(c->x509) != 1)
		return ph_ossl_fail(NULL, PH_E_NOMEM, "intermediate");
	if (sk_X509_push(t->middle, c->x509) <= 0) {
		X509_free(c->x509);
		return ph_ossl_fail(NULL, PH_E_NOMEM, "intermediate");
	}
	return PH_OK;
}

/* Is x one of t's intermediates? */
static int
ph_trust_is_middle(const struct ph_trust *t, const X509 *x)
{
	int i;

	for (i = 0; i < sk_X509_num(t->middle); i++)
		if (X509_cmp(sk_X509_value(t->middle, i), x) == 0)
			return 1;
	return 0;
}

int
ph_trust_verify(const struct ph_trust *t, const struct ph_cert *c,
    int64_t now, int64_t *not_before, int64_t *not_after, const char *what,
    struct ph_diag *diag)
{
	X509_STORE_CTX *sc = NULL;
	STACK_OF(X509) *chain;
	int64_t nb = INT64_MIN, na = INT64_MAX, b, a;
	int rc = PH_E_SIGNATURE, i, err;

	if ((sc = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(sc, t->store, c->x509, t->middle) != 1) {
		rc = ph_ossl_fail(diag, PH_E_NOMEM, "certificate check");
		goto out;
	}
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sc),
	    (time_t)now);
	if (X509_verify_cert(sc) != 1) {
		err = X509_STORE_CTX_get_error(sc);
		ERR_clear_error();
		ph_fail(diag, rc, "%s: not trusted: %s", what,
		    X509_verify_cert_error_string(err));
		goto out;
	}
	chain = X509_STORE_CTX_get0_chain(sc);
	/* The certificate a message carries signs messages: it is no CA
	 * (basic constraints CA:TRUE), and where intermediates are
	 * configured it is issued by one of them, not straight by a root,
	 * as the provider issues it. */
	if ((X509_get_extension_flags(c->x509) & (EXFLAG_BCONS | EXFLAG_CA))
	    == (EXFLAG_BCONS | EXFLAG_CA)) {
		ph_fail(diag, rc, "%s: not trusted: it is a CA certificate, "
		    "not a signing one", what);
		goto out;
	}
	if (sk_X509_num(t->middle) > 0 && (chain == NULL ||
	    sk_X509_num(chain) < 3 ||
	    !ph_trust_is_middle(t, sk_X509_value(chain, 1)))) {
		ph_fail(diag, rc, "%s: not trusted: not issued by the "
		    "configured intermediate", what);
		goto out;
	}
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		if (ph_x509_validity(sk_X509_value(chain, i), &b,
		    &a) != PH_OK) {
			ph_fail(diag, rc, "%s: unreadable dates", what);
			goto out;
		}
		nb = b > nb ? b : nb;
		na = a < na ? a : na;
	}
	*not_before = nb;
	*not_after = na;
	rc = PH_OK;
out:
	X509_STORE_CTX_free(sc);
	ERR_clear_error();
	return rc;
}
