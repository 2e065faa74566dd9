/*
 * China UnionPay online gateway (ACP, 全渠道): backend notifications and
 * the transaction status query (queryTrans.do).
 *
 * Messages are forms signed with RSA: the signature covers the lowercase
 * hex text of a digest of the sorted k=v string.  Version 5.1.0 carries
 * the signing certificate in the message (signPubKeyCert); it is trusted
 * only after it chains to the configured root through the configured
 * intermediate, at the request's time, and names the configured company
 * in its CN.  Version 5.0.0 names a locally configured certificate by
 * serial (certId).  Order of work: a bounded strict parse, the signature,
 * then the merchant and the business fields.  See README.md.
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

#define UP_BEIJING	28800	/* txnTime is Beijing time, UTC+8 */
#define UP_ORDER_MAX	40	/* orderId: alphanumeric, 8 to 40 */
#define UP_MERID_MAX	32	/* merId: 15 digits in practice */
#define UP_CERTID_MAX	64	/* a serial number in decimal */
#define UP_CN_MAX	256
#define UP_CACHE	8	/* verified signPubKeyCerts kept per profile */
#define UP_QUERY_PATH	"/gateway/api/queryTrans.do"

/* Parallel to the values the core hands profile_new(). */
enum up_conf {
	UP_CONF_MER_ID,
	UP_CONF_ROOT_CERT_FILE,
	UP_CONF_MIDDLE_CERT_FILE,
	UP_CONF_SIGNER_CN,
	UP_CONF_VERIFY_CERT_FILES,
	UP_CONF_SIGN_KEY_FILE,
	UP_CONF_SIGN_CERT_FILE,
	UP_CONF__MAX
};

static const struct ph_conf_key up_conf_keys[UP_CONF__MAX + 1] = {
	[UP_CONF_MER_ID] = { "mer_id", PH_CONF_STRING, 1, NULL, 0, 0, NULL,
	    "the merchant code (merId) messages must carry" },
	[UP_CONF_ROOT_CERT_FILE] = { "root_cert_file", PH_CONF_FILE, 1, NULL,
	    0, 0, NULL, "UnionPay's root CA certificate (PEM)" },
	[UP_CONF_MIDDLE_CERT_FILE] = { "middle_cert_file", PH_CONF_FILE, 1,
	    NULL, 0, 0, NULL,
	    "UnionPay's intermediate CA certificate (PEM)" },
	[UP_CONF_SIGNER_CN] = { "signer_cn", PH_CONF_STRING, 0, NULL, 0, 0,
	    "中国银联股份有限公司",
	    "the company named in the signing certificate's CN" },
	[UP_CONF_VERIFY_CERT_FILES] = { "verify_cert_files", PH_CONF_FILES, 0,
	    NULL, 0, 0, NULL,
	    "certificates for 5.0.0 messages, chosen by certId (PEM)" },
	[UP_CONF_SIGN_KEY_FILE] = { "sign_key_file", PH_CONF_SECRET_FILE, 0,
	    NULL, 0, 0, NULL,
	    "the merchant's signing key for queries (PEM, unencrypted)" },
	[UP_CONF_SIGN_CERT_FILE] = { "sign_cert_file", PH_CONF_FILE, 0, NULL,
	    0, 0, NULL,
	    "the certificate of sign_key_file (PEM); its serial is certId" },
	[UP_CONF__MAX] = { NULL, 0, 0, NULL, 0, 0, NULL, NULL },
};

static const struct ph_form_limits up_form_limits = {
	.max_bytes = 32 * 1024,
	.max_fields = 96,
	.max_value = 8192,
};

/* A 5.0.0 verification certificate, chosen by its serial. */
struct up_vcert {
	char cert_id[UP_CERTID_MAX + 1];
	struct ph_cert *cert;
	int64_t not_before, not_after;
};

/* A signPubKeyCert that passed chain and name checks. */
struct up_cached {
	unsigned char id[PH_SHA256_LEN];	/* SHA-256 of its bytes */
	int64_t not_before, not_after;		/* the chain's window */
	int used;
};

struct up_ctx {
	char mer_id[UP_MERID_MAX + 1];
	char signer_cn[UP_CN_MAX + 1];
	struct ph_trust *trust;		/* the root, and the intermediate(s) */
	struct up_vcert *vcerts;
	size_t nvcerts;
	struct ph_key *sign_key;	/* NULL: no queries */
	char cert_id[UP_CERTID_MAX + 1];
	pthread_mutex_t lock;		/* guards the cache */
	struct up_cached cache[UP_CACHE];
	size_t cache_next;
};

/* What a verified message says, read once. */
struct up_msg {
	struct ph_kvlist kv;
	int gbk;			/* encoding=GBK, else UTF-8 */
};

/* ---- Profiles ------------------------------------------------------------ */

static void
up_profile_free(void *p)
{
	struct up_ctx *ctx = p;
	size_t i;

	if (ctx == NULL)
		return;
	ph_trust_free(ctx->trust);
	for (i = 0; i < ctx->nvcerts; i++)
		ph_cert_free(ctx->vcerts[i].cert);
	free(ctx->vcerts);
	ph_key_free(ctx->sign_key);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

static const struct ph_conf_value *
up_conf(const struct ph_conf *conf, const char *name)
{
	const struct ph_conf_value *v = ph_conf_get(conf, name);

	return v != NULL && v->present ? v : NULL;
}

/* The certificates of one file, as roots or as intermediates. */
static int
up_load_trust(struct up_ctx *ctx, const struct ph_conf_value *v, int root,
    const char *what, struct ph_diag *diag)
{
	struct ph_cert *certs[8];
	size_t n = 0, i;
	int rc;

	if (v == NULL || v->blob.data == NULL)
		return ph_fail(diag, PH_E_CONFIG, "%s is required", what);
	if (ph_cert_load(v->blob.data, v->blob.len, certs, 8, &n, what,
	    diag) != PH_OK)
		return PH_E_CONFIG;
	rc = PH_OK;
	for (i = 0; i < n; i++) {
		if (rc == PH_OK &&
		    (rc = ph_trust_add(ctx->trust, certs[i], root)) != PH_OK)
			ph_fail(diag, rc, "%s: cannot add certificate %zu", what,
			    i + 1);
		ph_cert_free(certs[i]);
	}
	return rc;
}

static int
up_load_chain(struct up_ctx *ctx, const struct ph_conf *conf,
    struct ph_diag *diag)
{
	int rc;

	if ((rc = ph_trust_new(&ctx->trust)) != PH_OK)
		return ph_fail(diag, rc, "certificate store");
	if ((rc = up_load_trust(ctx, up_conf(conf, "root_cert_file"), 1,
	    "root_cert_file", diag)) != PH_OK)
		return rc;
	return up_load_trust(ctx, up_conf(conf, "middle_cert_file"), 0,
	    "middle_cert_file", diag);
}

static int
up_load_vcerts(struct up_ctx *ctx, const struct ph_conf *conf,
    struct ph_diag *diag)
{
	const struct ph_conf_value *v = up_conf(conf, "verify_cert_files");
	struct up_vcert *vc;
	size_t i, j, n;

	if (v == NULL || v->nfiles == 0)
		return PH_OK;
	if ((ctx->vcerts = calloc(v->nfiles, sizeof(*ctx->vcerts))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	for (i = 0; i < v->nfiles; i++) {
		vc = &ctx->vcerts[i];
		if (ph_cert_load(v->files[i].data, v->files[i].len, &vc->cert,
		    1, &n, "verify_cert_files", diag) != PH_OK)
			return PH_E_CONFIG;
		ctx->nvcerts++;
		if (ph_cert_key(vc->cert) == NULL)
			return ph_fail(diag, PH_E_CONFIG, "verify_cert_files: "
			    "file %zu: not an RSA key of %d bits or more",
			    i + 1, PH_RSA_MIN_BITS);
		if (ph_cert_serial(vc->cert, 0, vc->cert_id,
		    sizeof(vc->cert_id)) != PH_OK ||
		    ph_cert_validity(vc->cert, &vc->not_before,
		    &vc->not_after) != PH_OK)
			return ph_fail(diag, PH_E_CONFIG, "verify_cert_files: "
			    "file %zu: unreadable serial or dates", i + 1);
		for (j = 0; j < i; j++)
			if (strcmp(ctx->vcerts[j].cert_id, vc->cert_id) == 0)
				return ph_fail(diag, PH_E_CONFIG,
				    "verify_cert_files: two certificates with "
				    "serial %s", vc->cert_id);
	}
	return PH_OK;
}

static int
up_load_sign_key(struct up_ctx *ctx, const struct ph_conf *conf,
    struct ph_diag *diag)
{
	const struct ph_conf_value *key, *cert;
	struct ph_cert *x = NULL;
	size_t n;
	int rc = PH_E_CONFIG;

	key = up_conf(conf, "sign_key_file");
	cert = up_conf(conf, "sign_cert_file");
	if (key == NULL && cert == NULL)
		return PH_OK;
	if (key == NULL || cert == NULL || key->blob.data == NULL ||
	    cert->blob.data == NULL)
		return ph_fail(diag, PH_E_CONFIG, "sign_key_file and "
		    "sign_cert_file go together: give both or neither");
	/* Lenient: keys exported from UnionPay's .pfx carry "Bag
	 * Attributes" lines before the block. */
	if ((rc = ph_key_load(&key->blob, PH_KEY_PRIVATE, PH_KEY_LENIENT,
	    "sign_key_file", &ctx->sign_key, diag)) != PH_OK)
		return rc;
	rc = PH_E_CONFIG;
	if (ph_cert_load(cert->blob.data, cert->blob.len, &x, 1, &n,
	    "sign_cert_file", diag) != PH_OK)
		goto out;
	if (!ph_cert_has_key(x, ctx->sign_key)) {
		ph_fail(diag, PH_E_CONFIG, "sign_cert_file is not the "
		    "certificate of sign_key_file");
		goto out;
	}
	if (ph_cert_serial(x, 0, ctx->cert_id, sizeof(ctx->cert_id)) !=
	    PH_OK) {
		ph_fail(diag, PH_E_CONFIG, "sign_cert_file: unreadable serial");
		goto out;
	}
	rc = PH_OK;
out:
	ph_cert_free(x);
	if (rc != PH_OK) {
		ph_key_free(ctx->sign_key);
		ctx->sign_key = NULL;
	}
	return rc;
}

static int
up_profile_new(const struct ph_conf *conf, void **out, struct ph_diag *diag)
{
	const struct ph_conf_value *mer, *cn;
	struct up_ctx *ctx;
	const char *cn_text;
	size_t len;
	int rc;

	*out = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
		free(ctx);
		return ph_fail(diag, PH_E_NOMEM, "cannot make a lock");
	}
	if ((mer = up_conf(conf, "mer_id")) == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "mer_id is required");
		goto fail;
	}
	if (ph_copy_token(ctx->mer_id, sizeof(ctx->mer_id), mer->str, NULL,
	    "mer_id", diag) != PH_OK) {
		rc = PH_E_CONFIG;
		goto fail;
	}
	cn = up_conf(conf, "signer_cn");
	cn_text = cn != NULL && cn->str != NULL ? cn->str : "";
	len = strlen(cn_text);
	if (len == 0 || len > UP_CN_MAX || strchr(cn_text, '@') != NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "signer_cn must be 1 to %d "
		    "bytes without '@'", UP_CN_MAX);
		goto fail;
	}
	memcpy(ctx->signer_cn, cn_text, len + 1);
	if ((rc = up_load_chain(ctx, conf, diag)) != PH_OK ||
	    (rc = up_load_vcerts(ctx, conf, diag)) != PH_OK ||
	    (rc = up_load_sign_key(ctx, conf, diag)) != PH_OK)
		goto fail;
	*out = ctx;
	return PH_OK;
fail:
	up_profile_free(ctx);
	return rc;
}

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
static const char *
up_get(const struct up_msg *m, const char *name)
{
	const char *v = ph_kvlist_get(&m->kv, name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A field copied as a token of [A-Za-z0-9] into dst. */
static int
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
static const char *
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

		if (!c->used || !ph_ct_equal(c->id, PH_SHA256_LEN, id, PH_SHA256_LEN))
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
 * signature (empty values included) hashed over its bytes as received,
 * RSA over the lowercase hex text of that digest.
 */
static int
up_verify(struct up_ctx *ctx, struct up_msg *m, int64_t now,
    struct ph_diag *diag)
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
	if ((rc = ph_canonical_join(&m->kv, skip, 0, &s)) != PH_OK) {
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
static int
up_open(struct up_ctx *ctx, struct up_msg *m, int64_t now,
    struct ph_diag *diag)
{
	const char *mer;
	int rc;

	if ((rc = up_verify(ctx, m, now, diag)) != PH_OK)
		return rc;
	/* Verified from here on: is it ours? */
	if ((mer = up_get(m, "merId")) == NULL || strcmp(mer, ctx->mer_id))
		return ph_fail(diag, PH_E_MERCHANT, "merId does not match "
		    "the profile");
	return PH_OK;
}

/* ---- Meaning ------------------------------------------------------------- */

struct up_currency {
	const char *num, *alpha;
};

static const struct up_currency up_currencies[] = {
	{ "156", "CNY" }, { "344", "HKD" }, { "840", "USD" },
	{ "978", "EUR" }, { "392", "JPY" }, { "826", "GBP" },
	{ NULL, NULL },
};

static int
up_amount(const struct up_msg *m, struct ph_event *ev, struct ph_diag *diag)
{
	const char *v;
	size_t i;

	if ((v = up_get(m, "txnAmt")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "txnAmt: missing");
	if (ph_money_parse_minor(v, strlen(v), &ev->amount) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "txnAmt: invalid");
	if ((v = up_get(m, "currencyCode")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "currencyCode: missing");
	for (i = 0; up_currencies[i].num != NULL; i++)
		if (strcmp(v, up_currencies[i].num) == 0)
			break;
	if (up_currencies[i].num == NULL)
		return ph_fail(diag, PH_E_FIELD, "currencyCode: not a "
		    "currency this plugin knows");
	memcpy(ev->currency, up_currencies[i].alpha, 4);
	return PH_OK;
}

static int
up_txn_time(const struct up_msg *m, struct ph_event *ev,
    struct ph_diag *diag)
{
	const char *v = up_get(m, "txnTime");

	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "txnTime: missing");
	if (ph_time_parse_compact(v, UP_BEIJING, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "txnTime: invalid");
	return PH_OK;
}

static int
up_is(const char *v, const char *const *set)
{
	size_t i;

	for (i = 0; v != NULL && set[i] != NULL; i++)
		if (strcmp(v, set[i]) == 0)
			return 1;
	return 0;
}

static const char *const up_success_codes[] = { "00", "A6", NULL };
static const char *const up_busy_codes[] = { "03", "04", "05", NULL };

/* A verified notification: a payment (01), a refund (04) or an undo
 * (31), whether it succeeded, and the dedup key of that fact. */
static int
up_notify_event(const struct up_msg *m, struct ph_event *ev,
    struct ph_diag *diag)
{
	static const char *const refunds[] = { "04", "31", NULL };
	char type[3], resp[3], qid[PH_ID_MAX + 1];
	int rc, ok, refund;

	if ((rc = up_token(m, "txnType", type, sizeof(type), 2, diag)) !=
	    PH_OK)
		return rc;
	refund = up_is(type, refunds);
	if (!refund && strcmp(type, "01") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "txnType %s is not a "
		    "payment (01), refund (04) or undo (31)", type);
	if ((rc = up_token(m, "respCode", resp, sizeof(resp), 2, diag)) !=
	    PH_OK)
		return rc;
	ok = up_is(resp, up_success_codes);
	if ((rc = up_token(m, "orderId", ev->order_id, sizeof(ev->order_id),
	    UP_ORDER_MAX, diag)) != PH_OK ||
	    (rc = up_token(m, "queryId", qid, sizeof(qid), PH_ID_MAX,
	    diag)) != PH_OK ||
	    (rc = up_amount(m, ev, diag)) != PH_OK ||
	    (rc = up_txn_time(m, ev, diag)) != PH_OK)
		return rc;
	if (refund) {
		ev->kind = ok ? PH_EV_REFUND_SUCCEEDED : PH_EV_REFUND_FAILED;
		memcpy(ev->refund_id, qid, strlen(qid) + 1);
		/* A refund is a transaction of its own, with the orderId the
		 * merchant gave it: the merchant's refund id. */
		memcpy(ev->merchant_refund_id, ev->order_id,
		    strlen(ev->order_id) + 1);
		if (up_get(m, "origQryId") != NULL &&
		    (rc = up_token(m, "origQryId", ev->txn_id,
		    sizeof(ev->txn_id), PH_ID_MAX, diag)) != PH_OK)
			return rc;
	} else {
		ev->kind = ok ? PH_EV_PAYMENT_SUCCEEDED : PH_EV_PAYMENT_FAILED;
		memcpy(ev->txn_id, qid, strlen(qid) + 1);
	}
	if (snprintf(ev->dedup_key, sizeof(ev->dedup_key), "up:%s:%s:%s",
	    qid, type, resp) >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

/* Only forms are decoded as forms: a servlet's getParameter, which the
 * official demo relies on, reads the body only for this type. */
static int
up_is_form(const char *ct)
{
	static const char form[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(form) - 1;

	if (ct == NULL || strncasecmp(ct, form, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' ||
	    ct[n] == '\t';
}

static int
up_parse_notify(void *p, const struct ph_request *req, struct ph_event *ev,
    struct ph_diag *diag)
{
	struct up_ctx *ctx = p;
	struct up_msg m;
	int rc;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "unionpay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	memset(&m, 0, sizeof(m));
	if (req->content_type != NULL && req->content_type[0] != '\0' &&
	    !up_is_form(req->content_type))
		return ph_fail(diag, PH_E_MALFORMED, "Content-Type is not "
		    "application/x-www-form-urlencoded");
	if ((rc = ph_form_parse(req->body, req->body_len, &up_form_limits,
	    &m.kv, diag)) != PH_OK)
		return rc;
	if ((rc = up_open(ctx, &m, req->now, diag)) == PH_OK)
		rc = up_notify_event(&m, ev, diag);
	ph_kvlist_free(&m.kv);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/* ---- Acknowledgement ----------------------------------------------------- */

static void
up_ack(void *p, enum ph_ack_kind kind, const char *reason,
    struct ph_response *out)
{
	const char *text;
	size_t n = 0;

	(void)p;
	memset(out, 0, sizeof(*out));
	switch (kind) {
	case PH_ACK_OK:
		/* UnionPay counts HTTP 200 as received; the demo says ok. */
		out->status = 200;
		text = "ok";
		break;
	case PH_ACK_REFUSED:
		out->status = 400;
		text = reason != NULL && reason[0] != '\0' ? reason :
		    "refused";
		break;
	case PH_ACK_RETRY:
		out->status = 500;
		text = "temporarily unavailable";
		break;
	default:
		out->status = 500;
		return;
	}
	/* Printable ASCII only, and short. */
	for (; *text != '\0' && n < 128; text++)
		if ((unsigned char)*text >= 0x20 && (unsigned char)*text < 0x7f)
			out->body[n++] = (unsigned char)*text;
	out->body_len = n;
	memcpy(out->content_type, "text/plain", sizeof("text/plain"));
}

/* ---- Query --------------------------------------------------------------- */

/* txnTime of the payment attempt: {"txnTime":"yyyyMMddHHmmss"}. */
static int
up_attempt_time(const char *attempt, char out[15], struct ph_diag *diag)
{
	json_error_t jerr;
	json_t *root = NULL, *t;
	const char *v;
	int64_t ignored;
	int rc = PH_E_FIELD;

	if (attempt == NULL || attempt[0] == '\0' ||
	    (root = json_loads(attempt, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL || !json_is_object(root) ||
	    (t = json_object_get(root, "txnTime")) == NULL) {
		ph_fail(diag, rc, "UnionPay query needs the attempt's txnTime");
		goto out;
	}
	if (!json_is_string(t) || strlen(v = json_string_value(t)) != 14 ||
	    ph_time_parse_compact(v, UP_BEIJING, &ignored) != PH_OK) {
		ph_fail(diag, rc, "the attempt's txnTime is not "
		    "yyyyMMddHHmmss");
		goto out;
	}
	memcpy(out, v, 15);
	rc = PH_OK;
out:
	json_decref(root);
	return rc;
}

/* signature: base64 RSA-SHA256 over the lowercase hex SHA-256 of the
 * canonical string of the non-empty fields. */
static int
up_sign(const struct up_ctx *ctx, struct ph_kvlist *kv, struct ph_diag *diag)
{
	static const char *const skip[] = { "signature", NULL };
	unsigned char md[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	struct ph_buf s, b64;
	int rc;

	ph_buf_init(&s, PH_HTTP_BODY_MAX);
	ph_buf_init(&b64, 2 * PH_RSA_SIG_MAX);
	if ((rc = ph_canonical_join(kv, skip, 1, &s)) != PH_OK ||
	    (rc = ph_sha256(s.data, s.len, md)) != PH_OK) {
		ph_fail(diag, rc, "cannot build the sign string");
		goto out;
	}
	ph_hex_lower(md, PH_SHA256_LEN, hex);
	if ((rc = ph_rsa_sign(ctx->sign_key, "SHA256", hex, strlen(hex), &b64,
	    diag)) != PH_OK)
		goto out;
	if ((rc = ph_kvlist_add(kv, "signature", 9, b64.data, b64.len,
	    diag)) != PH_OK) {
		ph_fail(diag, rc, "cannot add the signature");
		goto out;
	}
	rc = PH_OK;
out:
	ph_buf_free(&s);
	ph_buf_free(&b64);
	return rc;
}

static int
up_query_request(void *p, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	static const char ct[] = "application/x-www-form-urlencoded";
	const struct up_ctx *ctx = p;
	struct ph_kvlist kv;
	struct ph_buf body;
	char txn_time[15];
	size_t i;
	int rc;
	const char *fields[][2] = {
		{ "version", "5.1.0" },
		{ "encoding", "UTF-8" },
		{ "signMethod", "01" },
		{ "txnType", "00" },
		{ "txnSubType", "00" },
		{ "bizType", "000000" },
		{ "accessType", "0" },
		{ "channelType", "07" },
		{ "merId", NULL },
		{ "orderId", NULL },
		{ "txnTime", txn_time },
		{ "certId", NULL },
	};

	(void)cc;
	if (ctx == NULL || order == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "unionpay: NULL argument");
	memset(out, 0, sizeof(*out));
	if (ctx->sign_key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "UnionPay queries need "
		    "sign_key_file and sign_cert_file in the profile");
	if (order->order_id == NULL || !ph_token_valid(order->order_id,
	    strlen(order->order_id), UP_ORDER_MAX, NULL))
		return ph_fail(diag, PH_E_FIELD, "order id is not a UnionPay "
		    "orderId (1 to %d letters and digits)", UP_ORDER_MAX);
	if ((rc = up_attempt_time(order->attempt, txn_time, diag)) != PH_OK)
		return rc;
	fields[8][1] = ctx->mer_id;
	fields[9][1] = order->order_id;
	fields[11][1] = ctx->cert_id;

	ph_kvlist_init(&kv, 16);
	ph_buf_init(&body, sizeof(out->body));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((rc = ph_kvlist_add(&kv, fields[i][0],
		    strlen(fields[i][0]), fields[i][1], strlen(fields[i][1]),
		    diag)) != PH_OK)
			goto out;
	if ((rc = up_sign(ctx, &kv, diag)) != PH_OK)
		goto out;
	if ((rc = ph_form_write(&kv, &body)) != PH_OK) {
		ph_fail(diag, rc, "cannot write the request body");
		goto out;
	}
	memcpy(out->method, "POST", sizeof("POST"));
	memcpy(out->path, UP_QUERY_PATH, sizeof(UP_QUERY_PATH));
	memcpy(out->content_type, ct, sizeof(ct));
	memcpy(out->body, body.data, body.len);
	out->body_len = body.len;
out:
	ph_kvlist_free(&kv);
	ph_buf_free(&body);
	if (rc != PH_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

/*
 * A reply in UnionPay's own syntax, as its SDKs read it: k=v joined by
 * '&', values not percent-encoded, a value opening with '{' or '[' runs
 * to the matching close so it may hold '&'.  Strict: every pair has a
 * name and '=', no pair is empty, no name repeats, brackets close.
 */
static int
up_parse_reply(const unsigned char *body, size_t len, struct ph_kvlist *kv,
    struct ph_diag *diag)
{
	const char *s = (const char *)body, *key = NULL, *val = NULL;
	size_t i, start = 0;
	char close = 0;
	int rc;

	ph_kvlist_init(kv, up_form_limits.max_fields);
	if (len > up_form_limits.max_bytes)
		return ph_fail(diag, PH_E_TOOBIG, "reply larger than %zu bytes",
		    up_form_limits.max_bytes);
	if (len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "empty reply");
	for (i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '&';

		if (key == NULL || val == NULL) {
			if (c == '=' && i > start) {
				key = s + start;
				val = s + i + 1;
			} else if (c == '&' || c == '=') {
				rc = ph_fail(diag, PH_E_MALFORMED, "reply: a "
				    "field without a name or '='");
				goto fail;
			}
			continue;
		}
		if (close != 0) {
			if (c == close)
				close = 0;
			if (i < len)
				continue;
			rc = ph_fail(diag, PH_E_MALFORMED,
			    "reply: unclosed bracket");
			goto fail;
		}
		if (c == '{' || c == '[') {
			close = c == '{' ? '}' : ']';
			continue;
		}
		if (c != '&')
			continue;
		if ((size_t)(s + i - val) > up_form_limits.max_value) {
			rc = ph_fail(diag, PH_E_TOOBIG, "reply: a value "
			    "longer than %zu bytes", up_form_limits.max_value);
			goto fail;
		}
		if ((rc = ph_kvlist_add(kv, key, (size_t)(val - 1 - key), val,
		    (size_t)(s + i - val), diag)) != PH_OK)
			goto fail;
		key = val = NULL;
		start = i + 1;
	}
	return PH_OK;
fail:
	ph_kvlist_free(kv);
	return rc;
}

static const char *
up_header(const struct ph_http_response *in, const char *name)
{
	size_t i;

	for (i = 0; in->headers != NULL && i < in->nheaders; i++)
		if (in->headers[i].name != NULL &&
		    strcasecmp(in->headers[i].name, name) == 0)
			return in->headers[i].value;
	return NULL;
}

/* Fields of an answer that is not a payment: from the order. */
static int
up_from_order(const struct ph_order_ref *order, struct ph_event *ev,
    struct ph_diag *diag)
{
	if (order->currency == NULL || !ph_currency_valid(order->currency))
		return ph_fail(diag, PH_E_FIELD, "order currency invalid");
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id), order->order_id,
	    NULL, "order id", diag) != PH_OK)
		return PH_E_FIELD;
	ev->amount = order->amount;
	memcpy(ev->currency, order->currency, 4);
	return PH_OK;
}

/*
 * The decision table of the official demo for a verified answer:
 * respCode 00 with origRespCode 00 (or A6) paid; 03/04/05 still
 * processing; anything else failed.  respCode 34: no such order;
 * 03/04/05: busy, ask later; anything else: the query was refused.
 */
static int
up_query_event(const struct up_msg *m, const struct ph_order_ref *order,
    struct ph_event *ev, struct ph_diag *diag)
{
	char resp[3], orig[3], qid[PH_ID_MAX + 1], oid[PH_ID_MAX + 1];
	char type[3], msg[96];
	int rc;

	if ((rc = up_token(m, "respCode", resp, sizeof(resp), 2, diag)) !=
	    PH_OK)
		return rc;
	if (strcmp(resp, "34") == 0) {
		ev->kind = PH_EV_NOT_FOUND;
		if ((rc = up_from_order(order, ev, diag)) != PH_OK)
			return rc;
		snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "up:query:%s:34", ev->order_id);
		return PH_OK;
	}
	if (strcmp(resp, "00") != 0)
		return ph_fail(diag, PH_E_PROVIDER, "UnionPay %s the query: "
		    "respCode %s (%s)", up_is(resp, up_busy_codes) ?
		    "is busy; ask again later for" : "refused", resp,
		    up_diag_text(m, "respMsg", msg, sizeof(msg)));

	if ((rc = up_token(m, "orderId", oid, sizeof(oid), UP_ORDER_MAX,
	    diag)) != PH_OK)
		return rc;
	if (strcmp(oid, order->order_id) != 0)
		return ph_fail(diag, PH_E_FIELD, "the answer is about another "
		    "order");
	if (up_get(m, "txnType") != NULL) {
		if ((rc = up_token(m, "txnType", type, sizeof(type), 2,
		    diag)) != PH_OK)
			return rc;
		if (strcmp(type, "00") != 0 && strcmp(type, "01") != 0)
			return ph_fail(diag, PH_E_FIELD, "the answer is about "
			    "a txnType %s transaction, not a payment", type);
	}
	if ((rc = up_token(m, "origRespCode", orig, sizeof(orig), 2,
	    diag)) != PH_OK)
		return rc;
	if (up_is(orig, up_busy_codes)) {
		ev->kind = PH_EV_PAYMENT_PENDING;
		if ((rc = up_from_order(order, ev, diag)) != PH_OK)
			return rc;
		snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "up:query:%s:pending:%s", ev->order_id, orig);
		return PH_OK;
	}
	memcpy(ev->order_id, oid, strlen(oid) + 1);
	if (up_is(orig, up_success_codes)) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		if ((rc = up_token(m, "queryId", qid, sizeof(qid), PH_ID_MAX,
		    diag)) != PH_OK ||
		    (rc = up_amount(m, ev, diag)) != PH_OK ||
		    (rc = up_txn_time(m, ev, diag)) != PH_OK)
			return rc;
	} else {
		ev->kind = PH_EV_PAYMENT_FAILED;
		qid[0] = '\0';
		if (up_get(m, "queryId") != NULL && (rc = up_token(m,
		    "queryId", qid, sizeof(qid), PH_ID_MAX, diag)) != PH_OK)
			return rc;
		if (up_get(m, "txnAmt") != NULL) {
			if ((rc = up_amount(m, ev, diag)) != PH_OK)
				return rc;
		} else if ((rc = up_from_order(order, ev, diag)) != PH_OK)
			return rc;
		if (up_get(m, "txnTime") != NULL &&
		    (rc = up_txn_time(m, ev, diag)) != PH_OK)
			return rc;
	}
	memcpy(ev->txn_id, qid, strlen(qid) + 1);
	/* The key the notification of this payment carries. */
	if (qid[0] != '\0')
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "up:%s:01:%s", qid, orig);
	else
		rc = snprintf(ev->dedup_key, sizeof(ev->dedup_key),
		    "up:query:%s:01:%s", ev->order_id, orig);
	if (rc < 0 || rc >= (int)sizeof(ev->dedup_key))
		return ph_fail(diag, PH_E_FIELD, "dedup key too long");
	return PH_OK;
}

static int
up_query_response(void *p, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag)
{
	struct up_ctx *ctx = p;
	struct up_msg m;
	int rc;

	if (ctx == NULL || order == NULL || in == NULL || ev == NULL ||
	    order->order_id == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "unionpay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	memset(&m, 0, sizeof(m));
	if (in->status != 200)
		return ph_fail(diag, PH_E_PROVIDER, "UnionPay answered the "
		    "query with HTTP %d", in->status);
	/* UnionPay's SDKs read replies without percent-decoding; a reply
	 * that says it is a form is decoded as one. */
	if (up_is_form(up_header(in, "Content-Type")))
		rc = ph_form_parse(in->body, in->body_len, &up_form_limits,
		    &m.kv, diag);
	else
		rc = up_parse_reply(in->body, in->body_len, &m.kv, diag);
	if (rc != PH_OK)
		return rc;
	if ((rc = up_open(ctx, &m, in->now, diag)) == PH_OK)
		rc = up_query_event(&m, order, ev, diag);
	ph_kvlist_free(&m.kv);
	if (rc != PH_OK)
		memset(ev, 0, sizeof(*ev));
	return rc;
}

/*
 * The order a notification names, read without verifying it: the core
 * only asks UnionPay about that order, it never applies anything from it.
 */
static int
up_notify_hint(void *p, const struct ph_request *req,
    char order_id[PH_ID_MAX + 1])
{
	struct ph_kvlist kv;
	const char *v;
	int rc;

	if (p == NULL || req == NULL)
		return PH_E_INTERNAL;
	if ((rc = ph_form_parse(req->body, req->body_len, &up_form_limits,
	    &kv, NULL)) != PH_OK)
		return rc;
	v = ph_kvlist_get(&kv, "orderId");
	rc = v != NULL ? ph_copy_token(order_id, PH_ID_MAX + 1, v, NULL,
	    "orderId", NULL) : PH_E_FIELD;
	ph_kvlist_free(&kv);
	return rc;
}

/* ---- Statements (payhook reconcile) -------------------------------------- */

/*
 * UnionPay hands its reconciliation files (对账文件) out zipped, in a
 * fixed-width layout known only from a third party, separators
 * unconfirmed (PROTOCOLS.md 3.6 and 8.2).  Rather than guess at widths,
 * this plugin reads a CSV of ACP field names: the operator converts the
 * file into it (README.md), the simulator writes it.  UTF-8, an optional
 * BOM, LF or CRLF:
 *
 *   merId,txnType,orderId,queryId,origQryId,txnTime,txnAmt,currencyCode
 *   777290058110048,01,A1,782611301530001234567,,20261130153000,1000,156
 *   777290058110048,04,phr0000000000007,782611301530001234599,
 *       782611301530001234567,20261130180000,400,156   (one line)
 *   total,2,1400
 *
 * Columns by name (others ignored; merId, txnType, orderId, queryId,
 * txnTime, txnAmt, currencyCode required, origQryId for refunds); no
 * quoting (every value is an identifier or digits); the last line
 * "total,<rows>,<sum of txnAmt>" is required, so a truncated file is
 * refused.  The rows are settled transactions: txnType 01 a payment
 * (keyed as its notification with respCode 00), 04 and 31 a refund whose
 * orderId is the refund's own (payhook's refund id when payhook made it).
 */

enum up_st_col {
	UP_ST_MERID, UP_ST_TXNTYPE, UP_ST_ORDERID, UP_ST_QUERYID,
	UP_ST_ORIGQRYID, UP_ST_TXNTIME, UP_ST_TXNAMT, UP_ST_CURRENCY,
	UP_ST__MAX
};

static const char *const up_st_names[UP_ST__MAX] = {
	"merId", "txnType", "orderId", "queryId", "origQryId", "txnTime",
	"txnAmt", "currencyCode",
};

/* A field as a NUL-terminated token of [A-Za-z0-9], at most max. */
static int
up_st_token(const char *f, size_t n, size_t max, char *dst, size_t cap)
{
	return ph_csv_token(f, n, max, NULL, dst, cap);
}

/* One settled payment or refund of the statement. */
static int
up_st_row(const void *p, const struct ph_csv_row *r, uint64_t no,
    struct ph_event *ev, struct ph_diag *diag)
{
	static const char *const refunds[] = { "04", "31", NULL };
	const struct up_ctx *ctx = p;
	const char *const *f = r->f;
	const size_t *n = r->n;
	char buf[PH_ID_MAX + 1], type[3], qid[PH_ID_MAX + 1];
	size_t i;
	int c;

	c = r->col[UP_ST_MERID];
	if (up_st_token(f[c], n[c], UP_MERID_MAX, buf, sizeof(buf)) != 0 ||
	    strcmp(buf, ctx->mer_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "line %llu: merId is not "
		    "this profile's mer_id %s", (unsigned long long)no,
		    ctx->mer_id);
	c = r->col[UP_ST_TXNTYPE];
	if (up_st_token(f[c], n[c], 2, type, sizeof(type)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: txnType is "
		    "invalid", (unsigned long long)no);
	if (strcmp(type, "01") != 0 && !up_is(type, refunds))
		return ph_fail(diag, PH_E_UNSUPPORTED, "line %llu: txnType %s "
		    "is not a payment (01), refund (04) or undo (31)",
		    (unsigned long long)no, type);
	c = r->col[UP_ST_TXNAMT];
	if (ph_money_parse_minor(f[c], n[c], &ev->amount) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: txnAmt is not "
		    "an amount in fen", (unsigned long long)no);
	c = r->col[UP_ST_CURRENCY];
	for (i = 0; up_currencies[i].num != NULL; i++)
		if (n[c] == 3 && memcmp(f[c], up_currencies[i].num, 3) == 0)
			break;
	if (up_currencies[i].num == NULL)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: currencyCode "
		    "is not one this plugin knows", (unsigned long long)no);
	memcpy(ev->currency, up_currencies[i].alpha, 4);
	c = r->col[UP_ST_TXNTIME];
	if (n[c] != 14 || up_st_token(f[c], n[c], 14, buf, sizeof(buf)) != 0 ||
	    ph_time_parse_compact(buf, UP_BEIJING, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: txnTime is not "
		    "yyyyMMddHHmmss", (unsigned long long)no);
	c = r->col[UP_ST_ORDERID];
	if (up_st_token(f[c], n[c], UP_ORDER_MAX, ev->order_id,
	    sizeof(ev->order_id)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: orderId is "
		    "invalid", (unsigned long long)no);
	c = r->col[UP_ST_QUERYID];
	if (up_st_token(f[c], n[c], PH_ID_MAX, qid, sizeof(qid)) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: queryId is "
		    "invalid", (unsigned long long)no);
	if (strcmp(type, "01") == 0) {
		ev->kind = PH_EV_PAYMENT_SUCCEEDED;
		memcpy(ev->txn_id, qid, strlen(qid) + 1);
	} else {
		ev->kind = PH_EV_REFUND_SUCCEEDED;
		memcpy(ev->refund_id, qid, strlen(qid) + 1);
		memcpy(ev->merchant_refund_id, ev->order_id,
		    strlen(ev->order_id) + 1);
		c = r->col[UP_ST_ORIGQRYID];
		if (c < 0 || up_st_token(f[c], n[c], PH_ID_MAX, ev->txn_id,
		    sizeof(ev->txn_id)) != 0)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: a "
			    "refund without a valid origQryId",
			    (unsigned long long)no);
	}
	/* The key of this transaction's successful notification. */
	snprintf(ev->dedup_key, sizeof(ev->dedup_key), "up:%s:%s:00", qid,
	    type);
	return PH_OK;
}

static const struct ph_csv_layout up_st_layout = {
	up_st_names, UP_ST__MAX, 1u << UP_ST_ORIGQRYID, "txnAmt", up_st_row,
};

static int
up_statement_line(void *p, struct ph_statement *st, const char *line,
    size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	return ph_csv_statement_line(&up_st_layout, p, st, line, len, ev,
	    diag);
}

PH_PROVIDER_DEFINE_HINT("unionpay",
    "China UnionPay online gateway (ACP 5.0.0/5.1.0): notifications, "
    "query, statements",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_STATEMENT, up_conf_keys,
    up_profile_new, up_profile_free, up_parse_notify, up_ack,
    up_query_request, up_query_response, NULL, NULL, NULL, NULL,
    up_statement_line, up_notify_hint)
