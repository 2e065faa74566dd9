/*
 * application/x-www-form-urlencoded bodies, decoded strictly.
 *
 * A body is parsed once, into the key/value list that both the signature
 * check and the business logic then read, so no field can be read two
 * ways.  Percent-decoding is libcurl's; what libcurl tolerates (a '%' not
 * followed by two hex digits is copied as it stands) is refused here
 * first.  Values keep their bytes: no charset is assumed or converted.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include <payhook/sdk.h>

static int
ph_form_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * Decodes p[0..n) ('+' is a space, %XX a byte) into a malloc'd string
 * (caller frees with curl_free); what is kept of the escapes is checked
 * before libcurl sees them.
 */
static int
ph_form_unescape(const char *p, size_t n, size_t max, const char *what,
    char **out, size_t *out_len, struct ph_diag *diag)
{
	char *tmp, *dec;
	size_t i;
	int olen = 0;

	*out = NULL;
	*out_len = 0;
	for (i = 0; i < n; i++) {
		if (p[i] != '%')
			continue;
		if (i + 2 >= n)
			return ph_fail(diag, PH_E_MALFORMED,
			    "form: truncated %% escape in a %s", what);
		if (!ph_form_hex((unsigned char)p[i + 1]) ||
		    !ph_form_hex((unsigned char)p[i + 2]))
			return ph_fail(diag, PH_E_MALFORMED,
			    "form: invalid %% escape in a %s", what);
		i += 2;
	}
	if (n > INT_MAX)
		return ph_fail(diag, PH_E_TOOBIG, "form: %s too long", what);
	/* '+' is a space only where it was written as '+': %2B stays
	 * escaped in the copy and decodes to '+'. */
	if ((tmp = malloc(n + 1)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	for (i = 0; i < n; i++)
		tmp[i] = p[i] == '+' ? ' ' : p[i];
	tmp[n] = '\0';
	/* Length 0 makes libcurl measure the string: it is empty then. */
	dec = curl_easy_unescape(NULL, tmp, (int)n, &olen);
	free(tmp);
	if (dec == NULL || olen < 0) {
		curl_free(dec);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
	if ((size_t)olen > max) {
		curl_free(dec);
		return ph_fail(diag, PH_E_TOOBIG,
		    "form: a %s is longer than %zu bytes", what, max);
	}
	*out = dec;
	*out_len = (size_t)olen;
	return PH_OK;
}

int
ph_is_form(const char *ct)
{
	static const char form[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(form) - 1;

	if (ct == NULL || strncasecmp(ct, form, n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' ||
	    ct[n] == '\t';
}

int
ph_form_request(const struct ph_request *req,
    const struct ph_form_limits *lim, struct ph_kvlist *out,
    struct ph_diag *diag)
{
	memset(out, 0, sizeof(*out));
	if (req->content_type != NULL && req->content_type[0] != '\0' &&
	    !ph_is_form(req->content_type))
		return ph_fail(diag, PH_E_MALFORMED, "Content-Type is not "
		    "application/x-www-form-urlencoded");
	return ph_form_parse(req->body, req->body_len, lim, out, diag);
}

int
ph_form_parse(const unsigned char *body, size_t len,
    const struct ph_form_limits *lim, struct ph_kvlist *out,
    struct ph_diag *diag)
{
	const char *s = (const char *)body, *seg, *end, *eq;
	char *key = NULL, *val = NULL;
	size_t klen, vlen, i, nseg;
	int rc;

	ph_kvlist_init(out, lim->max_fields);
	if (len > lim->max_bytes)
		return ph_fail(diag, PH_E_TOOBIG,
		    "form: body larger than %zu bytes", lim->max_bytes);
	if (len == 0)
		return PH_OK;
	if (body == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "form: NULL body");
	/* Count first, so a flood of fields costs nothing to refuse. */
	for (i = 0, nseg = 1; i < len; i++)
		if (s[i] == '&')
			nseg++;
	if (nseg > lim->max_fields)
		return ph_fail(diag, PH_E_TOOBIG,
		    "form: more than %zu fields", lim->max_fields);

	for (seg = s; seg <= s + len; seg = end + 1) {
		end = memchr(seg, '&', (size_t)(s + len - seg));
		if (end == NULL)
			end = s + len;
		if (end == seg) {
			rc = ph_fail(diag, PH_E_MALFORMED,
			    "form: empty field (stray '&')");
			goto fail;
		}
		if ((eq = memchr(seg, '=', (size_t)(end - seg))) == NULL) {
			rc = ph_fail(diag, PH_E_MALFORMED,
			    "form: a field without '='");
			goto fail;
		}
		if (eq == seg) {
			rc = ph_fail(diag, PH_E_MALFORMED,
			    "form: a field with an empty name");
			goto fail;
		}
		if ((rc = ph_form_unescape(seg, (size_t)(eq - seg),
		    lim->max_value, "name", &key, &klen, diag)) != PH_OK ||
		    (rc = ph_form_unescape(eq + 1, (size_t)(end - eq - 1),
		    lim->max_value, "value", &val, &vlen, diag)) != PH_OK)
			goto fail;
		/* Refuses an empty or NUL-bearing name, a NUL in a value, a
		 * name given twice (after decoding) and too many fields. */
		if ((rc = ph_kvlist_add(out, key, klen, val, vlen,
		    diag)) != PH_OK)
			goto fail;
		curl_free(key);
		curl_free(val);
		key = val = NULL;
		if (end == s + len)
			break;
	}
	return PH_OK;
fail:
	curl_free(key);
	curl_free(val);
	ph_kvlist_free(out);
	return rc;
}

int
ph_form_write(const struct ph_kvlist *l, struct ph_buf *out)
{
	char *k, *v;
	size_t i;

	ph_buf_append(out, "", 0);
	for (i = 0; i < l->n; i++) {
		if (strlen(l->items[i].key) > INT_MAX ||
		    l->items[i].val_len > INT_MAX)
			return out->err != PH_OK ? out->err :
			    (out->err = PH_E_TOOBIG);
		k = curl_easy_escape(NULL, l->items[i].key, 0);
		/* Length 0 makes libcurl measure the string: it is empty then
		 * (values hold no NUL). */
		v = curl_easy_escape(NULL, l->items[i].val,
		    (int)l->items[i].val_len);
		if (k == NULL || v == NULL) {
			curl_free(k);
			curl_free(v);
			return out->err != PH_OK ? out->err :
			    (out->err = PH_E_NOMEM);
		}
		if (i > 0)
			ph_buf_append(out, "&", 1);
		ph_buf_puts(out, k);
		ph_buf_append(out, "=", 1);
		ph_buf_puts(out, v);
		curl_free(k);
		curl_free(v);
	}
	return out->err;
}

int
ph_buf_pct(struct ph_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			ph_buf_append(b, s, 1);
		else
			ph_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	return b->err;
}

int
ph_form_hint(const struct ph_request *req, const struct ph_form_limits *lim,
    const char *field, const char *extra, char order_id[PH_ID_MAX + 1])
{
	struct ph_kvlist kv;
	const char *v;
	int rc;

	if (req == NULL)
		return PH_E_INTERNAL;
	if ((rc = ph_form_parse(req->body, req->body_len, lim, &kv,
	    NULL)) != PH_OK)
		return rc;
	v = ph_kvlist_get(&kv, field);
	rc = v != NULL ? ph_copy_token(order_id, PH_ID_MAX + 1, v, extra,
	    field, NULL) : PH_E_FIELD;
	ph_kvlist_free(&kv);
	return rc;
}
