/*
 * What the unit tests of the wechat plugin call beyond wechat_int.h:
 * functions that are static in the plugin and visible only in its test
 * build (-DPH_UNITTEST, providers/wechat/libwechat_test.la).
 */
#ifndef PAYHOOK_WECHAT_TEST_H
#define PAYHOOK_WECHAT_TEST_H

#include "wechat_int.h"

/* The plugin's one exported symbol, as the loader finds it. */
const struct ph_provider *payhook_provider(void);

/* v3.c: the sign string and the merchant's signature of it. */
int wx3_message(const struct wx3_line *l, size_t n, struct ph_buf *msg);
int wx3_sign_lines(const struct wx3_ctx *v3, const struct wx3_line *l,
    size_t n, struct ph_buf *sig, struct ph_diag *diag);

/* bill.c: the bytes of the bill reader's state. */
extern const size_t wxb_state_size;

#endif /* PAYHOOK_WECHAT_TEST_H */
