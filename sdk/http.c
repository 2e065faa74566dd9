/*
 * What providers read from and write into HTTP messages: one header of a
 * request, the fields of an outbound request, a JSON answer, and text of
 * the provider's made safe for a diagnostic, and the URLs an answer
 * names.  No I/O: the core sends and receives.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payhook/sdk.h>

int
ph_header_get(const struct ph_header *h, size_t nh, const char *name,
    const char **value, struct ph_diag *diag)
{
	size_t i;

	*value = NULL;
	for (i = 0; h != NULL && i < nh; i++) {
		if (h[i].name == NULL || h[i].value == NULL ||
		    strcasecmp(h[i].name, name) != 0)
			continue;
		if (*value != NULL)
			return ph_fail(diag, PH_E_SIGNATURE, "%s sent more "
			    "than once", name);
		*value = h[i].value;
	}
	if (*value == NULL || **value == '\0')
		return ph_fail(diag, PH_E_SIGNATURE, "%s missing", name);
	return PH_OK;
}

int
ph_request_set(struct ph_http_request *out, const char *method,
    const char *path, const char *content_type, const struct ph_buf *body)
{
	size_t blen = body != NULL ? body->len : 0;

	if (body != NULL && body->err != PH_OK)
		return body->err;
	if (strlen(method) >= sizeof(out->method) ||
	    strlen(path) >= sizeof(out->path) ||
	    (content_type != NULL &&
	    strlen(content_type) >= sizeof(out->content_type)) ||
	    blen > sizeof(out->body))
		return PH_E_TOOBIG;
	memcpy(out->method, method, strlen(method) + 1);
	memcpy(out->path, path, strlen(path) + 1);
	if (content_type != NULL)
		memcpy(out->content_type, content_type,
		    strlen(content_type) + 1);
	if (body != NULL) {
		if (blen > 0)
			memcpy(out->body, body->data, blen);
		out->body_len = blen;
	}
	return PH_OK;
}

int
ph_request_header(struct ph_http_request *out, const char *name,
    const char *prefix, const char *value)
{
	size_t i = out->nheaders, np = prefix != NULL ? strlen(prefix) : 0,
	    nv = strlen(value);

	if (i == PH_HTTP_HEADERS_MAX ||
	    strlen(name) >= sizeof(out->headers[i].name) ||
	    np + nv >= sizeof(out->headers[i].value))
		return PH_E_TOOBIG;
	memcpy(out->headers[i].name, name, strlen(name) + 1);
	if (np > 0)
		memcpy(out->headers[i].value, prefix, np);
	memcpy(out->headers[i].value + np, value, nv + 1);
	out->nheaders++;
	return PH_OK;
}

void
ph_ack_reason(enum ph_ack_kind kind, const char *reason, char *dst,
    size_t cap)
{
	const char *s;
	size_t n = 0;

	if (cap == 0)
		return;
	for (s = reason; s != NULL && *s != '\0' && n < cap - 1; s++)
		if ((unsigned char)*s >= 0x20 && (unsigned char)*s <= 0x7e)
			dst[n++] = *s;
	dst[n] = '\0';
	if (n == 0)
		snprintf(dst, cap, "%s", kind == PH_ACK_RETRY ?
		    "temporarily unavailable" : "invalid notification");
}

int
ph_response_json(struct ph_response *out, int status, struct json_t *doc)
{
	size_t len;

	memset(out, 0, sizeof(*out));
	out->status = status;
	if (doc == NULL)
		return PH_E_NOMEM;
	len = json_dumpb(doc, (char *)out->body, sizeof(out->body),
	    JSON_COMPACT);
	json_decref(doc);
	if (len == 0 || len > sizeof(out->body))
		return PH_E_TOOBIG;
	out->body_len = len;
	memcpy(out->content_type, "application/json",
	    sizeof("application/json"));
	return PH_OK;
}

void
ph_ack_json_failure(struct ph_response *out, enum ph_ack_kind kind,
    const char *reason, const char *code_key, const char *code,
    const char *text_key)
{
	char msg[97];
	json_t *doc;

	memset(out, 0, sizeof(*out));
	if (kind != PH_ACK_REFUSED && kind != PH_ACK_RETRY) {
		out->status = 500;
		return;
	}
	ph_ack_reason(kind, reason, msg, sizeof(msg));
	doc = code_key != NULL ? json_pack("{s:s, s:s}", code_key, code,
	    text_key, msg) : json_pack("{s:s}", text_key, msg);
	ph_response_json(out, kind == PH_ACK_REFUSED ? 400 : 500, doc);
}

void
ph_ack_text(struct ph_response *out, enum ph_ack_kind kind, const char *text)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	switch (kind) {
	case PH_ACK_OK:
		out->status = 200;
		break;
	case PH_ACK_REFUSED:
		out->status = 400;
		break;
	case PH_ACK_RETRY:
		out->status = 500;
		break;
	default:
		out->status = 500;
		return;
	}
	for (; text != NULL && *text != '\0' && n < PH_ACK_TEXT_MAX; text++)
		if ((unsigned char)*text >= 0x20 && (unsigned char)*text < 0x7f)
			out->body[n++] = (unsigned char)*text;
	out->body_len = n;
	memcpy(out->content_type, "text/plain", sizeof("text/plain"));
}

void
ph_diag_text(char *dst, size_t cap, const char *src, size_t max)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t n = 0;

	if (cap == 0)
		return;
	for (; s != NULL && *s != '\0' && n + 1 < cap && n < max; s++) {
		if (*s >= 0xc0)
			dst[n++] = '?';
		else if (*s >= 0x20 && *s < 0x7f)
			dst[n++] = (char)*s;
	}
	if (n == 0 && cap > 1)
		dst[n++] = '-';
	dst[n] = '\0';
}

/* ---- URLs ---------------------------------------------------------------- */

/*
 * Absolute http and https URLs a provider's answer names (a statement's
 * download link), split strictly before the core is asked to fetch one.
 * No I/O: which hosts may be fetched from is the core's check.
 */

/* The bytes a host name may hold; an IPv6 literal's go between []. */
#define PH_URL_NAME_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-"
#define PH_URL_IPV6_CHARS	"0123456789ABCDEFabcdef:."

/* The length of the host at s (n bytes before the path, none of them
 * NUL): a name, or an IPv6 literal with its brackets; 0 when there is
 * none. */
static size_t
ph_url_host_len(const char *s, size_t n)
{
	size_t i;

	if (n > 0 && s[0] == '[') {
		for (i = 1; i < n && strchr(PH_URL_IPV6_CHARS, s[i]) != NULL ;
		    i++)
			;
		return i > 1 && i < n && s[i] == ']' ? i + 1 : 0;
	}
	for (i = 0; i < n && strchr(PH_URL_NAME_CHARS, s[i]) != NULL; i++)
		;
	return i;
}

int
ph_url_split(const char *url, size_t len, const char *what,
    struct ph_url *out, struct ph_diag *diag)
{
	struct ph_url u;
	const char *host, *end;
	size_t i, alen, hlen;
	unsigned long port;

	memset(out, 0, sizeof(*out));
	memset(&u, 0, sizeof(u));
	if (len == 0)
		return ph_fail(diag, PH_E_FIELD, "%s is empty", what);
	if (len >= PH_HTTP_PATH_MAX)
		return ph_fail(diag, PH_E_TOOBIG, "%s is %zu bytes, a request "
		    "holds %d", what, len, PH_HTTP_PATH_MAX - 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];

		if (c <= ' ' || c > '~' || c == '\\' || c == '#' || c == '"')
			return ph_fail(diag, PH_E_FIELD, "%s holds a byte a URL "
			    "cannot (0x%02x at %zu)", what, c, i);
	}
	if (len > 8 && strncmp(url, "https://", 8) == 0) {
		u.https = 1;
		host = url + 8;
	} else if (len > 7 && strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return ph_fail(diag, PH_E_FIELD, "%s is not an https URL",
		    what);
	for (end = host; end < url + len && *end != '/' && *end != '?'; end++)
		if (*end == '@')
			return ph_fail(diag, PH_E_FIELD, "%s names a user",
			    what);
	alen = (size_t)(end - host);
	if ((hlen = ph_url_host_len(host, alen)) == 0)
		return ph_fail(diag, PH_E_FIELD, "%s names no host", what);
	u.port = u.https ? 443 : 80;
	if (hlen < alen) {
		if (host[hlen] != ':' || hlen + 1 == alen || alen - hlen > 6)
			return ph_fail(diag, PH_E_FIELD, "%s has a bad host or "
			    "port", what);
		for (port = 0, i = hlen + 1; i < alen; i++) {
			if (host[i] < '0' || host[i] > '9')
				return ph_fail(diag, PH_E_FIELD, "%s has a bad "
				    "host or port", what);
			port = port * 10 + (unsigned long)(host[i] - '0');
		}
		if (port == 0 || port > 65535)
			return ph_fail(diag, PH_E_FIELD, "%s has a bad port",
			    what);
		u.port = (unsigned)port;
		u.port_given = 1;
	}
	u.host = host;
	u.host_len = hlen;
	u.target = end;
	u.target_len = len - (size_t)(end - url);
	*out = u;
	return PH_OK;
}
