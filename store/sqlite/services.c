/*
** services.c — services and label sets of the local store, and the
** statistics read from the same small tables.
**
** Tables: services holds every service, also those created empty (FUSE
** mkdir); series holds one row per distinct (service, type, labels) with
** its count and bytes, so that label directories and statistics read this
** small table instead of scanning profiles.  Triggers on profiles keep both
** in step whatever statement inserts or deletes (in version 1 the delete
** trigger also deleted the blob; version 3 leaves that to profiles.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "local.h"

/* What a delete does to series, in version 1's trigger and version 3's. */
#define SERIES_REMOVED                                                     \
  "  UPDATE series SET profiles = profiles - 1, bytes = bytes - old.size"  \
  "    WHERE service = old.service AND type = old.type"                    \
  "      AND labels = old.labels;"                                         \
  "  DELETE FROM series WHERE service = old.service AND type = old.type"   \
  "    AND labels = old.labels AND profiles = 0;"

const char store_local_services_v1[] =
  "CREATE TABLE services(name TEXT PRIMARY KEY) WITHOUT ROWID;"
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
  SERIES_REMOVED
  "END;";

const char store_local_services_v3[] =
  "CREATE TRIGGER series_removed AFTER DELETE ON profiles BEGIN"
  SERIES_REMOVED
  "END;";

static const char sql_insert_service[] =
  "INSERT OR IGNORE INTO services(name) VALUES(?1)";
/* Only a service that holds no profile goes (FUSE rmdir). */
static const char sql_remove_service[] =
  "DELETE FROM services WHERE name = ?1"
  " AND NOT EXISTS (SELECT 1 FROM profiles WHERE service = ?1)";
static const char sql_has_service[] =
  "SELECT 1 FROM services WHERE name = ?1";
static const char sql_services[] = "SELECT name FROM services ORDER BY name";
/* The empty set is no label directory. */
static const char sql_label_sets[] =
  "SELECT labels FROM series WHERE service = ?1"
  " AND type = ?2 AND labels <> '' ORDER BY labels";
static const char sql_stats[] =
  "SELECT coalesce(sum(profiles), 0), coalesce(sum(bytes), 0) FROM series";

/* ---- writes ----------------------------------------------------------------------- */

static store_rc write_service(store_local *l, store_local_conn *c, void *arg,
                              int64_t *changes, char *err) {
  store_rc rc = store_local_exec_text(l, c, sql_insert_service, arg,
                                      "cannot create service", err);
  if (rc != STORE_OK) return rc;
  *changes = sqlite3_changes(c->db);
  return STORE_OK;
}

store_rc store_local_add_service(void *impl, const char *service, char *err) {
  return store_local_write(impl, write_service, (void *)service, 0, NULL, err);
}

static store_rc write_unservice(store_local *l, store_local_conn *c, void *arg,
                                int64_t *changes, char *err) {
  sqlite3_stmt *h = NULL;
  store_rc rc = store_local_exec_text(l, c, sql_remove_service, arg,
                                      "cannot remove service", err);
  int src;

  if (rc != STORE_OK) return rc;
  *changes = sqlite3_changes(c->db);
  if (*changes > 0) return STORE_OK;
  if ((rc = store_local_stmt(l, c, sql_has_service, &h, err)) != STORE_OK)
    return rc;
  sqlite3_bind_text(h, 1, arg, -1, SQLITE_STATIC);
  src = sqlite3_step(h);
  sqlite3_reset(h);
  sqlite3_clear_bindings(h);
  if (src == SQLITE_ROW)
    return store_seterr(err, STORE_INVALID, "service \"%s\" still holds profiles",
                        (const char *)arg);
  if (src != SQLITE_DONE)
    return store_local_sqlerr(l, c->db, src, err, "cannot remove service");
  return store_seterr(err, STORE_NOTFOUND, "no service \"%s\"",
                      (const char *)arg);
}

store_rc store_local_remove_service(void *impl, const char *service,
                                    char *err) {
  return store_local_write(impl, write_unservice, (void *)service, 0, NULL,
                           err);
}

/* ---- names ----------------------------------------------------------------------- */

/* Collects the text column 0 of every row of s (bound by the caller). */
static store_rc collect_names(store_local *l, store_local_conn *r,
                              sqlite3_stmt *s, char ***names, size_t *n,
                              char *err) {
  char **v = NULL;
  size_t k = 0, cap = 0;
  store_rc rc = STORE_OK;
  int src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    if (k == cap) {
      size_t ncap = cap ? 2 * cap : 16;
      char **nv = realloc(v, ncap * sizeof *nv);
      if (nv == NULL) goto nomem;
      v = nv;
      cap = ncap;
    }
    const char *t = (const char *)sqlite3_column_text(s, 0);
    if ((v[k] = strdup(t ? t : "")) == NULL) goto nomem;
    k++;
  }
  if (src != SQLITE_DONE) {
    rc = store_local_sqlerr(l, r->db, src, err, "cannot list");
    goto fail;
  }
  *names = v;
  *n = k;
  return STORE_OK;
nomem:
  rc = store_seterr(err, STORE_NOMEM, "out of memory");
fail:
  store_names_free(v, k);
  return rc;
}

store_rc store_local_services(void *impl, char ***names, size_t *n,
                              char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_stmt(l, r, sql_services, &s, err)) == STORE_OK)
    rc = collect_names(l, r, s, names, n, err);
  store_local_reader_put(l, r);
  return rc;
}

store_rc store_local_label_sets(void *impl, const char *service,
                                meta_type type, char ***sets, size_t *n,
                                char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_stmt(l, r, sql_label_sets, &s, err)) == STORE_OK) {
    sqlite3_bind_text(s, 1, service, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, (int)type);
    rc = collect_names(l, r, s, sets, n, err);
  }
  store_local_reader_put(l, r);
  return rc;
}

/* ---- statistics ---------------------------------------------------------------------- */

static int64_t file_size(const char *path, const char *suffix) {
  char p[4096];
  struct stat sb;
  snprintf(p, sizeof p, "%s%s", path, suffix);
  return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

store_rc store_local_stats(void *impl, store_stats *out) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_reader_get(l, &r, NULL);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_stmt(l, r, sql_stats, &s, NULL)) != STORE_OK) goto out;
  int src = sqlite3_step(s);
  if (src != SQLITE_ROW) {
    rc = store_local_sqlerr(l, r->db, src, NULL, "cannot count profiles");
    goto out;
  }
  *out = (store_stats){
    .profiles = sqlite3_column_int64(s, 0),
    .bytes = sqlite3_column_int64(s, 1),
    .disk_bytes = file_size(l->path, "") + file_size(l->path, "-wal"),
    .ingests = atomic_load(&l->ingests),
    .commits = atomic_load(&l->commits),
    .cache_hits = -1, .cache_misses = -1, .cache_bytes = -1,
    .rollups = -1, .rollup_bytes = -1, .lists = -1,
  };
out:
  store_local_reader_put(l, r);
  return rc;
}
