/*
 * The SDK's URL splitter (sdk/http.c): scheme, host, port and target of
 * the links a provider's answer names, and the URLs it refuses.
 */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "../lib/tap.h"

static struct ph_diag d;

static int
split(const char *url, struct ph_url *u)
{
	d.msg[0] = '\0';
	return ph_url_split(url, strlen(url), "link", u, &d);
}

/* url splits into host, port and target. */
static void
parts(const char *url, int https, const char *host, unsigned port,
    int given, const char *target)
{
	struct ph_url u;

	if (!ok(split(url, &u) == PH_OK, "%s: split", url))
		diag("%s", d.msg);
	ok(u.https == https, "%s: scheme", url);
	ok(u.host != NULL && u.host_len == strlen(host) &&
	    memcmp(u.host, host, u.host_len) == 0, "%s: host %s", url, host);
	ok(u.port == port, "%s: port %u", url, port);
	ok(u.port_given == given, "%s: port given or not", url);
	ok(u.target != NULL && u.target_len == strlen(target) &&
	    strcmp(u.target, target) == 0, "%s: target \"%s\"", url, target);
}

/* url is refused as malformed (PH_E_FIELD), a diagnostic naming the
 * link, and out left empty. */
static void
refused(const char *url, const char *why)
{
	struct ph_url u;

	memset(&u, 0xa5, sizeof(u));
	ok(split(url, &u) == PH_E_FIELD, "%s refused", why);
	ok(strstr(d.msg, "link") != NULL, "... %s", d.msg);
	ok(u.host == NULL && u.target == NULL && u.port == 0,
	    "... nothing split");
}

static void
test_parts(void)
{
	parts("https://dwbillcenter.alipay.com/downloadBillFile.resource?"
	    "bizType=trade&t=1", 1, "dwbillcenter.alipay.com", 443, 0,
	    "/downloadBillFile.resource?bizType=trade&t=1");
	parts("http://127.0.0.1:8080/v3/billdownload/file?token=abc", 0,
	    "127.0.0.1", 8080, 1, "/v3/billdownload/file?token=abc");
	parts("http://localhost/x", 0, "localhost", 80, 0, "/x");
	parts("https://[::1]:8443/bill", 1, "[::1]", 8443, 1, "/bill");
	parts("https://[2001:db8::1]/", 1, "[2001:db8::1]", 443, 0, "/");
	parts("https://api.example.com", 1, "api.example.com", 443, 0, "");
	parts("https://api.example.com?a=1", 1, "api.example.com", 443, 0,
	    "?a=1");
	parts("https://h:65535/", 1, "h", 65535, 1, "/");
	parts("https://h:1/", 1, "h", 1, 1, "/");
}

/* URLs malformed in one way each, and that way. */
static const struct {
	const char	*url;
	const char	*why;
} malformed[] = {
	{ "", "an empty URL" },
	{ "ftp://h/x", "another scheme" },
	{ "HTTPS://h/x", "a scheme in upper case" },
	{ "https:/h/x", "one slash" },
	{ "https://", "a scheme alone" },
	{ "https:///x", "an empty host" },
	{ "https://:443/x", "a port without a host" },
	{ "https://user@h/x", "user information" },
	{ "https://h.example@evil.example/x",
	    "a host that is user information" },
	{ "https://u:p@h/x", "user and password" },
	{ "https://h:/x", "an empty port" },
	{ "https://h:0/x", "port 0" },
	{ "https://h:65536/x", "port 65536" },
	{ "https://h:99999999999999999999/x",
	    "a port past any integer" },
	{ "https://h:8a/x", "a port with a letter" },
	{ "https://h:-1/x", "a negative port" },
	{ "https://h_x/x", "a host with '_'" },
	{ "https://h%2e/x", "a host with '%'" },
	{ "https://[::1/x", "an IPv6 literal not closed" },
	{ "https://[]/x", "an empty IPv6 literal" },
	{ "https://[::g]/x", "an IPv6 literal with 'g'" },
	{ "https://[::1]x/", "text after an IPv6 literal" },
	{ "https://h/a b", "a blank" },
	{ "https://h/a\tb", "a tab" },
	{ "https://h/a\r\nHost: evil", "CR LF" },
	{ "https://h/a\x7f", "DEL" },
	{ "https://h/\xe4\xb8\xad", "a UTF-8 byte" },
	{ "https://h/a#frag", "a fragment" },
	{ "https://h\\@evil/a", "a backslash" },
	{ "https://h/\"a", "a quote" },
};

static void
test_refused(void)
{
	struct ph_url u;
	char *big;
	size_t i;

	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		refused(malformed[i].url, malformed[i].why);

	d.msg[0] = '\0';
	is_int(ph_url_split("https://h/a\0b", 13, "link", &u, &d),
	    PH_E_FIELD, "a NUL byte within len refused");
	ok(d.msg[0] != '\0', "... %s", d.msg);

	if ((big = malloc(PH_HTTP_PATH_MAX + 1)) == NULL)
		abort();
	memset(big, 'a', PH_HTTP_PATH_MAX);
	memcpy(big, "https://h/", 10);
	big[PH_HTTP_PATH_MAX - 1] = '\0';
	ok(split(big, &u) == PH_OK && u.target_len ==
	    (size_t)PH_HTTP_PATH_MAX - 1 - 9, "a URL that just fits a request");
	big[PH_HTTP_PATH_MAX - 1] = 'a';
	big[PH_HTTP_PATH_MAX] = '\0';
	is_int(split(big, &u), PH_E_TOOBIG, "one byte more refused");
	ok(strstr(d.msg, "link") != NULL, "... %s", d.msg);
	free(big);

	is_int(ph_url_split("https://h/", 10, "link", &u, NULL), PH_OK,
	    "no diagnostic wanted");
}

int
main(void)
{
	test_parts();
	test_refused();
	return done_testing();
}
