/*
** local_read.c — the queries of the local store (find, get, stat, merge,
** services, label sets, statistics) on a pool of read connections.
**
** WAL mode lets readers run beside the writer, but a SQLite connection
** serves one thread at a time; so each query borrows a connection (with its
** prepared statements) from the pool, or opens one when all are busy, and
** returns it afterwards.  The pool keeps at most POOL_MAX idle connections.
**
** Merges stream: memory holds a few stored profiles in flight and the merged
** result, never all the matching profiles.  Long merges use two cores (see
** "merging on two cores"), with the same result as one at a time.  For the
** whole hours of a range, hourly rollups (rollup.c) stand in for the
** profiles they merged; both are read in one snapshot, in time order, so
** that for one label set the result is byte for byte the profile-by-profile
** merge.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "local.h"
#include "pprof.h"

#define POOL_MAX 16

enum {
  R_FIND, R_MERGE, R_MERGE_RAW, R_ROLLUPS, R_GET, R_STAT, R_BLOB, R_SERVICES,
  R_LABEL_SETS, R_STATS, R_BEGIN, R_COMMIT, R_DIRTY, R_HOUR, R_HOUR_SEQ, NSTMT
};

#define META_COLS "p.id, p.service, p.type, p.labels, p.created_at, p.size"
/* ?1 service, ?2 type, ?3..?4 time range, ?5 label filter, ?6 limit.  The
** index on (service, type, created_at, id) yields rows in result order. */
#define QUERY_FILTER                                                    \
  " WHERE p.service = ?1 AND p.type = ?2 AND p.created_at BETWEEN ?3 AND ?4" \
  " AND (?5 = '' OR labels_match(?5, p.labels))"
#define QUERY_WHERE QUERY_FILTER " ORDER BY p.created_at, p.id LIMIT ?6"

static const char *const stmt_sql[NSTMT] = {
  [R_FIND] = "SELECT " META_COLS " FROM profiles p" QUERY_WHERE,
  [R_MERGE] = "SELECT p.id, b.data, p.created_at FROM profiles p"
              " JOIN blobs b ON b.rowid = p.rowid" QUERY_WHERE,
  /* A merge using the rollups of hours ?7..?8: the profiles those rollups
  ** hold are left out (their blobs are never read), the rollups are read
  ** in hour order beside them. */
  [R_MERGE_RAW] = "SELECT p.id, b.data, p.created_at FROM profiles p"
                  " JOIN blobs b ON b.rowid = p.rowid" QUERY_FILTER
                  " AND NOT (p.created_at / 3600 BETWEEN ?7 AND ?8"
                  "  AND EXISTS (SELECT 1 FROM rollups r"
                  "   WHERE r.service = p.service AND r.type = p.type"
                  "   AND r.hour = p.created_at / 3600"
                  "   AND r.labels = p.labels))"
                  " ORDER BY p.created_at, p.id",
  [R_ROLLUPS] = "SELECT r.hour, r.data, r.profiles, r.labels FROM rollups r"
                " WHERE r.service = ?1 AND r.type = ?2"
                " AND r.hour BETWEEN ?7 AND ?8"
                " AND (?5 = '' OR labels_match(?5, r.labels))"
                " ORDER BY r.hour, r.labels",
  [R_GET] = "SELECT " META_COLS ", b.data FROM profiles p"
            " JOIN blobs b ON b.rowid = p.rowid WHERE p.id = ?1",
  [R_STAT] = "SELECT " META_COLS " FROM profiles p WHERE p.id = ?1",
  [R_BLOB] = "SELECT b.data FROM profiles p"
             " JOIN blobs b ON b.rowid = p.rowid WHERE p.id = ?1",
  [R_SERVICES] = "SELECT name FROM services ORDER BY name",
  /* The empty set is no label directory. */
  [R_LABEL_SETS] = "SELECT labels FROM series WHERE service = ?1"
                   " AND type = ?2 AND labels <> '' ORDER BY labels",
  [R_STATS] = "SELECT coalesce(sum(profiles), 0), coalesce(sum(bytes), 0)"
              " FROM series",
  [R_BEGIN] = "BEGIN",
  [R_COMMIT] = "COMMIT",
  [R_DIRTY] = "SELECT service, type, hour, labels, seq FROM rollup_dirty"
              " WHERE hour < ?1 ORDER BY hour",
  [R_HOUR] = "SELECT p.id, b.data FROM profiles p"
             " JOIN blobs b ON b.rowid = p.rowid WHERE p.service = ?1"
             " AND p.type = ?2 AND p.created_at BETWEEN ?3 AND ?4"
             " AND p.labels = ?5 ORDER BY p.created_at, p.id",
  [R_HOUR_SEQ] = "SELECT seq FROM rollup_dirty WHERE service = ?1"
                 " AND type = ?2 AND hour = ?3 AND labels = ?4",
};

struct store_local_reader {
  sqlite3 *db;
  sqlite3_stmt *st[NSTMT]; /* prepared on first use */
  store_local_reader *next;
};

/* ---- the pool ----------------------------------------------------------------- */

static void reader_free(store_local_reader *r) {
  if (r == NULL) return;
  for (int i = 0; i < NSTMT; i++) sqlite3_finalize(r->st[i]);
  sqlite3_close(r->db);
  free(r);
}

static store_rc reader_get(store_local *l, store_local_reader **out,
                           char *err) {
  pthread_mutex_lock(&l->pool_mu);
  store_local_reader *r = l->pool;
  if (r != NULL) {
    l->pool = r->next;
    l->npool--;
  }
  pthread_mutex_unlock(&l->pool_mu);
  if (r == NULL) {
    r = calloc(1, sizeof *r);
    if (r == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
    store_rc rc = store_local_connect(l, 0, &r->db, err);
    if (rc != STORE_OK) {
      free(r);
      return rc;
    }
  }
  *out = r;
  return STORE_OK;
}

/* Returns r to the pool with every statement reset (no read transaction
** left open), or closes it when the pool is full. */
static void reader_put(store_local *l, store_local_reader *r) {
  for (int i = 0; i < NSTMT; i++) {
    if (r->st[i] == NULL) continue;
    sqlite3_reset(r->st[i]);
    sqlite3_clear_bindings(r->st[i]);
  }
  if (!sqlite3_get_autocommit(r->db))
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
  pthread_mutex_lock(&l->pool_mu);
  if (l->npool < POOL_MAX) {
    r->next = l->pool;
    l->pool = r;
    l->npool++;
    r = NULL;
  }
  pthread_mutex_unlock(&l->pool_mu);
  reader_free(r);
}

void store_local_pool_free(store_local *l) {
  store_local_reader *r = l->pool, *next;
  for (; r != NULL; r = next) {
    next = r->next;
    reader_free(r);
  }
  l->pool = NULL;
  l->npool = 0;
}

/* The prepared statement i of r. */
static store_rc stmt(store_local *l, store_local_reader *r, int i,
                     sqlite3_stmt **out, char *err) {
  if (r->st[i] == NULL) {
    int rc = sqlite3_prepare_v3(r->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL);
    if (rc != SQLITE_OK)
      return store_local_sqlerr(l, r->db, rc, err, "cannot prepare query");
  }
  *out = r->st[i];
  return STORE_OK;
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

static void bind_query(sqlite3_stmt *s, const store_query *q) {
  sqlite3_bind_text(s, 1, q->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)q->type);
  sqlite3_bind_int64(s, 3, q->from);
  sqlite3_bind_int64(s, 4, q->to);
  sqlite3_bind_text(s, 5, q->labels ? q->labels : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 6, q->limit > 0 ? q->limit : -1);
}

/* ---- queries --------------------------------------------------------------------- */

store_rc store_local_find(void *impl, const store_query *q,
                          store_meta_list *out, char *err) {
  store_local *l = impl;
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  store_meta_list list = {0, NULL};
  size_t cap = 0;
  store_rc rc = reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = stmt(l, r, R_FIND, &s, err)) != STORE_OK) goto out;
  bind_query(s, q);
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
  reader_put(l, r);
  if (rc != STORE_OK) {
    store_meta_list_free(&list);
    return rc;
  }
  *out = list;
  return STORE_OK;
}

/* Looks id up with statement i (R_GET or R_STAT) and leaves r's statement
** on the row. */
static store_rc lookup(store_local *l, store_local_reader *r, int i,
                       const char *id, sqlite3_stmt **out, char *err) {
  sqlite3_stmt *s = NULL;
  store_rc rc = stmt(l, r, i, &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
  int src = sqlite3_step(s);
  if (src == SQLITE_DONE)
    return store_seterr(err, STORE_NOTFOUND, "no profile with id %s", id);
  if (src != SQLITE_ROW)
    return store_local_sqlerr(l, r->db, src, err, "cannot read profile");
  *out = s;
  return STORE_OK;
}

store_rc store_local_get(void *impl, const char *id, store_meta *meta,
                         void **data, size_t *len, char *err) {
  store_local *l = impl;
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  store_meta m = {0};
  void *buf = NULL;
  store_rc rc = reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = lookup(l, r, R_GET, id, &s, err)) != STORE_OK) goto out;
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
  reader_put(l, r);
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
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = lookup(l, r, R_STAT, id, &s, err)) == STORE_OK)
    rc = row_meta(s, meta, err);
  reader_put(l, r);
  return rc;
}

/* ---- merges ------------------------------------------------------------------------ */

/* Maps pprof's outcome (prc, perr) of adding the row `what name`. */
static store_rc merge_err(pprof_rc prc, const char *what, const char *name,
                          const char *perr, char *err) {
  switch (prc) {
  case PPROF_OK: return STORE_OK;
  case PPROF_EMISMATCH: return store_seterr(err, STORE_MISMATCH, "%s", perr);
  case PPROF_ENOMEM: return store_seterr(err, STORE_NOMEM, "out of memory");
  default:
    return store_seterr(err, STORE_BADPROFILE, "%s %s: %s", what, name,
                        perr[0] ? perr : pprof_strerror(prc));
  }
}

/* Adds one stored profile to the merge, mapping pprof's errors. */
static store_rc merge_add(pprof_merge *m, const char *what, const char *name,
                          const void *blob, size_t n, char *err) {
  char perr[PPROF_ERRMAX] = "";
  pprof_rc prc = pprof_merge_add(m, blob, n, perr);
  return merge_err(prc, what, name, perr, err);
}

static store_rc merge_finish(pprof_merge *m, void **out, size_t *len,
                             char *err) {
  char perr[PPROF_ERRMAX] = "";
  pprof_rc prc = pprof_merge_result(m, out, len, perr);
  if (prc == PPROF_OK) return STORE_OK;
  if (prc == PPROF_ENOMEM)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  return store_seterr(err, STORE_IO, "cannot encode merged profile: %s",
                      perr[0] ? perr : pprof_strerror(prc));
}

/* ---- merging on two cores ------------------------------------------------------- */

/* A long merge is a two-stage pipeline.  The querying thread reads the rows,
** copies each blob out of SQLite's row buffer into the next slot of a small
** ring, and commits the prepared slots into the accumulator in row order; a
** worker thread prepares (inflates, decodes, validates: two thirds of the
** cost) the slots ahead of it.  When the oldest slot is not ready yet, the
** querying thread prepares the next unclaimed one itself rather than wait,
** so the two threads share the preparing and the commits ride on top.
**
** Commits are in row order, so the result is byte for byte the one-thread
** merge of the same rows, and the error reported is the one merge_add would
** give: that of the first failing row.  Rows read past it are dropped.
** The first PIPE_MIN rows go straight through merge_add and the worker only
** starts after them, so that short merges cost no thread.  Memory: at most
** PIPE_SLOTS profiles (blob and inflated form) are in flight, each stored in
** at most PIPE_BIG bytes; a bigger row (a large profile or rollup) waits for
** the rows before it and is merged on the querying thread alone, so that
** it is never held several times over.
**
** Invariants (rows are numbered from 0 in push order, row i lives in slot
** i % PIPE_SLOTS):
**   - head <= claim <= fill <= head + PIPE_SLOTS;
**   - rows [head, claim) are claimed: being prepared by one thread, or done;
**     rows [claim, fill) wait for a preparer;
**   - claim, fill, stop and the done flags are guarded by mu; head, and a
**     slot outside [head, fill), belong to the querying thread alone;
**   - a claimed slot belongs to its preparer until done is set. */

#define PIPE_SLOTS 8
#define PIPE_MIN 16
#define PIPE_BIG ((size_t)256 << 10)

typedef struct pipe_slot {
  pprof_prep *prep; /* created on first use */
  unsigned char *blob;
  size_t len, cap;
  const char *what; /* static: "stored profile", "rollup of hour" */
  char name[48];
  pprof_rc prc;     /* outcome of the prepare */
  char perr[PPROF_ERRMAX];
  int done;
} pipe_slot;

typedef struct merge_pipe {
  pprof_merge *m;
  size_t max_inflate;
  size_t rows;       /* added one at a time, before the worker started */
  int started;       /* 1: the worker runs; -1: it could not start */
  pthread_t worker;
  pthread_mutex_t mu;
  pthread_cond_t work;  /* for the worker: a row to claim, or stop */
  pthread_cond_t ready; /* for the querying thread: a row is done */
  size_t head, claim, fill;
  int stop;
  pipe_slot slot[PIPE_SLOTS];
} merge_pipe;

/* Prepares a claimed slot (no lock held: the slot is the caller's). */
static void slot_prepare(pipe_slot *s) {
  s->perr[0] = '\0';
  s->prc = pprof_merge_prepare(s->prep, s->blob, s->len, s->perr);
}

static void *pipe_worker(void *arg) {
  merge_pipe *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->claim == p->fill)
      pthread_cond_wait(&p->work, &p->mu);
    if (p->stop) break;
    pipe_slot *s = &p->slot[p->claim++ % PIPE_SLOTS];
    pthread_mutex_unlock(&p->mu);
    slot_prepare(s);
    pthread_mutex_lock(&p->mu);
    s->done = 1;
    pthread_cond_signal(&p->ready);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static store_rc pipe_init(merge_pipe *p, size_t max_inflate, char *err) {
  memset(p, 0, sizeof *p);
  p->max_inflate = max_inflate;
  if ((p->m = pprof_merge_new(max_inflate)) == NULL)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->ready, NULL);
  return STORE_OK;
}

/* Stops the worker and frees the pipe and its accumulator; accepts a pipe
** whose init failed. */
static void pipe_free(merge_pipe *p) {
  if (p->m == NULL) return;
  if (p->started > 0) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->worker, NULL);
  }
  for (int i = 0; i < PIPE_SLOTS; i++) {
    pprof_prep_free(p->slot[i].prep);
    free(p->slot[i].blob);
  }
  pthread_cond_destroy(&p->ready);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->mu);
  pprof_merge_free(p->m);
  p->m = NULL;
}

/* Commits the head row (done) into the accumulator. */
static store_rc pipe_commit(merge_pipe *p, char *err) {
  pipe_slot *s = &p->slot[p->head++ % PIPE_SLOTS];
  if (s->prc == PPROF_OK) {
    s->perr[0] = '\0';
    s->prc = pprof_merge_commit_prep(p->m, s->prep, s->perr);
  }
  return merge_err(s->prc, s->what, s->name, s->perr, err);
}

/* Makes progress on the oldest row: commits it if done, else prepares the
** next unclaimed row, else waits for a preparer. */
static store_rc pipe_step(merge_pipe *p, char *err) {
  assert(p->head < p->fill);
  pthread_mutex_lock(&p->mu);
  while (!p->slot[p->head % PIPE_SLOTS].done) {
    if (p->claim < p->fill) {
      pipe_slot *s = &p->slot[p->claim++ % PIPE_SLOTS];
      pthread_mutex_unlock(&p->mu);
      slot_prepare(s);
      pthread_mutex_lock(&p->mu);
      s->done = 1;
    } else {
      pthread_cond_wait(&p->ready, &p->mu);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return pipe_commit(p, err);
}

/* Copies a row into the next slot (the ring has room). */
static store_rc pipe_fill(merge_pipe *p, const char *what, const char *name,
                          const void *blob, size_t n, char *err) {
  pipe_slot *s = &p->slot[p->fill % PIPE_SLOTS];
  if (s->prep == NULL && (s->prep = pprof_prep_new(p->max_inflate)) == NULL)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  if (n > s->cap) {
    unsigned char *b = realloc(s->blob, n);
    if (b == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
    s->blob = b;
    s->cap = n;
  }
  if (n > 0) memcpy(s->blob, blob, n);
  s->len = n;
  s->what = what;
  snprintf(s->name, sizeof s->name, "%s", name ? name : "");
  pthread_mutex_lock(&p->mu);
  s->done = 0;
  p->fill++;
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->mu);
  return STORE_OK;
}

/* Commits every row still in flight. */
static store_rc pipe_drain(merge_pipe *p, char *err) {
  while (p->head < p->fill) {
    store_rc rc = pipe_step(p, err);
    if (rc != STORE_OK) return rc;
  }
  return STORE_OK;
}

/* Adds one row to the merge; may report the failure of an earlier row. */
static store_rc pipe_push(merge_pipe *p, const char *what, const char *name,
                          const void *blob, size_t n, char *err) {
  if (p->started == 0 && p->rows >= PIPE_MIN)
    p->started = pthread_create(&p->worker, NULL, pipe_worker, p) ? -1 : 1;
  if (p->started <= 0) { /* a short merge so far, or no thread to be had */
    p->rows++;
    return merge_add(p->m, what, name, blob, n, err);
  }
  if (n > PIPE_BIG) { /* after the rows before it, on this thread */
    store_rc rc = pipe_drain(p, err);
    return rc != STORE_OK ? rc : merge_add(p->m, what, name, blob, n, err);
  }
  while (p->fill - p->head == PIPE_SLOTS) {
    store_rc rc = pipe_step(p, err);
    if (rc != STORE_OK) return rc;
  }
  return pipe_fill(p, what, name, blob, n, err);
}

/* ---- merge queries ------------------------------------------------------------------ */

/* Runs statement i (R_BEGIN, R_COMMIT) of r. */
static store_rc exec_stmt(store_local *l, store_local_reader *r, int i,
                          char *err) {
  sqlite3_stmt *s = NULL;
  store_rc rc = stmt(l, r, i, &s, err);
  if (rc != STORE_OK) return rc;
  int src = sqlite3_step(s);
  sqlite3_reset(s);
  if (src != SQLITE_DONE)
    return store_local_sqlerr(l, r->db, src, err, "cannot read profiles");
  return STORE_OK;
}

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
static store_rc merge_rows(store_local *l, store_local_reader *r,
                           const store_query *q, int use_rollups, int64_t lo,
                           int64_t hi, merge_pipe *m, size_t *n, char *err) {
  sqlite3_stmt *raw = NULL, *ru = NULL;
  store_rc rc = stmt(l, r, use_rollups ? R_MERGE_RAW : R_MERGE, &raw, err);
  if (rc == STORE_OK && use_rollups) rc = stmt(l, r, R_ROLLUPS, &ru, err);
  if (rc != STORE_OK) return rc;
  bind_query(raw, q);
  if (use_rollups) {
    sqlite3_bind_int64(raw, 7, lo);
    sqlite3_bind_int64(raw, 8, hi);
    bind_query(ru, q);
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
      rc = pipe_push(m, "rollup of hour", hour, sqlite3_column_blob(ru, 1),
                     (size_t)sqlite3_column_bytes(ru, 1), err);
      count += (size_t)sqlite3_column_int64(ru, 2);
      rur = sqlite3_step(ru);
    } else {
      rc = pipe_push(m, "stored profile",
                     (const char *)sqlite3_column_text(raw, 0),
                     sqlite3_column_blob(raw, 1),
                     (size_t)sqlite3_column_bytes(raw, 1), err);
      count++;
      rr = sqlite3_step(raw);
    }
    if (rc != STORE_OK) return rc;
  }
  if ((rc = pipe_drain(m, err)) != STORE_OK) return rc;
  if (rr != SQLITE_DONE || rur != SQLITE_DONE)
    return store_local_sqlerr(l, r->db, rr != SQLITE_DONE ? rr : rur, err,
                              "cannot read profiles");
  *n = count;
  return STORE_OK;
}

store_rc store_local_merge(void *impl, const store_query *q, void **out,
                           size_t *len, size_t *count, char *err) {
  store_local *l = impl;
  store_local_reader *r = NULL;
  merge_pipe p;
  int64_t lo = 0, hi = -1;
  int use_rollups = rollup_hours(q, &lo, &hi);
  size_t n = 0;
  store_rc rc = pipe_init(&p, l->max_inflate, err);
  if (rc != STORE_OK) return rc;
  if ((rc = reader_get(l, &r, err)) != STORE_OK) goto out;
  /* Rollups and profiles must come from one snapshot. */
  if (use_rollups && (rc = exec_stmt(l, r, R_BEGIN, err)) != STORE_OK)
    goto out;
  if ((rc = merge_rows(l, r, q, use_rollups, lo, hi, &p, &n, err)) != STORE_OK)
    goto out;
  if (n == 0) {
    rc = store_seterr(err, STORE_NOTFOUND, "nothing found");
    goto out;
  }
  reader_put(l, r); /* end the read transaction before encoding */
  r = NULL;
  void *buf;
  size_t blen;
  if ((rc = merge_finish(p.m, &buf, &blen, err)) != STORE_OK) goto out;
  if (count != NULL) *count = n;
  *out = buf;
  *len = blen;
out:
  pipe_free(&p);
  if (r != NULL) reader_put(l, r);
  return rc;
}

/* Checks that all ids exist and share a mergeable type (first pass of
** merge_ids, inside its read transaction). */
static store_rc check_ids(store_local *l, store_local_reader *r,
                          const char *const *ids, size_t n, char *err) {
  meta_type first = META_NTYPES;
  sqlite3_stmt *s = NULL;
  for (size_t i = 0; i < n; i++) {
    store_rc rc = lookup(l, r, R_STAT, ids[i], &s, err);
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
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  merge_pipe p;
  store_rc rc = pipe_init(&p, l->max_inflate, err);
  if (rc != STORE_OK) return rc;
  if ((rc = reader_get(l, &r, err)) != STORE_OK) goto out;
  /* One read transaction: a delete between the passes cannot interfere. */
  if ((rc = exec_stmt(l, r, R_BEGIN, err)) != STORE_OK ||
      (rc = check_ids(l, r, ids, n, err)) != STORE_OK)
    goto out;
  for (size_t i = 0; i < n; i++) {
    if ((rc = lookup(l, r, R_BLOB, ids[i], &s, err)) != STORE_OK) {
      /* The failure of an earlier row comes first, as one at a time. */
      store_rc drc = pipe_drain(&p, err);
      if (drc != STORE_OK) rc = drc;
      goto out;
    }
    rc = pipe_push(&p, "stored profile", ids[i], sqlite3_column_blob(s, 0),
                   (size_t)sqlite3_column_bytes(s, 0), err);
    sqlite3_reset(s);
    if (rc != STORE_OK) goto out;
  }
  if ((rc = pipe_drain(&p, err)) != STORE_OK ||
      (rc = exec_stmt(l, r, R_COMMIT, err)) != STORE_OK)
    goto out;
  rc = merge_finish(p.m, out, len, err);
out:
  pipe_free(&p);
  if (r != NULL) reader_put(l, r); /* rolls back the read transaction */
  return rc;
}

/* ---- names ----------------------------------------------------------------------------- */

/* Collects the text column 0 of every row of s (bound by the caller). */
static store_rc collect_names(store_local *l, store_local_reader *r,
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
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = stmt(l, r, R_SERVICES, &s, err)) == STORE_OK)
    rc = collect_names(l, r, s, names, n, err);
  reader_put(l, r);
  return rc;
}

store_rc store_local_label_sets(void *impl, const char *service,
                                meta_type type, char ***sets, size_t *n,
                                char *err) {
  store_local *l = impl;
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = stmt(l, r, R_LABEL_SETS, &s, err)) == STORE_OK) {
    sqlite3_bind_text(s, 1, service, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, (int)type);
    rc = collect_names(l, r, s, sets, n, err);
  }
  reader_put(l, r);
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
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  store_rc rc = reader_get(l, &r, NULL);
  if (rc != STORE_OK) return rc;
  if ((rc = stmt(l, r, R_STATS, &s, NULL)) != STORE_OK) goto out;
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
  };
out:
  reader_put(l, r);
  return rc;
}

/* ---- rollup support ------------------------------------------------------------------ */

void store_local_hours_free(store_local_hour *v, size_t n) {
  if (v == NULL) return;
  for (size_t i = 0; i < n; i++) {
    free(v[i].service);
    free(v[i].labels);
  }
  free(v);
}

store_rc store_local_dirty_hours(store_local *l, int64_t before,
                                 store_local_hour **out, size_t *n,
                                 char *err) {
  store_local_reader *r = NULL;
  sqlite3_stmt *s = NULL;
  store_local_hour *v = NULL;
  size_t k = 0, cap = 0;
  store_rc rc = reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = stmt(l, r, R_DIRTY, &s, err)) != STORE_OK) goto out;
  sqlite3_bind_int64(s, 1, before);
  int src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    if (k == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      store_local_hour *nv = realloc(v, ncap * sizeof *nv);
      if (nv == NULL) goto nomem;
      v = nv;
      cap = ncap;
    }
    const char *service = (const char *)sqlite3_column_text(s, 0);
    const char *labels = (const char *)sqlite3_column_text(s, 3);
    v[k] = (store_local_hour){
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
  reader_put(l, r);
  if (rc != STORE_OK) {
    store_local_hours_free(v, k);
    return rc;
  }
  *out = v;
  *n = k;
  return STORE_OK;
}

/* Reads h's dirty mark and merges its hour into m (same snapshot). */
static store_rc merge_hour_rows(store_local *l, store_local_reader *r,
                                store_local_hour *h, pprof_merge *m,
                                int64_t *count, char *err) {
  sqlite3_stmt *seq = NULL, *s = NULL;
  store_rc rc = stmt(l, r, R_HOUR_SEQ, &seq, err);
  if (rc == STORE_OK) rc = stmt(l, r, R_HOUR, &s, err);
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
    rc = merge_add(m, "stored profile", (const char *)sqlite3_column_text(s, 0),
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

store_rc store_local_merge_hour(store_local *l, store_local_hour *h,
                                void **data, size_t *len, int64_t *profiles,
                                char *err) {
  store_local_reader *r = NULL;
  pprof_merge *m = NULL;
  int64_t n = 0;
  store_rc rc = reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((m = pprof_merge_new(l->max_inflate)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = exec_stmt(l, r, R_BEGIN, err)) != STORE_OK) goto out;
  rc = merge_hour_rows(l, r, h, m, &n, err);
  reader_put(l, r);
  r = NULL;
  void *buf = NULL;
  size_t blen = 0;
  if (rc == STORE_MISMATCH || rc == STORE_BADPROFILE) {
    /* No rollup: queries merge such an hour profile by profile and
    ** report the error naming the profile. */
    rc = STORE_OK;
  } else if (rc == STORE_OK && n >= 2) {
    rc = merge_finish(m, &buf, &blen, err);
  }
  if (rc == STORE_OK) {
    *data = buf;
    *len = blen;
    *profiles = n;
  }
out:
  pprof_merge_free(m);
  if (r != NULL) reader_put(l, r);
  return rc;
}
