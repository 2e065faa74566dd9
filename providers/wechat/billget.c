/*
 * Trade bills payhook downloads itself (`payhook reconcile --download`);
 * bill.c reads them.
 *
 * v2, downloadbill (下载对账单): POST /pay/downloadbill with bill_date
 * (yyyyMMdd) and bill_type ALL, signed as every v2 request, without
 * tar_type so that the bill comes as plain text.  The answer to a bill
 * is the bill itself, neither XML nor signed: what vouches for it is TLS
 * to WeChat's API host, as for every v2 answer that carries no sign.  A
 * failure is flat XML, return_code FAIL: return_msg "No Bill Exist" when
 * the merchant had no transaction that day, "Bill Creating" when the
 * bill is not ready yet, or another reason.
 *
 * v3, tradebill (申请交易账单): GET /v3/bill/tradebill?bill_date=
 * YYYY-MM-DD&bill_type=ALL, whose answer, signed as every v3 answer,
 * names the file (download_url) and its digest (hash_type SHA1,
 * hash_value); then a GET of download_url, its Authorization over the
 * URL's path and query as WeChat's SDKs sign it.  WeChat does not sign
 * the file (下载账单): the digest from the signed answer is what vouches
 * for it, so a file that does not match is a signature failure.  Between
 * the two calls the core carries "SHA1 <hex> <download_url>" (next).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "wechat_int.h"

#define WXD_DATE_LEN	10	/* YYYY-MM-DD */
#define WXD_HASH_TYPE	"SHA1"
#define WXD_HASH_HEX	(2 * PH_SHA1_LEN)
/* return_msg of a day without a bill; the table of error codes of the
 * downloadbill page writes it "NO Bill Exist", its example "No Bill
 * Exist". */
#define WXD_NO_BILL	"No Bill Exist"
#define WXD3_NO_BILL	"NO_STATEMENT_EXIST"

/* The digest and place of the file, as the signed tradebill answer gave. */
struct wxd_file {
	char hash[WXD_HASH_HEX + 1];	/* hex, as WeChat wrote it */
	const char *url;		/* download_url */
	const char *target;		/* its path and query */
	int plain_http;			/* url is http:// */
};

/*
 * The statement's day, "YYYY-MM-DD", and the same as yyyyMMdd for v2:
 * anything else is refused before a byte of a request is written.
 */
static int
wxd_date(const char *date, char compact[9], struct ph_diag *diag)
{
	char text[WXD_DATE_LEN + 8];
	size_t i;
	int m, d;

	if (date == NULL || strlen(date) != WXD_DATE_LEN ||
	    date[4] != '-' || date[7] != '-')
		goto bad;
	for (i = 0; i < WXD_DATE_LEN; i++)
		if (i != 4 && i != 7 && (date[i] < '0' || date[i] > '9'))
			goto bad;
	m = (date[5] - '0') * 10 + (date[6] - '0');
	d = (date[8] - '0') * 10 + (date[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > 31)
		goto bad;
	memcpy(compact, date, 4);
	memcpy(compact + 4, date + 5, 2);
	memcpy(compact + 6, date + 8, 2);
	compact[8] = '\0';
	return PH_OK;
bad:
	ph_diag_text(text, sizeof(text), date, WXD_DATE_LEN + 4);
	return ph_fail(diag, PH_E_FIELD, "statement date %s is not "
	    "YYYY-MM-DD", text);
}

/*
 * A download_url before it becomes a request: a URL ph_url_split()
 * takes, with a path.  f->target is its path and query, what the
 * Authorization signs.
 */
static int
wxd_url(const char *url, struct wxd_file *f, struct ph_diag *diag)
{
	struct ph_url u;
	int rc;

	if ((rc = ph_url_split(url, strlen(url), "download_url", &u,
	    diag)) != PH_OK)
		return rc;
	if (u.target[0] != '/')
		return ph_fail(diag, PH_E_FIELD, "download_url names no path");
	f->url = url;
	f->target = u.target;
	f->plain_http = !u.https;
	return PH_OK;
}

/* A hash_value: exactly 40 hexadecimal digits. */
static int
wxd_hex(const char *s, size_t len)
{
	return len == WXD_HASH_HEX &&
	    strspn(s, "0123456789ABCDEFabcdef") == WXD_HASH_HEX;
}

/* The next text of the tradebill answer, read back for the file. */
static int
wxd_next(const char *next, struct wxd_file *f, struct ph_diag *diag)
{
	static const char tag[] = WXD_HASH_TYPE " ";

	memset(f, 0, sizeof(*f));
	if (next == NULL || strncmp(next, tag, sizeof(tag) - 1) != 0 ||
	    strlen(next) < sizeof(tag) - 1 + WXD_HASH_HEX + 1 ||
	    !wxd_hex(next + sizeof(tag) - 1, WXD_HASH_HEX) ||
	    next[sizeof(tag) - 1 + WXD_HASH_HEX] != ' ')
		return ph_fail(diag, PH_E_INTERNAL, "statement download: the "
		    "second call is not given the first one's next");
	memcpy(f->hash, next + sizeof(tag) - 1, WXD_HASH_HEX);
	return wxd_url(next + sizeof(tag) + WXD_HASH_HEX, f, diag);
}

/* ---- v2: downloadbill -------------------------------------------------- */

static int
wxd_request_v2(const struct wx_ctx *ctx, const char *day,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	struct ph_kvlist kv;
	int rc;

	ph_kvlist_init(&kv, 8);
	if ((rc = wx_request_head(ctx, cc, &kv, diag)) == PH_OK &&
	    (rc = wx_kv_add(&kv, "bill_date", day, diag)) == PH_OK &&
	    (rc = wx_kv_add(&kv, "bill_type", "ALL", diag)) == PH_OK &&
	    (rc = wx_request_sign_type(ctx, &kv, diag)) == PH_OK)
		rc = wx_request_xml(ctx, WX_BILL_PATH, &kv, out, diag);
	ph_kvlist_free(&kv);
	return rc;
}

/*
 * The bill, or an XML failure: a body whose first non-blank bytes are
 * "<xml>" is one, since a bill starts with its header of column names
 * (after a byte order mark, maybe).
 */
static int
wxd_response_v2(const struct ph_http_response *in, struct ph_download *dl,
    struct ph_diag *diag)
{
	char msg[WX_TEXT_MAX + 1], code[WX_TEXT_MAX + 1];
	struct ph_kvlist kv;
	const char *v;
	size_t i;
	int rc, ok;

	if (in->status != 200)
		return ph_fail(diag, PH_E_PROVIDER, "downloadbill: HTTP status "
		    "%d", in->status);
	for (i = 0; i < in->body_len && (in->body[i] == ' ' ||
	    in->body[i] == '\t' || in->body[i] == '\r' || in->body[i] == '\n');
	    i++)
		;
	if (i == in->body_len)
		return ph_fail(diag, PH_E_PROVIDER, "downloadbill: an empty "
		    "answer");
	if (in->body_len - i < 5 || memcmp(in->body + i, "<xml>", 5) != 0) {
		dl->kind = PH_DL_STATEMENT;
		dl->offset = 0;
		dl->len = in->body_len;
		dl->packing = PH_PACK_NONE;
		return PH_OK;
	}
	if ((rc = ph_xml_parse_flat(in->body, in->body_len, "xml",
	    &wx_answer_limits, &kv, diag)) != PH_OK)
		return rc;
	if ((rc = wx_result(&kv, "return_code", &ok, diag)) != PH_OK)
		goto out;
	v = wx_get(&kv, "return_msg");
	if (!ok && v != NULL && strcasecmp(v, WXD_NO_BILL) == 0) {
		dl->kind = PH_DL_NONE;
		goto out;
	}
	ph_diag_text(msg, sizeof(msg), v, WX_TEXT_MAX);
	ph_diag_text(code, sizeof(code), wx_get(&kv, "error_code"),
	    WX_TEXT_MAX);
	rc = ph_fail(diag, PH_E_PROVIDER, "downloadbill: %s, error_code %s: "
	    "%s", ok ? "return_code SUCCESS but no bill" : "return_code FAIL",
	    code, msg);
out:
	ph_kvlist_free(&kv);
	return rc;
}

/* ---- v3: tradebill, then the file --------------------------------------- */

/*
 * Call 0 asks where the bill is; call 1 fetches it.  A plain http
 * download_url, which only a test's simulator names (WeChat's are
 * https), is asked of api_base by its path and query: an answer can
 * neither send payhook to a host the profile did not choose nor take it
 * down to plain http.
 */
static int
wxd_request_v3(const struct wx_ctx *ctx, const struct ph_download_ref *ref,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	char path[sizeof(WX3_BILL_PATH) + 64];
	struct wxd_file f;
	int rc;

	if (!wx3_can_sign(ctx, "a statement download", diag))
		return PH_E_CONFIG;
	if (ref->step == 0) {
		snprintf(path, sizeof(path), "%s?bill_date=%s&bill_type=ALL",
		    WX3_BILL_PATH, ref->date);
		return wx3_request_signed(ctx, cc, "GET", path, out, diag);
	}
	if ((rc = wxd_next(ref->next, &f, diag)) != PH_OK)
		return rc;
	return wx3_request_url(ctx, cc, "GET", f.plain_http ? f.target :
	    f.url, f.target, out, diag);
}

/*
 * The tradebill answer: 200 names the file; 400 NO_STATEMENT_EXIST is a
 * day without a bill, believed only signed, as every answer of WeChat
 * Pay is; any other error is "ask later" (BILL_CREATING, SYSTEM_ERROR,
 * 5xx).
 */
static int
wxd_tradebill(const struct wx_ctx *ctx, const struct ph_http_response *in,
    struct ph_download *dl, struct ph_diag *diag)
{
	char code[WX3_TEXT_MAX + 1], text[WX3_TEXT_MAX + 1];
	const char *c = NULL, *type, *hash, *url;
	struct wxd_file f;
	json_t *doc = NULL;
	size_t hlen;
	int rc;

	if (in->status != 200) {
		wx3_error_of(in, &doc, &c, code, text);
		if (in->status == 400 && c != NULL &&
		    strcmp(c, WXD3_NO_BILL) == 0) {
			if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders,
			    in->body, in->body_len, in->now, "tradebill answer",
			    diag)) == PH_OK)
				dl->kind = PH_DL_NONE;
			goto out;
		}
		rc = ph_fail(diag, PH_E_PROVIDER, "tradebill: HTTP %d, code "
		    "%s: %s", in->status, code, text);
		goto out;
	}
	if ((rc = wx3_verify(ctx->v3, in->headers, in->nheaders, in->body,
	    in->body_len, in->now, "tradebill answer", diag)) != PH_OK)
		goto out;
	if ((rc = ph_json_parse(in->body, in->body_len, &wx3_envelope_limits,
	    &doc, diag)) != PH_OK ||
	    (rc = ph_json_get_string(doc, "hash_type", 16, &type, NULL,
	    diag)) != PH_OK ||
	    (rc = ph_json_get_string(doc, "hash_value", WXD_HASH_HEX, &hash,
	    &hlen, diag)) != PH_OK ||
	    (rc = ph_json_get_string(doc, "download_url", 2 * PH_HTTP_PATH_MAX,
	    &url, NULL, diag)) != PH_OK)
		goto out;
	if (strcmp(type, WXD_HASH_TYPE) != 0) {
		ph_diag_text(code, sizeof(code), type, 16);
		rc = ph_fail(diag, PH_E_UNSUPPORTED, "tradebill: hash_type %s "
		    "is not SHA1", code);
		goto out;
	}
	if (!wxd_hex(hash, hlen)) {
		rc = ph_fail(diag, PH_E_FIELD, "tradebill: hash_value is not "
		    "40 hexadecimal digits");
		goto out;
	}
	if ((rc = wxd_url(url, &f, diag)) != PH_OK)
		goto out;
	if (snprintf(dl->next, sizeof(dl->next), "%s %s %s", WXD_HASH_TYPE,
	    hash, url) >= (int)sizeof(dl->next)) {
		rc = ph_fail(diag, PH_E_TOOBIG, "tradebill: download_url does "
		    "not fit %d bytes", PH_DOWNLOAD_NEXT_MAX);
		goto out;
	}
	dl->kind = PH_DL_NEXT;
out:
	json_decref(doc);
	return rc;
}

/* The file: unsigned, its SHA1 must be the signed answer's hash_value. */
static int
wxd_file(const struct ph_download_ref *ref, const struct ph_http_response *in,
    struct ph_download *dl, struct ph_diag *diag)
{
	char code[WX3_TEXT_MAX + 1], text[WX3_TEXT_MAX + 1];
	char got[WXD_HASH_HEX + 1];
	unsigned char md[PH_SHA1_LEN];
	struct wxd_file f;
	const char *c;
	json_t *doc;
	int rc;

	if ((rc = wxd_next(ref->next, &f, diag)) != PH_OK)
		return rc;
	if (in->status != 200) {
		wx3_error_of(in, &doc, &c, code, text);
		json_decref(doc);
		return ph_fail(diag, PH_E_PROVIDER, "billdownload: HTTP %d, "
		    "code %s: %s", in->status, code, text);
	}
	if ((rc = ph_sha1(in->body != NULL ? (const void *)in->body : "",
	    in->body_len, md)) != PH_OK)
		return ph_fail(diag, rc, "billdownload: cannot compute SHA1");
	ph_hex_lower(md, PH_SHA1_LEN, got);
	if (!ph_ct_equal_nocase(got, WXD_HASH_HEX, f.hash, WXD_HASH_HEX))
		return ph_fail(diag, PH_E_SIGNATURE, "billdownload: the file's "
		    "SHA1 %s is not %s, the hash_value of the signed tradebill "
		    "answer: refused", got, f.hash);
	dl->kind = PH_DL_STATEMENT;
	dl->offset = 0;
	dl->len = in->body_len;
	dl->packing = PH_PACK_NONE;
	return PH_OK;
}

/* ---- The table's entries --------------------------------------------------- */

/* The calls of a version: v2 makes one, v3 two. */
static int
wxd_step_ok(const struct wx_ctx *ctx, const struct ph_download_ref *ref,
    struct ph_diag *diag)
{
	unsigned last = ctx->api_version == 3 ? 1 : 0;

	if (ref->step > last)
		return ph_fail(diag, PH_E_INTERNAL, "statement download: API "
		    "v%d makes %u call(s), not a call %u", ctx->api_version,
		    last + 1, ref->step);
	return PH_OK;
}

PH_STATEMENT_REQUEST(wx_statement_request)
{
	const struct wx_ctx *ctx = p;
	char day[9];
	int rc;

	if (ctx == NULL || ref == NULL || cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(out, 0, sizeof(*out));
	if ((rc = wxd_date(ref->date, day, diag)) != PH_OK ||
	    (rc = wxd_step_ok(ctx, ref, diag)) != PH_OK)
		return rc;
	rc = ctx->api_version == 3 ? wxd_request_v3(ctx, ref, cc, out, diag) :
	    wxd_request_v2(ctx, day, cc, out, diag);
	return ph_clear_on_fail(rc, out, sizeof(*out));
}

PH_STATEMENT_RESPONSE(wx_statement_response)
{
	const struct wx_ctx *ctx = p;
	char day[9];
	int rc;

	if (ctx == NULL || ref == NULL || in == NULL || dl == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "wechat: NULL argument");
	memset(dl, 0, sizeof(*dl));
	if ((rc = wxd_date(ref->date, day, diag)) != PH_OK ||
	    (rc = wxd_step_ok(ctx, ref, diag)) != PH_OK)
		return rc;
	if (ctx->api_version != 3)
		rc = wxd_response_v2(in, dl, diag);
	else if (ref->step == 0)
		rc = wxd_tradebill(ctx, in, dl, diag);
	else
		rc = wxd_file(ref, in, dl, diag);
	return ph_clear_on_fail(rc, dl, sizeof(*dl));
}
