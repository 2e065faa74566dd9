/*
 * What the unit tests and fuzz targets of the unionpay plugin call beyond
 * unionpay_int.h, visible only in its test build (-DPH_UNITTEST,
 * providers/unionpay/libunionpay_test.la).
 */
#ifndef PAYHOOK_UNIONPAY_TEST_H
#define PAYHOOK_UNIONPAY_TEST_H

#include "unionpay_int.h"

/* The plugin's one exported symbol, as the loader finds it. */
const struct ph_provider *payhook_provider(void);

#endif /* PAYHOOK_UNIONPAY_TEST_H */
