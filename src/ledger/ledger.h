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

#include "store/store.h"

enum ledger_outcome {
	LEDGER_APPLIED,		/* the order changed as the fact says */
	LEDGER_DUPLICATE,	/* seen before: nothing changed */
	LEDGER_RECORDED,	/* an exception was recorded and raised */
	LEDGER_CONFLICT,	/* a known key with a different payload */
	LEDGER_NOOP,		/* verified, nothing to do */
	LEDGER__MAX
};

/*
 * The events the ledger raises: the outbox's vocabulary, which merchants
 * read as "type" in the feed.  Names in ledger_event_names[].
 */
enum ledger_event {
	LEDGER_EV_NONE,
	LEDGER_EV_ORDER_PAID,
	LEDGER_EV_ORDER_DOUBLE_PAYMENT,
	LEDGER_EV_ORDER_LATE_PAYMENT,
	LEDGER_EV_ORDER_AMOUNT_MISMATCH,
	LEDGER_EV_ORDER_PROFILE_MISMATCH,
	LEDGER_EV_ORDER_CLOSED,
	LEDGER_EV_PAYMENT_UNKNOWN_ORDER,
	LEDGER_EV_PAYMENT_FAILED,
	LEDGER_EV_NOTIFICATION_CONFLICT,
	LEDGER_EV_REFUND_REQUESTED,
	LEDGER_EV_REFUND_SUCCEEDED,
	LEDGER_EV_REFUND_FAILED,
	LEDGER_EV_REFUND_UNMATCHED,
	LEDGER_EV_RECONCILE_AMOUNT_DIFFERS,
	LEDGER_EV_RECONCILE_MISSING_AT_PROVIDER,
	LEDGER_EV_RECONCILE_REFUND_MISMATCH,
	LEDGER_EV__MAX
};

/* "order.paid"; "" for LEDGER_EV_NONE. */
const char *ledger_event_name(enum ledger_event e);

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
	enum ledger_event event;	/* first event raised, or NONE */
	char event_type[48];		/* its name, "" if none */
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

/* ---- Batches for reconciliation ------------------------------------------
 *
 * Reconciling a statement reads and marks many rows; doing each in its own
 * durable transaction would take hours.  A batch keeps one write
 * transaction open for a bounded number of rows, then commits.  Nothing in
 * a batch is a fact about money: facts found missing go through
 * ledger_apply() after ledger_batch_flush().
 */
struct ledger_batch {
	struct store *s;
	struct store_txn t;
	size_t n;
	int open;
	int scanning;			/* under a cursor: do not commit */
};

int ledger_batch_begin(struct ledger_batch *b, struct store *s);
/* Commits what the batch holds and opens the next transaction. */
int ledger_batch_flush(struct ledger_batch *b);
/* Commits (or, after an error, aborts) and closes. */
int ledger_batch_end(struct ledger_batch *b);
/* The stored payment (provider, txn), or PH_E_NOTFOUND. */
int ledger_batch_payment(struct ledger_batch *b, const char *provider,
    const char *txn_id, json_t **pay);
/* The refund work item with payhook refund id, or PH_E_NOTFOUND. */
int ledger_batch_refund(struct ledger_batch *b, const char *refund_id,
    json_t **item);
/* Forgets the seen-marks of run (profile and day). */
int ledger_batch_clear(struct ledger_batch *b, const char *run);
/* Marks txn seen in run's statement. */
void ledger_batch_mark(struct ledger_batch *b, const char *run,
    const char *txn_id);
int ledger_batch_seen(struct ledger_batch *b, const char *run,
    const char *txn_id);
/*
 * Raises an alarm event once per (run, txn, type): a later run over the
 * same statement raises nothing.  The event carries the statement's
 * figures from ev; extra is taken (merged into it; may be NULL).
 */
void ledger_batch_alarm_new(struct ledger_batch *b, const char *run,
    enum ledger_event type, const char *profile, const char *provider,
    const struct ph_event *ev, json_t *extra, int64_t now);
/* Every stored payment record of provider, in key order, in chunks of
 * the batch: calls fn with each; stops at the first non-zero return.  fn
 * may use ledger_batch_seen() and ledger_batch_alarm_new(). */
int ledger_batch_payments(struct ledger_batch *b, const char *provider,
    int (*fn)(struct ledger_batch *b, const json_t *pay, void *arg),
    void *arg);

/* ---- Refunds ---------------------------------------------------------- */

/* payhook's refund id for refund work item seq: "phr" and 13 digits. */
void ledger_refund_id(uint64_t seq, char out[24]);

/*
 * The merchant asks to refund amount of a paid order: never more than was
 * paid, counting refunds requested and not failed.  PH_E_NOTFOUND,
 * PH_E_CONFLICT (not paid, or too much; diag says which), or PH_OK with
 * the work item in *item (caller frees).  Raises refund.requested.
 */
int ledger_request_refund(struct store *s, const char *order_id,
    int64_t amount, const char *reason, int64_t now, json_t **item,
    struct ph_diag *diag);

/* Work items to carry out (PENDING or PROCESSING), oldest first. */
int ledger_refunds_due(struct store *s, size_t limit, json_t **items);
/* All work items (for listing), oldest first, from seq after. */
int ledger_refunds_list(struct store *s, uint64_t after, size_t limit,
    json_t **items);
/* Takes a runner's lease on item seq: PH_OK (*item set), PH_E_CONFLICT. */
int ledger_refund_lease(struct store *s, uint64_t seq, int64_t now,
    int64_t lease_s, const char *token, json_t **item);
/*
 * What the provider said of refund seq: REFUND_SUCCEEDED, REFUND_FAILED,
 * PAYMENT_PENDING (accepted, not done), or err != PH_OK (not known: try
 * again later, with message).  Applies it to the order, raises
 * refund.succeeded or refund.failed, lets the lease go.
 */
int ledger_refund_result(struct store *s, uint64_t seq, const char *token,
    int err, const char *message, const struct ph_event *ev, int64_t now,
    struct ledger_result *res);

#endif
