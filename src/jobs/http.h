/*
 * Outbound calls to providers, with libcurl: TLS verified by default, no
 * redirects, per-call timeouts, a bounded answer.  Calls run concurrently
 * (curl multi) up to a bound.
 */
#ifndef PH_HTTP_H
#define PH_HTTP_H

#include <stddef.h>

#include <payhook/provider.h>

#include "conf/conf.h"

#define HTTP_RESPONSE_MAX	(1024 * 1024)
#define HTTP_HEADERS_MAX	64

struct http_call {
	/* In: borrowed for the duration of http_run(). */
	const struct conf_profile *profile;	/* or NULL with url */
	const struct ph_http_request *req;
	const char *url;		/* whole URL instead of the profile's
					 * api_base + req->path, or NULL */
	int allow_insecure_http;	/* with url: plain http allowed */
	size_t max_body;		/* bytes; 0 for HTTP_RESPONSE_MAX */
	long timeout_s;			/* whole call; 0 for the configured */
	/* Out: owned by the call; free with http_call_free(). */
	int status;			/* HTTP status, 0 when none came */
	int err;			/* PH_OK, or PH_E_UNAVAILABLE etc. */
	char errmsg[256];		/* why, when err != PH_OK */
	int too_big;			/* the answer was over max_body:
					 * asking again gets the same */
	unsigned char *body;		/* NUL-terminated */
	size_t body_len;
	struct ph_header headers[HTTP_HEADERS_MAX];
	size_t nheaders;
	char *header_buf;		/* backing store of headers */
	size_t header_len;
	double seconds;			/* how long it took */
};

int http_global_init(void);
/* Runs n calls, at most parallel at a time; every call gets a result. */
void http_run(const struct conf *c, struct http_call *calls, size_t n,
    size_t parallel);
void http_call_free(struct http_call *call);
/* The answer as a plugin reads it (pointers into call). */
void http_call_response(const struct http_call *call, int64_t now,
    struct ph_http_response *out);

#endif
