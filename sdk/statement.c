/*
 * Statement drivers for statement_line(): the opening and closing every
 * provider's reader shares (its state kept in struct ph_statement, the
 * line's CR and NUL checks, facts counted), and a whole reader for the
 * CSV statements of named columns closed by "total,<rows>,<sum>" that
 * payhook defines where a provider has no statement file of its own.
 */
#include <stdint.h>
#include <string.h>

#include <payhook/sdk.h>

#define PH_CSV_MAGIC	0x70686331u	/* "phc1": the state was started */

/* The CSV reader's state, in struct ph_statement between lines. */
struct ph_csv_state {
	uint32_t magic;
	int phase;		/* 0 header, 1 rows, 2 after the total */
	int ncols;
	int col[PH_CSV_NAMES_MAX];	/* field index of each name, or -1 */
	uint64_t rows;
	int64_t sum;
};

_Static_assert(sizeof(struct ph_csv_state) <= PH_STATEMENT_STATE_MAX,
    "the statement state must fit in struct ph_statement");

int
ph_statement_drive(const void *ctx, struct ph_statement *st, void *state,
    size_t size, uint32_t magic, ph_statement_step_fn step,
    const char *line, size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	uint32_t have;
	int64_t sum;
	int rc;

	if (ctx == NULL || st == NULL || ev == NULL || state == NULL ||
	    step == NULL || size < sizeof(magic) ||
	    size > PH_STATEMENT_STATE_MAX || (line == NULL && len != 0))
		return ph_fail(diag, PH_E_INTERNAL, "statement: NULL argument");
	memset(ev, 0, sizeof(*ev));
	ev->kind = PH_EV_IGNORED;
	memcpy(state, st->state, size);
	memcpy(&have, state, sizeof(have));
	if (have != magic) {
		memset(state, 0, size);
		memcpy(state, &magic, sizeof(magic));
	}
	if (line != NULL) {
		/* Lines come without their terminator; a stray CR is one. */
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (memchr(line, '\0', len) != NULL)
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: a NUL "
			    "byte", (unsigned long long)st->line);
	}
	if ((rc = step(ctx, state, st, line, len, ev, diag)) != PH_OK) {
		memset(ev, 0, sizeof(*ev));
		return rc;
	}
	if (ev->kind == PH_EV_PAYMENT_SUCCEEDED ||
	    ev->kind == PH_EV_REFUND_SUCCEEDED) {
		/* Each amount is bounded (PH_AMOUNT_MAX), their sum is not:
		 * no real statement comes near, so one that does is refused. */
		if (__builtin_add_overflow(st->total, ev->amount, &sum)) {
			memset(ev, 0, sizeof(*ev));
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: the "
			    "statement's amounts add up past what an integer "
			    "of minor units holds", (unsigned long long)
			    st->line);
		}
		st->total = sum;
		st->facts++;
	}
	memcpy(st->state, state, size);
	return PH_OK;
}

int
ph_csv_split(const char *line, size_t len, const char **f, size_t *n,
    int max)
{
	size_t i, start = 0;
	int k = 0;

	if (memchr(line, '"', len) != NULL)
		return -1;
	for (i = 0; i <= len; i++) {
		if (i < len && line[i] != ',')
			continue;
		if (k == max)
			return -1;
		f[k] = line + start;
		n[k] = i - start;
		k++;
		start = i + 1;
	}
	return k;
}

int
ph_csv_token(const char *f, size_t n, size_t max, const char *extra,
    char *dst, size_t cap)
{
	if (n == 0 || n > max || n >= cap || !ph_token_valid(f, n, max, extra))
		return -1;
	memcpy(dst, f, n);
	dst[n] = '\0';
	return 0;
}

int
ph_csv_row_token(const struct ph_csv_row *r, int col, const char *name,
    uint64_t no, size_t max, const char *extra, char *dst, size_t cap,
    struct ph_diag *diag)
{
	int c = col >= 0 && col < PH_CSV_NAMES_MAX ? r->col[col] : -1;

	if (c < 0 || c >= r->nf ||
	    ph_csv_token(r->f[c], r->n[c], max, extra, dst, cap) != 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: %s is invalid",
		    (unsigned long long)no, name);
	return PH_OK;
}

/* The header: where each of the layout's names stands. */
static int
ph_csv_header(const struct ph_csv_layout *lay, struct ph_csv_state *s,
    const struct ph_csv_row *r, uint64_t no, struct ph_diag *diag)
{
	int i, j;

	if (r->nf < 1)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: not a "
		    "statement header", (unsigned long long)no);
	for (j = 0; j < lay->nnames; j++)
		s->col[j] = -1;
	for (i = 0; i < r->nf; i++)
		for (j = 0; j < lay->nnames; j++) {
			if (r->n[i] != strlen(lay->names[j]) ||
			    memcmp(r->f[i], lay->names[j], r->n[i]) != 0)
				continue;
			if (s->col[j] != -1)
				return ph_fail(diag, PH_E_MALFORMED, "line %llu: "
				    "column %s twice", (unsigned long long)no,
				    lay->names[j]);
			s->col[j] = i;
		}
	for (j = 0; j < lay->nnames; j++)
		if (s->col[j] < 0 && !(lay->optional & (1u << j)))
			return ph_fail(diag, PH_E_MALFORMED, "line %llu: no "
			    "column %s", (unsigned long long)no,
			    lay->names[j]);
	s->ncols = r->nf;
	s->phase = 1;
	return PH_OK;
}

/* The total line: total,<rows>,<sum>, which must agree with the rows. */
static int
ph_csv_total(const struct ph_csv_layout *lay, struct ph_csv_state *s,
    const struct ph_csv_row *r, uint64_t no, struct ph_diag *diag)
{
	int64_t count, sum;

	if (r->nf != 3 ||
	    ph_money_parse_minor(r->f[1], r->n[1], &count) != PH_OK ||
	    ph_money_parse_minor(r->f[2], r->n[2], &sum) != PH_OK)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the total line "
		    "is not total,<rows>,<sum of %s>", (unsigned long long)no,
		    lay->sum_of);
	if ((uint64_t)count != s->rows || sum != s->sum)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: the total says "
		    "%lld rows of %lld fen, the statement has %llu of %lld",
		    (unsigned long long)no, (long long)count, (long long)sum,
		    (unsigned long long)s->rows, (long long)s->sum);
	s->phase = 2;
	return PH_OK;
}

/* A data line, given to the layout's row reader. */
static int
ph_csv_data(const struct ph_csv_layout *lay, const void *ctx,
    struct ph_csv_state *s, struct ph_csv_row *r, uint64_t no,
    struct ph_event *ev, struct ph_diag *diag)
{
	int rc;

	if (r->nf != s->ncols)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: %d fields, the "
		    "header has %d", (unsigned long long)no, r->nf, s->ncols);
	memcpy(r->col, s->col, sizeof(r->col));
	if ((rc = lay->row(ctx, r, no, ev, diag)) != PH_OK)
		return rc;
	if (ev->amount < 0 || s->sum > INT64_MAX - ev->amount)
		return ph_fail(diag, PH_E_TOOBIG, "line %llu: the total "
		    "overflows", (unsigned long long)no);
	s->sum += ev->amount;
	s->rows++;
	return PH_OK;
}

/* One step of the CSV reader: ctx is the struct ph_csv_call below. */
struct ph_csv_call {
	const struct ph_csv_layout *lay;
	const void *ctx;
};

static int
ph_csv_step(const void *p, void *state, const struct ph_statement *st,
    const char *line, size_t len, struct ph_event *ev, struct ph_diag *diag)
{
	struct ph_csv_row row;
	const struct ph_csv_call *call = p;
	struct ph_csv_state *s = state;

	if (line == NULL)
		return s->phase == 2 ? PH_OK : ph_fail(diag, PH_E_MALFORMED,
		    "the statement ends after line %llu without its total line "
		    "(truncated?)", (unsigned long long)st->line);
	if (s->phase == 2)
		return len == 0 ? PH_OK : ph_fail(diag, PH_E_MALFORMED,
		    "line %llu: text after the total line",
		    (unsigned long long)st->line);
	/* An optional UTF-8 BOM before the header. */
	if (s->phase == 0 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	/* -1 (quoted, or too many fields) is no header, total or row. */
	row.nf = ph_csv_split(line, len, row.f, row.n, PH_CSV_FIELDS_MAX);
	if (row.nf < 0)
		return ph_fail(diag, PH_E_MALFORMED, "line %llu: %s",
		    (unsigned long long)st->line, memchr(line, '"', len) !=
		    NULL ? "a quoted field: this statement's fields are never "
		    "quoted (a spreadsheet's export quotes them)" : "more "
		    "fields than any statement has");
	if (s->phase == 0)
		return ph_csv_header(call->lay, s, &row, st->line, diag);
	if (len >= 6 && memcmp(line, "total,", 6) == 0)
		return ph_csv_total(call->lay, s, &row, st->line, diag);
	return ph_csv_data(call->lay, call->ctx, s, &row, st->line, ev, diag);
}

int
ph_csv_statement_line(const struct ph_csv_layout *lay, const void *ctx,
    struct ph_statement *st, const char *line, size_t len,
    struct ph_event *ev, struct ph_diag *diag)
{
	const struct ph_csv_call call = { lay, ctx };
	struct ph_csv_state s;

	if (lay == NULL || lay->row == NULL || lay->nnames < 1 ||
	    lay->nnames > PH_CSV_NAMES_MAX || ctx == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "statement: bad layout");
	return ph_statement_drive(&call, st, &s, sizeof(s), PH_CSV_MAGIC,
	    ph_csv_step, line, len, ev, diag);
}
