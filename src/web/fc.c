/*
 * Front controller: routing on the path of REQUEST_URI below base_path, so
 * that lighttpd and Apache behave the same whatever SCRIPT_NAME/PATH_INFO
 * split they make; method checks; the bearer token of the merchant API.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "web/api.h"
#include "web/fc.h"
#include "ops/log.h"
#include "web/notify.h"

#define FC_PATH_MAX 1024

void
fc_response_init(struct fc_response *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 500;
	ph_buf_init(&r->body, FC_RESP_MAX);
}

void
fc_response_free(struct fc_response *r)
{
	ph_buf_free(&r->body);
}

const char *
fc_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

void
fc_json(struct fc_response *r, int status, const void *j)
{
	char *s;

	ph_buf_free(&r->body);
	ph_buf_init(&r->body, FC_RESP_MAX);
	if ((s = json_dumps(j, JSON_COMPACT)) == NULL) {
		r->status = 500;
		snprintf(r->content_type, sizeof(r->content_type),
		    "application/json");
		ph_buf_puts(&r->body, "{\"error\":\"internal\",\"message\":"
		    "\"out of memory\"}");
		return;
	}
	r->status = status;
	snprintf(r->content_type, sizeof(r->content_type),
	    "application/json");
	ph_buf_puts(&r->body, s);
	ph_buf_puts(&r->body, "\n");
	free(s);
}

void
fc_error(struct fc_response *r, int status, const char *code,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	fc_json(r, status, j);
	r->status = status;
	json_decref(j);
}

static int
fc_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decodes n bytes of a URI component into out (cap bytes with the
 * NUL).  Refuses a bad escape, a NUL byte, or a result that does not fit.
 */
static int
fc_unescape(const char *s, size_t n, char *out, size_t cap, int plus_space)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			if ((hi = fc_hexval(s[i + 1])) < 0 ||
			    (lo = fc_hexval(s[i + 2])) < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			if (c == '\0')
				return -1;
			i += 2;
		} else if (c == '+' && plus_space)
			c = ' ';
		if (o + 1 >= cap)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int
fc_query_param(const char *uri, const char *name, char *out, size_t cap)
{
	const char *q = strchr(uri, '?'), *p, *amp, *eq;
	size_t nlen = strlen(name);

	if (q == NULL)
		return 0;
	for (p = q + 1; *p != '\0'; p = *amp != '\0' ? amp + 1 : amp) {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL)
			eq = amp;
		if ((size_t)(eq - p) == nlen && strncmp(p, name, nlen) == 0) {
			if (eq == amp) {
				if (cap > 0)
					out[0] = '\0';
				return 1;
			}
			return fc_unescape(eq + 1, (size_t)(amp - eq - 1), out,
			    cap, 1) == 0 ? 1 : -1;
		}
	}
	return 0;
}

/* Constant-time check of "Bearer <token>" against the configured token.
 * Both sides are hashed first so that not even the length leaks. */
static int
fc_authorised(const struct conf *c, const char *auth)
{
	unsigned char want[PH_SHA256_LEN], got[PH_SHA256_LEN];
	const char *tok;

	if (auth == NULL || c->api_token == NULL ||
	    strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	for (tok = auth + 7; *tok == ' '; tok++)
		continue;
	if (ph_sha256(c->api_token, c->api_token_len, want) != PH_OK ||
	    ph_sha256(tok, strlen(tok), got) != PH_OK)
		return 0;
	return ph_ct_equal(want, sizeof(want), got, sizeof(got));
}

static int
fc_method_is(const struct fc_request *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

static void
fc_method_not_allowed(struct fc_response *resp, const char *allow,
    const char *method)
{
	fc_error(resp, 405, "method_not_allowed",
	    "method %s is not allowed here; allowed: %s", method, allow);
	snprintf(resp->allow, sizeof(resp->allow), "%s", allow);
}

/* The path below base_path, percent-escapes kept; NULL if outside it. */
static const char *
fc_route_path(const struct conf *c, const char *uri, char *buf, size_t cap)
{
	size_t n = strcspn(uri, "?#"), blen = strlen(c->base_path);

	if (n >= cap)
		return NULL;
	memcpy(buf, uri, n);
	buf[n] = '\0';
	if (blen == 0)
		return buf;
	if (strncmp(buf, c->base_path, blen) != 0 ||
	    (buf[blen] != '/' && buf[blen] != '\0'))
		return NULL;
	return buf[blen] == '\0' ? "/" : buf + blen;
}

/*
 * "<id>/query", "<id>/attempts" or "<id>/refunds": the decoded id into id and the action
 * (a static string) into *action; 0 on a match.
 */
static int
fc_order_action(const char *rest, char *id, size_t cap, const char **action)
{
	const char *slash = strchr(rest, '/');

	*action = NULL;
	if (slash == NULL)
		return -1;
	if (strcmp(slash, "/query") == 0)
		*action = "query";
	else if (strcmp(slash, "/attempts") == 0)
		*action = "attempts";
	else if (strcmp(slash, "/refunds") == 0)
		*action = "refunds";
	else
		return -1;
	if (fc_unescape(rest, (size_t)(slash - rest), id, cap, 0) == -1 ||
	    id[0] == '\0')
		return -1;
	return 0;
}

static void
fc_merchant(struct fc_ctx *ctx, const struct fc_request *req,
    const char *path, struct fc_response *resp)
{
	char id[PH_ID_MAX + 2];
	const char *action;

	if (strcmp(path, "/orders") == 0) {
		fc_note_set(resp->note.route, "orders");
		if (!fc_method_is(req, "POST"))
			fc_method_not_allowed(resp, "POST", req->method);
		else
			api_create_order(ctx, req, resp);
	} else if (strncmp(path, "/orders/", 8) == 0 &&
	    fc_order_action(path + 8, id, sizeof(id), &action) == 0 &&
	    action != NULL) {
		fc_note_set(resp->note.route, action);
		fc_note_set(resp->note.order_id, id);
		if (!fc_method_is(req, "POST"))
			fc_method_not_allowed(resp, "POST", req->method);
		else if (strcmp(action, "query") == 0)
			api_query_order(ctx, id, req, resp);
		else if (strcmp(action, "refunds") == 0)
			api_refund(ctx, id, req, resp);
		else
			api_attempt(ctx, id, req, resp);
	} else if (strncmp(path, "/orders/", 8) == 0 &&
	    strchr(path + 8, '/') == NULL) {
		fc_note_set(resp->note.route, "order");
		if (fc_unescape(path + 8, strlen(path + 8), id, sizeof(id),
		    0) == -1 || id[0] == '\0')
			fc_error(resp, 404, "not_found", "no such order");
		else if (!fc_method_is(req, "GET"))
			fc_method_not_allowed(resp, "GET", req->method);
		else {
			fc_note_set(resp->note.order_id, id);
			api_get_order(ctx, id, resp);
		}
	} else if (strcmp(path, "/events") == 0) {
		fc_note_set(resp->note.route, "events");
		if (!fc_method_is(req, "GET"))
			fc_method_not_allowed(resp, "GET", req->method);
		else
			api_events(ctx, req, resp);
	} else
		fc_error(resp, 404, "not_found", "no route for %s", path);
}

static int
fc_is_merchant_route(const char *path)
{
	return strcmp(path, "/orders") == 0 ||
	    strncmp(path, "/orders/", 8) == 0 || strcmp(path, "/events") == 0;
}

static void
fc_notify(struct fc_ctx *ctx, const struct fc_request *req,
    const char *path, struct fc_response *resp)
{
	const struct conf_profile *pr = NULL;
	char name[40];

	fc_note_set(resp->note.route, "notify");
	if (fc_unescape(path, strlen(path), name, sizeof(name), 0) == 0)
		pr = conf_profile(ctx->conf, name);
	if (pr != NULL)
		fc_note_set(resp->note.profile, pr->name);
	if (pr == NULL)
		fc_error(resp, 404, "unknown_profile",
		    "no notification profile named \"%s\"", path);
	else if (!fc_method_is(req, "POST"))
		fc_method_not_allowed(resp, "POST", req->method);
	else if (req->body_too_big)
		fc_error(resp, 413, "payload_too_large",
		    "body exceeds max_body_bytes (%zu)",
		    ctx->conf->max_body_bytes);
	else if (!(pr->plugin->prov->caps & PH_CAP_NOTIFY))
		fc_error(resp, 404, "not_found", "provider %s takes no "
		    "notifications", pr->plugin->prov->name);
	else
		notify_handle(ctx, pr, req, resp);
}

void
fc_handle(struct fc_ctx *ctx, const struct fc_request *req,
    struct fc_response *resp)
{
	char buf[FC_PATH_MAX];
	const char *path;

	fc_note_set(resp->note.route, "none");
	path = fc_route_path(ctx->conf, req->uri != NULL ? req->uri : "", buf,
	    sizeof(buf));
	if (path == NULL || req->method == NULL)
		fc_error(resp, 404, "not_found", "no route");
	else if (strcmp(path, "/healthz") == 0) {
		fc_note_set(resp->note.route, "healthz");
		if (!fc_method_is(req, "GET") && !fc_method_is(req, "HEAD"))
			fc_method_not_allowed(resp, "GET, HEAD", req->method);
		else
			api_health(ctx, resp);
	} else if (strcmp(path, "/metrics") == 0) {
		fc_note_set(resp->note.route, "metrics");
		if (!fc_method_is(req, "GET"))
			fc_method_not_allowed(resp, "GET", req->method);
		else
			api_metrics(ctx, resp);
	} else if (strncmp(path, "/notify/", 8) == 0)
		fc_notify(ctx, req, path + 8, resp);
	else if (!fc_is_merchant_route(path))
		fc_error(resp, 404, "not_found", "no route for %s", path);
	else if (!fc_authorised(ctx->conf, req->authorization))
		fc_error(resp, 401, "unauthorized",
		    "a valid Authorization: Bearer token is required");
	else if (req->body_too_big)
		fc_error(resp, 413, "payload_too_large",
		    "body exceeds max_body_bytes (%zu)",
		    ctx->conf->max_body_bytes);
	else
		fc_merchant(ctx, req, path, resp);
}
