/*
 * UnionPay answers to queryTrans.do through the plugin's table.  A first
 * byte 'S' makes the rest name=value lines, signed here under the pinned
 * test PKI; anything else is a raw answer body.
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
	struct ph_order_ref order;
	struct ph_http_response in;

	fz_order(&order, "20261130153000001", 100, fz_now - 60,
	    "{\"txnTime\":\"20261130153000\"}");
	th_answer(&in, 200, body, len, fz_now);
	fz_check_answer(payhook_provider(), fz_ctx, 0, &order, &in, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_up_input(data, size, 1, fz_run);
	return 0;
}
