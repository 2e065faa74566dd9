/*
 * What a provider's table entries do on the way in and out: bound the
 * body of a notification, check the order a call names, map a state the
 * provider names to an event, and give nothing half-filled when they
 * fail.
 */
#include <string.h>

#include <payhook/sdk.h>

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
