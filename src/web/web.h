/*
 * What every handler of the web layer shares: the request as the web
 * server gave it, the response being built, and the helpers that write
 * answers.  Nothing here knows FastCGI (fcgi_main.c adapts libfcgi) or
 * the routes (fc.c), so handlers and tests call down into it only.
 */
#ifndef PH_WEB_H
#define PH_WEB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "conf/conf.h"
#include "ledger/ledger.h"
#include "store/store.h"

#define WEB_RESP_MAX (8u * 1024 * 1024)

/* Everything the web server told us; pointers are borrowed. */
struct web_request {
	const char *method;
	const char *uri;		/* REQUEST_URI, with query string */
	const char *content_type;	/* "" when absent */
	const char *authorization;	/* NULL when absent */
	const char *remote_addr;	/* the client's address, "" unknown */
	const unsigned char *body;
	size_t body_len;
	int body_too_big;		/* Content-Length over max_body_bytes */
	const struct ph_header *headers;
	size_t nheaders;
	int64_t now;
	const char *request_id;		/* X-Request-Id, sent back too */
	/* The call's Idempotency-Key (web/idem.c), NULL when it has none:
	 * handlers pass it to the ledger call that makes their effect. */
	struct ledger_idem *idem;
};

/* What the request's log line and counters say, filled by the handlers. */
struct web_note {
	char route[16];			/* "notify", "order", "events", ... */
	char profile[48];
	char order_id[PH_ID_MAX + 2];
	char outcome[48];		/* "applied", "refused_signature", ... */
	char reason[600];		/* why it was refused or failed, or "" */
	int level;			/* of the request's log line: at least
					 * LOG_LVL_INFO (ops/log.h) */
	int acked;			/* a notification acknowledged: timed
					 * by payhook_notify_ack_seconds */
};

struct web_response {
	struct web_note note;
	int status;
	char content_type[64];
	char allow[32];			/* Allow header for 405, or "" */
	int replayed;			/* an Idempotency-Key's kept answer */
	int retry_after;		/* seconds for Retry-After, 0: none */
	int passes;			/* a refusal that passes by itself
					 * (ledger_refusal_passes): not kept
					 * under an Idempotency-Key */
	struct ph_buf body;		/* owned: free with web_response_free */
};

struct web_ctx {
	struct conf *conf;
	struct store *store;
};

/*
 * The request's id: the caller's X-Request-Id when it is well-formed (1 to
 * WEB_REQUEST_ID_MAX of [A-Za-z0-9._-]), else 16 random hex digits; into
 * out (WEB_REQUEST_ID_MAX + 1 bytes).
 */
#define WEB_REQUEST_ID_MAX 64
void web_request_id(const char *incoming, char *out);

void web_response_init(struct web_response *r);
void web_response_free(struct web_response *r);

/* Copies a value into a note field. */
#define web_note_set(field, value) \
	ph_strlcpy((field), (value), sizeof(field))

/* When a client may try again after a 503 (the store or the provider out
 * of reach): the Retry-After every such answer carries. */
#define WEB_RETRY_AFTER_S	5

/* A JSON error body: {"error": code, "message": text}; a 503 says when to
 * retry (WEB_RETRY_AFTER_S). */
void web_error(struct web_response *r, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * What serves a route: req answered into resp; param is the path's
 * parameter (a profile, order or refund id, decoded), or NULL for a route
 * without one.  Handlers are declared with it (web_handler api_get_order;).
 */
typedef void web_handler(struct web_ctx *ctx, const struct web_request *req,
    const char *param, struct web_response *resp);

/* Serialises j (borrowed) as the JSON response body. */
void web_json(struct web_response *r, int status, const void *j);
/* Appends j (borrowed) as compact JSON and a newline to body; -1 when it
 * cannot be written, -2 when it is larger than body may hold. */
int web_json_text(const json_t *j, struct ph_buf *body);
/* Makes r a JSON answer of status with an empty body, and returns the body
 * for the caller to write the text into (web_error replaces it). */
struct ph_buf *web_json_body(struct web_response *r, int status);
/* The answer to a merchant's call: fn renders r into the body. */
void web_reply(struct web_response *resp, ledger_answer_fn fn, void *arg,
    const struct ledger_reply *r);
/* Copies s into out (cap bytes with the NUL) as valid UTF-8: cut on a
 * character boundary, a byte that is not UTF-8 written as '?'. */
void web_utf8_copy(char *out, size_t cap, const char *s);
const char *web_status_text(int status);
/* The value of a query parameter, percent-decoded into out; 0 if absent. */
int web_query_param(const char *uri, const char *name, char *out, size_t cap);
/* 0 when every parameter of uri's query string is one of known (NULL-
 * terminated), each at most once; else -1, the first other or repeated
 * one's name (cut to cap) in bad and *twice set when it was repeated. */
int web_query_known(const char *uri, const char *const *known, char *bad,
    size_t cap, int *twice);
/*
 * Percent-decodes n bytes of a URI component into out (cap bytes with the
 * NUL); plus_space turns '+' into ' ' (query strings).  -1 on a bad
 * escape, a NUL byte, or a result that does not fit.
 */
int web_unescape(const char *s, size_t n, char *out, size_t cap,
    int plus_space);

#endif
