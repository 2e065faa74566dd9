/*
 * What every command runs with: the configuration, the store and what sits
 * beside it, opened in one place as the command's row needs and closed in
 * one place after it.  Run as root on a store that belongs to someone else
 * (the web server's user), payhook becomes that user before it opens the
 * store, so that nothing it creates there is root's.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "cli/cli.h"
#include "jobs/http.h"
#include "ledger/ledger.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "store/archive.h"

volatile sig_atomic_t cli_stop;

static void
cli_on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

/* SIGTERM and SIGINT end a loop after the pass in hand. */
void
cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* Reads the configuration, printing its problems one per line. */
int
cli_open_conf(struct cli *c)
{
	struct conf_errs errs;
	size_t i;
	int rc;

	memset(&errs, 0, sizeof(errs));
	rc = conf_open(c->path, &c->conf, &errs);
	/* A job's log is read by machines: once the configuration says
	 * how, its warnings are lines of that log too. */
	if (rc == 0 && (c->cmd->needs & CLI_NEED_LOG)) {
		log_set_level(c->conf->log_level);
		log_set_format(c->conf->log_format);
		for (i = 0; i < errs.n; i++)
			log_warn("%s: %s", c->path, errs.line[i]);
		errs.n = 0;
	}
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "payhook: %s: %s%s\n", c->path,
		    errs.warning[i] ? "warning: " : "", errs.line[i]);
	if (errs.dropped > 0)
		fprintf(stderr, "payhook: %s: %zu more problem(s) not shown\n",
		    c->path, errs.dropped);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_CONFIG;
}

/*
 * Who the store belongs to: its file, or while there is none (or it is a
 * link: whoever owns the folder could have made it point to root's
 * files, and root must never act for that file's owner) the folder it
 * will be made in.  0 with *st filled, -1 when neither is there.
 */
static int
cli_store_owner(const char *db_path, struct stat *st)
{
	char *tmp;
	int rc;

	if (lstat(db_path, st) == 0) {
		if (!S_ISLNK(st->st_mode))
			return 0;
	} else if (errno != ENOENT)
		return -1;
	if ((tmp = strdup(db_path)) == NULL)
		return -1;
	rc = stat(dirname(tmp), st);
	free(tmp);
	return rc;
}

/*
 * As root, becomes the owner of the store (user, group, and the user's
 * groups) when that is not root: the files payhook.fcgi shares with us
 * (the store's lock, -metrics, -group, the -archive folder) are created by
 * whoever opens them first, mode 0600, and a root-owned one locks the web
 * server out.  Prints why when it cannot.
 */
int
cli_become_owner(struct cli *c)
{
	const char *db = c->conf->db_path;
	struct passwd *pw;
	struct stat st;
	char name[64];
	int rc;

	if (geteuid() != 0 || cli_store_owner(db, &st) == -1 || st.st_uid == 0)
		return 0;
	/* Looked up before the switch: NSS may need root's files. */
	if ((pw = getpwuid(st.st_uid)) != NULL)
		ph_strlcpy(name, pw->pw_name, sizeof(name));
	else
		snprintf(name, sizeof(name), "uid %ld", (long)st.st_uid);
	rc = pw != NULL ? initgroups(pw->pw_name, st.st_gid) :
	    setgroups(1, &st.st_gid);
	if (rc == -1 || setgid(st.st_gid) == -1 || setuid(st.st_uid) == -1) {
		fprintf(stderr, "payhook: cannot become %s (group %ld), who "
		    "owns the database %s: %s; run payhook as that user\n",
		    name, (long)st.st_gid, db, strerror(errno));
		return -1;
	}
	/* Root must be out of reach now, or a file could still be root's. */
	if (setuid(0) != -1) {
		fprintf(stderr, "payhook: could not leave root for %s, who owns "
		    "the database %s\n", name, db);
		return -1;
	}
	log_info("running as %s, who owns the database %s", name, db);
	c->root_left = 1;
	return 0;
}

/*
 * Opens the store as its owner, or prints why not after "payhook: " and
 * where, when given (check names the configuration file).  flags:
 * STORE_OPEN_CREATE (check: a PostgreSQL database gets payhook's tables).
 */
int
cli_open_store(struct cli *c, const char *where, int flags)
{
	struct store_spec spec;
	struct ph_diag diag;

	if (cli_become_owner(c) != 0)
		return CLI_EXIT_FAIL;
	memset(&diag, 0, sizeof(diag));
	conf_store_spec(c->conf, &spec);
	if (ledger_open_spec(&spec, flags, &c->store, &diag) != PH_OK) {
		fprintf(stderr, "payhook: %s%s%s\n", where != NULL ? where : "",
		    where != NULL ? ": " : "", diag.msg);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

/* Opens what c->cmd needs; prints what fails. */
int
cli_open(struct cli *c)
{
	unsigned int needs = c->cmd->needs;
	int rc;

	if ((needs & CLI_NEED_CONF) && (rc = cli_open_conf(c)) != CLI_EXIT_OK)
		return rc;
	if ((needs & CLI_NEED_HTTP) && http_global_init() != PH_OK) {
		fprintf(stderr, "payhook: libcurl cannot start\n");
		return CLI_EXIT_FAIL;
	}
	if ((needs & CLI_NEED_STORE) &&
	    (rc = cli_open_store(c, NULL, 0)) != CLI_EXIT_OK)
		return rc;
	if (needs & CLI_NEED_METRICS)
		metrics_open_beside(c->conf->db_path);
	/* archive_open() logs its failure; the commands go on without it. */
	if ((needs & CLI_NEED_ARCHIVE) || ((needs & CLI_NEED_ARCHIVE_KEPT) &&
	    c->conf->archive_days > 0)) {
		struct archive_limits lim;

		conf_archive_limits(c->conf, &lim);
		archive_open(c->conf->db_path, &lim);
	}
	return CLI_EXIT_OK;
}

/* Closes whatever cli_open (or the command) opened. */
void
cli_close(struct cli *c)
{
	archive_close();
	metrics_close();
	if (c->store != NULL)
		store_close(c->store);
	c->store = NULL;
	conf_free(c->conf);
	c->conf = NULL;
}

/* Prints j indented, and drops the reference to it. */
int
cli_print_new(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (s == NULL)
		return CLI_EXIT_FAIL;
	printf("%s\n", s);
	free(s);
	return CLI_EXIT_OK;
}

/* A decimal number, digits only. */
int
cli_number(const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/*
 * What a command printed must have reached its reader: on a full disk or
 * a file that fails its writes, `payhook order list --json > f` is not
 * done.  0, or -1 said on the standard error.
 */
int
cli_stdout_done(void)
{
	int err;

	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	err = errno != 0 ? errno : EIO;
	fprintf(stderr, "payhook: the standard output could not be written: "
	    "%s\n", strerror(err));
	return -1;
}
