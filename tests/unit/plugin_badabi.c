/*
 * A plugin built against the contract before this one (ABI 1, whose
 * request path was 512 bytes): the loader must refuse it.
 */
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

static const struct ph_provider table = {
	.abi = PH_PROVIDER_ABI - 1,
	.name = "badabi",
	.conf_keys = keys,
	.profile_new = p_new,
	.profile_free = p_free,
	.ack = p_ack,
};

const struct ph_provider *payhook_provider(void);

const struct ph_provider *
payhook_provider(void)
{
	return &table;
}
