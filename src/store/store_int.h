/*
 * Inside the store: what every engine (LMDB, PostgreSQL) shares, and the
 * table of functions each one gives.  store.c holds what is the same for
 * all of them (keys, the schema version and the epoch in the meta
 * records, the sticky error's rules) and calls the engine for the rest;
 * no engine's type or error code passes this line.
 */
#ifndef PH_STORE_INT_H
#define PH_STORE_INT_H

#include "store/store.h"

struct store_engine {
	const char *name;		/* "lmdb", "postgresql" */
	void (*close)(struct store *s);
	/* t is zeroed with t->store and t->write set; the engine sets
	 * t->txn and t->seen, or returns an error (not yet in t->err). */
	int (*begin)(struct store_txn *t);
	/* child is zeroed with store, write, nested and parent set. */
	int (*begin_nested)(struct store_txn *child);
	/* PH_OK, PH_E_NOTFOUND or an error. */
	int (*get)(struct store_txn *t, enum store_db db,
	    const struct store_key *k, struct store_val *out);
	int (*put)(struct store_txn *t, enum store_db db,
	    const struct store_key *k, const void *val, size_t len);
	/* A missing key is not an error. */
	int (*del)(struct store_txn *t, enum store_db db,
	    const struct store_key *k);
	/* The largest key of db (PH_E_NOTFOUND when it is empty). */
	int (*last)(struct store_txn *t, enum store_db db,
	    struct store_val *key);
	/* sc->cursor set, or an error; sc->from says where to start. */
	int (*scan_open)(struct store_scan *sc, enum store_db db);
	/* 1 with sc->key and sc->val set, 0 at the end, or an error (< 0:
	 * -status). */
	int (*scan_step)(struct store_scan *sc);
	int (*scan_del)(struct store_scan *sc);
	void (*scan_close)(struct store_scan *sc);
	/* Ends the engine's transaction: commits (made durable as the
	 * engine promises) or, on error, leaves nothing of it. */
	int (*commit)(struct store_txn *t);
	void (*abort)(struct store_txn *t);
	/* Returns once what t saw is durable. */
	int (*settle)(struct store_txn *t);
	int (*stats)(struct store *s, struct store_stats *st);
	/* The map's size and use and the readers only, cheaply (no entry
	 * counted).  NULL: the engine has no map (nothing filled in). */
	int (*space)(struct store *s, struct store_stats *st);
	int (*backup)(struct store *s, const char *path, struct ph_diag *diag);
	/* Does another process have the store open (*pid one of them)?  1,
	 * 0, or -1 when it cannot tell.  NULL: the engine cannot tell (a
	 * database server's clients may be on other hosts). */
	int (*others)(struct store *s, long *pid);
	/* May the transaction that failed last succeed if run again (a
	 * connection lost, a conflict)?  NULL: never. */
	int (*retryable)(const struct store *s);
	/* The time on the server every host shares, in milliseconds since
	 * the epoch.  NULL: the store is one host's (its clock is ours). */
	int (*clock)(struct store *s, int64_t *ms);
};

/* The part of every engine's store that store.c reads and writes; an
 * engine's own structure begins with it. */
struct store {
	const struct store_engine *eng;
	char *path;			/* the LMDB file, or where the local
					 * files beside it go (PostgreSQL) */
	char *where;			/* for messages: the file, or the
					 * server without secrets */
	/* How records are shown as JSON (store_spec's project); NULL: not
	 * at all. */
	int (*project)(enum store_db db, const struct store_val *key,
	    const struct store_val *val, struct ph_buf *out);
	int schema;			/* the records' schema version */
	int schema_found;		/* ... when the store was opened */
	char epoch[STORE_EPOCH_LEN + 1];
	char epoch_new[STORE_EPOCH_LEN + 1];	/* made in an open txn */
	uint64_t seq_floor;		/* the least sequence number handed
					 * out from now on (store_seq_jump) */
};

/*
 * Reads the schema version and the epoch; a store with no records yet gets
 * both when create is set (an engine whose stores are made by an operator's
 * command passes 0 where a server opens it), and is refused when it is
 * not.  Every engine's open calls it last.
 */
/* The key of the meta record name ("schema", "epoch", ...). */
void store_meta_key(struct store_key *k, const char *name);
/* The meta record marking an import under way (store_copy): where from. */
#define STORE_META_IMPORT "import"
int store_check_schema(struct store *s, int flags, int create,
    struct ph_diag *diag);
/* A store whose engine allocated sz bytes, of which struct store is the
 * first member; NULL when out of memory. */
void *store_alloc(const struct store_engine *eng, size_t sz,
    const char *path, const char *where);
/* The record as JSON text in out (1), none for its kind (0), or -status:
 * the store's projection (store_spec's project). */
int store_project(struct store *s, enum store_db db,
    const struct store_val *key, const struct store_val *val,
    struct ph_buf *out);
/* Frees what store_alloc made (the engine has released its own). */
void store_free(struct store *s);
/* Counts a write that found the store full, for /readyz and the
 * metrics (every engine that can be full calls it). */
void store_note_full(struct store_txn *t);
/* Records that a write of t was refused by the database or the disk under
 * it for another reason than room (read-only, permissions, I/O): /readyz
 * says so until a write succeeds. */
void store_note_unwritable(struct store_txn *t);

/* The engines. */
/* Creates the folder that holds path when it is missing (0700). */
int store_mkparent(const char *path, struct ph_diag *diag);
int store_lmdb_open(const char *path, size_t map_size, int flags,
    struct store **out, struct ph_diag *diag);
int store_pg_open(const struct store_spec *spec, int flags,
    struct store **out, struct ph_diag *diag);

#endif
