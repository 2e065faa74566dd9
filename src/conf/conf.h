/*
 * The configuration file: INI read with inih.  conf_open() reads it, loads
 * the plugins its profiles name, reads every file they name, and makes each
 * profile's plugin context; a conf is either whole or not made at all.
 */
#ifndef PH_CONF_H
#define PH_CONF_H

#include <stddef.h>

#include <payhook/provider.h>

#include "plugin/loader.h"
#include "store/archive.h"

#define CONF_ERRS_MAX	64
#define CONF_ERR_LEN	384

/* Problems found, one line each, for `payhook check` and the log. */
struct conf_errs {
	char line[CONF_ERRS_MAX][CONF_ERR_LEN];
	size_t n;
	size_t dropped;		/* problems beyond CONF_ERRS_MAX */
	size_t nwarn;		/* of which warnings, not errors */
	int warning[CONF_ERRS_MAX];
};

/* A problem added to e (NULL: none kept): an error, or a warning that
 * does not stop payhook from starting. */
void conf_note(struct conf_errs *e, int warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define conf_err(e, ...)	conf_note((e), 0, __VA_ARGS__)
#define conf_warn(e, ...)	conf_note((e), 1, __VA_ARGS__)
/* Errors, not counting warnings. */
size_t conf_errs_count(const struct conf_errs *e);

struct conf_raw;		/* a key as written, with its line */

#define CONF_SCHEDULE_MAX 32

struct conf_profile {
	char *name;			/* "wxshop" from [profile.wxshop] */
	char *plugin_file;		/* `plugin =`, a file in plugin_dir */
	/* Keys the core itself reads from a profile. */
	char *api_base;			/* provider endpoints, no trailing '/' */
	int allow_insecure_http;	/* api_base may be plain http:// */
	long schedule[CONF_SCHEDULE_MAX];	/* query_schedule, seconds */
	size_t nschedule;
	char *client_cert_file;		/* TLS client certificate, or NULL */
	char *client_key_file;		/* its key (secret), or NULL */
	/* Their contents as checked (owned, NUL-terminated): what libcurl
	 * is given, so a file changed or replaced by a link later is not
	 * what a call presents. */
	struct ph_blob client_cert, client_key;
	const struct loader_plugin *plugin;
	struct ph_conf pconf;		/* values handed to the plugin */
	struct ph_conf_value *values;	/* owned; parallel to conf_keys */
	struct conf_file *files;	/* owned: every file read for it */
	size_t nfiles;
	void *ctx;			/* the plugin's context */
	struct conf_raw *raw;		/* owned: keys as written */
	size_t nraw;
	int line;			/* where the section starts */
};

#define CONF_PUSH_MAX 8

/* An endpoint of the merchant's that outbox events are pushed to. */
struct conf_push {
	char *name;			/* from [push.NAME] */
	char *url;
	char *secret_file;
	unsigned char *secret;		/* the HMAC key; owned */
	size_t secret_len;
	int allow_insecure_http;
	char *signature_header;		/* default X-Payhook-Signature */
	int line;
	int secret_line;		/* of secret_file, for its errors */
};

struct conf {
	char *path;			/* as given */
	char *dir;			/* folder relative paths start from */
	char *db_path;			/* absolute or relative to cwd, resolved */
	unsigned long map_size_mb;
	char *plugin_dir;
	int plugin_dir_set;		/* given, not the default */
	char *api_token_file;
	char *metrics_token_file;	/* optional */
	unsigned char *metrics_token;	/* secret: /metrics's bearer token,
					 * NULL when /metrics is open */
	size_t metrics_token_len;
	unsigned char *api_token;	/* secret: the bearer token */
	size_t api_token_len;
	size_t max_body_bytes;
	char *base_path;		/* "/" or "/prefix" without trailing '/' */
	char *ca_file;			/* CA bundle for provider TLS, or NULL */
	unsigned long http_timeout_s;	/* whole outbound call */
	unsigned long http_connect_timeout_s;
	unsigned long sweep_concurrency; /* queries in flight at once */
	unsigned long lease_s;		/* how long a sweeper owns an order */
	unsigned long attempt_hold_s;	/* a new attempt waits this long
					 * after the last unsettled one */
	unsigned long archive_days;	/* notification archive retention;
					 * 0: no archive */
	unsigned long archive_map_mb;	/* the archive's largest size */
	unsigned long archive_unverified_mb;	/* each unverified class's
						 * share; 0: a tenth */
	unsigned long archive_unverified_per_minute;
	unsigned long archive_unverified_per_source;
	unsigned long hint_per_minute;	/* queries an unverified notification
					 * may trigger, per profile */
	unsigned long idempotency_ttl_s; /* Idempotency-Keys kept this long */
	int log_level;
	int log_format;			/* enum log_format */
	int store_kind;			/* enum store_kind: lmdb (default) */
	char *pg_conninfo;		/* store = postgresql: libpq's
					 * connection string or URI */
	char *pg_password_file;		/* optional */
	char *pg_password;		/* secret: its text, or NULL */
	double ready_max_fill;		/* /readyz fails above this share of
					 * the map in use */
	/* The lines of the [core] keys that name files, for their errors
	 * (0: not given). */
	int api_token_line, metrics_token_line, pg_password_line, ca_file_line;
	struct conf_profile *profiles;
	size_t nprofiles;
	struct conf_push pushes[CONF_PUSH_MAX];
	size_t npushes;
	struct loader loader;
};

/*
 * Reads path and everything it names.  Returns 0 and sets *out (caller
 * frees with conf_free) when there is no error; otherwise returns -1 with
 * the problems in errs.  Warnings never fail it.
 */
int conf_open(const char *path, struct conf **out, struct conf_errs *errs);
void conf_free(struct conf *c);

const struct conf_profile *conf_profile(const struct conf *c,
    const char *name);

/* The archive's limits as configured. */
void conf_archive_limits(const struct conf *c, struct archive_limits *lim);
struct store_spec;
/* Where c's store is (the strings stay c's). */
void conf_store_spec(const struct conf *c, struct store_spec *spec);

/* p made absolute against the config file's folder (caller frees). */
char *conf_path(const struct conf *c, const char *p);

/*
 * Parses a schedule like "15s,30s,1m,3m,10m,1h" into seconds; -1 with a
 * reason in why (64 bytes) when malformed.
 */
int conf_parse_schedule(const char *s, long *out, size_t max, size_t *n,
    char *why, size_t whylen);

/* Profile names: 1-32 of [a-z0-9_-]. */
int conf_name_valid(const char *s, size_t len);

#endif
