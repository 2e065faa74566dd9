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
 *	28	u8 its class, then three zero bytes
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

#include "store/archive.h"

#define ARCHIVE_MAGIC		"PHA1"
#define ARCHIVE_HEAD		32
#define ARCHIVE_NSTRINGS	9
#define ARCHIVE_DIR_MAX		3800	/* leaves room for the names in it */
#define ARCHIVE_PATH_MAX	4096
#define ARCHIVE_SLOTS		1024
#define ARCHIVE_FNV_SEED	2166136261u

/* An id: the day (since 1970), the class, the offset in that segment. */
#define ARCHIVE_OFFSET_BITS	40
#define ARCHIVE_OFFSET_MAX	((uint64_t)1 << ARCHIVE_OFFSET_BITS)
#define archive_id_make(day, cls, off)					\
	((uint64_t)(day) << (ARCHIVE_OFFSET_BITS + 2) |			\
	(uint64_t)(cls) << ARCHIVE_OFFSET_BITS | (uint64_t)(off))
#define archive_id_day(id)	((int64_t)((id) >> (ARCHIVE_OFFSET_BITS + 2)))
#define archive_id_class(id)	((int)(((id) >> ARCHIVE_OFFSET_BITS) & 3))
#define archive_id_offset(id)	((id) & (ARCHIVE_OFFSET_MAX - 1))

/* Counters of the current minute, shared by every process (mmap). */
struct archive_budget {
	uint64_t total[ARCHIVE__MAX];
	uint64_t per_source[ARCHIVE_SLOTS];
	uint64_t per_profile[ARCHIVE_SLOTS];
	uint64_t hints[ARCHIVE_SLOTS];
};

struct archive_seg {
	int fd;
	int64_t day;
};

/* The process's archive (archive_open). */
struct archive_state {
	char dir[ARCHIVE_DIR_MAX];	/* "" when there is none */
	struct archive_limits lim;
	struct archive_seg seg[ARCHIVE__MAX];
	struct archive_budget *budget;
	uint64_t used[ARCHIVE__MAX];	/* bytes on disk per class */
	uint64_t dropped[ARCHIVE__MAX];
	int warned[ARCHIVE__MAX];
};

extern struct archive_state archive;

uint32_t archive_fnv(const void *p, size_t n, uint32_t h);
/* Writes v as n big-endian bytes at p. */
void archive_be(void *p, uint64_t v, size_t n);
/* "YYYYMMDD-c", the segment of a day and class. */
void archive_segment_name(int64_t day, enum archive_class c, char *out,
    size_t cap);
/* The share of the archive class c may fill, in bytes. */
uint64_t archive_share(enum archive_class c);
/* Adds up the bytes each class holds on disk. */
void archive_usage(uint64_t used[ARCHIVE__MAX]);

#endif
