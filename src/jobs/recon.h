/*
 * Reconciliation: a provider's statement against the store.  The plugin
 * reads the statement line by line (streaming: any size in bounded
 * memory); every row is sorted into a category, what is missing here is
 * applied through the ledger like any fact, what payhook holds that the
 * provider does not list is raised, never changed.  Running it again on
 * the same statement changes nothing and gives the same report.
 */
#ifndef PH_RECON_H
#define PH_RECON_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>

#include "conf/conf.h"
#include "store/store.h"

enum recon_cat {
	RECON_MATCHED,			/* both sides agree */
	RECON_MISSING_HERE,		/* provider took money payhook had not
					 * recorded: applied now (or earlier
					 * by a reconcile of this statement) */
	RECON_MISSING_AT_PROVIDER,	/* payhook holds a payment the
					 * statement does not list: raised */
	RECON_AMOUNT_DIFFERS,		/* same transaction, other amount or
					 * currency: raised */
	RECON_DOUBLE_PAYMENT,		/* an extra payment of a paid order:
					 * on the refund work list */
	RECON_AMOUNT_MISMATCH,		/* paid, but not the order's amount */
	RECON_UNKNOWN_ORDER,		/* paid for an order payhook lacks */
	RECON_LATE_PAYMENT,		/* paid after the order was closed */
	RECON_OTHER_ACCOUNT,		/* paid through another profile */
	RECON_REFUND_MATCHED,
	RECON_REFUND_MISMATCH,		/* a refund payhook did not ask for,
					 * or asked differently: raised */
	RECON__MAX
};

/*
 * How far the statement can be trusted.  Only a statement payhook fetched
 * itself over the profile's authenticated API is a fact about money; a
 * file handed to it may have been made by anyone: its payments missing
 * here raise alarms and are asked about at the provider, and only what
 * the provider then confirms is applied, unless the operator vouches for
 * the file (--trust-file), which the events then say.
 */
enum recon_trust {
	RECON_FILE,			/* hand-supplied: verify by query */
	RECON_DOWNLOADED,		/* fetched over the provider's API */
	RECON_FILE_TRUSTED,		/* hand-supplied, vouched for */
	RECON_TRUST__MAX
};

struct recon_opts {
	enum recon_trust trust;
	const char *profile;
	const char *statement;		/* file path, or NULL (with date):
					 * the provider has none for the day */
	const char *date;		/* "YYYY-MM-DD" (Beijing), or NULL:
					 * the day of the first row */
	const char *report_dir;		/* where the CSV and JSON go */
};

struct recon_summary {
	size_t count[RECON__MAX];
	int64_t amount[RECON__MAX];	/* statement (or stored) amounts */
	uint64_t lines;			/* statement lines read */
	size_t asked;			/* orders asked about at the provider
					 * (an unverified statement) */
	size_t confirmed;		/* of which it said paid */
	size_t unanswered;		/* queries without a usable answer */
	size_t unsendable;		/* of which the configuration kept
					 * from going out (no api_base) */
	char date[16];
	char csv_path[1024];
	char json_path[1024];
};

const char *recon_cat_name(enum recon_cat c);

/* A statement's day, "YYYY-MM-DD" (Beijing), to its first second; -1 when
 * it is not one. */
int recon_parse_date(const char *d, int64_t *start);
/* The day before now's, in Beijing: the newest statement a provider has. */
void recon_yesterday(int64_t now, char date[11]);

/*
 * Writes head, tmp's bytes and tail to path: a fresh file of mode 0600
 * beside it (nothing planted there is followed), flushed, renamed over.
 */
int recon_write(FILE *tmp, const char *path, const char *head,
    const char *tail, struct ph_diag *diag);

/*
 * Fetches pr's statement of date ("YYYY-MM-DD") over the provider's API
 * (recon_get.c) into dir/statement-PROFILE-DATE.txt, its path in path.
 * *none is set when the provider has no statement for that day.
 */
int recon_download(const struct conf *c, const struct conf_profile *pr,
    const char *date, const char *dir, int64_t now, char *path, size_t cap,
    int *none, struct ph_diag *diag);

int recon_run(const struct conf *c, struct store *s,
    const struct recon_opts *o, int64_t now, struct recon_summary *sum,
    struct ph_diag *diag);

#endif
