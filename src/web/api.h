/* The merchant API: JSON in and out, behind the bearer token. */
#ifndef PH_API_H
#define PH_API_H

#include "web/web.h"

/* POST /orders. */
web_handler api_create_order;
/* GET /orders/<id>. */
web_handler api_get_order;
/* POST /orders/<id>/query: ask the provider now ("I have paid"). */
web_handler api_query_order;
/* POST /orders/<id>/attempts: the pre-payment guard. */
web_handler api_attempt;
/* POST /orders/<id>/refunds: the merchant asks for a refund. */
web_handler api_refund;
/* POST /refunds/<id>/cancel: a refund never sent is cancelled. */
web_handler api_cancel_refund;
/* GET /refunds/<id>. */
web_handler api_get_refund;
/* GET /orders/<id>/refunds: {"refunds": [...]}. */
web_handler api_order_refunds;
/* GET /events?after=&limit=. */
web_handler api_events;

#endif
