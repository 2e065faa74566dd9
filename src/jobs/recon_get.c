/*
 * The statement payhook fetches itself (payhook reconcile --download).
 *
 * The plugin builds each call and verifies each answer (the signature,
 * the digest a signed answer named); this file sends the calls, lets a
 * call go only where the profile's api_base or the plugin's own list of
 * download hosts says (never to wherever an answer alone points), has
 * what the provider packed (gzip, zip) unpacked and writes it beside
 * the reports, mode 0600, so that what was reconciled can be read again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <payhook/sdk.h>

#include "jobs/http.h"
#include "jobs/recon.h"
#include "jobs/unpack.h"

/* A day's statement of a busy merchant is tens of megabytes. */
#define RECON_GET_BODY_MAX	(256UL * 1024 * 1024)
/* Unpacked, with a ratio no honest statement reaches: no zip bomb. */
#define RECON_GET_TEXT_MAX	(1024UL * 1024 * 1024)

#define RECON_GET_TIMEOUT_S	300L

/* scheme, host and port of a URL, lower case; -1 when it has none. */
static int
recon_get_origin(const char *url, char *scheme, size_t scap, char *host,
    size_t hcap, long *port)
{
	CURLU *u;
	char *s = NULL, *h = NULL, *p = NULL;
	int rc = -1;

	if ((u = curl_url()) == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK)
		goto done;
	if (snprintf(scheme, scap, "%s", s) >= (int)scap ||
	    snprintf(host, hcap, "%s", h) >= (int)hcap)
		goto done;
	*port = strtol(p, NULL, 10);
	rc = 0;
done:
	curl_free(s);
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return rc;
}

/*
 * Whether an absolute URL a plugin built may be called: the origin of the
 * profile's api_base (its scheme rules apply), or https to one of the
 * plugin's download hosts on the default port.
 */
static int
recon_get_allowed(const struct conf_profile *pr, const char *url,
    struct ph_diag *diag)
{
	const char *const *h = pr->plugin->prov->download_hosts;
	char s1[16], h1[256], s2[16], h2[256];
	long p1, p2;

	if (recon_get_origin(url, s1, sizeof(s1), h1, sizeof(h1), &p1) == -1)
		return ph_fail(diag, PH_E_FIELD, "statement download: "
		    "the plugin built a URL that does not parse");
	if (pr->api_base != NULL && recon_get_origin(pr->api_base, s2,
	    sizeof(s2), h2, sizeof(h2), &p2) == 0 &&
	    strcasecmp(s1, s2) == 0 && strcasecmp(h1, h2) == 0 && p1 == p2)
		return PH_OK;
	for (; h != NULL && *h != NULL; h++)
		if (strcasecmp(s1, "https") == 0 && p1 == 443 &&
		    strcasecmp(h1, *h) == 0)
			return PH_OK;
	return ph_fail(diag, PH_E_FIELD, "statement download: refused to "
	    "call %s://%s:%ld, neither api_base's origin nor an https "
	    "download host of the %s plugin", s1, h1, p1,
	    pr->plugin->prov->name);
}

/* One call of the download; the answer goes to dl. */
static int
recon_get_call(const struct conf *c, const struct conf_profile *pr,
    const struct ph_download_ref *ref, int64_t now, struct http_call *call,
    struct ph_download *dl, struct ph_diag *diag)
{
	const struct ph_provider *prov = pr->plugin->prov;
	struct ph_http_request *req;
	struct ph_http_response resp;
	struct ph_call_ctx cc;
	int rc;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	memset(&cc, 0, sizeof(cc));
	cc.now = now;
	if (getrandom(cc.random, sizeof(cc.random), 0) !=
	    (ssize_t)sizeof(cc.random)) {
		rc = ph_fail(diag, PH_E_INTERNAL, "no randomness");
		goto done;
	}
	if ((rc = loader_result(prov, prov->statement_request(pr->ctx, ref,
	    &cc, req, diag), diag)) != PH_OK)
		goto done;
	req->path[sizeof(req->path) - 1] = '\0';
	memset(call, 0, sizeof(*call));
	call->profile = pr;
	call->req = req;
	call->max_body = RECON_GET_BODY_MAX;
	call->timeout_s = RECON_GET_TIMEOUT_S;
	if (req->path[0] != '/') {
		if ((rc = recon_get_allowed(pr, req->path, diag)) != PH_OK)
			goto done;
		call->url = req->path;
		call->allow_insecure_http = pr->allow_insecure_http;
	}
	http_run(c, call, 1, 1);
	if (call->err != PH_OK) {
		/* Too big is no "later": the same day is as big tomorrow. */
		rc = ph_fail(diag, call->too_big ? PH_E_TOOBIG :
		    PH_E_UNAVAILABLE, "statement download: %s", call->errmsg);
		goto done;
	}
	http_call_response(call, now, &resp);
	memset(dl, 0, sizeof(*dl));
	if ((rc = loader_result(prov, prov->statement_response(pr->ctx, ref,
	    &resp, dl, diag), diag)) != PH_OK)
		goto done;
	dl->next[sizeof(dl->next) - 1] = '\0';
	if (dl->kind == PH_DL_STATEMENT && (dl->offset > call->body_len ||
	    dl->len > call->body_len - dl->offset))
		rc = ph_fail(diag, PH_E_PLUGIN, "statement download: the "
		    "plugin named bytes past the answer");
	else if (dl->kind < PH_DL_NEXT || dl->kind > PH_DL_NONE)
		rc = ph_fail(diag, PH_E_PLUGIN, "statement download: the "
		    "plugin gave no outcome");
	else if (dl->kind == PH_DL_STATEMENT && dl->packing != PH_PACK_NONE &&
	    dl->packing != PH_PACK_GZIP && dl->packing != PH_PACK_ZIP)
		rc = ph_fail(diag, PH_E_PLUGIN, "statement download: unknown "
		    "packing %d", (int)dl->packing);
done:
	free(req);
	return rc;
}

int
recon_download(const struct conf *c, const struct conf_profile *pr,
    const char *date, const char *dir, int64_t now, char *path, size_t cap,
    int *none, struct ph_diag *diag)
{
	const struct ph_provider *prov = pr->plugin->prov;
	struct ph_download_ref ref;
	struct ph_download *dl;
	struct http_call call;
	const char *ends[PH_DOWNLOAD_MEMBERS_MAX];
	char *next;
	FILE *tmp = NULL;
	size_t i;
	int rc;

	*none = 0;
	if (!(prov->caps & PH_CAP_DOWNLOAD))
		return ph_fail(diag, PH_E_UNSUPPORTED, "provider %s offers no "
		    "statement download: reconcile a file with --statement "
		    "(payhook asks the provider about what it says)",
		    prov->name);
	if (snprintf(path, cap, "%s/statement-%s-%s.txt", dir, pr->name,
	    date) >= (int)cap)
		return ph_fail(diag, PH_E_IO, "statement: path too long");
	dl = calloc(1, sizeof(*dl));
	next = calloc(1, sizeof(dl->next));
	if (dl == NULL || next == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto done;
	}
	memset(&call, 0, sizeof(call));
	memset(&ref, 0, sizeof(ref));
	ref.date = date;
	ref.next = next;
	for (ref.step = 0;; ref.step++) {
		if (ref.step == PH_DOWNLOAD_STEPS_MAX) {
			rc = ph_fail(diag, PH_E_PROVIDER, "statement "
			    "download: no statement after %d calls",
			    PH_DOWNLOAD_STEPS_MAX);
			goto done;
		}
		http_call_free(&call);
		if ((rc = recon_get_call(c, pr, &ref, now, &call, dl,
		    diag)) != PH_OK)
			goto done;
		if (dl->kind != PH_DL_NEXT)
			break;
		memcpy(next, dl->next, sizeof(dl->next));
	}
	if (dl->kind == PH_DL_NONE) {
		*none = 1;
		goto done;
	}
	if ((tmp = tmpfile()) == NULL) {
		rc = ph_fail(diag, PH_E_IO, "statement: %s", strerror(errno));
		goto done;
	}
	for (i = 0; i < PH_DOWNLOAD_MEMBERS_MAX; i++)
		ends[i] = dl->member[i];
	rc = unpack(dl->packing, ends,
	    PH_DOWNLOAD_MEMBERS_MAX, call.body + dl->offset, dl->len, tmp,
	    RECON_GET_TEXT_MAX, diag);
	if (rc == PH_OK && fflush(tmp) != 0)
		rc = ph_fail(diag, PH_E_IO, "statement: %s", strerror(errno));
	if (rc == PH_OK)
		rc = recon_write(tmp, path, "", "", diag);
done:
	if (tmp != NULL)
		fclose(tmp);
	http_call_free(&call);
	free(next);
	free(dl);
	return rc;
}
