/*
 * What every command runs with: the configuration, the store and what sits
 * beside it, opened in one place as the command's row needs and closed in
 * one place after it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "cli/cli.h"
#include "jobs/http.h"
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
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "payhook: %s: %s%s\n", c->path,
		    errs.warning[i] ? "warning: " : "", errs.line[i]);
	if (errs.dropped > 0)
		fprintf(stderr, "payhook: %s: %zu more problem(s) not shown\n",
		    c->path, errs.dropped);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_CONFIG;
}

/* Opens the store: PH_OK, or the store's error with its message in diag. */
int
cli_open_store(struct cli *c, struct ph_diag *diag)
{
	memset(diag, 0, sizeof(*diag));
	return store_open(c->conf->db_path, (size_t)c->conf->map_size_mb << 20,
	    &c->store, diag);
}

/* The counters shared with payhook.fcgi, beside the database. */
static void
cli_metrics_open(const struct conf *conf)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s-metrics", conf->db_path) <
	    (int)sizeof(path))
		metrics_open(path);
}

/* Opens what c->cmd needs; prints what fails. */
int
cli_open(struct cli *c)
{
	unsigned int needs = c->cmd->needs;
	struct ph_diag diag;
	int rc;

	if ((needs & CLI_NEED_CONF) && (rc = cli_open_conf(c)) != CLI_EXIT_OK)
		return rc;
	if ((needs & CLI_NEED_HTTP) && http_global_init() != PH_OK) {
		fprintf(stderr, "payhook: libcurl cannot start\n");
		return CLI_EXIT_FAIL;
	}
	if (needs & CLI_NEED_STORE) {
		if ((rc = cli_open_store(c, &diag)) != PH_OK) {
			fprintf(stderr, "payhook: %s\n", diag.msg);
			return CLI_EXIT_FAIL;
		}
	}
	if (needs & CLI_NEED_METRICS)
		cli_metrics_open(c->conf);
	/* Without it the commands say what they miss; not fatal here. */
	if ((needs & CLI_NEED_ARCHIVE) || ((needs & CLI_NEED_ARCHIVE_KEPT) &&
	    c->conf->archive_days > 0))
		archive_open(c->conf->db_path, c->conf->archive_map_mb);
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
