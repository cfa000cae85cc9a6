/*
** rollups.c — hourly rollups of the local store: the merge of every profile
** of one hour of one series (service, type, labels), kept beside them so
** that a merge over days reads a few hundred rollups instead of thousands
** of profiles (merge.c, merge_rows).  This file owns their tables and
** triggers, finds the hours due, merges them and stores the result.
**
** Tables: rollups holds the merge of one hour of one series; rollup_dirty
** the (series, hour) pairs whose rollup is missing or stale, each with a
** sequence number bumped on every change.  Hours start at 1 so that
** integer division is floor division; traces (type 7) are never merged.
**
** Consistency does not depend on the builder.  The triggers below delete
** the rollup of an hour and bump that hour's dirty mark in the very
** transaction that adds or removes one of its profiles, late arrivals and
** retention included; a rollup is written only if the mark still has the
** value read with the profiles it merges (write_rollup).  So a query sees
** either a rollup equal to the merge of the hour's current profiles, or no
** rollup and those profiles.
**
** Policy, here: an hour is rolled up once it ended ROLLUP_GRACE seconds
** ago (late profiles would mostly arrive before), by a background thread
** every ROLLUP_EVERY seconds, or at once by store_maintain().  Hours of
** fewer than two profiles, or whose profiles cannot be merged, get none.
**
** Invariants:
**   - at most one pass runs at a time (pass_mu), so two passes never merge
**     the same hour twice;
**   - stop is only set by store_local_rollup_stop, under mu.
*/
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "local.h"
#include "mergepipe.h"

#define ROLLUP_GRACE 300 /* seconds after the end of an hour */
#define ROLLUP_EVERY 60  /* seconds between background passes */

const char store_local_rollups_v2[] =
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

static const char sql_begin[] = "BEGIN";
static const char sql_dirty[] =
  "SELECT service, type, hour, labels, seq FROM rollup_dirty"
  " WHERE hour < ?1 ORDER BY hour";
static const char sql_hour[] =
  "SELECT p.id, b.data FROM profiles p"
  " JOIN blobs b ON b.rowid = p.rowid WHERE p.service = ?1"
  " AND p.type = ?2 AND p.created_at BETWEEN ?3 AND ?4"
  " AND p.labels = ?5 ORDER BY p.created_at, p.id";
static const char sql_hour_seq[] =
  "SELECT seq FROM rollup_dirty WHERE service = ?1"
  " AND type = ?2 AND hour = ?3 AND labels = ?4";
static const char sql_clean_hour[] =
  "DELETE FROM rollup_dirty WHERE service = ?1 AND type = ?2"
  " AND hour = ?3 AND labels = ?4 AND seq = ?5";
static const char sql_put_rollup[] =
  "INSERT OR REPLACE INTO rollups(service, type, hour, labels, profiles,"
  " data) VALUES(?1, ?2, ?3, ?4, ?5, ?6)";

/* One (series, hour) whose rollup is missing or stale, as of seq. */
typedef struct hour_mark {
  char *service, *labels;
  meta_type type;
  int64_t hour, seq;
} hour_mark;

/* ---- reading the hours due and merging one ---------------------------------- */

static void marks_free(hour_mark *v, size_t n) {
  if (v == NULL) return;
  for (size_t i = 0; i < n; i++) {
    free(v[i].service);
    free(v[i].labels);
  }
  free(v);
}

/* The dirty (series, hour) pairs with hour < before (oldest first), in a
** malloc'd array to free with marks_free. */
static store_rc dirty_hours(store_local *l, int64_t before, hour_mark **out,
                            size_t *n, char *err) {
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  hour_mark *v = NULL;
  size_t k = 0, cap = 0;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_stmt(l, r, sql_dirty, &s, err)) != STORE_OK) goto out;
  sqlite3_bind_int64(s, 1, before);
  int src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    if (k == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      hour_mark *nv = realloc(v, ncap * sizeof *nv);
      if (nv == NULL) goto nomem;
      v = nv;
      cap = ncap;
    }
    const char *service = (const char *)sqlite3_column_text(s, 0);
    const char *labels = (const char *)sqlite3_column_text(s, 3);
    v[k] = (hour_mark){
      .service = strdup(service ? service : ""),
      .labels = strdup(labels ? labels : ""),
      .type = (meta_type)sqlite3_column_int(s, 1),
      .hour = sqlite3_column_int64(s, 2),
      .seq = sqlite3_column_int64(s, 4),
    };
    k++;
    if (v[k - 1].service == NULL || v[k - 1].labels == NULL) goto nomem;
  }
  if (src != SQLITE_DONE)
    rc = store_local_sqlerr(l, r->db, src, err, "cannot list rollups");
  goto out;
nomem:
  rc = store_seterr(err, STORE_NOMEM, "out of memory");
out:
  store_local_reader_put(l, r);
  if (rc != STORE_OK) {
    marks_free(v, k);
    return rc;
  }
  *out = v;
  *n = k;
  return STORE_OK;
}

/* Reads h's dirty mark and merges its hour into m (same snapshot). */
static store_rc merge_hour_rows(store_local *l, store_local_conn *r,
                                hour_mark *h, store_mergepipe *m,
                                int64_t *count, char *err) {
  sqlite3_stmt *seq = NULL, *s = NULL;
  store_rc rc = store_local_stmt(l, r, sql_hour_seq, &seq, err);
  if (rc == STORE_OK) rc = store_local_stmt(l, r, sql_hour, &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(seq, 1, h->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(seq, 2, (int)h->type);
  sqlite3_bind_int64(seq, 3, h->hour);
  sqlite3_bind_text(seq, 4, h->labels, -1, SQLITE_STATIC);
  int src = sqlite3_step(seq);
  h->seq = src == SQLITE_ROW ? sqlite3_column_int64(seq, 0) : 0;
  sqlite3_reset(seq);
  if (src != SQLITE_ROW && src != SQLITE_DONE)
    return store_local_sqlerr(l, r->db, src, err, "cannot read rollup mark");

  sqlite3_bind_text(s, 1, h->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)h->type);
  sqlite3_bind_int64(s, 3, h->hour * STORE_LOCAL_HOUR);
  sqlite3_bind_int64(s, 4, h->hour * STORE_LOCAL_HOUR + STORE_LOCAL_HOUR - 1);
  sqlite3_bind_text(s, 5, h->labels, -1, SQLITE_STATIC);
  int64_t n = 0;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    rc = store_mergepipe_push(m, "stored profile",
                              (const char *)sqlite3_column_text(s, 0),
                              sqlite3_column_blob(s, 1),
                              (size_t)sqlite3_column_bytes(s, 1), err);
    if (rc != STORE_OK) return rc;
    n++;
  }
  if (src != SQLITE_DONE)
    return store_local_sqlerr(l, r->db, src, err, "cannot read profiles");
  *count = n;
  return STORE_OK;
}

/* Merges the profiles of h's series and hour, and sets h->seq to the dirty
** mark's value in the same snapshot (0 when the mark is gone).  *data is
** NULL (STORE_OK) when fewer than 2 profiles are left or they cannot be
** merged (a rollup would not help); else malloc'd, with *profiles.  On one
** thread: the builder runs beside ingests. */
static store_rc merge_hour(store_local *l, hour_mark *h, void **data,
                           size_t *len, int64_t *profiles, char *err) {
  store_local_conn *r = NULL;
  store_mergepipe *m = NULL;
  int64_t n = 0;
  store_rc rc = store_mergepipe_new(l->max_inflate, 1, &m, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_reader_get(l, &r, err)) != STORE_OK) goto out;
  if ((rc = store_local_exec(l, r, sql_begin, "cannot read profiles", err)) !=
      STORE_OK)
    goto out;
  rc = merge_hour_rows(l, r, h, m, &n, err);
  store_local_reader_put(l, r);
  r = NULL;
  void *buf = NULL;
  size_t blen = 0;
  if (rc == STORE_MISMATCH || rc == STORE_BADPROFILE) {
    /* No rollup: queries merge such an hour profile by profile and
    ** report the error naming the profile. */
    rc = STORE_OK;
  } else if (rc == STORE_OK && n >= 2) {
    rc = store_mergepipe_finish(m, &buf, &blen, err);
  }
  if (rc == STORE_OK) {
    *data = buf;
    *len = blen;
    *profiles = n;
  }
out:
  store_mergepipe_free(m);
  store_local_reader_put(l, r);
  return rc;
}

/* ---- storing a rollup ------------------------------------------------------------- */

typedef struct put_req {
  const hour_mark *h;
  const void *data; /* NULL: nothing worth a rollup */
  size_t len;
  int64_t profiles;
  int stored;       /* out: a rollup was written */
} put_req;

/* Runs in the writer.  The dirty mark is cleared and the rollup written
** only if nothing changed the hour since it was merged (same seq); either
** way the rollup leaves what queries see unchanged, so it counts as no
** change (generation). */
static store_rc write_rollup(store_local *l, store_local_conn *c, void *arg,
                             int64_t *changes, char *err) {
  put_req *r = arg;
  const hour_mark *h = r->h;
  sqlite3_stmt *cl = NULL, *p = NULL;
  store_rc rc = store_local_stmt(l, c, sql_clean_hour, &cl, err);
  if (rc == STORE_OK) rc = store_local_stmt(l, c, sql_put_rollup, &p, err);
  if (rc != STORE_OK) return rc;
  (void)changes;
  sqlite3_bind_text(cl, 1, h->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(cl, 2, (int)h->type);
  sqlite3_bind_int64(cl, 3, h->hour);
  sqlite3_bind_text(cl, 4, h->labels, -1, SQLITE_STATIC);
  sqlite3_bind_int64(cl, 5, h->seq);
  int src = store_local_run(cl);
  if (src == SQLITE_OK && sqlite3_changes(c->db) == 1 && r->data != NULL) {
    sqlite3_bind_text(p, 1, h->service, -1, SQLITE_STATIC);
    sqlite3_bind_int(p, 2, (int)h->type);
    sqlite3_bind_int64(p, 3, h->hour);
    sqlite3_bind_text(p, 4, h->labels, -1, SQLITE_STATIC);
    sqlite3_bind_int64(p, 5, r->profiles);
    sqlite3_bind_blob64(p, 6, r->data, r->len, SQLITE_STATIC);
    src = store_local_run(p);
    r->stored = src == SQLITE_OK;
  }
  if (src != SQLITE_OK)
    return store_local_sqlerr(l, c->db, src, err, "cannot store rollup");
  return STORE_OK;
}

/* ---- the builder ------------------------------------------------------------------- */

struct store_local_rollup {
  store_local *l;
  pthread_t thread;
  pthread_mutex_t mu;      /* guards stop */
  pthread_cond_t wake;     /* signalled by stop */
  int stop;
  pthread_mutex_t pass_mu; /* one pass at a time */
};

static int stopping(store_local_rollup *ru) {
  pthread_mutex_lock(&ru->mu);
  int stop = ru->stop;
  pthread_mutex_unlock(&ru->mu);
  return stop;
}

/* Builds the rollups of every dirty hour that ended ROLLUP_GRACE ago. */
static store_rc pass(store_local_rollup *ru, size_t *built, char *err) {
  store_local *l = ru->l;
  hour_mark *v = NULL;
  size_t n = 0, made = 0;
  int64_t before = ((int64_t)time(NULL) - ROLLUP_GRACE) / STORE_LOCAL_HOUR;
  pthread_mutex_lock(&ru->pass_mu);
  store_rc rc = dirty_hours(l, before, &v, &n, err);
  for (size_t i = 0; rc == STORE_OK && i < n && !stopping(ru); i++) {
    put_req p = {.h = &v[i]};
    void *data = NULL;
    rc = merge_hour(l, &v[i], &data, &p.len, &p.profiles, err);
    p.data = data;
    if (rc == STORE_OK && v[i].seq != 0)
      rc = store_local_write(l, write_rollup, &p, 0, NULL, err);
    made += (size_t)p.stored;
    free(data);
  }
  pthread_mutex_unlock(&ru->pass_mu);
  marks_free(v, n);
  if (rc == STORE_OK && built != NULL) *built = made;
  return rc;
}

static void *rollup_main(void *arg) {
  store_local_rollup *ru = arg;
  pthread_mutex_lock(&ru->mu);
  while (!ru->stop) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ROLLUP_EVERY;
    while (!ru->stop &&
           pthread_cond_timedwait(&ru->wake, &ru->mu, &deadline) != ETIMEDOUT) {
    }
    if (ru->stop) break;
    pthread_mutex_unlock(&ru->mu);
    /* Failures (a full disk...) are retried at the next pass; rollups are
    ** only an optimisation. */
    pass(ru, NULL, NULL);
    pthread_mutex_lock(&ru->mu);
  }
  pthread_mutex_unlock(&ru->mu);
  return NULL;
}

static void rollup_free(store_local_rollup *ru) {
  pthread_cond_destroy(&ru->wake);
  pthread_mutex_destroy(&ru->mu);
  pthread_mutex_destroy(&ru->pass_mu);
  free(ru);
}

store_rc store_local_rollup_start(store_local *l, char *err) {
  assert(l->rollup == NULL && l->writer != NULL);
  store_local_rollup *ru = calloc(1, sizeof *ru);
  if (ru == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_condattr_t monotonic;
  pthread_condattr_init(&monotonic);
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
  ru->l = l;
  pthread_mutex_init(&ru->mu, NULL);
  pthread_mutex_init(&ru->pass_mu, NULL);
  pthread_cond_init(&ru->wake, &monotonic);
  pthread_condattr_destroy(&monotonic);
  if (pthread_create(&ru->thread, NULL, rollup_main, ru) != 0) {
    rollup_free(ru);
    return store_seterr(err, STORE_NOMEM, "cannot start the rollup thread");
  }
  l->rollup = ru;
  return STORE_OK;
}

void store_local_rollup_stop(store_local *l) {
  store_local_rollup *ru = l->rollup;
  if (ru == NULL) return;
  pthread_mutex_lock(&ru->mu);
  ru->stop = 1;
  pthread_cond_signal(&ru->wake);
  pthread_mutex_unlock(&ru->mu);
  pthread_join(ru->thread, NULL);
  rollup_free(ru);
  l->rollup = NULL;
}

store_rc store_local_maintain(void *impl, size_t *built, char *err) {
  store_local *l = impl;
  if (l->rollup == NULL)
    return store_seterr(err, STORE_READONLY, "store is read-only");
  return pass(l->rollup, built, err);
}
