/*
 * Signing for the WeChat fuzz targets, included after wechat_test.h: the v2
 * MD5/HMAC-SHA256 sign over fuzzed fields and the v3 RSA header signature
 * and AES-256-GCM resource, with fixed test keys made here.  These sign
 * what the fuzzer produced so that inputs reach the code behind the
 * verifier; the verifier itself runs unchanged.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "../../unit/lib/helpers.h"

#define FZ_V2_KEY_MD5	"192006250b4c09247ec02edce69f6a2d"
#define FZ_V2_KEY_HMAC	"Hm4cK3yE2eTestKeyForSha256Prof1x"
#define FZ_V3_KEY	"0123456789abcdefFUZZapiv3key0123"
#define FZ_V3_KEY_ID	"PUB_KEY_ID_0114232020250108000000000000000099"
#define FZ_APPID	"wx2421b1c4370ec43b"
#define FZ_MCH_ID	"10000100"
#define FZ_NOW		1764500000LL

static EVP_PKEY *fz_rsa;
static char *fz_rsa_pub_pem, *fz_rsa_priv_pem;

static __attribute__((unused)) void
fz_rsa_make(void)
{
	fz_rsa = th_rsa_key(2048);
	fz_rsa_pub_pem = th_pem_key(fz_rsa, 0);
	fz_rsa_priv_pem = th_pem_key(fz_rsa, 1);
}

static __attribute__((unused)) void
fz_rsa_free(void)
{
	EVP_PKEY_free(fz_rsa);
	free(fz_rsa_pub_pem);
	free(fz_rsa_priv_pem);
	fz_rsa = NULL;
}

/* v2: sets "sign" in kv to the signature of its other fields. */
static __attribute__((unused)) void
fz_v2_sign(struct ph_kvlist *kv, int hmac)
{
	static const char *const skip[] = { "sign", NULL };
	const char *key = hmac ? FZ_V2_KEY_HMAC : FZ_V2_KEY_MD5;
	unsigned char d[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	struct ph_kvlist out;
	struct ph_buf s;
	size_t i;

	ph_buf_init(&s, 1u << 20);
	ph_canonical_join(kv, skip, 1, &s);
	ph_buf_puts(&s, "&key=");
	ph_buf_puts(&s, key);
	if (hmac)
		ph_hmac_sha256(key, strlen(key), s.data != NULL ? s.data : "",
		    s.len, d);
	else
		ph_md5(s.data != NULL ? s.data : "", s.len, d);
	ph_hex_upper(d, hmac ? PH_SHA256_LEN : PH_MD5_LEN, hex);
	ph_buf_free(&s);
	/* Rebuild without any old sign, then add the new one. */
	ph_kvlist_init(&out, kv->max + 1);
	for (i = 0; i < kv->n; i++)
		if (strcmp(kv->items[i].key, "sign") != 0)
			ph_kvlist_add(&out, kv->items[i].key,
			    strlen(kv->items[i].key), kv->items[i].val,
			    kv->items[i].val_len, NULL);
	ph_kvlist_add(&out, "sign", 4, hex, strlen(hex), NULL);
	ph_kvlist_free(kv);
	*kv = out;
}

/*
 * Fields from "name=value" lines (a fuzzer-friendly shape), signed, as a
 * flat XML body (caller frees *body).  0 when the lines do not make a
 * document.
 */
static __attribute__((unused)) int
fz_v2_body(const uint8_t *data, size_t size, int hmac, struct ph_buf *body)
{
	struct ph_kvlist kv;
	int ok;

	ph_kvlist_init(&kv, 64);
	fz_fields(data, size, NULL, &kv);
	fz_v2_sign(&kv, hmac);
	ph_buf_init(body, 1u << 20);
	ok = ph_xml_write_flat("xml", &kv, body) == PH_OK && !body->err;
	ph_kvlist_free(&kv);
	return ok;
}

/* v3: the four Wechatpay-* headers signing body at FZ_NOW. */
struct fz_v3_headers {
	struct ph_header h[5];
	char ts[16], sig[1024];
};

static __attribute__((unused)) void
fz_v3_headers(struct fz_v3_headers *out, const void *body, size_t len)
{
	static const char nonce[] = "fuzzNonce0123456789";
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *mc;
	struct ph_buf msg, b64;

	snprintf(out->ts, sizeof(out->ts), "%lld", FZ_NOW);
	ph_buf_init(&msg, (1u << 20) + 256);
	ph_buf_printf(&msg, "%s\n%s\n", out->ts, nonce);
	ph_buf_append(&msg, body, len);
	ph_buf_puts(&msg, "\n");
	if ((mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, fz_rsa) != 1 ||
	    EVP_DigestSign(mc, sig, &siglen, (unsigned char *)msg.data,
	    msg.len) != 1)
		abort();
	EVP_MD_CTX_free(mc);
	ph_buf_free(&msg);
	ph_buf_init(&b64, sizeof(out->sig));
	ph_base64_encode(sig, siglen, &b64);
	snprintf(out->sig, sizeof(out->sig), "%s", b64.data);
	ph_buf_free(&b64);
	th_wx3_headers(out->h, out->ts, nonce, out->sig, FZ_V3_KEY_ID);
	out->h[4].name = "Content-Type";
	out->h[4].value = "application/json";
}

/* v3: base64(AES-256-GCM(plain) || tag) into out. */
static __attribute__((unused)) void
fz_v3_encrypt(const uint8_t *plain, size_t n, const char *nonce,
    const char *aad, struct ph_buf *out)
{
	unsigned char *ct = malloc(n + 16);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	if (ct == NULL || c == NULL ||
	    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_EncryptInit_ex(c, NULL, NULL,
	    (const unsigned char *)FZ_V3_KEY, (const unsigned char *)nonce) !=
	    1 ||
	    EVP_EncryptUpdate(c, NULL, &l1, (const unsigned char *)aad,
	    (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(c, ct, &l1, plain, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(c, ct + l1, &l2) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + l1 + l2) !=
	    1)
		abort();
	ph_base64_encode(ct, (size_t)(l1 + l2 + 16), out);
	EVP_CIPHER_CTX_free(c);
	free(ct);
}

static __attribute__((unused)) void *
fz_v3_profile(void)
{
	const struct fz_setting s[] = {
		{ "appid", FZ_APPID },
		{ "mch_id", "1230000109" },
		{ "api_version", "3" },
		{ "apiv3_key_file", FZ_V3_KEY },
		{ "platform_public_key_file", fz_rsa_pub_pem },
		{ "platform_public_key_id", FZ_V3_KEY_ID },
		{ "merchant_private_key_file", fz_rsa_priv_pem },
		{ "merchant_serial", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1" },
		{ NULL, NULL },
	};

	return fz_profile(payhook_provider(), "wxv3", s);
}

static __attribute__((unused)) void *
fz_v2_profile(int hmac)
{
	const struct fz_setting s[] = {
		{ "appid", FZ_APPID },
		{ "mch_id", FZ_MCH_ID },
		{ "api_key_file", hmac ? FZ_V2_KEY_HMAC : FZ_V2_KEY_MD5 },
		{ "sign_type", hmac ? "HMAC-SHA256" : "MD5" },
		{ NULL, NULL },
	};

	return fz_profile(payhook_provider(), hmac ? "wxhmac" : "wxshop", s);
}

/*
 * The profiles every WeChat target answers for, made once: v2 with an MD5
 * key and with an HMAC-SHA256 key, and v3.
 */
static __attribute__((unused)) void *fz_md5, *fz_hmac, *fz_v3;

void
fz_init(void)
{
	fz_rsa_make();
	fz_md5 = fz_v2_profile(0);
	fz_hmac = fz_v2_profile(1);
	fz_v3 = fz_v3_profile();
}

void
fz_fini(void)
{
	fz_rsa_free();
}
