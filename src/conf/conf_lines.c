/*
 * The configuration file's lines, as inih reads them.
 *
 * The inih Debian ships is built with lines of at most 200 bytes, and a
 * longer line fails the whole file.  payhook's lines may be up to
 * CONF_LINE_MAX bytes (an api_base, a list of certificate files): a longer
 * key = value line is handed to inih as its first piece and continuation
 * lines, inih's own multi-line form (a line that starts with white space
 * continues the previous value), cut where no white space is on either
 * side of the cut, which inih's trimming would lose.  The caller joins the
 * pieces (conf_lines_kind() says which piece a handler call is for).
 * Lines over CONF_LINE_MAX bytes are refused, named by their number.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_lines.h"

static int
conf_lines_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Remembers that inih's line n is physical line l->line. */
static void
conf_lines_map(struct conf_lines *l)
{
	int *nm;

	if (l->nmap == l->capmap) {
		size_t cap = l->capmap ? 2 * l->capmap : 64;

		if ((nm = realloc(l->map, cap * sizeof(*nm))) == NULL)
			return;		/* numbers then fall back to inih's */
		l->map = nm;
		l->capmap = cap;
	}
	l->map[l->nmap++] = l->line;
}

/*
 * The length of the next piece of s (len bytes, more than max): at most
 * max bytes, with no white space on either side of the cut and no ';' or
 * '#' after it (a continuation line starting with one is a comment to
 * inih, and the piece would be lost); 0 when there is no such place.
 */
static size_t
conf_lines_cut(const char *s, size_t len, size_t max)
{
	size_t n;

	for (n = max < len ? max : len; n > 0; n--)
		if (n == len || (!conf_lines_space(s[n - 1]) &&
		    !conf_lines_space(s[n]) && s[n] != ';' && s[n] != '#'))
			return n;
	return 0;
}

/*
 * The length of a long key = value line s (len bytes) without its inline
 * comment and the white space before it, as inih strips one from a line
 * it reads whole: a ';' after white space in the value, the value's first
 * character not counting.  inih would strip it from each piece of the
 * line instead, and keep the tail of a comment cut in two.
 */
static size_t
conf_lines_uncomment(const char *s, size_t len)
{
	size_t i = strcspn(s, "=:");
	int was_space = 0;

	if (i >= len)
		return len;
	for (i++; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	for (; i < len; i++) {
		if (was_space && s[i] == ';')
			break;
		was_space = conf_lines_space(s[i]);
	}
	while (i > 0 && conf_lines_space(s[i - 1]))
		i--;
	return i;
}

/* Hands out a piece: s (n bytes) after pre, and a newline. */
static char *
conf_lines_give(char *str, int num, const char *pre, const char *s,
    size_t n)
{
	snprintf(str, (size_t)num, "%s%.*s\n", pre, (int)n, s);
	return str;
}

char *
conf_lines_read(struct conf_lines *l, char *str, int num)
{
	size_t max, n, len;
	const char *s;
	ssize_t got;

	l->bad = NULL;
	/* Room for a leading space, the newline and the NUL. */
	max = num > 8 ? (size_t)num - 3 : 1;
	if (l->rest_len > 0) {
		n = conf_lines_cut(l->rest, l->rest_len, max);
		conf_lines_map(l);
		conf_lines_give(str, num, " ", l->rest, n);
		l->rest += n;
		l->rest_len -= n;
		l->kind = l->rest_len > 0 ? CONF_PIECE_MORE : CONF_PIECE_LAST;
		return str;
	}
	if ((got = getline(&l->buf, &l->cap, l->fp)) == -1)
		return NULL;
	l->line++;
	conf_lines_map(l);
	l->kind = CONF_PIECE_WHOLE;
	len = (size_t)got;
	/* A UTF-8 byte order mark (an editor's) is no part of the first
	 * line: inih skips it, and the section check must too. */
	if (l->line == 1 && len >= 3 && memcmp(l->buf, "\xEF\xBB\xBF", 3) ==
	    0) {
		memmove(l->buf, l->buf + 3, len - 3);
		len -= 3;
	}
	while (len > 0 && (l->buf[len - 1] == '\n' || l->buf[len - 1] == '\r'))
		len--;
	l->buf[len] = '\0';
	if (memchr(l->buf, '\0', len) != NULL) {
		/* inih would read the line up to it, the rest unseen. */
		l->bad = "a NUL byte in the line";
		return conf_lines_give(str, num, "", "#", 1);
	}
	if (len > CONF_LINE_MAX) {
		l->bad = "line too long (more than " CONF_LINE_MAX_TEXT
		    " bytes)";
		return conf_lines_give(str, num, "", "#", 1);
	}
	if (len <= max)
		return conf_lines_give(str, num, "", l->buf, len);
	/* A long comment or blank line: nothing for inih to read. */
	s = l->buf + strspn(l->buf, " \t");
	if (*s == '\0' || *s == ';' || *s == '#')
		return conf_lines_give(str, num, "", "", 0);
	if ((len = conf_lines_uncomment(l->buf, len)) <= max)
		return conf_lines_give(str, num, "", l->buf, len);
	l->buf[len] = '\0';
	/* A long line: only key = value may be one; its first piece must
	 * hold the key and the '='. */
	n = strcspn(l->buf, "=:");
	if (l->buf[0] == '[' || n >= max) {
		l->bad = "line too long for a section or a key (a value may "
		    "be up to " CONF_LINE_MAX_TEXT " bytes)";
		return conf_lines_give(str, num, "", "#", 1);
	}
	if ((n = conf_lines_cut(l->buf, len, max)) == 0 ||
	    conf_lines_cut(l->buf + n, len - n, max) == 0) {
		l->bad = "line too long, with a long run of white space";
		return conf_lines_give(str, num, "", "#", 1);
	}
	l->rest = l->buf + n;
	l->rest_len = len - n;
	/* Every later cut must exist too, or the value would be lost. */
	{
		size_t left = l->rest_len, k;

		s = l->rest;
		while (left > 0 && (k = conf_lines_cut(s, left, max)) > 0) {
			s += k;
			left -= k;
		}
		if (left > 0) {
			l->rest_len = 0;
			l->bad = "line too long, with a long run of white space";
			return conf_lines_give(str, num, "", "#", 1);
		}
	}
	l->kind = CONF_PIECE_FIRST;
	return conf_lines_give(str, num, "", l->buf, n);
}

int
conf_lines_number(const struct conf_lines *l, int inih_line)
{
	if (inih_line >= 1 && (size_t)inih_line <= l->nmap)
		return l->map[inih_line - 1];
	return inih_line;
}

void
conf_lines_free(struct conf_lines *l)
{
	free(l->buf);
	free(l->map);
	memset(l, 0, sizeof(*l));
}
