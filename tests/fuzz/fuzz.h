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

#endif
