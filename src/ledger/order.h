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
	ORDER_V_CONFLICT,	/* that transaction, with another amount or
				 * currency */
	ORDER_V_DOUBLE,		/* paid by another transaction: double payment */
	ORDER_V_MISMATCH,	/* amount or currency differs: not paid */
	ORDER_V_PROFILE,	/* arrived through another merchant account */
	ORDER_V_LATE,		/* order closed: late payment */
	ORDER_V__MAX
};

const char *order_state_name(enum order_state s);
/* -1 if s names no state. */
int order_state_parse(const char *s);

/* An order as the state machine sees it. */
struct order_view {
	enum order_state state;
	int64_t amount;
	const char *currency;
	const char *paid_txn;	/* NULL while unpaid */
};

/* A verified successful payment as the state machine sees it. */
struct order_payment {
	int64_t amount;
	const char *currency;
	const char *txn_id;
	/* Arrived through a merchant account the order was offered on (its
	 * profile or one of its attempts'). */
	int account_ok;
};

/* Decides what a successful payment does to an order. */
enum order_verdict order_decide_payment(const struct order_view *o,
    const struct order_payment *p);

/*
 * When to ask the provider next, after done queries of an order: the
 * schedule gives the delays, the last repeating until the order expires
 * (never past its expiry while it has not come); without an expiry the
 * schedule runs once.  0 means no more queries.
 */
int64_t order_next_query(int64_t now, long done, int64_t expires_at,
    const long *schedule, size_t n);

/* Order ids: 1-64 of [A-Za-z0-9_-|*.:]. */
int order_id_valid(const char *s, size_t len);

/* A new PENDING order record (caller owns the result). */
json_t *order_record_new(const char *order_id, const char *profile,
    int64_t amount, const char *currency, int64_t now);
/*
 * How the API shows a record: the keys named in drop left out, the
 * integer times named in times shown as RFC 3339 text (anything else
 * under them as it is), and the maps in the arrays named in lists shown
 * by sub.  Each list NULL-terminated, or NULL for none.  The one
 * definition both ways of showing a record follow: from its tree
 * (order_view_new) and from its stored bytes (ledger_cbor_view).
 */
struct order_api_spec {
	const char *const *drop;
	const char *const *times;
	const char *const *lists;
	const struct order_api_spec *sub;
};

extern const struct order_api_spec order_api_order;	/* an order */
extern const struct order_api_spec order_api_event;	/* an event */
extern const struct order_api_spec order_api_refund;	/* a refund */

/* The merchant API's view of a stored order record (caller owns). */
json_t *order_to_api(const json_t *rec);
/* The same made of rec itself, whose reference it takes (NULL stays
 * NULL): for a record read only to be shown. */
json_t *order_to_api_new(json_t *rec);
/* A record made into what the API shows by spec, in place (taking the
 * reference, NULL stays NULL). */
json_t *order_view_new(json_t *rec, const struct order_api_spec *spec);
/* The merchant API's view of a refund work item, taking rec's reference
 * (NULL stays NULL): merchant_reason always there, null when none. */
json_t *order_refund_to_api_new(json_t *rec);
/* The merchant API's view of a stored event record (caller owns). */
json_t *order_event_to_api(const json_t *rec);


#endif
