/*
 * Which build is running: the package version from configure.ac, and the
 * git commit the build was made from.  For --version now; for
 * payhook_build_info and /healthz alike, so that every place that names
 * the build names it the same way.
 */
#ifndef PH_VERSION_H
#define PH_VERSION_H

#include <stddef.h>

extern const char version_number[];	/* "0.1.0" */
/* "abc1234", or "" when built outside a git checkout (a release tarball). */
extern const char version_commit[];

/*
 * "PROG 0.1.0 (commit abc1234)", or "PROG 0.1.0" without a commit, into
 * buf.  Returns snprintf's value: the length it needed.
 */
int version_line(char *buf, size_t len, const char *prog);

#endif
