/*
 * Claims this process could not let go (web/stuck.h): a short list kept
 * in the process, tried again before each request.
 */
#include <string.h>

#include <payhook/sdk.h>

#include "ledger/ledger.h"
#include "ops/log.h"
#include "web/stuck.h"

#define WEB_STUCK_MAX 16

static struct web_stuck {
	enum web_stuck_kind kind;
	char id[LEDGER_IDEM_KEY_MAX + 1];	/* a key, or an order's id */
	char token[33];
} web_stuck[WEB_STUCK_MAX];
static size_t web_nstuck;

void
web_stuck_add(enum web_stuck_kind kind, const char *id, const char *token)
{
	struct web_stuck *w;

	if (web_nstuck == WEB_STUCK_MAX) {
		memmove(web_stuck, web_stuck + 1,
		    (WEB_STUCK_MAX - 1) * sizeof(web_stuck[0]));
		web_nstuck--;
	}
	w = &web_stuck[web_nstuck++];
	w->kind = kind;
	ph_strlcpy(w->id, id, sizeof(w->id));
	ph_strlcpy(w->token, token, sizeof(w->token));
}

/* Lets w go: PH_OK, or the store's error (kept for the next request). */
static int
web_stuck_let_go(struct store *s, const struct web_stuck *w)
{
	struct ledger_idem idem;

	if (w->kind == WEB_STUCK_GUARD)
		return ledger_guard_release(s, w->id, w->token);
	/* An Idempotency-Key's claim goes as after a 5xx answer. */
	memset(&idem, 0, sizeof(idem));
	ph_strlcpy(idem.key, w->id, sizeof(idem.key));
	memcpy(idem.token, w->token, sizeof(idem.token));
	return ledger_idem_end(s, &idem, 503, "", 0);
}

void
web_stuck_release(struct store *s)
{
	while (web_nstuck > 0) {
		if (web_stuck_let_go(s, &web_stuck[0]) != PH_OK)
			return;
		log_info("%s %s: let go after the store failed under its call",
		    web_stuck[0].kind == WEB_STUCK_GUARD ? "the guard of order" :
		    "Idempotency-Key", web_stuck[0].id);
		memmove(web_stuck, web_stuck + 1,
		    --web_nstuck * sizeof(web_stuck[0]));
	}
}
