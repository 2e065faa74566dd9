/*
 * Signed event push: besides the pull feed (GET /events), each outbox
 * event is POSTed to every configured [push.NAME] endpoint, in commit
 * order, signed with HMAC-SHA256 in a "t=<unix>,v1=<hex>" header over
 * "<t>.<body>", and retried with backoff by the sweeper until a 2xx.
 * Every attempt goes into a delivery log.
 */
#ifndef PH_PUSH_H
#define PH_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf/conf.h"
#include "store/store.h"

struct push_stats {
	size_t delivered;
	size_t failed;		/* attempts without a 2xx */
	size_t waiting;		/* endpoints backing off after a failure,
				 * an event waiting for them */
};

/* Delivers what is due to every endpoint (one pass); an endpoint is held
 * for the pass under token (lease_s, renewed at every event), so that two
 * sweepers never send it the same events. */
int push_run(const struct conf *c, struct store *s, int64_t now,
    const char *token, struct push_stats *st);
/* Makes endpoint name deliver again from event seq on, at once.
 * PH_E_CONFLICT when seq is past *next, the next event it has to deliver:
 * that would skip events never delivered. */
int push_resend(struct store *s, const char *name, uint64_t from,
    uint64_t *next);
/* The delivery log of endpoint name (NULL: all), newest last. */
int push_log(struct store *s, const char *name, size_t limit, json_t **out);

#endif
