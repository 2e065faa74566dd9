/*
 * What a provider test expects of a plugin's events and notification
 * hints, checked with tap.h one test point a fact.  Include after tap.h.
 */
#ifndef PH_TAP_EVENT_H
#define PH_TAP_EVENT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* The notify_hint of p's table is hint, and given ctx: body good names
 * the order want, body none (naming no order) and body broken (not of the
 * provider's format) name none.  Five points. */
static void __attribute__((unused))
is_hints(const struct ph_provider *p, ph_notify_hint_fn *hint, void *ctx,
    const char *good, const char *want, const char *none,
    const char *broken)
{
	struct ph_request req;
	char order[PH_ID_MAX + 1];

	memset(&req, 0, sizeof(req));
	req.body = (const unsigned char *)good;
	req.body_len = strlen(good);
	ok(p->notify_hint == hint, "hint: entry");
	is_int(hint(ctx, &req, order), PH_OK,
	    "hint: an unverified notification names its order");
	is_str(order, want, "hint: the order id");
	req.body = (const unsigned char *)none;
	req.body_len = strlen(none);
	ok(hint(ctx, &req, order) != PH_OK, "hint: none without an order id");
	req.body = (const unsigned char *)broken;
	req.body_len = strlen(broken);
	ok(hint(ctx, &req, order) != PH_OK, "hint: none from a malformed body");
}

#endif /* PH_TAP_EVENT_H */
