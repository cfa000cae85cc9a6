/*
** local.h — private to the local (SQLite) backend: the state shared by
** local.c (opening, schema, connections), local_read.c (queries on a pool
** of read connections), local_write.c (the group-commit writer),
** local_ckpt.c (the checkpoint thread) and local_vfs.c (the writer's VFS).
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

#define STORE_LOCAL_DBNAME "profefs.db"

typedef struct store_local_reader store_local_reader;
typedef struct store_local_writer store_local_writer;
typedef struct store_local_rollup store_local_rollup;
typedef struct store_local_vfs store_local_vfs;
typedef struct store_local_ckpt store_local_ckpt;

/* Rollups cover whole hours of one series (service, type, labels): hour h
** holds the profiles with created_at in [h * 3600, h * 3600 + 3599]. */
#define STORE_LOCAL_HOUR 3600

typedef struct store_local {
  char *dir;                /* data directory, as given */
  char *path;               /* dir/profefs.db */
  size_t max_inflate;       /* for pprof_check / pprof_merge_new */
  budget *budget;           /* checking an ingest inflates within it */
  int read_only;
  int lock_fd;              /* holds the directory's lock (lock.c); -1 none */

  pthread_mutex_t pool_mu;  /* guards pool and npool */
  store_local_reader *pool; /* idle read connections */
  size_t npool;

  store_local_vfs *vfs;       /* the writer's VFS; NULL when read_only */
  store_local_writer *writer; /* NULL when read_only */
  store_local_rollup *rollup; /* background builder; NULL when read_only */

  _Atomic uint64_t generation;
  _Atomic int64_t ingests, commits;
} store_local;

/* Opens a connection on l->path with the pragmas every connection uses and
** the labels_match() SQL function.  writer: read-write with synchronous=FULL
** through l->vfs, else query-only.  STORE_IO with a reason on failure. */
store_rc store_local_connect(store_local *l, int writer, sqlite3 **out,
                             char *err);

/* Maps a failed SQLite call (rc, with db's message) to a store_rc and a
** reason starting with `what`.  SQLITE_FULL (or ENOSPC) is STORE_NOSPACE. */
store_rc store_local_sqlerr(store_local *l, sqlite3 *db, int rc, char *err,
                            const char *what);

/* ---- lock.c ---------------------------------------------------------------- */

/* Takes the exclusive lock of data directory dir for this open store; *fd
** holds it until store_local_unlock.  STORE_IO naming the holder's pid when
** another open store (in any process) has it.  A read-only open of a
** directory without a lock file takes none (*fd = -1). */
store_rc store_local_lock(const char *dir, int read_only, int *fd, char *err);
void store_local_unlock(int fd);

/* One (series, hour) whose rollup is missing or stale, as of seq. */
typedef struct store_local_hour {
  char *service, *labels;
  meta_type type;
  int64_t hour, seq;
} store_local_hour;

/* ---- local_write.c ------------------------------------------------------- */

/* Starts the writer thread on db, a connection from store_local_connect
** that the writer owns from now on (it closes it, also on failure). */
store_rc store_local_writer_start(store_local *l, sqlite3 *db, char *err);
/* Runs what is queued, stops the thread, closes the write connection. */
void store_local_writer_stop(store_local *l);

store_rc store_local_ingest(void *impl, const char *service, meta_type type,
                            const char *labels, int64_t created_at_hint,
                            const void *data, size_t len, store_meta *out,
                            char *err);
store_rc store_local_add_service(void *impl, const char *service, char *err);
store_rc store_local_del(void *impl, const char *id, char *err);
store_rc store_local_retain(void *impl, int64_t cutoff, size_t *deleted,
                            char *err);

/* Stores data (the merge of `profiles` profiles; NULL: nothing worth a
** rollup) as the rollup of h and clears h's dirty mark, but only if the
** mark still has h->seq: otherwise the hour changed since it was read and
** nothing is written.  *stored (may be NULL) tells whether a rollup was. */
store_rc store_local_put_rollup(store_local *l, const store_local_hour *h,
                                const void *data, size_t len,
                                int64_t profiles, int *stored, char *err);

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

/* ---- local_read.c -------------------------------------------------------- */

/* Closes every pooled read connection. */
void store_local_pool_free(store_local *l);

store_rc store_local_find(void *impl, const store_query *q,
                          store_meta_list *out, char *err);
store_rc store_local_get(void *impl, const char *id, store_meta *meta,
                         void **data, size_t *len, char *err);
store_rc store_local_stat(void *impl, const char *id, store_meta *meta,
                          char *err);
store_rc store_local_merge(void *impl, const store_query *q, void **out,
                           size_t *len, size_t *count, char *err);
store_rc store_local_merge_ids(void *impl, const char *const *ids, size_t n,
                               void **out, size_t *len, char *err);
store_rc store_local_services(void *impl, char ***names, size_t *n,
                              char *err);
store_rc store_local_label_sets(void *impl, const char *service,
                                meta_type type, char ***sets, size_t *n,
                                char *err);
store_rc store_local_stats(void *impl, store_stats *out);

/* The dirty (series, hour) pairs with hour < before (oldest first), in a
** malloc'd array to free with store_local_hours_free. */
store_rc store_local_dirty_hours(store_local *l, int64_t before,
                                 store_local_hour **out, size_t *n, char *err);
void store_local_hours_free(store_local_hour *v, size_t n);

/* Merges the profiles of h's series and hour, and sets h->seq to the dirty
** mark's value in the same snapshot (0 when the mark is gone).  *data is
** NULL (STORE_OK) when fewer than 2 profiles are left or they cannot be
** merged (a rollup would not help); else malloc'd, with *profiles. */
store_rc store_local_merge_hour(store_local *l, store_local_hour *h,
                                void **data, size_t *len, int64_t *profiles,
                                char *err);

/* ---- rollup.c ------------------------------------------------------------- */

/* Starts / stops the thread that builds rollups of complete hours. */
store_rc store_local_rollup_start(store_local *l, char *err);
void store_local_rollup_stop(store_local *l);

/* Builds now every due rollup (the op behind store_maintain). */
store_rc store_local_maintain(void *impl, size_t *built, char *err);

#endif /* PROFEFS_STORE_LOCAL_H */
