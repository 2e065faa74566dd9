/* Shared by the wechat plugin's v2 unit tests: see wechat_v2_fixture.h. */
#include <stdio.h>
#include <string.h>

#include "../../../../providers/wechat/wechat_test.h"

#include "../../lib/helpers.h"
#include "wechat_v2_fixture.h"

/* ---- a notification under construction ------------------------------ */

/* Field k of n is sent as it is, never encoded. */
static void
mark_raw(struct th_note *n, const char *k)
{
	size_t i;

	for (i = 0; i < n->n; i++)
		if (strcmp(n->f[i].k, k) == 0)
			n->f[i].raw = 1;
}

void
w2fx_set_raw(struct th_note *n, const char *k, const char *v)
{
	th_note_set(n, k, v);
	mark_raw(n, k);
}

void
w2fx_base_note(struct th_note *n, const char *order, const char *txn)
{
	const char *const f[] = {
		"appid", APPID,
		"attach", "support",
		"bank_type", "CFT",
		"fee_type", "CNY",
		"is_subscribe", "Y",
		"mch_id", MCH_ID,
		"nonce_str", "5d2b6c2a8db53831f7eda20af46e531c",
		"openid", "oUpF8uMEb4qRXf22hE3X68TekukE",
		"out_trade_no", order,
		"result_code", "SUCCESS",
		"return_code", "SUCCESS",
		"time_end", "20141030133525",
		"total_fee", "1",
		"coupon_fee_0", "10",
		"coupon_count", "1",
		"coupon_type", "CASH",
		"coupon_id_0", "10000",
		"trade_type", "JSAPI",
		"transaction_id", txn,
		"cash_fee", "1",
		NULL
	};

	th_note_fill(n, f);
	mark_raw(n, "total_fee");
	mark_raw(n, "cash_fee");
}

void
w2fx_sign_with(struct th_note *n, const char *key, const char *alg,
    int include_empty)
{
	size_t idx[48], m = 0, i, j, t;
	char s[16384];
	size_t len = 0;
	unsigned char md[32];
	char hex[65];
	size_t mdlen;

	th_note_set(n, "sign", NULL);
	for (i = 0; i < n->n; i++)
		if (include_empty || n->f[i].v[0] != '\0')
			idx[m++] = i;
	for (i = 1; i < m; i++)		/* insertion sort by name */
		for (j = i; j > 0 && strcmp(n->f[idx[j - 1]].k,
		    n->f[idx[j]].k) > 0; j--) {
			t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	for (i = 0; i < m; i++)
		len += (size_t)snprintf(s + len, sizeof(s) - len, "%s%s=%s",
		    i > 0 ? "&" : "", n->f[idx[i]].k, n->f[idx[i]].v);
	len += (size_t)snprintf(s + len, sizeof(s) - len, "&key=%s", key);
	if (strcmp(alg, "MD5") == 0) {
		ph_md5(s, len, md);
		mdlen = 16;
	} else {
		ph_hmac_sha256(key, strlen(key), s, len, md);
		mdlen = 32;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02X", md[i]);
	th_note_set(n, "sign", hex);
}

void
w2fx_sign_note(struct th_note *n, const char *key, const char *alg)
{
	w2fx_sign_with(n, key, alg, 0);
}

size_t
w2fx_render(const struct th_note *n, char *out, size_t cap)
{
	size_t len = 0, i;

	len += (size_t)snprintf(out + len, cap - len, "<xml>");
	for (i = 0; i < n->n; i++)
		len += (size_t)snprintf(out + len, cap - len,
		    n->f[i].raw ? "<%s>%s</%s>" : "<%s><![CDATA[%s]]></%s>",
		    n->f[i].k, n->f[i].v, n->f[i].k);
	len += (size_t)snprintf(out + len, cap - len, "</xml>");
	return len;
}

int
w2fx_run_body(void *ctx, const char *body, size_t len, struct ph_event *ev,
    struct ph_diag *d)
{
	return th_notify(payhook_provider(), ctx, body, len, "text/xml",
	    1414647400, ev, d);
}

int
w2fx_run(void *ctx, const struct th_note *n, struct ph_event *ev,
    struct ph_diag *d)
{
	static char body[65536];

	return w2fx_run_body(ctx, body, w2fx_render(n, body, sizeof(body)),
	    ev, d);
}

/* ---- profiles ----------------------------------------------------------- */

int
w2fx_mkprofile(void **ctx, const char *appid, const char *mch_id,
    const char *key, const char *sign_type, struct ph_diag *d)
{
	static struct th_conf c;

	th_wx2_conf(&c, payhook_provider(), "test", appid, mch_id, key,
	    sign_type);
	return th_profile_new(payhook_provider(), &c, ctx, d);
}

/* ---- outbound calls: orderquery and closeorder -------------------------- */

struct ph_order_ref *
w2fx_order_ref(const char *id)
{
	return th_order_ref(id, 1, 1414647000);
}

int
w2fx_answer_body(void *ctx, int close, const char *order, int status,
    const char *body, size_t len, struct ph_event *ev, struct ph_diag *d)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_http_response in;
	struct ph_header h = { "Content-Type", "text/xml" };

	th_answer(&in, status, body, len, 1414647400);
	in.headers = &h;
	in.nheaders = 1;
	d->msg[0] = '\0';
	/* Garbage in the event must not survive any answer. */
	memset(ev, 0x5a, sizeof(*ev));
	return close ?
	    p->close_response(ctx, w2fx_order_ref(order), &in, ev, d) :
	    p->query_response(ctx, w2fx_order_ref(order), &in, ev, d);
}

int
w2fx_answer(void *ctx, int close, const char *order, const struct th_note *n,
    struct ph_event *ev, struct ph_diag *d)
{
	static char body[65536];

	return w2fx_answer_body(ctx, close, order, 200, body,
	    w2fx_render(n, body, sizeof(body)), ev, d);
}

void
w2fx_query_note(struct th_note *n, const char *order, const char *txn,
    const char *state)
{
	const char *const f[] = {
		"return_code", "SUCCESS",
		"return_msg", "OK",
		"appid", APPID,
		"mch_id", MCH_ID,
		"device_info", "",
		"nonce_str", "IITRi8Iabbblz1Jc",
		"result_code", "SUCCESS",
		"openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		"is_subscribe", "Y",
		"trade_type", "JSAPI",
		"bank_type", "CFT",
		"total_fee", "1",
		"fee_type", "CNY",
		"transaction_id", txn,
		"out_trade_no", order,
		"attach", "",
		"time_end", "20141030133525",
		"trade_state", state,
		"trade_state_desc",
		    "\xe6\x94\xaf\xe4\xbb\x98"
		    "\xe6\x88\x90\xe5\x8a\x9f",
		"cash_fee", "1",
		NULL
	};

	th_note_fill(n, f);
	mark_raw(n, "total_fee");
	mark_raw(n, "cash_fee");
}
