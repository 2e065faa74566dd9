/*
 * Reading the ledger: order show and list, events, events tail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <payhook/sdk.h>

#include "cli/cli.h"
#include "ledger/ledger.h"
#include "ledger/order.h"

int
cli_order_show_run(struct cli *c)
{
	json_t *o;
	int rc;

	if ((rc = ledger_get_order(c->store, c->a.word, &o)) != PH_OK) {
		fprintf(stderr, "payhook: order %s: %s\n", c->a.word,
		    rc == PH_E_NOTFOUND ? "not found" : ph_strerror(rc));
		return rc == PH_E_NOTFOUND ? CLI_EXIT_NOTFOUND : CLI_EXIT_FAIL;
	}
	rc = cli_print_new(order_to_api(o));
	json_decref(o);
	return rc;
}

int
cli_order_list_valid(struct cli *c)
{
	if (c->a.state != NULL && order_state_parse(c->a.state) < 0) {
		fprintf(stderr, "payhook: order list: --state takes PENDING, "
		    "PAID, CLOSED, REFUNDING or REFUNDED\n");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

int
cli_order_list_run(struct cli *c)
{
	json_t *list, *o, *views, *v;
	size_t i;
	int rc;

	if ((rc = ledger_list_orders(c->store, c->a.state,
	    c->a.after_id != NULL ? c->a.after_id : "", c->a.limit,
	    &list)) != PH_OK) {
		fprintf(stderr, "payhook: order list: %s\n", ph_strerror(rc));
		json_decref(list);
		return CLI_EXIT_FAIL;
	}
	if (c->a.flag) {
		views = json_array();
		json_array_foreach(list, i, o)
			json_array_append_new(views, order_to_api(o));
		rc = cli_print_new(views);
		json_decref(list);
		return rc;
	}
	json_array_foreach(list, i, o) {
		v = order_to_api(o);
		printf("%s\t%s\t%lld\t%s\t%s\t%s\n",
		    json_string_value(json_object_get(v, "order_id")),
		    json_string_value(json_object_get(v, "state")),
		    (long long)json_integer_value(json_object_get(v, "amount")),
		    json_string_value(json_object_get(v, "currency")),
		    json_string_value(json_object_get(v, "profile")),
		    json_string_value(json_object_get(v, "updated_at")));
		json_decref(v);
	}
	json_decref(list);
	return CLI_EXIT_OK;
}

int
cli_events_run(struct cli *c)
{
	json_t *events, *out, *e;
	uint64_t next;
	size_t i;
	int rc;

	if ((rc = ledger_events(c->store, c->a.after, (unsigned)c->a.limit,
	    &events, &next)) != PH_OK) {
		fprintf(stderr, "payhook: events: %s\n", ph_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	/* As GET /events serves it, the epoch its cursor goes with too. */
	out = json_pack("{s:s, s:[], s:I}", "epoch", store_epoch(c->store),
	    "events", "next", (json_int_t)next);
	json_array_foreach(events, i, e)
		json_array_append_new(json_object_get(out, "events"),
		    order_event_to_api(e));
	rc = cli_print_new(out);
	json_decref(events);
	return rc;
}

#define CLI_TAIL_PAGE 1000

/* Every event after --after, one compact line each; --follow waits on. */
int
cli_events_tail_run(struct cli *c)
{
	unsigned long long after = c->a.after;
	json_t *events, *e, *v;
	uint64_t next;
	size_t i;
	char *line;
	int rc, down = 0, more = 0;

	do {
		if ((rc = ledger_events(c->store, after, CLI_TAIL_PAGE, &events,
		    &next)) != PH_OK) {
			/* A follower outlives a database restarted or failed
			 * over, as a sweeper does: said once, then waited. */
			if (!c->a.flag || !store_retryable(c->store)) {
				fprintf(stderr, "payhook: events: %s\n",
				    ph_strerror(rc));
				return CLI_EXIT_FAIL;
			}
			if (!down)
				fprintf(stderr, "payhook: events: %s; trying "
				    "again every second\n", ph_strerror(rc));
			down = 1;
			sleep(1);
			continue;
		}
		if (down)
			fprintf(stderr, "payhook: events: the store answers "
			    "again\n");
		down = 0;
		json_array_foreach(events, i, e) {
			v = order_event_to_api(e);
			line = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (line != NULL)
				printf("%s\n", line);
			free(line);
			json_decref(v);
		}
		/* A follower on a full disk must not go on losing events. */
		if (cli_stdout_done() != 0) {
			json_decref(events);
			return CLI_EXIT_FAIL;
		}
		more = json_array_size(events) == CLI_TAIL_PAGE;
		if (!more && c->a.flag)
			sleep(1);
		json_decref(events);
		after = next;
		/* Without --follow: every page up to the last event. */
	} while ((c->a.flag || more) && !cli_stop);
	return CLI_EXIT_OK;
}
