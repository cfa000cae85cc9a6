/*
** retention.c — deleting the profiles older than a cutoff, and giving the
** space they held back to the file system.
**
** Deletes go through the profiles table, so the triggers of every feature
** (series counts, blobs, rollup invalidation) run in the same transaction.
** They come in chunks of RETAIN_CHUNK rows, each its own commit, so that
** ingests keep flowing while a large backlog is being deleted.
*/
#include "local.h"

#define RETAIN_CHUNK 2000

/* Walks the time index per (service, type) instead of scanning. */
static const char sql_retain[] =
  "DELETE FROM profiles WHERE rowid IN ("
  " SELECT p.rowid FROM (SELECT DISTINCT service, type FROM series) s"
  " JOIN profiles p ON p.service = s.service AND p.type = s.type"
  " WHERE p.created_at < ?1 LIMIT ?2)";

static store_rc write_retain(store_local *l, store_local_conn *c, void *arg,
                             int64_t *changes, char *err) {
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_stmt(l, c, sql_retain, &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_int64(s, 1, *(const int64_t *)arg);
  sqlite3_bind_int(s, 2, RETAIN_CHUNK);
  int src = store_local_run(s);
  if (src != SQLITE_OK)
    return store_local_sqlerr(l, c->db, src, err,
                              "cannot delete old profiles");
  *changes = sqlite3_changes(c->db);
  return STORE_OK;
}

/* After a commit, outside any transaction: incremental vacuum moves used
** pages down into the holes and truncates the file, in the WAL; the
** checkpoint then carries the shorter file into the database file and
** empties the WAL, which the moves have made large.  It runs without a
** busy timeout: waiting for a reader (a long merge) would hold up the
** writer thread, and every ingest behind it, for up to the timeout.  A
** checkpoint that finds readers (or the checkpoint thread) busy copies
** what it can and is no error: the rest is copied back later (the
** writer's wal_upkeep). */
static store_rc write_vacuum(store_local *l, store_local_conn *c, void *arg,
                             int64_t *changes, char *err) {
  (void)arg;
  (void)changes;
  int rc = sqlite3_exec(c->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(c->db, 0);
    rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                   NULL, NULL);
    sqlite3_busy_timeout(c->db, STORE_LOCAL_BUSY_MS);
    if ((rc & 0xff) == SQLITE_BUSY) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK)
    return store_local_sqlerr(l, c->db, rc, err, "cannot reclaim space");
  return STORE_OK;
}

store_rc store_local_retain(void *impl, int64_t cutoff, size_t *deleted,
                            char *err) {
  size_t total = 0;
  /* In chunks, each its own commit, until a chunk comes back short. */
  for (;;) {
    int64_t changes = 0;
    store_rc rc = store_local_write(impl, write_retain, &cutoff, 0, &changes,
                                    err);
    if (rc != STORE_OK) return rc;
    total += (size_t)changes;
    if (changes < RETAIN_CHUNK) break;
  }
  if (total > 0) {
    store_rc rc = store_local_write(impl, write_vacuum, NULL,
                                    STORE_LOCAL_W_AFTER_COMMIT, NULL, err);
    if (rc != STORE_OK) return rc;
  }
  if (deleted != NULL) *deleted = total;
  return STORE_OK;
}
