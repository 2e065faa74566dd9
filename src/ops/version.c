/*
 * The build's version and commit.  The commit comes from a header the
 * build writes (src/Makefile.inc), so that it follows every commit without
 * configure running again.
 */
#include <stdio.h>

#include "ops/version.h"
/* Through -I. (the build folder), which holds it in a VPATH build too. */
#include "src/ops/version_commit.h"

const char version_number[] = PACKAGE_VERSION;
const char version_commit[] = VERSION_COMMIT;

int
version_line(char *buf, size_t len, const char *prog)
{
	if (version_commit[0] == '\0')
		return snprintf(buf, len, "%s %s", prog, version_number);
	return snprintf(buf, len, "%s %s (commit %s)", prog, version_number,
	    version_commit);
}
