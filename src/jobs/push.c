/*
 * Event push.  Per endpoint, the store keeps the next event to deliver
 * and when to try again after a failure; an event is delivered before any
 * later one, so the merchant sees each order's events in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <payhook/sdk.h>

#include "jobs/http.h"
#include "ledger/ledger.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "ledger/order.h"
#include "jobs/push.h"

#define PUSH_BATCH 50
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

/* The endpoint's state: next seq, failures in a row, retry time. */
static int
push_state(struct store *s, const char *name, uint64_t *next,
    uint64_t *failures, int64_t *retry_at)
{
	struct store_txn t;
	struct store_key k;
	struct store_val v;
	json_t *j;
	int rc;

	*next = 1;
	*failures = 0;
	*retry_at = 0;
	push_key_state(&k, name);
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	if (store_get(&t, STORE_DB_PUSH, &k, &v) == PH_OK &&
	    (j = json_loadb(v.data, v.len, 0, NULL)) != NULL) {
		*next = (uint64_t)json_integer_value(json_object_get(j,
		    "next"));
		*failures = (uint64_t)json_integer_value(json_object_get(j,
		    "failures"));
		*retry_at = json_integer_value(json_object_get(j,
		    "retry_at"));
		json_decref(j);
	}
	store_abort(&t);
	return PH_OK;
}

/* The endpoint's state in t: where it goes on, failures in a row, when
 * it is tried again. */
static void
push_state_put(struct store_txn *t, const char *name, uint64_t next,
    uint64_t failures, int64_t retry_at)
{
	struct store_key k;
	json_t *j;
	char *text;

	push_key_state(&k, name);
	j = json_pack("{s:i, s:I, s:I, s:I}", "v", 1, "next", (json_int_t)next,
	    "failures", (json_int_t)failures, "retry_at",
	    (json_int_t)retry_at);
	if (j != NULL && (text = json_dumps(j, JSON_COMPACT)) != NULL) {
		store_put(t, STORE_DB_PUSH, &k, text, strlen(text));
		free(text);
	} else if (t->err == PH_OK)
		t->err = PH_E_NOMEM;
	json_decref(j);
}

/* Records one attempt and the endpoint's new state in one transaction. */
static int
push_record(struct store *s, const char *name, uint64_t seq, int status,
    const char *error, int64_t now, uint64_t next, uint64_t failures,
    int64_t retry_at)
{
	struct store_txn t;
	struct store_key k;
	struct timespec ts;
	json_t *j;
	char *text;
	int rc;

	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	push_state_put(&t, name, next, failures, retry_at);
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
	    (json_int_t)seq, "at", (json_int_t)now, "status", status,
	    "error", error);
	if (j != NULL && (text = json_dumps(j, JSON_COMPACT)) != NULL) {
		store_put(&t, STORE_DB_PUSH, &k, text, strlen(text));
		free(text);
	}
	json_decref(j);
	return store_commit(&t);
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
	http_run(c, &call, 1, 1);
	*status = call.status;
	if (call.err != PH_OK) {
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
    struct push_stats *st)
{
	uint64_t next, failures, last;
	int64_t retry_at;
	json_t *events, *ev;
	size_t i, j;
	char err[300];
	int rc, status;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < c->npushes; i++) {
		const struct conf_push *pu = &c->pushes[i];

		if (pu->name == NULL || pu->secret == NULL)
			continue;
		if ((rc = push_state(s, pu->name, &next, &failures,
		    &retry_at)) != PH_OK)
			return rc;
		if (retry_at > now)
			continue;	/* backing off */
		if (next == 0)
			next = 1;
		if ((rc = ledger_events(s, next - 1, PUSH_BATCH, &events,
		    &last)) != PH_OK)
			return rc;
		json_array_foreach(events, j, ev) {
			uint64_t seq = (uint64_t)json_integer_value(
			    json_object_get(ev, "seq"));

			rc = push_send(c, pu, ev, now, &status, err,
			    sizeof(err));
			if (rc == PH_OK) {
				st->delivered++;
				next = seq + 1;
				failures = 0;
				push_record(s, pu->name, seq, status, "", now,
				    next, 0, 0);
				metrics_add("payhook_push_total",
				    "result=delivered", 1);
				continue;
			}
			st->failed++;
			failures++;
			retry_at = now + push_backoff(failures);
			push_record(s, pu->name, seq, status, err, now, next,
			    failures, retry_at);
			metrics_add("payhook_push_total", "result=failed", 1);
			log_warn("push %s: event %llu not delivered (%s); "
			    "trying again in %llds", pu->name,
			    (unsigned long long)seq, err,
			    (long long)(retry_at - now));
			break;	/* in order: nothing later goes first */
		}
		json_decref(events);
	}
	return PH_OK;
}

int
push_resend(struct store *s, const char *name, uint64_t from)
{
	struct store_txn t;
	int rc;

	/* Not an attempt: the delivery log shows attempts only. */
	if ((rc = store_begin(s, 1, &t)) != PH_OK)
		return rc;
	push_state_put(&t, name, from > 0 ? from : 1, 0, 0);
	return store_commit(&t);
}

int
push_log(struct store *s, const char *name, size_t limit, json_t **out)
{
	struct store_txn t;
	struct store_key k;
	struct store_scan sc;
	json_t *arr = json_array(), *j;
	int rc;

	*out = arr;
	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	store_key_init(&k, PUSH_LOG_CLASS);
	if (name != NULL)
		store_key_str(&k, name);
	store_scan_begin(&sc, &t, STORE_DB_PUSH, &k);
	while (store_scan_next(&sc) && store_val_has_prefix(&sc.key, &k)) {
		if ((j = json_loadb(sc.val.data, sc.val.len, 0, NULL)) == NULL)
			continue;
		json_array_append_new(arr, j);
		if (json_array_size(arr) > limit)
			json_array_remove(arr, 0);
	}
	store_scan_end(&sc);
	rc = t.err;
	store_abort(&t);
	return rc;
}
