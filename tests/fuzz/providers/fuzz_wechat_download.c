/*
 * WeChat Pay statement download (statement_response, and the
 * statement_request of the call a tradebill answer asks for).  The first
 * byte picks:
 *
 *   'T'    a v3 tradebill answer body signed here; the next byte picks
 *          the HTTP status (2: 200, 4: 400, other: 500); when it names
 *          a file, the file's request is built and the rest of the input
 *          answers it
 *   'F'    the rest as the v3 file, its SHA1 given by the tradebill
 *   other  the raw bytes as a v2 downloadbill answer, and as an unsigned
 *          v3 tradebill answer
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../../../providers/wechat/wechat_test.h"

#include "../fuzz.h"
#include "wxsign.h"

#define FZ_DATE	"2025-11-30"
#define FZ_URL	"https://api.mch.weixin.qq.com/v3/billdownload/file?token=fz"


/* The answer to call step of ref; what it gives must hold. */
static int
fz_answer(void *ctx, const struct ph_download_ref *ref, int status,
    const void *body, size_t len, const struct ph_header *h, size_t nh,
    struct ph_download *dl)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_http_response in;
	struct ph_diag diag;
	int rc;

	th_answer(&in, status, body, len, FZ_NOW);
	in.headers = h;
	in.nheaders = nh;
	memset(&diag, 0, sizeof(diag));
	rc = p->statement_response(ctx, ref, &in, dl, &diag);
	fz_check_diag(&diag);
	if (rc != PH_OK)
		return rc;
	if ((dl->kind != PH_DL_NEXT && dl->kind != PH_DL_STATEMENT &&
	    dl->kind != PH_DL_NONE) ||
	    strnlen(dl->next, sizeof(dl->next)) == sizeof(dl->next) ||
	    (dl->kind == PH_DL_STATEMENT && (dl->offset > len ||
	    dl->len > len - dl->offset)))
		abort();
	return rc;
}

/* The file's request for next, then rest as its answer. */
static void
fz_file(const char *next, const uint8_t *rest, size_t n)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_download_ref ref = { FZ_DATE, 1, next };
	struct ph_http_request *out;
	struct ph_call_ctx cc;
	struct ph_download dl;
	struct ph_diag diag;

	if ((out = malloc(sizeof(*out))) == NULL)
		abort();
	memset(&cc, 0, sizeof(cc));
	cc.now = FZ_NOW;
	memset(&diag, 0, sizeof(diag));
	if (p->statement_request(fz_v3, &ref, &cc, out, &diag) == PH_OK &&
	    (strnlen(out->path, sizeof(out->path)) == sizeof(out->path) ||
	    out->nheaders > PH_HTTP_HEADERS_MAX))
		abort();
	free(out);
	fz_answer(fz_v3, &ref, 200, rest, n, NULL, 0, &dl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ph_download_ref ref = { FZ_DATE, 0, "" };
	static struct ph_download dl;
	struct fz_v3_headers h;
	unsigned char md[PH_SHA1_LEN];
	char next[sizeof(FZ_URL) + 2 * PH_SHA1_LEN + 8], hex[2 * PH_SHA1_LEN + 1];
	int status;

	if (size == 0)
		return 0;
	switch (data[0]) {
	case 'T':
		if (size < 2)
			break;
		status = data[1] == '2' ? 200 : data[1] == '4' ? 400 : 500;
		fz_v3_headers(&h, data + 2, size - 2);
		if (fz_answer(fz_v3, &ref, status, data + 2, size - 2, h.h, 4,
		    &dl) == PH_OK && dl.kind == PH_DL_NEXT)
			fz_file(dl.next, data + 2, size - 2);
		break;
	case 'F':
		if (EVP_Digest(data + 1, size - 1, md, NULL, EVP_sha1(),
		    NULL) != 1)
			abort();
		ph_hex_upper(md, sizeof(md), hex);
		snprintf(next, sizeof(next), "SHA1 %s %s", hex, FZ_URL);
		fz_file(next, data + 1, size - 1);
		break;
	default:
		fz_answer(fz_md5, &ref, 200, data, size, NULL, 0, &dl);
		fz_answer(fz_v3, &ref, 200, data, size, NULL, 0, &dl);
		break;
	}
	return 0;
}
