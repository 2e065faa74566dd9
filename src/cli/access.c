/*
 * check --user: can the web server's user do what payhook.fcgi does?  It
 * reads the configuration and every file it names, and opens or creates
 * the store and the files beside it.  Judged from the mode bits, so that
 * root can check for any user without becoming it.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "cli/cli.h"
#include "ops/metrics.h"

/* The identity a check is made for. */
struct cli_user {
	const char *name;
	uid_t uid;
	gid_t groups[64];
	int ngroups;
};

/* What user may do to a file by its mode bits (root may do all). */
static int
cli_mode_allows(const struct cli_user *u, const struct stat *st, int want)
{
	int i, shift = 0;

	if (u->uid == 0)
		return 1;
	if (st->st_uid == u->uid)
		shift = 6;
	else
		for (i = 0; i < u->ngroups; i++)
			if (st->st_gid == u->groups[i]) {
				shift = 3;
				break;
			}
	return (int)((st->st_mode >> shift) & 7 & (unsigned)want) == want;
}

/* "mode 0700, owner 33": how a refusal names what it refuses. */
static const char *
cli_owned(const struct stat *st, char buf[48])
{
	snprintf(buf, 48, "mode %04o, owner %ld",
	    (unsigned)(st->st_mode & 07777), (long)st->st_uid);
	return buf;
}

/*
 * The first folder on the way to path that user cannot enter, into dir
 * and *st; 0 when there is none.
 */
static int
cli_user_blocked(const struct cli_user *u, const char *path, char *dir,
    size_t len, struct stat *st)
{
	char *slash;
	size_t n = 0;

	/* A relative path is walked from the root through the working
	 * folder: the folders above it are on the way too. */
	if (path[0] != '/') {
		if (getcwd(dir, len) == NULL)
			dir[0] = '\0';
		n = strlen(dir);
		if (n + 1 < len && (n == 0 || dir[n - 1] != '/'))
			dir[n++] = '/';
	}
	ph_strlcpy(dir + n, path, len - n);
	for (slash = strchr(dir + 1, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (stat(dir, st) == 0 && !cli_mode_allows(u, st, 1))
			return 1;
		*slash = '/';
	}
	return 0;
}

/* Can user reach and use path (want: 4 read, 2 write, 1 search)? */
static int
cli_user_may(const struct cli_user *u, const char *path, int want,
    const char *what)
{
	char dir[4096], own[48];
	struct stat st;

	if (cli_user_blocked(u, path, dir, sizeof(dir), &st)) {
		fprintf(stderr, "payhook: user %s cannot enter %s (%s), on the "
		    "way to the %s %s\n", u->name, dir, cli_owned(&st, own),
		    what, path);
		return -1;
	}
	if (stat(path, &st) == -1) {
		fprintf(stderr, "payhook: %s %s: %s\n", what, path,
		    errno == ENOENT ? "missing" : strerror(errno));
		return -1;
	}
	if (!cli_mode_allows(u, &st, want)) {
		fprintf(stderr, "payhook: user %s cannot %s the %s %s (%s)\n",
		    u->name, want & 2 ? "write" : "read", what, path,
		    cli_owned(&st, own));
		return -1;
	}
	return 0;
}

/*
 * What payhook.fcgi creates when it is missing (the store's folder, the
 * store, its lock, the counters, the group commit file, the archive's
 * folders and its budget file): fine when user
 * may use it, or may create it.  A file whose folder is missing too is
 * made with the folder, which is checked on its own.
 */
static int
cli_user_may_make(const struct cli_user *u, const char *path, int want,
    const char *what)
{
	char *tmp, dir[4096], blocked[4096], own[48];
	struct stat st, bst;

	if (stat(path, &st) == 0 || errno != ENOENT)
		return cli_user_may(u, path, want, what);
	if ((tmp = strdup(path)) == NULL)
		return -1;
	ph_strlcpy(dir, dirname(tmp), sizeof(dir));
	free(tmp);
	if (stat(dir, &st) == -1)
		return 0;
	/* Creating a file takes writing and searching its folder. */
	if (cli_mode_allows(u, &st, 3) &&
	    !cli_user_blocked(u, dir, blocked, sizeof(blocked), &bst)) {
		printf("payhook: %s %s: missing; user %s can create it\n", what,
		    path, u->name);
		return 0;
	}
	if (cli_mode_allows(u, &st, 3))
		/* The folder would do, but one on the way is closed. */
		fprintf(stderr, "payhook: %s %s: missing, and user %s cannot "
		    "enter %s (%s) to create it\n", what, path, u->name,
		    blocked, cli_owned(&bst, own));
	else
		fprintf(stderr, "payhook: %s %s: missing, and user %s cannot "
		    "create it in %s (%s)\n", what, path, u->name, dir,
		    cli_owned(&st, own));
	return -1;
}

/* The files a profile's plugin reads (its FILE, SECRET_FILE, FILES keys). */
static int
cli_user_profile(const struct cli_user *u, const struct conf *conf,
    const struct conf_profile *pr)
{
	const struct ph_conf_key *keys = pr->plugin->prov->conf_keys;
	size_t j;
	int bad = 0;

	for (j = 0; keys[j].name != NULL; j++) {
		char list[4096], *tok, *save;

		if ((keys[j].type != PH_CONF_FILE &&
		    keys[j].type != PH_CONF_SECRET_FILE &&
		    keys[j].type != PH_CONF_FILES) || !pr->values[j].present)
			continue;
		ph_strlcpy(list, pr->values[j].str, sizeof(list));
		for (tok = strtok_r(list, " \t", &save); tok != NULL;
		    tok = strtok_r(NULL, " \t", &save)) {
			char *full = conf_path(conf, tok);

			if (full != NULL)
				bad |= cli_user_may(u, full, 4, keys[j].name);
			free(full);
		}
	}
	if (pr->client_cert_file != NULL)
		bad |= cli_user_may(u, pr->client_cert_file, 4,
		    "client_cert_file");
	if (pr->client_key_file != NULL)
		bad |= cli_user_may(u, pr->client_key_file, 4,
		    "client_key_file");
	return bad;
}

/* The store's folder, the store and the files beside it. */
static int
cli_user_store(const struct cli_user *u, const struct conf *conf)
{
	static const struct {
		const char *suffix;
		const char *what;
		int archive;		/* only when archive_days keeps one */
		int want;
	} beside[] = {
		{ "", "database", 0, 6 },
		{ "-lock", "database lock file", 0, 6 },
		{ METRICS_FILE_SUFFIX, "metrics file", 0, 6 },
		{ STORE_GROUP_SUFFIX, "group commit file", 0, 6 },
		{ "-archive", "notification archive folder", 1, 7 },
		{ "-archive/seg", "notification segments folder", 1, 7 },
		{ "-archive/hints", "query hints folder", 1, 7 },
		{ "-archive/budget", "archive budget file", 1, 6 },
	};
	char *dir, path[4096];
	size_t i;
	int bad = 0;

	if ((dir = strdup(conf->db_path)) == NULL)
		return -1;
	bad |= cli_user_may_make(u, dirname(dir), 7, "database folder");
	free(dir);
	for (i = 0; i < sizeof(beside) / sizeof(beside[0]); i++) {
		if (beside[i].archive && conf->archive_days == 0)
			continue;
		snprintf(path, sizeof(path), "%s%s", conf->db_path,
		    beside[i].suffix);
		bad |= cli_user_may_make(u, path, beside[i].want,
		    beside[i].what);
	}
	return bad;
}

/*
 * Everything payhook.fcgi opens, checked as user: CLI_EXIT_OK, or
 * CLI_EXIT_CONFIG with each problem printed, or CLI_EXIT_USAGE when there
 * is no such user.
 */
int
cli_check_user(const struct conf *conf, const char *user)
{
	struct cli_user u;
	struct passwd *pw;
	size_t i;
	int bad = 0;

	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "payhook: no user %s on this machine\n", user);
		return CLI_EXIT_USAGE;
	}
	u.name = user;
	u.uid = pw->pw_uid;
	u.ngroups = 64;
	if (getgrouplist(user, pw->pw_gid, u.groups, &u.ngroups) == -1)
		u.ngroups = 0;
	bad |= cli_user_may(&u, conf->path, 4, "configuration file");
	if (conf->api_token_file != NULL)
		bad |= cli_user_may(&u, conf->api_token_file, 4, "token file");
	if (conf->metrics_token_file != NULL)
		bad |= cli_user_may(&u, conf->metrics_token_file, 4,
		    "metrics_token_file");
	if (conf->pg_password_file != NULL)
		bad |= cli_user_may(&u, conf->pg_password_file, 4,
		    "pg_password_file");
	if (conf->ca_file != NULL)
		bad |= cli_user_may(&u, conf->ca_file, 4, "ca_file");
	for (i = 0; i < conf->npushes; i++)
		if (conf->pushes[i].secret_file != NULL)
			bad |= cli_user_may(&u, conf->pushes[i].secret_file, 4,
			    "push secret_file");
	bad |= cli_user_may(&u, conf->plugin_dir, 5, "plugin folder");
	for (i = 0; i < conf->loader.n; i++)
		bad |= cli_user_may(&u, conf->loader.plugins[i].file, 4,
		    "plugin");
	for (i = 0; i < conf->nprofiles; i++)
		bad |= cli_user_profile(&u, conf, &conf->profiles[i]);
	bad |= cli_user_store(&u, conf);
	return bad ? CLI_EXIT_CONFIG : CLI_EXIT_OK;
}
