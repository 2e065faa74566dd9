/*
 * Amounts, currencies, timestamps and identifiers from provider messages.
 * Amounts are integers in minor units from end to end: nothing here
 * touches floating point, and every step is checked against
 * PH_AMOUNT_MAX before it could overflow.
 */
#include <stdarg.h>
#include <string.h>

#include <payhook/sdk.h>

#include "sdk_int.h"

static int
ph_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

/* Appends digit d to *v; fails past PH_AMOUNT_MAX (so never overflows). */
static int
ph_acc_digit(int64_t *v, int d)
{
	if (*v > (PH_AMOUNT_MAX - d) / 10)
		return 0;
	*v = *v * 10 + d;
	return 1;
}

int
ph_money_parse_minor(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (s == NULL || len == 0)
		return PH_E_FIELD;
	if (s[0] == '0' && len > 1)
		return PH_E_FIELD;
	for (i = 0; i < len; i++)
		if (!ph_isdigit(s[i]) || !ph_acc_digit(&v, s[i] - '0'))
			return PH_E_FIELD;
	*out = v;
	return PH_OK;
}

int
ph_money_parse_decimal(const char *s, size_t len, int scale, int64_t *out)
{
	int64_t ip = 0, frac = 0, mult = 1;
	size_t i = 0, fdigits = 0;
	int k;

	/* 10^scale must itself be an amount. */
	if (scale < 0 || scale > 15)
		return PH_E_INTERNAL;
	if (s == NULL || len == 0 || !ph_isdigit(s[0]))
		return PH_E_FIELD;
	if (s[0] == '0' && len > 1 && s[1] != '.')
		return PH_E_FIELD;
	for (; i < len && ph_isdigit(s[i]); i++)
		if (!ph_acc_digit(&ip, s[i] - '0'))
			return PH_E_FIELD;
	if (i < len) {
		if (s[i] != '.' || scale == 0)
			return PH_E_FIELD;
		for (i++; i < len && ph_isdigit(s[i]); i++) {
			if (++fdigits > (size_t)scale)
				return PH_E_FIELD;
			frac = frac * 10 + (s[i] - '0');
		}
		if (fdigits == 0 || i < len)
			return PH_E_FIELD;
	}
	for (k = 0; k < scale; k++)
		mult *= 10;
	for (k = (int)fdigits; k < scale; k++)
		frac *= 10;
	if (ip > (PH_AMOUNT_MAX - frac) / mult)
		return PH_E_FIELD;
	*out = ip * mult + frac;
	return PH_OK;
}

int
ph_currency_valid(const char *s)
{
	return s != NULL && s[0] >= 'A' && s[0] <= 'Z' &&
	    s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z' &&
	    s[3] == '\0';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
int64_t
ph_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
ph_days_in_month(int y, int m)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

static int
ph_digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

int
ph_time_parse_compact(const char *s, long utc_offset, int64_t *out)
{
	int y, mo, d, h, mi, sec, i;

	/* Real offsets lie within a day either way. */
	if (utc_offset <= -86400 || utc_offset >= 86400)
		return PH_E_INTERNAL;
	if (s == NULL)
		return PH_E_FIELD;
	for (i = 0; i < 14; i++)
		if (!ph_isdigit(s[i]))
			return PH_E_FIELD;
	if (s[14] != '\0')
		return PH_E_FIELD;
	y = ph_digits(s, 4);
	mo = ph_digits(s + 4, 2);
	d = ph_digits(s + 6, 2);
	h = ph_digits(s + 8, 2);
	mi = ph_digits(s + 10, 2);
	sec = ph_digits(s + 12, 2);
	/* No leap seconds: providers do not send them in this format. */
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > ph_days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
		return PH_E_FIELD;
	*out = ph_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
	    sec - utc_offset;
	return PH_OK;
}

int
ph_token_valid(const char *s, size_t len, size_t max, const char *extra)
{
	size_t i;

	if (s == NULL || len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9'))
			continue;
		/* strchr would match NUL against extra's terminator. */
		if (c == '\0' || extra == NULL || strchr(extra, c) == NULL)
			return 0;
	}
	return 1;
}

int
ph_copy_token(char *dst, size_t cap, const char *src, const char *extra,
    const char *field, struct ph_diag *diag)
{
	size_t len;

	if (field == NULL)
		field = "field";
	if (dst == NULL || cap == 0)
		return ph_fail(diag, PH_E_INTERNAL, "%s: no room", field);
	dst[0] = '\0';
	if (src == NULL || src[0] == '\0')
		return ph_fail(diag, PH_E_FIELD, "%s: missing", field);
	len = strnlen(src, cap);
	if (len >= cap)
		return ph_fail(diag, PH_E_FIELD, "%s: longer than %zu bytes",
		    field, cap - 1);
	if (!ph_token_valid(src, len, cap - 1, extra))
		return ph_fail(diag, PH_E_FIELD, "%s: invalid characters",
		    field);
	memcpy(dst, src, len + 1);
	return PH_OK;
}

int
ph_event_from_order(struct ph_event *ev, const struct ph_order_ref *order,
    const char *extra, struct ph_diag *diag)
{
	if (order->currency == NULL || !ph_currency_valid(order->currency))
		return ph_fail(diag, PH_E_FIELD, "order currency invalid");
	if (ph_copy_token(ev->order_id, sizeof(ev->order_id), order->order_id,
	    extra, "order id", diag) != PH_OK)
		return PH_E_FIELD;
	ev->amount = order->amount;
	memcpy(ev->currency, order->currency, sizeof(ev->currency));
	return PH_OK;
}

int
ph_dedup_key(struct ph_event *ev, struct ph_diag *diag, const char *part, ...)
{
	size_t len = 0, n;
	va_list ap;

	va_start(ap, part);
	for (; part != NULL; part = va_arg(ap, const char *)) {
		n = strlen(part);
		/* the part, and a ':' before every part but the first */
		if (n + (len > 0) >= sizeof(ev->dedup_key) - len) {
			va_end(ap);
			ev->dedup_key[0] = '\0';
			return ph_fail(diag, PH_E_FIELD, "dedup key too long");
		}
		if (len > 0)
			ev->dedup_key[len++] = ':';
		memcpy(ev->dedup_key + len, part, n);
		len += n;
	}
	va_end(ap);
	ev->dedup_key[len] = '\0';
	return PH_OK;
}

/* "yyyy-MM-dd<sep>HH:mm:ss" (19 bytes at s) as "yyyyMMddHHmmss". */
static int
ph_time_fields(const char *s, char sep, char c[15])
{
	if (s[4] != '-' || s[7] != '-' || s[10] != sep || s[13] != ':' ||
	    s[16] != ':')
		return -1;
	memcpy(c, s, 4);
	memcpy(c + 4, s + 5, 2);
	memcpy(c + 6, s + 8, 2);
	memcpy(c + 8, s + 11, 2);
	memcpy(c + 10, s + 14, 2);
	memcpy(c + 12, s + 17, 2);
	c[14] = '\0';
	return 0;
}

int
ph_time_parse_dashed(const char *s, size_t len, long utc_offset,
    int64_t *out)
{
	char c[15];

	if (s == NULL || len != 19 || ph_time_fields(s, ' ', c) != 0)
		return PH_E_FIELD;
	return ph_time_parse_compact(c, utc_offset, out);
}

int
ph_time_parse_rfc3339(const char *s, int64_t *out)
{
	char c[15];
	const char *p;
	long off = 0;
	int i;

	if (s == NULL || strnlen(s, 20) < 20 || ph_time_fields(s, 'T', c) != 0)
		return PH_E_FIELD;
	p = s + 19;
	if (*p == '.') {
		for (i = 0, p++; *p >= '0' && *p <= '9' && i < 10; p++, i++)
			continue;
		if (i == 0 || i > 9)
			return PH_E_FIELD;
	}
	if (p[0] == 'Z' && p[1] == '\0')
		off = 0;
	else if ((p[0] == '+' || p[0] == '-') && strnlen(p, 7) == 6 &&
	    p[3] == ':' && p[1] >= '0' && p[1] <= '2' && p[2] >= '0' &&
	    p[2] <= '9' && p[4] >= '0' && p[4] <= '5' && p[5] >= '0' &&
	    p[5] <= '9') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
		    ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
		if (off >= 86400)
			return PH_E_FIELD;
		if (p[0] == '-')
			off = -off;
	} else
		return PH_E_FIELD;
	return ph_time_parse_compact(c, off, out);
}

int
ph_time_parse_unix(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	/* 12 digits reach the year 33658: no overflow, no sign. */
	if (s == NULL || len == 0 || len > 12)
		return PH_E_FIELD;
	for (i = 0; i < len; i++) {
		if (!ph_isdigit(s[i]))
			return PH_E_FIELD;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return PH_OK;
}
