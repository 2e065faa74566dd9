/*
 * Answers and request helpers shared by every handler of the web layer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ops/log.h"
#include "ops/proc.h"
#include "ops/text.h"
#include "web/web.h"

static uint64_t web_rid_next;
static unsigned web_rid_gen;	/* proc_generation() it was drawn under */

void
web_request_id(const char *in, char *out)
{
	unsigned char rnd[8];
	uint64_t v;
	size_t i, n = in != NULL ? strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-") : 0;

	/* Taken as sent when it has a letter or digit: "-" alone is what a
	 * log line writes for no value. */
	if (n > 0 && n <= WEB_REQUEST_ID_MAX && in[n] == '\0' &&
	    strcspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789") < n) {
		memcpy(out, in, n + 1);
		return;
	}
	/*
	 * A random start for the process, then a count through splitmix64's
	 * finaliser, a bijection: ids distinct within the process, as good
	 * as random between processes, and no getrandom() system call a
	 * request.  A child of a fork draws a start of its own.
	 */
	if (web_rid_gen != proc_generation()) {
		if (getrandom(&web_rid_next, sizeof(web_rid_next),
		    GRND_NONBLOCK) != (ssize_t)sizeof(web_rid_next))
			/* without randomness, still distinct: the process
			 * and the time */
			web_rid_next = ((uint64_t)proc_pid() << 40) ^
			    (uint64_t)time(NULL);
		web_rid_gen = proc_generation();
	}
	v = web_rid_next++;
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;
	v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
	v ^= v >> 31;
	for (i = 0; i < sizeof(rnd); i++)
		rnd[i] = (unsigned char)(v >> (8 * i));
	ph_hex_lower(rnd, sizeof(rnd), out);
}

void
web_response_init(struct web_response *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 500;
	r->note.level = LOG_LVL_INFO;
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
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

int
web_json_text(const json_t *j, struct ph_buf *body)
{
	char *s;

	if (j == NULL || (s = json_dumps(j, JSON_COMPACT)) == NULL)
		return -1;
	if (body->max > 0 && strlen(s) + 1 > body->max - body->len) {
		free(s);
		return -2;
	}
	ph_buf_puts(body, s);
	ph_buf_puts(body, "\n");
	free(s);
	return body->err ? -1 : 0;
}

struct ph_buf *
web_json_body(struct web_response *r, int status)
{
	ph_buf_free(&r->body);
	ph_buf_init(&r->body, WEB_RESP_MAX);
	ph_strlcpy(r->content_type, "application/json",
	    sizeof(r->content_type));
	r->status = status;
	return &r->body;
}

void
web_json(struct web_response *r, int status, const void *j)
{
	int rc;

	if ((rc = web_json_text(j, web_json_body(r, status))) == 0)
		return;
	ph_buf_free(&r->body);
	ph_buf_init(&r->body, WEB_RESP_MAX);
	r->status = 500;
	ph_buf_puts(&r->body, j == NULL ?
	    "{\"error\":\"internal\",\"message\":\"the answer could not be "
	    "built\"}\n" : rc == -2 ?
	    "{\"error\":\"internal\",\"message\":\"the answer would be "
	    "larger than payhook sends (8 MiB)\"}\n" :
	    "{\"error\":\"internal\",\"message\":\"out of memory\"}\n");
}

void
web_reply(struct web_response *resp, ledger_answer_fn fn, void *arg,
    const struct ledger_reply *r)
{
	int status;

	ph_buf_free(&resp->body);
	ph_buf_init(&resp->body, WEB_RESP_MAX);
	snprintf(resp->content_type, sizeof(resp->content_type),
	    "application/json");
	status = fn(arg, r, &resp->body);
	if (resp->body.err) {
		web_error(resp, 500, "internal", "the answer could not be "
		    "built");
		return;
	}
	resp->status = status;
}

void
web_utf8_copy(char *out, size_t cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), o = 0, len;

	if (cap == 0)
		return;
	while (n > 0) {
		if ((len = text_utf8_len(p, n)) == 0) {
			if (o + 1 >= cap)
				break;
			out[o++] = '?';
			p++;
			n--;
			continue;
		}
		if (o + len >= cap)
			break;
		memcpy(out + o, p, len);
		o += len;
		p += len;
		n -= len;
	}
	out[o] = '\0';
}

void
web_error(struct web_response *r, int status, const char *code,
    const char *fmt, ...)
{
	char raw[1024], msg[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* The message may quote what the caller sent: keep it valid UTF-8
	 * and whole characters, or the answer could not be written. */
	web_utf8_copy(msg, sizeof(msg), raw);
	j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	web_json(r, status, j);
	if (j != NULL)
		r->status = status;
	r->retry_after = r->status == 503 ? WEB_RETRY_AFTER_S : 0;
	json_decref(j);
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
			if ((hi = text_hexval(s[i + 1])) < 0 ||
			    (lo = text_hexval(s[i + 2])) < 0)
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
web_query_known(const char *uri, const char *const *known, char *bad,
    size_t cap, int *twice)
{
	const char *q = strchr(uri, '?'), *p, *amp, *eq;
	unsigned seen = 0;
	size_t i, n;

	*twice = 0;
	for (p = q != NULL ? q + 1 : ""; *p != '\0';
	    p = *amp != '\0' ? amp + 1 : amp) {
		if ((amp = strchr(p, '&')) == NULL)
			amp = p + strlen(p);
		if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL)
			eq = amp;
		n = (size_t)(eq - p);
		if (n == 0 && eq == amp)
			continue;		/* "&&" or a trailing '&' */
		/* At most 32 known names: one bit of seen each. */
		for (i = 0; i < 32 && known[i] != NULL; i++)
			if (strlen(known[i]) == n &&
			    strncmp(p, known[i], n) == 0)
				break;
		if (i == 32 || known[i] == NULL || (seen & (1u << i))) {
			*twice = i < 32 && known[i] != NULL;
			/* As sent, cut, anything but printable ASCII as '?'. */
			for (i = 0; i < n && i + 1 < cap; i++)
				bad[i] = p[i] > ' ' && p[i] < 0x7f && p[i] != '"' &&
				    p[i] != '\\' ? p[i] : '?';
			if (cap > 0)
				bad[i] = '\0';
			return -1;
		}
		seen |= 1u << i;
	}
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
