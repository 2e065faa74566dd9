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

static void
fz_run(const void *body, size_t len)
{
	struct ph_request req;
	struct ph_diag diag;
	int rc;

	th_post(&req, "application/x-www-form-urlencoded", body, len, fz_now);
	rc = fz_check_notify(payhook_provider(), fz_ctx, &req,
	    FZ_EV_ORDER | FZ_EV_DEDUP, &diag);
	fz_check_acks(payhook_provider(), fz_ctx, rc, &diag);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_up_input(data, size, 0, fz_run);
	return 0;
}
