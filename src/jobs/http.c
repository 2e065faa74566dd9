/*
 * Outbound HTTP with libcurl.  Every property of a call that matters for
 * safety is set here and nowhere else: TLS peer and host verification on,
 * redirects never followed, only the protocols the profile allows, a
 * timeout for the connection and for the whole call, an answer bounded in
 * size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include <payhook/sdk.h>

#include "jobs/http.h"
#include "ops/log.h"

#define HTTP_HEADER_BUF_MAX (64 * 1024)

struct http_xfer {
	struct http_call *call;
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	size_t hdr_cap;
	size_t body_cap;
	int too_big;
};

int
http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? PH_OK :
	    PH_E_INTERNAL;
}

static size_t
http_body_max(const struct http_call *c)
{
	return c->max_body != 0 ? c->max_body : HTTP_RESPONSE_MAX;
}

/*
 * buf (capacity *cap) grown to hold need bytes, doubling from 4 KiB: a
 * statement of many megabytes in few copies.  NULL when out of memory,
 * buf then left as it was.
 */
static void *
http_grow(void *buf, size_t *cap, size_t need)
{
	size_t n = *cap != 0 ? *cap : 4096;
	void *nb;

	if (need <= *cap)
		return buf;
	while (n < need)
		n *= 2;
	if ((nb = realloc(buf, n)) == NULL)
		return NULL;
	*cap = n;
	return nb;
}

static size_t
http_on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer *x = arg;
	struct http_call *c = x->call;
	size_t n = size * nmemb;
	unsigned char *nb;

	if (c->body_len + n > http_body_max(c)) {
		x->too_big = 1;
		return 0;	/* aborts the transfer */
	}
	if ((nb = http_grow(c->body, &x->body_cap, c->body_len + n + 1)) ==
	    NULL)
		return 0;
	c->body = nb;
	memcpy(c->body + c->body_len, p, n);
	c->body_len += n;
	c->body[c->body_len] = '\0';
	return n;
}

/* Keeps "Name: value" lines of the final response; names and values are
 * NUL-terminated in header_buf, the array points into it at the end. */
static size_t
http_on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_xfer *x = arg;
	struct http_call *c = x->call;
	size_t n = size * nmemb, len = n;
	char *nb;

	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new status line (after 100 Continue): start over. */
		c->header_len = 0;
		return n;
	}
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (len == 0 || memchr(p, ':', len) == NULL)
		return n;
	if (c->header_len + len + 2 > HTTP_HEADER_BUF_MAX)
		return n;	/* drop the excess; signatures are early */
	if ((nb = http_grow(c->header_buf, &x->hdr_cap,
	    c->header_len + len + 2)) == NULL)
		return 0;
	c->header_buf = nb;
	memcpy(c->header_buf + c->header_len, p, len);
	c->header_buf[c->header_len + len] = '\0';
	c->header_len += len + 1;
	return n;
}

/* Splits header_buf into the name/value array. */
static void
http_index_headers(struct http_call *c)
{
	size_t off = 0;

	c->nheaders = 0;
	while (off < c->header_len && c->nheaders < HTTP_HEADERS_MAX) {
		char *line = c->header_buf + off, *colon, *v;
		size_t len = strlen(line);

		off += len + 1;
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			continue;
		c->headers[c->nheaders].name = line;
		c->headers[c->nheaders].value = v;
		c->nheaders++;
	}
}

static int
http_setup(const struct conf *conf, struct http_xfer *x)
{
	const struct http_call *c = x->call;
	const struct conf_profile *pr = c->profile;
	const struct ph_http_request *rq = c->req;
	char url[PH_HTTP_PATH_MAX + 1024], line[PH_HTTP_VALUE_MAX + 80];
	size_t i;
	CURL *e;

	if (c->url != NULL) {
		if (snprintf(url, sizeof(url), "%s", c->url) >=
		    (int)sizeof(url)) {
			snprintf(x->call->errmsg, sizeof(x->call->errmsg),
			    "URL too long");
			return PH_E_CONFIG;
		}
	} else if (pr == NULL || pr->api_base == NULL) {
		snprintf(x->call->errmsg, sizeof(x->call->errmsg),
		    "profile %s has no api_base", pr != NULL ? pr->name : "-");
		return PH_E_CONFIG;
	} else if (rq->path[0] != '/' || snprintf(url, sizeof(url), "%s%s",
	    pr->api_base, rq->path) >= (int)sizeof(url)) {
		snprintf(x->call->errmsg, sizeof(x->call->errmsg),
		    "plugin built a bad request path");
		return PH_E_INTERNAL;
	}
	if ((x->easy = e = curl_easy_init()) == NULL)
		return PH_E_NOMEM;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR,
	    (c->url != NULL ? c->allow_insecure_http :
	    pr->allow_insecure_http) ? "https,http" : "https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (conf->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, conf->ca_file);
	if (pr != NULL && pr->client_cert.data != NULL &&
	    pr->client_key.data != NULL) {
		/* As the configuration checked them; libcurl copies. */
		struct curl_blob cert = { (void *)pr->client_cert.data,
		    pr->client_cert.len, CURL_BLOB_COPY };
		struct curl_blob key = { (void *)pr->client_key.data,
		    pr->client_key.len, CURL_BLOB_COPY };

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
	}
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT,
	    (long)conf->http_connect_timeout_s);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, c->timeout_s > 0 ? c->timeout_s :
	    (long)conf->http_timeout_s);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)http_body_max(c));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "payhook/" PACKAGE_VERSION);
	/* No proxy from the environment: provider calls go where the
	 * configuration says, nowhere else. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
	} else if (strcmp(rq->method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else {
		snprintf(x->call->errmsg, sizeof(x->call->errmsg),
		    "plugin asked for method %s", rq->method);
		return PH_E_INTERNAL;
	}
	/* curl adds "Expect: 100-continue" to big posts: not to providers. */
	x->hdrs = curl_slist_append(NULL, "Expect:");
	if (rq->content_type[0] != '\0') {
		snprintf(line, sizeof(line), "Content-Type: %s",
		    rq->content_type);
		x->hdrs = curl_slist_append(x->hdrs, line);
	}
	for (i = 0; i < rq->nheaders && i < PH_HTTP_HEADERS_MAX; i++) {
		if (strpbrk(rq->headers[i].name, "\r\n:") != NULL ||
		    strpbrk(rq->headers[i].value, "\r\n") != NULL)
			return PH_E_INTERNAL;
		snprintf(line, sizeof(line), "%s: %s", rq->headers[i].name,
		    rq->headers[i].value);
		x->hdrs = curl_slist_append(x->hdrs, line);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	return PH_OK;
}

static void
http_finish(struct http_xfer *x, CURLcode rc)
{
	struct http_call *c = x->call;
	long status = 0;
	double t = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &t);
	c->seconds = t;
	c->status = (int)status;
	if (rc == CURLE_OK) {
		c->err = PH_OK;
		http_index_headers(c);
		if (c->body == NULL) {
			c->body = calloc(1, 1);
			c->body_len = 0;
		}
		return;
	}
	c->err = PH_E_UNAVAILABLE;
	/* Over the bound as it came, or by its Content-Length before. */
	c->too_big = x->too_big || rc == CURLE_FILESIZE_EXCEEDED;
	if (c->too_big)
		snprintf(c->errmsg, sizeof(c->errmsg), "answer larger than "
		    "%zu bytes", http_body_max(c));
	else
		ph_strlcpy(c->errmsg,
		    x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc),
		    sizeof(c->errmsg));
}

void
http_run(const struct conf *conf, struct http_call *calls, size_t n,
    size_t parallel)
{
	struct http_xfer *xs;
	CURLM *m;
	CURLMsg *msg;
	size_t i, next = 0, active = 0;
	int running, left;

	for (i = 0; i < n; i++) {
		calls[i].err = PH_E_UNAVAILABLE;
		calls[i].status = 0;
		calls[i].errmsg[0] = '\0';
	}
	if ((xs = calloc(n ? n : 1, sizeof(*xs))) == NULL ||
	    (m = curl_multi_init()) == NULL) {
		free(xs);
		for (i = 0; i < n; i++)
			snprintf(calls[i].errmsg, sizeof(calls[i].errmsg),
			    "out of memory");
		return;
	}
	if (parallel == 0)
		parallel = 1;
	for (;;) {
		while (next < n && active < parallel) {
			struct http_xfer *x = &xs[next];
			int rc;

			x->call = &calls[next++];
			if ((rc = http_setup(conf, x)) != PH_OK) {
				x->call->err = rc;
				if (x->call->errmsg[0] == '\0')
					snprintf(x->call->errmsg,
					    sizeof(x->call->errmsg),
					    "cannot set up the call: %s",
					    ph_strerror(rc));
				continue;
			}
			curl_multi_add_handle(m, x->easy);
			active++;
		}
		if (active == 0)
			break;
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct http_xfer *x;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&x);
			http_finish(x, msg->data.result);
			curl_multi_remove_handle(m, x->easy);
			active--;
		}
		if (active > 0 && running > 0)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	for (i = 0; i < n; i++) {
		if (xs[i].easy != NULL) {
			curl_multi_remove_handle(m, xs[i].easy);
			curl_easy_cleanup(xs[i].easy);
		}
		curl_slist_free_all(xs[i].hdrs);
	}
	curl_multi_cleanup(m);
	free(xs);
}

void
http_call_free(struct http_call *c)
{
	free(c->body);
	free(c->header_buf);
	c->body = NULL;
	c->header_buf = NULL;
	c->body_len = c->header_len = c->nheaders = 0;
}

void
http_call_response(const struct http_call *c, int64_t now,
    struct ph_http_response *out)
{
	memset(out, 0, sizeof(*out));
	out->status = c->status;
	out->headers = c->headers;
	out->nheaders = c->nheaders;
	out->body = c->body != NULL ? c->body : (const unsigned char *)"";
	out->body_len = c->body_len;
	out->now = now;
}
