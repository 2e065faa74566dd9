/* Provider notifications: the plugin verifies, the ledger applies, the
 * plugin answers. */
#ifndef PH_NOTIFY_H
#define PH_NOTIFY_H

#include "web/web.h"

void notify_handle(struct web_ctx *ctx, const struct conf_profile *profile,
    const struct web_request *req, struct web_response *resp);

/* POST /notify/<name>: the profile named, or 404 unknown_profile. */
web_handler notify_route;

#endif
