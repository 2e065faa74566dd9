/*
 * WeChat Pay API v3 (JSON, RSA-signed headers, AES-256-GCM).
 *
 * Profiles with api_version = 3.  A notification is trusted in this order,
 * cheapest and least trusting first: the body bound; the Wechatpay-*
 * headers, each exactly once; the timestamp within timestamp_tolerance_s
 * of now; the platform key named by Wechatpay-Serial, looked up only among
 * the configured ones (never fetched, never taken from the message); the
 * RSA-SHA256 signature over "timestamp\nnonce\nbody\n" of the raw body; a
 * strict parse of the envelope; AES-256-GCM decryption of resource with
 * the APIv3 key (a bad tag refuses the whole notification, nothing of the
 * plaintext is looked at); a strict parse of the plaintext; its mchid and
 * appid; then the business fields, always from the decrypted object,
 * never from the clear-text event_type or summary.  A query answer goes
 * through the same signature check.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "wechat_int.h"

/* The envelope is an object holding one object; the decrypted
 * transaction nests promotion_detail[].goods_detail[] (depth 5). */
const struct ph_json_limits wx3_envelope_limits = { WX3_BODY_MAX, 4 };
const struct ph_json_limits wx3_resource_limits = { WX3_BODY_MAX, 8 };

/* trade_state of a decrypted transaction and the event it becomes. */
static const struct ph_state wx3_trade_states[] = {
	{ "SUCCESS", PH_EV_PAYMENT_SUCCEEDED },
	/* Refunded after payment: the money did move; the refund is a
	 * separate fact. */
	{ "REFUND", PH_EV_PAYMENT_SUCCEEDED },
	{ "NOTPAY", PH_EV_PAYMENT_PENDING },
	{ "USERPAYING", PH_EV_PAYMENT_PENDING },
	{ "CLOSED", PH_EV_PAYMENT_CLOSED },
	{ "REVOKED", PH_EV_PAYMENT_FAILED },
	{ "PAYERROR", PH_EV_PAYMENT_FAILED },
	{ NULL, PH_EV__MAX },
};

/* The v3-only and v2-only configuration keys, for the cross checks. */
static const char *const wx3_only_keys[] = {
	"apiv3_key_file", "platform_cert_files", "platform_public_key_file",
	"platform_public_key_id", "merchant_private_key_file",
	"merchant_serial", "timestamp_tolerance_s", NULL
};
static const char *const wx3_v2_only_keys[] = {
	"api_key_file", "sign_type", NULL
};

/* Refuses any of names given on this profile. */
static int
wx3_refuse_keys(const struct ph_conf *conf, const char *const *names,
    int version, struct ph_diag *diag)
{
	const struct ph_conf_value *v;
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if ((v = ph_conf_get(conf, names[i])) != NULL && v->present)
			return ph_fail(diag, PH_E_CONFIG, "%s is an API v%d "
			    "key but this profile has api_version = %d",
			    names[i], version == 2 ? 3 : 2, version);
	return PH_OK;
}

/*
 * api_version: "2" (the default) or "3".  The keys of the other version
 * are refused rather than ignored: a v3 key on a v2 profile (or the
 * reverse) means the profile is not what its author thinks.
 */
int
wx3_version(const struct ph_conf *conf, int *version, struct ph_diag *diag)
{
	const struct ph_conf_value *v = ph_conf_get(conf, "api_version");

	*version = 2;
	if (v != NULL && v->present && v->str != NULL) {
		if (strcmp(v->str, "3") == 0)
			*version = 3;
		else if (strcmp(v->str, "2") != 0)
			return ph_fail(diag, PH_E_CONFIG,
			    "api_version must be 2 or 3");
	}
	return wx3_refuse_keys(conf, *version == 2 ? wx3_only_keys :
	    wx3_v2_only_keys, *version, diag);
}

static void
wx3_key_clear(struct wx3_key *k)
{
	ph_key_free(k->pubkey);
	ph_cert_free(k->cert);
	memset(k, 0, sizeof(*k));
}

void
wx3_ctx_free(struct wx3_ctx *v3)
{
	size_t i;

	if (v3 == NULL)
		return;
	for (i = 0; i < v3->nkeys; i++)
		wx3_key_clear(&v3->keys[i]);
	ph_key_free(v3->merchant_key);
	ph_cleanse(v3, sizeof(*v3));
	free(v3);
}

/*
 * Whether a Wechatpay-Serial names key serial: a public key by its id,
 * exactly; a certificate by its serial number, the same number in hex
 * whatever its case and leading zeros (WeChat writes the serial's bytes,
 * 0C4AEF34...; older SDKs printed the number, C4AEF34...).
 */
static int
wx3_serial_same(const char *serial, const char *named)
{
	if (strncmp(serial, WX3_PUB_KEY_PREFIX, strlen(WX3_PUB_KEY_PREFIX)) ==
	    0 || strncmp(named, WX3_PUB_KEY_PREFIX,
	    strlen(WX3_PUB_KEY_PREFIX)) == 0)
		return strcmp(serial, named) == 0;
	serial += strspn(serial, "0");
	named += strspn(named, "0");
	return *named != '\0' && strcasecmp(serial, named) == 0;
}

/*
 * A platform certificate, one per file; its serial in upper-case hex
 * without leading zeros (ph_cert_serial), matched as a number
 * (wx3_serial_same).
 */
static int
wx3_load_cert(const struct ph_blob *b, struct wx3_key *k,
    struct ph_diag *diag)
{
	static const char what[] = "platform_cert_files";
	size_t n;
	int rc;

	if ((rc = ph_cert_load(b->data, b->len, &k->cert, 1, &n, what,
	    diag)) != PH_OK)
		return rc == PH_E_NOMEM ? rc : PH_E_CONFIG;
	if ((k->key = ph_cert_key(k->cert)) == NULL)
		rc = ph_fail(diag, PH_E_CONFIG, "%s: not an RSA key of %d bits "
		    "or more", what, PH_RSA_MIN_BITS);
	else if ((rc = ph_cert_serial(k->cert, 1, k->serial,
	    sizeof(k->serial))) != PH_OK)
		rc = ph_fail(diag, rc == PH_E_NOMEM ? rc : PH_E_CONFIG, "%s: a "
		    "serial number that is zero, negative or longer than %zu "
		    "hex digits", what, sizeof(k->serial) - 1);
	else if (ph_cert_validity(k->cert, &k->not_before,
	    &k->not_after) != PH_OK)
		rc = ph_fail(diag, PH_E_CONFIG, "%s: unreadable dates", what);
	if (rc != PH_OK)
		wx3_key_clear(k);
	return rc;
}

static int
wx3_load_pubkey(const struct ph_blob *b, const char *id, struct wx3_key *k,
    struct ph_diag *diag)
{
	size_t n = strlen(id);
	int rc;

	if (n <= strlen(WX3_PUB_KEY_PREFIX) || n > WX3_SERIAL_MAX ||
	    strncmp(id, WX3_PUB_KEY_PREFIX, strlen(WX3_PUB_KEY_PREFIX)) != 0 ||
	    !ph_token_valid(id, n, WX3_SERIAL_MAX, "_"))
		return ph_fail(diag, PH_E_CONFIG, "platform_public_key_id must "
		    "be PUB_KEY_ID_ followed by letters and digits (at most %d "
		    "characters in all)", WX3_SERIAL_MAX);
	if ((rc = ph_key_load(b, PH_KEY_PUBLIC, 0, "platform_public_key_file",
	    &k->pubkey, diag)) != PH_OK)
		return rc;
	k->key = k->pubkey;
	memcpy(k->serial, id, n + 1);
	return PH_OK;
}

static int
wx3_add_key(struct wx3_ctx *v3, const struct wx3_key *k,
    struct ph_diag *diag)
{
	size_t i;

	for (i = 0; i < v3->nkeys; i++)
		if (wx3_serial_same(v3->keys[i].serial, k->serial))
			return ph_fail(diag, PH_E_CONFIG, "platform key %s is "
			    "configured twice", k->serial);
	if (v3->nkeys == WX3_KEYS_MAX)
		return ph_fail(diag, PH_E_CONFIG, "more than %d platform keys",
		    WX3_KEYS_MAX);
	v3->keys[v3->nkeys++] = *k;
	return PH_OK;
}

int
wx3_profile_new(const struct ph_conf *conf, struct wx_ctx *ctx,
    struct ph_diag *diag)
{
	const struct ph_conf_value *key, *certs, *pubf, *pubid, *priv, *ser,
	    *tol;
	struct wx3_ctx *v3;
	struct wx3_key k;
	size_t i;
	int rc;

	if ((v3 = calloc(1, sizeof(*v3))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	key = ph_conf_given(conf, "apiv3_key_file");
	certs = ph_conf_given(conf, "platform_cert_files");
	pubf = ph_conf_given(conf, "platform_public_key_file");
	pubid = ph_conf_given(conf, "platform_public_key_id");
	priv = ph_conf_given(conf, "merchant_private_key_file");
	ser = ph_conf_given(conf, "merchant_serial");
	tol = ph_conf_given(conf, "timestamp_tolerance_s");

	if (key == NULL || key->blob.data == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "apiv3_key_file is required "
		    "with api_version = 3");
		goto fail;
	}
	if ((rc = ph_secret_check(&key->blob, WX3_KEY_LEN, WX3_KEY_LEN,
	    "apiv3_key_file", diag)) != PH_OK)
		goto fail;
	memcpy(v3->apiv3_key, key->blob.data, WX3_KEY_LEN);

	v3->tolerance = WX3_TOLERANCE_DEF;
	if (tol != NULL) {
		if (tol->num < 1 || tol->num > 3600) {
			rc = ph_fail(diag, PH_E_CONFIG, "timestamp_tolerance_s "
			    "must be from 1 to 3600");
			goto fail;
		}
		v3->tolerance = tol->num;
	}

	for (i = 0; certs != NULL && i < certs->nfiles; i++) {
		memset(&k, 0, sizeof(k));
		if ((rc = wx3_load_cert(&certs->files[i], &k, diag)) != PH_OK)
			goto fail;
		if ((rc = wx3_add_key(v3, &k, diag)) != PH_OK) {
			wx3_key_clear(&k);
			goto fail;
		}
	}
	if ((pubf == NULL) != (pubid == NULL)) {
		rc = ph_fail(diag, PH_E_CONFIG, "platform_public_key_file and "
		    "platform_public_key_id go together");
		goto fail;
	}
	if (pubf != NULL) {
		memset(&k, 0, sizeof(k));
		if ((rc = wx3_load_pubkey(&pubf->blob, pubid->str, &k,
		    diag)) != PH_OK)
			goto fail;
		if ((rc = wx3_add_key(v3, &k, diag)) != PH_OK) {
			wx3_key_clear(&k);
			goto fail;
		}
	}
	if (v3->nkeys == 0) {
		rc = ph_fail(diag, PH_E_CONFIG, "api_version = 3 needs "
		    "platform_cert_files, or platform_public_key_file with "
		    "platform_public_key_id, to verify WeChat Pay's "
		    "signatures");
		goto fail;
	}

	if ((priv == NULL) != (ser == NULL)) {
		rc = ph_fail(diag, PH_E_CONFIG, "merchant_private_key_file and "
		    "merchant_serial go together");
		goto fail;
	}
	if (priv != NULL) {
		if (ser->str == NULL || strlen(ser->str) > WX3_SERIAL_MAX ||
		    !ph_token_valid(ser->str, strlen(ser->str),
		    WX3_SERIAL_MAX, NULL) ||
		    strspn(ser->str, "0123456789ABCDEFabcdef") !=
		    strlen(ser->str)) {
			rc = ph_fail(diag, PH_E_CONFIG, "merchant_serial must "
			    "be the hex serial number of the merchant API "
			    "certificate");
			goto fail;
		}
		memcpy(v3->merchant_serial, ser->str, strlen(ser->str) + 1);
		if ((rc = ph_key_load(&priv->blob, PH_KEY_PRIVATE, 0,
		    "merchant_private_key_file", &v3->merchant_key,
		    diag)) != PH_OK)
			goto fail;
	}
	ctx->v3 = v3;
	return PH_OK;
fail:
	wx3_ctx_free(v3);
	return rc;
}

/* ---- v3 signatures ------------------------------------------------------ */

PH_UNITTEST_STATIC int
wx3_message(const struct wx3_line *l, size_t n, struct ph_buf *msg)
{
	size_t i;

	ph_buf_append(msg, "", 0);
	for (i = 0; i < n; i++) {
		ph_buf_append(msg, l[i].p, l[i].n);
		ph_buf_append(msg, "\n", 1);
	}
	return msg->err;
}

/* base64(RSA-SHA256, PKCS#1 v1.5, of msg) appended to out. */
static int
wx3_rsa_sign(const struct ph_key *key, const void *msg, size_t len,
    struct ph_buf *out, struct ph_diag *diag)
{
	if (key == NULL)
		return ph_fail(diag, PH_E_CONFIG, "merchant_private_key_file "
		    "and merchant_serial are needed to sign requests");
	return ph_rsa_sign(key, "SHA256", msg, len, out, diag);
}

/* The signature of lines (each ending in "\n"), base64, into sig. */
PH_UNITTEST_STATIC int
wx3_sign_lines(const struct wx3_ctx *v3, const struct wx3_line *l, size_t n,
    struct ph_buf *sig, struct ph_diag *diag)
{
	struct ph_buf msg;
	int rc;

	ph_buf_init(&msg, PH_HTTP_BODY_MAX + 4096);
	if ((rc = wx3_message(l, n, &msg)) != PH_OK)
		rc = ph_fail(diag, rc, "cannot build the sign string");
	else
		rc = wx3_rsa_sign(v3->merchant_key, msg.data, msg.len, sig,
		    diag);
	ph_buf_free(&msg);
	return rc;
}

/*
 * Verifies the Wechatpay-* signature of a notification or an answer:
 * PH_OK only when the platform key the configuration holds under
 * Wechatpay-Serial signed "timestamp\nnonce\nbody\n" within the
 * tolerance of now.  Signature probes (WECHATPAY/SIGNTEST/...) are not
 * base64 and fail like any other bad signature.
 */
int
wx3_verify(const struct wx3_ctx *v3, const struct ph_header *h, size_t nh,
    const unsigned char *body, size_t len, int64_t now, const char *what,
    struct ph_diag *diag)
{
	const char *ts, *nonce, *sig64, *serial, *type;
	const struct wx3_key *k = NULL;
	unsigned char sig[WX3_SIG_MAX];
	struct wx3_line lines[3];
	struct ph_buf msg;
	size_t siglen = 0, i;
	int64_t t, skew;
	int rc;

	if ((rc = ph_header_get(h, nh, "Wechatpay-Timestamp", &ts,
	    diag)) != PH_OK ||
	    (rc = ph_header_get(h, nh, "Wechatpay-Nonce", &nonce,
	    diag)) != PH_OK ||
	    (rc = ph_header_get(h, nh, "Wechatpay-Signature", &sig64,
	    diag)) != PH_OK ||
	    (rc = ph_header_get(h, nh, "Wechatpay-Serial", &serial,
	    diag)) != PH_OK)
		return rc;
	/* Optional, but when sent it must name the one scheme we verify. */
	rc = ph_header_get(h, nh, "Wechatpay-Signature-Type", &type, NULL);
	if (type != NULL && (rc != PH_OK || strcmp(type, WX3_SCHEME) != 0))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: "
		    "Wechatpay-Signature-Type %.40s is not %s", what, type,
		    WX3_SCHEME);
	if (ph_time_parse_unix(ts, strlen(ts), &t) != PH_OK)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Timestamp "
		    "is not unix seconds", what);
	skew = t > now ? t - now : now - t;
	if (skew > v3->tolerance)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Timestamp "
		    "%lld is %lld s from now, more than %lld s", what,
		    (long long)t, (long long)skew, (long long)v3->tolerance);
	if (!ph_token_valid(nonce, strlen(nonce), WX3_NONCE_MAX, WX3_ID_EXTRA))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Nonce is "
		    "invalid", what);
	for (i = 0; i < v3->nkeys; i++)
		if (wx3_serial_same(v3->keys[i].serial, serial)) {
			k = &v3->keys[i];
			break;
		}
	if (k == NULL)
		return ph_fail(diag, PH_E_SIGNATURE, "%s: unknown "
		    "Wechatpay-Serial %.64s: no configured platform "
		    "certificate or public key has it", what, serial);
	if (k->cert != NULL && (now < k->not_before || now >= k->not_after))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: platform certificate "
		    "%s is not valid now", what, k->serial);
	if (ph_base64_decode(sig64, strlen(sig64), sig, sizeof(sig),
	    &siglen) != PH_OK || siglen == 0 || siglen != ph_key_size(k->key))
		return ph_fail(diag, PH_E_SIGNATURE, "%s: Wechatpay-Signature "
		    "is not a base64 RSA signature for key %s", what,
		    k->serial);

	lines[0].p = ts;
	lines[0].n = strlen(ts);
	lines[1].p = nonce;
	lines[1].n = strlen(nonce);
	lines[2].p = body != NULL ? (const void *)body : "";
	lines[2].n = body != NULL ? len : 0;
	ph_buf_init(&msg, WX3_BODY_MAX + 128);
	if ((rc = wx3_message(lines, 3, &msg)) != PH_OK) {
		ph_fail(diag, rc, "%s: body larger than %d bytes", what,
		    WX3_BODY_MAX);
		goto out;
	}
	if (ph_rsa_verify(k->key, "SHA256", msg.data, msg.len, sig, siglen,
	    diag) != PH_OK) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "%s: signature mismatch "
		    "(platform key %s)", what, k->serial);
		goto out;
	}
	rc = PH_OK;
out:
	ph_buf_free(&msg);
	return rc;
}

/* ---- v3 resource decryption -------------------------------------------- */

/*
 * AEAD_AES_256_GCM (RFC 5116) with the APIv3 key: IV = the 12 bytes of
 * resource.nonce, AAD = resource.associated_data (fed even when empty),
 * ciphertext = base64 of data || 16-byte tag.  *plain (plen bytes, NUL
 * after them) is the caller's to cleanse and free; nothing is returned
 * unless the tag checked.
 */
static int
wx3_decrypt(const struct wx3_ctx *v3, const struct json_t *res,
    unsigned char **plain, size_t *plen, struct ph_diag *diag)
{
	const char *alg, *iv, *aad, *ct64;
	size_t ivlen, aadlen, ct64len, ctlen = 0;
	unsigned char *ct = NULL, *pt = NULL;
	int rc;

	*plain = NULL;
	*plen = 0;
	if ((rc = ph_json_get_string(res, "algorithm", 32, &alg, NULL,
	    diag)) != PH_OK)
		return rc;
	if (strcmp(alg, "AEAD_AES_256_GCM") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "resource.algorithm "
		    "%.32s is not AEAD_AES_256_GCM", alg);
	if ((rc = ph_json_get_string(res, "nonce", 64, &iv, &ivlen,
	    diag)) != PH_OK ||
	    (rc = ph_json_get_string(res, "associated_data", WX3_AAD_MAX,
	    &aad, &aadlen, diag)) != PH_OK ||
	    (rc = ph_json_get_string(res, "ciphertext", WX3_BODY_MAX, &ct64,
	    &ct64len, diag)) != PH_OK)
		return rc;
	if (ivlen != WX3_GCM_IV_LEN)
		return ph_fail(diag, PH_E_FIELD, "resource.nonce: %zu bytes, "
		    "not %d", ivlen, WX3_GCM_IV_LEN);
	if ((ct = malloc(ct64len / 4 * 3 + 1)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if (ph_base64_decode(ct64, ct64len, ct, ct64len / 4 * 3 + 1,
	    &ctlen) != PH_OK) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "resource.ciphertext is "
		    "not base64");
		goto out;
	}
	if (ctlen <= PH_GCM_TAG_LEN) {
		rc = ph_fail(diag, PH_E_SIGNATURE, "resource.ciphertext: %zu "
		    "bytes, shorter than data and a 16-byte tag", ctlen);
		goto out;
	}
	if ((pt = malloc(ctlen + 1)) == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = ph_aes256gcm_decrypt(v3->apiv3_key,
	    (const unsigned char *)iv, ivlen, aad, aadlen, ct, ctlen, pt, plen,
	    diag)) != PH_OK) {
		if (rc == PH_E_SIGNATURE)
			ph_fail(diag, rc, "resource: AES-256-GCM authentication "
			    "failed (wrong APIv3 key, or the ciphertext, tag, "
			    "nonce or associated_data changed)");
		goto out;
	}
	pt[*plen] = '\0';
	*plain = pt;
	pt = NULL;
	rc = PH_OK;
out:
	if (pt != NULL) {
		ph_cleanse(pt, ctlen + 1);
		free(pt);
	}
	free(ct);
	return rc;
}

/* ---- v3 business fields ------------------------------------------------ */

/* RFC 3339 as WeChat writes it, "2018-06-08T10:34:56+08:00". */
int
wx3_time(const char *s, int64_t *out)
{
	return ph_time_parse_rfc3339(s, out);
}

/* mchid (and appid for transactions) must be the profile's; a
 * service-provider object names a sub-merchant we cannot check. */
static int
wx3_merchant(const struct wx_ctx *ctx, const struct json_t *o,
    int with_appid, struct ph_diag *diag)
{
	const char *v;

	if (ph_json_get_string(o, "mchid", WX_ID_MAX, &v, NULL, NULL) !=
	    PH_OK || strcmp(v, ctx->mch_id) != 0)
		return ph_fail(diag, PH_E_MERCHANT, "mchid does not match");
	if (with_appid && (ph_json_get_string(o, "appid", WX_ID_MAX, &v, NULL,
	    NULL) != PH_OK || strcmp(v, ctx->appid) != 0))
		return ph_fail(diag, PH_E_MERCHANT, "appid does not match");
	if (ph_json_lookup(o, "sp_mchid") != NULL ||
	    ph_json_lookup(o, "sub_mchid") != NULL ||
	    ph_json_lookup(o, "sp_appid") != NULL ||
	    ph_json_lookup(o, "sub_appid") != NULL)
		return ph_fail(diag, PH_E_MERCHANT, "sp_mchid/sub_mchid: "
		    "service-provider mode is not supported");
	return PH_OK;
}

/* WeChat ids: out_trade_no with its extra characters, the others plain,
 * at most 32; copied into an event field. */
static int
wx3_id(const struct json_t *o, const char *path, const char *extra,
    char *dst, size_t cap, struct ph_diag *diag)
{
	char tmp[WX_ID_MAX + 1];
	int rc;

	if ((rc = ph_json_copy_token(o, path, tmp, sizeof(tmp), extra,
	    diag)) != PH_OK)
		return rc;
	return ph_copy_token(dst, cap, tmp, extra, path, diag);
}

static int
wx3_currency(const struct json_t *o, const char *path, int required,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *v;
	int rc;

	if ((rc = (required ? ph_json_get_string : ph_json_opt_string)(o, path,
	    3, &v, NULL, diag)) != PH_OK)
		return rc;
	if (v == NULL)
		v = "CNY";
	if (!ph_currency_valid(v))
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", path);
	memcpy(ev->currency, v, 4);
	return PH_OK;
}

/*
 * A decrypted transaction (notification) or a query answer.  notify_id
 * is the notification's id, NULL for a query; state tells the caller
 * what trade_state said.
 */
static int
wx3_transaction(const struct wx_ctx *ctx, const struct json_t *tx,
    const char *notify_id, struct ph_event *ev, const char **state,
    struct ph_diag *diag)
{
	const struct ph_state *known;
	const char *st, *v;
	int rc;

	*state = NULL;
	if ((rc = wx3_merchant(ctx, tx, 1, diag)) != PH_OK)
		return rc;
	if ((rc = wx3_id(tx, "out_trade_no", WX_ORDER_EXTRA, ev->order_id,
	    sizeof(ev->order_id), diag)) != PH_OK)
		return rc;
	if ((rc = ph_json_get_string(tx, "trade_state", 32, &st, NULL,
	    diag)) != PH_OK)
		return rc;
	if ((known = ph_state_find(wx3_trade_states, st)) == NULL)
		return ph_fail(diag, PH_E_FIELD, "trade_state: unknown");
	*state = known->name;
	ev->kind = known->kind;

	if (ev->kind == PH_EV_PAYMENT_SUCCEEDED) {
		if ((rc = wx3_id(tx, "transaction_id", NULL, ev->txn_id,
		    sizeof(ev->txn_id), diag)) != PH_OK ||
		    (rc = ph_json_get_amount(tx, "amount.total", &ev->amount,
		    diag)) != PH_OK ||
		    (rc = wx3_currency(tx, "amount.currency", 1, ev,
		    diag)) != PH_OK ||
		    (rc = ph_json_get_string(tx, "success_time", 40, &v, NULL,
		    diag)) != PH_OK)
			return rc;
		if (wx3_time(v, &ev->occurred_at) != PH_OK)
			return ph_fail(diag, PH_E_FIELD, "success_time: "
			    "invalid");
		/* The key of the payment whatever told us: notification,
		 * v2 or v3, or a query. */
		return ph_dedup_key(ev, diag, "pay", ev->txn_id, (char *)NULL);
	}

	/* Not a payment: what else is there must still be valid. */
	if (ph_json_lookup(tx, "transaction_id") != NULL &&
	    (rc = wx3_id(tx, "transaction_id", NULL, ev->txn_id,
	    sizeof(ev->txn_id), diag)) != PH_OK)
		return rc;
	if (ph_json_lookup(tx, "amount.total") != NULL &&
	    (rc = ph_json_get_amount(tx, "amount.total", &ev->amount,
	    diag)) != PH_OK)
		return rc;
	if ((rc = wx3_currency(tx, "amount.currency", 0, ev, diag)) != PH_OK)
		return rc;
	if (notify_id != NULL)
		return ph_dedup_key(ev, diag, "notify", notify_id,
		    (char *)NULL);
	return ph_dedup_key(ev, diag, "query", ev->order_id, *state,
	    (char *)NULL);
}

/* A decrypted refund (REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED). */
static int
wx3_refund(const struct wx_ctx *ctx, const struct json_t *r,
    struct ph_event *ev, struct ph_diag *diag)
{
	const char *st, *v;
	int rc;

	if ((rc = wx3_merchant(ctx, r, 0, diag)) != PH_OK)
		return rc;
	if ((rc = wx3_id(r, "out_trade_no", WX_ORDER_EXTRA, ev->order_id,
	    sizeof(ev->order_id), diag)) != PH_OK ||
	    (rc = wx3_id(r, "transaction_id", NULL, ev->txn_id,
	    sizeof(ev->txn_id), diag)) != PH_OK ||
	    (rc = ph_json_copy_token(r, "refund_id", ev->refund_id,
	    sizeof(ev->refund_id), WX3_ID_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_get_string(r, "refund_status", 32, &st, NULL,
	    diag)) != PH_OK)
		return rc;
	/* Our own refund number, echoed: must be sane when given. */
	if (ph_json_lookup(r, "out_refund_no") != NULL &&
	    (rc = ph_json_copy_token(r, "out_refund_no",
	    ev->merchant_refund_id, sizeof(ev->merchant_refund_id),
	    WX3_REFUND_EXTRA, diag)) != PH_OK)
		return rc;
	if (strcmp(st, "SUCCESS") == 0)
		ev->kind = PH_EV_REFUND_SUCCEEDED;
	else if (strcmp(st, "CLOSED") == 0 || strcmp(st, "ABNORMAL") == 0)
		ev->kind = PH_EV_REFUND_FAILED;
	else
		return ph_fail(diag, PH_E_FIELD, "refund_status: unknown");
	if ((rc = ph_json_get_amount(r, "amount.refund", &ev->amount,
	    diag)) != PH_OK ||
	    (rc = wx3_currency(r, "amount.currency", 0, ev, diag)) != PH_OK ||
	    (rc = ph_json_opt_string(r, "success_time", 40, &v, NULL,
	    diag)) != PH_OK)
		return rc;
	if (v != NULL && wx3_time(v, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "success_time: invalid");
	/* Keyed by the refund and its status, not by the notification:
	 * WeChat gives each notification of one result its own id, and a
	 * refund's query answer makes this same key. */
	return ph_dedup_key(ev, diag, "refund", ev->refund_id, st,
	    (char *)NULL);
}

/*
 * A verified notification of a kind payhook does not act on: it is
 * acknowledged.  The core wants an order id in every event; a resource
 * that names none gets "-".
 */
static int
wx3_ignored(const struct wx_ctx *ctx, const struct json_t *o,
    const char *notify_id, struct ph_event *ev, struct ph_diag *diag)
{
	int rc;

	if (ph_json_lookup(o, "mchid") != NULL &&
	    (rc = wx3_merchant(ctx, o, 0, diag)) != PH_OK)
		return rc;
	ev->kind = PH_EV_IGNORED;
	if (ph_json_lookup(o, "out_trade_no") == NULL ||
	    wx3_id(o, "out_trade_no", WX_ORDER_EXTRA, ev->order_id,
	    sizeof(ev->order_id), NULL) != PH_OK)
		memcpy(ev->order_id, "-", 2);
	memcpy(ev->currency, "CNY", 4);
	return ph_dedup_key(ev, diag, "notify", notify_id, (char *)NULL);
}

int
wx3_parse_notify(const struct wx_ctx *ctx, const struct ph_request *req,
    struct ph_event *ev, struct ph_diag *diag)
{
	const struct json_t *res;
	json_t *env = NULL, *doc = NULL;
	unsigned char *plain = NULL;
	const char *v, *otype, *state;
	char id[PH_ID_MAX + 1], type[65];
	size_t plen = 0;
	int rc;

	if ((rc = ph_body_check(req, WX3_BODY_MAX, diag)) != PH_OK)
		return rc;
	if ((rc = wx3_verify(ctx->v3, req->headers, req->nheaders, req->body,
	    req->body_len, req->now, "notification", diag)) != PH_OK)
		return rc;

	/* Signed by WeChat Pay from here on; parse it once, strictly. */
	if ((rc = ph_json_parse(req->body, req->body_len,
	    &wx3_envelope_limits, &env, diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_copy_token(env, "id", id, sizeof(id), WX3_ID_EXTRA,
	    diag)) != PH_OK ||
	    (rc = ph_json_copy_token(env, "event_type", type, sizeof(type),
	    WX3_TYPE_EXTRA, diag)) != PH_OK ||
	    (rc = ph_json_get_string(env, "resource_type", 64, &v, NULL,
	    diag)) != PH_OK)
		goto out;
	if (strcmp(v, "encrypt-resource") != 0) {
		rc = ph_fail(diag, PH_E_UNSUPPORTED, "resource_type %.32s is "
		    "not encrypt-resource", v);
		goto out;
	}
	if ((rc = ph_json_get_object(env, "resource", &res, diag)) != PH_OK ||
	    (rc = ph_json_get_string(res, "original_type", 64, &otype, NULL,
	    diag)) != PH_OK)
		goto out;
	if ((rc = wx3_decrypt(ctx->v3, res, &plain, &plen, diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_parse(plain, plen, &wx3_resource_limits, &doc,
	    diag)) != PH_OK)
		goto out;

	if (strcmp(otype, "transaction") == 0)
		rc = wx3_transaction(ctx, doc, id, ev, &state, diag);
	else if (strcmp(otype, "refund") == 0)
		rc = wx3_refund(ctx, doc, ev, diag);
	else
		rc = wx3_ignored(ctx, doc, id, ev, diag);
out:
	if (plain != NULL) {
		ph_cleanse(plain, plen);
		free(plain);
	}
	json_decref(doc);
	json_decref(env);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/*
 * The v3 answer: success is 204 with no body; a failure is 4xx/5xx with
 * {"code":"FAIL","message":"..."} (400 refused, 500 retry later).  The
 * status decides: WeChat retries on any non-2xx.
 */
void
wx3_ack(enum ph_ack_kind kind, const char *reason, struct ph_response *out)
{
	if (kind == PH_ACK_OK) {
		memset(out, 0, sizeof(*out));
		out->status = 204;
		return;
	}
	ph_ack_json_failure(out, kind, reason, "code", "FAIL", "message");
}

/* ---- v3 order query ------------------------------------------------------ */

/*
 * The Authorization header of a request: WECHATPAY2-SHA256-RSA2048 with
 * mchid, nonce_str, signature, timestamp and serial_no, the signature
 * over "METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n".
 */
int
wx3_authorization(const struct wx_ctx *ctx, const char *method,
    const char *path, int64_t now, const char *nonce,
    const unsigned char *body, size_t body_len, struct ph_buf *out,
    struct ph_diag *diag)
{
	struct wx3_line l[5];
	struct ph_buf sig;
	char ts[24];
	int rc;

	snprintf(ts, sizeof(ts), "%lld", (long long)now);
	l[0].p = method;
	l[0].n = strlen(method);
	l[1].p = path;
	l[1].n = strlen(path);
	l[2].p = ts;
	l[2].n = strlen(ts);
	l[3].p = nonce;
	l[3].n = strlen(nonce);
	l[4].p = body != NULL ? (const void *)body : "";
	l[4].n = body != NULL ? body_len : 0;
	ph_buf_init(&sig, 1024);
	if ((rc = wx3_sign_lines(ctx->v3, l, 5, &sig, diag)) == PH_OK) {
		ph_buf_printf(out, "%s mchid=\"%s\",nonce_str=\"%s\","
		    "signature=\"%s\",timestamp=\"%s\",serial_no=\"%s\"",
		    WX3_SCHEME, ctx->mch_id, nonce, sig.data, ts,
		    ctx->v3->merchant_serial);
		if ((rc = out->err) != PH_OK)
			ph_fail(diag, rc, "Authorization header too long");
	}
	ph_buf_free(&sig);
	return rc;
}

/*
 * Signs out as method target (its body as it stands: the JSON of a POST,
 * none for a GET) with a nonce from cc, and sets its request line to
 * method path, its content type and headers.  path is target, or an
 * absolute URL whose path and query are target: the Authorization covers
 * those alone, as WeChat's SDKs sign a download.
 */
int
wx3_request_url(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const char *path, const char *target,
    struct ph_http_request *out, struct ph_diag *diag)
{
	char nonce[2 * WX3_NONCE_BYTES + 1];
	struct ph_buf auth;
	int rc;

	ph_hex_upper(cc->random, WX3_NONCE_BYTES, nonce);
	ph_buf_init(&auth, sizeof(out->headers[0].value) - 1);
	if ((rc = wx3_authorization(ctx, method, target, cc->now, nonce,
	    out->body_len > 0 ? out->body : NULL, out->body_len, &auth,
	    diag)) == PH_OK &&
	    ((rc = ph_request_set(out, method, path, out->body_len > 0 ?
	    "application/json" : NULL, NULL)) != PH_OK ||
	    (rc = ph_request_header(out, "Accept", NULL, "application/json")) !=
	    PH_OK ||
	    (rc = ph_request_header(out, "Authorization", NULL,
	    auth.data)) != PH_OK))
		ph_fail(diag, rc, "request headers too long");
	ph_buf_free(&auth);
	return rc;
}

/* The same for a request to api_base, path and target one. */
int
wx3_request_signed(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const char *path, struct ph_http_request *out,
    struct ph_diag *diag)
{
	return wx3_request_url(ctx, cc, method, path, path, out, diag);
}

/*
 * The code and message of an error answer ({"code", "message"}), read
 * before any signature: the caller believes nothing of them unsigned
 * but "ask later".  *code points into *doc (the caller json_decref()s
 * it), NULL when there is none; ctext and mtext are code and message
 * made safe for a diagnostic.
 */
void
wx3_error_of(const struct ph_http_response *in, struct json_t **doc,
    const char **code, char ctext[WX3_TEXT_MAX + 1],
    char mtext[WX3_TEXT_MAX + 1])
{
	const char *m = NULL;

	*doc = NULL;
	*code = NULL;
	if (in->body != NULL && in->body_len > 0 &&
	    ph_json_parse(in->body, in->body_len, &wx3_envelope_limits, doc,
	    NULL) == PH_OK) {
		ph_json_opt_string(*doc, "code", 64, code, NULL, NULL);
		ph_json_opt_string(*doc, "message", 256, &m, NULL, NULL);
	}
	ph_diag_text(ctext, WX3_TEXT_MAX + 1, *code, WX3_TEXT_MAX);
	ph_diag_text(mtext, WX3_TEXT_MAX + 1, m, WX3_TEXT_MAX);
}

/*
 * What a v3 call about one order needs before it is built: its
 * arguments, the merchant key that signs it (what names the call) and a
 * valid order id.  out is emptied.
 */
int
wx3_order_call_ok(const struct wx_ctx *ctx, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    const char *what, struct ph_diag *diag)
{
	if (cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(out, 0, sizeof(*out));
	if (!wx3_can_sign(ctx, what, diag))
		return PH_E_CONFIG;
	return wx_order_check(order, diag);
}

/* Whether the profile has the merchant key a call (named what) is signed
 * with; diag says what is missing when not. */
int
wx3_can_sign(const struct wx_ctx *ctx, const char *what,
    struct ph_diag *diag)
{
	if (ctx->v3->merchant_key != NULL)
		return 1;
	ph_fail(diag, PH_E_CONFIG, "%s needs merchant_private_key_file and "
	    "merchant_serial in this profile", what);
	return 0;
}

/*
 * method on base, then id percent-encoded, then tail (NULL: none),
 * signed as wx3_request_signed signs.  out is emptied on failure.
 */
int
wx3_request_id(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const char *base, const char *id, const char *tail,
    struct ph_http_request *out, struct ph_diag *diag)
{
	struct ph_buf path;
	int rc;

	ph_buf_init(&path, sizeof(out->path) - 1);
	ph_buf_puts(&path, base);
	ph_buf_pct(&path, id);
	if (tail != NULL)
		ph_buf_puts(&path, tail);
	if ((rc = path.err) != PH_OK)
		ph_fail(diag, rc, "request path too long");
	else
		rc = wx3_request_signed(ctx, cc, method, path.data, out, diag);
	ph_buf_free(&path);
	return ph_clear_on_fail(rc, out, sizeof(*out));
}

/*
 * method on WX3_QUERY_PATH, the order id percent-encoded, then tail,
 * signed with the merchant key at cc->now with a nonce of 16 of the
 * core's random bytes (32 upper-case hex), over out's body if the caller
 * set one.  out is emptied on failure.
 */
int
wx3_order_request(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const struct ph_order_ref *order, const char *tail,
    struct ph_http_request *out, struct ph_diag *diag)
{
	return wx3_request_id(ctx, cc, method, WX3_QUERY_PATH,
	    order->order_id, tail, out, diag);
}

/* GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={mch_id}. */
int
wx3_query_request(const struct wx_ctx *ctx, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	char tail[sizeof("?mchid=") + WX_ID_MAX];
	int rc;

	if ((rc = wx3_order_call_ok(ctx, order, cc, out, "query",
	    diag)) != PH_OK)
		return rc;
	/* mch_id is a token of letters and digits: nothing to escape. */
	snprintf(tail, sizeof(tail), "?mchid=%s", ctx->mch_id);
	return wx3_order_request(ctx, cc, "GET", order, tail, out, diag);
}

/*
 * The answer to a query.  5xx and SYSTEM_ERROR are "ask later" and need
 * no signature, since they change nothing.  Anything that becomes an
 * event (200, and 404 ORDER_NOT_EXIST) must carry a valid Wechatpay-*
 * signature, exactly as a notification.
 */
int
wx3_query_response(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag)
{
	char code[WX3_TEXT_MAX + 1], text[WX3_TEXT_MAX + 1];
	json_t *doc = NULL;
	const char *state, *c = NULL;
	int rc;

	if ((rc = wx_order_answer_ok(ctx, order, in, ev, diag)) != PH_OK)
		return rc;
	if (in->status != 200) {
		wx3_error_of(in, &doc, &c, code, text);
		if (in->status == 404 && c != NULL &&
		    (strcmp(c, "ORDER_NOT_EXIST") == 0 ||
		    strcmp(c, "ORDERNOTEXIST") == 0)) {
			if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders,
			    in->body, in->body_len, in->now, "query answer",
			    diag)) != PH_OK)
				goto out;
			ev->kind = PH_EV_NOT_FOUND;
			memcpy(ev->currency, "CNY", 4);
			if ((rc = ph_copy_token(ev->order_id,
			    sizeof(ev->order_id), order->order_id,
			    WX_ORDER_EXTRA, "out_trade_no", diag)) != PH_OK)
				goto out;
			rc = ph_dedup_key(ev, diag, "query", ev->order_id, c,
			    (char *)NULL);
			goto out;
		}
		rc = ph_fail(diag, PH_E_PROVIDER, "query: HTTP %d, code %s: %s",
		    in->status, code, text);
		goto out;
	}
	if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders, in->body,
	    in->body_len, in->now, "query answer", diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_parse(in->body, in->body_len, &wx3_resource_limits,
	    &doc, diag)) != PH_OK)
		goto out;
	if ((rc = wx3_transaction(ctx, doc, NULL, ev, &state, diag)) != PH_OK)
		goto out;
	if (strcmp(ev->order_id, order->order_id) != 0)
		rc = ph_fail(diag, PH_E_FIELD, "query: out_trade_no is not the "
		    "order asked about");
out:
	json_decref(doc);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}
