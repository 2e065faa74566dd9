/*
 * The template provider: the guide must also be correct.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payhook/sdk.h>

#include "../../../../providers/template/template_test.h"
#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"

#define SECRET "whsec_0123456789abcdef0123456789"

static struct ph_diag d;

static int
mkprofile(void **ctx, const char *secret, const char *merchant)
{
	static struct th_conf c;

	th_conf_init(&c, payhook_provider(), "tpl");
	th_conf_file(&c, "secret_file", secret);
	th_conf_str(&c, "merchant", merchant);
	return th_profile_new(payhook_provider(), &c, ctx, &d);
}

/* Lower-case hex HMAC-SHA256 of body, spelled out with snprintf. */
static void
sign(const char *secret, const char *body, char out[65])
{
	unsigned char mac[32];
	int i;

	ph_hmac_sha256(secret, strlen(secret), body, strlen(body), mac);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static int
run_h(void *ctx, const char *body, const struct ph_header *h, size_t nh,
    struct ph_event *ev)
{
	struct ph_request req;

	th_post(&req, "application/json", body, strlen(body), 1700000000);
	req.headers = h;
	req.nheaders = nh;
	d.msg[0] = '\0';
	return payhook_provider()->parse_notify(ctx, &req, ev, &d);
}

/* Signs body with secret under a header spelled hname, then parses. */
static int
run_signed(void *ctx, const char *body, const char *secret,
    const char *hname, struct ph_event *ev)
{
	char sig[65];
	struct ph_header h[2] = {
		{ "Content-Type", "application/json" },
		{ hname, sig },
	};

	sign(secret, body, sig);
	return run_h(ctx, body, h, 2, ev);
}

static int
run(void *ctx, const char *body, struct ph_event *ev)
{
	return run_signed(ctx, body, SECRET, "X-Template-Signature", ev);
}

static const char good[] =
    "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\",\"merchant\":\"shop1\","
    "\"order_id\":\"A-1\",\"txn_id\":\"T_1\",\"amount\":123,"
    "\"currency\":\"CNY\",\"time\":1700000000}";

static void
test_profile(void)
{
	void *ctx = (void *)&ctx;

	is_int(mkprofile(&ctx, "short", "shop1"), PH_E_CONFIG,
	    "profile: short secret refused");
	ok(ctx == NULL, "profile: no context on failure");
	ok(strstr(d.msg, "secret_file") != NULL, "profile: diagnostic");
	is_int(mkprofile(&ctx, NULL, "shop1"), PH_E_CONFIG,
	    "profile: no secret refused");
	is_int(mkprofile(&ctx, SECRET, NULL), PH_E_CONFIG,
	    "profile: no merchant refused");
	is_int(mkprofile(&ctx, SECRET, "shop 1"), PH_E_CONFIG,
	    "profile: invalid merchant refused");
	is_int(mkprofile(&ctx, SECRET, "shop1"), PH_OK, "profile: valid");
	payhook_provider()->profile_free(ctx);
	is_str(payhook_provider()->name, "template", "table: name");
	is_int(payhook_provider()->abi, PH_PROVIDER_ABI, "table: ABI");
}

static void
test_notify(void)
{
	struct ph_event ev;
	void *ctx = NULL;
	char body[1024], sig[65];
	struct ph_header h[3];

	mkprofile(&ctx, SECRET, "shop1");

	is_int(run(ctx, good, &ev), PH_OK, "valid notification");
	is_event(&ev, "valid notification", PH_EV_PAYMENT_SUCCEEDED, "A-1",
	    "T_1", 123, "CNY", 1700000000, "evt:evt_1");

	is_int(run_signed(ctx, good, SECRET, "x-template-signature", &ev),
	    PH_OK, "header name matched case-insensitively");

	/* Tampering: sign one body, send another. */
	sign(SECRET, good, sig);
	h[0].name = "X-Template-Signature";
	h[0].value = sig;
	snprintf(body, sizeof(body), "%s", good);
	body[strlen(body) - 3] = '1';
	is_int(run_h(ctx, body, h, 1, &ev), PH_E_SIGNATURE, "tampered body");
	is_int(ev.amount, 0, "tampered: empty event");
	is_int(run_signed(ctx, good, SECRET "x", "X-Template-Signature", &ev),
	    PH_E_SIGNATURE, "wrong secret");
	is_int(run_h(ctx, good, h, 0, &ev), PH_E_SIGNATURE, "no signature");
	h[1] = h[0];
	is_int(run_h(ctx, good, h, 2, &ev), PH_E_SIGNATURE,
	    "signature header twice refused");
	{
		char up[65];
		size_t i;

		for (i = 0; i < 65; i++)
			up[i] = (char)(sig[i] >= 'a' && sig[i] <= 'f' ?
			    sig[i] - 32 : sig[i]);
		h[0].value = up;
		is_int(run_h(ctx, good, h, 1, &ev), PH_E_SIGNATURE,
		    "upper-case signature refused (lower-case hex only)");
	}

	is_int(run(ctx, "{\"id\":\"evt_1\",\"id\":\"evt_2\",\"type\":"
	    "\"payment.succeeded\",\"merchant\":\"shop1\",\"order_id\":\"A\","
	    "\"txn_id\":\"T\",\"amount\":1,\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_MALFORMED, "duplicate JSON key refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":12.5,\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_FIELD, "amount 12.5 refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":\"12\",\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_FIELD, "amount \"12\" refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":-1,\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_FIELD, "negative amount refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":1000000000000001,\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_FIELD, "amount past PH_AMOUNT_MAX refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":1e3,\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_FIELD, "amount 1e3 refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"amount\":1,"
	    "\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_FIELD, "missing txn_id refused");
	ok(strstr(d.msg, "txn_id") != NULL, "missing txn_id: named");
	is_int(run(ctx, "{\"type\":\"payment.succeeded\",\"merchant\":\"shop1\","
	    "\"order_id\":\"A\",\"txn_id\":\"T\",\"amount\":1,"
	    "\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_FIELD, "missing id refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":1,\"currency\":\"cny\",\"time\":1}", &ev),
	    PH_E_FIELD, "invalid currency refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"merchant\":\"shop2\",\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":1,\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_MERCHANT, "another merchant refused");
	is_int(run(ctx, "{\"id\":\"evt_1\",\"type\":\"payment.succeeded\","
	    "\"order_id\":\"A\",\"txn_id\":\"T\","
	    "\"amount\":1,\"currency\":\"CNY\",\"time\":1}", &ev),
	    PH_E_MERCHANT, "missing merchant refused");
	is_int(run(ctx, "[1,2]", &ev), PH_E_MALFORMED, "not an object");
	is_int(run(ctx, "{\"id\":", &ev), PH_E_MALFORMED, "truncated JSON");
	snprintf(body, sizeof(body), "%s x", good);
	is_int(run(ctx, body, &ev), PH_E_MALFORMED, "trailing bytes refused");

	is_int(run(ctx, "{\"id\":\"evt_2\",\"type\":\"payment.failed\","
	    "\"merchant\":\"shop1\",\"order_id\":\"A\",\"amount\":5,"
	    "\"currency\":\"CNY\",\"time\":1}", &ev), PH_OK, "payment failed");
	ok(ev.kind == PH_EV_PAYMENT_FAILED && strcmp(ev.txn_id, "") == 0 &&
	    strcmp(ev.dedup_key, "evt:evt_2") == 0, "failed: event");
	is_int(run(ctx, "{\"id\":\"evt_3\",\"type\":\"customer.created\","
	    "\"merchant\":\"shop1\"}", &ev), PH_OK, "other event type");
	ok(ev.kind == PH_EV_IGNORED && strcmp(ev.dedup_key, "evt:evt_3") == 0,
	    "other type: ignored, still deduplicated");

	payhook_provider()->profile_free(ctx);
}

static void
test_ack(void)
{
	const struct ph_provider *p = payhook_provider();
	struct ph_response r;

	p->ack(NULL, PH_ACK_OK, NULL, &r);
	ok(r.status == 200 && th_ack_body_is(&r, "{\"ok\":true}"), "ack OK");
	is_str(r.content_type, "application/json", "ack OK: content type");
	p->ack(NULL, PH_ACK_REFUSED, "signature mismatch", &r);
	ok(r.status == 400 && th_ack_body_is(&r, "{\"error\":\"signature mismatch\"}"),
	    "ack REFUSED");
	p->ack(NULL, PH_ACK_REFUSED, "say \"no\" \\ now", &r);
	ok(th_ack_body_is(&r, "{\"error\":\"say \\\"no\\\" \\\\ now\"}"),
	    "ack REFUSED: reason JSON-escaped");
	p->ack(NULL, PH_ACK_REFUSED, NULL, &r);
	ok(th_ack_body_is(&r, "{\"error\":\"invalid notification\"}"),
	    "ack REFUSED: default reason");
	p->ack(NULL, PH_ACK_RETRY, NULL, &r);
	ok(r.status == 503 &&
	    th_ack_body_is(&r, "{\"error\":\"temporarily unavailable\"}"), "ack RETRY");
	p->ack(NULL, PH_ACK__MAX, NULL, &r);
	ok(r.status == 500 && r.body_len == 0, "ack: unknown kind");
}

int
main(void)
{
	test_profile();
	test_notify();
	test_ack();
	return done_testing();
}
