/*
 * payhook.fcgi: the FastCGI responder.  One process serves one request at
 * a time; the web server runs several.  Configuration, plugins and the
 * store are opened once at start, after the web server has forked us.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include <payhook/sdk.h>

#include "store/archive.h"
#include "jobs/certs.h"
#include "conf/conf.h"
#include "web/fc.h"
#include "jobs/http.h"
#include "ledger/ledger.h"
#include "ops/text.h"
#include "ops/metrics.h"
#include "ops/log.h"
#include "ops/version.h"
#include "store/store.h"

#define MAIN_HEADERS_MAX 100

static volatile sig_atomic_t main_stop, main_busy;

/*
 * Idle (blocked in accept, no transaction open) we leave at once; in the
 * middle of a request we finish it first, so an answer is never cut off
 * after the store committed.
 */
static void
main_on_term(int sig)
{
	(void)sig;
	if (!main_busy)
		_exit(0);
	main_stop = 1;
}

/* "HTTP_WECHATPAY_SIGNATURE" -> "Wechatpay-Signature" into buf. */
static const char *
main_header_name(const char *env, size_t n, char *buf, size_t cap)
{
	size_t i;
	int up = 1;

	if (n + 1 > cap)
		return NULL;
	for (i = 0; i < n; i++) {
		char c = env[i];

		if (c == '_') {
			buf[i] = '-';
			up = 1;
			continue;
		}
		if (c >= 'A' && c <= 'Z' && !up)
			c = (char)(c - 'A' + 'a');
		buf[i] = c;
		up = 0;
	}
	buf[n] = '\0';
	return buf;
}

/* The FastCGI parameters a request is served with. */
struct main_params {
	const char *method, *uri, *content_type, *content_length;
	const char *authorization, *remote_addr, *request_id;
};

#define MAIN_PARAM(name, field) \
	{ name, sizeof(name) - 1, offsetof(struct main_params, field) }

static const struct {
	const char *name;
	size_t len;
	size_t at;
} main_param_names[] = {
	MAIN_PARAM("REQUEST_METHOD", method),
	MAIN_PARAM("REQUEST_URI", uri),
	MAIN_PARAM("CONTENT_TYPE", content_type),
	MAIN_PARAM("CONTENT_LENGTH", content_length),
	MAIN_PARAM("HTTP_AUTHORIZATION", authorization),
	MAIN_PARAM("REMOTE_ADDR", remote_addr),
	MAIN_PARAM("HTTP_X_REQUEST_ID", request_id),
};

/*
 * Collects the parameters and the request headers from the FastCGI
 * environment in one pass (FCGX_GetParam searches it from the start at
 * each call).  names holds the rewritten header names; headers point into
 * it and into envp (MAIN_HEADERS_MAX + 1 of each).  *over when there were
 * more than MAIN_HEADERS_MAX: the request is refused, never read with some
 * of its headers left out (an Idempotency-Key among them).  CONTENT_LENGTH
 * is kept but not counted: the web server sets it whether or not the
 * client sent the header (lighttpd: 0 for a GET).
 */
static size_t
main_headers(char **envp, struct main_params *p, struct ph_header *headers,
    char names[][128], int *over)
{
	size_t n = 0, counted = 0, len, i;
	const char *eq, *name;
	char **e;
	int length;

	memset(p, 0, sizeof(*p));
	*over = 0;
	for (e = envp; *e != NULL; e++) {
		if ((eq = strchr(*e, '=')) == NULL)
			continue;
		len = (size_t)(eq - *e);
		for (i = 0; i < sizeof(main_param_names) /
		    sizeof(main_param_names[0]); i++)
			if (main_param_names[i].len == len &&
			    memcmp(main_param_names[i].name, *e, len) == 0) {
				const char **v = (const char **)(void *)
				    ((char *)p + main_param_names[i].at);

				if (*v == NULL)		/* the first, as ever */
					*v = eq + 1;
				break;
			}
		name = NULL;
		length = len == 14 && memcmp(*e, "CONTENT_LENGTH", 14) == 0;
		if (!length && counted >= MAIN_HEADERS_MAX) {
			*over |= (len > 5 && memcmp(*e, "HTTP_", 5) == 0) ||
			    (len == 12 && memcmp(*e, "CONTENT_TYPE", 12) == 0);
			continue;
		}
		if (len > 5 && memcmp(*e, "HTTP_", 5) == 0)
			name = main_header_name(*e + 5, len - 5, names[n],
			    sizeof(names[n]));
		else if (len == 12 && memcmp(*e, "CONTENT_TYPE", 12) == 0)
			name = "Content-Type";
		else if (length)
			name = "Content-Length";
		if (name == NULL)
			continue;
		headers[n].name = name;
		headers[n].value = eq + 1;
		n++;
		counted += !length;
	}
	return n;
}

/*
 * Reads exactly CONTENT_LENGTH bytes of body, never more than max.
 * Returns 1 when the declared length is over max (nothing is read), 0 when
 * read, -1 on a malformed length or a short read.  *body is malloc'd
 * (caller frees).
 */
static int
main_read_body(FCGX_Request *r, const char *cl, size_t max,
    unsigned char **body, size_t *len)
{
	unsigned long long want = 0;
	unsigned char *buf;
	size_t got = 0;
	int n;

	*body = NULL;
	*len = 0;
	if (cl != NULL && *cl != '\0') {
		const char *p;

		for (p = cl; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			if (want > max)
				return 1;
			want = want * 10 + (unsigned)(*p - '0');
		}
		if (want > max)
			return 1;
	}
	/* Without CONTENT_LENGTH there is no body: libfcgi does not delimit
	 * stdin for us, so reading on would trust the peer. */
	if ((buf = malloc((size_t)want + 1)) == NULL)
		return -1;
	while (got < want) {
		n = FCGX_GetStr((char *)buf + got, (int)(want - got), r->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != want) {	/* truncated: never half a notification */
		free(buf);
		return -1;
	}
	buf[got] = '\0';
	*body = buf;
	*len = got;
	return 0;
}

/* Writes the response, its head put together by hand: snprintf cost as
 * much as the rest of an order read's answer. */
static void
main_write(FCGX_Request *r, const struct web_request *req,
    const struct web_response *resp)
{
	char head[640], status[TEXT_INT_MAX], length[TEXT_INT_MAX];
	char retry[TEXT_INT_MAX];
	int ct = resp->content_type[0] != '\0', allow = resp->allow[0] != '\0';
	/* Every 503 says when to try again, whichever way it was made. */
	int after = resp->retry_after > 0 ? resp->retry_after :
	    resp->status == 503 ? WEB_RETRY_AFTER_S : 0;
	int again = after > 0;
	size_t n;

	text_int(status, resp->status);
	text_int(length, (long long)resp->body.len);
	text_int(retry, after);
	n = text_cat(head, sizeof(head), "Status: ", status, " ",
	    web_status_text(resp->status), "\r\n",
	    ct ? "Content-Type: " : "", resp->content_type, ct ? "\r\n" : "",
	    allow ? "Allow: " : "", resp->allow, allow ? "\r\n" : "",
	    resp->status == 401 ? "WWW-Authenticate: Bearer "
	    "realm=\"payhook\"\r\n" : "",
	    resp->replayed ? "Idempotent-Replayed: true\r\n" : "",
	    again ? "Retry-After: " : "", again ? retry : "",
	    again ? "\r\n" : "",
	    "X-Request-Id: ", req->request_id, "\r\n"
	    "Cache-Control: no-store\r\nContent-Length: ", length,
	    "\r\n\r\n", (char *)NULL);
	if (n >= sizeof(head))
		return;
	/*
	 * The streams are closed here, stderr (never written) first: closing
	 * stdout last puts the answer, its end and the end of the request in
	 * one write(2), where a flush and FCGX_Finish_r would take two, and
	 * still tells whether the answer went out.  FCGX_Finish_r then finds
	 * both closed.
	 */
	if (FCGX_PutStr(head, (int)n, r->out) != (int)n ||
	    (resp->body.len > 0 && FCGX_PutStr(resp->body.data,
	    (int)resp->body.len, r->out) != (int)resp->body.len) ||
	    FCGX_FClose(r->err) != 0 || FCGX_FClose(r->out) != 0)
		log_warn("response of status %d could not be written: the "
		    "client went away", resp->status);
}

/*
 * The level of a request's line: what its handler says, and at least warn
 * for an answer of 5xx and for a caller refused its token.
 */
static enum log_level
main_level(const struct web_response *resp)
{
	enum log_level l = (enum log_level)resp->note.level;

	if ((resp->status >= 500 || resp->status == 401) && l > LOG_LVL_WARN)
		l = LOG_LVL_WARN;
	return l;
}

/* One log line and the counters for every request. */
static void
main_log(const struct web_request *req, const struct web_response *resp,
    struct timespec started)
{
	char path[300], labels[96], status[TEXT_INT_MAX], *q;
	struct log_line l;
	struct timespec end;
	long long ns;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &end);
	ns = (long long)(end.tv_sec - started.tv_sec) * 1000000000LL +
	    (end.tv_nsec - started.tv_nsec);
	ms = (double)ns / 1e6;
	/* The path without its query string: nothing is logged that need
	 * not be. */
	ph_strlcpy(path, req->uri != NULL ? req->uri : "", sizeof(path));
	if ((q = strchr(path, '?')) != NULL)
		*q = '\0';
	log_line_init(&l, main_level(resp), "request");
	log_line_str(&l, "client", req->remote_addr);
	log_line_str(&l, "method", req->method);
	log_line_str(&l, "path", path);
	log_line_str(&l, "route", resp->note.route);
	log_line_str(&l, "profile", resp->note.profile);
	log_line_str(&l, "order_id", resp->note.order_id);
	log_line_str(&l, "outcome", resp->note.outcome);
	log_line_int(&l, "status", resp->status);
	log_line_fixed(&l, "duration_ms", (ns + 50000) / 100000, 1);
	if (resp->note.reason[0] != '\0')
		log_line_str(&l, "reason", resp->note.reason);
	log_line_write(&l);

	text_int(status, resp->status);
	text_cat(labels, sizeof(labels), "route=", resp->note.route,
	    "&status=", status, (char *)NULL);
	metrics_add("payhook_requests_total", labels, 1);
	text_cat(labels, sizeof(labels), "route=", resp->note.route,
	    (char *)NULL);
	metrics_observe("payhook_request_duration_seconds", labels, ms / 1e3);
	if (resp->note.acked && resp->note.profile[0] != '\0') {
		/* How long providers wait for their acknowledgement: a
		 * refusal or a retry answer is none. */
		text_cat(labels, sizeof(labels), "profile=",
		    resp->note.profile, (char *)NULL);
		metrics_observe("payhook_notify_ack_seconds", labels, ms / 1e3);
	}
}

static void
main_serve(struct web_ctx *ctx, FCGX_Request *r)
{
	static struct ph_header headers[MAIN_HEADERS_MAX + 1];
	static char names[MAIN_HEADERS_MAX + 1][128];
	char request_id[WEB_REQUEST_ID_MAX + 1];
	struct web_request req;
	struct web_response resp;
	unsigned char *body = NULL;
	struct timespec started;
	struct main_params p;
	int rc, over;

	clock_gettime(CLOCK_MONOTONIC, &started);
	memset(&req, 0, sizeof(req));
	req.nheaders = main_headers(r->envp, &p, headers, names, &over);
	req.headers = headers;
	/* Every line of this request carries its id, until main_log's. */
	web_request_id(p.request_id, request_id);
	req.request_id = request_id;
	log_request_begin(request_id);
	req.method = p.method;
	req.uri = p.uri;
	req.content_type = p.content_type != NULL ? p.content_type : "";
	req.authorization = p.authorization;
	req.remote_addr = p.remote_addr != NULL ? p.remote_addr : "";
	req.now = (int64_t)time(NULL);
	web_response_init(&resp);

	if (req.method == NULL || req.uri == NULL) {
		web_error(&resp, 400, "bad_request",
		    "the web server passed no REQUEST_METHOD or REQUEST_URI");
	} else if (over) {
		web_error(&resp, 431, "too_many_headers", "more than %d "
		    "request headers", MAIN_HEADERS_MAX);
	} else if ((rc = main_read_body(r, p.content_length,
	    ctx->conf->max_body_bytes, &body, &req.body_len)) == -1) {
		web_error(&resp, 400, "bad_request",
		    "the request body could not be read");
	} else {
		req.body_too_big = rc == 1;
		req.body = body != NULL ? body : (const unsigned char *)"";
		fc_handle(ctx, &req, &resp);
	}
	/* Logged before the answer leaves: whoever reads the answer finds
	 * why in the log already (duration_ms is the handling, not the
	 * write; a write that fails logs a line of its own). */
	main_log(&req, &resp, started);
	main_write(r, &req, &resp);
	log_request_end();
	web_response_free(&resp);
	free(body);
}

/* Said at start: /readyz refuses traffic while it lasts. */
static void
main_clock_check(struct store *s)
{
	char why[128];

	if (store_clock_off(s, why, sizeof(why)) == 1)
		log_warn("%s: other hosts' leases and holds would not hold "
		    "here; GET /readyz answers 503 until the time is set right",
		    why);
}

int
main(int argc, char **argv)
{
	static const char usage[] = "usage: payhook.fcgi [--version | --help]\n"
	    "\n"
	    "The web server runs it (FastCGI) with the configuration file in\n"
	    "PAYHOOK_CONFIG; see payhook.fcgi(8).\n";
	struct conf_errs errs;
	struct store_spec spec;
	struct ph_diag diag;
	struct web_ctx ctx;
	struct sigaction sa;
	FCGX_Request r;
	const char *path;
	char line[128];
	size_t i;
	int rc;

	/* The web server starts us without arguments; these are for people.
	 * 64 is sysexits' EX_USAGE, as for payhook(1). */
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		version_line(line, sizeof(line), "payhook.fcgi");
		printf("%s\n", line);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc > 1) {
		/* The first argument that is not an option alone. */
		fprintf(stderr, "payhook.fcgi: unknown argument %s\n%s",
		    argc > 2 && (strcmp(argv[1], "--version") == 0 ||
		    strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "-h") == 0) ? argv[2] : argv[1], usage);
		return 64;
	}
	log_init("payhook.fcgi", LOG_LVL_INFO);
	if ((path = getenv("PAYHOOK_CONFIG")) == NULL || *path == '\0') {
		log_err("PAYHOOK_CONFIG is not set: the web server must pass "
		    "the configuration file's path in it");
		return 1;
	}
	memset(&errs, 0, sizeof(errs));
	memset(&ctx, 0, sizeof(ctx));
	rc = conf_open(path, &ctx.conf, &errs);
	for (i = 0; i < errs.n; i++)
		log_msg(errs.warning[i] ? LOG_LVL_WARN : LOG_LVL_ERROR,
		    "%s: %s", path, errs.line[i]);
	if (rc != 0) {
		log_err("%s: configuration refused, not serving", path);
		return 1;
	}
	log_set_level(ctx.conf->log_level);
	log_set_format(ctx.conf->log_format);
	memset(&diag, 0, sizeof(diag));
	conf_store_spec(ctx.conf, &spec);
	spec.pg_interactive = 1;	/* a provider waits seconds */
	/* Never STORE_OPEN_CREATE: payhook check makes a PostgreSQL store's
	 * tables; a server that made or altered them could race another
	 * host's. */
	if (ledger_open_spec(&spec, 0, &ctx.store, &diag) != PH_OK) {
		log_err("%s", diag.msg);
		conf_free(ctx.conf);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* Finish the request in hand, then leave: no transaction is ever
	 * open between requests, so stopping between them loses nothing. */
	sa.sa_handler = main_on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	if (http_global_init() != PH_OK || FCGX_Init() != 0 ||
	    FCGX_InitRequest(&r, 0, 0) != 0) {
		log_err("FastCGI initialisation failed");
		store_close(ctx.store);
		conf_free(ctx.conf);
		return 1;
	}
	if (ledger_counts_init(ctx.store) != PH_OK)
		log_warn("database %s: orders could not be counted per state",
		    ctx.conf->db_path);
	main_clock_check(ctx.store);
	/* The shared counters live beside the database. */
	metrics_open_beside(ctx.conf->db_path);
	{
		struct archive_limits lim;

		conf_archive_limits(ctx.conf, &lim);
		archive_open(ctx.conf->db_path, &lim);
	}
	certs_warn_daily(ctx.conf, ctx.store, (int64_t)time(NULL));
	log_info("serving %zu profile(s), database %s", ctx.conf->nprofiles,
	    store_where(ctx.store));
	while (!main_stop && FCGX_Accept_r(&r) >= 0) {
		main_busy = 1;
		metrics_follow((int64_t)time(NULL));
		main_serve(&ctx, &r);
		FCGX_Finish_r(&r);
		main_busy = 0;
	}
	FCGX_Free(&r, 1);
	store_close(ctx.store);
	conf_free(ctx.conf);
	return 0;
}
