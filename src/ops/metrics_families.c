/*
 * Every metric family payhook exports, sorted by name, in base units
 * (seconds, bytes), counters ending in _total, as the Prometheus
 * exposition format and its naming rules want (promtool check metrics is
 * run on /metrics by tests/e2e/test_metrics.py).  payhook.fcgi(8) lists
 * the same families under METRICS.
 */
#include <string.h>

#include "ops/metrics.h"

/* A request or an acknowledgement: a millisecond to ten seconds. */
static const double metrics_latency[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10,
};

/* From the provider's payment time to payhook knowing: seconds (a
 * notification) to a day (a statement). */
static const double metrics_lag[] = {
	1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400,
};

#define METRICS_N(a)	(sizeof(a) / sizeof((a)[0]))
#define COUNTER(n, h)	{ n, METRICS_COUNTER, h, NULL, 0, 0 }
#define COUNTER0(n, h)	{ n, METRICS_COUNTER, h, NULL, 0, METRICS_F_ZERO }
#define GAUGE(n, h, f)	{ n, METRICS_GAUGE, h, NULL, 0, f }
#define HISTOGRAM(n, h, b) \
	{ n, METRICS_HISTOGRAM, h, b, METRICS_N(b), 0 }
#define SCRAPED		METRICS_F_SCRAPE
#define ZERO		METRICS_F_ZERO

const struct metrics_family metrics_families[] = {
	COUNTER("payhook_archive_dropped_total",
	    "Notifications the archive did not keep, by class (over the "
	    "class's rate or share)."),
	GAUGE("payhook_build_info",
	    "The running build: version and git commit; always 1.", SCRAPED),
	GAUGE("payhook_certificate_expiry_seconds",
	    "Seconds until each configured certificate expires (negative: "
	    "expired).", SCRAPED),
	GAUGE("payhook_due_orders", "Orders waiting for a query.", SCRAPED),
	COUNTER0("payhook_hints_queued_total",
	    "Refused notifications naming a pending order, which was queued "
	    "for a query at the provider."),
	GAUGE("payhook_missed_notification_ratio",
	    "Share of paid orders learnt by query or statement instead of "
	    "notification (the missed-notification rate).", SCRAPED),
	COUNTER("payhook_notifications_total",
	    "Notifications received, by profile and outcome."),
	HISTOGRAM("payhook_notify_ack_seconds",
	    "Time from a notification's arrival to its acknowledgement, by "
	    "profile.", metrics_latency),
	GAUGE("payhook_orders", "Orders by state.", SCRAPED),
	COUNTER("payhook_orders_paid_total",
	    "Orders paid, by profile and by how payhook learnt it (notify, "
	    "query, statement, statement_file, replay)."),
	GAUGE("payhook_outbox_events", "Events in the outbox (the feed).",
	    SCRAPED),
	HISTOGRAM("payhook_payment_lag_seconds",
	    "Delay from the provider's payment time to payhook knowing, by "
	    "profile and source.", metrics_lag),
	COUNTER("payhook_provider_calls_total",
	    "Calls to providers, by profile, operation and result."),
	GAUGE("payhook_push_last_success_timestamp_seconds",
	    "When an event push pass last delivered everything due (0: "
	    "never).", ZERO),
	COUNTER("payhook_push_total", "Event push deliveries, by result."),
	GAUGE("payhook_reconcile_last_success_timestamp_seconds",
	    "When payhook reconcile last completed without a provider "
	    "failure (0: never).", ZERO),
	GAUGE("payhook_refunds_last_success_timestamp_seconds",
	    "When payhook refunds run last completed without a provider "
	    "failure (0: never).", ZERO),
	GAUGE("payhook_refunds_queued",
	    "Refund work items, settled ones included.", SCRAPED),
	COUNTER("payhook_refunds_total",
	    "Refund calls made by payhook refunds run, by result."),
	HISTOGRAM("payhook_request_duration_seconds",
	    "Time taken to answer an HTTP request, by route.",
	    metrics_latency),
	COUNTER("payhook_requests_total",
	    "HTTP requests answered, by route and status."),
	COUNTER0("payhook_store_commit_written_bytes_total",
	    "Bytes the write transactions wrote to the database file, as the "
	    "kernel counts pages first dirtied in its cache."),
	COUNTER0("payhook_store_commits_total",
	    "Write transactions committed and flushed."),
	GAUGE("payhook_store_entries", "Records per database.", SCRAPED),
	GAUGE("payhook_store_fill_ratio",
	    "Share of the database map in use (used bytes over map bytes).",
	    SCRAPED),
	GAUGE("payhook_store_full_since_timestamp_seconds",
	    "When writes began to fail because the database map or its disk "
	    "is full; 0 once a write succeeds again.", ZERO),
	COUNTER0("payhook_store_full_total",
	    "Writes refused because the database map or its disk was full."),
	COUNTER0("payhook_store_group_commits_total",
	    "Write transactions committed by the group commit."),
	COUNTER0("payhook_store_group_facts_total",
	    "Facts applied through the group commit."),
	GAUGE("payhook_store_map_bytes", "Database map size (map_size_mb).",
	    SCRAPED),
	GAUGE("payhook_store_readers", "Database reader slots in use.",
	    SCRAPED),
	GAUGE("payhook_store_unwritable_since_timestamp_seconds",
	    "When writes began to fail because the database refuses them (a "
	    "read-only file system, its permissions, an I/O error); 0 once a "
	    "write succeeds again.", ZERO),
	GAUGE("payhook_store_used_bytes", "Database map in use.", SCRAPED),
	GAUGE("payhook_store_write_wait_seconds", "How long the oldest fact "
	    "still waiting for its commit has waited (0: none waits).",
	    SCRAPED),
	GAUGE("payhook_sweep_failing", "1 while the last orders the sweeper "
	    "asked about got no usable answer and orders wait to be asked "
	    "again; 0 otherwise.", ZERO),
	GAUGE("payhook_sweep_last_success_timestamp_seconds",
	    "When a sweep pass last completed without a provider failure "
	    "(0: never).", ZERO),
	COUNTER0("payhook_sweeper_orders_closed_total",
	    "Expired orders the sweeper closed."),
	COUNTER0("payhook_sweeper_orders_paid_total",
	    "Orders the sweeper found paid by a query."),
	COUNTER("payhook_sweeper_passes_total", "Sweeper passes, by result."),
};

const size_t metrics_nfamilies = METRICS_N(metrics_families);

const struct metrics_family *
metrics_family(const char *name)
{
	size_t lo = 0, hi = metrics_nfamilies, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(name, metrics_families[mid].name)) == 0)
			return &metrics_families[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
