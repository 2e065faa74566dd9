/*
 * Scenario F, the durable-commit floor: N processes, each doing nothing
 * but one LMDB write transaction (one small record) and a durable commit
 * per operation, with the environment flags of src/store/store_lmdb.c, on
 * the disk that holds DB.  Prints one JSON object: commits, seconds, commits per
 * second and commit latency (p50, p99, max, microseconds).
 *
 *	commit_floor [-m full|shared] [-p procs] [-s seconds] [-v bytes] DB
 *
 * -m full (default): the store's durable commit without MDB_NOMETASYNC
 * (data flush, then meta flush, both inside the writer lock).
 * -m shared: MDB_NOMETASYNC and mdb_env_sync(env, 1) after each commit,
 * outside the writer lock, as the store does when STORE_SHARED_SYNC is on.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#define CF_PROCS_MAX	256
#define CF_SAMPLES_MAX	(1u << 20)	/* latencies kept, all processes */

struct cf_shared {
	uint32_t n;			/* samples taken */
	uint32_t lat[CF_SAMPLES_MAX];	/* microseconds */
};

static uint64_t
cf_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static size_t cf_vsize = 256;		/* -v: bytes of each record */

static int
cf_child(const char *path, int shared, uint64_t until, int id,
    struct cf_shared *sh)
{
	unsigned int flags = MDB_NOSUBDIR | MDB_NOTLS;
	char key[32], val[4000];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	uint64_t t0, seq = 0;
	uint32_t i;
	int rc;

	if (shared)
		flags |= MDB_NOMETASYNC;
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, 9)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, (size_t)1 << 30)) != 0 ||
	    (rc = mdb_env_set_maxreaders(env, 256)) != 0 ||
	    (rc = mdb_env_open(env, path, flags, 0600)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "floor", MDB_CREATE, &dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	memset(val, 'v', sizeof(val));
	while (cf_now_us() < until) {
		t0 = cf_now_us();
		k.mv_size = (size_t)snprintf(key, sizeof(key), "%04d:%012llu",
		    id, (unsigned long long)seq++);
		k.mv_data = key;
		v.mv_size = cf_vsize;
		v.mv_data = val;
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
			goto fail;
		if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
		if ((rc = mdb_txn_commit(txn)) != 0)
			goto fail;
		if (shared && (rc = mdb_env_sync(env, 1)) != 0)
			goto fail;
		i = __atomic_fetch_add(&sh->n, 1, __ATOMIC_RELAXED);
		if (i < CF_SAMPLES_MAX)
			sh->lat[i] = (uint32_t)(cf_now_us() - t0);
	}
	mdb_env_close(env);
	return 0;
fail:
	fprintf(stderr, "commit_floor: %s: %s\n", path, mdb_strerror(rc));
	return 1;
}

static int
cf_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char *argv[])
{
	struct cf_shared *sh;
	const char *mode = "full";
	uint64_t start, until, end;
	uint32_t n;
	pid_t pids[CF_PROCS_MAX];
	int procs = 1, secs = 5, c, i, status, bad = 0;

	while ((c = getopt(argc, argv, "m:p:s:v:")) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 'p':
			procs = atoi(optarg);
			break;
		case 's':
			secs = atoi(optarg);
			break;
		case 'v':
			cf_vsize = (size_t)atoi(optarg);
			if (cf_vsize < 1 || cf_vsize > 4000)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || procs < 1 || procs > CF_PROCS_MAX ||
	    secs < 1 || secs > 600 || (strcmp(mode, "full") != 0 &&
	    strcmp(mode, "shared") != 0))
		goto usage;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("commit_floor: mmap");
		return 1;
	}
	start = cf_now_us();
	until = start + (uint64_t)secs * 1000000u;
	for (i = 0; i < procs; i++) {
		if ((pids[i] = fork()) == -1) {
			perror("commit_floor: fork");
			return 1;
		}
		if (pids[i] == 0)
			_exit(cf_child(argv[optind], strcmp(mode, "shared") ==
			    0, until, i, sh));
	}
	for (i = 0; i < procs; i++)
		if (waitpid(pids[i], &status, 0) == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			bad++;
	end = cf_now_us();
	n = sh->n < CF_SAMPLES_MAX ? sh->n : CF_SAMPLES_MAX;
	qsort(sh->lat, n, sizeof(sh->lat[0]), cf_cmp);
	printf("{\"mode\": \"%s\", \"procs\": %d, \"commits\": %u, "
	    "\"seconds\": %.3f, \"rate\": %.1f, \"p50_us\": %u, "
	    "\"p99_us\": %u, \"max_us\": %u, \"errors\": %d}\n", mode, procs,
	    sh->n, (end - start) / 1e6, sh->n / ((end - start) / 1e6),
	    n ? sh->lat[n / 2] : 0, n ? sh->lat[(uint64_t)n * 99 / 100] : 0,
	    n ? sh->lat[n - 1] : 0, bad);
	return bad != 0;
usage:
	fprintf(stderr, "usage: commit_floor [-m full|shared] [-p procs] "
	    "[-s seconds] [-v bytes] DB\n");
	return 2;
}
