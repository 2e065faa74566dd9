/*
 * The notification archive's write side: records appended to segment
 * files, the classes' budgets, and hints.  archive_seg.c keeps the segment
 * files both sides work on; archive_read.c reads them back.
 *
 * <db_path>-archive/
 *	seg/YYYYMMDD-c	one segment a day (UTC) and class c (v, o, u):
 *			records appended with one write(2) each, O_APPEND,
 *			so that processes appending at once never mix
 *	budget		per-minute counters shared by every process (mmap)
 *	hints/		one empty file per order a refused notification named
 *
 * A record's id is its place: the day, the class and its offset in that
 * day's segment (archive_int.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/metrics.h"
#include "ops/shmfile.h"
#include "store/archive.h"
#include "store/archive_int.h"

/* ---- Budgets: counters a minute, shared by every process ----------------- */

/*
 * A slot holds the minute it counts for and its count, in one 64-bit word
 * changed by compare-and-swap: a new minute starts the count again, and
 * no process ever waits for another.
 */
#define ARCHIVE_SLOT_MINUTE(v)	((int64_t)((v) >> 24))
#define ARCHIVE_SLOT_COUNT(v)	((uint32_t)((v) & 0xffffffu))

/* Takes one from slot if this minute's count is below limit: 1, else 0. */
static int
archive_take(uint64_t *slot, int64_t minute, unsigned long limit)
{
	uint64_t old, want;

	old = __atomic_load_n(slot, __ATOMIC_RELAXED);
	do {
		uint32_t n = ARCHIVE_SLOT_MINUTE(old) == minute ?
		    ARCHIVE_SLOT_COUNT(old) : 0;

		if (n >= limit || n >= 0xffffffu)
			return 0;
		want = (uint64_t)minute << 24 | (n + 1);
	} while (!__atomic_compare_exchange_n(slot, &old, want, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return 1;
}

static uint64_t *
archive_slot(uint64_t *slots, const char *key)
{
	return &slots[archive_fnv(key, strlen(key), ARCHIVE_FNV_SEED) %
	    ARCHIVE_SLOTS];
}

/* May a record of class c from source (or profile) be kept this minute? */
static int
archive_admit(enum archive_class c, const char *source, const char *profile,
    int64_t now)
{
	struct archive_budget *b = archive.budget;
	int64_t minute = now / 60;
	char key[64 + 1 + 64];

	if (c == ARCHIVE_VERIFIED)
		return 1;
	if (b == NULL)
		return 0;
	/* Those naming a pending order by profile and client address: a
	 * flood from one address naming orders it opened itself must not
	 * keep the provider's refused-but-genuine ones (a key mix-up) out. */
	if (c == ARCHIVE_OURS) {
		snprintf(key, sizeof(key), "%s\n%s", profile, source);
		return archive_take(archive_slot(b->per_profile, key),
		    minute, archive.lim.per_source) &&
		    archive_take(&b->total[c], minute,
		    archive.lim.unverified_per_minute);
	}
	return archive_take(archive_slot(b->per_source, source), minute,
	    archive.lim.per_source) && archive_take(&b->total[c], minute,
	    archive.lim.unverified_per_minute);
}

/* The budget file holds counters only: any contents are its own. */
static int
archive_budget_setup(void *p)
{
	(void)p;
	return 0;
}

static int
archive_budget_open(void)
{
	char path[ARCHIVE_PATH_MAX];

	snprintf(path, sizeof(path), "%s/budget", archive.dir);
	archive.budget = shmfile_map(path, sizeof(struct archive_budget),
	    archive_budget_setup, NULL);
	return archive.budget != NULL ? 0 : -1;
}

/* A record of class c not kept: counted for operators. */
static void
archive_dropped(enum archive_class c)
{
	char labels[32];

	__atomic_add_fetch(&archive.budget->dropped[c], 1, __ATOMIC_RELAXED);
	snprintf(labels, sizeof(labels), "class=%s", archive_class_name(c));
	metrics_add("payhook_archive_dropped_total", labels, 1);
}

/* ---- Segments ------------------------------------------------------------- */

/* Closes the process's open segment of a class. */
static void
archive_seg_drop(struct archive_seg *sg)
{
	close(sg->fd);
	sg->fd = -1;
}

/*
 * Whether sg's file may have been deleted since sg->removals (a segment
 * was, somewhere): then 1 when it was (the file has no name any more),
 * else sg->removals catches up.  One load when nothing was deleted.
 */
static int
archive_seg_deleted(struct archive_seg *sg)
{
	uint64_t now = __atomic_load_n(&archive.budget->removals,
	    __ATOMIC_SEQ_CST);
	struct stat st;

	if (now == sg->removals)
		return 0;
	if (fstat(sg->fd, &st) == 0 && st.st_nlink == 0)
		return 1;
	sg->removals = now;
	return 0;
}

/*
 * The segment a record of class c goes to today, opened for appending:
 * this process's, unless a new day began or the segment is full, when it
 * moves to the day's last (another process may have begun it) or the one
 * after.  *size is its size as this process last saw it: at open, or where
 * its own last record ended.  Other processes' records since are not
 * counted, which saves an fstat(2) a notification: a segment may end a
 * few records past its maximum, never near ARCHIVE_OFFSET_MAX
 * (archive_segment_max stays at half of it).
 */
static int
archive_segment(enum archive_class c, int64_t day, uint64_t *size)
{
	char name[40], path[ARCHIVE_PATH_MAX];
	struct archive_seg *sg = &archive.seg[c];
	struct stat st;
	unsigned seq;

	/* Deleted under this process (another evicted or pruned it)? */
	if (sg->fd != -1 && archive_seg_deleted(sg))
		archive_seg_drop(sg);
	if (sg->fd != -1 && sg->id.day == day &&
	    (*size = sg->end) < archive_segment_max(c))
		return sg->fd;
	if (sg->fd != -1)
		close(sg->fd);
	sg->fd = -1;
	seq = archive_last_seq(day, c);
	for (;;) {
		sg->id.day = day;
		sg->id.class = c;
		sg->id.seq = seq;
		archive_segment_name(&sg->id, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/seg/%s", archive.dir, name);
		/* Read first: a deletion after it is seen after the
		 * write (archive_put). */
		sg->removals = __atomic_load_n(&archive.budget->removals,
		    __ATOMIC_SEQ_CST);
		if ((sg->fd = open(path, O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC, 0600)) == -1)
			return -1;
		if (fstat(sg->fd, &st) == 0 && (*size = sg->end =
		    (uint64_t)st.st_size) < archive_segment_max(c))
			return sg->fd;
		close(sg->fd);
		sg->fd = -1;
		if (seq >= ARCHIVE_SEQ_MAX) {
			errno = EFBIG;
			return -1;
		}
		seq++;
	}
}

/* Appends n bytes at p: a plain copy into the room archive_encode made
 * for the whole record, an append where there is none. */
static void
archive_raw(struct ph_buf *b, const void *p, size_t n)
{
	if (b->err != PH_OK || b->cap == 0 || n >= b->cap - b->len) {
		ph_buf_append(b, p, n);
		return;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
archive_put_u16(struct ph_buf *b, const char *s)
{
	size_t n = strlen(s);
	unsigned char l[2];

	if (n > 0xffff)
		n = 0xffff;
	l[0] = (unsigned char)(n >> 8);
	l[1] = (unsigned char)n;
	archive_raw(b, l, 2);
	archive_raw(b, s, n);
}

static void
archive_put_u32(struct ph_buf *b, const void *p, size_t n)
{
	unsigned char l[4];

	l[0] = (unsigned char)(n >> 24);
	l[1] = (unsigned char)(n >> 16);
	l[2] = (unsigned char)(n >> 8);
	l[3] = (unsigned char)n;
	archive_raw(b, l, 4);
	if (p != NULL)
		archive_raw(b, p, n);
}

/*
 * When a record is written, in microseconds from the start of the second
 * at it arrived in (0 to ARCHIVE_USEC_MAX, about 16 s): with at, the
 * order in which records were written across classes (their ids grow
 * with time only within one), also for those written after their second.
 */
static uint32_t
archive_usec(int64_t at)
{
	struct timespec ts;
	int64_t d;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 || ts.tv_sec < at)
		return 0;
	if (ts.tv_sec - at > ARCHIVE_USEC_MAX / 1000000)
		return ARCHIVE_USEC_MAX;
	d = (ts.tv_sec - at) * 1000000 + ts.tv_nsec / 1000;
	return d > ARCHIVE_USEC_MAX ? ARCHIVE_USEC_MAX : (uint32_t)d;
}

/* The record's bytes: header, strings, headers, body. */
static int
archive_encode(const struct archive_rec *r, struct ph_buf *b)
{
	unsigned char d[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 8];
	const char *strs[ARCHIVE_NSTRINGS];
	unsigned char head[ARCHIVE_HEAD];
	uint32_t sum;
	size_t i, size;

	strs[0] = r->source != NULL ? r->source : "";
	strs[1] = r->profile;
	strs[2] = r->provider;
	strs[3] = r->method;
	strs[4] = r->content_type;
	strs[5] = r->verdict;
	strs[6] = r->reason;
	strs[7] = r->order_id;
	strs[8] = r->outcome;
	/* The size at most, so that the record is one allocation: a hashed
	 * header value is no longer than "sha256:" and 64 hex digits. */
	size = sizeof(head) + 4 + 4 + r->body_len;
	for (i = 0; i < ARCHIVE_NSTRINGS; i++)
		size += 2 + (strs[i] != NULL ? strlen(strs[i]) : 0);
	for (i = 0; i < r->nheaders; i++)
		size += 2 + strlen(r->headers[i].name) + 4 +
		    strlen(r->headers[i].value) + sizeof(hex);
	/* (an estimate past the buffer's bound leaves the appends to tell
	 * whether the record itself is too large) */
	if (ph_buf_reserve(b, size < b->max ? size : b->max) != PH_OK)
		return -1;
	memset(head, 0, sizeof(head));
	archive_raw(b, head, sizeof(head));
	for (i = 0; i < ARCHIVE_NSTRINGS; i++)
		archive_put_u16(b, strs[i] != NULL ? strs[i] : "");
	archive_put_u32(b, NULL, r->nheaders);
	for (i = 0; i < r->nheaders; i++) {
		const char *v = r->headers[i].value;

		/* Secrets of the caller, never of the provider's message. */
		if (strcasecmp(r->headers[i].name, "Authorization") == 0 ||
		    strcasecmp(r->headers[i].name, "Cookie") == 0) {
			ph_sha256(v, strlen(v), d);
			memcpy(hex, "sha256:", 7);
			ph_hex_lower(d, sizeof(d), hex + 7);
			v = hex;
		}
		archive_put_u16(b, r->headers[i].name);
		archive_put_u32(b, v, strlen(v));
	}
	archive_put_u32(b, r->body, r->body_len);
	if (b->err || b->len > 0xffffffffu)
		return -1;
	/* The header, now that the length is known. */
	memcpy(b->data, ARCHIVE_MAGIC, 4);
	archive_be(b->data + 4, b->len, 4);
	archive_be(b->data + 12, (uint64_t)r->at, 8);
	archive_be(b->data + 20, r->replay_of, 8);
	b->data[28] = (char)r->class;
	archive_be(b->data + ARCHIVE_USEC_AT, archive_usec(r->at), 3);
	sum = archive_fnv(b->data + 12, b->len - 12, ARCHIVE_FNV_SEED);
	archive_be(b->data + 8, sum, 4);
	return 0;
}

void
archive_rec_init(struct archive_rec *r, const struct ph_request *req,
    int64_t at, enum archive_class class, const char *profile,
    const char *provider)
{
	memset(r, 0, sizeof(*r));
	r->at = at;
	r->class = class;
	r->source = "";
	r->profile = profile;
	r->provider = provider;
	r->method = req->method;
	r->content_type = req->content_type;
	r->headers = req->headers;
	r->nheaders = req->nheaders;
	r->body = req->body;
	r->body_len = req->body_len;
	r->verdict = r->reason = r->order_id = r->outcome = "";
}

/* An append failed with err: readiness says so until one succeeds. */
static void
archive_failing(int err)
{
	uint64_t zero = 0;

	__atomic_store_n(&archive.budget->failed_errno, err,
	    __ATOMIC_RELAXED);
	__atomic_compare_exchange_n(&archive.budget->failed_since, &zero,
	    (uint64_t)time(NULL), 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

uint64_t
archive_put(const struct archive_rec *r)
{
	struct ph_buf b;
	int64_t day = r->at / 86400;
	uint64_t id = 0, size = 0;
	int fd, again = 1;
	ssize_t w;
	off_t end;

	if (archive.dir[0] == '\0' || archive.budget == NULL ||
	    r->class >= ARCHIVE__MAX)
		return 0;
	if (!archive_admit(r->class, r->source != NULL ? r->source : "",
	    r->profile, r->at)) {
		archive_dropped(r->class);
		return 0;
	}
	ph_buf_init(&b, (size_t)r->body_len + 65536);
	if (archive_encode(r, &b) != 0) {
		errno = ENOMEM;
		goto fail;
	}
place:
	if ((fd = archive_segment(r->class, day, &size)) == -1)
		goto fail;
	/*
	 * Full: verified notifications make room by dropping their own
	 * oldest segment; a refused class keeps what it has (a record that
	 * may be genuine waits there for its replay) and archives no more
	 * until pruning frees its older days.  No class ever takes room from
	 * another.  The count is every process's: each adds what it writes.
	 */
	while (r->class == ARCHIVE_VERIFIED &&
	    __atomic_load_n(&archive.budget->used[r->class],
	    __ATOMIC_RELAXED) + (uint64_t)b.len > archive_share(r->class) &&
	    archive_evict_oldest(r->class, &archive.seg[r->class].id) == 0)
		continue;
	if (__atomic_load_n(&archive.budget->used[r->class],
	    __ATOMIC_RELAXED) + (uint64_t)b.len > archive_share(r->class)) {
		archive_dropped(r->class);
		if (!archive.warned[r->class])
			log_warn("notification archive: the %s share is full "
			    "(%lu MiB): such notifications are not archived "
			    "until older ones are pruned",
			    archive_class_name(r->class),
			    (unsigned long)(archive_share(r->class) >> 20));
		archive.warned[r->class] = 1;
		goto done;
	}
	if (size >= ARCHIVE_OFFSET_MAX) {
		errno = EFBIG;
		goto fail;
	}
	w = write(fd, b.data, b.len);
	if (w != (ssize_t)b.len) {
		/* A torn record is skipped by the reader. */
		errno = w == -1 ? errno : ENOSPC;
		goto fail;
	}
	/* Appended to a segment deleted meanwhile (by another process, or
	 * by the eviction above): written again where it stays (once: a
	 * second deletion this soon is the archive being emptied). */
	if (archive_seg_deleted(&archive.seg[r->class])) {
		archive_seg_drop(&archive.seg[r->class]);
		if (again-- > 0)
			goto place;
		errno = ENOENT;
		goto fail;
	}
	/* With O_APPEND, where the write ended is where it began plus its
	 * length, whatever other processes appended. */
	if ((end = lseek(fd, 0, SEEK_CUR)) < (off_t)b.len)
		goto fail;
	archive.seg[r->class].end = (uint64_t)end;
	if ((uint64_t)end - b.len >= ARCHIVE_OFFSET_MAX) {
		errno = EFBIG;
		goto fail;
	}
	id = archive_id_make(&archive.seg[r->class].id, (uint64_t)end - b.len);
	__atomic_add_fetch(&archive.budget->used[r->class], (uint64_t)b.len,
	    __ATOMIC_RELAXED);
	archive.warned[r->class] = 0;
	if (__atomic_load_n(&archive.budget->failed_since, __ATOMIC_RELAXED))
		__atomic_store_n(&archive.budget->failed_since, 0,
		    __ATOMIC_RELAXED);
	goto done;
fail:
	archive_failing(errno);
	if (!archive.warned[r->class])
		log_warn("notification archive: %s; %s notifications are not "
		    "archived (the store of payments is not affected)",
		    strerror(errno), archive_class_name(r->class));
	archive.warned[r->class] = 1;
done:
	ph_buf_free(&b);
	return id;
}

/* ---- Opening -------------------------------------------------------------- */

static int
archive_mkdir(const char *path)
{
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int
archive_open(const char *db_path, const struct archive_limits *lim)
{
	char path[ARCHIVE_PATH_MAX];
	int i;

	archive_close();
	if (lim->days == 0)
		return PH_OK;
	if (snprintf(archive.dir, sizeof(archive.dir), "%s-archive",
	    db_path) >= (int)sizeof(archive.dir)) {
		archive.dir[0] = '\0';
		return PH_E_CONFIG;
	}
	archive.lim = *lim;
	for (i = 0; i < ARCHIVE__MAX; i++)
		archive.seg[i].fd = -1;
	snprintf(path, sizeof(path), "%s/seg", archive.dir);
	if (archive_mkdir(archive.dir) == -1 || archive_mkdir(path) == -1 ||
	    (snprintf(path, sizeof(path), "%s/hints", archive.dir),
	    archive_mkdir(path) == -1) || archive_budget_open() == -1) {
		log_warn("notification archive %s: %s; notifications are not "
		    "archived", archive.dir, strerror(errno));
		archive_close();
		return PH_E_IO;
	}
	archive_usage();
	return PH_OK;
}

void
archive_close(void)
{
	int i;

	for (i = 0; i < ARCHIVE__MAX; i++) {
		if (archive.dir[0] != '\0' && archive.seg[i].fd != -1)
			close(archive.seg[i].fd);
		archive.seg[i].fd = -1;
	}
	if (archive.budget != NULL)
		munmap(archive.budget, sizeof(struct archive_budget));
	memset(&archive, 0, sizeof(archive));
	for (i = 0; i < ARCHIVE__MAX; i++)
		archive.seg[i].fd = -1;
}

/*
 * Whether a page can be written in the segment folder now: a file of one
 * page, flushed and removed.  Asked only while appends are failing, so
 * that an archive nobody writes to (a load balancer holding traffic back
 * until /readyz passes) is found writable again once room is freed.
 */
static int
archive_probe(void)
{
	char path[ARCHIVE_PATH_MAX], page[4096];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/seg/.probe-%ld", archive.dir,
	    (long)getpid());
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		return -1;
	memset(page, 0, sizeof(page));
	ok = write(fd, page, sizeof(page)) == (ssize_t)sizeof(page) &&
	    fdatasync(fd) == 0;
	close(fd);
	unlink(path);
	return ok ? 0 : -1;
}

int
archive_writable(int64_t now, char *why, size_t cap)
{
	static const struct {
		const char *name, *what;
		int mode;
	} parts[] = {
		{ "", "its folder", W_OK | X_OK },
		{ "/seg", "its segment folder", W_OK | X_OK },
		{ "/hints", "its hints folder", W_OK | X_OK },
		{ "/budget", "its budget file", R_OK | W_OK },
	};
	char path[ARCHIVE_PATH_MAX], name[40], when[32];
	struct archive_segid sg;
	uint64_t since;
	struct tm tm;
	time_t t;
	size_t i;

	if (archive.dir[0] == '\0' || archive.budget == NULL) {
		snprintf(why, cap, "the archive could not be opened");
		return -1;
	}
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", archive.dir, parts[i].name);
		if (access(path, parts[i].mode) == -1) {
			snprintf(why, cap, "%s cannot be written: %s",
			    parts[i].what, strerror(errno));
			return -1;
		}
	}
	if ((since = __atomic_load_n(&archive.budget->failed_since,
	    __ATOMIC_RELAXED)) != 0 && archive_probe() == 0)
		__atomic_store_n(&archive.budget->failed_since, 0,
		    __ATOMIC_RELAXED);
	else if (since != 0) {
		t = (time_t)since;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(why, cap, "its writes have failed since %s: %s (free "
		    "room on its disk, or mend its files; the next write that "
		    "succeeds clears this)", when, strerror(
		    __atomic_load_n(&archive.budget->failed_errno,
		    __ATOMIC_RELAXED)));
		return -1;
	}
	/* A segment another user began today would refuse our records. */
	for (i = 0; i < ARCHIVE__MAX; i++) {
		sg.day = now / 86400;
		sg.class = (enum archive_class)i;
		sg.seq = archive_last_seq(sg.day, sg.class);
		archive_segment_name(&sg, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/seg/%s", archive.dir, name);
		if (access(path, W_OK) == -1 && errno != ENOENT) {
			snprintf(why, cap, "today's %s segment cannot be "
			    "written: %s", archive_class_name(sg.class),
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* ---- Hints ---------------------------------------------------------------- */

/* "hints/<hex profile>.<hex order>": any order id makes a file name. */
static void
archive_hint_path(const char *profile, const char *order_id, char *out,
    size_t cap)
{
	char p[2 * 64 + 1], o[2 * PH_ID_MAX + 1];

	ph_hex_lower((const unsigned char *)profile, strnlen(profile, 64), p);
	ph_hex_lower((const unsigned char *)order_id,
	    strnlen(order_id, PH_ID_MAX), o);
	snprintf(out, cap, "%s/hints/%s.%s", archive.dir, p, o);
}

int
archive_hint(const char *profile, const char *order_id, int64_t now,
    unsigned long per_minute)
{
	char path[ARCHIVE_PATH_MAX];
	char key[96];
	int fd;

	if (archive.dir[0] == '\0' || archive.budget == NULL ||
	    per_minute == 0)
		return 0;
	/* An order already waiting for its query takes nothing from the
	 * budget: naming one order again and again must not use up the
	 * hints of every other (a flood needs only one order id). */
	archive_hint_path(profile, order_id, path, sizeof(path));
	if (access(path, F_OK) == 0)
		return 0;
	snprintf(key, sizeof(key), "hint:%s", profile);
	if (!archive_take(archive_slot(archive.budget->hints, key), now / 60,
	    per_minute))
		return 0;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return 0;
	close(fd);
	return 1;
}
