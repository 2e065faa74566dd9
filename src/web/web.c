/*
 * Answers and request helpers shared by every handler of the web layer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "web/web.h"

void
web_response_init(struct web_response *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 500;
	ph_buf_init(&r->body, WEB_RESP_MAX);
}

void
web_response_free(struct web_response *r)
{
	ph_buf_free(&r->body);
}

const char *
web_status_text(int status)
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
web_json(struct web_response *r, int status, const void *j)
{
	char *s;

	ph_buf_free(&r->body);
	ph_buf_init(&r->body, WEB_RESP_MAX);
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
web_error(struct web_response *r, int status, const char *code,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	web_json(r, status, j);
	r->status = status;
	json_decref(j);
}

static int
web_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
web_unescape(const char *s, size_t n, char *out, size_t cap, int plus_space)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			if ((hi = web_hexval(s[i + 1])) < 0 ||
			    (lo = web_hexval(s[i + 2])) < 0)
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
web_query_param(const char *uri, const char *name, char *out, size_t cap)
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
			return web_unescape(eq + 1, (size_t)(amp - eq - 1), out,
			    cap, 1) == 0 ? 1 : -1;
		}
	}
	return 0;
}
