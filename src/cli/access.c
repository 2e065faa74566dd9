/*
 * check --user: can the web server's user do what payhook.fcgi does?
 * Judged from the mode bits, so that root can check for any user without
 * becoming it.
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

#include "cli/cli.h"

/* The identity a check is made for: the web server's user. */
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

/* Can user reach and use path?  Prints the problem; 0 when fine. */
static int
cli_user_may(const struct cli_user *u, const char *path, int want,
    const char *what)
{
	char dir[4096], *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	/* Every folder on the way must be searchable. */
	for (slash = strchr(dir + 1, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (stat(dir, &st) == 0 && !cli_mode_allows(u, &st, 1)) {
			fprintf(stderr, "payhook: user %s cannot enter %s, on the "
			    "way to the %s %s\n", u->name, dir, what, path);
			return -1;
		}
		*slash = '/';
	}
	if (stat(path, &st) == -1) {
		fprintf(stderr, "payhook: %s %s: %s\n", what, path,
		    strerror(errno));
		return -1;
	}
	if (!cli_mode_allows(u, &st, want)) {
		fprintf(stderr, "payhook: user %s cannot %s the %s %s (mode "
		    "%04o, owner %ld)\n", u->name, want & 2 ? "write" : "read",
		    what, path, (unsigned)(st.st_mode & 07777),
		    (long)st.st_uid);
		return -1;
	}
	return 0;
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
	char *dir, path[4096];
	size_t i, j, k;
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
	bad |= cli_user_may(&u, conf->plugin_dir, 5, "plugin folder");
	for (i = 0; i < conf->loader.n; i++)
		bad |= cli_user_may(&u, conf->loader.plugins[i].file, 4,
		    "plugin");
	for (i = 0; i < conf->nprofiles; i++) {
		const struct conf_profile *pr = &conf->profiles[i];
		const struct ph_conf_key *keys = pr->plugin->prov->conf_keys;

		for (j = 0; keys[j].name != NULL; j++) {
			char list[4096], *tok, *save;

			if ((keys[j].type != PH_CONF_FILE &&
			    keys[j].type != PH_CONF_SECRET_FILE &&
			    keys[j].type != PH_CONF_FILES) ||
			    !pr->values[j].present)
				continue;
			snprintf(list, sizeof(list), "%s", pr->values[j].str);
			for (k = 0, tok = strtok_r(list, " \t", &save);
			    tok != NULL; tok = strtok_r(NULL, " \t", &save),
			    k++) {
				char *full = conf_path(conf, tok);

				if (full != NULL)
					bad |= cli_user_may(&u, full, 4,
					    keys[j].name);
				free(full);
			}
		}
		if (pr->client_key_file != NULL)
			bad |= cli_user_may(&u, pr->client_key_file, 4,
			    "client_key_file");
	}
	if ((dir = strdup(conf->db_path)) != NULL) {
		bad |= cli_user_may(&u, dirname(dir), 7, "database folder");
		free(dir);
	}
	bad |= cli_user_may(&u, conf->db_path, 6, "database");
	snprintf(path, sizeof(path), "%s-lock", conf->db_path);
	bad |= cli_user_may(&u, path, 6, "database lock file");
	snprintf(path, sizeof(path), "%s-metrics", conf->db_path);
	if (access(path, F_OK) == 0)
		bad |= cli_user_may(&u, path, 6, "metrics file");
	return bad ? CLI_EXIT_CONFIG : CLI_EXIT_OK;
}
