/*
 * The trade-detail bill, downloaded (`payhook reconcile --download`), in
 * two calls.  Step 0 asks the gateway where the day's bill is
 * (alipay.data.dataservice.bill.downloadurl.query, 查询对账单下载地址),
 * signed and verified by gateway.c as every call is.  Its verified answer
 * names a short-lived URL on Alipay's bill host whose token is the file's
 * only credential; step 1 GETs it.  The file is a zip of the detail
 * (…_业务明细.csv) and the summary (…_业务明细(汇总).csv); the core
 * unpacks the detail and hands its lines to statement_line.
 *
 * Alipay signs the answer that names the link, not the file: the file is
 * believed because its URL came from a verified answer and the core
 * fetches it over https from Alipay: api_base's host or one the table
 * names (download_hosts).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "alipay_int.h"

/* The calls of one download: the link, then the file. */
enum ali_bill_step {
	ALI_BILL_WHERE,
	ALI_BILL_FILE,
};

/* The detail's name ends so, in GBK (as Alipay names it) and in UTF-8
 * (as a zip tool flagging UTF-8 names writes it); the summary's name
 * ends in "(汇总).csv" and matches neither. */
#define ALI_BILL_DETAIL_GBK	"\xd2\xb5\xce\xf1\xc3\xf7\xcf\xb8.csv"
#define ALI_BILL_DETAIL_UTF8	"业务明细.csv"

#define ALI_ZIP_MAGIC		"PK\x03\x04"

/* "YYYY-MM-DD", a day of the calendar. */
static int
ali_bill_date_ok(const char *date)
{
	char t[20];
	int64_t at;

	if (date == NULL || strlen(date) != 10 ||
	    snprintf(t, sizeof(t), "%s 00:00:00", date) != 19)
		return 0;
	return ph_time_parse_dashed(t, 19, ALI_BEIJING, &at) == PH_OK;
}

/* A loopback host: a plain-http link can only be a test's Alipay. */
static int
ali_bill_loopback(const char *host, size_t len)
{
	static const char *const names[] = { "127.0.0.1", "localhost",
	    "[::1]", NULL };
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (strlen(names[i]) == len && memcmp(host, names[i], len) == 0)
			return 1;
	return 0;
}

/*
 * A link the bill can be fetched from, checked before it is kept and
 * again before it is sent: a URL ph_url_split() takes (printable ASCII
 * that fits a request's path, a named host, no user part that could make
 * the host read differently), over https, since its token must not
 * travel in clear.  Which hosts are allowed is the core's check
 * (api_base's and download_hosts).  Alipay's own samples give the bill
 * host's links as plain http: those are fetched over https
 * (ali_statement_request).  The plugin never sees api_base, so other
 * plain http is taken only to a loopback host: the test Alipay a profile
 * with allow_insecure_http names.
 */
static int
ali_bill_url_check(const char *url, size_t len, struct ph_diag *diag)
{
	struct ph_url u;
	int rc;

	if ((rc = ph_url_split(url, len, "bill_download_url", &u,
	    diag)) != PH_OK)
		return rc;
	if (!u.https && !ali_bill_loopback(u.host, u.host_len) &&
	    !(!u.port_given && u.host_len == strlen(ALI_BILL_HOST) &&
	    memcmp(u.host, ALI_BILL_HOST, u.host_len) == 0))
		return ph_fail(diag, PH_E_FIELD, "bill_download_url is plain "
		    "http: refused, its token would travel in clear");
	return PH_OK;
}

static int
ali_bill_where_request(const struct ali_ctx *ctx, const char *date,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag)
{
	json_t *biz;
	int rc;

	if (!ali_bill_date_ok(date))
		return ph_fail(diag, PH_E_FIELD, "bill date is not a day as "
		    "YYYY-MM-DD");
	/* bill_type trade: the 业务明细 statement.c reads. */
	if ((biz = json_object()) == NULL ||
	    ali_set_str(biz, "bill_type", "trade") != 0 ||
	    ali_set_str(biz, "bill_date", date) != 0) {
		json_decref(biz);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
	rc = ali_build(ctx, ali_bill_url.method, biz, cc->now, out, diag);
	json_decref(biz);
	return rc;
}

PH_STATEMENT_REQUEST(ali_statement_request)
{
	const struct ali_ctx *ctx = p;
	char link[PH_HTTP_PATH_MAX];
	int rc;

	link[0] = '\0';
	if (ctx == NULL || ref == NULL || cc == NULL || out == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(out, 0, sizeof(*out));
	switch (ref->step) {
	case ALI_BILL_WHERE:
		return ali_bill_where_request(ctx, ref->date, cc, out, diag);
	case ALI_BILL_FILE:
		if (ref->next == NULL)
			return ph_fail(diag, PH_E_INTERNAL, "alipay: no bill "
			    "link for the second call");
		if ((rc = ali_bill_url_check(ref->next, strlen(ref->next),
		    diag)) != PH_OK)
			return rc;
		/* The link's own token authorises it: no signature.  The
		 * bill host's link goes over https whatever it says: the
		 * token must not travel, nor the bill come, in clear. */
		if (strncmp(ref->next, "http://" ALI_BILL_HOST "/",
		    8 + strlen(ALI_BILL_HOST)) == 0 && (snprintf(link,
		    sizeof(link), "https://%s", ref->next + 7) >=
		    (int)sizeof(link)))
			return ph_fail(diag, PH_E_TOOBIG, "bill_download_url "
			    "does not fit a request as https");
		if ((rc = ph_request_set(out, "GET", link[0] != '\0' ? link :
		    ref->next, NULL, NULL)) != PH_OK) {
			memset(out, 0, sizeof(*out));
			return ph_fail(diag, rc, "cannot write the bill "
			    "request");
		}
		return PH_OK;
	default:
		return ph_fail(diag, PH_E_INTERNAL, "alipay: the bill takes "
		    "two calls, not %u", ref->step + 1);
	}
}

/*
 * The verified answer of the link query (the response sample of
 * 查询对账单下载地址, alipay.data.dataservice.bill.downloadurl.query:
 * code 10000, msg Success, bill_download_url): the link, or no bill for
 * that day (40004 isp.bill_not_exist); any other code is an error to
 * retry, such as a day not yet billed (Alipay makes the bill the next
 * morning).
 */
static int
ali_bill_where(const json_t *r, struct ph_download *dl, struct ph_diag *diag)
{
	const char *code, *sub, *url;
	size_t len;
	int rc;

	code = ali_code(r, &sub);
	if (strcmp(code, "40004") == 0 &&
	    strcmp(sub, "isp.bill_not_exist") == 0) {
		dl->kind = PH_DL_NONE;
		return PH_OK;
	}
	if (strcmp(code, "10000") != 0)
		return ali_provider_error(r, "bill download URL query", 1,
		    diag);
	/* Any length here: one too long for a request is PH_E_TOOBIG. */
	if ((rc = ph_json_get_string(r, "bill_download_url", SIZE_MAX, &url,
	    &len, diag)) != PH_OK)
		return rc;
	if ((rc = ali_bill_url_check(url, len, diag)) != PH_OK)
		return rc;
	dl->kind = PH_DL_NEXT;
	memcpy(dl->next, url, len + 1);
	return PH_OK;
}

/* The file: a zip, or Alipay's page saying the link has expired. */
static int
ali_bill_file(const struct ph_http_response *in, struct ph_download *dl,
    struct ph_diag *diag)
{
	char head[65], text[65];
	size_t n;

	if (in->status != 200)
		return ph_fail(diag, PH_E_PROVIDER, "Alipay's bill link "
		    "answered HTTP %d", in->status);
	if (in->body == NULL || in->body_len < 4 ||
	    memcmp(in->body, ALI_ZIP_MAGIC, 4) != 0) {
		n = in->body != NULL && in->body_len < sizeof(head) ?
		    in->body_len : in->body != NULL ? sizeof(head) - 1 : 0;
		if (n > 0)
			memcpy(head, in->body, n);
		head[n] = '\0';
		ph_diag_text(text, sizeof(text), head, sizeof(text) - 1);
		return ph_fail(diag, PH_E_PROVIDER, "Alipay's bill link gave "
		    "%zu bytes that are not a zip (an expired link?): %s",
		    in->body_len, text);
	}
	dl->kind = PH_DL_STATEMENT;
	dl->offset = 0;
	dl->len = in->body_len;
	dl->packing = PH_PACK_ZIP;
	memcpy(dl->member[0], ALI_BILL_DETAIL_GBK,
	    sizeof(ALI_BILL_DETAIL_GBK));
	memcpy(dl->member[1], ALI_BILL_DETAIL_UTF8,
	    sizeof(ALI_BILL_DETAIL_UTF8));
	return PH_OK;
}

PH_STATEMENT_RESPONSE(ali_statement_response)
{
	const struct ali_ctx *ctx = p;
	const json_t *r;
	json_t *root;
	int rc;

	if (ctx == NULL || ref == NULL || in == NULL || dl == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "alipay: NULL argument");
	memset(dl, 0, sizeof(*dl));
	switch (ref->step) {
	case ALI_BILL_WHERE:
		if ((rc = ali_open_answer(ctx, &ali_bill_url, in, &root, &r,
		    diag)) != PH_OK)
			return rc;
		rc = ali_bill_where(r, dl, diag);
		json_decref(root);
		break;
	case ALI_BILL_FILE:
		rc = ali_bill_file(in, dl, diag);
		break;
	default:
		rc = ph_fail(diag, PH_E_INTERNAL, "alipay: the bill takes two "
		    "calls, not %u", ref->step + 1);
		break;
	}
	return ph_clear_on_fail(rc, dl, sizeof(*dl));
}
