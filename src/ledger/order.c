/*
 * Order state machine and representations.
 */
#include <string.h>
#include <time.h>

#include "ledger/order.h"
#include "ops/text.h"

static const char *const order_state_names[ORDER__MAX] = {
	"PENDING", "PAID", "CLOSED", "REFUNDING", "REFUNDED",
};

const char *
order_state_name(enum order_state s)
{
	return s < ORDER__MAX ? order_state_names[s] : "UNKNOWN";
}

int
order_state_parse(const char *s)
{
	return text_name_find(order_state_names, ORDER__MAX, s, 0);
}

enum order_verdict
order_decide_payment(const struct order_view *o, const struct order_payment *p)
{
	/* Order ids are unique per merchant account at the provider: the
	 * same id under another account is another order, in every state.
	 * Its payment is never the order's, nor a second payment of it whose
	 * money goes back through that account, nor (naming the paying
	 * transaction) a duplicate or a conflict of the order's own
	 * (doc/design/security.md §7). */
	if (!p->account_ok)
		return ORDER_V_PROFILE;
	/* Paid by this transaction (one fact told twice); with other facts
	 * it is not the same payment. */
	if (o->paid_txn != NULL && strcmp(o->paid_txn, p->txn_id) == 0)
		return p->amount == o->amount &&
		    strcmp(p->currency, o->currency) == 0 ? ORDER_V_SAME :
		    ORDER_V_CONFLICT;
	switch (o->state) {
	case ORDER_PENDING:
		if (p->amount != o->amount ||
		    strcmp(p->currency, o->currency) != 0)
			return ORDER_V_MISMATCH;
		return ORDER_V_PAY;
	case ORDER_CLOSED:
		return ORDER_V_LATE;
	case ORDER_PAID:
	case ORDER_REFUNDING:
	case ORDER_REFUNDED:
	default:
		/* Paid once already: whatever its amount, this is a second
		 * payment and its money goes back. */
		return ORDER_V_DOUBLE;
	}
}

int64_t
order_next_query(int64_t now, long done, int64_t expires_at,
    const long *schedule, size_t n)
{
	int64_t next;

	if (n == 0 || done < 0)
		return 0;
	if ((size_t)done < n)
		next = now + schedule[done];
	else if (expires_at > 0)
		next = now + schedule[n - 1];
	else
		return 0;
	/* Be there when it expires: that is when it gets closed. */
	if (expires_at > now && next > expires_at)
		next = expires_at;
	return next;
}

int
order_id_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 64)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("_-|*.:", c) != NULL) ||
		    c == '\0')
			return 0;
	}
	return 1;
}

json_t *
order_record_new(const char *order_id, const char *profile, int64_t amount,
    const char *currency, int64_t now)
{
	return json_pack("{s:i, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:n, s:n, "
	    "s:n, s:[]}",
	    "v", ORDER_RECORD_VERSION,
	    "order_id", order_id,
	    "profile", profile,
	    "amount", (json_int_t)amount,
	    "currency", currency,
	    "state", order_state_names[ORDER_PENDING],
	    "created_at", (json_int_t)now,
	    "updated_at", (json_int_t)now,
	    "paid_at",
	    "provider_txn_id",
	    "provider",
	    "exceptions");
}

/* Replaces the integer time at key with its RFC 3339 text (null stays). */
static void
order_time_field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	char buf[32];

	if (v == NULL || !json_is_integer(v))
		return;
	text_time(json_integer_value(v), buf);
	json_object_set_new(o, key, json_string(buf));
}

/* The format version, and the coordination between payhook's own
 * processes: not order or refund facts. */
static const char *const order_api_drop[] = { "v", "lease_until",
    "lease_owner", "guard_until", "guard_owner", "guard_pid", "guard_start",
    "guard_host", "query_failures_at", NULL };
static const char *const order_api_times[] = { "created_at", "closed_at",
    "next_query_at", "last_query_at", "updated_at", "paid_at", "expires_at",
    NULL };
static const char *const order_api_lists[] = { "exceptions", "attempts",
    NULL };
static const char *const order_api_at[] = { "at", NULL };
static const char *const order_api_event_drop[] = { "v", NULL };
static const char *const order_api_event_times[] = { "at", "occurred_at",
    NULL };
static const char *const order_api_refund_drop[] = { "v", "lease_until",
    "lease_owner", "failed_after_success", "answer_amount", "settled_by",
    NULL };
static const char *const order_api_refund_times[] = { "created_at",
    "updated_at", "sent_at", NULL };

/* An exception or an attempt of an order. */
static const struct order_api_spec order_api_entry = {
	.times = order_api_at,
};

const struct order_api_spec order_api_order = {
	.drop = order_api_drop,
	.times = order_api_times,
	.lists = order_api_lists,
	.sub = &order_api_entry,
};

const struct order_api_spec order_api_event = {
	.drop = order_api_event_drop,
	.times = order_api_event_times,
};

const struct order_api_spec order_api_refund = {
	.drop = order_api_refund_drop,
	.times = order_api_refund_times,
};

json_t *
order_to_api(const json_t *rec)
{
	return order_to_api_new(json_deep_copy(rec));
}

json_t *
order_refund_to_api_new(json_t *rec)
{
	json_t *v = order_view_new(rec, &order_api_refund);

	if (v != NULL && json_object_get(v, "merchant_reason") == NULL)
		json_object_set_new(v, "merchant_reason", json_null());
	return v;
}

json_t *
order_view_new(json_t *o, const struct order_api_spec *spec)
{
	const char *const *k;
	json_t *e;
	size_t i;

	if (o == NULL)
		return NULL;
	for (k = spec->drop; k != NULL && *k != NULL; k++)
		json_object_del(o, *k);
	for (k = spec->times; k != NULL && *k != NULL; k++)
		order_time_field(o, *k);
	for (k = spec->lists; k != NULL && *k != NULL; k++)
		json_array_foreach(json_object_get(o, *k), i, e)
			if (json_is_object(e))
				order_view_new(e, spec->sub);
	return o;
}

json_t *
order_to_api_new(json_t *o)
{
	return order_view_new(o, &order_api_order);
}

json_t *
order_event_to_api(const json_t *rec)
{
	return order_view_new(json_deep_copy(rec), &order_api_event);
}
