/*
 * What the ledger's unit tests share: events as plugins make them, facts
 * applied as a profile would, orders and refunds made and read back.
 * Nothing here prints TAP; the tests do.
 */
#ifndef PH_LEDGER_FIXTURE_H
#define PH_LEDGER_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ledger/ledger.h"
#include "store/store.h"

#define FX_NOW 1700000100

/* A successful payment, dedup key "pay:<txn>". */
struct ph_event fx_pay_event(const char *order, const char *txn,
    int64_t amount, const char *currency);
/* A refund result of the payment txn for the refund id payhook gave. */
struct ph_event fx_refund_event(const char *order, const char *txn,
    const char *refund_id, int64_t amount, int succeeded);

/* Applies ev as profile (provider "wechat") from a notification; diag
 * (may be NULL) gets the reason of a failure. */
int fx_apply(struct store *s, const char *profile, const struct ph_event *ev,
    struct ledger_result *r, struct ph_diag *diag);

/* Creates an order on profile at now (caller frees *o). */
int fx_create(struct store *s, const char *id, const char *profile,
    int64_t amount, const char *currency, int64_t now, json_t **o,
    int *created, struct ph_diag *d);
/* The merchant asks for a refund of amount; refund_id NULL lets payhook
 * mint one; idem may be NULL. */
int fx_refund(struct store *s, const char *order_id, const char *refund_id,
    int64_t amount, int64_t now, struct ledger_idem *idem, json_t **item,
    int *created, enum ledger_refusal *why, struct ph_diag *d);

/* The order's state ("(none)" when there is no order; a static buffer). */
const char *fx_state(struct store *s, const char *id);
/* How many exceptions of type the order carries. */
size_t fx_exceptions(struct store *s, const char *id, const char *type);
/* How many events of type the feed holds; *last (may be NULL) gets the
 * last sequence number. */
size_t fx_events_of_type(struct store *s, const char *type, uint64_t *last);
/* A string field of a JSON object, "" when absent. */
const char *fx_str(const json_t *o, const char *key);
/* Objects nested depth deep, each {"n": the next}, the last empty. */
json_t *fx_nested(int depth);

/*
 * Runs fn(arg) in a child process that then dies as a killed process
 * does (SIGKILL: no exit handlers, nor valgrind's leak check of the
 * parent's heap).  The child opens its own store: LMDB's environments
 * are not shared across a fork.  1 when fn returned non-zero and the
 * child was killed.
 */
int fx_in_killed_child(int (*fn)(void *), void *arg);

/*
 * Runs fn(arg) as pid 1 of a new pid namespace with its own /proc, as a
 * container's first process (unshare -p -m --fork --mount-proc): the
 * processes it forks get pids from 2 up, the same pids in each round, as
 * a container started again gives them.  When fn returns, the kernel
 * kills what is left in the namespace.  fn's exit status; FX_NO_PIDNS
 * where namespaces need root and there is none.
 */
#define FX_NO_PIDNS 77
int fx_in_pidns(int (*fn)(void *), void *arg);

#endif
