/*
 * WeChat Pay trade bills (the text with back-quoted fields and summary
 * lines) through the plugin's streamed statement parser.
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
#include "fzbill.h"

static void *fz_ctx;

void
fz_init(void)
{
	static const struct fz_setting settings[] = {
		{ "appid", "wx2421b1c4370ec43b" },
		{ "mch_id", "10000100" },
		{ "api_key_file", "192006250b4c09247ec02edce69f6a2d" },
		{ "sign_type", "MD5" },
		{ NULL, NULL },
	};

	fz_ctx = fz_profile(payhook_provider(), "wxbill", settings);
}

void
fz_fini(void)
{
	fz_ctx = NULL;		/* fz_profile() owns it */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_bill(payhook_provider(), fz_ctx, data, size);
	return 0;
}
