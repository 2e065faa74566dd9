/*
 * "Did you mean": the known name closest to a mistyped one.
 */
#ifndef PAYHOOK_CONF_SUGGEST_H
#define PAYHOOK_CONF_SUGGEST_H

#include <stddef.h>

/*
 * The name among names[0..n) (NULL entries skipped) closest to word, when
 * it is close enough to be what was meant: at most one edit (an insertion,
 * a deletion, a substitution or two neighbours swapped) for words of up to
 * four characters, two for longer ones.  NULL when none is.
 */
const char *conf_suggest(const char *word, const char *const *names,
    size_t n);

#endif
