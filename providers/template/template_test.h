/*
 * What the unit tests of the template plugin call, from its test build
 * (-DPH_UNITTEST, providers/template/libtemplate_test.la): a plugin that
 * marks functions PH_UNITTEST_STATIC declares them here.
 */
#ifndef PAYHOOK_TEMPLATE_TEST_H
#define PAYHOOK_TEMPLATE_TEST_H

#include <payhook/provider.h>

/* The plugin's one exported symbol, as the loader finds it. */
const struct ph_provider *payhook_provider(void);

#endif /* PAYHOOK_TEMPLATE_TEST_H */
