/*
 * The driver shared by every fuzz target.
 *
 *   fuzz_NAME                 replays tests/fuzz/corpus/NAME/ (TAP)
 *   fuzz_NAME FILE|DIR...     replays those files (TAP)
 *
 * In a build configured with --enable-fuzzing (clang, CFLAGS with
 * -fsanitize=fuzzer-no-link,address,undefined) and PAYHOOK_FUZZ_SECONDS
 * set, it runs libFuzzer instead for that many seconds, starting from the
 * corpus, writing new inputs to tests/fuzz/runs/NAME/ and crashers to
 * tests/fuzz/artifacts/ in the build tree, then prints one TAP point with
 * the CPU time used.  libFuzzer runs in a child process and the point is
 * "ok" only when that child exited with status 0: a crash, sanitizer
 * report, leak or timeout (which end it otherwise) makes it "not ok".
 * PAYHOOK_FUZZ_FORK=N runs N fuzzing processes at once (libFuzzer's
 * -fork); PAYHOOK_FUZZ_MERGE=1 instead adds to the corpus the inputs of
 * tests/fuzz/runs/NAME/ that reach code it does not (libFuzzer's -merge),
 * which is how make fuzz-long keeps what it found.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "fuzz.h"

#define FZ_FILE_MAX (1u << 20)
#define FZ_PROFILES_MAX 8

static struct {
	const struct ph_provider *prov;
	void *ctx;
	struct ph_conf_value *values;
	struct ph_blob *files;
} fz_profiles[FZ_PROFILES_MAX];
static size_t fz_nprofiles;

void *
fz_profile(const struct ph_provider *prov, const char *name,
    const struct fz_setting *settings)
{
	struct ph_conf_value *v;
	struct ph_blob *files;
	struct ph_conf conf;
	struct ph_diag diag;
	size_t n, i, j;
	void *ctx = NULL;

	for (n = 0; prov->conf_keys[n].name != NULL; n++)
		continue;
	if (fz_nprofiles == FZ_PROFILES_MAX ||
	    (v = calloc(n + 1, sizeof(*v))) == NULL ||
	    (files = calloc(n + 1, sizeof(*files))) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		const struct ph_conf_key *k = &prov->conf_keys[i];
		const char *val = k->def;

		v[i].name = k->name;
		v[i].str = "";
		for (j = 0; settings[j].name != NULL; j++)
			if (strcmp(settings[j].name, k->name) == 0)
				val = settings[j].value;
		if (val == NULL)
			continue;
		v[i].present = 1;
		switch (k->type) {
		case PH_CONF_FILE:
		case PH_CONF_SECRET_FILE:
			v[i].str = "fuzz-file";
			v[i].blob.data = (const unsigned char *)val;
			v[i].blob.len = strlen(val);
			break;
		case PH_CONF_FILES:
			v[i].str = "fuzz-file";
			files[i].data = (const unsigned char *)val;
			files[i].len = strlen(val);
			v[i].files = &files[i];
			v[i].nfiles = 1;
			break;
		case PH_CONF_BOOL:
			v[i].str = val;
			v[i].num = strcmp(val, "yes") == 0 ||
			    strcmp(val, "true") == 0 || strcmp(val, "on") == 0 ||
			    strcmp(val, "1") == 0;
			break;
		case PH_CONF_INT:
			v[i].str = val;
			v[i].num = strtoll(val, NULL, 10);
			break;
		default:
			v[i].str = val;
			break;
		}
	}
	for (j = 0; settings[j].name != NULL; j++) {
		for (i = 0; i < n; i++)
			if (strcmp(settings[j].name, v[i].name) == 0)
				break;
		if (i == n) {
			fprintf(stderr, "fuzz: %s has no setting %s\n",
			    prov->name, settings[j].name);
			abort();
		}
	}
	conf.profile = name;
	conf.values = v;
	conf.nvalues = n;
	memset(&diag, 0, sizeof(diag));
	if (prov->profile_new(&conf, &ctx, &diag) != PH_OK) {
		fprintf(stderr, "fuzz: profile %s refused: %s\n", name,
		    diag.msg);
		abort();
	}
	fz_profiles[fz_nprofiles].prov = prov;
	fz_profiles[fz_nprofiles].ctx = ctx;
	fz_profiles[fz_nprofiles].values = v;
	fz_profiles[fz_nprofiles].files = files;
	fz_nprofiles++;
	return ctx;
}

static void
fz_profiles_free(void)
{
	size_t i;

	for (i = 0; i < fz_nprofiles; i++) {
		fz_profiles[i].prov->profile_free(fz_profiles[i].ctx);
		free(fz_profiles[i].values);
		free(fz_profiles[i].files);
	}
	fz_nprofiles = 0;
}

const uint8_t *
fz_split(const uint8_t *data, size_t size, uint8_t sep, size_t *head_len,
    size_t *rest_len)
{
	const uint8_t *p = memchr(data, sep, size);

	if (p == NULL) {
		*head_len = size;
		*rest_len = 0;
		return data + size;
	}
	*head_len = (size_t)(p - data);
	*rest_len = size - *head_len - 1;
	return p + 1;
}

char *
fz_strndup(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int
fz_named(const uint8_t *name, size_t n, const char *const *names)
{
	for (; names != NULL && *names != NULL; names++)
		if (strlen(*names) == n && memcmp(name, *names, n) == 0)
			return 1;
	return 0;
}

void
fz_fields(const uint8_t *data, size_t size, const char *const *skip,
    struct ph_kvlist *kv)
{
	const uint8_t *p = data, *line, *eq;
	size_t left = size, n, rest;

	while (left > 0) {
		line = p;
		p = fz_split(p, left, '\n', &n, &rest);
		left = rest;
		if ((eq = memchr(line, '=', n)) == NULL || eq == line ||
		    fz_named(line, (size_t)(eq - line), skip))
			continue;
		ph_kvlist_add(kv, (const char *)line, (size_t)(eq - line),
		    (const char *)eq + 1, n - (size_t)(eq - line) - 1, NULL);
	}
}

/* ---- Checks shared by the provider targets -------------------------- */

void
fz_check_diag(const struct ph_diag *diag)
{
	if (strnlen(diag->msg, sizeof(diag->msg)) == sizeof(diag->msg))
		abort();
}

void
fz_check_event(int rc, const struct ph_event *ev, unsigned flags)
{
	if (rc != PH_OK)
		return;
	if (ev->kind >= PH_EV__MAX || ev->amount < 0 ||
	    ev->amount > PH_AMOUNT_MAX)
		abort();
	if ((flags & FZ_EV_ORDER) && strnlen(ev->order_id,
	    sizeof(ev->order_id)) == sizeof(ev->order_id))
		abort();
	if ((flags & FZ_EV_DEDUP_BOUNDED) && strnlen(ev->dedup_key,
	    sizeof(ev->dedup_key)) == sizeof(ev->dedup_key))
		abort();
	if ((flags & FZ_EV_DEDUP) && ev->dedup_key[0] == '\0')
		abort();
}

void
fz_check_acks(const struct ph_provider *prov, void *ctx, int rc,
    const struct ph_diag *diag)
{
	struct ph_response *resp;
	int k;

	if ((resp = calloc(1, sizeof(*resp))) == NULL)
		abort();
	for (k = 0; k < PH_ACK__MAX; k++) {
		prov->ack(ctx, (enum ph_ack_kind)k,
		    rc == PH_OK ? NULL : diag->msg, resp);
		if (resp->body_len > sizeof(resp->body))
			abort();
	}
	free(resp);
}

void
fz_check_hint(const struct ph_provider *prov, void *ctx,
    const struct ph_request *req)
{
	char order[PH_ID_MAX + 1];

	if (prov->notify_hint(ctx, req, order) == PH_OK &&
	    strnlen(order, sizeof(order)) == sizeof(order))
		abort();
}

void
fz_check_same_fields(const struct ph_kvlist *a, const struct ph_kvlist *again,
    int values)
{
	size_t i;

	if (again->n != a->n)
		abort();
	for (i = 0; i < a->n; i++)
		if (strcmp(a->items[i].key, again->items[i].key) != 0 ||
		    a->items[i].val_len != again->items[i].val_len ||
		    (values && memcmp(a->items[i].val, again->items[i].val,
		    a->items[i].val_len) != 0))
			abort();
}

void
fz_order(struct ph_order_ref *o, const char *order_id, int64_t amount,
    int64_t created_at, const char *attempt)
{
	memset(o, 0, sizeof(*o));
	o->order_id = order_id;
	o->amount = amount;
	o->currency = "CNY";
	o->txn_id = "";
	o->created_at = created_at;
	o->attempt = attempt;
}

int
fz_check_notify(const struct ph_provider *prov, void *ctx,
    const struct ph_request *req, unsigned flags, struct ph_diag *diag)
{
	struct ph_event ev;
	int rc;

	memset(&ev, 0, sizeof(ev));
	memset(diag, 0, sizeof(*diag));
	rc = prov->parse_notify(ctx, req, &ev, diag);
	fz_check_diag(diag);
	fz_check_event(rc, &ev, flags);
	return rc;
}

void
fz_check_answer(const struct ph_provider *prov, void *ctx, int close,
    const struct ph_order_ref *o, const struct ph_http_response *in,
    unsigned flags)
{
	struct ph_event ev;
	struct ph_diag diag;
	int rc;

	memset(&ev, 0, sizeof(ev));
	memset(&diag, 0, sizeof(diag));
	if (close)
		rc = prov->close_response(ctx, o, in, &ev, &diag);
	else
		rc = prov->query_response(ctx, o, in, &ev, &diag);
	fz_check_diag(&diag);
	fz_check_event(rc, &ev, flags);
}

void
fz_check_query(const struct ph_provider *prov, void *ctx, const uint8_t *data,
    size_t size, int64_t now, int close, unsigned flags)
{
	struct ph_order_ref o;
	struct ph_http_response in;

	fz_order(&o, "A-1", 100, now, "");
	memset(&in, 0, sizeof(in));
	in.status = 200;
	in.body = data;
	in.body_len = size;
	in.now = now;
	fz_check_answer(prov, ctx, 0, &o, &in, flags);
	if (close)
		fz_check_answer(prov, ctx, 1, &o, &in, flags);
}

/* ---- Replaying a corpus ------------------------------------------------ */

static int fz_tap_fd = STDOUT_FILENO;
static unsigned fz_points;

static int
fz_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
fz_replay_file(const char *path)
{
	unsigned char *buf;
	size_t n = 0;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	if ((buf = malloc(FZ_FILE_MAX)) == NULL) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, FZ_FILE_MAX, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int
fz_replay(const char *path)
{
	char **names = NULL, full[4096];
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int bad = 0;

	if (stat(path, &st) == -1) {
		dprintf(fz_tap_fd, "not ok %u - %s: %s\n", ++fz_points, path,
		    strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		bad = fz_replay_file(path) != 0;
		dprintf(fz_tap_fd, "%sok %u - replay %s\n", bad ? "not " : "",
		    ++fz_points, path);
		return bad;
	}
	if ((d = opendir(path)) == NULL)
		return 1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((names = realloc(names, cap * sizeof(*names))) ==
			    NULL)
				abort();
		}
		if ((names[n++] = strdup(de->d_name)) == NULL)
			abort();
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), fz_cmp);
	for (i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		if (fz_replay_file(full) != 0) {
			bad = 1;
			dprintf(fz_tap_fd, "# %s unreadable\n", full);
		}
		free(names[i]);
	}
	free(names);
	/* One point per folder: its inputs ran without a report. */
	dprintf(fz_tap_fd, "%sok %u - replayed %zu input(s) of %s\n",
	    bad ? "not " : "", ++fz_points, n, path);
	return bad;
}

static const char *
fz_name(const char *argv0)
{
	const char *s = strrchr(argv0, '/');

	s = s != NULL ? s + 1 : argv0;
	/* libtool may run us as lt-fuzz_NAME */
	if (strncmp(s, "lt-", 3) == 0)
		s += 3;
	return s;
}

/* ---- Running libFuzzer --------------------------------------------------- */

#ifdef PH_FUZZING
int LLVMFuzzerRunDriver(int *argc, char ***argv,
    int (*cb)(const uint8_t *, size_t));

/* The TAP point of a libFuzzer run that ended with wait status status:
 * "ok" only for a clean exit, with the CPU time it used. */
static int
fz_report(const char *name, unsigned long seconds, int status)
{
	struct rusage ru;
	double cpu = 0;

	/* libFuzzer ran in a child, and with -fork in the child's children. */
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		dprintf(fz_tap_fd, "ok 1 - %s: %lu s under libFuzzer, no "
		    "crash, leak or sanitizer report\n", name, seconds);
	else if (WIFEXITED(status))
		dprintf(fz_tap_fd, "not ok 1 - %s: libFuzzer exited with "
		    "status %d: a crash, leak, timeout or sanitizer report "
		    "(tests/fuzz/artifacts/)\n", name, WEXITSTATUS(status));
	else
		dprintf(fz_tap_fd, "not ok 1 - %s: libFuzzer killed by "
		    "signal %d\n", name, WIFSIGNALED(status) ?
		    WTERMSIG(status) : 0);
	dprintf(fz_tap_fd, "# fuzz-cpu-seconds: %s %.1f\n1..1\n", name, cpu);
	return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int
fz_fuzz(const char *argv0, const char *name, unsigned long seconds)
{
	const char *top = getenv("top_srcdir"), *build = getenv("top_builddir");
	static char a_time[64], a_art[4096], a_work[4096], a_seed[4096],
	    a_dict[4096], a_fork[32];
	const char *fork_n = getenv("PAYHOOK_FUZZ_FORK");
	char *args[14];
	char **av = args;
	int ac = 0, status;
	struct stat st;
	pid_t pid;

	if (top == NULL)
		top = ".";
	if (build == NULL)
		build = ".";
	snprintf(a_time, sizeof(a_time), "-max_total_time=%lu", seconds);
	snprintf(a_work, sizeof(a_work), "%s/tests/fuzz/runs", build);
	mkdir(a_work, 0755);
	snprintf(a_work, sizeof(a_work), "%s/tests/fuzz/runs/%s", build, name);
	mkdir(a_work, 0755);
	snprintf(a_art, sizeof(a_art), "%s/tests/fuzz/artifacts", build);
	mkdir(a_art, 0755);
	snprintf(a_art, sizeof(a_art),
	    "-artifact_prefix=%s/tests/fuzz/artifacts/%s-", build, name);
	snprintf(a_seed, sizeof(a_seed), "%s/tests/fuzz/corpus/%s", top, name);
	snprintf(a_dict, sizeof(a_dict), "-dict=%s/tests/fuzz/dict/%s.dict",
	    top, name);
	args[ac++] = (char *)argv0;
	args[ac++] = a_time;
	args[ac++] = a_art;
	args[ac++] = (char *)"-timeout=10";
	args[ac++] = (char *)"-rss_limit_mb=2048";
	args[ac++] = (char *)"-max_len=65536";
	args[ac++] = (char *)"-close_fd_mask=1";
	args[ac++] = (char *)"-print_final_stats=1";
	if (fork_n != NULL && strtoul(fork_n, NULL, 10) > 1) {
		snprintf(a_fork, sizeof(a_fork), "-fork=%lu",
		    strtoul(fork_n, NULL, 10));
		args[ac++] = a_fork;
		args[ac++] = (char *)"-ignore_crashes=0";
	}
	if (stat(a_dict + 6, &st) == 0)
		args[ac++] = a_dict;
	args[ac++] = a_work;
	args[ac++] = a_seed;
	args[ac] = NULL;
	/* libFuzzer ends the process itself, with exit() when done and on
	 * a crash found by -fork's children alike: it runs in a child, and
	 * its wait status says how it ended. */
	if ((pid = fork()) == -1) {
		dprintf(fz_tap_fd, "not ok 1 - %s: fork: %s\n1..1\n", name,
		    strerror(errno));
		return 1;
	}
	if (pid == 0)
		_exit(LLVMFuzzerRunDriver(&ac, &av, LLVMFuzzerTestOneInput));
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			dprintf(fz_tap_fd, "not ok 1 - %s: waitpid: %s\n1..1\n",
			    name, strerror(errno));
			return 1;
		}
	return fz_report(name, seconds, status);
}

/* Adds to the committed corpus what the runs found that it lacks. */
static int
fz_merge(const char *argv0, const char *name)
{
	const char *top = getenv("top_srcdir"), *build = getenv("top_builddir");
	static char a_seed[4096], a_work[4096];
	char *args[6];
	char **av = args;
	int ac = 0;

	snprintf(a_seed, sizeof(a_seed), "%s/tests/fuzz/corpus/%s",
	    top != NULL ? top : ".", name);
	snprintf(a_work, sizeof(a_work), "%s/tests/fuzz/runs/%s",
	    build != NULL ? build : ".", name);
	args[ac++] = (char *)argv0;
	args[ac++] = (char *)"-merge=1";
	args[ac++] = (char *)"-max_len=65536";
	args[ac++] = a_seed;
	args[ac++] = a_work;
	args[ac] = NULL;
	return LLVMFuzzerRunDriver(&ac, &av, LLVMFuzzerTestOneInput);
}
#endif

int
main(int argc, char **argv)
{
	const char *name = fz_name(argv[0]), *top, *secs;
	char dir[4096];
	int i, bad = 0;

	/* Our TAP goes to a copy of stdout: libFuzzer may close fd 1. */
	if ((fz_tap_fd = dup(STDOUT_FILENO)) == -1)
		fz_tap_fd = STDOUT_FILENO;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (fz_init != NULL)
		fz_init();
	secs = getenv("PAYHOOK_FUZZ_SECONDS");
#ifdef PH_FUZZING
	/* libFuzzer's -fork children: run as it asked, with its flags. */
	if (argc > 1 && argv[1][0] == '-')
		return LLVMFuzzerRunDriver(&argc, &argv,
		    LLVMFuzzerTestOneInput);
#endif
	if (getenv("PAYHOOK_FUZZ_MERGE") != NULL && argc == 1) {
#ifdef PH_FUZZING
		return fz_merge(argv[0], name);
#else
		dprintf(fz_tap_fd, "1..0 # SKIP built without "
		    "--enable-fuzzing: nothing to merge with\n");
		return 0;
#endif
	}
	if (secs != NULL && *secs != '\0' && argc == 1) {
#ifdef PH_FUZZING
		return fz_fuzz(argv[0], name, strtoul(secs, NULL, 10));
#else
		dprintf(fz_tap_fd, "1..0 # SKIP built without "
		    "--enable-fuzzing: nothing to fuzz with\n");
		return 0;
#endif
	}
	if (argc > 1) {
		for (i = 1; i < argc; i++)
			bad |= fz_replay(argv[i]);
	} else {
		if ((top = getenv("top_srcdir")) == NULL)
			top = ".";
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top,
		    name);
		bad |= fz_replay(dir);
	}
	fz_profiles_free();
	if (fz_fini != NULL)
		fz_fini();
	dprintf(fz_tap_fd, "1..%u\n", fz_points);
	return bad;
}
