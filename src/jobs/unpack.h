/*
 * What a provider packs a download in (gzip, zip: the plugin ABI's enum
 * ph_download_packing), unpacked with libarchive.  Generic: which zip
 * member is wanted is the caller's word.
 */
#ifndef PH_UNPACK_H
#define PH_UNPACK_H

#include <stddef.h>
#include <stdio.h>

#include <payhook/provider.h>

/*
 * Writes what p[0..n) holds to out, at most max bytes (more is
 * PH_E_TOOBIG: no archive bomb): for PH_PACK_ZIP the one member whose
 * name ends with one of the endings given.  Endings are compared as bytes; "" and
 * NULL ones are skipped.  A zip with no such member, or more than one, is
 * PH_E_MALFORMED.
 */
int unpack(enum ph_download_packing kind, const char *const *ends, size_t nends,
    const unsigned char *p, size_t n, FILE *out, size_t max,
    struct ph_diag *diag);

#endif
