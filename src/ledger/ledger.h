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
#include <payhook/sdk.h>

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
	LEDGER_EV_REFUND_CANCELLED,
	LEDGER_EV_RECONCILE_AMOUNT_DIFFERS,
	LEDGER_EV_RECONCILE_MISSING_AT_PROVIDER,
	LEDGER_EV_RECONCILE_REFUND_MISMATCH,
	LEDGER_EV_RECONCILE_MISSING_HERE,
	LEDGER_EV__MAX
};

/* "order.paid"; "" for LEDGER_EV_NONE. */
const char *ledger_event_name(enum ledger_event e);

/* Where a fact came from: the event's and the payment's "source". */
enum ledger_source {
	LEDGER_SRC_NOTIFY,		/* the provider's notification */
	LEDGER_SRC_QUERY,		/* payhook asked the provider */
	LEDGER_SRC_STATEMENT,		/* a statement payhook downloaded */
	LEDGER_SRC_STATEMENT_FILE,	/* a statement file the operator
					 * vouched for (--trust-file) */
	LEDGER_SRC_REPLAY,		/* an archived notification replayed */
	LEDGER_SRC__MAX
};

const char *ledger_source_name(enum ledger_source src);
/* Did the payment come to be known other than by its notification (the
 * 掉单 the merchant's notify URL missed)? */
int ledger_source_missed(enum ledger_source src);

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
/* What a fact came to, as a notification's outcome is named: applied,
 * duplicate, conflict, noop, or for one recorded, what it raised
 * (amount_mismatch, double_payment, payment_failed, ...). */
const char *ledger_result_label(const struct ledger_result *res);

/*
 * Opens the store spec names (flags: STORE_OPEN_CREATE, for payhook check
 * only) and brings an older one up to this payhook's schema (what
 * ledger_migrate does) before anything else reads it.  ledger_open: the
 * LMDB file at path.
 */
int ledger_open_spec(const struct store_spec *spec, int flags,
    struct store **out, struct ph_diag *diag);
int ledger_open(const char *path, size_t map_size, struct store **out,
    struct ph_diag *diag);
/* Group commits made so far by every process of the store, and the facts
 * they carried (facts per durable flush = facts / commits). */
int ledger_group_stats(struct store *s, uint64_t *commits, uint64_t *facts);
/* When the oldest fact still waiting for its commit, for a process that
 * is still there, began to wait (*since, unix seconds; 0 when none
 * waits): a fact that waits long means some process holds the store's
 * write lock and does not finish. */
int ledger_group_oldest(struct store *s, int64_t *since);

/* Brings the store's records up to STORE_SCHEMA_VERSION, in batches of
 * short transactions that a crash can interrupt and a rerun resumes. */
int ledger_migrate(struct store *s, struct ph_diag *diag);
/*
 * What a payhook.fcgi of schema 4 still running during an upgrade wrote
 * in the old form after the store was brought to 5 (failed payments under
 * the provider's name), moved as that step moves them; *moved says how
 * many.  For payhook check and store import: it reads every payment.
 */
int ledger_migrate_strays(struct store *s, size_t *moved);

/*
 * The one contract every plugin event is held to before it reaches the
 * ledger, whatever brought it (notification, query, close or refund
 * answer, statement line, replay): every field NUL-terminated within its
 * size, a known kind, an amount in range; and unless the event is one
 * payhook does not act on (IGNORED): a dedup key, a valid order id, a
 * valid currency where money is concerned, a successful payment of a
 * positive amount, a transaction id for payments and refunds.  PH_OK, or
 * PH_E_FIELD with diag.
 */
int ledger_event_check(const struct ph_event *ev, struct ph_diag *diag);

/* ---- Merchant calls: what they did, kept with an Idempotency-Key ---------- */

/* Why a merchant's call was refused (PH_E_CONFLICT). */
enum ledger_refusal {
	LEDGER_REFUSAL_NONE,
	LEDGER_REFUSAL_ORDER_CONFLICT,	/* the order id exists with other content */
	LEDGER_REFUSAL_NOT_PAID,	/* only a paid order can be refunded */
	LEDGER_REFUSAL_TOO_MUCH,	/* more than was paid and not refunded */
	LEDGER_REFUSAL_REFUND_ID,	/* the refund id names another refund */
	LEDGER_REFUSAL_IN_FLIGHT,	/* sent to the provider already */
	LEDGER_REFUSAL_SETTLED,		/* the refund is done */
	LEDGER_REFUSAL_ATTEMPT,		/* the guard refused the attempt: the
					 * order is paid or closed */
	LEDGER_REFUSAL_HELD,		/* another attempt holds the order, or
					 * the last one is younger than its
					 * hold: this passes, and is never
					 * kept under an Idempotency-Key */
	LEDGER_REFUSAL_ATTEMPTS_MAX,	/* the order has had all it may */
	LEDGER_REFUSAL_EXPIRED,		/* past its expiry: no new attempt */
	LEDGER_REFUSAL_MISMATCH,	/* paid by a payment that does not
					 * fit it: no new attempt either */
	LEDGER_REFUSAL_REFUNDS_MAX,	/* the order has had all the refunds
					 * it may (LEDGER_REFUNDS_MAX) */
	LEDGER_REFUSAL__MAX
};

/* What a merchant's call did, for its answer. */
struct ledger_reply {
	int rc;				/* PH_OK, PH_E_NOTFOUND, PH_E_CONFLICT */
	int created;			/* a new record was made */
	enum ledger_refusal why;	/* with PH_E_CONFLICT */
	const char *message;		/* why, in words ("" when none) */
	const json_t *rec;		/* the record concerned (borrowed) */
};

/* Renders a reply as the merchant sees it: returns the HTTP status and
 * appends the body to body. */
typedef int (*ledger_answer_fn)(void *arg, const struct ledger_reply *r,
    struct ph_buf *body);

/*
 * An Idempotency-Key the merchant sent with a call.  The call's answer is
 * kept with its effect, in the transaction that makes the effect, so that
 * a crash keeps both or neither; the same key and request again get the
 * kept answer.  The caller fills the first part.
 */
#define LEDGER_IDEM_KEY_MAX 255
struct ledger_idem {
	char key[LEDGER_IDEM_KEY_MAX + 1];
	char fp[2 * PH_SHA256_LEN + 1];	/* the request's fingerprint */
	char token[33];			/* this call's claim */
	int64_t now;
	int64_t ttl_s;			/* kept this long */
	int64_t lease_s;		/* a claim older than this is abandoned */
	ledger_answer_fn answer;	/* set by the handler before its call */
	void *arg;
	/* Filled when an answer is kept (or found): */
	int kept;
	int status;
	struct ph_buf body;		/* owned: ledger_idem_free */
};

enum ledger_idem_state {
	LEDGER_IDEM_RUN,	/* claimed: make the call */
	LEDGER_IDEM_REPLAY,	/* done before: idem->status, idem->body */
	LEDGER_IDEM_REUSED,	/* the key was used for another request */
	LEDGER_IDEM_BUSY,	/* the same request is running right now */
	LEDGER_IDEM__MAX
};

/* Whether a refusal passes by itself (LEDGER_REFUSAL_HELD): the answer is
 * then not kept, and a retry under the same key runs the call again. */
int ledger_refusal_passes(enum ledger_refusal why);
/* Claims idem's key for this call: *state says what to do. */
int ledger_idem_begin(struct store *s, struct ledger_idem *idem,
    enum ledger_idem_state *state);
/* Inside a call's write transaction, just before it commits: renders the
 * reply (the fields of struct ledger_reply) with idem->answer and keeps
 * it with the effect (idem may be NULL: then nothing). */
void ledger_idem_keep(struct store_txn *t, struct ledger_idem *idem,
    int rc, int created, enum ledger_refusal why, const char *message,
    const json_t *rec);
/* After the call: keeps an answer no effect kept (status below 500), or
 * lets the claim go (a server error: a retry runs again). */
int ledger_idem_end(struct store *s, struct ledger_idem *idem, int status,
    const char *body, size_t len);
/* Lets the claim go, if it is still this call's: a retry runs again. */
int ledger_idem_release(struct store *s, struct ledger_idem *idem);
void ledger_idem_free(struct ledger_idem *idem);
/* Forgets keys kept past their time; *removed counts them. */
int ledger_prune_idem(struct store *s, int64_t now, size_t *removed);

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
    int64_t now, struct ledger_idem *idem, json_t **out, int *created,
    struct ph_diag *diag);

/*
 * The pre-payment guard, in two steps around the provider queries the
 * caller makes in between.  ledger_guard_begin holds the order for hold_s
 * seconds under token: PH_OK (held, *order set), PH_E_NOTFOUND, or
 * PH_E_CONFLICT with *order and *why set (already paid or closed, or
 * another attempt is being opened right now: LEDGER_REFUSAL_ATTEMPT;
 * past its expiry, where a payment opened now would come after the
 * order is closed: LEDGER_REFUSAL_EXPIRED).  ledger_guard_end records the
 * attempt at now (when it ends: the checks of earlier attempts take time)
 * and lets go: PH_OK, or PH_E_CONFLICT with *why when the order was paid
 * meanwhile or when an earlier attempt, still unsettled, was opened less
 * than hold_s seconds ago (the shopper may be paying it right now):
 * LEDGER_REFUSAL_ATTEMPT; when it expired meanwhile: LEDGER_REFUSAL_EXPIRED.
 * ledger_guard_release lets go without recording: PH_OK (let go, or not
 * token's any more), or why the store could not.
 */
int ledger_guard_begin(struct store *s, const char *order_id, int64_t now,
    int64_t hold_s, const char *token, json_t **order,
    enum ledger_refusal *why, struct ph_diag *diag);
int ledger_guard_end(struct store *s, const char *order_id, const char *token,
    const char *profile, const json_t *data, int64_t now, int64_t hold_s,
    int64_t next_query_at, struct ledger_idem *idem, json_t **order,
    enum ledger_refusal *why, struct ph_diag *diag);
int ledger_guard_release(struct store *s, const char *order_id,
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
/* What came of the sweeper's asking about an order. */
enum ledger_ask {
	LEDGER_ASK_ANSWERED,	/* a step of its schedule is used up */
	LEDGER_ASK_UNANSWERED,	/* not: the step is tried again, later */
	LEDGER_ASK_HINTED,	/* hinted by a notification nobody
				 * authenticated: the schedule stays */
};
/*
 * Lets the lease go after a query and sets the next one (0: none).  An
 * answered ask counts toward the schedule (query_count) and ends a run of
 * unanswered ones (query_failures); an unanswered one counts in that run
 * only; a hinted one leaves the schedule and the next time as they were.
 */
int ledger_reschedule(struct store *s, const char *order_id,
    const char *token, int64_t next_at, int64_t now, enum ledger_ask how);
/* The unanswered asks in a row at the order's present step (0 when the
 * step moved since: an answer came). */
long ledger_query_failures(const json_t *order);
/*
 * The exception of order naming a payment of another amount or currency
 * through one of its profiles (amount_mismatch) that is not yet queued to
 * go back, and is of transaction txn unless txn is NULL; NULL if none.
 * Borrowed from order.
 */
const json_t *ledger_order_misfit(const json_t *order, const char *txn);
/*
 * Closes a PENDING order (the provider confirmed it unpaid): CLOSED, off
 * the due list, order.closed raised.  PH_E_CONFLICT if it is not PENDING.
 */
int ledger_close_order(struct store *s, const char *order_id, int64_t now,
    const char *reason, struct ledger_result *res, struct ph_diag *diag);

/* The order fact f is about, into order_id: its event's, or for a refund
 * result that names only its payment (UnionPay's), the order that payment
 * was recorded for ("" when payhook knows none). */
void ledger_fact_order_id(struct store *s, const struct ledger_fact *f,
    char order_id[PH_ID_MAX + 1]);
/* The stored order record, or PH_E_NOTFOUND.  Caller frees *out. */
int ledger_get_order(struct store *s, const char *order_id, json_t **out);
/*
 * The order as the API shows it (order_to_api_new), appended to out as
 * JSON text, or PH_E_NOTFOUND; on failure out may hold part of it.
 * Made from the stored bytes without a tree: the read of GET /orders/<id>.
 */
int ledger_order_api(struct store *s, const char *order_id,
    struct ph_buf *out);

/*
 * Up to limit events with seq > after, in commit order, as a JSON array of
 * stored event records; *next is the last seq returned, or after.
 */
int ledger_events(struct store *s, uint64_t after, unsigned limit,
    json_t **out, uint64_t *next);
/* The same events as the API shows them (order_event_to_api), appended to
 * out as a JSON array, made from their stored bytes without a tree. */
int ledger_events_api(struct store *s, uint64_t after, unsigned limit,
    struct ph_buf *out, uint64_t *next);

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
 * transaction open for a bounded number of rows, then commits.  A fact
 * the statement proves and payhook lacks is applied in the batch's
 * transaction (ledger_batch_apply, through the one place every fact goes
 * through), with the run's mark and alarm of it: a run killed in between
 * leaves all of them or none, never the money without its alarm.
 */
/* What a write refused for want of room (PH_E_STORE_FULL) says to do. */
#define LEDGER_FULL_ADVICE	"raise map_size_mb, or free room on its disk"

struct ledger_batch {
	struct store *s;
	struct store_txn t;
	size_t n;
	int open;
	int scanning;			/* under a cursor: do not commit */
	char run[128];			/* the run it holds, "" for none */
	/* Facts that paid an order, told (log, counters) once committed;
	 * owned. */
	struct ledger_paid_kept *paid;
	size_t npaid, cappaid;
};

int ledger_batch_begin(struct ledger_batch *b, struct store *s);
/* Commits what the batch holds and opens the next transaction. */
int ledger_batch_flush(struct ledger_batch *b);
/* Commits (or, after an error, aborts) and closes. */
int ledger_batch_end(struct ledger_batch *b);
/* Aborts what the batch holds and closes (a run that failed). */
void ledger_batch_abort(struct ledger_batch *b);
/* Applies fact f as ledger_apply() does, in the batch's transaction: it is
 * durable when the batch commits.  On failure the batch's transaction is
 * failed too (its error is sticky); diag says why. */
int ledger_batch_apply(struct ledger_batch *b, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag);
/* The stored payment (profile, txn), or PH_E_NOTFOUND. */
int ledger_batch_payment(struct ledger_batch *b, const char *profile,
    const char *txn_id, json_t **pay);
/* The order the payment (profile, txn) was recorded for, into order_id
 * (cap bytes); "" when none. */
void ledger_batch_payment_order(struct ledger_batch *b, const char *profile,
    const char *txn_id, char *order_id, size_t cap);
/* Whether process pid of host, started at start (proc_start(); 0: not
 * recorded), ran on this host and is gone: what it held (a lease, a
 * guard, an Idempotency-Key's claim) can be taken over at once, not when
 * its time runs out.  A pid that now names a process started at another
 * time is gone too: pids are reused, from the smallest, by a container
 * started again. */
int ledger_proc_gone(long pid, unsigned long long start, const char *host);
/* Where this process runs, as holders record it with their pid: the host's
 * name, its boot and the pid namespace (proc_where), so that a pid is only
 * checked by a process that sees the same pids. */
#define LEDGER_HOST_MAX 256
void ledger_proc_host(char host[LEDGER_HOST_MAX]);
/* Whether a run of run (profile and day) raised type about payment txn_id
 * already. */
int ledger_batch_raised(struct ledger_batch *b, const char *run,
    const char *txn_id, enum ledger_event type);

/* The order of that id as the batch sees it (new reference); NOTFOUND. */
int ledger_batch_order(struct ledger_batch *b, const char *order_id,
    json_t **order);
int ledger_batch_refund(struct ledger_batch *b, const char *refund_id,
    json_t **item);
/* The refund queued for the extra payment txn_id of profile (a double or
 * late payment of order order_id), new reference; PH_E_NOTFOUND. */
int ledger_batch_extra_refund(struct ledger_batch *b, const char *profile,
    const char *order_id, const char *txn_id, json_t **item);
/*
 * Takes run (profile and day) for this process and forgets its
 * seen-marks: one reconcile of a day at a time, as each run clears the
 * marks the other would read.  PH_E_CONFLICT, diag saying who, while
 * another process holds it: one on this host while it lives, one on
 * another until its lease runs out (each commit of the batch renews it).
 * ledger_batch_end gives it back.
 */
int ledger_batch_clear(struct ledger_batch *b, const char *run,
    struct ph_diag *diag);
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
/* The event a stored payment or refund record stands for: its order,
 * transaction, amount and currency, of the given kind; the rest zero. */
void ledger_record_event(const json_t *rec, enum ph_event_kind kind,
    struct ph_event *ev);
/* Every stored payment record of profile, in key order, in chunks of
 * the batch: calls fn with each; stops at the first non-zero return.  fn
 * may use ledger_batch_seen() and ledger_batch_alarm_new(). */
int ledger_batch_payments(struct ledger_batch *b, const char *profile,
    int (*fn)(struct ledger_batch *b, const json_t *pay, void *arg),
    void *arg);

/* ---- Refunds ---------------------------------------------------------- */

/* The most refunds an order's list holds for the merchant to ask another:
 * its record and its answers stay small (providers take far fewer
 * partial refunds of one payment: WeChat Pay 50).  Those payhook queues
 * for a double or late payment always go. */
#define LEDGER_REFUNDS_MAX 100

/*
 * A refund's life: PENDING (queued, never sent), PROCESSING (the provider
 * accepted it, the result is to come), then SUCCEEDED or FAILED; a
 * PENDING refund never sent may be CANCELLED by the merchant.
 */
enum ledger_refund_state {
	LEDGER_REFUND_PENDING,
	LEDGER_REFUND_PROCESSING,
	LEDGER_REFUND_SUCCEEDED,
	LEDGER_REFUND_FAILED,
	LEDGER_REFUND_CANCELLED,
	LEDGER_REFUND__MAX
};

const char *ledger_refund_state_name(enum ledger_refund_state st);
/* The state a name stands for, or -1. */
int ledger_refund_state_parse(const char *name);
/* Did the operator settle refund item by hand (payhook refunds settle)? */
int ledger_refund_hand_settled(const json_t *item);

/* A refund id: 1 to 64 of A-Za-z0-9_-|*@. (what WeChat, Alipay and
 * UnionPay take as the merchant's refund number). */
#define LEDGER_REFUND_ID_MAX 64
int ledger_refund_id_valid(const char *id, size_t len);

/* What a merchant asks to refund. */
struct ledger_refund_req {
	const char *order_id;
	const char *refund_id;	/* the merchant's id, or NULL: payhook mints
				 * one, unique across restores */
	int64_t amount;
	const char *reason;	/* "" when none */
};

/*
 * The merchant asks to refund part or all of a paid order: never more than
 * was paid, counting refunds requested and neither failed nor cancelled.
 * The same refund id with the same order and amount is the same refund
 * (*created 0, the refund as it is now); with another order or amount it
 * is refused (PH_E_CONFLICT, LEDGER_REFUSAL_REFUND_ID).  PH_E_NOTFOUND,
 * PH_E_CONFLICT (*why says which), or PH_OK with the refund in *item
 * (caller frees).  Raises refund.requested.
 */
int ledger_request_refund(struct store *s, const struct ledger_refund_req *rq,
    int64_t now, struct ledger_idem *idem, json_t **item, int *created,
    enum ledger_refusal *why, struct ph_diag *diag);
/*
 * The merchant cancels a refund never sent: CANCELLED, its amount free to
 * be refunded again, refund.cancelled raised.  PH_E_NOTFOUND,
 * PH_E_CONFLICT (LEDGER_REFUSAL_IN_FLIGHT or _SETTLED), or PH_OK with the
 * refund in *item (caller frees).
 */
int ledger_cancel_refund(struct store *s, const char *refund_id, int64_t now,
    struct ledger_idem *idem, json_t **item, enum ledger_refusal *why,
    struct ph_diag *diag);
/*
 * The operator settles a refund by hand, after looking at the provider:
 * succeeded with amount (0: as asked; less than asked: the rest released),
 * or failed.  PH_E_NOTFOUND, PH_E_CONFLICT (cancelled, succeeded already,
 * failed already and failed asked, or more than asked), or PH_OK with the
 * refund in *item (caller frees).  Raises refund.succeeded or
 * refund.failed, source "operator".
 */
int ledger_refund_by_hand(struct store *s, const char *refund_id,
    int succeeded, int64_t amount, int64_t now, json_t **item,
    struct ph_diag *diag);
/* The refund with this id, or PH_E_NOTFOUND (caller frees *item). */
int ledger_get_refund(struct store *s, const char *refund_id, json_t **item);
/* Every refund of the order, in the order they were asked (caller frees
 * *items); PH_E_NOTFOUND when there is no such order. */
int ledger_order_refunds(struct store *s, const char *order_id,
    json_t **items);

/* Work items to carry out (PENDING or PROCESSING), oldest first, from
 * seq after (0: the first). */
int ledger_refunds_due(struct store *s, uint64_t after, size_t limit,
    json_t **items);
/* All work items (for listing), oldest first, from seq after. */
int ledger_refunds_list(struct store *s, uint64_t after, size_t limit,
    json_t **items);
/*
 * Takes a runner's lease on item seq: PH_OK (*item set), PH_E_CONFLICT.
 * While the lease lasts a cancel is refused: the runner may be sending it.
 */
int ledger_refund_lease(struct store *s, uint64_t seq, int64_t now,
    int64_t lease_s, const char *token, json_t **item);
/*
 * Before the n refunds seqs leased under token go out, their requests
 * built: each counts as sent from now on (sent_at; the provider may have
 * it, whatever the runner then learns), where the lease is still token's
 * (ours[i] 1; 0: another run's now, and it must not be sent).  One whose
 * request could not be built is never marked, and stays the merchant's to
 * cancel once its lease is let go.
 */
int ledger_refunds_sending(struct store *s, const uint64_t *seqs, int *ours,
    size_t n, const char *token, int64_t now);
/* Does ev, a refund answer (of its kinds), report another amount than
 * asked, the refund's?  Such an answer settles nothing. */
int ledger_refund_amount_off(const struct ph_event *ev, int64_t asked);
/*
 * What the provider said of refund seq: REFUND_SUCCEEDED, REFUND_FAILED,
 * PAYMENT_PENDING (accepted, not done), or err != PH_OK (not known: try
 * again later, with message).  Applies it to the order, raises
 * refund.succeeded or refund.failed, lets the lease go.  An answer whose
 * amount (0 too) is not the refund's settles nothing: refund.unmatched,
 * once.
 */
int ledger_refund_result(struct store *s, uint64_t seq, const char *token,
    int err, const char *message, const struct ph_event *ev, int64_t now,
    struct ledger_result *res);

#endif
