/*
 * The WeChat Pay API v3 side of the wechat plugin, driven through its
 * table: profiles, notifications, acknowledgements, and the official
 * worked examples TV-3 (request signature), TV-4 (JSAPI paySign) and
 * TV-5 (verification with the WeChat Pay public key), checked byte for
 * byte; its order query and close are test_wechat_v3_query.c.  Platform
 * keys and certificates are generated with OpenSSL, notifications are
 * encrypted and signed by a separate, deliberately plain implementation
 * of doc/design/protocols.md §2.3-2.6 (wechat_v3_fixture.c).
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../../providers/wechat/wechat_test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <openssl/bio.h>

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"
#include "wechat_v3_fixture.h"

static struct ph_diag d;

/* The notification test_notify sends and alters. */
static struct w3fx_msg m;

/* m as it stands, signed with the first platform certificate at t,
 * delivered at NOW. */
static int
deliver_at(void *ctx, int64_t t, struct ph_event *ev)
{
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, t, m.body, m.len);
	return w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, ev, &d);
}

static int
notify_raw(void *ctx, const char *raw, struct ph_event *ev)
{
	m.len = strlen(raw);
	memcpy(m.body, raw, m.len + 1);
	return deliver_at(ctx, NOW, ev);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_table(void)
{
	/* The kind of value a key takes. */
	static const struct {
		int key;
		enum ph_conf_type type;
		const char *what;
	} kind[] = {
		{ WX_CONF_API_VERSION, PH_CONF_ENUM, "api_version is an enum" },
		{ WX_CONF_APIV3_KEY_FILE, PH_CONF_SECRET_FILE,
		    "apiv3_key_file is a secret file" },
		{ WX_CONF_PLATFORM_CERT_FILES, PH_CONF_FILES,
		    "platform_cert_files takes several files" },
		{ WX_CONF_MERCHANT_PRIVATE_KEY_FILE, PH_CONF_SECRET_FILE,
		    "merchant_private_key_file is secret" },
	};
	const struct ph_provider *p = payhook_provider();
	size_t i;

	is_str(p->conf_keys[WX_CONF_API_VERSION].name, "api_version",
	    "table: api_version key");
	for (i = 0; i < sizeof(kind) / sizeof(kind[0]); i++)
		is_int(p->conf_keys[kind[i].key].type, kind[i].type,
		    "%s", kind[i].what);
	is_str(p->conf_keys[WX_CONF_API_VERSION].def, "2",
	    "api_version defaults to 2");
	ok(p->conf_keys[WX_CONF_TIMESTAMP_TOLERANCE_S].type == PH_CONF_INT &&
	    p->conf_keys[WX_CONF_TIMESTAMP_TOLERANCE_S].def == NULL,
	    "timestamp_tolerance_s: INT, default applied by the plugin");
	ok(p->conf_keys[WX_CONF_API_KEY_FILE].required == 0 &&
	    p->conf_keys[WX_CONF_SIGN_TYPE].def == NULL,
	    "v2-only keys: not required by the table, no table default");
	ok((p->caps & PH_CAP_QUERY) && p->query_request != NULL &&
	    p->query_response != NULL, "table: query entries set");
}

static void
test_profiles(void)
{
	/* The v3 profile with one field (its offset) set to value: refused. */
#define PROF(field) offsetof(struct w3fx_prof, field)
	const struct {
		size_t field;
		const char *value, *what;
	} refused[] = {
		{ PROF(v3key), "0123456789abcdef ABCDEFGHijklmno",
		    "v3: APIv3 key with a space" },
		{ PROF(pub_id), NULL, "v3: public key without id" },
		{ PROF(pub_id), "KEY_0114232134912410000000000000000000",
		    "v3: id without PUB_KEY_ID_" },
		{ PROF(pub), w3fx_cert_a,
		    "v3: a certificate where the public key is expected" },
		{ PROF(certs[0]), w3fx_pub_c,
		    "v3: a public key where a certificate is expected" },
		{ PROF(certs[0]), w3fx_cert_weak,
		    "v3: RSA-1024 certificate refused" },
		{ PROF(certs[0]), w3fx_cert_zero,
		    "v3: serial number 0 refused" },
		{ PROF(serial), NULL,
		    "v3: merchant key without merchant_serial" },
		{ PROF(priv), NULL, "v3: merchant_serial without the key" },
		{ PROF(serial), "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DG",
		    "v3: merchant_serial not hex" },
		{ PROF(priv), th_tv3_pub_pem, "v3: public key as the merchant "
		    "private key refused" },
		{ PROF(tolerance), "0", "v3: tolerance 0 refused" },
		{ PROF(version), "4", "api_version 4 refused" },
		{ PROF(sign_type), "MD5", "v3: sign_type refused" },
	};
#undef PROF
	struct w3fx_prof p;
	void *ctx;
	struct wx_ctx *c;
	size_t i;

	w3fx_prof_v3(&p);
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_OK,
	    "v3 profile: certificates, public key and merchant key");
	c = ctx;
	ok(c != NULL && c->api_version == 3 && c->v3 != NULL &&
	    c->v3->nkeys == 4, "v3 profile: four platform keys");
	if (c != NULL && c->v3 != NULL && c->v3->nkeys == 4) {
		is_str(c->v3->keys[0].serial, SER_A, "certificate serial in "
		    "upper-case hex");
		is_str(c->v3->keys[1].serial, "ABCDEF0123456789",
		    "certificate serial without leading zeros");
		is_str(c->v3->keys[3].serial, PUB_ID, "public key id");
		is_int(c->v3->tolerance, 300, "tolerance defaults to 300 s");
	}
	payhook_provider()->profile_free(ctx);

	w3fx_prof_v3(&p);
	p.certs[0] = NULL;
	p.priv = p.serial = NULL;
	p.tolerance = "60";
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_OK,
	    "v3 profile: public key only, no merchant key");
	c = ctx;
	ok(c != NULL && c->v3->nkeys == 1 && c->v3->tolerance == 60 &&
	    c->v3->merchant_key == NULL, "public key mode, tolerance 60");
	payhook_provider()->profile_free(ctx);

	w3fx_prof_v3(&p);
	p.pub = p.pub_id = NULL;
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_OK,
	    "v3 profile: certificates only");
	payhook_provider()->profile_free(ctx);

	w3fx_prof_v3(&p);
	p.v3key = NULL;
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v3: apiv3_key_file required");
	ok(ctx == NULL && strstr(d.msg, "apiv3_key_file") != NULL,
	    "v3: no context, the diagnostic names the key");
	w3fx_prof_v3(&p);
	p.v3key = "0123456789abcdefABCDEFGHijklmno";
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v3: 31-byte APIv3 key refused");
	ok(strstr(d.msg, "32") != NULL && strstr(d.msg, "0123456") == NULL,
	    "v3: key length named, key not shown");
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		w3fx_prof_v3(&p);
		*(const char **)((char *)&p + refused[i].field) =
		    refused[i].value;
		is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG, "%s",
		    refused[i].what);
	}
	w3fx_prof_v3(&p);
	p.certs[3] = w3fx_cert_a;
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v3: one certificate twice");
	ok(strstr(d.msg, SER_A) != NULL, "v3: the duplicate serial is named");
	w3fx_prof_v3(&p);
	p.certs[0] = NULL;
	p.pub = p.pub_id = NULL;
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v3: no platform key refused");
	ok(strstr(d.msg, "platform_cert_files") != NULL,
	    "v3: the diagnostic says which keys are needed");
	{
		char two[8192];

		snprintf(two, sizeof(two), "%s%s", w3fx_cert_a, w3fx_cert_b);
		w3fx_prof_v3(&p);
		p.certs[0] = two;
		is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
		    "v3: two certificates in one file refused");
		snprintf(two, sizeof(two), "%sjunk\n", w3fx_cert_a);
		p.certs[0] = two;
		is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
		    "v3: trailing data after a certificate refused");
	}

	/* Keys of one version on a profile of the other. */
	w3fx_prof_v3(&p);
	p.api_key = "192006250b4c09247ec02edce69f6a2d";
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v3: api_key_file refused");
	ok(strstr(d.msg, "api_key_file") != NULL &&
	    strstr(d.msg, "api_version = 3") != NULL,
	    "v3: the diagnostic names the v2 key and the version");
	memset(&p, 0, sizeof(p));
	p.appid = APPID;
	p.mch_id = MCHID;
	p.api_key = "192006250b4c09247ec02edce69f6a2d";
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_OK,
	    "v2 profile without api_version");
	ok(ctx != NULL && ((struct wx_ctx *)ctx)->api_version == 2 &&
	    ((struct wx_ctx *)ctx)->sign_type == WX_SIGN_MD5,
	    "v2 profile: version 2, MD5 by default");
	payhook_provider()->profile_free(ctx);
	p.version = "2";
	p.v3key = V3KEY;
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v2: apiv3_key_file refused");
	ok(strstr(d.msg, "apiv3_key_file") != NULL &&
	    strstr(d.msg, "api_version = 2") != NULL,
	    "v2: the diagnostic names the v3 key and the version");
	p.v3key = NULL;
	p.tolerance = "300";
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v2: timestamp_tolerance_s refused");
	p.tolerance = NULL;
	p.certs[0] = w3fx_cert_a;
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v2: platform_cert_files refused");
	p.certs[0] = NULL;
	p.api_key = NULL;
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_E_CONFIG,
	    "v2: api_key_file required");
}

static void
test_notify(void)
{
	/* A decrypted transaction of order, trade_state and amount.total,
	 * with part of it (NULL: none) overwritten by with: refused. */
	static const struct {
		const char *order, *state, *amount, *part, *with;
		int rc;
		const char *what;
	} bad_tx[] = {
		{ "A1", "SUCCESS", "\"12\"", NULL, NULL, PH_E_FIELD,
		    "amount \"12\" refused" },
		{ "A1", "SUCCESS", "1e2", NULL, NULL, PH_E_FIELD,
		    "amount 1e2 refused" },
		{ "A1", "SUCCESS", "-1", NULL, NULL, PH_E_FIELD,
		    "amount -1 refused" },
		{ "A1", "SUCCESS", "1000000000000001", NULL, NULL, PH_E_FIELD,
		    "amount over PH_AMOUNT_MAX refused" },
		{ "A1", "SUCCESS", "99999999999999999999", NULL, NULL,
		    PH_E_MALFORMED, "amount beyond 64 bits refused" },
		{ "A1", "SUCCESS", "1,\"total\":100000", NULL, NULL,
		    PH_E_MALFORMED, "amount.total given twice refused" },
		{ "A1", "SUCCESS", "1", "\"transaction_id\"",
		    "\"transactionXid\"", PH_E_FIELD,
		    "missing transaction_id refused" },
		{ "A1", "SUCCESS", "1", MCHID, "1230000108", PH_E_MERCHANT,
		    "another mchid refused" },
		{ "A1", "SUCCESS", "1", APPID, "wxd678efh567hg6788",
		    PH_E_MERCHANT, "another appid refused" },
		{ "A1", "SUCCESS", "1", "+08:00", "+0800Z", PH_E_FIELD,
		    "success_time without the offset colon refused" },
		{ "A\"1", "SUCCESS", "1", NULL, NULL, PH_E_MALFORMED,
		    "broken plaintext JSON refused" },
		{ "A 1", "SUCCESS", "1", NULL, NULL, PH_E_FIELD,
		    "out_trade_no with a space refused" },
		{ "A1", "SUCCESS", "1", "\"CNY\"", "\"cny\"", PH_E_FIELD,
		    "lower-case currency refused" },
		{ "A1", "WEIRD", "1", NULL, NULL, PH_E_FIELD,
		    "unknown trade_state refused" },
	};
	/* Ciphertexts (base64) too short to hold a GCM tag and data. */
	static const struct th_case short_ct[] = {
		{ "AAAAAAAAAAAAAAAAAAAAAA==",
		    "ciphertext of 16 bytes (a tag and nothing) refused" },
		{ "AAAA", "ciphertext of 3 bytes refused before subtracting "
		    "the tag" },
	};
	struct ph_event ev;
	struct w3fx_prof p;
	void *ctx;
	char plain[8192], raw[70000];
	size_t i;

	ctx = w3fx_v3ctx(&d);

	w3fx_tx(plain, sizeof(plain), "1217752501201407033233368018",
	    "4200000123202306011234567890", "SUCCESS", "100");
	is_int(w3fx_notify_plain(ctx, &m, "transaction", plain, &ev, &d), PH_OK,
	    "TRANSACTION.SUCCESS: verified and decrypted");
	is_event(&ev, "TRANSACTION.SUCCESS", PH_EV_PAYMENT_SUCCEEDED,
	    "1217752501201407033233368018", "4200000123202306011234567890", 100,
	    "CNY", 1528425296, "pay:4200000123202306011234567890");
	is_str(ev.refund_id, "", "no refund id");

	/* Certificate rotation: the second certificate, and the public key. */
	w3fx_sign_body(&m.s, w3fx_plat_b, "ABCDEF0123456789", NOW, m.body,
	    m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d), PH_OK,
	    "signed with the second (rotated) certificate");
	w3fx_sign_body(&m.s, w3fx_plat_c, PUB_ID, NOW, m.body, m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d), PH_OK,
	    "signed with the WeChat Pay public key (PUB_KEY_ID_...)");
	w3fx_sign_body(&m.s, w3fx_plat_b, SER_B, NOW, m.body, m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d), PH_OK,
	    "the serial with its leading zero (WeChat writes the serial's "
	    "bytes) names the same certificate");
	w3fx_sign_body(&m.s, w3fx_plat_b, "000abcdef0123456789", NOW, m.body,
	    m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d), PH_OK,
	    "... so do lower case and more zeros: the same number");
	w3fx_sign_body(&m.s, w3fx_plat_b, "ABCDEF012345678", NOW, m.body,
	    m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "another number is another certificate");
	w3fx_sign_body(&m.s, w3fx_plat_b, "7777", NOW, m.body, m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "expired platform certificate refused");
	ok(strstr(d.msg, "7777") && strstr(d.msg, "not valid"),
	    "expired certificate: diagnostic");

	/* Header names are compared without case. */
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	m.s.h[0].name = "WECHATPAY-TIMESTAMP";
	m.s.h[2].name = "wechatpay-signature";
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d), PH_OK,
	    "header names in any case");

	/* Freshness: 300 s either way is accepted, 301 is not. */
	is_int(deliver_at(ctx, NOW - 300, &ev), PH_OK,
	    "timestamp 300 s old accepted");
	is_int(deliver_at(ctx, NOW - 301, &ev), PH_E_SIGNATURE,
	    "timestamp 301 s old refused");
	ok(th_event_empty(&ev), "refusal leaves an empty event");
	ok(strstr(d.msg, "Wechatpay-Timestamp") != NULL,
	    "stale: diagnostic names the header");
	is_int(deliver_at(ctx, NOW + 301, &ev), PH_E_SIGNATURE,
	    "timestamp 301 s ahead refused");
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	snprintf(m.s.ts, sizeof(m.s.ts), "+%lld", NOW);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "timestamp with a sign refused");

	/* Signature and key selection. */
	w3fx_sign_body(&m.s, w3fx_tv3_key, SER_A, NOW, m.body, m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "signed by another key refused");
	w3fx_sign_body(&m.s, w3fx_plat_a,
	    "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NOW, m.body, m.len);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "unknown Wechatpay-Serial refused");
	ok(strstr(d.msg, "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF") != NULL &&
	    strstr(d.msg, "unknown") != NULL,
	    "unknown serial: the diagnostic names it");
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	snprintf(m.s.sig, sizeof(m.s.sig), "WECHATPAY/SIGNTEST/%s",
	    "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uib");
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "WECHATPAY/SIGNTEST/ probe refused");
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	m.s.h[4].value = "WECHATPAY2-SHA256-RSA1024";
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "another Wechatpay-Signature-Type refused");
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	m.s.nh = 4;
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d), PH_OK,
	    "Wechatpay-Signature-Type may be absent");
	for (i = 0; i < 4; i++) {
		w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
		m.s.h[i].name = "X-Other";
		is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
		    PH_E_SIGNATURE, "each Wechatpay-* header is required");
	}
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	m.s.h[5].name = "Wechatpay-Serial";
	m.s.h[5].value = SER_A;
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "a Wechatpay-* header sent twice refused");
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	snprintf(m.s.nonce, sizeof(m.s.nonce), "a\nb");
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "a nonce with a newline refused");

	/* Tampering. */
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	m.body[m.len - 3] ^= 1;
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "tampered body refused");
	m.body[m.len - 3] ^= 1;
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len - 1, NOW, &ev, &d),
	    PH_E_SIGNATURE, "truncated body refused");
	{
		char *ctp = strstr(m.body, "\"ciphertext\":\"") + 14;
		char *end = strchr(ctp, '"');

		ctp[4] = ctp[4] == 'A' ? 'B' : 'A';
		w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
		is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
		    PH_E_SIGNATURE, "tampered ciphertext, validly signed, "
		    "refused by the GCM tag");
		ok(strstr(d.msg, "AES-256-GCM") != NULL,
		    "tampered ciphertext: diagnostic");
		ctp[4] = ctp[4] == 'A' ? 'B' : 'A';
		/* the last base64 quantum carries the tag's last bytes */
		end[-4] = end[-4] == 'A' ? 'B' : 'A';
		w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
		is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
		    PH_E_SIGNATURE, "tampered tag refused");
		ok(th_event_empty(&ev), "tampered tag: no partial event");
	}
	m.len = w3fx_envelope(m.body, sizeof(m.body), "EV-1",
	    "TRANSACTION.SUCCESS", "transaction", plain, "transaction",
	    "fdasflkja484");
	{
		char *aad = strstr(m.body,
		    "\"associated_data\":\"transaction\"");

		memcpy(aad + 19, "TRANSACTION", 11);
	}
	is_int(deliver_at(ctx, NOW, &ev), PH_E_SIGNATURE,
	    "wrong associated_data refused");
	m.len = w3fx_envelope(m.body, sizeof(m.body), "EV-1",
	    "TRANSACTION.SUCCESS", "transaction", plain, "", "fdasflkja484");
	is_int(deliver_at(ctx, NOW, &ev), PH_OK,
	    "empty associated_data is fed and checks");
	m.len = w3fx_envelope(m.body, sizeof(m.body), "EV-1",
	    "TRANSACTION.SUCCESS", "transaction", plain, "", "fdasflkja48");
	is_int(deliver_at(ctx, NOW, &ev), PH_E_FIELD,
	    "an 11-byte GCM nonce refused");
	/* A short ciphertext: the tag alone, no data, or less. */
	for (i = 0; i < sizeof(short_ct) / sizeof(short_ct[0]); i++) {
		snprintf(raw, sizeof(raw), "{\"id\":\"EV-1\",\"event_type\":"
		    "\"TRANSACTION.SUCCESS\",\"resource_type\":"
		    "\"encrypt-resource\",\"resource\":{\"original_type\":"
		    "\"transaction\",\"algorithm\":\"AEAD_AES_256_GCM\","
		    "\"ciphertext\":\"%s\",\"associated_data\":\"\","
		    "\"nonce\":\"fdasflkja484\"}}", short_ct[i].in);
		is_int(notify_raw(ctx, raw, &ev), PH_E_SIGNATURE,
		    "%s", short_ct[i].what);
	}

	/* The envelope, strictly. */
	is_int(notify_raw(ctx, "{\"id\":\"EV-1\",\"id\":\"EV-2\"}", &ev),
	    PH_E_MALFORMED, "duplicate key in the envelope refused");
	m.len = w3fx_envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(raw + m.len - 1, ",\"resource_type\":\"x\"}", 22);
	is_int(notify_raw(ctx, raw, &ev), PH_E_MALFORMED,
	    "a second resource_type refused");
	m.len = w3fx_envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(raw + m.len, " x", 3);
	is_int(notify_raw(ctx, raw, &ev), PH_E_MALFORMED,
	    "trailing bytes after the JSON refused");
	m.len = w3fx_envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(strstr(raw, "AEAD_AES_256_GCM"), "AEAD_AES_128_GCM", 16);
	is_int(notify_raw(ctx, raw, &ev), PH_E_UNSUPPORTED,
	    "another algorithm refused");
	m.len = w3fx_envelope(raw, sizeof(raw), "EV-1", "TRANSACTION.SUCCESS",
	    "transaction", plain, "", "fdasflkja484");
	memcpy(strstr(raw, "encrypt-resource"), "plain---resource", 16);
	is_int(notify_raw(ctx, raw, &ev), PH_E_UNSUPPORTED,
	    "resource_type other than encrypt-resource refused");
	is_int(notify_raw(ctx, "{\"id\":\"EV-1\",\"a\":[[[[[[1]]]]]]}", &ev),
	    PH_E_MALFORMED, "an envelope nested too deep refused");
	is_int(notify_raw(ctx, "{\"id\":\"EV-\xc0\xaf\"}", &ev),
	    PH_E_MALFORMED, "invalid UTF-8 refused");
	is_int(notify_raw(ctx, "[1]", &ev), PH_E_MALFORMED,
	    "a top-level array refused");
	m.len = 0;
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, "", 0);
	is_int(w3fx_deliver(ctx, &m.s, "", 0, NOW, &ev, &d), PH_E_MALFORMED,
	    "empty body refused");

	/* The decrypted resource, strictly. */
	w3fx_tx(plain, sizeof(plain), "A1", "42000001", "SUCCESS", "12.5");
	is_int(w3fx_notify_plain(ctx, &m, "transaction", plain, &ev, &d),
	    PH_E_FIELD, "amount 12.5 refused");
	ok(strstr(d.msg, "amount.total") != NULL, "amount: path named");
	for (i = 0; i < sizeof(bad_tx) / sizeof(bad_tx[0]); i++) {
		w3fx_tx(plain, sizeof(plain), bad_tx[i].order, "42000001",
		    bad_tx[i].state, bad_tx[i].amount);
		if (bad_tx[i].part != NULL)
			memcpy(strstr(plain, bad_tx[i].part), bad_tx[i].with,
			    strlen(bad_tx[i].with));
		is_int(w3fx_notify_plain(ctx, &m, "transaction", plain, &ev,
		    &d), bad_tx[i].rc, "%s", bad_tx[i].what);
	}
	w3fx_tx(plain, sizeof(plain), "A1", "42000001", "SUCCESS", "1");
	snprintf(raw, sizeof(raw), "{\"sub_mchid\":\"1900000109\",%s",
	    plain + 1);
	is_int(w3fx_notify_plain(ctx, &m, "transaction", raw, &ev, &d),
	    PH_E_MERCHANT, "service-provider sub_mchid refused");

	/* Mapping of the other states and events. */
	w3fx_tx(plain, sizeof(plain), "A1", "42000001", "NOTPAY", "1");
	is_int(w3fx_notify_plain(ctx, &m, "transaction", plain, &ev, &d), PH_OK,
	    "trade_state NOTPAY accepted");
	ok(ev.kind == PH_EV_PAYMENT_PENDING &&
	    strcmp(ev.dedup_key, "notify:EV-2018022511223320873") == 0,
	    "NOTPAY: pending, deduplicated by the notification id");
	w3fx_tx(plain, sizeof(plain), "A1", "42000001", "CLOSED", "1");
	w3fx_notify_plain(ctx, &m, "transaction", plain, &ev, &d);
	is_int(ev.kind, PH_EV_PAYMENT_CLOSED, "CLOSED: payment closed");
	w3fx_tx(plain, sizeof(plain), "A1", "42000001", "PAYERROR", "1");
	w3fx_notify_plain(ctx, &m, "transaction", plain, &ev, &d);
	is_int(ev.kind, PH_EV_PAYMENT_FAILED, "PAYERROR: payment failed");
	/* The envelope says success, the decrypted state does not: the
	 * decrypted state wins. */
	w3fx_tx(plain, sizeof(plain), "A1", "42000001", "NOTPAY", "1");
	m.len = w3fx_envelope(m.body, sizeof(m.body), "EV-9",
	    "TRANSACTION.SUCCESS", "transaction", plain, "transaction",
	    "fdasflkja484");
	memcpy(strstr(m.body, "\"summary\":\""), "\"summary\":\"", 11);
	w3fx_sign_body(&m.s, w3fx_plat_a, SER_A, NOW, m.body, m.len);
	w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d);
	is_int(ev.kind, PH_EV_PAYMENT_PENDING, "TRANSACTION.SUCCESS over a "
	    "NOTPAY resource is not a payment");

	snprintf(plain, sizeof(plain), "{\"mchid\":\"" MCHID "\","
	    "\"out_trade_no\":\"1217752501201407033233368018\","
	    "\"transaction_id\":\"1217752501201407033233368018\","
	    "\"out_refund_no\":\"R1217752501201407033233368@1\","
	    "\"refund_id\":\"1217752501201407033233368018\","
	    "\"refund_status\":\"SUCCESS\","
	    "\"success_time\":\"2018-06-08T10:34:56+08:00\","
	    "\"user_received_account\":\"\xe6\x8b\x9b\xe5\x95\x86\","
	    "\"amount\":{\"total\":999,\"refund\":990,\"payer_total\":999,"
	    "\"payer_refund\":990}}");
	is_int(w3fx_notify_plain(ctx, &m, "refund", plain, &ev, &d), PH_OK,
	    "REFUND.SUCCESS accepted");
	ok(ev.kind == PH_EV_REFUND_SUCCEEDED && ev.amount == 990 &&
	    strcmp(ev.refund_id, "1217752501201407033233368018") == 0 &&
	    strcmp(ev.merchant_refund_id, "R1217752501201407033233368@1") ==
	    0 &&
	    strcmp(ev.currency, "CNY") == 0 && ev.occurred_at == 1528425296 &&
	    strcmp(ev.dedup_key,
	    "refund:1217752501201407033233368018:SUCCESS") == 0,
	    "refund: amount.refund, refund_id, out_refund_no, CNY, time, "
	    "keyed by the refund and its status (as its query answer)");
	memcpy(strstr(plain, "368@1"), "368 1", 5);
	is_int(w3fx_notify_plain(ctx, &m, "refund", plain, &ev, &d), PH_E_FIELD,
	    "refund with an invalid out_refund_no refused");
	memcpy(strstr(plain, "368 1"), "368@1", 5);
	memcpy(strstr(plain, "\"SUCCESS\""), "\"CLOSED\" ", 9);
	w3fx_notify_plain(ctx, &m, "refund", plain, &ev, &d);
	is_int(ev.kind, PH_EV_REFUND_FAILED, "refund CLOSED: refund failed");
	is_str(ev.dedup_key, "refund:1217752501201407033233368018:CLOSED",
	    "refund CLOSED: its own key, apart from its success's");
	memcpy(strstr(plain, MCHID), "1230000108", 10);
	is_int(w3fx_notify_plain(ctx, &m, "refund", plain, &ev, &d),
	    PH_E_MERCHANT, "refund of another mchid refused");

	snprintf(plain, sizeof(plain), "{\"mchid\":\"" MCHID "\","
	    "\"contract_id\":\"Wx15463511252015071056489715\"}");
	is_int(w3fx_notify_plain(ctx, &m, "contract", plain, &ev, &d), PH_OK,
	    "an original_type payhook does not act on is acknowledged");
	ok(ev.kind == PH_EV_IGNORED && strcmp(ev.order_id, "-") == 0 &&
	    strcmp(ev.dedup_key, "notify:EV-2018022511223320873") == 0,
	    "ignored: kind, placeholder order id, notification id");
	payhook_provider()->profile_free(ctx);

	/* A profile with a tolerance of 60 s. */
	w3fx_prof_v3(&p);
	p.tolerance = "60";
	w3fx_mkprof(&p, &ctx, &d);
	w3fx_tx(plain, sizeof(plain), "A1", "42000001", "SUCCESS", "1");
	m.len = w3fx_envelope(m.body, sizeof(m.body), "EV-1",
	    "TRANSACTION.SUCCESS", "transaction", plain, "transaction",
	    "fdasflkja484");
	is_int(deliver_at(ctx, NOW - 61, &ev), PH_E_SIGNATURE,
	    "tolerance 60: 61 s old refused");
	is_int(deliver_at(ctx, NOW - 60, &ev), PH_OK,
	    "tolerance 60: 60 s old accepted");
	payhook_provider()->profile_free(ctx);

	/* Another APIv3 key cannot decrypt. */
	w3fx_prof_v3(&p);
	p.v3key = "ZZZZ456789abcdefABCDEFGHijklmnop";
	w3fx_mkprof(&p, &ctx, &d);
	is_int(w3fx_deliver(ctx, &m.s, m.body, m.len, NOW, &ev, &d),
	    PH_E_SIGNATURE, "another APIv3 key: refused by the tag");
	payhook_provider()->profile_free(ctx);
}

static void
test_time(void)
{
	/* Times of 2018-06-08 02:34:56 UTC. */
	static const struct th_case same[] = {
		{ "2018-06-08T10:34:56+08:00", "RFC 3339 +08:00" },
		{ "2018-06-08T02:34:56Z", "RFC 3339 Z" },
		{ "2018-06-07T21:04:56-05:30", "RFC 3339 -05:30" },
		{ "2018-06-08T02:34:56.123Z", "fractional seconds dropped" },
	};
	static const struct th_case refused[] = {
		{ "2018-06-08 10:34:56+08:00", "space for T refused" },
		{ "2018-02-30T10:34:56+08:00", "February 30 refused" },
		{ "2018-06-08T10:34:56+24:00", "offset of 24 h refused" },
		{ "2018-06-08T10:34:56", "no offset refused" },
		{ "2018-06-08T10:34:56+08:00 ", "trailing space refused" },
		{ "2018-06-08T10:34:56.Z", "empty fraction refused" },
	};
	int64_t t;
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		ok(wx3_time(same[i].in, &t) == PH_OK && t == 1528425296,
		    "%s", same[i].what);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ok(wx3_time(refused[i].in, &t) != PH_OK, "%s",
		    refused[i].what);
}

static void
test_ack(void)
{
	struct ph_response r;
	void *ctx;

	ctx = w3fx_v3ctx(&d);
	payhook_provider()->ack(ctx, PH_ACK_OK, NULL, &r);
	ok(r.status == 204 && r.body_len == 0 && r.content_type[0] == '\0',
	    "v3 ack: success is 204 with no body");
	payhook_provider()->ack(ctx, PH_ACK_REFUSED,
	    "signature verification failed", &r);
	is_int(r.status, 400, "v3 ack: refused is 400");
	ok(r.body_len == strlen("{\"code\":\"FAIL\",\"message\":\"signature "
	    "verification failed\"}") && memcmp(r.body, "{\"code\":\"FAIL\","
	    "\"message\":\"signature verification failed\"}", r.body_len) == 0,
	    "v3 ack: {\"code\":\"FAIL\",\"message\":...}");
	is_str(r.content_type, "application/json", "v3 ack: JSON");
	payhook_provider()->ack(ctx, PH_ACK_RETRY, "temporarily unavailable",
	    &r);
	ok(r.status == 500 && r.body_len > 0, "v3 ack: retry is 500");
	payhook_provider()->ack(ctx, PH_ACK_REFUSED, "say \"hi\"\n\\", &r);
	ok(r.status == 400 && r.body_len == strlen("{\"code\":\"FAIL\","
	    "\"message\":\"say \\\"hi\\\"\\\\\"}"), "v3 ack: reason escaped, "
	    "control characters dropped");
	payhook_provider()->ack(ctx, PH_ACK__MAX, NULL, &r);
	ok(r.status == 500 && r.body_len == 0, "v3 ack: unknown kind is a "
	    "bare 500");
	payhook_provider()->profile_free(ctx);
}

/* ---- the official worked examples ---------------------------------------- */

/* The lines a v3 signature is made over: l[i] is parts[i], i < n. */
static void
lines_of(struct wx3_line *l, const char *const *parts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		l[i].p = parts[i];
		l[i].n = strlen(parts[i]);
	}
}

static void
test_tv3_tv4(void)
{
	static const char tv3_body[] = "{\"appid\":\"wxd678efh567hg6787\","
	    "\"mchid\":\"1900007291\",\"description\":\"Image\xe5\xbd\xa2"
	    "\xe8\xb1\xa1\xe5\xba\x97-\xe6\xb7\xb1\xe5\x9c\xb3\xe8\x85\xbe"
	    "\xe5\xa4\xa7-QQ\xe5\x85\xac\xe4\xbb\x94\",\"out_trade_no\":"
	    "\"1217752501201407033233368018\",\"notify_url\":"
	    "\"https://www.weixin.qq.com/wxpay/pay.php\",\"amount\":"
	    "{\"total\":100,\"currency\":\"CNY\"},\"payer\":{\"openid\":"
	    "\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\"}}";
	static const char tv3_sig[] =
	    "jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1O"
	    "QBbKYhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1"
	    "CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg"
	    "6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe"
	    "5kwoDpw4Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdU"
	    "toE0liJGW3RGUNE0t4v01A==";
	static const char tv4_sig[] =
	    "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uib"
	    "cLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfR"
	    "W4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcI"
	    "LgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bd"
	    "u1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBx"
	    "KJ+qk5N61J7caYoepHFaxw==";
	/* What TV-3 signs, and TV-4 (the JSAPI paySign). */
	const char *const tv3_lines[] = { "POST", "/v3/pay/transactions/jsapi",
	    "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", tv3_body };
	static const char *const tv4_lines[] = { "wx2421b1c4370ec43b",
	    "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242",
	    "prepay_id=wx201410272009395522657a690389285100" };
	struct wx3_line l[5];
	struct ph_buf sig, msg, auth;
	unsigned char md[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	struct wx_ctx *c;
	struct w3fx_prof p;
	void *ctx;

	w3fx_prof_v3(&p);
	p.mch_id = "1900007291";
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_OK,
	    "TV-3 merchant profile with the official test key");
	c = ctx;

	lines_of(l, tv3_lines, 5);
	ph_buf_init(&msg, 4096);
	wx3_message(l, 5, &msg);
	is_int(msg.len, 372, "TV-3: the sign string is 372 bytes");
	ph_sha256(msg.data, msg.len, md);
	ph_hex_lower(md, sizeof(md), hex);
	is_str(hex, "87a9f84cd9b4bdb78ec4dbe4595c8c8bf04d3e79a6765b2100741d1a"
	    "473d37af", "TV-3: SHA-256 of the sign string");
	ph_buf_free(&msg);
	ph_buf_init(&sig, 4096);
	is_int(wx3_sign_lines(c->v3, l, 5, &sig, &d), PH_OK, "TV-3: signed");
	is_str(sig.data, tv3_sig, "TV-3: the official signature, exactly");
	ph_buf_free(&sig);

	ph_buf_init(&auth, 4096);
	is_int(wx3_authorization(c, "POST", "/v3/pay/transactions/jsapi",
	    1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242",
	    (const unsigned char *)tv3_body, strlen(tv3_body), &auth, &d),
	    PH_OK, "TV-3: Authorization header built");
	is_str(auth.data, "WECHATPAY2-SHA256-RSA2048 mchid=\"1900007291\","
	    "nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\"" "jnks"
	    "4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKY"
	    "hFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9Qi"
	    "JuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4E"
	    "zwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4"
	    "Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW"
	    "3RGUNE0t4v01A==\",timestamp=\"1554208460\",serial_no=\""
	    TV3_SERIAL "\"", "TV-3: the whole Authorization header");
	ph_buf_free(&auth);

	lines_of(l, tv4_lines, 4);
	ph_buf_init(&sig, 4096);
	is_int(wx3_sign_lines(c->v3, l, 4, &sig, &d), PH_OK, "TV-4: signed");
	is_str(sig.data, tv4_sig, "TV-4: the official JSAPI paySign, exactly");
	ph_buf_free(&sig);
	payhook_provider()->profile_free(ctx);
}

static void
test_tv5(void)
{
	static const char body5[] =
	    "{\"code_url\":\"weixin://wxpay/bizpayurl?pr=JyC91EIz1\"}";
	static const char sig5[] =
	    "mfI1CPqvBrgcXfgXMFjdNIhBf27ACE2YyeWsWV9ZI7T7RU0vHvbQpu9Z32ogzc+k"
	    "8ZC5n3kz7h70eWKjgqNdKQF0eRp8mVKlmfzMLBVHbssB9jEZEDXThOX1XFqX7s7y"
	    "mia1hoHQxQagPGzkdWxtlZPZ4ZPvr1RiqkgAu6Is8MZgXXrRoBKqjmSdrP1N7uxz"
	    "J/cjfSiis9FiLjuADoqmQ1P7p2N876YPAol7Rn0+GswwAwxldbdLrmVSjfytfSBJ"
	    "FqTMHn4itojgxSWWN1byuckQt8hSTEv/Lg97QoeGniYP17T80pJeQyL3b+295FPH"
	    "SO2AtvCgyIbKMZ0BALilAA==";
	struct ph_header h[5] = {
		{ "Wechatpay-Timestamp", "1722850421" },
		{ "Wechatpay-Nonce", "d824f2e086d3c1df967785d13fcd22ef" },
		{ "Wechatpay-Serial",
		    "PUB_KEY_ID_0000000000000024101100397200000006" },
		{ "Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048" },
		{ "Wechatpay-Signature", sig5 },
	};
	char copy[sizeof(body5)];
	struct wx_ctx *c;
	struct w3fx_prof p;
	void *ctx;
	size_t i;
	int bad = 0;

	w3fx_prof_v3(&p);
	p.certs[0] = NULL;
	p.pub = th_tv5_pub_pem;
	p.pub_id = "PUB_KEY_ID_0000000000000024101100397200000006";
	is_int(w3fx_mkprof(&p, &ctx, &d), PH_OK,
	    "TV-5: profile with the official WeChat Pay public key");
	c = ctx;
	/* The example is from 2024: freshness is checked against the
	 * example's own time. */
	is_int(wx3_verify(c->v3, h, 5, (const unsigned char *)body5,
	    strlen(body5), 1722850421, "answer", &d), PH_OK,
	    "TV-5: the official answer verifies");
	is_int(wx3_verify(c->v3, h, 5, (const unsigned char *)body5,
	    strlen(body5), NOW, "answer", &d), PH_E_SIGNATURE,
	    "TV-5: but not years later (freshness)");
	for (i = 0; i < strlen(body5); i++) {
		memcpy(copy, body5, sizeof(body5));
		copy[i] ^= 0x01;
		if (wx3_verify(c->v3, h, 5, (const unsigned char *)copy,
		    strlen(body5), 1722850421, "answer", &d) !=
		    PH_E_SIGNATURE)
			bad++;
	}
	is_int(bad, 0, "TV-5: flipping any bit of any body byte fails");
	h[2].value = "PUB_KEY_ID_0000000000000024101100397200000007";
	is_int(wx3_verify(c->v3, h, 5, (const unsigned char *)body5,
	    strlen(body5), 1722850421, "answer", &d), PH_E_SIGNATURE,
	    "TV-5: another key id is unknown");
	payhook_provider()->profile_free(ctx);
}

int
main(void)
{
	w3fx_make_keys();
	test_table();
	test_profiles();
	test_notify();
	test_time();
	test_ack();
	test_tv3_tv4();
	test_tv5();
	w3fx_free_keys();
	return done_testing();
}
