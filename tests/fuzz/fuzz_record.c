/*
 * The ledger's records in CBOR (src/ledger/ledger_cbor.c): any bytes a
 * damaged store could hold are read without a crash, and whatever reads
 * as a record is written and read back as the same record.  Shown as the
 * API shows an order straight from its bytes, a record gives the text its
 * tree gives; bytes the reader refuses are not shown.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ledger/order.h"
#include "fuzz.h"

/* The view from the bytes against the view from the tree. */
static void
check_view(const uint8_t *data, size_t size, const json_t *rec)
{
	struct ph_buf out;
	json_t *tree;
	char *want;
	int rc;

	ph_buf_init(&out, 64u << 20);
	rc = ledger_cbor_view(data, size, &order_api_order, &out);
	/* a double: the tree's to show, or to refuse */
	if (rc == PH_E_UNSUPPORTED) {
		if (out.len != 0)
			abort();
		ph_buf_free(&out);
		return;
	}
	if (rec == NULL) {
		if (rc != PH_E_STORE || out.len != 0)
			abort();	/* shown, or refused otherwise */
		ph_buf_free(&out);
		return;
	}
	if (rc != PH_OK)
		abort();
	tree = order_view_new(json_deep_copy(rec), &order_api_order);
	want = tree != NULL ? json_dumps(tree, JSON_COMPACT) : NULL;
	if (want == NULL || strcmp(want, out.data) != 0)
		abort();
	free(want);
	json_decref(tree);
	ph_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ph_buf b;
	json_t *rec, *back;

	rec = ledger_cbor_read(data, size);
	check_view(data, size, rec);
	if (rec == NULL)
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
