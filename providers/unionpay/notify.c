/*
 * UnionPay backend notifications: what a verified message means (the
 * amount, currency, time and outcome of the payment) and the answer
 * UnionPay expects back.
 */
#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <payhook/provider.h>
#include <payhook/sdk.h>

#include "unionpay_int.h"

const struct up_currency up_currencies[] = {
	{ "156", "CNY" }, { "344", "HKD" }, { "840", "USD" },
	{ "978", "EUR" }, { "392", "JPY" }, { "826", "GBP" },
	{ NULL, NULL },
};

int
up_amount(const struct up_msg *m, struct ph_event *ev, struct ph_diag *diag)
{
	const char *v;
	size_t i;
	int rc;

	if ((rc = ph_kv_amount(&m->kv, "txnAmt", &ev->amount, diag)) != PH_OK)
		return rc;
	if ((v = up_get(m, "currencyCode")) == NULL)
		return ph_fail(diag, PH_E_FIELD, "currencyCode: missing");
	for (i = 0; up_currencies[i].num != NULL; i++)
		if (strcmp(v, up_currencies[i].num) == 0)
			break;
	if (up_currencies[i].num == NULL)
		return ph_fail(diag, PH_E_FIELD, "currencyCode: not a "
		    "currency this plugin knows");
	memcpy(ev->currency, up_currencies[i].alpha, 4);
	return PH_OK;
}

int
up_txn_time(const struct up_msg *m, struct ph_event *ev,
    struct ph_diag *diag)
{
	const char *v = up_get(m, "txnTime");

	if (v == NULL)
		return ph_fail(diag, PH_E_FIELD, "txnTime: missing");
	if (ph_time_parse_compact(v, UP_BEIJING, &ev->occurred_at) != PH_OK)
		return ph_fail(diag, PH_E_FIELD, "txnTime: invalid");
	return PH_OK;
}

const char *const up_success_codes[] = { "00", "A6", NULL };
const char *const up_busy_codes[] = { "03", "04", "05", NULL };

/* A verified notification: a payment (01), a refund (04) or an undo
 * (31), whether it succeeded, and the dedup key of that fact. */
static int
up_notify_event(const struct up_msg *m, struct ph_event *ev,
    struct ph_diag *diag)
{
	static const char *const refunds[] = { "04", "31", NULL };
	char type[3], resp[3], qid[PH_ID_MAX + 1];
	int rc, ok, refund;

	if ((rc = up_token(m, "txnType", type, sizeof(type), 2, diag)) !=
	    PH_OK)
		return rc;
	refund = ph_in(type, refunds);
	if (!refund && strcmp(type, "01") != 0)
		return ph_fail(diag, PH_E_UNSUPPORTED, "txnType %s is not a "
		    "payment (01), refund (04) or undo (31)", type);
	if ((rc = up_token(m, "respCode", resp, sizeof(resp), 2, diag)) !=
	    PH_OK)
		return rc;
	ok = ph_in(resp, up_success_codes);
	if ((rc = up_token(m, "orderId", ev->order_id, sizeof(ev->order_id),
	    UP_ORDER_MAX, diag)) != PH_OK ||
	    (rc = up_token(m, "queryId", qid, sizeof(qid), PH_ID_MAX,
	    diag)) != PH_OK ||
	    (rc = up_amount(m, ev, diag)) != PH_OK ||
	    (rc = up_txn_time(m, ev, diag)) != PH_OK)
		return rc;
	if (refund) {
		ev->kind = ok ? PH_EV_REFUND_SUCCEEDED : PH_EV_REFUND_FAILED;
		memcpy(ev->refund_id, qid, strlen(qid) + 1);
		/* A refund is a transaction of its own, with the orderId the
		 * merchant gave it: the merchant's refund id.  The payment's
		 * order is not named (origQryId names the payment). */
		memcpy(ev->merchant_refund_id, ev->order_id,
		    strlen(ev->order_id) + 1);
		ev->order_id[0] = '\0';
		if (up_get(m, "origQryId") != NULL &&
		    (rc = up_token(m, "origQryId", ev->txn_id,
		    sizeof(ev->txn_id), PH_ID_MAX, diag)) != PH_OK)
			return rc;
	} else {
		ev->kind = ok ? PH_EV_PAYMENT_SUCCEEDED : PH_EV_PAYMENT_FAILED;
		memcpy(ev->txn_id, qid, strlen(qid) + 1);
	}
	return ph_dedup_key(ev, diag, "up", qid, type, resp, (char *)NULL);
}

PH_PARSE_NOTIFY(up_parse_notify)
{
	struct up_ctx *ctx = p;
	struct up_msg m;
	int rc;

	if (ctx == NULL || req == NULL || ev == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "unionpay: NULL argument");
	memset(ev, 0, sizeof(*ev));
	memset(&m, 0, sizeof(m));
	/* Only forms: the official demo reads the notification with a
	 * servlet's getParameter. */
	if ((rc = ph_form_request(req, &up_form_limits, &m.kv, diag)) !=
	    PH_OK)
		return rc;
	if ((rc = up_open(ctx, &m, UP_NOTIFICATION, req->now, diag)) == PH_OK)
		rc = up_notify_event(&m, ev, diag);
	ph_kvlist_free(&m.kv);
	return ph_clear_on_fail(rc, ev, sizeof(*ev));
}

/* ---- Acknowledgement ----------------------------------------------------- */

PH_ACK(up_ack)
{
	const char *text;

	(void)p;
	/* UnionPay counts HTTP 200 as received; the demo says ok. */
	if (kind == PH_ACK_OK)
		text = "ok";
	else if (kind == PH_ACK_RETRY)
		text = "temporarily unavailable";
	else
		text = reason != NULL && reason[0] != '\0' ? reason :
		    "refused";
	ph_ack_text(out, kind, text);
}
