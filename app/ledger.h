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

/*
 * Orders per state, kept in the meta database by the same transactions
 * that change states.  ledger_counts_init counts once, for a database
 * written before the counts existed; ledger_counts reads them.
 */
int ledger_counts_init(struct store *s);
int ledger_counts(struct store *s, uint64_t counts[], size_t n);

int ledger_apply(struct store *s, const struct ledger_fact *f,
    struct ledger_result *res, struct ph_diag *diag);

struct ledger_new_order {
	const char *order_id;
	const char *profile;		/* where the first attempt is made */
	int64_t amount;
	const char *currency;
	int64_t expires_at;		/* unix seconds; 0 for none */
	const json_t *attempt;		/* provider data of the first attempt,
					 * a JSON object, or NULL */
	int64_t first_query_at;		/* the sweeper's first look; 0: never */
};

/*
 * Registers an order (its profile is its first payment attempt).  The
 * same order again is not an error (*created 0, the stored order
 * returned); the same id with other content is PH_E_CONFLICT with the
 * stored order in *out.  Caller frees *out.
 */
int ledger_create_order(struct store *s, const struct ledger_new_order *n,
    int64_t now, json_t **out, int *created, struct ph_diag *diag);

/*
 * The pre-payment guard, in two steps around the provider queries the
 * caller makes in between.  ledger_guard_begin holds the order for hold_s
 * seconds under token: PH_OK (held, *order set), PH_E_NOTFOUND, or
 * PH_E_CONFLICT with *order set (already paid or closed, or another
 * attempt is being opened right now).  ledger_guard_end records the
 * attempt and lets go: PH_OK, or PH_E_CONFLICT when the order was paid
 * meanwhile or when an earlier attempt, still unsettled, was opened less
 * than hold_s seconds ago (the shopper may be paying it right now).  ledger_guard_release lets go without recording.
 */
int ledger_guard_begin(struct store *s, const char *order_id, int64_t now,
    int64_t hold_s, const char *token, json_t **order, struct ph_diag *diag);
int ledger_guard_end(struct store *s, const char *order_id, const char *token,
    const char *profile, const json_t *data, int64_t now, int64_t hold_s,
    int64_t next_query_at, json_t **order, struct ph_diag *diag);
void ledger_guard_release(struct store *s, const char *order_id,
    const char *token);

/* Order ids whose next query time is at or before now, earliest first,
 * at most limit, as a JSON array of strings (caller frees). */
int ledger_due(struct store *s, int64_t now, size_t limit, json_t **ids);

/*
 * Takes the sweeper's lease on a due order for lease_s seconds: PH_OK
 * (held, *order set), or PH_E_CONFLICT when someone else holds it or the
 * order no longer needs asking (then it also leaves the due list).
 */
int ledger_lease(struct store *s, const char *order_id, int64_t now,
    int64_t lease_s, const char *token, json_t **order);
/* Counts a query, sets the next one (0: none) and lets the lease go. */
int ledger_reschedule(struct store *s, const char *order_id,
    const char *token, int64_t next_at, int64_t now);
/*
 * Closes a PENDING order (the provider confirmed it unpaid): CLOSED, off
 * the due list, order.closed raised.  PH_E_CONFLICT if it is not PENDING.
 */
int ledger_close_order(struct store *s, const char *order_id, int64_t now,
    const char *reason, struct ledger_result *res, struct ph_diag *diag);

/* The stored order record, or PH_E_NOTFOUND.  Caller frees *out. */
int ledger_get_order(struct store *s, const char *order_id, json_t **out);

/*
 * Up to limit events with seq > after, in commit order, as a JSON array of
 * stored event records; *next is the last seq returned, or after.
 */
int ledger_events(struct store *s, uint64_t after, unsigned limit,
    json_t **out, uint64_t *next);

/*
 * Orders, in id order, in the given state (NULL: any), at most limit, as
 * a JSON array of stored records (caller frees); after: continue past this
 * order id ("" from the start).
 */
int ledger_list_orders(struct store *s, const char *state, const char *after,
    size_t limit, json_t **out);

/*
 * Drops dedup records first seen before `before` (unix seconds), in
 * batches of short transactions; *removed counts them.  A payment seen
 * again after its record is pruned is still a duplicate (its payment
 * record remains); pruning only forgets other facts' keys.
 */
int ledger_prune_dedup(struct store *s, int64_t before, size_t *removed);

#endif
