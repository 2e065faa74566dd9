/*
 * What a provider test expects of a plugin's events, notification hints
 * and statements, checked with tap.h one test point a fact.  Include
 * after tap.h.
 */
#ifndef PH_TAP_EVENT_H
#define PH_TAP_EVENT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <payhook/provider.h>

#include "helpers.h"

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
	tap_is_int(line, ev->kind, kind, "%s", TAP_EVENT_NAME("kind"));
	tap_is_str(line, ev->order_id, order_id, "%s",
	    TAP_EVENT_NAME("order id"));
	tap_is_str(line, ev->txn_id, txn_id, "%s", TAP_EVENT_NAME("txn id"));
	tap_is_int(line, ev->amount, amount, "%s", TAP_EVENT_NAME("amount"));
	tap_is_str(line, ev->currency, currency, "%s",
	    TAP_EVENT_NAME("currency"));
	tap_is_int(line, ev->occurred_at, occurred_at,
	    "%s", TAP_EVENT_NAME("occurred at"));
	tap_is_str(line, ev->dedup_key, dedup_key,
	    "%s", TAP_EVENT_NAME("dedup key"));
#undef TAP_EVENT_NAME
}

/* Checks that ev is a refund that succeeded, and its refund id, merchant
 * refund id and transaction id: four points named "<what>: ...". */
#define is_refund(ev, what, refund_id, merchant_refund_id, txn_id) \
	tap_is_refund(__LINE__, (ev), (what), (refund_id), \
	    (merchant_refund_id), (txn_id))

static void __attribute__((unused))
tap_is_refund(int line, const struct ph_event *ev, const char *what,
    const char *refund_id, const char *merchant_refund_id,
    const char *txn_id)
{
	char name[256];

#define TAP_EVENT_NAME(fact) \
	(snprintf(name, sizeof(name), "%s: %s", what, fact), name)
	tap_is_int(line, ev->kind, PH_EV_REFUND_SUCCEEDED,
	    "%s", TAP_EVENT_NAME("a refund that succeeded"));
	tap_is_str(line, ev->refund_id, refund_id,
	    "%s", TAP_EVENT_NAME("refund id"));
	tap_is_str(line, ev->merchant_refund_id, merchant_refund_id,
	    "%s", TAP_EVENT_NAME("merchant refund id"));
	tap_is_str(line, ev->txn_id, txn_id, "%s", TAP_EVENT_NAME("txn id"));
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

/*
 * p reads statements, and with ctx reads good with a BOM and CRLF line ends
 * (CR left on): nev events, named events, facts facts of a sum of total.
 * What it read is left in r and d.  Five points.
 */
static void __attribute__((unused))
is_statement_read(const struct ph_provider *p, void *ctx,
    const char *const *good, struct th_run *r, struct ph_diag *d, size_t nev,
    const char *events, uint64_t facts, int64_t total)
{
	ok(p->caps & PH_CAP_STATEMENT, "the table reads statements");
	th_feed(p, ctx, good, "\r", r, d);
	is_int(r->rc, PH_OK, "a statement with a BOM and CRLF (CR left on): "
	    "read");
	is_int(r->nev, nev, "%s", events);
	is_int(r->st.facts, facts, "... st->facts");
	is_int(r->st.total, total, "... st->total");
}

/*
 * A statement of good with its line k (0-based) replaced by row (NULL:
 * removed): read with rc, refused at line (0: the end, -1: not checked),
 * the diagnostic saying msg and msg2 (NULL: not checked).
 */
struct th_row_case {
	size_t k;
	const char *row;
	int rc;
	long line;
	const char *msg, *msg2;
	const char *what;
};

/* Each case of the array cases, of good read by p with ctx and no line
 * ends: a point each, named by its what. */
#define is_statement_rows(p, ctx, good, cases) \
	tap_is_statement_rows((p), (ctx), (good), (cases), \
	    sizeof(cases) / sizeof((cases)[0]))

static void __attribute__((unused))
tap_is_statement_rows(const struct ph_provider *p, void *ctx,
    const char *const *good, const struct th_row_case *c, size_t n)
{
	struct ph_diag d;
	struct th_run r;
	size_t i;

	for (i = 0; i < n; i++) {
		th_feed(p, ctx, th_variant(good, c[i].k, c[i].row), "", &r,
		    &d);
		ok(r.rc == c[i].rc && (c[i].line < 0 ||
		    r.fail_line == (uint64_t)c[i].line) && (c[i].msg == NULL ||
		    strstr(d.msg, c[i].msg) != NULL) && (c[i].msg2 == NULL ||
		    strstr(d.msg, c[i].msg2) != NULL), "%s", c[i].what);
	}
}

/*
 * The frame of a statement p reads with ctx: good (NULL-terminated, its
 * total line at good[total], an empty line after it) is read with bare LF
 * line ends; with the total line wrong_count or wrong_sum instead it is
 * refused naming that line; without the total line, refused as truncated;
 * with after in place of the empty line, refused at that line.  Five
 * points.
 */
static void __attribute__((unused))
is_statement_frame(const struct ph_provider *p, void *ctx,
    const char *const *good, size_t total, const char *wrong_count,
    const char *wrong_sum, const char *after)
{
	const char *const wrong[] = { wrong_count, wrong_sum };
	const char *const what[] = { "a row count off", "a sum off" };
	const char *cut[64];
	struct ph_diag d;
	struct th_run r;
	char at[32];
	size_t i;

	th_feed(p, ctx, good, "", &r, &d);
	is_int(r.rc, PH_OK, "LF: read");
	snprintf(at, sizeof(at), "line %zu:", total + 1);
	for (i = 0; i < 2; i++) {
		th_feed(p, ctx, th_variant(good, total, wrong[i]), "", &r, &d);
		ok(r.rc == PH_E_MALFORMED && r.fail_line == total + 1 &&
		    strstr(d.msg, at) != NULL, "%s in the total line (%s): "
		    "refused naming line %zu", what[i], wrong[i], total + 1);
	}
	for (i = 0; i < total && i < 63; i++)
		cut[i] = good[i];
	cut[i] = NULL;
	th_feed(p, ctx, cut, "", &r, &d);
	ok(r.rc == PH_E_MALFORMED && r.fail_line == 0 &&
	    strstr(d.msg, "truncated") != NULL, "no total line: refused as "
	    "truncated");
	th_feed(p, ctx, th_variant(good, total + 1, after), "", &r, &d);
	ok(r.rc == PH_E_MALFORMED && r.fail_line == total + 2,
	    "text after the total line: refused");
}

#endif /* PH_TAP_EVENT_H */
