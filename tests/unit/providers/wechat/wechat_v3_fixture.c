/* Shared by the wechat plugin's API v3 unit tests: see wechat_v3_fixture.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../../../../providers/wechat/wechat_test.h"

#include "../../lib/helpers.h"
#include "wechat_v3_fixture.h"

EVP_PKEY *w3fx_plat_a, *w3fx_plat_b, *w3fx_plat_c, *w3fx_tv3_key, *w3fx_weak;
char *w3fx_cert_a, *w3fx_cert_b, *w3fx_cert_old, *w3fx_pub_c,
    *w3fx_cert_weak, *w3fx_cert_zero;

/* ---- keys and certificates, made here ------------------------------- */

/* A self-signed certificate of key with this serial and validity. */
static char *
mkcert(EVP_PKEY *k, const char *serial_hex, int64_t nb, int64_t na)
{
	static const char *const name[] = { "CN",
	    "Tenpay.com Root CA (payhook test)", NULL };
	const struct th_cert c = { k, name, NULL, NULL, serial_hex, nb, na, 0,
	    1 };

	return th_cert_pem(&c);
}

void
w3fx_make_keys(void)
{
	w3fx_plat_a = EVP_RSA_gen(2048);
	w3fx_plat_b = EVP_RSA_gen(2048);
	w3fx_plat_c = EVP_RSA_gen(2048);
	w3fx_weak = EVP_RSA_gen(1024);
	w3fx_tv3_key = th_key_of_pem(th_tv3_priv_pem);
	if (w3fx_plat_a == NULL || w3fx_plat_b == NULL || w3fx_plat_c == NULL ||
	    w3fx_weak == NULL || w3fx_tv3_key == NULL)
		abort();
	w3fx_cert_a = mkcert(w3fx_plat_a, SER_A, NOW - 86400,
	    NOW + 5 * 365 * 86400LL);
	w3fx_cert_b = mkcert(w3fx_plat_b, SER_B, NOW - 86400,
	    NOW + 5 * 365 * 86400LL);
	w3fx_cert_old = mkcert(w3fx_plat_b, "7777", NOW - 3 * 86400,
	    NOW - 86400);
	w3fx_cert_weak = mkcert(w3fx_weak, "1234", NOW - 86400, NOW + 86400);
	w3fx_cert_zero = mkcert(w3fx_plat_a, "0", NOW - 86400, NOW + 86400);
	w3fx_pub_c = th_pem_key(w3fx_plat_c, 0);
}

void
w3fx_free_keys(void)
{
	EVP_PKEY_free(w3fx_plat_a);
	EVP_PKEY_free(w3fx_plat_b);
	EVP_PKEY_free(w3fx_plat_c);
	EVP_PKEY_free(w3fx_weak);
	EVP_PKEY_free(w3fx_tv3_key);
	free(w3fx_cert_a);
	free(w3fx_cert_b);
	free(w3fx_cert_old);
	free(w3fx_cert_weak);
	free(w3fx_cert_zero);
	free(w3fx_pub_c);
}

/* ---- profiles ------------------------------------------------------------ */

void
w3fx_prof_v3(struct w3fx_prof *p)
{
	memset(p, 0, sizeof(*p));
	p->appid = APPID;
	p->mch_id = MCHID;
	p->version = "3";
	p->v3key = V3KEY;
	p->certs[0] = w3fx_cert_a;
	p->certs[1] = w3fx_cert_b;
	p->certs[2] = w3fx_cert_old;
	p->pub = w3fx_pub_c;
	p->pub_id = PUB_ID;
	p->priv = th_tv3_priv_pem;
	p->serial = TV3_SERIAL;
}

int
w3fx_mkprof(const struct w3fx_prof *p, void **ctx, struct ph_diag *d)
{
	static struct th_conf c;
	const struct {
		const char *name, *s;
	} f[] = {
		{ "appid", p->appid },
		{ "mch_id", p->mch_id },
		{ "api_version", p->version },
		{ "apiv3_key_file", p->v3key },
		{ "platform_public_key_file", p->pub },
		{ "platform_public_key_id", p->pub_id },
		{ "merchant_private_key_file", p->priv },
		{ "merchant_serial", p->serial },
		{ "timestamp_tolerance_s", p->tolerance },
		{ "api_key_file", p->api_key },
		{ "sign_type", p->sign_type },
	};
	size_t i;

	th_conf_init(&c, payhook_provider(), "v3test");
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		th_conf_set(&c, f[i].name, f[i].s);
	th_conf_files_n(&c, "platform_cert_files", p->certs, 4);
	/* Taken as a number, as the configuration would have parsed it. */
	if (p->tolerance != NULL)
		c.v[WX_CONF_TIMESTAMP_TOLERANCE_S].num =
		    strtoll(p->tolerance, NULL, 10);
	*ctx = NULL;
	return th_profile_new(payhook_provider(), &c, ctx, d);
}

void *
w3fx_v3ctx(struct ph_diag *d)
{
	struct w3fx_prof p;
	void *ctx;

	w3fx_prof_v3(&p);
	w3fx_mkprof(&p, &ctx, d);
	return ctx;
}

/* ---- notifications, encrypted and signed here ------------------------ */

static void
b64(const unsigned char *p, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* AES-256-GCM of plain; out is base64(ciphertext || tag). */
static void
seal(const char *key, const char *nonce, const char *aad, const char *plain,
    char *out)
{
	static unsigned char ct[16384];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0;
	size_t len = strlen(plain);

	EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)strlen(nonce),
	    NULL);
	EVP_EncryptInit_ex(c, NULL, NULL, (const unsigned char *)key,
	    (const unsigned char *)nonce);
	EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad,
	    (int)strlen(aad));
	EVP_EncryptUpdate(c, ct, &n, (const unsigned char *)plain, (int)len);
	EVP_EncryptFinal_ex(c, ct + n, &f);
	EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + len);
	EVP_CIPHER_CTX_free(c);
	b64(ct, len + 16, out);
}

/* base64 RSA-SHA256 of msg with key k. */
static void
rsa_sign(EVP_PKEY *k, const void *msg, size_t len, char *out)
{
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();

	EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k);
	EVP_DigestSign(m, sig, &siglen, msg, len);
	EVP_MD_CTX_free(m);
	b64(sig, siglen, out);
}

size_t
w3fx_envelope(char *out, size_t cap, const char *id, const char *event_type,
    const char *otype, const char *plain, const char *aad, const char *nonce)
{
	static char ct[24000];

	seal(V3KEY, nonce, aad, plain, ct);
	return (size_t)snprintf(out, cap, "{\"id\":\"%s\","
	    "\"create_time\":\"2015-05-20T13:29:35+08:00\","
	    "\"resource_type\":\"encrypt-resource\",\"event_type\":\"%s\","
	    "\"summary\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\x88\x90\xe5\x8a\x9f\","
	    "\"resource\":{\"original_type\":\"%s\","
	    "\"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"%s\","
	    "\"associated_data\":\"%s\",\"nonce\":\"%s\"}}", id, event_type,
	    otype, ct, aad, nonce);
}

void
w3fx_tx(char *out, size_t cap, const char *order, const char *txn,
    const char *state, const char *amount)
{
	snprintf(out, cap, "{\"mchid\":\"" MCHID "\",\"appid\":\"" APPID "\","
	    "\"out_trade_no\":\"%s\",\"transaction_id\":\"%s\","
	    "\"trade_type\":\"JSAPI\",\"trade_state\":\"%s\","
	    "\"trade_state_desc\":\"\xe6\x94\xaf\xe4\xbb\x98\xe6\x88\x90"
	    "\xe5\x8a\x9f\",\"bank_type\":\"CMC\",\"attach\":\"\","
	    "\"success_time\":\"2018-06-08T10:34:56+08:00\","
	    "\"payer\":{\"openid\":\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\"},"
	    "\"amount\":{\"total\":%s,\"payer_total\":100,\"currency\":\"CNY\","
	    "\"payer_currency\":\"CNY\"},\"promotion_detail\":[{\"coupon_id\":"
	    "\"109519\",\"goods_detail\":[{\"goods_id\":\"M1006\","
	    "\"quantity\":1}]}]}", order, txn, state, amount);
}

void
w3fx_sign_body(struct w3fx_sent *s, EVP_PKEY *k, const char *serial,
    long long ts, const char *body, size_t len)
{
	static char msg[70000];
	size_t n;

	memset(s, 0, sizeof(*s));
	snprintf(s->ts, sizeof(s->ts), "%lld", ts);
	snprintf(s->nonce, sizeof(s->nonce), "%s",
	    "593BEC0C930BF1AFEB40B4A08C8FB242");
	snprintf(s->serial, sizeof(s->serial), "%s", serial);
	n = (size_t)snprintf(msg, sizeof(msg), "%s\n%s\n", s->ts, s->nonce);
	memcpy(msg + n, body, len);
	n += len;
	msg[n++] = '\n';
	rsa_sign(k, msg, n, s->sig);
	th_wx3_headers(s->h, s->ts, s->nonce, s->sig, s->serial);
	s->h[4].name = "Wechatpay-Signature-Type";
	s->h[4].value = WX3_SCHEME;
	s->h[5].name = "Content-Type";
	s->h[5].value = "application/json";
	s->nh = 6;
}

int
w3fx_deliver(void *ctx, const struct w3fx_sent *s, const char *body,
    size_t len, long long now, struct ph_event *ev, struct ph_diag *d)
{
	struct ph_request req;

	th_post(&req, "application/json", body, len, now);
	req.headers = s->h;
	req.nheaders = s->nh;
	d->msg[0] = '\0';
	memset(ev, 0x5a, sizeof(*ev));
	return payhook_provider()->parse_notify(ctx, &req, ev, d);
}

int
w3fx_notify_plain(void *ctx, struct w3fx_msg *m, const char *otype,
    const char *plain, struct ph_event *ev, struct ph_diag *d)
{
	m->len = w3fx_envelope(m->body, sizeof(m->body),
	    "EV-2018022511223320873", "TRANSACTION.SUCCESS", otype, plain,
	    "transaction", "fdasflkja484");
	w3fx_sign_body(&m->s, w3fx_plat_a, SER_A, NOW, m->body, m->len);
	return w3fx_deliver(ctx, &m->s, m->body, m->len, NOW, ev, d);
}
