/*
 * The unionpay plugin's private header: what its files share and the
 * functions one job offers another.  Files call down only: plugin.c (the
 * table and profiles) calls every job; notify.c and query.c build on
 * verify.c; statement.c reads the currency table of notify.c.  Nothing
 * here leaves the plugin: it is built with -fvisibility=hidden and exports
 * payhook_provider alone.
 */
#ifndef PAYHOOK_UNIONPAY_INT_H
#define PAYHOOK_UNIONPAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#define UP_BEIJING	28800	/* txnTime is Beijing time, UTC+8 */
#define UP_ORDER_MAX	40	/* orderId: alphanumeric, 8 to 40 */
#define UP_MERID_MAX	32	/* merId: 15 digits in practice */
#define UP_CERTID_MAX	64	/* a serial number in decimal */
#define UP_CN_MAX	256
#define UP_CACHE	8	/* verified signPubKeyCerts kept per profile */
#define UP_QUERY_PATH	"/gateway/api/queryTrans.do"
/* Parallel to the values the core hands profile_new(). */
enum up_conf {
	UP_CONF_MER_ID,
	UP_CONF_ROOT_CERT_FILE,
	UP_CONF_MIDDLE_CERT_FILE,
	UP_CONF_SIGNER_CN,
	UP_CONF_VERIFY_CERT_FILES,
	UP_CONF_SIGN_KEY_FILE,
	UP_CONF_SIGN_CERT_FILE,
	UP_CONF_QUERY_BIZ_TYPE,
	UP_CONF__MAX
};

/* A 5.0.0 verification certificate, chosen by its serial. */
struct up_vcert {
	char cert_id[UP_CERTID_MAX + 1];
	struct ph_cert *cert;
	int64_t not_before, not_after;
};

/* A signPubKeyCert that passed chain and name checks. */
struct up_cached {
	unsigned char id[PH_SHA256_LEN];	/* SHA-256 of its bytes */
	int64_t not_before, not_after;		/* the chain's window */
	int used;
};

struct up_ctx {
	char mer_id[UP_MERID_MAX + 1];
	char signer_cn[UP_CN_MAX + 1];
	struct ph_trust *trust;		/* the root, and the intermediate(s) */
	struct up_vcert *vcerts;
	size_t nvcerts;
	struct ph_key *sign_key;	/* NULL: no queries */
	char cert_id[UP_CERTID_MAX + 1];
	char query_biz_type[7];		/* bizType sent with queries */
	pthread_mutex_t lock;		/* guards the cache */
	struct up_cached cache[UP_CACHE];
	size_t cache_next;
};

/* Which message is verified: the two are signed over different strings
 * (verify.c, up_verify). */
enum up_kind {
	UP_NOTIFICATION,
	UP_ANSWER,
};

/* What a verified message says, read once. */
struct up_msg {
	struct ph_kvlist kv;
	int gbk;			/* encoding=GBK, else UTF-8 */
};

/* notify.c */
int up_amount(const struct up_msg *m, struct ph_event *ev,
    struct ph_diag *diag);
int up_txn_time(const struct up_msg *m, struct ph_event *ev,
    struct ph_diag *diag);
ph_parse_notify_fn up_parse_notify;
ph_ack_fn up_ack;
/* An ISO 4217 currency: UnionPay's numeric code, payhook's letters. */
struct up_currency {
	const char *num, *alpha;
};

extern const struct up_currency up_currencies[];
extern const char *const up_success_codes[];
extern const char *const up_busy_codes[];

/* plugin.c */
extern const struct ph_form_limits up_form_limits;
extern const char *const up_query_biz_types[];

/* query.c */
ph_call_request_fn up_query_request;
ph_call_response_fn up_query_response;
ph_notify_hint_fn up_notify_hint;

/* statement.c */
ph_statement_line_fn up_statement_line;

/* verify.c */
const char *up_get(const struct up_msg *m, const char *name);
int up_token(const struct up_msg *m, const char *name, char *dst, size_t cap,
    size_t max, struct ph_diag *diag);
const char *up_diag_text(const struct up_msg *m, const char *name, char *buf,
    size_t cap);
int up_open(struct up_ctx *ctx, struct up_msg *m, enum up_kind kind,
    int64_t now, struct ph_diag *diag);

#ifdef PH_UNITTEST
#include "unionpay_test.h"
#endif

#endif /* PAYHOOK_UNIONPAY_INT_H */
