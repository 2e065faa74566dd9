/*
 * ledger_apply(), the way every fact about money comes in: a fact applied
 * already is answered from a read transaction (ledger_known); a new one
 * goes through group commit: the facts that processes want applied at the
 * same moment share one write transaction, one commit and one flush.
 *
 * Every process of a store maps the same small file (<db_path>-group):
 * slots a process puts its fact in, a mutex shared by every process
 * (robust: a process that dies holding it does not block the others) and
 * a counter the leader bumps when it is done, which waiters sleep on with
 * a futex.  Not a process-shared condition variable: a waiter killed
 * inside pthread_cond_wait leaves glibc's condition variable counting it,
 * and the next broadcast waits for it for ever; a futex keeps no record
 * of who sleeps on it.  Whoever finds no leader becomes it: takes
 * every waiting fact, applies each in a nested transaction of one write
 * transaction (a fact that fails leaves the others applied), commits it
 * durably (store_commit: the data flushed, the meta page flushed), then
 * hands each process its result.  Nobody answers before that commit is on
 * disk, and while one leader waits for the disk the next facts gather for
 * the next one: the busier payhook is, the more facts share a flush.  It
 * works the same whether a process serves one request at a time (Apache
 * mod_fcgid) or several.
 *
 * Processes die at any moment.  A waiter whose leader is gone (its pid no
 * longer runs) puts the facts the leader took back in the queue; a fact of
 * a process that is gone is applied all the same, and its slot freed.  A
 * fact applied twice that way is a duplicate the second time.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ledger/ledger_int.h"
#include "ops/log.h"
#include "ops/proc.h"
#include "ops/shmfile.h"
#include "ops/metrics.h"

#define GROUP_MAGIC	0x50484731u	/* "PHG1" */
/*
 * The layout of the file.  A process keeps the mapping it made for its
 * life, so that a build with another layout must never share the file
 * with it (Apache's graceful restart runs both at once): a new layout
 * takes a new file name (STORE_GROUP_SUFFIX) as well as a new version,
 * and a file of another version is never made over, only left alone.
 */
#define GROUP_VERSION	4
#define GROUP_SLOTS	256
#define GROUP_WAIT_MS	50		/* how often a waiter checks that
					 * its leader still runs */
#define GROUP_STORES	8
#define GROUP_REMAP_S	60		/* between tries to map the file */
#define GROUP_RETRIES	4		/* of a transaction that may pass
					 * when run again (store_retryable) */
#define GROUP_RETRY_MS	2000		/* ... begun within this long of
					 * the first try: a provider waits
					 * about five seconds in all */

enum group_state {
	GROUP_FREE,
	GROUP_QUEUED,		/* waiting for a leader */
	GROUP_TAKEN,		/* a leader is applying it */
	GROUP_DONE,		/* applied (or refused): result set */
};

struct group_slot {
	uint32_t state;
	pid_t owner;		/* who asked */
	pid_t taker;		/* the leader that took it */
	/* Their start times (proc_start): a pid alone may be another
	 * process's after a restart (a container's pids come back). */
	unsigned long long owner_start, taker_start;
	/* The fact. */
	char profile[64];
	char provider[40];
	char source[24];
	struct ph_event ev;
	int64_t now;		/* the fact's time, as its caller gave it */
	int64_t queued_at;	/* when it began to wait for its commit */
	char request_id[80];	/* the asker's, for the lines its fact logs */
	/* The result. */
	int rc;
	struct ledger_result res;
	char diag[PH_DIAG_MAX];
};

struct group_shm {
	uint32_t magic;
	uint32_t version;
	pthread_mutex_t mu;
	uint32_t done_seq;	/* bumped by a leader that is done */
	pid_t leader;		/* 0 when none */
	unsigned long long leader_start;
	uint64_t commits;	/* group commits made, and the facts they */
	uint64_t facts;		/* carried: facts per flush */
	struct group_slot slot[GROUP_SLOTS];
};

/* The group of each store file this process opened, by its path. */
static struct {
	char path[4096];
	struct group_shm *shm;		/* NULL: not mapped, since failed_at */
	time_t failed_at;
} group_maps[GROUP_STORES];

static int
group_init(struct group_shm *g)
{
	pthread_mutexattr_t ma;

	memset(g, 0, sizeof(*g));
	if (pthread_mutexattr_init(&ma) != 0 ||
	    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&g->mu, &ma) != 0)
		return -1;
	pthread_mutexattr_destroy(&ma);
	g->version = GROUP_VERSION;
	/* Last: a process that sees the magic sees the rest. */
	__atomic_store_n(&g->magic, GROUP_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* The mapping made ours when it is not (shmfile_map's setup). */
static int
group_setup(void *p)
{
	struct group_shm *g = p;

	if (__atomic_load_n(&g->magic, __ATOMIC_ACQUIRE) != GROUP_MAGIC)
		return group_init(g);
	if (g->version == GROUP_VERSION)
		return 0;
	errno = EPROTO;		/* another build's: see GROUP_VERSION */
	return -1;
}

/* Maps <path>-group4 (STORE_GROUP_SUFFIX), making it the first time. */
static struct group_shm *
group_map(const char *path)
{
	char file[4200];

	snprintf(file, sizeof(file), "%s" STORE_GROUP_SUFFIX, path);
	return shmfile_map(file, sizeof(struct group_shm), group_setup, NULL);
}

static struct group_shm *
group_of(struct store *s)
{
	const char *path = store_path(s);
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < GROUP_STORES; i++)
		if (strcmp(group_maps[i].path, path) == 0)
			break;
	if (i == GROUP_STORES) {
		for (i = 0; i < GROUP_STORES; i++)
			if (group_maps[i].path[0] == '\0')
				break;
		if (i == GROUP_STORES ||
		    strlen(path) >= sizeof(group_maps[0].path))
			return NULL;
		ph_strlcpy(group_maps[i].path, path,
		    sizeof(group_maps[i].path));
	} else if (group_maps[i].shm != NULL ||
	    now - group_maps[i].failed_at < GROUP_REMAP_S)
		return group_maps[i].shm;
	/* First use, or a while after a failure (a full disk freed since):
	 * a process lives for days, and should not commit alone for them. */
	if ((group_maps[i].shm = group_map(path)) != NULL)
		return group_maps[i].shm;
	if (errno != EPROTO)
		log_warn("database %s: no group commit (%s): each fact "
		    "commits on its own", path, strerror(errno));
	else if (group_maps[i].failed_at == 0)
		log_warn("database %s: no group commit: %s" STORE_GROUP_SUFFIX
		    " has another version's layout (a payhook of that version "
		    "maps it); each fact commits on its own; remove the file "
		    "while no payhook process runs", path, path);
	group_maps[i].failed_at = now;
	return NULL;
}

/* Before try number try + 2 of a transaction: 50, 100, 200, 400 ms. */
static void
group_pause(int try)
{
	struct timespec ts = { 0, 50000000L << (try < 4 ? try : 4) };

	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	nanosleep(&ts, NULL);
}

/* Sleeps until done_seq moves from seen, or GROUP_WAIT_MS pass; 1 when
 * the time ran out.  Shared (not FUTEX_PRIVATE): the word lives in a file
 * every process maps. */
static int
group_sleep(struct group_shm *g, uint32_t seen)
{
	struct timespec ts = { 0, GROUP_WAIT_MS * 1000000L };

	return syscall(SYS_futex, &g->done_seq, FUTEX_WAIT, seen, &ts,
	    NULL, 0) == -1 && errno == ETIMEDOUT;
}

static void
group_wake(struct group_shm *g)
{
	__atomic_add_fetch(&g->done_seq, 1, __ATOMIC_SEQ_CST);
	(void)syscall(SYS_futex, &g->done_seq, FUTEX_WAKE, INT_MAX, NULL,
	    NULL, 0);
}

static void
group_lock(struct group_shm *g)
{
	if (pthread_mutex_lock(&g->mu) == EOWNERDEAD)
		pthread_mutex_consistent(&g->mu);
}

/*
 * Under the mutex: frees the slots of processes that are gone, and puts
 * back what a leader that is gone took.
 */
static void
group_reap(struct group_shm *g)
{
	struct group_slot *sl;
	size_t i;

	if (g->leader != 0 && !proc_alive(g->leader, g->leader_start))
		g->leader = 0;
	for (i = 0; i < GROUP_SLOTS; i++) {
		sl = &g->slot[i];
		if (sl->state == GROUP_TAKEN && (sl->taker != g->leader ||
		    sl->taker_start != g->leader_start) &&
		    !proc_alive(sl->taker, sl->taker_start))
			sl->state = GROUP_QUEUED;
		if (sl->state == GROUP_DONE &&
		    !proc_alive(sl->owner, sl->owner_start))
			sl->state = GROUP_FREE;
	}
}

/* A fact as a slot holds it; 0, or -1 when a string does not fit. */
static int
group_put_fact(struct group_slot *sl, const struct ledger_fact *f)
{
	if (strlen(f->profile) >= sizeof(sl->profile) ||
	    strlen(f->provider) >= sizeof(sl->provider) ||
	    strlen(f->source) >= sizeof(sl->source))
		return -1;
	ph_strlcpy(sl->profile, f->profile, sizeof(sl->profile));
	ph_strlcpy(sl->provider, f->provider, sizeof(sl->provider));
	ph_strlcpy(sl->source, f->source, sizeof(sl->source));
	ph_strlcpy(sl->request_id, log_request_id(), sizeof(sl->request_id));
	sl->ev = *f->ev;
	sl->now = f->now;
	sl->queued_at = (int64_t)time(NULL);
	return 0;
}

/*
 * The leader's work: every queued fact, one write transaction, one
 * durable commit.  Called without the mutex.
 */
/*
 * Applies the n facts taken in one write transaction, each in a nested
 * one of its own (one that fails takes nothing of the others with it),
 * and commits it durably; every slot gets its result.  The transaction's
 * own failure is returned (the slots' results then do not stand).
 */
static int
group_apply_all(struct store *s, struct group_slot **taken, size_t n)
{
	struct store_txn t, sub;
	struct ledger_fact f;
	struct ph_diag diag;
	size_t i;
	int rc;

	rc = store_begin(s, 1, &t);
	for (i = 0; i < n && rc == PH_OK; i++) {
		struct group_slot *sl = taken[i];

		/* What a fact logs carries the id of the request it came
		 * with, whichever process applies it. */
		log_request_begin(sl->request_id);
		f.profile = sl->profile;
		f.provider = sl->provider;
		f.source = sl->source;
		f.ev = &sl->ev;
		f.now = sl->now;
		memset(&diag, 0, sizeof(diag));
		if ((sl->rc = store_begin_nested(&t, &sub)) == PH_OK) {
			sl->rc = ledger_apply_txn(&sub, &f, &sl->res, &diag);
			if (sl->rc == PH_OK)
				sl->rc = store_commit(&sub);
			else
				store_abort(&sub);
		}
		if (sl->rc != PH_OK) {
			memset(&sl->res, 0, sizeof(sl->res));
			if (diag.msg[0] == '\0' ||
			    sl->rc == PH_E_STORE_FULL)
				ledger_store_fail(&diag, sl->rc);
		}
		ph_strlcpy(sl->diag, diag.msg, sizeof(sl->diag));
		/* A failure of the whole transaction fails every fact. */
		if (t.err != PH_OK)
			rc = t.err;
	}
	if (rc == PH_OK)
		rc = store_commit(&t);
	else
		store_abort(&t);
	return rc;
}

/*
 * The leader: takes every waiting fact, applies them together and hands
 * each process its result once the commit is durable.  A transaction that
 * failed in a way another may not (the connection to a database server
 * lost, a failover) is run again, a few times over about a second (none
 * begun past GROUP_RETRY_MS): a fact it applied before failing is then
 * found applied, never applied twice.
 * Called without the mutex.
 */
static void
group_lead(struct group_shm *g, struct store *s)
{
	struct group_slot *taken[GROUP_SLOTS];
	struct timespec t0, now;
	struct ph_diag diag;
	char mine[80];
	size_t i, n = 0;
	pid_t me = proc_pid();
	int rc, try;

	group_lock(g);
	for (i = 0; i < GROUP_SLOTS; i++)
		if (g->slot[i].state == GROUP_QUEUED) {
			g->slot[i].state = GROUP_TAKEN;
			g->slot[i].taker = me;
			g->slot[i].taker_start = proc_start();
			taken[n++] = &g->slot[i];
		}
	pthread_mutex_unlock(&g->mu);
	if (n == 0)
		return;
	ph_strlcpy(mine, log_request_id(), sizeof(mine));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (try = 0; ; try++) {
		rc = group_apply_all(s, taken, n);
		log_request_begin(mine);
		if (rc == PH_OK || try == GROUP_RETRIES || !store_retryable(s))
			break;
		/* A try that took long (a server that stopped answering) is
		 * not run again: the answer would come after the provider
		 * gave up on it. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec -
		    t0.tv_nsec) / 1000000 > GROUP_RETRY_MS)
			break;
		log_warn("database: the commit of %zu fact(s) failed (%s); "
		    "trying again", n, ph_strerror(rc));
		group_pause(try);
	}
	group_lock(g);
	for (i = 0; i < n; i++) {
		struct group_slot *sl = taken[i];

		if (rc != PH_OK) {
			sl->rc = rc;
			memset(&sl->res, 0, sizeof(sl->res));
			memset(&diag, 0, sizeof(diag));
			ledger_store_fail(&diag, rc);
			ph_strlcpy(sl->diag, diag.msg, sizeof(sl->diag));
		}
		sl->state = GROUP_DONE;
	}
	if (rc == PH_OK) {
		g->commits++;
		g->facts += n;
	}
	pthread_mutex_unlock(&g->mu);
	if (rc == PH_OK) {
		metrics_add("payhook_store_group_commits_total", NULL, 1);
		metrics_add("payhook_store_group_facts_total", NULL, n);
	}
}

/* A new fact, applied in a write transaction shared by every fact waiting
 * at the moment: one commit and one flush for them all. */
static int
ledger_group_apply(struct store *s, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag)
{
	struct group_shm *g = group_of(s);
	struct group_slot *sl = NULL;
	uint32_t seen;
	size_t i;
	int rc, timed_out;

	if (g == NULL)
		return ledger_apply_alone(s, f, r, diag);
	group_lock(g);
	for (i = 0; i < GROUP_SLOTS && sl == NULL; i++)
		if (g->slot[i].state == GROUP_FREE)
			sl = &g->slot[i];
	if (sl == NULL) {
		group_reap(g);
		for (i = 0; i < GROUP_SLOTS && sl == NULL; i++)
			if (g->slot[i].state == GROUP_FREE)
				sl = &g->slot[i];
	}
	if (sl == NULL || group_put_fact(sl, f) == -1) {
		/* More facts in flight than slots: this one goes alone. */
		pthread_mutex_unlock(&g->mu);
		return ledger_apply_alone(s, f, r, diag);
	}
	sl->owner = proc_pid();
	sl->owner_start = proc_start();
	sl->taker = 0;
	sl->state = GROUP_QUEUED;
	while (sl->state != GROUP_DONE) {
		if (g->leader == 0) {
			g->leader = sl->owner;
			g->leader_start = sl->owner_start;
			pthread_mutex_unlock(&g->mu);
			group_lead(g, s);
			group_lock(g);
			g->leader = 0;
			group_wake(g);
			continue;
		}
		seen = __atomic_load_n(&g->done_seq, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&g->mu);
		timed_out = group_sleep(g, seen);
		group_lock(g);
		/* A leader that died leaves what it took to the next.  Looked
		 * for when nobody woke the waiter for GROUP_WAIT_MS (a leader
		 * that ended woke it): not a kill(2) per process per commit. */
		if (sl->state != GROUP_DONE && timed_out)
			group_reap(g);
	}
	rc = sl->rc;
	*r = sl->res;
	if (rc != PH_OK)
		ph_fail(diag, rc, "%s", sl->diag);
	sl->state = GROUP_FREE;
	pthread_mutex_unlock(&g->mu);
	if (rc == PH_OK)
		ledger_applied(f, r);
	return rc;
}

int
ledger_group_stats(struct store *s, uint64_t *commits, uint64_t *facts)
{
	struct group_shm *g = group_of(s);

	*commits = *facts = 0;
	if (g == NULL)
		return PH_E_NOTFOUND;
	group_lock(g);
	*commits = g->commits;
	*facts = g->facts;
	pthread_mutex_unlock(&g->mu);
	return PH_OK;
}

int
ledger_group_oldest(struct store *s, int64_t *since)
{
	struct group_shm *g = group_of(s);
	size_t i;

	*since = 0;
	if (g == NULL)
		return PH_E_NOTFOUND;
	group_lock(g);
	for (i = 0; i < GROUP_SLOTS; i++) {
		const struct group_slot *sl = &g->slot[i];

		/* Waited for by a process still there: a fact whose asker
		 * died waits for no one (the next leader applies it), nor
		 * one whose leader died (the next one takes it again). */
		if (!((sl->state == GROUP_QUEUED &&
		    proc_alive(sl->owner, sl->owner_start)) ||
		    (sl->state == GROUP_TAKEN &&
		    proc_alive(sl->taker, sl->taker_start))))
			continue;
		if (*since == 0 || sl->queued_at < *since)
			*since = sl->queued_at;
	}
	pthread_mutex_unlock(&g->mu);
	return PH_OK;
}

int
ledger_apply(struct store *s, const struct ledger_fact *f,
    struct ledger_result *r, struct ph_diag *diag)
{
	int rc, known;

	if ((rc = ledger_known(s, f, r, &known, diag)) != PH_OK || known)
		return rc;
	return ledger_group_apply(s, f, r, diag);
}
