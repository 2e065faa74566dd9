/*
 * Configuration: the INI file, the files it names, and the plugins its
 * profiles use.  Every problem is collected (with its line) rather than
 * stopping at the first, so `payhook check` can list them all.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include <payhook/sdk.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/conf_lines.h"
#include "conf/conf_suggest.h"
#include "ops/text.h"
#include "ops/log.h"
#include "store/store.h"

#ifndef PH_PLUGIN_DIR
#define PH_PLUGIN_DIR "/usr/local/lib/payhook/providers"
#endif

#define CONF_FILE_MAX	(1024 * 1024)	/* keys and certificates */
#define CONF_PROFILES_MAX 256
#define CONF_SECTIONS_MAX (1 + CONF_PROFILES_MAX + CONF_PUSH_MAX + 16)
#define CONF_KEYS_MAX	64		/* keys in one profile */
#define CONF_HEADER_NAME_MAX 63		/* a ph_http_request header's name */

struct conf_raw {
	char *key;
	char *val;
	int line;
	int used;
};

struct conf_file {
	unsigned char *data;	/* NUL-terminated one past len */
	size_t len;
	struct ph_blob *blobs;	/* PH_CONF_FILES: owned array */
};

/* ---- Small helpers ---------------------------------------------------- */

int
conf_name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 32)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-'))
			return 0;
	return 1;
}

char *
conf_path(const struct conf *c, const char *p)
{
	struct ph_buf b;

	if (p[0] == '/')
		return strdup(p);
	ph_buf_init(&b, PATH_MAX);
	ph_buf_printf(&b, "%s/%s", c->dir, p);
	if (b.err) {
		ph_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/*
 * Reads a whole file into a NUL-terminated buffer.  A secret must be a
 * regular file that neither group nor others may read or write.
 */
static int
conf_read_file(const char *path, const char *what, int secret,
    struct conf_file *f, struct conf_errs *errs, int line)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	char at[32] = "";

	memset(f, 0, sizeof(*f));
	if (line > 0)
		snprintf(at, sizeof(at), "line %d: ", line);
	/* O_NONBLOCK: a FIFO would block the open until a writer came; it
	 * is refused below instead, like anything not a regular file. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) == -1) {
		if (errno == ELOOP)
			conf_err(errs, "%s%s %s is a symbolic link: name the "
			    "file itself", at, what, path);
		else
			conf_err(errs, "%s%s %s: %s", at, what, path,
			    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		conf_err(errs, "%s%s %s: not a regular file", at,
		    what, path);
		goto fail;
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		conf_err(errs, "%s%s %s is accessible by group or "
		    "others (mode %04o); refusing it: chmod 600 %s", at,
		    what, path, (unsigned)(st.st_mode & 07777), path);
		goto fail;
	}
	if (st.st_size > CONF_FILE_MAX) {
		conf_err(errs, "%s%s %s is larger than %d bytes",
		    at, what, path, CONF_FILE_MAX);
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		conf_err(errs, "%s%s %s: out of memory", at, what,
		    path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			conf_err(errs, "%s%s %s: read failed", at,
			    what, path);
			goto fail;
		}
		got += (size_t)r;
	}
	if (secret) {
		/* Editors add a final newline; it is never part of a key. */
		if (got > 0 && buf[got - 1] == '\n')
			got--;
		if (got > 0 && buf[got - 1] == '\r')
			got--;
		if (got == 0) {
			conf_err(errs, "%s%s %s is empty", at, what,
			    path);
			goto fail;
		}
	}
	buf[got] = '\0';
	close(fd);
	f->data = buf;
	f->len = got;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

static void
conf_file_free(struct conf_file *f)
{
	if (f->data != NULL) {
		/* Key material does not linger in freed memory. */
		explicit_bzero(f->data, f->len);
		free(f->data);
	}
	free(f->blobs);
}

/* ---- INI parsing -------------------------------------------------------- */

struct conf_parse {
	struct conf *c;
	struct conf_errs *errs;
	struct conf_lines lines;
	int line;		/* the physical line being read */
	char *long_key;		/* a long line's key and value so far */
	char *long_val;
	char *seen_core[64];	/* core keys seen, for duplicates */
	size_t nseen_core;
	/* [core], every profile and push section, and room for a few
	 * more (refused ones): a section given twice is found among all. */
	char seen_sections[CONF_SECTIONS_MAX][128];
	size_t nseen;
};

static struct conf_profile *
conf_profile_add(struct conf_parse *p, const char *name)
{
	struct conf *c = p->c;
	struct conf_profile *np;

	if (c->nprofiles == CONF_PROFILES_MAX) {
		conf_err(p->errs, "line %d: more than %d profiles", p->line,
		    CONF_PROFILES_MAX);
		return NULL;
	}
	np = realloc(c->profiles, (c->nprofiles + 1) * sizeof(*np));
	if (np == NULL)
		return NULL;
	c->profiles = np;
	np = &c->profiles[c->nprofiles];
	memset(np, 0, sizeof(*np));
	if ((np->name = strdup(name)) == NULL)
		return NULL;
	np->line = p->line;
	c->nprofiles++;
	return np;
}

static int
conf_parse_bool(const char *s, long long *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* A yes/no key of [kind.name] into *dst, or a mistake recorded. */
static void
conf_flag(struct conf_parse *p, const char *kind, const char *name,
    const char *key, const char *val, int *dst)
{
	long long b;

	if (conf_parse_bool(val, &b) == -1)
		conf_err(p->errs, "line %d: [%s.%s] %s \"%s\" is not yes or no",
		    p->line, kind, name, key, val);
	else
		*dst = (int)b;
}

int
conf_parse_schedule(const char *s, long *out, size_t max, size_t *n,
    char *why, size_t whylen)
{
	const char *q = s;

	*n = 0;
	while (*q != '\0') {
		long v = 0, mult;
		int digits = 0;

		while (*q == ' ')
			q++;
		for (; *q >= '0' && *q <= '9'; q++, digits++) {
			v = v * 10 + (*q - '0');
			if (v > 100000000L) {
				snprintf(why, whylen, "a delay is too long");
				return -1;
			}
		}
		switch (*q) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default:
			snprintf(why, whylen, "each delay is a number with "
			    "s, m, h or d, like 30s or 3m");
			return -1;
		}
		q++;
		if (digits == 0 || v == 0) {
			snprintf(why, whylen, "delays must be positive");
			return -1;
		}
		if (*n == max) {
			snprintf(why, whylen, "more than %zu delays", max);
			return -1;
		}
		out[(*n)++] = v * mult;
		while (*q == ' ')
			q++;
		if (*q == ',')
			q++;
		else if (*q != '\0') {
			snprintf(why, whylen, "delays are separated by commas");
			return -1;
		}
	}
	if (*n == 0) {
		snprintf(why, whylen, "no delay given");
		return -1;
	}
	return 0;
}

/*
 * A URL as messages show it: without the user and password it may carry
 * and without its query, which may hold a token (doc/design/security.md:
 * no credential is written to a log).  "?..." says a query was cut.
 */
static const char *
conf_url_shown(const char *url, char *out, size_t cap)
{
	const char *sep = strstr(url, "://"), *host, *at, *rest;
	size_t hl, pl;

	if (sep == NULL) {
		snprintf(out, cap, "(not a URL)");
		return out;
	}
	host = sep + 3;
	hl = strcspn(host, "/?#");
	if ((at = memchr(host, '@', hl)) != NULL) {
		hl -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	rest = host + hl;
	pl = strcspn(rest, "?#");
	snprintf(out, cap, "%.*s%.*s%.*s%s", (int)(sep + 3 - url), url,
	    (int)hl, host, (int)pl, rest, rest[pl] != '\0' ? "?..." : "");
	return out;
}

/* Profile keys the core reads itself; 1 when key was one of them. */
static int
conf_profile_core_key(struct conf_parse *p, struct conf_profile *pr,
    const char *key, const char *val)
{
	char why[96], shown[512];

	if (strcmp(key, "plugin") == 0) {
		if (conf_set_str(&pr->plugin_file, val) == -1)
			conf_err(p->errs, "out of memory");
	} else if (strcmp(key, "api_base") == 0) {
		size_t len = strlen(val);

		if (len > 400)
			conf_err(p->errs, "line %d: [profile.%s] api_base is "
			    "%zu bytes long, more than 400", p->line,
			    pr->name, len);
		else if ((strncmp(val, "https://", 8) != 0 &&
		    strncmp(val, "http://", 7) != 0) ||
		    strpbrk(val, " \t?#") != NULL ||
		    strcspn(val + (val[4] == 's' ? 8 : 7), "/") == 0)
			conf_err(p->errs, "line %d: [profile.%s] api_base "
			    "\"%s\" must be an https:// URL with a host and no "
			    "query or fragment", p->line, pr->name,
			    conf_url_shown(val, shown, sizeof(shown)));
		else if (conf_set_str(&pr->api_base, val) == -1)
			conf_err(p->errs, "out of memory");
		else
			while (len > 0 && pr->api_base[len - 1] == '/')
				pr->api_base[--len] = '\0';
	} else if (strcmp(key, "allow_insecure_http") == 0) {
		conf_flag(p, "profile", pr->name, key, val,
		    &pr->allow_insecure_http);
	} else if (strcmp(key, "query_schedule") == 0) {
		if (conf_parse_schedule(val, pr->schedule, CONF_SCHEDULE_MAX,
		    &pr->nschedule, why, sizeof(why)) == -1)
			conf_err(p->errs, "line %d: [profile.%s] query_schedule "
			    "\"%s\": %s", p->line, pr->name, val, why);
	} else if (strcmp(key, "client_cert_file") == 0) {
		if (conf_set_str(&pr->client_cert_file, val) == -1)
			conf_err(p->errs, "out of memory");
	} else if (strcmp(key, "client_key_file") == 0) {
		if (conf_set_str(&pr->client_key_file, val) == -1)
			conf_err(p->errs, "out of memory");
	} else
		return 0;
	return 1;
}

static void
conf_profile_key(struct conf_parse *p, struct conf_profile *pr,
    const char *key, const char *val)
{
	struct conf_raw *nr;
	size_t i;
	int core;

	for (i = 0; i < pr->nraw; i++)
		if (strcmp(pr->raw[i].key, key) == 0) {
			conf_err(p->errs, "line %d: key \"%s\" given twice in "
			    "[profile.%s] (first on line %d)", p->line, key,
			    pr->name, pr->raw[i].line);
			return;
		}
	if (pr->nraw == CONF_KEYS_MAX) {
		conf_err(p->errs, "line %d: too many keys in [profile.%s]",
		    p->line, pr->name);
		return;
	}
	core = conf_profile_core_key(p, pr, key, val);
	nr = realloc(pr->raw, (pr->nraw + 1) * sizeof(*nr));
	if (nr == NULL) {
		conf_err(p->errs, "out of memory");
		return;
	}
	pr->raw = nr;
	nr = &pr->raw[pr->nraw];
	nr->key = strdup(key);
	nr->val = strdup(val);
	nr->line = p->line;
	nr->used = core;
	if (nr->key == NULL || nr->val == NULL) {
		free(nr->key);
		free(nr->val);
		conf_err(p->errs, "out of memory");
		return;
	}
	pr->nraw++;
}

/*
 * Section headers are checked as lines are read, so that an empty section
 * with a misspelt name is reported too (inih only calls back for keys).
 */
static void
conf_section(struct conf_parse *p, const char *line)
{
	char name[128];
	const char *end;
	size_t i, len;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line != '[' || (end = strchr(line, ']')) == NULL)
		return;
	len = (size_t)(end - line - 1);
	if (len >= sizeof(name)) {
		conf_err(p->errs, "line %d: section name too long", p->line);
		return;
	}
	memcpy(name, line + 1, len);
	name[len] = '\0';
	for (i = 0; i < p->nseen; i++)
		if (strcmp(p->seen_sections[i], name) == 0) {
			conf_err(p->errs, "line %d: section [%s] is given "
			    "twice", p->line, name);
			return;
		}
	if (p->nseen < CONF_SECTIONS_MAX)
		ph_strlcpy(p->seen_sections[p->nseen++], name,
		    sizeof(p->seen_sections[0]));
	if (strcmp(name, "core") == 0)
		return;
	if (strncmp(name, "push.", 5) == 0) {
		struct conf_push *pu;

		if (!conf_name_valid(name + 5, strlen(name + 5)))
			conf_err(p->errs, "line %d: push name \"%s\" is "
			    "invalid: 1-32 of [a-z0-9_-]", p->line, name + 5);
		else if (p->c->npushes == CONF_PUSH_MAX)
			conf_err(p->errs, "line %d: more than %d [push.*] "
			    "sections", p->line, CONF_PUSH_MAX);
		else {
			pu = &p->c->pushes[p->c->npushes++];
			pu->name = strdup(name + 5);
			pu->line = p->line;
		}
		return;
	}
	if (strncmp(name, "profile.", 8) != 0) {
		conf_err(p->errs, "line %d: unknown section [%s]", p->line,
		    name);
		return;
	}
	if (!conf_name_valid(name + 8, strlen(name + 8)))
		conf_err(p->errs, "line %d: profile name \"%s\" is invalid: "
		    "1-32 of [a-z0-9_-]", p->line, name + 8);
	else if (conf_profile(p->c, name + 8) == NULL)
		conf_profile_add(p, name + 8);
}

/*
 * A line inih refuses: not blank, no comment, no section, no
 * continuation (white space first), and no '=' or ':' for a key.
 */
static int
conf_ini_invalid(const char *line)
{
	size_t n = strcspn(line, "\r\n");

	return n > 0 && strchr(" \t;#[", line[0]) == NULL &&
	    strcspn(line, "=:") >= n;
}

static char *
conf_ini_reader(char *str, int num, void *stream)
{
	struct conf_parse *p = stream;
	char *r = conf_lines_read(&p->lines, str, num);

	if (r == NULL)
		return NULL;
	p->line = p->lines.line;
	if (p->lines.bad != NULL)
		conf_err(p->errs, "line %d: %s", p->line, p->lines.bad);
	else if (p->lines.kind == CONF_PIECE_WHOLE && conf_ini_invalid(r)) {
		/* Said here, each one: inih would name only the first. */
		conf_err(p->errs, "line %d: not a valid INI line", p->line);
		snprintf(str, (size_t)num, "#\n");
	} else if (p->lines.kind == CONF_PIECE_WHOLE)
		conf_section(p, r);
	else if (p->lines.kind == CONF_PIECE_FIRST) {
		free(p->long_key);
		free(p->long_val);
		p->long_key = p->long_val = NULL;
	}
	return r;
}

static void
conf_push_key(struct conf_parse *p, struct conf_push *pu, const char *key,
    const char *val)
{
	if (strcmp(key, "url") == 0) {
		if ((strncmp(val, "https://", 8) != 0 &&
		    strncmp(val, "http://", 7) != 0) ||
		    strpbrk(val, " \t") != NULL)
			conf_err(p->errs, "line %d: [push.%s] url \"%s\" must "
			    "be an https:// URL", p->line, pu->name, val);
		else if (conf_set_str(&pu->url, val) == -1)
			conf_err(p->errs, "out of memory");
	} else if (strcmp(key, "secret_file") == 0) {
		pu->secret_line = p->line;
		if (conf_set_str(&pu->secret_file, val) == -1)
			conf_err(p->errs, "out of memory");
	} else if (strcmp(key, "signature_header") == 0) {
		if (*val == '\0' || strpbrk(val, " \t:\r\n") != NULL)
			conf_err(p->errs, "line %d: [push.%s] signature_header "
			    "\"%s\" is not a header name", p->line, pu->name,
			    val);
		/* What ph_http_request's header name holds. */
		else if (strlen(val) > CONF_HEADER_NAME_MAX)
			conf_err(p->errs, "line %d: [push.%s] signature_header "
			    "is %zu characters: at most %d", p->line, pu->name,
			    strlen(val), CONF_HEADER_NAME_MAX);
		else if (conf_set_str(&pu->signature_header, val) == -1)
			conf_err(p->errs, "out of memory");
	} else if (strcmp(key, "allow_insecure_http") == 0) {
		conf_flag(p, "push", pu->name, key, val,
		    &pu->allow_insecure_http);
	} else {
		static const char *const names[] = { "url", "secret_file",
		    "signature_header", "allow_insecure_http" };
		const char *near = conf_suggest(key, names,
		    sizeof(names) / sizeof(names[0]));

		conf_err(p->errs, "line %d: unknown key \"%s\" in [push.%s] "
		    "(url, secret_file, signature_header, "
		    "allow_insecure_http)%s%s%s", p->line, key, pu->name,
		    near != NULL ? "; did you mean \"" : "",
		    near != NULL ? near : "", near != NULL ? "\"?" : "");
	}
}

static void
conf_ini_entry(struct conf_parse *p, const char *section, const char *key,
    const char *val)
{
	struct conf *c = p->c;
	size_t i;

	if (strcmp(section, "core") == 0) {
		for (i = 0; i < p->nseen_core; i++)
			if (strcmp(p->seen_core[i], key) == 0) {
				conf_err(p->errs, "line %d: key \"%s\" given "
				    "twice in [core]", p->line, key);
				return;
			}
		if (p->nseen_core < sizeof(p->seen_core) /
		    sizeof(p->seen_core[0]) &&
		    (p->seen_core[p->nseen_core] = strdup(key)) != NULL)
			p->nseen_core++;
		conf_core(p->c, p->errs, p->line, key, val);
	} else if (strncmp(section, "profile.", 8) == 0) {
		struct conf_profile *pr;

		pr = (struct conf_profile *)conf_profile(c, section + 8);
		if (pr != NULL)
			conf_profile_key(p, pr, key, val);
	} else if (strncmp(section, "push.", 5) == 0 && c->npushes > 0 &&
	    c->pushes[c->npushes - 1].name != NULL &&
	    strcmp(c->pushes[c->npushes - 1].name, section + 5) == 0) {
		conf_push_key(p, &c->pushes[c->npushes - 1], key, val);
	} else if (section[0] == '\0') {
		conf_err(p->errs, "line %d: key \"%s\" outside any section",
		    p->line, key);
	}
	/* Keys of an unknown section: the section was reported. */
}

/*
 * inih's callback: a key of a line, or a piece of a long line's value
 * (conf_lines.c), joined before it is looked at.
 */
static int
conf_ini_handler(void *user, const char *section, const char *key,
    const char *val)
{
	struct conf_parse *p = user;
	size_t have, add;
	char *nv;

	if (key == NULL)	/* an empty section: nothing more to do */
		return 1;
	switch (p->lines.kind) {
	case CONF_PIECE_WHOLE:
		conf_ini_entry(p, section, key, val);
		break;
	case CONF_PIECE_FIRST:
		if ((p->long_key = strdup(key)) == NULL ||
		    (p->long_val = strdup(val)) == NULL)
			conf_err(p->errs, "out of memory");
		break;
	case CONF_PIECE_MORE:
	case CONF_PIECE_LAST:
		/* Pieces of a first piece inih refused go nowhere. */
		if (p->long_key == NULL || p->long_val == NULL ||
		    strcmp(key, p->long_key) != 0)
			break;
		have = strlen(p->long_val);
		add = strlen(val);
		if ((nv = realloc(p->long_val, have + add + 1)) == NULL) {
			conf_err(p->errs, "out of memory");
			break;
		}
		memcpy(nv + have, val, add + 1);
		p->long_val = nv;
		if (p->lines.kind == CONF_PIECE_LAST)
			conf_ini_entry(p, section, p->long_key, p->long_val);
		break;
	}
	return 1;
}

/* ---- Binding profiles to plugins -------------------------------------- */

/*
 * The folder a plugin is loaded from: plugin_dir when the configuration
 * says; else the packaged folder, or the local one (PH_LOCAL_PLUGIN_DIR)
 * for a plugin the package does not have.  A local plugin never replaces
 * a packaged one of the same name.
 */
static const char *
conf_plugin_folder(const struct conf *c, const char *name)
{
	char path[4096];

	if (c->plugin_dir_set)
		return c->plugin_dir;
	snprintf(path, sizeof(path), "%s/%s.so", c->plugin_dir, name);
	if (access(path, F_OK) == 0)
		return c->plugin_dir;
	snprintf(path, sizeof(path), "%s/%s.so", PH_LOCAL_PLUGIN_DIR, name);
	return access(path, F_OK) == 0 ? PH_LOCAL_PLUGIN_DIR : c->plugin_dir;
}

/* The key of a profile, payhook's own or its plugin's, closest to key. */
static const char *
conf_profile_suggest(const struct conf_profile *pr, const char *key)
{
	static const char *const own[] = { "plugin", "api_base",
	    "client_cert_file", "client_key_file", "query_schedule",
	    "allow_insecure_http" };
	const struct ph_conf_key *keys = pr->plugin->prov->conf_keys;
	const char *names[CONF_KEYS_MAX + 8];
	size_t n = 0, i;

	for (i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		names[n++] = own[i];
	for (i = 0; keys != NULL && keys[i].name != NULL &&
	    n < sizeof(names) / sizeof(names[0]); i++)
		names[n++] = keys[i].name;
	return conf_suggest(key, names, n);
}

static struct conf_file *
conf_profile_file(struct conf_profile *pr)
{
	struct conf_file *nf;

	nf = realloc(pr->files, (pr->nfiles + 1) * sizeof(*nf));
	if (nf == NULL)
		return NULL;
	pr->files = nf;
	memset(&nf[pr->nfiles], 0, sizeof(*nf));
	return &nf[pr->nfiles++];
}

/* Fills one value from its text; reads the files it names. */
static void
conf_value(struct conf *c, struct conf_profile *pr,
    const struct ph_conf_key *k, const char *text, int line,
    struct ph_conf_value *v, struct conf_errs *errs)
{
	struct conf_file *f;
	char *path, *list, *tok, *save;
	size_t i;

	v->present = 1;
	v->str = text;
	switch (k->type) {
	case PH_CONF_STRING:
		if (k->required && *text == '\0')
			conf_err(errs, "line %d: [profile.%s] %s is empty",
			    line, pr->name, k->name);
		break;
	case PH_CONF_INT: {
		long long n = 0;
		const char *s = text;
		int neg = 0, bad = *s == '\0';

		if (*s == '-') {
			neg = 1;
			s++;
			bad = *s == '\0';
		}
		for (; *s != '\0' && !bad; s++) {
			if (*s < '0' || *s > '9' || n > (LLONG_MAX - 9) / 10)
				bad = 1;
			else
				n = n * 10 + (*s - '0');
		}
		if (neg)
			n = -n;
		if (bad || n < k->min || n > k->max)
			conf_err(errs, "line %d: [profile.%s] %s \"%s\" is not "
			    "a whole number from %lld to %lld", line, pr->name,
			    k->name, text, k->min, k->max);
		v->num = n;
		break;
	}
	case PH_CONF_BOOL:
		if (conf_parse_bool(text, &v->num) == -1)
			conf_err(errs, "line %d: [profile.%s] %s \"%s\" is not "
			    "yes or no", line, pr->name, k->name, text);
		break;
	case PH_CONF_ENUM:
		for (i = 0; k->choices != NULL && k->choices[i] != NULL; i++)
			if (strcmp(text, k->choices[i]) == 0)
				break;
		if (k->choices == NULL || k->choices[i] == NULL) {
			char allowed[256] = "";

			for (i = 0; k->choices != NULL &&
			    k->choices[i] != NULL; i++) {
				if (i > 0)
					strncat(allowed, ", ",
					    sizeof(allowed) - strlen(allowed) - 1);
				strncat(allowed, k->choices[i],
				    sizeof(allowed) - strlen(allowed) - 1);
			}
			conf_err(errs, "line %d: [profile.%s] %s \"%s\" is not "
			    "one of %s", line, pr->name, k->name, text,
			    allowed);
		} else
			v->num = (long long)i;
		break;
	case PH_CONF_FILE:
	case PH_CONF_SECRET_FILE:
		if ((f = conf_profile_file(pr)) == NULL ||
		    (path = conf_path(c, text)) == NULL) {
			conf_err(errs, "out of memory");
			break;
		}
		if (conf_read_file(path, k->name, k->type ==
		    PH_CONF_SECRET_FILE, f, errs, line) == 0) {
			v->blob.data = f->data;
			v->blob.len = f->len;
		}
		free(path);
		break;
	case PH_CONF_FILES: {
		struct ph_blob *blobs = NULL;
		size_t n = 0;

		if ((list = strdup(text)) == NULL) {
			conf_err(errs, "out of memory");
			break;
		}
		for (tok = strtok_r(list, " \t", &save); tok != NULL;
		    tok = strtok_r(NULL, " \t", &save)) {
			struct ph_blob *nb;

			if ((f = conf_profile_file(pr)) == NULL ||
			    (path = conf_path(c, tok)) == NULL ||
			    (nb = realloc(blobs, (n + 1) *
			    sizeof(*nb))) == NULL) {
				conf_err(errs, "out of memory");
				break;
			}
			blobs = nb;
			if (conf_read_file(path, k->name, 0, f, errs,
			    line) == 0) {
				blobs[n].data = f->data;
				blobs[n].len = f->len;
				n++;
			}
			free(path);
		}
		free(list);
		/* The last file record owns the array of blobs. */
		if ((f = conf_profile_file(pr)) != NULL)
			f->blobs = blobs;
		else
			free(blobs);
		v->files = blobs;
		v->nfiles = n;
		if (n == 0 && k->required)
			conf_err(errs, "line %d: [profile.%s] %s names no file",
			    line, pr->name, k->name);
		break;
	}
	default:
		conf_err(errs, "line %d: [profile.%s] %s: plugin declares an "
		    "unknown key type", line, pr->name, k->name);
	}
}

/* Resolves a path from the file against the config's folder, in place. */
static int
conf_resolve(struct conf *c, char **p)
{
	char *r;

	if ((*p)[0] == '/')
		return 0;
	if ((r = conf_path(c, *p)) == NULL)
		return -1;
	free(*p);
	*p = r;
	return 0;
}

/* The default query schedule follows WeChat Pay's notification retries. */
static const char conf_default_schedule[] =
    "15s,15s,30s,3m,10m,20m,30m,30m,30m,1h,3h,3h,3h,6h,6h";

/* Checks the keys that say how the core calls the provider. */
static void
conf_profile_calls(struct conf *c, struct conf_profile *pr,
    struct conf_errs *errs)
{
	char shown[512], what[96];
	struct conf_file f;
	char why[96];

	if (pr->nschedule == 0)
		conf_parse_schedule(conf_default_schedule, pr->schedule,
		    CONF_SCHEDULE_MAX, &pr->nschedule, why, sizeof(why));
	if (pr->api_base != NULL && strncmp(pr->api_base, "http://", 7) == 0) {
		if (!pr->allow_insecure_http)
			conf_err(errs, "line %d: [profile.%s] api_base %s is "
			    "plain http: refused unless the profile also says "
			    "allow_insecure_http = yes (tests only)", pr->line,
			    pr->name, conf_url_shown(pr->api_base, shown,
			    sizeof(shown)));
		else
			conf_warn(errs, "[profile.%s] allow_insecure_http = "
			    "yes: provider calls to %s are not encrypted or "
			    "authenticated; never use this in production",
			    pr->name, conf_url_shown(pr->api_base, shown,
			    sizeof(shown)));
	}
	if ((pr->client_cert_file == NULL) != (pr->client_key_file == NULL)) {
		conf_err(errs, "line %d: [profile.%s] client_cert_file and "
		    "client_key_file go together", pr->line, pr->name);
		return;
	}
	if (pr->client_cert_file == NULL)
		return;
	if (conf_resolve(c, &pr->client_cert_file) == -1 ||
	    conf_resolve(c, &pr->client_key_file) == -1) {
		conf_err(errs, "out of memory");
		return;
	}
	/* Held to every file's rules (a regular file, no link, at most
	 * CONF_FILE_MAX; the key a secret's mode), and kept as read. */
	snprintf(what, sizeof(what), "[profile.%s] client_cert_file",
	    pr->name);
	if (conf_read_file(pr->client_cert_file, what, 0, &f, errs, 0) == 0) {
		pr->client_cert.data = f.data;
		pr->client_cert.len = f.len;
	}
	snprintf(what, sizeof(what), "[profile.%s] client_key_file",
	    pr->name);
	if (conf_read_file(pr->client_key_file, what, 1, &f, errs, 0) == 0) {
		pr->client_key.data = f.data;
		pr->client_key.len = f.len;
	}
}

static void
conf_bind_profile(struct conf *c, struct conf_profile *pr,
    struct conf_errs *errs)
{
	const struct ph_conf_key *keys;
	struct ph_diag diag;
	size_t nkeys, i, j;
	size_t before = conf_errs_count(errs);

	if (pr->plugin_file == NULL) {
		conf_err(errs, "line %d: [profile.%s] has no plugin key",
		    pr->line, pr->name);
		return;
	}
	conf_profile_calls(c, pr, errs);
	memset(&diag, 0, sizeof(diag));
	if (loader_get(&c->loader, conf_plugin_folder(c, pr->plugin_file),
	    pr->plugin_file,
	    &pr->plugin, &diag) != PH_OK) {
		conf_err(errs, "line %d: [profile.%s] %s", pr->line, pr->name,
		    diag.msg);
		return;
	}
	keys = pr->plugin->prov->conf_keys;
	for (nkeys = 0; keys[nkeys].name != NULL; nkeys++)
		continue;
	if ((pr->values = calloc(nkeys + 1, sizeof(*pr->values))) == NULL) {
		conf_err(errs, "out of memory");
		return;
	}
	for (i = 0; i < nkeys; i++) {
		struct ph_conf_value *v = &pr->values[i];

		v->name = keys[i].name;
		v->str = "";
		for (j = 0; j < pr->nraw; j++)
			if (strcmp(pr->raw[j].key, keys[i].name) == 0)
				break;
		if (j < pr->nraw) {
			pr->raw[j].used = 1;
			conf_value(c, pr, &keys[i], pr->raw[j].val,
			    pr->raw[j].line, v, errs);
		} else if (keys[i].def != NULL) {
			conf_value(c, pr, &keys[i], keys[i].def, pr->line, v,
			    errs);
		} else if (keys[i].required) {
			conf_err(errs, "line %d: [profile.%s] lacks the key "
			    "\"%s\" that plugin %s requires (%s)", pr->line,
			    pr->name, keys[i].name, pr->plugin->prov->name,
			    keys[i].help != NULL ? keys[i].help : "");
		}
	}
	for (j = 0; j < pr->nraw; j++)
		if (!pr->raw[j].used) {
			const char *near = conf_profile_suggest(pr,
			    pr->raw[j].key);

			conf_err(errs, "line %d: unknown key \"%s\" in "
			    "[profile.%s] (plugin %s)%s%s%s", pr->raw[j].line,
			    pr->raw[j].key, pr->name, pr->plugin->prov->name,
			    near != NULL ? "; did you mean \"" : "",
			    near != NULL ? near : "",
			    near != NULL ? "\"?" : "");
		}
	if (conf_errs_count(errs) != before)
		return;
	pr->pconf.profile = pr->name;
	pr->pconf.values = pr->values;
	pr->pconf.nvalues = nkeys;
	memset(&diag, 0, sizeof(diag));
	if (loader_result(pr->plugin->prov, pr->plugin->prov->profile_new(
	    &pr->pconf, &pr->ctx, &diag), &diag) != PH_OK) {
		pr->ctx = NULL;
		conf_err(errs, "line %d: [profile.%s] plugin %s refused it: %s",
		    pr->line, pr->name, pr->plugin->prov->name, diag.msg);
	}
}

static void
conf_bind_push(struct conf *c, struct conf_push *pu, struct conf_errs *errs)
{
	struct conf_file f;
	char shown[512];

	if (pu->name == NULL)
		return;
	if (pu->url == NULL || pu->secret_file == NULL) {
		conf_err(errs, "line %d: [push.%s] needs url and secret_file",
		    pu->line, pu->name);
		return;
	}
	if (strncmp(pu->url, "http://", 7) == 0) {
		if (!pu->allow_insecure_http)
			conf_err(errs, "line %d: [push.%s] url %s is plain "
			    "http: refused unless allow_insecure_http = yes",
			    pu->line, pu->name, conf_url_shown(pu->url, shown,
			    sizeof(shown)));
		else
			conf_warn(errs, "[push.%s] allow_insecure_http = yes: "
			    "events go to %s unencrypted", pu->name,
			    conf_url_shown(pu->url, shown, sizeof(shown)));
	}
	if (pu->signature_header == NULL &&
	    (pu->signature_header = strdup("X-Payhook-Signature")) == NULL) {
		conf_err(errs, "out of memory");
		return;
	}
	if (conf_resolve(c, &pu->secret_file) == -1) {
		conf_err(errs, "out of memory");
		return;
	}
	if (conf_read_file(pu->secret_file, "secret_file", 1, &f, errs,
	    pu->secret_line) == 0) {
		pu->secret = f.data;
		pu->secret_len = f.len;
	}
}

/* ---- Open and free ---------------------------------------------------- */

const struct conf_profile *
conf_profile(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nprofiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

static int
conf_defaults(struct conf *c)
{
	c->map_size_mb = 256;
	c->max_body_bytes = 65536;
	c->http_timeout_s = 10;
	c->http_connect_timeout_s = 5;
	c->sweep_concurrency = 8;
	c->lease_s = 60;
	c->attempt_hold_s = 60;
	c->archive_days = 30;
	c->archive_map_mb = 256;
	c->hint_per_minute = 10;
	c->idempotency_ttl_s = 86400;
	c->archive_unverified_mb = 0;	/* a tenth of archive_map_mb */
	c->archive_unverified_per_minute = 600;
	c->archive_unverified_per_source = 60;
	c->log_level = LOG_LVL_INFO;
	c->log_format = LOG_FMT_LOGFMT;
	c->ready_max_fill = 0.95;
	if ((c->db_path = strdup("var/payhook.mdb")) == NULL ||
	    (c->plugin_dir = strdup(PH_PLUGIN_DIR)) == NULL ||
	    (c->base_path = strdup("")) == NULL)
		return -1;
	return 0;
}

/* Reads a bearer token from file (a secret: mode checked), if named. */
static void
conf_token(const char *file, const char *key, int line, unsigned char **token,
    size_t *len, struct conf_errs *errs)
{
	struct conf_file tok;
	size_t i;

	if (file == NULL || conf_read_file(file, key, 1, &tok, errs, line) != 0)
		return;
	*token = tok.data;
	*len = tok.len;
	for (i = 0; i < tok.len; i++)
		if (tok.data[i] <= ' ' || tok.data[i] >= 0x7f) {
			conf_err(errs, "%s %s: the token must be printable "
			    "ASCII without spaces", key, file);
			break;
		}
	if (tok.len < 16)
		conf_warn(errs, "%s %s: the token is shorter than 16 "
		    "characters", key, file);
}

/*
 * The store's keys together: store = postgresql needs pg_conninfo, and the
 * password comes from pg_password_file (a secret: mode 0600 or stricter,
 * one line) or libpq's own passfile, never from payhook.conf.
 */
static void
conf_bind_store(struct conf *c, struct conf_errs *errs)
{
	struct conf_file f;
	size_t n;

	if (c->store_kind != STORE_POSTGRESQL) {
		if (c->pg_conninfo != NULL || c->pg_password_file != NULL)
			conf_warn(errs, "[core] pg_conninfo and "
			    "pg_password_file are not used with store = lmdb");
		return;
	}
	if (c->pg_conninfo == NULL)
		conf_err(errs, "[core] store = postgresql needs pg_conninfo "
		    "(a libpq connection string, e.g. host=db1,db2 "
		    "dbname=payhook user=payhook "
		    "target_session_attrs=read-write)");
	if (c->pg_password_file == NULL)
		return;
	if (conf_resolve(c, &c->pg_password_file) == -1) {
		conf_err(errs, "out of memory");
		return;
	}
	if (conf_read_file(c->pg_password_file, "pg_password_file", 1, &f,
	    errs, c->pg_password_line) != 0)
		return;
	n = f.len;
	while (n > 0 && (f.data[n - 1] == '\n' || f.data[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(f.data, '\n', n) != NULL ||
	    memchr(f.data, '\0', n) != NULL)
		conf_err(errs, "pg_password_file %s: must hold the password "
		    "on one line", c->pg_password_file);
	else if ((c->pg_password = strndup((char *)f.data, n)) == NULL)
		conf_err(errs, "out of memory");
	conf_file_free(&f);
}

int
conf_open(const char *path, struct conf **out, struct conf_errs *errs)
{
	struct conf_parse p;
	struct conf *c;
	struct stat st;
	char *tmp = NULL;
	size_t i;
	int rc;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		conf_err(errs, "out of memory");
		return -1;
	}
	if (conf_defaults(c) == -1 || (c->path = strdup(path)) == NULL ||
	    (tmp = strdup(path)) == NULL) {
		conf_err(errs, "out of memory");
		goto fail;
	}
	{
		char dir[PATH_MAX], *d = dirname(tmp);

		if (d[0] != '/') {
			if (getcwd(dir, sizeof(dir)) == NULL) {
				conf_err(errs, "getcwd: %s", strerror(errno));
				goto fail;
			}
			if (strcmp(d, ".") == 0)
				c->dir = strdup(dir);
			else if ((c->dir = malloc(strlen(dir) + strlen(d) +
			    2)) != NULL)
				snprintf(c->dir, strlen(dir) + strlen(d) + 2,
				    "%s/%s", dir, d);
		} else
			c->dir = strdup(d);
		if (c->dir == NULL) {
			conf_err(errs, "out of memory");
			goto fail;
		}
	}
	if ((p.lines.fp = fopen(path, "re")) == NULL) {
		conf_err(errs, "cannot be opened: %s", strerror(errno));
		goto fail;
	}
	/* A folder opens, and reads as nothing: a file without [core]. */
	if (fstat(fileno(p.lines.fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		conf_err(errs, "a folder, not a configuration file");
		fclose(p.lines.fp);
		goto fail;
	}
	p.c = c;
	p.errs = errs;
	rc = ini_parse_stream(conf_ini_reader, &p, conf_ini_handler, &p);
	fclose(p.lines.fp);
	for (i = 0; i < p.nseen_core; i++)
		free(p.seen_core[i]);
	free(p.long_key);
	free(p.long_val);
	if (rc > 0)
		conf_err(errs, "line %d: not a valid INI line",
		    conf_lines_number(&p.lines, rc));
	conf_lines_free(&p.lines);
	if (rc < 0) {
		conf_err(errs, "%s: cannot be read", path);
		goto fail;
	}
	/* Go on after mistakes so that one run reports all of them. */

	if (c->api_token_file == NULL)
		conf_err(errs, "[core] lacks api_token_file (the merchant API "
		    "bearer token)");
	if (c->nprofiles == 0)
		conf_warn(errs, "no [profile.NAME] section: no notification "
		    "can be received");
	/* A lease that runs out while its call waits lets another sweeper
	 * or refund runner (or the operator's refunds settle) in. */
	if (c->lease_s <= c->http_timeout_s)
		conf_warn(errs, "[core] lease_s = %lu is not above "
		    "http_timeout_s = %lu: a lease can run out while its "
		    "provider call waits", c->lease_s, c->http_timeout_s);
	if (conf_resolve(c, &c->db_path) == -1 ||
	    conf_resolve(c, &c->plugin_dir) == -1 ||
	    (c->ca_file != NULL && conf_resolve(c, &c->ca_file) == -1) ||
	    (c->api_token_file != NULL &&
	    conf_resolve(c, &c->api_token_file) == -1)) {
		conf_err(errs, "out of memory");
		goto fail;
	}
	if (c->ca_file != NULL && access(c->ca_file, R_OK) == -1)
		conf_err(errs, "line %d: ca_file %s: %s", c->ca_file_line,
		    c->ca_file, strerror(errno));
	conf_token(c->api_token_file, "api_token_file", c->api_token_line,
	    &c->api_token, &c->api_token_len, errs);
	if (c->archive_unverified_mb > 0 &&
	    2 * c->archive_unverified_mb >= c->archive_map_mb)
		conf_err(errs, "[core] archive_unverified_mb (%lu) must be "
		    "less than half of archive_map_mb (%lu): the rest is the "
		    "verified notifications' share", c->archive_unverified_mb,
		    c->archive_map_mb);
	if (c->metrics_token_file != NULL &&
	    conf_resolve(c, &c->metrics_token_file) == -1) {
		conf_err(errs, "out of memory");
		goto fail;
	}
	conf_token(c->metrics_token_file, "metrics_token_file",
	    c->metrics_token_line, &c->metrics_token, &c->metrics_token_len,
	    errs);
	conf_bind_store(c, errs);
	for (i = 0; i < c->nprofiles; i++)
		conf_bind_profile(c, &c->profiles[i], errs);
	for (i = 0; i < c->npushes; i++)
		conf_bind_push(c, &c->pushes[i], errs);
	if (conf_errs_count(errs) > 0)
		goto fail;
	free(tmp);
	*out = c;
	return 0;
fail:
	free(tmp);
	conf_free(c);
	return -1;
}

void
conf_free(struct conf *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->nprofiles; i++) {
		struct conf_profile *pr = &c->profiles[i];

		if (pr->ctx != NULL)
			pr->plugin->prov->profile_free(pr->ctx);
		for (j = 0; j < pr->nfiles; j++)
			conf_file_free(&pr->files[j]);
		free(pr->files);
		for (j = 0; j < pr->nraw; j++) {
			free(pr->raw[j].key);
			free(pr->raw[j].val);
		}
		free(pr->raw);
		free(pr->values);
		free(pr->name);
		free(pr->plugin_file);
		free(pr->api_base);
		free(pr->client_cert_file);
		free(pr->client_key_file);
		free((void *)pr->client_cert.data);
		if (pr->client_key.data != NULL)
			ph_cleanse((void *)pr->client_key.data,
			    pr->client_key.len);
		free((void *)pr->client_key.data);
	}
	free(c->profiles);
	for (i = 0; i < c->npushes; i++) {
		struct conf_push *pu = &c->pushes[i];

		free(pu->name);
		free(pu->url);
		free(pu->secret_file);
		free(pu->signature_header);
		if (pu->secret != NULL) {
			explicit_bzero(pu->secret, pu->secret_len);
			free(pu->secret);
		}
	}
	loader_close(&c->loader);
	if (c->metrics_token != NULL) {
		explicit_bzero(c->metrics_token, c->metrics_token_len);
		free(c->metrics_token);
	}
	free(c->metrics_token_file);
	if (c->api_token != NULL) {
		explicit_bzero(c->api_token, c->api_token_len);
		free(c->api_token);
	}
	free(c->path);
	free(c->dir);
	free(c->db_path);
	free(c->plugin_dir);
	free(c->api_token_file);
	free(c->base_path);
	free(c->ca_file);
	free(c->pg_conninfo);
	free(c->pg_password_file);
	if (c->pg_password != NULL) {
		explicit_bzero(c->pg_password, strlen(c->pg_password));
		free(c->pg_password);
	}
	free(c);
}

void
conf_archive_limits(const struct conf *c, struct archive_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->days = c->archive_days;
	lim->max_mb = c->archive_map_mb;
	lim->unverified_mb = c->archive_unverified_mb > 0 ?
	    c->archive_unverified_mb : (c->archive_map_mb + 9) / 10;
	lim->unverified_per_minute = c->archive_unverified_per_minute;
	lim->per_source = c->archive_unverified_per_source;
}
