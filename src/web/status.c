/*
 * What operators and their monitoring read: /healthz (liveness), /readyz
 * (readiness) and /metrics (Prometheus text format).  No authentication:
 * nothing here is a secret or moves money, and no answer names a path.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "ops/text.h"
#include "jobs/certs.h"
#include "ledger/ledger.h"
#include "ledger/order.h"
#include "ops/metrics.h"
#include "ops/version.h"
#include "store/archive.h"
#include "web/status.h"

void
status_health(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp)
{
	struct store_txn t;
	json_t *j;
	int rc;

	if ((rc = store_begin(ctx->store, 0, &t)) != PH_OK) {
		web_error(resp, 503, "store_unavailable",
		    "the database is unavailable: %s", ph_strerror(rc));
		return;
	}
	store_abort(&t);
	/* Which build answers, as --version and payhook_build_info say. */
	j = json_pack("{s:s, s:s}", "status", "ok", "version", version_number);
	if (j != NULL && version_commit[0] != '\0')
		json_object_set_new(j, "commit", json_string(version_commit));
	web_json(resp, 200, j);
	json_decref(j);
}

/* A fact waiting longer than this for its commit: the write lock is held
 * by someone who does not finish (a commit takes milliseconds, a retried
 * one about a second, and providers give up on an answer in 5 to 10). */
#define STATUS_STUCK_S	10

/* One reason of /readyz: "code: what is wrong". */
static void __attribute__((format(printf, 2, 3)))
status_reason(json_t *reasons, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	json_array_append_new(reasons, json_string(text));
}

/*
 * Can this process take traffic now?  Not when the database does not
 * answer a read, is fuller than ready_max_fill, or refuses writes for want
 * of room; nor when the files beside it that every request writes (the
 * metrics, and the archive when archive_days keeps one) cannot be written.
 */
void
status_ready(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp)
{
	const struct conf *c = ctx->conf;
	json_t *reasons = json_array(), *j;
	struct store_stats st;
	struct store_txn t;
	char path[4096], why[256], when[32];
	uint64_t since;
	int64_t waiting, now = req->now > 0 ? req->now : (int64_t)time(NULL);
	int rc;

	if ((rc = store_begin(ctx->store, 0, &t)) != PH_OK)
		status_reason(reasons, "store_unavailable: the database does "
		    "not answer a read: %s", ph_strerror(rc));
	else {
		store_abort(&t);
		if (store_clock_off(ctx->store, why, sizeof(why)) == 1)
			status_reason(reasons, "clock_skew: %s, which other "
			    "hosts' leases and holds are read against: set "
			    "the time right (NTP)", why);
		if (store_space(ctx->store, &st) == PH_OK &&
		    store_fill(&st) > c->ready_max_fill)
			status_reason(reasons, "store_fill: %.3f of the "
			    "database map is in use, above ready_max_fill %g: "
			    "raise map_size_mb", store_fill(&st),
			    c->ready_max_fill);
	}
	if (ledger_group_oldest(ctx->store, &waiting) == PH_OK &&
	    waiting > 0 && now - waiting > STATUS_STUCK_S) {
		text_time(waiting, when);
		status_reason(reasons, "store_stuck: a fact has waited since "
		    "%s for its commit: a process holds the database's write "
		    "lock and does not finish (stopped, hung, or a tool left "
		    "open): find it %s", when, c->store_kind == STORE_LMDB ?
		    "with fuser on the database's -lock file" : "in the "
		    "server's pg_stat_activity (a session idle in a "
		    "transaction, or waiting), or a process of this host's "
		    "with fuser on the group commit file beside db_path");
	}
	if ((since = metrics_get("payhook_store_full_since_timestamp_seconds",
	    NULL)) != 0) {
		text_time((int64_t)since, when);
		status_reason(reasons, "store_full: writes have failed since "
		    "%s for want of room: the database map is full (raise "
		    "map_size_mb) or the disk under it is (free room on it); "
		    "the log says which", when);
	}
	if ((since = metrics_get("payhook_store_unwritable_since_timestamp_"
	    "seconds", NULL)) != 0) {
		text_time((int64_t)since, when);
		status_reason(reasons, "store_unwritable: writes have failed "
		    "since %s: the database file or the disk under it refuses "
		    "them (a read-only file system, its permissions or "
		    "attributes, an I/O error); the log says which", when);
	}
	if (metrics_file_of(c->db_path, path, sizeof(path)) == -1)
		path[0] = '\0';
	if (!metrics_active())
		status_reason(reasons, "metrics_not_writable: the metrics file "
		    "beside the database could not be opened: %s (it is "
		    "tried again each second): make room on its disk, or make "
		    "it writable by this user, as that says; until then the "
		    "store's own faults (a full map or disk) are not shown "
		    "here", metrics_off_reason());
	else if (access(path, R_OK | W_OK) == -1)
		status_reason(reasons, "metrics_not_writable: the metrics file "
		    "beside the database cannot be written: %s",
		    strerror(errno));
	if (c->archive_days > 0 && archive_writable(now, why, sizeof(why)) ==
	    -1)
		status_reason(reasons, "archive_not_writable: the notification "
		    "archive: %s", why);
	if (json_array_size(reasons) == 0) {
		j = json_pack("{s:s}", "status", "ready");
		web_note_set(resp->note.outcome, "ready");
		web_json(resp, 200, j);
		json_decref(reasons);
	} else {
		j = json_pack("{s:s, s:o}", "status", "not_ready", "reasons",
		    reasons);
		web_note_set(resp->note.outcome, "not_ready");
		web_json(resp, 503, j);
	}
	json_decref(j);
}

/*
 * Per profile: the share of paid orders learnt by query or statement
 * instead of notification (the 掉单 rate).  The delay itself is the
 * histogram payhook_payment_lag_seconds.
 */
static void
status_metrics_rates(const struct conf *c, struct ph_buf *b)
{
	char labels[128];
	size_t i, j;

	metrics_describe(b, "payhook_missed_notification_ratio");
	for (i = 0; i < c->nprofiles; i++) {
		const char *p = c->profiles[i].name;
		uint64_t paid, all = 0, missed = 0;

		for (j = 0; j < LEDGER_SRC__MAX; j++) {
			snprintf(labels, sizeof(labels), "profile=%s&source=%s",
			    p, ledger_source_name(j));
			paid = metrics_get("payhook_orders_paid_total", labels);
			all += paid;
			if (ledger_source_missed(j))
				missed += paid;
		}
		ph_buf_printf(b, "payhook_missed_notification_ratio{profile="
		    "\"%s\"} %.4f\n", p, all == 0 ? 0.0 :
		    (double)missed / (double)all);
	}
}

/* Which build answers: a label value needs no escaping in either. */
static void
status_build_info(struct ph_buf *b)
{
	metrics_describe(b, "payhook_build_info");
	ph_buf_printf(b, "payhook_build_info{version=\"%s\",commit=\"%s\"} 1\n",
	    version_number, version_commit);
}

struct status_certs {
	struct ph_buf *b;
	int64_t now;
	char last[128];		/* profile and key of the last certificate */
	unsigned nth;		/* its place among that key's certificates */
};

/* A certificate's expiry, labelled by profile, key and place, and by its
 * subject: never by its file, whose path is no one's business. */
static void
status_cert_metric(const struct certs_item *it, void *arg)
{
	struct status_certs *ac = arg;
	char subject[2 * sizeof(it->subject) + 4], which[128];
	size_t o;

	snprintf(which, sizeof(which), "%s/%s", it->profile, it->key);
	ac->nth = strcmp(which, ac->last) == 0 ? ac->nth + 1 : 0;
	ph_strlcpy(ac->last, which, sizeof(ac->last));
	o = 0;
	(void)metrics_label_escape(it->subject, strlen(it->subject), subject,
	    &o, sizeof(subject));
	ph_buf_printf(ac->b, "payhook_certificate_expiry_seconds{profile="
	    "\"%s\",key=\"%s\",cert=\"%u\",subject=\"%s\"} %lld\n",
	    it->profile, it->key, ac->nth, subject,
	    (long long)(it->not_after - ac->now));
}

/* A gauge without labels: its HELP, TYPE and value. */
static void
status_gauge(struct ph_buf *b, const char *name, size_t v)
{
	metrics_describe(b, name);
	ph_buf_printf(b, "%s %zu\n", name, v);
}

void
status_metrics(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp)
{
	uint64_t counts[ORDER__MAX];
	int64_t since;
	struct store_stats st;
	struct ph_buf *b = &resp->body;
	int i;

	ph_buf_free(b);
	ph_buf_init(b, WEB_RESP_MAX);
	status_build_info(b);
	metrics_render(b);
	status_metrics_rates(ctx->conf, b);
	{
		struct status_certs ac;

		memset(&ac, 0, sizeof(ac));
		ac.b = b;
		ac.now = (int64_t)time(NULL);
		metrics_describe(b, "payhook_certificate_expiry_seconds");
		certs_each(ctx->conf, status_cert_metric, &ac);
	}
	if (ledger_counts(ctx->store, counts, ORDER__MAX) == PH_OK) {
		metrics_describe(b, "payhook_orders");
		for (i = 0; i < ORDER__MAX; i++)
			ph_buf_printf(b, "payhook_orders{state=\"%s\"} %llu\n",
			    order_state_name(i), (unsigned long long)counts[i]);
	}
	if (store_stats(ctx->store, &st) == PH_OK) {
		metrics_describe(b, "payhook_store_entries");
		for (i = 0; i < STORE_DB__MAX; i++)
			ph_buf_printf(b, "payhook_store_entries{db=\"%s\"} "
			    "%zu\n", store_db_name(i), st.entries[i]);
		status_gauge(b, "payhook_outbox_events",
		    st.entries[STORE_DB_EVENTS]);
		status_gauge(b, "payhook_due_orders",
		    st.entries[STORE_DB_DUE]);
		status_gauge(b, "payhook_refunds_queued",
		    st.entries[STORE_DB_REFUNDS]);
		status_gauge(b, "payhook_store_map_bytes", st.map_size);
		status_gauge(b, "payhook_store_used_bytes", st.map_used);
		metrics_describe(b, "payhook_store_fill_ratio");
		ph_buf_printf(b, "payhook_store_fill_ratio %.6f\n",
		    store_fill(&st));
		status_gauge(b, "payhook_store_readers",
		    st.readers_used);
	}
	if (ledger_group_oldest(ctx->store, &since) == PH_OK)
		status_gauge(b, "payhook_store_write_wait_seconds",
		    since > 0 && req->now > since ? (uint64_t)(req->now -
		    since) : 0);
	if (b->err) {
		web_error(resp, 500, "internal", "metrics did not fit");
		return;
	}
	resp->status = 200;
	snprintf(resp->content_type, sizeof(resp->content_type),
	    "text/plain; version=0.0.4");
}
