/*
 * The SDK's form decoder and encoder (plugins/sdk/form.c): strict
 * percent-decoding, '+' as space, duplicates and bounds refused.
 */
#include <payhook/sdk.h>

#include "tap.h"

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

/* Parses body and expects status; frees the list. */
static void
refused(const char *body, int want, const char *name)
{
	struct ph_kvlist kv;

	is_int(parse(body, &kv), want, name);
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
	    "plus, %2B and UTF-8 escapes");
	is_int(kv.n, 3, "three fields");
	is_str(ph_kvlist_get(&kv, "a"), "1 2", "+ is a space");
	is_str(ph_kvlist_get(&kv, "b"), "x+y", "%2B is a plus");
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
	static const struct {
		const char *body;
		int rc;
		const char *what;
	} bad[] = {
		{ "a=%G1", PH_E_MALFORMED, "%G1 refused" },
		{ "a=%1G", PH_E_MALFORMED, "%1G refused" },
		{ "a=%4", PH_E_MALFORMED, "%4 at the end refused" },
		{ "a=%4&b=1", PH_E_MALFORMED, "%4 before & refused" },
		{ "a=1%", PH_E_MALFORMED, "trailing % refused" },
		{ "a%=1", PH_E_MALFORMED, "bad escape in a name refused" },
		{ "a=1&a=2", PH_E_MALFORMED, "duplicate key refused" },
		{ "txnAmt=1&txn%41mt=2", PH_E_MALFORMED,
		    "duplicate after decoding refused" },
		{ "a=1&A=2&a=3", PH_E_MALFORMED, "later duplicate refused" },
		{ "a=1&&b=2", PH_E_MALFORMED, "empty pair refused" },
		{ "a=1&", PH_E_MALFORMED, "trailing & refused" },
		{ "&a=1", PH_E_MALFORMED, "leading & refused" },
		{ "a", PH_E_MALFORMED, "pair without = refused" },
		{ "a=1&b", PH_E_MALFORMED, "last pair without = refused" },
		{ "=1", PH_E_MALFORMED, "empty name refused" },
		{ "%00=1", PH_E_MALFORMED, "NUL in a name refused" },
		{ "a=x%00y", PH_E_MALFORMED, "NUL in a value refused" },
		{ "a=1&b=2&c=3&d=4&e=5", PH_E_TOOBIG, "too many fields" },
		{ "a=1&b=2&c=3&d=4&", PH_E_TOOBIG,
		    "too many fields counted before parsing" },
		{ "v=123456789012345678901234567890123", PH_E_TOOBIG,
		    "value too long" },
		{ "k123456789012345678901234567890123=1", PH_E_TOOBIG,
		    "name too long" },
	};
	char big[300];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i].body, bad[i].rc, bad[i].what);
	memset(big, 'a', sizeof(big) - 1);
	big[0] = 'k';
	big[1] = '=';
	big[sizeof(big) - 1] = '\0';
	refused(big, PH_E_TOOBIG, "body too long");
}

static void
test_write(void)
{
	struct ph_kvlist kv;
	struct ph_buf b;

	ph_kvlist_init(&kv, 8);
	ph_kvlist_add(&kv, "orderId", 7, "A1", 2, NULL);
	ph_kvlist_add(&kv, "sig", 3, "a+b/c=", 6, NULL);
	ph_kvlist_add(&kv, "text", 4, "x y&z~\xe4\xb8\xad", 9, NULL);
	ph_kvlist_add(&kv, "empty", 5, "", 0, NULL);
	ph_buf_init(&b, 1024);
	is_int(ph_form_write(&kv, &b), PH_OK, "write");
	is_str(b.data, "orderId=A1&sig=a%2Bb%2Fc%3D&text=x%20y%26z~%E4%B8%AD"
	    "&empty=", "written in list order, escaped");
	ph_kvlist_free(&kv);
	is_int(parse(b.data, &kv), PH_OK, "what is written parses");
	is_str(ph_kvlist_get(&kv, "sig"), "a+b/c=", "round trip");
	is_str(ph_kvlist_get(&kv, "text"), "x y&z~\xe4\xb8\xad",
	    "round trip of bytes");
	ph_kvlist_free(&kv);
	ph_buf_free(&b);

	ph_kvlist_init(&kv, 8);
	ph_kvlist_add(&kv, "k", 1, "0123456789", 10, NULL);
	ph_buf_init(&b, 8);
	is_int(ph_form_write(&kv, &b), PH_E_TOOBIG, "bounded output");
	ph_kvlist_free(&kv);
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
