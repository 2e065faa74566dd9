/*
 * Aggregator (Ping++-style) webhooks through the plugin's table, on an
 * HMAC profile.  A first byte 'S' makes the rest the body, signed here
 * with the profile's fixed test secret ("t=<now>,v1=<hex>" over
 * "<t>.<body>"); 'Q' makes the rest a charge query answer (HTTP 200);
 * 'B' a statement, fed line by line;
 * anything else is "<signature header>\n<body>", raw.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../providers/aggregator/aggregator_test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "../fuzz.h"
#include "../../unit/lib/helpers.h"
#include "fzbill.h"

#define FZ_SECRET "fuzz-webhook-secret-0123456789abcdef"
#define FZ_NOW 1764500000

static void *fz_ctx;

void
fz_init(void)
{
	static const struct fz_setting settings[] = {
		{ "signature", "hmac" },
		{ "app_id", "app_fuzz" },
		{ "webhook_secret_file", FZ_SECRET },
		{ "api_key_file", "sk_test_fuzz" },
		{ NULL, NULL },
	};

	fz_ctx = fz_profile(payhook_provider(), "aggfuzz", settings);
}

void
fz_fini(void)
{
	fz_ctx = NULL;		/* fz_profile() owns it and frees it */
}

static void
fz_run(const char *sig, const void *body, size_t len)
{
	struct ph_header h[2] = {
		{ "X-Signature", sig },
		{ "Content-Type", "application/json" },
	};
	struct ph_request req;
	struct ph_diag diag;

	th_post(&req, "application/json", body, len, FZ_NOW);
	req.headers = h;
	req.nheaders = 2;
	fz_check_notify(payhook_provider(), fz_ctx, &req,
	    FZ_EV_ORDER | FZ_EV_DEDUP, &diag);
	fz_check_hint(payhook_provider(), fz_ctx, &req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char mac[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1], sig[128];
	struct ph_buf msg;
	const uint8_t *rest;
	size_t head, n;
	char *h;

	if (size > 0 && data[0] == 'S') {
		ph_buf_init(&msg, size + 32);
		ph_buf_printf(&msg, "%d.", FZ_NOW);
		ph_buf_append(&msg, data + 1, size - 1);
		ph_hmac_sha256(FZ_SECRET, strlen(FZ_SECRET), msg.data, msg.len,
		    mac);
		ph_buf_free(&msg);
		ph_hex_lower(mac, sizeof(mac), hex);
		snprintf(sig, sizeof(sig), "t=%d,v1=%s", FZ_NOW, hex);
		fz_run(sig, data + 1, size - 1);
		return 0;
	}
	if (size > 0 && data[0] == 'B') {
		fz_bill(payhook_provider(), fz_ctx, data + 1, size - 1);
		return 0;
	}
	if (size > 0 && data[0] == 'Q') {
		fz_check_query(payhook_provider(), fz_ctx, data + 1, size - 1,
		    FZ_NOW, 0, 0);
		return 0;
	}
	rest = fz_split(data, size, '\n', &head, &n);
	if ((h = fz_strndup(data, head)) == NULL)
		return 0;
	fz_run(h, rest, n);
	free(h);
	return 0;
}
