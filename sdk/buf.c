/*
 * Bounded growable byte buffer.  The maximum is fixed at initialisation;
 * going past it is an error that sticks, so a caller may append several
 * pieces and check once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

void
ph_buf_init(struct ph_buf *b, size_t max)
{
	*b = (struct ph_buf){ .max = max, .err = PH_OK };
}

/* Makes room for n more bytes plus the terminating NUL. */
int
ph_buf_reserve(struct ph_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->err != PH_OK)
		return b->err;
	if (n > b->max || b->len > b->max - n)
		return b->err = PH_E_TOOBIG;
	need = b->len + n + 1;
	if (need <= b->cap)
		return PH_OK;
	cap = b->cap != 0 ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	if ((p = realloc(b->data, cap)) == NULL)
		return b->err = PH_E_NOMEM;
	b->data = p;
	b->cap = cap;
	return PH_OK;
}

int
ph_buf_append(struct ph_buf *b, const void *p, size_t n)
{
	int rc;

	/* Even an empty append leaves data pointing at a string. */
	if ((rc = ph_buf_reserve(b, n)) != PH_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return PH_OK;
}

size_t
ph_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = src != NULL ? strlen(src) : 0, c;

	if (size > 0) {
		c = n < size ? n : size - 1;
		if (c > 0)
			memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int
ph_buf_puts(struct ph_buf *b, const char *s)
{
	return ph_buf_append(b, s, strlen(s));
}

int
ph_buf_printf(struct ph_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	if (b->err != PH_OK)
		return b->err;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return b->err = PH_E_INTERNAL;
	if ((rc = ph_buf_reserve(b, (size_t)n)) != PH_OK)
		return rc;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->data[b->len] = '\0';
		return b->err = PH_E_INTERNAL;
	}
	b->len += (size_t)n;
	return PH_OK;
}

void
ph_buf_free(struct ph_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = PH_OK;
}
