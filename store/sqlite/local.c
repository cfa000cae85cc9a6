/*
** local.c — the local store backend: a SQLite database in WAL mode in one
** data directory.  This file opens the directory and the database, creates
** or upgrades the schema and holds the op table; connections live in
** local_conn.c, the writer in local_writer.c, and each feature in a file
** of its own with its SQL, tables and triggers (local.h lists them).
**
** Schema (version 5, recognised by application_id; older ones are
** upgraded in place by migrate()), by owner:
**   profiles.c  profiles (one row of metadata per profile, indexed by
**               service, type, time and by label set, time) and blobs
**               (the bytes, kept apart so that scans of metadata never
**               page through them);
**   services.c  services (also those created empty), series (one row
**               per label set with its counts, for label directories and
**               statistics) and label_pairs (the label sets holding each
**               pair: the index of label filters), kept by triggers;
**   rollups.c   rollups (the merge of one slot of time of the profiles
**               matching one filter), rollup_data (their bytes) and
**               rollup_dirty (the slots whose rollups are missing or
**               stale), kept by triggers on profiles.
** Triggers keep the derived tables consistent with profiles whatever
** statement inserts or deletes, so no write path can forget one of them.
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
#include <time.h>
#include <unistd.h>

#include "dirlock.h"
#include "local.h"

#define APPLICATION_ID 0x70726f66 /* "prof" */
#define SCHEMA_VERSION 5

/* migrations[v] takes the schema from version v to v + 1, as the pieces
** that each feature file owns, run in order; a new file runs them all. */
static const char *const schema_v1[] = {store_local_profiles_v1,
                                        store_local_services_v1, NULL};
static const char *const schema_v2[] = {store_local_rollups_v2, NULL};
static const char *const schema_v3[] = {store_local_profiles_v3,
                                        store_local_services_v3,
                                        store_local_rollups_v3, NULL};
static const char *const schema_v4[] = {store_local_profiles_v4, NULL};
static const char *const schema_v5[] = {store_local_profiles_v5,
                                        store_local_services_v5, NULL};
static const char *const *const migrations[SCHEMA_VERSION] = {
  schema_v1, schema_v2, schema_v3, schema_v4, schema_v5};

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
  int64_t version = 0, t0 = 0;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = query_int(db, "PRAGMA user_version", &version);
  /* An upgrade may read every stored profile (version 4 does, about 4 s
  ** per GB): say so, rather than start in silence. */
  if (rc == SQLITE_OK && version > 0 && version < SCHEMA_VERSION) {
    t0 = (int64_t)time(NULL);
    fprintf(stderr, "store: upgrading %s from schema %d to %d...\n",
            l->path, (int)version, SCHEMA_VERSION);
  }
  for (int64_t v = version; rc == SQLITE_OK && v < SCHEMA_VERSION; v++)
    for (const char *const *p = migrations[v]; rc == SQLITE_OK && *p; p++)
      rc = sqlite3_exec(db, *p, NULL, NULL, NULL);
  if (rc == SQLITE_OK) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "PRAGMA application_id=%d;PRAGMA user_version=%d;COMMIT",
             APPLICATION_ID, SCHEMA_VERSION);
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK && t0 > 0)
      fprintf(stderr, "store: %s upgraded in %lld s\n", l->path,
              (long long)((int64_t)time(NULL) - t0));
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
  store_dirunlock(l->lock_fd);
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
  .remove_service = store_local_remove_service,
  .label_sets = store_local_label_sets,
  .del = store_local_del,
  .retain = store_local_retain,
  .generation = local_generation,
  .stats = store_local_stats,
  .maintain = store_local_maintain,
  .has_labels = store_local_has_labels,
  .label_names = store_local_label_names,
  .span = store_local_span,
};

/* SQLite's memory statistics take a global mutex around every allocation
** (about 2% of an ingest's CPU, and contended by the connections of a
** merge); nothing here reads them.  This must run before SQLite's first
** use in the process; once SQLite is initialised it is a harmless no-op. */
static void sqlite_config_once(void) {
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

store_rc store_local_open(const char *dir, const store_options *opts,
                          const store_backend_ops **ops, void **impl,
                          char *err) {
  static pthread_once_t configured = PTHREAD_ONCE_INIT;
  assert(dir != NULL && ops != NULL && impl != NULL);
  pthread_once(&configured, sqlite_config_once);
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
  if ((r = store_dirlock(dir, "data directory", read_only, &l->lock_fd, err)) != STORE_OK)
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
