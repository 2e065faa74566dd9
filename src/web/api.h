/* The merchant API: JSON in and out, behind the bearer token. */
#ifndef PH_API_H
#define PH_API_H

#include "web/fc.h"

void api_create_order(struct fc_ctx *ctx, const struct fc_request *req,
    struct fc_response *resp);
void api_get_order(struct fc_ctx *ctx, const char *order_id,
    struct fc_response *resp);
/* POST /orders/<id>/query: ask the provider now ("I have paid"). */
void api_query_order(struct fc_ctx *ctx, const char *order_id,
    const struct fc_request *req, struct fc_response *resp);
/* POST /orders/<id>/attempts: the pre-payment guard. */
void api_attempt(struct fc_ctx *ctx, const char *order_id,
    const struct fc_request *req, struct fc_response *resp);
/* POST /orders/<id>/refunds: the merchant asks for a refund. */
void api_refund(struct fc_ctx *ctx, const char *order_id,
    const struct fc_request *req, struct fc_response *resp);
void api_events(struct fc_ctx *ctx, const struct fc_request *req,
    struct fc_response *resp);
void api_health(struct fc_ctx *ctx, struct fc_response *resp);
/* GET /metrics: Prometheus text format. */
void api_metrics(struct fc_ctx *ctx, struct fc_response *resp);

#endif
