/*
 * The shared metrics file: counters, gauges and histograms kept across
 * an open and close (as another process would see them), the Prometheus
 * text format rendered (each family once, with HELP and TYPE, histogram
 * buckets cumulative and ending in +Inf), families that are not described
 * never written.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/metrics.h"
#include "../../lib/tap.h"

static char dir[] = "/tmp/payhook-metrics-XXXXXX";
static char path[300];

/* The rendered page, into a static buffer. */
static const char *
page(void)
{
	static char text[65536];
	struct ph_buf b;

	ph_buf_init(&b, 1 << 20);
	metrics_render(&b);
	snprintf(text, sizeof(text), "%.*s", (int)b.len, b.len > 0 ?
	    b.data : "");
	ph_buf_free(&b);
	return text;
}

static int
has(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p += n;
	}
	return 0;
}

static size_t
count(const char *text, const char *s)
{
	size_t n = 0;
	const char *p = text;

	while ((p = strstr(p, s)) != NULL) {
		n++;
		p += strlen(s);
	}
	return n;
}

static void
test_families(void)
{
	size_t i;
	int sorted = 1, described = 1;

	for (i = 1; i < metrics_nfamilies; i++)
		if (strcmp(metrics_families[i - 1].name,
		    metrics_families[i].name) >= 0)
			sorted = 0;
	ok(sorted, "families are sorted by name (for the lookup)");
	for (i = 0; i < metrics_nfamilies; i++) {
		const struct metrics_family *f = &metrics_families[i];
		size_t n = strlen(f->name);

		if (metrics_family(f->name) != f || f->help[0] == '\0' ||
		    (f->type == METRICS_COUNTER) != (n > 6 &&
		    strcmp(f->name + n - 6, "_total") == 0))
			described = 0;
	}
	ok(described, "each is found, has help, and ends in _total exactly "
	    "when it is a counter");
	ok(metrics_family("payhook_nope_total") == NULL, "an unknown name "
	    "is not a family");
}

static void
test_values(void)
{
	const char *t;
	uint64_t n;
	double sum;

	metrics_add("payhook_requests_total", "route=notify&status=200", 2);
	metrics_add("payhook_requests_total", "route=notify&status=200", 3);
	metrics_add("payhook_requests_total", "route=orders&status=201", 1);
	metrics_add("payhook_nope_total", NULL, 1);
	metrics_add("payhook_sweep_last_success_timestamp_seconds", NULL, 5);
	metrics_set("payhook_requests_total", "route=x", 9);
	is_int(metrics_get("payhook_requests_total",
	    "route=notify&status=200"), 5, "a counter adds up");
	is_int(metrics_get("payhook_nope_total", NULL), 0,
	    "a family not described is not written");
	is_int(metrics_get("payhook_sweep_last_success_timestamp_seconds",
	    NULL), 0, "a gauge is not added to");
	is_int(metrics_get("payhook_requests_total", "route=x"), 0,
	    "a counter is not set");

	metrics_set("payhook_sweep_last_success_timestamp_seconds", NULL,
	    1764500000);
	is_int(metrics_get("payhook_sweep_last_success_timestamp_seconds",
	    NULL), 1764500000, "a gauge is set");
	ok(metrics_set_first("payhook_store_full_since_timestamp_seconds",
	    NULL, 100), "set_first on 0: set");
	ok(!metrics_set_first("payhook_store_full_since_timestamp_seconds",
	    NULL, 200), "set_first again: kept");
	is_int(metrics_get("payhook_store_full_since_timestamp_seconds",
	    NULL), 100, "... the first value");
	metrics_set("payhook_store_full_since_timestamp_seconds", NULL, 0);

	metrics_observe("payhook_request_duration_seconds", "route=notify",
	    0.0004);
	metrics_observe("payhook_request_duration_seconds", "route=notify",
	    0.001);
	metrics_observe("payhook_request_duration_seconds", "route=notify",
	    0.3);
	metrics_observe("payhook_request_duration_seconds", "route=notify",
	    42);
	metrics_observe("payhook_request_duration_seconds", "route=notify",
	    -1);
	metrics_observe("payhook_requests_total", "route=notify", 1);
	metrics_histogram_get("payhook_request_duration_seconds",
	    "route=notify", &n, &sum);
	is_int(n, 4, "a histogram counts its observations (not a negative "
	    "one)");
	ok(sum > 42.3013 && sum < 42.3015, "... and sums them (%f)", sum);

	/* As another process sees them. */
	metrics_close();
	if (!ok(metrics_open(path) == 0, "the file opens again"))
		return;
	t = page();
	ok(has(t, "payhook_requests_total{route=\"notify\",status=\"200\"} 5"),
	    "a counter rendered with its labels");
	is_int(count(t, "# TYPE payhook_requests_total counter\n"), 1,
	    "... its TYPE once");
	is_int(count(t, "# HELP payhook_requests_total "), 1,
	    "... its HELP once");
	ok(strstr(t, "payhook_nope") == NULL, "no undescribed family");
	ok(has(t, "payhook_request_duration_seconds_bucket{route=\"notify\","
	    "le=\"0.001\"} 2"), "a bound holds what equals it");
	ok(has(t, "payhook_request_duration_seconds_bucket{route=\"notify\","
	    "le=\"0.25\"} 2") && has(t, "payhook_request_duration_seconds_"
	    "bucket{route=\"notify\",le=\"0.5\"} 3"), "buckets are "
	    "cumulative");
	ok(has(t, "payhook_request_duration_seconds_bucket{route=\"notify\","
	    "le=\"10\"} 3") && has(t, "payhook_request_duration_seconds_"
	    "bucket{route=\"notify\",le=\"+Inf\"} 4"), "+Inf counts what is "
	    "above the last bound");
	ok(has(t, "payhook_request_duration_seconds_count{route=\"notify\"} "
	    "4"), "_count is the +Inf bucket");
	ok(has(t, "payhook_request_duration_seconds_sum{route=\"notify\"} "
	    "42.301400"), "_sum in seconds");
	ok(has(t, "# TYPE payhook_request_duration_seconds histogram"),
	    "TYPE histogram");
	ok(has(t, "payhook_sweep_last_success_timestamp_seconds 1764500000"),
	    "a gauge rendered");
	ok(has(t, "payhook_refunds_last_success_timestamp_seconds 0"),
	    "a job that never succeeded: 0");
	ok(has(t, "payhook_store_full_total 0"), "an unlabelled counter "
	    "never added to: 0");
	ok(strstr(t, "payhook_orders{") == NULL &&
	    strstr(t, "payhook_build_info") == NULL,
	    "families computed at scrape are not in the file");
}

/* A family's series stay together, whatever other names begin with
 * its own ("payhook_push_total" after "payhook_provider_calls_total"). */
static void
test_order(void)
{
	const char *t, *a, *b, *c;

	metrics_add("payhook_provider_calls_total",
	    "profile=zz&op=query&result=ok", 1);
	metrics_add("payhook_push_total", "result=delivered", 1);
	metrics_add("payhook_provider_calls_total",
	    "profile=aa&op=query&result=ok", 1);
	t = page();
	a = strstr(t, "payhook_provider_calls_total{profile=\"aa\"");
	b = strstr(t, "payhook_provider_calls_total{profile=\"zz\"");
	c = strstr(t, "payhook_push_total{");
	ok(a != NULL && b != NULL && c != NULL && a < b && b < c,
	    "series of one family together, sorted");
	metrics_describe(NULL, "payhook_nope");
	ok(1, "describing an unknown family does nothing");
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/db-metrics", dir);
	metrics_add("payhook_requests_total", NULL, 1);
	ok(!metrics_active(), "without a file nothing is counted");
	if (!ok(metrics_open(path) == 0, "the file opens"))
		return done_testing();
	ok(metrics_active(), "... and is active");
	test_families();
	test_values();
	test_order();
	metrics_close();
	unlink(path);
	rmdir(dir);
	return done_testing();
}
