/*
 * The notification archive's read side: records found by id, listed,
 * shown as JSON, read back raw for a replay; segments pruned; hints taken.
 * Only operators' commands come here, never the notification's path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/text.h"
#include "store/archive.h"
#include "store/archive_int.h"

#define ARCHIVE_RECORD_MAX (64u << 20)

static uint64_t
archive_get_be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- Records -------------------------------------------------------------- */

/*
 * Reads the record at off of the open segment fd (size bytes): 0 with
 * *rec (malloc'd, len bytes) when one is whole and sound there, -1 when
 * none is (a torn or stray write); *next is where the next one may be.
 */
static int
archive_record_at(int fd, off_t off, off_t size, unsigned char **rec,
    size_t *len, off_t *next)
{
	unsigned char head[ARCHIVE_HEAD], *buf;
	uint64_t n;

	*rec = NULL;
	*next = off + 1;
	if (size - off < ARCHIVE_HEAD ||
	    pread(fd, head, sizeof(head), off) != (ssize_t)sizeof(head) ||
	    memcmp(head, ARCHIVE_MAGIC, 4) != 0)
		return -1;
	n = archive_get_be(head + 4, 4);
	if (n < ARCHIVE_HEAD || n > ARCHIVE_RECORD_MAX ||
	    (off_t)n > size - off || (buf = malloc(n)) == NULL)
		return -1;
	if (pread(fd, buf, n, off) != (ssize_t)n ||
	    archive_fnv(buf + 12, n - 12, ARCHIVE_FNV_SEED) !=
	    (uint32_t)archive_get_be(buf + 8, 4)) {
		free(buf);
		return -1;
	}
	*rec = buf;
	*len = n;
	*next = off + (off_t)n;
	return 0;
}

/* Where the next sound record may start after a bad one at off. */
static off_t
archive_resync(int fd, off_t off, off_t size)
{
	unsigned char buf[4096];
	ssize_t got, i;

	for (off++; off < size; off += got > 3 ? got - 3 : 1) {
		if ((got = pread(fd, buf, sizeof(buf), off)) <= 0)
			return size;
		for (i = 0; i + 4 <= got; i++)
			if (memcmp(buf + i, ARCHIVE_MAGIC, 4) == 0)
				return off + i;
		if (got < 4)
			return size;
	}
	return size;
}

/* A field reader over a record; err is set past its end. */
struct archive_cursor {
	const unsigned char *p, *end;
	int err;
};

static const unsigned char *
archive_field(struct archive_cursor *c, size_t lenbytes, size_t *n)
{
	const unsigned char *v;

	*n = 0;
	if (c->err || (size_t)(c->end - c->p) < lenbytes) {
		c->err = 1;
		return NULL;
	}
	*n = (size_t)archive_get_be(c->p, lenbytes);
	c->p += lenbytes;
	if ((size_t)(c->end - c->p) < *n) {
		c->err = 1;
		return NULL;
	}
	v = c->p;
	c->p += *n;
	return v;
}

/* A JSON string of bytes that may not be UTF-8 (U+FFFD for the rest). */
static json_t *
archive_text(const unsigned char *p, size_t n)
{
	struct ph_buf b;
	json_t *j;
	size_t i, len;

	if ((j = json_stringn((const char *)p, n)) != NULL || n == 0)
		return j != NULL ? j : json_string("");
	ph_buf_init(&b, 3 * n + 1);
	for (i = 0; i < n; i += len) {
		/* A NUL or a byte that starts no character: U+FFFD. */
		if ((len = text_utf8_len(p + i, n - i)) == 0 || p[i] == 0) {
			ph_buf_puts(&b, "\xef\xbf\xbd");
			len = 1;
		} else
			ph_buf_append(&b, p + i, len);
	}
	j = json_stringn(b.data != NULL ? b.data : "", b.len);
	ph_buf_free(&b);
	return j;
}

/* The JSON view of a record (archive_get). */
static json_t *
archive_json(uint64_t id, const unsigned char *rec, size_t len)
{
	static const char *const names[ARCHIVE_NSTRINGS] = {
		"source", "profile", "provider", "method", "content_type",
		"verdict", "reason", "order_id", "outcome",
	};
	struct archive_cursor c = { rec + ARCHIVE_HEAD, rec + len, 0 };
	unsigned char d[PH_SHA256_LEN];
	char hex[2 * PH_SHA256_LEN + 1];
	const unsigned char *v, *body;
	struct ph_buf b64;
	json_t *j, *hs;
	size_t i, n, nh, blen;

	j = json_pack("{s:I, s:I, s:s, s:I}", "id", (json_int_t)id,
	    "at", (json_int_t)archive_get_be(rec + 12, 8),
	    "class", archive_class_name(rec[28]),
	    "replay_of", (json_int_t)archive_get_be(rec + 20, 8));
	for (i = 0; i < ARCHIVE_NSTRINGS && j != NULL; i++) {
		v = archive_field(&c, 2, &n);
		json_object_set_new(j, names[i], archive_text(v, n));
	}
	hs = json_array();
	if (c.end - c.p >= 4) {
		nh = (size_t)archive_get_be(c.p, 4);
		c.p += 4;
	} else
		c.err = 1, nh = 0;
	for (i = 0; i < nh && !c.err; i++) {
		const unsigned char *name, *val;
		size_t nn, vn;

		name = archive_field(&c, 2, &nn);
		val = archive_field(&c, 4, &vn);
		if (!c.err)
			json_array_append_new(hs, json_pack("[o, o]",
			    archive_text(name, nn), archive_text(val, vn)));
	}
	json_object_set_new(j, "headers", hs);
	body = archive_field(&c, 4, &blen);
	if (c.err || j == NULL) {
		json_decref(j);
		return NULL;
	}
	ph_buf_init(&b64, 4 * blen / 3 + 16);
	ph_base64_encode(body, blen, &b64);
	ph_sha256(body, blen, d);
	ph_hex_lower(d, sizeof(d), hex);
	json_object_set_new(j, "body", json_string(b64.data != NULL ?
	    b64.data : ""));
	json_object_set_new(j, "body_sha256", json_string(hex));
	ph_buf_free(&b64);
	return j;
}

/* Opens the segment a record id is in. */
static int
archive_open_segment(uint64_t id, off_t *size)
{
	char name[40], path[ARCHIVE_PATH_MAX];
	struct archive_segid sg;
	struct stat st;
	int fd;

	archive_id_segment(id, &sg);
	if (sg.class >= ARCHIVE__MAX) {
		errno = ENOENT;
		return -1;
	}
	archive_segment_name(&sg, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/seg/%s", archive.dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	*size = st.st_size;
	return fd;
}

/* The raw record id names (caller frees *rec). */
static int
archive_raw(uint64_t id, unsigned char **rec, size_t *len)
{
	off_t size, next;
	int fd, rc;

	*rec = NULL;
	if (archive.dir[0] == '\0')
		return PH_E_NOTFOUND;
	if ((fd = archive_open_segment(id, &size)) == -1)
		return errno == ENOENT ? PH_E_NOTFOUND : PH_E_IO;
	rc = archive_record_at(fd, (off_t)archive_id_offset(id), size, rec,
	    len, &next);
	close(fd);
	return rc == 0 ? PH_OK : PH_E_NOTFOUND;
}

int
archive_get(uint64_t id, json_t **out)
{
	unsigned char *rec;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = archive_raw(id, &rec, &len)) != PH_OK)
		return rc;
	*out = archive_json(id, rec, len);
	free(rec);
	return *out != NULL ? PH_OK : PH_E_MALFORMED;
}

int
archive_read(uint64_t id, struct archive_kept *e)
{
	struct archive_cursor c;
	const unsigned char *v[ARCHIVE_NSTRINGS], *name, *val;
	size_t n[ARCHIVE_NSTRINGS], i, nn, vn, len;
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = archive_raw(id, &e->raw, &len)) != PH_OK)
		return rc;
	c.p = e->raw + ARCHIVE_HEAD;
	c.end = e->raw + len;
	c.err = 0;
	e->id = id;
	e->at = (int64_t)archive_get_be(e->raw + 12, 8);
	e->class = (enum archive_class)e->raw[28];
	for (i = 0; i < ARCHIVE_NSTRINGS; i++)
		v[i] = archive_field(&c, 2, &n[i]);
	if (!c.err && c.end - c.p >= 4) {
		e->nheaders = (size_t)archive_get_be(c.p, 4);
		c.p += 4;
	} else
		c.err = 1;
	if (!c.err && (e->headers = calloc(e->nheaders + 1,
	    sizeof(*e->headers))) == NULL)
		c.err = 1;
	/*
	 * Strings are made NUL-terminated in a copy of their own: a name or
	 * value with a NUL inside is cut there, as the web server would.
	 */
	for (i = 0; i < e->nheaders && !c.err; i++) {
		name = archive_field(&c, 2, &nn);
		val = archive_field(&c, 4, &vn);
		if (!c.err) {
			e->headers[i].name = strndup((const char *)name, nn);
			e->headers[i].value = strndup((const char *)val, vn);
			if (e->headers[i].name == NULL ||
			    e->headers[i].value == NULL)
				c.err = 1;
		}
	}
	if (!c.err) {
		const unsigned char *body = archive_field(&c, 4, &e->body_len);

		if (!c.err && (e->body = malloc(e->body_len + 1)) != NULL) {
			memcpy(e->body, body, e->body_len);
			e->body[e->body_len] = '\0';
		} else
			c.err = 1;
	}
	if (!c.err) {
		e->profile = strndup((const char *)v[1], n[1]);
		e->method = strndup((const char *)v[3], n[3]);
		e->content_type = strndup((const char *)v[4], n[4]);
		if (e->profile == NULL || e->method == NULL ||
		    e->content_type == NULL)
			c.err = 1;
	}
	if (c.err) {
		archive_kept_free(e);
		return PH_E_MALFORMED;
	}
	return PH_OK;
}

void
archive_kept_free(struct archive_kept *e)
{
	size_t i;

	if (e->headers != NULL)
		for (i = 0; i < e->nheaders; i++) {
			free((char *)e->headers[i].name);
			free((char *)e->headers[i].value);
		}
	free(e->headers);
	free(e->body);
	free(e->profile);
	free(e->method);
	free(e->content_type);
	free(e->raw);
	memset(e, 0, sizeof(*e));
}

/*
 * A record's place in the list: the day it was received (its segment's),
 * then when it was written, in microseconds since 1970 (the second it was
 * received in, and how long after that second began it was written: 0 in
 * records of builds before that), then its id.  Ids grow with time only
 * within a class, so the records of a day are listed in this order, not
 * the ids'; a record received before midnight and written after it stays
 * with its day, so that a listing after any record misses none.
 */
struct archive_pos {
	int64_t day;
	int64_t t;
	uint64_t id;
	size_t seg;		/* its segment in the list being read */
};

static int
archive_pos_cmp(const void *a_, const void *b_)
{
	const struct archive_pos *a = a_, *b = b_;

	if (a->day != b->day)
		return a->day < b->day ? -1 : 1;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static void
archive_pos_read(const unsigned char *head, uint64_t id, size_t seg,
    struct archive_pos *p)
{
	struct archive_segid sg;

	archive_id_segment(id, &sg);
	p->day = sg.day;
	p->t = (int64_t)archive_get_be(head + 12, 8) * 1000000 +
	    (int64_t)archive_get_be(head + ARCHIVE_USEC_AT, 3);
	p->id = id;
	p->seg = seg;
}

/* Where the record id stands; -1 when it is not in the archive (any
 * more). */
static int
archive_pos_of(uint64_t id, struct archive_pos *p)
{
	struct archive_segid sg;
	char name[40], path[ARCHIVE_PATH_MAX];
	unsigned char *rec;
	struct stat st;
	size_t len;
	off_t next;
	int fd, rc = -1;

	archive_id_segment(id, &sg);
	archive_segment_name(&sg, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/seg/%s", archive.dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == 0 && archive_record_at(fd,
	    (off_t)archive_id_offset(id), st.st_size, &rec, &len,
	    &next) == 0) {
		archive_pos_read(rec, id, 0, p);
		free(rec);
		rc = 0;
	}
	close(fd);
	return rc;
}

/*
 * The length of the record at off of the segment mapped at m (size
 * bytes), or 0 when no sound one starts there: its checksum is checked
 * where it lies, as archive_record_at() does, so that a torn record, which
 * claims bytes the records after it hold, is passed over and they are
 * found.
 */
static size_t
archive_length_at(const unsigned char *m, size_t size, size_t off)
{
	uint64_t n;

	if (size - off < ARCHIVE_HEAD ||
	    memcmp(m + off, ARCHIVE_MAGIC, 4) != 0)
		return 0;
	n = archive_get_be(m + off + 4, 4);
	if (n < ARCHIVE_HEAD || n > ARCHIVE_RECORD_MAX || n > size - off)
		return 0;
	return archive_fnv(m + off + 12, (size_t)n - 12, ARCHIVE_FNV_SEED) ==
	    (uint32_t)archive_get_be(m + off + 8, 4) ? (size_t)n : 0;
}

/* The records of segs[first..last) written after from, appended to *pos
 * (*npos of *cap): their heads read through a map of each segment. */
static int
archive_day_read(const struct archive_segfile *segs, size_t first,
    size_t last, const struct archive_pos *from, struct archive_pos **pos,
    size_t *npos, size_t *cap)
{
	char path[ARCHIVE_PATH_MAX];
	struct archive_pos p, *grown;
	const unsigned char *m, *q;
	size_t i, off, n, size;
	int fd, rc = PH_OK;

	for (i = first; i < last && rc == PH_OK; i++) {
		if (segs[i].size < ARCHIVE_HEAD)
			continue;
		size = (size_t)segs[i].size;
		snprintf(path, sizeof(path), "%s/seg/%s", archive.dir,
		    segs[i].name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		close(fd);
		if (m == MAP_FAILED)
			continue;
		for (off = 0; off < size && rc == PH_OK; ) {
			if ((n = archive_length_at(m, size, off)) == 0) {
				q = memmem(m + off + 1, size - off - 1,
				    ARCHIVE_MAGIC, 4);
				off = q != NULL ? (size_t)(q - m) : size;
				continue;
			}
			archive_pos_read(m + off, archive_id_make(&segs[i].id,
			    off), i, &p);
			off += n;
			if (archive_pos_cmp(&p, from) <= 0)
				continue;
			if (*npos == *cap) {
				*cap = *cap ? 2 * *cap : 256;
				if ((grown = reallocarray(*pos, *cap,
				    sizeof(**pos))) == NULL) {
					rc = PH_E_NOMEM;
					break;
				}
				*pos = grown;
			}
			(*pos)[(*npos)++] = p;
		}
		munmap((void *)m, size);
	}
	return rc;
}

int
archive_list(uint64_t after, size_t limit, json_t **out)
{
	struct archive_segfile *segs;
	struct archive_pos from = { INT64_MIN, 0, 0, 0 }, *pos = NULL;
	struct archive_segid sg;
	char path[ARCHIVE_PATH_MAX];
	unsigned char *rec;
	size_t i, k, first, n, npos, cap = 0, open_seg = (size_t)-1;
	size_t len;
	off_t next;
	json_t *arr = json_array(), *j;
	int fd = -1, rc;

	*out = arr;
	if (archive.dir[0] == '\0')
		return PH_OK;
	if ((rc = archive_segments(&segs, &n)) != PH_OK)
		return rc;
	/* A record no longer kept (pruned, evicted): from the start of its
	 * day, so that nothing after it is missed. */
	if (after != 0 && archive_pos_of(after, &from) != 0) {
		archive_id_segment(after, &sg);
		from.day = sg.day;
		from.t = INT64_MIN;
		from.id = 0;
	}
	for (first = 0; first < n && json_array_size(arr) < limit &&
	    rc == PH_OK; first = i) {
		for (i = first; i < n && segs[i].id.day == segs[first].id.day;
		    i++)
			;
		if (segs[first].id.day < from.day)
			continue;
		npos = 0;
		if ((rc = archive_day_read(segs, first, i, &from, &pos, &npos,
		    &cap)) != PH_OK)
			break;
		if (npos > 1)	/* qsort's array may not be NULL, even empty */
			qsort(pos, npos, sizeof(*pos), archive_pos_cmp);
		for (k = 0; k < npos && json_array_size(arr) < limit; k++) {
			if (pos[k].seg != open_seg) {
				if (fd != -1)
					close(fd);
				snprintf(path, sizeof(path), "%s/seg/%s",
				    archive.dir, segs[pos[k].seg].name);
				open_seg = pos[k].seg;
				if ((fd = open(path, O_RDONLY | O_CLOEXEC)) ==
				    -1)
					continue;
			}
			if (fd == -1 || archive_record_at(fd,
			    (off_t)archive_id_offset(pos[k].id),
			    segs[pos[k].seg].size, &rec, &len, &next) != 0)
				continue;
			if ((j = archive_json(pos[k].id, rec, len)) != NULL)
				json_array_append_new(arr, j);
			free(rec);
		}
		if (fd != -1)
			close(fd);
		fd = -1;
		open_seg = (size_t)-1;
	}
	free(pos);
	free(segs);
	return rc;
}

/* Records in a segment (for the operator's count of what was pruned). */
static size_t
archive_count(const char *path, off_t size)
{
	unsigned char *rec;
	size_t n = 0, len;
	off_t off = 0, next;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	while (off < size) {
		if (archive_record_at(fd, off, size, &rec, &len, &next) != 0) {
			off = archive_resync(fd, off, size);
			continue;
		}
		free(rec);
		n++;
		off = next;
	}
	close(fd);
	return n;
}

int
archive_prune(int64_t now, size_t *removed)
{
	struct archive_segfile *segs;
	char path[ARCHIVE_PATH_MAX];
	uint64_t used[ARCHIVE__MAX];
	int64_t newest[ARCHIVE__MAX];
	int64_t today = now / 86400;
	int64_t oldest = (now - (int64_t)archive.lim.days * 86400) / 86400;
	size_t i, n;
	int rc, c;

	*removed = 0;
	if (archive.dir[0] == '\0')
		return PH_OK;
	if ((rc = archive_segments(&segs, &n)) != PH_OK)
		return rc;
	memset(used, 0, sizeof(used));
	memset(newest, 0, sizeof(newest));
	for (i = 0; i < n; i++) {
		used[segs[i].id.class] += (uint64_t)segs[i].size;
		if (segs[i].id.day > newest[segs[i].id.class])
			newest[segs[i].id.class] = segs[i].id.day;
	}
	/*
	 * Oldest first: the days past the retention, then, while a class
	 * holds more than its share, its own oldest days; never today's,
	 * which new records of the class no longer enter once it is full,
	 * and never another class's.  Never a class's newest day either,
	 * whatever this clock says: the one being written, whose ids would
	 * be handed out again from its start (a sweeper days ahead).
	 */
	for (i = 0; i < n; i++) {
		c = segs[i].id.class;
		if (segs[i].id.day >= newest[c] || (segs[i].id.day >= oldest &&
		    (segs[i].id.day >= today || used[c] <= archive_share(c))))
			continue;
		snprintf(path, sizeof(path), "%s/seg/%s", archive.dir,
		    segs[i].name);
		*removed += archive_count(path, segs[i].size);
		archive_removing();
		if (unlink(path) == 0)
			used[c] -= (uint64_t)segs[i].size;
	}
	free(segs);
	archive_usage();
	return PH_OK;
}

/* ---- Hints ---------------------------------------------------------------- */

/* The bytes hex stands for, NUL-terminated, into out (cap bytes). */
static int
archive_unhex(const char *hex, size_t n, char *out, size_t cap)
{
	size_t i;
	unsigned v;

	if (n % 2 != 0 || n / 2 + 1 > cap)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return 0;
}

int
archive_hints_take(size_t limit, json_t **ids)
{
	char path[ARCHIVE_PATH_MAX], order[PH_ID_MAX + 1];
	struct dirent *de;
	const char *dot;
	DIR *d;

	*ids = json_array();
	if (archive.dir[0] == '\0')
		return PH_OK;
	snprintf(path, sizeof(path), "%s/hints", archive.dir);
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? PH_OK : PH_E_IO;
	while ((de = readdir(d)) != NULL && json_array_size(*ids) < limit) {
		if ((dot = strchr(de->d_name, '.')) == NULL || dot ==
		    de->d_name || archive_unhex(dot + 1, strlen(dot + 1),
		    order, sizeof(order)) != 0)
			continue;
		/* Whoever unlinks it takes it: two sweepers never both. */
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			json_array_append_new(*ids, json_string(order));
	}
	closedir(d);
	return PH_OK;
}
