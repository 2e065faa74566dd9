/*
 * The front controller: one request in, one response out, routed by a
 * table.  It knows nothing of FastCGI (fcgi_main.c adapts libfcgi to it),
 * so tests can drive it directly.
 */
#ifndef PH_FC_H
#define PH_FC_H

#include "web/web.h"

/* Every route, in the order the table lists them. */
enum fc_route {
	FC_ROUTE_HEALTHZ,
	FC_ROUTE_HEALTHZ_HEAD,
	FC_ROUTE_READYZ,
	FC_ROUTE_READYZ_HEAD,
	FC_ROUTE_METRICS,
	FC_ROUTE_NOTIFY,
	FC_ROUTE_ORDERS,
	FC_ROUTE_ORDER,
	FC_ROUTE_ORDER_QUERY,
	FC_ROUTE_ORDER_ATTEMPTS,
	FC_ROUTE_ORDER_REFUNDS,
	FC_ROUTE_ORDER_REFUND_LIST,
	FC_ROUTE_REFUND,
	FC_ROUTE_REFUND_CANCEL,
	FC_ROUTE_EVENTS,
	FC_ROUTE__MAX
};

/* The route's name, as logs and metrics label it ("order", "notify"). */
const char *fc_route_name(enum fc_route r);

void fc_handle(struct web_ctx *ctx, const struct web_request *req,
    struct web_response *resp);

#endif
