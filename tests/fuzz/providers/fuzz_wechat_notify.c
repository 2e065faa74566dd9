/*
 * WeChat Pay notifications, v2 (XML, MD5 and HMAC-SHA256) and v3 (JSON
 * envelope, RSA header signature, AES-256-GCM resource), through the
 * plugin's own table.  The first byte picks what the rest is:
 *
 *   'S' / 'H'  v2 fields as name=value lines, signed here (MD5 / HMAC)
 *   'E'        a v3 body, its headers signed here
 *   'R'        a v3 resource plaintext, encrypted and enveloped here;
 *              the next byte picks original_type (t, r, anything else)
 *   'X'        v3 headers ("Name: value" lines), NUL, body: unsigned
 *   other      a raw v2 body for both v2 profiles (signature must fail
 *              unless the fuzzer forges MD5)
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../providers/wechat/wechat_test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "../fuzz.h"
#include "wxsign.h"


static void
fz_run(void *ctx, const void *body, size_t len, const struct ph_header *h,
    size_t nh)
{
	struct ph_request req;
	struct ph_diag diag;
	int rc;

	th_post(&req, nh > 0 ? "application/json" : "text/xml", body, len,
	    FZ_NOW);
	req.headers = h;
	req.nheaders = nh;
	/* What the core relies on: a complete, bounded event. */
	rc = fz_check_notify(payhook_provider(), ctx, &req,
	    FZ_EV_ORDER | FZ_EV_DEDUP_BOUNDED | FZ_EV_DEDUP, &diag);
	fz_check_acks(payhook_provider(), ctx, rc, &diag);
}

static void
fz_resource(const uint8_t *data, size_t size)
{
	static const char nonce[] = "fuzznonce012";
	const char *otype = "transaction", *aad = "transaction";
	struct fz_v3_headers h;
	struct ph_buf ct, env;

	if (size > 0) {
		if (data[0] == 'r')
			otype = aad = "refund";
		else if (data[0] != 't')
			otype = aad = "mch_payscore";
		data++;
		size--;
	}
	ph_buf_init(&ct, 1u << 20);
	fz_v3_encrypt(data, size, nonce, aad, &ct);
	ph_buf_init(&env, 1u << 20);
	ph_buf_printf(&env, "{\"id\":\"EV-2018022511223320873\","
	    "\"create_time\":\"2015-05-20T13:29:35+08:00\","
	    "\"resource_type\":\"encrypt-resource\","
	    "\"event_type\":\"%s\",\"summary\":\"ok\","
	    "\"resource\":{\"original_type\":\"%s\","
	    "\"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"%s\","
	    "\"associated_data\":\"%s\",\"nonce\":\"%s\"}}",
	    strcmp(otype, "refund") == 0 ? "REFUND.SUCCESS" :
	    "TRANSACTION.SUCCESS", otype, ct.data != NULL ? ct.data : "",
	    aad, nonce);
	if (!env.err) {
		fz_v3_headers(&h, env.data, env.len);
		fz_run(fz_v3, env.data, env.len, h.h, 5);
	}
	ph_buf_free(&ct);
	ph_buf_free(&env);
}

static void
fz_unsigned_v3(const uint8_t *data, size_t size)
{
	struct ph_header h[16];
	char *lines[16];
	const uint8_t *body, *p, *line;
	size_t hlen, blen, n = 0, len, rest, i;
	char *colon;

	body = fz_split(data, size, 0, &hlen, &blen);
	for (p = data; hlen > 0 && n < 16; hlen = rest) {
		line = p;
		p = fz_split(p, hlen, '\n', &len, &rest);
		lines[n] = fz_strndup(line, len);
		if ((colon = strchr(lines[n], ':')) == NULL) {
			free(lines[n]);
			continue;
		}
		*colon++ = '\0';
		while (*colon == ' ')
			colon++;
		h[n].name = lines[n];
		h[n].value = colon;
		n++;
	}
	fz_run(fz_v3, body, blen, h, n);
	for (i = 0; i < n; i++)
		free(lines[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_v3_headers h;
	struct ph_buf body;

	if (size == 0)
		return 0;
	switch (data[0]) {
	case 'S':
	case 'H':
		if (fz_v2_body(data + 1, size - 1, data[0] == 'H', &body))
			fz_run(data[0] == 'H' ? fz_hmac : fz_md5, body.data,
			    body.len, NULL, 0);
		ph_buf_free(&body);
		break;
	case 'E':
		fz_v3_headers(&h, data + 1, size - 1);
		fz_run(fz_v3, data + 1, size - 1, h.h, 5);
		break;
	case 'R':
		fz_resource(data + 1, size - 1);
		break;
	case 'X':
		fz_unsigned_v3(data + 1, size - 1);
		break;
	default:
		fz_run(fz_md5, data, size, NULL, 0);
		fz_run(fz_hmac, data, size, NULL, 0);
		break;
	}
	return 0;
}
