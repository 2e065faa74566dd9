/*
 * UnionPay messages and their verification.  Messages are forms signed
 * with RSA: the signature covers the lowercase hex text of a digest of
 * the sorted k=v string.  Version 5.1.0 carries the signing certificate
 * in the message (signPubKeyCert); it is trusted only after it chains to
 * the configured root through the configured intermediate, at the
 * request's time, and names the configured company in its CN.  Version
 * 5.0.0 names a locally configured certificate by serial (certId).
 * Order of work: a bounded strict parse, the signature, then the
 * merchant and the business fields.
 */
#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "unionpay_int.h"

/* ---- Text ---------------------------------------------------------------- */

/*
 * The UTF-8 text of a value of the message, for what leaves the plugin
 * (event fields, diagnostics): GBK messages are converted with iconv, and
 * UTF-8 ones are checked the same way.  The signature is always checked
 * over the bytes as received, never over this.
 */
static int
up_utf8(const struct up_msg *m, const char *in, char *out, size_t cap)
{
	iconv_t cd;
	char *ip = (char *)(uintptr_t)in, *op = out;
	size_t il = strlen(in), ol = cap - 1, r;

	if (cap == 0)
		return PH_E_INTERNAL;
	out[0] = '\0';
	if ((cd = iconv_open("UTF-8", m->gbk ? "GBK" : "UTF-8")) ==
	    (iconv_t)-1)
		return PH_E_UNSUPPORTED;
	r = iconv(cd, &ip, &il, &op, &ol);
	iconv_close(cd);
	if (r == (size_t)-1 || il != 0)
		return errno == E2BIG ? PH_E_TOOBIG : PH_E_MALFORMED;
	*op = '\0';
	return PH_OK;
}

/* A present, non-empty value. */
const char *
up_get(const struct up_msg *m, const char *name)
{
	const char *v = ph_kvlist_get(&m->kv, name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A field copied as a token of [A-Za-z0-9] into dst. */
int
up_token(const struct up_msg *m, const char *name, char *dst, size_t cap,
    size_t max, struct ph_diag *diag)
{
	char buf[PH_ID_MAX + 1];
	const char *v = up_get(m, name);

	dst[0] = '\0';
	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "%s: missing", name);
	if (up_utf8(m, v, buf, sizeof(buf)) != PH_OK ||
	    !ph_token_valid(buf, strlen(buf), max < cap - 1 ? max : cap - 1,
	    NULL))
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", name);
	memcpy(dst, buf, strlen(buf) + 1);
	return PH_OK;
}

/* Printable, short, for a diagnostic. */
const char *
up_diag_text(const struct up_msg *m, const char *name, char *buf,
    size_t cap)
{
	const char *v = up_get(m, name);
	size_t i;

	if (v == NULL || up_utf8(m, v, buf, cap) != PH_OK)
		return "-";
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	return buf;
}

/* ---- Verification -------------------------------------------------------- */

/* Every name a plain ASCII identifier: sorting is then Java's order, and
 * no name can bring '=' or '&' into the sign string. */
static int
up_check_names(const struct up_msg *m, struct ph_diag *diag)
{
	size_t i;

	for (i = 0; i < m->kv.n; i++)
		if (!ph_token_valid(m->kv.items[i].key,
		    strlen(m->kv.items[i].key), 64, "_"))
			return ph_fail(diag, PH_E_MALFORMED,
			    "a field name that is not an ASCII identifier");
	return PH_OK;
}

static int
up_find_cached(struct up_ctx *ctx, const unsigned char *id, int64_t now,
    int *hit, struct ph_diag *diag)
{
	size_t i;
	int rc = PH_OK;

	*hit = 0;
	pthread_mutex_lock(&ctx->lock);
	for (i = 0; i < UP_CACHE; i++) {
		const struct up_cached *c = &ctx->cache[i];

		if (!c->used ||
		    !ph_ct_equal(c->id, PH_SHA256_LEN, id, PH_SHA256_LEN))
			continue;
		*hit = 1;
		if (now < c->not_before || now > c->not_after)
			rc = ph_fail(diag, PH_E_SIGNATURE, "signPubKeyCert: "
			    "outside its validity period");
		break;
	}
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

static void
up_add_cached(struct up_ctx *ctx, const unsigned char *id, int64_t nb,
    int64_t na)
{
	struct up_cached *c;

	pthread_mutex_lock(&ctx->lock);
	c = &ctx->cache[ctx->cache_next];
	ctx->cache_next = (ctx->cache_next + 1) % UP_CACHE;
	memcpy(c->id, id, PH_SHA256_LEN);
	c->not_before = nb;
	c->not_after = na;
	c->used = 1;
	pthread_mutex_unlock(&ctx->lock);
}

/*
 * The owner check: the subject has exactly one CN, and its third
 * '@'-separated part is exactly signer_cn (compared as UTF-8).
 */
static int
up_check_cn(const struct up_ctx *ctx, const struct ph_cert *x,
    struct ph_diag *diag)
{
	const char *part, *at;
	size_t want = strlen(ctx->signer_cn);
	char *cn;
	int i, rc = PH_E_SIGNATURE;

	if ((rc = ph_cert_subject_cn(x, &cn, "signPubKeyCert",
	    diag)) != PH_OK)
		return rc == PH_E_NOMEM ? rc : PH_E_SIGNATURE;
	rc = PH_E_SIGNATURE;
	part = cn;
	for (i = 0; i < 2 && part != NULL; i++)
		part = (at = strchr(part, '@')) != NULL ? at + 1 : NULL;
	if (part == NULL) {
		ph_fail(diag, rc, "signPubKeyCert: CN has fewer than three "
		    "'@'-separated parts");
		goto out;
	}
	at = strchr(part, '@');
	if ((size_t)(at != NULL ? at - part : (ptrdiff_t)strlen(part)) !=
	    want || memcmp(part, ctx->signer_cn, want) != 0) {
		ph_fail(diag, rc, "signPubKeyCert: not issued to signer_cn");
		goto out;
	}
	rc = PH_OK;
out:
	free(cn);
	return rc;
}

/*
 * A 5.1.0 signPubKeyCert: one certificate, chaining to the configured
 * root through the configured intermediate at time now, for an RSA key,
 * usable for signatures, issued to signer_cn.  Verified certificates are
 * remembered by the SHA-256 of their bytes, with the chain's validity
 * window, which is checked again on every use.
 */
static int
up_check_cert(struct up_ctx *ctx, const char *pem, size_t pem_len,
    int64_t now, struct ph_diag *diag)
{
	unsigned char id[PH_SHA256_LEN];
	struct ph_cert *x = NULL;
	int64_t nb, na;
	size_t n;
	int hit, rc;

	if ((rc = ph_sha256(pem, pem_len, id)) != PH_OK)
		return ph_fail(diag, rc, "cannot hash signPubKeyCert");
	if ((rc = up_find_cached(ctx, id, now, &hit, diag)) != PH_OK || hit)
		return rc;

	rc = PH_E_SIGNATURE;
	if (ph_cert_load((const unsigned char *)pem, pem_len, &x, 1, &n,
	    "signPubKeyCert", diag) != PH_OK)
		return PH_E_SIGNATURE;
	if (ph_cert_key(x) == NULL) {
		ph_fail(diag, rc, "signPubKeyCert: not an RSA key of %d bits "
		    "or more", PH_RSA_MIN_BITS);
		goto out;
	}
	if (!ph_cert_can_sign(x)) {
		ph_fail(diag, rc, "signPubKeyCert: key usage does not allow "
		    "signatures");
		goto out;
	}
	if ((rc = ph_trust_verify(ctx->trust, x, now, &nb, &na,
	    "signPubKeyCert", diag)) != PH_OK ||
	    (rc = up_check_cn(ctx, x, diag)) != PH_OK)
		goto out;
	up_add_cached(ctx, id, nb, na);
	rc = PH_OK;
out:
	ph_cert_free(x);
	return rc;
}

/* A 5.0.0 message's key: the configured certificate whose serial is
 * certId, within its validity period. */
static int
up_find_vcert(const struct up_ctx *ctx, const struct up_msg *m, int64_t now,
    const struct up_vcert **out, struct ph_diag *diag)
{
	char buf[UP_CERTID_MAX + 1];
	const char *id = up_get(m, "certId");
	size_t i;

	*out = NULL;
	if (id == NULL)
		return ph_fail(diag, PH_E_SIGNATURE,
		    "5.0.0 message without certId");
	if (ctx->nvcerts == 0)
		return ph_fail(diag, PH_E_SIGNATURE, "5.0.0 messages need "
		    "verify_cert_files, and this profile has none");
	for (i = 0; i < ctx->nvcerts; i++)
		if (strcmp(ctx->vcerts[i].cert_id, id) == 0)
			break;
	if (i == ctx->nvcerts)
		return ph_fail(diag, PH_E_SIGNATURE, "certId %s is not one "
		    "of verify_cert_files", up_diag_text(m, "certId", buf,
		    sizeof(buf)));
	if (now < ctx->vcerts[i].not_before || now > ctx->vcerts[i].not_after)
		return ph_fail(diag, PH_E_SIGNATURE, "the certificate of "
		    "certId %s is outside its validity period",
		    ctx->vcerts[i].cert_id);
	*out = &ctx->vcerts[i];
	return PH_OK;
}

/*
 * The one "valid" answer for a message: version and signMethod pinned to
 * what is implemented, the canonical string of every received field but
 * signature hashed over its bytes as received, RSA over the lowercase hex
 * text of that digest.
 *
 * Empty values: the official SDK signs with SDKUtil.filterBlank (a field
 * whose value is blank is neither signed nor sent), and its notification
 * receiver (BackRcvResponse) drops every parameter whose value is "" before
 * AcpService.validate; a notification is therefore verified without its
 * empty fields.  A synchronous answer is validated by the SDK as read
 * (convertResultStringToMap, no filter), so an answer keeps them.  Only a
 * value that is exactly empty is left out: the receiver does not trim.
 * tests/vectors/FINDINGS.md section 2 gives the SDK's files and lines.
 */
static int
up_verify(struct up_ctx *ctx, struct up_msg *m, enum up_kind kind,
    int64_t now, struct ph_diag *diag)
{
	static const char *const skip[] = { "signature", NULL };
	unsigned char sig[PH_RSA_SIG_MAX], md[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1], vbuf[24];
	const char *version, *method, *enc, *b64;
	const struct up_vcert *vc = NULL;
	const char *cert = NULL;
	size_t sig_len;
	struct ph_buf s;
	int v51, rc;

	if ((rc = up_check_names(m, diag)) != PH_OK)
		return rc;
	if ((version = up_get(m, "version")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "version: missing");
	if (strcmp(version, "5.1.0") == 0)
		v51 = 1;
	else if (strcmp(version, "5.0.0") == 0)
		v51 = 0;
	else
		return ph_fail(diag, PH_E_UNSUPPORTED, "UnionPay version %s is "
		    "not supported (5.0.0 and 5.1.0 are)",
		    up_diag_text(m, "version", vbuf, sizeof(vbuf)));
	if ((method = up_get(m, "signMethod")) == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "signMethod: missing");
	if (strcmp(method, "01") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "signMethod %s is not "
		    "supported: only 01 (RSA with UnionPay's certificate); "
		    "11 and 12 (secureKey digests) are refused",
		    up_diag_text(m, "signMethod", vbuf, sizeof(vbuf)));
	if ((enc = up_get(m, "encoding")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "encoding: missing");
	if (strcasecmp(enc, "UTF-8") == 0)
		m->gbk = 0;
	else if (strcasecmp(enc, "GBK") == 0)
		m->gbk = 1;
	else
		return ph_fail(diag, PH_E_UNSUPPORTED, "encoding %s is not "
		    "supported (UTF-8 and GBK are)",
		    up_diag_text(m, "encoding", vbuf, sizeof(vbuf)));
	if ((b64 = up_get(m, "signature")) == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "message is not signed");
	if (ph_base64_decode(b64, strlen(b64), sig, sizeof(sig),
	    &sig_len) != PH_OK || sig_len == 0)
		return ph_fail(diag, PH_E_SIGNATURE,
		    "signature is not valid base64");

	if (v51) {
		if ((cert = up_get(m, "signPubKeyCert")) == NULL)
			return ph_fail(diag, PH_E_SIGNATURE,
			    "5.1.0 message without signPubKeyCert");
		if ((rc = up_check_cert(ctx, cert, strlen(cert), now,
		    diag)) != PH_OK)
			return rc;
	} else if ((rc = up_find_vcert(ctx, m, now, &vc, diag)) != PH_OK)
		return rc;

	ph_buf_init(&s, up_form_limits.max_bytes);
	if ((rc = ph_canonical_join(&m->kv, skip, kind == UP_NOTIFICATION,
	    &s)) != PH_OK) {
		ph_buf_free(&s);
		return ph_fail(diag, rc, "cannot build the sign string");
	}
	rc = v51 ? ph_sha256(s.data, s.len, md) : ph_sha1(s.data, s.len, md);
	ph_buf_free(&s);
	if (rc != PH_OK)
		return ph_fail(diag, rc, "cannot digest the sign string");
	ph_hex_lower(md, v51 ? PH_SHA256_LEN : PH_SHA1_LEN, hex);
	rc = v51 ? ph_rsa_verify_pem("SHA256", (const unsigned char *)cert,
	    strlen(cert), hex, strlen(hex), sig, sig_len, diag) :
	    ph_rsa_verify(ph_cert_key(vc->cert), "SHA1", hex, strlen(hex), sig,
	    sig_len, diag);
	/* Whatever went wrong with a key the message brought, it is the
	 * message that is refused. */
	return rc == PH_OK ? PH_OK : PH_E_SIGNATURE;
}

/* Parses (form), verifies and checks the merchant of a message. */
int
up_open(struct up_ctx *ctx, struct up_msg *m, enum up_kind kind,
    int64_t now, struct ph_diag *diag)
{
	const char *mer;
	int rc;

	if ((rc = up_verify(ctx, m, kind, now, diag)) != PH_OK)
		return rc;
	/* Verified from here on: is it ours? */
	if ((mer = up_get(m, "merId")) == NULL || strcmp(mer, ctx->mer_id))
		return ph_fail(diag, PH_E_MERCHANT, "merId does not match "
		    "the profile");
	return PH_OK;
}
