/*
 * The group commit between processes: several processes apply new facts
 * to one store at once; each fact is applied exactly once, its duplicate
 * is known, and the store's counters say how many facts the shared
 * commits carried.
 */
#include <sys/wait.h>

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ledger/ledger.h"
#include "store/store.h"
#include "../../lib/ledger_fixture.h"
#include "../../lib/helpers.h"
#include "../../lib/tap.h"

#define WORKERS	6
#define ORDERS	40		/* per worker */

static char dir[] = "/tmp/payhook-group-XXXXXX";
static char dbpath[256];

static void
order_name(char *buf, size_t cap, int w, int i)
{
	snprintf(buf, cap, "G%d-%03d", w, i);
}

static void
txn_name(char *buf, size_t cap, int w, int i)
{
	snprintf(buf, cap, "4200%02d%06d", w, i);
}

/* Worker w's payments, each applied: how many did not end in want. */
static int
pay_all(struct store *s, int w, enum ledger_outcome want)
{
	struct ledger_result r;
	struct ph_event ev;
	char order[32], txn[32];
	int i, bad = 0;

	for (i = 0; i < ORDERS; i++) {
		order_name(order, sizeof(order), w, i);
		txn_name(txn, sizeof(txn), w, i);
		ev = fx_pay_event(order, txn, 100 + i, "CNY");
		if (fx_apply(s, "wxshop", &ev, &r, NULL) != PH_OK ||
		    r.outcome != want)
			bad++;
	}
	return bad;
}

/*
 * One worker in its own process and its own environment: pays its orders,
 * then sends each payment again.  The exit status counts what went wrong.
 */
static int
worker(int w)
{
	struct ph_diag d;
	struct store *s;
	int bad;

	memset(&d, 0, sizeof(d));
	if (ledger_open(dbpath, 16 << 20, &s, &d) != PH_OK)
		return 100;
	bad = pay_all(s, w, LEDGER_APPLIED) + pay_all(s, w, LEDGER_DUPLICATE);
	store_close(s);
	return bad > 99 ? 99 : bad;
}

/*
 * A group file of another layout (a build of another version still
 * running, which keeps its mapping): left alone, and facts commit on
 * their own meanwhile.
 */
static void
test_other_layout(void)
{
	unsigned char head[4096];
	uint32_t word[2] = { 0x50484731u, 99 };	/* magic, version */
	char path[300], group[320];
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	struct store *s;
	uint64_t commits, facts;
	json_t *o = NULL;
	FILE *fp;
	int created;

	snprintf(path, sizeof(path), "%s/other.mdb", dir);
	snprintf(group, sizeof(group), "%s" STORE_GROUP_SUFFIX, path);
	memset(head, 0, sizeof(head));
	memcpy(head, word, sizeof(word));
	if ((fp = fopen(group, "wb")) == NULL ||
	    fwrite(head, sizeof(head), 1, fp) != 1 || fclose(fp) != 0) {
		ok(0, "other layout: its group file written");
		return;
	}
	memset(&d, 0, sizeof(d));
	if (!ok(ledger_open(path, 16 << 20, &s, &d) == PH_OK,
	    "other layout: the store opens (%s)", d.msg))
		return;
	fx_create(s, "GO-1", "wxshop", 100, "CNY", 1700000000, &o, &created,
	    &d);
	json_decref(o);
	ev = fx_pay_event("GO-1", "4299000001", 100, "CNY");
	ok(fx_apply(s, "wxshop", &ev, &r, NULL) == PH_OK &&
	    r.outcome == LEDGER_APPLIED && strcmp(fx_state(s, "GO-1"),
	    "PAID") == 0, "other layout: a payment applies, committed alone");
	ok(ledger_group_stats(s, &commits, &facts) == PH_E_NOTFOUND,
	    "... no group is used");
	store_close(s);
	memset(head, 0xff, sizeof(word));
	fp = fopen(group, "rb");
	ok(fp != NULL && fread(head, sizeof(word), 1, fp) == 1 &&
	    memcmp(head, word, sizeof(word)) == 0, "... and the file is left "
	    "as the other build made it, not made over");
	if (fp != NULL)
		fclose(fp);
}

/* A child that holds the store's write lock until it is killed. */
static pid_t
hold_writer(int *ready)
{
	struct ph_diag d;
	struct store_txn t;
	struct store *s;
	int fds[2];
	pid_t pid;
	char c = 0;

	*ready = 0;
	if (pipe(fds) == -1)
		return -1;
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		memset(&d, 0, sizeof(d));
		if (ledger_open(dbpath, 16 << 20, &s, &d) == PH_OK &&
		    store_begin(s, 1, &t) == PH_OK)
			(void)write(fds[1], "h", 1);
		for (;;)
			pause();
	}
	close(fds[1]);
	*ready = pid > 0 && read(fds[0], &c, 1) == 1 && c == 'h';
	close(fds[0]);
	return pid;
}

/*
 * What /readyz's store_stuck reads: the oldest fact waiting for its
 * commit, by when it began to wait (not the time its caller gave it), and
 * only while the process that waits for it is there.
 */
static void
test_waiting(struct store *s)
{
	struct ledger_result r;
	struct ph_event ev;
	int64_t since = 0, start = (int64_t)time(NULL);
	pid_t holder = -1, waiter;
	int ready = 0, i, status, go[2];
	char c = 0;

	/* The waiter opens the store first: opening it writes too. */
	if (pipe(go) == -1)
		return;
	fflush(NULL);
	if ((waiter = fork()) == 0) {
		struct ph_diag d;
		struct store *ws;

		close(go[1]);
		memset(&d, 0, sizeof(d));
		if (ledger_open(dbpath, 16 << 20, &ws, &d) != PH_OK ||
		    read(go[0], &c, 1) != 1)
			_exit(1);
		/* A fact its caller dated long ago (FX_NOW, 2023). */
		ev = fx_pay_event("GW-1", "4299000002", 100, "CNY");
		fx_apply(ws, "wxshop", &ev, &r, NULL);
		_exit(0);
	}
	close(go[0]);
	usleep(200000);
	holder = hold_writer(&ready);
	if (!ok(ready, "waiting: another process holds the write lock")) {
		kill(waiter, SIGKILL);
		waitpid(waiter, &status, 0);
		goto done;
	}
	(void)write(go[1], "g", 1);
	for (i = 0; i < 100 && since == 0; i++) {
		usleep(50000);
		ledger_group_oldest(s, &since);
	}
	ok(since >= start && since <= (int64_t)time(NULL), "waiting: a fact "
	    "waits, since it was queued (%lld), not since the time its "
	    "caller gave it", (long long)since);
	kill(waiter, SIGKILL);
	waitpid(waiter, &status, 0);
	i = ledger_group_oldest(s, &since);
	ok(i == PH_OK && since == 0, "waiting: its process killed, nothing "
	    "is waited for (%lld)", (long long)since);
done:
	close(go[1]);
	if (holder > 0) {
		kill(holder, SIGKILL);
		waitpid(holder, &status, 0);
	}
}

/*
 * Round one of a container: a leader (pid 2) waiting behind a holder of
 * the write lock (pid 3); then the whole pid namespace is killed, as a
 * container is, with the leader's slot and pid left in the group file.
 * Round two, the container started again: its pid 2 applies a fact and
 * must not wait for the leader of its pid that is gone (for itself).
 * Returns the status to exit with: 0, or what went wrong.
 */
static int
container_round(void *arg)
{
	int two = *(const int *)arg;
	struct ledger_result r;
	struct ph_event ev;
	struct ph_diag d;
	struct store *s;
	pid_t leader;
	int status, ready, go[2];
	char c = 0;

	if (pipe(go) == -1)
		return 9;
	fflush(NULL);
	if ((leader = fork()) == 0) {
		alarm(20);
		close(go[1]);
		memset(&d, 0, sizeof(d));
		/* Opened first: opening the store writes too. */
		if (ledger_open(dbpath, 16 << 20, &s, &d) != PH_OK ||
		    (!two && read(go[0], &c, 1) != 1))
			_exit(1);
		ev = fx_pay_event(two ? "GC-2" : "GC-1", two ? "4299000004" :
		    "4299000003", 100, "CNY");
		_exit(fx_apply(s, "wxshop", &ev, &r, NULL) == PH_OK &&
		    r.outcome == LEDGER_RECORDED ? 0 : 2);
	}
	close(go[0]);
	if (leader != 2) {
		kill(leader, SIGKILL);
		return 11;
	}
	if (!two) {
		usleep(300000);
		if (hold_writer(&ready) != 3 || !ready)
			return 10;
		(void)write(go[1], "g", 1);
		sleep(1);		/* the leader waits behind the lock */
		return 0;		/* pid 1 leaves: the kernel kills all */
	}
	waitpid(leader, &status, 0);
	close(go[1]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 13;
}

static void
test_container_restart(void)
{
	int round, status[2] = { -1, -1 };

	for (round = 0; round < 2; round++) {
		status[round] = fx_in_pidns(container_round, &round);
		if (status[round] == FX_NO_PIDNS) {
			skip(2, "a pid namespace and its /proc need root "
			    "(unshare, mount)");
			return;
		}
	}
	is_int(status[0], 0, "container restart: round one left a leader "
	    "(pid 2) in the group file");
	is_int(status[1], 0, "... round two's pid 2 applies its fact, not "
	    "waiting for the leader of its pid that is gone");
}

int
main(void)
{
	struct ph_diag d;
	struct store *s;
	pid_t pid[WORKERS];
	uint64_t commits0, facts0, commits, facts;
	char order[32];
	json_t *o;
	int w, i, created, status, bad, paid;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(dbpath, sizeof(dbpath), "%s/payhook.mdb", dir);
	memset(&d, 0, sizeof(d));
	if (!ok(ledger_open(dbpath, 16 << 20, &s, &d) == PH_OK,
	    "store opens (%s)", d.msg))
		return done_testing();
	bad = 0;
	for (w = 0; w < WORKERS; w++)
		for (i = 0; i < ORDERS; i++) {
			order_name(order, sizeof(order), w, i);
			if (fx_create(s, order, "wxshop", 100 + i, "CNY",
			    1700000000, &o, &created, &d) != PH_OK || !created)
				bad++;
			json_decref(o);
		}
	ok(bad == 0, "%d orders created", WORKERS * ORDERS);
	ok(ledger_group_stats(s, &commits0, &facts0) == PH_OK,
	    "the group's counters are there before any payment");
	store_close(s);

	for (w = 0; w < WORKERS; w++) {
		fflush(NULL);
		if ((pid[w] = fork()) == 0)
			_exit(worker(w));
	}
	for (w = 0; w < WORKERS; w++) {
		status = -1;
		if (pid[w] > 0)
			waitpid(pid[w], &status, 0);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "worker %d: each payment applied, then known as a "
		    "duplicate (status %d)", w, status);
	}

	if (!ok(ledger_open(dbpath, 16 << 20, &s, &d) == PH_OK,
	    "store reopens"))
		return done_testing();
	paid = 0;
	for (w = 0; w < WORKERS; w++)
		for (i = 0; i < ORDERS; i++) {
			order_name(order, sizeof(order), w, i);
			if (strcmp(fx_state(s, order), "PAID") == 0)
				paid++;
		}
	is_int(paid, WORKERS * ORDERS, "every order PAID");
	ok(ledger_group_stats(s, &commits, &facts) == PH_OK,
	    "the group's counters after the run");
	/* Only new facts reach the group; duplicates are answered from a
	 * read transaction. */
	is_int((long long)(facts - facts0), WORKERS * ORDERS,
	    "the shared commits carried each new payment once");
	ok(commits > commits0 && commits - commits0 <= facts - facts0,
	    "%llu commits for %llu facts", (unsigned long long)(commits -
	    commits0), (unsigned long long)(facts - facts0));
	diag("facts per commit: %.2f", commits > commits0 ?
	    (double)(facts - facts0) / (double)(commits - commits0) : 0.0);
	test_waiting(s);
	store_close(s);
	test_container_restart();
	test_other_layout();
	th_scratch_remove(dir);
	return done_testing();
}
