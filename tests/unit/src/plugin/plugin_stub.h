/*
 * The do-nothing profile and acknowledgement of the broken-on-purpose
 * plugins the loader tests refuse: enough of a table to pass for a
 * plugin, so that only the flaw each one is built for is wrong.
 */
#ifndef PH_PLUGIN_STUB_H
#define PH_PLUGIN_STUB_H

#include <payhook/provider.h>

static const struct ph_conf_key keys[] = { { NULL } };

static int
p_new(const struct ph_conf *c, void **ctx, struct ph_diag *d)
{
	*ctx = NULL;
	return 0;
}

static void
p_free(void *ctx)
{
}

static void
p_ack(void *ctx, enum ph_ack_kind k, const char *r, struct ph_response *o)
{
	o->status = 200;
}

#endif /* PH_PLUGIN_STUB_H */
