/*
** local.h — private to the local (SQLite) backend.
**
** Files by what they do.  The machinery: local.c (opening the data
** directory, the schema's versions, the op table), local_conn.c
** (connections, their statement caches, the pool of read connections),
** local_writer.c (the group-commit writer thread), local_ckpt.c (the
** checkpoint thread), local_vfs.c (the writer's VFS); ../dirlock.c
** gives one process per data directory.  The features,
** each owning its SQL, its tables and its triggers: profiles.c (ingest,
** find, get, stat, delete), services.c (services, label sets, statistics),
** merge.c (merge queries), rollups.c (precomputed merges) and retention.c.
**
** Concurrency model: SQLite in WAL mode lets one writer, one checkpoint and
** any number of readers work at once.  All writes go through one writer
** thread that owns the only write connection and commits the requests of
** many callers in one transaction (one fsync for all of them); a checkpoint
** thread with a connection of its own copies the WAL back into the
** database file.  Reads take a connection from a pool, one per concurrent
** reader, and give it back when done.
**
** Invariants:
**   - a connection in the pool has no statement in progress (no open read
**     transaction), so every query sees the latest commit;
**   - `generation` is incremented after each commit that changed a profile
**     or a service, before any of its callers is told the outcome.
*/
#ifndef PROFEFS_STORE_LOCAL_H
#define PROFEFS_STORE_LOCAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "backend.h"
#include "mergepipe.h"

#define STORE_LOCAL_DBNAME "profefs.db"

typedef struct store_local_writer store_local_writer;
typedef struct store_local_rollup store_local_rollup;
typedef struct store_local_vfs store_local_vfs;
typedef struct store_local_ckpt store_local_ckpt;

/* Rollups cover whole hours of one series (service, type, labels): hour h
** holds the profiles with created_at in [h * 3600, h * 3600 + 3599]. */
#define STORE_LOCAL_HOUR 3600

/* A connection with the statements prepared on it so far, each found by
** the address of its SQL text (every feature keeps its SQL in static
** strings).  Used by one thread at a time. */
typedef struct store_local_conn {
  sqlite3 *db;
  struct store_local_stmt *st;
  size_t nst, capst;
  struct store_local_conn *next; /* in the pool */
} store_local_conn;

/* How long a connection waits for a lock another one holds. */
#define STORE_LOCAL_BUSY_MS 10000

typedef struct store_local {
  char *dir;                /* data directory, as given */
  char *path;               /* dir/profefs.db */
  size_t max_inflate;       /* for pprof_check / merges */
  budget *budget;           /* checking an ingest inflates within it */
  int read_only;
  int lock_fd;              /* holds the directory's lock (lock.c); -1 none */

  pthread_mutex_t pool_mu;  /* guards pool and npool */
  store_local_conn *pool;   /* idle read connections */
  size_t npool;

  store_local_vfs *vfs;       /* the writer's VFS; NULL when read_only */
  store_local_writer *writer; /* NULL when read_only */
  store_local_rollup *rollup; /* background builder; NULL when read_only */

  _Atomic uint64_t generation;
  _Atomic int64_t ingests, commits;
} store_local;

/* ---- local_conn.c: connections ------------------------------------------ */

/* Opens a connection on l->path with the pragmas every connection uses and
** the labels_match() SQL function.  writer: read-write with synchronous=FULL
** through l->vfs, else query-only.  STORE_IO with a reason on failure. */
store_rc store_local_connect(store_local *l, int writer, sqlite3 **out,
                             char *err);

/* Maps a failed SQLite call (rc, with db's message) to a store_rc and a
** reason starting with `what`.  SQLITE_FULL (or ENOSPC) is STORE_NOSPACE. */
store_rc store_local_sqlerr(store_local *l, sqlite3 *db, int rc, char *err,
                            const char *what);

/* The statement of c for sql (a static string: its address is the key),
** prepared on first use.  STORE_IO or STORE_NOMEM on failure. */
store_rc store_local_stmt(store_local *l, store_local_conn *c,
                          const char *sql, sqlite3_stmt **out, char *err);

/* Steps s to its end, resets it and clears its bindings; returns
** SQLITE_OK or the error. */
int store_local_run(sqlite3_stmt *s);

/* Runs the statement of c for sql (no rows, e.g. BEGIN) to its end;
** failures as store_local_sqlerr with `what`. */
store_rc store_local_exec(store_local *l, store_local_conn *c,
                          const char *sql, const char *what, char *err);

/* As store_local_exec, with ?1 bound to text (NULL: nothing bound); the
** rows it changed are then sqlite3_changes(c->db). */
store_rc store_local_exec_text(store_local *l, store_local_conn *c,
                               const char *sql, const char *text,
                               const char *what, char *err);

/* Finalizes every statement of c (c->db stays open). */
void store_local_conn_clear(store_local_conn *c);

/* Takes a read connection from the pool, or opens one.  Give it back with
** store_local_reader_put. */
store_rc store_local_reader_get(store_local *l, store_local_conn **out,
                                char *err);
/* Returns c (may be NULL) to the pool with every statement reset (no read
** transaction left open), or closes it when the pool is full. */
void store_local_reader_put(store_local *l, store_local_conn *c);
/* Closes every pooled read connection. */
void store_local_pool_free(store_local *l);

/* ---- local_writer.c: the group-commit writer ----------------------------- */

/* A write, run by the writer thread inside its batch's transaction, in a
** savepoint of its own, on c (the write connection).  Returns STORE_OK and
** the rows it changed in *changes (0: queries see no change), or a failure
** with its reason in err, which rolls back this request alone. */
typedef store_rc (*store_local_write_fn)(store_local *l, store_local_conn *c,
                                         void *arg, int64_t *changes,
                                         char *err);

enum {
  STORE_LOCAL_W_INGEST = 1,      /* counts as an ingest in the statistics */
  STORE_LOCAL_W_AFTER_COMMIT = 2 /* runs after the batch's commit, outside
                                    any transaction, whatever its outcome */
};

/* Queues fn(arg) for the writer and waits until it has run and its batch
** committed.  STORE_OK only once the commit made it durable (synchronous
** = FULL); else fn's failure or the commit's.  *changes (may be NULL) is
** set on success. */
store_rc store_local_write(store_local *l, store_local_write_fn fn, void *arg,
                           unsigned flags, int64_t *changes, char *err);

/* Starts the writer thread on db, a connection from store_local_connect
** that the writer owns from now on (it closes it, also on failure). */
store_rc store_local_writer_start(store_local *l, sqlite3 *db, char *err);
/* Runs what is queued, stops the thread, closes the write connection. */
void store_local_writer_stop(store_local *l);

/* ---- local_ckpt.c -------------------------------------------------------- */

/* Starts the checkpoint thread on a connection of its own.  STORE_IO or
** STORE_NOMEM on failure. */
store_rc store_local_ckpt_new(store_local *l, store_local_ckpt **out,
                              char *err);
/* Stops the thread (after its pass, if one runs) and closes its connection. */
void store_local_ckpt_free(store_local_ckpt *c);
/* 1 when no pass runs or is asked for.  *passes: passes finished so far;
** *copied: the WAL frames that were copied back when the last one ended. */
int store_local_ckpt_idle(store_local_ckpt *c, uint64_t *passes,
                          int *copied);
/* Asks for a PASSIVE checkpoint (a pass until little is left to copy);
** returns at once. */
void store_local_ckpt_ask(store_local_ckpt *c);

/* ---- local_vfs.c --------------------------------------------------------- */

/* Registers a VFS over SQLite's default one that gathers the writes to a
** WAL file into one system call per commit (see local_vfs.c), under a name
** of its own.  The connections using it must run with synchronous=FULL.
** STORE_NOMEM or STORE_IO on failure. */
store_rc store_local_vfs_new(store_local_vfs **out, char *err);
/* The name to pass to sqlite3_open_v2. */
const char *store_local_vfs_name(const store_local_vfs *v);
/* Unregisters and frees v, once every connection using it is closed. */
void store_local_vfs_free(store_local_vfs *v);
/* The writer's transaction ended without a commit (rolled back): write-outs
** that failed in it are forgotten, so the next commit's xSync does not
** report them (their frames were abandoned with it).  Accepts NULL. */
void store_local_vfs_abandon(store_local_vfs *v);

/* ---- the features' schema pieces (local.c runs them in order) ------------ */

/* Version 1: profiles and blobs (profiles.c); services, series and the
** triggers keeping them (services.c).  Version 2: hourly rollups
** (rollups.c). */
extern const char store_local_profiles_v1[];
extern const char store_local_services_v1[];
extern const char store_local_rollups_v2[];
/* Version 3: blobs_removed (profiles.c) and series_removed (services.c)
** replace profiles_removed; rollups by filter at three levels. */
extern const char store_local_profiles_v3[];
extern const char store_local_services_v3[];
extern const char store_local_rollups_v3[];
/* Version 4: profiles.digest and the index profiles_same (profiles.c); the
** migration computes the digest of every stored profile with the SQL
** function profile_digest(blob) that every connection defines. */
extern const char store_local_profiles_v4[];
/* Version 5: the index profiles_by_labels (profiles.c) and the table
** label_pairs with its triggers on series (services.c). */
extern const char store_local_profiles_v5[];
extern const char store_local_services_v5[];

/* ---- profiles.c ------------------------------------------------------------ */

store_rc store_local_ingest(void *impl, const char *service, meta_type type,
                            const char *labels, int64_t created_at_hint,
                            const void *data, size_t len, store_meta *out,
                            char *err);
store_rc store_local_find(void *impl, const store_query *q,
                          store_meta_list *out, char *err);
store_rc store_local_get(void *impl, const char *id, store_meta *meta,
                         void **data, size_t *len, char *err);
store_rc store_local_stat(void *impl, const char *id, store_meta *meta,
                          char *err);
store_rc store_local_del(void *impl, const char *id, char *err);

/* How the profiles of a query are read, each plan a WHERE clause over
** profiles p (what the caller SELECTs from it, ORDER BY and LIMIT ?6
** follow) with ?1 service, ?2 type, ?3..?4 the time range, ?5 the label
** filter ('' for none), ?7 its rarest pair (store_local_rarest_pair):
**   0 by time: a range of profiles_by_time, each row's set checked
**     against those holding ?7 (a list built once); for no filter, and
**     for filters that many label sets match;
**   1 by sets: the sets holding ?7 that ?5 matches, each a range of
**     profiles_by_labels, then sorted; for filters that few sets match
**     (a pod's), whose cost is then that of their rows, not the range's;
**   2 by one set: a range of profiles_by_labels, in order already; for
**     store_query.exact (a FUSE label directory). */
#define STORE_LOCAL_PLANS 3
#define STORE_LOCAL_BY_TIME                                                  \
  " FROM profiles p INDEXED BY profiles_by_time"                             \
  " WHERE p.service = ?1 AND p.type = ?2 AND p.created_at BETWEEN ?3 AND ?4" \
  " AND (?5 = '' OR p.labels IN (SELECT s.labels FROM label_pairs s"         \
  " WHERE s.service = ?1 AND s.type = ?2 AND s.pair = ?7"                    \
  " AND labels_match(?5, s.labels)))"
#define STORE_LOCAL_BY_SETS                                                  \
  " FROM label_pairs s CROSS JOIN profiles p INDEXED BY profiles_by_labels"  \
  " WHERE s.service = ?1 AND s.type = ?2 AND s.pair = ?7"                    \
  " AND labels_match(?5, s.labels) AND p.service = ?1 AND p.type = ?2"       \
  " AND p.labels = s.labels AND p.created_at BETWEEN ?3 AND ?4"
#define STORE_LOCAL_BY_SET                                                   \
  " FROM profiles p INDEXED BY profiles_by_labels"                           \
  " WHERE p.service = ?1 AND p.type = ?2 AND p.labels = ?5"                  \
  " AND p.created_at BETWEEN ?3 AND ?4"

/* The statement of c for the plan of q among sql[] (one per plan, as
** above), bound.  Fails as store_local_stmt, or reading label_pairs. */
store_rc store_local_query_stmt(store_local *l, store_local_conn *c,
                                const store_query *q,
                                const char *const sql[STORE_LOCAL_PLANS],
                                sqlite3_stmt **out, char *err);

/* Looks id up with the statement for sql (?1: the id) and leaves it on the
** row.  STORE_NOTFOUND when there is none. */
store_rc store_local_lookup(store_local *l, store_local_conn *c,
                            const char *sql, const char *id,
                            sqlite3_stmt **out, char *err);

/* A 64-bit checksum of len bytes at data: profiles.digest.  Never fails. */
int64_t store_local_digest(const void *data, size_t len);

/* SQL text shared with merge.c: the metadata of one profile by id. */
extern const char store_local_sql_stat[];

/* ---- services.c ------------------------------------------------------------ */

store_rc store_local_add_service(void *impl, const char *service, char *err);
store_rc store_local_remove_service(void *impl, const char *service,
                                    char *err);
store_rc store_local_services(void *impl, char ***names, size_t *n,
                              char *err);
store_rc store_local_label_sets(void *impl, const char *service,
                                meta_type type, char ***sets, size_t *n,
                                char *err);
store_rc store_local_stats(void *impl, store_stats *out);
store_rc store_local_has_labels(void *impl, const char *service,
                                meta_type type, const char *labels, int exact,
                                char *err);
store_rc store_local_label_names(void *impl, const char *service,
                                 meta_type type, const char *key,
                                 int64_t from, int64_t to, char ***out,
                                 size_t *n, char *err);

/* A filter matching at most this many label sets reads them one by one
** (profiles_by_labels), one matching more reads its time range. */
#define STORE_LOCAL_FEW_SETS 64

/* One pair of a canonical filter: len bytes at text (not NUL-terminated),
** held by sets label sets (counted up to STORE_LOCAL_FEW_SETS + 1). */
typedef struct store_local_pair {
  const char *text;
  int len;
  int64_t sets;
} store_local_pair;

/* The pair of the non-empty canonical filter that the fewest label sets
** of service/type hold (every set the filter matches holds it): one
** bounded count per pair of the filter.  *out points into filter. */
store_rc store_local_rarest_pair(store_local *l, store_local_conn *c,
                                 const char *service, meta_type type,
                                 const char *filter, store_local_pair *out,
                                 char *err);
/* What service/type holds: count, first and last created_at (0s if none). */
store_rc store_local_span(void *impl, const char *service, meta_type type,
                          int64_t *count, int64_t *first, int64_t *last,
                          char *err);

/* ---- merge.c --------------------------------------------------------------- */

store_rc store_local_merge(void *impl, const store_query *q, void **out,
                           size_t *len, size_t *count, char *err);
store_rc store_local_merge_ids(void *impl, const char *const *ids, size_t n,
                               void **out, size_t *len, char *err);

/* What store_local_merge_plan merges: the profiles of service and type
** in [from, to] matching filter ("" for all), with the rollups of levels
** up to top standing in (-1: none). */
typedef struct store_local_plan_query {
  const char *service;
  meta_type type;
  const char *filter;
  int64_t from, to;
  int top;
} store_local_plan_query;

/* Pushes q's rollups and profiles into p in time order, as the shared
** plan (rollup.h) picks them, and drains p; *count gets the number of
** profiles.  c must be inside a read transaction (one snapshot).  Fails
** as store_mergepipe_push or with STORE_IO. */
store_rc store_local_merge_plan(store_local *l, store_local_conn *c,
                                const store_local_plan_query *q,
                                store_mergepipe *p, size_t *count,
                                char *err);

/* ---- rollups.c ------------------------------------------------------------- */

/* Starts / stops the thread that builds rollups of complete hours. */
store_rc store_local_rollup_start(store_local *l, char *err);
void store_local_rollup_stop(store_local *l);

/* Builds now every due rollup (the op behind store_maintain). */
store_rc store_local_maintain(void *impl, size_t *built, char *err);

/* ---- retention.c ----------------------------------------------------------- */

store_rc store_local_retain(void *impl, int64_t cutoff, size_t *deleted,
                            char *err);

#endif /* PROFEFS_STORE_LOCAL_H */
