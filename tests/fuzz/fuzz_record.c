/*
 * The ledger's records in CBOR (src/ledger/ledger_cbor.c): any bytes a
 * damaged store could hold are read without a crash, and whatever reads
 * as a record is written and read back as the same record.
 */
#include <stdlib.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ph_buf b;
	json_t *rec, *back;

	if ((rec = ledger_cbor_read(data, size)) == NULL)
		return 0;
	if (ledger_cbor_write(rec, &b) != PH_OK)
		abort();		/* what was read must write */
	back = ledger_cbor_read(b.data, b.len);
	if (back == NULL || !json_equal(rec, back))
		abort();
	json_decref(back);
	json_decref(rec);
	ph_buf_free(&b);
	return 0;
}
