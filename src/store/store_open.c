/*
 * Opening a store: where an engine is chosen.  Apart from store.c so that
 * the engines, which build on store.c, are called by a file above it and
 * not by it.
 */
#include <payhook/sdk.h>

#include "store/store_int.h"

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
