/*
 * payhook: the operator's command-line tool.
 *
 *   payhook [-c FILE] check
 *   payhook [-c FILE] order ID
 *   payhook [-c FILE] events [--after SEQ] [--limit N]
 *   payhook [-c FILE] stats
 *   payhook [-c FILE] sweep [--watch] [--interval SECONDS]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "conf.h"
#include "http.h"
#include "ledger.h"
#include "log.h"
#include "order.h"
#include "store.h"
#include "sweep.h"

static void
cli_usage(FILE *f)
{
	fprintf(f,
	    "usage: payhook [-c FILE] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  check                         validate the configuration, keys,\n"
	    "                                plugins and database; exit 1 on a problem\n"
	    "  order ID                      print an order as JSON\n"
	    "  events [--after SEQ] [--limit N]\n"
	    "                                print the event feed as JSON\n"
	    "  stats                         print database statistics as JSON\n"
	    "  sweep [--watch] [--interval S]\n"
	    "                                ask providers about pending orders that\n"
	    "                                are due, close expired unpaid ones; one\n"
	    "                                pass, or every S seconds with --watch\n"
	    "\n"
	    "The configuration file is FILE, else $PAYHOOK_CONFIG.\n");
}

static int
cli_open(const char *path, struct conf **conf, struct store **store,
    int quiet_ok)
{
	struct conf_errs errs;
	struct ph_diag diag;
	size_t i;
	int rc;

	memset(&errs, 0, sizeof(errs));
	rc = conf_open(path, conf, &errs);
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "payhook: %s: %s%s\n", path,
		    errs.warning[i] ? "warning: " : "", errs.line[i]);
	if (errs.dropped > 0)
		fprintf(stderr, "payhook: %s: %zu more problem(s) not shown\n",
		    path, errs.dropped);
	if (rc != 0)
		return -1;
	if (store == NULL)
		return 0;
	memset(&diag, 0, sizeof(diag));
	if (store_open((*conf)->db_path, (size_t)(*conf)->map_size_mb << 20,
	    store, &diag) != PH_OK) {
		fprintf(stderr, "payhook: %s\n", diag.msg);
		conf_free(*conf);
		*conf = NULL;
		return -1;
	}
	(void)quiet_ok;
	return 0;
}

static int
cli_print(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s == NULL)
		return 1;
	printf("%s\n", s);
	free(s);
	return 0;
}

static int
cli_check(const char *path)
{
	struct conf *conf;
	struct store *store = NULL;
	struct stat st;
	struct ph_diag diag;
	int exists;

	if (cli_open(path, &conf, NULL, 0) != 0) {
		fprintf(stderr, "payhook: %s: configuration has errors\n",
		    path);
		return 1;
	}
	exists = stat(conf->db_path, &st) == 0;
	memset(&diag, 0, sizeof(diag));
	if (store_open(conf->db_path, (size_t)conf->map_size_mb << 20,
	    &store, &diag) != PH_OK) {
		fprintf(stderr, "payhook: %s: %s\n", path, diag.msg);
		conf_free(conf);
		return 1;
	}
	store_close(store);
	printf("payhook: %s: configuration OK (%zu profile(s), %zu "
	    "plugin(s), database %s%s)\n", path, conf->nprofiles,
	    conf->loader.n, conf->db_path, exists ? "" : ", created");
	conf_free(conf);
	return 0;
}

static int
cli_order(const char *path, const char *id)
{
	struct conf *conf;
	struct store *store;
	json_t *o, *view;
	int rc;

	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	rc = ledger_get_order(store, id, &o);
	if (rc == PH_OK) {
		view = order_to_api(o);
		rc = cli_print(view);
		json_decref(view);
		json_decref(o);
	} else {
		fprintf(stderr, "payhook: order %s: %s\n", id,
		    rc == PH_E_NOTFOUND ? "not found" : ph_strerror(rc));
		rc = rc == PH_E_NOTFOUND ? 2 : 1;
	}
	store_close(store);
	conf_free(conf);
	return rc;
}

static int
cli_number(const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

static int
cli_events(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "after", required_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long after = 0, limit = 100;
	struct conf *conf;
	struct store *store;
	json_t *events, *out, *e;
	uint64_t next;
	size_t i;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'a' && cli_number(optarg, &after) == 0)
			continue;
		if (ch == 'l' && cli_number(optarg, &limit) == 0 &&
		    limit >= 1 && limit <= 1000)
			continue;
		fprintf(stderr, "payhook: events: --after takes a sequence "
		    "number, --limit a number from 1 to 1000\n");
		return 1;
	}
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	rc = ledger_events(store, after, (unsigned)limit, &events, &next);
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: events: %s\n", ph_strerror(rc));
		rc = 1;
	} else {
		out = json_pack("{s:[], s:I}", "events", "next",
		    (json_int_t)next);
		json_array_foreach(events, i, e)
			json_array_append_new(json_object_get(out, "events"),
			    order_event_to_api(e));
		rc = cli_print(out);
		json_decref(out);
		json_decref(events);
	}
	store_close(store);
	conf_free(conf);
	return rc;
}

static int
cli_stats(const char *path)
{
	struct conf *conf;
	struct store *store;
	struct store_stats st;
	json_t *out, *dbs;
	int i, rc;

	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	if ((rc = store_stats(store, &st)) != PH_OK) {
		fprintf(stderr, "payhook: stats: %s\n", ph_strerror(rc));
		rc = 1;
	} else {
		dbs = json_object();
		for (i = 0; i < STORE_DB__MAX; i++)
			json_object_set_new(dbs, store_db_name(i),
			    json_integer((json_int_t)st.entries[i]));
		out = json_pack("{s:s, s:o, s:I, s:I, s:i, s:i}",
		    "database", conf->db_path, "entries", dbs,
		    "map_size", (json_int_t)st.map_size,
		    "map_used", (json_int_t)st.map_used,
		    "readers_used", (int)st.readers_used,
		    "readers_max", (int)st.readers_max);
		rc = cli_print(out);
		json_decref(out);
	}
	store_close(store);
	conf_free(conf);
	return rc;
}

static volatile sig_atomic_t cli_stop;

static void
cli_on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

static int
cli_sweep(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long interval = 5;
	struct sweep_stats st;
	struct sigaction sa;
	struct conf *conf;
	struct store *store;
	unsigned char rnd[16];
	char token[33];
	int ch, watch = 0, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'w') {
			watch = 1;
			continue;
		}
		if (ch == 'i' && cli_number(optarg, &interval) == 0 &&
		    interval >= 1 && interval <= 3600)
			continue;
		fprintf(stderr, "payhook: sweep: --interval takes seconds "
		    "from 1 to 3600\n");
		return 1;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		fprintf(stderr, "payhook: sweep: no randomness\n");
		return 1;
	}
	ph_hex_lower(rnd, sizeof(rnd), token);
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	log_set_level(conf->log_level);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	do {
		int64_t now = (int64_t)time(NULL);

		if ((rc = sweep_pass(conf, store, now, token, &st)) != PH_OK) {
			log_err("sweep: %s", ph_strerror(rc));
			rc = 1;
		} else {
			rc = 0;
			if (st.due > 0 || !watch)
				log_info("sweep: %zu due, %zu taken, %zu "
				    "queries, %zu failed, %zu paid, %zu closed",
				    st.due, st.leased, st.queries, st.failures,
				    st.paid, st.closed);
		}
		if (watch && !cli_stop)
			sleep((unsigned)interval);
	} while (watch && !cli_stop);
	store_close(store);
	conf_free(conf);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *path = getenv("PAYHOOK_CONFIG");
	int ch;

	log_init("payhook", LOG_LVL_WARN);
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			cli_usage(stdout);
			return 0;
		default:
			cli_usage(stderr);
			return 1;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		cli_usage(stderr);
		return 1;
	}
	if (path == NULL || *path == '\0') {
		fprintf(stderr, "payhook: no configuration: give -c FILE or "
		    "set PAYHOOK_CONFIG\n");
		return 1;
	}
	if (strcmp(argv[0], "check") == 0 && argc == 1)
		return cli_check(path);
	if (strcmp(argv[0], "order") == 0 && argc == 2)
		return cli_order(path, argv[1]);
	if (strcmp(argv[0], "events") == 0)
		return cli_events(path, argc, argv);
	if (strcmp(argv[0], "stats") == 0 && argc == 1)
		return cli_stats(path);
	if (strcmp(argv[0], "sweep") == 0) {
		if (http_global_init() != PH_OK) {
			fprintf(stderr, "payhook: libcurl cannot start\n");
			return 1;
		}
		return cli_sweep(path, argc, argv);
	}
	fprintf(stderr, "payhook: unknown command or wrong arguments: %s\n",
	    argv[0]);
	cli_usage(stderr);
	return 1;
}
