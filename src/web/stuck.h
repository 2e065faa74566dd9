/*
 * Claims a call of this process could not let go because the store failed
 * under it (an Idempotency-Key's, the pre-payment guard's): let go before
 * the process's next request, once the store answers again, so that a
 * retry is not refused as still running until the claim's lease ends.
 * A process answers one request at a time: these claims are its own and
 * their calls are over.
 */
#ifndef PH_WEB_STUCK_H
#define PH_WEB_STUCK_H

#include "store/store.h"

enum web_stuck_kind {
	WEB_STUCK_IDEM,		/* id: the Idempotency-Key */
	WEB_STUCK_GUARD,	/* id: the order's id */
};

/* Remembers the claim (copied); the oldest is forgotten when too many
 * wait (its lease ends it). */
void web_stuck_add(enum web_stuck_kind kind, const char *id,
    const char *token);
/* Lets go every claim remembered, while the store takes it. */
void web_stuck_release(struct store *s);

#endif
