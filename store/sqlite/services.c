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
**
** Version 5 adds label_pairs: one row per (service, type, pair, label set)
** for every pair of every label set of series, the pair as its canonical
** text "k=v" (the pieces of a canonical set between commas).  Triggers on
** series keep it, so it changes only when a label set appears or goes.
** It is the index of everything asked by label: whether a set holds a
** pair, which sets a filter can match (those holding its rarest pair),
** the keys and the values of a key.  Every such question reads a range of
** it or seeks through it, never every label set (issue 21: with 20,000
** pods each stat of a label directory scanned them all).
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

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

/* The pairs of the canonical set col as a JSON array of strings, for
** json_each: triggers cannot hold the recursive query that would split
** it.  Canonical text is printable ASCII with ',' '=' '%' escaped (meta),
** so only '\\' and '"' need escaping in JSON, and a ',' ends a pair.  Plain
** SQL, so that the sqlite3 shell can still write to a store. */
#define PAIRS_JSON(col)                                                     \
  "json_each('[\"' || replace(replace(replace(" col ", '\\', '\\\\'),"         \
  " '\"', '\\\"'), ',', '\",\"') || '\"]')"

const char store_local_services_v5[] =
  "CREATE TABLE label_pairs("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  pair TEXT NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  PRIMARY KEY(service, type, pair, labels)) WITHOUT ROWID;"
  "CREATE TRIGGER label_pairs_added AFTER INSERT ON series"
  "  WHEN new.labels <> '' BEGIN"
  "  INSERT OR IGNORE INTO label_pairs"
  "    SELECT new.service, new.type, j.value, new.labels"
  "    FROM " PAIRS_JSON("new.labels") " j;"
  "END;"
  "CREATE TRIGGER label_pairs_removed AFTER DELETE ON series"
  "  WHEN old.labels <> '' BEGIN"
  "  DELETE FROM label_pairs WHERE service = old.service"
  "    AND type = old.type AND labels = old.labels AND pair IN"
  "    (SELECT value FROM " PAIRS_JSON("old.labels") ");"
  "END;"
  "INSERT OR IGNORE INTO label_pairs"
  "  SELECT s.service, s.type, j.value, s.labels"
  "  FROM series s, " PAIRS_JSON("s.labels") " j WHERE s.labels <> '';";

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
/* Each subquery is one index seek: min and max on profiles_by_time. */
static const char sql_span[] =
  "SELECT (SELECT coalesce(sum(profiles), 0) FROM series"
  "        WHERE service = ?1 AND type = ?2),"
  " (SELECT min(created_at) FROM profiles WHERE service = ?1 AND type = ?2),"
  " (SELECT max(created_at) FROM profiles WHERE service = ?1 AND type = ?2)";
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

/* A reader in *r (the caller puts it back, also on failure) and sql
** prepared on it in *s with ?1 = service and ?2 = type. */
static store_rc service_type_stmt(store_local *l, const char *sql,
                                  const char *service, meta_type type,
                                  store_local_conn **r, sqlite3_stmt **s,
                                  char *err) {
  store_rc rc = store_local_reader_get(l, r, err);
  if (rc == STORE_OK) rc = store_local_stmt(l, *r, sql, s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(*s, 1, service, -1, SQLITE_STATIC);
  sqlite3_bind_int(*s, 2, (int)type);
  return STORE_OK;
}

store_rc store_local_label_sets(void *impl, const char *service,
                                meta_type type, char ***sets, size_t *n,
                                char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = service_type_stmt(l, sql_label_sets, service, type, &r, &s, err);
  if (rc == STORE_OK) rc = collect_names(l, r, s, sets, n, err);
  store_local_reader_put(l, r);
  return rc;
}

store_rc store_local_span(void *impl, const char *service, meta_type type,
                          int64_t *count, int64_t *first, int64_t *last,
                          char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = service_type_stmt(l, sql_span, service, type, &r, &s, err);
  if (rc == STORE_OK) {
    if (sqlite3_step(s) == SQLITE_ROW) {
      *count = sqlite3_column_int64(s, 0);
      *first = sqlite3_column_int64(s, 1);
      *last = sqlite3_column_int64(s, 2);
    } else {
      rc = store_seterr(err, STORE_IO, "cannot read profiles: %s",
                        sqlite3_errmsg(r->db));
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
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

/* What an unprivileged writer may still use on path's filesystem. */
static int64_t disk_avail(const char *path) {
  struct statvfs sv;
  return statvfs(path, &sv) == 0 ? (int64_t)sv.f_bavail * (int64_t)sv.f_frsize
                                 : -1;
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
    .disk_avail = disk_avail(l->path),
  };
out:
  store_local_reader_put(l, r);
  return rc;
}

/* ---- label pairs --------------------------------------------------------------- */

/* Label sets of service ?1 and type ?2 holding pair ?3, counted up to
** STORE_LOCAL_FEW_SETS + 1 (an index range: a count past that is not
** needed). */
static const char sql_pair_sets[] =
  "SELECT count(*) FROM (SELECT 1 FROM label_pairs WHERE service = ?1"
  " AND type = ?2 AND pair = ?3 LIMIT ?4)";
static const char sql_has_set[] =
  "SELECT 1 FROM series WHERE service = ?1 AND type = ?2 AND labels = ?3";
/* A set holding pair ?3 that filter ?4 matches. */
static const char sql_has_match[] =
  "SELECT 1 FROM label_pairs WHERE service = ?1 AND type = ?2"
  " AND pair = ?3 AND labels_match(?4, labels) LIMIT 1";
/* The first pair after ?3 and before ?4 (a skip: each key or value is one
** seek, however many sets hold it). */
static const char sql_next_pair[] =
  "SELECT pair FROM label_pairs WHERE service = ?1 AND type = ?2"
  " AND pair > ?3 AND pair < ?4 ORDER BY pair LIMIT 1";
/* The same, of a set with a profile in [?5, ?6]: one probe of
** profiles_by_labels per set tried. */
static const char sql_next_pair_in[] =
  "SELECT s.pair FROM label_pairs s WHERE s.service = ?1 AND s.type = ?2"
  " AND s.pair > ?3 AND s.pair < ?4 AND EXISTS (SELECT 1 FROM profiles p"
  " INDEXED BY profiles_by_labels WHERE p.service = ?1 AND p.type = ?2"
  " AND p.labels = s.labels AND p.created_at BETWEEN ?5 AND ?6)"
  " ORDER BY s.pair LIMIT 1";

/* Steps s (bound by the caller) to its single integer, then resets it. */
static store_rc one_int(store_local *l, store_local_conn *c, sqlite3_stmt *s,
                        int64_t *out, const char *what, char *err) {
  int src = sqlite3_step(s);
  store_rc rc = STORE_OK;
  if (src == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
  else if (src == SQLITE_DONE) *out = 0;
  else rc = store_local_sqlerr(l, c->db, src, err, what);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc;
}

static void bind_set(sqlite3_stmt *s, const char *service, meta_type type) {
  sqlite3_bind_text(s, 1, service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)type);
}

store_rc store_local_rarest_pair(store_local *l, store_local_conn *c,
                                 const char *service, meta_type type,
                                 const char *filter, store_local_pair *out,
                                 char *err) {
  sqlite3_stmt *s = NULL;
  store_local_pair best = {NULL, 0, 0};
  store_rc rc = store_local_stmt(l, c, sql_pair_sets, &s, err);
  assert(filter != NULL && filter[0] != '\0');
  for (const char *p = filter; rc == STORE_OK;) {
    const char *comma = strchr(p, ',');
    int len = comma ? (int)(comma - p) : (int)strlen(p);
    int64_t n = 0;
    bind_set(s, service, type);
    sqlite3_bind_text(s, 3, p, len, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, STORE_LOCAL_FEW_SETS + 1);
    rc = one_int(l, c, s, &n, "cannot read label pairs", err);
    if (rc == STORE_OK && (best.text == NULL || n < best.sets))
      best = (store_local_pair){p, len, n};
    if (comma == NULL || best.sets == 0) break;
    p = comma + 1;
  }
  if (rc == STORE_OK) *out = best;
  return rc;
}

store_rc store_local_has_labels(void *impl, const char *service,
                                meta_type type, const char *labels, int exact,
                                char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_local_pair pair;
  int64_t found = 0;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if (exact || labels[0] == '\0') {
    if ((rc = store_local_stmt(l, r, sql_has_set, &s, err)) != STORE_OK)
      goto out;
    bind_set(s, service, type);
    sqlite3_bind_text(s, 3, labels, -1, SQLITE_STATIC);
  } else {
    if ((rc = store_local_rarest_pair(l, r, service, type, labels, &pair,
                                      err)) != STORE_OK ||
        (rc = store_local_stmt(l, r, sql_has_match, &s, err)) != STORE_OK)
      goto out;
    bind_set(s, service, type);
    sqlite3_bind_text(s, 3, pair.text, pair.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, labels, -1, SQLITE_STATIC);
  }
  rc = one_int(l, r, s, &found, "cannot read label sets", err);
  if (rc == STORE_OK && !found)
    rc = store_seterr(err, STORE_NOTFOUND, "no such label set");
out:
  store_local_reader_put(l, r);
  return rc;
}

/* Collects pairs after `after` and before `before` (escaped, canonical),
** one seek each, with a profile in [from, to] unless from > to; each pair
** goes to keep, which returns 1 to take it, 0 to skip, -1 on OOM, and
** sets *next to where the next seek starts (malloc'd). */
typedef int (*pair_fn)(const char *pair, char **next, void *arg);

static store_rc seek_pairs(store_local *l, store_local_conn *c,
                           const char *service, meta_type type,
                           const char *after, const char *before,
                           int64_t from, int64_t to, pair_fn keep, void *arg,
                           char *err) {
  sqlite3_stmt *s = NULL;
  int ranged = from <= to;
  char *cur = strdup(after);
  store_rc rc = cur ? store_local_stmt(l, c, ranged ? sql_next_pair_in
                                                    : sql_next_pair, &s, err)
                    : store_seterr(err, STORE_NOMEM, "out of memory");
  while (rc == STORE_OK) {
    bind_set(s, service, type);
    sqlite3_bind_text(s, 3, cur, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, before, -1, SQLITE_STATIC);
    if (ranged) {
      sqlite3_bind_int64(s, 5, from);
      sqlite3_bind_int64(s, 6, to);
    }
    int src = sqlite3_step(s);
    char *next = NULL;
    if (src == SQLITE_ROW &&
        keep((const char *)sqlite3_column_text(s, 0), &next, arg) < 0)
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
    else if (src != SQLITE_ROW && src != SQLITE_DONE)
      rc = store_local_sqlerr(l, c->db, src, err, "cannot read label pairs");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    free(cur);
    cur = next;
    if (src != SQLITE_ROW || cur == NULL) break;
  }
  free(cur);
  return rc;
}

/* What keys and values collect: unescaped names; for values, the prefix
** "k=" (escaped) that a pair of the key starts with. */
typedef struct names {
  char **v;
  size_t n, cap;
  const char *prefix; /* NULL: collecting keys */
} names;

static int add_name(const char *key, const char *value, void *arg) {
  names *nm = arg;
  if (store_names_add(&nm->v, &nm->n, &nm->cap, nm->prefix ? value : key))
    return -1;
  return 1; /* one pair per call */
}

/* A key found: the next seek starts past every pair of it ("k>" sorts
** after every "k=..." and before any other key's pairs). */
static int keep_key(const char *pair, char **next, void *arg) {
  const char *eq = strchr(pair, '=');
  size_t kn = eq ? (size_t)(eq - pair) : strlen(pair);
  if (meta_labels_foreach(pair, add_name, arg) < 0) return -1;
  if ((*next = malloc(kn + 2)) == NULL) return -1;
  memcpy(*next, pair, kn);
  memcpy(*next + kn, ">", 2);
  return 1;
}

/* A pair found in the range of a key: the next seek starts after it.  The
** range starts at "k<", before "k=" (so that the empty value is found);
** keys such as "k<x" may sort in it too: the prefix tells them apart. */
static int keep_value(const char *pair, char **next, void *arg) {
  names *nm = arg;
  if (strncmp(pair, nm->prefix, strlen(nm->prefix)) == 0 &&
      meta_labels_foreach(pair, add_name, arg) < 0)
    return -1;
  return (*next = strdup(pair)) != NULL ? 1 : -1;
}

/* The canonical (escaped) text of key followed by c, malloc'd; NULL on
** OOM, "" when key cannot be a key (empty once trimmed).  Every byte is
** %-escaped for meta_labels_parse, whose result is then canonical. */
static char *canonical_key(const char *key, char c) {
  size_t kn = strlen(key);
  char *in = malloc(3 * kn + 3), *canon = NULL, *out = NULL;
  if (in == NULL) return NULL;
  for (size_t i = 0; i < kn; i++)
    sprintf(in + 3 * i, "%%%02X", (unsigned char)key[i]);
  memcpy(in + 3 * kn, "=x", 3);
  if (meta_labels_parse(in, &canon, NULL) != 0) {
    out = strdup("");
  } else {
    char *eq = strchr(canon, '=');
    size_t n = eq ? (size_t)(eq - canon) : 0;
    if (eq != NULL && (out = malloc(n + 2)) != NULL) {
      memcpy(out, canon, n);
      out[n] = c;
      out[n + 1] = '\0';
    } else if (eq == NULL) {
      out = strdup("");
    }
  }
  free(canon);
  free(in);
  return out;
}

store_rc store_local_label_names(void *impl, const char *service,
                                 meta_type type, const char *key,
                                 int64_t from, int64_t to, char ***out,
                                 size_t *n, char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  names nm = {NULL, 0, 0, NULL};
  char *after = NULL, *before = NULL, *prefix = NULL;
  store_rc rc = STORE_OK;
  if (key == NULL) {
    after = strdup("");
    before = strdup("\xff\xff"); /* after every pair */
  } else {
    after = canonical_key(key, '<');
    before = canonical_key(key, '>');
    nm.prefix = prefix = canonical_key(key, '=');
  }
  if (after == NULL || before == NULL || (key != NULL && prefix == NULL)) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  if (key != NULL && after[0] == '\0') goto out; /* no such key */
  if ((rc = store_local_reader_get(l, &r, err)) != STORE_OK) goto out;
  rc = seek_pairs(l, r, service, type, after, before,
                  key != NULL ? from : 1, key != NULL ? to : 0,
                  key != NULL ? keep_value : keep_key, &nm, err);
  store_local_reader_put(l, r);
out:
  free(after);
  free(before);
  free(prefix);
  if (rc != STORE_OK) {
    store_names_free(nm.v, nm.n);
    return rc;
  }
  *out = nm.v;
  *n = nm.n;
  return STORE_OK;
}
