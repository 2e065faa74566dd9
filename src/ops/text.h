/* Text as payhook shows it to people: valid UTF-8, whatever came in. */
#ifndef PH_TEXT_H
#define PH_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The length of the UTF-8 character at p (n bytes left): 1 to 4, or 0
 * when the bytes there are not one (overlong forms and surrogates are
 * not). */
size_t text_utf8_len(const unsigned char *p, size_t n);

/* The value of a hex digit (either case), or -1 when c is none. */
int text_hexval(char c);

/* The index of s among the n names of an enum's name table (compared
 * as bytes, or ignoring ASCII case when fold is set), or -1 when it is
 * none of them.  NULL entries are skipped. */
int text_name_find(const char *const *names, int n, const char *s,
    int fold);

/* The decimal text of v in out, NUL-terminated; returns its length.
 * (snprintf's "%lld" at a tenth of its cost, for every request's log
 * line and answer.) */
#define TEXT_INT_MAX 21
size_t text_int(char out[TEXT_INT_MAX], long long v);

/* The RFC 3339 UTC text of a unix time ("2026-12-05T23:09:48Z", what
 * strftime's "%Y-%m-%dT%H:%M:%SZ" writes), "" when it has none. */
#define TEXT_TIME_MAX 32
void text_time(int64_t t, char out[TEXT_TIME_MAX]);

/* The strings given, up to a NULL, one after the other in out of cap
 * bytes: cut to fit and NUL-terminated when cap > 0.  Returns the length
 * of the whole, so that a result of cap or more says it was cut. */
size_t text_cat(char *out, size_t cap, ...) __attribute__((sentinel));

#endif
