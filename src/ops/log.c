/*
 * Logging: one line per call, written with a single write(2) of at most
 * LOG_LINE_MAX bytes, so that lines from the many payhook.fcgi processes
 * sharing one log never interleave, even through a pipe (PIPE_BUF).
 * A line is a list of fields, rendered as key=value pairs (logfmt) or as
 * a JSON object (json); a value too long for the line is shortened, so
 * that a JSON line is always whole.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/proc.h"
#include "ops/text.h"

#define LOG_LINE_MAX	4096

enum {
	LOG_KIND_STR,
	LOG_KIND_NUM,
	LOG_KIND_NONE,
};

static const char *log_ident = "payhook";
static enum log_level log_level = LOG_LVL_INFO;
static enum log_format log_format = LOG_FMT_LOGFMT;
static char log_rid[80];		/* the request's id, "" outside one */
static const char *const log_names[LOG_LVL__MAX] = {
	"error", "warn", "info", "debug",
};

static const char *const log_format_names[LOG_FMT__MAX] = {
	"logfmt", "json",
};

void
log_init(const char *ident, enum log_level level)
{
	log_ident = ident;
	log_level = level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

void
log_set_format(enum log_format format)
{
	if (format < LOG_FMT__MAX)
		log_format = format;
}

int
log_level_parse(const char *s)
{
	return text_name_find(log_names, LOG_LVL__MAX, s, 1);
}

int
log_format_parse(const char *s)
{
	return text_name_find(log_format_names, LOG_FMT__MAX, s, 0);
}

void
log_request_begin(const char *request_id)
{
	ph_strlcpy(log_rid, request_id, sizeof(log_rid));
}

void
log_request_end(void)
{
	log_rid[0] = '\0';
}

const char *
log_request_id(void)
{
	return log_rid;
}

/* At most max bytes of s into out (cap bytes, cap > 0), terminated: a
 * copy every line makes a dozen of, where snprintf costs too much. */
static void
log_copy(char *out, size_t cap, const char *s, size_t max)
{
	size_t n = strnlen(s, max < cap - 1 ? max : cap - 1);

	memcpy(out, s, n);
	out[n] = '\0';
}

const char *
log_value(const char *v, char *out, size_t cap)
{
	size_t o = 0, i;
	int plain = *v != '\0';

	for (i = 0; v[i] != '\0'; i++)
		if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f ||
		    v[i] == '"' || v[i] == '=' || v[i] == '\\')
			plain = 0;
	if (plain) {
		if (cap > 0)
			log_copy(out, cap, v, cap);
		return out;
	}
	if (cap < 3) {
		if (cap > 0)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (i = 0; v[i] != '\0' && o + 6 < cap; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < ' ' || c >= 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* ---- Lines of fields -------------------------------------------------- */

/* Copies n bytes (fewer when the text is full) into the line's text; its
 * offset, or -1 when there is no room left at all. */
static long
log_line_keep(struct log_line *l, const char *s, size_t n)
{
	size_t off = l->used;

	if (off >= sizeof(l->text))
		return -1;
	if (n > sizeof(l->text) - off - 1)
		n = sizeof(l->text) - off - 1;
	memcpy(l->text + off, s, n);
	l->text[off + n] = '\0';
	l->used = off + n + 1;
	return (long)off;
}

/* A field whose key and value are copied; its value's text is n bytes. */
static void
log_line_add(struct log_line *l, const char *key, int kind, const char *v,
    size_t n)
{
	long koff, voff;

	if (n > LOG_VALUE_MAX)
		n = LOG_VALUE_MAX;
	if (l->n == LOG_FIELDS_MAX ||
	    (koff = log_line_keep(l, key, strlen(key))) == -1 ||
	    (voff = log_line_keep(l, v, n)) == -1)
		return;
	l->f[l->n].key = l->text + koff;
	l->f[l->n].kind = kind;
	l->f[l->n].off = (size_t)voff;
	l->n++;
}

void
log_line_init(struct log_line *l, enum log_level level, const char *event)
{
	l->level = level;
	l->event = event;
	l->n = 0;
	l->used = 0;
}

void
log_line_str(struct log_line *l, const char *key, const char *v)
{
	if (v == NULL || *v == '\0')
		log_line_add(l, key, LOG_KIND_NONE, "", 0);
	else
		log_line_add(l, key, LOG_KIND_STR, v, strlen(v));
}

void
log_line_int(struct log_line *l, const char *key, long long v)
{
	char num[TEXT_INT_MAX];

	log_line_add(l, key, LOG_KIND_NUM, num, text_int(num, v));
}

void
log_line_num(struct log_line *l, const char *key, double v, int prec)
{
	char num[64];

	snprintf(num, sizeof(num), "%.*f", prec, v);
	log_line_add(l, key, LOG_KIND_NUM, num, strlen(num));
}

void
log_line_fixed(struct log_line *l, const char *key, long long v,
    unsigned prec)
{
	char digits[TEXT_INT_MAX + 20], num[TEXT_INT_MAX + 22];
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
	    (unsigned long long)v;
	size_t n = 0, len = 0, i;

	if (prec > 18)
		prec = 18;
	/* the digits of |v|, the last first, at least prec + 1 of them */
	do {
		digits[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0 || n <= prec);
	if (v < 0)
		num[len++] = '-';
	for (i = n; i > 0; i--) {
		if (i == prec)
			num[len++] = '.';
		num[len++] = digits[i - 1];
	}
	log_line_add(l, key, LOG_KIND_NUM, num, len);
}

/* The line being rendered: what does not fit is dropped and noted. */
struct log_out {
	char b[LOG_LINE_MAX];
	size_t len;
	int over;
};

static void
log_put(struct log_out *o, const char *s, size_t n)
{
	if (o->len + n > sizeof(o->b)) {
		o->over = 1;
		return;
	}
	memcpy(o->b + o->len, s, n);
	o->len += n;
}

static void
log_puts(struct log_out *o, const char *s)
{
	log_put(o, s, strlen(s));
}

/* A logfmt value, at most max bytes of it. */
static void
log_put_logfmt(struct log_out *o, int kind, const char *v, size_t max)
{
	char q[LOG_LINE_MAX], cut[LOG_LINE_MAX];
	size_t n;

	if (kind == LOG_KIND_NONE) {
		log_puts(o, "-");
		return;
	}
	/* A value that needs no quotes and is not cut, as most are: as it
	 * stands, not copied twice on the way. */
	for (n = 0; n < max && (unsigned char)v[n] > ' ' &&
	    (unsigned char)v[n] < 0x7f && v[n] != '"' && v[n] != '=' &&
	    v[n] != '\\'; n++)
		;
	if (n > 0 && v[n] == '\0') {
		log_put(o, v, n);
		return;
	}
	log_copy(cut, sizeof(cut), v, max);
	log_puts(o, log_value(cut, q, sizeof(q)));
}

/* A JSON string: UTF-8 as it is, control characters as \u00XX, a byte
 * that is not UTF-8 as the text \xHH (as in logfmt). */
static void
log_put_json_str(struct log_out *o, const char *v, size_t max)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t n = strlen(v), len;
	char esc[8];

	if (n > max)
		n = max;
	log_puts(o, "\"");
	while (n > 0) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			log_put(o, esc, 2);
			len = 1;
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			log_puts(o, esc);
			len = 1;
		} else if (*p < 0x80) {
			log_put(o, (const char *)p, 1);
			len = 1;
		} else if ((len = text_utf8_len(p, n)) > 0)
			log_put(o, (const char *)p, len);
		else {
			snprintf(esc, sizeof(esc), "\\\\x%02x", *p);
			log_puts(o, esc);
			len = 1;
		}
		p += len;
		n -= len;
	}
	log_puts(o, "\"");
}

static void
log_put_json(struct log_out *o, int kind, const char *v, size_t max)
{
	if (kind == LOG_KIND_NONE)
		log_puts(o, "null");
	else if (kind == LOG_KIND_NUM)
		log_puts(o, v);
	else
		log_put_json_str(o, v, max);
}

/* One field, " key=value" or ",\"key\":value". */
static void
log_put_field(struct log_out *o, const char *key, int kind, const char *v,
    size_t max)
{
	if (log_format == LOG_FMT_JSON) {
		log_puts(o, ",");
		log_put_json_str(o, key, 64);
		log_puts(o, ":");
		log_put_json(o, kind, v, max);
	} else {
		log_puts(o, " ");
		log_puts(o, key);
		log_puts(o, "=");
		log_put_logfmt(o, kind, v, max);
	}
}

/* The whole line, every string value cut to max bytes. */
static void
log_render(struct log_out *o, const struct log_line *l, const char *ts,
    size_t max)
{
	char head[256], pid[TEXT_INT_MAX];
	size_t i = 0;

	o->len = 0;
	o->over = 0;
	text_int(pid, (long long)proc_pid());
	if (log_format == LOG_FMT_JSON) {
		text_cat(head, sizeof(head), "{\"ts\":\"", ts, "\",\"level\":\"",
		    log_names[l->level], "\",\"prog\":", (char *)NULL);
		log_puts(o, head);
		log_put_json_str(o, log_ident, 64);
		text_cat(head, sizeof(head), ",\"pid\":", pid, (char *)NULL);
		log_puts(o, head);
	} else {
		text_cat(head, sizeof(head), "ts=", ts, " level=",
		    log_names[l->level], " prog=", log_ident, " pid=", pid,
		    (char *)NULL);
		log_puts(o, head);
	}
	/* What the line is: its event, or its message. */
	if (l->event != NULL)
		log_put_field(o, "event", LOG_KIND_STR, l->event, 64);
	else if (l->n > 0) {
		log_put_field(o, l->f[0].key, l->f[0].kind,
		    l->text + l->f[0].off, max);
		i = 1;
	}
	if (log_rid[0] != '\0')
		log_put_field(o, "request_id", LOG_KIND_STR, log_rid, 80);
	for (; i < l->n; i++)
		log_put_field(o, l->f[i].key, l->f[i].kind,
		    l->text + l->f[i].off, max);
	if (log_format == LOG_FMT_JSON)
		log_puts(o, "}");
	log_puts(o, "\n");
}

void
log_line_write(struct log_line *l)
{
	struct log_out o;
	char ts[TEXT_TIME_MAX];
	size_t max;
	int saved = errno;

	if (l->level > log_level)
		return;
	text_time((int64_t)time(NULL), ts);
	for (max = LOG_VALUE_MAX; ; max /= 2) {
		log_render(&o, l, ts, max);
		if (!o.over || max < 16)
			break;
	}
	if (o.over) {
		/* Only when the keys alone do not fit: cut, and end it. */
		o.len = sizeof(o.b) - 1;
		o.b[o.len++] = '\n';
	}
	(void)!write(STDERR_FILENO, o.b, o.len);
	errno = saved;
}

static void log_kv_fields(struct log_line *l, const char *pairs);

/* One line from fmt: its text as msg, or (event set) as key=value
 * fields of that event. */
static void
log_vline(enum log_level level, const char *event, const char *fmt,
    va_list ap)
{
	struct log_line l;
	char text[1400];

	if (level > log_level)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	log_line_init(&l, level, event);
	if (event == NULL)
		log_line_add(&l, "msg", LOG_KIND_STR, text, strlen(text));
	else
		log_kv_fields(&l, text);
	log_line_write(&l);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(level, NULL, fmt, ap);
	va_end(ap);
}

/* Is s (n bytes) a number as JSON writes one: digits, maybe a point and
 * more digits? */
static int
log_is_number(const char *s, size_t n)
{
	size_t i = 0, digits = 0;

	if (n > 0 && s[0] == '-')
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (digits == 0 || (digits > 1 && s[s[0] == '-'] == '0'))
		return 0;
	if (i < n && s[i] == '.') {
		for (i++, digits = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits == 0)
			return 0;
	}
	return i == n;
}

/*
 * Takes "k=v k=\"q u\"" apart into fields, undoing log_value()'s quoting,
 * so that either format writes them.
 */
static void
log_kv_fields(struct log_line *l, const char *s)
{
	char key[64], val[1400];
	size_t k, v;

	while (*s != '\0') {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		for (k = 0; *s != '\0' && *s != '=' && *s != ' '; s++)
			if (k + 1 < sizeof(key))
				key[k++] = *s;
		key[k] = '\0';
		if (*s != '=') {	/* a word alone: kept as text */
			log_line_add(l, "text", LOG_KIND_STR, key, k);
			continue;
		}
		s++;
		v = 0;
		if (*s == '"') {
			for (s++; *s != '\0' && *s != '"'; s++) {
				char c = *s;
				int hi, lo;

				if (c == '\\' && s[1] == 'x' &&
				    (hi = text_hexval(s[2])) >= 0 &&
				    (lo = text_hexval(s[3])) >= 0) {
					c = (char)(hi * 16 + lo);
					s += 3;
				} else if (c == '\\' && s[1] != '\0')
					c = *++s;
				if (v + 1 < sizeof(val) && c != '\0')
					val[v++] = c;
			}
			if (*s == '"')
				s++;
			val[v] = '\0';
			log_line_add(l, key, LOG_KIND_STR, val, v);
			continue;
		}
		for (; *s != '\0' && *s != ' '; s++)
			if (v + 1 < sizeof(val))
				val[v++] = *s;
		val[v] = '\0';
		if (v == 1 && val[0] == '-')
			log_line_add(l, key, LOG_KIND_NONE, "", 0);
		else
			log_line_add(l, key, log_is_number(val, v) ?
			    LOG_KIND_NUM : LOG_KIND_STR, val, v);
	}
}

void
log_kv(enum log_level level, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(level, event, fmt, ap);
	va_end(ap);
}
