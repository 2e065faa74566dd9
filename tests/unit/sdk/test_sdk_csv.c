/*
 * The SDK's reading of one column of a CSV statement's data line
 * (sdk/statement.c): ph_csv_row_token.
 */
#include <string.h>

#include <payhook/sdk.h>

#include "../lib/tap.h"

enum { COL_ID, COL_ORDER, COL_MISSING, COL_N };

static struct ph_diag d;

/* The line "ch_1,o-1,,x y" with the layout's columns id at 0, order at
 * 1 and no column for the third name. */
static void
row_of(struct ph_csv_row *r)
{
	static const char line[] = "ch_1,o-1,,x y";

	memset(r, 0, sizeof(*r));
	r->nf = ph_csv_split(line, strlen(line), r->f, r->n,
	    PH_CSV_FIELDS_MAX);
	r->col[COL_ID] = 0;
	r->col[COL_ORDER] = 1;
	r->col[COL_MISSING] = -1;
}

int
main(void)
{
	struct ph_csv_row r;
	char dst[8], small[4];

	row_of(&r);
	is_int(r.nf, 4, "four fields");
	is_int(ph_csv_row_token(&r, COL_ID, "id", 7, 7, "_", dst,
	    sizeof(dst), &d), PH_OK, "a token with extra");
	is_str(dst, "ch_1", "... copied");
	is_int(ph_csv_row_token(&r, COL_ORDER, "order_no", 7, 7, "-", dst,
	    sizeof(dst), &d), PH_OK, "another column");
	is_str(dst, "o-1", "... copied");
	is_int(ph_csv_row_token(&r, COL_ID, "id", 7, 7, NULL, dst,
	    sizeof(dst), &d), PH_E_MALFORMED, "a byte not in extra");
	is_str(d.msg, "line 7: id is invalid", "... %s", d.msg);
	is_int(ph_csv_row_token(&r, COL_ID, "id", 9, 3, "_", dst,
	    sizeof(dst), &d), PH_E_MALFORMED, "longer than max");
	is_str(d.msg, "line 9: id is invalid", "... %s", d.msg);
	is_int(ph_csv_row_token(&r, COL_ID, "id", 7, 7, "_", small,
	    sizeof(small), &d), PH_E_MALFORMED, "longer than dst");
	is_int(ph_csv_row_token(&r, COL_MISSING, "refund_no", 7, 7, NULL,
	    dst, sizeof(dst), &d), PH_E_MALFORMED, "a column the line lacks");
	is_str(d.msg, "line 7: refund_no is invalid", "... %s", d.msg);
	r.col[COL_MISSING] = 2;
	is_int(ph_csv_row_token(&r, COL_MISSING, "refund_no", 7, 7, NULL,
	    dst, sizeof(dst), &d), PH_E_MALFORMED, "an empty field");
	r.col[COL_MISSING] = 3;
	is_int(ph_csv_row_token(&r, COL_MISSING, "x", 7, 7, NULL, dst,
	    sizeof(dst), &d), PH_E_MALFORMED, "a blank");
	r.col[COL_MISSING] = 9;
	is_int(ph_csv_row_token(&r, COL_MISSING, "x", 7, 7, NULL, dst,
	    sizeof(dst), NULL), PH_E_MALFORMED, "a column past the fields");
	is_int(ph_csv_row_token(&r, -1, "x", 7, 7, NULL, dst, sizeof(dst),
	    NULL), PH_E_MALFORMED, "a column of no layout");
	is_int(ph_csv_row_token(&r, PH_CSV_NAMES_MAX, "x", 7, 7, NULL, dst,
	    sizeof(dst), NULL), PH_E_MALFORMED, "a column past the layout");
	return done_testing();
}
