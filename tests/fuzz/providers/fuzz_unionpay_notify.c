/*
 * UnionPay (ACP) notifications through the plugin's table.  A first byte
 * 'S' makes the rest name=value lines, signed here under a test PKI whose
 * root and middle the profile pins; anything else is a raw form body.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../providers/unionpay/unionpay_test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../fuzz.h"
#include "upsign.h"

static void *fz_ctx;

void
fz_init(void)
{
	fz_pki_make();
	fz_ctx = fz_up_profile();
}

void
fz_fini(void)
{
	fz_ctx = NULL;
	fz_pki_free();
}

static void
fz_run(const void *body, size_t len)
{
	struct ph_request req;
	struct ph_event ev;
	struct ph_diag diag;
	struct ph_response *resp;
	int rc, k;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.content_type = "application/x-www-form-urlencoded";
	req.body = body;
	req.body_len = len;
	req.now = fz_now;
	memset(&ev, 0, sizeof(ev));
	memset(&diag, 0, sizeof(diag));
	rc = payhook_provider()->parse_notify(fz_ctx, &req, &ev, &diag);
	if (strnlen(diag.msg, sizeof(diag.msg)) == sizeof(diag.msg))
		abort();
	if (rc == PH_OK && (ev.kind >= PH_EV__MAX || ev.amount < 0 ||
	    ev.amount > PH_AMOUNT_MAX || ev.dedup_key[0] == '\0' ||
	    strnlen(ev.order_id, sizeof(ev.order_id)) == sizeof(ev.order_id)))
		abort();
	if ((resp = calloc(1, sizeof(*resp))) == NULL)
		abort();
	for (k = 0; k < PH_ACK__MAX; k++) {
		payhook_provider()->ack(fz_ctx, (enum ph_ack_kind)k,
		    rc == PH_OK ? NULL : diag.msg, resp);
		if (resp->body_len > sizeof(resp->body))
			abort();
	}
	free(resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ph_buf body;

	if (size > 0 && data[0] == 'S') {
		if (fz_up_body(data + 1, size - 1, 0, &body))
			fz_run(body.data, body.len);
		ph_buf_free(&body);
	} else
		fz_run(data, size);
	return 0;
}
