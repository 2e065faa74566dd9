/*
 * The SDK's URL splitter (sdk/http.c): scheme, host, port and target of
 * the links a provider's answer names, and the URLs it refuses.
 */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "tap.h"

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

/* url is refused with status, a diagnostic naming the link, and out
 * left empty. */
static void
refused(const char *url, int status, const char *why)
{
	struct ph_url u;

	memset(&u, 0xa5, sizeof(u));
	ok(split(url, &u) == status, "%s refused", why);
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

static void
test_refused(void)
{
	struct ph_url u;
	char *big;

	refused("", PH_E_FIELD, "an empty URL");
	refused("ftp://h/x", PH_E_FIELD, "another scheme");
	refused("HTTPS://h/x", PH_E_FIELD, "a scheme in upper case");
	refused("https:/h/x", PH_E_FIELD, "one slash");
	refused("https://", PH_E_FIELD, "a scheme alone");
	refused("https:///x", PH_E_FIELD, "an empty host");
	refused("https://:443/x", PH_E_FIELD, "a port without a host");
	refused("https://user@h/x", PH_E_FIELD, "user information");
	refused("https://h.example@evil.example/x", PH_E_FIELD,
	    "a host that is user information");
	refused("https://u:p@h/x", PH_E_FIELD, "user and password");
	refused("https://h:/x", PH_E_FIELD, "an empty port");
	refused("https://h:0/x", PH_E_FIELD, "port 0");
	refused("https://h:65536/x", PH_E_FIELD, "port 65536");
	refused("https://h:99999999999999999999/x", PH_E_FIELD,
	    "a port past any integer");
	refused("https://h:8a/x", PH_E_FIELD, "a port with a letter");
	refused("https://h:-1/x", PH_E_FIELD, "a negative port");
	refused("https://h_x/x", PH_E_FIELD, "a host with '_'");
	refused("https://h%2e/x", PH_E_FIELD, "a host with '%'");
	refused("https://[::1/x", PH_E_FIELD, "an IPv6 literal not closed");
	refused("https://[]/x", PH_E_FIELD, "an empty IPv6 literal");
	refused("https://[::g]/x", PH_E_FIELD, "an IPv6 literal with 'g'");
	refused("https://[::1]x/", PH_E_FIELD, "text after an IPv6 literal");
	refused("https://h/a b", PH_E_FIELD, "a blank");
	refused("https://h/a\tb", PH_E_FIELD, "a tab");
	refused("https://h/a\r\nHost: evil", PH_E_FIELD, "CR LF");
	refused("https://h/a\x7f", PH_E_FIELD, "DEL");
	refused("https://h/\xe4\xb8\xad", PH_E_FIELD, "a UTF-8 byte");
	refused("https://h/a#frag", PH_E_FIELD, "a fragment");
	refused("https://h\\@evil/a", PH_E_FIELD, "a backslash");
	refused("https://h/\"a", PH_E_FIELD, "a quote");

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
