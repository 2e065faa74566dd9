/*
 * The order state machine and the order's representations.  Pure
 * functions: no storage, no I/O.  The ledger calls them inside its one
 * write transaction.
 *
 *   PENDING -> PAID -> (REFUNDING -> REFUNDED);  PENDING -> CLOSED
 *
 * Facts that do not fit a transition are recorded as exceptions on the
 * order, never dropped.
 */
#ifndef PH_ORDER_H
#define PH_ORDER_H

#include <stdint.h>

#include <jansson.h>

#include <payhook/provider.h>

#define ORDER_RECORD_VERSION 1

enum order_state {
	ORDER_PENDING,
	ORDER_PAID,
	ORDER_CLOSED,
	ORDER_REFUNDING,
	ORDER_REFUNDED,
	ORDER__MAX
};

/* What a verified successful payment means for an order. */
enum order_verdict {
	ORDER_V_PAY,		/* PENDING and matching: mark paid */
	ORDER_V_SAME,		/* already paid by this very transaction */
	ORDER_V_DOUBLE,		/* paid by another transaction: double payment */
	ORDER_V_MISMATCH,	/* amount or currency differs: not paid */
	ORDER_V_LATE,		/* order closed: late payment */
	ORDER_V__MAX
};

const char *order_state_name(enum order_state s);
/* -1 if s names no state. */
int order_state_parse(const char *s);

/*
 * Decides what a successful payment of amount/currency by txn_id does to
 * an order in state st, paid by paid_txn (NULL when unpaid).
 */
enum order_verdict order_decide_payment(enum order_state st,
    int64_t order_amount, const char *order_currency, const char *paid_txn,
    int64_t amount, const char *currency, const char *txn_id);

/* Order ids: 1-64 of [A-Za-z0-9_-|*.:]. */
int order_id_valid(const char *s, size_t len);

/* A new PENDING order record (caller owns the result). */
json_t *order_record_new(const char *order_id, const char *profile,
    int64_t amount, const char *currency, int64_t now);
/* The merchant API's view of a stored order record (caller owns). */
json_t *order_to_api(const json_t *rec);
/* The merchant API's view of a stored event record (caller owns). */
json_t *order_event_to_api(const json_t *rec);

/* RFC 3339 UTC text of a unix time: out holds at least 21 bytes. */
void order_time_text(int64_t t, char out[32]);

#endif
