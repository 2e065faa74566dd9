/*
 * A scratch payhook installation for the core fuzz targets: a private
 * folder with key files (one with loose permissions), the providers of
 * the build tree, and, for the router, a real store on tmpfs when there
 * is one (every commit is synced; tmpfs makes that cheap).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZ_TOKEN	"fuzz-token-0123456789abcdef"
#define FZ_WXKEY	"192006250b4c09247ec02edce69f6a2d"

static char fz_dir[256], fz_plugins[1024];

static __attribute__((unused)) void
fz_write(const char *rel, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fz_dir, rel);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static __attribute__((unused)) void
fz_scratch(void)
{
	const char *build = getenv("top_builddir");
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
	    "/tmp";
	char keys[300];

	snprintf(fz_dir, sizeof(fz_dir), "%s/payhook-fuzz-XXXXXX", base);
	if (mkdtemp(fz_dir) == NULL)
		abort();
	snprintf(keys, sizeof(keys), "%s/keys", fz_dir);
	mkdir(keys, 0700);
	fz_write("keys/api.token", FZ_TOKEN "\n", 0600);
	fz_write("keys/wechat.key", FZ_WXKEY, 0600);
	fz_write("keys/loose.key", FZ_WXKEY, 0644);
	snprintf(fz_plugins, sizeof(fz_plugins), "%s/providers/.libs",
	    build != NULL ? build : ".");
}

static __attribute__((unused)) void
fz_scratch_remove(void)
{
	char cmd[600];

	if (fz_dir[0] == '\0' || (strncmp(fz_dir,
	    "/dev/shm/payhook-fuzz-", 22) != 0 && strncmp(fz_dir,
	    "/tmp/payhook-fuzz-", 18) != 0))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fz_dir);
	(void)!system(cmd);
	fz_dir[0] = '\0';
}
