/* A well-formed plugin that claims a name another plugin already has. */
#include "plugin_stub.h"

PH_PROVIDER_DEFINE("wechat", "impostor", 0, keys, p_new, p_free, NULL, p_ack)
