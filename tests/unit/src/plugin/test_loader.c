/*
 * The plugin loader refuses, with the file and the reason, a missing file,
 * a missing symbol, a wrong ABI version and a second plugin with a name
 * already taken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/loader.h"
#include "../../lib/tap.h"

static char providers[512], unit[512];

static int
try(struct loader *l, const char *dir, const char *name, struct ph_diag *d)
{
	const struct loader_plugin *p;

	memset(d, 0, sizeof(*d));
	return loader_get(l, dir, name, &p, d);
}

int
main(void)
{
	/* Plugins refused, each with what its diagnostic must say beside
	 * the file's name (NULL: both ABI versions); ours are the broken
	 * ones built in tests/unit/src/plugin. */
	static const struct {
		int ours;
		const char *name, *what, *named, *naming;
	} bad[] = {
		{ 0, "nosuch", "a missing file is refused", "No such file",
		    "... naming it" },
		{ 1, "nosym", "a missing symbol is refused", "payhook_provider",
		    "... naming it" },
		{ 1, "badabi", "a wrong ABI version is refused", NULL,
		    "... the last ABI, naming both" },
		{ 1, "dupname", "a second plugin named wechat is refused",
		    "already taken", "... naming it" },
	};
	const char *b = getenv("top_builddir");
	const struct loader_plugin *p, *p2;
	struct loader l;
	struct ph_diag d;
	char abi[96], file[32];
	size_t i;

	if (b == NULL)
		b = ".";
	snprintf(providers, sizeof(providers), "%s/providers/.libs", b);
	snprintf(unit, sizeof(unit), "%s/tests/unit/src/plugin/.libs", b);
	memset(&l, 0, sizeof(l));

	is_int(loader_get(&l, providers, "wechat", &p, &d), PH_OK,
	    "wechat plugin loads");
	ok(p != NULL && strcmp(p->prov->name, "wechat") == 0 &&
	    p->prov->abi == PH_PROVIDER_ABI, "... with its table");
	ok(p->prov->caps & PH_CAP_NOTIFY, "... takes notifications");
	is_int(loader_get(&l, providers, "wechat", &p2, &d), PH_OK,
	    "loading it again is fine");
	ok(p == p2, "... and gives the same plugin");

	snprintf(abi, sizeof(abi), "ABI version %u, this payhook needs %u",
	    (unsigned)PH_PROVIDER_ABI - 1, (unsigned)PH_PROVIDER_ABI);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(try(&l, bad[i].ours ? unit : providers, bad[i].name, &d),
		    PH_E_PLUGIN, "%s", bad[i].what);
		snprintf(file, sizeof(file), "%s.so", bad[i].name);
		ok(strstr(d.msg, file) != NULL && strstr(d.msg,
		    bad[i].named != NULL ? bad[i].named : abi) != NULL,
		    "%s: %s", bad[i].naming, d.msg);
	}

	/* What a plugin's call gives back, made safe to read. */
	memset(d.msg, 'x', sizeof(d.msg));
	is_int(loader_result(p->prov, PH_E_FIELD, &d), PH_E_FIELD,
	    "a plugin's status is kept");
	ok(strlen(d.msg) == sizeof(d.msg) - 1, "... its diag, filled to the "
	    "last byte, is terminated");
	is_int(loader_result(p->prov, 9999, &d), PH_E_INTERNAL, "a status "
	    "that is none: PH_E_INTERNAL");
	ok(strstr(d.msg, "plugin wechat returned 9999") != NULL,
	    "... naming the plugin and what it returned: %s", d.msg);
	is_int(loader_result(p->prov, -3, &d), PH_E_INTERNAL, "... a "
	    "negative one too");

	is_int(try(&l, unit, "../x", &d), PH_E_CONFIG,
	    "a name with a path in it is refused");
	is_int(l.n, 1, "only the good plugin stays loaded");
	loader_close(&l);
	return done_testing();
}
