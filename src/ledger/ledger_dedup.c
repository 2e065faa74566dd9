/*
 * Dedup records: the first sighting of a fact's dedup key.  Every
 * notification reads one (most notifications are retries of one already
 * applied), so since schema 3 they are a fixed binary record instead of
 * JSON:
 *
 *	byte 0		LEDGER_DEDUP_TAG (binary dedup record, version 1)
 *	1..64		the fact's digest, 64 lower-case hex digits
 *	65..72		first sighting, seconds since the epoch, big-endian
 *	73...		kind, order id, source: each a length byte and bytes
 *
 * A JSON record (schema 2 and older, whose first byte is '{') is still
 * read, for a store between the two while it is being brought up.
 */
#include <stdio.h>
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger_int.h"
#include "ops/log.h"

#define LEDGER_DEDUP_TAG	0xd1
#define LEDGER_DEDUP_DIGEST	(2 * PH_SHA256_LEN)
#define LEDGER_DEDUP_FIXED	(1 + LEDGER_DEDUP_DIGEST + 8)

static size_t
ledger_dedup_str(unsigned char *out, const char *s)
{
	size_t n = strlen(s);

	if (n > 255)
		n = 255;
	out[0] = (unsigned char)n;
	memcpy(out + 1, s, n);
	return n + 1;
}

void
ledger_dedup_put(struct store_txn *t, const struct store_key *k,
    const struct ledger_dedup *d)
{
	unsigned char b[LEDGER_DEDUP_FIXED + 3 * 256];
	uint64_t u = (uint64_t)d->first_seen;
	size_t n;
	int i;

	if (strlen(d->digest) != LEDGER_DEDUP_DIGEST) {
		if (t->err == PH_OK)
			t->err = PH_E_INTERNAL;
		return;
	}
	b[0] = LEDGER_DEDUP_TAG;
	memcpy(b + 1, d->digest, LEDGER_DEDUP_DIGEST);
	for (i = 0; i < 8; i++)
		b[1 + LEDGER_DEDUP_DIGEST + i] = (unsigned char)(u >> (56 -
		    8 * i));
	n = LEDGER_DEDUP_FIXED;
	n += ledger_dedup_str(b + n, d->kind);
	n += ledger_dedup_str(b + n, d->order_id);
	n += ledger_dedup_str(b + n, d->source);
	store_put(t, STORE_DB_DEDUP, k, b, n);
}

/* A length-prefixed string at *off of v into out (cap bytes). */
static int
ledger_dedup_take(const struct store_val *v, size_t *off, char *out,
    size_t cap)
{
	const unsigned char *p = v->data;
	size_t n;

	if (*off >= v->len || (n = p[*off]) + 1 > v->len - *off || n >= cap ||
	    memchr(p + *off + 1, '\0', n) != NULL)
		return -1;
	memcpy(out, p + *off + 1, n);
	out[n] = '\0';
	*off += n + 1;
	return 0;
}

/* A schema 2 record: {"v":1,"digest":..,"kind":..,"order_id":..,
 * "source":..,"first_seen":..}. */
static int
ledger_dedup_json(const struct store_val *v, struct ledger_dedup *d)
{
	json_t *j;

	if ((j = ledger_load(v)) == NULL)
		return PH_E_STORE;
	ph_strlcpy(d->digest, ledger_str(j, "digest"), sizeof(d->digest));
	ph_strlcpy(d->kind, ledger_str(j, "kind"), sizeof(d->kind));
	ph_strlcpy(d->order_id, ledger_str(j, "order_id"), sizeof(d->order_id));
	ph_strlcpy(d->source, ledger_str(j, "source"), sizeof(d->source));
	d->first_seen = json_integer_value(json_object_get(j, "first_seen"));
	json_decref(j);
	return PH_OK;
}

int
ledger_dedup_read(const struct store_val *v, struct ledger_dedup *d)
{
	const unsigned char *p = v->data;
	uint64_t u = 0;
	size_t off;
	int i;

	memset(d, 0, sizeof(*d));
	if (ledger_is_json(v))
		return ledger_dedup_json(v, d);
	if (v->len < LEDGER_DEDUP_FIXED || p[0] != LEDGER_DEDUP_TAG ||
	    memchr(p + 1, '\0', LEDGER_DEDUP_DIGEST) != NULL)
		return PH_E_STORE;
	memcpy(d->digest, p + 1, LEDGER_DEDUP_DIGEST);
	for (i = 0; i < 8; i++)
		u = u << 8 | p[1 + LEDGER_DEDUP_DIGEST + i];
	d->first_seen = (int64_t)u;
	off = LEDGER_DEDUP_FIXED;
	if (ledger_dedup_take(v, &off, d->kind, sizeof(d->kind)) != 0 ||
	    ledger_dedup_take(v, &off, d->order_id, sizeof(d->order_id)) != 0 ||
	    ledger_dedup_take(v, &off, d->source, sizeof(d->source)) != 0 ||
	    off != v->len)
		return PH_E_STORE;
	return PH_OK;
}

int
ledger_dedup_get(struct store_txn *t, const struct store_key *k,
    struct ledger_dedup *d)
{
	struct store_val v;
	int rc;

	memset(d, 0, sizeof(*d));
	if ((rc = store_get(t, STORE_DB_DEDUP, k, &v)) != PH_OK)
		return rc;
	if (ledger_dedup_read(&v, d) != PH_OK) {
		log_err("database: unreadable dedup record");
		return t->err = PH_E_STORE;
	}
	return PH_OK;
}

int
ledger_dedup_first_seen(const struct store_val *v, int64_t *at)
{
	struct ledger_dedup d;

	if (ledger_dedup_read(v, &d) != PH_OK)
		return -1;
	*at = d.first_seen;
	return 0;
}
