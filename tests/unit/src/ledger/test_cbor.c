/*
 * The ledger's records in CBOR (src/ledger/ledger_cbor.c): what is written
 * reads back the same; what this payhook never writes is not a record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ledger/order.h"
#include "../../lib/ledger_fixture.h"
#include "../../lib/tap.h"

/* A record with every kind of value a record holds. */
static const char rec_text[] =
    "{\"v\":1,\"order_id\":\"A-1\",\"amount\":1234,\"refunded\":0,"
    "\"delta\":-5,\"min\":-9223372036854775808,"
    "\"max\":9223372036854775807,\"big\":4294967296,\"rate\":0.5,"
    "\"paid\":true,\"closed\":false,\"paid_at\":null,"
    "\"note\":\"\\u6536\\u6b3e \\\"ok\\\"\",\"empty\":\"\","
    "\"attempts\":[{\"profile\":\"wx\",\"at\":1700000000,\"meta\":{}},"
    "[],[1,[2,[3]]]],\"exceptions\":[]}";

/* Bytes that are not a record, each with why. */
static const struct {
	const char *hex, *why;
} refused[] = {
	{ "", "no bytes" },
	{ "80", "an array at the top" },
	{ "01", "an integer at the top" },
	{ "a1616101ff", "a byte after the record" },
	{ "a2616101", "a map one pair short" },
	{ "a161", "a key cut short" },
	{ "a16161", "a key without its value" },
	{ "a1616119", "an integer cut short" },
	{ "a1616101a0", "a second map after the first" },
	{ "a101 01", "an integer key" },
	{ "a2616101616102", "a key twice" },
	{ "a16161c101", "a tag" },
	{ "a161614101", "a byte string" },
	{ "a1616162ff41", "text that is not UTF-8" },
	{ "a16161620100", "text holding a NUL" },
	{ "a1620061 01", "a key holding a NUL" },
	{ "bf616101ff", "a map of indefinite length" },
	{ "a161619f01ff", "an array of indefinite length" },
	{ "a161617f6161ff", "text of indefinite length" },
	{ "a161611bffffffffffffffff", "an integer past 2^63 - 1" },
	{ "a161613b8000000000000000", "a negative integer past -2^63" },
	{ "a16161fa3fc00000", "a single-precision float" },
	{ "a16161f93e00", "a half-precision float" },
	{ "a16161fb7ff8000000000000", "a NaN" },
	{ "a16161f7", "undefined" },
	{ "a16161ff", "a lone break" },
	{ "a161619b00000000ffffffff", "an array longer than the bytes" },
	{ "bb0000000100000000", "a map longer than the bytes" },
	{ "a16161fc", "a reserved simple value" },
};

static size_t
unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = 0;
	unsigned int b;

	while (*hex != '\0' && n < cap) {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		if (sscanf(hex, "%2x", &b) != 1)
			break;
		out[n++] = (unsigned char)b;
		hex += 2;
	}
	return n;
}

static void
test_round_trip(void)
{
	json_t *rec, *back;
	struct ph_buf b;

	rec = json_loads(rec_text, JSON_REJECT_DUPLICATES, NULL);
	if (!ok(rec != NULL, "the sample record is JSON"))
		return;
	is_int(ledger_cbor_write(rec, &b), PH_OK, "a record is written");
	ok(b.len > 0 && (unsigned char)b.data[0] >= 0xa0 &&
	    (unsigned char)b.data[0] <= 0xbb, "... as a CBOR map of definite "
	    "length");
	ok(b.len < strlen(rec_text), "... shorter than its JSON text (%zu < "
	    "%zu bytes)", b.len, strlen(rec_text));
	back = ledger_cbor_read(b.data, b.len);
	ok(back != NULL && json_equal(rec, back), "it reads back the same");
	ok(back != NULL && strcmp(json_object_iter_key(json_object_iter(
	    back)), "v") == 0, "... its keys in the order written");
	json_decref(back);
	ph_buf_free(&b);
	json_decref(rec);

	rec = json_pack("{s:o}", "a", json_array());
	ok(ledger_cbor_write(rec, &b) == PH_OK && b.len == 4 &&
	    memcmp(b.data, "\xa1\x61\x61\x80", 4) == 0, "{\"a\": []} is the "
	    "four bytes RFC 8949 gives");
	ph_buf_free(&b);
	json_decref(rec);

	/* a key longer than any buffer a reader might have kept for one */
	{
		char key[1001];

		memset(key, 'k', sizeof(key) - 1);
		key[sizeof(key) - 1] = '\0';
		rec = json_pack("{s:{s:i}}", "data", key, 7);
		back = NULL;
		ok(ledger_cbor_write(rec, &b) == PH_OK &&
		    (back = ledger_cbor_read(b.data, b.len)) != NULL &&
		    json_equal(rec, back), "a key of 1,000 bytes reads back");
		json_decref(back);
		json_decref(rec);
		ph_buf_free(&b);
	}

	/* a longer head than needed is still the same value */
	{
		static const unsigned char wide[] = { 0xa1, 0x61, 0x61, 0x1b,
		    0, 0, 0, 0, 0, 0, 0, 7 };

		back = ledger_cbor_read(wide, sizeof(wide));
		ok(back != NULL && json_integer_value(json_object_get(back,
		    "a")) == 7, "an integer in a wider head than needed reads");
		json_decref(back);
	}
}

static void
test_write_refusals(void)
{
	struct ph_buf b;
	json_t *j;

	j = json_array();
	is_int(ledger_cbor_write(j, &b), PH_E_INTERNAL, "an array is not a "
	    "record");
	ph_buf_free(&b);
	json_decref(j);

	j = fx_nested(70);
	is_int(ledger_cbor_write(j, &b), PH_E_TOOBIG, "a record nested 70 "
	    "deep is refused (ledger_put keeps it as JSON text)");
	ph_buf_free(&b);
	json_decref(j);
}

static void
test_read_refusals(void)
{
	unsigned char buf[160];
	size_t i, n;
	json_t *j;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		n = unhex(refused[i].hex, buf, sizeof(buf));
		j = ledger_cbor_read(buf, n);
		ok(j == NULL, "not a record: %s", refused[i].why);
		json_decref(j);
	}

	/* 64 containers deep, the record's own included, is read; 65 not */
	for (n = 0; n < 63; n++) {
		buf[2 * n] = 0xa1;
		buf[2 * n + 1] = 0x60;		/* key "" */
	}
	buf[2 * n] = 0xa0;
	j = ledger_cbor_read(buf, 2 * n + 1);
	ok(j != NULL, "maps 64 deep read");
	json_decref(j);
	buf[2 * n] = 0xa1;
	buf[2 * n + 1] = 0x60;
	buf[2 * n + 2] = 0xa0;
	j = ledger_cbor_read(buf, 2 * n + 3);
	ok(j == NULL, "65 deep do not");
	json_decref(j);
}

/* Records shown both ways: every kind of value, each place a view
 * changes something, and text needing each escape. */
static const char *const view_recs[] = {
	"{\"v\":1,\"order_id\":\"A-1\",\"amount\":1234,\"delta\":-5,"
	"\"min\":-9223372036854775808,\"max\":9223372036854775807,"
	"\"paid\":true,\"closed\":false,\"paid_at\":null,"
	"\"created_at\":1700000000,\"updated_at\":-1,"
	"\"expires_at\":253402300800,\"closed_at\":\"already text\","
	"\"next_query_at\":[1],\"lease_until\":{\"deep\":[1,{\"x\":2}]},"
	"\"lease_owner\":\"host:1\",\"guard_until\":5,\"guard_owner\":null,"
	"\"note\":\"\\u6536\\u6b3e \\\"ok\\\" \\\\ / \\b\\f\\n\\r\\t"
	"\\u0001\\u001f\\u007f \\ud83d\\ude00\",\"\":\"empty key\","
	"\"attempts\":[{\"profile\":\"wx\",\"at\":1700000000,\"meta\":{}},"
	"[],[1,[2,[3]]],{\"at\":null},{\"at\":{\"at\":1}},7],"
	"\"exceptions\":[{\"type\":\"late\",\"at\":0,\"v\":1}]}",
	"{}",
	"{\"exceptions\":{\"at\":1},\"attempts\":\"none\"}",
	"{\"at\":1,\"occurred_at\":2,\"sent_at\":3,\"v\":4}",
};

/* The text the API showed before: the record's tree, shown by spec and
 * dumped by jansson. */
static char *
view_by_tree(const struct ph_buf *rec, const struct order_api_spec *spec)
{
	json_t *j = order_view_new(ledger_cbor_read(rec->data, rec->len),
	    spec);
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

static void
test_view_same(void)
{
	static const struct {
		const struct order_api_spec *spec;
		const char *name;
	} specs[] = {
		{ &order_api_order, "order" },
		{ &order_api_event, "event" },
		{ &order_api_refund, "refund" },
	};
	struct ph_buf rec, out;
	size_t i, k;
	json_t *j;
	char *want;

	for (i = 0; i < sizeof(view_recs) / sizeof(view_recs[0]); i++) {
		j = json_loads(view_recs[i], JSON_REJECT_DUPLICATES, NULL);
		if (!ok(j != NULL && ledger_cbor_write(j, &rec) == PH_OK,
		    "view sample %zu is a record", i)) {
			json_decref(j);
			continue;
		}
		for (k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
			want = view_by_tree(&rec, specs[k].spec);
			ph_buf_init(&out, 1 << 20);
			ok(ledger_cbor_view(rec.data, rec.len, specs[k].spec,
			    &out) == PH_OK && want != NULL &&
			    strcmp(out.data, want) == 0, "sample %zu as an %s: "
			    "the same text as through the tree", i,
			    specs[k].name);
			if (want != NULL && (out.data == NULL ||
			    strcmp(out.data, want) != 0))
				diag("want %s\n#  got %s", want,
				    out.data != NULL ? out.data : "(none)");
			free(want);
			ph_buf_free(&out);
		}
		ph_buf_free(&rec);
		json_decref(j);
	}
}

static void
test_view_text(void)
{
	static const char want[] = "{\"order_id\":\"A\",\"created_at\":"
	    "\"2023-11-14T22:13:20Z\",\"attempts\":[{\"at\":"
	    "\"1970-01-01T00:00:00Z\",\"x\":\"\\u001F\\\"\\\\\xc3\xa9\"},"
	    "5]}";
	struct ph_buf rec, out;
	json_t *j;

	j = json_pack("{s:i, s:s, s:I, s:{s:[i]}, s:[{s:i, s:s}, i]}",
	    "v", 1, "order_id", "A", "created_at", (json_int_t)1700000000,
	    "lease_owner", "x", 1, "attempts", "at", 0, "x",
	    "\x1f\"\\\xc3\xa9", 5);
	if (!ok(j != NULL && ledger_cbor_write(j, &rec) == PH_OK,
	    "an order with a lease, a time and an attempt is a record")) {
		json_decref(j);
		return;
	}
	ph_buf_init(&out, 1 << 20);
	ph_buf_puts(&out, "[");
	ok(ledger_cbor_view(rec.data, rec.len, &order_api_order, &out) ==
	    PH_OK && strcmp(out.data + 1, want) == 0, "it is shown without "
	    "its lease and version, times as RFC 3339, appended to what the "
	    "buffer held");
	if (out.data != NULL && strcmp(out.data + 1, want) != 0)
		diag("got %s", out.data + 1);
	ph_buf_free(&out);
	ph_buf_free(&rec);
	json_decref(j);

	j = json_pack("{s:s, s:f}", "order_id", "A", "rate", 0.5);
	ledger_cbor_write(j, &rec);
	ph_buf_init(&out, 1 << 20);
	ph_buf_puts(&out, "kept");
	is_int(ledger_cbor_view(rec.data, rec.len, &order_api_order, &out),
	    PH_E_UNSUPPORTED, "a record holding a double is left to the tree");
	ok(strcmp(out.data, "kept") == 0, "... and the buffer is as it was");
	ph_buf_free(&out);
	ph_buf_free(&rec);
	json_decref(j);
}

static void
test_view_refusals(void)
{
	unsigned char buf[160];
	struct ph_buf out;
	size_t i, n;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		n = unhex(refused[i].hex, buf, sizeof(buf));
		ph_buf_init(&out, 1 << 20);
		ph_buf_puts(&out, "kept");
		ok(ledger_cbor_view(buf, n, &order_api_order, &out) ==
		    PH_E_STORE && strcmp(out.data, "kept") == 0, "not shown, "
		    "buffer as it was: %s", refused[i].why);
		ph_buf_free(&out);
	}
	/* what the view leaves out is checked all the same */
	n = unhex("a2616101 6176 a1616162ff41", buf, sizeof(buf));
	ph_buf_init(&out, 1 << 20);
	is_int(ledger_cbor_view(buf, n, &order_api_order, &out), PH_E_STORE,
	    "text that is not UTF-8 under a key the view drops is refused");
	ph_buf_free(&out);
	n = unhex("a1 6b6c656173655f6f776e6572 a2616101616102", buf,
	    sizeof(buf));
	ph_buf_init(&out, 1 << 20);
	is_int(ledger_cbor_view(buf, n, &order_api_order, &out), PH_E_STORE,
	    "a key twice in a map the view drops is refused");
	ph_buf_free(&out);

	for (n = 0; n < 63; n++) {
		buf[2 * n] = 0xa1;
		buf[2 * n + 1] = 0x60;
	}
	buf[2 * n] = 0xa0;
	ph_buf_init(&out, 1 << 20);
	ok(ledger_cbor_view(buf, 2 * n + 1, &order_api_order, &out) == PH_OK &&
	    out.len == 63 * 5 + 2, "maps 64 deep are shown");
	ph_buf_free(&out);
	buf[2 * n] = 0xa1;
	buf[2 * n + 1] = 0x60;
	buf[2 * n + 2] = 0xa0;
	ph_buf_init(&out, 1 << 20);
	is_int(ledger_cbor_view(buf, 2 * n + 3, &order_api_order, &out),
	    PH_E_STORE, "65 deep are not");
	ph_buf_free(&out);
}

/* Is the record written from fields the bytes of the tree json_pack and
 * json_object_update would make of them? */
static int
fields_same(const struct ledger_field *f, size_t n, json_t *tree,
    const json_t *extra)
{
	struct ph_buf a, b;
	int same;

	if (extra != NULL)
		json_object_update(tree, (json_t *)extra);
	same = ledger_cbor_fields(f, n, extra, &a) == PH_OK &&
	    ledger_cbor_write(tree, &b) == PH_OK && a.len == b.len &&
	    memcmp(a.data, b.data, a.len) == 0;
	ph_buf_free(&a);
	ph_buf_free(&b);
	json_decref(tree);
	return same;
}

static void
test_fields(void)
{
	const struct ledger_field f[] = {
		LEDGER_INT("v", 1),
		LEDGER_STR("order_id", "A-1"),
		LEDGER_INT("amount", 1234),
		LEDGER_INT("delta", -5),
		LEDGER_INT("min", INT64_MIN),
		LEDGER_INT("max", INT64_MAX),
		LEDGER_STR("note", "\xe6\x94\xb6\xe6\xac\xbe \"ok\""),
		LEDGER_STR("empty", ""),
	};
	const size_t n = sizeof(f) / sizeof(f[0]);
	struct ph_buf b;
	json_t *extra;

	ok(fields_same(f, n, json_pack("{s:i, s:s, s:i, s:i, s:I, s:I, s:s, "
	    "s:s}", "v", 1, "order_id", "A-1", "amount", 1234, "delta", -5,
	    "min", (json_int_t)INT64_MIN, "max", (json_int_t)INT64_MAX, "note",
	    "\xe6\x94\xb6\xe6\xac\xbe \"ok\"", "empty", ""), NULL),
	    "a record from its fields: the bytes of its tree");
	extra = json_pack("{s:i, s:{s:[i, s]}, s:s}", "amount", 99, "expected",
	    "a", 1, "b", "order_id", "B-2");
	ok(fields_same(f, n, json_pack("{s:i, s:s, s:i, s:i, s:I, s:I, s:s, "
	    "s:s}", "v", 1, "order_id", "A-1", "amount", 1234, "delta", -5,
	    "min", (json_int_t)INT64_MIN, "max", (json_int_t)INT64_MAX, "note",
	    "\xe6\x94\xb6\xe6\xac\xbe \"ok\"", "empty", ""), extra),
	    "... with extra members: one in a field's place, one after");
	json_decref(extra);
	ok(fields_same(f, 1, json_pack("{s:i}", "v", 1), NULL),
	    "... of one field");
	{
		const struct ledger_field bad[] = {
			LEDGER_STR("order_id", "A-\xff"),
		};
		const struct ledger_field none[] = {
			LEDGER_STR("order_id", NULL),
		};

		is_int(ledger_cbor_fields(bad, 1, NULL, &b), PH_E_INTERNAL,
		    "text that is not UTF-8 is refused, as a tree refuses it");
		ph_buf_free(&b);
		is_int(ledger_cbor_fields(none, 1, NULL, &b), PH_E_INTERNAL,
		    "... and no text at all");
		ph_buf_free(&b);
	}
	extra = json_array();
	is_int(ledger_cbor_fields(f, n, extra, &b), PH_E_INTERNAL, "extra "
	    "members must be an object's");
	ph_buf_free(&b);
	json_decref(extra);
}

int
main(void)
{
	test_round_trip();
	test_write_refusals();
	test_read_refusals();
	test_view_same();
	test_view_text();
	test_view_refusals();
	test_fields();
	return done_testing();
}
