/*
 * The jobs that call out: sweep (with the event push it drives), refunds,
 * reconcile, and the push endpoints' events resend and deliveries.  A job
 * that could not reach a provider or an endpoint exits
 * CLI_EXIT_TEMPFAIL, so that cron and systemd see it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ops/text.h"
#include "cli/cli.h"
#include "jobs/certs.h"
#include "jobs/push.h"
#include "jobs/recon.h"
#include "jobs/refund.h"
#include "jobs/sweep.h"
#include "ledger/ledger.h"
#include "ledger/order.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "store/archive.h"

/* The worse of two statuses: a failure outweighs a call to retry. */
static int
cli_worse(int a, int b)
{
	if (a == CLI_EXIT_FAIL || b == CLI_EXIT_FAIL)
		return CLI_EXIT_FAIL;
	return a != CLI_EXIT_OK ? a : b;
}

/* A job's run completed without a provider (or endpoint) failure: when,
 * for monitoring to see a job that stopped succeeding. */
static void
cli_job_succeeded(const char *metric)
{
	metrics_set(metric, NULL, (uint64_t)time(NULL));
}

/* Delivers the events due to the push endpoints. */
static int
cli_push_pass(struct cli *c, int64_t now, const char *token)
{
	struct push_stats ps;
	int rc;

	if (c->conf->npushes == 0)
		return CLI_EXIT_OK;
	if ((rc = push_run(c->conf, c->store, now, token, &ps)) != PH_OK) {
		log_err("push: %s", ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	if (ps.delivered > 0 || ps.failed > 0 || ps.waiting > 0)
		log_kv(LOG_LVL_INFO, "push", "delivered=%zu failed=%zu "
		    "waiting=%zu", ps.delivered, ps.failed, ps.waiting);
	/* An endpoint backing off still has an event it did not take. */
	if (ps.failed > 0 || ps.waiting > 0)
		return CLI_EXIT_TEMPFAIL;
	cli_job_succeeded("payhook_push_last_success_timestamp_seconds");
	return CLI_EXIT_OK;
}

/*
 * Whether the sweeper is failing after pass st: a provider call of it
 * failed, or it asked nothing while the last asks went unanswered and
 * orders are still due later (their retry).  Kept in
 * payhook_sweep_failing, shared by every sweeper.
 */
static int
cli_sweep_failing(struct cli *c, const struct sweep_stats *st)
{
	struct store_stats ss;
	int failing;

	if (st->failures > 0)
		failing = 1;
	else if (st->queries > 0)
		failing = 0;
	else if (metrics_get("payhook_sweep_failing", NULL) == 0)
		failing = 0;
	else
		failing = store_stats(c->store, &ss) != PH_OK ||
		    ss.entries[STORE_DB_DUE] > 0;
	metrics_set("payhook_sweep_failing", NULL, (uint64_t)failing);
	if (failing && st->queries == 0)
		log_msg(LOG_LVL_WARN, "sweep: nothing due, but the last asks "
		    "got no usable answer and orders wait to be asked again: "
		    "not a success");
	return failing;
}

/* Whether a profile of c's configuration makes calls but cannot. */
static int
cli_sweep_uncallable(const struct cli *c)
{
	size_t i;

	for (i = 0; i < c->conf->nprofiles; i++)
		if (cli_profile_uncallable(&c->conf->profiles[i]))
			return 1;
	return 0;
}

/* One pass of the sweeper and what it drives; its exit status. */
static int
cli_sweep_pass(struct cli *c, const char *token)
{
	int64_t now = (int64_t)time(NULL);
	struct sweep_stats st;
	size_t pruned;
	int rc, status, failing;

	certs_warn_daily(c->conf, c->store, now);
	if (c->conf->archive_days > 0)
		archive_prune(now, &pruned);
	/* Whether a store whose writes failed takes them again: /readyz
	 * says so before traffic comes back.  Its failure is logged. */
	(void)store_probe_write(c->store, now);
	rc = sweep_pass(c->conf, c->store, now, token, &st);
	/* After the sweep, so that the events it raised go out in this pass,
	 * and whether it worked or not. */
	status = cli_push_pass(c, (int64_t)time(NULL), token);
	if (rc == PH_OK && st.store_errors > 0)
		rc = PH_E_STORE;
	if (rc != PH_OK) {
		log_err("sweep: %s", ph_strerror(rc));
		metrics_add("payhook_sweeper_passes_total", "result=error", 1);
		return CLI_EXIT_FAIL;
	}
	failing = cli_sweep_failing(c, &st);
	/* A pass in which a provider call failed is no success, nor is one
	 * that had nothing to ask while the orders the last asks were about
	 * wait to be asked again: every provider may be out of reach. */
	metrics_add("payhook_sweeper_passes_total", failing ?
	    "result=provider_error" : "result=ok", 1);
	metrics_add("payhook_sweeper_orders_paid_total", NULL, st.paid);
	metrics_add("payhook_sweeper_orders_closed_total", NULL, st.closed);
	if (st.due > 0 || !c->a.flag)
		log_kv(LOG_LVL_INFO, "sweep", "due=%zu taken=%zu queries=%zu "
		    "failed=%zu paid=%zu closed=%zu", st.due, st.leased,
		    st.queries, st.failures, st.paid, st.closed);
	if (!failing)
		cli_job_succeeded(
		    "payhook_sweep_last_success_timestamp_seconds");
	/* A call the configuration kept from going out (no api_base, a
	 * profile gone) waits for a person, not for the next run: so does
	 * a failing pass that asked nothing while a profile cannot call. */
	return cli_worse(status, st.config_failures > 0 || (failing &&
	    st.queries == 0 && cli_sweep_uncallable(c)) ? CLI_EXIT_CONFIG :
	    failing ? CLI_EXIT_TEMPFAIL : CLI_EXIT_OK);
}

/*
 * A job's leases, and the expiry and holds it reads, are compared with
 * other hosts' on this host's clock: one far off the database server's
 * would take leases another host holds, or close orders not expired.
 */
static int
cli_job_clock(const struct cli *c)
{
	char why[128];

	switch (store_clock_off(c->store, why, sizeof(why))) {
	case 0:
		return CLI_EXIT_OK;
	case 1:
		log_err("%s: %s, more than %d s: its leases would not hold "
		    "against other hosts'; not run: set the time right (NTP)",
		    c->cmd->name, why, STORE_SKEW_MAX_MS / 1000);
		break;
	default:
		log_err("%s: %s", c->cmd->name, why);
	}
	return CLI_EXIT_FAIL;
}

/* What a job that leases work starts with: a random name for its leases
 * into token (its log is set up with the configuration: CLI_NEED_LOG).
 * The clock is for each job to check (cli_job_clock). */
static int
cli_job_begin(struct cli *c, char token[33])
{
	unsigned char rnd[16];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		fprintf(stderr, "payhook: %s: no randomness\n", c->cmd->name);
		return CLI_EXIT_FAIL;
	}
	ph_hex_lower(rnd, sizeof(rnd), token);
	return CLI_EXIT_OK;
}

/* One pass, or with --watch one every --interval until a signal: the
 * status is the last pass's. */
int
cli_sweep_run(struct cli *c)
{
	char token[33];
	int rc;

	if ((rc = cli_job_begin(c, token)) != CLI_EXIT_OK)
		return rc;
	cli_catch_signals();
	do {
		/* Its metrics file, when it refused a write, is opened
		 * again once it takes them (the alerts read the passes). */
		metrics_follow((int64_t)time(NULL));
		/* A watch runs for months: the clock may move off (a host's
		 * NTP stopped, a VM resumed) and back; a pass waits for it. */
		if ((rc = cli_job_clock(c)) == CLI_EXIT_OK)
			rc = cli_sweep_pass(c, token);
		if (c->a.flag && !cli_stop)
			sleep((unsigned)c->a.interval);
	} while (c->a.flag && !cli_stop);
	return rc;
}

int
cli_refunds_run(struct cli *c)
{
	struct refund_stats st;
	char token[33];
	int rc;

	if ((rc = cli_job_begin(c, token)) != CLI_EXIT_OK ||
	    (rc = cli_job_clock(c)) != CLI_EXIT_OK)
		return rc;
	rc = refund_run(c->conf, c->store, token, &st);
	log_kv(LOG_LVL_INFO, "refunds", "due=%zu sent=%zu succeeded=%zu "
	    "failed=%zu pending=%zu errors=%zu", st.due, st.sent,
	    st.succeeded, st.failed, st.pending, st.errors);
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: refunds run: database: %s\n",
		    ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	/* errors: no usable answer, tried again by the next run; those
	 * the configuration made wait for a person. */
	if (st.config_errors > 0)
		return CLI_EXIT_CONFIG;
	if (st.errors > 0)
		return CLI_EXIT_TEMPFAIL;
	cli_job_succeeded("payhook_refunds_last_success_timestamp_seconds");
	return CLI_EXIT_OK;
}

int
cli_refunds_list_run(struct cli *c)
{
	json_t *items, *it;
	size_t i;
	int rc;

	rc = c->a.flag ? ledger_refunds_list(c->store, 0, 100000, &items) :
	    ledger_refunds_due(c->store, 0, 100000, &items);
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: refunds list: %s\n", ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	json_array_foreach(items, i, it)
		printf("%s\t%s\t%s\t%s\t%lld\t%s\t%s\n",
		    json_string_value(json_object_get(it, "refund_id")),
		    json_string_value(json_object_get(it, "state")),
		    json_string_value(json_object_get(it, "reason")),
		    json_string_value(json_object_get(it, "order_id")),
		    (long long)json_integer_value(json_object_get(it,
		    "amount")),
		    json_string_value(json_object_get(it, "currency")),
		    json_string_value(json_object_get(it, "provider_txn_id")));
	json_decref(items);
	return CLI_EXIT_OK;
}

int
cli_refunds_settle_valid(struct cli *c)
{
	if (c->a.succeeded == c->a.failed) {
		fprintf(stderr, "payhook: refunds settle: give either "
		    "--succeeded or --failed\n");
		return CLI_EXIT_USAGE;
	}
	if (c->a.failed && c->a.amount != 0) {
		fprintf(stderr, "payhook: refunds settle: --amount is what went "
		    "back, with --succeeded\n");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* Prints the refund settled, as GET /refunds/<id> shows it. */
int
cli_refunds_settle_run(struct cli *c)
{
	struct ph_diag diag;
	json_t *item;

	memset(&diag, 0, sizeof(diag));
	if (ledger_refund_by_hand(c->store, c->a.word, c->a.succeeded,
	    (int64_t)c->a.amount, (int64_t)time(NULL), &item, &diag) !=
	    PH_OK) {
		fprintf(stderr, "payhook: refunds settle: %s\n", diag.msg);
		return CLI_EXIT_FAIL;
	}
	return cli_print_new(order_refund_to_api_new(item));
}

int
cli_reconcile_valid(struct cli *c)
{
	const struct recon_opts *o = &c->a.recon;
	int64_t start;

	if ((o->statement != NULL) == (c->a.download != 0)) {
		fprintf(stderr, "payhook: reconcile: give either --download "
		    "or --statement FILE\n");
		return CLI_EXIT_USAGE;
	}
	if (c->a.download && c->a.flag) {
		fprintf(stderr, "payhook: reconcile: --trust-file is for a "
		    "--statement FILE; a downloaded statement is trusted\n");
		return CLI_EXIT_USAGE;
	}
	if (o->date != NULL && recon_parse_date(o->date, &start) == -1) {
		fprintf(stderr, "payhook: reconcile: --date %s is not a day "
		    "(YYYY-MM-DD)\n", o->date);
		return CLI_EXIT_USAGE;
	}
	/* A day that has not begun in Beijing has no statement: a typo in
	 * the year would otherwise raise nothing and report an empty day. */
	if (o->date != NULL && start > (int64_t)time(NULL)) {
		fprintf(stderr, "payhook: reconcile: --date %s has not begun "
		    "yet in Beijing time: there is no statement of it\n",
		    o->date);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* A download's exit: a provider to ask again later is not a failure of
 * the statement. */
static int
cli_reconcile_exit(int rc)
{
	/* Another run of the day under way is "later" too. */
	return rc == PH_E_UNAVAILABLE || rc == PH_E_PROVIDER ||
	    rc == PH_E_CONFLICT ? CLI_EXIT_TEMPFAIL : CLI_EXIT_FAIL;
}

int
cli_reconcile_run(struct cli *c)
{
	struct recon_opts *o = &c->a.recon;
	const struct conf_profile *pr;
	struct recon_summary sum;
	struct ph_diag diag;
	char day[11], path[1024];
	int64_t now = (int64_t)time(NULL);
	int i, rc, none;

	if (o->report_dir == NULL)
		o->report_dir = ".";
	/* A file is trusted only when the operator vouches for it. */
	o->trust = c->a.flag ? RECON_FILE_TRUSTED : RECON_FILE;
	memset(&diag, 0, sizeof(diag));
	if (c->a.download) {
		if ((pr = conf_profile(c->conf, o->profile)) == NULL) {
			fprintf(stderr, "payhook: reconcile: no profile %s\n",
			    o->profile);
			return CLI_EXIT_USAGE;
		}
		if (o->date == NULL) {
			recon_yesterday(now, day);
			o->date = day;
		}
		if ((rc = recon_download(c->conf, pr, o->date, o->report_dir,
		    now, path, sizeof(path), &none, &diag)) != PH_OK) {
			fprintf(stderr, "payhook: reconcile %s %s: %s\n",
			    o->profile, o->date, diag.msg[0] != '\0' ?
			    diag.msg : ph_strerror(rc));
			return cli_reconcile_exit(rc);
		}
		/* No statement: what payhook holds of the day is all
		 * "missing at the provider". */
		if (none)
			printf("no statement: the provider has none for %s\n",
			    o->date);
		else
			printf("downloaded: %s\n", path);
		o->statement = none ? NULL : path;
		o->trust = RECON_DOWNLOADED;
	}
	if ((rc = recon_run(c->conf, c->store, o, now, &sum, &diag)) !=
	    PH_OK) {
		fprintf(stderr, "payhook: reconcile %s: %s\n", o->statement !=
		    NULL ? o->statement : o->date, diag.msg[0] != '\0' ?
		    diag.msg : ph_strerror(rc));
		return rc == PH_E_CONFLICT ? CLI_EXIT_TEMPFAIL :
		    CLI_EXIT_FAIL;
	}
	printf("reconcile %s %s: %llu statement lines\n", o->profile,
	    sum.date, (unsigned long long)sum.lines);
	for (i = 0; i < RECON__MAX; i++)
		printf("  %-20s %8zu  %14lld\n", recon_cat_name(i),
		    sum.count[i], (long long)sum.amount[i]);
	if (sum.asked > 0)
		printf("  asked the provider about %zu order(s) the statement "
		    "says were paid: %zu confirmed%s\n", sum.asked,
		    sum.confirmed, sum.unsendable > 0 ? ", the others not "
		    "asked: the configuration kept the calls from going out" :
		    sum.unanswered > 0 ? ", the others not answered: run it "
		    "again" : "");
	printf("report: %s\n        %s\n", sum.csv_path, sum.json_path);
	if (sum.unsendable > 0) {
		/* Never sent: a run again would not send them either. */
		fprintf(stderr, "payhook: reconcile %s %s: %zu call(s) to the "
		    "provider could not be made (the log says why: no api_base "
		    "in the profile?); the orders they asked about are still "
		    "pending: fix the configuration\n", o->profile, sum.date,
		    sum.unsendable);
		return CLI_EXIT_CONFIG;
	}
	if (sum.unanswered > 0) {
		/* "0 confirmed" would read as "not paid": the provider did
		 * not say, and a run again asks again. */
		fprintf(stderr, "payhook: reconcile %s %s: %zu call(s) to the "
		    "provider got no usable answer; the orders they asked "
		    "about are still pending: run it again\n", o->profile,
		    sum.date, sum.unanswered);
		return CLI_EXIT_TEMPFAIL;
	}
	cli_job_succeeded("payhook_reconcile_last_success_timestamp_seconds");
	return CLI_EXIT_OK;
}

/* Whether name is a configured [push.name] endpoint. */
static int
cli_push_known(const struct cli *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->conf->npushes; i++)
		if (strcmp(c->conf->pushes[i].name, name) == 0)
			return 1;
	return 0;
}

int
cli_resend_run(struct cli *c)
{
	const char *name = c->a.word;
	/* 0 is before the first event: from the first. */
	uint64_t from = c->a.from != 0 ? c->a.from : 1, next;
	int rc;

	if (!cli_push_known(c, name)) {
		fprintf(stderr, "payhook: no [push.%s] endpoint\n", name);
		return CLI_EXIT_FAIL;
	}
	if ((rc = push_resend(c->store, name, from, &next)) ==
	    PH_E_CONFLICT) {
		fprintf(stderr, "payhook: events resend: push %s has not "
		    "delivered event %llu yet (it delivers from there on): "
		    "--from %llu would skip what it never delivered; resend "
		    "goes back, never forward\n", name,
		    (unsigned long long)next, (unsigned long long)from);
		return CLI_EXIT_FAIL;
	}
	if (rc != PH_OK) {
		fprintf(stderr, "payhook: events resend: %s\n",
		    ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	printf("payhook: push %s delivers again from event %llu at the next "
	    "sweep\n", name, (unsigned long long)from);
	return CLI_EXIT_OK;
}

#define CLI_DELIVERIES_MAX 1000	/* attempts events deliveries shows */

int
cli_deliveries_run(struct cli *c)
{
	json_t *log, *e;
	char when[32];
	size_t i;
	int rc;

	/* One more than is shown: whether older ones were left out. */
	if ((rc = push_log(c->store, c->a.word, CLI_DELIVERIES_MAX + 1,
	    &log)) != PH_OK) {
		fprintf(stderr, "payhook: events deliveries: %s\n",
		    ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	/* A name no longer configured may still have its log; one never
	 * configured and never logged is a mistake, not an empty log. */
	if (c->a.word != NULL && json_array_size(log) == 0 &&
	    !cli_push_known(c, c->a.word)) {
		fprintf(stderr, "payhook: no [push.%s] endpoint, and no "
		    "deliveries logged under that name\n", c->a.word);
		json_decref(log);
		return CLI_EXIT_FAIL;
	}
	if (json_array_size(log) > CLI_DELIVERIES_MAX) {
		json_array_remove(log, 0);
		fprintf(stderr, "payhook: events deliveries: the last %d "
		    "attempts; older ones are not shown\n",
		    CLI_DELIVERIES_MAX);
	}
	json_array_foreach(log, i, e) {
		text_time(json_integer_value(json_object_get(e, "at")),
		    when);
		printf("%s\t%s\t%lld\t%lld\t%s\n", when,
		    json_string_value(json_object_get(e, "endpoint")),
		    (long long)json_integer_value(json_object_get(e, "seq")),
		    (long long)json_integer_value(json_object_get(e,
		    "status")),
		    json_string_value(json_object_get(e, "error")));
	}
	json_decref(log);
	return CLI_EXIT_OK;
}
