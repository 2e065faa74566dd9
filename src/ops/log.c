/*
 * Logging: one line per call, written with a single write(2) so lines from
 * the many payhook.fcgi processes sharing one error log never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <unistd.h>

#include "ops/log.h"

static const char *log_ident = "payhook";
static enum log_level log_level = LOG_LVL_INFO;

static const char *const log_names[LOG_LVL__MAX] = {
	"error", "warn", "info", "debug",
};

void
log_init(const char *ident, enum log_level level)
{
	log_ident = ident;
	log_level = level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_level_parse(const char *s)
{
	int i;

	for (i = 0; i < LOG_LVL__MAX; i++)
		if (strcasecmp(s, log_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_value(const char *v, char *out, size_t cap)
{
	size_t o = 0, i;
	int plain = *v != '\0';

	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f ||
		    v[i] == '"' || v[i] == '=' || v[i] == '\\')
			plain = 0;
	if (plain) {
		snprintf(out, cap, "%s", v);
		return out;
	}
	if (cap < 3) {
		if (cap > 0)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (i = 0; v[i] != '\0' && o + 6 < cap; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < ' ' || c >= 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* Writes "ts=... level=... prog=... pid=... " then body, as one line. */
static void
log_line(enum log_level level, const char *body)
{
	char line[2048], ts[32];
	struct tm tm;
	time_t now = time(NULL);
	size_t i;
	int n;

	if (level > log_level)
		return;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		ts[0] = '\0';
	n = snprintf(line, sizeof(line) - 1, "ts=%s level=%s prog=%s pid=%ld "
	    "%s", ts, log_names[level], log_ident, (long)getpid(), body);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* A log line is one line, whatever the message carried. */
	for (i = 0; i < (size_t)n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char text[1400], body[1600], q[1500];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(body, sizeof(body), "msg=%s", log_value(text, q, sizeof(q)));
	log_line(level, body);
}

void
log_kv(enum log_level level, const char *event, const char *fmt, ...)
{
	char pairs[1400], body[1600];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(pairs, sizeof(pairs), fmt, ap);
	va_end(ap);
	snprintf(body, sizeof(body), "event=%s %s", event, pairs);
	log_line(level, body);
}
