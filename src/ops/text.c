/* Text as payhook shows it to people: see text.h. */
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ops/text.h"

size_t
text_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0)
		len = 2, cp = p[0] & 0x1F;
	else if ((p[0] & 0xF0) == 0xE0)
		len = 3, cp = p[0] & 0x0F;
	else if ((p[0] & 0xF8) == 0xF0)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int
text_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
text_name_find(const char *const *names, int n, const char *s, int fold)
{
	int i;

	for (i = 0; i < n; i++) {
		if (names[i] == NULL)
			continue;
		if (fold ? strcasecmp(s, names[i]) == 0 :
		    strcmp(s, names[i]) == 0)
			return i;
	}
	return -1;
}

size_t
text_int(char out[TEXT_INT_MAX], long long v)
{
	char buf[TEXT_INT_MAX], *p = buf + sizeof(buf);
	/* the magnitude, without overflowing at LLONG_MIN */
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
	    (unsigned long long)v;
	size_t n;

	*--p = '\0';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		*--p = '-';
	n = (size_t)(buf + sizeof(buf) - p);
	memcpy(out, p, n);
	return n - 1;
}

size_t
text_cat(char *out, size_t cap, ...)
{
	const char *s;
	size_t len = 0, n;
	va_list ap;

	va_start(ap, cap);
	while ((s = va_arg(ap, const char *)) != NULL) {
		n = strlen(s);
		if (len < cap)
			memcpy(out + len, s, len + n < cap ? n : cap - len);
		len += n;
	}
	va_end(ap);
	if (cap > 0)
		out[len < cap ? len : cap - 1] = '\0';
	return len;
}

void
text_time(int64_t t, char out[TEXT_TIME_MAX])
{
	struct tm tm;
	time_t tt = (time_t)t;
	int v[6], i;

	if (gmtime_r(&tt, &tm) == NULL) {
		out[0] = '\0';
		return;
	}
	if (tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900) {
		if (strftime(out, TEXT_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ",
		    &tm) == 0)
			out[0] = '\0';
		return;
	}
	/* What strftime writes for a four-digit year, at a tenth of its
	 * cost (every log line, an order read up to eight times). */
	v[0] = tm.tm_year + 1900;
	v[1] = tm.tm_mon + 1;
	v[2] = tm.tm_mday;
	v[3] = tm.tm_hour;
	v[4] = tm.tm_min;
	v[5] = tm.tm_sec;
	memcpy(out, "0000-00-00T00:00:00Z", 21);
	out[0] += (char)(v[0] / 1000);
	out[1] += (char)(v[0] / 100 % 10);
	out[2] += (char)(v[0] / 10 % 10);
	out[3] += (char)(v[0] % 10);
	for (i = 1; i < 6; i++) {
		out[2 + 3 * i] += (char)(v[i] / 10);
		out[3 + 3 * i] += (char)(v[i] % 10);
	}
}
