/* Money, currency, time, token and base64 parsing.  The checks are the
 * grammar itself: whatever parses must print back as the same text. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fz_strndup(data, size), again[64];
	unsigned char raw[1024];
	int64_t v;
	size_t n;
	int scale;

	if (ph_money_parse_minor(s, size, &v) == PH_OK) {
		if (v < 0 || v > PH_AMOUNT_MAX)
			abort();
		snprintf(again, sizeof(again), "%" PRId64, v);
		if (strlen(again) != size || memcmp(again, s, size) != 0)
			abort();
	}
	for (scale = 0; scale <= 3; scale++)
		if (ph_money_parse_decimal(s, size, scale, &v) == PH_OK &&
		    (v < 0 || v > PH_AMOUNT_MAX))
			abort();
	(void)ph_currency_valid(s);
	if (ph_time_parse_compact(s, 28800, &v) == PH_OK && strlen(s) != 14)
		abort();
	(void)ph_time_parse_compact(s, -43200, &v);
	(void)ph_token_valid(s, size, PH_ID_MAX, "_-|*.:");
	(void)ph_token_valid(s, size, 8, NULL);
	(void)ph_base64_decode(s, size, raw, sizeof(raw), &n);
	(void)ph_base64_decode(s, size, raw, 3, &n);
	free(s);
	return 0;
}
