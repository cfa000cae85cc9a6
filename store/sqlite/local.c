/*
** local.c — the local store backend: a SQLite database in WAL mode in one
** data directory.  This file opens the directory and the database, creates
** or checks the schema, makes connections, maps SQLite errors, and holds the
** op table; queries live in local_read.c, writes in local_write.c.
**
** Schema (version 2, recognised by application_id; older ones are
** upgraded in place by migrate()):
**   profiles  one row of metadata per profile; the index on
**             (service, type, created_at, id) makes a time-range query on
**             one service and type an index range scan already in the
**             order store_find returns;
**   blobs     the profile bytes, keyed by the rowid of their profiles row,
**             so that scans of metadata never page through them;
**   services  every service, also those created empty (FUSE mkdir);
**   series    one row per distinct (service, type, labels) with its count
**             and bytes: label directories and statistics read this small
**             table instead of scanning profiles;
**   rollups   the merge of the profiles of one hour of one series, which
**             merges of long ranges use instead of those profiles;
**   rollup_dirty  the (series, hour) pairs whose rollup is missing or stale,
**             each with a sequence number bumped on every change.
** Triggers keep services, series, blobs and the rollup tables consistent
** with profiles whatever statement inserts or deletes, so no write path can
** forget one of them: any change to an hour of a series deletes its rollup
** in the same transaction.
** auto_vacuum=INCREMENTAL is set when the file is created (it cannot be
** changed later) so that retention can give space back to the system.
*/
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

#define APPLICATION_ID 0x70726f66 /* "prof" */
#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 10000

/* migrations[v] takes the schema from version v to v + 1; a new file runs
** them all. */
static const char schema_v1[] =
  "CREATE TABLE services(name TEXT PRIMARY KEY) WITHOUT ROWID;"
  "CREATE TABLE profiles("
  "  rowid INTEGER PRIMARY KEY,"
  "  id TEXT NOT NULL UNIQUE,"
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  created_at INTEGER NOT NULL,"
  "  size INTEGER NOT NULL);"
  "CREATE INDEX profiles_by_time ON profiles(service, type, created_at, id);"
  "CREATE TABLE blobs(rowid INTEGER PRIMARY KEY, data BLOB NOT NULL);"
  "CREATE TABLE series("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  profiles INTEGER NOT NULL,"
  "  bytes INTEGER NOT NULL,"
  "  PRIMARY KEY(service, type, labels)) WITHOUT ROWID;"
  "CREATE TRIGGER profiles_added AFTER INSERT ON profiles BEGIN"
  "  INSERT OR IGNORE INTO services(name) VALUES(new.service);"
  "  INSERT INTO series VALUES(new.service, new.type, new.labels, 1, new.size)"
  "    ON CONFLICT DO UPDATE SET profiles = profiles + 1,"
  "                              bytes = bytes + excluded.bytes;"
  "END;"
  "CREATE TRIGGER profiles_removed AFTER DELETE ON profiles BEGIN"
  "  DELETE FROM blobs WHERE rowid = old.rowid;"
  "  UPDATE series SET profiles = profiles - 1, bytes = bytes - old.size"
  "    WHERE service = old.service AND type = old.type"
  "      AND labels = old.labels;"
  "  DELETE FROM series WHERE service = old.service AND type = old.type"
  "    AND labels = old.labels AND profiles = 0;"
  "END;";

static const char schema_v2[] =
  /* Rollups (store/rollup.c).  Hours start at 1 so that integer division
  ** is floor division; traces (type 7) are never merged. */
  "CREATE TABLE rollups("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  hour INTEGER NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  profiles INTEGER NOT NULL,"
  "  data BLOB NOT NULL,"
  "  PRIMARY KEY(service, type, hour, labels));"
  "CREATE TABLE rollup_dirty("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  hour INTEGER NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  PRIMARY KEY(service, type, hour, labels)) WITHOUT ROWID;"
  "CREATE TRIGGER rollup_added AFTER INSERT ON profiles"
  "  WHEN new.type <> 7 AND new.created_at >= 3600 BEGIN"
  "  DELETE FROM rollups WHERE service = new.service AND type = new.type"
  "    AND hour = new.created_at / 3600 AND labels = new.labels;"
  "  INSERT INTO rollup_dirty"
  "    VALUES(new.service, new.type, new.created_at / 3600, new.labels, 1)"
  "    ON CONFLICT DO UPDATE SET seq = seq + 1;"
  "END;"
  "CREATE TRIGGER rollup_removed AFTER DELETE ON profiles"
  "  WHEN old.type <> 7 AND old.created_at >= 3600 BEGIN"
  "  DELETE FROM rollups WHERE service = old.service AND type = old.type"
  "    AND hour = old.created_at / 3600 AND labels = old.labels;"
  "  INSERT INTO rollup_dirty"
  "    VALUES(old.service, old.type, old.created_at / 3600, old.labels, 1)"
  "    ON CONFLICT DO UPDATE SET seq = seq + 1;"
  "END;"
  /* Hours stored before rollups existed are due as well. */
  "INSERT OR IGNORE INTO rollup_dirty"
  "  SELECT service, type, created_at / 3600, labels, 1 FROM profiles"
  "  WHERE type <> 7 AND created_at >= 3600"
  "  GROUP BY service, type, created_at / 3600, labels;";

static const char *const migrations[SCHEMA_VERSION] = {schema_v1, schema_v2};

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
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
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
  if (rc != SQLITE_OK) {
    store_rc r = store_local_sqlerr(l, db, rc, err, "cannot set up database");
    sqlite3_close(db);
    return r;
  }
  *out = db;
  return STORE_OK;
}

/* ---- schema ---------------------------------------------------------------- */

/* Runs a one-row integer query. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* What the file at l->path holds. */
enum db_kind { DB_OURS, DB_OLDER, DB_EMPTY, DB_FOREIGN, DB_NEWER };

static store_rc db_kind_of(store_local *l, sqlite3 *db, enum db_kind *kind,
                           char *err) {
  int64_t app = 0, version = 0, objects = 0;
  int rc = query_int(db, "PRAGMA application_id", &app);
  if (rc == SQLITE_OK) rc = query_int(db, "PRAGMA user_version", &version);
  if (rc == SQLITE_OK)
    rc = query_int(db, "SELECT count(*) FROM sqlite_schema", &objects);
  if ((rc & 0xff) == SQLITE_NOTADB) {
    *kind = DB_FOREIGN;
    return STORE_OK;
  }
  if (rc != SQLITE_OK)
    return store_local_sqlerr(l, db, rc, err, "cannot read database");
  if (app == APPLICATION_ID)
    *kind = version > SCHEMA_VERSION   ? DB_NEWER
            : version < SCHEMA_VERSION ? DB_OLDER
                                       : DB_OURS;
  else
    *kind = app == 0 && objects == 0 ? DB_EMPTY : DB_FOREIGN;
  return STORE_OK;
}

/* Brings the schema to SCHEMA_VERSION in one transaction (creating it in an
** empty file).  The version is read again under the write lock: another
** process may have done the work meanwhile. */
static store_rc migrate(store_local *l, sqlite3 *db, char *err) {
  int64_t version = 0;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = query_int(db, "PRAGMA user_version", &version);
  for (int64_t v = version; rc == SQLITE_OK && v < SCHEMA_VERSION; v++)
    rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
  if (rc == SQLITE_OK) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "PRAGMA application_id=%d;PRAGMA user_version=%d;COMMIT",
             APPLICATION_ID, SCHEMA_VERSION);
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  }
  if (rc != SQLITE_OK) {
    store_rc r = store_local_sqlerr(l, db, rc, err, "cannot set up the schema");
    if (!sqlite3_get_autocommit(db))
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return r;
  }
  return STORE_OK;
}

/* Checks that db is ours, creating or upgrading the schema. */
static store_rc prepare_db(store_local *l, sqlite3 *db, char *err) {
  enum db_kind kind;
  store_rc r = db_kind_of(l, db, &kind, err);
  if (r != STORE_OK) return r;
  if (kind == DB_FOREIGN || (kind == DB_EMPTY && l->read_only))
    return store_seterr(err, STORE_IO, "%s is not a profefs store", l->path);
  if (kind == DB_NEWER)
    return store_seterr(err, STORE_IO,
                        "%s was made by a newer profefs (schema > %d)",
                        l->path, SCHEMA_VERSION);
  if (kind == DB_OLDER && l->read_only)
    return store_seterr(err, STORE_IO,
                        "%s has an older schema: open it read-write once to "
                        "upgrade it", l->path);
  if (l->read_only) return STORE_OK;
  /* auto_vacuum only takes on an empty file, before anything (even the
  ** switch to WAL) writes the header; WAL is persistent once set. */
  int rc = kind == DB_EMPTY ? sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL",
                                           NULL, NULL, NULL)
                            : SQLITE_OK;
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return store_local_sqlerr(l, db, rc, err, "cannot enable WAL mode");
  return kind == DB_OURS ? STORE_OK : migrate(l, db, err);
}

/* ---- the data directory ------------------------------------------------------ */

/* Makes the name of a directory just created durable: fsync of its parent.
** (SQLite syncs the data directory when it creates the WAL, but nothing
** syncs the directory above: after a power cut the data directory, with
** every acknowledged profile in it, would be gone.) */
static store_rc sync_parent(const char *dir, char *err) {
  char *copy = strdup(dir);
  int fd = -1;
  store_rc rc = STORE_OK;

  if (copy == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
      fsync(fd) != 0)
    rc = store_seterr(err, STORE_IO, "cannot sync the directory above %s: %s",
                      dir, strerror(errno));
  if (fd >= 0) close(fd);
  free(copy);
  return rc;
}

static store_rc prepare_dir(const char *dir, int read_only, char *err) {
  struct stat sb;
  int made = !read_only && mkdir(dir, 0755) == 0;
  if (made) {
    store_rc rc = sync_parent(dir, err);
    if (rc != STORE_OK) return rc;
  } else if (!read_only && errno != EEXIST) {
    if (errno == ENOENT)
      return store_seterr(err, STORE_IO,
                          "cannot create data directory %s: its parent "
                          "directory does not exist", dir);
    return store_seterr(err, STORE_IO, "cannot create data directory %s: %s",
                        dir, strerror(errno));
  }
  if (stat(dir, &sb) != 0)
    return store_seterr(err, STORE_IO, "cannot use data directory %s: %s", dir,
                        strerror(errno));
  if (!S_ISDIR(sb.st_mode))
    return store_seterr(err, STORE_IO, "data directory %s is not a directory",
                        dir);
  if (!read_only && access(dir, W_OK) != 0)
    return store_seterr(err, STORE_IO, "data directory %s is not writable: %s",
                        dir, strerror(errno));
  return STORE_OK;
}

/* ---- open / close -------------------------------------------------------------- */

static void local_free(store_local *l) {
  if (l == NULL) return;
  /* The rollup thread uses readers and the writer; then readers, so that
  ** the writer's connection is the last one: its close checkpoints the WAL
  ** into the database file and removes it. */
  store_local_rollup_stop(l);
  store_local_pool_free(l);
  store_local_writer_stop(l);
  store_local_vfs_free(l->vfs);
  store_local_unlock(l->lock_fd);
  pthread_mutex_destroy(&l->pool_mu);
  free(l->dir);
  free(l->path);
  free(l);
}

static void local_close(void *impl) { local_free(impl); }

static uint64_t local_generation(void *impl) {
  store_local *l = impl;
  return atomic_load(&l->generation);
}

static const store_backend_ops local_ops = {
  .name = "local",
  .close = local_close,
  .ingest = store_local_ingest,
  .find = store_local_find,
  .get = store_local_get,
  .stat = store_local_stat,
  .merge = store_local_merge,
  .merge_ids = store_local_merge_ids,
  .services = store_local_services,
  .add_service = store_local_add_service,
  .label_sets = store_local_label_sets,
  .del = store_local_del,
  .retain = store_local_retain,
  .generation = local_generation,
  .stats = store_local_stats,
  .maintain = store_local_maintain,
};

store_rc store_local_open(const char *dir, const store_options *opts,
                          const store_backend_ops **ops, void **impl,
                          char *err) {
  assert(dir != NULL && ops != NULL && impl != NULL);
  int read_only = opts != NULL && opts->read_only;
  sqlite3 *db = NULL;
  store_rc r = prepare_dir(dir, read_only, err);
  if (r != STORE_OK) return r;

  store_local *l = calloc(1, sizeof *l);
  if (l == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_init(&l->pool_mu, NULL);
  l->lock_fd = -1;
  l->read_only = read_only;
  l->max_inflate = opts && opts->max_inflate ? opts->max_inflate : 256u << 20;
  l->budget = opts ? opts->budget : NULL;
  l->dir = strdup(dir);
  l->path = malloc(strlen(dir) + sizeof "/" STORE_LOCAL_DBNAME);
  if (l->dir == NULL || l->path == NULL) {
    r = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  sprintf(l->path, "%s/%s", dir, STORE_LOCAL_DBNAME);
  if (read_only && access(l->path, R_OK) != 0) {
    r = store_seterr(err, STORE_IO, "no profefs store in %s: %s", dir,
                     strerror(errno));
    goto out;
  }
  if ((r = store_local_lock(dir, read_only, &l->lock_fd, err)) != STORE_OK)
    goto out;

  /* The writer's connection creates and checks the file; a read-only store
  ** checks it on a connection of its own. */
  if ((!read_only && (r = store_local_vfs_new(&l->vfs, err)) != STORE_OK) ||
      (r = store_local_connect(l, !read_only, &db, err)) != STORE_OK ||
      (r = prepare_db(l, db, err)) != STORE_OK)
    goto out;
  if (!read_only) {
    r = store_local_writer_start(l, db, err);
    db = NULL; /* owned by the writer now, even on failure */
    if (r == STORE_OK) r = store_local_rollup_start(l, err);
  }
out:
  sqlite3_close(db);
  if (r != STORE_OK) {
    local_free(l);
    return r;
  }
  *ops = &local_ops;
  *impl = l;
  return STORE_OK;
}
