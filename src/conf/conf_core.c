/*
 * The [core] section of the configuration file (conf_open reads the file
 * and hands each [core] key here).
 */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/conf_suggest.h"
#include "ops/log.h"
#include "ops/text.h"
#include "store/store.h"

enum conf_core_key {
	CORE_DB_PATH,
	CORE_MAP_SIZE_MB,
	CORE_PLUGIN_DIR,
	CORE_API_TOKEN_FILE,
	CORE_MAX_BODY_BYTES,
	CORE_BASE_PATH,
	CORE_LOG_LEVEL,
	CORE_CA_FILE,
	CORE_HTTP_TIMEOUT_S,
	CORE_HTTP_CONNECT_TIMEOUT_S,
	CORE_SWEEP_CONCURRENCY,
	CORE_LEASE_S,
	CORE_ATTEMPT_HOLD_S,
	CORE_ARCHIVE_DAYS,
	CORE_ARCHIVE_MAP_MB,
	CORE_HINT_PER_MINUTE,
	CORE_IDEMPOTENCY_TTL_S,
	CORE_METRICS_TOKEN_FILE,
	CORE_ARCHIVE_UNVERIFIED_MB,
	CORE_ARCHIVE_UNVERIFIED_PER_MINUTE,
	CORE_ARCHIVE_UNVERIFIED_PER_SOURCE,
	CORE_READY_MAX_FILL,
	CORE_LOG_FORMAT,
	CORE_STORE,
	CORE_PG_CONNINFO,
	CORE_PG_PASSWORD_FILE,
	CORE__MAX
};

static const char *const conf_core_names[CORE__MAX] = {
	"db_path", "map_size_mb", "plugin_dir", "api_token_file",
	"max_body_bytes", "base_path", "log_level", "ca_file",
	"http_timeout_s", "http_connect_timeout_s", "sweep_concurrency",
	"lease_s", "attempt_hold_s", "archive_days", "archive_map_mb",
	"hint_per_minute", "idempotency_ttl_s", "metrics_token_file",
	"archive_unverified_mb", "archive_unverified_per_minute",
	"archive_unverified_per_source", "ready_max_fill", "log_format",
	"store", "pg_conninfo", "pg_password_file",
};

/* Whole-number core keys: where each goes and its range. */
static unsigned long *
conf_core_number(struct conf *c, int k, unsigned long *min,
    unsigned long *max)
{
	switch (k) {
	case CORE_HTTP_TIMEOUT_S:
		*min = 1;
		*max = 600;
		return &c->http_timeout_s;
	case CORE_HTTP_CONNECT_TIMEOUT_S:
		*min = 1;
		*max = 120;
		return &c->http_connect_timeout_s;
	case CORE_SWEEP_CONCURRENCY:
		*min = 1;
		*max = 256;
		return &c->sweep_concurrency;
	case CORE_LEASE_S:
		*min = 5;
		*max = 3600;
		return &c->lease_s;
	case CORE_ATTEMPT_HOLD_S:
		*min = 0;
		*max = 3600;
		return &c->attempt_hold_s;
	case CORE_ARCHIVE_DAYS:
		*min = 0;
		*max = 3650;
		return &c->archive_days;
	case CORE_ARCHIVE_MAP_MB:
		*min = 1;
		*max = 1024UL * 1024;
		return &c->archive_map_mb;
	case CORE_HINT_PER_MINUTE:
		*min = 0;
		*max = 10000;
		return &c->hint_per_minute;
	case CORE_IDEMPOTENCY_TTL_S:
		*min = 60;
		*max = 604800;
		return &c->idempotency_ttl_s;
	case CORE_ARCHIVE_UNVERIFIED_MB:
		*min = 1;
		*max = 1024UL * 1024;
		return &c->archive_unverified_mb;
	case CORE_ARCHIVE_UNVERIFIED_PER_MINUTE:
		*min = 0;
		*max = 1000000;
		return &c->archive_unverified_per_minute;
	case CORE_ARCHIVE_UNVERIFIED_PER_SOURCE:
		*min = 0;
		*max = 1000000;
		return &c->archive_unverified_per_source;
	default:
		return NULL;
	}
}



/* A decimal fraction above 0 and at most 1 ("0.95", "1"); -1 if not. */
static int
conf_parse_fraction(const char *s, double *out)
{
	double v = 0, scale = 1;
	const char *p = s;
	int digits = 0;

	for (; *p >= '0' && *p <= '9'; p++, digits++)
		v = v * 10 + (*p - '0');
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			v += (*p - '0') * (scale /= 10);
	if (*p != '\0' || digits == 0 || digits > 12 || !(v > 0 && v <= 1))
		return -1;
	*out = v;
	return 0;
}

/* A key that must not be empty, copied to *dst; 0, or -1 with the
 * mistake recorded. */
static int
conf_core_text(struct conf_errs *errs, int line, const char *key,
    const char *val, char **dst)
{
	if (*val == '\0') {
		conf_err(errs, "line %d: %s is empty", line, key);
		return -1;
	}
	if (conf_set_str(dst, val) == -1) {
		conf_err(errs, "out of memory");
		return -1;
	}
	return 0;
}

void
conf_core(struct conf *c, struct conf_errs *errs, int line, const char *key,
    const char *val)
{
	unsigned long n;
	int k, lvl;

	k = text_name_find(conf_core_names, CORE__MAX, key, 0);
	if (k < 0) {
		const char *near = conf_suggest(key, conf_core_names,
		    CORE__MAX);

		conf_err(errs, "line %d: unknown key \"%s\" in [core]%s%s%s",
		    line, key, near != NULL ? "; did you mean \"" : "",
		    near != NULL ? near : "", near != NULL ? "\"?" : "");
		return;
	}
	switch (k) {
	case CORE_DB_PATH:
	case CORE_API_TOKEN_FILE:
	case CORE_METRICS_TOKEN_FILE:
	case CORE_PG_PASSWORD_FILE:
	case CORE_CA_FILE:
		(void)conf_core_text(errs, line, key, val,
		    k == CORE_DB_PATH ? &c->db_path :
		    k == CORE_API_TOKEN_FILE ? &c->api_token_file :
		    k == CORE_METRICS_TOKEN_FILE ? &c->metrics_token_file :
		    k == CORE_PG_PASSWORD_FILE ? &c->pg_password_file :
		    &c->ca_file);
		if (k == CORE_API_TOKEN_FILE)
			c->api_token_line = line;
		else if (k == CORE_METRICS_TOKEN_FILE)
			c->metrics_token_line = line;
		else if (k == CORE_PG_PASSWORD_FILE)
			c->pg_password_line = line;
		else if (k == CORE_CA_FILE)
			c->ca_file_line = line;
		break;
	case CORE_MAP_SIZE_MB:
		if (conf_parse_ulong(val, 1, 1024UL * 1024, &n) == -1)
			conf_err(errs, "line %d: map_size_mb \"%s\" is not "
			    "a whole number from 1 to 1048576", line, val);
		else
			c->map_size_mb = n;
		break;
	case CORE_PLUGIN_DIR:
		if (conf_core_text(errs, line, key, val, &c->plugin_dir) == 0)
			c->plugin_dir_set = 1;
		break;
	case CORE_MAX_BODY_BYTES:
		if (conf_parse_ulong(val, 1024, 16UL * 1024 * 1024, &n) == -1)
			conf_err(errs, "line %d: max_body_bytes \"%s\" is "
			    "not a whole number from 1024 to 16777216",
			    line, val);
		else
			c->max_body_bytes = n;
		break;
	case CORE_BASE_PATH:
		if (val[0] != '/' || strstr(val, "//") != NULL ||
		    strpbrk(val, "?#% \t") != NULL)
			conf_err(errs, "line %d: base_path \"%s\" must be "
			    "an absolute URL path like / or /pay/", line,
			    val);
		else if (conf_set_str(&c->base_path, val) == -1)
			conf_err(errs, "out of memory");
		else {
			size_t len = strlen(c->base_path);

			/* Stored without the trailing slash; "/" stays "". */
			while (len > 0 && c->base_path[len - 1] == '/')
				c->base_path[--len] = '\0';
		}
		break;
	case CORE_LOG_LEVEL:
	case CORE_LOG_FORMAT:
		/* The log's two words: a name each of ops/log.h's enums. */
		lvl = k == CORE_LOG_LEVEL ? log_level_parse(val) :
		    log_format_parse(val);
		if (lvl < 0)
			conf_err(errs, "line %d: %s \"%s\" is not %s", line, key,
			    val, k == CORE_LOG_LEVEL ? "one of error, warn, "
			    "info, debug" : "logfmt or json");
		else
			*(k == CORE_LOG_LEVEL ? &c->log_level :
			    &c->log_format) = lvl;
		break;
	case CORE_READY_MAX_FILL:
		if (conf_parse_fraction(val, &c->ready_max_fill) == -1)
			conf_err(errs, "line %d: ready_max_fill \"%s\" is not "
			    "a fraction above 0 and at most 1, like 0.95",
			    line, val);
		break;

	case CORE_STORE:
		if (strcmp(val, "lmdb") == 0)
			c->store_kind = STORE_LMDB;
		else if (strcmp(val, "postgresql") == 0)
			c->store_kind = STORE_POSTGRESQL;
		else
			conf_err(errs, "line %d: store \"%s\" is not lmdb or "
			    "postgresql", line, val);
		break;
	case CORE_PG_CONNINFO: {
		char why[256];

		if (store_pg_conninfo_check(val, why, sizeof(why)) != PH_OK)
			conf_err(errs, "line %d: pg_conninfo: %s", line, why);
		else if (conf_set_str(&c->pg_conninfo, val) == -1)
			conf_err(errs, "out of memory");
		break;
	}
	default: {
		unsigned long min = 0, max = 0, *dst;

		dst = conf_core_number(c, k, &min, &max);
		if (dst == NULL || conf_parse_ulong(val, min, max, &n) == -1)
			conf_err(errs, "line %d: %s \"%s\" is not a whole "
			    "number from %lu to %lu", line,
			    conf_core_names[k], val, min, max);
		else
			*dst = n;
		break;
	}
	}
}

void
conf_store_spec(const struct conf *c, struct store_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->kind = (enum store_kind)c->store_kind;
	spec->path = c->db_path;
	spec->map_size = (size_t)c->map_size_mb << 20;
	spec->pg_conninfo = c->pg_conninfo;
	spec->pg_password = c->pg_password;
}
