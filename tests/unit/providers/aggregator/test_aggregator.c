/*
 * The aggregator plugin, driven through its table.  Keys are generated
 * here; events are signed here with OpenSSL directly (RSA-SHA256 over the
 * body; HMAC-SHA256 over "<t>.<body>"), not with the plugin's code.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "../../../../providers/aggregator/aggregator_test.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "../../lib/helpers.h"
#include "../../lib/tap.h"
#include "../../lib/tap_event.h"

#define APP	"app_1Gqj58ynP0mHeX1q"
#define SECRET	"whsec_test_secret_for_payhook_0001"
#define SECRET2	"whsec_test_secret_for_payhook_0002"
#define APIKEY	"sk_test_ibbTe5jLGCi5rzfH4OqPW9KC"
#define NOW	1700000000LL

static struct ph_diag d;
static EVP_PKEY *agg_key, *other_key, *weak_key;
static char *agg_pub, *weak_pub;

/* ---- keys -------------------------------------------------------------- */

/* lower-case hex HMAC-SHA256(secret, "<t>.<body>") */
static void
hmac_sign(const char *secret, const char *t, const char *body, char *out)
{
	static char msg[70000];
	unsigned char mac[32];
	unsigned int n = 0, i;

	snprintf(msg, sizeof(msg), "%s.%s", t, body);
	HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (const unsigned char *)msg, strlen(msg), mac, &n);
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* ---- profiles ----------------------------------------------------------- */

/* A profile's configuration: the values of its keys by index (AGG_CONF_),
 * NULL where absent. */
struct prof {
	const char *v[AGG_CONF__MAX];
};

static int
mkprof(const struct prof *p, void **ctx)
{
	static struct th_conf c;
	const struct ph_provider *pv = payhook_provider();
	size_t i;

	th_conf_init(&c, pv, "aggtest");
	for (i = 0; i < AGG_CONF__MAX; i++)
		th_conf_set(&c, pv->conf_keys[i].name, p->v[i]);
	/* The two the plugin takes as numbers, as the configuration would
	 * have parsed them. */
	if (p->v[AGG_CONF_TOLERANCE_S] != NULL)
		c.v[AGG_CONF_TOLERANCE_S].num =
		    strtoll(p->v[AGG_CONF_TOLERANCE_S], NULL, 10);
	if (p->v[AGG_CONF_LIVEMODE] != NULL)
		c.v[AGG_CONF_LIVEMODE].num =
		    strcmp(p->v[AGG_CONF_LIVEMODE], "yes") == 0;
	*ctx = NULL;
	return th_profile_new(pv, &c, ctx, &d);
}

/* A profile of APP and APIKEY whose signature mode is signature, its
 * webhook key (key) the value of key. */
static void
prof_mode(struct prof *p, const char *signature, size_t key,
    const char *value)
{
	memset(p, 0, sizeof(*p));
	p->v[AGG_CONF_SIGNATURE] = signature;
	p->v[AGG_CONF_APP_ID] = APP;
	p->v[key] = value;
	p->v[AGG_CONF_API_KEY_FILE] = APIKEY;
}

static void
prof_rsa(struct prof *p)
{
	prof_mode(p, "rsa", AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE, agg_pub);
}

static void
prof_hmac(struct prof *p)
{
	prof_mode(p, "hmac", AGG_CONF_WEBHOOK_SECRET_FILE, SECRET);
}

/* ---- events ------------------------------------------------------------ */

/* A Ping++ charge; amount and currency are JSON text. */
static void
charge(char *out, size_t cap, const char *ch, const char *order,
    const char *amount, const char *currency, const char *paid,
    const char *app, const char *channel)
{
	snprintf(out, cap, "{\"id\":\"%s\",\"object\":\"charge\","
	    "\"created\":1410834527,\"livemode\":true,\"paid\":%s,"
	    "\"refunded\":false,\"reversed\":false,\"app\":\"%s\","
	    "\"channel\":\"%s\",\"order_no\":\"%s\",\"client_ip\":"
	    "\"127.0.0.1\",\"amount\":%s,\"amount_settle\":%s,"
	    "\"currency\":%s,\"subject\":\"Your Subject\","
	    "\"body\":\"Your Body\","
	    "\"extra\":{},\"time_paid\":%s,\"time_expire\":1410838127,"
	    "\"time_settle\":null,\"transaction_no\":%s,"
	    "\"refunds\":{\"object\":"
	    "\"list\",\"url\":\"/v1/charges/%s/refunds\",\"has_more\":false,"
	    "\"data\":[]},\"amount_refunded\":0,\"failure_code\":null,"
	    "\"failure_msg\":null,\"metadata\":{},\"credential\":{},"
	    "\"description\":null}", ch, paid, app, channel, order, amount,
	    amount, currency, strcmp(paid, "true") == 0 ? "1410834527" : "null",
	    strcmp(paid, "true") == 0 ? "\"1224524301201409186089400000\"" :
	    "null", ch);
}

static void
event(char *out, size_t cap, const char *id, const char *type,
    const char *live, const char *object)
{
	snprintf(out, cap, "{\"id\":\"%s\",\"created\":1517463360,"
	    "\"livemode\":%s,\"type\":\"%s\",\"data\":{\"object\":%s},"
	    "\"object\":\"event\",\"request\":\"iar_qH4y1KbTy5eLGm1uHSTS00s\","
	    "\"pending_webhooks\":0}", id, live, type, object);
}

static char obj[16384], body[40000], sig[1024], hdrv[1200];

static int
deliver(void *ctx, const char *hname, const char *hvalue, const char *b,
    long long now, struct ph_event *ev)
{
	struct ph_header h[2] = {
		{ "Content-Type", "application/json" },
		{ hname, hvalue },
	};
	struct ph_request req;

	th_post(&req, "application/json", b, strlen(b), now);
	req.headers = h;
	req.nheaders = hname != NULL ? 2 : 1;
	d.msg[0] = '\0';
	memset(ev, 0x5a, sizeof(*ev));
	return payhook_provider()->parse_notify(ctx, &req, ev, &d);
}

static int
send_rsa(void *ctx, EVP_PKEY *k, const char *b, struct ph_event *ev)
{
	th_rsa_sign(k, "SHA256", b, strlen(b), sig);
	return deliver(ctx, "X-Pingplusplus-Signature", sig, b, NOW, ev);
}

static int
send_hmac(void *ctx, const char *secret, long long t, const char *b,
    struct ph_event *ev)
{
	char ts[24];

	snprintf(ts, sizeof(ts), "%lld", t);
	hmac_sign(secret, ts, b, sig);
	snprintf(hdrv, sizeof(hdrv), "t=%s,v1=%s", ts, sig);
	return deliver(ctx, "X-Signature", hdrv, b, NOW, ev);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_table(void)
{
	const struct ph_provider *p = payhook_provider();

	is_int(p->abi, PH_PROVIDER_ABI, "table: ABI version");
	is_str(p->name, "aggregator", "table: name");
	is_int(p->caps, PH_CAP_NOTIFY | PH_CAP_QUERY | PH_CAP_STATEMENT,
	    "table: notify, query, statement");
	ok(p->query_request != NULL && p->query_response != NULL &&
	    p->close_request == NULL && p->close_response == NULL,
	    "table: query entries, no close");
	ok(p->conf_keys[AGG_CONF_SIGNATURE].required &&
	    p->conf_keys[AGG_CONF_SIGNATURE].def == NULL,
	    "signature is required, no default");
	is_int(p->conf_keys[AGG_CONF_WEBHOOK_SECRET_FILE].type,
	    PH_CONF_SECRET_FILE, "webhook_secret_file is a secret file");
	is_int(p->conf_keys[AGG_CONF_API_KEY_FILE].type, PH_CONF_SECRET_FILE,
	    "api_key_file is a secret file");
	ok(p->conf_keys[AGG_CONF__MAX].name == NULL, "keys end with NULL");
}

static void
test_profiles(void)
{
	/* A profile of base with one key set to value (NULL: absent):
	 * refused, the diagnostic naming msg (NULL: not checked). */
	const struct {
		void (*base)(struct prof *);
		size_t key;
		const char *value, *what, *msg, *msg_what;
	} refused[] = {
		{ prof_rsa, AGG_CONF_SIGNATURE, "none",
		    "signature = none refused", NULL, NULL },
		{ prof_rsa, AGG_CONF_APP_ID, NULL,
		    "app_id required", NULL, NULL },
		{ prof_rsa, AGG_CONF_APP_ID, "app 1",
		    "app_id with a space refused", NULL, NULL },
		{ prof_rsa, AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE, NULL,
		    "rsa without public key", "webhook_public_key_file",
		    "rsa: diagnostic names the key" },
		{ prof_rsa, AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE, "-----BEGIN "
		    "PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		    "rsa: a broken PEM refused", NULL, NULL },
		{ prof_rsa, AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE, weak_pub,
		    "rsa: RSA-1024 refused", "2048",
		    "rsa: weak key diagnostic" },
		{ prof_rsa, AGG_CONF_TOLERANCE_S, "300",
		    "rsa: tolerance_s refused", NULL, NULL },
		{ prof_rsa, AGG_CONF_SIGNATURE_HEADER, "X-Signature",
		    "rsa: signature_header refused", NULL, NULL },
		{ prof_hmac, AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE, agg_pub,
		    "hmac: public key refused", NULL, NULL },
		{ prof_hmac, AGG_CONF_WEBHOOK_SECRET_FILE, NULL,
		    "hmac without secret", NULL, NULL },
		{ prof_hmac, AGG_CONF_WEBHOOK_SECRET_FILE, "only15bytes....",
		    "hmac: 15-byte secret refused", NULL, NULL },
		{ prof_hmac, AGG_CONF_SIGNATURE_HEADER, "X Sig",
		    "hmac: bad header name", NULL, NULL },
		{ prof_hmac, AGG_CONF_TOLERANCE_S, "0",
		    "hmac: tolerance 0 refused", NULL, NULL },
	};
	struct agg_ctx *c;
	struct prof p;
	void *ctx;
	size_t i;

	prof_rsa(&p);
	is_int(mkprof(&p, &ctx), PH_OK, "rsa profile");
	c = ctx;
	ok(c != NULL && c->mode == AGG_MODE_RSA && c->livemode == 1 &&
	    c->api_key != NULL, "rsa profile: mode, live by default, api key");
	payhook_provider()->profile_free(ctx);
	prof_hmac(&p);
	p.v[AGG_CONF_API_KEY_FILE] = NULL;
	is_int(mkprof(&p, &ctx), PH_OK, "hmac profile without api key");
	c = ctx;
	ok(c != NULL && strcmp(c->header, "X-Signature") == 0 &&
	    c->tolerance == 300, "hmac defaults: X-Signature, 300 s");
	payhook_provider()->profile_free(ctx);
	prof_hmac(&p);
	p.v[AGG_CONF_SIGNATURE_HEADER] = "Stripe-Signature";
	p.v[AGG_CONF_TOLERANCE_S] = "60";
	p.v[AGG_CONF_LIVEMODE] = "no";
	is_int(mkprof(&p, &ctx), PH_OK, "hmac profile with its own header");
	c = ctx;
	ok(c != NULL && strcmp(c->header, "Stripe-Signature") == 0 &&
	    c->tolerance == 60 && c->livemode == 0,
	    "hmac: header, tolerance and test mode taken");
	payhook_provider()->profile_free(ctx);

	prof_rsa(&p);
	p.v[AGG_CONF_SIGNATURE] = NULL;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "no signature mode refused");
	ok(ctx == NULL, "no context on failure");
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		refused[i].base(&p);
		p.v[refused[i].key] = refused[i].value;
		is_int(mkprof(&p, &ctx), PH_E_CONFIG, "%s", refused[i].what);
		if (refused[i].msg != NULL)
			ok(strstr(d.msg, refused[i].msg) != NULL, "%s",
			    refused[i].msg_what);
	}
	prof_rsa(&p);
	p.v[AGG_CONF_WEBHOOK_SECRET_FILE] = SECRET;
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "rsa: webhook_secret_file "
	    "refused");
	ok(strstr(d.msg, "webhook_secret_file") && strstr(d.msg, "rsa"),
	    "rsa: the diagnostic names the hmac key");
	prof_hmac(&p);
	p.v[AGG_CONF_API_KEY_FILE] = "sk_test bad";
	is_int(mkprof(&p, &ctx), PH_E_CONFIG, "api key with a space refused");
	ok(strstr(d.msg, "sk_test") == NULL, "api key not in the diagnostic");
}

static void
test_rsa(void)
{
	/* A charge "ch_1" of order "A1" in an event "evt_2", validly signed
	 * but not acceptable: its amount, currency, paid, app and channel,
	 * the event's livemode. */
	static const struct {
		const char *amount, *currency, *paid, *app, *channel;
		const char *livemode;
		int rc;
		const char *what;
	} bad[] = {
		{ "12.5", "\"cny\"", "true", APP, "alipay", "true", PH_E_FIELD,
		    "amount 12.5 refused" },
		{ "\"12\"", "\"cny\"", "true", APP, "alipay", "true",
		    PH_E_FIELD, "amount \"12\" refused" },
		{ "-5", "\"cny\"", "true", APP, "alipay", "true", PH_E_FIELD,
		    "negative amount refused" },
		{ "100", "\"cny\"", "true", "app_other", "alipay", "true",
		    PH_E_MERCHANT, "a charge of another app refused" },
		{ "100", "\"cny\"", "true", APP, "alipay", "false",
		    PH_E_MERCHANT,
		    "a test-mode event on a live profile refused" },
		{ "100", "\"cny\"", "false", APP, "alipay", "true", PH_E_FIELD,
		    "charge.succeeded with paid false refused" },
		{ "100", "\"cnyy\"", "true", APP, "alipay", "true", PH_E_FIELD,
		    "four-letter currency refused" },
		{ "100", "\"cny\"", "true", APP, "wx pub", "true", PH_E_FIELD,
		    "channel with a space refused" },
	};
	struct ph_event ev;
	struct prof p;
	void *ctx;
	size_t i;

	prof_rsa(&p);
	mkprof(&p, &ctx);

	charge(obj, sizeof(obj), "ch_L8qn10mLmr1GS8e5OODmHaL4", "123456789",
	    "100", "\"cny\"", "true", APP, "wx_pub");
	event(body, sizeof(body), "evt_401180201144021390210001",
	    "charge.succeeded", "true", obj);
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_OK,
	    "charge.succeeded, RSA-signed: verified");
	is_int(ev.kind, PH_EV_PAYMENT_SUCCEEDED, "payment succeeded");
	is_str(ev.order_id, "123456789", "order_no");
	is_str(ev.txn_id, "ch_L8qn10mLmr1GS8e5OODmHaL4", "txn is the charge");
	is_int(ev.amount, 100, "amount in fen");
	is_str(ev.currency, "CNY", "cny upper-cased");
	is_str(ev.channel, "wx_pub", "channel: the underlying wallet");
	is_int(ev.occurred_at, 1410834527, "time_paid");
	is_str(ev.dedup_key, "pay:ch_L8qn10mLmr1GS8e5OODmHaL4",
	    "dedup key pay:<charge id>");
	/* time_paid 0 tells no time: the event's created is the time. */
	{
		char *at = strstr(obj, "\"time_paid\":1410834527");

		if (at != NULL)
			memcpy(at + strlen("\"time_paid\":"), "0         ", 10);
		event(body, sizeof(body), "evt_401180201144021390210002",
		    "charge.succeeded", "true", obj);
		is_int(send_rsa(ctx, agg_key, body, &ev), PH_OK,
		    "time_paid 0: verified");
		is_int(ev.occurred_at, 1517463360, "time_paid 0: the event's "
		    "created is the time");
		charge(obj, sizeof(obj), "ch_L8qn10mLmr1GS8e5OODmHaL4",
		    "123456789", "100", "\"cny\"", "true", APP, "wx_pub");
		event(body, sizeof(body), "evt_401180201144021390210001",
		    "charge.succeeded", "true", obj);
	}

	/* The header name in any case, as the core rebuilds it. */
	th_rsa_sign(agg_key, "SHA256", body, strlen(body), sig);
	is_int(deliver(ctx, "x-pingplusplus-signature", sig, body, NOW, &ev),
	    PH_OK, "header name in lower case");
	/* Tampering and keys. */
	body[strlen(body) - 2] = ' ';
	is_int(deliver(ctx, "X-Pingplusplus-Signature", sig, body, NOW, &ev),
	    PH_E_SIGNATURE, "tampered body refused");
	ok(th_event_empty(&ev), "refusal leaves an empty event");
	event(body, sizeof(body), "evt_401180201144021390210001",
	    "charge.succeeded", "true", obj);
	is_int(send_rsa(ctx, other_key, body, &ev), PH_E_SIGNATURE,
	    "signed by another key refused");
	is_int(deliver(ctx, NULL, NULL, body, NOW, &ev), PH_E_SIGNATURE,
	    "no signature header refused");
	is_int(deliver(ctx, "X-Pingplusplus-Signature", "not base64!", body,
	    NOW, &ev), PH_E_SIGNATURE, "signature not base64 refused");
	is_int(deliver(ctx, "X-Signature", "t=1,v1=00", body, NOW, &ev),
	    PH_E_SIGNATURE, "an HMAC header on an rsa profile refused");
	{
		struct ph_header h[2] = {
			{ "X-Pingplusplus-Signature", sig },
			{ "X-PINGPLUSPLUS-SIGNATURE", sig },
		};
		struct ph_request req;

		th_rsa_sign(agg_key, "SHA256", body, strlen(body), sig);
		th_post(&req, NULL, body, strlen(body), NOW);
		req.headers = h;
		req.nheaders = 2;
		is_int(payhook_provider()->parse_notify(ctx, &req, &ev, &d),
		    PH_E_SIGNATURE, "the signature header twice refused");
	}

	/* Validly signed, but not acceptable. */
	is_int(send_rsa(ctx, agg_key, "{\"id\":\"evt_1\",\"id\":\"evt_2\","
	    "\"type\":\"charge.succeeded\"}", &ev), PH_E_MALFORMED,
	    "duplicate JSON key refused");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		charge(obj, sizeof(obj), "ch_1", "A1", bad[i].amount,
		    bad[i].currency, bad[i].paid, bad[i].app, bad[i].channel);
		event(body, sizeof(body), "evt_2", "charge.succeeded",
		    bad[i].livemode, obj);
		is_int(send_rsa(ctx, agg_key, body, &ev), bad[i].rc,
		    "%s", bad[i].what);
	}
	charge(obj, sizeof(obj), "ch_1", "A1", "100", "\"cny\"", "true", APP,
	    "alipay");
	memcpy(strstr(obj, "\"order_no\""), "\"order_XX\"", 10);
	event(body, sizeof(body), "evt_2", "charge.succeeded", "true", obj);
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_E_FIELD,
	    "missing order_no refused");
	ok(strstr(d.msg, "order_no") != NULL, "missing field named");
	charge(obj, sizeof(obj), "ch_1", "A1", "100", "\"USD\"", "true", APP,
	    "alipay_wap");
	event(body, sizeof(body), "evt_2", "charge.succeeded", "true", obj);
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_OK, "USD accepted as is");
	is_str(ev.currency, "USD", "currency USD (the core compares it)");

	/* Refunds and everything else. */
	snprintf(obj, sizeof(obj), "{\"id\":\"re_y1u944PmfnrTHyvnL0nD0iD1\","
	    "\"object\":\"refund\",\"order_no\":\"y1u944PmfnrTHyvnL0nD0iD1\","
	    "\"amount\":90,\"created\":1409634160,\"succeed\":true,"
	    "\"status\":\"succeeded\",\"time_succeed\":1409634192,"
	    "\"description\":\"Refund Description\",\"failure_code\":null,"
	    "\"failure_msg\":null,\"metadata\":{},"
	    "\"charge\":\"ch_L8qn10mLmr1GS8e5OODmHaL4\","
	    "\"charge_order_no\":\"123456789\",\"transaction_no\":"
	    "\"2008450740201411110000174436\",\"funding_source\":null}");
	event(body, sizeof(body), "evt_refund_1", "refund.succeeded", "true",
	    obj);
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_OK,
	    "refund.succeeded accepted");
	ok(ev.kind == PH_EV_REFUND_SUCCEEDED && ev.amount == 90 &&
	    strcmp(ev.order_id, "123456789") == 0 &&
	    strcmp(ev.txn_id, "ch_L8qn10mLmr1GS8e5OODmHaL4") == 0 &&
	    strcmp(ev.refund_id, "re_y1u944PmfnrTHyvnL0nD0iD1") == 0 &&
	    strcmp(ev.currency, "CNY") == 0 && ev.occurred_at == 1409634192 &&
	    strcmp(ev.dedup_key, "evt:evt_refund_1") == 0,
	    "refund: charge order, charge, refund id, CNY, time, event id");
	memcpy(strstr(obj, "\"succeeded\""), "\"pending\"  ", 11);
	event(body, sizeof(body), "evt_refund_2", "refund.succeeded", "true",
	    obj);
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_E_FIELD,
	    "refund.succeeded with status pending refused");

	event(body, sizeof(body), "evt_sum_1", "summary.daily.available",
	    "true", "{\"acct_id\":\"acct_1\",\"summary_from\":1,"
	    "\"summary_to\":2,\"charges_amount\":1000}");
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_OK,
	    "summary.daily.available acknowledged");
	ok(ev.kind == PH_EV_IGNORED && strcmp(ev.order_id, "-") == 0 &&
	    strcmp(ev.dedup_key, "evt:evt_sum_1") == 0 &&
	    strcmp(ev.currency, "CNY") == 0, "ignored: placeholder order id, "
	    "event id");
	event(body, sizeof(body), "evt_tr_1", "transfer.succeeded", "true",
	    "{\"id\":\"tr_1\",\"object\":\"transfer\",\"order_no\":\"T-9\"}");
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_OK,
	    "transfer.succeeded acknowledged");
	is_str(ev.order_id, "T-9", "ignored: its order_no kept");
	event(body, sizeof(body), "evt_x", "charge.succeeded", "true",
	    "[1]");
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_E_FIELD,
	    "data.object not an object refused");
	event(body, sizeof(body), "evt x", "charge.succeeded", "true", "{}");
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_E_FIELD,
	    "event id with a space refused");
	snprintf(body, sizeof(body), "{\"id\":\"evt_1\",\"type\":\"x.y\","
	    "\"data\":{\"object\":{}}}");
	is_int(send_rsa(ctx, agg_key, body, &ev), PH_E_FIELD,
	    "event without livemode refused");
	payhook_provider()->profile_free(ctx);
}

static void
test_hmac(void)
{
	static const char *const bad_what[] = {
		"only a v0 signature refused",
		"t twice refused",
		"no t refused",
		"a trailing comma refused",
		"a signed t refused",
		"a truncated v1 refused",
	};
	struct ph_event ev;
	struct prof p;
	void *ctx;
	char good[80], ts[24], bad[6][160];
	size_t i;

	prof_hmac(&p);
	mkprof(&p, &ctx);
	charge(obj, sizeof(obj), "ch_H1", "H1", "250", "\"cny\"", "true", APP,
	    "alipay_qr");
	event(body, sizeof(body), "evt_h1", "charge.succeeded", "true", obj);
	is_int(send_hmac(ctx, SECRET, NOW, body, &ev), PH_OK,
	    "HMAC-signed charge.succeeded verified");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED && ev.amount == 250 &&
	    strcmp(ev.channel, "alipay_qr") == 0 &&
	    strcmp(ev.dedup_key, "pay:ch_H1") == 0, "hmac: the payment");
	is_int(send_hmac(ctx, SECRET, NOW - 300, body, &ev), PH_OK,
	    "t 300 s old accepted");
	is_int(send_hmac(ctx, SECRET, NOW - 301, body, &ev), PH_E_SIGNATURE,
	    "t 301 s old refused");
	ok(strstr(d.msg, "t=") != NULL, "stale: diagnostic");
	is_int(send_hmac(ctx, SECRET, NOW + 301, body, &ev), PH_E_SIGNATURE,
	    "t 301 s ahead refused");
	is_int(send_hmac(ctx, SECRET2, NOW, body, &ev), PH_E_SIGNATURE,
	    "another secret refused");

	snprintf(ts, sizeof(ts), "%lld", NOW);
	hmac_sign(SECRET, ts, body, good);
	snprintf(hdrv, sizeof(hdrv), "t=%s,v1=%064d,v1=%s,v0=%064d", ts, 0,
	    good, 0);
	is_int(deliver(ctx, "X-Signature", hdrv, body, NOW, &ev), PH_OK,
	    "rotation: the second v1 matches");
	snprintf(hdrv, sizeof(hdrv), "v1=%s,t=%s", good, ts);
	is_int(deliver(ctx, "x-signature", hdrv, body, NOW, &ev), PH_OK,
	    "items in any order, header name in any case");
	/* Headers of the right signature, malformed. */
	snprintf(bad[0], sizeof(bad[0]), "t=%s,v0=%s", ts, good);
	snprintf(bad[1], sizeof(bad[1]), "t=%s,t=%s,v1=%s", ts, ts, good);
	snprintf(bad[2], sizeof(bad[2]), "v1=%s", good);
	snprintf(bad[3], sizeof(bad[3]), "t=%s,v1=%s,", ts, good);
	snprintf(bad[4], sizeof(bad[4]), "t=-%s,v1=%s", ts, good);
	snprintf(bad[5], sizeof(bad[5]), "t=%s,v1=%.63s", ts, good);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(deliver(ctx, "X-Signature", bad[i], body, NOW, &ev),
		    PH_E_SIGNATURE, "%s", bad_what[i]);
	snprintf(hdrv, sizeof(hdrv), "t=%s,v1=%s", ts, good);
	body[10] = body[10] == 'x' ? 'y' : 'x';
	is_int(deliver(ctx, "X-Signature", hdrv, body, NOW, &ev),
	    PH_E_SIGNATURE, "tampered body refused");
	is_int(deliver(ctx, "X-Pingplusplus-Signature", "AAAA", body, NOW,
	    &ev), PH_E_SIGNATURE, "an RSA header on an hmac profile refused");
	payhook_provider()->profile_free(ctx);

	prof_hmac(&p);
	p.v[AGG_CONF_SIGNATURE_HEADER] = "Stripe-Signature";
	p.v[AGG_CONF_TOLERANCE_S] = "60";
	mkprof(&p, &ctx);
	event(body, sizeof(body), "evt_h1", "charge.succeeded", "true", obj);
	snprintf(ts, sizeof(ts), "%lld", NOW - 61);
	hmac_sign(SECRET, ts, body, good);
	snprintf(hdrv, sizeof(hdrv), "t=%s,v1=%s", ts, good);
	is_int(deliver(ctx, "Stripe-Signature", hdrv, body, NOW, &ev),
	    PH_E_SIGNATURE, "tolerance 60: 61 s refused");
	snprintf(ts, sizeof(ts), "%lld", NOW - 60);
	hmac_sign(SECRET, ts, body, good);
	snprintf(hdrv, sizeof(hdrv), "t=%s,v1=%s", ts, good);
	is_int(deliver(ctx, "Stripe-Signature", hdrv, body, NOW, &ev),
	    PH_OK, "tolerance 60: 60 s accepted, from the configured header");
	is_int(deliver(ctx, "X-Signature", hdrv, body, NOW, &ev),
	    PH_E_SIGNATURE, "the default header is not read then");
	payhook_provider()->profile_free(ctx);

	/* A test-mode profile takes test-mode events only. */
	prof_hmac(&p);
	p.v[AGG_CONF_LIVEMODE] = "no";
	mkprof(&p, &ctx);
	is_int(send_hmac(ctx, SECRET, NOW, body, &ev), PH_E_MERCHANT,
	    "a live event on a test-mode profile refused");
	payhook_provider()->profile_free(ctx);
}

static void
test_ack(void)
{
	struct ph_response r;

	payhook_provider()->ack(NULL, PH_ACK_OK, NULL, &r);
	ok(r.status == 200 && r.body_len == 11 &&
	    memcmp(r.body, "{\"ok\":true}", 11) == 0, "ack: 200 {\"ok\":true}");
	payhook_provider()->ack(NULL, PH_ACK_REFUSED, "bad \"sig\"", &r);
	ok(r.status == 400 && r.body_len == strlen("{\"error\":\"bad "
	    "\\\"sig\\\"\"}") && memcmp(r.body, "{\"error\":\"bad "
	    "\\\"sig\\\"\"}", r.body_len) == 0,
	    "ack: refused 400, reason escaped");
	payhook_provider()->ack(NULL, PH_ACK_RETRY, NULL, &r);
	ok(r.status == 500 && strstr((char *)r.body, "temporarily") != NULL,
	    "ack: retry 500");
	payhook_provider()->ack(NULL, PH_ACK__MAX, NULL, &r);
	ok(r.status == 500 && r.body_len == 0, "ack: unknown kind, bare 500");
}

/* ---- query -------------------------------------------------------------- */

static struct ph_order_ref *
order_ref(const char *id)
{
	return th_order_ref(id, 100, NOW);
}

/*
 * The request: the charge by its id when the attempt names it
 * (pingpp-python example/charge/retrieve.py, GET /v1/charges/{id}), else
 * the app's list with the parameters the SDKs' examples send
 * (example/charge/list.py: app[id], limit, paid) and the API reference
 * names (created, starting_after), never order_no, which the list does not
 * take (tests/vectors/FINDINGS.md section 1).
 */
#define LIST_PATH "/v1/charges?app[id]=app_1Gqj58ynP0mHeX1q&limit=100" \
    "&paid=true&created[gte]=1699999400"

static void
test_query_request(void)
{
	/* Attempt data of an order, refused. */
	static const struct th_case bad_attempt[] = {
		{ "{\"charge\":\"ch/1\"}",
		    "query: a charge id with '/' refused" },
		{ "{\"charge\":1}",
		    "query: a charge that is not a string refused" },
		{ "[1]", "query: attempt data that is not an object refused" },
	};
	const struct ph_provider *pv = payhook_provider();
	struct ph_http_request r;
	struct ph_call_ctx cc;
	struct ph_order_ref *o;
	struct prof p;
	void *ctx;
	size_t i;

	memset(&cc, 0, sizeof(cc));
	cc.now = NOW;
	prof_rsa(&p);
	mkprof(&p, &ctx);
	is_int(pv->query_request(ctx, order_ref("123456789"), &cc, &r, &d),
	    PH_OK, "query request built");
	is_str(r.method, "GET", "query: GET");
	is_str(r.path, "/v1/charges?app[id]=app_1Gqj58ynP0mHeX1q&limit=100"
	    "&paid=true&created[gte]=1699999400", "query: the app's paid "
	    "charges since 10 minutes before the order, byte for byte");
	ok(strstr(r.path, "order_no") == NULL, "query: no order_no (not a "
	    "parameter of the list)");
	is_int(r.nheaders, 2, "query: two headers");
	ok(strcmp(r.headers[0].name, "Accept") == 0 &&
	    strcmp(r.headers[0].value, "application/json") == 0,
	    "query: Accept: application/json");
	ok(strcmp(r.headers[1].name, "Authorization") == 0 &&
	    strcmp(r.headers[1].value, "Bearer " APIKEY) == 0,
	    "query: Authorization: Bearer <key>");
	ok(r.body_len == 0 && r.content_type[0] == '\0', "query: no body");

	o = order_ref("123456789");
	o->cursor = "ch_Q0";
	is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_OK,
	    "query: the next page");
	is_str(r.path, "/v1/charges?app[id]=app_1Gqj58ynP0mHeX1q&limit=100"
	    "&paid=true&created[gte]=1699999400&starting_after=ch_Q0",
	    "query: starting_after the last charge of the page before");
	o->cursor = "ch&x=1";
	is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_E_FIELD,
	    "query: a cursor that is no charge id refused");
	o = order_ref("123456789");
	o->created_at = 0;
	is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_OK,
	    "query: an order of unknown creation");
	is_str(r.path, "/v1/charges?app[id]=app_1Gqj58ynP0mHeX1q&limit=100"
	    "&paid=true", "query: no created bound then");

	o = order_ref("2015d019f7cf6c0d");
	o->attempt = "{\"charge\":\"ch_bq9IHKnn6GnLzsS0swOujr4x\"}";
	is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_OK,
	    "query: the attempt names its charge");
	is_str(r.path, "/v1/charges/ch_bq9IHKnn6GnLzsS0swOujr4x",
	    "query: the charge retrieved by its id");
	o->cursor = "ch_Q0";
	is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_E_FIELD,
	    "query: no cursor for one charge");
	/* The charge named found unpaid: the order's others, the list from
	 * its first page, then page after page. */
	for (i = 0; i < 2; i++) {
		o->cursor = i == 0 ? "+" : "+ch_Q0";
		ok(pv->query_request(ctx, o, &cc, &r, &d) == PH_OK &&
		    strcmp(r.path, i == 0 ? LIST_PATH : LIST_PATH
		    "&starting_after=ch_Q0") == 0, "query: cursor %s: %s",
		    o->cursor, r.path);
	}
	o = order_ref("Q1");
	o->txn_id = "ch_X1";
	is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_OK,
	    "query: the order's recorded charge");
	is_str(r.path, "/v1/charges/ch_X1", "query: retrieved by its id");
	o = order_ref("Q1");
	for (i = 0; i < sizeof(bad_attempt) / sizeof(bad_attempt[0]); i++) {
		o->attempt = bad_attempt[i].in;
		is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_E_FIELD,
		    "%s", bad_attempt[i].what);
	}
	o->attempt = "{\"other\":1}";
	is_int(pv->query_request(ctx, o, &cc, &r, &d), PH_OK,
	    "query: attempt data without a charge: the list");
	ok(strncmp(r.path, "/v1/charges?", 12) == 0, "... is read");

	is_int(pv->query_request(ctx, order_ref("A 1"), &cc, &r, &d),
	    PH_E_FIELD, "query: an invalid id refused");
	payhook_provider()->profile_free(ctx);
	prof_rsa(&p);
	p.v[AGG_CONF_API_KEY_FILE] = NULL;
	ok(mkprof(&p, &ctx) == PH_OK &&
	    pv->query_request(ctx, order_ref("A1"), &cc, &r, &d) ==
	    PH_E_CONFIG, "query without api_key_file: configuration");
	payhook_provider()->profile_free(ctx);
}

static int
answer_ref(void *ctx, struct ph_order_ref *o, int status, const char *sighdr,
    const char *b, struct ph_event *ev)
{
	struct ph_header h[1] = { { "X-Pingplusplus-Signature", sighdr } };
	struct ph_http_response in;

	th_answer(&in, status, b, strlen(b), NOW);
	in.headers = h;
	in.nheaders = sighdr != NULL ? 1 : 0;
	d.msg[0] = '\0';
	memset(ev, 0x5a, sizeof(*ev));
	return payhook_provider()->query_response(ctx, o, &in, ev, &d);
}

static int
answer(void *ctx, const char *order, int status, const char *sighdr,
    const char *b, struct ph_event *ev)
{
	return answer_ref(ctx, order_ref(order), status, sighdr, b, ev);
}

/* src as a test-mode charge, into dst. */
static void
test_mode(char *dst, size_t cap, const char *src)
{
	const char *at = strstr(src, "\"livemode\":true");

	if (at == NULL)
		abort();
	snprintf(dst, cap, "%.*s\"livemode\":false%s", (int)(at - src), src,
	    at + strlen("\"livemode\":true"));
}

static void
test_query_response(void)
{
	static char list[40000], c1[8192], c2[8192], cx[8192], cy[8192];
	struct ph_event ev, nev;
	struct prof p;
	void *ctx;

	prof_rsa(&p);
	mkprof(&p, &ctx);
	charge(c1, sizeof(c1), "ch_Q0", "Q1", "100", "\"cny\"", "false", APP,
	    "wx_pub");
	charge(c2, sizeof(c2), "ch_Q1", "Q1", "100", "\"cny\"", "true", APP,
	    "alipay");
	charge(cx, sizeof(cx), "ch_X9", "OTHER7", "700", "\"cny\"", "true",
	    APP, "wx_pub");
	charge(cy, sizeof(cy), "ch_X8", "OTHER8", "800", "\"cny\"", "true",
	    APP, "alipay");
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"url\":"
	    "\"/v1/charges\",\"has_more\":true,\"data\":[%s,%s,%s]}", cx, c1,
	    c2);
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_OK,
	    "a page with another order's charge, then ours, paid");
	event(body, sizeof(body), "evt_q", "charge.succeeded", "true", c2);
	is_int(send_rsa(ctx, agg_key, body, &nev), PH_OK,
	    "the same charge as an event");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
	    strcmp(ev.dedup_key, "pay:ch_Q1") == 0 && th_same_fact(&ev, &nev) &&
	    strcmp(ev.channel, nev.channel) == 0,
	    "query and event of one payment are one fact (the other order's "
	    "charge passed over)");

	snprintf(list, sizeof(list), "{\"object\":\"list\",\"has_more\":true,"
	    "\"data\":[%s,%s]}", cx, cy);
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_OK,
	    "a full page of other orders' charges");
	ok(ev.kind == PH_EV_QUERY_MORE && strcmp(ev.cursor, "ch_X8") == 0 &&
	    ev.dedup_key[0] == '\0', "... ask for the page after ch_X8");
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"has_more\":false,"
	    "\"data\":[%s,%s]}", cx, cy);
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_OK,
	    "the last page, none of ours");
	ok(ev.kind == PH_EV_PAYMENT_PENDING &&
	    strcmp(ev.dedup_key, "query:Q1:UNPAID") == 0 &&
	    strcmp(ev.order_id, "Q1") == 0 && ev.amount == 100 &&
	    strcmp(ev.currency, "CNY") == 0 && ev.cursor[0] == '\0',
	    "no paid charge of the order: pending, the order's amount");
	is_int(answer(ctx, "Q1", 200, NULL, "{\"object\":\"list\","
	    "\"has_more\":false,\"data\":[]}", &ev), PH_OK, "an empty list");
	ok(ev.kind == PH_EV_PAYMENT_PENDING &&
	    strcmp(ev.dedup_key, "query:Q1:UNPAID") == 0,
	    "empty: pending (the paid list says nothing of unpaid charges)");
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"has_more\":false,"
	    "\"data\":[%s]}", c1);
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_OK,
	    "an unpaid charge of ours (an API that lists unpaid ones too)");
	ok(ev.kind == PH_EV_PAYMENT_PENDING && ev.amount == 100 &&
	    strcmp(ev.channel, "wx_pub") == 0, "unpaid: pending");
	is_int(answer(ctx, "Q1", 200, NULL, "{\"object\":\"list\","
	    "\"has_more\":true,\"data\":[]}", &ev), PH_E_PROVIDER,
	    "an empty page that has more: ask later");

	charge(cy, sizeof(cy), "ch_X8", "OTHER8", "800", "\"cny\"", "true",
	    "app_other", "alipay");
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"data\":[%s,%s]}",
	    cy, c2);
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_E_MERCHANT,
	    "a charge of another app refused, whatever its order");
	test_mode(cy, sizeof(cy), cx);
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"data\":[%s,%s]}",
	    cy, c2);
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_E_MERCHANT,
	    "a test-mode charge on a live profile refused");
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"data\":[{"
	    "\"id\":\"ch_N\",\"object\":\"charge\",\"app\":\"" APP "\"}]}");
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_E_FIELD,
	    "a listed charge without order_no refused");
	charge(c2, sizeof(c2), "ch_Q1", "Q1", "10.5", "\"cny\"", "true", APP,
	    "alipay");
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"data\":[%s]}",
	    c2);
	is_int(answer(ctx, "Q1", 200, NULL, list, &ev), PH_E_FIELD,
	    "a charge of ours with amount 10.5 refused");
	is_int(answer(ctx, "Q1", 200, NULL, "{\"object\":\"list\"}", &ev),
	    PH_E_FIELD, "a list without data refused");
	is_int(answer(ctx, "Q1", 401, NULL, "{\"error\":{\"type\":"
	    "\"invalid_request_error\",\"message\":\"No API key provided\"}}",
	    &ev), PH_E_PROVIDER, "401: an error, no event");
	ok(strstr(d.msg, "No API key provided") != NULL,
	    "401: message in the diagnostic");
	is_int(answer(ctx, "Q1", 503, NULL, "busy", &ev), PH_E_PROVIDER,
	    "503: ask later");

	/* Signed answers on an rsa profile. */
	charge(c2, sizeof(c2), "ch_Q1", "Q1", "100", "\"cny\"", "true", APP,
	    "alipay");
	snprintf(list, sizeof(list), "{\"object\":\"list\",\"data\":[%s]}",
	    c2);
	th_rsa_sign(agg_key, "SHA256", list, strlen(list), sig);
	is_int(answer(ctx, "Q1", 200, sig, list, &ev), PH_OK,
	    "a signed answer verified");
	th_rsa_sign(other_key, "SHA256", list, strlen(list), sig);
	is_int(answer(ctx, "Q1", 200, sig, list, &ev), PH_E_SIGNATURE,
	    "an answer signed by another key refused");
	is_int(answer(ctx, "Q1", 200, "", list, &ev), PH_E_SIGNATURE,
	    "an empty signature header refused");
	payhook_provider()->profile_free(ctx);

	/* hmac profiles do not look at it. */
	prof_hmac(&p);
	mkprof(&p, &ctx);
	is_int(answer(ctx, "Q1", 200, "garbage", list, &ev), PH_OK,
	    "hmac profile: answer not signature-checked");
	payhook_provider()->profile_free(ctx);
}

/*
 * The charge retrieved by its id, on the published vector
 * tests/vectors/aggregator/pingpp-php-charge-succeeded.json (a live
 * charge.succeeded of pingpp-php @ 16677d4, example/webhooks.php line 27,
 * its key example/pingpp_rsa_public_key.pem): the charge it carries, as
 * GET /v1/charges/{id} answers it, is the same fact as the event.
 */
static void
test_query_charge(void)
{
	static char one[8192];
	struct ph_order_ref *o;
	struct ph_event ev, nev;
	json_error_t jerr;
	json_t *doc;
	char *vbody, *vsig, *pub, *text;
	size_t len;
	struct prof p;
	void *ctx;

	vbody = th_vector("aggregator/pingpp-php-charge-succeeded.json", &len);
	vsig = th_vector("aggregator/pingpp-php-charge-succeeded.sig", NULL);
	pub = th_vector("aggregator/pingpp-php-public-key.pem", NULL);
	vsig[strcspn(vsig, "\r\n")] = '\0';
	memset(&p, 0, sizeof(p));
	p.v[AGG_CONF_SIGNATURE] = "rsa";
	p.v[AGG_CONF_APP_ID] = "app_vcPcqDeS88ixrPlu";
	p.v[AGG_CONF_WEBHOOK_PUBLIC_KEY_FILE] = pub;
	p.v[AGG_CONF_LIVEMODE] = "yes";
	p.v[AGG_CONF_API_KEY_FILE] = APIKEY;
	if (mkprof(&p, &ctx) != PH_OK) {
		diag("profile: %s", d.msg);
		abort();
	}
	is_int(deliver(ctx, "X-Pingplusplus-Signature", vsig, vbody, NOW,
	    &nev), PH_OK, "vector: the published event verifies");
	if ((doc = json_loads(vbody, 0, &jerr)) == NULL ||
	    (text = json_dumps(json_object_get(json_object_get(doc, "data"),
	    "object"), JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		abort();

	o = order_ref("2015d019f7cf6c0d");
	o->attempt = "{\"charge\":\"ch_bq9IHKnn6GnLzsS0swOujr4x\"}";
	is_int(answer_ref(ctx, o, 200, NULL, text, &ev), PH_OK,
	    "vector: the charge retrieved by its id");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
	    strcmp(ev.txn_id, "ch_bq9IHKnn6GnLzsS0swOujr4x") == 0 &&
	    strcmp(ev.dedup_key, nev.dedup_key) == 0 && ev.amount == 100 &&
	    ev.occurred_at == nev.occurred_at &&
	    strcmp(ev.order_id, "2015d019f7cf6c0d") == 0,
	    "vector: paid, the same fact as its event");
	o = order_ref("2015d019f7cf6c0e");
	o->attempt = "{\"charge\":\"ch_bq9IHKnn6GnLzsS0swOujr4x\"}";
	is_int(answer_ref(ctx, o, 200, NULL, text, &ev), PH_E_FIELD,
	    "vector: the charge asked for is of another order: refused");
	snprintf(one, sizeof(one), "{\"object\":\"list\",\"has_more\":false,"
	    "\"data\":[%s]}", text);
	o = order_ref("2015d019f7cf6c0d");
	o->attempt = "{\"charge\":\"ch_bq9IHKnn6GnLzsS0swOujr4x\"}";
	is_int(answer_ref(ctx, o, 200, NULL, one, &ev), PH_E_FIELD,
	    "a list where one charge was asked for refused");
	o = order_ref("2015d019f7cf6c0d");
	is_int(answer_ref(ctx, o, 200, NULL, one, &ev), PH_OK,
	    "vector: the same charge in the app's list");
	ok(ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
	    strcmp(ev.dedup_key, nev.dedup_key) == 0, "vector: paid");
	free(text);
	json_decref(doc);

	charge(one, sizeof(one), "ch_U1", "U1", "250", "\"cny\"", "false",
	    "app_vcPcqDeS88ixrPlu", "wx");
	o = order_ref("U1");
	o->attempt = "{\"charge\":\"ch_U1\"}";
	is_int(answer_ref(ctx, o, 200, NULL, one, &ev), PH_OK,
	    "an unpaid charge retrieved");
	ok(ev.kind == PH_EV_QUERY_MORE && strcmp(ev.cursor, "+") == 0 &&
	    ev.dedup_key[0] == '\0', "unpaid: not the last word, the order's "
	    "other charges are listed next (a shopper may have switched "
	    "wallets)");
	{
		char paid[2048], list[16384];

		charge(paid, sizeof(paid), "ch_U2", "U1", "250", "\"cny\"",
		    "true", "app_vcPcqDeS88ixrPlu", "alipay");
		snprintf(list, sizeof(list), "{\"object\":\"list\","
		    "\"has_more\":true,\"data\":[%s]}", one);
		o->cursor = "+";
		ok(answer_ref(ctx, o, 200, NULL, list, &ev) == PH_OK &&
		    ev.kind == PH_EV_QUERY_MORE && strcmp(ev.cursor,
		    "+ch_U1") == 0, "... its page with more: the next one, "
		    "still the order's list");
		snprintf(list, sizeof(list), "{\"object\":\"list\","
		    "\"has_more\":false,\"data\":[%s]}", paid);
		o->cursor = "+ch_U1";
		ok(answer_ref(ctx, o, 200, NULL, list, &ev) == PH_OK &&
		    ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
		    strcmp(ev.txn_id, "ch_U2") == 0 && ev.amount == 250,
		    "... the charge paid through the other wallet: the "
		    "payment");
		snprintf(list, sizeof(list), "{\"object\":\"list\","
		    "\"has_more\":false,\"data\":[%s]}", one);
		ok(answer_ref(ctx, o, 200, NULL, list, &ev) == PH_OK &&
		    ev.kind == PH_EV_PAYMENT_PENDING && ev.amount == 250 &&
		    strcmp(ev.dedup_key, "query:U1:UNPAID") == 0,
		    "... none paid: pending");
		o->cursor = NULL;
		/* Two paid charges, the newer of another amount: the one
		 * that pays the order (100) is the payment. */
		charge(one, sizeof(one), "ch_U3", "U1", "90", "\"cny\"",
		    "true", "app_vcPcqDeS88ixrPlu", "wx");
		charge(paid, sizeof(paid), "ch_U4", "U1", "100", "\"cny\"",
		    "true", "app_vcPcqDeS88ixrPlu", "alipay");
		snprintf(list, sizeof(list), "{\"object\":\"list\","
		    "\"has_more\":false,\"data\":[%s,%s]}", one, paid);
		o = order_ref("U1");
		ok(answer_ref(ctx, o, 200, NULL, list, &ev) == PH_OK &&
		    ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
		    strcmp(ev.txn_id, "ch_U4") == 0, "two paid charges, the "
		    "first of another amount: the one that pays the order");
		snprintf(list, sizeof(list), "{\"object\":\"list\","
		    "\"has_more\":false,\"data\":[%s]}", one);
		ok(answer_ref(ctx, o, 200, NULL, list, &ev) == PH_OK &&
		    ev.kind == PH_EV_PAYMENT_SUCCEEDED &&
		    strcmp(ev.txn_id, "ch_U3") == 0 && ev.amount == 90,
		    "... only the one of another amount: that payment, for the "
		    "ledger to raise");
	}
	is_int(answer_ref(ctx, o, 404, NULL, "{\"error\":{\"type\":"
	    "\"invalid_request_error\",\"message\":\"No such charge\"}}", &ev),
	    PH_E_PROVIDER, "404 for the charge: ask later");
	payhook_provider()->profile_free(ctx);
	free(vbody);
	free(vsig);
	free(pub);
}

/* The hint needs no verification and no context beyond a non-NULL one. */
static void
test_hint(void)
{
	static int dummy;
	/* data.object.order_no, in an event not verified; none without it,
	 * none from broken JSON. */
	static const char good[] = "{\"id\":\"evt_1\",\"type\":"
	    "\"charge.succeeded\",\"data\":{\"object\":{\"order_no\":"
	    "\"A-77\",\"amount\":1}}}";
	static const char none[] = "{\"id\":\"evt_1\",\"data\":{}}";

	is_hints(payhook_provider(), agg_notify_hint, &dummy, good, "A-77", none,
	    "{");
}

int
main(void)
{
	agg_key = EVP_RSA_gen(2048);
	other_key = EVP_RSA_gen(2048);
	weak_key = EVP_RSA_gen(1024);
	if (agg_key == NULL || other_key == NULL || weak_key == NULL)
		abort();
	agg_pub = th_pem_key(agg_key, 0);
	weak_pub = th_pem_key(weak_key, 0);
	test_table();
	test_profiles();
	test_rsa();
	test_hmac();
	test_ack();
	test_query_request();
	test_query_response();
	test_query_charge();
	test_hint();
	free(agg_pub);
	free(weak_pub);
	EVP_PKEY_free(agg_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(weak_key);
	return done_testing();
}
