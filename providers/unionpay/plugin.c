/*
 * China UnionPay online gateway (ACP, 全渠道): the plugin's table, its
 * configuration keys and profiles (the certificate chain, the 5.0.0
 * verification certificates, the signing key).  Verification is in
 * verify.c, notifications in notify.c, the status query in query.c,
 * statements in statement.c.  See README.md.
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

/* 000201 is the B2C gateway product of the official 5.1.0 query demo;
 * 000000 what the .NET and 5.0.0 demos send.  Nothing else is known to
 * be accepted by queryTrans.do. */
const char *const up_query_biz_types[] = { "000201", "000000", NULL };

static const struct ph_conf_key up_conf_keys[UP_CONF__MAX + 1] = {
	[UP_CONF_MER_ID] = { .name = "mer_id", .type = PH_CONF_STRING,
	    .required = 1,
	    .help = "the merchant code (merId) messages must carry" },
	[UP_CONF_ROOT_CERT_FILE] = { .name = "root_cert_file",
	    .type = PH_CONF_FILE, .required = 1,
	    .help = "UnionPay's root CA certificate (PEM)" },
	[UP_CONF_MIDDLE_CERT_FILE] = { .name = "middle_cert_file",
	    .type = PH_CONF_FILE, .required = 1,
	    .help = "UnionPay's intermediate CA certificate (PEM)" },
	[UP_CONF_SIGNER_CN] = { .name = "signer_cn", .type = PH_CONF_STRING,
	    .def = "中国银联股份有限公司",
	    .help = "the company named in the signing certificate's CN" },
	[UP_CONF_VERIFY_CERT_FILES] = { .name = "verify_cert_files",
	    .type = PH_CONF_FILES,
	    .help = "certificates for 5.0.0 messages, chosen by certId "
	    "(PEM)" },
	[UP_CONF_SIGN_KEY_FILE] = { .name = "sign_key_file",
	    .type = PH_CONF_SECRET_FILE,
	    .help = "the merchant's signing key for queries (PEM, "
	    "unencrypted)" },
	[UP_CONF_SIGN_CERT_FILE] = { .name = "sign_cert_file",
	    .type = PH_CONF_FILE,
	    .help = "the certificate of sign_key_file (PEM); its serial is "
	    "certId" },
	[UP_CONF_QUERY_BIZ_TYPE] = { .name = "query_biz_type",
	    .type = PH_CONF_ENUM, .choices = up_query_biz_types,
	    .def = "000201",
	    .help = "bizType of queries: 000201 (gateway) or 000000" },
};

const struct ph_form_limits up_form_limits = {
	.max_bytes = 32 * 1024,
	.max_fields = 96,
	.max_value = 8192,
};

/* ---- Profiles ------------------------------------------------------------ */

static PH_PROFILE_FREE(up_profile_free)
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
			ph_fail(diag, rc, "%s: cannot add certificate %zu",
			    what, i + 1);
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
	if ((rc = up_load_trust(ctx, ph_conf_given(conf, "root_cert_file"), 1,
	    "root_cert_file", diag)) != PH_OK)
		return rc;
	return up_load_trust(ctx, ph_conf_given(conf, "middle_cert_file"), 0,
	    "middle_cert_file", diag);
}

static int
up_load_vcerts(struct up_ctx *ctx, const struct ph_conf *conf,
    struct ph_diag *diag)
{
	const struct ph_conf_value *v;
	struct up_vcert *vc;
	size_t i, j, n;

	v = ph_conf_given(conf, "verify_cert_files");
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

	key = ph_conf_given(conf, "sign_key_file");
	cert = ph_conf_given(conf, "sign_cert_file");
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

/* The core refuses a value outside the choices; a table driven by hand
 * (tests, another host) is held to the same rule here. */
static int
up_load_biz_type(struct up_ctx *ctx, const struct ph_conf *conf,
    struct ph_diag *diag)
{
	const struct ph_conf_value *v = ph_conf_given(conf, "query_biz_type");
	const char *t = v != NULL && v->str[0] != '\0' ? v->str :
	    up_query_biz_types[0];

	if (!ph_in(t, up_query_biz_types))
		return ph_fail(diag, PH_E_CONFIG, "query_biz_type must be "
		    "000201 or 000000 (the bizType of the official query "
		    "demos)");
	memcpy(ctx->query_biz_type, t, 7);
	return PH_OK;
}

static PH_PROFILE_NEW(up_profile_new)
{
	const struct ph_conf_value *cn;
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
	if ((rc = ph_conf_token(conf, "mer_id", ctx->mer_id,
	    sizeof(ctx->mer_id), NULL, diag)) != PH_OK)
		goto fail;
	cn = ph_conf_given(conf, "signer_cn");
	cn_text = cn != NULL && cn->str != NULL ? cn->str : "";
	len = strlen(cn_text);
	if (len == 0 || len > UP_CN_MAX || strchr(cn_text, '@') != NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "signer_cn must be 1 to %d "
		    "bytes without '@'", UP_CN_MAX);
		goto fail;
	}
	memcpy(ctx->signer_cn, cn_text, len + 1);
	if ((rc = up_load_biz_type(ctx, conf, diag)) != PH_OK)
		goto fail;
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

PH_PROVIDER_DEFINE_HINT("unionpay",
    "China UnionPay online gateway (ACP 5.0.0/5.1.0): notifications, "
    "query, statements",
    PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_STATEMENT, up_conf_keys,
    up_profile_new, up_profile_free, up_parse_notify, up_ack,
    up_query_request, up_query_response, NULL, NULL, NULL, NULL,
    up_statement_line, up_notify_hint)
