/*
 * payhook, the operator's command; private to src/cli.
 *
 *   main.c           the command table, usage, --version, the dispatcher
 *   context.c        opens and closes what a command needs, as the
 *                    store's owner; helpers every command shares
 *   access.c         check --user: can the web server's user do its job
 *   check.c          check, stats, backup, dedup prune
 *   orders.c         order show and list, events, events tail
 *   notifications.c  notifications list, show and replay
 *   jobs.c           sweep, refunds, reconcile, events resend and
 *                    deliveries
 *
 * A command runs in two steps.  Before anything is opened (a usage
 * error touches nothing), the dispatcher reads its options and operand as
 * its row says into struct cli_args, and its valid checks what a table
 * cannot.  Then the dispatcher opens what the row needs, and run finds it
 * in struct cli; the dispatcher closes it all after run.
 */
#ifndef PH_CLI_H
#define PH_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf/conf.h"
#include "jobs/recon.h"
#include "store/store.h"

/*
 * Exit statuses, the same for every command (payhook(1), EXIT STATUS).
 * The values are those of sysexits(3), which POSIX does not have.
 */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,	/* the store, a file, a refused replay */
	CLI_EXIT_NOTFOUND = 2,	/* order show: no such order */
	CLI_EXIT_USAGE = 64,	/* EX_USAGE: the command line is wrong */
	CLI_EXIT_TEMPFAIL = 75,	/* EX_TEMPFAIL: a call to a provider or a
				 * push endpoint failed; the next run tries
				 * again */
	CLI_EXIT_CONFIG = 78,	/* EX_CONFIG: the configuration is refused,
				 * or check found it unusable */
};

/* The commands, in the order of the usage; cli_cmds[] in main.c. */
enum cli_cmd_id {
	CLI_CHECK,
	CLI_ORDER_SHOW,
	CLI_ORDER_LIST,
	CLI_ORDER_ID,		/* "order ID": order show, unlisted */
	CLI_EVENTS,
	CLI_EVENTS_TAIL,
	CLI_EVENTS_RESEND,
	CLI_EVENTS_DELIVERIES,
	CLI_STATS,
	CLI_DEDUP_PRUNE,
	CLI_BACKUP,
	CLI_RESTORE,
	CLI_STORE_IMPORT,
	CLI_STORE_NEW_EPOCH,
	CLI_RECONCILE,
	CLI_NOTIFICATIONS_LIST,
	CLI_NOTIFICATIONS_SHOW,
	CLI_NOTIFICATIONS_REPLAY,
	CLI_REFUNDS_RUN,
	CLI_REFUNDS_LIST,
	CLI_REFUNDS_SETTLE,
	CLI_SWEEP,
	CLI_CMD__MAX
};

/* What a command needs opened before it runs (bits of a row's needs). */
enum cli_need {
	CLI_NEED_CONF = 1 << 0,		/* the configuration */
	CLI_NEED_STORE = 1 << 1,	/* the store, as its owner */
	CLI_NEED_HTTP = 1 << 2,		/* libcurl, for calls out */
	CLI_NEED_METRICS = 1 << 3,	/* the counters payhook.fcgi shares */
	CLI_NEED_ARCHIVE = 1 << 4,	/* the notification archive */
	CLI_NEED_ARCHIVE_KEPT = 1 << 5,	/* the archive when archive_days
					 * keeps one (sweep prunes it) */
	CLI_NEED_LOG = 1 << 6,		/* a job: logs at the configuration's
					 * log_level and log_format, its
					 * warnings too */
};

/* A command's arguments, as the table's options and its valid read them. */
struct cli_args {
	const char *word;		/* the operand, or --user, --endpoint,
					 * --older-than; or NULL */
	const char *state;		/* order list --state */
	const char *after_id;		/* order list --after */
	unsigned long long after;	/* --after SEQ or ID */
	unsigned long long limit;	/* --limit N */
	unsigned long long from;	/* events resend --from SEQ */
	unsigned long long id;		/* a notification's id */
	unsigned long long interval;	/* sweep --interval S */
	long age;			/* dedup prune --older-than, seconds */
	int flag;			/* --json, --follow, --all, --watch,
					 * --trust-file */
	int download;			/* reconcile --download */
	int succeeded, failed;		/* refunds settle --succeeded, --failed */
	unsigned long long amount;	/* refunds settle --amount N */
	struct recon_opts recon;	/* reconcile's options */
};

/* How an option's value is read into struct cli_args. */
enum cli_opt_type {
	CLI_OPT_FLAG,			/* none: the int becomes 1 */
	CLI_OPT_WORD,			/* a string */
	CLI_OPT_NUMBER,			/* decimal digits in [min, max] */
};

/* An option of a command, --name. */
struct cli_opt {
	const char *name;
	enum cli_opt_type type;
	size_t off;			/* of its field in struct cli_args */
	int needed;			/* CLI_OPT_WORD: the command needs it */
	unsigned long long min, max;	/* CLI_OPT_NUMBER: the range, */
	unsigned long long def;		/* and the value without it */
};

/* What a command runs with. */
struct cli {
	const struct cli_cmd *cmd;	/* the row running */
	const char *path;		/* the configuration file */
	struct conf *conf;		/* opened as the row needs, else NULL */
	struct store *store;
	struct cli_args a;
	int root_left;			/* root became the database's owner */
};

/* valid: what the options table cannot say; prints why it refuses. */
typedef int (*cli_valid_fn)(struct cli *);
typedef int (*cli_run_fn)(struct cli *);

#define CLI_OPTS_MAX	7

/* A row of the command table. */
struct cli_cmd {
	const char *name;		/* "events" */
	const char *sub;		/* "tail"; NULL: none */
	unsigned int needs;		/* enum cli_need bits */
	struct cli_opt opts[CLI_OPTS_MAX];	/* up to a NULL name */
	int operand;			/* takes one operand (into word) */
	cli_valid_fn valid;		/* or NULL */
	cli_run_fn run;
	const char *args;		/* the usage after the words; '\n'
					 * wraps it */
	const char *help;		/* lines of the usage; NULL: unlisted */
};

/* context.c: opening and closing, and what every command shares */
extern volatile sig_atomic_t cli_stop;	/* set by SIGTERM and SIGINT */
void cli_catch_signals(void);
int cli_open_conf(struct cli *c);
int cli_open_store(struct cli *c, const char *where, int flags);
/* As root, becomes the store's owner (the owner of its folder while there
 * is no store); 0, or -1 after printing why. */
int cli_become_owner(struct cli *c);
int cli_open(struct cli *c);
void cli_close(struct cli *c);
int cli_print_new(json_t *j);
/* What was printed reached the standard output: 0, or -1 said on the
 * standard error. */
int cli_stdout_done(void);
int cli_number(const char *s, unsigned long long *out);

/* access.c */
int cli_check_user(const struct conf *conf, const char *user);

/* check.c */
int cli_check_run(struct cli *c);
/* Whether pr's plugin makes calls (query, close, refund, download) but pr
 * names no api_base to make them at. */
int cli_profile_uncallable(const struct conf_profile *pr);
int cli_stats_run(struct cli *c);
int cli_backup_run(struct cli *c);
int cli_restore_run(struct cli *c);
int cli_store_import_run(struct cli *c);
int cli_store_new_epoch_run(struct cli *c);
int cli_dedup_valid(struct cli *c);
int cli_dedup_run(struct cli *c);

/* orders.c */
int cli_order_show_run(struct cli *c);
int cli_order_list_valid(struct cli *c);
int cli_order_list_run(struct cli *c);
int cli_events_run(struct cli *c);
int cli_events_tail_run(struct cli *c);

/* notifications.c */
int cli_notif_id_valid(struct cli *c);
int cli_notif_list_run(struct cli *c);
int cli_notif_show_run(struct cli *c);
int cli_notif_replay_run(struct cli *c);

/* jobs.c */
int cli_sweep_run(struct cli *c);
int cli_refunds_run(struct cli *c);
int cli_refunds_list_run(struct cli *c);
int cli_refunds_settle_valid(struct cli *c);
int cli_refunds_settle_run(struct cli *c);
int cli_reconcile_valid(struct cli *c);
int cli_reconcile_run(struct cli *c);
int cli_resend_run(struct cli *c);
int cli_deliveries_run(struct cli *c);

#endif
