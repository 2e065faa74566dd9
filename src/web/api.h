/* The merchant API: JSON in and out, behind the bearer token. */
#ifndef PH_API_H
#define PH_API_H

#include "web/web.h"

/* Every handler takes the path's parameter (an order id, or NULL). */
void api_create_order(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp);
void api_get_order(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp);
/* POST /orders/<id>/query: ask the provider now ("I have paid"). */
void api_query_order(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp);
/* POST /orders/<id>/attempts: the pre-payment guard. */
void api_attempt(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp);
/* POST /orders/<id>/refunds: the merchant asks for a refund. */
void api_refund(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp);
/* POST /refunds/<id>/cancel: a refund never sent is cancelled. */
void api_cancel_refund(struct web_ctx *ctx, const struct web_request *req,
    const char *refund_id, struct web_response *resp);
/* GET /refunds/<id>. */
void api_get_refund(struct web_ctx *ctx, const struct web_request *req,
    const char *refund_id, struct web_response *resp);
/* GET /orders/<id>/refunds: {"refunds": [...]}. */
void api_order_refunds(struct web_ctx *ctx, const struct web_request *req,
    const char *order_id, struct web_response *resp);
void api_events(struct web_ctx *ctx, const struct web_request *req,
    const char *unused, struct web_response *resp);

#endif
