/*
 * Logging: one line per call, written with a single write(2) so lines from
 * the many payhook.fcgi processes sharing one error log never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

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

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;
	size_t i;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "%s[%ld]: %s: ", log_ident,
	    (long)getpid(), log_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* A log line is one line, whatever the message carried. */
	for (i = 0; i < (size_t)n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
