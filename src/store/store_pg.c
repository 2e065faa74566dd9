/*
 * The PostgreSQL engine of the store: for several hosts on one database
 * (doc/design/store.md, "PostgreSQL").  Only this file speaks SQL or
 * includes libpq; pg_status() is where PostgreSQL's errors become
 * payhook's.
 *
 * Each kind of record is a table of schema "payhook" (store_pg_schema.c):
 * the key and the record as the ledger wrote them (k, v: the same bytes as
 * in LMDB, so every reader and the key order are the same) and, for the
 * records an operator queries, the record as jsonb (doc) from which typed
 * columns are generated (amounts bigint, times timestamptz, ids text) with
 * the constraints that hold the invariants.  doc comes from the ledger's
 * projection (store_spec's project), made where the record is written.
 *
 * Write transactions take one advisory lock (STORE_PG_WRITE_LOCK) first,
 * so that they run one after the other on every host, as LMDB's writer
 * lock makes them run on one: a fact is checked and applied by one
 * transaction at a time, sequence numbers are given in commit order (the
 * event feed never shows an event behind a cursor already past it), and
 * no transaction fails on a serialization conflict.  A read transaction
 * is a REPEATABLE READ snapshot, like an LMDB reader.  A commit returns
 * once the server made it durable (synchronous_commit as the server has
 * it, on a synchronous standby too when one is named).  A commit whose
 * wait for the standby was cut short (the session cancelled or ended)
 * is seen by the others all the same, on the primary only: with a
 * standby named, every write transaction and every settle commits a
 * record (PG_SYNC_WAL), which waits for the standby to have everything
 * before it, and a commit whose wait was cut short fails.
 * Every session bounds its waits for locks and statements (PG_BOUNDS).
 *
 * A lost connection fails the transaction it was in, and says so
 * (store_retryable: the group commit runs it again, and a notification
 * still not recorded is answered "retry"); the next transaction connects
 * again, to whichever host libpq's connection string finds
 * (target_session_attrs=read-write finds the primary after a promotion).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <payhook/sdk.h>

#include "ops/log.h"
#include "ops/metrics.h"
#include "store/store_int.h"
#include "store/store_pg.h"

/* The largest record shown as JSON (doc). */
#define PG_DOC_MAX	(4u << 20)
/* Above this estimate of a table's rows, statistics give the estimate
 * instead of a count. */
#define PG_COUNT_MAX	100000
/* Rows a scan fetches at a time. */
#define PG_SCAN_PAGE	"256"

/*
 * The waits a session bounds, set once it connects, except those the
 * operator set for payhook's sessions (pg_conninfo's options, ALTER ROLE
 * or DATABASE ... SET): a lock held elsewhere, a statement that does not
 * end, or a session that holds the writers' lock and does nothing would
 * otherwise stall every writer on every host (doc/payhook.conf.5).  A
 * provider waits about five seconds for an answer to a notification;
 * the commands wait longer.
 */
#define PG_BOUNDS(lock, stmt, idle) \
	"SELECT count(set_config(name, v, false)) FROM pg_settings " \
	"JOIN (VALUES ('lock_timeout', '" lock "'), ('statement_timeout', '" \
	stmt "'), ('idle_in_transaction_session_timeout', '" idle "'), " \
	PG_SERVER_KEEPALIVE ") b (name, v) USING (name) WHERE source NOT IN " \
	"('client', 'user', 'database', 'database user')"
/*
 * The server's side of a connection whose host went silent (a partition,
 * power lost) with the writers' lock: found dead in about ten seconds, as
 * payhook's side is (pg_connect), so the lock goes with it.  A host whose
 * TCP peer still answers but whose session says nothing (a stalled proxy)
 * is ended by idle_in_transaction_session_timeout: payhook.fcgi keeps no
 * transaction open past a provider's five seconds.
 */
#define PG_SERVER_KEEPALIVE \
	"('tcp_keepalives_idle', '5'), ('tcp_keepalives_interval', '2'), " \
	"('tcp_keepalives_count', '3'), ('tcp_user_timeout', '10000')"
#define PG_BOUNDS_INTERACTIVE	PG_BOUNDS("2s", "4s", "5s")
#define PG_BOUNDS_COMMAND	PG_BOUNDS("60s", "5min", "60s")

/*
 * When a synchronous standby is named, a record in the WAL for the
 * transaction (an empty logical message): its commit then waits for the
 * standby, which confirms every commit before it too.  A transaction id
 * alone is committed without waiting (doc/design/store.md).
 */
#define PG_SYNC_WAL \
	"SELECT CASE WHEN current_setting('synchronous_standby_names') <> " \
	"'' AND NOT pg_is_in_recovery() THEN " \
	"pg_logical_emit_message(true, 'payhook', '') END"

/* The statements on a table: head, the table, tail. */
enum pg_op {
	PG_GET,
	PG_PUT,
	PG_DEL,
	PG_LAST,
	PG_SCAN_FROM,
	PG_SCAN_AFTER,
	PG_OP__MAX
};

struct pg_stmt_text {
	const char *head, *tail;
	int nparams;
};

static const struct pg_stmt_text pg_stmts[PG_OP__MAX] = {
	[PG_GET] = { "SELECT v FROM ", " WHERE k = $1", 1 },
	[PG_PUT] = { "INSERT INTO ", " (k, v, doc) VALUES ($1, $2, $3) "
	    "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, "
	    "doc = EXCLUDED.doc", 3 },
	[PG_DEL] = { "DELETE FROM ", " WHERE k = $1", 1 },
	[PG_LAST] = { "SELECT k FROM ", " ORDER BY k DESC LIMIT 1", 0 },
	[PG_SCAN_FROM] = { "SELECT k, v FROM ", " WHERE k >= $1 ORDER BY k "
	    "LIMIT " PG_SCAN_PAGE, 1 },
	[PG_SCAN_AFTER] = { "SELECT k, v FROM ", " WHERE k > $1 ORDER BY k "
	    "LIMIT " PG_SCAN_PAGE, 1 },
};

struct pg_store {
	struct store s;			/* first: what store.c shares */
	PGconn *conn;
	uint32_t prepared[STORE_DB__MAX];	/* of this connection: bit
						 * (1 << pg_op) */
	char *conninfo;			/* owned */
	const char *password;		/* the caller's (store_spec), which
					 * outlives the store; or NULL */
	int lost;			/* connect again before the next
					 * transaction */
	int retry;			/* the last failure may not recur in
					 * a new transaction */
	int interactive;		/* store_spec's pg_interactive */
	int cut;			/* a WARNING of class 01 came (the
					 * wait for the standby cut short) */
	int stalled;			/* the last statement got no answer
					 * in time: its connection closed */
};

/* One top-level transaction and the nested ones inside it. */
struct pg_txn {
	PGresult **held;		/* results whose values were handed
					 * out: freed when the transaction
					 * ends */
	size_t nheld, capheld;
	int depth;			/* savepoints open */
};

struct pg_scan {
	enum store_db db;
	PGresult *page;			/* held by the transaction */
	int row, rows;
	int last_page;			/* fewer rows than asked for */
};

static const struct store_engine pg_engine;

static struct pg_store *
pg_of(const struct store *s)
{
	return (struct pg_store *)s;
}

/*
 * How long a statement's answer is waited for: the server's own
 * statement_timeout (PG_BOUNDS) and a margin.  A server, or a proxy, that
 * stops answering without closing the connection (which keepalives do
 * not find while its TCP peer answers) would otherwise hold the process
 * for as long as it lasts.
 */
#define PG_ANSWER_INTERACTIVE_MS	6000
#define PG_ANSWER_COMMAND_MS		(5 * 60 * 1000 + 15000)

static int64_t
pg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
pg_failed(ExecStatusType rs)
{
	return rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK &&
	    rs != PGRES_EMPTY_QUERY;
}

/*
 * The answer to what was just sent (sent: what PQsend* returned), as
 * PQexec gives it: the first failure, else the last result.  NULL when
 * nothing could be sent, or nothing came within the limit: then the
 * connection is closed (the server's side, once it hears, ends what the
 * session held) and marked lost.
 */
static PGresult *
pg_answer(struct pg_store *s, int sent)
{
	PGresult *res, *keep = NULL;
	struct pollfd pfd;
	int64_t deadline;
	int left, n;

	if (!sent)
		return NULL;
	deadline = pg_now_ms() + (s->interactive ? PG_ANSWER_INTERACTIVE_MS :
	    PG_ANSWER_COMMAND_MS);
	for (;;) {
		while (PQisBusy(s->conn)) {
			if ((left = (int)(deadline - pg_now_ms())) <= 0)
				goto stalled;
			pfd.fd = PQsocket(s->conn);
			pfd.events = POLLIN;
			pfd.revents = 0;
			if ((n = poll(&pfd, 1, left)) < 0 && errno != EINTR)
				break;
			if (n > 0 && !PQconsumeInput(s->conn))
				break;	/* broken: PQgetResult says so */
		}
		if ((res = PQgetResult(s->conn)) == NULL)
			return keep;
		if (keep != NULL && pg_failed(PQresultStatus(keep)))
			PQclear(res);
		else {
			PQclear(keep);
			keep = res;
		}
	}
stalled:
	PQclear(keep);
	PQfinish(s->conn);
	s->conn = NULL;
	s->lost = 1;
	s->stalled = 1;
	return NULL;
}

/*
 * The one translation of PostgreSQL's failures into payhook's; the first
 * of a transaction is logged.  A connection that broke is marked lost.
 */
static int
pg_status(struct store_txn *t, PGresult *res, const char *what)
{
	struct pg_store *s = pg_of(t->store);
	const char *state = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char msg[512];
	int rc = PH_E_STORE;

	if (PQstatus(s->conn) != CONNECTION_OK)
		s->lost = 1;
	/* Connection exceptions (08), a rollback the server chose (40:
	 * serialization, deadlock), a server shutting down or still
	 * starting (57P01-57P03, a standby being promoted), a read-only
	 * server (25006: connected to a standby): another try may pass. */
	s->retry = s->lost || (state != NULL &&
	    (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 ||
	    strncmp(state, "57P0", 4) == 0 || strcmp(state, "25006") == 0));
	if (state != NULL && strcmp(state, "25006") == 0)
		s->lost = 1;	/* find the primary again */
	if (state != NULL && strcmp(state, "53100") == 0)
		rc = PH_E_STORE_FULL;	/* disk_full */
	else if (state != NULL && strcmp(state, "53200") == 0)
		rc = PH_E_NOMEM;
	if (t->err == PH_OK && s->stalled)
		log_err("database: %s: no answer from the server within %d s: "
		    "connection closed", what, (s->interactive ?
		    PG_ANSWER_INTERACTIVE_MS : PG_ANSWER_COMMAND_MS) / 1000);
	else if (t->err == PH_OK && s->conn == NULL)
		log_err("database: %s: its connection was closed", what);
	else if (t->err == PH_OK) {
		log_err("database: %s: %s%s%s", what, store_pg_msg(res != NULL ?
		    PQresultErrorMessage(res) : PQerrorMessage(s->conn), msg,
		    sizeof(msg)), state != NULL ? " sqlstate=" : "",
		    state != NULL ? state : "");
		if (rc == PH_E_STORE_FULL)
			store_note_full(t);
	}
	return rc;
}

/* Runs a statement without parameters whose result is not kept. */
static int
pg_exec(struct store_txn *t, const char *sql)
{
	struct pg_store *s = pg_of(t->store);
	PGresult *res = pg_answer(s, PQsendQuery(s->conn, sql));
	int rc = PH_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pg_status(t, res, sql);
	PQclear(res);
	return rc;
}

/* Keeps res until the transaction ends (its values were handed out). */
static int
pg_hold(struct store_txn *t, PGresult *res)
{
	struct pg_txn *x = t->txn;
	PGresult **n;

	if (x->nheld == x->capheld) {
		size_t cap = x->capheld ? x->capheld * 2 : 8;

		if ((n = realloc(x->held, cap * sizeof(*n))) == NULL) {
			PQclear(res);
			return PH_E_NOMEM;
		}
		x->held = n;
		x->capheld = cap;
	}
	x->held[x->nheld++] = res;
	return PH_OK;
}

/* A statement's text about db's table: head, the table, tail. */
static const char *
pg_sql(char *buf, size_t cap, const char *head, enum store_db db,
    const char *tail)
{
	snprintf(buf, cap, "%spayhook.%s%s", head, store_db_name(db), tail);
	return buf;
}

/*
 * Runs statement op on db's table with binary parameters (NULL: SQL
 * NULL), prepared on the connection the first time it is used there: a
 * request's statements are parsed and planned once a process, not once
 * each.  PGRES_TUPLES_OK or PGRES_COMMAND_OK gives *out (NULL when not
 * wanted: cleared).
 */
static int
pg_stmt(struct store_txn *t, enum pg_op op, enum store_db db,
    const char *const *vals, const int *lens, const int *fmts,
    PGresult **out)
{
	struct pg_store *s = pg_of(t->store);
	const struct pg_stmt_text *st = &pg_stmts[op];
	char name[32], sql[240];
	PGresult *res;
	ExecStatusType rs;
	int rc;

	/* Its name, ph_<op>_<db>; its text only to prepare it, or for a
	 * message. */
	snprintf(name, sizeof(name), "ph_%d_%d", (int)op, (int)db);
	if (!(s->prepared[db] & (1u << op))) {
		pg_sql(sql, sizeof(sql), st->head, db, st->tail);
		res = pg_answer(s, PQsendPrepare(s->conn, name, sql,
		    st->nparams, NULL));
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = pg_status(t, res, sql);
			PQclear(res);
			return rc;
		}
		PQclear(res);
		s->prepared[db] |= 1u << op;
	}
	res = pg_answer(s, PQsendQueryPrepared(s->conn, name, st->nparams,
	    vals, lens, fmts, 1));
	rs = PQresultStatus(res);
	if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
		rc = pg_status(t, res, pg_sql(sql, sizeof(sql), st->head, db,
		    st->tail));
		PQclear(res);
		return rc;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return PH_OK;
}

/* Runs sql, without parameters, for one row of text: *out, or an
 * error. */
static int
pg_run_text(struct store_txn *t, const char *sql, PGresult **out)
{
	struct pg_store *s = pg_of(t->store);
	PGresult *res = pg_answer(s, PQsendQuery(s->conn, sql));
	int rc;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = pg_status(t, res, sql);
		PQclear(res);
		return rc;
	}
	*out = res;
	return PH_OK;
}

/*
 * The server's notices.  A WARNING with SQLSTATE 01000 at a commit is the
 * server giving up the wait for the synchronous standby (a cancel, a
 * statement_timeout): it is logged, and pg_commit_sync fails the commit.
 */
static void
pg_notice(void *arg, const PGresult *res)
{
	struct pg_store *s = arg;
	const char *sev, *state;
	char msg[512];

	sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (sev == NULL || strcmp(sev, "WARNING") != 0)
		return;
	if (state != NULL && strcmp(state, "01000") == 0)
		s->cut = 1;
	log_warn("database: %s", store_pg_msg(PQresultErrorMessage(res), msg,
	    sizeof(msg)));
}

/* Bounds the new session's waits (PG_BOUNDS). */
static int
pg_bound(struct pg_store *s, struct ph_diag *diag)
{
	PGresult *res;
	char msg[512];
	int rc = PH_OK;

	res = pg_answer(s, PQsendQuery(s->conn, s->interactive ?
	    PG_BOUNDS_INTERACTIVE : PG_BOUNDS_COMMAND));
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ph_fail(diag, PH_E_STORE, "database %s: cannot bound its "
		    "waits: %s", s->s.where, store_pg_msg(
		    PQresultErrorMessage(res), msg, sizeof(msg)));
	PQclear(res);
	return rc;
}

/*
 * libpq's account of a failed connection in one line: a line a host,
 * joined by "; ", without the hints libpq 14 and later indent below them
 * (so that the reason every host was passed over fits in a diagnostic).
 * Before 14 the host is named only in those lines: kept, folded.
 */
static const char *
pg_connect_msg(const char *m, char *buf, size_t cap)
{
	const char *end;
	size_t n = 0, len;
	int hint, hints = PQlibVersion() < 140000;

	for (; *m != '\0'; m = *end != '\0' ? end + 1 : end) {
		end = strchr(m, '\n');
		if (end == NULL)
			end = m + strlen(m);
		len = (size_t)(end - m);
		hint = len > 0 && (*m == '\t' || *m == ' ');
		if (len == 0 || (hint && !hints))
			continue;
		if (n > 0 && n + 2 < cap) {
			memcpy(buf + n, hint ? " " : "; ", hint ? 1 : 2);
			n += hint ? 1 : 2;
		}
		if (len > cap - 1 - n)
			len = cap - 1 - n;
		memcpy(buf + n, m, len);
		n += len;
	}
	buf[n] = '\0';
	return store_pg_msg(buf, buf, cap);
}

static int
pg_connect(struct pg_store *s, struct ph_diag *diag)
{
	char msg[512];
	/*
	 * A server lost without closing the connection (power lost, a
	 * partition) fails the statement in flight within about ten
	 * seconds: data unacknowledged for 10 s (tcp_user_timeout), or no
	 * answer to keepalives sent after 5 s of silence; a new connection
	 * waits 5 s at most for each host.  Only a server that takes
	 * writes: a standby named alone, or first, would answer every read
	 * and refuse every fact, and look ready.  Given before dbname, which
	 * holds pg_conninfo (expand_dbname): the operator's values win.
	 */
	const char *keys[] = { "keepalives", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	    "connect_timeout", "target_session_attrs", "dbname", "password",
	    "fallback_application_name", NULL };
	const char *vals[] = { "1", "5", "2", "3", "10000", "5", "read-write",
	    s->conninfo, s->password, "payhook", NULL };

	if (s->conn != NULL)
		PQfinish(s->conn);
	s->conn = PQconnectdbParams(keys, vals, 1);
	s->stalled = 0;
	memset(s->prepared, 0, sizeof(s->prepared));
	if (s->conn == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	if (PQstatus(s->conn) != CONNECTION_OK) {
		ph_fail(diag, PH_E_STORE, "database %s: cannot connect: %s",
		    s->s.where, pg_connect_msg(PQerrorMessage(s->conn), msg,
		    sizeof(msg)));
		s->lost = 1;
		return PH_E_STORE;
	}
	PQsetNoticeReceiver(s->conn, pg_notice, s);
	if (pg_bound(s, diag) != PH_OK) {
		s->lost = 1;
		return PH_E_STORE;
	}
	s->lost = 0;
	return PH_OK;
}

static void
pg_close(struct store *st)
{
	struct pg_store *s = pg_of(st);

	if (s->conn != NULL)
		PQfinish(s->conn);
	free(s->conninfo);
	store_free(st);
}

static void
pg_txn_free(struct pg_txn *x)
{
	size_t i;

	for (i = 0; i < x->nheld; i++)
		PQclear(x->held[i]);
	free(x->held);
	free(x);
}

/*
 * Begins t on the store's connection, connecting first when it was lost.
 * A connection found broken by the BEGIN itself (the server restarted or
 * failed over while this process was idle) is replaced once: nothing was
 * done in it.
 */
static int
pg_begin(struct store_txn *t)
{
	struct pg_store *s = pg_of(t->store);
	struct ph_diag diag;
	struct pg_txn *x;
	int rc, try;

	for (try = 0; ; try++) {
		s->retry = 0;
		if (s->lost || s->conn == NULL ||
		    PQstatus(s->conn) != CONNECTION_OK) {
			memset(&diag, 0, sizeof(diag));
			if (pg_connect(s, &diag) != PH_OK) {
				if (t->err == PH_OK)
					log_err("%s", diag.msg);
				s->retry = 1;
				return PH_E_STORE;
			}
			log_info("database %s: connected again", s->s.where);
		}
		if ((x = calloc(1, sizeof(*x))) == NULL)
			return PH_E_NOMEM;
		t->txn = x;
		rc = pg_exec(t, t->write ? "BEGIN ISOLATION LEVEL READ "
		    "COMMITTED; SELECT pg_advisory_xact_lock("
		    STORE_PG_WRITE_LOCK "); " PG_SYNC_WAL :
		    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
		if (rc == PH_OK)
			return PH_OK;
		if (s->conn != NULL)	/* NULL: closed, a stall */
			(void)pg_exec(t, "ROLLBACK");
		pg_txn_free(x);
		t->txn = NULL;
		if (try > 0 || !s->lost)
			return rc;
	}
}

static int
pg_begin_nested(struct store_txn *child)
{
	struct pg_txn *x = child->parent->txn;
	char sql[48];
	int rc;

	child->txn = x;
	snprintf(sql, sizeof(sql), "SAVEPOINT s%d", x->depth + 1);
	if ((rc = pg_exec(child, sql)) != PH_OK) {
		child->txn = NULL;
		return rc;
	}
	x->depth++;
	return PH_OK;
}

/*
 * Runs sql, which commits: a commit whose wait for the synchronous
 * standby the server cut short (pg_notice) stands on the primary only, so
 * it fails, and is not run again at once (the standby is away).
 */
static int
pg_commit_sync(struct store_txn *t, const char *sql)
{
	struct pg_store *s = pg_of(t->store);
	int rc;

	s->cut = 0;
	if ((rc = pg_exec(t, sql)) == PH_OK && s->cut) {
		log_err("database: the wait for the synchronous standby was "
		    "cut short: committed on the primary only");
		s->retry = 0;
		rc = PH_E_STORE;
	}
	return rc;
}

/* What t saw may be a commit whose wait for the standby was cut short:
 * a record committed now waits for the standby to have it. */
static int
pg_settle(struct store_txn *t)
{
	return pg_commit_sync(t, PG_SYNC_WAL);
}

/* The first column of res's one row as out (res held until the
 * transaction ends), or PH_E_NOTFOUND when it has none. */
static int
pg_first(struct store_txn *t, PGresult *res, struct store_val *out)
{
	int rc;

	if (PQntuples(res) == 0) {
		PQclear(res);
		return PH_E_NOTFOUND;
	}
	if ((rc = pg_hold(t, res)) != PH_OK)
		return rc;
	out->data = PQgetvalue(res, 0, 0);
	out->len = (size_t)PQgetlength(res, 0, 0);
	return PH_OK;
}

static int
pg_get(struct store_txn *t, enum store_db db, const struct store_key *k,
    struct store_val *out)
{
	const char *vals[1] = { (const char *)k->b };
	int lens[1] = { (int)k->len }, fmts[1] = { 1 };
	PGresult *res;
	int rc;

	if ((rc = pg_stmt(t, PG_GET, db, vals, lens, fmts, &res)) != PH_OK)
		return rc;
	return pg_first(t, res, out);
}

static int
pg_put(struct store_txn *t, enum store_db db, const struct store_key *k,
    const void *val, size_t len)
{
	struct store_val key = { k->b, k->len }, v = { val, len };
	const char *vals[3];
	int lens[3], fmts[3] = { 1, 1, 0 };
	struct ph_buf doc;
	int rc, have;

	ph_buf_init(&doc, PG_DOC_MAX);
	have = store_project(t->store, db, &key, &v, &doc);
	if (have < 0 || (have && doc.data == NULL)) {
		ph_buf_free(&doc);
		if (t->err == PH_OK)
			log_err("database: a %s record that cannot be shown "
			    "as JSON was not written", store_db_name(db));
		return have < 0 ? -have : PH_E_STORE;
	}
	vals[0] = (const char *)k->b;
	lens[0] = (int)k->len;
	vals[1] = len > 0 ? val : "";
	lens[1] = (int)len;
	vals[2] = have ? doc.data : NULL;
	lens[2] = 0;
	rc = pg_stmt(t, PG_PUT, db, vals, lens, fmts, NULL);
	ph_buf_free(&doc);
	return rc;
}

static int
pg_del(struct store_txn *t, enum store_db db, const struct store_key *k)
{
	const char *vals[1] = { (const char *)k->b };
	int lens[1] = { (int)k->len }, fmts[1] = { 1 };

	return pg_stmt(t, PG_DEL, db, vals, lens, fmts, NULL);
}

static int
pg_last(struct store_txn *t, enum store_db db, struct store_val *key)
{
	PGresult *res;
	int rc;

	if ((rc = pg_stmt(t, PG_LAST, db, NULL, NULL, NULL, &res)) != PH_OK)
		return rc;
	return pg_first(t, res, key);
}

static int
pg_scan_open(struct store_scan *sc, enum store_db db)
{
	struct pg_scan *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return PH_E_NOMEM;
	p->db = db;
	sc->cursor = p;
	return PH_OK;
}

/* The next page of the scan: from sc->from at first, then past the last
 * key seen.  bytea compares as memcmp does, which is LMDB's order. */
static int
pg_scan_page(struct store_scan *sc)
{
	struct pg_scan *p = sc->cursor;
	const char *vals[1];
	int lens[1], fmts[1] = { 1 }, rc;

	if (!sc->started) {
		vals[0] = (const char *)sc->from.b;
		lens[0] = (int)sc->from.len;
	} else {
		vals[0] = sc->key.data;
		lens[0] = (int)sc->key.len;
	}
	if ((rc = pg_stmt(sc->t, sc->started ? PG_SCAN_AFTER : PG_SCAN_FROM,
	    p->db, vals, lens, fmts, &p->page)) != PH_OK)
		return rc;
	if ((rc = pg_hold(sc->t, p->page)) != PH_OK) {
		p->page = NULL;		/* pg_hold cleared it */
		return rc;
	}
	p->row = 0;
	p->rows = PQntuples(p->page);
	p->last_page = p->rows < atoi(PG_SCAN_PAGE);
	return PH_OK;
}

static int
pg_scan_step(struct store_scan *sc)
{
	struct pg_scan *p = sc->cursor;
	int rc;

	if (p->page == NULL || p->row >= p->rows) {
		if (p->page != NULL && p->last_page)
			return 0;
		if ((rc = pg_scan_page(sc)) != PH_OK)
			return -rc;
		if (p->rows == 0)
			return 0;
	}
	sc->key.data = PQgetvalue(p->page, p->row, 0);
	sc->key.len = (size_t)PQgetlength(p->page, p->row, 0);
	sc->val.data = PQgetvalue(p->page, p->row, 1);
	sc->val.len = (size_t)PQgetlength(p->page, p->row, 1);
	p->row++;
	return 1;
}

static int
pg_scan_del(struct store_scan *sc)
{
	struct store_key k;

	store_key_from_val(&k, &sc->key);
	if (k.err)
		return PH_E_INTERNAL;
	return pg_del(sc->t, ((struct pg_scan *)sc->cursor)->db, &k);
}

static void
pg_scan_close(struct store_scan *sc)
{
	free(sc->cursor);
}

static int
pg_commit(struct store_txn *t)
{
	struct pg_txn *x = t->txn;
	char sql[48];
	int rc;

	if (t->nested) {
		snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT s%d", x->depth);
		x->depth--;
		return pg_exec(t, sql);
	}
	rc = pg_commit_sync(t, "COMMIT");
	pg_txn_free(x);
	if (rc == PH_OK && t->write)
		metrics_add("payhook_store_commits_total", NULL, 1);
	return rc;
}

static void
pg_abort(struct store_txn *t)
{
	struct pg_txn *x = t->txn;
	char sql[80];

	if (t->nested) {
		snprintf(sql, sizeof(sql), "ROLLBACK TO SAVEPOINT s%d; "
		    "RELEASE SAVEPOINT s%d", x->depth, x->depth);
		x->depth--;
		(void)pg_exec(t, sql);
		return;
	}
	(void)pg_exec(t, "ROLLBACK");
	pg_txn_free(x);
}

/* The rows of db's table: counted when PostgreSQL's estimate says there
 * are few (an estimate lags behind the last commits), the estimate above
 * PG_COUNT_MAX, where a count would read the whole table at every /readyz
 * and /metrics. */
static int
pg_rows(struct store_txn *t, enum store_db db, size_t *n)
{
	PGresult *res;
	char sql[200];
	long long est;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT coalesce((SELECT n_live_tup FROM "
	    "pg_stat_user_tables WHERE schemaname = 'payhook' AND relname = "
	    "'%s'), 0)::text", store_db_name(db));
	if ((rc = pg_run_text(t, sql, &res)) != PH_OK)
		return rc;
	est = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (est < PG_COUNT_MAX) {
		if ((rc = pg_run_text(t, pg_sql(sql, sizeof(sql),
		    "SELECT count(*)::text FROM ", db, ""), &res)) != PH_OK)
			return rc;
		est = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	*n = est < 0 ? 0 : (size_t)est;
	return PH_OK;
}

static int
pg_stats(struct store *st_, struct store_stats *st)
{
	struct store_txn t;
	PGresult *res;
	int rc, i;

	if ((rc = store_begin(st_, 0, &t)) != PH_OK)
		return rc;
	for (i = 0; i < STORE_DB__MAX && rc == PH_OK; i++)
		rc = pg_rows(&t, (enum store_db)i, &st->entries[i]);
	/* The space payhook's tables take, indexes and TOAST included (no
	 * map: map_size stays 0, and no fill is reported). */
	if (rc == PH_OK && (rc = pg_run_text(&t, "SELECT coalesce(sum("
	    "pg_total_relation_size(c.oid)), 0)::text FROM pg_class c JOIN "
	    "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
	    "'payhook' AND c.relkind = 'r'", &res)) == PH_OK) {
		st->map_used = (size_t)atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	store_abort(&t);
	return rc;
}

static int
pg_backup(struct store *s, const char *path, struct ph_diag *diag)
{
	(void)path;
	return ph_fail(diag, PH_E_CONFIG, "database %s is PostgreSQL: back "
	    "it up with the server's own tools (pg_dump -n payhook, or "
	    "pg_basebackup), not payhook backup", s->where);
}

static int
pg_retryable(const struct store *s)
{
	return pg_of(s)->retry;
}

static int
pg_clock(struct store *s, int64_t *ms)
{
	struct store_txn t;
	PGresult *res;
	int rc;

	if ((rc = store_begin(s, 0, &t)) != PH_OK)
		return rc;
	if ((rc = pg_run_text(&t, "SELECT (extract(epoch FROM "
	    "clock_timestamp()) * 1000)::bigint::text", &res)) == PH_OK) {
		*ms = (int64_t)atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	store_abort(&t);
	return rc;
}

static const struct store_engine pg_engine = {
	.name = "postgresql",
	.close = pg_close,
	.begin = pg_begin,
	.begin_nested = pg_begin_nested,
	.get = pg_get,
	.put = pg_put,
	.del = pg_del,
	.last = pg_last,
	.scan_open = pg_scan_open,
	.scan_step = pg_scan_step,
	.scan_del = pg_scan_del,
	.scan_close = pg_scan_close,
	.commit = pg_commit,
	.abort = pg_abort,
	.settle = pg_settle,
	.stats = pg_stats,
	.backup = pg_backup,
	.retryable = pg_retryable,
	.clock = pg_clock,
};

/*
 * What an operator reads in messages: the connection string without a
 * password=... part (libpq parses it; a URI's password is left out too).
 */
static char *
pg_describe(const char *conninfo)
{
	PQconninfoOption *opts, *o;
	struct ph_buf b;
	char *out;

	if ((opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return strdup("postgresql (connection string not readable)");
	ph_buf_init(&b, 4096);
	ph_buf_puts(&b, "postgresql");
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0' ||
		    strcmp(o->keyword, "password") == 0 ||
		    (strcmp(o->keyword, "host") != 0 &&
		    strcmp(o->keyword, "port") != 0 &&
		    strcmp(o->keyword, "dbname") != 0 &&
		    strcmp(o->keyword, "user") != 0))
			continue;
		ph_buf_printf(&b, " %s=%s", o->keyword, o->val);
	}
	PQconninfoFree(opts);
	out = b.err ? NULL : strdup(b.data);
	ph_buf_free(&b);
	return out;
}

int
store_pg_conninfo_check(const char *conninfo, char *why, size_t cap)
{
	PQconninfoOption *opts, *o;
	char *err = NULL;
	int rc = PH_OK;

	if (*conninfo == '\0') {
		snprintf(why, cap, "empty");
		return PH_E_CONFIG;
	}
	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		store_pg_msg(err != NULL ? err : "out of memory", why, cap);
		PQfreemem(err);
		return PH_E_CONFIG;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL &&
		    *o->val != '\0') {
			snprintf(why, cap, "holds a password: put it in "
			    "pg_password_file (mode 0600) or libpq's passfile, "
			    "not in payhook.conf");
			rc = PH_E_CONFIG;
		}
	PQconninfoFree(opts);
	return rc;
}

int
store_pg_open(const struct store_spec *spec, int flags, struct store **out,
    struct ph_diag *diag)
{
	const char *conninfo = spec->pg_conninfo, *password = spec->pg_password;
	struct pg_store *s;
	char *where, *err = NULL;
	PQconninfoOption *opts;
	int rc;

	*out = NULL;
	if (conninfo == NULL || *conninfo == '\0')
		return ph_fail(diag, PH_E_CONFIG, "store = postgresql needs "
		    "pg_conninfo");
	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		rc = ph_fail(diag, PH_E_CONFIG, "pg_conninfo: %s",
		    err != NULL ? err : "out of memory");
		PQfreemem(err);
		return rc;
	}
	PQconninfoFree(opts);
	if ((where = pg_describe(conninfo)) == NULL)
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	s = store_alloc(&pg_engine, sizeof(*s), spec->path, where);
	free(where);
	if (s != NULL) {
		s->s.project = spec->project;
		s->password = password;
		s->interactive = spec->pg_interactive;
	}
	if (s == NULL || (s->conninfo = strdup(conninfo)) == NULL) {
		if (s != NULL)
			pg_close(&s->s);
		return ph_fail(diag, PH_E_NOMEM, "out of memory");
	}
	if ((rc = pg_connect(s, diag)) != PH_OK ||
	    (rc = store_pg_layout(s->conn, s->s.where,
	    (flags & STORE_OPEN_CREATE) != 0, diag)) != PH_OK ||
	    (rc = store_check_schema(&s->s, flags,
	    (flags & STORE_OPEN_CREATE) != 0, diag)) != PH_OK) {
		pg_close(&s->s);
		return rc;
	}
	*out = &s->s;
	return PH_OK;
}
