/*
 * What the unit tests and fuzz targets of the alipay plugin call beyond
 * alipay_int.h, visible only in its test build (-DPH_UNITTEST,
 * providers/alipay/libalipay_test.la).
 */
#ifndef PAYHOOK_ALIPAY_TEST_H
#define PAYHOOK_ALIPAY_TEST_H

#include "alipay_int.h"

/* The plugin's one exported symbol, as the loader finds it. */
const struct ph_provider *payhook_provider(void);

#endif /* PAYHOOK_ALIPAY_TEST_H */
