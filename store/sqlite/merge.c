/*
** merge.c — the merge queries of the local store: a query's profiles, or
** a list of ids, streamed into the shared merge pipeline (mergepipe.h),
** which uses two cores for long merges with the same bytes as one.
**
** Memory holds a few stored profiles in flight and the merged result, never
** all the matching profiles.  For the complete hours, days and weeks of a
** range, rollups of the query's filter (rollups.c) stand in for the
** profiles they merged, as the shared plan (../rollup.h) picks them; both
** are read in one snapshot, in time order, so that the result is byte for
** byte the profile-by-profile merge.
**
** A query's merge reads in slices of about SLICE_ROWS rows, each in a read
** transaction of its own (a snapshot held for a whole long merge keeps the
** checkpoint from copying back anything committed after it began, so
** overlapping long merges kept the WAL from ever starting over).  A slice
** ends between two pieces of the plan or where the second of created_at
** changes inside a run of profiles, and the next one plans again from
** there in a new snapshot: the order stays (created_at, id), a limit
** counts across slices, and a rollup is read in the snapshot that listed
** it.
*/
#include <stdio.h>
#include <stdlib.h>

#include "local.h"
#include "mergepipe.h"
#include "rollup.h"

/* The rows of a query by each plan of local.h; the bytes are read by
** rowid after the row (sql_blob_row), so that the sort of the plan by
** label sets never carries them. */
#define MERGE_ORDER " ORDER BY p.created_at, p.id LIMIT ?6"
static const char *const sql_merge[STORE_LOCAL_PLANS] = {
  "SELECT p.id, p.rowid, p.created_at" STORE_LOCAL_BY_TIME MERGE_ORDER,
  "SELECT p.id, p.rowid, p.created_at" STORE_LOCAL_BY_SETS MERGE_ORDER,
  "SELECT p.id, p.rowid, p.created_at" STORE_LOCAL_BY_SET MERGE_ORDER,
};
static const char sql_blob_row[] = "SELECT data FROM blobs WHERE rowid = ?1";
static const char sql_begin[] = "BEGIN";
static const char sql_commit[] = "COMMIT";
/* The rollups of filter ?3 at levels up to ?4 starting in ?5..?6. */
static const char sql_have[] =
  "SELECT level, start FROM rollups WHERE service = ?1 AND type = ?2"
  " AND filter = ?3 AND level <= ?4 AND start BETWEEN ?5 AND ?6";
static const char sql_rollup[] =
  "SELECT r.profiles, d.data FROM rollups r JOIN rollup_data d"
  " ON d.id = r.data WHERE r.service = ?1 AND r.type = ?2"
  " AND r.filter = ?3 AND r.level = ?4 AND r.start = ?5";
static const char sql_blob[] =
  "SELECT b.data FROM profiles p"
  " JOIN blobs b ON b.rowid = p.rowid WHERE p.id = ?1";

#define SLICE_ROWS 256

/* Where a merge's slice is: how many more rows its snapshot may read
** before stopping at the next boundary, and where the next slice starts. */
typedef struct slice {
  size_t left;
  int stopped;    /* the slice ended before the end of the query */
  int64_t resume; /* then: the time the next slice starts at */
} slice;

/* The rollups of q's filter that may stand in its plan, malloc'd. */
static store_rc load_have(store_local *l, store_local_conn *r,
                          const store_local_plan_query *q,
                          store_rollup_have **out, size_t *n, char *err) {
  sqlite3_stmt *s = NULL;
  store_rollup_have *v = NULL;
  size_t k = 0, cap = 0;
  store_rc rc = store_local_stmt(l, r, sql_have, &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(s, 1, q->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)q->type);
  sqlite3_bind_text(s, 3, q->filter, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 4, q->top);
  sqlite3_bind_int64(s, 5, q->from);
  sqlite3_bind_int64(s, 6, q->to);
  int src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    if (k == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      store_rollup_have *nv = realloc(v, ncap * sizeof *nv);
      if (nv == NULL) {
        sqlite3_reset(s);
        free(v);
        return store_seterr(err, STORE_NOMEM, "out of memory");
      }
      v = nv;
      cap = ncap;
    }
    v[k++] = (store_rollup_have){sqlite3_column_int(s, 0),
                                 sqlite3_column_int64(s, 1)};
  }
  sqlite3_reset(s);
  if (src != SQLITE_DONE) {
    free(v);
    return store_local_sqlerr(l, r->db, src, err, "cannot read rollups");
  }
  *out = v;
  *n = k;
  return STORE_OK;
}

/* Pushes the rollup of one piece; *count += its profiles. */
static store_rc push_rollup(store_local *l, store_local_conn *r,
                            const store_local_plan_query *q,
                            const store_rollup_piece *pc, store_mergepipe *p,
                            size_t *count, char *err) {
  static const char *const level_names[STORE_ROLLUP_LEVELS] = {
    "rollup of hour", "rollup of day", "rollup of week"};
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_stmt(l, r, sql_rollup, &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(s, 1, q->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)q->type);
  sqlite3_bind_text(s, 3, q->filter, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 4, pc->level);
  sqlite3_bind_int64(s, 5, pc->from);
  int src = sqlite3_step(s);
  if (src != SQLITE_ROW) {
    sqlite3_reset(s);
    /* It was listed in this very snapshot. */
    return store_local_sqlerr(l, r->db, src == SQLITE_DONE ? SQLITE_CORRUPT
                                                           : src,
                              err, "cannot read rollup");
  }
  char name[32];
  snprintf(name, sizeof name, "%lld", (long long)pc->from);
  rc = store_mergepipe_push(p, level_names[pc->level], name,
                            sqlite3_column_blob(s, 1),
                            (size_t)sqlite3_column_bytes(s, 1), err);
  *count += (size_t)sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  return rc;
}

/* Pushes the profiles of q in time order; *count += their number.  With
** sl, stops at the first change of second once sl->left rows were read. */
static store_rc push_rows(store_local *l, store_local_conn *r,
                          const store_query *q, store_mergepipe *p,
                          size_t *count, slice *sl, char *err) {
  sqlite3_stmt *s = NULL, *b = NULL;
  store_rc rc = store_local_stmt(l, r, sql_blob_row, &b, err);
  if (rc == STORE_OK) rc = store_local_query_stmt(l, r, q, sql_merge, &s, err);
  if (rc != STORE_OK) return rc;
  int src;
  int64_t last = INT64_MIN;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t t = sqlite3_column_int64(s, 2);
    if (sl != NULL && sl->left == 0 && t != last) {
      sl->stopped = 1;
      sl->resume = t;
      src = SQLITE_DONE;
      break;
    }
    last = t;
    if (sl != NULL && sl->left > 0) sl->left--;
    sqlite3_bind_int64(b, 1, sqlite3_column_int64(s, 1));
    if ((src = sqlite3_step(b)) != SQLITE_ROW) {
      sqlite3_reset(b);
      if (src == SQLITE_DONE) src = SQLITE_CORRUPT;
      break;
    }
    rc = store_mergepipe_push(p, "stored profile",
                              (const char *)sqlite3_column_text(s, 0),
                              sqlite3_column_blob(b, 0),
                              (size_t)sqlite3_column_bytes(b, 0), err);
    sqlite3_reset(b);
    if (rc != STORE_OK) break;
    (*count)++;
  }
  sqlite3_reset(s);
  if (rc != STORE_OK) return rc;
  if (src != SQLITE_DONE) {
    /* The failure of an earlier row comes first, as one at a time. */
    rc = store_mergepipe_drain(p, err);
    return rc != STORE_OK ? rc : store_local_sqlerr(l, r->db, src, err,
                                                    "cannot read profiles");
  }
  return STORE_OK;
}

/* Pushes the raw profiles of one piece of a plan. */
static store_rc push_raw(store_local *l, store_local_conn *r,
                         const store_local_plan_query *q,
                         const store_rollup_piece *pc, store_mergepipe *p,
                         size_t *count, slice *sl, char *err) {
  store_query rq = {.service = q->service, .type = q->type,
                    .labels = q->filter, .from = pc->from, .to = pc->to};
  return push_rows(l, r, &rq, p, count, sl, err);
}

/* store_local_merge_plan, or with sl one slice of it (see slice). */
static store_rc merge_plan(store_local *l, store_local_conn *r,
                           const store_local_plan_query *q, store_mergepipe *p,
                           size_t *count, slice *sl, char *err) {
  store_rollup_have *have = NULL;
  store_rollup_piece *pieces = NULL;
  size_t nhave = 0, npieces = 0, n = 0;
  store_rc rc = STORE_OK;
  if (q->top >= 0) rc = load_have(l, r, q, &have, &nhave, err);
  if (rc == STORE_OK)
    rc = store_rollup_plan(q->from, q->to, q->top, have, nhave, &pieces,
                           &npieces, err);
  for (size_t i = 0; rc == STORE_OK && i < npieces; i++) {
    if (sl != NULL && sl->stopped) break;
    if (sl != NULL && sl->left == 0) { /* between two pieces */
      sl->stopped = 1;
      sl->resume = pieces[i].from;
      break;
    }
    if (pieces[i].level >= 0) {
      rc = push_rollup(l, r, q, &pieces[i], p, &n, err);
      if (sl != NULL) sl->left--;
    } else {
      rc = push_raw(l, r, q, &pieces[i], p, &n, sl, err);
    }
  }
  if (rc == STORE_OK) rc = store_mergepipe_drain(p, err);
  free(have);
  free(pieces);
  if (rc == STORE_OK) *count = n;
  return rc;
}

store_rc store_local_merge_plan(store_local *l, store_local_conn *r,
                                const store_local_plan_query *q,
                                store_mergepipe *p, size_t *count,
                                char *err) {
  return merge_plan(l, r, q, p, count, NULL, err);
}

store_rc store_local_merge(void *impl, const store_query *q, void **out,
                           size_t *len, size_t *count, char *err) {
  store_local *l = impl;
  store_local_conn *r = NULL;
  store_mergepipe *p = NULL;
  size_t n = 0;
  store_rc rc = store_mergepipe_new(l->max_inflate, 2, &p, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_reader_get(l, &r, err)) != STORE_OK) goto out;
  store_query sq = *q;
  slice sl = {.stopped = 1, .resume = q->from};
  while (rc == STORE_OK && sl.stopped) {
    size_t got = 0;
    sl = (slice){.left = SLICE_ROWS};
    /* one snapshot per slice: the plan and the rollups it names agree */
    rc = store_local_exec(l, r, sql_begin, "cannot read profiles", err);
    if (rc == STORE_OK && q->limit > 0) { /* the first profiles: no rollups */
      sq.limit = q->limit - (long)n;
      rc = push_rows(l, r, &sq, p, &got, &sl, err);
      if (rc == STORE_OK) rc = store_mergepipe_drain(p, err);
    } else if (rc == STORE_OK) {
      store_local_plan_query pq = {
        .service = q->service, .type = q->type,
        .filter = q->labels ? q->labels : "", .from = sq.from, .to = q->to,
        .top = STORE_ROLLUP_LEVELS - 1,
      };
      rc = merge_plan(l, r, &pq, p, &got, &sl, err);
    }
    n += got;
    if (rc == STORE_OK)
      rc = store_local_exec(l, r, sql_commit, "cannot read profiles", err);
    sq.from = sl.resume;
    if (q->limit > 0 && (long)n >= q->limit) sl.stopped = 0;
  }
  if (rc != STORE_OK) goto out;
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
