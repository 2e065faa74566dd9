/*
 * Configuration: a good file opens; each kind of mistake is refused with
 * a message that names it (and its line), never silently ignored.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "ops/log.h"
#include "../../lib/helpers.h"
#include "../../lib/tap.h"

static char dir[] = "/tmp/payhook-conf-XXXXXX";
static char plugin_dir[512];

static void
put(const char *name, mode_t mode, const char *fmt, ...)
{
	char path[600];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	chmod(path, mode);
}

#define CORE_FMT \
    "[core]\n" \
    "db_path = var/payhook.mdb\n" \
    "plugin_dir = %s\n" \
    "api_token_file = keys/api.token\n"

#define PROFILE_FMT \
    "[profile.wxshop]\n" \
    "plugin = wechat\n" \
    "appid = wx2421b1c4370ec43b\n" \
    "mch_id = 10000100\n" \
    "api_key_file = keys/wechat.key\n" \
    "sign_type = %s\n"

/* Writes core + extra + profile and opens it; returns the first error
 * line (or "" when it opened). */
static const char *
open_with(const char *extra_core, const char *sign_type, const char *tail,
    struct conf **out)
{
	static struct conf_errs errs;
	struct conf *c = NULL;
	static char body[32768];
	char path[600];
	size_t i;

	snprintf(body, sizeof(body), CORE_FMT, plugin_dir);
	snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s",
	    extra_core);
	snprintf(body + strlen(body), sizeof(body) - strlen(body),
	    PROFILE_FMT, sign_type);
	snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s", tail);
	put("payhook.conf", 0644, "%s", body);
	snprintf(path, sizeof(path), "%s/payhook.conf", dir);
	memset(&errs, 0, sizeof(errs));
	if (conf_open(path, &c, &errs) == 0) {
		if (out != NULL)
			*out = c;
		else
			conf_free(c);
		return "";
	}
	for (i = 0; i < errs.n; i++)
		if (!errs.warning[i]) {
			diag("%s", errs.line[i]);
			return errs.line[i];
		}
	return "?";
}

/* A configuration open_with() must refuse (core lines, sign_type, profile
 * tail) and what its first error names: named, and also unless NULL. */
struct refusal {
	const char *core, *sign_type, *tail;
	const char *named, *also;
	const char *what;
};

/* Values and keys refused wherever they stand. */
static const struct refusal bad_values[] = {
	{ "", "MD5", "query_schedule = 15s,0m\n", "query_schedule", NULL,
	    "zero delay refused" },
	{ "", "MD5", "query_schedule = 15x\n", "query_schedule", NULL,
	    "bad unit refused" },
	{ "", "MD5", "api_base = ftp://x\n", "api_base", NULL,
	    "non-http api_base refused" },
	{ "", "MD5", "api_base = https://\n", "with a host", NULL,
	    "an api_base without a host refused" },
	{ "", "MD5", "api_base = https://api.example.com/"
	    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
	    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
	    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
	    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
	    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
	    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
	    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp\n",
	    "more than 400", NULL, "an api_base over 400 bytes refused, "
	    "saying so" },
	{ "", "MD5", "client_cert_file = keys/c.pem\n", "go together", NULL,
	    "client cert without key" },
	{ "", "MD5", "client_cert_file = keys/c.pem\n"
	    "client_key_file = keys/open.key\n", "client_key_file",
	    "accessible by group or others", "a client key others may read "
	    "refused" },
	{ "", "MD5", "client_cert_file = keys/c.pem\n"
	    "client_key_file = keys/link.key\n", "client_key_file",
	    "is a symbolic link", "a client key behind a symbolic link "
	    "refused, saying so" },
	{ "", "MD5", "client_cert_file = keys\n"
	    "client_key_file = keys/c.key\n", "client_cert_file",
	    "not a regular file", "a folder as the client certificate "
	    "refused" },
	{ "http_timeout_s = 0\n", "MD5", "", "http_timeout_s", NULL,
	    "zero timeout refused" },
	{ "colour = blue\n", "MD5", "", "line 5", "unknown key \"colour\"",
	    "unknown core key refused with its line" },
	{ "", "MD5", "[extra]\nx = 1\n", "unknown section [extra]", NULL,
	    "unknown section refused" },
	{ "", "MD5", "colour = red\n", "unknown key \"colour\"",
	    "profile.wxshop", "unknown profile key refused" },
	{ "", "SHA1", "", "sign_type \"SHA1\" is not one of MD5, HMAC-SHA256",
	    NULL, "bad enum refused, naming the choices" },
	{ "map_size_mb = lots\n", "MD5", "", "map_size_mb", NULL,
	    "bad number refused" },
	{ "db_path = x.mdb\n", "MD5", "", "given twice", NULL,
	    "duplicate core key refused" },
	{ "store = mysql\n", "MD5", "", "store \"mysql\" is not lmdb or "
	    "postgresql", NULL, "an unknown store engine refused" },
	{ "store = postgresql\n", "MD5", "", "needs pg_conninfo", NULL,
	    "store = postgresql without pg_conninfo refused" },
	{ "store = postgresql\npg_conninfo = host=/run/pg password=hunter2\n",
	    "MD5", "", "pg_conninfo: holds a password", "pg_password_file",
	    "a password in pg_conninfo refused, pointing to the file" },
	{ "store = postgresql\npg_conninfo = host='/run/pg\n", "MD5", "",
	    "pg_conninfo: ", NULL, "a connection string libpq cannot read "
	    "refused" },
	{ "store = postgresql\npg_conninfo = dbname=payhook\n"
	    "pg_password_file = keys/none\n", "MD5", "", "pg_password_file",
	    NULL, "a missing pg_password_file refused" },
	{ "pg_password_file = \n", "MD5", "", "pg_password_file is empty",
	    NULL, "an empty pg_password_file refused" },
};

/* A base path, profiles and plugins that cannot be. */
static const struct refusal bad_places[] = {
	{ "base_path = pay\n", "MD5", "", "base_path", NULL,
	    "relative base_path refused" },
	{ "", "MD5", "[profile.Bad Name]\nplugin = wechat\n", "profile name",
	    NULL, "invalid profile name refused" },
	{ "", "MD5", "[profile.second]\nappid = x\n", "has no plugin key",
	    NULL, "profile without plugin" },
	{ "", "MD5", "[profile.third]\nplugin = nosuch\n", "nosuch.so", NULL,
	    "missing plugin file named" },
};

/* One test point for each of the n refusals r. */
static void
refuses(const struct refusal *r, size_t n)
{
	const char *e;
	size_t i;

	for (i = 0; i < n; i++) {
		e = open_with(r[i].core, r[i].sign_type, r[i].tail, NULL);
		ok(strstr(e, r[i].named) != NULL &&
		    (r[i].also == NULL || strstr(e, r[i].also) != NULL),
		    "%s", r[i].what);
	}
}

/*
 * Lines longer than the 200 bytes of Debian's inih: up to 4096, the value
 * whole, spaces at the cuts kept; longer lines named.
 */
static void
test_long_lines(void)
{
	static char tail[12000], want[5000];
	const struct conf_profile *pr;
	struct conf *c = NULL;
	const char *e;
	size_t i, n;

	/* An api_base of 229 characters. */
	n = (size_t)snprintf(want, sizeof(want), "https://api.example.com/");
	while (n < 229)
		want[n++] = 'p';
	want[n] = '\0';
	snprintf(tail, sizeof(tail), "api_base = %s\n", want);
	e = open_with("", "MD5", tail, &c);
	is_str(e, "", "a line of 240 bytes is read");
	pr = c != NULL ? conf_profile(c, "wxshop") : NULL;
	ok(pr != NULL && pr->api_base != NULL &&
	    strcmp(pr->api_base, want) == 0, "... the api_base whole (229 "
	    "characters)");
	conf_free(c);
	c = NULL;

	/* A query_schedule of 4096 bytes, spaces at every possible cut. */
	n = (size_t)snprintf(tail, sizeof(tail), "query_schedule = ");
	for (i = 0; n + 4 < 4096; i++)
		n += (size_t)snprintf(tail + n, sizeof(tail) - n, "%s1s",
		    i ? ", " : "");
	while (n < 4096)
		tail[n++] = ' ';
	tail[n] = '\0';
	snprintf(want, sizeof(want), "%s", strchr(tail, '=') + 2);
	while (want[0] != '\0' && want[strlen(want) - 1] == ' ')
		want[strlen(want) - 1] = '\0';
	snprintf(tail + n, sizeof(tail) - n, "\n");
	e = open_with("", "MD5", tail, &c);
	ok(strstr(e, "line too long") == NULL && strstr(e, "valid INI") ==
	    NULL, "a line of 4096 bytes is read (%s)", e);
	conf_free(c);
	c = NULL;

	/* 4097 bytes: refused, by its number. */
	memset(tail, 'x', 4097);
	memcpy(tail, "appid = ", 8);
	snprintf(tail + 4097, sizeof(tail) - 4097, "\n");
	e = open_with("", "MD5", tail, NULL);
	ok(strstr(e, "line 11: line too long (more than 4096 bytes)") != NULL,
	    "a line of 4097 bytes: \"line too long\", with its number");

	/* A long line that is no key = value. */
	memset(tail, 'x', 300);
	snprintf(tail + 300, sizeof(tail) - 300, "\n");
	e = open_with("", "MD5", tail, NULL);
	ok(strstr(e, "line 11: line too long for a section or a key") !=
	    NULL, "a long line without a key is "
	    "refused by its number: %s", e);

	/* Long comment and blank lines: nothing to read, nothing refused;
	 * the line after them keeps its number. */
	n = (size_t)snprintf(tail, sizeof(tail), "; ");
	while (n < 1000)
		n += (size_t)snprintf(tail + n, sizeof(tail) - n, "a comment ");
	n += (size_t)snprintf(tail + n, sizeof(tail) - n, "\n  # ");
	while (n < 1500)
		tail[n++] = '#';
	tail[n++] = '\n';
	memset(tail + n, ' ', 300);
	n += 300;
	snprintf(tail + n, sizeof(tail) - n, "\nbogus line\n");
	e = open_with("", "MD5", tail, NULL);
	ok(strstr(e, "too long") == NULL &&
	    strstr(e, "line 14: not a valid INI line") != NULL,
	    "comment lines of 1000 and 500 bytes, a blank one of 300: "
	    "skipped, the next line numbered (%s)", e);

	/* A long line's inline comment is no part of its value, however
	 * long either is; a ';' with no white space before it is. */
	n = (size_t)snprintf(want, sizeof(want), "https://api.example.com/a;b/");
	while (n < 229)
		want[n++] = 'p';
	want[n] = '\0';
	n = (size_t)snprintf(tail, sizeof(tail), "api_base = %s    ; ", want);
	while (n < 700)
		n += (size_t)snprintf(tail + n, sizeof(tail) - n, "see the "
		    "provider's docs; ");
	snprintf(tail + n, sizeof(tail) - n, "\n");
	e = open_with("", "MD5", tail, &c);
	pr = c != NULL ? conf_profile(c, "wxshop") : NULL;
	ok(pr != NULL && pr->api_base != NULL &&
	    strcmp(pr->api_base, want) == 0, "a value of 229 bytes and a "
	    "comment of 470: the value alone (%s)", e);
	conf_free(c);
	c = NULL;
	n = (size_t)snprintf(tail, sizeof(tail), "api_base = "
	    "https://api.example.com    ; ");
	while (n < 400)
		n += (size_t)snprintf(tail + n, sizeof(tail) - n, "more words ");
	snprintf(tail + n, sizeof(tail) - n, "\n");
	e = open_with("", "MD5", tail, &c);
	pr = c != NULL ? conf_profile(c, "wxshop") : NULL;
	ok(pr != NULL && pr->api_base != NULL &&
	    strcmp(pr->api_base, "https://api.example.com") == 0,
	    "a short value and a long comment: the value alone (%s)", e);
	conf_free(c);
	c = NULL;

	/* A ';' in a value (no white space before it: no comment) wherever
	 * the line is cut: a continuation line starting with one (or '#')
	 * would be a comment to inih, its piece of the value lost. */
	for (i = 0; i < 120; i++) {
		n = (size_t)snprintf(want, sizeof(want),
		    "https://api.example.com/");
		while (n < 150 + i)
			want[n++] = 'a';
		want[n++] = ';';
		while (n < 380)		/* api_base: at most 400 */
			want[n++] = 'b';
		want[n] = '\0';
		snprintf(tail, sizeof(tail), "api_base = %s\n", want);
		e = open_with("", "MD5", tail, &c);
		pr = c != NULL ? conf_profile(c, "wxshop") : NULL;
		if (pr == NULL || pr->api_base == NULL ||
		    strcmp(pr->api_base, want) != 0) {
			diag("%s: %s", e, pr != NULL && pr->api_base != NULL ?
			    pr->api_base : "(none)");
			break;
		}
		conf_free(c);
		c = NULL;
	}
	is_int((int)i, 120, "a ';' at bytes 150 to 269 of a long value is "
	    "kept, wherever the line is cut");
	conf_free(c);
	c = NULL;

	/* The lines after a long one keep their numbers. */
	memset(want, 'p', 300);
	memcpy(want, "https://api.example.com/", 24);
	want[300] = '\0';
	snprintf(tail, sizeof(tail), "api_base = %s\nbogus line\n", want);
	e = open_with("", "MD5", tail, NULL);
	ok(strstr(e, "line 12: not a valid INI line") != NULL, "the line "
	    "after a long one keeps its number: %s", e);
}

/* Bytes an editor or a copy may leave: a byte order mark, a NUL; and
 * several bad lines, each named. */
static void
test_odd_bytes(void)
{
	static struct conf_errs errs;
	struct conf *c = NULL;
	char path[600];
	size_t i, named;
	int rc;

	snprintf(path, sizeof(path), "%s/payhook.conf", dir);
	put("payhook.conf", 0644, "\xEF\xBB\xBF" PROFILE_FMT CORE_FMT,
	    "MD5", plugin_dir);
	memset(&errs, 0, sizeof(errs));
	rc = conf_open(path, &c, &errs);
	ok(rc == 0 && conf_profile(c, "wxshop") != NULL, "a byte order mark "
	    "before the first section: the section is read (%s)",
	    errs.n > 0 ? errs.line[0] : "");
	conf_free(c);
	c = NULL;
	put("payhook.conf", 0644, "\xEF\xBB\xBF" CORE_FMT PROFILE_FMT
	    "[core]\n", plugin_dir, "MD5");
	memset(&errs, 0, sizeof(errs));
	ok(conf_open(path, &c, &errs) != 0 && errs.n > 0 &&
	    strstr(errs.line[0], "twice") != NULL, "... and a section after "
	    "it given again is found twice: %s", errs.n > 0 ? errs.line[0] :
	    "");
	conf_free(c);
	c = NULL;
	put("payhook.conf", 0644, CORE_FMT PROFILE_FMT, plugin_dir, "MD5");
	{
		/* A NUL byte inside a line: the line is refused, not read up
		 * to it. */
		FILE *f = fopen(path, "a");

		fputs("[push.x]\nurl = https://a.example/", f);
		fputc('\0', f);
		fputs("junk\n", f);
		fclose(f);
	}
	memset(&errs, 0, sizeof(errs));
	rc = conf_open(path, &c, &errs);
	for (i = named = 0; i < errs.n; i++)
		named += strstr(errs.line[i], "line 12: a NUL byte") != NULL;
	ok(rc != 0 && named == 1, "a NUL byte in a line: refused, named by "
	    "its line");
	conf_free(c);
	c = NULL;
	{
		/* 256 profiles, then a push section given twice. */
		static char many[80000];
		size_t n = 0;

		for (i = 1; i < 256; i++)
			n += (size_t)snprintf(many + n, sizeof(many) - n,
			    "[profile.p%zu]\nplugin = wechat\nappid = "
			    "wx2421b1c4370ec43b\nmch_id = 10000100\n"
			    "api_key_file = keys/wechat.key\n", i);
		snprintf(many + n, sizeof(many) - n, "[push.a]\n[push.a]\n");
		put("payhook.conf", 0644, CORE_FMT PROFILE_FMT "%s",
		    plugin_dir, "MD5", many);
		memset(&errs, 0, sizeof(errs));
		rc = conf_open(path, &c, &errs);
		for (i = named = 0; i < errs.n; i++)
			named += strstr(errs.line[i], "section [push.a] is "
			    "given twice") != NULL;
		ok(rc != 0 && named == 1, "256 profiles, then [push.a] twice: "
		    "found twice");
		conf_free(c);
		c = NULL;
	}
	put("payhook.conf", 0644, CORE_FMT PROFILE_FMT "%s", plugin_dir,
	    "MD5", "bogus one\nbogus two\nbogus three\n");
	memset(&errs, 0, sizeof(errs));
	rc = conf_open(path, &c, &errs);
	for (i = named = 0; i < errs.n; i++)
		named += strstr(errs.line[i], "not a valid INI line") != NULL;
	ok(rc != 0 && named == 3, "three bad lines: each named (%zu)",
	    named);
	conf_free(c);
}

static void
test_suggestions(void)
{
	const char *e;

	e = open_with("map_sise_mb = 64\n", "MD5", "", NULL);
	ok(strstr(e, "unknown key \"map_sise_mb\" in [core]; did you mean "
	    "\"map_size_mb\"?") != NULL, "a mistyped core key: did you mean");
	e = open_with("", "MD5", "mchid = 10000100\n", NULL);
	ok(strstr(e, "unknown key \"mchid\" in [profile.wxshop] (plugin "
	    "wechat); did you mean \"mch_id\"?") != NULL, "a mistyped plugin "
	    "key: did you mean");
	e = open_with("", "MD5", "api_bsae = https://a.example\n", NULL);
	ok(strstr(e, "did you mean \"api_base\"?") != NULL, "a swapped "
	    "pair of letters in a profile key: did you mean");
	e = open_with("", "MD5", "completely_else = 1\n", NULL);
	ok(strstr(e, "unknown key") != NULL && strstr(e, "did you mean") ==
	    NULL, "nothing close: no suggestion");
}

int
main(void)
{
	const char *b = getenv("top_builddir");
	const struct conf_profile *pr;
	struct conf *c = NULL;
	const char *e;
	char path[600];

	char *abs;

	if (mkdtemp(dir) == NULL)
		return 1;
	abs = realpath(b != NULL ? b : ".", NULL);
	snprintf(plugin_dir, sizeof(plugin_dir), "%s/providers/.libs",
	    abs != NULL ? abs : ".");
	free(abs);
	snprintf(path, sizeof(path), "%s/keys", dir);
	mkdir(path, 0700);
	put("keys/api.token", 0600, "t0ken-for-the-merchant-api\n");
	put("keys/wechat.key", 0600, "192006250b4c09247ec02edce69f6a2d\n");
	/* A client certificate and keys as an operator may leave them. */
	put("keys/c.pem", 0644, "-----BEGIN CERTIFICATE-----\n");
	put("keys/c.key", 0600, "-----BEGIN PRIVATE KEY-----\n");
	put("keys/open.key", 0644, "-----BEGIN PRIVATE KEY-----\n");
	snprintf(path, sizeof(path), "%s/keys/link.key", dir);
	(void)!symlink("c.key", path);

	e = open_with("", "MD5", "client_cert_file = keys/c.pem\n"
	    "client_key_file = keys/c.key\n", NULL);
	is_str(e, "", "a client certificate and its key (0600)");
	e = open_with("", "MD5", "", &c);
	is_str(e, "", "a good configuration opens");
	if (c != NULL) {
		ok(strcmp(c->db_path + strlen(c->db_path) - 15,
		    "var/payhook.mdb") == 0 && c->db_path[0] == '/',
		    "db_path is made absolute, from the config's folder");
		is_int(c->map_size_mb, 256, "map_size_mb defaults to 256");
		is_int(c->max_body_bytes, 65536, "max_body_bytes defaults");
		is_str(c->base_path, "", "base_path defaults to /");
		ok(c->api_token_len == 26 &&
		    memcmp(c->api_token, "t0ken-for-the-merchant-api", 26) == 0,
		    "token read, final newline dropped");
		pr = conf_profile(c, "wxshop");
		ok(pr != NULL && pr->ctx != NULL &&
		    strcmp(pr->plugin->prov->name, "wechat") == 0,
		    "profile wxshop bound to the wechat plugin");
		ok(conf_profile(c, "other") == NULL, "no other profile");
		conf_free(c);
		c = NULL;
	}

	e = open_with("map_size_mb = 64\nmax_body_bytes = 2048\n"
	    "base_path = /pay/\nlog_level = debug\n", "HMAC-SHA256", "", &c);
	is_str(e, "", "all core keys accepted");
	if (c != NULL) {
		is_int(c->map_size_mb, 64, "map_size_mb read");
		is_int(c->max_body_bytes, 2048, "max_body_bytes read");
		is_str(c->base_path, "/pay", "base_path kept without slash");
		conf_free(c);
	}

	e = open_with("", "MD5", "", &c);
	if (c != NULL) {
		ok(c->ready_max_fill == 0.95, "ready_max_fill defaults to "
		    "0.95");
		is_int(c->log_format, LOG_FMT_LOGFMT, "log_format defaults "
		    "to logfmt");
		conf_free(c);
		c = NULL;
	}
	e = open_with("ready_max_fill = 0.5\nlog_format = json\n", "MD5", "",
	    &c);
	is_str(e, "", "ready_max_fill and log_format accepted");
	if (c != NULL) {
		ok(c->ready_max_fill == 0.5, "ready_max_fill read");
		is_int(c->log_format, LOG_FMT_JSON, "log_format read");
		conf_free(c);
		c = NULL;
	}
	e = open_with("ready_max_fill = 1\n", "MD5", "", NULL);
	is_str(e, "", "ready_max_fill = 1 accepted");
	{
		static const char *const bad[] = { "0", "0.0", "1.01", "95%",
		    "-0.5", ".", "", "0.9x", "1e-1" };
		char line[64];
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(line, sizeof(line), "ready_max_fill = %s\n",
			    bad[i]);
			e = open_with(line, "MD5", "", NULL);
			ok(strstr(e, "ready_max_fill") != NULL &&
			    strstr(e, "at most 1") != NULL,
			    "ready_max_fill = %s refused", bad[i]);
		}
	}
	e = open_with("log_format = xml\n", "MD5", "", NULL);
	ok(strstr(e, "log_format \"xml\" is not logfmt or json") != NULL,
	    "log_format = xml refused, naming the choices");

	e = open_with("", "MD5", "api_base = http://127.0.0.1:9\n", NULL);
	ok(strstr(e, "plain http") != NULL,
	    "plain http api_base refused without allow_insecure_http");
	e = open_with("", "MD5", "api_base = http://ops:s3cret@127.0.0.1:9/"
	    "v?token=t0k\n", NULL);
	ok(strstr(e, "http://127.0.0.1:9/v?...") != NULL &&
	    strstr(e, "s3cret") == NULL && strstr(e, "t0k") == NULL,
	    "... its message shows the URL without user, password or "
	    "query: %s", e);
	e = open_with("", "MD5", "api_base = http://127.0.0.1:9/\n"
	    "allow_insecure_http = yes\nquery_schedule = 1s, 2m,3h\n", &c);
	is_str(e, "", "... accepted with it");
	if (c != NULL) {
		pr = conf_profile(c, "wxshop");
		is_str(pr->api_base, "http://127.0.0.1:9", "api_base kept "
		    "without its trailing slash");
		ok(pr->nschedule == 3 && pr->schedule[0] == 1 &&
		    pr->schedule[1] == 120 && pr->schedule[2] == 10800,
		    "query_schedule read in seconds");
		conf_free(c);
		c = NULL;
	}
	e = open_with("", "MD5", "", &c);
	if (c != NULL) {
		pr = conf_profile(c, "wxshop");
		ok(pr->nschedule == 15 && pr->schedule[0] == 15 &&
		    pr->schedule[14] == 21600, "default schedule follows "
		    "WeChat's notification retries");
		ok(pr->api_base == NULL, "no api_base by default");
		conf_free(c);
		c = NULL;
	}
	refuses(bad_values, sizeof(bad_values) / sizeof(bad_values[0]));
	e = open_with("map_size_mb = 1\nmax_body_bytes = 2048\nbase_path = /\n"
	    "log_level = info\nca_file = x\nhttp_timeout_s = 5\n"
	    "http_connect_timeout_s = 5\nsweep_concurrency = 2\nlease_s = 9\n"
	    "lease_s = 10\n", "MD5", "", NULL);
	ok(strstr(e, "\"lease_s\" given twice") != NULL,
	    "duplicate core key refused after many others (%s)", e);
	refuses(bad_places, sizeof(bad_places) / sizeof(bad_places[0]));

	put("keys/wechat.key", 0644, "192006250b4c09247ec02edce69f6a2d");
	e = open_with("", "MD5", "", NULL);
	ok(strstr(e, "wechat.key") && strstr(e, "group or others") &&
	    strstr(e, "0644"), "group/other-readable key file refused");
	put("keys/wechat.key", 0600, "192006250b4c09247ec02edce69f6a2");
	e = open_with("", "MD5", "", NULL);
	ok(strstr(e, "refused it") != NULL, "plugin refuses a 31-char key");
	put("keys/wechat.key", 0600, "192006250b4c09247ec02edce69f6a2d");
	put("keys/api.token", 0640, "t0ken-for-the-merchant-api");
	e = open_with("", "MD5", "", NULL);
	ok(strstr(e, "api.token") && strstr(e, "group or others"),
	    "group-readable token file refused");
	put("keys/api.token", 0600, "t0ken-for-the-merchant-api");

	test_long_lines();
	test_odd_bytes();
	test_suggestions();

	snprintf(path, sizeof(path), "%s/nowhere.conf", dir);
	{
		struct conf_errs errs;

		memset(&errs, 0, sizeof(errs));
		/* Its callers name the file (payhook: FILE: ...), once. */
		ok(conf_open(path, &c, &errs) == -1 && errs.n == 1 &&
		    strstr(errs.line[0], "cannot be opened") != NULL &&
		    strstr(errs.line[0], "nowhere.conf") == NULL,
		    "a missing config file: \"cannot be opened\", the name "
		    "left to its caller");
	}
	th_scratch_remove(dir);
	return done_testing();
}
