/*
 * The first pass's check that a statement lists each fact once, in eight
 * bytes a fact: a fingerprint (SHA-256 of a salt drawn for the run and
 * the fact's kind and dedup key) per fact, sorted once the statement is
 * read.  Facts whose fingerprint comes twice are then compared by their
 * keys in a second reading: only those are held whole.
 */
#ifndef PH_RECON_SEEN_H
#define PH_RECON_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>

struct recon_seen {
	unsigned char salt[16];	/* a collision never repeats in a rerun */
	uint64_t *fp;		/* owned */
	size_t n, cap;
	size_t ndup;		/* after recon_seen_sort: fp[0..ndup) are the
				 * fingerprints found more than once */
};

/* PH_OK, or PH_E_NOMEM, PH_E_INTERNAL (no randomness). */
int recon_seen_init(struct recon_seen *s);
/* Adds fact ev; PH_E_NOMEM. */
int recon_seen_add(struct recon_seen *s, const struct ph_event *ev);
/* Once every fact is added: how many fingerprints came more than once. */
size_t recon_seen_sort(struct recon_seen *s);
/* After recon_seen_sort: may ev be one of the facts listed twice? */
int recon_seen_suspect(const struct recon_seen *s, const struct ph_event *ev);
void recon_seen_free(struct recon_seen *s);

#endif
