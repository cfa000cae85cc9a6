/*
** profiles.c — the profiles of the local store: their tables, ingest
** (checked by store.c in the caller's thread, stored by the writer; a
** repeat of a stored profile answers with its id), find, get, stat and
** delete.
**
** Tables: profiles holds one row of metadata per profile; the index on
** (service, type, created_at, id) makes a time-range query on one service
** and type an index range scan already in the order store_find returns.
** blobs holds the bytes, keyed by the rowid of their profiles row, so that
** scans of metadata never page through them.  The triggers that keep the
** other tables in step with profiles belong to their features (services.c,
** rollups.c); blobs_removed, here, deletes a profile's blob (in version 1
** the series trigger did).  Version 4 adds digest, a 64-bit checksum of
** the bytes, and the index profiles_same on (service, type, created_at,
** digest), so that the look-up that makes ingest idempotent reads only the
** blobs of real candidates: without it, N profiles of one second and size
** (a client that sets time_nanos to a constant, say) made every ingest read
** all N blobs, and ingest quadratic.  Version 5 adds profiles_by_labels
** on (service, type, labels, created_at, id): the profiles of one label
** set in time order, for label directories and for filters that few label
** sets match (store_local_plan).
*/
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libdeflate.h>

#include "local.h"

const char store_local_profiles_v1[] =
  "CREATE TABLE profiles("
  "  rowid INTEGER PRIMARY KEY,"
  "  id TEXT NOT NULL UNIQUE,"
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  created_at INTEGER NOT NULL,"
  "  size INTEGER NOT NULL);"
  "CREATE INDEX profiles_by_time ON profiles(service, type, created_at, id);"
  "CREATE TABLE blobs(rowid INTEGER PRIMARY KEY, data BLOB NOT NULL);";

const char store_local_profiles_v3[] =
  "DROP TRIGGER profiles_removed;"
  "CREATE TRIGGER blobs_removed AFTER DELETE ON profiles BEGIN"
  "  DELETE FROM blobs WHERE rowid = old.rowid;"
  "END;";

const char store_local_profiles_v4[] =
  "ALTER TABLE profiles ADD COLUMN digest INTEGER;"
  "UPDATE profiles SET digest = profile_digest("
  "  (SELECT data FROM blobs b WHERE b.rowid = profiles.rowid));"
  "CREATE INDEX profiles_same ON profiles(service, type, created_at, digest);";

const char store_local_profiles_v5[] =
  "CREATE INDEX profiles_by_labels"
  "  ON profiles(service, type, labels, created_at, id);";

/* crc32 and adler32 side by side: both run at memory speed (libdeflate's,
** with the CPU's vector and carry-less multiply instructions: a fifth of
** zlib's time, the same values), and a false match only costs the
** comparison of the bytes that follows it. */
int64_t store_local_digest(const void *data, size_t len) {
  uint32_t crc = libdeflate_crc32(0, data, len);
  uint32_t adler = libdeflate_adler32(1, data, len);
  return (int64_t)((uint64_t)crc << 32 | adler);
}

#define META_COLS "p.id, p.service, p.type, p.labels, p.created_at, p.size"

#define FIND_ORDER " ORDER BY p.created_at, p.id LIMIT ?6"
static const char *const sql_find[STORE_LOCAL_PLANS] = {
  "SELECT " META_COLS STORE_LOCAL_BY_TIME FIND_ORDER,
  "SELECT " META_COLS STORE_LOCAL_BY_SETS FIND_ORDER,
  "SELECT " META_COLS STORE_LOCAL_BY_SET FIND_ORDER,
};
static const char sql_get[] =
  "SELECT " META_COLS ", b.data FROM profiles p"
  " JOIN blobs b ON b.rowid = p.rowid WHERE p.id = ?1";
const char store_local_sql_stat[] =
  "SELECT " META_COLS " FROM profiles p WHERE p.id = ?1";
static const char sql_insert_profile[] =
  "INSERT INTO profiles(id, service, type, labels, created_at, size, digest)"
  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_insert_blob[] =
  "INSERT INTO blobs(rowid, data) VALUES(?1, ?2)";
static const char sql_delete[] = "DELETE FROM profiles WHERE id = ?1";
/* The profiles an ingest would repeat: profiles_same finds those of one
** service, type, second and digest; the bytes decide. */
static const char sql_same[] =
  "SELECT p.id, b.data FROM profiles p INDEXED BY profiles_same"
  " JOIN blobs b ON b.rowid = p.rowid"
  " WHERE p.service = ?1 AND p.type = ?2 AND p.created_at = ?3"
  " AND p.digest = ?6 AND p.labels = ?4 AND p.size = ?5";

store_rc store_local_query_stmt(store_local *l, store_local_conn *c,
                                const store_query *q,
                                const char *const sql[STORE_LOCAL_PLANS],
                                sqlite3_stmt **out, char *err) {
  const char *labels = q->labels ? q->labels : "";
  store_local_pair pair = {NULL, 0, 0};
  sqlite3_stmt *s = NULL;
  int plan = 0;
  store_rc rc = STORE_OK;
  if (q->exact) {
    plan = 2;
  } else if (labels[0] != '\0') {
    rc = store_local_rarest_pair(l, c, q->service, q->type, labels, &pair,
                                 err);
    plan = pair.sets <= STORE_LOCAL_FEW_SETS;
  }
  if (rc == STORE_OK) rc = store_local_stmt(l, c, sql[plan], &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(s, 1, q->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)q->type);
  sqlite3_bind_int64(s, 3, q->from);
  sqlite3_bind_int64(s, 4, q->to);
  sqlite3_bind_text(s, 5, labels, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 6, q->limit > 0 ? q->limit : -1);
  if (pair.text != NULL)
    sqlite3_bind_text(s, 7, pair.text, pair.len, SQLITE_STATIC);
  *out = s;
  return STORE_OK;
}

/* ---- ingest ------------------------------------------------------------------ */

typedef struct ingest_req {
  const char *service, *labels;
  meta_type type;
  int64_t created_at, now; /* now: the id's second */
  const void *data;
  size_t len;
  int64_t digest;           /* store_local_digest of data, len */
  char id[META_ID_LEN + 1]; /* assigned */
  int found;                /* the profile was stored already */
} ingest_req;

/* In the writer: 1 when the profile of r is stored already (its id then
** in r->id), 0 when not, or -1 with the SQLite code in *src. */
static int find_same(sqlite3_stmt *s, ingest_req *r, int *src) {
  int rc, found = 0;

  sqlite3_bind_text(s, 1, r->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)r->type);
  sqlite3_bind_int64(s, 3, r->created_at);
  sqlite3_bind_text(s, 4, r->labels, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 5, (sqlite3_int64)r->len);
  sqlite3_bind_int64(s, 6, r->digest);
  while (!found && (rc = sqlite3_step(s)) == SQLITE_ROW)
    if ((size_t)sqlite3_column_bytes(s, 1) == r->len &&
        memcmp(sqlite3_column_blob(s, 1), r->data, r->len) == 0 &&
        sqlite3_column_bytes(s, 0) == META_ID_LEN) {
      memcpy(r->id, sqlite3_column_text(s, 0), META_ID_LEN + 1);
      found = 1;
    }
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (!found && rc != SQLITE_DONE) {
    *src = rc;
    return -1;
  }
  return found;
}

/* Runs in the writer, so that two identical ingests in one group commit
** see each other: a repeat answers with the first id and changes nothing
** (ingest is idempotent).  64 random bits make an id collision all but
** impossible; if it happens anyway, a new id is cheaper than an error. */
static store_rc write_ingest(store_local *l, store_local_conn *c, void *arg,
                             int64_t *changes, char *err) {
  ingest_req *r = arg;
  sqlite3_stmt *p = NULL, *b = NULL, *same = NULL;
  store_rc src = store_local_stmt(l, c, sql_insert_profile, &p, err);
  if (src == STORE_OK) src = store_local_stmt(l, c, sql_insert_blob, &b, err);
  if (src == STORE_OK) src = store_local_stmt(l, c, sql_same, &same, err);
  if (src != STORE_OK) return src;
  int rc = SQLITE_OK;
  switch (find_same(same, r, &rc)) {
  case 1:
    *changes = 0;
    r->found = 1;
    return STORE_OK;
  case -1:
    return store_local_sqlerr(l, c->db, rc, err, "cannot look up profile");
  }
  for (int attempt = 0;; attempt++) {
    sqlite3_bind_text(p, 1, r->id, META_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_text(p, 2, r->service, -1, SQLITE_STATIC);
    sqlite3_bind_int(p, 3, (int)r->type);
    sqlite3_bind_text(p, 4, r->labels, -1, SQLITE_STATIC);
    sqlite3_bind_int64(p, 5, r->created_at);
    sqlite3_bind_int64(p, 6, (sqlite3_int64)r->len);
    sqlite3_bind_int64(p, 7, r->digest);
    rc = store_local_run(p);
    if (rc != SQLITE_CONSTRAINT_UNIQUE || attempt == 3) break;
    meta_id_new(r->now, r->id);
  }
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(b, 1, sqlite3_last_insert_rowid(c->db));
    sqlite3_bind_blob64(b, 2, r->data, r->len, SQLITE_STATIC);
    rc = store_local_run(b);
  }
  if (rc != SQLITE_OK)
    return store_local_sqlerr(l, c->db, rc, err, "cannot store profile");
  *changes = 1;
  return STORE_OK;
}

store_rc store_local_ingest(void *impl, const char *service, meta_type type,
                            const char *labels, int64_t created_at_hint,
                            const void *data, size_t len, store_meta *out,
                            char *err) {
  store_local *l = impl;
  int64_t now = (int64_t)time(NULL);
  store_meta m = {.type = type, .size = (int64_t)len};
  store_rc rc;
  /* store.c checked the profile and resolved created_at (time_nanos). */
  if (out != NULL) {
    m.service = strdup(service);
    m.labels = strdup(labels);
    if (m.service == NULL || m.labels == NULL) {
      store_meta_clear(&m);
      return store_seterr(err, STORE_NOMEM, "out of memory");
    }
  }
  ingest_req r = {
    .service = service, .labels = labels, .type = type,
    .created_at = created_at_hint > 0 ? created_at_hint : now,
    .now = now, .data = data, .len = len,
    .digest = store_local_digest(data, len),
  };
  meta_id_new(now, r.id);
  rc = store_local_write(l, write_ingest, &r, STORE_LOCAL_W_INGEST, NULL, err);
  if (rc != STORE_OK) {
    store_meta_clear(&m);
    return rc;
  }
  if (out != NULL) {
    memcpy(m.id, r.id, sizeof m.id);
    m.created_at = r.created_at;
    m.ingested = r.found ? STORE_INGESTED_EXISTING : STORE_INGESTED_NEW;
    *out = m;
  }
  return STORE_OK;
}

/* ---- delete --------------------------------------------------------------------- */

static store_rc write_delete(store_local *l, store_local_conn *c, void *arg,
                             int64_t *changes, char *err) {
  const char *id = arg;
  store_rc rc = store_local_exec_text(l, c, sql_delete, id,
                                      "cannot delete profile", err);
  if (rc != STORE_OK) return rc;
  if (sqlite3_changes(c->db) == 0)
    return store_seterr(err, STORE_NOTFOUND, "no profile with id %s", id);
  *changes = sqlite3_changes(c->db);
  return STORE_OK;
}

store_rc store_local_del(void *impl, const char *id, char *err) {
  char copy[META_ID_LEN + 1];
  memcpy(copy, id, META_ID_LEN + 1);
  return store_local_write(impl, write_delete, copy, 0, NULL, err);
}

/* ---- rows -> metadata ---------------------------------------------------------- */

/* Reads the META_COLS columns of the current row into *m. */
static store_rc row_meta(sqlite3_stmt *s, store_meta *m, char *err) {
  const char *id = (const char *)sqlite3_column_text(s, 0);
  const char *service = (const char *)sqlite3_column_text(s, 1);
  const char *labels = (const char *)sqlite3_column_text(s, 3);
  store_meta v = {
    .type = (meta_type)sqlite3_column_int(s, 2),
    .created_at = sqlite3_column_int64(s, 4),
    .size = sqlite3_column_int64(s, 5),
  };
  if (id == NULL || strlen(id) != META_ID_LEN ||
      (unsigned)v.type >= META_NTYPES)
    return store_seterr(err, STORE_IO, "corrupt metadata row");
  memcpy(v.id, id, META_ID_LEN + 1);
  v.service = strdup(service ? service : "");
  v.labels = strdup(labels ? labels : "");
  if (v.service == NULL || v.labels == NULL) {
    store_meta_clear(&v);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  *m = v;
  return STORE_OK;
}

/* ---- queries --------------------------------------------------------------------- */

store_rc store_local_find(void *impl, const store_query *q,
                          store_meta_list *out, char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_meta_list list = {0, NULL};
  size_t cap = 0;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_query_stmt(l, r, q, sql_find, &s, err)) != STORE_OK)
    goto out;
  int src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    if (list.n == cap) {
      size_t ncap = cap ? 2 * cap : 16;
      store_meta *v = realloc(list.v, ncap * sizeof *v);
      if (v == NULL) {
        rc = store_seterr(err, STORE_NOMEM, "out of memory");
        goto out;
      }
      list.v = v;
      cap = ncap;
    }
    if ((rc = row_meta(s, &list.v[list.n], err)) != STORE_OK) goto out;
    list.n++;
  }
  if (src != SQLITE_DONE)
    rc = store_local_sqlerr(l, r->db, src, err, "cannot find profiles");
out:
  store_local_reader_put(l, r);
  if (rc != STORE_OK) {
    store_meta_list_free(&list);
    return rc;
  }
  *out = list;
  return STORE_OK;
}

store_rc store_local_lookup(store_local *l, store_local_conn *c,
                            const char *sql, const char *id,
                            sqlite3_stmt **out, char *err) {
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_stmt(l, c, sql, &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int src = sqlite3_step(s);
  if (src == SQLITE_DONE)
    return store_seterr(err, STORE_NOTFOUND, "no profile with id %s", id);
  if (src != SQLITE_ROW)
    return store_local_sqlerr(l, c->db, src, err, "cannot read profile");
  *out = s;
  return STORE_OK;
}

store_rc store_local_get(void *impl, const char *id, store_meta *meta,
                         void **data, size_t *len, char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_meta m = {0};
  void *buf = NULL;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_lookup(l, r, sql_get, id, &s, err)) != STORE_OK)
    goto out;
  if (meta != NULL && (rc = row_meta(s, &m, err)) != STORE_OK) goto out;
  size_t n = (size_t)sqlite3_column_bytes(s, 6);
  const void *blob = sqlite3_column_blob(s, 6);
  buf = malloc(n ? n : 1);
  if (buf == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  if (n > 0) memcpy(buf, blob, n);
out:
  store_local_reader_put(l, r);
  if (rc != STORE_OK) {
    store_meta_clear(&m);
    free(buf);
    return rc;
  }
  if (meta != NULL) *meta = m;
  *data = buf;
  *len = n;
  return STORE_OK;
}

store_rc store_local_stat(void *impl, const char *id, store_meta *meta,
                          char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_lookup(l, r, store_local_sql_stat, id, &s, err)) ==
      STORE_OK)
    rc = row_meta(s, meta, err);
  store_local_reader_put(l, r);
  return rc;
}
