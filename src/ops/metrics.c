/*
 * Shared metrics.  Layout of the file: a header, then fixed slots; a
 * series is claimed once (under flock, so that two processes never claim
 * the same series twice) and then only ever changed atomically.  A process
 * that dies holding the flock releases it with its descriptor.
 *
 * A counter or gauge is one slot.  A histogram is a run of slots claimed
 * together: the first holds the series' name and its first bucket, then
 * one slot per further bucket, the bucket above the last bound, and the
 * sum in millionths of the unit.  Buckets are counted apart and added up
 * when rendered, so _count is always the +Inf bucket.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/shmfile.h"
#include "ops/metrics.h"

/* A new layout gets a new magic: a file of another is started afresh. */
#define METRICS_MAGIC	"phmetr2"
#define METRICS_SLOTS	8192
#define METRICS_KEY	148
#define METRICS_CACHE	1024		/* per-process series -> slot */
#define METRICS_SUM_UNIT 1e6		/* a histogram's sum, in millionths */

enum {
	METRICS_FREE,
	METRICS_SERIES,			/* the first slot of a series */
	METRICS_MORE,			/* the further slots of a histogram */
};

struct metrics_slot {
	uint64_t value;
	uint32_t used;			/* set last, with release order */
	char key[METRICS_KEY];		/* "name{k=\"v\",...}" */
};

struct metrics_file {
	char magic[8];
	uint32_t nslots;
	uint32_t pad;
	struct metrics_slot slots[METRICS_SLOTS];
};

static struct metrics_file *metrics_map;
static volatile sig_atomic_t metrics_lost;	/* a write to it was refused */
static struct sigaction metrics_old_bus;	/* SIGBUS's action before ours */
static int metrics_fd = -1;
static int metrics_errno;	/* why the file could not be opened last */
static char metrics_path[4096];		/* the file mapped, for metrics_follow */
static int64_t metrics_looked;		/* when metrics_follow last looked */
static struct {
	uint32_t hash;
	int slot;
} metrics_cache[METRICS_CACHE];

/* A file of another layout starts empty (shmfile_map's setup). */
static int
metrics_setup(void *p)
{
	struct metrics_file *m = p;

	if (memcmp(m->magic, METRICS_MAGIC, 8) != 0 ||
	    m->nslots != METRICS_SLOTS) {
		memset(m, 0, sizeof(*m));
		memcpy(m->magic, METRICS_MAGIC, 8);
		m->nslots = METRICS_SLOTS;
	}
	return 0;
}

/*
 * A write through the mapping that the file refuses (its file system
 * remounted read-only, the file made immutable) raises SIGBUS.  Counting
 * is not worth a process: the pages become private ones, written in vain,
 * and metrics_follow turns the metrics off and opens the file again.  A
 * SIGBUS anywhere else is given back to the action before ours, which
 * the faulting instruction meets when it runs again.
 */
static void
metrics_on_bus(int sig, siginfo_t *si, void *uc)
{
	char *base = (char *)metrics_map, *at = si->si_addr;

	(void)sig;
	(void)uc;
	if (base != NULL && at >= base && at < base + sizeof(*metrics_map) &&
	    mmap(base, sizeof(*metrics_map), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
		metrics_lost = 1;
		return;
	}
	sigaction(SIGBUS, &metrics_old_bus, NULL);
}

static void
metrics_guard(void)
{
	static int installed;
	struct sigaction sa;

	if (installed)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = metrics_on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &metrics_old_bus) == 0)
		installed = 1;
}

int
metrics_file_of(const char *db_path, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s" METRICS_FILE_SUFFIX, db_path);

	return n >= 0 && (size_t)n < cap ? 0 : -1;
}

int
metrics_open_beside(const char *db_path)
{
	char path[4096];

	if (metrics_file_of(db_path, path, sizeof(path)) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return metrics_open(path);
}

int
metrics_open(const char *path)
{
	if (path != metrics_path)
		ph_strlcpy(metrics_path, path, sizeof(metrics_path));
	metrics_map = shmfile_map(path, sizeof(struct metrics_file),
	    metrics_setup, &metrics_fd);
	if (metrics_map == NULL) {
		metrics_errno = errno;
		log_warn("metrics file %s: %s; metrics are off", path,
		    strerror(errno));
		return -1;
	}
	metrics_guard();
	return 0;
}

void
metrics_close(void)
{
	if (metrics_map != NULL)
		munmap(metrics_map, sizeof(*metrics_map));
	if (metrics_fd != -1)
		close(metrics_fd);
	metrics_map = NULL;
	metrics_lost = 0;
	metrics_fd = -1;
	memset(metrics_cache, 0, sizeof(metrics_cache));
}

void
metrics_follow(int64_t now)
{
	struct stat st;

	if (metrics_path[0] == '\0' || now == metrics_looked)
		return;
	metrics_looked = now;
	if (metrics_lost) {
		log_warn("metrics file %s cannot be written; metrics are off "
		    "until it can", metrics_path);
		metrics_close();
	}
	/* Off since it could not be opened: tried again, once a second,
	 * so that a file made writable again counts without a restart. */
	if (metrics_map == NULL) {
		if ((metrics_map = shmfile_map(metrics_path,
		    sizeof(struct metrics_file), metrics_setup,
		    &metrics_fd)) == NULL)
			metrics_errno = errno;
		else {
			metrics_guard();
			log_info("metrics file %s: writable again; metrics are "
			    "on", metrics_path);
		}
		return;
	}
	if (fstat(metrics_fd, &st) == -1 || st.st_nlink > 0)
		return;
	log_info("metrics file %s was removed: counting again from zero in a "
	    "new one", metrics_path);
	metrics_close();
	metrics_open(metrics_path);
}

int
metrics_active(void)
{
	return metrics_map != NULL && !metrics_lost;
}

const char *
metrics_off_reason(void)
{
	if (metrics_lost)
		return "a write to it was refused";
	return metrics_errno != 0 ? strerror(metrics_errno) : "not opened";
}

/* FNV-1a, never 0 (0 marks an empty cache entry). */
static uint32_t
metrics_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h != 0 ? h : 1;
}

/* Builds name{k="v",...} from "k=v&k=v"; -1 when it does not fit. */
static int
metrics_key(char *out, size_t cap, const char *name, const char *labels)
{
	size_t o;
	const char *p;

	if ((o = ph_strlcpy(out, name, cap)) >= cap)
		return -1;
	if (labels == NULL || *labels == '\0')
		return 0;
	if (o + 1 >= cap)
		return -1;
	out[o++] = '{';
	for (p = labels; *p != '\0'; p++) {
		const char *amp = strchr(p, '&'), *eq = strchr(p, '=');
		const char *end = amp != NULL ? amp : p + strlen(p);

		if (eq == NULL || eq > end)
			return -1;
		if (o + (size_t)(eq - p) + 3 >= cap)
			return -1;
		memcpy(out + o, p, (size_t)(eq - p));
		o += (size_t)(eq - p);
		out[o++] = '=';
		out[o++] = '"';
		if (metrics_label_escape(eq + 1, (size_t)(end - eq - 1), out, &o,
		    cap) != 0)
			return -1;
		if (o + 2 >= cap)
			return -1;
		out[o++] = '"';
		out[o++] = *end == '&' ? ',' : '}';
		if (*end == '\0')
			break;
		p = end;
	}
	out[o] = '\0';
	return 0;
}

int
metrics_label_escape(const char *v, size_t len, char *out, size_t *o,
    size_t cap)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char c = v[i];

		if (*o + 3 >= cap) {
			out[*o] = '\0';
			return -1;
		}
		if (c == '"' || c == '\\') {
			out[(*o)++] = '\\';
			out[(*o)++] = c;
		} else if (c == '\n') {
			out[(*o)++] = '\\';
			out[(*o)++] = 'n';
		} else if ((unsigned char)c >= 0x20)
			out[(*o)++] = c;
	}
	out[*o] = '\0';
	return 0;
}

/* The slot of key, or -(first free slot) - 1. */
static int
metrics_find(const char *key)
{
	struct metrics_slot *s;
	uint32_t i;

	for (i = 0; i < METRICS_SLOTS; i++) {
		s = &metrics_map->slots[i];
		switch (__atomic_load_n(&s->used, __ATOMIC_ACQUIRE)) {
		case METRICS_FREE:
			return -(int)i - 1;
		case METRICS_SERIES:
			if (strncmp(s->key, key, METRICS_KEY) == 0)
				return (int)i;
			break;
		}
	}
	return -(int)METRICS_SLOTS - 1;
}

/* How many slots a series of family f takes. */
static size_t
metrics_width(const struct metrics_family *f)
{
	return f->type == METRICS_HISTOGRAM ? f->nbounds + 2 : 1;
}

/* The first slot of the series key (width slots), claimed if need be; -1
 * when the file is full. */
static int
metrics_slot(const char *key, size_t width)
{
	uint32_t h = metrics_hash(key), c = h % METRICS_CACHE;
	size_t j;
	int i;

	if (metrics_cache[c].hash == h && strncmp(metrics_map->slots[
	    metrics_cache[c].slot].key, key, METRICS_KEY) == 0)
		return metrics_cache[c].slot;
	if ((i = metrics_find(key)) < 0) {
		if (flock(metrics_fd, LOCK_EX) == -1)
			return -1;
		/* Another process may have claimed it meanwhile. */
		if ((i = metrics_find(key)) < 0) {
			i = -i - 1;
			if ((size_t)i + width > METRICS_SLOTS) {
				flock(metrics_fd, LOCK_UN);
				return -1;
			}
			/* The run's further slots before its first: a reader
			 * stops at the first free slot, so it never sees a
			 * series without them. */
			for (j = 1; j < width; j++)
				__atomic_store_n(&metrics_map->slots[i + j].used,
				    METRICS_MORE, __ATOMIC_RELEASE);
			ph_strlcpy(metrics_map->slots[i].key, key, METRICS_KEY);
			__atomic_store_n(&metrics_map->slots[i].used,
			    METRICS_SERIES, __ATOMIC_RELEASE);
		}
		flock(metrics_fd, LOCK_UN);
	}
	metrics_cache[c].hash = h;
	metrics_cache[c].slot = i;
	return i;
}

/* The first slot of name{labels}, claimed if need be and want is its
 * family's type; -1 otherwise. */
static int
metrics_series(const char *name, const char *labels, enum metrics_type want,
    const struct metrics_family **fp)
{
	const struct metrics_family *f;
	char key[METRICS_KEY];

	if (metrics_map == NULL || (f = metrics_family(name)) == NULL ||
	    f->type != want || (f->flags & METRICS_F_SCRAPE) ||
	    metrics_key(key, sizeof(key), name, labels) == -1)
		return -1;
	if (fp != NULL)
		*fp = f;
	return metrics_slot(key, metrics_width(f));
}

void
metrics_add(const char *name, const char *labels, uint64_t n)
{
	int i;

	if ((i = metrics_series(name, labels, METRICS_COUNTER, NULL)) >= 0)
		__atomic_fetch_add(&metrics_map->slots[i].value, n,
		    __ATOMIC_RELAXED);
}

void
metrics_set(const char *name, const char *labels, uint64_t v)
{
	int i;

	/* Written only when it changes: every commit clears one. */
	if ((i = metrics_series(name, labels, METRICS_GAUGE, NULL)) >= 0 &&
	    __atomic_load_n(&metrics_map->slots[i].value,
	    __ATOMIC_RELAXED) != v)
		__atomic_store_n(&metrics_map->slots[i].value, v,
		    __ATOMIC_RELAXED);
}

int
metrics_set_first(const char *name, const char *labels, uint64_t v)
{
	uint64_t zero = 0;
	int i;

	if ((i = metrics_series(name, labels, METRICS_GAUGE, NULL)) < 0)
		return 0;
	return __atomic_compare_exchange_n(&metrics_map->slots[i].value,
	    &zero, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

void
metrics_observe(const char *name, const char *labels, double v)
{
	const struct metrics_family *f;
	size_t b;
	int i;

	if (!(v >= 0) || (i = metrics_series(name, labels,
	    METRICS_HISTOGRAM, &f)) < 0)
		return;
	for (b = 0; b < f->nbounds && v > f->bounds[b]; b++)
		continue;
	__atomic_fetch_add(&metrics_map->slots[i + b].value, 1,
	    __ATOMIC_RELAXED);
	__atomic_fetch_add(&metrics_map->slots[i + f->nbounds + 1].value,
	    (uint64_t)(v * METRICS_SUM_UNIT + 0.5), __ATOMIC_RELAXED);
}

/* The first slot of a series already claimed, or -1. */
static int
metrics_lookup(const char *name, const char *labels,
    const struct metrics_family **fp)
{
	char key[METRICS_KEY];
	int i;

	if (metrics_map == NULL || (*fp = metrics_family(name)) == NULL ||
	    metrics_key(key, sizeof(key), name, labels) == -1 ||
	    (i = metrics_find(key)) < 0)
		return -1;
	return i;
}

uint64_t
metrics_get(const char *name, const char *labels)
{
	const struct metrics_family *f;
	int i;

	if ((i = metrics_lookup(name, labels, &f)) < 0 ||
	    f->type == METRICS_HISTOGRAM)
		return 0;
	return __atomic_load_n(&metrics_map->slots[i].value,
	    __ATOMIC_RELAXED);
}

void
metrics_histogram_get(const char *name, const char *labels,
    uint64_t *count, double *sum)
{
	const struct metrics_family *f;
	size_t b;
	int i;

	*count = 0;
	*sum = 0;
	if ((i = metrics_lookup(name, labels, &f)) < 0 ||
	    f->type != METRICS_HISTOGRAM)
		return;
	for (b = 0; b <= f->nbounds; b++)
		*count += __atomic_load_n(&metrics_map->slots[i + b].value,
		    __ATOMIC_RELAXED);
	*sum = (double)__atomic_load_n(&metrics_map->slots[i + f->nbounds +
	    1].value, __ATOMIC_RELAXED) / METRICS_SUM_UNIT;
}

static const char *const metrics_type_names[] = {
	[METRICS_COUNTER] = "counter",
	[METRICS_GAUGE] = "gauge",
	[METRICS_HISTOGRAM] = "histogram",
};

static void
metrics_head(struct ph_buf *out, const struct metrics_family *f)
{
	ph_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
	    f->name, metrics_type_names[f->type]);
}

void
metrics_describe(struct ph_buf *out, const char *name)
{
	const struct metrics_family *f = metrics_family(name);

	if (f != NULL)
		metrics_head(out, f);
}

/* The family name of a key: its length. */
static size_t
metrics_name_len(const char *key)
{
	return strcspn(key, "{");
}

/* Keys in order of family, then of labels: "a_b" never comes between the
 * series of "a". */
static int
metrics_cmp(const void *a, const void *b)
{
	const char *ka = metrics_map->slots[*(const int *)a].key;
	const char *kb = metrics_map->slots[*(const int *)b].key;
	size_t la = metrics_name_len(ka), lb = metrics_name_len(kb);
	int c = strncmp(ka, kb, la < lb ? la : lb);

	if (c != 0)
		return c;
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(ka + la, kb + lb);
}

/* A histogram's series: cumulative buckets with le, the sum, the count. */
static void
metrics_render_histogram(struct ph_buf *out, const struct metrics_family *f,
    int i)
{
	const char *key = metrics_map->slots[i].key;
	const char *labels = key + metrics_name_len(key);
	char inner[METRICS_KEY];
	uint64_t cum = 0, sum;
	size_t b;

	/* The labels without their braces, and a comma to add le after. */
	if (*labels == '{')
		snprintf(inner, sizeof(inner), "%.*s,", (int)strlen(labels) - 2,
		    labels + 1);
	else
		inner[0] = '\0';
	for (b = 0; b <= f->nbounds; b++) {
		cum += __atomic_load_n(&metrics_map->slots[i + b].value,
		    __ATOMIC_RELAXED);
		if (b < f->nbounds)
			ph_buf_printf(out, "%s_bucket{%sle=\"%.10g\"} %llu\n",
			    f->name, inner, f->bounds[b],
			    (unsigned long long)cum);
		else
			ph_buf_printf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n",
			    f->name, inner, (unsigned long long)cum);
	}
	sum = __atomic_load_n(&metrics_map->slots[i + f->nbounds + 1].value,
	    __ATOMIC_RELAXED);
	ph_buf_printf(out, "%s_sum%s %.6f\n%s_count%s %llu\n", f->name, labels,
	    (double)sum / METRICS_SUM_UNIT, f->name, labels,
	    (unsigned long long)cum);
}

void
metrics_each(const char *prefix, void (*fn)(const char *key, uint64_t v,
    void *arg), void *arg)
{
	size_t plen = strlen(prefix), i;

	if (metrics_map == NULL)
		return;
	for (i = 0; i < METRICS_SLOTS; i++) {
		struct metrics_slot *s = &metrics_map->slots[i];
		uint32_t used = __atomic_load_n(&s->used, __ATOMIC_ACQUIRE);

		if (used == METRICS_FREE)
			break;
		if (used == METRICS_SERIES && memchr(s->key, '\0',
		    METRICS_KEY) != NULL && strncmp(s->key, prefix, plen) == 0)
			fn(s->key, __atomic_load_n(&s->value,
			    __ATOMIC_RELAXED), arg);
	}
}

int
metrics_render(struct ph_buf *out)
{
	const struct metrics_family *f = NULL;
	char seen[256];
	int *idx;
	size_t n = 0, i, k;

	if (metrics_map == NULL)
		return 0;
	if ((idx = calloc(METRICS_SLOTS, sizeof(*idx))) == NULL)
		return -1;
	for (i = 0; i < METRICS_SLOTS; i++) {
		struct metrics_slot *s = &metrics_map->slots[i];
		uint32_t used = __atomic_load_n(&s->used, __ATOMIC_ACQUIRE);

		if (used == METRICS_FREE)
			break;
		/* A key is written once before its slot is marked used;
		 * the last byte stays NUL whatever another layout left. */
		if (used == METRICS_SERIES &&
		    memchr(s->key, '\0', METRICS_KEY) != NULL)
			idx[n++] = (int)i;
	}
	qsort(idx, n, sizeof(idx[0]), metrics_cmp);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < n; i++) {
		const char *key = metrics_map->slots[idx[i]].key;
		size_t len = metrics_name_len(key);

		if (f == NULL || strncmp(key, f->name, len) != 0 ||
		    f->name[len] != '\0') {
			char name[METRICS_KEY];

			snprintf(name, sizeof(name), "%.*s", (int)len, key);
			/* A family this build does not describe, from
			 * another version sharing the file: left out. */
			if ((f = metrics_family(name)) != NULL &&
			    (f->flags & METRICS_F_SCRAPE))
				f = NULL;
			if (f == NULL)
				continue;
			k = (size_t)(f - metrics_families);
			if (k < sizeof(seen))
				seen[k] = 1;
			metrics_head(out, f);
		}
		if (f->type == METRICS_HISTOGRAM) {
			/* Its further slots must be this run's. */
			if ((size_t)idx[i] + metrics_width(f) <= METRICS_SLOTS)
				metrics_render_histogram(out, f, idx[i]);
		} else
			ph_buf_printf(out, "%s %llu\n", key, (unsigned long
			    long)__atomic_load_n(&metrics_map->slots[idx[i]].
			    value, __ATOMIC_RELAXED));
	}
	free(idx);
	/* Every family is described, one without a series yet too (its
	 * labels are not known before its first sample): a dashboard or an
	 * alert can name it from the first scrape. */
	for (k = 0; k < metrics_nfamilies && k < sizeof(seen); k++) {
		f = &metrics_families[k];
		if (seen[k] || (f->flags & METRICS_F_SCRAPE))
			continue;
		metrics_head(out, f);
		if (f->flags & METRICS_F_ZERO)
			ph_buf_printf(out, "%s 0\n", f->name);
	}
	return out->err;
}
