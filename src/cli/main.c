/*
 * payhook: the operator's command-line tool.  The command table below is
 * the one source of the usage and of the dispatch: a row names a command,
 * what it needs opened, its options and operand (read and checked here,
 * before anything is opened) and what it does.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/log.h"
#include "ops/version.h"

#define CLI_STORE	(CLI_NEED_CONF | CLI_NEED_STORE)
#define CLI_ARCHIVED	(CLI_STORE | CLI_NEED_METRICS | CLI_NEED_ARCHIVE)

/* Options, by the field of struct cli_args they fill. */
#define CLI_ARG(f)	offsetof(struct cli_args, f)
#define CLI_FLAG(name, f)	{ name, CLI_OPT_FLAG, CLI_ARG(f), 0, 0, 0, 0 }
#define CLI_WORD(name, f, needed) \
	{ name, CLI_OPT_WORD, CLI_ARG(f), needed, 0, 0, 0 }
#define CLI_NUMBER(name, f, min, max, def) \
	{ name, CLI_OPT_NUMBER, CLI_ARG(f), 0, min, max, def }
/* Sequence numbers and ids, as the feed and the API take them: JSON's
 * 64-bit signed integers, 0 to 2^63-1. */
#define CLI_SEQ_MAX ((unsigned long long)LLONG_MAX)
/* A page of a list: after a number, up to --limit (default 100). */
#define CLI_PAGE(max) CLI_NUMBER("after", after, 0, CLI_SEQ_MAX, 0), \
	CLI_NUMBER("limit", limit, 1, max, 100)

/*
 * The commands: what they need opened, their options and operand, what
 * checks those further and what runs them, and their usage.
 */
static const struct cli_cmd cli_cmds[CLI_CMD__MAX] = {
	[CLI_CHECK] = { .name = "check",
	    .needs = 0,		/* it opens what it checks */
	    .opts = { CLI_WORD("user", word, 0) },
	    .run = cli_check_run, .args = "[--user USER]",
	    .help = "validate the configuration, keys,\n"
	    "plugins and database; with --user, also\n"
	    "that USER (the web server's) can use them" },
	[CLI_ORDER_SHOW] = { .name = "order", .sub = "show",
	    .needs = CLI_STORE, .operand = 1,
	    .run = cli_order_show_run, .args = "ID",
	    .help = "print an order as JSON (also: order ID)" },
	[CLI_ORDER_LIST] = { .name = "order", .sub = "list",
	    .needs = CLI_STORE,
	    .opts = { CLI_WORD("state", state, 0),
		CLI_NUMBER("limit", limit, 1, 100000, 100),
		CLI_WORD("after", after_id, 0), CLI_FLAG("json", flag) },
	    .valid = cli_order_list_valid, .run = cli_order_list_run,
	    .args = "[--state S] [--limit N] [--after ID] [--json]",
	    .help = "list orders, one per line" },
	[CLI_ORDER_ID] = { .name = "order",
	    .needs = CLI_STORE, .operand = 1,
	    .run = cli_order_show_run, .args = "ID" },
	[CLI_EVENTS] = { .name = "events",
	    .needs = CLI_STORE,
	    .opts = { CLI_PAGE(1000) },
	    .run = cli_events_run, .args = "[--after SEQ] [--limit N]",
	    .help = "print the event feed as JSON" },
	[CLI_EVENTS_TAIL] = { .name = "events", .sub = "tail",
	    .needs = CLI_STORE,
	    .opts = { CLI_NUMBER("after", after, 0, CLI_SEQ_MAX, 0),
		CLI_FLAG("follow", flag) },
	    .run = cli_events_tail_run, .args = "[--after SEQ] [--follow]",
	    .help = "print events one JSON object per line" },
	[CLI_EVENTS_RESEND] = { .name = "events", .sub = "resend",
	    .needs = CLI_STORE,
	    .opts = { CLI_WORD("endpoint", word, 1),
		CLI_NUMBER("from", from, 0, CLI_SEQ_MAX, 1) },
	    .run = cli_resend_run, .args = "--endpoint NAME [--from SEQ]",
	    .help = "push events again from SEQ (default 1)" },
	[CLI_EVENTS_DELIVERIES] = { .name = "events", .sub = "deliveries",
	    .needs = CLI_STORE,
	    .opts = { CLI_WORD("endpoint", word, 0) },
	    .run = cli_deliveries_run, .args = "[--endpoint NAME]",
	    .help = "the push delivery log" },
	[CLI_STATS] = { .name = "stats",
	    .needs = CLI_STORE | CLI_NEED_METRICS,
	    .run = cli_stats_run, .args = "",
	    .help = "print database statistics as JSON" },
	[CLI_DEDUP_PRUNE] = { .name = "dedup", .sub = "prune",
	    .needs = CLI_STORE,
	    .opts = { CLI_WORD("older-than", word, 1) },
	    .valid = cli_dedup_valid, .run = cli_dedup_run,
	    .args = "--older-than AGE",
	    .help = "forget dedup keys first seen before AGE\n"
	    "ago (e.g. 90d); payments stay deduplicated" },
	[CLI_BACKUP] = { .name = "backup",
	    .needs = CLI_STORE, .operand = 1,
	    .run = cli_backup_run, .args = "FILE",
	    .help = "write a consistent, compacted copy of the\n"
	    "database to FILE while payhook runs" },
	[CLI_RESTORE] = { .name = "restore",
	    .needs = CLI_NEED_CONF, .operand = 1,
	    .run = cli_restore_run, .args = "FILE",
	    .help = "put a backup in place of the database,\n"
	    "with a new epoch; refused while any\n"
	    "payhook process has it open" },
	[CLI_STORE_IMPORT] = { .name = "store", .sub = "import",
	    .needs = CLI_NEED_CONF, .operand = 1,
	    .run = cli_store_import_run, .args = "OTHER.conf",
	    .help = "copy every record of the store OTHER.conf\n"
	    "names (LMDB or PostgreSQL) into this one,\n"
	    "which must be new, and compare the counts" },
	[CLI_STORE_NEW_EPOCH] = { .name = "store", .sub = "new-epoch",
	    .needs = CLI_STORE,
	    .run = cli_store_new_epoch_run, .args = "",
	    .help = "give the store a new epoch after it was\n"
	    "restored by other means than restore\n"
	    "(PostgreSQL); payhook stopped" },
	[CLI_RECONCILE] = { .name = "reconcile",
	    .needs = CLI_STORE | CLI_NEED_METRICS,
	    .opts = { CLI_WORD("profile", recon.profile, 1),
		CLI_WORD("statement", recon.statement, 0),
		CLI_FLAG("download", download),
		CLI_WORD("date", recon.date, 0),
		CLI_WORD("report-dir", recon.report_dir, 0),
		CLI_FLAG("trust-file", flag) },
	    .valid = cli_reconcile_valid, .run = cli_reconcile_run,
	    .args = "--profile P (--download | --statement FILE\n"
	    "[--trust-file]) [--date YYYY-MM-DD]\n[--report-dir DIR]",
	    .help = "compare a provider statement with the\n"
	    "store: raise what differs.  --download\n"
	    "fetches it over the profile's API and\n"
	    "applies what is missing here; of a FILE,\n"
	    "what is missing is asked about at the\n"
	    "provider, or applied when --trust-file\n"
	    "vouches for it; report as CSV and JSON" },
	[CLI_NOTIFICATIONS_LIST] = { .name = "notifications", .sub = "list",
	    .needs = CLI_ARCHIVED,
	    .opts = { CLI_PAGE(100000) },
	    .run = cli_notif_list_run, .args = "[--after ID] [--limit N]",
	    .help = "archived notifications, one per line" },
	[CLI_NOTIFICATIONS_SHOW] = { .name = "notifications", .sub = "show",
	    .needs = CLI_ARCHIVED, .operand = 1, .valid = cli_notif_id_valid,
	    .run = cli_notif_show_run, .args = "ID",
	    .help = "one archived notification as JSON" },
	[CLI_NOTIFICATIONS_REPLAY] = { .name = "notifications",
	    .sub = "replay",
	    .needs = CLI_ARCHIVED, .operand = 1, .valid = cli_notif_id_valid,
	    .run = cli_notif_replay_run, .args = "ID",
	    .help = "run it through the current plugin and\n"
	    "configuration again, applying it" },
	[CLI_REFUNDS_RUN] = { .name = "refunds", .sub = "run",
	    .needs = CLI_STORE | CLI_NEED_HTTP | CLI_NEED_METRICS |
	    CLI_NEED_LOG,
	    .run = cli_refunds_run, .args = "",
	    .help = "carry out the refund work list" },
	[CLI_REFUNDS_LIST] = { .name = "refunds", .sub = "list",
	    .needs = CLI_STORE,
	    .opts = { CLI_FLAG("all", flag) },
	    .run = cli_refunds_list_run, .args = "[--all]",
	    .help = "list open (or all) refunds" },
	[CLI_REFUNDS_SETTLE] = { .name = "refunds", .sub = "settle",
	    .needs = CLI_STORE | CLI_NEED_METRICS | CLI_NEED_LOG,
	    .operand = 1,
	    .opts = { CLI_FLAG("succeeded", succeeded),
		CLI_FLAG("failed", failed),
		CLI_NUMBER("amount", amount, 1, CLI_SEQ_MAX, 0) },
	    .valid = cli_refunds_settle_valid, .run = cli_refunds_settle_run,
	    .args = "REFUND_ID (--succeeded [--amount N] |\n--failed)",
	    .help = "settle a refund by hand, as found at the\n"
	    "provider: one held for an answer of\n"
	    "another amount, or made at its platform" },
	[CLI_SWEEP] = { .name = "sweep",
	    .needs = CLI_STORE | CLI_NEED_HTTP | CLI_NEED_METRICS |
	    CLI_NEED_ARCHIVE_KEPT | CLI_NEED_LOG,
	    .opts = { CLI_FLAG("watch", flag),
		CLI_NUMBER("interval", interval, 1, 3600, 5) },
	    .run = cli_sweep_run, .args = "[--watch] [--interval S]",
	    .help = "ask providers about pending orders that\n"
	    "are due, close expired unpaid ones; one\n"
	    "pass, or every S seconds with --watch" },
};

/* Where the help text starts in the list of commands. */
#define CLI_HELP_COL	32

/* "events tail": the words of cmd, into buf. */
static const char *
cli_words(const struct cli_cmd *cmd, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", cmd->name, cmd->sub != NULL ? " " : "",
	    cmd->sub != NULL ? cmd->sub : "");
	return buf;
}

/* A string up to (not including) the next '\n' or its end. */
static int
cli_line_len(const char *s)
{
	return (int)strcspn(s, "\n");
}

/*
 * One command of the list: its words and arguments, wrapped where args
 * says, then its help from column CLI_HELP_COL, beside the last line of
 * arguments when it fits there.
 */
static void
cli_usage_cmd(FILE *f, const struct cli_cmd *cmd)
{
	const char *args = cmd->args, *help = cmd->help;
	char words[64];
	int col, indent, n;

	col = fprintf(f, "  %s%s", cli_words(cmd, words, sizeof(words)),
	    *args != '\0' ? " " : "");
	indent = col;
	for (;;) {
		n = cli_line_len(args);
		col += fprintf(f, "%.*s", n, args);
		if (args[n] == '\0')
			break;
		args += n + 1;
		col = fprintf(f, "\n%*s", indent, "") - 1;
	}
	if (col + 2 > CLI_HELP_COL) {
		fputc('\n', f);
		col = 0;
	}
	for (;;) {
		n = cli_line_len(help);
		fprintf(f, "%*s%.*s\n", CLI_HELP_COL - col, "", n, help);
		if (help[n] == '\0')
			break;
		help += n + 1;
		col = 0;
	}
}

static void
cli_usage(FILE *f)
{
	int i;

	fprintf(f,
	    "usage: payhook [-c FILE] COMMAND [ARGS]\n"
	    "       payhook --version | --help\n"
	    "\n"
	    "commands:\n");
	for (i = 0; i < CLI_CMD__MAX; i++)
		if (cli_cmds[i].help != NULL)
			cli_usage_cmd(f, &cli_cmds[i]);
	fprintf(f,
	    "\n"
	    "The configuration file is FILE, else $PAYHOOK_CONFIG.\n");
}

/*
 * The synopsis of cmd on f; of every listed command called name when
 * cmd is NULL or unlisted.
 */
static void
cli_usage_of(FILE *f, const char *name, const struct cli_cmd *cmd)
{
	const struct cli_cmd *r;
	const char *lead = "usage:", *args;
	char words[64];
	int n;

	for (r = cli_cmds; r < cli_cmds + CLI_CMD__MAX; r++) {
		if (r->help == NULL || strcmp(r->name, name) != 0 ||
		    (cmd != NULL && cmd->help != NULL && r != cmd))
			continue;
		fprintf(f, "%s payhook [-c FILE] %s", lead,
		    cli_words(r, words, sizeof(words)));
		for (args = r->args; *args != '\0'; args += n) {
			n = cli_line_len(args);
			fprintf(f, " %.*s", n, args);
			if (args[n] == '\n')
				n++;
		}
		fputc('\n', f);
		lead = "      ";
	}
}

/* Is a command's first argument (argv[1], its name first) -h or --help?
 * Only there: further on it may be an operand or an option's value. */
static int
cli_asks_help(int argc, char **argv)
{
	return argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0);
}

/*
 * The row for argv: a command and its subcommand, else the command alone
 * (events [--after SEQ], order ID); NULL when there is none.
 */
static const struct cli_cmd *
cli_find(int argc, char **argv)
{
	const struct cli_cmd *alone = NULL;
	int i;

	for (i = 0; i < CLI_CMD__MAX; i++) {
		if (strcmp(cli_cmds[i].name, argv[0]) != 0)
			continue;
		if (cli_cmds[i].sub == NULL) {
			if (alone == NULL)
				alone = &cli_cmds[i];
		} else if (argc >= 2 && strcmp(cli_cmds[i].sub, argv[1]) == 0)
			return &cli_cmds[i];
	}
	return alone;
}

/* Whether any row is called name. */
static int
cli_known(const char *name)
{
	int i;

	for (i = 0; i < CLI_CMD__MAX; i++)
		if (strcmp(cli_cmds[i].name, name) == 0)
			return 1;
	return 0;
}

/* "payhook: events tail: --after " and what is wrong with it. */
static void __attribute__((format(printf, 3, 4)))
cli_complain(const struct cli_cmd *cmd, const struct cli_opt *o,
    const char *fmt, ...)
{
	char words[64];
	va_list ap;

	fprintf(stderr, "payhook: %s: --%s ", cli_words(cmd, words,
	    sizeof(words)), o->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Reads argv (argv[0] the command's last word) as c->cmd's options and
 * operand say.  Prints what is wrong with a value; CLI_EXIT_USAGE when
 * anything is.
 */
static int
cli_parse(struct cli *c, int argc, char **argv)
{
	const struct cli_cmd *cmd = c->cmd;
	const struct cli_opt *o, *opts = cmd->opts;
	struct option lo[CLI_OPTS_MAX + 1];
	unsigned long long *num;
	char *field;
	int ch, i, n = 0;

	memset(lo, 0, sizeof(lo));
	for (o = opts; n < CLI_OPTS_MAX && o->name != NULL; o++, n++) {
		lo[n].name = o->name;
		lo[n].has_arg = o->type == CLI_OPT_FLAG ? no_argument :
		    required_argument;
		lo[n].val = n + 1;
		if (o->type == CLI_OPT_NUMBER)
			*(unsigned long long *)((char *)&c->a + o->off) = o->def;
	}
	/* getopt's own complaints name the program, not the command. */
	argv[0] = (char *)"payhook";
	/* 0, not 1: glibc then reads "" afresh, and options may follow the
	 * operand (the "+" of the first parse would stop at it). */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch < 1 || ch > n)
			return CLI_EXIT_USAGE;
		o = &opts[ch - 1];
		field = (char *)&c->a + o->off;
		if (o->type == CLI_OPT_FLAG)
			*(int *)field = 1;
		else if (o->type == CLI_OPT_WORD)
			*(const char **)field = optarg;
		else {
			num = (unsigned long long *)field;
			if (cli_number(optarg, num) != 0 || *num < o->min ||
			    *num > o->max) {
				cli_complain(cmd, o, o->max == ULLONG_MAX ?
				    "takes a number" : "takes a number from "
				    "%llu to %llu", o->min, o->max);
				return CLI_EXIT_USAGE;
			}
		}
	}
	for (i = 0; i < n; i++)
		if (opts[i].needed && *(const char **)((char *)&c->a +
		    opts[i].off) == NULL) {
			cli_complain(cmd, &opts[i], "is needed");
			return CLI_EXIT_USAGE;
		}
	if (argc - optind != cmd->operand)
		return CLI_EXIT_USAGE;
	if (cmd->operand)
		c->a.word = argv[optind];
	return cmd->valid != NULL ? cmd->valid(c) : CLI_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c;
	char line[128];
	int ch, rc;

	memset(&c, 0, sizeof(c));
	c.path = getenv("PAYHOOK_CONFIG");
	log_init("payhook", LOG_LVL_WARN);
	while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			c.path = optarg;
			break;
		case 'h':
			cli_usage(stdout);
			return cli_stdout_done() == 0 ? CLI_EXIT_OK :
			    CLI_EXIT_FAIL;
		case 'V':
			version_line(line, sizeof(line), "payhook");
			printf("%s\n", line);
			return cli_stdout_done() == 0 ? CLI_EXIT_OK :
			    CLI_EXIT_FAIL;
		default:
			cli_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if ((c.cmd = cli_find(argc, argv)) == NULL) {
		if (cli_known(argv[0]) && cli_asks_help(argc, argv)) {
			/* A group (refunds --help): its commands. */
			cli_usage_of(stdout, argv[0], NULL);
			return cli_stdout_done() == 0 ? CLI_EXIT_OK :
			    CLI_EXIT_FAIL;
		}
		if (cli_known(argv[0]))
			cli_usage_of(stderr, argv[0], NULL);
		else {
			fprintf(stderr, "payhook: unknown command %s\n",
			    argv[0]);
			cli_usage(stderr);
		}
		return CLI_EXIT_USAGE;
	}
	/* The words of the command go; its last one is the parser's argv[0]. */
	if (c.cmd->sub != NULL) {
		argc--;
		argv++;
	}
	if (cli_asks_help(argc, argv)) {
		/* A row without a summary (order ID) stands for the listed
		 * rows of its name. */
		cli_usage_of(stdout, c.cmd->name, c.cmd);
		if (c.cmd->help != NULL) {
			fputc('\n', stdout);
			cli_usage_cmd(stdout, c.cmd);
		}
		return cli_stdout_done() == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	}
	if ((rc = cli_parse(&c, argc, argv)) != CLI_EXIT_OK) {
		cli_usage_of(stderr, c.cmd->name, c.cmd);
		return rc;
	}
	if (c.path == NULL || *c.path == '\0') {
		fprintf(stderr, "payhook: no configuration: give -c FILE or "
		    "set PAYHOOK_CONFIG\n");
		return CLI_EXIT_USAGE;
	}
	if ((rc = cli_open(&c)) == CLI_EXIT_OK)
		rc = c.cmd->run(&c);
	cli_close(&c);
	/* A command that failed has said why; once is enough. */
	if (rc == CLI_EXIT_OK && cli_stdout_done() != 0)
		rc = CLI_EXIT_FAIL;
	return rc;
}
