/*
 * The plugin loader refuses, with the file and the reason, a missing file,
 * a missing symbol, a wrong ABI version and a second plugin with a name
 * already taken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/loader.h"
#include "tap.h"

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
	const char *b = getenv("top_builddir");
	const struct loader_plugin *p, *p2;
	struct loader l;
	struct ph_diag d;
	char want[96];

	if (b == NULL)
		b = ".";
	snprintf(providers, sizeof(providers), "%s/providers/.libs", b);
	snprintf(unit, sizeof(unit), "%s/tests/unit/.libs", b);
	memset(&l, 0, sizeof(l));

	is_int(loader_get(&l, providers, "wechat", &p, &d), PH_OK,
	    "wechat plugin loads");
	ok(p != NULL && strcmp(p->prov->name, "wechat") == 0 &&
	    p->prov->abi == PH_PROVIDER_ABI, "... with its table");
	ok(p->prov->caps & PH_CAP_NOTIFY, "... takes notifications");
	is_int(loader_get(&l, providers, "wechat", &p2, &d), PH_OK,
	    "loading it again is fine");
	ok(p == p2, "... and gives the same plugin");

	is_int(try(&l, providers, "nosuch", &d), PH_E_PLUGIN,
	    "a missing file is refused");
	ok(strstr(d.msg, "nosuch.so") != NULL &&
	    strstr(d.msg, "No such file") != NULL, "... naming it: %s", d.msg);

	is_int(try(&l, unit, "nosym", &d), PH_E_PLUGIN,
	    "a missing symbol is refused");
	ok(strstr(d.msg, "nosym.so") != NULL &&
	    strstr(d.msg, "payhook_provider") != NULL, "... naming it: %s",
	    d.msg);

	is_int(try(&l, unit, "badabi", &d), PH_E_PLUGIN,
	    "a wrong ABI version is refused");
	snprintf(want, sizeof(want), "ABI version %u, this payhook needs %u",
	    (unsigned)PH_PROVIDER_ABI - 1, (unsigned)PH_PROVIDER_ABI);
	ok(strstr(d.msg, "badabi.so") != NULL &&
	    strstr(d.msg, want) != NULL, "... the last ABI, naming both: %s",
	    d.msg);

	is_int(try(&l, unit, "dupname", &d), PH_E_PLUGIN,
	    "a second plugin named wechat is refused");
	ok(strstr(d.msg, "dupname.so") != NULL &&
	    strstr(d.msg, "already taken") != NULL, "... naming it: %s",
	    d.msg);

	is_int(try(&l, unit, "../x", &d), PH_E_CONFIG,
	    "a name with a path in it is refused");
	is_int(l.n, 1, "only the good plugin stays loaded");
	loader_close(&l);
	return done_testing();
}
