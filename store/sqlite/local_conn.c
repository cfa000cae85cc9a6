/*
** local_conn.c — connections of the local store: opening one with the
** pragmas and SQL functions every connection needs, mapping SQLite's
** errors, each connection's cache of prepared statements, and the pool of
** read connections.
**
** WAL mode lets readers run beside the writer, but a SQLite connection
** serves one thread at a time; so each query borrows a connection (with its
** prepared statements) from the pool, or opens one when all are busy, and
** returns it afterwards.  The pool keeps at most POOL_MAX idle connections.
**
** Statements are cached per connection under the address of their SQL
** text, so that each feature file keeps its SQL beside the code using it
** and still prepares it once per connection.
*/
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

#define POOL_MAX 16

struct store_local_stmt {
  const char *sql; /* the key: a static string */
  sqlite3_stmt *st;
};

store_rc store_local_sqlerr(store_local *l, sqlite3 *db, int rc, char *err,
                            const char *what) {
  int prim = rc & 0xff;
  int sys = prim == SQLITE_IOERR && db ? sqlite3_system_errno(db) : 0;
  if (prim == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT)
    return store_seterr(err, STORE_NOSPACE,
                        "%s: no space left on device (data directory %s)",
                        what, l->dir);
  if (prim == SQLITE_NOMEM)
    return store_seterr(err, STORE_NOMEM, "%s: out of memory", what);
  if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
    return store_seterr(err, STORE_IO,
                        "%s: database %s is locked by another process", what,
                        l->path);
  return store_seterr(err, STORE_IO, "%s: %s (%s)", what,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), l->path);
}

/* SQL labels_match(filter, labels): meta_labels_match on canonical strings,
** so that non-matching rows are skipped before their blob is touched. */
static void sql_labels_match(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv) {
  (void)argc; /* only read by the assert */
  assert(argc == 2);
  const char *filter = (const char *)sqlite3_value_text(argv[0]);
  const char *labels = (const char *)sqlite3_value_text(argv[1]);
  sqlite3_result_int(ctx, meta_labels_match(filter, labels ? labels : ""));
}

/* SQL profile_digest(blob): store_local_digest, for the migration to
** version 4 that fills profiles.digest of the profiles stored before
** (defined on the writer's connection, the one that migrates). */
static void sql_profile_digest(sqlite3_context *ctx, int argc,
                               sqlite3_value **argv) {
  (void)argc; /* only read by the assert */
  assert(argc == 1);
  const void *data = sqlite3_value_blob(argv[0]);
  int len = sqlite3_value_bytes(argv[0]);
  sqlite3_result_int64(ctx, store_local_digest(data, (size_t)len));
}

store_rc store_local_connect(store_local *l, int writer, sqlite3 **out,
                             char *err) {
  sqlite3 *db = NULL;
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= l->read_only ? SQLITE_OPEN_READONLY
                        : SQLITE_OPEN_READWRITE | (writer ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(l->path, &db, flags,
                           writer && l->vfs ? store_local_vfs_name(l->vfs)
                                            : NULL);
  if (rc != SQLITE_OK) {
    store_rc r = store_seterr(err, STORE_IO, "cannot open %s: %s", l->path,
                              db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return r;
  }
  sqlite3_busy_timeout(db, STORE_LOCAL_BUSY_MS);
  const char *pragmas = writer ? "PRAGMA synchronous=FULL;"
                                 "PRAGMA journal_size_limit=67108864;"
                                 "PRAGMA temp_store=MEMORY;"
                               : "PRAGMA query_only=1;"
                                 "PRAGMA temp_store=MEMORY;";
  rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
  if ((rc & 0xff) == SQLITE_NOTADB) {
    sqlite3_close(db);
    return store_seterr(err, STORE_IO, "%s is not a profefs store", l->path);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function(db, "labels_match", 2,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                     SQLITE_INNOCUOUS,
                                 NULL, sql_labels_match, NULL, NULL);
  if (rc == SQLITE_OK && writer) /* only the writer migrates */
    rc = sqlite3_create_function(db, "profile_digest", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                     SQLITE_INNOCUOUS,
                                 NULL, sql_profile_digest, NULL, NULL);
  if (rc != SQLITE_OK) {
    store_rc r = store_local_sqlerr(l, db, rc, err, "cannot set up database");
    sqlite3_close(db);
    return r;
  }
  *out = db;
  return STORE_OK;
}

/* ---- statements ------------------------------------------------------------ */

store_rc store_local_stmt(store_local *l, store_local_conn *c,
                          const char *sql, sqlite3_stmt **out, char *err) {
  for (size_t i = 0; i < c->nst; i++)
    if (c->st[i].sql == sql) {
      *out = c->st[i].st;
      return STORE_OK;
    }
  if (c->nst == c->capst) {
    size_t ncap = c->capst ? 2 * c->capst : 16;
    struct store_local_stmt *v = realloc(c->st, ncap * sizeof *v);
    if (v == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
    c->st = v;
    c->capst = ncap;
  }
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                              NULL);
  if (rc != SQLITE_OK)
    return store_local_sqlerr(l, c->db, rc, err, "cannot prepare query");
  c->st[c->nst++] = (struct store_local_stmt){sql, st};
  *out = st;
  return STORE_OK;
}

int store_local_run(sqlite3_stmt *s) {
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {}
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

store_rc store_local_exec(store_local *l, store_local_conn *c,
                          const char *sql, const char *what, char *err) {
  return store_local_exec_text(l, c, sql, NULL, what, err);
}

store_rc store_local_exec_text(store_local *l, store_local_conn *c,
                               const char *sql, const char *text,
                               const char *what, char *err) {
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_stmt(l, c, sql, &s, err);
  if (rc != STORE_OK) return rc;
  if (text != NULL) sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
  int src = store_local_run(s);
  if (src != SQLITE_OK) return store_local_sqlerr(l, c->db, src, err, what);
  return STORE_OK;
}

void store_local_conn_clear(store_local_conn *c) {
  for (size_t i = 0; i < c->nst; i++) sqlite3_finalize(c->st[i].st);
  free(c->st);
  c->st = NULL;
  c->nst = c->capst = 0;
}

/* ---- the pool of read connections --------------------------------------------- */

static void reader_free(store_local_conn *c) {
  if (c == NULL) return;
  store_local_conn_clear(c);
  sqlite3_close(c->db);
  free(c);
}

store_rc store_local_reader_get(store_local *l, store_local_conn **out,
                                char *err) {
  pthread_mutex_lock(&l->pool_mu);
  store_local_conn *c = l->pool;
  if (c != NULL) {
    l->pool = c->next;
    l->npool--;
  }
  pthread_mutex_unlock(&l->pool_mu);
  if (c == NULL) {
    c = calloc(1, sizeof *c);
    if (c == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
    store_rc rc = store_local_connect(l, 0, &c->db, err);
    if (rc != STORE_OK) {
      free(c);
      return rc;
    }
  }
  *out = c;
  return STORE_OK;
}

void store_local_reader_put(store_local *l, store_local_conn *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->nst; i++) {
    sqlite3_reset(c->st[i].st);
    sqlite3_clear_bindings(c->st[i].st);
  }
  if (!sqlite3_get_autocommit(c->db))
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  pthread_mutex_lock(&l->pool_mu);
  if (l->npool < POOL_MAX) {
    c->next = l->pool;
    l->pool = c;
    l->npool++;
    c = NULL;
  }
  pthread_mutex_unlock(&l->pool_mu);
  reader_free(c);
}

void store_local_pool_free(store_local *l) {
  store_local_conn *c = l->pool, *next;
  for (; c != NULL; c = next) {
    next = c->next;
    reader_free(c);
  }
  l->pool = NULL;
  l->npool = 0;
}
