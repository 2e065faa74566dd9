/*
 * The SDK's helpers of a provider's entries (sdk/status.c,
 * sdk/kv.c, sdk/http.c): a failed entry gives nothing, a plain-text
 * acknowledgement, a body's bounds, the order a
 * call names, a state's event, a required token of the configuration
 * and a required amount of a message.
 */
#include <string.h>

#include <payhook/sdk.h>

#include "../lib/tap.h"

static struct ph_diag d;

static void
test_clear_on_fail(void)
{
	struct ph_event ev;

	memset(&ev, 0x5a, sizeof(ev));
	is_int(ph_clear_on_fail(PH_OK, &ev, sizeof(ev)), PH_OK,
	    "success: its status");
	ok(ev.order_id[0] == 0x5a && ev.amount != 0, "... out kept");
	is_int(ph_clear_on_fail(PH_E_SIGNATURE, &ev, sizeof(ev)),
	    PH_E_SIGNATURE, "failure: its status");
	ok(ev.kind == 0 && ev.order_id[0] == '\0' && ev.amount == 0,
	    "... out zeroed");
	is_int(ph_clear_on_fail(PH_E_FIELD, NULL, sizeof(ev)), PH_E_FIELD,
	    "failure without out: its status");
}

static void
test_ack_text(void)
{
	static struct ph_response out;
	char big[PH_ACK_TEXT_MAX + 40];

	ph_ack_text(&out, PH_ACK_OK, "success");
	ok(out.status == 200 && out.body_len == 7 &&
	    memcmp(out.body, "success", 7) == 0, "OK: 200 and the text");
	is_str(out.content_type, "text/plain", "... text/plain");
	ph_ack_text(&out, PH_ACK_REFUSED, "bad\r\nsign \xe4\xb8\xad");
	ok(out.status == 400 && out.body_len == 8 &&
	    memcmp(out.body, "badsign ", 8) == 0,
	    "REFUSED: 400, control and non-ASCII bytes dropped");
	ph_ack_text(&out, PH_ACK_RETRY, "later");
	ok(out.status == 500 && out.body_len == 5, "RETRY: 500 and the text");
	ph_ack_text(&out, PH_ACK_RETRY, NULL);
	ok(out.status == 500 && out.body_len == 0 &&
	    strcmp(out.content_type, "text/plain") == 0,
	    "no text: an empty body");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ph_ack_text(&out, PH_ACK_REFUSED, big);
	is_int(out.body_len, PH_ACK_TEXT_MAX, "a long text cut");
	ph_ack_text(&out, (enum ph_ack_kind)99, "success");
	ok(out.status == 500 && out.body_len == 0 &&
	    out.content_type[0] == '\0', "another kind: a bare 500");
}

static int
body(const char *b, size_t len, size_t max)
{
	struct ph_request req;

	memset(&req, 0, sizeof(req));
	req.body = (const unsigned char *)b;
	req.body_len = len;
	d.msg[0] = '\0';
	return ph_body_check(&req, max, &d);
}

static void
test_body(void)
{
	is_int(body("{}", 2, 2), PH_OK, "a body of max bytes");
	is_int(body("{}", 2, 1), PH_E_TOOBIG, "one byte more refused");
	is_str(d.msg, "body larger than 1 bytes", "... %s", d.msg);
	is_int(body("", 0, 8), PH_E_MALFORMED, "an empty body refused");
	is_str(d.msg, "empty body", "... %s", d.msg);
	is_int(body(NULL, 0, 8), PH_E_MALFORMED, "no body refused");
	is_int(body(NULL, 5, 8), PH_E_MALFORMED, "no bytes with a length "
	    "refused");
}

static int
order(const char *id)
{
	struct ph_order_ref o;

	memset(&o, 0, sizeof(o));
	o.order_id = id;
	d.msg[0] = '\0';
	return ph_order_check(&o, 8, "_-", "order_no", &d);
}

static void
test_order(void)
{
	is_int(order("A-1_b"), PH_OK, "letters, digits and extra");
	is_int(order("12345678"), PH_OK, "max bytes");
	is_int(order("123456789"), PH_E_FIELD, "one byte more refused");
	is_str(d.msg, "order id is not a valid order_no", "... %s", d.msg);
	is_int(order(""), PH_E_FIELD, "an empty id refused");
	is_int(order("a b"), PH_E_FIELD, "a blank refused");
	is_int(order("a|b"), PH_E_FIELD, "a byte not in extra refused");
	is_int(order(NULL), PH_E_FIELD, "no id refused");
	is_int(ph_order_check(NULL, 8, NULL, "order_no", NULL), PH_E_FIELD,
	    "no order refused");
}

static void
test_state(void)
{
	static const struct ph_state states[] = {
		{ "SUCCESS", PH_EV_PAYMENT_SUCCEEDED },
		{ "NOTPAY", PH_EV_PAYMENT_PENDING },
		{ "CLOSED", PH_EV_PAYMENT_CLOSED },
		{ NULL, PH_EV__MAX },
	};
	static const struct ph_state none[] = { { NULL, PH_EV__MAX } };
	const struct ph_state *s;

	s = ph_state_find(states, "NOTPAY");
	ok(s == &states[1] && s->kind == PH_EV_PAYMENT_PENDING,
	    "a state found, with its event");
	ok(ph_state_find(states, "SUCCESS") == &states[0], "the first");
	ok(ph_state_find(states, "CLOSED") == &states[2], "the last");
	ok(ph_state_find(states, "closed") == NULL, "case counts");
	ok(ph_state_find(states, "CLOSED ") == NULL, "a prefix is not it");
	ok(ph_state_find(states, "") == NULL, "an empty name is none");
	ok(ph_state_find(states, NULL) == NULL, "no name is none");
	ok(ph_state_find(none, "SUCCESS") == NULL, "an empty table");
}

static void
test_conf_token(void)
{
	struct ph_conf_value v[3];
	struct ph_conf conf = { "p", v, 3 };
	char dst[8];

	memset(v, 0, sizeof(v));
	v[0].name = "app_id";
	v[0].present = 1;
	v[0].str = "app_1";
	v[1].name = "absent";
	v[1].str = "";
	v[2].name = "long";
	v[2].present = 1;
	v[2].str = "12345678";

	d.msg[0] = '\0';
	is_int(ph_conf_token(&conf, "app_id", dst, sizeof(dst), "_", &d),
	    PH_OK, "a token with extra");
	is_str(dst, "app_1", "... copied");
	is_int(ph_conf_token(&conf, "app_id", dst, sizeof(dst), NULL, &d),
	    PH_E_CONFIG, "a byte not in extra: PH_E_CONFIG");
	ok(strstr(d.msg, "app_id") != NULL, "... %s", d.msg);
	is_int(ph_conf_token(&conf, "absent", dst, sizeof(dst), NULL, &d),
	    PH_E_CONFIG, "a key the profile does not give");
	is_str(d.msg, "absent is required", "... %s", d.msg);
	is_int(ph_conf_token(&conf, "undeclared", dst, sizeof(dst), NULL,
	    &d), PH_E_CONFIG, "a key the plugin does not declare");
	is_str(d.msg, "undeclared is required", "... %s", d.msg);
	is_int(ph_conf_token(&conf, "long", dst, sizeof(dst), NULL, &d),
	    PH_E_CONFIG, "a token that does not fit dst");
}

static void
test_kv_amount(void)
{
	struct ph_kvlist kv;
	int64_t n = -1;

	ph_kvlist_init(&kv, 8);
	ph_kvlist_add(&kv, "total_fee", 9, "1250", 4, NULL);
	ph_kvlist_add(&kv, "empty", 5, "", 0, NULL);
	ph_kvlist_add(&kv, "bad", 3, "12.50", 5, NULL);
	ph_kvlist_add(&kv, "zero", 4, "0", 1, NULL);
	ph_kvlist_add(&kv, "lead", 4, "012", 3, NULL);

	is_int(ph_kv_amount(&kv, "total_fee", &n, &d), PH_OK, "an amount");
	is_int(n, 1250, "... in minor units");
	is_int(ph_kv_amount(&kv, "zero", &n, &d), PH_OK, "zero");
	is_int(n, 0, "... is 0");
	is_int(ph_kv_amount(&kv, "absent", &n, &d), PH_E_FIELD, "absent");
	is_str(d.msg, "absent: missing", "... %s", d.msg);
	is_int(ph_kv_amount(&kv, "empty", &n, &d), PH_E_FIELD,
	    "an empty value is missing");
	is_str(d.msg, "empty: missing", "... %s", d.msg);
	is_int(ph_kv_amount(&kv, "bad", &n, &d), PH_E_FIELD,
	    "a decimal refused");
	is_str(d.msg, "bad: invalid", "... %s", d.msg);
	is_int(ph_kv_amount(&kv, "lead", &n, NULL), PH_E_FIELD,
	    "a leading zero refused");
	ph_kvlist_free(&kv);
}

int
main(void)
{
	test_clear_on_fail();
	test_ack_text();
	test_body();
	test_order();
	test_state();
	test_conf_token();
	test_kv_amount();
	return done_testing();
}
