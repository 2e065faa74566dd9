/*
 * Internals shared by the ledger's files (ledger.c: facts about money;
 * ledger_sched.c: attempts, the query schedule, leases, closing).  Not
 * for use outside the ledger.
 */
#ifndef PH_LEDGER_INT_H
#define PH_LEDGER_INT_H

#include <jansson.h>

#include "ledger/ledger.h"
#include "store/store.h"

#define LEDGER_RECORD_VERSION 1

/* Records in the store are CBOR (ledger_cbor.c).  ledger_cbor_write
 * initialises out, which the caller frees, even on failure; it takes an
 * object only.  ledger_cbor_read returns a new reference to the object
 * read, or NULL for bytes that are not a record. */
int ledger_cbor_write(const json_t *j, struct ph_buf *out);
/*
 * A record made straight from its fields, without a tree: n fields in
 * order, a member of extra (may be NULL) in place of the field of its
 * name, then extra's other members, as json_pack of the fields and
 * json_object_update with extra would make it; the bytes are the ones
 * ledger_cbor_write writes of that tree.  Initialises out as
 * ledger_cbor_write does.  PH_E_INTERNAL for text that is not UTF-8.
 */
struct ledger_field {
	const char *key;
	enum { LEDGER_F_INT, LEDGER_F_STR } type;
	int64_t i;
	const char *s;
};
#define LEDGER_INT(k, v)	{ (k), LEDGER_F_INT, (int64_t)(v), NULL }
#define LEDGER_STR(k, v)	{ (k), LEDGER_F_STR, 0, (v) }
int ledger_cbor_fields(const struct ledger_field *f, size_t n,
    const json_t *extra, struct ph_buf *out);
void ledger_put_fields(struct store_txn *t, enum store_db db,
    const struct store_key *k, const struct ledger_field *f, size_t n,
    const json_t *extra);
json_t *ledger_cbor_read(const void *data, size_t len);
/* Appends to out the API's JSON text of the record in data as spec shows
 * it, without a tree.  PH_OK; PH_E_UNSUPPORTED for a record only its tree
 * can show (it holds a double); PH_E_STORE for bytes that are not a
 * record; PH_E_NOMEM.  On failure out is as it was. */
struct order_api_spec;
int ledger_cbor_view(const void *data, size_t len,
    const struct order_api_spec *spec, struct ph_buf *out);

/* Is it a record in JSON text, as schema 3 and older wrote every record
 * (schema 2 and older, the dedup records)? */
int ledger_is_json(const struct store_val *v);
json_t *ledger_load(const struct store_val *v);
int ledger_get(struct store_txn *t, enum store_db db,
    const struct store_key *k, json_t **out);
void ledger_put(struct store_txn *t, enum store_db db,
    const struct store_key *k, const json_t *j);
void ledger_key_order(struct store_key *k, const char *order_id);
void ledger_key_pair(struct store_key *k, unsigned char klass, const char *a,
    const char *b);
uint64_t ledger_emit_new(struct store_txn *t, const struct ledger_fact *f,
    enum ledger_event type, const char *order_id, json_t *extra);
void ledger_note(struct ledger_result *r, enum ledger_event type,
    uint64_t seq);
/* An order's exception, as its fields; every string borrowed. */
struct ledger_exception {
	const char *type;
	const char *provider;
	const char *txn_id;
	int64_t amount;
	const char *currency;
	int64_t at;
};
void ledger_add_exception_fields_new(struct store_txn *t, json_t *order,
    const struct ledger_exception *x, json_t *extra);
void ledger_add_exception_new(struct store_txn *t, json_t *order,
    const struct ledger_fact *f, const char *type, json_t *extra);
const char *ledger_str(const json_t *o, const char *key);
/* Is exception e a payment of another amount not yet queued to go back
 * (ledger_order_misfit)? */
int ledger_is_misfit(const json_t *e);
/* An order's state and holds, ledger_sched.c: */
/* Opens a write transaction and reads the order; *order owned by caller. */
int ledger_open_order(struct store *s, const char *order_id,
    struct store_txn *t, struct store_key *k, json_t **order);
int ledger_is_pending(const json_t *order);
/* Sets (token, until expires) or clears (token NULL) a claim on order,
 * its fields until and owner. */
void ledger_hold(json_t *order, const char *until, const char *owner,
    const char *token, int64_t expires);
/* Takes (token) or lets go (NULL) the hold on order that keeps a second
 * payment attempt from being opened, until until. */
void ledger_guard_hold(json_t *order, const char *token, int64_t until);

/* Is kind the result of a refund (succeeded or failed)? */
int ledger_kind_is_refund(enum ph_event_kind kind);
/* The order payment txn_id of profile was recorded for, into order_id
 * (cap bytes); "" when t holds no such payment. */
void ledger_payment_order(struct store_txn *t, const char *profile,
    const char *txn_id, char *order_id, size_t cap);

/* An event's id: the epoch of the store that made it and its sequence
 * number, unique across every store and every restore. */
void ledger_event_id(const char *epoch, uint64_t seq,
    char out[STORE_EPOCH_LEN + 24]);

/* Adds delta to the count of orders in state (an order_state). */
void ledger_count(struct store_txn *t, int state, int delta);

/* Puts a refund of the whole payment f describes on the work list and on
 * order's list of refunds; returns its sequence number (0 on failure). */
uint64_t ledger_queue_refund(struct store_txn *t, const struct ledger_fact *f,
    json_t *order, const char *reason);
/* The refund with this id, read in t (PH_E_NOTFOUND when none). */
int ledger_refund_get_txn(struct store_txn *t, const char *refund_id,
    json_t **item);
/* The refund queued for the extra payment txn_id of profile that order
 * recorded as an exception (new reference); PH_E_NOTFOUND when none. */
int ledger_refund_of_extra(struct store_txn *t, const json_t *order,
    const char *profile, const char *txn_id, json_t **item);
/* Indexes refund seq under its id. */
void ledger_refund_index(struct store_txn *t, const char *id, uint64_t seq);
/* Adds refund seq to the order's list of refunds (once). */
void ledger_order_add_refund(struct store_txn *t, json_t *order,
    uint64_t seq);
/* A refund result from a notification or a statement. */
void ledger_refund_fact(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *r);

/* Moves the order's entry in the due list to at (0: off the list). */
void ledger_set_due(struct store_txn *t, json_t *order, int64_t at);

/* The time a record of some database is judged by (0, with *at set), or
 * -1 when the record cannot be read. */
typedef int ledger_time_fn(const struct store_val *v, int64_t *at);

/*
 * Deletes the records of db whose time (when) is below before, in
 * batches of short transactions; *removed counts them.
 */
int ledger_prune_before(struct store *s, enum store_db db,
    ledger_time_fn *when, int64_t before, size_t *removed);

/* A dedup record (ledger_dedup.c). */
struct ledger_dedup {
	char digest[2 * PH_SHA256_LEN + 1];	/* of the fact, hex */
	int64_t first_seen;
	char kind[32];
	char order_id[PH_ID_MAX + 1];
	char source[32];
};

/* Writes d at k in STORE_DB_DEDUP, as a binary record. */
void ledger_dedup_put(struct store_txn *t, const struct store_key *k,
    const struct ledger_dedup *d);
/* Reads the dedup record at k: PH_OK, PH_E_NOTFOUND or a sticky error. */
int ledger_dedup_get(struct store_txn *t, const struct store_key *k,
    struct ledger_dedup *d);
/* Decodes a dedup record, binary or (schema 2 and older) JSON. */
int ledger_dedup_read(const struct store_val *v, struct ledger_dedup *d);
/* The first sighting of a dedup record, for pruning. */
ledger_time_fn ledger_dedup_first_seen;

/*
 * The write part of ledger_apply(), inside t: the dedup key checked again
 * (another process may have applied the fact since), then the fact.
 * PH_OK or t's sticky error; diag says why.
 */
int ledger_apply_txn(struct store_txn *t, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag);
/* After the commit that applied f: the counters of how orders are paid. */
void ledger_applied(const struct ledger_fact *f, const struct ledger_result *r);
/* ledger_apply() in a write transaction of its own. */
int ledger_apply_alone(struct store *s, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag);
/*
 * Ends a read transaction whose result is *out, rc its status so far:
 * what a reader is shown must be on disk (store_settle), or it is not
 * shown: on failure *out is released and NULL.  Returns the status.
 */
int ledger_read_end(struct store_txn *t, int rc, json_t **out);

/*
 * What ledger_collect keeps of a record it passes: keep appends to arr
 * what it keeps and returns 0 to go on, 1 to stop, or a status that fails
 * the read.
 */
typedef int ledger_keep_fn(const struct store_scan *sc, json_t *arr,
    void *arg);

/*
 * Reads db from the key from (NULL: its start) in one read transaction
 * until *out holds limit entries, offering each record to keep; settles
 * before answering (ledger_read_end).  *out is the caller's.
 */
int ledger_collect(struct store *s, enum store_db db,
    const struct store_key *from, size_t limit, ledger_keep_fn *keep,
    void *arg, json_t **out);

/* A write that failed with rc, said as every path into the ledger says
 * it (with what to do about a full store); returns rc. */
int ledger_store_fail(struct ph_diag *diag, int rc);

/* STORE_DB_RECON's keys that are not a reconciliation's: the orphan
 * payments' index (ledger.c). */
#define LEDGER_KEY_ORPHAN 'U'

/* What registering an order applied of the payments recorded before it. */
/* A fact that paid an order, kept past the transaction that applied it,
 * to be told (its log line, the counters) once that one is committed. */
struct ledger_paid_kept {
	struct ph_event ev;
	char profile[PH_ID_MAX + 1];
	char provider[PH_ID_MAX + 1];
	char source[24];
	int64_t now;
};
void ledger_paid_keep(struct ledger_paid_kept *k, const struct ledger_fact *f);
/* After the commit: tells k as ledger_applied() tells a payment. */
void ledger_paid_tell(const struct ledger_paid_kept *k);

struct ledger_adopted {
	size_t applied;			/* payments applied to the order */
	int paid;			/* one of them paid it: kept */
	struct ledger_paid_kept kept;
};

/*
 * Inside t, which has just made order order_id: applies every payment
 * recorded for it while it did not exist (payment.unknown_order), as
 * ledger_apply would have had the order been there, and drops their index
 * entries.
 */
void ledger_adopt_orphans(struct store_txn *t, const char *order_id,
    int64_t now, struct ledger_adopted *a);
/* Indexes pay (stored under pk) when it is an orphan payment not indexed
 * yet: 1 when it did. */
int ledger_orphan_index(struct store_txn *t, const json_t *pay,
    const struct store_val *pk);

/*
 * The read part of ledger_apply(): *known when the fact was applied
 * already (r says a duplicate; what the read saw is then on disk), from a
 * read transaction, without the writer lock.
 */
int ledger_known(struct store *s, const struct ledger_fact *f,
    struct ledger_result *r, int *known, struct ph_diag *diag);

#endif
