/*
 * payhook provider plugin contract.
 *
 * A provider plugin is a shared object exporting exactly one symbol,
 * payhook_provider(), which returns a const table (struct ph_provider)
 * whose first field is the ABI version.  Write the table with
 * PH_PROVIDER_DEFINE() so no field is forgotten.
 *
 * Plugins are sans-I/O: they turn bytes into verified, normalised events
 * and requests into bytes.  They never open files or sockets, never touch
 * the store and keep no global state; everything they know about a merchant
 * account lives in the per-profile context made by profile_new().  The core
 * reads every file a profile names (keys, certificates) and hands the plugin
 * the bytes.
 *
 * Verification has one "valid" answer: parse_notify() returns PH_OK only
 * for a notification whose signature (or MAC, or decryption) checked out.
 * Every other outcome, including allocation failure, is a refusal.
 */
#ifndef PAYHOOK_PROVIDER_H
#define PAYHOOK_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bumped whenever struct ph_provider or anything it reaches changes.
 * 2: ph_http_request.path of PH_HTTP_PATH_MAX bytes (a query string of
 * signed parameters fits), ph_order_ref.cursor, PH_EV_QUERY_MORE and
 * ph_event.cursor (queries that read a list page by page).
 * 3: statement_request, statement_response and download_hosts
 * (PH_CAP_DOWNLOAD: statements payhook fetches itself).
 */
#define PH_PROVIDER_ABI 3

/* The exported symbol's name, as the loader looks it up. */
#define PH_PROVIDER_SYMBOL "payhook_provider"

/* The project's one error enum; 0 is success.  ph_strerror() names each. */
enum ph_status {
	PH_OK = 0,
	PH_E_NOMEM,		/* allocation failed */
	PH_E_MALFORMED,		/* input is not well-formed */
	PH_E_TOOBIG,		/* input exceeds a configured bound */
	PH_E_FIELD,		/* a required field is missing or invalid */
	PH_E_SIGNATURE,		/* signature, MAC or decryption failed */
	PH_E_MERCHANT,		/* addressed to another merchant or app */
	PH_E_UNSUPPORTED,	/* version, algorithm or operation not supported */
	PH_E_CONFIG,		/* configuration error */
	PH_E_IO,		/* file or network I/O failed */
	PH_E_STORE,		/* storage error */
	PH_E_STORE_FULL,	/* storage map is full */
	PH_E_NOTFOUND,		/* no such record */
	PH_E_CONFLICT,		/* exists with different content */
	PH_E_PLUGIN,		/* plugin refused to load */
	PH_E_INTERNAL,		/* a bug: an invariant did not hold */
	PH_E_PROVIDER,		/* the provider answered with an error; ask later */
	PH_E_UNAVAILABLE,	/* the provider could not be reached */
	PH_E__MAX
};

/* Human-readable text for a status; never NULL. */
const char *ph_strerror(int status);

/*
 * A diagnostic a plugin (or the core) fills when it refuses something:
 * one line, no newline, meant for the log and, trimmed, for the provider's
 * failure answer.  Never contains secrets.
 */
#define PH_DIAG_MAX 256
struct ph_diag {
	char msg[PH_DIAG_MAX];
};

/* ---- Configuration handed to a profile ------------------------------- */

enum ph_conf_type {
	PH_CONF_STRING,		/* the value as written */
	PH_CONF_INT,		/* decimal integer within [min, max] */
	PH_CONF_BOOL,		/* yes/no, true/false, on/off, 1/0 */
	PH_CONF_ENUM,		/* one of choices[] */
	PH_CONF_FILE,		/* a path; the core reads the file into data/len */
	PH_CONF_SECRET_FILE,	/* as FILE, refused if group/other may read it;
				 * one trailing newline is dropped */
	PH_CONF_FILES,		/* space-separated paths; read into files[] */
	PH_CONF__MAX
};

/* A key a plugin accepts in its profiles.  Arrays end with name == NULL. */
struct ph_conf_key {
	const char *name;
	enum ph_conf_type type;
	int required;
	const char *const *choices;	/* PH_CONF_ENUM: NULL-terminated */
	long long min, max;		/* PH_CONF_INT */
	const char *def;		/* default when absent, or NULL */
	const char *help;		/* one line for docs and `payhook check` */
};

struct ph_blob {
	const unsigned char *data;
	size_t len;
};

/*
 * A configured value.  All pointers are owned by the core and stay valid
 * until profile_free() returns, so a plugin may keep them in its context.
 */
struct ph_conf_value {
	const char *name;
	int present;		/* given in the file or by a default */
	const char *str;	/* the text as written (or default); "" if absent */
	long long num;		/* INT and BOOL */
	struct ph_blob blob;	/* FILE and SECRET_FILE: the file's bytes, NUL
				 * terminated one past len */
	const struct ph_blob *files;	/* FILES */
	size_t nfiles;
};

struct ph_conf {
	const char *profile;		/* the profile's name */
	const struct ph_conf_value *values;	/* parallel to the plugin's conf_keys */
	size_t nvalues;
};

/* ---- Requests and events ---------------------------------------------- */

struct ph_header {
	const char *name;	/* as received, e.g. "Wechatpay-Signature" */
	const char *value;
};

/* A request as received: the body is the exact bytes, never re-serialised. */
struct ph_request {
	const char *method;
	const char *content_type;	/* may be "" */
	const unsigned char *body;
	size_t body_len;
	const struct ph_header *headers;
	size_t nheaders;
	int64_t now;		/* unix seconds, for freshness checks */
};

enum ph_event_kind {
	PH_EV_PAYMENT_SUCCEEDED,
	PH_EV_PAYMENT_FAILED,
	PH_EV_PAYMENT_PENDING,	/* not paid yet (query answers) */
	PH_EV_PAYMENT_CLOSED,
	PH_EV_REFUND_SUCCEEDED,
	PH_EV_REFUND_FAILED,
	PH_EV_NOT_FOUND,	/* the provider does not know the order (or,
				 * to a refund query, has not made it) */
	PH_EV_IGNORED,		/* verified, but nothing payhook acts on */
	PH_EV_QUERY_MORE,	/* query_response only: this page of a list
				 * did not settle the order; ask again with
				 * ph_order_ref.cursor = ev->cursor */
	PH_EV__MAX
};

#define PH_ID_MAX	64	/* order ids, transaction ids, refund ids */
#define PH_DEDUP_MAX	160
#define PH_CHANNEL_MAX	32

/*
 * A verified, normalised event.  Fixed-size fields: nothing to free.
 * Strings are NUL-terminated; a plugin that cannot fit a value refuses
 * the notification rather than truncate it.
 */
struct ph_event {
	enum ph_event_kind kind;
	/* The merchant's order id; a refund result whose message names only
	 * the payment (txn_id) leaves it "", and payhook finds the order. */
	char order_id[PH_ID_MAX + 1];
	char txn_id[PH_ID_MAX + 1];	/* provider's transaction id */
	char refund_id[PH_ID_MAX + 1];	/* provider's refund id, refunds only */
	int64_t amount;			/* minor units (fen), >= 0 */
	char currency[4];		/* ISO 4217 alphabetic, e.g. "CNY" */
	int64_t occurred_at;		/* unix seconds UTC; 0 if unknown */
	char dedup_key[PH_DEDUP_MAX + 1];	/* unique per provider fact */
	char channel[PH_CHANNEL_MAX + 1];	/* aggregators: underlying wallet */
	/*
	 * Refund events: the merchant-side refund id payhook gave the refund
	 * (WeChat out_refund_no), when the provider echoes it; "" otherwise.
	 * refund_id above is the provider's own id of the refund.
	 */
	char merchant_refund_id[PH_ID_MAX + 1];
	/* PH_EV_QUERY_MORE: where the next page starts (a provider's id,
	 * e.g. the last one listed); "" otherwise. */
	char cursor[PH_ID_MAX + 1];
};

/* What the core decided; the plugin renders it in the provider's format. */
enum ph_ack_kind {
	PH_ACK_OK,		/* durably recorded (or already was) */
	PH_ACK_REFUSED,		/* not verified or not acceptable */
	PH_ACK_RETRY,		/* payhook could not record it now */
	PH_ACK__MAX
};

#define PH_RESP_BODY_MAX 4096

/* A response to write back, filled by the plugin. */
struct ph_response {
	int status;			/* HTTP status */
	char content_type[64];		/* "" for none */
	unsigned char body[PH_RESP_BODY_MAX];
	size_t body_len;
};

/* ---- Outbound calls (query, close) ----------------------------------- */

/* What the core knows of an order when it asks the provider about it. */
struct ph_order_ref {
	const char *order_id;
	int64_t amount;			/* minor units */
	const char *currency;
	const char *txn_id;		/* provider transaction id, or "" */
	int64_t created_at;		/* unix seconds */
	/*
	 * Provider-specific data the merchant gave for the payment attempt
	 * (e.g. UnionPay's txnTime), as JSON object text; "" when none.
	 */
	const char *attempt;
	/*
	 * query_request of a list read page by page: "" (or NULL) for the
	 * first page, then the cursor the previous answer gave with
	 * PH_EV_QUERY_MORE.  The core reads at most PH_QUERY_PAGES_MAX
	 * answers for one query; past that the query is PH_E_PROVIDER.
	 */
	const char *cursor;
};

#define PH_QUERY_PAGES_MAX	10

/*
 * What a request builder needs from the world: plugins do no I/O, so the
 * core hands them the time and fresh random bytes for nonces.
 */
struct ph_call_ctx {
	int64_t now;			/* unix seconds */
	unsigned char random[32];
};

#define PH_HTTP_HEADERS_MAX	8
#define PH_HTTP_BODY_MAX	16384
#define PH_HTTP_VALUE_MAX	2048
#define PH_HTTP_PATH_MAX	2048

/* An outbound request, built by a plugin, sent by the core to the
 * profile's api_base followed by path. */
struct ph_http_request {
	char method[8];			/* "POST" or "GET" */
	char path[PH_HTTP_PATH_MAX];	/* starts with '/', query string
					 * allowed */
	char content_type[64];		/* "" for none */
	struct {
		char name[64];
		char value[PH_HTTP_VALUE_MAX];
	} headers[PH_HTTP_HEADERS_MAX];
	size_t nheaders;
	unsigned char body[PH_HTTP_BODY_MAX];
	size_t body_len;
};

/* The provider's answer as the core received it.  Pointers are borrowed
 * for the duration of the call. */
struct ph_http_response {
	int status;			/* HTTP status */
	const struct ph_header *headers;
	size_t nheaders;
	const unsigned char *body;
	size_t body_len;
	int64_t now;			/* unix seconds, for freshness checks */
};

/* ---- Refunds and statements ------------------------------------------ */

/* A refund payhook asks the provider to make. */
struct ph_refund_ref {
	const char *order_id;		/* the paid order */
	const char *txn_id;		/* the payment refunded */
	const char *refund_id;		/* payhook's idempotent refund id: the
					 * same id on every retry, so the
					 * provider never refunds twice */
	int64_t amount;			/* to refund, minor units */
	int64_t payment_amount;		/* the payment's whole amount */
	const char *currency;
	const char *reason;		/* short text for the provider */
	const char *attempt;		/* as in ph_order_ref, or "" */
	/*
	 * Nonzero: the provider has accepted this refund already (its result
	 * was awaited and has not come).  A plugin that can ask for a
	 * refund's state builds that query instead, and refund_response
	 * reads its answer; one that cannot sends the refund again under the
	 * same refund id.  Added within ABI 3, at the end: a plugin built
	 * before it never reads it and always sends the refund.
	 */
	int query;
};

/*
 * State a statement parser keeps between lines, owned by the core and
 * zeroed before the first line: plugins need no allocation and no global
 * state to read a statement of any length one line at a time.
 */
#define PH_STATEMENT_STATE_MAX 4096
struct ph_statement {
	uint64_t line;			/* 1-based number of the line given */
	uint64_t facts;			/* facts returned so far */
	int64_t total;			/* their amounts, for summary checks */
	unsigned char state[PH_STATEMENT_STATE_MAX];	/* the plugin's */
};

/*
 * A statement payhook downloads itself (PH_CAP_DOWNLOAD), in at most
 * PH_DOWNLOAD_STEPS_MAX calls: statement_request builds call number step,
 * statement_response reads its answer and either gives the statement or
 * asks for one more call (PH_DL_NEXT, e.g. a signed answer naming where the
 * file is), carrying what that call needs in next.
 */
#define PH_DOWNLOAD_STEPS_MAX	4
#define PH_DOWNLOAD_NEXT_MAX	(PH_HTTP_PATH_MAX + 512)
#define PH_DOWNLOAD_MEMBERS_MAX	2

struct ph_download_ref {
	const char *date;		/* the statement's day, "YYYY-MM-DD" in
					 * the provider's time zone */
	unsigned step;			/* 0 for the first call */
	const char *next;		/* "" at step 0, then the previous
					 * answer's next */
};

enum ph_download_kind {
	PH_DL_NEXT = 1,			/* one more call: see next */
	PH_DL_STATEMENT,		/* the statement is in this answer */
	PH_DL_NONE			/* the provider has no statement for
					 * that day (no transactions) */
};

/* How the statement's bytes are packed; the core unpacks them. */
enum ph_download_packing {
	PH_PACK_NONE,			/* the text itself */
	PH_PACK_GZIP,			/* gzip */
	PH_PACK_ZIP			/* a zip archive: the member whose name
					 * ends with one of member[] */
};

struct ph_download {
	enum ph_download_kind kind;
	char next[PH_DOWNLOAD_NEXT_MAX];	/* NEXT: the plugin's own text
						 * for the next call */
	size_t offset, len;		/* STATEMENT: its bytes in in->body */
	enum ph_download_packing packing;
	char member[PH_DOWNLOAD_MEMBERS_MAX][64];	/* ZIP: name endings,
							 * bytes as stored */
};

/* ---- The table -------------------------------------------------------- */

/* What a plugin can do; the core checks before calling optional entries. */
#define PH_CAP_NOTIFY		0x01u
#define PH_CAP_QUERY		0x02u
#define PH_CAP_CLOSE		0x04u
#define PH_CAP_REFUND		0x08u
#define PH_CAP_STATEMENT	0x10u
#define PH_CAP_DOWNLOAD		0x20u	/* with PH_CAP_STATEMENT */
/* Query and close name the order by its id alone and never read
 * ph_order_ref.attempt: one call at a profile answers for every attempt
 * opened there (without it, each attempt's distinct data is asked). */
#define PH_CAP_ORDER_KEYED	0x40u

struct ph_provider {
	uint32_t abi;			/* PH_PROVIDER_ABI, always first */
	const char *name;		/* "wechat", as named by `plugin =` */
	const char *description;
	uint32_t caps;			/* PH_CAP_* */
	const struct ph_conf_key *conf_keys;

	/*
	 * Makes a profile context from its configuration.  On failure returns
	 * non-zero and fills diag.  *ctx is owned by the core, which frees it
	 * with profile_free().
	 */
	int (*profile_new)(const struct ph_conf *conf, void **ctx,
	    struct ph_diag *diag);
	void (*profile_free)(void *ctx);

	/*
	 * Verifies and parses a notification.  PH_OK only when verified, with
	 * ev filled; otherwise a status and diag say why.
	 */
	int (*parse_notify)(void *ctx, const struct ph_request *req,
	    struct ph_event *ev, struct ph_diag *diag);

	/*
	 * Renders the acknowledgement for an outcome.  reason is a short
	 * English text for failure answers (may be NULL).  Never fails: a
	 * plugin that cannot render an answer sets status 500 and no body.
	 */
	void (*ack)(void *ctx, enum ph_ack_kind kind, const char *reason,
	    struct ph_response *out);

	/*
	 * Active query (PH_CAP_QUERY).  query_request builds the signed
	 * request for one order; query_response verifies the answer (a
	 * response whose signature does not check is an error, never an
	 * event) and maps it to an event: PAYMENT_SUCCEEDED (paid, with the
	 * transaction, amount and a dedup key equal to the one its payment
	 * notification would carry), PAYMENT_PENDING (not paid yet),
	 * PAYMENT_CLOSED, PAYMENT_FAILED or NOT_FOUND.  A provider-side error
	 * worth retrying is PH_E_PROVIDER.  An answer that is one page of a
	 * list, without the order's fate, is QUERY_MORE with ev->cursor: the
	 * core calls query_request again with order->cursor set to it.
	 */
	int (*query_request)(void *ctx, const struct ph_order_ref *order,
	    const struct ph_call_ctx *cc, struct ph_http_request *out,
	    struct ph_diag *diag);
	int (*query_response)(void *ctx, const struct ph_order_ref *order,
	    const struct ph_http_response *in, struct ph_event *ev,
	    struct ph_diag *diag);

	/*
	 * Close an unpaid order at the provider (PH_CAP_CLOSE).
	 * close_response sets ev->kind to PAYMENT_CLOSED only when the
	 * provider confirms the order is closed (or was already); any other
	 * kind (e.g. PAYMENT_SUCCEEDED for "already paid") tells the core to
	 * query before deciding anything.
	 */
	int (*close_request)(void *ctx, const struct ph_order_ref *order,
	    const struct ph_call_ctx *cc, struct ph_http_request *out,
	    struct ph_diag *diag);
	int (*close_response)(void *ctx, const struct ph_order_ref *order,
	    const struct ph_http_response *in, struct ph_event *ev,
	    struct ph_diag *diag);

	/*
	 * Refunds (PH_CAP_REFUND).  refund_response maps the answer to
	 * REFUND_SUCCEEDED (done), REFUND_FAILED (refused for good), or
	 * PAYMENT_PENDING (accepted, result later: by notification or a
	 * later call with the same refund id, ref->query set); an error
	 * worth retrying is PH_E_PROVIDER.  The answer to a query (ref->query
	 * set) may be NOT_FOUND: the provider has not made the refund (never
	 * received, or not carried out), and the core sends it again under
	 * the same refund id, as the provider asks.  The event's merchant_refund_id
	 * is ref->refund_id; its amount is the one the answer reports for
	 * this refund (ref->amount where it reports none): an answer about
	 * the refund asked for with another amount is the core's to raise,
	 * not an error.  A REFUND_FAILED answer may leave in diag why the
	 * provider refused it (its code and text): the core keeps that as the
	 * refund's last_error.
	 */
	int (*refund_request)(void *ctx, const struct ph_refund_ref *ref,
	    const struct ph_call_ctx *cc, struct ph_http_request *out,
	    struct ph_diag *diag);
	int (*refund_response)(void *ctx, const struct ph_refund_ref *ref,
	    const struct ph_http_response *in, struct ph_event *ev,
	    struct ph_diag *diag);

	/*
	 * Statements (PH_CAP_STATEMENT), streamed: the core gives one line
	 * at a time (without its line terminator) and st, which the plugin
	 * keeps its parsing state in.  For a line that is a fact (a payment
	 * or a refund) the plugin fills ev (PAYMENT_SUCCEEDED with the same
	 * dedup key a notification of it would carry, or REFUND_SUCCEEDED)
	 * and returns PH_OK; for any other line (header, summary) it sets
	 * ev->kind to PH_EV_IGNORED.  At the end line is NULL: the plugin
	 * checks the statement's own totals against st and returns PH_OK or
	 * an error.  A malformed line is an error naming the line.
	 */
	int (*statement_line)(void *ctx, struct ph_statement *st,
	    const char *line, size_t len, struct ph_event *ev,
	    struct ph_diag *diag);

	/*
	 * Optional: the merchant order id a notification names, read WITHOUT
	 * verifying it.  The core uses it only as a hint: when a notification
	 * is refused but names a pending order, that order is queried at the
	 * provider soon (rate-limited per profile), so a genuine notification
	 * refused by a configuration mistake still settles the order, while a
	 * forged one changes nothing.  Nothing is ever applied from a hint.
	 */
	int (*notify_hint)(void *ctx, const struct ph_request *req,
	    char order_id[PH_ID_MAX + 1]);

	/*
	 * Statement download (PH_CAP_DOWNLOAD): `payhook reconcile
	 * --download`.  statement_request builds call ref->step; its path is
	 * under api_base or, from step 1 on, an absolute https URL the
	 * provider's verified answer named, whose host must be api_base's or
	 * one of download_hosts (the core refuses any other: no request
	 * goes where an answer alone says).  statement_response verifies
	 * the answer as far as the provider allows (signature, the digest a
	 * signed answer gave) and fills dl.  An error worth retrying later
	 * is PH_E_PROVIDER.  What it gives as the statement is read by
	 * statement_line as a fact about money: give nothing unverified.
	 */
	int (*statement_request)(void *ctx, const struct ph_download_ref *ref,
	    const struct ph_call_ctx *cc, struct ph_http_request *out,
	    struct ph_diag *diag);
	int (*statement_response)(void *ctx,
	    const struct ph_download_ref *ref,
	    const struct ph_http_response *in, struct ph_download *dl,
	    struct ph_diag *diag);
	/* Hosts, besides api_base's, that statement_request may name:
	 * exact names, NULL-terminated; NULL for none. */
	const char *const *download_hosts;
};

/* The exported entry point: returns the plugin's static table. */
typedef const struct ph_provider *(*ph_provider_fn)(void);

/*
 * The types of the table's entries, for a plugin made of several files
 * to declare each entry once in its private header, as the table has it:
 *	ph_call_request_fn xx_query_request;
 */
typedef int ph_profile_new_fn(const struct ph_conf *conf, void **ctx,
    struct ph_diag *diag);
typedef void ph_profile_free_fn(void *ctx);
typedef int ph_parse_notify_fn(void *ctx, const struct ph_request *req,
    struct ph_event *ev, struct ph_diag *diag);
typedef void ph_ack_fn(void *ctx, enum ph_ack_kind kind, const char *reason,
    struct ph_response *out);
/* query_request and close_request; query_response and close_response. */
typedef int ph_call_request_fn(void *ctx, const struct ph_order_ref *order,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag);
typedef int ph_call_response_fn(void *ctx, const struct ph_order_ref *order,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag);
typedef int ph_refund_request_fn(void *ctx, const struct ph_refund_ref *ref,
    const struct ph_call_ctx *cc, struct ph_http_request *out,
    struct ph_diag *diag);
typedef int ph_refund_response_fn(void *ctx, const struct ph_refund_ref *ref,
    const struct ph_http_response *in, struct ph_event *ev,
    struct ph_diag *diag);
typedef int ph_statement_line_fn(void *ctx, struct ph_statement *st,
    const char *line, size_t len, struct ph_event *ev,
    struct ph_diag *diag);
typedef int ph_notify_hint_fn(void *ctx, const struct ph_request *req,
    char order_id[PH_ID_MAX + 1]);
typedef int ph_statement_request_fn(void *ctx,
    const struct ph_download_ref *ref, const struct ph_call_ctx *cc,
    struct ph_http_request *out, struct ph_diag *diag);
typedef int ph_statement_response_fn(void *ctx,
    const struct ph_download_ref *ref, const struct ph_http_response *in,
    struct ph_download *dl, struct ph_diag *diag);

/*
 * The heads of the entries' definitions, so that every plugin writes an
 * entry's signature once, with the same parameter names (the context as
 * `p`, which the body converts to its own type):
 *	static PH_PARSE_NOTIFY(xx_parse_notify)
 *	{
 *		const struct xx_ctx *ctx = p;
 */
#define PH_PROFILE_NEW(fn)						\
	int fn(const struct ph_conf *conf, void **out, struct ph_diag *diag)
#define PH_PROFILE_FREE(fn)	void fn(void *p)
#define PH_PARSE_NOTIFY(fn)						\
	int fn(void *p, const struct ph_request *req, struct ph_event *ev, \
	    struct ph_diag *diag)
#define PH_ACK(fn)							\
	void fn(void *p, enum ph_ack_kind kind, const char *reason,	\
	    struct ph_response *out)
#define PH_STATEMENT_LINE(fn)						\
	int fn(void *p, struct ph_statement *st, const char *line,	\
	    size_t len, struct ph_event *ev, struct ph_diag *diag)
#define PH_NOTIFY_HINT(fn)						\
	int fn(void *p, const struct ph_request *req,			\
	    char order_id[PH_ID_MAX + 1])
/* An outbound call's two halves: what the request is built from and into,
 * what the answer is read from and into. */
#define PH_REQUEST_PARAMS_						\
	const struct ph_call_ctx *cc, struct ph_http_request *out,	\
	struct ph_diag *diag
#define PH_ANSWER_PARAMS_(OUT)						\
	const struct ph_http_response *in, OUT, struct ph_diag *diag
#define PH_CALL_REQUEST(fn)						\
	int fn(void *p, const struct ph_order_ref *order, PH_REQUEST_PARAMS_)
#define PH_CALL_RESPONSE(fn)						\
	int fn(void *p, const struct ph_order_ref *order,		\
	    PH_ANSWER_PARAMS_(struct ph_event *ev))
#define PH_REFUND_REQUEST(fn)						\
	int fn(void *p, const struct ph_refund_ref *ref, PH_REQUEST_PARAMS_)
#define PH_REFUND_RESPONSE(fn)						\
	int fn(void *p, const struct ph_refund_ref *ref,		\
	    PH_ANSWER_PARAMS_(struct ph_event *ev))
#define PH_STATEMENT_REQUEST(fn)					\
	int fn(void *p, const struct ph_download_ref *ref, PH_REQUEST_PARAMS_)
#define PH_STATEMENT_RESPONSE(fn)					\
	int fn(void *p, const struct ph_download_ref *ref,		\
	    PH_ANSWER_PARAMS_(struct ph_download *dl))

#if defined(__GNUC__)
#define PH_EXPORT __attribute__((visibility("default")))
#else
#define PH_EXPORT
#endif

/*
 * PH_PROVIDER_DEFINE(name, description, caps, conf_keys, profile_new,
 *     profile_free, parse_notify, ack)
 * defines the table and the one exported symbol, for a plugin that only
 * takes notifications.  PH_PROVIDER_DEFINE_CALLS adds the outbound entries
 * (query_request, query_response, close_request, close_response; NULL for
 * those it lacks, with caps saying what it has).
 */
#define PH_PROVIDER_DEFINE(NAME, DESC, CAPS, KEYS, NEW, FREE, PARSE, ACK) \
	PH_PROVIDER_DEFINE_CALLS(NAME, DESC, CAPS, KEYS, NEW, FREE, PARSE, \
	    ACK, NULL, NULL, NULL, NULL)

#define PH_PROVIDER_DEFINE_CALLS(NAME, DESC, CAPS, KEYS, NEW, FREE, PARSE, \
    ACK, QREQ, QRESP, CREQ, CRESP)					\
	PH_PROVIDER_DEFINE_ALL(NAME, DESC, CAPS, KEYS, NEW, FREE, PARSE,	\
	    ACK, QREQ, QRESP, CREQ, CRESP, NULL, NULL, NULL)

/* Every entry: ..., refund_request, refund_response, statement_line. */
#define PH_PROVIDER_DEFINE_ALL(NAME, DESC, CAPS, KEYS, NEW, FREE, PARSE,	\
    ACK, QREQ, QRESP, CREQ, CRESP, RREQ, RRESP, STLINE)		\
	PH_PROVIDER_DEFINE_HINT(NAME, DESC, CAPS, KEYS, NEW, FREE, PARSE,	\
	    ACK, QREQ, QRESP, CREQ, CRESP, RREQ, RRESP, STLINE, NULL)

/* As PH_PROVIDER_DEFINE_ALL, with notify_hint last. */
#define PH_PROVIDER_DEFINE_HINT(NAME, DESC, CAPS, KEYS, NEW, FREE, PARSE,	\
    ACK, QREQ, QRESP, CREQ, CRESP, RREQ, RRESP, STLINE, HINT)		\
	PH_PROVIDER_DEFINE_DOWNLOAD(NAME, DESC, CAPS, KEYS, NEW, FREE,	\
	    PARSE, ACK, QREQ, QRESP, CREQ, CRESP, RREQ, RRESP, STLINE, HINT, \
	    NULL, NULL, NULL)

/* As PH_PROVIDER_DEFINE_HINT, with statement_request,
 * statement_response and download_hosts last. */
#define PH_PROVIDER_DEFINE_DOWNLOAD(NAME, DESC, CAPS, KEYS, NEW, FREE,	\
    PARSE, ACK, QREQ, QRESP, CREQ, CRESP, RREQ, RRESP, STLINE, HINT,	\
    DLREQ, DLRESP, DLHOSTS)						\
	static const struct ph_provider ph_provider_table_ = {		\
		.abi = PH_PROVIDER_ABI,					\
		.name = (NAME),						\
		.description = (DESC),					\
		.caps = (CAPS),						\
		.conf_keys = (KEYS),					\
		.profile_new = (NEW),					\
		.profile_free = (FREE),					\
		.parse_notify = (PARSE),				\
		.ack = (ACK),						\
		.query_request = (QREQ),				\
		.query_response = (QRESP),				\
		.close_request = (CREQ),				\
		.close_response = (CRESP),				\
		.refund_request = (RREQ),				\
		.refund_response = (RRESP),				\
		.statement_line = (STLINE),				\
		.notify_hint = (HINT),					\
		.statement_request = (DLREQ),				\
		.statement_response = (DLRESP),				\
		.download_hosts = (DLHOSTS),				\
	};								\
	PH_EXPORT const struct ph_provider *payhook_provider(void);	\
	PH_EXPORT const struct ph_provider *payhook_provider(void)	\
	{								\
		return &ph_provider_table_;				\
	}

#ifdef __cplusplus
}
#endif

#endif /* PAYHOOK_PROVIDER_H */
