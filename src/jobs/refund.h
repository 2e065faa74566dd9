/*
 * The refund runner: carries out the refund work list through the
 * providers' refund APIs.  Each refund keeps one id for its whole life, so
 * a run killed in the middle and run again can never refund twice.
 */
#ifndef PH_REFUND_H
#define PH_REFUND_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "store/store.h"

struct refund_stats {
	size_t due;		/* open work items seen */
	size_t sent;		/* refund calls made */
	size_t succeeded;
	size_t failed;		/* refused for good by the provider */
	size_t pending;		/* accepted, result to come */
	size_t errors;		/* no usable answer: tried again later */
	size_t config_errors;	/* of errors, those the configuration made
				 * (a profile gone, no api_base) */
};

/* One pass over the refunds due, on the clock as it goes: PH_OK, or the
 * database's error (st is filled either way with what the pass did). */
int refund_run(const struct conf *c, struct store *s, const char *token,
    struct refund_stats *st);

#endif
