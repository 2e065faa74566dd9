/* Operators' endpoints: liveness, readiness and metrics. */
#ifndef PH_STATUS_H
#define PH_STATUS_H

#include "web/web.h"

/* GET /healthz: 200 while the store can be read. */
void status_health(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp);
/* GET /readyz: 200 {"status":"ready"}, or 503 {"status":"not_ready",
 * "reasons":["code: text", ...]}. */
void status_ready(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp);
/* GET /metrics: Prometheus text format. */
void status_metrics(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp);

#endif
