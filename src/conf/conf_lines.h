/*
 * The configuration file's lines, handed to inih: lines up to
 * CONF_LINE_MAX bytes, a long key = value line cut into inih continuation
 * lines (conf_lines.c).
 */
#ifndef PAYHOOK_CONF_LINES_H
#define PAYHOOK_CONF_LINES_H

#include <stddef.h>
#include <stdio.h>

#define CONF_LINE_MAX		4096
#define CONF_LINE_MAX_TEXT	"4096"

/* Which piece of a physical line was handed out last. */
enum conf_piece {
	CONF_PIECE_WHOLE,	/* the whole line */
	CONF_PIECE_FIRST,	/* the first piece of a long key = value */
	CONF_PIECE_MORE,	/* a continuation, more to come */
	CONF_PIECE_LAST,	/* its last continuation */
};

struct conf_lines {
	FILE *fp;		/* the file, the caller's */
	int line;		/* the physical line last read, from 1 */
	enum conf_piece kind;
	const char *bad;	/* why the line last read is refused (it was
				 * handed out as a comment), or NULL */
	char *buf;
	size_t cap;
	const char *rest;	/* continuation still to hand out */
	size_t rest_len;
	int *map;		/* inih's line numbers to physical ones */
	size_t nmap, capmap;
};

/* An ini_reader: the next piece into str (num bytes), NULL at the end. */
char *conf_lines_read(struct conf_lines *l, char *str, int num);

/* The physical line of inih's line inih_line. */
int conf_lines_number(const struct conf_lines *l, int inih_line);

void conf_lines_free(struct conf_lines *l);

#endif
