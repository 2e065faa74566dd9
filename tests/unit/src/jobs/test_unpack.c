/*
 * unpack(): a download's gzip, or the one wanted member of a zip, to a
 * file; members named in GBK without the zip's UTF-8 flag (as Alipay's
 * bill archive names them) or in flagged UTF-8; never two members, never
 * more than the bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "jobs/unpack.h"
#include "../../lib/tap.h"

/* A fixture of tests/unit/data/unpack/ (make-fixtures.py made them). */
struct fx {
	unsigned char *p;
	size_t n;
};

static struct fx
fx(const char *name)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	struct fx f = { NULL, 0 };
	FILE *in;

	snprintf(path, sizeof(path), "%s/tests/unit/data/unpack/%s",
	    top != NULL && top[0] != '\0' ? top : ".", name);
	if ((in = fopen(path, "rb")) == NULL ||
	    (f.p = malloc(4 << 20)) == NULL) {
		fprintf(stderr, "# %s: cannot read (top_srcdir unset?)\n", path);
		abort();
	}
	f.n = fread(f.p, 1, 4 << 20, in);
	fclose(in);
	return f;
}

/* "业务明细.csv" in GBK and in UTF-8. */
static const char *const ends[] = {
	"\xd2\xb5\xce\xf1\xc3\xf7\xcf\xb8.csv",
	"\xe4\xb8\x9a\xe5\x8a\xa1\xe6\x98\x8e\xe7\xbb\x86.csv",
};

/* Runs unpack into a temporary file; its text in got (NUL-terminated). */
static int
run(enum ph_download_packing kind, const unsigned char *p, size_t n, size_t max,
    char *got, size_t cap, struct ph_diag *diag)
{
	FILE *f = tmpfile();
	size_t len;
	int rc;

	memset(diag, 0, sizeof(*diag));
	got[0] = '\0';
	if (f == NULL)
		return -1;
	rc = unpack(kind, ends, 2, p, n, f, max, diag);
	rewind(f);
	len = fread(got, 1, cap - 1, f);
	got[len] = '\0';
	fclose(f);
	return rc;
}

int
main(void)
{
	struct fx gbk = fx("bill-gbk.zip"), utf8 = fx("bill-utf8.zip"),
	    two = fx("two-wanted.zip"), bomb = fx("bomb.zip"), gz = fx("text.gz");
	struct ph_diag diag;
	char got[4096];
	int rc;

	rc = run(PH_PACK_ZIP, gbk.p, gbk.n, 1 << 20, got,
	    sizeof(got), &diag);
	is_int(rc, PH_OK, "zip, GBK names without the UTF-8 flag: unpacked");
	is_str(got, "detail,1\r\n", "the detail member, not the summary");

	rc = run(PH_PACK_ZIP, utf8.p, utf8.n, 1 << 20, got,
	    sizeof(got), &diag);
	is_int(rc, PH_OK, "zip, flagged UTF-8 names: unpacked");
	is_str(got, "detail,1\r\n", "the detail member, whatever the order");

	rc = run(PH_PACK_ZIP, two.p, two.n, 1 << 20, got,
	    sizeof(got), &diag);
	is_int(rc, PH_E_MALFORMED, "zip with two wanted members: refused");
	ok(strstr(diag.msg, "more than one") != NULL, "and says so: %s",
	    diag.msg);

	rc = run(PH_PACK_ZIP, bomb.p, bomb.n, 1 << 20, got,
	    sizeof(got), &diag);
	is_int(rc, PH_E_TOOBIG, "2 MiB unpacked from 2 KB over a 1 MiB "
	    "bound: refused");

	rc = run(PH_PACK_ZIP, gz.p, gz.n, 1 << 20, got, sizeof(got),
	    &diag);
	is_int(rc, PH_E_MALFORMED, "gzip given as a zip: refused");

	rc = run(PH_PACK_ZIP, (const unsigned char *)"<html>expired</html>",
	    20, 1 << 20, got, sizeof(got), &diag);
	is_int(rc, PH_E_MALFORMED, "a page instead of a zip: refused");

	rc = run(PH_PACK_ZIP, gbk.p, gbk.n - 40, 1 << 20,
	    got, sizeof(got), &diag);
	ok(rc != PH_OK, "a truncated zip: refused (%s)", ph_strerror(rc));

	rc = run(PH_PACK_GZIP, gz.p, gz.n, 1 << 20, got, sizeof(got),
	    &diag);
	is_int(rc, PH_OK, "gzip: unpacked");
	is_str(got, "hello\nbill\n", "gzip: its text");

	rc = run(PH_PACK_GZIP, gz.p, gz.n, 5, got, sizeof(got),
	    &diag);
	is_int(rc, PH_E_TOOBIG, "gzip over the bound: refused");

	rc = run(PH_PACK_NONE, (const unsigned char *)"plain\n", 6, 1 << 20,
	    got, sizeof(got), &diag);
	is_int(rc, PH_OK, "plain text: as given");
	is_str(got, "plain\n", "plain text: its bytes");
	free(gbk.p);
	free(utf8.p);
	free(two.p);
	free(bomb.p);
	free(gz.p);
	return done_testing();
}
