/*
 * payhook's fuzz targets.  Each target defines LLVMFuzzerTestOneInput()
 * and may define fz_init(), called once before the first input.  main.c
 * either replays the target's corpus as a TAP test (make check) or, in a
 * build configured with --enable-fuzzing, runs libFuzzer on it for
 * PAYHOOK_FUZZ_SECONDS (make fuzz).
 *
 * Targets reach past signature checks only by signing the fuzzed fields
 * themselves with fixed test keys: nothing here, and nothing in the
 * shipped plugins, skips verification.
 */
#ifndef PH_FUZZ_H
#define PH_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional one-time set-up of a target; main.c calls it when defined. */
void fz_init(void) __attribute__((weak));
/* Optional clean-up after a replay, so leak checkers see a clean exit. */
void fz_fini(void) __attribute__((weak));

/* A setting handed to a profile: name, then its value (for FILE and
 * SECRET_FILE and FILES types the file's contents). */
struct fz_setting {
	const char *name;
	const char *value;
};

/*
 * Makes a profile of prov from settings (NULL-name terminated); keys not
 * given take their defaults.  Aborts when the plugin refuses: a fuzz
 * target with a broken profile would test nothing.
 */
void *fz_profile(const struct ph_provider *prov, const char *name,
    const struct fz_setting *settings);

/*
 * Splits data at the first occurrence of byte sep: the head is
 * [data, data + *head_len), the rest follows the separator (empty when
 * there is none).  Returns a pointer to the rest.
 */
const uint8_t *fz_split(const uint8_t *data, size_t size, uint8_t sep,
    size_t *head_len, size_t *rest_len);

/* A NUL-terminated copy of n bytes (caller frees). */
char *fz_strndup(const uint8_t *p, size_t n);

/*
 * Adds to kv the fields of data read as "name=value" lines (a shape the
 * fuzzer finds easily), leaving out a line without '=' or with an empty
 * name and a field whose name is in skip (NULL-terminated; NULL: none).
 */
void fz_fields(const uint8_t *data, size_t size, const char *const *skip,
    struct ph_kvlist *kv);

/*
 * What the provider targets check of a plugin's answers; each aborts on
 * a breach.
 */
/* A diagnostic that fills its buffer without a NUL. */
void fz_check_diag(const struct ph_diag *diag);
/* Only when rc is PH_OK: an event whose kind is past PH_EV__MAX or whose
 * amount is below 0 or above PH_AMOUNT_MAX, and with these flags an
 * order_id that fills its buffer (FZ_EV_ORDER), a dedup_key that fills
 * its buffer (FZ_EV_DEDUP_BOUNDED) or is empty (FZ_EV_DEDUP). */
#define FZ_EV_ORDER		0x1u
#define FZ_EV_DEDUP		0x2u
#define FZ_EV_DEDUP_BOUNDED	0x4u
void fz_check_event(int rc, const struct ph_event *ev, unsigned flags);
/* Every ack kind written for an answer rc (diag's message when not
 * PH_OK): a body longer than its buffer. */
void fz_check_acks(const struct ph_provider *prov, void *ctx, int rc,
    const struct ph_diag *diag);
/* A notify_hint that says PH_OK with an order id filling its buffer. */
void fz_check_hint(const struct ph_provider *prov, void *ctx,
    const struct ph_request *req);

/* Fields decoded again from what a writer made of a: a count, a name or
 * a value's length that differs from a's, and with values a value's
 * bytes. */
void fz_check_same_fields(const struct ph_kvlist *a,
    const struct ph_kvlist *again, int values);

/* An order of amount CNY minor units with no txn_id, made at created_at,
 * with attempt as its attempt data: the rest empty. */
void fz_order(struct ph_order_ref *o, const char *order_id, int64_t amount,
    int64_t created_at, const char *attempt);
/* Hands req to prov's parse_notify and checks the diagnostic (left in
 * *diag for the acknowledgements) and the event with fz_check_event's
 * flags; returns what parse_notify said. */
int fz_check_notify(const struct ph_provider *prov, void *ctx,
    const struct ph_request *req, unsigned flags, struct ph_diag *diag);
/* Hands in, the answer about order o, to prov's query_response (with close,
 * its close_response) and checks the diagnostic and the event with
 * fz_check_event's flags. */
void fz_check_answer(const struct ph_provider *prov, void *ctx, int close,
    const struct ph_order_ref *o, const struct ph_http_response *in,
    unsigned flags);

/* data as the HTTP 200 answer, received at now, to a query about the
 * order "A-1" of 100 CNY made at now, checked as fz_check_answer does;
 * with close, as the answer to closing that order too. */
void fz_check_query(const struct ph_provider *prov, void *ctx,
    const uint8_t *data, size_t size, int64_t now, int close,
    unsigned flags);

#endif
