/*
 * The store: the records of the ledger, kept by an engine (store_int.h):
 * an LMDB file (store_lmdb.c; the default, one host) or a PostgreSQL
 * database (store_pg.c; several hosts).  A store is opened once per process
 * at start (never before a fork), with one database or table per kind of
 * record.  Keys sort:
 * a record-class byte, then big-endian integers or length-prefixed
 * strings.  Values are the ledger's records: versioned documents ("v":
 * 1) in CBOR (ledger_cbor.c), but for the dedup records, which every
 * notification reads: a binary record of their own (ledger_dedup.c).
 *
 * A transaction keeps a sticky error: callers do a run of gets and puts and
 * check once, at store_commit(), which aborts instead when anything failed.
 */
#ifndef PH_STORE_H
#define PH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <payhook/provider.h>

/*
 * The layout of the records.  A store of an older version is opened only
 * with STORE_OPEN_OLDER, by whoever then brings it up to date
 * (ledger_open); a newer one is refused.
 */
#define STORE_SCHEMA_VERSION 5
/* The group commit file beside the database (ledger/ledger_group.c): its
 * name carries its layout's version, so that builds of two layouts never
 * share one (a process keeps the mapping it made for its life).  Older
 * builds' files were "-group". */
#define STORE_GROUP_SUFFIX "-group4"
#define STORE_OPEN_OLDER 0x01
/* PostgreSQL: a database without payhook's tables gets them (payhook
 * check); without it such a database is refused (payhook.fcgi never
 * creates or alters them).  An LMDB file is made whenever it is missing. */
#define STORE_OPEN_CREATE 0x02
/* LMDB: the file must hold payhook's records already (a backup to
 * restore); an empty file, or another program's, is refused, not made
 * into a new store. */
#define STORE_OPEN_EXISTING 0x04
/* The store may be one an import did not finish (store_copy's mark in
 * its meta records): only payhook store import, which starts it over,
 * opens such a store; anything else refuses it, half copied. */
#define STORE_OPEN_IMPORT 0x08

/* The store's epoch: random, made when the store is made, made anew by a
 * restore; every id payhook hands out carries it (lower-case hex digits,
 * checked at open). */
#define STORE_EPOCH_LEN 16

enum store_db {
	STORE_DB_ORDERS,	/* order id -> order */
	STORE_DB_PAYMENTS,	/* profile, transaction id -> payment */
	STORE_DB_DEDUP,		/* profile, dedup key -> first sighting */
	STORE_DB_EVENTS,	/* sequence -> event (the outbox) */
	STORE_DB_REFUNDS,	/* sequence -> refund work item */
	STORE_DB_META,		/* "schema" -> version, "epoch", counts */
	STORE_DB_DUE,		/* next query time, order id -> "" */
	STORE_DB_RECON,		/* reconciliation marks and alarms raised */
	STORE_DB_PUSH,		/* event push: cursors and delivery log */
	STORE_DB_IDEM,		/* Idempotency-Key -> request and answer */
	STORE_DB_REFUND_IDS,	/* refund id -> refund sequence */
	STORE_DB__MAX
};

/*
 * Record-class bytes, first byte of every key of that database.  Payments
 * and dedup keys belong to the profile whose credentials verified them;
 * schema 1 keyed them by provider (the _V1 classes): its payments were
 * moved, its dedup keys are still read until they are pruned.
 */
#define STORE_KEY_ORDER		'O'
#define STORE_KEY_PAYMENT	'p'	/* profile, transaction id */
#define STORE_KEY_DEDUP		'd'	/* profile, dedup key */
#define STORE_KEY_PAYMENT_V1	'P'	/* provider, transaction id */
#define STORE_KEY_DEDUP_V1	'D'	/* provider, dedup key */

struct store;
struct store_val;
struct ph_buf;

enum store_kind {
	STORE_LMDB,
	STORE_POSTGRESQL,
};

/* Where the records are: [core] store, db_path, map_size_mb, pg_conninfo,
 * pg_password_file. */
struct store_spec {
	enum store_kind kind;
	const char *path;		/* lmdb: the file; postgresql: where
					 * the local files go beside it */
	size_t map_size;		/* lmdb: the map, bytes */
	const char *pg_conninfo;	/* libpq connection string or URI */
	const char *pg_password;	/* NULL, or pg_password_file's text:
					 * kept by reference, for reconnecting,
					 * so it must outlive the store */
	int pg_interactive;		/* a caller waits for every transaction
					 * (payhook.fcgi): lock and statement
					 * waits bounded to seconds, not
					 * minutes (doc/payhook.conf.5) */
	/*
	 * How a record is shown as JSON where an engine keeps it so beside
	 * the record (PostgreSQL's doc column, which its typed columns come
	 * from): out filled and 1, 0 for a kind of record that has none, or
	 * -status.  The ledger, which knows the records, gives it
	 * (ledger_open_spec); NULL: nowhere.
	 */
	int (*project)(enum store_db db, const struct store_val *key,
	    const struct store_val *val, struct ph_buf *out);
};

struct store_txn {
	struct store *store;
	void *txn;		/* the engine's transaction */
	int write;
	int nested;		/* inside another write transaction */
	int err;		/* sticky: first failure, PH_OK while none */
	uint64_t seen;		/* the last transaction it can see */
	struct store_txn *parent;	/* of a nested one */
	int full;		/* a write here or in a nested one found the
				 * map full */
	int wrote;		/* it changed something (a commit of nothing
				 * proves nothing of the disk under it) */
};

#define STORE_KEY_MAX 511	/* LMDB's default maximum key size */

struct store_key {
	unsigned char b[STORE_KEY_MAX];
	size_t len;
	int err;		/* set when a part did not fit */
};

/* A key or value as the store holds it: points into the map, valid until
 * the transaction ends. */
struct store_val {
	const void *data;
	size_t len;
};

/*
 * The one way through a database in key order:
 *
 *	store_scan_begin(&sc, &t, STORE_DB_ORDERS, NULL);
 *	while (store_scan_next(&sc))
 *		... sc.key, sc.val ...
 *	store_scan_end(&sc);
 *
 * An error ends the scan and stays in the transaction (t->err).
 */
struct store_scan {
	struct store_txn *t;
	void *cursor;
	int started;
	struct store_key from;		/* where the scan starts */
	struct store_val key, val;	/* the record it stands on */
};

/*
 * Opens (creating if needed) the database file at path with a map of
 * map_size bytes, clears reader slots left by killed processes and checks
 * the schema version (flags: STORE_OPEN_OLDER).  A new store gets the
 * current version and an epoch.  Durable: every commit is synced.
 */
int store_open(const char *path, size_t map_size, int flags,
    struct store **out, struct ph_diag *diag);
/* Opens the store spec names, of either engine (flags: STORE_OPEN_*). */
int store_open_spec(const struct store_spec *spec, int flags,
    struct store **out, struct ph_diag *diag);
/* "lmdb" or "postgresql". */
const char *store_engine_name(const struct store *s);
/* For messages: the file, or the server (without secrets). */
const char *store_where(const struct store *s);
/*
 * Is conninfo a libpq connection string or URI payhook takes?  Not one
 * holding a password (pg_password_file or libpq's passfile keep it).
 * PH_OK, or PH_E_CONFIG with the reason in why.
 */
int store_pg_conninfo_check(const char *conninfo, char *why, size_t cap);
/* The path the store was opened at. */
const char *store_path(const struct store *s);
/* The schema version the file has (older only with STORE_OPEN_OLDER). */
int store_schema(const struct store *s);
/* The version the file had when it was opened (before any migration). */
int store_schema_found(const struct store *s);
/* Records version as the store's schema, in t (a migration's last step). */
void store_set_schema(struct store_txn *t, int version);
/* The epoch (STORE_EPOCH_LEN hex digits); "" before one is made. */
const char *store_epoch(const struct store *s);
/* Makes a new random epoch in t, replacing any; the process sees it once
 * t commits. */
void store_new_epoch(struct store_txn *t);
/*
 * After a restore (and with a new epoch): sequence numbers of events and
 * refunds go on STORE_SEQ_GAP past every one the store holds and past
 * past (the next of the store a restore replaces, which may have handed
 * out more since the backup, or been restored from it before; 0 for
 * none), so none handed out before is handed out again, even to a feed
 * reader that sends no epoch.  Returns the first one from now on, 0 on
 * t's error.  Like the epoch, a running process keeps the floor it read
 * when it opened the store.
 */
#define STORE_SEQ_GAP	((uint64_t)1 << 32)
/* Past this, a sequence number was never handed out (2^16 restores of
 * 2^32 each): a store that holds one is damaged. */
#define STORE_SEQ_SANE	((uint64_t)1 << 48)
uint64_t store_seq_jump(struct store_txn *t, uint64_t past);
/* The least sequence number s would hand out next to an event or a
 * refund (its floor, or past their last), in *next. */
int store_seq_next(struct store *s, uint64_t *next);
void store_close(struct store *s);

int store_begin(struct store *s, int write, struct store_txn *t);
/*
 * A write transaction inside parent: its changes become parent's when it
 * commits (no flush: parent's commit makes them durable), and vanish when
 * it aborts or fails, leaving parent as it was.
 */
int store_begin_nested(struct store_txn *parent, struct store_txn *child);
/* PH_OK, PH_E_NOTFOUND, or the sticky error.  val points into the map,
 * valid until the transaction ends. */
int store_get(struct store_txn *t, enum store_db db, const struct store_key *k,
    struct store_val *val);
void store_put(struct store_txn *t, enum store_db db,
    const struct store_key *k, const void *val, size_t len);
/* Deletes a key; a missing key is not an error. */
void store_del(struct store_txn *t, enum store_db db,
    const struct store_key *k);
/* One past the largest 8-byte big-endian key of db (1 when empty). */
uint64_t store_next_seq(struct store_txn *t, enum store_db db);
/*
 * After a transaction of s failed: may running it again in a new one
 * succeed (its connection to the server was lost, or it met another's
 * conflict), as far as the engine can tell?  Whatever was applied is then
 * applied again only as every fact is: found applied, answered once.
 */
int store_retryable(const struct store *s);
/*
 * Is this host's clock more than STORE_SKEW_MAX_MS from the one every
 * host of the store shares (the database server's)?  Leases, holds and
 * expiry times one host writes are read against another's clock, and
 * beyond that they would not hold (doc/design/store.md).  0: no (or a
 * store of one host); 1: yes, why says by how much ("this host's clock
 * is 300.0 s behind the database server's"); -1: the server's clock
 * could not be read, why says so.
 */
#define STORE_SKEW_MAX_MS	5000
int store_clock_off(struct store *s, char *why, size_t len);
/* Commits a write transaction (or ends a read one); aborts on a sticky
 * error and returns it. */
int store_commit(struct store_txn *t);
void store_abort(struct store_txn *t);
/*
 * Returns once what t saw (other processes' commits included) is on disk;
 * PH_OK, or an error when the flush failed.  Call it, before or after the
 * transaction ends, before answering from what it read: a duplicate
 * acknowledged, an order or events shown.  Commits are flushed by
 * store_commit() itself.
 */
int store_settle(struct store_txn *t);
/* Starts a scan of db at the first key not below from (NULL: the first). */
void store_scan_begin(struct store_scan *sc, struct store_txn *t,
    enum store_db db, const struct store_key *from);
/* Moves to the next record: 1 when there is one, 0 at the end or on an
 * error (then t->err says which). */
int store_scan_next(struct store_scan *sc);
/* Deletes the record the scan stands on; the scan goes on after it. */
void store_scan_del(struct store_scan *sc);
void store_scan_end(struct store_scan *sc);
/* Does v begin with the bytes of k? */
int store_val_has_prefix(const struct store_val *v, const struct store_key *k);
/* k made of v's bytes (k->err when they do not fit), to resume a scan. */
void store_key_from_val(struct store_key *k, const struct store_val *v);

/* Key builders. */
void store_key_init(struct store_key *k, unsigned char klass);
void store_key_str(struct store_key *k, const char *s);	/* u8 len + bytes */
void store_key_u64(struct store_key *k, uint64_t v);	/* big-endian */
/* The u64 a sequence key holds (8 bytes big-endian). */
uint64_t store_key_get_u64(const struct store_val *v);

/*
 * A key read back part by part, in the order the builders wrote it, from
 * byte off (1 past a class byte, 0 for a key without one).  A part that is
 * not there (the key ends first, or a text does not fit its buffer) sets
 * bad, for good, and reads as 0 or "".
 */
struct store_key_reader {
	const unsigned char *p;
	size_t len, off;
	int bad;
};
void store_key_read(struct store_key_reader *r, const struct store_val *key,
    size_t off);
uint64_t store_key_read_u64(struct store_key_reader *r);
/* A text part (u8 length, bytes) into out, cap bytes with its NUL. */
void store_key_read_str(struct store_key_reader *r, char *out, size_t cap);
/* Whether every byte of the key was read, and well. */
int store_key_read_all(const struct store_key_reader *r);

/*
 * A consistent copy of the database to path (which must not exist),
 * compacted, while other processes keep reading and writing.
 */
int store_backup(struct store *s, const char *path, struct ph_diag *diag);

/* What a restore did, for the operator. */
struct store_restore_report {
	char epoch_before[STORE_EPOCH_LEN + 1];	/* the backup's */
	char epoch_after[STORE_EPOCH_LEN + 1];	/* the store's now */
	long uid, gid;			/* owner given to the store */
	unsigned mode;
	int replaced;			/* a store file was there */
	uint64_t seq_backup;		/* the backup's next sequence number */
	uint64_t seq_replaced;		/* the replaced store's; 0: none read */
	char replaced_unread[512];	/* why it could not be read, or "" */
	uint64_t seq_from;		/* the first handed out from now on */
	int lock_removed;		/* its stale lock file was removed */
	size_t bytes;
};

/*
 * Puts the backup read from fd (named backup in messages; the caller
 * keeps fd) in place of the store at path: refused (PH_E_STORE) while
 * another restore of it runs (it holds a flock of the store's folder),
 * and (PH_E_CONFLICT) while any process has the store open (LMDB's lock
 * file says so); else the backup is copied beside the store, checked by
 * opening it, given a new epoch (every id handed out after the restore
 * differs from those handed out before it) and sequence numbers past the
 * backup's and the replaced store's (store_seq_jump), given the mode
 * (and, run by root, the owner) of the store it replaces, and renamed
 * over it; the stale lock file and group commit file go.  Everything it
 * does in the store's folder is done by name as whoever calls it: the
 * caller must be the folder's owner, never root in a folder another user
 * may write (links planted there would be followed).
 */
int store_restore(const char *path, int fd, const char *backup,
    size_t map_size, struct store_restore_report *rep,
    struct ph_diag *diag);

/* What store_copy copied: records of each kind in both stores. */
struct store_copy_report {
	size_t from[STORE_DB__MAX];
	size_t to[STORE_DB__MAX];
};

/*
 * Copies every record of from (one snapshot) into to, which must hold
 * nothing but its meta records (PH_E_CONFLICT otherwise; the meta records,
 * the epoch among them, are from's afterwards: the same store moved, its
 * ids going on), then counts both: a count that differs fails.  Both must
 * have the same schema.  Stop every payhook on from first.  Until the copy
 * is whole, to is marked as an import under way: a copy stopped half way
 * (killed, the machine down) leaves a store that nothing but another
 * import opens (STORE_OPEN_IMPORT), and that import starts over.
 */
int store_copy(struct store *from, struct store *to,
    struct store_copy_report *rep, struct ph_diag *diag);

/*
 * When writes have been failing (the map or disk full, or refused): one
 * small real write (a meta record), so that a store that takes writes
 * again says so (/readyz's store_full and store_unwritable end) before
 * traffic comes back to it; a commit of nothing proves nothing.  Nothing
 * is written while writes succeed.  PH_OK, or the write's failure.
 */
int store_probe_write(struct store *s, int64_t now);

/* Database statistics for operators: entries per database, map use. */
struct store_stats {
	size_t entries[STORE_DB__MAX];
	size_t map_size;
	size_t map_used;
	unsigned readers_used, readers_max;
};
int store_stats(struct store *s, struct store_stats *st);
/* Of st, only the map's size and use and the readers: what /readyz asks
 * on every call, without counting anything (no query on a database
 * server, which has no map: both stay 0 there). */
int store_space(struct store *s, struct store_stats *st);
/* Does another process (not this one) have s open, *pid one of them: 1,
 * 0, or -1 when the engine cannot tell (PostgreSQL's clients may be on
 * other hosts). */
int store_others(struct store *s, long *pid);
/* The share of the map in use, 0 to 1 (the highest page ever written:
 * LMDB reuses freed pages but never gives them back). */
double store_fill(const struct store_stats *st);
const char *store_db_name(enum store_db db);

#endif
