/*
 * A minimal TAP producer for payhook's unit tests: each check is one test
 * point, the plan is printed at the end, the exit status is non-zero when
 * any check failed.  Include once per test program.
 */
#ifndef PH_TAP_H
#define PH_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failed;

static int __attribute__((format(printf, 2, 3), unused))
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

/* n points that cannot be run here, saying why. */
static void __attribute__((unused))
skip(int n, const char *why)
{
	while (n-- > 0)
		printf("ok %d # SKIP %s\n", ++tap_count, why);
	fflush(stdout);
}

#define is_int(got, want, ...) tap_is_int(__LINE__, (long long)(got), \
    (long long)(want), __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str(__LINE__, (got), (want), __VA_ARGS__)

/* The description of an is_int/is_str point, formatted as ok() would. */
static const char *
tap_name(char *buf, size_t cap, const char *fmt, va_list ap)
{
	vsnprintf(buf, cap, fmt, ap);
	return buf;
}

static void __attribute__((format(printf, 4, 5), unused))
tap_is_int(int line, long long got, long long want, const char *fmt, ...)
{
	char name[1024];
	va_list ap;

	va_start(ap, fmt);
	tap_name(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (!ok(got == want, "%s", name))
		printf("# line %d: got %lld, want %lld\n", line, got, want);
}

static void __attribute__((format(printf, 4, 5), unused))
tap_is_str(int line, const char *got, const char *want, const char *fmt, ...)
{
	int same = got != NULL && want != NULL && strcmp(got, want) == 0;
	char name[1024];
	va_list ap;

	va_start(ap, fmt);
	tap_name(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (!ok(same, "%s", name))
		printf("# line %d: got \"%s\", want \"%s\"\n", line,
		    got ? got : "(null)", want ? want : "(null)");
}

static void __attribute__((unused))
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int __attribute__((unused))
done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
