/*
 * Plugin loader.  Everything a plugin's table promises is checked here,
 * once, so the rest of the core can call through it without re-checking.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <payhook/sdk.h>

#include "plugin/loader.h"

static int
loader_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 32)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static int
loader_check_table(const char *path, const struct ph_provider *p,
    struct ph_diag *diag)
{
	if (p == NULL)
		return ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: %s() returned no table", path,
		    PH_PROVIDER_SYMBOL);
	if (p->abi != PH_PROVIDER_ABI)
		return ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: ABI version %u, this payhook needs %u: "
		    "rebuild it against this payhook's SDK", path,
		    (unsigned)p->abi, (unsigned)PH_PROVIDER_ABI);
	if (p->name == NULL || !loader_name_valid(p->name))
		return ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: missing or invalid provider name", path);
	if (p->profile_new == NULL || p->profile_free == NULL ||
	    p->ack == NULL || p->conf_keys == NULL)
		return ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: table lacks a required entry "
		    "(profile_new, profile_free, ack, conf_keys)", path);
	if ((p->caps & PH_CAP_NOTIFY) && p->parse_notify == NULL)
		return ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: claims notifications but has no parse_notify",
		    path);
	if ((p->caps & PH_CAP_QUERY) && (p->query_request == NULL ||
	    p->query_response == NULL))
		return ph_fail(diag, PH_E_PLUGIN, "plugin %s: claims queries "
		    "but lacks query_request or query_response", path);
	if ((p->caps & PH_CAP_CLOSE) && (p->close_request == NULL ||
	    p->close_response == NULL))
		return ph_fail(diag, PH_E_PLUGIN, "plugin %s: claims close "
		    "but lacks close_request or close_response", path);
	if ((p->caps & PH_CAP_REFUND) && (p->refund_request == NULL ||
	    p->refund_response == NULL))
		return ph_fail(diag, PH_E_PLUGIN, "plugin %s: claims refunds "
		    "but lacks refund_request or refund_response", path);
	if ((p->caps & PH_CAP_STATEMENT) && p->statement_line == NULL)
		return ph_fail(diag, PH_E_PLUGIN, "plugin %s: claims "
		    "statements but has no statement_line", path);
	if ((p->caps & PH_CAP_DOWNLOAD) && (!(p->caps & PH_CAP_STATEMENT) ||
	    p->statement_request == NULL || p->statement_response == NULL))
		return ph_fail(diag, PH_E_PLUGIN, "plugin %s: claims "
		    "statement downloads but lacks statement_line, "
		    "statement_request or statement_response", path);
	return PH_OK;
}

int
loader_open_path(struct loader *l, const char *path,
    const struct loader_plugin **out, struct ph_diag *diag)
{
	struct loader_plugin *lp;
	const struct ph_provider *p;
	ph_provider_fn fn;
	struct stat st;
	void *h;
	size_t i;
	int rc;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->plugins[i].file, path) == 0) {
			*out = &l->plugins[i];
			return PH_OK;
		}
	if (l->n == LOADER_MAX)
		return ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: more than %d plugins", path, LOADER_MAX);
	if (stat(path, &st) == -1)
		return ph_fail(diag, PH_E_PLUGIN, "plugin %s: %s", path,
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: not a regular file", path);
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return ph_fail(diag, PH_E_PLUGIN, "plugin %s: %s", path,
		    dlerror());
	*(void **)&fn = dlsym(h, PH_PROVIDER_SYMBOL);
	if (fn == NULL) {
		rc = ph_fail(diag, PH_E_PLUGIN,
		    "plugin %s: no symbol %s (not a payhook provider?)", path,
		    PH_PROVIDER_SYMBOL);
		goto fail;
	}
	p = fn();
	if ((rc = loader_check_table(path, p, diag)) != PH_OK)
		goto fail;
	for (i = 0; i < l->n; i++)
		if (strcmp(l->plugins[i].prov->name, p->name) == 0) {
			rc = ph_fail(diag, PH_E_PLUGIN,
			    "plugin %s: provider name \"%s\" is already taken "
			    "by %s", path, p->name, l->plugins[i].file);
			goto fail;
		}
	lp = &l->plugins[l->n];
	memset(lp, 0, sizeof(*lp));
	if ((lp->file = strdup(path)) == NULL) {
		rc = ph_fail(diag, PH_E_NOMEM, "out of memory");
		goto fail;
	}
	lp->handle = h;
	lp->prov = p;
	l->n++;
	*out = lp;
	return PH_OK;
fail:
	dlclose(h);
	return rc;
}

int
loader_get(struct loader *l, const char *dir, const char *name,
    const struct loader_plugin **out, struct ph_diag *diag)
{
	struct ph_buf path;
	struct loader_plugin *lp;
	size_t i;
	int rc;

	if (!loader_name_valid(name))
		return ph_fail(diag, PH_E_CONFIG,
		    "plugin name \"%s\" is invalid: 1-32 of [a-z0-9_]", name);
	for (i = 0; i < l->n; i++)
		if (l->plugins[i].file_name != NULL &&
		    strcmp(l->plugins[i].file_name, name) == 0) {
			*out = &l->plugins[i];
			return PH_OK;
		}
	ph_buf_init(&path, 4096);
	ph_buf_printf(&path, "%s/%s.so", dir, name);
	if (path.err) {
		ph_buf_free(&path);
		return ph_fail(diag, PH_E_CONFIG, "plugin path too long");
	}
	rc = loader_open_path(l, path.data, out, diag);
	ph_buf_free(&path);
	if (rc != PH_OK)
		return rc;
	lp = (struct loader_plugin *)*out;
	if (lp->file_name == NULL && (lp->file_name = strdup(name)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	return PH_OK;
}

void
loader_close(struct loader *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->plugins[i].file);
		free(l->plugins[i].file_name);
		/* Sanitizer builds keep objects mapped for symbolised reports. */
		if (getenv("PAYHOOK_NO_DLCLOSE") == NULL)
			dlclose(l->plugins[i].handle);
	}
	l->n = 0;
}

int
loader_result(const struct ph_provider *prov, int rc, struct ph_diag *diag)
{
	diag->msg[sizeof(diag->msg) - 1] = '\0';
	if (rc >= PH_OK && rc < PH_E__MAX)
		return rc;
	return ph_fail(diag, PH_E_INTERNAL, "plugin %s returned %d, which "
	    "is no status (enum ph_status)", prov->name, rc);
}

const char *
loader_refusal(int rc)
{
	switch (rc) {
	case PH_E_SIGNATURE:
		return "refused_signature";
	case PH_E_MERCHANT:
		return "refused_merchant";
	case PH_E_MALFORMED:
	case PH_E_TOOBIG:
		return "refused_malformed";
	case PH_E_FIELD:
		return "refused_field";
	case PH_E_UNSUPPORTED:
		return "refused_unsupported";
	default:
		return "refused_other";
	}
}

int
loader_hint(const struct ph_provider *prov, void *ctx,
    const struct ph_request *req, char order_id[PH_ID_MAX + 1])
{
	order_id[0] = '\0';
	if (prov->notify_hint == NULL ||
	    prov->notify_hint(ctx, req, order_id) != PH_OK) {
		order_id[0] = '\0';
		return 0;
	}
	order_id[PH_ID_MAX] = '\0';
	return order_id[0] != '\0';
}
