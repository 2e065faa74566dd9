/*
 * The notification archive: notifications list, show, and replay (a
 * notification run again through today's plugin and configuration).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <payhook/sdk.h>

#include "ops/text.h"
#include "cli/cli.h"
#include "ledger/ledger.h"
#include "ledger/order.h"
#include "plugin/loader.h"
#include "store/archive.h"

int
cli_notif_list_run(struct cli *c)
{
	json_t *list, *r;
	const char *order;
	char when[32];
	size_t i;

	if (archive_list(c->a.after, c->a.limit, &list) != PH_OK) {
		json_decref(list);
		return CLI_EXIT_FAIL;
	}
	json_array_foreach(list, i, r) {
		text_time(json_integer_value(json_object_get(r, "at")),
		    when);
		order = json_string_value(json_object_get(r, "order_id"));
		printf("%lld\t%s\t%s\t%s\t%s\t%s",
		    (long long)json_integer_value(json_object_get(r, "id")),
		    when, json_string_value(json_object_get(r, "profile")),
		    order[0] != '\0' ? order : "-",
		    json_string_value(json_object_get(r, "verdict")),
		    json_string_value(json_object_get(r, "outcome")));
		if (json_integer_value(json_object_get(r, "replay_of")) != 0)
			printf("\treplay_of=%lld", (long long)
			    json_integer_value(json_object_get(r,
			    "replay_of")));
		printf("\n");
	}
	json_decref(list);
	return CLI_EXIT_OK;
}

/* notifications show ID, notifications replay ID: a number */
int
cli_notif_id_valid(struct cli *c)
{
	return cli_number(c->a.word, &c->a.id) == 0 ? CLI_EXIT_OK :
	    CLI_EXIT_USAGE;
}

/* The archived record of id into *rec, or prints why not. */
static int
cli_notif_get(unsigned long long id, json_t **rec)
{
	int rc;

	if ((rc = archive_get(id, rec)) != PH_OK) {
		fprintf(stderr, "payhook: notification %llu: %s\n", id,
		    rc == PH_E_NOTFOUND ? "not in the archive" :
		    ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

int
cli_notif_show_run(struct cli *c)
{
	struct archive_kept e;
	json_t *r, *text = NULL;
	int rc;

	if ((rc = cli_notif_get(c->a.id, &r)) != CLI_EXIT_OK)
		return rc;
	/* The body as text too, when it is UTF-8. */
	if (archive_read(c->a.id, &e) == PH_OK) {
		text = json_stringn((char *)e.body, e.body_len);
		archive_kept_free(&e);
	}
	if (text != NULL)
		json_object_set_new(r, "body_text", text);
	cli_print_new(r);
	return CLI_EXIT_OK;
}

/* Archives the replay with what became of it. */
static void
cli_notif_archive(struct archive_rec *a, const char *verdict,
    const char *reason, const char *order_id, const char *outcome)
{
	a->verdict = verdict;
	a->reason = reason;
	a->order_id = order_id;
	a->outcome = outcome;
	archive_put(a);
}

int
cli_notif_replay_run(struct cli *c)
{
	unsigned long long id = c->a.id;
	const struct conf_profile *pr;
	struct archive_kept e;
	struct ledger_result res;
	struct ledger_fact fact;
	struct archive_rec a;
	struct ph_request req;
	struct ph_event ev;
	struct ph_diag diag;
	char hint[PH_ID_MAX + 1];
	int rc, parsed = 0;

	if ((rc = archive_read(id, &e)) != PH_OK) {
		fprintf(stderr, "payhook: notification %llu: %s\n", id,
		    rc == PH_E_NOTFOUND ? "not in the archive" :
		    ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	rc = CLI_EXIT_FAIL;
	pr = conf_profile(c->conf, e.profile);
	if (pr == NULL || !(pr->plugin->prov->caps & PH_CAP_NOTIFY)) {
		fprintf(stderr, "payhook: notification %llu: profile %s is not "
		    "configured (any more)\n", id, e.profile);
		goto done;
	}
	/* The very bytes received: headers and body as they came. */
	memset(&req, 0, sizeof(req));
	req.method = e.method;
	req.content_type = e.content_type;
	req.body = e.body;
	req.body_len = e.body_len;
	req.headers = e.headers;
	req.nheaders = e.nheaders;
	/* Verified as of its arrival: freshness windows still apply to
	 * when the provider sent it, not to today. */
	req.now = e.at;
	memset(&ev, 0, sizeof(ev));
	memset(&diag, 0, sizeof(diag));
	archive_rec_init(&a, &req, (int64_t)time(NULL), e.class, pr->name,
	    pr->plugin->prov->name);
	a.source = "replay";
	a.replay_of = id;
	if ((rc = loader_result(pr->plugin->prov,
	    pr->plugin->prov->parse_notify(pr->ctx, &req, &ev, &diag),
	    &diag)) != PH_OK || (parsed = 1,
	    rc = ledger_event_check(&ev, &diag)) != PH_OK) {
		printf("notification %llu: still refused: %s (%s)\n", id,
		    ph_strerror(rc), diag.msg);
		/* As a refusal on arrival is archived: why, and the order
		 * a refused signature's message names, unverified (none for
		 * an event the contract refused: its fields are not safe). */
		hint[0] = '\0';
		if (!parsed)
			loader_hint(pr->plugin->prov, pr->ctx, &req, hint);
		cli_notif_archive(&a, "refused", diag.msg, hint,
		    loader_refusal(rc));
		rc = CLI_EXIT_FAIL;
		goto done;
	}
	a.class = ARCHIVE_VERIFIED;
	fact.profile = pr->name;
	fact.provider = pr->plugin->prov->name;
	fact.source = ledger_source_name(LEDGER_SRC_REPLAY);
	fact.ev = &ev;
	fact.now = (int64_t)time(NULL);
	if (ledger_apply(c->store, &fact, &res, &diag) != PH_OK) {
		fprintf(stderr, "payhook: notification %llu: verified but not "
		    "recorded: %s\n", id, diag.msg);
		rc = CLI_EXIT_FAIL;
		goto done;
	}
	/* The outcome named as a notification's on arrival is
	 * (ledger_result_label): double_payment, not "recorded". */
	printf("notification %llu: verified; order %s: %s%s%s\n", id,
	    ev.order_id, ledger_result_label(&res),
	    res.event_type[0] != '\0' ? ", raised " : "", res.event_type);
	cli_notif_archive(&a, "verified", "", ev.order_id,
	    ledger_result_label(&res));
	rc = CLI_EXIT_OK;
done:
	archive_kept_free(&e);
	return rc;
}
