/*
 * The alipay plugin's private header: what its files share and the
 * functions one job offers another.  Files call down only: plugin.c (the
 * table and profiles) calls every job; trade.c and billget.c make their
 * calls through gateway.c, which, like statement.c, builds on the
 * signatures and parsers of notify.c.  Nothing here leaves the plugin:
 * it is built with -fvisibility=hidden and exports payhook_provider alone.
 */
#ifndef PAYHOOK_ALIPAY_INT_H
#define PAYHOOK_ALIPAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#define ALI_BEIJING	28800	/* gmt_* and timestamps: UTC+8 */
#define ALI_APPID_MAX	32
#define ALI_SELLER_MAX	32	/* "2088" and 12 digits in practice */
#define ALI_ORDER_EXTRA	"_-|*.:"	/* what payhook takes in order ids */
#define ALI_ID_EXTRA	"_-"
#define ALI_NOTIFY_ID_MAX 128
#define ALI_PATH	"/gateway.do"
#define ALI_BILL_HOST	"dwbillcenter.alipay.com"	/* bill links */
#define ALI_FORM_CT	"application/x-www-form-urlencoded;charset=utf-8"
#define ALI_LINE_MAX	(16 * 1024)	/* one statement line, as UTF-8 */
#define ALI_COLS_MAX	64
/* Parallel to the values the core hands profile_new(). */
enum ali_conf {
	ALI_CONF_APP_ID,
	ALI_CONF_SELLER_ID,
	ALI_CONF_ALIPAY_PUBLIC_KEY_FILE,
	ALI_CONF_APP_PRIVATE_KEY_FILE,
	ALI_CONF__MAX
};

struct ali_ctx {
	char app_id[ALI_APPID_MAX + 1];
	char seller_id[ALI_SELLER_MAX + 1];
	struct ph_key *alipay_key;	/* verifies notifications, answers */
	struct ph_key *app_key;		/* signs requests; NULL: none */
};

/* What an outbound call is, for the names of its answer. */
struct ali_method {
	const char *method;		/* "alipay.trade.query" */
	const char *node;		/* "alipay_trade_query_response" */
};

struct json_t;

/* billget.c */
ph_statement_request_fn ali_statement_request;
ph_statement_response_fn ali_statement_response;

/* gateway.c */
int ali_set_str(struct json_t *o, const char *k, const char *v);
int ali_build(const struct ali_ctx *ctx, const char *method,
    const struct json_t *biz, int64_t now, struct ph_http_request *out,
    struct ph_diag *diag);
int ali_open_answer(const struct ali_ctx *ctx, const struct ali_method *m,
    const struct ph_http_response *in, struct json_t **root,
    const struct json_t **resp, struct ph_diag *diag);
int ali_provider_error(const struct json_t *r, const char *what,
    int verified, struct ph_diag *diag);
const char *ali_code(const struct json_t *r, const char **sub);

/* notify.c */
int ali_verify(const struct ali_ctx *ctx, const char *b64, size_t b64_len,
    const void *msg, size_t msg_len, struct ph_diag *diag);
int ali_sign(const struct ali_ctx *ctx, const void *msg, size_t msg_len,
    struct ph_buf *out, struct ph_diag *diag);
int ali_digits(const char *s, size_t n);
int ali_time_text(int64_t t, char out[20]);
int ali_yuan(const char *s, size_t len, int64_t *out);
int ali_yuan_signed(const char *s, size_t len, int64_t *out);
const char *ali_diag_text(const char *v, char *buf, size_t cap);
int ali_check_currency(const char *trans, struct ph_diag *diag);
ph_parse_notify_fn ali_parse_notify;
ph_ack_fn ali_ack;
extern const char *const ali_paid_states[];

/* plugin.c */
extern const struct ph_form_limits ali_form_limits;
extern const struct ph_json_limits ali_json_limits;
extern const struct ali_method ali_query;
extern const struct ali_method ali_close;
extern const struct ali_method ali_refund;
extern const struct ali_method ali_refund_query;
extern const struct ali_method ali_bill_url;

/* statement.c */
ph_statement_line_fn ali_statement_line;

/* trade.c */
ph_call_request_fn ali_query_request;
ph_call_request_fn ali_close_request;
ph_refund_request_fn ali_refund_request;
ph_call_response_fn ali_query_response;
ph_call_response_fn ali_close_response;
ph_refund_response_fn ali_refund_response;

#ifdef PH_UNITTEST
#include "alipay_test.h"
#endif

#endif /* PAYHOOK_ALIPAY_INT_H */
