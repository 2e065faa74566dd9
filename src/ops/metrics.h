/*
 * Metrics shared by every payhook process (the FastCGI responders and
 * the sweeper), so /metrics is right whichever process answers.  They live
 * in a small memory-mapped file beside the database; increments are
 * atomic, and a new series is claimed under an flock.  They are
 * operational figures, not facts about money: they are never in LMDB.
 *
 * Every family payhook exports is described once, in metrics_families.c:
 * its type, its help text, a histogram's buckets.  A series of a family
 * not described there is never written.
 */
#ifndef PH_METRICS_H
#define PH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/sdk.h>

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics_family {
	const char *name;
	enum metrics_type type;
	const char *help;
	const double *bounds;		/* a histogram's upper bounds, rising */
	size_t nbounds;
	unsigned flags;
};

/* Computed by /metrics at each scrape (status.c), never stored. */
#define METRICS_F_SCRAPE	0x1
/* Without labels, and shown as 0 until its first value is set. */
#define METRICS_F_ZERO		0x2

/* Every family, sorted by name. */
extern const struct metrics_family metrics_families[];
extern const size_t metrics_nfamilies;
const struct metrics_family *metrics_family(const char *name);

/* The metrics file is the database's path and this. */
#define METRICS_FILE_SUFFIX "-metrics"
/* The metrics file of the database at db_path, in buf; 0, or -1 when it
 * does not fit. */
int metrics_file_of(const char *db_path, char *buf, size_t cap);
/* metrics_open() of the metrics file of the database at db_path. */
int metrics_open_beside(const char *db_path);
/* Opens (creating) the metrics file at path; 0 or -1.  Without it, every
 * metrics_* call does nothing, so a process never fails over metrics. */
int metrics_open(const char *path);
void metrics_close(void);
/* Once a second at most (now: unix seconds): when the file was removed
 * (its figures start again from zero, payhook.fcgi(8)), maps the new one
 * that whoever counts next makes. */
void metrics_follow(int64_t now);
/* Is the file open in this process? */
int metrics_active(void);
/*
 * Appends label value v (len bytes) to out at *o, escaped as the
 * exposition format asks (\\, \", \n; other control bytes dropped);
 * -1 when it does not fit cap, out then cut.
 */
int metrics_label_escape(const char *v, size_t len, char *out, size_t *o,
    size_t cap);
/* Why not, when it is not: the last error opening it (strerror). */
const char *metrics_off_reason(void);

/*
 * Adds n to the counter name{labels}.  labels is "k=v" pairs separated by
 * '&' (values are escaped here), or NULL: metrics_add("payhook_requests_total",
 * "route=notify&status=200", 1).
 */
void metrics_add(const char *name, const char *labels, uint64_t n);
/* Sets the gauge name{labels} to v. */
void metrics_set(const char *name, const char *labels, uint64_t v);
/* Sets the gauge to v only when it is 0; 1 when it did. */
int metrics_set_first(const char *name, const char *labels, uint64_t v);
/* Counts one observation of v (in the family's unit) in a histogram. */
void metrics_observe(const char *name, const char *labels, double v);

/* The current value of a counter or gauge (0 when it has none). */
uint64_t metrics_get(const char *name, const char *labels);
/* A histogram's count and sum (0 when it has none). */
void metrics_histogram_get(const char *name, const char *labels,
    uint64_t *count, double *sum);

/* Calls fn with each counter or gauge series whose key
 * (name{k="v",...}) begins with prefix, and its value. */
void metrics_each(const char *prefix, void (*fn)(const char *key,
    uint64_t v, void *arg), void *arg);

/* Appends every stored series in the Prometheus text format, each family
 * once with its HELP and TYPE. */
int metrics_render(struct ph_buf *out);
/* Appends the HELP and TYPE lines of a family computed at scrape. */
void metrics_describe(struct ph_buf *out, const char *name);

#endif
