/*
 * A provider's notification: the plugin verifies and normalises it, the
 * ledger applies it durably, and only then does the plugin render the
 * acknowledgement.  A refusal or a storage failure is never acknowledged
 * as success, so the provider retries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "store/archive.h"
#include "ledger/ledger.h"
#include "ops/text.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "web/notify.h"

static int
notify_media_type_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

static void
notify_answer(const struct conf_profile *pr, enum ph_ack_kind kind,
    const char *reason, struct web_response *resp)
{
	/* The plugin's answer buffer is large: off the stack, and not on the
	 * heap either, where a block this size cost 2,000 instructions a
	 * request to take and give back.  A process serves one request at a
	 * time (payhook.fcgi has no threads).  All but the body is cleared:
	 * only body_len bytes of it are read. */
	static struct ph_response answer;
	struct ph_response *out = &answer;

	out->status = 500;
	memset(out->content_type, 0, sizeof(out->content_type));
	out->body_len = 0;
	pr->plugin->prov->ack(pr->ctx, kind, reason, out);
	if (out->body_len > sizeof(out->body))
		out->body_len = 0;
	/* What goes into the answer's head is held to HTTP's grammar: a
	 * status of three digits, a media type of visible characters
	 * (no line break a plugin could add a header with). */
	resp->status = out->status >= 200 && out->status <= 599 ?
	    out->status : 500;
	out->content_type[sizeof(out->content_type) - 1] = '\0';
	if (!notify_media_type_ok(out->content_type))
		out->content_type[0] = '\0';
	ph_strlcpy(resp->content_type, out->content_type,
	    sizeof(resp->content_type));
	ph_buf_free(&resp->body);
	ph_buf_init(&resp->body, WEB_RESP_MAX);
	ph_buf_append(&resp->body, out->body, out->body_len);
}

static void
notify_count(const struct conf_profile *pr, const char *outcome)
{
	char labels[128];

	text_cat(labels, sizeof(labels), "profile=", pr->name, "&outcome=",
	    outcome, (char *)NULL);
	metrics_add("payhook_notifications_total", labels, 1);
}

/*
 * A refused notification may still be genuine (a key mix-up): if it names
 * one of our pending orders, that order is queried soon, and the
 * notification is archived among those that may be genuine (*ours).
 * Returns the order id named (static; "" when none), for the archive.
 */
static const char *
notify_hint(struct web_ctx *ctx, const struct conf_profile *pr,
    const struct ph_request *preq, int *ours)
{
	static char order_id[PH_ID_MAX + 1];
	const struct ph_provider *prov = pr->plugin->prov;
	json_t *order;

	*ours = 0;
	if (!loader_hint(prov, pr->ctx, preq, order_id))
		return order_id;
	/* Only orders payhook knows and still waits for; read-only. */
	if (ledger_get_order(ctx->store, order_id, &order) != PH_OK)
		return order_id;
	*ours = strcmp(json_string_value(json_object_get(order, "state")),
	    "PENDING") == 0;
	json_decref(order);
	if (!*ours || ctx->conf->hint_per_minute == 0 || pr->api_base == NULL ||
	    !(prov->caps & PH_CAP_QUERY))
		return order_id;
	if (archive_hint(pr->name, order_id, preq->now,
	    ctx->conf->hint_per_minute)) {
		log_info("notify %s: refused, but it names pending order %s: "
		    "queued for a query at the provider", pr->name, order_id);
		metrics_add("payhook_hints_queued_total", "", 1);
	}
	return order_id;
}

/*
 * Keeps the notification in the archive, whatever became of it: in its
 * class (verified; refused but naming one of our pending orders; refused),
 * so that floods of forged ones only ever crowd out each other.
 */
static void
notify_archive(const struct conf_profile *pr, const struct web_request *req,
    const struct ph_request *preq, enum archive_class class,
    const char *verdict, const char *reason, const char *order_id,
    const char *outcome)
{
	struct archive_rec a;

	archive_rec_init(&a, preq, req->now, class, pr->name,
	    pr->plugin->prov->name);
	if (req->remote_addr != NULL)
		a.source = req->remote_addr;
	a.verdict = verdict;
	a.reason = reason;
	a.order_id = order_id;
	a.outcome = outcome;
	archive_put(&a);
}

void
notify_handle(struct web_ctx *ctx, const struct conf_profile *pr,
    const struct web_request *req, struct web_response *resp)
{
	const struct ph_provider *prov = pr->plugin->prov;
	struct ledger_result res;
	struct ledger_fact fact;
	struct ph_request preq;
	struct ph_event ev;
	struct ph_diag diag;
	char order_id[PH_ID_MAX + 1];
	const char *hinted;
	int rc, ours;

	memset(&preq, 0, sizeof(preq));
	preq.method = req->method;
	preq.content_type = req->content_type != NULL ? req->content_type : "";
	preq.body = req->body;
	preq.body_len = req->body_len;
	preq.headers = req->headers;
	preq.nheaders = req->nheaders;
	preq.now = req->now;
	memset(&ev, 0, sizeof(ev));
	memset(&diag, 0, sizeof(diag));

	rc = loader_result(prov, prov->parse_notify(pr->ctx, &preq, &ev,
	    &diag), &diag);
	if (rc != PH_OK) {
		/* Said once, on the request's line (fcgi_main.c), at warn:
		 * a refused signature is a failed authentication. */
		resp->note.level = LOG_LVL_WARN;
		snprintf(resp->note.reason, sizeof(resp->note.reason),
		    "%s%s%s", ph_strerror(rc), diag.msg[0] != '\0' ? ": " :
		    "", diag.msg);
		notify_answer(pr, PH_ACK_REFUSED, ph_strerror(rc), resp);
		web_note_set(resp->note.outcome, loader_refusal(rc));
		notify_count(pr, resp->note.outcome);
		hinted = notify_hint(ctx, pr, &preq, &ours);
		notify_archive(pr, req, &preq, ours ? ARCHIVE_OURS :
		    ARCHIVE_UNVERIFIED, "refused", diag.msg, hinted,
		    resp->note.outcome);
		return;
	}
	/* The contract every event is held to, whatever brought it. */
	if ((rc = ledger_event_check(&ev, &diag)) != PH_OK) {
		resp->note.level = LOG_LVL_WARN;
		snprintf(resp->note.reason, sizeof(resp->note.reason),
		    "plugin %s gave an event payhook does not accept: %s",
		    prov->name, diag.msg);
		notify_answer(pr, PH_ACK_REFUSED, ph_strerror(rc), resp);
		web_note_set(resp->note.outcome, loader_refusal(rc));
		notify_count(pr, resp->note.outcome);
		/* Verified by its signature, refused by the contract. */
		notify_archive(pr, req, &preq, ARCHIVE_VERIFIED, "refused",
		    diag.msg, "", resp->note.outcome);
		return;
	}

	fact.profile = pr->name;
	fact.provider = prov->name;
	fact.source = "notify";
	fact.ev = &ev;
	fact.now = req->now;
	memset(&diag, 0, sizeof(diag));
	rc = ledger_apply(ctx->store, &fact, &res, &diag);
	if (rc != PH_OK) {
		resp->note.level = LOG_LVL_ERROR;
		snprintf(resp->note.reason, sizeof(resp->note.reason),
		    "%s: NOT recorded, the provider will retry: %s",
		    ev.dedup_key, diag.msg);
		notify_answer(pr, PH_ACK_RETRY, "temporarily unavailable",
		    resp);
		web_note_set(resp->note.order_id, ev.order_id);
		web_note_set(resp->note.outcome, "storage_failure");
		notify_count(pr, resp->note.outcome);
		notify_archive(pr, req, &preq, ARCHIVE_VERIFIED, "verified",
		    diag.msg, ev.order_id, resp->note.outcome);
		return;
	}
	/* The request's line says it: order and outcome; the ledger's own
	 * line, the fact it recorded. */
	notify_answer(pr, PH_ACK_OK, NULL, resp);
	resp->note.acked = 1;
	ledger_fact_order_id(ctx->store, &fact, order_id);
	web_note_set(resp->note.order_id, order_id);
	web_note_set(resp->note.outcome, ledger_result_label(&res));
	notify_count(pr, resp->note.outcome);
	/* A duplicate is not archived again: what it says is known (its
	 * first copy is archived, or it came by a query), and its copies,
	 * padded with the blanks a signature does not cover, could otherwise
	 * be replayed until they evict every genuine record. */
	if (res.outcome != LEDGER_DUPLICATE)
		notify_archive(pr, req, &preq, ARCHIVE_VERIFIED, "verified",
		    "", order_id, resp->note.outcome);
}

void
notify_route(struct web_ctx *ctx, const struct web_request *req,
    const char *name, struct web_response *resp)
{
	const struct conf_profile *pr = conf_profile(ctx->conf, name);

	if (pr == NULL) {
		web_error(resp, 404, "unknown_profile",
		    "no notification profile named \"%s\"", name);
		return;
	}
	web_note_set(resp->note.profile, pr->name);
	if (!(pr->plugin->prov->caps & PH_CAP_NOTIFY))
		web_error(resp, 404, "not_found", "provider %s takes no "
		    "notifications", pr->plugin->prov->name);
	else
		notify_handle(ctx, pr, req, resp);
}
