/*
 * The PostgreSQL engine's tables (store_pg_schema.c), for store_pg.c.
 */
#ifndef PH_STORE_PG_H
#define PH_STORE_PG_H

#include <libpq-fe.h>

#include <payhook/provider.h>

/* pg_advisory_xact_lock's key for every write transaction: "payhook" in
 * ASCII, as a decimal literal. */
#define STORE_PG_WRITE_LOCK	"31632371462664043"

/* The layout of payhook's tables; payhook.layout holds it. */
#define STORE_PG_LAYOUT 1

/* PostgreSQL's message m on one line in buf (newlines as spaces, no
 * trailing space); returns buf. */
const char *store_pg_msg(const char *m, char *buf, size_t cap);
/*
 * Checks that the database holds payhook's tables in the layout this
 * payhook uses; with create, a database without them gets them (in one
 * transaction, under the writers' lock: two hosts' checks at once make them
 * once), and a role that may not write them is refused.  where names the
 * database in messages.
 */
int store_pg_layout(PGconn *conn, const char *where, int create,
    struct ph_diag *diag);

#endif
