/*
 * A plugin built against the contract before this one (ABI 1, whose
 * request path was 512 bytes): the loader must refuse it.
 */
#include "plugin_stub.h"

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
