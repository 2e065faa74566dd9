/*
 * Opening a store: where an engine is chosen.  Apart from store.c so that
 * the engines, which build on store.c, are called by a file above it and
 * not by it.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <payhook/sdk.h>

#include "store/store_int.h"

/*
 * Creates the folder that holds path when it is missing (mode 0700): the
 * LMDB file's, and with either engine the files local to a host beside
 * it (metrics, the archive, the group commit's).
 */
int
store_mkparent(const char *path, struct ph_diag *diag)
{
	char *tmp, *dir;
	struct stat st;
	int rc = PH_OK;

	if ((tmp = strdup(path)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	dir = dirname(tmp);
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || mkdir(dir, 0700) == -1)
			rc = ph_fail(diag, PH_E_IO, "database folder %s: %s",
			    dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode))
		rc = ph_fail(diag, PH_E_IO, "database folder %s: not a folder",
		    dir);
	free(tmp);
	return rc;
}


int
store_open(const char *path, size_t map_size, int flags, struct store **out,
    struct ph_diag *diag)
{
	return store_lmdb_open(path, map_size, flags, out, diag);
}

int
store_open_spec(const struct store_spec *spec, int flags, struct store **out,
    struct ph_diag *diag)
{
	int rc;

	*out = NULL;
	switch (spec->kind) {
	case STORE_LMDB:
		return store_lmdb_open(spec->path, spec->map_size, flags, out,
		    diag);
	case STORE_POSTGRESQL:
		if (spec->path != NULL && spec->path[0] != '\0' &&
		    (rc = store_mkparent(spec->path, diag)) != PH_OK)
			return rc;
		return store_pg_open(spec, flags, out, diag);
	}
	return ph_fail(diag, PH_E_CONFIG, "store: unknown engine %d",
	    (int)spec->kind);
}
