/*
 * The notification archive: every notification payhook receives, its raw
 * body and headers as they came, with its profile, time, source, verdict
 * and outcome, kept for archive_days so that one refused by a
 * configuration mistake can be replayed once the mistake is fixed.
 *
 * It is a folder beside the database (<db_path>-archive/) of append-only
 * segment files, one a day and class, each record one write(2) of a fixed
 * header and the raw bytes (doc/design/store.md): no database transaction,
 * no flush, no escaping, on the notification's path.  It is a diagnostic
 * record, not a fact about money: a crash may lose its last records, never
 * anything of the store.  Authorization and Cookie headers are kept only
 * as SHA-256 digests; signatures are kept, as a replay verifies them again.
 *
 * Traffic nobody authenticated cannot crowd out the rest: notifications
 * are kept in three classes, each with its own share of the archive, and
 * the two unverified ones with rates per minute (in total, and per source
 * address or per profile); a class that is full drops its own newest
 * records and never touches another's.
 *
 * One archive per process, opened at start (like the log): archive_open().
 */
#ifndef PH_ARCHIVE_H
#define PH_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <payhook/provider.h>

enum archive_class {
	ARCHIVE_VERIFIED,	/* verified by its profile's credentials */
	ARCHIVE_OURS,		/* refused, but well-formed and naming one of
				 * our pending orders: maybe genuine */
	ARCHIVE_UNVERIFIED,	/* refused, anything else */
	ARCHIVE__MAX
};

const char *archive_class_name(enum archive_class c);

struct archive_limits {
	unsigned long days;		/* retention; 0: no archive */
	unsigned long max_mb;		/* the whole archive */
	unsigned long unverified_mb;	/* share of ARCHIVE_OURS, and again
					 * of ARCHIVE_UNVERIFIED */
	unsigned long unverified_per_minute;	/* each unverified class */
	unsigned long per_source;	/* UNVERIFIED per client address, OURS
					 * per profile, a minute */
};

struct archive_rec {
	int64_t at;
	enum archive_class class;
	const char *source;		/* client address, "" when unknown */
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

/*
 * Opens the archive beside the database, creating its folder; without it
 * nothing is kept.  PH_OK, or an error (logged) with no archive.
 */
int archive_open(const char *db_path, const struct archive_limits *lim);
void archive_close(void);

/*
 * May this process keep notifications now: its archive open, its folders,
 * budget and today's segments writable?  0, or -1 with the reason in why
 * (naming no path: /readyz shows it to anyone).
 */
int archive_writable(int64_t now, char *why, size_t cap);

/* Keeps one notification; its id, or 0 when it was not kept (no archive,
 * its class over its rate or share, a write error). */
uint64_t archive_put(const struct archive_rec *r);

/*
 * Starts *r as the record of req, the very bytes and headers as they
 * came, kept at `at` in class through profile's provider; the rest is
 * empty for the caller to fill.
 */
void archive_rec_init(struct archive_rec *r, const struct ph_request *req,
    int64_t at, enum archive_class class, const char *profile,
    const char *provider);

/*
 * The record as JSON for operators (caller frees): id, at, class, source,
 * profile, provider, method, content_type, headers [[name, value]...],
 * body (base64), body_sha256, verdict, reason, order_id, outcome,
 * replay_of; text that is not UTF-8 shows U+FFFD where its bytes were.
 * PH_E_NOTFOUND when there is no such record.
 */
int archive_get(uint64_t id, json_t **out);
/* Records with id > after, at most limit, in id order (caller frees). */
int archive_list(uint64_t after, size_t limit, json_t **out);

/* A record as it was received, for a replay (free with
 * archive_kept_free()). */
struct archive_kept {
	uint64_t id;
	int64_t at;
	enum archive_class class;
	char *profile, *method, *content_type;
	struct ph_header *headers;
	size_t nheaders;
	unsigned char *body;
	size_t body_len;
	unsigned char *raw;		/* owns every pointer above */
};
int archive_read(uint64_t id, struct archive_kept *e);
void archive_kept_free(struct archive_kept *e);

/*
 * Drops the days past archive_days, then, while a class holds more than
 * its share, its own oldest days before today; *removed counts the
 * records dropped.
 */
int archive_prune(int64_t now, size_t *removed);

/*
 * Notes that a refused notification named order_id, so the sweeper asks
 * the provider about it; at most per_minute per profile.  1 if noted.
 * Hints are files in the archive's folder: a refused notification leaves
 * the store of money facts exactly as it was.
 */
int archive_hint(const char *profile, const char *order_id, int64_t now,
    unsigned long per_minute);
/* The order ids hinted since the last call, removing them (caller frees). */
int archive_hints_take(size_t limit, json_t **ids);

#endif
