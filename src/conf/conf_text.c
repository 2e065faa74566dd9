/*
 * What every part of the configuration uses: the list of problems found
 * (each with its line, so that payhook check lists them all) and the small
 * parsers of values.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/conf_int.h"

void
conf_note(struct conf_errs *e, int warning, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	if (e->n == CONF_ERRS_MAX) {
		e->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(e->line[e->n], CONF_ERR_LEN, fmt, ap);
	va_end(ap);
	e->warning[e->n] = warning;
	if (warning)
		e->nwarn++;
	e->n++;
}

size_t
conf_errs_count(const struct conf_errs *e)
{
	return e->n - e->nwarn + e->dropped;
}

int
conf_set_str(char **dst, const char *v)
{
	free(*dst);
	return (*dst = strdup(v)) == NULL ? -1 : 0;
}

int
conf_parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	unsigned long long v = 0;
	const char *p;

	if (*s == '\0')
		return -1;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > max)
			return -1;
	}
	if (v < min)
		return -1;
	*out = (unsigned long)v;
	return 0;
}
