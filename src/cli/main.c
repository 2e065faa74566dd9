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
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
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

#include "store/archive.h"
#include "jobs/certs.h"
#include "conf/conf.h"
#include "jobs/http.h"
#include "ledger/ledger.h"
#include "ops/metrics.h"
#include "ops/log.h"
#include "ledger/order.h"
#include "jobs/push.h"
#include "jobs/recon.h"
#include "jobs/refund.h"
#include "store/store.h"
#include "jobs/sweep.h"

static void
cli_usage(FILE *f)
{
	fprintf(f,
	    "usage: payhook [-c FILE] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  check [--user USER]           validate the configuration, keys,\n"
	    "                                plugins and database; with --user, also\n"
	    "                                that USER (the web server's) can use them\n"
	    "  order show ID                 print an order as JSON (also: order ID)\n"
	    "  order list [--state S] [--limit N] [--after ID] [--json]\n"
	    "                                list orders, one per line\n"
	    "  events [--after SEQ] [--limit N]\n"
	    "                                print the event feed as JSON\n"
	    "  events tail [--after SEQ] [--follow]\n"
	    "                                print events one JSON object per line\n"
	    "  events resend --endpoint NAME [--from SEQ]\n"
	    "                                push events again from SEQ (default 1)\n"
	    "  events deliveries [--endpoint NAME]\n"
	    "                                the push delivery log\n"
	    "  stats                         print database statistics as JSON\n"
	    "  dedup prune --older-than AGE  forget dedup keys first seen before AGE\n"
	    "                                ago (e.g. 90d); payments stay deduplicated\n"
	    "  backup FILE                   write a consistent, compacted copy of the\n"
	    "                                database to FILE while payhook runs\n"
	    "  reconcile --profile P --statement FILE [--date YYYY-MM-DD]\n"
	    "            [--report-dir DIR]  compare a provider statement with the\n"
	    "                                store; repair what is missing here, raise\n"
	    "                                the rest; report as CSV and JSON\n"
	    "  notifications list [--after ID] [--limit N]\n"
	    "                                archived notifications, one per line\n"
	    "  notifications show ID         one archived notification as JSON\n"
	    "  notifications replay ID       run it through the current plugin and\n"
	    "                                configuration again, applying it\n"
	    "  refunds run                   carry out the refund work list\n"
	    "  refunds list [--all]          list open (or all) refunds\n"
	    "  sweep [--watch] [--interval S]\n"
	    "                                ask providers about pending orders that\n"
	    "                                are due, close expired unpaid ones; one\n"
	    "                                pass, or every S seconds with --watch\n"
	    "\n"
	    "The configuration file is FILE, else $PAYHOOK_CONFIG.\n");
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

/* The identity a check is made for: the web server's user. */
struct cli_user {
	const char *name;
	uid_t uid;
	gid_t groups[64];
	int ngroups;
};

/* What user may do to a file by its mode bits (root may do all). */
static int
cli_mode_allows(const struct cli_user *u, const struct stat *st, int want)
{
	int i, shift = 0;

	if (u->uid == 0)
		return 1;
	if (st->st_uid == u->uid)
		shift = 6;
	else
		for (i = 0; i < u->ngroups; i++)
			if (st->st_gid == u->groups[i]) {
				shift = 3;
				break;
			}
	return (int)((st->st_mode >> shift) & 7 & (unsigned)want) == want;
}

/* Can user reach and use path?  Prints the problem; 0 when fine. */
static int
cli_user_may(const struct cli_user *u, const char *path, int want,
    const char *what)
{
	char dir[4096], *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	/* Every folder on the way must be searchable. */
	for (slash = strchr(dir + 1, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (stat(dir, &st) == 0 && !cli_mode_allows(u, &st, 1)) {
			fprintf(stderr, "payhook: user %s cannot enter %s, on the "
			    "way to the %s %s\n", u->name, dir, what, path);
			return -1;
		}
		*slash = '/';
	}
	if (stat(path, &st) == -1) {
		fprintf(stderr, "payhook: %s %s: %s\n", what, path,
		    strerror(errno));
		return -1;
	}
	if (!cli_mode_allows(u, &st, want)) {
		fprintf(stderr, "payhook: user %s cannot %s the %s %s (mode "
		    "%04o, owner %ld)\n", u->name, want & 2 ? "write" : "read",
		    what, path, (unsigned)(st.st_mode & 07777),
		    (long)st.st_uid);
		return -1;
	}
	return 0;
}

/* Everything payhook.fcgi opens, checked as the web server's user. */
static int
cli_check_user(const struct conf *conf, const char *user)
{
	struct cli_user u;
	struct passwd *pw;
	char *dir, path[4096];
	size_t i, j, k;
	int bad = 0;

	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "payhook: no user %s on this machine\n", user);
		return -1;
	}
	u.name = user;
	u.uid = pw->pw_uid;
	u.ngroups = 64;
	if (getgrouplist(user, pw->pw_gid, u.groups, &u.ngroups) == -1)
		u.ngroups = 0;
	bad |= cli_user_may(&u, conf->path, 4, "configuration file");
	if (conf->api_token_file != NULL)
		bad |= cli_user_may(&u, conf->api_token_file, 4, "token file");
	bad |= cli_user_may(&u, conf->plugin_dir, 5, "plugin folder");
	for (i = 0; i < conf->loader.n; i++)
		bad |= cli_user_may(&u, conf->loader.plugins[i].file, 4,
		    "plugin");
	for (i = 0; i < conf->nprofiles; i++) {
		const struct conf_profile *pr = &conf->profiles[i];
		const struct ph_conf_key *keys = pr->plugin->prov->conf_keys;

		for (j = 0; keys[j].name != NULL; j++) {
			char list[4096], *tok, *save;

			if ((keys[j].type != PH_CONF_FILE &&
			    keys[j].type != PH_CONF_SECRET_FILE &&
			    keys[j].type != PH_CONF_FILES) ||
			    !pr->values[j].present)
				continue;
			snprintf(list, sizeof(list), "%s", pr->values[j].str);
			for (k = 0, tok = strtok_r(list, " \t", &save);
			    tok != NULL; tok = strtok_r(NULL, " \t", &save),
			    k++) {
				char *full = conf_path(conf, tok);

				if (full != NULL)
					bad |= cli_user_may(&u, full, 4,
					    keys[j].name);
				free(full);
			}
		}
		if (pr->client_key_file != NULL)
			bad |= cli_user_may(&u, pr->client_key_file, 4,
			    "client_key_file");
	}
	if ((dir = strdup(conf->db_path)) != NULL) {
		bad |= cli_user_may(&u, dirname(dir), 7, "database folder");
		free(dir);
	}
	bad |= cli_user_may(&u, conf->db_path, 6, "database");
	snprintf(path, sizeof(path), "%s-lock", conf->db_path);
	bad |= cli_user_may(&u, path, 6, "database lock file");
	snprintf(path, sizeof(path), "%s-metrics", conf->db_path);
	if (access(path, F_OK) == 0)
		bad |= cli_user_may(&u, path, 6, "metrics file");
	return bad ? -1 : 0;
}

struct cli_certs {
	int64_t now;
	int near;
};

static void
cli_cert_line(const struct certs_item *it, void *arg)
{
	struct cli_certs *cc = arg;
	int64_t left = it->not_after - cc->now;
	char when[32];

	order_time_text(it->not_after, when);
	if (left <= 0) {
		cc->near++;
		fprintf(stderr, "payhook: warning: profile %s: %s %s: "
		    "certificate %s EXPIRED on %s\n", it->profile, it->key,
		    it->file, it->subject, when);
	} else if (left <= (int64_t)CERTS_WARN_DAYS * 86400) {
		cc->near++;
		fprintf(stderr, "payhook: warning: profile %s: %s %s: "
		    "certificate %s expires on %s, in %lld day(s)\n",
		    it->profile, it->key, it->file, it->subject, when,
		    (long long)(left / 86400));
	} else
		printf("payhook: profile %s: %s %s: certificate %s expires on "
		    "%s, in %lld days\n", it->profile, it->key, it->file,
		    it->subject, when, (long long)(left / 86400));
}

static int
cli_check(const char *path, const char *user)
{
	struct cli_certs cc;
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
	cc.now = (int64_t)time(NULL);
	cc.near = 0;
	certs_each(conf, cli_cert_line, &cc);
	if (user != NULL && cli_check_user(conf, user) != 0) {
		fprintf(stderr, "payhook: %s: user %s cannot run payhook with "
		    "this configuration\n", path, user);
		conf_free(conf);
		return 1;
	}
	printf("payhook: %s: configuration OK (%zu profile(s), %zu "
	    "plugin(s), database %s%s)%s%s\n", path, conf->nprofiles,
	    conf->loader.n, conf->db_path, exists ? "" : ", created",
	    user != NULL ? "; usable by " : "", user != NULL ? user : "");
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

/*
 * Per profile, from the shared counters: how paid orders were learnt
 * (the 掉单 rate is the share not by notification), the mean payment lag,
 * notification outcomes.
 */
static json_t *
cli_profile_rates(const struct conf *conf)
{
	static const char *const sources[] = {
		"notify", "query", "statement", "replay",
	};
	static const char *const outcomes[] = {
		"applied", "duplicate", "refused_signature", "refused_merchant",
		"refused_malformed", "refused_field", "storage_failure",
	};
	json_t *all = json_object(), *p, *by, *no;
	char labels[128];
	size_t i, j;

	for (i = 0; i < conf->nprofiles; i++) {
		const char *name = conf->profiles[i].name;
		uint64_t total = 0, missed = 0, lag = 0, n = 0, v;

		by = json_object();
		for (j = 0; j < 4; j++) {
			snprintf(labels, sizeof(labels), "profile=%s&source=%s",
			    name, sources[j]);
			v = metrics_get("payhook_orders_paid_total", labels);
			json_object_set_new(by, sources[j],
			    json_integer((json_int_t)v));
			total += v;
			if (j == 1 || j == 2)
				missed += v;
			lag += metrics_get("payhook_payment_lag_seconds_sum",
			    labels);
			n += metrics_get("payhook_payment_lag_seconds_count",
			    labels);
		}
		no = json_object();
		for (j = 0; j < sizeof(outcomes) / sizeof(outcomes[0]); j++) {
			snprintf(labels, sizeof(labels),
			    "profile=%s&outcome=%s", name, outcomes[j]);
			json_object_set_new(no, outcomes[j], json_integer(
			    (json_int_t)metrics_get(
			    "payhook_notifications_total", labels)));
		}
		p = json_pack("{s:o, s:f, s:f, s:o}", "paid_by", by,
		    "missed_notification_ratio", total == 0 ? 0.0 :
		    (double)missed / (double)total,
		    "payment_lag_seconds_mean", n == 0 ? 0.0 :
		    (double)lag / (double)n, "notifications", no);
		json_object_set_new(all, name, p);
	}
	return all;
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
		uint64_t counts[ORDER__MAX];
		json_t *states = json_object();

		if (ledger_counts_init(store) == PH_OK &&
		    ledger_counts(store, counts, ORDER__MAX) == PH_OK)
			for (i = 0; i < ORDER__MAX; i++)
				json_object_set_new(states, order_state_name(i),
				    json_integer((json_int_t)counts[i]));
		out = json_pack("{s:s, s:o, s:o, s:I, s:I, s:i, s:i}",
		    "database", conf->db_path, "orders", states,
		    "entries", dbs,
		    "map_size", (json_int_t)st.map_size,
		    "map_used", (json_int_t)st.map_used,
		    "readers_used", (int)st.readers_used,
		    "readers_max", (int)st.readers_max);
		cli_metrics_open(conf);
		json_object_set_new(out, "profiles", cli_profile_rates(conf));
		rc = cli_print(out);
		json_decref(out);
	}
	store_close(store);
	conf_free(conf);
	return rc;
}

static volatile sig_atomic_t cli_stop;

static int
cli_reconcile(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "statement", required_argument, NULL, 's' },
		{ "date", required_argument, NULL, 'd' },
		{ "report-dir", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct recon_opts o;
	struct recon_summary sum;
	struct ph_diag diag;
	struct conf *conf;
	struct store *store;
	int ch, rc, i;

	memset(&o, 0, sizeof(o));
	o.report_dir = ".";
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': o.profile = optarg; break;
		case 's': o.statement = optarg; break;
		case 'd': o.date = optarg; break;
		case 'r': o.report_dir = optarg; break;
		default:
			o.profile = NULL;
			break;
		}
	}
	if (o.profile == NULL || o.statement == NULL || optind != argc) {
		fprintf(stderr, "payhook: reconcile --profile P --statement "
		    "FILE [--date YYYY-MM-DD] [--report-dir DIR]\n");
		return 1;
	}
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	cli_metrics_open(conf);
	memset(&diag, 0, sizeof(diag));
	rc = recon_run(conf, store, &o, (int64_t)time(NULL), &sum, &diag);
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: reconcile %s: %s\n", o.statement,
		    diag.msg[0] != '\0' ? diag.msg : ph_strerror(rc));
	} else {
		printf("reconcile %s %s: %llu statement lines\n", o.profile,
		    sum.date, (unsigned long long)sum.lines);
		for (i = 0; i < RECON__MAX; i++)
			printf("  %-20s %8zu  %14lld\n", recon_cat_name(i),
			    sum.count[i], (long long)sum.amount[i]);
		printf("report: %s\n        %s\n", sum.csv_path, sum.json_path);
	}
	store_close(store);
	conf_free(conf);
	return rc == PH_OK ? 0 : 1;
}

static int
cli_replay(struct conf *conf, struct store *store, uint64_t id)
{
	const struct conf_profile *pr;
	struct ph_header *h = NULL;
	struct ledger_result res;
	struct ledger_fact fact;
	struct archive_rec a;
	struct ph_request req;
	struct ph_event ev;
	struct ph_diag diag;
	unsigned char *body = NULL;
	json_t *rec, *hs, *pair;
	size_t len, i;
	int rc;

	if ((rc = archive_get(id, &rec)) != PH_OK) {
		fprintf(stderr, "payhook: notification %llu: %s\n",
		    (unsigned long long)id, rc == PH_E_NOTFOUND ?
		    "not in the archive" : ph_strerror(rc));
		return 1;
	}
	pr = conf_profile(conf, json_string_value(json_object_get(rec,
	    "profile")));
	if (pr == NULL || !(pr->plugin->prov->caps & PH_CAP_NOTIFY)) {
		fprintf(stderr, "payhook: notification %llu: profile %s is not "
		    "configured (any more)\n", (unsigned long long)id,
		    json_string_value(json_object_get(rec, "profile")));
		json_decref(rec);
		return 1;
	}
	if (archive_body(rec, &body, &len) != PH_OK) {
		fprintf(stderr, "payhook: notification %llu: unreadable body\n",
		    (unsigned long long)id);
		free(body);
		json_decref(rec);
		return 1;
	}
	hs = json_object_get(rec, "headers");
	h = calloc(json_array_size(hs) + 1, sizeof(*h));
	json_array_foreach(hs, i, pair) {
		h[i].name = json_string_value(json_array_get(pair, 0));
		h[i].value = json_string_value(json_array_get(pair, 1));
	}
	memset(&req, 0, sizeof(req));
	req.method = json_string_value(json_object_get(rec, "method"));
	req.content_type = json_string_value(json_object_get(rec,
	    "content_type"));
	req.body = body;
	req.body_len = len;
	req.headers = h;
	req.nheaders = json_array_size(hs);
	/* Verified as of its arrival: freshness windows still apply to
	 * when the provider sent it, not to today. */
	req.now = json_integer_value(json_object_get(rec, "at"));
	memset(&ev, 0, sizeof(ev));
	memset(&diag, 0, sizeof(diag));
	memset(&a, 0, sizeof(a));
	a.at = (int64_t)time(NULL);
	a.profile = pr->name;
	a.provider = pr->plugin->prov->name;
	a.method = req.method;
	a.content_type = req.content_type;
	a.headers = h;
	a.nheaders = req.nheaders;
	a.body = body;
	a.body_len = len;
	a.replay_of = id;
	rc = pr->plugin->prov->parse_notify(pr->ctx, &req, &ev, &diag);
	if (rc != PH_OK) {
		printf("notification %llu: still refused: %s (%s)\n",
		    (unsigned long long)id, ph_strerror(rc), diag.msg);
		a.verdict = "refused";
		a.reason = diag.msg;
		a.order_id = "";
		a.outcome = "refused";
		archive_put(&a);
		rc = 1;
		goto done;
	}
	fact.profile = pr->name;
	fact.provider = pr->plugin->prov->name;
	fact.source = "replay";
	fact.ev = &ev;
	fact.now = (int64_t)time(NULL);
	if ((rc = ledger_apply(store, &fact, &res, &diag)) != PH_OK) {
		fprintf(stderr, "payhook: notification %llu: verified but not "
		    "recorded: %s\n", (unsigned long long)id, diag.msg);
		rc = 1;
		goto done;
	}
	printf("notification %llu: verified; order %s: %s%s%s\n",
	    (unsigned long long)id, ev.order_id,
	    ledger_outcome_name(res.outcome),
	    res.event_type[0] != '\0' ? ", raised " : "", res.event_type);
	a.verdict = "verified";
	a.reason = "";
	a.order_id = ev.order_id;
	a.outcome = ledger_outcome_name(res.outcome);
	archive_put(&a);
	rc = 0;
done:
	free(h);
	free(body);
	json_decref(rec);
	return rc;
}

static int
cli_notifications(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "after", required_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long after = 0, limit = 100, id;
	struct conf *conf;
	struct store *store;
	json_t *list, *r;
	size_t i;
	int ch, rc = 0;

	if (argc < 1)
		goto usage;
	if (strcmp(argv[0], "list") == 0) {
		optind = 1;
		while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
			if (ch == 'a' && cli_number(optarg, &after) == 0)
				continue;
			if (ch == 'l' && cli_number(optarg, &limit) == 0 &&
			    limit >= 1 && limit <= 100000)
				continue;
			goto usage;
		}
	} else if ((strcmp(argv[0], "show") != 0 &&
	    strcmp(argv[0], "replay") != 0) || argc != 2 ||
	    cli_number(argv[1], &id) != 0)
		goto usage;
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	cli_metrics_open(conf);
	archive_open(conf->db_path, conf->archive_map_mb);
	if (strcmp(argv[0], "list") == 0) {
		if ((rc = archive_list(after, limit, &list)) == PH_OK) {
			json_array_foreach(list, i, r) {
				char when[32];

				order_time_text(json_integer_value(
				    json_object_get(r, "at")), when);
				printf("%lld\t%s\t%s\t%s\t%s\t%s",
				    (long long)json_integer_value(
				    json_object_get(r, "id")), when,
				    json_string_value(json_object_get(r,
				    "profile")),
				    json_string_value(json_object_get(r,
				    "order_id"))[0] != '\0' ?
				    json_string_value(json_object_get(r,
				    "order_id")) : "-",
				    json_string_value(json_object_get(r,
				    "verdict")),
				    json_string_value(json_object_get(r,
				    "outcome")));
				if (json_integer_value(json_object_get(r,
				    "replay_of")) != 0)
					printf("\treplay_of=%lld", (long long)
					    json_integer_value(json_object_get(r,
					    "replay_of")));
				printf("\n");
			}
		}
		json_decref(list);
	} else if (strcmp(argv[0], "show") == 0) {
		if ((rc = archive_get(id, &r)) == PH_OK) {
			unsigned char *body;
			size_t len;

			json_t *text = NULL;

			/* The body as text too, when it is UTF-8. */
			if (archive_body(r, &body, &len) == PH_OK &&
			    body != NULL)
				text = json_stringn((char *)body, len);
			if (text != NULL)
				json_object_set_new(r, "body_text", text);
			free(body);
			cli_print(r);
			json_decref(r);
		} else
			fprintf(stderr, "payhook: notification %llu: %s\n",
			    id, rc == PH_E_NOTFOUND ? "not in the archive" :
			    ph_strerror(rc));
		rc = rc == PH_OK ? 0 : 1;
	} else
		rc = cli_replay(conf, store, id);
	archive_close();
	store_close(store);
	conf_free(conf);
	return rc;
usage:
	fprintf(stderr, "payhook: notifications list [--after ID] [--limit N] "
	    "| notifications show ID | notifications replay ID\n");
	return 1;
}

static int
cli_events_push(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "from", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long from = 1;
	const char *name = NULL;
	struct conf *conf;
	struct store *store;
	json_t *log, *e;
	size_t i;
	int ch, rc = 0, resend = strcmp(argv[0], "resend") == 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'e') {
			name = optarg;
			continue;
		}
		if (ch == 'f' && resend && cli_number(optarg, &from) == 0)
			continue;
		goto usage;
	}
	if (resend && name == NULL)
		goto usage;
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	if (resend) {
		for (i = 0; i < conf->npushes; i++)
			if (strcmp(conf->pushes[i].name, name) == 0)
				break;
		if (i == conf->npushes) {
			fprintf(stderr, "payhook: no [push.%s] endpoint\n",
			    name);
			rc = 1;
		} else if ((rc = push_resend(store, name, from)) != PH_OK) {
			fprintf(stderr, "payhook: events resend: %s\n",
			    ph_strerror(rc));
			rc = 1;
		} else
			printf("payhook: push %s delivers again from event "
			    "%llu at the next sweep\n", name, from);
	} else if ((rc = push_log(store, name, 1000, &log)) == PH_OK) {
		json_array_foreach(log, i, e) {
			char when[32];

			order_time_text(json_integer_value(json_object_get(e,
			    "at")), when);
			printf("%s\t%s\t%lld\t%lld\t%s\n", when,
			    json_string_value(json_object_get(e, "endpoint")),
			    (long long)json_integer_value(json_object_get(e,
			    "seq")), (long long)json_integer_value(
			    json_object_get(e, "status")),
			    json_string_value(json_object_get(e, "error")));
		}
		json_decref(log);
	}
	store_close(store);
	conf_free(conf);
	return rc == PH_OK ? 0 : 1;
usage:
	fprintf(stderr, "payhook: events resend --endpoint NAME [--from SEQ] "
	    "| events deliveries [--endpoint NAME]\n");
	return 1;
}

static int
cli_refunds(const char *path, int argc, char **argv)
{
	struct refund_stats st;
	struct conf *conf;
	struct store *store;
	json_t *items, *it;
	unsigned char rnd[16];
	char token[33];
	size_t i;
	int rc;

	if (argc == 1 && strcmp(argv[0], "run") == 0) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return 1;
		ph_hex_lower(rnd, sizeof(rnd), token);
		if (cli_open(path, &conf, &store, 1) != 0)
			return 1;
		log_set_level(conf->log_level);
		cli_metrics_open(conf);
		rc = refund_run(conf, store, (int64_t)time(NULL), token, &st);
		if (rc != PH_OK)
			fprintf(stderr, "payhook: refunds run: %s\n",
			    ph_strerror(rc));
		else
			log_kv(LOG_LVL_INFO, "refunds", "due=%zu sent=%zu "
			    "succeeded=%zu failed=%zu pending=%zu errors=%zu",
			    st.due, st.sent, st.succeeded, st.failed,
			    st.pending, st.errors);
		store_close(store);
		conf_free(conf);
		return rc == PH_OK && st.errors == 0 ? 0 : 1;
	}
	if (argc >= 1 && strcmp(argv[0], "list") == 0 &&
	    (argc == 1 || (argc == 2 && strcmp(argv[1], "--all") == 0))) {
		if (cli_open(path, &conf, &store, 1) != 0)
			return 1;
		rc = argc == 2 ? ledger_refunds_list(store, 0, 100000, &items) :
		    ledger_refunds_due(store, 100000, &items);
		if (rc == PH_OK) {
			json_array_foreach(items, i, it)
				printf("%s\t%s\t%s\t%s\t%lld\t%s\t%s\n",
				    json_string_value(json_object_get(it,
				    "refund_id")),
				    json_string_value(json_object_get(it,
				    "state")),
				    json_string_value(json_object_get(it,
				    "reason")),
				    json_string_value(json_object_get(it,
				    "order_id")),
				    (long long)json_integer_value(
				    json_object_get(it, "amount")),
				    json_string_value(json_object_get(it,
				    "currency")),
				    json_string_value(json_object_get(it,
				    "provider_txn_id")));
			json_decref(items);
		} else
			fprintf(stderr, "payhook: refunds list: %s\n",
			    ph_strerror(rc));
		store_close(store);
		conf_free(conf);
		return rc == PH_OK ? 0 : 1;
	}
	fprintf(stderr, "payhook: refunds run | refunds list [--all]\n");
	return 1;
}

static int
cli_order_list(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "after", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long limit = 100;
	const char *state = NULL, *after = "";
	struct conf *conf;
	struct store *store;
	json_t *list, *o;
	size_t i;
	int ch, json = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 's' && order_state_parse(optarg) >= 0) {
			state = optarg;
			continue;
		}
		if (ch == 'l' && cli_number(optarg, &limit) == 0 &&
		    limit >= 1 && limit <= 100000)
			continue;
		if (ch == 'a') {
			after = optarg;
			continue;
		}
		if (ch == 'j') {
			json = 1;
			continue;
		}
		fprintf(stderr, "payhook: order list: --state takes PENDING, "
		    "PAID, CLOSED, REFUNDING or REFUNDED; --limit 1 to "
		    "100000\n");
		return 1;
	}
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	if ((rc = ledger_list_orders(store, state, after, limit, &list)) !=
	    PH_OK) {
		fprintf(stderr, "payhook: order list: %s\n", ph_strerror(rc));
		rc = 1;
	} else if (json) {
		json_t *views = json_array();

		json_array_foreach(list, i, o)
			json_array_append_new(views, order_to_api(o));
		rc = cli_print(views);
		json_decref(views);
	} else {
		json_array_foreach(list, i, o) {
			json_t *v = order_to_api(o);

			printf("%s\t%s\t%lld\t%s\t%s\t%s\n",
			    json_string_value(json_object_get(v, "order_id")),
			    json_string_value(json_object_get(v, "state")),
			    (long long)json_integer_value(json_object_get(v,
			    "amount")),
			    json_string_value(json_object_get(v, "currency")),
			    json_string_value(json_object_get(v, "profile")),
			    json_string_value(json_object_get(v,
			    "updated_at")));
			json_decref(v);
		}
		rc = 0;
	}
	json_decref(list);
	store_close(store);
	conf_free(conf);
	return rc;
}

static int
cli_events_tail(const char *path, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "after", required_argument, NULL, 'a' },
		{ "follow", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long after = 0;
	struct conf *conf;
	struct store *store;
	json_t *events, *e;
	uint64_t next;
	size_t i;
	int ch, follow = 0, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'a' && cli_number(optarg, &after) == 0)
			continue;
		if (ch == 'f') {
			follow = 1;
			continue;
		}
		fprintf(stderr, "payhook: events tail: --after takes a "
		    "sequence number\n");
		return 1;
	}
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	do {
		if ((rc = ledger_events(store, after, 1000, &events, &next)) !=
		    PH_OK) {
			fprintf(stderr, "payhook: events: %s\n",
			    ph_strerror(rc));
			rc = 1;
			break;
		}
		json_array_foreach(events, i, e) {
			json_t *v = order_event_to_api(e);
			char *line = json_dumps(v, JSON_COMPACT |
			    JSON_PRESERVE_ORDER);

			if (line != NULL)
				printf("%s\n", line);
			free(line);
			json_decref(v);
		}
		fflush(stdout);
		if (json_array_size(events) == 0 && follow)
			sleep(1);
		json_decref(events);
		after = next;
	} while (follow && !cli_stop);
	store_close(store);
	conf_free(conf);
	return rc;
}

static int
cli_dedup_prune(const char *path, int argc, char **argv)
{
	struct conf *conf;
	struct store *store;
	long age[1];
	size_t n = 0, removed;
	char why[96];
	int rc;

	if (argc != 3 || strcmp(argv[1], "--older-than") != 0 ||
	    conf_parse_schedule(argv[2], age, 1, &n, why, sizeof(why)) != 0) {
		fprintf(stderr, "payhook: dedup prune --older-than AGE, with "
		    "AGE like 90d or 720h\n");
		return 1;
	}
	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	rc = ledger_prune_dedup(store, (int64_t)time(NULL) - age[0],
	    &removed);
	if (rc != PH_OK)
		fprintf(stderr, "payhook: dedup prune: %s (%zu removed before "
		    "it)\n", ph_strerror(rc), removed);
	else
		printf("payhook: dedup prune: %zu key(s) first seen more than "
		    "%s ago removed\n", removed, argv[2]);
	store_close(store);
	conf_free(conf);
	return rc == PH_OK ? 0 : 1;
}

static int
cli_backup(const char *path, const char *file)
{
	struct conf *conf;
	struct store *store;
	struct ph_diag diag;
	int rc;

	if (cli_open(path, &conf, &store, 1) != 0)
		return 1;
	memset(&diag, 0, sizeof(diag));
	if ((rc = store_backup(store, file, &diag)) != PH_OK)
		fprintf(stderr, "payhook: %s\n", diag.msg);
	else
		printf("payhook: database %s copied to %s\n", conf->db_path,
		    file);
	store_close(store);
	conf_free(conf);
	return rc == PH_OK ? 0 : 1;
}



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
	cli_metrics_open(conf);
	if (conf->archive_days > 0)
		archive_open(conf->db_path, conf->archive_map_mb);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	do {
		int64_t now = (int64_t)time(NULL);

		certs_warn_daily(conf, store, now);
		if (conf->archive_days > 0) {
			size_t pruned;

			archive_prune(now - (int64_t)conf->archive_days * 86400,
			    &pruned);
		}
		if (conf->npushes > 0) {
			struct push_stats ps;

			if (push_run(conf, store, now, &ps) == PH_OK &&
			    (ps.delivered > 0 || ps.failed > 0))
				log_kv(LOG_LVL_INFO, "push", "delivered=%zu "
				    "failed=%zu", ps.delivered, ps.failed);
		}
		if ((rc = sweep_pass(conf, store, now, token, &st)) != PH_OK) {
			log_err("sweep: %s", ph_strerror(rc));
			metrics_add("payhook_sweeper_passes_total",
			    "result=error", 1);
			rc = 1;
		} else {
			rc = 0;
			metrics_add("payhook_sweeper_passes_total",
			    "result=ok", 1);
			metrics_add("payhook_sweeper_orders_paid_total", NULL,
			    st.paid);
			metrics_add("payhook_sweeper_orders_closed_total", NULL,
			    st.closed);
			if (st.due > 0 || !watch)
				log_kv(LOG_LVL_INFO, "sweep", "due=%zu taken=%zu "
				    "queries=%zu failed=%zu paid=%zu closed=%zu",
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
		return cli_check(path, NULL);
	if (strcmp(argv[0], "check") == 0 && argc == 3 &&
	    strcmp(argv[1], "--user") == 0)
		return cli_check(path, argv[2]);
	if (strcmp(argv[0], "order") == 0 && argc == 3 &&
	    strcmp(argv[1], "show") == 0)
		return cli_order(path, argv[2]);
	if (strcmp(argv[0], "order") == 0 && argc >= 2 &&
	    strcmp(argv[1], "list") == 0)
		return cli_order_list(path, argc - 1, argv + 1);
	if (strcmp(argv[0], "order") == 0 && argc == 2)
		return cli_order(path, argv[1]);
	if (strcmp(argv[0], "events") == 0 && argc >= 2 &&
	    strcmp(argv[1], "tail") == 0)
		return cli_events_tail(path, argc - 1, argv + 1);
	if (strcmp(argv[0], "events") == 0 && argc >= 2 &&
	    (strcmp(argv[1], "resend") == 0 ||
	    strcmp(argv[1], "deliveries") == 0))
		return cli_events_push(path, argc - 1, argv + 1);
	if (strcmp(argv[0], "events") == 0)
		return cli_events(path, argc, argv);
	if (strcmp(argv[0], "dedup") == 0 && argc >= 2 &&
	    strcmp(argv[1], "prune") == 0)
		return cli_dedup_prune(path, argc - 1, argv + 1);
	if (strcmp(argv[0], "backup") == 0 && argc == 2)
		return cli_backup(path, argv[1]);
	if (strcmp(argv[0], "reconcile") == 0)
		return cli_reconcile(path, argc, argv);
	if (strcmp(argv[0], "notifications") == 0)
		return cli_notifications(path, argc - 1, argv + 1);
	if (strcmp(argv[0], "refunds") == 0) {
		if (http_global_init() != PH_OK) {
			fprintf(stderr, "payhook: libcurl cannot start\n");
			return 1;
		}
		return cli_refunds(path, argc - 1, argv + 1);
	}
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
