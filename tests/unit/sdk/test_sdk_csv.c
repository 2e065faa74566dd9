/*
 * The SDK's reading of one column of a CSV statement's data line
 * (sdk/statement.c): ph_csv_row_token; and ph_statement_drive's count of
 * the facts' amounts.
 */
#include <stdint.h>
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

/* Every line a payment of the greatest amount. */
static int
step_max(const void *ctx, void *state, const struct ph_statement *st,
    const char *line, size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	(void)ctx; (void)state; (void)st; (void)line; (void)len; (void)diag;
	ev->kind = PH_EV_PAYMENT_SUCCEEDED;
	ev->amount = PH_AMOUNT_MAX;
	return PH_OK;
}

/* More facts of the greatest amount than an int64_t sums: refused at the
 * line that would pass it, the count left as it was. */
static void
test_total_bound(void)
{
	struct ph_statement st;
	struct ph_event ev;
	uint32_t state[2];
	uint64_t n;
	int64_t before = 0;
	int rc = PH_OK;

	memset(&st, 0, sizeof(st));
	for (n = 1; n <= INT64_MAX / PH_AMOUNT_MAX + 1 && rc == PH_OK; n++) {
		st.line = n;
		before = st.total;
		rc = ph_statement_drive(&d, &st, state, sizeof(state), 7,
		    step_max, "x", 1, &ev, &d);
	}
	ok(rc == PH_E_MALFORMED && st.line == (uint64_t)(INT64_MAX /
	    PH_AMOUNT_MAX + 1), "a statement whose amounts sum past int64: "
	    "refused at the line that would pass it (line %llu)",
	    (unsigned long long)st.line);
	ok(strstr(d.msg, "add up past") != NULL, "... saying so: %s", d.msg);
	ok(st.total == before && st.facts == st.line - 1 && ev.kind == 0,
	    "... the count and the total as they were, no fact given");
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
	test_total_bound();
	return done_testing();
}
