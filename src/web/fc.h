/*
 * The front controller: one request in, one response out.  It knows
 * nothing of FastCGI (fcgi_main.c adapts libfcgi to it), so tests can
 * drive it directly.
 */
#ifndef PH_FC_H
#define PH_FC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "conf/conf.h"
#include "store/store.h"

#define FC_RESP_MAX (8u * 1024 * 1024)

/* Everything the web server told us; pointers are borrowed. */
struct fc_request {
	const char *method;
	const char *uri;		/* REQUEST_URI, with query string */
	const char *content_type;	/* "" when absent */
	const char *authorization;	/* NULL when absent */
	const unsigned char *body;
	size_t body_len;
	int body_too_big;		/* Content-Length over max_body_bytes */
	const struct ph_header *headers;
	size_t nheaders;
	int64_t now;
};

/* What the request's log line and counters say, filled by the handlers. */
struct fc_note {
	char route[16];			/* "notify", "order", "events", ... */
	char profile[48];
	char order_id[PH_ID_MAX + 2];
	char outcome[48];		/* "applied", "refused_signature", ... */
};

struct fc_response {
	struct fc_note note;
	int status;
	char content_type[64];
	char allow[32];			/* Allow header for 405, or "" */
	struct ph_buf body;		/* owned: free with fc_response_free */
};

struct fc_ctx {
	struct conf *conf;
	struct store *store;
};

void fc_response_init(struct fc_response *r);
void fc_response_free(struct fc_response *r);
void fc_handle(struct fc_ctx *ctx, const struct fc_request *req,
    struct fc_response *resp);

/* Copies a value into a note field. */
#define fc_note_set(field, value) \
	snprintf((field), sizeof(field), "%s", (value))

/* A JSON error body: {"error": code, "message": text}. */
void fc_error(struct fc_response *r, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Serialises j (borrowed) as the JSON response body. */
void fc_json(struct fc_response *r, int status, const void *j);
const char *fc_status_text(int status);
/* The value of a query parameter, percent-decoded into out; 0 if absent. */
int fc_query_param(const char *uri, const char *name, char *out, size_t cap);

#endif
