/* Operators' endpoints: liveness, readiness and metrics. */
#ifndef PH_STATUS_H
#define PH_STATUS_H

#include "web/web.h"

/* GET /healthz: 200 while the store can be read. */
web_handler status_health;
/* GET /readyz: 200 {"status":"ready"}, or 503 {"status":"not_ready",
 * "reasons":["code: text", ...]}. */
web_handler status_ready;
/* GET /metrics: Prometheus text format. */
web_handler status_metrics;

#endif
