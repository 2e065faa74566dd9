/*
 * What the configuration's files share among themselves (conf.c reads the
 * file, conf_core.c takes the [core] keys).
 */
#ifndef PH_CONF_INT_H
#define PH_CONF_INT_H

#include "conf/conf.h"

/* A whole number from min to max in s (decimal digits only); -1 if not. */
int conf_parse_ulong(const char *s, unsigned long min, unsigned long max,
    unsigned long *out);
/* Replaces *dst with a copy of v; -1 when out of memory. */
int conf_set_str(char **dst, const char *v);
/* Takes one key of [core] (at line), recording any mistake in errs. */
void conf_core(struct conf *c, struct conf_errs *errs, int line,
    const char *key, const char *val);

#endif
