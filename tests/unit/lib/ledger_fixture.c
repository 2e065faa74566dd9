/* Shared by the ledger's unit tests: see ledger_fixture.h. */
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ledger_fixture.h"

struct ph_event
fx_pay_event(const char *order, const char *txn, int64_t amount,
    const char *currency)
{
	struct ph_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = PH_EV_PAYMENT_SUCCEEDED;
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order);
	snprintf(ev.txn_id, sizeof(ev.txn_id), "%s", txn);
	ev.amount = amount;
	snprintf(ev.currency, sizeof(ev.currency), "%s", currency);
	ev.occurred_at = 1700000000;
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "pay:%s", txn);
	return ev;
}

struct ph_event
fx_refund_event(const char *order, const char *txn, const char *refund_id,
    int64_t amount, int succeeded)
{
	struct ph_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = succeeded ? PH_EV_REFUND_SUCCEEDED : PH_EV_REFUND_FAILED;
	snprintf(ev.order_id, sizeof(ev.order_id), "%s", order);
	snprintf(ev.txn_id, sizeof(ev.txn_id), "%s", txn);
	snprintf(ev.refund_id, sizeof(ev.refund_id), "P%s", refund_id);
	snprintf(ev.merchant_refund_id, sizeof(ev.merchant_refund_id), "%s",
	    refund_id);
	ev.amount = amount;
	snprintf(ev.currency, sizeof(ev.currency), "CNY");
	snprintf(ev.dedup_key, sizeof(ev.dedup_key), "refund:%s:%s",
	    refund_id, succeeded ? "SUCCESS" : "FAIL");
	return ev;
}

int
fx_apply(struct store *s, const char *profile, const struct ph_event *ev,
    struct ledger_result *r, struct ph_diag *diag)
{
	struct ledger_fact f = { profile, "wechat", "notify", ev, FX_NOW };
	struct ph_diag d;

	memset(&d, 0, sizeof(d));
	return ledger_apply(s, &f, r, diag != NULL ? diag : &d);
}

int
fx_create(struct store *s, const char *id, const char *profile,
    int64_t amount, const char *currency, int64_t now, json_t **o,
    int *created, struct ph_diag *d)
{
	const struct ledger_new_order n = {
		.order_id = id,
		.profile = profile,
		.amount = amount,
		.currency = currency,
	};

	return ledger_create_order(s, &n, now, NULL, o, created, d);
}

int
fx_refund(struct store *s, const char *order_id, const char *refund_id,
    int64_t amount, int64_t now, struct ledger_idem *idem, json_t **item,
    int *created, enum ledger_refusal *why, struct ph_diag *d)
{
	const struct ledger_refund_req rq = {
		.order_id = order_id,
		.refund_id = refund_id,
		.amount = amount,
		.reason = "test",
	};

	return ledger_request_refund(s, &rq, now, idem, item, created, why, d);
}

const char *
fx_str(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? v : "";
}

const char *
fx_state(struct store *s, const char *id)
{
	static char buf[32];
	json_t *o;

	if (ledger_get_order(s, id, &o) != PH_OK)
		return "(none)";
	snprintf(buf, sizeof(buf), "%s", fx_str(o, "state"));
	json_decref(o);
	return buf;
}

size_t
fx_exceptions(struct store *s, const char *id, const char *type)
{
	json_t *o, *e;
	size_t i, n = 0;

	if (ledger_get_order(s, id, &o) != PH_OK)
		return 0;
	json_array_foreach(json_object_get(o, "exceptions"), i, e)
		if (strcmp(fx_str(e, "type"), type) == 0)
			n++;
	json_decref(o);
	return n;
}

size_t
fx_events_of_type(struct store *s, const char *type, uint64_t *last)
{
	json_t *arr, *e;
	uint64_t next;
	size_t i, n = 0;

	if (ledger_events(s, 0, 1000, &arr, &next) != PH_OK)
		return (size_t)-1;
	json_array_foreach(arr, i, e)
		if (strcmp(fx_str(e, "type"), type) == 0)
			n++;
	if (last != NULL)
		*last = next;
	json_decref(arr);
	return n;
}

json_t *
fx_nested(int depth)
{
	json_t *top = json_object(), *inner = top, *o;

	while (--depth > 0 && inner != NULL) {
		o = json_object();
		json_object_set_new(inner, "n", o);
		inner = o;
	}
	return top;
}

int
fx_in_killed_child(int (*fn)(void *), void *arg)
{
	pid_t child;
	int status, ready[2];
	char done = 0;

	if (pipe(ready) == -1)
		return 0;
	if ((child = fork()) == 0) {
		close(ready[0]);
		done = fn(arg) != 0;
		(void)!write(ready[1], &done, 1);
		raise(SIGKILL);
	}
	close(ready[1]);
	if (child == -1 || read(ready[0], &done, 1) != 1)
		done = 0;
	close(ready[0]);
	if (child != -1)
		waitpid(child, &status, 0);
	return done && child != -1 && WIFSIGNALED(status);
}

int
fx_in_pidns(int (*fn)(void *), void *arg)
{
	pid_t p;
	int status = -1;

	fflush(NULL);
	if ((p = fork()) == 0) {
		pid_t init;
		int st = -1;

		if (unshare(CLONE_NEWPID | CLONE_NEWNS) == -1 ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE,
		    NULL) == -1)
			_exit(FX_NO_PIDNS);
		fflush(NULL);
		if ((init = fork()) == 0)
			_exit(mount("proc", "/proc", "proc", MS_NOSUID |
			    MS_NODEV | MS_NOEXEC, NULL) == -1 ? FX_NO_PIDNS :
			    fn(arg));
		waitpid(init, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 14);
	}
	if (p == -1)
		return -1;
	waitpid(p, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
