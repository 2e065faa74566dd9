/*
 * Shared counters.  Layout of the file: a header, then fixed slots; a
 * slot is claimed once (under flock, so that two processes never claim
 * the same series twice) and then only ever incremented atomically.  A
 * process that dies holding the flock releases it with its descriptor.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/log.h"
#include "ops/metrics.h"

#define METRICS_MAGIC	"phmetr1"
#define METRICS_SLOTS	4096
#define METRICS_KEY	116
#define METRICS_CACHE	1024		/* per-process series -> slot */

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
static int metrics_fd = -1;
static struct {
	uint32_t hash;
	int slot;
} metrics_cache[METRICS_CACHE];

int
metrics_open(const char *path)
{
	struct stat st;
	void *p;
	int fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("metrics file %s: %s; metrics are off", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX) == -1 || fstat(fd, &st) == -1)
		goto fail;
	if ((size_t)st.st_size < sizeof(struct metrics_file) &&
	    ftruncate(fd, sizeof(struct metrics_file)) == -1)
		goto fail;
	p = mmap(NULL, sizeof(struct metrics_file), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	metrics_map = p;
	if (memcmp(metrics_map->magic, METRICS_MAGIC, 8) != 0) {
		memset(metrics_map, 0, sizeof(*metrics_map));
		memcpy(metrics_map->magic, METRICS_MAGIC, 8);
		metrics_map->nslots = METRICS_SLOTS;
	}
	flock(fd, LOCK_UN);
	metrics_fd = fd;
	return 0;
fail:
	log_warn("metrics file %s: %s; metrics are off", path,
	    strerror(errno));
	close(fd);
	return -1;
}

void
metrics_close(void)
{
	if (metrics_map != NULL)
		munmap(metrics_map, sizeof(*metrics_map));
	if (metrics_fd != -1)
		close(metrics_fd);
	metrics_map = NULL;
	metrics_fd = -1;
	memset(metrics_cache, 0, sizeof(metrics_cache));
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
	int n;

	if ((n = snprintf(out, cap, "%s", name)) < 0 || (size_t)n >= cap)
		return -1;
	o = (size_t)n;
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
		for (p = eq + 1; p < end; p++) {
			char c = *p;

			if (o + 3 >= cap)
				return -1;
			if (c == '"' || c == '\\') {
				out[o++] = '\\';
				out[o++] = c;
			} else if (c == '\n') {
				out[o++] = '\\';
				out[o++] = 'n';
			} else if ((unsigned char)c >= 0x20)
				out[o++] = c;
		}
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

static int
metrics_find(const char *key)
{
	struct metrics_slot *s;
	uint32_t i;

	for (i = 0; i < METRICS_SLOTS; i++) {
		s = &metrics_map->slots[i];
		if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE))
			return -(int)i - 1;	/* first free slot */
		if (strcmp(s->key, key) == 0)
			return (int)i;
	}
	return -(int)METRICS_SLOTS - 1;
}

static int
metrics_slot(const char *key)
{
	uint32_t h = metrics_hash(key), c = h % METRICS_CACHE;
	int i;

	if (metrics_cache[c].hash == h &&
	    strcmp(metrics_map->slots[metrics_cache[c].slot].key, key) == 0)
		return metrics_cache[c].slot;
	if ((i = metrics_find(key)) < 0) {
		if (flock(metrics_fd, LOCK_EX) == -1)
			return -1;
		/* Another process may have claimed it meanwhile. */
		if ((i = metrics_find(key)) < 0) {
			i = -i - 1;
			if (i >= METRICS_SLOTS) {
				flock(metrics_fd, LOCK_UN);
				return -1;
			}
			snprintf(metrics_map->slots[i].key, METRICS_KEY, "%s",
			    key);
			__atomic_store_n(&metrics_map->slots[i].used, 1,
			    __ATOMIC_RELEASE);
		}
		flock(metrics_fd, LOCK_UN);
	}
	metrics_cache[c].hash = h;
	metrics_cache[c].slot = i;
	return i;
}

void
metrics_add(const char *name, const char *labels, uint64_t n)
{
	char key[METRICS_KEY];
	int i;

	if (metrics_map == NULL ||
	    metrics_key(key, sizeof(key), name, labels) == -1 ||
	    (i = metrics_slot(key)) < 0)
		return;
	__atomic_fetch_add(&metrics_map->slots[i].value, n, __ATOMIC_RELAXED);
}

uint64_t
metrics_get(const char *name, const char *labels)
{
	char key[METRICS_KEY];
	int i;

	if (metrics_map == NULL ||
	    metrics_key(key, sizeof(key), name, labels) == -1 ||
	    (i = metrics_find(key)) < 0)
		return 0;
	return __atomic_load_n(&metrics_map->slots[i].value,
	    __ATOMIC_RELAXED);
}

static int
metrics_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
metrics_render(struct ph_buf *out)
{
	const char *keys[METRICS_SLOTS];
	uint64_t vals[METRICS_SLOTS];
	char family[METRICS_KEY], last[METRICS_KEY] = "";
	size_t n = 0, i;

	if (metrics_map == NULL)
		return 0;
	for (i = 0; i < METRICS_SLOTS; i++) {
		struct metrics_slot *s = &metrics_map->slots[i];

		if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE))
			break;
		keys[n++] = s->key;
	}
	qsort(keys, n, sizeof(keys[0]), metrics_cmp);
	for (i = 0; i < n; i++) {
		struct metrics_slot *s = (struct metrics_slot *)(void *)
		    (keys[i] - offsetof(struct metrics_slot, key));

		vals[i] = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
	}
	for (i = 0; i < n; i++) {
		size_t fl = strcspn(keys[i], "{");

		snprintf(family, sizeof(family), "%.*s", (int)fl, keys[i]);
		if (strcmp(family, last) != 0) {
			ph_buf_printf(out, "# TYPE %s counter\n", family);
			snprintf(last, sizeof(last), "%s", family);
		}
		ph_buf_printf(out, "%s %llu\n", keys[i],
		    (unsigned long long)vals[i]);
	}
	return out->err;
}
