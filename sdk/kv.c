/*
 * Key/value lists decoded from provider messages, and the canonical
 * "k=v&k=v" sign string built from them.
 */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

void
ph_kvlist_init(struct ph_kvlist *l, size_t max)
{
	*l = (struct ph_kvlist){ .max = max };
}

int
ph_kvlist_add(struct ph_kvlist *l, const char *key, size_t key_len,
    const char *val, size_t val_len, struct ph_diag *diag)
{
	struct ph_kv *kv;
	char *k, *v;
	size_t i;

	if (key == NULL || (val == NULL && val_len > 0))
		return ph_fail(diag, PH_E_INTERNAL, "kvlist: NULL argument");
	if (val == NULL)
		val = "";
	if (key_len == 0 || memchr(key, '\0', key_len) != NULL)
		return ph_fail(diag, PH_E_MALFORMED, "empty or invalid key");
	/* Values become C strings: an embedded NUL would hide a suffix. */
	if (val_len > 0 && memchr(val, '\0', val_len) != NULL)
		return ph_fail(diag, PH_E_MALFORMED,
		    "field %.*s: value contains NUL", (int)(key_len > 64 ?
		    64 : key_len), key);
	for (i = 0; i < l->n; i++)
		if (l->items[i].key[0] == key[0] &&
		    strncmp(l->items[i].key, key, key_len) == 0 &&
		    l->items[i].key[key_len] == '\0')
			return ph_fail(diag, PH_E_MALFORMED,
			    "field %.*s: repeated", (int)(key_len > 64 ?
			    64 : key_len), key);
	if (l->n >= l->max)
		return ph_fail(diag, PH_E_TOOBIG,
		    "more than %zu fields", l->max);
	if (l->n == l->cap) {
		size_t cap = l->cap != 0 ? l->cap * 2 : 16;

		if (cap > l->max)
			cap = l->max;
		if (cap > SIZE_MAX / sizeof(*kv) ||
		    (kv = realloc(l->items, cap * sizeof(*kv))) == NULL)
			return ph_fail(diag, PH_E_NOMEM, "out of memory");
		l->items = kv;
		l->cap = cap;
	}
	/* key and value in one block, the key first: freed as the key */
	if (key_len > SIZE_MAX - 2 - val_len ||
	    (k = malloc(key_len + val_len + 2)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	v = k + key_len + 1;
	if (val_len > 0)
		memcpy(v, val, val_len);
	v[val_len] = '\0';
	kv = &l->items[l->n++];
	kv->key = k;
	kv->val = v;
	kv->val_len = val_len;
	return PH_OK;
}

const char *
ph_kvlist_get(const struct ph_kvlist *l, const char *key)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->items[i].key[0] == key[0] &&
		    strcmp(l->items[i].key, key) == 0)
			return l->items[i].val;
	return NULL;
}

int
ph_kv_amount(const struct ph_kvlist *l, const char *key, int64_t *out,
    struct ph_diag *diag)
{
	const char *v = ph_kvlist_get(l, key);

	if (v == NULL || v[0] == '\0')
		return ph_fail(diag, PH_E_FIELD, "%s: missing", key);
	if (ph_money_parse_minor(v, strlen(v), out) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "%s: invalid", key);
	return PH_OK;
}

void
ph_kvlist_free(struct ph_kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->items[i].key);	/* the value with it */
	free(l->items);
	l->items = NULL;
	l->n = 0;
	l->cap = 0;
}

static int
ph_kv_cmp(const void *a, const void *b)
{
	const struct ph_kv *x = *(const struct ph_kv *const *)a;
	const struct ph_kv *y = *(const struct ph_kv *const *)b;

	/* strcmp compares as unsigned char: byte-wise ASCII order. */
	return strcmp(x->key, y->key);
}

static int
ph_skipped(const char *key, const char *const *skip)
{
	size_t i;

	if (skip == NULL)
		return 0;
	for (i = 0; skip[i] != NULL; i++)
		if (strcmp(skip[i], key) == 0)
			return 1;
	return 0;
}

int
ph_canonical_join(const struct ph_kvlist *l, const char *const *skip,
    int skip_empty, struct ph_buf *out)
{
	const struct ph_kv **sel;
	size_t i, n = 0, len;
	int rc;

	if (l->n == 0)
		return out->err;
	if (l->n > SIZE_MAX / sizeof(*sel) ||
	    (sel = malloc(l->n * sizeof(*sel))) == NULL)
		return out->err != PH_OK ? out->err : (out->err = PH_E_NOMEM);
	for (i = 0; i < l->n; i++) {
		if (ph_skipped(l->items[i].key, skip))
			continue;
		if (skip_empty && l->items[i].val_len == 0)
			continue;
		sel[n++] = &l->items[i];
	}
	qsort(sel, n, sizeof(*sel), ph_kv_cmp);
	/* one allocation for the whole string, then plain copies */
	for (i = 0, len = 0; i < n; i++)
		len += strlen(sel[i]->key) + sel[i]->val_len + 2;
	if (ph_buf_reserve(out, len) == PH_OK)
		for (i = 0; i < n; i++) {
			if (i > 0)
				out->data[out->len++] = '&';
			len = strlen(sel[i]->key);
			memcpy(out->data + out->len, sel[i]->key, len);
			out->len += len;
			out->data[out->len++] = '=';
			memcpy(out->data + out->len, sel[i]->val,
			    sel[i]->val_len);
			out->len += sel[i]->val_len;
		}
	if (out->data != NULL)
		out->data[out->len] = '\0';
	free(sel);
	rc = out->err;
	return rc;
}
