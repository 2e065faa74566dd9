/*
 * Status names, one-line diagnostics, configuration look-up, and what a
 * provider's table entries do on the way in and out.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <payhook/sdk.h>

static const char *const ph_status_names[PH_E__MAX] = {
	[PH_OK] = "success",
	[PH_E_NOMEM] = "out of memory",
	[PH_E_MALFORMED] = "malformed input",
	[PH_E_TOOBIG] = "input too large",
	[PH_E_FIELD] = "missing or invalid field",
	[PH_E_SIGNATURE] = "signature verification failed",
	[PH_E_MERCHANT] = "addressed to another merchant",
	[PH_E_UNSUPPORTED] = "not supported",
	[PH_E_CONFIG] = "configuration error",
	[PH_E_IO] = "input/output error",
	[PH_E_STORE] = "storage error",
	[PH_E_STORE_FULL] = "storage full",
	[PH_E_NOTFOUND] = "not found",
	[PH_E_CONFLICT] = "conflicting record",
	[PH_E_PLUGIN] = "plugin refused to load",
	[PH_E_INTERNAL] = "internal error",
	[PH_E_PROVIDER] = "provider answered with an error",
	[PH_E_UNAVAILABLE] = "provider unreachable",
};

const char *
ph_strerror(int status)
{
	if (status < 0 || status >= PH_E__MAX ||
	    ph_status_names[status] == NULL)
		return "unknown error";
	return ph_status_names[status];
}

int
ph_fail(struct ph_diag *diag, int status, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	if (diag == NULL)
		return status;
	va_start(ap, fmt);
	if (vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap) < 0)
		diag->msg[0] = '\0';
	va_end(ap);
	/*
	 * Diagnostics go to logs and into provider answers, and the format
	 * arguments may carry bytes from a request: keep them one line of
	 * printable ASCII.
	 */
	for (i = 0; diag->msg[i] != '\0'; i++) {
		unsigned char c = (unsigned char)diag->msg[i];

		if (c < 0x20 || c > 0x7e)
			diag->msg[i] = '?';
	}
	return status;
}

const struct ph_conf_value *
ph_conf_get(const struct ph_conf *conf, const char *name)
{
	size_t i;

	if (conf == NULL || name == NULL || conf->values == NULL)
		return NULL;
	for (i = 0; i < conf->nvalues; i++)
		if (conf->values[i].name != NULL &&
		    strcmp(conf->values[i].name, name) == 0)
			return &conf->values[i];
	return NULL;
}

const struct ph_conf_value *
ph_conf_given(const struct ph_conf *conf, const char *name)
{
	const struct ph_conf_value *v = ph_conf_get(conf, name);

	return v != NULL && v->present ? v : NULL;
}

int
ph_conf_token(const struct ph_conf *conf, const char *name, char *dst,
    size_t cap, const char *extra, struct ph_diag *diag)
{
	const struct ph_conf_value *v = ph_conf_given(conf, name);

	if (v == NULL || v->str == NULL)
		return ph_fail(diag, PH_E_CONFIG, "%s is required", name);
	if (ph_copy_token(dst, cap, v->str, extra, name, diag) != PH_OK)
		return PH_E_CONFIG;
	return PH_OK;
}

int
ph_in(const char *s, const char *const *set)
{
	size_t i;

	for (i = 0; s != NULL && set != NULL && set[i] != NULL; i++)
		if (strcmp(s, set[i]) == 0)
			return 1;
	return 0;
}

int
ph_secret_check(const struct ph_blob *b, size_t min, size_t max,
    const char *what, struct ph_diag *diag)
{
	size_t i, len = b != NULL && b->data != NULL ? b->len : 0;

	if (len < min || len > max) {
		if (min == max)
			return ph_fail(diag, PH_E_CONFIG, "%s: the key must be "
			    "exactly %zu characters, the file holds %zu bytes",
			    what, min, len);
		return ph_fail(diag, PH_E_CONFIG, "%s: the key must be %zu to "
		    "%zu bytes, the file holds %zu", what, min, max, len);
	}
	for (i = 0; i < len; i++)
		if (b->data[i] < 0x21 || b->data[i] > 0x7e)
			return ph_fail(diag, PH_E_CONFIG, "%s: the key must be "
			    "printable ASCII without spaces (byte %zu is not)",
			    what, i + 1);
	return PH_OK;
}

/* ---- Table entries ----------------------------------------------------- */

/*
 * What a provider's table entries do on the way in and out: bound the
 * body of a notification, check the order a call names, map a state the
 * provider names to an event, and give nothing half-filled when they
 * fail.
 */
int
ph_clear_on_fail(int rc, void *out, size_t size)
{
	if (rc != PH_OK && out != NULL)
		memset(out, 0, size);
	return rc;
}

int
ph_body_check(const struct ph_request *req, size_t max,
    struct ph_diag *diag)
{
	if (req->body == NULL || req->body_len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "empty body");
	if (req->body_len > max)
		return ph_fail(diag, PH_E_TOOBIG, "body larger than %zu bytes",
		    max);
	return PH_OK;
}

int
ph_order_check(const struct ph_order_ref *order, size_t max,
    const char *extra, const char *what, struct ph_diag *diag)
{
	if (order == NULL || order->order_id == NULL ||
	    !ph_token_valid(order->order_id, strlen(order->order_id), max,
	    extra))
		return ph_fail(diag, PH_E_FIELD, "order id is not a valid %s",
		    what);
	return PH_OK;
}

const struct ph_state *
ph_state_find(const struct ph_state *table, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && table[i].name != NULL; i++)
		if (strcmp(name, table[i].name) == 0)
			return &table[i];
	return NULL;
}
