/*
 * The refund runner's check of an answer: it settles the refund asked,
 * never another one the answer speaks of.
 */
#include <stdio.h>
#include <string.h>

#include <payhook/sdk.h>

#include "jobs/query.h"
#include "../../lib/tap.h"

static void
asked(struct query_job *j)
{
	memset(j, 0, sizeof(*j));
	j->op = QUERY_OP_REFUND;
	strcpy(j->refund_id, "R-" "0123456789012345678901234567890123456789"
	    "0123456789abcdefghijxy");
	strcpy(j->order_id, "O1");
	strcpy(j->txn_id, "T1");
	strcpy(j->currency, "CNY");
	j->ev.kind = PH_EV_REFUND_SUCCEEDED;
	strcpy(j->ev.merchant_refund_id, j->refund_id);
	strcpy(j->ev.order_id, "O1");
	strcpy(j->ev.txn_id, "T1");
	strcpy(j->ev.currency, "CNY");
	j->ev.amount = 100;
}

int
main(void)
{
	struct query_job j;
	char why[128];

	asked(&j);
	is_int((int)strlen(j.refund_id), 64, "a refund id of 64 characters "
	    "is held whole");
	ok(query_refund_same(&j, why, sizeof(why)), "the answer about the "
	    "refund asked settles it");
	j.ev.merchant_refund_id[0] = j.ev.order_id[0] = j.ev.txn_id[0] = '\0';
	ok(query_refund_same(&j, why, sizeof(why)), "... so does one that "
	    "names none of its ids");

	asked(&j);
	strcpy(j.ev.merchant_refund_id, "R-other");
	ok(!query_refund_same(&j, why, sizeof(why)) &&
	    strcmp(why, "refund R-other") == 0, "an answer about another "
	    "refund settles nothing (%s)", why);
	asked(&j);
	j.ev.merchant_refund_id[63] = 'X';
	ok(!query_refund_same(&j, why, sizeof(why)), "... nor about one that "
	    "differs in its 64th character");
	asked(&j);
	strcpy(j.ev.order_id, "O2");
	ok(!query_refund_same(&j, why, sizeof(why)) &&
	    strcmp(why, "order O2") == 0, "... nor about another order");
	asked(&j);
	strcpy(j.ev.txn_id, "T2");
	ok(!query_refund_same(&j, why, sizeof(why)) &&
	    strcmp(why, "transaction T2") == 0, "... nor another payment");
	asked(&j);
	strcpy(j.ev.currency, "USD");
	ok(!query_refund_same(&j, why, sizeof(why)) &&
	    strcmp(why, "currency USD") == 0, "... nor a success in another "
	    "currency");
	j.ev.kind = PH_EV_REFUND_FAILED;
	ok(query_refund_same(&j, why, sizeof(why)), "a failure's currency "
	    "is not looked at");
	return done_testing();
}
