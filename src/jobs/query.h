/*
 * Asking a provider about an order: the plugin builds the request, the
 * core sends it (http.c), the plugin verifies and reads the answer, and a
 * payment it reports goes through the ledger like a notification.  Used by
 * the merchant's "query now", the pre-payment guard and the sweeper.
 */
#ifndef PH_QUERY_H
#define PH_QUERY_H

#include <jansson.h>

#include "conf/conf.h"
#include "jobs/http.h"
#include "ledger/ledger.h"
#include "store/store.h"

enum query_op {
	QUERY_OP_QUERY,
	QUERY_OP_CLOSE,
	QUERY_OP_REFUND,
	QUERY_OP__MAX
};

/* Where an order is asked about: a profile it was offered on, with the
 * data of one of its attempts there (NULL: none).  From query_targets,
 * borrowed from the order; in a job, the job's own reference. */
struct query_target {
	const struct conf_profile *profile;
	const json_t *data;
};

struct query_job {
	/* In. */
	enum query_op op;
	const struct conf_profile *profile;
	struct query_target target;	/* its data a reference of the job's */
	/* Out, after query_finish(). */
	int err;			/* PH_OK when the provider answered */
	int store_err;			/* PH_OK, or the database's error
					 * when what it said was not recorded */
	char message[512];		/* why not, for logs and the API */
	struct ph_event ev;		/* what it said (when err == PH_OK) */
	struct ledger_result applied;	/* for a payment that was applied, */
	int recorded;			/* when it was (1) */
	/* Private. */
	struct ph_order_ref ref;
	struct ph_refund_ref rref;
	char refund_id[PH_ID_MAX + 1];	/* a merchant's: up to 64 */
	char reason[256];		/* what the payer is shown */
	char order_id[PH_ID_MAX + 1];
	char currency[4];
	char txn_id[PH_ID_MAX + 1];
	char cursor[PH_ID_MAX + 1];	/* the page a query asks for */
	char *attempt;			/* JSON text, owned */
	struct ph_http_request *req;	/* owned */
	struct http_call call;
	const struct conf *conf;	/* set by query_send(), for pages */
	int prepared;
};

/*
 * Prepares a job for op on order (a stored record) at target: the plugin
 * builds the request.  On failure job->err says why and the job is
 * skipped by http_run through query_calls().
 */
void query_prepare(struct query_job *job, enum query_op op,
    const struct query_target *target, const json_t *order, int64_t now);
/*
 * Prepares the refund of work item (a stored refund record) through
 * profile.  query_finish() then reads the answer into job->ev but applies
 * nothing: the refund runner hands it to ledger_refund_result().
 */
void query_prepare_refund(struct query_job *job,
    const struct conf_profile *profile, const json_t *item,
    const json_t *order, int64_t now);

/*
 * Whether job's event (a refund answer's, checked by ledger_event_check)
 * is about the refund asked: the ids it names, where it names them, and
 * a success's currency are the request's.  The runner applies it to the
 * refund it sent, so an answer about another one (a plugin's mistake, a
 * provider's mix-up) must not settle this one: 0, with what it is about
 * in why.
 */
int query_refund_same(const struct query_job *job, char *why, size_t cap);

/* Sends every prepared job, at most parallel at once.  A query whose
 * answer is one page of a list (PH_EV_QUERY_MORE) is asked again for the
 * next by query_finish(), at most PH_QUERY_PAGES_MAX answers in all. */
void query_send(const struct conf *c, struct query_job *jobs, size_t n,
    size_t parallel);
/* Reads the answer and applies a reported payment through the ledger. */
void query_finish(struct store *s, struct query_job *job, int64_t now);
void query_job_free(struct query_job *job);

/* The most targets an order is asked about at: its own profile and its
 * attempts' (at most LEDGER_ATTEMPTS_MAX, its creation one of them), each
 * attempt's data there. */
#define QUERY_TARGETS_MAX 40

/* Where an order is asked about: each profile it was offered on that can
 * be queried, with its newest attempt's data there, then each other
 * distinct data an attempt gave, the newest first (none at a provider
 * that knows orders by id alone, PH_CAP_ORDER_KEYED).  Fills out (max
 * entries: QUERY_TARGETS_MAX leaves none out), returns how many. */
size_t query_targets(const struct conf *c, const json_t *order,
    struct query_target *out, size_t max);

/* The most profile names of one order looked at (its own, its attempts'). */
#define QUERY_NAMES_MAX 64

/* The profiles an order was offered on that the configuration no longer
 * has (renamed or removed), distinct: the order cannot be asked there, so
 * it must neither be closed nor left unasked.  Fills out (max entries,
 * names inside order), returns how many. */
size_t query_unconfigured(const struct conf *c, const json_t *order,
    const char **out, size_t max);

/* "paid", "pending", "closed", "failed", "not_found", ... */
const char *query_kind_name(enum ph_event_kind k);

#endif
