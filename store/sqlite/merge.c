/*
** merge.c — the merge queries of the local store: a query's profiles, or
** a list of ids, streamed into the shared merge pipeline (mergepipe.h),
** which uses two cores for long merges with the same bytes as one.
**
** Memory holds a few stored profiles in flight and the merged result, never
** all the matching profiles.  For the whole hours of a range, hourly
** rollups (rollups.c) stand in for the profiles they merged; both are read
** in one snapshot, in time order, so that for one label set the result is
** byte for byte the profile-by-profile merge.
*/
#include <stdio.h>
#include <stdlib.h>

#include "local.h"
#include "mergepipe.h"

/* ?1..?6 as store_local_bind_query binds them. */
#define QUERY_FILTER                                                    \
  " WHERE p.service = ?1 AND p.type = ?2 AND p.created_at BETWEEN ?3 AND ?4" \
  " AND (?5 = '' OR labels_match(?5, p.labels))"

static const char sql_begin[] = "BEGIN";
static const char sql_commit[] = "COMMIT";
static const char sql_merge[] =
  "SELECT p.id, b.data, p.created_at FROM profiles p"
  " JOIN blobs b ON b.rowid = p.rowid" QUERY_FILTER
  " ORDER BY p.created_at, p.id LIMIT ?6";
/* A merge using the rollups of hours ?7..?8: the profiles those rollups
** hold are left out (their blobs are never read), the rollups are read in
** hour order beside them. */
static const char sql_merge_raw[] =
  "SELECT p.id, b.data, p.created_at FROM profiles p"
  " JOIN blobs b ON b.rowid = p.rowid" QUERY_FILTER
  " AND NOT (p.created_at / 3600 BETWEEN ?7 AND ?8"
  "  AND EXISTS (SELECT 1 FROM rollups r"
  "   WHERE r.service = p.service AND r.type = p.type"
  "   AND r.hour = p.created_at / 3600"
  "   AND r.labels = p.labels))"
  " ORDER BY p.created_at, p.id";
static const char sql_rollups[] =
  "SELECT r.hour, r.data, r.profiles, r.labels FROM rollups r"
  " WHERE r.service = ?1 AND r.type = ?2"
  " AND r.hour BETWEEN ?7 AND ?8"
  " AND (?5 = '' OR labels_match(?5, r.labels))"
  " ORDER BY r.hour, r.labels";
static const char sql_blob[] =
  "SELECT b.data FROM profiles p"
  " JOIN blobs b ON b.rowid = p.rowid WHERE p.id = ?1";

/* Floor division for the hour arithmetic of possibly negative times. */
static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The whole hours inside [from, to] that rollups may stand for; 0 when
** there are none or the query wants the first `limit` profiles. */
static int rollup_hours(const store_query *q, int64_t *lo, int64_t *hi) {
  if (q->limit > 0) return 0;
  *lo = floor_div(q->from + STORE_LOCAL_HOUR - 1, STORE_LOCAL_HOUR);
  *hi = floor_div(q->to + 1, STORE_LOCAL_HOUR) - 1;
  if (*lo < 1) *lo = 1; /* hour 0 and below are never rolled up */
  return *lo <= *hi;
}

/* Streams the stored profiles of q (with rollups standing for the whole
** hours lo..hi when use_rollups) into m, in time order: a rollup of hour h
** comes before the profiles at or after h * 3600.  *n gets the number of
** profiles merged. */
static store_rc merge_rows(store_local *l, store_local_conn *r,
                           const store_query *q, int use_rollups, int64_t lo,
                           int64_t hi, store_mergepipe *m, size_t *n,
                           char *err) {
  sqlite3_stmt *raw = NULL, *ru = NULL;
  store_rc rc = store_local_stmt(l, r, use_rollups ? sql_merge_raw : sql_merge,
                                 &raw, err);
  if (rc == STORE_OK && use_rollups)
    rc = store_local_stmt(l, r, sql_rollups, &ru, err);
  if (rc != STORE_OK) return rc;
  store_local_bind_query(raw, q);
  if (use_rollups) {
    sqlite3_bind_int64(raw, 7, lo);
    sqlite3_bind_int64(raw, 8, hi);
    store_local_bind_query(ru, q);
    sqlite3_bind_int64(ru, 7, lo);
    sqlite3_bind_int64(ru, 8, hi);
  }
  int rr = sqlite3_step(raw), rur = ru ? sqlite3_step(ru) : SQLITE_DONE;
  size_t count = 0;
  while (rr == SQLITE_ROW || rur == SQLITE_ROW) {
    if (rur == SQLITE_ROW &&
        (rr != SQLITE_ROW || sqlite3_column_int64(raw, 2) >=
                                 sqlite3_column_int64(ru, 0) * STORE_LOCAL_HOUR)) {
      char hour[32];
      snprintf(hour, sizeof hour, "%lld",
               (long long)sqlite3_column_int64(ru, 0));
      rc = store_mergepipe_push(m, "rollup of hour", hour,
                                sqlite3_column_blob(ru, 1),
                                (size_t)sqlite3_column_bytes(ru, 1), err);
      count += (size_t)sqlite3_column_int64(ru, 2);
      rur = sqlite3_step(ru);
    } else {
      rc = store_mergepipe_push(m, "stored profile",
                                (const char *)sqlite3_column_text(raw, 0),
                                sqlite3_column_blob(raw, 1),
                                (size_t)sqlite3_column_bytes(raw, 1), err);
      count++;
      rr = sqlite3_step(raw);
    }
    if (rc != STORE_OK) return rc;
  }
  if ((rc = store_mergepipe_drain(m, err)) != STORE_OK) return rc;
  if (rr != SQLITE_DONE || rur != SQLITE_DONE)
    return store_local_sqlerr(l, r->db, rr != SQLITE_DONE ? rr : rur, err,
                              "cannot read profiles");
  *n = count;
  return STORE_OK;
}

store_rc store_local_merge(void *impl, const store_query *q, void **out,
                           size_t *len, size_t *count, char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  store_mergepipe *p = NULL;
  int64_t lo = 0, hi = -1;
  int use_rollups = rollup_hours(q, &lo, &hi);
  size_t n = 0;
  store_rc rc = store_mergepipe_new(l->max_inflate, 2, &p, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_reader_get(l, &r, err)) != STORE_OK) goto out;
  /* Rollups and profiles must come from one snapshot. */
  if (use_rollups && (rc = store_local_exec(l, r, sql_begin,
                                            "cannot read profiles", err)) !=
                         STORE_OK)
    goto out;
  if ((rc = merge_rows(l, r, q, use_rollups, lo, hi, p, &n, err)) != STORE_OK)
    goto out;
  if (n == 0) {
    rc = store_seterr(err, STORE_NOTFOUND, "nothing found");
    goto out;
  }
  store_local_reader_put(l, r); /* end the read transaction before encoding */
  r = NULL;
  void *buf;
  size_t blen;
  if ((rc = store_mergepipe_finish(p, &buf, &blen, err)) != STORE_OK) goto out;
  if (count != NULL) *count = n;
  *out = buf;
  *len = blen;
out:
  store_mergepipe_free(p);
  store_local_reader_put(l, r);
  return rc;
}

/* Checks that all ids exist and share a mergeable type (first pass of
** merge_ids, inside its read transaction). */
static store_rc check_ids(store_local *l, store_local_conn *r,
                          const char *const *ids, size_t n, char *err) {
  meta_type first = META_NTYPES;
  sqlite3_stmt *s = NULL;
  for (size_t i = 0; i < n; i++) {
    store_rc rc = store_local_lookup(l, r, store_local_sql_stat, ids[i], &s,
                                     err);
    if (rc != STORE_OK) return rc;
    meta_type t = (meta_type)sqlite3_column_int(s, 2);
    sqlite3_reset(s);
    if (i == 0) first = t;
    if (t == META_TRACE)
      return store_seterr(err, STORE_UNSUPPORTED, "traces cannot be merged");
    if (t != first)
      return store_seterr(err, STORE_INVALID,
                          "profiles %s (%s) and %s (%s) have different types",
                          ids[0], meta_type_name(first), ids[i],
                          meta_type_name(t));
  }
  return STORE_OK;
}

store_rc store_local_merge_ids(void *impl, const char *const *ids, size_t n,
                               void **out, size_t *len, char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  store_mergepipe *p = NULL;
  store_rc rc = store_mergepipe_new(l->max_inflate, 2, &p, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_reader_get(l, &r, err)) != STORE_OK) goto out;
  /* One read transaction: a delete between the passes cannot interfere. */
  if ((rc = store_local_exec(l, r, sql_begin, "cannot read profiles", err)) !=
          STORE_OK ||
      (rc = check_ids(l, r, ids, n, err)) != STORE_OK)
    goto out;
  for (size_t i = 0; i < n; i++) {
    if ((rc = store_local_lookup(l, r, sql_blob, ids[i], &s, err)) !=
        STORE_OK) {
      /* The failure of an earlier row comes first, as one at a time. */
      store_rc drc = store_mergepipe_drain(p, err);
      if (drc != STORE_OK) rc = drc;
      goto out;
    }
    rc = store_mergepipe_push(p, "stored profile", ids[i],
                              sqlite3_column_blob(s, 0),
                              (size_t)sqlite3_column_bytes(s, 0), err);
    sqlite3_reset(s);
    if (rc != STORE_OK) goto out;
  }
  if ((rc = store_mergepipe_drain(p, err)) != STORE_OK ||
      (rc = store_local_exec(l, r, sql_commit, "cannot read profiles", err)) !=
          STORE_OK)
    goto out;
  rc = store_mergepipe_finish(p, out, len, err);
out:
  store_mergepipe_free(p);
  store_local_reader_put(l, r); /* rolls back the read transaction */
  return rc;
}
