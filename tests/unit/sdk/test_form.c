/*
 * The SDK's form decoder and encoder (plugins/sdk/form.c): strict
 * percent-decoding, '+' as space, duplicates and bounds refused.
 */
#include <stdarg.h>
#include <string.h>

#include <payhook/sdk.h>

#include "../lib/tap.h"

static const struct ph_form_limits lim = {
	.max_bytes = 256,
	.max_fields = 4,
	.max_value = 32,
};

static struct ph_diag d;

static int
parse(const char *body, struct ph_kvlist *kv)
{
	d.msg[0] = '\0';
	return ph_form_parse((const unsigned char *)body, strlen(body), &lim,
	    kv, &d);
}

/* A body the parser refuses, and what is wrong with it. */
struct bad_body {
	const char	*body;
	const char	*what;
};

/* Parses body and expects status; frees the list. */
static void
refused(const char *body, int want, const char *name)
{
	struct ph_kvlist kv;

	is_int(parse(body, &kv), want, "%s", name);
	ok(kv.n == 0 && kv.items == NULL, "%s: list left empty", name);
	ok(d.msg[0] != '\0', "%s: diagnostic says why", name);
	ph_kvlist_free(&kv);
}

static void
test_decode(void)
{
	struct ph_kvlist kv;
	const char *v;

	is_int(parse("a=1+2&b=x%2By&c=%E4%B8%AD", &kv), PH_OK,
	    "plus, %%2B and UTF-8 escapes");
	is_int(kv.n, 3, "three fields");
	is_str(ph_kvlist_get(&kv, "a"), "1 2", "+ is a space");
	is_str(ph_kvlist_get(&kv, "b"), "x+y", "%%2B is a plus");
	is_str(ph_kvlist_get(&kv, "c"), "\xe4\xb8\xad", "bytes kept");
	ph_kvlist_free(&kv);

	is_int(parse("k=%d6%d0%b9%fa&e=", &kv), PH_OK,
	    "GBK bytes and an empty value");
	v = ph_kvlist_get(&kv, "k");
	ok(v != NULL && kv.items[0].val_len == 4 &&
	    memcmp(v, "\xd6\xd0\xb9\xfa", 4) == 0,
	    "non-UTF-8 bytes kept as received");
	is_str(ph_kvlist_get(&kv, "e"), "", "empty value kept");
	is_int(kv.items[1].val_len, 0, "empty value has length 0");
	ph_kvlist_free(&kv);

	is_int(parse("a%5Fb=%3D%26&x==", &kv), PH_OK,
	    "escaped name, escaped = and &, '=' inside a value");
	is_str(ph_kvlist_get(&kv, "a_b"), "=&", "name decoded");
	is_str(ph_kvlist_get(&kv, "x"), "=", "value split on first '='");
	ph_kvlist_free(&kv);

	is_int(parse("", &kv), PH_OK, "empty body: no fields");
	is_int(kv.n, 0, "empty body has no fields");
	ph_kvlist_free(&kv);

	is_int(parse("a=1&b=2&c=3&d=4", &kv), PH_OK, "exactly max fields");
	ph_kvlist_free(&kv);
	is_int(parse("v=12345678901234567890123456789012", &kv), PH_OK,
	    "value of exactly max bytes");
	ph_kvlist_free(&kv);
	is_int(parse("v=%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	    "%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41", &kv), PH_OK,
	    "bound applies to the decoded value");
	ph_kvlist_free(&kv);
}

static void
test_refused(void)
{
	/* bodies that are not well-formed forms */
	static const struct bad_body malformed[] = {
		{ "a=%G1", "%G1 refused" },
		{ "a=%1G", "%1G refused" },
		{ "a=%4", "%4 at the end refused" },
		{ "a=%4&b=1", "%4 before & refused" },
		{ "a=1%", "trailing % refused" },
		{ "a%=1", "bad escape in a name refused" },
		{ "a=1&a=2", "duplicate key refused" },
		{ "txnAmt=1&txn%41mt=2", "duplicate after decoding refused" },
		{ "a=1&A=2&a=3", "later duplicate refused" },
		{ "a=1&&b=2", "empty pair refused" },
		{ "a=1&", "trailing & refused" },
		{ "&a=1", "leading & refused" },
		{ "a", "pair without = refused" },
		{ "a=1&b", "last pair without = refused" },
		{ "=1", "empty name refused" },
		{ "%00=1", "NUL in a name refused" },
		{ "a=x%00y", "NUL in a value refused" },
	};
	/* bodies past one of the limits in lim */
	static const struct bad_body toobig[] = {
		{ "a=1&b=2&c=3&d=4&e=5", "too many fields" },
		{ "a=1&b=2&c=3&d=4&",
		    "too many fields counted before parsing" },
		{ "v=123456789012345678901234567890123", "value too long" },
		{ "k123456789012345678901234567890123=1", "name too long" },
	};
	char big[300];
	size_t i;

	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		refused(malformed[i].body, PH_E_MALFORMED, malformed[i].what);
	for (i = 0; i < sizeof(toobig) / sizeof(toobig[0]); i++)
		refused(toobig[i].body, PH_E_TOOBIG, toobig[i].what);
	memset(big, 'a', sizeof(big) - 1);
	big[0] = 'k';
	big[1] = '=';
	big[sizeof(big) - 1] = '\0';
	refused(big, PH_E_TOOBIG, "body too long");
}

/*
 * Writes the fields named in the list of name and value pairs that ends
 * in NULL into b, which may grow to max bytes.
 */
static int
write_form(struct ph_buf *b, size_t max, ...)
{
	struct ph_kvlist kv;
	va_list ap;
	const char *k, *v;
	int rc;

	ph_kvlist_init(&kv, 8);
	va_start(ap, max);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		ph_kvlist_add(&kv, k, strlen(k), v, strlen(v), NULL);
	}
	va_end(ap);
	ph_buf_init(b, max);
	rc = ph_form_write(&kv, b);
	ph_kvlist_free(&kv);
	return rc;
}

static void
test_write(void)
{
	struct ph_kvlist kv;
	struct ph_buf b;

	is_int(write_form(&b, 1024, "orderId", "A1", "sig", "a+b/c=",
	    "text", "x y&z~\xe4\xb8\xad", "empty", "", NULL), PH_OK,
	    "write");
	is_str(b.data, "orderId=A1&sig=a%2Bb%2Fc%3D&text=x%20y%26z~%E4%B8%AD"
	    "&empty=", "written in list order, escaped");
	is_int(parse(b.data, &kv), PH_OK, "what is written parses");
	is_str(ph_kvlist_get(&kv, "sig"), "a+b/c=", "round trip");
	is_str(ph_kvlist_get(&kv, "text"), "x y&z~\xe4\xb8\xad",
	    "round trip of bytes");
	ph_kvlist_free(&kv);
	ph_buf_free(&b);

	is_int(write_form(&b, 8, "k", "0123456789", NULL), PH_E_TOOBIG,
	    "bounded output");
	ph_buf_free(&b);
}

int
main(void)
{
	test_decode();
	test_refused();
	test_write();
	return done_testing();
}
