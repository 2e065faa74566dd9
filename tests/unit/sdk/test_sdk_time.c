/*
 * The SDK's RFC 3339 reader (sdk/money.c), and the dashed form that
 * shares its fields.
 */
#include <stdint.h>
#include <string.h>

#include <payhook/sdk.h>

#include "../lib/tap.h"

static void
good(const char *s, int64_t want)
{
	int64_t t = -1;

	ok(ph_time_parse_rfc3339(s, &t) == PH_OK && t == want, "%s is %lld",
	    s, (long long)want);
}

static void
bad(const char *s, const char *why)
{
	int64_t t;

	ok(ph_time_parse_rfc3339(s, &t) == PH_E_FIELD, "%s refused", why);
}

int
main(void)
{
	int64_t t;

	good("2018-06-08T10:34:56+08:00", 1528425296);
	good("2018-06-08T02:34:56Z", 1528425296);
	good("2018-06-07T21:04:56-05:30", 1528425296);
	good("2018-06-08T02:34:56.123Z", 1528425296);
	good("2018-06-08T02:34:56.123456789+00:00", 1528425296);
	good("1970-01-01T00:00:00Z", 0);
	good("2024-02-29T23:59:59+23:59", 1709251199 - 86340);

	bad("2018-06-08 10:34:56+08:00", "a blank for T");
	bad("2018-06-08t10:34:56+08:00", "a lower-case t");
	bad("2018-02-30T10:34:56+08:00", "a day not in the calendar");
	bad("2018-06-08T24:00:00Z", "hour 24");
	bad("2018-06-08T10:34:56+24:00", "an offset of a day");
	bad("2018-06-08T10:34:56+08:60", "an offset of 60 minutes");
	bad("2018-06-08T10:34:56+0800", "an offset without ':'");
	bad("2018-06-08T10:34:56", "no offset");
	bad("2018-06-08T10:34:56+08:00 ", "a trailing blank");
	bad("2018-06-08T10:34:56Zx", "bytes after Z");
	bad("2018-06-08T10:34:56.Z", "a point without digits");
	bad("2018-06-08T10:34:56.1234567890Z", "ten fraction digits");
	bad("2018-6-08T10:34:56Z", "a short month");
	bad("", "an empty text");
	bad(NULL, "no text");

	ok(ph_time_parse_dashed("2018-06-08 10:34:56", 19, 28800, &t) ==
	    PH_OK && t == 1528425296, "dashed, Beijing time");
	ok(ph_time_parse_dashed("2018-06-08T10:34:56", 19, 28800, &t) ==
	    PH_E_FIELD, "dashed refuses a T");
	ok(ph_time_parse_dashed("2018-06-08 10:34:5", 18, 28800, &t) ==
	    PH_E_FIELD, "dashed refuses 18 bytes");
	return done_testing();
}
