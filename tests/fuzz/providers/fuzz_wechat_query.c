/*
 * WeChat Pay answers to order query and close, v2 (signed XML) and v3
 * (JSON with Wechatpay-* header signature).  The first byte picks:
 *
 *   'Q' / 'C'  v2 answer fields as name=value lines, signed here, to
 *              query_response / close_response
 *   'J'        a v3 query answer body signed here; the next byte picks
 *              the HTTP status (2: 200, 4: 404, other: 500)
 *   other      the raw bytes as a v2 answer to both, and as an unsigned
 *              v3 answer
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
fz_answer(void *ctx, int close, int status, const void *body, size_t len,
    const struct ph_header *h, size_t nh)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_order_ref order;
	struct ph_http_response in;

	fz_order(&order, "1415659990", 1, FZ_NOW - 60, "");
	th_answer(&in, status, body, len, FZ_NOW);
	in.headers = h;
	in.nheaders = nh;
	fz_check_answer(p, ctx, close && p->close_response != NULL, &order,
	    &in, FZ_EV_ORDER);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_v3_headers h;
	struct ph_buf body;
	int status;

	if (size == 0)
		return 0;
	switch (data[0]) {
	case 'Q':
	case 'C':
		if (fz_v2_body(data + 1, size - 1, 0, &body))
			fz_answer(fz_md5, data[0] == 'C', 200, body.data,
			    body.len, NULL, 0);
		ph_buf_free(&body);
		break;
	case 'J':
		if (size < 2)
			break;
		status = data[1] == '2' ? 200 : data[1] == '4' ? 404 : 500;
		fz_v3_headers(&h, data + 2, size - 2);
		fz_answer(fz_v3, 0, status, data + 2, size - 2, h.h, 4);
		break;
	default:
		fz_answer(fz_md5, 0, 200, data, size, NULL, 0);
		fz_answer(fz_md5, 1, 200, data, size, NULL, 0);
		fz_answer(fz_v3, 0, 200, data, size, NULL, 0);
		break;
	}
	return 0;
}
