/*
 * Idempotency keys at the merchant API's edge: the header read and
 * checked, the request's fingerprint, the claim before the handler runs
 * and the answer after; the ledger keeps the answer with the effect
 * (ledger/ledger_idem.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "web/idem.h"
#include "web/stuck.h"

#define IDEM_LEASE_MIN_S 60

/* The Idempotency-Key header, or NULL. */
static const char *
idem_header(const struct web_request *req)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "Idempotency-Key") == 0)
			return req->headers[i].value;
	return NULL;
}

/* 1 to 255 printable ASCII characters. */
static int
idem_key_valid(const char *key)
{
	size_t i, n = strlen(key);

	if (n == 0 || n > LEDGER_IDEM_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (key[i] < 0x20 || key[i] > 0x7e)
			return 0;
	return 1;
}

/* SHA-256 of method, URI and body, each length-prefixed. */
static int
idem_fingerprint(const struct web_request *req, char out[2 * PH_SHA256_LEN +
    1])
{
	unsigned char d[PH_SHA256_LEN];
	struct ph_buf b;
	int rc;

	/* Room for all three and their lengths (a URI is as long as the
	 * web server lets it be). */
	ph_buf_init(&b, (size_t)req->body_len + strlen(req->method) +
	    strlen(req->uri) + 3 * 24);
	ph_buf_printf(&b, "%zu:%s\n%zu:%s\n%zu:", strlen(req->method),
	    req->method, strlen(req->uri), req->uri, req->body_len);
	ph_buf_append(&b, req->body, req->body_len);
	rc = b.err ? PH_E_NOMEM : ph_sha256(b.data, b.len, d);
	ph_buf_free(&b);
	if (rc == PH_OK)
		ph_hex_lower(d, sizeof(d), out);
	return rc;
}

void
idem_run(struct web_ctx *ctx, const struct web_request *req,
    const char *param, web_handler *handler, struct web_response *resp)
{
	const char *key = idem_header(req);
	struct web_request call;
	struct ledger_idem idem;
	enum ledger_idem_state state;
	int rc;

	if (key == NULL) {
		handler(ctx, req, param, resp);
		return;
	}
	if (!idem_key_valid(key)) {
		web_error(resp, 400, "invalid_idempotency_key", "an "
		    "Idempotency-Key is 1 to %d printable ASCII characters",
		    LEDGER_IDEM_KEY_MAX);
		return;
	}
	memset(&idem, 0, sizeof(idem));
	ph_strlcpy(idem.key, key, sizeof(idem.key));
	idem.now = req->now;
	idem.ttl_s = (int64_t)ctx->conf->idempotency_ttl_s;
	/* Long enough for the slowest call (an attempt asks providers). */
	idem.lease_s = IDEM_LEASE_MIN_S +
	    2 * (int64_t)ctx->conf->http_timeout_s;
	if ((rc = idem_fingerprint(req, idem.fp)) != PH_OK ||
	    (rc = ledger_idem_begin(ctx->store, &idem, &state)) != PH_OK) {
		web_error(resp, 503, rc == PH_E_STORE_FULL ? "store_full" :
		    "store_unavailable", "the Idempotency-Key could not be "
		    "recorded: %s", ph_strerror(rc));
		ledger_idem_free(&idem);
		return;
	}
	switch (state) {
	case LEDGER_IDEM_REPLAY:
		ph_buf_free(&resp->body);
		resp->body = idem.body;
		ph_buf_init(&idem.body, 0);
		resp->status = idem.status;
		snprintf(resp->content_type, sizeof(resp->content_type),
		    "application/json");
		resp->replayed = 1;
		web_note_set(resp->note.outcome, "replayed");
		break;
	case LEDGER_IDEM_REUSED:
		web_error(resp, 422, "idempotency_key_reused", "this "
		    "Idempotency-Key was used for another request");
		break;
	case LEDGER_IDEM_BUSY:
		web_error(resp, 409, "idempotency_key_in_use", "a request with "
		    "this Idempotency-Key is still being handled; retry later");
		resp->retry_after = 1;
		break;
	default:
		call = *req;
		call.idem = &idem;
		handler(ctx, &call, param, resp);
		/* An answer kept with an effect is the answer: the bytes a
		 * retry will get. */
		if (idem.kept && resp->status < 500) {
			ph_buf_free(&resp->body);
			resp->body = idem.body;
			ph_buf_init(&idem.body, 0);
			resp->status = idem.status;
			break;
		}
		idem.kept = 0;
		if ((rc = resp->passes ? ledger_idem_release(ctx->store,
		    &idem) : ledger_idem_end(ctx->store, &idem, resp->status,
		    resp->body.data != NULL ? resp->body.data : "",
		    resp->body.len)) != PH_OK) {
			log_err("Idempotency-Key %s: the answer could not be "
			    "kept: %s; a retry runs the call again",
			    idem.key, ph_strerror(rc));
			web_stuck_add(WEB_STUCK_IDEM, idem.key, idem.token);
		}
		break;
	}
	ledger_idem_free(&idem);
}
