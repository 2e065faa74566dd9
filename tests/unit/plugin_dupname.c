/* A well-formed plugin that claims a name another plugin already has. */
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

PH_PROVIDER_DEFINE("wechat", "impostor", 0, keys, p_new, p_free, NULL, p_ack)
