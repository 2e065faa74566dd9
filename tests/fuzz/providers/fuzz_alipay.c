/*
 * The Alipay plugin's parsers.  The first byte picks one:
 *   'N'  the rest is a raw notification form body;
 *   'S'  the rest is a form body signed here (RSA2 over the sorted fields
 *        but sign and sign_type) with a key the profile trusts, so the
 *        fuzzer reaches past verification;
 *   'B'  the rest is a bill, fed line by line to statement_line, then the
 *        end-of-statement call;
 *   'Q'  the rest is a query answer body (HTTP 200);
 *   'D'  the rest is the response object of a bill link answer, signed
 *        here so that the fuzzer reaches the link's checks, then the body
 *        of the bill file's answer.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../providers/alipay/alipay_test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <openssl/pem.h>

#include "../fuzz.h"
#include "../../unit/lib/helpers.h"
#include "fzbill.h"

#define FZ_NOW 1764500000

static EVP_PKEY *fz_key;
static char *fz_pub, *fz_priv;
static void *fz_ctx;

void
fz_init(void)
{
	struct fz_setting settings[] = {
		{ "app_id", "2021000000000001" },
		{ "seller_id", "2088000000000001" },
		{ "alipay_public_key_file", NULL },
		{ "app_private_key_file", NULL },
		{ NULL, NULL },
	};

	if ((fz_key = EVP_RSA_gen(2048)) == NULL)
		abort();
	fz_pub = th_pem_key(fz_key, 0);
	fz_priv = th_pem_key(fz_key, 1);
	settings[2].value = fz_pub;
	settings[3].value = fz_priv;
	fz_ctx = fz_profile(payhook_provider(), "alifuzz", settings);
}

void
fz_fini(void)
{
	fz_ctx = NULL;
	EVP_PKEY_free(fz_key);
	free(fz_pub);
	free(fz_priv);
}

static void
fz_notify(const void *body, size_t len)
{
	struct ph_request req;
	struct ph_diag diag;

	th_post(&req, "application/x-www-form-urlencoded", body, len, FZ_NOW);
	fz_check_notify(payhook_provider(), fz_ctx, &req, FZ_EV_ORDER, &diag);
	fz_check_hint(payhook_provider(), fz_ctx, &req);
}

/* Signs a form body's fields and appends sign_type and sign. */
static void
fz_signed(const uint8_t *data, size_t size)
{
	static const char *const skip[] = { "sign", "sign_type", NULL };
	static const struct ph_form_limits lim = { 65536, 256, 4096 };
	char b64[1400];
	struct ph_kvlist kv;
	struct ph_buf text, body;

	if (ph_form_parse(data, size, &lim, &kv, NULL) != PH_OK) {
		ph_kvlist_free(&kv);
		return;
	}
	ph_buf_init(&text, 1 << 20);
	ph_canonical_join(&kv, skip, 1, &text);
	th_rsa_sign(fz_key, "SHA256", text.data != NULL ? text.data : "",
	    text.len, b64);
	ph_kvlist_add(&kv, "sign_type", 9, "RSA2", 4, NULL);
	ph_kvlist_add(&kv, "sign", 4, b64, strlen(b64), NULL);
	ph_buf_init(&body, 1 << 20);
	if (ph_form_write(&kv, &body) == PH_OK && body.data != NULL)
		fz_notify(body.data, body.len);
	ph_buf_free(&body);
	ph_buf_free(&text);
	ph_kvlist_free(&kv);
}

/*
 * A link the plugin gives must make its next request, whole; a statement
 * it gives lies within the answer.
 */
static void
fz_download(const uint8_t *data, size_t size)
{
	static const char node[] =
	    "{\"alipay_data_dataservice_bill_downloadurl_query_response\":";
	struct ph_download_ref ref = { "2025-11-30", 0, "" };
	struct ph_http_request *rq;
	struct ph_http_response in;
	struct ph_download *dl;
	struct ph_call_ctx cc;
	struct ph_diag diag;
	struct ph_buf body;
	char b64[1400];
	int rc;

	if ((dl = calloc(1, sizeof(*dl))) == NULL ||
	    (rq = calloc(1, sizeof(*rq))) == NULL)
		abort();
	th_rsa_sign(fz_key, "SHA256", data, size, b64);
	ph_buf_init(&body, 1 << 20);
	ph_buf_puts(&body, node);
	ph_buf_append(&body, data, size);
	ph_buf_printf(&body, ",\"sign\":\"%s\"}", b64);
	memset(&in, 0, sizeof(in));
	in.status = 200;
	in.body = (const unsigned char *)body.data;
	in.body_len = body.len;
	in.now = FZ_NOW;
	memset(&diag, 0, sizeof(diag));
	rc = payhook_provider()->statement_response(fz_ctx, &ref, &in, dl,
	    &diag);
	if (rc == PH_OK && dl->kind == PH_DL_NEXT) {
		memset(&cc, 0, sizeof(cc));
		cc.now = FZ_NOW;
		ref.step = 1;
		ref.next = dl->next;
		/* The link itself, or the bill host's plain-http link as
		 * https (billget.c upgrades it). */
		if (payhook_provider()->statement_request(fz_ctx, &ref, &cc, rq,
		    &diag) != PH_OK || (strcmp(rq->path, dl->next) != 0 &&
		    !(strncmp(dl->next, "http://", 7) == 0 &&
		    strncmp(rq->path, "https://", 8) == 0 &&
		    strcmp(rq->path + 8, dl->next + 7) == 0)))
			abort();
	} else if (rc == PH_OK && dl->kind != PH_DL_NONE)
		abort();
	ref.step = 1;
	ref.next = "https://dwbillcenter.alipay.com/d?token=1";
	in.body = data;
	in.body_len = size;
	rc = payhook_provider()->statement_response(fz_ctx, &ref, &in, dl,
	    &diag);
	if (rc == PH_OK && (dl->kind != PH_DL_STATEMENT ||
	    dl->offset > size || dl->len > size - dl->offset))
		abort();
	ph_buf_free(&body);
	free(rq);
	free(dl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest;
	size_t len;

	if (size == 0)
		return 0;
	/* What follows the first byte, the input of the parser it picks. */
	rest = data + 1;
	len = size - 1;
	switch (data[0]) {
	case 'N':
		fz_notify(rest, len);
		break;
	case 'S':
		fz_signed(rest, len);
		break;
	case 'B':
		fz_bill_lines(payhook_provider(), fz_ctx, rest, len, 1);
		break;
	case 'Q':
		fz_check_query(payhook_provider(), fz_ctx, rest, len, FZ_NOW,
		    1, FZ_EV_ORDER);
		break;
	case 'D':
		fz_download(rest, len);
		break;
	default:
		break;
	}
	return 0;
}
