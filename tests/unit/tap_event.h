/*
 * The facts of an event a provider test expects, checked with tap.h one
 * test point a fact.  Include after tap.h.
 */
#ifndef PH_TAP_EVENT_H
#define PH_TAP_EVENT_H

#include <stdint.h>
#include <stdio.h>

#include <payhook/provider.h>

/* Checks ev's kind, order id, transaction id, amount, currency, time and
 * dedup key, seven points named "<what>: kind" and so on. */
#define is_event(ev, what, kind, order_id, txn_id, amount, currency, \
    occurred_at, dedup_key) tap_is_event(__LINE__, (ev), (what), (kind), \
    (order_id), (txn_id), (amount), (currency), (occurred_at), (dedup_key))

static void __attribute__((unused))
tap_is_event(int line, const struct ph_event *ev, const char *what,
    enum ph_event_kind kind, const char *order_id, const char *txn_id,
    int64_t amount, const char *currency, int64_t occurred_at,
    const char *dedup_key)
{
	char name[256];

#define TAP_EVENT_NAME(fact) \
	(snprintf(name, sizeof(name), "%s: %s", what, fact), name)
	tap_is_int(line, ev->kind, kind, TAP_EVENT_NAME("kind"));
	tap_is_str(line, ev->order_id, order_id, TAP_EVENT_NAME("order id"));
	tap_is_str(line, ev->txn_id, txn_id, TAP_EVENT_NAME("txn id"));
	tap_is_int(line, ev->amount, amount, TAP_EVENT_NAME("amount"));
	tap_is_str(line, ev->currency, currency, TAP_EVENT_NAME("currency"));
	tap_is_int(line, ev->occurred_at, occurred_at,
	    TAP_EVENT_NAME("occurred at"));
	tap_is_str(line, ev->dedup_key, dedup_key,
	    TAP_EVENT_NAME("dedup key"));
#undef TAP_EVENT_NAME
}

#endif /* PH_TAP_EVENT_H */
