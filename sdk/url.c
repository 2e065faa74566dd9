/*
 * Absolute http and https URLs a provider's answer names (a statement's
 * download link), split strictly before the core is asked to fetch one.
 * No I/O: which hosts may be fetched from is the core's check.
 */
#include <string.h>

#include <payhook/sdk.h>

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
