/*
 * Fingerprints of a statement's facts, for the check that none is listed
 * twice (recon_seen.h).  A JSON object of every key cost some 160 bytes a
 * row (75 MiB for a statement of 400,000 rows); a fingerprint costs eight.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <payhook/sdk.h>

#include "jobs/recon_seen.h"

int
recon_seen_init(struct recon_seen *s)
{
	memset(s, 0, sizeof(*s));
	if (getrandom(s->salt, sizeof(s->salt), 0) != (ssize_t)sizeof(s->salt))
		return PH_E_INTERNAL;
	return PH_OK;
}

static uint64_t
recon_seen_fp(const struct recon_seen *s, const struct ph_event *ev)
{
	unsigned char buf[sizeof(s->salt) + 1 + PH_DEDUP_MAX];
	unsigned char md[PH_SHA256_LEN];
	size_t klen = strnlen(ev->dedup_key, PH_DEDUP_MAX);
	uint64_t fp = 0;
	int i;

	memcpy(buf, s->salt, sizeof(s->salt));
	buf[sizeof(s->salt)] = (unsigned char)ev->kind;
	memcpy(buf + sizeof(s->salt) + 1, ev->dedup_key, klen);
	ph_sha256(buf, sizeof(s->salt) + 1 + klen, md);
	for (i = 0; i < 8; i++)
		fp = fp << 8 | md[i];
	return fp;
}

int
recon_seen_add(struct recon_seen *s, const struct ph_event *ev)
{
	uint64_t *p;
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 4096;
		if (cap > SIZE_MAX / sizeof(*p) ||
		    (p = realloc(s->fp, cap * sizeof(*p))) == NULL)
			return PH_E_NOMEM;
		s->fp = p;
		s->cap = cap;
	}
	s->fp[s->n++] = recon_seen_fp(s, ev);
	return PH_OK;
}

static int
recon_seen_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

size_t
recon_seen_sort(struct recon_seen *s)
{
	size_t i, j;

	qsort(s->fp, s->n, sizeof(*s->fp), recon_seen_cmp);
	/* The repeated ones, once each, to the front. */
	for (s->ndup = 0, i = 0; i < s->n; i = j) {
		for (j = i + 1; j < s->n && s->fp[j] == s->fp[i]; j++)
			;
		if (j - i > 1)
			s->fp[s->ndup++] = s->fp[i];
	}
	return s->ndup;
}

int
recon_seen_suspect(const struct recon_seen *s, const struct ph_event *ev)
{
	uint64_t fp = recon_seen_fp(s, ev);

	return bsearch(&fp, s->fp, s->ndup, sizeof(*s->fp),
	    recon_seen_cmp) != NULL;
}

void
recon_seen_free(struct recon_seen *s)
{
	free(s->fp);
	memset(s, 0, sizeof(*s));
}
