/*
 * "Did you mean": the optimal string alignment distance (Levenshtein with
 * swapped neighbours) from a mistyped key to each known one.
 */
#include <string.h>

#include "conf/conf_suggest.h"

#define CONF_SUGGEST_LEN 64	/* longer words are not compared */

static size_t
conf_suggest_min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;

	return m < c ? m : c;
}

/* The distance from a to b, both shorter than CONF_SUGGEST_LEN. */
static size_t
conf_suggest_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[CONF_SUGGEST_LEN + 1][CONF_SUGGEST_LEN + 1];
	size_t i, j, cost;

	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			cost = a[i - 1] == b[j - 1] ? 0 : 1;
			d[i][j] = conf_suggest_min3(d[i - 1][j] + 1,
			    d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < d[i][j])
				d[i][j] = d[i - 2][j - 2] + 1;
		}
	return d[la][lb];
}

const char *
conf_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t lw = strlen(word), ln, i, dist, best_dist, limit;

	if (lw == 0 || lw >= CONF_SUGGEST_LEN)
		return NULL;
	limit = lw <= 4 ? 1 : 2;
	best_dist = limit + 1;
	for (i = 0; i < n; i++) {
		if (names[i] == NULL ||
		    (ln = strlen(names[i])) >= CONF_SUGGEST_LEN)
			continue;
		if ((ln > lw ? ln - lw : lw - ln) > limit)
			continue;
		dist = conf_suggest_distance(word, lw, names[i], ln);
		if (dist < best_dist) {
			best_dist = dist;
			best = names[i];
		}
	}
	return best;
}
