/*
 * The wechat plugin's private header: what its files share (the profile,
 * the configuration keys, limits) and the functions one job offers
 * another.  Files call down only: plugin.c (the table) calls every job;
 * refund.c and v3close.c build on v2.c and v3.c; bill.c, v2.c and v3.c
 * call no other file of the plugin.  Nothing here leaves the plugin: it is built with
 * -fvisibility=hidden and exports payhook_provider alone.
 */
#ifndef PAYHOOK_WECHAT_INT_H
#define PAYHOOK_WECHAT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#define WX_KEY_LEN	32	/* an APIv2 key is exactly 32 characters */
#define WX_ID_MAX	32	/* appid, mch_id, out_trade_no, transaction_id */
#define WX_BEIJING	28800	/* time_end is in UTC+8 */

enum wx_sign_type {
	WX_SIGN_MD5,
	WX_SIGN_HMAC_SHA256,
	WX_SIGN__MAX
};

enum wx_conf {
	WX_CONF_APPID,
	WX_CONF_MCH_ID,
	WX_CONF_API_KEY_FILE,
	WX_CONF_SIGN_TYPE,
	WX_CONF_API_VERSION,
	WX_CONF_APIV3_KEY_FILE,
	WX_CONF_PLATFORM_CERT_FILES,
	WX_CONF_PLATFORM_PUBLIC_KEY_FILE,
	WX_CONF_PLATFORM_PUBLIC_KEY_ID,
	WX_CONF_MERCHANT_PRIVATE_KEY_FILE,
	WX_CONF_MERCHANT_SERIAL,
	WX_CONF_TIMESTAMP_TOLERANCE_S,
	WX_CONF_REFUND_NOTIFY_URL,
	WX_CONF__MAX
};

/* Extra characters WeChat allows in out_trade_no. */
#define WX_ORDER_EXTRA "_-|*"
/* err_code values look like SYSTEMERROR or USER_ERR. */
#define WX_ERR_EXTRA "_-"

struct wx_ctx {
	char appid[WX_ID_MAX + 1];
	char mch_id[WX_ID_MAX + 1];
	unsigned char key[WX_KEY_LEN];
	enum wx_sign_type sign_type;
	int api_version;		/* 2 or 3 */
	struct wx3_ctx *v3;		/* api_version 3 only, else NULL */
	char refund_notify_url[257];	/* "" when not configured */
};

#define WX_QUERY_PATH	"/pay/orderquery"
#define WX_CLOSE_PATH	"/pay/closeorder"
#define WX_BILL_PATH	"/pay/downloadbill"
#define WX_NONCE_BYTES	16	/* 32 hex characters */
#define WX_TEXT_MAX	128	/* provider text quoted in a diagnostic */

#define WX3_BODY_MAX		(64 * 1024)
#define WX3_KEY_LEN		32	/* the APIv3 key */
#define WX3_KEYS_MAX		8	/* platform keys at once */
#define WX3_SERIAL_MAX		64
#define WX3_NONCE_MAX		64
#define WX3_SIG_MAX		512	/* RSA-4096 */
#define WX3_GCM_IV_LEN		12
#define WX3_AAD_MAX		256
#define WX3_TOLERANCE_DEF	300
#define WX3_NONCE_BYTES		16	/* 32 upper-case hex characters */
#define WX3_TEXT_MAX		96	/* provider text in a diagnostic */
#define WX3_SCHEME		"WECHATPAY2-SHA256-RSA2048"
#define WX3_PUB_KEY_PREFIX	"PUB_KEY_ID_"
#define WX3_QUERY_PATH		"/v3/pay/transactions/out-trade-no/"
#define WX3_BILL_PATH		"/v3/bill/tradebill"
/* Notification ids ("EV-2018022511223320873"), refund ids, event types. */
#define WX3_ID_EXTRA		"_-"
#define WX3_TYPE_EXTRA		"._"
/* out_refund_no: [0-9A-Za-z_-|*@]. */
#define WX3_REFUND_EXTRA	"_-|*@"

struct wx3_key {
	char serial[WX3_SERIAL_MAX + 1];	/* as Wechatpay-Serial has it */
	const struct ph_key *key;	/* the certificate's, or pubkey */
	struct ph_key *pubkey;		/* the public key; NULL for a cert */
	struct ph_cert *cert;		/* certificate; NULL for the key */
	int64_t not_before, not_after;	/* the certificate's */
};

struct wx3_ctx {
	unsigned char apiv3_key[WX3_KEY_LEN];
	struct wx3_key keys[WX3_KEYS_MAX];
	size_t nkeys;
	int64_t tolerance;
	struct ph_key *merchant_key;		/* NULL: no outbound calls */
	char merchant_serial[WX3_SERIAL_MAX + 1];
};

/* Lines joined as WeChat signs them: each one followed by "\n". */
struct wx3_line {
	const void *p;
	size_t n;
};

#define WX_REQ_INFO_MAX		(16 * 1024)	/* decoded bytes */
#define WX_AES_BLOCK		16
#define WX_REFUND_ID_MAX	64	/* out_refund_no: String(64) */
#define WX_REFUND_PATH		"/secapi/pay/refund"
#define WX3_REFUND_PATH		"/v3/refund/domestic/refunds"
#define WX_REFUNDQUERY_PATH	"/pay/refundquery"
#define WX_REFUNDQUERY_MAX	50	/* refunds one refundquery answer lists */
#define WX_REFUND_DESC_MAX	80	/* refund_desc, reason: 80 bytes */
/* The flat XML of API v2 messages, and the names of the v2 signature
 * types (v2.c). */
extern const struct ph_xml_limits wx_xml_limits;
extern const struct ph_xml_limits wx_answer_limits;
extern const char *const wx_sign_names[WX_SIGN__MAX + 1];
/* The v3 envelope and its decrypted resource (v3.c). */
extern const struct ph_json_limits wx3_envelope_limits;
extern const struct ph_json_limits wx3_resource_limits;

/* v2.c */
const char *wx_get(const struct ph_kvlist *kv, const char *name);
int wx_sign(const struct wx_ctx *ctx, const struct ph_kvlist *kv, char *hex,
    struct ph_diag *diag);
int wx_kv_add(struct ph_kvlist *kv, const char *k, const char *v,
    struct ph_diag *diag);
int wx_request_head(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    struct ph_kvlist *kv, struct ph_diag *diag);
int wx_request_sign_type(const struct wx_ctx *ctx, struct ph_kvlist *kv,
    struct ph_diag *diag);
int wx_request_xml(const struct wx_ctx *ctx, const char *path,
    struct ph_kvlist *kv, struct ph_http_request *out, struct ph_diag *diag);
int wx_order_check(const struct ph_order_ref *order, struct ph_diag *diag);
int wx_order_answer_ok(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag);
int wx_copy_id(char *dst, size_t cap, const struct ph_kvlist *kv,
    const char *name, const char *extra, struct ph_diag *diag);
int wx_result(const struct ph_kvlist *kv, const char *name, int *success,
    struct ph_diag *diag);
int wx_pay_notify(const struct wx_ctx *ctx, struct ph_kvlist *kv,
    struct ph_event *ev, struct ph_diag *diag);
int wx2_parse_notify(const struct wx_ctx *ctx, const struct ph_request *req,
    struct ph_event *ev, struct ph_diag *diag);
void wx2_ack(enum ph_ack_kind kind, const char *reason,
    struct ph_response *out);
ph_call_request_fn wx_query_request;
ph_call_request_fn wx_close_request;
int wx_query_parse(const struct wx_ctx *ctx,
    const struct ph_http_response *in, const char *what, struct ph_kvlist *kv,
    int *res_ok, struct ph_diag *diag);
int wx_query_err_code(const struct ph_kvlist *kv, const char **err,
    struct ph_diag *diag);
int wx_query_provider_error(const struct ph_kvlist *kv, const char *what,
    const char *err, struct ph_diag *diag);
ph_call_response_fn wx_query_response;
ph_call_response_fn wx_close_response;
int wx_query_event(const struct ph_order_ref *order, enum ph_event_kind kind,
    const char *tag, const char *state, struct ph_event *ev,
    struct ph_diag *diag);

/* v3.c */
int wx3_version(const struct ph_conf *conf, int *version, struct ph_diag *diag);
void wx3_ctx_free(struct wx3_ctx *v3);
int wx3_profile_new(const struct ph_conf *conf, struct wx_ctx *ctx,
    struct ph_diag *diag);
int wx3_verify(const struct wx3_ctx *v3, const struct ph_header *h, size_t nh,
    const unsigned char *body, size_t len, int64_t now, const char *what,
    struct ph_diag *diag);
int wx3_time(const char *s, int64_t *out);
int wx3_parse_notify(const struct wx_ctx *ctx, const struct ph_request *req,
    struct ph_event *ev, struct ph_diag *diag);
void wx3_ack(enum ph_ack_kind kind, const char *reason,
    struct ph_response *out);
int wx3_authorization(const struct wx_ctx *ctx, const char *method,
    const char *path, int64_t now, const char *nonce,
    const unsigned char *body, size_t body_len, struct ph_buf *out,
    struct ph_diag *diag);
int wx3_request_url(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const char *path, const char *target,
    struct ph_http_request *out, struct ph_diag *diag);
int wx3_request_signed(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const char *path, struct ph_http_request *out,
    struct ph_diag *diag);
int wx3_can_sign(const struct wx_ctx *ctx, const char *what,
    struct ph_diag *diag);
int wx3_request_id(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const char *base, const char *id, const char *tail,
    struct ph_http_request *out, struct ph_diag *diag);
int wx3_order_call_ok(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_call_ctx *cc,
    struct ph_http_request *out, const char *what, struct ph_diag *diag);
int wx3_order_request(const struct wx_ctx *ctx, const struct ph_call_ctx *cc,
    const char *method, const struct ph_order_ref *order, const char *tail,
    struct ph_http_request *out, struct ph_diag *diag);
struct json_t;
void wx3_error_of(const struct ph_http_response *in, struct json_t **doc,
    const char **code, char ctext[WX3_TEXT_MAX + 1],
    char mtext[WX3_TEXT_MAX + 1]);
int wx3_query_request(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag);
int wx3_query_response(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag);

/* v3close.c */
int wx3_close_request(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag);
int wx3_close_response(const struct wx_ctx *ctx,
    const struct ph_order_ref *order, const struct ph_http_response *in,
    struct ph_event *ev, struct ph_diag *diag);

/* refund.c */
int wx_refund_url(const struct ph_conf *conf, struct wx_ctx *ctx,
    struct ph_diag *diag);
int wx_refund_notify(const struct wx_ctx *ctx, const struct ph_kvlist *kv,
    struct ph_event *ev, struct ph_diag *diag);
ph_refund_request_fn wx_refund_request;
ph_refund_response_fn wx_refund_response;

/* bill.c */
ph_statement_line_fn wx_statement_line;

/* billget.c */
ph_statement_request_fn wx_statement_request;
ph_statement_response_fn wx_statement_response;

#ifdef PH_UNITTEST
#include "wechat_test.h"
#endif

#endif /* PAYHOOK_WECHAT_INT_H */
