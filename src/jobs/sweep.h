/*
 * The compensation sweeper (自动补单): asks the providers about pending
 * orders whose next query time has come, applies what they say, closes
 * expired orders the provider confirms unpaid, and reschedules the rest.
 */
#ifndef PH_SWEEP_H
#define PH_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "store/store.h"

struct sweep_stats {
	size_t due;		/* orders found due */
	size_t leased;		/* of which this pass took */
	size_t queries;		/* provider queries sent */
	size_t failures;	/* queries or closes without a usable answer */
	size_t config_failures;	/* of failures, those the configuration
				 * made (a profile gone, no api_base) */
	size_t store_errors;	/* answers or schedules the database did not
				 * take: the pass failed */
	size_t paid;		/* orders a query found paid */
	size_t closed;		/* expired orders closed */
	size_t forgotten;	/* Idempotency-Keys past their time */
};

/* One pass over everything due at now.  token names this sweeper. */
int sweep_pass(const struct conf *c, struct store *s, int64_t now,
    const char *token, struct sweep_stats *st);

#endif
