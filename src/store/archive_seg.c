/*
 * The notification archive's segment files, which the write side
 * (archive.c) and the read side (archive_read.c) both work on: the
 * process's archive, segment names and ids, the list of segments, the
 * classes' shares and what each holds, eviction.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "store/archive.h"
#include "store/archive_int.h"

struct archive_state archive;

static const char *const archive_class_names[ARCHIVE__MAX] = {
	"verified", "ours", "unverified",
};

const char *
archive_class_name(enum archive_class c)
{
	return c < ARCHIVE__MAX ? archive_class_names[c] : "?";
}

/* FNV-1a: where a key lands among the slots, and records' checksums. */
uint32_t
archive_fnv(const void *p, size_t n, uint32_t h)
{
	const unsigned char *b = p;
	size_t i = 0;

	/* four bytes a turn: the same hash, half the loop's instructions
	 * (every notification's record is summed) */
	for (; i + 4 <= n; i += 4) {
		h = (h ^ b[i]) * 16777619u;
		h = (h ^ b[i + 1]) * 16777619u;
		h = (h ^ b[i + 2]) * 16777619u;
		h = (h ^ b[i + 3]) * 16777619u;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

void
archive_segment_name(const struct archive_segid *sg, char *out, size_t cap)
{
	static const char letters[ARCHIVE__MAX] = { 'v', 'o', 'u' };
	time_t t = (time_t)(sg->day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d%02d%02d-%c-%04u", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, letters[sg->class], sg->seq);
}

uint64_t
archive_segment_max(enum archive_class c)
{
	uint64_t n = archive_share(c) / 16;

	if (n < 65536)
		n = 65536;
	/* Half the offsets an id holds: a segment may run a few records past
	 * its maximum (archive_segment), never past what an id can say. */
	return n < ARCHIVE_OFFSET_MAX / 2 ? n : ARCHIVE_OFFSET_MAX / 2;
}

uint64_t
archive_share(enum archive_class c)
{
	uint64_t un = (uint64_t)archive.lim.unverified_mb << 20;
	uint64_t all = (uint64_t)archive.lim.max_mb << 20;

	if (c != ARCHIVE_VERIFIED)
		return un;
	return all > 2 * un ? all - 2 * un : all / 2;
}

void
archive_be(void *p, uint64_t v, size_t n)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[n - 1 - i] = (unsigned char)(v >> (8 * i));
}

void
archive_id_segment(uint64_t id, struct archive_segid *sg)
{
	sg->day = (int64_t)(id >> (ARCHIVE_OFFSET_BITS + ARCHIVE_SEQ_BITS +
	    2));
	sg->class = (enum archive_class)((id >> (ARCHIVE_OFFSET_BITS +
	    ARCHIVE_SEQ_BITS)) & 3);
	sg->seq = (unsigned)((id >> ARCHIVE_OFFSET_BITS) & ARCHIVE_SEQ_MAX);
}

/* Parses "YYYYMMDD-c-NNNN": 0, or -1. */
int
archive_parse_name(const char *name, struct archive_segid *sg)
{
	static const char letters[] = "vou";
	int y, m, d, n = 0;
	unsigned seq;
	char l, *p;
	struct tm tm;

	if (sscanf(name, "%4d%2d%2d-%c-%4u%n", &y, &m, &d, &l, &seq,
	    &n) != 5 || name[n] != '\0' || (p = strchr(letters, l)) == NULL ||
	    seq > ARCHIVE_SEQ_MAX)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	sg->day = (int64_t)timegm(&tm) / 86400;
	sg->class = (enum archive_class)(p - letters);
	sg->seq = seq;
	return 0;
}

/* In id order: day, class, number. */
static int
archive_segcmp(const void *a, const void *b)
{
	uint64_t x = archive_id_make(&((const struct archive_segfile *)a)->id,
	    0);
	uint64_t y = archive_id_make(&((const struct archive_segfile *)b)->id,
	    0);

	return x < y ? -1 : x > y;
}

/* Every segment, in id order (caller frees *out). */
int
archive_segments(struct archive_segfile **out, size_t *n)
{
	char path[ARCHIVE_PATH_MAX];
	struct archive_segfile *v = NULL, *nv;
	struct dirent *de;
	struct stat st;
	size_t cap = 0;
	DIR *d;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/seg", archive.dir);
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? PH_OK : PH_E_IO;
	while ((de = readdir(d)) != NULL) {
		struct archive_segfile f;

		if (strlen(de->d_name) >= sizeof(f.name) ||
		    archive_parse_name(de->d_name, &f.id) != 0 ||
		    fstatat(dirfd(d), de->d_name, &st, 0) == -1)
			continue;
		f.size = st.st_size;
		memcpy(f.name, de->d_name, strlen(de->d_name) + 1);
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				return PH_E_NOMEM;
			}
			v = nv;
		}
		v[(*n)++] = f;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), archive_segcmp);
	*out = v;
	return PH_OK;
}

void
archive_usage(void)
{
	struct archive_segfile *segs;
	uint64_t used[ARCHIVE__MAX];
	size_t i, n;

	if (archive.budget == NULL ||
	    archive_segments(&segs, &n) != PH_OK)
		return;
	memset(used, 0, sizeof(used));
	for (i = 0; i < n; i++)
		used[segs[i].id.class] += (uint64_t)segs[i].size;
	free(segs);
	for (i = 0; i < ARCHIVE__MAX; i++)
		__atomic_store_n(&archive.budget->used[i], used[i],
		    __ATOMIC_RELAXED);
}

unsigned
archive_last_seq(int64_t day, enum archive_class c)
{
	struct archive_segfile *segs;
	unsigned last = 0;
	size_t i, n;

	if (archive_segments(&segs, &n) != PH_OK)
		return 0;
	for (i = 0; i < n; i++)
		if (segs[i].id.day == day && segs[i].id.class == c &&
		    segs[i].id.seq > last)
			last = segs[i].id.seq;
	free(segs);
	return last;
}

void
archive_removing(void)
{
	if (archive.budget != NULL)
		__atomic_add_fetch(&archive.budget->removals, 1,
		    __ATOMIC_SEQ_CST);
}

int
archive_evict_oldest(enum archive_class c, const struct archive_segid *keep)
{
	struct archive_segfile *segs;
	char path[ARCHIVE_PATH_MAX];
	size_t i, n, last = SIZE_MAX;
	int rc = -1;

	if (archive_segments(&segs, &n) != PH_OK)
		return -1;
	/* The class's newest segment stays, full or not: its number is the
	 * day's last (archive_last_seq), which the next segment goes on
	 * from, so an id is never given twice. */
	for (i = 0; i < n; i++)
		if (segs[i].id.class == c)
			last = i;
	for (i = 0; i < n; i++) {
		if (segs[i].id.class != c || i == last ||
		    (segs[i].id.day >= keep->day &&
		    (uint64_t)segs[i].size < archive_segment_max(c)))
			continue;
		snprintf(path, sizeof(path), "%s/seg/%s", archive.dir,
		    segs[i].name);
		archive_removing();
		if (unlink(path) == 0) {
			__atomic_sub_fetch(&archive.budget->used[c],
			    (uint64_t)segs[i].size, __ATOMIC_RELAXED);
			rc = 0;
		}
		break;
	}
	free(segs);
	return rc;
}
