/*
 * The commands that look after the installation: check, stats, backup,
 * dedup prune.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ops/text.h"
#include "cli/cli.h"
#include "jobs/certs.h"
#include "jobs/query.h"
#include "ledger/ledger.h"
#include "ledger/order.h"
#include "ops/metrics.h"

/* A certificate's expiry: a warning within CERTS_WARN_DAYS; arg: now. */
static void
cli_cert_line(const struct certs_item *it, void *arg)
{
	int64_t now = *(const int64_t *)arg, left = it->not_after - now;
	char when[TEXT_TIME_MAX], from[TEXT_TIME_MAX];

	text_time(it->not_after, when);
	text_time(it->not_before, from);
	if (it->not_before > now)
		fprintf(stderr, "payhook: warning: profile %s: %s %s: "
		    "certificate %s is NOT VALID YET: from %s, in %lld "
		    "day(s); what it signs is refused until then\n",
		    it->profile, it->key, it->file, it->subject, from,
		    (long long)((it->not_before - now + 86399) / 86400));
	else if (left <= 0)
		fprintf(stderr, "payhook: warning: profile %s: %s %s: "
		    "certificate %s EXPIRED on %s\n", it->profile, it->key,
		    it->file, it->subject, when);
	else if (left <= (int64_t)CERTS_WARN_DAYS * 86400)
		fprintf(stderr, "payhook: warning: profile %s: %s %s: "
		    "certificate %s expires on %s, in %lld day(s)\n",
		    it->profile, it->key, it->file, it->subject, when,
		    (long long)(left / 86400));
	else
		printf("payhook: profile %s: %s %s: certificate %s expires on "
		    "%s, in %lld days\n", it->profile, it->key, it->file,
		    it->subject, when, (long long)(left / 86400));
}

/* A store nearly full is not a configuration error, but /readyz already
 * fails: said on stdout, with what to do. */
static void
cli_check_fill(const struct cli *c)
{
	struct store_stats st;

	if (store_space(c->store, &st) == PH_OK &&
	    store_fill(&st) > c->conf->ready_max_fill)
		printf("payhook: warning: database %s is %.1f%% full, above "
		    "ready_max_fill (%g): GET /readyz answers 503; raise "
		    "map_size_mb (now %lu)\n", c->conf->db_path,
		    100 * store_fill(&st), c->conf->ready_max_fill,
		    c->conf->map_size_mb);
}

/* What waits on a profile that is gone: pending orders and refunds. */
struct cli_stranded {
	char	profile[64];		/* a profile's name: 1-32 bytes */
	char	first[2][PH_ID_MAX + 1];	/* an order's id, a refund's */
	size_t	n[2];
};

#define CLI_STRANDED_MAX	16
#define CLI_CHECK_PENDING_MAX	100000	/* orders and refunds read at most */

struct cli_strandeds {
	struct cli_stranded	p[CLI_STRANDED_MAX];
	size_t			n, more;
};

/* Counts id (0: an order, 1: a refund) against profile. */
static void
cli_stranded_add(struct cli_strandeds *s, const char *profile, int which,
    const char *id)
{
	struct cli_stranded *p;
	size_t k;

	for (k = 0; k < s->n && strcmp(s->p[k].profile, profile) != 0; k++)
		;
	if (k == CLI_STRANDED_MAX) {
		s->more++;
		return;
	}
	p = &s->p[k];
	if (k == s->n) {
		memset(p, 0, sizeof(*p));
		ph_strlcpy(p->profile, profile, sizeof(p->profile));
		s->n++;
	}
	if (p->n[which]++ == 0)
		ph_strlcpy(p->first[which], id, sizeof(p->first[which]));
}

/*
 * Pending orders offered on a profile the configuration no longer has,
 * and refunds to send through one: the sweeper can neither settle nor
 * close those orders (it asks again every ten minutes and warns), and the
 * refunds wait.  Said here, where a removed profile is noticed first.
 */
static void
cli_check_stranded(const struct cli *c)
{
	static const char *const what[2] = { "pending order(s) were offered "
	    "on it", "refund(s) wait to be sent through it" };
	struct cli_strandeds s;
	const char *gone[QUERY_NAMES_MAX], *pname;
	json_t *ids = NULL, *items = NULL, *v, *order;
	size_t i, j, k, n;
	int w;

	memset(&s, 0, sizeof(s));
	/* Every pending order, not only those the sweeper will ask about:
	 * one whose schedule has ended can still be paid, and its
	 * notification comes to the profile's URL, gone too. */
	if (ledger_list_orders(c->store, order_state_name(ORDER_PENDING), "",
	    CLI_CHECK_PENDING_MAX, &ids) == PH_OK)
		json_array_foreach(ids, i, order) {
			n = query_unconfigured(c->conf, order, gone,
			    QUERY_NAMES_MAX);
			for (j = 0; j < n; j++)
				cli_stranded_add(&s, gone[j], 0,
				    json_string_value(json_object_get(order,
				    "order_id")));
		}
	if (ledger_refunds_due(c->store, 0, CLI_CHECK_PENDING_MAX, &items) == PH_OK)
		json_array_foreach(items, i, v) {
			pname = json_string_value(json_object_get(v,
			    "profile"));
			if (pname != NULL && conf_profile(c->conf, pname) ==
			    NULL)
				cli_stranded_add(&s, pname, 1,
				    json_string_value(json_object_get(v,
				    "refund_id")));
		}
	for (k = 0; k < s.n; k++)
		for (w = 0; w < 2; w++)
			if (s.p[k].n[w] > 0)
				fprintf(stderr, "payhook: warning: profile %s "
				    "is not configured, but %zu %s (%s%s): "
				    "payhook cannot reach its provider for "
				    "them; configure the profile again, or "
				    "settle them by hand\n", s.p[k].profile,
				    s.p[k].n[w], what[w], s.p[k].first[w],
				    s.p[k].n[w] > 1 ? ", ..." : "");
	if (s.more > 0)
		fprintf(stderr, "payhook: warning: %zu more pending order(s) "
		    "and refund(s) of other profiles that are not "
		    "configured\n", s.more);
	if (json_array_size(ids) == CLI_CHECK_PENDING_MAX ||
	    json_array_size(items) == CLI_CHECK_PENDING_MAX)
		printf("payhook: the first %d pending orders and refunds were "
		    "checked for profiles that are not configured\n",
		    CLI_CHECK_PENDING_MAX);
	json_decref(ids);
	json_decref(items);
}

/*
 * A profile whose plugin makes calls (query, close, refund, statement
 * download) but that names no api_base: payhook cannot make them, and the
 * jobs that would exit 78 on its orders.  Said here, where an operator
 * looks before the jobs run.
 */
int
cli_profile_uncallable(const struct conf_profile *pr)
{
	return pr->api_base == NULL && pr->plugin != NULL &&
	    (pr->plugin->prov->caps & (PH_CAP_QUERY | PH_CAP_CLOSE |
	    PH_CAP_REFUND | PH_CAP_DOWNLOAD));
}

static void
cli_check_calls(const struct cli *c)
{
	const struct conf_profile *pr;
	size_t i;

	for (i = 0; i < c->conf->nprofiles; i++) {
		pr = &c->conf->profiles[i];
		if (cli_profile_uncallable(pr))
			fprintf(stderr, "payhook: %s: warning: [profile.%s] has "
			    "no api_base: payhook cannot query, close or "
			    "refund through it (payhook sweep and refunds run "
			    "exit 78 on its orders)\n", c->path, pr->name);
	}
}

/*
 * Records an older payhook.fcgi, still running after the store was
 * brought up (until the web server's reload), wrote in its old form:
 * moved as the upgrade moved the others.  0, or 1 said.
 */
static int
cli_check_strays(const struct cli *c)
{
	size_t moved;
	int rc;

	if ((rc = ledger_migrate_strays(c->store, &moved)) != PH_OK) {
		fprintf(stderr, "payhook: database %s: %s\n",
		    store_where(c->store), ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	if (moved > 0)
		printf("payhook: database %s: %zu record(s) an older "
		    "payhook.fcgi wrote after the upgrade brought to this "
		    "schema\n", store_where(c->store), moved);
	return CLI_EXIT_OK;
}

/*
 * A store whose writes failed (a full map or disk, a read-only file) is
 * written once: /readyz shows the fault until a write goes through, and a
 * host its balancer took out of service gets none, so the operator's fix
 * (a larger map_size_mb, room on the disk) is seen here.  A write that
 * still fails is warned of, as a store too full is (cli_check_fill).
 */
static void
cli_check_writes(struct cli *c, int64_t now)
{
	char path[4096];
	struct stat st;
	int rc;

	/* The faults are kept in the metrics file: none without it (and
	 * check makes none, whose place a test or an operator may hold). */
	if (metrics_file_of(c->conf->db_path, path, sizeof(path)) == -1 ||
	    stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return;
	metrics_open(path);
	if ((rc = store_probe_write(c->store, now)) != PH_OK)
		printf("payhook: warning: database %s still refuses writes: "
		    "%s; GET /readyz answers 503 until one goes through\n",
		    store_where(c->store), ph_strerror(rc));
}

/*
 * check opens what it checks itself, to say what failed: the
 * configuration, then (as root) whether the --user can use it all, then
 * the store, as its owner, creating it when it is missing.
 */
int
cli_check_run(struct cli *c)
{
	const char *user = c->a.word;
	int64_t now = (int64_t)time(NULL);
	struct stat st;
	int exists, rc, usable = CLI_EXIT_OK;

	if ((rc = cli_open_conf(c)) != CLI_EXIT_OK) {
		fprintf(stderr, "payhook: %s: configuration has errors\n",
		    c->path);
		return rc;
	}
	certs_each(c->conf, cli_cert_line, &now);
	if (user != NULL &&
	    (usable = cli_check_user(c->conf, user)) == CLI_EXIT_USAGE)
		return usable;
	/* Nothing is made for a user who cannot use it: a database made
	 * now would be root's, in a folder made root's. */
	if (usable != CLI_EXIT_OK) {
		fprintf(stderr, "payhook: %s: user %s cannot run payhook with "
		    "this configuration\n", c->path, user);
		return usable;
	}
	/* Only an LMDB file is counted as created here: whether a
	 * PostgreSQL store's tables were made is not reported. */
	exists = c->conf->store_kind != STORE_LMDB ||
	    stat(c->conf->db_path, &st) == 0;
	if ((rc = cli_open_store(c, c->path, STORE_OPEN_CREATE)) !=
	    CLI_EXIT_OK)
		return rc;
	cli_check_fill(c);
	cli_check_writes(c, now);
	cli_check_stranded(c);
	cli_check_calls(c);
	if (store_schema_found(c->store) < store_schema(c->store))
		printf("payhook: database %s brought from schema %d to %d\n",
		    store_where(c->store), store_schema_found(c->store),
		    store_schema(c->store));
	if ((rc = cli_check_strays(c)) != CLI_EXIT_OK)
		return rc;
	printf("payhook: %s: configuration OK (%zu profile(s), %zu "
	    "plugin(s), database %s%s)%s%s\n", c->path, c->conf->nprofiles,
	    c->conf->loader.n, store_where(c->store), exists ? "" : ", created",
	    user != NULL ? "; usable by " : "", user != NULL ? user : "");
	return CLI_EXIT_OK;
}

/* A series of payhook_notifications_total of one profile: its count, by
 * the outcome that ends its key (…,outcome="NAME"}), into the object. */
static void
cli_outcome_count(const char *key, uint64_t v, void *arg)
{
	const char *at = strstr(key, ",outcome=\"");
	char name[64];
	size_t n;

	if (at == NULL)
		return;
	at += strlen(",outcome=\"");
	if ((n = strcspn(at, "\"")) == 0 || n >= sizeof(name) ||
	    strcmp(at + n, "\"}") != 0)
		return;
	memcpy(name, at, n);
	name[n] = '\0';
	json_object_set_new(arg, name, json_integer((json_int_t)v));
}

/* Of the notification outcomes counted in no: how many in all, how many
 * duplicates, how many refused (signature, merchant, form, fields: what
 * did not pass verification). */
static void
cli_outcome_rates(const json_t *no, uint64_t *told, uint64_t *dup,
    uint64_t *refused)
{
	const char *k;
	json_t *v;
	uint64_t n;

	*told = *dup = *refused = 0;
	json_object_foreach((json_t *)no, k, v) {
		n = (uint64_t)json_integer_value(v);
		*told += n;
		if (strcmp(k, "duplicate") == 0)
			*dup += n;
		else if (strncmp(k, "refused_", 8) == 0)
			*refused += n;
	}
}

/*
 * Per profile, from the shared counters: how paid orders were learnt
 * (the 掉单 rate is the share not by notification), the mean payment lag,
 * notification outcomes with the shares of duplicates and of refusals, and
 * the mean time to the acknowledgement.
 */
static json_t *
cli_profile_rates(const struct conf *conf)
{
	/* Every outcome a notification can have (README), so that each
	 * profile's object has the same members. */
	static const char *const outcomes[] = {
		"applied", "duplicate", "conflict", "amount_mismatch",
		"double_payment", "late_payment", "unknown_order",
		"profile_mismatch", "payment_failed", "unmatched", "noop",
		"refused_signature", "refused_merchant", "refused_malformed",
		"refused_field", "refused_unsupported", "refused_other",
		"storage_failure",
	};
	json_t *all = json_object(), *p, *by, *no;
	char labels[128];
	size_t i, j;

	for (i = 0; i < conf->nprofiles; i++) {
		const char *name = conf->profiles[i].name;
		uint64_t total = 0, missed = 0, n = 0, v, vn, an;
		uint64_t told, dup, refused;
		double lag = 0, vs, as;

		by = json_object();
		for (j = 0; j < LEDGER_SRC__MAX; j++) {
			snprintf(labels, sizeof(labels), "profile=%s&source=%s",
			    name, ledger_source_name(j));
			v = metrics_get("payhook_orders_paid_total", labels);
			json_object_set_new(by, ledger_source_name(j),
			    json_integer((json_int_t)v));
			total += v;
			if (ledger_source_missed(j))
				missed += v;
			metrics_histogram_get("payhook_payment_lag_seconds",
			    labels, &vn, &vs);
			n += vn;
			lag += vs;
		}
		/* Every outcome always, at 0 when none came; then any
		 * other one that came. */
		no = json_object();
		for (j = 0; j < sizeof(outcomes) / sizeof(outcomes[0]); j++)
			json_object_set_new(no, outcomes[j], json_integer(0));
		snprintf(labels, sizeof(labels),
		    "payhook_notifications_total{profile=\"%s\",", name);
		metrics_each(labels, cli_outcome_count, no);
		cli_outcome_rates(no, &told, &dup, &refused);
		snprintf(labels, sizeof(labels), "profile=%s", name);
		metrics_histogram_get("payhook_notify_ack_seconds", labels,
		    &an, &as);
		p = json_pack("{s:o, s:f, s:f, s:o, s:I, s:f, s:f, s:f}",
		    "paid_by", by,
		    "missed_notification_ratio", total == 0 ? 0.0 :
		    (double)missed / (double)total,
		    "payment_lag_seconds_mean", n == 0 ? 0.0 :
		    lag / (double)n, "notifications", no,
		    "notifications_total", (json_int_t)told,
		    "duplicate_ratio", told == 0 ? 0.0 :
		    (double)dup / (double)told,
		    "verification_failure_ratio", told == 0 ? 0.0 :
		    (double)refused / (double)told,
		    "ack_seconds_mean", an == 0 ? 0.0 : as / (double)an);
		json_object_set_new(all, name, p);
	}
	return all;
}

int
cli_stats_run(struct cli *c)
{
	uint64_t counts[ORDER__MAX];
	struct store_stats st;
	json_t *out, *dbs, *states;
	int i, rc;

	if ((rc = store_stats(c->store, &st)) != PH_OK) {
		fprintf(stderr, "payhook: stats: %s\n", ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	dbs = json_object();
	for (i = 0; i < STORE_DB__MAX; i++)
		json_object_set_new(dbs, store_db_name(i),
		    json_integer((json_int_t)st.entries[i]));
	states = json_object();
	if (ledger_counts_init(c->store) == PH_OK &&
	    ledger_counts(c->store, counts, ORDER__MAX) == PH_OK)
		for (i = 0; i < ORDER__MAX; i++)
			json_object_set_new(states, order_state_name(i),
			    json_integer((json_int_t)counts[i]));
	out = json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:i, s:i}",
	    "store", store_engine_name(c->store),
	    "database", store_where(c->store), "orders", states, "entries",
	    dbs,
	    "map_size", (json_int_t)st.map_size,
	    "map_used", (json_int_t)st.map_used,
	    "readers_used", (int)st.readers_used,
	    "readers_max", (int)st.readers_max);
	json_object_set_new(out, "profiles", cli_profile_rates(c->conf));
	return cli_print_new(out);
}

int
cli_backup_run(struct cli *c)
{
	struct ph_diag diag;

	memset(&diag, 0, sizeof(diag));
	if (store_backup(c->store, c->a.word, &diag) != PH_OK) {
		struct passwd *pw = c->root_left ? getpwuid(geteuid()) : NULL;

		/* Root left for the database's owner (cli_become_owner): a
		 * folder only root may write refuses that user. */
		if (pw != NULL)
			fprintf(stderr, "payhook: %s (written as %s, the "
			    "database's owner: choose a folder that user may "
			    "write)\n", diag.msg, pw->pw_name);
		else
			fprintf(stderr, "payhook: %s\n", diag.msg);
		return CLI_EXIT_FAIL;
	}
	printf("payhook: database %s copied to %s\n", c->conf->db_path,
	    c->a.word);
	return CLI_EXIT_OK;
}

/* Where a restore's sequence numbers go on from, and why they may not be
 * past the replaced store's. */
static void
cli_restore_seq(const struct store_restore_report *rep)
{
	printf("payhook: event and refund sequence numbers go on from %llu: "
	    "2^32 past the backup's next (%llu)", (unsigned long long)
	    rep->seq_from, (unsigned long long)rep->seq_backup);
	if (rep->seq_replaced != 0)
		printf(" and the replaced store's (%llu)",
		    (unsigned long long)rep->seq_replaced);
	printf("\n");
	if (rep->replaced_unread[0] != '\0')
		fprintf(stderr, "payhook: restore: warning: the store replaced "
		    "could not be read (%s): sequence numbers go on past the "
		    "backup's only, and a feed reader that keeps no epoch "
		    "misses events if that store had handed out %llu or "
		    "more\n", rep->replaced_unread,
		    (unsigned long long)rep->seq_from);
}

/*
 * restore FILE: the backup is opened as whoever runs payhook (it may be
 * root's alone), the rest done as the store's owner, as every other
 * command: the store's folder is that user's, and root working there by
 * name would follow any link that user planted.
 */
int
cli_restore_run(struct cli *c)
{
	struct store_restore_report rep;
	struct ph_diag diag;
	struct stat st;
	int rc, fd;

	if (c->conf->store_kind != STORE_LMDB) {
		fprintf(stderr, "payhook: restore: the store is PostgreSQL: "
		    "restore it with the server's own tools (pg_restore, a "
		    "base backup); payhook restore takes an LMDB backup\n");
		return CLI_EXIT_FAIL;
	}
	if ((fd = open(c->a.word, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		fprintf(stderr, "payhook: restore: backup %s: %s\n", c->a.word,
		    strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "payhook: restore: backup %s: not a regular "
		    "file\n", c->a.word);
		close(fd);
		return CLI_EXIT_FAIL;
	}
	if (cli_become_owner(c) != 0) {
		close(fd);
		return CLI_EXIT_FAIL;
	}
	memset(&diag, 0, sizeof(diag));
	rc = store_restore(c->conf->db_path, fd, c->a.word,
	    (size_t)c->conf->map_size_mb << 20, &rep, &diag);
	close(fd);
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: restore: %s\n", diag.msg);
		return rc == PH_E_CONFLICT ? CLI_EXIT_TEMPFAIL : CLI_EXIT_FAIL;
	}
	printf("payhook: restored %s from %s (%zu bytes)%s\n",
	    c->conf->db_path, c->a.word, rep.bytes, rep.replaced ?
	    ", replacing the store that was there" : "");
	printf("payhook: owner uid %ld gid %ld, mode %04o\n", rep.uid,
	    rep.gid, rep.mode);
	printf("payhook: epoch %s (the backup's was %s): event and refund ids "
	    "from now on differ from every id handed out before\n",
	    rep.epoch_after, rep.epoch_before);
	cli_restore_seq(&rep);
	if (rep.lock_removed)
		printf("payhook: removed the stale lock file %s-lock\n",
		    c->conf->db_path);
	return CLI_EXIT_OK;
}

/* --older-than AGE, into seconds */
int
cli_dedup_valid(struct cli *c)
{
	char why[96];
	size_t n = 0;

	if (conf_parse_schedule(c->a.word, &c->a.age, 1, &n, why,
	    sizeof(why)) != 0) {
		fprintf(stderr, "payhook: dedup prune: --older-than takes an "
		    "age like 90d or 720h\n");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

int
cli_dedup_run(struct cli *c)
{
	int64_t now = (int64_t)time(NULL);
	size_t removed, keys = 0;
	int rc;

	rc = ledger_prune_dedup(c->store, now - c->a.age, &removed);
	if (rc == PH_OK)
		rc = ledger_prune_idem(c->store, now, &keys);
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: dedup prune: %s (%zu removed before "
		    "it)\n", ph_strerror(rc), removed);
		return CLI_EXIT_FAIL;
	}
	printf("payhook: dedup prune: %zu key(s) first seen more than %s "
	    "ago removed; %zu Idempotency-Key(s) past idempotency_ttl_s "
	    "forgotten\n", removed, c->a.word, keys);
	return CLI_EXIT_OK;
}

/*
 * store import OTHER.conf: every record of the store OTHER.conf names
 * (LMDB or PostgreSQL) into this configuration's, which must hold none yet
 * (made here when it is not there, as check makes it), then both counted.
 * Opened in that order: the source as whoever runs this, the target as its
 * owner (cli_open_store).
 */
int
cli_store_import_run(struct cli *c)
{
	struct store_copy_report rep;
	struct store_spec spec;
	struct conf_errs errs;
	struct conf *other = NULL;
	struct store *from = NULL;
	struct ph_diag diag;
	size_t i, moved, total = 0;
	int rc = CLI_EXIT_FAIL;

	memset(&errs, 0, sizeof(errs));
	if (conf_open(c->a.word, &other, &errs) != 0) {
		for (i = 0; i < errs.n; i++)
			if (!errs.warning[i])
				fprintf(stderr, "payhook: %s: %s\n", c->a.word,
				    errs.line[i]);
		fprintf(stderr, "payhook: store import: %s: configuration has "
		    "errors\n", c->a.word);
		return CLI_EXIT_CONFIG;
	}
	memset(&diag, 0, sizeof(diag));
	conf_store_spec(other, &spec);
	if (ledger_open_spec(&spec, 0, &from, &diag) != PH_OK) {
		fprintf(stderr, "payhook: store import: %s: %s\n", c->a.word,
		    diag.msg);
		goto done;
	}
	/* The target may be what an import that did not finish left: this
	 * one starts it over. */
	if ((rc = cli_open_store(c, c->path, STORE_OPEN_CREATE |
	    STORE_OPEN_IMPORT)) != CLI_EXIT_OK)
		goto done;
	rc = CLI_EXIT_FAIL;
	if (strcmp(store_engine_name(from), store_engine_name(c->store)) ==
	    0 && strcmp(store_where(from), store_where(c->store)) == 0) {
		fprintf(stderr, "payhook: store import: %s and %s name the "
		    "same store\n", c->a.word, c->path);
		goto done;
	}
	/* What an older payhook.fcgi wrote after the source's upgrade would
	 * break the target's keys (PostgreSQL's unique columns). */
	if (ledger_migrate_strays(from, &moved) != PH_OK) {
		fprintf(stderr, "payhook: store import: %s: its records could "
		    "not be read\n", c->a.word);
		goto done;
	}
	if (store_copy(from, c->store, &rep, &diag) != PH_OK) {
		fprintf(stderr, "payhook: store import: %s\n", diag.msg);
		goto done;
	}
	for (i = 0; i < STORE_DB__MAX; i++) {
		printf("payhook: %-12s %zu\n", store_db_name(i), rep.to[i]);
		total += rep.to[i];
	}
	printf("payhook: imported %zu records from %s (%s) into %s (%s); the "
	    "counts of both agree\n", total, store_where(from),
	    store_engine_name(from), store_where(c->store),
	    store_engine_name(c->store));
	rc = CLI_EXIT_OK;
done:
	store_close(from);
	conf_free(other);
	return rc;
}

/*
 * store new-epoch: a new epoch for a store put back by other means than
 * payhook restore (a PostgreSQL backup): every event and refund id handed
 * out from now on differs from those handed out before.  Run with every
 * payhook stopped: a running process keeps the epoch it read at start.
 */
int
cli_store_new_epoch_run(struct cli *c)
{
	char before[STORE_EPOCH_LEN + 1];
	struct store_txn t;
	long pid;
	int rc;

	/* A process that has it open would go on with the old epoch. */
	if (store_others(c->store, &pid) == 1) {
		fprintf(stderr, "payhook: store new-epoch: %s is open in "
		    "process %ld (payhook.fcgi or a job), which would go on "
		    "handing out ids of the old epoch: stop every payhook "
		    "process first; nothing was changed\n",
		    store_where(c->store), pid);
		return CLI_EXIT_TEMPFAIL;
	}
	ph_strlcpy(before, store_epoch(c->store), sizeof(before));
	if ((rc = store_begin(c->store, 1, &t)) == PH_OK) {
		store_new_epoch(&t);
		store_seq_jump(&t, 0);
		rc = store_commit(&t);
	}
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: store new-epoch: %s: %s\n",
		    store_where(c->store), ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	printf("payhook: epoch %s (was %s): event and refund ids handed out "
	    "from now on are new; feed readers holding the old epoch are "
	    "answered 409 feed_epoch_changed\n", store_epoch(c->store),
	    before);
	return CLI_EXIT_OK;
}
