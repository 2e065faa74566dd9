/*
 * What the unit tests of the wechat plugin's v2 side share: messages
 * under construction (a notification, an orderquery answer) signed by a
 * separate, deliberately plain implementation of the v2 signature rules
 * (doc/design/protocols.md §1.2), rendered as WeChat sends them and fed
 * to the plugin; v2 profiles.  Nothing here prints TAP; the tests do.
 */
#ifndef PH_WECHAT_V2_FIXTURE_H
#define PH_WECHAT_V2_FIXTURE_H

#include <stddef.h>

#include <payhook/provider.h>

#include "../../lib/helpers.h"

#define KEY_MD5  "192006250b4c09247ec02edce69f6a2d"
#define KEY_HMAC "Hm4cK3yE2eTestKeyForSha256Prof1x"
#define APPID    "wx2421b1c4370ec43b"
#define MCH_ID   "10000100"

/* Sets field k of n to v (NULL: removes it), sent as it is, never
 * encoded. */
void w2fx_set_raw(struct th_note *n, const char *k, const char *v);
/* A realistic successful payment, in the order WeChat sends it. */
void w2fx_base_note(struct th_note *n, const char *order, const char *txn);
/* An orderquery answer for a paid order, in the order WeChat writes it
 * (not signed yet). */
void w2fx_query_note(struct th_note *n, const char *order, const char *txn,
    const char *state);

/*
 * The v2 signature, written out step by step: drop sign and empty
 * values, sort names byte-wise, join k=v with &, append &key=KEY, then
 * MD5 or HMAC-SHA256 (keyed with KEY), upper-case hex.  include_empty
 * builds a wrong sign on purpose.
 */
void w2fx_sign_with(struct th_note *n, const char *key, const char *alg,
    int include_empty);
/* The right v2 signature of n with key and alg ("MD5", "HMAC-SHA256"). */
void w2fx_sign_note(struct th_note *n, const char *key, const char *alg);
/* n as WeChat's XML, into out: its length. */
size_t w2fx_render(const struct th_note *n, char *out, size_t cap);

/* Makes a v2 profile into *ctx (NULL arguments: not given); d gets the
 * reason of a failure. */
int w2fx_mkprofile(void **ctx, const char *appid, const char *mch_id,
    const char *key, const char *sign_type, struct ph_diag *d);
/* The notification body (len bytes, text/xml) to parse_notify, received
 * at 1414647400. */
int w2fx_run_body(void *ctx, const char *body, size_t len,
    struct ph_event *ev, struct ph_diag *d);
/* The notification n, rendered, to parse_notify. */
int w2fx_run(void *ctx, const struct th_note *n, struct ph_event *ev,
    struct ph_diag *d);

/* The order id, of 1 fen, created at 1414647000. */
struct ph_order_ref *w2fx_order_ref(const char *id);
/* An answer of status and body (len bytes) to an orderquery of order,
 * or with close a closeorder: d emptied and *ev filled with junk
 * beforehand. */
int w2fx_answer_body(void *ctx, int close, const char *order, int status,
    const char *body, size_t len, struct ph_event *ev, struct ph_diag *d);
/* n, rendered, as the 200 answer to the call. */
int w2fx_answer(void *ctx, int close, const char *order,
    const struct th_note *n, struct ph_event *ev, struct ph_diag *d);

#endif
