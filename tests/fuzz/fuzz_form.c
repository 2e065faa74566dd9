/* The SDK's form decoder (UnionPay bodies) and encoder: whatever decodes
 * must encode and decode back to the same fields. */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ph_form_limits lim = { 65536, 128, 8192 };
	static const struct ph_form_limits big = { 1u << 20, 128, 65536 };
	struct ph_kvlist kv, again;
	struct ph_diag diag;
	struct ph_buf out;

	ph_kvlist_init(&kv, lim.max_fields);
	memset(&diag, 0, sizeof(diag));
	if (ph_form_parse(data, size, &lim, &kv, &diag) == PH_OK) {
		ph_buf_init(&out, 1u << 20);
		if (ph_form_write(&kv, &out) == PH_OK && !out.err) {
			ph_kvlist_init(&again, big.max_fields);
			if (ph_form_parse((const unsigned char *)out.data,
			    out.len, &big, &again, &diag) != PH_OK)
				abort();
			fz_check_same_fields(&kv, &again, 1);
			ph_kvlist_free(&again);
		}
		ph_buf_free(&out);
		(void)ph_kvlist_get(&kv, "orderId");
		ph_buf_init(&out, 1u << 20);
		(void)ph_canonical_join(&kv, NULL, 0, &out);
		ph_buf_free(&out);
	}
	ph_kvlist_free(&kv);
	return 0;
}
