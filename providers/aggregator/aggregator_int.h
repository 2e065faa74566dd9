/*
 * The aggregator plugin's private header: what its files share and the
 * functions one job offers another.  Files call down only: plugin.c (the
 * table and profiles) calls every job; query.c builds on the signature
 * check and the mapping of notify.c; statement.c calls no other file.
 * Nothing here leaves the plugin: it is built with -fvisibility=hidden
 * and exports payhook_provider alone.
 */
#ifndef PAYHOOK_AGGREGATOR_INT_H
#define PAYHOOK_AGGREGATOR_INT_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#define AGG_BODY_MAX		(64 * 1024)
#define AGG_ANSWER_MAX		(256 * 1024)
#define AGG_SECRET_MIN		16
#define AGG_SECRET_MAX		1024
#define AGG_API_KEY_MAX		256
#define AGG_SIG_MAX		512	/* RSA-4096 */
#define AGG_V1_MAX		16	/* v1 signatures in one header */
#define AGG_TOLERANCE_DEF	300
#define AGG_TEXT_MAX		96
#define AGG_TIME_MAX		253402300799LL	/* 9999-12-31T23:59:59Z */
#define AGG_RSA_HEADER		"X-Pingplusplus-Signature"
#define AGG_HMAC_HEADER_DEF	"X-Signature"
/* Ids (evt_..., ch_..., re_...) and event types (charge.succeeded). */
#define AGG_ID_EXTRA		"_-"
/* A query's cursor that starts with it lists the order's charges after
 * the one its attempt named was found unpaid (never in a charge id). */
#define AGG_LIST_MARK		"+"
#define AGG_TYPE_EXTRA		"._"
/* Merchant order numbers: what the core accepts as an order id. */
#define AGG_ORDER_EXTRA		"_-|*.:"
/* The charge list a query reads: a page of the most Ping++ gives, from a
 * little before the order was registered (a charge may be made just
 * before), at most PH_QUERY_PAGES_MAX pages. */
#define AGG_PAGE_LIMIT		100
#define AGG_CREATED_MARGIN_S	600
enum agg_mode {
	AGG_MODE_RSA,
	AGG_MODE_HMAC,
	AGG_MODE__MAX
};

/* Parallel to the values the core hands profile_new(). */
enum agg_conf {
	AGG_CONF_SIGNATURE,
	AGG_CONF_APP_ID,
	AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE,
	AGG_CONF_WEBHOOK_SECRET_FILE,
	AGG_CONF_SIGNATURE_HEADER,
	AGG_CONF_TOLERANCE_S,
	AGG_CONF_LIVEMODE,
	AGG_CONF_API_KEY_FILE,
	AGG_CONF__MAX
};

struct agg_ctx {
	enum agg_mode mode;
	char app_id[PH_ID_MAX + 1];
	int livemode;
	struct ph_key *pubkey;		/* rsa */
	char header[64];		/* hmac: signature header name */
	int64_t tolerance;		/* hmac */
	unsigned char *secret;		/* hmac: owned, cleansed on free */
	size_t secret_len;
	char *api_key;			/* NUL-terminated; NULL: no queries */
	size_t api_key_len;
};

/* notify.c */
int agg_verify_rsa(const struct agg_ctx *ctx, const char *sig64,
    const unsigned char *body, size_t len, struct ph_diag *diag);
int agg_object_is(const struct json_t *o, const char *want, int required,
    struct ph_diag *diag);
int agg_charge_ours(const struct agg_ctx *ctx, const struct json_t *ch,
    struct ph_diag *diag);
int agg_charge(const struct agg_ctx *ctx, const struct json_t *ch,
    int64_t created, struct ph_event *ev, int *paid, struct ph_diag *diag);
ph_parse_notify_fn agg_parse_notify;
ph_ack_fn agg_ack;

/* plugin.c */
extern const struct ph_json_limits agg_event_limits;
extern const struct ph_json_limits agg_answer_limits;

/* query.c */
ph_call_request_fn agg_query_request;
ph_call_response_fn agg_query_response;
ph_notify_hint_fn agg_notify_hint;

/* statement.c */
ph_statement_line_fn agg_statement_line;

#ifdef PH_UNITTEST
#include "aggregator_test.h"
#endif

#endif /* PAYHOOK_AGGREGATOR_INT_H */
