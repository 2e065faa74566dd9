/*
 * The configuration loader: the input is a payhook.conf, read with its
 * key files and the build tree's plugins.  Inputs naming plugin_dir are
 * skipped, so the loader only ever opens payhook's own plugins.
 */
#include "conf/conf.h"
#include "ops/log.h"

#include "fuzz.h"
#include "fzcore.h"

void
fz_init(void)
{
	log_init("fuzz_conf", LOG_LVL_ERROR);
	fz_scratch();
}

void
fz_fini(void)
{
	fz_scratch_remove();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errs *errs;
	struct conf *c = NULL;
	char path[512], why[64];
	long sched[CONF_SCHEDULE_MAX];
	size_t n;
	char *text;
	FILE *f;

	if (memmem(data, size, "plugin_dir", 10) != NULL)
		return 0;
	text = fz_strndup(data, size);
	(void)conf_parse_schedule(text, sched, CONF_SCHEDULE_MAX, &n, why,
	    sizeof(why));
	(void)conf_name_valid(text, size);
	snprintf(path, sizeof(path), "%s/payhook.conf", fz_dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fprintf(f, "[core]\nplugin_dir = %s\n", fz_plugins);
	fwrite(data, 1, size, f);
	fclose(f);
	if ((errs = calloc(1, sizeof(*errs))) == NULL)
		abort();
	if (conf_open(path, &c, errs) == 0) {
		if (c == NULL || conf_errs_count(errs) != 0)
			abort();
		(void)conf_profile(c, "wxshop");
		conf_free(c);
	}
	free(errs);
	free(text);
	return 0;
}
