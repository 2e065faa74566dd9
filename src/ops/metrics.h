/*
 * Counters shared by every payhook process (the FastCGI responders and
 * the sweeper), so /metrics is right whichever process answers.  They live
 * in a small memory-mapped file beside the database; increments are
 * atomic, and a new series is claimed under an flock.  Counters are
 * operational figures, not facts about money: they are never in LMDB.
 */
#ifndef PH_METRICS_H
#define PH_METRICS_H

#include <stdint.h>

#include <payhook/sdk.h>

/* Opens (creating) the counter file at path; 0 or -1.  Without it, every
 * metrics_* call does nothing, so a process never fails over metrics. */
int metrics_open(const char *path);
void metrics_close(void);

/*
 * Adds n to the series name{labels}.  labels is "k=v" pairs separated by
 * '&' (values are escaped here), or NULL: metrics_add("payhook_requests_total",
 * "route=notify&status=200", 1).
 */
void metrics_add(const char *name, const char *labels, uint64_t n);

/* The current value of a series (0 when it has none). */
uint64_t metrics_get(const char *name, const char *labels);

/* Appends every counter in Prometheus text format, families sorted. */
int metrics_render(struct ph_buf *out);

#endif
