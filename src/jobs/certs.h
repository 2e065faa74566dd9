/*
 * Certificate health: the expiry of every certificate a profile names
 * (provider roots and intermediates, platform certificates, the
 * merchant's signing and client certificates), for `payhook check`,
 * /metrics and a daily warning in the log.
 */
#ifndef PH_CERTS_H
#define PH_CERTS_H

#include <stdint.h>

#include "conf/conf.h"
#include "store/store.h"

#define CERTS_WARN_DAYS 30

struct certs_item {
	const char *profile;
	const char *key;		/* the config key naming the file */
	const char *file;		/* the path as configured */
	char subject[512];		/* one line, "/C=CN/O=...", UTF-8 */
	int64_t not_after;		/* unix seconds */
	int64_t not_before;		/* unix seconds; 0 when unreadable */
};

/* Calls fn for each certificate found in each profile's files. */
void certs_each(const struct conf *c,
    void (*fn)(const struct certs_item *it, void *arg), void *arg);

/*
 * Logs a warning for each certificate within CERTS_WARN_DAYS of its
 * expiry (or past it), at most once a day across all processes (the day
 * is noted in the store's meta database).
 */
void certs_warn_daily(const struct conf *c, struct store *s, int64_t now);

#endif
