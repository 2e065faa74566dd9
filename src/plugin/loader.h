/*
 * Provider plugin loader: opens shared objects from the plugin folder and
 * checks their table before anything calls into them.
 */
#ifndef PH_LOADER_H
#define PH_LOADER_H

#include <stddef.h>

#include <payhook/provider.h>

struct loader_plugin {
	char *file;			/* the path opened */
	char *file_name;		/* as the config named it */
	void *handle;			/* dlopen handle */
	const struct ph_provider *prov;	/* points into the object */
};

#define LOADER_MAX 32

struct loader {
	struct loader_plugin plugins[LOADER_MAX];
	size_t n;
};

/*
 * Returns the plugin the config calls name ("wechat" opens dir/wechat.so),
 * opening it on first use.  Refuses a missing file, a missing symbol, a
 * wrong ABI, an incomplete table, or a second file with a name already
 * taken; diag names the file and the reason.
 */
int loader_get(struct loader *l, const char *dir, const char *name,
    const struct loader_plugin **out, struct ph_diag *diag);
/* Opens one file by path, for tools and tests. */
int loader_open_path(struct loader *l, const char *path,
    const struct loader_plugin **out, struct ph_diag *diag);
void loader_close(struct loader *l);

/*
 * What a call into prov returned, made safe to read before anything acts
 * on it: its diag terminated (a plugin may fill all of it), and a status
 * that is not one of enum ph_status (a bug in the plugin) turned into
 * PH_E_INTERNAL with a diag that names the plugin and what it returned.
 * Every caller of a plugin's callback passes its result through it.
 */
int loader_result(const struct ph_provider *prov, int rc,
    struct ph_diag *diag);

/* The outcome a notification parse_notify refused with rc is counted,
 * logged and archived under: "refused_signature", "refused_merchant",
 * "refused_malformed", "refused_field", "refused_unsupported" or
 * "refused_other". */
const char *loader_refusal(int rc);

/*
 * The order id a refused notification names, unverified, through prov's
 * notify_hint (ctx is the profile's): written to order_id, terminated,
 * and "" where the plugin has no hint, finds none or fails.  Returns 1
 * when one was found.  Nothing is ever applied from it.
 */
int loader_hint(const struct ph_provider *prov, void *ctx,
    const struct ph_request *req, char order_id[PH_ID_MAX + 1]);

#endif
