/*
 * The front controller without a web server: routing below base_path,
 * methods, authentication, the merchant API's validation, and a signed
 * notification through the real wechat plugin into a real store.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ops/log.h"
#include "ops/metrics.h"
#include "store/archive.h"
#include "web/fc.h"
#include "../../lib/helpers.h"
#include "../../lib/tap.h"

#define TOKEN "t0ken-for-the-merchant-api"
#define WXKEY "192006250b4c09247ec02edce69f6a2d"

static char dir[] = "/tmp/payhook-fc-XXXXXX";
static struct web_ctx ctx;

static void
put(const char *name, mode_t mode, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static struct web_response resp;

/* Hands fc_handle a request with the nh headers h; resp holds the answer,
 * its status returned. */
static int
call_with(const char *method, const char *uri, const char *auth,
    const char *body, const struct ph_header *h, size_t nh)
{
	struct web_request req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.uri = uri;
	req.content_type = "application/json";
	req.authorization = auth;
	req.body = (const unsigned char *)(body != NULL ? body : "");
	req.body_len = body != NULL ? strlen(body) : 0;
	req.headers = h;
	req.nheaders = nh;
	req.now = 1764500000;
	web_response_free(&resp);
	web_response_init(&resp);
	fc_handle(&ctx, &req, &resp);
	return resp.status;
}

static int
call(const char *method, const char *uri, const char *auth, const char *body)
{
	return call_with(method, uri, auth, body, NULL, 0);
}

#define AUTH "Bearer " TOKEN

/* A call with one Idempotency-Key header. */
static int
call_key(const char *method, const char *uri, const char *key,
    const char *body)
{
	struct ph_header h = { "Idempotency-Key", key };

	return call_with(method, uri, AUTH, body, &h, 1);
}

static const char *
field(const char *name)
{
	static char buf[256];
	json_t *j = json_loadb(resp.body.data, resp.body.len, 0, NULL);
	json_t *v = json_object_get(j, name);

	if (json_is_string(v))
		snprintf(buf, sizeof(buf), "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "%lld",
		    (long long)json_integer_value(v));
	else
		snprintf(buf, sizeof(buf), "(none)");
	json_decref(j);
	return buf;
}


/* A WeChat v2 notification signed with MD5 by hand. */
static void
notification(char *out, size_t cap, const char *order, const char *txn,
    const char *fee)
{
	char sign_src[1024], hex[33];
	unsigned char md[16];

	snprintf(sign_src, sizeof(sign_src),
	    "appid=wx2421b1c4370ec43b&bank_type=CFT&cash_fee=%s&fee_type=CNY"
	    "&mch_id=10000100&nonce_str=n0nce&openid=o1&out_trade_no=%s"
	    "&result_code=SUCCESS&return_code=SUCCESS&time_end=20261130183000"
	    "&total_fee=%s&trade_type=JSAPI&transaction_id=%s&key=" WXKEY,
	    fee, order, fee, txn);
	ph_md5(sign_src, strlen(sign_src), md);
	ph_hex_upper(md, sizeof(md), hex);
	snprintf(out, cap, "<xml><appid><![CDATA[wx2421b1c4370ec43b]]></appid>"
	    "<bank_type>CFT</bank_type><cash_fee>%s</cash_fee>"
	    "<fee_type>CNY</fee_type><mch_id>10000100</mch_id>"
	    "<nonce_str>n0nce</nonce_str><openid>o1</openid>"
	    "<out_trade_no>%s</out_trade_no><result_code>SUCCESS</result_code>"
	    "<return_code>SUCCESS</return_code><sign>%s</sign>"
	    "<time_end>20261130183000</time_end><total_fee>%s</total_fee>"
	    "<trade_type>JSAPI</trade_type><transaction_id>%s</transaction_id>"
	    "</xml>", fee, order, hex, fee, txn);
}

/* A GET of uri (with auth, or NULL) and the status it must answer. */
struct want_status {
	const char *uri, *auth;
	int status;
	const char *what;
};

/* The event feed's bounds, once the feed has one event. */
static const struct want_status feed_reads[] = {
	{ "/events?after=x", AUTH, 400, "events: bad after" },
	{ "/events?limit=0", AUTH, 400, "events: limit 0" },
	{ "/events?limit=1001", AUTH, 400, "events: limit over 1000" },
	{ "/events?after=1", AUTH, 200, "events after the last" },
};

/* Paths with base_path set to /pay. */
static const struct want_status below_pay[] = {
	{ "/pay/healthz", NULL, 200, "below base_path: found" },
	{ "/healthz", NULL, 404, "outside base_path: 404" },
	{ "/payhealthz", NULL, 404,
	    "a prefix that is not a path segment: 404" },
	{ "/pay/orders/N1", AUTH, 200, "merchant API below base_path" },
	/* A request target in absolute form, as Apache passes it. */
	{ "http://127.0.0.1:8080/pay/healthz", NULL, 200,
	    "absolute form: routed by its path" },
	{ "HTTPS://shop.example/pay/orders/N1?x=1", AUTH, 200,
	    "absolute form, https, a query: routed by its path" },
	{ "http://shop.example/healthz", NULL, 404,
	    "absolute form outside base_path: 404" },
	{ "http://shop.example", NULL, 404, "absolute form without a path: "
	    "404" },
};

/* One test point for each of the n GETs w. */
static void
statuses(const struct want_status *w, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		is_int(call("GET", w[i].uri, w[i].auth, NULL), w[i].status,
		    "%s", w[i].what);
}

static void
test_routes(void)
{
	struct web_request req;

	is_int(call("GET", "/healthz", NULL, NULL), 200, "healthz");
	is_str(field("status"), "ok", "... says ok");
	is_int(call("POST", "/healthz", NULL, NULL), 405, "POST healthz: 405");
	is_str(resp.allow, "GET, HEAD", "... with Allow");
	is_int(call("GET", "/nope", NULL, NULL), 404, "unknown route: 404");
	is_str(field("error"), "not_found", "... as JSON");
	is_int(call("POST", "/notify/nope", NULL, "<xml/>"), 404,
	    "unknown profile: 404");
	is_str(field("error"), "unknown_profile", "... named so");
	is_int(call("GET", "/notify/wxshop", NULL, NULL), 405,
	    "GET on a notify route: 405");
	is_int(call("GET", "/orders/A1", NULL, NULL), 401, "no token: 401");
	is_int(call("GET", "/orders/A1", "Bearer wrong", NULL), 401,
	    "wrong token: 401");
	is_int(call("GET", "/orders/A1", "Basic " TOKEN, NULL), 401,
	    "other scheme: 401");
	is_int(call("GET", "/orders/A1", "Bearer " TOKEN "x", NULL), 401,
	    "token with a suffix: 401");
	is_int(call("GET", "/orders/A1", AUTH, NULL), 404,
	    "right token, unknown order: 404");
	is_int(call("GET", "/orders/A1?x=1", "bearer " TOKEN, NULL), 404,
	    "scheme is case-insensitive; query string ignored");
	is_int(call("DELETE", "/orders", AUTH, NULL), 405, "DELETE /orders");
	is_int(call("GET", "/orders/a/b", AUTH, NULL), 404, "nested path: 404");
	is_int(call("POST", "/orders/", AUTH, NULL), 404,
	    "POST /orders/ (an empty id): 404, not 405 naming GET");
	is_int(call("POST", "/refunds/", AUTH, NULL), 404,
	    "POST /refunds/: 404");
	is_int(call("POST", "/orders//refunds", AUTH, NULL), 404,
	    "POST /orders//refunds: 404");

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.uri = "/notify/wxshop";
	req.body = (const unsigned char *)"";
	req.body_too_big = 1;
	web_response_free(&resp);
	web_response_init(&resp);
	fc_handle(&ctx, &req, &resp);
	is_int(resp.status, 413, "oversized body: 413");
}

static void
test_orders(void)
{
	is_int(call("POST", "/orders", AUTH, "{\"order_id\":\"A-1\","
	    "\"amount\":100,\"currency\":\"CNY\",\"profile\":\"wxshop\"}"),
	    201, "order created: 201");
	is_str(field("state"), "PENDING", "... PENDING");
	is_str(field("amount"), "100", "... amount as an integer");
	is_int(call("POST", "/orders", AUTH, "{\"order_id\":\"A-1\","
	    "\"amount\":100,\"currency\":\"CNY\",\"profile\":\"wxshop\"}"),
	    200, "same order again: 200");
	is_int(call("POST", "/orders", AUTH, "{\"order_id\":\"A-1\","
	    "\"amount\":200,\"currency\":\"CNY\",\"profile\":\"wxshop\"}"),
	    409, "same id, other amount: 409");
	is_int(call("GET", "/orders/A%2D1", AUTH, NULL), 200,
	    "GET with a percent-escaped id");
	is_str(field("order_id"), "A-1", "... decoded");

	static const struct {
		const char *body, *what;
	} bad[] = {
		{ "{\"order_id\":\"B\",\"amount\":12.5,\"currency\":\"CNY\","
		    "\"profile\":\"wxshop\"}", "a fractional amount" },
		{ "{\"order_id\":\"B\",\"amount\":\"12\",\"currency\":\"CNY\","
		    "\"profile\":\"wxshop\"}", "an amount as a string" },
		{ "{\"order_id\":\"B\",\"amount\":0,\"currency\":\"CNY\","
		    "\"profile\":\"wxshop\"}", "a zero amount" },
		{ "{\"order_id\":\"B\",\"amount\":-5,\"currency\":\"CNY\","
		    "\"profile\":\"wxshop\"}", "a negative amount" },
		{ "{\"order_id\":\"B\",\"currency\":\"CNY\","
		    "\"profile\":\"wxshop\"}", "no amount" },
		{ "{\"order_id\":\"B\",\"amount\":1,\"currency\":\"cny\","
		    "\"profile\":\"wxshop\"}", "a lowercase currency" },
		{ "{\"order_id\":\"B\",\"amount\":1,\"currency\":\"CNY\","
		    "\"profile\":\"nope\"}", "an unknown profile" },
		{ "{\"order_id\":\"B B\",\"amount\":1,\"currency\":\"CNY\","
		    "\"profile\":\"wxshop\"}", "a space in the id" },
		{ "{\"order_id\":\"B\",\"amount\":1,\"currency\":\"CNY\","
		    "\"profile\":\"wxshop\",\"colour\":1}", "an unknown field" },
		{ "{\"order_id\":\"B\",\"order_id\":\"C\",\"amount\":1,"
		    "\"currency\":\"CNY\",\"profile\":\"wxshop\"}",
		    "a duplicate key" },
		{ "{\"order_id\":", "truncated JSON" },
		{ "[1,2]", "an array" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(call("POST", "/orders", AUTH, bad[i].body), 400,
		    "400 for %s", bad[i].what);
	}
	is_int(call("GET", "/orders/B", AUTH, NULL), 404,
	    "none of them created anything");

	/* Provider attempt data, under any of its names. */
	is_int(call("POST", "/orders", AUTH, "{\"order_id\":\"U-1\","
	    "\"amount\":1,\"currency\":\"CNY\",\"profile\":\"wxshop\","
	    "\"attempt_data\":{\"txnTime\":\"20261130153000\"}}"), 201,
	    "order with attempt_data: 201");
	ok(strstr(resp.body.data, "\"txnTime\":\"20261130153000\"") != NULL,
	    "... kept on its first attempt");
	is_int(call("POST", "/orders", AUTH, "{\"order_id\":\"U-2\","
	    "\"amount\":1,\"currency\":\"CNY\",\"profile\":\"wxshop\","
	    "\"attempt\":{\"a\":1},\"data\":{\"b\":2}}"), 400,
	    "attempt data under two names: 400");
	is_int(call("POST", "/orders", AUTH, "{\"order_id\":\"U-3\","
	    "\"amount\":1,\"currency\":\"CNY\",\"profile\":\"wxshop\","
	    "\"attempt\":[1]}"), 400, "attempt data not an object: 400");
}

static void
test_idempotency(void)
{
	static const char *const body = "{\"order_id\":\"K-1\",\"amount\":5,"
	    "\"currency\":\"CNY\",\"profile\":\"wxshop\"}";
	char long_key[300], first[1024];

	is_int(call_key("POST", "/orders", "", body), 400, "an empty "
	    "Idempotency-Key: 400");
	is_str(field("error"), "invalid_idempotency_key",
	    "... invalid_idempotency_key");
	memset(long_key, 'k', 256);
	long_key[256] = '\0';
	is_int(call_key("POST", "/orders", long_key, body), 400,
	    "a key of 256 characters: 400");
	is_int(call_key("POST", "/orders", "line\nbreak", body), 400,
	    "a key with a control character: 400");
	long_key[255] = '\0';
	is_int(call_key("POST", "/orders", long_key, body), 201,
	    "a key of 255 printable characters: the call runs");
	snprintf(first, sizeof(first), "%s", resp.body.data);
	ok(!resp.replayed, "... not a replay");
	is_int(call_key("POST", "/orders", long_key, body), 201, "again: the "
	    "same status");
	ok(resp.replayed && strcmp(resp.body.data, first) == 0,
	    "... the same bytes, replayed");
	is_int(call_key("POST", "/orders", long_key, "{\"order_id\":\"K-2\","
	    "\"amount\":5,\"currency\":\"CNY\",\"profile\":\"wxshop\"}"),
	    422, "the key with another body: 422");
	is_str(field("error"), "idempotency_key_reused",
	    "... idempotency_key_reused");
	is_int(call_key("POST", "/orders/K-1/refunds", "r-1",
	    "{\"amount\":1}"), 409, "a refund of an unpaid order: 409");
	is_int(call_key("POST", "/orders/K-1/refunds", "r-1",
	    "{\"amount\":1}"), 409, "... kept: the same again");
	ok(resp.replayed, "... replayed");
	is_int(call_key("GET", "/orders/K-1", "r-2", NULL), 200,
	    "a key on a read is ignored");
	ok(!resp.replayed, "... nothing replayed");
}

static void
test_notify(void)
{
	char body[4096];

	call("POST", "/orders", AUTH, "{\"order_id\":\"N1\",\"amount\":1,"
	    "\"currency\":\"CNY\",\"profile\":\"wxshop\"}");
	notification(body, sizeof(body), "N1", "4200000001", "1");
	is_int(call("POST", "/notify/wxshop", NULL, body), 200,
	    "signed notification: 200");
	ok(resp.body.len > 0 && strcmp(resp.body.data,
	    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg>"
	    "<![CDATA[OK]]></return_msg></xml>") == 0, "... SUCCESS ack");
	call("GET", "/orders/N1", AUTH, NULL);
	is_str(field("state"), "PAID", "... order PAID");
	is_str(field("provider_txn_id"), "4200000001", "... by the txn");

	is_int(call("POST", "/notify/wxshop", NULL, body), 200, "again: 200");
	ok(strstr(resp.body.data, "SUCCESS") != NULL, "... SUCCESS again");
	call("GET", "/events?after=0&limit=10", AUTH, NULL);
	is_str(field("next"), "1", "one event in the feed");

	/* Another transaction id under the old signature. */
	strstr(body, "4200000001</transaction_id>")[9] = '2';
	call("POST", "/notify/wxshop", NULL, body);
	ok(strstr(resp.body.data, "FAIL") != NULL, "tampered: FAIL ack");
	is_int(resp.note.level, LOG_LVL_WARN, "... its line at warn");
	ok(strstr(resp.note.reason, "signature") != NULL, "... saying why "
	    "(%s)", resp.note.reason);
	call("GET", "/orders/N1", AUTH, NULL);
	is_str(field("provider_txn_id"), "4200000001", "... order unchanged");
	call("GET", "/events?after=0", AUTH, NULL);
	is_str(field("next"), "1", "... nothing new in the feed");

	statuses(feed_reads, sizeof(feed_reads) / sizeof(feed_reads[0]));
	is_str(field("next"), "1", "... next stays");
}

/* The reasons of a /readyz answer, joined by '|'. */
static const char *
reasons(void)
{
	static char buf[2048];
	json_t *j = json_loadb(resp.body.data, resp.body.len, 0, NULL), *r;
	size_t i, o = 0;

	buf[0] = '\0';
	json_array_foreach(json_object_get(j, "reasons"), i, r)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s|",
		    json_string_value(r));
	json_decref(j);
	return buf;
}

/* A plugin whose acknowledgement breaks HTTP's grammar. */
static void
bad_ack(void *pctx, enum ph_ack_kind kind, const char *reason,
    struct ph_response *out)
{
	(void)pctx;
	(void)kind;
	(void)reason;
	out->status = 99999;
	strcpy(out->content_type, "text/plain\r\nSet-Cookie: x=1");
	memcpy(out->body, "ok", 2);
	out->body_len = 2;
}

/* What a plugin's answer puts in the head is held to HTTP's grammar. */
static void
test_bad_ack(void)
{
	struct conf_profile *pr = (struct conf_profile *)conf_profile(ctx.conf,
	    "wxshop");
	const struct loader_plugin *was = pr->plugin;
	struct loader_plugin fake = *was;
	struct ph_provider prov = *was->prov;

	prov.ack = bad_ack;
	fake.prov = &prov;
	pr->plugin = &fake;
	call("POST", "/notify/wxshop", NULL, "<xml><bad/></xml>");
	is_int(resp.status, 500, "a plugin's answer with status 99999: 500");
	is_str(resp.content_type, "", "... a content type with a line break "
	    "in it is not sent");
	pr->plugin = was;
}

static void
test_ready(void)
{
	char path[700];
	struct archive_limits lim;

	/* Neither the metrics file nor the archive is open yet. */
	is_int(call("GET", "/readyz", NULL, NULL), 503,
	    "readyz without metrics or archive: 503, no token needed");
	is_str(field("status"), "not_ready", "... not_ready");
	ok(strstr(reasons(), "metrics_not_writable: ") != NULL,
	    "... the metrics file is a reason (%s)", reasons());
	ok(strstr(reasons(), "archive_not_writable: ") != NULL,
	    "... and the archive");
	ok(strstr(reasons(), dir) == NULL, "... naming no path");
	is_int(call("GET", "/healthz", NULL, NULL), 200,
	    "healthz stays 200: liveness only");

	snprintf(path, sizeof(path), "%s-metrics", ctx.conf->db_path);
	metrics_open(path);
	conf_archive_limits(ctx.conf, &lim);
	archive_open(ctx.conf->db_path, &lim);
	is_int(call("GET", "/readyz", NULL, NULL), 200, "both open: 200");
	is_str(resp.body.data, "{\"status\":\"ready\"}\n",
	    "... {\"status\":\"ready\"}");
	is_str(resp.note.outcome, "ready", "... outcome ready");
	is_int(call("HEAD", "/readyz", NULL, NULL), 200, "HEAD readyz");
	is_int(call("POST", "/readyz", NULL, NULL), 405, "POST readyz: 405");

	ctx.conf->ready_max_fill = 0.000001;
	is_int(call("GET", "/readyz", NULL, NULL), 503,
	    "fuller than ready_max_fill: 503");
	ok(strncmp(reasons(), "store_fill: ", 12) == 0 &&
	    strstr(reasons(), "map_size_mb") != NULL,
	    "... store_fill, and what to do (%s)", reasons());
	ctx.conf->ready_max_fill = 0.95;

	metrics_set_first("payhook_store_full_since_timestamp_seconds", NULL,
	    1764500000);
	is_int(call("GET", "/readyz", NULL, NULL), 503,
	    "writes failing for a full map: 503");
	ok(strstr(reasons(), "store_full: writes have failed since "
	    "2025-11-30T10:53:20Z") != NULL, "... store_full, since when (%s)",
	    reasons());
	call("POST", "/orders", AUTH, "{\"order_id\":\"R-1\",\"amount\":1,"
	    "\"currency\":\"CNY\",\"profile\":\"wxshop\"}");
	is_int(call("GET", "/readyz", NULL, NULL), 200,
	    "a write that commits clears it: 200");

	archive_close();
	is_int(call("GET", "/readyz", NULL, NULL), 503,
	    "the archive closed: 503");
	ctx.conf->archive_days = 0;
	is_int(call("GET", "/readyz", NULL, NULL), 200,
	    "... unless archive_days = 0 keeps none");
	ctx.conf->archive_days = 30;
	archive_open(ctx.conf->db_path, &lim);
	metrics_close();
	snprintf(path, sizeof(path), "%s-metrics", ctx.conf->db_path);
	unlink(path);
	mkdir(path, 0700);	/* as root, only what is not a file fails */
	metrics_open(path);
	is_int(call("GET", "/readyz", NULL, NULL), 503,
	    "a metrics file that cannot be opened: 503");
	ok(strstr(reasons(), "metrics_not_writable") != NULL &&
	    strstr(reasons(), "archive") == NULL, "... for the metrics only "
	    "(%s)", reasons());
	rmdir(path);
	metrics_open(path);
}

static void
test_request_ids(void)
{
	char id[WEB_REQUEST_ID_MAX + 1], id2[WEB_REQUEST_ID_MAX + 1];
	char long_id[80];
	size_t i;

	web_request_id("abc-DEF_1.2", id);
	is_str(id, "abc-DEF_1.2", "a well-formed X-Request-Id is kept");
	memset(long_id, 'a', 64);
	long_id[64] = '\0';
	web_request_id(long_id, id);
	is_str(id, long_id, "... of 64 characters too");
	long_id[64] = 'a';
	long_id[65] = '\0';
	web_request_id(long_id, id);
	ok(strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16,
	    "65 characters: a new one, 16 hex digits (%s)", id);
	for (i = 0; i < 4; i++) {
		static const char *const bad[] = { "", "a b", "a\nb", "é" };

		web_request_id(bad[i], id);
		ok(strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16,
		    "X-Request-Id %zu of the malformed: replaced", i);
	}
	web_request_id(NULL, id);
	web_request_id(NULL, id2);
	ok(strlen(id) == 16 && strcmp(id, id2) != 0, "none: minted, each "
	    "time another");
	{
		/* a thousand minted in a row, all distinct; a child of a
		 * fork does not mint what its parent mints next */
		static char seen[1000][WEB_REQUEST_ID_MAX + 1];
		int fds[2], distinct = 1, st = 0;
		size_t j;
		pid_t pid;

		for (i = 0; i < 1000; i++) {
			web_request_id(NULL, seen[i]);
			for (j = 0; j < i && distinct; j++)
				if (strcmp(seen[i], seen[j]) == 0)
					distinct = 0;
		}
		ok(distinct, "a thousand minted ids, no two alike");
		if (pipe(fds) == 0 && (pid = fork()) == 0) {
			web_request_id(NULL, id);
			_exit(write(fds[1], id, 17) == 17 ? 0 : 1);
		}
		close(fds[1]);
		memset(id2, 0, sizeof(id2));
		st = (int)read(fds[0], id2, 17);
		close(fds[0]);
		wait(NULL);
		web_request_id(NULL, id);
		ok(st == 17 && strlen(id2) == 16 && strcmp(id, id2) != 0,
		    "a forked child mints ids of its own (%s, parent %s)",
		    id2, id);
	}

	is_int(call("GET", "/orders/A1", "Bearer wrong-" TOKEN, NULL), 401,
	    "a wrong token: 401");
	ok(strcmp(resp.note.reason, "the bearer token does not match") == 0 &&
	    strstr(resp.note.reason, TOKEN) == NULL, "... the line says so, "
	    "without the token");
	is_int(call("GET", "/orders/A1", NULL, NULL), 401, "no token: 401");
	is_str(resp.note.reason, "no Authorization header", "... said so");
}

static void
test_base_path(void)
{
	free(ctx.conf->base_path);
	ctx.conf->base_path = strdup("/pay");
	statuses(below_pay, sizeof(below_pay) / sizeof(below_pay[0]));
}

/* A 503 tells the client when to try again; other errors do not. */
static void
test_retry_after(void)
{
	struct web_response r;

	web_response_init(&r);
	web_error(&r, 503, "store_unavailable", "the database cannot be used");
	is_int(r.retry_after, WEB_RETRY_AFTER_S, "503: Retry-After %d",
	    WEB_RETRY_AFTER_S);
	web_error(&r, 400, "bad_request", "no");
	is_int(r.retry_after, 0, "400 after it on the same response: none");
	web_response_free(&r);
}

int
main(void)
{
	const char *b = getenv("top_builddir");
	struct conf_errs errs;
	struct ph_diag d;
	char path[600], conf[2048], *abs;

	if (mkdtemp(dir) == NULL)
		return 1;
	abs = realpath(b != NULL ? b : ".", NULL);
	snprintf(path, sizeof(path), "%s/keys", dir);
	mkdir(path, 0700);
	put("keys/api.token", 0600, TOKEN "\n");
	put("keys/wechat.key", 0600, WXKEY);
	snprintf(conf, sizeof(conf), "[core]\nplugin_dir = %s/providers/.libs\n"
	    "api_token_file = keys/api.token\nmap_size_mb = 16\n"
	    "[profile.wxshop]\nplugin = wechat\nappid = wx2421b1c4370ec43b\n"
	    "mch_id = 10000100\napi_key_file = keys/wechat.key\n", abs);
	free(abs);
	put("payhook.conf", 0644, conf);
	snprintf(path, sizeof(path), "%s/payhook.conf", dir);
	memset(&errs, 0, sizeof(errs));
	if (!ok(conf_open(path, &ctx.conf, &errs) == 0, "config opens (%s)",
	    errs.n ? errs.line[0] : ""))
		return done_testing();
	memset(&d, 0, sizeof(d));
	if (!ok(store_open(ctx.conf->db_path, 16 << 20, 0, &ctx.store, &d) ==
	    PH_OK, "store opens (%s)", d.msg))
		return done_testing();
	web_response_init(&resp);
	test_routes();
	test_orders();
	test_idempotency();
	test_notify();
	test_bad_ack();
	test_ready();
	test_request_ids();
	test_retry_after();
	test_base_path();
	web_response_free(&resp);
	archive_close();
	metrics_close();
	store_close(ctx.store);
	conf_free(ctx.conf);
	th_scratch_remove(dir);
	return done_testing();
}
