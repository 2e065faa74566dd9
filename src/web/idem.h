/*
 * Idempotency-Key on the merchant's mutating calls: a retry with the same
 * key and request gets the answer the first call got, byte for byte, and
 * makes no second effect.
 */
#ifndef PH_IDEM_H
#define PH_IDEM_H

#include "web/web.h"

/*
 * Runs handler for req under its Idempotency-Key: without one, as is;
 * with an invalid one, 400 invalid_idempotency_key; with one used before
 * for another request, 422 idempotency_key_reused; while the first call
 * with it still runs, 409 idempotency_key_in_use; after it, the kept
 * answer (resp->replayed).
 */
void idem_run(struct web_ctx *ctx, const struct web_request *req,
    const char *param, web_handler *handler, struct web_response *resp);

#endif
