/*
 * Feeds a statement to a plugin's statement_line one line at a time, then
 * the end-of-statement call, checking every fact it returns.  For the
 * statement fuzz targets.  A line's CR before its LF is cut, the
 * diagnostic checked, and the events other than PH_EV_IGNORED; with raw
 * the lines go as they are and every event answered PH_OK is checked,
 * the diagnostic not (fuzz_alipay's statements).
 */
#ifndef PH_FZBILL_H
#define PH_FZBILL_H

#include <stdlib.h>
#include <string.h>

#include <payhook/provider.h>

#include "../fuzz.h"

static __attribute__((unused)) void
fz_bill_lines(const struct ph_provider *prov, void *ctx, const uint8_t *data,
    size_t size, int raw)
{
	struct ph_statement *st;
	struct ph_event ev;
	struct ph_diag diag;
	const uint8_t *p = data, *nl;
	size_t left = size;
	int rc = PH_OK;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		abort();
	while (left > 0 && rc == PH_OK) {
		size_t n, cut;
		char *line;

		nl = memchr(p, '\n', left);
		n = nl != NULL ? (size_t)(nl - p) : left;
		cut = !raw && n > 0 && p[n - 1] == '\r' ? n - 1 : n;
		if ((line = fz_strndup(p, cut)) == NULL)
			abort();
		st->line++;
		memset(&diag, 0, sizeof(diag));
		rc = prov->statement_line(ctx, st, line, cut, &ev, &diag);
		if (!raw)
			fz_check_diag(&diag);
		if (raw || ev.kind != PH_EV_IGNORED)
			fz_check_event(rc, &ev, FZ_EV_ORDER);
		free(line);
		p += n + (nl != NULL);
		left -= n + (nl != NULL);
	}
	if (rc == PH_OK) {
		memset(&diag, 0, sizeof(diag));
		(void)prov->statement_line(ctx, st, NULL, 0, &ev, &diag);
	}
	free(st);
}

static __attribute__((unused)) void
fz_bill(const struct ph_provider *prov, void *ctx, const uint8_t *data,
    size_t size)
{
	fz_bill_lines(prov, ctx, data, size, 0);
}

#endif
