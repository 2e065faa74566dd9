/*
 * The ledger: the one place where facts about money are applied.  Each
 * call is one LMDB write transaction (dedup key, payment record, order
 * transition, outbox events) committed durably before it returns, so
 * whatever answers the provider afterwards answers about stored facts.
 */
#ifndef PH_LEDGER_H
#define PH_LEDGER_H

#include <stdint.h>

#include <jansson.h>

#include <payhook/provider.h>

#include "store.h"

enum ledger_outcome {
	LEDGER_APPLIED,		/* the order changed as the fact says */
	LEDGER_DUPLICATE,	/* seen before: nothing changed */
	LEDGER_RECORDED,	/* an exception was recorded and raised */
	LEDGER_CONFLICT,	/* a known key with a different payload */
	LEDGER_NOOP,		/* verified, nothing to do */
	LEDGER__MAX
};

/* A verified fact and where it came from. */
struct ledger_fact {
	const char *profile;		/* config profile it arrived through */
	const char *provider;		/* plugin's provider name */
	const char *source;		/* "notify", "query", "statement" */
	const struct ph_event *ev;
	int64_t now;			/* unix seconds */
};

struct ledger_result {
	enum ledger_outcome outcome;
	char event_type[48];		/* first event raised, "" if none */
	uint64_t seq;			/* its sequence number, 0 if none */
};

const char *ledger_outcome_name(enum ledger_outcome o);

int ledger_apply(struct store *s, const struct ledger_fact *f,
    struct ledger_result *res, struct ph_diag *diag);

/*
 * Registers an order.  The same order again is not an error (*created 0,
 * the stored order returned); the same id with other content is
 * PH_E_CONFLICT with the stored order in *out.  Caller frees *out.
 */
int ledger_create_order(struct store *s, const char *order_id,
    const char *profile, int64_t amount, const char *currency, int64_t now,
    json_t **out, int *created, struct ph_diag *diag);

/* The stored order record, or PH_E_NOTFOUND.  Caller frees *out. */
int ledger_get_order(struct store *s, const char *order_id, json_t **out);

/*
 * Up to limit events with seq > after, in commit order, as a JSON array of
 * stored event records; *next is the last seq returned, or after.
 */
int ledger_events(struct store *s, uint64_t after, unsigned limit,
    json_t **out, uint64_t *next);

#endif
