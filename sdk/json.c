/*
 * JSON documents from providers, over jansson.
 *
 * One strict parse per document: a size bound before the parser runs,
 * duplicate keys refused (compared after unescaping, so "a" and "\u0061"
 * are the same key), jansson's UTF-8 validation and its refusal of
 * \u0000, trailing bytes refused, an object at the top, and a nesting
 * bound checked by walking the tree.  The getters then read members by a
 * dotted path ("amount.total"), each with a type, a length or a range,
 * and name the path in their diagnostics.
 */
#include <limits.h>
#include <string.h>

#include <jansson.h>

#include <payhook/sdk.h>

/* Longest dotted path and longest single member name looked up. */
#define PH_JSON_PATH_MAX 128

/*
 * Refuses nesting deeper than max: depth is 1 for the top-level value,
 * one more for each object or array entered.  The recursion is bounded by
 * max itself, since it stops one level past it.
 */
static int
ph_json_depth_ok(const json_t *v, size_t depth, size_t max)
{
	const char *key;
	json_t *m;
	size_t i;

	if (!json_is_object(v) && !json_is_array(v))
		return 1;
	if (depth > max)
		return 0;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, m)
			if (!ph_json_depth_ok(m, depth + 1, max))
				return 0;
	} else {
		json_array_foreach(v, i, m)
			if (!ph_json_depth_ok(m, depth + 1, max))
				return 0;
	}
	return 1;
}

int
ph_json_depth_within(const json_t *v, size_t max)
{
	return ph_json_depth_ok(v, 1, max);
}

int
ph_json_parse(const unsigned char *doc, size_t len,
    const struct ph_json_limits *lim, struct json_t **out,
    struct ph_diag *diag)
{
	json_error_t jerr;
	json_t *root;

	if (out == NULL || lim == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "JSON: NULL argument");
	*out = NULL;
	if (doc == NULL || len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "JSON: empty document");
	if (len > lim->max_bytes)
		return ph_fail(diag, PH_E_TOOBIG, "JSON: document of %zu "
		    "bytes, at most %zu accepted", len, lim->max_bytes);
	/*
	 * Default flags also refuse \u0000 inside strings and any bytes
	 * after the document; JSON_REJECT_DUPLICATES is the one to add.
	 */
	memset(&jerr, 0, sizeof(jerr));
	root = json_loadb((const char *)doc, len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (root == NULL)
		return ph_fail(diag, PH_E_MALFORMED, "JSON: %.120s (byte %d)",
		    jerr.text, jerr.position);
	if (!json_is_object(root)) {
		json_decref(root);
		return ph_fail(diag, PH_E_MALFORMED,
		    "JSON: the document is not an object");
	}
	if (!ph_json_depth_ok(root, 1, lim->max_depth)) {
		json_decref(root);
		return ph_fail(diag, PH_E_MALFORMED,
		    "JSON: nested deeper than %zu levels", lim->max_depth);
	}
	*out = root;
	return PH_OK;
}

const struct json_t *
ph_json_lookup(const struct json_t *obj, const char *path)
{
	char seg[PH_JSON_PATH_MAX + 1];
	const json_t *cur = obj;
	const char *p = path, *dot;
	size_t n;

	if (obj == NULL || path == NULL || *path == '\0')
		return NULL;
	for (;;) {
		if (!json_is_object(cur))
			return NULL;
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n > PH_JSON_PATH_MAX)
			return NULL;
		memcpy(seg, p, n);
		seg[n] = '\0';
		if ((cur = json_object_get(cur, seg)) == NULL)
			return NULL;
		if (dot == NULL)
			return cur;
		p = dot + 1;
	}
}

/* Present and not JSON null. */
static const json_t *
ph_json_present(const struct json_t *obj, const char *path)
{
	const json_t *v = ph_json_lookup(obj, path);

	return v != NULL && !json_is_null(v) ? v : NULL;
}

static int
ph_json_str_value(const json_t *v, const char *path, size_t max,
    const char **out, size_t *len, struct ph_diag *diag)
{
	size_t n;

	if (!json_is_string(v))
		return ph_fail(diag, PH_E_FIELD, "%.80s: not a string", path);
	n = json_string_length(v);
	/* jansson refuses \u0000 when parsing; a document built otherwise
	 * could still hold one, and it would cut the C string short. */
	if (strlen(json_string_value(v)) != n)
		return ph_fail(diag, PH_E_FIELD, "%.80s: contains NUL", path);
	if (n > max)
		return ph_fail(diag, PH_E_FIELD, "%.80s: longer than %zu bytes",
		    path, max);
	*out = json_string_value(v);
	if (len != NULL)
		*len = n;
	return PH_OK;
}

int
ph_json_opt_string(const struct json_t *obj, const char *path, size_t max,
    const char **out, size_t *len, struct ph_diag *diag)
{
	const json_t *v = ph_json_present(obj, path);

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (v == NULL)
		return PH_OK;
	return ph_json_str_value(v, path, max, out, len, diag);
}

int
ph_json_get_string(const struct json_t *obj, const char *path, size_t max,
    const char **out, size_t *len, struct ph_diag *diag)
{
	int rc;

	if ((rc = ph_json_opt_string(obj, path, max, out, len, diag)) == PH_OK &&
	    *out == NULL)
		rc = ph_fail(diag, PH_E_FIELD, "%.80s: missing", path);
	return rc;
}

int
ph_json_copy_token(const struct json_t *obj, const char *path, char *dst,
    size_t cap, const char *extra, struct ph_diag *diag)
{
	const char *s;
	size_t n;
	int rc;

	if (dst == NULL || cap == 0)
		return ph_fail(diag, PH_E_INTERNAL, "%.80s: no room", path);
	dst[0] = '\0';
	if ((rc = ph_json_get_string(obj, path, cap - 1, &s, &n,
	    diag)) != PH_OK)
		return rc;
	if (!ph_token_valid(s, n, cap - 1, extra))
		return ph_fail(diag, PH_E_FIELD, "%.80s: invalid", path);
	memcpy(dst, s, n + 1);
	return PH_OK;
}

int
ph_json_get_int(const struct json_t *obj, const char *path, int64_t min,
    int64_t max, int64_t *out, struct ph_diag *diag)
{
	const json_t *v = ph_json_present(obj, path);
	json_int_t n;

	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "%.80s: missing", path);
	/* A real (12.5, 1e3, 100.0) or a string ("12") is not an integer. */
	if (!json_is_integer(v))
		return ph_fail(diag, PH_E_FIELD, "%.80s: not an integer", path);
	n = json_integer_value(v);
	if (n < min || n > max)
		return ph_fail(diag, PH_E_FIELD, "%.80s: out of range", path);
	*out = (int64_t)n;
	return PH_OK;
}

int
ph_json_get_amount(const struct json_t *obj, const char *path, int64_t *out,
    struct ph_diag *diag)
{
	return ph_json_get_int(obj, path, 0, PH_AMOUNT_MAX, out, diag);
}

int
ph_json_get_bool(const struct json_t *obj, const char *path, int *out,
    struct ph_diag *diag)
{
	const json_t *v = ph_json_present(obj, path);

	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "%.80s: missing", path);
	if (!json_is_boolean(v))
		return ph_fail(diag, PH_E_FIELD, "%.80s: not true or false",
		    path);
	*out = json_is_true(v);
	return PH_OK;
}

int
ph_json_get_object(const struct json_t *obj, const char *path,
    const struct json_t **out, struct ph_diag *diag)
{
	const json_t *v = ph_json_present(obj, path);

	*out = NULL;
	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "%.80s: missing", path);
	if (!json_is_object(v))
		return ph_fail(diag, PH_E_FIELD, "%.80s: not an object", path);
	*out = v;
	return PH_OK;
}
