/*
 * Batches for reconciliation: one write transaction for a bounded number
 * of statement rows, the facts a statement proves applied in it with
 * their marks and alarms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ledger/order.h"
#include "ops/log.h"
#include "ops/proc.h"
#include "ops/metrics.h"

/* ---- Batches for reconciliation ------------------------------------------ */

#define LEDGER_BATCH_ROWS 2000
#define LEDGER_KEY_SEEN 'S'
#define LEDGER_KEY_ALARM 'A'
#define LEDGER_KEY_RUN 'L'
/* How long a run held by a process on another host stays its without a
 * commit (a batch of LEDGER_BATCH_ROWS rows takes seconds). */
#define LEDGER_RUN_LEASE_S 300

/* Tells the facts the commit just made durable, and forgets them. */
static void
ledger_batch_told(struct ledger_batch *b, int committed)
{
	size_t i;

	for (i = 0; committed && i < b->npaid; i++)
		ledger_paid_tell(&b->paid[i]);
	b->npaid = 0;
	if (!committed || !b->open) {
		free(b->paid);
		b->paid = NULL;
		b->cappaid = 0;
	}
}

static void
ledger_run_key(struct store_key *k, const char *run)
{
	store_key_init(k, LEDGER_KEY_RUN);
	store_key_str(k, run);
}

/* This process's hold of b's run, until now + the lease, written in b's
 * transaction. */
static void
ledger_run_hold(struct ledger_batch *b)
{
	struct ledger_field f[] = {
		LEDGER_INT("v", LEDGER_RECORD_VERSION),
		LEDGER_INT("pid", proc_pid()),
		LEDGER_INT("pid_start", (int64_t)proc_start()),
		LEDGER_STR("host", ""),
		LEDGER_INT("until", (int64_t)time(NULL) + LEDGER_RUN_LEASE_S),
	};
	char host[LEDGER_HOST_MAX];
	struct store_key k;

	ledger_proc_host(host);
	f[3].s = host;
	ledger_run_key(&k, b->run);
	ledger_put_fields(&b->t, STORE_DB_RECON, &k, f,
	    sizeof(f) / sizeof(f[0]), NULL);
}

int
ledger_batch_begin(struct ledger_batch *b, struct store *s)
{
	int rc;

	memset(b, 0, sizeof(*b));
	b->s = s;
	if ((rc = store_begin(s, 1, &b->t)) == PH_OK)
		b->open = 1;
	return rc;
}

int
ledger_batch_flush(struct ledger_batch *b)
{
	int rc;

	if (b->open && b->run[0] != '\0')
		ledger_run_hold(b);
	if (b->open && (rc = store_commit(&b->t)) != PH_OK) {
		b->open = 0;
		ledger_batch_told(b, 0);
		return rc;
	}
	ledger_batch_told(b, 1);
	b->open = 0;
	b->n = 0;
	if ((rc = store_begin(b->s, 1, &b->t)) == PH_OK)
		b->open = 1;
	return rc;
}

int
ledger_batch_end(struct ledger_batch *b)
{
	struct store_key k;
	int rc = PH_OK;

	if (b->open && b->run[0] != '\0') {
		ledger_run_key(&k, b->run);
		store_del(&b->t, STORE_DB_RECON, &k);
		b->run[0] = '\0';
	}
	if (b->open)
		rc = store_commit(&b->t);
	b->open = 0;
	ledger_batch_told(b, rc == PH_OK);
	return rc;
}

void
ledger_batch_abort(struct ledger_batch *b)
{
	if (b->open)
		store_abort(&b->t);
	b->open = 0;
	ledger_batch_told(b, 0);
}

/* Counts a row; commits every LEDGER_BATCH_ROWS so writers elsewhere wait
 * no longer than that. */
static void
ledger_batch_row(struct ledger_batch *b)
{
	/* Never under an open cursor: ledger_batch_payments flushes. */
	if (++b->n >= LEDGER_BATCH_ROWS && !b->scanning)
		ledger_batch_flush(b);
}

/* Keeps f, which paid an order, to be told at the commit; -1 without
 * room. */
static int
ledger_batch_keep(struct ledger_batch *b, const struct ledger_fact *f)
{
	struct ledger_paid_kept *p;
	size_t cap;

	if (b->npaid == b->cappaid) {
		cap = b->cappaid > 0 ? 2 * b->cappaid : 64;
		if ((p = realloc(b->paid, cap * sizeof(*p))) == NULL)
			return -1;
		b->paid = p;
		b->cappaid = cap;
	}
	ledger_paid_keep(&b->paid[b->npaid++], f);
	return 0;
}

int
ledger_batch_apply(struct ledger_batch *b, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (!b->open)
		return ph_fail(diag, PH_E_STORE, "database: the batch's "
		    "transaction is not open");
	if ((rc = ledger_apply_txn(&b->t, f, r, diag)) != PH_OK) {
		if (b->t.err == PH_OK)
			b->t.err = rc;
		return ledger_store_fail(diag, rc);
	}
	if (r->event == LEDGER_EV_ORDER_PAID && ledger_batch_keep(b, f) != 0)
		ledger_applied(f, r);	/* no room to wait: told now */
	ledger_batch_row(b);
	return PH_OK;
}

/* The record under k in db, read in the batch's transaction: PH_OK,
 * PH_E_NOTFOUND (also for a key too long to have been stored), or the
 * store's error; *out NULL unless PH_OK. */
static int
ledger_batch_get(struct ledger_batch *b, enum store_db db,
    const struct store_key *k, json_t **out)
{
	*out = NULL;
	if (!b->open)
		return PH_E_STORE;
	if (k->err)
		return PH_E_NOTFOUND;
	return ledger_get(&b->t, db, k, out);
}

int
ledger_batch_payment(struct ledger_batch *b, const char *profile,
    const char *txn_id, json_t **pay)
{
	struct store_key k;

	ledger_key_pair(&k, STORE_KEY_PAYMENT, profile, txn_id);
	return ledger_batch_get(b, STORE_DB_PAYMENTS, &k, pay);
}

void
ledger_batch_payment_order(struct ledger_batch *b, const char *profile,
    const char *txn_id, char *order_id, size_t cap)
{
	order_id[0] = '\0';
	if (b->open)
		ledger_payment_order(&b->t, profile, txn_id, order_id, cap);
}

int
ledger_batch_order(struct ledger_batch *b, const char *order_id,
    json_t **order)
{
	struct store_key k;

	ledger_key_order(&k, order_id);
	return ledger_batch_get(b, STORE_DB_ORDERS, &k, order);
}

int
ledger_batch_refund(struct ledger_batch *b, const char *refund_id,
    json_t **item)
{
	*item = NULL;
	if (!b->open)
		return PH_E_STORE;
	return ledger_refund_get_txn(&b->t, refund_id, item);
}

int
ledger_batch_extra_refund(struct ledger_batch *b, const char *profile,
    const char *order_id, const char *txn_id, json_t **item)
{
	json_t *order = NULL;
	int rc;

	*item = NULL;
	if ((rc = ledger_batch_order(b, order_id, &order)) != PH_OK)
		return rc;
	rc = ledger_refund_of_extra(&b->t, order, profile, txn_id, item);
	json_decref(order);
	return rc;
}

static void
ledger_key_recon(struct store_key *k, unsigned char klass, const char *run,
    const char *txn_id, const char *type)
{
	store_key_init(k, klass);
	store_key_str(k, run);
	store_key_str(k, txn_id);
	if (type != NULL)
		store_key_str(k, type);
}

/* Does rec (a run's hold) still stand for another process than this? */
static int
ledger_run_held(const json_t *rec, int64_t now)
{
	long pid = (long)json_integer_value(json_object_get(rec, "pid"));
	unsigned long long start = (unsigned long long)json_integer_value(
	    json_object_get(rec, "pid_start"));
	const char *host = ledger_str(rec, "host");
	char here[LEDGER_HOST_MAX];

	ledger_proc_host(here);
	if (here[0] != '\0' && strcmp(host, here) == 0) {
		if (pid == (long)proc_pid() && start == proc_start())
			return 0;
		return !ledger_proc_gone(pid, start, host);
	}
	return json_integer_value(json_object_get(rec, "until")) > now;
}

int
ledger_batch_clear(struct ledger_batch *b, const char *run,
    struct ph_diag *diag)
{
	struct store_key k;
	struct store_scan sc;
	json_t *rec = NULL;
	size_t n;
	int rc;

	if (!b->open)
		return ph_fail(diag, PH_E_STORE, "database: the batch's "
		    "transaction is not open");
	ledger_run_key(&k, run);
	if (k.err || strlen(run) >= sizeof(b->run))
		return ph_fail(diag, PH_E_FIELD, "run %s: name too long", run);
	rc = ledger_batch_get(b, STORE_DB_RECON, &k, &rec);
	if (rc != PH_OK && rc != PH_E_NOTFOUND)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	if (rc == PH_OK && ledger_run_held(rec, (int64_t)time(NULL))) {
		rc = ph_fail(diag, PH_E_CONFLICT, "another reconcile of %s is "
		    "running (pid %lld on %s): run it again when it has "
		    "ended", run, (long long)json_integer_value(
		    json_object_get(rec, "pid")), ledger_str(rec, "host"));
		json_decref(rec);
		return rc;
	}
	json_decref(rec);
	ph_strlcpy(b->run, run, sizeof(b->run));
	/* Held from now on: committed at once, where the other looks. */
	if ((rc = ledger_batch_flush(b)) != PH_OK)
		return ph_fail(diag, rc, "database: %s", ph_strerror(rc));
	store_key_init(&k, LEDGER_KEY_SEEN);
	store_key_str(&k, run);
	for (;;) {
		n = 0;
		store_scan_begin(&sc, &b->t, STORE_DB_RECON, &k);
		while (n < LEDGER_BATCH_ROWS && store_scan_next(&sc) &&
		    store_val_has_prefix(&sc.key, &k)) {
			store_scan_del(&sc);
			n++;
		}
		store_scan_end(&sc);
		if ((rc = b->t.err) == PH_OK && n < LEDGER_BATCH_ROWS)
			return PH_OK;
		if (rc != PH_OK || (rc = ledger_batch_flush(b)) != PH_OK)
			return ph_fail(diag, rc, "database: %s",
			    ph_strerror(rc));
	}
}

void
ledger_batch_mark(struct ledger_batch *b, const char *run, const char *txn_id)
{
	struct store_key k;

	if (!b->open)
		return;
	ledger_key_recon(&k, LEDGER_KEY_SEEN, run, txn_id, NULL);
	store_put(&b->t, STORE_DB_RECON, &k, "", 0);
	ledger_batch_row(b);
}

int
ledger_batch_seen(struct ledger_batch *b, const char *run, const char *txn_id)
{
	struct store_key k;
	struct store_val v;

	if (!b->open)
		return 0;
	ledger_key_recon(&k, LEDGER_KEY_SEEN, run, txn_id, NULL);
	return store_get(&b->t, STORE_DB_RECON, &k, &v) == PH_OK;
}

int
ledger_batch_raised(struct ledger_batch *b, const char *run,
    const char *txn_id, enum ledger_event type)
{
	struct store_key k;
	struct store_val v;

	if (!b->open)
		return 0;
	ledger_key_recon(&k, LEDGER_KEY_ALARM, run, txn_id,
	    ledger_event_name(type));
	return !k.err && store_get(&b->t, STORE_DB_RECON, &k, &v) == PH_OK;
}

void
ledger_batch_alarm_new(struct ledger_batch *b, const char *run,
    enum ledger_event type, const char *profile, const char *provider, const struct ph_event *ev,
    json_t *extra, int64_t now)
{
	struct ledger_fact f;
	struct store_key k;
	struct store_val v;

	if (!b->open) {
		json_decref(extra);
		return;
	}
	/* Once per run and fact: a payment by its transaction, a refund by
	 * its own id (a payment may have several refunds).  A refund's
	 * alarm recorded by an earlier build under its payment counts. */
	ledger_key_recon(&k, LEDGER_KEY_ALARM, run, ev->txn_id,
	    ledger_event_name(type));
	if (ledger_kind_is_refund(ev->kind) &&
	    store_get(&b->t, STORE_DB_RECON, &k, &v) != PH_OK)
		ledger_key_recon(&k, LEDGER_KEY_ALARM, run,
		    ev->refund_id[0] != '\0' ? ev->refund_id :
		    ev->merchant_refund_id, ledger_event_name(type));
	if (store_get(&b->t, STORE_DB_RECON, &k, &v) == PH_OK) {
		json_decref(extra);
		return;		/* raised by an earlier run */
	}
	store_put(&b->t, STORE_DB_RECON, &k, "", 0);
	f.profile = profile;
	f.provider = provider;
	f.source = "statement";
	f.ev = ev;
	f.now = now;
	log_warn("reconcile %s: %s: order %s, txn %s, %lld %s", run,
	    ledger_event_name(type),
	    ev->order_id, ev->txn_id, (long long)ev->amount, ev->currency);
	ledger_emit_new(&b->t, &f, type, ev->order_id, extra);
	ledger_batch_row(b);
}

int
ledger_batch_payments(struct ledger_batch *b, const char *profile,
    int (*fn)(struct ledger_batch *b, const json_t *pay, void *arg),
    void *arg)
{
	struct store_key k, resume;
	struct store_scan sc;
	size_t n;
	json_t *p;
	int rc, stop = 0, first = 1;

	store_key_init(&k, STORE_KEY_PAYMENT);
	store_key_str(&k, profile);
	resume = k;
	while (!stop) {
		if (!b->open)
			return PH_E_STORE;
		store_scan_begin(&sc, &b->t, STORE_DB_PAYMENTS, &resume);
		b->scanning = 1;
		n = 0;
		while (!stop && n < LEDGER_BATCH_ROWS && store_scan_next(&sc) &&
		    store_val_has_prefix(&sc.key, &k)) {
			/* Resuming: skip the record the last chunk ended on. */
			if (!first && sc.key.len == resume.len &&
			    memcmp(sc.key.data, resume.b, resume.len) == 0)
				continue;
			first = 0;
			store_key_from_val(&resume, &sc.key);
			n++;
			if ((p = ledger_load(&sc.val)) == NULL)
				continue;
			stop = fn(b, p, arg);
			json_decref(p);
		}
		b->scanning = 0;
		store_scan_end(&sc);
		if (b->t.err != PH_OK)
			return b->t.err;
		if (n < LEDGER_BATCH_ROWS || stop)
			break;
		if ((rc = ledger_batch_flush(b)) != PH_OK)
			return rc;
	}
	return b->t.err;
}
