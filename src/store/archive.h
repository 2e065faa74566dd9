/*
 * The notification archive: every notification payhook receives, with
 * its raw body and headers, profile, time, verdict and outcome, kept for
 * archive_days so that one refused by a configuration mistake can be
 * replayed once the mistake is fixed.
 *
 * It lives in its own LMDB file (<db_path>-archive), written without
 * fsync: it is a diagnostic record, not a fact about money, and must never
 * slow down or endanger the acknowledgement path.  Authorization and
 * Cookie headers are kept only as SHA-256 digests; signatures are kept, as
 * a replay must verify them again.
 */
#ifndef PH_ARCHIVE_H
#define PH_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <payhook/provider.h>

struct archive_rec {
	int64_t at;
	const char *profile;
	const char *provider;
	const char *method;
	const char *content_type;
	const struct ph_header *headers;
	size_t nheaders;
	const unsigned char *body;
	size_t body_len;
	const char *verdict;		/* "verified", "refused" */
	const char *reason;		/* why refused, or "" */
	const char *order_id;		/* "" when unknown */
	const char *outcome;		/* the ledger's, or the refusal's */
	uint64_t replay_of;		/* the archived id replayed, or 0 */
};

/* Opens the archive beside the database; without it nothing is kept. */
int archive_open(const char *db_path, size_t map_mb);
void archive_close(void);
/* Keeps one notification; its id, or 0 when it could not be kept. */
uint64_t archive_put(const struct archive_rec *r);
/* The record id (caller frees), or PH_E_NOTFOUND. */
int archive_get(uint64_t id, json_t **out);
/* Records with id > after, at most limit, oldest first (caller frees). */
int archive_list(uint64_t after, size_t limit, json_t **out);
/* Drops records received before `before`; *removed counts them. */
int archive_prune(int64_t before, size_t *removed);
/*
 * Notes that a refused notification named order_id, so the sweeper asks
 * the provider about it; at most per_minute per profile.  1 if noted.
 */
int archive_hint(const char *profile, const char *order_id, int64_t now,
    unsigned long per_minute);
/* The order ids hinted since the last call, removing them (caller frees). */
int archive_hints_take(size_t limit, json_t **ids);

/* The raw body of a record (caller frees *body). */
int archive_body(const json_t *rec, unsigned char **body, size_t *len);

#endif
