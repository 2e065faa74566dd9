/* Provider notifications: the plugin verifies, the ledger applies, the
 * plugin answers. */
#ifndef PH_NOTIFY_H
#define PH_NOTIFY_H

#include "web/fc.h"

void notify_handle(struct fc_ctx *ctx, const struct conf_profile *profile,
    const struct fc_request *req, struct fc_response *resp);

#endif
