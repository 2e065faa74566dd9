/*
 * Idempotency keys of merchant calls.  A key is claimed before the call
 * runs (a record in state "running" with the claimant's token and a lease),
 * and its answer is kept either with the call's effect, in the very
 * transaction that makes it (ledger_idem_keep), or, for a call that made
 * no effect, afterwards (ledger_idem_end).  A claim whose lease ran out
 * belongs to a call that died: the next request with the key takes it
 * over and, since no answer was kept, no effect was made either.
 *
 * Record: key 'K' + the key; {"v", "state": "running"|"done", "fp",
 * "token", "lease_until", "status", "body", "created_at", "expires_at"}.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ops/log.h"
#include "ops/proc.h"

#define LEDGER_KEY_IDEM 'K'
#define LEDGER_IDEM_BODY_MAX (1u << 20)

static void
ledger_key_idem(struct store_key *k, const char *key)
{
	store_key_init(k, LEDGER_KEY_IDEM);
	store_key_str(k, key);
}

/*
 * When the key's record may be forgotten: idempotency_ttl_s after the call
 * began, but never while the call may still run (its lease), so that a
 * TTL shorter than the slowest call neither lets a retry take the key over
 * from a call that runs nor forgets its answer as it is given.
 */
static int64_t
ledger_idem_expiry(const struct ledger_idem *idem)
{
	return idem->now + (idem->ttl_s > idem->lease_s ? idem->ttl_s :
	    idem->lease_s);
}

/* A claim token: 16 random bytes in hex. */
static int
ledger_idem_token(char out[33])
{
	unsigned char r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return PH_E_IO;
	ph_hex_lower(r, sizeof(r), out);
	return PH_OK;
}

void
ledger_proc_host(char host[LEDGER_HOST_MAX])
{
	proc_where(host, LEDGER_HOST_MAX);
}

int
ledger_proc_gone(long pid, unsigned long long start, const char *host)
{
	char here[LEDGER_HOST_MAX];

	ledger_proc_host(here);
	return pid > 0 && host != NULL && here[0] != '\0' &&
	    strcmp(host, here) == 0 && !proc_alive((pid_t)pid, start);
}

/*
 * Is the claim's call still running?  Until its lease ends, unless it
 * ran on this host and its process is gone.
 */
static int
ledger_idem_alive(const json_t *rec, int64_t now)
{
	if (json_integer_value(json_object_get(rec, "lease_until")) <= now)
		return 0;
	return !ledger_proc_gone((long)json_integer_value(json_object_get(rec,
	    "pid")), (unsigned long long)json_integer_value(json_object_get(rec,
	    "pid_start")), ledger_str(rec, "host"));
}

static void
ledger_idem_set_answer(struct ledger_idem *idem, int status, const char *body,
    size_t len)
{
	ph_buf_free(&idem->body);
	ph_buf_init(&idem->body, LEDGER_IDEM_BODY_MAX);
	ph_buf_append(&idem->body, body, len);
	idem->status = status;
}

int
ledger_idem_begin(struct store *s, struct ledger_idem *idem,
    enum ledger_idem_state *state)
{
	struct store_txn t;
	struct store_key k;
	json_t *rec = NULL;
	const char *st;
	char host[LEDGER_HOST_MAX];
	int rc;

	*state = LEDGER_IDEM_RUN;
	idem->kept = 0;
	ph_buf_init(&idem->body, LEDGER_IDEM_BODY_MAX);
	if ((rc = ledger_idem_token(idem->token)) != PH_OK)
		return rc;
	ledger_key_idem(&k, idem->key);
	if (k.err)
		return PH_E_FIELD;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	rc = ledger_get(&t, STORE_DB_IDEM, &k, &rec);
	if (rc != PH_OK && rc != PH_E_NOTFOUND) {
		store_abort(&t);
		return rc;
	}
	/* A claim whose call still runs is there even past its expiry (one
	 * an older payhook wrote with the TTL alone). */
	if (rc == PH_OK && (json_integer_value(json_object_get(rec,
	    "expires_at")) > idem->now || (strcmp(ledger_str(rec, "state"),
	    "running") == 0 && ledger_idem_alive(rec, idem->now)))) {
		st = ledger_str(rec, "state");
		if (strcmp(ledger_str(rec, "fp"), idem->fp) != 0)
			*state = LEDGER_IDEM_REUSED;
		else if (strcmp(st, "done") == 0) {
			const char *body = ledger_str(rec, "body");

			*state = LEDGER_IDEM_REPLAY;
			ledger_idem_set_answer(idem, (int)json_integer_value(
			    json_object_get(rec, "status")), body,
			    strlen(body));
		} else if (ledger_idem_alive(rec, idem->now))
			*state = LEDGER_IDEM_BUSY;
		/* else: a claim of a call that died; take it over. */
		if (*state != LEDGER_IDEM_RUN) {
			store_abort(&t);
			json_decref(rec);
			/* What the answer says must be on disk before it is
			 * given again. */
			return *state == LEDGER_IDEM_REPLAY ?
			    store_settle(&t) : PH_OK;
		}
	}
	json_decref(rec);
	ledger_proc_host(host);
	rec = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:I}",
	    "v", LEDGER_RECORD_VERSION,
	    "state", "running",
	    "fp", idem->fp,
	    "token", idem->token,
	    "lease_until", (json_int_t)(idem->now + idem->lease_s),
	    "pid", (json_int_t)getpid(),
	    "pid_start", (json_int_t)proc_start(),
	    "host", host,
	    "created_at", (json_int_t)idem->now,
	    "expires_at", (json_int_t)ledger_idem_expiry(idem));
	ledger_put(&t, STORE_DB_IDEM, &k, rec);
	json_decref(rec);
	return store_commit(&t);
}

/* Puts the answer as the key's record, if the claim is still ours. */
static void
ledger_idem_put(struct store_txn *t, struct ledger_idem *idem, int status,
    const char *body)
{
	struct store_key k;
	json_t *rec = NULL;
	int rc;

	ledger_key_idem(&k, idem->key);
	rc = ledger_get(t, STORE_DB_IDEM, &k, &rec);
	if (rc == PH_OK && strcmp(ledger_str(rec, "token"), idem->token) != 0) {
		/* Taken over by another call: the effect must not be made
		 * twice, so this transaction fails. */
		log_warn("Idempotency-Key %s: the claim was taken over; the "
		    "call is not applied", idem->key);
		t->err = PH_E_CONFLICT;
	}
	json_decref(rec);
	if (rc != PH_OK && rc != PH_E_NOTFOUND)
		return;
	rec = json_pack("{s:i, s:s, s:s, s:s, s:i, s:s, s:I, s:I}",
	    "v", LEDGER_RECORD_VERSION,
	    "state", "done",
	    "fp", idem->fp,
	    "token", idem->token,
	    "status", status,
	    "body", body,
	    "created_at", (json_int_t)idem->now,
	    "expires_at", (json_int_t)ledger_idem_expiry(idem));
	ledger_put(t, STORE_DB_IDEM, &k, rec);
	json_decref(rec);
}

void
ledger_idem_keep(struct store_txn *t, struct ledger_idem *idem,
    int rc, int created, enum ledger_refusal why, const char *message,
    const json_t *rec)
{
	struct ledger_reply r;
	struct ph_buf body;
	int status;

	if (idem == NULL || idem->answer == NULL || t->err != PH_OK ||
	    (rc != PH_OK && ledger_refusal_passes(why)))
		return;
	r.rc = rc;
	r.created = created;
	r.why = why;
	r.message = message;
	r.rec = rec;
	ph_buf_init(&body, LEDGER_IDEM_BODY_MAX);
	status = idem->answer(idem->arg, &r, &body);
	if (body.err) {
		t->err = PH_E_NOMEM;
		ph_buf_free(&body);
		return;
	}
	ledger_idem_put(t, idem, status, body.data != NULL ? body.data : "");
	if (t->err == PH_OK) {
		ledger_idem_set_answer(idem, status, body.data != NULL ?
		    body.data : "", body.len);
		idem->kept = 1;
	}
	ph_buf_free(&body);
}

int
ledger_refusal_passes(enum ledger_refusal why)
{
	return why == LEDGER_REFUSAL_HELD;
}

int
ledger_idem_release(struct store *s, struct ledger_idem *idem)
{
	struct store_txn t;
	struct store_key k;
	json_t *rec = NULL;
	int rc;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	ledger_key_idem(&k, idem->key);
	/* Only a claim that is still this call's. */
	if (ledger_get(&t, STORE_DB_IDEM, &k, &rec) == PH_OK &&
	    strcmp(ledger_str(rec, "token"), idem->token) == 0 &&
	    strcmp(ledger_str(rec, "state"), "running") == 0)
		store_del(&t, STORE_DB_IDEM, &k);
	json_decref(rec);
	return store_commit(&t);
}

int
ledger_idem_end(struct store *s, struct ledger_idem *idem, int status,
    const char *body, size_t len)
{
	struct store_txn t;
	char *copy;
	int rc;

	if (idem->kept)
		return PH_OK;
	if (status >= 500)
		return ledger_idem_release(s, idem);
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	if ((copy = malloc(len + 1)) == NULL) {
		store_abort(&t);
		return PH_E_NOMEM;
	}
	memcpy(copy, body, len);
	copy[len] = '\0';
	ledger_idem_put(&t, idem, status, copy);
	free(copy);
	if ((rc = store_commit(&t)) == PH_OK)
		idem->kept = 1;
	return rc;
}

void
ledger_idem_free(struct ledger_idem *idem)
{
	ph_buf_free(&idem->body);
}

/* When an idempotency record may go: not while its call may run. */
static int
ledger_idem_expires(const struct store_val *v, int64_t *at)
{
	json_t *j;
	int64_t lease;

	if ((j = ledger_load(v)) == NULL)
		return -1;
	*at = json_integer_value(json_object_get(j, "expires_at"));
	lease = json_integer_value(json_object_get(j, "lease_until"));
	if (strcmp(ledger_str(j, "state"), "running") == 0 && lease > *at)
		*at = lease;
	json_decref(j);
	return 0;
}

int
ledger_prune_idem(struct store *s, int64_t now, size_t *removed)
{
	return ledger_prune_before(s, STORE_DB_IDEM, ledger_idem_expires,
	    now + 1, removed);
}
