/* Operators' endpoints: liveness and metrics. */
#ifndef PH_STATUS_H
#define PH_STATUS_H

#include "web/web.h"

/* GET /healthz: 200 while the store can be read. */
void status_health(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp);
/* GET /metrics: Prometheus text format. */
void status_metrics(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp);

#endif
