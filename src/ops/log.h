/* One-line logging to stderr, which the web server keeps in its error log. */
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

void log_init(const char *ident, enum log_level level);
void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug"; -1 if none. */
int log_level_parse(const char *s);
/*
 * Every line is key=value pairs: ts, level, prog, pid, then either
 * msg="free text" (log_msg) or event=NAME and the caller's pairs (log_kv).
 */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* fmt yields pairs "k=v k=v"; values that may hold spaces or bytes from a
 * request go through log_value() first. */
void log_kv(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A value fit for a log line: as is when plain, else double-quoted with
 * \" \\ and \xHH escapes; truncated to cap.  Returns out. */
const char *log_value(const char *v, char *out, size_t cap);

#define log_err(...)	log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
