/*
 * Event push.  Per endpoint, the store keeps the next event to deliver
 * and when to try again after a failure; an event is delivered before any
 * later one, so the merchant sees each order's events in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "jobs/http.h"
#include "ledger/ledger.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "ops/proc.h"
#include "ledger/order.h"
#include "jobs/push.h"

#define PUSH_BATCH 50
/* The seconds an endpoint is given in a pass before the pass goes on: a
 * slow receiver takes its events over several passes, and the sweeper's
 * compensation, in the same pass, is not held up behind it. */
#define PUSH_PASS_S 5
/* An answer's body is never read: a 2xx is delivered, however long its
 * body, which is not kept past this. */
#define PUSH_ANSWER_MAX (64 * 1024)
#define PUSH_LOG_CLASS 'L'
#define PUSH_STATE_CLASS 'C'

/* Backoff after n failures in a row: 5 s doubling to an hour. */
static int64_t
push_backoff(uint64_t n)
{
	int64_t d = 5;

	while (n-- > 1 && d < 3600)
		d *= 2;
	return d > 3600 ? 3600 : d;
}

static void
push_key_state(struct store_key *k, const char *name)
{
	store_key_init(k, PUSH_STATE_CLASS);
	store_key_str(k, name);
}

/*
 * An endpoint's state: the next event to deliver, failures in a row, when
 * to try again, and which pusher holds it until when.  Two sweepers (of
 * one host or several) would otherwise both send from the same next
 * event: every event twice, and out of order.  A holder killed on this
 * host is taken over at once.
 */
struct push_state {
	uint64_t next;
	uint64_t failures;
	int64_t retry_at;
	int64_t lease_until;
	char owner[33];
	long pid;			/* the holder's process, its start */
	unsigned long long start;	/* and host: one killed is taken */
	char host[LEDGER_HOST_MAX];	/* over at once */
};

/* A text member of j into out; "" when it is not text. */
static void
push_text(const json_t *j, const char *key, char *out, size_t cap)
{
	const char *v = json_string_value(json_object_get(j, key));

	ph_strlcpy(out, v != NULL ? v : "", cap);
}

static void
push_state_get(struct store_txn *t, const char *name, struct push_state *ps)
{
	struct store_key k;
	struct store_val v;
	json_t *j;

	memset(ps, 0, sizeof(*ps));
	ps->next = 1;
	push_key_state(&k, name);
	if (store_get(t, STORE_DB_PUSH, &k, &v) != PH_OK ||
	    (j = json_loadb(v.data, v.len, 0, NULL)) == NULL)
		return;
	ps->next = (uint64_t)json_integer_value(json_object_get(j, "next"));
	ps->failures = (uint64_t)json_integer_value(json_object_get(j,
	    "failures"));
	ps->retry_at = json_integer_value(json_object_get(j, "retry_at"));
	ps->lease_until = json_integer_value(json_object_get(j,
	    "lease_until"));
	push_text(j, "lease_owner", ps->owner, sizeof(ps->owner));
	ps->pid = (long)json_integer_value(json_object_get(j, "lease_pid"));
	ps->start = (unsigned long long)json_integer_value(json_object_get(j,
	    "lease_start"));
	push_text(j, "lease_host", ps->host, sizeof(ps->host));
	if (ps->next == 0)
		ps->next = 1;
	json_decref(j);
}

static void
push_state_put(struct store_txn *t, const char *name,
    const struct push_state *ps)
{
	struct store_key k;
	json_t *j;
	char *text;

	push_key_state(&k, name);
	j = json_pack("{s:i, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:s}", "v", 1,
	    "next", (json_int_t)ps->next, "failures", (json_int_t)ps->failures,
	    "retry_at", (json_int_t)ps->retry_at, "lease_until",
	    (json_int_t)ps->lease_until, "lease_owner", ps->owner, "lease_pid",
	    (json_int_t)ps->pid, "lease_start", (json_int_t)ps->start,
	    "lease_host", ps->host);
	if (j != NULL && (text = json_dumps(j, JSON_COMPACT)) != NULL) {
		store_put(t, STORE_DB_PUSH, &k, text, strlen(text));
		free(text);
	} else if (t->err == PH_OK)
		t->err = PH_E_NOMEM;
	json_decref(j);
}

/*
 * Takes endpoint name for this pass (token) until now + lease_s and reads
 * its state into ps; PH_E_CONFLICT while another pusher holds it,
 * PH_E_UNAVAILABLE while it is backing off after a failure (an event
 * waits).
 */
static int
push_take(const struct conf *c, struct store *s, const char *name,
    const char *token, int64_t now, struct push_state *ps)
{
	struct store_txn t;
	int rc;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	push_state_get(&t, name, ps);
	if (ps->lease_until > now && strcmp(ps->owner, token) != 0 &&
	    !ledger_proc_gone(ps->pid, ps->start, ps->host)) {
		store_abort(&t);
		return PH_E_CONFLICT;
	}
	if (ps->retry_at > now) {
		store_abort(&t);
		return PH_E_UNAVAILABLE;
	}
	ph_strlcpy(ps->owner, token, sizeof(ps->owner));
	ps->lease_until = now + (int64_t)c->lease_s;
	ps->pid = (long)getpid();
	ps->start = proc_start();
	ledger_proc_host(ps->host);
	push_state_put(&t, name, ps);
	return store_commit(&t);
}

/*
 * Records one attempt made at `at` and, while this pass still holds the
 * endpoint, its new state (ps, the lease renewed from now: the attempt
 * may have taken up to http_timeout_s), in one transaction.  PH_E_CONFLICT
 * when the endpoint was taken from it (its lease ran out and another
 * pusher took it, or `events resend` moved it): the attempt is logged,
 * the state left to the other, and the pass goes no further there.
 */
static int
push_record(const struct conf *c, struct store *s, const char *name,
    uint64_t seq, int status, const char *error, int64_t at,
    struct push_state *ps)
{
	struct push_state cur;
	struct store_txn t;
	struct store_key k;
	struct timespec ts;
	json_t *j;
	char *text;
	int rc, held;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	push_state_get(&t, name, &cur);
	held = strcmp(cur.owner, ps->owner) == 0;
	if (held) {
		ps->lease_until = (int64_t)time(NULL) + (int64_t)c->lease_s;
		push_state_put(&t, name, ps);
	}
	/* The log: class, endpoint, the microsecond of the attempt and the
	 * event, so that two attempts of one event within a second are two
	 * lines (the logs of older builds have now * 10^6 + seq there: they
	 * sort among these). */
	clock_gettime(CLOCK_REALTIME, &ts);
	store_key_init(&k, PUSH_LOG_CLASS);
	store_key_str(&k, name);
	store_key_u64(&k, (uint64_t)ts.tv_sec * 1000000ULL +
	    (uint64_t)ts.tv_nsec / 1000);
	store_key_u64(&k, seq);
	j = json_pack("{s:s, s:I, s:I, s:i, s:s}", "endpoint", name, "seq",
	    (json_int_t)seq, "at", (json_int_t)at, "status", status,
	    "error", error);
	if (j != NULL && (text = json_dumps(j, JSON_COMPACT)) != NULL) {
		store_put(&t, STORE_DB_PUSH, &k, text, strlen(text));
		free(text);
	}
	json_decref(j);
	if ((rc = store_commit(&t)) != PH_OK)
		return rc;
	return held ? PH_OK : PH_E_CONFLICT;
}

/* Lets go of the endpoint at the end of a pass, if it is still this
 * pass's. */
static void
push_release(struct store *s, const char *name, struct push_state *ps)
{
	struct push_state cur;
	struct store_txn t;

	if (store_begin(s, 1, &t) != PH_OK)
		return;
	push_state_get(&t, name, &cur);
	if (strcmp(cur.owner, ps->owner) != 0) {
		store_abort(&t);
		return;
	}
	cur.lease_until = 0;
	cur.owner[0] = '\0';
	cur.pid = 0;
	cur.start = 0;
	cur.host[0] = '\0';
	push_state_put(&t, name, &cur);
	(void)store_commit(&t);
}

/* Sends one event; PH_OK on a 2xx. */
static int
push_send(const struct conf *c, const struct conf_push *pu, const json_t *ev,
    int64_t now, int *status, char *err, size_t errlen)
{
	struct ph_http_request *rq;
	struct http_call call;
	unsigned char mac[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1], *body;
	struct ph_buf signed_text;
	json_t *view;
	int rc;

	*status = 0;
	if ((view = order_event_to_api(ev)) == NULL ||
	    (body = json_dumps(view, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	    NULL) {
		json_decref(view);
		snprintf(err, errlen, "out of memory");
		return PH_E_NOMEM;
	}
	json_decref(view);
	if (strlen(body) > PH_HTTP_BODY_MAX ||
	    (rq = calloc(1, sizeof(*rq))) == NULL) {
		free(body);
		snprintf(err, errlen, "event too large");
		return PH_E_TOOBIG;
	}
	ph_buf_init(&signed_text, PH_HTTP_BODY_MAX + 64);
	ph_buf_printf(&signed_text, "%lld.%s", (long long)now, body);
	ph_hmac_sha256(pu->secret, pu->secret_len, signed_text.data,
	    signed_text.len, mac);
	ph_buf_free(&signed_text);
	ph_hex_lower(mac, sizeof(mac), hex);
	snprintf(rq->method, sizeof(rq->method), "POST");
	snprintf(rq->content_type, sizeof(rq->content_type),
	    "application/json");
	ph_strlcpy(rq->headers[0].name, pu->signature_header,
	    sizeof(rq->headers[0].name));
	snprintf(rq->headers[0].value, sizeof(rq->headers[0].value),
	    "t=%lld,v1=%s", (long long)now, hex);
	snprintf(rq->headers[1].name, sizeof(rq->headers[1].name),
	    "X-Payhook-Event-Seq");
	snprintf(rq->headers[1].value, sizeof(rq->headers[1].value), "%lld",
	    (long long)json_integer_value(json_object_get(ev, "seq")));
	/* The id, unlike the seq, is never given twice, even after a
	 * restore: what a receiver deduplicates by. */
	snprintf(rq->headers[2].name, sizeof(rq->headers[2].name),
	    "X-Payhook-Event-Id");
	ph_strlcpy(rq->headers[2].value, json_string_value(json_object_get(ev,
	    "id")), sizeof(rq->headers[2].value));
	rq->nheaders = 3;
	rq->body_len = strlen(body);
	memcpy(rq->body, body, rq->body_len);
	free(body);
	memset(&call, 0, sizeof(call));
	call.req = rq;
	call.url = pu->url;
	call.allow_insecure_http = pu->allow_insecure_http;
	call.max_body = PUSH_ANSWER_MAX;
	http_run(c, &call, 1, 1);
	*status = call.status;
	/* The status is the answer: a 2xx is delivered whatever became of
	 * its body (cut off at the bound, the connection closed or stalled
	 * in it), or the receiver would get again what it took. */
	if (call.status >= 200 && call.status <= 299) {
		err[0] = '\0';
		rc = PH_OK;
	} else if (call.err != PH_OK) {
		ph_strlcpy(err, call.errmsg, errlen);
		rc = PH_E_UNAVAILABLE;
	} else if (call.status < 200 || call.status > 299) {
		snprintf(err, errlen, "answered HTTP %d", call.status);
		rc = PH_E_PROVIDER;
	} else {
		err[0] = '\0';
		rc = PH_OK;
	}
	http_call_free(&call);
	free(rq);
	return rc;
}

int
push_run(const struct conf *c, struct store *s, int64_t now,
    const char *token, struct push_stats *st)
{
	struct push_state ps;
	uint64_t last;
	int64_t at, began;
	json_t *events, *ev;
	size_t i, j;
	char err[300];
	int rc, status;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < c->npushes; i++) {
		const struct conf_push *pu = &c->pushes[i];

		if (pu->name == NULL || pu->secret == NULL)
			continue;
		/* The time now, not the pass's: an earlier endpoint may have
		 * taken a while, and a lease from then would be short. */
		rc = push_take(c, s, pu->name, token, (int64_t)time(NULL) >
		    now ? (int64_t)time(NULL) : now, &ps);
		if (rc == PH_E_CONFLICT)
			continue;	/* another pusher's */
		if (rc == PH_E_UNAVAILABLE) {
			st->waiting++;	/* backing off: not delivered */
			continue;
		}
		if (rc != PH_OK)
			return rc;
		/* One more than a pass sends: whether more are waiting. */
		if ((rc = ledger_events(s, ps.next - 1, PUSH_BATCH + 1, &events,
		    &last)) != PH_OK) {
			push_release(s, pu->name, &ps);
			return rc;
		}
		began = (int64_t)time(NULL);
		json_array_foreach(events, j, ev) {
			uint64_t seq = (uint64_t)json_integer_value(
			    json_object_get(ev, "seq"));

			/* Signed with the time it is sent: a receiver
			 * checks t against its clock. */
			at = (int64_t)time(NULL);
			if (j == PUSH_BATCH || at - began >= PUSH_PASS_S) {
				/* The next pass goes on; this one did not
				 * deliver everything due. */
				st->waiting++;
				break;
			}
			rc = push_send(c, pu, ev, at, &status, err,
			    sizeof(err));
			if (rc == PH_OK) {
				st->delivered++;
				ps.next = seq + 1;
				ps.failures = 0;
				ps.retry_at = 0;
				metrics_add("payhook_push_total",
				    "result=delivered", 1);
				if (push_record(c, s, pu->name, seq, status,
				    "", at, &ps) != PH_OK)
					break;
				continue;
			}
			st->failed++;
			ps.failures++;
			ps.retry_at = at + push_backoff(ps.failures);
			metrics_add("payhook_push_total", "result=failed", 1);
			log_warn("push %s: event %llu not delivered (%s); "
			    "trying again in %llds", pu->name,
			    (unsigned long long)seq, err,
			    (long long)(ps.retry_at - at));
			(void)push_record(c, s, pu->name, seq, status, err, at,
			    &ps);
			break;	/* in order: nothing later goes first */
		}
		json_decref(events);
		push_release(s, pu->name, &ps);
	}
	return PH_OK;
}

int
push_resend(struct store *s, const char *name, uint64_t from,
    uint64_t *next)
{
	struct push_state ps;
	struct store_txn t;
	int rc;

	if (from == 0)
		from = 1;
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	push_state_get(&t, name, &ps);
	*next = ps.next;
	/* Again, never forward: events not yet delivered are not skipped. */
	if (from > ps.next) {
		store_abort(&t);
		return PH_E_CONFLICT;
	}
	/* Not an attempt: the delivery log shows attempts only.  A pass
	 * under way loses the endpoint and stops at its next event. */
	memset(&ps, 0, sizeof(ps));
	ps.next = from;
	push_state_put(&t, name, &ps);
	return store_commit(&t);
}

/* A log line's key: class, endpoint, microsecond, event. */
struct push_line {
	uint64_t us;
	uint64_t seq;
	json_t *j;
};

static int
push_line_cmp(const void *a, const void *b)
{
	const struct push_line *x = a, *y = b;

	if (x->us != y->us)
		return x->us < y->us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The microsecond and event of a log line's key (0s when it has none). */
static void
push_line_key(const struct store_val *k, struct push_line *l)
{
	struct store_key_reader r;
	char name[256];

	store_key_read(&r, k, 1);
	store_key_read_str(&r, name, sizeof(name));
	l->us = store_key_read_u64(&r);
	l->seq = store_key_read_u64(&r);
	if (r.bad)
		l->us = l->seq = 0;
}

int
push_log(struct store *s, const char *name, size_t limit, json_t **out)
{
	struct store_txn t;
	struct store_key k;
	struct store_scan sc;
	struct push_line *lines = NULL, *grown;
	size_t n = 0, cap = 0, i;
	json_t *arr = json_array(), *j;
	int rc;

	*out = arr;
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	store_key_init(&k, PUSH_LOG_CLASS);
	if (name != NULL)
		store_key_str(&k, name);
	/* Every endpoint's lines, then in the order they were made: the
	 * keys sort by endpoint first. */
	store_scan_begin(&sc, &t, STORE_DB_PUSH, &k);
	while (store_scan_next(&sc) && store_val_has_prefix(&sc.key, &k)) {
		if ((j = json_loadb(sc.val.data, sc.val.len, 0, NULL)) == NULL)
			continue;
		if (n == cap) {
			cap = cap > 0 ? cap * 2 : 256;
			if ((grown = realloc(lines, cap * sizeof(*lines))) ==
			    NULL) {
				json_decref(j);
				t.err = PH_E_NOMEM;
				break;
			}
			lines = grown;
		}
		push_line_key(&sc.key, &lines[n]);
		lines[n++].j = j;
	}
	store_scan_end(&sc);
	rc = t.err;
	store_abort(&t);
	if (n > 0)
		qsort(lines, n, sizeof(*lines), push_line_cmp);
	for (i = 0; i < n; i++) {
		if (rc == PH_OK && i + limit >= n)
			json_array_append(arr, lines[i].j);
		json_decref(lines[i].j);
	}
	free(lines);
	return rc;
}
