/*
 * Log lines as written to stderr: the fixed fields first, the request's
 * id on every line inside a request, key=value pairs (logfmt) or one JSON
 * object a line (json) with the same keys, values from a request quoted
 * or escaped, a line never longer than 4096 bytes and never cut in the
 * middle of its JSON.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ops/log.h"
#include "ops/text.h"
#include "../../lib/tap.h"

static char path[] = "/tmp/payhook-log-XXXXXX";
static int saved = -1;
static long offset;

/* What was written to stderr since the last call. */
static const char *
written(void)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f == NULL)
		return buf;
	if (fseek(f, offset, SEEK_SET) == 0)
		n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	offset += (long)n;
	fclose(f);
	return buf;
}

static json_t *
parse(const char *line)
{
	json_error_t err;
	json_t *j = json_loads(line, 0, &err);

	if (j == NULL)
		diag("not JSON: %s (%s)", err.text, line);
	return j;
}

static void
test_logfmt(void)
{
	struct log_line l;
	char q[64];
	const char *t;

	log_set_format(LOG_FMT_LOGFMT);
	log_msg(LOG_LVL_WARN, "hello %s", "world");
	t = written();
	ok(strncmp(t, "ts=", 3) == 0 && strstr(t, " level=warn prog=test "
	    "pid=") != NULL && strstr(t, " msg=\"hello world\"\n") != NULL,
	    "a message: ts, level, prog, pid, msg (%s)", t);
	log_msg(LOG_LVL_DEBUG, "not shown");
	is_str(written(), "", "below the level: nothing");
	{
		/* the pid is asked once; a forked child writes its own */
		char want[64];
		pid_t pid;

		if ((pid = fork()) == 0) {
			log_msg(LOG_LVL_WARN, "from the child");
			_exit(0);
		}
		waitpid(pid, NULL, 0);
		snprintf(want, sizeof(want), " pid=%ld msg=\"from the child\"",
		    (long)pid);
		t = written();
		ok(pid > 0 && strstr(t, want) != NULL, "a child's line has the "
		    "child's pid (%s)", t);
		log_msg(LOG_LVL_WARN, "parent");
		snprintf(want, sizeof(want), " pid=%ld msg=parent",
		    (long)getpid());
		t = written();
		ok(strstr(t, want) != NULL, "... the parent's still its own");
	}

	log_request_begin("req-1");
	log_msg(LOG_LVL_INFO, "inside");
	t = written();
	ok(strstr(t, " msg=inside request_id=req-1\n") != NULL,
	    "inside a request: its id after the message (%s)", t);
	log_kv(LOG_LVL_INFO, "sweep", "due=%d name=%s", 3,
	    log_value("a \"b\"\n", q, sizeof(q)));
	t = written();
	ok(strstr(t, " event=sweep request_id=req-1 due=3 "
	    "name=\"a \\\"b\\\"\\x0a\"\n") != NULL, "pairs: the event, the id, "
	    "then the pairs as given (%s)", t);
	log_line_init(&l, LOG_LVL_WARN, "request");
	log_line_str(&l, "client", "192.0.2.1");
	log_line_str(&l, "order_id", "");
	log_line_int(&l, "status", 401);
	log_line_num(&l, "duration_ms", 1.25, 1);
	log_line_write(&l);
	t = written();
	ok(strstr(t, " level=warn prog=test ") != NULL &&
	    strstr(t, " event=request request_id=req-1 client=192.0.2.1 "
	    "order_id=- status=401 duration_ms=1.2") != NULL, "a line of "
	    "fields; an empty value is - (%s)", t);
	log_line_init(&l, LOG_LVL_WARN, "fixed");
	log_line_fixed(&l, "a", 12, 1);
	log_line_fixed(&l, "b", 5, 1);
	log_line_fixed(&l, "c", 0, 1);
	log_line_fixed(&l, "d", -5, 3);
	log_line_fixed(&l, "e", 7, 0);
	log_line_fixed(&l, "f", LLONG_MIN, 2);
	log_line_fixed(&l, "g", 123456, 2);
	log_line_write(&l);
	t = written();
	ok(strstr(t, " a=1.2 b=0.5 c=0.0 d=-0.005 e=7 "
	    "f=-92233720368547758.08 g=1234.56\n") != NULL, "fixed-point "
	    "numbers: the point where prec says, a 0 before it (%s)", t);
	log_request_end();
	log_msg(LOG_LVL_INFO, "outside");
	t = written();
	ok(strstr(t, "request_id") == NULL, "after the request: no id");
}

/* The text helpers the log line and the answer's head are made with. */
static void
test_text(void)
{
	char b[TEXT_INT_MAX], small[8];

	ok(text_int(b, 0) == 1 && strcmp(b, "0") == 0, "0");
	ok(text_int(b, -42) == 3 && strcmp(b, "-42") == 0, "-42");
	ok(text_int(b, LLONG_MAX) == 19 &&
	    strcmp(b, "9223372036854775807") == 0, "the largest");
	ok(text_int(b, LLONG_MIN) == 20 &&
	    strcmp(b, "-9223372036854775808") == 0, "the smallest");
	ok(text_cat(small, sizeof(small), "ab", "", "cd", (char *)NULL) == 4 &&
	    strcmp(small, "abcd") == 0, "strings one after the other");
	ok(text_cat(small, sizeof(small), "abcd", "efgh", (char *)NULL) == 8 &&
	    strcmp(small, "abcdefg") == 0, "cut to fit, NUL-terminated, the "
	    "whole length returned");
	ok(text_cat(small, sizeof(small), (char *)NULL) == 0 &&
	    small[0] == '\0', "nothing: empty");

	{
		static const int64_t at[] = { 0, 1700000000, 951782400,
		    253402300799, 253402300800, -1, -62135596800,
		    -30610224000, 4102444800 };
		char want[TEXT_TIME_MAX], got[TEXT_TIME_MAX];
		struct tm tm;
		time_t tt;
		size_t i;
		int same = 1;

		for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			tt = (time_t)at[i];
			gmtime_r(&tt, &tm);
			strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
			text_time(at[i], got);
			if (strcmp(want, got) != 0) {
				diag("%lld: want %s, got %s",
				    (long long)at[i], want, got);
				same = 0;
			}
		}
		ok(same, "RFC 3339 times: what strftime writes, years 1 to "
		    "10000");
		text_time(1700000000, got);
		is_str(got, "2023-11-14T22:13:20Z", "... e.g. 1700000000");
	}
}

static void
test_json(void)
{
	struct log_line l;
	json_t *j;
	const char *t, *k;
	char q[64];
	void *it;

	log_set_format(LOG_FMT_JSON);
	log_request_begin("req-2");
	log_kv(LOG_LVL_INFO, "refunds", "due=%d errors=0 id=007 name=%s "
	    "none=-", 12, log_value("x\xff y", q, sizeof(q)));
	t = written();
	j = parse(t);
	ok(j != NULL, "json: the line parses");
	ok(t[strlen(t) - 1] == '\n' && strchr(t, '\n') == t + strlen(t) - 1,
	    "... one line");
	it = json_object_iter(j);
	k = it != NULL ? json_object_iter_key(it) : "";
	ok(strcmp(k, "ts") == 0, "ts first");
	is_str(json_string_value(json_object_get(j, "level")), "info",
	    "level");
	is_str(json_string_value(json_object_get(j, "prog")), "test", "prog");
	ok(json_is_integer(json_object_get(j, "pid")), "pid a number");
	is_str(json_string_value(json_object_get(j, "event")), "refunds",
	    "event");
	is_str(json_string_value(json_object_get(j, "request_id")), "req-2",
	    "request_id");
	is_int(json_integer_value(json_object_get(j, "due")), 12,
	    "a number stays a number");
	is_str(json_string_value(json_object_get(j, "id")), "007",
	    "digits with a leading zero stay text");
	is_str(json_string_value(json_object_get(j, "name")), "x\\xff y",
	    "a byte that is not UTF-8: the text \\xHH, as in logfmt");
	ok(json_is_null(json_object_get(j, "none")), "- is null");
	json_decref(j);

	log_line_init(&l, LOG_LVL_ERROR, "request");
	log_line_str(&l, "path", "/notify/\xe5\xbe\xae\"\n");
	log_line_str(&l, "profile", NULL);
	log_line_int(&l, "status", 503);
	log_line_num(&l, "duration_ms", 0.5, 1);
	log_line_write(&l);
	j = parse(written());
	is_str(json_string_value(json_object_get(j, "path")),
	    "/notify/\xe5\xbe\xae\"\n", "UTF-8, quotes and newlines kept "
	    "exactly");
	ok(json_is_null(json_object_get(j, "profile")), "no value: null");
	is_int(json_integer_value(json_object_get(j, "status")), 503,
	    "status a number");
	ok(json_real_value(json_object_get(j, "duration_ms")) == 0.5,
	    "duration_ms a number");
	is_str(json_string_value(json_object_get(j, "level")), "error",
	    "level error");
	json_decref(j);
	log_msg(LOG_LVL_WARN, "a \"message\"");
	j = parse(written());
	is_str(json_string_value(json_object_get(j, "msg")), "a \"message\"",
	    "a message: msg");
	json_decref(j);
	log_request_end();
}

static void
test_long(void)
{
	char big[1500];
	struct log_line l;
	const char *t;
	json_t *j;
	int f;

	memset(big, '\x01', sizeof(big) - 1);	/* 6 bytes each in JSON */
	big[sizeof(big) - 1] = '\0';
	for (f = 0; f < LOG_FMT__MAX; f++) {
		log_set_format((enum log_format)f);
		log_line_init(&l, LOG_LVL_INFO, "request");
		log_line_str(&l, "a", big);
		log_line_str(&l, "b", big);
		log_line_int(&l, "status", 200);
		log_line_write(&l);
		t = written();
		ok(strlen(t) <= 4096 && t[strlen(t) - 1] == '\n',
		    "%s: a line of two long values: at most 4096 bytes (%zu)",
		    f == LOG_FMT_JSON ? "json" : "logfmt", strlen(t));
		ok(strstr(t, "status") != NULL, "... every field still there");
		if (f == LOG_FMT_JSON) {
			j = parse(t);
			ok(j != NULL, "... and still JSON");
			json_decref(j);
		}
	}
}

int
main(void)
{
	int fd;

	if ((fd = mkstemp(path)) == -1)
		return 1;
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_init("test", LOG_LVL_INFO);
	ok(log_format_parse("logfmt") == LOG_FMT_LOGFMT &&
	    log_format_parse("json") == LOG_FMT_JSON &&
	    log_format_parse("JSON ") == -1, "log_format names");
	test_logfmt();
	test_text();
	test_json();
	test_long();
	dup2(saved, STDERR_FILENO);
	close(saved);
	unlink(path);
	return done_testing();
}
