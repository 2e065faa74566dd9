/* The SDK's strict JSON decoder and its typed getters, on the paths the
 * providers read. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "fuzz.h"

static const char *const fz_paths[] = {
	"id", "event_type", "resource_type", "summary", "resource",
	"resource.ciphertext", "resource.nonce", "resource.associated_data",
	"resource.algorithm", "amount", "amount.total", "amount.currency",
	"amount.payer_total", "out_trade_no", "transaction_id", "trade_state",
	"mchid", "appid", "success_time", "order_id", "status", "channel",
	"paid", "a.b.c.d.e", "", ".", "..", "a..b", NULL,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ph_json_limits lim = { 65536, 8 };
	const struct json_t *o;
	struct json_t *doc = NULL;
	struct ph_diag diag;
	char tok[PH_ID_MAX + 1];
	const char *s;
	int64_t n;
	size_t i, len;
	int b;

	memset(&diag, 0, sizeof(diag));
	if (ph_json_parse(data, size, &lim, &doc, &diag) != PH_OK)
		return 0;
	for (i = 0; fz_paths[i] != NULL; i++) {
		(void)ph_json_lookup(doc, fz_paths[i]);
		(void)ph_json_get_string(doc, fz_paths[i], 256, &s, &len,
		    &diag);
		(void)ph_json_opt_string(doc, fz_paths[i], 16, &s, &len,
		    &diag);
		(void)ph_json_copy_token(doc, fz_paths[i], tok, sizeof(tok),
		    "_-", &diag);
		(void)ph_json_get_int(doc, fz_paths[i], -5, 5, &n, &diag);
		(void)ph_json_get_amount(doc, fz_paths[i], &n, &diag);
		(void)ph_json_get_bool(doc, fz_paths[i], &b, &diag);
		if (ph_json_get_object(doc, fz_paths[i], &o, &diag) == PH_OK)
			(void)ph_json_get_amount(o, "total", &n, &diag);
	}
	json_decref(doc);
	return 0;
}
