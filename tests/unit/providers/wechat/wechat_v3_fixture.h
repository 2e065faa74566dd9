/*
 * What the unit tests of the wechat plugin's API v3 side share: the
 * platform keys and certificates made when a test runs, v3 profiles, and
 * messages encrypted and signed as WeChat Pay does, by a separate,
 * deliberately plain implementation of doc/design/protocols.md §2.3-2.6.
 * Nothing here prints TAP; the tests do.
 */
#ifndef PH_WECHAT_V3_FIXTURE_H
#define PH_WECHAT_V3_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include <payhook/provider.h>

#define APPID	"wxd678efh567hg6787"
#define MCHID	"1230000109"
#define V3KEY	"0123456789abcdefABCDEFGHijklmnop"
#define NOW	1700000000LL
#define SER_A	"5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
#define SER_B	"0ABCDEF0123456789"	/* ABCDEF0123456789, the same number */
#define PUB_ID	"PUB_KEY_ID_0114232134912410000000000000000000"
#define TV3_SERIAL "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"

/*
 * Made by w3fx_make_keys, freed by w3fx_free_keys: three platform keys
 * (RSA-2048), TV-3's merchant key and a weak one (RSA-1024); the PEM
 * certificates of plat_a (serial SER_A), plat_b (SER_B), plat_b expired
 * (cert_old), weak and plat_a with serial 0 (cert_zero), and plat_c's
 * public key (the WeChat Pay public key, PUB_ID); all w3fx_-prefixed.
 */
extern EVP_PKEY *w3fx_plat_a, *w3fx_plat_b, *w3fx_plat_c, *w3fx_tv3_key,
    *w3fx_weak;
extern char *w3fx_cert_a, *w3fx_cert_b, *w3fx_cert_old, *w3fx_pub_c,
    *w3fx_cert_weak, *w3fx_cert_zero;
void w3fx_make_keys(void);
void w3fx_free_keys(void);

/* A profile's keys, as text (NULL: not given). */
struct w3fx_prof {
	const char *appid, *mch_id, *version;
	const char *v3key;
	const char *certs[4];
	const char *pub, *pub_id;
	const char *priv, *serial;
	const char *tolerance;
	const char *api_key, *sign_type;	/* v2 keys */
};

/* The v3 profile: the three platform certificates, w3fx_pub_c, and
 * TV-3's merchant key and serial. */
void w3fx_prof_v3(struct w3fx_prof *p);
/* Makes the profile p into *ctx; d gets the reason of a failure. */
int w3fx_mkprof(const struct w3fx_prof *p, void **ctx, struct ph_diag *d);
/* A context of the profile of w3fx_prof_v3. */
void *w3fx_v3ctx(struct ph_diag *d);

/* The envelope around an encrypted resource (AES-256-GCM of plain with
 * V3KEY, aad and nonce), into out: its length. */
size_t w3fx_envelope(char *out, size_t cap, const char *id,
    const char *event_type, const char *otype, const char *plain,
    const char *aad, const char *nonce);
/* A decrypted transaction; amount is JSON text ("100", "12.5", "\"12\""). */
void w3fx_tx(char *out, size_t cap, const char *order, const char *txn,
    const char *state, const char *amount);

/* Signed headers of a body: what WeChat Pay sends with it. */
struct w3fx_sent {
	struct ph_header h[8];
	size_t nh;
	char ts[24], nonce[40], sig[800], serial[80];
};

/* Signs body (len bytes) with key k at ts, naming serial: *s. */
void w3fx_sign_body(struct w3fx_sent *s, EVP_PKEY *k, const char *serial,
    long long ts, const char *body, size_t len);
/* Delivers body with s's headers at now to parse_notify: d emptied and
 * *ev filled with junk beforehand. */
int w3fx_deliver(void *ctx, const struct w3fx_sent *s, const char *body,
    size_t len, long long now, struct ph_event *ev, struct ph_diag *d);

/* A notification: its body and the headers it is sent with. */
struct w3fx_msg {
	char body[70000];
	size_t len;
	struct w3fx_sent s;
};

/* plain (of original_type otype) in its envelope into m, signed with
 * w3fx_plat_a at NOW, delivered at NOW. */
int w3fx_notify_plain(void *ctx, struct w3fx_msg *m, const char *otype,
    const char *plain, struct ph_event *ev, struct ph_diag *d);

#endif
