/*
 * The notification archive on a real folder: records kept and read back
 * byte for byte whatever their bytes, the classes' rates and shares (a
 * flood of refused notifications never pushes out verified ones), torn
 * records skipped, pruning, and hints.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "store/archive.h"
#include "store/archive_int.h"
#include "../../lib/helpers.h"
#include "../../lib/tap.h"

static char dir[] = "/tmp/payhook-archive-XXXXXX";
static char db[300];

#define NOW 1764500000	/* 2025-11-30 */

static uint64_t
put(enum archive_class c, const char *source, const char *body, size_t len,
    int64_t at)
{
	static const struct ph_header h[] = {
		{ "Content-Type", "text/xml" },
		{ "X-Odd", "\xff\xfe bytes \x80" },
		{ "Authorization", "Bearer secret-token" },
	};
	struct archive_rec r;

	memset(&r, 0, sizeof(r));
	r.at = at;
	r.class = c;
	r.source = source;
	r.profile = "wxshop";
	r.provider = "wechat";
	r.method = "POST";
	r.content_type = "text/xml; charset=\xff";
	r.headers = h;
	r.nheaders = 3;
	r.body = (const unsigned char *)body;
	r.body_len = len;
	r.verdict = c == ARCHIVE_VERIFIED ? "verified" : "refused";
	r.reason = "";
	r.order_id = "O-1";
	r.outcome = "applied";
	return archive_put(&r);
}

static void
test_records(void)
{
	static const char body[] = "<xml>\0binary\xff</xml>";
	struct archive_kept e;
	json_t *j, *list;
	uint64_t id, id2;

	id = put(ARCHIVE_VERIFIED, "127.0.0.1", body, sizeof(body), NOW);
	ok(id != 0, "a verified notification is archived");
	id2 = put(ARCHIVE_VERIFIED, "127.0.0.1", "second", 6, NOW + 1);
	ok(id2 > id, "ids grow");
	is_int(archive_read(id, &e), PH_OK, "read back raw");
	ok(e.body_len == sizeof(body) && memcmp(e.body, body,
	    sizeof(body)) == 0, "... the body byte for byte");
	ok(e.nheaders == 3 && strcmp(e.headers[1].value,
	    "\xff\xfe bytes \x80") == 0, "... headers that are not UTF-8 too");
	ok(strncmp(e.headers[2].value, "sha256:", 7) == 0,
	    "... an Authorization header only as its digest");
	ok(strcmp(e.content_type, "text/xml; charset=\xff") == 0 &&
	    e.at == NOW && strcmp(e.profile, "wxshop") == 0,
	    "... content type, time, profile");
	archive_kept_free(&e);
	is_int(archive_get(id, &j), PH_OK, "shown as JSON");
	ok(j != NULL && strstr(json_string_value(json_array_get(
	    json_array_get(json_object_get(j, "headers"), 1), 1)),
	    "\xef\xbf\xbd") != NULL, "... bytes that are not UTF-8 as U+FFFD");
	ok(json_integer_value(json_object_get(j, "id")) == (json_int_t)id &&
	    strcmp(json_string_value(json_object_get(j, "class")),
	    "verified") == 0, "... with its id and class");
	json_decref(j);
	is_int(archive_list(0, 100, &list), PH_OK, "listed");
	is_int(json_array_size(list), 2, "... both");
	json_decref(list);
	is_int(archive_list(id, 100, &list), PH_OK, "listed after the first");
	ok(json_array_size(list) == 1 && json_integer_value(json_object_get(
	    json_array_get(list, 0), "id")) == (json_int_t)id2, "... the "
	    "second");
	json_decref(list);
	is_int(archive_get(id + 3, &j), PH_E_NOTFOUND, "no record between");
}

static void
test_torn(void)
{
	char path[400];
	json_t *list;
	uint64_t id;
	size_t before;
	int fd;

	archive_list(0, 1000, &list);
	before = json_array_size(list);
	json_decref(list);
	/* A write torn by a crash, then more records after it. */
	snprintf(path, sizeof(path), "%s-archive/seg/20251130-v-0000", db);
	if (!ok((fd = open(path, O_WRONLY | O_APPEND)) != -1,
	    "the day's segment is there"))
		return;
	if (write(fd, "PHA1\0\0\0\xff garbage", 16) != 16)
		diag("short write");
	close(fd);
	id = put(ARCHIVE_VERIFIED, "127.0.0.1", "after", 5, NOW + 2);
	ok(id != 0, "a record after a torn one");
	archive_list(0, 1000, &list);
	is_int(json_array_size(list), before + 1, "the torn record is "
	    "skipped, the next one found");
	json_decref(list);
}

static void
test_budgets(void)
{
	char big[60000];
	int i, kept = 0, verified = 0;

	/* Rates: per source, then in total. */
	for (i = 0; i < 10; i++)
		kept += put(ARCHIVE_UNVERIFIED, "10.0.0.1", "x", 1, NOW) != 0;
	is_int(kept, 5, "one source: 5 a minute");
	kept = 0;
	for (i = 0; i < 40; i++) {
		char src[32];

		snprintf(src, sizeof(src), "10.1.%d.%d", i / 200, i % 200);
		kept += put(ARCHIVE_UNVERIFIED, src, "x", 1, NOW) != 0;
	}
	is_int(kept, 15, "all sources: 20 a minute");
	ok(put(ARCHIVE_UNVERIFIED, "10.0.0.1", "x", 1, NOW + 60) != 0,
	    "the next minute counts anew");
	ok(put(ARCHIVE_VERIFIED, "10.0.0.1", "x", 1, NOW) != 0,
	    "verified ones are not rated");

	/* Shares: a flood fills its own share, never the verified one's. */
	memset(big, 'A', sizeof(big));
	kept = 0;
	for (i = 0; i < 200; i++) {
		char src[32];

		snprintf(src, sizeof(src), "10.2.%d.%d", i / 200, i % 200);
		kept += put(ARCHIVE_UNVERIFIED, src, big, sizeof(big),
		    NOW + 120 + i * 3) != 0;
	}
	ok(kept > 0 && kept < 200, "a flood stops at its share (%d kept)",
	    kept);
	for (i = 0; i < 20; i++)
		verified += put(ARCHIVE_VERIFIED, "10.9.9.9", big, sizeof(big),
		    NOW + 1000 + i) != 0;
	is_int(verified, 20, "verified notifications are still archived");
	{
		json_t *list, *e;
		uint64_t last = 0, newest = 0;
		size_t n = 0, k;

		/* Far more than their share: the oldest segments go. */
		for (i = 0; i < 80; i++)
			last = put(ARCHIVE_VERIFIED, "10.9.9.9", big,
			    sizeof(big), NOW + 1100 + i);
		ok(last != 0, "verified ones past their share are still "
		    "archived");
		archive_list(0, 100000, &list);
		json_array_foreach(list, k, e)
			if (strcmp(json_string_value(json_object_get(e,
			    "class")), "verified") == 0) {
				n++;
				newest = (uint64_t)json_integer_value(
				    json_object_get(e, "id"));
			}
		ok(n < 100 && newest == last, "... the oldest dropped to make "
		    "room (%zu kept), the newest there", n);
		json_decref(list);
	}
	kept = 0;
	for (i = 0; i < 5; i++)
		kept += put(ARCHIVE_OURS, "10.3.0.1", "maybe genuine", 13,
		    NOW + 2000 + i) != 0;
	is_int(kept, 5, "... and those naming our orders too");
	kept = 0;
	for (i = 0; i < 10; i++)
		kept += put(ARCHIVE_OURS, "10.3.0.2", "forged, ours", 12,
		    NOW + 2100) != 0;
	is_int(kept, 5, "a flood naming our orders from one address: 5 a "
	    "minute");
	ok(put(ARCHIVE_OURS, "10.3.0.3", "genuine, bad key", 16,
	    NOW + 2100) != 0, "... and the provider's own from another "
	    "address in that minute still archived");
}

/* Records of list of class name. */
static size_t
count_class(const json_t *list, const char *name)
{
	const json_t *r;
	size_t i, n = 0;

	json_array_foreach(list, i, r)
		n += strcmp(json_string_value(json_object_get(r, "class")),
		    name) == 0;
	return n;
}

static void
test_prune_and_hints(void)
{
	json_t *ids, *list;
	size_t removed;
	int i, noted = 0;

	for (i = 0; i < 10; i++)
		noted += archive_hint("wxshop", "O-1", NOW, 4);
	is_int(noted, 1, "hints: one order named ten times is queued once");
	noted = 0;
	for (i = 0; i < 5; i++) {
		char id[8];

		snprintf(id, sizeof(id), "O.%d", i);
		noted += archive_hint("wxshop", id, NOW, 4);
	}
	is_int(noted, 3, "... and takes one hint of the minute's 4, not "
	    "ten: three other orders still get theirs");
	is_int(archive_hints_take(100, &ids), PH_OK, "hints taken");
	is_int(json_array_size(ids), 4, "... each order once");
	json_decref(ids);
	archive_hints_take(100, &ids);
	is_int(json_array_size(ids), 0, "... and gone");
	json_decref(ids);
	ok(archive_hint("wxshop", "..", NOW + 60, 4) == 1,
	    "an order id that is no file name");
	archive_hints_take(100, &ids);
	is_str(json_string_value(json_array_get(ids, 0)), "..",
	    "... comes back as it was");
	json_decref(ids);

	put(ARCHIVE_VERIFIED, "127.0.0.1", "later", 5, NOW + 3 * 86400);
	/* 30 days kept: a day later than NOW + 1 stays at NOW + 31 days. */
	is_int(archive_prune(NOW + 31 * 86400, &removed), PH_OK, "pruned");
	ok(removed > 0, "... the records of the day past (%zu)", removed);
	archive_list(0, 1000, &list);
	is_int(count_class(list, "verified"), 1, "... the later day stays");
	/* The refused classes wrote nothing since NOW: the newest day of a
	 * class is the one written to, kept lest its ids be handed out
	 * again from its start (a pruner whose clock is ahead). */
	ok(count_class(list, "unverified") > 0 && count_class(list, "ours") >
	    0, "... the newest day of each refused class too");
	json_decref(list);
	is_int(archive_prune(NOW + 400 * 86400, &removed), PH_OK,
	    "pruned a year on");
	archive_list(0, 1000, &list);
	is_int(count_class(list, "verified"), 1, "... the newest day stays "
	    "(%zu removed)", removed);
	json_decref(list);
}

/* Bits 32 to 41 of an id: the segment's number within its day. */
#define SEG_OF(id)	(((id) >> 32) & 0x3ff)

/* What another process appends to a segment file (made if need be):
 * n bytes of no record; 1 when they were written. */
static int
another_appends(const char *path, size_t n)
{
	static char other[300000];
	int fd, rc;

	if (n > sizeof(other) ||
	    (fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600)) == -1)
		return 0;
	memset(other, 'B', n);
	rc = write(fd, other, n) == (ssize_t)n;
	close(fd);
	return rc;
}

/* The record id names, read back with its own body. */
static void
read_back(uint64_t id, const char *body, size_t len)
{
	struct archive_kept e;

	if (ok(archive_read(id, &e) == PH_OK, "... read back by its id")) {
		ok(e.body_len == len && memcmp(e.body, body, len) == 0,
		    "... its own body");
		archive_kept_free(&e);
	}
}

/*
 * Other processes append to the segment this one writes, and this one
 * counts only its own records: the segment runs past its maximum by
 * theirs, this process's next record still gets the id that reads it
 * back, and the one after goes to the day's next segment.
 */
static void
test_others_append(void)
{
	int64_t day = NOW + 10 * 86400;
	char path[400];
	uint64_t id1, id2, id3;

	id1 = put(ARCHIVE_VERIFIED, "10.4.0.1", "first", 5, day);
	snprintf(path, sizeof(path), "%s-archive/seg/20251210-v-0000", db);
	if (!ok(id1 != 0 && SEG_OF(id1) == 0, "a record in a new day's first "
	    "segment"))
		return;
	/* What another process appended meanwhile, past the maximum. */
	ok(another_appends(path, 300000), "another process appends 300000 "
	    "bytes");
	id2 = put(ARCHIVE_VERIFIED, "10.4.0.1", "second", 6, day + 1);
	ok(id2 > id1 && SEG_OF(id2) == 0 && (id2 & 0xffffffffu) > 300000,
	    "this process's next record goes on in the same segment, after "
	    "the other's bytes");
	read_back(id2, "second", 6);
	id3 = put(ARCHIVE_VERIFIED, "10.4.0.1", "third", 5, day + 2);
	ok(id3 > id2 && SEG_OF(id3) == 1, "the record after it goes to the "
	    "next segment");
	read_back(id3, "third", 5);
}

/* Another process's eviction, run in a child: deletes the class's oldest
 * segments nobody appends to until path is gone. */
static void
evict_until_gone(const char *path, const struct archive_segid *keep)
{
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		while (access(path, F_OK) == 0 &&
		    archive_evict_oldest(ARCHIVE_VERIFIED, keep) == 0)
			continue;
		_exit(access(path, F_OK) == 0);
	}
	ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0, "another process evicts the segment this "
	    "process appends to");
}

/*
 * The segment this process has open, deleted by another process (it ran
 * past its maximum with the other's records, so it can be evicted): the
 * next record goes to a segment that is there, before the write (the
 * deletion seen) and after it (deleted while this process wrote).
 */
static void
test_deleted_under(void)
{
	int64_t day = NOW + 20 * 86400;
	struct archive_segid keep = { day, ARCHIVE_VERIFIED, 1 };
	char seg0[400], seg1[400], seg2[400];
	uint64_t id1, id2, id3, share;
	struct stat st;

	id1 = put(ARCHIVE_VERIFIED, "10.5.0.1", "first", 5, day);
	snprintf(seg0, sizeof(seg0), "%s-archive/seg/20251220-v-0000", db);
	snprintf(seg1, sizeof(seg1), "%s-archive/seg/20251220-v-0001", db);
	snprintf(seg2, sizeof(seg2), "%s-archive/seg/20251220-v-0002", db);
	if (!ok(id1 != 0 && SEG_OF(id1) == 0, "a record in a new day's first "
	    "segment"))
		return;
	/* Another process fills it past its maximum and goes on in the
	 * next one. */
	ok(another_appends(seg0, 300000) && another_appends(seg1, 1),
	    "another process fills the segment and begins the next one");
	archive_usage();	/* what the other process counted */
	evict_until_gone(seg0, &keep);
	id2 = put(ARCHIVE_VERIFIED, "10.5.0.1", "second", 6, day + 1);
	ok(id2 != 0 && SEG_OF(id2) == 1, "this process's next record goes "
	    "to the segment that is there, not to the deleted one");
	read_back(id2, "second", 6);

	/* Deleted while this process writes: its own eviction (the share
	 * full) takes the segment it had open, which others had filled. */
	ok(another_appends(seg1, 300000) && another_appends(seg2, 1),
	    "another process fills the second segment and begins the third");
	archive_usage();
	share = archive_share(ARCHIVE_VERIFIED);
	__atomic_store_n(&archive.budget->used[ARCHIVE_VERIFIED], share - 100,
	    __ATOMIC_RELAXED);
	id3 = put(ARCHIVE_VERIFIED, "10.5.0.1", "third", 5, day + 2);
	ok(stat(seg1, &st) == -1 && stat(seg2, &st) == 0, "the full share "
	    "evicted the segment this process had open, not the newest");
	ok(id3 != 0 && SEG_OF(id3) == 2, "the record went again to a new "
	    "segment");
	read_back(id3, "third", 5);
	archive_usage();
}

/* Ids grow with time only within a class: the list is in the order the
 * records arrived, and --after a refused record still finds the verified
 * ones that came after it. */
static void
test_arrival_order(void)
{
	int64_t now = (int64_t)time(NULL);
	uint64_t a, b, c;
	json_t *list;
	size_t i, n, at_a = 0, at_b = 0, at_c = 0;

	a = put(ARCHIVE_VERIFIED, "127.0.0.1", "first", 5, now);
	b = put(ARCHIVE_UNVERIFIED, "127.0.0.9", "forged", 6, now);
	c = put(ARCHIVE_VERIFIED, "127.0.0.1", "third", 5, now);
	ok(a != 0 && b != 0 && c != 0, "a verified, a refused and a "
	    "verified record, in that order");
	ok(c < b, "... the last verified one's id below the refused one's "
	    "(ids are per class)");
	archive_list(0, 100000, &list);
	n = json_array_size(list);
	for (i = 0; i < n; i++) {
		uint64_t id = (uint64_t)json_integer_value(json_object_get(
		    json_array_get(list, i), "id"));

		at_a = id == a ? i + 1 : at_a;
		at_b = id == b ? i + 1 : at_b;
		at_c = id == c ? i + 1 : at_c;
	}
	ok(at_a && at_b && at_c && at_a < at_b && at_b < at_c,
	    "listed in the order they arrived (%zu, %zu, %zu)", at_a, at_b,
	    at_c);
	json_decref(list);
	archive_list(b, 100, &list);
	ok(json_array_size(list) == 1 && (uint64_t)json_integer_value(
	    json_object_get(json_array_get(list, 0), "id")) == c,
	    "after the refused one: the verified one that came next");
	json_decref(list);
	archive_list(c, 100, &list);
	is_int(json_array_size(list), 0, "after the last: nothing");
	json_decref(list);
}

static void
seg_path(uint64_t id, char *out, size_t cap)
{
	struct archive_segid sg;
	char name[40];

	archive_id_segment(id, &sg);
	archive_segment_name(&sg, name, sizeof(name));
	snprintf(out, cap, "%s-archive/seg/%s", db, name);
}

static void
set_usec(uint64_t id, uint32_t usec)
{
	char path[400];
	unsigned char head[8], *buf;
	uint32_t n, sum;
	off_t off = (off_t)archive_id_offset(id);
	int fd;

	seg_path(id, path, sizeof(path));
	fd = open(path, O_RDWR);
	if (pread(fd, head, 8, off) != 8)
		diag("pread");
	n = (uint32_t)head[4] << 24 | head[5] << 16 | head[6] << 8 | head[7];
	buf = malloc(n);
	if (pread(fd, buf, n, off) != (ssize_t)n)
		diag("pread");
	archive_be(buf + ARCHIVE_USEC_AT, usec, 3);
	sum = archive_fnv(buf + 12, n - 12, ARCHIVE_FNV_SEED);
	archive_be(buf + 8, sum, 4);
	if (pwrite(fd, buf, n, off) != (ssize_t)n)
		diag("pwrite");
	free(buf);
	close(fd);
}

static int
listed(json_t *list, uint64_t id)
{
	size_t i;

	for (i = 0; i < json_array_size(list); i++)
		if ((uint64_t)json_integer_value(json_object_get(
		    json_array_get(list, i), "id")) == id)
			return 1;
	return 0;
}

/* A record received in the last second of day D but written 2.5 s later
 * (00:00:01.5 of D+1), and one received at 00:00:00 of D+1, written at
 * 00:00:00.2: listed after the first, page by page too. */
static void
test_midnight(void)
{
	int64_t d = NOW / 86400 + 5;
	uint64_t p, a, b;
	json_t *list;

	p = put(ARCHIVE_VERIFIED, "127.0.0.1", "p", 1, d * 86400 + 100);
	a = put(ARCHIVE_VERIFIED, "127.0.0.1", "a", 1, (d + 1) * 86400 - 1);
	b = put(ARCHIVE_VERIFIED, "127.0.0.1", "b", 1, (d + 1) * 86400);
	ok(p && a && b, "three records (day D, end of D, start of D+1)");
	set_usec(p, 1000);
	set_usec(a, 2500000);	/* written 2.5 s after its second began */
	set_usec(b, 200000);	/* written 0.2 s after its second began */
	archive_list(p, 100, &list);
	ok(listed(list, a) && listed(list, b), "after p, all at once: a "
	    "and b (%zu)", json_array_size(list));
	json_decref(list);
	archive_list(p, 1, &list);
	ok(json_array_size(list) == 1 && listed(list, a), "page 1 of "
	    "size 1 after p: a");
	json_decref(list);
	archive_list(a, 100, &list);
	ok(listed(list, b), "page 2, after a: b must be there (%zu "
	    "listed)", json_array_size(list));
	json_decref(list);
}

/* A record torn by ENOSPC (its head says n bytes, fewer were written),
 * then genuine records, one whose body holds "PHA1" where the torn one
 * claims to end: the records in between are still listed. */
static void
test_torn_claims_more(void)
{
	int64_t at = (NOW / 86400 + 9) * 86400 + 10;
	char path[400], body[256];
	unsigned char torn[40];
	uint64_t r0, r1, r2, r3;
	off_t t, target;
	json_t *list;
	size_t i;
	int fd;
	unsigned char *m;
	struct stat st;
	uint32_t n;

	for (i = 0; i < sizeof(body); i += 4)
		memcpy(body + i, "PHA1", 4);
	r0 = put(ARCHIVE_VERIFIED, "127.0.0.1", "r0", 2, at);
	seg_path(r0, path, sizeof(path));
	fd = open(path, O_RDWR | O_APPEND);
	fstat(fd, &st);
	t = st.st_size;
	memset(torn, 0, sizeof(torn));
	memcpy(torn, "PHA1", 4);
	if (write(fd, torn, sizeof(torn)) != sizeof(torn))
		diag("write");
	close(fd);
	r1 = put(ARCHIVE_VERIFIED, "127.0.0.1", "r1 genuine", 10, at + 1);
	r2 = put(ARCHIVE_VERIFIED, "127.0.0.1", body, sizeof(body), at + 2);
	r3 = put(ARCHIVE_VERIFIED, "127.0.0.1", "r3", 2, at + 3);
	/* Where in r2's body a PHA1 is, at a 4-byte step from its start. */
	fd = open(path, O_RDWR);
	fstat(fd, &st);
	m = malloc(st.st_size);
	if (pread(fd, m, st.st_size, 0) != st.st_size)
		diag("pread");
	target = (off_t)archive_id_offset(r2) + 4;
	while (memcmp(m + target, "PHA1", 4) != 0)
		target++;
	target += 8;	/* well inside the body */
	n = (uint32_t)(target - t);
	archive_be(torn + 4, n, 4);
	if (pwrite(fd, torn, 8, t) != 8)
		diag("pwrite");
	close(fd);
	free(m);
	archive_list(r0, 100, &list);
	diag("torn at %lld claims %u bytes; r1 at %llu r2 at %llu r3 at %llu",
	    (long long)t, n, (unsigned long long)archive_id_offset(r1),
	    (unsigned long long)archive_id_offset(r2),
	    (unsigned long long)archive_id_offset(r3));
	ok(listed(list, r1), "r1 (after the torn record) listed");
	ok(listed(list, r2), "r2 listed");
	ok(listed(list, r3), "r3 listed");
	json_decref(list);
}

/* --after a record no longer kept (its segment pruned, evicted): listed
 * from the start of its day, so that nothing after it is missed. */
static void
test_after_gone(void)
{
	int64_t d = NOW / 86400 + 12;
	uint64_t o, p, q, r;
	char path[400];
	json_t *list;
	int rc;

	o = put(ARCHIVE_VERIFIED, "127.0.0.1", "o", 1, d * 86400 - 10);
	p = put(ARCHIVE_VERIFIED, "127.0.0.1", "p", 1, d * 86400 + 10);
	q = put(ARCHIVE_UNVERIFIED, "10.12.0.1", "q", 1, d * 86400 + 20);
	r = put(ARCHIVE_VERIFIED, "127.0.0.1", "r", 1, (d + 1) * 86400 + 5);
	seg_path(p, path, sizeof(path));
	ok(o && p && q && r && unlink(path) == 0,
	    "a record of day D-1, one of D, a refused one after it, one of "
	    "D+1; D's first one's segment removed");
	rc = archive_list(p, 100, &list);
	ok(rc == PH_OK && listed(list, q) && listed(list, r) &&
	    !listed(list, p) && !listed(list, o), "--after the record gone: "
	    "from the start of its day, the day before not (%zu)",
	    json_array_size(list));
	json_decref(list);
	archive_list(q, 100, &list);
	ok(listed(list, r) && !listed(list, q), "--after the refused one, "
	    "still kept: from the record after it");
	json_decref(list);
}

int
main(void)
{
	struct archive_limits lim;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(db, sizeof(db), "%s/payhook.mdb", dir);
	memset(&lim, 0, sizeof(lim));
	lim.days = 30;
	lim.max_mb = 4;
	lim.unverified_mb = 1;
	lim.unverified_per_minute = 20;
	lim.per_source = 5;
	if (!ok(archive_open(db, &lim) == PH_OK, "archive opens"))
		return done_testing();
	test_records();
	test_torn();
	test_budgets();
	test_prune_and_hints();
	test_others_append();
	test_deleted_under();
	test_arrival_order();
	test_midnight();
	test_torn_claims_more();
	test_after_gone();
	archive_close();
	th_scratch_remove(dir);
	return done_testing();
}
