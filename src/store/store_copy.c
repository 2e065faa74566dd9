/*
 * Copying every record of one store into another, of either engine
 * (payhook store import): from one snapshot of the source, in batches of
 * short write transactions on the target, then the records counted on
 * both sides.
 */
#include <stdio.h>
#include <string.h>

#include <payhook/sdk.h>

#include "store/store_int.h"

#define COPY_BATCH	500	/* records a write transaction */

/* Records of db that t sees; sets t->err on a failure. */
static size_t
copy_count(struct store_txn *t, enum store_db db)
{
	struct store_scan sc;
	size_t n = 0;

	store_scan_begin(&sc, t, db, NULL);
	while (store_scan_next(&sc))
		n++;
	store_scan_end(&sc);
	return n;
}

/*
 * Is the target empty but for the meta records its opening wrote?  *left
 * is set when it is what an import that did not finish left (its mark
 * still there): not empty, but to be emptied and copied into again.
 */
static int
copy_target_empty(struct store *to, int *left, struct ph_diag *diag)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key k;
	struct store_val v;
	int rc, db, found = -1;

	if ((rc = store_begin(to, 0, &t)) != PH_OK)
		return ph_fail(diag, rc, "%s: %s", store_where(to),
		    ph_strerror(rc));
	store_meta_key(&k, STORE_META_IMPORT);
	*left = store_get(&t, STORE_DB_META, &k, &v) == PH_OK;
	for (db = 0; db < STORE_DB__MAX && found < 0 && !*left; db++) {
		if (db == STORE_DB_META)
			continue;
		store_scan_begin(&sc, &t, (enum store_db)db, NULL);
		if (store_scan_next(&sc))
			found = db;
		store_scan_end(&sc);
	}
	rc = t.err;
	store_abort(&t);
	if (rc != PH_OK)
		return ph_fail(diag, rc, "%s: %s", store_where(to),
		    ph_strerror(rc));
	if (found >= 0)
		return ph_fail(diag, PH_E_CONFLICT, "%s is not empty (it holds "
		    "%s records): import only into a new store",
		    store_where(to), store_db_name((enum store_db)found));
	return PH_OK;
}

/* Copies db from the source's transaction src into to. */
static int
copy_db(struct store_txn *src, struct store *to, enum store_db db,
    struct ph_diag *diag)
{
	struct store_txn t;
	struct store_scan sc;
	struct store_key k;
	size_t n = 0;
	int rc = PH_OK, open = 0;

	store_scan_begin(&sc, src, db, NULL);
	while (rc == PH_OK && store_scan_next(&sc)) {
		if (!open) {
			if ((rc = store_begin(to, 1, &t)) != PH_OK)
				break;
			open = 1;
		}
		store_key_from_val(&k, &sc.key);
		store_put(&t, db, &k, sc.val.data, sc.val.len);
		if (++n % COPY_BATCH == 0) {
			rc = store_commit(&t);
			open = 0;
		}
	}
	store_scan_end(&sc);
	if (open && rc == PH_OK)
		rc = store_commit(&t);
	else if (open)
		store_abort(&t);
	if (rc == PH_OK && src->err != PH_OK)
		rc = src->err;
	if (rc != PH_OK)
		return ph_fail(diag, rc, "%s records: %s", store_db_name(db),
		    ph_strerror(rc));
	return PH_OK;
}

/* Marks to as an import under way, from where, or takes the mark away
 * (where NULL). */
static int
copy_mark(struct store *to, const char *where)
{
	struct store_txn t;
	struct store_key k;
	int rc;

	if ((rc = store_begin(to, 1, &t)) != PH_OK)
		return rc;
	store_meta_key(&k, STORE_META_IMPORT);
	if (where != NULL)
		store_put(&t, STORE_DB_META, &k, where, strlen(where));
	else
		store_del(&t, STORE_DB_META, &k);
	return store_commit(&t);
}

/*
 * Takes out what a copy put in to (every record but its meta ones, copied
 * last and so still its own, if the copy did not get that far), then its
 * mark: the store is new again, and the import may be run again once its
 * cause is fixed.
 */
static int
copy_wipe(struct store *to)
{
	struct store_txn t;
	struct store_scan sc;
	size_t n;
	int rc = PH_OK, db, more;

	for (db = 0; db < STORE_DB__MAX && rc == PH_OK; db++) {
		if (db == STORE_DB_META)
			continue;
		do {
			if ((rc = store_begin(to, 1, &t)) != PH_OK)
				break;
			n = 0;
			store_scan_begin(&sc, &t, (enum store_db)db, NULL);
			while ((more = store_scan_next(&sc)) &&
			    n < COPY_BATCH) {
				store_scan_del(&sc);
				n++;
			}
			store_scan_end(&sc);
			rc = store_commit(&t);
		} while (rc == PH_OK && more);
	}
	return rc == PH_OK ? copy_mark(to, NULL) : rc;
}

int
store_copy(struct store *from, struct store *to,
    struct store_copy_report *rep, struct ph_diag *diag)
{
	struct store_txn src, dst;
	char from_where[600];
	int rc, wrc, db, left = 0;

	memset(rep, 0, sizeof(*rep));
	memset(&dst, 0, sizeof(dst));
	if (store_schema(from) != store_schema(to))
		return ph_fail(diag, PH_E_STORE, "%s has schema %d, %s %d",
		    store_where(from), store_schema(from), store_where(to),
		    store_schema(to));
	if ((rc = copy_target_empty(to, &left, diag)) != PH_OK)
		return rc;
	if (left && (rc = copy_wipe(to)) != PH_OK)
		return ph_fail(diag, rc, "%s: what an import that did not "
		    "finish copied could not be taken out: %s",
		    store_where(to), ph_strerror(rc));
	snprintf(from_where, sizeof(from_where), "%s (%s)", store_where(from),
	    store_engine_name(from));
	if ((rc = copy_mark(to, from_where)) != PH_OK)
		return ph_fail(diag, rc, "%s: %s", store_where(to),
		    ph_strerror(rc));
	/* One snapshot of the source for every kind of record. */
	if ((rc = store_begin(from, 0, &src)) != PH_OK) {
		(void)copy_mark(to, NULL);
		return ph_fail(diag, rc, "%s: %s", store_where(from),
		    ph_strerror(rc));
	}
	/* The meta records (the schema, the epoch) last: until they are
	 * copied, the target is still the new store it was.  The mark goes
	 * once they are; then both are counted. */
	for (db = 0; db < STORE_DB__MAX && rc == PH_OK; db++)
		if (db != STORE_DB_META)
			rc = copy_db(&src, to, (enum store_db)db, diag);
	if (rc == PH_OK)
		rc = copy_db(&src, to, STORE_DB_META, diag);
	if (rc == PH_OK && (rc = copy_mark(to, NULL)) != PH_OK)
		ph_fail(diag, rc, "%s: %s", store_where(to), ph_strerror(rc));
	if (rc == PH_OK && (rc = store_begin(to, 0, &dst)) != PH_OK)
		ph_fail(diag, rc, "%s: %s", store_where(to), ph_strerror(rc));
	for (db = 0; db < STORE_DB__MAX && rc == PH_OK; db++) {
		rep->from[db] = copy_count(&src, (enum store_db)db);
		rep->to[db] = copy_count(&dst, (enum store_db)db);
		if (src.err != PH_OK || dst.err != PH_OK)
			rc = ph_fail(diag, src.err != PH_OK ? src.err : dst.err,
			    "counting %s records: %s", store_db_name(db),
			    ph_strerror(src.err != PH_OK ? src.err : dst.err));
		else if (rep->from[db] != rep->to[db])
			rc = ph_fail(diag, PH_E_STORE, "%s records: %zu in %s, "
			    "%zu in %s after the copy", store_db_name(db),
			    rep->from[db], store_where(from), rep->to[db],
			    store_where(to));
	}
	if (dst.txn != NULL)
		store_abort(&dst);
	store_abort(&src);
	if (rc != PH_OK && (wrc = copy_wipe(to)) != PH_OK) {
		size_t len = strlen(diag->msg);

		snprintf(diag->msg + len, sizeof(diag->msg) - len, "; and the "
		    "records copied could not be taken out again (%s): make "
		    "%s anew before importing again", ph_strerror(wrc),
		    store_where(to));
	}
	/* The target's meta records are the source's now: its epoch too. */
	if (rc == PH_OK)
		rc = store_check_schema(to, STORE_OPEN_OLDER, 0, diag);
	return rc;
}
