/*
 * The ledger's records in CBOR (src/ledger/ledger_cbor.c): what is written
 * reads back the same; what this payhook never writes is not a record.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ledger_fixture.h"
#include "tap.h"

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

int
main(void)
{
	test_round_trip();
	test_write_refusals();
	test_read_refusals();
	return done_testing();
}
