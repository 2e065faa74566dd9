/*
 * The archive's insides, shared by archive.c (writing) and
 * archive_read.c (reading, pruning).  Not for use elsewhere.
 *
 * A record, every integer big-endian:
 *	0	"PHA1"
 *	4	u32 its whole length, header included
 *	8	u32 FNV-1a of bytes 12 to the end (a torn or stray record
 *		fails it and is skipped)
 *	12	i64 when it was received (unix seconds)
 *	20	u64 the id it replays, or 0
 *	28	u8 its class
 *	29	u24 when it was written, in microseconds from the start of
 *		the second it was received in, at most ARCHIVE_USEC_MAX (0 in
 *		records of builds before it): with that second, the order in
 *		which records were written, across classes
 *	32	nine strings, each u16 length and bytes: source, profile,
 *		provider, method, content type, verdict, reason, order id,
 *		outcome
 *	...	u32 number of headers; each: u16 name length, name, u32 value
 *		length, value
 *	...	u32 body length, body
 */
#ifndef PH_ARCHIVE_INT_H
#define PH_ARCHIVE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/archive.h"

#define ARCHIVE_MAGIC		"PHA1"
#define ARCHIVE_HEAD		32
#define ARCHIVE_USEC_AT		29
#define ARCHIVE_USEC_MAX	0xffffffu
#define ARCHIVE_NSTRINGS	9
#define ARCHIVE_DIR_MAX		3800	/* leaves room for the names in it */
#define ARCHIVE_PATH_MAX	4096
#define ARCHIVE_SLOTS		1024
#define ARCHIVE_FNV_SEED	2166136261u

/*
 * A segment: a day (since 1970), a class, and its number that day (a
 * class's day goes on in a new segment once one holds a sixteenth of the
 * class's share).  An id: the segment and the offset in it, so that ids
 * grow with time within a class.
 */
struct archive_segid {
	int64_t day;
	enum archive_class class;
	unsigned seq;
};

#define ARCHIVE_OFFSET_BITS	32
#define ARCHIVE_SEQ_BITS	10
#define ARCHIVE_OFFSET_MAX	((uint64_t)1 << ARCHIVE_OFFSET_BITS)
#define ARCHIVE_SEQ_MAX		((1u << ARCHIVE_SEQ_BITS) - 1)
#define archive_id_make(sg, off)					\
	((uint64_t)(sg)->day << (ARCHIVE_OFFSET_BITS + ARCHIVE_SEQ_BITS + 2) | \
	(uint64_t)(sg)->class << (ARCHIVE_OFFSET_BITS + ARCHIVE_SEQ_BITS) | \
	(uint64_t)(sg)->seq << ARCHIVE_OFFSET_BITS | (uint64_t)(off))
#define archive_id_offset(id)	((id) & (ARCHIVE_OFFSET_MAX - 1))

/* The segment an id is in. */
void archive_id_segment(uint64_t id, struct archive_segid *sg);

/* Counters shared by every process (mmap). */
struct archive_budget {
	uint64_t used[ARCHIVE__MAX];	/* bytes each class holds on disk */
	uint64_t dropped[ARCHIVE__MAX];	/* records not kept, ever */
	uint64_t total[ARCHIVE__MAX];	/* this minute's, per class */
	uint64_t per_source[ARCHIVE_SLOTS];
	uint64_t per_profile[ARCHIVE_SLOTS];
	uint64_t hints[ARCHIVE_SLOTS];
	/* Segments deleted, ever (eviction, pruning): moved before each
	 * unlink, so a process that appended to its open segment and sees it
	 * unmoved knows the record is in a file that is still there. */
	uint64_t removals;
	/* When appends began to fail, and why (0: they do not); the next
	 * one that succeeds clears it.  Last: an older, shorter file grows. */
	uint64_t failed_since;
	int32_t failed_errno;
};

struct archive_seg {
	int fd;
	struct archive_segid id;
	uint64_t end;		/* where it ended when this process last looked:
				 * at open, then after each of its own records */
	uint64_t removals;	/* the budget's removals when fd was last
				 * known to name a segment still there */
};

/* The process's archive (archive_open). */
struct archive_state {
	char dir[ARCHIVE_DIR_MAX];	/* "" when there is none */
	struct archive_limits lim;
	struct archive_seg seg[ARCHIVE__MAX];
	struct archive_budget *budget;
	int warned[ARCHIVE__MAX];
};

extern struct archive_state archive;

uint32_t archive_fnv(const void *p, size_t n, uint32_t h);
/* Writes v as n big-endian bytes at p. */
void archive_be(void *p, uint64_t v, size_t n);
/* "YYYYMMDD-c-NNNN", the name of a segment. */
void archive_segment_name(const struct archive_segid *sg, char *out,
    size_t cap);
/* The most a segment holds before its class goes on in the next. */
uint64_t archive_segment_max(enum archive_class c);
/* The number of the last segment of a class's day (0 when none). */
unsigned archive_last_seq(int64_t day, enum archive_class c);
/* Deletes the class's oldest segment that nobody appends to any more (of
 * an earlier day than keep, or full), never the class's newest; 0 when
 * one went, -1 when there is none to delete. */
int archive_evict_oldest(enum archive_class c, const struct archive_segid *keep);
/* Before a segment file is deleted: every process's open segment may be
 * it (archive_put looks again). */
void archive_removing(void);
/* The share of the archive class c may fill, in bytes. */
uint64_t archive_share(enum archive_class c);
/* Counts again the bytes each class holds on disk, for every process. */
void archive_usage(void);
/* A segment file on disk. */
struct archive_segfile {
	struct archive_segid id;
	off_t size;
	char name[40];
};
/* Every segment, in id order (*out the caller's to free). */
int archive_segments(struct archive_segfile **out, size_t *n);
/* The segment a file name names; 0, or -1 when it names none. */
int archive_parse_name(const char *name, struct archive_segid *sg);

#endif
