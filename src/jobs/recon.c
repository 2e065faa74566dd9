/*
 * Reconciliation against a provider statement.
 *
 * First the whole statement goes through the plugin once, its end (the
 * statement's own totals) included, and nothing else happens: a statement
 * that is truncated, does not add up or has a malformed line changes
 * nothing.  Pass 1 then streams it again: each payment row is
 * looked up in the payments database and marked seen for this run
 * (profile and day); a payment missing here goes through ledger_apply()
 * with source "statement".  Pass 2 walks the stored payments of the
 * profile's provider for that day and raises each one the statement did
 * not list.  Categories come from what is stored (a payment first learnt
 * from a statement stays "missing here"), so a second run prints the same
 * report; alarms are raised once per run key, so it changes nothing.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ops/log.h"
#include "jobs/query.h"
#include "jobs/recon.h"
#include "jobs/recon_seen.h"

#define RECON_LINE_MAX (64 * 1024)
#define RECON_DAY 86400
#define RECON_SLACK 7200		/* a statement's payments may be this far
				 * outside its day */
#define RECON_CST 28800		/* Beijing time, UTC+8: statements' days */

static const char *const recon_cat_names[RECON__MAX] = {
	"matched", "missing_here", "missing_at_provider", "amount_differs",
	"double_payment", "amount_mismatch", "unknown_order", "late_payment",
	"other_account", "refund_matched", "refund_mismatch",
};

const char *
recon_cat_name(enum recon_cat c)
{
	return c < RECON__MAX ? recon_cat_names[c] : "?";
}

struct recon {
	const struct conf *conf;
	const struct conf_profile *pr;
	struct store *s;
	struct ledger_batch b;
	struct recon_summary *sum;
	char run[96];
	char prev_run[96];		/* the day before's: pass 2 looks */
	int64_t day_start;		/* unix seconds, 0 until known */
	int64_t now;
	FILE *csv, *json;
	int json_rows;
	int err;
	struct ph_diag *diag;
	enum recon_trust trust;
	json_t *ask;			/* orders to ask the provider about:
					 * id -> true */
	json_t *extra;			/* double and late payments' rows,
					 * written at the statement's end
					 * (recon_extra_rows) */
};

int
recon_parse_date(const char *d, int64_t *start)
{
	char buf[16];

	/* "YYYY-MM-DD" -> the compact form the SDK parses, at midnight. */
	if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		return -1;
	snprintf(buf, sizeof(buf), "%.4s%.2s%.2s000000", d, d + 5, d + 8);
	return ph_time_parse_compact(buf, RECON_CST, start) == PH_OK ? 0 : -1;
}

void
recon_yesterday(int64_t now, char date[11])
{
	time_t t = (time_t)(now + RECON_CST - 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, 11, "%Y-%m-%d", &tm);
}

/* A statement's day in Beijing time: where the day that holds t starts. */
static int64_t
recon_day_of(int64_t t)
{
	int64_t local = t + RECON_CST;

	return local - (local % RECON_DAY + RECON_DAY) % RECON_DAY - RECON_CST;
}

/* The run of profile pr for the day starting at day_start, and its date
 * (11 bytes) into date when not NULL. */
static void
recon_run_name(const struct conf_profile *pr, int64_t day_start, char *run,
    size_t cap, char *date)
{
	char d[16];
	time_t mid = (time_t)(day_start + RECON_CST);
	struct tm tm;

	gmtime_r(&mid, &tm);
	strftime(d, sizeof(d), "%Y-%m-%d", &tm);
	snprintf(run, cap, "%s:%s", pr->name, d);
	if (date != NULL)
		memcpy(date, d, 11);
}

static void
recon_set_day(struct recon *r, int64_t t)
{
	r->day_start = recon_day_of(t);
	recon_run_name(r->pr, r->day_start, r->run, sizeof(r->run),
	    r->sum->date);
	recon_run_name(r->pr, r->day_start - RECON_DAY, r->prev_run,
	    sizeof(r->prev_run), NULL);
}

static void
recon_csv_field(FILE *f, const char *v)
{
	if (strpbrk(v, ",\"\r\n") == NULL) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (; *v != '\0'; v++) {
		if (*v == '"')
			fputc('"', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

/* One report row, in both files. */
static void
recon_row(struct recon *r, enum recon_cat cat, const char *order_id,
    const char *txn_id, int64_t statement_amount, int64_t stored_amount,
    const char *currency, const char *action)
{
	char sa[32] = "", ha[32] = "";
	json_t *j;
	char *line;

	r->sum->count[cat]++;
	r->sum->amount[cat] += statement_amount >= 0 ? statement_amount :
	    stored_amount;
	if (statement_amount >= 0)
		snprintf(sa, sizeof(sa), "%lld", (long long)statement_amount);
	if (stored_amount >= 0)
		snprintf(ha, sizeof(ha), "%lld", (long long)stored_amount);
	recon_csv_field(r->csv, recon_cat_names[cat]);
	fputc(',', r->csv);
	recon_csv_field(r->csv, order_id);
	fputc(',', r->csv);
	recon_csv_field(r->csv, txn_id);
	fprintf(r->csv, ",%s,%s,", sa, ha);
	recon_csv_field(r->csv, currency);
	fputc(',', r->csv);
	recon_csv_field(r->csv, action);
	fputc('\n', r->csv);

	j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "category",
	    recon_cat_names[cat], "order_id", order_id, "provider_txn_id",
	    txn_id, "currency", currency, "action", action);
	if (j == NULL)
		return;
	json_object_set_new(j, "statement_amount", statement_amount >= 0 ?
	    json_integer(statement_amount) : json_null());
	json_object_set_new(j, "stored_amount", stored_amount >= 0 ?
	    json_integer(stored_amount) : json_null());
	if ((line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) !=
	    NULL)
		fprintf(r->json, "%s\n  %s", r->json_rows++ ? "," : "", line);
	free(line);
	json_decref(j);
}

static const char *
recon_str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v != NULL ? v : "";
}

/* reconcile.missing_here about ev, applied from a statement payhook
 * downloaded or the operator vouched for; once per run (the batch keeps
 * the alarms raised). */
static void
recon_missing_here(struct recon *r, const char *provider,
    const struct ph_event *ev)
{
	ledger_batch_alarm_new(&r->b, r->run, LEDGER_EV_RECONCILE_MISSING_HERE,
	    r->pr->name, provider, ev, json_pack("{s:s}", "statement",
	    r->trust == RECON_FILE_TRUSTED ? "vouched_for" :
	    r->trust == RECON_FILE ? "unverified" : "downloaded"), r->now);
}

/* What a stored payment's disposition makes of a statement row. */
static enum recon_cat
recon_disposition(const json_t *pay)
{
	const char *d = recon_str(pay, "disposition");

	if (strcmp(d, "double_payment") == 0)
		return RECON_DOUBLE_PAYMENT;
	if (strcmp(d, "amount_mismatch") == 0)
		return RECON_AMOUNT_MISMATCH;
	if (strcmp(d, "unknown_order") == 0)
		return RECON_UNKNOWN_ORDER;
	if (strcmp(d, "late_payment") == 0)
		return RECON_LATE_PAYMENT;
	if (strcmp(d, "profile_mismatch") == 0)
		return RECON_OTHER_ACCOUNT;
	if (strcmp(recon_str(pay, "source"),
	    ledger_source_name(LEDGER_SRC_STATEMENT)) == 0 ||
	    strcmp(recon_str(pay, "source"),
	    ledger_source_name(LEDGER_SRC_STATEMENT_FILE)) == 0)
		return RECON_MISSING_HERE;
	return RECON_MATCHED;
}

static const char *
recon_action(enum recon_cat c)
{
	switch (c) {
	case RECON_MISSING_HERE:
		return "applied from the statement";
	case RECON_DOUBLE_PAYMENT:
	case RECON_LATE_PAYMENT:
		return "on the refund work list";
	case RECON_AMOUNT_DIFFERS:
	case RECON_MISSING_AT_PROVIDER:
	case RECON_REFUND_MISMATCH:
		return "raised: for a person to look at";
	case RECON_AMOUNT_MISMATCH:
	case RECON_UNKNOWN_ORDER:
	case RECON_OTHER_ACCOUNT:
		return "recorded as an exception";
	default:
		return "";
	}
}

/*
 * Where the refund queued for a double or late payment stands, as its
 * row's action.  buf holds the text when it names the refund.
 */
static const char *
recon_refund_action(struct recon *r, enum recon_cat cat, const char *order_id,
    const char *txn_id, char *buf, size_t cap)
{
	json_t *item = NULL;
	const char *id, *what = buf;

	if (ledger_batch_extra_refund(&r->b, r->pr->name, order_id, txn_id,
	    &item) != PH_OK)
		return recon_action(cat);
	id = recon_str(item, "refund_id");
	switch (ledger_refund_state_parse(recon_str(item, "state"))) {
	case LEDGER_REFUND_PROCESSING:
		snprintf(buf, cap, "on the refund work list: refund %s sent, "
		    "its result to come", id);
		break;
	case LEDGER_REFUND_SUCCEEDED:
		snprintf(buf, cap, "refunded: refund %s", id);
		break;
	case LEDGER_REFUND_FAILED:
		snprintf(buf, cap, "its refund %s failed: for a person to look "
		    "at", id);
		break;
	case LEDGER_REFUND_CANCELLED:
		snprintf(buf, cap, "its refund %s was cancelled: for a person "
		    "to look at", id);
		break;
	default:
		what = recon_action(cat);
		break;
	}
	json_decref(item);
	return what;
}

/*
 * The row of a statement's payment that payhook holds (pay; NULL when it
 * could not be read back).  A double or late payment's waits for the
 * statement's end, where its action says where its refund stands then: a
 * refund row further on may settle that refund, and a run again over the
 * same statement must say what this one did.  An amount that differs in
 * its currency names the one payhook holds (the row has the statement's).
 */
static void
recon_pay_row(struct recon *r, enum recon_cat cat, const struct ph_event *ev,
    const json_t *pay)
{
	int64_t stored = pay != NULL ?
	    json_integer_value(json_object_get(pay, "amount")) : -1;
	char action[200];
	json_t *row;

	if (pay != NULL && (cat == RECON_DOUBLE_PAYMENT ||
	    cat == RECON_LATE_PAYMENT)) {
		row = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:s}", "cat",
		    (int)cat, "order_id", ev->order_id, "txn_id", ev->txn_id,
		    "held_by", recon_str(pay, "order_id"), "amount",
		    (json_int_t)ev->amount, "stored", (json_int_t)stored,
		    "currency", ev->currency);
		if (row == NULL || json_array_append_new(r->extra, row) != 0)
			r->err = PH_E_NOMEM;
		return;
	}
	if (pay != NULL && cat == RECON_AMOUNT_DIFFERS &&
	    strcmp(recon_str(pay, "currency"), ev->currency) != 0) {
		snprintf(action, sizeof(action), "%s (payhook holds it in %s)",
		    recon_action(cat), recon_str(pay, "currency"));
		recon_row(r, cat, ev->order_id, ev->txn_id, ev->amount, stored,
		    ev->currency, action);
		return;
	}
	recon_row(r, cat, ev->order_id, ev->txn_id, ev->amount, stored,
	    ev->currency, recon_action(cat));
}

/* The rows recon_pay_row kept back, in the statement's order. */
static void
recon_extra_rows(struct recon *r)
{
	char action[200];
	enum recon_cat cat;
	json_t *row;
	size_t i;

	json_array_foreach(r->extra, i, row) {
		cat = (enum recon_cat)json_integer_value(json_object_get(row,
		    "cat"));
		recon_row(r, cat, recon_str(row, "order_id"), recon_str(row,
		    "txn_id"), json_integer_value(json_object_get(row,
		    "amount")), json_integer_value(json_object_get(row,
		    "stored")), recon_str(row, "currency"),
		    recon_refund_action(r, cat, recon_str(row, "held_by"),
		    recon_str(row, "txn_id"), action, sizeof(action)));
	}
}

/*
 * What is done with a payment only an unverified statement lists, for
 * its report row: a pending order is asked about at the provider; any
 * other waits for a statement payhook may trust.
 */
static const char *
recon_unverified(struct recon *r, const struct ph_event *ev)
{
	json_t *order = NULL;
	int pending;

	if (ledger_batch_order(&r->b, ev->order_id, &order) != PH_OK)
		return "not applied (an unverified statement): no such order "
		    "here";
	pending = strcmp(recon_str(order, "state"), "PENDING") == 0;
	json_decref(order);
	if (!pending)
		return "not applied (an unverified statement): the order is "
		    "settled already; a payment beyond it is applied from a "
		    "statement payhook downloads or one vouched for "
		    "(--trust-file)";
	if (json_object_set_new(r->ask, ev->order_id, json_true()) != 0)
		r->err = PH_E_NOMEM;
	return "not applied (an unverified statement): the order is asked "
	    "about at the provider";
}

/*
 * Applies a fact the statement proves, as a notification would be, in the
 * batch's transaction: what the run marks and raises of it after this is
 * committed with it (a run killed between the two would have left a
 * payment applied with no alarm, which no later run raises).
 */
static int
recon_apply(struct recon *r, struct ph_event *ev)
{
	struct ledger_result res;
	struct ledger_fact f;

	f.profile = r->pr->name;
	f.provider = r->pr->plugin->prov->name;
	f.source = ledger_source_name(r->trust == RECON_FILE_TRUSTED ?
	    LEDGER_SRC_STATEMENT_FILE : LEDGER_SRC_STATEMENT);
	f.ev = ev;
	f.now = r->now;
	return ledger_batch_apply(&r->b, &f, &res, r->diag);
}

static void
recon_payment(struct recon *r, struct ph_event *ev)
{
	const char *provider = r->pr->plugin->prov->name;
	enum recon_cat cat;
	json_t *pay = NULL;
	int rc;

	rc = ledger_batch_payment(&r->b, r->pr->name, ev->txn_id, &pay);
	if (rc == PH_OK && strcmp(recon_str(pay, "status"), "SUCCEEDED") != 0) {
		/* Known only as a failure (a notification that said so):
		 * the statement's success is a payment payhook lacks. */
		json_decref(pay);
		pay = NULL;
		rc = PH_E_NOTFOUND;
	}
	if (rc == PH_E_NOTFOUND && r->trust == RECON_FILE) {
		/* Anyone could have written this file: say so, apply
		 * nothing, and ask the provider about a pending order
		 * (recon_ask); one paid or closed already has nothing a query
		 * of it would tell of a payment beyond it. */
		ledger_batch_mark(&r->b, r->run, ev->txn_id);
		ledger_batch_alarm_new(&r->b, r->run,
		    LEDGER_EV_RECONCILE_MISSING_HERE, r->pr->name, provider, ev,
		    json_pack("{s:s}", "statement", "unverified"), r->now);
		recon_row(r, RECON_MISSING_HERE, ev->order_id, ev->txn_id,
		    ev->amount, -1, ev->currency, recon_unverified(r, ev));
		return;
	}
	if (rc == PH_E_NOTFOUND) {
		/* Money moved and payhook never heard: apply it now. */
		if ((rc = recon_apply(r, ev)) != PH_OK) {
			r->err = rc;
			return;
		}
		ledger_batch_mark(&r->b, r->run, ev->txn_id);
		rc = ledger_batch_payment(&r->b, r->pr->name, ev->txn_id, &pay);
		/* Learnt from the statement: "missing here", unless it was
		 * an exception (double, late, wrong amount) all along. */
		cat = rc == PH_OK ? recon_disposition(pay) : RECON_MISSING_HERE;
		if (cat == RECON_MATCHED)
			cat = RECON_MISSING_HERE;
		/* Applied, and still an alarm: the notifications and the
		 * sweeper missed it. */
		if (cat == RECON_MISSING_HERE)
			recon_missing_here(r, provider, ev);
		/* The stored amount as a later run over the same statement
		 * reports it, so that both runs give the same report. */
		recon_pay_row(r, cat, ev, pay);
		json_decref(pay);
		return;
	}
	if (rc != PH_OK) {
		r->err = rc;
		return;
	}
	ledger_batch_mark(&r->b, r->run, ev->txn_id);
	if (json_integer_value(json_object_get(pay, "amount")) != ev->amount ||
	    strcmp(recon_str(pay, "currency"), ev->currency) != 0) {
		ledger_batch_alarm_new(&r->b, r->run, LEDGER_EV_RECONCILE_AMOUNT_DIFFERS,
		    r->pr->name, provider, ev, json_pack("{s:O, s:O}",
		    "stored_amount", json_object_get(pay, "amount"),
		    "stored_currency", json_object_get(pay, "currency")),
		    r->now);
		cat = RECON_AMOUNT_DIFFERS;
	} else if ((cat = recon_disposition(pay)) == RECON_MISSING_HERE)
		/* Learnt from a statement, an exception then (its order not
		 * registered yet) and paid since: reported missing here now,
		 * raised as such if no run of this day has. */
		recon_missing_here(r, provider, ev);
	else if (cat == RECON_MATCHED && ledger_batch_raised(&r->b, r->run,
	    ev->txn_id, LEDGER_EV_RECONCILE_MISSING_HERE)) {
		/* An earlier run of the day found it missing (an unverified
		 * statement's, then confirmed by the provider): it still is,
		 * so that a run again reports what the first did. */
		recon_row(r, RECON_MISSING_HERE, ev->order_id, ev->txn_id,
		    ev->amount, json_integer_value(json_object_get(pay,
		    "amount")), ev->currency, "raised by an earlier run of "
		    "this day; recorded here since");
		json_decref(pay);
		return;
	}
	recon_pay_row(r, cat, ev, pay);
	json_decref(pay);
}

/*
 * Whether the statement's refund is the one payhook asked for beyond its
 * id and amount: of the same profile and payment, and, once the provider
 * named its own refund id, that one (a second refund under the same id
 * names another).
 */
static int
recon_refund_same(const struct recon *r, const json_t *item,
    const struct ph_event *ev)
{
	const char *theirs = recon_str(item, "provider_refund_id");

	return strcmp(recon_str(item, "profile"), r->pr->name) == 0 &&
	    (ev->txn_id[0] == '\0' ||
	    strcmp(recon_str(item, "provider_txn_id"), ev->txn_id) == 0) &&
	    (theirs[0] == '\0' || ev->refund_id[0] == '\0' ||
	    strcmp(theirs, ev->refund_id) == 0);
}

/*
 * A refund payhook asked for whose result never came (its notification
 * lost: the runner's answers only say it is being processed), listed as
 * made by a statement payhook downloaded or the operator vouches for:
 * settled from it, as a payment missing here is.  Then item is read
 * again; PH_OK or the failure.
 */
static int
recon_refund_settle(struct recon *r, struct ph_event *ev, json_t **item)
{
	int rc;

	json_decref(*item);
	*item = NULL;
	if ((rc = recon_apply(r, ev)) != PH_OK)
		return rc;
	rc = ledger_batch_refund(&r->b, ev->merchant_refund_id, item);
	return rc == PH_E_NOTFOUND ? PH_OK : rc;
}

/* The order of refund row ev that names none: its refund's, else its
 * payment's (nothing when payhook knows neither). */
static void
recon_order_of(struct recon *r, const json_t *item, struct ph_event *ev)
{
	const char *id = recon_str(item, "order_id");

	if (*id != '\0')
		ph_strlcpy(ev->order_id, id, sizeof(ev->order_id));
	else
		ledger_batch_payment_order(&r->b, r->pr->name, ev->txn_id,
		    ev->order_id, sizeof(ev->order_id));
}

static void
recon_refund(struct recon *r, struct ph_event *ev)
{
	const char *provider = r->pr->plugin->prov->name;
	const char *state;
	json_t *item = NULL;
	int ok, same, waiting;

	same = ev->merchant_refund_id[0] != '\0' &&
	    ledger_batch_refund(&r->b, ev->merchant_refund_id, &item) ==
	    PH_OK &&
	    json_integer_value(json_object_get(item, "amount")) == ev->amount &&
	    recon_refund_same(r, item, ev);
	state = recon_str(item, "state");
	if (same && r->trust != RECON_FILE && ev->dedup_key[0] != '\0' &&
	    strcmp(state, "SUCCEEDED") != 0 &&
	    !ledger_refund_hand_settled(item)) {
		/* Reported as matched, as a later run over the same
		 * statement reports it: the event says it was settled.  One
		 * marked FAILED or CANCELLED that the provider made after all
		 * (at its portal, or its success told late) is settled too,
		 * as its late notification would: the money went back.  Not
		 * one the operator settled by hand: a mismatch to look at. */
		if ((r->err = recon_refund_settle(r, ev, &item)) != PH_OK) {
			json_decref(item);
			return;
		}
	}
	/* Ours, its result still awaited, listed by a file nobody vouches
	 * for: it matches, and settles only from a statement payhook may
	 * trust or its result. */
	waiting = same && item != NULL && r->trust == RECON_FILE &&
	    (strcmp(recon_str(item, "state"), "PENDING") == 0 ||
	    strcmp(recon_str(item, "state"), "PROCESSING") == 0);
	ok = same && item != NULL &&
	    strcmp(recon_str(item, "state"), "SUCCEEDED") == 0;
	/* A row that names only the payment (UnionPay's), applied already
	 * if at all: its order for the report and the alarm. */
	if (ev->order_id[0] == '\0')
		recon_order_of(r, item, ev);
	ledger_batch_mark(&r->b, r->run, ev->refund_id[0] != '\0' ?
	    ev->refund_id : ev->merchant_refund_id);
	if (!ok && !waiting)
		ledger_batch_alarm_new(&r->b, r->run, LEDGER_EV_RECONCILE_REFUND_MISMATCH,
		    r->pr->name, provider, ev, json_pack("{s:s, s:s}",
		    "refund_id", ev->merchant_refund_id, "provider_refund_id",
		    ev->refund_id), r->now);
	recon_row(r, ok || waiting ? RECON_REFUND_MATCHED :
	    RECON_REFUND_MISMATCH, ev->order_id, ev->txn_id, ev->amount,
	    item != NULL ? json_integer_value(json_object_get(item,
	    "amount")) : -1, ev->currency, ok ? "" : waiting ? "not settled "
	    "(an unverified statement): its result, or a statement payhook "
	    "may trust, settles it" : recon_action(RECON_REFUND_MISMATCH));
	json_decref(item);
}

/*
 * Pass 2: a stored payment of the day that the statement did not list.
 * Near midnight a provider's cut-off may put a payment in the other day's
 * statement (within RECON_SLACK): one of the day's first hours that the
 * day before listed is not missing; one of its last hours is left to the
 * next day's run, which raises it when neither statement listed it.
 */
static int
recon_unlisted(struct ledger_batch *b, const json_t *pay, void *arg)
{
	struct recon *r = arg;
	int64_t at = json_integer_value(json_object_get(pay, "occurred_at"));
	int64_t end = r->day_start + RECON_DAY;
	const char *txn = recon_str(pay, "provider_txn_id");
	struct ph_event ev;

	if (strcmp(recon_str(pay, "status"), "SUCCEEDED") != 0 ||
	    strcmp(recon_str(pay, "profile"), r->pr->name) != 0 ||
	    at < r->day_start - RECON_SLACK || at >= end ||
	    ledger_batch_seen(b, r->run, txn))
		return 0;
	if (at >= end - RECON_SLACK)
		return 0;	/* the next day's run says */
	if (at < r->day_start + RECON_SLACK &&
	    ledger_batch_seen(b, r->prev_run, txn))
		return 0;
	ledger_record_event(pay, PH_EV_PAYMENT_SUCCEEDED, &ev);
	ev.occurred_at = at;
	ledger_batch_alarm_new(b, r->run, LEDGER_EV_RECONCILE_MISSING_AT_PROVIDER,
	    r->pr->name, recon_str(pay, "provider"), &ev, NULL, r->now);
	recon_row(r, RECON_MISSING_AT_PROVIDER, ev.order_id, ev.txn_id, -1,
	    ev.amount, ev.currency, recon_action(RECON_MISSING_AT_PROVIDER));
	return 0;
}

static int
recon_open_reports(struct recon *r, const char *dir)
{
	snprintf(r->sum->csv_path, sizeof(r->sum->csv_path),
	    "%s/reconcile-%s-%s.csv", dir, r->pr->name, r->sum->date);
	snprintf(r->sum->json_path, sizeof(r->sum->json_path),
	    "%s/reconcile-%s-%s.json", dir, r->pr->name, r->sum->date);
	if ((r->csv = tmpfile()) == NULL || (r->json = tmpfile()) == NULL)
		return ph_fail(r->diag, PH_E_IO, "report: %s", strerror(errno));
	fputs("category,order_id,provider_txn_id,statement_amount,"
	    "stored_amount,currency,action\n", r->csv);
	return PH_OK;
}

/*
 * Writes a finished report from its temporary file into place: a new file
 * of a fresh name beside it (mkostemp: O_EXCL, mode 0600, so nothing
 * planted there is followed or overwritten), flushed, then renamed over
 * the report, which replaces a link rather than following it.
 */
int
recon_write(FILE *tmp, const char *path, const char *head, const char *tail,
    struct ph_diag *diag)
{
	char part[1100], buf[65536];
	size_t n;
	FILE *out;
	int fd;

	if (snprintf(part, sizeof(part), "%s.XXXXXX", path) >=
	    (int)sizeof(part))
		return ph_fail(diag, PH_E_IO, "%s: path too long", path);
	if ((fd = mkostemp(part, O_CLOEXEC)) == -1)
		return ph_fail(diag, PH_E_IO, "%s: %s", path,
		    strerror(errno));
	if ((out = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(part);
		return ph_fail(diag, PH_E_IO, "%s: %s", part,
		    strerror(errno));
	}
	fputs(head, out);
	rewind(tmp);
	while ((n = fread(buf, 1, sizeof(buf), tmp)) > 0)
		fwrite(buf, 1, n, out);
	fputs(tail, out);
	if (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) != 0) {
		fclose(out);
		unlink(part);
		return ph_fail(diag, PH_E_IO, "%s: %s", path,
		    strerror(errno));
	}
	if (fclose(out) != 0 || rename(part, path) == -1) {
		unlink(part);
		return ph_fail(diag, PH_E_IO, "%s: %s", path,
		    strerror(errno));
	}
	return PH_OK;
}

static int
recon_finish_reports(struct recon *r, const struct recon_opts *o)
{
	char head[1024], tail[4096];
	json_t *sum = json_object(), *amounts = json_object();
	char *s, *a;
	int i, rc;

	/* Counts in "summary", and beside them what they add up to, in
	 * minor units, as the standard output shows both. */
	for (i = 0; i < RECON__MAX; i++) {
		json_object_set_new(sum, recon_cat_names[i],
		    json_integer((json_int_t)r->sum->count[i]));
		json_object_set_new(amounts, recon_cat_names[i],
		    json_integer((json_int_t)r->sum->amount[i]));
	}
	s = json_dumps(sum, JSON_COMPACT | JSON_PRESERVE_ORDER);
	a = json_dumps(amounts, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(sum);
	json_decref(amounts);
	snprintf(head, sizeof(head), "{\"profile\": \"%s\", \"date\": \"%s\", "
	    "\"statement_lines\": %llu, \"rows\": [", r->pr->name,
	    r->sum->date, (unsigned long long)r->sum->lines);
	snprintf(tail, sizeof(tail), "\n], \"summary\": %s, \"amounts\": "
	    "%s}\n", s != NULL ? s : "{}", a != NULL ? a : "{}");
	free(s);
	free(a);
	if ((rc = recon_write(r->csv, r->sum->csv_path, "", "", r->diag)) !=
	    PH_OK)
		return rc;
	(void)o;
	return recon_write(r->json, r->sum->json_path, head, tail, r->diag);
}

/* Reads the next line without its terminator; -1 at the end. */
static ssize_t
recon_getline(char **line, size_t *cap, FILE *in)
{
	ssize_t len = getline(line, cap, in);

	while (len > 0 && ((*line)[len - 1] == '\n' ||
	    (*line)[len - 1] == '\r'))
		(*line)[--len] = '\0';
	return len;
}

/* The plugin's answer about a statement line, through loader_result;
 * one that is no status names the line too. */
static int
recon_plugin_rc(const struct conf_profile *pr, const struct ph_statement *st,
    int rc, struct ph_diag *diag)
{
	char msg[sizeof(diag->msg)];
	int out = loader_result(pr->plugin->prov, rc, diag);

	if (out == rc)
		return out;
	memcpy(msg, diag->msg, sizeof(msg));
	return ph_fail(diag, out, "statement line %llu: %s",
	    (unsigned long long)st->line, msg);
}

/* A statement line's fact, held to the ledger's contract; the line number
 * says where. */
static int
recon_event_check(const struct ph_statement *st, const struct ph_event *ev,
    struct ph_diag *diag)
{
	struct ph_diag why;
	int rc;

	memset(&why, 0, sizeof(why));
	if ((rc = ledger_event_check(ev, &why)) != PH_OK)
		return ph_fail(diag, rc, "statement line %llu: %s",
		    (unsigned long long)st->line, why.msg);
	return PH_OK;
}

/*
 * The statement's next line through the plugin into ev, held to the
 * ledger's contract; at the end of the file *more is 0 and nothing is
 * read.  An error names the line.
 */
static int
recon_next(const struct conf_profile *pr, FILE *in, char **line,
    size_t *cap, struct ph_statement *st, struct ph_event *ev, int *more,
    struct ph_diag *diag)
{
	ssize_t len;
	int rc;

	if ((len = recon_getline(line, cap, in)) == -1) {
		*more = 0;
		return ferror(in) ? ph_fail(diag, PH_E_IO, "statement: read "
		    "error") : PH_OK;
	}
	*more = 1;
	st->line++;
	if (len > RECON_LINE_MAX)
		return ph_fail(diag, PH_E_TOOBIG, "statement line %llu is "
		    "longer than %d bytes", (unsigned long long)st->line,
		    RECON_LINE_MAX);
	memset(ev, 0, sizeof(*ev));
	if ((rc = recon_plugin_rc(pr, st, pr->plugin->prov->statement_line(
	    pr->ctx, st, *line, (size_t)len, ev, diag), diag)) != PH_OK)
		return rc;
	return recon_event_check(st, ev, diag);
}

/*
 * A fact listed twice is one fact: a statement that lists it again is
 * refused (its money would count twice in the report).  seen maps the key
 * of each fact suspected of it (recon_seen) to the line that listed it.
 */
static int
recon_once(json_t *seen, const struct ph_statement *st,
    const struct ph_event *ev, struct ph_diag *diag)
{
	char key[PH_DEDUP_MAX + 8];
	json_t *at;

	snprintf(key, sizeof(key), "%d:%s", (int)ev->kind, ev->dedup_key);
	if ((at = json_object_get(seen, key)) != NULL)
		return ph_fail(diag, PH_E_MALFORMED, "statement line %llu: "
		    "the %s of line %lld again (%s): a fact is listed once",
		    (unsigned long long)st->line, ev->kind ==
		    PH_EV_PAYMENT_SUCCEEDED ? "payment" : "refund",
		    (long long)json_integer_value(at), ev->dedup_key);
	if (json_object_set_new(seen, key, json_integer(
	    (json_int_t)st->line)) != 0)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	return PH_OK;
}

/*
 * The statement read again for the facts whose fingerprint came twice:
 * the first one listed again is refused, naming both its lines (two facts
 * that share a fingerprint are no fault).
 */
static int
recon_twice(const struct conf_profile *pr, FILE *in, char **line,
    size_t *cap, const struct recon_seen *seen, struct ph_diag *diag)
{
	struct ph_statement *st = calloc(1, sizeof(*st));
	struct ph_event ev;
	json_t *keys = json_object();
	int rc, more = 1;

	if (st == NULL || keys == NULL)
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
	else if (fseeko(in, 0, SEEK_SET) == -1)
		rc = ph_fail(diag, PH_E_IO, "statement: %s", strerror(errno));
	else
		while ((rc = recon_next(pr, in, line, cap, st, &ev, &more,
		    diag)) == PH_OK && more)
			if (ev.kind != PH_EV_IGNORED &&
			    recon_seen_suspect(seen, &ev) &&
			    (rc = recon_once(keys, st, &ev, diag)) != PH_OK)
				break;
	free(st);
	json_decref(keys);
	return rc;
}

/*
 * Whether a payment of the statement is of its day: one more than two
 * hours outside it (the most a provider's cut-off or clock is allowed to
 * be off) is of another day's statement.
 */
/* Does at lie within the day starting at day_start, or its slack? */
static int
recon_in_slack(int64_t day_start, int64_t at)
{
	return at >= day_start - RECON_SLACK &&
	    at < day_start + RECON_DAY + RECON_SLACK;
}

static int
recon_of_day(int64_t day_start, uint64_t line, int64_t at,
    struct ph_diag *diag)
{
	char day[11], its[11];
	time_t t;
	struct tm tm;

	if (recon_in_slack(day_start, at))
		return PH_OK;
	t = (time_t)(day_start + RECON_CST);
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	t = (time_t)(at + RECON_CST);
	gmtime_r(&t, &tm);
	strftime(its, sizeof(its), "%Y-%m-%d", &tm);
	return ph_fail(diag, PH_E_FIELD, "statement line %llu: a payment of "
	    "%s in the statement of %s: the statement of another day?",
	    (unsigned long long)line, its, day);
}

/*
 * The day of a statement given without one: of the Beijing days its
 * payments fall on, one whose slack holds them all, so that a payment of
 * the slack before or after it, listed first, does not choose another.
 */
#define RECON_DAYS_MAX 4		/* one day, its slack, and more is wrong */

struct recon_days {
	int64_t day[RECON_DAYS_MAX];
	uint64_t n[RECON_DAYS_MAX];
	size_t nd;
	int64_t first, last;		/* the earliest and latest payment */
	uint64_t first_line, last_line;
};

static int
recon_days_add(struct recon_days *d, int64_t at, uint64_t line,
    struct ph_diag *diag)
{
	int64_t day = recon_day_of(at);
	size_t i;

	if (d->nd == 0 || at < d->first) {
		d->first = at;
		d->first_line = line;
	}
	if (d->nd == 0 || at > d->last) {
		d->last = at;
		d->last_line = line;
	}
	for (i = 0; i < d->nd && d->day[i] != day; i++)
		;
	if (i == RECON_DAYS_MAX)
		return ph_fail(diag, PH_E_FIELD, "statement line %llu: "
		    "payments of more than %d days: not the statement of one "
		    "day", (unsigned long long)line, RECON_DAYS_MAX);
	if (i == d->nd) {
		d->day[i] = day;
		d->n[i] = 0;
		d->nd++;
	}
	d->n[i]++;
	return PH_OK;
}

/* Do the earliest and the latest payment lie within day's slack? */
static int
recon_days_fit(const struct recon_days *d, int64_t day)
{
	return recon_in_slack(day, d->first) && recon_in_slack(day, d->last);
}

/*
 * The day chosen, its payments in *inside; 0 when there was none.  Of the
 * days every payment lies within the slack of, the one most fall on (the
 * earlier of a tie); when there is none such, the one most fall on, for
 * the caller to refuse naming the payment outside it.
 */
static int64_t
recon_days_pick(const struct recon_days *d, uint64_t *inside)
{
	size_t i, best = 0;
	int fit, best_fit;

	if (d->nd == 0)
		return 0;
	best_fit = recon_days_fit(d, d->day[0]);
	for (i = 1; i < d->nd; i++) {
		fit = recon_days_fit(d, d->day[i]);
		if (fit > best_fit || (fit == best_fit && (d->n[i] >
		    d->n[best] || (d->n[i] == d->n[best] &&
		    d->day[i] < d->day[best])))) {
			best = i;
			best_fit = fit;
		}
	}
	*inside = d->n[best];
	return d->day[best];
}

/*
 * The first pass: the whole statement through the plugin, the end (its
 * own totals) included, before anything is applied or marked.  A
 * statement that is truncated, does not add up, has a malformed line,
 * lists a fact twice, or is of another day than *day's is refused here
 * and changes nothing.  *day 0: the day most of its payments fall on
 * (recon_days_pick), set there (still 0 when it lists none), the one day
 * the run then reconciles.
 */
static int
recon_check(const struct conf_profile *pr, FILE *in, char **line,
    size_t *cap, int64_t *day, struct ph_diag *diag)
{
	struct ph_statement *st;
	struct ph_event ev;
	struct recon_seen seen;
	struct recon_days days;
	uint64_t inside = 0, pays = 0;
	int64_t day_start = *day;
	int rc, more = 1;

	memset(&days, 0, sizeof(days));
	if (recon_seen_init(&seen) != PH_OK)
		return ph_fail(diag, PH_E_INTERNAL, "no randomness available");
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	while ((rc = recon_next(pr, in, line, cap, st, &ev, &more, diag)) ==
	    PH_OK && more) {
		if (ev.kind == PH_EV_IGNORED)
			continue;
		if (recon_seen_add(&seen, &ev) != PH_OK) {
			rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
			break;
		}
		if (ev.kind != PH_EV_PAYMENT_SUCCEEDED || ev.occurred_at == 0)
			continue;
		pays++;
		if (day_start == 0) {
			if ((rc = recon_days_add(&days, ev.occurred_at,
			    st->line, diag)) != PH_OK)
				break;
			continue;
		}
		if ((rc = recon_of_day(day_start, st->line, ev.occurred_at,
		    diag)) != PH_OK)
			break;
		inside += ev.occurred_at >= day_start &&
		    ev.occurred_at < day_start + RECON_DAY;
	}
	if (rc == PH_OK && recon_seen_sort(&seen) > 0)
		rc = recon_twice(pr, in, line, cap, &seen, diag);
	recon_seen_free(&seen);
	if (rc == PH_OK) {
		memset(&ev, 0, sizeof(ev));
		rc = recon_plugin_rc(pr, st, pr->plugin->prov->statement_line(
		    pr->ctx, st, NULL, 0, &ev, diag), diag);
	}
	if (rc == PH_OK && day_start == 0 &&
	    (day_start = recon_days_pick(&days, &inside)) != 0 &&
	    (rc = recon_of_day(day_start, days.first_line, days.first,
	    diag)) == PH_OK)
		rc = recon_of_day(day_start, days.last_line, days.last, diag);
	if (rc == PH_OK && pays > 0 && inside == 0)
		rc = ph_fail(diag, PH_E_FIELD, "the statement lists %llu "
		    "payment(s), none of the day asked: the statement of "
		    "another day?", (unsigned long long)pays);
	free(st);
	if (rc == PH_OK && fseeko(in, 0, SEEK_SET) == -1)
		rc = ph_fail(diag, PH_E_IO, "statement: %s", strerror(errno));
	*day = day_start;
	return rc;
}

/*
 * Asks the provider about the pending orders an unverified statement says
 * were paid; a payment it confirms is applied as any query's (source
 * "query").  In rounds of sweep_concurrency calls at once.
 */
static void
recon_ask(struct recon *r)
{
	struct query_target ts[QUERY_TARGETS_MAX];
	struct query_job *jobs;
	const char *id;
	json_t *order;
	size_t i, n, njobs, round = r->conf->sweep_concurrency * 4;
	/* Room for a round of orders of a call or two each, and for one of
	 * every target more: a round ends where the next might not fit. */
	size_t cap = round * 2 + QUERY_TARGETS_MAX;
	void *iter = json_object_iter(r->ask);

	if ((jobs = calloc(cap, sizeof(*jobs))) == NULL) {
		log_err("reconcile %s: out of memory: the pending orders it "
		    "lists as paid are not asked about", r->pr->name);
		return;
	}
	while (iter != NULL) {
		njobs = 0;
		for (n = 0; iter != NULL && n < round &&
		    njobs + QUERY_TARGETS_MAX <= cap;
		    iter = json_object_iter_next(r->ask, iter), n++) {
			id = json_object_iter_key(iter);
			if (ledger_get_order(r->s, id, &order) != PH_OK)
				continue;
			if (strcmp(recon_str(order, "state"), "PENDING") == 0) {
				size_t k, np = query_targets(r->conf, order,
				    ts, QUERY_TARGETS_MAX);

				for (k = 0; k < np; k++)
					query_prepare(&jobs[njobs++],
					    QUERY_OP_QUERY, &ts[k], order,
					    r->now);
				r->sum->asked += np > 0;
			}
			json_decref(order);
		}
		query_send(r->conf, jobs, njobs, r->conf->sweep_concurrency);
		for (i = 0; i < njobs; i++) {
			query_finish(r->s, &jobs[i], r->now);
			if (jobs[i].err != PH_OK)
				r->sum->unanswered++;
			if (jobs[i].err == PH_E_CONFIG)
				r->sum->unsendable++;
			if (jobs[i].err == PH_OK &&
			    jobs[i].applied.event == LEDGER_EV_ORDER_PAID)
				r->sum->confirmed++;
			query_job_free(&jobs[i]);
		}
		memset(jobs, 0, njobs * sizeof(*jobs));
	}
	free(jobs);
}

int
recon_run(const struct conf *c, struct store *s, const struct recon_opts *o,
    int64_t now, struct recon_summary *sum, struct ph_diag *diag)
{
	const struct ph_provider *prov;
	struct ph_statement *st = NULL;
	struct ph_event ev;
	struct stat sb;
	struct recon r;
	char *line = NULL;
	size_t cap = 0;
	FILE *in = NULL;
	int64_t day;
	int rc = PH_OK, started = 0, more;

	memset(sum, 0, sizeof(*sum));
	memset(&r, 0, sizeof(r));
	r.trust = o->trust;
	r.conf = c;
	r.s = s;
	r.sum = sum;
	r.now = now;
	r.diag = diag;
	if ((r.pr = conf_profile(c, o->profile)) == NULL)
		return ph_fail(diag, PH_E_CONFIG, "no profile %s", o->profile);
	prov = r.pr->plugin->prov;
	if (!(prov->caps & PH_CAP_STATEMENT))
		return ph_fail(diag, PH_E_UNSUPPORTED, "provider %s reads no "
		    "statements", prov->name);
	if (o->date != NULL) {
		int64_t d;

		if (recon_parse_date(o->date, &d) == -1)
			return ph_fail(diag, PH_E_CONFIG, "--date %s is not "
			    "YYYY-MM-DD", o->date);
		recon_set_day(&r, d);
	}
	/* No statement at all (the provider has none for the day): only
	 * what payhook holds of that day is left to compare. */
	if (o->statement == NULL && r.day_start == 0)
		return ph_fail(diag, PH_E_INTERNAL, "no statement and no day");
	/* Where the report goes, before anything is applied: a run that
	 * cannot write it would have changed the store and said nothing. */
	if (stat(o->report_dir, &sb) == -1)
		return ph_fail(diag, PH_E_IO, "report folder %s: %s",
		    o->report_dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode) || access(o->report_dir, W_OK | X_OK) == -1)
		return ph_fail(diag, PH_E_IO, "report folder %s: %s",
		    o->report_dir, !S_ISDIR(sb.st_mode) ? "not a folder" :
		    strerror(errno));
	if (o->statement != NULL && (in = fopen(o->statement, "r")) == NULL)
		return ph_fail(diag, PH_E_IO, "statement %s: %s", o->statement,
		    strerror(errno));
	if ((r.ask = json_object()) == NULL || (r.extra = json_array()) ==
	    NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto done;
	}
	day = r.day_start;
	if (in != NULL && (rc = recon_check(r.pr, in, &line, &cap, &day,
	    diag)) != PH_OK)
		goto done;
	/* The day checked is the day reconciled: a refund or a row without
	 * a time first must not choose another. */
	if (r.day_start == 0) {
		if (day == 0) {
			rc = ph_fail(diag, PH_E_FIELD, "statement %s lists no "
			    "payment and no --date was given", o->statement);
			goto done;
		}
		recon_set_day(&r, day);
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = ledger_batch_begin(&r.b, s)) != PH_OK) {
		ph_fail(diag, rc, "database: %s", ph_strerror(rc));
		goto done;
	}
	while (in != NULL) {
		if ((rc = recon_next(r.pr, in, &line, &cap, st, &ev, &more,
		    diag)) != PH_OK)
			goto done;
		if (!more)
			break;
		sum->lines++;
		if (ev.kind == PH_EV_IGNORED)
			continue;
		if (!started) {
			if ((rc = recon_open_reports(&r, o->report_dir)) !=
			    PH_OK || (rc = ledger_batch_clear(&r.b, r.run, diag)) !=
			    PH_OK)
				goto done;
			started = 1;
		}
		if (ev.kind == PH_EV_PAYMENT_SUCCEEDED)
			recon_payment(&r, &ev);
		else if (ev.kind == PH_EV_REFUND_SUCCEEDED)
			recon_refund(&r, &ev);
		if (r.err != PH_OK) {
			rc = r.err;
			if (diag->msg[0] == '\0')
				ph_fail(diag, rc, "line %llu: %s",
				    (unsigned long long)st->line,
				    ph_strerror(rc));
			goto done;
		}
	}
	/* The end: the plugin checks the statement's own totals. */
	memset(&ev, 0, sizeof(ev));
	if (in != NULL && (rc = recon_plugin_rc(r.pr, st,
	    prov->statement_line(r.pr->ctx, st, NULL, 0, &ev, diag),
	    diag)) != PH_OK)
		goto done;
	if (!started && ((rc = recon_open_reports(&r, o->report_dir)) !=
	    PH_OK || (rc = ledger_batch_clear(&r.b, r.run, diag)) != PH_OK))
		goto done;
	recon_extra_rows(&r);
	if ((rc = ledger_batch_payments(&r.b, r.pr->name, recon_unlisted,
	    &r)) != PH_OK) {
		ph_fail(diag, rc, "database: %s", ph_strerror(rc));
		goto done;
	}
	if ((rc = ledger_batch_end(&r.b)) != PH_OK) {
		ph_fail(diag, rc, "database: %s", ph_strerror(rc));
		goto done;
	}
	recon_ask(&r);
	rc = recon_finish_reports(&r, o);
done:
	ledger_batch_abort(&r.b);
	if (r.csv != NULL)
		fclose(r.csv);
	if (r.json != NULL)
		fclose(r.json);
	if (in != NULL)
		fclose(in);
	free(line);
	free(st);
	json_decref(r.ask);
	json_decref(r.extra);
	return rc;
}
