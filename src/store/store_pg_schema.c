/*
 * payhook's tables on PostgreSQL: schema "payhook", one table per kind of
 * record.  Every table has the key and the record as the ledger wrote them
 * (k bytea, the primary key: its order is LMDB's; v bytea) and, for the
 * records an operator or a finance team queries, the record as jsonb (doc)
 * with typed columns generated from it: amounts bigint in minor units,
 * times timestamptz, ids text, and the constraints that hold the
 * invariants (one payment per provider transaction and profile, one dedup
 * key per profile, one order per id, one event per sequence number).  A
 * write that would break one fails, and with it the transaction.
 *
 * The tables are made by payhook check (STORE_OPEN_CREATE), never by
 * payhook.fcgi, in the schema a DBA may have made already; another layout
 * is refused.
 */
#include <stdlib.h>
#include <string.h>

#include <payhook/sdk.h>

#include "store/store_pg.h"

#define PG_STR2(x)	#x
#define PG_STR(x)	PG_STR2(x)
#define PG_T(col, expr, type) \
	col " " type " GENERATED ALWAYS AS (" expr ") STORED"
#define PG_TEXT(name)	PG_T(name, "doc->>'" name "'", "text")
#define PG_INT(name)	PG_T(name, "(doc->>'" name "')::bigint", "bigint")
/* Times are whole seconds since the epoch in the records. */
#define PG_TIME(name)	PG_T(name, \
	"to_timestamp((doc->>'" name "')::double precision)", "timestamptz")
#define PG_TABLE(name, cols) \
	"CREATE TABLE payhook." name " (k bytea PRIMARY KEY, " \
	"v bytea NOT NULL, doc jsonb" cols ");"

static const char pg_ddl[] =
    "CREATE TABLE payhook.layout (version integer NOT NULL);"
    PG_TABLE("orders",
	", " PG_TEXT("order_id") ", " PG_TEXT("profile") ", "
	PG_TEXT("state") ", " PG_INT("amount") ", " PG_TEXT("currency") ", "
	PG_TIME("created_at") ", " PG_TIME("updated_at") ", "
	PG_TIME("paid_at") ", UNIQUE (order_id)")
    PG_TABLE("payments",
	", " PG_TEXT("profile") ", " PG_TEXT("provider") ", "
	PG_TEXT("provider_txn_id") ", " PG_TEXT("order_id") ", "
	PG_INT("amount") ", " PG_TEXT("currency") ", " PG_TEXT("status") ", "
	PG_TEXT("disposition") ", " PG_TEXT("source") ", "
	PG_TIME("occurred_at") ", " PG_TIME("recorded_at") ", "
	"UNIQUE (profile, provider_txn_id)")
    PG_TABLE("dedup",
	", " PG_TEXT("profile") ", " PG_TEXT("dedup_key") ", "
	PG_TEXT("digest") ", " PG_TEXT("kind") ", " PG_TEXT("order_id") ", "
	PG_TEXT("source") ", " PG_TIME("first_seen") ", "
	"UNIQUE (profile, dedup_key)")
    PG_TABLE("events",
	", " PG_INT("seq") ", " PG_TEXT("id") ", " PG_TEXT("type") ", "
	PG_TEXT("order_id") ", " PG_TEXT("profile") ", "
	PG_TEXT("provider_txn_id") ", " PG_INT("amount") ", "
	PG_TEXT("currency") ", " PG_TIME("at") ", UNIQUE (seq)")
    PG_TABLE("refunds",
	", " PG_INT("seq") ", " PG_TEXT("refund_id") ", "
	PG_TEXT("order_id") ", " PG_TEXT("profile") ", "
	PG_TEXT("provider_txn_id") ", " PG_INT("amount") ", "
	PG_TEXT("currency") ", " PG_TEXT("state") ", " PG_TEXT("reason") ", "
	PG_TIME("created_at") ", " PG_TIME("updated_at") ", UNIQUE (seq), "
	"UNIQUE (refund_id)")
    PG_TABLE("refund_ids", ", " PG_TEXT("refund_id") ", " PG_INT("seq"))
    PG_TABLE("due", ", " PG_TIME("due_at") ", " PG_TEXT("order_id"))
    PG_TABLE("idempotency", ", " PG_TEXT("key") ", " PG_TEXT("state") ", "
	PG_INT("status") ", " PG_TIME("expires_at"))
    PG_TABLE("meta", ", " PG_TEXT("name"))
    PG_TABLE("recon", "")
    PG_TABLE("push", "")
    "INSERT INTO payhook.layout VALUES (" PG_STR(STORE_PG_LAYOUT) ");";

const char *
store_pg_msg(const char *m, char *buf, size_t cap)
{
	size_t n = 0;

	for (; *m != '\0' && n + 1 < cap; m++)
		buf[n++] = *m == '\n' || *m == '\t' ? ' ' : *m;
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

/* The layout the database has: 0 when it has no payhook tables, -1 on a
 * failure (diag set).  Asks without failing inside a transaction. */
static int
pg_layout_found(PGconn *conn, const char *where, struct ph_diag *diag)
{
	char msg[512];
	PGresult *res;
	int v = -1;

	res = PQexec(conn, "SELECT to_regclass('payhook.layout') IS NULL");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		v = 0;
	else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		PQclear(res);
		res = PQexec(conn, "SELECT coalesce(max(version), -2) FROM "
		    "payhook.layout");
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			v = atoi(PQgetvalue(res, 0, 0));
	}
	if (v < 0)
		ph_fail(diag, PH_E_STORE, "database %s: cannot read payhook's "
		    "layout: %s", where, PQresultStatus(res) ==
		    PGRES_TUPLES_OK ? "payhook.layout is empty" :
		    store_pg_msg(PQresultErrorMessage(res), msg, sizeof(msg)));
	PQclear(res);
	return v < 0 ? -1 : v;
}

static int
pg_exec_ok(PGconn *conn, const char *sql, const char *where,
    struct ph_diag *diag)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK;
	char msg[512];

	if (!ok)
		ph_fail(diag, PH_E_STORE, "database %s: %s", where,
		    store_pg_msg(PQresultErrorMessage(res), msg, sizeof(msg)));
	PQclear(res);
	return ok;
}

/*
 * Schema payhook, made unless it exists: a DBA may have made it for a
 * role that may not create schemas, and PostgreSQL asks for CREATE on the
 * database even for CREATE SCHEMA IF NOT EXISTS.
 */
static int
pg_make_schema(PGconn *conn, const char *where, struct ph_diag *diag)
{
	PGresult *res;
	char msg[512];
	int found;

	res = PQexec(conn, "SELECT count(*) FROM pg_namespace WHERE "
	    "nspname = 'payhook'");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		ph_fail(diag, PH_E_STORE, "database %s: %s", where,
		    store_pg_msg(PQresultErrorMessage(res), msg, sizeof(msg)));
		PQclear(res);
		return 0;
	}
	found = atoi(PQgetvalue(res, 0, 0)) > 0;
	PQclear(res);
	return found || pg_exec_ok(conn, "CREATE SCHEMA payhook", where, diag);
}

/*
 * Refuses a role that may not write payhook's tables (made by another
 * role, or granted SELECT only): every write of payhook.fcgi would fail.
 * layout is only read.  The first right missing is named.
 */
static int
pg_rights(PGconn *conn, const char *where, struct ph_diag *diag)
{
	PGresult *res;
	char msg[512];
	int rc = PH_OK;

	res = PQexec(conn, "SELECT current_user, p.priv, c.relname FROM "
	    "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS "
	    "JOIN (VALUES (1, 'SELECT'), (2, 'INSERT'), (3, 'UPDATE'), "
	    "(4, 'DELETE')) p (o, priv) WHERE n.nspname = 'payhook' AND "
	    "c.relkind = 'r' AND (c.relname <> 'layout' OR p.o = 1) AND NOT "
	    "has_table_privilege(c.oid, p.priv) ORDER BY c.relname, p.o");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ph_fail(diag, PH_E_STORE, "database %s: cannot read the "
		    "rights on payhook's tables: %s", where, store_pg_msg(
		    PQresultErrorMessage(res), msg, sizeof(msg)));
	else if (PQntuples(res) > 0)
		rc = ph_fail(diag, PH_E_STORE, "database %s: role %s has no "
		    "%s right on table payhook.%s (%d right(s) missing): "
		    "payhook needs SELECT, INSERT, UPDATE and DELETE on every "
		    "table of schema payhook", where, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
		    PQntuples(res));
	PQclear(res);
	return rc;
}

int
store_pg_layout(PGconn *conn, const char *where, int create,
    struct ph_diag *diag)
{
	int v;

	if ((v = pg_layout_found(conn, where, diag)) < 0)
		return PH_E_STORE;
	if (v == 0 && create) {
		/* The writers' lock (store_pg.c): a second check waits, then
		 * finds the tables made. */
		if (!pg_exec_ok(conn, "BEGIN; SELECT pg_advisory_xact_lock("
		    STORE_PG_WRITE_LOCK ")", where, diag))
			return PH_E_STORE;
		if ((v = pg_layout_found(conn, where, diag)) < 0) {
			PQclear(PQexec(conn, "ROLLBACK"));
			return PH_E_STORE;
		}
		if (v == 0 && (!pg_make_schema(conn, where, diag) ||
		    !pg_exec_ok(conn, pg_ddl, where, diag) ||
		    !pg_exec_ok(conn, "COMMIT", where, diag))) {
			PQclear(PQexec(conn, "ROLLBACK"));
			return PH_E_STORE;
		}
		if (v != 0)
			PQclear(PQexec(conn, "ROLLBACK"));
		else
			v = STORE_PG_LAYOUT;
	}
	if (v == 0)
		return ph_fail(diag, PH_E_STORE, "database %s holds no payhook "
		    "tables (schema payhook): payhook check makes them; "
		    "payhook.fcgi never does", where);
	if (v != STORE_PG_LAYOUT)
		return ph_fail(diag, PH_E_STORE, "database %s holds payhook "
		    "tables of layout %d; this payhook uses layout %d: use the "
		    "payhook that made them", where, v, STORE_PG_LAYOUT);
	return create ? pg_rights(conn, where, diag) : PH_OK;
}
