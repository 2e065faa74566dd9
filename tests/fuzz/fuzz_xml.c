/* The SDK's flat XML decoder (WeChat v2 bodies), and the writer on what
 * it decoded: whatever parses must write back and parse to the same. */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ph_xml_limits lim = { 65536, 64, 8192 };
	struct ph_kvlist kv, again;
	struct ph_diag diag;
	struct ph_buf out;

	ph_kvlist_init(&kv, lim.max_fields);
	memset(&diag, 0, sizeof(diag));
	if (ph_xml_parse_flat(data, size, size > 0 && data[0] == '<' &&
	    size > 1 && data[1] == 'x' ? "xml" : NULL, &lim, &kv, &diag) ==
	    PH_OK) {
		ph_buf_init(&out, 4 * 65536);
		if (ph_xml_write_flat("xml", &kv, &out) == PH_OK &&
		    !out.err) {
			ph_kvlist_init(&again, lim.max_fields);
			if (ph_xml_parse_flat((const unsigned char *)out.data,
			    out.len, "xml", &lim, &again, &diag) == PH_OK)
				fz_check_same_fields(&kv, &again, 0);
			ph_kvlist_free(&again);
		}
		ph_buf_free(&out);
		ph_buf_init(&out, 65536);
		(void)ph_canonical_join(&kv, NULL, 1, &out);
		ph_buf_free(&out);
	}
	ph_kvlist_free(&kv);
	return 0;
}
