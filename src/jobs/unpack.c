/*
 * Unpacking downloads with libarchive, streamed into a file: the packed
 * bytes are in memory (bounded by the call), the unpacked ones never are.
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include <payhook/sdk.h>

#include "jobs/unpack.h"

static int
unpack_write(FILE *out, const void *p, size_t n, size_t *total, size_t max,
    struct ph_diag *diag)
{
	if (n > max - *total)
		return ph_fail(diag, PH_E_TOOBIG, "download: more than %zu "
		    "bytes unpacked", max);
	*total += n;
	if (n > 0 && fwrite(p, 1, n, out) != n)
		return ph_fail(diag, PH_E_IO, "download: %s", strerror(errno));
	return PH_OK;
}

/* Whether a member's name ends with one of ends. */
static int
unpack_wanted(const char *const *ends, size_t nends, const char *name)
{
	size_t i, n, m;

	if (name == NULL)
		return 0;
	n = strlen(name);
	for (i = 0; i < nends; i++) {
		if (ends[i] == NULL || (m = strlen(ends[i])) == 0)
			continue;
		if (m <= n && memcmp(name + n - m, ends[i], m) == 0)
			return 1;
	}
	return 0;
}

int
unpack(enum ph_download_packing kind, const char *const *ends, size_t nends,
    const unsigned char *p, size_t n, FILE *out, size_t max,
    struct ph_diag *diag)
{
	struct archive *a = NULL;
	struct archive_entry *e;
	char buf[65536];
	size_t total = 0;
	la_ssize_t got;
	locale_t utf8, old = (locale_t)0;
	int rc = PH_OK, found = 0, r;

	if (kind == PH_PACK_NONE)
		return unpack_write(out, p, n, &total, max, diag);
	/*
	 * libarchive gives a member's name in the thread's locale: under
	 * "C" a name flagged UTF-8 has none.  C.UTF-8 gives those, and
	 * hands unflagged names (GBK, as Chinese providers write them)
	 * over as their bytes.
	 */
	if ((utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0)) !=
	    (locale_t)0)
		old = uselocale(utf8);
	if ((a = archive_read_new()) == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto done;
	}
	if (kind == PH_PACK_GZIP) {
		archive_read_support_filter_gzip(a);
		archive_read_support_format_raw(a);
	} else	/* the central directory read: a truncated zip is refused */
		archive_read_support_format_zip_seekable(a);
	if (archive_read_open_memory(a, p, n) != ARCHIVE_OK) {
		rc = ph_fail(diag, PH_E_MALFORMED, "download: %s",
		    archive_error_string(a));
		goto done;
	}
	/* ARCHIVE_WARN: a name that is not text in the locale; the member
	 * is still read, its name compared if there is one. */
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
	    r == ARCHIVE_WARN) {
		if (kind == PH_PACK_ZIP &&
		    !unpack_wanted(ends, nends, archive_entry_pathname(e)))
			continue;
		if (found++) {
			rc = ph_fail(diag, PH_E_MALFORMED, "download: more "
			    "than one member of the zip is wanted");
			goto done;
		}
		while ((got = archive_read_data(a, buf, sizeof(buf))) > 0)
			if ((rc = unpack_write(out, buf, (size_t)got, &total,
			    max, diag)) != PH_OK)
				goto done;
		if (got < 0) {
			rc = ph_fail(diag, PH_E_MALFORMED, "download: %s",
			    archive_error_string(a));
			goto done;
		}
	}
	if (r != ARCHIVE_EOF)
		rc = ph_fail(diag, PH_E_MALFORMED, "download: %s",
		    archive_error_string(a));
	else if (!found)
		rc = ph_fail(diag, PH_E_MALFORMED, "download: the zip holds "
		    "no member named as the provider names a statement");
done:
	if (a != NULL)
		archive_read_free(a);
	if (old != (locale_t)0) {
		uselocale(old);
		freelocale(utf8);
	}
	return rc;
}
