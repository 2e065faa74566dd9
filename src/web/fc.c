/*
 * Front controller: routing on the path of REQUEST_URI below base_path, so
 * that lighttpd and Apache behave the same whatever SCRIPT_NAME/PATH_INFO
 * split they make; a table of routes, each with its method, whether it
 * needs the merchant's bearer token, and its handler.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <payhook/sdk.h>

#include "web/api.h"
#include "web/fc.h"
#include "web/idem.h"
#include "web/stuck.h"
#include "web/notify.h"
#include "web/status.h"

#define FC_PATH_MAX 1024
#define FC_PARAM_MAX 128	/* bytes of a decoded path parameter */

enum fc_auth {
	FC_AUTH_NONE,		/* providers, health checks */
	FC_AUTH_MERCHANT,	/* Authorization: Bearer <api token> */
	FC_AUTH_METRICS,	/* Bearer <metrics token>, when one is set */
};

/* What the "{}" of a route's path names: how long it may be, and what a
 * bad one is answered. */
enum fc_param {
	FC_PARAM_NONE,
	FC_PARAM_PROFILE,	/* the handler answers an unknown one */
	FC_PARAM_ORDER,
	FC_PARAM_REFUND,
	FC_PARAM__MAX
};

static const struct {
	size_t max;
	const char *not_found;
} fc_params[FC_PARAM__MAX] = {
	[FC_PARAM_NONE] = { 0, NULL },
	[FC_PARAM_PROFILE] = { 40, NULL },
	[FC_PARAM_ORDER] = { PH_ID_MAX + 1, "no such order" },
	[FC_PARAM_REFUND] = { LEDGER_REFUND_ID_MAX + 1, "no such refund" },
};

/*
 * A route: the path below base_path, where "{}" stands for one segment,
 * percent-decoded and handed to the handler.  Two rows may share a
 * pattern with different methods.  An idempotent route honours the
 * merchant's Idempotency-Key (web/idem.c).
 */
struct fc_route_def {
	const char *name;
	const char *method;
	const char *pattern;
	enum fc_auth auth;
	enum fc_param param;
	int idempotent;
	web_handler *handler;
};

static const struct fc_route_def fc_routes[FC_ROUTE__MAX] = {
	[FC_ROUTE_HEALTHZ] = { "healthz", "GET", "/healthz", FC_AUTH_NONE,
	    FC_PARAM_NONE, 0, status_health },
	[FC_ROUTE_HEALTHZ_HEAD] = { "healthz", "HEAD", "/healthz",
	    FC_AUTH_NONE, FC_PARAM_NONE, 0, status_health },
	[FC_ROUTE_READYZ] = { "readyz", "GET", "/readyz", FC_AUTH_NONE,
	    FC_PARAM_NONE, 0, status_ready },
	[FC_ROUTE_READYZ_HEAD] = { "readyz", "HEAD", "/readyz", FC_AUTH_NONE,
	    FC_PARAM_NONE, 0, status_ready },
	[FC_ROUTE_METRICS] = { "metrics", "GET", "/metrics", FC_AUTH_METRICS,
	    FC_PARAM_NONE, 0, status_metrics },
	[FC_ROUTE_NOTIFY] = { "notify", "POST", "/notify/{}", FC_AUTH_NONE,
	    FC_PARAM_PROFILE, 0, notify_route },
	[FC_ROUTE_ORDERS] = { "orders", "POST", "/orders", FC_AUTH_MERCHANT,
	    FC_PARAM_NONE, 1, api_create_order },
	[FC_ROUTE_ORDER] = { "order", "GET", "/orders/{}", FC_AUTH_MERCHANT,
	    FC_PARAM_ORDER, 0, api_get_order },
	[FC_ROUTE_ORDER_QUERY] = { "query", "POST", "/orders/{}/query",
	    FC_AUTH_MERCHANT, FC_PARAM_ORDER, 0, api_query_order },
	[FC_ROUTE_ORDER_ATTEMPTS] = { "attempts", "POST",
	    "/orders/{}/attempts", FC_AUTH_MERCHANT, FC_PARAM_ORDER, 1,
	    api_attempt },
	[FC_ROUTE_ORDER_REFUNDS] = { "refunds", "POST", "/orders/{}/refunds",
	    FC_AUTH_MERCHANT, FC_PARAM_ORDER, 1, api_refund },
	[FC_ROUTE_ORDER_REFUND_LIST] = { "refunds", "GET",
	    "/orders/{}/refunds", FC_AUTH_MERCHANT, FC_PARAM_ORDER, 0,
	    api_order_refunds },
	[FC_ROUTE_REFUND] = { "refund", "GET", "/refunds/{}",
	    FC_AUTH_MERCHANT, FC_PARAM_REFUND, 0, api_get_refund },
	[FC_ROUTE_REFUND_CANCEL] = { "refund_cancel", "POST",
	    "/refunds/{}/cancel", FC_AUTH_MERCHANT, FC_PARAM_REFUND, 1,
	    api_cancel_refund },
	[FC_ROUTE_EVENTS] = { "events", "GET", "/events", FC_AUTH_MERCHANT,
	    FC_PARAM_NONE, 0, api_events },
};

const char *
fc_route_name(enum fc_route r)
{
	return r < FC_ROUTE__MAX ? fc_routes[r].name : "none";
}

/* Constant-time check of "Bearer <token>" against a configured token.
 * Both sides are hashed first so that not even the length leaks. */
static int
fc_bearer(const unsigned char *token, size_t len, const char *auth)
{
	unsigned char want[PH_SHA256_LEN], got[PH_SHA256_LEN];
	const char *tok;

	if (auth == NULL || token == NULL ||
	    strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	for (tok = auth + 7; *tok == ' '; tok++)
		continue;
	if (ph_sha256(token, len, want) != PH_OK ||
	    ph_sha256(tok, strlen(tok), got) != PH_OK)
		return 0;
	return ph_ct_equal(want, sizeof(want), got, sizeof(got));
}

/* May the caller use a route of this kind? */
static int
fc_authorised(const struct conf *c, enum fc_auth auth, const char *header)
{
	switch (auth) {
	case FC_AUTH_MERCHANT:
		return fc_bearer(c->api_token, c->api_token_len, header);
	case FC_AUTH_METRICS:
		return c->metrics_token == NULL || fc_bearer(c->metrics_token,
		    c->metrics_token_len, header);
	default:
		return 1;
	}
}

/*
 * The path below base_path, percent-escapes kept; NULL if outside it.  A
 * request target in absolute form (POST http://host/notify/x HTTP/1.1,
 * which HTTP/1.1 servers accept) is its path: Apache passes the target
 * as it came in REQUEST_URI, lighttpd the path alone.
 */
static const char *
fc_route_path(const struct conf *c, const char *uri, char *buf, size_t cap)
{
	size_t n, blen = strlen(c->base_path);

	if (strncasecmp(uri, "http://", 7) == 0 ||
	    strncasecmp(uri, "https://", 8) == 0) {
		uri = strstr(uri, "://") + 3;
		uri += strcspn(uri, "/?#");
		if (*uri != '/')
			return NULL;
	}
	n = strcspn(uri, "?#");

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
 * Does path match pattern?  The segment "{}" stands for is copied, still
 * escaped, into seg (cap bytes, "" when the pattern has none); a segment
 * too long for seg matches and leaves seg empty, for the handler to
 * refuse.
 */
static int
fc_match(const char *pattern, const char *path, char *seg, size_t cap)
{
	const char *brace = strstr(pattern, "{}"), *end;
	size_t pre, n;

	seg[0] = '\0';
	if (brace == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(brace - pattern);
	if (strncmp(pattern, path, pre) != 0)
		return 0;
	path += pre;
	n = strcspn(path, "/");
	end = path + n;
	/* An empty segment names nothing: "/orders/" is no order's path (a
	 * 405 would say the method was wrong, not the path). */
	if (n == 0 || strcmp(end, brace + 2) != 0)
		return 0;
	if (n < cap) {
		memcpy(seg, path, n);
		seg[n] = '\0';
	}
	return 1;
}

/* The route for path and method: *rt, or NULL with allow listing the
 * methods path has (allow "" when no route has the path at all). */
static const struct fc_route_def *
fc_find(const char *path, const char *method, char *seg, size_t cap,
    char *allow, size_t acap, const struct fc_route_def **any)
{
	const struct fc_route_def *rt;
	size_t i, n;

	allow[0] = '\0';
	*any = NULL;
	for (i = 0; i < FC_ROUTE__MAX; i++) {
		rt = &fc_routes[i];
		if (!fc_match(rt->pattern, path, seg, cap))
			continue;
		if (strcmp(method, rt->method) == 0)
			return *any = rt;
		if (*any == NULL)
			*any = rt;
		n = strlen(allow);
		snprintf(allow + n, acap - n, "%s%s", n > 0 ? ", " : "",
		    rt->method);
	}
	return NULL;
}

void
fc_handle(struct web_ctx *ctx, const struct web_request *req,
    struct web_response *resp)
{
	char buf[FC_PATH_MAX], seg[3 * FC_PARAM_MAX + 1], param[FC_PARAM_MAX];
	const struct fc_route_def *rt, *any;
	const char *path;
	char allow[sizeof(resp->allow)];

	web_note_set(resp->note.route, "none");
	web_stuck_release(ctx->store);
	path = fc_route_path(ctx->conf, req->uri != NULL ? req->uri : "", buf,
	    sizeof(buf));
	if (path == NULL || req->method == NULL) {
		web_error(resp, 404, "not_found", "no route");
		return;
	}
	rt = fc_find(path, req->method, seg, sizeof(seg), allow,
	    sizeof(allow), &any);
	if (any == NULL) {
		web_error(resp, 404, "not_found", "no route for %s", path);
		return;
	}
	web_note_set(resp->note.route, any->name);
	/* A route behind a token says nothing, not even its methods, to a
	 * caller without it. */
	if (!fc_authorised(ctx->conf, any->auth, req->authorization)) {
		/* For the request's line, at warn: never the token. */
		web_note_set(resp->note.reason, req->authorization == NULL ?
		    "no Authorization header" : "the bearer token does not "
		    "match");
		web_error(resp, 401, "unauthorized",
		    "a valid Authorization: Bearer token is required");
		return;
	}
	if (rt == NULL) {
		web_error(resp, 405, "method_not_allowed",
		    "method %s is not allowed here; allowed: %s",
		    req->method, allow);
		ph_strlcpy(resp->allow, allow, sizeof(resp->allow));
		return;
	}
	if (req->body_too_big) {
		web_error(resp, 413, "payload_too_large",
		    "body exceeds max_body_bytes (%zu)",
		    ctx->conf->max_body_bytes);
		return;
	}
	if (rt->param == FC_PARAM_NONE)
		param[0] = '\0';
	else if (seg[0] == '\0' ||
	    web_unescape(seg, strlen(seg), param, fc_params[rt->param].max + 1,
	    0) == -1 || param[0] == '\0') {
		if (fc_params[rt->param].not_found != NULL) {
			web_error(resp, 404, "not_found", "%s",
			    fc_params[rt->param].not_found);
			return;
		}
		param[0] = '\0';
	}
	if (rt->param == FC_PARAM_ORDER)
		snprintf(resp->note.order_id, sizeof(resp->note.order_id),
		    "%.*s", (int)sizeof(resp->note.order_id) - 1, param);
	if (rt->idempotent)
		idem_run(ctx, req, rt->param != FC_PARAM_NONE ? param : NULL,
		    rt->handler, resp);
	else
		rt->handler(ctx, req, rt->param != FC_PARAM_NONE ? param :
		    NULL, resp);
}
