/*
 * The SDK's JSON helpers: one strict parse (size, duplicates, UTF-8,
 * depth, trailing bytes) and typed getters by dotted path.
 */
#include <string.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "../lib/tap.h"

static const struct ph_json_limits lim = { 1024, 3 };
static struct ph_diag d;

static int
parse(const char *s, json_t **out)
{
	d.msg[0] = '\0';
	return ph_json_parse((const unsigned char *)s, strlen(s), &lim, out,
	    &d);
}

static int
refused(const char *s)
{
	json_t *j = (json_t *)&j;
	int rc = parse(s, &j);

	if (rc == PH_OK) {
		json_decref(j);
		return 0;
	}
	return j == NULL;
}

static void
test_parse(void)
{
	/* Documents no plugin may be handed, whatever they say. */
	static const struct {
		const char *doc, *what;
	} bad[] = {
		{ "[1,2]", "top-level array" },
		{ "\"a\"", "top-level string" },
		{ "{\"a\":1} x", "trailing bytes" },
		{ "{\"a\":1}{}", "two documents" },
		{ "{\"a\":\"\\u0000\"}", "\\u0000" },
		{ "{\"a\":\"\xc0\xaf\"}", "overlong UTF-8" },
		{ "{\"a\":\"\xed\xa0\x80\"}", "UTF-8 surrogate" },
		{ "{\"a\":\"\\ud800\"}", "lone surrogate escape" },
		{ "{\"a\":\"\xff\"}", "invalid byte" },
		{ "", "empty document" },
		{ "{\"a\":1e999999}", "real overflow" },
		{ "{\"a\":99999999999999999999}", "integer beyond 64 bits" },
	};
	json_t *j = NULL;
	char big[1100];
	size_t i;

	is_int(parse("{\"a\":1,\"b\":{\"c\":[1,2]}}", &j), PH_OK,
	    "depth 3 parses");
	json_decref(j);
	ok(refused("{\"a\":1,\"a\":2}"), "duplicate key refused");
	ok(strstr(d.msg, "duplicate") != NULL, "duplicate: diagnostic");
	ok(refused("{\"amount\":{\"total\":1,\"total\":100000}}"),
	    "nested duplicate key refused");
	ok(refused("{\"out_trade_no\":\"A\",\"\\u006fut_trade_no\":\"B\"}"),
	    "duplicate key after unescaping refused");
	ok(!refused("{\"Amount\":1,\"amount\":2}"),
	    "keys differing in case are two keys");
	ok(refused("{\"a\":{\"b\":{\"c\":{}}}}"), "depth 4 refused");
	ok(strstr(d.msg, "deeper") != NULL, "depth: diagnostic");
	ok(refused("{\"a\":[[[1]]]}"), "arrays count as depth");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(refused(bad[i].doc), "%s refused", bad[i].what);
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	ok(refused(big), "document over max_bytes refused");
	is_int(parse(big, &j), PH_E_TOOBIG, "over max_bytes: PH_E_TOOBIG");
	is_int(ph_json_parse((const unsigned char *)"{}", 2, &lim, &j, &d),
	    PH_OK, "empty object parses");
	json_decref(j);
	is_int(ph_json_parse((const unsigned char *)"{\"a\":1}\0", 8, &lim,
	    &j, &d), PH_E_MALFORMED, "a NUL byte after the document refused");
}

static void
test_getters(void)
{
	/* ph_json_get_amount on the getter document's members: whole
	 * non-negative numbers up to PH_AMOUNT_MAX, nothing else. */
	static const struct {
		const char *path;
		int rc;
		int64_t value;		/* when rc is PH_OK */
		const char *what;
	} amounts[] = {
		{ "i", PH_OK, 12, "amount 12" },
		{ "r", PH_E_FIELD, 0, "amount 12.5 refused" },
		{ "r0", PH_E_FIELD, 0, "amount 100.0 refused" },
		{ "x", PH_E_FIELD, 0, "amount 1e2 refused" },
		{ "q", PH_E_FIELD, 0, "amount \"12\" refused" },
		{ "neg", PH_E_FIELD, 0, "amount -1 refused" },
		{ "big", PH_E_FIELD, 0, "amount over PH_AMOUNT_MAX refused" },
		{ "max", PH_OK, PH_AMOUNT_MAX,
		    "amount PH_AMOUNT_MAX accepted" },
		{ "n", PH_E_FIELD, 0, "amount null refused" },
	};
	json_t *j = NULL;
	const json_t *o;
	const char *s;
	size_t n;
	int64_t v;
	int b;
	char tok[8];
	size_t i;

	if (parse("{\"s\":\"abc\",\"e\":\"\",\"n\":null,\"i\":12,\"r\":12.5,"
	    "\"r0\":100.0,\"x\":1e2,\"q\":\"12\",\"neg\":-1,"
	    "\"big\":1000000000000001,\"max\":1000000000000000,"
	    "\"t\":true,\"o\":{\"total\":7,\"id\":\"ab-1\"}}", &j) != PH_OK) {
		ok(0, "getter document parses: %s", d.msg);
		return;
	}
	ok(ph_json_get_string(j, "s", 8, &s, &n, &d) == PH_OK &&
	    strcmp(s, "abc") == 0 && n == 3, "string");
	ok(ph_json_get_string(j, "e", 8, &s, &n, &d) == PH_OK && n == 0,
	    "empty string allowed");
	is_int(ph_json_get_string(j, "s", 2, &s, &n, &d), PH_E_FIELD,
	    "string longer than max refused");
	is_int(ph_json_get_string(j, "i", 8, &s, &n, &d), PH_E_FIELD,
	    "number is not a string");
	is_int(ph_json_get_string(j, "nope", 8, &s, &n, &d), PH_E_FIELD,
	    "missing string");
	ok(strstr(d.msg, "nope") && strstr(d.msg, "missing"),
	    "missing: diagnostic names the path");
	is_int(ph_json_get_string(j, "n", 8, &s, &n, &d), PH_E_FIELD,
	    "null is missing");
	ok(ph_json_opt_string(j, "n", 8, &s, &n, &d) == PH_OK && s == NULL,
	    "optional: null is absent");
	ok(ph_json_opt_string(j, "nope", 8, &s, &n, &d) == PH_OK && s == NULL,
	    "optional: absent");
	is_int(ph_json_opt_string(j, "i", 8, &s, &n, &d), PH_E_FIELD,
	    "optional: present but not a string refused");
	for (i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		if (amounts[i].rc == PH_OK)
			ok(ph_json_get_amount(j, amounts[i].path, &v, &d) ==
			    PH_OK && v == amounts[i].value, "%s",
			    amounts[i].what);
		else
			is_int(ph_json_get_amount(j, amounts[i].path, &v, &d),
			    amounts[i].rc, "%s", amounts[i].what);
	}
	ok(ph_json_get_amount(j, "o.total", &v, &d) == PH_OK && v == 7,
	    "dotted path");
	is_int(ph_json_get_amount(j, "o.nope", &v, &d), PH_E_FIELD,
	    "dotted path to nothing");
	ok(strstr(d.msg, "o.nope") != NULL, "diagnostic names the whole path");
	is_int(ph_json_get_amount(j, "s.total", &v, &d), PH_E_FIELD,
	    "path through a string");
	ok(ph_json_lookup(j, "o.") == NULL && ph_json_lookup(j, ".o") == NULL &&
	    ph_json_lookup(j, "") == NULL, "malformed paths find nothing");
	ok(ph_json_get_int(j, "neg", -5, 5, &v, &d) == PH_OK && v == -1,
	    "int in range");
	is_int(ph_json_get_int(j, "i", 0, 10, &v, &d), PH_E_FIELD,
	    "int out of range");
	ok(ph_json_get_bool(j, "t", &b, &d) == PH_OK && b == 1, "bool");
	is_int(ph_json_get_bool(j, "i", &b, &d), PH_E_FIELD, "1 is not a bool");
	ok(ph_json_get_object(j, "o", &o, &d) == PH_OK && o != NULL,
	    "object");
	is_int(ph_json_get_object(j, "s", &o, &d), PH_E_FIELD,
	    "string is not an object");
	ok(ph_json_copy_token(j, "o.id", tok, sizeof(tok), "-", &d) == PH_OK &&
	    strcmp(tok, "ab-1") == 0, "token copied");
	is_int(ph_json_copy_token(j, "o.id", tok, sizeof(tok), NULL, &d),
	    PH_E_FIELD, "token with a character not allowed");
	is_int(ph_json_copy_token(j, "o.id", tok, 4, "-", &d), PH_E_FIELD,
	    "token that does not fit");
	is_int(ph_json_copy_token(j, "e", tok, sizeof(tok), NULL, &d),
	    PH_E_FIELD, "empty token refused");
	json_decref(j);
}

/* ph_json_depth_within counts as ph_json_parse does. */
static void
test_depth(void)
{
	json_t *v = json_loads("{\"a\": {\"b\": [1, {}]}}", 0, NULL);
	json_t *s = json_string("x");

	ok(v != NULL && ph_json_depth_within(v, 4) &&
	    !ph_json_depth_within(v, 3), "an object, an object, an array, an "
	    "object: 4 deep, not 3");
	ok(ph_json_depth_within(s, 0), "a string nests nothing");
	json_decref(v);
	json_decref(s);
}

int
main(void)
{
	test_parse();
	test_getters();
	test_depth();
	return done_testing();
}
