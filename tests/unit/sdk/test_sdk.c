/*
 * The provider SDK against known answers (doc/design/protocols.md §7) and
 * against the hostile inputs of doc/design/security.md §2.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <payhook/sdk.h>

#include "../lib/helpers.h"
#include "../lib/tap.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- status, diag, conf ------------------------------------------------ */

static void
test_status(void)
{
	struct ph_conf_value vals[2] = {
		{ .name = "appid", .present = 1, .str = "wx1" },
		{ .name = "mch_id", .present = 0, .str = "" },
	};
	struct ph_conf conf = { "p", vals, 2 };
	struct ph_diag d;
	int i, j, distinct = 1, named = 1;

	for (i = 0; i < PH_E__MAX; i++) {
		if (ph_strerror(i) == NULL ||
		    strcmp(ph_strerror(i), "unknown error") == 0)
			named = 0;
		for (j = 0; j < i; j++)
			if (strcmp(ph_strerror(i), ph_strerror(j)) == 0)
				distinct = 0;
	}
	ok(named, "every status has a name");
	ok(distinct, "status names are distinct");
	is_str(ph_strerror(PH_E__MAX), "unknown error", "past the end");
	is_str(ph_strerror(-1), "unknown error", "negative status");

	is_int(ph_fail(&d, PH_E_FIELD, "x=%d\ny", 5), PH_E_FIELD,
	    "ph_fail returns the status");
	is_str(d.msg, "x=5?y", "ph_fail keeps one printable line");
	is_int(ph_fail(NULL, PH_E_IO, "none"), PH_E_IO, "ph_fail without diag");

	ok(ph_conf_get(&conf, "appid") == &vals[0], "conf_get finds a key");
	ok(ph_conf_get(&conf, "mch_id") == &vals[1], "conf_get second key");
	ok(ph_conf_get(&conf, "nope") == NULL, "conf_get unknown key");
	ok(ph_conf_get(NULL, "appid") == NULL, "conf_get NULL conf");
}

/* ---- buf and kvlist ------------------------------------------------------- */

static void
test_buf(void)
{
	struct ph_buf b;

	ph_buf_init(&b, 10);
	is_int(ph_buf_puts(&b, "0123456789"), PH_OK, "buf: fill to max");
	is_int(b.len, 10, "buf: length");
	is_str(b.data, "0123456789", "buf: content NUL-terminated");
	is_int(ph_buf_append(&b, "x", 1), PH_E_TOOBIG, "buf: max enforced");
	is_int(ph_buf_append(&b, "", 0), PH_E_TOOBIG, "buf: error is sticky");
	is_int(b.len, 10, "buf: nothing appended past max");
	ph_buf_free(&b);

	ph_buf_init(&b, 8);
	is_int(ph_buf_printf(&b, "%s-%d", "ab", 42), PH_OK, "buf: printf");
	is_str(b.data, "ab-42", "buf: printf content");
	is_int(ph_buf_printf(&b, "%d", 1234), PH_E_TOOBIG,
	    "buf: printf past max refused");
	is_str(b.data, "ab-42", "buf: content kept after refusal");
	ph_buf_free(&b);

	ph_buf_init(&b, 100000);
	{
		char chunk[1000];
		int i, rc = PH_OK;

		memset(chunk, 'a', sizeof(chunk));
		for (i = 0; i < 100 && rc == PH_OK; i++)
			rc = ph_buf_append(&b, chunk, sizeof(chunk));
		ok(rc == PH_OK && b.len == 100000, "buf: grows to max");
		is_int(ph_buf_append(&b, "a", 1), PH_E_TOOBIG,
		    "buf: one past a large max");
	}
	ph_buf_free(&b);

	ph_buf_init(&b, 16);
	ph_buf_puts(&b, "ab");
	ok(ph_buf_reserve(&b, 14) == PH_OK && b.cap >= 17 && b.len == 2 &&
	    strcmp(b.data, "ab") == 0, "buf: room reserved, content kept");
	{
		char *at = b.data;

		ph_buf_puts(&b, "0123456789abcd");
		ok(b.data == at && b.len == 16, "buf: what was reserved is "
		    "appended without moving");
	}
	is_int(ph_buf_reserve(&b, 1), PH_E_TOOBIG, "buf: reserving past max "
	    "fails");
	is_int(b.err, PH_E_TOOBIG, "buf: ... and sticks");
	ph_buf_free(&b);
}

static void
test_kvlist(void)
{
	struct ph_kvlist l;
	struct ph_diag d;

	ph_kvlist_init(&l, 3);
	is_int(ph_kvlist_add(&l, "a", 1, "1", 1, &d), PH_OK, "kv: add");
	is_int(ph_kvlist_add(&l, "b", 1, "", 0, &d), PH_OK, "kv: add empty");
	is_int(ph_kvlist_add(&l, "a", 1, "2", 1, &d), PH_E_MALFORMED,
	    "kv: duplicate key refused");
	is_str(ph_kvlist_get(&l, "a"), "1", "kv: first value kept");
	is_int(ph_kvlist_add(&l, "c", 1, "x\0y", 3, &d), PH_E_MALFORMED,
	    "kv: NUL in value refused");
	is_int(ph_kvlist_add(&l, "", 0, "x", 1, &d), PH_E_MALFORMED,
	    "kv: empty key refused");
	is_int(ph_kvlist_add(&l, "abc", 2, "3", 1, &d), PH_OK,
	    "kv: key by length");
	ok(ph_kvlist_get(&l, "ab") != NULL && ph_kvlist_get(&l, "abc") == NULL,
	    "kv: key copied with its length");
	is_int(ph_kvlist_add(&l, "z", 1, "4", 1, &d), PH_E_TOOBIG,
	    "kv: max fields enforced");
	is_int(l.n, 3, "kv: count");
	ok(ph_kvlist_get(&l, "nope") == NULL, "kv: absent key");
	ph_kvlist_free(&l);
	is_int(l.n, 0, "kv: freed");
}

/* ---- TV-1, TV-2: WeChat v2 sign strings ------------------------------------ */

static void
test_tv12(void)
{
	static const char *const kv[][2] = {
		{ "appid", "wxd930ea5d5a258f4f" },
		{ "mch_id", "10000100" },
		{ "device_info", "1000" },
		{ "body", "test" },
		{ "nonce_str", "ibuaiVcKdpRxkhJA" },
		{ "sign", "ignored" },
		{ "empty", "" },
	};
	static const char key[] = "192006250b4c09247ec02edce69f6a2d";
	static const char *const skip[] = { "sign", NULL };
	unsigned char md[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	struct ph_kvlist l;
	struct ph_buf b;
	size_t i;

	ph_kvlist_init(&l, 16);
	for (i = 0; i < N(kv); i++)
		ph_kvlist_add(&l, kv[i][0], strlen(kv[i][0]), kv[i][1],
		    strlen(kv[i][1]), NULL);
	ph_buf_init(&b, 4096);
	is_int(ph_canonical_join(&l, skip, 1, &b), PH_OK, "TV-1: join");
	is_str(b.data, "appid=wxd930ea5d5a258f4f&body=test&device_info=1000"
	    "&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA", "TV-1: stringA");
	ph_buf_puts(&b, "&key=");
	ph_buf_puts(&b, key);
	ph_md5(b.data, b.len, md);
	ph_hex_upper(md, PH_MD5_LEN, hex);
	is_str(hex, "9A0A8659F005D6984697E2CA0A9CF3B7", "TV-1: MD5 sign");
	ph_hmac_sha256(key, strlen(key), b.data, b.len, md);
	ph_hex_upper(md, PH_SHA256_LEN, hex);
	is_str(hex, "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54"
	    "170DACD6", "TV-2: HMAC-SHA256 sign");
	ph_hex_lower(md, 2, hex);
	is_str(hex, "6a9a", "hex lower");
	ph_buf_free(&b);

	ph_buf_init(&b, 4096);
	ph_canonical_join(&l, NULL, 0, &b);
	is_str(b.data, "appid=wxd930ea5d5a258f4f&body=test&device_info=1000"
	    "&empty=&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&sign=ignored",
	    "join without skips keeps empty values and sign");
	ph_buf_free(&b);

	ph_buf_init(&b, 20);
	is_int(ph_canonical_join(&l, skip, 1, &b), PH_E_TOOBIG,
	    "join bounded by the buffer");
	ph_buf_free(&b);
	ph_kvlist_free(&l);

	/* Byte-wise order: upper case sorts before lower, '_' between. */
	ph_kvlist_init(&l, 16);
	ph_kvlist_add(&l, "b", 1, "1", 1, NULL);
	ph_kvlist_add(&l, "a_b", 3, "2", 1, NULL);
	ph_kvlist_add(&l, "B", 1, "3", 1, NULL);
	ph_kvlist_add(&l, "aB", 2, "4", 1, NULL);
	ph_buf_init(&b, 100);
	ph_canonical_join(&l, NULL, 1, &b);
	is_str(b.data, "B=3&aB=4&a_b=2&b=1", "join sorts byte-wise");
	ph_buf_free(&b);
	ph_kvlist_free(&l);

	ph_md5("", 0, md);
	ph_hex_lower(md, PH_MD5_LEN, hex);
	is_str(hex, "d41d8cd98f00b204e9800998ecf8427e", "md5 of nothing");
	ph_sha1("abc", 3, md);
	ph_hex_lower(md, PH_SHA1_LEN, hex);
	is_str(hex, "a9993e364706816aba3e25717850c26c9cd0d89d", "sha1 abc");
	ph_sha256("abc", 3, md);
	ph_hex_lower(md, PH_SHA256_LEN, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61"
	    "f20015ad", "sha256 abc");
}

/* ---- RSA: TV-5 and TV-3 ----------------------------------------------------- */

/* The two keys as PUBLIC KEY are th_tv5_pub_pem and th_tv3_pub_pem
 * (helpers.h); TV-5's in PKCS#1 form (openssl rsa -pubin
 * -RSAPublicKey_out) is here. */
static const char tv5_rsa_pem[] =
    "-----BEGIN RSA PUBLIC KEY-----\n"
    "MIIBCgKCAQEAwXNI6sdlknHBnK8Fu2U6Cwor9qY747jP8KAfeBMeveEt1TqaHkLf\n"
    "aSD07trZLhGpfs8/AHqjhgSMO1O10YQWOrrJ4hjIWPKqxbgrYMkBQc+mwdiWp4W3\n"
    "ByCqxBRagCveCXRWCmuJYovl9H/bsDI0iGbpVtEOghJtfciisYSgxcLufUDTRkvw\n"
    "xjIBK1pCRjk33jJ5YTBWTHMRtMAOcFLNF6hdEYdX8SPsgHHeLZ5Lv2T/686w1xtg\n"
    "CHef/sd4uSfWmyzsalQdHG/e4IyYmrhx+O3VBoNDzE3nx23bFeV/RVNCG7cV6Vhm\n"
    "YokJNHa/erIPkEmEFID6A5wQOXuxUkmJWwIDAQAB\n"
    "-----END RSA PUBLIC KEY-----\n";

static const char tv5_msg[] =
    "1722850421\nd824f2e086d3c1df967785d13fcd22ef\n"
    "{\"code_url\":\"weixin://wxpay/bizpayurl?pr=JyC91EIz1\"}\n";

static const char tv5_sig[] =
    "mfI1CPqvBrgcXfgXMFjdNIhBf27ACE2YyeWsWV9ZI7T7RU0vHvbQpu9Z32ogzc+k8ZC5"
    "n3kz7h70eWKjgqNdKQF0eRp8mVKlmfzMLBVHbssB9jEZEDXThOX1XFqX7s7ymia1hoHQ"
    "xQagPGzkdWxtlZPZ4ZPvr1RiqkgAu6Is8MZgXXrRoBKqjmSdrP1N7uxzJ/cjfSiis9Fi"
    "LjuADoqmQ1P7p2N876YPAol7Rn0+GswwAwxldbdLrmVSjfytfSBJFqTMHn4itojgxSWW"
    "N1byuckQt8hSTEv/Lg97QoeGniYP17T80pJeQyL3b+295FPHSO2AtvCgyIbKMZ0BALil"
    "AA==";

/* A self-signed certificate over the TV-3 test key. */
static const char tv3_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIC/jCCAeagAwIBAgIBATANBgkqhkiG9w0BAQsFADAXMRUwEwYDVQQDDAxwYXlo\n"
    "b29rIHRlc3QwIBcNMjYxMTMwMTUzODE1WhgPMjEyNjExMDYxNTM4MTVaMBcxFTAT\n"
    "BgNVBAMMDHBheWhvb2sgdGVzdDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoC\n"
    "ggEBAKbaZvqryAwof/cI1NukkAituqIGJAYQ62MZwGsNiW2wbKdaA2xypPta9/NT\n"
    "XgVBthxBQLlPha+9ruaLd8inc6BfxWowM0DSp5uevfw97qSqIvJmAWkk9eVIoPI/\n"
    "KqFFtVNteyy9IxB5Upx1d5XGg016g6U0UeAX8/SKjoCYBWfP6E3xKJkq46y2Hn/N\n"
    "RMsa+2SDEFxCihCu1eFFyktPv3w7Ihv3F4nYc7fFG0y/b6l6sTNviAyJsjvhQHP7\n"
    "ZARueS5s8T7aNTatFm52c0TP8E863dCP/DZXr8bRW6YYOHr5R4xTSO/hq6kfO1Yh\n"
    "MLgCSfSXuUEI3LeWCXxUVomeQjECAwEAAaNTMFEwHQYDVR0OBBYEFDO/Mmb/fR4l\n"
    "oR5+r0GTrerXDIN6MB8GA1UdIwQYMBaAFDO/Mmb/fR4loR5+r0GTrerXDIN6MA8G\n"
    "A1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEBACpT9vUvpwMl4RkIHIXC\n"
    "IZn2yGP3qPdJ/kpGToKG2K2c+di1yZ4FQErgKNlPLPDyO1K5eS/mCORN5ttLbgec\n"
    "juurC5ABCaN3O0lsTI3biYG1wUWXG3jThAjKX3zZM7PbV+fq9hIIp9EEcOltx3mj\n"
    "EdXCdeg4XqoOnXPAOTfVVmaNfOITggRKY+CWOXkW2qVZ9Zu5rB2wSUIh3NIyELC8\n"
    "CSfb1eDHgf/PcS3e1er8L9NGj+xII7kMVCulxv9WlLNmUkoH0t2JqAmll3yhA2CO\n"
    "aXbf+cHWFkFFT4WM50bAfKdsVe1Z9QKBrEtih5z/T73d32ZWlgH+mGJc4ep6dWL/\n"
    "Vt8=\n"
    "-----END CERTIFICATE-----\n";

static const char tv3_msg[] =
    "POST\n/v3/pay/transactions/jsapi\n1554208460\n"
    "593BEC0C930BF1AFEB40B4A08C8FB242\n"
    "{\"appid\":\"wxd678efh567hg6787\",\"mchid\":\"1900007291\","
    "\"description\":\"Image形象店-深圳腾大-QQ公仔\","
    "\"out_trade_no\":\"1217752501201407033233368018\","
    "\"notify_url\":\"https://www.weixin.qq.com/wxpay/pay.php\","
    "\"amount\":{\"total\":100,\"currency\":\"CNY\"},"
    "\"payer\":{\"openid\":\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\"}}\n";

static const char tv3_sig[] =
    "jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbK"
    "YhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJu"
    "SJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4EzwLox"
    "684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ulqfu9z8"
    "OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v0"
    "1A==";

static const char weak_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDKkyt9hmKFZWsyyeUzEyhchHnO\n"
    "w4wc2OAXqzzxUjeB9xijY66T8mIWM5noUnusIm3peVVhqQUH3FRXjDxBsfzrBWWc\n"
    "wZgGzwRiGgefqpvzrcrJDCJ1xp9ywP+2l7gAFWwTHSXIjIPt4OPWsCrT6BmDZjNs\n"
    "NKpQMjIACgdjGa+OowIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static int
verify(const char *digest, const char *pem, size_t pem_len, const void *msg,
    size_t msg_len, const unsigned char *sig, size_t sig_len)
{
	struct ph_diag d = { "" };

	return ph_rsa_verify_pem(digest, (const unsigned char *)pem, pem_len,
	    msg, msg_len, sig, sig_len, &d);
}

static void
test_rsa(void)
{
	const char *tv5_pem = th_tv5_pub_pem, *tv3_pub = th_tv3_pub_pem;
	unsigned char sig[512], sig3[512], bad[512];
	char msg[sizeof(tv5_msg)], pem[2048];
	size_t sig_len = 0, sig3_len = 0, mlen = sizeof(tv5_msg) - 1, i;
	int all;

	is_int(mlen, 97, "TV-5: message is 97 bytes");
	is_int(ph_base64_decode(tv5_sig, strlen(tv5_sig), sig, sizeof(sig),
	    &sig_len), PH_OK, "TV-5: signature decodes");
	is_int(sig_len, 256, "TV-5: 2048-bit signature");
	is_int(verify("SHA256", tv5_pem, strlen(tv5_pem), tv5_msg, mlen, sig,
	    sig_len), PH_OK, "TV-5: verifies");
	is_int(verify("SHA256", tv5_rsa_pem, strlen(tv5_rsa_pem), tv5_msg,
	    mlen, sig, sig_len), PH_OK, "TV-5: verifies with RSA PUBLIC KEY");

	all = 1;
	for (i = 0; i < mlen; i++) {
		memcpy(msg, tv5_msg, mlen);
		msg[i] ^= 0x01;
		if (verify("SHA256", tv5_pem, strlen(tv5_pem), msg, mlen, sig,
		    sig_len) != PH_E_SIGNATURE)
			all = 0;
	}
	ok(all, "TV-5: flipping any message byte fails");
	memcpy(msg, tv5_msg, mlen);
	msg[20] ^= 0x80;
	is_int(verify("SHA256", tv5_pem, strlen(tv5_pem), msg, mlen, sig,
	    sig_len), PH_E_SIGNATURE, "TV-5: one flipped byte fails");
	memcpy(bad, sig, sig_len);
	bad[100] ^= 0x01;
	is_int(verify("SHA256", tv5_pem, strlen(tv5_pem), tv5_msg, mlen, bad,
	    sig_len), PH_E_SIGNATURE, "TV-5: flipped signature byte fails");
	is_int(verify("SHA256", tv5_pem, strlen(tv5_pem), tv5_msg, mlen - 1,
	    sig, sig_len), PH_E_SIGNATURE, "TV-5: truncated message fails");
	is_int(verify("SHA256", tv5_pem, strlen(tv5_pem), tv5_msg, mlen, sig,
	    sig_len - 1), PH_E_SIGNATURE, "TV-5: short signature fails");
	is_int(verify("SHA1", tv5_pem, strlen(tv5_pem), tv5_msg, mlen, sig,
	    sig_len), PH_E_SIGNATURE, "TV-5: wrong digest fails");
	is_int(verify("MD5", tv5_pem, strlen(tv5_pem), tv5_msg, mlen, sig,
	    sig_len), PH_E_UNSUPPORTED, "RSA: MD5 digest unsupported");
	is_int(verify("SHA256", tv3_pub, strlen(tv3_pub), tv5_msg, mlen, sig,
	    sig_len), PH_E_SIGNATURE, "TV-5: other key fails");

	is_int(ph_base64_decode(tv3_sig, strlen(tv3_sig), sig3, sizeof(sig3),
	    &sig3_len), PH_OK, "TV-3: signature decodes");
	is_int(strlen(tv3_msg), 372, "TV-3: message is 372 bytes");
	is_int(verify("SHA256", tv3_pub, strlen(tv3_pub), tv3_msg,
	    strlen(tv3_msg), sig3, sig3_len), PH_OK, "TV-3: verifies");
	is_int(verify("SHA256", tv3_cert, strlen(tv3_cert), tv3_msg,
	    strlen(tv3_msg), sig3, sig3_len), PH_OK,
	    "TV-3: verifies with a CERTIFICATE");
	is_int(verify("SHA256", tv3_cert, strlen(tv3_cert), tv5_msg, mlen,
	    sig, sig_len), PH_E_SIGNATURE, "certificate: other key fails");

	snprintf(pem, sizeof(pem), "%sjunk\n", tv5_pem);
	is_int(verify("SHA256", pem, strlen(pem), tv5_msg, mlen, sig, sig_len),
	    PH_E_CONFIG, "PEM: trailing data refused");
	snprintf(pem, sizeof(pem), "%s%s", tv5_pem, tv3_pub);
	is_int(verify("SHA256", pem, strlen(pem), tv5_msg, mlen, sig, sig_len),
	    PH_E_CONFIG, "PEM: two blocks refused");
	snprintf(pem, sizeof(pem), "junk\n%s", tv5_pem);
	is_int(verify("SHA256", pem, strlen(pem), tv5_msg, mlen, sig, sig_len),
	    PH_E_CONFIG, "PEM: leading data refused");
	snprintf(pem, sizeof(pem), "\n  %s\n\n", tv5_pem);
	is_int(verify("SHA256", pem, strlen(pem), tv5_msg, mlen, sig, sig_len),
	    PH_OK, "PEM: surrounding whitespace accepted");
	snprintf(pem, sizeof(pem), "-----BEGIN FOO-----\nAAAA\n"
	    "-----END FOO-----\n");
	is_int(verify("SHA256", pem, strlen(pem), tv5_msg, mlen, sig, sig_len),
	    PH_E_CONFIG, "PEM: other block type refused");
	is_int(verify("SHA256", "", 0, tv5_msg, mlen, sig, sig_len),
	    PH_E_CONFIG, "PEM: empty refused");
	is_int(verify("SHA256", weak_pem, strlen(weak_pem), tv5_msg, mlen,
	    sig, 128), PH_E_CONFIG, "RSA: 1024-bit key refused");
}

/* ---- XML -------------------------------------------------------------------- */

static const struct ph_xml_limits lim = { 65536, 128, 2048 };

static int
xparse(const char *doc, const char *root, const struct ph_xml_limits *l,
    struct ph_kvlist *kv)
{
	struct ph_diag d = { "" };
	int rc;

	rc = ph_xml_parse_flat((const unsigned char *)doc, strlen(doc), root,
	    l != NULL ? l : &lim, kv, &d);
	if (rc != PH_OK && d.msg[0] == '\0')
		diag("refusal without a diagnostic");
	return rc;
}

static int
xrefused(const char *doc)
{
	struct ph_kvlist kv;
	int rc = xparse(doc, "xml", NULL, &kv);

	ph_kvlist_free(&kv);
	return rc;
}

/* Documents refused as malformed for what they hold: entities and
 * DOCTYPEs (XXE, billion laughs), anything but one flat level of distinct
 * fields, another root than asked for. */
static const struct xml_refusal {
	const char *doc, *what;
} xml_bad_shape[] = {
	{ "<!DOCTYPE xml><xml><a>1</a></xml>", "xml: DOCTYPE refused" },
	{ "<!doctype xml><xml><a>1</a></xml>",
	    "xml: lower-case doctype refused" },
	{ "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
	    "<!ENTITY lol \"lol\">\n"
	    "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	    "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	    "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	    "]>\n<xml><attach>&lol3;</attach></xml>",
	    "xml: billion laughs refused" },
	{ "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe "
	    "SYSTEM \"file:///etc/passwd\">]><xml><attach>&xxe;</attach>"
	    "</xml>",
	    "xml: external entity refused" },
	{ "<!DOCTYPE xml [<!ENTITY % p SYSTEM "
	    "\"http://127.0.0.1:9/x.dtd\"> %p;]><xml><a>1</a></xml>",
	    "xml: parameter entity refused" },
	{ "<xml><a>&xxe;</a></xml>", "xml: undeclared entity refused" },
	{ "<xml><a><b>1</b></a></xml>", "xml: nested element refused" },
	{ "<xml><a>1<b/></a></xml>", "xml: mixed content refused" },
	{ "<xml><a>1</a><a>2</a></xml>", "xml: duplicate field refused" },
	{ "<xml><a>1</a><b>2</b><a>1</a></xml>",
	    "xml: duplicate with the same value refused" },
	{ "<root><a>1</a></root>", "xml: wrong root refused" },
};

/* Documents refused as malformed for their syntax, content or encoding. */
static const struct xml_refusal xml_bad_text[] = {
	{ "hello", "xml: garbage refused" },
	{ "<xml><a>1</a>", "xml: unclosed refused" },
	{ "<xml><a>1</b></xml>", "xml: mismatched tags refused" },
	{ "<xml><a>1</a></xml><xml/>", "xml: second root refused" },
	{ "", "xml: empty refused" },
	{ "<xml>text<a>1</a></xml>", "xml: text in the root refused" },
	{ "<xml><![CDATA[x]]><a>1</a></xml>",
	    "xml: CDATA in the root refused" },
	{ "<xml><!-- c --><a>1</a></xml>", "xml: comment refused" },
	{ "<xml><a>1<!-- c --></a></xml>", "xml: comment in a field refused" },
	{ "<xml><?pi x?><a>1</a></xml>",
	    "xml: processing instruction refused" },
	{ "<?xml-stylesheet href=\"x\"?><xml><a>1</a></xml>",
	    "xml: stylesheet PI refused" },
	{ "<xml><a x=\"1\">1</a></xml>", "xml: attribute refused" },
	{ "<xml xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
	    "<xi:include href=\"file:///etc/passwd\"/></xml>",
	    "xml: XInclude refused" },
	{ "<?xml version=\"1.0\" encoding=\"GBK\"?><xml><a>1</a>"
	    "</xml>",
	    "xml: non-UTF-8 prolog refused" },
	{ "<?xml version=\"1.0\"encoding=\"UTF-8\"?><xml><a>1</a></xml>",
	    "xml: no space before encoding refused" },
	{ "<?xml version=\"1.0\" standalone=\"maybe\"?><xml><a>1</a></xml>",
	    "xml: standalone neither yes nor no refused" },
	{ "\xef\xbb\xbf<xml><a>1</a></xml>", "xml: BOM refused" },
	{ "<xml><a>\xc0\xaf</a></xml>", "xml: overlong UTF-8 refused" },
};

/* The parser's bounds, each set low on its own (0: as lim): a document
 * just within it parses, one just past it is refused as too big. */
static const struct xml_bound {
	size_t max_bytes, max_fields, max_value;
	const char *within, *within_what, *past, *past_what;
} xml_bounds[] = {
	{ 30, 0, 0,
	    "<xml><a>123456789012</a></xml>", "xml: document at max_bytes",
	    "<xml><a>1234567890123</a></xml>",
	    "xml: document past max_bytes" },
	{ 0, 3, 0,
	    "<xml><a>1</a><b>2</b><c>3</c></xml>", "xml: max_fields fields",
	    "<xml><a>1</a><b>2</b><c>3</c><d>4</d></xml>",
	    "xml: too many fields refused" },
	{ 0, 0, 8,
	    "<xml><a>12345678</a></xml>", "xml: value at max_value",
	    "<xml><a>123456789</a></xml>", "xml: long value refused" },
};

/* One test point for each of the n documents r: refused as malformed. */
static void
xrefuse_all(const struct xml_refusal *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		is_int(xrefused(r[i].doc), PH_E_MALFORMED, "%s", r[i].what);
}

static void
test_xml(void)
{
	struct ph_kvlist kv;
	struct ph_xml_limits small;
	struct ph_buf b;
	char big[70000];
	size_t i;
	int rc;

	rc = xparse("<xml><a><![CDATA[x <y> & z]]></a><b>12</b><c></c><d/>"
	    "<e>a&amp;b&#x41;</e></xml>", "xml", NULL, &kv);
	is_int(rc, PH_OK, "xml: flat document parses");
	is_int(kv.n, 5, "xml: five fields");
	is_str(ph_kvlist_get(&kv, "a"), "x <y> & z", "xml: CDATA value");
	is_str(ph_kvlist_get(&kv, "b"), "12", "xml: text value");
	is_str(ph_kvlist_get(&kv, "c"), "", "xml: empty element");
	is_str(ph_kvlist_get(&kv, "d"), "", "xml: self-closing element");
	is_str(ph_kvlist_get(&kv, "e"), "a&bA", "xml: predefined and char refs");
	ph_kvlist_free(&kv);

	rc = xparse("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  "
	    "<return_code><![CDATA[SUCCESS]]></return_code>\n  "
	    "<total_fee>1</total_fee>\n</xml>\n", "xml", NULL, &kv);
	is_int(rc, PH_OK, "xml: prolog and whitespace between fields");
	is_str(ph_kvlist_get(&kv, "total_fee"), "1", "xml: value read");
	ph_kvlist_free(&kv);

	xrefuse_all(xml_bad_shape, sizeof(xml_bad_shape) /
	    sizeof(xml_bad_shape[0]));
	rc = xparse("<root><a>1</a></root>", NULL, NULL, &kv);
	is_int(rc, PH_OK, "xml: any root when root_name is NULL");
	ph_kvlist_free(&kv);
	xrefuse_all(xml_bad_text, sizeof(xml_bad_text) /
	    sizeof(xml_bad_text[0]));
	{
		static const char nul[] = "<xml><a>1\0</a></xml>";
		struct ph_diag d;

		is_int(ph_xml_parse_flat((const unsigned char *)nul,
		    sizeof(nul) - 1, "xml", &lim, &kv, &d), PH_E_MALFORMED,
		    "xml: NUL byte refused");
		ph_kvlist_free(&kv);
	}

	/* Bounds: one below passes, one above is refused. */
	for (i = 0; i < sizeof(xml_bounds) / sizeof(xml_bounds[0]); i++) {
		const struct xml_bound *t = &xml_bounds[i];

		small = lim;
		if (t->max_bytes != 0)
			small.max_bytes = t->max_bytes;
		if (t->max_fields != 0)
			small.max_fields = t->max_fields;
		if (t->max_value != 0)
			small.max_value = t->max_value;
		rc = xparse(t->within, "xml", &small, &kv);
		is_int(rc, PH_OK, "%s", t->within_what);
		ph_kvlist_free(&kv);
		rc = xparse(t->past, "xml", &small, &kv);
		is_int(rc, PH_E_TOOBIG, "%s", t->past_what);
		ph_kvlist_free(&kv);
	}
	memset(big, ' ', sizeof(big));
	memcpy(big, "<xml><a>1</a>", 13);
	memcpy(big + sizeof(big) - 7, "</xml>", 7);
	is_int(xrefused(big), PH_E_TOOBIG, "xml: 70 KB document refused");
	small = lim;
	small.max_value = 8;
	rc = xparse("<xml><a>1234<![CDATA[56789]]></a></xml>", "xml", &small,
	    &kv);
	is_int(rc, PH_E_TOOBIG, "xml: long value over two nodes refused");
	ph_kvlist_free(&kv);

	/* Deep nesting stops inside libxml2's own limits. */
	{
		struct ph_buf deep;

		ph_buf_init(&deep, 60000);
		ph_buf_puts(&deep, "<xml>");
		for (i = 0; i < 5000; i++)
			ph_buf_puts(&deep, "<a>");
		is_int(xrefused(deep.data), PH_E_MALFORMED,
		    "xml: deep nesting refused");
		ph_buf_free(&deep);
	}

	/* Writing, and reading back what was written. */
	ph_kvlist_init(&kv, 8);
	ph_kvlist_add(&kv, "return_code", 11, "SUCCESS", 7, NULL);
	ph_kvlist_add(&kv, "msg", 3, "a<b>&c", 6, NULL);
	ph_buf_init(&b, 4096);
	is_int(ph_xml_write_flat("xml", &kv, &b), PH_OK, "xml: write");
	is_str(b.data, "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
	    "<msg><![CDATA[a<b>&c]]></msg></xml>", "xml: written bytes");
	ph_kvlist_free(&kv);
	rc = ph_xml_parse_flat((const unsigned char *)b.data, b.len, "xml",
	    &lim, &kv, NULL);
	ok(rc == PH_OK && strcmp(ph_kvlist_get(&kv, "msg"), "a<b>&c") == 0,
	    "xml: written document reads back");
	ph_kvlist_free(&kv);
	ph_buf_free(&b);

	ph_kvlist_init(&kv, 8);
	ph_kvlist_add(&kv, "a", 1, "x]]>y", 5, NULL);
	ph_buf_init(&b, 4096);
	is_int(ph_xml_write_flat("xml", &kv, &b), PH_E_FIELD,
	    "xml: ]]> in a value refused on write");
	ph_buf_free(&b);
	ph_kvlist_free(&kv);
}

/* ---- money, currency, time, tokens ---------------------------------------- */

static void
test_money(void)
{
	static const struct { const char *s; int64_t want; } good[] = {
		{ "0", 0 }, { "1", 1 }, { "100", 100 },
		{ "999999999999", 999999999999LL },
		{ "1000000000000000", PH_AMOUNT_MAX },
	};
	static const char *const bad[] = {
		"01", "00", "-1", "+1", "1.5", " 1", "1 ", "", "1e3",
		"99999999999999999999", "9223372036854775808",
		"1000000000000001", "0x10", "\xef\xbc\x91",
	};
	static const struct { const char *s; int scale; int64_t want; } dgood[] = {
		{ "0.01", 2, 1 }, { "12.3", 2, 1230 }, { "5", 2, 500 },
		{ "0", 2, 0 }, { "0.00", 2, 0 }, { "12.34", 2, 1234 },
		{ "10000000000000.00", 2, PH_AMOUNT_MAX }, { "7", 0, 7 },
		{ "1.5", 1, 15 },
	};
	static const struct { const char *s; int scale; } dbad[] = {
		{ "1.234", 2 }, { "1.", 2 }, { ".5", 2 }, { "-1.00", 2 },
		{ "1e3", 2 }, { "+1", 2 }, { " 1", 2 }, { "01.00", 2 },
		{ "00.5", 2 }, { "", 2 }, { "1.2.3", 2 }, { "1,00", 2 },
		{ "10000000000000.01", 2 }, { "99999999999999999999.99", 2 },
		{ "5.0", 0 }, { "1.00 ", 2 },
	};
	int64_t v;
	size_t i;
	char name[128];

	for (i = 0; i < N(good); i++) {
		v = -1;
		snprintf(name, sizeof(name), "minor \"%s\"", good[i].s);
		ok(ph_money_parse_minor(good[i].s, strlen(good[i].s), &v) ==
		    PH_OK && v == good[i].want, "%s", name);
	}
	for (i = 0; i < N(bad); i++)
		ok(ph_money_parse_minor(bad[i], strlen(bad[i]), &v) != PH_OK,
		    "minor \"%s\" refused", bad[i]);
	ok(ph_money_parse_minor("12", 1, &v) == PH_OK && v == 1,
	    "minor reads only len bytes");

	for (i = 0; i < N(dgood); i++) {
		v = -1;
		ok(ph_money_parse_decimal(dgood[i].s, strlen(dgood[i].s),
		    dgood[i].scale, &v) == PH_OK && v == dgood[i].want,
		    "decimal \"%s\" scale %d", dgood[i].s, dgood[i].scale);
	}
	for (i = 0; i < N(dbad); i++)
		ok(ph_money_parse_decimal(dbad[i].s, strlen(dbad[i].s),
		    dbad[i].scale, &v) != PH_OK, "decimal \"%s\" refused",
		    dbad[i].s);

	ok(ph_currency_valid("CNY"), "currency CNY");
	ok(ph_currency_valid("USD"), "currency USD");
	ok(!ph_currency_valid("cny"), "currency lower case refused");
	ok(!ph_currency_valid("CN"), "currency short refused");
	ok(!ph_currency_valid("CNYX"), "currency long refused");
	ok(!ph_currency_valid("C1Y"), "currency digit refused");
	ok(!ph_currency_valid(""), "currency empty refused");
	ok(!ph_currency_valid(NULL), "currency NULL refused");
}

static void
test_time(void)
{
	static const char *const bad[] = {
		"20141330133525", "20140030133525", "20141000133525",
		"20141032133525", "20141030243525", "20141030136025",
		"20141030133560", "2014103013352", "201410301335250",
		"2014103013352a", "", "-2014103013352", "20140431000000",
		"20150229000000", "21000229000000", "19691231235959",
		"2014-10-30 13:35", " 20141030133525",
	};
	int64_t t;
	size_t i;

	t = 0;
	ok(ph_time_parse_compact("20141030133525", 28800, &t) == PH_OK &&
	    t == 1414647325, "time: 20141030133525 at +8");
	ok(ph_time_parse_compact("20141030133525", 0, &t) == PH_OK &&
	    t == 1414647325 + 28800, "time: the same at UTC");
	ok(ph_time_parse_compact("19700101000000", 0, &t) == PH_OK && t == 0,
	    "time: the epoch");
	ok(ph_time_parse_compact("20000229000000", 0, &t) == PH_OK &&
	    t == 951782400, "time: Feb 29 2000 (divisible by 400)");
	ok(ph_time_parse_compact("20160229120000", 0, &t) == PH_OK &&
	    t == 1456747200, "time: Feb 29 2016 (divisible by 4)");
	ok(ph_time_parse_compact("99991231235959", 0, &t) == PH_OK &&
	    t == 253402300799LL, "time: last second of 9999");
	ok(ph_time_parse_compact("20141231235959", 28800, &t) == PH_OK &&
	    t == 1420041599, "time: new year's eve at +8");
	for (i = 0; i < N(bad); i++)
		ok(ph_time_parse_compact(bad[i], 28800, &t) != PH_OK,
		    "time \"%s\" refused", bad[i]);
	ok(ph_time_parse_compact(NULL, 0, &t) != PH_OK, "time NULL refused");
}

static void
test_tokens(void)
{
	char dst[8];
	struct ph_diag d;

	ok(ph_token_valid("abcXYZ09", 8, 8, NULL), "token: alnum");
	ok(!ph_token_valid("abcXYZ09", 8, 7, NULL), "token: past max");
	ok(!ph_token_valid("", 0, 8, NULL), "token: empty");
	ok(!ph_token_valid("a_b", 3, 8, NULL), "token: extra not allowed");
	ok(ph_token_valid("a_b|*", 5, 8, "_-|*"), "token: extra allowed");
	ok(!ph_token_valid("a\0b", 3, 8, "_"), "token: NUL refused");
	ok(!ph_token_valid("a b", 3, 8, "_"), "token: space refused");
	ok(!ph_token_valid("\xef\xbc\xa1", 3, 8, "_"),
	    "token: full-width letter refused");

	is_int(ph_copy_token(dst, sizeof(dst), "abc_1", "_", "f", &d), PH_OK,
	    "copy_token");
	is_str(dst, "abc_1", "copy_token content");
	is_int(ph_copy_token(dst, sizeof(dst), "12345678", NULL, "f", &d),
	    PH_E_FIELD, "copy_token: does not fit");
	is_str(dst, "", "copy_token: nothing left behind");
	is_int(ph_copy_token(dst, sizeof(dst), "1234567", NULL, "f", &d),
	    PH_OK, "copy_token: exactly fits");
	is_int(ph_copy_token(dst, sizeof(dst), "a-b", NULL, "f", &d),
	    PH_E_FIELD, "copy_token: invalid");
	is_int(ph_copy_token(dst, sizeof(dst), NULL, NULL, "f", &d),
	    PH_E_FIELD, "copy_token: missing");

	{
		struct ph_order_ref o;
		struct ph_event ev;

		memset(&o, 0, sizeof(o));
		memset(&ev, 0, sizeof(ev));
		o.order_id = "A-1|2";
		o.amount = 1234;
		o.currency = "CNY";
		is_int(ph_event_from_order(&ev, &o, "-|", &d), PH_OK,
		    "event_from_order");
		ok(strcmp(ev.order_id, "A-1|2") == 0 && ev.amount == 1234 &&
		    strcmp(ev.currency, "CNY") == 0, "event_from_order: id, "
		    "amount, currency");
		is_int(ph_event_from_order(&ev, &o, NULL, &d), PH_E_FIELD,
		    "event_from_order: an id with characters not allowed");
		o.order_id = "A1";
		o.currency = "cny";
		is_int(ph_event_from_order(&ev, &o, NULL, &d), PH_E_FIELD,
		    "event_from_order: a currency that is not ISO 4217");
		o.currency = NULL;
		is_int(ph_event_from_order(&ev, &o, NULL, &d), PH_E_FIELD,
		    "event_from_order: no currency");
	}

	{
		struct ph_event ev;
		char part[PH_DEDUP_MAX + 1];

		memset(&ev, 0, sizeof(ev));
		is_int(ph_dedup_key(&ev, &d, "up", "q1", "01", "",
		    (char *)NULL), PH_OK, "dedup_key: parts");
		is_str(ev.dedup_key, "up:q1:01:", "dedup_key: joined with ':', "
		    "an empty part kept");
		is_int(ph_dedup_key(&ev, &d, "pay", (char *)NULL), PH_OK,
		    "dedup_key: one part");
		is_str(ev.dedup_key, "pay", "dedup_key: no ':' after the last");
		/* "pay:" and a part that fills the key to its last byte */
		memset(part, 'x', PH_DEDUP_MAX - 4);
		part[PH_DEDUP_MAX - 4] = '\0';
		ok(ph_dedup_key(&ev, &d, "pay", part, (char *)NULL) == PH_OK &&
		    strlen(ev.dedup_key) == PH_DEDUP_MAX, "dedup_key: exactly "
		    "%d bytes fits", PH_DEDUP_MAX);
		part[PH_DEDUP_MAX - 4] = 'x';
		part[PH_DEDUP_MAX - 3] = '\0';
		ok(ph_dedup_key(&ev, &d, "pay", part, (char *)NULL) ==
		    PH_E_FIELD && ev.dedup_key[0] == '\0' &&
		    strstr(d.msg, "dedup key too long") != NULL, "dedup_key: "
		    "one byte more is refused, and no key is left");
	}
}

/* ---- base64, constant-time compare ----------------------------------------- */

static void
test_base64(void)
{
	static const char *const bad[] = {
		"Zm9vYg=", "Zm9v Yg==", "Zm9vYg=a", "Zm=vYg==", "Zm9vYh==",
		"Zm9vYmE+Z===", "====", "Zm9-", "Zm9_", "Zm9vYg==Zm9v",
		"Zm9vYmF=", "Z", "Zm9vYmFy ", "Zm9v\nYmFy",
	};
	unsigned char in[100], out[200];
	struct ph_buf b;
	size_t n, len, i;
	int all = 1;

	ph_buf_init(&b, 64);
	ph_base64_encode((const unsigned char *)"foobar", 6, &b);
	is_str(b.data, "Zm9vYmFy", "base64: encode foobar");
	ph_buf_free(&b);
	ok(ph_base64_decode("Zm9vYg==", 8, out, sizeof(out), &n) == PH_OK &&
	    n == 4 && memcmp(out, "foob", 4) == 0, "base64: decode two pads");
	ok(ph_base64_decode("Zm9vYmE=", 8, out, sizeof(out), &n) == PH_OK &&
	    n == 5 && memcmp(out, "fooba", 5) == 0, "base64: decode one pad");
	ok(ph_base64_decode("", 0, out, sizeof(out), &n) == PH_OK && n == 0,
	    "base64: empty");
	is_int(ph_base64_decode("Zm9vYmFy", 8, out, 5, &n), PH_E_TOOBIG,
	    "base64: out_max enforced");
	ok(ph_base64_decode("Zm9vYmE=", 8, out, 5, &n) == PH_OK && n == 5,
	    "base64: exactly out_max");
	for (i = 0; i < N(bad); i++)
		ok(ph_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out),
		    &n) != PH_OK, "base64: bad input %zu refused", i);

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (len = 0; len <= sizeof(in); len++) {
		ph_buf_init(&b, 1024);
		if (ph_base64_encode(in, len, &b) != PH_OK ||
		    ph_base64_decode(b.data, b.len, out, sizeof(out), &n) !=
		    PH_OK || n != len || memcmp(in, out, len) != 0)
			all = 0;
		ph_buf_free(&b);
	}
	ok(all, "base64: round trip of 0..100 bytes");
	ph_buf_init(&b, 7);
	is_int(ph_base64_encode(in, 6, &b), PH_E_TOOBIG,
	    "base64: encode bounded by the buffer");
	ph_buf_free(&b);
}

static void
test_ct(void)
{
	char a[200], c[200];

	ok(ph_ct_equal("abc", 3, "abc", 3), "ct: equal");
	ok(!ph_ct_equal("abc", 3, "abd", 3), "ct: differ");
	ok(!ph_ct_equal("abc", 3, "abcd", 4), "ct: lengths differ");
	ok(!ph_ct_equal("abc", 3, "ABC", 3), "ct: case matters");
	ok(ph_ct_equal("", 0, "", 0), "ct: both empty");
	ok(ph_ct_equal_nocase("9a0aFF", 6, "9A0Aff", 6), "ct nocase: equal");
	ok(!ph_ct_equal_nocase("9a0a", 4, "9a0b", 4), "ct nocase: differ");
	ok(!ph_ct_equal_nocase("9a0a", 4, "9a0", 3), "ct nocase: lengths");
	ok(!ph_ct_equal_nocase("@[", 2, "`{", 2),
	    "ct nocase: only letters fold");
	memset(a, 'a', sizeof(a));
	memset(c, 'A', sizeof(c));
	ok(ph_ct_equal_nocase(a, sizeof(a), c, sizeof(c)),
	    "ct nocase: long equal");
	c[150] = 'B';
	ok(!ph_ct_equal_nocase(a, sizeof(a), c, sizeof(c)),
	    "ct nocase: long, differs late");
}

int
main(void)
{
	test_status();
	test_buf();
	test_kvlist();
	test_tv12();
	test_rsa();
	test_xml();
	test_money();
	test_time();
	test_tokens();
	test_base64();
	test_ct();
	return done_testing();
}
