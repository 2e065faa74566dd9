/*
 * One-line logging to stderr, which the web server keeps where it keeps
 * its children's standard error (payhook.fcgi(8), LOGGING).
 */
#ifndef PH_LOG_H
#define PH_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL__MAX
};

enum log_format {
	LOG_FMT_LOGFMT,		/* key=value pairs */
	LOG_FMT_JSON,		/* one JSON object a line */
	LOG_FMT__MAX
};

void log_init(const char *ident, enum log_level level);
void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
/* Parses "error", "warn", "info", "debug"; -1 if none. */
int log_level_parse(const char *s);
/* Parses "logfmt", "json"; -1 if none. */
int log_format_parse(const char *s);

/*
 * The request being answered: from log_request_begin() to
 * log_request_end(), every line carries request_id=ID.
 */
void log_request_begin(const char *request_id);
void log_request_end(void);
/* The request's id, "" outside one. */
const char *log_request_id(void);

/*
 * Every line has, in order: ts, level, prog, pid, then either msg="free
 * text" (log_msg) or event=NAME (log_kv, struct log_line), then
 * request_id inside a request, then the fields.
 */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* fmt yields pairs "k=v k=v"; values that may hold spaces or bytes from a
 * request go through log_value() first.  A plain value of digits is a
 * number in json. */
void log_kv(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A value fit for a log line: as is when plain, else double-quoted with
 * \" \\ and \xHH escapes; truncated to cap.  Returns out. */
const char *log_value(const char *v, char *out, size_t cap);

/* A line built field by field (keys are static strings), then written. */
#define LOG_FIELDS_MAX	24
struct log_line {
	enum log_level level;
	const char *event;
	size_t n;
	struct {
		const char *key;
		int kind;		/* string, number, or none ("-", null) */
		size_t off;		/* of the value in text */
	} f[LOG_FIELDS_MAX];
	char text[8192];		/* keys and values, each value cut to
					 * LOG_VALUE_MAX bytes */
	size_t used;
};
#define LOG_VALUE_MAX	1400

void log_line_init(struct log_line *l, enum log_level level,
    const char *event);
/* A string; "" or NULL is written "-" (logfmt) or null (json). */
void log_line_str(struct log_line *l, const char *key, const char *v);
void log_line_int(struct log_line *l, const char *key, long long v);
/* A number with prec digits after the point. */
void log_line_num(struct log_line *l, const char *key, double v, int prec);
/* The number v / 10^prec, written with prec digits after the point (up to
 * 18): a duration counted in integers, without a double's rounding. */
void log_line_fixed(struct log_line *l, const char *key, long long v,
    unsigned prec);
void log_line_write(struct log_line *l);

#define log_err(...)	log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
