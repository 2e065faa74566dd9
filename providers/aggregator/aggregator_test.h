/*
 * What the unit tests and fuzz targets of the aggregator plugin call beyond
 * aggregator_int.h, visible only in its test build (-DPH_UNITTEST,
 * providers/aggregator/libaggregator_test.la).
 */
#ifndef PAYHOOK_AGGREGATOR_TEST_H
#define PAYHOOK_AGGREGATOR_TEST_H

#include "aggregator_int.h"

/* The plugin's one exported symbol, as the loader finds it. */
const struct ph_provider *payhook_provider(void);

#endif /* PAYHOOK_AGGREGATOR_TEST_H */
