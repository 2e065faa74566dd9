/*
 * UnionPay statements (the CSV of ACP field names the plugin documents)
 * through the plugin's streamed statement parser.
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
#include "fzbill.h"
#include "upsign.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_bill(payhook_provider(), fz_ctx, data, size);
	return 0;
}
